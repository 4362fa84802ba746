r"""The retina's integral-image backend: every cell mean from four lookups.

Every cell mean is a box sum, and a box sum is four lookups in the image's integral
image (summed-area table), whatever the cell size. The table is exact: int32 sums
for ``uint8`` images (int64 beyond 8 million pixels), float64 for float images. Box
corners are clamped to the canvas, which makes outside pixels count as zero. The
``(g + 1)^2`` corner lookups of all scales of all images are one gather: no Python
loop over the batch or the cells.

The glimpses run on torch tensors (any device) or, with the same steps, on numpy arrays:
a single environment steps one glimpse at a time, where numpy's lower per-call overhead
is most of the cost. CPU tensors are worked through in blocks of rows
(:func:`~glimpse_env.devices.row_blocks`; "Threads" in :mod:`glimpse_env.devices`).

Where the cells lie is the retina's geometry (:mod:`glimpse_env.retina`); this module
sums them. :meth:`Retina.integral <glimpse_env.retina.Retina.integral>` and
:meth:`Retina.from_integral <glimpse_env.retina.Retina.from_integral>` are its entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from glimpse_env.devices import Array, row_blocks

if TYPE_CHECKING:
    from glimpse_env.retina import CanvasGeometry, Retina

__all__ = ["IntegralBackend", "IntegralImage", "integral_image", "table_type"]

#: Largest number of pixels whose uint8 integral image fits int32.
_INT32_EXACT_PIXELS = (2**31 - 1) // 255

#: The numpy dtypes of a table (those of :func:`table_type`, and float32), by ``dtype.type``.
_NUMPY_TABLE_TYPES: dict[type, type[np.generic]] = {
    t: t for t in (np.int32, np.int64, np.float32, np.float64)
}


class IntegralImage(NamedTuple):
    """Summed-area tables of a batch of images (see :meth:`Retina.integral
    <glimpse_env.retina.Retina.integral>`)."""

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


def integral_image(images: torch.Tensor, *, out: torch.Tensor | None = None) -> IntegralImage:
    """Integral images of ``(B, C, H, W)`` images, uint8 or float.

    ``out``, if given, is the ``(B, C, H + 1, W + 1)`` tensor of :func:`table_type`'s dtype
    on the images' device to build the tables in.
    """
    b, c, height, width = images.shape
    dtype, scale = table_type(images.dtype, height, width)
    shape = (b, c, height + 1, width + 1)
    if out is not None and (tuple(out.shape) != shape or out.dtype != dtype or out.device != images.device):
        raise ValueError(
            f"out must be a {dtype} tensor of shape {shape} on {images.device}, "
            f"got {out.dtype} {tuple(out.shape)} on {out.device}"
        )
    blocks = row_blocks(b, c * (height + 1) * (width + 1), images)
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


class _TorchEdges(NamedTuple):
    """The edges of a plan, worked out by torch on the table's device."""

    geometry: CanvasGeometry  # torch, on the device
    first: torch.Tensor  # (B, 2, k) float64: first column and row of every scale
    first_int: torch.Tensor  # (B, 2, k) int64: the same as integers
    edges: torch.Tensor  # (B, 2, k, g + 1) int64: column and row edges, clamped


class _NumpyEdges(NamedTuple):
    """The edges of a plan, worked out by numpy: for numpy tables, and for CPU tensors in
    blocks (a few small operations on one thread; ``edges`` is then a numpy view of the
    tensor the blocks read)."""

    geometry: CanvasGeometry  # numpy
    first: np.ndarray  # (B, 2, k) float64: first column and row of every scale
    first_int: np.ndarray  # (B, 2, k) int64: the same as integers
    edges: np.ndarray  # (B, 2, k, g + 1) int64: column and row edges, clamped


class _TorchBlock(NamedTuple):
    """The buffers of a block of ``B`` rows of a :class:`_TorchPlan` (views of the plan's buffers)."""

    span: slice | None  # its rows of the batch; None: all of them
    cols: torch.Tensor  # (B, k, 1, g + 1) view of the column edges
    rows: torch.Tensor  # (B, k, g + 1, 1) view of the row edges
    flat_index: torch.Tensor  # (B, k, g + 1, g + 1) int64: flat index of every cell corner in its table
    gather_index: torch.Tensor  # (B, C, k (g+1)^2) expanded view of flat_index
    corners_flat: torch.Tensor  # (B, C, k (g+1)^2): the integral image at the corners
    corner_pairs: tuple[torch.Tensor, torch.Tensor]  # views of the corners: columns 1.. and ..g
    row_diff: torch.Tensor  # (B, C, k, g + 1, g): differences along columns
    row_diff_pairs: tuple[torch.Tensor, torch.Tensor]  # views of row_diff: rows 1.. and ..g
    sums: torch.Tensor  # (B, C, k, g, g): box sums


