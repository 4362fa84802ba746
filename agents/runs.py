"""Run folders, checkpoints, TensorBoard and command lines, shared by the agents and the baselines.

A *run folder* holds everything one training run writes::

    <run_dir>/
        config.json          the full configuration (the Args dataclass) of the run
        commands.json        the command lines that trained it (the first, then each --resume)
        checkpoints/last.pt  written at the end of every epoch (atomically)
        checkpoints/best.pt  the epoch with the best validation accuracy (atomically, before last.pt)
        events.out.tfevents  TensorBoard scalars and images
        results/             evaluation JSON

A run folder that exists is never reused silently: :func:`open_run` refuses it unless
the run is resumed (``--resume``) or ``--overwrite`` is given, and ``--overwrite`` deletes
only a run of the same program that holds nothing but what a run writes (never the
current folder or one of its parents).

Checkpoints are written to a temporary file in the same folder, flushed to disk and renamed
over the old one (``os.replace`` is atomic), so a run killed at any moment leaves the
previous checkpoint intact; an improved epoch's ``best.pt`` is written before its
``last.pt``, so a kill between the two leaves the newer state in ``best.pt``, which
``--resume`` continues from (:func:`resume_state`). A checkpoint file is a ``torch.save``
dictionary holding the ``torch.save`` bytes of the state (:data:`PAYLOAD_KEY`) and their
SHA-256 (:data:`CHECKSUM_KEY`): a flipped bit anywhere in it is an error, never silently
different weights. Loading never runs code: both layers are read with
``torch.load(weights_only=True)``, which admits tensors and plain data only. Every
checkpoint carries the configuration it was made with (:data:`CONFIG_KEY`);
:func:`load_checkpoint` checks it against what the caller expects and names the first
difference.

:func:`parse_args` turns a dataclass into a command line: one ``--flag`` per field, its
``--help`` text taken from the docstring written under the field (CleanRL's style);
:func:`check_settings` refuses the values no run can use before anything is written, and
:func:`run_main` / :func:`interruptible` make a trainer's errors and Ctrl-C one line each.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import hashlib
import inspect
import io
import itertools
import json
import math
import os
import pickle
import re
import shlex
import shutil
import sys
import tempfile
import textwrap
import time
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeGuard, TypeVar

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.tensorboard import SummaryWriter

from agents.distributed import Cluster, gather_objects
from glimpse_env.cli import ArgumentParser, one_line, run_cli

__all__ = [
    "AVERAGE_KEY",
    "CHECKSUM_KEY",
    "COMMANDS_FILE",
    "CONFIG_KEY",
    "DERIVED_SETTINGS",
    "FORMAT_VERSION",
    "PAYLOAD_KEY",
    "RESUMABLE",
    "CheckpointError",
    "Interrupted",
    "RunFolderError",
    "average_state",
    "averaging",
    "check_settings",
    "command_line",
    "epoch_average",
    "evaluated_model",
    "explicit_fields",
    "field_docs",
    "inference_weights",
    "interruptible",
    "load_checkpoint",
    "open_run",
    "open_writer",
    "own_streams",
    "parse_args",
    "rank_streams",
    "rebuild_model",
    "record_resume",
    "restore_average",
    "restore_torch_rng",
    "resume_args",
    "resume_state",
    "run_commands",
    "run_main",
    "run_owner",
    "save_checkpoint",
    "save_epoch",
    "started_by",
    "stop_reason",
    "torch_rng_state",
    "use_data_dir",
    "weight_average",
    "write_json",
]

#: key of a checkpoint's configuration (a dict of the run's Args)
CONFIG_KEY = "config"
#: key of the format version of a checkpoint written by this module
FORMAT_KEY = "format"
#: 2: the state's ``torch.save`` bytes (:data:`PAYLOAD_KEY`) and their SHA-256 (:data:`CHECKSUM_KEY`);
#: 1 (still read): the state itself, without a checksum
FORMAT_VERSION = 2
#: key of a checkpoint file's hex SHA-256 of :data:`PAYLOAD_KEY`'s bytes
CHECKSUM_KEY = "sha256"
#: key of a checkpoint file's payload: the ``torch.save`` bytes of the state, as a uint8 tensor
PAYLOAD_KEY = "payload"

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: entries the trainers add to their Args in config.json (how the batch was made up)
DERIVED_SETTINGS = frozenset({"world_size", "global_batch_size"})

#: settings of a training run that ``--resume`` may change (every other one must match the
#: run's config.json): the agents' and the baselines' scripts share them
RESUMABLE = frozenset(
    {
        "epochs",
        "device",
        "data_dir",
        "threads",
        "eval_batch_size",
        "image_every",
        "resume",
        "overwrite",
        "progress",
        "time_limit",
    }
)


class RunFolderError(RuntimeError):
    """A run folder that cannot be used as asked (exists, missing, or not a run folder)."""


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, corrupted, unsafe, or from another configuration."""


