"""Block bootstrap of MBAR free-energy profiles, and the time series it rests on.

A round's frames are the concatenation of its walkers' frames, each walker's in time order
(:func:`walker_segments` splits them). Frames of one walker are correlated; the
:func:`statistical_inefficiency` ``g`` of the binned coordinate says how many frames are worth
one independent sample. :func:`bootstrap_free_energy_profile` resamples blocks of about ``5 g``
frames within each round and walker, re-solves MBAR for every replicate (the one solver,
:func:`rave.stats.mbar.solve_mbar`, with frame multiplicities and the data's ``f_k`` as the
start), and histograms the replicate's weights with
:func:`rave.stats.weights.free_energy_histogram`, so the error bars include the uncertainty
of the offsets ``f_k`` between rounds.

Public API
----------
``ProfileEstimate``, ``bootstrap_free_energy_profile``, ``statistical_inefficiency``,
``walker_segments``, ``BLOCKS_PER_INEFFICIENCY``, ``MIN_BLOCKS_PER_ROUND``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .mbar import (
    CONVERGENCE_TOLERANCE,
    _f_from_log_weights,
    _log_weights_from_f,
    _validate_mbar_input,
    mbar_reweight,
    solve_mbar,
)
from .weights import _as_edges, _finite_1d, free_energy_histogram

__all__ = [
    "block_resample",
    "ProfileEstimate",
    "bootstrap_free_energy_profile",
    "statistical_inefficiency",
    "walker_segments",
    "BLOCKS_PER_INEFFICIENCY",
    "MIN_BLOCKS_PER_ROUND",
]

logger = logging.getLogger(__name__)

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


def block_resample(n_frames: int, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of one block-bootstrap replicate: ``n_blocks`` contiguous blocks of
    ``n_frames // n_blocks`` frames, drawn with replacement (frames in time order; the last
    ``n_frames % n_blocks`` frames are never drawn).

    Raises ValueError: when ``n_blocks < 2`` or ``n_frames < n_blocks``.
    """
    if n_frames < n_blocks or n_blocks < 2:
        raise ValueError(f"block_resample needs n_frames >= n_blocks >= 2. You supplied "
                         f"{n_frames}, {n_blocks}")
    size = n_frames // n_blocks
    starts = rng.integers(0, n_blocks, size=n_blocks) * size
    return (starts[:, None] + np.arange(size)[None, :]).reshape(-1)


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

    Raises
    ------
    ValueError
        When ``n_frames < 0`` or ``walker`` is not of shape (n_frames,).
    TypeError
        When ``walker`` holds non-integer values.
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

    Raises
    ------
    ValueError
        When the series hold no frame, or a value that is not finite.
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


def _validate_counts(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}. You supplied {value!r}")
    return int(value)


