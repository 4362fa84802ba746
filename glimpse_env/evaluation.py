"""One evaluation protocol for every agent: a policy plays every canvas of a split.

A *policy* is anything callable as ``policy(observation, state, episode_start) ->
(action, state)`` (:class:`Policy`). :func:`evaluate` plays it on the native vector
environment, autoreset disabled and episodes in lockstep, canvas by canvas through
``reset(options={"indices": ...})``, and scores it with :func:`score_predictions`, the
one scoring function of the project (accuracy, Wilson 95% interval, per-class accuracy),
which ``agents.evaluate`` and ``baselines.evaluate`` use as well::

    from glimpse_env.evaluation import RandomPolicy, SB3Policy, evaluate

    result = evaluate(RandomPolicy(10, seed=0), "GlimpseMNIST-Cluttered-v0", episodes=1000)
    result = evaluate(SB3Policy(model), "GlimpseMNIST-v0", mc_samples=5)  # any SB3 model
    print(result.accuracy, result.ci95, result.per_class)

The adapters: :class:`RandomPolicy` (uniform locations and labels), :class:`SB3Policy`
(any stable-baselines3 / sb3-contrib model trained on :mod:`glimpse_env.wrappers`'
actions, RecurrentPPO included) and, in ``agents.evaluate``, ``RAMPolicy`` (the RAM). The
command line is ``python -m glimpse_env.evaluate`` (:mod:`glimpse_env.evaluate`).

Monte Carlo averaging: with ``mc_samples=M`` every canvas is played ``M`` times (``M``
episodes of its own in the same batch) and its class is decided by
:func:`monte_carlo_predictions`: the argmax of the mean of the ``scores`` the policy gave
on the last step of its ``M`` episodes (e.g. class log-probabilities, as in the RAM
paper) when it gives scores, else the majority vote of the ``M`` labels played, a tie
going to the tied label played first. With ``M = 1`` the class is the label played, so
the accuracy is the mean reward.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypedDict

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from glimpse_env.env import ObsType
from glimpse_env.registration import check_env_id
from glimpse_env.task import TaskConfig
from glimpse_env.validation import check_int
from glimpse_env.vector import GlimpseVectorEnv
from glimpse_env.wrappers import (
    ACTION_KINDS,
    LOCATION_SIZE,
    MULTIDISCRETE_FIELDS,
    split_flat_actions,
    split_multidiscrete_actions,
)

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

#: z of a two-sided 95% normal interval
Z95 = 1.959963984540054
#: episodes per batch of :func:`evaluate` unless told otherwise
DEFAULT_NUM_ENVS = 1000
#: the seeds of the batches of an evaluation seeded with s are s + b * stride (mod 2^63)
_BATCH_SEED_STRIDE = 1_000_003
#: keyword arguments of the environments that are not task settings (:class:`TaskConfig`)
_NON_TASK_KWARGS = ("data_dir", "render_mode")


# ---------------------------------------------------------------------- scoring
def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``correct / n`` (95% by default).

    ``n = 0`` gives ``(0.0, 1.0)`` (no information); the lower bound of ``0 / n`` is 0 and
    the upper bound of ``n / n`` is 1, exactly. Raises ``ValueError`` unless
    ``0 <= correct <= n``.
    """
    if not 0 <= correct <= n:
        raise ValueError(f"the Wilson interval needs 0 <= correct <= n, got correct={correct}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # the bounds at p = 0 and p = 1 are exactly 0 and 1 (rounding would leave 1 - 2e-16)
    low = 0.0 if correct == 0 else max(0.0, float(centre - half))
    high = 1.0 if correct == n else min(1.0, float(centre + half))
    return (low, high)


class Scores(NamedTuple):
    """What :func:`score_predictions` makes of predictions and true labels."""

    accuracy: float
    ci95: tuple[float, float]
    """Wilson score interval of the accuracy, 95%."""
    per_class: list[float]
    """``(C,)``: accuracy on the items of each true class; ``0.0`` for a class with none
    (see ``class_counts``)."""
    class_counts: list[int]
    """``(C,)``: items of each true class."""
    correct: int
    n: int


def _class_indices(values: Any, name: str, num_classes: int) -> np.ndarray:
    """``values`` as a 1-d int64 array of class indices in ``[0, num_classes)``, or a clear error."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be a 1-d integer array of class indices, got {array.dtype} of shape {array.shape}"
        )
    bad = np.flatnonzero((array < 0) | (array >= num_classes))
    if bad.size:
        raise ValueError(
            f"{name}[{int(bad[0])}] = {int(array[bad[0]])} is not a class: classes are 0..{num_classes - 1}"
        )
    return array.astype(np.int64)


def score_predictions(predictions: Any, labels: Any, *, num_classes: int) -> Scores:
    """Accuracy, its Wilson 95% interval and the per-class accuracy of ``predictions``.

    Args:
        predictions: ``(n,)`` predicted classes (numpy array, sequence or tensor, any device).
        labels: ``(n,)`` true classes.
        num_classes: ``C``; every prediction and label must be in ``0 .. C - 1``.

    Raises ``TypeError`` for anything but 1-d integers and ``ValueError`` for a class out
    of range, different lengths or nothing to score.
    """
    num_classes = check_int(num_classes, "num_classes", low=1)
    predicted = _class_indices(predictions, "predictions", num_classes)
    truth = _class_indices(labels, "labels", num_classes)
    if predicted.shape != truth.shape:
        raise ValueError(
            f"predictions and labels must have the same length, got {predicted.shape[0]} predictions "
            f"and {truth.shape[0]} labels"
        )
    n = int(truth.shape[0])
    if n == 0:
        raise ValueError("nothing to score: predictions and labels are empty")
    hit = predicted == truth
    counts = np.bincount(truth, minlength=num_classes)
    correct_per_class = np.bincount(truth[hit], minlength=num_classes)
    correct = int(correct_per_class.sum())
    per_class = correct_per_class / np.maximum(counts, 1)
    return Scores(
        accuracy=correct / n,
        ci95=wilson_interval(correct, n),
        per_class=per_class.tolist(),
        class_counts=counts.tolist(),
        correct=correct,
        n=n,
    )


def monte_carlo_predictions(labels: np.ndarray, scores: np.ndarray | None, *, num_classes: int) -> np.ndarray:
    """The class of each canvas from its ``M`` episodes.

    Args:
        labels: ``(P, M)`` int: the labels played in the ``M`` episodes of each of ``P`` canvases.
        scores: ``(P, M, C)`` the policy's class scores on the last step of each episode, or None.
        num_classes: ``C``.

    Returns:
        ``(P,)`` int64: with ``scores``, the argmax of their mean over the ``M`` episodes
        (a tie to the lowest class); without, the majority vote of the labels played, a tie
        between labels played equally often going to the one played first (in episode
        order), so no class is favoured by its index.
    """
    if scores is not None:
        return np.asarray(scores, dtype=np.float64).mean(axis=1).argmax(axis=1).astype(np.int64)
    played = np.asarray(labels, dtype=np.int64)
    counts = (played[:, :, None] == np.arange(num_classes)).sum(axis=1)  # (P, C)
    top = counts == counts.max(axis=1, keepdims=True)  # (P, C): the most played classes
    among_top = np.take_along_axis(top, played, axis=1)  # (P, M): episode m played one of them
    first = among_top.argmax(axis=1)
    return played[np.arange(played.shape[0]), first]


# ---------------------------------------------------------------------- the policy interface
class _RequiredAction(TypedDict):
    location: np.ndarray
    label: np.ndarray


class PolicyAction(_RequiredAction, total=False):
    """What a policy returns for a batch of ``N`` episodes.

    - ``location``: ``(N, 2)`` float32 in ``[-1, 1]``, where the next glimpse is taken;
    - ``label``: ``(N,)`` int class indices (judged by the environment on the last step only);
    - ``scores`` (optional): ``(N, C)`` class scores, e.g. log-probabilities, read on the
      last step only; with ``mc_samples > 1`` the class of a canvas is the argmax of their
      mean over its episodes (else the majority vote of the labels).
    """

    scores: np.ndarray


class Policy(Protocol):
    """A policy: ``policy(observation, state, episode_start) -> (action, state)`` (see
    :meth:`__call__`).

    A policy may carry a ``name`` attribute; :func:`evaluate` reports it. It may have a
    ``start_batch(number)`` method: :func:`evaluate` calls it before playing batch
    ``number``, so that a policy that draws random numbers can reseed them per batch
    (``agents.evaluate.RAMPolicy`` does, with :func:`batch_seed`): a batch then plays the
    same whichever process of a sharded evaluation plays it. Plain functions qualify, as
    do the adapters :class:`RandomPolicy`, :class:`SB3Policy` and ``agents.evaluate.RAMPolicy``.
    """

    def __call__(
        self, observation: ObsType, state: Any, episode_start: np.ndarray, /
    ) -> tuple[PolicyAction, Any]:
        """The actions of a batch of ``N`` episodes at one step.

        Args:
            observation: the vector environment's numpy batch, ``{"glimpse": (N, k, g, g)
                float32, "location": (N, 2) float32}``.
            state: the policy's recurrent state, what it returned on the previous step;
                ``None`` on the first step of a batch.
            episode_start: ``(N,)`` bool, True where the observation is the first of an
                episode (all True on the first step of a batch, then all False).

        Returns:
            ``(action, state)``: a :class:`PolicyAction` dict and the state for the next
            step (anything; ``None`` for a memoryless policy).
        """
        ...


def _num_classes_of(space: object) -> int:
    """The number of classes of a glimpse environment's action space (single or batched)."""
    if isinstance(space, spaces.Dict):
        label = space.spaces.get("label")
        if isinstance(label, spaces.Discrete):
            return int(label.n)
        if isinstance(label, spaces.MultiDiscrete) and label.nvec.size:
            return int(label.nvec.flat[0])
    raise TypeError(
        f"expected a number of classes or a glimpse environment's action space Dict(location=Box, "
        f"label=Discrete(C)), got {space!r}"
    )


