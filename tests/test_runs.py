"""The shared run-folder module: weight averages, run folders and --overwrite, settings, Ctrl-C."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from glimpse_engine.averaging import (
    AVERAGE_KEY,
    average_state,
    averaging,
    epoch_average,
    evaluated_model,
    restore_average,
    weight_average,
)
from glimpse_engine.checkpoints import inference_weights
from glimpse_engine.cli import (
    RESUMABLE,
    Interrupted,
    check_settings,
    interruptible,
    parse_args,
    resume_args,
    run_main,
)
from glimpse_engine.errors import RunFolderError
from glimpse_engine.runs import COMMANDS_FILE, command_line, open_run, record_resume, run_commands, started_by


def test_weight_average_is_the_exponential_moving_average_written_naively() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    decay = 0.7
    average = weight_average(model, decay)
    assert average is not None
    expected: dict[str, torch.Tensor] = {}
    for _ in range(5):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn_like(parameter))
        average.update_parameters(model)
        for name, value in model.state_dict().items():  # the first update copies the weights
            before = expected.get(name)
            expected[name] = value.clone() if before is None else decay * before + (1 - decay) * value
    state = {"model": model.state_dict(), AVERAGE_KEY: average.state_dict()}
    weights = inference_weights(state)
    assert weights.keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(weights[name], value)
    fresh = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    fresh.load_state_dict(weights)  # loads into the plain model
    assert inference_weights({"model": model.state_dict(), AVERAGE_KEY: None}).keys() == expected.keys()
    assert torch.equal(inference_weights({"model": model.state_dict()})["0.weight"], model[0].weight)


def test_epoch_average_is_the_equal_mean_written_naively_and_empty_until_its_first_update() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    average = epoch_average(model)
    # empty: validation sees the trained weights and a checkpoint keeps no average
    assert not averaging(average) and evaluated_model(model, average) is model
    assert average_state(average) == {AVERAGE_KEY: None}
    restore_average(average, {AVERAGE_KEY: None})  # a checkpoint from before the averaging began
    assert not averaging(average)
    ends: list[dict[str, torch.Tensor]] = []
    for _ in range(4):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(torch.randn_like(parameter))
        average.update_parameters(model)
        ends.append({name: value.clone() for name, value in model.state_dict().items()})
    assert averaging(average) and evaluated_model(model, average) is average.module
    state = {"model": model.state_dict(), **average_state(average)}
    for name, value in inference_weights(state).items():
        torch.testing.assert_close(value, sum(end[name] for end in ends) / len(ends))
    resumed = epoch_average(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    restore_average(resumed, state)  # a resumed run continues the same mean
    assert int(resumed.n_averaged) == len(ends)


def test_weight_average_off_and_bad_decays() -> None:
    model = nn.Linear(2, 2)
    assert weight_average(model, 0.0) is None
    for decay in (-0.1, 1.0, 2.0):
        with pytest.raises(ValueError, match=r"--ema must be in \[0, 1\)"):
            weight_average(model, decay)


def test_run_folders_record_the_command_that_started_them_and_each_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    open_run(run, {"seed": 1}, program="x", command="python -m x --seed 1", resume=False, overwrite=False)
    assert run_commands(run) == ["python -m x --seed 1"]
    assert started_by(run, "python -m x --seed 1") == {"command": "python -m x --seed 1", "resumed_with": []}
    for command in (f"python -m x --resume {run}", f"python -m x --resume {run} --epochs 9"):
        # a resume is checked first, and recorded once its checkpoint has loaded
        open_run(run, {"seed": 1}, program="x", command=command, resume=True, overwrite=False)
        assert len(run_commands(run)) == 1 + (command.endswith("9"))
        record_resume(run, command, None)
    assert started_by(run, "ignored") == {
        "command": "python -m x --seed 1",
        "resumed_with": [f"python -m x --resume {run}", f"python -m x --resume {run} --epochs 9"],
    }
    # --overwrite starts the record again; a folder from before the record names the command at hand
    open_run(run, {"seed": 2}, program="x", command="python -m x --seed 2", resume=False, overwrite=True)
    assert run_commands(run) == ["python -m x --seed 2"]
    (run / COMMANDS_FILE).unlink()
    assert run_commands(run) == []
    assert started_by(run, "python -m x --resume run") == {
        "command": "python -m x --resume run",
        "resumed_with": [],
    }
    assert (
        command_line("agents.evaluate", ["--checkpoint", "a.pt"])
        == "python -m agents.evaluate --checkpoint a.pt"
    )


# ----------------------------------------------------------------------------- --overwrite
RAM, CNN = "agents.ram_reinforce", "baselines.train"
RAM_CONFIG = {"env": "GlimpseMNIST-v0", "seed": 1, "std": 0.1, "world_size": 1}
CNN_CONFIG = {"env": "GlimpseMNIST-v0", "seed": 1, "model": "cnn", "world_size": 1}


def make_run(path: Path, program: str, config: dict[str, Any], *, commands: bool = True) -> None:
    """A run folder as a trainer leaves it (``commands=False``: from before commands.json)."""
    open_run(
        path, config, program=program, command=f"python -m {program} --seed 1", resume=False, overwrite=False
    )
    (path / "checkpoints").mkdir()
    (path / "checkpoints" / "last.pt").write_bytes(b"weights")
    (path / "checkpoints" / ".best.pt.x1y2.tmp").write_bytes(b"a write a kill cut short")
    (path / "results").mkdir()
    (path / "results" / "test.json").write_text("{}")
    (path / "events.out.tfevents.1.host.0").write_bytes(b"events")
    if not commands:
        (path / COMMANDS_FILE).unlink()


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: its bytes and modification time."""
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("commands", [True, False])
def test_overwrite_replaces_a_run_of_the_same_program(tmp_path: Path, commands: bool) -> None:
    run = tmp_path / "run"
    make_run(run, RAM, RAM_CONFIG, commands=commands)
    open_run(
        run,
        {**RAM_CONFIG, "seed": 2},
        program=RAM,
        command=f"python -m {RAM} --seed 2",
        resume=False,
        overwrite=True,
    )
    assert sorted(p.name for p in run.iterdir()) == ["commands.json", "config.json"]
    assert json.loads((run / "config.json").read_text())["seed"] == 2
    assert run_commands(run) == [f"python -m {RAM} --seed 2"]


