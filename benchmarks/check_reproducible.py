"""Show that a kept row's command determines its run: rerun its first epochs and compare.

    python benchmarks/check_reproducible.py results/ram/NAME [--epochs 2]

Reads the command that started the run (``test.json``'s ``command``), runs it again with
``--epochs K`` in a temporary run folder, and compares the first ``K`` entries of the new
history with the kept ``history.json``: the training reward, the loss and the validation
accuracy must be equal to the last bit (the training programs draw every random number
from streams seeded by ``--seed``; on the CPU with ``--threads 1`` they are
deterministic). Prints the comparison and exits 1 on any difference. The schedules of
these rows do not depend on ``--epochs`` (plateau, early stopping), so the first ``K``
epochs of the full command are these ``K`` epochs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from glimpse_engine.checkpoints import load_checkpoint

PROGRAMS = ("agents.ram_reinforce", "baselines.train")
COMPARED = ("train_reward", "loss", "train_loss", "val_accuracy")


def rerun_arguments(command: str, *, epochs: int, run_dir: str) -> tuple[str, list[str]]:
    """The program and arguments of ``command`` with ``--epochs`` and ``--run-dir`` replaced."""
    words = shlex.split(command)
    if words[:2] != ["python", "-m"] or words[2] not in PROGRAMS:
        raise SystemExit(f"error: not a training command of {' or '.join(PROGRAMS)}: {command}")
    kept: list[str] = []
    skip = False
    for word in words[3:]:
        if skip:
            skip = False
            continue
        if word in ("--epochs", "--run-dir", "--time-limit"):
            skip = True
            continue
        kept.append(word)
    return words[2], [*kept, "--epochs", str(epochs), "--run-dir", run_dir, "--no-progress"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a kept run under results/ (test.json, history.json)")
    parser.add_argument("--epochs", type=int, default=2, help="how many epochs to rerun")
    args = parser.parse_args()
    folder = Path(args.results)
    command = json.loads((folder / "test.json").read_text())["command"]
    kept = json.loads((folder / "history.json").read_text())[: args.epochs]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = str(Path(tmp) / "rerun")
        program, arguments = rerun_arguments(command, epochs=args.epochs, run_dir=run_dir)
        print("rerunning:", "python -m", program, shlex.join(arguments))
        subprocess.run([sys.executable, "-m", program, *arguments], check=True, stdout=subprocess.DEVNULL)
        rerun = load_checkpoint(Path(run_dir) / "checkpoints" / "last.pt")["history"]
    same = True
    for old, new in zip(kept, rerun, strict=True):
        for key in COMPARED:
            if key in old:
                equal = old[key] == new[key]
                same &= equal
                verdict = "equal" if equal else "DIFFERENT"
                print(f"epoch {old['epoch']} {key}: kept {old[key]!r}, rerun {new[key]!r}, {verdict}")
    print("the command determines the run" if same else "the rerun differs from the kept history")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
