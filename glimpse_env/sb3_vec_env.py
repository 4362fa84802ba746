"""The native vector environment as a stable-baselines3 ``VecEnv``: :class:`SB3VecEnv`.

Importable as ``glimpse_env.wrappers.SB3VecEnv`` too (the module docstring of
:mod:`glimpse_env.wrappers` describes both adapters). This module imports stable-baselines3,
so it lives apart from :mod:`glimpse_env.wrappers`, whose action decoders the evaluation
protocol uses: ``import glimpse_env`` and ``import glimpse_env.evaluation`` never load SB3.
Without SB3 installed, importing it raises :class:`~glimpse_env.extras.MissingExtraError`
(an ``ImportError``) naming the fix, ``pip install 'glimpse-mnist[sb3]'``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from glimpse_env.extras import MissingExtraError, missing_sb3_message
from glimpse_env.vector import GlimpseVectorEnv
from glimpse_env.wrappers import LOCATION_SIZE, ActionKind, _decoder

try:
    from stable_baselines3.common.vec_env.base_vec_env import (
        VecEnv,
        VecEnvIndices,
        VecEnvObs,
        VecEnvStepReturn,
    )
except ModuleNotFoundError as error:  # the sb3 extra is not installed: say so, and how to fix it
    if error.name is None or error.name.split(".")[0] != "stable_baselines3":
        raise
    raise MissingExtraError(missing_sb3_message("glimpse_env.wrappers.SB3VecEnv"), name=error.name) from None

__all__ = ["SB3VecEnv"]


def _reset_info_of(info: dict[str, Any], i: int) -> dict[str, Any]:
    """Sub-environment ``i``'s part of a vector reset (or autoreset) info, laid out as the
    single environment's reset info: ``location``, ``step`` and, for a fixed set, ``index``."""
    out: dict[str, Any] = {"location": info["location"][i].copy(), "step": int(info["step"][i])}
    if "index" in info and info["_index"][i]:
        out["index"] = int(info["index"][i])
    return out


def _last_info_of(info: dict[str, Any], i: int) -> dict[str, Any]:
    """The single environment's terminal-step info of sub-environment ``i`` (with
    ``glimpses`` where the environment has early answers)."""
    last = {
        "location": info["location"][i].copy(),
        "step": int(info["step"][i]),
        "label": int(info["label"][i]),
        "prediction": int(info["prediction"][i]),
        "correct": bool(info["correct"][i]),
    }
    if "glimpses" in info:
        last["glimpses"] = int(info["glimpses"][i])
    return last


