"""The runs tables of the results pages, generated from the run folders kept under ``results/``.

    python benchmarks/results_tables.py {ram,baselines,rppo} [--results results]

One row per kept run, with the one command bounded by work (epochs or steps, never a time
limit, a chain of ``--resume``s or a hand stop) that trains it to where it ended
(:func:`_common.bounded_command`) and how it ended (:func:`_common.how_it_ended`: its
budget, early stopping, a time limit, or by hand):

- ``ram``: every ``results/ram/<run>/`` with a ``test.json`` (``python -m
  agents.ram_reinforce``'s own test, M=1 and M=10) or a ``test_mc10.json`` (``python -m
  agents.evaluate``, runs stopped before their test; their ``config.json`` and ``train.log``
  say what they trained);
- ``baselines``: every ``results/baselines/<run>/test.json`` (``python -m baselines.train``),
  the columns of ``benchmarks/baseline_results.py`` and the command;
- ``rppo``: every ``results/rppo/**/test.json`` (``examples/recurrent_ppo.py``; the sweep's
  runs under ``sweep/`` were scored on the first 2,000 or 3,000 canvases of val and test).

A run whose learning-rate schedule decays over a budget it did not reach (a cosine schedule
cut by a time limit) has no such command: its row says so. The docs build
(``docs/gen_pages.py``) puts these tables into the results pages at their markers.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import glimpse_env  # noqa: F401  (registers the environments)
from glimpse_env.registration import ENV_SPECS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    NOT_IN_COMMAND,
    NotReproducible,
    bounded_command,
    command_from_config,
    how_it_ended,
    trainer_args,
)
from baseline_results import COLUMNS as BASELINE_COLUMNS
from baseline_results import load_runs

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
#: the registered ids, in the registration's order (the tables' order of environments)
ENV_ORDER = {spec.env_id: i for i, spec in enumerate(ENV_SPECS)}
#: settings that the setting summary leaves out: the environment (a column of its own), the
#: budget (in the command), and those that change where and how fast a run goes, not what it trains
NOT_A_SETTING = NOT_IN_COMMAND | {"env", "epochs", "threads", "device", "eval_batch_size", "image_every"}

RAM_COLUMNS = [
    "env",
    "settings (not the defaults)",
    "run (`results/ram/`)",
    "command",
    "epochs (best)",
    "ended",
    "train time",
    "val",
    "test M=1",
    "test M=10",
    "date",
]
BASELINE_TABLE_COLUMNS = [*BASELINE_COLUMNS, "ended", "command"]
RPPO_COLUMNS = [
    "env",
    "action",
    "run (`results/rppo/`)",
    "steps",
    "train time",
    "ended",
    "canvases (val, test)",
    "val",
    "test (95% CI)",
    "command",
]

_EPOCH = re.compile(r"^epoch (\d+):.*val accuracy ([\d.]+)( \(best\))?.* ([\d.]+) s \(")
_PARAMS = re.compile(r"([\d,]+) parameters")


def command_cell(result: dict[str, Any], log: str | None = None) -> str:
    """The bounded command in code, or why the run has none."""
    try:
        return f"`{bounded_command(result, log)}`"
    except NotReproducible as error:
        return str(error)


def settings_summary(config: dict[str, Any], program: str) -> str:
    """The settings of ``config`` that differ from the trainer's defaults, but
    :data:`NOT_A_SETTING`: ``name value, ...`` (``default settings`` where none do)."""
    defaults = {field.name: field.default for field in dataclasses.fields(trainer_args(program))}
    shown = [
        f"{name} {value}"
        for name, value in config.items()
        if name in defaults and name not in NOT_A_SETTING and value != defaults[name]
    ]
    return ", ".join(shown) or "default settings"


@functools.cache
def committed_dates(root: Path = ROOT) -> dict[str, str]:
    """``path -> date`` (YYYY-MM-DD) of the last commit that changed each file under
    ``results/``, from git's history; empty outside a git checkout or in a shallow clone (whose
    dates are not the runs')."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=60
        ).stdout

    try:
        if git("rev-parse", "--is-shallow-repository").strip() != "false":
            return {}
        log = git("log", "--format=@%ad", "--date=short", "--name-only", "--", "results")
    except (OSError, subprocess.SubprocessError):
        return {}
    dates: dict[str, str] = {}
    date = ""
    for line in log.splitlines():
        if line.startswith("@"):
            date = line[1:]
        elif line:
            dates.setdefault(line, date)  # newest first
    return dates


