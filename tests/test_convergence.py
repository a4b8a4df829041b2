"""The convergence verdict (rave.learn.convergence): each criterion fails and passes alone."""

from __future__ import annotations

import dataclasses

import pytest

from rave.campaign.config import ConvergenceConfig
from rave.learn.convergence import RoundEvidence, convergence_failures

THRESHOLDS = ConvergenceConfig(angle_deg=5.0, free_energy_kT=0.5, min_rounds=3)
#: a round that meets every criterion
GOOD = RoundEvidence(index=3, angle_change_deg=1.0, seed_spread_deg=2.0, usable_seeds=2,
                     models=2, free_energy_change_kT=0.1, free_energy_sigma_kT=0.2,
                     rc_angle_sigma_deg=1.5)


def test_a_round_that_meets_every_criterion_converged():
    assert convergence_failures(GOOD, THRESHOLDS) == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"index": 1}, "fewer than 3 rounds"),
    ({"angle_change_deg": 5.0}, "the RC still moved 5.0 deg (limit 5)"),
    ({"angle_change_deg": None}, "the round has no RC change recorded"),
    ({"usable_seeds": 1, "seed_spread_deg": None}, "only 1 of the 2 VAE seeds gave a usable RC"),
    ({"seed_spread_deg": 7.5}, "the seeds' RCs still differ by 7.5 deg"),
    ({"free_energy_change_kT": 0.5}, "F(chi) still changed 0.50 kT RMS (limit 0.5)"),
    ({"free_energy_change_kT": None}, "the round has no F(chi) change recorded"),
    ({"free_energy_sigma_kT": 0.61}, "F(chi)'s bootstrap uncertainty is 0.61 kT"),
    ({"rc_angle_sigma_deg": 12.0}, "the RC's bootstrap uncertainty is 12.0 deg"),
])
def test_each_criterion_fails_alone_and_says_why(change, expected):
    failures = convergence_failures(dataclasses.replace(GOOD, **change), THRESHOLDS)
    assert len(failures) == 1
    assert failures[0].startswith(expected)


def test_a_single_usable_seed_of_several_is_not_agreement():
    # the Mueller-Brown case: the warm seed dropped as stale, the spread has nothing to compare
    lone = dataclasses.replace(GOOD, usable_seeds=1, models=3, seed_spread_deg=None)
    assert any("only 1 of the 3 VAE seeds" in f for f in convergence_failures(lone, THRESHOLDS))


def test_no_usable_seed_is_named_as_such():
    none = dataclasses.replace(GOOD, usable_seeds=0, seed_spread_deg=None)
    assert convergence_failures(none, THRESHOLDS) == [
        "none of the 2 VAE seeds gave a usable RC (each was spurious by KL or a stale warm "
        "start): the RC is the best of unconfirmed ones"]


def test_one_model_per_round_skips_the_seed_check_and_absent_bootstraps_are_not_required():
    single = dataclasses.replace(GOOD, usable_seeds=1, models=1, seed_spread_deg=None,
                                 free_energy_sigma_kT=None, rc_angle_sigma_deg=None)
    assert convergence_failures(single, THRESHOLDS) == []


def test_nan_values_fail_rather_than_pass():
    bad = dataclasses.replace(GOOD, angle_change_deg=float("nan"),
                              free_energy_sigma_kT=float("nan"))
    failures = convergence_failures(bad, THRESHOLDS)
    assert len(failures) == 2


def test_seed_checks_do_not_judge_an_rc_the_barrier_rule_took_elsewhere():
    """rc_choice = "barrier" chose the skewed direction or kept the previous RC: the VAE
    seeds are not its evidence (its bootstrap reruns the choice, and still judges it)."""
    lone = dataclasses.replace(GOOD, usable_seeds=1, seed_spread_deg=None)
    apart = dataclasses.replace(GOOD, seed_spread_deg=40.0)
    for source in ("skew", "previous"):
        assert convergence_failures(dataclasses.replace(lone, rc_source=source),
                                    THRESHOLDS) == []
        assert convergence_failures(dataclasses.replace(apart, rc_source=source),
                                    THRESHOLDS) == []
        shaky = dataclasses.replace(lone, rc_source=source, rc_angle_sigma_deg=30.0)
        assert convergence_failures(shaky, THRESHOLDS) == [
            "the RC's bootstrap uncertainty is 30.0 deg (limit 5)"]
    # the VAE's own RC is still judged by its seeds
    assert len(convergence_failures(lone, THRESHOLDS)) == 1
