"""The one fit loop of the project's trainers (``agents.ram_reinforce``, ``baselines.train``).

A trainer reads top to bottom, CleanRL's way: its ``Args``, then :func:`start` (the checks
made before anything is written, the data folder, the devices and ranks, the run folder's
name, the seeds), its environment or canvases, its model and optimiser, and a
:class:`Program`: what one epoch of updates does, how validation scores a model, what
the test reports, and which random streams of its own a checkpoint keeps. :func:`fit`
does the rest, once for every trainer:

- the run folder (:func:`glimpse_engine.runs.open_run`) and ``--resume`` from the later of
  ``last.pt`` and ``best.pt``, with every random stream put back, so a resumed run is the
  uninterrupted run;
- every epoch: the stop rules (early stopping, ``--time-limit``), the updates (through
  :meth:`Fit.step`: zero the gradients, backpropagate, clip, step, follow the moving
  average), the stochastic weight average's epoch ends, validation of the averaged or
  trained model, the learning-rate schedule, TensorBoard (``charts/``, ``losses/``), the
  history and the checkpoints (``best.pt`` before ``last.pt``);
- the test, once, with the best checkpoint by validation, and ``results/test.json``.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TypeVar

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from glimpse_engine.averaging import average_state, evaluated_model, restore_average
from glimpse_engine.checkpoints import (
    CheckpointError,
    inference_weights,
    load_checkpoint,
    resume_state,
    save_epoch,
)
from glimpse_engine.cli import RESUMABLE, check_settings, parse_args, resume_args, use_data_dir
from glimpse_engine.distributed import Cluster, from_main, join, leave, on_main, rank_seed, update_share
from glimpse_engine.errors import TrainingDiverged
from glimpse_engine.runs import command_line, open_run, open_writer, record_resume, started_by, write_json
from glimpse_engine.streams import own_streams, rank_streams, restore_torch_rng, torch_rng_state
from glimpse_env.data import SPLIT_SIZES
from glimpse_env.devices import check_device

__all__ = [
    "EpochResult",
    "Fit",
    "Learner",
    "Program",
    "Session",
    "TrainingDiverged",
    "fit",
    "make_scheduler",
    "start",
    "stop_reason",
]


#: a trainer's ``Args`` dataclass
A = TypeVar("A", bound="TrainSettings")


class TrainSettings(Protocol):
    """The settings :func:`start` and :func:`fit` read from a trainer's ``Args``."""

    env: str
    seed: int
    epochs: int
    train_size: int | None
    batch_size: int
    patience: int
    time_limit: float | None
    image_every: int
    device: str
    data_dir: str | None
    threads: int | None
    run_dir: str | None
    resume: str | None
    overwrite: bool
    progress: bool


class Session(NamedTuple):
    """What :func:`start` set up for a run."""

    args: TrainSettings
    """the trainer's ``Args``"""
    name: str
    """the program, as ``python -m`` runs it (its runs' ``commands.json`` names it)"""
    argv: Sequence[str] | None
    """the command line's arguments (``None``: ``sys.argv[1:]``), recorded in ``commands.json``"""

    cluster: Cluster
    """this process's rank among the job's (one rank outside torchrun)"""
    device: torch.device
    """where the run trains"""
    run_dir: Path
    """the run folder (``--resume``'s, ``--run-dir``, or the program's default)"""
    config: dict[str, Any]
    """the run's settings for ``config.json``: the ``Args`` and how the batch was made up"""
    global_batch: int
    """items (episodes or images) of one update over all ranks"""
    updates_per_epoch: int
    """updates in one epoch"""


#: the 1-minute load average, in cores, above which :func:`busy_machine_note` speaks
BUSY_LOAD = 0.5


def busy_machine_note(threads: int | None, device: torch.device) -> str | None:
    """One line of advice when torch's own thread count meets a machine whose cores are busy.

    Torch splits every large CPU operation across all its threads; while other processes
    hold the cores each split waits for a descheduled thread (a RAM epoch took 3.9x, a CNN
    epoch 2.7x as long with one competing process on 2 cores: docs/speed.md). ``None``
    when ``--threads`` was given, on another device, with one thread, or when the load
    average (other processes; this one has barely started) is below :data:`BUSY_LOAD`.
    """
    if threads is not None or device.type != "cpu" or torch.get_num_threads() < 2:
        return None
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform
        return None
    if load < BUSY_LOAD:
        return None
    return (
        f"note: other processes are busy here (load average {load:.1f} on {os.cpu_count()} cores) and "
        f"torch splits large operations across its {torch.get_num_threads()} threads, which stall "
        f"while the cores are shared: pass --threads 1 (or the cores you have to yourself); see "
        f"docs/speed.md"
    )


