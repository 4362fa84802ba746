"""Shipped inference weights: a safetensors file and a JSON card per leaderboard row.

The repository's ``weights/`` folder (not the wheel: the files are data, about 20 MB) holds,
for each shipped row, ``<ENV_ID>/<kind>.safetensors`` (the tensors the row was scored with:
a run's weight average where it kept one, else its trained weights) and
``<ENV_ID>/<kind>.json`` (the *card*: the architecture, how the row was evaluated, the
accuracy it reproduces, and the run and command that trained it), where ``kind`` is
``ram``, ``cnn`` or ``self_attention``. ``weights/SHA256SUMS`` lists the sha256 of every
file (``sha256sum -c SHA256SUMS`` checks them by hand) and each card repeats its tensors'
digest.

Loading executes nothing from the files: safetensors holds raw tensors and a JSON header,
the card is JSON. Every load verifies both digests first, so a file changed by a single bit
is a :class:`WeightsError` naming it, never a model that quietly scores less.

The folder is found in ``$GLIMPSE_WEIGHTS_DIR`` if set, else next to the installed packages
(``<checkout>/weights``, which a clone or an editable install has).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

__all__ = [
    "KINDS",
    "SUMS_FILE",
    "WEIGHTS_DIR_VARIABLE",
    "ShippedWeights",
    "WeightsError",
    "load_weights",
    "reproduction",
    "save_weights",
    "ship_run",
    "shipped",
    "weights_dir",
]

#: the model kinds that ship: the RAM and the two whole-image baselines
KINDS = ("ram", "cnn", "self_attention")
#: environment variable naming the weights folder (default: the checkout's ``weights/``)
WEIGHTS_DIR_VARIABLE = "GLIMPSE_WEIGHTS_DIR"
#: the folder's list of digests, in ``sha256sum`` format
SUMS_FILE = "SHA256SUMS"
#: floating-point storage types a row may ship in (loaded back as float32)
DTYPES = {"float32": torch.float32, "float16": torch.float16}


class WeightsError(ValueError):
    """Shipped weights that are missing, unknown, or do not match their digests."""


class ShippedWeights(NamedTuple):
    """One shipped row, loaded and verified."""

    tensors: dict[str, torch.Tensor]
    """The model's ``state_dict``, float32, on the CPU."""
    card: dict[str, Any]
    """The row's card (see :func:`save_weights`)."""


