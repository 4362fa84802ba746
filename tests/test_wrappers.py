"""Adapters for stable-baselines3 / sb3-contrib."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.vec_env import DummyVecEnv, VecCheckNan, VecFrameStack, VecMonitor
from torch import nn

from glimpse_env import GlimpseVectorEnv
from glimpse_env.wrappers import (
    FlatActionWrapper,
    MultiDiscreteActionWrapper,
    SB3VecEnv,
    grid_locations,
    split_flat_actions,
    split_multidiscrete_actions,
)

#: SB3 checker warnings accepted for the adapters (the glimpse is a float32 retina
#: output in [0, 1], not a uint8 picture for a CnnPolicy; see glimpse_env.wrappers)
ACCEPTED = ("is an image but its `dtype` is (float32)", "not in [0, 255]", "minimal resolution")
WRAPPERS = {"flat": FlatActionWrapper, "multidiscrete": MultiDiscreteActionWrapper}


def clipped_normal(rng: np.random.Generator, shape: tuple[int, ...], mean: float = 0.0) -> np.ndarray:
    """What SB3's PPO, A2C and TD3 send to a Box(-1, 1) environment: a Gaussian sample clipped."""
    return np.clip(rng.normal(mean, 1.0, shape), -1.0, 1.0).astype(np.float32)


def random_actions(venv: SB3VecEnv, rng: np.random.Generator) -> np.ndarray:
    """One batch of random actions for either form of the adapter."""
    if venv.action_kind == "flat":
        return clipped_normal(rng, (venv.num_envs, 2 + venv.num_classes))
    high = venv.action_space.nvec
    return rng.integers(0, high, size=(venv.num_envs, len(high)))


@pytest.mark.parametrize("action", ["flat", "multidiscrete"])
def test_adapters_pass_sb3_checker(action):
    env = WRAPPERS[action](gym.make("GlimpseMNIST-Cluttered-v0"))
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
        actions = np.clip(rng.standard_normal((n, 12)), -1, 1).astype(np.float32)  # ties at 1.0
        obs, rewards, dones, infos = native.step(actions)
        d_obs, d_rewards, d_dones, d_infos = dummy.step(actions)
        np.testing.assert_array_equal(dones, d_dones)
        assert rewards.dtype == d_rewards.dtype and len(infos) == n
    # the label is a function of the action alone: both adapters decode it alike
    assert [i["prediction"] for i in infos] == [i["prediction"] for i in d_infos]
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


def test_sb3_autoreset_mode_is_declared():
    venv = SB3VecEnv.make("GlimpseMNIST-v0", num_envs=2)
    assert venv.venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP


