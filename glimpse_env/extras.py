"""The optional dependencies (extras) of the package, and the one-line error a program
gives when one it needs is missing.

``pip install glimpse-mnist`` gives the environments, the RAM and the baselines; the
stable-baselines3 adapters (:class:`glimpse_env.wrappers.SB3VecEnv`, ``--policy sb3:``,
``examples/recurrent_ppo.py``) need the ``sb3`` extra, and Gymnasium's ``RecordVideo`` the
``video`` extra (moviepy). Nothing in :mod:`glimpse_env` imports an extra's package until
it is used, so ``import glimpse_env`` and ``import glimpse_env.evaluation`` work without them.
"""

from __future__ import annotations

import importlib

__all__ = ["SB3_PACKAGES", "MissingExtraError", "missing_sb3_message", "require_sb3"]

#: the distributions of the ``sb3`` extra and the modules they install
SB3_PACKAGES = {"stable-baselines3": "stable_baselines3", "sb3-contrib": "sb3_contrib"}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` that
    fixes it. ``glimpse_env.cli.run_cli`` reports it as one line."""


def missing_sb3_message(what: str) -> str:
    """``"<what> needs stable-baselines3 and sb3-contrib: pip install 'glimpse-mnist[sb3]'"``."""
    return f"{what} needs stable-baselines3 and sb3-contrib: pip install 'glimpse-mnist[sb3]'"


def require_sb3(what: str) -> None:
    """Import stable-baselines3 and sb3-contrib, or raise :class:`MissingExtraError` saying
    that ``what`` (a class, a flag, a program) needs them and how to install them."""
    for module in SB3_PACKAGES.values():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name is None or error.name.split(".")[0] != module:
                raise  # a dependency of SB3 itself is broken: keep the real error
            raise MissingExtraError(missing_sb3_message(what), name=module) from None
