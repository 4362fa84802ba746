"""Helpers shared by the benchmark scripts: timing, machine description, table output."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import torch

from glimpse_engine.scoring import RunArgs

#: a competing CPU-bound process: a pure-Python loop (linear congruential steps) that imports nothing
SPIN = "print(flush=True)\nx = 0\nwhile True:\n    x = (x * 1103515245 + 12345) & 0xFFFFFFFF"


@contextlib.contextmanager
def busy(k: int) -> Iterator[None]:
    """``k`` competing CPU-bound processes, running while the block runs."""
    workers = [subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE) for _ in range(k)]
    try:
        for worker in workers:
            assert worker.stdout is not None
            worker.stdout.readline()  # started: spinning before the timing starts
        yield
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()


def median_seconds(fn: Callable[[], object], *, repeats: int, warmup: int = 2, sync: bool = False) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "date": date.today().isoformat(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A markdown table of ``rows`` restricted to ``columns``."""

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
        return str(value)

    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |")


def write_json(path: str | None, rows: list[dict[str, Any]]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))


#: settings of a trainer's ``config.json`` that a command rebuilt from it leaves out: where the run
#: goes and how it is watched, what ``--resume`` continues, and a time limit (a results row is one
#: command bounded by work); ``world_size`` and ``global_batch_size`` are derived (``torchrun``)
NOT_IN_COMMAND = frozenset(
    {"run_dir", "resume", "overwrite", "progress", "time_limit", "data_dir"}
    | {"world_size", "global_batch_size"}
)
#: the trainers whose runs' ``config.json`` a command can be rebuilt from (``Args`` of each module)
TRAINERS = ("agents.ram_reinforce", "baselines.train")
#: learning-rate schedules that decay over the budget (``--epochs`` or ``--timesteps``): a run of one
#: of them cut short is not the same run as one with a smaller budget
BUDGET_SCHEDULES = frozenset({"cosine", "linear"})
#: ``--timesteps`` of ``examples/recurrent_ppo.py`` when its command does not give it
RPPO_DEFAULT_TIMESTEPS = 1_000_000
#: the flags of ``examples/recurrent_ppo.py`` that take no value
_RPPO_SWITCHES = frozenset({"--resume", "--overwrite"})


class NotReproducible(ValueError):
    """A kept run that no single command bounded by work trains: its schedule depends on a
    budget it did not reach (see :func:`not_reproducible`)."""


def _is_flag(word: str) -> bool:
    return word.startswith("--")


def _set_flag(words: list[str], flag: str, value: str | None) -> list[str]:
    """``words`` with every ``flag`` (and its value) removed, then ``flag value`` where the first
    one stood, or appended if there was none (``value`` None: removed only)."""
    out: list[str] = []
    at: int | None = None
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == flag or word.startswith(flag + "="):
            at = len(out) if at is None else at
            skip = word == flag
        else:
            out.append(word)
    if value is None:
        return out
    at = len(out) if at is None else at
    return [*out[:at], flag, value, *out[at:]]


def _last_values(words: list[str]) -> list[str]:
    """``words`` with a flag given twice given once, with its last value (what argparse keeps),
    where it first stood: ``--a 1 --b 2 --a 3`` becomes ``--a 3 --b 2``."""
    items: list[list[str]] = []  # [flag, value?] or [word]
    for word in words:
        if items and _is_flag(items[-1][0]) and len(items[-1]) == 1 and not _is_flag(word):
            items[-1].append(word)
        else:
            items.append([word])
    last = {item[0]: item for item in items if _is_flag(item[0])}
    out: list[str] = []
    seen: set[str] = set()
    for item in items:
        if _is_flag(item[0]):
            if item[0] in seen:
                continue
            seen.add(item[0])
            item = last[item[0]]
        out += item
    return out


def _program(words: list[str]) -> str | None:
    """The module of a ``python -m MODULE ...`` command line."""
    return words[words.index("-m") + 1] if "-m" in words[:3] and len(words) > words.index("-m") + 1 else None


def trainer_args(program: str) -> type:
    """The ``Args`` dataclass of a trainer of :data:`TRAINERS`."""
    if program not in TRAINERS:
        raise ValueError(f"no settings dataclass for {program!r}: one of {', '.join(TRAINERS)}")
    return importlib.import_module(program).Args


