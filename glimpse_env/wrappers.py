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
from typing import TYPE_CHECKING, Any, Literal

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

#: the odd constant that weights each coordinate's bits in the action hash (the golden ratio in 64 bits)
_HASH_START = np.uint64(0x9E3779B97F4A7C15)


# ---------------------------------------------------------------------- flat actions
def flat_action_space(num_classes: int) -> spaces.Box:
    """``Box(-1, 1, (2 + num_classes,), float32)``: location, then one score per class."""
    return spaces.Box(-1.0, 1.0, shape=(LOCATION_SIZE + num_classes,), dtype=np.float32)


def _action_hash(rows: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each float32 row ``(n, D) -> (n,)``, from its bits (``-0.0`` read
    as ``0.0``, so that equal actions hash alike): the bits weighted by one odd constant
    per position (so the hash depends on which coordinate holds which value), summed
    modulo 2**64, then mixed by the splitmix64 finaliser; whole-array operations only."""
    bits = np.ascontiguousarray(rows + np.float32(0.0)).view(np.uint32).astype(np.uint64)
    weights = np.arange(1, rows.shape[1] + 1, dtype=np.uint64) * _HASH_START | np.uint64(1)
    return splitmix64((bits * weights).sum(axis=1, dtype=np.uint64))


def _flat_labels(rows: np.ndarray) -> np.ndarray:
    """The labels of flat actions ``(n, 2 + C)`` float32: the maximal score's class, ties
    broken by :func:`_action_hash` (see the module docstring)."""
    scores = np.ascontiguousarray(rows[:, LOCATION_SIZE:])  # (contiguous rows reduce faster)
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


def split_flat_actions(actions: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat actions ``(..., 2 + C)`` to locations ``(..., 2)`` float32 and labels ``(...)`` int64.

    The label is the class of the maximal score; tied maxima (frequent once SB3 clips a
    Gaussian to 1.0) are resolved by a hash of the action, deterministic and fair to
    every class (module docstring). Raises ``TypeError`` for anything but real numbers
    (bools, strings, complex numbers), ``ValueError`` for a wrong last dimension or
    non-finite scores; the location is checked by the environment itself.
    """
    values = check_numbers(
        actions, "a flat action", kinds="iuf", expected="real numbers (ints or floats) of a Box action"
    )
    array = values if values.dtype == np.float32 else values.astype(np.float32)
    width = LOCATION_SIZE + num_classes
    if array.ndim == 0 or array.shape[-1] != width:
        raise ValueError(
            f"a flat action is [x, y] followed by {num_classes} class scores, so its last dimension "
            f"must be {width}; got shape {array.shape}"
        )
    if not np.isfinite(array[..., LOCATION_SIZE:]).all():
        raise ValueError("class scores of the flat action contain NaN or infinity")
    labels = _flat_labels(array.reshape(-1, width)).reshape(array.shape[:-1])
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


def _grid_splitter(num_classes: int, grid: object) -> Callable[[Any], tuple[np.ndarray, np.ndarray]]:
    """The function that splits multidiscrete actions on a ``grid`` (checked here), its cell
    centres computed once."""
    cells = check_grid(grid)
    centres = grid_locations(cells)
    return lambda actions: _split_multidiscrete(actions, num_classes, cells, centres)


def multidiscrete_action_space(num_classes: int, *, grid: int = DEFAULT_GRID) -> spaces.MultiDiscrete:
    """``MultiDiscrete([grid, grid, num_classes])``: column and row of the location cell, class."""
    grid = check_grid(grid)
    return spaces.MultiDiscrete(np.array([grid, grid, num_classes], dtype=np.int64))


def split_multidiscrete_actions(
    actions: Any, num_classes: int, *, grid: int
) -> tuple[np.ndarray, np.ndarray]:
    """Multidiscrete actions ``(..., 3)`` = ``[column, row, class]`` to locations ``(..., 2)``
    float32 (the cell centres of :func:`grid_locations`) and labels ``(...)`` int64.

    Raises ``TypeError`` for anything but integers (bools, floats, strings) and
    ``ValueError`` for a wrong last dimension or an index outside its range (or a ``grid``
    outside 2..4096, :func:`check_grid`).
    """
    return _grid_splitter(num_classes, grid)(actions)


def _split_multidiscrete(
    actions: Any, num_classes: int, grid: int, centres: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_multidiscrete_actions` on a checked ``grid`` whose cell centres are ``centres``."""
    expected = f"[column, row, class] with column and row in 0..{grid - 1} and class in 0..{num_classes - 1}"
    array = check_numbers(
        actions, "a multidiscrete action", kinds="iu", expected=f"three integers {expected}"
    )
    if array.ndim == 0 or array.shape[-1] != len(MULTIDISCRETE_FIELDS):
        raise ValueError(f"a multidiscrete action is three integers {expected}; got shape {array.shape}")
    bounds = np.array([grid, grid, num_classes])
    outside = (array < 0) | (array >= bounds)
    if outside.any():
        where = np.argwhere(outside)[0]
        name = MULTIDISCRETE_FIELDS[where[-1]]
        raise ValueError(
            f"multidiscrete action {array[tuple(where[:-1])].tolist()}: its {name} "
            f"{int(array[tuple(where)])} is outside 0..{int(bounds[where[-1]]) - 1}; an action is {expected}"
        )
    return centres[array[..., :LOCATION_SIZE]], array[..., LOCATION_SIZE].astype(np.int64)


# ---------------------------------------------------------------------- one decoder for both
def _decoder(
    action: object, num_classes: int, grid: object
) -> tuple[spaces.Box | spaces.MultiDiscrete, Callable[[Any], tuple[np.ndarray, np.ndarray]]]:
    """The action space of the adapter ``action`` and the function that splits its actions
    into ``(locations, labels)``; ``grid`` (None for the default) applies to ``"multidiscrete"``."""
    if action == "flat":
        if grid is not None:
            raise ValueError(
                f"grid={grid!r} only applies to action='multidiscrete'; the flat action chooses any "
                f"location in [-1, 1]: drop grid or pass action='multidiscrete'"
            )
        return flat_action_space(num_classes), lambda actions: split_flat_actions(actions, num_classes)
    if action == "multidiscrete":
        cells = check_grid(DEFAULT_GRID if grid is None else grid)
        return multidiscrete_action_space(num_classes, grid=cells), _grid_splitter(num_classes, cells)
    raise ValueError(f"action must be one of {ACTION_KINDS}, got {action!r}")


def _num_classes(env: gym.Env[Any, Any], wrapper: str) -> int:
    """The number of classes of a glimpse environment's ``Dict`` action, or a clear ``TypeError``."""
    space = env.action_space
    if not (isinstance(space, spaces.Dict) and isinstance(space.spaces.get("label"), spaces.Discrete)):
        raise TypeError(
            f"{wrapper} wraps a glimpse environment, whose action space is Dict(location=Box, "
            f"label=Discrete); got {space}"
        )
    return int(space["label"].n)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- single environments
class FlatActionWrapper(gym.ActionWrapper[Any, np.ndarray, dict[str, Any]], gym.utils.RecordConstructorArgs):
    """One environment with the flat ``Box`` action of :func:`flat_action_space`; the label
    is decoded by :func:`split_flat_actions` (unbiased under clipping)."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ActionWrapper.__init__(self, env)
        self.num_classes = _num_classes(env, "FlatActionWrapper")
        self.action_space = flat_action_space(self.num_classes)

    def action(self, action: np.ndarray) -> dict[str, Any]:
        location, label = split_flat_actions(action, self.num_classes)
        if location.shape != (LOCATION_SIZE,):
            raise ValueError(
                f"expected one flat action of shape ({LOCATION_SIZE + self.num_classes},), "
                f"got {np.shape(action)}"
            )
        return {"location": location, "label": int(label)}


class MultiDiscreteActionWrapper(
    gym.ActionWrapper[Any, np.ndarray, dict[str, Any]], gym.utils.RecordConstructorArgs
):
    """One environment with the action ``MultiDiscrete([grid, grid, C])`` =
    ``[column, row, class]`` of :func:`multidiscrete_action_space`.

    Args:
        env: a glimpse environment (``gym.make("GlimpseMNIST-...")``).
        grid: cells per side of the location grid, 2 to :data:`MAX_GRID` (4096); the glimpse
            is taken at ``(grid_locations(grid)[column], grid_locations(grid)[row])``.
    """

    def __init__(self, env: gym.Env[Any, Any], grid: int = DEFAULT_GRID) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, grid=grid)
        gym.ActionWrapper.__init__(self, env)
        self.num_classes = _num_classes(env, "MultiDiscreteActionWrapper")
        self.grid = check_grid(grid)
        self.action_space = multidiscrete_action_space(self.num_classes, grid=self.grid)
        self._split = _grid_splitter(self.num_classes, self.grid)  # the cell centres, computed once

    def action(self, action: np.ndarray) -> dict[str, Any]:
        location, label = self._split(action)
        if location.shape != (LOCATION_SIZE,):
            raise ValueError(
                f"expected one multidiscrete action of shape ({len(MULTIDISCRETE_FIELDS)},), "
                f"got {np.shape(action)}"
            )
        return {"location": location, "label": int(label)}


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