class RandomPolicy:
    """Uniformly random locations in ``[-1, 1]^2`` and labels in ``0 .. C - 1``, memoryless.

    Args:
        num_classes: ``C``, or a glimpse environment's action space (single or batched).
        seed: seed of its numpy generator (None: fresh entropy).
    """

    name = "random"

    def __init__(self, num_classes: int | spaces.Space[Any], seed: int | None = None) -> None:
        if isinstance(num_classes, spaces.Space):
            num_classes = _num_classes_of(num_classes)
        self.num_classes = check_int(num_classes, "num_classes", low=1)
        self.rng = np.random.default_rng(seed)

    def __call__(
        self, observation: ObsType, state: Any, episode_start: np.ndarray
    ) -> tuple[PolicyAction, Any]:
        n = observation["location"].shape[0]
        location = self.rng.uniform(-1.0, 1.0, size=(n, LOCATION_SIZE)).astype(np.float32)
        label = np.asarray(self.rng.integers(0, self.num_classes, size=n, dtype=np.int64))
        return {"location": location, "label": label}, None


def sb3_action_form(space: object) -> tuple[str, int | None, int]:
    """``(action, grid, num_classes)`` of an action space made by :mod:`glimpse_env.wrappers`:
    ``("flat", None, C)`` for ``Box(-1, 1, (2 + C,))``, ``("multidiscrete", G, C)`` for
    ``MultiDiscrete([G, G, C])``; a clear ``ValueError`` for any other space."""
    if isinstance(space, spaces.Box) and len(space.shape) == 1 and space.shape[0] > LOCATION_SIZE:
        if np.all(space.low == -1.0) and np.all(space.high == 1.0):
            return "flat", None, space.shape[0] - LOCATION_SIZE
    if isinstance(space, spaces.MultiDiscrete) and space.nvec.shape == (len(MULTIDISCRETE_FIELDS),):
        columns, rows, classes = (int(v) for v in space.nvec)
        if columns == rows:
            return "multidiscrete", columns, classes
    raise ValueError(
        f"the model's action space {space} is none of the glimpse adapters' actions: Box(-1, 1, (2 + C,)) "
        f"(action='flat') or MultiDiscrete([G, G, C]) (action='multidiscrete'); train the model on "
        f"glimpse_env.wrappers' FlatActionWrapper, MultiDiscreteActionWrapper or SB3VecEnv"
    )


