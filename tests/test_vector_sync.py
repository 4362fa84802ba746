"""GlimpseVectorEnv against Gymnasium's SyncVectorEnv over single GlimpseEnvs.

Both see the same canvases: the fixed test split, reset with the same indices, and at
every autoreset the sync env's sub-environment is shown the canvas the native env drew
(read from its ``info["index"]``). Then observations, rewards, termination flags and
every ``info`` key, ``_key`` mask and value must be identical, in all three autoreset
modes, including partial resets with ``reset_mask``; with the options too (early answers
with random stop decisions, so that one batch holds episodes of different lengths, a
glimpse cost and every-step rewards), in the numpy and the tensor API.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from glimpse_env import GlimpseVectorEnv

ENV_ID = "GlimpseMNIST-Cluttered-v0"
N = 5
T = 3  # short episodes: many terminations
KWARGS = {"split": "test", "n_glimpses": T}
#: the options, each against SyncVectorEnv: early answers (alone, with a cost, with every-step
#: rewards) and the fixed-length episodes with a cost and every-step rewards
OPTIONS = [
    {"early_answer": True},
    {"early_answer": True, "glimpse_cost": 0.03},
    {"early_answer": True, "glimpse_cost": 0.1, "reward": "every_step"},
    {"reward": "every_step", "glimpse_cost": 0.01},
]
MODES = [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED]


class ShownCanvas(gym.Wrapper):
    """Sub-environment ``j`` of the sync env: ``options={"indices": idx}`` shows canvas
    ``idx[j]``; a reset without options (an autoreset) shows the next canvas queued by the test."""

    def __init__(self, env: gym.Env, j: int, queue: list[int]) -> None:
        super().__init__(env)
        self.j, self.queue = j, queue

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if options and "indices" in options:
            index = int(options["indices"][self.j])
        else:
            index = self.queue.pop(0)
        return self.env.reset(seed=seed, options={"index": index})


def make_pair(mode: AutoresetMode, **options: Any) -> tuple[GlimpseVectorEnv, SyncVectorEnv, list[list[int]]]:
    kwargs = {**KWARGS, **options}
    native = gym.make_vec(
        ENV_ID, num_envs=N, vectorization_mode="vector_entry_point", autoreset_mode=mode, **kwargs
    )
    assert isinstance(native, GlimpseVectorEnv)
    queues: list[list[int]] = [[] for _ in range(N)]
    sync = SyncVectorEnv(
        [lambda j=j: ShownCanvas(gym.make(ENV_ID, **kwargs), j, queues[j]) for j in range(N)],
        autoreset_mode=mode,
    )
    return native, sync, queues


def assert_same(native: Any, sync: Any, where: str) -> None:
    """Equal values, dtypes, keys and masks, recursively (object arrays of dicts included)."""
    if isinstance(sync, tuple):
        assert isinstance(native, tuple) and len(native) == len(sync), where
        for i, (a, b) in enumerate(zip(native, sync, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(sync, dict):
        assert isinstance(native, dict), where
        assert sorted(native) == sorted(sync), f"{where}: keys {sorted(native)} != {sorted(sync)}"
        for key in sync:
            assert_same(native[key], sync[key], f"{where}[{key!r}]")
    elif isinstance(sync, np.ndarray):
        assert isinstance(native, np.ndarray), where
        assert native.dtype == sync.dtype, f"{where}: dtype {native.dtype} != {sync.dtype}"
        assert native.shape == sync.shape, f"{where}: shape {native.shape} != {sync.shape}"
        if sync.dtype == object:
            for i, (a, b) in enumerate(zip(native, sync, strict=True)):
                assert_same(a, b, f"{where}[{i}]")
        else:
            np.testing.assert_array_equal(native, sync, err_msg=where)
    else:
        assert native == sync, f"{where}: {native!r} != {sync!r}"


def feed_autoresets(info: dict[str, Any], queues: list[list[int]]) -> None:
    """Queue, for the sync env, the canvases the native env's autoresets drew."""
    if "index" in info:
        for j in np.flatnonzero(info["_index"]):
            queues[j].append(int(info["index"][j]))


def reset_both(native, sync, queues, *, mask=None, indices=None):
    options: dict[str, Any] = {}
    if indices is not None:
        options["indices"] = indices
    if mask is not None:
        options["reset_mask"] = mask
    got = native.reset(options=dict(options))
    want = sync.reset(options=dict(options))  # SyncVectorEnv pops reset_mask from the dict
    assert_same(got, want, f"reset(options={options})")
    return got


