"""The ``ram`` policy plug-in of ``python -m glimpse_env.evaluate``: ``--policy ram:CHECKPOINT``
and ``--policy ram:pretrained``.

    python -m glimpse_env.evaluate --env GlimpseMNIST-v0 --policy ram:RUN/checkpoints/best.pt
    python -m glimpse_env.evaluate --env GlimpseMNIST-v0 --policy ram:pretrained

:func:`ram_policy` is a :class:`glimpse_env.evaluate.PolicyFactory`, registered in the
entry-point group ``glimpse_env.policies`` by the package's ``pyproject.toml``
(``ram = "agents.plugin:ram_policy"``): the evaluation program finds it there, so
:mod:`glimpse_env` never imports :mod:`agents`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from agents.evaluate import RAMPolicy, default_seed, load_model
from agents.shipped import pretrained
from glimpse_engine.errors import CheckpointError
from glimpse_env.evaluate import POLICY_FORMS, PolicyFactory, PolicySpecError
from glimpse_env.evaluation import task_config

__all__ = ["PRETRAINED", "ram_policy"]

#: ``ram:pretrained``: the RAM whose weights ship for ``--env`` (its leaderboard row)
PRETRAINED = "pretrained"


def ram_policy(
    arg: str, env_id: str, *, device: torch.device, sample: bool | None, seed: int | None
) -> RAMPolicy:
    """A RAM checkpoint (``arg`` its path) as a policy for ``env_id``, the environment it was
    trained on; ``arg`` ``pretrained`` is the RAM that ships for ``env_id``
    (:func:`agents.pretrained`).

    It draws its locations unless ``sample`` is False, with a generator seeded by ``seed``,
    by default the checkpoint's training seed (for ``pretrained``: its leaderboard row's),
    which the policy carries as ``seed``; a shipped RAM also carries its row's
    ``mc_samples`` (``None`` for a checkpoint).

    Raises :class:`glimpse_env.evaluate.PolicySpecError` for a missing or unreadable
    checkpoint, a checkpoint of another program or environment, and an environment without
    a shipped RAM.
    """
    if not arg:
        raise PolicySpecError(
            f"--policy 'ram' is not one of {POLICY_FORMS}: ram takes a checkpoint, "
            f"e.g. --policy ram:RUN/checkpoints/best.pt, or --policy ram:{PRETRAINED}"
        )
    mc_samples = None
    if arg == PRETRAINED:
        try:
            shipped = pretrained(env_id, device=device)
        except ValueError as error:  # glimpse_engine.weights.WeightsError
            raise PolicySpecError(f"--policy ram:{arg}: {error}") from None
        model, std, own_seed, mc_samples = shipped.model, shipped.std, shipped.seed, shipped.mc_samples
    else:
        try:
            model, config = load_model(arg, device=device)
        except CheckpointError as error:
            raise PolicySpecError(f"--policy ram:{arg}: {error}") from None
        if config.get("env") != env_id:
            raise PolicySpecError(
                f"the RAM checkpoint {arg!r} was trained on {config.get('env')!r}, not on --env {env_id!r}: "
                f"pass --env {config.get('env')} (a RAM plays the glimpses of its own environment)"
            )
        std, own_seed = config["std"], default_seed(config)
    model.eval()
    generator = torch.Generator(device=device).manual_seed(own_seed if seed is None else seed)
    policy = RAMPolicy(
        model,
        std=std,
        n_glimpses=task_config(env_id).n_glimpses,
        sample=True if sample is None else sample,
        generator=generator,
    )
    policy.name = f"ram:{arg}"
    policy.mc_samples = mc_samples  # type: ignore[attr-defined]
    return policy


if TYPE_CHECKING:  # mypy checks that it is a factory
    _FACTORY: PolicyFactory = ram_policy
