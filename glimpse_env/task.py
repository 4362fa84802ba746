"""The glimpse task: its configuration and its episodes.

:class:`TaskConfig` is every setting of a task, checked; :class:`GlimpseTask` is a task on
its data, which samples episodes and makes their canvases. Shared by
:class:`~glimpse_env.env.GlimpseEnv` (one episode at a time) and the batched vector
environment, so both make the same canvases from the same draws; they judge actions by
the same rules too (:mod:`glimpse_env.actions`).
"""

from __future__ import annotations

import difflib
import math
import os
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, NamedTuple, TypedDict, get_args

import numpy as np
import torch

# re-exported: the action checks (glimpse_env.actions) and the checks of seeds and render
# modes (glimpse_env.validation) were importable from here before they had modules of their own
from glimpse_env.actions import ACTION_KEYS as ACTION_KEYS
from glimpse_env.actions import check_labels as check_labels
from glimpse_env.actions import check_locations as check_locations
from glimpse_env.actions import split_action as split_action
from glimpse_env.canvas import IMAGE_SIZE, MAX_CANVAS_SIDE, CanvasSpec, compose, fixed_keys
from glimpse_env.data import (
    CLASS_NAMES,
    DATASETS,
    SPLIT_SIZES,
    SPLITS,
    SplitData,
    load_split_to,
    resolve_data_dir,
)
from glimpse_env.images import ImageDataset
from glimpse_env.retina import Retina
from glimpse_env.validation import check_int, check_numbers, describe_int, is_integer, is_real
from glimpse_env.validation import check_render_mode as check_render_mode
from glimpse_env.validation import check_seed as check_seed

INITIAL_LOCATIONS = ("centre", "center", "random")

#: Most glimpses per episode: 125x the most the RAM paper uses (8). The rendering trail
#: holds every location of an episode.
MAX_GLIMPSES = 1000
#: Most retina scales (the paper uses up to 4). With ``scale_factor=1`` every scale is the
#: same square, and the observation grows with every scale.
MAX_SCALES = 16
#: The largest retina scale, ``patch_size * scale_factor**(n_scales - 1)`` pixels, may be
#: at most this many times the canvas's longer side. A scale twice the canvas side sees the
#: whole canvas from any location, even a corner, so a larger one only adds empty border;
#: the bound leaves room above that and keeps the pixel arithmetic far from overflowing.
MAX_SCALE_RATIO = 4
#: Default canvas side of the ``translated`` and ``cluttered`` variants.
DEFAULT_CANVAS_SIDE = 60
#: How the label is rewarded (``TaskConfig.reward``).
RewardMode = Literal["terminal", "every_step"]
#: The reward modes: ``"terminal"`` (the default) and ``"every_step"``.
REWARD_MODES: tuple[str, ...] = get_args(RewardMode)


