"""The smallest hand-written PyTorch agent that learns on the native vector env: a template.

    python examples/custom_agent.py --env-id GlimpseMNIST-v0 --updates 300

Everything goes through the environment's tensor API: ``reset_tensors`` gives the first
glimpse of ``--num-envs`` episodes, ``step_tensors(location, label)`` plays them in
lockstep (autoreset disabled), and the terminal step reveals the reward and the true
label (``TensorStep.label``), on the environment's device, with no host round trip.

The agent is a GRU over glimpses with two heads: *where* (the mean of a Gaussian over the
next location, trained by REINFORCE on the baseline-subtracted reward) and *what* (class
logits after the last glimpse, trained by cross-entropy on the revealed label). It is the
Recurrent Attention Model stripped to its bones; ``agents/`` holds the full one. Replace
``TinyAgent`` and the loss to try an idea; the loop stays the same.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

import gymnasium as gym
import torch
from gymnasium.vector import AutoresetMode
from torch import nn
from torch.nn import functional as F

import glimpse_env  # noqa: F401  (registers the ids)
from glimpse_env import GlimpseVectorEnv
from glimpse_env.cli import ArgumentParser, run_cli
from glimpse_env.registration import ENV_SPECS


class TinyAgent(nn.Module):
    """``h_t = GRU([glimpse, location], h_{t-1})``; ``where = tanh(W h_t)``; ``what = V h_T``."""

    def __init__(self, glimpse_size: int, num_classes: int, hidden: int) -> None:
        super().__init__()
        self.encode = nn.Sequential(nn.Linear(glimpse_size + 2, hidden), nn.ReLU())
        self.core = nn.GRUCell(hidden, hidden)
        self.where = nn.Linear(hidden, 2)
        self.what = nn.Linear(hidden, num_classes)

    def forward(self, glimpse: torch.Tensor, location: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One glimpse ``(N, k, g, g)`` at ``(N, 2)`` -> the next hidden state ``(N, hidden)``."""
        return self.core(self.encode(torch.cat([glimpse.flatten(1), location], 1)), h)


class Episodes(NamedTuple):
    logits: torch.Tensor  # (N, C) after the last glimpse
    log_prob: torch.Tensor  # (N,) log-probability of the locations played
    reward: torch.Tensor  # (N,) the environment's reward
    label: torch.Tensor  # (N,) the true classes the terminal step revealed


def play(agent: TinyAgent, envs: GlimpseVectorEnv, *, std: float, hidden: int) -> Episodes:
    """One batch of whole episodes, in lockstep."""
    obs, _ = envs.reset_tensors()
    h = torch.zeros(envs.num_envs, hidden, device=envs.device)
    log_prob = torch.zeros(envs.num_envs, device=envs.device)
    no_label = torch.zeros(envs.num_envs, dtype=torch.int64, device=envs.device)
    for _ in range(envs.config.n_glimpses - 1):
        h = agent(obs.glimpse, obs.location, h)
        policy = torch.distributions.Normal(torch.tanh(agent.where(h.detach())), std)
        draw = policy.sample()
        log_prob = log_prob + policy.log_prob(draw).sum(1)
        obs = envs.step_tensors(draw.clamp(-1, 1), no_label).obs  # the env never clips: we do
    h = agent(obs.glimpse, obs.location, h)
    logits = agent.what(h)
    last = envs.step_tensors(obs.location, logits.detach().argmax(1))  # the label is judged
    return Episodes(logits, log_prob, last.reward, last.label)


def main(argv: list[str] | None = None) -> float:
    """Train; returns the mean reward (training accuracy) of the last ``--log-every`` updates."""
    parser = ArgumentParser(  # one-line usage errors
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-id", default="GlimpseMNIST-v0", choices=[s.env_id for s in ENV_SPECS])
    parser.add_argument("--num-envs", type=int, default=128, help="episodes per update")
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--std", type=float, default=0.1, help="std of the location policy")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--log-every", type=int, default=50, help="updates between prints (and averaged at the end)"
    )
    args = parser.parse_args(argv)
    if min(args.num_envs, args.updates, args.hidden, args.log_every) < 1:
        parser.error("--num-envs, --updates, --hidden and --log-every must be at least 1")
    torch.manual_seed(args.seed)

    envs = gym.make_vec(
        args.env_id,
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.DISABLED,
        device=args.device,
    ).unwrapped
    assert isinstance(envs, GlimpseVectorEnv)
    envs.reset_tensors(seed=args.seed)
    glimpse_size = int(torch.tensor(envs.single_observation_space["glimpse"].shape).prod())
    num_classes = int(envs.single_action_space["label"].n)
    agent = TinyAgent(glimpse_size, num_classes, args.hidden).to(envs.device)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate)

    rewards: list[float] = []
    for update in range(1, args.updates + 1):
        episodes = play(agent, envs, std=args.std, hidden=args.hidden)
        advantage = episodes.reward - episodes.reward.mean()  # the batch mean as the baseline
        loss = F.cross_entropy(episodes.logits, episodes.label) - (advantage * episodes.log_prob).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        rewards.append(float(episodes.reward.mean()))
        if update % args.log_every == 0 or update == args.updates:
            recent = rewards[-args.log_every :]
            print(f"update {update}: mean reward {sum(recent) / len(recent):.3f} over the last {len(recent)}")
    recent = rewards[-args.log_every :]
    return sum(recent) / len(recent)


if __name__ == "__main__":
    run_cli(main)  # bad input: one line on stderr, no traceback
