"""Trusting checkpoints and run folders, for both trainers (python -m agents.ram_reinforce and
python -m baselines.train): loading never runs code, a flipped bit is an error, a kill at any
instant resumes to the same run, a failed resume writes nothing, Ctrl-C and bad command lines
end with one line. Real data, tiny budgets."""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from agents import ram_reinforce
from baselines import train
from glimpse_engine import checkpoints, cli
from glimpse_engine.checkpoints import (
    CHECKSUM_KEY,
    CONFIG_KEY,
    FORMAT_KEY,
    FORMAT_VERSION,
    PAYLOAD_KEY,
    load_checkpoint,
    save_checkpoint,
)
from glimpse_engine.cli import Interrupted
from glimpse_engine.errors import CheckpointError, RunFolderError

ROOT = Path(__file__).resolve().parents[1]
RAM_FLAGS = ["--episodes-per-epoch", "256", "--batch-size", "64", "--eval-episodes", "200", "--epochs", "3"]
RAM_FLAGS += ["--image-every", "0", "--test-mc-samples", "2", "--no-progress", "--threads", "1"]
CNN_FLAGS = ["--env", "GlimpseMNIST-Fashion-v0", "--images-per-epoch", "512", "--batch-size", "64"]
CNN_FLAGS += [
    "--epochs",
    "2",
    "--eval-batch-size",
    "5000",
    "--image-every",
    "0",
    "--no-progress",
    "--threads",
    "1",
]
#: what differs between two runs of the same settings: timings, and how each was started
TIMINGS = {"seconds", "canvas_seconds", "train_seconds", "images_per_second", "episodes_per_second"}
TIMINGS |= {"canvas_share"}
STARTED = {"config", "command", "resumed_with"}


@pytest.fixture(scope="module")
def ram_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-epoch RAM run, uninterrupted (epochs 1 and 3 improve on val, epoch 2 does not)."""
    run = tmp_path_factory.mktemp("ram") / "straight"
    ram_reinforce.main(["--run-dir", str(run), *RAM_FLAGS])
    return run


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-epoch CNN run, uninterrupted."""
    run = tmp_path_factory.mktemp("cnn") / "straight"
    train.main(["--run-dir", str(run), *CNN_FLAGS])
    return run


def copy_run(run: Path, tmp_path: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(run, tmp_path / name))


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder``: its bytes and modification time."""
    return {
        str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """``a`` and ``b`` are equal, tensors bit for bit (NaN-free), floats exactly."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def untimed(value: Any, drop: set[str] = TIMINGS) -> Any:
    """``value`` without the entries named in ``drop``, at any depth."""
    if isinstance(value, dict):
        return {key: untimed(item, drop) for key, item in value.items() if key not in drop}
    if isinstance(value, list):
        return [untimed(item, drop) for item in value]
    return value


def assert_same_run(straight: Path, other: Path) -> None:
    """``other`` ended where ``straight`` did: best.pt, last.pt (every tensor and random stream)
    and results/test.json, but for timings and how each run was started."""
    for name in ("best.pt", "last.pt"):
        a, b = (load_checkpoint(run / "checkpoints" / name) for run in (straight, other))
        assert a.keys() == b.keys(), name
        for key in a.keys() - {CONFIG_KEY, "history"}:
            assert_same(a[key], b[key], f"{name}:{key}")
        assert untimed(a["history"]) == untimed(b["history"]), name
    a, b = (json.loads((run / "results" / "test.json").read_text()) for run in (straight, other))
    assert untimed(a, TIMINGS | STARTED) == untimed(b, TIMINGS | STARTED)