def start(
    cls: type[A],
    argv: Sequence[str] | None,
    *,
    name: str,
    per_epoch: Callable[[A], int | None],
    per_epoch_flag: str,
    unit: str,
    default_run_dir: Callable[[A], str],
    check: Callable[[A], None] | None = None,
) -> tuple[A, Session]:
    """Parse ``argv`` into the ``Args`` dataclass ``cls`` of program ``name`` (e.g.
    ``"agents.ram_reinforce"``; a ``--resume`` takes its run's saved settings), then check and
    set up the run before anything is made or written; returns the settings and the session.

    ``per_epoch(args)`` is the trainer's ``--episodes-per-epoch`` / ``--images-per-epoch``
    (named ``per_epoch_flag``, counting ``unit``); an epoch is that many items, or the fixed
    training set once, or the training split's size; ``default_run_dir(args)`` the run
    folder without ``--run-dir``. Every setting no run can use is a ``ValueError`` naming its
    flag (``check(args)``, if given, runs the program's own checks after the shared ones).
    Then the data folder is set, the ranks joined, ``--threads`` applied, and Python's and
    torch's global generators seeded with ``--seed`` (the weights are the same on every rank).
    """
    args = resume_args(parse_args(cls, argv), argv, resumable=RESUMABLE, program=name)
    check_settings(args)
    if check is not None:
        check(args)
    use_data_dir(args.data_dir)
    cluster, device = join(check_device(args.device, "--device"))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.train_size is not None and (per_epoch(args) or 0) > args.train_size:
        raise ValueError(
            f"{per_epoch_flag} {per_epoch(args)} exceeds --train-size {args.train_size}: "
            f"an epoch shows every canvas of a fixed training set at most once"
        )
    items_per_epoch = per_epoch(args) or args.train_size or SPLIT_SIZES["train"]
    global_batch = args.batch_size * cluster.world_size
    if global_batch > items_per_epoch:
        raise ValueError(
            f"--batch-size {args.batch_size} x {cluster.world_size} rank(s) is larger than an epoch "
            f"({items_per_epoch} {unit})"
        )
    run_dir = Path(args.resume or args.run_dir or default_run_dir(args))
    # the run's settings, and how its batch was made up (--batch-size is per rank)
    config = {
        **dataclasses.asdict(args),  # type: ignore[call-overload]
        "world_size": cluster.world_size,
        "global_batch_size": global_batch,
    }
    random.seed(args.seed)
    torch.manual_seed(args.seed)  # the weights (the same on every rank); then dropout
    return args, Session(
        args=args,
        name=name,
        argv=argv,
        cluster=cluster,
        device=device,
        run_dir=run_dir,
        config=config,
        global_batch=global_batch,
        updates_per_epoch=max(1, items_per_epoch // global_batch),
    )


def make_scheduler(
    optimizer: torch.optim.Optimizer, kind: str, *, epochs: int, factor: float, patience: int
) -> Any:
    """The learning-rate schedule ``kind``, stepped once per epoch by :func:`fit`.

    - ``plateau``: multiply by ``factor`` after ``patience + 1`` epochs without a better val
      accuracy (``ReduceLROnPlateau`` in ``max`` mode);
    - ``linear``: ``lr_e = lr_0 * max(0, 1 - e / epochs)`` (the RAM paper);
    - ``cosine``: anneal to 0 over ``epochs`` (``CosineAnnealingLR``).
    """
    if kind == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=factor, patience=patience
        )
    if kind == "linear":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: max(0.0, 1 - epoch / epochs))
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    raise ValueError(f"unknown learning-rate schedule {kind!r}; expected plateau, linear or cosine")


