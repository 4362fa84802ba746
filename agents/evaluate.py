"""Evaluate a RAM checkpoint by running its policy in the environment.

    python -m agents.evaluate --checkpoint RUN/checkpoints/best.pt --mc-samples 10 --json out.json
    python -m agents.evaluate --pretrained GlimpseMNIST-v0        # the shipped weights of a leaderboard row

The project's one evaluation protocol (:mod:`glimpse_env.evaluation`) with the RAM as
its policy (:class:`RAMPolicy`): every canvas of the split is played, in batches of the
native vector environment with ``reset(options={"indices": ...})``. With ``--mc-samples
M`` each canvas is played ``M`` times with independently drawn locations and the class is
the argmax of the mean log-probabilities over the ``M`` episodes (Monte Carlo averaging,
as in the study). The locations are drawn with the checkpoint's own training seed unless
``--seed`` says otherwise, as the run's test was, so a re-score of ``best.pt`` with the
run's ``--eval-episodes`` and Monte Carlo samples gives the figures of its
``results/test.json``. Prints a table; ``--json`` also writes the figures (``accuracy``,
``ci95``, ``n``, ``env_id``, ``per_class``, ``mean_locations``, ``mean_reward``, ...).
``python -m glimpse_env.evaluate --policy ram:CHECKPOINT`` plays the same episodes.

``--pretrained ENV_ID`` plays the RAM that ships for that environment's leaderboard row
(:func:`agents.pretrained`, digests verified) with the row's own seed, samples and batches,
and says whether the accuracy is the row's to the last digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.nn import functional as F

from agents.ram import ModelConfig, RecurrentAttentionModel, RecurrentState, sample_locations
from agents.shipped import pretrained
from glimpse_engine.checkpoints import load_checkpoint, rebuild_model
from glimpse_engine.cli import parse_args
from glimpse_engine.datasets import dataset_kwargs
from glimpse_engine.distributed import SINGLE, Cluster, gather_objects
from glimpse_engine.errors import CheckpointError
from glimpse_engine.runs import write_json
from glimpse_engine.scoring import MachineArgs, one_source, prepare_machine
from glimpse_engine.weights import reproduction
from glimpse_env.cli import (
    check_flag_int,
    check_output_file,
    run_cli,
)
from glimpse_env.env import ObsType
from glimpse_env.evaluation import (
    DEFAULT_NUM_ENVS,
    EvaluationResult,
    PolicyAction,
    batch_seed,
    evaluate,
    format_table,
    task_config,
)
from glimpse_env.validation import check_int

__all__ = [
    "EvalResult",
    "RAMPolicy",
    "RAMState",
    "default_seed",
    "evaluate_model",
    "format_table",
    "load_model",
    "main",
]

#: the trainer whose checkpoints this program loads
TRAINER = "agents.ram_reinforce"

#: the result of :func:`evaluate_model`: the protocol's :class:`~glimpse_env.evaluation.EvaluationResult`
EvalResult = EvaluationResult


class RAMState(NamedTuple):
    """:class:`RAMPolicy`'s state between steps."""

    core: RecurrentState
    """The RAM core's state, ``(N, H)`` tensors."""
    glimpses: np.ndarray
    """``(N,)`` int64: glimpses seen so far in each episode."""


