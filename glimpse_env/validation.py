"""The package's checks of arguments: one definition of "an integer" and "a real number".

Integers are Python ints and numpy or torch integer scalars (a 0-d integer tensor);
bools, floats (even ``3.0``), strings and anything else are not, so a setting is never
truncated or parsed. Real numbers are integers and floating-point scalars of the same
kinds (no bools, strings or complex numbers). :func:`check_numbers` holds arrays, tensors
and nested lists to the same kinds; :func:`check_seed` and :func:`check_render_mode` are
the checks of both environments' ``seed`` and ``render_mode``.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "check_int",
    "check_numbers",
    "check_render_mode",
    "check_seed",
    "describe_int",
    "is_integer",
    "is_real",
]


def is_integer(value: object) -> bool:
    """Whether ``value`` is an integer scalar (Python, numpy or 0-d torch), not a bool."""
    if isinstance(value, (bool, np.bool_, np.timedelta64)):  # numpy counts timedelta64 as an integer
        return False
    if isinstance(value, (int, np.integer)):
        return True
    if isinstance(value, torch.Tensor):
        kind_ok = not (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool)
        return value.ndim == 0 and kind_ok
    return False


def is_real(value: object) -> bool:
    """Whether ``value`` is a real scalar: an integer (:func:`is_integer`) or a float, not a bool."""
    if is_integer(value) or isinstance(value, (float, np.floating)):
        return True
    return isinstance(value, torch.Tensor) and value.ndim == 0 and value.is_floating_point()


def check_int(
    value: object, name: str, *, low: int | None = None, high: int | None = None, why: str = ""
) -> int:
    """``value`` as a Python ``int`` in ``[low, high]``, or a clear error naming ``name``.

    Raises:
        TypeError: ``value`` is not an integer (:func:`is_integer`).
        ValueError: it is below ``low`` or above ``high``; ``why`` (e.g. ``" (the
            canvas limit)"``) is appended to the explanation of ``high``.
    """
    if low is not None and high is not None:
        expected = f"an integer in [{low}, {high}]"
    elif low is not None:
        expected = f"an integer >= {low}"
    elif high is not None:
        expected = f"an integer <= {high}"
    else:
        expected = "an integer"
    if not is_integer(value):
        raise TypeError(f"{name} must be {expected}, got {value!r} of type {type(value).__name__}")
    number = int(value)  # type: ignore[call-overload]
    if low is not None and number < low:
        raise ValueError(f"{name} must be {expected}, got {number}")
    if high is not None and number > high:
        raise ValueError(f"{name} must be {expected}{why}, got {number}")
    return number


def describe_int(value: int) -> str:
    """An integer for a message: its digits, or its size in bits when it is too long to print
    (Python refuses to print integers of more than 4300 digits)."""
    if value.bit_length() <= 128:
        return str(value)
    return f"{'-' if value < 0 else ''}(an integer of {value.bit_length()} bits)"


def check_seed(seed: object) -> int | None:
    """``seed`` of ``reset(seed=...)`` as a Python ``int`` (``None`` stays ``None``), or a clear error.

    The one check of both environments: a seed is ``None`` or an integer >= 0 (a Python int
    of any size, or a numpy or torch integer; Gymnasium's and numpy's seeds), never a bool,
    a float or a string (``TypeError``); a negative integer raises ``ValueError``. The value
    is unchanged: ``reset(seed=np.int64(3))`` equals ``reset(seed=3)``.
    """
    if seed is None:
        return None
    expected = "seed must be one integer >= 0 (or None)"
    if not is_integer(seed):
        raise TypeError(f"{expected}, got {reprlib.repr(seed)} of type {type(seed).__name__}")
    value = int(seed)  # type: ignore[call-overload]
    if value < 0:
        raise ValueError(f"{expected}, got {describe_int(value)}")
    return value


def check_render_mode(render_mode: object, supported: Sequence[str]) -> str | None:
    """``render_mode``: ``None`` or one of ``supported`` (the environment's
    ``metadata["render_modes"]``), else a ``TypeError`` (not a string) or a ``ValueError``
    naming the supported ones."""
    if render_mode is None:
        return None
    expected = f"render_mode must be None or one of {list(supported)}"
    if not isinstance(render_mode, str):
        raise TypeError(f"{expected}, got {reprlib.repr(render_mode)} of type {type(render_mode).__name__}")
    if render_mode not in supported:
        raise ValueError(
            f"{expected}, got {render_mode!r}; for a window ('human') or a list of frames "
            f"('rgb_array_list'), wrap an 'rgb_array' environment in gymnasium.wrappers.HumanRendering "
            f"(needs pygame) or RenderCollection"
        )
    return render_mode


#: numpy dtype kinds of what numpy would make of a bad value (an action component, ...), for the messages
_KIND_NAMES = {
    "b": "bools",
    "c": "complex numbers",
    "m": "timedelta64 values",
    "M": "datetime64 values",
    "U": "strings",
    "S": "bytes",
    "O": "Python objects",
    "V": "raw bytes",
}
#: torch floating dtypes that have no numpy equivalent (converted to float32 for the checks)
_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


def _holds_bool(value: Any) -> bool:
    """Whether a (nested) list or tuple holds a bool, which numpy would silently turn into a number."""
    if isinstance(value, (list, tuple)):
        return any(_holds_bool(item) for item in value)
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype == np.bool_
    if isinstance(value, torch.Tensor):
        return value.dtype == torch.bool
    return False


def _tensor_values(tensor: torch.Tensor, name: str) -> np.ndarray:
    """A tensor's values as a host numpy array: detached (an action is data), on the CPU."""
    if tensor.device.type == "meta":
        raise ValueError(
            f"{name} is a tensor on the 'meta' device, which holds no values; pass a tensor on a "
            f"real device (e.g. 'cpu')"
        )
    values = tensor.detach()
    if values.is_floating_point() and values.dtype not in _NUMPY_FLOATS:
        values = values.to(torch.float32)  # bfloat16, float8: no numpy dtype
    return values.cpu().numpy()


def check_numbers(value: Any, name: str, *, kinds: str, expected: str) -> np.ndarray:
    """``value`` (array, tensor on any device, nested list, scalar) as a numpy array whose
    dtype kind is one of ``kinds`` (numpy's: ``"i"`` signed, ``"u"`` unsigned integers,
    ``"f"`` floats), or a ``TypeError`` naming ``name`` and ``expected``. A list or tuple
    holding a bool is rejected too (numpy would read it as 0 or 1). The checks of actions
    (:mod:`glimpse_env.actions`), reset indices and the adapters' actions
    (:mod:`glimpse_env.wrappers`)."""
    if type(value) is np.ndarray:  # the hot path: nothing to convert, nothing can hide a bool
        array = value
    elif isinstance(value, torch.Tensor):
        array = _tensor_values(value, name)
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name} must be {expected}, got {reprlib.repr(value)} ({exc})") from None
        if isinstance(value, (list, tuple)) and array.dtype.kind in kinds and _holds_bool(value):
            raise TypeError(
                f"{name} must be {expected}, got {reprlib.repr(value)}, which holds a bool "
                f"(numpy would read it as {int(True)} or {int(False)})"
            )
    kind = array.dtype.kind
    if kind not in kinds:
        what = _KIND_NAMES.get(kind, f"dtype {array.dtype}")
        raise TypeError(f"{name} must be {expected}, got {what}: {reprlib.repr(value)}")
    return array
