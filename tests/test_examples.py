"""The examples run as documented (tiny budgets)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from glimpse_env.data import load_split
from glimpse_env.render import TRAIL_COLOUR
from glimpse_env.wrappers import flat_action_space

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_random_agent_example(tmp_path):
    accuracy = load("random_agent").main(["--episodes", "300", "--picture", str(tmp_path / "p.png")])
    assert 0.04 < accuracy < 0.18
    assert (tmp_path / "p.png").stat().st_size > 0


def test_quickstart_saves_the_rendered_trajectory(tmp_path):
    quickstart = load("quickstart")
    out = tmp_path / "episode.png"
    episode = quickstart.main(["--env-id", "GlimpseMNIST-Translated-v0", "--out", str(out), "--seed", "1"])
    assert episode.steps == gym.spec("GlimpseMNIST-Translated-v0").kwargs["n_glimpses"]
    assert episode.reward == float(episode.label == episode.prediction)
    saved = np.asarray(Image.open(out))
    np.testing.assert_array_equal(saved, episode.picture)
    assert saved.ndim == 3 and saved.shape[2] == 3
    assert (saved == TRAIL_COLOUR).all(axis=2).any()  # the trail of locations is drawn
    again = quickstart.main(["--env-id", "GlimpseMNIST-Translated-v0", "--out", str(out), "--seed", "1"])
    np.testing.assert_array_equal(again.picture, episode.picture)  # seeded: the same episode


def test_vector_env_example_counts_episodes_and_throughput():
    result = load("vector_env").main(["--env-id", "GlimpseMNIST-v0", "--num-envs", "16", "--steps", "20"])
    # NEXT_STEP autoreset: an episode of 6 glimpses takes 7 steps, the first ends at step 6
    assert result.episodes == 16 * ((20 + 1) // (6 + 1))
    assert result.steps_per_second > 0
    assert 0.0 <= result.accuracy <= 1.0


def test_vector_env_example_rejects_an_empty_batch():
    with pytest.raises(SystemExit):
        load("vector_env").main(["--num-envs", "0"])


@pytest.mark.parametrize("action", ["flat", "multidiscrete"])
def test_recurrent_ppo_example_trains_saves_and_evaluates(tmp_path, action):
    run = tmp_path / action
    argv = ["--num-envs", "8", "--timesteps", "200", "--eval-size", "40", "--eval-batch", "40"]
    result = load("recurrent_ppo").main([*argv, "--action", action, "--run-dir", str(run)])
    assert 0.0 <= result.accuracy <= 1.0 and result.n == 40
    saved = json.loads((run / "results" / "test.json").read_text())
    assert saved["accuracy"] == result.accuracy and saved["env_id"] == "GlimpseMNIST-v0"
    assert saved["steps"] >= 200 and saved["hyperparameters"]["action"] == action
    assert list(run.rglob("events.out.tfevents.*"))  # SB3's TensorBoard log
    from sb3_contrib import RecurrentPPO

    again = load("recurrent_ppo").evaluate(
        RecurrentPPO.load(run / "model.zip"), "GlimpseMNIST-v0", eval_size=40, batch=40
    )
    assert again.accuracy == result.accuracy  # the saved model is the one scored


def test_recurrent_ppo_example_resumes_and_refuses_to_overwrite(tmp_path, capsys):
    example = load("recurrent_ppo")
    run = tmp_path / "run"
    argv = ["--num-envs", "8", "--eval-size", "16", "--eval-batch", "16", "--run-dir", str(run)]
    example.main([*argv, "--timesteps", "200", "--checkpoint-every", "48"])
    first = json.loads((run / "results" / "test.json").read_text())
    with pytest.raises(SystemExit):  # the folder holds a run: neither --resume nor --overwrite
        example.main([*argv, "--timesteps", "400"])
    assert "pass --resume to continue it" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a resumed run keeps its settings
        example.main([*argv, "--timesteps", "400", "--resume", "--learning-rate", "3e-4"])
    assert "learning_rate=0.001, not 0.0003" in capsys.readouterr().err
    example.main([*argv, "--timesteps", "400", "--resume"])
    again = json.loads((run / "results" / "test.json").read_text())
    assert first["steps"] < 400 <= again["steps"] < 400 + 8 * 24  # continued, to the next rollout's end
    assert again["train_seconds"] > first["train_seconds"]  # the time of both calls
    assert again["commands"] == [first["command"], again["commands"][1]]  # and both commands
    assert again["commands"][1].endswith("--resume") and again["command"] == " && ".join(again["commands"])
    assert 0.0 <= again["val_accuracy"] <= 1.0 and again["val_n"] == 16
    example.main([*argv, "--timesteps", "100", "--overwrite"])  # a new run replaces the old one
    assert json.loads((run / "results" / "test.json").read_text())["commands"] == [
        json.loads((run / "results" / "test.json").read_text())["command"]
    ]
    assert [p.name for p in run.glob("RecurrentPPO_*")] == ["RecurrentPPO_1"]  # no old logs left


def test_recurrent_ppo_example_defaults_follow_the_action_form():
    example = load("recurrent_ppo")
    multidiscrete = example.parse(["--action", "multidiscrete"])
    flat = example.parse(["--action", "flat"])
    assert (multidiscrete.ent_coef, multidiscrete.gae_lambda) == (0.01, 0.0)
    assert (flat.ent_coef, flat.gae_lambda) == (0.0, 0.95)
    assert example.parse(["--action", "flat", "--ent-coef", "0.02"]).ent_coef == 0.02  # a flag wins


def test_recurrent_ppo_example_stops_at_its_time_limit(tmp_path):
    run = tmp_path / "run"
    argv = ["--num-envs", "8", "--eval-size", "8", "--eval-batch", "8", "--run-dir", str(run)]
    load("recurrent_ppo").main([*argv, "--timesteps", "10000000", "--time-limit", "1e-9"])
    saved = json.loads((run / "results" / "test.json").read_text())
    # one rollout (4 episodes of 6 glimpses) and its update, then the first step of the next
    # rollout sees the limit and learn() returns
    assert saved["steps"] == 8 * 24 + 8
    assert (run / "model.zip").is_file()


def test_custom_agent_learns_through_the_tensor_api():
    reward = load("custom_agent").main(["--updates", "100", "--num-envs", "64", "--log-every", "20"])
    assert reward > 0.4, reward  # chance is 0.1


class _Oracle:
    """Stands in for a trained model: puts the top score on the true class of each canvas."""

    action_space = flat_action_space(10)

    def __init__(self, labels: np.ndarray, batch: int) -> None:
        self.labels, self.batch, self.batches = labels, batch, -1

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        if episode_start.all():
            self.batches += 1
        start = self.batches * self.batch
        truth = self.labels[np.arange(start, start + self.batch) % len(self.labels)]
        actions = np.full((self.batch, 12), -1.0, dtype=np.float32)
        actions[:, :2] = 0.0
        actions[np.arange(self.batch), 2 + truth] = 1.0
        return actions, state


@pytest.mark.parametrize(("eval_size", "batch"), [(100, 50), (130, 50)])
def test_example_evaluation_scores_an_oracle_perfectly(eval_size, batch):
    example = load("recurrent_ppo")
    labels = load_split("mnist", "test").labels.numpy()
    result = example.evaluate(
        _Oracle(labels, batch), "GlimpseMNIST-Cluttered-v0", eval_size=eval_size, batch=batch
    )
    assert result.accuracy == 1.0 and result.n == eval_size


def test_main_job_runs():
    from glimpse_env.__main__ import run

    result = run("GlimpseMNIST-v0", 200, 0, None)
    assert result["told"] == 1.0
    assert 0.03 < result["random"] < 0.2