class RAMPolicy:
    """The RAM as a :class:`glimpse_env.evaluation.Policy`: the same play as
    :func:`agents.rollout.play_episodes`, through the environment's numpy API.

    At each glimpse the core is stepped and the policy answers the next location, ``l_t``
    drawn from ``N(mu_t, std^2)`` (clamped to ``[-1, 1]``, :func:`agents.ram.sample_locations`)
    when ``sample``, else ``mu_t``; its label is the argmax of the classifier's logits and
    its ``scores`` their log-softmax ``(N, C)`` (what Monte Carlo averaging averages). After
    glimpse ``n_glimpses``, which ends the episode, the location is ``mu_T`` and nothing is
    drawn, as in ``play_episodes``: the same generator gives the same episodes there and here.

    Args:
        model: the RAM; observations are copied to its device.
        std: the location policy's standard deviation.
        n_glimpses: glimpses per episode of the environment it plays
            (``glimpse_env.evaluation.task_config(env_id).n_glimpses``).
        sample: draw the locations (default) or play the means.
        generator: torch generator of the draws, on the model's device (default: torch's global
            one); reseeded before every batch (:meth:`start_batch`).
    """

    def __init__(
        self,
        model: RecurrentAttentionModel,
        *,
        std: float,
        n_glimpses: int,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        if not std > 0:
            raise ValueError(f"std must be a positive number (the location policy's deviation), got {std!r}")
        self.model = model
        self.std = float(std)
        self.n_glimpses = check_int(n_glimpses, "n_glimpses", low=1)
        self.sample = bool(sample)
        self.generator = generator
        self.seed = None if generator is None else generator.initial_seed()
        self.device = next(model.parameters()).device
        self.name = "ram" if self.sample else "ram (mean locations)"

    def start_batch(self, number: int) -> None:
        """Before batch ``number`` of an evaluation: the generator is reseeded with
        :func:`glimpse_env.evaluation.batch_seed` of the seed it was made with, so a batch
        draws the same locations whichever batches came before it (and whichever process
        of a sharded evaluation plays it). Without a generator (torch's global one),
        nothing is reseeded."""
        if self.generator is not None and self.seed is not None:
            self.generator.manual_seed(batch_seed(self.seed, number))

    @torch.no_grad()
    def __call__(
        self, observation: ObsType, state: RAMState | None, episode_start: np.ndarray
    ) -> tuple[PolicyAction, RAMState]:
        glimpse = torch.as_tensor(observation["glimpse"], device=self.device)
        location = torch.as_tensor(observation["location"], device=self.device)
        n = glimpse.shape[0]
        fresh = self.model.initial_state(n, self.device)
        if state is None:
            core, glimpses = fresh, np.zeros(n, dtype=np.int64)
        else:
            starting = np.asarray(episode_start, dtype=np.bool_)
            mask = torch.as_tensor(starting, device=self.device)[:, None]
            core = RecurrentState(*(torch.where(mask, f, s) for f, s in zip(fresh, state.core, strict=True)))
            glimpses = np.where(starting, 0, state.glimpses)
        out = self.model.step(glimpse, location, core)
        glimpses = glimpses + 1
        last = glimpses >= self.n_glimpses  # the glimpse that ends the episode: no location is drawn
        next_location = out.location_mean
        if self.sample and not last.all():
            drawn = sample_locations(out.location_mean, self.std, generator=self.generator).location
            keep_mean = torch.as_tensor(last, device=self.device)[:, None]
            next_location = torch.where(keep_mean, out.location_mean, drawn)
        logits = self.model.classify(out.state)
        action: PolicyAction = {
            "location": next_location.cpu().numpy(),
            "label": logits.argmax(1).cpu().numpy(),
            "scores": F.log_softmax(logits, 1).cpu().numpy(),
        }
        return action, RAMState(out.state, glimpses)


def evaluate_model(
    model: RecurrentAttentionModel,
    env_id: str,
    *,
    split: str = "test",
    mc_samples: int = 1,
    std: float,
    batch_size: int = DEFAULT_NUM_ENVS,
    episodes: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    generator: torch.Generator | None = None,
    cluster: Cluster = SINGLE,
) -> EvaluationResult:
    """Play every canvas of ``split`` (or the first ``episodes``) ``mc_samples`` times and score it.

    :func:`glimpse_env.evaluation.evaluate` with a :class:`RAMPolicy`: the class of a
    canvas is the argmax of the mean log-probabilities over its ``M`` episodes; scored by
    :func:`glimpse_env.evaluation.score_predictions`. The model is put in eval mode for the
    evaluation and back in its mode after.

    Args:
        model: the RAM; the environment is made on its device.
        env_id: registered environment id.
        split: ``"val"`` or ``"test"`` (or ``"train"`` with a fixed ``train_size`` in ``env_kwargs``).
        mc_samples: ``M``, episodes per canvas (locations drawn); ``0`` plays the means once
            (reported as ``mc_samples=0``).
        std: the policy's standard deviation.
        batch_size: episodes per batch (rounded down to a multiple of ``M``).
        episodes: evaluate only canvases ``0 .. episodes - 1``.
        env_kwargs: further environment settings.
        generator: torch generator of the location draws (reseeded before every batch:
            :meth:`RAMPolicy.start_batch`).
        cluster: under ``torchrun``, the batches are shared out across the ranks (batch
            ``b`` to rank ``b mod world_size``) and the outcomes combined: every rank gets
            the result one process gets (pass a ``generator`` for the same draws).
    """
    if mc_samples < 0:
        raise ValueError(f"mc_samples must be >= 0 (0 plays the mean locations), got {mc_samples}")
    settings = {"split": split, **(env_kwargs or {})}
    policy = RAMPolicy(
        model,
        std=std,
        n_glimpses=task_config(env_id, **settings).n_glimpses,
        sample=mc_samples > 0,
        generator=generator,
    )
    was_training = model.training
    model.eval()
    try:
        result = evaluate(
            policy,
            env_id,
            episodes=episodes,
            mc_samples=max(mc_samples, 1),
            num_envs=batch_size,
            device=policy.device,
            shard=(cluster.rank, cluster.world_size),
            exchange=(lambda outcome: gather_objects(outcome, cluster)) if cluster.distributed else None,
            **settings,
        )
    finally:
        model.train(was_training)
    return result._replace(mc_samples=mc_samples)


def load_model(
    path: str, *, device: torch.device | str = "cpu"
) -> tuple[RecurrentAttentionModel, dict[str, Any]]:
    """The RAM of a training checkpoint, on ``device``, and the run's configuration.

    Raises :class:`~glimpse_engine.errors.CheckpointError` for a missing or unreadable file, for a
    checkpoint of another program (a baseline of ``python -m baselines.train`` is named as
    such, with the program that reads it) and for weights that do not fit the model.
    """
    state = load_checkpoint(path, map_location=device)
    config = state["config"]
    model_config = state.get("model_config")
    if "model" not in state or not isinstance(model_config, dict):
        raise CheckpointError(
            f"{path!r} is not a RAM checkpoint (no model in it); give a checkpoint written by "
            f"python -m agents.ram_reinforce (e.g. RUN/checkpoints/best.pt)"
        )
    if "glimpse_shape" not in model_config:
        if "canvas_shape" in model_config:  # baselines.models.BaselineConfig
            name = model_config.get("name", "baseline")
            raise CheckpointError(
                f"{path!r} is a checkpoint of python -m baselines.train (a {name!r} baseline), not a RAM "
                f"checkpoint of python -m agents.ram_reinforce: evaluate it with "
                f"python -m baselines.evaluate --checkpoint {path} (pictures: python -m baselines.visualize)"
            )
        raise CheckpointError(
            f"{path!r} is not a RAM checkpoint (its model has no glimpse_shape); give a checkpoint written "
            f"by python -m agents.ram_reinforce"
        )
    model = rebuild_model(
        path, "RAM", lambda: RecurrentAttentionModel(ModelConfig.from_dict(model_config)), state
    )
    return model.to(device), config


def default_seed(config: dict[str, Any]) -> int:
    """The seed of a checkpoint's location draws unless ``--seed`` says otherwise: its run's
    own training seed (``config["seed"]``), which the run's test (``results/test.json``)
    drew with, so a re-score gives the run's figures; 0 for a configuration without one."""
    seed = config.get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0


def _check_flags(*, mc_samples: int, episodes: int | None, batch_size: int, seed: int | None) -> None:
    """The command line's numbers, checked up front with their flags' names."""
    check_flag_int(mc_samples, "--mc-samples", low=0, hint="0 plays the mean locations, e.g. --mc-samples 10")
    check_flag_int(episodes, "--episodes", low=1, optional=True, hint="drop it to play every canvas")
    check_flag_int(batch_size, "--batch-size", low=1, hint="e.g. --batch-size 1000")
    check_flag_int(seed, "--seed", low=0, optional=True, hint="drop it for the checkpoint's training seed")


@dataclass
class EvalArgs(MachineArgs):
    """Evaluate a RAM checkpoint on a split of its environment."""

    checkpoint: str = ""
    """path of a checkpoint written by ``python -m agents.ram_reinforce`` (e.g. RUN/checkpoints/best.pt)"""
    pretrained: str | None = None
    """ENV_ID: score the RAM that ships in the repository's weights/ for this environment's leaderboard row
    instead of a checkpoint, with the row's seed, Monte Carlo samples and batches (it reproduces the row)"""
    split: str = field(default="test", metadata={"choices": ("val", "test")})
    """the split to play (every canvas of it)"""
    mc_samples: int | None = None
    """Monte Carlo samples per canvas (0: play the mean locations once; default: 10, or the row's with
    --pretrained)"""
    episodes: int | None = None
    """evaluate only the first N canvases of the split"""
    batch_size: int | None = None
    """episodes per batch (default: 1000, or the row's with --pretrained; the location draws are seeded per
    batch)"""
    seed: int | None = None
    """seed of the location draws (default: the checkpoint's training seed, config["seed"], as the run's own
    test in results/test.json, so a re-score gives the run's figures; with --pretrained, the row's)"""
    json: str | None = None
    """also write the result as JSON to this file (checked before the evaluation)"""


def main(argv: Sequence[str] | None = None) -> EvalResult:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the result.

    Bad input is a ``ValueError`` or :class:`~glimpse_engine.errors.CheckpointError` naming the flag
    or file, raised before anything is evaluated or written."""
    args = parse_args(EvalArgs, argv)
    one_source(
        args.checkpoint, args.pretrained, trainer="agents.ram_reinforce", shipped="--pretrained ENV_ID"
    )
    _check_flags(
        mc_samples=10 if args.mc_samples is None else args.mc_samples,
        episodes=args.episodes,
        batch_size=1000 if args.batch_size is None else args.batch_size,
        seed=args.seed,
    )
    if args.json:
        check_output_file(args.json, "--json")
    device = prepare_machine(args)
    row: dict[str, Any] = {}
    images: dict[str, Any] = {}
    if args.pretrained is not None:
        shipped = pretrained(args.pretrained, device=device)
        model, env_id, std, row = shipped.model, shipped.env_id, shipped.std, shipped.card["evaluation"]
        if args.split == "test" and args.episodes is None:
            args = replace(args, episodes=row.get("episodes"))
    else:
        model, config = load_model(args.checkpoint, device=device)
        env_id, std = config["env"], config["std"]
        row = {"seed": default_seed(config)}
        images = dataset_kwargs(config.get("dataset"))  # a run on your own images: the same images
    args = replace(
        args,
        seed=row.get("seed", 0) if args.seed is None else args.seed,
        mc_samples=row.get("mc_samples", 10) if args.mc_samples is None else args.mc_samples,
        batch_size=row.get("batch_size", 1000) if args.batch_size is None else args.batch_size,
    )
    assert args.seed is not None and args.mc_samples is not None and args.batch_size is not None
    generator = torch.Generator(device=device).manual_seed(args.seed)
    result = evaluate_model(
        model,
        env_id,
        split=args.split,
        mc_samples=args.mc_samples,
        std=std,
        batch_size=args.batch_size,
        episodes=args.episodes,
        generator=generator,
        env_kwargs=images,
    )
    print(format_table(result))
    if args.pretrained is not None:
        print(
            reproduction(result.accuracy, shipped.card, same_protocol=args == replace(args, **_row_args(row)))
        )
    if args.json:
        source = {"pretrained": args.pretrained} if args.pretrained else {"checkpoint": args.checkpoint}
        write_json(args.json, {**result.as_dict(), **source, "args": asdict(args)})
    return result


def _row_args(row: dict[str, Any]) -> dict[str, Any]:
    """The evaluation settings of a shipped row, as :class:`EvalArgs` fields."""
    keys = ("seed", "mc_samples", "batch_size", "episodes")
    return {"split": row.get("split", "test"), **{key: row.get(key) for key in keys}}


if __name__ == "__main__":
    run_cli(main, errors=(CheckpointError,))
