"""Tests of rave.learn.coordinate: KL matching recovers a known linear RC."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from rave.learn.coordinate import (
    CoordinateResult,
    NoValidModelError,
    align_sign,
    direction_angle_deg,
    fit_coordinate,
    kl_divergence_histograms,
    robust_unit_scale,
    select_models,
    sphere_directions,
    weighted_quantile,
)

N_FRAMES = 20_000
LATENT_NOISE = 0.01  # std of the noise added to the latent, in units of the projection u
# KL matching matches distributions, not values: latent noise of std s is best mimicked by
# tilting c so that the orthogonal spread (std 0.6 here) adds the same noise, i.e. a bias of
# about asin(s / 0.6) ~ 1 degree for s = 0.01. Tolerances below leave room for that.
ANGLE_TOL_2D_DEG = 3.0  # degrees, sign-agnostic
ANGLE_TOL_3D_DEG = 5.0  # degrees, sign-agnostic
OUTLIER_SHIFT_TOL_DEG = 2.0  # degrees the answer may move when 0.1 % outliers are added
ROUND_OFF = 1e-12  # exact identities
LANDSCAPE_TOL = (
    1e-9  # nats: mirrored-histogram shortcut vs direct KL (differ only at bin-edge ties)
)


def _unit_2d(angle_deg: float) -> np.ndarray:
    a = np.radians(angle_deg)
    return np.array([np.cos(a), np.sin(a)])


def _double_well_2d(
    n: int, angle_deg: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames of a two-basin distribution whose slow coordinate is u = c* . (s - offset).

    Returns features (n, 2), u (n,), c* (2,).
    """
    c_star = _unit_2d(angle_deg)
    perp = np.array([-c_star[1], c_star[0]])
    u = np.where(rng.random(n) < 0.6, rng.normal(-1.0, 0.35, n), rng.normal(1.0, 0.45, n))
    v = rng.normal(0.0, 0.6, n)
    features = u[:, None] * c_star + v[:, None] * perp + np.array([0.3, -0.2])
    return features, u, c_star


# ---- recovery of a known direction -------------------------------------------------------------


def test_recovers_known_direction_in_2d():
    rng = np.random.default_rng(0)
    features, u, c_star = _double_well_2d(N_FRAMES, 35.0, rng)
    latent = -1.7 * u + 0.4 + rng.normal(0.0, LATENT_NOISE, N_FRAMES)  # decreasing, monotone
    res = fit_coordinate(features, latent)
    angle = direction_angle_deg(res.coefficients, c_star)
    assert angle < ANGLE_TOL_2D_DEG, f"angle to c* {angle:.2f} deg, c = {res.coefficients}"
    assert np.linalg.norm(res.coefficients) == pytest.approx(1.0, abs=ROUND_OFF)
    # documented sign: chi increases with the latent (here the latent decreases with u)
    assert res.coefficients @ c_star < 0
    assert np.corrcoef(features @ res.coefficients, latent)[0, 1] > 0
    # the landscape covers the full circle; each entry (mirrored ones included) is the KL there
    assert res.directions.shape == (360, 2) and res.kl_landscape.shape == (360,)
    for i in (0, 35, 180 + 35, 359):
        expected = kl_divergence_histograms(latent, features @ res.directions[i])
        assert res.kl_landscape[i] == pytest.approx(expected, abs=LANDSCAPE_TOL), i