# ---------------------------------------------------------------------- flat label decoding
@pytest.mark.parametrize("mean", [0.0, 0.5])
def test_flat_labels_are_unbiased_under_clipped_gaussians(mean):
    """SB3 clips Gaussian scores to 1.0, so maxima tie; no class may profit from a tie rule."""
    actions = clipped_normal(np.random.default_rng(0), (200_000, 12), mean)
    scores = actions[:, 2:]
    tied = (scores == scores.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert tied.mean() > 0.4  # ties are the common case this test is about
    _, labels = split_flat_actions(actions, 10)
    frequencies = np.bincount(labels, minlength=10) / labels.size
    # the lowest-index rule of np.argmax gave class 0 0.176 and class 9 0.051 (mean 0)
    np.testing.assert_allclose(frequencies, 0.1, atol=0.01)


def test_flat_label_is_a_deterministic_function_of_the_action():
    actions = clipped_normal(np.random.default_rng(1), (500, 12))
    _, labels = split_flat_actions(actions, 10)
    _, again = split_flat_actions(actions.copy(), 10)
    np.testing.assert_array_equal(labels, again)
    # alone or in a batch, float32 or float64, -0.0 or 0.0: the same action, the same label
    assert [int(split_flat_actions(a, 10)[1]) for a in actions] == labels.tolist()
    np.testing.assert_array_equal(split_flat_actions(actions.astype(np.float64), 10)[1], labels)
    zero, negative_zero = np.zeros(12, np.float32), np.zeros(12, np.float32)
    negative_zero[[0, 5]] = -0.0
    assert split_flat_actions(zero, 10)[1] == split_flat_actions(negative_zero, 10)[1]
    # a tie goes to one of the tied classes; a unique maximum is the label
    scores = actions[:, 2:]
    assert (scores[np.arange(500), labels] == scores.max(axis=1)).all()


def test_ties_depend_on_the_other_coordinates():
    """The tied classes alone do not decide the winner: over locations, each tied class wins."""
    scores = np.full(10, -0.5, np.float32)
    scores[[2, 5, 8]] = 1.0
    locations = np.random.default_rng(2).uniform(-1, 1, (3000, 2)).astype(np.float32)
    actions = np.concatenate([locations, np.tile(scores, (3000, 1))], axis=1)
    _, labels = split_flat_actions(actions, 10)
    counts = np.bincount(labels, minlength=10)
    assert counts[[2, 5, 8]].sum() == 3000
    np.testing.assert_allclose(counts[[2, 5, 8]] / 3000, 1 / 3, atol=0.04)


def test_flat_action_wrapper_judges_the_decoded_label_of_a_tie():
    env = FlatActionWrapper(gym.make("GlimpseMNIST-v0", n_glimpses=1))
    env.reset(seed=0)
    action = np.array([0.3, -0.7] + [1.0, -1.0] * 5, np.float32)  # classes 0, 2, 4, 6, 8 tie
    _, _, terminated, _, info = env.step(action)
    assert terminated and info["prediction"] == int(split_flat_actions(action, 10)[1])


# ---------------------------------------------------------------------- multidiscrete actions
def test_multidiscrete_action_is_grid_cell_then_class():
    np.testing.assert_array_equal(grid_locations(9), np.linspace(-1, 1, 9))
    locations, labels = split_multidiscrete_actions(np.array([[0, 8, 3], [4, 2, 9]]), 10, grid=9)
    np.testing.assert_array_equal(locations, [[-1.0, 1.0], [0.0, -0.5]])
    np.testing.assert_array_equal(labels, [3, 9])
    assert locations.dtype == np.float32 and labels.dtype == np.int64


def test_multidiscrete_wrapper_looks_at_the_cell_centre_and_judges_the_class():
    env = MultiDiscreteActionWrapper(gym.make("GlimpseMNIST-v0", split="test", n_glimpses=2), grid=5)
    assert env.action_space == gym.spaces.MultiDiscrete([5, 5, 10])
    env.reset(options={"index": 0})
    obs, _, terminated, _, _ = env.step(np.array([1, 4, 0]))
    np.testing.assert_array_equal(obs["location"], [-0.5, 1.0])
    assert not terminated
    _, reward, terminated, _, info = env.step(np.array([2, 2, 7]))  # the first test digit is a 7
    assert terminated and reward == 1.0 and info["prediction"] == 7


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (np.array([0.0, 1.0, 2.0]), TypeError, "three integers"),
        (np.array([0, 1]), ValueError, "got shape"),
        (np.array([0, 9, 1]), ValueError, "its row 9 is outside 0..8"),
        (np.array([0, 1, 10]), ValueError, "its class 10 is outside 0..9"),
        (np.array([-1, 1, 1]), ValueError, "its column -1"),
    ],
)
def test_multidiscrete_action_errors(action, error, message):
    env = MultiDiscreteActionWrapper(gym.make("GlimpseMNIST-v0"))
    env.reset(seed=0)
    with pytest.raises(error, match=message):
        env.step(action)


@pytest.mark.parametrize(("grid", "error"), [(1, ValueError), (2.0, TypeError), (True, TypeError)])
def test_bad_grid_is_rejected(grid, error):
    with pytest.raises(error, match="grid must be an integer >= 2"):
        MultiDiscreteActionWrapper(gym.make("GlimpseMNIST-v0"), grid=grid)
    with pytest.raises(error, match="grid must be an integer >= 2"):
        SB3VecEnv.make("GlimpseMNIST-v0", 2, action="multidiscrete", grid=grid)


def test_sb3_vec_env_action_errors():
    with pytest.raises(ValueError, match="only applies to action='multidiscrete'"):
        SB3VecEnv.make("GlimpseMNIST-v0", 2, grid=5)
    with pytest.raises(ValueError, match="action must be one of"):
        SB3VecEnv.make("GlimpseMNIST-v0", 2, action="box")  # type: ignore[arg-type]
    venv = SB3VecEnv.make("GlimpseMNIST-v0", 2, action="multidiscrete")
    venv.reset()
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        venv.step(np.zeros((3, 3), np.int64))


def test_sb3_vec_env_with_multidiscrete_actions():
    venv = SB3VecEnv.make("GlimpseMNIST-v0", 3, action="multidiscrete", grid=5, split="test")
    assert venv.action_space == gym.spaces.MultiDiscrete([5, 5, 10])
    venv.set_options({"indices": [0, 1, 2]})  # the test digits 7, 2, 1
    venv.reset()
    obs, _, dones, _ = venv.step(np.array([[0, 4, 0], [2, 2, 0], [4, 0, 0]]))
    np.testing.assert_array_equal(obs["location"], [[-1, 1], [0, 0], [1, -1]])
    for _ in range(5):
        _, rewards, dones, infos = venv.step(np.array([[2, 2, 7], [2, 2, 2], [2, 2, 0]]))
    assert dones.all()
    np.testing.assert_array_equal(rewards, [1.0, 1.0, 0.0])
    assert [info["prediction"] for info in infos] == [7, 2, 0]


