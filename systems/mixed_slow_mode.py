"""Three particles in a plane whose one slow mode mixes all six coordinates.

The model in which nobody knows the CV: the order parameters are the six in-plane
coordinates q = (x1, y1, x2, y2, x3, y3) (nm) of three non-interacting particles, and

    U(q) = kT [B ((s/s0)^2 - 1)^2 + (A/2) (s/s0)] + sum_j (k_j/2) g_j^2
         + (kz/2) (z1^2 + z2^2 + z3^2),
    s = u . q,    g_j = v_j . q  (j = 1..5),

with u a unit vector in R^6 (the slow direction), v_1..v_5 an orthonormal basis of its
complement and k_j their stiffnesses. The only barrier is along u; every other direction of
the plane is harmonic, and z is confined as in the 2-D model potentials.

Defaults (:data:`DEFAULT_SLOW_DIRECTION`, :data:`DEFAULT_STIFFNESSES_KJMOL_NM2`):

* u = (0.515, -0.45, 0.40, 0.35, -0.33, 0.38) / 1.0016 = (0.5141, -0.4492, 0.3993, 0.3494,
  -0.3294, 0.3793): every coordinate takes part; the best single coordinate, x1, is 59.06
  degrees off u (cos = 0.514), the worst, x3 (the fifth entry), 70.77 degrees.
* v_j = H e_(j+1), the columns 2..6 of the Householder reflection H = I - 2 w w^T / (w . w),
  w = u - e_1, which maps e_1 to u (:func:`orthonormal_complement`): closed form, no random
  numbers. Row 1 of H is u itself, so x1's share of each v_j is u_(j+1).
* k = (25, 50, 100, 200, 400) kJ/mol/nm^2 (10, 20, 40, 80, 160 kT/nm^2 at 300 K; std of g_j
  0.32 to 0.08 nm), spread around the curvature of the double well at its minima,
  8 B kT / s0^2 = 72 kT/nm^2 = 180 kJ/mol/nm^2 at B = 9. The soft ones make a single
  coordinate a blurred view of s: at 300 K the exact F along x1 has a barrier of only 2.2 kT
  (0.7 to 1.6 kT along the other five), against ~9 kT along u (re-derived in the tests).
* B = ``barrier_kT`` = 9 (the barrier of the symmetric part), A = ``asymmetry_kT`` = 1 (the
  wells differ by about A kT; the well at s < 0 is the lower one, and the start), s0 = 1 nm.
  The barrier seen from the lower well is about B + A/2, from the upper one B - A/2.

Stiffnesses are in kJ/mol/nm^2 (not scaled by kT), so the widths of the harmonic directions
change with temperature while the double well along u stays B kT high.

Exact free energy along any unit direction c: chi = c . q = a s + sum_j b_j g_j with a = c . u
and b_j = c . v_j. Under exp(-U/kT), s and the g_j are independent: s has the density
exp(-U_dw(s)/kT) and g_j is Gaussian with variance kT/k_j. So chi is a s plus a Gaussian of
variance sigma^2 = sum_j b_j^2 kT/k_j, and

    P(chi) = integral ds exp(-U_dw(s)/kT) N(chi - a s; 0, sigma^2),

a 1-D convolution, evaluated by quadrature over s in log space
(:meth:`MixedSlowModePotential.exact_free_energy`). Limits: c = +-u gives sigma = 0 and
F(chi) = U_dw(+-chi)/kT; c orthogonal to u gives a = 0 and a Gaussian of variance sigma^2.

Dynamics defaults as for the 2-D model potentials: 1 amu per particle, friction 25 /ps, time
step 5 fs (omega dt = 0.1 for the stiffest direction at 1 amu).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import openmm
import scipy.optimize
from openmm import app
from openmm import unit as u
from scipy.special import logsumexp

from rave.units import kT_kjmol

from .model_potentials import (
    DEFAULT_FRICTION_PER_PS,
    DEFAULT_MASS_AMU,
    DEFAULT_TIMESTEP_PS,
    DEFAULT_Z_FORCE_CONSTANT,
    ModelSystem,
    _is_number,
    _positive,
    _temperature,
    check_barrier,
    model_simulation_system,
    potential_from_config,
)
from .registry import SimulationSystem, SystemKind

if TYPE_CHECKING:  # pragma: no cover
    from rave.campaign.config import Config

__all__ = [
    "MixedSlowModePotential",
    "mixed_slow_mode",
    "orthonormal_complement",
    "COORDINATE_NAMES",
    "DEFAULT_SLOW_DIRECTION",
    "DEFAULT_STIFFNESSES_KJMOL_NM2",
]

#: names of the six order parameters, in the order of q
COORDINATE_NAMES = ("x1", "y1", "x2", "y2", "x3", "y3")
#: slow direction before normalisation (see the module docstring)
DEFAULT_SLOW_DIRECTION = (0.515, -0.45, 0.40, 0.35, -0.33, 0.38)
#: stiffness of each direction v_1..v_5 of the complement, kJ/mol/nm^2
DEFAULT_STIFFNESSES_KJMOL_NM2 = (25.0, 50.0, 100.0, 200.0, 400.0)
#: below this width sigma/|a| (nm along s) of the Gaussian blur, exact F(chi) uses U_dw(chi/a)
#: directly; the neglected convolution changes F by about width^2 U_dw''/2 < 1e-4 kT
_DIRECT_WIDTH_NM = 1e-3
#: s is integrated over the region where U_dw is within this of its minimum, kT
_S_CEILING_KT = 60.0

_N = len(COORDINATE_NAMES)


def _vector(value: Any, length: int, name: str, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (length,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be {length} finite numbers ({what}). You supplied {value!r}")
    return arr


def _unit(value: Any, name: str) -> np.ndarray:
    arr = _vector(value, _N, name, "a direction in the coordinates x1, y1, x2, y2, x3, y3")
    norm = float(np.linalg.norm(arr))
    if norm == 0:
        raise ValueError(f"{name} must be a non-zero vector. You supplied {value!r}")
    return arr / norm


def orthonormal_complement(direction: Sequence[float]) -> np.ndarray:
    """An orthonormal basis of the complement of a unit vector, by a Householder reflection.

    H = I - 2 w w^T / (w . w) with w = direction - e_1 maps e_1 to ``direction``; its other
    columns are orthonormal and orthogonal to it (if ``direction`` is e_1, H = I).

    Raises
    ------
    ValueError
        When ``c`` is not a finite nonzero 1-D vector of at least 2 components.
    """
    c = np.asarray(direction, dtype=float)
    if c.ndim != 1 or c.size < 2 or not np.all(np.isfinite(c)) or not np.linalg.norm(c) > 0:
        raise ValueError(
            f"direction must be a finite non-zero vector of length >= 2. You supplied {direction!r}"
        )
    c = c / np.linalg.norm(c)
    w = c.copy()
    w[0] -= 1.0
    ww = float(w @ w)
    h = np.eye(c.size) if ww < 1e-30 else np.eye(c.size) - 2.0 * np.outer(w, w) / ww
    return h[:, 1:].T.copy()


@dataclass(frozen=True)
class MixedSlowModePotential:
    """Three particles in a plane with one slow mode along u in R^6 (see the module docstring).

    Attributes
    ----------
    temperature_K : float
        Temperature, K.
    barrier_kT : float
        B, barrier of the symmetric double well along u, kT (> 0).
    asymmetry_kT : float
        A: the well at s < 0 is lower by about A kT (finite; 0 for a symmetric well).
    well_nm : float
        s0: the wells are near s = -+s0, nm (> 0).
    slow_direction : tuple[float, ...], shape=(6,)
        u, unit vector (normalised on construction).
    stiffnesses_kjmol_nm2 : tuple[float, ...], shape=(5,)
        k_j of the directions v_j of :attr:`complement`, kJ/mol/nm^2 (> 0).
    mass_amu, friction_per_ps, timestep_ps : float
        Langevin dynamics defaults (per particle mass).
    name : str
        "mixed_slow_mode".
    complement : np.ndarray, shape=(5, 6)
        v_1..v_5 (derived: :func:`orthonormal_complement` of u).
    start : tuple[float, ...], shape=(6,)
        q at the minimum of the lower well (derived), nm.
    minima : np.ndarray, shape=(2, 6)
        q at the two minima, lower well (s < 0) first (derived), nm.

    Raises
    ------
    ValueError
        When ``barrier_kT`` or ``well_nm`` is not a finite number > 0,
        ``asymmetry_kT`` is not a finite number, or a stiffness is not > 0.
    """

    temperature_K: float = 300.0
    barrier_kT: float = 9.0
    asymmetry_kT: float = 1.0
    well_nm: float = 1.0
    slow_direction: tuple[float, ...] = DEFAULT_SLOW_DIRECTION
    stiffnesses_kjmol_nm2: tuple[float, ...] = DEFAULT_STIFFNESSES_KJMOL_NM2
    mass_amu: float = DEFAULT_MASS_AMU
    friction_per_ps: float = DEFAULT_FRICTION_PER_PS
    timestep_ps: float = DEFAULT_TIMESTEP_PS
    name: str = "mixed_slow_mode"
    complement: np.ndarray = field(init=False, repr=False, compare=False)
    start: tuple[float, ...] = field(init=False, compare=False)
    minima: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "temperature_K", _temperature(self.temperature_K))
        for key in ("barrier_kT", "well_nm"):
            value = getattr(self, key)
            if not _is_number(value) or not (math.isfinite(value) and value > 0):
                raise ValueError(f"{key} must be a finite number > 0. You supplied {value!r}")
            set_(self, key, float(value))
        if not _is_number(self.asymmetry_kT) or not math.isfinite(self.asymmetry_kT):
            raise ValueError(
                f"asymmetry_kT must be a finite number. You supplied {self.asymmetry_kT!r}"
            )
        set_(self, "asymmetry_kT", float(self.asymmetry_kT))
        direction = _unit(self.slow_direction, "slow_direction")
        set_(self, "slow_direction", tuple(float(c) for c in direction))
        k = _vector(
            self.stiffnesses_kjmol_nm2,
            _N - 1,
            "stiffnesses_kjmol_nm2",
            "force constants in kJ/mol/nm^2 of the directions orthogonal to slow_direction",
        )
        if not np.all(k > 0):
            raise ValueError(
                f"stiffnesses_kjmol_nm2 must all be > 0. You supplied {self.stiffnesses_kjmol_nm2}"
            )
        set_(self, "stiffnesses_kjmol_nm2", tuple(float(x) for x in k))
        set_(self, "mass_amu", _positive(self.mass_amu, u.dalton, "mass_amu", "a mass in amu"))
        set_(
            self,
            "friction_per_ps",
            _positive(self.friction_per_ps, u.picosecond**-1, "friction_per_ps", "a rate in 1/ps"),
        )
        set_(self, "timestep_ps", _positive(self.timestep_ps, u.picosecond, "timestep_ps", "ps"))
        set_(self, "complement", orthonormal_complement(direction))
        wells = [self._well_minimum(sign) for sign in (-1.0, 1.0)]
        minima = np.array([s * direction for s in wells])
        if self.double_well_kT(wells[1]) < self.double_well_kT(wells[0]):
            minima = minima[::-1].copy()
        set_(self, "minima", minima)
        set_(self, "start", tuple(float(x) for x in minima[0]))

    # ---------------------------------------------------------------------------- properties
    @property
    def kT(self) -> float:
        """Thermal energy R T, kJ/mol."""
        return kT_kjmol(self.temperature_K)

    @property
    def naive_index(self) -> int:
        """Index of the single coordinate most aligned with u (largest ``abs(u_i)``)."""
        return int(np.argmax(np.abs(self.slow_direction)))

    @property
    def naive_direction(self) -> np.ndarray:
        """Unit vector of that coordinate, shape (6,)."""
        e = np.zeros(_N)
        e[self.naive_index] = 1.0
        return e

    @property
    def naive_angle_deg(self) -> float:
        """Angle between u and the best single coordinate, degrees."""
        return math.degrees(math.acos(min(1.0, float(np.max(np.abs(self.slow_direction))))))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the six order parameters (x1, y1, x2, y2, x3, y3)."""
        return COORDINATE_NAMES

    # ---------------------------------------------------------------------------- energies
    def double_well_kT(self, s: Any) -> np.ndarray:
        """U_dw(s)/kT = B ((s/s0)^2 - 1)^2 + (A/2)(s/s0).

        Parameters
        ----------
        s : array_like, dtype=float
            Coordinate along u, nm.

        Returns
        -------
        np.ndarray, shape=s.shape, dtype=float
            Dimensionless (kT units).
        """
        r = np.asarray(s, dtype=float) / self.well_nm
        return self.barrier_kT * (r * r - 1.0) ** 2 + 0.5 * self.asymmetry_kT * r

    def energy(self, q: Any) -> np.ndarray:
        """In-plane potential energy U(q) from the factorised form (no z term).

        Parameters
        ----------
        q : array_like, shape=(..., 6), dtype=float
            Coordinates (x1, y1, x2, y2, x3, y3), nm.

        Returns
        -------
        np.ndarray, shape=q.shape[:-1], dtype=float
            U in kJ/mol.

        Raises
        ------
        ValueError
            When the last axis of ``q`` is not of length 6.
        """
        q = np.asarray(q, dtype=float)
        if q.shape[-1:] != (_N,):
            raise ValueError(f"q must have shape (..., 6). You supplied shape {q.shape}")
        s = q @ np.asarray(self.slow_direction)
        g = q @ self.complement.T
        k = np.asarray(self.stiffnesses_kjmol_nm2)
        return self.kT * self.double_well_kT(s) + 0.5 * np.sum(k * g * g, axis=-1)

    def _well_minimum(self, sign: float) -> float:
        s0 = self.well_nm
        result = scipy.optimize.minimize_scalar(
            lambda s: float(self.double_well_kT(s)),
            bounds=(0.0, 2.0 * s0) if sign > 0 else (-2.0 * s0, 0.0),
            method="bounded",
            options={"xatol": 1e-10},
        )
        return float(result.x)

    def expression(self, z_force_constant: float = DEFAULT_Z_FORCE_CONSTANT) -> str:
        """The OpenMM energy expression (kJ/mol) of particles 1-3 for a CustomCompoundBondForce.

        Parameters
        ----------
        z_force_constant : float
            kz of 0.5 kz (z1^2 + z2^2 + z3^2), kJ/mol/nm^2.

        Returns
        -------
        str
            Lepton expression of x1, y1, z1, x2, y2, z2, x3, y3, z3.
        """

        def linear(vector: np.ndarray) -> str:
            return "+".join(
                f"({float(c)!r})*{n}" for c, n in zip(vector, COORDINATE_NAMES, strict=True)
            )

        kT, s0 = self.kT, self.well_nm
        terms = [
            f"{kT!r}*({self.barrier_kT!r}*((s/{s0!r})^2-1)^2+{0.5 * self.asymmetry_kT!r}*s/{s0!r})"
        ]
        terms += [f"{0.5 * k!r}*g{j}^2" for j, k in enumerate(self.stiffnesses_kjmol_nm2, 1)]
        terms.append(f"{0.5 * float(z_force_constant)!r}*(z1^2+z2^2+z3^2)")
        definitions = [f"s = {linear(np.asarray(self.slow_direction))}"]
        definitions += [f"g{j} = {linear(v)}" for j, v in enumerate(self.complement, 1)]
        return "+".join(terms) + "; " + "; ".join(definitions)

    def build(self, z_force_constant: float | u.Quantity = DEFAULT_Z_FORCE_CONSTANT) -> ModelSystem:
        """The OpenMM system: three particles, one CustomCompoundBondForce.

        Parameters
        ----------
        z_force_constant : float or openmm.unit.Quantity
            kz of the confining term 0.5 kz z^2 of each particle, kJ/mol/nm^2.

        Returns
        -------
        ModelSystem
            System (no box, no constraints, no CMMotionRemover), topology of three atoms,
            start positions (3, 3) nm (z = 0) and the features x1, y1, x2, y2, x3, y3
            (``rave.md.features.Position``).
        """
        from rave.md.features import Position

        kz = _positive(
            z_force_constant,
            u.kilojoule_per_mole / u.nanometer**2,
            "z_force_constant",
            "a force constant in kJ/mol/nm^2",
        )
        system = openmm.System()
        for _ in range(3):
            system.addParticle(self.mass_amu)
        force = openmm.CustomCompoundBondForce(3, self.expression(kz))
        force.addBond([0, 1, 2], [])
        force.setName("model_potential")
        system.addForce(force)
        topology = app.Topology()
        chain = topology.addChain()
        residue = topology.addResidue("MOD", chain)
        for i in range(3):
            topology.addAtom(f"P{i + 1}", None, residue)
        positions = np.zeros((3, 3))
        positions[:, :2] = np.asarray(self.start).reshape(3, 2)
        features = [
            Position(i // 2, "xy"[i % 2], name=name) for i, name in enumerate(COORDINATE_NAMES)
        ]
        return ModelSystem(system=system, topology=topology, positions=positions, features=features)

    # ---------------------------------------------------------------------------- exact F
    def projection(self, coefficients: Sequence[float]) -> tuple[float, float]:
        """How chi = c . q (c normalised) splits into the slow mode and a Gaussian.

        Parameters
        ----------
        coefficients : Sequence[float], shape=(6,)
            Direction c (normalised here; non-zero).

        Returns
        -------
        a : float
            c . u (dimensionless).
        sigma_nm : float
            Standard deviation of sum_j (c . v_j) g_j, sqrt(sum_j (c . v_j)^2 kT / k_j), nm.
        """
        c = _unit(coefficients, "coefficients")
        a = float(c @ np.asarray(self.slow_direction))
        b = self.complement @ c
        variance = float(np.sum(b * b * self.kT / np.asarray(self.stiffnesses_kjmol_nm2)))
        return a, math.sqrt(variance)

    def s_range(self) -> tuple[float, float]:
        """Range of s where U_dw is within 60 kT of its minimum, nm.

        Returns
        -------
        s_min, s_max : float
            The range, nm.
        """
        floor = float(self.double_well_kT(self.minima[0] @ np.asarray(self.slow_direction)))
        s0 = self.well_nm

        def edge(sign: float) -> float:
            hi = 2.0 * s0
            while self.double_well_kT(sign * hi) - floor < _S_CEILING_KT:
                hi *= 2.0
            return float(
                scipy.optimize.brentq(
                    lambda s: float(self.double_well_kT(sign * s)) - floor - _S_CEILING_KT,
                    s0,
                    hi,
                )
            )

        return -edge(-1.0), edge(1.0)

    def chi_range(self, coefficients: Sequence[float], n_sigma: float = 6.0) -> tuple[float, float]:
        """Range of chi = c . q holding all but a negligible part of the probability, nm.

        Parameters
        ----------
        coefficients : Sequence[float], shape=(6,)
            Direction c (normalised here).
        n_sigma : float
            Gaussian half-width added at both ends, in units of sigma.

        Returns
        -------
        (lo, hi) : tuple[float, float]
            a s over :meth:`s_range`, widened by ``n_sigma`` sigma, nm.
        """
        a, sigma = self.projection(coefficients)
        s_lo, s_hi = self.s_range()
        ends = sorted((a * s_lo, a * s_hi))
        return ends[0] - n_sigma * sigma, ends[1] + n_sigma * sigma

    def exact_free_energy(
        self, coefficients: Sequence[float], chi: Any, spacing_nm: float = 0.002
    ) -> np.ndarray:
        """Exact free energy along chi = c . q (c normalised), in units of kT.

        F(chi)/kT = -ln integral ds exp(-U_dw(s)/kT) N(chi - a s; 0, sigma^2) with
        (a, sigma) from :meth:`projection`, by the trapezoid rule over s on :meth:`s_range`
        (spacing min(``spacing_nm``, sigma/(4 abs(a)))) in log space, shifted to minimum 0 over
        ``chi``. When sigma/abs(a) < 1e-3 nm, F = U_dw(chi/a)/kT (error < 1e-4 kT); when
        a = 0, F = chi^2 / (2 sigma^2).

        Parameters
        ----------
        coefficients : Sequence[float], shape=(6,)
            Direction c in (x1, y1, x2, y2, x3, y3) (normalised here; non-zero).
        chi : array_like, dtype=float
            Values of the coordinate, nm.
        spacing_nm : float
            Largest quadrature spacing along s, nm (> 0).

        Returns
        -------
        free_energy : np.ndarray, shape=chi.shape, dtype=float
            F(chi)/kT (dimensionless), minimum 0 over ``chi``.

        Raises
        ------
        ValueError
            When ``chi`` is not finite, ``spacing_nm`` is not a number > 0, or
            ``coefficients`` is not a nonzero vector.
        """
        chi_arr = np.asarray(chi, dtype=float)
        if not np.all(np.isfinite(chi_arr)):
            raise ValueError("chi must contain finite values only")
        if not (_is_number(spacing_nm) and spacing_nm > 0):
            raise ValueError(f"spacing_nm must be a number > 0. You supplied {spacing_nm!r}")
        a, sigma = self.projection(coefficients)
        flat = chi_arr.ravel()
        if abs(a) < 1e-12:
            out = flat**2 / (2.0 * sigma**2)
        elif sigma / abs(a) < _DIRECT_WIDTH_NM:
            out = self.double_well_kT(flat / a)
        else:
            s_lo, s_hi = self.s_range()
            ds = min(float(spacing_nm), sigma / abs(a) / 4.0)
            n = int(math.ceil((s_hi - s_lo) / ds)) + 1
            s = np.linspace(s_lo, s_hi, n)
            log_w = -self.double_well_kT(s) + math.log(s[1] - s[0])
            log_w[[0, -1]] -= math.log(2.0)
            out = np.empty(flat.shape)
            chunk = max(1, 4_000_000 // n)
            for i in range(0, flat.size, chunk):
                d = flat[i : i + chunk, None] - a * s[None, :]
                out[i : i + chunk] = -logsumexp(log_w[None, :] - d * d / (2.0 * sigma**2), axis=1)
        if out.size:
            out = out - out.min()
        return out.reshape(chi_arr.shape)

    def exact_free_energy_kjmol(
        self, coefficients: Sequence[float], chi: Any, **kwargs: Any
    ) -> np.ndarray:
        """:meth:`exact_free_energy` in kJ/mol (F, not F/kT); same arguments.

        Parameters
        ----------
        coefficients : Sequence[float], shape=(6,)
            Direction c in (x1, y1, x2, y2, x3, y3) (normalised here; non-zero).
        chi : array_like, dtype=float
            Values of the coordinate, nm.
        **kwargs
            ``spacing_nm`` of :meth:`exact_free_energy`.

        Returns
        -------
        np.ndarray, shape=chi.shape, dtype=float
            F(chi) in kJ/mol, minimum 0 over ``chi``.
        """
        return self.exact_free_energy(coefficients, chi, **kwargs) * self.kT

    def sample(self, n: int, seed: int | np.random.Generator) -> np.ndarray:
        """Independent configurations q drawn exactly from exp(-U/kT) (the factorised form).

        s by inverse-CDF sampling of exp(-U_dw/kT) on a 2e-4 nm grid over :meth:`s_range`
        (linear interpolation of the CDF), g_j ~ N(0, kT/k_j); q = s u + sum_j g_j v_j.

        Parameters
        ----------
        n : int
            Number of samples (>= 1).
        seed : int or numpy.random.Generator
            Seeds the draw (``numpy.random.default_rng(seed)``).

        Returns
        -------
        np.ndarray, shape=(n, 6), dtype=float
            q, nm.

        Raises
        ------
        ValueError
            When ``n`` is not an integer >= 1.
        """
        if not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be an integer >= 1. You supplied {n!r}")
        rng = np.random.default_rng(seed)
        s_lo, s_hi = self.s_range()
        grid = np.linspace(s_lo, s_hi, int(math.ceil((s_hi - s_lo) / 2e-4)) + 1)
        density = np.exp(-(self.double_well_kT(grid) - self.double_well_kT(grid).min()))
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]))])
        s = np.interp(rng.uniform(0.0, cdf[-1], n), cdf, grid)
        std = np.sqrt(self.kT / np.asarray(self.stiffnesses_kjmol_nm2))
        g = rng.normal(size=(n, _N - 1)) * std
        return s[:, None] * np.asarray(self.slow_direction)[None, :] + g @ self.complement