def test_recovers_known_direction_in_3d_with_sphere_grid_and_local_optimiser():
    rng = np.random.default_rng(1)
    c_star = np.array([1.0, -0.6, 0.8]) / np.linalg.norm([1.0, -0.6, 0.8])
    q, _ = np.linalg.qr(np.column_stack([c_star, np.eye(3)]))
    e1, e2 = q[:, 1], q[:, 2]
    u = np.where(
        rng.random(N_FRAMES) < 0.5, rng.normal(-1, 0.35, N_FRAMES), rng.normal(1, 0.45, N_FRAMES)
    )
    features = (
        u[:, None] * c_star
        + rng.normal(0, 0.6, N_FRAMES)[:, None] * e1
        + rng.normal(0, 0.5, N_FRAMES)[:, None] * e2
    )
    latent = u + rng.normal(0.0, LATENT_NOISE, N_FRAMES)
    # a coarse grid (~16 degrees apart): only the local optimiser can get within tolerance
    res = fit_coordinate(features, latent, n_directions=160)
    angle = direction_angle_deg(res.coefficients, c_star)
    best_grid = res.directions[np.argmin(res.kl_landscape)]
    grid_angle = direction_angle_deg(best_grid, c_star)
    print(f"3-D: angle {angle:.2f} deg; best grid point {grid_angle:.2f} deg")
    assert angle < ANGLE_TOL_3D_DEG, f"angle to c* {angle:.2f} deg, c = {res.coefficients}"
    assert grid_angle > ANGLE_TOL_3D_DEG, f"grid alone already at {grid_angle:.2f} deg"


def test_outliers_in_the_latent_do_not_move_the_answer():
    rng = np.random.default_rng(2)
    features, u, _ = _double_well_2d(N_FRAMES, 35.0, rng)
    latent = u + rng.normal(0.0, LATENT_NOISE, N_FRAMES)
    n_out = N_FRAMES // 1000  # 0.1 %
    spoiled = latent.copy()
    spoiled[rng.choice(N_FRAMES, n_out, replace=False)] = rng.choice([-1.0, 1.0], n_out) * 1e3
    clean = fit_coordinate(features, latent)
    robust = fit_coordinate(features, spoiled)
    shift = direction_angle_deg(clean.coefficients, robust.coefficients)
    assert shift < OUTLIER_SHIFT_TOL_DEG, f"outliers moved the RC by {shift:.2f} deg"
    # control: min-max scaling (quantiles 0 and 1) is thrown off by the same outliers
    minmax = fit_coordinate(features, spoiled, lower_quantile=0.0, upper_quantile=1.0)
    shift_minmax = direction_angle_deg(clean.coefficients, minmax.coefficients)
    assert shift_minmax > 10 * OUTLIER_SHIFT_TOL_DEG, f"min-max moved only {shift_minmax:.2f} deg"


def test_weights_decide_the_answer():
    # population A (weight 1) follows c* at 35 deg; population B, three times larger but with
    # weight e^-25 (frames from a region the unbiased ensemble never visits), follows -40 deg
    rng = np.random.default_rng(3)
    xa, ua, c_star = _double_well_2d(8000, 35.0, rng)
    xb, ub, _ = _double_well_2d(24000, -40.0, rng)
    features = np.vstack([xa, xb])
    latent = np.concatenate([ua, ub]) + rng.normal(0.0, LATENT_NOISE, 32000)
    log_weights = np.concatenate([np.zeros(8000), np.full(24000, -25.0)])
    weighted = fit_coordinate(features, latent, log_weights=log_weights)
    unweighted = fit_coordinate(features, latent)
    a_w = direction_angle_deg(weighted.coefficients, c_star)
    a_u = direction_angle_deg(unweighted.coefficients, c_star)
    assert a_w < ANGLE_TOL_2D_DEG, f"weighted answer {a_w:.2f} deg from c*"
    assert a_u > 10 * ANGLE_TOL_2D_DEG, f"unweighted answer only {a_u:.2f} deg from c*"


def test_one_dimensional_features_give_plus_or_minus_one():
    rng = np.random.default_rng(4)
    s = rng.normal(size=(3000, 1))
    assert fit_coordinate(s, -s[:, 0]).coefficients.tolist() == [-1.0]
    assert fit_coordinate(s, 2 * s[:, 0] + 1).coefficients.tolist() == [1.0]