def stop_reason(
    *,
    epoch: int,
    first_epoch: int,
    best_epoch: int,
    patience: int,
    started: float,
    time_limit: float | None,
) -> str | None:
    """Why a training loop stops before ``epoch`` (``None``: it goes on).

    Early stopping: ``patience`` epochs have passed since the best validation (``best_epoch``,
    ``-1`` before any). Time limit: more than ``time_limit`` minutes have passed since
    ``started`` (a ``time.monotonic()`` reading), and this process has trained at least one
    epoch (``epoch > first_epoch``, the first epoch it ran).
    """
    if best_epoch > 0 and epoch - 1 - best_epoch >= patience:
        return f"early stop: no better val accuracy in the {patience} epochs since epoch {best_epoch}"
    if time_limit is not None and epoch > first_epoch and time.monotonic() - started > 60 * time_limit:
        return f"time limit: {time_limit} minutes of training spent after epoch {epoch - 1}"
    return None


class EpochResult(NamedTuple):
    """What a :class:`Program`'s epoch of updates reports (its means over all ranks)."""

    scalars: dict[str, float]
    """TensorBoard scalars of the epoch, by tag (e.g. ``losses/total``, ``charts/train_reward``)"""
    record: dict[str, float]
    """the history's entries before ``val_accuracy`` (e.g. ``train_reward``, ``loss``)"""
    summary: str
    """the log line's part before the val accuracy (e.g. ``train reward 0.9831``)"""
    timing: dict[str, float] | None = None
    """the history's entries after ``seconds`` (e.g. ``canvas_seconds``; ``None``: none)"""
    detail: str = ""
    """the log line's addition inside the speed's parentheses (e.g. ``, canvases 2.5%``)"""


class Program(NamedTuple):
    """What a trainer gives :func:`fit`: the parts of a run that are its own."""

    train_epoch: Callable[[int, Iterable[int], Fit], EpochResult]
    """``(epoch, updates, fit)``: play the updates of one epoch (each through ``fit.step``)"""
    validate: Callable[[torch.nn.Module], float]
    """the val accuracy of a model (the weight average once it holds weights)"""
    test: Callable[[torch.nn.Module, list[dict[str, Any]]], dict[str, Any]]
    """``(model, history)``: the test's results (with ``accuracy``) of the best checkpoint"""
    rank_streams: Callable[[], dict[str, Any]]
    """this rank's random streams of its own, for a checkpoint (e.g. the environment's)"""
    restore_streams: Callable[[Mapping[str, Any] | None, Mapping[str, Any], int], None]
    """``(own, state, epoch)``: put back this rank's streams from ``own`` (``None``: a job of
    another size wrote the checkpoint; start them anew from ``epoch``) and the shared ones
    from the checkpoint ``state``"""
    shared_state: Callable[[], dict[str, Any]] = dict
    """checkpoint entries of its own that every rank shares (e.g. a shared noise stream)"""
    picture: Callable[[torch.nn.Module], np.ndarray] | None = None
    """a TensorBoard picture (HWC uint8) of the model at work, every ``--image-every`` epochs"""
    picture_tag: str = "charts/pictures"
    """the picture's TensorBoard tag"""


class Learner(NamedTuple):
    """What :func:`fit` trains: the model, its configuration, the optimiser, the schedule
    and the weight average."""

    model: torch.nn.Module
    """the trained module (not DDP-wrapped)"""
    config: Any
    """its configuration, a dataclass with ``from_dict`` (a ``--resume`` checks the checkpoint's)"""
    optimizer: torch.optim.Optimizer
    """the optimiser"""
    scheduler: Any
    """the learning-rate schedule (:func:`make_scheduler`)"""
    average: AveragedModel | None
    """the weight average (``None``: none)"""


