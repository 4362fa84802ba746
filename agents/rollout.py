"""Playing batches of episodes with a RAM on the native vector environment, tensors only.

The agent learns only through the environment's API: glimpses and locations from the
observations, the location and the class as the action, the reward, and the true label
that the terminal step reveals (:attr:`glimpse_env.TensorStep.label`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

from agents.losses import RAMLoss, ram_loss
from agents.ram import BatchShare, RecurrentAttentionModel, sample_locations
from glimpse_env import GlimpseVectorEnv
from glimpse_env.evaluation import lockstep_vector_env as make_vector_env

__all__ = ["EpisodeLoss", "Rollout", "make_vector_env", "play_episodes"]


class Rollout(NamedTuple):
    """One batch of finished episodes (``B`` episodes, ``T`` glimpses each)."""

    logits: torch.Tensor
    """``(B, C)``: class logits after the last glimpse (with gradient)."""
    labels: torch.Tensor
    """``(B,)`` int64: the true classes, as the terminal step revealed them."""
    reward: torch.Tensor
    """``(B,)`` float32: the environment's reward (1 where the label played was right)."""
    log_probs: torch.Tensor
    """``(B, T - 1)``: log-probabilities of the locations of glimpses ``2 .. T`` (zeros when
    the means were played)."""
    baselines: torch.Tensor
    """``(B, T - 1)``: the baseline at the same steps."""
    locations: torch.Tensor
    """``(B, T, 2)``: where glimpses ``1 .. T`` were taken."""


def play_episodes(
    model: RecurrentAttentionModel,
    envs: GlimpseVectorEnv,
    *,
    std: float,
    sample: bool = True,
    options: dict[str, Any] | None = None,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    observer: Callable[[int], None] | None = None,
    share: BatchShare | None = None,
) -> Rollout:
    """Play one episode in every sub-environment of ``envs``, in lockstep.

    Glimpse 1 comes from ``reset``; after glimpse ``t < T`` the model sends location
    ``l_t`` (drawn from ``N(mu_t, std^2)`` when ``sample``, else ``mu_t``); after glimpse
    ``T`` it sends its class (the argmax of the logits) with ``mu_T``, and the episode ends.

    Args:
        model: the RAM (its device must be the environment's).
        envs: a :class:`GlimpseVectorEnv` with autoreset disabled (:func:`make_vector_env`).
        std: the policy's standard deviation.
        sample: draw the locations (training, Monte Carlo evaluation) or play the means.
        options: ``reset`` options, e.g. ``{"indices": idx}`` for a fixed set.
        generator: torch generator of the location draws (default: the global one).
        seed: seed of the environment's reset (default: its generator goes on).
        observer: called with ``t`` after glimpse ``t = 1 .. T`` is observed (e.g. to render).
        share: this process's rows of a data-parallel batch (see :func:`agents.ram.sample_locations`).
    """
    n, device = envs.num_envs, envs.device
    n_glimpses = envs.config.n_glimpses
    obs, _ = envs.reset_tensors(seed=seed, options=options)
    state = model.initial_state(n, device)
    no_label = torch.zeros(n, dtype=torch.int64, device=device)
    log_probs: list[torch.Tensor] = []
    baselines: list[torch.Tensor] = []
    locations = [obs.location]
    for t in range(1, n_glimpses):
        if observer is not None:
            observer(t)
        out = model.step(obs.glimpse, obs.location, state)
        state = out.state
        if sample:
            location, log_prob = sample_locations(out.location_mean, std, generator=generator, share=share)
        else:
            location, log_prob = out.location_mean.detach(), torch.zeros(n, device=device)
        log_probs.append(log_prob)
        baselines.append(out.baseline)
        obs = envs.step_tensors(location, no_label).obs
        locations.append(obs.location)
    if observer is not None:
        observer(n_glimpses)
    out = model.step(obs.glimpse, obs.location, state)
    logits = model.classify(out.state)
    last = envs.step_tensors(out.location_mean.detach(), logits.detach().argmax(1))
    if n_glimpses > 1:
        stacked_log_probs, stacked_baselines = torch.stack(log_probs, 1), torch.stack(baselines, 1)
    else:  # one glimpse: no location is ever chosen
        stacked_log_probs = stacked_baselines = torch.zeros(n, 0, device=device)
    return Rollout(
        logits, last.label, last.reward, stacked_log_probs, stacked_baselines, torch.stack(locations, 1)
    )


class EpisodeLoss(nn.Module):
    """One batch of episodes and its hybrid loss as one forward pass of a module: what
    :class:`~torch.nn.parallel.DistributedDataParallel` wraps under ``torchrun`` (it
    averages the ranks' gradients in the backward pass of a forward it ran).

    ``forward(envs, std=..., reinforce_weight=..., options=..., generator=..., share=...)``
    plays :func:`play_episodes` with ``model`` and returns the :class:`Rollout` and its
    :func:`agents.losses.ram_loss`.
    """

    def __init__(self, model: RecurrentAttentionModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        envs: GlimpseVectorEnv,
        *,
        std: float,
        reinforce_weight: float,
        options: dict[str, Any] | None = None,
        generator: torch.Generator | None = None,
        share: BatchShare | None = None,
    ) -> tuple[Rollout, RAMLoss]:
        rollout = play_episodes(self.model, envs, std=std, options=options, generator=generator, share=share)
        losses = ram_loss(
            logits=rollout.logits,
            labels=rollout.labels,
            reward=rollout.reward,
            log_probs=rollout.log_probs,
            baselines=rollout.baselines,
            reinforce_weight=reinforce_weight,
        )
        return rollout, losses
