"""The leaderboard (benchmarks/leaderboard.py): rows read from the results files, chosen on val."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shlex
import sys
from pathlib import Path

import pytest
import torch

from glimpse_engine.weights import save_weights

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
    # the RAM row is the run whose weights ship (the weights folder beside results/)
    ram = results / "ram" / "shipped-run"
    mc10 = {"accuracy": 0.97, "ci95": [0.96, 0.98], "mc_samples": 10}
    write(
        ram / "test.json",
        {
            "accuracy": 0.97,
            "ci95": [0.96, 0.98],
            "test_mc10": mc10,
            "test_mc1": {**mc10, "accuracy": 0.95, "mc_samples": 1},
            "val_accuracy": 0.96,
            "epochs": 2,
            "best_epoch": 2,
            "train_seconds": 120.0,
            "params": 209677,
            "config": {"core": "rnn", "epochs": 2, "patience": 50, "device": "cpu", "test_mc_samples": 10},
            "command": "python -m agents.ram_reinforce --env GlimpseMNIST-v0 --epochs 2",
        },
    )
    save_weights(
        {"w": torch.zeros(2)},
        {"results": "results/ram/shipped-run", "accuracy": 0.97},
        env_id="GlimpseMNIST-v0",
        kind="ram",
        root=tmp_path / "weights",
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
    assert ram_row["weights"] == "python -m agents.evaluate --pretrained GlimpseMNIST-v0"
    assert ram_row["command"] == "python -m agents.ram_reinforce --env GlimpseMNIST-v0 --epochs 2"
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
        "published RAM": "0.9871 (RAM paper: 1.29% error)",
        "RAM": "not yet run",
        "CNN": "0.9800",
        "self-attention": "not yet run",
        "best RecurrentPPO": "0.7000 (multidiscrete)",  # the best val, not the best test
        "random": "0.1000",
    }
    assert set(rows["`GlimpseMNIST-Cluttered100-v0`"].values()) == {
        "`GlimpseMNIST-Cluttered100-v0`",
        "0.8917 (RAM paper: 10.83% error)",
        "not yet run",
    }
    assert set(board.PUBLISHED) == {spec.env_id for spec in board.ENV_SPECS}  # a number for every id
    assert board.headline_markdown(results).startswith("| env | published RAM | RAM | CNN | self-attention |")


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


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` as a module (the folder is not a package; its scripts import one
    another by name)."""
    folder = str(ROOT / "benchmarks")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"_test_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def same_command(a: str, b: str) -> bool:
    """Whether two command lines are the same: equal, or one trainer given the same settings."""
    if a == b:
        return True
    common = load_benchmark("_common")
    words_a, words_b = shlex.split(a), shlex.split(b)
    program = words_a[2] if words_a[:2] == ["python", "-m"] else None
    if program not in common.TRAINERS or words_b[:3] != words_a[:3]:
        return False
    from glimpse_engine.cli import parse_args

    args = common.trainer_args(program)
    return parse_args(args, words_a[3:]) == parse_args(args, words_b[3:])


def test_the_generated_runs_tables_hold_every_leaderboard_row():
    """The results pages' runs tables (benchmarks/results_tables.py, put in by docs/gen_pages.py)
    hold every leaderboard row: its accuracy and its command (the RAM's rebuilt from the run's
    config may give the same settings in another order)."""
    tables = load_benchmark("results_tables")
    results = ROOT / "results"
    kinds = {
        "ram": (tables.ram_rows(results), tables.ram_table(results), "test M=10"),
        "baselines": (tables.baseline_rows(results), tables.baseline_table(results), "test"),
        "rppo": (tables.rppo_rows(results), tables.rppo_table(results), "test (95% CI)"),
    }
    checked = 0
    for env_id, rows in committed_tables().items():
        for row in rows:
            agent = row["agent"]
            if agent == "random policy":
                continue
            kind = "ram" if agent.startswith("RAM") else "baselines"
            kind = "rppo" if agent.startswith("RecurrentPPO") else kind
            table_rows, markdown, column = kinds[kind]
            accuracy = row["test accuracy (95% CI)"].split()[0]
            matches = [
                r
                for r in table_rows
                if r["env_id"] == env_id
                and (f"{r[column]:.4f}" if isinstance(r[column], float) else r[column]).startswith(accuracy)
                and same_command(r["command"].strip("`"), row["command"])
            ]
            assert matches, (env_id, agent, row["command"])
            assert f"`{matches[0]['command'].strip('`')}`" in markdown and accuracy in markdown
            checked += 1
    assert checked >= 10


