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
``results/test.json``; see :mod:`agents.runs` (the module the RAM agent uses too).

Under ``torchrun`` the model is trained with ``DistributedDataParallel``: every rank
draws its own canvases (or its own share of the fixed training set), ``--batch-size`` is
per rank, and validation and test are shared out and combined; see :mod:`agents.distributed`.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn import functional as F
from tqdm import tqdm

from agents.distributed import (
    data_parallel,
    from_main,
    join,
    leave,
    mean_over_ranks,
    on_main,
    rank_seed,
    update_share,
)
from agents.runs import (
    RESUMABLE,
    CheckpointError,
    RunFolderError,
    average_state,
    check_settings,
    command_line,
    epoch_average,
    evaluated_model,
    inference_weights,
    interruptible,
    load_checkpoint,
    open_run,
    open_writer,
    own_streams,
    parse_args,
    rank_streams,
    record_resume,
    restore_average,
    restore_torch_rng,
    resume_args,
    resume_state,
    run_main,
    save_epoch,
    started_by,
    stop_reason,
    torch_rng_state,
    use_data_dir,
    weight_average,
    write_json,
)
from baselines.evaluate import ClassifierResult, evaluate_classifier, format_table, load_images
from baselines.models import (
    BLOCK_SIZE,
    CNN_HIDDEN,
    D_MODEL,
    HEAD_HIDDEN,
    HEADS,
    MODEL_NAMES,
    BaselineConfig,
    as_inputs,
    count_parameters,
    model_from_config,
)
from baselines.visualize import sample_picture
from glimpse_env import CanvasSource
from glimpse_env.data import SPLIT_SIZES
from glimpse_env.registration import check_env_id
from glimpse_env.vector import check_device

#: this trainer, as ``python -m`` runs it (recorded in a run's commands.json)
PROGRAM = "baselines.train"


@dataclass
class Args:
    """Train a full-image baseline (the study's CNN or CNN + self-attention) on an environment's canvases."""

    model: str = field(default="cnn", metadata={"choices": MODEL_NAMES})
    """cnn (the study's simple CNN) or self_attention (the same encoder with self-attention over blocks)"""
    env: str = "GlimpseMNIST-Cluttered-v0"
    """registered environment id: its canvases (fresh training canvases, fixed val and test sets) are used"""
    seed: int = 1
    """seed of the weights, the training canvases and their order"""
    epochs: int = 100
    """maximum number of epochs (early stopping usually ends the run first)"""
    train_size: int | None = None
    """fix the training set to this many canvases (the study: 10000); default: fresh canvases every batch"""
    images_per_epoch: int | None = None
    """training images per epoch (default: 55,000, or the fixed training set once)"""
    batch_size: int = 128
    """images per update and rank (under torchrun an update sees world_size * batch_size images; the learning
    rate is not rescaled)"""
    learning_rate: float = 1e-3
    """initial learning rate of Adam (the study: 1e-3)"""
    lr_schedule: str = field(default="plateau", metadata={"choices": ("plateau", "cosine")})
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
    device: str = "cpu"
    """cpu or cuda"""
    data_dir: str | None = None
    """folder of the MNIST / Fashion-MNIST raw files (default: $GLIMPSE_DATA_DIR, else the user cache)"""
    time_limit: float | None = None
    """stop after the first epoch that ends past this many minutes of training (the test still runs;
    a --resume starts the clock again)"""
    threads: int | None = None
    """torch intra-op threads (default: torch's own choice)"""
    run_dir: str | None = None
    """run folder (default: runs/<model>-<env>-seed<seed>)"""
    resume: str | None = None
    """continue the run in this folder from its last checkpoint (--epochs may be raised)"""
    overwrite: bool = False
    """delete an existing run of this program in --run-dir first (a folder that holds anything else is
    refused)"""
    progress: bool = True
    """show a progress bar"""


