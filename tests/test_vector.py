"""GlimpseVectorEnv: the Gymnasium vector contract and equivalence with the single env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from glimpse_env import GlimpseEnv, GlimpseVectorEnv, IntegralImage, PaddedImage
from glimpse_env.data import load_split
from glimpse_env.vector import available_devices, check_device


def make_vec(env_id: str, num_envs: int, **kwargs) -> GlimpseVectorEnv:
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    assert isinstance(envs, GlimpseVectorEnv)
    return envs


def random_actions(rng: np.random.Generator, n: int, steps: int) -> list[dict[str, np.ndarray]]:
    return [
        {"location": rng.uniform(-1, 1, (n, 2)).astype(np.float32), "label": rng.integers(0, 10, n)}
        for _ in range(steps)
    ]


@pytest.mark.parametrize(
    "env_id", ["GlimpseMNIST-v0", "GlimpseMNIST-Cluttered100-v0", "GlimpseMNIST-Fashion-v0"]
)
def test_spaces_match_the_single_env(env_id):
    envs = make_vec(env_id, 5)
    single = gym.make(env_id)
    assert envs.single_observation_space == single.observation_space
    assert envs.single_action_space == single.action_space
    assert envs.observation_space == batch_space(single.observation_space, 5)
    assert envs.action_space == batch_space(single.action_space, 5)
    assert isinstance(envs.metadata["autoreset_mode"], AutoresetMode)
    obs, _ = envs.reset(seed=0)
    assert obs in envs.observation_space
    obs, reward, terminated, truncated, _ = envs.step(envs.action_space.sample())
    assert obs in envs.observation_space
    assert reward.shape == terminated.shape == truncated.shape == (5,)


@pytest.mark.parametrize("split", ["val", "test"])
@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("GlimpseMNIST-v0", {}),
        ("GlimpseMNIST-Cluttered-v0", {}),
        ("GlimpseMNIST-Cluttered100-v0", {"initial_location": (0.25, -0.5)}),
        ("GlimpseMNIST-Fashion-v0", {}),
    ],
)
def test_sub_environment_j_is_the_single_env_with_index_j(env_id, kwargs, split):
    n = 7
    rng = np.random.default_rng(1)
    indices = rng.choice(5000, size=n, replace=False)
    envs = make_vec(env_id, n, split=split, **kwargs)
    singles = [gym.make(env_id, split=split, **kwargs) for _ in range(n)]
    obs, info = envs.reset(seed=3, options={"indices": indices})
    single_obs = [
        env.reset(seed=j, options={"index": int(i)})
        for j, (env, i) in enumerate(zip(singles, indices, strict=False))
    ]
    np.testing.assert_array_equal(info["index"], indices)
    for j in range(n):
        np.testing.assert_array_equal(obs["glimpse"][j], single_obs[j][0]["glimpse"])
        np.testing.assert_array_equal(obs["location"][j], single_obs[j][0]["location"])
        assert single_obs[j][1]["index"] == indices[j]
    for action in random_actions(rng, n, envs.config.n_glimpses):
        obs, reward, terminated, truncated, info = envs.step(action)
        for j, env in enumerate(singles):
            s_obs, s_reward, s_term, s_trunc, s_info = env.step(
                {"location": action["location"][j], "label": int(action["label"][j])}
            )
            np.testing.assert_array_equal(obs["glimpse"][j], s_obs["glimpse"])
            np.testing.assert_array_equal(obs["location"][j], s_obs["location"])
            assert reward[j] == s_reward and terminated[j] == s_term and truncated[j] == s_trunc
            assert info["step"][j] == s_info["step"]
            if s_term:
                assert info["_label"][j] and info["label"][j] == s_info["label"]
                assert info["correct"][j] == s_info["correct"]
            else:
                assert "label" not in info
    assert terminated.all()


@pytest.mark.parametrize("initial_location", ["centre", "random"])
def test_train_split_draws_what_the_single_env_draws(initial_location):
    """With one sub-environment and the same seed, the vector env replays the single env."""
    envs = make_vec("GlimpseMNIST-Cluttered-v0", 1, initial_location=initial_location)
    env = gym.make("GlimpseMNIST-Cluttered-v0", initial_location=initial_location)
    obs, _ = envs.reset(seed=11)
    s_obs, _ = env.reset(seed=11)
    rng = np.random.default_rng(0)
    for _episode in range(4):
        np.testing.assert_array_equal(obs["glimpse"][0], s_obs["glimpse"])
        for action in random_actions(rng, 1, 6):
            obs, reward, terminated, _, info = envs.step(action)
            s_obs, s_reward, s_term, _, s_info = env.step(
                {"location": action["location"][0], "label": int(action["label"][0])}
            )
            np.testing.assert_array_equal(obs["glimpse"][0], s_obs["glimpse"])
            assert reward[0] == s_reward and terminated[0] == s_term
        assert info["label"][0] == s_info["label"]
        obs, reward, terminated, _, _ = envs.step(random_actions(rng, 1, 1)[0])  # next-step autoreset
        assert reward[0] == 0.0 and not terminated[0]
        s_obs, _ = env.reset()


def test_train_split_is_deterministic_for_a_seed():
    def rollout(seed):
        envs = make_vec("GlimpseMNIST-Cluttered60-v0", 16)
        obs, _ = envs.reset(seed=seed)
        out = [obs["glimpse"]]
        for action in random_actions(np.random.default_rng(0), 16, 20):
            out.append(envs.step(action)[0]["glimpse"])
        return np.stack(out)

    assert np.array_equal(rollout(5), rollout(5))
    assert not np.array_equal(rollout(5), rollout(6))


def test_whole_test_split_in_batches_has_the_dataset_labels():
    labels = load_split("mnist", "test").labels.numpy()
    envs = make_vec("GlimpseMNIST-v0", 500, split="test")
    seen = []
    for start in range(0, 2000, 500):
        envs.reset(options={"indices": np.arange(start, start + 500)})
        for _ in range(6):
            _, _, terminated, _, info = envs.step(
                {"location": np.zeros((500, 2), np.float32), "label": np.zeros(500, np.int64)}
            )
        assert terminated.all()
        seen.append(info["label"])
    np.testing.assert_array_equal(np.concatenate(seen), labels[:2000])


def test_next_step_autoreset():
    envs = make_vec("GlimpseMNIST-v0", 3, n_glimpses=2, split="val")
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    _, _, terminated, _, _ = envs.step(random_actions(rng, 3, 1)[0])
    assert not terminated.any()
    _, _, terminated, _, info = envs.step(random_actions(rng, 3, 1)[0])
    assert terminated.all() and info["_label"].all()
    action = random_actions(rng, 3, 1)[0]
    obs, reward, terminated, _, info = envs.step(action)  # the action is ignored: new episodes
    assert (reward == 0).all() and not terminated.any()
    np.testing.assert_array_equal(info["step"], [0, 0, 0])
    np.testing.assert_array_equal(obs["location"], np.zeros((3, 2)))
    assert info["_index"].all()


def test_returned_arrays_are_not_changed_by_later_steps():
    envs = make_vec("GlimpseMNIST-v0", 3, n_glimpses=1)
    envs.reset(seed=0)
    actions = random_actions(np.random.default_rng(0), 3, 3)
    obs, reward, terminated, _truncated, info = envs.step(actions[0])
    kept = [a.copy() for a in (obs["glimpse"], obs["location"], reward, terminated, info["step"])]
    envs.step(actions[1])  # next-step autoreset of every sub-environment
    envs.step(actions[2])
    for before, now in zip(
        kept, (obs["glimpse"], obs["location"], reward, terminated, info["step"]), strict=True
    ):
        np.testing.assert_array_equal(before, now)
    assert terminated.all()


def test_same_step_autoreset():
    kwargs = {"n_glimpses": 2, "split": "test"}
    same = make_vec("GlimpseMNIST-Cluttered-v0", 4, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
    nxt = make_vec("GlimpseMNIST-Cluttered-v0", 4, **kwargs)
    indices = np.array([3, 1, 4, 1])
    same.reset(seed=0, options={"indices": indices})
    nxt.reset(seed=0, options={"indices": indices})
    actions = random_actions(np.random.default_rng(0), 4, 2)
    same.step(actions[0])
    nxt.step(actions[0])
    obs, reward, terminated, _, info = same.step(actions[1])
    n_obs, n_reward, n_terminated, _, n_info = nxt.step(actions[1])
    np.testing.assert_array_equal(reward, n_reward)
    np.testing.assert_array_equal(terminated, n_terminated)
    assert terminated.all() and info["_final_obs"].all()
    for j in range(4):
        np.testing.assert_array_equal(info["final_obs"][j]["glimpse"], n_obs["glimpse"][j])
    np.testing.assert_array_equal(info["final_info"]["label"], n_info["label"])
    np.testing.assert_array_equal(info["step"], np.zeros(4))  # the returned obs start new episodes
    np.testing.assert_array_equal(obs["location"], np.zeros((4, 2)))


def test_disabled_autoreset_needs_reset_mask():
    envs = make_vec("GlimpseMNIST-v0", 3, n_glimpses=1, autoreset_mode="Disabled", split="val")
    envs.reset(seed=0, options={"indices": np.array([0, 1, 2])})
    action = random_actions(np.random.default_rng(0), 3, 1)[0]
    envs.step(action)
    with pytest.raises(ResetNeeded, match="reset_mask"):
        envs.step(action)
    _, info = envs.reset(
        options={"reset_mask": np.array([True, False, True]), "indices": np.array([7, 8, 9])}
    )
    np.testing.assert_array_equal(info["_index"], [True, False, True])
    np.testing.assert_array_equal(info["index"][[0, 2]], [7, 9])
    with pytest.raises(ResetNeeded):
        envs.step(action)  # sub-environment 1 still ended
    envs.reset(options={"reset_mask": np.array([False, True, False])})
    envs.step(action)


def test_tensor_api_matches_numpy_api():
    a = make_vec("GlimpseMNIST-Cluttered-v0", 6, split="test")
    b = make_vec("GlimpseMNIST-Cluttered-v0", 6, split="test")
    indices = np.arange(6)
    obs_t, _ = a.reset_tensors(seed=0, options={"indices": indices})
    obs_n, _ = b.reset(seed=0, options={"indices": indices})
    assert isinstance(obs_t.glimpse, torch.Tensor) and obs_t.glimpse.device == a.device
    np.testing.assert_array_equal(obs_t.glimpse.numpy(), obs_n["glimpse"])
    for action in random_actions(np.random.default_rng(0), 6, 6):
        step = a.step_tensors(torch.from_numpy(action["location"]), torch.from_numpy(action["label"]))
        obs_n, reward, terminated, _, _ = b.step(action)
        np.testing.assert_array_equal(step.obs.glimpse.numpy(), obs_n["glimpse"])
        np.testing.assert_array_equal(step.reward.numpy(), reward)
        np.testing.assert_array_equal(step.terminated.numpy(), terminated)


def test_render_gives_one_picture_per_sub_environment():
    envs = make_vec("GlimpseMNIST-Cluttered-v0", 3, render_mode="rgb_array")
    envs.reset(seed=0)
    envs.step(random_actions(np.random.default_rng(0), 3, 1)[0])
    frames = envs.render()
    assert len(frames) == 3 and all(f.shape == (280, 280, 3) for f in frames)


# --------------------------------------------------------------------------- bad input
GOOD = {"location": np.zeros((4, 2), np.float32), "label": np.zeros(4, np.int64)}


def _bad(**changes):
    action = {key: value.copy() for key, value in GOOD.items()}
    for key, (index, value) in changes.items():
        action[key][index] = value
    return action


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"location": np.zeros((3, 2), np.float32), "label": np.zeros(4, np.int64)}, r"shape \(4, 2\)"),
        ({"location": np.zeros((4, 2), np.float32), "label": np.zeros(5, np.int64)}, r"shape \(4,\)"),
        ({"location": np.zeros(8, np.float32), "label": np.zeros(4, np.int64)}, r"shape \(4, 2\)"),
        (_bad(location=((2, 1), np.nan)), "sub-environment 2 is NaN or infinite"),
        (_bad(location=((3, 0), 1.5)), r"sub-environment 3 is outside \[-1, 1\]"),
        (_bad(label=(1, 10)), "sub-environment 1 is 10, outside the 10 classes"),
        (_bad(label=(0, -3)), "sub-environment 0 is -3"),
        ({"location": np.zeros((4, 2), np.float32)}, "exactly the keys"),
    ],
)
def test_bad_batched_actions_name_the_sub_environment(action, message):
    envs = make_vec("GlimpseMNIST-v0", 4)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        envs.step(action)
    envs.step(GOOD)  # nothing was changed by the rejected action


def test_bad_tensor_actions_name_the_sub_environment():
    envs = make_vec("GlimpseMNIST-v0", 4)
    envs.reset_tensors(seed=0)
    location = torch.zeros(4, 2)
    location[1, 1] = float("inf")
    with pytest.raises(ValueError, match="sub-environment 1 is NaN or infinite"):
        envs.step_tensors(location, torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="sub-environment 3 is 12"):
        envs.step_tensors(torch.zeros(4, 2), torch.tensor([0, 0, 0, 12]))
    with pytest.raises(TypeError, match="integer tensor"):
        envs.step_tensors(torch.zeros(4, 2), torch.zeros(4))
    # one bad value among good ones, each kind: the reductions over the batch catch every one
    for row, value in ((2, float("nan")), (0, 1.0001), (3, -1.5)):
        location = torch.full((4, 2), 0.999)
        location[row, 1] = value
        with pytest.raises(ValueError, match=f"sub-environment {row} "):
            envs.step_tensors(location, torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="sub-environment 2 is -1"):
        envs.step_tensors(torch.zeros(4, 2), torch.tensor([9, 0, -1, 9]))
    envs.step_tensors(torch.full((4, 2), -1.0), torch.tensor([9, 0, 0, 9]))  # the edges are valid


@pytest.mark.parametrize(
    ("env_id", "kind"), [("GlimpseMNIST-v0", PaddedImage), ("GlimpseMNIST-Cluttered-v0", IntegralImage)]
)
def test_glimpses_come_from_crops_when_every_cell_is_a_pixel(env_id, kind):
    """One scale: the env keeps padded canvases and crops them; more scales: integral images.
    Either way the glimpses are the retina's on the episode's canvas."""
    envs = make_vec(env_id, 6, split="val")
    obs, _ = envs.reset_tensors(seed=0, options={"indices": np.arange(6)})
    assert isinstance(envs._prepared, kind)
    canvases = envs.task.canvases(envs.task.sample(envs.np_random, 6, np.arange(6)))[0]
    for _ in range(2):
        assert torch.equal(obs.glimpse, envs.retina(canvases, obs.location))
        location = torch.rand(6, 2) * 2 - 1
        obs = envs.step_tensors(location, torch.zeros(6, dtype=torch.int64)).obs


def test_step_before_reset_and_bad_reset_options():
    envs = make_vec("GlimpseMNIST-v0", 4, split="test")
    with pytest.raises(ResetNeeded):
        envs.step(GOOD)
    with pytest.raises(ValueError, match="expected 4 integer"):
        envs.reset(options={"indices": np.arange(3)})
    with pytest.raises(ValueError, match=r"index 10000 \(sub-environment 2\) is out of range"):
        envs.reset(options={"indices": np.array([0, 1, 10_000, 3])})
    with pytest.raises(ValueError, match=r"unknown reset options.*'indices' is the batched 'index'"):
        envs.reset(options={"index": 0})
    with pytest.raises(TypeError, match="one integer"):
        envs.reset(seed=[1, 2, 3, 4])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_envs": 0}, "num_envs"),
        ({"num_envs": 2, "autoreset_mode": "sometimes"}, "autoreset_mode"),
        ({"num_envs": 2, "n_glimpses": 0}, "n_glimpses"),
        ({"num_envs": 2, "render_mode": "human"}, "render_mode"),
    ],
)
def test_invalid_vector_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GlimpseVectorEnv(**kwargs)


def test_single_env_class_is_unchanged_by_vector_import():
    assert GlimpseEnv().observation_space == GlimpseVectorEnv(2).single_observation_space


# --------------------------------------------------------------------------- kinds of actions
@pytest.mark.parametrize(
    ("location", "message"),
    [
        (np.zeros((4, 2), dtype=np.bool_), "bools"),
        (np.full((4, 2), "0.5"), "strings"),
        (np.zeros((4, 2), dtype=np.complex64), "complex numbers"),
        (np.zeros((4, 2), dtype="timedelta64[s]"), "timedelta64"),
        ([[0.0, 0.0]] * 3 + [[True, 0.0]], "holds a bool"),
        (torch.zeros(4, 2, dtype=torch.bool), "bools"),
    ],
)
def test_batched_locations_must_be_real_numbers(location, message):
    envs = make_vec("GlimpseMNIST-v0", 4)
    envs.reset(seed=0)
    with pytest.raises(TypeError, match=rf"action\['location'\] must be real numbers.*{message}"):
        envs.step({"location": location, "label": GOOD["label"]})


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (np.zeros(4, dtype=np.bool_), "bools"),
        (np.zeros(4), "float64"),
        ([0, 0, 0, True], "holds a bool"),
        (torch.zeros(4), "float32"),
    ],
)
def test_batched_labels_must_be_integers(label, message):
    envs = make_vec("GlimpseMNIST-v0", 4)
    envs.reset(seed=0)
    with pytest.raises(TypeError, match=rf"action\['label'\] must be 4 integers.*{message}"):
        envs.step({"location": GOOD["location"], "label": label})


@pytest.mark.parametrize(
    ("location", "label", "error", "message"),
    [
        (torch.zeros(4, 2, dtype=torch.bool), torch.zeros(4, dtype=torch.int64), TypeError, "real numbers"),
        (torch.zeros(4, 2, dtype=torch.complex64), torch.zeros(4, dtype=torch.int64), TypeError, "real"),
        (torch.zeros(4, 2), torch.zeros(4, dtype=torch.bool), TypeError, "integer tensor"),
        (torch.zeros(4, 2), torch.zeros(4, dtype=torch.complex64), TypeError, "integer tensor"),
        (torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64), ValueError, r"shape \(4, 2\)"),
        (torch.zeros(4, 2), torch.zeros(4, 1, dtype=torch.int64), ValueError, r"shape \(4,\)"),
        (np.zeros((4, 2), np.float32), torch.zeros(4, dtype=torch.int64), TypeError, "use step"),
        (torch.zeros(4, 2, device="meta"), torch.zeros(4, dtype=torch.int64), ValueError, "'meta'.*cpu"),
        (torch.zeros(4, 2), torch.zeros(4, dtype=torch.int64, device="meta"), ValueError, "label.*'meta'"),
    ],
)
def test_bad_tensor_kinds(location, label, error, message):
    envs = make_vec("GlimpseMNIST-v0", 4)
    envs.reset_tensors(seed=0)
    with pytest.raises(error, match=message):
        envs.step_tensors(location, label)


@pytest.mark.parametrize("api", ["numpy", "tensors"])
def test_a_location_that_requires_grad_is_read_as_data(api):
    envs, twin = make_vec("GlimpseMNIST-v0", 4), make_vec("GlimpseMNIST-v0", 4)
    envs.reset(seed=0)
    twin.reset(seed=0)
    location = torch.tensor([[0.5, -0.5], [0.1, 0.2], [-1.0, 1.0], [0.0, 0.0]], requires_grad=True)
    label = torch.tensor([1, 2, 3, 4])
    if api == "tensors":
        got = envs.step_tensors(location * 1.0, label)  # a non-leaf tensor, part of a graph
        assert not got.obs.location.requires_grad and not got.obs.glimpse.requires_grad
        got_glimpse = got.obs.glimpse.numpy()
    else:
        got_glimpse = envs.step({"location": location * 1.0, "label": label})[0]["glimpse"]
    want = twin.step({"location": location.detach().numpy(), "label": label.numpy()})[0]
    np.testing.assert_array_equal(got_glimpse, want["glimpse"])
    assert envs._steps.tolist() == [1, 1, 1, 1]  # the step counted once
    assert location.grad is None


def test_integer_location_tensors_are_real_numbers():
    envs, twin = make_vec("GlimpseMNIST-v0", 2), make_vec("GlimpseMNIST-v0", 2)
    envs.reset_tensors(seed=0)
    twin.reset_tensors(seed=0)
    got = envs.step_tensors(torch.tensor([[1, 0], [-1, 1]]), torch.tensor([0, 1]))
    want = twin.step_tensors(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]), torch.tensor([0, 1]))
    torch.testing.assert_close(got.obs.glimpse, want.obs.glimpse, rtol=0, atol=0)


# --------------------------------------------------------------------------- a rejected step changes nothing
def assert_same(got, want, where=""):
    """Equal step results: arrays, tensors, dicts (info, with ``_key`` masks), object arrays."""
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(want, dict):
        assert sorted(got) == sorted(want), where
        for key in want:
            assert_same(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, torch.Tensor):
        assert want.dtype == got.dtype, where
        np.testing.assert_array_equal(got.cpu().numpy(), want.cpu().numpy(), err_msg=where)
    elif isinstance(want, np.ndarray) and want.dtype == object:
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        np.testing.assert_array_equal(got, want, err_msg=where)


N_TWIN = 4
BAD_NUMPY_ACTIONS = [
    _bad(location=((2, 1), np.nan)),
    _bad(label=(1, 10)),
    {"location": np.zeros((N_TWIN, 2), np.bool_), "label": GOOD["label"]},
    {"location": GOOD["location"], "label": np.zeros(N_TWIN)},
    {"location": GOOD["location"], "label": np.zeros(N_TWIN + 1, np.int64)},
    {"location": torch.zeros(N_TWIN, 2, device="meta"), "label": GOOD["label"]},
    {"location": GOOD["location"]},
]
BAD_TENSOR_ACTIONS = [
    (torch.full((N_TWIN, 2), float("nan")), torch.zeros(N_TWIN, dtype=torch.int64)),
    (torch.zeros(N_TWIN, 2), torch.full((N_TWIN,), 10)),
    (torch.zeros(N_TWIN, 2), torch.zeros(N_TWIN)),
    (torch.zeros(N_TWIN, 2, dtype=torch.bool), torch.zeros(N_TWIN, dtype=torch.int64)),
    (torch.zeros(N_TWIN, 2, device="meta"), torch.zeros(N_TWIN, dtype=torch.int64)),
    (torch.zeros(N_TWIN + 1, 2), torch.zeros(N_TWIN + 1, dtype=torch.int64)),
]


@pytest.mark.parametrize("mode", list(AutoresetMode))
@pytest.mark.parametrize("api", ["numpy", "tensors"])
@pytest.mark.parametrize("when", ["mid-episode", "after termination"])
def test_a_rejected_step_changes_nothing(mode, api, when):
    """An env given bad actions, then the same good steps as a twin that never saw them:
    identical results through autoresets (fresh training canvases: the random draws too)."""
    kwargs = {"n_glimpses": 2, "autoreset_mode": mode}
    envs, twin = (
        make_vec("GlimpseMNIST-Cluttered-v0", N_TWIN, **kwargs),
        make_vec("GlimpseMNIST-Cluttered-v0", N_TWIN, **kwargs),
    )
    actions = random_actions(np.random.default_rng(0), N_TWIN, 9)
    for e in (envs, twin):
        e.reset(seed=5)
        if when == "after termination":
            for action in actions[:2]:
                e.step(action)
            if mode == AutoresetMode.DISABLED:
                e.reset(options={"reset_mask": np.array([True, False, True, True])})
    assert_same(envs._ended, twin._ended)
    for bad in BAD_NUMPY_ACTIONS if api == "numpy" else BAD_TENSOR_ACTIONS:
        with pytest.raises((TypeError, ValueError, ResetNeeded)):
            envs.step(bad) if api == "numpy" else envs.step_tensors(*bad)
    for t, action in enumerate(actions):
        if mode == AutoresetMode.DISABLED and envs._ended.any():  # the caller's resets
            mask = envs._ended.copy()
            assert_same(envs.reset(options={"reset_mask": mask}), twin.reset(options={"reset_mask": mask}))
        if api == "numpy":
            got, want = envs.step(action), twin.step(action)
        else:
            tensors = (torch.from_numpy(action["location"]), torch.from_numpy(action["label"]))
            got, want = envs.step_tensors(*tensors), twin.step_tensors(*tensors)
        assert_same(got, want, f"step {t}")


def test_the_ignored_action_of_a_next_step_autoreset_is_checked_but_ignored():
    """NEXT_STEP: on the autoreset step a sub-environment's action is ignored, but it must
    still be a valid action (SyncVectorEnv does not look at it; we check the whole batch)."""
    envs, twin = (make_vec("GlimpseMNIST-v0", 3, n_glimpses=1, split="val") for _ in range(2))
    for e in (envs, twin):
        e.reset(seed=0, options={"indices": np.array([4, 5, 6])})
        e.step({"location": np.zeros((3, 2), np.float32), "label": np.zeros(3, np.int64)})
    bad = {"location": np.array([[0, 0], [np.nan, 0], [0, 0]], np.float32), "label": np.zeros(3, np.int64)}
    with pytest.raises(ValueError, match="sub-environment 1 is NaN"):
        envs.step(bad)
    # any valid actions: ignored, the same new episodes either way
    got = envs.step({"location": np.full((3, 2), 0.9, np.float32), "label": np.full(3, 9)})
    want = twin.step({"location": np.full((3, 2), -0.3, np.float32), "label": np.zeros(3, np.int64)})
    assert_same(got, want)
    np.testing.assert_array_equal(got[4]["step"], [0, 0, 0])


def test_a_rejected_reset_changes_nothing():
    envs, twin = make_vec("GlimpseMNIST-v0", 3), make_vec("GlimpseMNIST-v0", 3)
    envs.reset(seed=1)
    twin.reset(seed=1)
    with pytest.raises(ValueError):
        envs.reset(seed=99, options={"reset_mask": np.ones(2, dtype=np.bool_)})
    with pytest.raises(ValueError):
        envs.reset(seed=99, options={"indices": np.arange(3)})  # the training draws have no fixed set
    with pytest.raises(TypeError):
        envs.reset(seed=99, options="reset_mask")
    assert_same(envs.reset(), twin.reset())


@pytest.mark.parametrize("options", ["indices", ["reset_mask"], 3, ("indices", [0, 1])], ids=repr)
def test_reset_options_must_be_a_dict(options):
    envs = make_vec("GlimpseMNIST-v0", 2, split="test")
    with pytest.raises(TypeError, match="reset options must be a dict"):
        envs.reset(options=options)


# --------------------------------------------------------------------------- settings: mode, device
@pytest.mark.parametrize(
    ("spelling", "mode"),
    [(m, m) for m in AutoresetMode]
    + [(m.value, m) for m in AutoresetMode]
    + [(m.name, m) for m in AutoresetMode],
)
def test_autoreset_mode_by_member_value_or_name(spelling, mode):
    envs = make_vec("GlimpseMNIST-v0", 2, autoreset_mode=spelling)
    assert envs.autoreset_mode is mode and envs.metadata["autoreset_mode"] is mode


@pytest.mark.parametrize("spelling", ["disabled", "Next_Step", "NEXTSTEP", "", 0, None])
def test_unknown_autoreset_mode(spelling):
    with pytest.raises(ValueError, match=r"autoreset_mode must be one of .*'DISABLED'.*'Disabled'"):
        GlimpseVectorEnv(2, autoreset_mode=spelling)


UNAVAILABLE = ["tpu", "meta", "xla", "mps", "cuda:99", "ipu"]
if not torch.cuda.is_available():
    UNAVAILABLE += ["cuda", "cuda:0", 0]


@pytest.mark.parametrize("device", UNAVAILABLE)
def test_a_device_this_machine_lacks_is_named_at_construction(device):
    with pytest.raises(ValueError, match=rf"device={device!r} is not.*available.*cpu") as caught:
        make_vec("GlimpseMNIST-v0", 2, device=device)
    if torch.cuda.is_available():
        assert "cuda:0" in str(caught.value)


@pytest.mark.parametrize("device", [2.5, None, ["cpu"], True])
def test_a_device_of_the_wrong_type(device):
    with pytest.raises(TypeError, match=r"device must be a torch\.device or a device name"):
        GlimpseVectorEnv(2, device=device)


def test_check_device_names_the_current_gpu_and_plain_cpu():
    assert check_device("cpu") == torch.device("cpu") == check_device(torch.device("cpu"))
    assert available_devices()[0] == "cpu"
    if torch.cuda.is_available():
        assert check_device("cuda") == torch.device("cuda", torch.cuda.current_device())


# --------------------------------------------------------------------------- render
def test_render_before_reset_is_as_the_single_env():
    with pytest.raises(ResetNeeded, match="reset"):
        GlimpseVectorEnv(2, render_mode="rgb_array").render()
    envs = GlimpseVectorEnv(2)
    with pytest.warns(UserWarning, match="render_mode"):
        assert envs.render() is None
    envs.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert envs.render() is None


# --------------------------------------------------------------------------- TensorStep.label / correct
@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_tensor_step_gives_label_and_correct_of_the_ended_episodes(mode):
    n, T = 6, 3
    labels = load_split("mnist", "test").labels
    envs = make_vec("GlimpseMNIST-v0", n, n_glimpses=T, split="test", autoreset_mode=mode)
    rng = np.random.default_rng(0)
    _, info = envs.reset_tensors(seed=0, options={"indices": rng.integers(0, 10_000, n)})
    shown = info["index"].copy()  # the canvas of each sub-environment
    right = torch.arange(n) % 2 == 0  # even sub-environments answer right, odd ones wrong
    ended_at = set()
    for t in range(4 * (T + 1)):
        if t == 1:  # stagger the episodes
            mask = np.array([False, True, True, False, False, False])
            _, info = envs.reset_tensors(options={"reset_mask": mask, "indices": rng.integers(0, 10_000, n)})
            shown[mask] = info["index"][mask]
        truth = labels[torch.from_numpy(shown)]
        guess = torch.where(right, truth, (truth + 1) % 10)
        step = envs.step_tensors(torch.zeros(n, 2), guess)
        terminated = step.terminated
        assert step.label.dtype == torch.int64 and step.label.shape == (n,)
        assert step.correct.dtype == torch.bool and step.label.device == envs.device
        torch.testing.assert_close(step.label, torch.where(terminated, truth, -1), rtol=0, atol=0)
        torch.testing.assert_close(step.correct, terminated & right, rtol=0, atol=0)
        torch.testing.assert_close(step.reward, step.correct.float(), rtol=0, atol=0)
        last = step.info["final_info"] if mode == AutoresetMode.SAME_STEP and terminated.any() else step.info
        if terminated.any():
            ended_at.add(tuple(terminated.tolist()))
            np.testing.assert_array_equal(last["_label"], terminated.numpy())
            np.testing.assert_array_equal(last["label"][last["_label"]], step.label[terminated].numpy())
            np.testing.assert_array_equal(last["correct"][last["_correct"]], step.correct[terminated].numpy())
        if "_index" in step.info:  # autoresets show new canvases
            shown[step.info["_index"]] = step.info["index"][step.info["_index"]]
        if mode == AutoresetMode.DISABLED and terminated.any():
            mask = terminated.numpy()
            _, info = envs.reset_tensors(options={"reset_mask": mask, "indices": rng.integers(0, 10_000, n)})
            shown[mask] = info["index"][mask]
    assert len(ended_at) >= 2  # the sub-environments ended at different steps


def test_timedelta_indices_are_rejected():
    envs = GlimpseVectorEnv(4, split="val")
    with pytest.raises(TypeError, match="integer index"):  # a wrong type: TypeError, as everywhere
        envs.reset(options={"indices": np.array([1, 2, 3, 4], dtype="timedelta64[s]")})
