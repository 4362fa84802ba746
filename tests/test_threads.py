"""CPU work stays on the calling thread: blocks below torch's grain size, numpy canvases.

Torch splits a CPU operation above its grain size across its intra-op threads; on a
machine whose cores are busy every split stalls (see :mod:`glimpse_env.devices`,
"Threads"). These tests check that no path of the environments' CPU work wakes torch's
other threads (counted by tests/thread_wakes.py in a process of its own, whose idle threads
sleep), without changing any thread setting, and that working in blocks gives the same
bits as working in one piece.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import glimpse_env.devices as devices_module
from glimpse_env.canvas import CanvasSpec, _place, compose
from glimpse_env.data import load_split
from glimpse_env.registration import ENV_SPECS
from glimpse_env.retina import SERIAL_ELEMENTS, Retina

TASKS = Path("/proc/self/task")
WAKES = Path(__file__).with_name("thread_wakes.py")


@pytest.fixture(scope="module")
def wakes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """tests/thread_wakes.py's counts: how often each path woke torch's other threads."""
    out = tmp_path_factory.mktemp("wakes") / "wakes.json"
    # two intra-op threads whatever the machine; idle threads sleep, so every split is counted
    env = {**os.environ, "OMP_WAIT_POLICY": "passive", "OMP_NUM_THREADS": "2"}
    subprocess.run([sys.executable, str(WAKES), str(out)], env=env, check=True, timeout=600)
    return json.loads(out.read_text())


@pytest.mark.skipif(not TASKS.is_dir(), reason="needs Linux's per-thread scheduler counts")
def test_no_path_of_the_environments_wakes_torchs_threads(wakes):
    """Every id at N = 256 and 1024 through both APIs (steps, autoresets, seeded and partial
    resets) and the retina's entry points: no operation is split across torch's threads."""
    assert wakes.pop("threads") == 2
    assert wakes.pop("control: one split") >= 1  # the count sees a split when there is one
    ids = {spec.env_id for spec in ENV_SPECS}
    assert {case.split(" N=")[0] for case in wakes if case.startswith("Glimpse")} == ids
    assert len(wakes) == 4 * len(ids) + 6
    assert {case: count for case, count in wakes.items() if count} == {}


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


@pytest.mark.parametrize(
    ("threads", "device", "load", "torch_threads", "speaks"),
    [
        (None, "cpu", 1.5, 2, True),  # torch's own threads on a busy machine
        (1, "cpu", 1.5, 2, False),  # --threads given: the user chose
        (None, "cpu", 0.1, 2, False),  # a quiet machine
        (None, "cuda", 1.5, 2, False),  # the model's work is on the GPU
        (None, "cpu", 1.5, 1, False),  # one thread: nothing to split
    ],
)
def test_trainers_advise_threads_on_a_busy_machine(monkeypatch, threads, device, load, torch_threads, speaks):
    from glimpse_engine import fit

    monkeypatch.setattr(fit.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(fit.torch, "get_num_threads", lambda: torch_threads)
    note = fit.busy_machine_note(threads, torch.device(device))
    if speaks:
        assert note is not None and "--threads 1" in note and f"{load:.1f}" in note and "\n" not in note
    else:
        assert note is None
