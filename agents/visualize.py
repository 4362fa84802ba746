"""Pictures of a RAM's glimpse trajectories on test images (as the study's Figure 4).

    python -m agents.visualize --checkpoint RUN/checkpoints/best.pt --out glimpses.png
    python -m agents.visualize --checkpoint RUN/checkpoints/best.pt --out glimpses.gif
    python -m agents.visualize --pretrained GlimpseMNIST-v0 --out glimpses.png     # a shipped row

The PNG is a grid: one column per test image, one row per glimpse in order, each cell the
environment's own rendering (:func:`glimpse_env.render.draw_glimpses`: the canvas, the
trail of locations so far and the box of every scale of the current glimpse). Under each
column: the class played and the true class. The GIF shows the same rows as frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.ram import RecurrentAttentionModel
from agents.rollout import make_vector_env, play_episodes
from glimpse_engine.cli import parse_args
from glimpse_engine.datasets import dataset_kwargs
from glimpse_engine.errors import CheckpointError
from glimpse_engine.pictures import CAPTION, GAP, caption, check_canvases
from glimpse_engine.scoring import MachineArgs, one_source, prepare_machine
from glimpse_env.cli import check_flag_int, check_output_file, run_cli

__all__ = ["caption", "check_canvases", "main", "trajectory_frames", "trajectory_grid"]

#: the trainer whose checkpoints this program loads
TRAINER = "agents.ram_reinforce"


@torch.no_grad()
def trajectory_frames(
    model: RecurrentAttentionModel,
    env_id: str,
    *,
    std: float,
    count: int = 8,
    first_index: int = 0,
    sample: bool = False,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Play test canvases ``first_index .. first_index + count - 1`` and render every glimpse.

    With ``sample`` the locations are drawn with ``generator`` (default: torch's global one);
    ``env_kwargs`` are further environment settings (e.g. ``dataset``).

    Returns:
        ``(frames, predictions, labels)``: ``frames`` ``(T, count, h, w, 3)`` uint8 (row ``t``:
        the pictures after glimpse ``t + 1``), the classes played and the true classes ``(count,)``.
    """
    envs = make_vector_env(
        env_id, count, device=device, split="test", render_mode="rgb_array", **(env_kwargs or {})
    )
    rows: list[np.ndarray] = []

    def render(_: int) -> None:
        pictures = envs.render()
        assert pictures is not None
        rows.append(np.stack(pictures))

    was_training = model.training
    model.eval()
    indices = np.arange(first_index, first_index + count)
    rollout = play_episodes(
        model,
        envs,
        std=std,
        sample=sample,
        options={"indices": indices},
        observer=render,
        seed=0,
        generator=generator,
    )
    model.train(was_training)
    predictions = rollout.logits.argmax(1).cpu().numpy()
    return np.stack(rows), predictions, rollout.labels.cpu().numpy()


def grid(frames: np.ndarray, predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``(T, count, h, w, 3)`` pictures as one ``(H, W, 3)`` image with captions under the columns."""
    steps, count, h, w, _ = frames.shape
    height = steps * (h + GAP) + CAPTION
    width = count * (w + GAP) - GAP
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    for t in range(steps):
        for j in range(count):
            top, left = t * (h + GAP), j * (w + GAP)
            out[top : top + h, left : left + w] = frames[t, j]
    for j in range(count):
        left = j * (w + GAP)
        strip = out[height - CAPTION :, left : left + w]
        right = int(predictions[j]) == int(labels[j])
        colour = (0, 120, 0) if right else (200, 0, 0)
        out[height - CAPTION :, left : left + w] = caption(
            strip.copy(), f"played {predictions[j]} true {labels[j]}", colour
        )
    return out


def trajectory_grid(
    model: RecurrentAttentionModel,
    env_id: str,
    *,
    std: float,
    count: int = 8,
    device: torch.device | str = "cpu",
    env_kwargs: dict[str, Any] | None = None,
) -> np.ndarray:
    """The PNG picture of :func:`trajectory_frames` (``(H, W, 3)`` uint8), e.g. for TensorBoard."""
    frames, predictions, labels = trajectory_frames(
        model, env_id, std=std, count=count, device=device, env_kwargs=env_kwargs
    )
    return grid(frames, predictions, labels)


@dataclass
class VisualizeArgs(MachineArgs):
    """Draw a RAM checkpoint's glimpse trajectories on test images."""

    checkpoint: str = ""
    """path of a checkpoint written by python -m agents.ram_reinforce"""
    pretrained: str | None = None
    """ENV_ID: draw the RAM that ships in the repository's weights/ for this environment's leaderboard row"""
    out: str = "glimpses.png"
    """output file: .png (a grid, one row per glimpse) or .gif (one frame per glimpse)"""
    count: int = 8
    """number of test images"""
    first_index: int = 0
    """first test canvas shown"""
    sample: bool = False
    """draw the locations from the policy (default: play its mean locations)"""
    seed: int | None = None
    """seed of the location draws with --sample (default: the checkpoint's training seed, config["seed"],
    as agents.evaluate)"""


def main(argv: Sequence[str] | None = None) -> Path:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the picture's path.

    Bad input is a ``ValueError`` or :class:`~glimpse_engine.errors.CheckpointError` naming the flag
    or file, raised before anything is played or written."""
    from PIL import Image

    from agents.evaluate import default_seed, load_model
    from agents.shipped import pretrained

    args = parse_args(VisualizeArgs, argv)
    one_source(
        args.checkpoint, args.pretrained, trainer="agents.ram_reinforce", shipped="--pretrained ENV_ID"
    )
    out = check_output_file(args.out, "--out", suffixes=(".png", ".gif"), example="glimpses.png")
    check_canvases(args.count, args.first_index)
    check_flag_int(args.seed, "--seed", low=0, optional=True, hint="drop it for the training seed")
    device = prepare_machine(args)
    if args.pretrained is not None:
        shipped = pretrained(args.pretrained, device=device)
        model, env_id, std, own_seed = shipped.model, shipped.env_id, shipped.std, shipped.seed
        images: dict[str, Any] = {}
    else:
        model, config = load_model(args.checkpoint, device=device)
        env_id, std, own_seed = config["env"], config["std"], default_seed(config)
        images = dataset_kwargs(config.get("dataset"))  # a run on your own images: the same images
    seed = own_seed if args.seed is None else args.seed
    frames, predictions, labels = trajectory_frames(
        model,
        env_id,
        std=std,
        count=args.count,
        first_index=args.first_index,
        sample=args.sample,
        device=device,
        generator=torch.Generator(device=device).manual_seed(seed),
        env_kwargs=images,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        Image.fromarray(grid(frames, predictions, labels)).save(out)
    else:
        pictures = [Image.fromarray(grid(frames[t : t + 1], predictions, labels)) for t in range(len(frames))]
        pictures[0].save(out, save_all=True, append_images=pictures[1:], duration=700, loop=0)
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    run_cli(main, errors=(CheckpointError,))
