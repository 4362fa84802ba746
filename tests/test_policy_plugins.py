"""``--policy`` of ``python -m glimpse_env.evaluate``: the plug-ins of the entry-point group
``glimpse_env.policies`` (``ram`` and ``sb3`` among them), a factory of one's own as
``MODULE.PATH:FACTORY[:ARG]``, and the one-line errors of a spec that names nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from glimpse_env import evaluate
from glimpse_env.evaluation import RandomPolicy, task_config

ROOT = Path(__file__).resolve().parents[1]
MNIST = "GlimpseMNIST-v0"
#: what ``import glimpse_env.evaluate`` must not load: the layers above glimpse_env and the extras
ABOVE = {"agents", "baselines", "glimpse_engine", "stable_baselines3", "sb3_contrib", "tensorboard"}


# ----------------------------------------------------------------------------- a factory of one's own
class ConstantPolicy:
    """Always looks at the centre and answers ``label``."""

    def __init__(self, label: int, seed: int | None) -> None:
        self.label = label
        self.seed = seed

    def __call__(self, observation: Any, state: Any, episode_start: np.ndarray) -> tuple[Any, Any]:
        n = observation["location"].shape[0]
        return {"location": np.zeros((n, 2), np.float32), "label": np.full(n, self.label, np.int64)}, None


CALLS: list[dict[str, Any]] = []


def make_policy(
    arg: str, env_id: str, *, device: torch.device, sample: bool | None, seed: int | None
) -> ConstantPolicy:
    """A :class:`glimpse_env.evaluate.PolicyFactory`: ``arg`` starts with the label (default 0)."""
    CALLS.append({"arg": arg, "env_id": env_id, "device": device, "sample": sample, "seed": seed})
    return ConstantPolicy(int(arg.split(":")[0] or 0), seed)


@pytest.fixture
def user_module(monkeypatch: pytest.MonkeyPatch) -> str:
    """This file's factories as the module ``user_policies.constant`` (the package too)."""
    package = types.ModuleType("user_policies")
    package.__path__ = []
    module = types.ModuleType("user_policies.constant")
    module.make_policy = make_policy  # type: ignore[attr-defined]
    module.ConstantPolicy = ConstantPolicy  # type: ignore[attr-defined]
    module.NOT_CALLABLE = 3  # type: ignore[attr-defined]
    module.no_policy = lambda arg, env_id, *, device, sample, seed: "a string"  # type: ignore[attr-defined]
    module.wrong_signature = lambda arg: RandomPolicy(10)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "user_policies", package)
    monkeypatch.setitem(sys.modules, "user_policies.constant", module)
    CALLS.clear()
    return "user_policies.constant"


def test_a_factory_of_ones_own_is_module_path_colon_factory_colon_arg(user_module: str) -> None:
    policy = evaluate.load_policy(f"{user_module}:make_policy:7", MNIST, seed=5, sample=True)
    assert isinstance(policy, ConstantPolicy) and policy.label == 7
    assert CALLS == [{"arg": "7", "env_id": MNIST, "device": torch.device("cpu"), "sample": True, "seed": 5}]
    policy = evaluate.load_policy(f"{user_module}:make_policy", MNIST)  # no ARG: ""
    assert CALLS[-1]["arg"] == "" and CALLS[-1]["sample"] is None and CALLS[-1]["seed"] is None
    assert isinstance(policy, ConstantPolicy) and policy.label == 0
    # everything after the second colon is the argument, colons included
    evaluate.load_policy(f"{user_module}:make_policy:3:extra", MNIST)
    assert CALLS[-1]["arg"] == "3:extra"


def test_the_command_line_plays_a_factory_of_ones_own(user_module: str) -> None:
    flags = ["--env", MNIST, "--episodes", "50", "--num-envs", "25", "--threads", "1"]
    result = evaluate.main([*flags, "--policy", f"{user_module}:make_policy:4"])
    assert result.n == 50 and result.policy == f"{user_module}:make_policy:4"
    assert result.per_class[4] == 1.0 and sum(result.per_class) == 1.0  # it always answers 4
    assert CALLS[-1]["seed"] is None  # the policy's seed is None: the environment's is 0


