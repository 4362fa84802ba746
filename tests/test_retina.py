"""The retina against a naive per-sample crop-and-pool reference."""

from __future__ import annotations

import contextlib
import math
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import glimpse_env.devices as devices_module
from glimpse_env.retina import Retina
from glimpse_env.retina_padded import _crop_thresholds


def naive_glimpse(image: np.ndarray, x: float, y: float, g: int, k: int, s: int) -> np.ndarray:
    """One image ``(C, H, W)`` (values in [0, 1]) -> ``(k * C, g, g)``, pixel by pixel."""
    c, h, w = image.shape
    px = w / 2 + x * (w / 2)
    py = h / 2 + y * (h / 2)
    out = []
    for i in range(k):
        cell = s**i
        side = g * cell
        c0 = math.floor(px + (0.5 - side / 2))
        r0 = math.floor(py + (0.5 - side / 2))
        patch = np.zeros((c, side, side))
        for r in range(side):
            for q in range(side):
                if 0 <= r0 + r < h and 0 <= c0 + q < w:
                    patch[:, r, q] = image[:, r0 + r, c0 + q]
        out.append(patch.reshape(c, g, cell, g, cell).mean(axis=(2, 4)))
    return np.concatenate(out, axis=0)


def serial_elements(count: int | None) -> contextlib.AbstractContextManager[object]:
    """CPU tensors worked through in blocks of at most ``count`` elements (None: the real size)."""
    if count is None:
        return contextlib.nullcontext()
    return mock.patch.object(devices_module, "SERIAL_ELEMENTS", count)


coordinate = st.one_of(
    st.sampled_from([-1.0, 1.0, 0.0, -0.5, 0.5]),
    st.floats(-1.0, 1.0, width=32, allow_nan=False),
)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    batch=st.integers(1, 4),
    height=st.integers(1, 24),
    width=st.integers(1, 24),
    g=st.integers(1, 6),
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    channels=st.sampled_from([None, 1, 3]),
    as_float=st.booleans(),
)
def test_retina_matches_naive_reference(data, batch, height, width, g, k, s, channels, as_float):
    # the CPU tensors' blocks of rows too: a block size drawn (None: the real SERIAL_ELEMENTS,
    # one block at these sizes, with the edges worked out by torch as on a GPU)
    block_elements = data.draw(st.sampled_from([None, 1, 40, 200]))
    with serial_elements(block_elements):
        check_against_naive_reference(data, batch, height, width, g, k, s, channels, as_float)


def check_against_naive_reference(data, batch, height, width, g, k, s, channels, as_float):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    shape = (batch, height, width) if channels is None else (batch, channels, height, width)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    images = torch.from_numpy(pixels.astype(np.float32) / 255.0 if as_float else pixels)
    locs = np.array([[data.draw(coordinate), data.draw(coordinate)] for _ in range(batch)], dtype=np.float32)
    retina = Retina(g, k, s)

    got = retina(images, torch.from_numpy(locs))
    # the numpy path (used by the single environment) runs the same code
    got_np = retina.from_integral(retina.integral(images).numpy(), locs)

    c = 1 if channels is None else channels
    expected = np.stack(
        [
            naive_glimpse(pixels[b].reshape(c, height, width) / 255.0, float(x), float(y), g, k, s)
            for b, (x, y) in enumerate(locs)
        ]
    )
    assert got.shape == (batch, k * c, g, g)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(got_np, got.numpy())
    if retina.pixel_cells and not as_float:  # crops of padded images: the same bits
        cropped = retina.from_padded(retina.padded(images), torch.from_numpy(locs))
        np.testing.assert_array_equal(cropped.numpy(), got.numpy())


