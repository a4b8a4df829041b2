"""MBAR: weights of frames sampled under several static biases, for the unbiased ensemble.

State ``k`` (``k = 0 .. K-1``; a round of a RAVE campaign, or a block of versions of an adaptive
OPES bias within a round) samples the physical potential plus a static bias ``V_k`` (kJ/mol;
``V_0 = 0`` for the first, unbiased round). The caller supplies the *reduced* bias of every
frame under every state's bias,

    ``reduced_bias[k, n] = V_k(frame n) / kT``  (dimensionless),

with the frames ordered state by state (the first ``frames_per_round[0]`` frames come from
state 0, and so on). Everything here works on log-weights; no raw exponential of a bias is ever
formed, so biases of hundreds of kT are fine.

Within a single state, ``w_n = exp(+V(frame n) / kT)`` is exact. Across states it is not: each
biased ensemble has its own normalisation ``Z_k``, and concatenating the per-state weights mixes
the states in the wrong proportions (errors of several kT in practice). MBAR (Shirts &
Chodera, J. Chem. Phys. 129, 124105 (2008)) solves for the offsets ``f_k`` and gives

    ``log w_n = -logsumexp_k(log N_k + f_k - reduced_bias[k, n])``.

One solver, :func:`solve_mbar`, serves every caller (:func:`mbar_reweight` on the data, and each
replicate of :func:`rave.stats.bootstrap.bootstrap_free_energy_profile` with frame
multiplicities and a warm start). It minimises the convex MBAR objective, L-BFGS from zero (or
from a given start) and then Newton's method with a backtracking line search, to a
self-consistency error below ``1e-10`` kT. Its ``f_k`` equal pymbar's to ``1e-8`` (pymbar is
the test oracle); pymbar is not called at run time (see docs/benchmarks.md).

:func:`reweight_rounds` builds the reduced biases itself from the frames and biases of rounds
recorded in one's own OpenMM script (every round's bias evaluated on every frame).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .weights import (
    _finite_1d,
    as_energy_kjmol,
    effective_sample_size,
    normalise_log_weights,
)

__all__ = ["ReweightResult", "mbar_reweight", "reweight_rounds", "solve_mbar",
           "single_round_log_weights"]

logger = logging.getLogger(__name__)

#: Largest allowed violation (dimensionless, in units of kT) of the MBAR self-consistent
#: equations ``f_k = -ln sum_n w_n exp(-u_kn)`` before a solution counts as unconverged (a
#: warning is logged).
CONVERGENCE_TOLERANCE = 1e-6

#: Self-consistency error (kT) the solver aims for.
SOLVER_TOLERANCE = 1e-10

#: ``exp`` of a log-probability below this (e^-345 ~ 1e-150) is taken as 0, so that no subnormal
#: number enters a product (subnormals slow the Hessian's matrix product down).
_LOG_TINY = -345.0


@dataclass(frozen=True)
class ReweightResult:
    """Log-weights of all frames for the unbiased ensemble.

    Attributes
    ----------
    log_weights : np.ndarray, shape=(n_frames,), dtype=float
        Natural log of each frame's weight in the unbiased ensemble, normalised so that
        ``logsumexp(log_weights) == 0`` (the weights sum to 1).
    free_energies : np.ndarray, shape=(K,), dtype=float
        Dimensionless free energy of each state's biased ensemble relative to the unbiased
        ensemble, ``f_k = -ln(Z_k / Z_unbiased)`` with ``Z_k = integral exp(-U/kT - V_k/kT)``.
        When state 0 was unbiased (``V_0 = 0``), ``f_0 = 0`` up to round-off. Multiply by kT
        for kJ/mol.
    effective_sample_size : float
        Kish effective sample size of the weights, in frames (between 1 and n_frames).
    method : str
        ``"mbar"`` (:func:`solve_mbar`) or ``"single-round"`` (K = 1: ``w = exp(+V/kT)`` is
        exact).
    """

    log_weights: np.ndarray
    free_energies: np.ndarray
    effective_sample_size: float
    method: str


# --------------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------------


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
    return normalise_log_weights(_finite_1d(reduced_bias_of_own_round, "reduced_bias_of_own_round"))


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


# --------------------------------------------------------------------------------------------
# the solver
# --------------------------------------------------------------------------------------------


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    """``logsumexp`` of a 2-D array along ``axis`` in plain numpy (several times faster than
    scipy's for the bootstrap's many calls); ``-inf`` entries allowed."""
    top = a.max(axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(top, axis=axis) + np.log(np.exp(a - top).sum(axis=axis))


def _log_weights_from_f(
    u_kn: np.ndarray, n_k: np.ndarray, f_k: np.ndarray, counts: np.ndarray | None = None
) -> np.ndarray:
    """Normalised MBAR log-weights ``ln m_n - logsumexp_k(ln N_k + f_k - u_kn)`` of the frames
    (``m_n``: multiplicity, 1 without ``counts``)."""
    with np.errstate(divide="ignore"):
        log_n = np.log(n_k.astype(float))  # -inf for empty states: they drop out
    lw = -_logsumexp((log_n + f_k)[:, None] - u_kn, axis=0)
    if counts is not None:
        lw = lw + np.log(counts)
    return lw - _logsumexp(lw[None, :], axis=1)[0]


def _f_from_log_weights(u_kn: np.ndarray, log_weights: np.ndarray) -> np.ndarray:
    """``f_k = -ln sum_n w_n exp(-u_kn)`` for normalised weights (relative to their ensemble)."""
    return -_logsumexp(log_weights[None, :] - u_kn, axis=1)


def _validate_solver_input(
    reduced_bias: np.ndarray, frames_per_state: np.ndarray, counts: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    u_kn = np.asarray(reduced_bias, dtype=float)
    if u_kn.ndim != 2 or not np.isfinite(u_kn).all():
        raise ValueError(
            f"reduced_bias must be a finite 2-D array, shape (K, n_frames). You supplied shape "
            f"{u_kn.shape} with {int((~np.isfinite(u_kn)).sum())} NaN or inf value(s)"
        )
    n_k = np.asarray(frames_per_state)
    if n_k.shape != (u_kn.shape[0],) or n_k.dtype.kind not in "iu" or (n_k < 0).any():
        raise ValueError(
            f"frames_per_state must be {u_kn.shape[0]} integers >= 0, one per state. You "
            f"supplied {n_k.tolist()}"
        )
    m = None
    total = u_kn.shape[1]
    if counts is not None:
        m = np.asarray(counts, dtype=float)
        if m.shape != (u_kn.shape[1],) or not (m >= 1).all() or (m != np.round(m)).any():
            raise ValueError(
                f"counts must hold one integer >= 1 per frame ({u_kn.shape[1]}). You supplied "
                f"shape {m.shape}"
            )
        total = int(m.sum())
    if int(n_k.sum()) != total or total == 0:
        raise ValueError(
            f"frames_per_state must sum to the number of frames counted with multiplicity "
            f"({total}) and be > 0. You supplied {n_k.tolist()}"
        )
    return u_kn, n_k, m


def solve_mbar(
    reduced_bias: np.ndarray,
    frames_per_state: np.ndarray,
    counts: np.ndarray | None = None,
    initial_f: np.ndarray | None = None,
    tolerance: float = SOLVER_TOLERANCE,
    max_iterations: int = 100,
) -> tuple[np.ndarray, float]:
    """Solve the MBAR equations for the free energies ``f_k`` of the states.

    Minimises the convex objective ``sum_n m_n logsumexp_k(ln N_k + f_k - u_kn) - sum_k N_k
    f_k`` over the states with ``N_k > 0`` (``f`` of the first of them held at 0): L-BFGS from
    ``f = 0`` (skipped when ``initial_f`` is given), then Newton's method with a backtracking
    line search. Converged when every ``|dObjective/df_k| / N_k`` (the change of ``f_k`` in one
    self-consistent update, kT) is below ``tolerance``.

    Parameters
    ----------
    reduced_bias : np.ndarray, shape=(K, n_frames), dtype=float
        ``u_kn``, the reduced bias of every state at every frame, finite.
    frames_per_state : np.ndarray, shape=(K,), dtype=int
        ``N_k``, frames sampled in each state, counted with multiplicity.
    counts : np.ndarray or None, shape=(n_frames,), dtype=int
        Multiplicity ``m_n`` of each frame (a bootstrap replicate's distinct frames); ``None``:
        every frame once. The result equals MBAR on the frames repeated ``m_n`` times.
    initial_f : np.ndarray or None, shape=(K,), dtype=float
        Starting ``f_k`` (e.g. the data's, for a bootstrap replicate); ``None``: L-BFGS first.
    tolerance : float
        Self-consistency error to reach, kT.
    max_iterations : int
        Newton iterations at most.

    Returns
    -------
    f_k : np.ndarray, shape=(K,), dtype=float
        Dimensionless free energies, ``f`` of the first sampled state 0; 0 for states without
        frames (compute theirs from the weights, as :func:`mbar_reweight` does).
    error : float
        Final self-consistency error, kT (``> tolerance`` if not converged).
    """
    u_kn, n_k, m = _validate_solver_input(reduced_bias, frames_per_state, counts)
    sampled = n_k > 0
    u = np.ascontiguousarray(u_kn[sampled])  # row-major: ~10x faster row operations
    n = n_k[sampled].astype(float)
    log_n = np.log(n)

    def evaluate(f: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        p = (log_n + f)[:, None] - u
        top = p.max(axis=0)
        p -= top[None, :]
        p[p < _LOG_TINY] = -np.inf
        np.exp(p, out=p)  # in place: this is the inner loop
        total = p.sum(axis=0)
        p /= total[None, :]  # p_kn, the posterior of state k for frame n
        lse = top + np.log(total)
        if m is None:
            return float(lse.sum() - n @ f), p.sum(axis=1) - n, p
        return float(m @ lse - n @ f), p @ m - n, p

    if initial_f is None:
        f = np.zeros(n.size)
        if n.size > 1:
            scale = float(n.sum())

            def objective(g: np.ndarray) -> tuple[float, np.ndarray]:
                value, grad, _ = evaluate(np.concatenate([[0.0], g]))
                return value / scale, grad[1:] / scale

            f[1:] = minimize(objective, f[1:], jac=True, method="L-BFGS-B").x
    else:
        f = np.asarray(initial_f, dtype=float)[sampled]
        f = f - f[0]

    value, grad, p = evaluate(f)
    for _ in range(max_iterations):
        if np.max(np.abs(grad) / n) < tolerance:
            break
        pm = p if m is None else p * m[None, :]
        hessian = np.diag(grad + n) - pm @ p.T
        step = np.zeros_like(f)
        try:
            step[1:] = -np.linalg.solve(hessian[1:, 1:], grad[1:])
        except np.linalg.LinAlgError:  # a state indistinguishable from another: least squares
            step[1:] = -np.linalg.lstsq(hessian[1:, 1:], grad[1:], rcond=None)[0]
        slope = float(grad @ step)
        t = 1.0
        while True:
            new = evaluate(f + t * step)
            if new[0] <= value + 1e-4 * t * slope + 1e-12 * abs(value) or t < 1e-10:
                break
            t *= 0.5
        f = f + t * step
        value, grad, p = new
    out = np.zeros(n_k.shape[0])
    out[sampled] = f
    return out, float(np.max(np.abs(grad) / n))


# --------------------------------------------------------------------------------------------
# the public face
# --------------------------------------------------------------------------------------------


def mbar_reweight(reduced_bias: np.ndarray, frames_per_round: Sequence[int]) -> ReweightResult:
    """Weights of frames from several biased states for the unbiased ensemble, by MBAR.

    Parameters
    ----------
    reduced_bias : np.ndarray, shape=(K, n_frames), dtype=float
        ``reduced_bias[k, n] = V_k(frame n) / kT`` (dimensionless): the bias of state ``k``
        evaluated at frame ``n``, for every state and every frame. Frames are ordered state
        by state. Must be finite.
    frames_per_round : sequence of int, length K
        ``N_k``, the number of frames sampled in state ``k``; sums to ``n_frames``. A state may
        have 0 frames (its ``f_k`` is still reported).

    Returns
    -------
    ReweightResult
        ``log_weights`` (normalised, ``logsumexp == 0``), ``free_energies`` ``f_k =
        -ln(Z_k/Z_unbiased)`` (so ``f_0 = 0`` when ``V_0 = 0``), the Kish effective sample size
        and the method used.

    Notes
    -----
    The MBAR equations are solved by :func:`solve_mbar`; a warning is logged if its answer
    violates the self-consistent equations by more than ``1e-6`` kT (the states may not
    overlap). With K = 1 no solver is needed: ``log w = +V_0/kT`` (``method ==
    "single-round"``). Adding a constant ``c_k`` to a state's bias leaves the weights unchanged
    and shifts ``f_k`` by ``+c_k``.

    The weights are those of the *unbiased* ensemble, i.e. of the reduced bias 0, whatever
    ``V_0`` is.
    """
    u_kn, n_k = _validate_mbar_input(reduced_bias, frames_per_round)
    if u_kn.shape[0] == 1:
        method = "single-round"
        log_w = normalise_log_weights(u_kn[0])
    else:
        method = "mbar"
        f_k, error = solve_mbar(u_kn, n_k)
        if not error <= CONVERGENCE_TOLERANCE:
            logger.warning(
                "MBAR reached a self-consistency error of %.3g kT (> %.1g); the states may not "
                "overlap. Check the effective sample size.",
                error,
                CONVERGENCE_TOLERANCE,
            )
        log_w = _log_weights_from_f(u_kn, n_k, f_k)
    return ReweightResult(
        log_weights=log_w,
        free_energies=_f_from_log_weights(u_kn, log_w),
        effective_sample_size=effective_sample_size(log_w),
        method=method,
    )


def reweight_rounds(features: Sequence[np.ndarray], biases: Sequence, kT) -> ReweightResult:
    """MBAR weights for the unbiased ensemble of rounds sampled under static biases.

    Round ``k`` recorded ``features[k]`` under the bias ``biases[k]``; every round's bias is
    evaluated on every frame of every round and the frames are reweighted by
    :func:`mbar_reweight`. This is the reweighting of a script that runs its rounds itself
    (a :class:`rave.BiasForce` and a :class:`rave.CVReporter` per round: ``read_cv(path).features``
    and ``bias_force.bias`` of each round).

    Parameters
    ----------
    features : sequence of np.ndarray, shape=(n_frames_k, n_features)
        The order parameters of each round's frames, in their own units; one array per round.
    biases : sequence
        One per round: None for an unbiased round, else the static bias it ran under, an
        object whose ``energy(features)`` gives the bias in kJ/mol of each frame (e.g. a
        :class:`rave.bias_grid.Bias`).
    kT : float or openmm.unit.Quantity
        Thermal energy of the simulations, kJ/mol (or an energy Quantity).

    Returns
    -------
    ReweightResult
        Log-weights of the frames of all rounds, round after round (``np.concatenate
        (features)``'s order), normalised; ``free_energies`` per round.

    Raises
    ------
    ValueError
        No round, not one bias per round, a round's features that are not 2-D or have another
        number of order parameters than the first round's, or a bias whose energies are not
        one finite value per frame.
    TypeError
        A bias without ``energy``, or ``kT`` that is not an energy.

    Examples
    --------
    >>> result = reweight_rounds([round0.features, round1.features], [None, bias], kT)
    >>> weights = np.exp(result.log_weights)   # of np.concatenate([round0, round1]) frames
    """
    kT = as_energy_kjmol(kT, "kT")
    rounds = [np.asarray(x, dtype=float) for x in features]
    biases = list(biases)
    if not rounds:
        raise ValueError("features must hold the frames of at least one round. You supplied "
                         "none")
    if len(biases) != len(rounds):
        raise ValueError(f"biases must hold one bias (or None) per round: {len(rounds)} "
                         f"round(s) of features. You supplied {len(biases)}")
    width = rounds[0].shape[1] if rounds[0].ndim == 2 else None
    for k, x in enumerate(rounds):
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"features[{k}] must be shape (n_frames, {width}) like "
                             f"features[0]. You supplied {x.shape}")
    frames = np.concatenate(rounds)
    reduced = np.zeros((len(rounds), len(frames)))
    for k, bias in enumerate(biases):
        if bias is None:
            continue
        if not callable(getattr(bias, "energy", None)):
            raise TypeError(f"biases[{k}] must be None or have energy(features) in kJ/mol (a "
                            f"rave.bias_grid.Bias). You supplied {type(bias).__name__}")
        energy = np.asarray(bias.energy(frames), dtype=float)
        if energy.shape != (len(frames),) or not np.all(np.isfinite(energy)):
            raise ValueError(f"biases[{k}].energy must give one finite energy per frame, shape "
                             f"({len(frames)},). It gave shape {energy.shape}")
        reduced[k] = energy / kT
    return mbar_reweight(reduced, [len(x) for x in rounds])
