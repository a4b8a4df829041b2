"""The RAVE step as an estimator: ``rave.RAVE(...).fit(X, log_weights).fetch_model()``.

The estimator must be the campaign's learning step: a short campaign on the rotated double
well, refitted round by round from its stored frames and weights with the same seeds, gives
the same RC (bit for bit), the same models and the same bias.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_CAMPAIGN, SMALL_VAE

import rave
from rave.campaign import store
from rave.campaign.config import config_from_dict
from rave.learn.bias import build_bias_grid
from rave.learn.coordinate import direction_angle_deg
from rave.learn.estimator import (
    RAVE,
    RAVEModel,
    cold_positions,
    rc_frames,
    stale_warm_starts,
)
from rave.learn.vae import VAEConfig, VAEModel
from rave.units import kT_kjmol

ROOT = Path(__file__).resolve().parents[1]

#: the small VAE of these tests and of the shared campaign
VAE = SMALL_VAE
#: the slow direction is recovered by a properly trained step (degrees; measured 1-4)
SLOW_DIRECTION_TOL_DEG = 10.0


def wells(n: int, angle_deg: float, seed: int) -> np.ndarray:
    """2-D frames: two wells 3 apart along the direction at ``angle_deg`` (sigma 0.35), N(0, 1)
    across it."""
    rng = np.random.default_rng(seed)
    slow = np.where(rng.random(n) < 0.5, -1.5, 1.5) + 0.35 * rng.normal(size=n)
    other = rng.normal(size=n)
    a = np.radians(angle_deg)
    return np.column_stack([slow * np.cos(a) - other * np.sin(a),
                            slow * np.sin(a) + other * np.cos(a)])


@pytest.fixture
def campaign(small_campaign):
    """The work directory of the shared campaign (conftest.SMALL_CAMPAIGN)."""
    return small_campaign[0].workdir


@pytest.fixture(scope="module")
def small_fit():
    """A fitted estimator on 600 frames of a double well (30 degrees), with log-weights."""
    x = wells(600, 30.0, seed=1)
    log_w = np.random.default_rng(2).normal(scale=0.5, size=len(x))
    estimator = RAVE(n_models=2, vae=VAE, seed=5)
    return x, log_w, estimator.fit(x, log_w)


def _round(workdir: Path, index: int):
    """Frames of rounds 0..index, the weights and coordinate.json of round ``index``."""
    features = np.concatenate([
        store.load_npz(store.round_dir(workdir, r) / "frames.npz", ("features",))["features"]
        for r in range(index + 1)])
    folder = store.round_dir(workdir, index)
    log_w = store.load_npz(folder / "weights.npz", ("log_weights",))["log_weights"]
    coordinate = json.loads((folder / "coordinate.json").read_text())
    seeds = [int(name.removeprefix("models/vae_seed").removesuffix(".pt"))
             for name in coordinate["model_files"]]
    return features, log_w, coordinate, seeds


def _assert_same_step(model: RAVEModel, workdir: Path, index: int, features: np.ndarray,
                      coordinate: dict) -> None:
    folder = store.round_dir(workdir, index)
    print(f"round {index}: campaign c = {coordinate['coefficients']}, estimator c = "
          f"{model.coefficients.tolist()}")
    np.testing.assert_array_equal(model.coefficients, coordinate["coefficients"])
    assert model.kl_divergence == coordinate["kl_divergence"]
    assert model.chosen == coordinate["chosen_model"]
    assert [m.kl_divergence for m in model.models] == coordinate["model_kl_divergences"]
    assert [m.validation_loss for m in model.models] == coordinate["model_validation_losses"]
    assert [m.warm for m in model.models] == coordinate["warm_started"]
    assert model.dropped == coordinate["spurious_models"]
    assert model.stale == coordinate["stale_models"]
    assert model.seed_spread_deg == coordinate["seed_spread_deg"]
    for trained, name in zip(model.models, coordinate["model_files"], strict=True):
        stored = VAEModel.load(folder / name)
        np.testing.assert_array_equal(trained.vae.transform(features), stored.transform(features))
    # the bias of the next round, built from the same chi and weights
    cfg = config_from_dict(SMALL_CAMPAIGN).bias
    bias = model.bias(kT_kjmol(300.0), n_points=cfg.grid_points, padding=cfg.padding,
                      cap_kT=cfg.cap_kT, smoothing_bins=cfg.smoothing_bins, damping=cfg.damping)
    assert bias.to_dict() == json.loads((folder / "bias.json").read_text())


# ------------------------------------------------------------------------------ the campaign
def test_estimator_gives_the_campaigns_rc_round_by_round(campaign):
    """Round 0 cold, round 1 warm-started from the round-0 model (one seed cold, rotating):
    the estimator, given the stored frames, weights and seeds, reproduces both rounds."""
    previous = None
    for index in (0, 1):
        features, log_w, coordinate, seeds = _round(campaign, index)
        assert len(features) > SMALL_CAMPAIGN["coordinate"]["max_frames"]  # the RC subset is used
        estimator = RAVE(n_models=2, vae=VAE, seed=seeds, cold_models=1, max_frames=100,
                         rc_seed=[SMALL_CAMPAIGN["sampling"]["seed"], index, 7])
        model = estimator.fit(features, log_w, initial=previous).fetch_model()
        assert model.generation == index
        assert [m.seed for m in model.models] == seeds
        _assert_same_step(model, campaign, index, features, coordinate)
        previous = model
    # round 1 trained one model warm (position 0) and one cold (position 1, the rotation)
    assert [m.warm for m in previous.models] == [True, False]


def test_campaign_log_names_the_round_of_each_model(campaign):
    text = (campaign / "campaign.log").read_text()
    for index, seeds in ((0, _round(campaign, 0)[3]), (1, _round(campaign, 1)[3])):
        for seed in seeds:
            assert f"round {index}: VAE seed {seed} (" in text
        assert f"round {index}: training 2 VAE seed(s)" in text


def test_stored_models_are_reused_not_retrained(campaign):
    """The resume path: models given in ``trained`` are used as they are."""
    features, log_w, coordinate, seeds = _round(campaign, 0)
    stored = [VAEModel.load(store.round_dir(campaign, 0) / name)
              for name in coordinate["model_files"]]
    calls = []
    estimator = RAVE(n_models=2, vae=VAE, seed=seeds, max_frames=100,
                     rc_seed=[SMALL_CAMPAIGN["sampling"]["seed"], 0, 7])
    model = estimator._fit(features, log_w, trained=stored,
                           on_trained=lambda m, vae: calls.append(m)).fetch_model()
    assert calls == []
    assert all(a.vae is b for a, b in zip(model.models, stored, strict=True))
    np.testing.assert_array_equal(model.coefficients, coordinate["coefficients"])
    # one stored, one trained: on_trained sees the trained one only
    model = estimator._fit(features, log_w, trained=[stored[0], None],
                           on_trained=lambda m, vae: calls.append(m)).fetch_model()
    assert calls == [1]
    np.testing.assert_array_equal(model.coefficients, coordinate["coefficients"])


# ------------------------------------------------------------------------------ the model
def test_transform_is_the_linear_rc(small_fit):
    x, _, estimator = small_fit
    model = estimator.fetch_model()
    assert np.linalg.norm(model.coefficients) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(model.transform(x), x @ model.coefficients)
    np.testing.assert_array_equal(model.chi, x @ model.coefficients)
    other = wells(50, 0.0, seed=9)
    np.testing.assert_array_equal(model.transform(other), other @ model.coefficients)
    with pytest.raises(ValueError, match=r"X must be shape \(Any, 2\). You supplied \(50,\)"):
        model.transform(other[:, 0])
    assert not model.coefficients.flags.writeable and not model.chi.flags.writeable


def test_bias_is_build_bias_grid_of_the_fits_chi_and_weights(small_fit):
    x, log_w, estimator = small_fit
    model = estimator.fetch_model()
    kT = kT_kjmol(300.0)
    for options in ({}, {"n_points": 64, "padding": 0.5, "cap_kT": 5.0, "smoothing_bins": 0.0,
                         "damping": 0.8}):
        bias = model.bias(kT, **options)
        expected = build_bias_grid(x @ model.coefficients, log_w, kT, **options)
        np.testing.assert_array_equal(bias.coefficients, model.coefficients)
        assert (bias.grid.chi_min, bias.grid.chi_max) == (expected.chi_min, expected.chi_max)
        np.testing.assert_array_equal(bias.grid.values_kjmol, expected.values_kjmol)
    np.testing.assert_array_equal(model.log_weights, log_w)
    with pytest.raises(TypeError, match="unexpected keyword argument 'grid_points'"):
        model.bias(kT, grid_points=64)
    # an OpenMM Quantity, as BiasForce takes them
    from openmm import unit

    quantity = model.bias(kT * unit.kilojoule_per_mole)
    np.testing.assert_array_equal(quantity.grid.values_kjmol, model.bias(kT).grid.values_kjmol)
    in_kcal = model.bias((kT / 4.184) * unit.kilocalorie_per_mole)
    np.testing.assert_allclose(in_kcal.grid.values_kjmol, model.bias(kT).grid.values_kjmol,
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="kT must be an energy"):
        model.bias(300 * unit.kelvin)


def test_model_lists_every_vae_with_its_rc_and_verdict(small_fit):
    x, _, estimator = small_fit
    model = estimator.fetch_model()
    assert len(model.models) == 2 and model.generation == 0
    assert [m.seed for m in model.models] == [5, 6]
    for trained in model.models:
        assert isinstance(trained.vae, VAEModel) and not trained.warm
        assert np.isfinite(trained.validation_loss)
        assert trained.kl_divergence >= 0
        assert trained.spurious == (trained.kl_divergence > estimator.kl_threshold)
        assert not trained.stale
    chosen = model.models[model.chosen]
    assert model.kl_divergence == chosen.kl_divergence
    np.testing.assert_array_equal(model.coefficients, chosen.coefficients)  # no previous RC


def test_all_spurious_uses_the_lowest_kl_and_drops_every_model(small_fit, caplog):
    x, log_w, estimator = small_fit
    trained = estimator.fetch_model().vae_models
    strict = RAVE(n_models=2, vae=VAE, seed=5, kl_threshold=0.0)
    with caplog.at_level(logging.WARNING, logger="rave.learn.coordinate"):
        model = strict._fit(x, log_w, trained=trained).fetch_model()
    assert "no model has KL <= 0" in caplog.text
    assert model.dropped == [0, 1]
    assert model.chosen == int(np.argmin([m.kl_divergence for m in model.models]))


def test_previous_rc_sets_the_sign(small_fit):
    x, log_w, estimator = small_fit
    model = estimator.fetch_model()
    trained = model.vae_models
    flipped = RAVE(n_models=2, vae=VAE, seed=5)._fit(
        x, log_w, trained=trained, previous=-model.coefficients).fetch_model()
    assert flipped.coefficients @ model.coefficients < 0


def test_a_warm_start_from_a_model_rotates_its_cold_seed(small_fit):
    x, log_w, estimator = small_fit
    first = estimator.fetch_model()
    more = np.vstack([x, wells(300, 30.0, seed=3)])
    later = RAVE(n_models=2, vae=VAE, seed=7, cold_models=1).fit(
        more, initial=first).fetch_model()
    assert later.generation == 1
    assert [m.warm for m in later.models] == [True, False]  # cold_positions(1, 2, 1) == {1}
    assert later.coefficients @ first.coefficients >= 0  # turned to the previous side
    assert cold_positions(0, 3, 1) == {0, 1, 2}
    assert [cold_positions(g, 3, 1) for g in (1, 2, 3, 4)] == [{1}, {2}, {0}, {1}]
    assert cold_positions(5, 3, 0) == set()


def test_rc_frames_is_a_seeded_sorted_subset():
    subset = rc_frames(5000, 1000, [1, 2, 7])
    assert len(subset) == 1000 and np.all(np.diff(subset) > 0)
    np.testing.assert_array_equal(subset, rc_frames(5000, 1000, [1, 2, 7]))
    assert not np.array_equal(subset, rc_frames(5000, 1000, [1, 3, 7]))
    np.testing.assert_array_equal(rc_frames(800, 1000, 0), np.arange(800))


def test_stale_warm_start_is_dropped():
    y, x = np.array([0.0, 1.0]), np.array([1.0, 0.0])
    assert stale_warm_starts([y, x], [0.2, 0.01], [False, True], 0.5, 15.0) == [1]
    assert stale_warm_starts([y, x], [0.9, 0.01], [False, True], 0.5, 15.0) == []


def test_a_trained_step_finds_the_slow_direction():
    """Ground truth: two wells along 30 degrees, noise across; a step with enough training
    recovers the direction."""
    x = wells(3000, 30.0, seed=4)
    vae = {**VAE, "max_epochs": 8, "min_epochs": 8, "frames_per_epoch": 4096}
    model = RAVE(n_models=2, vae=vae, seed=1).fit(x).fetch_model()
    truth = [np.cos(np.radians(30.0)), np.sin(np.radians(30.0))]
    angle = direction_angle_deg(model.coefficients, truth)
    print(f"RC {model.coefficients}, {angle:.2f} deg off the slow direction "
          f"(tolerance {SLOW_DIRECTION_TOL_DEG})")
    assert angle < SLOW_DIRECTION_TOL_DEG


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_models": 0}, ValueError, r"n_models must be an int >= 1. You supplied 0"),
    ({"n_models": 2.0}, ValueError, r"n_models must be an int >= 1. You supplied 2.0"),
    ({"vae": "big"}, TypeError, r"vae must be a VAEConfig or a dict of its fields"),
    ({"vae": {"hiden": [8]}}, ValueError, r"unknown VAEConfig fields \['hiden'\]"),
    ({"seed": [1, 2]}, ValueError, r"seed must give 3 distinct non-negative ints"),
    ({"seed": [1, 1, 2]}, ValueError, r"seed must give 3 distinct non-negative ints"),
    ({"seed": -1}, ValueError, r"seed must give 3 distinct non-negative ints"),
    ({"seed": "1"}, TypeError, r"seed must be an int or a sequence of n_models ints"),
    ({"cold_models": 4}, ValueError, r"cold_models must be <= n_models \(3\)"),
    ({"kl_threshold": -0.1}, ValueError, r"kl_threshold must be finite and >= 0"),
    ({"kl_tie": float("nan")}, ValueError, r"kl_tie must be finite and >= 0"),
    ({"bins": 1}, ValueError, r"bins must be an int >= 2"),
    ({"rc_seed": -3}, ValueError, r"rc_seed must be a non-negative int"),
])
def test_bad_settings_fail_in_the_constructor(kwargs, error, match):
    with pytest.raises(error, match=match):
        RAVE(**kwargs)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"threads": 0}, ValueError, r"threads must be an int >= 1. You supplied 0"),
    ({"workers": 0}, ValueError, r"workers must be an int >= 1"),
    ({"logger": "rave"}, TypeError, r"logger must be a logging.Logger"),
    ({"progress": 1}, TypeError, r"progress must be True, False or a label"),
])
def test_bad_run_settings_fail_before_training(kwargs, error, match):
    estimator = RAVE(n_models=1, vae=VAE)
    with pytest.raises(error, match=match):
        estimator._fit(wells(50, 30.0, seed=1), **kwargs)
    assert not estimator.has_model


def test_the_estimator_has_hyperparameters_only_and_a_model_after_fit(small_fit):
    """deeptime's shape: settings of the method in the constructor, data in fit, the result in
    ``model`` (the same as ``fetch_model()``)."""
    import inspect

    public = (set(inspect.signature(RAVE).parameters)
              | set(inspect.signature(RAVE.fit).parameters))
    assert public.isdisjoint({"threads", "workers", "progress", "logger", "trained",
                              "on_trained"})
    _, _, fitted = small_fit
    assert fitted.has_model and fitted.model is fitted.fetch_model()
    with pytest.raises(ValueError, match="no model yet"):
        _ = RAVE().model


def test_seeds_are_consecutive_or_named():
    assert RAVE(n_models=3, seed=10).seeds == [10, 11, 12]
    assert RAVE(n_models=2, seed=np.array([4, 9])).seeds == [4, 9]
    assert RAVE(n_models=2, seed=(4, 9)).rc_seed == 4  # the default subset seed: the first


def test_bad_input_fails_before_training(small_fit):
    x, log_w, fitted = small_fit
    estimator = RAVE(n_models=2, vae=VAEConfig(hidden=(8,), max_epochs=1, device="cpu"))
    with pytest.raises(ValueError, match="no model yet: call fit"):
        estimator.fetch_model()
    cases = [
        ((x[:, 0],), ValueError, r"X must be shape \(n_frames, n_features\). You supplied "
                                 r"\(600,\)"),
        ((x[:1],), ValueError, r"X must hold at least 2 frames"),
        ((np.where(np.arange(1200).reshape(600, 2) == 7, np.nan, x),), ValueError,
         r"X holds 1 NaN or inf value\(s\) \(in column\(s\) \[1\]\)"),
        ((x, log_w[:-1]), ValueError, r"log_weights must have shape \(600,\), one per frame "
                                      r"of X. You supplied shape \(599,\)"),
        ((x, np.where(np.arange(600) < 3, np.nan, log_w)), ValueError,
         r"log_weights contains NaN in 3 frames"),
        ((x, np.where(np.arange(600) < 2, np.inf, log_w)), ValueError,
         r"log_weights contains \+inf in 2 frames"),
        ((x, np.full(600, -np.inf)), ValueError, r"all log_weights are -inf"),
        # log-weights spread over 5,000: one frame carries the weight (effective size ~1)
        ((x, np.linspace(0.0, 5000.0, 600)), ValueError,
         r"effective sample size of 1 frames of 600 \(Kish\)"),
        ((x, None, [None]), ValueError, r"initial must hold one entry per model \(n_models = "
                                        r"2\). You supplied 1"),
        ((x, None, ["vae.pt", None]), TypeError, r"initial\[0\] must be a rave.learn.vae.VAEModel"),
        ((x[:, :1], None, fitted.fetch_model()), ValueError,
         r"initial was fitted on 2 order parameters; X has 1"),
    ]
    for args, error, match in cases:
        with pytest.raises(error, match=match):
            estimator.fit(*args)
    with pytest.raises(ValueError, match=r"initial holds 2 models; this estimator trains "
                                         r"n_models = 3"):
        RAVE(n_models=3).fit(x, initial=fitted.fetch_model())
    with pytest.raises(ValueError, match=r"previous must be shape \(2,\)"):
        estimator.fit(x, previous=[1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"previous must be a finite nonzero vector"):
        estimator.fit(x, previous=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"trained\[1\] takes 2 order parameters; X has 1"):
        estimator._fit(x[:, :1], trained=[None, fitted.fetch_model().vae_models[1]])
    with pytest.raises(ValueError, match="no model yet"):  # nothing was fitted
        estimator.fetch_model()


# ------------------------------------------------------------------------------ public face
def test_rave_exports_the_estimator_without_importing_torch():
    assert rave.RAVE is RAVE and "RAVE" in rave.__all__
    code = ("import sys; from rave import RAVE; import rave.learn; "
            "print(sorted(m for m in ('torch', 'openmm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"
