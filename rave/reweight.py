"""Reweighting frames sampled under static biases back to the unbiased ensemble.

Round ``k`` (``k = 0 .. K-1``) of a RAVE campaign samples the physical potential plus a static
bias ``V_k`` (kJ/mol; ``V_0 = 0`` for the first, unbiased round). The caller supplies the
*reduced* bias of every frame under every round's bias,

    ``reduced_bias[k, n] = V_k(frame n) / kT``  (dimensionless),

with the frames ordered round by round (the first ``frames_per_round[0]`` frames come from
round 0, and so on). Everything here works on log-weights; no raw exponential of a bias is ever
formed, so biases of hundreds of kT are fine.

Within a single round, ``w_n = exp(+V(frame n) / kT)`` is exact. Across rounds it is not: each
round's biased ensemble has its own normalisation ``Z_k``, and concatenating the per-round
weights mixes the rounds in the wrong proportions (errors of several kT in practice). MBAR
(Shirts & Chodera, J. Chem. Phys. 129, 124105 (2008)) solves for the offsets ``f_k`` and gives

    ``log w_n = -logsumexp_k(log N_k + f_k - reduced_bias[k, n])``.

Uncertainty: :func:`bootstrap_free_energy_profile` resamples blocks of frames within each round
(and within each walker) and re-solves MBAR for every replicate, so the error bars include the
uncertainty of the offsets ``f_k``; the block length follows from the
:func:`statistical_inefficiency` of the binned coordinate.

Public API
----------
``ReweightResult``, ``mbar_reweight``, ``single_round_log_weights``, ``effective_sample_size``,
``free_energy_profile``, ``align_reference``, ``AlignedReference``, ``ProfileEstimate``,
``bootstrap_free_energy_profile``, ``statistical_inefficiency``, ``walker_segments``.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

__all__ = [
    "ReweightResult",
    "mbar_reweight",
    "single_round_log_weights",
    "effective_sample_size",
    "free_energy_profile",
    "align_reference",
    "AlignedReference",
    "ProfileEstimate",
    "bootstrap_free_energy_profile",
    "statistical_inefficiency",
    "walker_segments",
]

logger = logging.getLogger(__name__)

#: Largest allowed violation (dimensionless, in units of kT) of the MBAR self-consistent
#: equations ``f_k = -ln sum_n exp(log w_n - u_kn)`` before a solution counts as unconverged.
_CONVERGENCE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ReweightResult:
    """Log-weights of all frames for the unbiased ensemble.

    Attributes
    ----------
    log_weights : np.ndarray, shape=(n_frames,), dtype=float
        Natural log of each frame's weight in the unbiased ensemble, normalised so that
        ``logsumexp(log_weights) == 0`` (the weights sum to 1).
    free_energies : np.ndarray, shape=(K,), dtype=float
        Dimensionless free energy of each round's biased ensemble relative to the unbiased
        ensemble, ``f_k = -ln(Z_k / Z_unbiased)`` with ``Z_k = integral exp(-U/kT - V_k/kT)``.
        When round 0 was unbiased (``V_0 = 0``), ``f_0 = 0`` up to round-off. Multiply by kT
        for kJ/mol.
    effective_sample_size : float
        Kish effective sample size of the weights, in frames (between 1 and n_frames).
    method : str
        ``"mbar"`` (pymbar converged), ``"single-round"`` (K = 1: ``w = exp(+V/kT)`` is exact),
        or ``"self-consistent"`` (pymbar failed or did not converge and this module's own
        solver of the same MBAR equations was used instead; a warning is logged).
    """

    log_weights: np.ndarray
    free_energies: np.ndarray
    effective_sample_size: float
    method: str


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _finite_1d(values, name: str) -> np.ndarray:
    """``values`` as a non-empty, finite 1-D float array, or a ValueError naming ``name``."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D, shape (n_frames,). You supplied shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.isfinite(x).all():
        raise ValueError(
            f"{name} contains {int((~np.isfinite(x)).sum())} NaN or inf value(s); all must be "
            "finite"
        )
    return x


def _as_log_weights(log_weights: np.ndarray, name: str = "log_weights") -> np.ndarray:
    """Validate a 1-D array of log-weights: no NaN, no +inf, at least one finite entry."""
    lw = np.asarray(log_weights, dtype=float)
    if lw.ndim != 1:
        raise ValueError(f"{name} must be 1-D, shape (n_frames,). You supplied shape {lw.shape}")
    if lw.size == 0:
        raise ValueError(f"{name} must not be empty")
    if np.isnan(lw).any():
        raise ValueError(f"{name} contains {int(np.isnan(lw).sum())} NaN value(s); none allowed")
    if np.isposinf(lw).any():
        raise ValueError(f"{name} contains +inf; allowed are finite values and -inf (weight 0)")
    if not np.isfinite(lw).any():
        raise ValueError(f"{name} are all -inf: every weight is zero")
    return lw


def _normalise(log_weights: np.ndarray) -> np.ndarray:
    return log_weights - logsumexp(log_weights)