def command_from_config(config: dict[str, Any], program: str) -> str:
    """The command that starts the run of ``config`` (a run's ``config.json``) with ``python -m
    program``: ``--flag value`` for every setting of the trainer's ``Args`` that differs from its
    default, in the dataclass's order with the run's own flags (:class:`RunArgs`: device, threads, ...)
    last (booleans as ``--flag`` / ``--no-flag``, None as ``none``),
    leaving out :data:`NOT_IN_COMMAND`. A setting the config does not name (it predates it) keeps
    its default."""
    words = ["python", "-m", program]
    fields = dataclasses.fields(trainer_args(program))
    machine = {field.name for field in dataclasses.fields(RunArgs)}  # the run's flags go last
    for field in [f for f in fields if f.name not in machine] + [f for f in fields if f.name in machine]:
        if field.name in NOT_IN_COMMAND or field.name not in config:
            continue
        value = config[field.name]
        if field.default is not dataclasses.MISSING and value == field.default:
            continue
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        elif value is None:
            words += [flag, "none"]
        else:
            words += [flag, repr(value) if isinstance(value, float) else str(value)]
    return shlex.join(words)


def _settings(result: dict[str, Any]) -> dict[str, Any]:
    """The run's settings: its ``config``, else those its (first) command gives a trainer."""
    if result.get("config"):
        return result["config"]
    words = shlex.split(result.get("command", "").split("&&")[0])
    program = _program(words)
    if program not in TRAINERS:
        return {}
    from glimpse_engine.cli import parse_args

    try:
        return dataclasses.asdict(parse_args(trainer_args(program), words[3:]))
    except SystemExit:  # not a command line of the trainer
        return {}


_LOG_EPOCH = re.compile(r"^epoch \d+:")


def _ended_in_log(log: str) -> str | None:
    """How a trainer's log (``train.log``) says its last training ended: ``"early stop"`` or
    ``"time limit"`` (their lines), ``"stopped by hand"`` (a ``--resume`` after the last epoch
    that trained none: the run was ended, then only tested), or None (the log ends with an
    epoch: its budget, or a kill)."""
    after_last_epoch: list[str] = []
    for line in log.splitlines():
        if _LOG_EPOCH.match(line):
            after_last_epoch = []
        elif line.startswith("early stop:"):
            after_last_epoch.append("early stop")
        elif line.startswith("time limit:"):
            after_last_epoch.append("time limit")
        elif line.startswith("resuming "):
            after_last_epoch.append("resumed")
    if not after_last_epoch:
        return None
    return "stopped by hand" if after_last_epoch[0] == "resumed" else after_last_epoch[0]


def _rppo_calls(result: dict[str, Any]) -> list[list[str]]:
    return [shlex.split(call) for call in result["command"].split("&&")]


def _flag(words: list[str], flag: str) -> str | None:
    return words[words.index(flag) + 1] if flag in words[:-1] else None


def how_it_ended(result: dict[str, Any], log: str | None = None) -> str:
    """Why a kept training run stopped: ``"budget"``, ``"early stop"``, ``"time limit"`` or
    ``"stopped by hand"``, from its ``test.json`` (the RAM's and the baselines' trainers, or
    ``examples/recurrent_ppo.py``) and, for the two trainers, its training log where given
    (``train.log``, whose ``early stop:`` and ``time limit:`` lines say it; without a log, a run
    short of its budget and of early stopping that had a time limit is taken as ended by it)."""
    if "steps" in result:  # RecurrentPPO: a step budget
        last = _rppo_calls(result)[-1]
        settings = result.get("hyperparameters", {})
        budget = _flag(last, "--timesteps") or settings.get("timesteps") or RPPO_DEFAULT_TIMESTEPS
        if result["steps"] >= int(budget):
            return "budget"
        return "time limit" if "--time-limit" in last else "stopped by hand"
    config = _settings(result)
    epochs = result["epochs"]
    best, patience = result.get("best_epoch"), config.get("patience")
    if best is not None and patience is not None and epochs - best >= patience:
        return "early stop"
    said = _ended_in_log(log) if log is not None else None
    if said is not None:
        return said
    if epochs >= config.get("epochs", epochs):
        return "budget"
    if log is not None:  # no time limit ended it: the log would say so
        return "stopped by hand"
    return "time limit" if config.get("time_limit") is not None else "stopped by hand"