def _date(path: Path) -> str:
    try:
        return committed_dates().get(path.resolve().relative_to(ROOT).as_posix(), "")
    except ValueError:  # not under the repository
        return ""


def _minutes(seconds: float, device: str) -> str:
    return f"{seconds / 60:.0f} min ({'CPU' if device == 'cpu' else 'GPU'})"


def ram_run(folder: Path) -> dict[str, Any] | None:
    """The kept RAM run of ``folder`` as a ``test.json`` of ``python -m agents.ram_reinforce``
    (``accuracy`` M=10, ``test_mc1``, ``val_accuracy``, ``epochs``, ``best_epoch``,
    ``train_seconds``, ``params``, ``config``, ``command``), with ``log`` (its ``train.log``) and
    ``result_file``; None for a folder without a result. A run scored by ``agents.evaluate``
    (``test_mc10.json``, ``test_mc1.json``) gets the rest from its ``config.json`` and log, and
    the command rebuilt from the config (:func:`_common.command_from_config`)."""
    log_file = folder / "train.log"
    log = log_file.read_text() if log_file.is_file() else None
    if (folder / "test.json").is_file():
        result_file = folder / "test.json"
        result = json.loads(result_file.read_text())
        if "config" not in result:
            result["config"] = json.loads((folder / "config.json").read_text())
        result = {**result, "accuracy": result.get("test_mc10", result)["accuracy"]}
    elif (folder / "test_mc10.json").is_file() and log is not None:
        result_file = folder / "test_mc10.json"
        scored = json.loads(result_file.read_text())
        config = json.loads((folder / "config.json").read_text())
        epochs: dict[int, re.Match[str]] = {}
        for match in map(_EPOCH.match, log.splitlines()):
            if match:
                epochs[int(match.group(1))] = match  # a resumed epoch counts once, its last time
        best = max((n for n, m in epochs.items() if m.group(3)), default=None)
        mc1 = folder / "test_mc1.json"
        params = next((m.group(1) for m in map(_PARAMS.search, log.splitlines()) if m), "0")
        result = {
            "env_id": scored.get("env_id", config.get("env")),
            "accuracy": scored["accuracy"],
            "ci95": scored["ci95"],
            "val_accuracy": float(epochs[best].group(2)) if best is not None else None,
            "epochs": max(epochs, default=0),
            "best_epoch": best,
            "train_seconds": sum(float(m.group(4)) for m in epochs.values()),
            "params": int(params.replace(",", "")),
            "config": config,
            "command": command_from_config(config, "agents.ram_reinforce"),
        }
        if mc1.is_file():
            result["test_mc1"] = json.loads(mc1.read_text())
    else:
        return None
    return {**result, "log": log, "result_file": result_file}