def test_scan_subset_still_reports_kl_on_all_frames():
    rng = np.random.default_rng(5)
    features, u, c_star = _double_well_2d(6000, 35.0, rng)
    latent = u + rng.normal(0.0, LATENT_NOISE, 6000)
    res = fit_coordinate(features, latent, max_scan_frames=2000)
    assert direction_angle_deg(res.coefficients, c_star) < ANGLE_TOL_2D_DEG
    assert res.kl_divergence == pytest.approx(
        kl_divergence_histograms(latent, features @ res.coefficients), abs=ROUND_OFF
    )


# ---- KL and scaling helpers --------------------------------------------------------------------


def test_kl_of_identical_histograms_is_zero_and_positive_otherwise():
    rng = np.random.default_rng(6)
    x = rng.normal(size=5000)
    w = rng.uniform(0.5, 1.5, size=5000)
    assert kl_divergence_histograms(x, x, w) == 0.0
    # an affine map with positive slope leaves the scaled histogram unchanged
    assert kl_divergence_histograms(x, 3.0 * x - 2.0, w) == pytest.approx(0.0, abs=ROUND_OFF)
    assert kl_divergence_histograms(x, rng.uniform(size=5000), w) > 0.1
    assert kl_divergence_histograms(x, x**3, w) > 0.0
    # the mirror image of a skewed distribution does not match
    skewed = rng.exponential(size=5000)
    assert kl_divergence_histograms(skewed, -skewed) > 0.1


def test_kl_stays_finite_when_q_has_empty_bins():
    p = np.linspace(0, 1, 1000)
    q = np.where(p < 0.5, 0.0, 1.0)  # all mass in the two end bins
    kl = kl_divergence_histograms(p, q, bins=10)
    assert np.isfinite(kl) and kl > 1.0


def test_weighted_quantile_with_uniform_weights_is_the_hazen_quantile():
    x = np.array([3.0, 1.0, 2.0, 4.0])
    # sorted positions (i + 0.5) / n = 0.125, 0.375, 0.625, 0.875
    assert weighted_quantile(x, None, 0.5) == pytest.approx(2.5, abs=ROUND_OFF)
    assert weighted_quantile(x, None, 0.125) == pytest.approx(1.0, abs=ROUND_OFF)
    np.testing.assert_allclose(weighted_quantile(x, None, [0.0, 1.0]), [1.0, 4.0])


def test_weighted_quantile_follows_the_weights_and_is_mirror_symmetric():
    x = np.array([0.0, 1.0, 2.0])
    w = np.array([1.0, 0.0, 3.0])  # the zero-weight frame is ignored
    # kept: 0 at position 0.5/4 = 0.125, 2 at (4 - 1.5)/4 = 0.625; q = 0.5 is 3/4 of the way
    assert weighted_quantile(x, w, 0.5) == pytest.approx(1.5, abs=ROUND_OFF)
    rng = np.random.default_rng(7)
    y, wy = rng.normal(size=101), rng.uniform(size=101)
    assert weighted_quantile(-y, wy, 0.2) == pytest.approx(-weighted_quantile(y, wy, 0.8))


def test_robust_unit_scale_clips_outliers_into_the_unit_interval():
    rng = np.random.default_rng(8)
    x = rng.uniform(0.0, 1.0, 10_000)
    x[:5] = 1e6
    s = robust_unit_scale(x)
    assert s.min() == 0.0 and s.max() == 1.0
    assert np.all(s[:5] == 1.0)
    inner = (x > 0.02) & (x < 0.98)  # well inside the 0.5 % / 99.5 % quantiles of U(0, 1)
    np.testing.assert_allclose(s[inner], (x[inner] - 0.005) / 0.99, atol=0.01)
    assert np.all(robust_unit_scale(np.full(10, 3.0)) == 0.5)


# ---- grids, signs, angles ----------------------------------------------------------------------


