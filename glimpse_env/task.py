"""The glimpse task: configuration, episode sampling and the action checks.

Shared by :class:`~glimpse_env.env.GlimpseEnv` (one episode at a time) and the
batched vector environment, so both make the same canvases from the same draws and
judge actions by the same rules.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from glimpse_env.canvas import CanvasSpec, compose, fixed_keys
from glimpse_env.data import CLASS_NAMES, DATASETS, SPLITS, SplitData, load_split_to, resolve_data_dir
from glimpse_env.retina import Retina

INITIAL_LOCATIONS = ("centre", "center", "random")
ACTION_KEYS = frozenset({"location", "label"})


@dataclass(frozen=True)
class TaskConfig:
    """Every setting of a glimpse task, validated on construction."""

    dataset: str = "mnist"
    """``"mnist"`` or ``"fashion_mnist"``."""
    canvas: CanvasSpec = field(default_factory=CanvasSpec.centred)
    """How the image is placed on the canvas (see :mod:`glimpse_env.canvas`)."""
    split: str = "train"
    """``"train"``, ``"val"`` or ``"test"`` (see :mod:`glimpse_env.data`)."""
    n_glimpses: int = 6
    """``T``: glimpses per episode; the label given at step ``T`` is judged."""
    patch_size: int = 8
    """``g``: side of each retina patch."""
    n_scales: int = 1
    """``k``: retina scales."""
    scale_factor: int = 2
    """``s``: side ratio of successive scales."""
    initial_location: str | tuple[float, float] = "centre"
    """``"centre"``, ``"random"`` (uniform in ``[-1, 1]^2``) or a fixed ``(x, y)``."""
    train_size: int | None = None
    """Fix the training set to this many canvases (``split="train"`` only); ``None`` draws
    a fresh canvas every episode."""
    dataset_seed: int = 0
    """Seed of the fixed canvases (``val``, ``test`` and a fixed training set)."""

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; expected one of {DATASETS}")
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; expected one of {SPLITS}")
        for name in ("n_glimpses", "patch_size", "n_scales", "scale_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        smallest = min(self.canvas.height, self.canvas.width)
        if self.patch_size > smallest:
            raise ValueError(
                f"patch_size={self.patch_size} is larger than the {self.canvas.height}x"
                f"{self.canvas.width} canvas: the finest scale would see more than the whole "
                f"image. Use patch_size <= {smallest}."
            )
        if isinstance(self.initial_location, str):
            if self.initial_location not in INITIAL_LOCATIONS:
                raise ValueError(
                    f"initial_location must be one of {INITIAL_LOCATIONS} or an (x, y) pair in "
                    f"[-1, 1], got {self.initial_location!r}"
                )
        else:
            loc = np.asarray(self.initial_location, dtype=np.float64)
            if loc.shape != (2,) or not (np.abs(loc) <= 1).all():
                raise ValueError(
                    f"initial_location as a point must be (x, y) in [-1, 1], got {self.initial_location!r}"
                )
        if self.train_size is not None:
            if self.split != "train":
                raise ValueError(
                    f"train_size fixes the training set; it does not apply to split={self.split!r}"
                )
            if (
                isinstance(self.train_size, bool)
                or not isinstance(self.train_size, (int, np.integer))
                or self.train_size < 1
            ):
                raise ValueError(f"train_size must be a positive integer or None, got {self.train_size!r}")
        if (
            isinstance(self.dataset_seed, bool)
            or not isinstance(self.dataset_seed, (int, np.integer))
            or self.dataset_seed < 0
        ):
            raise ValueError(f"dataset_seed must be a non-negative integer, got {self.dataset_seed!r}")

    @property
    def num_classes(self) -> int:
        return len(CLASS_NAMES[self.dataset])


def make_config(
    *,
    dataset: str = "mnist",
    variant: str = "centred",
    canvas_size: int | tuple[int, int] | None = None,
    n_clutter: int = 0,
    clutter_size: int = 0,
    split: str = "train",
    n_glimpses: int = 6,
    patch_size: int = 8,
    n_scales: int = 1,
    scale_factor: int = 2,
    initial_location: str | tuple[float, float] = "centre",
    train_size: int | None = None,
    dataset_seed: int = 0,
) -> TaskConfig:
    """A :class:`TaskConfig` from the flat keyword arguments the environments take."""
    if canvas_size is None:
        canvas_size = 28 if variant == "centred" else 60
    if isinstance(canvas_size, (int, np.integer)):
        height = width = int(canvas_size)
    else:
        try:
            height, width = (int(v) for v in canvas_size)
        except (TypeError, ValueError):
            raise ValueError(
                f"canvas_size must be an int or a (height, width) pair, got {canvas_size!r}"
            ) from None
    canvas = CanvasSpec(variant, height, width, n_clutter, clutter_size)
    if not isinstance(initial_location, str):
        initial_location = tuple(float(v) for v in np.asarray(initial_location).ravel())  # type: ignore[assignment]
    return TaskConfig(
        dataset=dataset,
        canvas=canvas,
        split=split,
        n_glimpses=n_glimpses,
        patch_size=patch_size,
        n_scales=n_scales,
        scale_factor=scale_factor,
        initial_location=initial_location,
        train_size=train_size,
        dataset_seed=dataset_seed,
    )


class Episodes(NamedTuple):
    """Where a batch of new episodes comes from."""

    image_indices: np.ndarray
    """``(B,)`` int64: the dataset image each canvas shows."""
    keys: np.ndarray
    """``(B,)`` uint64: canvas keys (positions and clutter)."""
    sample_indices: np.ndarray
    """``(B,)`` int64: index of the canvas in the fixed set, ``-1`` for a fresh one."""


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
        self.class_names = CLASS_NAMES[config.dataset]
        #: number of canvases of the fixed set, or None when every episode draws a fresh one
        self.n_samples: int | None
        if config.split != "train":
            self.n_samples = int(self.images.shape[0])
        else:
            self.n_samples = config.train_size
        self.glimpse_shape = (config.n_scales, config.patch_size, config.patch_size)

    def _load_split(self) -> SplitData:
        """The split's images and labels on the device: the process-wide cached tensors."""
        return load_split_to(self.config.dataset, self.config.split, self.data_dir, self.device)

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
        cfg = self.config
        n_images = int(self.images.shape[0])
        if indices is not None:
            samples = self.check_indices(indices, count)
        elif self.n_samples is not None:
            samples = rng.integers(0, self.n_samples, size=count, dtype=np.int64)
        else:
            images = rng.integers(0, n_images, size=count, dtype=np.int64)
            keys = rng.integers(0, 2**64, size=count, dtype=np.uint64, endpoint=False)
            return Episodes(images, keys, np.full(count, -1, dtype=np.int64))
        keys = fixed_keys(
            cfg.canvas, dataset=cfg.dataset, dataset_seed=cfg.dataset_seed, split=cfg.split, indices=samples
        )
        return Episodes(samples % n_images, keys, samples)

    def check_indices(self, indices: Any, count: int) -> np.ndarray:
        """``indices`` as ``(count,)`` int64 within the fixed set, or a clear error."""
        if self.n_samples is None:
            raise ValueError(
                "options index/indices choose a canvas of a fixed set, but this environment draws a "
                "fresh training canvas every episode; use split='val' or 'test', or pass train_size=N"
            )
        array = np.asarray(indices)
        if array.shape != (count,) or not (np.issubdtype(array.dtype, np.integer)):
            raise ValueError(f"expected {count} integer index(es), shape ({count},), got {indices!r}")
        bad = np.flatnonzero((array < 0) | (array >= self.n_samples))
        if bad.size:
            where = f" (sub-environment {int(bad[0])})" if count > 1 else ""
            raise ValueError(
                f"index {int(array[bad[0]])}{where} is out of range: the {self.config.split} set has "
                f"{self.n_samples} canvases, indices 0..{self.n_samples - 1}"
            )
        return array.astype(np.int64)

    def canvases(self, episodes: Episodes) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, H, W)`` uint8 canvases and ``(B,)`` int64 labels, on the task's device."""
        image_indices = torch.from_numpy(episodes.image_indices).to(self.device)
        return compose(self.config.canvas, self.images, image_indices, episodes.keys), self.labels[
            image_indices
        ]

    def initial_locations(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``(count, 2)`` float32 first glimpse locations."""
        mode = self.config.initial_location
        if mode == "random":
            return rng.uniform(-1.0, 1.0, size=(count, 2)).astype(np.float32)
        point = (0.0, 0.0) if isinstance(mode, str) else mode
        return np.tile(np.asarray(point, dtype=np.float32), (count, 1))


def check_locations(locations: Any, num_envs: int | None = None) -> np.ndarray:
    """``locations`` as float32 in ``[-1, 1]``, or a clear ``ValueError``.

    ``num_envs=None`` checks one environment's ``(2,)`` location; an integer checks a
    batch ``(num_envs, 2)`` and names the first offending sub-environment.
    """
    try:
        array = np.asarray(locations, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"action['location'] must be numbers, got {locations!r} ({exc})") from None
    expected = (2,) if num_envs is None else (num_envs, 2)
    if array.shape != expected:
        raise ValueError(f"action['location'] must have shape {expected} (x, y), got shape {array.shape}")
    if not (array.min() >= -1.0 and array.max() <= 1.0):  # NaN fails both comparisons
        rows = array.reshape(-1, 2)
        bad = int(np.flatnonzero(~(np.abs(rows) <= 1.0).all(axis=1))[0])
        where = "" if num_envs is None else f" of sub-environment {bad}"
        problem = "is NaN or infinite" if not np.isfinite(rows[bad]).all() else "is outside [-1, 1]"
        raise ValueError(
            f"action['location']{where} {problem}: {rows[bad].tolist()}. Locations must be finite "
            f"(x, y) in [-1, 1]; clip a sampled location before passing it (nothing is clipped here)"
        )
    return array


def check_labels(labels: Any, num_classes: int, num_envs: int | None = None) -> np.ndarray:
    """``labels`` as int64 in ``[0, num_classes)`` (shape ``()`` or ``(num_envs,)``), or a clear error."""
    array = np.asarray(labels)
    expected = () if num_envs is None else (num_envs,)
    if array.shape != expected or array.dtype.kind not in "iu":  # signed or unsigned integers
        what = "an integer" if num_envs is None else f"{num_envs} integers, shape ({num_envs},)"
        raise ValueError(f"action['label'] must be {what} (a class index), got {labels!r}")
    flat = array.reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        bad = np.flatnonzero((flat < 0) | (flat >= num_classes))
        where = "" if num_envs is None else f" of sub-environment {int(bad[0])}"
        raise ValueError(
            f"action['label']{where} is {int(flat[bad[0]])}, outside the {num_classes} classes "
            f"0..{num_classes - 1}"
        )
    return array.astype(np.int64)


def split_action(action: Any) -> tuple[Any, Any]:
    """``(location, label)`` of a Dict action, or a clear ``TypeError``/``ValueError``."""
    if not isinstance(action, Mapping):
        raise TypeError(
            f"the action must be a dict {{'location': (x, y), 'label': class}}, got {type(action).__name__}"
        )
    if action.keys() != ACTION_KEYS:
        raise ValueError(
            f"the action must have exactly the keys {sorted(ACTION_KEYS)}, "
            f"got {sorted(map(str, action.keys()))}"
        )
    return action["location"], action["label"]
