"""Metastable states of F(chi) and transitions between them (pure functions).

Metastable states (:func:`find_metastable_states`): basins of the final F(chi) (lightly
smoothed) over bins with at least ``MIN_BIN_FRAMES`` frames, whose minimum lies at least
``min_depth_kT`` (2 kT) below the lower of its two neighbouring barriers and whose core (the
contiguous range around the minimum where F < F_min + ``core_kT``, 1 kT) holds at least
``MIN_STATE_FRAMES`` frames. Bins without frames never make a state. A transition
(:func:`count_transitions`) is counted when a walker enters a core other than the last one it
was in: the frames between cores are a hysteresis band, so recrossings of the barrier region
that do not reach the other core count nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stats import walker_segments

__all__ = ["MIN_BIN_FRAMES", "MIN_STATE_FRAMES", "MetastableState", "count_transitions",
           "find_metastable_states", "transition_matrix"]


@dataclass(frozen=True)
class MetastableState:
    """A basin of F(chi) deep and populated enough to count as a state.

    Attributes
    ----------
    minimum : float
        chi at the minimum (a bin centre), units of chi.
    free_energy_kT : float
        F at the minimum (smoothed profile), kT.
    depth_kT : float
        Lower neighbouring barrier minus ``free_energy_kT`` (kT); ``inf`` when no sampled
        barrier separates the state from another one (the only state, or states separated by
        bins without frames).
    core : tuple of float
        ``(low, high)`` chi range of the core (bin edges).
    frames : int or None
        Frames in the core (None when the profile came without counts).
    """

    minimum: float
    free_energy_kT: float
    depth_kT: float
    core: tuple[float, float]
    frames: int | None = None


#: Fewest frames in a bin for its F to count as sampled by the state finder: with fewer, the
#: bin's relative count error exceeds 1/sqrt(5) = 45 % (~0.45 kT in F) and a lone frame of the tail
#: would make a "minimum" between two empty bins.
MIN_BIN_FRAMES = 5
#: Fewest frames in a state's core: a state is where the walkers dwelt, not one visit of a few
#: frames (a core of a basin visited once in a short campaign holds hundreds).
MIN_STATE_FRAMES = 20


def _smooth(profile: np.ndarray, half_width: int) -> np.ndarray:
    """Moving average over ``2 half_width + 1`` bins of the finite values; empty bins stay inf."""
    finite = np.isfinite(profile)
    if half_width == 0:
        return np.where(finite, profile, np.inf)
    values = np.where(finite, profile, 0.0)
    kernel = np.ones(2 * half_width + 1)
    sums = np.convolve(values, kernel, mode="same")
    counts = np.convolve(finite.astype(float), kernel, mode="same")
    return np.where(finite, sums / np.maximum(counts, 1.0), np.inf)


def _count_arg(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}. You supplied {value!r}")
    return int(value)


def find_metastable_states(
    centers: np.ndarray,
    profile_kT: np.ndarray,
    min_depth_kT: float = 2.0,
    core_kT: float = 1.0,
    smoothing_bins: int = 1,
    counts: np.ndarray | None = None,
    min_bin_frames: int = MIN_BIN_FRAMES,
    min_state_frames: int = MIN_STATE_FRAMES,
) -> list[MetastableState]:
    """Metastable states of a 1-D free-energy profile: deep, populated minima and their cores.

    The rule, step by step:

    1. A bin is *sampled* when its F is finite and (given ``counts``) it holds at least
       ``min_bin_frames`` frames; other bins have no F (``+inf``). Bins without frames are
       never states and never join two states: they act as barriers of unknown height.
    2. The sampled F is smoothed by a moving average over ``2 smoothing_bins + 1`` bins (over
       sampled bins only).
    3. Every local minimum of the smoothed F is a candidate. Its depth is the lower of its two
       barriers (the highest F between it and the next candidate on each side, ``inf`` across
       unsampled bins; a side with no further candidate has no barrier) minus its F; its core
       is the contiguous run of bins around it with smoothed F < F_min + ``core_kT``.
    4. A candidate fails when it is shallower than ``min_depth_kT`` or (given ``counts``) its
       core holds fewer than ``min_state_frames`` frames. The shallowest failing candidate is
       merged into the neighbour across its lower barrier when that barrier was sampled (a
       shallow one: the merged basin keeps the lower minimum; a thinly populated one: the
       neighbour's minimum), and is dropped when no sampled barrier joins it to a neighbour.
       This repeats until no candidate fails.

    Parameters
    ----------
    centers : np.ndarray, shape=(n_bins,), dtype=float
        Strictly increasing bin centres (units of chi), at least 3.
    profile_kT : np.ndarray, shape=(n_bins,), dtype=float
        F in kT; ``+inf`` for empty bins (no NaN, no ``-inf``).
    min_depth_kT : float
        Least depth of a state, kT (> 0).
    core_kT : float
        Height of the core above the minimum, kT; ``0 < core_kT < min_depth_kT`` so that cores
        never touch.
    smoothing_bins : int
        Half-width of the moving average, bins (>= 0; 0: no smoothing).
    counts : np.ndarray or None, shape=(n_bins,), dtype=int
        Frames in each bin (unweighted). ``None``: every finite bin counts as sampled and no
        state is refused for its frames (an analytic profile).
    min_bin_frames : int
        Fewest frames in a sampled bin (>= 1; used with ``counts``).
    min_state_frames : int
        Fewest frames in a state's core (>= 1; used with ``counts``).

    Returns
    -------
    list of MetastableState
        In increasing chi; empty if no bin is sampled or no basin holds enough frames.
    """
    c = np.asarray(centers, dtype=float)
    f = np.asarray(profile_kT, dtype=float)
    if c.ndim != 1 or c.size < 3:
        raise ValueError(f"centers must be 1-D with at least 3 bins. You supplied shape {c.shape}")
    if not np.isfinite(c).all() or not (np.diff(c) > 0).all():
        raise ValueError("centers must be finite and strictly increasing")
    if f.shape != c.shape:
        raise ValueError(
            f"profile_kT must have the shape of centers {c.shape}. You supplied {f.shape}"
        )
    if np.isnan(f).any() or np.isneginf(f).any():
        raise ValueError("profile_kT must not contain NaN or -inf (empty bins are +inf)")
    if not np.isfinite(min_depth_kT) or min_depth_kT <= 0:
        raise ValueError(f"min_depth_kT must be > 0 (kT). You supplied {min_depth_kT}")
    if not (0 < core_kT < min_depth_kT):
        raise ValueError(
            f"core_kT must be in (0, min_depth_kT = {min_depth_kT}) kT so that cores do not "
            f"touch. You supplied {core_kT}"
        )
    smoothing_bins = _count_arg(smoothing_bins, "smoothing_bins", 0)
    min_bin_frames = _count_arg(min_bin_frames, "min_bin_frames", 1)
    min_state_frames = _count_arg(min_state_frames, "min_state_frames", 1)
    if counts is None:
        n_frames = None
    else:
        n_frames = np.asarray(counts)
        if n_frames.shape != c.shape or not np.issubdtype(n_frames.dtype, np.integer):
            raise ValueError(
                f"counts must be integers of the shape of centers {c.shape}. You supplied "
                f"shape {n_frames.shape}, dtype {n_frames.dtype}"
            )
        if (n_frames < 0).any():
            raise ValueError("counts must be >= 0 (frames per bin)")
        f = np.where(n_frames >= min_bin_frames, f, np.inf)
    s = _smooth(f, smoothing_bins)
    n = s.size
    if not np.isfinite(s).any():
        return []
    left_lower = np.concatenate([[True], s[1:] < s[:-1]])
    right_not_higher = np.concatenate([s[:-1] <= s[1:], [True]])
    minima = list(np.flatnonzero(np.isfinite(s) & left_lower & right_not_higher))
    barriers = [float(np.max(s[a : b + 1])) for a, b in zip(minima[:-1], minima[1:], strict=True)]

    def sides(j: int) -> tuple[float, float]:
        left = barriers[j - 1] if j > 0 else np.inf
        right = barriers[j] if j < len(barriers) else np.inf
        return left, right

    def depth(j: int) -> float:
        return min(sides(j)) - s[minima[j]]

    def core(m: int) -> tuple[int, int]:
        inside = s < s[m] + core_kT
        lo = hi = m
        while lo > 0 and inside[lo - 1]:
            lo -= 1
        while hi < n - 1 and inside[hi + 1]:
            hi += 1
        return lo, hi

    def core_frames(m: int) -> int | None:
        if n_frames is None:
            return None
        lo, hi = core(m)
        return int(n_frames[lo : hi + 1].sum())

    while minima:
        depths = [depth(j) for j in range(len(minima))]
        frames = [core_frames(m) for m in minima]
        thin = [x is not None and x < min_state_frames for x in frames]
        failing = [j for j in range(len(minima)) if thin[j] or depths[j] < min_depth_kT]
        if not failing:
            break
        j = min(failing, key=lambda i: (depths[i], frames[i] or 0))
        left, right = sides(j)
        if not np.isfinite(min(left, right)):
            # no sampled barrier joins it to a neighbour, so its depth is inf and it fails for
            # its frames: drop it (the barriers on both sides were unsampled; one remains)
            del minima[j]
            if barriers:
                del barriers[j - 1 if j > 0 else 0]
            continue
        other = j - 1 if left <= right else j + 1
        lo, hi = sorted((j, other))
        if thin[j]:
            keep = minima[other]
        else:
            keep = minima[lo] if s[minima[lo]] <= s[minima[hi]] else minima[hi]
        minima[lo : hi + 1] = [keep]
        del barriers[lo]

    bounds = np.concatenate(
        [[c[0] - 0.5 * (c[1] - c[0])], 0.5 * (c[1:] + c[:-1]), [c[-1] + 0.5 * (c[-1] - c[-2])]]
    )
    states = []
    for j, m in enumerate(minima):
        lo, hi = core(m)
        states.append(
            MetastableState(
                minimum=float(c[m]),
                free_energy_kT=float(s[m]),
                depth_kT=float(depth(j)),
                core=(float(bounds[lo]), float(bounds[hi + 1])),
                frames=core_frames(m),
            )
        )
    return states


def _core_labels(chi: np.ndarray, cores: np.ndarray) -> np.ndarray:
    """Index of the core holding each frame, -1 outside every core."""
    labels = np.full(chi.shape, -1, dtype=np.int64)
    for i, (lo, hi) in enumerate(cores):
        labels[(chi >= lo) & (chi <= hi)] = i
    return labels


def count_transitions(
    chi: np.ndarray,
    cores: list[tuple[float, float]] | np.ndarray,
    walker: np.ndarray | None = None,
) -> int:
    """Core-to-core transitions in time series of chi.

    A frame is in core ``i`` when ``low_i <= chi <= high_i``. A transition is counted each time
    a walker enters a core other than the last core it was in: the frames between cores are a
    hysteresis band, so recrossings of the barrier region, and excursions that return to the
    core they left, count nothing; crossing A -> B -> C through B's core counts 2. Each
    walker's series is counted on its own, never across the join of two walkers.

    Parameters
    ----------
    chi : np.ndarray, shape=(n_frames,), dtype=float
        chi of each frame; frames of one walker in time order.
    cores : sequence of (low, high), shape=(n_states, 2)
        Disjoint core ranges, units of chi (e.g. ``[s.core for s in states]``).
    walker : np.ndarray or None, shape=(n_frames,), dtype=int
        Walker index of each frame (see :func:`rave.stats.walker_segments`); ``None``: one
        walker.

    Returns
    -------
    int
        Total number of transitions over all walkers.
    """
    x = np.asarray(chi, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"chi must be 1-D, shape (n_frames,). You supplied shape {x.shape}")
    bounds = np.asarray(cores, dtype=float).reshape(-1, 2) if len(cores) else np.zeros((0, 2))
    if (bounds[:, 1] < bounds[:, 0]).any():
        raise ValueError(
            f"each core must be (low, high) with low <= high. You supplied {bounds.tolist()}"
        )
    order = np.argsort(bounds[:, 0])
    if (bounds[order][1:, 0] <= bounds[order][:-1, 1]).any():
        raise ValueError(f"cores must not overlap. You supplied {bounds.tolist()}")
    counts = transition_matrix(_core_labels(x, bounds), len(bounds), walker)
    return int(counts.sum() - np.trace(counts))


def transition_matrix(
    labels: np.ndarray, n_states: int, walker: np.ndarray | None = None
) -> np.ndarray:
    """Counts of state-to-state transitions in time series of state labels.

    ``labels[t]`` is the state of frame ``t`` (``0 .. n_states - 1``) or ``-1`` between states.
    A transition ``i -> j`` is counted each time a walker enters state ``j`` with ``i`` the last
    state it was in (frames between states do not count; ``i -> between -> i`` is no
    transition). Each walker's series is counted on its own, never across the join of two
    walkers; a walker's first state is an arrival, not a transition.

    Parameters
    ----------
    labels : np.ndarray, shape=(n_frames,), dtype=int
        Frames of one walker in time order, walkers one after another.
    n_states : int
        Number of states (>= 0).
    walker : np.ndarray or None, shape=(n_frames,), dtype=int
        Walker index of each frame (see :func:`rave.stats.walker_segments`); ``None``: one
        walker.

    Returns
    -------
    np.ndarray, shape=(n_states, n_states), dtype=int64
        ``[i, j]``: transitions from state ``i`` into state ``j``; the diagonal is zero.
    """
    lab = np.asarray(labels)
    if lab.ndim != 1 or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D integer array, shape (n_frames,). You supplied shape "
            f"{lab.shape}, dtype {lab.dtype}"
        )
    if lab.size and (lab.min() < -1 or lab.max() >= n_states):
        raise ValueError(
            f"labels must lie in -1 .. {n_states - 1} (n_states = {n_states}). You supplied "
            f"values from {lab.min()} to {lab.max()}"
        )
    counts = np.zeros((n_states, n_states), dtype=np.int64)
    for segment in walker_segments(lab.size, walker):
        visited = lab[segment]
        visited = visited[visited >= 0]
        moves = visited[1:] != visited[:-1]
        np.add.at(counts, (visited[:-1][moves], visited[1:][moves]), 1)
    return counts