# ---------------------------------------------------------------------- Gymnasium: recorded arguments
@pytest.mark.parametrize(("action", "kwargs"), [("flat", {}), ("multidiscrete", {"grid": 5})])
def test_wrappers_pass_gymnasium_checker_and_are_rebuilt_from_their_spec(action, kwargs):
    wrapped = WRAPPERS[action](gym.make("GlimpseMNIST-v0"), **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "different from the unwrapped version": it is a wrapper
        gymnasium_check_env(wrapped)
    assert wrapped.spec.additional_wrappers[-1].kwargs == kwargs
    remade = gym.make(wrapped.spec)
    assert type(remade) is type(wrapped) and remade.action_space == wrapped.action_space
    first, _ = wrapped.reset(seed=3)
    again, _ = remade.reset(seed=3)
    action_ = wrapped.action_space.sample()
    np.testing.assert_array_equal(wrapped.step(action_)[0]["glimpse"], remade.step(action_)[0]["glimpse"])
    np.testing.assert_array_equal(first["glimpse"], again["glimpse"])


# ---------------------------------------------------------------------- SB3VecEnv: autoreset, reset infos
def test_sb3_vec_env_takes_what_make_vec_gives():
    venv = SB3VecEnv(gym.make_vec("GlimpseMNIST-v0", num_envs=8, vectorization_mode="vector_entry_point"))
    assert venv.venv.autoreset_mode == AutoresetMode.NEXT_STEP and venv.num_envs == 8
    same = SB3VecEnv.make("GlimpseMNIST-v0", 8, autoreset_mode=AutoresetMode.SAME_STEP)
    assert same.venv.autoreset_mode == AutoresetMode.SAME_STEP


def test_sb3_vec_env_rejects_a_wrapped_vector_env():
    with pytest.raises(TypeError, match=r"venv\.unwrapped"):
        SB3VecEnv(RecordEpisodeStatistics(GlimpseVectorEnv(2)))
    with pytest.raises(TypeError, match="wraps a GlimpseVectorEnv"):
        SB3VecEnv(DummyVecEnv([lambda: gym.make("GlimpseMNIST-v0")]))  # type: ignore[arg-type]


def _play(venv: SB3VecEnv, steps: int) -> list:
    """Everything SB3 sees over ``steps`` seeded steps of random flat actions."""
    venv.seed(5)
    seen: list = [venv.reset(), [dict(info) for info in venv.reset_infos]]
    rng = np.random.default_rng(5)
    for _ in range(steps):
        seen.append(venv.step(random_actions(venv, rng)))
        seen.append([dict(info) for info in venv.reset_infos])
    return seen


def _assert_same(a: object, b: object) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED])
def test_every_autoreset_mode_gives_sb3_the_same_episodes(mode):
    """The adapter restarts finished episodes itself for NEXT_STEP and DISABLED, as SAME_STEP does."""
    steps = 2 * 6 + 1  # two whole episodes of GlimpseMNIST-v0 and one step more
    reference = _play(SB3VecEnv.make("GlimpseMNIST-v0", 4, split="val"), steps)
    other = _play(SB3VecEnv.make("GlimpseMNIST-v0", 4, split="val", autoreset_mode=mode), steps)
    _assert_same(reference, other)
    dones = [step[2] for step in reference[2::2]]
    assert [bool(d.all()) for d in dones] == [False] * 5 + [True] + [False] * 5 + [True, False]


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_reset_infos_describe_each_sub_environment(mode):
    n, env_id = 4, "GlimpseMNIST-v0"
    venv = SB3VecEnv.make(env_id, n, split="test", autoreset_mode=mode)
    single = gym.make(env_id, split="test")
    dummy = DummyVecEnv([lambda: FlatActionWrapper(gym.make(env_id, split="test")) for _ in range(n)])
    dummy.reset()
    venv.seed(0)
    obs = venv.reset()
    for episode in range(2):
        assert len(venv.reset_infos) == n
        indices = [info["index"] for info in venv.reset_infos]
        for i, info in enumerate(venv.reset_infos):
            assert info.keys() == dummy.reset_infos[i].keys() == {"location", "step", "index"}
            assert info["step"] == 0
            np.testing.assert_array_equal(info["location"], obs["location"][i])
            # the index names the canvas each sub-environment shows
            expected, _ = single.reset(options={"index": info["index"]})
            np.testing.assert_allclose(obs["glimpse"][i], expected["glimpse"], atol=1e-6)
        if episode == 0:
            for _ in range(6):  # one whole episode: autoreset
                obs, _, dones, _ = venv.step(np.zeros((n, 12), np.float32))
            assert dones.all()
            assert [info["index"] for info in venv.reset_infos] != indices


