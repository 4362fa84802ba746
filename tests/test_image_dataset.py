"""Your own images (glimpse_env.ImageDataset): MNIST through the arrays route is the registered
ids bit for bit, RGB images give RGB glimpses, the agents take them, and bad input is refused."""

from __future__ import annotations

import copy
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import glimpse_env
from agents.evaluate import RAMPolicy
from agents.ram import ModelConfig, RecurrentAttentionModel
from baselines.models import as_inputs, build_model
from glimpse_env import CanvasSource, GlimpseEnv, GlimpseVectorEnv, ImageDataset
from glimpse_env.data import load_split
from glimpse_env.evaluation import RandomPolicy, evaluate
from glimpse_env.retina import Retina

CLUTTERED = "GlimpseMNIST-Cluttered-v0"


@pytest.fixture(scope="module")
def mnist_arrays() -> ImageDataset:
    """MNIST's own arrays: the official training set (train + val, in order) and the test set,
    named "mnist" so that its fixed canvases have MNIST's keys."""
    train, val, test = (load_split("mnist", split) for split in ("train", "val", "test"))
    images = torch.cat([train.images, val.images]).numpy()
    labels = torch.cat([train.labels, val.labels]).numpy()
    return ImageDataset(train=(images, labels), test=(test.images.numpy(), test.labels.numpy()), name="mnist")


