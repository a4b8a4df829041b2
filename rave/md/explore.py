"""Exploration without a CV: an expanded ensemble over temperatures (OpenMM's own sampler).

Round 0 of a campaign with ``[explore] method = "temperature"`` runs in three parts, all in one
walker task:

1. *calibration*: plain MD at the target temperature T0 (the paper's unbiased round, state 0
   of the ladder), recording the potential energy U of every frame;
2. *the ladder*: T0 < T1 < ... < T_max, geometric, with neighbours as close as the system's
   energy fluctuations ask (:func:`temperature_ladder`, from the heat capacity of U measured in
   part 1, :func:`potential_heat_capacity`);
3. *the expanded ensemble*: ``openmm.app.ExpandedEnsembleSampler`` moves the walker between the
   temperatures every ``move_interval`` steps (Gibbs sampling of the state given x; its weights
   by Wang-Landau, then SAMS). Each frame keeps the state it was sampled in and U.

Every frame of every state is later reweighted to T0 by MBAR, with the other rounds
(:func:`rave.learn.bias.reduced_bias_matrix`: a state at T_k has the reduced potential
U / kT_k). The sampler's weights only decide how long the walker stays in each state; the
conformations sampled in state k follow exp(-U / kT_k) whatever the weights are, as long as they
stay put. So frames of part 3 count from the frame after which the weights stay within
``settle_tolerance`` of their final values (:func:`settled_from`); the earlier ones are the
sampler's warm-up.

The state moves draw from Python's ``random`` module inside OpenMM; :class:`SeededSampler`
gives each sampler a generator state of its own, so a walker run again with the same seed
(a resume) moves through the same states.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["ExplorationSpec", "LadderPlan", "calibration_frames", "SeededSampler", "ThermoRecorder",
           "potential_heat_capacity", "settled_from", "temperature_ladder"]

#: all force groups of an OpenMM System
_ALL_GROUPS = frozenset(range(32))
#: fewest frames of a calibration at T0 (the variance of U from fewer is too rough)
MIN_CALIBRATION_FRAMES = 20


@dataclass(frozen=True)
class ExplorationSpec:
    """How a walker explores (plain data, sent to walkers with the task)."""

    max_temperature_K: float
    states: int = 0
    spacing_sigma: float = 1.0
    max_states: int = 32
    move_interval: int = 25
    calibration_fraction: float = 0.05
    settle_tolerance: float = 1.0

    def to_dict(self) -> dict:
        """The spec as a dict of plain values (:meth:`from_dict` reads it)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ExplorationSpec:
        """The spec from :meth:`to_dict` output."""
        return cls(**data)


@dataclass(frozen=True)
class LadderPlan:
    """A temperature ladder and why it has its size."""

    temperatures_K: tuple
    heat_capacity: float
    reason: str


def potential_heat_capacity(potential_kjmol: np.ndarray, kT: float) -> float:
    """Dimensionless heat capacity of the potential energy at one temperature, Var(U) / kT^2.

    The fluctuation formula: Var(U) = kB T^2 dU/dT, so this is (dU/dT) / kB. A particle in a
    d-dimensional harmonic well gives d / 2.

    Raises ValueError: fewer than 2 frames, or a non-finite energy.
    """
    u = np.asarray(potential_kjmol, dtype=float)
    if u.ndim != 1 or u.size < 2:
        raise ValueError(f"potential_kjmol must be 1-D with >= 2 frames. You supplied shape "
                         f"{u.shape}")
    if not np.isfinite(u).all():
        raise ValueError("potential_kjmol holds a non-finite energy")
    return float(np.var(u, ddof=1) / kT ** 2)


def temperature_ladder(temperature_K: float, spec: ExplorationSpec,
                       heat_capacity: float | None = None) -> LadderPlan:
    """The temperatures of the expanded ensemble, geometric from T0 to ``max_temperature_K``.

    Raises ValueError: ``max_temperature_K`` not above T0; a sized ladder without a finite heat
    capacity; or one that needs more than ``spec.max_states`` states (the message says what to do).
    """
    t0, t_max = float(temperature_K), float(spec.max_temperature_K)
    if not t_max > t0 > 0:
        raise ValueError(f"explore.max_temperature_K ({t_max:g} K) must be above the system's "
                         f"temperature ({t0:g} K)")
    span = math.log(t_max / t0)
    if spec.states:
        n, c = int(spec.states), float("nan")
        why = f"{n} states as configured"
    else:
        if heat_capacity is None or not np.isfinite(heat_capacity) or heat_capacity < 0:
            raise ValueError(f"a sized ladder needs a finite heat capacity >= 0. You supplied "
                             f"{heat_capacity!r}")
        c = float(heat_capacity)
        n = 1 + max(1, math.ceil(span * math.sqrt(c) / spec.spacing_sigma))
        why = (f"heat capacity of U at {t0:g} K: {c:.3g} kB, so neighbours {spec.spacing_sigma:g}"
               f" sigma of U apart need a factor {math.exp(span / (n - 1)):.3g} between "
               f"temperatures")
        if n > spec.max_states:
            raise ValueError(
                f"a temperature ladder from {t0:g} to {t_max:g} K needs {n} states for this "
                f"system ({why}), more than explore.max_states = {spec.max_states}. A large "
                f"system's energy fluctuates too much for a temperature ladder: lower "
                f"explore.max_temperature_K, raise explore.max_states, or set explore.method = "
                f"\"none\"")
    temperatures = tuple(float(t) for t in np.geomspace(t0, t_max, n))
    return LadderPlan(temperatures, c, f"{n} temperatures {t0:g}-{t_max:g} K ({why})")


