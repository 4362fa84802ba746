"""The settings: one typed definition (TaskConfig), the registered ids, and bad settings."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import glimpse_env
from glimpse_env import ENV_SPECS, GlimpseEnv, GlimpseVectorEnv, TaskConfig
from glimpse_env.canvas import MAX_CANVAS_SIDE, MAX_CLUTTER
from glimpse_env.data import SPLIT_SIZES, load_split
from glimpse_env.task import MAX_GLIMPSES, MAX_SCALE_RATIO, MAX_SCALES, SETTINGS, TaskSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


# ---------------------------------------------------------------- one definition


def test_typed_dict_mirrors_the_dataclass():
    fields = [f.name for f in dataclasses.fields(TaskConfig) if f.init]
    assert list(TaskSettings.__annotations__) == fields == list(SETTINGS)
    config_types = typing.get_type_hints(TaskConfig)
    assert typing.get_type_hints(TaskSettings) == {name: config_types[name] for name in fields}


def test_the_fixed_set_size_is_the_tasks():
    val = GlimpseEnv(split="val").task
    assert TaskConfig(split="val").fixed_set_size == SPLIT_SIZES["val"] == val.n_samples
    assert TaskConfig(split="test").fixed_set_size == SPLIT_SIZES["test"]
    assert TaskConfig(train_size=7).fixed_set_size == 7 == GlimpseVectorEnv(2, train_size=7).task.n_samples
    assert TaskConfig().fixed_set_size is None is GlimpseEnv().task.n_samples  # a fresh canvas every episode


def test_env_defaults_are_the_dataclass_defaults():
    assert GlimpseEnv().config == TaskConfig()
    assert GlimpseVectorEnv(2).config == TaskConfig()


def test_every_setting_is_documented_in_the_env_docstring_and_the_readme():
    arguments = GlimpseEnv.__doc__.split("## Arguments")[1].split("## Vectorized")[0]
    for name in (*SETTINGS, "data_dir", "render_mode"):
        assert f"``{name}``" in arguments, name
        assert f"`{name}`" in README, name
    for limit in (MAX_CANVAS_SIDE, MAX_CLUTTER, MAX_GLIMPSES, MAX_SCALES, MAX_SCALE_RATIO):
        assert str(limit) in arguments
        assert re.search(rf"\b{limit}\b", README)


@pytest.mark.parametrize("spec", ENV_SPECS, ids=lambda spec: spec.env_id)
def test_registered_kwargs_are_complete_settings(spec):
    registered = gym.spec(spec.env_id).kwargs
    assert registered == spec.kwargs
    assert registered["scale_factor"] == 2
    assert set(registered) <= set(SETTINGS)
    env = gym.make(spec.env_id)
    assert env.unwrapped.config == TaskConfig(**spec.kwargs)
    envs = gym.make_vec(spec.env_id, num_envs=2, vectorization_mode="vector_entry_point")
    assert envs.config == TaskConfig(**spec.kwargs)


def test_settings_round_trip_and_are_plain_python_values():
    config = TaskConfig(
        variant="translated",
        canvas_size=(np.int64(48), torch.tensor(64)),
        patch_size=np.int32(12),
        n_scales=np.uint8(2),
        initial_location=np.array([0.25, -0.5], dtype=np.float32),
        dataset_seed=np.uint64(2**64 - 1),
    )
    assert config.canvas_size == (48, 64) and config.canvas.shape == (48, 64)
    assert config.initial_location == (0.25, -0.5)
    for name in ("patch_size", "n_scales", "dataset_seed"):
        assert type(getattr(config, name)) is int
    assert TaskConfig(**config.settings()) == config
    assert hash(config) == hash(TaskConfig(**config.settings()))
    assert dataclasses.replace(config, n_scales=3).canvas == config.canvas


def test_make_overrides_keep_working():
    env = gym.make("GlimpseMNIST-Translated-v0", patch_size=np.int64(12), n_scales=2, split="val")
    obs, _ = env.reset(options={"index": 3})
    assert obs["glimpse"].shape == (2, 12, 12)
    assert env.unwrapped.config.scale_factor == 2  # from the spec, not from a hand-written default


@pytest.mark.parametrize(
    ("make", "listed"),
    [
        (lambda: GlimpseEnv(n_glimpse=3), ["'n_glimpse' (did you mean 'n_glimpses'?)", "data_dir"]),
        (lambda: gym.make("GlimpseMNIST-v0", canvas=40), ["'canvas'", "canvas_size", "render_mode"]),
        (lambda: GlimpseVectorEnv(2, n_envs=3), ["'n_envs'", "num_envs", "autoreset_mode", "device"]),
        (
            lambda: gym.make_vec("GlimpseMNIST-v0", 2, vectorization_mode="vector_entry_point", seed=1),
            ["'seed'", "num_envs"],
        ),
    ],
)
def test_unknown_keyword_is_a_type_error_listing_the_valid_ones(make, listed):
    with pytest.raises(TypeError) as err:
        make()
    message = str(err.value)
    for text in [*listed, *SETTINGS]:
        assert text in message


# ---------------------------------------------------------------- bad settings (issue 7, section 3)

BAD_SETTINGS = [
    # the largest retina scale overflowed (negative glimpses, OverflowError at reset)
    ({"n_scales": 62, "scale_factor": 2}, ValueError, r"n_scales must be an integer in \[1, 16\]"),
    ({"n_scales": 64}, ValueError, "n_scales"),
    ({"n_scales": 2, "scale_factor": 2**31}, ValueError, "largest retina scale"),
    ({"patch_size": 8, "n_scales": 6}, ValueError, r"8 \* 2\*\*5|256 pixels"),
    # canvas_size: truncated, parsed, or a message without the argument's name
    ({"variant": "translated", "canvas_size": (40.7, 40.2)}, TypeError, "canvas_size"),
    ({"variant": "translated", "canvas_size": ("60", "60")}, TypeError, "canvas_size"),
    ({"variant": "translated", "canvas_size": "40"}, TypeError, "canvas_size"),
    ({"variant": "translated", "canvas_size": (True, True)}, TypeError, "canvas_size"),
    ({"variant": "translated", "canvas_size": 60.0}, TypeError, "canvas_size"),
    ({"variant": "translated", "canvas_size": (40, 40, 40)}, TypeError, "canvas_size"),
    ({"variant": "translated", "canvas_size": 20}, ValueError, "canvas_size"),
    ({"canvas_size": "big"}, TypeError, "canvas_size"),
    # initial_location
    ({"initial_location": [[0.5, 0.5]]}, ValueError, "initial_location"),
    ({"initial_location": (True, False)}, TypeError, "initial_location"),
    ({"initial_location": None}, TypeError, "initial_location"),
    ({"initial_location": {"x": 0}}, TypeError, "initial_location"),
    ({"initial_location": ("0.5", "0.1")}, TypeError, "initial_location"),
    ({"initial_location": (0.5j, 0.0)}, TypeError, "initial_location"),
    ({"initial_location": (0.5,)}, ValueError, "initial_location"),
    ({"initial_location": (math.nan, 0.0)}, ValueError, "initial_location"),
    ({"initial_location": np.zeros((1, 2))}, ValueError, "initial_location"),
    # train_size larger than the split: canvases wrapped around
    ({"train_size": 55_001}, ValueError, r"train_size must be an integer in \[1, 55000\]"),
    ({"train_size": 10.0}, TypeError, "train_size"),
    # sizes without an upper bound
    ({"variant": "cluttered", "n_clutter": 100_000, "clutter_size": 5}, ValueError, "n_clutter"),
    ({"variant": "cluttered", "n_clutter": 5.0, "clutter_size": 5}, TypeError, "n_clutter"),
    ({"variant": "translated", "canvas_size": 20_000}, ValueError, "canvas_size must be 28 to 512"),
    ({"variant": "translated", "canvas_size": (60, 513)}, ValueError, "canvas_size"),
    ({"n_glimpses": 10**6}, ValueError, r"n_glimpses must be an integer in \[1, 1000\]"),
    # integers are integers
    ({"n_glimpses": True}, TypeError, "n_glimpses"),
    ({"patch_size": 8.0}, TypeError, "patch_size"),
    ({"scale_factor": 1.5}, TypeError, "scale_factor"),
    ({"dataset_seed": -1}, ValueError, "dataset_seed"),
    ({"dataset_seed": 2**64}, ValueError, "dataset_seed"),
    ({"dataset_seed": "0"}, TypeError, "dataset_seed"),
]


@pytest.mark.parametrize(("settings", "error", "message"), BAD_SETTINGS)
@pytest.mark.parametrize("where", ["GlimpseEnv", "make", "GlimpseVectorEnv", "TaskConfig"])
def test_bad_settings_are_rejected_at_construction(where, settings, error, message):
    with pytest.raises(error, match=message):
        if where == "GlimpseEnv":
            GlimpseEnv(**settings)
        elif where == "make":
            gym.make("GlimpseMNIST-v0", **settings)
        elif where == "GlimpseVectorEnv":
            GlimpseVectorEnv(2, **settings)
        else:
            TaskConfig(**settings)


def test_the_scale_bound_is_four_canvases_and_says_how_many_scales_fit():
    # 40x40 canvas: at most 160 pixels; 10 * 2**4 = 160 fits, 12 * 2**4 = 192 does not
    cluttered = {"variant": "cluttered", "canvas_size": 40, "n_clutter": 5, "clutter_size": 5}
    TaskConfig(**cluttered, patch_size=10, n_scales=5)
    with pytest.raises(ValueError, match=r"n_scales=5 with scale_factor=2 .* 192 pixels .* n_scales <= 4"):
        TaskConfig(**cluttered, patch_size=12, n_scales=5)
    # the bound is on the longer side of a rectangular canvas
    TaskConfig(variant="translated", canvas_size=(28, 100), patch_size=12, n_scales=6)  # 384 <= 400


def test_limits_are_inclusive():
    TaskConfig(variant="cluttered", canvas_size=MAX_CANVAS_SIDE, n_clutter=MAX_CLUTTER, clutter_size=28)
    TaskConfig(n_glimpses=MAX_GLIMPSES, train_size=SPLIT_SIZES["train"])
    TaskConfig(n_scales=MAX_SCALES, scale_factor=1)


def test_a_training_set_of_the_whole_split_shows_every_image_once():
    env = GlimpseEnv(train_size=55_000)
    train = load_split("mnist", "train").images.numpy()
    for index in (0, 54_999):
        env.reset(options={"index": index})
        np.testing.assert_array_equal(env.unwrapped.canvas, train[index])


@pytest.mark.parametrize(
    "point", [[0.5, -0.5], (1, 0), np.array([0.5, -0.5], dtype=np.float32), torch.tensor([0.5, -0.5])]
)
def test_initial_location_accepts_real_pairs(point):
    env = GlimpseEnv(initial_location=point)
    _, info = env.reset(seed=0)
    expected = np.asarray(point, dtype=np.float32)
    np.testing.assert_array_equal(info["location"], expected)
    assert all(type(v) is float for v in env.config.initial_location)


@pytest.mark.parametrize(
    ("num_envs", "error"), [(np.int64(3), None), (2.0, TypeError), (True, TypeError), (0, ValueError)]
)
def test_num_envs_is_an_integer(num_envs, error):
    if error is None:
        assert GlimpseVectorEnv(num_envs).num_envs == 3
    else:
        with pytest.raises(error, match="num_envs"):
            GlimpseVectorEnv(num_envs)


def test_package_exports_the_config():
    assert glimpse_env.TaskConfig is TaskConfig
