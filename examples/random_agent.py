"""The environment API in twenty lines: play random episodes and save a picture of one.

python examples/random_agent.py --env-id GlimpseMNIST-Cluttered-v0 --episodes 100 --picture glimpses.png
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
from PIL import Image

import glimpse_env  # noqa: F401  (registers the GlimpseMNIST-* ids)
from glimpse_env.cli import ArgumentParser, check_output_file, run_cli
from glimpse_env.registration import ENV_SPECS


def main(argv: list[str] | None = None) -> float:
    parser = ArgumentParser(  # one-line usage errors
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--env-id", default="GlimpseMNIST-Cluttered-v0", choices=[e.env_id for e in ENV_SPECS]
    )
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--picture", default=None, help="save the last episode's glimpses as a PNG here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}")
    if args.picture:
        check_output_file(args.picture, "--picture", example="glimpses.png")  # before playing

    env = gym.make(args.env_id, split="test", render_mode="rgb_array")
    env.action_space.seed(args.seed)
    env.reset(seed=args.seed)
    rewards = []
    for _ in range(args.episodes):
        _obs, info = env.reset()
        terminated = False
        while not terminated:
            action = env.action_space.sample()  # {"location": (x, y) in [-1, 1], "label": class}
            _obs, reward, terminated, _truncated, info = env.step(action)
        rewards.append(reward)
    accuracy = float(np.mean(rewards))
    print(f"{args.env_id}: random policy accuracy {accuracy:.3f} over {args.episodes} test episodes")
    if args.picture:
        Image.fromarray(env.render()).save(args.picture)
        print(f"last episode: class {info['label']}, guessed {info['prediction']}; picture in {args.picture}")
    return accuracy


if __name__ == "__main__":
    run_cli(main)  # bad input: one line on stderr, no traceback
