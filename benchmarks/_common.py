"""Helpers shared by the benchmark scripts: timing, machine description, table output."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import torch


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


def _set_flag(words: list[str], flag: str, value: str | None) -> list[str]:
    """``words`` without ``flag`` and its value, then ``flag value`` appended (unless ``value`` is None)."""
    out: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word == flag:
            skip = True
        elif word.startswith(flag + "="):
            pass
        else:
            out.append(word)
    return out if value is None else [*out, flag, value]


def how_it_ended(result: dict[str, Any]) -> str:
    """Why a kept training run stopped: ``"budget"``, ``"early stop"``, ``"time limit"`` or
    ``"stopped by hand"``, from its ``test.json`` (the RAM's and the baselines' trainers, or
    ``examples/recurrent_ppo.py``)."""
    if "steps" in result:  # RecurrentPPO: a step budget
        last = shlex.split(result["command"].split("&&")[-1])
        budget = int(last[last.index("--timesteps") + 1]) if "--timesteps" in last else 0
        if result["steps"] >= budget:
            return "budget"
        return "time limit" if "--time-limit" in last else "stopped by hand"
    config = result["config"]
    epochs = result["epochs"]
    if epochs >= config["epochs"]:
        return "budget"
    if result.get("best_epoch") is not None and epochs - result["best_epoch"] >= config["patience"]:
        return "early stop"
    return "time limit" if config.get("time_limit") is not None else "stopped by hand"


def bounded_command(result: dict[str, Any]) -> str:
    """The one command, bounded by work, that trains the kept run of ``result`` (its ``test.json``).

    The command that started the run, with no ``--time-limit`` and, where the run did not end
    by itself (early stopping or its budget), with the budget it reached: ``--epochs N`` (the
    plateau schedule and early stopping do not depend on the budget) or ``--timesteps N``.
    A run continued with ``--resume`` is the same run as one command with the final budget.
    """
    command = result["command"].split(" && ")[0]
    words = _set_flag(shlex.split(command), "--time-limit", None)
    ended = how_it_ended(result)
    if "steps" in result:
        words = [w for w in words if w != "--resume"]
        if ended != "budget" or " && " in result["command"]:
            words = _set_flag(words, "--timesteps", str(result["steps"]))
    elif ended in ("time limit", "stopped by hand") or result.get("resumed_with"):
        words = _set_flag(words, "--epochs", str(result["epochs"]))
    return shlex.join(words)
