"""The registered ``GlimpseMNIST-*`` ids and the paper settings they reproduce."""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym


class EnvSpec(NamedTuple):
    """One registered environment: its id, its settings (keyword arguments of
    :class:`~glimpse_env.task.TaskConfig`, exactly what ``gym.spec(env_id).kwargs`` holds)
    and the setting of the literature it reproduces."""

    env_id: str
    kwargs: dict[str, Any]
    reproduces: str


ENV_SPECS: tuple[EnvSpec, ...] = (
    EnvSpec(
        "GlimpseMNIST-v0",
        {
            "dataset": "mnist",
            "variant": "centred",
            "n_glimpses": 6,
            "patch_size": 8,
            "n_scales": 1,
            "scale_factor": 2,
        },
        "RAM paper (Mnih et al. 2014) Table 1a: 28x28 MNIST",
    ),
    EnvSpec(
        "GlimpseMNIST-Translated-v0",
        {
            "dataset": "mnist",
            "variant": "translated",
            "canvas_size": 60,
            "n_glimpses": 8,
            "patch_size": 12,
            "n_scales": 3,
            "scale_factor": 2,
        },
        "RAM paper Table 1b: 60x60 translated MNIST",
    ),
    EnvSpec(
        "GlimpseMNIST-Cluttered-v0",
        {
            "dataset": "mnist",
            "variant": "cluttered",
            "canvas_size": 40,
            "n_clutter": 5,
            "clutter_size": 5,
            "n_glimpses": 6,
            "patch_size": 12,
            "n_scales": 3,
            "scale_factor": 2,
        },
        "the study (Wu et al.): 40x40 cluttered MNIST, 5 pieces of 5x5",
    ),
    EnvSpec(
        "GlimpseMNIST-Cluttered60-v0",
        {
            "dataset": "mnist",
            "variant": "cluttered",
            "canvas_size": 60,
            "n_clutter": 4,
            "clutter_size": 8,
            "n_glimpses": 8,
            "patch_size": 12,
            "n_scales": 3,
            "scale_factor": 2,
        },
        "RAM paper Table 2a: 60x60 cluttered MNIST, 4 pieces of 8x8",
    ),
    EnvSpec(
        "GlimpseMNIST-Cluttered100-v0",
        {
            "dataset": "mnist",
            "variant": "cluttered",
            "canvas_size": 100,
            "n_clutter": 8,
            "clutter_size": 8,
            "n_glimpses": 8,
            "patch_size": 12,
            "n_scales": 4,
            "scale_factor": 2,
        },
        "RAM paper Table 2b: 100x100 cluttered MNIST, 8 pieces of 8x8",
    ),
    EnvSpec(
        "GlimpseMNIST-Fashion-v0",
        {
            "dataset": "fashion_mnist",
            "variant": "centred",
            "n_glimpses": 6,
            "patch_size": 7,
            "n_scales": 3,
            "scale_factor": 2,
        },
        "the study (Wu et al.): Fashion-MNIST, 6 glimpses of 7x7 at 3 scales",
    ),
)


def check_env_id(env_id: str) -> str:
    """``env_id`` if it is one of the glimpse environments' ids, else a ``ValueError`` naming them."""
    known = [spec.env_id for spec in ENV_SPECS]
    if env_id not in known:
        raise ValueError(f"unknown environment id {env_id!r}; the glimpse environments are {known}")
    return env_id


def register_envs() -> None:
    """Register every id of :data:`ENV_SPECS` with Gymnasium (idempotent)."""
    for spec in ENV_SPECS:
        if spec.env_id in gym.registry:
            continue
        gym.register(
            id=spec.env_id,
            entry_point="glimpse_env.env:make_glimpse_env",  # the constructor checks render_mode
            vector_entry_point="glimpse_env.vector:GlimpseVectorEnv",
            kwargs=dict(spec.kwargs),
        )
