"""The leaderboard: one table per environment, every agent scored by the evaluation protocol.

    python benchmarks/leaderboard.py [--results results] [--commands | --headline]

Reads the JSON files the programs wrote under ``results/`` (nothing is typed in by hand):

- random policy: ``results/random/<env>.json``, from ``python -m glimpse_env.evaluate
  --env ID --policy random --json ...``;
- RecurrentPPO: ``results/rppo/<run>/test.json``, from ``examples/recurrent_ppo.py`` (the
  deterministic policy, scored on the whole test split at the end of the run); for each
  environment and action form the run with the best ``val_accuracy``;
- RAM: the runs of :data:`RAM_RUNS` (the best by ``val`` of the RAM table,
  ``docs/results/ram.md``), scored by
  ``python -m agents.evaluate`` or at the end of ``python -m agents.ram_reinforce``;
- the CNN and self-attention baselines: for each environment and model the fresh-canvas run
  with the best ``val_accuracy`` under ``results/baselines/`` (as
  ``benchmarks/baseline_results.py --best`` picks them). They see the whole canvas at once:
  full-image references, not glimpse agents.

Every accuracy is on the whole test split (10,000 canvases) with its 95% Wilson interval.
``--headline`` prints one table instead: for every registered environment, the test accuracy
of the RAM, the CNN, the self-attention model, the best RecurrentPPO (by ``val``) and the
random policy (the README's headline table; "not yet run" where no result is kept). The docs
build (``docs/gen_pages.py``) puts this script's output into the site.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym

import glimpse_env  # noqa: F401  (registers the environments)
from glimpse_env.registration import ENV_SPECS
from glimpse_env.task import TaskConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bounded_command, how_it_ended
from baseline_results import best_by_val, load_runs, print_table
from results_tables import ram_run

from glimpse_engine.weights import shipped

#: every registered id, in the registration's order
ENVS = tuple(spec.env_id for spec in ENV_SPECS)
#: the columns of the full tables (``--commands`` adds ``command``)
COLUMNS = ["agent", "test accuracy (95% CI)", "M", "glimpses", "params", "training", "weights"]
#: the columns of ``--headline``
HEADLINE_COLUMNS = ["env", "published RAM", "RAM", "CNN", "self-attention", "best RecurrentPPO", "random"]
#: the published accuracy of the RAM on each id's task, and where it is from (the RAM paper,
#: Mnih et al. 2014, at the id's glimpses; the study, Wu et al., where the id is the study's;
#: the study's cluttered number is on 10,000 fixed training canvases)
PUBLISHED = {
    "GlimpseMNIST-v0": "0.9871 (RAM paper: 1.29% error)",
    "GlimpseMNIST-Translated-v0": "0.9880 (RAM paper: 1.20% error)",
    "GlimpseMNIST-Cluttered-v0": "0.919 (the study, 10,000 training canvases)",
    "GlimpseMNIST-Cluttered60-v0": "0.9596 (RAM paper: 4.04% error)",
    "GlimpseMNIST-Cluttered100-v0": "0.8917 (RAM paper: 10.83% error)",
    "GlimpseMNIST-Fashion-v0": "0.867 (the study)",
}
#: a headline cell without a kept result
NOT_RUN = "not yet run"


def glimpses(env_id: str) -> str:
    """What an agent sees per episode of ``env_id`` (its registered defaults)."""
    config = TaskConfig(**gym.spec(env_id).kwargs)
    scales = "one" if config.n_scales == 1 else str(config.n_scales)
    size = f"{config.patch_size}x{config.patch_size}"
    return f"{config.n_glimpses} x {scales} {size} scale{'s' if config.n_scales > 1 else ''}"


#: The RAM rows where no RAM ships yet: the best by ``val`` of the RAM table
#: (``docs/results/ram.md``), a folder under ``results/ram``.
RAM_RUNS = {
    "GlimpseMNIST-Cluttered-v0": "ram-cluttered-lstm-ema",
    "GlimpseMNIST-Fashion-v0": "ram-fashion-rnn512g-d1-ema-rand",
}


def _accuracy(result: dict[str, Any]) -> str:
    low, high = result["ci95"]
    return f"{result['accuracy']:.4f} ({low:.4f}-{high:.4f})"


def _row(
    agent: str,
    result: dict[str, Any],
    *,
    glimpses: str,
    params: str,
    budget: str,
    command: str,
    weights: str = "",
) -> dict:
    return {
        "agent": agent,
        "test accuracy (95% CI)": _accuracy(result),
        "M": str(result.get("mc_samples") or 1),
        "glimpses": glimpses,
        "params": params,
        "training": budget,
        "command": command,
        "weights": weights or "not shipped",
    }


def shipped_runs(results: Path) -> dict[tuple[str, str], str]:
    """``(env_id, kind) -> `` the folder under ``results/`` of each row whose weights ship
    (the ``weights/`` folder beside ``results``; see :mod:`glimpse_engine.weights`): the
    leaderboard's row for that agent."""
    root = results.parent / "weights"
    runs = {}
    for env_id, kind in shipped(root):
        card = json.loads((root / env_id / f"{kind}.json").read_text())
        runs[env_id, kind] = card["results"]
    return runs


