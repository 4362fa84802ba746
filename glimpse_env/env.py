"""The single-instance glimpse environment."""

from __future__ import annotations

import os
import reprlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from glimpse_env.actions import check_action, check_early_action
from glimpse_env.render import draw_glimpses
from glimpse_env.retina import IntegralImage
from glimpse_env.task import GlimpseTask, TaskConfig, TaskSettings
from glimpse_env.validation import check_render_mode, check_seed, is_integer

if TYPE_CHECKING:
    from typing_extensions import Unpack

ObsType = dict[str, np.ndarray]
ActType = dict[str, Any]


def observation_space(config: TaskConfig) -> spaces.Dict:
    """``Dict(glimpse=Box(0, 1, (k * C, g, g)), location=Box(-1, 1, (2,)))`` of a task
    (``C`` channels: 1, or 3 for RGB images)."""
    return spaces.Dict(
        {
            "glimpse": spaces.Box(0.0, 1.0, shape=config.glimpse_shape, dtype=np.float32),
            "location": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
        }
    )


def action_space(config: TaskConfig) -> spaces.Dict:
    """``Dict(location=Box(-1, 1, (2,)), label=Discrete(num_classes))`` of a task, with
    ``stop=Discrete(2)`` as well when it has early answers (``early_answer=True``)."""
    parts: dict[str, spaces.Space[Any]] = {
        "location": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
        "label": spaces.Discrete(config.num_classes),
    }
    if config.early_answer:
        parts["stop"] = spaces.Discrete(2)
    return spaces.Dict(parts)


