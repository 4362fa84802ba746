"""The shared run-folder module's weight average (agents.runs.weight_average)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from agents.runs import (
    AVERAGE_KEY,
    COMMANDS_FILE,
    average_state,
    averaging,
    command_line,
    epoch_average,
    evaluated_model,
    inference_weights,
    open_run,
    restore_average,
    run_commands,
    started_by,
    weight_average,
)


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
    open_run(run, {"seed": 1}, command="python -m x --seed 1", resume=False, overwrite=False)
    assert run_commands(run) == ["python -m x --seed 1"]
    assert started_by(run, "python -m x --seed 1") == {"command": "python -m x --seed 1", "resumed_with": []}
    open_run(run, {"seed": 1}, command=f"python -m x --resume {run}", resume=True, overwrite=False)
    open_run(run, {"seed": 1}, command=f"python -m x --resume {run} --epochs 9", resume=True, overwrite=False)
    assert started_by(run, "ignored") == {
        "command": "python -m x --seed 1",
        "resumed_with": [f"python -m x --resume {run}", f"python -m x --resume {run} --epochs 9"],
    }
    # --overwrite starts the record again; a folder from before the record names the command at hand
    open_run(run, {"seed": 2}, command="python -m x --seed 2", resume=False, overwrite=True)
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
