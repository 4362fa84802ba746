"""``--dataset MODULE:NAME``: both trainers train on your own images (here tinted real MNIST
digits, RGB), record the spec, and the scoring programs re-score a checkpoint on them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agents import evaluate as ram_evaluate
from agents import ram_reinforce
from baselines import evaluate as baseline_evaluate
from baselines import train
from glimpse_engine.datasets import load_dataset

#: a module of the user's: an ImageDataset factory over 1,200 tinted training and 300 test digits
FACTORY = """
import numpy as np
from glimpse_env import ImageDataset
from glimpse_env.data import load_split


def tinted(split, count, seed):
    data = load_split("mnist", split)
    images = data.images[:count].numpy()
    colours = np.random.default_rng(seed).uniform(0.3, 1.0, size=(count, 1, 1, 3))
    return (images[..., None] * colours).astype(np.uint8), data.labels[:count].numpy()


def digits():
    return ImageDataset(train=tinted("train", 1200, 0), test=tinted("test", 300, 1), name="tinted")


not_images = 3
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    folder = tmp_path / "userpkg"
    folder.mkdir()
    (folder / "tinted_digits.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "userpkg.tinted_digits"
    sys.modules.pop("userpkg.tinted_digits", None)
    sys.modules.pop("userpkg", None)


def test_the_ram_trains_and_rescores_on_your_own_rgb_images(user_module: str, tmp_path: Path) -> None:
    run = tmp_path / "ram"
    flags = ["--env", "GlimpseMNIST-Cluttered-v0", "--dataset", f"{user_module}:digits"]
    flags += ["--epochs", "1", "--episodes-per-epoch", "256", "--batch-size", "64", "--test-mc-samples", "2"]
    results = ram_reinforce.main([*flags, "--run-dir", str(run), "--no-progress", "--image-every", "1"])
    assert results["test_mc2"]["n"] == 300  # the dataset's own test split, not MNIST's 10,000
    assert json.loads((run / "config.json").read_text())["dataset"] == f"{user_module}:digits"
    again = ram_evaluate.main(["--checkpoint", str(run / "checkpoints" / "best.pt"), "--mc-samples", "2"])
    assert (again.n, again.accuracy) == (300, results["accuracy"])


def test_a_baseline_trains_and_rescores_on_your_own_rgb_images(user_module: str, tmp_path: Path) -> None:
    run = tmp_path / "cnn"
    flags = ["--env", "GlimpseMNIST-Cluttered-v0", "--dataset", f"{user_module}:digits", "--epochs", "1"]
    results = train.main([*flags, "--images-per-epoch", "256", "--run-dir", str(run), "--no-progress"])
    assert results["n"] == 300
    assert json.loads((run / "checkpoints" / "../config.json").read_text())["dataset"].endswith(":digits")
    again = baseline_evaluate.main(["--checkpoint", str(run / "checkpoints" / "best.pt")])
    assert (again.n, again.accuracy) == (300, results["accuracy"])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "is not MODULE:NAME"),
        ("no_such_module_here:x", "cannot be imported"),
        ("{module}:missing", "has no 'missing'"),
        ("{module}:not_images", "gives a int, not a glimpse_env.ImageDataset"),
    ],
)
def test_a_bad_dataset_spec_is_one_clear_line(user_module: str, spec: str, message: str) -> None:
    with pytest.raises(ValueError, match="--dataset") as refused:
        load_dataset(spec.format(module=user_module))
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_bad_dataset_spec_writes_no_run(user_module: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be imported"):
        ram_reinforce.main(["--dataset", "no_such_module_here:x", "--run-dir", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()
