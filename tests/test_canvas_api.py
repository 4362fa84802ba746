"""CanvasSource: the exact canvases and labels the environments show, as batches."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import glimpse_env
from glimpse_env import CanvasSource, GlimpseVectorEnv, Retina
from glimpse_env.data import load_split

IDS = [
    "GlimpseMNIST-v0",
    "GlimpseMNIST-Cluttered-v0",
    "GlimpseMNIST-Cluttered100-v0",
    "GlimpseMNIST-Fashion-v0",
]


def final_label(env: gym.Env) -> int:
    """The true class an episode reveals on its terminal step (zero actions)."""
    action = {"location": np.zeros(2, dtype=np.float32), "label": 0}
    while True:
        *_, terminated, _, info = env.step(action)
        if terminated:
            return info["label"]


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("split", ["val", "test"])
def test_fixed_canvases_are_what_the_env_shows(env_id, split):
    source = CanvasSource.from_id(env_id, split=split)
    indices = [0, 7, len(source) - 1, 7]
    canvases, labels = source.fixed(indices)
    assert canvases.dtype == torch.uint8 and canvases.shape == (4, *source.shape)
    assert labels.dtype == torch.int64 and labels.shape == (4,)
    env = gym.make(env_id, split=split, render_mode="rgb_array")
    for row, index in enumerate(indices):
        _, info = env.reset(options={"index": index})
        assert info["index"] == index
        np.testing.assert_array_equal(canvases[row].numpy(), env.unwrapped.canvas)
        assert labels[row].item() == final_label(env)


def test_a_fixed_training_set_is_what_the_env_shows():
    source = CanvasSource.from_id("GlimpseMNIST-Cluttered60-v0", train_size=500, dataset_seed=3)
    assert len(source) == source.fixed_size == 500
    env = gym.make("GlimpseMNIST-Cluttered60-v0", train_size=500, dataset_seed=3)
    canvases, _ = source.fixed([499, 12])
    for row, index in enumerate([499, 12]):
        env.reset(options={"index": index})
        np.testing.assert_array_equal(canvases[row].numpy(), env.unwrapped.canvas)


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("seed", [0, 12345])
def test_fresh_canvas_of_a_seed_is_the_single_env_reset(env_id, seed):
    canvases, labels = CanvasSource.from_id(env_id).fresh(1, seed=seed)
    env = gym.make(env_id)
    env.reset(seed=seed)
    np.testing.assert_array_equal(canvases[0].numpy(), env.unwrapped.canvas)
    assert labels[0].item() == final_label(env)


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-Translated-v0", "GlimpseMNIST-Cluttered100-v0"])
def test_fresh_canvases_of_a_seed_are_the_vector_env_reset(env_id):
    """The vector env's first glimpses are the retina on ``fresh(N, seed)`` at the centre."""
    n, seed = 64, 7
    source = CanvasSource.from_id(env_id)
    canvases, labels = source.fresh(n, seed=seed)
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point")
    obs, _ = envs.reset(seed=seed)
    cfg = source.config
    retina = Retina(cfg.patch_size, cfg.n_scales, cfg.scale_factor)
    expected = retina(canvases, torch.zeros(n, 2))
    np.testing.assert_array_equal(obs["glimpse"], expected.numpy())
    action = {"location": np.zeros((n, 2), dtype=np.float32), "label": np.zeros(n, dtype=np.int64)}
    for _ in range(cfg.n_glimpses):
        *_, info = envs.step(action)
    np.testing.assert_array_equal(info["label"], labels.numpy())


def test_fresh_draws_from_a_generator_and_advances_it():
    source = CanvasSource.from_id("GlimpseMNIST-Cluttered-v0")
    rng = np.random.default_rng(5)
    first, _ = source.fresh(8, rng)
    second, _ = source.fresh(8, rng)
    assert not torch.equal(first, second)
    same, _ = source.fresh(8, np.random.default_rng(5))
    assert torch.equal(first, same)
    assert torch.equal(source.fresh(8, seed=5).canvases, first)


