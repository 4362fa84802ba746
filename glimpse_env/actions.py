"""The action checks: one set of rules for the single and the vector environment.

An action is a dict ``{"location": (x, y), "label": class}`` (a batch of them in the vector
environment: ``(N, 2)`` locations and ``(N,)`` labels), plus ``"stop": 0 or 1`` in an
environment with early answers (``early_answer=True``; ``(N,)`` stops in a batch).
Locations are real numbers in ``[-1, 1]`` (never clipped silently), labels integer class
indices, stops 0 or 1 (integers or bools); anything else raises a ``TypeError`` (a wrong
kind) or a ``ValueError`` (a wrong shape, a value out of range, a ``stop`` where there are
no early answers or none where there are) naming the action component and, in a batch,
the first offending sub-environment.

:func:`check_action` is the check of :meth:`GlimpseEnv.step <glimpse_env.env.GlimpseEnv.step>`
and :meth:`GlimpseVectorEnv.step <glimpse_env.vector.GlimpseVectorEnv.step>`, made of
:func:`split_action`, :func:`check_locations` and :func:`check_labels`.
:func:`check_tensor_action` is the check of :meth:`GlimpseVectorEnv.step_tensors
<glimpse_env.vector.GlimpseVectorEnv.step_tensors>`: the same rules made on the device
(one reduction, one synchronisation), which hands a bad batch to :func:`check_locations`
and :func:`check_labels` to name the offending sub-environment as :func:`check_action` does.
:func:`check_early_action` and :func:`check_tensor_stops` are their forms with early answers
(:func:`check_stops` checks the stops).
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from glimpse_env.devices import available_devices
from glimpse_env.validation import check_numbers

__all__ = [
    "ACTION_KEYS",
    "EARLY_ANSWER_KEYS",
    "check_action",
    "check_early_action",
    "check_labels",
    "check_locations",
    "check_stops",
    "check_tensor_action",
    "check_tensor_stops",
    "split_action",
]

#: The keys of an action dict.
ACTION_KEYS = frozenset({"location", "label"})
#: The keys of an action dict of an environment with early answers (``early_answer=True``).
EARLY_ANSWER_KEYS = frozenset({*ACTION_KEYS, "stop"})
#: What ``stop`` is, for the messages.
_STOP_IS = "0 or 1 (1 answers now: the step's label is judged and the episode ends)"
#: Why a ``stop`` is refused where there are no early answers, for the messages.
_NO_EARLY_ANSWERS = (
    "this environment has no early answers (early_answer=False: every episode takes its "
    "n_glimpses glimpses); make it with early_answer=True to let the agent stop, or drop 'stop'"
)


def _action_items(action: Any, *, early_answer: bool) -> tuple[Any, Any, Any]:
    """``(location, label, stop)`` of a Dict action (``stop`` None without early answers), or a
    clear ``TypeError``/``ValueError``."""
    keys = EARLY_ANSWER_KEYS if early_answer else ACTION_KEYS
    if not isinstance(action, Mapping):
        stop = ", 'stop': 0 or 1" if early_answer else ""
        raise TypeError(
            f"the action must be a dict {{'location': (x, y), 'label': class{stop}}}, "
            f"got {type(action).__name__}"
        )
    if action.keys() != keys:
        got = sorted(map(str, action.keys()))
        if not early_answer and action.keys() == EARLY_ANSWER_KEYS:
            raise ValueError(f"the action has a 'stop', but {_NO_EARLY_ANSWERS}")
        why = " (this environment has early answers, early_answer=True: 'stop' is " + _STOP_IS + ")"
        raise ValueError(
            f"the action must have exactly the keys {sorted(keys)}{why if early_answer else ''}, got {got}"
        )
    return action["location"], action["label"], action["stop"] if early_answer else None


def split_action(action: Any) -> tuple[Any, Any]:
    """``(location, label)`` of a Dict action, or a clear ``TypeError``/``ValueError``."""
    location, label, _ = _action_items(action, early_answer=False)
    return location, label


def check_locations(locations: Any, num_envs: int | None = None) -> np.ndarray:
    """``locations`` as float32 in ``[-1, 1]``, or a clear ``TypeError``/``ValueError``.

    ``num_envs=None`` checks one environment's ``(2,)`` location; an integer checks a
    batch ``(num_envs, 2)`` and names the first offending sub-environment. Locations are
    real numbers: Python ints and floats, numpy or torch integer and floating-point arrays
    (a tensor may be on any device and may require grad: its values are read, detached).
    Bools, strings, complex numbers and timedeltas raise ``TypeError``. The result may be
    ``locations`` itself (a float32 numpy array): copy it before keeping it.
    """
    array = check_numbers(
        locations, "action['location']", kinds="iuf", expected="real numbers (ints or floats)"
    )
    expected = (2,) if num_envs is None else (num_envs, 2)
    if array.shape != expected:
        raise ValueError(f"action['location'] must have shape {expected} (x, y), got shape {array.shape}")
    if num_envs is None:  # one (x, y): two Python comparisons cost less than two numpy reductions
        x, y = array.tolist()
        in_range = -1.0 <= x <= 1.0 and -1.0 <= y <= 1.0  # NaN fails every comparison
    else:
        in_range = array.min() >= -1.0 and array.max() <= 1.0
    if array.dtype.type is np.float32:
        located = array
    elif in_range:
        located = array.astype(np.float32)
    else:  # judged as float32 (1 + 1e-12 rounds to 1.0) without warning that 1e300 overflows it
        with np.errstate(over="ignore"):
            located = array.astype(np.float32)
        in_range = located.min() >= -1.0 and located.max() <= 1.0
    if not in_range:
        rows = located.reshape(-1, 2)
        bad = int(np.flatnonzero(~(np.abs(rows) <= 1.0).all(axis=1))[0])
        given = array.reshape(-1, 2)[bad].astype(np.float64)  # as given, before float32 rounding
        where = "" if num_envs is None else f" of sub-environment {bad}"
        problem = "is NaN or infinite" if not np.isfinite(given).all() else "is outside [-1, 1]"
        raise ValueError(
            f"action['location']{where} {problem}: {given.tolist()}. Locations must be finite "
            f"(x, y) in [-1, 1]; clip a sampled location before passing it (nothing is clipped here)"
        )
    return located


def check_labels(labels: Any, num_classes: int, num_envs: int | None = None) -> np.ndarray:
    """``labels`` as int64 in ``[0, num_classes)`` (shape ``()`` or ``(num_envs,)``), or a clear error.

    Labels are integers: Python ints, numpy or torch integer arrays and scalars (not bools,
    floats, strings: ``TypeError``); a wrong shape or a class out of range: ``ValueError``.
    The result is a new array.
    """
    if num_envs is None and (
        (type(labels) is int) or (isinstance(labels, np.integer) and labels.dtype.kind in "iu")
    ):  # (np.timedelta64 is an np.integer)
        if not 0 <= labels < num_classes:
            raise ValueError(
                f"action['label'] is {int(labels)}, outside the {num_classes} classes 0..{num_classes - 1}"
            )
        return np.array(labels, dtype=np.int64)  # the usual single-environment label, checked at once
    what = "an integer" if num_envs is None else f"{num_envs} integers, shape ({num_envs},)"
    array = check_numbers(labels, "action['label']", kinds="iu", expected=f"{what} (a class index)")
    expected = () if num_envs is None else (num_envs,)
    if array.shape != expected:
        raise ValueError(
            f"action['label'] must be {what} (a class index), got shape {array.shape}: {reprlib.repr(labels)}"
        )
    flat = array.reshape(-1)
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        bad = np.flatnonzero((flat < 0) | (flat >= num_classes))
        where = "" if num_envs is None else f" of sub-environment {int(bad[0])}"
        raise ValueError(
            f"action['label']{where} is {int(flat[bad[0]])}, outside the {num_classes} classes "
            f"0..{num_classes - 1}"
        )
    return array.astype(np.int64)


def check_stops(stops: Any, num_envs: int | None = None) -> np.ndarray:
    """``stops`` as bool (shape ``()`` or ``(num_envs,)``), or a clear error: 0 or 1 each.

    Stops are integers (Python, numpy or torch, of any integer dtype) or bools; anything
    else (floats, strings) raises ``TypeError``, a wrong shape or a value other than 0 and 1
    ``ValueError`` naming, in a batch, the first offending sub-environment. The result is a
    new array.
    """
    if num_envs is None and type(stops) in (int, bool) and stops in (0, 1):
        return np.array(bool(stops))  # the usual single-environment stop, checked at once
    what = "0 or 1" if num_envs is None else f"{num_envs} values, shape ({num_envs},), each 0 or 1"
    expected = f"{what}: integers or bools ({_STOP_IS})"
    if isinstance(stops, (list, tuple)):  # bools and integers mix freely in a stop
        try:
            stops = np.asarray(stops)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"action['stop'] must be {expected}, got {reprlib.repr(stops)} ({exc})") from None
    array = check_numbers(stops, "action['stop']", kinds="iub", expected=expected)
    shape = () if num_envs is None else (num_envs,)
    if array.shape != shape:
        raise ValueError(f"action['stop'] must be {expected}, got shape {array.shape}: {reprlib.repr(stops)}")
    flat = array.reshape(-1)
    if array.dtype != np.bool_ and flat.size and (flat.min() < 0 or flat.max() > 1):
        bad = int(np.flatnonzero((flat < 0) | (flat > 1))[0])
        where = "" if num_envs is None else f" of sub-environment {bad}"
        raise ValueError(f"action['stop']{where} is {int(flat[bad])}; a stop is {_STOP_IS}")
    return array.astype(np.bool_)


def check_action(action: Any, num_classes: int, num_envs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """An action dict checked: ``(location, label)``, a float32 location the caller owns (a
    copy, never the caller's array) and an int64 label, or a clear ``TypeError``/``ValueError``.

    ``num_envs=None`` checks one environment's action (``(2,)`` and ``()``); an integer
    checks a batch (``(num_envs, 2)`` and ``(num_envs,)``) and names the first offending
    sub-environment. The dict is checked first (:func:`split_action`), then the location
    (:func:`check_locations`), then the label (:func:`check_labels`).
    """
    raw_location, raw_label = split_action(action)
    location = check_locations(raw_location, num_envs).copy()
    label = check_labels(raw_label, num_classes, num_envs)  # a new array
    return location, label


def check_early_action(
    action: Any, num_classes: int, num_envs: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`check_action` of an environment with early answers: ``(location, label, stop)``,
    the action dict holding ``"stop"`` too (checked last, by :func:`check_stops`: a bool
    array of shape ``()`` or ``(num_envs,)``)."""
    raw_location, raw_label, raw_stop = _action_items(action, early_answer=True)
    location = check_locations(raw_location, num_envs).copy()
    label = check_labels(raw_label, num_classes, num_envs)
    return location, label, check_stops(raw_stop, num_envs)


def check_tensor_stops(stop: Any, *, early_answer: bool, num_envs: int) -> np.ndarray | None:
    """The ``stop`` of :meth:`GlimpseVectorEnv.step_tensors
    <glimpse_env.vector.GlimpseVectorEnv.step_tensors>` checked: ``None`` without early
    answers (where a ``stop`` is a ``ValueError``), else a ``(num_envs,)`` torch tensor of
    bools or integers 0 and 1 on any device, read to the host (one copy: the episodes'
    bookkeeping is there) as a bool array, or a clear error."""
    if not early_answer:
        if stop is not None:
            raise ValueError(f"step_tensors got a stop, but {_NO_EARLY_ANSWERS}")
        return None
    if stop is None:
        raise ValueError(
            f"this environment has early answers (early_answer=True): pass step_tensors(location, label, "
            f"stop) with stop a ({num_envs},) tensor, each {_STOP_IS}"
        )
    if not isinstance(stop, torch.Tensor):
        raise TypeError(
            f"step_tensors takes torch tensors, got stop {type(stop).__name__}; use step() for numpy actions"
        )
    if stop.is_floating_point() or stop.is_complex():
        raise TypeError(f"stop must be a bool or integer tensor ({_STOP_IS}), got {stop.dtype}")
    return check_stops(stop, num_envs)


def check_tensor_action(
    location: Any, label: Any, *, num_classes: int, num_envs: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of tensor actions checked: ``(location, label)`` as float32 and int64 tensors
    on ``device`` (the location a copy the caller owns), or a clear error naming the first
    bad one.

    ``location`` ``(num_envs, 2)`` and ``label`` ``(num_envs,)`` are torch tensors on any
    device with memory (copied to ``device``); a location that requires grad is read
    detached. The kinds and shapes are checked on the tensors' metadata, the values by one
    reduction of each on ``device`` and one synchronisation; a batch out of range goes to
    :func:`check_locations` and :func:`check_labels`, which name the first offending
    sub-environment as :func:`check_action` does.
    """
    n = num_envs
    if not isinstance(location, torch.Tensor) or not isinstance(label, torch.Tensor):
        raise TypeError(
            f"step_tensors takes torch tensors, got location {type(location).__name__} and label "
            f"{type(label).__name__}; use step() for numpy actions"
        )
    for name, tensor in (("location", location), ("label", label)):
        if tensor.is_meta:
            raise ValueError(
                f"{name} is on the device 'meta', which holds no values; pass tensors on "
                f"{device} (tensors on the other available devices are copied there; "
                f"available: {', '.join(available_devices())})"
            )
    if location.dtype == torch.bool or location.is_complex():
        raise TypeError(f"location must hold real numbers (ints or floats), got {location.dtype}")
    if label.dtype == torch.bool or label.is_floating_point() or label.is_complex():
        raise TypeError(f"label must be an integer tensor (class indices), got {label.dtype}")
    if location.shape != (n, 2):
        raise ValueError(f"location must have shape ({n}, 2), got {tuple(location.shape)}")
    if label.shape != (n,):
        raise ValueError(f"label must have shape ({n},), got {tuple(label.shape)}")
    if location.dtype == torch.float32 and location.device == device:
        checked_location = location.detach().clone()
    else:
        checked_location = location.detach().to(device=device, dtype=torch.float32, copy=True)
    checked_label = label
    if label.dtype != torch.int64 or label.device != device:
        checked_label = label.to(device=device, dtype=torch.int64)
    # one reduction each: the smallest and largest coordinate (both NaN if any is NaN,
    # which fails the comparisons) and the smallest and largest label
    nearest, farthest = torch.aminmax(checked_location)
    low, high = torch.aminmax(checked_label)
    k = num_classes
    if device.type == "cpu":  # four reads of host memory
        valid = float(nearest) >= -1.0 and float(farthest) <= 1.0 and int(low) >= 0 and int(high) < k
    else:  # one synchronisation
        valid = bool((nearest >= -1.0) & (farthest <= 1.0) & (low >= 0) & (high < k))
    if not valid:
        # name the first offending sub-environment with the host-side checks
        check_locations(location, n)
        check_labels(label, num_classes, n)
    return checked_location, checked_label
