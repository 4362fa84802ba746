r"""The glimpse sensor (retina): multi-resolution patches around a location, batched.

This is the one implementation of the glimpse in the project: the single environment,
the vector environment, the agents and the visualisations all call it. This module is
its geometry (where the patches of every scale lie) and its one entry point,
:class:`Retina`; the pixels are read by two backends, :mod:`glimpse_env.retina_integral`
(box sums of integral images, any cells) and :mod:`glimpse_env.retina_padded` (crops of
padded images, one-pixel cells), which give the same bits.

Coordinates
-----------
A location ``l = (x, y)`` in ``[-1, 1]^2``: ``x`` is horizontal (columns), ``y`` vertical
(rows); ``(-1, -1)`` is the top-left corner of the canvas, ``(0, 0)`` its centre and
``(1, 1)`` its bottom-right corner. For a canvas of ``H`` rows and ``W`` columns
(square or not) the location maps to the continuous pixel position, with pixel edges at
integers so that pixel ``c`` spans ``[c, c + 1)``,

.. math::  p_x = W/2 + x \cdot W/2, \qquad p_y = H/2 + y \cdot H/2

(that is ``(x + 1) / 2 * W``, evaluated in float64 as written: one product, one sum).

Scale ``i`` (0-based) is the square of side ``S_i = g \cdot s^i`` pixels whose first
column and first row are

.. math::  c_0 = \lfloor p_x + (1/2 - S_i / 2) \rfloor, \qquad r_0 = \lfloor p_y + (1/2 - S_i / 2) \rfloor ,

that is the square centred on ``p`` with its corner rounded half up to the pixel grid
(float64; ``1/2 - S_i/2`` is exact, so this is one rounding). It is split into
``g x g`` cells of ``s^i x s^i`` pixels (cell edges ``c_0 + j s^i``) and every cell
is averaged, so each scale comes out as ``g x g``. Pixels outside the canvas read as
zero. ``uint8`` images are divided by 255; float images are taken as they are (expected
in ``[0, 1]``).

Backends
--------
Every cell mean is a box sum, four lookups in the image's integral image
(:meth:`Retina.integral`, :meth:`Retina.from_integral`; torch tensors on any device, or
numpy arrays). When every cell is one pixel (one scale, or a scale factor of 1) a glimpse
is a crop: :meth:`Retina.padded` puts zeros around the uint8 images and
:meth:`Retina.from_padded` reads each crop with one gather.

The canvas does not change during an episode, so the environments prepare it once per
episode (:meth:`Retina.prepare`: padded images or the integral image) and take every
glimpse from that (:meth:`Retina.glimpse`); :meth:`Retina.__call__` does both. On CPU
tensors the backends keep every torch operation on the calling thread ("Threads" in
:mod:`glimpse_env.devices`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from glimpse_env.devices import SERIAL_ELEMENTS as SERIAL_ELEMENTS
from glimpse_env.devices import Array
from glimpse_env.retina_integral import IntegralBackend, IntegralImage, integral_image, table_type
from glimpse_env.retina_padded import CropBackend, PaddedImage, padded_image
from glimpse_env.validation import check_int

__all__ = ["IntegralImage", "PaddedImage", "Retina", "RetinaConfig"]

#: Largest side of a retina scale, ``patch_size * scale_factor**(n_scales - 1)``, in pixels:
#: far larger than any image, and small enough that every edge and box sum is exact.
MAX_PATCH_SIDE = 2**20


class RetinaConfig(NamedTuple):
    """The geometry of a retina."""

    patch_size: int
    """``g``: side of each output patch, in cells."""
    n_scales: int
    """``k``: number of scales."""
    scale_factor: int
    """``s``: each scale covers ``s`` times the side of the previous one."""


class CanvasGeometry(NamedTuple):
    """The constants of a retina's scales on a canvas of one size, as arrays of one kind
    (torch on a device, or numpy): where the cells of a glimpse lie, from its location."""

    first: Array
    """``(k,)`` float64: ``1/2 - S_i/2``; the first edge of scale ``i`` is ``floor(p + first[i])``."""
    steps: Array
    """``(k, g + 1)`` int64: ``j * s**i``, edge ``j`` of scale ``i`` from its first edge."""
    half: Array
    """``(2,)`` float64: ``(W / 2, H / 2)``."""

    def first_edges(self, locations: Array, out: Array | None = None) -> Array:
        """First column and row of every scale at ``locations`` ``(B, 2)``: ``(B, 2, k)``
        float64 holding integers, unclamped (``c_0`` and ``r_0`` of the module docstring),
        of the locations' kind; ``out``, if given, is the array to write into."""
        xp = torch if isinstance(locations, torch.Tensor) else np
        # float32 locations promote exactly to float64 here (half is float64)
        centre = self.half + locations * self.half  # (B, 2) = (p_x, p_y)
        first = xp.add(centre[:, :, None], self.first, out=out)
        return xp.floor(first, out=first)


