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

from glimpse_env.cli import ArgumentParser, check_flag_int, check_flag_real, run_cli
from glimpse_env.evaluation import EvaluationResult, SB3Policy
from glimpse_env.evaluation import evaluate as evaluate_policy
from glimpse_env.extras import MissingExtraError, require_sb3
from glimpse_env.registration import ENV_SPECS
from glimpse_env.wrappers import ACTION_KINDS, DEFAULT_GRID, MIN_GRID, check_grid

try:  # the sb3 extra: without it, one line that says how to install it (no traceback)
    require_sb3("examples/recurrent_ppo.py")
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.utils import get_linear_fn
    from stable_baselines3.common.vec_env import VecMonitor

    from glimpse_env.wrappers import SB3VecEnv
except MissingExtraError as missing:
    sys.exit(f"error: {missing}")

#: how the run folder's settings name this script (the mark of its run folders)
PROGRAM = "examples/recurrent_ppo.py"
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
#: Settings added after runs were kept, with the value those runs had (a resume of one compares to it)
PREDATED = {"reward": "terminal"}
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


def _own_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run of this script: its :data:`SETTINGS_FILE`, a JSON
    object with this script's settings (and, from this version on, its :data:`PROGRAM`)."""
    try:
        saved = json.loads((run_dir / SETTINGS_FILE).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(saved, dict):
        return False
    older = {"env_id", "action", "rollout_episodes", "lstm_hidden"} <= set(saved)  # before "program"
    return saved.get("program") == PROGRAM or older


def _check_run_dir(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--run-dir`` with ``--resume`` / ``--overwrite``: a new or empty folder starts a run; a
    folder of this script's (:func:`_own_run`) is resumed or replaced only when asked; any
    other folder, and the current folder or one above it, is never written in or deleted."""
    if args.resume and args.overwrite:
        parser.error("--resume continues the run folder and --overwrite replaces it: give one")
    if args.run_dir is None:
        if args.resume or args.overwrite:
            parser.error("--resume and --overwrite need --run-dir")
        return
    run_dir = Path(args.run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        parser.error(f"--run-dir {run_dir} is a file, not a folder; give a new folder")
    if run_dir.is_dir() and not os.access(run_dir, os.W_OK | os.X_OK):
        parser.error(f"--run-dir {run_dir} cannot be written in (permission denied); give another folder")
    empty = not run_dir.is_dir() or not any(run_dir.iterdir())
    if empty:
        if args.resume:
            parser.error(f"--resume: no run in {run_dir} (no {MODEL_FILE}); start the run without --resume")
        return
    if not _own_run(run_dir):
        parser.error(
            f"--run-dir {run_dir} is not empty and is not a run of {PROGRAM} (no {SETTINGS_FILE} of its "
            f"own); it is never written in or deleted: choose a new or empty --run-dir"
        )
    if args.overwrite:
        here = Path.cwd().resolve()
        if run_dir.resolve() in (here, *here.parents):
            parser.error(
                f"--overwrite would delete {run_dir}, which is the current folder or one above it; "
                f"run from outside it or choose another --run-dir"
            )
        return
    has_model = (run_dir / MODEL_FILE).exists()
    if not args.resume:
        parser.error(
            f"{run_dir} already holds a run ({MODEL_FILE if has_model else SETTINGS_FILE}): pass --resume to "
            "continue it, --overwrite to replace it, or another --run-dir"
        )
    if not has_model:
        parser.error(f"--resume: no {MODEL_FILE} in {run_dir}; start the run again with --overwrite")
    saved = json.loads((run_dir / SETTINGS_FILE).read_text())
    for key, value in vars(args).items():
        if key not in RESUMABLE and saved.get(key, PREDATED.get(key)) != value:
            parser.error(
                f"--resume: {run_dir} was trained with {key}={saved.get(key)!r}, not {value!r}; "
                "drop the flag or start a new run"
            )


def _check_numbers(args: argparse.Namespace) -> None:
    """The numeric flags, each with its own one-line error (a ``ValueError``)."""
    for flag, low in (
        ("num_envs", 1),
        ("timesteps", 1),
        ("rollout_episodes", 1),
        ("batch_size", 2),  # PPO normalises the advantages of a minibatch: two samples at least
        ("n_epochs", 1),
        ("lstm_hidden", 1),
        ("eval_batch", 1),
        ("checkpoint_every", 1),
        ("grid", MIN_GRID),
    ):
        check_flag_int(getattr(args, flag), "--" + flag.replace("_", "-"), low=low)
    try:
        check_grid(args.grid)  # the wrappers' own bounds
    except ValueError as error:
        raise ValueError(f"--grid: {error}") from None
    check_flag_int(args.eval_size, "--eval-size", low=1, optional=True, hint="drop it to score every canvas")
    check_flag_int(args.threads, "--threads", low=1, optional=True, hint="drop it to let torch choose")
    check_flag_int(args.seed, "--seed", low=0, high=2**32 - 1)  # numpy's seeds, which SB3 sets
    check_flag_real(args.learning_rate, "--learning-rate", low=0.0, open_low=True, hint="e.g. 3e-4")
    check_flag_real(args.gamma, "--gamma", low=0.0, high=1.0)
    check_flag_real(args.gae_lambda, "--gae-lambda", low=0.0, high=1.0, optional=True)
    check_flag_real(args.clip_range, "--clip-range", low=0.0, open_low=True, hint="e.g. 0.2")
    check_flag_real(args.target_kl, "--target-kl", low=0.0, open_low=True, optional=True, hint="e.g. 0.02")
    check_flag_real(args.ent_coef, "--ent-coef", low=0.0, optional=True)
    check_flag_real(args.vf_coef, "--vf-coef", low=0.0)
    check_flag_real(args.time_limit, "--time-limit", low=0.0, open_low=True, optional=True, hint="minutes")


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line ``argv``, checked: a bad value or run folder ends the program with one
    line on stderr (exit status 2) before anything is made or written."""
    parser = ArgumentParser(
        prog=f"python {PROGRAM}", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-id", default="GlimpseMNIST-v0", choices=[s.env_id for s in ENV_SPECS])
    parser.add_argument(
        "--action", default="multidiscrete", choices=ACTION_KINDS, help="action form of the adapter"
    )
    parser.add_argument("--grid", type=int, default=DEFAULT_GRID, help="cells per side (multidiscrete)")
    parser.add_argument(
        "--reward",
        default="terminal",
        choices=("terminal", "every_step"),
        help="the training env's reward: terminal (1 for a right last label) or every_step (1/T for every "
        "right label); accuracy, and so the evaluation, is the last label's either way",
    )
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
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's own, the fastest on a machine to yourself); "
        "pass 1 when other processes share the cores (docs/speed.md)",
    )
    parser.add_argument("--eval-size", type=int, default=None, help="val and test canvases scored (all)")
    parser.add_argument("--eval-batch", type=int, default=1000, help="episodes per evaluation batch")
    parser.add_argument(
        "--run-dir",
        default=None,
        help=f"TensorBoard logs, model.zip and results/test.json: a new or empty folder, or a run of this "
        f"script's (marked by its {SETTINGS_FILE}) with --resume or --overwrite",
    )
    parser.add_argument("--checkpoint-every", type=int, default=100_000, help="steps between checkpoints")
    parser.add_argument("--time-limit", type=float, default=None, help="minutes of training, then evaluate")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the run in --run-dir (only a run of this script)"
    )
    args = parser.parse_args(argv)
    try:
        _check_numbers(args)
    except ValueError as error:
        parser.error(str(error))
    tuned = TUNED[args.action]  # what the README's sweep found for this action form
    args.gae_lambda = tuned["gae_lambda"] if args.gae_lambda is None else args.gae_lambda
    args.ent_coef = tuned["ent_coef"] if args.ent_coef is None else args.ent_coef
    try:
        args.net_arch = [int(w) for w in args.net_arch.split(",") if w.strip()]
    except ValueError:
        parser.error(f"--net-arch takes comma-separated widths such as 64,64, got {args.net_arch!r}")
    if any(width < 1 for width in args.net_arch):
        parser.error(f"--net-arch widths must be positive integers such as 64,64, got {args.net_arch}")
    _check_run_dir(parser, args)
    return args


def main(argv: list[str] | None = None) -> EvaluationResult:
    """Train, save and score a RecurrentPPO as the command line ``argv`` says (default:
    ``sys.argv[1:]``); returns the test result."""
    args = parse(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    grid = args.grid if args.action == "multidiscrete" else None
    options = {} if args.reward == "terminal" else {"reward": args.reward}  # the default env as it was
    venv = VecMonitor(
        SB3VecEnv.make(args.env_id, num_envs=args.num_envs, action=args.action, grid=grid, **options)
    )
    n_glimpses = venv.get_attr("config")[0].n_glimpses
    n_steps = args.rollout_episodes * n_glimpses  # whole episodes per rollout
    run_dir = None if args.run_dir is None else Path(args.run_dir)
    if args.overwrite and run_dir is not None and _own_run(run_dir):
        shutil.rmtree(run_dir)  # the old run goes, its TensorBoard logs too (parse checked it is one)
    if args.resume:
        assert run_dir is not None
        try:
            model = RecurrentPPO.load(run_dir / MODEL_FILE, env=venv)
        except Exception as error:  # truncated, corrupted, or saved for other spaces
            raise ValueError(
                f"--resume: {run_dir / MODEL_FILE} cannot be loaded ({type(error).__name__}: {error}); "
                f"start the run again with --overwrite"
            ) from None
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
            settings = {**vars(args), "program": PROGRAM}  # the mark of a run folder of this script
            (run_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
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
    run_cli(main)
