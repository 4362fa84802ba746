"""Pictures of glimpses: the canvas with the boxes of every scale and the trail of locations."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from glimpse_env.retina import Retina

#: colours of the boxes of scales 0, 1, 2, ... (RGB), then cycling
SCALE_COLOURS = np.array(
    [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180]], dtype=np.uint8
)
TRAIL_COLOUR = np.array([255, 225, 25], dtype=np.uint8)
#: target size of the longer side of a rendered canvas, in pixels
RENDER_SIDE = 280


def upscale_factor(height: int, width: int) -> int:
    """Integer zoom that brings the longer side to about :data:`RENDER_SIDE` pixels."""
    return max(1, RENDER_SIDE // max(height, width))


def _rectangle(frame: np.ndarray, box: np.ndarray, colour: np.ndarray, thickness: int) -> None:
    """Outline of ``box = (c0, r0, c1, r1)`` (frame pixels, end exclusive), clipped to the frame."""
    h, w = frame.shape[:2]
    c0, r0, c1, r1 = (int(v) for v in box)
    for top, bottom, left, right in (
        (r0, r0 + thickness, c0, c1),
        (r1 - thickness, r1, c0, c1),
        (r0, r1, c0, c0 + thickness),
        (r0, r1, c1 - thickness, c1),
    ):
        top, bottom = max(top, 0), min(bottom, h)
        left, right = max(left, 0), min(right, w)
        if top < bottom and left < right:
            frame[top:bottom, left:right] = colour


def _line(frame: np.ndarray, start: np.ndarray, end: np.ndarray, colour: np.ndarray) -> None:
    """A straight line of single pixels between two ``(col, row)`` points, clipped to the frame."""
    n = int(np.ceil(np.abs(end - start).max())) + 1
    points = np.rint(np.linspace(start, end, n)).astype(np.int64)
    keep = (
        (points[:, 0] >= 0)
        & (points[:, 0] < frame.shape[1])
        & (points[:, 1] >= 0)
        & (points[:, 1] < frame.shape[0])
    )
    frame[points[keep, 1], points[keep, 0]] = colour


def draw_glimpses(canvas: torch.Tensor | np.ndarray, retina: Retina, locations: np.ndarray) -> np.ndarray:
    """An RGB picture of ``canvas`` with the glimpses taken at ``locations``.

    Args:
        canvas: ``(H, W)`` uint8 image, or ``(C, H, W)`` channels first (``C = 3``: RGB,
            drawn in colour; ``C = 1``: grey).
        retina: the retina that took the glimpses (for the box of every scale).
        locations: ``(n, 2)`` locations in order; the last one is the current glimpse.

    Returns:
        ``(H * z, W * z, 3)`` uint8, ``z`` from :func:`upscale_factor`: the canvas in grey (or colour),
        the trail of locations as a yellow polyline with a dot at each glimpse, and the
        box of every scale of the current glimpse (red, green, blue, ...).
    """
    image = canvas.cpu().numpy() if isinstance(canvas, torch.Tensor) else np.asarray(canvas)
    if image.ndim == 3:  # (C, H, W): channels last, three of them
        image = np.moveaxis(image, 0, -1)
        image = image if image.shape[2] == 3 else image[:, :, :1].repeat(3, axis=2)
    else:
        image = image[:, :, None].repeat(3, axis=2)
    h, w = image.shape[:2]
    z = upscale_factor(h, w)
    frame = np.ascontiguousarray(np.repeat(np.repeat(image, z, axis=0), z, axis=1))
    locations = np.asarray(locations, dtype=np.float64).reshape(-1, 2)
    if locations.shape[0] == 0:
        return frame
    centres = (locations + 1.0) / 2.0 * np.array([w, h]) * z  # (col, row) in frame pixels
    for a, b in itertools.pairwise(centres):
        _line(frame, a, b, TRAIL_COLOUR)
    dot = max(1, z // 2)
    for centre in centres:
        c, r = np.rint(centre).astype(np.int64)
        frame[max(r - dot, 0) : r + dot + 1, max(c - dot, 0) : c + dot + 1] = TRAIL_COLOUR
    boxes = retina.boxes(locations[-1:], h, w)[0] * z  # (k, 4)
    thickness = max(1, z // 3)
    for i, box in enumerate(boxes):
        _rectangle(frame, box, SCALE_COLOURS[i % len(SCALE_COLOURS)], thickness)
    return frame