@dataclass(frozen=True, kw_only=True)
class TaskConfig:
    """Every setting of a glimpse task: the one definition of the environments' keyword arguments.

    :class:`~glimpse_env.env.GlimpseEnv`, :class:`~glimpse_env.vector.GlimpseVectorEnv`,
    ``gym.make``/``gym.make_vec`` and :class:`~glimpse_env.canvas_source.CanvasSource` take
    these fields as keyword arguments, with these defaults. Construction validates them:
    a wrong type raises ``TypeError`` (integers are Python, numpy or torch integers; never a
    bool, a float or a string), a wrong value ``ValueError``, each naming the argument.
    Sizes are bounded (:data:`~glimpse_env.canvas.MAX_CANVAS_SIDE`,
    :data:`~glimpse_env.canvas.MAX_CLUTTER`, :data:`MAX_GLIMPSES`, :data:`MAX_SCALES`,
    :data:`MAX_SCALE_RATIO`) so that a typo cannot ask for seconds and gigabytes per reset.
    Values are stored as plain Python values (``canvas_size`` as given, an ``int`` or a
    ``(height, width)`` tuple; ``initial_location`` as a name or an ``(x, y)`` tuple).
    """

    dataset: str | ImageDataset = "mnist"
    """``"mnist"``, ``"fashion_mnist"``, or an :class:`~glimpse_env.images.ImageDataset` of your
    own images (any size, grayscale or RGB, any number of classes, your own splits): its images,
    labels and classes replace MNIST's, and the other settings apply to them as they are (the
    canvas must hold the image: ``canvas_size`` at least the image's size, ``clutter_size`` at
    most its shorter side; a ``centred`` canvas is the image's size)."""
    variant: str = "centred"
    """``"centred"``, ``"translated"`` or ``"cluttered"`` (see :mod:`glimpse_env.canvas`)."""
    canvas_size: int | tuple[int, int] | None = None
    """Canvas side, or ``(height, width)``: the image's size (28) for ``centred``; from the
    image's size (28) to 512 otherwise (:data:`~glimpse_env.canvas.MAX_CANVAS_SIDE`).
    ``None``: the image's size for ``centred``, else 60."""
    n_clutter: int = 0
    """Clutter pieces per canvas, 1 to 128 (``cluttered`` only)."""
    clutter_size: int = 0
    """Side of each clutter piece, 1 to the image's shorter side (28) (``cluttered`` only)."""
    n_glimpses: int = 6
    """``T``: glimpses per episode, 1 to 1000; the label given at step ``T`` is judged."""
    patch_size: int = 8
    """``g``: side of each retina patch, at most the canvas's shorter side."""
    n_scales: int = 1
    """``k``: retina scales, 1 to 16."""
    scale_factor: int = 2
    """``s``: side ratio of successive scales; the largest scale ``g * s**(k - 1)`` may be at
    most 4 times the canvas's longer side (:data:`MAX_SCALE_RATIO`)."""
    split: str = "train"
    """``"train"``, ``"val"`` or ``"test"`` (see :mod:`glimpse_env.data`)."""
    initial_location: str | tuple[float, float] = "centre"
    """``"centre"`` (or ``"center"``), ``"random"`` (uniform in ``[-1, 1]^2``) or a fixed
    ``(x, y)`` pair of real numbers in ``[-1, 1]``."""
    train_size: int | None = None
    """Fix the training set to this many canvases, 1 to the train split's size (55,000 for
    MNIST; ``split="train"`` only); ``None`` draws a fresh canvas every episode."""
    dataset_seed: int = 0
    """Seed of the fixed canvases (``val``, ``test`` and a fixed training set), 0 to 2**64 - 1."""
    early_answer: bool = False
    """Let the agent answer before its last glimpse: the action gains ``"stop": Discrete(2)``,
    and ``stop=1`` at step ``t < n_glimpses`` judges that step's label and terminates the
    episode after ``t`` glimpses; at step ``n_glimpses`` the episode ends whatever ``stop``
    says. ``False`` (default): every episode takes ``n_glimpses`` steps and the action has no
    ``stop``. A bool (Python or numpy)."""
    glimpse_cost: float = 0.0
    """``c``: the price of a glimpse, charged on every step (each step's reward is lowered by
    ``c``), so an episode that answers at step ``t`` returns its reward for the label less
    ``c * t``. A finite real number >= 0 (default 0: glimpses are free)."""
    reward: RewardMode = "terminal"
    """``"terminal"`` (default): 1 on the step that answers (the last, or the one that
    stops) if its label is right, else 0. ``"every_step"``: the label of every step is
    judged, and each right one earns ``1/T`` (``T = n_glimpses``), so the return is the
    fraction of right labels; an answering step ``t`` earns ``(T - t + 1)/T`` if right (its
    label stands for the steps it skips), so the return stays in ``[0, 1]`` (before the
    glimpse cost) and an early right answer earns what repeating it until step ``T`` would."""
    canvas: CanvasSpec = field(init=False, repr=False, compare=False)
    """Derived, not an argument: how the image is placed on the canvas."""

    def __post_init__(self) -> None:
        def store(name: str, value: object) -> None:
            object.__setattr__(self, name, value)  # a frozen dataclass normalising its fields

        if not isinstance(self.dataset, ImageDataset):
            if not isinstance(self.dataset, str):
                raise TypeError(
                    f"dataset must be one of {DATASETS} or a glimpse_env.ImageDataset, got "
                    f"{reprlib.repr(self.dataset)} of type {type(self.dataset).__name__}; wrap your own "
                    f"arrays: dataset=ImageDataset(train=(images, labels), test=(images, labels))"
                )
            if self.dataset not in DATASETS:
                raise ValueError(
                    f"unknown dataset {self.dataset!r}; expected one of {DATASETS}, or your own images as "
                    f"a glimpse_env.ImageDataset"
                )
            store("dataset", str(self.dataset))
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; expected one of {SPLITS}")
        store("split", str(self.split))
        height, width = self._canvas_shape()
        canvas = CanvasSpec(self.variant, height, width, self.n_clutter, self.clutter_size, *self.image_shape)
        store("canvas", canvas)
        store("variant", canvas.variant)
        store("n_clutter", canvas.n_clutter)
        store("clutter_size", canvas.clutter_size)
        store(
            "n_glimpses",
            check_int(self.n_glimpses, "n_glimpses", low=1, high=MAX_GLIMPSES, why=" (MAX_GLIMPSES)"),
        )
        store("patch_size", check_int(self.patch_size, "patch_size", low=1))
        store("n_scales", check_int(self.n_scales, "n_scales", low=1, high=MAX_SCALES, why=" (MAX_SCALES)"))
        store("scale_factor", check_int(self.scale_factor, "scale_factor", low=1))
        smallest = min(height, width)
        if self.patch_size > smallest:
            raise ValueError(
                f"patch_size={self.patch_size} is larger than the {height}x{width} "
                f"canvas: the finest scale would see more than the whole "
                f"image. Use patch_size <= {smallest}."
            )
        self._check_largest_scale(height, width)
        if isinstance(self.initial_location, str):
            if self.initial_location not in INITIAL_LOCATIONS:
                raise ValueError(
                    f"initial_location must be one of {INITIAL_LOCATIONS} or an (x, y) pair in "
                    f"[-1, 1], got {self.initial_location!r}"
                )
        else:
            store("initial_location", _initial_point(self.initial_location))
        if self.train_size is not None:
            if self.split != "train":
                raise ValueError(
                    f"train_size fixes the training set; it does not apply to split={self.split!r}"
                )
            store(
                "train_size",
                check_int(
                    self.train_size,
                    "train_size",
                    low=1,
                    high=self.split_size("train"),
                    why=" (the images of the train split: a larger set would show each image twice)",
                ),
            )
        store("dataset_seed", check_int(self.dataset_seed, "dataset_seed", low=0, high=2**64 - 1))
        store("early_answer", _check_flag(self.early_answer, "early_answer"))
        store("glimpse_cost", _check_cost(self.glimpse_cost))
        store("reward", _check_reward_mode(self.reward))

    def _canvas_shape(self) -> tuple[int, int]:
        """``(height, width)`` of ``canvas_size``; ``canvas_size`` stored as plain ints."""
        size = self.canvas_size
        image_height, image_width = self.image_shape
        if size is None:
            if self.variant == "centred":
                return image_height, image_width
            if max(image_height, image_width) > DEFAULT_CANVAS_SIDE:
                raise ValueError(
                    f"the {image_height}x{image_width} images of {self.dataset_name!r} are larger than the "
                    f"default {DEFAULT_CANVAS_SIDE}x{DEFAULT_CANVAS_SIDE} canvas; pass canvas_size >= "
                    f"{max(image_height, image_width)} (or (height, width) of at least "
                    f"({image_height}, {image_width}))"
                )
            return DEFAULT_CANVAS_SIDE, DEFAULT_CANVAS_SIDE
        pair: tuple[object, ...]
        if is_integer(size):
            pair = (size, size)
        elif isinstance(size, (tuple, list, np.ndarray)) and len(size) == 2:
            pair = tuple(size)
        else:
            pair = ()
        if not pair or not all(is_integer(side) for side in pair):
            raise TypeError(
                f"canvas_size must be an integer or a (height, width) pair of integers, got "
                f"{reprlib.repr(size)} of type {type(size).__name__}"
            )
        height, width = (int(side) for side in pair)  # type: ignore[call-overload]
        if isinstance(self.dataset, ImageDataset):
            if height < image_height or width < image_width:
                raise ValueError(
                    f"canvas_size={size!r} is smaller than the {image_height}x{image_width} images of "
                    f"{self.dataset_name!r}: the canvas must hold the image; pass a canvas_size of at least "
                    f"({image_height}, {image_width})"
                    + (f", e.g. canvas_size={max(image_height, image_width)}" if is_integer(size) else "")
                )
            if max(height, width) > MAX_CANVAS_SIDE:
                raise ValueError(
                    f"canvas_size must be at most {MAX_CANVAS_SIDE} pixels a side (MAX_CANVAS_SIDE, 5x the "
                    f"largest canvas of the RAM paper), got {size!r}"
                )
        elif not (IMAGE_SIZE <= min(height, width) and max(height, width) <= MAX_CANVAS_SIDE):
            raise ValueError(
                f"canvas_size must be {IMAGE_SIZE} to {MAX_CANVAS_SIDE} pixels a side (at least the "
                f"{IMAGE_SIZE}x{IMAGE_SIZE} image; at most MAX_CANVAS_SIDE, 5x the largest canvas of "
                f"the RAM paper), got {size!r}"
            )
        object.__setattr__(self, "canvas_size", height if is_integer(size) else (height, width))
        return height, width

    def _check_largest_scale(self, height: int, width: int) -> None:
        g, k, s = self.patch_size, self.n_scales, self.scale_factor
        limit = MAX_SCALE_RATIO * max(height, width)
        largest = g * s ** (k - 1)  # k <= MAX_SCALES: a small power
        if largest <= limit:
            return
        fits = 1
        while fits < k and g * s**fits <= limit:
            fits += 1
        raise ValueError(
            f"n_scales={k} with scale_factor={s} makes the largest retina scale patch_size * "
            f"scale_factor**(n_scales - 1) = {largest} pixels wide, more than {MAX_SCALE_RATIO}x the "
            f"longer side of the {height}x{width} canvas ({limit} pixels, MAX_SCALE_RATIO). A scale "
            f"twice the canvas side already sees the whole canvas from any location, so a larger one "
            f"only adds empty border. Use n_scales <= {fits} with these sizes, or a smaller "
            f"scale_factor or patch_size."
        )

    @classmethod
    def from_kwargs(
        cls, kwargs: Mapping[str, Any], *, owner: str = "TaskConfig", others: Sequence[str] = ()
    ) -> TaskConfig:
        """A config from keyword arguments; an unknown one raises a ``TypeError`` naming it.

        Args:
            kwargs: settings (the fields of this class).
            owner: who takes them, for the message (e.g. ``"GlimpseEnv"``).
            others: the owner's other keyword arguments, listed as valid in the message.
        """
        unknown = [name for name in kwargs if name not in SETTINGS]
        if unknown:
            valid = [*others, *SETTINGS]
            hints = {name: difflib.get_close_matches(str(name), valid, n=1) for name in unknown}
            named = ", ".join(
                f"{name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                for name, hint in hints.items()
            )
            raise TypeError(
                f"{owner} got unknown keyword argument{'s' if len(unknown) > 1 else ''} {named}; "
                f"the keyword arguments are: {', '.join(valid)}"
            )
        return cls(**kwargs)

    def settings(self) -> dict[str, Any]:
        """The settings as keyword arguments: ``TaskConfig(**config.settings()) == config``."""
        return {name: getattr(self, name) for name in SETTINGS}

    @property
    def num_classes(self) -> int:
        """``C``: the dataset's classes."""
        if isinstance(self.dataset, ImageDataset):
            return self.dataset.num_classes
        return len(CLASS_NAMES[self.dataset])

    @property
    def class_names(self) -> tuple[str, ...]:
        """A name per class, index = label."""
        if isinstance(self.dataset, ImageDataset):
            return self.dataset.class_names
        return CLASS_NAMES[self.dataset]

    @property
    def dataset_name(self) -> str:
        """The dataset's name: ``dataset`` itself, or an ``ImageDataset``'s ``name`` (part of
        the fixed canvases' keys)."""
        return self.dataset.name if isinstance(self.dataset, ImageDataset) else self.dataset

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the dataset's images (28x28 for MNIST and Fashion-MNIST)."""
        if isinstance(self.dataset, ImageDataset):
            return self.dataset.image_shape
        return (IMAGE_SIZE, IMAGE_SIZE)

    @property
    def channels(self) -> int:
        """``C``: channels of the images, the canvases and every glimpse scale: 1 (grayscale),
        3 for an RGB :class:`~glimpse_env.images.ImageDataset`."""
        return self.dataset.channels if isinstance(self.dataset, ImageDataset) else 1

    @property
    def glimpse_shape(self) -> tuple[int, int, int]:
        """``(k * C, g, g)``: the shape of a glimpse (``C`` channels of each of ``k`` scales, scale-major)."""
        return (self.n_scales * self.channels, self.patch_size, self.patch_size)

    def split_size(self, split: str) -> int:
        """The number of images of ``split`` in the dataset."""
        if isinstance(self.dataset, ImageDataset):
            return self.dataset.split_sizes[split]
        return SPLIT_SIZES[split]

    @property
    def classic(self) -> bool:
        """Whether the episodes are the RAM paper's: ``n_glimpses`` steps each, rewarded 1 on
        the last if the label is right (no early answers, terminal reward, no glimpse cost)."""
        return not self.early_answer and self.reward == "terminal" and self.glimpse_cost == 0.0

    def step_reward(self, step: int, correct: bool, answered: bool) -> float:
        """The reward of step ``step`` (1 to ``n_glimpses``) of an episode: the one rule of
        both environments (the vector environment tabulates it).

        Args:
            step: ``t``, the steps taken, this one included (the glimpses used).
            correct: whether this step's label is the true class.
            answered: whether this step ends the episode (``t = n_glimpses``, or ``stop=1``
                with :attr:`early_answer`).

        ``"terminal"``: 1 if ``answered`` and ``correct``, else 0. ``"every_step"``: ``1/T``
        if ``correct``, ``(T - t + 1)/T`` on an answering step (its label counts for the
        steps it skips; ``1/T`` at ``t = T``), else 0. Then ``glimpse_cost`` is subtracted.
        """
        t, last = int(step), self.n_glimpses
        if self.reward == "terminal":
            earned = 1.0 if answered and correct else 0.0
        elif correct:
            earned = (last - t + 1) / last if answered else 1 / last
        else:
            earned = 0.0
        return earned - self.glimpse_cost

    @property
    def fixed_set_size(self) -> int | None:
        """The canvases of the fixed set (``reset(options={"index": i})``): every image of the
        ``val`` or ``test`` split, or ``train_size`` for a fixed training set; ``None`` when
        every episode draws a fresh training canvas."""
        return self.split_size(self.split) if self.split != "train" else self.train_size


