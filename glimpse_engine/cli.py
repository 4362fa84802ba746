"""Command lines of the training programs: dataclass ``Args`` to flags (tyro), resume
settings, the checks made before anything is written, and one-line errors and Ctrl-C.

:func:`parse_args` turns a dataclass into a command line with `tyro <https://brentyi.github.io/tyro/>`_:
one ``--flag`` per field, its ``--help`` text the docstring written under the field
(CleanRL's style), booleans as ``--flag`` / ``--no-flag``, ``Literal`` fields as choices,
``X | None`` fields taking ``None`` (or ``none``). A usage error is one line, ``PROG: error:
MESSAGE (see PROG --help)``, exit status 2. :func:`resume_args` gives a ``--resume`` its
run's saved settings, :func:`check_settings` refuses the values no run can use before
anything is written, and :func:`run_main` / :func:`interruptible` make a trainer's errors
and Ctrl-C one line each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import math
import os
import shlex
import sys
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import tyro

from glimpse_engine.errors import RUN_ERRORS, RunFolderError
from glimpse_engine.runs import CURRENT_RUN, not_a_run_of, read_json_object, run_owner
from glimpse_env.cli import one_line, run_cli

__all__ = [
    "DERIVED_SETTINGS",
    "RESUMABLE",
    "Interrupted",
    "check_settings",
    "explicit_fields",
    "interruptible",
    "parse_args",
    "resume_args",
    "run_main",
    "trainer",
    "use_data_dir",
]

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


class Interrupted(SystemExit):
    """Training stopped by Ctrl-C (exit status 130); ``str()`` is the line that says how to continue
    (empty on the ranks other than 0 of a torchrun job, which say nothing)."""

    def __init__(self, message: str) -> None:
        super().__init__(130)
        self.message = message

    def __str__(self) -> str:
        return self.message


# ----------------------------------------------------------------------------- command lines
def _optional_fields(cls: type) -> set[str]:
    """The fields of dataclass ``cls`` whose type admits ``None``."""
    hints = typing.get_type_hints(cls)
    return {
        field.name for field in dataclasses.fields(cls) if type(None) in typing.get_args(hints[field.name])
    }


def _bool_fields(cls: type) -> set[str]:
    hints = typing.get_type_hints(cls)
    return {field.name for field in dataclasses.fields(cls) if hints[field.name] is bool}


#: the characters of a tyro error panel's borders and rules (rich's Unicode and ASCII boxes)
_BORDERS = "│╭╮╰╯─━|+-= "


def _boxed_text(text: str) -> str:
    """The message of one of tyro's error panels, on one line: its lines without the box's
    borders, rules, title and closing hint (Unicode or ASCII boxes alike)."""
    lines = [line.strip(_BORDERS) for line in text.splitlines()]
    lines = [line for line in lines if line]
    body = lines[1:] if len(lines) > 1 else lines  # the first is the panel's title
    kept: list[str] = []
    for line in body:
        if line.startswith(("For full helptext", "Argument helptext")):
            break
        kept.append(line)
    return one_line(" ".join(kept)) or "bad command line"


def _program(prog: str | None) -> str:
    """The program's name in messages: ``prog``, else argparse's default (the script's file name)."""
    return prog or os.path.basename(sys.argv[0] if sys.argv and sys.argv[0] else "program")


def parse_args(
    cls: type[T],
    argv: Sequence[str] | None = None,
    *,
    description: str | None = None,
    prog: str | None = None,
) -> T:
    """Parse ``argv`` (default: ``sys.argv[1:]``) into dataclass ``cls`` with tyro.

    Every field is a ``--field-name VALUE`` flag, documented by the docstring under the
    field; booleans take ``--flag`` / ``--no-flag``, ``Literal`` fields their values, and
    ``X | None`` fields ``None`` (``none`` is read as ``None`` too). A usage error (an
    unknown flag, a bad value) exits with status 2 and one line on stderr, ``PROG: error:
    MESSAGE (see PROG --help)``; ``--help`` prints tyro's help and exits with 0.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    optional = {"--" + name.replace("_", "-") for name in _optional_fields(cls)}
    words = [
        "None" if word.lower() == "none" and index and words[index - 1] in optional else word
        for index, word in enumerate(words)
    ]
    name = _program(prog)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return tyro.cli(cls, args=words, description=description, prog=name)
    except SystemExit as stop:
        if stop.code in (0, None):
            raise
        print(f"{name}: error: {_boxed_text(captured.getvalue())} (see {name} --help)", file=sys.stderr)
        raise SystemExit(2) from None


def explicit_fields(cls: type, argv: Sequence[str] | None = None) -> set[str]:
    """The fields of dataclass ``cls`` whose flags appear in ``argv`` (default:
    ``sys.argv[1:]``): ``--name``, ``--name=VALUE`` and, for booleans, ``--no-name``."""
    names = {field.name for field in dataclasses.fields(cls)}
    booleans = _bool_fields(cls)
    given: set[str] = set()
    for word in sys.argv[1:] if argv is None else argv:
        if not word.startswith("--"):
            continue
        flag = word[2:].split("=", 1)[0].replace("-", "_")
        if flag.startswith("no_") and flag[3:] in booleans:
            flag = flag[3:]
        if flag in names:
            given.add(flag)
    return given


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
    saved = read_json_object(saved_file)
    if saved is None:
        raise RunFolderError(f"cannot resume {resume!r}: its config.json cannot be read as a JSON object")
    owner = run_owner(resume, settings=known | DERIVED_SETTINGS, program=program)
    if owner != program:
        raise RunFolderError(not_a_run_of(resume, program, owner, doing="resume"))
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


# ----------------------------------------------------------------------------- data
def use_data_dir(path: str | None) -> None:
    """Make ``path`` (if given) the data folder of every environment this process makes.

    It sets ``GLIMPSE_DATA_DIR`` (see :mod:`glimpse_env.data`), which the training,
    evaluation and picture scripts all read through the environments they make.
    """
    if path is not None:
        os.environ["GLIMPSE_DATA_DIR"] = str(Path(path).expanduser())


def interruptible(program: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator of a trainer's ``main``: Ctrl-C (``KeyboardInterrupt``) ends it with
    :class:`Interrupted`, whose line says how to continue: ``interrupted: continue with
    python -m <program> --resume <run folder>`` once :func:`open_run` has made or checked
    the folder, else that nothing was written. :func:`run_main` prints it (status 130).
    """

    def decorate(main: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(main)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            CURRENT_RUN.clear()
            try:
                return main(*args, **kwargs)
            except KeyboardInterrupt:
                raise Interrupted(_interrupted_line(program, CURRENT_RUN.get("run"))) from None

        return run

    return decorate


def trainer(program: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator of a trainer's ``main``: under torchrun a rank's error is reported by the
    launcher, which ends the other ranks (torch's ``record``), and Ctrl-C ends it with one
    line that says how to continue (:func:`interruptible`)."""
    from torch.distributed.elastic.multiprocessing.errors import record

    def decorate(main: Callable[P, R]) -> Callable[P, R]:
        return typing.cast(Callable[P, R], record(interruptible(program)(main)))

    return decorate


def _interrupted_line(program: str, run_dir: Path | None) -> str:
    """What :func:`interruptible` says (nothing on a torchrun rank other than 0)."""
    if os.environ.get("RANK", "0") != "0":
        return ""
    if run_dir is None:
        return "interrupted before the run folder was made: nothing to continue"
    return f"interrupted: continue with python -m {program} --resume {shlex.quote(str(run_dir))}"


def run_main(main: Callable[[], object], *, errors: tuple[type[Exception], ...] = ()) -> None:
    """Run a trainer's ``main()`` as a program: bad input (:func:`glimpse_env.cli.run_cli`'s
    errors, e.g. an ``OSError`` of a data folder that cannot be read, a run folder or
    checkpoint that cannot be used, :data:`~glimpse_engine.errors.RUN_ERRORS`, and
    ``errors``) ends it with the one line ``error: ...`` (status 1); Ctrl-C with the line of
    :class:`Interrupted` (status 130); no traceback either way."""
    try:
        run_cli(lambda _argv: main(), errors=(*RUN_ERRORS, *errors))
    except Interrupted as stop:
        if stop.message:
            print(stop.message, file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:  # outside a decorated main
        print("interrupted", file=sys.stderr)
        sys.exit(130)
