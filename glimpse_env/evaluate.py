"""``python -m glimpse_env.evaluate``: evaluate any policy with the project's one protocol.

    python -m glimpse_env.evaluate --env GlimpseMNIST-v0 --policy random
    python -m glimpse_env.evaluate --env GlimpseMNIST-Cluttered-v0 --policy ram:RUN/checkpoints/best.pt \\
        --mc-samples 10 --json out.json
    python -m glimpse_env.evaluate --env GlimpseMNIST-v0 --policy ram:pretrained --json out.json
    python -m glimpse_env.evaluate --env GlimpseMNIST-v0 --policy sb3:RecurrentPPO:model.zip

``--policy`` is one of:

- ``random``: uniformly random locations and labels (:class:`~glimpse_env.evaluation.RandomPolicy`);
- ``NAME:ARG``: the policy plug-in ``NAME`` (a bare name, no dot) with its argument ``ARG``.
  Plug-ins are registered in the entry-point group ``glimpse_env.policies``
  (:data:`POLICY_GROUP`, listed by :func:`policy_plugins`); this package registers two:

  - ``ram:CHECKPOINT``: a RAM checkpoint of ``python -m agents.ram_reinforce``
    (``agents.evaluate.RAMPolicy``; the checkpoint's environment must be ``--env``);
    ``ram:pretrained``: the RAM whose weights ship in the repository for ``--env``'s
    leaderboard row (``agents.pretrained``), played with the row's seed and Monte Carlo
    samples unless ``--seed`` / ``--mc-samples`` say otherwise: it reproduces the row
    (the factory is ``agents.plugin.ram_policy``);
  - ``sb3:ALGO:PATH``: a model saved by stable-baselines3 (``PPO``, ``A2C``, ``SAC``, ``TD3``,
    ...) or sb3-contrib (``RecurrentPPO``, ...), loaded with ``ALGO.load(PATH)`` and played
    through :class:`~glimpse_env.evaluation.SB3Policy`, its action form (flat or
    multidiscrete, and the grid) read from the model's action space (:func:`sb3_policy`).
    ``ALGO`` must be the algorithm that saved the file: its policy class, read from the zip,
    is checked against ``ALGO``'s own before loading (a RecurrentPPO zip is not played as
    "PPO"; PPO, A2C and TRPO share their policies and cannot be told apart this way). SB3
    zips are pickle-based: loading one can run any code, so load only files from sources
    you trust.

- ``MODULE.PATH:FACTORY[:ARG]``: a policy factory of your own, no packaging needed: the text
  before the first colon holds a dot, so it is a module path (``mypkg.policies``; a module
  of the working directory or of ``PYTHONPATH``), ``FACTORY`` the name of a callable in it
  (``make_policy``, or ``Class.method``), and ``ARG``, everything after the second colon,
  its argument (``""`` when left out): ``--policy mypkg.policies:make_policy:weights.pt``.
  A bare name before the first colon is always a plug-in's, so a module of one's own that
  is not in a package (``mypolicy.py``) goes in one (``mypkg/mypolicy.py``, an
  ``__init__.py`` beside it or not: ``--policy mypkg.mypolicy:make_policy``).

A factory, of a plug-in or of your own, follows :class:`PolicyFactory`:
``factory(arg, env_id, *, device, sample, seed) -> Policy`` (``sample`` and ``seed`` are
``None`` unless ``--sample`` / ``--no-sample`` / ``--seed`` are given). The policy it returns
may carry ``seed`` (an int: the environment's seed when ``--seed`` is not given, as a RAM's
training seed is) and ``mc_samples`` (the default of ``--mc-samples``). A plug-in is
registered by the package that ships it, in its ``pyproject.toml``::

    [project.entry-points."glimpse_env.policies"]
    greedy = "mypkg.policies:make_policy"      # then: --policy greedy:ARG

A bad spec (an unknown plug-in, a module that cannot be imported, a missing or non-callable
factory, a factory that returns no policy) is one :class:`PolicySpecError` line saying what
was wrong and how to fix it. :mod:`glimpse_env` imports nothing of the plug-ins until one is
used (nor ``agents``, ``baselines`` or ``glimpse_engine`` at all).

Every canvas of ``--split`` (or the first ``--episodes``) is played by
:func:`glimpse_env.evaluation.evaluate`; prints a table and, with ``--json``, writes the
result (``accuracy``, ``ci95``, ``n``, ``env_id``, ``policy``, ``per_class``,
``mean_reward``, ``mean_locations``, ...) with the command's arguments. ``--seed`` seeds
the environment and the policy; by default 0, and for ``ram:`` the checkpoint's training
seed (``config["seed"]``, the policy's ``seed``), as ``agents.evaluate`` and the run's own
test draw the locations.
Bad input ends the program with one line on stderr, before anything is played or written.
"""

