"""Evaluate a baseline checkpoint on the fixed canvases of its environment.

    python -m baselines.evaluate --checkpoint RUN/checkpoints/best.pt --json out.json
    python -m baselines.evaluate --pretrained GlimpseMNIST-Fashion-v0 --model self_attention   # a shipped row

Every canvas of the split (the environment's own ``val`` or ``test`` canvases, through
:class:`glimpse_env.CanvasSource`) is classified; prints a table and, with ``--json``,
writes ``accuracy``, ``ci95`` (Wilson, 95%), ``n``, ``env_id``, ``params``, ``per_class``.
``--pretrained ENV_ID --model KIND`` classifies with the weights that ship for that
environment's leaderboard row (:func:`baselines.pretrained`, digests verified) and says
whether the accuracy is the row's to the last digit.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, NamedTuple

import torch

from baselines.models import (
    BaselineConfig,
    SelfAttentionCNN,
    SimpleCNN,
    as_inputs,
    count_parameters,
    model_from_config,
)
from baselines.shipped import pretrained
from glimpse_engine.checkpoints import load_checkpoint, rebuild_model
from glimpse_engine.cli import parse_args
from glimpse_engine.datasets import dataset_kwargs
from glimpse_engine.distributed import SINGLE, Cluster, gather_objects
from glimpse_engine.errors import CheckpointError
from glimpse_engine.runs import write_json
from glimpse_engine.scoring import MachineArgs, one_source, prepare_machine
from glimpse_engine.weights import reproduction
from glimpse_env import CanvasBatch, CanvasSource
from glimpse_env.cli import check_flag_int, check_output_file, run_cli
from glimpse_env.evaluation import score_predictions

__all__ = ["ClassifierResult", "evaluate_classifier", "load_baseline", "load_images", "main"]


class ClassifierResult(NamedTuple):
    """Accuracy of a full-image classifier on a split."""

    env_id: str
    split: str
    n: int
    """Canvases evaluated."""
    accuracy: float
    ci95: tuple[float, float]
    """Wilson score interval of the accuracy, 95%."""
    per_class: list[float]
    """Accuracy on the canvases of each class."""
    params: int
    """Trainable parameters of the model."""
    images_per_second: float

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


def load_images(source: CanvasSource, batch_size: int = 1000) -> CanvasBatch:
    """Every canvas of ``source``'s fixed set, in index order, as one batch on its device."""
    parts = list(source.batches(batch_size))
    return CanvasBatch(torch.cat([p.canvases for p in parts]), torch.cat([p.labels for p in parts]))


@torch.no_grad()
def evaluate_classifier(
    model: SimpleCNN | SelfAttentionCNN,
    images: CanvasBatch,
    *,
    batch_size: int = 1000,
    env_id: str,
    split: str,
    cluster: Cluster = SINGLE,
) -> ClassifierResult:
    """Classify every canvas of ``images`` (on the model's device) and score it with
    :func:`glimpse_env.evaluation.score_predictions` (the project's one scoring: accuracy,
    Wilson 95% interval, per-class accuracy).

    Under ``torchrun`` (``cluster``) the batches of ``batch_size`` canvases are shared out
    (batch ``b`` to rank ``b mod world_size``) and the predictions gathered: every canvas
    is classified in the same batch as in one process, so every rank gets the result one
    process gets."""
    was_training = model.training
    model.eval()
    mine = []
    start = time.perf_counter()
    starts = range(0, images.labels.shape[0], batch_size)
    for first in starts[cluster.rank :: cluster.world_size]:
        logits = model(as_inputs(images.canvases[first : first + batch_size]))
        mine.append((first, logits.argmax(1).cpu()))  # waits for the device: the time is the classification's
    elapsed = time.perf_counter() - start
    model.train(was_training)
    parts = [part for rank_parts in gather_objects(mine, cluster) for part in rank_parts]
    shares = sorted(parts, key=lambda part: part[0])
    predicted = torch.cat([part for _, part in shares]) if shares else torch.zeros(0, dtype=torch.int64)
    scores = score_predictions(predicted, images.labels, num_classes=model.config.num_classes)
    return ClassifierResult(
        env_id=env_id,
        split=split,
        n=scores.n,
        accuracy=scores.accuracy,
        ci95=scores.ci95,
        per_class=scores.per_class,
        params=count_parameters(model),
        images_per_second=scores.n / max(elapsed, 1e-9),
    )


