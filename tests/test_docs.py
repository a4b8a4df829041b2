"""The documentation builds with warnings as errors, and its generated pages say what the code does.

``sphinx-build -W --keep-going -b html docs <tmp>`` runs once for the module (about 15 s on two
idle cores, 30 s on a busy machine); a warning fails the test with Sphinx's output. The
configuration reference is generated from the config dataclasses by ``docs/_ext``: every key of
every section must appear in the built page, with its default.
"""

from __future__ import annotations

import dataclasses
import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
#: the README is one page: at most this many lines
README_MAX_LINES = 250
#: seconds the build may take before the test gives up (the build takes 15-30 s on 2 cores)
BUILD_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def built_html(tmp_path_factory) -> Path:
    """The HTML built from docs/ with warnings as errors."""
    try:
        import myst_parser  # noqa: F401
        import numpydoc  # noqa: F401
        import pydata_sphinx_theme  # noqa: F401
        import sphinx  # noqa: F401
    except ImportError as error:
        pytest.fail(f"the documentation tools are missing ({error}); install them with "
                    f"pip install -e '.[docs]' (workflows/setup.sh does)")
    out = tmp_path_factory.mktemp("docs_html")
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
               str(DOCS), str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            timeout=BUILD_TIMEOUT_S)
    if result.returncode != 0:
        pytest.fail(f"sphinx-build failed (exit {result.returncode}):\n{result.stdout}\n"
                    f"{result.stderr}", pytrace=False)
    return out


def _text(fragment: str, sep: str = " ") -> str:
    """The visible text of HTML, tags replaced by ``sep``, entities decoded, spaces squeezed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", sep, fragment)).split())


def _section_rows(page: str, section_id: str) -> dict[str, list[str]]:
    """The rows of the tables of one section of a built page: first cell -> all cells."""
    match = re.search(rf'<section id="{re.escape(section_id)}">(.*?)(?=<section id=|</article>)',
                      page, flags=re.S)
    assert match, f"no section {section_id!r} in the page"
    rows = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", match.group(1), flags=re.S):
        cells = [_text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        if cells:
            rows[cells[0]] = cells
    return rows


def _as_toml(value: object) -> str:
    """How the reference shows a default: TOML's spelling, "not set" for None."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(map(str, value)) + "]"
    return repr(value)


def test_docs_build_without_warnings(built_html):
    for page in ("index", "getting_started", "tutorial_openmm_script", "theory", "api",
                 "benchmarks", "testing", "user_guide/configuration", "user_guide/systems",
                 "user_guide/walkers", "user_guide/resume", "user_guide/analysis",
                 "user_guide/export", "api/md", "api/learn", "api/stats", "api/campaign",
                 "api/analysis", "api/systems"):
        assert (built_html / f"{page}.html").is_file(), page


def test_config_reference_lists_every_key_with_its_default(built_html):
    from rave.campaign import config
    from rave.learn.vae_config import VAEConfig

    page = (built_html / "user_guide" / "configuration.html").read_text(encoding="utf-8")
    sections = {name: [cls] for name, cls in config._SECTIONS.items()}
    sections["vae"] = [config.ModelConfig, VAEConfig]
    for name, classes in sections.items():
        rows = _section_rows(page, name)
        keys = [field.name for cls in classes for field in dataclasses.fields(cls)]
        assert sorted(rows) == sorted(keys), (
            f"[{name}]: the reference lists {sorted(rows)}, the code has {sorted(keys)}")
        for cls in classes:
            for field in dataclasses.fields(cls):
                _, type_text, default, meaning = rows[field.name]
                if field.default is not dataclasses.MISSING:
                    expected = _as_toml(field.default)
                elif field.default_factory is not dataclasses.MISSING:
                    expected = _as_toml(field.default_factory())
                else:
                    expected = "required"
                assert default == expected, (name, field.name, default, expected)
                assert type_text and meaning, f"[{name}] {field.name} has no type or meaning"


def test_system_kinds_table_lists_the_registry(built_html):
    from rave.systems.registry import kind_names

    text = _text((built_html / "user_guide" / "systems.html").read_text(encoding="utf-8"))
    for name in kind_names():
        assert name in text, name


def test_tutorial_includes_the_example_script(built_html):
    text = _text((built_html / "tutorial_openmm_script.html").read_text(encoding="utf-8"), sep="")
    assert "def run_example(" in text
    assert "bias_force.updateBias(simulation.context, bias)" in text
    assert "sampler.step(simulation, budget)" in text  # the RAVESampler script


def test_readme_is_one_page_and_links_to_pages_that_exist():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    links = re.findall(r"\]\((docs/[^)#]+)", "\n".join(lines))
    assert {"docs/user_guide/configuration.md", "docs/tutorial_openmm_script.md",
            "docs/benchmarks.md"} <= set(links)
    for link in links:
        assert (ROOT / link).is_file(), f"README links to {link}, which does not exist"