#: how a shipped row is scored from its weights, per kind
PRETRAINED_COMMAND = {
    "ram": "python -m agents.evaluate --pretrained {env}",
    "cnn": "python -m baselines.evaluate --pretrained {env} --model cnn",
    "self_attention": "python -m baselines.evaluate --pretrained {env} --model self_attention",
}


def random_row(results: Path, env_id: str) -> dict | None:
    path = results / "random" / f"{env_id}.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    out = path.relative_to(results.parent)
    command = f"python -m glimpse_env.evaluate --env {env_id} --policy random --json {out}"
    return _row(
        "random policy", result, glimpses=glimpses(env_id), params="0", budget="none", command=command
    )


def rppo_runs(results: Path, env_id: str) -> list[dict]:
    """The RecurrentPPO runs of ``env_id``: for each action form and training reward
    (``--reward``: ``terminal``, the default and every run's before the option, or
    ``every_step``), the one with the best val."""
    runs = []
    for path in sorted((results / "rppo").glob("*/test.json")):
        result = json.loads(path.read_text())
        if result["env_id"] == env_id:
            settings = result["hyperparameters"]
            action, reward = settings["action"], settings.get("reward", "terminal")
            runs.append({"action": action, "reward": reward, "val": result["val_accuracy"], "result": result})
    return best_by_val(runs, fields=("action", "reward"))


def _rppo_form(run: dict[str, Any]) -> str:
    """A RecurrentPPO row's action form, and its training reward where it is not the terminal one."""
    return run["action"] + (
        "" if run["reward"] == "terminal" else f", {run['reward'].replace('_', '-')} reward"
    )


def rppo_rows(results: Path, env_id: str) -> list[dict]:
    rows = []
    for run in rppo_runs(results, env_id):
        result = run["result"]
        budget = f"{result['steps'] / 1e6:.2f}M steps, {result['train_seconds'] / 60:.0f} min (CPU)"
        rows.append(
            _row(
                f"RecurrentPPO, {_rppo_form(run).replace(run['action'], run['action'] + ' actions', 1)}",
                result,
                glimpses=glimpses(env_id),
                params=f"{result['params']:,}",
                budget=_ended(budget, result),
                command=bounded_command(result),
            )
        )
    return rows


def _ended(budget: str, result: dict[str, Any], log: str | None = None) -> str:
    """``budget``, with how the kept run ended where that was not by itself (its command is then
    the one that trains it to where it ended: :func:`_common.bounded_command`)."""
    ended = how_it_ended(result, log)
    return budget if ended in ("budget", "early stop") else f"{budget}; kept run: {ended}"


def ram_row(results: Path, env_id: str) -> dict | None:
    """The RAM's row: the shipped run where one ships, else :data:`RAM_RUNS`'s (read by
    :func:`results_tables.ram_run`, which also reads runs scored by ``agents.evaluate``)."""
    shipped_folder = shipped_runs(results).get((env_id, "ram"))
    if shipped_folder is not None:
        folder = results.parent / shipped_folder
    elif env_id in RAM_RUNS:
        folder = results / "ram" / RAM_RUNS[env_id]
    else:
        return None
    result = ram_run(folder)
    if result is None:
        return None
    config, log = result["config"], result["log"]
    device = "CPU" if config.get("device", "cpu") == "cpu" else "H200"
    budget = f"{result['epochs']} epochs, {result['train_seconds'] / 60:.0f} min ({device})"
    scored = result.get("test_mc10", result)  # the training script's own test holds M=1 and M=10
    return _row(
        f"RAM ({config['core']} core)",
        {**scored, "mc_samples": scored.get("mc_samples", config.get("test_mc_samples", 10))},
        glimpses=glimpses(env_id),
        params=f"{result['params']:,}",
        budget=_ended(budget, result, log),
        command=bounded_command(result, log),
        weights=PRETRAINED_COMMAND["ram"].format(env=env_id) if shipped_folder else "",
    )


