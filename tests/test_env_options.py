"""The options of the task: early answers, a glimpse cost and every-step rewards.

Their semantics in the single environment, the vector environment, the SB3 adapters and
the evaluation protocol; their defaults keep every id as it was; and the bad inputs each
raise one clear line and change nothing. (The native vector environment against
SyncVectorEnv with the options is in test_vector_sync.py.)
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from gymnasium.vector import AutoresetMode

from glimpse_env import ENV_SPECS, GlimpseEnv, GlimpseVectorEnv, TaskConfig
from glimpse_env.evaluation import SB3Policy, evaluate, format_table
from glimpse_env.policies import sb3_action_form
from glimpse_env.wrappers import (
    FlatActionWrapper,
    MultiDiscreteActionWrapper,
    SB3VecEnv,
    split_flat_actions,
    split_multidiscrete_actions,
)

MNIST = "GlimpseMNIST-v0"  # T = 6
T = 6
N = 4
CENTRE = np.zeros(2, np.float32)


def one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert message and "\n" not in message, message
    return message


def truth(env: gym.Env, index: int) -> int:
    """The true class of canvas ``index`` of the fixed set (canvas i shows image i)."""
    return int(env.unwrapped.task.labels[index])


def play(env: gym.Env, index: int, labels: list[int], stops: list[int] | None = None) -> list[tuple]:
    """Reset to canvas ``index`` and step with ``labels`` (and ``stops``) until the end."""
    env.reset(options={"index": index})
    steps = []
    for t, label in enumerate(labels):
        action: dict[str, Any] = {"location": CENTRE, "label": label}
        if stops is not None:
            action["stop"] = stops[t]
        _, reward, terminated, truncated, info = env.step(action)
        steps.append((reward, terminated, truncated, info))
        if terminated:
            break
    return steps


# --------------------------------------------------------------------------- the defaults
def test_the_defaults_keep_every_id_as_it_was():
    for spec in ENV_SPECS:
        config = TaskConfig(**spec.kwargs)
        assert config.early_answer is False and config.glimpse_cost == 0.0 and config.reward == "terminal"
        assert config.classic
        assert not {"early_answer", "glimpse_cost", "reward"} & set(gym.spec(spec.env_id).kwargs)
    env = gym.make(MNIST, split="test")
    assert set(env.action_space.spaces) == {"location", "label"}
    steps = play(env, 0, [truth(env, 0)] * T)
    assert [s[0] for s in steps] == [0.0] * (T - 1) + [1.0]
    assert all("glimpses" not in s[3] for s in steps)
    envs = GlimpseVectorEnv(N, split="test")
    assert set(envs.single_action_space.spaces) == {"location", "label"}


def test_the_options_are_settings_of_make_and_make_vec():
    env = gym.make(MNIST, early_answer=True, glimpse_cost=0.01, reward="every_step")
    config = env.unwrapped.config
    assert (config.early_answer, config.glimpse_cost, config.reward) == (True, 0.01, "every_step")
    assert env.action_space["stop"] == spaces.Discrete(2)
    envs = gym.make_vec(MNIST, N, vectorization_mode="vector_entry_point", early_answer=True)
    assert envs.action_space["stop"] == spaces.MultiDiscrete([2] * N)
    assert (
        TaskConfig(early_answer=np.True_, glimpse_cost=np.float32(0.5), reward="every_step").settings()[
            "early_answer"
        ]
        is True
    )
    assert (
        TaskConfig(glimpse_cost=1).glimpse_cost == 1.0
        and type(TaskConfig(glimpse_cost=1).glimpse_cost) is float
    )


# --------------------------------------------------------------------------- early answers
@pytest.mark.parametrize("cost", [0.0, 0.05])
def test_an_episode_that_stops_at_step_2_ends_there_with_two_glimpses(cost):
    env = gym.make(MNIST, split="test", early_answer=True, glimpse_cost=cost)
    label = truth(env, 3)
    steps = play(env, 3, [label] * T, stops=[0, 1, 0, 0, 0, 0])
    assert len(steps) == 2
    (r1, term1, _, info1), (r2, term2, trunc2, info2) = steps
    assert not term1 and term2 and not trunc2
    assert info1["glimpses"] == 1 and info2["glimpses"] == 2 and info2["step"] == 2
    assert r1 == -cost and r2 == 1.0 - cost
    assert r1 + r2 == pytest.approx(1 - 2 * cost)
    assert info2["correct"] is True and info2["prediction"] == info2["label"] == label
    assert "label" not in info1  # the answer is revealed only when the episode ends
    with pytest.raises(gym.error.ResetNeeded):
        env.step({"location": CENTRE, "label": 0, "stop": 0})


def test_a_wrong_early_answer_earns_only_the_cost_and_step_one_is_the_earliest():
    env = gym.make(MNIST, split="test", early_answer=True, glimpse_cost=0.25)
    wrong = (truth(env, 5) + 1) % 10
    steps = play(env, 5, [wrong], stops=[1])
    assert len(steps) == 1 and steps[0][1] and steps[0][3]["glimpses"] == 1
    assert steps[0][0] == -0.25 and steps[0][3]["correct"] is False


@pytest.mark.parametrize("stop", [0, 1])
def test_step_t_ends_the_episode_whatever_stop_says(stop):
    env = gym.make(MNIST, split="test", early_answer=True, glimpse_cost=0.1)
    label = truth(env, 2)
    steps = play(env, 2, [label] * T, stops=[0] * (T - 1) + [stop])
    assert len(steps) == T and steps[-1][1] and steps[-1][3]["glimpses"] == T
    assert sum(s[0] for s in steps) == pytest.approx(1 - 0.1 * T)
    assert [s[1] for s in steps] == [False] * (T - 1) + [True]


def test_stops_may_be_bools_or_integers_of_any_kind():
    env = gym.make(MNIST, split="test", early_answer=True)
    for stop in (True, np.True_, np.int64(1), np.uint8(1), torch.tensor(1), np.array(1)):
        env.reset(options={"index": 0})
        assert env.step({"location": CENTRE, "label": 0, "stop": stop})[2], repr(stop)
    for stop in (False, np.int32(0), torch.tensor(False)):
        env.reset(options={"index": 0})
        assert not env.step({"location": CENTRE, "label": 0, "stop": stop})[2], repr(stop)


def test_the_fixed_length_episodes_pay_the_cost_of_every_glimpse():
    env = gym.make(MNIST, split="test", glimpse_cost=0.125)
    steps = play(env, 1, [truth(env, 1)] * T)
    assert [s[0] for s in steps] == [-0.125] * (T - 1) + [0.875]
    assert sum(s[0] for s in steps) == 1 - 0.125 * T


# --------------------------------------------------------------------------- every-step rewards
def test_every_step_rewards_the_fraction_of_right_labels():
    env = gym.make(MNIST, split="test", reward="every_step")
    right = truth(env, 4)
    wrong = (right + 3) % 10
    labels = [right, wrong, right, right, wrong, wrong]
    steps = play(env, 4, labels)
    assert [s[0] for s in steps] == [1 / T, 0.0, 1 / T, 1 / T, 0.0, 0.0]
    assert sum(s[0] for s in steps) == pytest.approx(3 / T)
    assert steps[-1][3]["correct"] is False  # the last label's correctness: the accuracy
    assert sum(s[0] for s in play(env, 4, [right] * T)) == pytest.approx(1.0)
    assert play(env, 4, [wrong] * (T - 1) + [right])[-1][3]["correct"] is True


def test_an_early_right_answer_counts_for_the_steps_it_skips():
    """Every step: the answering step t earns (T - t + 1)/T if right, so the return stays in
    [0, 1] and an early right answer earns what repeating it until step T would."""
    env = gym.make(MNIST, split="test", reward="every_step", early_answer=True, glimpse_cost=0.01)
    right = truth(env, 6)
    wrong = (right + 1) % 10
    steps = play(env, 6, [wrong, right, right], stops=[0, 0, 1])
    assert [s[0] for s in steps] == [0.0 - 0.01, 1 / T - 0.01, (T - 3 + 1) / T - 0.01]
    assert sum(s[0] for s in steps) == pytest.approx((1 + 4) / T - 3 * 0.01)
    late = play(env, 6, [wrong] + [right] * (T - 1), stops=[0] * T)
    assert sum(s[0] for s in late) + 0.01 * T == pytest.approx(sum(s[0] for s in steps) + 0.01 * 3)
    first = play(env, 6, [right], stops=[1])
    assert first[0][0] == pytest.approx(1.0 - 0.01) and first[0][3]["glimpses"] == 1
    wrong_answer = play(env, 6, [right, wrong], stops=[0, 1])
    assert [s[0] for s in wrong_answer] == [1 / T - 0.01, -0.01]  # the skipped steps earn nothing


def test_the_reward_rule_is_one_function():
    config = TaskConfig(reward="every_step", early_answer=True, glimpse_cost=0.5, n_glimpses=4)
    assert config.step_reward(1, True, False) == 0.25 - 0.5
    assert config.step_reward(2, True, True) == 0.75 - 0.5
    assert config.step_reward(4, True, True) == 0.25 - 0.5
    assert config.step_reward(3, False, True) == -0.5
    terminal = TaskConfig(n_glimpses=4)
    assert [terminal.step_reward(t, True, t == 4) for t in range(1, 5)] == [0.0, 0.0, 0.0, 1.0]


# --------------------------------------------------------------------------- the vector environment
@pytest.mark.parametrize("mode", list(AutoresetMode), ids=lambda mode: mode.name)
def test_the_vector_env_ends_each_episode_at_its_own_stop(mode):
    envs = GlimpseVectorEnv(N, split="test", early_answer=True, glimpse_cost=0.1, autoreset_mode=mode)
    envs.reset(options={"indices": np.arange(N)})
    labels = envs.task.labels[:N].numpy()
    stop_at = np.array([1, 2, 3, T])
    terminated = np.zeros(N, dtype=bool)
    for t in range(1, T + 1):
        action = {
            "location": np.zeros((N, 2), np.float32),
            "label": labels,
            "stop": (stop_at == t).astype(int),
        }
        if mode == AutoresetMode.DISABLED and terminated.any():  # the ended ones wait for a reset
            envs.reset(options={"reset_mask": terminated, "indices": np.arange(N)})
        _, reward, terminated, _, info = envs.step(action)
        now = stop_at == t
        np.testing.assert_array_equal(terminated, now)
        first = stop_at >= t  # in its first episode: right answers, each step costs 0.1
        restart = stop_at == t - 1 if mode == AutoresetMode.NEXT_STEP else np.zeros(N, dtype=bool)
        want = np.where(first, np.where(now, 1.0, 0.0) - 0.1, np.where(restart, 0.0, -0.1))
        np.testing.assert_allclose(reward, want, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(
            info["_glimpses"], ~now if mode == AutoresetMode.SAME_STEP else ~restart
        )
        final = info["final_info"] if mode == AutoresetMode.SAME_STEP and now.any() else info
        if now.any():
            np.testing.assert_array_equal(final["glimpses"][now], t)
            assert final["correct"][now].all()


def test_the_tensor_api_takes_stops_only_with_early_answers():
    envs = GlimpseVectorEnv(N, split="test", early_answer=True)
    envs.reset(options={"indices": np.arange(N)})
    labels = envs.task.labels[:N]
    step = envs.step_tensors(torch.zeros(N, 2), labels, torch.tensor([1, 0, 0, 1]))
    np.testing.assert_array_equal(step.terminated.numpy(), [True, False, False, True])
    np.testing.assert_array_equal(step.correct.numpy(), [True, False, False, True])
    np.testing.assert_array_equal(step.label.numpy(), [labels[0], -1, -1, labels[3]])
    np.testing.assert_array_equal(step.reward.numpy(), [1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(step.info["glimpses"], [1, 1, 1, 1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_the_options_on_a_gpu_give_the_cpus_episodes():
    kwargs = {"split": "test", "early_answer": True, "glimpse_cost": 0.1, "reward": "every_step"}
    cpu = GlimpseVectorEnv(N, autoreset_mode=AutoresetMode.NEXT_STEP, **kwargs)
    gpu = GlimpseVectorEnv(N, autoreset_mode=AutoresetMode.NEXT_STEP, device="cuda", **kwargs)
    cpu.reset(seed=0, options={"indices": np.arange(N)})
    gpu.reset_tensors(seed=0, options={"indices": np.arange(N)})
    rng = np.random.default_rng(0)
    for _ in range(3 * T):
        action = {
            "location": rng.uniform(-1, 1, (N, 2)).astype(np.float32),
            "label": rng.integers(0, 10, N),
            "stop": rng.integers(0, 2, N),
        }
        _, reward, terminated, _, info = cpu.step(action)
        got = gpu.step_tensors(*(torch.from_numpy(action[k]).cuda() for k in ("location", "label", "stop")))
        np.testing.assert_array_equal(got.terminated.cpu().numpy(), terminated)
        np.testing.assert_array_equal(got.reward.cpu().numpy(), reward.astype(np.float32))
        assert sorted(got.info) == sorted(info)
        for key in ("glimpses", "_glimpses", "label", "correct"):
            if key in info:
                np.testing.assert_array_equal(got.info[key], info[key])


# --------------------------------------------------------------------------- the adapters
def test_the_flat_adapter_decodes_the_stop_as_its_last_coordinate_above_zero():
    env = FlatActionWrapper(gym.make(MNIST, split="test", early_answer=True))
    assert env.action_space.shape == (2 + 10 + 1,) and env.early_answer
    env.reset(options={"index": 0})
    scores = np.full(10, -1.0, np.float32)
    scores[truth(env, 0)] = 1.0
    _, reward, terminated, _, _ = env.step(np.concatenate([[0.0, 0.0], scores, [0.0]]).astype(np.float32))
    assert not terminated  # 0 is not above 0: another glimpse
    _, reward, terminated, _, info = env.step(np.concatenate([[0.0, 0.0], scores, [0.01]]).astype(np.float32))
    assert terminated and reward == 1.0 and info["glimpses"] == 2
    location, label, stop = split_flat_actions(
        np.array([[0.5, -0.5, *scores, -0.2], [0.0, 0.0, *scores, 1.0]]), 10, early_answer=True
    )
    np.testing.assert_array_equal(stop, [False, True])
    np.testing.assert_array_equal(label, [truth(env, 0)] * 2)
    np.testing.assert_array_equal(location[0], [0.5, -0.5])
    with pytest.raises(
        ValueError, match=r"10 class scores and the stop coordinate, so its last dimension must be 13"
    ):
        split_flat_actions(np.zeros(12), 10, early_answer=True)
    with pytest.raises(ValueError, match="NaN or infinity"):
        split_flat_actions(np.array([0, 0, *scores, np.nan]), 10, early_answer=True)
    # the same action without the stop: the same label (ties: the hash of the whole action)
    assert split_flat_actions(np.zeros(12), 10)[1] == split_flat_actions(np.zeros(12), 10)[1]


def test_the_multidiscrete_adapter_decodes_the_stop_as_its_last_entry():
    env = MultiDiscreteActionWrapper(gym.make(MNIST, split="test", early_answer=True), grid=5)
    assert env.action_space == spaces.MultiDiscrete([5, 5, 10, 2])
    env.reset(options={"index": 0})
    assert not env.step(np.array([2, 2, 0, 0]))[2]
    obs, _, terminated, _, info = env.step(np.array([0, 4, truth(env, 0), 1]))
    assert terminated and info["glimpses"] == 2 and info["correct"]
    np.testing.assert_array_equal(obs["location"], [-1.0, 1.0])
    _, _, stop = split_multidiscrete_actions(
        np.array([[0, 0, 0, 1], [0, 0, 0, 0]]), 10, grid=5, early_answer=True
    )
    np.testing.assert_array_equal(stop, [True, False])
    with pytest.raises(ValueError, match=r"its stop 2 is outside 0\.\.1"):
        split_multidiscrete_actions(np.array([0, 0, 0, 2]), 10, grid=5, early_answer=True)
    with pytest.raises(ValueError, match="four integers"):
        env.step(np.array([0, 0, 0]))


@pytest.mark.parametrize("action", ["flat", "multidiscrete"])
def test_the_adapters_with_early_answers_pass_the_checkers(action):
    from stable_baselines3.common.env_checker import check_env

    wrapper = FlatActionWrapper if action == "flat" else MultiDiscreteActionWrapper
    env = wrapper(gym.make(MNIST, early_answer=True, glimpse_cost=0.01))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, warn=False)
    gymnasium_check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("action", ["flat", "multidiscrete"])
def test_sb3_vec_env_carries_the_stop_decision(action):
    venv = SB3VecEnv.make(MNIST, N, action=action, split="test", early_answer=True)
    assert venv.early_answer
    venv.reset()
    if action == "flat":
        assert venv.action_space.shape == (13,)
        actions = np.zeros((N, 13), np.float32)
        actions[:, -1] = [1.0, -1.0, 0.5, 0.0]
    else:
        assert venv.action_space == spaces.MultiDiscrete([9, 9, 10, 2])
        actions = np.array([[4, 4, 0, 1], [4, 4, 0, 0], [4, 4, 0, 1], [4, 4, 0, 0]])
    venv.step_async(actions)
    _, reward, dones, infos = venv.step_wait()
    np.testing.assert_array_equal(dones, [True, False, True, False])
    assert infos[0]["glimpses"] == 1 and "terminal_observation" in infos[0] and infos[1] == {}
    assert reward.dtype == np.float32


def test_sb3_policy_plays_the_stop_of_a_model_trained_with_early_answers():
    class Model:
        action_space = spaces.Box(-1.0, 1.0, (13,), np.float32)

        def predict(self, observation, state=None, episode_start=None, deterministic=True):  # type: ignore[no-untyped-def]
            n = observation["location"].shape[0]
            actions = np.zeros((n, 13), np.float32)
            actions[:, -1] = 1.0  # stop at once
            return actions, state

    assert sb3_action_form(Model.action_space) == ("flat", None, 11)  # without early answers: 11 classes
    assert sb3_action_form(Model.action_space, early_answer=True) == ("flat", None, 10)
    assert sb3_action_form(spaces.MultiDiscrete([9, 9, 10, 2]), early_answer=True) == ("multidiscrete", 9, 10)
    with pytest.raises(ValueError, match="with early answers"):
        sb3_action_form(spaces.MultiDiscrete([9, 9, 10]), early_answer=True)
    policy = SB3Policy(Model(), early_answer=True)
    result = evaluate(policy, MNIST, episodes=20, num_envs=20, early_answer=True)
    assert result.mean_glimpses == 1.0


# --------------------------------------------------------------------------- the evaluation
class StopsAt:
    """Sub-environment j answers at step ``stop_at[j]`` with ``labels[j]``, at locations of its step."""

    def __init__(self, stop_at: np.ndarray, labels: np.ndarray) -> None:
        self.stop_at, self.labels, self.step = stop_at, labels, 0

    def __call__(self, observation, state, episode_start):  # type: ignore[no-untyped-def]
        self.step = 1 if episode_start.all() else self.step + 1
        n = observation["location"].shape[0]
        location = np.tile(np.float32([self.step / 10, -self.step / 10]), (n, 1))
        return {
            "location": location,
            "label": self.labels,
            "stop": (self.stop_at == self.step).astype(int),
        }, None


def test_evaluate_reports_the_mean_glimpses_of_early_answers():
    n, cost = 40, 0.02
    labels = GlimpseEnv(split="test").task.labels[:n].numpy()
    stop_at = 1 + np.arange(n) % (T - 1)  # steps 1 to T - 1: no episode takes glimpse T
    played = np.where(np.arange(n) % 4 == 0, (labels + 1) % 10, labels)  # a quarter wrong
    result = evaluate(
        StopsAt(stop_at, played), MNIST, episodes=n, num_envs=n, early_answer=True, glimpse_cost=cost
    )
    assert result.accuracy == 0.75
    assert result.mean_glimpses == pytest.approx(stop_at.mean())
    assert result.mean_reward == pytest.approx(0.75 - cost * stop_at.mean())
    locations = np.array(result.mean_locations)
    np.testing.assert_array_equal(locations[0], [0.0, 0.0])  # the centre, where every episode starts
    np.testing.assert_allclose(locations[1 : T - 1], [[i / 10, -i / 10] for i in range(1, T - 1)], rtol=1e-6)
    assert np.isnan(locations[T - 1]).all()  # glimpse T: no episode took it
    assert f"mean glimpses {stop_at.mean():.2f}" in format_table(result)
    # in two batches, and with Monte Carlo samples: the same episodes
    again = evaluate(
        StopsAt(np.repeat(stop_at, 2), np.repeat(played, 2)),
        MNIST,
        episodes=n,
        num_envs=2 * n,
        mc_samples=2,
        early_answer=True,
        glimpse_cost=cost,
    )
    assert again.accuracy == 0.75 and again.mean_glimpses == pytest.approx(stop_at.mean())


def test_evaluate_reports_n_glimpses_for_fixed_length_episodes():
    n = 30
    labels = GlimpseEnv(split="test").task.labels[:n].numpy()
    result = evaluate(StopsAt(np.zeros(n), labels), MNIST, episodes=n, num_envs=n, early_answer=True)
    assert result.mean_glimpses == T and result.accuracy == 1.0 and result.mean_reward == 1.0

    def fixed(observation, state, episode_start):  # type: ignore[no-untyped-def]
        return {"location": np.zeros((n, 2), np.float32), "label": labels}, None

    plain = evaluate(fixed, MNIST, episodes=n, num_envs=n)
    assert plain.mean_glimpses == T and plain.accuracy == 1.0
    every = evaluate(fixed, MNIST, episodes=n, num_envs=n, reward="every_step", glimpse_cost=0.01)
    assert every.accuracy == 1.0 and every.mean_reward == pytest.approx(1.0 - 0.01 * T)
    with pytest.raises(ValueError, match="has a 'stop', but the environment has no early answers") as err:
        evaluate(StopsAt(np.ones(n), labels), MNIST, episodes=n, num_envs=n)
    one_line(err)


# --------------------------------------------------------------------------- bad input
def test_a_stop_without_early_answers_is_refused_and_changes_nothing():
    env, twin = GlimpseEnv(split="test"), GlimpseEnv(split="test")
    env.reset(options={"index": 0})
    twin.reset(options={"index": 0})
    with pytest.raises(
        ValueError, match=r"has a 'stop', but this environment has no early answers.*early_answer=True"
    ) as err:
        env.step({"location": CENTRE, "label": 0, "stop": 1})
    one_line(err)
    got, want = env.step({"location": CENTRE, "label": 0}), twin.step({"location": CENTRE, "label": 0})
    assert got[4]["step"] == want[4]["step"] == 1 and np.array_equal(got[0]["glimpse"], want[0]["glimpse"])
    envs = GlimpseVectorEnv(N, split="test")
    envs.reset(options={"indices": np.arange(N)})
    batch = {"location": np.zeros((N, 2), np.float32), "label": np.zeros(N, np.int64)}
    with pytest.raises(ValueError, match="no early answers") as err:
        envs.step({**batch, "stop": np.zeros(N, np.int64)})
    one_line(err)
    with pytest.raises(
        ValueError, match="step_tensors got a stop, but this environment has no early answers"
    ) as err:
        envs.step_tensors(
            torch.zeros(N, 2), torch.zeros(N, dtype=torch.int64), torch.zeros(N, dtype=torch.int64)
        )
    one_line(err)
    np.testing.assert_array_equal(envs.step(batch)[4]["step"], 1)  # nothing was stepped before


def test_an_early_answer_environment_needs_the_stop():
    env = GlimpseEnv(split="test", early_answer=True)
    env.reset(options={"index": 0})
    with pytest.raises(
        ValueError,
        match=r"exactly the keys \['label', 'location', 'stop'\] \(this environment has early answers",
    ) as err:
        env.step({"location": CENTRE, "label": 0})
    one_line(err)
    envs = GlimpseVectorEnv(N, split="test", early_answer=True)
    envs.reset(options={"indices": np.arange(N)})
    with pytest.raises(
        ValueError, match=r"early answers \(early_answer=True\): pass step_tensors\(location, label, stop\)"
    ) as err:
        envs.step_tensors(torch.zeros(N, 2), torch.zeros(N, dtype=torch.int64))
    one_line(err)
    assert env.step({"location": CENTRE, "label": 0, "stop": 0})[4]["step"] == 1


@pytest.mark.parametrize(
    ("stop", "error", "message"),
    [
        (2, ValueError, r"action\['stop'\] is 2; a stop is 0 or 1"),
        (-1, ValueError, r"action\['stop'\] is -1; a stop is 0 or 1"),
        (0.5, TypeError, r"action\['stop'\] must be 0 or 1: integers or bools"),
        ("1", TypeError, r"action\['stop'\] must be 0 or 1: integers or bools"),
        (None, TypeError, r"action\['stop'\] must be 0 or 1"),
        (np.array([0, 1]), ValueError, r"action\['stop'\] must be 0 or 1.*got shape \(2,\)"),
    ],
    ids=repr,
)
def test_a_stop_that_is_not_0_or_1_is_refused_and_changes_nothing(stop, error, message):
    env = GlimpseEnv(split="test", early_answer=True)
    env.reset(options={"index": 0})
    with pytest.raises(error, match=message) as err:
        env.step({"location": CENTRE, "label": 0, "stop": stop})
    one_line(err)
    _, _, terminated, _, info = env.step({"location": CENTRE, "label": 0, "stop": 0})
    assert info["step"] == 1 and info["glimpses"] == 1 and not terminated


@pytest.mark.parametrize("api", ["numpy", "tensor"])
def test_a_batch_of_stops_names_the_bad_sub_environment(api):
    envs = GlimpseVectorEnv(N, split="test", early_answer=True)
    twin = GlimpseVectorEnv(N, split="test", early_answer=True)
    for e in (envs, twin):
        e.reset(options={"indices": np.arange(N)})
    location, label = np.zeros((N, 2), np.float32), np.zeros(N, np.int64)
    bad = np.array([0, 1, 3, 0])

    def step(stop: Any) -> Any:
        if api == "numpy":
            return envs.step({"location": location, "label": label, "stop": stop})
        return envs.step_tensors(torch.from_numpy(location), torch.from_numpy(label), torch.as_tensor(stop))

    with pytest.raises(
        ValueError, match=r"action\['stop'\] of sub-environment 2 is 3; a stop is 0 or 1"
    ) as err:
        step(bad)
    one_line(err)
    with pytest.raises(TypeError, match="stop") as err:
        step(np.full(N, 0.5))
    one_line(err)
    with pytest.raises(ValueError, match=r"shape \(4,\)") as err:
        step(np.zeros(N + 1, np.int64))
    one_line(err)
    good = np.array([1, 0, 0, 1])
    got = envs.step({"location": location, "label": label, "stop": good})
    want = twin.step({"location": location, "label": label, "stop": good})
    np.testing.assert_array_equal(got[2], want[2])
    np.testing.assert_array_equal(got[4]["step"], [1] * N)  # the refused steps were not taken


@pytest.mark.parametrize(
    ("cost", "error"),
    [
        (-0.1, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        (-math.inf, ValueError),
        ("0.1", TypeError),
        (True, TypeError),
        (None, TypeError),
        ([0.1], TypeError),
    ],
    ids=repr,
)
def test_a_glimpse_cost_must_be_a_finite_number_at_least_0(cost, error):
    for make in (
        lambda: GlimpseEnv(glimpse_cost=cost),
        lambda: gym.make(MNIST, glimpse_cost=cost),
        lambda: GlimpseVectorEnv(2, glimpse_cost=cost),
    ):
        with pytest.raises(
            error,
            match=r"glimpse_cost must be a finite real number >= 0 \(the reward lost per glimpse\), got",
        ) as err:
            make()
        one_line(err)
    assert TaskConfig(glimpse_cost=-0.0).glimpse_cost == 0.0 and TaskConfig(glimpse_cost=-0.0).classic


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("dense", ValueError, r"reward must be one of \('terminal', 'every_step'\), got 'dense'$"),
        ("every-step", ValueError, r"got 'every-step' \(did you mean 'every_step'\?\)"),
        ("Terminal", ValueError, r"got 'Terminal' \(did you mean 'terminal'\?\)"),
        (1, TypeError, r"reward must be one of \('terminal', 'every_step'\), got 1 of type int"),
        (None, TypeError, r"reward must be one of"),
    ],
    ids=repr,
)
def test_a_reward_mode_must_be_one_of_the_two(mode, error, message):
    for make in (
        lambda: GlimpseEnv(reward=mode),
        lambda: gym.make_vec(MNIST, 2, vectorization_mode="vector_entry_point", reward=mode),
    ):
        with pytest.raises(error, match=message) as err:
            make()
        one_line(err)


@pytest.mark.parametrize("flag", [1, 0, "yes", None, np.array([True])], ids=repr)
def test_early_answer_must_be_a_bool(flag):
    with pytest.raises(TypeError, match="early_answer must be True or False, got") as err:
        GlimpseEnv(early_answer=flag)
    one_line(err)
