"""Frame weights in log space, their effective sample size, and weighted histograms to F.

Frames of biased MD carry weights toward the unbiased ensemble. Everything here takes the
natural log of the weights (``log_weights``, any additive constant, ``-inf`` = weight 0), so
biases of hundreds of kT never overflow. This is the one place that validates log-weights
(:func:`as_log_weights`), normalises them, computes the Kish effective sample size, and turns a
weighted histogram into a free energy (:func:`free_energy_histogram`, and
:func:`free_energy_profile` on top of it); the VAE, the RC fit, the bias grid, MBAR, the
bootstrap and the analysis all go through these functions.

Public API
----------
``as_log_weights``, ``as_weights``, ``normalise_log_weights``, ``normalised_weights``,
``effective_sample_size``, ``free_energy_histogram``, ``free_energy_profile``,
``align_reference``, ``reference_edges``, ``AlignedReference``, ``ALIGN_BELOW_KT``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from ..units import in_unit, is_quantity

__all__ = [
    "as_log_weights",
    "as_weights",
    "normalise_log_weights",
    "normalised_weights",
    "effective_sample_size",
    "free_energy_histogram",
    "free_energy_profile",
    "align_reference",
    "as_energy_kjmol",
    "reference_edges",
    "AlignedReference",
    "ALIGN_BELOW_KT",
]


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _as_array(values: object, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real array. You supplied: {exc}") from None


def _frames(n: int) -> str:
    return f"{n} frame" if n == 1 else f"{n} frames"


def _check_length(x: np.ndarray, name: str, n_frames: int | None, like: str) -> None:
    if n_frames is not None and x.shape != (n_frames,):
        raise ValueError(
            f"{name} must have shape ({n_frames},), one per frame of {like}. You supplied shape "
            f"{x.shape}"
        )
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, shape (n_frames,). You supplied shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} must not be empty")


def _finite_1d(values: object, name: str) -> np.ndarray:
    """``values`` as a non-empty, finite 1-D float array, or a ValueError naming ``name``."""
    x = _as_array(values, name)
    _check_length(x, name, None, "")
    if not np.isfinite(x).all():
        raise ValueError(
            f"{name} contains {int((~np.isfinite(x)).sum())} NaN or inf value(s); all must be "
            "finite"
        )
    return x


def as_log_weights(
    log_weights: object,
    n_frames: int | None = None,
    *,
    name: str = "log_weights",
    like: str = "values",
) -> np.ndarray:
    """Validate log-weights: 1-D, no NaN, no ``+inf``, at least one finite entry.

    Parameters
    ----------
    log_weights : array_like, shape=(n_frames,), dtype=float
        Natural log of each frame's weight, any additive constant; ``-inf`` means weight 0.
    n_frames : int or None
        Required length (``None``: any length >= 1).
    name : str
        The argument's name in error messages.
    like : str
        What the frames belong to, in the length error ("one per frame of ``like``").

    Returns
    -------
    np.ndarray, shape=(n_frames,), dtype=float
        The log-weights as given (not normalised).

    Raises
    ------
    ValueError
        Wrong shape, NaN, ``+inf``, or every entry ``-inf`` (no frame carries weight).
    """
    lw = _as_array(log_weights, name)
    _check_length(lw, name, n_frames, like)
    n_nan = int(np.isnan(lw).sum())
    if n_nan:
        raise ValueError(f"{name} contains NaN in {_frames(n_nan)}; none allowed")
    n_inf = int(np.isposinf(lw).sum())
    if n_inf:
        raise ValueError(
            f"{name} contains +inf in {_frames(n_inf)}; allowed are finite values and -inf "
            "(weight 0)"
        )
    if not np.isfinite(lw).any():
        raise ValueError(f"all {name} are -inf: no frame carries any weight")
    return lw


def as_weights(
    weights: object,
    n_frames: int | None = None,
    *,
    name: str = "weights",
    like: str = "values",
) -> np.ndarray:
    """Validate linear weights: 1-D, finite, ``>= 0``, not all zero.

    Parameters
    ----------
    weights : array_like, shape=(n_frames,), dtype=float
        Non-negative weights, any scale. Prefer log-weights (:func:`as_log_weights`) when they
        span more than a few hundred in log.
    n_frames, name, like
        As in :func:`as_log_weights`.

    Returns
    -------
    np.ndarray, shape=(n_frames,), dtype=float
        The weights as given.

    Raises
    ------
    ValueError
        When the weights are not a non-empty 1-D array (of ``n_frames`` entries when given),
        or a weight is NaN, infinite or negative, or none is > 0.
    """
    w = _as_array(weights, name)
    _check_length(w, name, n_frames, like)
    n_nan = int(np.isnan(w).sum())
    if n_nan:
        raise ValueError(f"{name} contains NaN in {_frames(n_nan)}; none allowed")
    n_inf = int(np.isinf(w).sum())
    if n_inf:
        raise ValueError(
            f"{name} contains inf in {_frames(n_inf)}; pass log_weights to avoid overflow"
        )
    n_negative = int((w < 0).sum())
    if n_negative:
        raise ValueError(
            f"{name} must be >= 0 (linear weights, not log-weights); negative in "
            f"{_frames(n_negative)} (smallest {w.min():g})"
        )
    if not (w > 0).any():
        raise ValueError(f"all {name} are zero: no frame carries any weight")
    return w


# --------------------------------------------------------------------------------------------
# normalisation and effective sample size
# --------------------------------------------------------------------------------------------


def normalise_log_weights(log_weights: object) -> np.ndarray:
    """Log-weights shifted so that ``logsumexp == 0`` (the weights sum to 1).

    Parameters
    ----------
    log_weights : array_like, shape=(n_frames,), dtype=float
        As in :func:`as_log_weights`.

    Returns
    -------
    np.ndarray, shape=(n_frames,), dtype=float
    """
    lw = as_log_weights(log_weights)
    return lw - logsumexp(lw)


def normalised_weights(
    n_frames: int,
    weights: object = None,
    log_weights: object = None,
) -> np.ndarray:
    """Linear frame weights normalised to sum 1, computed in log space.

    Parameters
    ----------
    n_frames : int
        Number of frames.
    weights : array_like, shape=(n_frames,), optional
        Non-negative weights, any scale (see :func:`as_weights`).
    log_weights : array_like, shape=(n_frames,), optional
        Natural logs of the weights (preferred: no overflow whatever their range); ``-inf``
        means weight 0. At most one of ``weights`` and ``log_weights`` may be given; with
        neither, all frames weigh the same.

    Returns
    -------
    np.ndarray, shape=(n_frames,), dtype=float
        ``exp(log_w - logsumexp(log_w))``; tiny weights may underflow to 0.

    Raises
    ------
    ValueError
        When both ``weights`` and ``log_weights`` are given (and for invalid ones).
    """
    if weights is not None and log_weights is not None:
        raise ValueError("give weights or log_weights, not both")
    if weights is None and log_weights is None:
        return np.full(n_frames, 1.0 / n_frames)
    if weights is not None:
        with np.errstate(divide="ignore"):
            lw = np.log(as_weights(weights, n_frames, like="features"))
    else:
        lw = as_log_weights(log_weights, n_frames, like="features")
    w = np.exp(lw - lw.max())
    return w / w.sum()


def effective_sample_size(log_weights: object) -> float:
    """Kish effective sample size ``(sum w)^2 / sum w^2``, computed in log space.

    Parameters
    ----------
    log_weights : array_like, shape=(n_frames,), dtype=float
        Natural log of the (unnormalised) weights; ``-inf`` means weight 0.

    Returns
    -------
    float
        Between 1 (one frame carries all the weight) and n_frames (uniform weights), frames.
    """
    lw = as_log_weights(log_weights)
    return float(np.exp(2.0 * logsumexp(lw) - logsumexp(2.0 * lw)))


# --------------------------------------------------------------------------------------------
# weighted histogram -> free energy
# --------------------------------------------------------------------------------------------


def _as_edges(edges: object, name: str = "edges") -> np.ndarray:
    e = _as_array(edges, name)
    if e.ndim != 1 or e.size < 2:
        raise ValueError(
            f"{name} must be 1-D with at least 2 entries (n_bins + 1). You supplied shape {e.shape}"
        )
    if not np.isfinite(e).all() or not (np.diff(e) > 0).all():
        raise ValueError(f"{name} must be finite and strictly increasing")
    return e


def free_energy_histogram(
    values: object,
    log_weights: object | None,
    edges: object,
    density: bool = True,
) -> np.ndarray:
    """``F_b = -ln(p_b / width_b)`` in kT from a weighted histogram, in one or more dimensions.

    ``p_b`` is the weighted probability of bin ``b`` among the frames inside the edges (frames
    outside are ignored; the last bin of each dimension includes its right edge, as in
    ``numpy.histogram``). F is not shifted: ``logsumexp(-F_b + ln width_b) == 0`` over the bins.

    Parameters
    ----------
    values : array_like, shape=(n_frames,) or (n_frames, n_dims), dtype=float
        The coordinate(s) of each frame, finite, in their own units.
    log_weights : array_like or None, shape=(n_frames,), dtype=float
        Natural log of each frame's weight (any additive constant; ``-inf`` = weight 0).
        ``None`` for uniform weights.
    edges : array_like, shape=(n_bins + 1,), or a sequence of n_dims such arrays
        Strictly increasing bin edges (one array per dimension for 2-D ``values``).
    density : bool
        Divide each bin's probability by its width (its volume in n_dims), so that F is the
        free-energy *density* and unequal bins compare fairly.

    Returns
    -------
    np.ndarray, shape=(n_bins,) or (n_bins_1, ..., n_bins_d), dtype=float
        F in kT (dimensionless); ``+inf`` in bins without weight.

    Raises
    ------
    ValueError
        Invalid input, or no frame with nonzero weight inside the edges.
    """
    x = _as_array(values, "values")
    one_d = x.ndim == 1
    if one_d:
        x = _finite_1d(x, "values")
        e_list = [_as_edges(edges)]
    else:
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(
                f"values must be shape (n_frames,) or (n_frames, n_dims). You supplied shape "
                f"{x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError(
                f"values contains {int((~np.isfinite(x)).sum())} NaN or inf value(s); all must "
                "be finite"
            )
        if len(edges) != x.shape[1]:
            raise ValueError(
                f"edges must hold one array per dimension of values ({x.shape[1]}). You "
                f"supplied {len(edges)}"
            )
        e_list = [_as_edges(e, f"edges[{i}]") for i, e in enumerate(edges)]
    if log_weights is None:
        w = np.ones(x.shape[0])
    else:
        lw = as_log_weights(log_weights, x.shape[0], like="values")
        w = np.exp(lw - lw.max())  # -inf -> 0
    if one_d:
        hist, _ = np.histogram(x, bins=e_list[0], weights=w)
    else:
        hist, _ = np.histogramdd(x, bins=e_list, weights=w)
    total = hist.sum()
    if not total > 0:
        spans = ", ".join(f"[{e[0]:g}, {e[-1]:g}]" for e in e_list)
        raise ValueError(
            f"no frame with nonzero weight falls inside the edges {spans} (values span "
            f"[{x.min():g}, {x.max():g}])"
        )
    p = hist / total
    if density:
        volume = np.ones(())
        for e in e_list:
            volume = np.multiply.outer(volume, np.diff(e))
        p = p / volume
    with np.errstate(divide="ignore"):
        return -np.log(p)


def free_energy_profile(
    values: object,
    log_weights: object | None,
    edges: object,
    kT: float | None = None,
    density: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Free-energy profile ``F = -kT ln p`` from a weighted histogram, minimum 0.

    Parameters
    ----------
    values : array_like, shape=(n_frames,), dtype=float
        The coordinate of each frame (e.g. the RC chi, in its own units).
    log_weights : array_like or None, shape=(n_frames,), dtype=float
        Natural log of each frame's weight (need not be normalised; ``-inf`` = weight 0).
        ``None`` for uniform weights.
    edges : array_like, shape=(n_bins + 1,), dtype=float
        Strictly increasing bin edges. Frames outside ``[edges[0], edges[-1]]`` are ignored
        (the last bin includes its right edge, as in ``numpy.histogram``).
    kT : float or None
        Thermal energy in kJ/mol (a float or an OpenMM energy Quantity). ``None`` returns F in
        units of kT (dimensionless); a value returns F in kJ/mol.
    density : bool
        Divide each bin's probability by its width, so that F is the free-energy *density* and
        unequal bins compare fairly. For equal bins this is a constant shift (removed anyway).

    Returns
    -------
    centers : np.ndarray, shape=(n_bins,), dtype=float
        Bin centres, in the units of ``values``.
    free_energy : np.ndarray, shape=(n_bins,), dtype=float
        F in kT (or kJ/mol if ``kT`` is given), shifted so that its minimum is 0;
        ``+inf`` in bins with no weight.
    """
    if kT is not None:
        kT = as_energy_kjmol(kT, "kT")
    e = _as_edges(edges)
    f = free_energy_histogram(_finite_1d(values, "values"), log_weights, e, density)
    f = f - f[np.isfinite(f)].min()
    return 0.5 * (e[1:] + e[:-1]), f if kT is None else f * kT