def test_no_generated_command_has_a_time_limit_a_resume_or_a_chain():
    tables = load_benchmark("results_tables")
    results = ROOT / "results"
    rows = [*tables.ram_rows(results), *tables.baseline_rows(results), *tables.rppo_rows(results)]
    assert len(rows) > 100
    for row in rows:
        command = row["command"]
        if not command.startswith("`"):
            assert command.startswith("not reproducible from one command ("), row
            continue
        words = shlex.split(command.strip("`"))
        assert "--time-limit" not in words and "--resume" not in words and "&&" not in command, row
        assert words[:2] in (["python", "-m"], ["python", "examples/recurrent_ppo.py"]), row


# ---------------------------------------------------------------- bounded commands


def plateau_result(*, epochs: int, best: int, command: str, **config) -> dict:
    """A test.json of a run that reached ``epochs`` (its best: ``best``); ``config`` over a
    plateau schedule of 100 epochs at most, patience 10 (``budget`` sets the config's epochs)."""
    settings = {"epochs": 100, "patience": 10, "lr_schedule": "plateau", "time_limit": None, **config}
    settings["epochs"] = settings.pop("budget", settings["epochs"])
    return {"epochs": epochs, "best_epoch": best, "command": command, "config": settings}


def test_a_time_limited_plateau_run_gets_the_epochs_it_reached():
    common = load_benchmark("_common")
    result = plateau_result(
        epochs=42,
        best=40,
        command="python -m baselines.train --model cnn --epochs 100 --time-limit 30 --run-dir runs/x",
        time_limit=30.0,
    )
    assert common.how_it_ended(result) == "time limit"
    assert common.not_reproducible(result) is None
    assert (
        common.bounded_command(result) == "python -m baselines.train --model cnn --epochs 42 --run-dir runs/x"
    )
    # without --epochs in the command, the budget is appended
    result["command"] = "python -m baselines.train --time-limit=30 --model cnn"
    assert common.bounded_command(result) == "python -m baselines.train --model cnn --epochs 42"


def test_an_early_stopped_run_keeps_its_command_without_the_time_limit():
    common = load_benchmark("_common")
    result = plateau_result(
        epochs=42,
        best=32,
        command="python -m baselines.train --model cnn --time-limit 90 --patience 10 --epochs 100",
        time_limit=90.0,
    )
    assert common.how_it_ended(result) == "early stop"
    assert (
        common.bounded_command(result) == "python -m baselines.train --model cnn --patience 10 --epochs 100"
    )
    # a setting given twice is given once, with the value argparse kept, where it first stood
    result["command"] = "python -m baselines.train --dropout 0.1 --model cnn --dropout 0.25 --time-limit 9"
    assert common.bounded_command(result) == "python -m baselines.train --dropout 0.25 --model cnn"


def test_the_training_log_says_how_a_run_ended():
    common = load_benchmark("_common")
    result = plateau_result(
        epochs=60, best=59, command="python -m baselines.train --model cnn", time_limit=125.0
    )
    epochs = "".join(f"epoch {n}: train loss 0.1, val accuracy 0.9, 5.0 s (1 images/s)\n" for n in (59, 60))
    # a log that ends with its last epoch, short of the budget: a kill, not the time limit
    assert common.how_it_ended(result) == "time limit"
    assert common.how_it_ended(result, log=epochs) == "stopped by hand"
    assert common.how_it_ended(result, log=epochs + "time limit: 125.0 minutes of training\n") == "time limit"
    # ended, then --resume DIR --epochs 60 to test it: the resume trained nothing
    resumed = epochs + "resuming runs/x after epoch 60 (best val 0.9 at epoch 59)\nmodel on env\n"
    result["config"]["epochs"] = 60
    assert common.how_it_ended(result) == "budget"
    assert common.how_it_ended(result, log=resumed) == "stopped by hand"