def step_both(native, sync, queues, action, t):
    got = native.step(action)
    feed_autoresets(got[4], queues)
    want = sync.step(action)
    assert_same(got, want, f"step {t}")
    assert all(not q for q in queues), "every queued canvas was shown"
    return got


def actions(seed: int, steps: int, *, stop: float = 0.0) -> list[dict[str, np.ndarray]]:
    """Random actions; with ``stop > 0`` each sub-environment stops with that probability."""
    rng = np.random.default_rng(seed)
    batch = []
    for _ in range(steps):
        action = {
            "location": rng.uniform(-1, 1, (N, 2)).astype(np.float32),
            # often right: sub-environment j guesses a label that some canvases carry
            "label": rng.integers(0, 10, N),
        }
        if stop:
            action["stop"] = (rng.random(N) < stop).astype(np.int64)
        batch.append(action)
    return batch


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_autoreset_modes_match_sync_vector_env(mode):
    native, sync, queues = make_pair(mode)
    reset_both(native, sync, queues, indices=np.array([7, 0, 42, 9999, 3]))
    seen = set()
    for t, action in enumerate(actions(0, 6 * (T + 1))):
        if t == 1:  # stagger the episodes: two sub-environments start again mid-episode
            mask = np.array([False, True, False, False, True])
            _, info = reset_both(native, sync, queues, mask=mask, indices=np.array([0, 11, 0, 0, 12]))
            np.testing.assert_array_equal(info["_location"], mask)
            np.testing.assert_array_equal(info["_step"], mask)
        _, _, terminated, _, info = step_both(native, sync, queues, action, t)
        seen.add(tuple(terminated))
        if mode == AutoresetMode.SAME_STEP and terminated.any():
            assert info["_final_obs"] is not info["_final_info"]
            np.testing.assert_array_equal(info["final_info"]["_location"], terminated)
    assert len(seen) >= 3  # terminations came at different steps, not all at once


def test_disabled_mode_with_reset_mask_matches_sync_vector_env():
    native, sync, queues = make_pair(AutoresetMode.DISABLED)
    rng = np.random.default_rng(1)
    reset_both(native, sync, queues, indices=rng.integers(0, 10_000, N))
    resets = 0
    for t, action in enumerate(actions(1, 8 * T)):
        if t == 1:
            mask = np.array([True, False, False, True, False])
            reset_both(native, sync, queues, mask=mask, indices=rng.integers(0, 10_000, N))
        _, _, terminated, _, _ = step_both(native, sync, queues, action, t)
        if terminated.any():  # DISABLED: the caller resets the ended sub-environments
            _, info = reset_both(native, sync, queues, mask=terminated, indices=rng.integers(0, 10_000, N))
            np.testing.assert_array_equal(info["_step"], terminated)
            np.testing.assert_array_equal(info["_index"], terminated)
            resets += 1
    assert resets >= 6