def test_overwrite_refuses_a_folder_of_user_files(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("a week of notes")
    (folder / "data").mkdir()
    before = snapshot(folder)
    with pytest.raises(
        RunFolderError, match=r"not a run of agents\.ram_reinforce \(data/, notes\.txt\); choose"
    ):
        open_run(folder, RAM_CONFIG, program=RAM, command=f"python -m {RAM}", resume=False, overwrite=True)
    assert snapshot(folder) == before and (folder / "data").is_dir()
    # a config.json alone, with settings the program does not have, is not its run either
    (folder / "config.json").write_text(json.dumps({"name": "my experiment", "seed": 1}))
    with pytest.raises(RunFolderError, match="not a run of"):
        open_run(folder, RAM_CONFIG, program=RAM, command=f"python -m {RAM}", resume=False, overwrite=True)
    assert (folder / "notes.txt").read_text() == "a week of notes"


def test_overwrite_refuses_a_run_that_holds_other_files_too(tmp_path: Path) -> None:
    run = tmp_path / "run"
    make_run(run, RAM, RAM_CONFIG)
    (run / "analysis.ipynb").write_text("{}")
    (run / "checkpoints" / "notes.txt").write_text("epoch 3 looked odd")
    before = snapshot(run)
    with pytest.raises(
        RunFolderError, match=r"also holds files .*\(analysis\.ipynb, checkpoints/notes\.txt\)"
    ):
        open_run(run, RAM_CONFIG, program=RAM, command=f"python -m {RAM}", resume=False, overwrite=True)
    assert snapshot(run) == before


@pytest.mark.parametrize("commands", [True, False])
def test_overwrite_refuses_a_run_of_the_other_program(tmp_path: Path, commands: bool) -> None:
    run = tmp_path / "run"
    make_run(run, CNN, CNN_CONFIG, commands=commands)
    before = snapshot(run)
    with pytest.raises(RunFolderError, match="baselines.train" if commands else "not a run of agents"):
        open_run(run, RAM_CONFIG, program=RAM, command=f"python -m {RAM}", resume=False, overwrite=True)
    assert snapshot(run) == before
    with pytest.raises(
        RunFolderError, match="it is a run of baselines.train" if commands else "not a run of"
    ):
        open_run(run, RAM_CONFIG, program=RAM, command=f"python -m {RAM}", resume=True, overwrite=False)
    assert snapshot(run) == before


def test_overwrite_never_deletes_the_current_folder_or_its_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    make_run(run, RAM, RAM_CONFIG)  # even a genuine run, when the shell stands in it
    (run / "results" / "deeper").mkdir()
    before = snapshot(tmp_path)
    monkeypatch.chdir(run)
    for where in (".", run, Path("..") / "run", Path("results") / "deeper" / ".." / ".."):
        with pytest.raises(RunFolderError, match="current folder or one of its parents"):
            open_run(where, RAM_CONFIG, program=RAM, command=f"python -m {RAM}", resume=False, overwrite=True)
    monkeypatch.chdir(run / "results" / "deeper")
    for where in (run, tmp_path, Path("/")):
        with pytest.raises(RunFolderError, match="current folder or one of its parents"):
            open_run(where, RAM_CONFIG, program=RAM, command=f"python -m {RAM}", resume=False, overwrite=True)
    assert snapshot(tmp_path) == before


def test_resume_args_refuses_the_other_programs_run(tmp_path: Path) -> None:
    from agents import ram_reinforce
    from baselines import train

    for program, module, config in ((RAM, ram_reinforce, RAM_CONFIG), (CNN, train, CNN_CONFIG)):
        run = tmp_path / program
        make_run(run, program, config)
        other = train if module is ram_reinforce else ram_reinforce
        before = snapshot(run)
        args = parse_args(other.Args, ["--resume", str(run)])
        with pytest.raises(
            RunFolderError, match=rf"it is a run of {program}; continue it with python -m {program}"
        ):
            resume_args(args, ["--resume", str(run)], resumable=RESUMABLE, program=other.PROGRAM)
        assert snapshot(run) == before
        same = parse_args(module.Args, ["--resume", str(run)])
        assert resume_args(same, ["--resume", str(run)], resumable=RESUMABLE, program=program).seed == 1


# ----------------------------------------------------------------------------- settings, Ctrl-C
def test_check_settings_refuses_what_no_run_can_use() -> None:
    from agents.ram_reinforce import Args

    check_settings(Args())  # the defaults are fine
    check_settings(Args(threads=None, time_limit=0.0, image_every=0, eval_episodes=None))
    bad = {
        "--threads must be at least 1, got 0": {"threads": 0},
        "--threads must be at least 1, got -2": {"threads": -2},
        "--batch-size must be at least 1, got 0": {"batch_size": 0},
        "--epochs must be at least 1, got -1": {"epochs": -1},
        "--patience must be at least 1, got 0": {"patience": 0},
        "--eval-batch-size must be at least 1, got 0": {"eval_batch_size": 0},
        "--learning-rate must be a finite number, got nan": {"learning_rate": math.nan},
        "--learning-rate must be a finite number, got inf": {"learning_rate": math.inf},
        "--learning-rate must be at least 0, got -0.1": {"learning_rate": -0.1},
        "--std must be above 0, got 0.0": {"std": 0.0},
        "--test-mc-samples must be at least 1, got 0": {"test_mc_samples": 0},
    }
    for message, change in bad.items():
        with pytest.raises(ValueError, match=re.escape(message)):
            check_settings(Args(**change))


def test_ctrl_c_ends_with_one_line_that_says_how_to_continue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    @interruptible("x.train")
    def train(run_dir: Path | None) -> None:
        if run_dir is not None:
            open_run(
                run_dir,
                {"seed": 1},
                program="x.train",
                command="python -m x.train",
                resume=False,
                overwrite=False,
            )
        raise KeyboardInterrupt

    with pytest.raises(Interrupted) as stopped:
        train(tmp_path / "my run")
    assert stopped.value.code == 130
    assert (
        str(stopped.value) == f"interrupted: continue with python -m x.train --resume '{tmp_path / 'my run'}'"
    )
    with pytest.raises(Interrupted, match="before the run folder was made: nothing to continue"):
        train(None)  # (a second call forgets the first one's folder)
    with pytest.raises(SystemExit) as exit_info:
        run_main(lambda: train(tmp_path / "other"), errors=(ValueError,))
    assert exit_info.value.code == 130
    assert (
        capsys.readouterr().err
        == f"interrupted: continue with python -m x.train --resume {tmp_path / 'other'}\n"
    )

    def fails() -> None:
        raise OSError("the data folder cannot be read")

    with pytest.raises(SystemExit) as exit_info:
        run_main(fails, errors=(ValueError,))
    assert exit_info.value.code == "error: the data folder cannot be read"
