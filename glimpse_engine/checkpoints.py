"""Checkpoints that can neither run code nor rot silently.

A checkpoint file is a ``torch.save`` dictionary holding the ``torch.save`` bytes of the
state (:data:`PAYLOAD_KEY`) and their SHA-256 (:data:`CHECKSUM_KEY`): a flipped bit anywhere
in it is an error, never silently different weights. Loading never runs code: both layers
are read with ``torch.load(weights_only=True)``, which admits tensors and plain data only.
Every checkpoint carries the configuration it was made with (:data:`CONFIG_KEY`);
:func:`load_checkpoint` checks it against what the caller expects and names the first
difference. :func:`save_epoch` writes an improved epoch's ``best.pt`` before its
``last.pt``, so a kill between the two leaves the newer state in ``best.pt``, which
:func:`resume_state` continues from.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from glimpse_engine.averaging import AVERAGE_KEY
from glimpse_engine.errors import CheckpointError
from glimpse_engine.runs import atomic_write
from glimpse_env.cli import one_line

__all__ = [
    "CHECKSUM_KEY",
    "CONFIG_KEY",
    "FORMAT_VERSION",
    "PAYLOAD_KEY",
    "CheckpointError",
    "inference_weights",
    "load_checkpoint",
    "rebuild_model",
    "resume_state",
    "save_checkpoint",
    "save_epoch",
]

M = TypeVar("M", bound=torch.nn.Module)

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
    atomic_write(Path(path), lambda handle: torch.save(outer, handle))


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
