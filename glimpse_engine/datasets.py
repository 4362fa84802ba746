"""``--dataset MODULE:NAME``: the trainers and scoring programs on your own images.

A run on an :class:`glimpse_env.ImageDataset` names it by where it lives, as
``--dataset mypkg.mydata:digits``: ``mypkg.mydata`` is imported and ``digits`` is either an
``ImageDataset`` or a function of no arguments that returns one (so the images are read
when the run starts, not at import). The spec is what ``config.json`` and the checkpoints
record, so ``agents.evaluate``, ``baselines.evaluate`` and the picture programs score a
checkpoint on the images it was trained on, and a ``--resume`` finds them again.
"""

from __future__ import annotations

import importlib
from typing import Any

from glimpse_env import ImageDataset

__all__ = ["dataset_kwargs", "load_dataset"]


def load_dataset(spec: str) -> ImageDataset:
    """The :class:`~glimpse_env.ImageDataset` named by ``spec`` (``MODULE:NAME``), or a
    one-line ``ValueError`` saying what is wrong with it."""
    module_name, colon, name = spec.partition(":")
    if not colon or not module_name or not name:
        raise ValueError(
            f"--dataset {spec!r} is not MODULE:NAME; give e.g. --dataset mypkg.mydata:digits, where "
            f"mypkg.mydata defines digits, an ImageDataset or a function returning one"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"--dataset {spec!r}: module {module_name!r} cannot be imported ({error}); check the name and "
            f"that its folder is on the Python path"
        ) from None
    try:
        found: Any = getattr(module, name)
    except AttributeError:
        raise ValueError(f"--dataset {spec!r}: module {module_name!r} has no {name!r}") from None
    dataset = found() if callable(found) and not isinstance(found, ImageDataset) else found
    if not isinstance(dataset, ImageDataset):
        raise ValueError(
            f"--dataset {spec!r} gives a {type(dataset).__name__}, not a glimpse_env.ImageDataset; "
            f"build one with ImageDataset(train=(images, labels), test=(images, labels))"
        )
    return dataset


def dataset_kwargs(spec: str | None) -> dict[str, Any]:
    """The environment settings of a run's ``--dataset`` (``{}`` without one: the id's own images)."""
    return {} if spec is None else {"dataset": load_dataset(spec)}
