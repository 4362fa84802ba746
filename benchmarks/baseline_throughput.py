"""Training images per second of the full-image baselines, and the share of canvas generation.

    python benchmarks/baseline_throughput.py [--env GlimpseMNIST-Cluttered-v0] [--updates 100] [--threads N]

For each model (``cnn``, ``self_attention``) the training step of ``python -m
baselines.train`` is timed on fresh canvases: ``--batch`` canvases drawn by the
environment's canvas API (:class:`glimpse_env.CanvasSource`), forward, cross-entropy,
backward and the Adam step. Rows: the whole step (images per second, and the share of it
spent making canvases), and the model alone on one fixed batch (what the step would cost
with free canvases). On a GPU every part is timed to the end of its kernels. ``--busy K``
times it with ``K`` competing CPU-bound processes (as ``env_throughput.py``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import busy, machine, print_table, write_json
from torch.nn import functional as F

from baselines.models import MODEL_NAMES, as_inputs, build_model, count_parameters
from glimpse_env import CanvasSource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="GlimpseMNIST-Cluttered-v0")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--updates", type=int, default=100, help="updates timed per row")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="competing CPU-bound processes while timing (see env_throughput.py)",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    source = CanvasSource.from_id(args.env, split="train", device=device)
    rows = []
    with busy(args.busy):
        for name in MODEL_NAMES:
            torch.manual_seed(0)
            model = build_model(name, source.shape, source.num_classes).to(device)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            rng = np.random.default_rng(0)

            def step(canvases: torch.Tensor, labels: torch.Tensor) -> None:
                loss = F.cross_entropy(model(as_inputs(canvases)), labels)  # noqa: B023
                optimizer.zero_grad(set_to_none=True)  # noqa: B023
                loss.backward()
                optimizer.step()  # noqa: B023

            canvas_seconds = 0.0
            for update in range(args.warmup + args.updates):
                if update == args.warmup:
                    sync()
                    canvas_seconds, start = 0.0, time.perf_counter()
                sync()
                made = time.perf_counter()
                canvases, labels = source.fresh(args.batch, rng)
                sync()
                canvas_seconds += time.perf_counter() - made
                step(canvases, labels)
            sync()
            total = time.perf_counter() - start
            fixed = source.fresh(args.batch, 1)
            for _ in range(args.warmup):
                step(*fixed)
            sync()
            start = time.perf_counter()
            for _ in range(args.updates):
                step(*fixed)
            sync()
            model_alone = time.perf_counter() - start
            images = args.updates * args.batch
            rows.append(
                {
                    "model": name,
                    "params": count_parameters(model),
                    "images/s (training)": images / total,
                    "canvas share": f"{100 * canvas_seconds / total:.1f}%",
                    "canvases/s (alone)": images / canvas_seconds,
                    "images/s (model alone)": images / model_alone,
                    "s per 55,000-image epoch": 55_000 * total / images,
                }
            )
    print(f"{args.env}, batch {args.batch}, {args.updates} updates per row, {args.busy} busy, {machine()}")
    print_table(rows, list(rows[0]))
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