#: The names of the settings, in order: the fields of :class:`TaskConfig`.
SETTINGS: tuple[str, ...] = tuple(f.name for f in fields(TaskConfig) if f.init)


class TaskSettings(TypedDict, total=False):
    """The settings as a ``TypedDict``, to type ``**settings`` keyword arguments.

    The same names and types as :class:`TaskConfig`'s fields (a test holds this); the
    defaults, documentation and checks are :class:`TaskConfig`'s. The fields are spelt
    out because a type checker reads a ``TypedDict`` (what ``Unpack`` takes) from its class
    body alone: one built from the dataclass's fields at run time would type nothing.
    """

    dataset: str | ImageDataset
    variant: str
    canvas_size: int | tuple[int, int] | None
    n_clutter: int
    clutter_size: int
    n_glimpses: int
    patch_size: int
    n_scales: int
    scale_factor: int
    split: str
    initial_location: str | tuple[float, float]
    train_size: int | None
    dataset_seed: int
    early_answer: bool
    glimpse_cost: float
    reward: RewardMode


def _check_flag(value: object, name: str) -> bool:
    """``value`` as a Python ``bool`` (a Python or numpy bool), else a ``TypeError`` naming ``name``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{name} must be True or False, got {reprlib.repr(value)} of type {type(value).__name__}"
        )
    return bool(value)


def _check_cost(value: object) -> float:
    """``glimpse_cost`` as a Python ``float``: a finite real number >= 0, else a clear error."""
    expected = "glimpse_cost must be a finite real number >= 0 (the reward lost per glimpse)"
    if not is_real(value):
        raise TypeError(f"{expected}, got {reprlib.repr(value)} of type {type(value).__name__}")
    cost = float(value)  # type: ignore[arg-type]
    if not (math.isfinite(cost) and cost >= 0.0):
        raise ValueError(f"{expected}, got {cost!r}")
    return cost + 0.0  # -0.0 is stored as 0.0


def _check_reward_mode(value: object) -> str:
    """``reward``: one of :data:`REWARD_MODES`, else a ``TypeError`` or ``ValueError`` naming them."""
    expected = f"reward must be one of {REWARD_MODES}"
    if not isinstance(value, str):
        raise TypeError(f"{expected}, got {reprlib.repr(value)} of type {type(value).__name__}")
    if value not in REWARD_MODES:
        hint = difflib.get_close_matches(value, REWARD_MODES, n=1)
        raise ValueError(f"{expected}, got {value!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    return str(value)


def _initial_point(value: object) -> tuple[float, float]:
    """A fixed ``initial_location``: an ``(x, y)`` pair of real numbers in ``[-1, 1]``."""
    expected = (
        f"initial_location must be one of {INITIAL_LOCATIONS} or an (x, y) pair of real numbers in [-1, 1]"
    )
    items: list[object]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        items = list(value) if value.ndim == 1 else [value]
    elif isinstance(value, (tuple, list)):
        items = list(value)
    else:
        raise TypeError(f"{expected}, got {reprlib.repr(value)} of type {type(value).__name__}")
    if len(items) != 2:
        raise ValueError(f"{expected}, got {reprlib.repr(value)}: {len(items)} item(s), not 2")
    if not all(is_real(item) for item in items):
        raise TypeError(
            f"{expected}, got {reprlib.repr(value)}: both items must be real numbers (ints or "
            f"floats; not bools, strings or complex numbers)"
        )
    x, y = (float(item) for item in items)  # type: ignore[arg-type]
    if not (abs(x) <= 1.0 and abs(y) <= 1.0):  # NaN fails too
        raise ValueError(f"{expected}, got {reprlib.repr(value)}: outside [-1, 1] or not finite")
    return (x, y)


class Episodes(NamedTuple):
    """Where a batch of new episodes comes from."""

    dataset_indices: np.ndarray
    """``(B,)`` int64: the image of the split each canvas shows (its dataset index)."""
    keys: np.ndarray
    """``(B,)`` uint64: canvas keys (positions and clutter)."""
    canvas_indices: np.ndarray
    """``(B,)`` int64: index of the canvas in the fixed set (``options={"index": i}``), ``-1``
    for a fresh one."""


class GlimpseTask:
    """A configured task on its data: samples episodes, makes canvases, takes glimpses.

    Args:
        config: the task settings.
        data_dir: data folder (see :mod:`glimpse_env.data`).
        device: where the dataset and the canvases live.
    """

    def __init__(
        self,
        config: TaskConfig,
        data_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.config = config
        self.device = torch.device(device)
        #: the data folder the dataset was looked for in (see :mod:`glimpse_env.data`)
        self.data_dir = resolve_data_dir(data_dir)
        self.images, self.labels = self._load_split()
        self.retina = Retina(config.patch_size, config.n_scales, config.scale_factor)
        self.num_classes = config.num_classes
        self.class_names = config.class_names
        #: number of canvases of the fixed set, or None when every episode draws a fresh one
        #: (:attr:`TaskConfig.fixed_set_size`; the verified splits have exactly their sizes)
        self.n_samples = config.fixed_set_size
        self.glimpse_shape = config.glimpse_shape

    def _load_split(self) -> SplitData:
        """The split's images and labels on the device: the process-wide cached tensors (an
        ``ImageDataset``'s own, copied to the device once per dataset)."""
        dataset = self.config.dataset
        if isinstance(dataset, ImageDataset):
            return dataset.split_to(self.config.split, self.device)
        return load_split_to(dataset, self.config.split, self.data_dir, self.device)

    def __getstate__(self) -> dict[str, Any]:
        """The task without its dataset, for ``copy``, ``pickle`` and ``cloudpickle``.

        ``images`` and ``labels`` are the process-wide cached split (47 MB for MNIST's
        training split); a pickle carries what loads them again instead (config, data folder,
        device), so it stays small, and :meth:`__setstate__` reloads them through the cache
        (from the files, verified, in a new process; shared with every other task in this one).
        """
        state = self.__dict__.copy()
        del state["images"], state["labels"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.images, self.labels = self._load_split()

    def sample(self, rng: np.random.Generator, count: int, indices: Any = None) -> Episodes:
        """Choose ``count`` episodes: the given ``indices`` of the fixed set, else random ones."""
        if indices is not None:
            return self.fixed_episodes(self.check_indices(indices, count))
        if self.n_samples is not None:
            return self.fixed_episodes(rng.integers(0, self.n_samples, size=count, dtype=np.int64))
        # a fresh canvas: its image, then its key, drawn from rng (CanvasSource.fresh relies on it)
        images = rng.integers(0, int(self.images.shape[0]), size=count, dtype=np.int64)
        # = rng.integers(0, 2**64, size=count, dtype=np.uint64): over the whole range numpy returns
        # the generator's raw words, which this reads without the bounds checks (a test holds it)
        keys = rng.bit_generator.random_raw(count)
        return Episodes(images, keys, np.full(count, -1, dtype=np.int64))

    def fixed_episodes(self, indices: np.ndarray) -> Episodes:
        """Episodes of canvases ``indices`` (``(B,)`` int64, checked) of the fixed set."""
        cfg = self.config
        keys = fixed_keys(
            cfg.canvas,
            dataset=cfg.dataset_name,
            dataset_seed=cfg.dataset_seed,
            split=cfg.split,
            indices=indices,
        )
        # canvas i of a fixed set shows image i of the split (train_size is at most the split)
        return Episodes(indices, keys, indices)

    def _fixed_size(self) -> int:
        """The number of canvases of the fixed set, or a ``ValueError`` when there is none."""
        if self.n_samples is None:
            raise ValueError(
                "options index/indices choose a canvas of a fixed set, but this environment draws a "
                "fresh training canvas every episode; use split='val' or 'test', or pass train_size=N"
            )
        return self.n_samples

    def describe_fixed_set(self) -> str:
        """The fixed set in words, for messages: its split, size and indices."""
        if self.n_samples is None:
            return "this environment has no fixed set (it draws a fresh training canvas every episode)"
        return f"the {self.config.split} set has {self.n_samples} canvases, indices 0..{self.n_samples - 1}"

    def _out_of_range(self, name: str, value: int, where: str = "") -> ValueError:
        self._fixed_size()
        return ValueError(
            f"{name}: index {describe_int(value)}{where} is out of range: {self.describe_fixed_set()}"
        )

    def check_index(self, index: int, name: str = "options['index']") -> int:
        """One canvas index (a Python ``int``, any size) within the fixed set, or a ``ValueError``
        naming ``name`` and the size of the set."""
        if not 0 <= index < self._fixed_size():
            raise self._out_of_range(name, index)
        return index

    def check_indices(self, indices: Any, count: int, name: str = "options['indices']") -> np.ndarray:
        """``indices`` as ``(count,)`` int64 within the fixed set, or a clear error naming ``name``.

        Integers of any kind (Python ints of any size, numpy or torch integer arrays on any
        device); anything else (bools, floats, strings) raises ``TypeError``, a wrong shape or
        an index outside the set ``ValueError`` with the size of the set.
        """
        n = self._fixed_size()
        expected = f"{count} integer index(es), shape ({count},)"
        if isinstance(indices, (list, tuple)) and all(is_integer(i) for i in indices):
            # Python ints may exceed int64 (numpy would make an object array of them)
            values = [int(i) for i in indices]
            if len(values) != count:
                raise ValueError(f"{name}: expected {expected}, got {len(values)} indices")
            bad = [j for j, value in enumerate(values) if not 0 <= value < n]
            if bad:
                raise self._out_of_range(name, values[bad[0]], f" (sub-environment {bad[0]})" * (count > 1))
            return np.array(values, dtype=np.int64)
        array = check_numbers(indices, name, kinds="iu", expected=f"{expected} ({self.describe_fixed_set()})")
        if array.shape != (count,):
            raise ValueError(f"{name}: expected {expected}, got shape {array.shape}: {reprlib.repr(indices)}")
        bad_at = np.flatnonzero((array < 0) | (array >= n))
        if bad_at.size:
            j = int(bad_at[0])
            raise self._out_of_range(name, int(array[j]), f" (sub-environment {j})" * (count > 1))
        return array.astype(np.int64)

    def canvases(self, episodes: Episodes) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, H, W)`` uint8 canvases and ``(B,)`` int64 labels, on the task's device."""
        dataset_indices = torch.from_numpy(episodes.dataset_indices).to(self.device)
        canvases = compose(self.config.canvas, self.images, dataset_indices, episodes.keys)
        return canvases, torch.index_select(self.labels, 0, dataset_indices)  # far faster than labels[idx]

    def initial_locations(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``(count, 2)`` float32 first glimpse locations."""
        mode = self.config.initial_location
        if mode == "random":
            return rng.uniform(-1.0, 1.0, size=(count, 2)).astype(np.float32)
        points = np.empty((count, 2), dtype=np.float32)
        points[...] = (0.0, 0.0) if isinstance(mode, str) else mode
        return points
