"""Adapters for third-party agents (stable-baselines3, sb3-contrib).

SB3 and sb3-contrib do not accept ``Dict`` action spaces, so these adapters present the
glimpse task with one action SB3 can sample, in one of two forms:

* ``"flat"``: ``Box(-1, 1, (2 + C,), float32)``, ``[x, y, score_0, ..., score_{C-1}]``:
  the location, then one score per class (see *Flat actions* below for the label).
* ``"multidiscrete"``: ``MultiDiscrete([G, G, C])``, ``[column, row, class]``: the glimpse
  is taken at the centre of one cell of a ``G x G`` grid, the cell centres being
  ``np.linspace(-1, 1, G)`` on each axis (``G = 9`` by default: steps of 0.25; 2 to
  :data:`MAX_GRID` = 4096), and the label is the class itself. Categorical distributions
  give PPO-family agents exact log-probabilities (no clipping of a Gaussian, see below),
  at the price of a coarser choice of locations.

With early answers (an environment made with ``early_answer=True``, whose action has
``stop``) each form carries the stop decision as well, read from the environment's action
space: the flat action gains a last coordinate, ``[x, y, score_0, ..., score_{C-1},
stop]``, that stops where it is above 0 (``Box(-1, 1, (3 + C,))``: a policy centred on 0
stops half the time), and the multidiscrete action a last entry, ``[column, row, class,
stop]`` with ``stop`` 0 or 1 (``MultiDiscrete([G, G, C, 2])``).

Two ways to use them:

* :class:`FlatActionWrapper` and :class:`MultiDiscreteActionWrapper`: one environment,
  for ``PPO``, ``RecurrentPPO``, ``SAC``, ... through ``DummyVecEnv`` or ``SubprocVecEnv``
  as usual::

      import gymnasium as gym
      from sb3_contrib import RecurrentPPO
      from glimpse_env.wrappers import FlatActionWrapper, MultiDiscreteActionWrapper

      env = FlatActionWrapper(gym.make("GlimpseMNIST-v0"))
      env = MultiDiscreteActionWrapper(gym.make("GlimpseMNIST-v0"), grid=9)
      model = RecurrentPPO("MultiInputLstmPolicy", env).learn(10_000)

  Both record their constructor arguments (``gymnasium.utils.RecordConstructorArgs``), so
  ``gym.make(env.spec)`` rebuilds the wrapped environment and Gymnasium's ``check_env``
  accepts it.

* :class:`SB3VecEnv`: the native :class:`~glimpse_env.vector.GlimpseVectorEnv` as an SB3
  ``VecEnv``, so ``N`` environments step as one batch instead of one by one::

      venv = SB3VecEnv.make("GlimpseMNIST-Cluttered-v0", num_envs=64)  # flat actions
      venv = SB3VecEnv.make("GlimpseMNIST-Cluttered-v0", 64, action="multidiscrete", grid=9)
      model = RecurrentPPO("MultiInputLstmPolicy", venv).learn(100_000)

  ``SB3VecEnv(gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point"))``
  works as well, with any autoreset mode of the native environment.

  ``SB3VecEnv`` is defined in :mod:`glimpse_env.sb3_vec_env` and imported from there on
  first use, as it subclasses SB3's ``VecEnv``: the rest of this module (the action
  wrappers and decoders) needs no SB3, and ``SB3VecEnv`` without it is an ``ImportError``
  naming the fix, ``pip install 'glimpse-mnist[sb3]'``.

Flat actions: how the label is decoded, and why it is unbiased
--------------------------------------------------------------

SB3's ``PPO``, ``A2C`` and ``TD3`` clip a Gaussian action to ``[-1, 1]`` before the
environment sees it, so scores often *tie* at 1.0: with a standard normal policy each
score is clipped to 1.0 with probability 0.16, and two or more of the ten tie at the
top in about half of the steps. ``np.argmax`` resolves a tie to the lowest class, which
made class 0 the label of 17.6% of random actions and class 9 of 5.1%.

The label is therefore the class of the maximal score when it is unique (a policy that
ranks one class above the others gets that class), and among ``m`` tied maximal scores
the one of rank ``h mod m`` in class order, where ``h`` is a 64-bit hash (the splitmix64
finaliser, :func:`glimpse_env.canvas.splitmix64`) of the action's float32 bits (``-0.0``
read as ``0.0``). ``h`` is a fixed
function of the action: the same action always gives the same label, in
:class:`FlatActionWrapper`, in :class:`SB3VecEnv` and in :func:`split_flat_actions`,
alone or in a batch. Over the actions of a stochastic policy ``h mod m`` behaves as a
uniform draw that does not depend on *which* classes tie (their tied values are equal;
the hash is driven by the other coordinates), so each tied class wins a tie with
probability ``1/m``. A policy that treats the classes alike (an exchangeable score
distribution, such as independent clipped standard normals) thus names every class with
probability ``1/C``: over 10^6 clipped standard normal actions (seed 0) the largest
deviation from 10% is 0.03 percentage point (sampling noise: 0.03), where the
lowest-index rule was off by 7.6 points.

One limit holds for any deterministic decoding: a point mass cannot be split. The action
whose every coordinate sits on a bound is one action with one label, so a policy that
saturates *all* coordinates at once (the location included) favours that label. Under a
standard normal policy that is one step in about a million (``0.317 ** 12``).

Simpler rules were rejected: rotating the argmax start by the location inherits the
clipping of the location itself (16% of a standard normal sits on each bound), so the
rotation is not uniform; decoding the label from one extra coordinate cut into ``C``
equal intervals puts the clipped mass on the end intervals (classes 0 and ``C - 1``
would get about 21% each).

Settings SB3 users need
-----------------------

* Frame stacking: the glimpse is ``(k, g, g)`` float32, channels first, but SB3 detects
  channel order only for uint8 image spaces and otherwise stacks on the *last* axis,
  which would glue glimpses side by side into ``(k, g, n * g)``. Pass
  ``channels_order="first"``: ``VecFrameStack(venv, n_stack, channels_order="first")``
  gives ``(n * k, g, g)`` glimpses, the newest ``k`` patches last, and ``(2 * n,)``
  locations.
* ``stable_baselines3.common.env_checker.check_env`` warns that the glimpse "is an image"
  whose dtype is not uint8, whose bounds are not ``[0, 255]`` and whose size is below
  36x36. These warnings are expected: the glimpse is a retina output in ``[0, 1]``
  (averages of pixels over each scale's box, which uint8 would round), and is small by
  design. SB3's ``MultiInputPolicy`` / ``MultiInputLstmPolicy`` do not treat it as an
  image either (it is not uint8 in ``[0, 255]``): they flatten it into their MLP, which
  is what an 8x8 or 12x12 patch needs; ``CnnPolicy`` with its 36x36 minimum does not apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from glimpse_env.canvas import splitmix64
from glimpse_env.validation import check_int, check_numbers

if TYPE_CHECKING:  # imported on first use (module __getattr__): it needs stable-baselines3
    from glimpse_env.sb3_vec_env import SB3VecEnv

__all__ = [
    "ACTION_KINDS",
    "DEFAULT_GRID",
    "MAX_GRID",
    "FlatActionWrapper",
    "MultiDiscreteActionWrapper",
    "SB3VecEnv",
    "flat_action_space",
    "grid_locations",
    "multidiscrete_action_space",
    "split_flat_actions",
    "split_multidiscrete_actions",
]

ActionKind = Literal["flat", "multidiscrete"]
#: the action forms of the adapters (the ``action`` argument of :class:`SB3VecEnv`)
ACTION_KINDS: tuple[str, ...] = ("flat", "multidiscrete")
#: cells per side of the multidiscrete location grid unless told otherwise
DEFAULT_GRID = 9
#: a grid needs two cells per side to reach both edges of the canvas
MIN_GRID = 2
#: most cells per side: 8 per pixel of the largest canvas (512, ``MAX_CANVAS_SIDE``); a finer
#: grid only makes the agent's categorical choice larger, and a typo cannot ask for gigabytes
MAX_GRID = 4096
#: the location coordinates ``(x, y)`` before the class scores of a flat action
LOCATION_SIZE = 2
#: the components of a multidiscrete action, in order
MULTIDISCRETE_FIELDS = ("column", "row", "class")
#: the components of a multidiscrete action with early answers, in order
EARLY_MULTIDISCRETE_FIELDS = (*MULTIDISCRETE_FIELDS, "stop")

#: the odd constant that weights each coordinate's bits in the action hash (the golden ratio in 64 bits)
_HASH_START = np.uint64(0x9E3779B97F4A7C15)


#: a decoder of the adapters' actions: a batch of them to the environment's action dict
Decoder = Callable[[Any], dict[str, np.ndarray]]


# ---------------------------------------------------------------------- flat actions
def flat_action_space(num_classes: int, *, early_answer: bool = False) -> spaces.Box:
    """``Box(-1, 1, (2 + num_classes,), float32)``: location, then one score per class; with
    ``early_answer``, ``(3 + num_classes,)``: then the stop coordinate (stops above 0)."""
    width = LOCATION_SIZE + num_classes + int(early_answer)
    return spaces.Box(-1.0, 1.0, shape=(width,), dtype=np.float32)


def _action_hash(rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each float32 row ``(n, D) -> (n,)``, from its bits (``-0.0`` read
    as ``0.0``, so that equal actions hash alike): the bits weighted by one odd constant
    per position (so the hash depends on which coordinate holds which value), summed
    modulo 2**64, then mixed by the splitmix64 finaliser; whole-array operations only."""
    bits = np.ascontiguousarray(rows + np.float32(0.0)).view(np.uint32).astype(np.uint64)
    weights = np.arange(1, rows.shape[1] + 1, dtype=np.uint64) * _HASH_START | np.uint64(1)
    return splitmix64((bits * weights).sum(axis=1, dtype=np.uint64))


