"""The errors of a training run that its programs report as one line (see
:func:`glimpse_engine.cli.run_main`)."""

from __future__ import annotations

__all__ = ["RUN_ERRORS", "CheckpointError", "RunFolderError", "TrainingDiverged"]


class RunFolderError(RuntimeError):
    """A run folder that cannot be used as asked (exists, missing, or not a run folder)."""


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, corrupted, unsafe, or from another configuration."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


#: what :func:`glimpse_engine.cli.run_main` reports as one line besides bad values and files
RUN_ERRORS: tuple[type[Exception], ...] = (RunFolderError, CheckpointError, TrainingDiverged)
