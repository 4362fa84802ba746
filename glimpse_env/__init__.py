"""glimpse-mnist: Gymnasium environments for hard visual attention on MNIST and Fashion-MNIST.

Importing the package registers the ``GlimpseMNIST-*-v0`` environments::

    import gymnasium as gym
    import glimpse_env  # noqa: F401

    env = gym.make("GlimpseMNIST-Cluttered-v0")

Any id takes your own images too (:class:`ImageDataset`)::

    dataset = glimpse_env.ImageDataset(train=(x_train, y_train), test=(x_test, y_test))
    env = gym.make("GlimpseMNIST-Cluttered-v0", dataset=dataset)
"""

from __future__ import annotations

from glimpse_env.canvas import CanvasSpec
from glimpse_env.canvas_source import CanvasBatch, CanvasSource
from glimpse_env.data import DataError, DataIntegrityError, DataNotFoundError, DataReadError, load_split
from glimpse_env.env import GlimpseEnv
from glimpse_env.images import ImageDataset
from glimpse_env.registration import ENV_SPECS, register_envs
from glimpse_env.retina import IntegralImage, PaddedImage, Retina
from glimpse_env.task import TaskConfig
from glimpse_env.vector import GlimpseVectorEnv, TensorObs, TensorStep

__all__ = [
    "ENV_SPECS",
    "CanvasBatch",
    "CanvasSource",
    "CanvasSpec",
    "DataError",
    "DataIntegrityError",
    "DataNotFoundError",
    "DataReadError",
    "GlimpseEnv",
    "GlimpseVectorEnv",
    "ImageDataset",
    "IntegralImage",
    "PaddedImage",
    "Retina",
    "TaskConfig",
    "TensorObs",
    "TensorStep",
    "load_split",
    "register_envs",
]

register_envs()
