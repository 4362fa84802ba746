"""Copies of environments and retinas: ``copy.deepcopy``, ``pickle`` and ``cloudpickle``.

A copy must glimpse exactly as the original would (and as a fresh environment driven the
same way does), whether it was taken after a reset or in the middle of an episode; and a
pickle must not carry the dataset.
"""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import torch

from glimpse_env import GlimpseVectorEnv
from glimpse_env.retina import Retina

COPIERS: dict[str, Callable[[Any], Any]] = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda obj: pickle.loads(pickle.dumps(obj)),
    "cloudpickle": lambda obj: cloudpickle.loads(cloudpickle.dumps(obj)),
}
ENV_IDS = ("GlimpseMNIST-v0", "GlimpseMNIST-Cluttered-v0")  # one scale on 28x28; three on 40x40
N = 4  # sub-environments of the vector env
MAX_PICKLE_BYTES = 1_000_000  # MNIST's training split alone is 47.5 MB


def single_actions(steps: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {"location": rng.uniform(-1, 1, 2).astype(np.float32), "label": int(rng.integers(10))}
        for _ in range(steps)
    ]


def vector_actions(steps: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {"location": rng.uniform(-1, 1, (N, 2)).astype(np.float32), "label": rng.integers(0, 10, N)}
        for _ in range(steps)
    ]


def make_vec(env_id: str) -> GlimpseVectorEnv:
    envs = gym.make_vec(env_id, num_envs=N, vectorization_mode="vector_entry_point")
    assert isinstance(envs, GlimpseVectorEnv)
    return envs