def as_energy_kjmol(value: object, name: str = "energy") -> float:
    """A positive energy in kJ/mol from a float (kJ/mol) or an OpenMM energy Quantity.

    Raises
    ------
    TypeError
        Not a number, or a Quantity of another dimension.
    ValueError
        Not finite and > 0.
    """
    if is_quantity(value):
        try:
            value = in_unit(value, "kilojoule_per_mole")
        except TypeError as exc:  # wrong dimension
            raise TypeError(
                f"{name} must be an energy (kJ/mol float or OpenMM Quantity). You supplied "
                f"{value!r}"
            ) from exc
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a number in kJ/mol. You supplied {value!r}") from exc
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0 (kJ/mol). You supplied {v}")
    return v


# --------------------------------------------------------------------------------------------
# comparing a profile with a reference
# --------------------------------------------------------------------------------------------

#: Default region of a profile where a reference is matched to it: bins below this F (kT).
ALIGN_BELOW_KT = 5.0


@dataclass(frozen=True)
class AlignedReference:
    """A reference profile shifted onto an estimated one (see :func:`align_reference`).

    Attributes
    ----------
    free_energy : np.ndarray, shape=(n_bins,), dtype=float
        The reference plus ``offset_kT``, kT.
    offset_kT : float
        The constant added to the reference, kT.
    matched_bins : int
        Bins of the reference region that the estimate sampled, over which the two were
        matched; 0 when none (the reference is then shifted to a minimum of 0).
    below_kT : float
        The reference region: bins where the reference is within this of its minimum, kT.
    rmse_kT : float
        RMS difference of the estimate and the shifted reference over the matched bins, kT
        (``nan`` when ``matched_bins`` is 0).
    reference_bins : int
        Bins of the reference region.
    unsampled_bins : int
        Bins of the reference region without an estimate (no frames): not in the RMS, counted.
    above_bins : int
        Bins of the reference region where the estimate is ``below_kT`` or more above its own
        minimum (in the RMS).
    """

    free_energy: np.ndarray
    offset_kT: float
    matched_bins: int
    below_kT: float
    rmse_kT: float
    reference_bins: int = 0
    unsampled_bins: int = 0
    above_bins: int = 0

    @property
    def coverage(self) -> float:
        """Share of the reference region's bins the estimate sampled (nan without a region)."""
        return self.matched_bins / self.reference_bins if self.reference_bins else float("nan")

    def describe(self) -> str:
        """The error in one phrase: RMS, over which bins, and what the estimate missed.

        Returns
        -------
        str
            E.g. "2.20 kT RMS over 20 of the 22 bins where the reference F < 5 kT (2 bins
            unsampled; 3 put at 5 kT or more)".
        """
        if not self.matched_bins:
            return (f"none of the {self.reference_bins} bins where the reference F < "
                    f"{self.below_kT:g} kT was sampled")
        missed = []
        if self.unsampled_bins:
            missed.append(f"{self.unsampled_bins} bin(s) unsampled")
        if self.above_bins:
            missed.append(f"{self.above_bins} put at {self.below_kT:g} kT or more")
        return (f"{self.rmse_kT:.2f} kT RMS over {self.matched_bins} of the "
                f"{self.reference_bins} bins where the reference F < {self.below_kT:g} kT"
                + (f" ({'; '.join(missed)})" if missed else ""))


