"""sb3-contrib's RecurrentPPO on any glimpse environment, trained on the native vector env.

    python examples/recurrent_ppo.py --env-id GlimpseMNIST-v0 --action multidiscrete --timesteps 1000000
    python examples/recurrent_ppo.py --env-id GlimpseMNIST-Cluttered-v0 --action flat --run-dir runs/rppo

Training goes through :class:`glimpse_env.wrappers.SB3VecEnv`: ``--num-envs`` episodes of
the native batched environment seen by SB3 as one ``VecEnv``, with either action form of
:mod:`glimpse_env.wrappers`:

- ``--action flat``: ``Box(-1, 1, (2 + C,))``, the location then one score per class (a
  Gaussian policy; ties of clipped scores broken without favouring a class);
- ``--action multidiscrete``: ``MultiDiscrete([G, G, C])``, a cell of a ``G x G`` grid of
  locations and the class (categorical heads with exact log-probabilities).

The run folder (``--run-dir``) gets SB3's TensorBoard logs, the trained model
(``model.zip``, loadable with ``RecurrentPPO.load``), and ``results/test.json``: the model
scored on the test split (the whole split unless ``--eval-size``) by the project's
evaluation protocol (:mod:`glimpse_env.evaluation`), the deterministic policy, with the
command and the hyperparameters. A saved model is scored the same way by
``python -m glimpse_env.evaluate --env ID --policy sb3:RecurrentPPO:RUN/model.zip``.

The reward is sparse: 1 on the last step if the class is right. PPO has to learn the
classifier from that reward alone, where the RAM agent's classifier gets a supervised
cross-entropy on the label the environment reveals; expect it to learn far more slowly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from sb3_contrib import RecurrentPPO
from stable_baselines3.common.vec_env import VecMonitor

from glimpse_env.evaluation import EvaluationResult, SB3Policy
from glimpse_env.evaluation import evaluate as evaluate_policy
from glimpse_env.registration import ENV_SPECS
from glimpse_env.wrappers import ACTION_KINDS, DEFAULT_GRID, SB3VecEnv


def evaluate(model: Any, env_id: str, *, eval_size: int | None, batch: int) -> EvaluationResult:
    """The deterministic policy of ``model`` on test canvases ``0 .. eval_size - 1`` (all when
    ``None``), by the project's one evaluation protocol (the same as ``python -m
    glimpse_env.evaluate --policy sb3:RecurrentPPO:PATH``)."""
    policy = SB3Policy(model, deterministic=True, name="RecurrentPPO")
    return evaluate_policy(policy, env_id, episodes=eval_size, num_envs=batch)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-id", default="GlimpseMNIST-v0", choices=[s.env_id for s in ENV_SPECS])
    parser.add_argument(
        "--action", default="multidiscrete", choices=ACTION_KINDS, help="action form of the adapter"
    )
    parser.add_argument("--grid", type=int, default=DEFAULT_GRID, help="cells per side (multidiscrete)")
    parser.add_argument("--num-envs", type=int, default=64, help="episodes stepped as one batch")
    parser.add_argument("--timesteps", type=int, default=1_000_000, help="environment steps of training")
    parser.add_argument("--rollout-episodes", type=int, default=4, help="whole episodes per env per rollout")
    parser.add_argument("--batch-size", type=int, default=512, help="minibatch of PPO's updates")
    parser.add_argument("--n-epochs", type=int, default=4, help="PPO epochs per rollout")
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--gamma", type=float, default=1.0, help="discount (episodes have a fixed length)")
    parser.add_argument("--ent-coef", type=float, default=0.0)
    parser.add_argument("--lstm-hidden", type=int, default=256, help="hidden size of the LSTM")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-size", type=int, default=None, help="test canvases scored (default: all)")
    parser.add_argument("--eval-batch", type=int, default=1000, help="episodes per evaluation batch")
    parser.add_argument("--run-dir", default=None, help="TensorBoard logs, model.zip and results/test.json")
    args = parser.parse_args(argv)
    if args.num_envs < 1 or args.timesteps < 1 or args.rollout_episodes < 1:
        parser.error("--num-envs, --timesteps and --rollout-episodes must be positive")
    return args


def main(argv: list[str] | None = None) -> EvaluationResult:
    args = parse(argv)
    grid = args.grid if args.action == "multidiscrete" else None
    venv = VecMonitor(SB3VecEnv.make(args.env_id, num_envs=args.num_envs, action=args.action, grid=grid))
    n_glimpses = venv.get_attr("config")[0].n_glimpses
    n_steps = args.rollout_episodes * n_glimpses  # whole episodes per rollout
    run_dir = None if args.run_dir is None else Path(args.run_dir)
    model = RecurrentPPO(
        "MultiInputLstmPolicy",
        venv,
        n_steps=n_steps,
        batch_size=min(args.batch_size, args.num_envs * n_steps),
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        gamma=args.gamma,
        ent_coef=args.ent_coef,
        policy_kwargs={"lstm_hidden_size": args.lstm_hidden},
        seed=args.seed,
        tensorboard_log=None if run_dir is None else str(run_dir),
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=args.timesteps)
    train_seconds = time.perf_counter() - start
    result = evaluate(model, args.env_id, eval_size=args.eval_size, batch=args.eval_batch)
    low, high = result.ci95
    print(
        f"{args.env_id}: RecurrentPPO ({args.action} actions), {model.num_timesteps:,} steps in "
        f"{train_seconds / 60:.1f} min, test accuracy {result.accuracy:.4f} (95% CI {low:.4f}-{high:.4f}) "
        f"on {result.n} canvases"
    )
    if run_dir is not None:
        model.save(run_dir / "model.zip")
        record = {
            **result.as_dict(),
            "steps": int(model.num_timesteps),
            "train_seconds": train_seconds,
            "params": sum(p.numel() for p in model.policy.parameters()),
            "hyperparameters": vars(args),
            "command": "python examples/recurrent_ppo.py " + " ".join(sys.argv[1:] if argv is None else argv),
        }
        (run_dir / "results").mkdir(parents=True, exist_ok=True)
        (run_dir / "results" / "test.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    main()
