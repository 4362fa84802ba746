"""Packaging: the layers (what ``import glimpse_env`` loads), the optional extras (sb3,
video) and the one-line error of a program whose extra is missing."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

import glimpse_env.wrappers

ROOT = Path(__file__).resolve().parents[1]
#: modules the environments and the evaluation protocol must not load: the sb3 extra, the
#: trainers' TensorBoard, and the layers above glimpse_env
FORBIDDEN = (
    "stable_baselines3",
    "sb3_contrib",
    "tensorboard",
    "torch.utils.tensorboard",
    "agents",
    "baselines",
    "glimpse_engine",
)
SB3_HINT = "needs stable-baselines3 and sb3-contrib: pip install 'glimpse-mnist[sb3]'"


def _python(code: str, *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_environments_and_the_evaluation_protocol_load_no_sb3_tensorboard_agents_or_baselines(
    tmp_path: Path,
) -> None:
    """A fresh interpreter imports glimpse_env, glimpse_env.evaluation and the evaluation
    program glimpse_env.evaluate (listing its policy plug-ins, making the random policy),
    plays an episode, decodes an adapter action: none of the forbidden modules is loaded."""
    result = _python(
        f"""
        import sys

        import gymnasium as gym

        import glimpse_env
        import glimpse_env.evaluate
        import glimpse_env.evaluation
        from glimpse_env.wrappers import FlatActionWrapper

        assert {{"ram", "sb3"}} <= set(glimpse_env.evaluate.policy_plugins())
        glimpse_env.evaluate.load_policy("random", "GlimpseMNIST-v0")

        env = FlatActionWrapper(gym.make("GlimpseMNIST-v0"))
        env.reset(seed=0)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
        loaded = sorted(
            name for name in sys.modules
            if any(name == bad or name.startswith(bad + ".") for bad in {FORBIDDEN!r})
        )
        print("LOADED", loaded)
        """,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout, result.stdout


def test_sb3_vec_env_is_imported_from_the_wrappers_on_first_use() -> None:
    pytest.importorskip("stable_baselines3")
    from glimpse_env.sb3_vec_env import SB3VecEnv
    from glimpse_env.wrappers import SB3VecEnv as through_wrappers

    assert through_wrappers is SB3VecEnv is glimpse_env.wrappers.SB3VecEnv
    assert "SB3VecEnv" in glimpse_env.wrappers.__all__ and "SB3VecEnv" in dir(glimpse_env.wrappers)
    with pytest.raises(AttributeError, match="no attribute 'SB3VecEnvv'"):
        glimpse_env.wrappers.SB3VecEnvv


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["examples/recurrent_ppo.py", "--timesteps", "10"], "examples/recurrent_ppo.py"),
        (
            ["-m", "glimpse_env.evaluate", "--env", "GlimpseMNIST-v0", "--policy", "sb3:PPO:model.zip"],
            "--policy sb3:ALGO:PATH",
        ),
        (["-c", "from glimpse_env.wrappers import SB3VecEnv"], "glimpse_env.wrappers.SB3VecEnv"),
    ],
    ids=["recurrent_ppo", "policy-sb3", "SB3VecEnv"],
)
def test_without_the_sb3_extra_a_program_says_how_to_install_it(
    tmp_path: Path, argv: list[str], what: str
) -> None:
    """stable_baselines3 and sb3_contrib hidden (a finder that refuses them): one line naming
    the extra, no traceback (the bare import of SB3VecEnv is an ImportError with that message)."""
    (tmp_path / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import sys

            class _NoSB3:
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] in ("stable_baselines3", "sb3_contrib"):
                        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                    return None

            sys.meta_path.insert(0, _NoSB3())
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 1
    if argv[0] == "-c":
        last = result.stderr.strip().splitlines()[-1]
        assert last == f"glimpse_env.extras.MissingExtraError: {what} {SB3_HINT}"
    else:
        assert result.stderr == f"error: {what} {SB3_HINT}\n"


def test_record_video_records_an_episode(tmp_path: Path) -> None:
    """Gymnasium's RecordVideo (the video extra: moviepy) on GlimpseMNIST-v0: one frame per
    render, reset and each step, at the environment's render_fps."""
    pytest.importorskip("moviepy")
    from gymnasium.wrappers import RecordVideo
    from moviepy.video.io.VideoFileClip import VideoFileClip

    env = RecordVideo(
        gym.make("GlimpseMNIST-v0", render_mode="rgb_array"),
        str(tmp_path / "videos"),
        episode_trigger=lambda episode: True,
        disable_logger=True,
    )
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps, done = steps + 1, terminated or truncated
    frame_shape = env.unwrapped.render().shape  # type: ignore[union-attr]
    env.close()
    (video,) = (tmp_path / "videos").glob("*.mp4")
    clip = VideoFileClip(str(video))
    try:
        frames = list(clip.iter_frames())
        assert clip.fps == env.metadata["render_fps"]
    finally:
        clip.close()
    assert len(frames) == steps + 1
    assert frames[0].shape == frame_shape


def test_every_test_conftest_marks_slow_exists() -> None:
    """``SLOW_TESTS`` in tests/conftest.py names tests by ``FILE::FUNCTION``: a renamed or
    removed test must leave the list too (else its new name would silently join the
    fast subset, and the list would rot)."""
    tests = ROOT / "tests"
    (listing,) = (
        node.value
        for node in ast.parse((tests / "conftest.py").read_text()).body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "SLOW_TESTS" for t in node.targets)
    )
    names = [node.value for node in ast.walk(listing) if isinstance(node, ast.Constant)]
    assert names
    for name in names:
        file, _, function = name.partition("::")
        body = ast.parse((tests / file).read_text()).body if (tests / file).is_file() else []
        defined = {node.name for node in body if isinstance(node, ast.FunctionDef)}
        assert function in defined, f"tests/conftest.py SLOW_TESTS names {name}, which is not a test"