from __future__ import annotations

import argparse
import base64
import difflib
import importlib
import importlib.util
import inspect
import json
import pickletools
import zipfile
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

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
from glimpse_env.devices import check_device
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
from glimpse_env.extras import MissingExtraError, require_sb3
from glimpse_env.registration import ENV_SPECS

__all__ = [
    "POLICY_GROUP",
    "PolicyFactory",
    "PolicySpecError",
    "algorithms_of_policy",
    "load_policy",
    "main",
    "policy_plugins",
    "saved_policy_class",
    "sb3_policy",
]

#: the entry-point group of the policy plug-ins: ``--policy NAME:ARG`` plays the factory
#: registered there as ``NAME``
POLICY_GROUP = "glimpse_env.policies"
POLICY_FORMS = "random, ram:CHECKPOINT, ram:pretrained or sb3:ALGO:PATH"
#: the forms of ``--policy`` beyond :data:`POLICY_FORMS`
OTHER_FORMS = (
    "NAME:ARG with NAME a policy plug-in registered in the entry-point group glimpse_env.policies, "
    "or MODULE.PATH:FACTORY[:ARG], a factory of your own (e.g. mypkg.policies:make_policy)"
)
#: what a factory is called with, for the error of one that does not take it
FACTORY_SIGNATURE = "factory(arg, env_id, *, device, sample, seed)"


class PolicySpecError(ValueError):
    """A ``--policy`` that cannot be loaded: an unknown form, plug-in or algorithm, a module
    or factory that cannot be found, a missing or unreadable file, or a model made for
    another environment."""


class PolicyFactory(Protocol):
    """What ``--policy`` calls to make a policy: a plug-in of the entry-point group
    :data:`POLICY_GROUP` (``--policy NAME:ARG``) or a callable of your own
    (``--policy MODULE.PATH:FACTORY[:ARG]``).

    Plain functions qualify::

        def make_policy(arg, env_id, *, device, sample, seed):
            return MyPolicy(arg, num_classes=task_config(env_id).num_classes, seed=seed or 0)
    """

    def __call__(
        self, arg: str, env_id: str, *, device: torch.device, sample: bool | None, seed: int | None
    ) -> Policy:
        """The policy ``arg`` names, to be played on ``env_id``.

        Args:
            arg: the text after the plug-in's name (``ram:ARG``) or after the factory
                (``MODULE.PATH:FACTORY:ARG``); ``""`` when there is none.
            env_id: the environment it is evaluated on (``--env``), e.g. to check that a
                model was trained on it (:func:`glimpse_env.evaluation.task_config` gives
                its settings).
            device: where the model runs (``--device``, checked).
            sample: ``--sample`` (True) or ``--no-sample`` (False): draw the actions or play
                their means / modes; ``None``: the policy's own default.
            seed: ``--seed``, the seed of the policy's randomness; ``None``: its own default
                (the returned policy's ``seed`` attribute, an int, then also seeds the
                environment; else 0 does).

        Returns:
            a :class:`~glimpse_env.evaluation.Policy`, optionally with ``name``, ``seed``,
            ``mc_samples`` (the default of ``--mc-samples``) and ``start_batch``.

        Raises :class:`PolicySpecError` (or any ``ValueError``) for an ``arg`` it cannot
        load: the program ends with its message, as one line.
        """
        ...


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


def sb3_policy(
    arg: str, env_id: str, *, device: torch.device, sample: bool | None, seed: int | None
) -> SB3Policy:
    """The ``sb3`` plug-in (a :class:`PolicyFactory`): ``arg`` is ``ALGO:PATH``, a model saved
    by the SB3 / sb3-contrib algorithm ``ALGO`` (checked, see :func:`algorithms_of_policy`).

    It plays the model's modes / means unless ``sample``; ``seed`` (default 0) seeds torch's
    global generator, which SB3 draws sampled actions with. Needs the ``sb3`` extra
    (:class:`~glimpse_env.extras.MissingExtraError` without it). SB3 zips are pickle-based:
    load only files from trusted sources.
    """
    algorithm, _, path = arg.partition(":")
    if not (algorithm and path):
        raise PolicySpecError(
            f"--policy {'sb3:' + arg!r} is not one of {POLICY_FORMS}: sb3 takes ALGO:PATH, "
            f"e.g. --policy sb3:PPO:model.zip"
        )
    torch.manual_seed(0 if seed is None else seed)
    return _load_sb3(algorithm, path, env_id, device=device, sample=bool(sample))


