"""The exact canvases and labels an environment shows, as batches on a device.

For models that see whole canvases (the supervised baselines, a pre-trained classifier,
a visualisation), so that they train and are evaluated on exactly the images the glimpse
environments show, without reaching into an environment::

    import glimpse_env

    test = glimpse_env.CanvasSource.from_id("GlimpseMNIST-Cluttered-v0", split="test", device="cuda")
    canvases, labels = test.fixed(range(500))  # (500, 40, 40) uint8, (500,) int64, on the GPU
    # own images: CanvasSource.from_id(env_id, dataset=ImageDataset(...)); RGB: (B, 3, H, W)
    for canvases, labels in test.batches(1000):  # the whole test set, in index order
        ...

    train = glimpse_env.CanvasSource.from_id("GlimpseMNIST-Cluttered-v0", device="cuda")
    rng = np.random.default_rng(0)
    canvases, labels = train.fresh(256, rng)  # a fresh training batch; the next call continues rng

How they line up with the environments:

- ``fixed(indices)``: canvas ``i`` of the fixed set (``val``, ``test``, or a training set
  fixed with ``train_size``) is the canvas that ``gym.make(id, ...)`` shows after
  ``reset(options={"index": i})``, and that sub-environment ``j`` of the vector
  environment shows after ``reset(options={"indices": idx})`` with ``idx[j] = i``, on every
  machine and in every process.
- ``fresh(count, seed)``: fresh training canvases, drawn from a numpy ``Generator`` by the
  environments' own rule (each canvas's image, then its key). ``fresh(N, seed=s)`` is
  exactly what ``GlimpseVectorEnv(N, ...)`` shows after ``reset(seed=s)`` (the first
  reset of ``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``),
  and ``fresh(1, seed=s)`` what ``gym.make(id).reset(seed=s)`` shows. Later episodes of an
  environment draw their initial locations from the same generator (with
  ``initial_location="random"``), so they are not the continuation of a ``fresh`` stream;
  a supervised model needs no such alignment, only the same distribution of canvases.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from glimpse_env.task import GlimpseTask, TaskConfig, TaskSettings
from glimpse_env.validation import check_int, is_integer

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["CanvasBatch", "CanvasSource"]


class CanvasBatch(NamedTuple):
    """A batch of canvases and their labels, on the source's device."""

    canvases: torch.Tensor
    """``(B, H, W)`` uint8, pixel values 0-255 (the environments' retina divides by 255);
    ``(B, C, H, W)``, channels first, for RGB images (an :class:`~glimpse_env.images.ImageDataset`)."""
    labels: torch.Tensor
    """``(B,)`` int64 class indices."""


