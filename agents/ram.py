r"""The Recurrent Attention Model (Mnih, Heess, Graves, Kavukcuoglu 2014), part by part.

The model never sees an image: the environment's retina gives it a glimpse
:math:`\rho(x_t, l_{t-1})` of ``k`` patches of ``g x g`` (``(B, k, g, g)``) and the location
``l_{t-1}`` it was taken at (``(B, 2)``, in ``[-1, 1]``). Shapes below use ``B`` for the
batch, ``H`` for the core's hidden size and ``C`` for the number of classes.

- :class:`GlimpseNetwork`  ``g_t = relu(W2 relu(W0 rho) + W3 relu(W1 l))``
- :class:`CoreNetwork`     ``h_t = relu(W_i g_t + W_h h_{t-1})`` (or an LSTM)
- :class:`LocationNetwork` ``mu_t = tanh(W_l stop_gradient(h_t))``; ``l_t ~ N(mu_t, sigma^2 I)``
- :class:`ActionNetwork`   ``logits = W_a h_T``
- :class:`BaselineNetwork` ``b_t = W_b stop_gradient(h_t)``

:class:`RecurrentAttentionModel` ties them together; :func:`sample_locations` draws the
locations sent to the environment and their log-probabilities (see there for how the
``[-1, 1]`` bound is handled).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "ActionNetwork",
    "BaselineNetwork",
    "BatchShare",
    "CoreNetwork",
    "GlimpseNetwork",
    "LocationNetwork",
    "LocationSample",
    "ModelConfig",
    "RecurrentAttentionModel",
    "RecurrentState",
    "StepOutput",
    "sample_locations",
]


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of a RAM (everything a checkpoint must match to be loaded)."""

    glimpse_shape: tuple[int, int, int]
    """``(k, g, g)``: the environment's glimpse (scales, patch side, patch side); ``(k * C, g, g)``
    for images of ``C`` channels (RGB: ``C = 3``), as the observation space gives it."""
    num_classes: int
    """``C``: classes of the environment's label action."""
    glimpse_hidden: int = 128
    """``h_g``: width of the glimpse pathway ``relu(W0 rho)``."""
    location_hidden: int = 128
    """``h_l``: width of the location pathway ``relu(W1 l)``."""
    glimpse_output: int = 256
    """Width of ``g_t``."""
    hidden_size: int = 256
    """``H``: the core's hidden size."""
    core: str = "rnn"
    """``"rnn"`` (the paper's ``relu(W_i g + W_h h)``) or ``"lstm"``."""
    dropout: float = 0.0
    """Dropout on ``g_t`` and on ``h_T`` before the classifier, in training only (0: none)."""

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any]) -> ModelConfig:
        """The configuration a checkpoint saved with ``dataclasses.asdict`` (its tuple back)."""
        return cls(**{**saved, "glimpse_shape": tuple(saved["glimpse_shape"])})

    def __post_init__(self) -> None:
        if self.core not in ("rnn", "lstm"):
            raise ValueError(f"core must be 'rnn' or 'lstm', got {self.core!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        sizes = (self.num_classes, self.glimpse_hidden, self.location_hidden, self.glimpse_output)
        if min((*self.glimpse_shape, *sizes, self.hidden_size)) < 1:
            raise ValueError(f"every size of a ModelConfig must be >= 1, got {self}")


class RecurrentState(NamedTuple):
    """The core's state between glimpses."""

    h: torch.Tensor
    """``(B, H)``: the hidden state ``h_t``."""
    c: torch.Tensor
    """``(B, H)``: the LSTM cell state (``(B, 0)`` for the plain RNN core)."""


class StepOutput(NamedTuple):
    """What the model computes from one glimpse."""

    state: RecurrentState
    """The new core state (``h_t``)."""
    location_mean: torch.Tensor
    """``(B, 2)``: ``mu_t``, the mean of the next location, in ``[-1, 1]`` (no gradient into the core)."""
    baseline: torch.Tensor
    """``(B,)``: ``b_t``, the expected reward (no gradient into the core)."""


class LocationSample(NamedTuple):
    """Locations drawn from the Gaussian policy."""

    location: torch.Tensor
    """``(B, 2)``: the location sent to the environment, in ``[-1, 1]``."""
    log_prob: torch.Tensor
    """``(B,)``: ``log N(l~; mu, sigma^2 I)`` of the unclamped draw ``l~`` (see :func:`sample_locations`)."""


class BatchShare(NamedTuple):
    """This process's rows of a batch shared by data-parallel ranks: episodes ``start ..
    start + B`` of a global batch of ``total`` (see :func:`sample_locations`)."""

    start: int
    total: int


class GlimpseNetwork(nn.Module):
    r"""``g_t = relu(W2 relu(W0 rho) + W3 relu(W1 l))``.

    Args:
        glimpse_shape: ``(k, g, g)`` (``(k * C, g, g)`` for ``C`` channels; flattened for ``W0``).
        glimpse_hidden: ``h_g``, rows of ``W0``.
        location_hidden: ``h_l``, rows of ``W1``.
        output: width of ``g_t`` (rows of ``W2`` and ``W3``).

    Shapes: ``glimpse`` ``(B, k, g, g)``, ``location`` ``(B, 2)`` -> ``(B, output)``.
    """

    def __init__(
        self, glimpse_shape: tuple[int, int, int], glimpse_hidden: int, location_hidden: int, output: int
    ) -> None:
        super().__init__()
        self.what = nn.Linear(math.prod(glimpse_shape), glimpse_hidden)  # W0
        self.where = nn.Linear(2, location_hidden)  # W1
        self.what_out = nn.Linear(glimpse_hidden, output)  # W2
        self.where_out = nn.Linear(location_hidden, output)  # W3

    def forward(self, glimpse: torch.Tensor, location: torch.Tensor) -> torch.Tensor:
        what = F.relu(self.what(glimpse.flatten(1)))
        where = F.relu(self.where(location))
        return F.relu(self.what_out(what) + self.where_out(where))


class CoreNetwork(nn.Module):
    r"""``h_t = relu(W_i g_t + W_h h_{t-1})``, or an LSTM cell with ``kind="lstm"``.

    Shapes: ``g`` ``(B, G)`` and a :class:`RecurrentState` of ``(B, H)`` -> a new state.
    """

    def __init__(self, input_size: int, hidden_size: int, kind: str = "rnn") -> None:
        super().__init__()
        self.kind = kind
        self.hidden_size = hidden_size
        self.cell: nn.RNNCell | nn.LSTMCell
        if kind == "lstm":
            self.cell = nn.LSTMCell(input_size, hidden_size)
        else:
            self.cell = nn.RNNCell(input_size, hidden_size, nonlinearity="relu")

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> RecurrentState:
        """``h_0 = 0`` (and ``c_0 = 0`` for the LSTM)."""
        h = torch.zeros(batch, self.hidden_size, device=device)
        c = torch.zeros(batch, self.hidden_size if self.kind == "lstm" else 0, device=device)
        return RecurrentState(h, c)

    def forward(self, g: torch.Tensor, state: RecurrentState) -> RecurrentState:
        if isinstance(self.cell, nn.LSTMCell):
            h, c = self.cell(g, (state.h, state.c))
            return RecurrentState(h, c)
        return RecurrentState(self.cell(g, state.h), state.c)


class LocationNetwork(nn.Module):
    r"""``mu_t = tanh(W_l stop_gradient(h_t))``: the mean of the next location, in ``[-1, 1]``.

    The gradient is stopped into the core: the core learns from the classification loss
    only, the location policy from REINFORCE only. Shapes: ``(B, H)`` -> ``(B, 2)``.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(hidden_size, 2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(h.detach()))


class ActionNetwork(nn.Module):
    r"""``logits = W_a h_T``: class scores from the last hidden state. Shapes: ``(B, H)`` -> ``(B, C)``."""

    def __init__(self, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(hidden_size, num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)


class BaselineNetwork(nn.Module):
    r"""``b_t = W_b stop_gradient(h_t)``: the expected reward, to reduce REINFORCE's variance.

    Shapes: ``(B, H)`` -> ``(B,)``.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h.detach()).squeeze(1)


