"""Pictures of a baseline's view of test canvases: where the self-attention model looks.

    python -m baselines.visualize --checkpoint RUN/checkpoints/best.pt --out attention.png

One column per test canvas. For ``self_attention``: the canvas, and under it the canvas
tinted by the weights ``a`` of the weighted sum over the blocks (the brighter the red,
the more that block counts), the block grid drawn in where the blocks tile the feature map;
every canvas pixel takes the weight of its encoder cell (a stride of 4 pixels): the sum of
the weights of the blocks that cell lies in (with tiling blocks, its block's weight). For ``cnn``, which
has no attention, the canvases alone. Under each column: the class predicted and the
true class.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from baselines.models import POOL, SelfAttentionCNN, SimpleCNN, as_inputs
from glimpse_engine.cli import parse_args
from glimpse_engine.datasets import dataset_kwargs
from glimpse_engine.errors import CheckpointError
from glimpse_engine.pictures import CAPTION, GAP, caption, check_canvases
from glimpse_engine.scoring import MachineArgs, prepare_machine
from glimpse_env import CanvasBatch, CanvasSource
from glimpse_env.cli import check_output_file, run_cli

__all__ = ["main", "sample_picture"]

#: target size of a canvas's longer side in the picture, in pixels
PANEL_SIDE = 160
#: canvas pixels per encoder cell (two poolings)
CELL_STRIDE = POOL * POOL
GRID_COLOUR = np.array([90, 90, 90], dtype=np.uint8)


def _pixel_map(cells: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)``: each canvas pixel's value in ``cells`` ``(rows, columns)``, the encoder cell it falls in
    (pixels past the last cell take the last one's)."""
    rows = np.minimum(np.arange(shape[0]) // CELL_STRIDE, cells.shape[0] - 1)
    columns = np.minimum(np.arange(shape[1]) // CELL_STRIDE, cells.shape[1] - 1)
    return cells[rows[:, None], columns[None, :]]


@torch.no_grad()
def sample_picture(model: SimpleCNN | SelfAttentionCNN, images: CanvasBatch, *, count: int = 8) -> np.ndarray:
    """The picture of canvases ``0 .. count - 1`` of ``images`` (see the module): ``(H, W, 3)`` uint8."""
    canvases, labels = images.canvases[:count], images.labels[:count]
    was_training = model.training
    model.eval()
    pooling = None
    if isinstance(model, SelfAttentionCNN):
        maps = model.explain(as_inputs(canvases))
        cells = model.cell_weights(maps.pooling)  # (B, rows, columns) of cells
        logits, pooling = maps.logits, (cells / cells.flatten(1).amax(1)[:, None, None]).cpu().numpy()
    else:
        logits = model(as_inputs(canvases))
    model.train(was_training)
    predictions = logits.argmax(1).cpu().numpy()
    pictures = canvases.cpu().numpy()
    if pictures.ndim == 3:  # grayscale (B, H, W): the same value in red, green and blue
        pictures = np.repeat(pictures[..., None], 3, axis=3)
    else:  # RGB (B, 3, H, W): channels last
        pictures = pictures.transpose(0, 2, 3, 1)
    height, width = pictures.shape[1:3]
    zoom = max(1, PANEL_SIDE // max(height, width))
    panels = 1 if pooling is None else 2
    panel_h, panel_w = height * zoom, width * zoom
    out = np.full(
        (panels * (panel_h + GAP) + CAPTION, len(pictures) * (panel_w + GAP) - GAP, 3), 255, np.uint8
    )
    for j, rgb in enumerate(pictures):
        left = j * (panel_w + GAP)
        out[:panel_h, left : left + panel_w] = rgb.repeat(zoom, 0).repeat(zoom, 1)
        if pooling is not None:
            assert isinstance(model, SelfAttentionCNN)
            weight = _pixel_map(pooling[j], (height, width))
            tinted = rgb.astype(np.float32) * 0.6
            tinted[..., 0] += 255 * 0.4 * weight
            tinted[..., 1:] *= 1 - 0.5 * weight[..., None]
            panel = tinted.clip(0, 255).astype(np.uint8).repeat(zoom, 0).repeat(zoom, 1)
            if model.config.stride == model.config.block_size:  # tiling blocks: draw their edges
                edge = CELL_STRIDE * model.config.block_size * zoom
                for k in range(1, model.grid[0]):
                    panel[k * edge, :] = GRID_COLOUR
                for k in range(1, model.grid[1]):
                    panel[:, k * edge] = GRID_COLOUR
            out[panel_h + GAP : 2 * panel_h + GAP, left : left + panel_w] = panel
        right = int(predictions[j]) == int(labels[j])
        strip = out[-CAPTION:, left : left + panel_w].copy()
        text = f"pred {predictions[j]} true {int(labels[j])}"
        out[-CAPTION:, left : left + panel_w] = caption(strip, text, (0, 120, 0) if right else (200, 0, 0))
    return out


@dataclass
class VisualizeArgs(MachineArgs):
    """Draw a baseline checkpoint's predictions (and self-attention weights) on test canvases."""

    checkpoint: str = ""
    """path of a checkpoint written by python -m baselines.train"""
    out: str = "attention.png"
    """output PNG file"""
    count: int = 8
    """number of test canvases"""
    first_index: int = 0
    """first test canvas shown"""


def main(argv: Sequence[str] | None = None) -> Path:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the picture's path.

    Bad input is a ``ValueError`` or :class:`~glimpse_engine.errors.CheckpointError` naming the flag
    or file, raised before anything is drawn or written."""
    from PIL import Image

    from baselines.evaluate import load_baseline

    args = parse_args(VisualizeArgs, argv)
    if not args.checkpoint:
        sys.exit("error: --checkpoint PATH is required (a checkpoint of python -m baselines.train)")
    out = check_output_file(args.out, "--out", suffixes=(".png",), example="attention.png")
    check_canvases(args.count, args.first_index)
    device = prepare_machine(args)
    model, config = load_baseline(args.checkpoint, device=device)
    test = CanvasSource.from_id(
        config["env"], split="test", device=device, **dataset_kwargs(config.get("dataset"))
    )
    images = test.fixed(range(args.first_index, args.first_index + args.count))
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sample_picture(model, images, count=args.count)).save(out)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    run_cli(main, errors=(CheckpointError,))
