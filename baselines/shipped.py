"""The CNN and self-attention baselines of the leaderboard, from the weights that ship.

    >>> import baselines
    >>> net = baselines.pretrained("GlimpseMNIST-Fashion-v0", model="self_attention")   # doctest: +SKIP

``python -m baselines.evaluate --pretrained ENV_ID --model cnn|self_attention`` scores it
and reproduces the row's test accuracy exactly. The files and their checks are described
in :mod:`glimpse_engine.weights`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from baselines.models import BaselineConfig, SelfAttentionCNN, SimpleCNN, model_from_config
from glimpse_engine.weights import load_weights

__all__ = ["PretrainedBaseline", "pretrained"]


class PretrainedBaseline(NamedTuple):
    """A shipped baseline, in eval mode, with its row's card."""

    model: SimpleCNN | SelfAttentionCNN
    """The network, in eval mode, on the device asked for."""
    env_id: str
    """The environment id whose canvases it classifies."""
    card: dict[str, Any]
    """The row's card: architecture, accuracy, run and command (see :mod:`glimpse_engine.weights`)."""


def pretrained(
    env_id: str, *, model: str = "self_attention", device: torch.device | str = "cpu"
) -> PretrainedBaseline:
    """The shipped ``model`` (``"cnn"`` or ``"self_attention"``) of ``env_id``'s leaderboard row.

    Raises :class:`glimpse_engine.weights.WeightsError` when none ships or a file does not match
    its digest.
    """
    tensors, card = load_weights(env_id, model)
    net = model_from_config(BaselineConfig.from_dict(card["model_config"]))
    net.load_state_dict(tensors)
    return PretrainedBaseline(model=net.to(device).eval(), env_id=env_id, card=card)