class Interrupted(SystemExit):
    """Training stopped by Ctrl-C (exit status 130); ``str()`` is the line that says how to continue
    (empty on the ranks other than 0 of a torchrun job, which say nothing)."""

    def __init__(self, message: str) -> None:
        super().__init__(130)
        self.message = message

    def __str__(self) -> str:
        return self.message


# ----------------------------------------------------------------------------- command lines
def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of dataclass ``cls``, by field name."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):  # no source (e.g. made at run time): no help texts
            continue
        body = ast.parse(source).body[0]
        assert isinstance(body, ast.ClassDef)
        statements = body.body
        for statement, following in itertools.pairwise(statements):
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def _flag_type(annotation: Any) -> tuple[Any, bool]:
    """``(parser type, optional)`` of a field annotation: ``int | None`` gives ``(int, True)``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported field type {annotation!r}")
        return args[0], True
    return annotation, False


def _optional(kind: Any) -> Any:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


def _parser(cls: type, *, description: str | None, suppress_defaults: bool) -> argparse.ArgumentParser:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    parser = ArgumentParser(  # usage errors in one line
        description=description or (inspect.getdoc(cls) or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS if suppress_defaults else None,
    )
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        default = field.default if field.default is not dataclasses.MISSING else None
        if suppress_defaults:
            default = argparse.SUPPRESS
        help_text = docs.get(field.name, "")
        kind, optional = _flag_type(hints[field.name])
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        parser.add_argument(
            flag,
            type=_optional(kind) if optional else kind,
            default=default,
            choices=field.metadata.get("choices"),
            help=help_text,
            metavar=field.name.upper(),
        )
    return parser


def explicit_fields(cls: type, argv: Sequence[str] | None = None) -> set[str]:
    """The fields of ``cls`` whose flags appear in ``argv`` (default: ``sys.argv[1:]``)."""
    namespace = _parser(cls, description=None, suppress_defaults=True).parse_args(argv)
    return set(vars(namespace))


def parse_args(cls: type[T], argv: Sequence[str] | None = None, *, description: str | None = None) -> T:
    """Parse ``argv`` into dataclass ``cls``: ``--field-name VALUE`` for every field.

    Booleans take ``--flag`` / ``--no-flag``; ``X | None`` fields take ``none``; fields with
    ``choices`` in their metadata are restricted to them. Unknown flags exit with argparse's
    usage message (status 2).
    """
    parser = _parser(cls, description=description, suppress_defaults=False)
    namespace = parser.parse_args(argv)
    return cls(**vars(namespace))


def resume_args(args: T, argv: Sequence[str] | None, *, resumable: frozenset[str], program: str) -> T:
    """On ``--resume DIR``, the run's saved configuration with the settings that may change.

    ``args`` is a parsed dataclass with a ``resume`` field. Without ``--resume`` it is
    returned as it is. With it, ``DIR`` must be a run of ``program`` (see :func:`run_owner`;
    another program's run is a :class:`RunFolderError` naming the program that continues
    it) and the run's ``config.json`` is the configuration; flags given in ``argv`` may
    change only the fields named in ``resumable`` (e.g. ``epochs``, ``device``), and any
    other flag that differs from the saved value is a :class:`RunFolderError` naming it.
    Nothing is written.
    """
    cls = type(args)
    resume = getattr(args, "resume", None)
    if resume is None:
        return args
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    saved_file = Path(resume) / "config.json"
    if not saved_file.is_file():
        raise RunFolderError(
            f"cannot resume {resume!r}: it is not a run folder (no config.json there). "
            f"Give the folder of an earlier run, or start a new run without --resume"
        )
    saved = _read_json_object(saved_file)
    if saved is None:
        raise RunFolderError(f"cannot resume {resume!r}: its config.json cannot be read as a JSON object")
    owner = run_owner(resume, settings=known | DERIVED_SETTINGS, program=program)
    if owner != program:
        raise RunFolderError(_not_a_run_of(resume, program, owner, doing="resume"))
    given = explicit_fields(cls, argv)
    changed = sorted(
        name for name in given - resumable if name in saved and getattr(args, name) != saved[name]
    )
    if changed:
        raise RunFolderError(
            f"--resume continues {resume} with its own settings; these differ from its config.json: "
            + ", ".join(
                f"--{name.replace('_', '-')} {getattr(args, name)!r} (saved: {saved[name]!r})"
                for name in changed
            )
        )
    overrides = {name: getattr(args, name) for name in given & resumable}
    return cls(**{**{k: v for k, v in saved.items() if k in known}, **overrides, "resume": resume})


#: settings of the trainers that must be whole numbers >= 1 (when given; ``none`` keeps its meaning)
AT_LEAST_ONE = frozenset(
    {
        "epochs",
        "batch_size",
        "patience",
        "eval_batch_size",
        "threads",
        "episodes_per_epoch",
        "images_per_epoch",
        "eval_episodes",
        "val_mc_samples",
        "test_mc_samples",
    }
)
#: settings of the trainers that must be >= 0
AT_LEAST_ZERO = frozenset({"learning_rate", "weight_decay", "time_limit", "image_every", "lr_patience"})
#: settings of the trainers that must be > 0 (when given)
ABOVE_ZERO = frozenset({"std", "max_grad_norm"})


def check_settings(args: Any) -> None:
    """Refuse the settings of dataclass ``args`` that no training run can use, with a
    :class:`ValueError` naming the flag, before anything is made or written.

    Every float must be finite; the fields named in :data:`AT_LEAST_ONE`, :data:`AT_LEAST_ZERO`
    and :data:`ABOVE_ZERO` (those the dataclass has) must lie in their ranges. ``None`` (a
    flag's ``none``) is always allowed.
    """
    for field in dataclasses.fields(args):
        value = getattr(args, field.name)
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{flag} must be a finite number, got {value}")
        if field.name in AT_LEAST_ONE and value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}")
        if field.name in AT_LEAST_ZERO and value < 0:
            raise ValueError(f"{flag} must be at least 0, got {value}")
        if field.name in ABOVE_ZERO and value <= 0:
            raise ValueError(f"{flag} must be above 0, got {value}")


# ----------------------------------------------------------------------------- training loops
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


def torch_rng_state(device: torch.device) -> dict[str, Any]:
    """torch's random streams, for a checkpoint: the CPU's (``torch_rng``) and, on a GPU,
    the device's (``cuda_rng``; ``None`` elsewhere)."""
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def restore_torch_rng(state: Mapping[str, Any], device: torch.device) -> None:
    """Put back the streams :func:`torch_rng_state` saved in ``state``."""
    torch.set_rng_state(state["torch_rng"].cpu())
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)


