"""Evaluate a RAM checkpoint by running its policy in the environment.

    python -m agents.evaluate --checkpoint RUN/checkpoints/best.pt --mc-samples 10 --json out.json

Every canvas of the split is played, in batches of the native vector environment with
``reset(options={"indices": ...})``. With ``--mc-samples M`` each canvas is played ``M``
times with independently drawn locations and the class is the argmax of the mean
log-probabilities over the ``M`` episodes (Monte Carlo averaging, as in the study).
Prints a table; ``--json`` also writes the figures (``accuracy``, ``ci95``, ``n``,
``env_id``, ``per_class``, ``mean_locations``, ...).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import torch

from agents.ram import ModelConfig, RecurrentAttentionModel
from agents.rollout import make_vector_env, play_episodes
from agents.runs import CheckpointError, load_checkpoint, parse_args, use_data_dir, write_json
from glimpse_env.vector import check_device

__all__ = ["EvalResult", "evaluate_model", "load_model", "main"]

#: z of a two-sided 95% normal interval
Z95 = 1.959963984540054


class EvalResult(NamedTuple):
    """Accuracy of a policy on a split."""

    env_id: str
    split: str
    mc_samples: int
    n: int
    """Canvases evaluated."""
    accuracy: float
    ci95: tuple[float, float]
    """Wilson score interval of the accuracy, 95%."""
    per_class: list[float]
    """Accuracy on the canvases of each class."""
    mean_locations: list[list[float]]
    """``(T, 2)``: mean ``(x, y)`` of glimpse ``1 .. T`` over all episodes played."""
    episodes_per_second: float

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``correct / n``."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@torch.no_grad()
def evaluate_model(
    model: RecurrentAttentionModel,
    env_id: str,
    *,
    split: str = "test",
    mc_samples: int = 1,
    std: float,
    batch_size: int = 1000,
    episodes: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    generator: torch.Generator | None = None,
) -> EvalResult:
    """Play every canvas of ``split`` (or the first ``episodes``) ``mc_samples`` times and score it.

    Args:
        model: the RAM, on the device the environment is made on.
        env_id: registered environment id.
        split: ``"val"`` or ``"test"`` (or ``"train"`` with a fixed ``train_size`` in ``env_kwargs``).
        mc_samples: ``M``, episodes per canvas (locations drawn); ``0`` plays the means once.
        std: the policy's standard deviation.
        batch_size: episodes per batch (rounded down to a multiple of ``M``).
        episodes: evaluate only canvases ``0 .. episodes - 1``.
        env_kwargs: further environment settings.
        generator: torch generator of the location draws.
    """
    if mc_samples < 0:
        raise ValueError(f"mc_samples must be >= 0 (0 plays the mean locations), got {mc_samples}")
    repeats = max(mc_samples, 1)
    per_batch = max(1, batch_size // repeats)
    device = next(model.parameters()).device
    envs = make_vector_env(env_id, per_batch * repeats, device=device, split=split, **(env_kwargs or {}))
    total = envs.task.n_samples
    assert total is not None, "evaluation needs a fixed set of canvases"
    count = total if episodes is None else min(episodes, total)
    num_classes = model.config.num_classes
    correct_per_class = torch.zeros(num_classes, dtype=torch.int64, device=device)
    seen_per_class = torch.zeros(num_classes, dtype=torch.int64, device=device)
    location_sum = torch.zeros(envs.config.n_glimpses, 2, dtype=torch.float64, device=device)
    model.eval()
    start_time = time.perf_counter()
    for start in range(0, count, per_batch):
        images = torch.arange(start, start + per_batch, device=device).clamp_(max=count - 1)
        valid = min(per_batch, count - start)
        indices = images.repeat_interleave(repeats)
        rollout = play_episodes(
            model,
            envs,
            std=std,
            sample=mc_samples > 0,
            options={"indices": indices.cpu().numpy()},
            generator=generator,
        )
        log_p = torch.log_softmax(rollout.logits, 1).view(per_batch, repeats, -1).mean(1)[:valid]
        labels = rollout.labels.view(per_batch, repeats)[:valid, 0]
        hit = log_p.argmax(1) == labels
        seen_per_class += torch.bincount(labels, minlength=num_classes)
        correct_per_class += torch.bincount(labels[hit], minlength=num_classes)
        location_sum += rollout.locations[: valid * repeats].sum(0, dtype=torch.float64)
    elapsed = time.perf_counter() - start_time
    model.train()
    correct = int(correct_per_class.sum())
    per_class = (correct_per_class.double() / seen_per_class.clamp(min=1).double()).tolist()
    return EvalResult(
        env_id=env_id,
        split=split,
        mc_samples=mc_samples,
        n=count,
        accuracy=correct / count,
        ci95=wilson_interval(correct, count),
        per_class=per_class,
        mean_locations=(location_sum / (count * repeats)).tolist(),
        episodes_per_second=count * repeats / elapsed,
    )


def load_model(
    path: str, *, device: torch.device | str = "cpu"
) -> tuple[RecurrentAttentionModel, dict[str, Any]]:
    """The RAM of a training checkpoint, on ``device``, and the run's configuration."""
    state = load_checkpoint(path, map_location=device)
    config = state["config"]
    if "model" not in state or "model_config" not in state:
        raise CheckpointError(f"{path!r} is not a RAM checkpoint (no model in it)")
    model_config = state["model_config"]
    model = RecurrentAttentionModel(
        ModelConfig(**{**model_config, "glimpse_shape": tuple(model_config["glimpse_shape"])})
    ).to(device)
    model.load_state_dict(state["model"])
    return model, config


