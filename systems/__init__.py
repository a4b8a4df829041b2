"""Systems for RAVE campaigns: model potentials and (later) ligand-cavity builders."""

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