class CanvasSource:
    """The canvases (and labels) of a glimpse task, as batches on a device.

    Args:
        config: the task's settings (see :class:`~glimpse_env.task.TaskConfig`); the retina
            settings play no part in the canvases.
        data_dir: data folder (see :mod:`glimpse_env.data`).
        device: where the dataset, the canvases and the labels live.

    Most callers use :meth:`from_id` (a registered id with overrides, as ``gym.make``) or
    :meth:`from_env` (the settings and data of an existing environment).
    """

    def __init__(
        self,
        config: TaskConfig,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        if not isinstance(config, TaskConfig):
            raise TypeError(
                f"config must be a TaskConfig, got {type(config).__name__}; use "
                f"CanvasSource.from_id(env_id, **settings) to start from keyword arguments"
            )
        self._task = GlimpseTask(config, data_dir=data_dir, device=device)
        self.config = config
        self.device: torch.device = self._task.device
        self.num_classes: int = self._task.num_classes
        self.class_names: tuple[str, ...] = self._task.class_names
        #: ``(height, width)`` of every canvas
        self.shape: tuple[int, int] = config.canvas.shape
        #: channels of every canvas: 1 (canvases ``(B, H, W)``), or 3 for RGB images
        #: (canvases ``(B, 3, H, W)``)
        self.channels: int = config.channels

    @classmethod
    def from_id(
        cls,
        env_id: str,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device = "cpu",
        **overrides: Unpack[TaskSettings],
    ) -> CanvasSource:
        """The canvases of ``gym.make(env_id, **overrides)``: the id's settings, overridden."""
        kwargs = dict(gym.spec(env_id).kwargs)
        kwargs.pop("render_mode", None)
        spec_dir = kwargs.pop("data_dir", None)
        config = TaskConfig.from_kwargs(
            {**kwargs, **overrides}, owner="CanvasSource.from_id", others=("env_id", "data_dir", "device")
        )
        return cls(config, data_dir=spec_dir if data_dir is None else data_dir, device=device)

    @classmethod
    def from_env(cls, env: Any, *, device: str | torch.device | None = None) -> CanvasSource:
        """The canvases of a built environment (single or vector, wrapped or not): its
        settings and data folder, on ``device`` (default: the environment's device)."""
        task = getattr(getattr(env, "unwrapped", env), "task", None)
        if not isinstance(task, GlimpseTask):
            raise TypeError(
                f"from_env takes a GlimpseEnv or GlimpseVectorEnv (or a wrapper of one), got "
                f"{type(env).__name__}"
            )
        return cls(task.config, data_dir=task.data_dir, device=task.device if device is None else device)

    # ------------------------------------------------------------------ fixed set
    @property
    def fixed_size(self) -> int | None:
        """Canvases in the fixed set (``val``, ``test``, or ``train_size``); ``None`` when the
        task draws a fresh canvas every episode (``split="train"`` without ``train_size``)."""
        return self._task.n_samples

    def __len__(self) -> int:
        """The size of the fixed set (a ``TypeError`` when there is none)."""
        if self._task.n_samples is None:
            raise TypeError(
                "this source draws fresh training canvases (split='train' without train_size): it has "
                "no fixed set and no len(); use fresh(count, seed), or pass train_size=N"
            )
        return self._task.n_samples

    def fixed(self, indices: Any) -> CanvasBatch:
        """Canvases ``indices`` of the fixed set, in that order.

        Args:
            indices: a 1-D sequence of integers in ``[0, len(self))``: a list, a ``range``, a
                numpy array or a torch tensor (on any device). Repeats are allowed.
        """
        if isinstance(indices, torch.Tensor):
            indices = indices.detach().cpu().numpy()
        elif isinstance(indices, range):
            indices = np.arange(indices.start, indices.stop, indices.step, dtype=np.int64)
        array = np.asarray(indices)
        if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
            raise ValueError(
                f"indices must be a non-empty 1-D sequence of integers (canvases of the fixed set), "
                f"got {type(indices).__name__} of dtype {array.dtype} and shape {array.shape}"
            )
        episodes = self._task.fixed_episodes(self._task.check_indices(array, array.shape[0], name="indices"))
        return CanvasBatch(*self._task.canvases(episodes))

    def batches(self, batch_size: int) -> Iterator[CanvasBatch]:
        """The whole fixed set in index order, ``batch_size`` canvases at a time (the last
        batch may be smaller)."""
        total = len(self)
        size = check_int(batch_size, "batch_size", low=1)
        for start in range(0, total, size):
            yield self.fixed(np.arange(start, min(start + size, total), dtype=np.int64))

    # ------------------------------------------------------------------ fresh canvases
    def fresh(self, count: int, seed: int | np.random.Generator) -> CanvasBatch:
        """``count`` fresh training canvases drawn from ``seed``.

        Args:
            count: how many.
            seed: a non-negative integer (a new generator, as ``reset(seed=...)`` makes), or a
                ``numpy.random.Generator`` to draw from and advance (consecutive calls give
                new canvases).

        ``fresh(N, seed=s)`` equals the canvases of a vector environment of ``N``
        sub-environments after ``reset(seed=s)`` (see the module docstring).
        """
        if self._task.n_samples is not None:
            raise ValueError(
                f"this source is a fixed set of {self._task.n_samples} canvases "
                f"(split={self.config.split!r}, train_size={self.config.train_size}); use fixed(indices) "
                f"or batches(size), or split='train' without train_size for fresh canvases"
            )
        count = check_int(count, "count", low=1)
        if isinstance(seed, np.random.Generator):
            rng = seed
        elif is_integer(seed):
            rng = np.random.default_rng(check_int(seed, "seed", low=0))
        else:
            raise TypeError(
                f"seed must be a non-negative integer or a numpy.random.Generator, got "
                f"{type(seed).__name__} {seed!r}"
            )
        return CanvasBatch(*self._task.canvases(self._task.sample(rng, count)))

    def __repr__(self) -> str:
        size = "fresh" if self.fixed_size is None else f"{self.fixed_size} fixed"
        return f"CanvasSource({self.config!r}, {size} canvases of {self.shape}, device={self.device})"
