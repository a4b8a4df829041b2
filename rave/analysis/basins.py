"""Order parameters a chemist reads, and crossings of the highest barrier of F along them.

Order parameters (:func:`order_parameters`): the sin and cos of one dihedral (two
:class:`rave.md.features.Dihedral` features of the same four groups) are read as the angle
itself, ``atan2(sin, cos)`` in degrees (periodic); every other feature as itself, in its unit.

Barrier crossings (:func:`barrier_crossings`): along a coordinate (the RC chi, or an order
parameter), F is taken over bins (MBAR weights), its metastable states found
(:func:`rave.analysis.states.find_metastable_states`), and the states split into two basins at
the highest barrier of F between two neighbouring states: the dividing surface is that
barrier's top. A crossing is counted when a walker enters a core of one basin with the last
core it was in belonging to the other (core to core: the frames between cores are a
hysteresis band, so noise at the barrier top and flips between states on one side count
nothing). On a periodic coordinate the line is cut at its least-populated bin (the other
barrier of a two-basin circle), so both barriers between the basins count. A basin entered
fewer than :data:`MIN_BASIN_ENTRIES` times is *flagged*: the F difference between the basins
rests on those few crossings, which the block bootstrap's error bars do not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..stats import free_energy_profile
from .states import (
    MIN_BIN_FRAMES,
    MIN_STATE_FRAMES,
    MetastableState,
    find_metastable_states,
    transition_matrix,
)

__all__ = ["MIN_BASIN_ENTRIES", "BarrierCrossings", "OrderParameter", "barrier_crossings",
           "order_parameters"]

#: Fewest entries into a basin (crossings of the highest barrier into it) for its F and error
#: bars to be taken as measured: the population ratio of two basins joined by n crossings
#: carries a relative error of about 1/sqrt(n) (the crossings are its independent events), so
#: n < 10 leaves more than ~0.3 kT of error in their F difference that the block bootstrap,
#: whose blocks are shorter than a stay in a basin, does not show.
MIN_BASIN_ENTRIES = 10
#: The period of an angle, degrees.
FULL_TURN_DEG = 360.0


@dataclass(frozen=True)
class OrderParameter:
    """A quantity of every frame to show F over: a feature, or the angle of a sin/cos pair."""

    name: str
    unit: str
    columns: tuple[int, ...]
    periodic: bool = False

    def values(self, features: np.ndarray) -> np.ndarray:
        """Its value in every frame."""
        x = np.asarray(features, dtype=float)
        if self.periodic:
            sin, cos = self.columns
            return np.degrees(np.arctan2(x[:, sin], x[:, cos]))
        return x[:, self.columns[0]]


def _angle_name(sin_name: str, cos_name: str) -> str:
    """``phi`` from ``sin_phi`` and ``cos_phi``; otherwise ``angle(sin_name, cos_name)``."""
    for prefix in ("sin_", "sin", "sin-"):
        if sin_name.startswith(prefix) and cos_name == "cos" + sin_name[3:]:
            rest = sin_name[len(prefix):]
            if rest:
                return rest
    return f"atan2({sin_name}, {cos_name})"


def order_parameters(features: Sequence) -> list[OrderParameter]:
    """The order parameters of a campaign's features: an angle per sin/cos pair of one dihedral."""
    out: list[OrderParameter] = []
    used: set[int] = set()
    for i, f in enumerate(features):
        if i in used:
            continue
        if getattr(f, "kind", None) == "dihedral":
            partner = next((j for j, g in enumerate(features)
                            if j not in used and j != i and getattr(g, "kind", None) == "dihedral"
                            and g.groups == f.groups and g.function != f.function), None)
            if partner is not None:
                sin, cos = (i, partner) if f.function == "sin" else (partner, i)
                used.update((i, partner))
                out.append(OrderParameter(_angle_name(features[sin].name, features[cos].name),
                                          "deg", (sin, cos), periodic=True))
                continue
        used.add(i)
        out.append(OrderParameter(f.name, f.unit, (i,)))
    return out


