"""Canvases: the images an episode shows, made from dataset images by pure, seeded rules.

Three variants, shared by the environments and the supervised baselines so that every
model sees exactly the same images:

* ``centred``: the dataset image as it is (28x28 for MNIST);
* ``translated`` (Mnih et al. 2014): the image at a uniformly random position inside a
  larger canvas (60x60 in the paper); the digit always lies fully inside;
* ``cluttered``: a translated image plus ``n_clutter`` pieces of clutter, each a
  ``clutter_size`` square cropped at a random position from a random *other* image of
  the same split and placed at a random position of the canvas. Pieces and digit are
  combined by the pixelwise maximum. The study's setting is a 40x40 canvas with 5 pieces
  of 5x5; the RAM paper's are 60x60 with 4 pieces of 8x8 and 100x100 with 8 of 8x8.

The images are MNIST's 28x28 by default, or those of an
:class:`~glimpse_env.images.ImageDataset` (any size, grayscale or RGB; the spec's
``image_height`` and ``image_width``). Grayscale canvases are ``(B, H, W)``; RGB ones
``(B, C, H, W)``, channels first, every channel placed and cluttered alike (a clutter
piece is the same crop of every channel; the maximum is taken channel by channel).

Randomness
----------
Every random choice of a canvas is drawn from a 64-bit *canvas key* by a counter-based
generator (SplitMix64 over ``key + j * golden_ratio``, draw ``j`` reduced modulo the
range), so making a canvas is a pure function of its key and its image index, batched
with no per-canvas Python work. For the fixed splits the key is a hash of (variant,
dataset seed, split, canvas index): canvas ``i`` of ``val``/``test`` shows dataset image
``i`` and is identical on every machine and in every process. Fresh training canvases
take their key and image index from the environment's ``np_random``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from glimpse_env.validation import check_int

#: size of the MNIST and Fashion-MNIST images (the default image size of a :class:`CanvasSpec`)
IMAGE_SIZE = 28

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SPLIT_CODES = {"train": 1, "val": 2, "test": 3}

VARIANTS: tuple[str, ...] = ("centred", "translated", "cluttered")


def splitmix64(x: np.ndarray | np.uint64) -> np.ndarray:
    """SplitMix64 finaliser of ``x + golden`` (uint64, element-wise, wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def random_draws(keys: np.ndarray, count: int) -> np.ndarray:
    """``(B, count)`` uint64: the ``count`` random words of each canvas key ``(B,)``."""
    counters = np.arange(1, count + 1, dtype=np.uint64) * _GOLDEN
    with np.errstate(over="ignore"):
        return splitmix64(np.asarray(keys, dtype=np.uint64)[:, None] + counters[None, :])


#: Largest canvas side accepted, in pixels: five times the largest canvas of the RAM paper
#: (100x100). A canvas and its integral image take 5 bytes a pixel, 1.3 MB at 512x512, per
#: sub-environment (335 MB for 256 of them); larger canvases would make every reset cost
#: seconds and gigabytes with no research setting that needs them.
MAX_CANVAS_SIDE = 512

#: Most clutter pieces per canvas: sixteen times the most the RAM paper uses (8). Every
#: piece is drawn, cropped and scattered at each reset (at 256 sub-environments, 128
#: pieces of 28x28 already index 200 MB per reset).
MAX_CLUTTER = 128


@dataclass(frozen=True)
class CanvasSpec:
    """How a canvas is made from a dataset image.

    Args:
        variant: ``"centred"``, ``"translated"`` or ``"cluttered"``.
        height, width: canvas size in pixels: the image's size for ``centred`` (28x28),
            otherwise from the image's size to :data:`MAX_CANVAS_SIDE` (512).
        n_clutter: number of clutter pieces, 1 to :data:`MAX_CLUTTER` (128)
            (``cluttered`` only).
        clutter_size: side of each clutter piece, 1 to the image's shorter side (28)
            (``cluttered`` only).
        image_height, image_width: size of the dataset images, 1 to 512 (default 28x28,
            MNIST's; an :class:`~glimpse_env.images.ImageDataset`'s own otherwise).

    Sizes are integers (Python, numpy or torch; stored as Python ints); a wrong type
    raises ``TypeError``, a wrong value ``ValueError``.
    """

    variant: str
    height: int = IMAGE_SIZE
    width: int = IMAGE_SIZE
    n_clutter: int = 0
    clutter_size: int = 0
    image_height: int = IMAGE_SIZE
    image_width: int = IMAGE_SIZE

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown canvas variant {self.variant!r}; expected one of {VARIANTS}")
        for name in ("height", "width", "image_height", "image_width"):
            side = check_int(
                getattr(self, name),
                f"canvas {name}" if name in ("height", "width") else name,
                low=0 if name in ("height", "width") else 1,
                high=MAX_CANVAS_SIDE,
                why=" (MAX_CANVAS_SIDE, 5x the largest canvas of the RAM paper)",
            )
            object.__setattr__(self, name, side)
        for name in ("n_clutter", "clutter_size"):
            object.__setattr__(self, name, check_int(getattr(self, name), name, low=0))
        ih, iw = self.image_shape
        if self.variant == "centred" and (self.height, self.width) != (ih, iw):
            raise ValueError(
                f"a centred canvas is the {ih}x{iw} image itself, got "
                f"{self.height}x{self.width}; use variant='translated' for a larger canvas"
            )
        if self.height < ih or self.width < iw:
            raise ValueError(
                f"canvas {self.height}x{self.width} is smaller than the {ih}x{iw} image it must hold; "
                f"use a canvas of at least {ih}x{iw}"
            )
        if self.variant == "cluttered":
            if self.n_clutter < 1:
                raise ValueError("a cluttered canvas needs n_clutter >= 1")
            if self.n_clutter > MAX_CLUTTER:
                raise ValueError(
                    f"n_clutter must be at most {MAX_CLUTTER} (MAX_CLUTTER, 16x the most the RAM "
                    f"paper uses; every piece is drawn and placed at every reset), got {self.n_clutter}"
                )
            if not 1 <= self.clutter_size <= min(ih, iw):
                raise ValueError(
                    f"clutter_size must be in [1, {min(ih, iw)}] (a crop of a {ih}x{iw} dataset image), "
                    f"got {self.clutter_size}"
                )
        elif self.n_clutter or self.clutter_size:
            raise ValueError(
                f"n_clutter and clutter_size apply to variant='cluttered' only, not {self.variant!r}"
            )

    @classmethod
    def centred(cls) -> CanvasSpec:
        """The 28x28 dataset image as it is."""
        return cls("centred")

    @classmethod
    def translated(cls, size: int = 60) -> CanvasSpec:
        """The image at a random position of a ``size x size`` canvas."""
        return cls("translated", size, size)

    @classmethod
    def cluttered(cls, size: int = 40, n_clutter: int = 5, clutter_size: int = 5) -> CanvasSpec:
        """The image at a random position of a ``size x size`` canvas, with clutter."""
        return cls("cluttered", size, size, n_clutter, clutter_size)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(image_height, image_width)``: the size of the dataset images."""
        return (self.image_height, self.image_width)

    @property
    def n_draws(self) -> int:
        """Random words used per canvas: 2 for the digit position, 5 per clutter piece."""
        return 0 if self.variant == "centred" else 2 + 5 * self.n_clutter

    def code(self, dataset: str) -> int:
        """A stable 32-bit identifier of (dataset, variant, sizes), part of every canvas key.

        ``dataset`` is the dataset's name (``"mnist"``, or an
        :class:`~glimpse_env.images.ImageDataset`'s ``name``); images of another size than
        28x28 add their size.
        """
        text = f"{dataset}|{self.variant}|{self.height}x{self.width}|{self.n_clutter}x{self.clutter_size}"
        if self.image_shape != (IMAGE_SIZE, IMAGE_SIZE):
            text += f"|{self.image_height}x{self.image_width}"
        return zlib.crc32(text.encode())


def fixed_keys(
    spec: CanvasSpec, *, dataset: str, dataset_seed: int, split: str, indices: np.ndarray
) -> np.ndarray:
    """Canvas keys ``(B,)`` uint64 of canvases ``indices`` of a fixed split: a pure hash."""
    if split not in _SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}")
    h = splitmix64(np.uint64(spec.code(dataset)))
    h = splitmix64(h ^ np.uint64(dataset_seed % 2**64))
    h = splitmix64(h ^ np.uint64(_SPLIT_CODES[split]))
    return splitmix64(h ^ np.asarray(indices, dtype=np.uint64))


def compose(
    spec: CanvasSpec, images: torch.Tensor, dataset_indices: torch.Tensor, keys: np.ndarray
) -> torch.Tensor:
    """Make canvases.

    Args:
        spec: the variant.
        images: ``(N, h, w)`` (grayscale) or ``(N, C, h, w)`` (channels first) uint8, all
            images of the split (clutter comes from them); ``h x w`` is the spec's image size.
        dataset_indices: ``(B,)`` int64 on ``images``' device: the image each canvas shows.
        keys: ``(B,)`` uint64 canvas keys (see :func:`fixed_keys`).

    Returns:
        ``(B, H, W)`` (or ``(B, C, H, W)``) uint8 canvases on ``images``' device.

    On the CPU the canvases are made with numpy, on the calling thread (torch would split
    every operation above a few thousand pixels across its threads, which stalls when
    other processes hold the cores: see :mod:`glimpse_env.retina`, "Threads"); on another
    device by the same steps in torch. Both give the same bits.
    """
    if tuple(images.shape[-2:]) != spec.image_shape or images.dim() not in (3, 4):
        raise ValueError(
            f"images must be (N, h, w) or (N, C, h, w) with h x w = {spec.image_height}x{spec.image_width}, "
            f"the spec's image size; got shape {tuple(images.shape)}"
        )
    if images.is_cpu:
        pixels = np.take(images.numpy(), dataset_indices.numpy(), axis=0)  # (B, [C,] h, w)
        if spec.variant != "centred":
            pixels = _place(spec, pixels, images.numpy(), dataset_indices.numpy(), keys)
        return torch.from_numpy(pixels)
    digits = torch.index_select(images, 0, dataset_indices)  # (B, [C,] h, w); far faster than images[idx]
    if spec.variant == "centred":
        return digits
    return _place(spec, digits, images, dataset_indices, keys)


def _place(spec: CanvasSpec, digits: Any, images: Any, dataset_indices: Any, keys: np.ndarray) -> Any:
    """The canvases of the ``translated`` and ``cluttered`` variants from their ``digits``: numpy
    arrays or torch tensors (the result is of the same kind)."""
    is_torch = isinstance(images, torch.Tensor)
    device = images.device if is_torch else None

    def arange(count: int) -> Any:
        return torch.arange(count, device=device) if is_torch else np.arange(count, dtype=np.int64)

    n_images = images.shape[0]
    channels = 1 if images.ndim == 3 else int(images.shape[1])

    def block(rows: int, cols: int, row_stride: int, plane: int) -> Any:
        """``(C * rows * cols,)`` flat offsets of a ``rows x cols`` rectangle in rows of
        ``row_stride``, in every channel (channels ``plane`` apart), channel-major."""
        offsets = arange(rows)[:, None] * row_stride + arange(cols)[None, :]
        if channels > 1:
            offsets = arange(channels)[:, None, None] * plane + offsets[None]
        return offsets.reshape(-1)

    batch = dataset_indices.shape[0]
    h, w, size, n = spec.height, spec.width, spec.clutter_size, spec.n_clutter
    ih, iw = spec.image_shape
    # every draw reduced to its range at once: (B, 2 + 5n) int64
    ranges = np.array(
        [h - ih + 1, w - iw + 1]
        + [max(n_images - 1, 1), ih - size + 1, iw - size + 1, h - size + 1, w - size + 1] * n,
        dtype=np.uint64,
    )
    ints: Any = (random_draws(keys, spec.n_draws) % ranges).astype(np.int64)
    if is_torch:
        ints = torch.from_numpy(ints).to(device)
    starts = arange(batch) * (channels * h * w)  # where each canvas starts, flattened
    canvas: Any
    if is_torch:
        canvas = torch.zeros(batch * channels * h * w, dtype=torch.uint8, device=device)
    else:
        canvas = np.zeros(batch * channels * h * w, dtype=np.uint8)
    digit_at = starts + ints[:, 0] * w + ints[:, 1]  # (B,): top-left pixel of the digit
    where = (digit_at[:, None] + block(ih, iw, w, h * w)).reshape(-1)
    if is_torch:
        canvas.scatter_(0, where, digits.reshape(-1))
    else:
        canvas[where] = digits.reshape(-1)
    if n:
        # another image of the split: shifted by 1..N-1, so never the digit itself
        source = (dataset_indices.reshape(-1, 1) + 1 + ints[:, 2::5]) % n_images  # (B, n)
        crop_at = source * (channels * ih * iw) + ints[:, 3::5] * iw + ints[:, 4::5]  # (B, n)
        crop_pixels = crop_at[..., None] + block(size, size, iw, ih * iw)  # (B, n, C*c*c), into all images
        crops = torch.take(images, crop_pixels) if is_torch else np.take(images, crop_pixels)
        piece_at = starts[:, None] + ints[:, 5::5] * w + ints[:, 6::5]  # (B, n)
        where = (piece_at[..., None] + block(size, size, w, h * w)).reshape(-1)
        # pixelwise maximum with the digit and with each other, overlaps included
        if is_torch:
            canvas.scatter_reduce_(0, where, crops.reshape(-1), reduce="amax")
        else:
            np.maximum.at(canvas, where, crops.reshape(-1))
    return canvas.reshape(batch, h, w) if images.ndim == 3 else canvas.reshape(batch, channels, h, w)
