"""Environment steps per second with random actions, resets included.

    python benchmarks/env_throughput.py [--repeats 5] [--device cuda] [--json out.json]
    python benchmarks/env_throughput.py --native-only --sizes 256 1024 --busy 0 --busy 1 --busy 2

For GlimpseMNIST-v0, -Cluttered60-v0 and -Cluttered100-v0: the single environment
(``gym.make``), Gymnasium's ``SyncVectorEnv`` over 256 single environments, the native
``GlimpseVectorEnv`` at N = 1, 16, 256, 1024 (numpy API, next-step autoreset: every
(T+1)-th step of a sub-environment is its reset, counted as a step), and the SB3
``VecEnv`` adapter at N = 256. Every step takes one glimpse per sub-environment, so
steps/s = glimpses/s. Each number is the median of ``--repeats`` timed runs; the last
column is the ratio to ``SyncVectorEnv`` at N = 256 measured in the same run.
Random actions are drawn beforehand, so the cost of sampling them is not counted.

``--busy K`` runs every measurement with ``K`` competing CPU-bound processes (each a
Python interpreter spinning a pure-Python loop), started before and stopped after it: the
situation of an RL trainer, whose model and other work share the cores with the
environment. Give it several times (``--busy 0 --busy 1 --busy 2``) for one row per
``K``; ``x quiet`` is then the ratio to the same row at ``K = 0``. ``--torch-threads``
sets torch's intra-op threads first (for comparison; the package never changes them), and
``--compare-one-thread`` measures every native row a second time under
``torch.set_num_threads(1)`` in the same run (``default / 1 thread`` is their ratio).
``--native-only`` measures ``GlimpseVectorEnv`` alone, at the sizes of ``--sizes``;
``--api tensor`` steps it through ``step_tensors`` (tensor actions, as the RAM trainer
does) besides or instead of ``step`` (``--api numpy --api tensor`` for both).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from _common import busy, machine, print_table, write_json

import glimpse_env  # noqa: F401  (registers the ids)
from glimpse_env.wrappers import SB3VecEnv

ENV_IDS = ("GlimpseMNIST-v0", "GlimpseMNIST-Cluttered60-v0", "GlimpseMNIST-Cluttered100-v0")
NATIVE_SIZES = (1, 16, 256, 1024)
SYNC_SIZE = 256
SB3_SIZE = 256
ACTION_POOL = 16  # distinct random action batches cycled through


def actions_for(n: int, num_classes: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    return [
        {
            "location": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
            "label": rng.integers(0, num_classes, n),
        }
        for _ in range(ACTION_POOL)
    ]


def rate(step: Callable[[int], None], *, n_envs: int, steps: int, repeats: int) -> float:
    """Median env-steps per second of ``steps`` calls of ``step(i)`` (after a warm-up)."""
    for i in range(min(steps, 8)):
        step(i)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(steps):
            step(i)
        rates.append(steps * n_envs / (time.perf_counter() - start))
    return statistics.median(rates)


def single_env(env_id: str, repeats: int) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    pool = actions_for(1, 10, np.random.default_rng(0))
    actions = [{"location": a["location"][0], "label": int(a["label"][0])} for a in pool]

    def step(i: int) -> None:
        if env.step(actions[i % ACTION_POOL])[2]:
            env.reset()

    return rate(step, n_envs=1, steps=3000, repeats=repeats)


def sync_env(env_id: str, n: int, repeats: int) -> float:
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync")
    envs.reset(seed=0)
    actions = actions_for(n, 10, np.random.default_rng(0))
    return rate(lambda i: envs.step(actions[i % ACTION_POOL]), n_envs=n, steps=20, repeats=repeats)


def native_env(env_id: str, n: int, repeats: int, device: str, api: str = "numpy") -> float:
    """``GlimpseVectorEnv`` through ``step`` (numpy arrays) or ``step_tensors`` (tensors on
    ``device``, as the RAM trainer steps it)."""
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", device=device)
    envs.reset(seed=0)
    actions = actions_for(n, 10, np.random.default_rng(0))
    steps = max(20, min(3000, 200_000 // n))
    if api == "numpy":
        return rate(lambda i: envs.step(actions[i % ACTION_POOL]), n_envs=n, steps=steps, repeats=repeats)
    tensors = [
        (torch.from_numpy(a["location"]).to(device), torch.from_numpy(a["label"]).to(device)) for a in actions
    ]
    return rate(
        lambda i: envs.step_tensors(*tensors[i % ACTION_POOL]), n_envs=n, steps=steps, repeats=repeats
    )


def sb3_env(env_id: str, n: int, repeats: int) -> float:
    venv = SB3VecEnv.make(env_id, num_envs=n)
    venv.reset()
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1, 1, (n, 12)).astype(np.float32) for _ in range(ACTION_POOL)]
    return rate(lambda i: venv.step(actions[i % ACTION_POOL]), n_envs=n, steps=200, repeats=repeats)


def measure_env(env_id: str, args: argparse.Namespace) -> list[tuple[str, str, int, float]]:
    """``(vectorisation, device, N, steps/s)`` of every measurement asked for."""
    measured = []
    if not args.native_only:
        measured.append(("single env (gym.make)", "cpu", 1, single_env(env_id, args.repeats)))
        measured.append(("SyncVectorEnv", "cpu", SYNC_SIZE, sync_env(env_id, SYNC_SIZE, args.repeats)))
    for device in args.device or ["cpu"]:
        for api in args.api or ["numpy"]:
            kind = "GlimpseVectorEnv" if api == "numpy" else "GlimpseVectorEnv, tensor API"
            for n in args.sizes:
                measured.append((kind, device, n, native_env(env_id, n, args.repeats, device, api)))
                if args.compare_one_thread:
                    threads = torch.get_num_threads()
                    torch.set_num_threads(1)
                    try:
                        value = native_env(env_id, n, args.repeats, device, api)
                    finally:
                        torch.set_num_threads(threads)
                    measured.append((f"{kind}, 1 thread", device, n, value))
    if not args.native_only:
        measured.append(("SB3VecEnv adapter", "cpu", SB3_SIZE, sb3_env(env_id, SB3_SIZE, args.repeats)))
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", action="append", default=None, help="native env device(s), default cpu")
    parser.add_argument("--env-id", action="append", default=None, help="default: the three of the issue")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(NATIVE_SIZES), help="native env N")
    parser.add_argument("--native-only", action="store_true", help="GlimpseVectorEnv alone")
    parser.add_argument(
        "--api",
        choices=["numpy", "tensor"],
        action="append",
        default=None,
        help="the native env's API (repeatable): step (numpy, the default) or step_tensors",
    )
    parser.add_argument(
        "--compare-one-thread",
        action="store_true",
        help="measure every native row again under torch.set_num_threads(1), in the same run",
    )
    parser.add_argument(
        "--busy", type=int, action="append", default=None, help="competing CPU-bound processes (repeatable)"
    )
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="torch.set_num_threads first (default: torch's own)"
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    rows = []
    for env_id in args.env_id or ENV_IDS:
        quiet: dict[tuple[str, str, int], float] = {}
        for k in args.busy or [0]:
            with busy(k):
                measured = measure_env(env_id, args)
            sync = next((v for kind, _, _, v in measured if kind == "SyncVectorEnv"), None)
            for kind, device, n, value in measured:
                if k == 0:
                    quiet[kind, device, n] = value
                row = {"env": env_id, "busy": k, "vectorisation": kind, "device": device, "N": n}
                row["steps/s"] = value
                if (kind, device, n) in quiet:
                    row["x quiet"] = value / quiet[kind, device, n]
                if kind.endswith(", 1 thread"):
                    default = next(
                        v for other, d, m, v in measured if (other, d, m) == (kind[:-10], device, n)
                    )
                    row["default / 1 thread"] = default / value
                if sync is not None:
                    row["x SyncVectorEnv(256)"] = value / sync
                rows.append(row)
                line = f"{env_id:30s} busy={k} {kind:22s} {device:5s} N={n:<5d} {value:>12,.0f} steps/s"
                print(line, flush=True)
    print(f"\n{machine()}; torch threads {torch.get_num_threads()}")
    columns = ["env", "busy", "vectorisation", "device", "N", "steps/s", "x quiet"]
    if args.compare_one_thread:
        columns.append("default / 1 thread")
    print_table(rows, columns if args.native_only else [*columns, "x SyncVectorEnv(256)"])
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
