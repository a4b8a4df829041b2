"""Tests of rave.stats (weights, weighted F, MBAR, block bootstrap) against exact answers: a 1-D
double well sampled exactly, closed-form histograms, and pymbar as the MBAR oracle."""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import math

import numpy as np
import pytest
from scipy.special import logsumexp

from rave.stats import (
    BLOCKS_PER_INEFFICIENCY,
    ProfileEstimate,
    ReweightResult,
    as_log_weights,
    as_weights,
    bootstrap_free_energy_profile,
    effective_sample_size,
    free_energy_histogram,
    free_energy_profile,
    mbar_reweight,
    normalise_log_weights,
    normalised_weights,
    single_round_log_weights,
    solve_mbar,
    statistical_inefficiency,
    walker_segments,
)
from rave.stats import mbar as mbar_module

# ---- the exactly solvable test system --------------------------------------------------------
# A 1-D double well U/kT = 5 (x^2 - 1)^2 (barrier 5 kT) discretised on N_CELLS cells; round k
# draws frames exactly (numpy, no MD) from p_k(x) ~ exp(-U/kT - V_k/kT) on those cells.
N_CELLS = 2000
CELLS_PER_BIN = 40  # bins are whole numbers of cells, so the exact F per bin is a plain sum
X = np.linspace(-2.5, 2.5, N_CELLS)
U_RED = 5.0 * (X**2 - 1.0) ** 2
REDUCED_BIASES = np.array(
    [
        np.zeros(N_CELLS),  # round 0: unbiased
        -4.0 * (X**2 - 1.0) ** 2,  # round 1: flattens the barrier to 1 kT
        3.0 * X,  # round 2: a tilt that pushes to the left well
    ]
)
FRAMES_PER_ROUND = (5000, 5000, 5000)
EDGES = np.concatenate([X[::CELLS_PER_BIN] - 0.5 * (X[1] - X[0]), [X[-1] + 0.5 * (X[1] - X[0])]])
F_MAX_COMPARED = 6.0  # kT: compare bins whose exact F is below this (all rounds visit them)

N_SIGMA = 4.0  # statistical checks: allowed deviation in units of the sampling standard deviation
N_REPLICATES = 24  # independent data sets used to measure that standard deviation
ROUND_OFF = 1e-9  # dimensionless (kT or log-weight): agreement of two exact computations
SOLVER_AGREEMENT = 1e-6  # kT: two converged MBAR solutions agree to this
PYMBAR_AGREEMENT = 1e-8  # kT: f_k of rave's MBAR solver vs pymbar's (both converged to 1e-10)


def _exact_bin_free_energy() -> np.ndarray:
    log_p = -U_RED - logsumexp(-U_RED)
    f = -logsumexp(log_p.reshape(-1, CELLS_PER_BIN), axis=1)
    return f - f.min()


def _exact_round_free_energies() -> np.ndarray:
    """f_k = -ln(Z_k / Z_0) by quadrature (a sum over the cells)."""
    log_z = logsumexp(-U_RED[None, :] - REDUCED_BIASES, axis=1)
    return -(log_z - log_z[0])