# ----------------------------------------------------------------------------- 1. no code is run
class Touch:
    """Unpickled, this touches ``marker``: what a booby-trapped .pt file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def trapped_checkpoints(folder: Path, marker: Path) -> Iterator[Path]:
    """.pt files whose unpickling touches ``marker``: a format-1 checkpoint, a format-2 one whose
    payload (checksum and all) hides it, and a format-2 one with it beside the payload."""
    config = {"env": "GlimpseMNIST-v0"}
    plain = folder / "format1.pt"
    torch.save({FORMAT_KEY: 1, CONFIG_KEY: config, "model": {}, "trap": Touch(marker)}, plain)
    yield plain
    inner = io.BytesIO()
    torch.save({FORMAT_KEY: FORMAT_VERSION, CONFIG_KEY: config, "trap": Touch(marker)}, inner)
    import hashlib

    data = inner.getvalue()
    payload = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    inside = folder / "inside.pt"
    checksum = hashlib.sha256(data).hexdigest()
    torch.save({FORMAT_KEY: FORMAT_VERSION, CHECKSUM_KEY: checksum, PAYLOAD_KEY: payload}, inside)
    yield inside
    beside = folder / "beside.pt"
    torch.save(
        {FORMAT_KEY: FORMAT_VERSION, CHECKSUM_KEY: "0", PAYLOAD_KEY: payload, "x": Touch(marker)}, beside
    )
    yield beside


def test_loading_a_checkpoint_never_runs_its_code(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    for file in trapped_checkpoints(tmp_path, marker):
        with pytest.raises(CheckpointError, match=r"is refused: it holds Python objects .* could run code"):
            load_checkpoint(file)
        assert not marker.exists(), file.name
    # (the trap is real: the unsafe way of loading springs it)
    torch.load(tmp_path / "format1.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("program", ["ram", "cnn"])
def test_resume_never_runs_the_checkpoints_code(
    request: pytest.FixtureRequest, tmp_path: Path, program: str
) -> None:
    run = copy_run(request.getfixturevalue(f"{program}_run"), tmp_path)
    marker = tmp_path / "marker"
    trapped = next(trapped_checkpoints(tmp_path, marker))
    shutil.copy(trapped, run / "checkpoints" / "last.pt")
    before = snapshot(run)
    main = ram_reinforce.main if program == "ram" else train.main
    with pytest.raises(CheckpointError, match=r"last\.pt' is refused"):
        main(["--resume", str(run)])
    assert not marker.exists()
    assert snapshot(run) == before  # (not even the command line is recorded)


# ----------------------------------------------------------------------------- 2. no silent rot
def test_a_flipped_bit_in_the_weights_is_a_checksum_mismatch(ram_run: Path, tmp_path: Path) -> None:
    file = tmp_path / "last.pt"
    shutil.copy(ram_run / "checkpoints" / "last.pt", file)
    state = load_checkpoint(file)
    weight = state["model"]["core.cell.weight_hh"]
    good = file.read_bytes()
    where = good.find(weight.numpy().tobytes())
    assert where > 0 and good.find(weight.numpy().tobytes(), where + 1) == -1  # the weight, stored once
    flipped = bytearray(good)
    flipped[where + weight.numel() * 2] ^= 0x10  # the middle of the weight, a bit of a mantissa
    file.write_bytes(flipped)
    with pytest.raises(CheckpointError, match=rf"{file.name}'?: checksum mismatch: the file is corrupted;"):
        load_checkpoint(file)
    # without the checksum the file would have loaded, with one weight silently changed
    outer = torch.load(file, weights_only=True)
    rotten = torch.load(io.BytesIO(outer[PAYLOAD_KEY].numpy().tobytes()), weights_only=True)
    changed = rotten["model"]["core.cell.weight_hh"] != weight
    assert int(changed.sum()) == 1


def test_no_flipped_bit_anywhere_loads_other_values(ram_run: Path, tmp_path: Path) -> None:
    """A bit flipped anywhere in the file (the zip's headers, the outer pickle, the payload) is
    an error, or changes nothing that is loaded (e.g. a zip CRC torch does not read)."""
    good = (ram_run / "checkpoints" / "best.pt").read_bytes()
    reference = load_checkpoint(ram_run / "checkpoints" / "best.pt")
    file = tmp_path / "best.pt"
    size = len(good)
    positions = sorted(
        {*range(0, 1500, 7), *range(size // 2, size, size // 150), *range(size - 1500, size, 7)}
    )
    detected = 0
    for position in positions:
        flipped = bytearray(good)
        flipped[position] ^= 1 << (position % 8)
        file.write_bytes(flipped)
        try:
            state = load_checkpoint(file)
        except CheckpointError:
            detected += 1
            continue
        assert_same(reference, state, f"bit {position % 8} of byte {position}")
    assert detected > len(positions) // 2


def test_format_1_checkpoints_still_load_and_resume(ram_run: Path, tmp_path: Path) -> None:
    run = copy_run(ram_run, tmp_path)
    states = {}
    for name in ("best.pt", "last.pt"):
        states[name] = load_checkpoint(run / "checkpoints" / name)
        old = {**states[name], FORMAT_KEY: 1}  # as the package wrote them before the checksum
        torch.save(old, run / "checkpoints" / name)
        assert CHECKSUM_KEY not in torch.load(run / "checkpoints" / name, weights_only=True)
        assert_same({**states[name], FORMAT_KEY: 1}, load_checkpoint(run / "checkpoints" / name), name)
    again = ram_reinforce.main(["--resume", str(run), "--no-progress"])  # all epochs done: the test alone
    assert again["accuracy"] == json.loads((ram_run / "results" / "test.json").read_text())["accuracy"]


# ----------------------------------------------------------------------------- 4. resumes that fail
def test_resuming_the_other_programs_run_is_one_line_and_writes_nothing(
    ram_run: Path, cnn_run: Path, tmp_path: Path
) -> None:
    ram, cnn = copy_run(ram_run, tmp_path, "ram"), copy_run(cnn_run, tmp_path, "cnn")
    before = snapshot(tmp_path)
    with pytest.raises(RunFolderError) as refused:
        train.main(["--resume", str(ram)])
    assert "it is a run of agents.ram_reinforce; continue it with python -m agents.ram_reinforce" in str(
        refused.value
    )
    assert "\n" not in str(refused.value)
    with pytest.raises(RunFolderError, match=r"it is a run of baselines\.train"):
        ram_reinforce.main(["--resume", str(cnn)])
    # --overwrite does not delete the other program's run either
    with pytest.raises(RunFolderError, match=r"cannot overwrite .* it is a run of agents\.ram_reinforce"):
        train.main(["--run-dir", str(ram), "--overwrite", *CNN_FLAGS])
    with pytest.raises(RunFolderError, match=r"cannot overwrite .* it is a run of baselines\.train"):
        ram_reinforce.main(["--run-dir", str(cnn), "--overwrite", *RAM_FLAGS])
    assert snapshot(tmp_path) == before


def test_a_resume_that_fails_leaves_the_run_folder_untouched(ram_run: Path, tmp_path: Path) -> None:
    run = copy_run(ram_run, tmp_path)
    last = run / "checkpoints" / "last.pt"
    rotten = bytearray(last.read_bytes())
    rotten[len(rotten) // 2] ^= 4
    last.write_bytes(rotten)
    before = snapshot(run)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        ram_reinforce.main(["--resume", str(run), "--epochs", "4"])
    assert snapshot(run) == before
    state = load_checkpoint(ram_run / "checkpoints" / "last.pt")  # a checkpoint of another model
    state["model_config"]["hidden_size"] = 64
    save_checkpoint(last, state, state[CONFIG_KEY])
    before = snapshot(run)
    with pytest.raises(CheckpointError, match="another environment or model"):
        ram_reinforce.main(["--resume", str(run), "--epochs", "4"])
    assert snapshot(run) == before


# ----------------------------------------------------------------------------- 5. kills
class Killed(BaseException):
    """The process dies here (the in-process stand-in for a kill: nothing catches it)."""


def dying_writes(kill_at: int, moment: str) -> Any:
    """A ``save_checkpoint`` that dies in its ``kill_at``-th call: ``"during"`` the write (a
    partial temporary file stays behind, the checkpoint is not replaced) or ``"after"`` the
    rename."""
    calls = []

    def save(path: str | os.PathLike[str], state: Any, config: Any) -> None:
        calls.append(path)
        if len(calls) == kill_at and moment == "during":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).with_name(f".{Path(path).name}.killed.tmp").write_bytes(b"half a checkpoint")
            raise Killed
        real_save_checkpoint(path, state, config)
        if len(calls) == kill_at:
            raise Killed

    return save


real_save_checkpoint = checkpoints.save_checkpoint


def assert_consistent(checkpoints: Path) -> None:
    """best.pt holds the best epoch last.pt names, or the epoch after last.pt's (the kill came
    between the two writes); last.pt never exists without best.pt."""
    last = load_checkpoint(checkpoints / "last.pt") if (checkpoints / "last.pt").exists() else None
    best = load_checkpoint(checkpoints / "best.pt") if (checkpoints / "best.pt").exists() else None
    if last is None:
        return
    assert best is not None, "last.pt without best.pt"
    assert best["epoch"] == last["best_epoch"] or (
        best["epoch"] == last["epoch"] + 1 and best["best_epoch"] == best["epoch"]
    ), (last["epoch"], last["best_epoch"], best["epoch"])


def test_a_kill_inside_any_checkpoint_write_resumes_to_the_same_ram_run(
    ram_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = load_checkpoint(ram_run / "checkpoints" / "last.pt")["history"]
    accuracies = [h["val_accuracy"] for h in history]
    improved = [a > max(accuracies[:i], default=-1.0) for i, a in enumerate(accuracies)]
    assert improved == [True, False, True]  # both kinds of epoch end: best.pt and last.pt, last.pt alone
    writes = len(history) + sum(improved)
    for kill_at in range(1, writes + 1):
        for moment in ("during", "after"):
            run = tmp_path / f"killed-{kill_at}-{moment}"
            monkeypatch.setattr(checkpoints, "save_checkpoint", dying_writes(kill_at, moment))
            with pytest.raises(Killed):
                ram_reinforce.main(["--run-dir", str(run), *RAM_FLAGS])
            monkeypatch.setattr(checkpoints, "save_checkpoint", real_save_checkpoint)
            assert_consistent(run / "checkpoints")
            ram_reinforce.main(["--resume", str(run), "--no-progress"])
            assert_same_run(ram_run, run)


def test_a_kill_between_best_and_last_resumes_to_the_same_cnn_run(
    cnn_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = load_checkpoint(cnn_run / "checkpoints" / "last.pt")["history"]
    assert history[1]["val_accuracy"] > history[0]["val_accuracy"]  # epoch 2 writes best.pt, then last.pt
    run = tmp_path / "killed"
    monkeypatch.setattr(
        checkpoints, "save_checkpoint", dying_writes(3, "after")
    )  # best.pt of epoch 2 is written
    with pytest.raises(Killed):
        train.main(["--run-dir", str(run), *CNN_FLAGS])
    monkeypatch.setattr(checkpoints, "save_checkpoint", real_save_checkpoint)
    assert_consistent(run / "checkpoints")
    train.main(["--resume", str(run), "--no-progress"])
    assert_same_run(cnn_run, run)


# ----------------------------------------------------------------------------- 6. Ctrl-C
def default_sigint() -> None:
    """(A background job's children inherit an ignored SIGINT: give the trainer Python's own.)"""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_ends_the_ram_trainer_with_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    flags = [*RAM_FLAGS, "--epochs", "100000", "--patience", "100000"]
    process = subprocess.Popen(
        [sys.executable, "-m", "agents.ram_reinforce", "--run-dir", str(run), *flags],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "last.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    assert err == f"interrupted: continue with python -m agents.ram_reinforce --resume {run}\n"


@pytest.mark.filterwarnings("ignore:Unable to enable fault handler")  # (torchrun's @record under capsys)
def test_ctrl_c_ends_the_baseline_trainer_with_one_line_and_the_run_resumes(
    cnn_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    real = train.evaluate_classifier
    calls = []

    def pressed(*args: Any, **kwargs: Any) -> Any:  # Ctrl-C in epoch 2's validation, each time
        calls.append(1)
        if len(calls) >= 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate_classifier", pressed)
    with pytest.raises(Interrupted) as stopped:
        train.main(["--run-dir", str(run), *CNN_FLAGS])
    assert stopped.value.code == 130
    assert str(stopped.value) == f"interrupted: continue with python -m baselines.train --resume {run}"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:  # as the program ends: that line alone, status 130
        cli.run_main(lambda: train.main(["--resume", str(run), "--no-progress"]), errors=(ValueError,))
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == f"interrupted: continue with python -m baselines.train --resume {run}\n"
    monkeypatch.setattr(train, "evaluate_classifier", real)
    train.main(["--resume", str(run), "--no-progress"])
    assert_same_run(cnn_run, run)


# ----------------------------------------------------------------------------- 7. bad command lines
BAD = [
    ("ram", ["--threads", "0"], ValueError, "--threads must be at least 1, got 0"),
    ("cnn", ["--threads", "-1"], ValueError, "--threads must be at least 1, got -1"),
    ("cnn", ["--batch-size", "0"], ValueError, "--batch-size must be at least 1, got 0"),
    ("ram", ["--batch-size", "-64"], ValueError, "--batch-size must be at least 1, got -64"),
    ("ram", ["--epochs", "0"], ValueError, "--epochs must be at least 1, got 0"),
    ("cnn", ["--epochs", "-3"], ValueError, "--epochs must be at least 1, got -3"),
    ("ram", ["--patience", "0"], ValueError, "--patience must be at least 1, got 0"),
    ("cnn", ["--patience", "-1"], ValueError, "--patience must be at least 1, got -1"),
    ("ram", ["--eval-batch-size", "0"], ValueError, "--eval-batch-size must be at least 1, got 0"),
    ("cnn", ["--eval-batch-size", "0"], ValueError, "--eval-batch-size must be at least 1, got 0"),
    ("ram", ["--learning-rate", "nan"], ValueError, "--learning-rate must be a finite number, got nan"),
    ("cnn", ["--learning-rate", "inf"], ValueError, "--learning-rate must be a finite number, got inf"),
    ("cnn", ["--learning-rate=-inf"], ValueError, "--learning-rate must be a finite number, got -inf"),
]


@pytest.mark.parametrize(("program", "flags", "error", "message"), BAD)
def test_bad_settings_are_refused_before_anything_is_written(
    tmp_path: Path, program: str, flags: list[str], error: type[Exception], message: str
) -> None:
    main = ram_reinforce.main if program == "ram" else train.main
    with pytest.raises(error) as refused:
        main(["--run-dir", str(tmp_path / "run"), *flags])
    assert str(refused.value) == message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("program", ["ram", "cnn"])
def test_a_missing_or_unreadable_data_folder_is_refused_before_anything_is_written(
    tmp_path: Path, program: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import glimpse_env.data

    def offline(*args: Any, **kwargs: Any) -> None:  # (the test machine may have a network)
        raise OSError("no network in this test")

    monkeypatch.setattr(glimpse_env.data, "_download", offline)
    monkeypatch.setenv("GLIMPSE_DATA_DIR", os.environ.get("GLIMPSE_DATA_DIR", ""))  # restored afterwards
    main = ram_reinforce.main if program == "ram" else train.main
    with pytest.raises(OSError, match="not found"):
        main(["--run-dir", str(tmp_path / "run"), "--data-dir", str(tmp_path / "nonexistent")])
    assert not (tmp_path / "run").exists()
    afile = tmp_path / "a-file"
    afile.write_text("not a folder")
    monkeypatch.setenv("GLIMPSE_DATA_DIR", str(afile))
    with pytest.raises(OSError, match="is a file, not a folder"):
        main(["--run-dir", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("module", "flags", "data_dir", "message"),
    [
        ("agents.ram_reinforce", ["--threads", "0"], None, "error: --threads must be at least 1, got 0"),
        ("baselines.train", ["--batch-size", "0"], None, "error: --batch-size must be at least 1, got 0"),
        ("baselines.train", ["--learning-rate", "nan"], None, "error: --learning-rate must be a finite"),
        ("agents.ram_reinforce", [], "a-file", "error: GLIMPSE_DATA_DIR="),
        ("baselines.train", [], "a-file/inside", "error: GLIMPSE_DATA_DIR="),
    ],
)
def test_bad_command_lines_end_the_programs_with_one_line(
    tmp_path: Path, module: str, flags: list[str], data_dir: str | None, message: str
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    env = dict(os.environ)
    if data_dir is not None:
        env["GLIMPSE_DATA_DIR"] = str(tmp_path / data_dir)
    done = subprocess.run(
        [sys.executable, "-m", module, "--run-dir", str(tmp_path / "run"), *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "run").exists()