def _resampling_units(state_groups: Sequence[int] | None, n_states: int) -> list[tuple[int, int]]:
    """(first, last) state of each resampling unit: every state alone, or each run of equal
    labels of ``state_groups`` (which must be consecutive)."""
    if state_groups is None:
        return [(k, k) for k in range(n_states)]
    labels = np.asarray(state_groups)
    if labels.shape != (n_states,):
        raise ValueError(f"state_groups must hold one label per MBAR state ({n_states}). You "
                         f"supplied shape {labels.shape}")
    units, seen = [], set()
    first = 0
    for k in range(1, n_states + 1):
        if k == n_states or labels[k] != labels[first]:
            if labels[first].item() in seen:
                raise ValueError(f"state_groups must list each group's states consecutively; "
                                 f"group {labels[first].item()!r} appears twice. You supplied "
                                 f"{labels.tolist()}")
            seen.add(labels[first].item())
            units.append((first, k - 1))
            first = k
    return units


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
    state_groups: Sequence[int] | None = None,
    frame_states: np.ndarray | None = None,
) -> ProfileEstimate:
    """MBAR free-energy profile over all rounds, with a block bootstrap that re-solves MBAR.

    Each replicate resamples, within each round separately, contiguous blocks of frames with
    replacement (blocks never straddle two walkers; each round keeps about its number of
    frames), solves the MBAR equations again for the resampled frames (Newton's method from the
    data's ``f_k``), and histograms the resulting weights. The spread of the replicates'
    ``F_b = -ln(p_b / width_b)`` is the standard error, so the uncertainty of the offsets
    ``f_k`` between rounds is part of it.

    A "round" here is a resampling unit: by default each MBAR state, or, with
    ``state_groups``, each group of consecutive states (e.g. the blocks of one adaptive round,
    which are consecutive stretches of the same walkers' trajectories). Blocks are then cut
    within each walker's frames of the group, across its states, so they can be as long as the
    correlation time asks even when each state is short; a frame keeps its state, and a
    replicate's frames per state follow from the blocks it drew.

    Parameters
    ----------
    reduced_bias : np.ndarray, shape=(K, n_frames), dtype=float
        ``V_k(frame n) / kT`` as in :func:`rave.stats.mbar.mbar_reweight`; frames ordered
        round by round, each round's frames in time order (per walker).
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
        As in :func:`rave.stats.weights.free_energy_profile`.
    state_groups : sequence of int, length K, optional
        The resampling unit of each state: states with equal labels form one unit and must be
        consecutive (e.g. the round index of each state). ``None``: each state alone.
    frame_states : np.ndarray, shape=(n_frames,), dtype=int, optional
        The MBAR state of each frame, where a unit's states interleave in time (an exploring
        round's temperatures); each unit's frames must still be one contiguous range.
        ``None``: the states in frame order, ``frames_per_round[k]`` frames each.

    Returns
    -------
    ProfileEstimate
        The data's profile (min 0), its sigma, the normalisation offset, ``f_k`` with their
        sigma, the log-weights and the block lengths used.

    Raises
    ------
    ValueError
        When ``values`` does not hold one value per frame of ``reduced_bias``,
        ``walker`` differs from ``values`` in shape, or no value falls inside ``edges`` (and
        for invalid MBAR input, edges or counts).

    Notes
    -----
    Cost: one MBAR solve on the data, then per replicate a few Newton iterations of
    O(K n_frames) each on the distinct resampled frames (warm start from the data's ``f_k``).
    """
    u_kn, n_k = _validate_mbar_input(reduced_bias, frames_per_round)
    x = _finite_1d(values, "values")
    e = _as_edges(edges)
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

    # the blocks of each resampling unit (a state, or a group of consecutive states)
    starts = np.concatenate([[0], np.cumsum(n_k)])
    units = _resampling_units(state_groups, len(n_k))
    if frame_states is None:
        states_of = np.repeat(np.arange(len(n_k)), n_k)
    else:
        states_of = np.asarray(frame_states)
        if states_of.shape != x.shape or states_of.dtype.kind not in "iu":
            raise ValueError(f"frame_states must hold one integer state per frame {x.shape}. "
                             f"You supplied shape {states_of.shape}, dtype {states_of.dtype}")
        if not np.array_equal(np.bincount(states_of, minlength=len(n_k)), n_k):
            raise ValueError("frame_states must give each state its frames_per_round frames")
        for first, last in units:
            inside = states_of[starts[first]:starts[last + 1]]
            if inside.size and (inside.min() < first or inside.max() > last):
                raise ValueError(f"the frames of MBAR states {first}-{last} must be one "
                                 f"contiguous range (frame_states)")
    round_blocks: list[list[np.ndarray]] = []
    lengths = np.zeros(len(n_k), dtype=np.int64)
    inefficiency = np.full(len(n_k), np.nan)
    for first, last in units:
        lo, hi = int(starts[first]), int(starts[last + 1])
        members = slice(first, last + 1)
        if hi == lo:
            round_blocks.append([])
            continue
        segments = [
            s + lo for s in walker_segments(hi - lo, None if labels is None else labels[lo:hi])
        ]
        if block_length is None:
            g = statistical_inefficiency([x[s] for s in segments])
            inefficiency[members] = g
            wanted = int(np.ceil(BLOCKS_PER_INEFFICIENCY * g))
            limit = max(1, (hi - lo) // MIN_BLOCKS_PER_ROUND)
            if wanted > limit:
                logger.warning(
                    "%s: statistical inefficiency %.0f frames needs blocks of %d frames, but "
                    "%d frames allow at most %d for %d blocks; the bootstrap error of F is "
                    "underestimated (run longer rounds)",
                    f"MBAR state {first} (a round, or a block of an OPES round)"
                    if first == last else f"MBAR states {first}-{last} (one round)",
                    g,
                    wanted,
                    hi - lo,
                    limit,
                    MIN_BLOCKS_PER_ROUND,
                )
            lengths[members] = min(wanted, limit)
        else:
            lengths[members] = block_length
        blocks = []
        for s in segments:
            blocks += np.array_split(s, max(1, int(round(s.size / lengths[first]))))
        round_blocks.append(blocks)

    reference = mbar_reweight(u_kn, n_k)
    inside = (x >= e[0]) & (x <= e[-1])
    if not inside.any():
        raise ValueError(
            f"no frame falls inside the edges [{e[0]:g}, {e[-1]:g}] (values span "
            f"[{x.min():g}, {x.max():g}])"
        )
    f_ref = free_energy_histogram(x, reference.log_weights, e, density)
    rng = np.random.default_rng(seed)
    reps = np.full((n_bootstrap, e.size - 1), np.nan)
    f_k_reps = np.zeros((n_bootstrap, len(n_k)))
    sampled_rounds = [k for k in range(len(round_blocks)) if round_blocks[k]]
    for b in range(n_bootstrap):
        picks = []
        for k in sampled_rounds:
            blocks = round_blocks[k]
            chosen = rng.integers(0, len(blocks), size=len(blocks))
            picks += [blocks[i] for i in chosen]
        frames, counts = np.unique(np.concatenate(picks), return_counts=True)
        u_b = np.ascontiguousarray(u_kn[:, frames])  # row-major: 10x faster row operations
        n_b = np.zeros(len(n_k), dtype=np.int64)
        np.add.at(n_b, states_of[frames], counts)
        f_b, error = solve_mbar(u_b, n_b, counts, initial_f=reference.free_energies)
        if not error <= CONVERGENCE_TOLERANCE:  # the warm start failed: start afresh
            f_b, _ = solve_mbar(u_b, n_b, counts)
        lw = _log_weights_from_f(u_b, n_b, f_b, counts)
        f_k_reps[b] = _f_from_log_weights(u_b, lw)
        if not ((x[frames] >= e[0]) & (x[frames] <= e[-1])).any():
            continue
        try:
            rep = free_energy_histogram(x[frames], lw, e, density)
        except ValueError:  # every weight inside the edges underflowed
            continue
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