def calibration_frames(n_frames: int, fraction: float, multiple: int = 1) -> int:
    """Frames of an exploring walker's calibration at T0: ``fraction`` of its frames, at least
    20, a whole number of ``multiple`` (snapshot intervals), and at least 20 frames fewer than
    ``n_frames``.

    Raises ValueError: the round is too short to calibrate and explore.
    """
    multiple = max(1, int(multiple))
    wanted = max(MIN_CALIBRATION_FRAMES, math.ceil(fraction * n_frames))
    n = -(-wanted // multiple) * multiple
    if n + MIN_CALIBRATION_FRAMES > n_frames:
        raise ValueError(
            f"an exploring round needs at least {n + MIN_CALIBRATION_FRAMES} frames per walker "
            f"({n} to calibrate at the target temperature, then the expanded ensemble); it has "
            f"{n_frames}. Lengthen round 0 (sampling.first_round_steps or steps_per_round) or "
            f"set explore.method = \"none\"")
    return n


def settled_from(weights: np.ndarray, tolerance: float) -> int:
    """The first frame from which the sampler's weights stay within ``tolerance`` of their
    final values (all later frames too).
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2:
        raise ValueError(f"weights must be 2-D (n_frames, n_states). You supplied shape "
                         f"{w.shape}")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0. You supplied {tolerance}")
    if len(w) == 0:
        return 0
    off = np.max(np.abs(w - w[-1]), axis=1) > tolerance
    return int(len(w) - np.argmax(off[::-1])) if off.any() else 0


class SeededSampler:
    """``openmm.app.ExpandedEnsembleSampler`` whose state moves draw from their own seeded
    generator (OpenMM's draw from the ``random`` module's shared one).
    """

    def __init__(self, temperatures_K: Sequence[float], simulation, move_interval: int,
                 seed: int) -> None:
        from openmm import app, unit

        outer = self

        class _Sampler(app.ExpandedEnsembleSampler):
            def attemptStateChange(self, state):  # noqa: N802 - OpenMM's name
                shared = random.getstate()
                random.setstate(outer._random_state)
                try:
                    return super().attemptStateChange(state)
                finally:
                    outer._random_state = random.getstate()
                    random.setstate(shared)

        self._random_state = random.Random(int(seed)).getstate()
        self.temperatures_K = tuple(float(t) for t in temperatures_K)
        self.sampler = _Sampler([{"temperature": t * unit.kelvin} for t in self.temperatures_K],
                                simulation, int(move_interval))
        self._simulation = simulation

    @property
    def state_index(self) -> int:
        """The state the walker is in now."""
        return int(self.sampler.currentStateIndex)

    @property
    def weights(self) -> list[float]:
        """The sampler's weights (ln, relative to state 0)."""
        return list(self.sampler.weights)

    def detach(self, temperature_K: float) -> None:
        """Take the sampler's reporter out of the Simulation and go back to ``temperature_K``
        (velocities rescaled from the current state's temperature).

        The sampler's states set the temperature of the forces that have one (a
        ``MonteCarloBarostat``, an ``AndersenThermostat``) as well as the integrator's; all of
        them go back.
        """
        sim = self._simulation
        sim.reporters[:] = [r for r in sim.reporters if getattr(r, "sampler", None)
                            is not self.sampler]
        current = self.temperatures_K[self.state_index]
        sim.integrator.setTemperature(temperature_K)
        for force in sim.system.getForces():
            if hasattr(type(force), "Temperature"):
                sim.context.setParameter(force.Temperature(), temperature_K)
        if current != temperature_K:
            velocities = sim.context.getState(getVelocities=True).getVelocities(asNumpy=True)
            sim.context.setVelocities(velocities * math.sqrt(temperature_K / current))


class ThermoRecorder:
    """An OpenMM reporter of each frame's potential energy (the System's own forces, not the
    bias) and, with a sampler, the state the frame was sampled in and the sampler's weights.

    Put it first in ``simulation.reporters`` (:meth:`attach`): OpenMM calls reporters in
    order, and the sampler's own reporter moves to a new state at the same step.
    """

    def __init__(self, report_interval: int, first_step: int, bias_groups: Iterable[int] = (),
                 sampler: SeededSampler | None = None) -> None:
        self._interval = int(report_interval)
        self._first_step = int(first_step)
        self._groups = set(_ALL_GROUPS - {int(g) for g in bias_groups})
        self._ladder = sampler
        self.potential_kjmol: list[float] = []
        self.states: list[int] = []
        self.weights: list[list[float]] = []

    def attach(self, simulation) -> None:
        """Insert this reporter first in ``simulation.reporters``."""
        simulation.reporters.insert(0, self)

    def describeNextReport(self, simulation) -> dict:  # noqa: N802 - OpenMM's name
        """Steps to the next frame; nothing from the State (the energy is read by group)."""
        steps = self._interval - (simulation.currentStep - self._first_step) % self._interval
        return {"steps": steps, "periodic": None, "include": []}

    def report(self, simulation, state) -> None:
        """Record the frame's potential energy (and state and weights)."""
        energy = simulation.context.getState(getEnergy=True, groups=self._groups)
        self.potential_kjmol.append(energy.getPotentialEnergy()._value)
        if self._ladder is not None:
            self.states.append(self._ladder.state_index)
            self.weights.append(self._ladder.weights)
