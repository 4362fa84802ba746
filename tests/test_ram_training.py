"""The RAM training script, its evaluation and pictures, end to end on the real data (tiny budgets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from agents import evaluate, ram_reinforce, visualize
from agents.losses import ram_loss
from agents.ram_reinforce import TrainingDiverged
from agents.rollout import make_vector_env, play_episodes
from glimpse_engine.averaging import AVERAGE_KEY
from glimpse_engine.checkpoints import inference_weights, load_checkpoint, save_checkpoint
from glimpse_engine.errors import CheckpointError, RunFolderError

TINY = [
    "--episodes-per-epoch",
    "256",
    "--batch-size",
    "64",
    "--eval-batch-size",
    "1000",
    "--image-every",
    "0",
]
TINY += ["--test-mc-samples", "2", "--no-progress", "--threads", "1"]


def run(tmp_path: Path, *extra: str, name: str = "run") -> dict:
    return ram_reinforce.main(["--run-dir", str(tmp_path / name), *TINY, *extra])


def test_rollout_plays_whole_episodes_through_the_env_api() -> None:
    from agents.ram import ModelConfig, RecurrentAttentionModel

    envs = make_vector_env("GlimpseMNIST-Cluttered-v0", 16, split="test")
    model = RecurrentAttentionModel(ModelConfig((3, 12, 12), 10))
    rollout = play_episodes(model, envs, std=0.1, options={"indices": list(range(16))})
    t = envs.config.n_glimpses
    assert rollout.logits.shape == (16, 10)
    assert rollout.log_probs.shape == rollout.baselines.shape == (16, t - 1)  # no terminal location
    assert rollout.locations.shape == (16, t, 2)
    assert bool((rollout.locations[:, 0] == 0).all())  # the first glimpse is at the centre
    assert bool((rollout.locations.abs() <= 1).all())
    # the labels are the ones the environment reveals, the reward its judgement of the argmax
    from glimpse_env.data import load_split

    truth = torch.as_tensor(load_split("mnist", "test").labels[:16]).long()
    assert torch.equal(rollout.labels, truth)
    assert torch.equal(rollout.reward, (rollout.logits.argmax(1) == truth).float())


def test_short_training_on_mnist_beats_chance_by_far(tmp_path: Path) -> None:
    results = ram_reinforce.main(
        [
            "--env",
            "GlimpseMNIST-v0",
            "--run-dir",
            str(tmp_path / "learn"),
            "--epochs",
            "2",
            "--episodes-per-epoch",
            "6400",
            "--batch-size",
            "64",
            "--learning-rate",
            "1e-3",
            "--image-every",
            "1",
            "--test-mc-samples",
            "3",
            "--eval-episodes",
            "2000",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    assert results["accuracy"] > 0.4, results["accuracy"]  # chance is 0.1
    assert results["n"] == 2000 and results["env_id"] == "GlimpseMNIST-v0"
    assert results["test_mc1"]["mc_samples"] == 1 and results["test_mc3"]["mc_samples"] == 3
    folder = tmp_path / "learn"
    saved = json.loads((folder / "results" / "test.json").read_text())
    assert saved["accuracy"] == results["accuracy"]
    assert (folder / "checkpoints" / "best.pt").is_file() and (folder / "checkpoints" / "last.pt").is_file()
    assert json.loads((folder / "config.json").read_text())["env"] == "GlimpseMNIST-v0"
    assert list(folder.glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ("losses/total", "losses/classification", "losses/baseline", "losses/reinforce"):
        assert tag in tags["scalars"]
    for tag in (
        "charts/val_accuracy",
        "charts/train_reward",
        "charts/learning_rate",
        "charts/images_per_second",
    ):
        assert tag in tags["scalars"]
    assert "charts/glimpses" in tags["images"]


@pytest.mark.parametrize("extra", [(), ("--ema", "0.9")])
def test_resume_is_bit_identical_to_a_straight_run(tmp_path: Path, extra: tuple[str, ...]) -> None:
    run(tmp_path, "--epochs", "2", *extra, name="straight")
    run(tmp_path, "--epochs", "1", *extra, name="split")
    ram_reinforce.main(["--resume", str(tmp_path / "split"), "--epochs", "2", "--no-progress"])
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    results = json.loads((tmp_path / "split" / "results" / "test.json").read_text())
    assert results["resumed_with"] == [
        f"python -m agents.ram_reinforce --resume {tmp_path / 'split'} --epochs 2 --no-progress"
    ]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert (a[AVERAGE_KEY] is None) == (not extra)
    for name, tensor in (a[AVERAGE_KEY] or {}).items():  # the weight average continues too
        assert torch.equal(tensor, b[AVERAGE_KEY][name]), name
    if extra:  # validation played the average: the evaluation script, which loads it, agrees
        best = tmp_path / "straight" / "checkpoints" / "best.pt"
        state = load_checkpoint(best)
        weights = inference_weights(state)
        assert not torch.equal(weights["core.cell.weight_ih"], state["model"]["core.cell.weight_ih"])
        again = evaluate.main(
            ["--checkpoint", str(best), "--split", "val", "--mc-samples", "1", "--seed", "1"]
        )
        assert again.accuracy == state["best_val"]


def test_resume_with_a_fixed_training_set(tmp_path: Path) -> None:
    first = run(tmp_path, "--epochs", "1", "--train-size", "512", name="fixed")
    assert first["config"]["train_size"] == 512
    again = ram_reinforce.main(["--resume", str(tmp_path / "fixed"), "--epochs", "2", "--no-progress"])
    assert again["epochs"] == 2


def test_existing_run_folder_is_refused(tmp_path: Path) -> None:
    run(tmp_path, "--epochs", "1", name="taken")
    before = (tmp_path / "taken" / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(RunFolderError, match="--resume"):
        run(tmp_path, "--epochs", "1", name="taken")
    assert (tmp_path / "taken" / "checkpoints" / "last.pt").read_bytes() == before
    run(tmp_path, "--epochs", "1", "--overwrite", name="taken")  # explicit overwrite works


def test_resume_refuses_changed_settings_and_missing_folders(tmp_path: Path) -> None:
    run(tmp_path, "--epochs", "1", name="base")
    with pytest.raises(RunFolderError, match="--core"):
        ram_reinforce.main(["--resume", str(tmp_path / "base"), "--core", "lstm"])
    with pytest.raises(RunFolderError, match="not a run folder"):
        ram_reinforce.main(["--resume", str(tmp_path / "nothing")])


def test_bad_checkpoints_give_clear_errors(tmp_path: Path) -> None:
    run(tmp_path, "--epochs", "1", name="ck")
    best = tmp_path / "ck" / "checkpoints" / "best.pt"
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(best.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated, corrupted"):
        evaluate.main(["--checkpoint", str(truncated)])
    with pytest.raises(CheckpointError, match="no checkpoint"):
        evaluate.main(["--checkpoint", str(tmp_path / "missing.pt")])
    with pytest.raises(CheckpointError, match="env="):
        load_checkpoint(best, expect={"env": "GlimpseMNIST-Fashion-v0"})
    # a checkpoint whose model does not match the run being resumed
    last = tmp_path / "ck" / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    state["model_config"]["hidden_size"] = 64
    save_checkpoint(last, state, state["config"])
    with pytest.raises(CheckpointError, match="another environment or model"):
        ram_reinforce.main(["--resume", str(tmp_path / "ck"), "--epochs", "2"])


def test_bad_command_lines(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ram_reinforce.main(["--no-such-flag"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        ram_reinforce.main(["--optimizer", "rmsprop"])
    with pytest.raises(Exception, match="GlimpseMNIST-Nope-v0"):
        run(tmp_path, "--env", "GlimpseMNIST-Nope-v0", name="badenv")
    with pytest.raises(ValueError, match=r"train_size must be an integer in \[1, 55000\]"):
        run(tmp_path, "--train-size", "60000", name="large")
    assert not (tmp_path / "large").exists()
    with pytest.raises(ValueError, match="exceeds --train-size"):
        run(tmp_path, "--train-size", "100", name="small")
    assert not (tmp_path / "small").exists()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"--device='cuda' is not available here.*available: cpu"):
            run(tmp_path, "--device", "cuda", name="cuda")
    assert not (tmp_path / "cuda").exists()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(tmp_path, "--epochs", "1", name="nan")
    good = (tmp_path / "nan" / "checkpoints" / "last.pt").read_bytes()
    real_loss = ram_loss

    def broken_loss(**kwargs):  # type: ignore[no-untyped-def]
        losses = real_loss(**kwargs)
        return losses._replace(total=losses.total * float("nan"))

    monkeypatch.setattr("agents.rollout.ram_loss", broken_loss)  # what the training step computes
    with pytest.raises(TrainingDiverged, match="epoch 2, update 1"):
        ram_reinforce.main(["--resume", str(tmp_path / "nan"), "--epochs", "2", "--no-progress"])
    assert (tmp_path / "nan" / "checkpoints" / "last.pt").read_bytes() == good


def test_evaluate_and_visualize_a_checkpoint(tmp_path: Path) -> None:
    run(tmp_path, "--epochs", "1", name="ev")
    best = str(tmp_path / "ev" / "checkpoints" / "best.pt")
    out = tmp_path / "eval.json"
    result = evaluate.main(
        ["--checkpoint", best, "--split", "val", "--mc-samples", "2", "--episodes", "300", "--json", str(out)]
    )
    saved = json.loads(out.read_text())
    assert saved["n"] == 300 and saved["env_id"] == "GlimpseMNIST-Cluttered-v0"
    assert saved["accuracy"] == result.accuracy and len(saved["per_class"]) == 10
    assert len(saved["mean_locations"]) == 6 and saved["ci95"][0] <= saved["accuracy"] <= saved["ci95"][1]
    png = visualize.main(["--checkpoint", best, "--out", str(tmp_path / "g.png"), "--count", "3"])
    gif = visualize.main(["--checkpoint", best, "--out", str(tmp_path / "g.gif"), "--count", "3"])
    from PIL import Image

    with Image.open(png) as picture:
        assert picture.size[0] > 3 * 200 and picture.size[1] > 6 * 200  # 3 columns, 6 glimpse rows
    with Image.open(gif) as animation:
        assert animation.n_frames == 6
    with pytest.raises(ValueError, match=r"\.png or \.gif"):
        visualize.main(["--checkpoint", best, "--out", str(tmp_path / "g.bmp")])


def test_random_first_glimpses_apply_to_training_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[dict] = []
    real = ram_reinforce.make_vector_env

    def spy(env_id: str, num_envs: int, **kwargs: Any) -> Any:
        made.append(kwargs)
        return real(env_id, num_envs, **kwargs)

    monkeypatch.setattr(ram_reinforce, "make_vector_env", spy)
    results = run(
        tmp_path, "--epochs", "1", "--train-initial-location", "random", "--eval-episodes", "200", name="r"
    )
    assert results["config"]["train_initial_location"] == "random"
    assert [kwargs.get("initial_location") for kwargs in made] == ["random"]  # the training env alone
    # validation and test played the registered env: its first glimpse is at the centre
    assert results["test_mc1"]["mean_locations"][0] == [0.0, 0.0]
    with pytest.raises(RunFolderError, match="train-initial-location"):
        ram_reinforce.main(["--resume", str(tmp_path / "r"), "--train-initial-location", "env"])
