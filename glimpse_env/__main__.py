"""``python -m glimpse_env``: load the data, list the environments and run a sanity check.

For every registered id (or the one given), plays episodes of the test split with a
uniformly random policy and with a policy told the true label, and reports both
accuracies (about 0.10 and exactly 1.00 when everything is wired correctly), the
episode throughput and, with ``--render``, saves a picture of a glimpse trail.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import cast

import gymnasium as gym
import numpy as np

from glimpse_env.env import GlimpseEnv
from glimpse_env.registration import ENV_SPECS


def run(
    env_id: str, episodes: int, seed: int, render: Path | None, data_dir: Path | None = None
) -> dict[str, float]:
    """Random-policy and told-the-answer accuracies of ``env_id`` on its test split."""
    env = gym.make(env_id, split="test", render_mode="rgb_array" if render else None, data_dir=data_dir)
    labels = cast(GlimpseEnv, env.unwrapped).task.labels.cpu().numpy()  # the test split's
    rng = np.random.default_rng(seed)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    scores = {"random": 0.0, "told": 0.0}
    steps = 0
    start = time.perf_counter()
    for episode in range(episodes):
        index = int(rng.integers(len(labels)))
        for policy in scores:
            env.reset(options={"index": index})
            terminated = False
            while not terminated:
                action = env.action_space.sample()
                if policy == "told":
                    action["label"] = int(labels[index])
                _, reward, terminated, _, _ = env.step(action)
                steps += 1
            scores[policy] += float(reward)
        if render is not None and episode == 0:
            from PIL import Image

            render.parent.mkdir(parents=True, exist_ok=True)
            frame = env.render()
            assert isinstance(frame, np.ndarray)
            Image.fromarray(frame).save(render)
    elapsed = time.perf_counter() - start
    return {
        "random": scores["random"] / episodes,
        "told": scores["told"] / episodes,
        "steps_per_s": steps / elapsed,
    }


def main(argv: list[str] | None = None) -> None:
    ids = [spec.env_id for spec in ENV_SPECS]
    parser = argparse.ArgumentParser(prog="python -m glimpse_env", description=__doc__)
    parser.add_argument("--env-id", choices=ids, default=None, help="one id (default: all)")
    parser.add_argument("--episodes", type=int, default=500, help="test episodes per policy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--render", type=Path, default=None, help="save a PNG of one episode here")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data folder (default: $GLIMPSE_DATA_DIR, else the cache)"
    )
    args = parser.parse_args(argv)
    chosen = [args.env_id] if args.env_id else ids
    print(f"{'id':32s} {'random acc':>10s} {'told acc':>9s} {'steps/s':>9s}  reproduces")
    for spec in ENV_SPECS:
        if spec.env_id not in chosen:
            continue
        render = None
        if args.render is not None:
            render = args.render if len(chosen) == 1 else args.render.with_name(f"{spec.env_id}.png")
        result = run(spec.env_id, args.episodes, args.seed, render, args.data_dir)
        print(
            f"{spec.env_id:32s} {result['random']:10.3f} {result['told']:9.3f} "
            f"{result['steps_per_s']:9.0f}  {spec.reproduces}"
        )


if __name__ == "__main__":
    main()
