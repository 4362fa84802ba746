"""CI checks of the built package (called by .ci/run).

python .ci/package_checks.py wheel DIST/glimpse_mnist-*.whl
    the wheel holds glimpse_env, glimpse_engine, agents and baselines with their py.typed, and nothing
    of the checkout that is not the package (tests/, weights/, runs/, ...)

VENV/bin/python /abs/path/.ci/package_checks.py installed
    run in a clean virtual environment where the wheel (not the checkout) is installed,
    from a folder outside the checkout, with GLIMPSE_DATA_DIR set: every registered
    environment plays an episode, the engine, agents and baselines import, a trainer's
    --help runs (tyro is installed), every module comes from
    that environment, and the sb3 extra is not part of the base install
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

PACKAGES = ("glimpse_env", "glimpse_engine", "agents", "baselines")
#: top-level folders of the checkout that must stay out of the wheel
NOT_SHIPPED = ("tests", "weights", "runs", "results", "examples", "benchmarks", "docs", "shared")


def check_wheel(wheel: str) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for package in PACKAGES:
        for required in ("__init__.py", "py.typed"):
            if f"{package}/{required}" not in names:
                sys.exit(f"{wheel} lacks {package}/{required}")
    stray = sorted(name for name in names if name.split("/")[0] in NOT_SHIPPED)
    if stray:
        sys.exit(f"{wheel} ships files that are not the package: {', '.join(stray[:10])}")
    tops = sorted({name.split("/")[0] for name in names})
    print(f"wheel OK: {len(names)} files in {', '.join(tops)}")


def check_installed() -> None:
    import gymnasium as gym

    import glimpse_env
    import glimpse_env.evaluation
    from glimpse_env.registration import ENV_SPECS

    for spec in ENV_SPECS:
        env = gym.make(spec.env_id)
        env.reset(seed=0)
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
        env.close()

    import subprocess

    import agents
    import baselines
    import glimpse_engine.fit

    helped = subprocess.run(
        [sys.executable, "-m", "agents.ram_reinforce", "--help"], capture_output=True, text=True, check=False
    )
    if helped.returncode != 0 or "--epochs" not in helped.stdout:
        sys.exit(f"python -m agents.ram_reinforce --help failed: {helped.stderr.strip()[-500:]}")

    import glimpse_env.evaluate

    plugins = set(glimpse_env.evaluate.policy_plugins())
    if not {"ram", "sb3"} <= plugins:
        sys.exit(f"the wheel lacks the glimpse_env.policies entry points (found {sorted(plugins)})")

    prefix = Path(sys.prefix).resolve()
    for module in (glimpse_env, glimpse_env.evaluation, glimpse_engine.fit, agents, baselines):
        where = Path(module.__file__ or "").resolve()
        if not where.is_relative_to(prefix):
            sys.exit(f"{module.__name__} was imported from {where}, not from the environment {prefix}")

    try:
        from glimpse_env.wrappers import SB3VecEnv  # noqa: F401
    except ImportError as error:
        if "pip install 'glimpse-mnist[sb3]'" not in str(error):
            raise
    else:
        sys.exit("stable-baselines3 came with the base install; it belongs to the sb3 extra")
    print(f"installed wheel OK: {len(ENV_SPECS)} environments played, packages under {prefix}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["wheel"] and len(sys.argv) == 3:
        check_wheel(sys.argv[2])
    elif sys.argv[1:] == ["installed"]:
        check_installed()
    else:
        sys.exit(__doc__)
