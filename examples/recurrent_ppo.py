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

The run folder (``--run-dir``) gets SB3's TensorBoard logs, the model (``model.zip``,
loadable with ``RecurrentPPO.load``, rewritten atomically every ``--checkpoint-every``
steps and at the end, so ``--resume RUN`` continues a killed run from its last
checkpoint), and ``results/test.json``: the deterministic policy scored on the val and
test splits (whole splits unless ``--eval-size``) by the project's evaluation protocol
(:mod:`glimpse_env.evaluation`), with the command and the hyperparameters. Compare
settings on ``val_accuracy``; test is for the table. A saved model is scored the same way by
``python -m glimpse_env.evaluate --env ID --policy sb3:RecurrentPPO:RUN/model.zip``.

The reward is sparse: 1 on the last step if the class is right. PPO has to learn the
classifier from that reward alone, where the RAM agent's classifier gets a supervised
cross-entropy on the label the environment reveals; expect it to learn far more slowly.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import get_linear_fn
from stable_baselines3.common.vec_env import VecMonitor

from glimpse_env.evaluation import EvaluationResult, SB3Policy
from glimpse_env.evaluation import evaluate as evaluate_policy
from glimpse_env.registration import ENV_SPECS
from glimpse_env.wrappers import ACTION_KINDS, DEFAULT_GRID, SB3VecEnv

MODEL_FILE = "model.zip"
SETTINGS_FILE = "settings.json"
#: Defaults that differ between the action forms, from the sweep in the README
#: (``results/rppo/sweep/``): the multidiscrete policy's categorical heads collapse
#: without an entropy bonus, and one-step advantages (lambda 0) stop its class choices on
#: the steps before the last from sharing the final reward; the flat Gaussian policy
#: learned best with neither.
TUNED = {
    "multidiscrete": {"ent_coef": 0.01, "gae_lambda": 0.0},
    "flat": {"ent_coef": 0.0, "gae_lambda": 0.95},
}
#: Settings a resumed run may change; every other one must match the run folder's.
RESUMABLE = (
    "timesteps",
    "time_limit",
    "checkpoint_every",
    "eval_size",
    "eval_batch",
    "threads",
    "resume",
    "overwrite",
)


def evaluate(
    model: Any, env_id: str, *, eval_size: int | None, batch: int, split: str = "test"
) -> EvaluationResult:
    """The deterministic policy of ``model`` on ``split`` canvases ``0 .. eval_size - 1``
    (all when ``None``), by the project's one evaluation protocol (the same as ``python -m
    glimpse_env.evaluate --policy sb3:RecurrentPPO:PATH``)."""
    policy = SB3Policy(model, deterministic=True, name="RecurrentPPO")
    return evaluate_policy(policy, env_id, split=split, episodes=eval_size, num_envs=batch)


def save_model(model: Any, run_dir: Path) -> None:
    """``model.save`` to ``run_dir/model.zip`` through a temporary file and ``os.replace``,
    so a run killed while saving keeps its previous checkpoint."""
    tmp = run_dir / "model.tmp.zip"
    model.save(tmp)
    os.replace(tmp, run_dir / MODEL_FILE)