# --------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------


def effective_sample_size(log_weights: np.ndarray) -> float:
    """Kish effective sample size ``(sum w)^2 / sum w^2``, computed in log space.

    Parameters
    ----------
    log_weights : np.ndarray, shape=(n_frames,), dtype=float
        Natural log of the (unnormalised) weights; ``-inf`` means weight 0.

    Returns
    -------
    float
        Between 1 (one frame carries all the weight) and n_frames (uniform weights).
    """
    lw = _as_log_weights(log_weights)
    return float(np.exp(2.0 * logsumexp(lw) - logsumexp(2.0 * lw)))


def single_round_log_weights(reduced_bias_of_own_round: np.ndarray) -> np.ndarray:
    """Unbiasing log-weights for frames that all come from one round: ``log w = +V/kT``.

    Parameters
    ----------
    reduced_bias_of_own_round : np.ndarray, shape=(n_frames,), dtype=float
        ``V(frame n) / kT`` for the bias under which the frames were sampled (dimensionless).

    Returns
    -------
    np.ndarray, shape=(n_frames,), dtype=float
        Log-weights normalised so that ``logsumexp == 0``.
    """
    u = _finite_1d(reduced_bias_of_own_round, "reduced_bias_of_own_round")
    return _normalise(u)


def _validate_mbar_input(
    reduced_bias: np.ndarray, frames_per_round: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    u_kn = np.asarray(reduced_bias, dtype=float)
    if u_kn.ndim != 2:
        raise ValueError(
            "reduced_bias must be 2-D, shape (n_rounds, n_frames) with reduced_bias[k, n] = "
            f"V_k(frame n) / kT. You supplied shape {u_kn.shape}"
        )
    n_rounds, n_frames = u_kn.shape
    if n_rounds == 0 or n_frames == 0:
        raise ValueError(
            f"reduced_bias must have at least one round and one frame. You supplied shape "
            f"{u_kn.shape}"
        )
    n_bad = int((~np.isfinite(u_kn)).sum())
    if n_bad:
        rounds = sorted({int(k) for k in np.nonzero(~np.isfinite(u_kn))[0]})
        raise ValueError(
            f"reduced_bias contains {n_bad} NaN or inf value(s) (in the row(s) of round(s) "
            f"{rounds}); all must be finite"
        )
    counts = np.asarray(frames_per_round)
    if counts.ndim != 1 or counts.shape[0] != n_rounds:
        raise ValueError(
            f"frames_per_round must have one entry per round ({n_rounds}, the first dimension "
            f"of reduced_bias). You supplied shape {counts.shape}"
        )
    if counts.dtype.kind not in "iu":
        if counts.dtype.kind == "f" and np.all(counts == np.round(counts)):
            counts = counts.astype(np.int64)
        else:
            raise TypeError(
                f"frames_per_round must hold integers. You supplied {counts.tolist()} "
                f"(dtype {counts.dtype})"
            )
    if (counts < 0).any():
        raise ValueError(f"frames_per_round must be >= 0. You supplied {counts.tolist()}")
    if int(counts.sum()) != n_frames:
        raise ValueError(
            f"frames_per_round must sum to the number of frames in reduced_bias ({n_frames}). "
            f"You supplied {counts.tolist()}, which sums to {int(counts.sum())}"
        )
    return u_kn, counts.astype(np.int64)


def _log_weights_from_f(u_kn: np.ndarray, n_k: np.ndarray, f_k: np.ndarray) -> np.ndarray:
    """Unnormalised MBAR log-weights ``-logsumexp_k(log N_k + f_k - u_kn)``."""
    with np.errstate(divide="ignore"):
        log_n = np.log(n_k.astype(float))  # -inf for empty rounds: they drop out
    return -logsumexp((log_n + f_k)[:, None] - u_kn, axis=0)


def _f_from_log_weights(u_kn: np.ndarray, log_weights: np.ndarray) -> np.ndarray:
    """``f_k = -ln sum_n w_n exp(-u_kn)`` for normalised weights (relative to their ensemble)."""
    return -logsumexp(log_weights[None, :] - u_kn, axis=1)


def _self_consistency_error(u_kn: np.ndarray, n_k: np.ndarray, f_k: np.ndarray) -> float:
    """Largest violation (in kT) of the MBAR equations over the rounds that have frames."""
    f_new = -logsumexp(-u_kn + _log_weights_from_f(u_kn, n_k, f_k)[None, :], axis=1)
    sampled = n_k > 0
    d = (f_new - f_new[sampled][0]) - (f_k - f_k[sampled][0])
    return float(np.max(np.abs(d[sampled])))


def _solve_mbar_self_consistent(
    u_kn: np.ndarray,
    n_k: np.ndarray,
    tolerance: float = 1e-10,
    max_iterations: int = 100_000,
) -> tuple[np.ndarray, float]:
    """Solve the MBAR equations without pymbar.

    First a quasi-Newton (L-BFGS) minimisation of the convex MBAR objective
    ``sum_n logsumexp_k(log N_k + f_k - u_kn) - sum_k N_k f_k`` (which gets close quickly), then
    the plain self-consistent iteration ``f_k <- -ln sum_n exp(-u_kn) / sum_j N_j exp(f_j - u_jn)``
    to polish. Everything in log space.

    Returns
    -------
    f_k : np.ndarray, shape=(K,)
        Dimensionless free energies with ``f`` of the first sampled round set to 0.
    error : float
        Final self-consistency error (kT).
    """
    sampled = np.nonzero(n_k > 0)[0]
    u_s = u_kn[sampled]
    n_s = n_k[sampled].astype(float)
    log_n_s = np.log(n_s)
    n_total = float(n_s.sum())

    def objective(g: np.ndarray) -> tuple[float, np.ndarray]:
        f = np.concatenate([[0.0], g])
        a = (log_n_s + f)[:, None] - u_s
        lse = logsumexp(a, axis=0)
        value = (lse.sum() - n_s @ f) / n_total
        grad = (np.exp(a - lse[None, :]).sum(axis=1) - n_s) / n_total
        return value, grad[1:]

    # initial guess: f_k from each round's own frames, f_k - f_0 ~ -ln <exp(-(u_k - u_0))>_0
    g = np.zeros(len(sampled) - 1)
    if g.size:
        opt = minimize(objective, g, jac=True, method="L-BFGS-B", options={"maxiter": 10_000})
        g = opt.x
    f_s = np.concatenate([[0.0], g])
    for _ in range(max_iterations):
        log_w = -logsumexp((log_n_s + f_s)[:, None] - u_s, axis=0)
        f_new = -logsumexp(log_w[None, :] - u_s, axis=1)
        f_new -= f_new[0]
        change = float(np.max(np.abs(f_new - f_s)))
        f_s = f_new
        if change < tolerance:
            break
    f_k = np.zeros(u_kn.shape[0])
    f_k[sampled] = f_s
    if len(sampled) < u_kn.shape[0]:
        # empty rounds: their f follows from the weights of the sampled ones
        log_w = _log_weights_from_f(u_kn, n_k, f_k)
        empty = n_k == 0
        f_k[empty] = -logsumexp(log_w[None, :] - u_kn[empty], axis=1)
    return f_k, _self_consistency_error(u_kn, n_k, f_k)


_PYMBAR = None


def _import_pymbar():
    """Import pymbar once, silencing its import-time JAX banner and timeseries warning."""
    global _PYMBAR
    if _PYMBAR is None:
        pymbar_logger = logging.getLogger("pymbar")
        old_level = pymbar_logger.level
        pymbar_logger.setLevel(logging.ERROR)
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                import pymbar
        finally:
            pymbar_logger.setLevel(old_level)
        _PYMBAR = pymbar
    return _PYMBAR


def _solve_with_pymbar(u_kn: np.ndarray, n_k: np.ndarray) -> np.ndarray:
    pymbar = _import_pymbar()
    pymbar_logger = logging.getLogger("pymbar")
    old_level = pymbar_logger.level
    # pymbar logs warnings (e.g. "states are identical") and draws from numpy's *global* RNG in
    # its identical-state check; keep both from leaking. Convergence is checked by the caller.
    pymbar_logger.setLevel(logging.ERROR)
    rng_state = np.random.get_state()
    try:
        mbar = pymbar.MBAR(u_kn, n_k, relative_tolerance=1e-12, initialize="zeros")
        return np.asarray(mbar.f_k, dtype=float)
    finally:
        np.random.set_state(rng_state)
        pymbar_logger.setLevel(old_level)


def mbar_reweight(reduced_bias: np.ndarray, frames_per_round: Sequence[int]) -> ReweightResult:
    """Weights of frames from several biased rounds for the unbiased ensemble, by MBAR.

    Parameters
    ----------
    reduced_bias : np.ndarray, shape=(K, n_frames), dtype=float
        ``reduced_bias[k, n] = V_k(frame n) / kT`` (dimensionless): the bias of round ``k``
        evaluated at frame ``n``, for every round and every frame. Frames are ordered round
        by round. Must be finite.
    frames_per_round : sequence of int, length K
        ``N_k``, the number of frames sampled in round ``k``; sums to ``n_frames``. A round may
        have 0 frames (its ``f_k`` is still reported).

    Returns
    -------
    ReweightResult
        ``log_weights`` (normalised, ``logsumexp == 0``), ``free_energies`` ``f_k =
        -ln(Z_k/Z_unbiased)`` (so ``f_0 = 0`` when ``V_0 = 0``), the Kish effective sample size
        and the method used.

    Notes
    -----
    The MBAR equations are solved with ``pymbar.MBAR(u_kn=reduced_bias, N_k=frames_per_round)``;
    the answer is then checked against the self-consistent equations (tolerance
    ``1e-6`` kT). If pymbar raises or its answer is not self-consistent, this module's own
    solver (L-BFGS on the convex MBAR objective, then self-consistent iteration) is used and a
    warning is logged (``method == "self-consistent"``). With K = 1 no solver is needed:
    ``log w = +V_0/kT`` (``method == "single-round"``). Adding a constant ``c_k`` to a round's
    bias leaves the weights unchanged and shifts ``f_k`` by ``+c_k``.

    The weights are those of the *unbiased* ensemble, i.e. of the reduced bias 0, whatever
    ``V_0`` is.
    """
    u_kn, n_k = _validate_mbar_input(reduced_bias, frames_per_round)
    n_rounds = u_kn.shape[0]

    if n_rounds == 1:
        method = "single-round"
        log_w = _normalise(u_kn[0])
    else:
        method = "mbar"
        f_k = None
        try:
            f_k = _solve_with_pymbar(u_kn, n_k)
            error = _self_consistency_error(u_kn, n_k, f_k)
            if not np.isfinite(error) or error > _CONVERGENCE_TOLERANCE:
                logger.warning(
                    "pymbar's MBAR solution violates the self-consistent equations by %.3g kT "
                    "(> %.1g); falling back to the self-consistent solver",
                    error,
                    _CONVERGENCE_TOLERANCE,
                )
                f_k = None
        except Exception as exc:  # pymbar raises its own ParameterError, LinAlgError, ...
            logger.warning(
                "pymbar.MBAR failed (%s: %s); falling back to the self-consistent solver",
                type(exc).__name__,
                exc,
            )
        if f_k is None:
            method = "self-consistent"
            f_k, error = _solve_mbar_self_consistent(u_kn, n_k)
            if error > _CONVERGENCE_TOLERANCE:
                logger.warning(
                    "self-consistent MBAR solver reached an error of %.3g kT (> %.1g); the "
                    "rounds may not overlap. Check the effective sample size.",
                    error,
                    _CONVERGENCE_TOLERANCE,
                )
        log_w = _normalise(_log_weights_from_f(u_kn, n_k, f_k))

    free_energies = _f_from_log_weights(u_kn, log_w)
    return ReweightResult(
        log_weights=log_w,
        free_energies=free_energies,
        effective_sample_size=effective_sample_size(log_w),
        method=method,
    )


# --------------------------------------------------------------------------------------------
# free-energy profiles
# --------------------------------------------------------------------------------------------


def _validate_profile_input(
    values: np.ndarray, log_weights: np.ndarray | None, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _finite_1d(values, "values")
    if log_weights is None:
        lw = np.zeros_like(x)
    else:
        lw = _as_log_weights(log_weights)
        if lw.shape != x.shape:
            raise ValueError(
                f"log_weights must have the shape of values {x.shape}. You supplied {lw.shape}"
            )
    e = np.asarray(edges, dtype=float)
    if e.ndim != 1 or e.size < 2:
        raise ValueError(
            f"edges must be 1-D with at least 2 entries (n_bins + 1). You supplied shape {e.shape}"
        )
    if not np.isfinite(e).all() or not (np.diff(e) > 0).all():
        raise ValueError("edges must be finite and strictly increasing")
    return x, lw, e


def _profile(
    x: np.ndarray, lw: np.ndarray, e: np.ndarray, density: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Core of free_energy_profile on validated input; F in kT with min 0, +inf where empty."""
    finite = np.isfinite(lw)
    w = np.zeros_like(lw)
    w[finite] = np.exp(lw[finite] - lw[finite].max())
    hist, _ = np.histogram(x, bins=e, weights=w)
    if density:
        hist = hist / np.diff(e)
    with np.errstate(divide="ignore"):
        f = -np.log(hist)
    if np.isfinite(f).any():
        f = f - f[np.isfinite(f)].min()
    return 0.5 * (e[1:] + e[:-1]), f


def free_energy_profile(
    values: np.ndarray,
    log_weights: np.ndarray | None,
    edges: np.ndarray,
    kT: float | None = None,
    density: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Free-energy profile ``F = -kT ln p`` from a weighted histogram.

    Parameters
    ----------
    values : np.ndarray, shape=(n_frames,), dtype=float
        The coordinate of each frame (e.g. the RC chi, in its own units).
    log_weights : np.ndarray or None, shape=(n_frames,), dtype=float
        Natural log of each frame's weight (need not be normalised; ``-inf`` = weight 0).
        ``None`` for uniform weights.
    edges : np.ndarray, shape=(n_bins + 1,), dtype=float
        Strictly increasing bin edges. Frames outside ``[edges[0], edges[-1]]`` are ignored
        (the last bin includes its right edge, as in ``numpy.histogram``).
    kT : float or None
        Thermal energy in kJ/mol. ``None`` returns F in units of kT (dimensionless);
        a value returns F in kJ/mol.
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
    x, lw, e = _validate_profile_input(values, log_weights, edges)
    if kT is not None:
        kT = _as_positive_energy(kT, "kT")
    centers, f = _profile(x, lw, e, density)
    if not np.isfinite(f).any():
        raise ValueError(
            f"no frame with nonzero weight falls inside the edges [{e[0]:g}, {e[-1]:g}] "
            f"(values span [{x.min():g}, {x.max():g}])"
        )
    return centers, f if kT is None else f * kT


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
        Bins the two were matched over; 0 when none was usable and the reference was shifted
        to a minimum of 0 instead.
    below_kT : float
        The matching region: bins where the estimate is below this F, kT.
    rmse_kT : float
        RMS difference of the estimate and the shifted reference over the matched bins, kT
        (``nan`` when ``matched_bins`` is 0).
    """

    free_energy: np.ndarray
    offset_kT: float
    matched_bins: int
    below_kT: float
    rmse_kT: float


def align_reference(
    reference_kT: np.ndarray, profile_kT: np.ndarray, below_kT: float = ALIGN_BELOW_KT
) -> AlignedReference:
    """Shift a reference F (e.g. the exact profile of a model potential) onto an estimated one.

    F is defined up to a constant. The reference is shifted so that its mean difference from
    the estimate is zero over the bins where both are finite and the estimate is below
    ``below_kT``; the RMS of the remaining difference is the estimate's error against the
    reference. With no such bin the reference is shifted to a minimum of 0.

    Parameters
    ----------
    reference_kT : np.ndarray, shape=(n_bins,), dtype=float
        Reference F in kT on the estimate's bins (``inf`` or ``nan`` where not defined).
    profile_kT : np.ndarray, shape=(n_bins,), dtype=float
        Estimated F in kT (``inf`` in bins without frames).
    below_kT : float
        Upper end of the matching region, kT (> 0).

    Returns
    -------
    AlignedReference
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
    mask = np.isfinite(ref) & np.isfinite(est) & (est < below_kT)
    if mask.any():
        offset = -float(np.mean(ref[mask] - est[mask]))
        rmse = float(np.sqrt(np.mean((est[mask] - ref[mask] - offset) ** 2)))
    elif np.isfinite(ref).any():
        offset, rmse = -float(np.min(ref[np.isfinite(ref)])), float("nan")
    else:
        raise ValueError("reference_kT has no finite value: there is nothing to align")
    return AlignedReference(ref + offset, offset, int(mask.sum()), float(below_kT), rmse)


def _as_positive_energy(value: object, name: str) -> float:
    """Accept a float (kJ/mol) or an OpenMM energy Quantity; return kJ/mol as a float."""
    if hasattr(value, "value_in_unit"):
        try:
            from openmm import unit

            value = value.value_in_unit(unit.kilojoule_per_mole)
        except Exception as exc:  # wrong dimension
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
# walkers, correlation, and the MBAR block bootstrap
# --------------------------------------------------------------------------------------------

#: Default block length in units of the statistical inefficiency g of the binned coordinate.
#: For an exponentially correlated series, blocks of length L leave a relative bias of about
#: g / (2 L) in the bootstrap variance (correlations across block ends are lost): 5 g keeps it
#: near 10 % (5 % in sigma).
BLOCKS_PER_INEFFICIENCY = 5.0
#: Fewest blocks per round when the block length is chosen automatically: fewer blocks make the
#: bootstrap standard deviation itself too noisy (relative error ~ 1 / sqrt(2 * n_blocks)).
MIN_BLOCKS_PER_ROUND = 20
#: A bin's sigma is reported only if it is non-empty in at least this fraction of replicates
#: (below that the spread of the non-empty ones is not an honest standard error).
_MIN_FINITE_FRACTION = 0.9
#: Sokal's window constant: the autocorrelation sum stops at the first lag M >= c * g(M).
_SOKAL_WINDOW = 5.0


def walker_segments(n_frames: int, walker: np.ndarray | None = None) -> list[np.ndarray]:
    """Index arrays of each walker's frames (each in time order) among one round's frames.

    A round's frames are the concatenation of its walkers' frames, each walker's in time order.
    This is the one place that splits them: time series (correlation, blocks, transitions,
    chi(t) plots) are taken within one walker, never across the join of two.

    Parameters
    ----------
    n_frames : int
        Number of frames of the round.
    walker : np.ndarray or None, shape=(n_frames,), dtype=int
        Walker index of each frame; ``None`` means one walker.

    Returns
    -------
    list of np.ndarray, dtype=int
        One index array per walker, walkers in order of first appearance, each array
        increasing (the walker's time order). Empty list if ``n_frames == 0``.
    """
    n = int(n_frames)
    if n < 0:
        raise ValueError(f"n_frames must be >= 0. You supplied {n_frames}")
    if walker is None:
        return [np.arange(n)] if n else []
    labels = np.asarray(walker)
    if labels.shape != (n,):
        raise ValueError(
            f"walker must have shape (n_frames,) = ({n},). You supplied shape {labels.shape}"
        )
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise TypeError(f"walker must hold integers. You supplied dtype {labels.dtype}")
    if n == 0:
        return []
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    return [np.flatnonzero(inverse == w) for w in order]


def statistical_inefficiency(series: np.ndarray | Sequence[np.ndarray]) -> float:
    """Statistical inefficiency ``g = 1 + 2 sum_t rho(t)`` of a time series (or several).

    ``g`` is the number of correlated frames worth one independent sample. The normalised
    autocorrelation ``rho`` is pooled over the series (each about the common mean, lags taken
    within a series only) and summed up to Sokal's automatic window (the first lag ``M`` with
    ``M >= 5 g(M)``).

    Parameters
    ----------
    series : np.ndarray, shape=(n_frames,), or a sequence of such arrays
        Equally spaced samples in time order; several arrays are independent series of the
        same process (e.g. walkers).

    Returns
    -------
    float
        ``g >= 1`` (1 for uncorrelated or constant data).
    """
    if isinstance(series, np.ndarray) and series.ndim == 1:
        parts = [series]
    else:
        parts = [np.asarray(s, dtype=float) for s in series]
    parts = [_finite_1d(p, "series") for p in parts if np.asarray(p).size > 0]
    if not parts:
        raise ValueError("series must hold at least one frame")
    mean = np.average(np.concatenate(parts))
    longest = max(p.size for p in parts)
    sums = np.zeros(longest)
    pairs = np.zeros(longest)
    for p in parts:
        x = p - mean
        size = 1 << int(2 * p.size - 1).bit_length()
        spectrum = np.fft.rfft(x, size)
        acov = np.fft.irfft(spectrum * np.conj(spectrum), size)[: p.size]
        sums[: p.size] += acov
        pairs[: p.size] += np.arange(p.size, 0, -1)
    if sums[0] <= 0:
        return 1.0
    rho = (sums / pairs) / (sums[0] / pairs[0])
    g = 1.0 + 2.0 * np.cumsum(rho[1:])  # g[M - 1] = g(M), the sum up to lag M
    window = np.flatnonzero(np.arange(1, longest) >= _SOKAL_WINDOW * g)
    g_final = g[window[0]] if window.size else (g[-1] if g.size else 1.0)
    return float(max(g_final, 1.0))


@dataclass(frozen=True)
class ProfileEstimate:
    """A free-energy profile from MBAR over several rounds, with block-bootstrap errors.

    Attributes
    ----------
    centers : np.ndarray, shape=(n_bins,), dtype=float
        Bin centres, in the units of the binned coordinate.
    free_energy : np.ndarray, shape=(n_bins,), dtype=float
        F in kT (dimensionless), minimum 0, ``+inf`` in empty bins.
    sigma : np.ndarray, shape=(n_bins,), dtype=float
        Bootstrap standard error of F in kT; ``nan`` where the bin is empty in the data or in
        more than 10 % of the replicates. It is the error of F normalised as below (the
        probability of each bin relative to all frames inside the edges), so it includes the
        uncertainty of the MBAR offsets ``f_k``.
    offset : float
        ``free_energy + offset = -ln(p_b / width_b)`` with ``p_b`` the reweighted probability
        of bin ``b`` among the frames inside the edges (the normalisation ``sigma`` refers to).
    free_energies : np.ndarray, shape=(K,), dtype=float
        MBAR ``f_k`` of the data (as in :class:`ReweightResult`).
    free_energies_sigma : np.ndarray, shape=(K,), dtype=float
        Bootstrap standard error of ``f_k`` (kT).
    log_weights : np.ndarray, shape=(n_frames,), dtype=float
        MBAR log-weights of the data (normalised).
    block_lengths : np.ndarray, shape=(K,), dtype=int
        Block length used in each round, in frames (0 for a round without frames).
    statistical_inefficiency : np.ndarray, shape=(K,), dtype=float
        :func:`statistical_inefficiency` of the binned coordinate in each round, frames (nan
        when ``block_length`` was given or the round has no frames). A block length below
        ``5 g`` (rounds too short for 20 such blocks) means sigma is underestimated.
    n_bootstrap : int
        Number of replicates.
    """

    centers: np.ndarray
    free_energy: np.ndarray
    sigma: np.ndarray
    offset: float
    free_energies: np.ndarray
    free_energies_sigma: np.ndarray
    log_weights: np.ndarray
    block_lengths: np.ndarray
    statistical_inefficiency: np.ndarray
    n_bootstrap: int


def _solve_mbar_newton(
    u_kn: np.ndarray,
    n_k: np.ndarray,
    counts: np.ndarray,
    f_init: np.ndarray,
    tolerance: float = 1e-10,
    max_iterations: int = 100,
) -> np.ndarray | None:
    """MBAR with frame multiplicities ``counts`` by Newton's method from ``f_init``.

    Minimises the convex objective ``sum_n m_n logsumexp_k(log N_k + f_k - u_kn) -
    sum_k N_k f_k`` (``m_n`` = counts, ``N_k`` = frames of round k counted with multiplicity)
    over the rounds with ``N_k > 0``, ``f`` of the first of them held at 0, with a backtracking
    line search. Converged when every ``|dObjective/df_k| / N_k`` (the first-order change of
    ``f_k`` in a self-consistent update, kT) is below ``tolerance``.

    Returns ``f`` (shape (K,), only sampled rounds meaningful, others 0), or None if not
    converged.
    """
    sampled = n_k > 0
    u = np.ascontiguousarray(u_kn[sampled])
    n = n_k[sampled].astype(float)
    log_n = np.log(n)
    m = counts.astype(float)
    f = np.array(f_init, dtype=float)[sampled]
    f = f - f[0]

    def evaluate(f: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        p = (log_n + f)[:, None] - u
        top = p.max(axis=0)
        p -= top[None, :]
        np.exp(p, out=p)  # in place: this is the bootstrap's inner loop
        total = p.sum(axis=0)
        p /= total[None, :]
        lse = top + np.log(total)  # logsumexp over rounds, in plain numpy (scipy's is slower)
        return float(m @ lse - n @ f), p @ m - n, p

    value, grad, p = evaluate(f)
    for _ in range(max_iterations):
        if np.max(np.abs(grad) / n) < tolerance:
            out = np.zeros(u_kn.shape[0])
            out[sampled] = f
            return out
        pm = p * m[None, :]
        hessian = np.diag(pm.sum(axis=1)) - pm @ p.T
        step = np.zeros_like(f)
        try:
            step[1:] = -np.linalg.solve(hessian[1:, 1:], grad[1:])
        except np.linalg.LinAlgError:
            return None
        slope = float(grad @ step)
        t = 1.0
        while True:
            new = evaluate(f + t * step)
            if new[0] <= value + 1e-4 * t * slope + 1e-12 * abs(value) or t < 1e-10:
                break
            t *= 0.5
        f = f + t * step
        value, grad, p = new
    return None


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """``logsumexp`` of a 2-D array along ``axis`` in plain numpy (several times faster than
    scipy's for the bootstrap's many calls); ``-inf`` entries allowed."""
    top = a.max(axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(top, axis=axis) + np.log(np.exp(a - top).sum(axis=axis))


def _validate_counts(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}. You supplied {value!r}")
    return int(value)


def bootstrap_free_energy_profile(
    reduced_bias: np.ndarray,
    frames_per_round: Sequence[int],
    values: np.ndarray,
    edges: np.ndarray,
    n_bootstrap: int = 100,
    block_length: int | None = None,
    seed: int = 0,
    walker: np.ndarray | None = None,
    density: bool = True,
) -> ProfileEstimate:
    """MBAR free-energy profile over all rounds, with a block bootstrap that re-solves MBAR.

    Each replicate resamples, within each round separately, contiguous blocks of frames with
    replacement (blocks never straddle two walkers; each round keeps about its number of
    frames), solves the MBAR equations again for the resampled frames (Newton's method from the
    data's ``f_k``), and histograms the resulting weights. The spread of the replicates'
    ``F_b = -ln(p_b / width_b)`` is the standard error, so the uncertainty of the offsets
    ``f_k`` between rounds is part of it.

    Parameters
    ----------
    reduced_bias : np.ndarray, shape=(K, n_frames), dtype=float
        ``V_k(frame n) / kT`` as in :func:`mbar_reweight`; frames ordered round by round, each
        round's frames in time order (per walker).
    frames_per_round : sequence of int, length K
        Frames of each round (sums to n_frames).
    values : np.ndarray, shape=(n_frames,), dtype=float
        The coordinate binned (e.g. chi), in its own units.
    edges : np.ndarray, shape=(n_bins + 1,), dtype=float
        Strictly increasing bin edges (frames outside are ignored).
    n_bootstrap : int
        Number of replicates (>= 2); 50-100 give sigma to ~10 %.
    block_length : int or None
        Frames per block. ``None``: per round, ``ceil(5 g)`` with ``g`` the
        :func:`statistical_inefficiency` of ``values`` in that round (walkers pooled), at most
        the length that leaves 20 blocks in the round (a warning is logged when that limit
        binds: the rounds are then too short for their correlation time and sigma is
        underestimated).
    seed : int
        Seed of the resampling.
    walker : np.ndarray or None, shape=(n_frames,), dtype=int
        Walker index of each frame within its round (see :func:`walker_segments`); ``None``:
        one walker per round.
    density : bool
        As in :func:`free_energy_profile`.

    Returns
    -------
    ProfileEstimate
        The data's profile (min 0), its sigma, the normalisation offset, ``f_k`` with their
        sigma, the log-weights and the block lengths used.

    Notes
    -----
    Cost: one MBAR solve by pymbar on the data, then per replicate a few Newton iterations of
    O(K n_frames) each on the distinct resampled frames.
    """
    u_kn, n_k = _validate_mbar_input(reduced_bias, frames_per_round)
    x, _, e = _validate_profile_input(values, None, edges)
    if x.size != u_kn.shape[1]:
        raise ValueError(
            f"values must have one entry per frame ({u_kn.shape[1]}, the second dimension of "
            f"reduced_bias). You supplied shape {x.shape}"
        )
    n_bootstrap = _validate_counts(n_bootstrap, "n_bootstrap", 2)
    if block_length is not None:
        block_length = _validate_counts(block_length, "block_length", 1)
    labels = None if walker is None else np.asarray(walker)
    if labels is not None and labels.shape != x.shape:
        raise ValueError(
            f"walker must have shape (n_frames,) = {x.shape}. You supplied shape {labels.shape}"
        )

    # the blocks of each round
    starts = np.concatenate([[0], np.cumsum(n_k)])
    round_blocks: list[list[np.ndarray]] = []
    lengths = np.zeros(len(n_k), dtype=np.int64)
    inefficiency = np.full(len(n_k), np.nan)
    for k in range(len(n_k)):
        lo, hi = int(starts[k]), int(starts[k + 1])
        if hi == lo:
            round_blocks.append([])
            continue
        segments = [
            s + lo for s in walker_segments(hi - lo, None if labels is None else labels[lo:hi])
        ]
        if block_length is None:
            g = statistical_inefficiency([x[s] for s in segments])
            inefficiency[k] = g
            wanted = int(np.ceil(BLOCKS_PER_INEFFICIENCY * g))
            limit = max(1, (hi - lo) // MIN_BLOCKS_PER_ROUND)
            if wanted > limit:
                logger.warning(
                    "round %d: statistical inefficiency %.0f frames needs blocks of %d frames, "
                    "but %d frames allow at most %d for %d blocks; the bootstrap error of F is "
                    "underestimated (run longer rounds)",
                    k,
                    g,
                    wanted,
                    hi - lo,
                    limit,
                    MIN_BLOCKS_PER_ROUND,
                )
            lengths[k] = min(wanted, limit)
        else:
            lengths[k] = block_length
        blocks = []
        for s in segments:
            blocks += np.array_split(s, max(1, int(round(s.size / lengths[k]))))
        round_blocks.append(blocks)

    reference = mbar_reweight(u_kn, n_k)
    width = np.diff(e) if density else np.ones(e.size - 1)

    def minus_log_p(v: np.ndarray, lw: np.ndarray) -> np.ndarray:
        hist, _ = np.histogram(v, bins=e, weights=np.exp(lw - lw.max()))
        with np.errstate(divide="ignore"):
            return -np.log(hist / hist.sum() / width)

    inside = (x >= e[0]) & (x <= e[-1])
    if not inside.any():
        raise ValueError(
            f"no frame falls inside the edges [{e[0]:g}, {e[-1]:g}] (values span "
            f"[{x.min():g}, {x.max():g}])"
        )
    f_ref = minus_log_p(x, reference.log_weights)
    rng = np.random.default_rng(seed)
    reps = np.full((n_bootstrap, e.size - 1), np.nan)
    f_k_reps = np.zeros((n_bootstrap, len(n_k)))
    sampled_rounds = [k for k in range(len(n_k)) if round_blocks[k]]
    for b in range(n_bootstrap):
        picks = []
        for k in sampled_rounds:
            blocks = round_blocks[k]
            chosen = rng.integers(0, len(blocks), size=len(blocks))
            picks += [blocks[i] for i in chosen]
        frames, counts = np.unique(np.concatenate(picks), return_counts=True)
        u_b = np.ascontiguousarray(u_kn[:, frames])  # row-major: 10x faster row operations
        n_b = np.zeros(len(n_k), dtype=np.int64)
        np.add.at(n_b, np.searchsorted(starts, frames, side="right") - 1, counts)
        f_b = _solve_mbar_newton(u_b, n_b, counts, reference.free_energies)
        if f_b is None:  # not converged: the plain solver on the frames repeated
            f_b, _ = _solve_mbar_self_consistent(np.repeat(u_b, counts, axis=1), n_b)
        with np.errstate(divide="ignore"):
            log_n_b = np.log(n_b.astype(float))  # -inf for a round without frames
        lw = np.log(counts) - _logsumexp((log_n_b + f_b)[:, None] - u_b, axis=0)
        lw -= _logsumexp(lw[None, :], axis=1)[0]
        f_k_reps[b] = -_logsumexp(lw[None, :] - u_b, axis=1)
        if not ((x[frames] >= e[0]) & (x[frames] <= e[-1])).any():
            continue
        rep = minus_log_p(x[frames], lw)
        reps[b] = np.where(np.isfinite(rep), rep, np.nan)

    sigma = np.full(e.size - 1, np.nan)
    good = (np.isfinite(reps).sum(axis=0) >= _MIN_FINITE_FRACTION * n_bootstrap) & np.isfinite(
        f_ref
    )
    sigma[good] = np.nanstd(reps[:, good], axis=0, ddof=1)
    offset = float(np.min(f_ref[np.isfinite(f_ref)]))
    return ProfileEstimate(
        centers=0.5 * (e[1:] + e[:-1]),
        free_energy=f_ref - offset,
        sigma=sigma,
        offset=offset,
        free_energies=reference.free_energies,
        free_energies_sigma=f_k_reps.std(axis=0, ddof=1),
        log_weights=reference.log_weights,
        block_lengths=lengths,
        statistical_inefficiency=inefficiency,
        n_bootstrap=n_bootstrap,
    )
