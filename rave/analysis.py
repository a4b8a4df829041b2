"""A finished (or running) campaign loaded from its work directory, for notebooks and reports.

Everything here is computation on stored files; figures are drawn by :mod:`rave.plots`, whose
functions return matplotlib ``Figure`` objects (and save them when given a path).

In a notebook::

    >>> from rave.analysis import CampaignResult
    >>> result = CampaignResult.load("runs/rdw")
    >>> c = result.coefficients(-1)                   # final RC, unit norm, feature order
    >>> est = result.profile(c)                       # F(chi) in kT, bootstrap sigma, f_k
    >>> est.centers, est.free_energy, est.sigma
    >>> log_w = result.log_weights                    # MBAR log-weight of every frame
    >>> model = result.model(-1)                      # the chosen VAE of the last round
    >>> models = result.models(-1)                    # all VAEs trained in the last round
    >>> states = result.metastable_states(c)          # minima of F and their cores
    >>> result.diagnostics()                          # per round: ESS, KL, RC change, transitions
    >>> figures = result.figures()                    # name -> matplotlib Figure
    >>> figures["free_energy"]                        # displays in Jupyter
    >>> result.report_figures()["free_energy"].caption  # what the figure shows, one sentence
    >>> result.outcome_lines()                        # final RC (with chi's unit), F error

Frames of a round may come from several walkers (``round_NNN/frames.npz`` may hold an integer
array ``walker``); every time series (blocks of the bootstrap, transitions, chi(t) lines) is
taken per walker, through :func:`rave.stats.walker_segments`.

Metastable states (:func:`find_metastable_states`): basins of the final F(chi) (lightly
smoothed) over bins with at least ``MIN_BIN_FRAMES`` frames, whose minimum lies at least
``min_depth_kT`` (2 kT) below the lower of its two neighbouring barriers and whose core (the
contiguous range around the minimum where F < F_min + ``core_kT``, 1 kT) holds at least
``MIN_STATE_FRAMES`` frames. Bins without frames never make a state. A transition
(:func:`count_transitions`) is counted when a walker enters a core other than the last one it
was in: the frames between cores are a hysteresis band, so recrossings of the barrier region
that do not reach the other core count nothing.

Pure functions: :func:`find_metastable_states`, :func:`count_transitions`,
:func:`transition_matrix`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import store
from .bias import Bias, applied_states, reduced_bias_matrix
from .coordinate import direction_angle_deg
from .features import feature_from_dict
from .stats import (
    BLOCKS_PER_INEFFICIENCY,
    AlignedReference,
    ProfileEstimate,
    ReweightResult,
    align_reference,
    bootstrap_free_energy_profile,
    free_energy_histogram,
    free_energy_profile,
    mbar_reweight,
    normalised_weights,
    walker_segments,
)
from .units import kT_kjmol

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CampaignFileError",
    "CampaignResult",
    "MetastableState",
    "MIN_BIN_FRAMES",
    "MIN_STATE_FRAMES",
    "ReportFigure",
    "RoundData",
    "chi_unit",
    "count_transitions",
    "transition_matrix",
    "find_metastable_states",
    "walker_segments",
    "write_report",
    "config_change_lines",
]

#: Default number of bootstrap replicates of the F(chi) error bars (sigma to ~10 %).
DEFAULT_BOOTSTRAP = 100


class CampaignFileError(RuntimeError):
    """A file of the campaign is missing or unreadable; the message names it."""


def config_change_lines(rounds: list[dict]) -> list[str]:
    """Lines naming the rounds that ran with a config other than ``config.json``, grouped by
    the run that completed them (from each round's ``run`` and ``config_changes``)."""
    groups: dict[tuple, list[int]] = {}
    for r in rounds:
        changes = tuple(r.get("config_changes") or ())
        if changes:
            groups.setdefault((r.get("run"), changes), []).append(int(r["index"]))
    return [f"round(s) {', '.join(map(str, indices))} ran with a changed config "
            f"(run {run} of manifest.json): {'; '.join(changes)}"
            for (run, changes), indices in groups.items()]


def chi_unit(units: Sequence[str]) -> str:
    """The unit of chi = sum_i c_i s_i from its order parameters' units.

    Parameters
    ----------
    units : sequence of str
        Each order parameter's unit (a feature's ``unit``: ``"nm"``, ``"rad"``, ``"1"`` for a
        pure number).

    Returns
    -------
    str
        The common unit when all share one (``"dimensionless"`` for pure numbers), else
        ``"mixed units"`` (chi then adds numbers of different units, each in its MD unit).
    """
    names = ["dimensionless" if u in ("1", "") else str(u) for u in units]
    if not names:
        raise ValueError("units must name at least one order parameter's unit. You supplied []")
    return names[0] if len(set(names)) == 1 else "mixed units"


def _unit_text(unit: str) -> str:
    """"chi in nm", "chi dimensionless", "chi in mixed units"."""
    return "chi dimensionless" if unit == "dimensionless" else f"chi in {unit}"


def _rc_text(c: np.ndarray, names: Sequence[str]) -> str:
    return "chi = " + " ".join(f"{ci:+.3f} {name}" for ci, name in zip(c, names, strict=True))


@dataclass(frozen=True)
class ReportFigure:
    """A figure of the report and its one-sentence caption."""

    figure: Figure
    caption: str


def _redo_advice(workdir: Path, index: int) -> str:
    return (f"`rave run` with the campaign's config, --workdir {workdir} and --redo-round "
            f"{index} recomputes round {index} from its stored MD and redoes the later rounds")


def _read_json(path: Path):
    try:
        return store.read_json(path)
    except FileNotFoundError as error:
        raise CampaignFileError(f"{path} is missing") from error
    except ValueError as error:
        raise CampaignFileError(
            f"{path} is not valid JSON (truncated or corrupted?): {error}"
        ) from error


# --------------------------------------------------------------------------------------------
# metastable states and transitions (pure functions)
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# the campaign on disk
# --------------------------------------------------------------------------------------------


@dataclass
class RoundData:
    """One finished round as stored in ``round_NNN/``.

    Attributes
    ----------
    index : int
    features : np.ndarray, shape=(n_frames, d)
        Order parameters, walkers concatenated, each walker in time order.
    bias_kjmol : np.ndarray, shape=(n_frames,)
        Bias energy applied when sampled, kJ/mol.
    time_ps : np.ndarray, shape=(n_frames,)
    bias_applied : Bias or None
        The static bias of the round (None in the unbiased round); of an adaptive (OPES)
        round, the bias in force at its end.
    coordinate : dict
        ``coordinate.json``: RC coefficients, KL, model files.
    next_bias : Bias
        ``bias.json``: the bias built after this round.
    walker : np.ndarray or None, shape=(n_frames,), dtype=int
        Walker index of each frame; None when the round stored none (one walker).
    bias_states : list of (Bias or None, int), optional
        The MBAR states of the round's frames, in frame order
        (:func:`rave.bias.applied_states`): one for a static round, the blocks of an adaptive
        one. None: the one state ``bias_applied``.
    """

    index: int
    features: np.ndarray
    bias_kjmol: np.ndarray
    time_ps: np.ndarray
    bias_applied: Bias | None
    coordinate: dict
    next_bias: Bias
    walker: np.ndarray | None = None
    bias_states: list | None = None

    def states(self) -> list:
        """(bias or None, frames) of each MBAR state of the round, in frame order."""
        return self.bias_states or [(self.bias_applied, len(self.features))]

    def segments(self) -> list[np.ndarray]:
        """Index arrays of each walker's frames, in time order."""
        return walker_segments(len(self.features), self.walker)


class CampaignResult:
    """Frames, biases, RCs, models, profiles and figures of a campaign's finished rounds.

    Load with :meth:`load`; see the module docstring for a notebook example.
    """

    def __init__(self, workdir: Path, summary: dict, features: list, rounds: list[RoundData]):
        self.workdir = Path(workdir)
        self.summary = summary
        self.features = features
        self.rounds = rounds
        self.temperature_K = float(summary["temperature_K"])
        self.kT = kT_kjmol(self.temperature_K)
        self._reweighted: ReweightResult | None = None
        self._profiles: dict[tuple, ProfileEstimate] = {}

    @classmethod
    def load(cls, workdir: str | Path) -> CampaignResult:
        """Read ``summary.json``, ``features.json`` and every finished round's files."""
        try:
            return cls._load(Path(workdir))
        except (KeyError, TypeError, AttributeError, IndexError) as error:
            raise CampaignFileError(
                f"a file of {workdir} is not what rave wrote (missing or malformed {error}): "
                f"summary.json, features.json or a round's coordinate.json. `rave run` with the "
                f"campaign's config and --workdir {workdir} rewrites summary.json; "
                f"`rave status {workdir}` names damaged round files") from error

    @classmethod
    def _load(cls, workdir: Path) -> CampaignResult:
        summary = _read_json(workdir / "summary.json")
        features = [feature_from_dict(d) for d in _read_json(workdir / "features.json")]
        rounds = []
        for record in summary["rounds"]:
            folder = store.round_dir(workdir, record["index"])
            try:
                frames = store.read_npz(folder / "frames.npz")
            except FileNotFoundError as error:
                raise CampaignFileError(f"{folder / 'frames.npz'} is missing. "
                                        f"{_redo_advice(workdir, record['index'])}") from error
            except Exception as error:  # zip/pickle errors of a truncated file
                raise CampaignFileError(
                    f"{folder / 'frames.npz'} cannot be read (truncated or corrupted?): {error}. "
                    f"{_redo_advice(workdir, record['index'])}"
                ) from error
            applied = folder / "bias_applied.json"
            walker = frames.get("walker")
            if walker is not None and walker.shape != (len(frames["features"]),):
                raise CampaignFileError(
                    f"{folder / 'frames.npz'}: walker has shape {walker.shape}, expected "
                    f"({len(frames['features'])},)"
                )
            rounds.append(
                RoundData(
                    index=record["index"],
                    features=frames["features"],
                    bias_kjmol=frames["bias_kjmol"],
                    time_ps=frames["time_ps"],
                    bias_applied=Bias.from_dict(_read_json(applied)) if applied.exists() else None,
                    bias_states=applied_states(_read_json(applied) if applied.exists() else None,
                                               len(frames["features"])),
                    coordinate=_read_json(folder / "coordinate.json"),
                    next_bias=Bias.from_dict(_read_json(folder / "bias.json")),
                    walker=None if walker is None else walker.astype(np.int64),
                )
            )
        if not rounds:
            raise CampaignFileError(f"{workdir / 'summary.json'} lists no finished round")
        return cls(workdir, summary, features, rounds)

    # ----------------------------------------------------------------- data
    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def all_features(self) -> np.ndarray:
        """Features of all frames, round by round, shape (n_frames, d)."""
        return np.concatenate([r.features for r in self.rounds])

    def walker_labels(self) -> np.ndarray:
        """Walker index of every frame within its round (0 where a round stored none)."""
        return np.concatenate(
            [
                np.zeros(len(r.features), dtype=np.int64) if r.walker is None else r.walker
                for r in self.rounds
            ]
        )

    def frames_per_round(self) -> list[int]:
        return [len(r.features) for r in self.rounds]

    def coefficients(self, index: int = -1) -> np.ndarray:
        """The RC learned after round ``index`` (unit norm, feature order)."""
        return np.asarray(self.rounds[index].coordinate["coefficients"], dtype=float)

    def frames_per_state(self) -> list[int]:
        """Frames of each MBAR state (a round, or a block of an adaptive round), in order."""
        return [n for r in self.rounds for _, n in r.states()]

    def reduced_bias(self) -> np.ndarray:
        """``V_k(frame n) / kT`` of every frame under every state's bias, shape (K, n_frames)
        (K states: one per static round, one per block of an adaptive round)."""
        states = [state for r in self.rounds for state in r.states()]
        return reduced_bias_matrix(self.all_features(), states, self.kT)[0]

    def reweight(self) -> ReweightResult:
        """MBAR over all rounds toward the unbiased ensemble (cached)."""
        if self._reweighted is None:
            self._reweighted = mbar_reweight(self.reduced_bias(), self.frames_per_state())
        return self._reweighted

    @property
    def log_weights(self) -> np.ndarray:
        """MBAR log-weight of every frame (normalised: logsumexp = 0), shape (n_frames,)."""
        return self.reweight().log_weights

    def _chi(self, coefficients: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        c = self.coefficients(-1) if coefficients is None else np.asarray(coefficients, float)
        if c.shape != (len(self.features),):
            raise ValueError(
                f"coefficients must have one entry per feature "
                f"({len(self.features)}). You supplied shape {c.shape}"
            )
        return c, self.all_features() @ c

    def profile(
        self,
        coefficients: np.ndarray | None = None,
        bins: int = 60,
        n_bootstrap: int = DEFAULT_BOOTSTRAP,
        block_length: int | None = None,
        seed: int = 0,
    ) -> ProfileEstimate:
        """F(chi) along chi = coefficients . features from all rounds (MBAR), with the block
        bootstrap error that re-solves MBAR per replicate (see
        :func:`rave.stats.bootstrap_free_energy_profile`). Cached per arguments.

        Parameters
        ----------
        coefficients : np.ndarray, shape=(d,), optional
            Any linear combination of the features; default the final RC.
        bins : int
            Equal bins over the sampled chi range.
        n_bootstrap, block_length, seed
            Of the bootstrap; ``block_length=None`` chooses it per round from the correlation
            time of chi.
        """
        c, chi = self._chi(coefficients)
        key = (tuple(c), int(bins), int(n_bootstrap), block_length, int(seed))
        if key not in self._profiles:
            edges = np.linspace(chi.min(), chi.max(), int(bins) + 1)
            self._profiles[key] = bootstrap_free_energy_profile(
                self.reduced_bias(),
                self.frames_per_state(),
                chi,
                edges,
                n_bootstrap=n_bootstrap,
                block_length=block_length,
                seed=seed,
                walker=self.walker_labels(),
            )
        return self._profiles[key]

    def free_energy(
        self,
        coefficients: np.ndarray | None = None,
        bins: int = 60,
        n_bootstrap: int = DEFAULT_BOOTSTRAP,
        block_length: int | None = None,
        seed: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(centers, F, sigma)`` of :meth:`profile`: F in kT (min 0, inf where empty) and its
        bootstrap standard error in kT (nan where not estimable)."""
        est = self.profile(coefficients, bins, n_bootstrap, block_length, seed)
        return est.centers, est.free_energy, est.sigma

    def free_energy_2d(
        self, i: int = 0, j: int = 1, bins: int = 50
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """F(s_i, s_j) in kT (min 0, inf where empty) over two order parameters."""
        pair = self.all_features()[:, [i, j]]
        xe, ye = (np.histogram_bin_edges(pair[:, a], bins=bins) for a in (0, 1))
        f = free_energy_histogram(pair, self.log_weights, [xe, ye], density=False)
        f -= f[np.isfinite(f)].min()
        return 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]), f.T

    def metastable_states(
        self,
        coefficients: np.ndarray | None = None,
        bins: int = 60,
        min_depth_kT: float = 2.0,
        core_kT: float = 1.0,
        smoothing_bins: int = 1,
        min_bin_frames: int = MIN_BIN_FRAMES,
        min_state_frames: int = MIN_STATE_FRAMES,
    ) -> list[MetastableState]:
        """States of the MBAR profile along ``coefficients`` (default the final RC), from the
        frames per bin as well as F (see :func:`find_metastable_states` for the rule)."""
        _, chi = self._chi(coefficients)
        edges = np.linspace(chi.min(), chi.max(), int(bins) + 1)
        centers, f = free_energy_profile(chi, self.log_weights, edges)
        counts, _ = np.histogram(chi, bins=edges)
        return find_metastable_states(centers, f, min_depth_kT, core_kT, smoothing_bins,
                                      counts=counts, min_bin_frames=min_bin_frames,
                                      min_state_frames=min_state_frames)

    # ----------------------------------------------------------------- models
    def _model_path(self, index: int, name: str) -> Path:
        path = store.round_dir(self.workdir, self.rounds[index].index) / name
        if not path.is_file():
            raise CampaignFileError(
                f"{path} is missing. {_redo_advice(self.workdir, self.rounds[index].index)}")
        return path

    def _load_model(self, index: int, name: str):
        from .vae import VAEModel

        path = self._model_path(index, name)
        try:
            return VAEModel.load(path)
        except Exception as error:  # torch / zip errors of a damaged file
            raise CampaignFileError(
                f"{path} cannot be read (truncated or corrupted?): {error}. "
                f"{_redo_advice(self.workdir, self.rounds[index].index)}") from error

    def models(self, index: int = -1) -> list:
        """Every VAE trained after round ``index`` (``coordinate.json``'s ``model_files``), as
        :class:`rave.vae.VAEModel` objects, in training order."""
        names = self.rounds[index].coordinate["model_files"]
        return [self._load_model(index, name) for name in names]

    def model(self, index: int = -1):
        """The VAE chosen after round ``index`` (lowest KL), a :class:`rave.vae.VAEModel`."""
        coordinate = self.rounds[index].coordinate
        name = coordinate["model_files"][int(coordinate["chosen_model"])]
        return self._load_model(index, name)

    def latent(self, index: int = -1) -> np.ndarray:
        """Latent mean of every frame of rounds 0..index under the model chosen in ``index``."""
        return self.model(index).transform(self.all_features()[: self.frames_up_to(index)])

    def frames_up_to(self, index: int) -> int:
        """Number of frames in rounds 0..index."""
        index = index % len(self.rounds)
        return sum(len(r.features) for r in self.rounds[: index + 1])

    def potential(self):
        """The model potential of ``config.json`` (with ``exact_free_energy``), or None when
        the campaign has no config or its system is not a model potential (cached)."""
        if not hasattr(self, "_potential"):
            self._potential = self._build_potential()
        return self._potential

    def _build_potential(self):
        from .config import ConfigError, config_from_dict
        from .simsystem import build_model_potential

        path = self.workdir / "config.json"
        if not path.exists():
            return None
        try:
            return build_model_potential(config_from_dict(_read_json(path)))
        except (ConfigError, KeyError, ValueError):
            return None

    # ----------------------------------------------------------------- diagnostics
    def diagnostics(self, states: list[MetastableState] | None = None) -> list[dict]:
        """Per round: frames, walkers, ESS, KL, RC angle change, F change, converged, and the
        core-to-core transitions along the final RC (cores of ``states``, default
        :meth:`metastable_states`), counted per walker."""
        final = self.coefficients(-1)
        states = self.metastable_states(final) if states is None else states
        cores = [s.core for s in states]
        rows = []
        for record, round_data in zip(self.summary["rounds"], self.rounds, strict=True):
            chi = round_data.features @ final
            rows.append(
                {
                    "round": record["index"],
                    "frames": record["frames"],
                    "walkers": len(round_data.segments()),
                    "effective_sample_size": record["effective_sample_size"],
                    "kl_divergence": record["kl_divergence"],
                    "angle_change_deg": record.get("angle_change_deg"),
                    "free_energy_change_kT": record.get("free_energy_change_kT"),
                    "converged": record.get("converged", False),
                    "transitions": count_transitions(chi, cores, round_data.walker),
                }
            )
        return rows

    # ----------------------------------------------------------------- units, references
    @property
    def feature_units(self) -> list[str]:
        """The unit of each order parameter (``"1"`` for a pure number), feature order."""
        return [f.unit for f in self.features]

    @property
    def chi_unit(self) -> str:
        """The unit of chi (see :func:`chi_unit`)."""
        return chi_unit(self.feature_units)

    def convergence_settings(self):
        """The ``[convergence]`` thresholds of ``config.json`` (a
        :class:`rave.config.ConvergenceConfig`), or None when the campaign has no readable
        config."""
        from .config import ConfigError, config_from_dict

        path = self.workdir / "config.json"
        if not path.exists():
            return None
        try:
            return config_from_dict(_read_json(path)).convergence
        except (ConfigError, KeyError, ValueError, TypeError):
            return None

    def slow_direction(self) -> np.ndarray | None:
        """The model potential's known slow direction in feature space (unit norm), or None
        when the system has none (or the potential's coordinates are not the features)."""
        potential = self.potential()
        direction = getattr(potential, "slow_direction", None)
        if direction is None or len(direction) != len(self.features):
            return None
        return np.asarray(direction, dtype=float)

    def slow_direction_angles_deg(self) -> list[float] | None:
        """Per round, the sign-agnostic angle (deg) between the RC and the known slow
        direction; None when there is none (see :meth:`slow_direction`)."""
        direction = self.slow_direction()
        if direction is None:
            return None
        return [direction_angle_deg(np.asarray(r["coefficients"], float), direction)
                for r in self.summary["rounds"]]

    def exact_profile(self, coefficients: np.ndarray, centers: np.ndarray) -> np.ndarray | None:
        """The exact F (kT) along ``coefficients`` at ``centers`` for model potentials (by
        quadrature), else None."""
        potential = self.potential()
        if not hasattr(potential, "exact_free_energy"):
            return None
        return np.asarray(potential.exact_free_energy(coefficients, centers), dtype=float)

    def exact_comparison(self, bins: int = 60) -> AlignedReference | None:
        """F along the final RC (MBAR, ``bins`` equal bins over the sampled range) against the
        exact profile of a model potential (:func:`rave.stats.align_reference`: the exact F
        shifted to the same mean where F < 5 kT, and the RMS difference there); None when the
        system has no exact profile."""
        c, chi = self._chi(None)
        edges = np.linspace(chi.min(), chi.max(), int(bins) + 1)
        centers, f = free_energy_profile(chi, self.log_weights, edges)
        exact = self.exact_profile(c, centers)
        return None if exact is None else align_reference(exact, f)

    def outcome_lines(self) -> list[str]:
        """What the campaign gave, for the end of ``rave run``: the final RC with the unit of
        chi and, for model potentials, its angle to the known slow direction and the F error
        against the exact profile."""
        c = self.coefficients(-1)
        lines = [f"final RC: {_rc_text(c, self.feature_names)} ({_unit_text(self.chi_unit)})"]
        angles = self.slow_direction_angles_deg()
        if angles is not None:
            lines.append(f"RC angle to the known slow direction: {angles[-1]:.1f} deg")
        error = self.exact_comparison()
        if error is not None:
            lines.append(
                f"F(chi) error against the exact profile: {error.rmse_kT:.2f} kT RMS over the "
                f"{error.matched_bins} bins where F < {error.below_kT:g} kT"
                if error.matched_bins else
                "F(chi) error against the exact profile: no bin below 5 kT to compare")
        return lines

    # ----------------------------------------------------------------- figures
    def figures(self, bins: int = 60, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict:
        """Every report figure as a matplotlib ``Figure``, by name (see
        :meth:`report_figures`, which adds a caption to each)."""
        return {name: item.figure
                for name, item in self.report_figures(bins, n_bootstrap, seed).items()}

    def report_figures(
        self, bins: int = 60, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0
    ) -> dict[str, ReportFigure]:
        """Every report figure with a one-sentence caption, by name: ``free_energy`` (F along
        the final RC with error bars, state cores, and the exact F for model potentials),
        ``latent``, ``chi_time_series`` (one line per walker), ``convergence`` (one panel per
        quantity with the campaign's thresholds), ``free_energy_2d`` (d >= 2) and
        ``potential`` (2-D model potentials: samples and RC direction)."""
        from . import plots
        from .coordinate import fit_coordinate

        c = self.coefficients(-1)
        # the model file first: a damaged one stops the report before the long computations
        latent = self.latent(-1)
        unit = self.chi_unit
        potential = self.potential()
        est = self.profile(c, bins=bins, n_bootstrap=n_bootstrap, seed=seed)
        exact = self.exact_profile(c, est.centers)
        states = self.metastable_states(c, bins=bins)
        cores = [s.core for s in states]
        n_frames = len(self.all_features())
        caption = (
            f"F along the final RC ({_rc_text(c, self.feature_names)}, {_unit_text(unit)}) "
            f"from all {n_frames} frames of {len(self.rounds)} rounds "
            f"reweighted by MBAR; error bars are 1 sigma of a block bootstrap "
            f"({est.n_bootstrap} replicates, MBAR re-solved in each), green bands the cores of "
            f"the {len(states)} metastable state(s), and no line is drawn across bins without "
            f"frames (shaded grey)"
        )
        if exact is not None:
            aligned = align_reference(exact, est.free_energy)
            caption += (
                "; the dashed line is the exact F by quadrature, "
                + (f"shifted by a constant to the mean of RAVE's F over the "
                   f"{aligned.matched_bins} bins where RAVE's F < {aligned.below_kT:g} kT (RMS "
                   f"difference there {aligned.rmse_kT:.2f} kT)"
                   if aligned.matched_bins else "shifted to a minimum of 0")
            )
        out = {
            "free_energy": ReportFigure(
                plots.profile_with_errors(
                    centers=est.centers,
                    profile_kT=est.free_energy,
                    sigma_kT=est.sigma,
                    exact_kT=exact,
                    cores=cores,
                    title=f"F along the final RC ({est.n_bootstrap} block-bootstrap replicates, "
                    "MBAR re-solved)",
                    chi_unit=unit,
                ),
                caption + ".",
            )
        }
        features = self.all_features()
        log_w = self.log_weights
        weights = normalised_weights(len(log_w), log_weights=log_w)
        scan = fit_coordinate(features, latent, log_weights=log_w, seed=0)
        chi = features @ c
        if np.corrcoef(latent, chi)[0, 1] < 0:
            chi = -chi  # the latent's sign is arbitrary: show chi oriented like it
        out["latent"] = ReportFigure(
            plots.latent_analysis(
                features=features,
                latent=latent,
                chi=chi,
                weights=weights,
                feature_names=self.feature_names,
                directions=scan.directions,
                kl_landscape=scan.kl_landscape,
                feature_units=self.feature_units,
            ),
            "The last round's chosen VAE: its latent mean against each order parameter, the "
            "reweighted histograms of the latent and of chi rescaled to [0, 1] (the KL match "
            "that chose the RC), and the KL over the scanned RC directions.",
        )
        transitions = sum(
            count_transitions(r.features @ c, cores, r.walker) for r in self.rounds
        )
        out["chi_time_series"] = ReportFigure(
            plots.chi_time_series(rounds=self.rounds, coefficients=c, cores=cores,
                                  chi_unit=unit),
            f"chi along the final RC against time within each round, one line per walker "
            f"(colour: round), green bands the state cores: {transitions} transition(s) in all, "
            f"a transition being an entry into a core other than the last one visited.",
        )
        records = self.summary["rounds"]
        settings = self.convergence_settings()
        kl_threshold = self.rounds[-1].coordinate.get("kl_threshold")
        slow = self.slow_direction_angles_deg()
        out["convergence"] = ReportFigure(
            plots.convergence(
                rounds=[r["index"] for r in records],
                coefficients=np.array([r["coefficients"] for r in records]),
                feature_names=self.feature_names,
                effective_sample_size=[r["effective_sample_size"] for r in records],
                kl_divergence=[r["kl_divergence"] for r in records],
                angle_change_deg=[r.get("angle_change_deg") for r in records],
                free_energy_change_kT=[r.get("free_energy_change_kT") for r in records],
                seed_spread_deg=[r.get("seed_spread_deg") for r in records],
                slow_direction_angle_deg=slow,
                angle_limit_deg=None if settings is None else settings.angle_deg,
                free_energy_limit_kT=None if settings is None else settings.free_energy_kT,
                profile_max_kT=None if settings is None else settings.profile_max_kT,
                min_rounds=None if settings is None else settings.min_rounds,
                kl_threshold=kl_threshold,
            ),
            "Per round, one panel per quantity: the RC's coefficients, its change from the "
            "previous round, the largest angle between the VAE seeds' RCs (when several were "
            "usable), the RMS change of F(chi), the KL of the chosen RC and the MBAR effective "
            "sample size"
            + (", and the RC's angle to the model potential's known slow direction"
               if slow is not None else "")
            + "; "
            + ("dashed red lines are the [convergence] thresholds of config.json and the "
               "spurious-model KL threshold, the dotted line the first round allowed to "
               "converge."
               if settings is not None else
               "the convergence thresholds are not drawn: the campaign has no readable "
               "config.json."),
        )
        if features.shape[1] >= 2:
            x, y, f2 = self.free_energy_2d(0, 1)
            labels = [plots.unit_label(self.feature_names[i], self.feature_units[i])
                      for i in (0, 1)]
            out["free_energy_2d"] = ReportFigure(
                plots.free_energy_surface(x=x, y=y, f_kT=f2, xlabel=labels[0],
                                          ylabel=labels[1]),
                f"F over the first two order parameters ({self.feature_names[0]}, "
                f"{self.feature_names[1]}) from all frames reweighted by MBAR, capped at 12 kT; "
                f"blank bins have no frames.",
            )
        if potential is not None and features.shape[1] == 2 and hasattr(potential, "extent"):
            out["potential"] = ReportFigure(
                plots.potential_with_samples(
                    potential=potential, frames=[r.features for r in self.rounds],
                    coefficients=c
                ),
                "The model potential U (kT, capped at 20 kT) with every round's frames "
                "(colour: round) and the final RC's direction (red arrow).",
            )
        return out


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------

_TABLE_HEADER = [
    "round",
    "frames",
    "ESS",
    "KL",
    "RC change (deg)",
    "F change (kT)",
    "walkers",
    "transitions",
]


def _table_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        angle = "" if r["angle_change_deg"] is None else f"{r['angle_change_deg']:.2f}"
        change = "" if r["free_energy_change_kT"] is None else f"{r['free_energy_change_kT']:.3f}"
        out.append(
            [
                str(r["round"]),
                str(r["frames"]),
                f"{r['effective_sample_size']:.1f}",
                f"{r['kl_divergence']:.4f}",
                angle,
                change,
                str(r["walkers"]),
                str(r["transitions"]),
            ]
        )
    return out


def _schedule_items(summary: dict) -> list[tuple[str, str]]:
    """The report's line on the MD schedule (summaries before the schedule have none)."""
    if "steps_used" not in summary:
        return []
    steps = ", ".join(str(r.get("steps", "?")) for r in summary["rounds"])
    budget = summary.get("max_total_steps")
    text = (f"{summary['steps_used']} steps over all rounds and walkers"
            + ("" if budget is None else
               f" of a budget of {budget} ({summary.get('steps_left')} left)")
            + f"; steps per walker by round: {steps}")
    if summary.get("stop_reason"):
        text += f"; stopped: {summary['stop_reason']}"
    return [("MD schedule", text)]


@dataclass(frozen=True)
class _ReportContent:
    """What the Markdown and HTML reports both say."""

    title: str
    items: list[tuple[str, str]]
    verdict: str
    table: list[list[str]]
    notes: list[str]
    figures: list[tuple[str, str]]  # file name, caption
    extra: list[tuple[str, str]]


def _markdown(report: _ReportContent) -> str:
    title, items, verdict, table, notes, figures, extra = (
        report.title, report.items, report.verdict, report.table, report.notes, report.figures,
        report.extra)
    lines = [f"# {title}", "", f"- verdict: **{verdict}**"]
    lines += [f"- {label}: {value}" for label, value in items]
    lines += ["", "| " + " | ".join(_TABLE_HEADER) + " |", "|" + "---|" * len(_TABLE_HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    lines += [""] + [line for note in notes for line in (note, "")]
    for name, caption in figures:
        lines += [f"![{name}]({name})", "", f"*{caption}*", ""]
    for label, target in extra:
        lines += [f"{label}: [{target}]({target})", ""]
    return "\n".join(lines)


def _html(report: _ReportContent) -> str:
    title, items, verdict, table, notes, figures, extra = (
        report.title, report.items, report.verdict, report.table, report.notes, report.figures,
        report.extra)
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in _TABLE_HEADER)
    body = "\n".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in table)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px;"
        "text-align:right}th{background:#eee}img{max-width:100%;display:block;margin:1em 0}"
        "</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<ul>",
        f"<li>verdict: <strong>{e(verdict)}</strong></li>",
        *[f"<li>{e(label)}: {e(value)}</li>" for label, value in items],
        "</ul>",
        f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>",
        *[f"<p>{e(note)}</p>" for note in notes],
        *[
            f'<figure><img src="{e(name)}" alt="{e(name)}"><figcaption>{e(caption)}'
            "</figcaption></figure>"
            for name, caption in figures
        ],
        *[f'<p>{e(label)}: <a href="{e(target)}">{e(target)}</a></p>' for label, target in extra],
        "</body></html>",
        "",
    ]
    return "\n".join(parts)


def _reference_items(result: CampaignResult, est: ProfileEstimate) -> list[tuple[str, str]]:
    """Report lines comparing with what a model potential knows exactly: F along the final RC
    and the slow direction."""
    items = []
    exact = result.exact_profile(result.coefficients(-1), est.centers)
    if exact is not None:
        aligned = align_reference(exact, est.free_energy)
        items.append((
            "F error against the exact profile",
            f"{aligned.rmse_kT:.2f} kT RMS over the {aligned.matched_bins} bins where F < "
            f"{aligned.below_kT:g} kT (exact F by quadrature, shifted by a constant to the same "
            f"mean there)" if aligned.matched_bins else "no bin below 5 kT to compare",
        ))
    angles = result.slow_direction_angles_deg()
    if angles is not None:
        items.append((
            "RC angle to the known slow direction",
            f"{angles[-1]:.1f} deg after the last round (by round: "
            + ", ".join(f"{a:.1f}" for a in angles) + " deg)",
        ))
    return items


def write_report(workdir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.md``, ``report.html`` and their PNG figures (default: WORKDIR/report/).

    Both documents hold the same content and link the figures by relative path. Returns the
    path of ``report.md``.
    """
    from . import plots

    result = CampaignResult.load(workdir)
    out = Path(out) if out is not None else result.workdir / "report"
    out.mkdir(parents=True, exist_ok=True)
    c = result.coefficients(-1)
    figures = result.report_figures()
    names = []
    for name, item in figures.items():
        plots.save(item.figure, out / f"{name}.png")
        names.append((f"{name}.png", item.caption))

    est = result.profile(c)
    states = result.metastable_states(c)
    rows = result.diagnostics(states)
    last = rows[-1]
    verdict = (
        "converged"
        if result.summary.get("converged")
        else f"not converged: last RC change {last['angle_change_deg'] or 0:.2f} deg, F change "
        f"{last['free_energy_change_kT'] or 0:.3f} kT (see [convergence] in the config)"
    )
    finite = np.isfinite(est.sigma) & (est.free_energy < 5)
    items = [
        ("system", f"{result.summary.get('system', '?')} at {result.temperature_K} K"),
        (
            "final RC",
            "chi = "
            + " ".join(
                f"{ci:+.4f} {name}" for ci, name in zip(c, result.feature_names, strict=True)
            )
            + f" ({_unit_text(result.chi_unit)})",
        ),
        *_reference_items(result, est),
        (
            "frames",
            f"{len(result.all_features())} in {len(result.rounds)} rounds; MBAR "
            f"effective sample size {result.reweight().effective_sample_size:.1f}",
        ),
        *_schedule_items(result.summary),
        (
            "F(chi) error bars",
            f"block bootstrap, {est.n_bootstrap} replicates, blocks of "
            f"{', '.join(str(int(b)) for b in est.block_lengths)} frames "
            "(per round), MBAR re-solved per replicate; median sigma "
            + (f"{np.median(est.sigma[finite]):.2f} kT where F < 5 kT" if finite.any() else "n/a"),
        ),
        (
            "metastable states",
            "; ".join(
                f"chi = {s.minimum:.3f} (F = {s.free_energy_kT:.2f} kT, depth "
                + (f"{s.depth_kT:.1f} kT" if np.isfinite(s.depth_kT)
                   else "not bounded by a sampled barrier")
                + f", core [{s.core[0]:.3f}, {s.core[1]:.3f}] with {s.frames} frames)"
                for s in states
            )
            or "none",
        ),
    ]
    short = [
        k
        for k, (g, b) in enumerate(
            zip(est.statistical_inefficiency, est.block_lengths, strict=True)
        )
        if np.isfinite(g) and b < np.ceil(BLOCKS_PER_INEFFICIENCY * g)
    ]
    if short:
        items.append(
            (
                "warning",
                "round(s) "
                + ", ".join(
                    f"{result.rounds[k].index} (g = {est.statistical_inefficiency[k]:.0f} frames, "
                    f"blocks of {est.block_lengths[k]})"
                    for k in short
                )
                + ": too short for blocks of 5 g frames; the error bars are underestimated",
            )
        )
    notes = [
        "Transitions: per walker, entries into a different metastable state's core than the "
        "last one visited, along the final RC (the frames between cores are a hysteresis band: "
        "recrossings of the barrier region count nothing). States are basins of the final "
        f"F(chi) over bins with at least {MIN_BIN_FRAMES} frames, at least 2 kT below the lower "
        f"neighbouring barrier, with at least {MIN_STATE_FRAMES} frames in the core (where "
        "F < F_min + 1 kT); bins without frames are never states."
        + (
            " Fewer than two states were found, so no transition can be counted."
            if len(states) < 2 else ""
        ),
    ]
    for line in config_change_lines(result.summary["rounds"]):
        items.append(("config changed", line))
    extra = []
    last_round = store.round_dir(result.workdir, result.rounds[-1].index) / "figure.png"
    if last_round.exists():
        extra.append(("Last round", os.path.relpath(last_round, out)))
    title = f"RAVE campaign report: {result.workdir}"
    content = _ReportContent(title, items, verdict, _table_rows(rows), notes, names, extra)
    store.write_text(out / "report.html", _html(content))
    report = out / "report.md"
    store.write_text(report, _markdown(content))
    return report
