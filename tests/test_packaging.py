"""What pyproject.toml installs: every package of the checkout and nothing else, rave.systems
from the systems/ folder, and dependency ranges that keep an installed torch."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _packages_on_disk() -> set[str]:
    """Every folder with an __init__.py under rave/ (as a dotted name), and rave.systems."""
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "rave").rglob("__init__.py")}
    assert (ROOT / "systems" / "__init__.py").is_file()
    return found | {"rave.systems"}


def test_every_package_is_listed_and_every_listed_package_exists():
    setup = PYPROJECT["tool"]["setuptools"]
    listed = set(setup["packages"])
    assert listed == _packages_on_disk(), (
        f"pyproject.toml [tool.setuptools] packages must list every package under rave/ and "
        f"rave.systems. Missing: {sorted(_packages_on_disk() - listed)}; not a package: "
        f"{sorted(listed - _packages_on_disk())}")


def test_the_systems_folder_installs_as_rave_systems_and_nothing_else():
    setup = PYPROJECT["tool"]["setuptools"]
    assert setup["package-dir"] == {"": ".", "rave.systems": "systems"}
    assert not any(name == "systems" or name.startswith("systems.") for name in setup["packages"])


def test_torch_is_a_range_that_an_installed_torch_satisfies():
    """A pin would make ``pip install .`` replace a user's torch (a CUDA build, another
    version); the range admits the 2.13.0 CPU build that workflows/setup.sh installs first."""
    torch = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]
             if Requirement(r).name == "torch"]
    assert len(torch) == 1
    assert not any(spec.operator in ("==", "===") for spec in torch[0].specifier)
    assert torch[0].specifier.contains("2.13.0+cpu") and torch[0].specifier.contains("2.14.1")
    assert '"torch==2.13.0"' in (ROOT / "workflows" / "setup.sh").read_text()
