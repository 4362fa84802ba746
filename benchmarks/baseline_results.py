"""The table of every baseline run kept under ``results/baselines/`` (one folder per run).

    python benchmarks/baseline_results.py [--root results/baselines] [--best]

Each run folder holds the ``test.json`` that ``python -m baselines.train`` wrote at the end
of the run (the test split scored once, with the checkpoint chosen on ``val``), its
``config.json``, the per-epoch ``history.json`` and the training log. ``--best`` keeps,
for each environment, protocol (fresh canvases or ``--train-size N``) and model, the run
with the best validation accuracy: model selection on ``val``, never on ``test``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

COLUMNS = [
    "env",
    "protocol",
    "model",
    "params",
    "epochs (best)",
    "train min",
    "device",
    "val",
    "test",
    "95% CI",
    "run",
]


def load_runs(root: Path) -> list[dict[str, Any]]:
    """One row per run folder of ``root`` that holds a ``test.json``."""
    rows = []
    for result_file in sorted(root.glob("*/test.json")):
        result = json.loads(result_file.read_text())
        config = result["config"]
        rows.append(
            {
                "env": result["env_id"],
                "protocol": "fresh" if config["train_size"] is None else f"train_size {config['train_size']}",
                "model": result["model"],
                "params": f"{result['params']:,}",
                "epochs (best)": f"{result['epochs']} ({result['best_epoch']})",
                "train min": f"{result['train_seconds'] / 60:.1f}",
                "device": result.get("device", "cpu"),
                "val": result["val_accuracy"],
                "test": result["accuracy"],
                "95% CI": "{:.4f}-{:.4f}".format(*result["ci95"]),
                "run": result_file.parent.name,
                "command": result["command"],
            }
        )
    return rows


def best_by_val(
    rows: list[dict[str, Any]], fields: tuple[str, ...] = ("env", "protocol", "model")
) -> list[dict[str, Any]]:
    """For each combination of ``fields``: the row with the highest ``row["val"]`` (the
    first of equals), in the order of the combinations."""
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[field] for field in fields)
        if key not in best or row["val"] > best[key]["val"]:
            best[key] = row
    return [best[key] for key in sorted(best)]


def print_table(rows: list[dict[str, Any]], columns: list[str], *, commands: bool = False) -> None:
    """``rows`` as a markdown table of ``columns`` (floats to 4 decimals); with ``commands``,
    each row's ``run: command`` under it."""
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for row in rows:
        cells = [f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        print("| " + " | ".join(cells) + " |")
    if commands:
        for row in rows:
            print(f"{row['run']}: {row['command']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[1] / "results" / "baselines"))
    parser.add_argument(
        "--best", action="store_true", help="only the best run by val per env, protocol, model"
    )
    parser.add_argument("--commands", action="store_true", help="print each row's command under the table")
    args = parser.parse_args()
    rows = load_runs(Path(args.root))
    if args.best:
        rows = best_by_val(rows)
    print_table(rows, COLUMNS, commands=args.commands)


if __name__ == "__main__":
    main()