def tinted(split: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` real MNIST digits of ``split``, each tinted by a colour of its own:
    ``(N, 28, 28, 3)`` uint8 (digit * (r, g, b) / 255) and their labels."""
    data = load_split("mnist", split)
    digits = data.images[:count].numpy().astype(np.uint32)
    colours = np.random.default_rng(seed).integers(64, 256, size=(count, 3)).astype(np.uint32)
    return (digits[..., None] * colours[:, None, None, :] // 255).astype(np.uint8), data.labels[
        :count
    ].numpy()


@pytest.fixture(scope="module")
def rgb() -> ImageDataset:
    return ImageDataset(
        train=tinted("train", 3000, 0), val=tinted("val", 300, 1), test=tinted("test", 400, 2)
    )


def channel_dataset(rgb: ImageDataset, channel: int) -> ImageDataset:
    """The grayscale dataset of one channel of ``rgb``, with its splits and name."""

    def one(split: str) -> tuple[np.ndarray, np.ndarray]:
        data = rgb.split(split)
        return data.images[:, channel].numpy(), data.labels.numpy()

    return ImageDataset(train=one("train"), val=one("val"), test=one("test"), name=rgb.name)


def play(env: gym.Env, seed: int, steps: int, index: int | None = None) -> list[tuple]:
    """The observations, rewards and ends of ``steps`` steps from ``reset(seed)``, actions from a
    seeded action space."""
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed, options=None if index is None else {"index": index})
    trace: list[tuple] = [(obs["glimpse"], obs["location"])]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        trace.append((obs["glimpse"], obs["location"], reward, terminated, truncated))
        if terminated:
            obs, _ = env.reset()
            trace.append((obs["glimpse"], obs["location"]))
    return trace


def assert_same_trace(one: list[tuple], other: list[tuple]) -> None:
    assert len(one) == len(other)
    for a, b in zip(one, other, strict=True):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


# ----------------------------------------------------------------------------- MNIST, as arrays
def test_val_is_carved_by_mnists_rule(mnist_arrays: ImageDataset) -> None:
    for split in ("train", "val", "test"):
        ours, theirs = mnist_arrays.split(split), load_split("mnist", split)
        assert torch.equal(ours.images, theirs.images) and torch.equal(ours.labels, theirs.labels)
    assert mnist_arrays.val_carved and mnist_arrays.split_sizes == {
        "train": 55_000,
        "val": 5_000,
        "test": 10_000,
    }
    assert mnist_arrays.num_classes == 10 and mnist_arrays.class_names == tuple("0123456789")
    assert (mnist_arrays.channels, mnist_arrays.image_shape) == (1, (28, 28))


@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", CLUTTERED, "GlimpseMNIST-Translated-v0"])
def test_mnist_arrays_step_as_the_registered_id(mnist_arrays: ImageDataset, env_id: str) -> None:
    """Fresh training episodes (any name) and fixed test canvases (name "mnist"): the same
    observations, rewards and ends, step by step, for the same seed."""
    steps = 2 * gym.spec(env_id).kwargs["n_glimpses"] + 1
    assert_same_trace(
        play(gym.make(env_id), 7, steps), play(gym.make(env_id, dataset=mnist_arrays), 7, steps)
    )
    test_env, ours = gym.make(env_id, split="test"), gym.make(env_id, split="test", dataset=mnist_arrays)
    assert_same_trace(play(test_env, 3, 4, index=1234), play(ours, 3, 4, index=1234))
    np.testing.assert_array_equal(test_env.unwrapped.canvas, ours.unwrapped.canvas)
    assert ours.observation_space == test_env.observation_space
    assert ours.action_space == test_env.action_space


def test_mnist_arrays_in_the_vector_env_and_the_canvas_source(mnist_arrays: ImageDataset) -> None:
    kwargs = {"num_envs": 6, "vectorization_mode": "vector_entry_point"}
    theirs, ours = gym.make_vec(CLUTTERED, **kwargs), gym.make_vec(CLUTTERED, dataset=mnist_arrays, **kwargs)
    for env in (theirs, ours):
        env.action_space.seed(5)
    obs_a, _ = theirs.reset(seed=11)
    obs_b, _ = ours.reset(seed=11)
    np.testing.assert_array_equal(obs_a["glimpse"], obs_b["glimpse"])
    for _ in range(7):
        action = theirs.action_space.sample()
        step_a, step_b = theirs.step(action), ours.step(action)
        np.testing.assert_array_equal(step_a[0]["glimpse"], step_b[0]["glimpse"])
        np.testing.assert_array_equal(step_a[1], step_b[1])
    val = CanvasSource.from_id(CLUTTERED, split="val").fixed(range(50))
    ours_val = CanvasSource.from_id(CLUTTERED, split="val", dataset=mnist_arrays).fixed(range(50))
    assert torch.equal(val.canvases, ours_val.canvases) and torch.equal(val.labels, ours_val.labels)
    fresh = CanvasSource.from_id(CLUTTERED).fresh(20, seed=4)
    assert torch.equal(
        CanvasSource.from_id(CLUTTERED, dataset=mnist_arrays).fresh(20, seed=4).canvases, fresh.canvases
    )


def test_an_explicit_val_split_is_taken_as_it_is() -> None:
    train, val, test = (load_split("mnist", split) for split in ("train", "val", "test"))
    dataset = ImageDataset(train=tuple(train), val=tuple(val), test=tuple(test), name="mnist")
    assert not dataset.val_carved and dataset.split_sizes == {"train": 55_000, "val": 5_000, "test": 10_000}
    theirs = GlimpseEnv(split="val", variant="translated")
    ours = GlimpseEnv(split="val", variant="translated", dataset=dataset)
    assert_same_trace(play(theirs, 0, 3, index=42), play(ours, 0, 3, index=42))
    small = ImageDataset(
        train=(train.images[:120], train.labels[:120]), test=(test.images[:5], test.labels[:5])
    )
    assert small.split_sizes == {"train": 110, "val": 10, "test": 5}  # one in twelve held out
    assert ImageDataset(
        train=(train.images[:120], train.labels[:120]), test=(test.images[:5], test.labels[:5]), val_size=20
    ).split_sizes == {"train": 100, "val": 20, "test": 5}


# ----------------------------------------------------------------------------- RGB
@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", CLUTTERED, "GlimpseMNIST-Fashion-v0"])
def test_rgb_glimpses_are_each_channels_glimpses(rgb: ImageDataset, env_id: str) -> None:
    """RGB canvases are placed and cluttered alike in every channel, and every scale averages
    each channel: channel ``c`` of scale ``i`` (index ``i * 3 + c``) is the glimpse of the
    grayscale environment of channel ``c``, in the single and the vector environment."""
    spec = gym.spec(env_id).kwargs
    k, g = spec["n_scales"], spec["patch_size"]
    env = gym.make(env_id, dataset=rgb)
    assert env.observation_space["glimpse"].shape == (3 * k, g, g)
    traces = [play(gym.make(env_id, dataset=channel_dataset(rgb, c)), 9, 7) for c in range(3)]
    for step, (glimpse, location, *_) in enumerate(play(env, 9, 7)):
        assert glimpse.shape == (3 * k, g, g)
        for c in range(3):
            np.testing.assert_array_equal(glimpse[c::3], traces[c][step][0])
            np.testing.assert_array_equal(location, traces[c][step][1])
    assert env.unwrapped.canvas.shape == (3, *env.unwrapped.config.canvas.shape)
    vector = GlimpseVectorEnv(
        5, **{**spec, "dataset": rgb}
    )  # padded crops for one scale, else integral images
    grey = [GlimpseVectorEnv(5, **{**spec, "dataset": channel_dataset(rgb, c)}) for c in range(3)]
    obs, _ = vector.reset(seed=2)
    assert obs["glimpse"].shape == (5, 3 * k, g, g)
    for c, other in enumerate(grey):
        np.testing.assert_array_equal(obs["glimpse"][:, c::3], other.reset(seed=2)[0]["glimpse"])
    locations = np.random.default_rng(0).uniform(-1, 1, (5, 2)).astype(np.float32)
    action = {"location": locations, "label": np.zeros(5, dtype=np.int64)}
    after = vector.step(action)[0]["glimpse"]
    for c, other in enumerate(grey):
        np.testing.assert_array_equal(after[:, c::3], other.step(action)[0]["glimpse"])
    # a partial reset writes into the (N, C, ...) buffers too
    reset = vector.reset(options={"reset_mask": np.array([True, False, True, False, False])})[0]["glimpse"]
    for c, other in enumerate(grey):
        mask = np.array([True, False, True, False, False])
        np.testing.assert_array_equal(reset[:, c::3], other.reset(options={"reset_mask": mask})[0]["glimpse"])


def test_rgb_glimpses_equal_the_retina_on_the_canvas(rgb: ImageDataset) -> None:
    """The observation is the retina on the episode's ``(3, H, W)`` canvas at its location."""
    env = GlimpseEnv(
        dataset=rgb,
        variant="cluttered",
        canvas_size=(36, 44),
        n_clutter=3,
        clutter_size=6,
        patch_size=5,
        n_scales=3,
    )
    obs, _ = env.reset(seed=1)
    retina = Retina(5, 3, 2)
    for _ in range(3):
        canvas = torch.from_numpy(env.canvas)[None]  # (1, 3, 36, 44)
        expected = retina(canvas, torch.from_numpy(obs["location"])[None])[0].numpy()
        np.testing.assert_array_equal(obs["glimpse"], expected)
        obs = env.step({"location": np.float32([0.3, -0.6]), "label": 0})[0]


def test_rgb_canvas_source_and_rendering(rgb: ImageDataset) -> None:
    source = CanvasSource.from_id(CLUTTERED, dataset=rgb, split="test")
    batch = source.fixed(range(8))
    assert batch.canvases.shape == (8, 3, 40, 40) and batch.canvases.dtype == torch.uint8
    assert source.channels == 3 and len(source) == 400
    for c in range(3):
        grey = CanvasSource.from_id(CLUTTERED, dataset=channel_dataset(rgb, c), split="test").fixed(range(8))
        assert torch.equal(batch.canvases[:, c], grey.canvases)
    env = gym.make(CLUTTERED, dataset=rgb, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (280, 280, 3)
    canvas = np.moveaxis(env.unwrapped.canvas, 0, -1)
    assert (frame[::7, ::7] == canvas).any(axis=2).mean() > 0.5  # the canvas in colour, under the drawings


def test_images_of_any_size_and_classes() -> None:
    """Non-square 12x20 images, 13 classes (one never seen), a canvas smaller than MNIST's."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 12, 20), dtype=np.uint8)
    labels = rng.integers(0, 12, size=40)
    dataset = ImageDataset(train=(images, labels), test=(images[:9], labels[:9]), num_classes=13)
    centred = GlimpseEnv(dataset=dataset, patch_size=4)
    assert centred.config.canvas.shape == (12, 20)
    assert centred.action_space["label"].n == 13
    centred.reset(seed=0)
    assert any(np.array_equal(centred.canvas, image) for image in dataset.train.images.numpy())
    env = gym.make(CLUTTERED, dataset=dataset, canvas_size=(16, 24), clutter_size=4, patch_size=4, n_scales=2)
    obs, _ = env.reset(seed=0)
    assert obs["glimpse"].shape == (2, 4, 4) and env.unwrapped.canvas.shape == (16, 24)
    with pytest.raises(ValueError, match="train_size must be an integer in"):
        GlimpseEnv(dataset=dataset, train_size=dataset.split_sizes["train"] + 1)
    result = evaluate(
        RandomPolicy(13, seed=0),
        CLUTTERED,
        dataset=dataset,
        canvas_size=(16, 24),
        clutter_size=4,
        patch_size=4,
        n_scales=2,
    )
    assert result.n == 9 and len(result.per_class) == 13


def test_from_torchvision_reads_data_and_targets() -> None:
    """Anything with torchvision's ``.data``, ``.targets`` and ``.classes`` (nothing downloaded)."""

    class CIFAR10:  # torchvision's layout: numpy (N, 32, 32, 3) uint8, a list of ints
        def __init__(self, count: int) -> None:
            self.data = np.random.default_rng(count).integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
            self.targets = [i % 10 for i in range(count)]
            self.classes = [
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ]

    dataset = ImageDataset.from_torchvision(CIFAR10(60), CIFAR10(12))
    assert dataset.name == "CIFAR10" and dataset.class_names[3] == "cat" and dataset.num_classes == 10
    assert dataset.channels == 3 and dataset.image_shape == (32, 32) and dataset.split_sizes["val"] == 5
    assert torch.equal(dataset.test.images, torch.from_numpy(CIFAR10(12).data).permute(0, 3, 1, 2))
    env = gym.make("GlimpseMNIST-Translated-v0", dataset=dataset)
    assert env.observation_space["glimpse"].shape == (9, 12, 12)
    with pytest.raises(TypeError, match=r"has no \.data and \.targets"):
        ImageDataset.from_torchvision(object(), CIFAR10(12))


def test_the_dataset_is_immutable_and_copies_are_itself(rgb: ImageDataset) -> None:
    assert copy.deepcopy(rgb) is rgb and copy.copy(rgb) is rgb
    with pytest.raises(AttributeError, match="immutable"):
        rgb.num_classes = 3  # type: ignore[misc]
    env = GlimpseEnv(dataset=rgb, variant="translated", canvas_size=40, n_scales=2)
    again = pickle.loads(pickle.dumps(env))  # the pickle carries the images
    assert_same_trace(play(env, 4, 3), play(again, 4, 3))
    assert repr(rgb).startswith("ImageDataset(name='custom', RGB 28x28 images, 10 classes, train=3000")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_rgb_canvases_and_glimpses_on_the_gpu_equal_the_cpus(rgb: ImageDataset) -> None:
    """The torch steps of the canvases (placement and clutter, every channel) and the retina on
    a GPU give the CPU's (numpy) bits, for the padded crops and the integral images."""
    for env_id in ("GlimpseMNIST-v0", CLUTTERED):
        cpu = CanvasSource.from_id(env_id, dataset=rgb, split="test").fixed(range(64))
        gpu = CanvasSource.from_id(env_id, dataset=rgb, split="test", device="cuda").fixed(range(64))
        assert torch.equal(gpu.canvases.cpu(), cpu.canvases) and torch.equal(gpu.labels.cpu(), cpu.labels)
        settings = {**gym.spec(env_id).kwargs, "dataset": rgb}
        on_cpu, on_gpu = GlimpseVectorEnv(16, **settings), GlimpseVectorEnv(16, device="cuda", **settings)
        np.testing.assert_array_equal(on_cpu.reset(seed=3)[0]["glimpse"], on_gpu.reset(seed=3)[0]["glimpse"])
        action = {"location": np.full((16, 2), 0.37, np.float32), "label": np.zeros(16, np.int64)}
        np.testing.assert_array_equal(on_cpu.step(action)[0]["glimpse"], on_gpu.step(action)[0]["glimpse"])


# ----------------------------------------------------------------------------- the agents
def test_a_ram_built_from_an_rgb_space_plays_and_is_evaluated(rgb: ImageDataset) -> None:
    envs = gym.make_vec(
        CLUTTERED,
        num_envs=4,
        vectorization_mode="vector_entry_point",
        dataset=rgb,
        autoreset_mode=AutoresetMode.DISABLED,
    )
    shape = tuple(envs.single_observation_space["glimpse"].shape)
    config = ModelConfig(glimpse_shape=shape, num_classes=int(envs.single_action_space["label"].n))  # type: ignore[arg-type]
    assert config.glimpse_shape == (9, 12, 12) and config.num_classes == 10
    model = RecurrentAttentionModel(config)
    obs, _ = envs.reset(seed=0)
    state = model.initial_state(4)
    out = model.step(torch.from_numpy(obs["glimpse"]), torch.from_numpy(obs["location"]), state)
    assert model.classify(out.state).shape == (4, 10) and out.location_mean.shape == (4, 2)
    result = evaluate(RAMPolicy(model, std=0.1, n_glimpses=6), CLUTTERED, episodes=8, num_envs=4, dataset=rgb)
    assert result.n == 8 and 0.0 <= result.accuracy <= 1.0


@pytest.mark.parametrize("name", ["cnn", "self_attention"])
def test_a_baseline_builds_for_rgb_canvases_and_runs(rgb: ImageDataset, name: str) -> None:
    source = CanvasSource.from_id(CLUTTERED, dataset=rgb, split="val")
    model = build_model(name, source.shape, source.num_classes, in_channels=source.channels)
    canvases = source.fixed(range(6)).canvases
    inputs = as_inputs(canvases)
    assert inputs.shape == (6, 3, 40, 40)
    assert model(inputs).shape == (6, 10)
    grey = build_model(name, source.shape, source.num_classes)
    with pytest.raises(RuntimeError):  # a grayscale model refuses RGB canvases
        grey(inputs)


# ----------------------------------------------------------------------------- bad input
GOOD_X = np.zeros((4, 8, 8), dtype=np.uint8)
GOOD_Y = np.array([0, 1, 2, 1])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"train": (GOOD_X.astype(np.float32), GOOD_Y)},
            TypeError,
            r"train images must be uint8 .* got float32",
        ),
        (
            {"train": (GOOD_X[0], GOOD_Y)},
            ValueError,
            r"train images must be \(N, H, W\) .* got shape \(8, 8\)",
        ),
        (
            {"train": (GOOD_X[..., None, None], GOOD_Y)},
            ValueError,
            r"must be \(N, H, W\) \(grayscale\) or \(N, H, W, 3\)",
        ),
        (
            {"train": (np.zeros((4, 3, 8, 8), np.uint8), GOOD_Y)},
            ValueError,
            r"look channels first; .*images\.transpose\(0, 2, 3, 1\)",
        ),
        (
            {"train": (GOOD_X, GOOD_Y[:3])},
            ValueError,
            "train has 3 labels for 4 images; give exactly one label",
        ),
        (
            {"train": (GOOD_X, GOOD_Y.astype(np.float64))},
            TypeError,
            r"train labels must be integers .* got float64",
        ),
        (
            {"train": (GOOD_X, np.array([0, -1, 2, 1]))},
            ValueError,
            r"train labels must be class indices >= 0, got -1 \(at index 1\)",
        ),
        ({"train": (GOOD_X, GOOD_Y[:, None])}, ValueError, "train labels must be 1-D"),
        ({"num_classes": 2}, ValueError, r"num_classes=2 but train has label 2: .* num_classes >= 3"),
        (
            {"test": (np.zeros((2, 9, 8), np.uint8), GOOD_Y[:2])},
            ValueError,
            "test images are 9x8 but train images are 8x8",
        ),
        ({"test": GOOD_X}, TypeError, r"test must be an \(images, labels\) pair"),
        ({"train": (GOOD_X[:1], GOOD_Y[:1])}, ValueError, "too few to carve a val split"),
        ({"class_names": ("a", "b")}, ValueError, "2 class_names for 3 classes"),
        ({"train": (np.zeros((4, 600, 8), np.uint8), GOOD_Y)}, ValueError, "every side must be 1 to 512"),
    ],
)
def test_bad_input_is_refused_in_one_line(kwargs: dict, error: type[Exception], message: str) -> None:
    arguments = {"train": (GOOD_X, GOOD_Y), "test": (GOOD_X, GOOD_Y), **kwargs}
    with pytest.raises(error, match=message) as raised:
        ImageDataset(**arguments)
    assert str(raised.value).startswith("ImageDataset: ") and "\n" not in str(raised.value)


def test_images_larger_than_the_canvas_are_refused_naming_the_fix() -> None:
    big = np.zeros((20, 64, 48), dtype=np.uint8)
    dataset = ImageDataset(train=(big, np.arange(20) % 3), test=(big[:2], np.arange(2)), name="big")
    with pytest.raises(
        ValueError, match=r"canvas_size=40 is smaller than the 64x48 images of 'big'.*canvas_size=64"
    ):
        gym.make(CLUTTERED, dataset=dataset)
    with pytest.raises(ValueError, match=r"larger than the default 60x60 canvas; pass canvas_size >= 64"):
        GlimpseVectorEnv(2, dataset=dataset, variant="translated")
    with pytest.raises(ValueError, match=r"clutter_size must be in \[1, 48\]"):
        CanvasSource.from_id(CLUTTERED, dataset=dataset, canvas_size=64, clutter_size=50)
    with pytest.raises(ValueError, match="a centred canvas is the 64x48 image itself"):
        GlimpseEnv(dataset=dataset, canvas_size=64)
    assert gym.make(CLUTTERED, dataset=dataset, canvas_size=(64, 64)).observation_space["glimpse"].shape == (
        3,
        12,
        12,
    )


def test_a_dataset_that_is_neither_a_name_nor_an_image_dataset_is_refused() -> None:
    with pytest.raises(TypeError, match=r"wrap your own arrays: dataset=ImageDataset\(train="):
        GlimpseEnv(dataset=(GOOD_X, GOOD_Y))
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'"):
        GlimpseEnv(dataset="cifar10")
    assert glimpse_env.ImageDataset is ImageDataset
