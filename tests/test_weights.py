"""Shipped weights: safetensors plus a JSON card, digests verified on every load."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch

from glimpse_engine.weights import SUMS_FILE, WeightsError, load_weights, save_weights, shipped, weights_dir

ROOT = Path(__file__).resolve().parents[1]


def _tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "layer.weight": torch.randn(16, 8, generator=generator),
        "layer.bias": torch.randn(16, generator=generator),
        "steps": torch.tensor(7),
    }


def test_a_row_round_trips_and_lists_its_digests(tmp_path: Path) -> None:
    tensors = _tensors()
    card = save_weights(tensors, {"accuracy": 0.5}, env_id="GlimpseMNIST-v0", kind="ram", root=tmp_path)
    loaded, meta = load_weights("GlimpseMNIST-v0", "ram", root=tmp_path)
    assert loaded.keys() == tensors.keys()
    for name, tensor in tensors.items():
        assert torch.equal(loaded[name], tensor)
    assert meta["accuracy"] == 0.5 and meta["kind"] == "ram" and meta["env_id"] == "GlimpseMNIST-v0"
    assert json.loads(card.read_text())["weights_sha256"] == meta["weights_sha256"]
    listed = (tmp_path / SUMS_FILE).read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in listed) == [
        "GlimpseMNIST-v0/ram.json",
        "GlimpseMNIST-v0/ram.safetensors",
    ]
    assert shipped(tmp_path) == [("GlimpseMNIST-v0", "ram")]


def test_float16_storage_loads_back_as_float32(tmp_path: Path) -> None:
    tensors = _tensors()
    save_weights(tensors, {}, env_id="GlimpseMNIST-v0", kind="cnn", dtype="float16", root=tmp_path)
    loaded, _ = load_weights("GlimpseMNIST-v0", "cnn", root=tmp_path)
    assert loaded["layer.weight"].dtype == torch.float32
    assert torch.equal(loaded["layer.weight"], tensors["layer.weight"].half().float())
    assert torch.equal(loaded["steps"], tensors["steps"])


@pytest.mark.parametrize("suffix", [".safetensors", ".json"])
def test_a_flipped_bit_is_an_error_naming_the_file(tmp_path: Path, suffix: str) -> None:
    save_weights(_tensors(), {"accuracy": 0.5}, env_id="GlimpseMNIST-v0", kind="ram", root=tmp_path)
    path = tmp_path / "GlimpseMNIST-v0" / f"ram{suffix}"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=rf"ram\{suffix} does not match its sha256"):
        load_weights("GlimpseMNIST-v0", "ram", root=tmp_path)


def test_missing_rows_and_folders_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WeightsError, match="no weights folder"):
        load_weights("GlimpseMNIST-v0", "ram", root=tmp_path / "nowhere")
    save_weights(_tensors(), {}, env_id="GlimpseMNIST-v0", kind="ram", root=tmp_path)
    with pytest.raises(
        WeightsError, match=r"no shipped ram weights for 'GlimpseMNIST-Fashion-v0'.*v0 \(ram\)"
    ):
        load_weights("GlimpseMNIST-Fashion-v0", "ram", root=tmp_path)
    (tmp_path / "GlimpseMNIST-v0" / "ram.safetensors").unlink()
    with pytest.raises(WeightsError, match=r"ram\.safetensors is missing"):
        load_weights("GlimpseMNIST-v0", "ram", root=tmp_path)
    with pytest.raises(WeightsError, match="kind must be one of"):
        save_weights(_tensors(), {}, env_id="GlimpseMNIST-v0", kind="resnet", root=tmp_path)
    monkeypatch.setenv("GLIMPSE_WEIGHTS_DIR", str(tmp_path))
    assert weights_dir() == tmp_path


def only_continues(line: str) -> bool:
    """Whether a recorded ``--resume`` line only continues its run: ``--resume DIR`` and the
    progress bar, nothing that could change what is trained (a killed run resumed so gives
    the uninterrupted run's weights: tests/test_checkpoints.py)."""
    words = shlex.split(line)[3:]
    if words[:1] != ["--resume"] or len(words) < 2:
        return False
    return all(word in ("--progress", "--no-progress") for word in words[2:])


def test_only_continues_tells_a_plain_resume_from_one_that_changes_settings() -> None:
    assert only_continues("python -m agents.ram_reinforce --resume runs/x --no-progress")
    assert not only_continues("python -m agents.ram_reinforce --resume runs/x --epochs 400")
    assert not only_continues("python -m agents.ram_reinforce --epochs 3")


def test_the_shipped_folder_is_consistent() -> None:
    """Every shipped row loads with its digests verified, has a bounded single command and
    repeats the accuracy of the results file it names."""
    rows = shipped(ROOT / "weights")
    assert rows, "the repository ships weights"
    total = sum(f.stat().st_size for f in (ROOT / "weights").rglob("*") if f.is_file())
    assert total <= 25 * 2**20
    for env_id, kind in rows:
        _, card = load_weights(env_id, kind, root=ROOT / "weights")
        assert "--time-limit" not in card["command"] and "--resume" not in card["command"]
        for line in card["resumed_with"]:  # a kill, then a plain --resume: the uninterrupted run
            assert only_continues(line), f"{env_id} {kind}: {line!r} changes the run's settings"
        result = json.loads((ROOT / card["results"] / "test.json").read_text())
        assert result["accuracy"] == card["accuracy"]
        assert result["command"] == card["command"]


def test_a_shipped_ram_reproduces_its_run_from_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Train a tiny RAM, ship it, and score it through the three documented commands: each
    gives the run's own test figure to the last digit (same seed, samples and batches)."""
    from agents import evaluate, ram_reinforce, visualize
    from agents.shipped import pretrained
    from glimpse_engine.weights import ship_run
    from glimpse_env import evaluate as protocol

    run = tmp_path / "run"
    tiny = ["--episodes-per-epoch", "256", "--batch-size", "64", "--eval-episodes", "300", "--epochs", "1"]
    result = ram_reinforce.main(
        ["--run-dir", str(run), *tiny, "--test-mc-samples", "3", "--image-every", "0", "--no-progress"]
    )
    root = tmp_path / "weights"
    ship_run(run, results="results/ram/tiny", hardware="test", root=root)
    monkeypatch.setenv("GLIMPSE_WEIGHTS_DIR", str(root))
    env_id = result["env_id"]

    shipped = pretrained(env_id)
    assert not shipped.model.training and shipped.mc_samples == 3 and shipped.seed == 1
    scored = evaluate.main(["--pretrained", env_id])
    assert scored.accuracy == result["accuracy"] and scored.n == 300
    assert (
        evaluate.main(["--pretrained", env_id, "--mc-samples", "1"]).accuracy
        == result["test_mc1"]["accuracy"]
    )
    again = protocol.main(["--env", env_id, "--policy", "ram:pretrained", "--episodes", "300"])
    assert again.accuracy == result["accuracy"]
    png = visualize.main(["--pretrained", env_id, "--out", str(tmp_path / "g.png"), "--count", "2"])
    assert png.is_file()
    with pytest.raises(SystemExit, match="either --checkpoint"):
        evaluate.main(["--pretrained", env_id, "--checkpoint", str(run / "checkpoints" / "best.pt")])
    with pytest.raises(WeightsError, match="no shipped ram weights for 'GlimpseMNIST-v0'"):
        evaluate.main(["--pretrained", "GlimpseMNIST-v0"])


def test_a_shipped_baseline_reproduces_its_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from baselines import evaluate, train
    from baselines.shipped import pretrained
    from glimpse_engine.weights import ship_run

    run = tmp_path / "run"
    tiny = ["--images-per-epoch", "512", "--batch-size", "64", "--image-every", "0", "--no-progress"]
    result = train.main(
        ["--run-dir", str(run), "--env", "GlimpseMNIST-Fashion-v0", "--model", "cnn", "--epochs", "1", *tiny]
    )
    root = tmp_path / "weights"
    ship_run(run, results="results/baselines/tiny", hardware="test", dtype="float16", root=root)
    monkeypatch.setenv("GLIMPSE_WEIGHTS_DIR", str(root))
    assert not pretrained("GlimpseMNIST-Fashion-v0", model="cnn").model.training
    scored = evaluate.main(["--pretrained", "GlimpseMNIST-Fashion-v0", "--model", "cnn", "--split", "test"])
    assert abs(scored.accuracy - result["accuracy"]) <= 0.002  # float16 storage: within a few canvases
    with pytest.raises(SystemExit, match=r"--model cnn\|self_attention goes with --pretrained"):
        evaluate.main(["--pretrained", "GlimpseMNIST-Fashion-v0"])


@pytest.mark.slow
@pytest.mark.parametrize("row", shipped(ROOT / "weights"), ids=lambda row: f"{row[0]}-{row[1]}")
def test_every_shipped_row_scores_its_leaderboard_accuracy(row: tuple[str, str]) -> None:
    """What a stranger runs on a fresh clone: each shipped row, scored by its documented
    command with the row's own settings, gives the leaderboard's accuracy to the last digit."""
    from agents import evaluate as ram_evaluate
    from baselines import evaluate as baseline_evaluate

    env_id, kind = row
    _, card = load_weights(env_id, kind, root=ROOT / "weights")
    if kind == "ram":
        result = ram_evaluate.main(["--pretrained", env_id])
    else:
        result = baseline_evaluate.main(["--pretrained", env_id, "--model", kind])
    assert result.n == 10_000
    assert result.accuracy == card["accuracy"]
