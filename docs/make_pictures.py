"""Draw one glimpse trajectory per environment id for the docs: ``docs/img/<ENV_ID>.png``.

    python docs/make_pictures.py [--out docs/img] [--data-dir DIR]

Needs the real data (``$GLIMPSE_DATA_DIR`` or ``--data-dir``). For every registered id it
makes the environment with ``render_mode="rgb_array"`` on the test split, shows test canvas
0 (``reset(options={"index": 0})``) and plays a fixed spiral of locations that starts at
the centre (no learned agent, no randomness: the pictures are the same on every machine).
It renders the environment after the reset and after every step that takes a glimpse, and
saves the frames side by side as one PNG: the canvas in grey, the box of every retina scale
of the current glimpse (red, green, blue, orange) and the trail of locations in yellow.
The PNGs are committed; rerun this script when the rendering or the settings change.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

import glimpse_env  # noqa: F401  (registers the ids)
from glimpse_env.registration import ENV_SPECS

OUT = Path(__file__).resolve().parent / "img"
#: frames wider than this many pixels are shrunk (nearest neighbour) to keep the PNGs small
FRAME_SIDE = 200
#: pixels of white between two frames
GAP = 4


def spiral(steps: int) -> np.ndarray:
    """``steps`` locations ``(x, y)`` on an outward spiral around the centre, within ``[-0.8, 0.8]``."""
    t = np.arange(1, steps + 1, dtype=np.float64)
    radius = 0.8 * t / steps
    angle = t * 2.0 * math.pi / 5.0
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1).astype(np.float32)


def trajectory(env_id: str, data_dir: Path | None = None) -> list[np.ndarray]:
    """The rendered frames of one episode of ``env_id``: one per glimpse."""
    env = gym.make(env_id, split="test", render_mode="rgb_array", data_dir=data_dir)
    env.reset(seed=0, options={"index": 0})
    frames = [env.render()]
    n_glimpses = env.unwrapped.config.n_glimpses
    for location in spiral(n_glimpses - 1):  # steps 1 .. T-1 take glimpses 2 .. T
        env.step({"location": location, "label": 0})
        frames.append(env.render())
    env.close()
    return [np.asarray(frame) for frame in frames]


def strip(frames: list[np.ndarray]) -> Image.Image:
    """The frames side by side, each at most :data:`FRAME_SIDE` pixels high, on white."""
    images = [Image.fromarray(frame) for frame in frames]
    images = [
        image.resize((FRAME_SIDE, FRAME_SIDE * image.height // image.width), Image.Resampling.NEAREST)
        if image.width > FRAME_SIDE
        else image
        for image in images
    ]
    width = sum(image.width for image in images) + GAP * (len(images) - 1)
    height = max(image.height for image in images)
    out = Image.new("RGB", (width, height), (255, 255, 255))
    x = 0
    for image in images:
        out.paste(image, (x, 0))
        x += image.width + GAP
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in ENV_SPECS:
        path = args.out / f"{spec.env_id}.png"
        picture = strip(trajectory(spec.env_id, args.data_dir))
        picture.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        print(f"{path}: {picture.width}x{picture.height}, {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
