"""The retina's padded-crop backend: glimpses of one-pixel cells, read as crops.

When every cell is one pixel (one scale, or a scale factor of 1) a glimpse is a crop, and
box sums are wasted work: :func:`padded_image` puts ``P`` rows and columns of zeros around
the uint8 images (``P`` = :attr:`Retina.pad <glimpse_env.retina.Retina.pad>`, the patch
side) and :class:`CropBackend` reads each crop with one gather, the same bits as the
integral image gives (:mod:`glimpse_env.retina_integral`): the first edges are worked out
as the retina's geometry works them out (for float32 locations, by one search among
precomputed thresholds, :func:`_crop_thresholds`), and the clamp moves a crop that lies
wholly outside the image into the zeros.

:meth:`Retina.padded <glimpse_env.retina.Retina.padded>` and :meth:`Retina.from_padded
<glimpse_env.retina.Retina.from_padded>` are its entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from glimpse_env.devices import row_blocks

if TYPE_CHECKING:
    from glimpse_env.retina import CanvasGeometry, Retina

__all__ = ["CropBackend", "PaddedImage", "padded_image"]


class PaddedImage(NamedTuple):
    """Zero-padded uint8 images for a retina of one-pixel cells (see :meth:`Retina.padded
    <glimpse_env.retina.Retina.padded>`)."""

    canvas: torch.Tensor
    """``(B, C, H + 2P, W + 2P)`` uint8: the images with ``P`` rows and columns of zeros
    around them (``P`` = :attr:`Retina.pad <glimpse_env.retina.Retina.pad>`)."""
    size: tuple[int, int]
    """``(H, W)`` of the images inside the padding."""


def padded_image(images: torch.Tensor, pad: int, *, out: torch.Tensor | None = None) -> PaddedImage:
    """``(B, C, H, W)`` uint8 images inside ``pad`` rows and columns of zeros.

    ``out``, if given, is the ``(B, C, H + 2P, W + 2P)`` uint8 tensor on the images'
    device to write into, its border zero (only the inside is written).
    """
    if images.dtype != torch.uint8:
        raise TypeError(f"padded() takes uint8 images, got {images.dtype}; use integral() for others")
    b, c, height, width = images.shape
    p = pad
    shape = (b, c, height + 2 * p, width + 2 * p)
    if out is None and images.is_cpu:  # numpy zeros on one thread (see "Threads" in glimpse_env.devices)
        out = torch.from_numpy(np.zeros(shape, dtype=np.uint8))
    elif out is None:
        out = torch.zeros(shape, dtype=torch.uint8, device=images.device)
    elif tuple(out.shape) != shape or out.dtype != torch.uint8 or out.device != images.device:
        raise ValueError(
            f"out must be a uint8 tensor of shape {shape} on {images.device}, "
            f"got {out.dtype} {tuple(out.shape)} on {out.device}"
        )
    inside = out[:, :, p : p + height, p : p + width]
    if out.is_cpu:  # numpy copies on one thread (see "Threads" in glimpse_env.devices)
        inside.numpy()[...] = images.numpy()
    else:
        inside.copy_(images)
    return PaddedImage(out, (height, width))


def _order_key(values: np.ndarray) -> np.ndarray:
    """float32 ``values`` as int64 keys in the same order (-0 and +0 both 0)."""
    bits = np.asarray(values, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def _from_order_key(keys: np.ndarray) -> np.ndarray:
    """The float32 values of :func:`_order_key` keys."""
    bits = np.where(keys < 0, (-keys) | 0x80000000, keys)
    return bits.astype(np.uint32).view(np.float32)


def _crop_thresholds(geometry: CanvasGeometry, axis: int, *, low: int, high: int) -> np.ndarray:
    """Where a crop's first edge steps up, as float32 locations.

    ``t[i]`` (``i < high - low``) is the smallest float32 ``x`` whose first edge along
    ``axis`` (0: columns, 1: rows) of the first scale of ``geometry`` (numpy), worked out by
    :meth:`~glimpse_env.retina.CanvasGeometry.first_edges` itself, is at least
    ``low + 1 + i``. The edge is monotone in ``x``, so the number of thresholds at or below
    ``x`` (``torch.bucketize(x, t, right=True)``) is that edge clamped to ``[low, high]``,
    minus ``low``: for float32 locations, one search instead of the arithmetic. Found by
    bisection over the ordered float32 values (a test checks them against the arithmetic on
    both sides of every threshold).
    """
    targets = np.arange(low + 1, high + 1, dtype=np.float64)
    largest = float(np.finfo(np.float32).max)
    lo, hi = (np.full(targets.shape, key) for key in _order_key(np.array([-largest, largest])))

    def edge(keys: np.ndarray) -> np.ndarray:
        locations = np.zeros((keys.shape[0], 2), dtype=np.float32)
        locations[:, axis] = _from_order_key(keys)
        edges = geometry.first_edges(locations)
        assert isinstance(edges, np.ndarray)  # numpy locations and geometry
        return edges[:, axis, 0]

    if not (edge(lo) < targets).all() or not (edge(hi) >= targets).all():
        raise ValueError(f"no float32 thresholds for axis {axis} of {geometry} in [{low}, {high}]")
    while (lo < hi).any():  # about 32 rounds: the float32 values are fewer than 2**33
        mid = (lo + hi) // 2
        reached = edge(mid) >= targets
        hi = np.where(reached, mid, hi)
        lo = np.where(reached, lo, mid + 1)
    return _from_order_key(hi)


def _search(thresholds: torch.Tensor, values: torch.Tensor, *, out: torch.Tensor) -> None:
    """``out`` = the number of ``thresholds`` at or below each of ``values``
    (``torch.bucketize(values, thresholds, right=True)``).

    On CPU tensors numpy's ``searchsorted`` does it on the calling thread: torch splits a
    search of more than a few hundred values across its threads, whatever their number
    (see "Threads" in :mod:`glimpse_env.devices`).
    """
    if values.is_cpu:
        out.numpy()[...] = np.searchsorted(thresholds.numpy(), values.numpy(), side="right")
    else:
        torch.bucketize(values, thresholds, right=True, out=out)


class _CropPlan(NamedTuple):
    """The constants and buffers of :meth:`CropBackend.glimpses` for one padded shape and device."""

    key: tuple[object, ...]  # (device, padded shape)
    offset: torch.Tensor  # (2,) float64: 1/2 - g/2, from a glimpse's centre to its first edges
    half: torch.Tensor  # (2,) float64: (W / 2, H / 2)
    col_thresholds: torch.Tensor  # (W + P,) float32: see _crop_thresholds
    row_thresholds: torch.Tensor  # (H + P,) float32: the same for rows (col_thresholds if H == W)
    first: torch.Tensor  # (B, 2) float64: first column and row
    first_int: torch.Tensor  # (B, 2) int64: the same, clamped to [-P, W] and [-P, H], plus P
    cols: torch.Tensor  # (B,) view of first_int: the columns
    rows: torch.Tensor  # (B,) view of first_int: the rows
    flat: torch.Tensor  # (B,) int64: rows * (W + 2P) + cols
    cells: torch.Tensor  # (1, 1, g g) int64: flat index of every cell of a crop at (0, 0) of the padded image
    cell_index: torch.Tensor  # (B, 1, g g) int64: flat index of every cell in its padded image
    scale: torch.Tensor  # () float32: 1/255
    blocks: tuple[slice, ...] | None  # see glimpse_env.devices.row_blocks


class CropBackend:
    """Glimpses of one retina of one-pixel cells from padded images, with the plan of the
    last padded shape of each device.

    A plan holds the buffers of its glimpses, so one backend must not be used from two
    threads at once.

    Args:
        retina: the retina whose crops it reads (its sizes and
            :meth:`~glimpse_env.retina.Retina.canvas_geometry`).
    """

    def __init__(self, retina: Retina) -> None:
        self.retina = retina
        self._plans: dict[object, _CropPlan] = {}

    def _plan(self, padded: PaddedImage) -> _CropPlan:
        canvas = padded.canvas
        key = (canvas.device, tuple(canvas.shape))
        found = self._plans.get(canvas.device)
        if found is not None and found.key == key:
            return found
        b, _, _, padded_width = canvas.shape
        height, width = padded.size
        g, p, device = self.retina.patch_size, self.retina.pad, canvas.device
        half = torch.tensor([width / 2, height / 2], dtype=torch.float64, device=device)
        steps = torch.arange(g, dtype=torch.int64, device=device)
        # cell (i, j) of a crop whose first cell is at (r0, c0), in padded coordinates
        # (r0 + P, c0 + P): flat index (r0 + P + i) * W' + c0 + P + j
        cells = (steps[:, None] * padded_width + steps[None, :]).reshape(1, 1, g * g)
        first_int = torch.empty((b, 2), dtype=torch.int64, device=device)

        geometry = self.retina.canvas_geometry(
            np.empty(0), height, width
        )  # numpy: the search runs on the host

        def thresholds(axis: int, side: int) -> torch.Tensor:
            return torch.from_numpy(_crop_thresholds(geometry, axis, low=-p, high=side)).to(device)

        col_thresholds = thresholds(0, width)
        found = _CropPlan(
            key=key,
            offset=torch.full((2,), 0.5 - g / 2, dtype=torch.float64, device=device),
            half=half,
            col_thresholds=col_thresholds,
            row_thresholds=col_thresholds if height == width else thresholds(1, height),
            first=torch.empty((b, 2), dtype=torch.float64, device=device),
            first_int=first_int,
            cols=first_int[:, 0],
            rows=first_int[:, 1],
            flat=torch.empty((b,), dtype=torch.int64, device=device),
            cells=cells,
            cell_index=torch.empty((b, 1, g * g), dtype=torch.int64, device=device),
            scale=torch.tensor(1.0 / 255.0, dtype=torch.float32, device=device),
            blocks=row_blocks(b, self.retina.n_scales * canvas.shape[1] * g * g, canvas),
        )
        self._plans[canvas.device] = found
        return found

    def glimpses(self, padded: PaddedImage, locations: torch.Tensor) -> torch.Tensor:
        """Glimpses from padded images (see :meth:`Retina.from_padded
        <glimpse_env.retina.Retina.from_padded>`): ``(B, k * C, g, g)`` float32 in ``[0, 1]``."""
        canvas = padded.canvas
        b, c, _, padded_width = canvas.shape
        height, width = padded.size
        g, k, p = self.retina.patch_size, self.retina.n_scales, self.retina.pad
        plan = self._plan(padded)
        if locations.requires_grad:  # e.g. a policy's mean
            locations = locations.detach()
        # first column and row as first_edges works them out (p = W/2 + x W/2, one product
        # exact in float64 and one sum; then + 1/2 - g/2 and the floor), clamped to [-P, W]
        # and [-P, H] (a crop the clamp moves lies wholly outside the image, as its new
        # place lies wholly in the zeros around it), plus P: the crop's first cell in the
        # padded image
        if locations.dtype == torch.float32:  # one search among the float32 thresholds
            if height == width:
                _search(plan.col_thresholds, locations, out=plan.first_int)
            else:
                _search(plan.col_thresholds, locations[:, 0], out=plan.cols)
                _search(plan.row_thresholds, locations[:, 1], out=plan.rows)
        else:  # float64 locations: the arithmetic itself
            first = torch.addcmul(plan.half, locations, plan.half, out=plan.first)
            first.add_(plan.offset).floor_()
            plan.first_int.copy_(first)
            if height == width:
                plan.first_int.clamp_(-p, width)
            else:
                plan.cols.clamp_(-p, width)
                plan.rows.clamp_(-p, height)
            plan.first_int.add_(p)
        flat = torch.add(plan.cols, plan.rows, alpha=padded_width, out=plan.flat).view(b, 1, 1)
        pixels = canvas.view(b, c, -1)
        if plan.blocks is None and k == 1:  # the batch in one piece (and the usual one scale)
            index = torch.add(plan.cells, flat, out=plan.cell_index)
            crop = torch.gather(pixels, 2, index if c == 1 else index.expand(-1, c, -1))
            return torch.mul(crop, plan.scale).view(b, c, g, g)  # uint8 x float32: as from_integral
        glimpses = torch.empty((b, k, c, g * g), dtype=torch.float32, device=canvas.device)
        for span in (slice(None),) if plan.blocks is None else plan.blocks:
            index = torch.add(plan.cells, flat[span], out=plan.cell_index[span])  # (B, 1, g g)
            crop = torch.gather(pixels[span], 2, index.expand(-1, c, -1))
            first_scale = glimpses[span, 0]
            torch.mul(crop, plan.scale, out=first_scale)
            for scale in range(1, k):  # with a scale factor of 1, every scale is the same crop
                glimpses[span, scale].copy_(first_scale)
        return glimpses.view(b, k * c, g, g)