# ---------------------------------------------------------------------- SB3 settings
def test_frame_stack_channels_first_stacks_glimpses_along_the_first_axis():
    env_id, n, n_stack = "GlimpseMNIST-Fashion-v0", 2, 4  # glimpses (3, 7, 7)
    stacked = VecFrameStack(SB3VecEnv.make(env_id, n), n_stack, channels_order="first")
    plain = SB3VecEnv.make(env_id, n)
    stacked.seed(0)
    plain.seed(0)
    obs, first = stacked.reset(), plain.reset()
    assert obs["glimpse"].shape == (n, 3 * n_stack, 7, 7) and obs["location"].shape == (n, 2 * n_stack)
    np.testing.assert_array_equal(obs["glimpse"][:, -3:], first["glimpse"])
    assert not obs["glimpse"][:, :-3].any()
    actions = clipped_normal(np.random.default_rng(0), (n, 12))
    obs, _, _, _ = stacked.step(actions)
    second, _, _, _ = plain.step(actions)
    np.testing.assert_array_equal(obs["glimpse"][:, -6:-3], first["glimpse"])  # older patches first
    np.testing.assert_array_equal(obs["glimpse"][:, -3:], second["glimpse"])
    np.testing.assert_array_equal(obs["location"][:, -2:], second["location"])
    # without channels_order SB3 stacks a float glimpse on its last axis: patches side by side
    default = VecFrameStack(SB3VecEnv.make(env_id, n), n_stack)
    assert default.observation_space["glimpse"].shape == (3, 7, 7 * n_stack)


def test_multi_input_policy_flattens_the_float_glimpse():
    """Why SB3's checker warnings about the glimpse are harmless: no CNN is built for it."""
    venv = SB3VecEnv.make("GlimpseMNIST-Cluttered-v0", 2)
    assert not is_image_space(venv.observation_space["glimpse"])
    model = PPO("MultiInputPolicy", venv, n_steps=8, batch_size=16, seed=0)
    assert isinstance(model.policy.features_extractor.extractors["glimpse"], nn.Flatten)


# ---------------------------------------------------------------------- learning (tiny budgets)
ALGORITHMS = {
    "PPO": (PPO, "MultiInputPolicy", {"net_arch": [32]}),
    "RecurrentPPO": (RecurrentPPO, "MultiInputLstmPolicy", {"lstm_hidden_size": 32, "net_arch": [32]}),
}
DISTRIBUTIONS = {"flat": "DiagGaussianDistribution", "multidiscrete": "MultiCategoricalDistribution"}


@pytest.mark.parametrize("algorithm", ["PPO", "RecurrentPPO"])
@pytest.mark.parametrize("action", ["flat", "multidiscrete"])
def test_agents_learn_on_the_native_vector_env(algorithm, action):
    num_envs, n_steps, rollouts = 8, 12, 2
    venv = SB3VecEnv.make("GlimpseMNIST-v0", num_envs, action=action)
    cls, policy, policy_kwargs = ALGORITHMS[algorithm]
    model = cls(policy, venv, n_steps=n_steps, batch_size=48, n_epochs=1, policy_kwargs=policy_kwargs, seed=0)
    assert type(model.policy.action_dist).__name__ == DISTRIBUTIONS[action]
    model.learn(total_timesteps=num_envs * n_steps * rollouts)
    assert model.num_timesteps == num_envs * n_steps * rollouts


@pytest.mark.parametrize("algorithm", ["PPO", "RecurrentPPO"])
@pytest.mark.parametrize("action", ["flat", "multidiscrete"])
def test_agents_learn_on_a_wrapped_single_env(algorithm, action):
    n_steps, rollouts = 96, 2
    env = WRAPPERS[action](gym.make("GlimpseMNIST-Cluttered-v0"))
    cls, policy, policy_kwargs = ALGORITHMS[algorithm]
    model = cls(policy, env, n_steps=n_steps, batch_size=96, n_epochs=1, policy_kwargs=policy_kwargs, seed=0)
    assert type(model.policy.action_dist).__name__ == DISTRIBUTIONS[action]
    model.learn(total_timesteps=n_steps * rollouts)
    assert model.num_timesteps == n_steps * rollouts