class Fit:
    """The optimiser step of a run (:meth:`step`), handed to :attr:`Program.train_epoch`."""

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        average: AveragedModel | None,
        average_every_update: bool,
        max_grad_norm: float | None,
        hint: str,
        checkpoints: Path,
        cluster: Cluster,
    ) -> None:
        self.model, self.optimizer, self.average = model, optimizer, average
        self.average_every_update, self.max_grad_norm = average_every_update, max_grad_norm
        self.hint, self.checkpoints = hint, checkpoints
        self.epoch = 0
        self.order: np.ndarray | None = None
        self.batch_size, self.cluster = 0, cluster

    def indices(self, update: int) -> np.ndarray | None:
        """This rank's canvases of the fixed training set for ``update`` of the epoch (``None``
        without a fixed set: fresh canvases). Every epoch shows the whole set once, in the
        order ``np.random.default_rng([seed, epoch]).permutation(train_size)``, the same on
        every rank, each rank taking its rows of the update's global batch."""
        if self.order is None:
            return None
        return update_share(self.order, update, self.batch_size, self.cluster)

    def step(self, loss: torch.Tensor, update: int) -> None:
        """One update: refuse a non-finite ``loss`` (:class:`TrainingDiverged`, naming the last
        good checkpoint), zero the gradients, backpropagate, clip to ``--max-grad-norm``, step,
        and update the moving average of the weights."""
        if not bool(torch.isfinite(loss)):
            raise TrainingDiverged(
                f"the loss is {float(loss.detach())} at epoch {self.epoch}, update {update + 1}; "
                f"training stopped. The last good checkpoint is {self.checkpoints / 'last.pt'} "
                f"(epoch {self.epoch - 1}); {self.hint}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        self.optimizer.step()
        if self.average is not None and self.average_every_update:
            self.average.update_parameters(self.model)


def fit(
    session: Session,
    program: Program,
    learner: Learner,
    *,
    banner: str,
    unit: str,
    swa_start: int = 0,
    swa_lr: float | None = None,
    max_grad_norm: float | None = None,
    hint: str = "try a lower --learning-rate",
) -> dict[str, Any]:
    """Train ``learner`` for the run ``session`` and test its best checkpoint once; returns the
    results written to ``results/test.json``.

    Args:
        session: what :func:`start` set up.
        program: the trainer's own parts.
        learner: the model, its configuration, optimiser, schedule and weight average.
            Without ``swa_start`` the average follows every update (an exponential moving
            average); with it, the ends of the epochs from ``swa_start`` on (stochastic weight
            averaging), at the constant rate ``swa_lr`` if given.
        banner: the line said once the run folder is ready (the model and its budget).
        unit: what an update's batch counts (``episodes``, ``images``), for the banner.
        max_grad_norm: clip the gradient's norm (``None``: no clipping).
        hint: what the divergence message suggests.
    """
    args, name, argv = session.args, session.name, session.argv
    model, model_config, optimizer = learner.model, learner.config, learner.optimizer
    scheduler, average = learner.scheduler, learner.average
    cluster, device, run_dir, config = session.cluster, session.device, session.run_dir, session.config
    updates_per_epoch = session.updates_per_epoch
    n_params = sum(p.numel() for p in model.parameters())

    # ---------------------------------------------------------------- run folder
    resume = args.resume is not None
    command = command_line(name, argv)
    on_main(  # (a resume: the folder is checked, and nothing written yet)
        lambda: open_run(
            run_dir, config, program=name, command=command, resume=resume, overwrite=args.overwrite
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
        if (
            state["config"]["env"] != args.env
            or type(model_config).from_dict(state["model_config"]) != model_config
        ):
            raise CheckpointError(f"{source} was made with another environment or model")
        model.load_state_dict(state["model"])
        restore_average(average, state)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_val, best_epoch = state["epoch"], state["best_val"], state["best_epoch"]
        streams = own_streams(state, cluster)
        if streams is None:  # saved by a job of another size: this rank's streams start anew
            torch.manual_seed(rank_seed(args.seed + start_epoch, cluster))
            cluster.say(
                f"{run_dir} was trained on {state.get('world_size', 1)} rank(s): random streams start anew"
            )
        else:
            restore_torch_rng(streams, device)
        program.restore_streams(streams, state, start_epoch)
        history = state["history"]
        cluster.say(
            f"resuming {run_dir} after epoch {start_epoch} (best val {best_val:.4f} at epoch {best_epoch}) "
            f"from {source.name}"
        )
    if resume:  # the checkpoint loaded and matched: only now is the resume recorded
        on_main(lambda: record_resume(run_dir, command, None if found is None else found[0]), cluster)
    writer = open_writer(run_dir, purge_step=start_epoch * updates_per_epoch, cluster=cluster)
    cluster.say(
        f"{banner}: {n_params:,} parameters, "
        f"{updates_per_epoch} updates of {args.batch_size} {unit} per epoch"
        + (f" on each of {cluster.world_size} ranks" if cluster.distributed else "")
    )
    note = busy_machine_note(args.threads, device)
    if note is not None:
        cluster.say(note)

    def checkpoint_state(epoch: int) -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            **average_state(average),
            "model_config": dataclasses.asdict(model_config),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            **rank_streams({**torch_rng_state(device), **program.rank_streams()}, cluster),
            **program.shared_state(),
            "epoch": epoch,
            "best_val": best_val,
            "best_epoch": best_epoch,
            "history": history,
            "n_params": n_params,
        }

    # ---------------------------------------------------------------- training loop
    stepper = Fit(
        model,
        optimizer,
        average=average,
        average_every_update=not swa_start,
        max_grad_norm=max_grad_norm,
        hint=hint,
        checkpoints=checkpoints,
        cluster=cluster,
    )
    stepper.batch_size = args.batch_size
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
        swa_phase = bool(swa_start) and epoch >= swa_start
        constant_rate = swa_phase and swa_lr is not None  # the schedule gives way to --swa-lr
        if constant_rate:
            for group in optimizer.param_groups:
                group["lr"] = swa_lr
        stepper.epoch = epoch
        if args.train_size is not None:  # a fixed training set: every canvas once per epoch
            stepper.order = np.random.default_rng([args.seed, epoch]).permutation(args.train_size)
        start = time.perf_counter()
        bar = tqdm(
            range(updates_per_epoch),
            desc=f"epoch {epoch}",
            disable=not (args.progress and cluster.is_main),
            leave=False,
        )
        trained = program.train_epoch(epoch, bar, stepper)
        bar.close()
        seconds = time.perf_counter() - start
        if average is not None and swa_phase:  # the epoch average takes in this epoch's weights
            average.update_parameters(model)
        evaluated = evaluated_model(model, average)  # what validation and the pictures see
        val_accuracy = program.validate(evaluated)
        lr = optimizer.param_groups[0]["lr"]
        if not constant_rate:  # (under --swa-lr the rate stays put from --swa-start on)
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(val_accuracy)
            else:
                scheduler.step()
        improved = val_accuracy > best_val
        if improved:
            best_val, best_epoch = val_accuracy, epoch
        step = epoch * updates_per_epoch
        images_per_second = updates_per_epoch * session.global_batch / seconds
        for tag, value in trained.scalars.items():
            writer.add_scalar(tag, value, step)
        writer.add_scalar("charts/val_accuracy", val_accuracy, step)
        writer.add_scalar("charts/learning_rate", lr, step)
        writer.add_scalar("charts/images_per_second", images_per_second, step)
        if (
            program.picture is not None
            and cluster.is_main
            and args.image_every
            and (epoch % args.image_every == 0 or epoch == 1)
        ):
            writer.add_image(program.picture_tag, program.picture(evaluated), step, dataformats="HWC")
        history.append(
            {
                "epoch": epoch,
                **trained.record,
                "val_accuracy": val_accuracy,
                "learning_rate": lr,
                "seconds": seconds,
                **(trained.timing or {}),
            }
        )
        state = checkpoint_state(epoch)
        if cluster.is_main:  # best.pt (when improved), then last.pt: a kill between leaves them consistent
            save_epoch(checkpoints, state, config, improved=improved)
        cluster.say(
            f"epoch {epoch}: {trained.summary}, val accuracy {val_accuracy:.4f}"
            f"{' (best)' if improved else ''}, lr {lr:.2e}, "
            f"{seconds:.1f} s ({images_per_second:,.0f} images/s{trained.detail})"
        )
    writer.flush()

    # ---------------------------------------------------------------- test, once, with the best checkpoint
    # (rank 0 reads it and sends it: the other ranks need not see the run folder)
    best: dict[str, Any] = on_main(lambda: load_checkpoint(checkpoints / "best.pt"), cluster)
    model.load_state_dict(inference_weights(best))
    results: dict[str, Any] = {
        "best_epoch": best["epoch"],
        "val_accuracy": best["best_val"],
        "epochs": history[-1]["epoch"] if history else 0,
        "train_seconds": sum(h["seconds"] for h in history),
        "params": n_params,
        "world_size": cluster.world_size,
        **program.test(model, history),
        **started_by(run_dir, command),
        "config": config,
    }
    if cluster.is_main:
        write_json(run_dir / "results" / "test.json", results)
    writer.add_scalar("charts/test_accuracy", results["accuracy"], results["epochs"] * updates_per_epoch)
    writer.close()
    leave()
    cluster.say(
        f"test accuracy {results['accuracy']:.4f} (best val {best['best_val']:.4f} at epoch {best['epoch']})"
    )
    return results