class _TorchPlan(NamedTuple):
    """Everything a glimpse of one torch table shape needs, made once and reused by every call.

    The buffers (and the views of them that the operations read and write) mean a glimpse
    allocates nothing but its output; a new table shape, device, dtype or scale makes a new
    plan. The edges of the whole batch are worked out first (by numpy for CPU tensors in
    blocks, else by torch); the corners, box sums and means then go through ``blocks``
    (one for device tensors and small batches; see :func:`~glimpse_env.devices.row_blocks`).
    """

    key: tuple[object, ...]  # (device, dtype, table shape, scale)
    table_size: tuple[int, int]  # (H + 1, W + 1)
    edges: _TorchEdges | _NumpyEdges
    blocks: tuple[_TorchBlock, ...]
    cell_scale: torch.Tensor  # (1, 1, k, 1, 1) float32: scale / s**(2i), box sum -> cell mean


class _NumpyPlan(NamedTuple):
    """:class:`_TorchPlan` for a numpy table: the same steps in one piece, numpy's buffers."""

    key: tuple[object, ...]  # (None, dtype, table shape, scale)
    edges: _NumpyEdges
    cols: np.ndarray  # (B, k, 1, g + 1) view of the column edges
    rows: np.ndarray  # (B, k, g + 1, 1) view of the row edges
    flat_index: np.ndarray  # (B, k, g + 1, g + 1) int64: flat index of every cell corner in its table
    starts: np.ndarray  # (B, C, 1) int64: where table b, channel c starts when flattened
    gather_index: np.ndarray  # (B, C, k (g+1)^2) int64: index into all tables, flattened
    corners_flat: np.ndarray  # (B, C, k (g+1)^2): the integral image at the corners
    corner_pairs: tuple[np.ndarray, np.ndarray]  # views of the corners: columns 1.. and ..g
    row_diff: np.ndarray  # (B, C, k, g + 1, g): differences along columns
    row_diff_pairs: tuple[np.ndarray, np.ndarray]  # views of row_diff: rows 1.. and ..g
    sums: np.ndarray  # (B, C, k, g, g): box sums
    cell_scale: np.ndarray  # (1, 1, k, 1, 1) float32: scale / s**(2i), box sum -> cell mean


def _clamp_(array: Array, high: int) -> None:
    """Clamp an integer array to ``[0, high]`` in place (``np.clip`` is slow on small arrays)."""
    if isinstance(array, torch.Tensor):
        array.clamp_(0, high)
    else:
        np.maximum(array, 0, out=array)
        np.minimum(array, high, out=array)


def _clamp_edges(edges: Array, h1: int, w1: int) -> None:
    """Clamp column edges to ``[0, W]`` and row edges to ``[0, H]``, in place."""
    if h1 == w1:
        _clamp_(edges, w1 - 1)
    else:
        _clamp_(edges[:, 0], w1 - 1)
        _clamp_(edges[:, 1], h1 - 1)


def _work_out_edges(buffers: _TorchEdges | _NumpyEdges, locations: Array, h1: int, w1: int) -> None:
    """The edges of every cell at ``locations``, into ``buffers.edges``.

    The first edge of every scale (:meth:`~glimpse_env.retina.CanvasGeometry.first_edges`),
    then all ``g + 1`` edges, clamped to the table: clamped corners make pixels outside the
    canvas count as zero.
    """
    if isinstance(locations, torch.Tensor):
        if locations.requires_grad:  # e.g. a policy's mean
            locations = locations.detach()
        if isinstance(buffers, _NumpyEdges):  # numpy tables, CPU tensors in blocks
            locations = (locations.float() if locations.dtype == torch.bfloat16 else locations).numpy()
    first = buffers.geometry.first_edges(locations, out=buffers.first)  # (B, 2, k)
    steps = buffers.geometry.steps
    if isinstance(buffers, _TorchEdges):
        assert isinstance(first, torch.Tensor) and isinstance(steps, torch.Tensor)  # torch geometry
        buffers.first_int.copy_(first)
        torch.add(buffers.first_int[..., None], steps, out=buffers.edges)  # (B, 2, k, g+1)
    else:
        np.copyto(buffers.first_int, first, casting="unsafe")
        np.add(buffers.first_int[..., None], steps, out=buffers.edges)
    _clamp_edges(buffers.edges, h1, w1)


