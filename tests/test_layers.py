"""The house's layers point only down: glimpse_env <- glimpse_engine <- agents, baselines.

Every import statement of every module of a package (at any depth, lazy imports inside
functions included) is read from the source, so an arrow that runs up or sideways fails
here even if no test happens to execute it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: what each package may import of the project's own packages
ALLOWED = {
    "glimpse_env": set(),
    "glimpse_engine": {"glimpse_env"},
    "agents": {"glimpse_env", "glimpse_engine"},
    "baselines": {"glimpse_env", "glimpse_engine"},
}


def imported_packages(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """The project's packages that each module of ``package`` (under ``root``) imports, by module path."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(root))] = names & set(ALLOWED)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = {
        module: sorted(names - ALLOWED[package] - {package})
        for module, names in imported_packages(package).items()
        if names - ALLOWED[package] - {package}
    }
    assert not wrong, f"{package} imports from layers it may not: {wrong}"


def test_the_scan_sees_lazy_and_plain_imports(tmp_path: Path) -> None:
    """An import inside a function counts as much as one at the top of a module."""
    (tmp_path / "glimpse_env" / "sub").mkdir(parents=True)
    (tmp_path / "glimpse_env" / "sub" / "lazy.py").write_text(
        "def f():\n    from agents.evaluate import RAMPolicy\n"
    )
    (tmp_path / "glimpse_env" / "plain.py").write_text("import baselines.models as m\nimport numpy\n")
    assert imported_packages("glimpse_env", tmp_path) == {
        "glimpse_env/plain.py": {"baselines"},
        "glimpse_env/sub/lazy.py": {"agents"},
    }