def format_table(result: EvalResult) -> str:
    """The evaluation as a small text table."""
    low, high = result.ci95
    lines = [
        f"env {result.env_id}, split {result.split}, {result.n} canvases, "
        f"Monte Carlo samples {result.mc_samples}",
        f"accuracy {result.accuracy:.4f} (95% CI {low:.4f}-{high:.4f}), "
        f"error {100 * (1 - result.accuracy):.2f}%",
        "per class: " + " ".join(f"{i}:{a:.3f}" for i, a in enumerate(result.per_class)),
        "mean glimpse locations (x, y) per step: "
        + " ".join(f"({x:+.2f},{y:+.2f})" for x, y in result.mean_locations),
        f"{result.episodes_per_second:,.0f} episodes/s",
    ]
    return "\n".join(lines)


@dataclass
class EvalArgs:
    """Evaluate a RAM checkpoint on a split of its environment."""

    checkpoint: str = ""
    """path of a checkpoint written by ``python -m agents.ram_reinforce`` (e.g. RUN/checkpoints/best.pt)"""
    split: str = field(default="test", metadata={"choices": ("val", "test")})
    """the split to play (every canvas of it)"""
    mc_samples: int = 10
    """Monte Carlo samples per canvas (0: play the mean locations once)"""
    episodes: int | None = None
    """evaluate only the first N canvases of the split"""
    batch_size: int = 1000
    """episodes per batch"""
    seed: int = 0
    """seed of the location draws"""
    device: str = "cpu"
    """cpu or cuda"""
    data_dir: str | None = None
    """folder of the MNIST / Fashion-MNIST raw files (default: $GLIMPSE_DATA_DIR, else the user cache)"""
    json: str | None = None
    """also write the result as JSON to this file"""


def main(argv: Sequence[str] | None = None) -> EvalResult:
    args = parse_args(EvalArgs, argv)
    if not args.checkpoint:
        sys.exit("--checkpoint PATH is required")
    use_data_dir(args.data_dir)
    device = check_device(args.device, "--device")
    model, config = load_model(args.checkpoint, device=device)
    generator = torch.Generator(device=device).manual_seed(args.seed)
    result = evaluate_model(
        model,
        config["env"],
        split=args.split,
        mc_samples=args.mc_samples,
        std=config["std"],
        batch_size=args.batch_size,
        episodes=args.episodes,
        generator=generator,
    )
    print(format_table(result))
    if args.json:
        write_json(args.json, {**result.as_dict(), "checkpoint": args.checkpoint, "args": asdict(args)})
    return result


if __name__ == "__main__":
    try:
        main()
    except (CheckpointError, ValueError) as error:
        sys.exit(f"error: {error}")