def _accuracy(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def ram_rows(results: Path = RESULTS) -> list[dict[str, Any]]:
    """One row of :data:`RAM_COLUMNS` per kept RAM run, by environment, then best val first."""
    rows = []
    for folder in sorted(path for path in (results / "ram").iterdir() if path.is_dir()):
        run = ram_run(folder)
        if run is None:
            continue
        config, log = run["config"], run["log"]
        best = run.get("best_epoch")
        rows.append(
            {
                "env": f"`{run['env_id']}`",
                "env_id": run["env_id"],
                "settings (not the defaults)": settings_summary(config, "agents.ram_reinforce"),
                "run (`results/ram/`)": f"`{folder.name}`",
                "run": folder.name,
                "command": command_cell(run, log),
                "epochs (best)": f"{run['epochs']} ({best if best is not None else '?'})",
                "ended": how_it_ended(run, log),
                "train time": _minutes(run["train_seconds"], config.get("device", "cpu")),
                "val": _accuracy(run.get("val_accuracy")),
                "val_accuracy": run.get("val_accuracy") or 0.0,
                "test M=1": _accuracy(run["test_mc1"]["accuracy"]) if "test_mc1" in run else "",
                "test M=10": _accuracy(run["accuracy"]),
                "date": _date(run["result_file"]),
            }
        )
    rows.sort(key=lambda row: (ENV_ORDER.get(row["env_id"], len(ENV_ORDER)), -row["val_accuracy"]))
    return rows


def baseline_rows(results: Path = RESULTS) -> list[dict[str, Any]]:
    """One row per kept baseline run: the columns of ``benchmarks/baseline_results.py`` with
    how it ended and the bounded command; by environment, protocol and model, best val first."""
    rows = []
    for row in load_runs(results / "baselines"):
        folder = results / "baselines" / row["run"]
        result = json.loads((folder / "test.json").read_text())
        log_file = folder / "train.log"
        log = log_file.read_text() if log_file.is_file() else None
        rows.append(
            {
                **row,
                "run": f"`{row['run']}`",
                "folder": row["run"],
                "ended": how_it_ended(result, log),
                "command": command_cell(result, log),
            }
        )
    rows.sort(key=lambda r: (ENV_ORDER.get(r["env"], len(ENV_ORDER)), r["protocol"], r["model"], -r["val"]))
    return [{**row, "env": f"`{row['env']}`", "env_id": row["env"]} for row in rows]


def rppo_rows(results: Path = RESULTS) -> list[dict[str, Any]]:
    """One row per kept RecurrentPPO run (the full runs, then the sweep's), by environment,
    action form and val."""
    rows = []
    for path in sorted((results / "rppo").rglob("test.json")):
        result = json.loads(path.read_text())
        low, high = result["ci95"]
        run = str(path.parent.relative_to(results / "rppo"))
        rows.append(
            {
                "env": f"`{result['env_id']}`",
                "env_id": result["env_id"],
                "action": result["hyperparameters"]["action"],
                "run (`results/rppo/`)": f"`{run}`",
                "run": run,
                "steps": f"{result['steps'] / 1e6:.2f}M",
                "train time": _minutes(result["train_seconds"], "cpu"),
                "ended": how_it_ended(result),
                "canvases (val, test)": f"{result.get('val_n', '?'):,}, {result['n']:,}",
                "val": f"{result['val_accuracy']:.4f}",
                "val_accuracy": result["val_accuracy"],
                "test (95% CI)": f"{result['accuracy']:.4f} ({low:.4f}-{high:.4f})",
                "command": command_cell(result),
            }
        )
    rows.sort(
        key=lambda row: (
            row["run"].startswith("sweep/"),
            ENV_ORDER.get(row["env_id"], len(ENV_ORDER)),
            row["action"],
            -row["val_accuracy"],
        )
    )
    return rows


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """``rows`` as a markdown table of ``columns`` (floats to 4 decimals)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        cells = [f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def _counts(rows: list[dict[str, Any]]) -> str:
    ended = [row["ended"] for row in rows]
    parts = [f"{ended.count(how)} {how}" for how in ("budget", "early stop", "time limit", "stopped by hand")]
    cut = sum(not row["command"].startswith("`") for row in rows)
    return f"{len(rows)} runs: " + ", ".join(parts) + f"; {cut} not reproducible from one command.\n"


def ram_table(results: Path = RESULTS) -> str:
    rows = ram_rows(results)
    return markdown_table(rows, RAM_COLUMNS) + "\n" + _counts(rows)


def baseline_table(results: Path = RESULTS) -> str:
    rows = baseline_rows(results)
    return markdown_table(rows, BASELINE_TABLE_COLUMNS) + "\n" + _counts(rows)


def rppo_table(results: Path = RESULTS) -> str:
    rows = rppo_rows(results)
    return markdown_table(rows, RPPO_COLUMNS) + "\n" + _counts(rows)


#: the tables by name: ``python benchmarks/results_tables.py NAME`` and the docs' markers
TABLES: dict[str, Callable[[Path], str]] = {"ram": ram_table, "baselines": baseline_table, "rppo": rppo_table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", choices=sorted(TABLES), help="which runs")
    parser.add_argument("--results", default=str(RESULTS), help="the results folder")
    args = parser.parse_args()
    print(TABLES[args.table](Path(args.results)), end="")


if __name__ == "__main__":
    main()
