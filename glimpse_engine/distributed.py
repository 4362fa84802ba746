"""Data-parallel training with ``torchrun``, shared by the agent and the baselines.

    torchrun --nproc_per_node=2 -m agents.ram_reinforce --env GlimpseMNIST-v0 ...
    torchrun --nproc_per_node=4 -m baselines.train --model cnn --device cuda ...
    torchrun --nnodes=2 --node_rank=0 --rdzv_backend=c10d --rdzv_endpoint=HOST:29400 \\
        --nproc_per_node=8 -m agents.ram_reinforce --device cuda ...

PyTorch's own engine, nothing home-made: ``torchrun`` starts one process per rank and
sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`join` turns them into a process
group (NCCL on GPUs, gloo on CPUs, chosen from ``--device``) and gives every rank its
device (``cuda:LOCAL_RANK``); the training scripts wrap their module in
:class:`~torch.nn.parallel.DistributedDataParallel`, which averages the gradients of the
ranks in the backward pass. Without ``torchrun`` (or with one process) :func:`join`
returns :data:`SINGLE` and nothing else changes.

Conventions of the two scripts under ``torchrun`` (documented in their ``--batch-size``):

- ``--batch-size`` is per rank: an update sees ``world_size * batch_size`` episodes or
  images, an epoch the same number of them as in one process, in ``world_size`` times
  fewer updates. The learning rate is never rescaled: give the one you want.
- Every rank draws its own training data (its own environment seed or canvas stream,
  :func:`rank_seed`); a fixed training set (``--train-size``) is split into disjoint
  shares per update (:func:`update_share`).
- Validation and test split the fixed canvases across the ranks and combine the counts,
  so the accuracy is the one a single process reports for the same weights.
- Decisions (early stopping, the time limit) are taken on rank 0 and sent to every rank
  (:func:`from_main`); only rank 0 writes the run folder.
- A rank that raises ends the job: ``torchrun`` stops the other ranks and reports the
  error (the entry points are wrapped in :func:`~torch.distributed.elastic.multiprocessing.errors.record`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "SINGLE",
    "Cluster",
    "data_parallel",
    "from_main",
    "gather_objects",
    "join",
    "launched_by_torchrun",
    "leave",
    "mean_over_ranks",
    "on_main",
    "rank_seed",
    "update_share",
]

T = TypeVar("T")

#: the variables torchrun sets for every rank
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class Cluster(NamedTuple):
    """Where this process stands in a data-parallel job."""

    rank: int
    """This process's rank, ``0 .. world_size - 1``."""
    world_size: int
    """Processes in the job (1: no ``torchrun``, or one process)."""
    local_rank: int
    """Rank on this machine (the GPU it uses)."""

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes the run folder, TensorBoard and progress bars."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process: gradients and counts are combined across ranks."""
        return self.world_size > 1

    def say(self, *parts: object) -> None:
        """``print`` on rank 0 only (the job's one voice)."""
        if self.is_main:
            print(*parts)


#: a job of one process
SINGLE = Cluster(rank=0, world_size=1, local_rank=0)


def launched_by_torchrun() -> bool:
    """Whether ``torchrun`` (or another launcher that sets its variables) started this process."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def join(device: torch.device) -> tuple[Cluster, torch.device]:
    """Join the ``torchrun`` job this process belongs to, if any.

    Args:
        device: the device the user asked for (``cpu`` or ``cuda``).

    Returns:
        The :class:`Cluster` and this rank's device: ``cuda:LOCAL_RANK`` on GPUs (NCCL
        between them), the CPU otherwise (gloo). One process: :data:`SINGLE` and ``device``.
    """
    if not launched_by_torchrun():
        return SINGLE, device
    cluster = Cluster(
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
        local_rank=int(os.environ["LOCAL_RANK"]),
    )
    if cluster.world_size == 1:
        return SINGLE, device
    if device.type == "cuda":
        visible = torch.cuda.device_count()
        if cluster.local_rank >= visible:
            raise ValueError(
                f"rank {cluster.rank} has LOCAL_RANK {cluster.local_rank}, but this machine shows {visible} "
                f"GPU(s): start at most {visible} processes per node (torchrun --nproc_per_node={visible})"
            )
        device = torch.device("cuda", cluster.local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return cluster, device


def leave() -> None:
    """Leave the process group (if this process joined one), once every rank has got here:
    a rank that tore its group down while another was still talking to it could abort at
    exit ("terminate called without an active exception", seen in about 1 run in 8)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def data_parallel(module: torch.nn.Module, cluster: Cluster, device: torch.device) -> torch.nn.Module:
    """What the updates run: ``module`` wrapped in
    :class:`~torch.nn.parallel.DistributedDataParallel` under ``torchrun`` (on this rank's
    GPU, or the CPU), ``module`` itself in one process."""
    if not cluster.distributed:
        return module
    return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)


def mean_over_ranks(tensor: torch.Tensor, cluster: Cluster) -> torch.Tensor:
    """``tensor`` averaged over the ranks, in place (e.g. an epoch's sums of losses, so every
    rank logs the means over all of the epoch's images); unchanged in one process."""
    if cluster.distributed:
        dist.all_reduce(tensor)
        tensor /= cluster.world_size
    return tensor


def rank_seed(seed: int, cluster: Cluster) -> int:
    """The seed of this rank's own random streams: ``seed`` itself in one process (so a
    run without ``torchrun`` is the run it always was), else one drawn from ``(seed, rank)``."""
    if not cluster.distributed:
        return seed
    return int(np.random.SeedSequence([seed, cluster.rank]).generate_state(1, np.uint32)[0])


def update_share(order: np.ndarray, update: int, batch_size: int, cluster: Cluster) -> np.ndarray:
    """This rank's ``batch_size`` indices of ``update``: update ``u`` takes the
    ``world_size * batch_size`` entries of ``order`` after the ``u`` updates before it, and
    rank ``r`` the ``r``-th block of them (disjoint across ranks; in one process, the
    ``u``-th block of ``batch_size``)."""
    first = (update * cluster.world_size + cluster.rank) * batch_size
    return order[first : first + batch_size]


def from_main(value: T, cluster: Cluster) -> T:
    """Rank 0's ``value`` on every rank (a picklable object): a decision taken once."""
    if not cluster.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[no-any-return]


def gather_objects(value: Any, cluster: Cluster) -> Sequence[Any]:
    """Every rank's ``value`` (picklable), in rank order, on every rank."""
    if not cluster.distributed:
        return [value]
    values: list[Any] = [None] * cluster.world_size
    dist.all_gather_object(values, value)
    return values


def on_main(fn: Any, cluster: Cluster) -> Any:
    """``fn()`` run on rank 0 alone, its result sent to every rank; an exception it raises
    is raised on every rank (so a refused run folder ends the job with its message)."""
    result, error = None, None
    if cluster.is_main:
        try:
            result = fn()
        except Exception as exc:  # sent to the other ranks, then raised here too
            error = exc
    result, error = from_main((result, error), cluster)
    if error is not None:
        raise error
    return result
