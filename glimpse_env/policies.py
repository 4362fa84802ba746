"""Policies: the interface the evaluation protocol plays, and its adapters.

A *policy* is anything callable as ``policy(observation, state, episode_start) ->
(action, state)`` (:class:`Policy`), its action a :class:`PolicyAction`. The adapters:
:class:`RandomPolicy` (uniform locations and labels), :class:`SB3Policy` (any
stable-baselines3 / sb3-contrib model trained on :mod:`glimpse_env.wrappers`' actions,
RecurrentPPO included) and, in ``agents.evaluate``, ``RAMPolicy`` (the RAM).
:func:`glimpse_env.evaluation.evaluate` plays any of them.

:class:`SB3Policy` plays a model it is given: this module does not import stable-baselines3.
"""

from __future__ import annotations

from typing import Any, Protocol, TypedDict

import numpy as np
from gymnasium import spaces

from glimpse_env.env import ObsType
from glimpse_env.validation import check_int
from glimpse_env.wrappers import (
    ACTION_KINDS,
    LOCATION_SIZE,
    MULTIDISCRETE_FIELDS,
    split_flat_actions,
    split_multidiscrete_actions,
)

__all__ = ["Policy", "PolicyAction", "RandomPolicy", "SB3Policy", "sb3_action_form"]


class _RequiredAction(TypedDict):
    location: np.ndarray
    label: np.ndarray


class PolicyAction(_RequiredAction, total=False):
    """What a policy returns for a batch of ``N`` episodes.

    - ``location``: ``(N, 2)`` float32 in ``[-1, 1]``, where the next glimpse is taken;
    - ``label``: ``(N,)`` int class indices (judged by the environment on the last step only);
    - ``scores`` (optional): ``(N, C)`` class scores, e.g. log-probabilities, read on the
      last step only (the answering step, with early answers); with ``mc_samples > 1`` the
      class of a canvas is the argmax of their mean over its episodes (else the majority
      vote of the labels).
    - ``stop`` (optional, environments with early answers only): ``(N,)`` 0 or 1, 1 answers
      now (the step's label is judged and the episode ends); without it no episode stops
      before its last glimpse. A ``stop`` for an environment without early answers is a
      ``ValueError``.
    """

    scores: np.ndarray
    stop: np.ndarray


class Policy(Protocol):
    """A policy: ``policy(observation, state, episode_start) -> (action, state)`` (see
    :meth:`__call__`).

    A policy may carry a ``name`` attribute; :func:`~glimpse_env.evaluation.evaluate`
    reports it. It may have a ``start_batch(number)`` method:
    :func:`~glimpse_env.evaluation.evaluate` calls it before playing batch ``number``, so
    that a policy that draws random numbers can reseed them per batch
    (``agents.evaluate.RAMPolicy`` does, with :func:`~glimpse_env.evaluation.batch_seed`): a
    batch then plays the same whichever process of a sharded evaluation plays it. Plain
    functions qualify, as do the adapters :class:`RandomPolicy`, :class:`SB3Policy` and
    ``agents.evaluate.RAMPolicy``.
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


def sb3_action_form(space: object, *, early_answer: bool = False) -> tuple[str, int | None, int]:
    """``(action, grid, num_classes)`` of an action space made by :mod:`glimpse_env.wrappers`:
    ``("flat", None, C)`` for ``Box(-1, 1, (2 + C,))``, ``("multidiscrete", G, C)`` for
    ``MultiDiscrete([G, G, C])``; with ``early_answer``, the forms with the stop last,
    ``Box(-1, 1, (3 + C,))`` and ``MultiDiscrete([G, G, C, 2])``; a clear ``ValueError`` for
    any other space."""
    extra = int(early_answer)
    if isinstance(space, spaces.Box) and len(space.shape) == 1 and space.shape[0] > LOCATION_SIZE + extra:
        if np.all(space.low == -1.0) and np.all(space.high == 1.0):
            return "flat", None, space.shape[0] - LOCATION_SIZE - extra
    if isinstance(space, spaces.MultiDiscrete) and space.nvec.shape == (len(MULTIDISCRETE_FIELDS) + extra,):
        columns, rows, classes = (int(v) for v in space.nvec[: len(MULTIDISCRETE_FIELDS)])
        if columns == rows and (not early_answer or int(space.nvec[-1]) == 2):
            return "multidiscrete", columns, classes
    if early_answer:
        expected = "Box(-1, 1, (3 + C,)) (action='flat') or MultiDiscrete([G, G, C, 2])"
    else:
        expected = "Box(-1, 1, (2 + C,)) (action='flat') or MultiDiscrete([G, G, C])"
    raise ValueError(
        f"the model's action space {space} is none of the glimpse adapters' actions"
        f"{' with early answers' if early_answer else ''}: {expected} (action='multidiscrete'); train "
        f"the model on glimpse_env.wrappers' FlatActionWrapper, MultiDiscreteActionWrapper or SB3VecEnv"
        + (" over an environment with early_answer=True" if early_answer else "")
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
        name: the name :func:`~glimpse_env.evaluation.evaluate` reports (default
            ``"sb3:<algorithm>"``).
        early_answer: the model was trained with early answers (its action carries the
            stop decision last, :mod:`glimpse_env.wrappers`): the policy plays ``stop`` too,
            for an environment made with ``early_answer=True``.
    """

    def __init__(
        self,
        model: Any,
        *,
        action: str | None = None,
        grid: int | None = None,
        deterministic: bool = True,
        name: str | None = None,
        early_answer: bool = False,
    ) -> None:
        if not callable(getattr(model, "predict", None)):
            raise TypeError(
                f"SB3Policy wraps a stable-baselines3 model (with predict(obs, state, episode_start, "
                f"deterministic)), got {type(model).__name__}"
            )
        early_answer = bool(early_answer)
        kind, space_grid, num_classes = sb3_action_form(
            getattr(model, "action_space", None), early_answer=early_answer
        )
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
        self.early_answer = early_answer

    def decode(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """SB3 actions ``(N, ...)`` to locations ``(N, 2)`` float32 and labels ``(N,)`` int64
        (and stops ``(N,)`` bool with ``early_answer``)."""
        if self.grid is None:
            return split_flat_actions(actions, self.num_classes, early_answer=self.early_answer)  # type: ignore[call-overload, no-any-return]
        return split_multidiscrete_actions(  # type: ignore[call-overload, no-any-return]
            actions, self.num_classes, grid=self.grid, early_answer=self.early_answer
        )

    def __call__(
        self, observation: ObsType, state: Any, episode_start: np.ndarray
    ) -> tuple[PolicyAction, Any]:
        actions, state = self.model.predict(
            observation, state=state, episode_start=episode_start, deterministic=self.deterministic
        )
        parts = self.decode(actions)
        action: PolicyAction = {"location": parts[0], "label": parts[1]}
        if self.early_answer:
            action["stop"] = parts[2].astype(np.int64)
        return action, state