def reference_edges(lo: float, hi: float, bins: int,
                    reference_span: tuple[float, float] | None = None) -> np.ndarray:
    """Bin edges for comparing an estimate with a reference: ``bins`` equal bins over the
    sampled range [lo, hi], continued at the same width over ``reference_span`` (where the
    reference has probability), so the comparison's bins are not chosen by what was sampled.

    Parameters
    ----------
    lo, hi : float
        The sampled range of the coordinate (lo < hi).
    bins : int
        Bins over [lo, hi] (>= 1).
    reference_span : (float, float), optional
        The range the reference covers; None: [lo, hi] only.

    Returns
    -------
    np.ndarray, shape=(n_edges,), dtype=float
        Increasing edges; [lo, hi] is cut exactly as ``np.linspace(lo, hi, bins + 1)``.
    """
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo) or bins < 1:
        raise ValueError(f"need finite lo < hi and bins >= 1. You supplied {lo}, {hi}, {bins}")
    inner = np.linspace(lo, hi, int(bins) + 1)
    if reference_span is None:
        return inner
    width = (hi - lo) / bins
    a, b = (float(v) for v in reference_span)
    below = int(np.ceil(max(0.0, lo - a) / width))
    above = int(np.ceil(max(0.0, b - hi) / width))
    return np.concatenate([lo - width * np.arange(below, 0, -1), inner,
                           hi + width * np.arange(1, above + 1)])


