"""Order parameters (angles of sin/cos pairs), crossings of the highest barrier of F, and the
flags a report raises when a basin was entered too few times."""

from __future__ import annotations

import numpy as np
import pytest

from rave.analysis import plots
from rave.analysis.basins import (
    MIN_BASIN_ENTRIES,
    barrier_crossings,
    order_parameters,
)
from rave.md.features import Dihedral, Distance

PHI = (4, 6, 8, 14)
PSI = (6, 8, 14, 16)
#: frames per visit to a basin in the synthetic series
VISIT = 80


def _series(sequence, centres, spread, rng, bridge=None):
    """Visits to basins in ``sequence`` (keys of ``centres``), VISIT frames each with Gaussian
    noise; ``bridge`` (lo, hi, n): n extra frames spread over (lo, hi) after every visit."""
    parts = []
    for name in sequence:
        parts.append(centres[name] + rng.normal(0.0, spread, VISIT))
        if bridge is not None:
            lo, hi, n = bridge
            parts.append(rng.uniform(lo, hi, n))
    return np.concatenate(parts)


def _crossings(x, periodic=False, bins=60):
    n = len(x)
    return barrier_crossings(x, np.zeros(n), np.zeros(n, dtype=int), np.zeros(n, dtype=int),
                             bins=bins, periodic=periodic)


def test_sin_cos_pairs_of_one_dihedral_are_read_as_the_angle():
    features = [Dihedral(PHI, "sin", name="sin_phi"), Distance(1, 2, name="d"),
                Dihedral(PSI, "cos", name="cos_psi"), Dihedral(PHI, "cos", name="cos_phi"),
                Dihedral(PSI, "sin", name="sin_psi")]
    parameters = order_parameters(features)
    assert [(p.name, p.unit, p.columns, p.periodic) for p in parameters] == [
        ("phi", "deg", (0, 3), True), ("d", "nm", (1,), False), ("psi", "deg", (4, 2), True)]
    angles = np.radians([-170.0, -60.0, 0.0, 75.0, 179.0])
    table = np.column_stack([np.sin(angles), np.zeros(5), np.cos(angles), np.cos(angles),
                             np.sin(angles)])
    np.testing.assert_allclose(parameters[0].values(table), np.degrees(angles), atol=1e-12)
    np.testing.assert_array_equal(parameters[1].values(table), table[:, 1])


def test_a_lone_sin_of_a_dihedral_stays_a_feature():
    parameters = order_parameters([Dihedral(PHI, "sin", name="sin_phi")])
    assert [(p.name, p.periodic) for p in parameters] == [("sin_phi", False)]


def test_flips_on_one_side_of_the_highest_barrier_are_not_crossings():
    rng = np.random.default_rng(1)
    # A and B share a low, sampled barrier (frames spread between them after each visit); C is
    # across an unsampled one. A<->B flips 12 times; the walker reaches C twice and returns once.
    sequence = list("ABABABABABABA") + ["C", "B", "A", "B", "C"]
    centres = {"A": -1.0, "B": 0.0, "C": 1.5}
    x = _series(sequence, centres, 0.08, rng, bridge=(-0.8, -0.2, 6))
    x = x[(x < 0.5) | (x > 1.0)]  # nothing between B and C
    found = _crossings(x)
    assert [s.minimum for s in found.states] == pytest.approx([-1.0, 0.0, 1.5], abs=0.1)
    assert 0.2 < found.barrier < 1.3  # between B and C
    assert found.crossings == 3  # B->C, C->B, B->C
    assert found.entries == (1, 2)
    assert found.flagged_basins == [0, 1]
    # every bin is on one side of the dividing surface
    np.testing.assert_array_equal(found.basin, (found.centers > found.barrier).astype(int))


def test_noise_at_the_barrier_top_is_not_a_crossing():
    rng = np.random.default_rng(2)
    # 20 excursions from the left core to the barrier top (2 frames each) and back, then one
    # crossing to the right core
    parts = []
    for _ in range(20):
        parts += [-1.0 + rng.normal(0, 0.1, 20), rng.uniform(-0.3, 0.3, 2)]
    parts += [-1.0 + rng.normal(0, 0.1, 20), 1.0 + rng.normal(0, 0.1, 400)]
    x = np.concatenate(parts)
    found = _crossings(x)
    assert len(found.states) == 2
    assert found.crossings == 1


def test_enough_entries_clear_the_flag():
    rng = np.random.default_rng(3)
    sequence = ["L", "R"] * MIN_BASIN_ENTRIES + ["L"]
    x = _series(sequence, {"L": -1.0, "R": 1.0}, 0.1, rng)
    found = _crossings(x)
    assert found.crossings == 2 * MIN_BASIN_ENTRIES
    assert found.entries == (MIN_BASIN_ENTRIES, MIN_BASIN_ENTRIES)
    assert found.flagged_basins == []
    assert not found.flagged_bins.any()
    assert "FEW CROSSINGS" not in found.describe("x", "nm")


def test_an_angle_basin_across_180_is_one_basin_and_crossings_count_either_way():
    rng = np.random.default_rng(4)
    # basin T straddles +-180 deg, basin G sits at 0; the walker goes T, G, T, G, T
    sequence = ["T", "G", "T", "G", "T"]
    x = _series(sequence, {"T": 180.0, "G": 0.0}, 12.0, rng)
    x = (x + 180.0) % 360.0 - 180.0
    found = _crossings(x, periodic=True)
    assert len(found.states) == 2
    assert found.crossings == 4
    assert found.entries in ((2, 2),)
    assert sorted(abs(m) for m in found.basin_minima) == pytest.approx([0.0, 180.0], abs=10.0)
    assert found.centers.min() > -180.0 and found.centers.max() < 180.0
    assert np.all(np.diff(found.centers) > 0)
    # the core of T is drawn as two spans, one at each end of -180..180
    spans = found.core_spans
    assert any(lo == -180.0 for lo, _ in spans) and any(hi == 180.0 for _, hi in spans)


def test_crossings_are_counted_per_round_and_walker():
    rng = np.random.default_rng(5)
    a = _series(["L", "R"], {"L": -1.0, "R": 1.0}, 0.1, rng)
    b = _series(["R", "L", "R"], {"L": -1.0, "R": 1.0}, 0.1, rng)
    x = np.concatenate([a, b, a])
    rounds = np.repeat([0, 0, 1], [len(a), len(b), len(a)])
    walker = np.repeat([0, 1, 0], [len(a), len(b), len(a)])
    found = barrier_crossings(x, np.zeros(len(x)), rounds, walker)
    # round 0: walker 0 L->R (1), walker 1 R->L->R (2); the join of the two is not counted
    assert found.crossings_per_round == [3, 1]


def test_a_flagged_profile_draws_red_error_bars_and_a_warning():
    centers = np.linspace(-1, 1, 9)
    f = np.array([1, 0.2, 0, 0.5, 3, 0.6, 0.1, 0.4, 1.2])
    flagged = centers > 0
    fig = plots.profile_with_errors(centers=centers, profile_kT=f, sigma_kT=np.full(9, 0.1),
                                    flagged=flagged, flag_label="few entries", barrier=0.0,
                                    note="2 crossings")
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "few entries" in labels and "dividing surface (highest barrier)" in labels
    assert any(t.get_text() == "2 crossings" for t in ax.texts)
