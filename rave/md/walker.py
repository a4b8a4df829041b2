"""The campaign's walker: an ``app.Simulation`` with a RAVE bias, recording frames.

A :class:`Walker` is what a user of :class:`rave.BiasForce` and :class:`rave.CVReporter` would
write by hand: a :class:`rave.BiasForce` added to (a copy of) the System, an
``openmm.app.Simulation`` with a ``LangevinMiddleIntegrator`` (a minimal ``app.Topology`` of the
System's particles when no topology is given), and a reporter in ``simulation.reporters`` that
records the frames, here :class:`rave.md.reporter.CVRecorder`, the in-memory form of
``CVReporter``. The Simulation lives for the whole campaign; the bias is updated in place
between rounds (:meth:`Walker.set_bias`).

:meth:`Walker.run` steps the Simulation one block of frames (at most 512) at a time: the recorder
buffers the positions of each frame and featurises a block with one numpy pass, and the bias
energy of every frame is read from OpenMM's bias force group (so reweighting uses the energy
that was actually applied). After each block the frames are checked for a blow-up (non-finite
or exploding positions or bias energy: :class:`MDError`), which the campaign's fault recovery
(:func:`rave.campaign.walkers.run_walker`) answers by going back to a checkpoint
(:meth:`Walker.get_state` / :meth:`Walker.set_state`) with half the time step. An adaptive round
steps through ``OPES.step`` (:mod:`rave.md.opes`), whose kernels are deposited after the
reporters of the same step, so each frame keeps the bias it felt.

The frames' times are the walker's clock, ``t += report_interval * timestep`` per frame (as the
stored campaigns' are), not the Context's per-step sum, which drifts from it by ~1e-7 ps over
10^6 steps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import openmm
from openmm import app, unit

from ..bias_grid import Bias
from ..units import kT_kjmol
from .bias_force import BiasForce
from .frames import Frames
from .reporter import CVRecorder

log = logging.getLogger(__name__)

#: Systems with fewer particles than this run on the Reference platform under "auto": its
#: per-call overhead is far below the CPU platform's for a handful of particles.
_REFERENCE_BELOW_PARTICLES = 64
#: positions buffered before featurising (a block, checked for blow-ups as one): at most this
#: many floats (40 MB) and 512 frames
_BLOCK_FLOATS = 5_000_000
_BLOCK_FRAMES = 512
#: a run is cut into at least this many blocks, so a progress bar moves while a slow system's
#: round runs (a 250-frame ligand-cavity round was one block: its bar jumped 0 -> 100 % after
#: 9 minutes); OpenMM steps on exactly as in one call, only ``step`` is called more often
_PROGRESS_BLOCKS = 10


def _md_value(value, md_unit) -> float:
    """Accept an OpenMM Quantity or a bare float in MD units."""
    if unit.is_quantity(value):
        return float(value.value_in_unit(md_unit))
    return float(value)


def system_from_xml(xml: str) -> openmm.System:
    """The System of an XML string written by ``openmm.XmlSerializer``.

    A walker task carries its System so, to a Dask worker or another process.
    """
    return openmm.XmlSerializer.deserialize(xml)


def _global_parameters(force) -> list[tuple[str, float]]:
    """A force's global parameters and their default values, those of the collective
    variables of a ``CustomCVForce`` included."""
    out = [(force.getGlobalParameterName(k), force.getGlobalParameterDefaultValue(k))
           for k in range(getattr(force, "getNumGlobalParameters", lambda: 0)())]
    if isinstance(force, openmm.CustomCVForce):
        for i in range(force.getNumCollectiveVariables()):
            out += _global_parameters(force.getCollectiveVariable(i))
    return out


def check_thermostat(simulation, temperature_K: float, explore: bool = False,
                     ladder: bool = False) -> None:
    """Refuse a Simulation whose frames cannot be reweighted as canonical at ``temperature_K``.

    An integrator without a thermostat (Verlet without an ``AndersenThermostat``), one whose
    temperature is not ``temperature_K`` (checked while no ladder runs), or, with ``explore``,
    one without ``setTemperature``.

    Raises ValueError: what is wrong and what to use instead.
    """
    integrator = simulation.integrator
    andersen = [f for f in simulation.system.getForces()
                if isinstance(f, openmm.AndersenThermostat)]
    if (isinstance(integrator, openmm.VerletIntegrator | openmm.VariableVerletIntegrator)
            and not andersen):
        raise ValueError(f"the integrator ({type(integrator).__name__}) has no thermostat: "
                         f"it keeps the energy constant, but RAVE reweights frames of the "
                         f"canonical ensemble at {temperature_K} K. Use a thermostatted "
                         f"integrator (e.g. LangevinMiddleIntegrator) or add an "
                         f"AndersenThermostat to the System")
    if explore and not hasattr(integrator, "setTemperature"):
        raise ValueError(f"explore.method = \"temperature\" changes the integrator's "
                         f"temperature, but {type(integrator).__name__} has no "
                         f"setTemperature(). Use an integrator with a temperature (e.g. "
                         f"LangevinMiddleIntegrator) or leave out explore")
    if andersen and not hasattr(integrator, "getTemperature") and not ladder:
        thermostat = simulation.context.getParameter(andersen[0].Temperature())
        if abs(thermostat - temperature_K) > 1e-6:
            raise ValueError(f"the AndersenThermostat's temperature is {thermostat} K but "
                             f"this RAVESampler was built for {temperature_K} K: the "
                             f"reweighting would be wrong. Use one temperature")
    if hasattr(integrator, "getTemperature") and not ladder:
        thermostat = _md_value(integrator.getTemperature(), unit.kelvin)
        if abs(thermostat - temperature_K) > 1e-6:
            raise ValueError(f"the integrator's temperature is {thermostat} K but this "
                             f"RAVESampler was built for {temperature_K} K: the "
                             f"reweighting would be wrong. Use one temperature")


class MDError(RuntimeError):
    """The MD produced non-finite or exploding positions or energies."""


#: a coordinate beyond this (nm) means the integration exploded, even if it is still finite
EXPLODED_NM = 1.0e4


def choose_platform(name: str, n_particles: int) -> openmm.Platform:
    """An OpenMM platform by name; "auto" picks Reference for tiny systems, else the fastest.

    Raises ValueError: the platform named is not available here; the message lists those that are.
    """
    available = [openmm.Platform.getPlatform(i).getName()
                 for i in range(openmm.Platform.getNumPlatforms())]
    if name == "auto":
        if n_particles < _REFERENCE_BELOW_PARTICLES:
            return openmm.Platform.getPlatformByName("Reference")
        for candidate in ("CUDA", "OpenCL", "CPU", "Reference"):
            if candidate in available:
                return openmm.Platform.getPlatformByName(candidate)
    if name not in available:
        raise ValueError(
            f"OpenMM platform {name!r} is not available here. Available: {', '.join(available)}"
        )
    return openmm.Platform.getPlatformByName(name)


def minimal_topology(n_particles: int) -> app.Topology:
    """An ``app.Topology`` of ``n_particles`` element-less atoms in one residue of one chain.

    What an ``app.Simulation`` needs when the System comes without a topology (a model
    potential, a System read from XML): reporters that write trajectories need a real one.
    """
    topology = app.Topology()
    residue = topology.addResidue("UNK", topology.addChain())
    for index in range(n_particles):
        topology.addAtom(f"P{index}", None, residue)
    return topology


class Walker:
    """One Langevin MD walker: an ``app.Simulation`` with a RAVE bias, updated between rounds.

    Raises ValueError: a non-positive temperature, time step or friction; a feature outside the
    System; an explicit ``force_group`` that the System uses; OPES without the bias.
    """

    def __init__(
        self,
        system: openmm.System,
        positions,
        features: Sequence,
        temperature_K,
        timestep_ps,
        friction_per_ps,
        *,
        seed: int = 0,
        platform: str = "auto",
        box_vectors=None,
        with_bias: bool = True,
        force_group: int | None = None,
        cpu_threads: int | None = None,
        opes: dict | None = None,
        opes_state: dict | None = None,
        topology: app.Topology | None = None,
        record_potential: bool = False,
    ) -> None:
        self.features = list(features)
        self.temperature_K = _md_value(temperature_K, unit.kelvin)
        self.timestep_ps = _md_value(timestep_ps, unit.picosecond)
        self.friction_per_ps = _md_value(friction_per_ps, unit.picosecond**-1)
        for name in ("temperature_K", "timestep_ps", "friction_per_ps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0. You supplied {getattr(self, name)}")
        system = openmm.XmlSerializer.clone(system)
        particles = sorted({p for f in self.features for p in f.particles})
        if particles and particles[-1] >= system.getNumParticles():
            raise ValueError(
                f"the features use particle {particles[-1]} but the system has "
                f"{system.getNumParticles()} particles"
            )
        if opes is not None and not with_bias:
            raise ValueError("an OPES walker needs with_bias=True")
        self._n_particles = system.getNumParticles()
        self.bias_force = (BiasForce(system, self.features, self.temperature_K,
                                     forceGroup=force_group) if with_bias else None)
        self.force_group = None if self.bias_force is None else self.bias_force.forceGroup
        self.opes = None
        if opes is not None:
            from .opes import OPESBias, OPESSpec

            self.opes = OPESBias(system, self.features, OPESSpec.from_dict(opes),
                                 self.temperature_K, opes_state)
        self.system = system
        integrator = openmm.LangevinMiddleIntegrator(
            self.temperature_K, self.friction_per_ps, self.timestep_ps
        )
        integrator.setRandomNumberSeed(int(seed) % 2**31)
        self.platform = choose_platform(platform, system.getNumParticles())
        properties = {}
        if cpu_threads is not None and self.platform.getName() == "CPU":
            properties["Threads"] = str(int(cpu_threads))
        self.simulation = app.Simulation(
            topology if topology is not None else minimal_topology(self._n_particles),
            system, integrator, self.platform, properties,
        )
        if box_vectors is not None:
            self.context.setPeriodicBoxVectors(*box_vectors)
        positions = (positions.value_in_unit(unit.nanometer) if unit.is_quantity(positions)
                     else np.asarray(positions, dtype=float))
        self.context.setPositions(positions)
        self.context.setVelocitiesToTemperature(self.temperature_K, int(seed) % 2**31)
        self._periodic = system.usesPeriodicBoundaryConditions()
        self.time_ps = 0.0
        if self.opes is not None:
            self.opes.attach(self.simulation)
        self.record_potential = bool(record_potential)
        self.ladder = None
        self.ladder_weights: list[list[float]] = []

    @classmethod
    def adopt(cls, simulation: app.Simulation, features: Sequence, temperature_K,
              bias_force: BiasForce, *, opes: dict | None = None, opes_state: dict | None = None,
              record_potential: bool = False) -> Walker:
        """A walker around a user's own ``app.Simulation`` (its integrator, platform and
        reporters stay the user's).

        The static bias is the :class:`rave.BiasForce` already in the Simulation's System;
        with ``opes`` an OPES force is added to that System and the Context reinitialised
        (positions, velocities and the step count kept); :meth:`release` takes it out again.
        """
        self = cls.__new__(cls)
        self.features = list(features)
        self.temperature_K = _md_value(temperature_K, unit.kelvin)
        self.timestep_ps = simulation.integrator.getStepSize().value_in_unit(unit.picosecond)
        self.friction_per_ps = None
        self.system = simulation.system
        self._n_particles = self.system.getNumParticles()
        self.bias_force = bias_force
        self.force_group = bias_force.forceGroup
        self.simulation = simulation
        self.platform = simulation.context.getPlatform()
        self._periodic = self.system.usesPeriodicBoundaryConditions()
        self.time_ps = simulation.context.getState().getTime().value_in_unit(unit.picosecond)
        self.record_potential = bool(record_potential)
        self.ladder = None
        self.ladder_weights = []
        self.opes = None
        self._adopted_forces = self.system.getNumForces()
        if opes is not None:
            from .opes import OPESBias, OPESSpec

            self.opes = OPESBias(self.system, self.features, OPESSpec.from_dict(opes),
                                 self.temperature_K, opes_state)
            simulation.context.reinitialize(preserveState=True)
            # preserveState keeps the Context's parameter values, among them an earlier OPES
            # CV's coefficients of the same names: the new forces' own values must hold
            for index in range(self._adopted_forces, self.system.getNumForces()):
                for name, value in _global_parameters(self.system.getForce(index)):
                    simulation.context.setParameter(name, value)
            self.opes.attach(simulation)
        return self

    def release(self) -> None:
        """Take the forces :meth:`adopt` added out of the user's System again (the Context is
        reinitialised, its state kept)."""
        added = self.system.getNumForces() - getattr(self, "_adopted_forces", 0)
        for _ in range(added):
            self.system.removeForce(self.system.getNumForces() - 1)
        if added:
            self.simulation.context.reinitialize(preserveState=True)
        self.opes = None

    @property
    def context(self) -> openmm.Context:
        """The Simulation's Context."""
        return self.simulation.context

    @property
    def integrator(self) -> openmm.Integrator:
        """The Simulation's ``LangevinMiddleIntegrator``."""
        return self.simulation.integrator

    @property
    def bias(self) -> Bias | None:
        """The static bias in force (zero until :meth:`set_bias`; None without a bias)."""
        return None if self.bias_force is None else self.bias_force.bias

    @property
    def kT(self) -> float:
        """Thermal energy at the walker's temperature, kJ/mol."""
        return kT_kjmol(self.temperature_K)

    def set_bias(self, bias: Bias) -> None:
        """Apply a new static bias, in place (no new Context).

        Raises RuntimeError: the walker was made with ``with_bias=False``.
        """
        if self.bias_force is None:
            raise RuntimeError("this walker was made with with_bias=False")
        self.bias_force.updateBias(self.context, bias)

    def bias_energy(self) -> unit.Quantity:
        """The energy of the bias in force (the static bias and OPES's, less its table offset)."""
        groups, offset = {self.force_group}, 0.0
        if self.opes is not None:
            groups.add(self.opes.force_group)
            offset = self.opes.energy_offset_kjmol
        energy = self.context.getState(getEnergy=True, groups=groups).getPotentialEnergy()
        return (energy.value_in_unit(unit.kilojoule_per_mole) - offset) * unit.kilojoule_per_mole

    def start_ladder(self, temperatures_K: Sequence[float], move_interval: int,
                     seed: int) -> None:
        """Run the next frames as an expanded ensemble over ``temperatures_K`` (state 0 must
        be the walker's temperature; :mod:`rave.md.explore`).
        """
        from .explore import SeededSampler

        if self.ladder is not None:
            raise RuntimeError("a ladder is already running; stop_ladder() first")
        if abs(float(temperatures_K[0]) - self.temperature_K) > 1e-9:
            raise ValueError(f"the ladder must start at the walker's temperature "
                             f"{self.temperature_K} K. You supplied {temperatures_K[0]} K")
        self.ladder = SeededSampler(temperatures_K, self.simulation, move_interval, seed)

    def stop_ladder(self) -> None:
        """End the expanded ensemble: back to the walker's temperature (velocities rescaled)."""
        if self.ladder is not None:
            self.ladder.detach(self.temperature_K)
            self.ladder = None

    def set_timestep(self, timestep_ps: float) -> None:
        """Change the integrator's time step, e.g. after a blow-up."""
        self.timestep_ps = _md_value(timestep_ps, unit.picosecond)
        self.integrator.setStepSize(self.timestep_ps)

    def recorder(self, report_interval: int, snapshot_every: int | None = None,
                 block_frames: int = _BLOCK_FRAMES, on_block=None) -> CVRecorder:
        """A :class:`rave.md.reporter.CVRecorder` of this walker's frames from its current step.

        It reads the bias of the walker's force groups (the static bias, and OPES's less its
        table offset); :meth:`run` adds one to ``simulation.reporters`` for each run.
        """
        extra, offset = (), 0.0
        if self.opes is not None:
            extra, offset = {self.opes.force_group}, self.opes.energy_offset_kjmol
        return CVRecorder(report_interval, self.features, self.bias_force, extra_groups=extra,
                          energy_offset_kjmol=offset, first_step=self.simulation.currentStep,
                          snapshot_every=snapshot_every, block_frames=block_frames,
                          on_block=on_block)

    def run(self, n_steps: int, report_interval: int, progress=None,
            snapshot_every: int | None = None) -> Frames:
        """Run ``n_steps`` steps and record a frame every ``report_interval`` steps.

        Raises MDError: non-finite or exploding positions, or non-finite bias energy, or an OpenMM
        error during stepping; the message gives the time and what to do. The walker's state is then
        unusable until :meth:`set_state`.
        """
        if report_interval < 1 or n_steps < report_interval:
            raise ValueError(
                f"n_steps ({n_steps}) must be >= report_interval ({report_interval}) >= 1"
            )
        n_frames = n_steps // report_interval
        # the walker's clock: one addition per frame, as the stored campaigns' times
        times = np.cumsum(np.concatenate(
            [[self.time_ps], np.full(n_frames, report_interval * self.timestep_ps)]))[1:]
        block = max(1, min(_BLOCK_FRAMES, _BLOCK_FLOATS // (3 * self._n_particles),
                           -(-n_frames // _PROGRESS_BLOCKS)))

        def check(first: int, positions: np.ndarray, values: np.ndarray,
                  bias: np.ndarray) -> None:
            with np.errstate(invalid="ignore"):
                exploded = ~(np.abs(positions).max(axis=(1, 2)) < EXPLODED_NM)
            bad = ~np.isfinite(values).all(axis=1) | ~np.isfinite(bias) | exploded
            if bad.any():
                raise MDError(
                    f"the MD blew up: non-finite or exploding positions or bias energy at "
                    f"t = {times[first + int(np.argmax(bad))]:.3f} ps. Lower sampling.timestep "
                    f"(now {self.timestep_ps} ps) or check the system's energy near the visited "
                    f"region"
                )
            if progress is not None:
                progress(len(bias))

        recorder = self.recorder(report_interval, snapshot_every, block, check)
        reporters = [recorder]
        thermo = None
        if self.record_potential or self.ladder is not None:
            from .explore import ThermoRecorder

            groups = [g for g in (self.force_group,
                                  None if self.opes is None else self.opes.force_group)
                      if g is not None]
            thermo = ThermoRecorder(report_interval, self.simulation.currentStep, groups,
                                    self.ladder)
        step = None
        if self.opes is not None:
            step = self.opes.opes.step
            reporters.append(self.opes.frame_reporter(report_interval))
        self.simulation.reporters.extend(reporters)
        if thermo is not None:
            thermo.attach(self.simulation)  # first: before the ladder's move at the same step
            reporters.append(thermo)
        try:
            done = 0
            while done < n_frames:
                n = min(block, n_frames - done)
                try:
                    if step is None:
                        self.simulation.step(n * report_interval)
                    else:
                        step(self.simulation, n * report_interval)
                except openmm.OpenMMException as error:
                    t = times[len(recorder) - 1] if len(recorder) else self.time_ps
                    raise MDError(
                        f"OpenMM failed at t = {t:.3f} ps ({error}). Lower "
                        f"sampling.timestep (now {self.timestep_ps} ps) or check the system"
                    ) from error
                recorder.flush()
                done += n
        finally:
            for reporter in reporters:
                self.simulation.reporters.remove(reporter)
        frames = recorder.frames()
        self.time_ps = float(times[-1])
        potential = state = None
        if thermo is not None:
            potential = np.asarray(thermo.potential_kjmol, dtype=float)
            if self.ladder is not None:
                state = np.asarray(thermo.states, dtype=np.int64)
                self.ladder_weights.extend(thermo.weights)
        return Frames(frames.features, frames.bias_kjmol, times, frames.snapshots,
                      frames.snapshot_frames, potential_kjmol=potential, state=state)

    def get_state(self) -> dict:
        """The state to continue from later (:meth:`set_state`)."""
        state = self.context.getState(getPositions=True, getVelocities=True)
        out = {
            "positions": state.getPositions(asNumpy=True)._value.copy(),
            "velocities": state.getVelocities(asNumpy=True)._value.copy(),
            "time_ps": self.time_ps,
            "step": self.simulation.currentStep,
        }
        if self._periodic:
            out["box_vectors"] = state.getPeriodicBoxVectors(asNumpy=True)._value.copy()
        if self.opes is not None:
            out["opes"] = self.opes.get_state()
        return out

    def set_state(self, state: dict) -> None:
        """Restore :meth:`get_state` output."""
        if state.get("box_vectors") is not None:
            self.context.setPeriodicBoxVectors(*np.asarray(state["box_vectors"]))
        self.context.setPositions(np.asarray(state["positions"]))
        if state.get("velocities") is not None:
            self.context.setVelocities(np.asarray(state["velocities"]))
        if state.get("step") is not None:
            self.simulation.currentStep = int(state["step"])
        self.time_ps = float(state["time_ps"])
        if self.opes is not None and state.get("opes") is not None:
            self.opes.set_state(state["opes"])
