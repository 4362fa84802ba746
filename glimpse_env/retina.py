r"""The glimpse sensor (retina): multi-resolution patches around a location, batched.

This is the one implementation of the glimpse in the project: the single environment,
the vector environment, the agents and the visualisations all call it.

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

How
---
Every cell mean is a box sum, and a box sum is four lookups in the image's integral
image (summed-area table), whatever the cell size. The table is exact: int32 sums
for ``uint8`` images (int64 beyond 8 million pixels), float64 for float images. Box
corners are clamped to the canvas, which makes outside pixels count as zero. The
``(g + 1)^2`` corner lookups of all scales of all images are one gather: no Python
loop over the batch or the cells.

When every cell is one pixel (one scale, or a scale factor of 1) a glimpse is a crop, and
sums are wasted work: :meth:`Retina.padded` puts ``g`` rows and columns of zeros around
the uint8 images and :meth:`Retina.from_padded` reads each crop with one gather, the
same bits as the integral image gives (the first edges are worked out the same way;
the clamp moves a crop that lies wholly outside the image into the zeros).

The canvas does not change during an episode, so the environments prepare it once per
episode (:meth:`Retina.prepare`: padded images or the integral image) and take every
glimpse from that (:meth:`Retina.glimpse`); :meth:`Retina.__call__` does both. ``from_integral``
runs on torch tensors (any device) or, with the same code, on numpy arrays: a single
environment steps one glimpse at a time, where numpy's lower per-call overhead is
most of the cost.

Threads
-------
On CPU tensors, every torch operation here covers at most :data:`SERIAL_ELEMENTS`
elements: a batch is worked through in blocks of rows that small (the few whole-batch
steps, filling a table and working out edges, are numpy's, which uses one thread). Torch
runs an operation that small on the calling thread; a larger one is split across its
intra-op threads, and when other processes hold the other cores (an RL trainer's
machine), every split waits for a descheduled thread: milliseconds against microseconds
of work (the autoreset step of a 256-env vector env took 30 ms instead of 0.3 ms).
Blocks keep the work on the caller's thread whatever the load, without touching torch's
thread settings, and give the same bits as one operation over the batch. Numpy arrays
and tensors on other devices are worked on in one piece.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from glimpse_env.validation import check_int

__all__ = ["IntegralImage", "PaddedImage", "Retina", "RetinaConfig"]

Array = Union[torch.Tensor, np.ndarray]  # noqa: UP007 - a runtime alias, py3.10 compatible

#: Largest side of a retina scale, ``patch_size * scale_factor**(n_scales - 1)``, in pixels:
#: far larger than any image, and small enough that every edge and box sum is exact.
MAX_PATCH_SIDE = 2**20

#: Largest number of pixels whose uint8 integral image fits int32.
_INT32_EXACT_PIXELS = (2**31 - 1) // 255

#: Most elements of one torch operation on CPU tensors here: torch's grain size
#: (``at::internal::GRAIN_SIZE``), at or below which an operation runs on the calling thread
#: alone (see the module docstring, "Threads").
SERIAL_ELEMENTS = 32768


class IntegralImage(NamedTuple):
    """Summed-area tables of a batch of images (see :meth:`Retina.integral`)."""

    table: Array
    """``(B, C, H + 1, W + 1)``: ``table[b, c, i, j] = images[b, c, :i, :j].sum()``; a
    torch tensor, or a numpy array (:meth:`numpy`)."""
    scale: float
    """Multiply a pixel mean by this to get a value in ``[0, 1]``: ``1/255`` for uint8 images."""

    def numpy(self) -> IntegralImage:
        """The same tables as a numpy array (zero-copy for CPU tensors)."""
        table = self.table
        if isinstance(table, torch.Tensor):
            table = table.cpu().numpy()
        return IntegralImage(table, self.scale)


class PaddedImage(NamedTuple):
    """Zero-padded uint8 images for a retina of one-pixel cells (see :meth:`Retina.padded`)."""

    canvas: torch.Tensor
    """``(B, C, H + 2P, W + 2P)`` uint8: the images with ``P`` rows and columns of zeros
    around them (``P`` = :attr:`Retina.pad`)."""
    size: tuple[int, int]
    """``(H, W)`` of the images inside the padding."""


class RetinaConfig(NamedTuple):
    """The geometry of a retina."""

    patch_size: int
    """``g``: side of each output patch, in cells."""
    n_scales: int
    """``k``: number of scales."""
    scale_factor: int
    """``s``: each scale covers ``s`` times the side of the previous one."""


class _Geometry(NamedTuple):
    first: Array  # (k,) float64: 1/2 - S_i/2; the first edge of scale i is floor(p + first[i])
    steps: Array  # (k, g + 1) int64: j * s**i, edge j of scale i from its first edge
    half: Array  # (2,) float64: (W / 2, H / 2)


class _CropPlan(NamedTuple):
    """The constants and buffers of :meth:`Retina.from_padded` for one padded shape and device."""

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
    blocks: tuple[slice, ...] | None  # see _row_blocks


class _Block(NamedTuple):
    """The buffers of a block of rows of a :class:`_Plan` (views of the plan's buffers).

    Arrays are of the table's kind (torch on its device, or numpy), hence typed ``Any``;
    ``B`` is the number of rows of the block.
    """

    span: slice | None  # its rows of the batch; None: all of them
    cols: Any  # (B, k, 1, g + 1) view of the column edges
    rows: Any  # (B, k, g + 1, 1) view of the row edges
    flat_index: Any  # (B, k, g + 1, g + 1) int64: flat index of every cell corner in its table
    gather_index: Any  # torch: (B, C, k (g+1)^2) expanded view; numpy: index into all tables
    starts: Any  # numpy: (B, C, 1) int64, where table b, channel c starts when flattened
    corners: Any  # (B, C, k, g + 1, g + 1): the integral image at the corners
    corners_flat: Any  # (B, C, k (g+1)^2) view of corners
    corner_pairs: tuple[Any, Any]  # views of corners: columns 1.. and ..g
    row_diff: Any  # (B, C, k, g + 1, g): differences along columns
    row_diff_pairs: tuple[Any, Any]  # views of row_diff: rows 1.. and ..g
    sums: Any  # (B, C, k, g, g): box sums


class _Plan(NamedTuple):
    """Everything a glimpse of one table shape needs, made once and reused by every call.

    The buffers (and the views of them that the operations read and write) mean a glimpse
    allocates nothing but its output; a new table shape, kind or scale makes a new plan.
    The edges of the whole batch are worked out first (by numpy for CPU tensors in blocks,
    else in the table's kind); the corners, box sums and means then go through ``blocks``
    (one for numpy arrays, device tensors and small batches; see :func:`_row_blocks`).
    """

    key: tuple[object, ...]  # (kind/device, dtype, table shape, scale)
    table_size: tuple[int, int]  # (H + 1, W + 1)
    geometry: _Geometry  # of the edges' kind
    first: Any  # (B, 2, k) float64: first column and row of every scale
    first_int: Any  # (B, 2, k) int64: the same as integers
    edges: Any  # (B, 2, k, g + 1) int64: column and row edges, clamped (for CPU tensors in
    # blocks, a numpy view of the tensor the blocks read)
    blocks: tuple[_Block, ...]
    cell_scale: Any  # (1, 1, k, 1, 1) float32: scale / s**(2i), box sum -> cell mean


def _order_key(values: np.ndarray) -> np.ndarray:
    """float32 ``values`` as int64 keys in the same order (-0 and +0 both 0)."""
    bits = np.asarray(values, dtype=np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)


def _from_order_key(keys: np.ndarray) -> np.ndarray:
    """The float32 values of :func:`_order_key` keys."""
    bits = np.where(keys < 0, (-keys) | 0x80000000, keys)
    return bits.astype(np.uint32).view(np.float32)


def _crop_thresholds(geometry: _Geometry, axis: int, *, low: int, high: int) -> np.ndarray:
    """Where a crop's first edge steps up, as float32 locations.

    ``t[i]`` (``i < high - low``) is the smallest float32 ``x`` whose first edge along
    ``axis`` (0: columns, 1: rows) of the first scale of ``geometry`` (numpy), worked out by
    :meth:`Retina._first_edges` itself, is at least ``low + 1 + i``. The edge is monotone
    in ``x``, so the number of thresholds at or below ``x``
    (``torch.bucketize(x, t, right=True)``) is that edge clamped to ``[low, high]``, minus
    ``low``: for float32 locations, one search instead of the arithmetic. Found by
    bisection over the ordered float32 values (a test checks them against the arithmetic on
    both sides of every threshold).
    """
    targets = np.arange(low + 1, high + 1, dtype=np.float64)
    largest = float(np.finfo(np.float32).max)
    lo, hi = (np.full(targets.shape, key) for key in _order_key(np.array([-largest, largest])))

    def edge(keys: np.ndarray) -> np.ndarray:
        locations = np.zeros((keys.shape[0], 2), dtype=np.float32)
        locations[:, axis] = _from_order_key(keys)
        edges = Retina._first_edges(locations, geometry, None)
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


def _row_blocks(rows: int, per_row: int, like: Array) -> tuple[slice, ...] | None:
    """Blocks of rows to work through one at a time, or ``None`` for the whole batch at once.

    ``per_row`` is the most elements a row puts in one operation. CPU tensors come in
    blocks of at most :data:`SERIAL_ELEMENTS` elements (even sizes; a single row may be
    larger), numpy arrays and tensors on other devices in one piece.
    """
    if rows * per_row <= SERIAL_ELEMENTS or not (isinstance(like, torch.Tensor) and like.is_cpu):
        return None
    count = -(-rows // max(1, SERIAL_ELEMENTS // per_row))
    size = -(-rows // count)
    return tuple(slice(start, min(start + size, rows)) for start in range(0, rows, size))


def _batched(images: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` or ``(B, C, H, W)`` images as ``(B, C, H, W)``, or a clear error."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4:
        raise ValueError(f"images must be (B, H, W) or (B, C, H, W), got shape {tuple(images.shape)}")
    return images


def _device_key(like: Array) -> object:
    return like.device if isinstance(like, torch.Tensor) else None


def _like(value: np.ndarray, like: Array) -> Array:
    """``value`` as the same kind of array as ``like`` (and on its device)."""
    if isinstance(like, torch.Tensor):
        return torch.from_numpy(value).to(like.device)
    return value


def _clamp_(array: Array, high: int) -> None:
    """Clamp an integer array to ``[0, high]`` in place (``np.clip`` is slow on small arrays)."""
    if isinstance(array, torch.Tensor):
        array.clamp_(0, high)
    else:
        np.maximum(array, 0, out=array)
        np.minimum(array, high, out=array)


_NUMPY_DTYPES = {
    torch.int32: np.int32,
    torch.int64: np.int64,
    torch.float32: np.float32,
    torch.float64: np.float64,
}
_TORCH_DTYPES = {value: key for key, value in _NUMPY_DTYPES.items()}


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
        # per device (and canvas size / batch shape): constants and reused work buffers
        self._geometries: dict[tuple[object, ...], _Geometry] = {}
        self._plans: dict[tuple[object, ...], _Plan] = {}
        self._crop_plans: dict[object, _CropPlan] = {}

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
        state["_geometries"] = {}
        state["_plans"] = {}
        state["_crop_plans"] = {}
        return state

    def _geometry(self, like: Array, height: int, width: int) -> _Geometry:
        key = (_device_key(like), height, width)
        found = self._geometries.get(key)
        if found is None:
            cells = np.array(self.cell_sizes, dtype=np.int64)[:, None]
            steps = np.arange(self.patch_size + 1, dtype=np.int64)[None, :]
            found = _Geometry(
                first=_like(0.5 - self.patch_size * cells[:, 0].astype(np.float64) / 2, like),
                steps=_like(steps * cells, like),
                half=_like(np.array([width / 2, height / 2]), like),
            )
            self._geometries[key] = found
        return found

    def _plan(self, integral: IntegralImage) -> _Plan:
        """The plan for ``integral``'s table shape; the last one per kind/device and dtype is kept."""
        table = integral.table
        is_torch = isinstance(table, torch.Tensor)
        kind = (table.device, table.dtype) if is_torch else (None, table.dtype)
        key = (*kind, table.shape, integral.scale)
        found = self._plans.get(kind)
        if found is not None and found.key == key:
            return found
        b, c, h1, w1 = table.shape
        g, k = self.patch_size, self.n_scales

        def empty(shape: tuple[int, ...], dtype: torch.dtype) -> Array:
            if isinstance(table, torch.Tensor):
                return torch.empty(shape, dtype=dtype, device=table.device)
            return np.empty(shape, dtype=_NUMPY_DTYPES[dtype])

        dtype = table.dtype if isinstance(table, torch.Tensor) else _TORCH_DTYPES[table.dtype.type]
        edges = empty((b, 2, k, g + 1), torch.int64)
        flat_index = empty((b, k, g + 1, g + 1), torch.int64)
        corners = empty((b, c, k, g + 1, g + 1), dtype)
        row_diff = empty((b, c, k, g + 1, g), dtype)
        sums = empty((b, c, k, g, g), dtype)
        starts = (np.arange(b * c, dtype=np.int64) * (h1 * w1)).reshape(b, c, 1)
        gather_index: Array | None = None
        if not isinstance(flat_index, torch.Tensor):  # numpy takes from all tables flattened:
            gather_index = np.empty((b, c, k * (g + 1) ** 2), dtype=np.int64)  # index + table start

        def block(span: slice | None) -> _Block:
            part = slice(None) if span is None else span
            m = len(range(b)[part])
            block_edges, block_index, block_corners = edges[part], flat_index[part], corners[part]
            block_diff = row_diff[part]
            return _Block(
                span=span,
                cols=block_edges[:, 0, :, None, :],
                rows=block_edges[:, 1, :, :, None],
                flat_index=block_index,
                gather_index=(
                    block_index.view(m, 1, -1).expand(m, c, -1)
                    if isinstance(block_index, torch.Tensor)
                    else gather_index
                ),
                starts=starts,
                corners=block_corners,
                corners_flat=block_corners.reshape(m, c, -1),
                corner_pairs=(block_corners[..., 1:], block_corners[..., :-1]),
                row_diff=block_diff,
                row_diff_pairs=(block_diff[..., 1:, :], block_diff[..., :-1, :]),
                sums=sums[part],
            )

        blocks = _row_blocks(b, c * k * (g + 1) ** 2, table)
        # a CPU tensor's edges, in blocks, are worked out by numpy for the whole batch (in a view
        # of the tensor the blocks read): a few small operations, one thread
        edges_by: Array = edges.numpy() if isinstance(edges, torch.Tensor) and blocks is not None else edges
        if isinstance(edges_by, torch.Tensor):
            first, first_int = empty((b, 2, k), torch.float64), empty((b, 2, k), torch.int64)
        else:
            first, first_int = np.empty((b, 2, k), np.float64), np.empty((b, 2, k), np.int64)
        cells = np.array(self.cell_sizes, dtype=np.float64)
        cell_scale = (integral.scale / (cells * cells)).astype(np.float32).reshape(1, 1, -1, 1, 1)
        found = _Plan(
            key=key,
            table_size=(h1, w1),
            geometry=self._geometry(edges_by, h1 - 1, w1 - 1),
            first=first,
            first_int=first_int,
            edges=edges_by,
            blocks=(block(None),) if blocks is None else tuple(block(span) for span in blocks),
            cell_scale=_like(cell_scale, table),
        )
        self._plans[kind] = found
        return found

    def first_edges(self, locations: Array, height: int, width: int, *, out: Array | None = None) -> Array:
        """First column and row of every scale: ``(B, 2, k)`` float64 holding integers.

        ``[:, 0, i]`` is ``c_0`` and ``[:, 1, i]`` is ``r_0`` of scale ``i`` (see the module
        docstring), unclamped. ``locations`` is ``(B, 2)``, torch or numpy; ``out``, if
        given, is a float64 array of the result's shape and kind to write into.
        """
        return self._first_edges(locations, self._geometry(locations, height, width), out)

    @staticmethod
    def _first_edges(locations: Array, geometry: _Geometry, out: Array | None) -> Array:
        xp = torch if isinstance(locations, torch.Tensor) else np
        # float32 locations promote exactly to float64 here (half is float64)
        centre = geometry.half + locations * geometry.half  # (B, 2) = (p_x, p_y)
        first = xp.add(centre[:, :, None], geometry.first, out=out)
        return xp.floor(first, out=first)

    def edges(self, locations: Array, height: int, width: int) -> Array:
        """Unclamped pixel edges of every cell: ``(B, 2, k, g + 1)`` float64 holding integers.

        ``[:, 0]`` are column edges and ``[:, 1]`` row edges: cell ``(j, m)`` of scale ``i``
        spans rows ``e[:, 1, i, j]:e[:, 1, i, j + 1]`` and columns
        ``e[:, 0, i, m]:e[:, 0, i, m + 1]``.
        """
        steps = self._geometry(locations, height, width).steps
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

    @staticmethod
    def table_type(image_dtype: torch.dtype, height: int, width: int) -> tuple[torch.dtype, float]:
        """``(dtype, scale)`` of the integral image of ``height x width`` images of ``image_dtype``.

        Exact sums: int32 for uint8 images (int64 beyond 8 million pixels), float64 for float
        images; ``scale`` turns a pixel mean into ``[0, 1]``.
        """
        if image_dtype == torch.uint8:
            fits32 = (height + 1) * (width + 1) <= _INT32_EXACT_PIXELS
            return (torch.int32 if fits32 else torch.int64), 1.0 / 255.0
        if image_dtype.is_floating_point:
            return torch.float64, 1.0
        raise TypeError(f"images must be uint8 or floating point, got {image_dtype}")

    @torch.no_grad()
    def integral(self, images: torch.Tensor, *, out: torch.Tensor | None = None) -> IntegralImage:
        """Integral images of ``(B, H, W)`` or ``(B, C, H, W)`` images, uint8 or float.

        ``out``, if given, is the ``(B, C, H + 1, W + 1)`` tensor of :meth:`table_type`'s
        dtype to build the tables in (a buffer kept across calls: a fresh multi-megabyte
        table per call costs more in page faults than the sums themselves).
        """
        images = _batched(images)
        b, c, height, width = images.shape
        dtype, scale = self.table_type(images.dtype, height, width)
        shape = (b, c, height + 1, width + 1)
        if out is not None and (
            tuple(out.shape) != shape or out.dtype != dtype or out.device != images.device
        ):
            raise ValueError(
                f"out must be a {dtype} tensor of shape {shape} on {images.device}, "
                f"got {out.dtype} {tuple(out.shape)} on {out.device}"
            )
        blocks = _row_blocks(b, c * (height + 1) * (width + 1), images)
        if out is None and blocks is None:  # a new table in one piece: padded and cast at once
            table = F.pad(images, (1, 0, 1, 0)).to(dtype)
            table.cumsum_(3).cumsum_(2)
            return IntegralImage(table, scale)
        table = torch.empty(shape, dtype=dtype, device=images.device) if out is None else out
        if blocks is None:
            table[:, :, 0].zero_()
            table[:, :, 1:, 0].zero_()
            table[:, :, 1:, 1:].copy_(images)
            table.cumsum_(3).cumsum_(2)
            return IntegralImage(table, scale)
        # CPU tensors: numpy fills the table (one thread), torch sums it in blocks
        cells = table.numpy()
        cells[:, :, 0] = 0
        cells[:, :, 1:, 0] = 0
        pixels = images.detach()
        by_numpy = pixels.dtype != torch.bfloat16  # numpy has no bfloat16
        if by_numpy:
            cells[:, :, 1:, 1:] = pixels.numpy()
        for span in blocks:
            part = table[span]
            if not by_numpy:
                part[:, :, 1:, 1:].copy_(pixels[span])
            part.cumsum_(3).cumsum_(2)
        return IntegralImage(table, scale)

    def from_integral(self, integral: IntegralImage, locations: Array) -> Array:
        """Glimpses from integral images.

        Args:
            integral: tables ``(B, C, H + 1, W + 1)``, torch or numpy.
            locations: ``(B, 2)``, ``(x, y)`` in ``[-1, 1]``, of the same kind (and device).

        Returns:
            ``(B, k * C, g, g)`` float32 in ``[0, 1]`` (``(B, k, g, g)`` for ``C = 1``),
            of the same kind as the table.
        """
        table = integral.table
        b, c, h1, w1 = table.shape
        g, k = self.patch_size, self.n_scales
        plan = self._plan(integral)
        if isinstance(locations, torch.Tensor):
            if locations.requires_grad:  # e.g. a policy's mean
                locations = locations.detach()
            if isinstance(plan.edges, np.ndarray):  # CPU tensors in blocks: the edges are numpy's
                locations = (locations.float() if locations.dtype == torch.bfloat16 else locations).numpy()
        # first edge of every scale (see first_edges), then all g + 1 edges, clamped to the
        # table: clamped corners make pixels outside the canvas count as zero
        first = self._first_edges(locations, plan.geometry, plan.first)  # (B, 2, k)
        edges, steps = plan.edges, plan.geometry.steps
        if isinstance(edges, torch.Tensor):
            assert isinstance(steps, torch.Tensor)
            plan.first_int.copy_(first)
            torch.add(plan.first_int[..., None], steps, out=edges)  # (B, 2, k, g+1)
        else:
            np.copyto(plan.first_int, first, casting="unsafe")
            np.add(plan.first_int[..., None], steps, out=edges)
        self._clamp_edges(edges, h1, w1)
        if isinstance(table, torch.Tensor):
            # scale-major output, (B, k, C, g, g), written through a (B, C, k, g, g) view
            glimpses = torch.empty((b, k, c, g, g), dtype=torch.float32, device=table.device)
            into = glimpses.view(b, 1, k, g, g) if c == 1 else glimpses.transpose(1, 2)
            flat_table = table.view(b, c, -1)
            for block in plan.blocks:
                if block.span is None:
                    self._glimpse_torch(plan, block, table=flat_table, out=into)
                else:
                    span = block.span
                    self._glimpse_torch(plan, block, table=flat_table[span], out=into[span])
            return glimpses.view(b, k * c, g, g)
        # the same steps in numpy, in one block
        (block,) = plan.blocks
        index = block.flat_index
        np.multiply(block.rows, w1, out=index)
        np.add(index, block.cols, out=index)
        gather_index = block.gather_index
        np.add(index.reshape(b, 1, -1), block.starts, out=gather_index)
        np.take(table.reshape(-1), gather_index, out=block.corners_flat)
        np.subtract(*block.corner_pairs, out=block.row_diff)
        sums = np.subtract(*block.row_diff_pairs, out=block.sums)
        out = np.multiply(sums, plan.cell_scale, dtype=np.float32)  # (B, C, k, g, g)
        if c == 1:
            return out.reshape(b, k, g, g)
        return out.swapaxes(1, 2).reshape(b, k * c, g, g)

    @staticmethod
    def _glimpse_torch(plan: _Plan, block: _Block, *, table: torch.Tensor, out: torch.Tensor) -> None:
        """Glimpses of one block of rows from its edges: ``table`` ``(B, C, (H + 1) (W + 1))``
        flattened tables, into ``out`` ``(B, C, k, g, g)`` float32."""
        # flat index of every corner, row * (W + 1) + column, then one gather
        torch.add(block.cols, block.rows, alpha=plan.table_size[1], out=block.flat_index)
        torch.gather(table, 2, block.gather_index, out=block.corners_flat)
        # box sums: the 4-term corner differences, as two differences
        torch.subtract(*block.corner_pairs, out=block.row_diff)
        sums = torch.subtract(*block.row_diff_pairs, out=block.sums)
        # cell means into the output (the buffers are reused by the next call)
        if sums.is_floating_point():  # float64 sums: round to float32 first
            out.copy_(sums).mul_(plan.cell_scale)
        else:
            torch.mul(sums, plan.cell_scale, out=out)  # integer x float32: computed in float32

    @staticmethod
    def _clamp_edges(edges: Array, h1: int, w1: int) -> None:
        """Clamp column edges to ``[0, W]`` and row edges to ``[0, H]``, in place."""
        if h1 == w1:
            _clamp_(edges, w1 - 1)
        else:
            _clamp_(edges[:, 0], w1 - 1)
            _clamp_(edges[:, 1], h1 - 1)

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
        images = _batched(images)
        if images.dtype != torch.uint8:
            raise TypeError(f"padded() takes uint8 images, got {images.dtype}; use integral() for others")
        b, c, height, width = images.shape
        p = self.pad
        shape = (b, c, height + 2 * p, width + 2 * p)
        if out is None:
            out = torch.zeros(shape, dtype=torch.uint8, device=images.device)
        elif tuple(out.shape) != shape or out.dtype != torch.uint8 or out.device != images.device:
            raise ValueError(
                f"out must be a uint8 tensor of shape {shape} on {images.device}, "
                f"got {out.dtype} {tuple(out.shape)} on {out.device}"
            )
        inside = out[:, :, p : p + height, p : p + width]
        if out.is_cpu:  # numpy copies on one thread (see "Threads")
            inside.numpy()[...] = images.numpy()
        else:
            inside.copy_(images)
        return PaddedImage(out, (height, width))

    def _crop_plan(self, padded: PaddedImage) -> _CropPlan:
        canvas = padded.canvas
        key = (canvas.device, tuple(canvas.shape))
        found = self._crop_plans.get(canvas.device)
        if found is not None and found.key == key:
            return found
        b, _, _, padded_width = canvas.shape
        height, width = padded.size
        g, p, device = self.patch_size, self.pad, canvas.device
        half = torch.tensor([width / 2, height / 2], dtype=torch.float64, device=device)
        steps = torch.arange(g, dtype=torch.int64, device=device)
        # cell (i, j) of a crop whose first cell is at (r0, c0), in padded coordinates
        # (r0 + P, c0 + P): flat index (r0 + P + i) * W' + c0 + P + j
        cells = (steps[:, None] * padded_width + steps[None, :]).reshape(1, 1, g * g)
        first_int = torch.empty((b, 2), dtype=torch.int64, device=device)

        geometry = self._geometry(np.empty(0), height, width)  # numpy: the search runs on the host

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
            blocks=_row_blocks(b, self.n_scales * canvas.shape[1] * g * g, canvas),
        )
        self._crop_plans[canvas.device] = found
        return found

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
        canvas = padded.canvas
        b, c, _, padded_width = canvas.shape
        height, width = padded.size
        g, k, p = self.patch_size, self.n_scales, self.pad
        plan = self._crop_plan(padded)
        if locations.requires_grad:  # e.g. a policy's mean
            locations = locations.detach()
        # first column and row as first_edges works them out (p = W/2 + x W/2, one product
        # exact in float64 and one sum; then + 1/2 - g/2 and the floor), clamped to [-P, W]
        # and [-P, H] (a crop the clamp moves lies wholly outside the image, as its new
        # place lies wholly in the zeros around it), plus P: the crop's first cell in the
        # padded image
        if locations.dtype == torch.float32:  # one search among the float32 thresholds
            if height == width:
                torch.bucketize(locations, plan.col_thresholds, right=True, out=plan.first_int)
            else:
                plan.cols.copy_(
                    torch.bucketize(locations[:, 0].contiguous(), plan.col_thresholds, right=True)
                )
                plan.rows.copy_(
                    torch.bucketize(locations[:, 1].contiguous(), plan.row_thresholds, right=True)
                )
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
