"""Training throughput of the RAM and the CNN under torchrun, by number of processes.

    python benchmarks/ddp_scaling.py [--procs 1 2] [--device cpu] [--json out.json]

For each program and each process count ``P`` it runs ``torchrun --standalone
--nproc_per_node=P`` for ``--epochs`` short epochs (``--images`` episodes or images each,
split over the ranks: ``--batch-size`` per rank) and reports the images per second of the
last epoch (the first one warms up), read from the run's checkpoint, and the speed-up
over one process. On the CPU every rank runs one torch thread (torchrun's default); the
row ``1 process, T threads`` shows one process with ``--threads`` threads for comparison.

- ``ram``: ``python -m agents.ram_reinforce`` on ``GlimpseMNIST-v0`` (6 glimpses, hidden 256);
- ``cnn``: ``python -m baselines.train --model cnn`` on ``GlimpseMNIST-Cluttered-v0``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import machine, print_table, write_json

from glimpse_engine.checkpoints import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = {
    "ram": [
        "agents.ram_reinforce",
        *("--env", "GlimpseMNIST-v0", "--eval-episodes", "500", "--episodes-per-epoch"),
    ],
    "cnn": ["baselines.train", "--model", "cnn", "--env", "GlimpseMNIST-Cluttered-v0", "--images-per-epoch"],
}


def images_per_second(module_args: list[str], *, procs: int, threads: int, args: argparse.Namespace) -> float:
    """Images (episodes) per second of the last epoch of one torchrun job."""
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
        command += ["-m", *module_args, str(args.images), "--batch-size", str(args.batch_size)]
        command += ["--epochs", str(args.epochs), "--run-dir", str(run), "--device", args.device]
        command += ["--threads", str(threads), "--image-every", "0", "--no-progress"]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        history = load_checkpoint(run / "checkpoints" / "last.pt")["history"]
        return args.images / history[-1]["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--programs", nargs="+", default=list(PROGRAMS), choices=list(PROGRAMS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=16384, help="episodes or images per epoch, all ranks")
    parser.add_argument("--batch-size", type=int, default=128, help="per rank")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="threads of the one-process comparison row")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for program in args.programs:
        single = None
        settings = [(p, 1) for p in args.procs]
        if args.device == "cpu" and args.threads > 1:
            settings.insert(1, (1, args.threads))
        for procs, threads in settings:
            rate = images_per_second(PROGRAMS[program], procs=procs, threads=threads, args=args)
            if single is None:
                single = rate
            label = f"{procs} process{'es' if procs > 1 else ''}"
            label += f", {threads} threads" if threads > 1 else ""
            rows.append(
                {
                    "program": program,
                    "setting": label,
                    "global batch": procs * args.batch_size,
                    "images/s": rate,
                    "speed-up": f"{rate / single:.2f}x",
                }
            )
    info = machine()
    print(
        f"{info['cores']} cores, device {args.device}, {args.images} images per epoch, "
        f"batch {args.batch_size} per rank"
    )
    print_table(rows, ["program", "setting", "global batch", "images/s", "speed-up"])
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