class SB3VecEnv(VecEnv):
    """The native vector environment as a stable-baselines3 ``VecEnv``.

    Args:
        venv: a :class:`GlimpseVectorEnv`, e.g. ``gym.make_vec(id, num_envs=N,
            vectorization_mode="vector_entry_point")``, with any ``autoreset_mode``: SB3
            wants a finished episode restarted within the step that ends it, which
            ``SAME_STEP`` does by itself (the cheapest; :meth:`make`'s default) and this
            adapter does for ``NEXT_STEP`` and ``DISABLED`` by resetting the finished
            sub-environments at once. The episodes are the same in every mode.
        action: ``"flat"`` (default) or ``"multidiscrete"`` (module docstring).
        grid: cells per side of the location grid, ``"multidiscrete"`` only (default 9).

    A ``venv`` with early answers (``early_answer=True``) gets the stop decision in either
    form: the flat action's last coordinate (stops above 0) or the multidiscrete action's
    last entry (0 or 1), as :class:`~glimpse_env.wrappers.FlatActionWrapper` and
    :class:`~glimpse_env.wrappers.MultiDiscreteActionWrapper` decode it.

    ``infos[i]`` of a finished episode holds ``terminal_observation``, ``TimeLimit.truncated``
    (always False) and the single environment's last info (``location``, ``step``,
    ``label``, ``prediction``, ``correct``, and ``glimpses`` with early answers); the others
    are empty dicts, to keep the
    per-step Python work that SB3's list-of-dicts format forces to a minimum.
    ``reset_infos[i]`` is sub-environment ``i``'s info of its latest (auto)reset
    (``location``, ``step`` and, for a fixed set, ``index``), as in SB3's ``DummyVecEnv``.
    The sub-environments share one batch, so ``get_attr``, ``set_attr`` and ``env_method``
    act on the vector environment and return its answer once per requested index.
    """

    def __init__(
        self, venv: GlimpseVectorEnv, *, action: ActionKind = "flat", grid: int | None = None
    ) -> None:
        if not isinstance(venv, GlimpseVectorEnv):
            if isinstance(venv, VectorEnv) and isinstance(venv.unwrapped, GlimpseVectorEnv):
                raise TypeError(
                    f"SB3VecEnv wraps the bare GlimpseVectorEnv, got it inside {type(venv).__name__}, "
                    f"whose work SB3 would bypass: pass venv.unwrapped and use SB3's VecEnv wrappers "
                    f"(VecMonitor, VecNormalize, VecFrameStack) around the SB3VecEnv instead"
                )
            raise TypeError(
                f"SB3VecEnv wraps a GlimpseVectorEnv (gym.make_vec(id, num_envs=N, "
                f"vectorization_mode='vector_entry_point')), got {type(venv).__name__}"
            )
        self.venv = venv
        self.num_classes = venv.task.num_classes
        self.early_answer = venv.config.early_answer
        space, self._decode = _decoder(action, self.num_classes, grid, self.early_answer)
        self._batch_shape = (venv.num_envs, *space.shape)
        self.action_kind = action
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, space)

    @classmethod
    def make(
        cls,
        env_id: str,
        num_envs: int,
        *,
        action: ActionKind = "flat",
        grid: int | None = None,
        **kwargs: Any,
    ) -> SB3VecEnv:
        """``gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point", **kwargs)``
        for SB3, with ``autoreset_mode=AutoresetMode.SAME_STEP`` unless ``kwargs`` says
        otherwise (every mode works); ``action`` and ``grid`` as in the constructor."""
        kwargs.setdefault("autoreset_mode", AutoresetMode.SAME_STEP)
        venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
        return cls(venv, action=action, grid=grid)  # type: ignore[arg-type]

    def reset(self) -> VecEnvObs:
        seed = self._seeds[0]
        options = self._options[0] or None
        obs, info = self.venv.reset(seed=seed, options=options)
        self.reset_infos = [_reset_info_of(info, i) for i in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(actions)")
        action = self._decode(self._actions)
        if action["location"].shape != (self.num_envs, LOCATION_SIZE):
            raise ValueError(
                f"expected {self.num_envs} actions of {self.action_space}, shape {self._batch_shape}, "
                f"got {np.shape(self._actions)}"
            )
        self._actions = None
        obs, reward, terminated, truncated, info = self.venv.step(action)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        finished = np.flatnonzero(dones)
        if finished.size:
            if self.venv.autoreset_mode == AutoresetMode.SAME_STEP:  # already restarted
                final, last, restart = info["final_obs"], info["final_info"], info
            else:  # restart them now, as SAME_STEP would have
                final = {i: {key: value[i].copy() for key, value in obs.items()} for i in finished.tolist()}
                last = info
                obs, restart = self.venv.reset(options={"reset_mask": dones})
            for i in finished.tolist():  # SB3's format: one dict per finished sub-environment
                infos[i] = {
                    "terminal_observation": final[i],
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                    **_last_info_of(last, i),
                }
                self.reset_infos[i] = _reset_info_of(restart, i)
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices) if isinstance(indices, Iterable) else [int(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if len(self._indices(indices)) != self.num_envs:
            raise ValueError("the sub-environments share one batch: set attributes on all of them at once")
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        return list(frames) if frames is not None else [None] * self.num_envs
