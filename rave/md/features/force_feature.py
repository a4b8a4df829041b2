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
    """Any OpenMM force whose potential energy is the order parameter (e.g. a ``cvpack`` CV).

    The value is the force's energy in kJ/mol read as a number in ``unit``: a ``cvpack``
    collective variable (RMSD, radius of gyration, contacts, path CVs), a
    ``CustomCentroidBondForce``, or a ``CustomCVForce`` of one's own qualifies. The force is
    stored as OpenMM XML, so the feature round-trips through :meth:`to_dict` and a campaign's
    features.json; a ``cvpack`` CV comes back as the OpenMM force it is built on.

    Parameters
    ----------
    force : openmm.Force or str
        The force, or its XML (``openmm.XmlSerializer.serialize``). It is copied.
    particles : int or Sequence[int]
        The particle indices the force uses (checked against the positions given to
        :meth:`evaluate`).
    unit : str, optional
        Unit of the value, e.g. "nm" for an RMSD, "1" for a count. Default: the force's own
        unit when it states one (a ``cvpack`` CV's ``getUnit()``: "nm", "rad", "1", else its
        symbol), otherwise "1".
    name : str, optional
        Label; default the force's own name (``force.getName()``).

    Raises
    ------
    ValueError
        When ``force`` is neither an ``openmm.Force`` nor readable XML of one, or
        ``particles``, ``unit`` or ``name`` is invalid.

    Notes
    -----
    OpenMM face: a copy of ``force``. Numpy face: the energy of the copy in a System of
    ``n_particles`` unit masses on the Reference platform, frame by frame (far slower than the
    other kinds). With ``box_vectors=None`` a force that uses periodic boundary conditions sees
    OpenMM's default box, as in a System without one. There is no PLUMED action and the force
    never joins the bias's ``CustomCompoundBondForce``.
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
        """A new copy of the force (from its stored XML).

        Returns
        -------
        openmm.Force
            The force, its energy in kJ/mol read as the value in :attr:`unit`.
        """
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


