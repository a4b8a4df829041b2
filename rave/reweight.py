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

Public API
----------
``ReweightResult``, ``mbar_reweight``, ``single_round_log_weights``, ``effective_sample_size``,
``free_energy_profile``, ``free_energy_uncertainty``.
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
    "free_energy_uncertainty",
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


def free_energy_uncertainty(
    values: np.ndarray,
    log_weights: np.ndarray | None,
    edges: np.ndarray,
    n_blocks: int = 10,
    n_bootstrap: int = 200,
    seed: int = 0,
    kT: float | None = None,
    density: bool = True,
) -> np.ndarray:
    """Block-bootstrap standard error of ``free_energy_profile``.

    The frames are cut into ``n_blocks`` contiguous blocks (in the given order, i.e. in time
    if frames are in time order, which keeps the correlation within a block); blocks are
    resampled with replacement and the profile recomputed with the *same* log-weights (the
    MBAR offsets are not re-solved, so their uncertainty is not included). Each replicate's
    profile is aligned to the full-data profile by the mean over bins finite in both.

    Parameters
    ----------
    values, log_weights, edges, kT, density
        As in ``free_energy_profile``.
    n_blocks : int
        Number of contiguous blocks (>= 2).
    n_bootstrap : int
        Number of bootstrap replicates (>= 2).
    seed : int
        Seed of the resampling.

    Returns
    -------
    np.ndarray, shape=(n_bins,), dtype=float
        Standard deviation of F over the replicates, in kT (or kJ/mol if ``kT`` is given);
        ``nan`` in bins that are empty in the full data or in more than half the replicates.
    """
    x, lw, e = _validate_profile_input(values, log_weights, edges)
    if kT is not None:
        kT = _as_positive_energy(kT, "kT")
    if int(n_blocks) != n_blocks or n_blocks < 2 or n_blocks > x.size:
        raise ValueError(
            f"n_blocks must be an integer in [2, n_frames = {x.size}]. You supplied {n_blocks}"
        )
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be an integer >= 2. You supplied {n_bootstrap}")
    _, f_ref = _profile(x, lw, e, density)
    blocks = np.array_split(np.arange(x.size), int(n_blocks))
    rng = np.random.default_rng(seed)
    reps = np.full((int(n_bootstrap), e.size - 1), np.nan)
    for b in range(int(n_bootstrap)):
        pick = rng.integers(0, len(blocks), size=len(blocks))
        idx = np.concatenate([blocks[i] for i in pick])
        _, f = _profile(x[idx], lw[idx], e, density)
        both = np.isfinite(f) & np.isfinite(f_ref)
        if both.any():
            f = f - np.mean(f[both] - f_ref[both])
        reps[b] = np.where(np.isfinite(f), f, np.nan)
    n_ok = np.isfinite(reps).sum(axis=0)
    sigma = np.full(e.size - 1, np.nan)
    good = (n_ok > n_bootstrap / 2) & np.isfinite(f_ref)
    sigma[good] = np.nanstd(reps[:, good], axis=0, ddof=1)
    return sigma if kT is None else sigma * kT
