"""The one evaluation protocol (glimpse_env.evaluation), its adapters and its command line,
on the real data with tiny budgets."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from glimpse_env import CanvasSource
from glimpse_env import evaluate as cli
from glimpse_env.evaluation import (
    EvaluationResult,
    RandomPolicy,
    SB3Policy,
    ShardOutcome,
    batch_seed,
    evaluate,
    monte_carlo_predictions,
    score_predictions,
    wilson_interval,
)

MNIST = "GlimpseMNIST-v0"
CLUTTERED = "GlimpseMNIST-Cluttered-v0"
REQUIRED_KEYS = {"accuracy", "ci95", "n", "env_id", "policy", "per_class", "mean_reward", "mc_samples"}


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def truth_of(env_id: str, n: int, split: str = "test") -> np.ndarray:
    return CanvasSource.from_id(env_id, split=split).fixed(range(n)).labels.numpy()


Chooser = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray | None]]


class Scripted:
    """Knows the true class of every sub-environment from evaluate's documented layout
    (batch b, sub-environment j: canvas min(b * P + j // M, n - 1)) and answers
    ``choose(truth, repeat)`` -> ``(labels, scores or None)`` on every step."""

    def __init__(self, truth: np.ndarray, repeats: int, choose: Chooser) -> None:
        self.truth, self.repeats, self.choose, self.batch = truth, repeats, choose, -1

    def __call__(self, observation, state, episode_start):  # type: ignore[no-untyped-def]
        size = observation["location"].shape[0]
        if episode_start.all():
            self.batch += 1
        per_batch = size // self.repeats
        canvases = np.minimum(self.batch * per_batch + np.arange(per_batch), len(self.truth) - 1)
        truth = self.truth[np.repeat(canvases, self.repeats)]
        repeat = np.tile(np.arange(self.repeats), per_batch)
        labels, scores = self.choose(truth, repeat)
        action = {"location": np.zeros((size, 2), dtype=np.float32), "label": labels}
        if scores is not None:
            action["scores"] = scores
        return action, None


def one_hot(classes: np.ndarray, value: float) -> np.ndarray:
    scores = np.zeros((classes.shape[0], 10))
    scores[np.arange(classes.shape[0]), classes] = value
    return scores


# ----------------------------------------------------------------------------- scoring
def test_wilson_interval_against_hand_computed_values() -> None:
    # 8 of 10: p = 0.8, z = 1.96: centre (0.8 + z^2/20) / (1 + z^2/10), half-width
    # z sqrt(0.016 + z^2/400) / (1 + z^2/10), worked out by hand: 0.4902 .. 0.9433
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.49016, abs=1e-4) and high == pytest.approx(0.94332, abs=1e-4)
    # 0 of 10: the lower bound is 0, the upper z^2 / (n + z^2) = 3.8415 / 13.8415
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="0 <= correct <= n"):
        wilson_interval(11, 10)


def test_score_predictions_counts_per_class() -> None:
    scores = score_predictions([0, 1, 1, 2], np.array([0, 1, 2, 2]), num_classes=4)
    assert scores.accuracy == 0.75 and scores.correct == 3 and scores.n == 4
    assert scores.per_class == [1.0, 1.0, 0.5, 0.0] and scores.class_counts == [1, 1, 2, 0]
    assert scores.ci95 == wilson_interval(3, 4)
    assert score_predictions(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), num_classes=4) == scores
    with pytest.raises(TypeError, match="1-d integer array"):
        score_predictions([0.0, 1.0], [0, 1], num_classes=2)
    with pytest.raises(ValueError, match=r"labels\[1\] = 5 is not a class: classes are 0..3"):
        score_predictions([0, 1], [0, 5], num_classes=4)
    with pytest.raises(ValueError, match="2 predictions and 3 labels"):
        score_predictions([0, 1], [0, 1, 1], num_classes=2)
    with pytest.raises(ValueError, match="nothing to score"):
        score_predictions(np.zeros(0, dtype=int), np.zeros(0, dtype=int), num_classes=2)


def test_monte_carlo_predictions_vote_and_average() -> None:
    labels = np.array([[1, 2, 2], [3, 1, 4], [5, 5, 0], [9, 0, 0]])
    # majority; a three-way tie goes to the label played first (3, not the lowest 1)
    assert monte_carlo_predictions(labels, None, num_classes=10).tolist() == [2, 3, 5, 0]
    scores = np.stack([one_hot(row, 1.0) for row in labels])  # (P, M, C)
    scores[3, 0, 9] = 5.0  # one confident episode outweighs two mild ones
    assert monte_carlo_predictions(labels, scores, num_classes=10).tolist() == [2, 1, 5, 9]


# ----------------------------------------------------------------------------- the protocol
def test_random_policy_is_near_chance() -> None:
    result = evaluate(RandomPolicy(10, seed=0), MNIST, episodes=400, num_envs=128)
    assert isinstance(result, EvaluationResult)
    assert result.n == 400 and result.env_id == MNIST and result.split == "test"
    assert result.policy == "random" and result.mc_samples == 1
    assert 0.03 < result.accuracy < 0.2, result.accuracy
    assert result.mean_reward == result.accuracy  # one episode per canvas: the class is the label played
    assert result.ci95[0] <= result.accuracy <= result.ci95[1]
    assert len(result.per_class) == 10 and sum(result.class_counts) == 400
    locations = np.array(result.mean_locations)
    assert locations.shape == (6, 2)  # T = 6 glimpses
    assert np.all(locations[0] == 0.0)  # the first glimpse is at the centre
    assert np.all(np.abs(locations[1:]) < 0.15)  # uniform over [-1, 1]: mean near 0
    assert set(result.as_dict()) == set(EvaluationResult._fields)
    again = evaluate(RandomPolicy(10, seed=0), MNIST, episodes=400, num_envs=128)
    assert again._replace(episodes_per_second=0) == result._replace(episodes_per_second=0)


@pytest.mark.parametrize(("n", "num_envs"), [(250, 64), (100, 1000)])
def test_a_policy_told_the_answer_is_always_right(n: int, num_envs: int) -> None:
    truth = truth_of(CLUTTERED, n)
    policy = Scripted(truth, 1, lambda right, repeat: (right, None))
    result = evaluate(policy, CLUTTERED, episodes=n, num_envs=num_envs)
    assert result.n == n and result.accuracy == 1.0 and result.mean_reward == 1.0
    assert result.per_class == [1.0] * 10
    assert result.class_counts == np.bincount(truth, minlength=10).tolist()
    assert result.ci95[1] == 1.0 and result.ci95[0] > 0.95


def test_a_policy_that_always_answers_three() -> None:
    n = 300
    truth = truth_of(MNIST, n)

    def always_three(observation, state, episode_start):  # type: ignore[no-untyped-def]
        size = observation["location"].shape[0]
        return {"location": np.zeros((size, 2), np.float32), "label": np.full(size, 3)}, None

    result = evaluate(always_three, MNIST, episodes=n, num_envs=128)
    assert result.policy == "always_three"
    assert result.per_class == [1.0 if c == 3 else 0.0 for c in range(10)]
    assert result.accuracy == np.count_nonzero(truth == 3) / n


def test_monte_carlo_majority_vote_with_ties_to_the_first_episode() -> None:
    n, repeats = 120, 3
    truth = truth_of(MNIST, n)

    def wrong(right: np.ndarray, shift: int) -> np.ndarray:
        return (right + shift) % 10

    # right twice of three: the vote is right, though a third of the episodes are wrong
    two_of_three = Scripted(truth, repeats, lambda r, m: (np.where(m == 0, wrong(r, 1), r), None))
    result = evaluate(two_of_three, MNIST, episodes=n, mc_samples=repeats, num_envs=50)
    assert result.mc_samples == repeats and result.n == n
    assert result.accuracy == 1.0 and result.mean_reward == pytest.approx(2 / 3)
    # three different labels: the tie goes to the first episode's label
    first_wrong = Scripted(truth, repeats, lambda r, m: (np.choose(m, [wrong(r, 1), r, wrong(r, 2)]), None))
    assert evaluate(first_wrong, MNIST, episodes=n, mc_samples=repeats, num_envs=50).accuracy == 0.0
    first_right = Scripted(truth, repeats, lambda r, m: (np.choose(m, [r, wrong(r, 1), wrong(r, 2)]), None))
    assert evaluate(first_right, MNIST, episodes=n, mc_samples=repeats, num_envs=50).accuracy == 1.0


def test_monte_carlo_averages_the_scores_when_the_policy_gives_them() -> None:
    n, repeats = 120, 3
    truth = truth_of(MNIST, n)

    def choose(right: np.ndarray, repeat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # episode 0: confidently wrong (score 10); episodes 1 and 2: mildly right (score 1 each)
        labels = np.where(repeat == 0, (right + 1) % 10, right)
        return labels, one_hot(labels, 1.0) * np.where(repeat == 0, 10.0, 1.0)[:, None]

    result = evaluate(Scripted(truth, repeats, choose), MNIST, episodes=n, mc_samples=repeats, num_envs=60)
    assert result.accuracy == 0.0  # the mean score: 10/3 for the wrong class, 2/3 for the right one
    assert result.mean_reward == pytest.approx(2 / 3)  # a majority vote would have been right


def test_bad_input_is_refused_clearly() -> None:
    policy = RandomPolicy(10, seed=0)
    with pytest.raises(ValueError, match="GlimpseMNIST-Nope-v0"):
        evaluate(policy, "GlimpseMNIST-Nope-v0")
    with pytest.raises(ValueError, match="mc_samples must be an integer >= 1"):
        evaluate(policy, MNIST, mc_samples=0)
    with pytest.raises(ValueError, match="episodes must be an integer >= 1"):
        evaluate(policy, MNIST, episodes=0)
    with pytest.raises(ValueError, match=r"fresh canvas every episode.*train_size"):
        evaluate(policy, MNIST, split="train", episodes=10)
    with pytest.raises(TypeError, match="must be callable"):
        evaluate("random", MNIST, episodes=10)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="evaluate sets autoreset_mode itself"):
        evaluate(policy, MNIST, episodes=10, autoreset_mode="NextStep")

    def no_pair(observation, state, episode_start):  # type: ignore[no-untyped-def]
        return {"location": np.zeros((10, 2), np.float32), "label": np.zeros(10, int)}

    with pytest.raises(TypeError, match="returns a pair"):
        evaluate(no_pair, MNIST, episodes=10)

    def no_label(observation, state, episode_start):  # type: ignore[no-untyped-def]
        return {"location": np.zeros((10, 2), np.float32)}, None

    with pytest.raises(TypeError, match=r"with keys \['location'\]"):
        evaluate(no_label, MNIST, episodes=10)

    def bad_scores(observation, state, episode_start):  # type: ignore[no-untyped-def]
        action = {"location": np.zeros((10, 2), np.float32), "label": np.zeros(10, int)}
        return {**action, "scores": np.zeros(10)}, None

    with pytest.raises(ValueError, match=r"shape \(10, 10\), got \(10,\)"):
        evaluate(bad_scores, MNIST, episodes=10)

    def outside(observation, state, episode_start):  # type: ignore[no-untyped-def]
        return {"location": np.full((10, 2), 2.0, np.float32), "label": np.zeros(10, int)}, None

    with pytest.raises(ValueError, match="location"):  # the environment's own check
        evaluate(outside, MNIST, episodes=10)


# ----------------------------------------------------------------------------- SB3 adapter
def sb3_models(env_id: str) -> tuple[object, object]:
    """An untrained PPO on the flat action and RecurrentPPO on the multidiscrete one."""
    from sb3_contrib import RecurrentPPO
    from stable_baselines3 import PPO

    from glimpse_env.wrappers import SB3VecEnv

    flat = PPO("MultiInputPolicy", SB3VecEnv.make(env_id, 2), n_steps=16, batch_size=16, seed=0, device="cpu")
    venv = SB3VecEnv.make(env_id, 2, action="multidiscrete", grid=5)
    recurrent = RecurrentPPO("MultiInputLstmPolicy", venv, n_steps=16, batch_size=16, seed=0, device="cpu")
    return flat, recurrent


def test_sb3_adapter_plays_flat_and_recurrent_multidiscrete_models() -> None:
    flat, recurrent = sb3_models(MNIST)
    policy = SB3Policy(flat)
    assert policy.action == "flat" and policy.grid is None and policy.num_classes == 10
    result = evaluate(policy, MNIST, episodes=300, num_envs=128)
    assert result.n == 300 and len(result.per_class) == 10 and 0.0 <= result.accuracy <= 1.0
    assert result.policy == "sb3:PPO"
    lstm = SB3Policy(recurrent, deterministic=False)
    assert lstm.action == "multidiscrete" and lstm.grid == 5
    result = evaluate(lstm, MNIST, episodes=300, mc_samples=2, num_envs=128)
    assert result.n == 300 and result.mc_samples == 2 and len(result.per_class) == 10
    assert 0.0 <= result.accuracy <= 1.0
    # its glimpses are taken at the centres of the 5 x 5 grid, decoded as in training
    grid = np.linspace(-1, 1, 5)
    later = np.array(result.mean_locations)[1:]
    assert np.all((later >= -1) & (later <= 1)) and result.policy == "sb3:RecurrentPPO"
    observation = {"glimpse": np.zeros((4, 1, 8, 8), np.float32), "location": np.zeros((4, 2), np.float32)}
    action, state = lstm(observation, None, np.ones(4, dtype=bool))
    assert np.isin(action["location"], grid).all() and state is not None


def test_sb3_adapter_refuses_what_it_cannot_decode() -> None:
    flat, recurrent = sb3_models(MNIST)
    with pytest.raises(ValueError, match="contradicts the model's action space"):
        SB3Policy(flat, action="multidiscrete")
    with pytest.raises(ValueError, match="grid=7 contradicts"):
        SB3Policy(recurrent, grid=7)
    with pytest.raises(ValueError, match="action must be one of"):
        SB3Policy(flat, action="box")

    class NotGlimpse:
        from gymnasium import spaces

        action_space = spaces.Discrete(3)

        def predict(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError

    with pytest.raises(ValueError, match="none of the glimpse adapters' actions"):
        SB3Policy(NotGlimpse())
    with pytest.raises(TypeError, match="wraps a stable-baselines3 model"):
        SB3Policy(object())


# ----------------------------------------------------------------------------- the RAM
def test_ram_policy_plays_exactly_the_fast_tensor_loop() -> None:
    """agents.evaluate.evaluate_model (the protocol with RAMPolicy) against the RAM's own
    tensor-API loop, agents.rollout.play_episodes, on the same canvases and draws (the
    generator reseeded before every batch, as the protocol does)."""
    from agents.evaluate import evaluate_model
    from agents.ram import ModelConfig, RecurrentAttentionModel
    from agents.rollout import make_vector_env, play_episodes

    torch.manual_seed(0)
    model = RecurrentAttentionModel(ModelConfig((3, 12, 12), 10))
    count, repeats, per_batch = 500, 2, 100
    result = evaluate_model(
        model,
        CLUTTERED,
        split="val",
        mc_samples=repeats,
        std=0.1,
        batch_size=per_batch * repeats,
        episodes=count,
        generator=torch.Generator().manual_seed(3),
    )
    envs = make_vector_env(CLUTTERED, per_batch * repeats, split="val")
    generator = torch.Generator().manual_seed(3)
    predictions, labels, locations = [], [], []
    with torch.no_grad():
        for first in range(0, count, per_batch):
            generator.manual_seed(batch_seed(3, first // per_batch))  # each batch its own draws
            indices = torch.arange(first, first + per_batch).repeat_interleave(repeats)
            rollout = play_episodes(
                model, envs, std=0.1, options={"indices": indices.numpy()}, generator=generator
            )
            log_p = torch.log_softmax(rollout.logits, 1).double().view(per_batch, repeats, -1).mean(1)
            predictions.append(log_p.argmax(1))
            labels.append(rollout.labels[::repeats])
            locations.append(rollout.locations)
    expected = score_predictions(torch.cat(predictions), torch.cat(labels), num_classes=10)
    assert result.n == count and result.mc_samples == repeats
    assert result.accuracy == expected.accuracy and result.per_class == expected.per_class
    assert result.ci95 == expected.ci95
    mean_locations = torch.cat(locations).double().mean(0).numpy()
    np.testing.assert_allclose(np.array(result.mean_locations), mean_locations, rtol=0, atol=1e-12)
    assert model.training  # evaluate_model gives the model back in its mode


# ----------------------------------------------------------------------------- command line
def test_cli_random_writes_the_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "random.json"
    args = ["--env", MNIST, "--policy", "random", "--episodes", "200", "--num-envs", "64", "--threads", "1"]
    result = cli.main([*args, "--json", str(out)])
    saved = json.loads(out.read_text())
    assert REQUIRED_KEYS <= set(saved)
    assert saved["n"] == 200 and saved["env_id"] == MNIST and saved["policy"] == "random"
    assert saved["accuracy"] == result.accuracy and saved["ci95"] == list(result.ci95)
    assert "accuracy" in capsys.readouterr().out


def test_cli_plays_a_ram_checkpoint_as_agents_evaluate_does(tmp_path: Path) -> None:
    from agents import evaluate as ram_evaluate
    from agents import ram_reinforce

    ram_reinforce.main(
        [
            "--run-dir",
            str(tmp_path / "ram"),
            "--epochs",
            "1",
            "--episodes-per-epoch",
            "256",
            "--batch-size",
            "64",
            "--eval-episodes",
            "100",
            "--image-every",
            "0",
            "--test-mc-samples",
            "2",
            "--no-progress",
            "--threads",
            "1",
        ]
    )
    best = str(tmp_path / "ram" / "checkpoints" / "best.pt")
    out = tmp_path / "ram.json"
    common = ["--split", "val", "--episodes", "300", "--mc-samples", "2", "--seed", "4"]
    result = cli.main(
        ["--env", CLUTTERED, "--policy", f"ram:{best}", *common, "--num-envs", "256", "--json", str(out)]
    )
    saved = json.loads(out.read_text())
    assert REQUIRED_KEYS <= set(saved) and saved["policy"] == f"ram:{best}"
    assert saved["n"] == 300 and saved["env_id"] == CLUTTERED and saved["mc_samples"] == 2
    reference = ram_evaluate.main(["--checkpoint", best, *common, "--batch-size", "256"])
    assert result.accuracy == reference.accuracy and result.per_class == reference.per_class
    assert result.mean_locations == reference.mean_locations
    with pytest.raises(cli.PolicySpecError, match="trained on 'GlimpseMNIST-Cluttered-v0', not on --env"):
        cli.main(["--env", MNIST, "--policy", f"ram:{best}", "--episodes", "10"])
    with pytest.raises(cli.PolicySpecError, match="no checkpoint"):
        cli.main(["--env", CLUTTERED, "--policy", f"ram:{tmp_path / 'missing.pt'}"])


def test_cli_plays_a_saved_sb3_model(tmp_path: Path) -> None:
    flat, _ = sb3_models(MNIST)
    path = tmp_path / "ppo.zip"
    flat.save(path)  # type: ignore[attr-defined]
    args = ["--env", MNIST, "--policy", f"sb3:PPO:{path}", "--episodes", "100", "--num-envs", "50"]
    result = cli.main(args)
    assert result.n == 100 and result.policy == f"sb3:PPO:{path}"
    with pytest.raises(cli.PolicySpecError, match=r"was trained on observations.*GlimpseMNIST-Fashion-v0"):
        cli.main(["--env", "GlimpseMNIST-Fashion-v0", "--policy", f"sb3:PPO:{path}", "--episodes", "10"])


def test_cli_refuses_bad_policies(tmp_path: Path) -> None:
    forms = "is not one of random, ram:CHECKPOINT, ram:pretrained or sb3:ALGO:PATH"
    with pytest.raises(cli.PolicySpecError, match=forms):
        cli.main(["--env", MNIST, "--policy", "greedy"])
    with pytest.raises(cli.PolicySpecError, match="is not one of"):
        cli.main(["--env", MNIST, "--policy", "sb3:PPO"])
    with pytest.raises(cli.PolicySpecError, match=r"unknown SB3 algorithm 'Nope'.*RecurrentPPO"):
        cli.main(["--env", MNIST, "--policy", "sb3:Nope:model.zip"])
    with pytest.raises(cli.PolicySpecError, match="no SB3 model at"):
        cli.main(["--env", MNIST, "--policy", f"sb3:PPO:{tmp_path / 'missing.zip'}"])
    not_a_model = tmp_path / "model.zip"
    not_a_model.write_text("hello")
    with pytest.raises(cli.PolicySpecError, match=r"PPO.load\(.*\) failed"):
        cli.main(["--env", MNIST, "--policy", f"sb3:PPO:{not_a_model}"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--env", "GlimpseMNIST-Nope-v0", "--policy", "random"])
    assert exit_info.value.code == 2


def test_shards_of_an_evaluation_combine_into_the_whole_one() -> None:
    """Three processes' shards (batch b to shard b mod 3), exchanged, score exactly what one
    process playing every batch scores; a missing shard or a shard without exchange is refused."""

    def by_glimpse(observation: Any, state: Any, episode_start: np.ndarray) -> tuple[dict[str, Any], None]:
        glimpse = np.asarray(observation["glimpse"])
        n = glimpse.shape[0]
        label = (glimpse.reshape(n, -1).sum(1) * 7).astype(np.int64) % 10  # a function of the canvas
        return {"location": np.full((n, 2), 0.25, dtype=np.float32), "label": label}, None

    whole = evaluate(by_glimpse, MNIST, episodes=550, num_envs=100)
    outcomes: dict[int, ShardOutcome] = {}

    class Captured(Exception):
        pass

    def capture(index: int) -> Any:
        def exchange(outcome: ShardOutcome) -> list[ShardOutcome]:
            outcomes[index] = outcome
            raise Captured

        return exchange

    for index in (1, 2):
        with pytest.raises(Captured):
            evaluate(by_glimpse, MNIST, episodes=550, num_envs=100, shard=(index, 3), exchange=capture(index))
    assert [b[0] for b in outcomes[1].batches] == [1, 4] and [b[0] for b in outcomes[2].batches] == [2, 5]
    combined = evaluate(
        by_glimpse,
        MNIST,
        episodes=550,
        num_envs=100,
        shard=(0, 3),
        exchange=lambda outcome: [outcome, outcomes[1], outcomes[2]],
    )
    assert combined.n == whole.n == 550 and whole.accuracy > 0
    assert combined.accuracy == whole.accuracy and combined.per_class == whole.per_class
    assert combined.ci95 == whole.ci95 and combined.mean_reward == whole.mean_reward
    np.testing.assert_allclose(combined.mean_locations, whole.mean_locations, rtol=1e-12)
    with pytest.raises(RuntimeError, match=r"expected each of 0 \.\. 5 once"):
        evaluate(by_glimpse, MNIST, episodes=550, num_envs=100, shard=(0, 3), exchange=lambda o: [o])
    with pytest.raises(ValueError, match="needs an exchange"):
        evaluate(by_glimpse, MNIST, episodes=550, num_envs=100, shard=(0, 3))
    assert batch_seed(7, 0) == 7 and len({batch_seed(7, b) for b in range(100)}) == 100


@pytest.mark.parametrize(
    ("episodes", "mc_samples", "size"), [(7, 1, 7), (7, 3, 21), (50, 3, 30), (None, 2, 32)]
)
def test_evaluate_builds_one_environment_of_the_batch_size(
    monkeypatch: pytest.MonkeyPatch, episodes: int | None, mc_samples: int, size: int
) -> None:
    """The size comes from the settings (the fixed set, ``episodes``, ``M``), not from a first
    environment: one environment, ``min(num_envs // M, n) * M`` sub-environments."""
    import glimpse_env.evaluation as protocol

    built: list[int] = []
    make = protocol.lockstep_vector_env

    def counting(env_id: str, num_envs: int, **kwargs: Any) -> Any:
        built.append(num_envs)
        return make(env_id, num_envs, **kwargs)

    monkeypatch.setattr(protocol, "lockstep_vector_env", counting)
    split, train_size = ("val", None) if episodes is not None else ("train", 40)
    kwargs = {} if train_size is None else {"train_size": train_size}
    policy = RandomPolicy(10, seed=0)
    result = evaluate(
        policy, MNIST, split=split, episodes=episodes, mc_samples=mc_samples, num_envs=32, **kwargs
    )
    assert built == [size]
    assert result.n == (episodes if episodes is not None else train_size)
