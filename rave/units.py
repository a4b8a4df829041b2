"""The one definition of kT: units inside rave are kJ/mol, nm, ps, K."""

from __future__ import annotations

from openmm import unit

#: Molar gas constant in kJ/(mol K), taken from OpenMM so every module agrees with it.
GAS_CONSTANT_KJ_PER_MOL_K = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(
    unit.kilojoule_per_mole / unit.kelvin
)


def kT_kjmol(temperature_K) -> float:
    """Thermal energy R T in kJ/mol of a temperature in K (a float or an OpenMM Quantity)."""
    if unit.is_quantity(temperature_K):
        temperature_K = temperature_K.value_in_unit(unit.kelvin)
    return GAS_CONSTANT_KJ_PER_MOL_K * float(temperature_K)