class Checkpoints(BaseCallback):
    """Saves the model every ``every`` steps counted from step ``saved_at`` (at the end of a
    rollout, so a resumed run starts on whole episodes) and stops learning once
    ``time_limit`` seconds have passed."""

    def __init__(self, run_dir: Path | None, *, every: int, time_limit: float | None, saved_at: int) -> None:
        super().__init__()
        self.run_dir, self.every, self.time_limit = run_dir, every, time_limit
        self.start = time.perf_counter()
        self.saved_at = saved_at
        self.out_of_time = False

    def _on_step(self) -> bool:
        return not self.out_of_time

    def _on_rollout_end(self) -> None:
        steps = self.model.num_timesteps
        if self.run_dir is not None and steps - self.saved_at >= self.every:
            save_model(self.model, self.run_dir)
            self.saved_at = steps
        if self.time_limit is not None and time.perf_counter() - self.start >= self.time_limit:
            self.out_of_time = True  # the next step returns False: learn() ends after this update


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
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--lr-schedule", default="constant", choices=("constant", "linear"), help="linear: decay to 0"
    )
    parser.add_argument("--gamma", type=float, default=1.0, help="discount (episodes have a fixed length)")
    parser.add_argument(
        "--gae-lambda", type=float, default=None, help="GAE's lambda (default: 0 multidiscrete, 0.95 flat)"
    )
    parser.add_argument("--clip-range", type=float, default=0.2)
    parser.add_argument(
        "--target-kl", type=float, default=None, help="end a rollout's epochs once the KL passes 1.5x this"
    )
    parser.add_argument(
        "--ent-coef", type=float, default=None, help="entropy bonus (default: 0.01 multidiscrete, 0 flat)"
    )
    parser.add_argument("--vf-coef", type=float, default=0.5)
    parser.add_argument("--lstm-hidden", type=int, default=256, help="hidden size of the LSTM")
    parser.add_argument(
        "--net-arch", default="64,64", help="widths of the policy and value MLPs after the LSTM ('' for none)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--eval-size", type=int, default=None, help="val and test canvases scored (all)")
    parser.add_argument("--eval-batch", type=int, default=1000, help="episodes per evaluation batch")
    parser.add_argument("--run-dir", default=None, help="TensorBoard logs, model.zip and results/test.json")
    parser.add_argument("--checkpoint-every", type=int, default=100_000, help="steps between checkpoints")
    parser.add_argument("--time-limit", type=float, default=None, help="minutes of training, then evaluate")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    parser.add_argument("--overwrite", action="store_true", help="replace the run in --run-dir")
    args = parser.parse_args(argv)
    if args.num_envs < 1 or args.timesteps < 1 or args.rollout_episodes < 1 or args.checkpoint_every < 1:
        parser.error("--num-envs, --timesteps, --rollout-episodes and --checkpoint-every must be positive")
    if args.time_limit is not None and args.time_limit <= 0:
        parser.error(f"--time-limit must be a positive number of minutes, got {args.time_limit}")
    tuned = TUNED[args.action]  # what the README's sweep found for this action form
    args.gae_lambda = tuned["gae_lambda"] if args.gae_lambda is None else args.gae_lambda
    args.ent_coef = tuned["ent_coef"] if args.ent_coef is None else args.ent_coef
    try:
        args.net_arch = [int(w) for w in args.net_arch.split(",") if w.strip()]
    except ValueError:
        parser.error(f"--net-arch takes comma-separated widths such as 64,64, got {args.net_arch!r}")
    if args.resume and args.overwrite:
        parser.error("--resume continues the run folder and --overwrite replaces it: give one")
    if args.resume or args.overwrite:
        if args.run_dir is None:
            parser.error("--resume and --overwrite need --run-dir")
    run_dir = None if args.run_dir is None else Path(args.run_dir)
    has_model = run_dir is not None and (run_dir / MODEL_FILE).exists()
    if has_model and not (args.resume or args.overwrite):
        parser.error(
            f"{run_dir} already holds a run ({MODEL_FILE}): pass --resume to continue it, "
            "--overwrite to replace it, or another --run-dir"
        )
    if args.resume:
        if not has_model:
            parser.error(f"--resume: no {MODEL_FILE} in {run_dir}; start the run without --resume")
        saved = json.loads((run_dir / SETTINGS_FILE).read_text())
        for key, value in vars(args).items():
            if key not in RESUMABLE and saved.get(key) != value:
                parser.error(
                    f"--resume: {run_dir} was trained with {key}={saved.get(key)!r}, not {value!r}; "
                    "drop the flag or start a new run"
                )
    return args