def exact_naive_glimpse(image: np.ndarray, x: float, y: float, g: int, k: int, s: int) -> np.ndarray:
    """One uint8 image ``(C, H, W)`` -> ``(k * C, g, g)`` float32, scale-major, with the bits the
    retina promises: each cell's exact integer pixel sum (outside the canvas: 0), times the
    float32 of ``1 / (255 * s**(2i))``, rounded once to float32. Every channel alone, crop by crop."""
    c, h, w = image.shape
    px = w / 2 + x * (w / 2)  # float64, as the module docstring writes it
    py = h / 2 + y * (h / 2)
    out = np.zeros((k, c, g, g), dtype=np.float32)
    for i in range(k):
        cell = s**i
        side = g * cell
        c0 = math.floor(px + (0.5 - side / 2))
        r0 = math.floor(py + (0.5 - side / 2))
        scale = np.float32((1.0 / 255.0) / (cell * cell))
        for channel in range(c):
            plane = image[channel].astype(np.int64)
            for row in range(g):
                for col in range(g):
                    top, left = r0 + row * cell, c0 + col * cell
                    rows = slice(max(top, 0), max(min(top + cell, h), 0))
                    cols = slice(max(left, 0), max(min(left + cell, w), 0))
                    total = int(plane[rows, cols].sum())
                    out[i, channel, row, col] = np.float32(total) * scale
    return out.reshape(k * c, g, g)


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    batch=st.integers(1, 3),
    height=st.integers(1, 20),
    width=st.integers(1, 20),
    g=st.integers(1, 5),
    k=st.integers(1, 3),
    s=st.integers(1, 3),
    block_elements=st.sampled_from([None, 1, 40]),
)
def test_rgb_glimpses_are_bit_identical_to_a_naive_reference_on_every_path(
    data, batch, height, width, g, k, s, block_elements
):
    """RGB (C = 3) uint8 images: every scale averages each channel, ``(B, 3k, g, g)`` scale-major,
    bit for bit the naive reference's on every path: the integral image in torch and numpy, the
    crops of padded images (one-pixel cells), float32 and float64 locations, CPU blocks of rows."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    pixels = rng.integers(0, 256, size=(batch, 3, height, width), dtype=np.uint8)
    images = torch.from_numpy(pixels)
    wide = st.one_of(coordinate, st.floats(-1.5, 1.5, allow_nan=False))  # float64, not float32's
    locs32 = np.array(
        [[data.draw(coordinate), data.draw(coordinate)] for _ in range(batch)], dtype=np.float32
    )
    locs64 = np.array([[data.draw(wide), data.draw(wide)] for _ in range(batch)], dtype=np.float64)
    retina = Retina(g, k, s)
    for locs in (locs32, locs64):
        expected = np.stack(
            [exact_naive_glimpse(pixels[b], float(x), float(y), g, k, s) for b, (x, y) in enumerate(locs)]
        )
        located = torch.from_numpy(locs)
        with serial_elements(block_elements):
            paths = {
                "torch integral": retina.from_integral(retina.integral(images), located).numpy(),
                "numpy integral": retina.from_integral(retina.integral(images).numpy(), locs),
                "prepare/glimpse": retina.glimpse(retina.prepare(images), located).numpy(),
            }
            if retina.pixel_cells:
                paths["padded crops"] = retina.from_padded(retina.padded(images), located).numpy()
        for path, got in paths.items():
            assert got.shape == (batch, 3 * k, g, g) and got.dtype == np.float32, path
            np.testing.assert_array_equal(got, expected, err_msg=f"{path}, {locs.dtype} locations")
        # each channel is the grayscale glimpse of that channel alone
        for channel in range(3):
            alone = retina.from_integral(retina.integral(images[:, channel]), located).numpy()
            np.testing.assert_array_equal(paths["torch integral"][:, channel::3], alone)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    batch=st.integers(1, 5),
    height=st.integers(1, 30),
    width=st.integers(1, 30),
    g=st.integers(1, 9),
    k=st.integers(1, 3),
    channels=st.sampled_from([None, 1, 2]),
    block_elements=st.sampled_from([None, 1, 50]),
)
def test_crops_of_padded_images_equal_the_integral_glimpses_anywhere(
    data, batch, height, width, g, k, channels, block_elements
):
    """One-pixel cells (one scale, or a scale factor of 1): ``from_padded`` gives the bits of
    ``from_integral``, also for locations far outside [-1, 1] and at float32's awkward values."""
    retina = Retina(g, k, 1) if k > 1 else Retina(g)
    assert retina.pixel_cells
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    shape = (batch, height, width) if channels is None else (batch, channels, height, width)
    images = torch.from_numpy(rng.integers(0, 256, size=shape, dtype=np.uint8))
    anywhere = st.one_of(
        coordinate,
        st.floats(-5.0, 5.0, width=32, allow_nan=False),
        st.sampled_from([1e-30, -1e-30, 0.99999994, -0.99999994, 1.0000001, -1.0000001]),
    )
    locations = torch.tensor([[data.draw(anywhere), data.draw(anywhere)] for _ in range(batch)])
    with serial_elements(block_elements):
        padded = retina.padded(images)
        got = retina.from_padded(padded, locations)
        again = retina.from_padded(padded, locations)  # the plan's buffers, reused
    expected = retina.from_integral(retina.integral(images), locations)
    assert got.shape == expected.shape == (batch, k * (channels or 1), g, g)
    assert torch.equal(got, expected)
    assert torch.equal(again, expected)


