"""Bad input to the evaluation and picture programs, and to the RecurrentPPO example: one line
on stderr (what was wrong, what was expected, how to fix it), a non-zero exit status, no
traceback, and nothing written.

The programs run in-process as their ``python -m`` entry points do (:func:`refusal` runs the
module as ``__main__``, through :func:`glimpse_env.cli.run_cli`); a few run in a real
subprocess as well. The checkpoints are tiny runs of the trainers, made once per module.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from glimpse_env import cli

ROOT = Path(__file__).resolve().parents[1]
RECURRENT_PPO = str(ROOT / "examples" / "recurrent_ppo.py")
PROGRAMS = (
    "agents.evaluate",
    "agents.visualize",
    "baselines.evaluate",
    "baselines.visualize",
    "glimpse_env.evaluate",
    RECURRENT_PPO,
)
MNIST = "GlimpseMNIST-v0"
RANDOM = ["--env", MNIST, "--policy", "random"]

pytestmark = pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ram_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny RAM run (seed 3, its test on 100 canvases with M = 1 and 2)."""
    from agents import ram_reinforce

    run_dir = tmp_path_factory.mktemp("ram") / "run"
    ram_reinforce.main(
        [
            *["--run-dir", str(run_dir), "--env", MNIST, "--seed", "3", "--epochs", "1"],
            *["--episodes-per-epoch", "128", "--batch-size", "64", "--eval-episodes", "100"],
            *["--test-mc-samples", "2", "--image-every", "0", "--no-progress", "--threads", "1"],
        ]
    )
    return run_dir


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CNN baseline run."""
    from baselines import train

    run_dir = tmp_path_factory.mktemp("baseline") / "run"
    train.main(
        [
            *["--run-dir", str(run_dir), "--env", MNIST, "--epochs", "1", "--images-per-epoch", "512"],
            *["--batch-size", "64", "--image-every", "0", "--no-progress", "--threads", "1"],
        ]
    )
    return run_dir


@pytest.fixture(scope="module")
def sb3_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Untrained models saved by PPO (flat actions) and RecurrentPPO (multidiscrete)."""
    from sb3_contrib import RecurrentPPO
    from stable_baselines3 import PPO

    from glimpse_env.wrappers import SB3VecEnv

    folder = tmp_path_factory.mktemp("sb3")
    flat = PPO("MultiInputPolicy", SB3VecEnv.make(MNIST, 2), n_steps=16, batch_size=16, seed=0, device="cpu")
    venv = SB3VecEnv.make(MNIST, 2, action="multidiscrete", grid=5)
    recurrent = RecurrentPPO("MultiInputLstmPolicy", venv, n_steps=16, batch_size=16, seed=0, device="cpu")
    flat.save(folder / "ppo.zip")
    recurrent.save(folder / "rppo.zip")
    return {"PPO": folder / "ppo.zip", "RecurrentPPO": folder / "rppo.zip"}


@pytest.fixture(autouse=True)
def _keep_the_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--data-dir`` sets ``GLIMPSE_DATA_DIR`` for the process (glimpse_engine.cli.use_data_dir):
    it is put back after each test."""
    if "GLIMPSE_DATA_DIR" in os.environ:
        monkeypatch.setenv("GLIMPSE_DATA_DIR", os.environ["GLIMPSE_DATA_DIR"])
    else:
        monkeypatch.delenv("GLIMPSE_DATA_DIR", raising=False)


def best(run_dir: Path) -> str:
    return str(run_dir / "checkpoints" / "best.pt")


def refusal(program: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``program`` (a module, or the RecurrentPPO example's path) as ``__main__`` with
    ``argv``, as ``python -m`` does; it must exit with a non-zero status and one line on
    stderr, no traceback. Returns the line."""
    saved_argv = sys.argv
    sys.argv = [program, *argv]
    try:
        with pytest.raises(SystemExit) as exit_info:
            if program.endswith(".py"):
                runpy.run_path(program, run_name="__main__")
            else:
                runpy.run_module(program, run_name="__main__", alter_sys=True)
    finally:
        sys.argv = saved_argv
    code = exit_info.value.code
    assert code not in (None, 0), code
    err = capsys.readouterr().err
    text = code if isinstance(code, str) else err  # sys.exit("error: ...") or argparse's own line
    assert "Traceback" not in err
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "error" in lines[0]
    return lines[0]


