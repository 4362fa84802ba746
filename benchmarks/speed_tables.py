"""The tables of docs/speed.md, from the JSON of one measurement window.

    python benchmarks/speed_tables.py [results/speed/2026-12-04]

The folder is what ``results/speed/<date>/run.sh`` writes (one window, every other process
paused). Prints markdown: the environments under load (every id, both APIs), the second
core on a quiet machine, and the trainers under load; ``tests/test_docs.py`` checks that
docs/speed.md holds these tables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DEFAULT = Path(__file__).resolve().parent.parent / "results" / "speed" / "2026-12-04"


def rows(folder: Path, name: str) -> list[dict[str, Any]]:
    return json.loads((folder / name).read_text())["rows"]


def env_load(folder: Path) -> str:
    """Steps/s at K = 0, 1, 2 busy competitors and the ratios to quiet, per id, N and API."""
    found: dict[tuple[str, int, str], dict[int, float]] = {}
    for row in rows(folder, "env_load.json"):
        api = "tensor" if row["vectorisation"].endswith("tensor API") else "numpy"
        found.setdefault((row["env"], row["N"], api), {})[row["busy"]] = row["steps/s"]
    lines = [
        "| env | N | API | K = 0 | K = 1 | K = 2 | x quiet, K = 1 | x quiet, K = 2 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (env, n, api), by_k in found.items():
        quiet = by_k[0]
        lines.append(
            f"| `{env}` | {n} | {api} | {by_k[0]:,.0f} | {by_k[1]:,.0f} | {by_k[2]:,.0f} "
            f"| {by_k[1] / quiet:.2f} | {by_k[2] / quiet:.2f} |"
        )
    return "\n".join(lines)


def lowest_ratios(folder: Path) -> tuple[float, float]:
    """The lowest ``x quiet`` at K = 1 and at K = 2 over every row of the load table."""
    table = rows(folder, "env_load.json")
    return tuple(min(r["x quiet"] for r in table if r["busy"] == k) for k in (1, 2))  # type: ignore[return-value]


def second_core(folder: Path) -> str:
    """Today's package and the package at 10316b1 (torch splitting the box sums), N = 1024."""
    lines = [
        "| package | env | API | default threads, K = 0 | 1 thread, K = 0 | default / 1 thread "
        "| default, x quiet at K = 1 / 2 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    today = rows(folder, "env_one_thread.json")
    load = {
        (r["env"], r["N"], r["vectorisation"], r["busy"]): r["x quiet"] for r in rows(folder, "env_load.json")
    }
    for row in today:
        if row["vectorisation"].endswith("1 thread"):
            continue
        one = next(
            r
            for r in today
            if r["env"] == row["env"] and r["vectorisation"] == row["vectorisation"] + ", 1 thread"
        )
        api = "tensor" if row["vectorisation"].endswith("tensor API") else "numpy"
        ratios = " / ".join(f"{load[row['env'], 1024, row['vectorisation'], k]:.2f}" for k in (1, 2))
        lines.append(
            f"| today | `{row['env']}` | {api} | {row['steps/s']:,.0f} | {one['steps/s']:,.0f} "
            f"| {row['steps/s'] / one['steps/s']:.2f} | {ratios} |"
        )
    old = rows(folder, "env_split_10316b1.json")
    for row in old:
        if row["busy"] != 0 or row["vectorisation"].endswith("1 thread"):
            continue
        one = next(
            r
            for r in old
            if r["env"] == row["env"] and r["busy"] == 0 and r["vectorisation"].endswith("1 thread")
        )
        quiet_ratio = {
            r["busy"]: r["x quiet"]
            for r in old
            if r["env"] == row["env"] and r["vectorisation"] == row["vectorisation"]
        }
        ratios = f"{quiet_ratio[1]:.2f} / {quiet_ratio[2]:.2f}"
        lines.append(
            f"| `10316b1` | `{row['env']}` | numpy | {row['steps/s']:,.0f} | {one['steps/s']:,.0f} "
            f"| {row['steps/s'] / one['steps/s']:.2f} | {ratios} |"
        )
    return "\n".join(lines)


def trainers(folder: Path) -> str:
    """Seconds per 55,000-image epoch of the RAM and the baselines, threads x busy."""
    lines = [
        "| trainer | torch threads | K = 0 | K = 1 | K = 2 | x quiet, K = 1 | x quiet, K = 2 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for threads in (2, 1):
        ram = [rows(folder, f"ram_epoch-t{threads}-busy{k}.json")[0]["s/epoch"] for k in range(3)]
        label = "2 (torch's default here)" if threads == 2 else "1 (`--threads 1`)"
        lines.append(
            f"| RAM, `GlimpseMNIST-v0` | {label} | {ram[0]:.1f} | {ram[1]:.1f} | {ram[2]:.1f} "
            f"| {ram[0] / ram[1]:.2f} | {ram[0] / ram[2]:.2f} |"
        )
        for model in ("cnn", "self_attention"):
            epoch = [
                next(r for r in rows(folder, f"baseline-t{threads}-busy{k}.json") if r["model"] == model)[
                    "s per 55,000-image epoch"
                ]
                for k in range(3)
            ]
            lines.append(
                f"| {model}, `GlimpseMNIST-Cluttered-v0` | {label} | {epoch[0]:.1f} | {epoch[1]:.1f} "
                f"| {epoch[2]:.1f} | {epoch[0] / epoch[1]:.2f} | {epoch[0] / epoch[2]:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    for title, table in (
        ("environments under load", env_load(folder)),
        ("the second core", second_core(folder)),
        ("trainers under load (s per epoch)", trainers(folder)),
    ):
        print(f"<!-- {title} -->\n{table}\n")
    one, two = lowest_ratios(folder)
    print(f"lowest x quiet: {one:.2f} with one busy competitor, {two:.2f} with two")


if __name__ == "__main__":
    main()
