"""Run folders, checkpoints, TensorBoard and command lines, shared by the agents and the baselines.

A *run folder* holds everything one training run writes::

    <run_dir>/
        config.json          the full configuration (the Args dataclass) of the run
        checkpoints/last.pt  written at the end of every epoch (atomically)
        checkpoints/best.pt  the epoch with the best validation accuracy (atomically)
        events.out.tfevents  TensorBoard scalars and images
        results/             evaluation JSON

A run folder that exists is never reused silently: :func:`open_run` refuses it unless
the run is resumed (``--resume``) or ``--overwrite`` is given.

Checkpoints are plain ``torch.save`` dictionaries written to a temporary file in the
same folder, flushed to disk and renamed over the old one (``os.replace`` is atomic), so
a run killed at any moment leaves the previous checkpoint intact. Every checkpoint
carries the configuration it was made with (:data:`CONFIG_KEY`); :func:`load_checkpoint`
checks it against what the caller expects and names the first difference.

:func:`parse_args` turns a dataclass into a command line: one ``--flag`` per field, its
``--help`` text taken from the docstring written under the field (CleanRL's style).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import itertools
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.tensorboard import SummaryWriter

from agents.distributed import Cluster, gather_objects

__all__ = [
    "AVERAGE_KEY",
    "COMMANDS_FILE",
    "CONFIG_KEY",
    "RESUMABLE",
    "CheckpointError",
    "RunFolderError",
    "average_state",
    "averaging",
    "command_line",
    "epoch_average",
    "evaluated_model",
    "explicit_fields",
    "field_docs",
    "inference_weights",
    "load_checkpoint",
    "open_run",
    "open_writer",
    "own_streams",
    "parse_args",
    "rank_streams",
    "restore_average",
    "restore_torch_rng",
    "resume_args",
    "run_commands",
    "save_checkpoint",
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
FORMAT_VERSION = 1

T = TypeVar("T")

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
    """A checkpoint that is missing, unreadable, or from another configuration."""


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
    parser = argparse.ArgumentParser(
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


def resume_args(args: T, argv: Sequence[str] | None, *, resumable: frozenset[str]) -> T:
    """On ``--resume DIR``, the run's saved configuration with the settings that may change.

    ``args`` is a parsed dataclass with a ``resume`` field. Without ``--resume`` it is
    returned as it is. With it, the run's ``config.json`` is the configuration; flags given
    in ``argv`` may change only the fields named in ``resumable`` (e.g. ``epochs``,
    ``device``), and any other flag that differs from the saved value is a
    :class:`RunFolderError` naming it.
    """
    cls = type(args)
    resume = getattr(args, "resume", None)
    if resume is None:
        return args
    saved_file = Path(resume) / "config.json"
    if not saved_file.is_file():
        raise RunFolderError(
            f"cannot resume {resume!r}: it is not a run folder (no config.json there). "
            f"Give the folder of an earlier run, or start a new run without --resume"
        )
    saved = json.loads(saved_file.read_text())
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
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{**{k: v for k, v in saved.items() if k in known}, **overrides, "resume": resume})


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


def open_run(
    run_dir: str | os.PathLike[str],
    config: Mapping[str, Any],
    *,
    command: str,
    resume: bool,
    overwrite: bool,
) -> Path:
    """Create (or reopen, to resume) the run folder ``run_dir``, write ``config.json`` and
    record ``command`` (see :data:`COMMANDS_FILE` and :func:`run_commands`).

    - a new folder: created, ``config.json`` written;
    - an existing folder with ``resume``: must hold ``config.json`` (it is left as it is;
      the caller compares configurations through the checkpoint);
    - an existing folder with ``overwrite``: emptied first;
    - an existing non-empty folder otherwise: :class:`RunFolderError`, nothing touched.
    """
    path = Path(run_dir)
    if resume:
        if not (path / "config.json").is_file():
            raise RunFolderError(
                f"cannot resume {str(path)!r}: it is not a run folder (no config.json there). "
                f"Give the folder of an earlier run, or start a new run without --resume"
            )
        write_json(path / COMMANDS_FILE, {"commands": [*run_commands(path), command]})
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
            shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    write_json(path / "config.json", dict(config))
    write_json(path / COMMANDS_FILE, {"commands": [command]})
    return path


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
    """``torch.save`` ``state`` plus its ``config`` to ``path``, atomically."""
    payload = {**state, CONFIG_KEY: dict(config), FORMAT_KEY: FORMAT_VERSION}
    _atomic_write(Path(path), lambda handle: torch.save(payload, handle))


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    expect: Mapping[str, Any] | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

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
        state = torch.load(file, map_location=map_location, weights_only=False)
    except Exception as exc:  # truncated, corrupted, or not a torch file at all
        raise CheckpointError(
            f"checkpoint {str(file)!r} cannot be read ({type(exc).__name__}: {exc}); it is truncated, "
            f"corrupted or not a checkpoint. Use another checkpoint (e.g. checkpoints/best.pt or last.pt)"
        ) from None
    if not isinstance(state, dict) or state.get(FORMAT_KEY) != FORMAT_VERSION or CONFIG_KEY not in state:
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
