"""Ship a training run's best checkpoint as a leaderboard row's weights (``weights/``).

    python benchmarks/ship_weights.py RUN_DIR --results results/ram/NAME [--dtype float16]

Writes ``weights/<ENV_ID>/<kind>.safetensors`` and ``.json`` with their digests from the
run's ``checkpoints/best.pt`` and ``results/test.json`` (:func:`glimpse_engine.weights.ship_run`).
``--results`` names the folder under ``results/`` where the run's JSON is kept.
"""

from __future__ import annotations

import argparse

from glimpse_engine.weights import DTYPES, ship_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the run folder (holds checkpoints/best.pt and results/test.json)")
    parser.add_argument("--results", required=True, help="where the run's results are kept under results/")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="storage type")
    parser.add_argument("--hardware", default="2-core x86-64 VM (CPU)", help="what trained the run")
    parser.add_argument("--weights-dir", default=None, help="default: the checkout's weights/")
    args = parser.parse_args()
    path = ship_run(
        args.run, results=args.results, dtype=args.dtype, hardware=args.hardware, root=args.weights_dir
    )
    print(f"wrote {path} and its tensors")


if __name__ == "__main__":
    main()
