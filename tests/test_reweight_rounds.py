"""rave.stats.reweight_rounds: the MBAR weights of rounds recorded in one's own script, from
each round's features and the static bias it ran under; pymbar is the oracle."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from openmm import unit

from rave.bias_grid import Bias, BiasGrid
from rave.stats import mbar_reweight, reweight_rounds

#: kJ/mol at 300 K
KT = 2.494338785445972
#: agreement of the log-weights with pymbar's (both solved to ~1e-12 relative; the
#: difference is rounding in the log-sum-exp of a few hundred frames)
PYMBAR_LOG_WEIGHT_AGREEMENT = 1e-6
#: exact cases (constant biases): only floating-point rounding remains
EXACT = 1e-10


def _rounds(seed: int = 0):
    """Three rounds of two order parameters: unbiased, then two different grid biases."""
    rng = np.random.default_rng(seed)
    features = [rng.normal(loc=shift, size=(n, 2)) for shift, n in ((0.0, 300), (0.8, 250),
                                                                    (1.6, 200))]
    biases = [None,
              Bias(np.array([1.0, 0.0]), BiasGrid(-3.0, 4.0, rng.uniform(-6.0, 0.0, 16))),
              Bias(np.array([0.6, 0.8]), BiasGrid(-3.0, 5.0, rng.uniform(-8.0, 0.0, 16)))]
    return features, biases


def _pymbar_unbiased_log_weights(features, biases) -> np.ndarray:
    """pymbar's weights of the unbiased state (a state of its own with no frames)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pymbar
    logging.getLogger("pymbar").setLevel(logging.ERROR)
    frames = np.concatenate(features)
    u_kn = np.array([np.zeros(len(frames)) if b is None else b.energy(frames) / KT
                     for b in biases] + [np.zeros(len(frames))])
    n_k = np.array([len(x) for x in features] + [0])
    mbar = pymbar.MBAR(u_kn, n_k, relative_tolerance=1e-12, initialize="zeros")
    return np.log(mbar.W_nk[:, -1])


def test_rounds_are_reweighted_as_pymbar_reweights_them():
    features, biases = _rounds()
    got = reweight_rounds(features, biases, KT).log_weights
    expected = _pymbar_unbiased_log_weights(features, biases)
    print(f"max |log w - log w(pymbar)| = {np.max(np.abs(got - expected)):.2e}")
    np.testing.assert_allclose(got, expected, atol=PYMBAR_LOG_WEIGHT_AGREEMENT, rtol=0)


def test_it_is_mbar_on_every_bias_evaluated_on_every_frame():
    features, biases = _rounds(1)
    frames = np.concatenate(features)
    reduced = np.array([np.zeros(len(frames)) if b is None else b.energy(frames) / KT
                        for b in biases])
    by_hand = mbar_reweight(reduced, [len(x) for x in features])
    got = reweight_rounds(features, biases, KT * unit.kilojoule_per_mole)
    np.testing.assert_array_equal(got.log_weights, by_hand.log_weights)
    np.testing.assert_array_equal(got.free_energies, by_hand.free_energies)


def test_constant_biases_leave_every_frame_the_same_weight():
    """A constant bias c does not change the ensemble: equal weights, f_k = c / kT."""
    features, _ = _rounds(2)
    biases = [None] + [Bias(np.array([1.0, 0.0]), BiasGrid(-5.0, 5.0, np.full(8, c)))
                       for c in (-3.0, -7.5)]
    result = reweight_rounds(features, biases, KT)
    n = sum(len(x) for x in features)
    np.testing.assert_allclose(result.log_weights, np.full(n, -np.log(n)), atol=EXACT, rtol=0)
    np.testing.assert_allclose(result.free_energies, [0.0, -3.0 / KT, -7.5 / KT], atol=EXACT,
                               rtol=0)


@pytest.mark.parametrize("args, error, match", [
    (([], [], KT), ValueError, r"features must hold the frames of at least one round"),
    (([np.zeros((3, 2))], [None, None], KT), ValueError,
     r"biases must hold one bias \(or None\) per round: 1 round\(s\) of features. You "
     r"supplied 2"),
    (([np.zeros((3, 2)), np.zeros((3, 3))], [None, None], KT), ValueError,
     r"features\[1\] must be shape \(n_frames, 2\) like features\[0\]. You supplied \(3, 3\)"),
    (([np.zeros((3, 2)), np.zeros((3, 2))], [None, "bias.json"], KT), TypeError,
     r"biases\[1\] must be None or have energy\(features\)"),
    (([np.zeros((3, 2))], [None], -1.0), ValueError, r"kT must be finite and > 0"),
])
def test_bad_rounds_are_refused_with_what_was_given(args, error, match):
    with pytest.raises(error, match=match):
        reweight_rounds(*args)
