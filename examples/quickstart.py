"""Quickstart: make an environment, play one random episode, save its glimpses as a PNG.

    python examples/quickstart.py --env-id GlimpseMNIST-Cluttered-v0 --out glimpses.png

``gym.make`` builds the environment; ``render_mode="rgb_array"`` lets ``env.render()`` draw
the canvas with the box of every retina scale at each glimpse and the trail of
locations, which is what the PNG shows. The agent here picks locations and labels at
random; the reward (1 for the right label, on the last step only) is its accuracy.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import gymnasium as gym
import numpy as np
from PIL import Image

import glimpse_env  # noqa: F401  (registers the GlimpseMNIST-* ids)
from glimpse_env.cli import ArgumentParser, check_output_file, run_cli
from glimpse_env.registration import ENV_SPECS


class Episode(NamedTuple):
    """What the quickstart's episode did."""

    steps: int
    """Steps taken: the episode ends after ``n_glimpses`` of them."""
    reward: float
    """1.0 if the last step's label was right, else 0.0."""
    label: int
    prediction: int
    picture: np.ndarray
    """``(H, W, 3)`` uint8: the rendered trajectory, as saved to ``--out``."""


def main(argv: list[str] | None = None) -> Episode:
    parser = ArgumentParser(  # one-line usage errors
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--env-id", default="GlimpseMNIST-Cluttered-v0", choices=[e.env_id for e in ENV_SPECS]
    )
    parser.add_argument("--out", default="glimpses.png", help="where to save the PNG of the episode")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    check_output_file(args.out, "--out", example="glimpses.png")  # before playing

    env = gym.make(args.env_id, render_mode="rgb_array")
    env.action_space.seed(args.seed)
    obs, info = env.reset(seed=args.seed)
    print(f"{args.env_id}: glimpse {obs['glimpse'].shape} (scales, height, width) at {obs['location']}")
    steps, terminated, reward = 0, False, 0.0
    while not terminated:
        action = env.action_space.sample()  # {"location": (x, y) in [-1, 1], "label": class}
        obs, reward, terminated, _truncated, info = env.step(action)
        steps += 1
    picture = env.render()
    assert picture is not None  # render_mode="rgb_array" always draws
    Image.fromarray(picture).save(args.out)
    print(
        f"{steps} glimpses; true class {info['label']}, guessed {info['prediction']}, reward {reward}; "
        f"trajectory saved to {args.out}"
    )
    env.close()
    return Episode(steps, float(reward), int(info["label"]), int(info["prediction"]), picture)


if __name__ == "__main__":
    run_cli(main)  # bad input: one line on stderr, no traceback
