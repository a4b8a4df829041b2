"""Tests for workflows.benchmarks.sampling_efficiency: error measure, transitions, c(t)
reweighting, the OpenMM metadynamics and OPES bias read-back, OPES reweighting against the exact
profile, the reference direction, the summary."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from rave.systems.model_potentials import THREE_STATE_MINIMA, make_model_potential
from workflows.benchmarks import harness, page
from workflows.benchmarks import sampling_efficiency as se

#: floating-point agreement of exact identities, kT
EXACT_KT = 1e-10
#: c(t) of a harmonic F on a finite grid (trapezoid sums on 0.001 nm spacing, tails cut at
#: > 40 kT) against the analytic Gaussian integrals, kJ/mol
CT_HARMONIC_TOL_KJMOL = 1e-6
#: bin-averaged exact F of the double well against the closed form: the quadrature of F along
#: the slow direction (0.002 nm trapezoid over the perpendicular harmonic well), kT
DOUBLE_WELL_EXACT_TOL_KT = 1e-6
#: the three-state reference direction must beat the x and y axes by at least this much in
#: its lower separation barrier (measured: x 3.7 kT lower, y 0.25 kT lower), kT
SEPARATION_MARGIN_KT = 0.1
#: OPES (barrier 25 kJ/mol, a kernel every 500 steps, 300k steps, frames every 100) on the slow
#: direction of the rotated double well at a 2 kT barrier: RMSE of the reweighted F against the
#: exact profile over the bins within OPES_REGION_KT of its minimum, kT. Measured over seeds
#: 1-8: 0.13-0.22 kT (unweighted histogram of the same frames: 0.58-0.75 kT).
OPES_RMSE_TOL_KT = 0.35
OPES_REGION_KT = 4.0
#: the unweighted histogram of those frames must be at least this far off, kT: the tolerance
#: above can only be met by the reweighting
OPES_UNWEIGHTED_MIN_KT = 0.45
#: the CV force of a model system against features . direction, nm
CV_FORCE_TOL_NM = 1e-12


# -------------------------------------------------------------------------- error measure
def test_rmse_ignores_a_constant_offset():
    exact = np.array([0.0, 1.0, 3.0, 5.5])
    rmse, coverage = se.profile_rmse(exact + 3.7, exact, np.ones(4, bool))
    assert rmse == pytest.approx(0.0, abs=EXACT_KT)
    assert coverage == 1.0


def test_rmse_of_an_alternating_error_equals_its_amplitude():
    exact = np.linspace(0.0, 5.0, 6)
    error = 0.2 * np.array([1, -1, 1, -1, 1, -1])
    rmse, _ = se.profile_rmse(exact + error, exact, np.ones(6, bool))
    assert rmse == pytest.approx(0.2, abs=EXACT_KT)


def test_rmse_is_infinite_until_every_region_bin_is_sampled():
    exact = np.array([9.0, 0.0, 1.0, 2.0, 3.0, 9.0])
    mask = np.array([False, True, True, True, True, False])
    estimate = np.array([np.inf, 0.0, np.inf, 2.0, 3.0, np.inf])
    rmse, coverage = se.profile_rmse(estimate, exact, mask)
    assert rmse == math.inf
    assert coverage == pytest.approx(0.75)
    # empty bins outside the region do not count
    estimate[2] = 1.0
    rmse, coverage = se.profile_rmse(estimate, exact, mask)
    assert rmse == pytest.approx(0.0, abs=EXACT_KT) and coverage == 1.0


def test_rmse_rejects_profiles_of_different_shapes():
    with pytest.raises(ValueError, match=r"one shape. You supplied \(3,\), \(4,\), \(4,\)"):
        se.profile_rmse(np.zeros(3), np.zeros(4), np.ones(4, bool))


def test_region_keeps_bins_within_the_given_height_of_the_minimum():
    exact = np.array([7.0, 6.0, 2.0, 1.0, np.inf, 6.5])
    assert se.region_mask(exact - 1.0, 5.0).tolist() == [False, True, True, True, False, False]


def test_bin_average_is_minus_log_of_the_mean_boltzmann_factor():
    # bin 0: F = 0 and inf at its two sub-points -> -ln(1/2); bin 1: flat at 3 kT
    f = se.bin_averaged_free_energy(np.array([0.0, np.inf, 3.0, 3.0]), points_per_bin=2)
    assert f == pytest.approx([0.0, 3.0 - math.log(2.0)], abs=EXACT_KT)


def test_exact_reference_of_the_double_well_is_its_quartic_along_the_slow_direction():
    # U/kT = B((u/u0)^2 - 1)^2 + harmonic(v): the v integral is the same for every u, so
    # F(u)/kT = B((u/u0)^2 - 1)^2 exactly (B = 6, u0 = 1 nm by default)
    potential = make_model_potential("rotated_double_well", 300.0)
    reference = se.make_reference("rotated_double_well", potential, 0.1)
    sub = se._sub_points(reference.edges)
    expected = se.bin_averaged_free_energy(6.0 * (sub**2 - 1.0) ** 2)
    region = reference.mask
    offset = np.mean(reference.exact_kT[region] - expected[region])
    assert np.max(np.abs(reference.exact_kT[region] - expected[region] - offset)) < (
        DOUBLE_WELL_EXACT_TOL_KT
    )
    centers = 0.5 * (reference.edges[1:] + reference.edges[:-1])
    assert centers[region].min() < -1.3 and centers[region].max() > 1.3  # F(+-1.33) = 6 kT
    assert np.allclose(
        reference.direction, [math.cos(math.radians(35)), math.sin(math.radians(35))]
    )


# -------------------------------------------------------------------------- transitions
def test_transitions_count_changes_of_the_last_core_visited():
    labels = np.array([-1, 0, 0, -1, 1, 1, -1, 1, 0, -1, 2])
    expected = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3]
    assert se.cumulative_transitions(labels).tolist() == expected


def test_transitions_are_not_counted_across_trajectory_segments():
    labels = np.array([0, 0, 1, 1, 0, 0])
    segments = np.array([0, 0, 0, 1, 1, 1])  # frame 3 starts a new walker
    assert se.cumulative_transitions(labels, segments).tolist() == [0, 0, 1, 1, 2, 2]
    segments = np.array([0, 0, 1, 1, 2, 2])
    assert se.cumulative_transitions(labels, segments).tolist() == [0] * 6


def test_core_labels_assign_frames_within_the_radius_of_a_minimum():
    minima = np.array([[-1.0, 0.0], [1.0, 0.0]])
    xy = np.array([[-1.2, 0.1], [0.0, 0.0], [0.9, -0.3], [1.0, 0.36]])
    assert se.core_labels(xy, minima, 0.35).tolist() == [0, -1, 1, -1]


def test_core_labels_refuse_overlapping_cores():
    with pytest.raises(ValueError, match="cores of radius 0.6 nm overlap"):
        se.core_labels(np.zeros((1, 2)), np.array([[-0.5, 0.0], [0.5, 0.0]]), 0.6)


# -------------------------------------------------------------------------- c(t) reweighting
def test_ct_of_a_constant_bias_is_that_constant():
    assert se.ct_offset_kjmol(np.full(50, 7.5), 2.5, 10.0) == pytest.approx(7.5, abs=EXACT_KT)


def test_ct_of_a_converged_well_tempered_bias_on_a_harmonic_well_is_exact():
    # V = -(1 - 1/gamma) F with F = k s^2 / 2: c = kT ln(Z / Z_gamma) = -kT ln(gamma) / 2
    kT, gamma, k = 2.494, 10.0, 200.0
    s = np.arange(-3.0, 3.0, 0.001)
    bias = -(1.0 - 1.0 / gamma) * 0.5 * k * s**2
    expected = -0.5 * kT * math.log(gamma)
    assert se.ct_offset_kjmol(bias, kT, gamma) == pytest.approx(expected, abs=CT_HARMONIC_TOL_KJMOL)


def test_ct_rejects_a_bias_factor_of_one():
    with pytest.raises(ValueError, match="bias_factor must be > 1. You supplied 1.0"):
        se.ct_offset_kjmol(np.zeros(3), 2.5, 1.0)


def test_metadynamics_frames_carry_the_bias_openmm_applied():
    potential = make_model_potential("rotated_double_well", 300.0)
    run = se.run_metadynamics(
        potential, potential.build(), potential.slow_direction, 3, 4_000, 50,
        height_kjmol=1.2, sigma_nm=0.1, bias_factor=10.0, frequency=200,
    )  # fmt: skip
    assert run.notes["bias_mismatch_kjmol"] < se.BIAS_CHECK_TOLERANCE_KJMOL
    assert len(run.features) == 80
    # frames before the first deposit (at step 200) were sampled without bias: weight 1
    assert np.all(run.log_weights[:4] == 0.0)
    assert np.any(run.log_weights[4:] != 0.0)


_OPES = {"barrier_kjmol": 25.0, "frequency": 500, "variance_frequency": 100, "grid_sigma_nm": 0.1}


def test_opes_frames_carry_the_bias_they_were_sampled_under():
    potential = make_model_potential("rotated_double_well", 300.0)
    run = se.run_opes(
        potential, potential.build(), potential.slow_direction, 3, 10_000, 100, **_OPES
    )  # fmt: skip
    assert len(run.features) == 100
    assert run.notes["bias_mismatch_kjmol"] < se.BIAS_CHECK_TOLERANCE_KJMOL
    np.testing.assert_allclose(run.log_weights, run.notes["bias_kjmol"] / potential.kT)
    # the first kernel comes after statsWindowSize (10) x 500 steps = step 5000; the frame at
    # step 5000 was sampled before it, under the flat initial bias -barrier; the next one not
    bias = run.notes["bias_kjmol"]
    assert np.all(bias[:50] == -25.0)
    assert bias[50] != -25.0 and run.notes["kernels"] >= 1


def test_opes_reweighted_free_energy_matches_the_exact_profile_at_a_low_barrier():
    potential = make_model_potential("rotated_double_well", 300.0, barrier_kT=2.0)
    reference = se.make_reference("rotated_double_well", potential, 0.1)
    run = se.run_opes(
        potential, potential.build(), reference.direction, 5, 300_000, 100, **_OPES
    )  # fmt: skip
    mask = se.region_mask(reference.exact_kT, OPES_REGION_KT)
    chi = run.features @ reference.direction
    _, estimate = se.free_energy_profile(chi, run.log_weights, reference.edges)
    rmse, coverage = se.profile_rmse(estimate, reference.exact_kT, mask)
    _, unweighted = se.free_energy_profile(chi, np.zeros(len(chi)), reference.edges)
    rmse_unweighted, _ = se.profile_rmse(unweighted, reference.exact_kT, mask)
    print(f"OPES reweighted RMSE {rmse:.3f} kT (tolerance {OPES_RMSE_TOL_KT}), unweighted "
          f"{rmse_unweighted:.3f} kT, over {mask.sum()} bins, {run.wall_s:.1f} s")  # fmt: skip
    assert coverage == 1.0
    assert rmse < OPES_RMSE_TOL_KT
    assert rmse_unweighted > OPES_UNWEIGHTED_MIN_KT


def test_opes_refuses_a_variance_frequency_that_does_not_divide_the_frequency():
    potential = make_model_potential("rotated_double_well", 300.0)
    options = {**_OPES, "variance_frequency": 300}
    with pytest.raises(ValueError, match=r"variance_frequency \(300\) must divide frequency"):
        se.run_opes(potential, potential.build(), (1.0, 0.0), 1, 1_000, 100, **options)


def test_linear_cv_force_is_the_projection_of_the_features():
    import openmm

    potential = make_model_potential("mixed_slow_mode", 300.0)
    model = potential.build()
    c = np.array([0.3, -0.1, 0.5, 0.2, -0.7, 0.4])
    system = openmm.System()
    for _ in range(3):
        system.addParticle(1.0)
    system.addForce(se.linear_cv_force(model, c))
    context = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    xyz = np.random.default_rng(4).normal(size=(3, 3))
    context.setPositions(xyz)
    energy = context.getState(getEnergy=True).getPotentialEnergy()._value
    expected = xyz[:, :2].ravel() @ (c / np.linalg.norm(c))
    assert energy == pytest.approx(expected, abs=CV_FORCE_TOL_NM)


def test_mixed_slow_mode_reference_naive_cv_and_cores():
    potential = make_model_potential("mixed_slow_mode", 300.0)
    reference = se.make_reference("mixed_slow_mode", potential, 0.1)
    np.testing.assert_allclose(reference.direction, potential.slow_direction)
    naive = se.naive_direction("mixed_slow_mode", potential)
    assert naive.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert math.degrees(math.acos(naive @ reference.direction)) == pytest.approx(59.06, abs=0.01)
    # cores are intervals along the slow direction: a minimum displaced along a harmonic
    # direction by 0.5 nm is still in its core, one moved 0.4 nm along u is not
    frames = np.vstack([
        potential.minima[0] + 0.5 * potential.complement[0],
        potential.minima[1] - 0.3 * reference.direction,
        potential.minima[1] - 0.4 * reference.direction,
    ])  # fmt: skip
    assert reference.core_labels(frames).tolist() == [0, 1, -1]


def test_metadynamics_refuses_a_deposit_inside_a_frame_interval():
    potential = make_model_potential("rotated_double_well", 300.0)
    with pytest.raises(ValueError, match=r"frequency \(120\) must be a multiple of report"):
        se.run_metadynamics(
            potential, potential.build(), (1.0, 0.0), 1, 1_000, 50,
            height_kjmol=1.2, sigma_nm=0.1, bias_factor=10.0, frequency=120,
        )  # fmt: skip


# -------------------------------------------------------------------------- reference chi
def test_three_state_reference_direction_separates_all_three_minima_best():
    # the constant was found by a 1-degree scan; here it must beat or tie every 10-degree
    # direction (quadrature at 0.01 nm: barriers agree with 0.002 nm to 1e-6 kT)
    potential = make_model_potential("three_state", 300.0)
    minima = np.array([v[0] for v in THREE_STATE_MINIMA.values()])
    chi = np.arange(-2.5, 2.0 + 1e-9, 0.01)

    def barriers(angle_deg):
        c = np.array([math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))])
        profile = potential.exact_free_energy(c, chi, spacing_nm=0.01)
        return se.separation_barriers_kT(chi, profile, minima @ c)

    chosen = barriers(se.THREE_STATE_REFERENCE_ANGLE_DEG)
    print(f"barriers along the reference chi: {chosen} kT")
    assert chosen == pytest.approx([3.88, 3.72], abs=0.01)  # A-B, B-C, as documented
    others = {a: min(barriers(a)) for a in range(-90, 90, 10)}
    assert min(chosen) >= max(others.values())
    assert others[0] < min(chosen) - SEPARATION_MARGIN_KT  # x merges A and B
    assert others[-90] < min(chosen) - SEPARATION_MARGIN_KT  # y


# -------------------------------------------------------------------------- summary, config
def test_steps_to_target_needs_the_rmse_to_stay_below():
    steps = np.array([10, 20, 40, 80, 160])
    assert se.steps_to_target(steps, np.array([2.0, 0.4, 0.6, 0.3, 0.2]), 0.5) == 80
    assert se.steps_to_target(steps, np.array([np.inf, 0.4, 0.3, 0.3, 0.2]), 0.5) == 20
    assert se.steps_to_target(steps, np.full(5, 0.1), 0.5) == 10
    assert se.steps_to_target(steps, np.array([0.4, 0.4, 0.4, 0.4, 0.6]), 0.5) == math.inf


def test_summary_gives_medians_and_ratios_to_rave():
    rows = []
    reached = {"rave": [100, 200, 200], "plain_md": [1000, 3000, None]}
    for method, per_seed in reached.items():
        for seed, target in enumerate(per_seed):
            for steps in (100, 200, 1000, 3000):
                rmse = 0.3 if target is not None and steps >= target else 1.0
                rows.append({"system": "three_state", "method": method, "seed": seed,
                             "steps": steps, "rmse_kT": rmse, "coverage": 1.0,
                             "transitions": steps // 100})  # fmt: skip
    table, to_target = se.summarise(rows, 0.5)
    by = {r["method"]: r for r in to_target}
    assert by["rave"]["steps_to_target_median"] == 200
    assert by["plain_md"]["steps_to_target_median"] == 3000  # median of 1000, 3000, inf
    assert by["plain_md"]["steps_to_target_max"] == math.inf
    assert by["plain_md"]["ratio_to_rave"] == pytest.approx(15.0)
    row = next(r for r in table if r["method"] == "rave" and r["steps"] == 100)
    assert (row["rmse_median_kT"], row["rmse_min_kT"], row["rmse_max_kT"]) == (1.0, 0.3, 1.0)
    assert row["transitions_median"] == 1 and row["seeds"] == 3


def test_rave_config_disables_early_stopping_and_applies_overrides():
    config = se.rave_config("three_state", 7, 50, rounds=3, steps_per_round=1_000, models=1)
    assert config["sampling"]["seed"] == 7 and config["sampling"]["report_interval"] == 50
    assert config["sampling"]["rounds"] == 3 and config["vae"]["models"] == 1
    assert config["convergence"]["min_rounds"] == 4
    assert config["bias"]["cap_kT"] == 8.0  # the rest comes from workflows/three_state.toml


def test_quick_run_without_rave_writes_tables_and_figure(tmp_path, capsys):
    csv_path = tmp_path / "bench.csv"
    argv = ["--quick", "--systems", "rotated_double_well", "--methods", "plain_md",
            "metad_ideal", "--out", str(tmp_path), "--csv", str(csv_path)]  # fmt: skip
    assert se.main(argv) == 0
    with open(csv_path) as handle:
        table = list(csv.DictReader(handle))
    assert {r["method"] for r in table} == {"plain_md", "metad_ideal", "metad_ideal_bias"}
    assert {int(r["steps"]) for r in table} == {5_000, 10_000, 20_000, 40_000}
    assert (tmp_path / "bench_to_target.csv").exists() and (tmp_path / "bench_runs.csv").exists()
    assert (tmp_path / "bench.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "MD steps (and wall time, s) to reach RMSE <= 0.5 kT" in out
    assert "MD steps (and wall time, s) to reach RMSE <= 0.2 kT" in out
    (folder,) = tmp_path.glob("sampling_efficiency_*_quick")
    record = harness.load_record(folder / "sampling_efficiency.json")
    assert record["command"] == "python -m workflows.benchmarks.sampling_efficiency " + " ".join(
        argv)
    assert record["seeds"] == [1] and record["key"] == ["system", "method", "target_kT"]
    assert {(r["method"], r["target_kT"]) for r in record["summary"]} == {
        (m, t) for m in ("plain_md", "metad_ideal", "metad_ideal_bias") for t in (0.5, 0.2)}
    assert record["machine"]["cores"] >= 1 and record["versions"]["openmm"] != "unknown"
    assert (folder / record["files"]["runs"]).resolve() == (tmp_path / "bench_runs.csv")


def test_quick_run_of_the_mixed_model_with_opes_metad_and_plain_md(tmp_path):
    csv_path = tmp_path / "bench.csv"
    argv = ["--quick", "--systems", "mixed_slow_mode", "--methods", "plain_md", "metad_naive",
            "opes_ideal", "opes_naive", "--budgets", "5000", "10000", "--out", str(tmp_path),
            "--csv", str(csv_path)]  # fmt: skip
    assert se.main(argv) == 0
    with open(csv_path) as handle:
        table = list(csv.DictReader(handle))
    assert {r["method"] for r in table} == {
        "plain_md", "metad_naive", "opes_ideal", "opes_ideal_bias", "opes_naive"
    }  # fmt: skip
    assert {r["system"] for r in table} == {"mixed_slow_mode"}


def test_command_line_refuses_seed_zero(capsys):
    with pytest.raises(SystemExit):
        se.parse_args(["--seeds", "0", "1"])
    assert "--seeds must be integers >= 1. You supplied [0, 1]" in capsys.readouterr().err


# ============================================================================================
# the harness's result record, compare, and the benchmarks page
# ============================================================================================
def _same(a, b) -> bool:
    """Equal values, NaN equal to NaN (a ratio to RAVE where RAVE did not run)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_record_keeps_inf_and_nan_and_compare_matches_rows_by_key(tmp_path):
    def record(rave_s):
        rows = [{"states": 5, "frames": 10, "rave_s": rave_s, "pymbar_s": math.inf},
                {"states": 32, "frames": 10, "rave_s": 4.0, "pymbar_s": 8.0}]
        return harness.make_record("mbar_solver", "MBAR", "python -m x", rows,
                                   ("states", "frames"), seeds=[1])

    harness.write_record(tmp_path / "old.json", record(2.0))
    old = harness.load_record(tmp_path / "old.json")
    assert old["summary"][0]["pymbar_s"] == math.inf and old["machine"]["cores"] >= 1
    rows = harness.compare(old, record(1.0))
    by = {(r["states"], r["field"]): r for r in rows}
    assert by[5, "rave_s"]["ratio"] == 0.5 and by[32, "rave_s"]["ratio"] == 1.0
    assert math.isnan(by[5, "pymbar_s"]["ratio"])  # not finite: no ratio
    other = harness.make_record("training", "t", "c", [], ("mode",))
    with pytest.raises(ValueError, match="cannot compare mbar_solver .* give two records of one"):
        harness.compare(old, other)
    with pytest.raises(ValueError, match="lacks the key field"):
        harness.make_record("x", "t", "c", [{"a": 1}], ("a", "b"))


