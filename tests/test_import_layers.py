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
    statement = f"import rave.config\nrave.config.load_config({str(path)!r})"
    assert _modules_after(statement, "torch") == []


def test_config_of_a_model_potential_does_not_load_the_other_kinds():
    statement = ("import rave.config\n"
                 "rave.config.load_config('workflows/three_state.toml')")
    assert _modules_after(statement, "torch", "rave.systems.ligand_cavity",
                          "rave.systems.openmm_files", "mdtraj") == []


def test_the_registry_imports_no_kind_and_no_openmm():
    statement = ("import rave.systems\n"
                 "from rave.systems import kind_names\n"
                 "assert 'openmm' in kind_names()")
    assert _modules_after(statement, "openmm", "torch", "rave.systems.model_potentials") == []


def test_vae_settings_name_the_same_activations_as_the_network():
    from rave.vae import ACTIVATIONS
    from rave.vae_config import ACTIVATION_NAMES

    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES


def test_rave_core_loads_only_the_registry_of_rave_systems():
    statement = ("import importlib, pkgutil, rave\n"
                 "for m in pkgutil.iter_modules([rave.__path__[0]], 'rave.'):\n"
                 "    importlib.import_module(m.name)")
    kinds = ("rave.systems.model_potentials", "rave.systems.mixed_slow_mode",
             "rave.systems.ligand_cavity", "rave.systems.openmm_files")
    assert _modules_after(statement, "rave.systems.registry", *kinds) == ["rave.systems.registry"]
