"""What the programs that load a trained model share: the machine flags of every program
(:class:`MachineArgs`), a trainer's run flags (:class:`RunArgs`), and the checks the
evaluation and picture programs make before anything is loaded or written."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from glimpse_engine.cli import use_data_dir
from glimpse_env.cli import check_data_dir, set_threads
from glimpse_env.devices import check_device

__all__ = ["MachineArgs", "RunArgs", "one_source", "prepare_machine"]


@dataclass
class MachineArgs:
    """Where a program runs and where its data is."""

    device: str = "cpu"
    """cpu or cuda"""
    threads: int | None = None
    """torch intra-op threads (default: torch's own, the fastest on a machine to yourself); pass 1 when other
    processes share the cores, whose busy cores stall torch's threads (an epoch 3-4x slower; docs/speed.md)"""
    data_dir: str | None = None
    """folder of the MNIST / Fashion-MNIST raw files (default: $GLIMPSE_DATA_DIR, else the user cache)"""


@dataclass
class RunArgs(MachineArgs):
    """A training run's folder, its limits and how it reports."""

    time_limit: float | None = None
    """stop after the first epoch that ends past this many minutes of training (the test still runs;
    a --resume starts the clock again); a row of the results is bounded by --epochs instead"""
    run_dir: str | None = None
    """run folder (default: runs/<model>-<env>-seed<seed>)"""
    resume: str | None = None
    """continue the run in this folder from its last checkpoint (--epochs may be raised)"""
    overwrite: bool = False
    """delete an existing run of this program in --run-dir first (a folder that holds anything else is
    refused)"""
    progress: bool = True
    """show a progress bar"""


def prepare_machine(args: MachineArgs) -> torch.device:
    """Check ``--data-dir`` and ``--threads`` and apply them, then check ``--device``; a
    ``ValueError`` naming the flag otherwise. Returns the device."""
    check_data_dir(args.data_dir)
    set_threads(args.threads)
    use_data_dir(args.data_dir)
    return check_device(args.device, "--device")


def one_source(checkpoint: str, pretrained: str | None, *, trainer: str, shipped: str) -> None:
    """Exit with one line unless exactly one of ``--checkpoint`` and ``--pretrained`` is given.

    ``trainer`` is the program whose checkpoints are meant (e.g. ``agents.ram_reinforce``),
    ``shipped`` how ``--pretrained`` is spelt for this program (e.g. ``--pretrained ENV_ID``).
    """
    if bool(checkpoint) == (pretrained is not None):
        sys.exit(
            f"error: give either --checkpoint PATH (a checkpoint of python -m {trainer}) or "
            f"{shipped} (a model that ships in weights/), not both"
        )
