"""A bias along a linear reaction coordinate on a grid of chi, evaluated with numpy as OpenMM
evaluates it, and the grouping of an adaptive bias's versions into MBAR states.

OpenMM (:func:`rave.md.bias_force.bias_force`) evaluates the bias with a ``Continuous1DFunction``
(a natural cubic spline through the grid values) of the clamped argument ``max(chi_min,
min(chi_max, chi))``: outside the grid the energy stays at the edge value, it never falls to zero.
:class:`BiasGrid` evaluates the same spline with numpy, so the bias energy of every frame is known
without OpenMM.

Both the MD layer (:mod:`rave.md`, which applies a bias) and the learning layer
(:mod:`rave.learn.bias`, which builds one from reweighted frames) use these pieces; this module
imports neither.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.special import logsumexp

__all__ = ["Bias", "BiasGrid", "bias_blocks", "effective_log_sum"]

#: relative pull-in of the clamp bounds from the grid ends
_CLAMP_EPS = 1e-9


@dataclass(frozen=True)
class BiasGrid:
    """A bias on an evenly spaced grid of chi, evaluated as OpenMM does.

    Raises ValueError: when ``values_kjmol`` is not 1-D with at least 3 finite values, or
    ``chi_min``, ``chi_max`` are not finite with ``chi_max > chi_min``.
    """

    chi_min: float
    chi_max: float
    values_kjmol: np.ndarray

    def __post_init__(self) -> None:
        values = np.asarray(self.values_kjmol, dtype=float)
        if values.ndim != 1 or values.size < 3:
            raise ValueError(
                f"values_kjmol must be a 1-D array of at least 3 grid values. You supplied shape "
                f"{values.shape}"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError("values_kjmol must be finite everywhere; it holds NaN or inf")
        if not (math.isfinite(self.chi_min) and math.isfinite(self.chi_max)):
            raise ValueError(f"chi_min and chi_max must be finite. You supplied "
                             f"{self.chi_min}, {self.chi_max}")
        if not self.chi_max > self.chi_min:
            raise ValueError(
                f"chi_max must be > chi_min. You supplied chi_min={self.chi_min}, "
                f"chi_max={self.chi_max}"
            )
        values.setflags(write=False)
        object.__setattr__(self, "values_kjmol", values)
        object.__setattr__(self, "chi_min", float(self.chi_min))
        object.__setattr__(self, "chi_max", float(self.chi_max))
        spline = CubicSpline(self.grid, values, bc_type="natural")
        object.__setattr__(self, "_spline", spline)

    @classmethod
    def zero(cls, chi_min: float = -1.0, chi_max: float = 1.0, n_points: int = 3) -> BiasGrid:
        """A bias that is zero everywhere (the unbiased round)."""
        return cls(chi_min, chi_max, np.zeros(n_points))

    @property
    def grid(self) -> np.ndarray:
        """Grid points, shape (n_points,)."""
        return np.linspace(self.chi_min, self.chi_max, len(self.values_kjmol))

    @property
    def clamp_bounds(self) -> tuple[float, float]:
        """Where the argument is clamped: the grid ends pulled in by 1e-9 of the width, since
        OpenMM's spline refuses a point that rounding puts a hair past its last knot."""
        eps = _CLAMP_EPS * (self.chi_max - self.chi_min)
        return self.chi_min + eps, self.chi_max - eps

    @property
    def spacing(self) -> float:
        """Distance between grid points, units of chi."""
        return (self.chi_max - self.chi_min) / (len(self.values_kjmol) - 1)

    def __call__(self, chi: np.ndarray | float) -> np.ndarray:
        """Bias energy in kJ/mol at chi (any shape), argument clamped to the grid."""
        return self._spline(np.clip(np.asarray(chi, dtype=float), *self.clamp_bounds))

    def derivative(self, chi: np.ndarray | float) -> np.ndarray:
        """dV/dchi in kJ/mol per unit of chi; zero outside the grid, where V is held constant."""
        chi = np.asarray(chi, dtype=float)
        lo, hi = self.clamp_bounds
        return np.where((chi >= lo) & (chi <= hi), self._spline(np.clip(chi, lo, hi), 1), 0.0)

    def to_dict(self) -> dict:
        """The grid as JSON-able data (``bias.json``'s ``grid``)."""
        return {
            "chi_min": self.chi_min,
            "chi_max": self.chi_max,
            "values_kjmol": [float(v) for v in self.values_kjmol],
        }

    @classmethod
    def from_dict(cls, data: dict) -> BiasGrid:
        """The grid from :meth:`to_dict` output."""
        return cls(float(data["chi_min"]), float(data["chi_max"]),
                   np.asarray(data["values_kjmol"], dtype=float))


