"""The native vector environment: N episodes stepped as one batch, and its throughput.

    python examples/vector_env.py --env-id GlimpseMNIST-Cluttered-v0 --num-envs 256 --steps 1000

``gym.make_vec(..., vectorization_mode="vector_entry_point")`` builds
:class:`glimpse_env.GlimpseVectorEnv`, which steps every sub-environment with batched
tensor operations instead of one Python environment each (``"sync"`` would build a
``SyncVectorEnv`` of single environments). Actions are batches: ``location`` ``(N, 2)``
and ``label`` ``(N,)``. Autoreset is Gymnasium's default ``NEXT_STEP``: the step after an
episode terminates restarts that sub-environment (its action ignored, reward 0), so
every episode of ``T`` glimpses takes ``T + 1`` steps of the batch.
"""

from __future__ import annotations

import argparse
import time
from typing import NamedTuple

import gymnasium as gym
import numpy as np

import glimpse_env  # noqa: F401  (registers the GlimpseMNIST-* ids)
from glimpse_env.cli import ArgumentParser, run_cli
from glimpse_env.registration import ENV_SPECS


class Throughput(NamedTuple):
    """What the run measured."""

    steps_per_second: float
    """Sub-environment steps per second (``num_envs * steps / seconds``)."""
    episodes: int
    """Episodes that terminated during the run."""
    accuracy: float
    """Mean reward of those episodes (random labels: about 1 / num_classes)."""


def main(argv: list[str] | None = None) -> Throughput:
    parser = ArgumentParser(  # one-line usage errors
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--env-id", default="GlimpseMNIST-Cluttered-v0", choices=[e.env_id for e in ENV_SPECS]
    )
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--steps", type=int, default=1000, help="steps of the whole batch")
    parser.add_argument("--device", default="cpu", help="torch device of the environment, e.g. cuda")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.num_envs < 1 or args.steps < 1:
        parser.error(f"--num-envs and --steps must be at least 1, got {args.num_envs} and {args.steps}")

    envs = gym.make_vec(
        args.env_id, num_envs=args.num_envs, vectorization_mode="vector_entry_point", device=args.device
    )
    num_classes = int(envs.single_action_space["label"].n)
    rng = np.random.default_rng(args.seed)
    envs.reset(seed=args.seed)
    episodes, correct = 0, 0.0
    start = time.perf_counter()
    for _ in range(args.steps):
        actions = {  # random actions, drawn as whole batches (cheaper than action_space.sample())
            "location": rng.uniform(-1.0, 1.0, (args.num_envs, 2)).astype(np.float32),
            "label": rng.integers(0, num_classes, args.num_envs),
        }
        _obs, reward, terminated, _truncated, _info = envs.step(actions)
        episodes += int(terminated.sum())
        correct += float(reward[terminated].sum())
    seconds = time.perf_counter() - start
    envs.close()
    rate = args.num_envs * args.steps / seconds
    accuracy = correct / episodes if episodes else float("nan")
    print(
        f"{args.env_id}: {args.num_envs} envs x {args.steps} steps on {args.device} in {seconds:.2f} s = "
        f"{rate:,.0f} steps/s; {episodes} episodes, random accuracy {accuracy:.3f}"
    )
    return Throughput(rate, episodes, accuracy)


if __name__ == "__main__":
    run_cli(main)  # bad input: one line on stderr, no traceback
