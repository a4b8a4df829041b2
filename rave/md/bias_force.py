"""``BiasForce``: the RAVE bias in a user's own OpenMM System, shaped like ``app.Metadynamics``.

The bias is ``V(chi)``, a tabulated function of the linear reaction coordinate ``chi = sum_i c_i
s_i`` over order parameters ``s_i`` (:mod:`rave.md.features`). :class:`BiasForce` builds the force
with :func:`bias_force`, puts it in a free force group that it picks itself (the highest free one,
as ``app.Metadynamics`` and ``openmm_opes.OPES`` do; or the free one given as ``forceGroup``) and
adds it to the System. Between rounds :meth:`BiasForce.updateBias` swaps the table and the
coefficients in place (no new Context); the bias starts at zero, so a Simulation made with it runs
unbiased until the first update.

Typical use::

    bias_force = rave.BiasForce(system, features, 300 * unit.kelvin)
    simulation = app.Simulation(topology, system, integrator)   # after BiasForce
    simulation.reporters.append(rave.CVReporter("cv.txt", 100, features, bias=bias_force))
    simulation.step(100_000)                                     # unbiased round
    bias = ...                                                   # a rave.bias_grid.Bias
    bias_force.updateBias(simulation.context, bias)
    simulation.step(100_000)                                     # biased round

Its public names follow OpenMM's style (camelCase), as ``app.Metadynamics``'s do.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import openmm
from openmm import unit

from ..bias_grid import Bias, BiasGrid
from .features import evaluate_features, feature_names

__all__ = ["BIAS_PARAMETER", "DEFAULT_FORCE_GROUP", "BiasForce", "bias_force", "check_group_alone",
           "chi_force",
           "check_features_fit_system", "free_force_group", "state_positions",
           "update_bias_force"]

#: force group that holds the bias force unless the caller chooses another
DEFAULT_FORCE_GROUP = 30
#: name of the tabulated function and the prefix of the global parameters in OpenMM
_TABLE = "rave_bias"
_CHI_MIN = "rave_chi_min"
_CHI_MAX = "rave_chi_max"
#: a global parameter every RAVE bias force defines (and an OPES CV of rave does not): a
#: Context whose parameters include it holds a RAVE bias
BIAS_PARAMETER = _CHI_MIN


def _coefficient_parameter(i: int) -> str:
    return f"rave_c{i}"

#: OpenMM's number of force groups (0..31)
N_FORCE_GROUPS = 32


def _used_force_groups(system: openmm.System) -> set[int]:
    """Force groups the System's forces occupy, the reciprocal-space group of a
    ``NonbondedForce`` included."""
    used = set()
    for force in system.getForces():
        used.add(force.getForceGroup())
        if isinstance(force, openmm.NonbondedForce) and force.getReciprocalSpaceForceGroup() >= 0:
            used.add(force.getReciprocalSpaceForceGroup())
    return used


def free_force_group(system: openmm.System) -> int:
    """The highest force group that none of the System's forces uses.

    Parameters
    ----------
    system : openmm.System
        The System whose forces' groups are looked at (and, for a NonbondedForce, its
        reciprocal-space group).

    Returns
    -------
    int
        In 0..31.

    Raises
    ------
    ValueError
        All 32 groups are in use.
    """
    free = set(range(N_FORCE_GROUPS)) - _used_force_groups(system)
    if not free:
        raise ValueError(
            "system uses all 32 force groups (0-31), but the RAVE bias needs a free one to hold "
            "it alone (so its energy can be read for reweighting). Put some of the system's "
            "forces into a shared group (force.setForceGroup(0)) and create BiasForce again"
        )
    return max(free)


def _checked_force_group(system: openmm.System, group: Any) -> int:
    """``group`` if it is an int in 0..31 that none of the System's forces uses."""
    if isinstance(group, bool) or not isinstance(group, int | np.integer):
        raise TypeError(f"forceGroup must be an int in 0..{N_FORCE_GROUPS - 1} or None. You "
                        f"supplied {group!r}")
    group = int(group)
    if not 0 <= group < N_FORCE_GROUPS:
        raise ValueError(f"forceGroup must be in 0..{N_FORCE_GROUPS - 1}. You supplied {group}")
    if group in _used_force_groups(system):
        raise ValueError(
            f"force group {group} is used by the system's own forces; choose another bias "
            f"force group (0..31) that is free, or leave it unset to take the highest free one"
        )
    return group


