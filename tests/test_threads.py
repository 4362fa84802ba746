"""CPU work stays on the calling thread: blocks below torch's grain size, numpy canvases.

Torch splits a CPU operation above its grain size across its intra-op threads; on a
machine whose cores are busy every split stalls (see :mod:`glimpse_env.devices`,
"Threads"). These tests check that the environments' CPU work never wakes torch's other
threads, without changing any thread setting, and that working in blocks gives the same
bits as working in one piece.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import glimpse_env.devices as devices_module
from glimpse_env import GlimpseVectorEnv
from glimpse_env.canvas import CanvasSpec, _place, compose
from glimpse_env.data import load_split
from glimpse_env.retina import SERIAL_ELEMENTS, Retina

TASKS = Path("/proc/self/task")
#: CPU time torch's other threads may use while the calling thread works (they are idle)
IDLE_NS = 2_000_000


def other_threads_cpu_ns() -> int:
    """CPU time used so far by every thread of this process but the calling one (Linux)."""
    me = threading.get_native_id()
    total = 0
    for task in TASKS.iterdir():
        if int(task.name) != me:
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except FileNotFoundError:  # a thread that ended meanwhile
                pass
    return total


def idle_other_threads() -> None:
    """Start torch's intra-op threads with one large operation, then let them go idle."""
    torch.ones(1 << 22).cumsum(0)
    time.sleep(0.1)


needs_threads = pytest.mark.skipif(
    not TASKS.is_dir() or torch.get_num_threads() < 2,
    reason="needs Linux's per-thread CPU times and torch with more than one intra-op thread",
)


@needs_threads
@pytest.mark.parametrize("env_id", ["GlimpseMNIST-v0", "GlimpseMNIST-Cluttered-v0"])
def test_vector_env_steps_and_resets_on_the_calling_thread(env_id):
    envs = gym.make_vec(env_id, num_envs=1024, vectorization_mode="vector_entry_point")
    assert isinstance(envs, GlimpseVectorEnv)
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    steps = 4 * (envs.config.n_glimpses + 1)  # four whole-batch autoresets
    actions = [
        {"location": rng.uniform(-1, 1, (1024, 2)).astype(np.float32), "label": rng.integers(0, 10, 1024)}
        for _ in range(steps)
    ]
    threads = torch.get_num_threads()
    idle_other_threads()
    before = other_threads_cpu_ns()
    for action in actions:
        envs.step(action)
    envs.reset(seed=1)
    assert other_threads_cpu_ns() - before < IDLE_NS
    assert torch.get_num_threads() == threads  # the caller's setting is untouched


@needs_threads
def test_partial_resets_stay_on_the_calling_thread():
    """Sub-environments reset out of phase (reset_mask): their tables are copied in on one thread."""
    envs = GlimpseVectorEnv(
        1024,
        variant="cluttered",
        canvas_size=40,
        n_clutter=5,
        clutter_size=5,
        patch_size=12,
        n_scales=3,
        autoreset_mode="DISABLED",
    )
    envs.reset(seed=0)
    half = np.arange(1024) % 2 == 0
    threads = torch.get_num_threads()
    idle_other_threads()
    before = other_threads_cpu_ns()
    for _ in range(6):
        envs.reset(options={"reset_mask": half})
        envs.reset(options={"reset_mask": ~half})
    assert other_threads_cpu_ns() - before < IDLE_NS
    assert torch.get_num_threads() == threads


@needs_threads
def test_retina_on_a_large_cpu_batch_uses_the_calling_thread():
    retina = Retina(12, 4, 2)
    images = torch.randint(0, 256, (512, 3, 50, 70), dtype=torch.uint8)
    locations = torch.rand(512, 2) * 2 - 1
    as_float = images.float() / 255
    idle_other_threads()
    before = other_threads_cpu_ns()
    for _ in range(3):  # tens of milliseconds: a busy thread's CPU time shows within a scheduler tick
        retina.from_integral(retina.integral(images), locations)
        retina(as_float, locations)
    assert other_threads_cpu_ns() - before < IDLE_NS


@pytest.mark.parametrize(
    ("batch", "channels", "height", "width", "geometry", "as_float"),
    [
        (1024, 1, 28, 28, (8, 1, 2), False),  # GlimpseMNIST-v0 at N = 1024
        (300, 1, 40, 40, (12, 3, 2), False),  # Cluttered at N = 300: uneven blocks
        (137, 3, 61, 45, (5, 3, 3), True),  # channels, float tables, non-square
        (2, 1, 200, 190, (8, 2, 2), False),  # one canvas is more than a block
    ],
)
def test_blocks_give_the_same_bits_as_one_piece(
    monkeypatch, batch, channels, height, width, geometry, as_float
):
    generator = torch.Generator().manual_seed(batch)
    images = torch.randint(0, 256, (batch, channels, height, width), dtype=torch.uint8, generator=generator)
    if as_float:
        images = images.float() / 255
    locations = torch.rand(batch, 2, generator=generator) * 2.4 - 1.2  # some scales leave the canvas
    locations = locations.clamp(-1, 1)
    g, k, s = geometry
    assert batch * channels * (height + 1) * (width + 1) > SERIAL_ELEMENTS  # tables in several blocks
    blocked = Retina(g, k, s)
    integral = blocked.integral(images)
    glimpses = blocked.from_integral(integral, locations)

    monkeypatch.setattr(devices_module, "SERIAL_ELEMENTS", 2**62)  # one piece
    whole = Retina(g, k, s)
    whole_integral = whole.integral(images)
    assert torch.equal(integral.table, whole_integral.table)
    assert torch.equal(glimpses, whole.from_integral(whole_integral, locations))
    np.testing.assert_array_equal(whole.from_integral(integral.numpy(), locations.numpy()), glimpses.numpy())


@pytest.mark.parametrize(
    "spec",
    [
        CanvasSpec.centred(),
        CanvasSpec.translated(60),
        CanvasSpec.cluttered(40, 5, 5),
        CanvasSpec.cluttered(100, 8, 8),
        CanvasSpec("cluttered", 50, 70, 40, 28),  # pieces overlap each other and the digit
    ],
)
def test_numpy_and_torch_canvases_are_the_same(spec):
    """The CPU path (numpy) and the device path (torch, here run on the CPU) agree."""
    images = load_split("mnist", "test").images
    rng = np.random.default_rng(0)
    indices = rng.integers(0, images.shape[0], 300)
    keys = rng.integers(0, 2**64, 300, dtype=np.uint64)
    made = compose(spec, images, torch.from_numpy(indices), keys)
    assert made.dtype == torch.uint8 and made.shape == (300, *spec.shape)
    digits = torch.index_select(images, 0, torch.from_numpy(indices))
    if spec.variant == "centred":
        by_torch = digits
    else:
        by_torch = _place(spec, digits, images, torch.from_numpy(indices), keys)
    assert isinstance(by_torch, torch.Tensor)
    assert torch.equal(made, by_torch)
