"""Train the study's full-image baselines on exactly the canvases a glimpse environment shows.

    python -m baselines.train --model cnn --env GlimpseMNIST-Cluttered-v0
    python -m baselines.train --model self_attention --env GlimpseMNIST-Cluttered-v0 --train-size 10000
    python -m baselines.train --resume runs/cnn-GlimpseMNIST-Fashion-v0-seed1 --epochs 60
    torchrun --nproc_per_node=2 -m baselines.train --model cnn --env GlimpseMNIST-Fashion-v0   # data-parallel

The images come from the environment's canvas API (:class:`glimpse_env.CanvasSource`) for
``--env``: fresh training canvases drawn on the device batch by batch (the default), or
the fixed training set of ``--train-size N`` (the study's 10,000 cluttered images),
shuffled every epoch; ``val`` and ``test`` are the environment's own fixed canvases. The
study's recipe is the default: Adam at 1e-3, the learning rate halved after an epoch
without a better validation accuracy, early stopping after 2 such epochs. Model selection
is on ``val``; ``test`` is scored once, at the end, with the best checkpoint.

The run folder (``--run-dir``) gets ``config.json``, TensorBoard scalars (``charts/``,
``losses/``) and sample pictures, ``checkpoints/last.pt`` and ``checkpoints/best.pt`` and
``results/test.json``; see :mod:`glimpse_engine.fit` (the fit loop the RAM agent uses too).

Under ``torchrun`` the model is trained with ``DistributedDataParallel``: every rank
draws its own canvases (or its own share of the fixed training set), ``--batch-size`` is
per rank, and validation and test are shared out and combined; see :mod:`glimpse_engine.distributed`.
"""

from __future__ import annotations

import time
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.nn import functional as F

from baselines.evaluate import ClassifierResult, evaluate_classifier, format_table, load_images
from baselines.models import (
    BLOCK_SIZE,
    CNN_HIDDEN,
    D_MODEL,
    HEAD_HIDDEN,
    HEADS,
    BaselineConfig,
    Classifier,
    as_inputs,
    model_from_config,
)
from baselines.visualize import sample_picture
from glimpse_engine.averaging import epoch_average, weight_average
from glimpse_engine.cli import run_main, trainer
from glimpse_engine.datasets import dataset_kwargs
from glimpse_engine.distributed import data_parallel, mean_over_ranks, rank_seed
from glimpse_engine.fit import EpochResult, Fit, Learner, Program, fit, make_scheduler, start
from glimpse_engine.scoring import RunArgs
from glimpse_env import CanvasBatch, CanvasSource
from glimpse_env.registration import check_env_id

__all__ = ["Args", "check_baseline", "check_swa", "main"]

#: this trainer, as ``python -m`` runs it (recorded in a run's commands.json)
PROGRAM = "baselines.train"


