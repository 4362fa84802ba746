"""``python -m glimpse_env.evaluate``: evaluate any policy with the project's one protocol.

    python -m glimpse_env.evaluate --env GlimpseMNIST-v0 --policy random
    python -m glimpse_env.evaluate --env GlimpseMNIST-Cluttered-v0 --policy ram:RUN/checkpoints/best.pt \\
        --mc-samples 10 --json out.json
    python -m glimpse_env.evaluate --env GlimpseMNIST-v0 --policy ram:pretrained --json out.json
    python -m glimpse_env.evaluate --env GlimpseMNIST-v0 --policy sb3:RecurrentPPO:model.zip

``--policy`` is one of:

- ``random``: uniformly random locations and labels (:class:`~glimpse_env.evaluation.RandomPolicy`);
- ``ram:CHECKPOINT``: a RAM checkpoint of ``python -m agents.ram_reinforce``
  (``agents.evaluate.RAMPolicy``; the checkpoint's environment must be ``--env``);
- ``ram:pretrained``: the RAM whose weights ship in the repository for ``--env``'s
  leaderboard row (``agents.pretrained``), played with the row's seed and Monte Carlo
  samples unless ``--seed`` / ``--mc-samples`` say otherwise: it reproduces the row;
- ``sb3:ALGO:PATH``: a model saved by stable-baselines3 (``PPO``, ``A2C``, ``SAC``, ``TD3``,
  ...) or sb3-contrib (``RecurrentPPO``, ...), loaded with ``ALGO.load(PATH)`` and played
  through :class:`~glimpse_env.evaluation.SB3Policy`, its action form (flat or
  multidiscrete, and the grid) read from the model's action space. ``ALGO`` must be the
  algorithm that saved the file: its policy class, read from the zip, is checked against
  ``ALGO``'s own before loading (a RecurrentPPO zip is not played as "PPO"; PPO, A2C and
  TRPO share their policies and cannot be told apart this way). SB3 zips are pickle-based:
  loading one can run any code, so load only files from sources you trust.

Every canvas of ``--split`` (or the first ``--episodes``) is played by
:func:`glimpse_env.evaluation.evaluate`; prints a table and, with ``--json``, writes the
result (``accuracy``, ``ci95``, ``n``, ``env_id``, ``policy``, ``per_class``,
``mean_reward``, ``mean_locations``, ...) with the command's arguments. ``--seed`` seeds
the environment and the policy; by default 0, and for ``ram:`` the checkpoint's training
seed (``config["seed"]``), as ``agents.evaluate`` and the run's own test draw the locations.
Bad input ends the program with one line on stderr, before anything is played or written.
"""

from __future__ import annotations

import argparse
import base64
import json
import pickletools
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glimpse_env.cli import (
    ArgumentParser,
    check_data_dir,
    check_flag_int,
    check_output_file,
    run_cli,
    set_threads,
)
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
from glimpse_env.extras import require_sb3
from glimpse_env.registration import ENV_SPECS
from glimpse_env.vector import check_device

__all__ = ["PolicySpecError", "algorithms_of_policy", "load_policy", "main", "saved_policy_class"]

POLICY_FORMS = "random, ram:CHECKPOINT, ram:pretrained or sb3:ALGO:PATH"
#: ``ram:pretrained``: the RAM whose weights ship for ``--env`` (its leaderboard row)
PRETRAINED = "pretrained"


class PolicySpecError(ValueError):
    """A ``--policy`` that cannot be loaded: an unknown form or algorithm, a missing or
    unreadable file, or a model made for another environment."""


def _algorithms() -> dict[str, Any]:
    """The SB3 and sb3-contrib algorithm classes by name (a
    :class:`~glimpse_env.extras.MissingExtraError` without the ``sb3`` extra)."""
    require_sb3("--policy sb3:ALGO:PATH")
    import sb3_contrib
    import stable_baselines3
    from stable_baselines3.common.base_class import BaseAlgorithm

    found: dict[str, Any] = {}
    for module in (stable_baselines3, sb3_contrib):
        for attr in dir(module):
            value = getattr(module, attr)
            if isinstance(value, type) and issubclass(value, BaseAlgorithm) and attr not in found:
                found[attr] = value
    return found


