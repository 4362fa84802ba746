"""The native batched vector environment."""

from __future__ import annotations

import os
import reprlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from glimpse_env.actions import check_action, check_early_action, check_tensor_action, check_tensor_stops
from glimpse_env.devices import available_devices, check_device
from glimpse_env.env import ObsType, action_space, observation_space
from glimpse_env.render import draw_glimpses
from glimpse_env.retina import IntegralImage, PaddedImage
from glimpse_env.task import GlimpseTask, TaskConfig, TaskSettings
from glimpse_env.validation import check_int, check_render_mode, check_seed

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["GlimpseVectorEnv", "TensorObs", "TensorStep", "available_devices", "check_device"]
RESET_OPTIONS = ("indices", "reset_mask")


def check_autoreset_mode(mode: object) -> AutoresetMode:
    """``mode`` as an :class:`~gymnasium.vector.AutoresetMode`: a member, its value
    (``"NextStep"``) or its name (``"NEXT_STEP"``), spelt as Gymnasium spells them."""
    if isinstance(mode, AutoresetMode):
        return mode
    for member in AutoresetMode:
        if mode == member.value or mode == member.name:
            return member
    spellings = [f"AutoresetMode.{m.name}" for m in AutoresetMode] + [
        repr(text) for m in AutoresetMode for text in (m.name, m.value)
    ]
    raise ValueError(f"autoreset_mode must be one of {', '.join(spellings)}; got {mode!r}")


class TensorObs(NamedTuple):
    """A batch of observations as tensors on the environment's device."""

    glimpse: torch.Tensor
    """``(N, k * C, g, g)`` float32 in ``[0, 1]`` (``C = 1`` but for RGB images)."""
    location: torch.Tensor
    """``(N, 2)`` float32: where each glimpse was taken."""


