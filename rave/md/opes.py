"""OPES along the learned RC inside a round (``[bias] method = "opes"``), through openmm-opes.

Within a round r >= 1 each walker runs ``openmm_opes.OPES`` (Invernizzi & Parrinello, not written
again here) on the round's RC chi = c . s, clamped to a grid [chi_min, chi_max] as the static bias
is (:func:`rave.md.bias_force.chi_force`). The bias then changes during the round: a kernel every
``pace`` steps.

How the time dependence is handled
----------------------------------
Between two kernel deposits the bias V_t is static, and a frame recorded at step t was sampled
under the bias in force when it was recorded (the frame is taken inside the integration call,
before a kernel deposited at the same step enters the bias). The frames of bias version t are
samples of exp(-beta (U + V_t)) / Z_t, and Z_t / Z_0 = exp(-beta c(t)) with
c(t) = -kT ln <exp(-beta V_t)>_unbiased, which OPES estimates from its reweighted density
(``OPES.getCt("current")``; before the first kernel V_t = -barrier everywhere and c = -barrier
exactly). The frames of the whole round, over its versions (and its walkers, which share the
same absolute scale through c), are then samples of the mixture

    exp(-beta U) sum_t n_t exp(-beta (V_t - c(t))) / (Z_0 N),

that is of one static bias, V_eff = -kT ln [sum_t n_t exp(-beta (V_t - c(t))) / N], with n_t
the frames recorded under version t and N = sum_t n_t. That holds only as far as OPES's c(t) is
right, and it is not while a region is still unexplored: OPES's density estimate does not know
it, so c(t) misses the region's weight by up to the barrier, and a mixture over the whole round
puts that error where the early bias was deepest.

So the versions are grouped into *blocks* of consecutive versions within which the bias moves by
at most ``delta_kT`` (1 kT) anywhere on the grid (:func:`rave.bias_grid.bias_blocks`); a block's
state
is the mixture of its own versions (c(t) only relates nearly equal biases), and every block is
one state of the MBAR over all rounds, which finds the blocks' normalisations from all frames,
as it does for static rounds. ``bias_applied.json`` of an
adaptive round lists the blocks (:func:`rave.learn.bias.adaptive_bias_dict`). Each frame keeps the
bias it felt, V_t(chi_t), read from OpenMM, checked against numpy's spline of its version's
grid.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..bias_grid import BiasGrid
from ..units import kT_kjmol
from .bias_force import chi_force

__all__ = ["OPESSpec", "OPESBias", "map_opes_state", "linear_map"]

#: keys of an ``OPES.getState()`` snapshot holding kernel positions / widths of each estimate
_KDE_PREFIXES = ("total_", "totalRW_", "self_", "kde_", "kdeRW_")


def linear_map(chi_old: np.ndarray, chi_new: np.ndarray) -> tuple[float, float]:
    """Least-squares chi_new ~ a chi_old + b over the same frames: how a bias along the old RC
    carries over to the new one (a = 1, b = 0 when the RC did not change).

    Raises ValueError: when the shapes differ, there are fewer than 2 frames, or ``chi_old`` has no
    spread.
    """
    chi_old = np.asarray(chi_old, dtype=float)
    chi_new = np.asarray(chi_new, dtype=float)
    if chi_old.shape != chi_new.shape or chi_old.size < 2 or not np.ptp(chi_old) > 0:
        raise ValueError("linear_map needs two equal-length chi series with a spread")
    a, b = np.polyfit(chi_old, chi_new, 1)
    return float(a), float(b)


def map_opes_state(state: dict, a: float, b: float) -> dict:
    """An ``OPES.getState()`` snapshot moved from chi to a chi + b: kernel centres and the
    running CV mean move, kernel widths scale by |a| and the running variance by a^2; weights
    and counts stay. Used to continue a round's OPES along the next round's RC.

    Raises ValueError: when ``a`` or ``b`` is not finite, or ``a == 0``.
    """
    if not (math.isfinite(a) and math.isfinite(b)) or a == 0:
        raise ValueError(f"the map chi -> a chi + b needs finite a != 0 and b. You supplied "
                         f"{a}, {b}")
    out = {}
    for key, value in state.items():
        if any(key == f"{p}positions" for p in _KDE_PREFIXES) or key == "sampleMean":
            value = np.asarray(value, dtype=float) * a + b
        elif any(key == f"{p}bandwidths" for p in _KDE_PREFIXES):
            value = np.asarray(value, dtype=float) * abs(a)
        elif key in ("totalVar_total", "var_total"):
            value = np.asarray(value, dtype=float) * a * a
        out[key] = value
    return out


@dataclass(frozen=True)
class OPESSpec:
    """What a walker needs to run OPES along the RC of a round (plain data, picklable).

    Raises ValueError: when ``chi_max <= chi_min`` or ``variance_pace`` does not divide ``pace``.
    """

    coefficients: tuple[float, ...]
    chi_min: float
    chi_max: float
    n_points: int
    barrier_kjmol: float
    pace: int
    variance_pace: int
    explore: bool = False
    block_kT: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "coefficients", tuple(float(c) for c in self.coefficients))
        if not self.chi_max > self.chi_min:
            raise ValueError(f"chi_max ({self.chi_max}) must be > chi_min ({self.chi_min})")
        if self.pace % self.variance_pace:
            raise ValueError(f"variance_pace ({self.variance_pace}) must divide pace "
                             f"({self.pace})")

    def to_dict(self) -> dict:
        """The spec as plain JSON-able data (what a WalkerTask carries)."""
        return asdict(self) | {"coefficients": list(self.coefficients)}

    @classmethod
    def from_dict(cls, data: dict) -> OPESSpec:
        """The spec from :meth:`to_dict` output.

        Raises ValueError: when ``chi_max <= chi_min`` or ``variance_pace`` does not divide
        ``pace``.
        """
        return cls(**data)


class _FrameVersions:
    """An OpenMM reporter that notes, at each frame, the version of the OPES bias in force.

    It reports at the frames of the walker's recorder (same interval, same first step), inside
    ``Simulation.step`` and so before a kernel deposited at that step (``OPES.step`` deposits
    after the Simulation's step returns).
    """

    def __init__(self, owner: OPESBias, interval: int, first_step: int) -> None:
        self.owner = owner
        self.interval = int(interval)
        self.first_step = int(first_step)

    def describeNextReport(self, simulation) -> dict:  # noqa: N802 - OpenMM's name
        steps = self.interval - (simulation.currentStep - self.first_step) % self.interval
        return {"steps": steps, "periodic": None, "include": []}

    def report(self, simulation, state) -> None:
        self.owner._count_frame()


class OPESBias:
    """OPES along chi in one walker: the force, its versions of the bias and their frames."""

    def __init__(self, system, features, spec: OPESSpec, temperature_K: float,
                 initial_state: dict | None = None) -> None:
        from openmm import app
        from openmm_opes import OPES

        self.spec = spec
        self.kT = kT_kjmol(temperature_K)
        grid = BiasGrid(spec.chi_min, spec.chi_max, np.zeros(spec.n_points))
        variable = app.BiasVariable(
            chi_force(features, spec.coefficients, spec.chi_min, spec.chi_max),
            spec.chi_min, spec.chi_max, grid.spacing * 4, gridWidth=spec.n_points,
        )
        owner = self

        class _Tracked(OPES):
            def updateContext(self, context) -> None:  # noqa: N802 - OPES's name
                super().updateContext(context)
                owner._new_version()

        self.opes = _Tracked(
            system, [variable], temperature_K, spec.barrier_kjmol, spec.pace,
            spec.variance_pace, exploreMode=bool(spec.explore),
        )
        if initial_state is not None:
            self.opes.setState(initial_state)
        self.force_group = self.opes._force.getForceGroup()
        self.values: list[np.ndarray] = []  # V_t on the grid, kJ/mol, per version
        self.ct: list[float] = []  # c(t), kJ/mol, per version
        self.counts: list[int] = []  # frames recorded under each version
        self.frame_versions: list[int] = []
        self._simulation = None

    def attach(self, simulation) -> None:
        """Use this ``app.Simulation`` (built from the System this OPES was added to)."""
        self._simulation = simulation
        self.opes.updateContext(simulation.context)

    def frame_reporter(self, interval: int) -> _FrameVersions:
        """An OpenMM reporter noting the bias version of each frame, for frames every
        ``interval`` steps from the Simulation's current step (the walker's recorder's).
        """
        return _FrameVersions(self, interval, self._simulation.currentStep)

    def _new_version(self) -> None:
        values = np.asarray(self.opes.getBias()._value, dtype=float).reshape(-1)
        if self.opes.getNumKernels() == 0:
            ct = -self.spec.barrier_kjmol  # V = -barrier everywhere: V - c = 0, unbiased
        else:
            ct = float(self.opes.getCt("current")._value)
            if not math.isfinite(ct):
                raise RuntimeError("OPES's c(t) is not finite; its density estimate is empty")
        self.values.append(values)
        self.ct.append(ct)
        self.counts.append(0)

    def _count_frame(self) -> None:
        version = len(self.values) - 1
        self.counts[version] += 1
        self.frame_versions.append(version)

    @property
    def energy_offset_kjmol(self) -> float:
        """OPES's table holds V + barrier; subtract this from the group energy to get V."""
        return self.spec.barrier_kjmol

    def frame_bias(self, chi: np.ndarray, first_frame: int = 0) -> np.ndarray:
        """numpy's V_t(chi) of frames ``first_frame..`` from the grid of the version each
        frame was recorded under (the check of OpenMM's energy), kJ/mol.
        """
        versions = np.asarray(self.frame_versions[first_frame:first_frame + len(chi)])
        out = np.empty(len(chi))
        for v in np.unique(versions):
            take = versions == v
            out[take] = BiasGrid(self.spec.chi_min, self.spec.chi_max, self.values[v])(chi[take])
        return out

    def frame_ct(self) -> np.ndarray:
        """c(t) of every frame recorded so far, kJ/mol."""
        return np.asarray(self.ct)[np.asarray(self.frame_versions, dtype=int)]

    def blocks(self, max_blocks: int = 32) -> list[tuple[np.ndarray, int]]:
        """The versions with frames grouped into MBAR states within ``spec.block_kT``
        (:func:`rave.bias_grid.bias_blocks`).
        """
        from ..bias_grid import bias_blocks

        return bias_blocks(np.asarray(self.values), np.asarray(self.ct),
                           np.asarray(self.counts), self.kT, self.spec.block_kT, max_blocks)

    def get_state(self) -> dict:
        """Everything needed to return here after a failed segment (see :meth:`set_state`)."""
        return {"opes": self.opes.getState(), "versions": len(self.values),
                "counts": list(self.counts), "frames": len(self.frame_versions),
                "step": self._simulation.currentStep}

    def set_state(self, state: dict) -> None:
        """Return to :meth:`get_state`: the kernels, versions and frames after it are dropped."""
        n = state["versions"]
        del self.values[n:], self.ct[n:]
        self.counts = list(state["counts"])
        del self.frame_versions[state["frames"]:]
        self._simulation.currentStep = state["step"]
        self.opes.setState(state["opes"])
        self.opes.updateContext(self._simulation.context)