def _sb3_algorithm(name: str) -> Any:
    """The SB3 / sb3-contrib algorithm class called ``name``, or a :class:`PolicySpecError`
    (a :class:`~glimpse_env.extras.MissingExtraError` without the ``sb3`` extra)."""
    require_sb3("--policy sb3:ALGO:PATH")
    import sb3_contrib
    import stable_baselines3

    algorithms = _algorithms()
    if name in algorithms:
        return algorithms[name]

    def listed(module: Any) -> str:
        return ", ".join(
            sorted(a for a, cls in algorithms.items() if cls.__module__.startswith(module.__name__))
        )

    raise PolicySpecError(
        f"unknown SB3 algorithm {name!r} in --policy sb3:{name}:PATH; stable_baselines3 has "
        f"{listed(stable_baselines3)} and sb3_contrib has {listed(sb3_contrib)}"
    )


def saved_policy_class(path: str | Path) -> tuple[str, str] | None:
    """``(module, name)`` of the policy class an SB3 zip was saved with, or ``None`` when it
    cannot be told (not a zip, a policy pickled by value, ...).

    Read from the zip's ``data`` JSON without unpickling anything: the class is stored as a
    pickle by reference, whose opcodes (listed by :mod:`pickletools`, which runs nothing)
    name its module and class.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
        raw = base64.b64decode(data["policy_class"][":serialized:"])
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(raw)]
    except Exception:  # whatever the file is, the check is skipped and loading says what is wrong
        return None
    ops = [(name, arg) for name, arg in ops if name not in ("PROTO", "FRAME", "MEMOIZE")]
    names = [name for name, _ in ops]
    strings = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE")
    by_reference = names[2:] == ["STACK_GLOBAL", "STOP"] and len(names) == 4
    if by_reference and names[0] in strings and names[1] in strings:
        return str(ops[0][1]), str(ops[1][1])
    if names == ["GLOBAL", "STOP"] and isinstance(ops[0][1], str) and " " in ops[0][1]:
        module, _, name = ops[0][1].partition(" ")
        return module, name
    return None


def algorithms_of_policy(classes: Sequence[tuple[str, str]]) -> list[str]:
    """The SB3 / sb3-contrib algorithms a policy class belongs to, from ``classes``: the
    ``(module, name)`` of the class and of its bases, most specific first.

    An algorithm's own policies are the values of its ``policy_aliases`` (``MlpPolicy``,
    ...); the algorithms whose own policy comes first in ``classes`` are returned (several
    when they share it, as PPO, A2C and TRPO do; none for a policy of no known algorithm).
    """
    ranks: dict[str, int] = {}
    position = {name: rank for rank, name in reversed(list(enumerate(classes)))}
    for algorithm, cls in _algorithms().items():
        own = [
            position[(policy.__module__, policy.__qualname__)]
            for policy in getattr(cls, "policy_aliases", {}).values()
            if isinstance(policy, type) and (policy.__module__, policy.__qualname__) in position
        ]
        if own:
            ranks[algorithm] = min(own)
    best = min(ranks.values(), default=None)
    return sorted(algorithm for algorithm, rank in ranks.items() if rank == best)


def _check_algorithm(algorithm: str, path: str, classes: Sequence[tuple[str, str]]) -> None:
    """A :class:`PolicySpecError` unless ``algorithm`` is one the policy ``classes`` (see
    :func:`algorithms_of_policy`) belong to; a policy of no known algorithm passes."""
    holders = algorithms_of_policy(classes)
    if holders and algorithm not in holders:
        module, name = classes[0]
        fix = f"sb3:{holders[0]}:{path}"
        if len(holders) > 1:
            fix = f"sb3:ALGO:{path} with ALGO one of {', '.join(holders)}"
        raise PolicySpecError(
            f"{path!r} holds a model of {' / '.join(holders)} (its policy is {module}.{name}), not of "
            f"{algorithm}: pass --policy {fix}"
        )


def _load_sb3(algorithm: str, path: str, env_id: str, *, device: torch.device, sample: bool) -> SB3Policy:
    """An SB3 model as a policy, checked against the environment's spaces.

    The algorithm that saved the zip is checked against ``algorithm`` twice: before loading,
    from the policy class the zip names (:func:`saved_policy_class`, nothing unpickled),
    and after, from the class of the loaded policy and its bases. SB3 zips are pickle-based:
    loading one runs whatever code it holds, so load only files from trusted sources.
    """
    cls = _sb3_algorithm(algorithm)
    file = Path(path)
    if not file.is_file() and not file.with_name(file.name + ".zip").is_file():
        raise PolicySpecError(
            f"no SB3 model at {path!r} (nor {path + '.zip'!r}); give the file model.save() wrote"
        )
    saved = saved_policy_class(file if file.is_file() else file.with_name(file.name + ".zip"))
    if saved is not None:
        _check_algorithm(algorithm, path, [saved])
    try:
        model = cls.load(path, device=device)
    except Exception as error:  # not a zip, another algorithm's file, a corrupted file
        raise PolicySpecError(
            f"{algorithm}.load({path!r}) failed ({type(error).__name__}: {error}); is it a model saved by "
            f"{algorithm}.save()?"
        ) from None
    policy_type = type(getattr(model, "policy", None))
    _check_algorithm(algorithm, path, [(c.__module__, c.__qualname__) for c in policy_type.__mro__])
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


def _load_ram(path: str, env_id: str, *, device: torch.device, sample: bool, seed: int | None) -> Policy:
    """A RAM checkpoint as a policy (``agents`` is imported here only: the package stays free of it);
    its location draws are seeded with ``seed``, by default the checkpoint's training seed.
    ``path`` ``pretrained`` is the RAM that ships for ``env_id`` (:func:`agents.pretrained`),
    seeded by default as its leaderboard row; its ``mc_samples`` is the row's."""
    from agents.evaluate import RAMPolicy, default_seed, load_model
    from glimpse_engine.errors import CheckpointError

    mc_samples = None
    if path == PRETRAINED:
        from agents.shipped import pretrained

        try:
            shipped = pretrained(env_id, device=device)
        except ValueError as error:  # glimpse_engine.weights.WeightsError
            raise PolicySpecError(f"--policy ram:{path}: {error}") from None
        model, std, own_seed, mc_samples = shipped.model, shipped.std, shipped.seed, shipped.mc_samples
    else:
        try:
            model, config = load_model(path, device=device)
        except CheckpointError as error:
            raise PolicySpecError(f"--policy ram:{path}: {error}") from None
        if config.get("env") != env_id:
            raise PolicySpecError(
                f"the RAM checkpoint {path!r} was trained on {config.get('env')!r}, not on --env {env_id!r}: "
                f"pass --env {config.get('env')} (a RAM plays the glimpses of its own environment)"
            )
        std, own_seed = config["std"], default_seed(config)
    model.eval()
    generator = torch.Generator(device=device).manual_seed(own_seed if seed is None else seed)
    policy = RAMPolicy(
        model,
        std=std,
        n_glimpses=task_config(env_id).n_glimpses,
        sample=sample,
        generator=generator,
    )
    policy.name = f"ram:{path}"
    policy.mc_samples = mc_samples  # type: ignore[attr-defined]
    return policy