@record  # under torchrun: a rank's error is reported by the launcher, which ends the other ranks
@interruptible(PROGRAM)  # Ctrl-C: one line that says how to continue
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = resume_args(parse_args(Args, argv), argv, resumable=RESUMABLE, program=PROGRAM)
    check_settings(args)  # before anything is made or written
    check_env_id(args.env)
    use_data_dir(args.data_dir)
    cluster, device = join(check_device(args.device, "--device"))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.train_size is not None and (args.images_per_epoch or 0) > args.train_size:
        raise ValueError(
            f"--images-per-epoch {args.images_per_epoch} exceeds --train-size {args.train_size}: "
            f"an epoch shows every canvas of a fixed training set at most once"
        )
    if not 0.0 <= args.label_smoothing < 1.0:
        raise ValueError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    check_swa(args)
    images_per_epoch = args.images_per_epoch or args.train_size or SPLIT_SIZES["train"]
    global_batch = args.batch_size * cluster.world_size
    if global_batch > images_per_epoch:
        raise ValueError(
            f"--batch-size {args.batch_size} x {cluster.world_size} rank(s) is larger than an epoch "
            f"({images_per_epoch} images)"
        )
    run_dir = Path(args.resume or args.run_dir or f"runs/{args.model}-{args.env}-seed{args.seed}")
    # the run's settings, and how its batch was made up (--batch-size is per rank)
    config = {**dataclasses.asdict(args), "world_size": cluster.world_size, "global_batch_size": global_batch}

    # ---------------------------------------------------------------- seeding
    random.seed(args.seed)
    torch.manual_seed(args.seed)  # the weights (the same on every rank) and dropout
    canvas_rng = np.random.default_rng(rank_seed(args.seed, cluster))  # this rank's fresh training canvases

    # ---------------------------------------------------------------- canvases (the environment's)
    overrides: dict[str, Any] = {} if args.train_size is None else {"train_size": args.train_size}
    train_source = CanvasSource.from_id(args.env, split="train", device=device, **overrides)
    fixed_train = None if args.train_size is None else load_images(train_source, args.eval_batch_size)
    val = load_images(CanvasSource.from_id(args.env, split="val", device=device), args.eval_batch_size)
    updates_per_epoch = max(1, images_per_epoch // global_batch)

    # ---------------------------------------------------------------- model
    mconfig = BaselineConfig(
        name=args.model,
        canvas_shape=train_source.shape,
        num_classes=train_source.num_classes,
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
    scheduler: Any
    if args.lr_schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=args.lr_factor, patience=args.lr_patience
        )
    else:
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    n_params = count_parameters(model)

    # ---------------------------------------------------------------- run folder
    resume = args.resume is not None
    command = command_line(PROGRAM, argv)
    on_main(  # (a resume: the folder is checked, and nothing written yet)
        lambda: open_run(
            run_dir, config, program=PROGRAM, command=command, resume=resume, overwrite=args.overwrite
        ),
        cluster,
    )
    checkpoints = run_dir / "checkpoints"
    start_epoch, best_val, best_epoch, history = 0, -1.0, -1, []
    found = resume_state(checkpoints, map_location=device) if resume else None
    if resume and found is None:
        cluster.say(f"{run_dir} has no checkpoint yet: its training starts again from epoch 1")
    if found is not None:
        source, state = found
        if state["config"]["env"] != args.env or BaselineConfig.from_dict(state["model_config"]) != mconfig:
            raise CheckpointError(f"{source} was made with another environment or model")
        model.load_state_dict(state["model"])
        restore_average(average, state)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_val, best_epoch = state["epoch"], state["best_val"], state["best_epoch"]
        streams = own_streams(state, cluster)
        if streams is None:  # saved by a job of another size: this rank's streams start anew
            torch.manual_seed(rank_seed(args.seed + start_epoch, cluster))
            canvas_rng = np.random.default_rng([rank_seed(args.seed, cluster), start_epoch])
            cluster.say(
                f"{run_dir} was trained on {state.get('world_size', 1)} rank(s): random streams start anew"
            )
        else:
            restore_torch_rng(streams, device)
            canvas_rng.bit_generator.state = streams["canvas_rng"]
        history = state["history"]
        cluster.say(
            f"resuming {run_dir} after epoch {start_epoch} (best val {best_val:.4f} at epoch {best_epoch}) "
            f"from {source.name}"
        )
    if resume:  # the checkpoint loaded and matched: only now is the resume recorded
        on_main(lambda: record_resume(run_dir, command, None if found is None else found[0]), cluster)
    writer = open_writer(run_dir, purge_step=start_epoch * updates_per_epoch, cluster=cluster)
    cluster.say(
        f"{args.model} on {args.env} canvases {mconfig.canvas_shape}: {n_params:,} parameters, "
        f"{updates_per_epoch} updates of {args.batch_size} images per epoch"
        + (f" on each of {cluster.world_size} ranks" if cluster.distributed else "")
    )

    def checkpoint_state(epoch: int) -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            **average_state(average),
            "model_config": dataclasses.asdict(mconfig),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            **rank_streams(
                {**torch_rng_state(device), "canvas_rng": canvas_rng.bit_generator.state}, cluster
            ),
            "epoch": epoch,
            "best_val": best_val,
            "best_epoch": best_epoch,
            "history": history,
            "n_params": n_params,
        }

    def training_batch(update: int, order: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        if fixed_train is None:
            return train_source.fresh(args.batch_size, canvas_rng)
        assert order is not None
        picked = torch.as_tensor(update_share(order, update, args.batch_size, cluster), device=device)
        return fixed_train.canvases[picked], fixed_train.labels[picked]

    # ---------------------------------------------------------------- training loop
    clock = time.monotonic()
    for epoch in range(start_epoch + 1, args.epochs + 1):
        reason = stop_reason(
            epoch=epoch,
            first_epoch=start_epoch + 1,
            best_epoch=best_epoch,
            patience=args.patience,
            started=clock,
            time_limit=args.time_limit,
        )
        reason = from_main(reason, cluster)  # decided once: every rank stops together
        if reason is not None:
            cluster.say(reason)
            break
        swa_phase = bool(args.swa_start) and epoch >= args.swa_start
        constant_rate = swa_phase and args.swa_lr is not None  # the schedule gives way to --swa-lr
        if constant_rate:
            for group in optimizer.param_groups:
                group["lr"] = args.swa_lr
        model.train()
        sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss, correct
        canvas_seconds = 0.0
        start = time.perf_counter()
        order = None
        if args.train_size is not None:  # a fixed training set: every canvas once per epoch
            order = np.random.default_rng([args.seed, epoch]).permutation(args.train_size)
        bar = tqdm(
            range(updates_per_epoch),
            desc=f"epoch {epoch}",
            disable=not (args.progress and cluster.is_main),
            leave=False,
        )
        for update in bar:
            if device.type == "cuda":  # time the canvases alone, not the GPU's queue of the last update
                torch.cuda.synchronize(device)
            batch_start = time.perf_counter()
            canvases, labels = training_batch(update, order)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            canvas_seconds += time.perf_counter() - batch_start
            logits = trained(as_inputs(canvases))
            loss = F.cross_entropy(logits, labels, label_smoothing=args.label_smoothing)
            if not bool(torch.isfinite(loss)):
                raise RuntimeError(
                    f"the loss is {float(loss.detach())} at epoch {epoch}, update {update + 1}; "
                    f"training stopped. The last good checkpoint is {checkpoints / 'last.pt'} "
                    f"(epoch {epoch - 1}); try a lower --learning-rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if average is not None and not args.swa_start:  # the moving average follows every update
                average.update_parameters(model)
            sums += torch.stack([loss.detach(), (logits.detach().argmax(1) == labels).sum()]).double()
        bar.close()
        seconds = time.perf_counter() - start
        mean_over_ranks(sums, cluster)  # every rank's sums: the epoch's means over all of its images
        train_loss, train_correct = sums.tolist()
        if average is not None and swa_phase:  # the epoch average takes in this epoch's weights
            average.update_parameters(model)
        evaluated = evaluated_model(model, average)  # what validation and the pictures see
        result = evaluate_classifier(
            evaluated, val, batch_size=args.eval_batch_size, env_id=args.env, split="val", cluster=cluster
        )
        lr = optimizer.param_groups[0]["lr"]
        if not constant_rate:  # (under --swa-lr the rate stays put from --swa-start on)
            if args.lr_schedule == "plateau":
                scheduler.step(result.accuracy)
            else:
                scheduler.step()
        improved = result.accuracy > best_val
        if improved:
            best_val, best_epoch = result.accuracy, epoch
        step = epoch * updates_per_epoch
        images_per_second = updates_per_epoch * global_batch / seconds
        writer.add_scalar("losses/cross_entropy", train_loss / updates_per_epoch, step)
        writer.add_scalar(
            "charts/train_accuracy", train_correct / (updates_per_epoch * args.batch_size), step
        )
        writer.add_scalar("charts/val_accuracy", result.accuracy, step)
        writer.add_scalar("charts/learning_rate", lr, step)
        writer.add_scalar("charts/images_per_second", images_per_second, step)
        writer.add_scalar("charts/canvas_share", canvas_seconds / seconds, step)
        if cluster.is_main and args.image_every and (epoch % args.image_every == 0 or epoch == 1):
            writer.add_image(
                "charts/samples", sample_picture(evaluated, val, count=8), step, dataformats="HWC"
            )
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss / updates_per_epoch,
                "val_accuracy": result.accuracy,
                "learning_rate": lr,
                "seconds": seconds,
                "canvas_seconds": canvas_seconds,
            }
        )
        state = checkpoint_state(epoch)
        if cluster.is_main:  # best.pt (when improved), then last.pt: a kill between leaves them consistent
            save_epoch(checkpoints, state, config, improved=improved)
        cluster.say(
            f"epoch {epoch}: train loss {train_loss / updates_per_epoch:.4f}, "
            f"val accuracy {result.accuracy:.4f}"
            f"{' (best)' if improved else ''}, lr {lr:.2e}, {seconds:.1f} s "
            f"({images_per_second:,.0f} images/s, canvases {100 * canvas_seconds / seconds:.1f}%)"
        )
    writer.flush()

    # ---------------------------------------------------------------- test, once, with the best checkpoint
    # (rank 0 reads it and sends it: the other ranks need not see the run folder)
    best: dict[str, Any] = on_main(lambda: load_checkpoint(checkpoints / "best.pt"), cluster)
    model.load_state_dict(inference_weights(best))
    test_images = load_images(
        CanvasSource.from_id(args.env, split="test", device=device), args.eval_batch_size
    )
    test: ClassifierResult = evaluate_classifier(
        model, test_images, batch_size=args.eval_batch_size, env_id=args.env, split="test", cluster=cluster
    )
    cluster.say(format_table(test))
    train_seconds = sum(h["seconds"] for h in history)
    results: dict[str, Any] = {
        **test.as_dict(),
        "model": args.model,
        "best_epoch": best["epoch"],
        "val_accuracy": best["best_val"],
        "epochs": history[-1]["epoch"] if history else 0,
        "train_seconds": train_seconds,
        "images_per_second": updates_per_epoch * global_batch * len(history) / max(train_seconds, 1e-9),
        "canvas_share": sum(h["canvas_seconds"] for h in history) / max(train_seconds, 1e-9),
        "device": str(device),
        "world_size": cluster.world_size,
        **started_by(run_dir, command),
        "config": config,
    }
    if cluster.is_main:
        write_json(run_dir / "results" / "test.json", results)
    writer.add_scalar("charts/test_accuracy", test.accuracy, results["epochs"] * updates_per_epoch)
    writer.close()
    leave()
    cluster.say(
        f"test accuracy {test.accuracy:.4f} (best val {best['best_val']:.4f} at epoch {best['epoch']})"
    )
    return results


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
    run_main(main, errors=(RunFolderError, CheckpointError, ValueError, RuntimeError))
