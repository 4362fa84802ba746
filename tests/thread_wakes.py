"""How often the environments' CPU work wakes torch's other threads: run by test_threads.py.

    OMP_WAIT_POLICY=passive python tests/thread_wakes.py OUT.json

Torch splits a CPU operation above its grain size across its intra-op threads (OpenMP).
With ``OMP_WAIT_POLICY=passive`` an idle OpenMP thread sleeps until the next split wakes
it, so the number of times the kernel schedules the process's other threads (the second
field of ``/proc/self/task/*/schedstat``'s run counts) counts the splits: one or more per
split, none when the work stays on the calling thread. Unlike their CPU time, the count
does not depend on how long a woken thread spins, so it reads the same on a quiet and a
loaded machine.

Every case below is one path of the environments: each registered id at N = 256 and
N = 1024, stepped through the numpy API (``step``) and the tensor API (``step_tensors``)
for two whole episodes and their autoresets, then a seeded whole-batch reset and partial
resets (``reset_mask``); and the retina's own entry points on a large batch (integral
tables, box sums, float images, padded crops with float32 and float64 locations,
non-square). The result is a JSON object ``{case: wakes}``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import glimpse_env  # noqa: F401  (registers the ids)
from glimpse_env import GlimpseVectorEnv
from glimpse_env.registration import ENV_SPECS
from glimpse_env.retina import Retina

TASKS = Path("/proc/self/task")
ME = threading.get_native_id()


def other_thread_runs() -> int:
    """How many times the kernel has scheduled the threads of this process but this one."""
    total = 0
    for task in TASKS.iterdir():
        if int(task.name) != ME:
            try:
                total += int((task / "schedstat").read_text().split()[2])
            except FileNotFoundError:  # a thread that ended meanwhile
                pass
    return total


def wakes(work: Callable[[], object]) -> int:
    """The runs of the other threads while ``work`` runs (after one untimed call)."""
    work()
    time.sleep(0.05)  # a thread that is still going to sleep is counted before, not during
    before = other_thread_runs()
    work()
    return other_thread_runs() - before


def vector_env_case(env_id: str, n: int, api: str) -> Callable[[], object]:
    envs = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point")
    assert isinstance(envs, GlimpseVectorEnv)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    steps = 2 * (envs.config.n_glimpses + 1)  # two whole-batch autoresets
    locations = [rng.uniform(-1, 1, (n, 2)).astype(np.float32) for _ in range(steps)]
    labels = [rng.integers(0, 10, n) for _ in range(steps)]
    half = np.arange(n) % 2 == 0

    def work() -> None:
        for location, label in zip(locations, labels, strict=True):
            if api == "numpy":
                envs.step({"location": location, "label": label})
            else:
                envs.step_tensors(torch.from_numpy(location), torch.from_numpy(label))
        envs.reset(seed=1)
        envs.reset(options={"reset_mask": half})
        envs.reset(options={"reset_mask": ~half})

    return work


def retina_cases() -> dict[str, Callable[[], object]]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (512, 3, 50, 70), dtype=torch.uint8, generator=generator)
    locations = torch.rand(512, 2, generator=generator) * 2 - 1
    boxes = Retina(12, 4, 2)
    crops = Retina(8, 1, 2)
    as_float = images.float() / 255
    padded = crops.padded(images)
    square = crops.padded(images[:, :, :50, :50])
    return {
        "retina integral + from_integral": lambda: boxes.from_integral(boxes.integral(images), locations),
        "retina float images": lambda: boxes(as_float, locations),
        "retina padded crops, float32": lambda: crops.from_padded(padded, locations),
        "retina padded crops, float64": lambda: crops.from_padded(padded, locations.double()),
        "retina padded crops, square": lambda: crops.from_padded(square, locations),
        "retina padded": lambda: crops.padded(images),
    }


def main(out: Path) -> None:
    torch.ones(1 << 22).cumsum(0)  # start torch's threads, then let them sleep
    time.sleep(0.1)
    result: dict[str, int] = {"threads": torch.get_num_threads()}
    for env_id in (spec.env_id for spec in ENV_SPECS):
        for n in (256, 1024):
            for api in ("numpy", "tensor"):
                result[f"{env_id} N={n} {api} API"] = wakes(vector_env_case(env_id, n, api))
    for name, work in retina_cases().items():
        result[name] = wakes(work)
    result["control: one split"] = wakes(lambda: torch.ones(1 << 22).cumsum(0))
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
