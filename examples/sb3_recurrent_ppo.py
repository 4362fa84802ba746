"""sb3-contrib's RecurrentPPO on a glimpse environment, trained on the native vector env.

    python examples/sb3_recurrent_ppo.py --env-id GlimpseMNIST-v0 --num-envs 64 --timesteps 500000

Training goes through :class:`glimpse_env.wrappers.SB3VecEnv`: the native batched
environment seen by SB3 as a ``VecEnv`` with one flat ``Box`` action (location, then one
score per class; the label is the argmax, ties at the clipped maximum broken fairly, see
:mod:`glimpse_env.wrappers`). Evaluation plays the first ``--eval-size``
canvases of the test split in batches with ``reset(options={"indices": ...})`` and the
deterministic policy, and prints the accuracy (the mean final reward).

PPO learns the label from a sparse end-of-episode reward alone, so it is far slower to
learn than the RAM agent, whose classifier gets the supervised loss; this example shows
the plumbing, not a competitive result.
"""

from __future__ import annotations

import argparse

import numpy as np
from gymnasium.vector import AutoresetMode
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.vec_env import VecMonitor

from glimpse_env import GlimpseVectorEnv
from glimpse_env.data import SPLIT_SIZES
from glimpse_env.registration import ENV_SPECS
from glimpse_env.wrappers import SB3VecEnv, split_flat_actions


def evaluate(model: RecurrentPPO, env_id: str, *, eval_size: int, batch: int) -> float:
    """Accuracy of the deterministic policy on test canvases ``0 .. eval_size - 1``."""
    kwargs = next(spec.kwargs for spec in ENV_SPECS if spec.env_id == env_id)
    envs = GlimpseVectorEnv(batch, split="test", autoreset_mode=AutoresetMode.DISABLED, **kwargs)
    num_classes = int(envs.single_action_space["label"].n)
    correct = 0.0
    for start in range(0, eval_size, batch):
        indices = np.arange(start, start + batch) % SPLIT_SIZES["test"]
        obs, _ = envs.reset(options={"indices": indices})
        state, episode_start = None, np.ones(batch, dtype=bool)
        terminated = np.zeros(batch, dtype=bool)
        while not terminated.all():
            actions, state = model.predict(obs, state=state, episode_start=episode_start, deterministic=True)
            location, label = split_flat_actions(actions, num_classes)
            obs, reward, terminated, _, _ = envs.step({"location": location, "label": label})
            episode_start = np.zeros(batch, dtype=bool)
        count = min(batch, eval_size - start)
        correct += float(reward[:count].sum())
    return correct / eval_size


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-id", default="GlimpseMNIST-v0", choices=[s.env_id for s in ENV_SPECS])
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=500_000)
    parser.add_argument("--eval-size", type=int, default=1000, help="test canvases to evaluate on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tensorboard", default=None, help="TensorBoard log folder")
    args = parser.parse_args(argv)

    venv = VecMonitor(SB3VecEnv.make(args.env_id, num_envs=args.num_envs))
    n_glimpses = venv.get_attr("config")[0].n_glimpses
    model = RecurrentPPO(
        "MultiInputLstmPolicy",
        venv,
        n_steps=4 * n_glimpses,  # whole episodes per rollout
        batch_size=min(256, args.num_envs * 4 * n_glimpses),
        learning_rate=3e-4,
        ent_coef=0.01,
        seed=args.seed,
        tensorboard_log=args.tensorboard,
        verbose=0,
    )
    model.learn(total_timesteps=args.timesteps)
    accuracy = evaluate(model, args.env_id, eval_size=args.eval_size, batch=min(args.eval_size, 500))
    print(
        f"{args.env_id}: RecurrentPPO, {args.timesteps} steps, "
        f"test accuracy {accuracy:.3f} on {args.eval_size} canvases"
    )
    return accuracy


if __name__ == "__main__":
    main()