def align_reference(
    reference_kT: Sequence[float] | np.ndarray,
    profile_kT: Sequence[float] | np.ndarray,
    below_kT: float = ALIGN_BELOW_KT,
) -> AlignedReference:
    """Shift a reference F (e.g. the exact profile of a model potential) onto an estimated one,
    and measure the estimate's error over the reference's region.

    F is defined up to a constant. The region is the bins where the REFERENCE is within
    ``below_kT`` of its minimum, whatever the estimate says there: a basin the estimate
    missed or put too high stays in it. The reference is shifted so that its mean difference
    from the estimate is zero over the region's sampled bins; the RMS of the remaining
    difference there is the error, and the region's bins without an estimate are counted
    (``unsampled_bins``), never dropped silently. With no sampled bin in the region the
    reference is shifted to a minimum of 0.

    Parameters
    ----------
    reference_kT : np.ndarray, shape=(n_bins,), dtype=float
        Reference F in kT on the estimate's bins (``inf`` or ``nan`` where not defined); the
        bins should span the reference's low region, not only what the estimate sampled.
    profile_kT : np.ndarray, shape=(n_bins,), dtype=float
        Estimated F in kT (``inf`` in bins without frames).
    below_kT : float
        Upper end of the reference region above the reference's minimum, kT (> 0).

    Returns
    -------
    AlignedReference

    Raises
    ------
    ValueError
        When the two profiles are not 1-D of one shape, ``below_kT`` is not a finite
        number > 0, or ``reference_kT`` has no finite value.
    """
    ref = np.asarray(reference_kT, dtype=float)
    est = np.asarray(profile_kT, dtype=float)
    if ref.ndim != 1 or ref.shape != est.shape:
        raise ValueError(
            f"reference_kT and profile_kT must be 1-D of one shape. You supplied {ref.shape} "
            f"and {est.shape}"
        )
    if not np.isfinite(below_kT) or below_kT <= 0:
        raise ValueError(f"below_kT must be > 0 (kT). You supplied {below_kT}")
    known = np.isfinite(ref)
    if not known.any():
        raise ValueError("reference_kT has no finite value: there is nothing to align")
    region = known & (ref - ref[known].min() < below_kT)
    sampled = region & np.isfinite(est)
    if sampled.any():
        offset = -float(np.mean(ref[sampled] - est[sampled]))
        rmse = float(np.sqrt(np.mean((est[sampled] - ref[sampled] - offset) ** 2)))
        low = float(np.min(est[np.isfinite(est)]))
        above = int(np.count_nonzero(est[sampled] - low >= below_kT))
    else:
        offset, rmse, above = -float(np.min(ref[known])), float("nan"), 0
    return AlignedReference(ref + offset, offset, int(sampled.sum()), float(below_kT), rmse,
                            int(region.sum()), int(np.count_nonzero(region & ~sampled)), above)