#: key of a checkpoint's random streams of ranks 1 .. W - 1 (rank 0's are at the top level)
RANK_STREAMS_KEY = "rank_streams"
#: key of the number of ranks of the job that wrote a checkpoint (absent: 1)
WORLD_SIZE_KEY = "world_size"


def rank_streams(own: Mapping[str, Any], cluster: Cluster) -> dict[str, Any]:
    """Every rank's random streams for a checkpoint (a collective: every rank calls it).

    ``own`` is this rank's (e.g. :func:`torch_rng_state` and its environment's generator).
    Rank 0's go at the top level of the checkpoint, as a single process writes them, the
    others' under :data:`RANK_STREAMS_KEY`, with the job's size under :data:`WORLD_SIZE_KEY`.
    """
    everyone = gather_objects(dict(own), cluster)
    return {**everyone[0], WORLD_SIZE_KEY: cluster.world_size, RANK_STREAMS_KEY: list(everyone[1:])}


def own_streams(state: Mapping[str, Any], cluster: Cluster) -> Mapping[str, Any] | None:
    """This rank's random streams in a checkpoint of :func:`rank_streams`, or ``None`` when
    a job of another size wrote it (a resume on another number of ranks: the caller starts
    its streams anew)."""
    if state.get(WORLD_SIZE_KEY, 1) != cluster.world_size:
        return None
    return state if cluster.rank == 0 else state[RANK_STREAMS_KEY][cluster.rank - 1]