def test_batches_cover_the_fixed_set_in_order():
    source = CanvasSource.from_id("GlimpseMNIST-v0", split="test")
    assert len(source) == 10_000
    batches = list(source.batches(3000))
    assert [len(b.labels) for b in batches] == [3000, 3000, 3000, 1000]
    test = load_split("mnist", "test")
    # centred canvases are the dataset images themselves
    assert torch.equal(torch.cat([b.canvases for b in batches]), test.images)
    assert torch.equal(torch.cat([b.labels for b in batches]), test.labels)


@pytest.mark.parametrize(
    "indices", [[3, 1, 2], range(1, 4), np.array([3, 1, 2], dtype=np.uint16), torch.tensor([3, 1, 2])]
)
def test_fixed_takes_any_sequence_of_integers(indices):
    source = CanvasSource.from_id("GlimpseMNIST-Cluttered-v0", split="val")
    expected = [int(i) for i in indices]
    reference, _ = source.fixed(np.array(expected))
    canvases, labels = source.fixed(indices)
    assert torch.equal(canvases, reference)
    assert labels.tolist() == load_split("mnist", "val").labels[expected].tolist()


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([[1, 2]], "1-D"),
        ([1.0, 2.0], "integers"),
        ([], "non-empty"),
        (3, "1-D"),
        ([0, 5_000], r"index 5000 .* out of range: the val set has 5000 canvases"),
        ([-1], "out of range"),
    ],
)
def test_bad_indices(indices, message):
    source = CanvasSource.from_id("GlimpseMNIST-v0", split="val")
    with pytest.raises(ValueError, match=message):
        source.fixed(indices)


def test_fresh_and_fixed_say_which_kind_of_source_they_need():
    fresh = CanvasSource.from_id("GlimpseMNIST-v0")
    assert fresh.fixed_size is None
    with pytest.raises(TypeError, match="no fixed set"):
        len(fresh)
    with pytest.raises(ValueError, match="fresh training canvas"):
        fresh.fixed([0])
    fixed = CanvasSource.from_id("GlimpseMNIST-v0", split="test")
    with pytest.raises(ValueError, match="fixed set of 10000 canvases"):
        fixed.fresh(4, seed=0)
    with pytest.raises(TypeError, match="seed"):
        fresh.fresh(4, seed=1.5)
    with pytest.raises(ValueError, match="count"):
        fresh.fresh(0, seed=0)


def test_from_env_uses_the_env_settings_and_device():
    env = gym.make("GlimpseMNIST-Cluttered-v0", split="val", dataset_seed=9, n_glimpses=3)
    source = CanvasSource.from_env(env)
    assert source.config == env.unwrapped.config
    assert source.device == torch.device("cpu")
    reference = CanvasSource.from_id("GlimpseMNIST-Cluttered-v0", split="val", dataset_seed=9)
    assert torch.equal(source.fixed([4]).canvases, reference.fixed([4]).canvases)
    vector = CanvasSource.from_env(GlimpseVectorEnv(2, split="test"))
    assert vector.fixed_size == 10_000
    with pytest.raises(TypeError, match="GlimpseEnv or GlimpseVectorEnv"):
        CanvasSource.from_env(gym.make("CartPole-v1"))


def test_from_id_rejects_unknown_settings():
    with pytest.raises(TypeError, match=r"'splt' \(did you mean 'split'\?\)"):
        CanvasSource.from_id("GlimpseMNIST-v0", splt="test")
    with pytest.raises(TypeError, match="config must be a TaskConfig"):
        CanvasSource({"split": "test"})  # type: ignore[arg-type]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_canvases_on_the_gpu_equal_the_cpu_ones():
    env_id = "GlimpseMNIST-Cluttered100-v0"
    gpu = CanvasSource.from_id(env_id, split="test", device="cuda")
    cpu = CanvasSource.from_id(env_id, split="test")
    canvases, labels = gpu.fixed(torch.arange(256, device="cuda"))
    assert canvases.device.type == "cuda" and labels.device.type == "cuda"
    assert torch.equal(canvases.cpu(), cpu.fixed(range(256)).canvases)
    fresh_gpu = CanvasSource.from_id(env_id, device="cuda").fresh(64, seed=1)
    assert torch.equal(fresh_gpu.canvases.cpu(), CanvasSource.from_id(env_id).fresh(64, seed=1).canvases)


def test_exported():
    assert glimpse_env.CanvasSource is CanvasSource
    assert "CanvasSource" in glimpse_env.__all__ and "CanvasBatch" in glimpse_env.__all__
