"""Adapters for third-party agents (stable-baselines3, sb3-contrib).

SB3 and sb3-contrib do not accept ``Dict`` action spaces. Two adapters present the
glimpse task with one flat ``Box`` action ``[x, y, score_0, ..., score_{C-1}]`` in
``[-1, 1]``: the location, then one score per class, the label being the argmax.

* :class:`FlatActionWrapper`: a single environment for ``PPO``, ``RecurrentPPO``,
  ``SAC``, ... (through ``DummyVecEnv`` or ``SubprocVecEnv`` as usual)::

      import gymnasium as gym
      from sb3_contrib import RecurrentPPO
      from glimpse_env.wrappers import FlatActionWrapper

      env = FlatActionWrapper(gym.make("GlimpseMNIST-v0"))
      model = RecurrentPPO("MultiInputLstmPolicy", env).learn(10_000)

* :class:`SB3VecEnv`: the native :class:`~glimpse_env.vector.GlimpseVectorEnv` as an
  SB3 ``VecEnv``, so ``N`` environments step as one batch instead of one by one::

      from sb3_contrib import RecurrentPPO
      from glimpse_env.wrappers import SB3VecEnv

      venv = SB3VecEnv.make("GlimpseMNIST-Cluttered-v0", num_envs=64)
      model = RecurrentPPO("MultiInputLstmPolicy", venv).learn(100_000)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from glimpse_env.vector import GlimpseVectorEnv

__all__ = ["FlatActionWrapper", "SB3VecEnv", "flat_action_space", "split_flat_actions"]


def flat_action_space(num_classes: int) -> spaces.Box:
    """``Box(-1, 1, (2 + num_classes,), float32)``: location, then one score per class."""
    return spaces.Box(-1.0, 1.0, shape=(2 + num_classes,), dtype=np.float32)


def split_flat_actions(actions: Any, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat actions ``(..., 2 + C)`` to locations ``(..., 2)`` and labels ``(...)`` (argmax).

    Raises ``ValueError`` for a wrong last dimension or non-finite scores; the location is
    checked by the environment itself.
    """
    array = np.asarray(actions, dtype=np.float32)
    if array.ndim == 0 or array.shape[-1] != 2 + num_classes:
        raise ValueError(
            f"a flat action is [x, y] followed by {num_classes} class scores, so its last dimension "
            f"must be {2 + num_classes}; got shape {array.shape}"
        )
    scores = array[..., 2:]
    if not np.isfinite(scores).all():
        raise ValueError("class scores of the flat action contain NaN or infinity")
    return array[..., :2], np.argmax(scores, axis=-1).astype(np.int64)


class FlatActionWrapper(gym.ActionWrapper):
    """One environment with the flat ``Box`` action of :func:`flat_action_space`."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        label_space = env.action_space["label"]  # type: ignore[index]
        self.num_classes = int(label_space.n)
        self.action_space = flat_action_space(self.num_classes)

    def action(self, action: Any) -> dict[str, Any]:
        location, label = split_flat_actions(action, self.num_classes)
        if location.shape != (2,):
            raise ValueError(
                f"expected one flat action of shape ({2 + self.num_classes},), got {location.shape}"
            )
        return {"location": location, "label": label}


class SB3VecEnv(VecEnv):
    """The native vector environment as a stable-baselines3 ``VecEnv`` with flat actions.

    Args:
        venv: a :class:`GlimpseVectorEnv` created with ``autoreset_mode=SAME_STEP`` (SB3
            resets finished environments within the step and reports the last observation
            as ``info["terminal_observation"]``). :meth:`make` builds one.

    ``infos[i]`` of a finished episode holds ``terminal_observation``, ``TimeLimit.truncated``
    (always False) and the single environment's last info (``location``, ``step``,
    ``label``, ``prediction``, ``correct``); the others are empty dicts, to keep the
    per-step Python work that SB3's list-of-dicts format forces to a minimum. The
    sub-environments share one batch, so ``get_attr``, ``set_attr`` and ``env_method``
    act on the vector environment and return its answer once per requested index.
    """

    def __init__(self, venv: GlimpseVectorEnv) -> None:
        if not isinstance(venv, GlimpseVectorEnv):
            raise TypeError(f"SB3VecEnv wraps a GlimpseVectorEnv, got {type(venv).__name__}")
        if venv.autoreset_mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                "SB3 expects same-step autoreset: create the GlimpseVectorEnv with "
                "autoreset_mode=AutoresetMode.SAME_STEP (or use SB3VecEnv.make)"
            )
        self.venv = venv
        self.num_classes = venv.task.num_classes
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, flat_action_space(self.num_classes))

    @classmethod
    def make(cls, env_id: str, num_envs: int, **kwargs: Any) -> SB3VecEnv:
        """``gym.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point", ...)``, for SB3."""
        venv = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="vector_entry_point",
            autoreset_mode=AutoresetMode.SAME_STEP,
            **kwargs,
        )
        return cls(venv.unwrapped)  # type: ignore[arg-type]

    def reset(self) -> VecEnvObs:
        seed = self._seeds[0]
        options = self._options[0] or None
        obs, _ = self.venv.reset(seed=seed, options=options)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(actions)")
        location, label = split_flat_actions(self._actions, self.num_classes)
        if location.shape != (self.num_envs, 2):
            raise ValueError(
                f"expected {self.num_envs} flat actions, shape ({self.num_envs}, {2 + self.num_classes}), "
                f"got {np.shape(self._actions)}"
            )
        self._actions = None
        obs, reward, terminated, truncated, info = self.venv.step({"location": location, "label": label})
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        finished = np.flatnonzero(dones)
        if finished.size:
            final, last = info["final_obs"], info["final_info"]
            for i in finished:  # SB3's format: one dict per finished sub-environment
                infos[i] = {
                    "terminal_observation": final[i],
                    "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                    "location": last["location"][i],
                    "step": int(last["step"][i]),
                    "label": int(last["label"][i]),
                    "prediction": int(last["prediction"][i]),
                    "correct": bool(last["correct"][i]),
                }
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