def test_sphere_grid_is_unit_and_closed_under_inversion():
    for d, n in [(2, 360), (3, 500), (5, 200)]:
        g = sphere_directions(d, n)
        assert g.shape == (n, d)
        np.testing.assert_allclose(np.linalg.norm(g, axis=1), 1.0, atol=ROUND_OFF)
        np.testing.assert_allclose(g[n // 2 :], -g[: n // 2], atol=ROUND_OFF)
    g3 = sphere_directions(3, 2000)
    # quasi-uniform: the mean of z^2 over the sphere is 1/3
    assert np.mean(g3[:, 2] ** 2) == pytest.approx(1.0 / 3.0, abs=1e-3)


def test_direction_angle_is_sign_agnostic():
    c = np.array([0.3, -0.5, 0.8])
    assert direction_angle_deg(c, -c) == 0.0
    assert direction_angle_deg(c, 2.0 * c) == 0.0
    assert direction_angle_deg([1.0, 0.0], [0.0, -1.0]) == pytest.approx(90.0)
    assert direction_angle_deg(_unit_2d(10.0), _unit_2d(190.0 - 0.5)) == pytest.approx(0.5)
    assert direction_angle_deg(_unit_2d(0.0), _unit_2d(1e-6)) == pytest.approx(1e-6, rel=1e-6)


def test_align_sign_follows_reference_else_largest_component_positive():
    c = np.array([0.6, -0.8])
    np.testing.assert_array_equal(align_sign(c, np.array([-1.0, 0.0])), -c)
    np.testing.assert_array_equal(align_sign(c, np.array([1.0, 0.0])), c)
    np.testing.assert_array_equal(align_sign(c), -c)  # largest |c_i| is -0.8
    np.testing.assert_array_equal(align_sign(-c), -c)
    # orthogonal reference: canonical sign
    np.testing.assert_array_equal(align_sign(c, np.array([0.8, 0.6])), -c)


# ---- model selection ---------------------------------------------------------------------------


def _result(kl: float) -> CoordinateResult:
    return CoordinateResult(
        coefficients=np.array([1.0, 0.0]),
        kl_divergence=kl,
        directions=np.zeros((0, 2)),
        kl_landscape=np.zeros(0),
    )


def test_select_models_drops_models_above_threshold_best_first():
    results = [_result(0.05), _result(0.8), _result(0.01), _result(0.1)]
    assert select_models(results, kl_threshold=0.1) == [2, 0, 3]


def test_select_models_raises_or_falls_back_when_none_pass(caplog):
    results = [_result(0.5), _result(0.3)]
    with pytest.raises(
        NoValidModelError, match=r"no model has KL <= kl_threshold = 0.1 .*0\.5, 0\.3"
    ):
        select_models(results, kl_threshold=0.1)
    with caplog.at_level(logging.WARNING, logger="rave.learn.coordinate"):
        assert select_models(results, kl_threshold=0.1, fallback_to_best=True) == [1]
    assert "using the lowest, model 1" in caplog.text


# ---- errors ------------------------------------------------------------------------------------


def test_errors_name_the_problem():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match=r"features must be 2-D.*shape \(10,\)"):
        fit_coordinate(np.zeros(10), np.zeros(10))
    with pytest.raises(ValueError, match=r"latent must have shape \(10,\).*\(9,\)"):
        fit_coordinate(x, np.zeros(9))
    with pytest.raises(ValueError, match=r"features contains 1 NaN"):
        fit_coordinate(_one_nan(), np.zeros(10))
    with pytest.raises(ValueError, match=r"log_weights contains \+inf in 10 frame"):
        fit_coordinate(x, np.zeros(10), log_weights=np.full(10, np.inf))
    with pytest.raises(ValueError, match=r"bins must be an integer >= 2. You supplied 1"):
        fit_coordinate(x, np.zeros(10), bins=1)
    with pytest.raises(ValueError, match=r"0 <= lower_quantile < upper_quantile <= 1"):
        robust_unit_scale(np.arange(5.0), lower_quantile=0.9, upper_quantile=0.1)
    with pytest.raises(ValueError, match=r"linear weights, not log-weights"):
        weighted_quantile(np.arange(3.0), np.array([1.0, -1.0, 1.0]), 0.5)
    with pytest.raises(ValueError, match=r"q must lie in \[0, 1\]"):
        weighted_quantile(np.arange(3.0), None, 1.5)
    with pytest.raises(ValueError, match=r"kl_threshold must be finite and >= 0"):
        select_models([_result(0.1)], kl_threshold=-1.0)
    with pytest.raises(TypeError, match=r"results\[0\] must be a CoordinateResult"):
        select_models([0.1], kl_threshold=1.0)
    with pytest.raises(ValueError, match=r"c1 and c2 must have the same shape"):
        direction_angle_deg([1.0, 0.0], [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"c must be nonzero"):
        align_sign(np.zeros(3))


def _one_nan() -> np.ndarray:
    a = np.zeros((10, 2))
    a[3, 1] = np.nan
    return a


# ---- against references written here: Hazen quantiles, histograms, closed forms ---------------

#: float64 round-off of two evaluations of the same sums in another order
REFERENCE_TOL = 1e-10


def _hazen_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Weighted Hazen quantile by a full sort: positions (C_i - w_i / 2) / W."""
    keep = weights > 0
    order = np.argsort(values[keep], kind="stable")
    v, w = values[keep][order], weights[keep][order]
    cumulative = np.cumsum(w)
    return float(np.interp(q, (cumulative - 0.5 * w) / cumulative[-1], v))


def _reference_unit_scale(values, weights, lower, upper):
    lo, hi = _hazen_quantile(values, weights, lower), _hazen_quantile(values, weights, upper)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


@pytest.mark.parametrize("n", [300, 4096, 4097, 30_000])
@pytest.mark.parametrize(("lower", "upper"), [(0.005, 0.995), (0.0, 1.0), (0.3, 0.42)])
def test_robust_unit_scale_equals_hazen_quantiles_by_a_full_sort(n, lower, upper):
    # clustered values leave most of the coarse locating bins empty; a tenth of the frames
    # carry weight 0, the rest weights spread over three decades
    rng = np.random.default_rng(n)
    values = np.concatenate([rng.normal(0.0, 0.01, n - n // 3 - 5), rng.normal(7.0, 1.0, n // 3),
                             [40.0, -30.0, 55.0, -41.0, 100.0]])
    weights = 10.0 ** rng.uniform(-1.5, 1.5, n)
    weights[rng.random(n) < 0.1] = 0.0
    scaled = robust_unit_scale(values, weights, lower, upper)
    np.testing.assert_allclose(scaled, _reference_unit_scale(values, weights, lower, upper),
                               atol=REFERENCE_TOL)
    assert weighted_quantile(values, weights, lower) == pytest.approx(
        _hazen_quantile(values, weights, lower), abs=REFERENCE_TOL)


def test_robust_unit_scale_of_dense_values_with_a_quantile_in_the_third_locating_bin():
    # every one of the 1024 locating bins is occupied; the 0.25 % quantile falls in bin 2, so
    # the sorted bracket starts at bin 1 and the weight of bin 0 comes before it
    rng = np.random.default_rng(33)
    values = rng.uniform(0.0, 1.0, 20_000)
    weights = rng.uniform(0.5, 1.5, 20_000)
    np.testing.assert_allclose(robust_unit_scale(values, weights, 0.0025, 0.9975),
                               _reference_unit_scale(values, weights, 0.0025, 0.9975),
                               atol=REFERENCE_TOL)


def test_unit_scale_of_a_single_central_value_falls_back_to_the_weighted_range():
    # 98 % of the weight sits on 2.0: both quantiles are 2.0, so the full range of the frames
    # that carry weight sets the scale (the frame at 100 carries none)
    values = np.array([2.0] * 98 + [1.0, 3.0, 100.0])
    weights = np.array([1.0] * 100 + [0.0])
    np.testing.assert_allclose(robust_unit_scale(values, weights),
                               np.clip((values - 1.0) / 2.0, 0, 1), atol=ROUND_OFF)
    np.testing.assert_array_equal(robust_unit_scale(np.full(5, 3.0)), np.full(5, 0.5))


def test_kl_of_histograms_equals_the_sum_written_out():
    rng = np.random.default_rng(31)
    p_values = rng.normal(0.0, 1.0, 5000)
    q_values = rng.gamma(2.0, 1.0, 5000)
    weights = rng.uniform(0.0, 2.0, 5000)
    bins, eps = 7, 1e-3

    def histogram(values):
        scaled = _reference_unit_scale(values, weights, 0.005, 0.995)
        h = np.array([weights[(np.minimum(scaled * bins, bins - 1e-9) // 1) == b].sum()
                      for b in range(bins)])
        return (h / h.sum() + eps) / (1.0 + bins * eps)

    p, q = histogram(p_values), histogram(q_values)
    expected = float(np.sum(p * np.log(p / q)))
    assert kl_divergence_histograms(p_values, q_values, weights, bins=bins,
                                    pseudocount=eps) == pytest.approx(expected, abs=1e-9)
    # a column of values is the same as the flat vector; without weights every frame counts 1
    assert kl_divergence_histograms(p_values[:, None], q_values, weights, bins=bins,
                                    pseudocount=eps) == pytest.approx(expected, abs=1e-9)
    unweighted = kl_divergence_histograms(p_values, q_values, None, bins=bins, pseudocount=eps)
    assert unweighted == pytest.approx(
        kl_divergence_histograms(p_values, q_values, np.ones(5000), bins=bins, pseudocount=eps))
    assert unweighted != pytest.approx(expected, abs=1e-6)


def test_least_squares_direction_is_the_weighted_fit_oriented_with_z():
    from rave.learn.coordinate import least_squares_direction

    rng = np.random.default_rng(32)
    x = rng.normal(0.0, 1.0, (400, 3))
    # z follows (2, -1, 0.5) on the frames that carry weight, another direction elsewhere
    z = np.where(np.arange(400) < 200, x @ [2.0, -1.0, 0.5] + 3.0, x @ [0.0, 5.0, 1.0] - 1.0)
    w = np.where(np.arange(400) < 200, rng.uniform(0.5, 2.0, 400), 0.0)
    expected = np.array([2.0, -1.0, 0.5]) / np.linalg.norm([2.0, -1.0, 0.5])
    np.testing.assert_allclose(least_squares_direction(x, z, w), expected, atol=1e-10)
    np.testing.assert_allclose(least_squares_direction(x, -z, w), -expected, atol=1e-10)
    small = 1e-3 * x[:, :2] @ [0.6, 0.8]  # a coefficient vector of norm well below 1
    np.testing.assert_allclose(least_squares_direction(x[:, :2], small, np.ones(400)),
                               [0.6, 0.8], atol=1e-10)
    assert least_squares_direction(x, np.zeros(400), np.ones(400)) is None
    # a constant latent does not depend on x either (its fit is round-off)
    assert least_squares_direction(x, np.full(400, 0.37), np.ones(400)) is None
    assert least_squares_direction(x, np.full(400, -1234.5), w) is None


def test_grid_spacing_is_the_side_of_each_points_share_of_the_sphere():
    from rave.learn.coordinate import _grid_spacing_rad

    assert _grid_spacing_rad(1, 2) == 0.0
    assert _grid_spacing_rad(2, 360) == pytest.approx(np.pi / 180, rel=1e-14)
    assert _grid_spacing_rad(3, 2000) == pytest.approx(np.sqrt(4 * np.pi / 2000), rel=1e-12)
    assert _grid_spacing_rad(4, 1200) == pytest.approx((2 * np.pi**2 / 1200) ** (1 / 3),
                                                       rel=1e-12)
    area_5 = 8 * np.pi**2 / 3  # surface of the unit 4-sphere in R^5
    assert _grid_spacing_rad(5, 1500) == pytest.approx((area_5 / 1500) ** 0.25, rel=1e-12)


def _angle_deg(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    cos = abs(a @ b) / np.linalg.norm(a) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(min(1.0, cos))))


def test_choose_coordinate_prefers_the_previous_rc_among_tied_models():
    from rave.learn.coordinate import choose_coordinate

    coefficients = [_unit_2d(10), _unit_2d(50), _unit_2d(-30), _unit_2d(80)]
    kls = [0.10, 0.12, 0.50, 0.11]
    # usable: 0, 3, 1 (KL <= 0.3); tied within 0.015 of 0.10: 0, 3; 3 is closer to 75 degrees
    chosen, spread = choose_coordinate(coefficients, kls, 0.3, kl_tie=0.015,
                                       previous=_unit_2d(75))
    assert chosen == 3
    assert spread == pytest.approx(max(_angle_deg(coefficients[i], coefficients[3])
                                       for i in (0, 1)), abs=1e-9)
    # within 0.02 model 1 ties too and is the closest to 55 degrees
    assert choose_coordinate(coefficients, kls, 0.3, kl_tie=0.02, previous=_unit_2d(55))[0] == 1
    # no tie (default 0), or no previous RC: the lowest KL
    assert choose_coordinate(coefficients, kls, 0.3, previous=_unit_2d(75))[0] == 0
    chosen, spread = choose_coordinate(coefficients, kls, 0.3, kl_tie=0.015)
    assert chosen == 0
    assert spread == pytest.approx(max(_angle_deg(coefficients[i], coefficients[0])
                                       for i in (1, 3)), abs=1e-9)
    # a KL exactly kl_tie above the lowest is a tie (binary-exact numbers)
    exact = choose_coordinate(coefficients[:2], [0.25, 0.5], 1.0, kl_tie=0.25,
                              previous=_unit_2d(50))
    assert exact[0] == 1
    # nothing usable: the lowest KL alone, no spread
    assert choose_coordinate(coefficients, kls, 0.05, kl_tie=1.0,
                             previous=_unit_2d(80)) == (0, None)
    assert choose_coordinate(coefficients[:1], kls[:1], 0.3) == (0, None)
    with pytest.raises(ValueError, match="one entry per model. You supplied 4 and 3"):
        choose_coordinate(coefficients, kls[:3], 0.3)
    for tie in (-0.1, np.nan, np.inf):
        with pytest.raises(ValueError, match="kl_tie must be finite and >= 0"):
            choose_coordinate(coefficients, kls, 0.3, kl_tie=tie)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: weighted_quantile([1.0, np.nan], None, 0.5), ValueError, "values contains 1 NaN"),
    (lambda: weighted_quantile([1.0, 2.0], None, 1.5), ValueError, r"q must lie in \[0, 1\]"),
    (lambda: weighted_quantile([1.0, 2.0], None, -0.1), ValueError, r"q must lie in \[0, 1\]"),
    (lambda: weighted_quantile([1.0, 2.0], None, np.nan), ValueError, r"q must lie in \[0, 1\]"),
    (lambda: weighted_quantile([1.0, 2.0], [1.0, 2.0, 3.0], 0.5), ValueError, "weights"),
    (lambda: weighted_quantile(np.zeros((2, 2)), None, 0.5), ValueError,
     r"values must be 1-D, shape \(n_frames,\)"),
    (lambda: weighted_quantile([], None, 0.5), ValueError, "values must not be empty"),
    (lambda: robust_unit_scale([np.inf, 1.0]), ValueError, "values contains 1 NaN or inf"),
    (lambda: robust_unit_scale([1.0, 2.0], [1.0, -1.0]), ValueError, "weights"),
    (lambda: robust_unit_scale([1.0, 2.0], None, 0.5, 0.5), ValueError,
     "0 <= lower_quantile < upper_quantile <= 1"),
    (lambda: robust_unit_scale([1.0, 2.0], None, 0.5, 1.5), ValueError,
     "0 <= lower_quantile < upper_quantile <= 1"),
    (lambda: kl_divergence_histograms([np.nan, 1.0], [1.0, 2.0]), ValueError,
     "p_values contains 1 NaN"),
    (lambda: kl_divergence_histograms([1.0, 2.0], [1.0, np.nan]), ValueError,
     "q_values contains 1 NaN"),
    (lambda: kl_divergence_histograms([1.0, 2.0], [1.0, 2.0], [1.0]), ValueError, "weights"),
    (lambda: kl_divergence_histograms([1.0, 2.0], [1.0, 2.0], bins=2.5), ValueError,
     "bins must be an integer >= 2"),
    (lambda: kl_divergence_histograms([1.0, 2.0], [1.0, 2.0], bins=True), ValueError,
     "bins must be an integer >= 2"),
    (lambda: kl_divergence_histograms([1.0, 2.0], [1.0, 2.0], bins=1), ValueError,
     "bins must be an integer >= 2"),
    (lambda: kl_divergence_histograms([1.0, 2.0], [1.0, 2.0], pseudocount=np.inf), ValueError,
     "pseudocount must be finite and > 0"),
    (lambda: direction_angle_deg([np.nan, 1.0], [1.0, 0.0]), ValueError, "c1 must be finite"),
    (lambda: direction_angle_deg([1.0, 0.0], [0.0, 0.0]), ValueError, "c2 must be nonzero"),
    (lambda: direction_angle_deg([1.0, 0.0], np.ones((1, 2))), ValueError,
     r"c2 must be a 1-D vector of shape \(d,\)"),
    (lambda: direction_angle_deg([], [1.0]), ValueError, r"c1 must be a 1-D vector"),
    (lambda: align_sign(np.ones((2, 1))), ValueError, r"c must be a 1-D vector"),
])
def test_errors_name_the_argument_and_the_rule(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_edge_values_of_the_arguments_are_accepted():
    values = np.array([0.0, 1.0, 2.0, 3.0])
    assert kl_divergence_histograms(values, values, bins=2) == pytest.approx(0.0, abs=ROUND_OFF)
    np.testing.assert_allclose(robust_unit_scale(values, None, 0.0, 1.0), values / 3.0)
    assert weighted_quantile(np.array([[1.0], [3.0]]), None, 0.5) == pytest.approx(2.0)
    assert weighted_quantile(np.array([5.0]), None, 0.5) == 5.0
    np.testing.assert_allclose(weighted_quantile(values, None, [0.125, 0.875]), [0.0, 3.0])
    assert direction_angle_deg([3.0], [-2.0]) == pytest.approx(0.0)
    np.testing.assert_array_equal(align_sign([-2.0]), [2.0])


def test_log_weights_count_up_to_a_constant_however_large():
    # log-weights are defined up to an additive constant: +700 (e^700 near the float64 limit)
    # and -700 give the same RC and KL as the weights themselves
    rng = np.random.default_rng(34)
    features, u, _ = _double_well_2d(3000, 20.0, rng)
    latent = u + rng.normal(0.0, LATENT_NOISE, 3000)
    log_weights = rng.normal(0.0, 1.0, 3000)
    reference = fit_coordinate(features, latent, log_weights=log_weights, n_directions=90)
    for offset in (700.0, -700.0):
        shifted = fit_coordinate(features, latent, log_weights=log_weights + offset,
                                 n_directions=90)
        np.testing.assert_allclose(shifted.coefficients, reference.coefficients, atol=1e-9)
        assert shifted.kl_divergence == pytest.approx(reference.kl_divergence, abs=1e-12)
    with pytest.raises(ValueError, match=r"log_weights must have shape \(3000,\), one per frame "
                                         r"of features"):
        fit_coordinate(features, latent, log_weights=log_weights[:10])