def mixed_slow_mode(
    temperature_K: float | u.Quantity = 300.0,
    barrier_kT: float = 9.0,
    asymmetry_kT: float = 1.0,
    well_nm: float = 1.0,
    slow_direction: Sequence[float] = DEFAULT_SLOW_DIRECTION,
    stiffnesses_kjmol_nm2: Sequence[float] = DEFAULT_STIFFNESSES_KJMOL_NM2,
    *,
    mass_amu: float | None = None,
    friction_per_ps: float | None = None,
    timestep_ps: float | None = None,
) -> MixedSlowModePotential:
    """Three particles in a plane whose slow mode mixes all six coordinates."""
    return MixedSlowModePotential(
        temperature_K=temperature_K,
        barrier_kT=barrier_kT,
        asymmetry_kT=asymmetry_kT,
        well_nm=well_nm,
        slow_direction=slow_direction,
        stiffnesses_kjmol_nm2=stiffnesses_kjmol_nm2,
        mass_amu=DEFAULT_MASS_AMU if mass_amu is None else mass_amu,
        friction_per_ps=DEFAULT_FRICTION_PER_PS if friction_per_ps is None else friction_per_ps,
        timestep_ps=DEFAULT_TIMESTEP_PS if timestep_ps is None else timestep_ps,
    )


def _build(config: Config) -> SimulationSystem:
    return model_simulation_system(potential_from_config(config))


#: the [system] kind of this module (rave.systems.registry loads it by name)
SYSTEM_KINDS = (
    SystemKind("mixed_slow_mode", _build, keys=("barrier_kT",), check=check_barrier,
               potential=potential_from_config),
)