def _temperature_K(temperature: Any) -> float:
    """A temperature in K from an OpenMM Quantity or a bare number (taken as K)."""
    if unit.is_quantity(temperature):
        if not temperature.unit.is_compatible(unit.kelvin):
            raise TypeError(f"temperature must be a temperature. You supplied a quantity in "
                            f"{temperature.unit}")
        temperature = temperature.value_in_unit(unit.kelvin)
    if isinstance(temperature, bool) or not isinstance(temperature, int | float | np.number):
        raise TypeError(f"temperature must be a number in K or a temperature Quantity. You "
                        f"supplied {temperature!r}")
    temperature = float(temperature)
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be > 0 K. You supplied {temperature}")
    return temperature


def _context_of(context: Any) -> openmm.Context:
    """The Context of an ``app.Simulation``, or the Context itself."""
    inner = getattr(context, "context", context)
    if not isinstance(inner, openmm.Context):
        raise TypeError(f"context must be an openmm.Context or an app.Simulation. You supplied "
                        f"{type(context).__name__}")
    return inner


def state_positions(state: openmm.State, system: openmm.System
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Positions and box of a State as the features' numpy face takes them."""
    positions = np.asarray(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
    box = (np.asarray(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
           if system.usesPeriodicBoundaryConditions() else None)
    return positions, box


def check_features_fit_system(features: Sequence, system: openmm.System) -> None:
    """Refuse features that OpenMM and numpy would evaluate differently in ``system``.

    Raises ValueError: a feature uses a particle the System lacks, or has ``periodic=True`` while
    the System has no periodic boundary conditions (OpenMM would then apply the minimum image in its
    default 2 nm box; the numpy face would not).
    """
    n = system.getNumParticles()
    periodic_system = system.usesPeriodicBoundaryConditions()
    for feature in features:
        top = max(feature.particles)
        if top >= n:
            raise ValueError(f"feature {feature.name!r} uses particle {top}, but the system has "
                             f"{n} particles (indices 0..{n - 1})")
        if getattr(feature, "periodic", False) and not periodic_system:
            raise ValueError(
                f"feature {feature.name!r} has periodic=True, but the system has no periodic "
                f"boundary conditions: OpenMM would apply the minimum image in its default "
                f"2 nm box. Build the feature with periodic=False"
            )


def check_group_alone(system: openmm.System, group: int) -> None:
    """Refuse a System whose bias force group holds another force: the bias energy read from
    the group would include that force's energy, and every frame's weight would be wrong.

    Raises ValueError: naming the other forces of the group.
    """
    forces = [f for f in system.getForces() if f.getForceGroup() == group]
    if len(forces) > 1:
        others = [type(f).__name__ + (f" {f.getName()!r}" if f.getName() else "")
                  for f in forces]
        raise ValueError(
            f"force group {group} holds the RAVE bias and {len(forces) - 1} other force(s) "
            f"({', '.join(others)}): the bias energy read from the group would include theirs. "
            f"Put the other forces in another group (force.setForceGroup) before creating the "
            f"Context, or give BiasForce a free forceGroup")


class BiasForce:
    """The RAVE bias ``V(chi)``, ``chi = c . s``, added to an OpenMM System in a free force group.

    The force is built by :func:`bias_force` (a natural cubic spline table of the
    clamped ``chi``: beyond the grid the energy stays at its edge value, it never falls to
    zero) and added to ``system`` in the constructor, in the highest force group that the
    System's forces leave free (or in ``forceGroup``). Create the ``app.Simulation`` (or
    Context) after this object: a Context made before does not hold the bias. The bias starts
    at zero everywhere; :meth:`updateBias` puts in a new one without a new Context.

    Parameters
    ----------
    system : openmm.System
        The System to bias; the force is added to it (modified in place).
    features : sequence of rave.md.features.Feature
        The order parameters ``s``, in the order of the bias coefficients; names unique.
        A feature with ``periodic=True`` needs a periodic System.
    temperature : float or openmm.unit.Quantity
        The simulation's temperature (a bare number is taken as K); it sets :attr:`kT`, the
        energy scale in which a bias is built from the recorded frames (``V = kT ln P``).
    forceGroup : int, optional
        The force group (0..31) to hold the bias; it must be free (no force of the System,
        nor a NonbondedForce's reciprocal space, in it). Default: the highest free group
        (:func:`free_force_group`).

    Attributes
    ----------
    features : list of rave.md.features.Feature
        The order parameters ``s``, in the order of the bias coefficients.
    featureNames : list of str
        Their names, in the same order.
    temperature : openmm.unit.Quantity
        The temperature, in kelvin.
    kT : float
        Thermal energy R T in kJ/mol.
    force : openmm.Force
        The force in the System (``CustomCompoundBondForce`` when every feature is a function
        of single atoms, else ``CustomCVForce``), named "RAVE bias".
    forceGroup : int
        The force group holding the bias alone, 0..31.
    bias : rave.bias_grid.Bias
        The bias last put in with :meth:`updateBias` (zero at first); ``bias.energy(values)``
        evaluates it with numpy on feature values of shape (n_frames, n_features).

    Raises
    ------
    ValueError
        No features, duplicate names, a feature outside the System or periodic in a
        non-periodic System, the System already holds a RAVE bias, all 32 force groups are in
        use, or ``forceGroup`` is outside 0..31 or used by the System's own forces.

    Notes
    -----
    Coefficients, clamp bounds and table are global parameters of the force named
    ``rave_*``; one System holds at most one BiasForce.

    Examples
    --------
    >>> bias_force = BiasForce(system, features, 300.0)
    >>> simulation = app.Simulation(topology, system, integrator)
    >>> bias_force.updateBias(simulation.context, bias)
    >>> energy = bias_force.getBiasEnergy(simulation.context)  # Quantity, kJ/mol
    """

    def __init__(self, system: openmm.System, features: Sequence, temperature: Any,
                 forceGroup: int | None = None) -> None:  # noqa: N803 - OpenMM's style
        if not isinstance(system, openmm.System):
            raise TypeError(f"system must be an openmm.System. You supplied "
                            f"{type(system).__name__}")
        self.features = list(features)
        if not self.features:
            raise ValueError("features must hold at least one order parameter. You supplied []")
        self.featureNames = feature_names(self.features)
        self._temperature_K = _temperature_K(temperature)
        check_features_fit_system(self.features, system)
        for force in system.getForces():
            count = force.getNumGlobalParameters() if hasattr(
                force, "getNumGlobalParameters") else 0
            if BIAS_PARAMETER in {force.getGlobalParameterName(i) for i in range(count)}:
                raise ValueError(f"system already holds a RAVE bias (force {force.getName()!r}); "
                                 f"one System takes one BiasForce: updateBias() that one "
                                 f"instead")
        self.forceGroup = (free_force_group(system) if forceGroup is None
                           else _checked_force_group(system, forceGroup))
        self.bias = Bias(np.zeros(len(self.features)), BiasGrid.zero())
        self.force = bias_force(self.features, self.bias, self.forceGroup)
        system.addForce(self.force)

    @property
    def temperature(self) -> unit.Quantity:
        """The temperature, an OpenMM Quantity in kelvin."""
        return self._temperature_K * unit.kelvin

    @property
    def kT(self) -> float:
        """Thermal energy R T in kJ/mol."""
        from ..units import kT_kjmol

        return kT_kjmol(self._temperature_K)

    def _checked(self, context: Any) -> openmm.Context:
        context = _context_of(context)
        if BIAS_PARAMETER not in context.getParameters():
            raise ValueError(
                "this Context does not hold the RAVE bias: it was created before BiasForce added "
                "the bias to the System (or from another System). Create the Simulation or "
                "Context after BiasForce(system, ...)"
            )
        if context is not getattr(self, "_alone_in", None):
            check_group_alone(context.getSystem(), self.forceGroup)
            self._alone_in = context
        return context

    def updateBias(self, context: Any, bias: Bias) -> None:  # noqa: N802 - OpenMM's style
        """Put a new bias (table and coefficients) into the force and the Context, in place.

        Parameters
        ----------
        context : openmm.Context or openmm.app.Simulation
            A Context (or the Simulation whose Context) built from the biased System.
        bias : rave.bias_grid.Bias
            Coefficients (one per feature) and the grid ``V(chi)`` in kJ/mol.

        Raises
        ------
        ValueError
            The Context does not hold this bias, or the number of coefficients is not the
            number of features.
        """
        if not isinstance(bias, Bias):
            raise TypeError(f"bias must be a rave.bias_grid.Bias. You supplied "
                            f"{type(bias).__name__}")
        if bias.coefficients.size != len(self.features):
            raise ValueError(f"bias has {bias.coefficients.size} coefficients, but this "
                             f"BiasForce has {len(self.features)} features "
                             f"({', '.join(self.featureNames)})")
        update_bias_force(self.force, self._checked(context), bias)
        self.bias = bias

    def update(self, context: Any, bias: Bias) -> None:
        """Deprecated name of :meth:`updateBias`.

        Parameters
        ----------
        context : openmm.Context or openmm.app.Simulation
            As for :meth:`updateBias`.
        bias : rave.bias_grid.Bias
            As for :meth:`updateBias`.
        """
        warnings.warn("BiasForce.update is deprecated: use BiasForce.updateBias (OpenMM's "
                      "naming)", DeprecationWarning, stacklevel=2)
        self.updateBias(context, bias)

    def getBiasEnergy(self, context: Any) -> unit.Quantity:
        """The bias energy at the Context's current positions, from its force group alone.

        Parameters
        ----------
        context : openmm.Context or openmm.app.Simulation
            The Context of the biased System (a Simulation: its ``context``).

        Returns
        -------
        openmm.unit.Quantity
            Energy in kJ/mol: the energy OpenMM applies, which frames are reweighted with.
        """
        state = self._checked(context).getState(getEnergy=True, groups={self.forceGroup})
        return state.getPotentialEnergy().in_units_of(unit.kilojoule_per_mole)

    def getCollectiveVariables(self, context: Any) -> np.ndarray:
        """The order parameters at the Context's current positions.

        These are the features ``s`` (not chi): ``bias.chi(values[None])`` gives chi. They are
        evaluated with numpy (:func:`rave.md.features.evaluate_features`) on the Context's
        positions (and its box when the System is periodic), as :class:`rave.CVReporter`
        records them.

        Parameters
        ----------
        context : openmm.Context or openmm.app.Simulation
            The Context of the biased System (a Simulation: its ``context``).

        Returns
        -------
        np.ndarray, shape=(n_features,), dtype=float
            Each feature in its own unit (nm, rad or dimensionless).
        """
        context = _context_of(context)
        state = context.getState(getPositions=True)
        positions, box = state_positions(state, context.getSystem())
        return evaluate_features(self.features, positions, box)[0]

    def __repr__(self) -> str:
        return (f"BiasForce({len(self.features)} features: {', '.join(self.featureNames)}; "
                f"force group {self.forceGroup}, {self._temperature_K:g} K)")

# ------------------------------------------------------------------------------------------
# the force of a bias along chi (the builders BiasForce, the walker and export use)
# ------------------------------------------------------------------------------------------

def _compound_terms(features: Sequence) -> tuple[list[int], list[str], bool] | None:
    """Particles, per-feature Lepton expressions and periodicity for one
    CustomCompoundBondForce, when every feature is a function of single particles (each
    answers :meth:`rave.md.features.Feature.compound_term`) and all terms share one periodicity;
    else None."""
    particles: list[int] = []
    terms: list[str] = []
    periodic: set[bool] = set()

    def slot(index: int) -> int:
        if index not in particles:
            particles.append(index)
        return particles.index(index) + 1

    for feature in features:
        compound_term = getattr(feature, "compound_term", None)
        term = compound_term(slot) if compound_term is not None else None
        if term is None:
            return None
        terms.append(term.expression)
        periodic.add(bool(term.periodic))
    if len(periodic) > 1:
        return None  # mixed periodicity, or absolute coordinates beside minimum-image geometry
    return particles, terms, periodic == {True}


def _linear_force(features: Sequence, coefficients: np.ndarray, outer: str,
                  clamp: tuple[float, float], prefix: str = "rave"):
    """An OpenMM force whose energy is ``outer``, a Lepton expression of ``chi`` clamped to
    ``clamp``, chi = sum_i c_i s_i (coefficients and clamp bounds as global parameters named
    ``{prefix}_c<i>``, ``{prefix}_chi_min``, ``{prefix}_chi_max``: one Context holds the static
    bias and an OPES CV side by side, so their parameters need different names).
    """
    compound = _compound_terms(features)
    variables = compound[1] if compound else [f"f{i}" for i in range(len(features))]
    chi = " + ".join(f"{prefix}_c{i}*{v}" for i, v in enumerate(variables))
    expression = f"{outer}; chi = max({prefix}_chi_min, min({prefix}_chi_max, {chi}))"
    if compound:
        force = openmm.CustomCompoundBondForce(len(compound[0]), expression)
        force.addBond(compound[0], [])
        force.setUsesPeriodicBoundaryConditions(compound[2])
    else:
        force = openmm.CustomCVForce(expression)
        for i, feature in enumerate(features):
            force.addCollectiveVariable(f"f{i}", feature.openmm_force())
    for i, c in enumerate(coefficients):
        force.addGlobalParameter(f"{prefix}_c{i}", float(c))
    force.addGlobalParameter(f"{prefix}_chi_min", float(clamp[0]))
    force.addGlobalParameter(f"{prefix}_chi_max", float(clamp[1]))
    return force


def bias_force(
    features: Sequence, bias: Bias, force_group: int = DEFAULT_FORCE_GROUP
) -> openmm.Force:
    """The OpenMM force of a bias: ``table(clamp(chi))``, chi = sum_i c_i s_i.

    Raises ValueError: the bias has not one coefficient per feature, or ``force_group`` is outside
    0..31.
    """
    if len(features) != bias.coefficients.size:
        raise ValueError(
            f"the bias has {bias.coefficients.size} coefficients but {len(features)} features "
            f"were given"
        )
    if not 0 <= force_group <= 31:
        raise ValueError(f"force_group must be in 0..31. You supplied {force_group}")
    force = _linear_force(features, bias.coefficients, f"{_TABLE}(chi)", bias.grid.clamp_bounds)
    force.addTabulatedFunction(
        _TABLE,
        openmm.Continuous1DFunction(
            list(map(float, bias.grid.values_kjmol)), bias.grid.chi_min, bias.grid.chi_max
        ),
    )
    force.setForceGroup(force_group)
    force.setName("RAVE bias")
    return force


def chi_force(features: Sequence, coefficients: Sequence[float], chi_min: float,
              chi_max: float):
    """An OpenMM force whose energy is the clamped RC, ``max(lo, min(hi, chi))``.

    Raises ValueError: there is not one coefficient per feature.
    """
    coefficients = np.asarray(coefficients, dtype=float).reshape(-1)
    if len(features) != coefficients.size:
        raise ValueError(
            f"{coefficients.size} coefficients but {len(features)} features were given"
        )
    bounds = BiasGrid(chi_min, chi_max, np.zeros(3)).clamp_bounds
    force = _linear_force(features, coefficients, "chi", bounds, prefix="rave_opes")
    force.setName("RAVE chi")
    return force


def update_bias_force(force, context, bias: Bias) -> None:
    """Put a new bias into an existing force and its Context, without a new Context.

    Raises ValueError: the new bias has another number of coefficients than the force has features.
    """
    n = sum(force.getGlobalParameterName(i).startswith("rave_c") and
            force.getGlobalParameterName(i)[6:].isdigit()
            for i in range(force.getNumGlobalParameters()))
    if bias.coefficients.size != n:
        raise ValueError(
            f"the new bias has {bias.coefficients.size} coefficients; the force has {n} features"
        )
    values = {_coefficient_parameter(i): float(c) for i, c in enumerate(bias.coefficients)}
    values[_CHI_MIN], values[_CHI_MAX] = bias.grid.clamp_bounds
    for index in range(force.getNumGlobalParameters()):
        name = force.getGlobalParameterName(index)
        if name in values:
            force.setGlobalParameterDefaultValue(index, values[name])
    for name, value in values.items():
        context.setParameter(name, value)
    for index in range(force.getNumTabulatedFunctions()):
        if force.getTabulatedFunctionName(index) == _TABLE:
            force.getTabulatedFunction(index).setFunctionParameters(
                list(map(float, bias.grid.values_kjmol)), bias.grid.chi_min, bias.grid.chi_max
            )
    force.updateParametersInContext(context)