# ----------------------------------------------------------------------------- TensorBoard
class SilentWriter:
    """What ranks other than 0 get from :func:`open_writer`: a writer that writes nothing."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        """Nothing."""

    def add_image(self, *args: Any, **kwargs: Any) -> None:
        """Nothing."""

    def flush(self) -> None:
        """Nothing."""

    def close(self) -> None:
        """Nothing."""


def open_writer(run_dir: Path, *, purge_step: int, cluster: Cluster) -> SummaryWriter | SilentWriter:
    """The run's TensorBoard writer (on rank 0; a :class:`SilentWriter` on the other ranks).

    ``purge_step``: on a resume, events the killed run wrote past its last checkpoint
    (from this global step on) are dropped, so the curves do not fold back.
    """
    if not cluster.is_main:
        return SilentWriter()
    return SummaryWriter(str(run_dir), purge_step=purge_step)


# ----------------------------------------------------------------------------- weight averages
#: key of a checkpoint's weight average (``None`` when the run keeps none)
AVERAGE_KEY = "weight_average"


def weight_average(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    r"""An exponential moving average of ``model``'s weights (``None`` when ``decay`` is 0).

    After every optimiser step the caller calls ``average.update_parameters(model)``:
    ``theta_avg <- decay * theta_avg + (1 - decay) * theta`` (the first call copies
    ``theta``). The average, not the trained weights, is what validation selects on, what
    the test scores and what the evaluation scripts load (:func:`inference_weights`): it
    smooths out the last updates' noise, for one fused interpolation of the weights per
    update. PyTorch's own :class:`torch.optim.swa_utils.AveragedModel`; a checkpoint keeps
    its ``state_dict()`` (:func:`average_state`, :func:`restore_average`), so a resumed run
    continues the same average.
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"--ema must be in [0, 1) (0: no weight average; e.g. 0.999), got {decay}")
    if decay == 0.0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def epoch_average(model: torch.nn.Module) -> AveragedModel:
    r"""Stochastic weight averaging (Izmailov et al. 2018): the equal average of ``model``'s
    weights at the ends of epochs.

    The caller calls ``average.update_parameters(model)`` at the end of each epoch of the
    averaging phase: after ``k`` calls ``theta_avg = (theta_1 + ... + theta_k) / k``. Until
    the first call the average is empty: :func:`averaging` is false, validation sees the
    trained weights and a checkpoint stores no average (:func:`average_state`), so a best
    checkpoint from before the phase is scored with its own weights. PyTorch's own
    :class:`torch.optim.swa_utils.AveragedModel` with its default (equal) average.
    """
    return AveragedModel(model, use_buffers=True)


def averaging(average: AveragedModel | None) -> TypeGuard[AveragedModel]:
    """Whether ``average`` holds weights yet (it has had at least one update)."""
    return average is not None and int(average.n_averaged) > 0


def average_state(average: AveragedModel | None) -> dict[str, Any]:
    """The weight average's entry of a checkpoint (``None`` under :data:`AVERAGE_KEY` when
    the run keeps none, or has not averaged anything yet), as :func:`torch_rng_state` gives
    the random streams'."""
    return {AVERAGE_KEY: average.state_dict() if averaging(average) else None}


def restore_average(average: AveragedModel | None, state: Mapping[str, Any]) -> None:
    """Put back the weight average :func:`average_state` saved in ``state`` (nothing to do
    when the run keeps none, or had not begun averaging)."""
    saved = state.get(AVERAGE_KEY)
    if average is not None and saved is not None:
        average.load_state_dict(saved)


M = TypeVar("M", bound=torch.nn.Module)


def evaluated_model(model: M, average: AveragedModel | None) -> M:
    """The model validation, pictures and test use: the weight average's copy of ``model``
    (see :func:`weight_average` and :func:`epoch_average`) once it holds weights, else
    ``model`` itself. Ask again after an update: an epoch average starts empty."""
    return typing.cast(M, average.module) if averaging(average) else model


def rebuild_model(
    path: str | os.PathLike[str], what: str, build: Callable[[], M], state: Mapping[str, Any]
) -> M:
    """``build()`` with checkpoint ``state``'s inference weights (:func:`inference_weights`) loaded.

    A configuration or weights the model cannot take (a checkpoint of another version of the
    package) is a :class:`CheckpointError` naming ``what`` (e.g. ``"RAM"``) and ``path``.
    """
    try:
        model = build()
        model.load_state_dict(inference_weights(state))
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(
            f"the {what} in {str(path)!r} cannot be rebuilt ({type(error).__name__}: {one_line(error)}); "
            f"was it written by another version of the package? Use a checkpoint of this version"
        ) from None
    return model


