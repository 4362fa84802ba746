"""Seconds per training epoch of the RAM, split into time in the environment and in the model.

    python benchmarks/ram_epoch.py [--env GlimpseMNIST-v0] [--updates 429] [--repeats 5] [--threads N]
                                   [--busy K] [--json out.json]

An epoch is 55,000 episodes (``55,000 // batch`` updates of ``--batch`` episodes; 429 for
batch 128) of ``--env`` with the agent's own training step: a lockstep rollout on the
native vector environment's tensor API (:func:`agents.rollout.play_episodes`), the hybrid
loss, backward and the optimizer step. Rows:

- *training update*: the whole step; the environment's share is the time spent inside
  ``reset_tensors`` / ``step_tensors`` during it;
- *model alone*: the same model, loss, backward and optimizer on random glimpses, no
  environment (what the update would cost with a free environment).

Seconds per epoch are the measured mean per update times the updates of an epoch. Each row
is timed ``--repeats`` times (the two rows alternating) and the median is reported, with the
range of the environment's share: on a shared virtual machine one timing can be a third off.
``--busy K`` times it with ``K`` competing CPU-bound processes (as ``env_throughput.py``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from _common import busy, machine, print_table, write_json

from agents.losses import ram_loss
from agents.ram import ModelConfig, RecurrentAttentionModel, sample_locations
from agents.rollout import make_vector_env, play_episodes

EPISODES_PER_EPOCH = 55_000


class EnvClock:
    """Wraps an env's ``reset_tensors`` / ``step_tensors`` and adds up the time spent in them."""

    def __init__(self, envs: Any) -> None:
        self.seconds = 0.0
        for name in ("reset_tensors", "step_tensors"):
            setattr(envs, name, self._timed(getattr(envs, name)))

    def _timed(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="GlimpseMNIST-v0")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--core", default="rnn", choices=("rnn", "lstm"))
    parser.add_argument("--updates", type=int, default=None, help="updates timed (default: one whole epoch)")
    parser.add_argument("--repeats", type=int, default=5, help="timings of each row; the median is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="competing CPU-bound processes while timing (see env_throughput.py)",
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    per_epoch = EPISODES_PER_EPOCH // args.batch
    updates = args.updates or per_epoch

    torch.manual_seed(0)
    envs = make_vector_env(args.env, args.batch, split="train")
    envs.reset_tensors(seed=0)
    glimpse_shape = envs.single_observation_space["glimpse"].shape
    config = ModelConfig(glimpse_shape, 10, hidden_size=args.hidden, core=args.core)
    model = RecurrentAttentionModel(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4, fused=True)
    n_glimpses = envs.config.n_glimpses

    def learn(losses: Any) -> None:
        optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        optimizer.step()

    def train_update() -> None:
        r = play_episodes(model, envs, std=0.1)
        learn(
            ram_loss(
                logits=r.logits,
                labels=r.labels,
                reward=r.reward,
                log_probs=r.log_probs,
                baselines=r.baselines,
            )
        )

    glimpses = torch.rand(n_glimpses, args.batch, *glimpse_shape)
    locations = torch.rand(n_glimpses, args.batch, 2) * 2 - 1
    labels = torch.randint(0, 10, (args.batch,))

    def model_update() -> None:
        state = model.initial_state(args.batch)
        log_probs, baselines = [], []
        for t in range(n_glimpses - 1):
            out = model.step(glimpses[t], locations[t], state)
            state = out.state
            log_probs.append(sample_locations(out.location_mean, 0.1).log_prob)
            baselines.append(out.baseline)
        logits = model.classify(model.step(glimpses[-1], locations[-1], state).state)
        reward = (logits.argmax(1) == labels).float()
        learn(
            ram_loss(
                logits=logits,
                labels=labels,
                reward=reward,
                log_probs=torch.stack(log_probs, 1),
                baselines=torch.stack(baselines, 1),
            )
        )

    def seconds_per_update(fn: Callable[[], None]) -> float:
        for _ in range(5):
            fn()
        start = time.perf_counter()
        for _ in range(updates):
            fn()
        return (time.perf_counter() - start) / updates

    clock = EnvClock(envs)
    trains, shares, alones = [], [], []
    with busy(args.busy):
        for _ in range(args.repeats):
            clock.seconds = 0.0
            trains.append(seconds_per_update(train_update))
            shares.append(clock.seconds / (updates + 5) / trains[-1])
            alones.append(seconds_per_update(model_update))
    train, env_share, alone = (statistics.median(x) for x in (trains, shares, alones))
    rows = [
        {
            "row": "training update (env + model)",
            "s/epoch": train * per_epoch,
            "ms/update": 1000 * train,
            "env share": f"{100 * env_share:.1f}% ({100 * min(shares):.1f}-{100 * max(shares):.1f})",
            "images/s": args.batch / train,
        },
        {
            "row": "model alone (random glimpses)",
            "s/epoch": alone * per_epoch,
            "ms/update": 1000 * alone,
            "env share": "-",
            "images/s": args.batch / alone,
        },
    ]
    info = machine()
    print(
        f"{args.env}, batch {args.batch}, hidden {args.hidden}, core {args.core}, {per_epoch} updates/epoch, "
        f"{updates} timed, median of {args.repeats}; "
        f"torch threads {info['torch_threads']}, {info['cores']} cores"
    )
    print_table(rows, ["row", "s/epoch", "ms/update", "env share", "images/s"])
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
