r"""The hybrid loss of the Recurrent Attention Model, as a pure function of tensors.

For one batch of episodes with ``T`` glimpses:

.. math::

    L = \underbrace{\mathrm{CE}(\mathrm{logits}, y)}_{\text{classification}}
      + \underbrace{\tfrac{1}{T-1} \sum_{t<T} (b_t - R)^2}_{\text{baseline}}
      - \lambda \underbrace{\sum_{t<T} \log \pi(l_t \mid h_t)\, (R - \bar b_t)}_{\text{REINFORCE}}

averaged over the batch, where ``R`` is the episode's reward (1 for a right label), ``b_t``
the baseline's prediction at step ``t`` and ``\bar b_t`` the same with its gradient
stopped. The sum runs over the ``T - 1`` locations that choose a glimpse: the location sent
with the label on the last step cannot change the reward, so it is left out.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional as F

__all__ = ["RAMLoss", "ram_loss"]


class RAMLoss(NamedTuple):
    """The terms of the hybrid loss (each a scalar tensor)."""

    total: torch.Tensor
    """``classification + baseline + reinforce_weight * reinforce``: what is minimised."""
    classification: torch.Tensor
    """Cross-entropy of the final class logits."""
    baseline: torch.Tensor
    """Mean squared error of the baseline to the reward."""
    reinforce: torch.Tensor
    """``-mean_b sum_t log pi(l_t) (R - b_t)``: the policy-gradient surrogate (unweighted)."""


def ram_loss(
    *,
    logits: torch.Tensor,
    labels: torch.Tensor,
    reward: torch.Tensor,
    log_probs: torch.Tensor,
    baselines: torch.Tensor,
    reinforce_weight: float = 1.0,
) -> RAMLoss:
    """The hybrid loss of a batch of episodes.

    Args:
        logits: ``(B, C)`` class logits from the last hidden state.
        labels: ``(B,)`` int64 true classes (revealed by the environment's terminal step).
        reward: ``(B,)`` float episode rewards.
        log_probs: ``(B, T - 1)`` log-probabilities of the locations that chose glimpses
            ``2 .. T``.
        baselines: ``(B, T - 1)`` baseline predictions at the same steps.
        reinforce_weight: ``lambda``, the weight of the REINFORCE term.
    """
    batch = logits.shape[0]
    if labels.shape != (batch,) or reward.shape != (batch,):
        raise ValueError(
            f"labels and reward must be ({batch},) for logits {tuple(logits.shape)}, "
            f"got {tuple(labels.shape)} and {tuple(reward.shape)}"
        )
    if log_probs.shape != baselines.shape or log_probs.dim() != 2 or log_probs.shape[0] != batch:
        raise ValueError(
            f"log_probs and baselines must both be ({batch}, T - 1), "
            f"got {tuple(log_probs.shape)} and {tuple(baselines.shape)}"
        )
    reward = reward.to(baselines.dtype)
    classification = F.cross_entropy(logits, labels)
    returns = reward.unsqueeze(1).expand_as(baselines)
    baseline = F.mse_loss(baselines, returns)
    advantage = returns - baselines.detach()
    reinforce = -(log_probs * advantage).sum(1).mean()
    total = classification + baseline + reinforce_weight * reinforce
    return RAMLoss(total, classification, baseline, reinforce)
