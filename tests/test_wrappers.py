"""Adapters for stable-baselines3 / sb3-contrib."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecCheckNan, VecMonitor

from glimpse_env import GlimpseVectorEnv
from glimpse_env.wrappers import FlatActionWrapper, SB3VecEnv, split_flat_actions

#: SB3 checker warnings accepted for the flat-action env (the glimpse is a float32 retina
#: output in [0, 1], not a uint8 picture for a CnnPolicy)
ACCEPTED = ("is an image but its `dtype` is (float32)", "not in [0, 255]", "minimal resolution")


def test_flat_action_env_passes_sb3_checker():
    env = FlatActionWrapper(gym.make("GlimpseMNIST-Cluttered-v0"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, warn=True)
    assert [str(w.message) for w in caught if not any(a in str(w.message) for a in ACCEPTED)] == []


def test_flat_action_is_location_then_argmax_of_scores():
    location, label = split_flat_actions(np.array([0.5, -0.25, 0, 0.1, 0.9, 0, 0, 0, 0, 0, 0, -1]), 10)
    np.testing.assert_array_equal(location, [0.5, -0.25])
    assert label == 2
    locations, labels = split_flat_actions(np.eye(4, 12, k=2), 10)
    np.testing.assert_array_equal(labels, [0, 1, 2, 3])
    assert locations.shape == (4, 2)


def test_flat_action_wrapper_judges_the_argmax_label():
    env = FlatActionWrapper(gym.make("GlimpseMNIST-v0", split="test", n_glimpses=1))
    env.reset(options={"index": 0})
    scores = np.full(10, -1.0)
    label = 7  # the first MNIST test digit is a 7
    scores[label] = 1.0
    _, reward, terminated, _, info = env.step(np.concatenate([[0.0, 0.0], scores]).astype(np.float32))
    assert terminated and reward == 1.0 and info["prediction"] == label


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (np.zeros(11, np.float32), "last dimension must be 12"),
        (np.array([0, 0, np.nan] + [0] * 9, np.float32), "NaN"),
        (np.array([2.0, 0] + [0] * 10, np.float32), "outside"),
    ],
)
def test_flat_action_errors(action, message):
    env = FlatActionWrapper(gym.make("GlimpseMNIST-v0"))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


def test_sb3_vec_env_needs_same_step_autoreset():
    with pytest.raises(ValueError, match="SAME_STEP"):
        SB3VecEnv(GlimpseVectorEnv(2))


def test_sb3_vec_env_behaves_like_dummy_vec_env():
    n, env_id = 4, "GlimpseMNIST-Fashion-v0"
    native = VecCheckNan(SB3VecEnv.make(env_id, num_envs=n), raise_exception=True)
    dummy = DummyVecEnv([lambda: FlatActionWrapper(gym.make(env_id)) for _ in range(n)])
    native.seed(0)
    obs, d_obs = native.reset(), dummy.reset()
    for key in ("glimpse", "location"):
        assert obs[key].shape == d_obs[key].shape and obs[key].dtype == d_obs[key].dtype
    rng = np.random.default_rng(0)
    for _t in range(1, 7):
        actions = rng.uniform(-1, 1, (n, 12)).astype(np.float32)
        obs, rewards, dones, infos = native.step(actions)
        d_obs, d_rewards, d_dones, d_infos = dummy.step(actions)
        np.testing.assert_array_equal(dones, d_dones)
        assert rewards.dtype == d_rewards.dtype and len(infos) == n
    assert dones.all()
    for info, d_info in zip(infos, d_infos, strict=True):
        assert set(d_info) <= set(info)
        assert (
            info["terminal_observation"]["glimpse"].shape == d_info["terminal_observation"]["glimpse"].shape
        )
        assert info["TimeLimit.truncated"] is False
    np.testing.assert_array_equal(rewards, [float(i["correct"]) for i in infos])
    np.testing.assert_array_equal(obs["location"], np.zeros((n, 2)))  # new episodes already started


def test_vec_monitor_reports_episodes():
    venv = VecMonitor(SB3VecEnv.make("GlimpseMNIST-v0", num_envs=8))
    venv.reset()
    for _ in range(6):
        _, rewards, dones, infos = venv.step(np.random.default_rng(0).uniform(-1, 1, (8, 12)))
    assert dones.all()
    assert [info["episode"]["l"] for info in infos] == [6] * 8
    assert [info["episode"]["r"] for info in infos] == pytest.approx(rewards.tolist())


def test_recurrent_ppo_learns_on_the_native_vector_env():
    venv = SB3VecEnv.make("GlimpseMNIST-v0", num_envs=16)
    model = RecurrentPPO(
        "MultiInputLstmPolicy",
        venv,
        n_steps=12,
        batch_size=96,
        n_epochs=1,
        policy_kwargs={"lstm_hidden_size": 32, "net_arch": [32]},
        seed=0,
    )
    model.learn(total_timesteps=16 * 12 * 2)
    assert model.num_timesteps == 16 * 12 * 2


def test_ppo_runs_unchanged_on_the_flat_action_wrapper():
    env = FlatActionWrapper(gym.make("GlimpseMNIST-Cluttered-v0"))
    model = PPO("MultiInputPolicy", env, n_steps=24, batch_size=24, n_epochs=1, seed=0)
    model.learn(total_timesteps=48)
    assert model.num_timesteps == 48


def test_sb3_autoreset_mode_is_declared():
    venv = SB3VecEnv.make("GlimpseMNIST-v0", num_envs=2)
    assert venv.venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