class TensorStep(NamedTuple):
    """What :meth:`GlimpseVectorEnv.step_tensors` returns."""

    obs: TensorObs
    reward: torch.Tensor
    """``(N,)`` float32 (with ``glimpse_cost`` or ``reward="every_step"``, the float32 nearest
    to the float64 reward :meth:`GlimpseVectorEnv.step` returns)."""
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
    canvases, integral images (or padded canvases), glimpses and bookkeeping are batched tensor operations
    (the same retina, canvas and task code as the single environment), with no Python
    loop over sub-environments on the step or reset path.

    ```python
    import gymnasium as gym
    import glimpse_env

    envs = gym.make_vec("GlimpseMNIST-Cluttered-v0", num_envs=256, vectorization_mode="vector_entry_point")
    ```

    ## Action Space

    ``batch_space`` of the single action space: ``Dict(location=Box(-1, 1, (N, 2)),
    label=MultiDiscrete([num_classes] * N))``. The checks are those of the single
    environment (:mod:`glimpse_env.actions`): locations are real numbers (numpy or torch
    ints and floats; a tensor that requires grad is read detached), labels integers, else
    ``TypeError``; a wrong shape, a location outside ``[-1, 1]`` or a class out of range
    raises ``ValueError`` naming the first offending sub-environment. A step that raises
    changes nothing: the same step can be taken again. With ``early_answer=True`` the
    action holds ``stop`` too, ``MultiDiscrete([2] * N)`` (``N`` values 0 or 1, integers or
    bools), and every sub-environment stops on its own: a batch holds episodes of
    different lengths, which every autoreset mode below handles as ``SyncVectorEnv`` does.

    ## Observation Space

    ``batch_space`` of the single observation space: ``glimpse`` ``(N, k * C, g, g)``
    float32 (``C`` channels: 1, or 3 for RGB images) and ``location`` ``(N, 2)`` float32, as
    numpy arrays.

    ## Rewards, Starting State, Episode End

    As :class:`~glimpse_env.env.GlimpseEnv`, per sub-environment, early answers,
    ``glimpse_cost`` and ``reward="every_step"`` included (:meth:`step`'s rewards are the
    single environment's float64 values; :meth:`step_tensors` gives them as float32).
    ``reset(options=
    {"indices": idx})`` with ``N`` integers shows canvas ``idx[j]`` of the fixed set in
    sub-environment ``j`` (the batched ``options={"index": i}``), e.g. to evaluate a whole
    test split in batches; sub-environment ``j`` then produces exactly the glimpses,
    rewards and labels of a single environment reset with ``index=idx[j]`` given the same
    actions. ``options={"reset_mask": mask}`` (``N`` bools) resets only the masked
    sub-environments; as in Gymnasium's ``SyncVectorEnv``, the reset's ``info`` then
    describes those alone (``info["_location"]`` and ``info["_step"]`` are ``mask``) and
    the other observations are unchanged. An all-False mask resets nothing (where
    ``SyncVectorEnv`` raises).

    ## Autoreset

    ``autoreset_mode`` (default ``AutoresetMode.NEXT_STEP``, Gymnasium's default) is
    declared in ``metadata["autoreset_mode"]``:

    - ``NEXT_STEP``: the step after a termination resets that sub-environment, ignores
      its action and returns its first glimpse with reward 0. The ignored action is still
      checked with the rest of the batch (where ``SyncVectorEnv`` never looks at it): the
      action is an element of ``action_space`` on every step, so a NaN there is a bug of
      the caller, reported at once; any valid action may be passed.
    - ``SAME_STEP``: the terminating step resets at once and returns the first glimpse of
      the new episode; ``info["final_obs"]`` (object array of dicts) and
      ``info["final_info"]`` (with ``location``, ``step``, ``label``, ``prediction`` and
      ``correct`` of the ended episodes, and ``glimpses`` with early answers, masked to
      them) hold the last observation and
      info of the old one, flagged by ``info["_final_obs"]`` and ``info["_final_info"]``.
    - ``DISABLED``: stepping while a sub-environment has terminated raises ``ResetNeeded``;
      reset it with ``options={"reset_mask": mask}``.

    ``autoreset_mode`` takes an ``AutoresetMode``, its value (``"NextStep"``) or its name
    (``"NEXT_STEP"``). Every ``info`` key and ``_key`` mask is the one ``SyncVectorEnv``
    over :class:`~glimpse_env.env.GlimpseEnv` gives for the same episodes and actions.

    ## Arguments

    - ``num_envs``: number of sub-environments.
    - ``device``: ``"cpu"`` (default) or a torch device such as ``"cuda"``: the dataset,
      canvases and every per-step computation stay there. A device this machine does
      not have raises ``ValueError`` at construction, naming those it has.
    - ``autoreset_mode``: see above.
    - ``render_mode``: ``None`` or ``"rgb_array"`` (a tuple of one picture per sub-environment);
      any other raises at construction.
    - every keyword argument of :class:`~glimpse_env.env.GlimpseEnv` (``dataset``,
      ``variant``, ``canvas_size``, ``n_glimpses``, ``split``, ``data_dir``, ...): the fields
      of :class:`~glimpse_env.task.TaskConfig`, checked as there; an unknown keyword
      raises ``TypeError`` naming it and listing the valid ones.

    ## Tensors in, tensors out

    :meth:`step` and :meth:`reset` speak numpy, as Gymnasium users expect (one device to
    host copy per step on a GPU). :meth:`reset_tensors` and :meth:`step_tensors` take and
    return torch tensors on ``device`` with no host round trip of the observations:
    the way for an agent on the same device. :class:`TensorStep` also carries the true
    ``label`` and ``correct`` of the episodes that terminated at that step, as tensors.

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
        mode = check_autoreset_mode(autoreset_mode)
        device = check_device(device)
        render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        config = TaskConfig.from_kwargs(
            settings,
            owner="GlimpseVectorEnv",
            others=("num_envs", "device", "autoreset_mode", "render_mode", "data_dir"),
        )
        self.task = GlimpseTask(config, data_dir=data_dir, device=device)
        self.config = config
        self.device = self.task.device
        self._on_cpu = self.device.type == "cpu"
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
        self._all_ids = np.arange(n)  # every sub-environment
        self._all_true = np.ones(n, dtype=np.bool_)  # Gymnasium's "_key" mask of a key all of them have
        # what the retina reads the N current canvases from, rebuilt in place in `_buffer` at
        # every reset: padded canvases for a retina of one-pixel cells (a glimpse is a crop),
        # else their integral images; `_prepared` is None before the first reset
        h, w = config.canvas.shape
        c = config.channels  # 1, or 3 for RGB images
        self._buffer: torch.Tensor
        self._reader: IntegralImage | PaddedImage
        if self.retina.pixel_cells:
            p = self.retina.pad
            self._buffer = torch.zeros(n, c, h + 2 * p, w + 2 * p, dtype=torch.uint8, device=dev)
            self._reader = PaddedImage(self._buffer, (h, w))
        else:
            table_dtype, table_scale = self.retina.table_type(torch.uint8, h, w)
            self._buffer = torch.zeros(n, c, h + 1, w + 1, dtype=table_dtype, device=dev)
            self._reader = IntegralImage(self._buffer, table_scale)
        self._prepared: IntegralImage | PaddedImage | None = None
        self._labels = torch.zeros(n, dtype=torch.int64, device=dev)
        self._locations = torch.zeros(n, 2, dtype=torch.float32, device=dev)
        self._clock = _StepClock(n)  # the steps of every episode
        self._ended = np.zeros(n, dtype=np.bool_)  # terminated, not yet reset
        self._n_ended = 0  # how many of `_ended` are True (read on every step)
        self._canvases: torch.Tensor | None = None  # kept for rendering only
        self._trail: torch.Tensor | None = None  # (N, T + 1, 2), for rendering only
        # the rewards of the options (early answers, a glimpse cost, every-step rewards):
        # TaskConfig.step_reward tabulated by (steps, right label, answered), flattened; float64
        # for step() (the single environment's values), float32 on the device for step_tensors
        self._reward_table64: np.ndarray | None = None
        self._reward_table: torch.Tensor | None = None
        if not config.classic:
            table = reward_table(config).reshape(-1)
            self._reward_table64 = table
            self._reward_table = torch.from_numpy(table.astype(np.float32)).to(dev)

    # ------------------------------------------------------------------ episodes
    def _start(self, ids: np.ndarray, indices: np.ndarray | None) -> np.ndarray:
        """Begin new episodes in sub-environments ``ids``; returns their sample indices."""
        count = ids.shape[0]
        episodes = self.task.sample(self.np_random, count, indices)
        start = self._tensor(self.task.initial_locations(self.np_random, count))
        canvases, labels = self.task.canvases(episodes)
        if count == self.num_envs:  # the whole batch: rebuilt in place, no scatter needed
            self.retina.prepare(canvases, out=self._buffer)
            self._labels = labels
            self._locations = start
        else:
            rows = self._tensor(ids)
            prepared = self.retina.prepare(canvases)[0]
            assert isinstance(prepared, torch.Tensor)
            if self.device.type == "cpu":  # numpy copies on one thread; torch would split this one
                self._buffer.numpy()[ids] = prepared.numpy()
            else:
                self._buffer.index_copy_(0, rows, prepared)
            self._labels = self._labels.index_copy(0, rows, labels)
            self._locations = self._locations.index_copy(0, rows, start)
        self._prepared = self._reader
        self._clock.begin(ids, everyone=count == self.num_envs)
        self._ended[ids] = False
        self._n_ended = int(np.count_nonzero(self._ended)) if count < self.num_envs else 0
        if self.render_mode is not None:
            self._record_canvases(ids, canvases)
        return episodes.canvas_indices

    def _record_canvases(self, ids: np.ndarray, canvases: torch.Tensor) -> None:
        shape = tuple(canvases.shape[1:])  # (H, W), or (C, H, W) for RGB images
        if self._canvases is None:
            self._canvases = torch.zeros(self.num_envs, *shape, dtype=torch.uint8, device=self.device)
            self._trail = torch.zeros(self.num_envs, self.config.n_glimpses + 1, 2, device=self.device)
        rows = self._tensor(ids)
        self._canvases.index_copy_(0, rows, canvases)

    def _record_trail(self) -> None:
        if self._trail is not None:
            steps = self._tensor(self._steps)
            self._trail[torch.arange(self.num_envs, device=self.device), steps] = self._locations

    def _observe(self) -> TensorObs:
        prepared = self._prepared
        assert prepared is not None
        self._record_trail()
        glimpse = self.retina.glimpse(prepared, self._locations)
        assert isinstance(glimpse, torch.Tensor)
        return TensorObs(glimpse, self._locations.clone())

    # ------------------------------------------------------------------ reset
    def reset_tensors(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[TensorObs, dict[str, Any]]:
        """:meth:`reset`, returning the observations as tensors on ``device``."""
        self._check_open()
        seed = check_seed(seed)  # one integer seeds the whole batch; every check before anything changes
        ids, indices = self._reset_plan(options)
        if seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        samples = self._start(ids, indices) if ids.size else np.zeros(0, dtype=np.int64)
        obs = self._observe()
        if ids.size == self.num_envs:
            info = self._info_of_all(obs)
        else:  # as SyncVectorEnv: the info of the reset sub-environments alone
            info = self._info_of(obs, ids)
        if samples.size and samples[0] >= 0:
            self._put(info, "index", ids, samples)
        return obs, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Reset all sub-environments (or those of ``options["reset_mask"]``).

        A reset that raises changes nothing; after :meth:`close` every reset and step raises
        ``RuntimeError``.

        Args:
            seed: one integer >= 0 seeding the whole batch (or None), checked as the single
                environment's seed.
            options: a dict: ``{"indices": idx}`` (``N`` integers, canvas of each
                sub-environment in the fixed set) and/or ``{"reset_mask": mask}`` (``N``
                bools: reset only these; ``info`` then describes them alone).
        """
        obs, info = self.reset_tensors(seed=seed, options=options)
        return self._to_numpy(obs), info

    def _reset_plan(self, options: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """The sub-environments to reset and their fixed-set indices (or None), from ``options``."""
        if options is None:
            options = {}
        elif not isinstance(options, Mapping):
            raise TypeError(
                f"reset options must be a dict with the keys {RESET_OPTIONS} (or None), got "
                f"{type(options).__name__} {reprlib.repr(options)}"
            )
        unknown = set(options) - set(RESET_OPTIONS)
        if unknown:
            hint = " ('indices' is the batched 'index')" if "index" in unknown else ""
            raise ValueError(
                f"unknown reset options {sorted(map(str, unknown))}; expected 'indices' and/or "
                f"'reset_mask'{hint}"
            )
        ids = self._all_ids
        if options.get("reset_mask") is not None:
            mask = _mask_values(options["reset_mask"])
            if mask is None or mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                got = reprlib.repr(options["reset_mask"]) if mask is None else f"{mask.dtype} {mask.shape}"
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), got {got}"
                )
            if self._prepared is None and not mask.all():
                raise ResetNeeded("the first reset must reset every sub-environment (no reset_mask)")
            ids = np.flatnonzero(mask)
        indices = options.get("indices")
        if indices is not None:
            indices = self.task.check_indices(indices, self.num_envs)[ids]
        return ids, indices

    # ------------------------------------------------------------------ step
    def step_tensors(
        self, location: torch.Tensor, label: torch.Tensor, stop: torch.Tensor | None = None
    ) -> TensorStep:
        """:meth:`step` for tensors: ``location`` ``(N, 2)``, ``label`` ``(N,)`` and, with
        early answers only, ``stop`` ``(N,)`` (bools or integers 0 and 1).

        The same checks as :meth:`step`, made on the device (one synchronisation each).
        Tensors on another device are copied to ``device``; a ``location`` that requires
        grad is read detached (it is data: no gradient flows through the environment).
        ``stop`` is read to the host, where the episodes' bookkeeping lives (one copy).
        A step that raises changes nothing.
        """
        self._check_can_step()
        location, label = check_tensor_action(
            location, label, num_classes=self.task.num_classes, num_envs=self.num_envs, device=self.device
        )
        stops = check_tensor_stops(stop, early_answer=self.config.early_answer, num_envs=self.num_envs)
        return self._step(location, label, stops)[0]

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[ObsType, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment with ``actions = {"location": (N, 2), "label": (N,)}``
        (and ``"stop": (N,)`` with early answers).

        Numpy arrays, nested lists or tensors (read detached, from any device). A step that
        raises changes nothing. With ``NEXT_STEP`` autoreset the action of a sub-environment
        that terminated on the previous step is ignored, but it is checked with the others.
        """
        self._check_can_step()
        # copies: the caller keeps its arrays, the environment keeps its state
        stop = None
        if self.config.early_answer:
            location, label, stop = check_early_action(actions, self.task.num_classes, self.num_envs)
        else:
            location, label = check_action(actions, self.task.num_classes, self.num_envs)
        result, reward_index = self._step(self._tensor(location), self._tensor(label), stop)
        if self._reward_table64 is None or reward_index is None:
            reward = result.reward.cpu().numpy().astype(np.float64)
        else:  # the single environment's float64 rewards
            reward = self._reward_table64[reward_index.cpu().numpy()]
        return (
            self._to_numpy(result.obs),
            reward,
            result.terminated.cpu().numpy(),
            result.truncated.cpu().numpy(),
            result.info,
        )

    def _check_open(self) -> None:
        """A ``RuntimeError`` once :meth:`close` has been called."""
        if self.closed:
            raise RuntimeError(
                "this GlimpseVectorEnv is closed; make a new one with gym.make_vec(..., "
                "vectorization_mode='vector_entry_point') (or GlimpseVectorEnv(...))"
            )

    def close_extras(self, **kwargs: Any) -> None:
        """Release the episodes' state: ``reset``, ``step`` and ``render`` (and their tensor
        forms) then raise ``RuntimeError``. Gymnasium's :meth:`close` calls this once."""
        self._prepared = None
        self._canvases = None
        self._trail = None

    def _check_can_step(self) -> None:
        """``RuntimeError`` once closed; ``ResetNeeded`` unless every sub-environment can take a step."""
        self._check_open()
        if self._prepared is None:
            raise ResetNeeded("call reset() before step()")
        if self.autoreset_mode == AutoresetMode.DISABLED and self._n_ended:
            raise ResetNeeded(
                f"sub-environments {np.flatnonzero(self._ended)[:10].tolist()} have terminated and "
                f"autoreset is disabled: reset them with reset(options={{'reset_mask': mask}})"
            )

    def _step(
        self, location: torch.Tensor, label: torch.Tensor, stop: np.ndarray | None
    ) -> tuple[TensorStep, torch.Tensor | None]:
        """One step of checked actions (``location`` owned by the environment from here;
        ``stop`` the host bools of early answers, else None): the step, and the indices of
        the rewards in ``_reward_table64`` (None for the classic task)."""
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            obs, verdict, info = self._step_next_step(location, label, stop)
        elif self.autoreset_mode == AutoresetMode.SAME_STEP:
            obs, verdict, info = self._step_same_step(location, label, stop)
        else:
            obs, verdict, info = self._step_disabled(location, label, stop)
        return self._result(obs, verdict, info), verdict.reward_index

    def _step_next_step(
        self, location: torch.Tensor, label: torch.Tensor, stop: np.ndarray | None
    ) -> tuple[TensorObs, _Verdict, dict[str, Any]]:
        """``NEXT_STEP``: the sub-environments that terminated last step start new episodes
        (ignoring their action); the others take their glimpse."""
        restarting = self._ended
        stepping = np.flatnonzero(~restarting) if self.config.early_answer else self._all_ids
        self._move(location)
        info: dict[str, Any] = {}
        if self._n_ended:
            self._restart(np.flatnonzero(restarting), info)  # step 0, first location
        verdict = self._judge(label, stop)
        info.update(verdict.info)
        self._end(verdict)
        obs = self._observe()
        info.update(self._info_of_all(obs))
        self._put_glimpses(info, stepping)
        return obs, verdict, info

    def _step_disabled(
        self, location: torch.Tensor, label: torch.Tensor, stop: np.ndarray | None
    ) -> tuple[TensorObs, _Verdict, dict[str, Any]]:
        """``DISABLED``: every sub-environment takes its glimpse (none has terminated:
        :meth:`_check_can_step`); the terminated ones wait for ``reset(reset_mask)``."""
        self._move(location)
        verdict = self._judge(label, stop)
        self._end(verdict)
        obs = self._observe()
        info = {**verdict.info, **self._info_of_all(obs)}
        self._put_glimpses(info, self._all_ids)
        return obs, verdict, info

    def _step_same_step(
        self, location: torch.Tensor, label: torch.Tensor, stop: np.ndarray | None
    ) -> tuple[TensorObs, _Verdict, dict[str, Any]]:
        """``SAME_STEP``: every sub-environment takes its glimpse; the terminated ones start
        new episodes at once, their last observation and info in ``final_obs``/``final_info``."""
        self._move(location)
        verdict = self._judge(label, stop)
        obs = self._observe()
        info: dict[str, Any] = {}
        if verdict.ended.size:
            ended = verdict.ended
            info["final_info"] = {**self._info_of(obs, ended), **verdict.info}
            self._put_glimpses(info["final_info"], ended)
            info["_final_info"] = self._mask(ended)
            self._put(info, "final_obs", ended, self._final_observations(obs, ended))
            self._restart(ended, info)
            obs = self._observe()
        info.update(self._info_of_all(obs))
        self._put_glimpses(info, np.flatnonzero(~verdict.terminated))  # the episodes that go on
        return obs, verdict, info

    def _put_glimpses(self, info: dict[str, Any], ids: np.ndarray) -> None:
        """With early answers, ``info["glimpses"]`` of sub-environments ``ids`` (those whose
        own step info this is): the steps of their episodes, as the single environment reports."""
        if self.config.early_answer and ids.size:
            self._put(info, "glimpses", ids, self._steps[ids])

    def _move(self, location: torch.Tensor) -> None:
        """Every sub-environment takes its next glimpse at ``location``."""
        self._clock.tick()
        self._locations = location

    def _end(self, verdict: _Verdict) -> None:
        """The sub-environments ``verdict`` terminated wait for a reset (``NEXT_STEP``, ``DISABLED``)."""
        self._ended = verdict.terminated.copy()  # the caller gets `terminated`; our state is ours
        self._n_ended = verdict.ended.size

    def _judge(self, label: torch.Tensor, stop: np.ndarray | None = None) -> _Verdict:
        """Which sub-environments terminate at this step, and how their labels fare."""
        if not self.config.classic:
            return self._judge_options(label, stop)
        n, dev = self.num_envs, self.device
        if self._clock.oldest < self.config.n_glimpses:  # mid-episode: no comparison
            terminated = np.zeros(n, dtype=np.bool_)
            return _Verdict(
                terminated=terminated,
                terminated_t=self._tensor(terminated),
                ended=np.zeros(0, dtype=np.int64),
                reward=torch.zeros(n, dtype=torch.float32, device=dev),
                label=torch.full((n,), -1, dtype=torch.int64, device=dev),
                correct=torch.zeros(n, dtype=torch.bool, device=dev),
                info={},
                reward_index=None,
            )
        if self._clock.in_lockstep:  # every episode began together: they all end now
            return self._judge_all(label)
        terminated = self._steps >= self.config.n_glimpses  # a new array
        terminated_t = self._tensor(terminated)
        ended = np.flatnonzero(terminated)
        correct = terminated_t & (label == self._labels)
        info = self._verdict_info(ended, label, correct)  # what only the terminal step reveals
        return _Verdict(
            terminated=terminated,
            terminated_t=terminated_t,
            ended=ended,
            reward=correct.to(torch.float32),
            label=torch.where(terminated_t, self._labels, -1),
            correct=correct,
            info=info,
            reward_index=None,
        )

    def _judge_all(self, label: torch.Tensor) -> _Verdict:
        """:meth:`_judge` when every sub-environment terminates (fewer operations, the same result)."""
        terminated = self._all_true.copy()
        correct = label == self._labels
        info = {
            "label": self._labels.cpu().numpy().copy(),
            "prediction": label.cpu().numpy().copy(),
            "correct": correct.cpu().numpy().copy(),
        }
        for key in ("label", "prediction", "correct"):
            info[f"_{key}"] = self._all_true.copy()
        return _Verdict(
            terminated=terminated,
            terminated_t=self._tensor(terminated),
            ended=self._all_ids,
            reward=correct.to(torch.float32),
            label=self._labels.clone(),
            correct=correct,
            info=info,
            reward_index=None,
        )

    def _judge_options(self, label: torch.Tensor, stop: np.ndarray | None) -> _Verdict:
        """:meth:`_judge` with the options (early answers, a glimpse cost, every-step rewards):
        a sub-environment terminates at step ``n_glimpses`` or where it stops, and every one
        that took a step is rewarded by :meth:`TaskConfig.step_reward
        <glimpse_env.task.TaskConfig.step_reward>` (tabulated). One restarted by ``NEXT_STEP``
        took no step (0 steps): it neither terminates nor earns anything, whatever its action."""
        assert self._reward_table is not None
        steps = self._steps  # a new array
        terminated = steps >= self.config.n_glimpses
        if stop is not None:
            terminated |= stop & (steps > 0)
        ended = np.flatnonzero(terminated)
        terminated_t = self._tensor(terminated)
        right = label == self._labels
        correct = terminated_t & right
        # the reward of (steps, right, answered): row 0 (no step) is zero
        index = (self._tensor(steps) * 2 + right.to(torch.int64)) * 2 + terminated_t.to(torch.int64)
        info = self._verdict_info(ended, label, correct) if ended.size else {}
        return _Verdict(
            terminated=terminated,
            terminated_t=terminated_t,
            ended=ended,
            reward=self._reward_table[index],
            label=torch.where(terminated_t, self._labels, -1),
            correct=correct,
            info=info,
            reward_index=index,
        )

    def _result(self, obs: TensorObs, verdict: _Verdict, info: dict[str, Any]) -> TensorStep:
        truncated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return TensorStep(
            obs, verdict.reward, verdict.terminated_t, truncated, info, verdict.label, verdict.correct
        )

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
    @property
    def _steps(self) -> np.ndarray:
        """``(N,)`` int64, a new array: the steps taken in each sub-environment's episode."""
        return self._clock.steps()

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        """A host array as a tensor on the device (shared memory on the CPU)."""
        tensor = torch.from_numpy(array)
        return tensor if self._on_cpu else tensor.to(self.device)

    def _info_of_all(self, obs: TensorObs) -> dict[str, Any]:
        """``location`` and ``step`` of every sub-environment (with Gymnasium's ``_key`` masks)."""
        return {
            "location": obs.location.cpu().numpy().copy(),
            "_location": self._all_true.copy(),
            "step": self._steps,
            "_step": self._all_true.copy(),
        }

    def _info_of(self, obs: TensorObs, ids: np.ndarray) -> dict[str, Any]:
        """``location`` and ``step`` of sub-environments ``ids`` alone (zeros and False elsewhere)."""
        info: dict[str, Any] = {}
        self._put(info, "location", ids, obs.location.cpu().numpy()[ids])
        self._put(info, "step", ids, self._steps[ids])
        return info

    def _mask(self, ids: np.ndarray) -> np.ndarray:
        """Gymnasium's ``_key`` mask: True at ``ids``."""
        mask = np.zeros(self.num_envs, dtype=np.bool_)
        mask[ids] = True
        return mask

    def _verdict_info(self, ended: np.ndarray, label: torch.Tensor, correct: torch.Tensor) -> dict[str, Any]:
        """The ``info`` entries of the episodes that ``ended`` at this step: their true label,
        the label played and whether it was right."""
        info: dict[str, Any] = {}
        self._put(info, "label", ended, self._labels.cpu().numpy()[ended])
        self._put(info, "prediction", ended, label.cpu().numpy()[ended])
        self._put(info, "correct", ended, correct.cpu().numpy()[ended])
        return info

    def _put(self, info: dict[str, Any], key: str, ids: np.ndarray, values: np.ndarray) -> None:
        """``info[key]`` with ``values`` at ``ids`` (zeros, or None for objects, elsewhere) and
        the mask ``info["_" + key]``, as Gymnasium's vector environments lay them out."""
        shape = (self.num_envs, *values.shape[1:])
        if values.dtype == object:
            array = np.full(shape, None, dtype=object)
        else:
            array = np.zeros(shape, dtype=values.dtype)
        array[ids] = values
        info[key], info[f"_{key}"] = array, self._mask(ids)

    @staticmethod
    def _to_numpy(obs: TensorObs) -> ObsType:
        return {"glimpse": obs.glimpse.cpu().numpy(), "location": obs.location.cpu().numpy()}

    def render(self) -> tuple[np.ndarray, ...] | None:
        """One picture per sub-environment: canvas, boxes of every scale, trail of locations.

        As :meth:`GlimpseEnv.render <glimpse_env.env.GlimpseEnv.render>`: without a
        ``render_mode`` a warning and ``None``; before the first reset ``ResetNeeded``; once
        closed ``RuntimeError``.
        """
        self._check_open()
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        if self._canvases is None or self._trail is None:
            raise ResetNeeded("no episode yet: call reset() first")
        canvases = self._canvases.cpu().numpy()
        trail = self._trail.cpu().numpy()
        steps = self._steps
        return tuple(
            draw_glimpses(canvases[i], self.retina, trail[i, : steps[i] + 1]) for i in range(self.num_envs)
        )


def _mask_values(mask: Any) -> np.ndarray | None:
    """``options["reset_mask"]`` as a numpy array (a tensor read from any device), ``None`` if
    numpy cannot make an array of it (a ragged list, ...)."""
    try:
        if isinstance(mask, torch.Tensor):
            return mask.detach().cpu().numpy() if not mask.is_meta else None
        return np.asarray(mask)
    except (TypeError, ValueError, RuntimeError):
        return None


class _StepClock:
    """The steps each sub-environment's episode has taken, without an array operation per step.

    The batch's clock ticks once per step and each episode remembers the tick it began
    at: episode ``j`` has taken ``now - born[j]`` steps. While every episode began
    together (episodes in lockstep, and after every whole-batch reset) one number stands
    for them all.

    Args:
        num_envs: ``N``, the sub-environments.
    """

    def __init__(self, num_envs: int) -> None:
        self.now = 0  # steps the batch has taken
        self.born = np.zeros(num_envs, dtype=np.int64)  # `now` when each current episode began
        self.same_birth: int | None = 0  # their common `born` while they all began together
        self.first_birth = 0  # the smallest `born` (the oldest episode's)

    def tick(self) -> None:
        """The batch takes a step."""
        self.now += 1

    def begin(self, ids: np.ndarray, *, everyone: bool) -> None:
        """New episodes begin now in sub-environments ``ids`` (``everyone``: in all of them)."""
        self.born[ids] = self.now
        if everyone:
            self.same_birth = self.first_birth = self.now
        else:
            self.first_birth, last_birth = int(self.born.min()), int(self.born.max())
            self.same_birth = last_birth if last_birth == self.first_birth else None

    @property
    def oldest(self) -> int:
        """The steps of the oldest episode (no episode has taken more)."""
        return self.now - self.first_birth

    @property
    def in_lockstep(self) -> bool:
        """Whether every episode began together (and so ends together)."""
        return self.same_birth is not None

    def steps(self) -> np.ndarray:
        """``(N,)`` int64, a new array: the steps taken in each episode."""
        if self.same_birth is None:
            return self.now - self.born
        steps = np.empty(self.born.shape[0], dtype=np.int64)  # they all began together: one value
        steps.fill(self.now - self.same_birth)
        return steps


class _Verdict(NamedTuple):
    """What a step decides about termination and labels (before any autoreset)."""

    terminated: np.ndarray
    """``(N,)`` bool, a new array (returned to the caller)."""
    terminated_t: torch.Tensor
    """``terminated`` on the device."""
    ended: np.ndarray
    """Ids of the terminated sub-environments."""
    reward: torch.Tensor
    label: torch.Tensor
    """True class where terminated, ``-1`` elsewhere."""
    correct: torch.Tensor
    info: dict[str, Any]
    """``label``, ``prediction``, ``correct`` of the terminated sub-environments (with masks)."""
    reward_index: torch.Tensor | None
    """``(N,)`` int64: the rewards' indices in the flattened :func:`reward_table`; None for
    the classic task (whose rewards are exactly 0 and 1)."""


def reward_table(config: TaskConfig) -> np.ndarray:
    """``(T + 1, 2, 2)`` float64: the reward of a step by ``[steps, right label, answered]``,
    :meth:`TaskConfig.step_reward <glimpse_env.task.TaskConfig.step_reward>` for steps 1 to
    ``T = n_glimpses``; row 0 (a sub-environment that took no step) is zero."""
    table = np.zeros((config.n_glimpses + 1, 2, 2), dtype=np.float64)
    for step in range(1, config.n_glimpses + 1):
        for right in (0, 1):
            for answered in (0, 1):
                table[step, right, answered] = config.step_reward(step, bool(right), bool(answered))
    return table