@dataclass
class Args(RunArgs):
    """Train a full-image baseline (the study's CNN or CNN + self-attention) on an environment's canvases."""

    model: Literal["cnn", "self_attention"] = "cnn"
    """cnn (the study's simple CNN) or self_attention (the same encoder with self-attention over blocks)"""
    env: str = "GlimpseMNIST-Cluttered-v0"
    """registered environment id: its canvases (fresh training canvases, fixed val and test sets) are used"""
    seed: int = 1
    """seed of the weights, the training canvases and their order"""
    epochs: int = 100
    """maximum number of epochs (early stopping usually ends the run first)"""
    dataset: str | None = None
    """MODULE:NAME of your own images, a glimpse_env.ImageDataset (or a function returning one) that
    --env's canvases and clutter are applied to (default: the id's own dataset)"""
    train_size: int | None = None
    """fix the training set to this many canvases (the study: 10000); default: fresh canvases every batch"""
    images_per_epoch: int | None = None
    """training images per epoch (default: 55,000, or the fixed training set once)"""
    batch_size: int = 128
    """images per update and rank (under torchrun an update sees world_size * batch_size images; the learning
    rate is not rescaled)"""
    learning_rate: float = 1e-3
    """initial learning rate of Adam (the study: 1e-3)"""
    lr_schedule: Literal["plateau", "cosine"] = "plateau"
    """plateau (the study): multiply by --lr-factor after --lr-patience + 1 epochs without a better val
    accuracy; cosine: anneal to 0 over --epochs (as set when the run started), whatever val does"""
    lr_factor: float = 0.5
    """multiply the learning rate by this after --lr-patience + 1 epochs without a better val accuracy"""
    lr_patience: int = 0
    """epochs without improvement tolerated before the learning rate is reduced (0: reduce at the first)"""
    patience: int = 2
    """early stopping: epochs without a better val accuracy before training stops (the study: 2)"""
    weight_decay: float = 0.0
    """decoupled weight decay (AdamW when > 0)"""
    dropout: float = 0.0
    """dropout before the last layer (and on the attention weights)"""
    feature_dropout: float = 0.0
    """dropout on the encoder's features where they enter the next trained layer (cnn: the first fully
    connected layer; self_attention: the block projection)"""
    label_smoothing: float = 0.0
    """label smoothing of the cross-entropy (0: none)"""
    ema: float = 0.0
    """decay of an exponential moving average of the weights, updated after every update; the average is
    what validation selects on and what the test scores (0: none; e.g. 0.999)"""
    swa_start: int = 0
    """stochastic weight averaging: from this epoch on, the weights at the end of every epoch are averaged
    equally, and the average is what validation selects on and what the test scores (0: none; not with
    --ema)"""
    swa_lr: float | None = None
    """the learning rate held constant from --swa-start on, in place of the schedule (default: the schedule
    goes on)"""
    hidden: int = CNN_HIDDEN
    """cnn: width of the first fully connected layer (the default gives the study's 1.83M on 40x40)"""
    block_size: int = BLOCK_SIZE
    """self_attention: a block is block_size x block_size cells of the encoder's feature map"""
    block_stride: int = 0
    """self_attention: cells between neighbouring blocks, 1..block_size; below block_size the blocks overlap
    (0: block_size, blocks that tile the feature map, the study's cut)"""
    d_model: int = D_MODEL
    """self_attention: width of a block after its projection"""
    heads: int = HEADS
    """self_attention: attention heads (d_model must be a multiple)"""
    head_hidden: int = HEAD_HIDDEN
    """self_attention: width of the classifier's hidden layer"""
    ffn_hidden: int = 0
    """self_attention: width of a Transformer-style feed-forward sublayer after the attention (0: none,
    the study's model)"""
    pool_heads: int = 1
    """self_attention: how many softmax weightings of the blocks are summed, side by side, into the
    classifier (1: the study's single weighted sum)"""
    eval_batch_size: int = 1000
    """images per batch in validation and test"""
    image_every: int = 5
    """write sample pictures (with the attention weights of self_attention) to TensorBoard every N epochs
    (0: never)"""


