"""Any OpenMM force as an order parameter: :class:`ForceFeature` (a ``cvpack`` collective
variable, a ``CustomCentroidBondForce``, a ``CustomCVForce`` of one's own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import openmm
from openmm import unit as u

from .base import (
    Feature,
    _fail,
    _validate_group,
    _validate_name,
)


def _force_unit(force: Any) -> str:
    """The unit a force states for its energy-as-CV (a cvpack CV's ``getUnit()``), else "1"."""
    get_unit = getattr(force, "getUnit", None)
    if get_unit is None:
        return "1"
    stated = get_unit()
    for name, known in (("nm", u.nanometer), ("rad", u.radian), ("1", u.dimensionless)):
        if stated == known:
            return name
    return str(stated.get_symbol()) or "1"


class ForceFeature(Feature):
    """Any OpenMM force whose potential energy (kJ/mol) is the order parameter (e.g. a cvpack CV).

    ``force`` is an ``openmm.Force`` or its XML (copied, stored as XML so the feature round-trips
    through :meth:`to_dict`); ``particles`` the indices it uses; ``unit`` defaults to the force's
    own (a cvpack CV's ``getUnit()``) else "1"; ``name`` to ``force.getName()``. Raises ValueError
    for unreadable XML or invalid arguments. The numpy face evaluates a copy on the Reference
    platform frame by frame (slow); with ``box_vectors=None`` a periodic force sees OpenMM's default
    box. No PLUMED action, never part of the bias's ``CustomCompoundBondForce``.
    """

    kind = "openmm_force"

    def __init__(
        self,
        force: openmm.Force | str,
        particles: Sequence[int] | int,
        unit: str | None = None,
        name: str | None = None,
    ) -> None:
        if unit is None:
            unit = _force_unit(force)
        if isinstance(force, str):
            try:
                force = openmm.XmlSerializer.deserialize(force)
            except Exception as error:  # OpenMM raises a bare Exception on bad XML
                raise ValueError(f"force must be an openmm.Force or its XML. The XML given "
                                 f"cannot be read: {error}") from error
        if not isinstance(force, openmm.Force):
            _fail("force", "an openmm.Force or its XML", force)
        self.xml = openmm.XmlSerializer.serialize(force)
        self._particles = tuple(sorted(_validate_group(particles, "particles")))
        if not isinstance(unit, str) or not unit.strip():
            _fail("unit", "a non-empty string such as 'nm', 'rad' or '1'", unit)
        self.unit = unit
        self.name = _validate_name(name, force.getName())

    @property
    def particles(self) -> tuple[int, ...]:
        """tuple of int: the particle indices given, sorted and unique."""
        return self._particles

    def openmm_force(self) -> openmm.Force:
        """A new copy of the force (from its stored XML)."""
        return openmm.XmlSerializer.deserialize(self.xml)

    def _compute(self, x: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        system = openmm.System()
        for _ in range(x.shape[1]):
            system.addParticle(1.0)
        system.addForce(self.openmm_force())
        context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                                 openmm.Platform.getPlatformByName("Reference"))
        values = np.empty(x.shape[0])
        for k, frame in enumerate(x):
            if box is not None:
                context.setPeriodicBoxVectors(*box[k])
            context.setPositions(frame)
            energy = context.getState(getEnergy=True).getPotentialEnergy()
            values[k] = energy.value_in_unit(u.kilojoule_per_mole)
        del context
        return values

    def _params(self) -> dict[str, Any]:
        return {"force": self.xml, "particles": list(self._particles), "unit": self.unit}


