"""sb3-contrib's RecurrentPPO on a glimpse environment, trained on the native vector env.

    python examples/sb3_recurrent_ppo.py --env-id GlimpseMNIST-v0 --num-envs 64 --timesteps 500000

Training goes through :class:`glimpse_env.wrappers.SB3VecEnv`: the native batched
environment seen by SB3 as a ``VecEnv`` with one flat ``Box`` action (location, then one
score per class; the label is the argmax, ties at the clipped maximum broken fairly, see
:mod:`glimpse_env.wrappers`). Evaluation plays the first ``--eval-size``
canvases of the test split with the deterministic policy through the project's evaluation
protocol (:mod:`glimpse_env.evaluation`: batches of the native vector environment with
``reset(options={"indices": ...})``) and prints the accuracy (the mean final reward).
A saved model is evaluated the same way by
``python -m glimpse_env.evaluate --env ID --policy sb3:RecurrentPPO:PATH``.

PPO learns the label from a sparse end-of-episode reward alone, so it is far slower to
learn than the RAM agent, whose classifier gets the supervised loss; this example shows
the plumbing, not a competitive result.
"""

from __future__ import annotations

import argparse

from sb3_contrib import RecurrentPPO
from stable_baselines3.common.vec_env import VecMonitor

from glimpse_env.evaluation import SB3Policy
from glimpse_env.evaluation import evaluate as evaluate_policy
from glimpse_env.registration import ENV_SPECS
from glimpse_env.wrappers import SB3VecEnv


def evaluate(model: RecurrentPPO, env_id: str, *, eval_size: int, batch: int) -> float:
    """Accuracy of the deterministic policy on test canvases ``0 .. eval_size - 1``, by the
    project's one evaluation protocol (:func:`glimpse_env.evaluation.evaluate`; the same as
    ``python -m glimpse_env.evaluate --policy sb3:RecurrentPPO:PATH``)."""
    policy = SB3Policy(model, action="flat", deterministic=True)
    return evaluate_policy(policy, env_id, episodes=eval_size, num_envs=batch).accuracy


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
