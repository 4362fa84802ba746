"""Keep a finished training run's results in the repository (``results/``).

    python benchmarks/collect_run.py RUN_DIR results/ram/NAME [--log RUN.log]

Copies what a stranger needs to check the run without its checkpoints: ``config.json``,
``commands.json``, ``results/test.json`` (as ``test.json``), the per-epoch history of its
last checkpoint (as ``history.json``) and, with ``--log``, the training output (as
``train.log``). The weights themselves ship separately (``benchmarks/ship_weights.py``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from glimpse_engine.checkpoints import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="the run folder")
    parser.add_argument("out", help="the folder under results/ to write")
    parser.add_argument("--log", default=None, help="the run's captured output, kept as train.log")
    args = parser.parse_args()
    run, out = Path(args.run), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "commands.json"):
        shutil.copyfile(run / name, out / name)
    shutil.copyfile(run / "results" / "test.json", out / "test.json")
    history = load_checkpoint(run / "checkpoints" / "last.pt")["history"]
    (out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    if args.log:
        shutil.copyfile(args.log, out / "train.log")
    print(f"kept {run} in {out}")


if __name__ == "__main__":
    main()