class RecurrentAttentionModel(nn.Module):
    """The whole RAM: one :meth:`step` per glimpse, :meth:`classify` after the last one."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.glimpse = GlimpseNetwork(
            config.glimpse_shape, config.glimpse_hidden, config.location_hidden, config.glimpse_output
        )
        self.core = CoreNetwork(config.glimpse_output, config.hidden_size, config.core)
        self.locator = LocationNetwork(config.hidden_size)
        self.classifier = ActionNetwork(config.hidden_size, config.num_classes)
        self.baseline = BaselineNetwork(config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> RecurrentState:
        return self.core.initial_state(batch, device)

    def step(self, glimpse: torch.Tensor, location: torch.Tensor, state: RecurrentState) -> StepOutput:
        """One glimpse ``(B, k, g, g)`` taken at ``location`` ``(B, 2)``: the new state, ``mu_t``, ``b_t``."""
        new_state = self.core(self.dropout(self.glimpse(glimpse, location)), state)
        return StepOutput(new_state, self.locator(new_state.h), self.baseline(new_state.h))

    def classify(self, state: RecurrentState) -> torch.Tensor:
        """``(B, C)`` class logits from ``h_T``."""
        return self.classifier(self.dropout(state.h))


def sample_locations(
    mean: torch.Tensor,
    std: float,
    *,
    generator: torch.Generator | None = None,
    share: BatchShare | None = None,
) -> LocationSample:
    r"""Draw ``l~ ~ N(mean, std^2 I)`` and send ``l = clamp(l~, -1, 1)`` to the environment.

    The environment rejects locations outside ``[-1, 1]`` (it never clips), so the draw is
    clamped here, and the log-probability is that of the *unclamped* draw ``l~`` under the
    Gaussian. The clamp is a fixed function of the draw, so the score-function estimator
    ``E[R(clamp(l~)) grad log N(l~; mu, sigma)]`` is exactly the gradient of the expected
    reward ``E[R(clamp(l~))]``: the estimate stays unbiased (``tests/test_ram.py`` checks it
    against the closed form on a toy problem), and only draws beyond the edge are moved,
    which a mean inside ``[-1, 1]`` and a small ``std`` make rare.

    Args:
        mean: ``(B, 2)`` ``mu_t`` in ``[-1, 1]`` (with gradient, to the location network).
        std: ``sigma``, fixed.
        generator: torch generator for the draw (default: torch's global one).
        share: for data-parallel training: the noise is drawn for the whole global batch
            ``(total, 2)`` from ``generator`` (the same stream on every rank) and these
            rows are used, so ``k`` ranks of ``B`` episodes draw what one process of
            ``k B`` episodes draws.

    Returns:
        :class:`LocationSample`: ``location`` ``(B, 2)`` without gradient, ``log_prob`` ``(B,)``.
    """
    if share is None:
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    else:
        rows = slice(share.start, share.start + mean.shape[0])
        shape = (share.total, *mean.shape[1:])
        noise = torch.randn(shape, generator=generator, device=mean.device, dtype=mean.dtype)[rows]
    draw = mean.detach() + std * noise
    # log N(draw; mean, std^2 I), summed over x and y
    log_prob = (-0.5 * ((draw - mean) / std) ** 2).sum(1) - 2 * (math.log(std) + 0.5 * math.log(2 * math.pi))
    return LocationSample(draw.clamp(-1.0, 1.0), log_prob)
