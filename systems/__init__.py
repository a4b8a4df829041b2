"""Systems for RAVE campaigns, installed as ``rave.systems`` (the repository's ``systems/``).

* the registry of ``[system] kind`` values (:mod:`rave.systems.registry`): :class:`SystemKind`,
  :func:`register_kind`, :func:`get_kind`, :func:`kind_names`;
* model potentials (:mod:`rave.systems.model_potentials`, :mod:`rave.systems.mixed_slow_mode`)
  with their exact free energies;
* the ligand-cavity builder (:mod:`rave.systems.ligand_cavity`);
* a user's own OpenMM files (:mod:`rave.systems.openmm_files`).

The registry is imported here; every other name is loaded on first use, so
``import rave.systems`` does not import OpenMM. (``rave.systems.mixed_slow_mode`` is the
module; its factory is ``rave.systems.mixed_slow_mode.mixed_slow_mode``.)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .registry import (
    SimulationSystem,
    SystemKind,
    UnknownSystemKind,
    all_kinds,
    get_kind,
    kind_names,
    register_kind,
)

if TYPE_CHECKING:  # pragma: no cover (for type checkers and IDEs; loaded lazily below)
    from .ligand_cavity import LigandCavitySystem, build_ligand_cavity, prepare_ligand_cavity
    from .mixed_slow_mode import MixedSlowModePotential
    from .model_potentials import (
        MODEL_KINDS,
        ModelPotential,
        ModelSystem,
        from_expression,
        lepton_to_numpy,
        make_model_potential,
        minimax_path_energy,
        rotated_double_well,
        three_state,
    )

#: public name -> module of this package that defines it (imported on first access)
_LAZY = {
    "LigandCavitySystem": "ligand_cavity",
    "build_ligand_cavity": "ligand_cavity",
    "prepare_ligand_cavity": "ligand_cavity",
    "MixedSlowModePotential": "mixed_slow_mode",
    "MODEL_KINDS": "model_potentials",
    "ModelPotential": "model_potentials",
    "ModelSystem": "model_potentials",
    "from_expression": "model_potentials",
    "lepton_to_numpy": "model_potentials",
    "make_model_potential": "model_potentials",
    "minimax_path_energy": "model_potentials",
    "rotated_double_well": "model_potentials",
    "three_state": "model_potentials",
}

__all__ = [
    "SimulationSystem",
    "SystemKind",
    "UnknownSystemKind",
    "all_kinds",
    "get_kind",
    "kind_names",
    "register_kind",
    "LigandCavitySystem",
    "build_ligand_cavity",
    "prepare_ligand_cavity",
    "MixedSlowModePotential",
    "MODEL_KINDS",
    "ModelPotential",
    "ModelSystem",
    "from_expression",
    "lepton_to_numpy",
    "make_model_potential",
    "minimax_path_energy",
    "rotated_double_well",
    "three_state",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
