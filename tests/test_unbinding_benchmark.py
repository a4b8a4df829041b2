"""Tests for workflows.benchmarks.unbinding: bound/unbound labels on the real pocket geometry,
event counting with hysteresis, and the exact Poisson and rate-ratio intervals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from rave.systems.ligand_cavity import build_ligand_cavity
from workflows.benchmarks import unbinding as ub

#: agreement of closed forms evaluated two ways (scipy quantiles), relative
EXACT_REL = 1e-9


@pytest.fixture(scope="module")
def cavity():
    return build_ligand_cavity(size="small")


def _top(cavity) -> float:
    return cavity.geometry["z_top"] - float(cavity.pocket_center[2])


def test_labels_follow_the_pocket_and_the_unbound_height(cavity):
    top = _top(cavity)
    mouth = cavity.geometry["mouth_radius"]
    z = np.array([0.0, top + 0.1, top + 0.5, top + 0.6, top + 0.6, 0.0])
    rho = np.array([0.0, 0.2, 0.2, 0.2, 1.3, mouth + 0.05])
    labels = ub.binding_labels(z, rho, cavity, 0.6)
    # in the pocket, at the mouth, between, unbound on the axis, unbound off the axis, and
    # inside the wall's height range but outside the mouth radius (between)
    assert labels.tolist() == [0, 0, -1, 1, 1, -1]
    # the pocket floor is the lower limit of bound
    floor = cavity.geometry["z_floor"] - float(cavity.pocket_center[2])
    assert ub.binding_labels(np.array([floor - 0.01]), np.array([0.0]), cavity, 0.6)[0] == -1
    with pytest.raises(ValueError, match=r"unbound height must be > 0"):
        ub.binding_labels(z, rho, cavity, 0.0)


def test_events_are_counted_with_hysteresis_per_segment(cavity):
    top = _top(cavity)
    # bound, rattle at the mouth (between), bound, out (unbound), back between, unbound again,
    # rebind, unbind: 2 unbindings, 1 rebinding
    z = np.array([0.0, top + 0.45, 0.0, top + 0.7, top + 0.4, top + 0.9, 0.1, top + 0.8])
    labels = ub.binding_labels(z, np.zeros_like(z), cavity, 0.6)
    segment = ub.Segment("round 1", True, labels, np.zeros(len(z), np.int64), 0.025, z - top)
    counts = segment.counts()
    assert (counts["unbindings"], counts["rebindings"]) == (2, 1)
    assert counts["bound"] == pytest.approx(3 / 8)
    assert counts["unbound"] == pytest.approx(3 / 8)
    # two walkers split after frame 3: walker 0 unbinds once (frames 0-3), walker 1 (starting
    # between, then unbound: an arrival) rebinds and unbinds
    walker = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    counts = ub.Segment("r", True, labels, walker, 0.025, z - top).counts()
    assert (counts["unbindings"], counts["rebindings"]) == (2, 1)
    # split after frame 2: walker 0 never leaves; walker 1 starts unbound, rebinds, unbinds
    walker = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    counts = ub.Segment("r", True, labels, walker, 0.025, z - top).counts()
    assert (counts["unbindings"], counts["rebindings"]) == (1, 1)


def test_table_totals_biased_and_unbiased_apart_from_round_0(cavity):
    top = _top(cavity)
    out = ub.binding_labels(np.array([0.0, top + 0.8]), np.zeros(2), cavity, 0.6)
    stay = ub.binding_labels(np.array([0.0, 0.0]), np.zeros(2), cavity, 0.6)
    w = np.zeros(2, np.int64)
    h_out, h_stay = np.array([-0.3, 0.8]), np.array([-0.3, -0.2])
    rows = ub.table([ub.Segment("round 0", False, out, w, 0.5, h_out),
                     ub.Segment("round 1", True, out, w, 0.5, h_out),
                     ub.Segment("round 2", True, out, w, 0.5, h_out + 0.1),
                     ub.Segment("unbiased chunk 1", False, stay, w, 0.5, h_stay),
                     ub.Segment("unbiased chunk 2", False, stay, w, 0.5, h_stay),
                     ub.Segment("unbiased chunk 3", False, out, w, 0.5, h_out)])
    total = {r["segment"]: r for r in rows}
    assert total["biased rounds, total"]["unbindings"] == 2
    assert total["biased rounds, total"]["ns"] == pytest.approx(1.0)
    assert total["biased rounds, total"]["per_ns"] == pytest.approx(2.0)
    # round 0 is unbiased but not part of the reference (it precedes both)
    assert total["unbiased reference, total"]["unbindings"] == 1
    assert total["unbiased reference, total"]["ns"] == pytest.approx(1.5)
    assert total["unbiased reference, total"]["bound"] == pytest.approx(5 / 6)
    assert total["biased rounds, total"]["height_max_nm"] == pytest.approx(0.9)
    assert total["unbiased chunk 1"]["height_max_nm"] == pytest.approx(-0.2)
    low, high = ub.poisson_interval(2)
    assert total["biased rounds, total"]["per_ns_low"] == pytest.approx(low)
    assert total["biased rounds, total"]["per_ns_high"] == pytest.approx(high)


def test_poisson_interval_matches_closed_forms():
    # k = 0: the upper limit solves exp(-mu) = alpha/2
    low, high = ub.poisson_interval(0)
    assert low == 0.0
    assert high == pytest.approx(-math.log(0.025), rel=EXACT_REL)
    # the Garwood limits are where the Poisson tail probabilities equal alpha/2
    for k in (1, 4, 17):
        low, high = ub.poisson_interval(k)
        assert stats.poisson.sf(k - 1, low) == pytest.approx(0.025, rel=1e-7)
        assert stats.poisson.cdf(k, high) == pytest.approx(0.025, rel=1e-7)


def test_rate_ratio_interval():
    # equal counts in equal times: ratio 1, interval symmetric in log
    point, low, high = ub.rate_ratio_interval(10, 1.0, 10, 1.0)
    assert point == pytest.approx(1.0)
    assert low * high == pytest.approx(1.0, rel=1e-9)
    assert low < 1.0 < high
    # doubling the biased time halves the ratio and its limits
    p2, l2, h2 = ub.rate_ratio_interval(10, 2.0, 10, 1.0)
    assert (p2, l2, h2) == pytest.approx((0.5, low / 2, high / 2))
    # the limits are the Clopper-Pearson limits of k1 out of n, mapped to p / (1 - p)
    _, low, high = ub.rate_ratio_interval(7, 1.0, 3, 1.0)
    assert stats.binom.sf(6, 10, low / (1 + low)) == pytest.approx(0.025, rel=1e-7)
    assert stats.binom.cdf(7, 10, high / (1 + high)) == pytest.approx(0.025, rel=1e-7)
    # no unbiased events: unbounded above
    point, low, high = ub.rate_ratio_interval(5, 1.0, 0, 1.0)
    assert point == math.inf and high == math.inf and low > 0
    # no events at all: no information
    assert all(math.isnan(v) for v in ub.rate_ratio_interval(0, 1.0, 0, 1.0))


def test_reference_chunks_match_the_biased_rounds_lengths():
    # a budgeted campaign: round 0 of 10,000 steps, then rounds that halve or double
    rounds = [10000, 12500, 6250, 12500, 8750]
    assert ub.reference_chunk_steps(rounds, 12500, None) == [12500, 6250, 12500, 8750]
    # the same total length as the biased rounds, round by round
    assert sum(ub.reference_chunk_steps(rounds, 12500, None)) == sum(rounds[1:])
    # fewer chunks: the first ones; more: steps_per_round each beyond the biased rounds
    assert ub.reference_chunk_steps(rounds, 12500, 2) == [12500, 6250]
    assert ub.reference_chunk_steps(rounds, 12500, 6) == [12500, 6250, 12500, 8750, 12500, 12500]
    with pytest.raises(ValueError, match=r"at least one chunk"):
        ub.reference_chunk_steps(rounds, 12500, 0)


def test_campaign_wall_time_adds_up_over_resumed_runs(tmp_path, monkeypatch):
    # an interrupted run and its resumption both count; a rerun of a finished campaign does not
    from rave.campaign import store

    rounds_per_call = iter([(1, 130), (3, 0), (3, 0)])

    def fake_rave(argv):
        n_rounds, code = next(rounds_per_call)
        store.CampaignStore(Path(argv[-1])).write_summary({"rounds": [{}] * n_rounds})
        return code

    monkeypatch.setattr(ub, "rave_main", fake_rave)
    with pytest.raises(SystemExit, match="rerun this command to resume"):
        ub._campaign(Path("c.toml"), tmp_path)
    first = ub.store.load_json(tmp_path / "timing.json")
    assert first["campaign_runs"] == 1 and first["campaign_s"] >= 0.0
    assert len(ub._campaign(Path("c.toml"), tmp_path)["rounds"]) == 3
    ub._campaign(Path("c.toml"), tmp_path)  # already finished: no work, no time added
    timing = ub.store.load_json(tmp_path / "timing.json")
    assert timing["campaign_runs"] == 2 and timing["campaign_s"] >= first["campaign_s"]