def weights_dir() -> Path:
    """The weights folder: ``$GLIMPSE_WEIGHTS_DIR``, else the checkout's ``weights/``."""
    configured = os.environ.get(WEIGHTS_DIR_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    return Path(__file__).resolve().parent.parent / "weights"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _row_files(root: Path, env_id: str, kind: str) -> tuple[Path, Path]:
    folder = root / env_id
    return folder / f"{kind}.safetensors", folder / f"{kind}.json"


def _read_sums(root: Path) -> dict[str, str]:
    path = root / SUMS_FILE
    if not path.is_file():
        return {}
    sums: dict[str, str] = {}
    for line in path.read_text().splitlines():
        digest, _, name = line.partition("  ")
        if name:
            sums[name] = digest
    return sums


def _write_sums(root: Path, sums: Mapping[str, str]) -> None:
    text = "".join(f"{sums[name]}  {name}\n" for name in sorted(sums))
    (root / SUMS_FILE).write_text(text)


def shipped(root: str | os.PathLike[str] | None = None) -> list[tuple[str, str]]:
    """The ``(env_id, kind)`` of every row in the weights folder, sorted."""
    base = Path(root) if root is not None else weights_dir()
    rows = []
    for name in _read_sums(base):
        env_id, _, file = name.partition("/")
        kind, dot, ext = file.partition(".")
        if dot and ext == "json" and kind in KINDS:
            rows.append((env_id, kind))
    return sorted(rows)


def save_weights(
    tensors: Mapping[str, torch.Tensor],
    card: Mapping[str, Any],
    *,
    env_id: str,
    kind: str,
    dtype: str = "float32",
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a row: its tensors as safetensors in ``dtype``, its card as JSON, and both digests.

    ``card`` holds what the row needs besides its tensors (``model_config``, ``evaluation``,
    ``accuracy``, ``source``, ...); ``env_id``, ``kind``, ``dtype`` and ``weights_sha256``
    are added. Returns the card's path.
    """
    if kind not in KINDS:
        raise WeightsError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if dtype not in DTYPES:
        raise WeightsError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    base = Path(root) if root is not None else weights_dir()
    tensor_file, card_file = _row_files(base, env_id, kind)
    tensor_file.parent.mkdir(parents=True, exist_ok=True)
    stored = {
        name: (t.detach().to(DTYPES[dtype]) if t.is_floating_point() else t.detach()).cpu().contiguous()
        for name, t in tensors.items()
    }
    blob = save_safetensors(stored)
    tensor_file.write_bytes(blob)
    text = (
        json.dumps(
            {**card, "env_id": env_id, "kind": kind, "dtype": dtype, "weights_sha256": _sha256(blob)},
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    card_file.write_text(text)
    sums = _read_sums(base)
    for file, data in ((tensor_file, blob), (card_file, text.encode())):
        sums[file.relative_to(base).as_posix()] = _sha256(data)
    _write_sums(base, sums)
    return card_file


def _verified(path: Path, expected: str | None, what: str) -> bytes:
    if expected is None:
        raise WeightsError(f"{path} is not listed in {path.parent.parent / SUMS_FILE}; {what}")
    data = path.read_bytes()
    if _sha256(data) != expected:
        raise WeightsError(
            f"{path} does not match its sha256 ({expected[:12]}...): the file is corrupted or was changed; "
            f"restore it from the repository (git checkout -- {path.name})"
        )
    return data


def load_weights(env_id: str, kind: str, *, root: str | os.PathLike[str] | None = None) -> ShippedWeights:
    """The shipped row ``(env_id, kind)``, its digests verified, its tensors as float32.

    Raises :class:`WeightsError` naming the file when a row is not shipped, a file is missing
    or a digest does not match.
    """
    base = Path(root) if root is not None else weights_dir()
    if not base.is_dir():
        raise WeightsError(
            f"no weights folder at {base}: the pretrained weights ship in the repository's weights/ "
            f"folder (not in the wheel); clone the repository or set {WEIGHTS_DIR_VARIABLE}"
        )
    rows = shipped(base)
    if (env_id, kind) not in rows:
        listed = ", ".join(f"{e} ({k})" for e, k in rows) or "none"
        raise WeightsError(f"no shipped {kind} weights for {env_id!r} in {base}; shipped: {listed}")
    tensor_file, card_file = _row_files(base, env_id, kind)
    for file in (tensor_file, card_file):
        if not file.is_file():
            raise WeightsError(f"{file} is missing; restore the weights folder from the repository")
    sums = _read_sums(base)
    note = "rewrite the row with benchmarks/ship_weights.py"
    card = json.loads(_verified(card_file, sums.get(card_file.relative_to(base).as_posix()), note))
    blob = _verified(tensor_file, sums.get(tensor_file.relative_to(base).as_posix()), note)
    if card.get("weights_sha256") != sums.get(tensor_file.relative_to(base).as_posix()):
        raise WeightsError(f"{card_file} names other tensors than {tensor_file}; {note}")
    try:
        tensors = load_safetensors(blob)
    except SafetensorError as error:
        raise WeightsError(f"{tensor_file} cannot be read as safetensors ({error})") from None
    return ShippedWeights(
        {name: t.float() if t.is_floating_point() else t for name, t in tensors.items()}, card
    )


def ship_run(
    run_dir: str | os.PathLike[str],
    *,
    results: str,
    dtype: str = "float32",
    hardware: str,
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """Ship a finished training run's best checkpoint as its row's weights; the card's path.

    Reads ``run_dir/checkpoints/best.pt`` (its inference weights: the weight average where
    the run kept one) and ``run_dir/results/test.json`` of ``python -m agents.ram_reinforce``
    or ``python -m baselines.train``. The card records the architecture, how the test was
    scored (split, canvases, evaluation seed, Monte Carlo samples and batch size for the
    RAM), the accuracy the run reported, the command that trained it, ``results`` (where its
    JSON is kept under ``results/``) and ``hardware``.
    """
    from glimpse_engine.checkpoints import (  # the run-folder layer, only here
        inference_weights,
        load_checkpoint,
    )

    run = Path(run_dir)
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    config = state["config"]
    result = json.loads((run / "results" / "test.json").read_text())
    model_config = state["model_config"]
    kind = "ram" if "glimpse_shape" in model_config else config["model"]
    evaluation: dict[str, Any] = {
        "split": "test",
        "episodes": config.get("eval_episodes"),
        "batch_size": config["eval_batch_size"],
    }
    card: dict[str, Any] = {
        "model_config": model_config,
        "params": result["params"],
        "accuracy": result["accuracy"],
        "ci95": result["ci95"],
        "val_accuracy": result["val_accuracy"],
        "best_epoch": result["best_epoch"],
        "epochs": result["epochs"],
        "train_seconds": round(result["train_seconds"], 1),
        "command": result["command"],
        "resumed_with": result.get("resumed_with", []),
        "results": results,
        "hardware": hardware,
        "shipped": date.today().isoformat(),
        "evaluation": evaluation,
    }
    if kind == "ram":
        evaluation.update(seed=config["seed"], mc_samples=config["test_mc_samples"], std=config["std"])
        card["accuracy_mc1"] = result["test_mc1"]["accuracy"]
    return save_weights(
        inference_weights(state), card, env_id=config["env"], kind=kind, dtype=dtype, root=root
    )


def reproduction(accuracy: float, card: Mapping[str, Any], *, same_protocol: bool) -> str:
    """One line saying whether ``accuracy``, scored from a shipped row, is the row's own figure.

    ``same_protocol``: whether it was scored as the row was (split, canvases, seed, samples,
    batches); otherwise the line says that the figures are not comparable.
    """
    expected = float(card["accuracy"])
    where = card.get("results", "its results")
    if not same_protocol:
        return f"the row ({where}) scores {expected:.4f} under its own evaluation settings; these differ"
    if accuracy == expected:
        return f"reproduces the leaderboard row exactly: {expected:.4f} ({where})"
    return f"DIFFERS from the leaderboard row's {expected:.4f} ({where})"
