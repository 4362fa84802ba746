"""Run folders: what one training run writes, and the rules that keep it from losing work.

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
current folder or one of its parents). Every file is written atomically
(:func:`atomic_write`: a temporary file in the same folder, flushed, then renamed).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from glimpse_engine.distributed import Cluster
from glimpse_engine.errors import RunFolderError

__all__ = [
    "COMMANDS_FILE",
    "RunFolderError",
    "SilentWriter",
    "atomic_write",
    "command_line",
    "open_run",
    "open_writer",
    "read_json_object",
    "record_resume",
    "run_commands",
    "run_owner",
    "started_by",
    "write_json",
]


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


def read_json_object(path: Path) -> dict[str, Any] | None:
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
        commands = (read_json_object(commands_file) or {}).get("commands")
        programs = {_program_of(command) for command in commands} if isinstance(commands, list) else set()
        return programs.pop() if len(programs) == 1 else None
    config = read_json_object(path / "config.json")
    return program if config and set(config) <= set(settings) else None


def not_a_run_of(run_dir: str | os.PathLike[str], program: str, owner: str | None, *, doing: str) -> str:
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
    """Whether ``name`` is a temporary file :func:`atomic_write` leaves behind when killed."""
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
        raise RunFolderError(not_a_run_of(path, program, owner, doing="overwrite"))
    foreign = _foreign_entries(path)
    if foreign:
        raise RunFolderError(
            f"cannot overwrite {str(path)!r}: it is a run of {program} but also holds files a run does not "
            f"write ({_listing(path, foreign)}); move them, choose another --run-dir or delete it yourself"
        )


#: the run folder this process trains in, once :func:`open_run` made or checked it (for the
#: message of :func:`interruptible`)
CURRENT_RUN: dict[str, Path] = {}


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
            raise RunFolderError(not_a_run_of(path, program, owner, doing="resume"))
        CURRENT_RUN["run"] = path
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
    CURRENT_RUN["run"] = path
    return path


def record_resume(run_dir: str | os.PathLike[str], command: str, source: Path | None) -> None:
    """What a ``--resume`` writes once it has loaded its checkpoint ``source`` (see
    :func:`resume_state`; ``None``: none yet) and checked it: when ``source`` is a ``best.pt``
    written ahead of ``last.pt`` (a kill between the two), ``last.pt`` becomes a copy of it,
    so the two are an epoch's pair again even if no epoch is left to train; then ``command``
    is added to the run's :data:`COMMANDS_FILE`."""
    if source is not None and source.name != "last.pt":
        data = source.read_bytes()
        atomic_write(source.with_name("last.pt"), lambda handle: handle.write(data))
    write_json(Path(run_dir) / COMMANDS_FILE, {"commands": [*run_commands(run_dir), command]})


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write(Path(path), lambda handle: handle.write(text.encode()))


# ----------------------------------------------------------------------------- checkpoints
def atomic_write(path: Path, write: Any) -> None:
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
