"""GlimpseEnv: the Gymnasium contract, determinism, rewards and bad input."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import glimpse_env
from glimpse_env import ENV_SPECS, GlimpseEnv
from glimpse_env.data import load_split

ENV_IDS = [spec.env_id for spec in ENV_SPECS]

#: SB3's checker warnings we accept, and why:
SB3_ACCEPTED = (
    # the action is Dict(location, label) by design; glimpse_env.wrappers gives SB3 a flat Box
    "action space is not based off a numpy array",
    # the glimpse is a float32 retina output in [0, 1], not a uint8 picture for a CnnPolicy
    "is an image but its `dtype` is (float32)",
    "upper and lower bounds are not in [0, 255]",
    "minimal resolution for an image is 36x36",
)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_env_checker_passes_without_warnings(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_env_checker_passes_with_only_the_accepted_warnings(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(env.unwrapped, warn=True)
    unexpected = [str(w.message) for w in caught if not any(a in str(w.message) for a in SB3_ACCEPTED)]
    assert unexpected == []


def test_make_without_import_uses_module_prefix():
    code = (
        "import gymnasium as gym; env = gym.make('glimpse_env:GlimpseMNIST-v0');"
        "obs, _ = env.reset(seed=0); print(obs['glimpse'].shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1, 8, 8)"


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseMNIST-Cluttered-v0"])
def test_spaces_and_episode_structure(env_id):
    env = gym.make(env_id)
    spec_kwargs = gym.spec(env_id).kwargs
    k, g, T = spec_kwargs["n_scales"], spec_kwargs["patch_size"], spec_kwargs["n_glimpses"]
    assert env.observation_space["glimpse"].shape == (k, g, g)
    assert env.action_space["label"].n == 10
    obs, info = env.reset(seed=3)
    assert info == {"location": pytest.approx(np.zeros(2)), "step": 0}
    assert obs in env.observation_space
    for t in range(1, T + 1):
        action = {"location": np.array([0.1 * t - 0.3, -0.2], dtype=np.float32), "label": 0}
        obs, reward, terminated, truncated, info = env.step(action)
        np.testing.assert_array_equal(obs["location"], action["location"])
        assert info["step"] == t and not truncated
        if t < T:
            assert reward == 0.0 and not terminated
            assert "label" not in info and "correct" not in info and "prediction" not in info
    assert terminated
    assert set(info) == {"location", "step", "label", "prediction", "correct"}
    assert reward == float(info["correct"]) == float(info["label"] == 0)


def test_glimpse_is_the_retina_of_the_canvas():
    env = gym.make("GlimpseMNIST-Cluttered100-v0", split="val")
    env.reset(seed=0, options={"index": 11})
    location = np.array([0.37, -0.81], dtype=np.float32)
    obs, *_ = env.step({"location": location, "label": 1})
    unwrapped = env.unwrapped
    expected = unwrapped.task.retina(
        torch.from_numpy(unwrapped.canvas)[None], torch.from_numpy(location)[None]
    )
    np.testing.assert_array_equal(obs["glimpse"], expected[0].numpy())
    assert obs["glimpse"].max() <= 1.0 and obs["glimpse"].min() >= 0.0


def _episode(env, seed, n_episodes=3):
    env.action_space.seed(seed)
    trace = []
    obs, info = env.reset(seed=seed)
    trace.append((obs["glimpse"].copy(), obs["location"].copy()))
    for _ in range(n_episodes):
        terminated = False
        while not terminated:
            obs, reward, terminated, _, info = env.step(env.action_space.sample())
            trace.append((obs["glimpse"].copy(), obs["location"].copy(), reward))
        trace.append(info["label"])
        obs, info = env.reset()
        trace.append((obs["glimpse"].copy(), obs["location"].copy()))
    return trace


def _same(a, b):
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    return np.array_equal(a, b)


@pytest.mark.parametrize("kwargs", [{}, {"initial_location": "random"}, {"split": "test"}])
def test_same_seed_same_episodes(kwargs):
    a = _episode(gym.make("GlimpseMNIST-Cluttered-v0", **kwargs), seed=42)
    b = _episode(gym.make("GlimpseMNIST-Cluttered-v0", **kwargs), seed=42)
    c = _episode(gym.make("GlimpseMNIST-Cluttered-v0", **kwargs), seed=43)
    assert all(_same(x, y) for x, y in zip(a, b, strict=True))
    assert not all(_same(x, y) for x, y in zip(a, c, strict=True))


_CANVAS_DIGEST = (
    "import hashlib, gymnasium as gym, glimpse_env;"
    "env = gym.make('GlimpseMNIST-Cluttered60-v0', split='test');"
    "env.reset(seed={seed}, options={{'index': 7}});"
    "print(hashlib.sha256(env.unwrapped.canvas.tobytes()).hexdigest())"
)


def test_index_gives_the_same_canvas_in_another_process():
    env = gym.make("GlimpseMNIST-Cluttered60-v0", split="test")
    env.reset(seed=0, options={"index": 7})
    here = hashlib.sha256(env.unwrapped.canvas.tobytes()).hexdigest()
    out = subprocess.run(
        [sys.executable, "-c", _CANVAS_DIGEST.format(seed=999)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == here


def test_fixed_training_set():
    env = gym.make("GlimpseMNIST-Translated-v0", train_size=100)
    _, info = env.reset(seed=0, options={"index": 99})
    first = env.unwrapped.canvas.copy()
    env.reset(seed=5, options={"index": 99})
    assert np.array_equal(first, env.unwrapped.canvas) and info["index"] == 99
    seen = {env.reset()[1]["index"] for _ in range(300)}
    assert seen <= set(range(100)) and len(seen) > 90
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"index": 100})


def test_random_policy_scores_chance():
    env = gym.make("GlimpseMNIST-v0", split="test")
    env.action_space.seed(0)
    env.reset(seed=0)
    rewards = []
    for _ in range(3000):
        env.reset()
        terminated = False
        while not terminated:
            _, reward, terminated, _, _ = env.step(env.action_space.sample())
        rewards.append(reward)
    assert 0.08 < np.mean(rewards) < 0.12


@pytest.mark.parametrize(
    "env_id", ["GlimpseMNIST-v0", "GlimpseMNIST-Cluttered100-v0", "GlimpseMNIST-Fashion-v0"]
)
def test_reward_is_wired_to_the_label(env_id):
    env = gym.make(env_id, split="test")
    labels = load_split(env.unwrapped.config.dataset, "test").labels.numpy()
    rng = np.random.default_rng(0)
    told, wrong = [], []
    for i in rng.choice(len(labels), size=200, replace=False):
        for answer, sink in ((labels[i], told), ((labels[i] + 1) % 10, wrong)):
            env.reset(options={"index": int(i)})
            terminated = False
            while not terminated:
                location = rng.uniform(-1, 1, 2).astype(np.float32)
                _, reward, terminated, _, info = env.step({"location": location, "label": int(answer)})
            sink.append(reward)
            assert info["label"] == labels[i]
    assert np.mean(told) == 1.0
    assert np.mean(wrong) == 0.0


def test_render_shows_canvas_boxes_and_trail():
    env = gym.make("GlimpseMNIST-Cluttered-v0", render_mode="rgb_array", split="test")
    env.reset(seed=0, options={"index": 0})
    env.step({"location": np.array([0.5, 0.5], dtype=np.float32), "label": 0})
    frame = env.render()
    assert frame.shape == (280, 280, 3) and frame.dtype == np.uint8
    colours = {tuple(c) for c in frame.reshape(-1, 3)[::7]}
    assert (230, 25, 75) in colours  # box of scale 0
    assert (255, 225, 25) in colours  # trail


# --------------------------------------------------------------------------- bad input
def _started(env_id="GlimpseMNIST-v0"):
    env = gym.make(env_id)
    env.reset(seed=0)
    return env


GOOD_LOCATION = np.zeros(2, dtype=np.float32)


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        ([0.0, 0.0, 1], TypeError, "must be a dict"),
        ({"location": GOOD_LOCATION}, ValueError, "exactly the keys"),
        ({"location": GOOD_LOCATION, "label": 1, "extra": 0}, ValueError, "exactly the keys"),
        ({"location": np.zeros(3), "label": 1}, ValueError, "shape"),
        ({"location": np.zeros((1, 2)), "label": 1}, ValueError, "shape"),
        ({"location": [[0.5, 0.5]], "label": 1}, ValueError, "shape"),
        ({"location": [np.nan, 0.0], "label": 1}, ValueError, "NaN or infinite"),
        ({"location": [0.0, np.inf], "label": 1}, ValueError, "NaN or infinite"),
        ({"location": [1.5, 0.0], "label": 1}, ValueError, r"outside \[-1, 1\]"),
        ({"location": [0.0, -1.01], "label": 1}, ValueError, r"outside \[-1, 1\]"),
        (
            {"location": np.array([0.0, 1e300]), "label": 1},
            ValueError,
            r"outside \[-1, 1\]: \[0.0, 1e\+300\]",
        ),
        ({"location": GOOD_LOCATION, "label": 10}, ValueError, "outside the 10 classes"),
        ({"location": GOOD_LOCATION, "label": -1}, ValueError, "outside the 10 classes"),
        ({"location": GOOD_LOCATION, "label": 2**70}, ValueError, "outside the 10 classes"),
        ({"location": GOOD_LOCATION, "label": [1, 2]}, ValueError, "integer"),
    ],
)
def test_bad_actions_are_rejected(action, error, message):
    env = _started()
    with pytest.raises(error, match=message):
        env.step(action)
    # the episode is unharmed: a good action still works
    env.step({"location": GOOD_LOCATION, "label": 1})


NOT_REAL_LOCATIONS = [
    ([True, False], "bools"),
    (np.array([True, False]), "bools"),
    (torch.tensor([True, False]), "bools"),
    ([True, 0.5], "holds a bool"),
    ([0.5, np.True_], "holds a bool"),
    (["0.5", "0.1"], "strings"),
    ("ab", "strings"),
    ([0.5 + 0j, 0.1], "complex numbers"),
    (np.array([0.5, 0.1], dtype=np.complex64), "complex numbers"),
    (torch.tensor([0.5, 0.1], dtype=torch.complex64), "complex numbers"),
    (np.array([1, 2], dtype="timedelta64[s]"), "timedelta64"),
    ([np.timedelta64(1, "s"), 0.5], "Python objects"),
    ([None, 0.5], "Python objects"),
    ({"x": 0.5, "y": 0.1}, "Python objects"),
]


@pytest.mark.parametrize(("location", "message"), NOT_REAL_LOCATIONS)
def test_a_location_must_be_real_numbers(location, message):
    env = _started()
    with pytest.raises(TypeError, match=rf"action\['location'\] must be real numbers .*{message}"):
        env.step({"location": location, "label": 1})


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (True, "bools"),
        (np.True_, "bools"),
        (torch.tensor(True), "bools"),
        ([True], "bools"),
        (2.5, "float64"),
        (np.float32(3.0), "float32"),
        (torch.tensor(3.0), "float32"),
        ("3", "strings"),
        (np.timedelta64(3), "timedelta64"),
        (3 + 0j, "complex numbers"),
        (None, "Python objects"),
    ],
)
def test_a_label_must_be_an_integer(label, message):
    env = _started()
    with pytest.raises(TypeError, match=rf"action\['label'\] must be an integer .*{message}"):
        env.step({"location": GOOD_LOCATION, "label": label})


def test_a_meta_tensor_is_no_location():
    env = _started()
    with pytest.raises(ValueError, match=r"action\['location'\] is a tensor on the 'meta' device"):
        env.step({"location": torch.zeros(2, device="meta"), "label": 1})


@pytest.mark.parametrize(
    "location",
    [
        [1, 0],
        (0.25, -0.5),
        np.array([0.25, -0.5]),
        np.array([0.25, -0.5], dtype=np.float16),
        np.array([1, -1], dtype=np.int8),
        np.array([0, 1], dtype=np.uint64),
        torch.tensor([0.25, -0.5]),
        torch.tensor([0.25, -0.5], dtype=torch.float64),
        torch.tensor([0.25, -0.5], dtype=torch.bfloat16),
        torch.tensor([1, 0]),
        torch.tensor([0.25, -0.5], requires_grad=True),
    ],
    ids=repr,
)
def test_real_locations_of_any_kind_are_accepted(location):
    """Ints and floats of Python, numpy and torch; a tensor that requires grad is read detached."""
    values = location.detach().float().numpy() if isinstance(location, torch.Tensor) else location
    as_float32 = np.asarray(values).astype(np.float32)
    env, twin = _started(), _started()
    obs, *_ = env.step({"location": location, "label": 1})
    want, *_ = twin.step({"location": as_float32, "label": 1})
    np.testing.assert_array_equal(obs["location"], as_float32)
    np.testing.assert_array_equal(obs["glimpse"], want["glimpse"])
    assert obs["location"].dtype == np.float32
    if isinstance(location, torch.Tensor):
        assert location.grad is None  # nothing was recorded for autograd


@pytest.mark.parametrize(
    "label", [3, np.int64(3), np.uint8(3), np.int32(3), np.array(3), torch.tensor(3)], ids=repr
)
def test_integer_labels_of_any_kind_are_accepted(label):
    env = GlimpseEnv(n_glimpses=1, split="test")
    env.reset(options={"index": 0})
    *_, info = env.step({"location": GOOD_LOCATION, "label": label})
    assert info["prediction"] == 3 and type(info["prediction"]) is int


def _twin_runs(bad_action):
    """Two environments on one seed; one is also given ``bad_action`` mid-episode. Both then
    take the same steps (through an episode end and a reset): they must agree throughout."""
    env, twin = GlimpseEnv(n_glimpses=3), GlimpseEnv(n_glimpses=3)
    for e in (env, twin):
        e.reset(seed=7)
        e.step({"location": np.array([0.5, -0.5], np.float32), "label": 1})
    with pytest.raises((TypeError, ValueError)):
        env.step(bad_action)
    rng = np.random.default_rng(0)
    for _ in range(2):
        for _ in range(3 if env._t == 0 else 2):
            action = {"location": rng.uniform(-1, 1, 2).astype(np.float32), "label": int(rng.integers(10))}
            got, want = env.step(action), twin.step(action)
            np.testing.assert_array_equal(got[0]["glimpse"], want[0]["glimpse"])
            assert got[1:4] == want[1:4]
            assert got[4].keys() == want[4].keys() and got[4]["step"] == want[4]["step"]
        np.testing.assert_array_equal(env.reset()[0]["glimpse"], twin.reset()[0]["glimpse"])


@pytest.mark.parametrize(
    "bad_action",
    [
        {"location": [np.nan, 0.0], "label": 1},
        {"location": [True, False], "label": 1},
        {"location": GOOD_LOCATION, "label": 11},
        {"location": GOOD_LOCATION, "label": 2.0},
        {"location": torch.zeros(2, device="meta"), "label": 1},
        {"location": GOOD_LOCATION},
    ],
    ids=repr,
)
def test_a_rejected_step_changes_nothing(bad_action):
    _twin_runs(bad_action)


def test_observation_does_not_alias_the_action():
    env = _started()
    location = np.array([0.5, 0.5], dtype=np.float32)
    obs, *_ = env.step({"location": location, "label": 1})
    location[:] = -1.0  # the caller reuses its buffer
    np.testing.assert_array_equal(obs["location"], [0.5, 0.5])


def test_step_before_reset():
    env = GlimpseEnv()
    with pytest.raises(ResetNeeded, match="reset"):
        env.step({"location": GOOD_LOCATION, "label": 0})


def test_step_after_termination():
    env = GlimpseEnv(n_glimpses=2)
    env.reset(seed=0)
    env.step({"location": GOOD_LOCATION, "label": 0})
    *_, terminated, _, _ = env.step({"location": GOOD_LOCATION, "label": 0})
    assert terminated
    with pytest.raises(ResetNeeded, match="terminated"):
        env.step({"location": GOOD_LOCATION, "label": 0})


@pytest.mark.parametrize(
    ("kwargs", "options", "error", "message"),
    [
        ({"split": "test"}, {"index": 10_000}, ValueError, "out of range"),
        ({"split": "test"}, {"index": -1}, ValueError, "out of range"),
        ({"split": "val"}, {"index": 1.5}, TypeError, r"options\['index'\] must be one integer"),
        ({"split": "val"}, {"index": [3]}, TypeError, r"options\['index'\] must be one integer.*'indices'"),
        ({"split": "val"}, {"index": np.array([3])}, TypeError, r"options\['index'\] must be one integer"),
        ({"split": "val"}, {"index": np.array(3)}, TypeError, r"options\['index'\] must be one integer"),
        ({"split": "val"}, {"index": True}, TypeError, r"options\['index'\] must be one integer"),
        ({"split": "val"}, {"index": np.True_}, TypeError, r"options\['index'\] must be one integer"),
        ({"split": "val"}, {"index": "3"}, TypeError, r"options\['index'\] must be one integer"),
        ({}, {"index": 0}, ValueError, "fresh training canvas"),
        ({"split": "test"}, {"idx": 0}, ValueError, "unknown reset options"),
        ({"split": "test"}, "index", TypeError, "reset options must be a dict"),
        ({"split": "test"}, ["index", 3], TypeError, "reset options must be a dict"),
        ({"split": "test"}, (("index", 3),), TypeError, "reset options must be a dict"),
    ],
)
def test_bad_reset_options(kwargs, options, error, message):
    env = GlimpseEnv(**kwargs)
    with pytest.raises(error, match=message):
        env.reset(options=options)


@pytest.mark.parametrize("index", [3, np.int64(3), np.int16(3), np.uint32(3)], ids=repr)
def test_index_is_one_integer_of_any_kind(index):
    _, info = GlimpseEnv(split="val").reset(options={"index": index})
    assert info["index"] == 3 and type(info["index"]) is int


def test_a_rejected_reset_changes_nothing():
    """The seed of a reset whose options are bad is not applied."""
    env, twin = GlimpseEnv(split="val"), GlimpseEnv(split="val")
    env.reset(seed=1)
    twin.reset(seed=1)
    with pytest.raises(TypeError):
        env.reset(seed=99, options={"index": [3]})
    with pytest.raises(ValueError):
        env.reset(seed=99, options={"index": 10**6})
    for _ in range(3):
        (got, got_info), (want, want_info) = env.reset(), twin.reset()
        np.testing.assert_array_equal(got["glimpse"], want["glimpse"])
        assert got_info["index"] == want_info["index"]


def test_render_before_reset():
    with pytest.raises(ResetNeeded, match="reset"):
        GlimpseEnv(render_mode="rgb_array").render()
    with pytest.warns(UserWarning, match="render_mode"):
        assert GlimpseEnv().render() is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_glimpses": 0}, "n_glimpses"),
        ({"patch_size": 29}, "larger than the 28x28 canvas"),
        ({"variant": "translated", "canvas_size": 60, "patch_size": 61}, "larger than"),
        ({"split": "validation"}, "unknown split"),
        ({"dataset": "cifar10"}, "unknown dataset"),
        ({"n_scales": 0}, "n_scales"),
        ({"initial_location": "corner"}, "initial_location"),
        ({"initial_location": (2.0, 0.0)}, "initial_location"),
        ({"split": "test", "train_size": 10}, "train_size"),
        ({"train_size": 0}, "train_size"),
        ({"variant": "cluttered", "canvas_size": 40}, "n_clutter"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_invalid_settings_are_rejected_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GlimpseEnv(**kwargs)


def test_every_argument_can_be_overridden_through_make():
    env = gym.make(
        "GlimpseMNIST-Cluttered-v0", n_glimpses=4, patch_size=6, n_scales=2, canvas_size=(48, 64), n_clutter=3
    )
    obs, _ = env.reset(seed=0)
    assert obs["glimpse"].shape == (2, 6, 6)
    assert env.unwrapped.canvas.shape == (48, 64)
    assert env.unwrapped.config.n_glimpses == 4


def test_package_exports():
    assert glimpse_env.GlimpseEnv is GlimpseEnv


def test_a_timedelta_is_not_an_index():
    """numpy counts timedelta64 as an integer type; an index must be a real integer."""
    env = GlimpseEnv(split="val")
    with pytest.raises(TypeError, match="index"):
        env.reset(options={"index": np.timedelta64(3)})


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**40 + 3])
@pytest.mark.parametrize("count", [1, 2, 127, 128])
def test_fresh_episodes_draw_images_then_keys_as_generator_integers(seed: int, count: int) -> None:
    """A fresh episode's image and canvas key come from the generator as ``integers`` draws them
    (the keys read as the generator's raw words, which is what ``integers`` returns over the whole
    uint64 range): the same stream, and the generator left in the same state."""
    task = gym.make("GlimpseMNIST-Cluttered-v0").unwrapped.task
    rng, reference = np.random.default_rng(seed), np.random.default_rng(seed)
    episodes = task.sample(rng, count)
    images = reference.integers(0, task.images.shape[0], size=count, dtype=np.int64)
    keys = reference.integers(0, 2**64, size=count, dtype=np.uint64, endpoint=False)
    np.testing.assert_array_equal(episodes.dataset_indices, images)
    np.testing.assert_array_equal(episodes.keys, keys)
    assert episodes.keys.dtype == np.uint64
    assert rng.bit_generator.state == reference.bit_generator.state