def checkpoint_flags(program: str, checkpoint: str) -> list[str]:
    """The flags that give ``program`` a checkpoint of either trainer."""
    if program == "glimpse_env.evaluate":
        return ["--env", MNIST, "--policy", f"ram:{checkpoint}"]
    return ["--checkpoint", checkpoint]


# ------------------------------------------------------------------------ 1. another program's checkpoint
@pytest.mark.parametrize(
    ("program", "trainer", "hint"),
    [
        ("agents.evaluate", "baseline", "python -m baselines.evaluate"),
        ("agents.visualize", "baseline", "python -m baselines.evaluate"),
        ("glimpse_env.evaluate", "baseline", "python -m baselines.evaluate"),
        ("baselines.evaluate", "ram", "python -m agents.evaluate"),
        ("baselines.visualize", "ram", "python -m agents.evaluate"),
    ],
)
def test_a_checkpoint_of_the_other_trainer_is_named(
    program: str,
    trainer: str,
    hint: str,
    ram_run: Path,
    baseline_run: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    checkpoint = best(baseline_run if trainer == "baseline" else ram_run)
    line = refusal(program, checkpoint_flags(program, checkpoint), capsys)
    made_by = "baselines.train" if trainer == "baseline" else "agents.ram_reinforce"
    assert checkpoint in line and made_by in line and hint in line
    assert "KeyError" not in line


# ----------------------------------------------------------------------------- 2. output paths
def output_flags(program: str, tmp_path: Path) -> tuple[str, list[str]]:
    """``(flag, other flags)``: the output flag of ``program``, and a command line that would
    fail on its missing checkpoint if the output were not checked first."""
    missing = str(tmp_path / "missing.pt")
    if program == "glimpse_env.evaluate":
        return "--json", ["--env", MNIST, "--policy", f"ram:{missing}"]
    if program.endswith("visualize"):
        return "--out", ["--checkpoint", missing]
    return "--json", ["--checkpoint", missing]


@pytest.mark.parametrize("program", PROGRAMS[:5])
@pytest.mark.parametrize("place", ["under a file", "a folder", "a folder one cannot write in", "/dev/null"])
def test_output_paths_are_checked_before_the_work(
    program: str,
    place: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flag, argv = output_flags(program, tmp_path)
    suffix = ".png" if flag == "--out" else ".json"
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    locked = tmp_path / "locked"
    locked.mkdir()
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    if place == "a folder one cannot write in":  # root writes anywhere: the permission is pretended
        real_access = os.access
        monkeypatch.setattr(
            os, "access", lambda path, mode, **kw: Path(path) != locked and real_access(path, mode, **kw)
        )
    target = {
        "under a file": str(notes / f"out{suffix}"),
        "a folder": str(folder),
        "a folder one cannot write in": str(locked / "deeper" / f"out{suffix}"),
        "/dev/null": "/dev/null" if flag == "--json" else str(tmp_path / "link.png"),
    }[place]
    if place == "/dev/null" and flag == "--out":
        os.symlink("/dev/null", target)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    line = refusal(program, [*argv, flag, target], capsys)
    assert line.startswith(f"error: {flag} ") and target in line  # the output, not the missing checkpoint
    assert "missing.pt" not in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing made
    assert notes.read_text() == "keep me"


def test_the_output_check_on_its_own(tmp_path: Path) -> None:
    assert cli.check_output_file(tmp_path / "new" / "deeper" / "out.json", "--json") == (
        tmp_path / "new" / "deeper" / "out.json"
    )
    assert not (tmp_path / "new").exists()  # nothing made
    (tmp_path / "old.json").write_text("{}")
    cli.check_output_file(tmp_path / "old.json", "--json")  # an existing file is replaced at the end
    with pytest.raises(ValueError, match="needs a file name"):
        cli.check_output_file("", "--json")
    with pytest.raises(ValueError, match=r"--out must end in \.png or \.gif, got 'a\.bmp'"):
        cli.check_output_file("a.bmp", "--out", suffixes=(".png", ".gif"))


# ----------------------------------------------------------------------------- 3. --threads
@pytest.mark.parametrize("threads", ["0", "-2"])
@pytest.mark.parametrize("program", PROGRAMS)
def test_threads_must_be_positive(
    program: str, threads: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if program == RECURRENT_PPO:
        argv = ["--run-dir", str(tmp_path / "run")]
    elif program == "glimpse_env.evaluate":
        argv = ["--env", MNIST, "--policy", "random"]
    else:
        argv = ["--checkpoint", str(tmp_path / "missing.pt")]
    line = refusal(program, [*argv, "--threads", threads], capsys)
    assert f"--threads must be an integer >= 1, got {threads}" in line
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- 4. the RecurrentPPO example
@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--batch-size", "0"], "--batch-size must be an integer >= 2, got 0"),
        (["--batch-size", "1"], "--batch-size must be an integer >= 2, got 1"),
        (["--n-epochs", "0"], "--n-epochs must be an integer >= 1, got 0"),
        (["--grid", "1"], "--grid must be an integer >= 2, got 1"),
        (["--learning-rate", "nan"], "--learning-rate must be a finite number > 0.0, got nan"),
        (["--learning-rate", "0"], "--learning-rate must be a finite number > 0.0, got 0.0"),
        (["--eval-size", "0"], "--eval-size must be an integer >= 1, got 0"),
        (["--eval-batch", "0"], "--eval-batch must be an integer >= 1, got 0"),
        (["--timesteps", "0"], "--timesteps must be an integer >= 1, got 0"),
        (["--timesteps", "-5"], "--timesteps must be an integer >= 1, got -5"),
        (["--rollout-episodes", "0"], "--rollout-episodes must be an integer >= 1, got 0"),
        (["--num-envs", "0"], "--num-envs must be an integer >= 1, got 0"),
        (["--checkpoint-every", "0"], "--checkpoint-every must be an integer >= 1, got 0"),
        (["--lstm-hidden", "0"], "--lstm-hidden must be an integer >= 1, got 0"),
        (["--time-limit", "nan"], "--time-limit must be a finite number > 0.0, got nan"),
        (["--gamma", "1.5"], "--gamma must be a finite number in [0.0, 1.0], got 1.5"),
        (["--gae-lambda", "inf"], "--gae-lambda must be a finite number in [0.0, 1.0], got inf"),
        (["--clip-range", "0"], "--clip-range must be a finite number > 0.0, got 0.0"),
        (["--target-kl", "-1"], "--target-kl must be a finite number > 0.0, got -1.0"),
        (["--ent-coef", "nan"], "--ent-coef must be a finite number >= 0.0, got nan"),
        (["--vf-coef", "-0.5"], "--vf-coef must be a finite number >= 0.0, got -0.5"),
        (["--seed", "-1"], "--seed must be an integer in [0, 4294967295], got -1"),
        (["--net-arch", "64,0"], "--net-arch widths must be positive integers"),
        (["--net-arch", "wide"], "--net-arch takes comma-separated widths"),
        (["--env-id", "GlimpseMNIST-Nope-v0"], "invalid choice: 'GlimpseMNIST-Nope-v0'"),
    ],
)
def test_recurrent_ppo_checks_its_settings_first(
    flags: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refusal(RECURRENT_PPO, ["--run-dir", str(tmp_path / "run"), *flags], capsys)
    assert expected in line and "--help" in line
    assert not (tmp_path / "run").exists()


def test_recurrent_ppo_never_writes_in_a_folder_of_another_program(
    ram_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ram-run"
    shutil.copytree(ram_run, folder)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    for extra in ([], ["--overwrite"], ["--resume"]):
        line = refusal(RECURRENT_PPO, ["--run-dir", str(folder), "--timesteps", "100", *extra], capsys)
        assert "is not a run of examples/recurrent_ppo.py" in line and str(folder) in line
    assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    line = refusal(RECURRENT_PPO, ["--run-dir", str(notes)], capsys)
    assert "is a file, not a folder" in line and notes.read_text() == "keep me"


@pytest.mark.parametrize("where", [".", ".."])
def test_recurrent_ppo_overwrite_spares_the_current_folder_and_those_above(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"  # a run folder of the example's own, and the current folder in it
    (run / "sub").mkdir(parents=True)
    (run / "settings.json").write_text(json.dumps({"program": "examples/recurrent_ppo.py"}))
    monkeypatch.chdir(run if where == "." else run / "sub")
    line = refusal(RECURRENT_PPO, ["--run-dir", where, "--overwrite"], capsys)
    assert "the current folder or one above it" in line
    assert (run / "settings.json").is_file() and (run / "sub").is_dir()


def test_recurrent_ppo_marks_its_run_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    argv = ["--num-envs", "8", "--timesteps", "50", "--eval-size", "8", "--eval-batch", "8", "--threads", "1"]
    runpy.run_path(RECURRENT_PPO)["main"]([*argv, "--run-dir", str(run)])
    assert json.loads((run / "settings.json").read_text())["program"] == "examples/recurrent_ppo.py"
    line = refusal(RECURRENT_PPO, [*argv, "--run-dir", str(run)], capsys)
    assert "already holds a run" in line and "--resume" in line and "--overwrite" in line


# ----------------------------------------------------------------------------- 5. data folders
def looping_data_folder(tmp_path: Path) -> Path:
    """A data folder whose MNIST files are symbolic links to themselves (unreadable even as root)."""
    raw = tmp_path / "loops" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        os.symlink(raw / name, raw / name)
    os.symlink(raw / "t10k-labels-idx1-ubyte", raw / "t10k-labels-idx1-ubyte")
    return tmp_path / "loops"


@pytest.mark.parametrize("problem", ["--data-dir at a file", "GLIMPSE_DATA_DIR at a file", "unreadable"])
@pytest.mark.parametrize("program", PROGRAMS[:5])
def test_data_folder_problems_are_one_line(
    program: str,
    problem: str,
    ram_run: Path,
    baseline_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkpoint = best(baseline_run if program.startswith("baselines") else ram_run)
    argv = checkpoint_flags(program, checkpoint)
    notes = tmp_path / "notes.txt"
    notes.write_text("not data")
    if problem == "--data-dir at a file":
        argv += ["--data-dir", str(notes)]
    elif problem == "GLIMPSE_DATA_DIR at a file":
        monkeypatch.setenv("GLIMPSE_DATA_DIR", str(notes))
    else:
        argv += ["--data-dir", str(looping_data_folder(tmp_path))]
    if program.endswith("visualize"):
        argv += ["--out", str(tmp_path / "picture.png"), "--count", "2"]
    line = refusal(program, argv, capsys)
    if problem == "unreadable":
        assert "symbolic link loop" in line
    else:
        where = "--data-dir" if problem.startswith("--data-dir") else "GLIMPSE_DATA_DIR"
        assert f"{where} '{notes}' is a file, not a folder" in line
    assert not (tmp_path / "picture.png").exists()


# ----------------------------------------------------------------------------- 6. SB3 zips
def test_an_sb3_zip_must_be_played_by_the_algorithm_that_saved_it(
    sb3_zips: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from glimpse_env import evaluate

    assert evaluate.saved_policy_class(sb3_zips["RecurrentPPO"]) == (
        "sb3_contrib.common.recurrent.policies",
        "RecurrentMultiInputActorCriticPolicy",
    )
    assert evaluate.algorithms_of_policy([evaluate.saved_policy_class(sb3_zips["PPO"])]) == [
        "A2C",
        "PPO",
        "TRPO",
    ]
    rppo, ppo = str(sb3_zips["RecurrentPPO"]), str(sb3_zips["PPO"])
    line = refusal("glimpse_env.evaluate", ["--env", MNIST, "--policy", f"sb3:PPO:{rppo}"], capsys)
    assert "holds a model of RecurrentPPO" in line and f"--policy sb3:RecurrentPPO:{rppo}" in line
    line = refusal("glimpse_env.evaluate", ["--env", MNIST, "--policy", f"sb3:RecurrentPPO:{ppo}"], capsys)
    assert "holds a model of A2C / PPO / TRPO" in line and "not of RecurrentPPO" in line
    assert f"sb3:ALGO:{ppo} with ALGO one of A2C, PPO, TRPO" in line
    line = refusal("glimpse_env.evaluate", ["--env", MNIST, "--policy", f"sb3:MaskablePPO:{ppo}"], capsys)
    assert "not of MaskablePPO" in line
    result = evaluate.main(["--env", MNIST, "--policy", f"sb3:RecurrentPPO:{rppo}", "--episodes", "20"])
    assert result.n == 20 and result.policy == f"sb3:RecurrentPPO:{rppo}"  # the right one plays
    # the loaded policy is checked too: a zip whose policy class cannot be read before loading
    with pytest.raises(evaluate.PolicySpecError, match="holds a model of RecurrentPPO"):
        evaluate._check_algorithm(
            "PPO", rppo, [(c.__module__, c.__qualname__) for c in _recurrent_policy_subclass().__mro__]
        )


def _recurrent_policy_subclass() -> type:
    from sb3_contrib.common.recurrent.policies import RecurrentMultiInputActorCriticPolicy

    class CustomPolicy(RecurrentMultiInputActorCriticPolicy):  # a policy of no algorithm's own
        pass

    return CustomPolicy


def test_the_help_says_sb3_zips_are_pickles(capsys: pytest.CaptureFixture[str]) -> None:
    from glimpse_env import evaluate
    from glimpse_env.evaluation import SB3Policy

    with pytest.raises(SystemExit):
        evaluate.main(["--help"])
    assert "pickle-based" in " ".join(capsys.readouterr().out.split())
    assert "pickle-based" in (SB3Policy.__doc__ or "") and "trust" in (SB3Policy.__doc__ or "")


# ----------------------------------------------------------------------------- 7. the evaluation seed
@pytest.mark.parametrize("samples", [1, 2])
def test_a_re_score_gives_the_runs_own_test_figures(ram_run: Path, samples: int) -> None:
    from agents import evaluate as ram_evaluate
    from glimpse_env import evaluate

    saved = json.loads((ram_run / "results" / "test.json").read_text())[f"test_mc{samples}"]
    common = ["--mc-samples", str(samples), "--episodes", "100"]
    again = ram_evaluate.main(["--checkpoint", best(ram_run), *common])
    assert again.n == saved["n"] == 100
    assert again.accuracy == saved["accuracy"] and again.per_class == saved["per_class"]
    assert again.mean_locations == saved["mean_locations"]  # the same draws, not only the same score
    played = evaluate.main(["--env", MNIST, "--policy", f"ram:{best(ram_run)}", *common])
    assert played.accuracy == saved["accuracy"] and played.mean_locations == saved["mean_locations"]
    other = ram_evaluate.main(["--checkpoint", best(ram_run), *common, "--seed", "0"])  # still overridable
    assert other.mean_locations != saved["mean_locations"]


def test_sampled_pictures_use_the_training_seed(ram_run: Path, tmp_path: Path) -> None:
    from agents import visualize

    flags = ["--checkpoint", best(ram_run), "--sample", "--count", "2"]
    first = visualize.main([*flags, "--out", str(tmp_path / "a.png")]).read_bytes()
    assert visualize.main([*flags, "--out", str(tmp_path / "b.png")]).read_bytes() == first
    assert visualize.main([*flags, "--out", str(tmp_path / "c.png"), "--seed", "3"]).read_bytes() == first


# ----------------------------------------------------------------------------- 8. other bad input
@pytest.mark.parametrize(
    ("program", "flags", "expected"),
    [
        ("agents.evaluate", ["--checkpoint", "{missing}"], "no checkpoint at"),
        ("agents.evaluate", ["--checkpoint", "{folder}"], "(a folder)"),
        ("agents.evaluate", ["--checkpoint", "{notes}"], "notes.txt'"),
        ("agents.evaluate", [], "give either --checkpoint PATH"),
        ("agents.evaluate", ["--checkpoint", "{ram}", "--mc-samples", "-1"], "--mc-samples must be"),
        (
            "agents.evaluate",
            ["--checkpoint", "{ram}", "--episodes", "0"],
            "--episodes must be an integer >= 1",
        ),
        ("agents.evaluate", ["--checkpoint", "{ram}", "--batch-size", "0"], "--batch-size must be"),
        ("agents.evaluate", ["--checkpoint", "{ram}", "--seed", "-1"], "--seed must be an integer >= 0"),
        ("agents.visualize", ["--checkpoint", "{missing}"], "no checkpoint at"),
        ("agents.visualize", ["--checkpoint", "{ram}", "--count", "0"], "--count must be an integer in"),
        ("agents.visualize", ["--checkpoint", "{ram}", "--first-index", "-1"], "--first-index must be"),
        ("agents.visualize", ["--checkpoint", "{ram}", "--first-index", "9999", "--count", "2"], "runs past"),
        ("agents.visualize", ["--checkpoint", "{ram}", "--out", "{tmp}/g.bmp"], r"must end in .png or .gif"),
        ("baselines.evaluate", ["--checkpoint", "{folder}"], "(a folder)"),
        ("baselines.evaluate", ["--checkpoint", "{baseline}", "--batch-size", "0"], "--batch-size must be"),
        ("baselines.visualize", ["--checkpoint", "{baseline}", "--count", "0"], "--count must be"),
        ("baselines.visualize", ["--checkpoint", "{baseline}", "--count", "20000"], "--count must be"),
        ("baselines.visualize", ["--checkpoint", "{baseline}", "--out", "{tmp}/a.gif"], "must end in .png"),
        ("glimpse_env.evaluate", ["--env", "GlimpseMNIST-Nope-v0", "--policy", "random"], "invalid choice"),
        (
            "glimpse_env.evaluate",
            ["--env", MNIST, "--policy", "random", "--episodes", "0"],
            "--episodes must",
        ),
        ("glimpse_env.evaluate", ["--env", MNIST, "--policy", "random", "--mc-samples", "0"], "--mc-samples"),
        (
            "glimpse_env.evaluate",
            ["--env", MNIST, "--policy", "random", "--num-envs", "0"],
            "--num-envs must",
        ),
        ("glimpse_env.evaluate", ["--env", MNIST, "--policy", "random", "--seed", "-1"], "--seed must"),
        ("glimpse_env.evaluate", ["--env", MNIST, "--policy", "sb3:PPO"], "is not one of random"),
        ("glimpse_env.evaluate", ["--env", MNIST, "--policy", "ram:{folder}"], "(a folder)"),
        ("glimpse_env.evaluate", ["--env", MNIST, "--policy", "sb3:PPO:{notes}"], "PPO.load("),
        (
            "glimpse_env.evaluate",
            ["--env", MNIST, "--policy", "random", "--episodes", "x"],
            "invalid int value",
        ),
        ("glimpse_env.evaluate", ["--env", MNIST, "--policy", "random", "--device", "tpu"], "--device"),
    ],
)
def test_other_bad_input_is_one_line(
    program: str,
    flags: list[str],
    expected: str,
    ram_run: Path,
    baseline_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    names = {
        "missing": str(tmp_path / "missing.pt"),
        "folder": str(tmp_path / "folder"),
        "notes": str(tmp_path / "notes.txt"),
        "ram": best(ram_run),
        "baseline": best(baseline_run),
        "tmp": str(tmp_path),
    }
    argv = [flag.format(**names) for flag in flags]
    if program.endswith("visualize") and "--out" not in argv:
        argv += ["--out", str(tmp_path / "picture.png")]
    line = refusal(program, argv, capsys)
    assert expected in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "notes.txt"]  # nothing written


@pytest.mark.parametrize(
    ("example", "flags", "expected"),
    [
        ("random_agent", ["--episodes", "0"], "--episodes must be at least 1, got 0"),
        ("random_agent", ["--picture", "{tmp}"], "is a folder, not a file"),
        ("quickstart", ["--out", "{tmp}"], "is a folder, not a file"),
        ("quickstart", ["--env-id", "Nope-v0"], "invalid choice: 'Nope-v0'"),
        ("custom_agent", ["--updates", "0"], "--updates"),
        ("vector_env", ["--steps", "0"], "--steps must be at least 1"),
    ],
)
def test_the_other_examples_refuse_bad_input_in_one_line(
    example: str, flags: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [flag.format(tmp=tmp_path) for flag in flags]
    line = refusal(str(ROOT / "examples" / f"{example}.py"), argv, capsys)
    assert expected in line
    assert list(tmp_path.iterdir()) == []


def test_one_line_squeezes_the_white_space() -> None:
    assert cli.one_line(ValueError("a\n  b\tc ")) == "a b c"
    assert cli.one_line(OSError()) == "OSError"
    assert len(cli.one_line("x" * 10_000)) == cli.MAX_MESSAGE


@pytest.mark.parametrize("program", PROGRAMS)
def test_usage_errors_are_one_line(program: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = {"glimpse_env.evaluate": RANDOM, RECURRENT_PPO: []}.get(program, ["--checkpoint", "best.pt"])
    line = refusal(program, [*argv, "--no-such-flag"], capsys)
    # tyro's wording (the programs on glimpse_engine.cli) or argparse's (glimpse_env's, the examples)
    said = ("Unrecognized options: --no-such-flag", "unrecognized arguments: --no-such-flag")
    assert any(words in line for words in said) and "--help" in line


# ----------------------------------------------------------------------------- the real entry points
@pytest.mark.parametrize("program", PROGRAMS)
def test_the_entry_points_print_one_line(
    program: str, ram_run: Path, baseline_run: Path, tmp_path: Path
) -> None:
    """``python -m PROGRAM`` (and ``python examples/recurrent_ppo.py``) in a subprocess."""
    if program == RECURRENT_PPO:
        command = [sys.executable, program, "--batch-size", "0"]
    else:
        other = baseline_run if program.startswith(("agents", "glimpse_env")) else ram_run
        command = [sys.executable, "-m", program, *checkpoint_flags(program, best(other))]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and "Traceback" not in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []
