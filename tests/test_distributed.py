"""Data-parallel training under torchrun (2 CPU processes, gloo), on the real data, tiny budgets.

Each program is trained for one update in one process with a batch of 2B and under
torchrun on 2 ranks with B each, from the same seed on the same fixed training canvases:
the weights must agree. The torchrun run must write one run folder whose checkpoint
evaluates in one process to exactly the counts the two ranks reported, and must resume
under torchrun and in one process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from agents import ram_reinforce
from agents.evaluate import evaluate_model, load_model
from agents.ram import ModelConfig, RecurrentAttentionModel
from baselines import train
from baselines.evaluate import evaluate_classifier, load_baseline, load_images
from baselines.models import BaselineConfig, model_from_config
from glimpse_engine.checkpoints import load_checkpoint
from glimpse_engine.distributed import SINGLE, Cluster, launched_by_torchrun, rank_seed, update_share
from glimpse_env import CanvasSource

ROOT = Path(__file__).resolve().parents[1]
RANKS = 2
HALF = 32  # episodes or images per rank and update; one process plays 2 * HALF
QUIET = ["--image-every", "0", "--no-progress", "--threads", "1", "--seed", "3"]


def torchrun(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc_per_node=2 -m module args`` from the project root."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={RANKS}"]
    return subprocess.run(
        [*command, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def check(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return dict(load_checkpoint(run / "checkpoints" / "last.pt")["model"])


def assert_same_weights(one: Path, two: Path, initial: dict[str, torch.Tensor]) -> None:
    """One update of 2B in one process and of B on each of 2 ranks: the same weights, moved
    away from the ``initial`` ones they share."""
    first, second = weights(one), weights(two)
    assert first.keys() == second.keys() == initial.keys()
    for name, value in first.items():
        # Adam's first step is about lr * sign(gradient): a gradient summed in another order
        # moves a weight whose gradient is near 0 by a little less or more than lr = 1e-3
        torch.testing.assert_close(value, second[name], rtol=1e-5, atol=1e-5)
    assert all(not torch.equal(first[name], initial[name]) for name in first if name.endswith("weight"))


def two_ranks_match_one_process(
    tmp_path: Path, module: str, common: list[str], build: Callable[[dict[str, Any]], torch.nn.Module]
) -> dict[str, Any]:
    """Run ``module`` under torchrun on 2 ranks of ``HALF`` into ``tmp_path/two`` and compare
    it with the one-process run of ``2 HALF`` already in ``tmp_path/one``; its results."""
    check(torchrun(module, *common, "--batch-size", str(HALF), "--run-dir", str(tmp_path / "two")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # one folder per run
    results = one_run_folder(tmp_path / "two", RANKS)
    torch.manual_seed(3)  # the weights both runs started from (built from the saved architecture)
    initial = build(load_checkpoint(tmp_path / "one" / "checkpoints" / "last.pt")["model_config"])
    assert_same_weights(tmp_path / "one", tmp_path / "two", initial.state_dict())
    return results


def one_run_folder(run: Path, world_size: int) -> dict[str, Any]:
    """The run folder holds one config, one TensorBoard file, the checkpoints and the result."""
    assert (run / "config.json").is_file()
    assert len(list(run.glob("events.out.tfevents.*"))) == 1  # rank 0 alone writes TensorBoard
    assert {p.name for p in (run / "checkpoints").iterdir()} == {"last.pt", "best.pt"}
    results = json.loads((run / "results" / "test.json").read_text())
    assert results["world_size"] == world_size
    return results


def test_shares_of_a_fixed_training_set_are_disjoint_and_cover_each_update() -> None:
    order = torch.randperm(100).numpy()
    ranks = [Cluster(rank=r, world_size=3, local_rank=r) for r in range(3)]
    for update in range(3):
        shares = [update_share(order, update, 10, cluster) for cluster in ranks]
        expected = order[update * 30 : update * 30 + 30]
        assert sorted(int(i) for s in shares for i in s) == sorted(int(i) for i in expected)
    single = [update_share(order, u, 30, SINGLE) for u in range(3)]
    assert all((single[u] == order[30 * u : 30 * u + 30]).all() for u in range(3))
    assert rank_seed(5, SINGLE) == 5  # one process: the seed it always had
    assert len({rank_seed(5, cluster) for cluster in ranks}) == 3
    assert not launched_by_torchrun()  # pytest itself is a single process


def test_baselines_under_torchrun(tmp_path: Path) -> None:
    common = ["--env", "GlimpseMNIST-Fashion-v0", "--train-size", "512", "--eval-batch-size", "500"]
    common += ["--images-per-epoch", str(RANKS * HALF), "--epochs", "1", *QUIET]
    train.main([*common, "--batch-size", str(RANKS * HALF), "--run-dir", str(tmp_path / "one")])
    results = two_ranks_match_one_process(
        tmp_path, "baselines.train", common, lambda saved: model_from_config(BaselineConfig.from_dict(saved))
    )

    # its checkpoint, in one process: the counts the two ranks reported
    model, config = load_baseline(str(tmp_path / "two" / "checkpoints" / "best.pt"))
    images = load_images(CanvasSource.from_id(config["env"], split="test"), 500)
    alone = evaluate_classifier(model, images, batch_size=500, env_id=config["env"], split="test")
    assert alone.n == results["n"] == 10_000
    assert alone.accuracy == results["accuracy"] and alone.per_class == results["per_class"]

    # resumed under torchrun (each rank its own streams back), then in one process
    check(torchrun("baselines.train", "--resume", str(tmp_path / "two"), "--epochs", "2", "--no-progress"))
    train.main(["--resume", str(tmp_path / "two"), "--epochs", "3", "--no-progress"])
    history = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.pt")["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_ram_under_torchrun(tmp_path: Path) -> None:
    common = ["--env", "GlimpseMNIST-v0", "--train-size", "512", "--eval-episodes", "400"]
    common += ["--eval-batch-size", "100", "--test-mc-samples", "2"]
    common += ["--episodes-per-epoch", str(RANKS * HALF), "--epochs", "1", *QUIET]
    ram_reinforce.main([*common, "--batch-size", str(RANKS * HALF), "--run-dir", str(tmp_path / "one")])

    def build(saved: dict[str, Any]) -> torch.nn.Module:
        return RecurrentAttentionModel(ModelConfig.from_dict(saved))

    results = two_ranks_match_one_process(tmp_path, "agents.ram_reinforce", common, build)

    # its checkpoint, in one process (the same seeded draws): the counts the two ranks reported
    model, config = load_model(str(tmp_path / "two" / "checkpoints" / "best.pt"))
    for samples in (1, 2):
        alone = evaluate_model(
            model,
            "GlimpseMNIST-v0",
            split="test",
            mc_samples=samples,
            std=config["std"],
            batch_size=100,
            episodes=400,
            generator=torch.Generator().manual_seed(3),
        )
        reported = results[f"test_mc{samples}"]
        assert alone.n == reported["n"] == 400
        assert alone.accuracy == reported["accuracy"] and alone.per_class == reported["per_class"]

    # resumed under torchrun (each rank its own streams back), then in one process
    resume = ["--resume", str(tmp_path / "two"), "--epochs", "2", "--no-progress"]
    check(torchrun("agents.ram_reinforce", *resume))
    ram_reinforce.main(["--resume", str(tmp_path / "two"), "--epochs", "3", "--no-progress"])
    history = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.pt")["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["batch_size"] == HALF and config["world_size"] == RANKS
    assert config["global_batch_size"] == RANKS * HALF

    # and the reverse: a one-process run resumed under torchrun (its batch per rank from then on)
    alone = ["--batch-size", str(HALF), "--episodes-per-epoch", str(RANKS * HALF), "--epochs", "1"]
    ram_reinforce.main([*common, *alone, "--run-dir", str(tmp_path / "three")])  # the later flags win
    check(torchrun("agents.ram_reinforce", "--resume", str(tmp_path / "three"), "--epochs", "2"))
    history = load_checkpoint(tmp_path / "three" / "checkpoints" / "last.pt")["history"]
    assert [h["epoch"] for h in history] == [1, 2]


def test_a_failing_rank_ends_the_job_with_its_error() -> None:
    start = time.monotonic()
    done = torchrun("tests.distributed_failure", timeout=120)
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stdout + done.stderr
    assert time.monotonic() - start < 120  # ended, not hung in rank 0's collective
