"""The baselines' results table (benchmarks/baseline_results.py): best by val, and runs grouped by recipe."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_module():
    spec = importlib.util.spec_from_file_location(
        "baseline_results", ROOT / "benchmarks" / "baseline_results.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(root: Path, name: str, *, val: float, test: float, **config: object) -> None:
    settings = {"model": "self_attention", "train_size": None, "dropout": 0.2, "seed": 1}
    settings |= {"run_dir": f"runs/{name}", "threads": 1, "epochs": 100, "lr_schedule": "plateau"}
    settings |= config
    result = {
        "env_id": "GlimpseMNIST-Fashion-v0",
        "model": settings["model"],
        "params": 440_685,
        "epochs": 40,
        "best_epoch": 30,
        "train_seconds": 1200.0,
        "device": "cpu",
        "val_accuracy": val,
        "accuracy": test,
        "ci95": [test - 0.005, test + 0.005],
        "command": f"python -m baselines.train --run-dir runs/{name}",
        "config": settings,
    }
    (root / name).mkdir(parents=True)
    (root / name / "test.json").write_text(json.dumps(result))


def test_runs_that_differ_only_in_seed_and_housekeeping_form_one_recipe(tmp_path: Path) -> None:
    module = load_module()
    write_run(tmp_path, "a-s1", val=0.93, test=0.92)
    # another seed, thread count, time limit and a resume's --epochs: the same recipe
    write_run(tmp_path, "a-s2", val=0.94, test=0.93, seed=2, threads=2, time_limit=50.0, epochs=59)
    # a run made after a new setting appeared, at its default value: still the same recipe
    write_run(tmp_path, "a-s3", val=0.93, test=0.92, seed=3, swa_start=0, swa_lr=None, world_size=1)
    write_run(tmp_path, "b-s1", val=0.95, test=0.90, dropout=0.3)  # another recipe
    write_run(tmp_path, "c-s1", val=0.91, test=0.91, lr_schedule="cosine", epochs=60)
    write_run(tmp_path, "c-s2", val=0.91, test=0.91, lr_schedule="cosine", epochs=35)  # a shorter schedule
    rows = module.by_recipe(module.load_runs(tmp_path))
    assert [row["runs"] for row in rows] == ["a-s1, a-s2, a-s3", "b-s1", "c-s1", "c-s2"]
    a = rows[0]
    assert a["seeds"] == 3 and a["test range"] == "0.9200-0.9300"
    assert a["val"] == "0.9333 ± 0.0058" and a["test"] == "0.9233 ± 0.0058"  # mean ± sample sd
    assert rows[1]["seeds"] == 1 and rows[1]["test"] == "0.9000"
    # selection on val alone: the best by val is b, whatever its test
    assert [row["run"] for row in module.best_by_val(module.load_runs(tmp_path))] == ["b-s1"]


def test_the_two_views_are_exclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_module()
    monkeypatch.setattr("sys.argv", ["baseline_results.py", "--root", str(tmp_path), "--best", "--by-recipe"])
    with pytest.raises(SystemExit) as exit_info:
        module.main()
    assert exit_info.value.code == 2