def run_single(env: gym.Env, actions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Observations and rewards of ``actions``, resetting (unseeded) after each episode."""
    out = []
    for action in actions:
        obs, reward, terminated, _, _ = env.step(action)
        out.append((obs["glimpse"], obs["location"], reward, terminated))
        if terminated:
            obs, _ = env.reset()
            out.append((obs["glimpse"], obs["location"]))
    return out


def run_vector(envs: GlimpseVectorEnv, actions: list[dict[str, np.ndarray]]) -> list[tuple[Any, ...]]:
    """Observations, rewards and terminations of ``actions`` (next-step autoreset included)."""
    out = []
    for action in actions:
        obs, reward, terminated, _, _ = envs.step(action)
        out.append((obs["glimpse"], obs["location"], reward, terminated))
    return out


def assert_same(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    assert len(got) == len(expected)
    for got_step, expected_step in zip(got, expected, strict=True):
        for a, b in zip(got_step, expected_step, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("copier", list(COPIERS))
@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("steps_before", [0, 3], ids=["after-reset", "mid-episode"])
def test_copy_of_single_env_glimpses_as_a_fresh_one(copier, env_id, steps_before):
    history = single_actions(steps_before, seed=1)
    future = single_actions(20, seed=2)  # crosses episode ends: unseeded resets from the copied rng
    env = gym.make(env_id)
    env.reset(seed=0)
    run_single(env, history)
    copied = COPIERS[copier](env)

    fresh = gym.make(env_id)
    fresh.reset(seed=0)
    run_single(fresh, history)
    expected = run_single(fresh, future)
    assert_same(run_single(copied, future), expected)
    assert_same(run_single(env, future), expected)  # the original is untouched by its copy
    # the copy is a new environment: reseeded, it shows what any environment shows on that seed
    obs, _ = copied.reset(seed=1)
    reference, _ = gym.make(env_id).reset(seed=1)
    np.testing.assert_array_equal(obs["glimpse"], reference["glimpse"])
    np.testing.assert_array_equal(obs["location"], reference["location"])


@pytest.mark.parametrize("copier", list(COPIERS))
@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("steps_before", [0, 3], ids=["after-reset", "mid-episode"])
def test_copy_of_vector_env_glimpses_as_a_fresh_one(copier, env_id, steps_before):
    history = vector_actions(steps_before, seed=1)
    future = vector_actions(16, seed=2)  # two next-step autoresets of the whole batch
    envs = make_vec(env_id)
    envs.reset(seed=0)
    run_vector(envs, history)
    copied = COPIERS[copier](envs)
    assert copied._prepared[0] is copied._buffer  # the canvases the retina reads are the copy's own

    fresh = make_vec(env_id)
    fresh.reset(seed=0)
    run_vector(fresh, history)
    expected = run_vector(fresh, future)
    assert_same(run_vector(copied, future), expected)
    assert_same(run_vector(envs, future), expected)
    obs, _ = copied.reset(seed=1)
    reference, _ = make_vec(env_id).reset(seed=1)
    np.testing.assert_array_equal(obs["glimpse"], reference["glimpse"])
    np.testing.assert_array_equal(obs["location"], reference["location"])


def test_copy_of_a_retina_glimpses_as_a_fresh_one():
    """Plans are per table shape and kind: a copy builds its own, torch and numpy alike."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (5, 30, 34), dtype=torch.uint8, generator=generator)
    before, after = (torch.rand(5, 2, generator=generator) * 2 - 1 for _ in range(2))
    retina = Retina(6, 3, 2)
    integral = retina.integral(images)
    retina.from_integral(integral, before)  # plans of both kinds, holding `before`'s edges
    retina.from_integral(integral.numpy(), before.numpy())
    fresh = Retina(6, 3, 2)
    expected = fresh.from_integral(integral, after)
    for name, copier in COPIERS.items():
        copied = copier(retina)
        assert copied.config == retina.config, name
        torch.testing.assert_close(copied.from_integral(integral, after), expected, rtol=0, atol=0)
        glimpses = copied.from_integral(integral.numpy(), after.numpy())
        np.testing.assert_array_equal(glimpses, expected.numpy())
    # the original is untouched by its copies
    torch.testing.assert_close(retina.from_integral(integral, after), expected, rtol=0, atol=0)


@pytest.mark.parametrize("copier", ["pickle", "cloudpickle"])
def test_pickle_of_single_env_is_small_and_works(copier):
    """The dataset is reloaded by its key on unpickling, not carried in the pickle."""
    dumps = pickle.dumps if copier == "pickle" else cloudpickle.dumps
    env = gym.make("GlimpseMNIST-v0")
    env.reset(seed=0)
    blob = dumps(env)
    assert len(blob) < MAX_PICKLE_BYTES
    copied = pickle.loads(blob)
    assert copied.unwrapped.task.images is env.unwrapped.task.images  # the process-wide cached split
    assert_same(run_single(copied, single_actions(8, seed=3)), run_single(env, single_actions(8, seed=3)))


def test_pickle_of_vector_env_does_not_carry_the_dataset():
    envs = make_vec("GlimpseMNIST-v0")
    envs.reset(seed=0)
    assert len(pickle.dumps(envs)) < MAX_PICKLE_BYTES


_UNPICKLE_AND_STEP = """
import pickle, sys
import numpy as np
env = pickle.loads(sys.stdin.buffer.read())
obs, *_ = env.step({"location": np.array([0.25, -0.5], dtype=np.float32), "label": 3})
sys.stdout.buffer.write(pickle.dumps(obs["glimpse"]))
"""


def test_pickled_env_steps_the_same_in_a_new_process():
    """A new process has no cached dataset: unpickling loads (and verifies) it from the files."""
    env = gym.make("GlimpseMNIST-Cluttered-v0", split="test")
    env.reset(seed=0, options={"index": 11})
    out = subprocess.run(
        [sys.executable, "-c", _UNPICKLE_AND_STEP], input=pickle.dumps(env), capture_output=True, check=True
    )
    obs, *_ = env.step({"location": np.array([0.25, -0.5], dtype=np.float32), "label": 3})
    np.testing.assert_array_equal(pickle.loads(out.stdout), obs["glimpse"])