def test_info_under_a_false_mask_is_zero_as_in_sync_vector_env():
    """Spelt out once: the values no sub-environment reports are zeros, their mask False."""
    native, sync, queues = make_pair(AutoresetMode.NEXT_STEP)
    reset_both(native, sync, queues, indices=np.arange(N))
    native.step(actions(2, 1)[0])
    mask = np.array([False, False, True, False, False])
    _, info = native.reset(options={"reset_mask": mask, "indices": np.arange(N)})
    assert sorted(info) == ["_index", "_location", "_step", "index", "location", "step"]
    np.testing.assert_array_equal(info["location"][~mask], 0.0)
    np.testing.assert_array_equal(info["step"], [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(info["index"], [0, 0, 2, 0, 0])


# --------------------------------------------------------------------------- the options
def option_ids(options: dict[str, Any]) -> str:
    return "-".join(f"{key}={value}" for key, value in options.items())


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.name)
@pytest.mark.parametrize("options", OPTIONS, ids=option_ids)
def test_options_match_sync_vector_env_step_by_step(mode, options):
    """Random stops end episodes at different steps in one batch; every observation, reward
    (float64, bit for bit), flag and info equals SyncVectorEnv's, with partial resets."""
    early = bool(options.get("early_answer"))
    native, sync, queues = make_pair(mode, **options)
    rng = np.random.default_rng(5)
    reset_both(native, sync, queues, indices=np.array([7, 0, 42, 9999, 3]))
    lengths, rewards = set(), set()
    steps = np.zeros(N, dtype=np.int64)  # the steps of each episode, as the test counts them
    for t, action in enumerate(actions(3, 8 * (T + 1), stop=0.4 if early else 0.0)):
        if t == 2:  # stagger the episodes by hand as well
            mask = np.array([False, True, False, True, True]) & (steps >= 0)  # not one NEXT_STEP restarts
            if mask.any():
                reset_both(native, sync, queues, mask=mask, indices=rng.integers(0, 10_000, N))
                steps[mask] = 0
        _, reward, terminated, _, info = step_both(native, sync, queues, action, t)
        steps += 1  # a NEXT_STEP restart (-1) is at step 0
        rewards.update(reward.tolist())
        lengths.update(steps[terminated].tolist())
        if early:  # glimpses: the steps of the episodes whose step this was (not a restart)
            own = ~terminated if mode == AutoresetMode.SAME_STEP else steps > 0
            np.testing.assert_array_equal(info.get("_glimpses", np.zeros(N, bool)), own)
            if own.any():
                np.testing.assert_array_equal(info["glimpses"][own], steps[own])
            if mode == AutoresetMode.SAME_STEP and terminated.any():
                np.testing.assert_array_equal(info["final_info"]["glimpses"][terminated], steps[terminated])
        if mode == AutoresetMode.DISABLED and terminated.any():
            reset_both(native, sync, queues, mask=terminated, indices=rng.integers(0, 10_000, N))
        steps[terminated] = -1 if mode == AutoresetMode.NEXT_STEP else 0
    if early:
        assert len(lengths) >= 3 and min(lengths) < T and max(lengths) == T, lengths
    else:
        assert lengths == {T}
    cost = options.get("glimpse_cost", 0.0)
    assert -cost in rewards, rewards  # a step with a wrong label (or none judged) costs c
    if options.get("reward") == "every_step":  # a right label earns 1/T, an early one more
        assert 1 / T - cost in rewards, rewards
        assert any(r > 1 / T - cost for r in rewards) == early, rewards
    else:
        assert 1.0 - cost in rewards, rewards  # some answers were right


@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.name)
def test_the_tensor_api_plays_the_numpy_apis_episodes_with_early_answers(mode):
    """step_tensors with stops: the same observations, flags, labels and info as step(), its
    float32 rewards the float32 of step()'s float64 ones."""
    kwargs = {**KWARGS, "early_answer": True, "glimpse_cost": 0.1, "reward": "every_step"}
    envs = GlimpseVectorEnv(N, autoreset_mode=mode, **kwargs)
    twin = GlimpseVectorEnv(N, autoreset_mode=mode, **kwargs)
    indices = np.array([7, 0, 42, 9999, 3])
    obs, _ = envs.reset(seed=1, options={"indices": indices})
    tensor_obs, _ = twin.reset_tensors(seed=1, options={"indices": indices})
    np.testing.assert_array_equal(obs["glimpse"], tensor_obs.glimpse.numpy())
    ended = 0
    for action in actions(4, 6 * T, stop=0.4):
        got = twin.step_tensors(
            torch.from_numpy(action["location"]),
            torch.from_numpy(action["label"]),
            torch.from_numpy(action["stop"]).to(torch.bool),
        )
        obs, reward, terminated, _, info = envs.step(action)
        np.testing.assert_array_equal(got.obs.glimpse.numpy(), obs["glimpse"])
        np.testing.assert_array_equal(got.terminated.numpy(), terminated)
        assert got.reward.dtype == torch.float32
        np.testing.assert_array_equal(got.reward.numpy(), reward.astype(np.float32))
        assert_same(got.info, info, "info")
        last = info["final_info"] if mode == AutoresetMode.SAME_STEP and terminated.any() else info
        want_label = np.where(terminated, last["label"], -1) if terminated.any() else np.full(N, -1)
        np.testing.assert_array_equal(got.label.numpy(), want_label)
        want_correct = last["correct"] & terminated if terminated.any() else np.zeros(N, bool)
        np.testing.assert_array_equal(got.correct.numpy(), want_correct)
        ended += int(terminated.sum())
        if mode == AutoresetMode.DISABLED and terminated.any():
            envs.reset(options={"reset_mask": terminated})
            twin.reset_tensors(options={"reset_mask": terminated})
    assert ended >= N