def load_baseline(
    path: str, *, device: torch.device | str = "cpu"
) -> tuple[SimpleCNN | SelfAttentionCNN, dict[str, Any]]:
    """The baseline of a training checkpoint, on ``device``, and the run's configuration.

    Raises :class:`~glimpse_engine.errors.CheckpointError` for a missing or unreadable file, for a
    checkpoint of another program (a RAM of ``python -m agents.ram_reinforce`` is named as
    such, with the programs that read it) and for weights that do not fit the model.
    """
    state = load_checkpoint(path, map_location=device)
    model_config = state.get("model_config")
    if isinstance(model_config, dict) and "glimpse_shape" in model_config:  # agents.ram.ModelConfig
        raise CheckpointError(
            f"{path!r} is a RAM checkpoint of python -m agents.ram_reinforce, not a baseline checkpoint of "
            f"python -m baselines.train: evaluate it with python -m agents.evaluate --checkpoint {path} "
            f"(pictures: python -m agents.visualize)"
        )
    if "model" not in state or not isinstance(model_config, dict) or "canvas_shape" not in model_config:
        raise CheckpointError(
            f"{path!r} is not a baseline checkpoint (no baseline model in it); baselines.evaluate reads "
            f"checkpoints of python -m baselines.train (agents.evaluate reads the RAM's)"
        )
    model = rebuild_model(
        path, "baseline", lambda: model_from_config(BaselineConfig.from_dict(model_config)), state
    )
    return model.to(device), state["config"]


def format_table(result: ClassifierResult) -> str:
    """The evaluation as a small text table."""
    low, high = result.ci95
    return "\n".join(
        [
            f"env {result.env_id}, split {result.split}, {result.n} canvases, {result.params:,} parameters",
            f"accuracy {result.accuracy:.4f} (95% CI {low:.4f}-{high:.4f}), "
            f"error {100 * (1 - result.accuracy):.2f}%",
            "per class: " + " ".join(f"{i}:{a:.3f}" for i, a in enumerate(result.per_class)),
            f"{result.images_per_second:,.0f} images/s",
        ]
    )


@dataclass
class EvalArgs(MachineArgs):
    """Evaluate a baseline checkpoint on a split of its environment's canvases."""

    checkpoint: str = ""
    """path of a checkpoint written by python -m baselines.train (e.g. RUN/checkpoints/best.pt)"""
    pretrained: str | None = None
    """ENV_ID: classify with the --model that ships in the repository's weights/ for this environment's
    leaderboard row instead of a checkpoint (it reproduces the row)"""
    model: Literal["cnn", "self_attention"] | None = None
    """with --pretrained: which baseline"""
    split: str = field(default="test", metadata={"choices": ("val", "test")})
    """the split to classify (every canvas of it)"""
    batch_size: int | None = None
    """images per batch (default: 1000, or the row's with --pretrained)"""
    json: str | None = None
    """also write the result as JSON to this file (checked before the evaluation)"""


def main(argv: Sequence[str] | None = None) -> ClassifierResult:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the result.

    Bad input is a ``ValueError`` or :class:`~glimpse_engine.errors.CheckpointError` naming the flag
    or file, raised before anything is evaluated or written."""
    args = parse_args(EvalArgs, argv)
    one_source(
        args.checkpoint,
        args.pretrained,
        trainer="baselines.train",
        shipped="--pretrained ENV_ID --model cnn|self_attention",
    )
    if (args.model is None) == (args.pretrained is not None):
        sys.exit("error: --model cnn|self_attention goes with --pretrained ENV_ID (and only with it)")
    check_flag_int(args.batch_size, "--batch-size", low=1, optional=True, hint="e.g. --batch-size 1000")
    if args.json:
        check_output_file(args.json, "--json")
    device = prepare_machine(args)
    row: dict[str, Any] = {}
    images: dict[str, Any] = {}
    if args.pretrained is not None:
        assert args.model is not None
        shipped = pretrained(args.pretrained, model=args.model, device=device)
        model, env_id, name, row = shipped.model, shipped.env_id, args.model, shipped.card["evaluation"]
    else:
        model, config = load_baseline(args.checkpoint, device=device)
        env_id, name = config["env"], config["model"]
        images = dataset_kwargs(config.get("dataset"))  # a run on your own images: the same images
    args = replace(
        args, batch_size=row.get("batch_size", 1000) if args.batch_size is None else args.batch_size
    )
    assert args.batch_size is not None
    canvases = load_images(
        CanvasSource.from_id(env_id, split=args.split, device=device, **images), args.batch_size
    )
    result = evaluate_classifier(model, canvases, batch_size=args.batch_size, env_id=env_id, split=args.split)
    print(format_table(result))
    if args.pretrained is not None:
        as_row = args.split == row.get("split", "test") and args.batch_size == row.get("batch_size")
        print(reproduction(result.accuracy, shipped.card, same_protocol=as_row))
    if args.json:
        source = {"pretrained": args.pretrained} if args.pretrained else {"checkpoint": args.checkpoint}
        write_json(args.json, {**result.as_dict(), "model": name, **source, "args": asdict(args)})
    return result


if __name__ == "__main__":
    run_cli(main, errors=(CheckpointError,))
