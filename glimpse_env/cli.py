"""Shared pieces of the project's command-line programs: one-line errors and the checks made
before any work is done.

Every program (``python -m glimpse_env.evaluate``, ``agents.evaluate``, ``agents.visualize``,
``baselines.evaluate``, ``baselines.visualize``, ``examples/recurrent_ppo.py``) refuses bad
input with one line on stderr that says what was wrong, what was expected and how to fix
it, a non-zero exit status, no traceback, and nothing written:

- :func:`run_cli` runs a program's ``main`` and turns the errors of bad input into that line;
- :class:`ArgumentParser` is argparse's parser with one-line usage errors;
- :func:`check_flag_int`, :func:`check_flag_real` check numeric flags by their names;
- :func:`check_output_file` checks a ``--json`` / ``--out`` path before the (long) work;
- :func:`check_data_dir` checks ``--data-dir`` or ``GLIMPSE_DATA_DIR`` before any data is read;
- :func:`set_threads` checks and applies ``--threads``.

This module sits in ``glimpse_env``, the bottom layer, so that ``agents``, ``baselines``
and the examples can import it; it imports nothing from them.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import torch

from glimpse_env.extras import MissingExtraError

__all__ = [
    "ArgumentParser",
    "check_data_dir",
    "check_flag_int",
    "check_flag_real",
    "check_output_file",
    "one_line",
    "run_cli",
    "set_threads",
]

#: the errors :func:`run_cli` reports as one line whatever the program: bad values
#: (``ValueError``, which ``glimpse_env.data.DataError`` also is) and files or folders that
#: cannot be read or written (``OSError``)
INPUT_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)
#: the longest message :func:`one_line` keeps (a longer one is cut, with an ellipsis)
MAX_MESSAGE = 2000


def one_line(error: BaseException | str) -> str:
    """The message of ``error`` on one line: every run of white space (new lines included)
    becomes one space; an empty message gives the error's type; a very long one is cut."""
    text = " ".join(str(error).split())
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def run_cli(
    main: Callable[[Sequence[str] | None], object],
    argv: Sequence[str] | None = None,
    *,
    errors: tuple[type[BaseException], ...] = (),
) -> None:
    """Run a program's ``main(argv)``; bad input ends it with one line, ``error: MESSAGE``,
    on stderr and exit status 1.

    The errors reported so are :data:`INPUT_ERRORS` (``ValueError``, ``OSError``), a
    missing optional dependency (:class:`~glimpse_env.extras.MissingExtraError`, whose
    message names the ``pip install`` that fixes it) and the program's own ``errors``
    (e.g. ``glimpse_engine.errors.CheckpointError``); any other exception is a bug and keeps its
    traceback.
    """
    reported: tuple[type[BaseException], ...] = (*INPUT_ERRORS, MissingExtraError, *errors)
    try:
        main(argv)
    except reported as error:
        sys.exit(f"error: {one_line(error)}")


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one line, ``PROG: error: MESSAGE (see PROG
    --help)``, with exit status 2 (argparse's own prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        """Exit with status 2 and one line on stderr."""
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def _expected(low: float | None, high: float | None, kind: str, *, open_low: bool = False) -> str:
    if low is not None and high is not None:
        return f"{kind} in {'(' if open_low else '['}{low}, {high}]"
    if low is not None:
        return f"{kind} {'>' if open_low else '>='} {low}"
    if high is not None:
        return f"{kind} <= {high}"
    return kind


def check_flag_int(
    value: int | None,
    flag: str,
    *,
    low: int | None = None,
    high: int | None = None,
    hint: str = "",
    optional: bool = False,
) -> int | None:
    """``value`` of the integer flag ``flag`` (e.g. ``"--count"``) if it is in ``[low, high]``,
    else a ``ValueError`` naming the flag, what it must be and ``hint`` (how to fix it).
    ``None`` passes when ``optional`` (the flag's default)."""
    if value is None and optional:
        return None
    expected = _expected(low, high, "an integer")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{flag} must be {expected}, got {value!r}" + (f"; {hint}" if hint else ""))
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{flag} must be {expected}, got {value}" + (f"; {hint}" if hint else ""))
    return value


def check_flag_real(
    value: float | None,
    flag: str,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    hint: str = "",
    optional: bool = False,
) -> float | None:
    """``value`` of the real-valued flag ``flag`` if it is a finite number in ``[low, high]``
    (``(low, high]`` when ``open_low``), else a ``ValueError`` naming the flag; ``nan`` and
    the infinities are refused. ``None`` passes when ``optional``."""
    if value is None and optional:
        return None
    expected = _expected(low, high, "a finite number", open_low=open_low)
    bad = value is None or isinstance(value, bool) or not isinstance(value, (int, float))
    if not bad:
        assert value is not None
        below = low is not None and (value <= low if open_low else value < low)
        bad = not math.isfinite(value) or below or (high is not None and value > high)
    if bad:
        raise ValueError(f"{flag} must be {expected}, got {value!r}" + (f"; {hint}" if hint else ""))
    return value


def set_threads(threads: int | None, flag: str = "--threads") -> None:
    """Check ``--threads`` (a positive integer, or ``None``: torch's own choice) and make it
    torch's number of intra-op threads."""
    check_flag_int(threads, flag, low=1, optional=True, hint=f"drop {flag} to let torch choose")
    if threads is not None:
        torch.set_num_threads(threads)


def check_output_file(
    path: str | os.PathLike[str], flag: str, *, suffixes: Sequence[str] = (), example: str = "out.json"
) -> Path:
    """``path``, a file a program will write at its end, if it can be written; checked before
    the work so that a long evaluation is not lost to a typo. Nothing is created.

    Refused, with a ``ValueError`` naming ``flag``: an empty path; a suffix not in
    ``suffixes`` (when given, e.g. ``(".png", ".gif")``); a path that is a folder or
    anything but a regular file (``/dev/null``, ...); a path under a file (``notes.txt/
    out.json``); and a place this process may not write in. Missing folders on the way are
    fine (the program makes them).
    """
    text = os.fspath(path)
    if not text:
        raise ValueError(f"{flag} needs a file name, got an empty one; e.g. {flag} {example}")
    file = Path(text)
    if suffixes and file.suffix.lower() not in suffixes:
        raise ValueError(f"{flag} must end in {' or '.join(suffixes)}, got {text!r}; e.g. {flag} {example}")
    try:
        if file.is_dir():
            raise ValueError(
                f"{flag} {text!r} is a folder, not a file; give a file in it, e.g. {flag} {file / example}"
            )
        if file.exists() or file.is_symlink():
            if not file.is_file():
                raise ValueError(
                    f"{flag} {text!r} exists and is not a regular file (a device, pipe, socket or broken "
                    f"link); give a new file name"
                )
            if not os.access(file, os.W_OK):
                raise ValueError(f"{flag} {text!r} exists and cannot be written (permission denied)")
        folder = file.parent
        while not folder.exists():  # the nearest folder that exists: the missing ones are made in it
            if folder.is_symlink():
                raise ValueError(f"{flag} {text!r} cannot be written: {str(folder)!r} is a broken link")
            folder = folder.parent
        if not folder.is_dir():
            raise ValueError(
                f"{flag} {text!r} cannot be written: {str(folder)!r} is a file, not a folder; "
                f"give a path in a folder"
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(
                f"{flag} {text!r} cannot be written: no permission to write in the folder {str(folder)!r}; "
                f"give a path in a folder you can write in"
            )
    except OSError as error:  # a symbolic link loop, a name too long, ...
        raise ValueError(f"{flag} {text!r} cannot be written: {one_line(error)}") from None
    return file


def check_data_dir(data_dir: str | os.PathLike[str] | None, flag: str = "--data-dir") -> None:
    """Refuse a data folder that is a file (``flag``, or else ``GLIMPSE_DATA_DIR``), with a
    ``ValueError`` that says which to fix. A folder that does not exist yet passes (the data
    may be downloaded into it); what is in it is :mod:`glimpse_env.data`'s to check."""
    if data_dir is not None:
        where, value = flag, os.fspath(data_dir)
    else:
        where, value = "GLIMPSE_DATA_DIR", os.environ.get("GLIMPSE_DATA_DIR", "")
        if not value:
            return
    folder = Path(value).expanduser()
    if folder.exists() and not folder.is_dir():
        fix = f"pass {flag} FOLDER or unset it" if where == "GLIMPSE_DATA_DIR" else "give the folder"
        raise ValueError(
            f"{where} {value!r} is a file, not a folder; the data folder holds MNIST/raw/ (and "
            f"FashionMNIST/raw/): {fix}"
        )
