"""Pieces of the pictures of a model at work that the RAM's and the baselines' picture programs
share: the grid's spacing, caption strips and the check of the test canvases asked for."""

from __future__ import annotations

import numpy as np

from glimpse_env.cli import check_flag_int
from glimpse_env.data import SPLIT_SIZES

__all__ = ["CAPTION", "GAP", "caption", "check_canvases"]

#: pixels between pictures in a grid
GAP = 4
#: height of the caption strip under each column
CAPTION = 14


def caption(strip: np.ndarray, text: str, colour: tuple[int, int, int]) -> np.ndarray:
    """``strip`` (an ``(h, w, 3)`` uint8 picture) with ``text`` written on it in ``colour``."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(strip)
    ImageDraw.Draw(image).text((2, 1), text, fill=colour)
    return np.asarray(image)


def check_canvases(count: int, first_index: int) -> None:
    """``--count`` and ``--first-index`` name test canvases that exist (a ``ValueError`` naming
    the flags otherwise); shared by the picture programs."""
    total = SPLIT_SIZES["test"]
    check_flag_int(count, "--count", low=1, high=total, hint="e.g. --count 8")
    check_flag_int(first_index, "--first-index", low=0, high=total - 1, hint="the first canvas is 0")
    if first_index + count > total:
        raise ValueError(
            f"--first-index {first_index} with --count {count} runs past the test split's {total} canvases "
            f"(indices 0..{total - 1}): lower --first-index to at most {total - count} or --count to at most "
            f"{total - first_index}"
        )
