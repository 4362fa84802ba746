"""Where the native vector env's time goes at N = 256.

    python benchmarks/step_breakdown.py [--repeats 5] [--json out.json]

For GlimpseMNIST-v0, -Cluttered60-v0 and -Cluttered100-v0 with N = 256 sub-environments
(numpy API, random actions, next-step autoreset; the batch resets together every T + 1
steps):

- ``sync us/env-step``: the cost of one sub-environment step in ``SyncVectorEnv`` over 256
  single environments (resets included);
- ``native``: the mean batch-step time of ``GlimpseVectorEnv`` over whole episodes, split
  into a mid-episode step, the reset step, and the parts of a reset and of a glimpse
  timed on their own: ``task.sample`` and ``task.canvases`` (episode draws and canvas
  composition), ``Retina.prepare`` (what the glimpses are read from, once per episode:
  integral images, or padded canvases where every cell is one pixel) and
  ``Retina.glimpse`` (one glimpse of every sub-environment).

Every number is the best of ``--repeats`` medians, in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
from _common import machine, median_seconds, print_table, write_json
from env_throughput import ACTION_POOL, SYNC_SIZE, actions_for, sync_env

import glimpse_env  # noqa: F401  (registers the ids)
from glimpse_env.vector import GlimpseVectorEnv

ENV_IDS = ("GlimpseMNIST-v0", "GlimpseMNIST-Cluttered60-v0", "GlimpseMNIST-Cluttered100-v0")
N = 256
EPISODES = 40  # timed episodes per repeat


def best_median_us(fn: Callable[[], object], repeats: int, calls: int = 30) -> float:
    return 1e6 * min(median_seconds(fn, repeats=calls) for _ in range(repeats))


def step_times(envs: GlimpseVectorEnv, repeats: int) -> tuple[float, float, float]:
    """Best-of-repeats median (mid-episode step, reset step) and mean step, in us."""
    actions = actions_for(N, envs.task.num_classes, np.random.default_rng(0))
    length = envs.config.n_glimpses + 1  # T glimpse steps, then the autoreset step
    mids, resets, means = [], [], []
    for _ in range(repeats):
        mid, reset = [], []
        for i in range(EPISODES * length):
            resetting = i % length == length - 1  # from reset, the batch steps in lockstep
            start = time.perf_counter()
            envs.step(actions[i % ACTION_POOL])
            (reset if resetting else mid).append(time.perf_counter() - start)
        mids.append(statistics.median(mid))
        resets.append(statistics.median(reset))
        means.append((sum(mid) + sum(reset)) / (len(mid) + len(reset)))
    return 1e6 * min(mids), 1e6 * min(resets), 1e6 * min(means)


def breakdown(env_id: str, repeats: int) -> dict[str, object]:
    sync_rate = sync_env(env_id, SYNC_SIZE, repeats)
    envs = gym.make_vec(env_id, num_envs=N, vectorization_mode="vector_entry_point").unwrapped
    assert isinstance(envs, GlimpseVectorEnv)
    envs.reset(seed=0)
    mid, reset, mean = step_times(envs, repeats)
    task, retina = envs.task, envs.retina
    rng = np.random.default_rng(0)
    episodes = task.sample(rng, N, None)
    canvases, _ = task.canvases(episodes)
    buffer = torch.zeros_like(envs._buffer)  # the env's own kind of buffer
    prepared = retina.prepare(canvases, out=buffer)
    locations = torch.rand(N, 2) * 2 - 1
    return {
        "env": env_id,
        "sync us/env-step": 1e6 / sync_rate,
        "native mean step": mean,
        "x Sync": 1e6 * N / mean / sync_rate,
        "mid-episode step": mid,
        "reset step": reset,
        "sample": best_median_us(lambda: task.sample(rng, N, None), repeats),
        "canvases": best_median_us(lambda: task.canvases(episodes), repeats),
        "prepare": best_median_us(lambda: retina.prepare(canvases, out=buffer), repeats),
        "glimpse": best_median_us(lambda: retina.glimpse(prepared, locations), repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for env_id in ENV_IDS:
        rows.append(breakdown(env_id, args.repeats))
        print(rows[-1], flush=True)
    print(f"\n{machine()}; torch threads {torch.get_num_threads()}; N = {N}; microseconds")
    print_table(rows, list(rows[0]))
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
