"""Which heavy libraries each entry point imports: reading a config needs neither torch nor the
OpenMM of a kind it does not use; the registry of system kinds imports no kind's module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "workflows").glob("*.toml")) + [
    ROOT / "workflows" / "alanine_dipeptide" / "alanine_dipeptide.toml"]


def _modules_after(statement: str, *modules: str) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after ``statement``."""
    code = f"import sys\n{statement}\nprint(sorted(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)}).stdout
    return ast.literal_eval(out.strip().splitlines()[-1])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parsing_does_not_import_torch(path):
    statement = f"import rave.campaign.config\nrave.campaign.config.load_config({str(path)!r})"
    assert _modules_after(statement, "torch") == []


def test_config_of_a_model_potential_does_not_load_the_other_kinds():
    statement = ("import rave.campaign.config\n"
                 "rave.campaign.config.load_config('workflows/three_state.toml')")
    assert _modules_after(statement, "torch", "rave.systems.ligand_cavity",
                          "rave.systems.openmm_files", "mdtraj") == []


def test_the_registry_imports_no_kind_and_no_openmm():
    statement = ("import rave.systems\n"
                 "from rave.systems import kind_names\n"
                 "assert 'openmm' in kind_names()")
    assert _modules_after(statement, "openmm", "torch", "rave.systems.model_potentials") == []


def test_vae_settings_name_the_same_activations_as_the_network():
    from rave.learn.vae import ACTIVATIONS
    from rave.learn.vae_config import ACTIVATION_NAMES

    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES


def test_rave_core_loads_only_the_registry_of_rave_systems():
    statement = ("import importlib, pkgutil, rave\n"
                 "for m in pkgutil.walk_packages([rave.__path__[0]], 'rave.'):\n"
                 "    importlib.import_module(m.name)\n"
                 "assert 'rave.analysis.report' in sys.modules")
    kinds = ("rave.systems.model_potentials", "rave.systems.mixed_slow_mode",
             "rave.systems.ligand_cavity", "rave.systems.openmm_files")
    assert _modules_after(statement, "rave.systems.registry", *kinds) == ["rave.systems.registry"]


#: where each heavy library may be imported in the library (rave/), by path prefix
_ALLOWED = {
    "torch": ("rave/learn/",),
    "openmm": ("rave/md/", "rave/analysis/export.py", "rave/units.py"),
    "openmm_opes": ("rave/md/",),
    "matplotlib": ("rave/analysis/plots.py",),
}


def _imported_libraries(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (at module level or in a function),
    leaving out imports under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and getattr(block.test, "id", None) == "TYPE_CHECKING"
               for node in ast.walk(block)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_each_heavy_library_is_imported_only_in_its_layer():
    """torch only in the learning part, OpenMM only in the MD layer, export and the unit
    boundary, matplotlib only in the plots (systems/ may use OpenMM: it builds Systems)."""
    offenders = []
    for path in sorted((ROOT / "rave").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for library in _imported_libraries(path) & set(_ALLOWED):
            if not rel.startswith(_ALLOWED[library]):
                offenders.append(f"{rel} imports {library}")
    assert offenders == []


def test_the_layer_check_sees_function_level_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n"
                      "def f():\n    import openmm.unit\n    from matplotlib import pyplot\n")
    assert _imported_libraries(module) == {"typing", "openmm", "matplotlib"}


def test_the_gas_constant_is_openmms():
    from openmm import unit

    from rave.units import GAS_CONSTANT_KJ_PER_MOL_K

    assert GAS_CONSTANT_KJ_PER_MOL_K == unit.MOLAR_GAS_CONSTANT_R.value_in_unit(
        unit.kilojoule_per_mole / unit.kelvin)