def test_a_cosine_run_cut_by_time_is_not_reproducible():
    common = load_benchmark("_common")
    tables = load_benchmark("results_tables")
    result = plateau_result(
        epochs=24,
        best=23,
        command="python -m baselines.train --lr-schedule cosine --epochs 35 --patience 100 --time-limit 7",
        lr_schedule="cosine",
        budget=35,
        patience=100,
        time_limit=7.0,
    )
    assert common.how_it_ended(result) == "time limit"
    assert common.not_reproducible(result) == "a cosine schedule cut by a time limit"
    with pytest.raises(common.NotReproducible):
        common.bounded_command(result)
    assert (
        tables.command_cell(result)
        == "not reproducible from one command (a cosine schedule cut by a time limit)"
    )
    # the same run that reached its budget is its command without the time limit
    result.update(epochs=35, best_epoch=33)
    assert common.bounded_command(result) == (
        "python -m baselines.train --lr-schedule cosine --epochs 35 --patience 100"
    )


def rppo_chain(steps: int, **hyperparameters) -> dict:
    call = "python examples/recurrent_ppo.py --action flat --timesteps {} --time-limit {} --run-dir runs/r"
    return {
        "env_id": "GlimpseMNIST-v0",
        "steps": steps,
        "command": call.format(4000000, 30) + " && " + call.format(6000000, 10) + " --resume",
        "hyperparameters": {"lr_schedule": "constant", **hyperparameters},
    }


def test_a_resume_chain_of_recurrent_ppo_becomes_one_command():
    common = load_benchmark("_common")
    result = rppo_chain(6_001_152)
    assert common.how_it_ended(result) == "budget"
    assert common.bounded_command(result) == (
        "python examples/recurrent_ppo.py --action flat --timesteps 6001152 --run-dir runs/r"
    )
    # cut by the time limit of its last call: the steps of the whole rollouts it trained
    # (64 environments x 4 episodes x 6 glimpses; the time limit stops one vector step into the next)
    result = rppo_chain(3_909_184, num_envs=64, rollout_episodes=4)
    assert common.how_it_ended(result) == "time limit"
    assert common.trained_steps(result) == 3_909_120
    assert "--timesteps 3909120 --run-dir runs/r" in common.bounded_command(result)
    # a linear schedule decays over --timesteps: a chain is not one command
    assert common.not_reproducible(rppo_chain(6_001_152, lr_schedule="linear")) == (
        "a linear schedule continued with --resume under a new budget"
    )
    # a recorded line loses an empty value (joined without quotes): it is given back
    single = {
        **rppo_chain(1_001_472),
        "command": "python examples/recurrent_ppo.py --net-arch  --timesteps 1000000",
    }
    assert (
        common.bounded_command(single) == "python examples/recurrent_ppo.py --net-arch '' --timesteps 1000000"
    )
    assert common.how_it_ended({**single, "command": "python examples/recurrent_ppo.py", "steps": 5}) == (
        "stopped by hand"  # short of the default budget of 1M steps, without a time limit
    )


def test_command_from_config_gives_the_settings_that_differ_from_the_defaults(monkeypatch):
    common = load_benchmark("_common")
    config = {
        "model": "self_attention",
        "env": "GlimpseMNIST-Fashion-v0",
        "epochs": 60,
        "learning_rate": 0.001,  # the default
        "dropout": 0.2,
        "lr_patience": 3,
        "threads": 1,
        "run_dir": "runs/x",
        "time_limit": 125.0,
        "progress": False,
        "data_dir": "/data",
        "world_size": 1,
        "global_batch_size": 128,
    }
    command = common.command_from_config(config, "baselines.train")
    assert command == (
        "python -m baselines.train --model self_attention --env GlimpseMNIST-Fashion-v0 --epochs 60 "
        "--lr-patience 3 --dropout 0.2 --threads 1"
    )
    from glimpse_engine.cli import parse_args

    parsed = parse_args(common.trainer_args("baselines.train"), shlex.split(command)[3:])
    for name in ("model", "env", "epochs", "learning_rate", "dropout", "lr_patience", "threads"):
        assert getattr(parsed, name) == config[name], name
    # a run whose result holds a --resume line: its command comes from its config
    result = plateau_result(
        epochs=60, best=59, command="python -m baselines.train --resume runs/x --epochs 60 --no-progress"
    )
    result["config"] = {**config, "patience": 10}
    assert common.bounded_command(result) == command.replace("--dropout", "--patience 10 --dropout")
    # booleans as --flag / --no-flag, None as none
    monkeypatch.setattr(common, "trainer_args", lambda program: Fake)
    assert common.command_from_config(
        {"flag": False, "limit": None, "name": "b c", "overwrite": True}, "x"
    ) == ("python -m x --no-flag --limit none --name 'b c'")