class GlimpseEnv(gym.Env[ObsType, ActType]):
    """
    ## Description

    Hard visual attention as a partially observable MDP (Mnih et al., 2014, "Recurrent
    Models of Visual Attention"). Each episode hides one image: an MNIST or Fashion-MNIST
    image, alone (``centred``), at a random position of a larger canvas (``translated``)
    or among pieces of other images (``cluttered``). The agent never sees the image, only
    a multi-resolution *glimpse* around a location it chooses, and after ``n_glimpses``
    glimpses it must name the class.

    ## Action Space

    ``Dict(location=Box(-1, 1, (2,), float32), label=Discrete(num_classes))``.

    - ``location = (x, y)``: where to take the next glimpse. ``x`` is horizontal, ``y``
      vertical; ``(-1, -1)`` is the top-left corner of the canvas, ``(0, 0)`` its centre,
      ``(1, 1)`` its bottom-right corner.
    - ``label``: the class guessed. Only the label of the last step is judged (with
      ``reward="every_step"``, the label of every step).
    - ``stop`` (only with ``early_answer=True``: ``Dict(..., stop=Discrete(2))``): 1 answers
      now, 0 takes another glimpse (see *Episode End*). An environment without early
      answers refuses an action with a ``stop`` (``ValueError``), one with early answers an
      action without it.

    A location is two real numbers: Python ints and floats, numpy or torch integer and
    floating-point values (a tensor on any device; one that requires grad is read
    detached: the action is data). A label is one integer. Bools, strings, complex
    numbers or timedeltas as a location, anything but an integer as a label, or anything
    but an integer or a bool as a stop raise ``TypeError``; locations outside ``[-1, 1]``,
    NaN or infinite, a wrong shape, a class out of range or a stop other than 0 and 1
    raise ``ValueError`` (never clipped silently): clip a sampled
    location yourself. A step that raises changes nothing: the same step can be taken
    again.

    ## Observation Space

    ``Dict(glimpse=Box(0, 1, (k, g, g), float32), location=Box(-1, 1, (2,), float32))``:
    the retina's ``k`` patches of ``g x g`` (scale ``i`` covers ``g * s**i`` pixels, averaged
    down to ``g x g``, outside the canvas reads 0; see :mod:`glimpse_env.retina`), and the
    location they were taken at. On RGB images (an :class:`~glimpse_env.images.ImageDataset`
    of ``C = 3`` channels) every scale averages each channel: ``glimpse`` is
    ``Box(0, 1, (k * C, g, g))``, scale-major (the ``C`` channels of scale 0, then of scale 1, ...).

    ## Rewards

    0 on every step but the last; on the last, 1.0 if ``action["label"]`` is the true
    class, else 0.0. The return of an episode is therefore its accuracy.

    Two settings change this (the defaults keep it):

    - ``reward="every_step"``: the label of every step is judged, and each right one earns
      ``1/T`` (``T = n_glimpses``): the return is the fraction of right labels, in
      ``[0, 1]``. A step that answers early (``stop=1`` at step ``t < T``) earns
      ``(T - t + 1)/T`` if its label is right: its label stands for the steps it skips,
      so the return stays in ``[0, 1]`` and an early right answer earns what repeating it
      until step ``T`` would. ``info["correct"]`` is the last label's.
    - ``glimpse_cost=c``: every step's reward is lowered by ``c`` (charged per step, as it
      is spent), so an episode that answers at step ``t`` returns its reward for the
      labels less ``c * t``: ``1 - c * t`` for a right answer with the terminal reward.

    ## Starting State

    A canvas from the chosen split; the first glimpse is taken at the centre (or at a
    uniformly random location with ``initial_location="random"``, or at a given ``(x, y)``).
    ``reset(options={"index": i})`` (``i`` one integer) shows canvas ``i`` of the fixed set
    (``val``, ``test``, or a training set fixed by ``train_size``); without it the canvas is
    drawn from ``self.np_random``. Fixed canvases are identical on every machine and
    process. ``reset(seed=s)``: ``s`` is ``None`` or an integer >= 0 (Python, numpy or torch;
    not a bool, float or string: ``TypeError``; negative: ``ValueError``), the same check as
    the vector environment's. An index outside the set, of a wrong type, or an unknown
    option raises, naming the size of the set; a reset that raises changes nothing.
    After :meth:`close`, ``reset``, ``step`` and ``render`` raise ``RuntimeError``.

    ## Episode End

    The episode terminates after ``n_glimpses`` steps: ``reset`` gives glimpse 1, steps
    ``1 .. T-1`` take glimpses ``2 .. T`` at ``action["location"]`` (the label is ignored),
    and step ``T`` judges ``action["label"]`` and terminates (its observation is the
    glimpse at that step's location). There is no truncation.

    With ``early_answer=True`` the agent may answer sooner: ``stop=1`` at step ``t < T``
    judges that step's label and terminates the episode after ``t`` glimpses (the
    observation is again the glimpse at that step's location); at step ``T`` the episode
    ends whatever ``stop`` says. ``info["glimpses"]`` (early answers only) is the glimpses
    used so far on every step, ``t`` at step ``t``: at the end, the glimpses the answer was
    made with.

    ``info`` holds ``location`` and ``step`` on every step (``index`` after ``reset`` for a
    fixed set), and ``label`` (true class), ``prediction`` and ``correct`` only on the
    terminal step, so a pure RL agent cannot read the answer early.

    ## Arguments

    ```python
    import gymnasium as gym
    import glimpse_env

    env = gym.make("GlimpseMNIST-Cluttered-v0", split="test", render_mode="rgb_array")
    ```

    The settings are the fields of :class:`~glimpse_env.task.TaskConfig` (their one
    definition, with the defaults and the checks); ``gym.make(id, **overrides)`` starts from
    the id's settings (:data:`~glimpse_env.registration.ENV_SPECS`), ``GlimpseEnv(**kwargs)``
    from the defaults (a 28x28 centred MNIST, 6 glimpses of one 8x8 scale).

    - ``dataset``: ``"mnist"`` (default), ``"fashion_mnist"``, or your own images as a
      :class:`~glimpse_env.images.ImageDataset` (any size, grayscale or RGB, any number of
      classes, your own train/val/test split): ``gym.make(id, dataset=ImageDataset(...))``
      keeps the id's canvas, clutter and retina settings.
    - ``variant``: ``"centred"`` (default), ``"translated"`` or ``"cluttered"``.
    - ``canvas_size``: int or ``(height, width)``, from the image's size (28) to 512 a side;
      the image's size for ``centred`` (default: the image's size for ``centred``, else 60).
    - ``n_clutter`` (1 to 128), ``clutter_size`` (1 to the image's shorter side, 28):
      clutter pieces and their side (``cluttered`` only).
    - ``n_glimpses``: ``T``, glimpses per episode, 1 to 1000 (default 6).
    - ``patch_size``, ``n_scales``, ``scale_factor``: the retina's ``g`` (default 8, at most
      the canvas), ``k`` (default 1, at most 16), ``s`` (default 2); the largest scale
      ``g * s**(k - 1)`` may be at most 4 times the canvas's longer side (a scale twice
      the canvas already sees all of it from any location).
    - ``split``: ``"train"`` (default; the first 55,000 training images), ``"val"`` (the
      last 5,000) or ``"test"``; an ``ImageDataset``'s own splits.
    - ``initial_location``: ``"centre"`` (default), ``"random"`` or an ``(x, y)`` pair of
      real numbers in ``[-1, 1]``.
    - ``train_size``: fix the training set to this many canvases, at most the train split
      (55,000; default ``None``: a fresh canvas every episode).
    - ``dataset_seed``: seed of the fixed canvases (default 0).
    - ``early_answer``: let the agent answer before the last glimpse with
      ``stop=Discrete(2)`` in the action (default ``False``: ``n_glimpses`` steps each).
    - ``glimpse_cost``: ``c``, subtracted from the reward of every step, a finite number
      >= 0 (default 0).
    - ``reward``: ``"terminal"`` (default: 1 for a right answer) or ``"every_step"``
      (``1/T`` for every right label); see *Rewards*.
    - ``data_dir``: data folder (else ``$GLIMPSE_DATA_DIR``, else the user cache); the
      only folder looked in.
    - ``render_mode``: ``None`` or ``"rgb_array"`` (``metadata["render_modes"]``); any other
      raises at construction, through ``gym.make`` too (``"human"``: wrap an ``"rgb_array"``
      environment in ``gymnasium.wrappers.HumanRendering``).

    Invalid settings raise at construction, naming the argument: ``TypeError`` for a wrong
    type (integers are Python, numpy or torch integers, never bools, floats or strings)
    or an unknown keyword, ``ValueError`` for a wrong value or a size above its limit.

    ## Vectorized environment

    Every id registers :class:`~glimpse_env.vector.GlimpseVectorEnv` as its
    ``vector_entry_point``: ``N`` episodes stepped as one batch of tensor operations with the
    same canvases, glimpses and rewards as this class (sub-environment ``j`` reset with
    ``options={"indices": idx}`` equals this environment reset with ``index=idx[j]``)::

        envs = gym.make_vec("GlimpseMNIST-Cluttered-v0", num_envs=256,
                            vectorization_mode="vector_entry_point")

    ## Version History

    - v0: initial release. Later, still v0: the options ``early_answer``, ``glimpse_cost``
      and ``reward="every_step"``, whose defaults give the episodes, rewards and results
      of the initial release exactly.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}  # noqa: RUF012 - Gymnasium's convention

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        render_mode: str | None = None,
        **settings: Unpack[TaskSettings],
    ) -> None:
        render_mode = check_render_mode(render_mode, self.metadata["render_modes"])
        config = TaskConfig.from_kwargs(settings, owner="GlimpseEnv", others=("data_dir", "render_mode"))
        self.task = GlimpseTask(config, data_dir=data_dir, device="cpu")
        self.config = config
        self.render_mode = render_mode
        self.observation_space = observation_space(config)  # type: ignore[assignment]
        self.action_space = action_space(config)  # type: ignore[assignment]
        self._retina = self.task.retina
        self._integral: IntegralImage | None = None
        self._canvas: np.ndarray | None = None
        self._label = -1
        self._t = 0
        self._done = True
        self._trail: list[np.ndarray] = []
        self._closed = False

    def _check_open(self) -> None:
        """A ``RuntimeError`` once :meth:`close` has been called."""
        if self._closed:
            raise RuntimeError(
                "this GlimpseEnv is closed; make a new environment with gym.make(...) (or GlimpseEnv(...))"
            )

    def close(self) -> None:
        """Release the episode's canvas and tables; ``reset``, ``step`` and ``render`` then raise
        ``RuntimeError``. Closing twice is harmless."""
        self._closed = True
        self._done = True
        self._integral = None
        self._canvas = None
        self._trail = []

    @property
    def canvas(self) -> np.ndarray:
        """The ``(H, W)`` uint8 canvas of the current episode (``(C, H, W)`` for RGB images),
        for visualisation only."""
        self._check_open()
        if self._canvas is None:
            raise ResetNeeded("no episode yet: call reset() first")
        return self._canvas

    def _observe(self, location: np.ndarray) -> ObsType:
        assert self._integral is not None
        glimpse = self._retina.from_integral(self._integral, location.reshape(1, 2))
        assert isinstance(glimpse, np.ndarray)  # numpy table and location: numpy glimpse
        return {"glimpse": glimpse[0], "location": location}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        self._check_open()
        seed = check_seed(seed)  # checked before anything changes
        index = self._reset_index(options)
        super().reset(seed=seed)
        episodes = self.task.sample(self.np_random, 1, None if index is None else np.array([index]))
        canvases, labels = self.task.canvases(episodes)
        self._integral = self._retina.integral(canvases).numpy()
        self._canvas = canvases[0].numpy()
        self._label = int(labels[0])
        self._t = 0
        self._done = False
        location = self.task.initial_locations(self.np_random, 1)[0]
        self._trail = [location]
        info: dict[str, Any] = {"location": location.copy(), "step": 0}
        if episodes.canvas_indices[0] >= 0:
            info["index"] = int(episodes.canvas_indices[0])
        return self._observe(location), info

    def _reset_index(self, options: Any) -> int | None:
        """``options["index"]``: one integer, a canvas of the fixed set; ``None`` without it."""
        if options is None:
            return None
        if not isinstance(options, Mapping):
            raise TypeError(
                f"reset options must be a dict such as {{'index': 3}} (or None), got "
                f"{type(options).__name__} {reprlib.repr(options)}"
            )
        unknown = set(options) - {"index"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(map(str, unknown))}; the only option is 'index'")
        index = options.get("index")
        if index is None:
            return None
        if not is_integer(index):
            raise TypeError(
                f"options['index'] must be one integer (a canvas of the fixed set: "
                f"{self.task.describe_fixed_set()}), got {reprlib.repr(index)} of type "
                f"{type(index).__name__}; GlimpseVectorEnv takes options={{'indices': [...]}} for a batch"
            )
        return self.task.check_index(int(index))

    def step(self, action: ActType) -> tuple[ObsType, SupportsFloat, bool, bool, dict[str, Any]]:
        self._check_open()
        if self._done:
            raise ResetNeeded(
                "call reset() before step(): "
                + ("no episode has started" if self._integral is None else "the episode has terminated")
            )
        config = self.config
        stop = False
        if config.early_answer:
            location, checked_label, checked_stop = check_early_action(action, self.task.num_classes)
            stop = bool(checked_stop)
        else:
            location, checked_label = check_action(action, self.task.num_classes)  # a location of our own
        label = int(checked_label)
        self._t += 1
        self._trail.append(location)
        info: dict[str, Any] = {"location": location.copy(), "step": self._t}
        if config.early_answer:
            info["glimpses"] = self._t
        answered = stop or self._t >= config.n_glimpses
        correct = label == self._label
        reward = config.step_reward(self._t, correct, answered)
        if answered:
            self._done = True
            info.update(label=self._label, prediction=label, correct=correct)
        return self._observe(location), reward, self._done, False, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        self._check_open()
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='rgb_array'")
            return None
        return draw_glimpses(self.canvas, self._retina, np.stack(self._trail))


def make_glimpse_env(**kwargs: Any) -> GlimpseEnv:
    """``GlimpseEnv(**kwargs)``: the ``entry_point`` the ``GlimpseMNIST-*`` ids are registered with.

    A function rather than the class, so that ``gym.make`` hands ``render_mode`` to the
    constructor as given, to be checked there: given a class, ``gym.make`` reads its
    ``metadata`` first and turns ``render_mode="human"`` into ``HumanRendering`` over
    ``"rgb_array"`` (which fails later, without pygame) and fails on a non-string mode with
    a Python-internal message.
    """
    return GlimpseEnv(**kwargs)
