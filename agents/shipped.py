"""The RAM of a leaderboard row, from the weights that ship with the repository.

    >>> import agents
    >>> ram = agents.pretrained("GlimpseMNIST-Cluttered-v0")   # doctest: +SKIP
    >>> ram.model, ram.std, ram.mc_samples, ram.card["accuracy"]   # doctest: +SKIP

``python -m agents.evaluate --pretrained ENV_ID`` scores it with the row's own evaluation
seed and Monte Carlo samples, and reproduces the row's test accuracy exactly;
``python -m agents.visualize --pretrained ENV_ID`` draws its glimpses. The files and their
checks are described in :mod:`glimpse_engine.weights`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from agents.ram import ModelConfig, RecurrentAttentionModel
from glimpse_engine.weights import load_weights, shipped

__all__ = ["PretrainedRAM", "pretrained", "pretrained_ids"]


class PretrainedRAM(NamedTuple):
    """A shipped RAM, ready to play (in eval mode), with how its row was scored."""

    model: RecurrentAttentionModel
    """The network, in eval mode, on the device asked for."""
    env_id: str
    """The environment id it was trained and scored on."""
    std: float
    """The location policy's standard deviation."""
    seed: int
    """The seed of the location draws the row was scored with."""
    mc_samples: int
    """``M``, the Monte Carlo samples per canvas of the row."""
    card: dict[str, Any]
    """The row's card: architecture, accuracy, run and command (see :mod:`glimpse_engine.weights`)."""


def pretrained_ids() -> list[str]:
    """The environment ids with a shipped RAM."""
    return [env_id for env_id, kind in shipped() if kind == "ram"]


def pretrained(env_id: str, *, device: torch.device | str = "cpu") -> PretrainedRAM:
    """The shipped RAM of ``env_id``'s leaderboard row, its files' digests verified.

    Raises :class:`glimpse_engine.weights.WeightsError` when no RAM ships for ``env_id`` (naming
    the ids that have one) or a file does not match its digest.
    """
    tensors, card = load_weights(env_id, "ram")
    model = RecurrentAttentionModel(ModelConfig.from_dict(card["model_config"]))
    model.load_state_dict(tensors)
    evaluation = card["evaluation"]
    return PretrainedRAM(
        model=model.to(device).eval(),
        env_id=env_id,
        std=float(evaluation["std"]),
        seed=int(evaluation["seed"]),
        mc_samples=int(evaluation["mc_samples"]),
        card=card,
    )
