"""One evaluation protocol for every agent: a policy plays every canvas of a split.

A *policy* is anything callable as ``policy(observation, state, episode_start) ->
(action, state)`` (:class:`~glimpse_env.policies.Policy`). :func:`evaluate` plays it on the
native vector environment, autoreset disabled and episodes in lockstep, canvas by canvas
through ``reset(options={"indices": ...})``, and scores it with
:func:`~glimpse_env.scoring.score_predictions`, the one scoring function of the project
(accuracy, Wilson 95% interval, per-class accuracy), which ``agents.evaluate`` and
``baselines.evaluate`` use as well::

    from glimpse_env.evaluation import RandomPolicy, SB3Policy, evaluate

    result = evaluate(RandomPolicy(10, seed=0), "GlimpseMNIST-Cluttered-v0", episodes=1000)
    result = evaluate(SB3Policy(model), "GlimpseMNIST-v0", mc_samples=5)  # any SB3 model
    print(result.accuracy, result.ci95, result.per_class)

This module is the protocol and its environment factories (:func:`lockstep_vector_env`,
:func:`task_config`); the scoring is :mod:`glimpse_env.scoring`, the policy interface and
its adapters (:class:`~glimpse_env.policies.RandomPolicy`,
:class:`~glimpse_env.policies.SB3Policy` and, in ``agents.evaluate``, ``RAMPolicy``)
:mod:`glimpse_env.policies`; every name of those is importable from here too. The command
line is ``python -m glimpse_env.evaluate`` (:mod:`glimpse_env.evaluate`).

Monte Carlo averaging: with ``mc_samples=M`` every canvas is played ``M`` times (``M``
episodes of its own in the same batch) and its class is decided by
:func:`~glimpse_env.scoring.monte_carlo_predictions`: the argmax of the mean of the
``scores`` the policy gave on the last step of its ``M`` episodes (e.g. class
log-probabilities, as in the RAM paper) when it gives scores, else the majority vote of the
``M`` labels played, a tie going to the tied label played first. With ``M = 1`` the class
is the label played, so the accuracy is the mean reward.

Early answers (an environment with ``early_answer=True``): a policy's action may hold
``stop`` (1 answers now); each episode is scored on the label of the step it answered at
(its first episode in its sub-environment: the batch runs with ``NEXT_STEP`` autoreset, so
the episodes that answered early restart while the others play on, and the restarted ones
are not scored), and the result's ``mean_glimpses`` is the mean of those steps. Without
early answers it is ``n_glimpses``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from glimpse_env.devices import check_device
from glimpse_env.env import ObsType
from glimpse_env.policies import Policy, PolicyAction, RandomPolicy, SB3Policy, sb3_action_form
from glimpse_env.registration import check_env_id
from glimpse_env.scoring import (
    Z95,
    EvaluationResult,
    Scores,
    format_table,
    monte_carlo_predictions,
    score_predictions,
    wilson_interval,
)
from glimpse_env.task import TaskConfig
from glimpse_env.validation import check_int
from glimpse_env.vector import GlimpseVectorEnv
from glimpse_env.wrappers import LOCATION_SIZE

__all__ = [
    "DEFAULT_NUM_ENVS",
    "Z95",
    "EvaluationResult",
    "Policy",
    "PolicyAction",
    "RandomPolicy",
    "SB3Policy",
    "Scores",
    "ShardOutcome",
    "batch_seed",
    "evaluate",
    "format_table",
    "lockstep_vector_env",
    "monte_carlo_predictions",
    "sb3_action_form",
    "score_predictions",
    "task_config",
    "wilson_interval",
]

#: episodes per batch of :func:`evaluate` unless told otherwise
DEFAULT_NUM_ENVS = 1000
#: the seeds of the batches of an evaluation seeded with s are s + b * stride (mod 2^63)
_BATCH_SEED_STRIDE = 1_000_003
#: keyword arguments of the environments that are not task settings (:class:`TaskConfig`)
_NON_TASK_KWARGS = ("data_dir", "render_mode")
#: keyword arguments of the vector environment that :func:`evaluate` sets itself
_SET_BY_EVALUATE = ("num_envs", "autoreset_mode", "vectorization_mode")


# ---------------------------------------------------------------------- the environments
def task_config(env_id: str, **env_kwargs: Any) -> TaskConfig:
    """The task settings of ``gym.make(env_id, **env_kwargs)`` (without building it), e.g.
    ``task_config("GlimpseMNIST-v0").n_glimpses``."""
    kwargs = {**gym.spec(check_env_id(env_id)).kwargs, **env_kwargs}
    settings = {key: value for key, value in kwargs.items() if key not in _NON_TASK_KWARGS}
    return TaskConfig.from_kwargs(settings, owner=env_id, others=_NON_TASK_KWARGS)


def lockstep_vector_env(
    env_id: str, num_envs: int, *, device: str | torch.device = "cpu", **env_kwargs: Any
) -> GlimpseVectorEnv:
    """The native vector environment of ``env_id`` with autoreset disabled, so that its
    episodes run in lockstep (what the evaluation and the RAM's training play on)."""
    return _native_vector_env(
        env_id, num_envs, device=device, autoreset_mode=AutoresetMode.DISABLED, env_kwargs=env_kwargs
    )


def _native_vector_env(
    env_id: str,
    num_envs: int,
    *,
    device: str | torch.device,
    autoreset_mode: AutoresetMode,
    env_kwargs: dict[str, Any],
) -> GlimpseVectorEnv:
    """``gym.make_vec`` of a glimpse id with the native vector env and ``autoreset_mode``."""
    envs = gym.make_vec(
        check_env_id(env_id),
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        device=device,
        autoreset_mode=autoreset_mode,
        **env_kwargs,
    )
    native = envs.unwrapped
    assert isinstance(native, GlimpseVectorEnv), "the glimpse ids make GlimpseVectorEnv"
    return native


def _evaluation_env(
    env_id: str, num_envs: int, config: TaskConfig, *, device: torch.device, **env_kwargs: Any
) -> GlimpseVectorEnv:
    """The environment :func:`evaluate` plays on: :func:`lockstep_vector_env`; with early
    answers, whose episodes end at steps of their own, ``NEXT_STEP`` autoreset instead (an
    episode that answered restarts, unscored, while the others play on)."""
    if not config.early_answer:
        return lockstep_vector_env(env_id, num_envs, device=device, **env_kwargs)
    return _native_vector_env(
        env_id, num_envs, device=device, autoreset_mode=AutoresetMode.NEXT_STEP, env_kwargs=env_kwargs
    )


# ---------------------------------------------------------------------- one batch
def _check_action(
    action: object, num_envs: int, num_classes: int, early_answer: bool = False
) -> tuple[Any, Any, np.ndarray | None]:
    """``(location, label, scores)`` of a policy's action (the environment checks the first two)."""
    if not isinstance(action, Mapping) or "location" not in action or "label" not in action:
        raise TypeError(
            f"a policy's action is a dict {{'location': (N, 2) float32, 'label': (N,) int[, 'scores': "
            f"(N, C)][, 'stop': (N,) 0 or 1]}}, got {type(action).__name__}"
            + (f" with keys {sorted(map(str, action))}" if isinstance(action, Mapping) else "")
        )
    if not early_answer and "stop" in action:
        raise ValueError(
            "a policy's action has a 'stop', but the environment has no early answers "
            "(early_answer=False): evaluate with early_answer=True, or drop 'stop'"
        )
    scores = action.get("scores")
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != (num_envs, num_classes):
            raise ValueError(
                f"a policy's action['scores'] holds one score per class for each episode, shape "
                f"({num_envs}, {num_classes}), got {scores.shape}"
            )
        if np.isnan(scores).any():
            raise ValueError("a policy's action['scores'] contains NaN")
    return action["location"], action["label"], scores


def _call(policy: Policy, obs: ObsType, state: Any, episode_start: np.ndarray) -> tuple[Any, Any]:
    """One call of ``policy``, its answer checked to be an ``(action, state)`` pair."""
    answer = policy(obs, state, episode_start)
    if not isinstance(answer, tuple) or len(answer) != len(("action", "state")):
        raise TypeError(
            f"a policy returns a pair (action, state), got {type(answer).__name__}; see "
            f"glimpse_env.evaluation.Policy"
        )
    return answer


class _Batch(NamedTuple):
    """The scored episodes of one batch (``E`` of them, the first ``E`` sub-environments)."""

    played: np.ndarray
    """``(E,)`` int64: the labels played, as the environment recorded them."""
    labels: np.ndarray
    """``(E,)`` int64: the true classes the terminal step revealed."""
    scores: np.ndarray | None
    """``(E, C)`` float64: the policy's scores on the last step, if it gave any."""
    reward_sum: float
    location_sum: np.ndarray
    """``(T, 2)`` float64: the locations of glimpses ``1 .. T``, summed over the episodes."""
    glimpse_sum: int
    """The glimpses the episodes answered with, summed."""
    location_count: np.ndarray
    """``(T,)`` float64: the episodes that took each glimpse."""


def _play_batch(
    policy: Policy, envs: GlimpseVectorEnv, *, indices: np.ndarray, seed: int | None, episodes: int
) -> _Batch:
    """One episode in every sub-environment, on canvases ``indices``, in lockstep; the
    first ``episodes`` sub-environments are scored."""
    if envs.config.early_answer:
        return _play_early_batch(policy, envs, indices=indices, seed=seed, episodes=episodes)
    size, n_glimpses = envs.num_envs, envs.config.n_glimpses
    obs, _ = envs.reset(seed=seed, options={"indices": indices})
    state: Any = None
    episode_start = np.ones(size, dtype=np.bool_)
    locations = [obs["location"]]
    returns = np.zeros(
        size, dtype=np.float64
    )  # only the last step earns, unless a cost or every-step rewards
    for step in range(1, n_glimpses + 1):
        action, state = _call(policy, obs, state, episode_start)
        location, label, scores = _check_action(action, size, envs.task.num_classes)
        obs, reward, terminated, _, info = envs.step({"location": location, "label": label})
        returns += reward
        episode_start = np.zeros(size, dtype=np.bool_)
        if step < n_glimpses:  # glimpses 1 .. T: the reset's and those of steps 1 .. T - 1
            locations.append(obs["location"])
    if not terminated.all():
        raise RuntimeError(f"the episodes did not end after their {n_glimpses} glimpses")
    return _Batch(
        played=np.asarray(info["prediction"][:episodes], dtype=np.int64),
        labels=np.asarray(info["label"][:episodes], dtype=np.int64),
        scores=None if scores is None else scores[:episodes],
        reward_sum=float(returns[:episodes].sum()),
        location_sum=np.stack(locations, axis=1)[:episodes].sum(axis=0, dtype=np.float64),
        glimpse_sum=episodes * n_glimpses,
        location_count=np.full(n_glimpses, float(episodes)),
    )


def _play_early_batch(
    policy: Policy, envs: GlimpseVectorEnv, *, indices: np.ndarray, seed: int | None, episodes: int
) -> _Batch:
    """:func:`_play_batch` with early answers: the episodes answer at steps of their own
    (``envs`` autoresets on the next step, :func:`_evaluation_env`); each sub-environment's
    first episode is scored on the label it answered with, its return and its glimpses."""
    size, n_glimpses, num_classes = envs.num_envs, envs.config.n_glimpses, envs.task.num_classes
    obs, _ = envs.reset(seed=seed, options={"indices": indices})
    state: Any = None
    episode_start = np.ones(size, dtype=np.bool_)
    playing = np.ones(size, dtype=np.bool_)  # the first episode has not answered yet
    played, labels, glimpses = (np.zeros(size, dtype=np.int64) for _ in range(3))
    returns = np.zeros(size, dtype=np.float64)
    kept_scores: np.ndarray | None = np.zeros((size, num_classes), dtype=np.float64)
    location_sum = np.zeros((n_glimpses, LOCATION_SIZE), dtype=np.float64)
    location_count = np.zeros(n_glimpses, dtype=np.float64)
    for step in range(1, n_glimpses + 1):
        used = playing[:episodes]  # the scored episodes that took glimpse `step`
        location_sum[step - 1] = obs["location"][:episodes][used].sum(axis=0, dtype=np.float64)
        location_count[step - 1] = float(used.sum())
        action, state = _call(policy, obs, state, episode_start)
        location, label, scores = _check_action(action, size, num_classes, early_answer=True)
        stop = action.get("stop")
        obs, reward, terminated, _, info = envs.step(
            {"location": location, "label": label, "stop": np.zeros(size, np.int64) if stop is None else stop}
        )
        episode_start = np.zeros(size, dtype=np.bool_)
        returns += np.where(playing, reward, 0.0)  # a restarted episode is not scored
        answered = terminated & playing
        if answered.any():
            played[answered] = info["prediction"][answered]
            labels[answered] = info["label"][answered]
            glimpses[answered] = step
            if scores is None:
                kept_scores = None  # an answer without scores: the Monte Carlo vote counts labels
            elif kept_scores is not None:
                kept_scores[answered] = scores[answered]
            playing &= ~answered
        if not playing.any():
            break
    if playing.any():
        raise RuntimeError(f"the episodes did not end after their {n_glimpses} glimpses")
    return _Batch(
        played=played[:episodes],
        labels=labels[:episodes],
        scores=None if kept_scores is None else kept_scores[:episodes],
        reward_sum=float(returns[:episodes].sum()),
        location_sum=location_sum,
        glimpse_sum=int(glimpses[:episodes].sum()),
        location_count=location_count,
    )


# ---------------------------------------------------------------------- the batches of an evaluation
class _Layout(NamedTuple):
    """How the canvases of an evaluation are laid out in batches (see :func:`evaluate`)."""

    n: int
    """Canvases ``0 .. n - 1`` are evaluated."""
    repeats: int
    """``M``: episodes per canvas, in consecutive sub-environments."""
    per_batch: int
    """``P``: canvases per batch (the environment has ``P * M`` sub-environments)."""

    @classmethod
    def of(cls, n: int, *, repeats: int, num_envs: int) -> _Layout:
        """``n`` canvases played ``repeats`` times each in batches of about ``num_envs``
        episodes (a multiple of ``repeats``, and no more than ``n`` canvases: fewer
        canvases than one batch make a smaller environment)."""
        return cls(n=n, repeats=repeats, per_batch=min(max(1, num_envs // repeats), n))

    @property
    def starts(self) -> range:
        """The first canvas of every batch."""
        return range(0, self.n, self.per_batch)

    def canvases(self, number: int) -> np.ndarray:
        """``(P M,)`` int64: the canvas of each sub-environment in batch ``number`` (the last
        batch filled up with the last canvas)."""
        first = self.starts[number]
        canvases = np.minimum(np.arange(first, first + self.per_batch), self.n - 1)
        return np.repeat(canvases, self.repeats)

    def scored(self, number: int) -> int:
        """How many sub-environments of batch ``number`` are scored (the rest fill it up)."""
        return min(self.per_batch, self.n - self.starts[number]) * self.repeats


class ShardOutcome(NamedTuple):
    """What one shard of an evaluation played (:func:`evaluate`'s ``shard``): enough to
    score the union of the shards exactly, whichever process played which batch."""

    batches: list[tuple[int, np.ndarray, np.ndarray]]
    """``(batch number, predictions, true labels)`` of each batch played, per canvas."""
    reward_sum: float
    location_sum: np.ndarray
    """``(T, 2)`` float64: the locations of glimpses ``1 .. T``, summed over the episodes."""
    seconds: float
    glimpse_sum: int
    """The glimpses the episodes answered with, summed."""
    location_count: np.ndarray
    """``(T,)`` float64: the episodes that took each glimpse (the divisors of ``location_sum``)."""


def batch_seed(seed: int, batch: int) -> int:
    """The environment seed of batch ``batch`` of :func:`evaluate` (``seed`` itself for the
    first): each batch has its own, so a batch plays the same wherever it is played."""
    return (seed + batch * _BATCH_SEED_STRIDE) % 2**63


def _play_shard(
    policy: Policy, envs: GlimpseVectorEnv, layout: _Layout, *, shard: tuple[int, int], seed: int
) -> ShardOutcome:
    """Batches ``b`` with ``b mod k == i`` of ``layout`` (``shard = (i, k)``), played and
    decided canvas by canvas."""
    shard_index, shard_count = shard
    num_classes, repeats = envs.task.num_classes, layout.repeats
    played: list[tuple[int, np.ndarray, np.ndarray]] = []
    rewards = 0.0
    location_sum = np.zeros((envs.config.n_glimpses, LOCATION_SIZE), dtype=np.float64)
    location_count = np.zeros(envs.config.n_glimpses, dtype=np.float64)
    glimpses = 0
    start_time = time.perf_counter()
    start_batch = getattr(policy, "start_batch", None)
    for number in range(shard_index, len(layout.starts), shard_count):
        if start_batch is not None:
            start_batch(number)
        batch = _play_batch(
            policy,
            envs,
            indices=layout.canvases(number),
            seed=batch_seed(seed, number),
            episodes=layout.scored(number),
        )
        if repeats == 1:
            predicted = batch.played
        else:
            grouped = None if batch.scores is None else batch.scores.reshape(-1, repeats, num_classes)
            predicted = monte_carlo_predictions(
                batch.played.reshape(-1, repeats), grouped, num_classes=num_classes
            )
        played.append((number, predicted, batch.labels[::repeats]))
        rewards += batch.reward_sum
        location_sum += batch.location_sum
        location_count += batch.location_count
        glimpses += batch.glimpse_sum
    return ShardOutcome(
        played, rewards, location_sum, time.perf_counter() - start_time, glimpses, location_count
    )


def _union(outcomes: Sequence[ShardOutcome], layout: _Layout) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The batches the shards played, in order: each batch of ``layout`` once, else a ``RuntimeError``."""
    batches = sorted((b for outcome in outcomes for b in outcome.batches), key=lambda b: b[0])
    if [b[0] for b in batches] != list(range(len(layout.starts))):
        raise RuntimeError(
            f"the shards played batches {[b[0] for b in batches]}, expected each of 0 .. "
            f"{len(layout.starts) - 1} once: every process must pass the same settings and its own shard"
        )
    return batches


# ---------------------------------------------------------------------- the protocol
def evaluate(
    policy: Policy,
    env_id: str,
    *,
    split: str = "test",
    episodes: int | None = None,
    mc_samples: int = 1,
    num_envs: int = DEFAULT_NUM_ENVS,
    seed: int = 0,
    device: str | torch.device = "cpu",
    name: str | None = None,
    shard: tuple[int, int] = (0, 1),
    exchange: Callable[[ShardOutcome], Sequence[ShardOutcome]] | None = None,
    **env_kwargs: Any,
) -> EvaluationResult:
    """Play ``policy`` on every canvas of ``split`` (or the first ``episodes``) and score it.

    The canvases are played in batches of the native vector environment with autoreset
    disabled (every episode of a batch starts and ends together), through
    ``reset(options={"indices": ...})``: each batch holds ``P = min(num_envs // M, n)``
    canvases (at least one), each played in ``M = mc_samples`` consecutive
    sub-environments, so sub-environment ``j`` of batch ``b`` shows canvas
    ``min(b * P + j // M, n - 1)`` (the last batch is filled up with the last canvas,
    whose extra episodes are not scored). The true labels are the ones the terminal step
    reveals (``info["label"]``).

    Args:
        policy: a :class:`~glimpse_env.policies.Policy`.
        env_id: a registered glimpse environment id.
        split: ``"val"`` or ``"test"`` (or ``"train"`` with ``train_size=N`` in ``env_kwargs``).
        episodes: evaluate canvases ``0 .. episodes - 1`` only (at most the split's size);
            default: every canvas.
        mc_samples: ``M``, episodes per canvas, combined by
            :func:`~glimpse_env.scoring.monte_carlo_predictions`; with ``M = 1`` the class is
            the label played.
        num_envs: episodes per batch (rounded down to a multiple of ``M``, at least ``M``).
        seed: seeds the environment's generator at the reset of every batch (batch ``b``
            with :func:`batch_seed`; it draws the first locations when
            ``initial_location="random"``); the policy's own randomness is its own (e.g.
            ``RandomPolicy(C, seed)``, or reseeded per batch by its ``start_batch``).
        device: the environment's device (the policy converts what it needs).
        name: the policy's name in the result (default: its ``name`` attribute, else its
            type's or function's name).
        shard: ``(i, k)``: play only batches ``b`` with ``b mod k == i`` (one process of
            ``k`` sharing the evaluation); default: every batch.
        exchange: with a ``shard``, sends this process's :class:`ShardOutcome` to the
            others and returns all ``k`` of them (e.g. ``torch.distributed.all_gather_object``);
            the result then scores every canvas, the same in every process and the same
            as one process playing every batch.
        env_kwargs: further settings of the environment (``gym.make_vec`` keyword arguments).

    Returns:
        An :class:`~glimpse_env.scoring.EvaluationResult`.
    """
    check_env_id(env_id)
    if not callable(policy):
        raise TypeError(
            f"policy must be callable as policy(observation, state, episode_start) -> (action, state), "
            f"got {type(policy).__name__}"
        )
    repeats = check_int(mc_samples, "mc_samples", low=1)
    shard_index, shard_count = shard
    shard_count = check_int(shard_count, "the shard count", low=1)
    shard_index = check_int(shard_index, "the shard index", low=0, high=shard_count - 1)
    if shard_count > 1 and exchange is None:
        raise ValueError("a shard of an evaluation needs an exchange to gather the other shards' outcomes")
    num_envs = check_int(num_envs, "num_envs", low=1)
    seed = check_int(seed, "seed", low=0)
    if episodes is not None:
        episodes = check_int(episodes, "episodes", low=1)
    for key in _SET_BY_EVALUATE:
        if key in env_kwargs:
            raise TypeError(f"evaluate sets {key} itself; drop it from the environment settings")
    device = check_device(device)
    # the settings, checked (the environment is built once, of the size they call for)
    config = task_config(env_id, split=split, **env_kwargs)
    total = config.fixed_set_size
    if total is None:
        raise ValueError(
            f"split {split!r} of {env_id} draws a fresh canvas every episode, so it has no canvases to "
            f"evaluate on: use split='val' or 'test', or fix a training set with train_size=N"
        )
    count = total if episodes is None else min(episodes, total)
    layout = _Layout.of(count, repeats=repeats, num_envs=num_envs)
    policy_name = name or getattr(policy, "name", None) or getattr(policy, "__name__", type(policy).__name__)

    envs = _evaluation_env(
        env_id, layout.per_batch * repeats, config, device=device, split=split, **env_kwargs
    )
    try:
        outcome = _play_shard(policy, envs, layout, shard=(shard_index, shard_count), seed=seed)
    finally:
        envs.close()
    outcomes = [outcome] if exchange is None else list(exchange(outcome))
    batches = _union(outcomes, layout)
    scores = score_predictions(
        np.concatenate([b[1] for b in batches]),
        np.concatenate([b[2] for b in batches]),
        num_classes=config.num_classes,
    )
    rewards = sum(o.reward_sum for o in outcomes)
    location_sum = np.sum([o.location_sum for o in outcomes], axis=0)
    location_count = np.sum([o.location_count for o in outcomes], axis=0)[:, None]
    mean_locations = np.divide(
        location_sum, location_count, out=np.full_like(location_sum, np.nan), where=location_count > 0
    )
    elapsed = max(o.seconds for o in outcomes)
    played_total = count * repeats
    return EvaluationResult(
        env_id=env_id,
        split=split,
        policy=str(policy_name),
        n=count,
        mc_samples=repeats,
        accuracy=scores.accuracy,
        ci95=scores.ci95,
        mean_reward=rewards / played_total,
        mean_glimpses=sum(o.glimpse_sum for o in outcomes) / played_total,
        per_class=scores.per_class,
        class_counts=scores.class_counts,
        mean_locations=mean_locations.tolist(),
        episodes_per_second=played_total / max(elapsed, 1e-9),
    )