if TYPE_CHECKING:  # mypy checks that it is a factory
    _SB3_FACTORY: PolicyFactory = sb3_policy


def policy_plugins() -> dict[str, str]:
    """The registered policy plug-ins: ``{NAME: "module:factory"}`` of the entry-point group
    :data:`POLICY_GROUP`, sorted by name (nothing is imported)."""
    return {entry.name: entry.value for entry in sorted(_entries(), key=lambda entry: entry.name)}


def _entries() -> list[EntryPoint]:
    return list(entry_points(group=POLICY_GROUP))


def _registered() -> str:
    names = sorted({entry.name for entry in _entries()})
    return ", ".join(names) if names else "none"


def _dotted(name: str) -> bool:
    """Whether ``name`` is identifiers joined by dots (a module path or an attribute path)."""
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def _distribution(entry: EntryPoint) -> str:
    dist = getattr(entry, "dist", None)
    return "an unknown distribution" if dist is None else f"{dist.name} {dist.version}"


def _plugin(name: str, spec: str) -> tuple[Callable[..., Any], str]:
    """The factory registered as ``name`` and how to name it in errors."""
    found = [entry for entry in _entries() if entry.name == name]
    if not found:
        own = "as MODULE.PATH:FACTORY[:ARG] (e.g. mypkg.policies:make_policy)"
        if name.isidentifier() and _top_level_module(name):  # a module of one's own, not dotted
            own = (
                f"by a dotted MODULE.PATH:FACTORY[:ARG]: {name!r} is a module, but a bare name is a "
                f"plug-in's, so put {name} in a package (mypkg/{name}.py: --policy mypkg.{name}:FACTORY)"
            )
        raise PolicySpecError(
            f"--policy {spec!r} is not one of {POLICY_FORMS}: {name!r} is not a registered policy plug-in "
            f"(registered in {POLICY_GROUP}: {_registered()}); give NAME:ARG with one of them, or a factory "
            f"of your own {own}"
        )
    if len({entry.value for entry in found}) > 1:
        where = "; ".join(f"{entry.value} by {_distribution(entry)}" for entry in found)
        raise PolicySpecError(
            f"--policy {spec!r}: the policy plug-in {name!r} is registered more than once ({where}); "
            f"uninstall all but one of them, or give the factory as MODULE.PATH:FACTORY[:ARG]"
        )
    entry = found[0]
    what = f"the policy plug-in {name!r} ({entry.value}, registered by {_distribution(entry)})"
    try:
        factory = entry.load()
    except MissingExtraError:
        raise
    except Exception as error:  # whatever the plug-in's import raises: one line naming it
        raise PolicySpecError(
            f"--policy {spec!r}: {what} cannot be loaded ({type(error).__name__}: {error}); "
            f"reinstall the package that registers it"
        ) from None
    return factory, what