def inference_weights(state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a checkpoint is evaluated with: its weight average if the run kept one
    (see :func:`weight_average`), else the trained weights (``state["model"]``)."""
    average = state.get(AVERAGE_KEY)
    if average is None:
        return dict(state["model"])
    prefix = "module."
    return {name[len(prefix) :]: tensor for name, tensor in average.items() if name.startswith(prefix)}


# ----------------------------------------------------------------------------- data
def use_data_dir(path: str | None) -> None:
    """Make ``path`` (if given) the data folder of every environment this process makes.

    It sets ``GLIMPSE_DATA_DIR`` (see :mod:`glimpse_env.data`), which the training,
    evaluation and picture scripts all read through the environments they make.
    """
    if path is not None:
        os.environ["GLIMPSE_DATA_DIR"] = str(Path(path).expanduser())


# ----------------------------------------------------------------------------- run folders
#: the run folder's list of the command lines that trained it: the one that started the run,
#: then each ``--resume``
COMMANDS_FILE = "commands.json"


def command_line(program: str, argv: Sequence[str] | None) -> str:
    """``python -m <program>`` and its arguments (``sys.argv``'s when ``argv`` is None)."""
    return " ".join(["python -m", program, *(sys.argv[1:] if argv is None else argv)])


def run_commands(run_dir: str | os.PathLike[str]) -> list[str]:
    """The command lines :func:`open_run` recorded in ``run_dir``, first the one that started
    the run (empty for a folder made before they were recorded)."""
    path = Path(run_dir) / COMMANDS_FILE
    return list(json.loads(path.read_text())["commands"]) if path.is_file() else []


def started_by(run_dir: str | os.PathLike[str], command: str) -> dict[str, Any]:
    """What a run's results say of how it was trained: ``command``, the line that started it
    (``command`` itself for a folder made before they were recorded), and ``resumed_with``,
    the ``--resume`` lines after it."""
    commands = run_commands(run_dir) or [command]
    return {"command": commands[0], "resumed_with": commands[1:]}


def _read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path`` (``None`` when it is missing, unreadable or not an object)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _program_of(command: object) -> str | None:
    """``P`` of a recorded command line ``python -m P ...`` (``None`` for anything else)."""
    words = command.split() if isinstance(command, str) else []
    return words[2] if len(words) >= 3 and words[:2] == ["python", "-m"] else None


def run_owner(run_dir: str | os.PathLike[str], *, settings: Collection[str], program: str) -> str | None:
    """The program that trained the run in ``run_dir`` (e.g. ``"agents.ram_reinforce"``), or
    ``None`` when the folder is not recognisably a run.

    Its :data:`COMMANDS_FILE` says it: every command line recorded there is
    ``python -m <program> ...`` of one program. A folder made before the command lines
    were recorded is ``program``'s when its ``config.json`` is a non-empty object whose
    entries are all among ``settings`` (the program's own, e.g. its Args fields and
    :data:`DERIVED_SETTINGS`); another program's runs have settings this one lacks.
    """
    path = Path(run_dir)
    commands_file = path / COMMANDS_FILE
    if commands_file.exists():
        commands = (_read_json_object(commands_file) or {}).get("commands")
        programs = {_program_of(command) for command in commands} if isinstance(commands, list) else set()
        return programs.pop() if len(programs) == 1 else None
    config = _read_json_object(path / "config.json")
    return program if config and set(config) <= set(settings) else None


def _not_a_run_of(run_dir: str | os.PathLike[str], program: str, owner: str | None, *, doing: str) -> str:
    """Why ``program`` cannot ``doing`` (``"resume"`` or ``"overwrite"``) the folder ``run_dir``,
    a run of ``owner`` (``None``: not a run)."""
    where = str(run_dir)
    if owner is None:
        found = _listing(Path(run_dir))
        if doing == "resume":
            return (
                f"cannot resume {where!r}: it is not a run of {program} (it holds {found}); give the folder "
                f"of an earlier run of {program}"
            )
        return (
            f"cannot {doing} {where!r}: it holds files that are not a run of {program} ({found}); "
            f"choose another --run-dir or delete it yourself"
        )
    if doing == "resume":
        return (
            f"cannot resume {where!r} with {program}: it is a run of {owner}; continue it with "
            f"python -m {owner} --resume {shlex.quote(where)}"
        )
    return (
        f"cannot {doing} {where!r} with {program}: it is a run of {owner}; choose another --run-dir "
        f"or delete it yourself"
    )


def _listing(path: Path, names: Sequence[str] | None = None, *, limit: int = 5) -> str:
    """Up to ``limit`` of ``names`` (default: the entries of ``path``), then how many more."""
    if names is None:
        try:
            names = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in path.iterdir())
        except OSError:
            names = []
    shown = ", ".join(names[:limit]) or "nothing readable"
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file :func:`_atomic_write` leaves behind when killed."""
    return name.startswith(".") and name.endswith(".tmp")


#: what a run writes in its folder: files at the top, and the file kinds of its subfolders
_RUN_FILES = frozenset({"config.json", COMMANDS_FILE})
_RUN_FOLDERS = {"checkpoints": ".pt", "results": ".json"}


def _foreign_entries(path: Path) -> list[str]:
    """The entries of run folder ``path`` that a run does not write (symbolic links included),
    relative to ``path``, sorted."""
    foreign: list[str] = []
    for entry in sorted(path.iterdir()):
        name = entry.name
        if entry.is_symlink():
            foreign.append(name)
        elif entry.is_file() and (
            name in _RUN_FILES or name.startswith("events.out.tfevents.") or _temporary(name)
        ):
            continue
        elif entry.is_dir() and name in _RUN_FOLDERS:
            foreign += [
                f"{name}/{inner.name}"
                for inner in sorted(entry.iterdir())
                if inner.is_symlink()
                or not inner.is_file()
                or not (inner.name.endswith(_RUN_FOLDERS[name]) or _temporary(inner.name))
            ]
        else:
            foreign.append(name + ("/" if entry.is_dir() else ""))
    return foreign


def _check_overwrite(path: Path, config: Mapping[str, Any], program: str) -> None:
    """Refuse (:class:`RunFolderError`) to delete ``path`` unless it is a run of ``program``
    holding only what a run writes, and neither the current folder nor one of its parents."""
    resolved, here = path.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise RunFolderError(
            f"--overwrite refuses to delete {str(path)!r}: it is the current folder or one of its parents; "
            f"choose another --run-dir"
        )
    if path.is_symlink():
        raise RunFolderError(
            f"--overwrite refuses to delete {str(path)!r}: it is a symbolic link; choose another --run-dir "
            f"or delete it yourself"
        )
    owner = run_owner(path, settings=config.keys(), program=program)
    if owner != program:
        raise RunFolderError(_not_a_run_of(path, program, owner, doing="overwrite"))
    foreign = _foreign_entries(path)
    if foreign:
        raise RunFolderError(
            f"cannot overwrite {str(path)!r}: it is a run of {program} but also holds files a run does not "
            f"write ({_listing(path, foreign)}); move them, choose another --run-dir or delete it yourself"
        )


#: the run folder this process trains in, once :func:`open_run` made or checked it (for the
#: message of :func:`interruptible`)
_CURRENT_RUN: dict[str, Path] = {}


def open_run(
    run_dir: str | os.PathLike[str],
    config: Mapping[str, Any],
    *,
    program: str,
    command: str,
    resume: bool,
    overwrite: bool,
) -> Path:
    """Create (or check, to resume) the run folder ``run_dir`` of ``program`` (e.g.
    ``"agents.ram_reinforce"``), write ``config.json`` and record ``command`` (see
    :data:`COMMANDS_FILE` and :func:`run_commands`).

    - a new folder: created, ``config.json`` written, ``command`` recorded;
    - an existing folder with ``resume``: must be a run of ``program`` (see :func:`run_owner`);
      nothing is written: the caller records ``command`` with :func:`record_resume` once
      the checkpoint is loaded and checked, so a resume that fails leaves the folder as it was;
    - an existing folder with ``overwrite``: deleted first, if it is a run of ``program`` that
      holds only what a run writes and is neither the current folder nor one of its parents;
      otherwise :class:`RunFolderError` naming what it holds, nothing touched;
    - an existing non-empty folder otherwise: :class:`RunFolderError`, nothing touched.

    ``config``'s entries are ``program``'s settings (what identifies a run made before the
    command lines were recorded).
    """
    path = Path(run_dir)
    if resume:
        if not (path / "config.json").is_file():
            raise RunFolderError(
                f"cannot resume {str(path)!r}: it is not a run folder (no config.json there). "
                f"Give the folder of an earlier run, or start a new run without --resume"
            )
        owner = run_owner(path, settings=config.keys(), program=program)
        if owner != program:
            raise RunFolderError(_not_a_run_of(path, program, owner, doing="resume"))
        _CURRENT_RUN["run"] = path
        return path
    if path.exists():
        if not path.is_dir():
            raise RunFolderError(f"run folder {str(path)!r} exists and is not a folder")
        if any(path.iterdir()):
            if not overwrite:
                raise RunFolderError(
                    f"run folder {str(path)!r} already exists and is not empty. Continue that run with "
                    f"--resume {path}, delete it with --overwrite, or choose another --run-dir"
                )
            _check_overwrite(path, config, program)
            shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    write_json(path / "config.json", dict(config))
    write_json(path / COMMANDS_FILE, {"commands": [command]})
    _CURRENT_RUN["run"] = path
    return path


def record_resume(run_dir: str | os.PathLike[str], command: str, source: Path | None) -> None:
    """What a ``--resume`` writes once it has loaded its checkpoint ``source`` (see
    :func:`resume_state`; ``None``: none yet) and checked it: when ``source`` is a ``best.pt``
    written ahead of ``last.pt`` (a kill between the two), ``last.pt`` becomes a copy of it,
    so the two are an epoch's pair again even if no epoch is left to train; then ``command``
    is added to the run's :data:`COMMANDS_FILE`."""
    if source is not None and source.name != "last.pt":
        data = source.read_bytes()
        _atomic_write(source.with_name("last.pt"), lambda handle: handle.write(data))
    write_json(Path(run_dir) / COMMANDS_FILE, {"commands": [*run_commands(run_dir), command]})


def interruptible(program: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator of a trainer's ``main``: Ctrl-C (``KeyboardInterrupt``) ends it with
    :class:`Interrupted`, whose line says how to continue: ``interrupted: continue with
    python -m <program> --resume <run folder>`` once :func:`open_run` has made or checked
    the folder, else that nothing was written. :func:`run_main` prints it (status 130).
    """

    def decorate(main: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(main)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            _CURRENT_RUN.clear()
            try:
                return main(*args, **kwargs)
            except KeyboardInterrupt:
                raise Interrupted(_interrupted_line(program, _CURRENT_RUN.get("run"))) from None

        return run

    return decorate


def _interrupted_line(program: str, run_dir: Path | None) -> str:
    """What :func:`interruptible` says (nothing on a torchrun rank other than 0)."""
    if os.environ.get("RANK", "0") != "0":
        return ""
    if run_dir is None:
        return "interrupted before the run folder was made: nothing to continue"
    return f"interrupted: continue with python -m {program} --resume {shlex.quote(str(run_dir))}"


def run_main(main: Callable[[], object], *, errors: tuple[type[Exception], ...]) -> None:
    """Run a trainer's ``main()`` as a program: bad input (:func:`glimpse_env.cli.run_cli`'s
    errors, e.g. an ``OSError`` of a data folder that cannot be read, and ``errors``) ends it
    with the one line ``error: ...`` (status 1); Ctrl-C with the line of :class:`Interrupted`
    (status 130); no traceback either way."""
    try:
        run_cli(lambda _argv: main(), errors=errors)
    except Interrupted as stop:
        if stop.message:
            print(stop.message, file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:  # outside a decorated main
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    _atomic_write(Path(path), lambda handle: handle.write(text.encode()))


# ----------------------------------------------------------------------------- checkpoints
def _atomic_write(path: Path, write: Any) -> None:
    """Write a file through ``write(handle)`` into a temporary file, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    path: str | os.PathLike[str], state: Mapping[str, Any], config: Mapping[str, Any]
) -> None:
    """Save ``state`` plus its ``config`` to ``path``, atomically, with a checksum.

    The file is ``torch.save({"format": 2, "sha256": <hex>, "payload": <uint8 tensor>})``: the
    payload is the ``torch.save`` bytes of the state, the checksum theirs (see
    :func:`load_checkpoint`).
    """
    inner = io.BytesIO()
    torch.save({**state, CONFIG_KEY: dict(config), FORMAT_KEY: FORMAT_VERSION}, inner)
    data = inner.getvalue()
    outer = {
        FORMAT_KEY: FORMAT_VERSION,
        CHECKSUM_KEY: hashlib.sha256(data).hexdigest(),
        PAYLOAD_KEY: torch.frombuffer(bytearray(data), dtype=torch.uint8),
    }
    _atomic_write(Path(path), lambda handle: torch.save(outer, handle))


