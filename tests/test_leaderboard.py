"""The leaderboard (benchmarks/leaderboard.py): rows read from the results files, chosen on val."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_leaderboard():
    spec = importlib.util.spec_from_file_location("leaderboard", ROOT / "benchmarks" / "leaderboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, data: dict | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def rppo_result(*, action: str, val: float, test: float, env_id: str = "GlimpseMNIST-v0") -> dict:
    return {
        "env_id": env_id,
        "accuracy": test,
        "ci95": [test - 0.01, test + 0.01],
        "val_accuracy": val,
        "steps": 2_000_000,
        "train_seconds": 600.0,
        "params": 1234,
        "mc_samples": 1,
        "hyperparameters": {"action": action},
        "command": f"python examples/recurrent_ppo.py --action {action} --val {val}",
    }


def baseline_result(*, model: str, val: float, test: float, train_size: int | None = None) -> dict:
    return {
        "env_id": "GlimpseMNIST-v0",
        "model": model,
        "accuracy": test,
        "ci95": [test - 0.01, test + 0.01],
        "val_accuracy": val,
        "params": 1000,
        "epochs": 5,
        "best_epoch": 4,
        "train_seconds": 120.0,
        "config": {"train_size": train_size},
        "command": f"python -m baselines.train --model {model} --val {val}",
    }


def test_rows_come_from_the_files_and_are_chosen_on_val(tmp_path):
    board = load_leaderboard()
    results = tmp_path / "results"
    write(
        results / "random" / "GlimpseMNIST-v0.json", {"accuracy": 0.1, "ci95": [0.09, 0.11], "mc_samples": 1}
    )
    # two multidiscrete runs: the better val wins even though its test is lower
    write(results / "rppo" / "a" / "test.json", rppo_result(action="multidiscrete", val=0.80, test=0.79))
    write(results / "rppo" / "b" / "test.json", rppo_result(action="multidiscrete", val=0.85, test=0.70))
    write(results / "rppo" / "c" / "test.json", rppo_result(action="flat", val=0.5, test=0.5))
    write(results / "rppo" / "d" / "test.json", rppo_result(action="flat", val=0.9, test=0.9, env_id="X-v0"))
    ram = results / "ram" / board.RAM_RUNS["GlimpseMNIST-v0"].run  # the curated run folder
    write(
        ram / "test.json",
        {
            "accuracy": 0.5,
            "ci95": [0, 1],
            "test_mc10": {"accuracy": 0.97, "ci95": [0.96, 0.98], "mc_samples": 10},
        },
    )
    write(ram / "config.json", {"core": "rnn"})
    write(
        ram / "train.log",
        "RAM on GlimpseMNIST-v0: 209,677 parameters, 429 updates\n"
        "epoch 1: train reward 0.5, val accuracy 0.6, lr 3e-4, 30.0 s (1,000 images/s)\n"
        "epoch 2: train reward 0.6, val accuracy 0.7, lr 3e-4, 90.0 s (1,000 images/s)\n",
    )
    baselines = results / "baselines"
    write(baselines / "cnn-a" / "test.json", baseline_result(model="cnn", val=0.99, test=0.98))
    write(baselines / "cnn-b" / "test.json", baseline_result(model="cnn", val=0.98, test=0.99))
    write(
        baselines / "cnn-10k" / "test.json",
        baseline_result(model="cnn", val=0.999, test=0.999, train_size=10000),
    )

    rows = board.leaderboard(results)["GlimpseMNIST-v0"]
    assert [row["agent"] for row in rows] == [
        "random policy",
        "RecurrentPPO, flat actions",
        "RecurrentPPO, multidiscrete actions",
        "RAM (rnn core)",
        "CNN",
    ]
    by_agent = {row["agent"]: row for row in rows}
    assert by_agent["RecurrentPPO, multidiscrete actions"]["test accuracy (95% CI)"].startswith("0.7000")
    assert by_agent["RecurrentPPO, flat actions"]["training"] == "2.00M steps, 10 min (CPU)"
    ram_row = by_agent["RAM (rnn core)"]
    assert ram_row["test accuracy (95% CI)"] == "0.9700 (0.9600-0.9800)" and ram_row["M"] == "10"
    assert ram_row["params"] == "209,677" and ram_row["training"] == "2 epochs, 2 min (CPU)"
    assert by_agent["CNN"]["command"].endswith("--val 0.99")  # best val, fresh canvases only
    assert by_agent["random policy"]["glimpses"] == "6 x one 8x8 scale"


def test_the_headline_gives_each_agent_per_environment(tmp_path):
    board = load_leaderboard()
    results = tmp_path / "results"
    write(
        results / "random" / "GlimpseMNIST-v0.json", {"accuracy": 0.1, "ci95": [0.09, 0.11], "mc_samples": 1}
    )
    write(results / "rppo" / "a" / "test.json", rppo_result(action="multidiscrete", val=0.85, test=0.70))
    write(results / "rppo" / "b" / "test.json", rppo_result(action="flat", val=0.5, test=0.9))
    write(results / "baselines" / "cnn" / "test.json", baseline_result(model="cnn", val=0.99, test=0.98))
    rows = {row["env"]: row for row in board.headline(results)}
    assert list(rows) == [f"`{spec.env_id}`" for spec in board.ENV_SPECS]
    assert rows["`GlimpseMNIST-v0`"] == {
        "env": "`GlimpseMNIST-v0`",
        "RAM": "not yet run",
        "CNN": "0.9800",
        "self-attention": "not yet run",
        "best RecurrentPPO": "0.7000 (multidiscrete)",  # the best val, not the best test
        "random": "0.1000",
    }
    assert set(rows["`GlimpseMNIST-Cluttered100-v0`"].values()) == {
        "`GlimpseMNIST-Cluttered100-v0`",
        "not yet run",
    }
    assert board.headline_markdown(results).startswith("| env | RAM | CNN | self-attention |")


def committed_tables() -> dict[str, list[dict]]:
    return load_leaderboard().leaderboard(ROOT / "results")


def test_the_committed_leaderboard_has_every_agent():
    tables = committed_tables()
    for env_id in ("GlimpseMNIST-v0", "GlimpseMNIST-Cluttered-v0"):
        agents = [row["agent"] for row in tables[env_id]]
        assert agents[0] == "random policy" and "CNN" in agents and "CNN + self-attention" in agents
        assert "RecurrentPPO, flat actions" in agents and "RecurrentPPO, multidiscrete actions" in agents
        assert any(agent.startswith("RAM") for agent in agents)
        for row in tables[env_id]:
            assert row["command"], row


def test_the_readme_headline_is_the_scripts_output():
    readme = (ROOT / "README.md").read_text()
    start = "<!-- headline: python benchmarks/leaderboard.py --headline -->\n"
    assert start in readme and "<!-- /headline -->" in readme
    shown = readme.split(start, 1)[1].split("<!-- /headline -->", 1)[0]
    assert shown == load_leaderboard().headline_markdown(ROOT / "results")


def test_the_hand_written_results_pages_hold_every_leaderboard_row():
    """The docs site's leaderboard is the script's output (docs/gen_pages.py puts it in); the
    tables moved from the README must show each of its rows' accuracies, and the RAM and
    RecurrentPPO tables its commands."""
    pages = {
        kind: (ROOT / "docs" / "results" / f"{kind}.md").read_text() for kind in ("ram", "baselines", "rppo")
    }
    for env_id, rows in committed_tables().items():
        for row in rows:
            accuracy = row["test accuracy (95% CI)"]
            if row["agent"].startswith("RAM"):
                assert f"**{accuracy.split()[0]}**" in pages["ram"], (env_id, row["agent"])
                assert f"`{row['command']}`" in pages["ram"], (env_id, row["agent"])
            elif row["agent"].startswith("RecurrentPPO"):
                assert f"| {accuracy} | `{row['command']}` |" in pages["rppo"], (env_id, row["agent"])
            elif row["agent"].startswith("CNN"):
                assert f"**{accuracy.split()[0]}**" in pages["baselines"], (env_id, row["agent"])