def _batched(images: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` or ``(B, C, H, W)`` images as ``(B, C, H, W)``, or a clear error."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4:
        raise ValueError(f"images must be (B, H, W) or (B, C, H, W), got shape {tuple(images.shape)}")
    return images


def _like(value: np.ndarray, like: Array) -> Array:
    """``value`` as the same kind of array as ``like`` (and on its device)."""
    if isinstance(like, torch.Tensor):
        return torch.from_numpy(value).to(like.device)
    return value


class Retina:
    r"""Multi-resolution glimpse sensor :math:`\rho(x, l)` (Mnih et al. 2014).

    Args:
        patch_size: ``g``, side of every output patch (cells). At least 1.
        n_scales: ``k``, number of concentric scales. At least 1.
        scale_factor: ``s``, integer ratio between the sides of successive scales. At least 1.

    Sizes are integers (Python, numpy or torch scalars): another type raises ``TypeError``,
    a value below 1 ``ValueError``, and so does a largest scale ``g * s**(k - 1)`` above
    :data:`MAX_PATCH_SIDE` (``2**20`` pixels).

    Calling the retina on images ``(B, H, W)`` and locations ``(B, 2)`` returns
    ``(B, k, g, g)`` float32 in ``[0, 1]``; on images ``(B, C, H, W)`` it returns
    ``(B, k * C, g, g)`` ordered scale-major (all channels of scale 0, then of scale 1, ...).

    A retina keeps its intermediate buffers between calls of the same batch shape (every
    output is a new array), so one instance must not be called from two threads at once.
    Its output carries no gradient: glimpses are observations, not a differentiable op.
    """

    def __init__(self, patch_size: int, n_scales: int = 1, scale_factor: int = 2) -> None:
        patch_size = check_int(patch_size, "patch_size", low=1)
        n_scales = check_int(n_scales, "n_scales", low=1)
        scale_factor = check_int(scale_factor, "scale_factor", low=1)
        # the largest scale's side g * s**(k - 1), bounded before it is computed in full
        too_large = scale_factor > 1 and (n_scales - 1) * (scale_factor.bit_length() - 1) > 64
        if too_large or patch_size * scale_factor ** (n_scales - 1) > MAX_PATCH_SIDE:
            raise ValueError(
                f"the largest scale of Retina(patch_size={patch_size}, n_scales={n_scales}, "
                f"scale_factor={scale_factor}) would be patch_size * scale_factor**(n_scales - 1) "
                f"pixels wide, more than MAX_PATCH_SIDE = 2**20 (far beyond any image, and the limit "
                f"that keeps the pixel arithmetic exact); use fewer scales or a smaller scale_factor"
            )
        self.config = RetinaConfig(patch_size, n_scales, scale_factor)
        self.patch_size = patch_size
        self.n_scales = n_scales
        self.scale_factor = scale_factor
        #: cell side of each scale in pixels, ``s**i``
        self.cell_sizes: tuple[int, ...] = tuple(scale_factor**i for i in range(n_scales))
        #: patch side of each scale in pixels, ``g * s**i``
        self.patch_sides: tuple[int, ...] = tuple(patch_size * b for b in self.cell_sizes)
        #: every cell of every scale is one pixel (one scale, or a scale factor of 1): the
        #: glimpses are crops, which :meth:`padded` / :meth:`from_padded` read without sums
        self.pixel_cells: bool = n_scales == 1 or scale_factor == 1
        #: rows and columns of zeros :meth:`padded` puts around an image: the patch side, so
        #: that every crop, its first edges clamped, lies inside the padded image
        self.pad: int = patch_size
        self._start_caches()

    def _start_caches(self) -> None:
        """Empty caches: per device and canvas size the geometry's constants, per table or
        padded shape the backends' plans (constants and reused work buffers)."""
        self._geometries: dict[tuple[object, ...], CanvasGeometry] = {}
        self._integral = IntegralBackend(self)
        self._crops = CropBackend(self)

    def __repr__(self) -> str:
        g, k, s = self.config
        return f"Retina(patch_size={g}, n_scales={k}, scale_factor={s})"

    def __getstate__(self) -> dict[str, Any]:
        """The retina without its caches, for ``copy``, ``pickle`` and ``cloudpickle``.

        A plan's arrays are views of shared buffers (``cols`` of ``edges``, ``corners_flat``
        of ``corners``, ...); a copy would turn every view into an independent array, and the
        copied retina would write one array and read another: wrong glimpses, silently. The
        caches are dropped instead, and the copy builds its own on its first call.
        """
        state = self.__dict__.copy()
        for cache in ("_geometries", "_integral", "_crops"):
            del state[cache]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A copy (see :meth:`__getstate__`), with caches of its own."""
        self.__dict__.update(state)
        self._start_caches()

    # ------------------------------------------------------------------ geometry
    def canvas_geometry(self, like: Array, height: int, width: int) -> CanvasGeometry:
        """The constants of the scales on a ``height x width`` canvas, of ``like``'s kind
        (torch on its device, or numpy); made once per kind and size."""
        key = (like.device if isinstance(like, torch.Tensor) else None, height, width)
        found = self._geometries.get(key)
        if found is None:
            cells = np.array(self.cell_sizes, dtype=np.int64)[:, None]
            steps = np.arange(self.patch_size + 1, dtype=np.int64)[None, :]
            found = CanvasGeometry(
                first=_like(0.5 - self.patch_size * cells[:, 0].astype(np.float64) / 2, like),
                steps=_like(steps * cells, like),
                half=_like(np.array([width / 2, height / 2]), like),
            )
            self._geometries[key] = found
        return found

    def first_edges(self, locations: Array, height: int, width: int, *, out: Array | None = None) -> Array:
        """First column and row of every scale: ``(B, 2, k)`` float64 holding integers.

        ``[:, 0, i]`` is ``c_0`` and ``[:, 1, i]`` is ``r_0`` of scale ``i`` (see the module
        docstring), unclamped. ``locations`` is ``(B, 2)``, torch or numpy; ``out``, if
        given, is a float64 array of the result's shape and kind to write into.
        """
        return self.canvas_geometry(locations, height, width).first_edges(locations, out)

    def edges(self, locations: Array, height: int, width: int) -> Array:
        """Unclamped pixel edges of every cell: ``(B, 2, k, g + 1)`` float64 holding integers.

        ``[:, 0]`` are column edges and ``[:, 1]`` row edges: cell ``(j, m)`` of scale ``i``
        spans rows ``e[:, 1, i, j]:e[:, 1, i, j + 1]`` and columns
        ``e[:, 0, i, m]:e[:, 0, i, m + 1]``.
        """
        steps = self.canvas_geometry(locations, height, width).steps
        return self.first_edges(locations, height, width)[..., None] + steps

    def boxes(self, locations: Array, height: int, width: int) -> Array:
        """Pixel box of every scale, for drawing: ``(B, k, 4)`` ``(c0, r0, c1, r1)`` float64.

        Scale ``i`` covers columns ``c0:c1`` and rows ``r0:r1`` (end exclusive), unclamped:
        part of a box may lie outside the canvas.
        """
        first = self.first_edges(locations, height, width)  # (B, 2, k)
        sides = _like(np.array(self.patch_sides, dtype=np.float64), first)
        xp = torch if isinstance(first, torch.Tensor) else np
        return xp.stack((first[:, 0], first[:, 1], first[:, 0] + sides, first[:, 1] + sides), -1)

    # ------------------------------------------------------------------ integral images
    @staticmethod
    def table_type(image_dtype: torch.dtype, height: int, width: int) -> tuple[torch.dtype, float]:
        """``(dtype, scale)`` of the integral image of ``height x width`` images of ``image_dtype``.

        Exact sums: int32 for uint8 images (int64 beyond 8 million pixels), float64 for float
        images; ``scale`` turns a pixel mean into ``[0, 1]``.
        """
        return table_type(image_dtype, height, width)

    @torch.no_grad()
    def integral(self, images: torch.Tensor, *, out: torch.Tensor | None = None) -> IntegralImage:
        """Integral images of ``(B, H, W)`` or ``(B, C, H, W)`` images, uint8 or float.

        ``out``, if given, is the ``(B, C, H + 1, W + 1)`` tensor of :meth:`table_type`'s
        dtype to build the tables in (a buffer kept across calls: a fresh multi-megabyte
        table per call costs more in page faults than the sums themselves).
        """
        return integral_image(_batched(images), out=out)

    def from_integral(self, integral: IntegralImage, locations: Array) -> Array:
        """Glimpses from integral images.

        Args:
            integral: tables ``(B, C, H + 1, W + 1)``, torch or numpy.
            locations: ``(B, 2)``, ``(x, y)`` in ``[-1, 1]``, of the same kind (and device).

        Returns:
            ``(B, k * C, g, g)`` float32 in ``[0, 1]`` (``(B, k, g, g)`` for ``C = 1``),
            of the same kind as the table.
        """
        return self._integral.glimpses(integral, locations)

    # ------------------------------------------------------------------ padded images
    @torch.no_grad()
    def padded(self, images: torch.Tensor, *, out: torch.Tensor | None = None) -> PaddedImage:
        """``(B, H, W)`` or ``(B, C, H, W)`` uint8 images inside :attr:`pad` rows and columns
        of zeros, for :meth:`from_padded` (a retina of :attr:`pixel_cells` only).

        ``out``, if given, is the ``(B, C, H + 2P, W + 2P)`` uint8 tensor on the images'
        device to write into, its border zero (a buffer kept across calls: only the inside
        is written).
        """
        if not self.pixel_cells:
            raise ValueError(
                f"{self!r} has cells of more than one pixel, which need box sums: use integral() "
                f"and from_integral() (padded() serves one scale, or a scale_factor of 1)"
            )
        return padded_image(_batched(images), self.pad, out=out)

    def from_padded(self, padded: PaddedImage, locations: torch.Tensor) -> torch.Tensor:
        """Glimpses from :meth:`padded` images, bit for bit those of :meth:`from_integral`.

        With one-pixel cells a glimpse is a crop: one gather, no box sums and no integral
        image to build per episode.

        Args:
            padded: images ``(B, C, H + 2P, W + 2P)`` from :meth:`padded`.
            locations: ``(B, 2)``, ``(x, y)`` in ``[-1, 1]``, on the same device.

        Returns:
            ``(B, k * C, g, g)`` float32 in ``[0, 1]`` (every scale the same crop).
        """
        return self._crops.glimpses(padded, locations)

    # ------------------------------------------------------------------ either
    def prepare(
        self, images: torch.Tensor, *, out: torch.Tensor | None = None
    ) -> IntegralImage | PaddedImage:
        """What the glimpses of ``images`` are read from, built once per episode.

        :meth:`padded` images for uint8 images and :attr:`pixel_cells` (a glimpse is then a
        crop), else :meth:`integral` images; ``out`` is the buffer of that method.
        """
        if self.pixel_cells and images.dtype == torch.uint8:
            return self.padded(images, out=out)
        return self.integral(images, out=out)

    def glimpse(self, prepared: IntegralImage | PaddedImage, locations: Array) -> Array:
        """Glimpses ``(B, k * C, g, g)`` at ``locations`` ``(B, 2)`` from :meth:`prepare`'s result."""
        if isinstance(prepared, PaddedImage):
            assert isinstance(locations, torch.Tensor)
            return self.from_padded(prepared, locations)
        return self.from_integral(prepared, locations)

    def __call__(self, images: torch.Tensor, locations: torch.Tensor) -> torch.Tensor:
        """Glimpses of ``images`` ``(B, H, W)`` / ``(B, C, H, W)`` at ``locations`` ``(B, 2)``."""
        if locations.dim() != 2 or locations.shape[1] != 2 or locations.shape[0] != images.shape[0]:
            raise ValueError(
                f"locations must be (B, 2) with B = {images.shape[0]} images, "
                f"got shape {tuple(locations.shape)}"
            )
        glimpses = self.glimpse(self.prepare(images), locations)
        assert isinstance(glimpses, torch.Tensor)
        return glimpses
