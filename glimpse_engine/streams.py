"""Random streams for checkpoints: torch's (CPU and GPU) and every rank's, so that a resumed
run draws what the uninterrupted run would have drawn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from glimpse_engine.distributed import Cluster, gather_objects

__all__ = ["own_streams", "rank_streams", "restore_torch_rng", "torch_rng_state"]


def torch_rng_state(device: torch.device) -> dict[str, Any]:
    """torch's random streams, for a checkpoint: the CPU's (``torch_rng``) and, on a GPU,
    the device's (``cuda_rng``; ``None`` elsewhere)."""
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def restore_torch_rng(state: Mapping[str, Any], device: torch.device) -> None:
    """Put back the streams :func:`torch_rng_state` saved in ``state``."""
    torch.set_rng_state(state["torch_rng"].cpu())
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)


#: key of a checkpoint's random streams of ranks 1 .. W - 1 (rank 0's are at the top level)
RANK_STREAMS_KEY = "rank_streams"
#: key of the number of ranks of the job that wrote a checkpoint (absent: 1)
WORLD_SIZE_KEY = "world_size"


def rank_streams(own: Mapping[str, Any], cluster: Cluster) -> dict[str, Any]:
    """Every rank's random streams for a checkpoint (a collective: every rank calls it).

    ``own`` is this rank's (e.g. :func:`torch_rng_state` and its environment's generator).
    Rank 0's go at the top level of the checkpoint, as a single process writes them, the
    others' under :data:`RANK_STREAMS_KEY`, with the job's size under :data:`WORLD_SIZE_KEY`.
    """
    everyone = gather_objects(dict(own), cluster)
    return {**everyone[0], WORLD_SIZE_KEY: cluster.world_size, RANK_STREAMS_KEY: list(everyone[1:])}


def own_streams(state: Mapping[str, Any], cluster: Cluster) -> Mapping[str, Any] | None:
    """This rank's random streams in a checkpoint of :func:`rank_streams`, or ``None`` when
    a job of another size wrote it (a resume on another number of ranks: the caller starts
    its streams anew)."""
    if state.get(WORLD_SIZE_KEY, 1) != cluster.world_size:
        return None
    return state if cluster.rank == 0 else state[RANK_STREAMS_KEY][cluster.rank - 1]