def main(argv: list[str] | None = None) -> EvaluationResult:
    args = parse(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    grid = args.grid if args.action == "multidiscrete" else None
    venv = VecMonitor(SB3VecEnv.make(args.env_id, num_envs=args.num_envs, action=args.action, grid=grid))
    n_glimpses = venv.get_attr("config")[0].n_glimpses
    n_steps = args.rollout_episodes * n_glimpses  # whole episodes per rollout
    run_dir = None if args.run_dir is None else Path(args.run_dir)
    if args.overwrite and run_dir is not None and run_dir.exists():
        shutil.rmtree(run_dir)  # the old run goes, its TensorBoard logs too
    if args.resume:
        assert run_dir is not None
        model = RecurrentPPO.load(run_dir / MODEL_FILE, env=venv)
        print(f"resuming {run_dir} at step {model.num_timesteps:,}")
    else:
        learning_rate: Any = args.learning_rate
        if args.lr_schedule == "linear":
            learning_rate = get_linear_fn(args.learning_rate, 0.0, 1.0)
        model = RecurrentPPO(
            "MultiInputLstmPolicy",
            venv,
            n_steps=n_steps,
            batch_size=min(args.batch_size, args.num_envs * n_steps),
            n_epochs=args.n_epochs,
            learning_rate=learning_rate,
            gamma=args.gamma,
            gae_lambda=args.gae_lambda,
            clip_range=args.clip_range,
            target_kl=args.target_kl,
            ent_coef=args.ent_coef,
            vf_coef=args.vf_coef,
            policy_kwargs={"lstm_hidden_size": args.lstm_hidden, "net_arch": args.net_arch},
            seed=args.seed,
            tensorboard_log=None if run_dir is None else str(run_dir),
            verbose=0,
        )
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not args.resume:
            (run_dir / SETTINGS_FILE).write_text(json.dumps(vars(args), indent=2) + "\n")
    limit = None if args.time_limit is None else args.time_limit * 60
    callback = Checkpoints(
        run_dir, every=args.checkpoint_every, time_limit=limit, saved_at=model.num_timesteps
    )
    start = time.perf_counter()
    remaining = max(args.timesteps - model.num_timesteps, 0)
    if remaining:
        model.learn(total_timesteps=remaining, callback=callback, reset_num_timesteps=not args.resume)
    train_seconds = time.perf_counter() - start
    if run_dir is not None:
        save_model(model, run_dir)
    val = evaluate(model, args.env_id, eval_size=args.eval_size, batch=args.eval_batch, split="val")
    result = evaluate(model, args.env_id, eval_size=args.eval_size, batch=args.eval_batch)
    low, high = result.ci95
    print(
        f"{args.env_id}: RecurrentPPO ({args.action} actions), {model.num_timesteps:,} steps "
        f"({train_seconds / 60:.1f} min this call), val accuracy {val.accuracy:.4f}, "
        f"test accuracy {result.accuracy:.4f} (95% CI {low:.4f}-{high:.4f}) on {result.n} canvases"
    )
    if run_dir is not None:
        results = run_dir / "results"
        earlier = results / "test.json"
        seconds = train_seconds
        command = "python examples/recurrent_ppo.py " + " ".join(sys.argv[1:] if argv is None else argv)
        commands = [command]
        if args.resume and earlier.exists():  # the run's earlier calls: their time and commands
            before = json.loads(earlier.read_text())
            seconds += before.get("train_seconds", 0.0)
            commands = [*before.get("commands", [before["command"]]), command]
        record = {
            **result.as_dict(),
            "val_accuracy": val.accuracy,
            "val_n": val.n,
            "steps": int(model.num_timesteps),
            "train_seconds": seconds,
            "steps_per_second": model.num_timesteps / seconds if seconds > 0 else None,
            "params": sum(p.numel() for p in model.policy.parameters()),
            "hyperparameters": vars(args),
            "command": " && ".join(commands),
            "commands": commands,
        }
        results.mkdir(parents=True, exist_ok=True)
        (results / "test.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    main()
