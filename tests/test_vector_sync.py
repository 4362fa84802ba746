"""GlimpseVectorEnv against Gymnasium's SyncVectorEnv over single GlimpseEnvs.

Both see the same canvases: the fixed test split, reset with the same indices, and at
every autoreset the sync env's sub-environment is shown the canvas the native env drew
(read from its ``info["index"]``). Then observations, rewards, termination flags and
every ``info`` key, ``_key`` mask and value must be identical, in all three autoreset
modes, including partial resets with ``reset_mask``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from glimpse_env import GlimpseVectorEnv

ENV_ID = "GlimpseMNIST-Cluttered-v0"
N = 5
T = 3  # short episodes: many terminations
KWARGS = {"split": "test", "n_glimpses": T}


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


def make_pair(mode: AutoresetMode) -> tuple[GlimpseVectorEnv, SyncVectorEnv, list[list[int]]]:
    native = gym.make_vec(
        ENV_ID, num_envs=N, vectorization_mode="vector_entry_point", autoreset_mode=mode, **KWARGS
    )
    assert isinstance(native, GlimpseVectorEnv)
    queues: list[list[int]] = [[] for _ in range(N)]
    sync = SyncVectorEnv(
        [lambda j=j: ShownCanvas(gym.make(ENV_ID, **KWARGS), j, queues[j]) for j in range(N)],
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


def actions(seed: int, steps: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "location": rng.uniform(-1, 1, (N, 2)).astype(np.float32),
            # often right: sub-environment j guesses a label that some canvases carry
            "label": rng.integers(0, 10, N),
        }
        for _ in range(steps)
    ]


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