def load_policy(
    spec: str,
    env_id: str,
    *,
    device: str | torch.device = "cpu",
    seed: int | None = None,
    sample: bool | None = None,
) -> Policy:
    """The policy named by ``spec`` (``random``, ``ram:CHECKPOINT`` or ``sb3:ALGO:PATH``) for ``env_id``.

    Args:
        spec: the ``--policy`` string.
        env_id: the environment it is evaluated on.
        device: where the model runs.
        seed: seed of the policy's randomness (the random policy's generator, the RAM's
            location draws, torch's global generator for SB3's sampled actions); default 0,
            and for a RAM its checkpoint's training seed (as ``agents.evaluate``).
        sample: draw the policy's actions (default for the RAM, as ``agents.evaluate``) or
            play their means / modes (default for SB3 models: ``deterministic=True``).

    Raises :class:`PolicySpecError` (a ``ValueError``) for a spec that cannot be loaded,
    e.g. an SB3 zip saved by another algorithm than the spec's, and
    :class:`~glimpse_env.extras.MissingExtraError` (an ``ImportError``) for ``sb3:`` without
    stable-baselines3 and sb3-contrib (``pip install 'glimpse-mnist[sb3]'``). SB3 zips are
    pickle-based: load only files from trusted sources.
    """
    kind, _, rest = spec.partition(":")
    device = check_device(device)
    if spec == "random":
        return RandomPolicy(task_config(env_id).num_classes, seed=0 if seed is None else seed)
    if kind == "ram" and rest:
        return _load_ram(rest, env_id, device=device, sample=True if sample is None else sample, seed=seed)
    algorithm, _, path = rest.partition(":")
    if kind == "sb3" and algorithm and path:
        torch.manual_seed(0 if seed is None else seed)
        return _load_sb3(algorithm, path, env_id, device=device, sample=bool(sample))
    raise PolicySpecError(f"--policy {spec!r} is not one of {POLICY_FORMS}")


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m glimpse_env.evaluate",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--env", required=True, choices=[spec.env_id for spec in ENV_SPECS], help="environment id"
    )
    parser.add_argument(
        "--policy",
        required=True,
        help=f"the policy: {POLICY_FORMS}; ALGO must be the algorithm that saved the zip (checked). "
        f"SB3 zips are pickle-based: load only files from sources you trust",
    )
    parser.add_argument("--split", default="test", choices=("val", "test"), help="the split to play")
    parser.add_argument("--episodes", type=int, default=None, help="play only the first N canvases")
    parser.add_argument(
        "--mc-samples",
        type=int,
        default=None,
        help="episodes per canvas (Monte Carlo; default 1, for ram:pretrained its leaderboard row's)",
    )
    parser.add_argument("--num-envs", type=int, default=DEFAULT_NUM_ENVS, help="episodes per batch")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the environment and the policy (default: 0; for ram: the checkpoint's training seed, "
        "config['seed'], as agents.evaluate and the run's own test)",
    )
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
    parser.add_argument(
        "--json", default=None, help="also write the result as JSON to this file (checked before playing)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> EvaluationResult:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the result.

    Bad input is a ``ValueError`` (:class:`PolicySpecError` for ``--policy``) naming the
    flag or file, raised before anything is played or written."""
    args = _parser().parse_args(argv)
    check_flag_int(args.episodes, "--episodes", low=1, optional=True, hint="drop it to play every canvas")
    check_flag_int(args.mc_samples, "--mc-samples", low=1, optional=True, hint="1 plays each canvas once")
    check_flag_int(args.num_envs, "--num-envs", low=1, hint=f"e.g. --num-envs {DEFAULT_NUM_ENVS}")
    check_flag_int(args.seed, "--seed", low=0, optional=True, hint="e.g. --seed 0")
    out = None if not args.json else check_output_file(args.json, "--json")
    check_data_dir(args.data_dir)
    set_threads(args.threads)
    device = check_device(args.device, "--device")
    env_kwargs: dict[str, Any] = {} if args.data_dir is None else {"data_dir": args.data_dir}
    policy = load_policy(args.policy, args.env, device=device, seed=args.seed, sample=args.sample)
    if args.seed is None:  # a RAM's own seed (its training seed, which it draws with), else 0
        seed = getattr(policy, "seed", None) if args.policy.startswith("ram:") else None
        args.seed = 0 if seed is None else seed
    if args.mc_samples is None:  # a shipped RAM's row's samples, else 1
        args.mc_samples = getattr(policy, "mc_samples", None) or 1
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
    if out is not None:
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
    run_cli(main, errors=(TypeError,))