def test_a_factory_of_ones_own_from_a_real_module_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package on the path, as a user's folder would be: nothing to install."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "__init__.py").write_text("")
    (tmp_path / "mine" / "policies.py").write_text(
        textwrap.dedent(
            """
            from glimpse_env.evaluation import RandomPolicy, task_config

            def make_policy(arg, env_id, *, device, sample, seed):
                return RandomPolicy(task_config(env_id).num_classes, seed=int(arg))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("mine", "mine.policies"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    policy = evaluate.load_policy("mine.policies:make_policy:3", MNIST)
    assert isinstance(policy, RandomPolicy) and policy.num_classes == task_config(MNIST).num_classes
    assert "mine.policies" in sys.modules
    monkeypatch.delitem(sys.modules, "mine.policies")
    monkeypatch.delitem(sys.modules, "mine")


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (
            ":make_polcy",
            r"user_policies\.constant has no attribute 'make_polcy'; did you mean 'make_policy'\?",
        ),
        (":nothing_like_it", "has no attribute 'nothing_like_it'; FACTORY must name a callable"),
        (":ConstantPolicy.nope", r"user_policies\.constant\.ConstantPolicy has no attribute 'nope'"),
        (
            ":NOT_CALLABLE",
            r"user_policies\.constant:NOT_CALLABLE is a int, not callable; it must be a factory",
        ),
        (":no_policy", "returned a str, not a policy"),
        (":wrong_signature", r"cannot be called as factory\(arg, env_id, \*, device, sample, seed\)"),
        (":", "a factory of your own is MODULE.PATH:FACTORY"),
        (":bad-name", "'bad-name' is not the name of a factory in user_policies.constant"),
    ],
)
def test_a_bad_factory_of_ones_own_is_one_line(user_module: str, tail: str, expected: str) -> None:
    with pytest.raises(evaluate.PolicySpecError, match=expected) as error:
        evaluate.load_policy(user_module + tail, MNIST)
    assert "\n" not in str(error.value)


def test_a_module_that_cannot_be_imported_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(evaluate.PolicySpecError, match=r"there is no module 'nowhere\.policies'.*PYTHONPATH"):
        evaluate.load_policy("nowhere.policies:make_policy", MNIST)
    (tmp_path / "broken_policies").mkdir()
    (tmp_path / "broken_policies" / "__init__.py").write_text("")
    (tmp_path / "broken_policies" / "needs.py").write_text("import not_installed_anywhere\n")
    (tmp_path / "broken_policies" / "fails.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        evaluate.PolicySpecError, match=r"importing broken_policies\.needs failed.*not_installed"
    ):
        evaluate.load_policy("broken_policies.needs:f", MNIST)
    with pytest.raises(
        evaluate.PolicySpecError, match=r"importing broken_policies\.fails failed \(RuntimeError: boom"
    ):
        evaluate.load_policy("broken_policies.fails:f", MNIST)
    for name in [name for name in sys.modules if name.startswith("broken_policies")]:
        monkeypatch.delitem(sys.modules, name)


def test_the_documented_example_plays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/evaluation.md's ``mypkg/policies.py``, in a folder without ``__init__.py``, played by
    its documented command."""
    text = (ROOT / "docs" / "evaluation.md").read_text()
    after = text.split("A policy of your own, `mypkg/policies.py`:", 1)[1]
    code = after.split("```python\n", 1)[1].split("```", 1)[0]
    command = after.split("```bash\n", 1)[1].split("```", 1)[0].split()
    assert command[:3] == ["python", "-m", "glimpse_env.evaluate"]
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "policies.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    result = evaluate.main([*command[3:], "--episodes", "30", "--num-envs", "30"])
    assert result.per_class[3] == 1.0 and sum(result.per_class) == 1.0
    with pytest.raises(ValueError, match="the label must be a class of GlimpseMNIST-v0, got 10"):
        evaluate.load_policy("mypkg.policies:make_policy:10", MNIST)
    for name in ("mypkg", "mypkg.policies"):
        monkeypatch.delitem(sys.modules, name)


def test_an_undotted_module_of_ones_own_is_told_to_go_in_a_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare name before the colon is a plug-in's: a top-level module is not imported, but named."""
    (tmp_path / "toplevel_policy.py").write_text("def make(arg, env_id, *, device, sample, seed): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(evaluate.PolicySpecError) as error:
        evaluate.load_policy("toplevel_policy:make", MNIST)
    message = str(error.value)
    assert "'toplevel_policy' is not a registered policy plug-in" in message
    assert (
        "put toplevel_policy in a package" in message and "--policy mypkg.toplevel_policy:FACTORY" in message
    )
    assert "toplevel_policy" not in sys.modules


# ----------------------------------------------------------------------------- registered plug-ins
def test_ram_and_sb3_are_registered_plugins() -> None:
    plugins = evaluate.policy_plugins()
    assert plugins["ram"] == "agents.plugin:ram_policy"
    assert plugins["sb3"] == "glimpse_env.evaluate:sb3_policy"
    assert list(plugins) == sorted(plugins)


def test_an_unknown_plugin_name_is_one_line_listing_the_registered_ones() -> None:
    with pytest.raises(evaluate.PolicySpecError) as error:
        evaluate.load_policy("greedy:x", MNIST)
    message = str(error.value)
    assert "\n" not in message
    assert "'greedy' is not a registered policy plug-in" in message
    assert "glimpse_env.policies: ram, sb3" in message and "MODULE.PATH:FACTORY[:ARG]" in message
    with pytest.raises(evaluate.PolicySpecError, match="is not one of random"):
        evaluate.load_policy("random:3", MNIST)
    with pytest.raises(evaluate.PolicySpecError, match="is not one of random"):
        evaluate.load_policy(":x", MNIST)
    with pytest.raises(evaluate.PolicySpecError, match="ram takes a checkpoint"):
        evaluate.load_policy("ram", MNIST)
    with pytest.raises(evaluate.PolicySpecError, match="sb3 takes ALGO:PATH"):
        evaluate.load_policy("sb3:PPO", MNIST)


def test_the_help_lists_the_registered_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        evaluate.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(registered: ram, sb3)" in out and "MODULE.PATH:FACTORY[:ARG]" in out


def _dist_info(root: Path, name: str, entries: str) -> None:
    """A distribution ``name`` installed under ``root`` with ``entries`` as its entry points."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entries))


def test_a_plugin_another_distribution_registers_plays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "third_party_policies.py").write_text(
        textwrap.dedent(
            """
            from glimpse_env.evaluation import RandomPolicy

            def make(arg, env_id, *, device, sample, seed):
                policy = RandomPolicy(10, seed=seed)
                policy.seed = 11
                policy.mc_samples = 2
                policy.arg = arg
                return policy
            """
        )
    )
    _dist_info(
        tmp_path,
        "third_party_policies",
        """
        [glimpse_env.policies]
        chance = third_party_policies:make
        broken = third_party_policies_gone:make
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "third_party_policies", raising=False)
    assert evaluate.policy_plugins()["chance"] == "third_party_policies:make"
    policy = evaluate.load_policy("chance:a:b", MNIST)
    assert isinstance(policy, RandomPolicy) and policy.arg == "a:b"  # type: ignore[attr-defined]
    result = evaluate.main(["--env", MNIST, "--policy", "chance:x", "--episodes", "20", "--num-envs", "10"])
    assert result.mc_samples == 2  # the policy's own default of --mc-samples
    with pytest.raises(evaluate.PolicySpecError, match=r"the policy plug-in 'broken' .*cannot be loaded"):
        evaluate.load_policy("broken:x", MNIST)
    with pytest.raises(evaluate.PolicySpecError, match=r"broken, chance, ram, sb3\)"):
        evaluate.load_policy("nope:x", MNIST)
    monkeypatch.delitem(sys.modules, "third_party_policies")


# ----------------------------------------------------------------------------- the layers
def test_importing_the_evaluation_program_loads_no_layer_above_glimpse_env() -> None:
    code = (
        "import glimpse_env.evaluate, sys; "
        "glimpse_env.evaluate.policy_plugins(); "
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(ABOVE)!r}); "
        "assert not loaded, loaded"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
