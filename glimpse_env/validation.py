"""The package's checks of scalar arguments: one definition of "an integer" and "a real number".

Integers are Python ints and numpy or torch integer scalars (a 0-d integer tensor);
bools, floats (even ``3.0``), strings and anything else are not, so a setting is never
truncated or parsed. Real numbers are integers and floating-point scalars of the same
kinds (no bools, strings or complex numbers).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["check_int", "is_integer", "is_real"]


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
