"""The RAM's parts against their docstrings, the location rule, the loss and its estimator."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from agents.losses import ram_loss
from agents.ram import (
    ActionNetwork,
    BaselineNetwork,
    BatchShare,
    CoreNetwork,
    GlimpseNetwork,
    LocationNetwork,
    ModelConfig,
    RecurrentAttentionModel,
    RecurrentState,
    sample_locations,
)

B, K, G, H, C = 5, 3, 12, 256, 10


def test_glimpse_network_shapes_and_equation() -> None:
    net = GlimpseNetwork((K, G, G), 128, 128, 256)
    glimpse, location = torch.rand(B, K, G, G), torch.rand(B, 2) * 2 - 1
    out = net(glimpse, location)
    assert out.shape == (B, 256)
    # g = relu(W2 relu(W0 rho) + W3 relu(W1 l)), written out
    what = F.relu(glimpse.flatten(1) @ net.what.weight.T + net.what.bias)
    where = F.relu(location @ net.where.weight.T + net.where.bias)
    expected = F.relu(
        what @ net.what_out.weight.T + net.what_out.bias + where @ net.where_out.weight.T + net.where_out.bias
    )
    torch.testing.assert_close(out, expected)
    assert net.what.in_features == K * G * G and net.what.out_features == 128
    assert net.where.in_features == 2 and net.where.out_features == 128


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_core_network_shapes(kind: str) -> None:
    core = CoreNetwork(256, H, kind)
    state = core.initial_state(B)
    assert state.h.shape == (B, H) and state.c.shape == (B, H if kind == "lstm" else 0)
    g = torch.rand(B, 256)
    new = core(g, RecurrentState(torch.rand(B, H), state.c))
    assert new.h.shape == (B, H)
    if kind == "rnn":  # h_t = relu(W_i g_t + W_h h_{t-1})
        h_prev = torch.rand(B, H)
        cell = core.cell
        expected = F.relu(g @ cell.weight_ih.T + cell.bias_ih + h_prev @ cell.weight_hh.T + cell.bias_hh)
        torch.testing.assert_close(core(g, RecurrentState(h_prev, state.c)).h, expected)


def test_location_action_baseline_shapes() -> None:
    h = torch.randn(B, H) * 10
    mean = LocationNetwork(H)(h)
    assert mean.shape == (B, 2) and bool((mean.abs() <= 1).all())
    assert ActionNetwork(H, C)(h).shape == (B, C)
    assert BaselineNetwork(H)(h).shape == (B,)


def test_location_and_baseline_gradients_stop_at_the_core() -> None:
    model = RecurrentAttentionModel(ModelConfig((K, G, G), C))
    state = model.initial_state(B)
    out = model.step(torch.rand(B, K, G, G), torch.zeros(B, 2), state)
    (out.location_mean.sum() + out.baseline.sum()).backward()
    assert all(p.grad is None for p in model.core.parameters())
    assert all(p.grad is None for p in model.glimpse.parameters())
    assert model.locator.fc.weight.grad is not None and model.baseline.fc.weight.grad is not None
    # the classification loss does reach the core and the glimpse network
    model.zero_grad()
    model.classify(out.state).sum().backward()
    assert model.core.cell.weight_ih.grad is not None and model.core.cell.weight_ih.grad.abs().sum() > 0
    assert model.glimpse.what.weight.grad is not None


def test_sample_locations_clamps_and_scores_the_unclamped_draw() -> None:
    generator = torch.Generator().manual_seed(0)
    mean = torch.tensor([[0.95, -0.95]] * 4000, requires_grad=True)
    sample = sample_locations(mean, 0.2, generator=generator)
    assert sample.location.shape == (4000, 2) and sample.log_prob.shape == (4000,)
    assert bool((sample.location.abs() <= 1).all())
    assert bool((sample.location.abs() == 1).any())  # some draws went past the edge
    # the log-probability is the Gaussian density of the unclamped draw: redraw it
    draw = mean.detach() + 0.2 * torch.randn(mean.shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sample.location, draw.clamp(-1, 1))
    expected = torch.distributions.Normal(mean, 0.2).log_prob(draw).sum(1)
    torch.testing.assert_close(sample.log_prob, expected)
    assert not sample.location.requires_grad and sample.log_prob.requires_grad


def test_reinforce_estimator_matches_the_closed_form_gradient() -> None:
    """Toy problem: reward = x of the clamped location; d E[R] / d mu_x is known exactly.

    With l~ ~ N(mu, s^2) and R = clamp(l~, -1, 1), dE[R]/dmu = P(-1 < l~ < 1)
    = Phi((1 - mu)/s) - Phi((-1 - mu)/s). The REINFORCE term of :func:`ram_loss` (zero
    baseline, weight 1) must estimate minus that.
    """
    mu, std, n = 0.8, 0.3, 400_000
    generator = torch.Generator().manual_seed(1)
    mean = torch.tensor([mu, 0.0]).expand(n, 2).clone().requires_grad_(True)
    sample = sample_locations(mean, std, generator=generator)
    reward = sample.location[:, 0]
    losses = ram_loss(
        logits=torch.zeros(n, C),
        labels=torch.zeros(n, dtype=torch.int64),
        reward=reward,
        log_probs=sample.log_prob[:, None],
        baselines=torch.zeros(n, 1),
    )
    losses.reinforce.backward()
    assert mean.grad is not None
    estimate = -float(mean.grad[:, 0].sum())  # the loss is a batch mean: the sum is the gradient of E[R]

    def phi(z: float) -> float:
        return 0.5 * (1 + math.erf(z / math.sqrt(2)))

    exact = phi((1 - mu) / std) - phi((-1 - mu) / std)
    assert exact == pytest.approx(0.7475, abs=1e-3)  # clamping matters here: far from 1
    assert estimate == pytest.approx(exact, abs=0.01)


def test_ram_loss_terms() -> None:
    logits = torch.randn(4, C, requires_grad=True)
    labels = torch.tensor([1, 2, 3, 4])
    reward = torch.tensor([1.0, 0.0, 1.0, 0.0])
    log_probs = torch.randn(4, 5, requires_grad=True)
    baselines = torch.rand(4, 5, requires_grad=True)
    losses = ram_loss(
        logits=logits,
        labels=labels,
        reward=reward,
        log_probs=log_probs,
        baselines=baselines,
        reinforce_weight=0.5,
    )
    torch.testing.assert_close(losses.classification, F.cross_entropy(logits, labels))
    torch.testing.assert_close(losses.baseline, ((baselines - reward[:, None]) ** 2).mean())
    advantage = reward[:, None] - baselines.detach()
    torch.testing.assert_close(losses.reinforce, -(log_probs * advantage).sum(1).mean())
    torch.testing.assert_close(losses.total, losses.classification + losses.baseline + 0.5 * losses.reinforce)
    # the REINFORCE term does not train the baseline
    losses.reinforce.backward()
    assert baselines.grad is None


def test_ram_loss_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="T - 1"):
        ram_loss(
            logits=torch.zeros(4, C),
            labels=torch.zeros(4, dtype=torch.int64),
            reward=torch.zeros(4),
            log_probs=torch.zeros(4, 5),
            baselines=torch.zeros(4, 6),
        )
    with pytest.raises(ValueError, match="labels and reward"):
        ram_loss(
            logits=torch.zeros(4, C),
            labels=torch.zeros(3, dtype=torch.int64),
            reward=torch.zeros(4),
            log_probs=torch.zeros(4, 5),
            baselines=torch.zeros(4, 5),
        )


def test_model_config_rejects_bad_core() -> None:
    with pytest.raises(ValueError, match="core"):
        ModelConfig((K, G, G), C, core="gru")


def test_dropout_acts_in_training_only() -> None:
    model = RecurrentAttentionModel(ModelConfig((K, G, G), C, dropout=0.5))
    state = model.step(torch.rand(B, K, G, G), torch.zeros(B, 2), model.initial_state(B)).state
    model.eval()
    torch.testing.assert_close(model.classify(state), model.classify(state))
    model.train()
    assert not torch.equal(model.classify(state), model.classify(state))
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig((K, G, G), C, dropout=1.0)


def test_a_share_of_a_global_batch_draws_its_rows_of_the_global_noise() -> None:
    """k ranks of B episodes, drawing from one stream seeded alike, send the locations one
    process of k B episodes sends (data-parallel training's location noise)."""
    mean = torch.rand(6, 2) * 2 - 1
    whole = sample_locations(
        torch.cat([mean, mean]), 0.1, generator=torch.Generator().manual_seed(1), share=BatchShare(0, 12)
    )
    parts = [
        sample_locations(mean, 0.1, generator=torch.Generator().manual_seed(1), share=BatchShare(6 * r, 12))
        for r in range(2)
    ]
    torch.testing.assert_close(torch.cat([part.location for part in parts]), whole.location)
    torch.testing.assert_close(torch.cat([part.log_prob for part in parts]), whole.log_prob)
    assert not torch.equal(parts[0].location, parts[1].location)  # each rank its own rows
