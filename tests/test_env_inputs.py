"""Inputs users get wrong: every one raises one clear line (what was wrong, what was expected,
how to fix it), never a Python-internal message or a silent acceptance, and a call that
raises changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.error import URLError

import gymnasium as gym
import numpy as np
import pytest
import torch

import glimpse_env
from glimpse_env import DataError, GlimpseEnv, GlimpseVectorEnv
from glimpse_env.data import DataNotFoundError, DataReadError, load_raw
from glimpse_env.wrappers import MAX_GRID, FlatActionWrapper, MultiDiscreteActionWrapper

N = 3
SINGLE_ACTION = {"location": np.zeros(2, np.float32), "label": 0}
BATCH_ACTION = {"location": np.zeros((N, 2), np.float32), "label": np.zeros(N, np.int64)}


def make_vec(**kwargs: Any) -> GlimpseVectorEnv:
    envs = gym.make_vec("GlimpseMNIST-v0", N, vectorization_mode="vector_entry_point", **kwargs)
    assert isinstance(envs, GlimpseVectorEnv)
    return envs


def one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert message and "\n" not in message, message
    return message


def same_obs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return all(np.array_equal(a[key], b[key]) for key in ("glimpse", "location"))


# --------------------------------------------------------------------------- 1. closed
def test_a_closed_environment_refuses_every_call():
    env = gym.make("GlimpseMNIST-v0", split="test")
    env.reset(seed=0)
    env.close()
    env.close()  # twice: harmless
    for call in (lambda: env.step(SINGLE_ACTION), lambda: env.reset(), lambda: env.unwrapped.render()):
        with pytest.raises(
            RuntimeError, match=r"GlimpseEnv is closed; make a new environment with gym\.make"
        ):
            call()
    envs = make_vec(split="test", render_mode="rgb_array")
    envs.reset(seed=0)
    envs.close()
    envs.close()
    location, label = torch.zeros(N, 2), torch.zeros(N, dtype=torch.int64)
    for call in (
        lambda: envs.step(BATCH_ACTION),
        lambda: envs.step_tensors(location, label),
        lambda: envs.reset(),
        lambda: envs.reset_tensors(),
        lambda: envs.render(),
    ):
        with pytest.raises(
            RuntimeError, match=r"GlimpseVectorEnv is closed; make a new one with gym\.make_vec"
        ):
            call()


# --------------------------------------------------------------------------- 2. seeds
@pytest.mark.parametrize("seed", [np.int64(7), np.uint8(7), np.int32(7), torch.tensor(7)], ids=repr)
def test_seeds_are_integers_of_any_kind_checked_alike_in_both_envs(seed):
    """numpy and torch integers give the stream of the Python int; bools, floats, strings and
    negative integers raise the same error in both environments, and change nothing."""
    single, twin = GlimpseEnv(split="test"), GlimpseEnv(split="test")
    assert same_obs(single.reset(seed=seed)[0], twin.reset(seed=7)[0])
    envs, vec_twin = GlimpseVectorEnv(N, split="test"), GlimpseVectorEnv(N, split="test")
    assert same_obs(envs.reset(seed=seed)[0], vec_twin.reset(seed=7)[0])
    for bad, error in [(True, TypeError), (np.True_, TypeError), (7.0, TypeError), ("7", TypeError),
                       ([7], TypeError), (-1, ValueError), (-(10**5000), ValueError)]:  # fmt: skip
        messages = []
        for env in (single, envs):
            with pytest.raises(error, match=r"seed must be one integer >= 0 \(or None\)") as err:
                env.reset(seed=bad)
            messages.append(one_line(err))
        assert messages[0] == messages[1]  # one shared check
    assert same_obs(single.reset()[0], twin.reset()[0])  # the rejected seeds were not applied
    assert same_obs(envs.reset()[0], vec_twin.reset()[0])


# --------------------------------------------------------------------------- 3. adapters' actions
@pytest.mark.parametrize(
    ("wrapper", "action", "what"),
    [
        ("flat", np.array(["0.5"] * 12), "strings"),
        ("flat", np.ones(12, dtype=np.bool_), "bools"),
        ("flat", [0.0, True, *[0.0] * 10], "holds a bool"),
        ("flat", np.zeros(12, dtype=np.complex64), "complex numbers"),
        ("flat", np.array([None] * 12), "Python objects"),
        ("multidiscrete", [True, 1, 2], "holds a bool"),
        ("multidiscrete", np.array(["1", "1", "1"]), "strings"),
        ("multidiscrete", np.array([1, 1, 1], dtype="m8[s]"), "timedelta64"),
    ],
    ids=repr,
)
def test_adapter_actions_must_be_numbers(wrapper, action, what):
    env: gym.Wrapper[Any, Any, Any, Any]
    if wrapper == "flat":
        env = FlatActionWrapper(gym.make("GlimpseMNIST-v0", split="test"))
        good: Any = np.zeros(12, np.float32)
    else:
        env = MultiDiscreteActionWrapper(gym.make("GlimpseMNIST-v0", split="test"), grid=5)
        good = np.array([2, 2, 0])
    env.reset(seed=0)
    with pytest.raises(TypeError, match=f"a {wrapper}.* action must be .*{what}") as err:
        env.step(action)
    one_line(err)
    assert env.step(good)[4]["step"] == 1  # the rejected action was not taken
    if wrapper == "flat":  # ints and floats are the entries of the Box action
        assert env.step(np.zeros(12, np.int64))[4]["step"] == 2


# --------------------------------------------------------------------------- 4. grid
def test_the_grid_is_bounded_and_its_centres_computed_once(monkeypatch):
    for grid in (MAX_GRID + 1, 10**9):
        with pytest.raises(
            ValueError, match=f"grid must be an integer >= 2 and at most MAX_GRID = {MAX_GRID}"
        ):
            MultiDiscreteActionWrapper(gym.make("GlimpseMNIST-v0"), grid=grid)
    env = MultiDiscreteActionWrapper(gym.make("GlimpseMNIST-v0", split="test"), grid=MAX_GRID)
    env.reset(seed=0)
    calls = []
    linspace = np.linspace
    monkeypatch.setattr(np, "linspace", lambda *a, **k: calls.append(a) or linspace(*a, **k))
    obs = env.step(np.array([0, MAX_GRID - 1, 0]))[0]
    np.testing.assert_array_equal(obs["location"], [-1.0, 1.0])
    assert calls == []


# --------------------------------------------------------------------------- 5. render_mode
def test_only_the_supported_render_modes_are_accepted():
    for make in (
        lambda mode: gym.make("GlimpseMNIST-v0", render_mode=mode),
        lambda mode: GlimpseEnv(render_mode=mode),
        lambda mode: make_vec(render_mode=mode),
    ):
        for mode in ("human", "rgb_array_list", "RGB_ARRAY"):
            with pytest.raises(
                ValueError, match=r"render_mode must be None or one of \['rgb_array'\]"
            ) as err:
                make(mode)
            one_line(err)
        for mode in (1, ["rgb_array"], b"rgb_array"):
            with pytest.raises(
                TypeError, match=r"render_mode must be None or one of \['rgb_array'\], got"
            ) as err:
                make(mode)
            one_line(err)
    assert gym.make("GlimpseMNIST-v0", render_mode="rgb_array").render_mode == "rgb_array"
    assert GlimpseEnv.metadata["render_modes"] == ["rgb_array"]


# --------------------------------------------------------------------------- 6. data folder
def test_data_folder_problems_raise_one_line_data_errors(tmp_path, monkeypatch):
    assert issubclass(DataError, ValueError) and issubclass(DataError, OSError)
    for cls in (DataNotFoundError, DataReadError, glimpse_env.DataIntegrityError):
        assert issubclass(cls, DataError)
    with pytest.raises(
        TypeError, match=r"data_dir must be a path \(str or os\.PathLike\).*got 123 of type int"
    ):
        GlimpseEnv(data_dir=123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data_dir must be a path"):
        GlimpseEnv(data_dir=b"/root/data")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="got an empty string"):
        GlimpseEnv(data_dir="")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    monkeypatch.setenv("GLIMPSE_DATA_DIR", str(a_file))
    with pytest.raises(
        DataReadError, match=f"GLIMPSE_DATA_DIR='{a_file}': {a_file} is a file, not a folder"
    ) as err:
        GlimpseEnv()
    assert "point GLIMPSE_DATA_DIR at the data folder" in one_line(err)
    monkeypatch.delenv("GLIMPSE_DATA_DIR")
    with pytest.raises(DataReadError, match=f"lies inside {a_file}, which is a file, not a folder") as err:
        GlimpseEnv(data_dir=a_file / "data")
    one_line(err)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(ValueError, match=f"data_dir='{loop}': {loop} cannot be resolved to a folder") as err:
        GlimpseEnv(data_dir=loop)  # a DataError: `except ValueError` catches it
    one_line(err)


# --------------------------------------------------------------------------- 7. indices
@pytest.mark.parametrize(
    ("single", "batch", "error", "message"),
    [
        (
            2**80,
            [2**80, 0, 0],
            ValueError,
            r"index 1208925819614629174706176( \(sub-environment 0\))? is out",
        ),
        (np.uint64(2**63 + 1), np.array([0, 2**63 + 1, 0], np.uint64), ValueError, "is out of range"),
        (10**5000, [0, 0, -(10**5000)], ValueError, r"index -?\(an integer of 16610 bits\)"),
        (-1, [0, -1, 0], ValueError, "index -1( \\(sub-environment 1\\))? is out of range"),
        (1.0, [0.0, 1.0, 2.0], TypeError, "must be"),
        ("3", ["3", "4", "5"], TypeError, "must be"),
        (True, [True, False, True], TypeError, "must be"),
    ],
    ids=["2**80", "uint64", "10**5000", "negative", "floats", "strings", "bools"],
)
def test_reset_indices_out_of_range_or_of_a_wrong_type_name_the_set(single, batch, error, message):
    env, twin = GlimpseEnv(split="test"), GlimpseEnv(split="test")
    env.reset(seed=1)
    twin.reset(seed=1)
    envs, vec_twin = GlimpseVectorEnv(N, split="test"), GlimpseVectorEnv(N, split="test")
    envs.reset(seed=1)
    vec_twin.reset(seed=1)
    for target, options, name in ((env, {"index": single}, "index"), (envs, {"indices": batch}, "indices")):
        with pytest.raises(error, match=rf"options\['{name}'\].*{message}") as err:
            target.reset(seed=5, options=options)
        assert "the test set has 10000 canvases, indices 0..9999" in one_line(err)
    assert same_obs(env.reset()[0], twin.reset()[0])  # the rejected resets changed nothing
    assert same_obs(envs.reset()[0], vec_twin.reset()[0])


# --------------------------------------------------------------------------- 8. failed download
@pytest.mark.parametrize("folder", ["new/data", "existing"])
def test_a_failed_download_removes_only_what_it_created(tmp_path, monkeypatch, folder):
    """torchvision's own MNIST download runs, with its network call failing after writing part
    of a file: the folders and files it created go, what was there before stays."""
    from torchvision.datasets import mnist

    def offline(url: str, download_root: str, filename: str, **kwargs: Any) -> None:
        Path(download_root, filename).write_bytes(b"\x1f\x8b partial")
        raise URLError("no network here")

    monkeypatch.setattr(mnist, "download_and_extract_archive", offline)
    root = tmp_path / folder
    kept = []
    if folder == "existing":
        raw = root / "MNIST" / "raw"
        raw.mkdir(parents=True)
        kept = [raw / "notes.txt", root / "other.txt"]
        for path in kept:
            path.write_text("mine")
    with pytest.raises(DataNotFoundError, match="Downloading them through torchvision into") as err:
        load_raw("mnist", root)
    message = one_line(err)
    assert "no network here" in message
    if folder == "existing":
        assert sorted(p for p in root.rglob("*") if p.is_file()) == sorted(kept)
        assert (root / "MNIST" / "raw").is_dir()
    else:
        assert f"(the folder {root} does not exist)" in message
        assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- 9. more reset inputs
def test_other_reset_inputs_get_clear_errors():
    env, envs = GlimpseEnv(split="test"), GlimpseVectorEnv(N, split="test")
    for target in (env, envs):
        with pytest.raises(ValueError, match=r"unknown reset options \['seed'\]"):
            target.reset(options={"seed": 3})
        with pytest.raises(TypeError, match="reset options must be a dict"):
            target.reset(options=[("index", 3)])  # type: ignore[arg-type]
    # a 0-d integer tensor is one index; a tensor of indices or of a mask is read from its device
    assert env.reset(options={"index": torch.tensor(5)})[1]["index"] == 5
    _, info = envs.reset(options={"indices": torch.tensor([4, 5, 6])})
    np.testing.assert_array_equal(info["index"], [4, 5, 6])
    _, info = envs.reset(options={"reset_mask": torch.tensor([True, False, True])})
    np.testing.assert_array_equal(info["_step"], [True, False, True])
    with pytest.raises(
        ValueError, match=r"options\['reset_mask'\] must be a bool array of shape \(3,\)"
    ) as err:
        envs.reset(options={"reset_mask": [[True], [False, True], []]})  # ragged
    one_line(err)
    with pytest.raises(
        ValueError, match=r"options\['indices'\]: expected 3 integer index\(es\).*got 2 indices"
    ):
        envs.reset(options={"indices": [1, 2]})
