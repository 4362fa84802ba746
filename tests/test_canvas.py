"""Canvas generators: placement, clutter, ranges and determinism."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from glimpse_env.canvas import CanvasSpec, compose, fixed_keys, random_draws
from glimpse_env.data import load_split


def _keys(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64, size=n, dtype=np.uint64)


def _window_positions(canvas: np.ndarray, image: np.ndarray) -> list[tuple[int, int]]:
    """Every (row, col) where the canvas covers the image pixelwise (canvas >= image)."""
    h, w = canvas.shape
    return [
        (r, c)
        for r in range(h - 27)
        for c in range(w - 27)
        if (canvas[r : r + 28, c : c + 28] >= image).all()
    ]


def test_translated_canvas_holds_exactly_the_image():
    test = load_split("mnist", "test")
    idx = torch.arange(20)
    canvases = compose(CanvasSpec.translated(60), test.images, idx, _keys(20)).numpy()
    assert canvases.shape == (20, 60, 60) and canvases.dtype == np.uint8
    for canvas, image in zip(canvases, test.images[:20].numpy(), strict=True):
        assert canvas.sum(dtype=np.int64) == image.sum(dtype=np.int64)  # all of it, nothing else
        assert len(_window_positions(canvas, image)) >= 1


def test_positions_cover_the_canvas_uniformly():
    spec = CanvasSpec.translated(60)
    u = random_draws(_keys(20_000), spec.n_draws)
    rows = (u[:, 0] % np.uint64(33)).astype(np.int64)
    counts = np.bincount(rows, minlength=33)
    assert counts.min() > 0.8 * 20_000 / 33 and counts.max() < 1.2 * 20_000 / 33


def test_cluttered_canvas_contains_the_digit_fully():
    test = load_split("mnist", "test")
    idx = torch.arange(10)
    canvases = compose(CanvasSpec.cluttered(40, 5, 5), test.images, idx, _keys(10)).numpy()
    for canvas, image in zip(canvases, test.images[:10].numpy(), strict=True):
        assert len(_window_positions(canvas, image)) >= 1
        assert canvas.sum(dtype=np.int64) >= image.sum(dtype=np.int64)


@pytest.mark.parametrize(("size", "n", "c"), [(40, 5, 5), (60, 4, 8), (100, 8, 8)])
def test_clutter_count_and_size(size, n, c):
    """A blank digit among full-white images: the canvas is the union of the clutter pieces."""
    images = torch.full((50, 28, 28), 255, dtype=torch.uint8)
    images[0] = 0
    batch = 300
    canvases = compose(
        CanvasSpec.cluttered(size, n, c), images, torch.zeros(batch, dtype=torch.int64), _keys(batch)
    )
    lit = (canvases == 255).sum(dim=(1, 2)).numpy()
    assert set(np.unique(canvases.numpy())) <= {0, 255}
    assert lit.max() == n * c * c  # pieces that do not overlap: exactly n of c x c
    assert lit.min() >= c * c
    assert (lit <= n * c * c).all()


def test_clutter_never_comes_from_the_digit_itself():
    """Only image 0 is lit, and every canvas shows image 0: no clutter can be lit."""
    images = torch.zeros((5, 28, 28), dtype=torch.uint8)
    images[0] = 255
    canvases = compose(
        CanvasSpec.cluttered(60, 8, 8), images, torch.zeros(200, dtype=torch.int64), _keys(200)
    )
    assert ((canvases == 255).sum(dim=(1, 2)) == 28 * 28).all()


def test_fixed_keys_are_pure_and_distinct():
    spec = CanvasSpec.cluttered()
    a = fixed_keys(spec, dataset="mnist", dataset_seed=0, split="test", indices=np.arange(1000))
    b = fixed_keys(spec, dataset="mnist", dataset_seed=0, split="test", indices=np.arange(1000))
    assert np.array_equal(a, b)
    assert len(set(a.tolist())) == 1000
    other_seed = fixed_keys(spec, dataset="mnist", dataset_seed=1, split="test", indices=np.arange(1000))
    other_split = fixed_keys(spec, dataset="mnist", dataset_seed=0, split="val", indices=np.arange(1000))
    assert not np.array_equal(a, other_seed) and not np.array_equal(a, other_split)


def test_test_canvases_match_stored_digest():
    """Canvases 0..255 of the cluttered test set, byte for byte, as on every machine."""
    test = load_split("mnist", "test")
    spec = CanvasSpec.cluttered(60, 4, 8)
    idx = np.arange(256)
    keys = fixed_keys(spec, dataset="mnist", dataset_seed=0, split="test", indices=idx)
    canvases = compose(spec, test.images, torch.from_numpy(idx), keys)
    digest = hashlib.sha256(canvases.numpy().tobytes()).hexdigest()
    assert digest == STORED_DIGEST


STORED_DIGEST = "7e32967922e29d606bf7b105e0384b6e85eb51a22d40e6ac41528afab3753eb9"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variant": "rotated"}, "unknown canvas variant"),
        ({"variant": "centred", "height": 40, "width": 40}, "centred canvas"),
        ({"variant": "translated", "height": 20, "width": 60}, "smaller than"),
        ({"variant": "cluttered", "height": 40, "width": 40, "n_clutter": 0, "clutter_size": 5}, "n_clutter"),
        (
            {"variant": "cluttered", "height": 40, "width": 40, "n_clutter": 3, "clutter_size": 29},
            "clutter_size",
        ),
        ({"variant": "translated", "height": 60, "width": 60, "n_clutter": 3}, "cluttered"),
    ],
)
def test_invalid_specs_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CanvasSpec(**kwargs)