def baseline_rows(results: Path, env_id: str) -> list[dict]:
    """The CNN's and the self-attention model's rows: the shipped run where one ships, else the
    fresh-canvas run with the best val."""
    ships = shipped_runs(results)
    rows = []
    for run in best_by_val(load_runs(results / "baselines")):
        if run["env"] != env_id or run["protocol"] != "fresh":
            continue
        shipped_folder = ships.get((env_id, run["model"]))
        folder = results.parent / shipped_folder if shipped_folder else results / "baselines" / run["run"]
        result = json.loads((folder / "test.json").read_text())
        name = {"cnn": "CNN", "self_attention": "CNN + self-attention"}[run["model"]]
        device = "H200" if result.get("device", "cpu") != "cpu" else "CPU"
        budget = f"{result['epochs']} epochs, {result['train_seconds'] / 60:.0f} min ({device})"
        rows.append(
            _row(
                name,
                result,
                glimpses="whole canvas",
                params=f"{result['params']:,}",
                budget=_ended(budget, result),
                command=bounded_command(result),
                weights=PRETRAINED_COMMAND[run["model"]].format(env=env_id) if shipped_folder else "",
            )
        )
    return rows


def leaderboard(results: Path) -> dict[str, list[dict]]:
    """For each environment of :data:`ENVS`, its rows in the leaderboard's order."""
    tables = {}
    for env_id in ENVS:
        found = [random_row(results, env_id), *rppo_rows(results, env_id), ram_row(results, env_id)]
        rows = [row for row in found if row is not None] + baseline_rows(results, env_id)
        if rows:
            tables[env_id] = rows
    return tables


def table(rows: list[dict], columns: list[str]) -> str:
    """``rows`` as the markdown table :func:`baseline_results.print_table` prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_table(rows, columns)
    return out.getvalue()


def markdown(results: Path, *, commands: bool = False, level: int = 4) -> str:
    """The leaderboard as markdown: a heading of ``level`` per environment, then its table."""
    columns = COLUMNS + (["command"] if commands else [])
    parts = []
    for env_id, rows in leaderboard(results).items():
        parts.append(f"\n{'#' * level} `{env_id}`\n\n")
        quoted = [{**row, "command": f"`{row['command']}`", "weights": _code(row["weights"])} for row in rows]
        parts.append(table(quoted, columns))
    return "".join(parts)


def _code(text: str) -> str:
    return f"`{text}`" if text.startswith("python") else text


def _accuracy_only(row: dict | None) -> str:
    return row["test accuracy (95% CI)"].split()[0] if row else NOT_RUN


def headline(results: Path, env_ids: tuple[str, ...] | None = None) -> list[dict[str, str]]:
    """One row per environment (default: every registered id): the test accuracy of each
    agent's leaderboard row, and of the RecurrentPPO action form with the best val."""
    rows = []
    for env_id in env_ids or tuple(spec.env_id for spec in ENV_SPECS):
        baselines = {row["agent"]: row for row in baseline_rows(results, env_id)}
        runs = rppo_runs(results, env_id)
        if runs:
            best = max(runs, key=lambda run: run["val"])  # the first of equals
            rppo = f"{best['result']['accuracy']:.4f} ({_rppo_form(best)})"
        else:
            rppo = NOT_RUN
        rows.append(
            {
                "env": f"`{env_id}`",
                "published RAM": PUBLISHED.get(env_id, "none"),
                "RAM": _accuracy_only(ram_row(results, env_id)),
                "CNN": _accuracy_only(baselines.get("CNN")),
                "self-attention": _accuracy_only(baselines.get("CNN + self-attention")),
                "best RecurrentPPO": rppo,
                "random": _accuracy_only(random_row(results, env_id)),
            }
        )
    return rows


def headline_markdown(results: Path) -> str:
    """The ``--headline`` table, as printed."""
    return table(headline(results), HEADLINE_COLUMNS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=str(Path(__file__).resolve().parents[1] / "results"))
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--commands", action="store_true", help="a command column in the tables")
    output.add_argument(
        "--headline", action="store_true", help="one table: each environment's accuracy per agent"
    )
    args = parser.parse_args()
    if args.headline:
        print(headline_markdown(Path(args.results)), end="")
        return
    print(markdown(Path(args.results), commands=args.commands), end="")


if __name__ == "__main__":
    main()
