"""The table of every baseline run kept under ``results/baselines/`` (one folder per run).

    python benchmarks/baseline_results.py [--root results/baselines] [--best | --by-recipe]

Each run folder holds the ``test.json`` that ``python -m baselines.train`` wrote at the end
of the run (the test split scored once, with the checkpoint chosen on ``val``), its
``config.json``, the per-epoch ``history.json`` and the training log. ``--best`` keeps,
for each environment, protocol (fresh canvases or ``--train-size N``) and model, the run
with the best validation accuracy: model selection on ``val``, never on ``test``.
``--by-recipe`` groups the runs whose settings differ only in the seed (and in settings that
do not change what is trained, such as the run folder or the number of threads) and gives
the mean and the spread of val and test over each group's seeds: how far one run's number
says something about its recipe.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

from baselines.train import Args
from glimpse_engine.cli import RESUMABLE

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


#: settings that do not define a recipe: the seed, the run folder, the batch per update (derived:
#: batch_size x world_size) and those a ``--resume`` may change because they change where and how fast
#: a run goes, not what it trains (glimpse_engine.cli.RESUMABLE; a time limit does when it binds: such runs
#: say so in their epochs), but for ``epochs`` (see :func:`recipe`) and ``device``
NOT_RECIPE = (RESUMABLE - {"epochs", "device"}) | {"seed", "run_dir", "global_batch_size"}
#: the value a setting has when a run's config.json does not name it (it predates the setting)
DEFAULTS: dict[str, Any] = {field.name: field.default for field in dataclasses.fields(Args)}
DEFAULTS["world_size"] = 1
RECIPE_COLUMNS = [
    "env",
    "protocol",
    "model",
    "params",
    "device",
    "seeds",
    "val",
    "test",
    "test range",
    "runs",
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
                "recipe": recipe(config),
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


def recipe(config: dict[str, Any]) -> str:
    """The settings of a run's ``config`` that define what it trains, as one string: those
    that differ from their defaults (so a run made before a setting existed matches one that
    left it at its default), but none of :data:`NOT_RECIPE`, and not ``epochs`` under the
    plateau schedule, where it only caps a run that early stopping ends (a ``--resume DIR
    --epochs N`` records its own); under the cosine schedule it is the schedule's length."""
    capped = config.get("lr_schedule", "plateau") == "plateau"
    kept = {
        k: v
        for k, v in config.items()
        if k not in NOT_RECIPE and not (capped and k == "epochs") and (k not in DEFAULTS or v != DEFAULTS[k])
    }
    return json.dumps(kept, sort_keys=True)


def by_recipe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per recipe (runs whose configurations differ only in :data:`NOT_RECIPE`):
    the number of seeds, val and test as ``mean ± sample standard deviation`` (the mean
    alone for one seed), the range of test and the runs' folders."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["recipe"], []).append(row)
    table = []
    for runs in groups.values():
        first = runs[0]
        tests = [run["test"] for run in runs]
        table.append(
            {
                **{column: first[column] for column in ("env", "protocol", "model", "params", "device")},
                "seeds": len(runs),
                "val": spread([run["val"] for run in runs]),
                "test": spread(tests),
                "test range": f"{min(tests):.4f}-{max(tests):.4f}",
                "runs": ", ".join(run["run"] for run in runs),
            }
        )
    return sorted(table, key=lambda row: (row["env"], row["protocol"], row["model"], row["runs"]))


def spread(values: list[float]) -> str:
    """``mean ± sample standard deviation`` of ``values`` to 4 decimals (the mean alone for one)."""
    mean = statistics.fmean(values)
    return f"{mean:.4f}" if len(values) < 2 else f"{mean:.4f} ± {statistics.stdev(values):.4f}"


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
    parser.add_argument(
        "--by-recipe",
        action="store_true",
        help="one row per recipe: the mean and spread of val and test over its seeds",
    )
    parser.add_argument("--commands", action="store_true", help="print each row's command under the table")
    args = parser.parse_args()
    if args.best and args.by_recipe:
        parser.error("--best and --by-recipe are two views of the runs: give one")
    rows = load_runs(Path(args.root))
    if args.by_recipe:
        print_table(by_recipe(rows), RECIPE_COLUMNS)
        return
    if args.best:
        rows = best_by_val(rows)
    print_table(rows, COLUMNS, commands=args.commands)


if __name__ == "__main__":
    main()