def not_reproducible(result: dict[str, Any], log: str | None = None) -> str | None:
    """Why no single command bounded by work trains the kept run of ``result``, or None: a
    learning-rate schedule that decays over the budget (:data:`BUDGET_SCHEDULES`) in a run cut
    before its end (a time limit, by hand) or continued with ``--resume`` under a new budget;
    the schedule of the budget it reached would decay faster."""
    ended = how_it_ended(result, log)
    if "steps" in result:
        schedule = result.get("hyperparameters", {}).get("lr_schedule", "constant")
        chained = len(_rppo_calls(result)) > 1
    else:
        schedule = _settings(result).get("lr_schedule", "plateau")
        chained = False
    if schedule not in BUDGET_SCHEDULES or (ended in ("budget", "early stop") and not chained):
        return None
    how = {"time limit": "cut by a time limit", "stopped by hand": "stopped by hand"}.get(
        ended, "continued with --resume under a new budget"
    )
    return f"a {schedule} schedule {how}"


def trained_steps(result: dict[str, Any]) -> int:
    """The environment steps a RecurrentPPO run trained on: its ``steps``, less the vector step
    that a time limit takes into a rollout it then does not train on (whole rollouts of
    ``num_envs x rollout_episodes x`` the id's glimpses; ``steps`` where those are not known)."""
    steps = int(result["steps"])
    settings = result.get("hyperparameters", {})
    import gymnasium as gym

    from glimpse_env.task import TaskConfig

    try:
        glimpses = TaskConfig(**gym.spec(result["env_id"]).kwargs).n_glimpses
        rollout = int(settings["num_envs"]) * int(settings["rollout_episodes"]) * glimpses
    except (KeyError, gym.error.Error):
        return steps
    return steps - steps % rollout


def bounded_command(result: dict[str, Any], log: str | None = None) -> str:
    """The one command, bounded by work, that trains the kept run of ``result`` (its ``test.json``;
    ``log``: its training log, see :func:`how_it_ended`).

    The command that started the run (rebuilt from ``config`` by :func:`command_from_config`
    where the recorded one is a ``--resume`` line), with no ``--time-limit``, a flag given twice
    once with its last value and, where the run did not end by itself (early stopping or its
    budget) or was continued with ``--resume``, the budget it reached: ``--epochs N`` (the
    plateau schedule and early stopping do not depend on the budget) or ``--timesteps N`` (the
    steps of the rollouts it trained, :func:`trained_steps`). A run continued with ``--resume``
    is the same run as one command with the final budget. Raises :class:`NotReproducible` where
    :func:`not_reproducible` gives a reason.
    """
    reason = not_reproducible(result, log)
    if reason is not None:
        raise NotReproducible(f"not reproducible from one command ({reason})")
    ended = how_it_ended(result, log)
    if "steps" in result:
        calls = _rppo_calls(result)
        words: list[str] = []
        for i, word in enumerate(calls[0]):
            if word in ("--resume", "--time-limit") or (i and calls[0][i - 1] == "--time-limit"):
                continue
            words.append(word)
            following = calls[0][i + 1] if i + 1 < len(calls[0]) else "--"
            if _is_flag(word) and word not in _RPPO_SWITCHES and _is_flag(following):
                words.append("")  # a value the recorded line lost by joining without quotes: --net-arch ''
        words = _last_values(words)
        if ended != "budget" or len(calls) > 1:
            words = _set_flag(words, "--timesteps", str(trained_steps(result)))
        return shlex.join(words)
    words = shlex.split(result["command"])
    resume_line = "--resume" in words
    if resume_line:  # a run made before the starting command was recorded
        program = _program(words)
        if program is None or not result.get("config"):
            raise ValueError(f"cannot rebuild the starting command of {result['command']!r}: no config")
        words = shlex.split(command_from_config(result["config"], program))
    words = _last_values(_set_flag(words, "--time-limit", None))
    if ended in ("time limit", "stopped by hand") or result.get("resumed_with") or resume_line:
        words = _set_flag(words, "--epochs", str(result["epochs"]))
    return shlex.join(words)