@trainer(PROGRAM)  # torchrun's error reports; Ctrl-C: one line that says how to continue
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args, session = start(
        Args,
        argv,
        name=PROGRAM,
        check=check_baseline,
        per_epoch=lambda args: args.images_per_epoch,
        per_epoch_flag="--images-per-epoch",
        unit="images",
        default_run_dir=lambda args: f"runs/{args.model}-{args.env}-seed{args.seed}",
    )
    cluster, device = session.cluster, session.device

    # ---------------------------------------------------------------- seeding
    canvas_rng = np.random.default_rng(rank_seed(args.seed, cluster))  # this rank's fresh training canvases

    # ---------------------------------------------------------------- canvases (the environment's)
    images = dataset_kwargs(args.dataset)  # {"dataset": ...} for your own images, else {}
    overrides: dict[str, Any] = (
        {**images} if args.train_size is None else {**images, "train_size": args.train_size}
    )
    train_source = CanvasSource.from_id(args.env, split="train", device=device, **overrides)
    fixed_train = None if args.train_size is None else load_images(train_source, args.eval_batch_size)
    val = load_images(
        CanvasSource.from_id(args.env, split="val", device=device, **images), args.eval_batch_size
    )

    # ---------------------------------------------------------------- model
    mconfig = BaselineConfig(
        name=args.model,
        canvas_shape=train_source.shape,
        num_classes=train_source.num_classes,
        in_channels=train_source.channels,
        hidden=args.hidden,
        d_model=args.d_model,
        heads=args.heads,
        block_size=args.block_size,
        block_stride=args.block_stride,
        head_hidden=args.head_hidden,
        ffn_hidden=args.ffn_hidden,
        pool_heads=args.pool_heads,
        dropout=args.dropout,
        feature_dropout=args.feature_dropout,
    )
    model = model_from_config(mconfig).to(device)
    trained = data_parallel(model, cluster, device)  # what the updates run (DDP-wrapped under torchrun)
    if cluster.distributed:
        torch.manual_seed(rank_seed(args.seed, cluster))  # dropout: this rank's own stream
    average = epoch_average(model) if args.swa_start else weight_average(model, args.ema)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    scheduler = make_scheduler(
        optimizer, args.lr_schedule, epochs=args.epochs, factor=args.lr_factor, patience=args.lr_patience
    )

    # ---------------------------------------------------------------- one epoch of supervised updates
    def training_batch(indices: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        if fixed_train is None or indices is None:
            return train_source.fresh(args.batch_size, canvas_rng)
        picked = torch.as_tensor(indices, device=device)
        return fixed_train.canvases[picked], fixed_train.labels[picked]

    def train_epoch(epoch: int, updates: Iterable[int], fit: Fit) -> EpochResult:
        model.train()
        sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss, correct
        canvas_seconds = 0.0
        start = time.perf_counter()
        for update in updates:
            if device.type == "cuda":  # time the canvases alone, not the GPU's queue of the last update
                torch.cuda.synchronize(device)
            batch_start = time.perf_counter()
            canvases, labels = training_batch(fit.indices(update))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            canvas_seconds += time.perf_counter() - batch_start
            logits = trained(as_inputs(canvases))
            loss = F.cross_entropy(logits, labels, label_smoothing=args.label_smoothing)
            fit.step(loss, update)
            sums += torch.stack([loss.detach(), (logits.detach().argmax(1) == labels).sum()]).double()
        seconds = time.perf_counter() - start
        mean_over_ranks(sums, cluster)  # every rank's sums: the epoch's means over all of its images
        train_loss, train_correct = sums.tolist()
        mean_loss = train_loss / session.updates_per_epoch
        return EpochResult(
            scalars={
                "losses/cross_entropy": mean_loss,
                "charts/train_accuracy": train_correct / (session.updates_per_epoch * args.batch_size),
                "charts/canvas_share": canvas_seconds / seconds,
            },
            record={"train_loss": mean_loss},
            summary=f"train loss {mean_loss:.4f}",
            timing={"canvas_seconds": canvas_seconds},
            detail=f", canvases {100 * canvas_seconds / seconds:.1f}%",
        )

    def classifier(module: torch.nn.Module) -> Classifier:
        return typing.cast(Classifier, module)  # the model, or its weight average's copy

    def score(model: torch.nn.Module, images: CanvasBatch, split: str) -> ClassifierResult:
        return evaluate_classifier(
            classifier(model),
            images,
            batch_size=args.eval_batch_size,
            env_id=args.env,
            split=split,
            cluster=cluster,
        )

    def test(model: torch.nn.Module, history: list[dict[str, Any]]) -> dict[str, Any]:
        test_images = load_images(
            CanvasSource.from_id(args.env, split="test", device=device, **images), args.eval_batch_size
        )
        result = score(model, test_images, "test")
        cluster.say(format_table(result))
        train_seconds = max(sum(h["seconds"] for h in history), 1e-9)
        return {
            **result.as_dict(),
            "model": args.model,
            "images_per_second": session.updates_per_epoch
            * session.global_batch
            * len(history)
            / train_seconds,
            "canvas_share": sum(h["canvas_seconds"] for h in history) / train_seconds,
            "device": str(device),
        }

    def restore_streams(own: Mapping[str, Any] | None, state: Mapping[str, Any], epoch: int) -> None:
        nonlocal canvas_rng
        if own is None:  # saved by a job of another size: this rank's canvases start anew
            canvas_rng = np.random.default_rng([rank_seed(args.seed, cluster), epoch])
        else:
            canvas_rng.bit_generator.state = own["canvas_rng"]

    program = Program(
        train_epoch=train_epoch,
        validate=lambda model: score(model, val, "val").accuracy,
        test=test,
        rank_streams=lambda: {"canvas_rng": canvas_rng.bit_generator.state},
        restore_streams=restore_streams,
        picture=lambda model: sample_picture(classifier(model), val, count=8),
        picture_tag="charts/samples",
    )
    learner = Learner(model, mconfig, optimizer, scheduler, average)
    return fit(
        session,
        program,
        learner,
        swa_start=args.swa_start,
        swa_lr=args.swa_lr,
        banner=f"{args.model} on {args.env} canvases {mconfig.canvas_shape}",
        unit="images",
    )


def check_baseline(args: Args) -> None:
    """Refuse the settings of this trainer that no run can use (a ``ValueError`` naming the flag)."""
    check_env_id(args.env)
    if not 0.0 <= args.label_smoothing < 1.0:
        raise ValueError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    check_swa(args)


def check_swa(args: Args) -> None:
    """Refuse settings of stochastic weight averaging that cannot mean what they say."""
    if args.swa_start < 0:
        raise ValueError(f"--swa-start must be an epoch >= 1 (0: no averaging), got {args.swa_start}")
    if args.swa_start and args.ema:
        raise ValueError(
            f"--swa-start {args.swa_start} and --ema {args.ema} are two weight averages; choose one"
        )
    if args.swa_start > args.epochs:
        raise ValueError(
            f"--swa-start {args.swa_start} is after the last epoch (--epochs {args.epochs}): nothing would "
            f"be averaged; start it earlier or raise --epochs"
        )
    if args.swa_lr is not None and not args.swa_start:
        raise ValueError("--swa-lr sets the rate of the averaging phase: give --swa-start too")
    if args.swa_lr is not None and not args.swa_lr > 0.0:
        raise ValueError(f"--swa-lr must be > 0, got {args.swa_lr}")


if __name__ == "__main__":
    run_main(main)