@dataclass(frozen=True)
class Bias:
    """A static RAVE bias: a grid in chi and the linear RC it applies to.

    Raises ValueError: when ``coefficients`` is empty or not finite.
    """

    coefficients: np.ndarray
    grid: BiasGrid

    def __post_init__(self) -> None:
        c = np.asarray(self.coefficients, dtype=float).reshape(-1)
        if c.size == 0 or not np.all(np.isfinite(c)):
            raise ValueError(f"coefficients must be a non-empty finite vector. You supplied {c}")
        c.setflags(write=False)
        object.__setattr__(self, "coefficients", c)

    def chi(self, features: np.ndarray) -> np.ndarray:
        """chi of each frame.

        Raises ValueError: when ``features`` is not 2-D with one column per coefficient.
        """
        features = np.asarray(features, dtype=float)
        if features.ndim != 2 or features.shape[1] != self.coefficients.size:
            raise ValueError(
                f"features must be shape (Any, {self.coefficients.size}). You supplied "
                f"{features.shape}"
            )
        return features @ self.coefficients

    def energy(self, features: np.ndarray) -> np.ndarray:
        """Bias energy of each frame in kJ/mol.

        Raises ValueError: when ``features`` is not 2-D with one column per coefficient.
        """
        return self.grid(self.chi(features))

    def to_dict(self) -> dict:
        """The bias as JSON-able data (the layout of ``bias.json``)."""
        return {"coefficients": [float(c) for c in self.coefficients],
                "grid": self.grid.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Bias:
        """The bias from :meth:`to_dict` output (extra keys, such as an adaptive round's
        ``states``, are ignored).
        """
        return cls(np.asarray(data["coefficients"], dtype=float), BiasGrid.from_dict(data["grid"]))



def effective_log_sum(values_kjmol: np.ndarray, ct_kjmol: np.ndarray, counts: np.ndarray,
                      kT: float) -> np.ndarray:
    """log sum_t n_t exp(-(V_t - c_t) / kT) on a grid: one walker's share of the effective bias
    of an adaptive round (see :mod:`rave.md.opes`).

    Raises ValueError: when the shapes do not match (one row of ``values_kjmol`` per entry of
    ``ct_kjmol`` and ``counts``), or a version with frames has values or c(t) that are not finite.
    """
    values = np.asarray(values_kjmol, dtype=float)
    ct = np.asarray(ct_kjmol, dtype=float).reshape(-1)
    counts = np.asarray(counts, dtype=float).reshape(-1)
    if values.ndim != 2 or values.shape[0] != ct.size or ct.size != counts.size:
        raise ValueError(
            f"values_kjmol must be (n_versions, n_points) with one c(t) and one count per "
            f"version. You supplied shapes {values.shape}, {ct.shape}, {counts.shape}"
        )
    used = counts > 0
    if not np.any(used):
        return np.full(values.shape[1], -np.inf)
    if not (np.all(np.isfinite(values[used])) and np.all(np.isfinite(ct[used]))):
        raise ValueError("the bias versions and c(t) must be finite")
    exponent = np.log(counts[used])[:, None] - (values[used] - ct[used, None]) / kT
    return logsumexp(exponent, axis=0)


def bias_blocks(values_kjmol: np.ndarray, ct_kjmol: np.ndarray, counts: np.ndarray, kT: float,
                delta_kT: float = 1.0, max_blocks: int = 32) -> list[tuple[np.ndarray, int]]:
    """Blocks of consecutive versions of an adaptive bias, each one state for MBAR.

    A block ends where the bias has moved more than ``delta_kT`` kT anywhere on the grid from the
    block's first version (``delta_kT`` doubles until there are at most ``max_blocks``). A block's
    state is the mixture of its versions, V_block = -kT ln [sum_t n_t exp(-(V_t - c_t)/kT) /
    n_block] (:func:`effective_log_sum`), so c(t) only relates versions that differ by about
    ``delta_kT``; MBAR finds the blocks' normalisations from all frames (:mod:`rave.md.opes`).
    ValueError for ``delta_kT`` not > 0, ``max_blocks < 1``, mismatched shapes or no frames.
    """
    values = np.asarray(values_kjmol, dtype=float)
    counts = np.asarray(counts, dtype=int).reshape(-1)
    if not delta_kT > 0 or max_blocks < 1:
        raise ValueError(f"delta_kT must be > 0 and max_blocks >= 1. You supplied {delta_kT}, "
                         f"{max_blocks}")
    if values.ndim != 2 or values.shape[0] != counts.size or counts.sum() < 1:
        raise ValueError(f"values_kjmol must be (n_versions, n_points) with one count per version "
                         f"and at least one frame. You supplied {values.shape}, {counts.shape}")
    while True:
        starts, first = [0], values[0]
        for t in range(1, len(values)):
            if np.max(np.abs(values[t] - first)) > delta_kT * kT:
                starts.append(t)
                first = values[t]
        bounds = [(a, b) for a, b in zip(starts, starts[1:] + [len(values)], strict=True)
                  if counts[a:b].sum() > 0]
        if len(bounds) <= max_blocks:
            break
        delta_kT *= 2.0
    blocks = []
    for a, b in bounds:
        n = int(counts[a:b].sum())
        log_sum = effective_log_sum(values[a:b], np.asarray(ct_kjmol)[a:b], counts[a:b], kT)
        blocks.append((-kT * (log_sum - math.log(n)), n))
    return blocks