@dataclass(frozen=True)
class BarrierCrossings:
    """F along one coordinate, its basins and the crossings of its highest barrier."""

    centers: np.ndarray
    free_energy: np.ndarray
    counts: np.ndarray
    states: list[MetastableState]
    barrier: float | None
    barrier_kT: float | None
    basin: np.ndarray
    crossings: int
    crossings_per_round: list[int]
    entries: tuple[int, int] = (0, 0)
    basin_minima: tuple[float, ...] = ()
    cut: float | None = None
    cores: list[tuple[float, float]] = field(default_factory=list)

    @property
    def core_spans(self) -> list[tuple[float, float]]:
        """The states' cores as (low, high) spans to draw over :attr:`centers` (a periodic
        core across +-180 deg is two spans)."""
        if self.cut is None:
            return list(self.cores)
        half = FULL_TURN_DEG / 2
        spans = []
        for lo, hi in self.cores:
            a = (lo + half) % FULL_TURN_DEG - half
            b = a + (hi - lo)
            if b <= half:
                spans.append((a, b))
            else:
                spans += [(a, half), (-half, b - FULL_TURN_DEG)]
        return spans

    @property
    def flagged_basins(self) -> list[int]:
        """The basins entered fewer than :data:`MIN_BASIN_ENTRIES` times (none with fewer than
        two states)."""
        if self.barrier is None:
            return []
        return [b for b in (0, 1) if self.entries[b] < MIN_BASIN_ENTRIES]

    @property
    def flagged_bins(self) -> np.ndarray:
        """bool per bin: it lies in a flagged basin."""
        return np.isin(self.basin, self.flagged_basins) & (self.basin >= 0)

    def describe(self, name: str, unit: str) -> str:
        """One sentence: the basins, the barrier, the crossings and the flag."""
        u = "" if unit in ("1", "", "dimensionless") else f" {unit}"
        if self.barrier is None:
            return (f"along {name}: {len(self.states)} basin(s) found, so no crossing is "
                    f"counted; a basin the walkers never reached, or visited too briefly to be "
                    f"a state, has no reliable F")
        top = ("not sampled (no frame at its top)" if not np.isfinite(self.barrier_kT)
               else f"F = {self.barrier_kT:.1f} kT")
        text = (f"along {name}: basins at {self.basin_minima[0]:.3g}{u} and "
                f"{self.basin_minima[1]:.3g}{u}, highest barrier at {self.barrier:.3g}{u} "
                f"({top}); {self.crossings} crossing(s) core to core (by round: "
                f"{', '.join(map(str, self.crossings_per_round))}); basins entered "
                f"{self.entries[0]} and {self.entries[1]} times")
        flagged = self.flagged_basins
        if flagged:
            text += ("; FEW CROSSINGS: the basin(s) at "
                     + " and ".join(f"{self.basin_minima[b]:.3g}{u}" for b in flagged)
                     + f" entered fewer than {MIN_BASIN_ENTRIES} times, so the F difference "
                       f"between the basins rests on {self.crossings} crossing(s) and its "
                       f"error bars there (flagged) understate the error")
        return text


def _core_labels(x: np.ndarray, cores: Sequence[tuple[float, float]],
                 sides: Sequence[int]) -> np.ndarray:
    labels = np.full(x.shape, -1, dtype=np.int64)
    for (lo, hi), side in zip(cores, sides, strict=True):
        labels[(x >= lo) & (x <= hi)] = side
    return labels


