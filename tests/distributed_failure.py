"""Run by ``tests/test_distributed.py`` under torchrun: rank 1 raises while rank 0 waits
for it in a collective, as a training rank that fails mid-epoch would leave the others."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record

from glimpse_engine.distributed import join, leave


@record
def main() -> None:
    cluster, _ = join(torch.device("cpu"))
    if cluster.rank == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.all_reduce(torch.ones(1))  # waits for rank 1, which never comes
    leave()


if __name__ == "__main__":
    main()