def save_epoch(
    checkpoints: str | os.PathLike[str],
    state: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    improved: bool,
) -> None:
    """Save the state at the end of an epoch: ``best.pt`` first when the epoch ``improved``,
    then ``last.pt`` (in the folder ``checkpoints``).

    In that order a kill at any instant leaves the two consistent: ``last.pt`` never names a
    best epoch that ``best.pt`` does not hold; a kill between the two leaves the newer state
    in ``best.pt``, which :func:`resume_state` continues from.
    """
    folder = Path(checkpoints)
    if improved:
        save_checkpoint(folder / "best.pt", state, config)
    save_checkpoint(folder / "last.pt", state, config)


def resume_state(
    checkpoints: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint a ``--resume`` continues from, ``(file, state)``: the later (by epoch) of
    ``last.pt`` and ``best.pt`` in the folder ``checkpoints`` (``best.pt`` is the later one
    when a run was killed between writing the two, see :func:`save_epoch`), or ``None`` when
    neither exists (a run stopped before the end of its first epoch starts again).
    """
    found = [
        (file, load_checkpoint(file, map_location=map_location))
        for file in (Path(checkpoints) / "last.pt", Path(checkpoints) / "best.pt")
        if file.exists()
    ]
    return max(found, key=lambda pair: int(pair[1]["epoch"])) if found else None  # a tie: last.pt


def _unreadable(file: Path, exc: Exception) -> CheckpointError:
    """The error of a checkpoint file ``torch.load`` refused with ``exc``."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "weights only load failed" in text.lower():
        named = re.search(r"GLOBAL (\S+)", text)
        return CheckpointError(
            f"checkpoint {str(file)!r} is refused: it holds Python objects other than tensors and plain data"
            + (f" ({named.group(1)})" if named else "")
            + ", and loading them could run code. Use a checkpoint written by this package's training scripts"
        )
    first = text.strip().splitlines()[0] if text.strip() else ""
    return CheckpointError(
        f"checkpoint {str(file)!r} cannot be read ({type(exc).__name__}: {first}); it is truncated, "
        f"corrupted or not a checkpoint. Use another checkpoint (e.g. checkpoints/best.pt or last.pt)"
    )


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    expect: Mapping[str, Any] | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Nothing in the file can run code: it is read with ``torch.load(weights_only=True)``
    (tensors and plain data only), and a file that holds anything else is a
    :class:`CheckpointError`. The payload's SHA-256 must match the one stored with it
    (a :class:`CheckpointError` "checksum mismatch" otherwise). Checkpoints of format 1
    (no checksum) still load.

    Args:
        path: the ``.pt`` file.
        expect: configuration entries the checkpoint must match (e.g. the model's
            architecture and the environment id); the first difference is named in a
            :class:`CheckpointError`.
        map_location: where tensors are loaded.
    """
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"no checkpoint at {str(file)!r}" + (" (a folder)" if file.is_dir() else ""))
    try:
        outer = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupted, unsafe, or not a torch file at all
        raise _unreadable(file, exc) from None
    version = outer.get(FORMAT_KEY) if isinstance(outer, dict) else None
    if version == FORMAT_VERSION:
        payload, checksum = outer.get(PAYLOAD_KEY), outer.get(CHECKSUM_KEY)
        if not (
            isinstance(payload, torch.Tensor)
            and payload.dtype == torch.uint8
            and payload.dim() == 1
            and isinstance(checksum, str)
        ):
            raise CheckpointError(
                f"checkpoint {str(file)!r} cannot be read: its payload or checksum is missing; it is "
                f"corrupted. Use another checkpoint (e.g. checkpoints/best.pt or last.pt)"
            )
        data = payload.numpy().tobytes()
        if hashlib.sha256(data).hexdigest() != checksum:
            raise CheckpointError(
                f"checkpoint {str(file)!r}: checksum mismatch: the file is corrupted; its weights cannot be "
                f"trusted. Use another checkpoint (e.g. checkpoints/best.pt or last.pt) or train again"
            )
        try:
            state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
        except Exception as exc:
            raise _unreadable(file, exc) from None
        if not isinstance(state, dict) or state.get(FORMAT_KEY) != FORMAT_VERSION:
            state = None
    elif version == 1:  # the format before the checksum: the state itself
        try:
            state = torch.load(file, map_location=map_location, weights_only=True)
        except Exception as exc:
            raise _unreadable(file, exc) from None
    else:
        state = None
    if not isinstance(state, dict) or CONFIG_KEY not in state:
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise CheckpointError(
                f"{str(file)!r} is a checkpoint of format {version}, written by a newer version of this "
                f"package (this one reads formats 1 and {FORMAT_VERSION}); update the package"
            )
        raise CheckpointError(f"{str(file)!r} is not a checkpoint written by this package")
    if expect:
        config = state[CONFIG_KEY]
        for key, value in expect.items():
            if config.get(key) != value:
                raise CheckpointError(
                    f"checkpoint {str(file)!r} was made with {key}={config.get(key)!r}, but {key}={value!r} "
                    f"was expected; use a checkpoint of the same configuration"
                )
    return state
