"""The native batched vector environment."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from glimpse_env.env import ObsType, action_space, observation_space
from glimpse_env.render import draw_glimpses
from glimpse_env.retina import IntegralImage
from glimpse_env.task import (
    GlimpseTask,
    TaskConfig,
    TaskSettings,
    check_labels,
    check_locations,
    split_action,
)
from glimpse_env.validation import check_int

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["GlimpseVectorEnv", "TensorObs", "TensorStep"]


class TensorObs(NamedTuple):
    """A batch of observations as tensors on the environment's device."""

    glimpse: torch.Tensor
    """``(N, k, g, g)`` float32 in ``[0, 1]``."""
    location: torch.Tensor
    """``(N, 2)`` float32: where each glimpse was taken."""


class TensorStep(NamedTuple):
    """What :meth:`GlimpseVectorEnv.step_tensors` returns."""

    obs: TensorObs
    reward: torch.Tensor
    """``(N,)`` float32."""
    terminated: torch.Tensor
    """``(N,)`` bool."""
    truncated: torch.Tensor
    """``(N,)`` bool (always False: episodes only terminate)."""
    info: dict[str, Any]
    """As :meth:`GlimpseVectorEnv.step`'s info (numpy arrays)."""
    label: torch.Tensor
    """``(N,)`` int64: the true class of every sub-environment that terminated at this step,
    ``-1`` elsewhere (what the terminal step reveals, without a host copy)."""
    correct: torch.Tensor
    """``(N,)`` bool: the terminated sub-environments whose label was right."""