class IntegralBackend:
    """Glimpses of one retina from integral images, with the plans of the tables it has read.

    A plan per kind of table (device and dtype; the last table shape of each is kept) holds
    the buffers of its glimpses, so one backend must not be used from two threads at once.

    Args:
        retina: the retina whose cells it sums (its sizes and
            :meth:`~glimpse_env.retina.Retina.canvas_geometry`).
    """

    def __init__(self, retina: Retina) -> None:
        self.retina = retina
        self._torch_plans: dict[tuple[object, ...], _TorchPlan] = {}
        self._numpy_plans: dict[tuple[object, ...], _NumpyPlan] = {}

    def glimpses(self, integral: IntegralImage, locations: Array) -> Array:
        """Glimpses from integral images (see :meth:`Retina.from_integral
        <glimpse_env.retina.Retina.from_integral>`): ``(B, k * C, g, g)`` float32 in
        ``[0, 1]``, of the table's kind."""
        table = integral.table
        if isinstance(table, torch.Tensor):
            plan = self._torch_plan(integral, table)
            _work_out_edges(plan.edges, locations, *plan.table_size)
            return self._torch_glimpses(plan, table)
        numpy_plan = self._numpy_plan(integral, table)
        _work_out_edges(numpy_plan.edges, locations, *table.shape[2:])
        return self._numpy_glimpses(numpy_plan, table)

    def _torch_glimpses(self, plan: _TorchPlan, table: torch.Tensor) -> torch.Tensor:
        """The glimpses of a torch table whose edges are worked out, block by block."""
        b, c = table.shape[:2]
        g, k = self.retina.patch_size, self.retina.n_scales
        # scale-major output, (B, k, C, g, g), written through a (B, C, k, g, g) view
        glimpses = torch.empty((b, k, c, g, g), dtype=torch.float32, device=table.device)
        into = glimpses.view(b, 1, k, g, g) if c == 1 else glimpses.transpose(1, 2)
        flat_table = table.view(b, c, -1)
        for block in plan.blocks:
            if block.span is None:
                self._torch_block(plan, block, table=flat_table, out=into)
            else:
                span = block.span
                self._torch_block(plan, block, table=flat_table[span], out=into[span])
        return glimpses.view(b, k * c, g, g)

    @staticmethod
    def _torch_block(plan: _TorchPlan, block: _TorchBlock, *, table: torch.Tensor, out: torch.Tensor) -> None:
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

    def _numpy_glimpses(self, plan: _NumpyPlan, table: np.ndarray) -> np.ndarray:
        """The glimpses of a numpy table whose edges are worked out: the torch steps, in one piece."""
        b, c, _, w1 = table.shape
        g, k = self.retina.patch_size, self.retina.n_scales
        index = plan.flat_index
        np.multiply(plan.rows, w1, out=index)
        np.add(index, plan.cols, out=index)
        gather_index = plan.gather_index
        np.add(index.reshape(b, 1, -1), plan.starts, out=gather_index)
        np.take(table.reshape(-1), gather_index, out=plan.corners_flat)
        np.subtract(*plan.corner_pairs, out=plan.row_diff)
        sums = np.subtract(*plan.row_diff_pairs, out=plan.sums)
        out = np.multiply(sums, plan.cell_scale, dtype=np.float32)  # (B, C, k, g, g)
        if c == 1:
            return out.reshape(b, k, g, g)
        return out.swapaxes(1, 2).reshape(b, k * c, g, g)

    def _cell_scale(self, scale: float) -> np.ndarray:
        """``(1, 1, k, 1, 1)`` float32: ``scale / s**(2i)``, from a box sum to a cell mean."""
        cells = np.array(self.retina.cell_sizes, dtype=np.float64)
        return (scale / (cells * cells)).astype(np.float32).reshape(1, 1, -1, 1, 1)

    def _torch_plan(self, integral: IntegralImage, table: torch.Tensor) -> _TorchPlan:
        """The plan for ``table``'s shape; the last one per device and dtype is kept."""
        kind = (table.device, table.dtype)
        key = (*kind, table.shape, integral.scale)
        found = self._torch_plans.get(kind)
        if found is not None and found.key == key:
            return found
        b, c, h1, w1 = table.shape
        g, k = self.retina.patch_size, self.retina.n_scales

        def empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
            return torch.empty(shape, dtype=dtype, device=table.device)

        edges = empty((b, 2, k, g + 1), torch.int64)
        flat_index = empty((b, k, g + 1, g + 1), torch.int64)
        corners = empty((b, c, k, g + 1, g + 1), table.dtype)
        row_diff = empty((b, c, k, g + 1, g), table.dtype)
        sums = empty((b, c, k, g, g), table.dtype)

        def block(span: slice | None) -> _TorchBlock:
            part = slice(None) if span is None else span
            m = len(range(b)[part])
            block_edges, block_index, block_corners = edges[part], flat_index[part], corners[part]
            block_diff = row_diff[part]
            return _TorchBlock(
                span=span,
                cols=block_edges[:, 0, :, None, :],
                rows=block_edges[:, 1, :, :, None],
                flat_index=block_index,
                gather_index=block_index.view(m, 1, -1).expand(m, c, -1),
                corners_flat=block_corners.reshape(m, c, -1),
                corner_pairs=(block_corners[..., 1:], block_corners[..., :-1]),
                row_diff=block_diff,
                row_diff_pairs=(block_diff[..., 1:, :], block_diff[..., :-1, :]),
                sums=sums[part],
            )

        blocks = row_blocks(b, c * k * (g + 1) ** 2, table)
        edge_buffers: _TorchEdges | _NumpyEdges
        if blocks is None:
            edge_buffers = _TorchEdges(
                geometry=self.retina.canvas_geometry(edges, h1 - 1, w1 - 1),
                first=empty((b, 2, k), torch.float64),
                first_int=empty((b, 2, k), torch.int64),
                edges=edges,
            )
        else:  # CPU tensors in blocks: numpy works out the edges of the whole batch, in a view
            edge_buffers = _numpy_edges(self.retina, edges.numpy(), h1, w1)
        found = _TorchPlan(
            key=key,
            table_size=(h1, w1),
            edges=edge_buffers,
            blocks=(block(None),) if blocks is None else tuple(block(span) for span in blocks),
            cell_scale=torch.from_numpy(self._cell_scale(integral.scale)).to(table.device),
        )
        self._torch_plans[kind] = found
        return found

    def _numpy_plan(self, integral: IntegralImage, table: np.ndarray) -> _NumpyPlan:
        """The plan for ``table``'s shape; the last one per dtype is kept."""
        kind = (None, table.dtype)
        key = (*kind, table.shape, integral.scale)
        found = self._numpy_plans.get(kind)
        if found is not None and found.key == key:
            return found
        b, c, h1, w1 = table.shape
        g, k = self.retina.patch_size, self.retina.n_scales
        dtype = _NUMPY_TABLE_TYPES[table.dtype.type]
        edges = np.empty((b, 2, k, g + 1), dtype=np.int64)
        corners = np.empty((b, c, k, g + 1, g + 1), dtype=dtype)
        row_diff = np.empty((b, c, k, g + 1, g), dtype=dtype)
        found = _NumpyPlan(
            key=key,
            edges=_numpy_edges(self.retina, edges, h1, w1),
            cols=edges[:, 0, :, None, :],
            rows=edges[:, 1, :, :, None],
            flat_index=np.empty((b, k, g + 1, g + 1), dtype=np.int64),
            starts=(np.arange(b * c, dtype=np.int64) * (h1 * w1)).reshape(b, c, 1),
            # numpy takes from all tables flattened: the index plus the table's start
            gather_index=np.empty((b, c, k * (g + 1) ** 2), dtype=np.int64),
            corners_flat=corners.reshape(b, c, -1),
            corner_pairs=(corners[..., 1:], corners[..., :-1]),
            row_diff=row_diff,
            row_diff_pairs=(row_diff[..., 1:, :], row_diff[..., :-1, :]),
            sums=np.empty((b, c, k, g, g), dtype=dtype),
            cell_scale=self._cell_scale(integral.scale),
        )
        self._numpy_plans[kind] = found
        return found


def _numpy_edges(retina: Retina, edges: np.ndarray, h1: int, w1: int) -> _NumpyEdges:
    """The numpy edge buffers around ``edges`` ``(B, 2, k, g + 1)`` int64, for tables ``h1 x w1``."""
    b, _, k, _ = edges.shape
    return _NumpyEdges(
        geometry=retina.canvas_geometry(edges, h1 - 1, w1 - 1),
        first=np.empty((b, 2, k), np.float64),
        first_int=np.empty((b, 2, k), np.int64),
        edges=edges,
    )
