"""Choose the location policy's standard deviation on ``val``: short RAM runs, one per std.

    python benchmarks/ram_std_sweep.py [--env GlimpseMNIST-Cluttered-v0] [--epochs 8]
        [--stds 0.05 0.1 0.17 0.25] [--run-root runs/std-sweep] [--json out.json] [-- extra flags]

Every run is ``python -m agents.ram_reinforce`` with the same settings but ``--std``
(flags after ``--`` are passed on to every run). The table gives each run's best
validation accuracy and its epoch; the choice is the std with the best one. The test split
is never looked at to choose (each run still ends with its test evaluation, kept in its run
folder, as every training run does).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _common import machine, print_table, write_json

from agents import ram_reinforce


def main() -> None:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="GlimpseMNIST-Cluttered-v0")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--stds", type=float, nargs="+", default=[0.05, 0.1, 0.17, 0.25])
    parser.add_argument("--run-root", default="runs/std-sweep")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    rows = []
    for std in args.stds:
        run_dir = Path(args.run_root) / f"std{std:g}"
        start = time.perf_counter()
        flags = [
            "--env",
            args.env,
            "--std",
            str(std),
            "--epochs",
            str(args.epochs),
            "--run-dir",
            str(run_dir),
        ]
        results = ram_reinforce.main(
            [*flags, "--overwrite", "--no-progress", "--test-mc-samples", "1", *extra]
        )
        rows.append(
            {
                "std": std,
                "best val": results["val_accuracy"],
                "best epoch": results["best_epoch"],
                "epochs": results["epochs"],
                "minutes": (time.perf_counter() - start) / 60,
            }
        )
        print(rows[-1], flush=True)
    best = max(rows, key=lambda row: row["best val"])
    print(f"\n{args.env}, {args.epochs} epochs per run, extra flags {extra}; {machine()}")
    print_table(rows, ["std", "best val", "best epoch", "epochs", "minutes"])
    print(f"best on val: std = {best['std']:g}")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