def barrier_crossings(
    values: np.ndarray,
    log_weights: np.ndarray,
    round_of_frame: np.ndarray,
    walker: np.ndarray,
    bins: int = 60,
    periodic: bool = False,
    min_bin_frames: int = MIN_BIN_FRAMES,
    min_state_frames: int = MIN_STATE_FRAMES,
) -> BarrierCrossings:
    """F along a coordinate, its two basins at the highest barrier, and the crossings of it.

    See the module docstring for the rule.
    """
    x = np.asarray(values, dtype=float)
    log_w = np.asarray(log_weights, dtype=float)
    rounds = np.asarray(round_of_frame)
    walkers = np.asarray(walker)
    if x.ndim != 1 or log_w.shape != x.shape or rounds.shape != x.shape or \
            walkers.shape != x.shape:
        raise ValueError(f"values, log_weights, round_of_frame and walker must be 1-D of one "
                         f"length. You supplied shapes {x.shape}, {log_w.shape}, "
                         f"{rounds.shape}, {walkers.shape}")
    if int(bins) < 3:
        raise ValueError(f"bins must be >= 3. You supplied {bins}")
    cut = None
    if periodic:
        edges = np.linspace(-FULL_TURN_DEG / 2, FULL_TURN_DEG / 2, int(bins) + 1)
        counts, _ = np.histogram(x, bins=edges)
        _, f = free_energy_profile(x, log_w, edges)
        lowest = np.flatnonzero(counts == counts.min())
        # the least-populated bin (the highest F among the emptiest): the circle's cut
        k = lowest[np.argmax(np.where(np.isfinite(f[lowest]), f[lowest], np.inf))]
        cut = float(edges[k])
        x = (x - cut) % FULL_TURN_DEG + cut
        edges = edges - edges[0] + cut
    else:
        edges = np.linspace(x.min(), x.max(), int(bins) + 1)
    centers, f = free_energy_profile(x, log_w, edges)
    counts, _ = np.histogram(x, bins=edges)
    states = find_metastable_states(centers, f, counts=counts, min_bin_frames=min_bin_frames,
                                    min_state_frames=min_state_frames)
    round_ids = list(dict.fromkeys(rounds.tolist()))
    barrier = barrier_kT = None
    basin = np.full(centers.shape, -1, dtype=np.int64)
    crossings_per_round = [0] * len(round_ids)
    entries = (0, 0)
    minima: tuple[float, ...] = tuple(s.minimum for s in states)
    if len(states) >= 2:
        sampled = np.where(counts > 0, f, np.inf)
        index = [int(np.argmin(np.abs(centers - s.minimum))) for s in states]
        tops = [a + int(np.argmax(sampled[a:b + 1])) for a, b in zip(index[:-1], index[1:],
                                                                        strict=True)]
        j = int(np.argmax([sampled[t] for t in tops]))
        top = tops[j]
        barrier, barrier_kT = float(centers[top]), float(sampled[top])
        basin = np.where(np.arange(centers.size) <= top, 0, 1)
        sides = [0 if n <= j else 1 for n in range(len(states))]
        left = min((s for s, side in zip(states, sides, strict=True) if side == 0),
                   key=lambda s: s.free_energy_kT)
        right = min((s for s, side in zip(states, sides, strict=True) if side == 1),
                    key=lambda s: s.free_energy_kT)
        minima = (left.minimum, right.minimum)
        labels = _core_labels(x, [s.core for s in states], sides)
        moves = np.zeros((2, 2), dtype=np.int64)
        for n, r in enumerate(round_ids):
            mine = rounds == r
            matrix = transition_matrix(labels[mine], 2, walkers[mine])
            crossings_per_round[n] = int(matrix[0, 1] + matrix[1, 0])
            moves += matrix
        entries = (int(moves[1, 0]), int(moves[0, 1]))
    cores = [s.core for s in states]
    if periodic:
        # back to (-180, 180] for the reader; the arrays stay ascending
        wrap = lambda v: float((v + FULL_TURN_DEG / 2) % FULL_TURN_DEG - FULL_TURN_DEG / 2)  # noqa: E731
        order = np.argsort((centers + FULL_TURN_DEG / 2) % FULL_TURN_DEG)
        centers = (centers[order] + FULL_TURN_DEG / 2) % FULL_TURN_DEG - FULL_TURN_DEG / 2
        f, counts, basin = f[order], counts[order], basin[order]
        barrier = None if barrier is None else wrap(barrier)
        minima = tuple(wrap(m) for m in minima)
    return BarrierCrossings(
        centers=centers, free_energy=f, counts=counts, states=states, barrier=barrier,
        barrier_kT=barrier_kT, basin=basin, crossings=int(sum(crossings_per_round)),
        crossings_per_round=crossings_per_round, entries=entries, basin_minima=minima,
        cut=cut, cores=cores)