class SB3Policy:
    """Any stable-baselines3 / sb3-contrib model trained on :mod:`glimpse_env.wrappers`' actions.

    Calls ``model.predict(observation, state, episode_start, deterministic)`` (the LSTM
    state of ``RecurrentPPO`` is carried, and reset by ``episode_start``) and decodes the
    actions with the wrappers' own decoders, :func:`~glimpse_env.wrappers.split_flat_actions`
    or :func:`~glimpse_env.wrappers.split_multidiscrete_actions`: the same decoding as in
    training. It gives no ``scores``: Monte Carlo samples are combined by majority vote.

    It plays a model already loaded. Loading one from a file (``ALGO.load(PATH)``, as
    ``python -m glimpse_env.evaluate --policy sb3:ALGO:PATH`` does) unpickles it: SB3 zips
    are pickle-based, and loading one can run any code it holds, so load only files from
    sources you trust, with the algorithm that saved them (the command line checks it).

    Args:
        model: an SB3 model (``PPO``, ``A2C``, ``SAC``, ``TD3``, ``RecurrentPPO``, ...).
        action: ``"flat"`` or ``"multidiscrete"``; default: read from the model's action
            space (:func:`sb3_action_form`); a value that contradicts it is a ``ValueError``.
        grid: cells per side of the multidiscrete grid; default: read from the action space.
        deterministic: play the policy's mode (default) or sample its actions (with torch's
            global generator, as SB3 does).
        name: the name :func:`evaluate` reports (default ``"sb3:<algorithm>"``).
    """

    def __init__(
        self,
        model: Any,
        *,
        action: str | None = None,
        grid: int | None = None,
        deterministic: bool = True,
        name: str | None = None,
    ) -> None:
        if not callable(getattr(model, "predict", None)):
            raise TypeError(
                f"SB3Policy wraps a stable-baselines3 model (with predict(obs, state, episode_start, "
                f"deterministic)), got {type(model).__name__}"
            )
        kind, space_grid, num_classes = sb3_action_form(getattr(model, "action_space", None))
        if action is not None and action not in ACTION_KINDS:
            raise ValueError(f"action must be one of {ACTION_KINDS} or None, got {action!r}")
        if action is not None and action != kind:
            raise ValueError(
                f"action={action!r} contradicts the model's action space {model.action_space}, which is "
                f"the {kind!r} form: drop action= or load the right model"
            )
        if grid is not None and grid != space_grid:
            raise ValueError(
                f"grid={grid!r} contradicts the model's action space {model.action_space} "
                f"({'no grid: the flat form' if space_grid is None else f'grid {space_grid}'}): drop grid="
            )
        self.model = model
        self.action = kind
        self.grid = space_grid
        self.num_classes = num_classes
        self.deterministic = bool(deterministic)
        self.name = name or f"sb3:{type(model).__name__}"

    def decode(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SB3 actions ``(N, ...)`` to locations ``(N, 2)`` float32 and labels ``(N,)`` int64."""
        if self.grid is None:
            return split_flat_actions(actions, self.num_classes)
        return split_multidiscrete_actions(actions, self.num_classes, grid=self.grid)

    def __call__(
        self, observation: ObsType, state: Any, episode_start: np.ndarray
    ) -> tuple[PolicyAction, Any]:
        actions, state = self.model.predict(
            observation, state=state, episode_start=episode_start, deterministic=self.deterministic
        )
        location, label = self.decode(actions)
        return {"location": location, "label": label}, state


# ---------------------------------------------------------------------- the protocol
class EvaluationResult(NamedTuple):
    """A policy's evaluation on the canvases of a split (:func:`evaluate`)."""

    env_id: str
    split: str
    policy: str
    """The policy's name."""
    n: int
    """Canvases evaluated."""
    mc_samples: int
    """Episodes per canvas (``agents.evaluate`` reports 0 for "the mean locations, once")."""
    accuracy: float
    ci95: tuple[float, float]
    """Wilson score interval of the accuracy, 95%."""
    mean_reward: float
    """Mean reward of every episode played (``n * mc_samples`` of them): the share of right
    labels played, before any Monte Carlo combination."""
    per_class: list[float]
    """``(C,)``: accuracy on the canvases of each class (0.0 for a class with none)."""
    class_counts: list[int]
    """``(C,)``: canvases of each class."""
    mean_locations: list[list[float]]
    """``(T, 2)``: mean ``(x, y)`` of glimpse ``1 .. T`` over every episode played."""
    episodes_per_second: float

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict (for JSON)."""
        return dict(self._asdict())


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
    envs = gym.make_vec(
        check_env_id(env_id),
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        device=device,
        autoreset_mode=AutoresetMode.DISABLED,
        **env_kwargs,
    )
    native = envs.unwrapped
    assert isinstance(native, GlimpseVectorEnv), "the glimpse ids make GlimpseVectorEnv"
    return native


def _check_action(action: object, num_envs: int, num_classes: int) -> tuple[Any, Any, np.ndarray | None]:
    """``(location, label, scores)`` of a policy's action (the environment checks the first two)."""
    if not isinstance(action, Mapping) or "location" not in action or "label" not in action:
        raise TypeError(
            f"a policy's action is a dict {{'location': (N, 2) float32, 'label': (N,) int[, 'scores': "
            f"(N, C)]}}, got {type(action).__name__}"
            + (f" with keys {sorted(map(str, action))}" if isinstance(action, Mapping) else "")
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


class ShardOutcome(NamedTuple):
    """What one shard of an evaluation played (:func:`evaluate`'s ``shard``): enough to
    score the union of the shards exactly, whichever process played which batch."""

    batches: list[tuple[int, np.ndarray, np.ndarray]]
    """``(batch number, predictions, true labels)`` of each batch played, per canvas."""
    reward_sum: float
    location_sum: np.ndarray
    """``(T, 2)`` float64: the locations of glimpses ``1 .. T``, summed over the episodes."""
    seconds: float


def batch_seed(seed: int, batch: int) -> int:
    """The environment seed of batch ``batch`` of :func:`evaluate` (``seed`` itself for the
    first): each batch has its own, so a batch plays the same wherever it is played."""
    return (seed + batch * _BATCH_SEED_STRIDE) % 2**63


def _play_batch(
    policy: Policy, envs: GlimpseVectorEnv, *, indices: np.ndarray, seed: int | None, episodes: int
) -> _Batch:
    """One episode in every sub-environment, on canvases ``indices``, in lockstep; the
    first ``episodes`` sub-environments are scored."""
    size, n_glimpses = envs.num_envs, envs.config.n_glimpses
    obs, _ = envs.reset(seed=seed, options={"indices": indices})
    state: Any = None
    episode_start = np.ones(size, dtype=np.bool_)
    locations = [obs["location"]]
    for step in range(1, n_glimpses + 1):
        action, state = _call(policy, obs, state, episode_start)
        location, label, scores = _check_action(action, size, envs.task.num_classes)
        obs, reward, terminated, _, info = envs.step({"location": location, "label": label})
        episode_start = np.zeros(size, dtype=np.bool_)
        if step < n_glimpses:  # glimpses 1 .. T: the reset's and those of steps 1 .. T - 1
            locations.append(obs["location"])
    if not terminated.all():
        raise RuntimeError(f"the episodes did not end after their {n_glimpses} glimpses")
    return _Batch(
        played=np.asarray(info["prediction"][:episodes], dtype=np.int64),
        labels=np.asarray(info["label"][:episodes], dtype=np.int64),
        scores=None if scores is None else scores[:episodes],
        reward_sum=float(reward[:episodes].sum()),
        location_sum=np.stack(locations, axis=1)[:episodes].sum(axis=0, dtype=np.float64),
    )


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
        policy: a :class:`Policy`.
        env_id: a registered glimpse environment id.
        split: ``"val"`` or ``"test"`` (or ``"train"`` with ``train_size=N`` in ``env_kwargs``).
        episodes: evaluate canvases ``0 .. episodes - 1`` only (at most the split's size);
            default: every canvas.
        mc_samples: ``M``, episodes per canvas, combined by :func:`monte_carlo_predictions`;
            with ``M = 1`` the class is the label played.
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
        An :class:`EvaluationResult`.
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
    for key in ("num_envs", "autoreset_mode", "vectorization_mode"):
        if key in env_kwargs:
            raise TypeError(f"evaluate sets {key} itself; drop it from the environment settings")
    envs = lockstep_vector_env(
        env_id, max(1, num_envs // repeats) * repeats, device=device, split=split, **env_kwargs
    )
    total = envs.task.n_samples
    if total is None:
        raise ValueError(
            f"split {split!r} of {env_id} draws a fresh canvas every episode, so it has no canvases to "
            f"evaluate on: use split='val' or 'test', or fix a training set with train_size=N"
        )
    count = total if episodes is None else min(episodes, total)
    per_batch = min(envs.num_envs // repeats, count)
    if per_batch * repeats != envs.num_envs:  # fewer canvases than one batch: a smaller environment
        envs.close()
        envs = lockstep_vector_env(env_id, per_batch * repeats, device=device, split=split, **env_kwargs)
    num_classes = envs.task.num_classes
    policy_name = name or getattr(policy, "name", None) or getattr(policy, "__name__", type(policy).__name__)

    played: list[tuple[int, np.ndarray, np.ndarray]] = []
    rewards = 0.0
    location_sum = np.zeros((envs.config.n_glimpses, LOCATION_SIZE), dtype=np.float64)
    start_time = time.perf_counter()
    batch_starts = range(0, count, per_batch)
    start_batch = getattr(policy, "start_batch", None)
    for number in range(shard_index, len(batch_starts), shard_count):
        first = batch_starts[number]
        if start_batch is not None:
            start_batch(number)
        canvases = np.minimum(np.arange(first, first + per_batch), count - 1)
        batch = _play_batch(
            policy,
            envs,
            indices=np.repeat(canvases, repeats),
            seed=batch_seed(seed, number),
            episodes=min(per_batch, count - first) * repeats,
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
    envs.close()
    outcome = ShardOutcome(played, rewards, location_sum, time.perf_counter() - start_time)
    outcomes = [outcome] if exchange is None else list(exchange(outcome))
    batches = sorted((b for shard_outcome in outcomes for b in shard_outcome.batches), key=lambda b: b[0])
    if [b[0] for b in batches] != list(range(len(batch_starts))):
        raise RuntimeError(
            f"the shards played batches {[b[0] for b in batches]}, expected each of 0 .. "
            f"{len(batch_starts) - 1} once: every process must pass the same settings and its own shard"
        )
    scores_of = score_predictions(
        np.concatenate([b[1] for b in batches]),
        np.concatenate([b[2] for b in batches]),
        num_classes=num_classes,
    )
    rewards = sum(o.reward_sum for o in outcomes)
    location_sum = np.sum([o.location_sum for o in outcomes], axis=0)
    elapsed = max(o.seconds for o in outcomes)
    played_total = count * repeats
    return EvaluationResult(
        env_id=env_id,
        split=split,
        policy=str(policy_name),
        n=count,
        mc_samples=repeats,
        accuracy=scores_of.accuracy,
        ci95=scores_of.ci95,
        mean_reward=rewards / played_total,
        per_class=scores_of.per_class,
        class_counts=scores_of.class_counts,
        mean_locations=(location_sum / played_total).tolist(),
        episodes_per_second=played_total / max(elapsed, 1e-9),
    )


def format_table(result: EvaluationResult) -> str:
    """An :class:`EvaluationResult` as a small text table."""
    low, high = result.ci95
    return "\n".join(
        [
            f"policy {result.policy}, env {result.env_id}, split {result.split}, {result.n} canvases, "
            f"Monte Carlo samples {result.mc_samples}",
            f"accuracy {result.accuracy:.4f} (95% CI {low:.4f}-{high:.4f}), "
            f"error {100 * (1 - result.accuracy):.2f}%, mean reward {result.mean_reward:.4f}",
            "per class: " + " ".join(f"{i}:{a:.3f}" for i, a in enumerate(result.per_class)),
            "mean glimpse locations (x, y) per step: "
            + " ".join(f"({x:+.2f},{y:+.2f})" for x, y in result.mean_locations),
            f"{result.episodes_per_second:,.0f} episodes/s",
        ]
    )