class GlimpseVectorEnv(VectorEnv):
    """
    ## Description

    ``num_envs`` episodes of :class:`~glimpse_env.env.GlimpseEnv` stepped as one batch:
    canvases, integral images, glimpses and bookkeeping are batched tensor operations
    (the same retina, canvas and task code as the single environment), with no Python
    loop over sub-environments on the step or reset path.

    ```python
    import gymnasium as gym
    import glimpse_env

    envs = gym.make_vec("GlimpseMNIST-Cluttered-v0", num_envs=256, vectorization_mode="vector_entry_point")
    ```

    ## Action Space

    ``batch_space`` of the single action space: ``Dict(location=Box(-1, 1, (N, 2)),
    label=MultiDiscrete([num_classes] * N))``. Bad actions raise ``ValueError`` naming the
    first offending sub-environment.

    ## Observation Space

    ``batch_space`` of the single observation space: ``glimpse`` ``(N, k, g, g)`` float32
    and ``location`` ``(N, 2)`` float32, as numpy arrays.

    ## Rewards, Starting State, Episode End

    As :class:`~glimpse_env.env.GlimpseEnv`, per sub-environment. ``reset(options=
    {"indices": idx})`` with ``N`` integers shows canvas ``idx[j]`` of the fixed set in
    sub-environment ``j`` (the batched ``options={"index": i}``), e.g. to evaluate a whole
    test split in batches; sub-environment ``j`` then produces exactly the glimpses,
    rewards and labels of a single environment reset with ``index=idx[j]`` given the same
    actions. ``options={"reset_mask": mask}`` resets only the masked sub-environments.

    ## Autoreset

    ``autoreset_mode`` (default ``AutoresetMode.NEXT_STEP``, Gymnasium's default) is
    declared in ``metadata["autoreset_mode"]``:

    - ``NEXT_STEP``: the step after a termination resets that sub-environment, ignores
      its action and returns its first glimpse with reward 0.
    - ``SAME_STEP``: the terminating step resets at once and returns the first glimpse of
      the new episode; ``info["final_obs"]`` (object array of dicts) and
      ``info["final_info"]`` hold the last observation and info of the old one.
    - ``DISABLED``: stepping a terminated sub-environment raises ``ResetNeeded``; reset it
      with ``options={"reset_mask": mask}``.

    ## Arguments

    - ``num_envs``: number of sub-environments.
    - ``device``: ``"cpu"`` (default) or a torch device such as ``"cuda"``: the dataset,
      canvases and every per-step computation stay there.
    - ``autoreset_mode``: see above.
    - ``render_mode``: ``None`` or ``"rgb_array"`` (a tuple of one picture per sub-environment).
    - every keyword argument of :class:`~glimpse_env.env.GlimpseEnv` (``dataset``,
      ``variant``, ``canvas_size``, ``n_glimpses``, ``split``, ``data_dir``, ...): the fields
      of :class:`~glimpse_env.task.TaskConfig`, checked as there; an unknown keyword
      raises ``TypeError`` naming it and listing the valid ones.

    ## Tensors in, tensors out

    :meth:`step` and :meth:`reset` speak numpy, as Gymnasium users expect (one device to
    host copy per step on a GPU). :meth:`reset_tensors` and :meth:`step_tensors` take and
    return torch tensors on ``device`` with no host round trip of the observations:
    the way for an agent on the same device.

    ## Version History

    - v0: initial release.
    """

    metadata = {  # noqa: RUF012 - Gymnasium's convention: a class attribute
        "render_modes": ["rgb_array"],
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        *,
        device: str | torch.device = "cpu",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        **settings: Unpack[TaskSettings],
    ) -> None:
        num_envs = check_int(num_envs, "num_envs", low=1)
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            modes = [m.value for m in AutoresetMode]
            raise ValueError(f"autoreset_mode must be one of {modes}, got {autoreset_mode!r}") from None
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        config = TaskConfig.from_kwargs(
            settings,
            owner="GlimpseVectorEnv",
            others=("num_envs", "device", "autoreset_mode", "render_mode", "data_dir"),
        )
        self.task = GlimpseTask(config, data_dir=data_dir, device=device)
        self.config = config
        self.device = self.task.device
        self.num_envs = int(num_envs)
        self.autoreset_mode = mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}  # type: ignore[misc]
        self.render_mode = render_mode
        self.single_observation_space = observation_space(config)
        self.single_action_space = action_space(config)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.retina = self.task.retina

        n, dev = self.num_envs, self.device
        self._all = np.arange(n)
        self._everyone = np.ones(n, dtype=np.bool_)  # template of Gymnasium's "_key" info masks
        self._none = np.zeros(0, dtype=np.int64)
        self._integral: IntegralImage | None = None  # of the N current canvases; None before reset
        h, w = config.canvas.shape
        table_dtype, self._table_scale = self.retina.table_type(torch.uint8, h, w)
        # the integral images of the current canvases, rebuilt in place at every reset
        self._table = torch.zeros(n, 1, h + 1, w + 1, dtype=table_dtype, device=dev)
        self._labels = torch.zeros(n, dtype=torch.int64, device=dev)
        self._locations = torch.zeros(n, 2, dtype=torch.float32, device=dev)
        self._steps = np.zeros(n, dtype=np.int64)
        self._ended = np.zeros(n, dtype=np.bool_)  # terminated, not yet reset
        self._canvases: torch.Tensor | None = None  # kept for rendering only
        self._trail: torch.Tensor | None = None  # (N, T + 1, 2), for rendering only

    # ------------------------------------------------------------------ episodes
    def _start(self, ids: np.ndarray, indices: np.ndarray | None) -> np.ndarray:
        """Begin new episodes in sub-environments ``ids``; returns their sample indices."""
        count = ids.shape[0]
        episodes = self.task.sample(self.np_random, count, indices)
        start = self._tensor(self.task.initial_locations(self.np_random, count))
        canvases, labels = self.task.canvases(episodes)
        if count == self.num_envs:  # the whole batch: rebuilt in place, no scatter needed
            self.retina.integral(canvases, out=self._table)
            self._labels = labels
            self._locations = start
        else:
            rows = self._tensor(ids)
            self._table.index_copy_(0, rows, self.retina.integral(canvases).table)  # type: ignore[arg-type]
            self._labels = self._labels.index_copy(0, rows, labels)
            self._locations = self._locations.index_copy(0, rows, start)
        self._integral = IntegralImage(self._table, self._table_scale)
        self._steps[ids] = 0
        self._ended[ids] = False
        if self.render_mode is not None:
            self._record_canvases(ids, canvases)
        return episodes.canvas_indices

    def _record_canvases(self, ids: np.ndarray, canvases: torch.Tensor) -> None:
        h, w = self.config.canvas.shape
        if self._canvases is None:
            self._canvases = torch.zeros(self.num_envs, h, w, dtype=torch.uint8, device=self.device)
            self._trail = torch.zeros(self.num_envs, self.config.n_glimpses + 1, 2, device=self.device)
        rows = self._tensor(ids)
        self._canvases.index_copy_(0, rows, canvases)

    def _record_trail(self) -> None:
        if self._trail is not None:
            steps = self._tensor(self._steps)
            self._trail[torch.arange(self.num_envs, device=self.device), steps] = self._locations

    def _observe(self) -> TensorObs:
        assert self._integral is not None
        self._record_trail()
        glimpse = self.retina.from_integral(self._integral, self._locations)
        assert isinstance(glimpse, torch.Tensor)
        return TensorObs(glimpse, self._locations.clone())

    # ------------------------------------------------------------------ reset
    def reset_tensors(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[TensorObs, dict[str, Any]]:
        """:meth:`reset`, returning the observations as tensors on ``device``."""
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
                raise ValueError(f"seed must be one integer for the whole batch (or None), got {seed!r}")
            self._np_random, self._np_random_seed = seeding.np_random(int(seed))
        options = dict(options or {})
        unknown = set(options) - {"indices", "reset_mask"}
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}; expected 'indices' and/or 'reset_mask'"
            )
        ids = self._all
        if options.get("reset_mask") is not None:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},)")
            if self._integral is None and not mask.all():
                raise ResetNeeded("the first reset must reset every sub-environment (no reset_mask)")
            ids = np.flatnonzero(mask)
        indices = options.get("indices")
        if indices is not None:
            indices = self.task.check_indices(indices, self.num_envs)[ids]
        samples = self._start(ids, indices)
        obs = self._observe()
        info = self._base_info(obs)
        if samples.size and samples[0] >= 0:
            self._put(info, "index", ids, samples)
        return obs, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Reset all sub-environments (or those of ``options["reset_mask"]``).

        Args:
            seed: one integer seeding the whole batch.
            options: ``{"indices": idx}`` (``N`` integers, canvas of each sub-environment in
                the fixed set) and/or ``{"reset_mask": mask}``.
        """
        obs, info = self.reset_tensors(seed=seed, options=options)
        return self._to_numpy(obs), info

    # ------------------------------------------------------------------ step
    def step_tensors(self, location: torch.Tensor, label: torch.Tensor) -> TensorStep:
        """:meth:`step` for tensors on ``device``: ``location`` ``(N, 2)``, ``label`` ``(N,)``.

        The same checks as :meth:`step`, made on the device (one synchronisation each).
        """
        n = self.num_envs
        if not isinstance(location, torch.Tensor) or not isinstance(label, torch.Tensor):
            raise TypeError("step_tensors takes torch tensors; use step() for numpy actions")
        if location.shape != (n, 2) or not location.is_floating_point():
            raise ValueError(
                f"location must be a float tensor of shape ({n}, 2), "
                f"got {location.dtype} {tuple(location.shape)}"
            )
        if label.shape != (n,) or label.is_floating_point() or label.dtype == torch.bool:
            raise ValueError(
                f"label must be an integer tensor of shape ({n},), got {label.dtype} {tuple(label.shape)}"
            )
        location = location.to(device=self.device, dtype=torch.float32, copy=True)
        label = label.to(device=self.device, dtype=torch.int64)
        bad_location = ~(location.abs() <= 1.0).all(dim=1)
        bad_label = (label < 0) | (label >= self.task.num_classes)
        if bool((bad_location | bad_label).any()):
            # name the first offending sub-environment with the host-side checks
            check_locations(location.cpu().numpy(), n)
            check_labels(label.cpu().numpy(), self.task.num_classes, n)
        return self._step(location, label)

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[ObsType, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment with ``actions = {"location": (N, 2), "label": (N,)}``."""
        raw_location, raw_label = split_action(actions)
        location = check_locations(raw_location, self.num_envs)
        label = check_labels(raw_label, self.task.num_classes, self.num_envs)
        # copies: the caller keeps its arrays, the environment keeps its state
        result = self._step(self._tensor(location.copy()), self._tensor(label))
        return (
            self._to_numpy(result.obs),
            result.reward.cpu().numpy().astype(np.float64),
            result.terminated.cpu().numpy(),
            result.truncated.cpu().numpy(),
            result.info,
        )

    def _step(self, location: torch.Tensor, label: torch.Tensor) -> TensorStep:
        if self._integral is None:
            raise ResetNeeded("call reset() before step()")
        ended = self._ended
        any_ended = bool(ended.any())
        if any_ended and self.autoreset_mode == AutoresetMode.DISABLED:
            raise ResetNeeded(
                f"sub-environments {np.flatnonzero(ended)[:10].tolist()} have terminated and autoreset is "
                f"disabled: reset them with reset(options={{'reset_mask': mask}})"
            )
        stepping = ~ended
        self._steps += stepping
        terminated = stepping & (self._steps >= self.config.n_glimpses)
        terminated_t = self._tensor(terminated)
        if any_ended:  # those sub-environments ended last step: they ignore their action
            self._locations = torch.where(self._tensor(ended).unsqueeze(1), self._locations, location)
        else:
            self._locations = location
        done = np.flatnonzero(terminated) if terminated.any() else self._none
        last: dict[str, Any] = {}  # what only the terminal step reveals
        true_label = torch.where(terminated_t, self._labels, -1)
        correct = terminated_t & (label == self._labels)
        if done.size:
            reward = correct.to(torch.float32)
            self._put(last, "label", done, self._labels.cpu().numpy()[done])
            self._put(last, "prediction", done, label.cpu().numpy()[done])
            self._put(last, "correct", done, correct.cpu().numpy()[done])
        else:
            reward = torch.zeros(self.num_envs, dtype=torch.float32, device=self.device)
        info: dict[str, Any] = {}
        if any_ended:
            self._restart(np.flatnonzero(ended), info)
        obs = self._observe()
        if done.size and self.autoreset_mode == AutoresetMode.SAME_STEP:
            info["final_info"] = {**self._base_info(obs), **last}
            self._put(info, "final_obs", done, self._final_observations(obs, done))
            info["_final_info"] = info["_final_obs"]
            self._restart(done, info)
            obs = self._observe()
            self._ended = np.zeros(self.num_envs, dtype=np.bool_)
        else:
            info.update(last)
            self._ended = terminated.copy()  # the caller gets `terminated`; our state is ours
        info.update(self._base_info(obs))
        truncated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return TensorStep(obs, reward, terminated_t, truncated, info, true_label, correct)

    def _restart(self, ids: np.ndarray, info: dict[str, Any]) -> None:
        """New episodes in sub-environments ``ids`` (autoreset); their sample indices go to ``info``."""
        samples = self._start(ids, None)
        if samples[0] >= 0:
            self._put(info, "index", ids, samples)

    def _final_observations(self, obs: TensorObs, ids: np.ndarray) -> np.ndarray:
        """Gymnasium's ``final_obs`` format: one observation dict per terminated sub-environment."""
        final = self._to_numpy(obs)
        out = np.empty(ids.shape[0], dtype=object)
        out[:] = [{"glimpse": final["glimpse"][i], "location": final["location"][i]} for i in ids]
        return out

    # ------------------------------------------------------------------ helpers
    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """A host array as a tensor on the device (shared memory on the CPU)."""
        tensor = torch.from_numpy(array)
        return tensor if self.device.type == "cpu" else tensor.to(self.device)

    def _base_info(self, obs: TensorObs) -> dict[str, Any]:
        """``location`` and ``step`` of every sub-environment (with Gymnasium's ``_key`` masks)."""
        return {
            "location": obs.location.cpu().numpy().copy(),
            "_location": self._everyone.copy(),
            "step": self._steps.copy(),
            "_step": self._everyone.copy(),
        }

    def _put(self, info: dict[str, Any], key: str, ids: np.ndarray, values: np.ndarray) -> None:
        """``info[key]`` with ``values`` at ``ids`` and the mask ``info["_" + key]``."""
        if values.dtype == object:
            array = np.full(self.num_envs, None, dtype=object)
        else:
            array = np.zeros(self.num_envs, dtype=values.dtype)
        array[ids] = values
        mask = np.zeros(self.num_envs, dtype=np.bool_)
        mask[ids] = True
        info[key], info[f"_{key}"] = array, mask

    @staticmethod
    def _to_numpy(obs: TensorObs) -> ObsType:
        return {"glimpse": obs.glimpse.cpu().numpy(), "location": obs.location.cpu().numpy()}

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One picture per sub-environment: canvas, boxes of every scale, trail of locations."""
        if self.render_mode is None or self._canvases is None or self._trail is None:
            return None
        canvases = self._canvases.cpu().numpy()
        trail = self._trail.cpu().numpy()
        return tuple(
            draw_glimpses(canvases[i], self.retina, trail[i, : self._steps[i] + 1])
            for i in range(self.num_envs)
        )
