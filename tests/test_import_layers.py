"""Which heavy libraries each entry point imports: reading a config needs neither torch nor the
OpenMM of a kind it does not use; the registry of system kinds imports no kind's module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import modules_after

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "workflows").glob("*.toml")) + [
    ROOT / "workflows" / "alanine_dipeptide" / "alanine_dipeptide.toml"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parsing_does_not_import_torch(path):
    statement = f"import rave.campaign.config\nrave.campaign.config.load_config({str(path)!r})"
    assert modules_after(statement, "torch") == []


def test_config_of_a_model_potential_does_not_load_the_other_kinds():
    statement = ("import rave.campaign.config\n"
                 "rave.campaign.config.load_config('workflows/three_state.toml')")
    assert modules_after(statement, "torch", "rave.systems.ligand_cavity",
                          "rave.systems.openmm_files", "mdtraj") == []


def test_the_registry_imports_no_kind_and_no_openmm():
    statement = ("import rave.systems\n"
                 "from rave.systems import kind_names\n"
                 "assert 'openmm' in kind_names()")
    assert modules_after(statement, "openmm", "torch", "rave.systems.model_potentials") == []


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
    assert modules_after(statement, "rave.systems.registry", *kinds) == ["rave.systems.registry"]


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


# ------------------------------------------------------------------------ one-way layers
#: the rooms of rave from the bottom up: a module may import its own room and the rooms of
#: lower layers, never a higher layer nor another room of its own layer. units and errors
#: import nothing of rave (stats converts a user's OpenMM Quantities through units); the
#: package's own __init__ holds the version and loads its public names on access; the
#: neutral pieces (the bias grid, atomic file writing) are shared by md, learn and campaign;
#: md (OpenMM) and learn (torch) never import each other; the systems build on md; the
#: campaign runs md, learn and the systems; the analysis reads campaigns; the CLI drives all.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("rave._lazy", "rave.units", "rave.errors"),
    ("rave",),
    ("rave.stats",),
    ("rave.bias_grid", "rave.files"),
    ("rave.md", "rave.learn"),
    ("rave.systems",),
    ("rave.campaign",),
    ("rave.analysis",),
    ("rave.cli",),
)
#: every room, with its layer (0 at the bottom)
_LAYER_OF = {room: rank for rank, rooms in enumerate(LAYERS) for room in rooms}


def _module_name(path: Path, root: Path = ROOT) -> str:
    """``rave/md/walker.py`` -> ``rave.md.walker``; ``systems/x.py`` -> ``rave.systems.x``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[0] == "systems":
        parts = ["rave", *parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _room(module: str) -> str | None:
    """The room of ``module`` (the longest room name it starts with), None outside rave."""
    rooms = [r for r in _LAYER_OF if module == r or module.startswith(r + ".")]
    return max(rooms, key=len) if rooms else None


def _rave_imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, module) of every rave module ``path`` imports, relative imports resolved, at
    module level or in a function; imports under ``if TYPE_CHECKING:`` (annotations only,
    never run) are left out."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and getattr(block.test, "id", None) == "TYPE_CHECKING"
               for node in ast.walk(block)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return [(line, module) for line, module in found if _room(module) is not None]


def _layer_offences(paths, root: Path = ROOT) -> list[str]:
    """One line per import of ``paths`` that climbs a layer or crosses to another room of its
    layer: the file and line, the module's room, the import and the rule it breaks."""
    offences = []
    for path in paths:
        here = _room(_module_name(path, root))
        for line, module in _rave_imports(path, root):
            there = _room(module)
            if there == here:
                continue
            rel = path.relative_to(root).as_posix()
            if _LAYER_OF[there] > _LAYER_OF[here]:
                offences.append(f"{rel}:{line} ({here}) imports {module}: {there} is a higher "
                                f"layer than {here}; only lower layers may be imported")
            elif _LAYER_OF[there] == _LAYER_OF[here]:
                offences.append(f"{rel}:{line} ({here}) imports {module}: {here} and {there} "
                                f"are rooms of one layer and do not import each other")
    return offences


def _library_files() -> list[Path]:
    return sorted((ROOT / "rave").rglob("*.py")) + sorted((ROOT / "systems").rglob("*.py"))


def test_every_import_goes_down_the_layers():
    assert _layer_offences(_library_files()) == []


def test_every_module_of_the_library_has_a_room():
    homeless = [p.relative_to(ROOT).as_posix() for p in _library_files()
                if _room(_module_name(p)) is None]
    assert homeless == []


def test_the_layer_check_names_the_module_the_import_and_the_rule(tmp_path):
    fake = tmp_path / "rave" / "md"
    fake.mkdir(parents=True)
    (fake / "walker.py").write_text(
        "from ..bias_grid import Bias\nfrom .features import f\n"
        "def train():\n    from ..learn.vae import fit_seeds\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..campaign import Campaign\n")
    (fake / "reader.py").write_text("import rave.analysis.result\n")
    assert _layer_offences([fake / "walker.py", fake / "reader.py"], tmp_path) == [
        "rave/md/walker.py:4 (rave.md) imports rave.learn.vae: rave.md and rave.learn are rooms "
        "of one layer and do not import each other",
        "rave/md/reader.py:1 (rave.md) imports rave.analysis.result: rave.analysis is a higher "
        "layer than rave.md; only lower layers may be imported",
    ]


def test_the_registry_knows_every_key_of_a_system_table():
    """The registry refuses a kind's option named like a [system] key without importing the
    campaign's config: its list of those keys is the config's."""
    import dataclasses

    from rave.campaign.config import SystemConfig
    from rave.systems.registry import SYSTEM_KEYS

    assert sorted(SYSTEM_KEYS) == sorted(f.name for f in dataclasses.fields(SystemConfig))


def test_kT_has_one_definition():
    import rave.systems.model_potentials as model_potentials
    from rave import units

    assert model_potentials.kT_kjmol is units.kT_kjmol


#: the most lines a module of rave/ holds: one concern per module
MAX_MODULE_LINES = 800


def test_no_module_of_rave_is_over_the_line_limit():
    sizes = {path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
             for path in sorted((ROOT / "rave").rglob("*.py"))}
    over = {path: n for path, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not over, (f"modules over {MAX_MODULE_LINES} lines (split them by concern): "
                      f"{over}")
