"""Median step and reset time of the single environment (``gym.make``, all wrappers on).

    python benchmarks/env_step_time.py [--episodes 3000] [--json out.json]

Actions are prepared beforehand (random locations, a fixed label), so the numbers are
the environment's own cost, not the cost of sampling a Dict action space.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
from _common import machine, print_table, write_json

import glimpse_env  # noqa: F401  (registers the ids)

ENV_IDS = ("GlimpseMNIST-v0", "GlimpseMNIST-Cluttered-v0", "GlimpseMNIST-Cluttered100-v0")


def measure(env_id: str, episodes: int) -> dict[str, object]:
    env = gym.make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    n = env.unwrapped.config.n_glimpses
    actions = [
        {"location": rng.uniform(-1, 1, 2).astype(np.float32), "label": np.int64(rng.integers(10))}
        for _ in range(n)
    ]
    steps, resets = [], []
    clock = time.perf_counter
    for _ in range(episodes):
        start = clock()
        env.reset()
        resets.append(clock() - start)
        for action in actions:
            start = clock()
            env.step(action)
            steps.append(clock() - start)
    step = statistics.median(steps)
    return {
        "env": env_id,
        "median step (us)": step * 1e6,
        "median reset (us)": statistics.median(resets) * 1e6,
        "steps/s (1/median)": 1 / step,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=3000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = [measure(env_id, args.episodes) for env_id in ENV_IDS]
    print(machine())
    print_table(rows, ["env", "median step (us)", "median reset (us)", "steps/s (1/median)"])
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
