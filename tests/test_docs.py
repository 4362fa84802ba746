"""The README and the documentation site (docs/, mkdocs.yml): links, commands, generated pages."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

from glimpse_env.registration import ENV_SPECS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
#: the two commands of the README's Quick start: what CI and users run
COMMANDS = (
    "python3 -m venv .venv && . .venv/bin/activate && "
    'pip install -e ".[dev]" && python -m agents.ram_reinforce',
    "python -m pytest -q",
)
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)
_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.M)


def load_gen_pages():
    spec = importlib.util.spec_from_file_location("gen_pages", DOCS / "gen_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines the functions; generates nothing outside mkdocs
    return module


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def links(text: str) -> list[str]:
    """The targets of the markdown links and images of ``text``, outside code."""
    return _LINK.findall(_CODE.sub("``", _FENCE.sub("", text)))


def slug(heading: str) -> str:
    """The anchor of a heading, as GitHub and mkdocs' toc make it (for plain ASCII headings)."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    return {slug(heading) for heading in _HEADING.findall(_FENCE.sub("", path.read_text()))}


def test_readme_is_a_front_door_of_at_most_200_lines():
    assert len(README.read_text().splitlines()) <= 200


def test_readme_keeps_the_two_commands_verbatim():
    text = README.read_text()
    quick_start = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    for command in COMMANDS:
        assert f"\n{command}\n" in quick_start, command


def test_every_relative_link_points_to_an_existing_file_and_heading():
    generated = {DOCS / path for path in load_gen_pages().planned_files()}
    checked = 0
    for page in markdown_files():
        for target in links(page.read_text()):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL (none is fetched) or an anchor of the same page
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve()
            where = f"{page.relative_to(ROOT)} -> {target}"
            assert resolved.is_file() or resolved in generated, where
            assert page == README or resolved.is_relative_to(DOCS), f"{where}: outside docs/"
            if anchor and resolved.is_file() and resolved.suffix == ".md":
                assert anchor in anchors(resolved), f"{where}: no such heading"
            checked += 1
    assert checked > 50


def test_the_readme_links_into_every_docs_page():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in links(README.read_text())}
    for page in sorted(DOCS.rglob("*.md")):
        assert page.resolve() in linked, page.relative_to(ROOT)


def test_every_environment_has_a_committed_small_picture():
    for spec in ENV_SPECS:
        picture = DOCS / "img" / f"{spec.env_id}.png"
        assert picture.is_file(), picture
        assert picture.stat().st_size < 100_000, picture


def test_environment_pages_come_from_the_registration_and_the_docstring():
    gen = load_gen_pages()
    board = gen.load_benchmark("leaderboard")
    baseline_results = gen.load_benchmark("baseline_results")
    for spec in ENV_SPECS:
        page = gen.env_page(spec.env_id, board, baseline_results)
        assert page.startswith(f"# `{spec.env_id}`\n")
        for name, value in gym.spec(spec.env_id).kwargs.items():
            assert f"| `{name}` | `{value!r}` | registered |" in page, (spec.env_id, name)
        assert f"](../img/{spec.env_id}.png)" in page
        for section in ("Description", "Action Space", "Observation Space", "Rewards", "Episode End"):
            assert f"\n### {section}\n" in page
        assert ":class:" not in page and "``" not in page.replace("```", "")
    # no RAM run is kept for the 100x100 canvases yet
    assert "| RAM | not yet run |" in gen.env_page("GlimpseMNIST-Cluttered100-v0", board, baseline_results)


def test_docstring_markdown_turns_rest_into_markdown():
    gen = load_gen_pages()
    doc = """Summary.

    ## Section

    See :class:`~glimpse_env.vector.GlimpseVectorEnv` and ``x = 1``::

        envs = make()

    ```python
    keep = ``this``
    ```
    """
    text = gen.docstring_markdown(doc, shift=1)
    assert "### Section" in text
    assert "See `GlimpseVectorEnv` and `x = 1`:" in text
    assert "```python\nenvs = make()\n```" in text
    assert "keep = ``this``" in text  # code is left alone


def test_the_results_page_gets_the_leaderboard():
    gen = load_gen_pages()
    board = gen.load_benchmark("leaderboard")
    template = (DOCS / "results" / "index.md").read_text()
    page = gen.leaderboard_page(template, board)
    assert gen.LEADERBOARD_MARKER not in page
    for rows in board.leaderboard(gen.RESULTS).values():
        for row in rows:
            assert f"| {row['agent']} | {row['test accuracy (95% CI)']} |" in page


def test_the_results_pages_get_their_runs_tables():
    """docs/results/{ram,baselines,rppo}.md hold a marker and a note that the table is on the
    site; the build puts the table of benchmarks/results_tables.py in place of the marker."""
    gen = load_gen_pages()
    tables = gen.load_benchmark("results_tables")
    for name, path in gen.RUNS_PAGES.items():
        template = (DOCS / path).read_text()
        assert f"{gen.RUNS_MARKER}{name} -->\n" in template, path
        assert "the table is on the documentation site" in template.replace("\n", " "), path
        page = gen.runs_table_page(template, tables)
        assert gen.RUNS_MARKER not in page
        assert tables.TABLES[name](gen.RESULTS) in page


@pytest.mark.slow
def test_the_site_builds_in_strict_mode(tmp_path):
    pytest.importorskip("mkdocs")  # installed by the dev and docs extras, as in CI
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    for spec in ENV_SPECS:
        page = (site / "environments" / spec.env_id / "index.html").read_text()
        assert "Settings" in page and f"{spec.env_id}.png" in page
    assert "GlimpseVectorEnv" in (site / "api" / "index.html").read_text()
    assert (site / "img" / "results" / "ram" / "main-job" / "glimpses.png").is_file()


def test_the_speed_page_holds_its_measurements():
    """docs/speed.md's load, second-core and trainer tables are those its JSON prints."""
    spec = importlib.util.spec_from_file_location("speed_tables", ROOT / "benchmarks" / "speed_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = (DOCS / "speed.md").read_text()
    for table in (
        module.env_load(module.DEFAULT),
        module.second_core(module.DEFAULT),
        module.trainers(module.DEFAULT),
    ):
        assert table in page
    one, two = module.lowest_ratios(module.DEFAULT)
    assert f"at least {one:.2f} of its quiet speed, with two at\nleast {two:.2f}" in page
    assert one >= 0.7 and two >= 0.4  # the targets of the speed issue