def test_padded_images_keep_a_zero_border_and_take_a_reused_buffer():
    retina = Retina(3)
    images = torch.randint(1, 256, (2, 4, 5), dtype=torch.uint8)
    padded = retina.padded(images)
    assert padded.canvas.shape == (2, 1, 4 + 6, 5 + 6)
    assert padded.size == (4, 5)
    assert torch.equal(padded.canvas[:, 0, 3:7, 3:8], images)
    assert int(padded.canvas.sum()) == int(images.sum(dtype=torch.int64))  # zeros elsewhere
    buffer = torch.zeros(2, 1, 10, 11, dtype=torch.uint8)
    assert retina.padded(images, out=buffer).canvas is buffer
    assert torch.equal(buffer, padded.canvas)


def test_padded_images_refuse_what_they_cannot_serve():
    images = torch.zeros(2, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="integral"):
        Retina(4, 2, 2).padded(images)  # cells of 2x2 pixels need box sums
    with pytest.raises(TypeError, match="uint8"):
        Retina(4).padded(images.float())
    with pytest.raises(ValueError, match="shape"):
        Retina(4).padded(images, out=torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        Retina(4).padded(torch.zeros(8, dtype=torch.uint8))


def test_shapes_follow_docstring():
    retina = Retina(12, 3, 2)
    images = torch.zeros(5, 40, 60, dtype=torch.uint8)
    locations = torch.zeros(5, 2)
    assert retina(images, locations).shape == (5, 3, 12, 12)
    assert retina(torch.zeros(5, 3, 40, 60), locations).shape == (5, 9, 12, 12)
    assert retina.integral(images).table.shape == (5, 1, 41, 61)
    assert retina.boxes(locations, 40, 60).shape == (5, 3, 4)


def test_uint8_integral_is_exact_on_large_canvas():
    """A 256x256 canvas of 255s: the int32 sums are exact, every glimpse pixel inside is exactly 1."""
    retina = Retina(8, 4, 2)
    images = torch.full((2, 256, 256), 255, dtype=torch.uint8)
    out = retina(images, torch.zeros(2, 2))
    assert torch.equal(out, torch.ones_like(out))


def test_integral_into_a_reused_buffer_equals_a_fresh_one():
    retina = Retina(4, 2, 2)
    images = torch.randint(0, 256, (3, 9, 11), dtype=torch.uint8)
    fresh = retina.integral(images)
    buffer = torch.full((3, 1, 10, 12), 12345, dtype=torch.int32)  # stale values, border included
    reused = retina.integral(images, out=buffer)
    assert reused.table is buffer and torch.equal(buffer, fresh.table) and reused.scale == fresh.scale
    locations = torch.tensor([[0.1, -0.7], [1.0, 1.0], [-0.3, 0.2]])
    assert torch.equal(retina.from_integral(reused, locations), retina.from_integral(fresh, locations))
    with pytest.raises(ValueError, match=r"out must be a torch.int32 tensor of shape \(3, 1, 10, 12\)"):
        retina.integral(images, out=torch.zeros(3, 1, 10, 12, dtype=torch.int64))
    with pytest.raises(ValueError, match="out must be"):
        retina.integral(images, out=torch.zeros(2, 1, 10, 12, dtype=torch.int32))


def test_outside_the_canvas_reads_zero_and_corners_are_half_covered():
    retina = Retina(4, 1, 1)
    images = torch.full((1, 8, 8), 255, dtype=torch.uint8)
    out = retina(images, torch.tensor([[-1.0, -1.0]]))[0, 0]
    # centred on the top-left corner: the top-left 2x2 cells are outside
    expected = torch.zeros(4, 4)
    expected[2:, 2:] = 1.0
    assert torch.equal(out, expected)


def test_coordinates_x_is_column_and_y_is_row():
    retina = Retina(1, 1, 1)
    image = torch.zeros(1, 5, 7, dtype=torch.uint8)
    image[0, 0, 6] = 255  # top-right pixel
    # the centre of pixel (row 0, column 6): p = (6.5, 0.5) = (3.5 + x * 3.5, 2.5 + y * 2.5)
    assert retina(image, torch.tensor([[6 / 7, -0.8]])).item() == 1.0
    assert retina(image, torch.tensor([[-6 / 7, 0.8]])).item() == 0.0  # bottom-left pixel


def test_boxes_match_the_cells():
    retina = Retina(3, 2, 2)
    loc = torch.tensor([[0.25, -0.5]])
    boxes = retina.boxes(loc, 20, 30)[0]
    edges = retina.edges(loc, 20, 30)[0]
    for i, (c0, r0, c1, r1) in enumerate(boxes.tolist()):
        assert c1 - c0 == r1 - r0 == retina.patch_sides[i]
        assert (c0, r0) == (edges[0, i, 0].item(), edges[1, i, 0].item())


@pytest.mark.parametrize(
    ("bad", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_invalid_geometry_is_rejected(bad, error):
    with pytest.raises(error, match="patch_size must be an integer >= 1"):
        Retina(bad)


@pytest.mark.parametrize("size", [np.int64(12), np.int32(12), np.uint8(12), torch.tensor(12)])
def test_numpy_and_torch_integers_are_sizes(size):
    retina = Retina(size, np.int64(3), np.int16(2))
    assert retina.config == (12, 3, 2)
    assert all(type(v) is int for v in retina.config)


@pytest.mark.parametrize(("n_scales", "scale_factor"), [(62, 2), (64, 2), (2, 2**31), (10**9, 3)])
def test_largest_scale_is_bounded(n_scales, scale_factor):
    with pytest.raises(ValueError, match=r"MAX_PATCH_SIDE = 2\*\*20"):
        Retina(8, n_scales, scale_factor)
    Retina(8, 18, 2)  # 8 * 2**17 = 2**20: the largest accepted


def test_wrong_location_shape_is_rejected():
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        Retina(4)(torch.zeros(2, 8, 8), torch.zeros(3, 2))


def test_images_that_require_grad_are_taken_as_data():
    images = torch.rand(2, 16, 16, requires_grad=True)
    locations = torch.zeros(2, 2, requires_grad=True)  # e.g. the mean of a policy, not detached
    out = Retina(4, 2, 2)(images, locations)
    assert out.shape == (2, 2, 4, 4) and not out.requires_grad


@pytest.mark.parametrize(
    ("side", "g"), [(28, 8), (28, 7), (27, 8), (13, 8), (40, 12), (60, 1), (1, 5), (100, 9)]
)
def test_crop_thresholds_are_where_the_first_edge_steps_up(side: int, g: int) -> None:
    """Each float32 threshold is the first value whose edge (as ``first_edges`` works it out in
    float64) reaches its integer; the float32 value just below it does not. A search among them
    therefore gives the clamped edge of every float32 location, e.g. tiny ones and ones far out."""
    half, offset, p = side / 2, 0.5 - g / 2, g
    geometry = Retina(g).canvas_geometry(np.empty(0), side, side)
    thresholds = _crop_thresholds(geometry, 0, low=-p, high=side)
    assert np.array_equal(_crop_thresholds(geometry, 1, low=-p, high=side), thresholds)  # a square
    assert thresholds.dtype == np.float32 and thresholds.shape == (side + p,)

    def edge(x: np.ndarray) -> np.ndarray:
        return np.floor((half + x.astype(np.float64) * half) + offset)

    targets = np.arange(-p + 1, side + 1)
    below = np.nextafter(thresholds, np.float32(-np.inf))
    assert (edge(thresholds) >= targets).all() and (edge(below) < targets).all()
    rng = np.random.default_rng(side * 100 + g)
    samples = np.concatenate(
        [
            thresholds,
            below,
            np.nextafter(thresholds, np.float32(np.inf)),
            rng.uniform(-1, 1, 2000).astype(np.float32),
            rng.uniform(-50, 50, 200).astype(np.float32),
            np.array([0.0, -0.0, 1e-30, -1e-30, 1e-45, -1e-45, 1, -1, 3e38, -3e38], dtype=np.float32),
        ]
    )
    searched = torch.bucketize(torch.from_numpy(samples), torch.from_numpy(thresholds), right=True).numpy()
    np.testing.assert_array_equal(searched - p, np.clip(edge(samples), -p, side))


def test_float64_locations_take_the_arithmetic_with_the_same_bits() -> None:
    """Float64 locations (not exact in float32) skip the float32 thresholds and still give the
    integral image's glimpses, also on a canvas that is not square."""
    retina = Retina(5)
    images = torch.from_numpy(np.random.default_rng(3).integers(0, 256, size=(64, 17, 23), dtype=np.uint8))
    locations = torch.from_numpy(np.random.default_rng(4).uniform(-1.2, 1.2, size=(64, 2)))  # float64
    expected = retina.from_integral(retina.integral(images), locations)
    assert torch.equal(retina.from_padded(retina.padded(images), locations), expected)
    assert torch.equal(
        retina.from_padded(retina.padded(images), locations.float()),
        retina.from_integral(retina.integral(images), locations.float()),
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_crops_on_the_gpu_equal_the_cpus() -> None:
    """The threshold search and the float64 arithmetic give the CPU's bits on a GPU."""
    rng = np.random.default_rng(0)
    retina = Retina(5)
    images = torch.from_numpy(rng.integers(0, 256, size=(300, 17, 23), dtype=np.uint8))
    for dtype in (torch.float32, torch.float64):
        locations = torch.from_numpy(rng.uniform(-1.3, 1.3, (300, 2))).to(dtype)
        cpu = retina.from_padded(retina.padded(images), locations)
        gpu = retina.from_padded(retina.padded(images.cuda()), locations.cuda())
        assert torch.equal(gpu.cpu(), cpu)
