"""Systems for RAVE campaigns: model potentials and ligand-cavity builders."""

from systems.ligand_cavity import (
    LigandCavitySystem,
    build_ligand_cavity,
    prepare_ligand_cavity,
)
from systems.mixed_slow_mode import MixedSlowModePotential, mixed_slow_mode
from systems.model_potentials import (
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

__all__ = [
    "LigandCavitySystem",
    "build_ligand_cavity",
    "prepare_ligand_cavity",
    "MODEL_KINDS",
    "MixedSlowModePotential",
    "mixed_slow_mode",
    "ModelPotential",
    "ModelSystem",
    "from_expression",
    "lepton_to_numpy",
    "make_model_potential",
    "minimax_path_energy",
    "rotated_double_well",
    "three_state",
]