def _top_level_module(name: str) -> bool:
    """Whether a top-level module ``name`` can be imported (found, not imported)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _own_factory(module_name: str, attribute: str, spec: str) -> tuple[Callable[..., Any], str]:
    """The callable ``attribute`` of the module ``module_name`` and how to name it in errors."""
    if not _dotted(attribute):
        raise PolicySpecError(
            f"--policy {spec!r}: {attribute!r} is not the name of a factory in {module_name}; give "
            f"MODULE.PATH:FACTORY[:ARG] with FACTORY a function of the module, e.g. "
            f"--policy {module_name}:make_policy"
        )
    try:
        module = importlib.import_module(module_name)
    except MissingExtraError:
        raise
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise PolicySpecError(
                f"--policy {spec!r}: there is no module {module_name!r} (no module named {missing!r}); "
                f"run from the folder that holds it or add that folder to PYTHONPATH"
            ) from None
        raise PolicySpecError(
            f"--policy {spec!r}: importing {module_name} failed ({type(error).__name__}: {error}); "
            f"install what it needs"
        ) from None
    except Exception as error:  # the module's own code failed
        raise PolicySpecError(
            f"--policy {spec!r}: importing {module_name} failed ({type(error).__name__}: {error})"
        ) from None
    factory: Any = module
    for depth, part in enumerate(attribute.split(".")):
        try:
            factory = getattr(factory, part)
        except AttributeError:
            owner = ".".join([module_name, *attribute.split(".")[:depth]])
            public = [name for name in dir(factory) if not name.startswith("_")]
            close = difflib.get_close_matches(part, public, n=1, cutoff=0.75)
            hint = f"did you mean {close[0]!r}?" if close else "FACTORY must name a callable defined in it"
            raise PolicySpecError(f"--policy {spec!r}: {owner} has no attribute {part!r}; {hint}") from None
    return factory, f"{module_name}:{attribute}"


def load_policy(
    spec: str,
    env_id: str,
    *,
    device: str | torch.device = "cpu",
    seed: int | None = None,
    sample: bool | None = None,
) -> Policy:
    """The policy named by ``spec`` for ``env_id``: ``random``, ``NAME:ARG`` (a registered
    plug-in: ``ram:CHECKPOINT``, ``ram:pretrained``, ``sb3:ALGO:PATH``, ...) or
    ``MODULE.PATH:FACTORY[:ARG]`` (a :class:`PolicyFactory` of your own); see the module's
    documentation.

    Args:
        spec: the ``--policy`` string.
        env_id: the environment it is evaluated on.
        device: where the model runs.
        seed: seed of the policy's randomness (the random policy's generator, the RAM's
            location draws, torch's global generator for SB3's sampled actions); default 0,
            and for a RAM its checkpoint's training seed (as ``agents.evaluate``).
        sample: draw the policy's actions (default for the RAM, as ``agents.evaluate``) or
            play their means / modes (default for SB3 models: ``deterministic=True``).

    Raises :class:`PolicySpecError` (a ``ValueError``) for a spec that cannot be loaded
    (an unknown plug-in, a module or factory that cannot be found, an SB3 zip saved by
    another algorithm than the spec's, ...), and
    :class:`~glimpse_env.extras.MissingExtraError` (an ``ImportError``) for ``sb3:`` without
    stable-baselines3 and sb3-contrib (``pip install 'glimpse-mnist[sb3]'``). SB3 zips are
    pickle-based: load only files from trusted sources.
    """
    device = check_device(device)
    if spec == "random":
        return RandomPolicy(task_config(env_id).num_classes, seed=0 if seed is None else seed)
    head, colon, rest = spec.partition(":")
    if "." in head:  # MODULE.PATH:FACTORY[:ARG]
        attribute, _, arg = rest.partition(":")
        if not _dotted(head) or not colon:  # e.g. a file's path
            raise PolicySpecError(f"--policy {spec!r} is not one of {POLICY_FORMS}, nor {OTHER_FORMS}")
        if not attribute:
            raise PolicySpecError(
                f"--policy {spec!r}: a factory of your own is MODULE.PATH:FACTORY[:ARG]; give the name of "
                f"the callable of {head} after the colon, e.g. --policy {head}:make_policy"
            )
        factory, what = _own_factory(head, attribute, spec)
    elif head and head != "random":  # NAME[:ARG]
        factory, what = _plugin(head, spec)
        arg = rest
    else:
        raise PolicySpecError(f"--policy {spec!r} is not one of {POLICY_FORMS}, nor {OTHER_FORMS}")
    if not callable(factory):
        raise PolicySpecError(
            f"--policy {spec!r}: {what} is a {type(factory).__name__}, not callable; it must be a "
            f"factory {FACTORY_SIGNATURE} -> policy (see glimpse_env.evaluate.PolicyFactory)"
        )
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a callable whose signature cannot be read: just call it
        signature = None
    if signature is not None:
        try:
            signature.bind(arg, env_id, device=device, sample=sample, seed=seed)
        except TypeError as error:
            raise PolicySpecError(
                f"--policy {spec!r}: {what} cannot be called as {FACTORY_SIGNATURE} ({error}); "
                f"give it that signature (see glimpse_env.evaluate.PolicyFactory)"
            ) from None
    policy = factory(arg, env_id, device=device, sample=sample, seed=seed)
    if not callable(policy):
        raise PolicySpecError(
            f"--policy {spec!r}: {what} returned a {type(policy).__name__}, not a policy; it must return a "
            f"callable policy(observation, state, episode_start) -> (action, state)"
        )
    return policy


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
        f"SB3 zips are pickle-based: load only files from sources you trust. Also {OTHER_FORMS} "
        f"(registered: {_registered()})",
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
    if args.seed is None:  # the policy's own seed (a RAM's training seed, which it draws with), else 0
        seed = getattr(policy, "seed", None)
        args.seed = seed if _count(seed, low=0) else 0
    if args.mc_samples is None:  # the policy's own (a shipped RAM's row's samples), else 1
        samples = getattr(policy, "mc_samples", None)
        args.mc_samples = samples if _count(samples, low=1) else 1
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


def _count(value: object, *, low: int) -> bool:
    """Whether ``value`` is an int (not a bool) ``>= low``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _plain(value: object) -> object:
    """JSON for what ``json`` does not know (numpy scalars, paths)."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


if __name__ == "__main__":
    run_cli(main, errors=(TypeError,))
