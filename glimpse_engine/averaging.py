"""Weight averages: an exponential moving average after every update, or stochastic weight
averaging over the ends of epochs; what validation, pictures and the test play."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from typing import Any, TypeGuard, TypeVar

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

__all__ = [
    "AVERAGE_KEY",
    "average_state",
    "averaging",
    "epoch_average",
    "evaluated_model",
    "restore_average",
    "weight_average",
]

#: key of a checkpoint's weight average (``None`` when the run keeps none)
AVERAGE_KEY = "weight_average"


def weight_average(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    r"""An exponential moving average of ``model``'s weights (``None`` when ``decay`` is 0).

    After every optimiser step the caller calls ``average.update_parameters(model)``:
    ``theta_avg <- decay * theta_avg + (1 - decay) * theta`` (the first call copies
    ``theta``). The average, not the trained weights, is what validation selects on, what
    the test scores and what the evaluation scripts load (:func:`inference_weights`): it
    smooths out the last updates' noise, for one fused interpolation of the weights per
    update. PyTorch's own :class:`torch.optim.swa_utils.AveragedModel`; a checkpoint keeps
    its ``state_dict()`` (:func:`average_state`, :func:`restore_average`), so a resumed run
    continues the same average.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"--ema must be in [0, 1) (0: no weight average; e.g. 0.999), got {decay}")
    if decay == 0.0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def epoch_average(model: torch.nn.Module) -> AveragedModel:
    r"""Stochastic weight averaging (Izmailov et al. 2018): the equal average of ``model``'s
    weights at the ends of epochs.

    The caller calls ``average.update_parameters(model)`` at the end of each epoch of the
    averaging phase: after ``k`` calls ``theta_avg = (theta_1 + ... + theta_k) / k``. Until
    the first call the average is empty: :func:`averaging` is false, validation sees the
    trained weights and a checkpoint stores no average (:func:`average_state`), so a best
    checkpoint from before the phase is scored with its own weights. PyTorch's own
    :class:`torch.optim.swa_utils.AveragedModel` with its default (equal) average.
    """
    return AveragedModel(model, use_buffers=True)


def averaging(average: AveragedModel | None) -> TypeGuard[AveragedModel]:
    """Whether ``average`` holds weights yet (it has had at least one update)."""
    return average is not None and int(average.n_averaged) > 0


def average_state(average: AveragedModel | None) -> dict[str, Any]:
    """The weight average's entry of a checkpoint (``None`` under :data:`AVERAGE_KEY` when
    the run keeps none, or has not averaged anything yet), as :func:`torch_rng_state` gives
    the random streams'."""
    return {AVERAGE_KEY: average.state_dict() if averaging(average) else None}


def restore_average(average: AveragedModel | None, state: Mapping[str, Any]) -> None:
    """Put back the weight average :func:`average_state` saved in ``state`` (nothing to do
    when the run keeps none, or had not begun averaging)."""
    saved = state.get(AVERAGE_KEY)
    if average is not None and saved is not None:
        average.load_state_dict(saved)


M = TypeVar("M", bound=torch.nn.Module)


def evaluated_model(model: M, average: AveragedModel | None) -> M:
    """The model validation, pictures and test use: the weight average's copy of ``model``
    (see :func:`weight_average` and :func:`epoch_average`) once it holds weights, else
    ``model`` itself. Ask again after an update: an epoch average starts empty."""
    return typing.cast(M, average.module) if averaging(average) else model
