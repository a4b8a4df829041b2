"""OpenMM simulation of one walker: bias in, frames (features and bias energy) out.

The walker owns one ``openmm.Context`` for the whole campaign. The bias force
(:func:`rave.md.bias_force.bias_force`) sits in its own force group and is updated in place between
rounds. Frames are recorded every ``report_interval`` steps: the integrator steps in chunks of
``report_interval`` (one Python call per frame, never one per MD step), the positions of the
particles the features use are buffered and featurised in blocks with numpy, and the bias energy of
every frame is read from OpenMM's bias force group (so reweighting uses the energy that was
actually applied).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import openmm
from openmm import unit

from ..learn.bias import Bias, BiasGrid
from ..units import kT_kjmol
from .bias_force import DEFAULT_FORCE_GROUP, bias_force, update_bias_force
from .features import evaluate_features
from .frames import Frames

log = logging.getLogger(__name__)

#: Systems with fewer particles than this run on the Reference platform under "auto": its
#: per-call overhead is far below the CPU platform's for a handful of particles.
_REFERENCE_BELOW_PARTICLES = 64
#: positions buffered before featurising: at most this many floats (40 MB) and 512 frames
_BLOCK_FLOATS = 5_000_000


def _md_value(value, md_unit) -> float:
    """Accept an OpenMM Quantity or a bare float in MD units."""
    if unit.is_quantity(value):
        return float(value.value_in_unit(md_unit))
    return float(value)


def system_from_xml(xml: str) -> openmm.System:
    """The System of an XML string written by ``openmm.XmlSerializer`` (a walker task carries
    its System so, to a Dask worker or another process)."""
    return openmm.XmlSerializer.deserialize(xml)


class MDError(RuntimeError):
    """The MD produced non-finite or exploding positions or energies."""


#: a coordinate beyond this (nm) means the integration exploded, even if it is still finite
EXPLODED_NM = 1.0e4


def choose_platform(name: str, n_particles: int) -> openmm.Platform:
    """An OpenMM platform by name; "auto" picks Reference for tiny systems, else the fastest."""
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


class Walker:
    """One Langevin MD walker with a RAVE bias force that is updated between rounds.

    Parameters
    ----------
    system : openmm.System
        Copied; the original is not modified.
    positions : np.ndarray, shape=(n_particles, 3), nm (or an OpenMM Quantity)
    features : sequence of rave.md.features.Feature
        The order parameters recorded at every frame and biased through chi.
    temperature_K, timestep_ps, friction_per_ps : float (or Quantity)
    seed : int
        Seeds the integrator and the initial velocities.
    platform : str
        "auto", "Reference", "CPU", "CUDA" or "OpenCL".
    with_bias : bool
        Add the bias force (False only for an unbiased reference run, e.g. a benchmark).
    force_group : int
        Force group of the bias; must be unused by the system's own forces.
    cpu_threads : int, optional
        Threads of the CPU platform (default: OpenMM's choice, all cores); set it when several
        walkers share a machine.
    opes : dict, optional
        :meth:`rave.md.opes.OPESSpec.to_dict`: OPES along the spec's chi on top of the static
        bias (an adaptive round); each frame's bias energy is then the static bias plus the
        OPES bias in force when the frame was recorded.
    opes_state : dict, optional
        An ``OPES.getState()`` snapshot to continue (with ``opes``).
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
        force_group: int = DEFAULT_FORCE_GROUP,
        cpu_threads: int | None = None,
        opes: dict | None = None,
        opes_state: dict | None = None,
    ) -> None:
        self.features = list(features)
        self.temperature_K = _md_value(temperature_K, unit.kelvin)
        self.timestep_ps = _md_value(timestep_ps, unit.picosecond)
        self.friction_per_ps = _md_value(friction_per_ps, unit.picosecond**-1)
        for name in ("temperature_K", "timestep_ps", "friction_per_ps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0. You supplied {getattr(self, name)}")
        self.force_group = force_group
        system = openmm.XmlSerializer.clone(system)
        used = {system.getForce(i).getForceGroup() for i in range(system.getNumForces())}
        if with_bias and force_group in used:
            raise ValueError(
                f"force group {force_group} is used by the system's own forces; choose another "
                f"bias force_group (0..31) that is free"
            )
        particles = sorted({p for f in self.features for p in f.particles})
        if particles and particles[-1] >= system.getNumParticles():
            raise ValueError(
                f"the features use particle {particles[-1]} but the system has "
                f"{system.getNumParticles()} particles"
            )
        self._n_particles = system.getNumParticles()
        self._bias_force = None
        self.bias: Bias | None = None
        if with_bias:
            zero = Bias(np.zeros(len(self.features)), BiasGrid.zero())
            self._bias_force = bias_force(self.features, zero, force_group)
            system.addForce(self._bias_force)
            self.bias = zero
        self.opes = None
        if opes is not None:
            from .opes import OPESBias, OPESSpec

            if not with_bias:
                raise ValueError("an OPES walker needs with_bias=True")
            self.opes = OPESBias(system, self.features, OPESSpec.from_dict(opes),
                                 self.temperature_K, opes_state)
        self.system = system
        self.integrator = openmm.LangevinMiddleIntegrator(
            self.temperature_K, self.friction_per_ps, self.timestep_ps
        )
        self.integrator.setRandomNumberSeed(int(seed) % 2**31)
        self.platform = choose_platform(platform, system.getNumParticles())
        properties = {}
        if cpu_threads is not None and self.platform.getName() == "CPU":
            properties["Threads"] = str(int(cpu_threads))
        self.context = openmm.Context(system, self.integrator, self.platform, properties)
        if box_vectors is not None:
            self.context.setPeriodicBoxVectors(*box_vectors)
        positions = (positions.value_in_unit(unit.nanometer) if unit.is_quantity(positions)
                     else np.asarray(positions, dtype=float))
        self.context.setPositions(positions)
        self.context.setVelocitiesToTemperature(self.temperature_K, int(seed) % 2**31)
        self._periodic = system.usesPeriodicBoundaryConditions()
        self.time_ps = 0.0
        if self.opes is not None:
            self.opes.attach(self.context, self.integrator, {force_group})

    @property
    def kT(self) -> float:
        """Thermal energy at the walker's temperature, kJ/mol."""
        return kT_kjmol(self.temperature_K)

    def set_bias(self, bias: Bias) -> None:
        """Apply a new static bias (in place: no new Context)."""
        if self._bias_force is None:
            raise RuntimeError("this walker was made with with_bias=False")
        update_bias_force(self._bias_force, self.context, bias)
        self.bias = bias

    def set_timestep(self, timestep_ps: float) -> None:
        """Change the integrator's time step (ps), e.g. after a blow-up."""
        self.timestep_ps = _md_value(timestep_ps, unit.picosecond)
        self.integrator.setStepSize(self.timestep_ps)

    def run(self, n_steps: int, report_interval: int, progress=None,
            snapshot_every: int | None = None) -> Frames:
        """Run ``n_steps`` steps and record a frame every ``report_interval`` steps.

        Parameters
        ----------
        progress : callable(n_frames_done) or None
            Called after each block of frames (for progress bars).
        snapshot_every : int, optional
            Also keep the positions of every ``snapshot_every``-th frame (frames 0, k, 2k, ...).

        Raises
        ------
        MDError
            Non-finite or exploding positions, or non-finite bias energy, or an OpenMM error
            during stepping; the message gives the time and what to do. The walker's state is
            then unusable until :meth:`set_state`.
        """
        if report_interval < 1 or n_steps < report_interval:
            raise ValueError(
                f"n_steps ({n_steps}) must be >= report_interval ({report_interval}) >= 1"
            )
        n_frames = n_steps // report_interval
        features = np.empty((n_frames, len(self.features)))
        bias = np.zeros(n_frames)
        times = np.empty(n_frames)
        groups = {self.force_group} if self._bias_force is not None else set()
        offset = 0.0
        if self.opes is not None:
            groups, offset = self.opes.groups, self.opes.energy_offset_kjmol
        frames_per_block = max(1, min(512, _BLOCK_FLOATS // (3 * self._n_particles), n_frames))
        block = np.empty((frames_per_block, self._n_particles, 3))
        boxes = np.empty((len(block), 3, 3)) if self._periodic else None
        snap_frames = (np.arange(0, n_frames, snapshot_every, dtype=np.int64)
                       if snapshot_every else np.zeros(0, dtype=np.int64))
        snapshots = np.empty((len(snap_frames), self._n_particles, 3), dtype=np.float32)
        start = 0
        for frame in range(n_frames):
            try:
                if self.opes is None:
                    self.integrator.step(report_interval)
                    state = self.context.getState(
                        getPositions=True, getEnergy=bool(groups), groups=groups or -1
                    )
                else:
                    state = self.opes.advance(report_interval)
            except openmm.OpenMMException as error:
                raise MDError(
                    f"OpenMM failed at t = {self.time_ps:.3f} ps ({error}). Lower "
                    f"sampling.timestep (now {self.timestep_ps} ps) or check the system"
                ) from error
            self.time_ps += report_interval * self.timestep_ps
            slot = frame - start
            block[slot] = state.getPositions(asNumpy=True)._value
            if boxes is not None:
                boxes[slot] = state.getPeriodicBoxVectors(asNumpy=True)._value
            if groups:
                bias[frame] = state.getPotentialEnergy()._value - offset
            times[frame] = self.time_ps
            if slot == len(block) - 1 or frame == n_frames - 1:
                n = slot + 1
                values = evaluate_features(self.features, block[:n],
                                           None if boxes is None else boxes[:n])
                features[start:frame + 1] = values
                with np.errstate(invalid="ignore"):
                    exploded = ~(np.abs(block[:n]).max(axis=(1, 2)) < EXPLODED_NM)
                bad = (~np.isfinite(values).all(axis=1) | ~np.isfinite(bias[start:frame + 1])
                       | exploded)
                if bad.any():
                    t = times[start + int(np.argmax(bad))]
                    raise MDError(
                        f"the MD blew up: non-finite or exploding positions or bias energy at "
                        f"t = {t:.3f} ps. Lower sampling.timestep (now {self.timestep_ps} ps) or "
                        f"check the system's energy near the visited region"
                    )
                take = (snap_frames >= start) & (snap_frames <= frame)
                snapshots[take] = block[snap_frames[take] - start]
                start = frame + 1
                if progress is not None:
                    progress(n)
        return Frames(features, bias, times, snapshots, snap_frames)

    def get_state(self) -> dict:
        """Positions (nm), velocities (nm/ps), box vectors (nm, periodic systems) and time (ps)
        to continue later."""
        state = self.context.getState(getPositions=True, getVelocities=True)
        out = {
            "positions": state.getPositions(asNumpy=True)._value.copy(),
            "velocities": state.getVelocities(asNumpy=True)._value.copy(),
            "time_ps": self.time_ps,
        }
        if self._periodic:
            out["box_vectors"] = state.getPeriodicBoxVectors(asNumpy=True)._value.copy()
        if self.opes is not None:
            out["opes"] = self.opes.get_state()
        return out

    def set_state(self, state: dict) -> None:
        """Restore :meth:`get_state` output (velocities optional: drawn anew if absent)."""
        if state.get("box_vectors") is not None:
            self.context.setPeriodicBoxVectors(*np.asarray(state["box_vectors"]))
        self.context.setPositions(np.asarray(state["positions"]))
        if state.get("velocities") is not None:
            self.context.setVelocities(np.asarray(state["velocities"]))
        self.time_ps = float(state["time_ps"])
        if self.opes is not None and state.get("opes") is not None:
            self.opes.set_state(state["opes"])