def _flat_labels(rows: np.ndarray, num_classes: int) -> np.ndarray:
    """The labels of flat actions ``(n, 2 + C)`` (or ``(n, 3 + C)``, the stop last) float32:
    the maximal score's class, ties broken by :func:`_action_hash` of the whole action (see
    the module docstring)."""
    scores = np.ascontiguousarray(rows[:, LOCATION_SIZE : LOCATION_SIZE + num_classes])  # contiguous: faster
    labels = scores.argmax(axis=1).astype(np.int64)  # the maximum, when it is unique
    tied = scores == np.take_along_axis(scores, labels[:, None], axis=1)
    counts = tied.sum(axis=1)
    ambiguous = np.flatnonzero(counts > 1)
    if ambiguous.size:
        ties = tied[ambiguous]
        rank = (_action_hash(rows[ambiguous]) % counts[ambiguous].astype(np.uint64)).astype(np.int64)
        order = np.cumsum(ties, axis=1) - 1  # rank of each tied class among the tied ones
        labels[ambiguous] = np.argmax(ties & (order == rank[:, None]), axis=1)
    return labels


@overload
def split_flat_actions(
    actions: Any, num_classes: int, *, early_answer: Literal[False] = False
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def split_flat_actions(
    actions: Any, num_classes: int, *, early_answer: Literal[True]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def split_flat_actions(
    actions: Any, num_classes: int, *, early_answer: bool = False
) -> tuple[np.ndarray, ...]:
    """Flat actions ``(..., 2 + C)`` to locations ``(..., 2)`` float32 and labels ``(...)`` int64;
    with ``early_answer``, actions ``(..., 3 + C)`` to locations, labels and stops ``(...)``
    bool (the last coordinate above 0).

    The label is the class of the maximal score; tied maxima (frequent once SB3 clips a
    Gaussian to 1.0) are resolved by a hash of the action, deterministic and fair to
    every class (module docstring). Raises ``TypeError`` for anything but real numbers
    (bools, strings, complex numbers), ``ValueError`` for a wrong last dimension or
    non-finite scores (or a non-finite stop); the location is checked by the environment
    itself.
    """
    values = check_numbers(
        actions, "a flat action", kinds="iuf", expected="real numbers (ints or floats) of a Box action"
    )
    array = values if values.dtype == np.float32 else values.astype(np.float32)
    width = LOCATION_SIZE + num_classes + int(early_answer)
    if array.ndim == 0 or array.shape[-1] != width:
        then = " and the stop coordinate" if early_answer else ""
        raise ValueError(
            f"a flat action is [x, y] followed by {num_classes} class scores{then}, so its last "
            f"dimension must be {width}; got shape {array.shape}"
        )
    if not np.isfinite(array[..., LOCATION_SIZE:]).all():
        what = "class scores or the stop" if early_answer else "class scores"
        raise ValueError(f"{what} of the flat action contain NaN or infinity")
    labels = _flat_labels(array.reshape(-1, width), num_classes).reshape(array.shape[:-1])
    if early_answer:
        return array[..., :LOCATION_SIZE], labels, array[..., -1] > 0.0
    return array[..., :LOCATION_SIZE], labels


# ---------------------------------------------------------------------- multidiscrete actions
def check_grid(grid: object) -> int:
    """``grid`` (cells per side of the location grid) as an int in ``[MIN_GRID, MAX_GRID]``
    (2 to 4096), else a ``TypeError`` (not an integer) or ``ValueError`` naming ``grid``."""
    cells = check_int(grid, "grid", low=MIN_GRID)
    if cells > MAX_GRID:
        raise ValueError(
            f"grid must be an integer >= {MIN_GRID} and at most MAX_GRID = {MAX_GRID} (8 cells per pixel "
            f"of the largest canvas), got {cells}"
        )
    return cells


def grid_locations(grid: int) -> np.ndarray:
    """The ``grid`` cell centres of each axis, ``np.linspace(-1, 1, grid)`` as float32."""
    return np.linspace(-1.0, 1.0, check_grid(grid), dtype=np.float32)


def _grid_splitter(
    num_classes: int, grid: object, early_answer: bool = False
) -> Callable[[Any], tuple[np.ndarray, ...]]:
    """The function that splits multidiscrete actions on a ``grid`` (checked here), its cell
    centres computed once."""
    cells = check_grid(grid)
    centres = grid_locations(cells)
    return lambda actions: _split_multidiscrete(actions, num_classes, cells, centres, early_answer)


def multidiscrete_action_space(
    num_classes: int, *, grid: int = DEFAULT_GRID, early_answer: bool = False
) -> spaces.MultiDiscrete:
    """``MultiDiscrete([grid, grid, num_classes])``: column and row of the location cell, class;
    with ``early_answer``, ``MultiDiscrete([grid, grid, num_classes, 2])``: then the stop."""
    grid = check_grid(grid)
    sizes = [grid, grid, num_classes, 2] if early_answer else [grid, grid, num_classes]
    return spaces.MultiDiscrete(np.array(sizes, dtype=np.int64))


@overload
def split_multidiscrete_actions(
    actions: Any, num_classes: int, *, grid: int, early_answer: Literal[False] = False
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def split_multidiscrete_actions(
    actions: Any, num_classes: int, *, grid: int, early_answer: Literal[True]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def split_multidiscrete_actions(
    actions: Any, num_classes: int, *, grid: int, early_answer: bool = False
) -> tuple[np.ndarray, ...]:
    """Multidiscrete actions ``(..., 3)`` = ``[column, row, class]`` to locations ``(..., 2)``
    float32 (the cell centres of :func:`grid_locations`) and labels ``(...)`` int64; with
    ``early_answer``, actions ``(..., 4)`` = ``[column, row, class, stop]`` to locations,
    labels and stops ``(...)`` bool.

    Raises ``TypeError`` for anything but integers (bools, floats, strings) and
    ``ValueError`` for a wrong last dimension or an index outside its range (or a ``grid``
    outside 2..4096, :func:`check_grid`).
    """
    return _grid_splitter(num_classes, grid, early_answer)(actions)


def _split_multidiscrete(
    actions: Any, num_classes: int, grid: int, centres: np.ndarray, early_answer: bool = False
) -> tuple[np.ndarray, ...]:
    """:func:`split_multidiscrete_actions` on a checked ``grid`` whose cell centres are ``centres``."""
    fields = EARLY_MULTIDISCRETE_FIELDS if early_answer else MULTIDISCRETE_FIELDS
    expected = (
        f"[{', '.join(fields)}] with column and row in 0..{grid - 1} and class in 0..{num_classes - 1}"
        + (" and stop 0 or 1" if early_answer else "")
    )
    count = "four" if early_answer else "three"
    array = check_numbers(
        actions, "a multidiscrete action", kinds="iu", expected=f"{count} integers {expected}"
    )
    if array.ndim == 0 or array.shape[-1] != len(fields):
        raise ValueError(f"a multidiscrete action is {count} integers {expected}; got shape {array.shape}")
    bounds = np.array([grid, grid, num_classes, 2][: len(fields)])
    outside = (array < 0) | (array >= bounds)
    if outside.any():
        where = np.argwhere(outside)[0]
        name = fields[where[-1]]
        raise ValueError(
            f"multidiscrete action {array[tuple(where[:-1])].tolist()}: its {name} "
            f"{int(array[tuple(where)])} is outside 0..{int(bounds[where[-1]]) - 1}; an action is {expected}"
        )
    location, label = centres[array[..., :LOCATION_SIZE]], array[..., LOCATION_SIZE].astype(np.int64)
    if early_answer:
        return location, label, array[..., -1] == 1
    return location, label


# ---------------------------------------------------------------------- one decoder for both
def _as_dict(parts: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """``(locations, labels[, stops])`` as the environment's action dict."""
    return dict(zip(("location", "label", "stop"), parts, strict=False))


def _decoder(
    action: object, num_classes: int, grid: object, early_answer: bool = False
) -> tuple[spaces.Box | spaces.MultiDiscrete, Decoder]:
    """The action space of the adapter ``action`` and the function that turns its actions
    into the environment's action dict (``location``, ``label`` and, with ``early_answer``,
    ``stop``); ``grid`` (None for the default) applies to ``"multidiscrete"``."""
    if action == "flat":
        if grid is not None:
            raise ValueError(
                f"grid={grid!r} only applies to action='multidiscrete'; the flat action chooses any "
                f"location in [-1, 1]: drop grid or pass action='multidiscrete'"
            )
        space = flat_action_space(num_classes, early_answer=early_answer)
        return space, lambda actions: _as_dict(
            split_flat_actions(actions, num_classes, early_answer=early_answer)  # type: ignore[call-overload]
        )
    if action == "multidiscrete":
        cells = check_grid(DEFAULT_GRID if grid is None else grid)
        split = _grid_splitter(num_classes, cells, early_answer)
        space_md = multidiscrete_action_space(num_classes, grid=cells, early_answer=early_answer)
        return space_md, lambda actions: _as_dict(split(actions))
    raise ValueError(f"action must be one of {ACTION_KINDS}, got {action!r}")


def _action_form(env: gym.Env[Any, Any], wrapper: str) -> tuple[int, bool]:
    """The number of classes of a glimpse environment's ``Dict`` action and whether it has
    early answers (a ``stop``), or a clear ``TypeError``."""
    space = env.action_space
    if not (isinstance(space, spaces.Dict) and isinstance(space.spaces.get("label"), spaces.Discrete)):
        raise TypeError(
            f"{wrapper} wraps a glimpse environment, whose action space is Dict(location=Box, "
            f"label=Discrete[, stop=Discrete(2)]); got {space}"
        )
    return int(space["label"].n), "stop" in space.spaces  # type: ignore[attr-defined]


def _one_action(action: dict[str, np.ndarray], given: Any, width: int, form: str) -> dict[str, Any]:
    """One decoded action as the single environment takes it, or a ``ValueError`` for a batch."""
    if action["location"].shape != (LOCATION_SIZE,):
        raise ValueError(f"expected one {form} action of shape ({width},), got {np.shape(given)}")
    one: dict[str, Any] = {"location": action["location"], "label": int(action["label"])}
    if "stop" in action:
        one["stop"] = int(action["stop"])
    return one


# ---------------------------------------------------------------------- single environments
class FlatActionWrapper(gym.ActionWrapper[Any, np.ndarray, dict[str, Any]], gym.utils.RecordConstructorArgs):
    """One environment with the flat ``Box`` action of :func:`flat_action_space`; the label
    is decoded by :func:`split_flat_actions` (unbiased under clipping). An environment with
    early answers gets the stop coordinate last (``stop`` is 1 where it is above 0)."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ActionWrapper.__init__(self, env)
        self.num_classes, self.early_answer = _action_form(env, "FlatActionWrapper")
        self.action_space = flat_action_space(self.num_classes, early_answer=self.early_answer)
        self._decode = _decoder("flat", self.num_classes, None, self.early_answer)[1]
        self._width = LOCATION_SIZE + self.num_classes + int(self.early_answer)

    def action(self, action: np.ndarray) -> dict[str, Any]:
        return _one_action(self._decode(action), action, self._width, "flat")


class MultiDiscreteActionWrapper(
    gym.ActionWrapper[Any, np.ndarray, dict[str, Any]], gym.utils.RecordConstructorArgs
):
    """One environment with the action ``MultiDiscrete([grid, grid, C])`` =
    ``[column, row, class]`` of :func:`multidiscrete_action_space`.

    An environment with early answers gets ``MultiDiscrete([grid, grid, C, 2])`` =
    ``[column, row, class, stop]``.

    Args:
        env: a glimpse environment (``gym.make("GlimpseMNIST-...")``).
        grid: cells per side of the location grid, 2 to :data:`MAX_GRID` (4096); the glimpse
            is taken at ``(grid_locations(grid)[column], grid_locations(grid)[row])``.
    """

    def __init__(self, env: gym.Env[Any, Any], grid: int = DEFAULT_GRID) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, grid=grid)
        gym.ActionWrapper.__init__(self, env)
        self.num_classes, self.early_answer = _action_form(env, "MultiDiscreteActionWrapper")
        self.grid = check_grid(grid)
        # the cell centres, computed once
        self.action_space, self._decode = _decoder(
            "multidiscrete", self.num_classes, self.grid, self.early_answer
        )
        self._width = len(EARLY_MULTIDISCRETE_FIELDS if self.early_answer else MULTIDISCRETE_FIELDS)

    def action(self, action: np.ndarray) -> dict[str, Any]:
        return _one_action(self._decode(action), action, self._width, "multidiscrete")


# ---------------------------------------------------------------------- the SB3 VecEnv, on demand
def __getattr__(name: str) -> Any:
    """``SB3VecEnv`` lives in :mod:`glimpse_env.sb3_vec_env`, imported on first use: it
    subclasses stable-baselines3's ``VecEnv``, and this module must import without SB3 (the
    evaluation protocol decodes the adapters' actions with it)."""
    if name == "SB3VecEnv":
        from glimpse_env.sb3_vec_env import SB3VecEnv

        return SB3VecEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "SB3VecEnv"})