def _sample(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact draws from every round; returns (cell index of each frame, reduced_bias (K, n))."""
    rng = np.random.default_rng(seed)
    cells = []
    for v, n in zip(REDUCED_BIASES, FRAMES_PER_ROUND, strict=True):
        log_p = -U_RED - v
        p = np.exp(log_p - logsumexp(log_p))
        cells.append(rng.choice(N_CELLS, size=n, p=p))
    idx = np.concatenate(cells)
    return idx, REDUCED_BIASES[:, idx]


def _naive_log_weights(reduced_bias: np.ndarray) -> np.ndarray:
    """exp(+V_k/kT) of each frame's own round, concatenated without per-round offsets."""
    own = np.repeat(np.arange(len(FRAMES_PER_ROUND)), FRAMES_PER_ROUND)
    return reduced_bias[own, np.arange(reduced_bias.shape[1])]


def _aligned_error(log_weights: np.ndarray, idx: np.ndarray, compared: np.ndarray) -> np.ndarray:
    """Estimated minus exact F on the compared bins, with the free additive constant removed."""
    _, f = free_energy_profile(X[idx], log_weights, EDGES)
    err = f[compared] - _exact_bin_free_energy()[compared]
    return err - err.mean()


@pytest.fixture(scope="module")
def replicates() -> dict[str, np.ndarray]:
    compared = _exact_bin_free_energy() < F_MAX_COMPARED
    errors, f_ks, naive = [], [], []
    for seed in range(N_REPLICATES):
        idx, u = _sample(seed)
        res = mbar_reweight(u, FRAMES_PER_ROUND)
        errors.append(_aligned_error(res.log_weights, idx, compared))
        f_ks.append(res.free_energies)
        naive.append(_aligned_error(_naive_log_weights(u), idx, compared))
    return {
        "compared": compared,
        "errors": np.array(errors),
        "f_k": np.array(f_ks),
        "naive_errors": np.array(naive),
    }


# ---- exact recovery ----------------------------------------------------------------------------


def test_mbar_recovers_the_unbiased_free_energy_profile(replicates):
    errors = replicates["errors"]
    sigma = errors.std(axis=0, ddof=1)
    centers = 0.5 * (EDGES[1:] + EDGES[:-1])[replicates["compared"]]
    # one data set: every bin within N_SIGMA of the exact profile
    bad = np.abs(errors[0]) > N_SIGMA * sigma
    assert not bad.any(), (
        f"bins at x={centers[bad]}: F error {errors[0][bad]} kT vs exact 0, sigma {sigma[bad]} kT"
    )
    # all data sets together: no systematic error beyond the standard error of the mean
    mean = errors.mean(axis=0)
    sem = sigma / np.sqrt(len(errors))
    bad = np.abs(mean) > N_SIGMA * sem
    assert not bad.any(), (
        f"bins at x={centers[bad]}: mean F error {mean[bad]} kT vs exact 0, sem {sem[bad]} kT"
    )


def test_mbar_free_energies_match_quadrature(replicates):
    f_k = replicates["f_k"]
    exact = _exact_round_free_energies()
    sigma = f_k.std(axis=0, ddof=1)
    assert abs(f_k[0, 0]) < ROUND_OFF, f"f_0 = {f_k[0, 0]} for the unbiased round, expected 0"
    dev = np.abs(f_k[0] - exact)
    assert (dev[1:] <= N_SIGMA * sigma[1:]).all(), f"f_k = {f_k[0]}, exact {exact}, sigma {sigma}"


def test_mbar_beats_naive_concatenation_of_per_round_weights(replicates):
    rms_mbar = np.sqrt(np.mean(replicates["errors"] ** 2))
    rms_naive = np.sqrt(np.mean(replicates["naive_errors"] ** 2))
    print(
        f"RMS F error over {N_REPLICATES} data sets: "
        f"MBAR {rms_mbar:.3f} kT, naive {rms_naive:.3f} kT"
    )
    assert rms_mbar < rms_naive, f"MBAR {rms_mbar} kT is not better than naive {rms_naive} kT"


def test_mbar_result_fields():
    _, u = _sample(seed=100)
    res = mbar_reweight(u, FRAMES_PER_ROUND)
    assert isinstance(res, ReweightResult)
    assert res.method == "mbar"
    assert res.log_weights.shape == (u.shape[1],)
    assert res.free_energies.shape == (3,)
    assert abs(logsumexp(res.log_weights)) < ROUND_OFF
    assert 1.0 <= res.effective_sample_size <= u.shape[1]
    assert res.effective_sample_size == pytest.approx(effective_sample_size(res.log_weights))


# ---- special cases -----------------------------------------------------------------------------


def test_single_round_equals_single_round_weights():
    rng = np.random.default_rng(1)
    u = rng.normal(0.0, 3.0, size=500)
    res = mbar_reweight(u[None, :], [500])
    expected = single_round_log_weights(u)
    assert res.method == "single-round"
    np.testing.assert_allclose(res.log_weights, expected, atol=ROUND_OFF)
    np.testing.assert_allclose(expected, u - logsumexp(u), atol=ROUND_OFF)
    # f_0 = -ln <exp(-u)>_unbiased
    assert res.free_energies[0] == pytest.approx(-logsumexp(expected - u), abs=ROUND_OFF)


def test_two_rounds_with_the_same_bias_reduce_to_single_round_weights():
    rng = np.random.default_rng(2)
    u = rng.normal(0.0, 2.0, size=600)
    res = mbar_reweight(np.vstack([u, u]), [250, 350])
    np.testing.assert_allclose(res.log_weights, single_round_log_weights(u), atol=SOLVER_AGREEMENT)
    np.testing.assert_allclose(res.free_energies[0], res.free_energies[1], atol=SOLVER_AGREEMENT)


def test_constant_shift_of_a_round_bias_of_500_kT_shifts_only_its_free_energy():
    idx, u = _sample(seed=3)
    ref = mbar_reweight(u, FRAMES_PER_ROUND)
    shift = np.array([0.0, 500.0, -500.0])
    res = mbar_reweight(u + shift[:, None], FRAMES_PER_ROUND)
    assert np.isfinite(res.log_weights).all() and np.isfinite(res.free_energies).all()
    np.testing.assert_allclose(res.log_weights, ref.log_weights, atol=SOLVER_AGREEMENT)
    np.testing.assert_allclose(res.free_energies, ref.free_energies + shift, atol=SOLVER_AGREEMENT)


def test_biases_of_hundreds_of_kT_do_not_overflow():
    rng = np.random.default_rng(4)
    u = rng.uniform(-500.0, 500.0, size=(2, 300))
    res = mbar_reweight(u, [150, 150])
    assert np.isfinite(res.log_weights).all()
    assert np.isfinite(res.free_energies).all()
    assert abs(logsumexp(res.log_weights)) < ROUND_OFF
    lw = single_round_log_weights(u[0])
    assert np.isfinite(lw).all() and abs(logsumexp(lw)) < ROUND_OFF
    assert 1.0 <= effective_sample_size(lw) < 2.0  # one frame dominates


def test_empty_round_gets_a_free_energy_and_no_frames():
    idx, u = _sample(seed=5)
    extra = 2.0 * X[idx]  # a fourth bias that was never sampled
    res = mbar_reweight(np.vstack([u, extra]), (*FRAMES_PER_ROUND, 0))
    ref = mbar_reweight(u, FRAMES_PER_ROUND)
    np.testing.assert_allclose(res.log_weights, ref.log_weights, atol=SOLVER_AGREEMENT)
    assert res.free_energies[3] == pytest.approx(
        -logsumexp(ref.log_weights - extra), abs=SOLVER_AGREEMENT
    )


def _pymbar_f(u_kn: np.ndarray, n_k) -> np.ndarray:
    """pymbar's f_k (the oracle), relative to state 0, its import banner silenced."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import pymbar
    logging.getLogger("pymbar").setLevel(logging.ERROR)
    f = pymbar.MBAR(u_kn, np.asarray(n_k), relative_tolerance=1e-12, initialize="zeros").f_k
    return np.asarray(f) - f[0]


def _opes_like_states(n_states: int, frames_per_state: int, seed: int) -> tuple[np.ndarray, list]:
    """States V_k = -lam_k U (a bias that fills the wells version by version, lam in [0, 0.9]),
    as the blocks of an adaptive OPES bias give; frames drawn exactly on the cells."""
    rng = np.random.default_rng(seed)
    lam = np.linspace(0.0, 0.9, n_states)
    cells = []
    for k in range(n_states):
        log_p = -(1.0 - lam[k]) * U_RED
        cells.append(rng.choice(N_CELLS, frames_per_state, p=np.exp(log_p - logsumexp(log_p))))
    idx = np.concatenate(cells)
    return -lam[:, None] * U_RED[idx][None, :], [frames_per_state] * n_states


def _umbrella_states(n_states: int, frames_per_state: int, seed: int) -> tuple[np.ndarray, list]:
    """Harmonic umbrellas 50 (x - x_k)^2 / 2 (kT) across the double well: neighbours overlap
    only partly, the hard case for a solver."""
    rng = np.random.default_rng(seed)
    centres = np.linspace(-1.5, 1.5, n_states)
    bias = 25.0 * (X[None, :] - centres[:, None]) ** 2
    cells = []
    for k in range(n_states):
        log_p = -U_RED - bias[k]
        cells.append(rng.choice(N_CELLS, frames_per_state, p=np.exp(log_p - logsumexp(log_p))))
    return bias[:, np.concatenate(cells)], [frames_per_state] * n_states


@pytest.mark.parametrize(
    "case",
    ["double_well_3", "opes_like_200_states", "umbrellas_12", "shifted_500_kT", "empty_state"],
)
def test_mbar_free_energies_equal_pymbar(case):
    if case == "double_well_3":
        u, n_k = _sample(seed=16)[1], list(FRAMES_PER_ROUND)
    elif case == "opes_like_200_states":  # an adaptive round contributes up to 32 states
        u, n_k = _opes_like_states(200, 10, seed=17)
    elif case == "umbrellas_12":
        u, n_k = _umbrella_states(12, 400, seed=18)
    elif case == "shifted_500_kT":
        # pymbar itself stops 1e-6 kT short of self-consistency on the shifted data (measured);
        # exact invariance gives its answer there from the unshifted data: f_k + c_k
        u, n_k = _sample(seed=19)[1], list(FRAMES_PER_ROUND)
        shift = np.array([0.0, 500.0, -500.0])
        res = mbar_reweight(u + shift[:, None], n_k)
        got = res.free_energies - res.free_energies[0]
        np.testing.assert_allclose(got, _pymbar_f(u, n_k) + shift, atol=PYMBAR_AGREEMENT, rtol=0)
        return
    else:  # a state without frames in the middle
        idx, u = _sample(seed=20)
        u = np.vstack([u[:2], 2.0 * X[idx], u[2:]])
        n_k = [FRAMES_PER_ROUND[0], FRAMES_PER_ROUND[1], 0, FRAMES_PER_ROUND[2]]
    res = mbar_reweight(u, n_k)
    expected = _pymbar_f(u, n_k)
    got = res.free_energies - res.free_energies[0]
    print(f"{case}: max |f_k - f_k(pymbar)| = {np.max(np.abs(got - expected)):.2e} kT")
    np.testing.assert_allclose(got, expected, atol=PYMBAR_AGREEMENT, rtol=0)


def test_mbar_benchmark_script_runs_and_agrees_with_pymbar(capsys, tmp_path):
    module = importlib.import_module("workflows.benchmarks.mbar_solver")
    rows = module.main(["4x800", "--out", str(tmp_path)])
    assert rows[0]["max_df_kT"] < PYMBAR_AGREEMENT
    assert "speed-up" in capsys.readouterr().out


def test_solver_reports_its_self_consistency_error():
    u, n_k = _umbrella_states(6, 300, seed=21)
    f, error = solve_mbar(u, np.array(n_k))
    assert error < 1e-9
    # one Newton iteration from far away is not converged, and says so
    _, error_early = solve_mbar(u, np.array(n_k), initial_f=np.zeros(6), max_iterations=0)
    assert error_early > 1e-3


def test_unconverged_mbar_is_logged(monkeypatch, caplog):
    _, u = _sample(seed=7)
    monkeypatch.setattr(mbar_module, "solve_mbar", lambda u_kn, n_k: (np.array([0, 1.0, 1.0]), 0.5))
    with caplog.at_level(logging.WARNING, logger="rave.stats.mbar"):
        mbar_reweight(u, FRAMES_PER_ROUND)
    assert "self-consistency error of 0.5 kT" in caplog.text


def test_mbar_leaves_numpy_global_random_state_alone():
    _, u = _sample(seed=8)
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    mbar_reweight(u, FRAMES_PER_ROUND)
    assert np.random.random() == expected


# ---- effective sample size ---------------------------------------------------------------------


def test_effective_sample_size_is_n_for_uniform_weights():
    assert effective_sample_size(np.full(1234, -7.0)) == pytest.approx(1234.0, rel=ROUND_OFF)


def test_effective_sample_size_is_one_for_a_dominant_weight():
    lw = np.full(1000, -1000.0)
    lw[17] = 0.0
    assert effective_sample_size(lw) == pytest.approx(1.0, rel=ROUND_OFF)


def test_effective_sample_size_ignores_zero_weights():
    assert effective_sample_size(np.array([0.0, 0.0, -np.inf])) == pytest.approx(2.0)


# ---- free-energy profiles ----------------------------------------------------------------------


def test_profile_is_inf_in_empty_bins_and_zero_at_minimum():
    values = np.array([0.1, 0.2, 0.25, 2.5])
    centers, f = free_energy_profile(values, None, np.array([0.0, 1.0, 2.0, 3.0]))
    np.testing.assert_allclose(centers, [0.5, 1.5, 2.5])
    assert f[0] == 0.0 and np.isposinf(f[1])
    assert f[2] == pytest.approx(np.log(3.0), abs=ROUND_OFF)


def test_profile_in_kjmol_is_kT_times_profile_in_kT():
    rng = np.random.default_rng(9)
    values = rng.normal(size=2000)
    lw = rng.normal(size=2000)
    edges = np.linspace(-2, 2, 11)
    _, f = free_energy_profile(values, lw, edges)
    _, f_kj = free_energy_profile(values, lw, edges, kT=2.494)
    np.testing.assert_allclose(f_kj, 2.494 * f, rtol=ROUND_OFF)


def test_profile_density_normalises_by_bin_width():
    values = np.linspace(0.0, 1.0, 4000, endpoint=False) + 1.0 / 8000  # uniform density
    edges = np.array([0.0, 0.5, 0.75, 1.0])
    _, f_density = free_energy_profile(values, None, edges)
    _, f_prob = free_energy_profile(values, None, edges, density=False)
    np.testing.assert_allclose(f_density, 0.0, atol=ROUND_OFF)
    np.testing.assert_allclose(f_prob, [0.0, np.log(2.0), np.log(2.0)], atol=ROUND_OFF)


def _closed_form_frames(log_mass: np.ndarray, edges: np.ndarray, rng) -> tuple:
    """Frames whose weights put exactly exp(log_mass[b]) into bin b: a few frames per bin at
    random places inside it, their log-weights splitting the bin's mass at random, plus frames
    of weight 0 inside and frames of any weight outside the edges (both must not count)."""
    values, log_w = [], []
    for b, mass in enumerate(log_mass):
        parts = rng.dirichlet(np.ones(3))
        values.append(rng.uniform(edges[b], edges[b + 1], 3))
        log_w.append(mass + np.log(parts))
    values += [rng.uniform(edges[0], edges[-1], 5), [edges[0] - 1.0, edges[-1] + 1.0]]
    log_w += [np.full(5, -np.inf), [50.0, 50.0]]
    return np.concatenate(values), np.concatenate(log_w)


def test_weighted_histogram_equals_the_closed_form_with_unequal_bins():
    rng = np.random.default_rng(22)
    edges = np.array([0.0, 0.1, 0.5, 0.6, 1.5, 2.0])
    log_mass = np.array([1000.0, 1002.0, 999.0, 1001.5, 1000.5])  # far beyond exp's range
    values, log_w = _closed_form_frames(log_mass, edges, rng)
    widths = np.diff(edges)
    # F_b = -ln(p_b / width_b) with p_b = m_b / sum m
    expected = -(log_mass - logsumexp(log_mass) - np.log(widths))
    f = free_energy_histogram(values, log_w, edges)
    np.testing.assert_allclose(f, expected, atol=ROUND_OFF, rtol=0)
    f_prob = free_energy_histogram(values, log_w, edges, density=False)
    np.testing.assert_allclose(f_prob, expected - np.log(widths), atol=ROUND_OFF, rtol=0)
    centers, profile = free_energy_profile(values, log_w, edges, kT=2.5)
    np.testing.assert_allclose(centers, 0.5 * (edges[1:] + edges[:-1]))
    np.testing.assert_allclose(profile, 2.5 * (expected - expected.min()), atol=ROUND_OFF)


def test_weighted_histogram_in_two_dimensions_equals_the_closed_form():
    rng = np.random.default_rng(23)
    ex, ey = np.array([0.0, 1.0, 3.0]), np.array([-1.0, 0.0, 0.5, 2.0])
    log_mass = rng.normal(0.0, 3.0, size=(2, 3))
    log_mass[1, 2] = -np.inf  # an empty bin
    values, log_w = [], []
    for i in range(2):
        for j in range(3):
            if np.isfinite(log_mass[i, j]):
                values.append([rng.uniform(ex[i], ex[i + 1]), rng.uniform(ey[j], ey[j + 1])])
                log_w.append(log_mass[i, j])
    area = np.outer(np.diff(ex), np.diff(ey))
    with np.errstate(divide="ignore"):
        expected = -(log_mass - logsumexp(log_mass) - np.log(area))
    f = free_energy_histogram(np.array(values), np.array(log_w), [ex, ey])
    assert np.isposinf(f[1, 2])
    finite = np.isfinite(expected)
    np.testing.assert_allclose(f[finite], expected[finite], atol=ROUND_OFF, rtol=0)


def test_log_weights_are_normalised_without_overflow():
    log_w = np.array([1000.0, 1000.0 + math.log(3.0), -np.inf, -1000.0])
    w = normalised_weights(4, log_weights=log_w)
    assert np.all(np.isfinite(w))
    np.testing.assert_allclose(w[:3], [0.25, 0.75, 0.0], rtol=1e-12)
    assert 0.0 < w[3] < 1e-300 or w[3] == 0.0
    np.testing.assert_allclose(normalised_weights(2, weights=np.array([1.0, 3.0])), [0.25, 0.75])
    np.testing.assert_allclose(normalised_weights(4), 0.25)
    lw = normalise_log_weights(log_w)
    assert logsumexp(lw) == pytest.approx(0.0, abs=ROUND_OFF)
    np.testing.assert_allclose(np.exp(lw[:3]), [0.25, 0.75, 0.0], rtol=1e-12)


def test_weight_validation_names_the_problem():
    assert as_log_weights([0.0, -np.inf], 2).dtype == float
    with pytest.raises(ValueError, match=r"log_weights must be 1-D, shape \(n_frames,\)"):
        as_log_weights(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"w must have shape \(3,\), one per frame of chi"):
        as_log_weights(np.zeros(2), 3, name="w", like="chi")
    with pytest.raises(ValueError, match=r"log_weights must not be empty"):
        as_log_weights([])
    with pytest.raises(ValueError, match=r"log_weights contains \+inf in 1 frame"):
        as_log_weights([0.0, np.inf])
    with pytest.raises(TypeError, match=r"log_weights must be a real array"):
        as_log_weights(["a", "b"])
    with pytest.raises(ValueError, match=r"linear weights, not log-weights.*smallest -1"):
        as_weights([1.0, -1.0])
    with pytest.raises(ValueError, match=r"weights contains inf in 1 frame; pass log_weights"):
        as_weights([1.0, np.inf])
    with pytest.raises(ValueError, match=r"all weights are zero"):
        as_weights([0.0, 0.0])
    with pytest.raises(ValueError, match=r"give weights or log_weights, not both"):
        normalised_weights(2, weights=[1.0, 1.0], log_weights=[0.0, 0.0])
    with pytest.raises(ValueError, match=r"edges must hold one array per dimension of values"):
        free_energy_histogram(np.zeros((3, 2)), None, [np.array([0.0, 1.0])])


# ---- errors ------------------------------------------------------------------------------------


def test_errors_name_the_problem():
    u = np.zeros((2, 10))
    with pytest.raises(ValueError, match=r"reduced_bias must be 2-D.*shape \(10,\)"):
        mbar_reweight(np.zeros(10), [10])
    with pytest.raises(ValueError, match=r"frames_per_round must sum to .* \(10\).*sums to 9"):
        mbar_reweight(u, [4, 5])
    with pytest.raises(ValueError, match=r"one entry per round \(2"):
        mbar_reweight(u, [10])
    with pytest.raises(ValueError, match=r"frames_per_round must be >= 0"):
        mbar_reweight(u, [11, -1])
    with pytest.raises(TypeError, match=r"frames_per_round must hold integers"):
        mbar_reweight(u, [4.5, 5.5])
    bad = u.copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or inf value\(s\) .*round\(s\) \[1\]"):
        mbar_reweight(bad, [5, 5])
    with pytest.raises(ValueError, match=r"log_weights contains NaN in 1 frame;"):
        effective_sample_size(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match=r"all log_weights are -inf"):
        effective_sample_size(np.array([-np.inf, -np.inf]))
    with pytest.raises(ValueError, match=r"counts must hold one integer >= 1 per frame \(10\)"):
        solve_mbar(u, np.array([5, 5]), counts=np.zeros(10))
    with pytest.raises(ValueError, match=r"frames_per_state must sum to .* \(10\)"):
        solve_mbar(u, np.array([5, 4]))
    with pytest.raises(ValueError, match=r"frames_per_state must be 2 integers >= 0"):
        solve_mbar(u, np.array([5.0, 5.0]))
    with pytest.raises(ValueError, match=r"reduced_bias_of_own_round must be 1-D"):
        single_round_log_weights(u)
    with pytest.raises(ValueError, match=r"edges must be finite and strictly increasing"):
        free_energy_profile(np.zeros(3), None, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"log_weights must have shape \(3,\), one per frame"):
        free_energy_profile(np.zeros(3), np.zeros(4), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"no frame with nonzero weight falls inside the edges"):
        free_energy_profile(np.full(3, 5.0), None, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"kT must be finite and > 0"):
        free_energy_profile(np.zeros(3), None, np.array([-1.0, 1.0]), kT=-1.0)


# ---- MBAR block bootstrap: a check on correlated samples of a known distribution ----
# Each round is a Markov chain whose stationary distribution is exactly that round's p_k on the
# cells: with probability JUMP_PROBABILITY the next frame is a fresh exact draw from p_k, else a
# random-walk Metropolis move of up to MAX_STEP_CELLS cells. Both moves leave p_k invariant, the
# chain starts from an exact draw, so every frame is distributed exactly as p_k, and frames are
# correlated (statistical inefficiency g ~ 15-20 frames, measured), so the blocks matter.
CHAIN_FRAMES = (5000, 5000, 5000)
JUMP_PROBABILITY = 0.1
MAX_STEP_CELLS = 40
CELLS_PER_FINE_BIN = 20  # bins 0.05 wide: 58 bins with exact F < F_MAX_COMPARED
FINE_EDGES = np.concatenate(
    [X[::CELLS_PER_FINE_BIN] - 0.5 * (X[1] - X[0]), [X[-1] + 0.5 * (X[1] - X[0])]]
)
N_BOOTSTRAP = 100  # replicates: sigma to ~7 % (1 / sqrt(2 * 99))
N_DATASETS = 4  # independent data sets whose z-scores are pooled (seeds fixed in advance)
#: Fraction of the z-scores |F_est - F_exact| / sigma (pooled over the data sets) that must lie
#: within 2. For an exact Gaussian sigma it is 0.954. The errors of neighbouring bins are
#: strongly correlated (a well's population error moves all its bins together), so the fraction
#: of one data set scatters (0.83-1.00 over 40 data sets of this setup, measured); pooled over
#: 4 data sets it scattered over 0.90-0.97 (10 groups of 4, mean 0.94, spread ~0.025), so 0.85
#: sits > 3.5 spreads below. A sigma 1.5x too small would give ~0.82; the frame-level bootstrap
#: (below) gives ~0.5.
MIN_FRACTION_WITHIN_2_SIGMA = 0.85
#: No z-score may exceed this: P(|z| > 4.5) = 7e-6 for a Gaussian, ~0.2 % over the ~230 pooled
#: z-scores (the largest measured over 40 x 58 z-scores of this setup was 3.65).
MAX_Z = 4.5
#: The check must be able to fail: at these sample sizes the median sigma over the compared bins
#: was 0.16 kT (measured); an absurdly wide error bar would pass the z-score checks trivially.
MAX_MEDIAN_SIGMA_KT = 0.3


def _fine_exact_minus_log_density() -> np.ndarray:
    """Exact -ln(p_b / width_b) per fine bin, p normalised over the edges (all cells)."""
    log_p = -U_RED - logsumexp(-U_RED)
    log_pb = logsumexp(log_p.reshape(-1, CELLS_PER_FINE_BIN), axis=1)
    return -(log_pb - np.log(np.diff(FINE_EDGES)))


def _correlated_sample(seed: int) -> np.ndarray:
    """Cell index of every frame: one correlated chain per round, rounds concatenated."""
    rng = np.random.default_rng(seed)
    cells = []
    for v, n in zip(REDUCED_BIASES, CHAIN_FRAMES, strict=True):
        log_p = -U_RED - v
        log_p = log_p - logsumexp(log_p)
        cdf = np.cumsum(np.exp(log_p))
        fresh = np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n)), N_CELLS - 1)
        jump = rng.random(n) < JUMP_PROBABILITY
        step = rng.integers(1, MAX_STEP_CELLS + 1, n) * rng.choice([-1, 1], n)
        log_u = np.log(rng.random(n))
        chain = np.empty(n, dtype=np.int64)
        i = fresh[0]
        for t in range(n):
            if jump[t]:
                i = fresh[t]
            else:
                j = i + step[t]
                if 0 <= j < N_CELLS and log_u[t] < log_p[j] - log_p[i]:
                    i = j
            chain[t] = i
        cells.append(chain)
    return np.concatenate(cells)


@pytest.fixture(scope="module")
def bootstrap_runs() -> list[tuple[np.ndarray, ProfileEstimate]]:
    runs = []
    for seed in range(N_DATASETS):
        idx = _correlated_sample(seed)
        est = bootstrap_free_energy_profile(
            REDUCED_BIASES[:, idx],
            CHAIN_FRAMES,
            X[idx],
            FINE_EDGES,
            n_bootstrap=N_BOOTSTRAP,
            seed=seed,
        )
        runs.append((idx, est))
    return runs


def test_bootstrap_mbar_recovers_known_distribution_within_stated_uncertainty(bootstrap_runs):
    exact = _fine_exact_minus_log_density()
    compared = exact - exact.min() < F_MAX_COMPARED
    z, sigmas = [], []
    for _, est in bootstrap_runs:
        assert np.isfinite(est.sigma[compared]).all(), "sigma missing in a well-sampled bin"
        z.append((est.free_energy + est.offset - exact)[compared] / est.sigma[compared])
        sigmas.append(est.sigma[compared])
    z = np.abs(np.concatenate(z))
    within = float(np.mean(z <= 2.0))
    median_sigma = float(np.median(np.concatenate(sigmas)))
    print(
        f"{z.size} z-scores: fraction within 2 sigma {within:.3f} (Gaussian 0.954), "
        f"max |z| {z.max():.2f}, median sigma {median_sigma:.3f} kT"
    )
    assert within >= MIN_FRACTION_WITHIN_2_SIGMA, f"only {within:.3f} of z-scores within 2"
    assert z.max() <= MAX_Z, f"|F_est - F_exact| = {z.max():.2f} sigma"
    assert median_sigma < MAX_MEDIAN_SIGMA_KT, f"median sigma {median_sigma:.3f} kT"


def test_bootstrap_round_free_energies_agree_with_quadrature(bootstrap_runs):
    exact = _exact_round_free_energies()
    for _, est in bootstrap_runs:
        z = np.abs(est.free_energies[1:] - exact[1:]) / est.free_energies_sigma[1:]
        assert (z <= MAX_Z).all(), (
            f"f_k = {est.free_energies}, exact {exact}, sigma {est.free_energies_sigma}"
        )
        assert est.free_energies_sigma[0] < ROUND_OFF  # the reference round: f_0 = 0 always


def test_frame_level_bootstrap_understates_the_error_of_correlated_frames(bootstrap_runs):
    # the same check with blocks of one frame (correlation ignored) fails: this is why blocks
    # are needed, and it shows that the check above can fail
    exact = _fine_exact_minus_log_density()
    compared = exact - exact.min() < F_MAX_COMPARED
    z, ratios = [], []
    for seed, (idx, est) in enumerate(bootstrap_runs):
        frames = bootstrap_free_energy_profile(
            REDUCED_BIASES[:, idx],
            CHAIN_FRAMES,
            X[idx],
            FINE_EDGES,
            n_bootstrap=N_BOOTSTRAP // 2,
            block_length=1,
            seed=seed,
        )
        z.append((frames.free_energy + frames.offset - exact)[compared] / frames.sigma[compared])
        ratios.append(frames.sigma[compared] / est.sigma[compared])
    within = float(np.mean(np.abs(np.concatenate(z)) <= 2.0))
    ratio = float(np.median(np.concatenate(ratios)))
    print(
        f"blocks of 1 frame: fraction within 2 sigma {within:.3f}, sigma / blocked sigma "
        f"{ratio:.2f}; automatic blocks {bootstrap_runs[0][1].block_lengths.tolist()} frames"
    )
    assert within < MIN_FRACTION_WITHIN_2_SIGMA, f"fraction within 2 sigma {within:.3f}"
    frame_sigma_ratio_max = 0.75  # blocked sigma is ~2x larger (measured 0.54); noise ~7 %
    assert ratio < frame_sigma_ratio_max, f"sigma ratio {ratio:.2f}"


def test_bootstrap_profile_equals_the_plain_mbar_profile(bootstrap_runs):
    idx, est = bootstrap_runs[0]
    res = mbar_reweight(REDUCED_BIASES[:, idx], CHAIN_FRAMES)
    _, f = free_energy_profile(X[idx], res.log_weights, FINE_EDGES)
    np.testing.assert_allclose(est.free_energy, f, atol=SOLVER_AGREEMENT)
    np.testing.assert_allclose(est.log_weights, res.log_weights, atol=ROUND_OFF)
    assert est.n_bootstrap == N_BOOTSTRAP and est.block_lengths.shape == (3,)


def test_solver_with_multiplicities_equals_pymbar_on_repeated_frames():
    # a bootstrap replicate: distinct frames with multiplicities, warm start from the data's f_k
    _, u = _sample(seed=11)
    n_k = np.array(FRAMES_PER_ROUND)
    ref = mbar_reweight(u, FRAMES_PER_ROUND)
    counts = np.random.default_rng(12).integers(1, 4, u.shape[1])
    starts = np.concatenate([[0], np.cumsum(n_k)])
    n_rep = np.add.reduceat(counts, starts[:-1])
    repeated = _pymbar_f(np.repeat(u, counts, axis=1), n_rep)
    for initial in (ref.free_energies, None):
        f, error = solve_mbar(u, n_rep, counts, initial_f=initial)
        assert error < 1e-9
        np.testing.assert_allclose(f - f[0], repeated, atol=PYMBAR_AGREEMENT, rtol=0)


def test_bootstrap_with_one_walker_label_equals_no_labels():
    idx, u = _sample(seed=13)
    edges = np.linspace(-2.0, 2.0, 21)
    a = bootstrap_free_energy_profile(
        u, FRAMES_PER_ROUND, X[idx], edges, n_bootstrap=5, block_length=50, seed=3
    )
    b = bootstrap_free_energy_profile(
        u,
        FRAMES_PER_ROUND,
        X[idx],
        edges,
        n_bootstrap=5,
        block_length=50,
        seed=3,
        walker=np.zeros(idx.size, dtype=int),
    )
    np.testing.assert_array_equal(a.sigma, b.sigma)


def test_bootstrap_errors_name_the_problem():
    u = np.zeros((2, 10))
    x = np.linspace(0.0, 1.0, 10)
    edges = np.linspace(0.0, 1.0, 4)
    with pytest.raises(ValueError, match=r"values must have one entry per frame \(10"):
        bootstrap_free_energy_profile(u, [5, 5], x[:9], edges)
    with pytest.raises(ValueError, match=r"n_bootstrap must be an integer >= 2. You supplied 1"):
        bootstrap_free_energy_profile(u, [5, 5], x, edges, n_bootstrap=1)
    with pytest.raises(ValueError, match=r"block_length must be an integer >= 1. You supplied 0"):
        bootstrap_free_energy_profile(u, [5, 5], x, edges, block_length=0)
    with pytest.raises(ValueError, match=r"walker must have shape \(n_frames,\) = \(10,\)"):
        bootstrap_free_energy_profile(u, [5, 5], x, edges, walker=np.zeros(3))
    with pytest.raises(ValueError, match=r"no frame falls inside the edges"):
        bootstrap_free_energy_profile(u, [5, 5], x + 5.0, edges)


# ---- walkers and correlation -------------------------------------------------------------------


def test_walker_segments_split_a_round_by_walker_in_time_order():
    segments = walker_segments(7, np.array([3, 3, 3, 1, 1, 0, 0]))
    assert [s.tolist() for s in segments] == [[0, 1, 2], [3, 4], [5, 6]]
    interleaved = walker_segments(4, np.array([0, 1, 0, 1]))
    assert [s.tolist() for s in interleaved] == [[0, 2], [1, 3]]
    assert [s.tolist() for s in walker_segments(3)] == [[0, 1, 2]]
    assert walker_segments(0) == []
    with pytest.raises(ValueError, match=r"walker must have shape \(n_frames,\) = \(3,\)"):
        walker_segments(3, np.zeros(2, dtype=int))
    with pytest.raises(TypeError, match=r"walker must hold integers"):
        walker_segments(2, np.array([0.5, 1.0]))


def test_statistical_inefficiency_of_ar1_series_matches_theory():
    # AR(1) x_t = rho x_{t-1} + noise: g = (1 + rho) / (1 - rho) = 19 for rho = 0.9
    rho, n = 0.9, 200_000
    rng = np.random.default_rng(14)
    noise = rng.normal(size=(2, n))
    series = np.zeros((2, n))
    for t in range(1, n):
        series[:, t] = rho * series[:, t - 1] + noise[:, t]
    g = statistical_inefficiency(series[0])
    g_two = statistical_inefficiency([series[0], series[1]])
    expected = (1 + rho) / (1 - rho)
    g_tolerance = 0.1  # relative: the estimate's noise at n = 2e5 is ~3 % (measured)
    assert abs(g / expected - 1) < g_tolerance, f"g {g:.2f}, expected {expected:.2f}"
    assert abs(g_two / expected - 1) < g_tolerance, f"g {g_two:.2f}, expected {expected:.2f}"
    assert statistical_inefficiency(rng.normal(size=10_000)) < 1.2
    assert statistical_inefficiency(np.ones(50)) == 1.0


def test_bootstrap_sigma_of_independent_frames_matches_multinomial():
    # one unbiased round of independent frames in 10 equal-probability bins:
    # sigma(-ln p_b) = sqrt((1 - p) / (n p)) exactly to first order
    rng = np.random.default_rng(15)
    n, n_bins = 20000, 10
    values = rng.uniform(0.0, 1.0, size=n)
    est = bootstrap_free_energy_profile(
        np.zeros((1, n)), [n], values, np.linspace(0, 1, n_bins + 1), n_bootstrap=N_BOOTSTRAP
    )
    p = 1.0 / n_bins
    expected = np.sqrt((1 - p) / (n * p))
    ratio = float(np.mean(est.sigma) / expected)
    bootstrap_tolerance = 0.15  # relative: ~7 % noise per bin from 100 replicates, 10 bins
    print(f"bootstrap sigma {np.mean(est.sigma):.4f} kT vs multinomial {expected:.4f} kT")
    assert abs(ratio - 1.0) < bootstrap_tolerance
    # g ~ 1 for independent frames: blocks of ~5 g frames
    assert est.block_lengths[0] <= 2 * BLOCKS_PER_INEFFICIENCY


def _ar1(n: int, tau: float, rng: np.random.Generator) -> np.ndarray:
    """A stationary Gaussian AR(1) series with correlation time ``tau`` frames."""
    a = np.exp(-1.0 / tau)
    noise = rng.normal(size=n) * np.sqrt(1.0 - a * a)
    x = np.empty(n)
    x[0] = rng.normal()
    for i in range(1, n):
        x[i] = a * x[i - 1] + noise[i]
    return x


def test_grouped_states_resample_across_short_states_and_match_the_true_spread(caplog):
    """One correlated trajectory (correlation time 30 frames) cut into 20 MBAR states of 100
    frames under the same bias, as an OPES round's blocks are: blocks cut within each state
    (<= 5 frames) underestimate sigma of F; blocks cut across the states of the group (5 g)
    give the spread of F over 30 independent trajectories within the stated tolerance (the
    ratio of medians in [0.6, 1.5]; measured 0.65-1.3 per bin)."""
    n_states, per, tau = 20, 100, 30.0
    edges = np.linspace(-2.5, 2.5, 11)
    central = slice(3, 7)
    profiles, sigma_state, sigma_group = [], [], []
    for rep in range(30):
        x = _ar1(n_states * per, tau, np.random.default_rng(rep))
        u = np.zeros((n_states, x.size))
        with caplog.at_level(logging.ERROR):
            alone = bootstrap_free_energy_profile(u, [per] * n_states, x, edges, n_bootstrap=32,
                                                  seed=rep)
        grouped = bootstrap_free_energy_profile(u, [per] * n_states, x, edges, n_bootstrap=32,
                                                seed=rep, state_groups=[7] * n_states)
        assert np.array_equal(alone.free_energy, grouped.free_energy)
        profiles.append(grouped.free_energy[central])
        sigma_state.append(alone.sigma[central])
        sigma_group.append(grouped.sigma[central])
    true = np.std(profiles, axis=0, ddof=1)
    ratio_group = np.median(sigma_group, axis=0) / true
    ratio_state = np.median(sigma_state, axis=0) / true
    assert np.all((ratio_group > 0.6) & (ratio_group < 1.5)), ratio_group
    assert np.all(ratio_state < 0.8), ratio_state
    assert np.mean(ratio_state) < 0.6


def test_state_groups_must_be_consecutive_and_one_per_state():
    u = np.zeros((3, 30))
    x = np.linspace(-1.0, 1.0, 30)
    with pytest.raises(ValueError, match="one label per MBAR state"):
        bootstrap_free_energy_profile(u, [10, 10, 10], x, [-1, 0, 1], state_groups=[0, 0])
    with pytest.raises(ValueError, match="consecutively; group 0 appears twice"):
        bootstrap_free_energy_profile(u, [10, 10, 10], x, [-1, 0, 1], state_groups=[0, 1, 0])


def test_weights_of_frames_with_multiplicities_equal_those_of_the_repeated_frames():
    # a bootstrap replicate's frame n, drawn m_n times, carries the summed weight of its m_n
    # copies: MBAR on the explicitly repeated frames (rave's solver and pymbar's f_k) is the
    # reference
    _, u = _sample(seed=17)
    n_k = np.array(FRAMES_PER_ROUND)
    counts = np.random.default_rng(18).integers(1, 5, u.shape[1])
    starts = np.concatenate([[0], np.cumsum(n_k)])
    n_rep = np.add.reduceat(counts, starts[:-1])
    f, error = solve_mbar(u, n_rep, counts)
    assert error < 1e-9
    log_w = mbar_module._log_weights_from_f(u, n_rep, f, counts)
    repeated = mbar_reweight(np.repeat(u, counts, axis=1), n_rep)
    np.testing.assert_allclose(f - f[0], _pymbar_f(np.repeat(u, counts, axis=1), n_rep),
                               atol=PYMBAR_AGREEMENT, rtol=0)
    owner = np.repeat(np.arange(u.shape[1]), counts)
    summed = np.log(np.bincount(owner, weights=np.exp(repeated.log_weights)))
    np.testing.assert_allclose(log_w, summed, atol=ROUND_OFF, rtol=0)
    assert logsumexp(log_w) == pytest.approx(0.0, abs=ROUND_OFF)


def test_the_solvers_logsumexp_equals_scipys_far_from_zero_and_with_empty_rows():
    # reduced energies of thousands of kT (no underflow), and a column of -inf only
    a = np.random.default_rng(19).normal(size=(4, 6)) + np.array([[-2000.0], [0.0], [900.0],
                                                                   [-np.inf]])
    a[:, 5] = -np.inf
    for axis in (0, 1):
        with np.errstate(divide="ignore"):
            expected = logsumexp(a, axis=axis)
        np.testing.assert_allclose(mbar_module._logsumexp(a, axis), expected, atol=ROUND_OFF,
                                   rtol=0)


def test_reweighting_refuses_no_frames_and_gives_one_frame_all_the_weight():
    with pytest.raises(ValueError, match=r"at least one round and one frame.*\(2, 0\)"):
        mbar_reweight(np.zeros((2, 0)), [0, 0])
    # one frame: its weight is 1 whatever its bias, and f of its round is its reduced bias
    # relative to the unbiased one (f_k = -ln sum_n w_n exp(-u_kn))
    one = mbar_reweight(np.array([[0.0], [1.5]]), [1, 0])
    np.testing.assert_allclose(one.log_weights, [0.0], atol=ROUND_OFF)
    np.testing.assert_allclose(one.free_energies, [0.0, 1.5], atol=ROUND_OFF)


def test_whole_numbered_float_frame_counts_reweight_as_integers_and_fractions_are_refused():
    _, u = _sample(seed=20)
    as_int = mbar_reweight(u, FRAMES_PER_ROUND)
    as_float = mbar_reweight(u, [float(n) for n in FRAMES_PER_ROUND])
    np.testing.assert_allclose(as_float.log_weights, as_int.log_weights, atol=ROUND_OFF, rtol=0)
    with pytest.raises(TypeError, match=r"frames_per_round must hold integers"):
        mbar_reweight(u, [4999.5, 5000.5, 5000.0])
