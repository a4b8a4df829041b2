"""The one definition of kT, the unit of chi, and the boundary for OpenMM Quantities: units
inside rave are kJ/mol, nm, ps, K; a Quantity given by a user is converted here (OpenMM is
imported only when one is)."""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Molar gas constant in kJ/(mol K): CODATA 2018 (exact, N_A k_B), the value OpenMM uses
#: (``openmm.unit.MOLAR_GAS_CONSTANT_R``; equal to the last digit, tested).
GAS_CONSTANT_KJ_PER_MOL_K = 0.00831446261815324


def is_quantity(value: object) -> bool:
    """Whether ``value`` is an OpenMM ``Quantity`` (checked without importing OpenMM)."""
    return hasattr(value, "value_in_unit") and hasattr(value, "unit")


def in_unit(value, unit_name: str) -> float:
    """``value`` as a float in ``openmm.unit.<unit_name>`` (e.g. ``"kelvin"``,
    ``"kilojoule_per_mole"``) when it is a Quantity, else ``float(value)``.

    Raises TypeError: when a Quantity has the wrong dimension; the message names the unit expected.
    """
    if is_quantity(value):
        from openmm import unit

        try:
            return float(value.value_in_unit(getattr(unit, unit_name)))
        except TypeError as error:
            raise TypeError(f"expected a quantity in {unit_name.replace('_', ' ')}s (or a plain "
                            f"number in those units). You supplied {value!r}") from error
    return float(value)


def kT_kjmol(temperature_K) -> float:
    """Thermal energy R T in kJ/mol of a temperature in K (a float or an OpenMM Quantity).

    Raises
    ------
    TypeError
        When ``temperature_K`` is neither a number nor a Quantity of temperature.
    ValueError
        When the temperature is not finite and > 0 K.
    """
    try:
        kelvin = in_unit(temperature_K, "kelvin")
    except (TypeError, ValueError) as error:
        raise TypeError(f"temperature_K must be a temperature in K (a number, or an OpenMM "
                        f"Quantity of temperature). You supplied {temperature_K!r}") from error
    if not (math.isfinite(kelvin) and kelvin > 0):
        raise ValueError(f"temperature_K must be a finite number > 0 (a temperature in K). You "
                         f"supplied {temperature_K!r}")
    return GAS_CONSTANT_KJ_PER_MOL_K * kelvin


def chi_unit(units: Sequence[str]) -> str:
    """The unit of chi = sum_i c_i s_i from its order parameters' units.

    Parameters
    ----------
    units : sequence of str
        Each order parameter's unit (a feature's ``unit``: ``"nm"``, ``"rad"``, ``"1"`` for a
        pure number).

    Returns
    -------
    str
        The common unit when all share one (``"dimensionless"`` for pure numbers), else
        ``"mixed units"`` (chi then adds numbers of different units, each in its MD unit).
    """
    names = ["dimensionless" if u in ("1", "") else str(u) for u in units]
    if not names:
        raise ValueError("units must name at least one order parameter's unit. You supplied []")
    return names[0] if len(set(names)) == 1 else "mixed units"