@dataclasses.dataclass
class Fake:
    flag: bool = True
    limit: float | None = 1.0
    name: str = "a"
    overwrite: bool = False


def test_a_run_scored_by_agents_evaluate_gets_its_epochs_and_command_from_its_folder(tmp_path):
    tables = load_benchmark("results_tables")
    folder = tmp_path / "ram" / "run"
    config = {"env": "GlimpseMNIST-v0", "core": "lstm", "epochs": 400, "patience": 50, "time_limit": 118.0}
    write(folder / "config.json", config)
    write(folder / "test_mc10.json", {"accuracy": 0.95, "ci95": [0.94, 0.96], "env_id": "GlimpseMNIST-v0"})
    write(folder / "test_mc1.json", {"accuracy": 0.94, "ci95": [0.93, 0.95]})
    write(
        folder / "train.log",
        "RAM on GlimpseMNIST-v0: 604,429 parameters, 429 updates\n"
        "epoch 1: train reward 0.5, val accuracy 0.8000 (best), lr 3e-4, 60.0 s (1,000 images/s)\n"
        "epoch 2: train reward 0.6, val accuracy 0.8500 (best), lr 3e-4, 60.0 s (1,000 images/s)\n"
        "epoch 3: train reward 0.6, val accuracy 0.8400, lr 3e-4, 60.0 s (1,000 images/s)\n",
    )
    run = tables.ram_run(folder)
    assert (run["epochs"], run["best_epoch"], run["val_accuracy"], run["params"]) == (3, 2, 0.85, 604429)
    [row] = tables.ram_rows(tmp_path)
    assert row["ended"] == "stopped by hand"  # no time-limit line in its log: it was killed
    assert row["command"] == "`python -m agents.ram_reinforce --env GlimpseMNIST-v0 --epochs 3 --core lstm`"
    assert (row["test M=1"], row["test M=10"], row["epochs (best)"]) == ("0.9400", "0.9500", "3 (2)")
    assert row["settings (not the defaults)"] == "core lstm"


def test_a_recurrent_ppo_run_on_the_every_step_reward_is_its_own_row(tmp_path):
    """Runs trained on another reward are not compared on val with the terminal ones: each
    (action form, reward) has its row, marked with the reward; the headline names it."""
    board = load_leaderboard()
    results = tmp_path / "results"
    write(results / "rppo" / "a" / "test.json", rppo_result(action="multidiscrete", val=0.80, test=0.79))
    dense = rppo_result(action="multidiscrete", val=0.90, test=0.88)
    dense["hyperparameters"]["reward"] = "every_step"
    write(results / "rppo" / "b" / "test.json", dense)
    rows = {row["agent"]: row for row in board.leaderboard(results)["GlimpseMNIST-v0"]}
    assert rows["RecurrentPPO, multidiscrete actions"]["test accuracy (95% CI)"].startswith("0.7900")
    marked = rows["RecurrentPPO, multidiscrete actions, every-step reward"]
    assert marked["test accuracy (95% CI)"].startswith("0.8800")
    headline = {row["env"]: row for row in board.headline(results)}["`GlimpseMNIST-v0`"]
    assert headline["best RecurrentPPO"] == "0.8800 (multidiscrete, every-step reward)"
