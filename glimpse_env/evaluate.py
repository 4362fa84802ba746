"""``python -m glimpse_env.evaluate``: evaluate any policy with the project's one protocol.

    python -m glimpse_env.evaluate --env GlimpseMNIST-v0 --policy random
    python -m glimpse_env.evaluate --env GlimpseMNIST-Cluttered-v0 --policy ram:RUN/checkpoints/best.pt \\
        --mc-samples 10 --json out.json
    python -m glimpse_env.evaluate --env GlimpseMNIST-v0 --policy sb3:RecurrentPPO:model.zip

``--policy`` is one of:

- ``random``: uniformly random locations and labels (:class:`~glimpse_env.evaluation.RandomPolicy`);
- ``ram:CHECKPOINT``: a RAM checkpoint of ``python -m agents.ram_reinforce``
  (``agents.evaluate.RAMPolicy``; the checkpoint's environment must be ``--env``);
- ``sb3:ALGO:PATH``: a model saved by stable-baselines3 (``PPO``, ``A2C``, ``SAC``, ``TD3``,
  ...) or sb3-contrib (``RecurrentPPO``, ...), loaded with ``ALGO.load(PATH)`` and played
  through :class:`~glimpse_env.evaluation.SB3Policy`, its action form (flat or
  multidiscrete, and the grid) read from the model's action space.

Every canvas of ``--split`` (or the first ``--episodes``) is played by
:func:`glimpse_env.evaluation.evaluate`; prints a table and, with ``--json``, writes the
result (``accuracy``, ``ci95``, ``n``, ``env_id``, ``policy``, ``per_class``,
``mean_reward``, ``mean_locations``, ...) with the command's arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glimpse_env.env import observation_space
from glimpse_env.evaluation import (
    DEFAULT_NUM_ENVS,
    EvaluationResult,
    Policy,
    RandomPolicy,
    SB3Policy,
    evaluate,
    format_table,
    task_config,
)
from glimpse_env.registration import ENV_SPECS
from glimpse_env.vector import check_device

__all__ = ["PolicySpecError", "load_policy", "main"]

POLICY_FORMS = "random, ram:CHECKPOINT or sb3:ALGO:PATH"


class PolicySpecError(ValueError):
    """A ``--policy`` that cannot be loaded: an unknown form or algorithm, a missing or
    unreadable file, or a model made for another environment."""


def _sb3_algorithm(name: str) -> Any:
    """The SB3 / sb3-contrib algorithm class called ``name``, or a :class:`PolicySpecError`."""
    import sb3_contrib
    import stable_baselines3
    from stable_baselines3.common.base_class import BaseAlgorithm

    def algorithms(module: Any) -> list[str]:
        return sorted(
            attr
            for attr in dir(module)
            if isinstance(getattr(module, attr), type) and issubclass(getattr(module, attr), BaseAlgorithm)
        )

    for module in (stable_baselines3, sb3_contrib):
        if name in algorithms(module):
            return getattr(module, name)
    raise PolicySpecError(
        f"unknown SB3 algorithm {name!r} in --policy sb3:{name}:PATH; stable_baselines3 has "
        f"{', '.join(algorithms(stable_baselines3))} and sb3_contrib has {', '.join(algorithms(sb3_contrib))}"
    )


def _load_sb3(algorithm: str, path: str, env_id: str, *, device: torch.device, sample: bool) -> SB3Policy:
    """An SB3 model as a policy, checked against the environment's spaces."""
    cls = _sb3_algorithm(algorithm)
    file = Path(path)
    if not file.is_file() and not file.with_name(file.name + ".zip").is_file():
        raise PolicySpecError(
            f"no SB3 model at {path!r} (nor {path + '.zip'!r}); give the file model.save() wrote"
        )
    try:
        model = cls.load(path, device=device)
    except Exception as error:  # not a zip, another algorithm's file, a corrupted file
        raise PolicySpecError(
            f"{algorithm}.load({path!r}) failed ({type(error).__name__}: {error}); is it a model saved by "
            f"{algorithm}.save()?"
        ) from None
    try:
        policy = SB3Policy(model, deterministic=not sample, name=f"sb3:{algorithm}:{path}")
    except ValueError as error:
        raise PolicySpecError(f"{path}: {error}") from None
    config = task_config(env_id)
    expected = observation_space(config)
    if model.observation_space != expected or policy.num_classes != config.num_classes:
        raise PolicySpecError(
            f"the SB3 model {path!r} was trained on observations {model.observation_space} with "
            f"{policy.num_classes} classes, but {env_id} gives {expected} with {config.num_classes} classes: "
            f"evaluate it on the environment it was trained on (models trained through VecFrameStack or "
            f"other observation wrappers are not supported)"
        )
    return policy