def test_load_record_refuses_a_file_of_another_format(tmp_path):
    (tmp_path / "other.json").write_text('{"rows": []}')
    with pytest.raises(ValueError, match="is not a benchmark result record"):
        harness.load_record(tmp_path / "other.json")


def test_spread_and_quartiles_over_seeds():
    assert harness.spread([3.0, 1.0, math.inf]) == (3.0, 1.0, math.inf)
    assert harness.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 3.0, 4.0)
    assert all(math.isnan(v) for v in harness.spread([]))


def test_committed_results_summaries_are_what_the_benchmark_computes_from_their_runs():
    results = page.load_results()
    assert results, f"no result record under {page.RESULTS}"
    for name, record in results:
        if record["benchmark"] not in page.SAMPLING:
            continue
        runs = harness.read_csv(record["_folder"] / record["files"]["runs"])
        targets = list(dict.fromkeys(r["target_kT"] for r in record["summary"]))
        _, to_target = se.summaries(runs, targets)
        assert len(to_target) == len(record["summary"]), name
        for got, kept in zip(to_target, record["summary"], strict=True):
            assert set(got) == set(kept) and all(_same(got[k], kept[k]) for k in got), name


def test_committed_benchmarks_page_is_what_the_generator_writes_from_the_results():
    results = page.load_results()
    expected = page.render(results)
    assert page.PAGE.read_text() == expected, (
        "docs/benchmarks.md differs from the committed results: run "
        "'python -m workflows.benchmarks.page'")
    for name, record in results:
        for figure in page._figure_names(name, record):
            assert (page.FIGURES / figure).stat().st_size > 0, figure
