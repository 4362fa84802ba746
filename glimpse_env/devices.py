"""Where the work runs: the torch devices of this machine, and CPU work on the calling thread.

Devices
-------
:func:`available_devices` lists the devices an environment can run on here, and
:func:`check_device` turns a ``device`` argument (of an environment or a program) into a
``torch.device`` of this machine, or a clear error naming the devices it has.

Threads
-------
On CPU tensors, every torch operation of the retina covers at most :data:`SERIAL_ELEMENTS`
elements: a batch is worked through in blocks of rows that small (:func:`row_blocks`; the
few whole-batch steps, filling a table and working out edges, are numpy's, which uses one
thread). Torch runs an operation that small on the calling thread; a larger one is split
across its intra-op threads, and when other processes hold the other cores (an RL
trainer's machine), every split waits for a descheduled thread: milliseconds against
microseconds of work (the autoreset step of a 256-env vector env took 30 ms instead of
0.3 ms). Blocks keep the work on the caller's thread whatever the load, without touching
torch's thread settings, and give the same bits as one operation over the batch. Numpy
arrays and tensors on other devices are worked on in one piece.
"""

from __future__ import annotations

import reprlib
from typing import Union

import numpy as np
import torch

__all__ = ["SERIAL_ELEMENTS", "Array", "available_devices", "check_device", "row_blocks"]

#: An array of either kind: a torch tensor (on any device) or a numpy array (on the host).
Array = Union[torch.Tensor, np.ndarray]  # noqa: UP007 - a runtime alias, py3.10 compatible

#: Most elements of one torch operation on CPU tensors (see "Threads"): torch's grain size
#: (``at::internal::GRAIN_SIZE``), at or below which an operation runs on the calling thread
#: alone.
SERIAL_ELEMENTS = 32768


def available_devices() -> list[str]:
    """The torch devices this machine can run the environment on: ``"cpu"``, then every
    CUDA GPU (``"cuda:0"``, ...), ``"mps"`` and XPUs when present."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        devices += [f"xpu:{i}" for i in range(xpu.device_count())]
    return devices


def check_device(device: object, name: str = "device") -> torch.device:
    """``device`` as a ``torch.device`` of this machine (a bare ``"cuda"`` names the current
    GPU), or a clear error naming the device and :func:`available_devices`."""
    if isinstance(device, bool) or not isinstance(device, (str, torch.device, int)):
        raise TypeError(
            f"{name} must be a torch.device or a device name such as 'cpu' or 'cuda:0', got "
            f"{reprlib.repr(device)} of type {type(device).__name__}"
        )
    available = available_devices()
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"{name}={device!r} is not a torch device name; available here: {', '.join(available)}"
        ) from None
    if parsed.type == "cpu":
        return torch.device("cpu")
    xpu = getattr(torch, "xpu", None)
    for kind, backend in (("cuda", torch.cuda), ("xpu", xpu)):
        if parsed.type == kind and backend is not None and backend.is_available():
            index = backend.current_device() if parsed.index is None else parsed.index
            if 0 <= index < backend.device_count():
                return torch.device(kind, index)
    if parsed.type == "mps" and torch.backends.mps.is_available() and parsed.index in (None, 0):
        return torch.device("mps")
    if parsed.type == "meta":
        why = "'meta' tensors hold no values; the environment needs a device with memory"
    elif parsed.type == "cuda" and torch.version.cuda is None:
        why = f"this torch {torch.__version__} is built without CUDA"
    elif parsed.type == "cuda" and not torch.cuda.is_available():
        why = "no CUDA GPU is visible to torch"
    else:
        why = f"this machine has no such {parsed.type} device"
    raise ValueError(f"{name}={device!r} is not available here ({why}); available: {', '.join(available)}")


def row_blocks(rows: int, per_row: int, like: Array) -> tuple[slice, ...] | None:
    """Blocks of rows to work through one at a time, or ``None`` for the whole batch at once.

    ``per_row`` is the most elements a row puts in one operation. CPU tensors come in
    blocks of at most :data:`SERIAL_ELEMENTS` elements (even sizes; a single row may be
    larger), numpy arrays and tensors on other devices in one piece (see "Threads").
    """
    if rows * per_row <= SERIAL_ELEMENTS or not (isinstance(like, torch.Tensor) and like.is_cpu):
        return None
    count = -(-rows // max(1, SERIAL_ELEMENTS // per_row))
    size = -(-rows // count)
    return tuple(slice(start, min(start + size, rows)) for start in range(0, rows, size))