def _load_ram(path: str, env_id: str, *, device: torch.device, sample: bool, seed: int) -> Policy:
    """A RAM checkpoint as a policy (``agents`` is imported here only: the package stays free of it)."""
    from agents.evaluate import RAMPolicy, load_model
    from agents.runs import CheckpointError

    try:
        model, config = load_model(path, device=device)
    except CheckpointError as error:
        raise PolicySpecError(f"--policy ram:{path}: {error}") from None
    if config.get("env") != env_id:
        raise PolicySpecError(
            f"the RAM checkpoint {path!r} was trained on {config.get('env')!r}, not on --env {env_id!r}: "
            f"pass --env {config.get('env')} (a RAM plays the glimpses of its own environment)"
        )
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    policy = RAMPolicy(
        model,
        std=config["std"],
        n_glimpses=task_config(env_id).n_glimpses,
        sample=sample,
        generator=generator,
    )
    policy.name = f"ram:{path}"
    return policy


def load_policy(
    spec: str, env_id: str, *, device: str | torch.device = "cpu", seed: int = 0, sample: bool | None = None
) -> Policy:
    """The policy named by ``spec`` (``random``, ``ram:CHECKPOINT`` or ``sb3:ALGO:PATH``) for ``env_id``.

    Args:
        spec: the ``--policy`` string.
        env_id: the environment it is evaluated on.
        device: where the model runs.
        seed: seed of the policy's randomness (the random policy's generator, the RAM's
            location draws, torch's global generator for SB3's sampled actions).
        sample: draw the policy's actions (default for the RAM, as ``agents.evaluate``) or
            play their means / modes (default for SB3 models: ``deterministic=True``).

    Raises :class:`PolicySpecError` (a ``ValueError``) for a spec that cannot be loaded.
    """
    kind, _, rest = spec.partition(":")
    device = check_device(device)
    if spec == "random":
        return RandomPolicy(task_config(env_id).num_classes, seed=seed)
    if kind == "ram" and rest:
        return _load_ram(rest, env_id, device=device, sample=True if sample is None else sample, seed=seed)
    algorithm, _, path = rest.partition(":")
    if kind == "sb3" and algorithm and path:
        torch.manual_seed(seed)
        return _load_sb3(algorithm, path, env_id, device=device, sample=bool(sample))
    raise PolicySpecError(f"--policy {spec!r} is not one of {POLICY_FORMS}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m glimpse_env.evaluate",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--env", required=True, choices=[spec.env_id for spec in ENV_SPECS], help="environment id"
    )
    parser.add_argument("--policy", required=True, help=f"the policy: {POLICY_FORMS}")
    parser.add_argument("--split", default="test", choices=("val", "test"), help="the split to play")
    parser.add_argument("--episodes", type=int, default=None, help="play only the first N canvases")
    parser.add_argument("--mc-samples", type=int, default=1, help="episodes per canvas (Monte Carlo)")
    parser.add_argument("--num-envs", type=int, default=DEFAULT_NUM_ENVS, help="episodes per batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the environment and the policy")
    parser.add_argument(
        "--sample",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw the policy's actions (default for ram:) or play its means/modes (default for sb3:)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda: the environment's and the model's")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument(
        "--data-dir", default=None, help="data folder (default: $GLIMPSE_DATA_DIR, else the user cache)"
    )
    parser.add_argument("--json", default=None, help="also write the result as JSON to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> EvaluationResult:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the result."""
    args = _parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = check_device(args.device, "--device")
    env_kwargs: dict[str, Any] = {} if args.data_dir is None else {"data_dir": args.data_dir}
    policy = load_policy(args.policy, args.env, device=device, seed=args.seed, sample=args.sample)
    result = evaluate(
        policy,
        args.env,
        split=args.split,
        episodes=args.episodes,
        mc_samples=args.mc_samples,
        num_envs=args.num_envs,
        seed=args.seed,
        device=device,
        name=args.policy,
        **env_kwargs,
    )
    print(format_table(result))
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        record = {**result.as_dict(), "args": vars(args)}
        out.write_text(json.dumps(record, indent=2, sort_keys=True, default=_plain) + "\n")
    return result


def _plain(value: object) -> object:
    """JSON for what ``json`` does not know (numpy scalars, paths)."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, TypeError, OSError) as error:
        sys.exit(f"error: {error}")
