"""Tests for workflows.benchmarks.alanine_dipeptide: phi from its sin and cos, periodic
binning, the phi-basin transition count, the RMSE against a reference with a known offset, the
reference file, the system's atoms and CV, the campaign config and a --quick smoke run."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from workflows.benchmarks import alanine_dipeptide as ad
from workflows.benchmarks import sampling_efficiency as se

#: floating-point agreement of exact identities (angles in rad, F in kT)
EXACT = 1e-12
#: the torsion CV (OpenMM, double precision on Reference) against atan2 of the features, rad
CV_TOL_RAD = 1e-9
N_BINS = 36


def _features(phi, psi=None):
    """Frames (n, 8) with the given phi (and psi); the omegas at pi."""
    phi = np.asarray(phi, dtype=float)
    psi = np.zeros_like(phi) if psi is None else np.asarray(psi, dtype=float)
    omega = np.full_like(phi, math.pi)
    cols = [np.sin(phi), np.cos(phi), np.sin(psi), np.cos(psi), np.sin(omega), np.cos(omega),
            np.sin(omega), np.cos(omega)]
    return np.stack(cols, axis=1)


def _profile():
    """A reference F(phi) on 36 bins: a basin at -1.3 rad, a shoulder 5 kT up, and a barrier
    around 0 more than 6 kT up (outside the region compared; no bin within 0.3 kT of its
    edge)."""
    centres = -math.pi + (np.arange(N_BINS) + 0.5) * 2 * math.pi / N_BINS
    return 4.0 - 2.5 * np.cos(centres + 1.3) + 8.0 * np.exp(-(centres**2) / 0.3)


def _write_reference(path: Path, f_kT, centres=None) -> Path:
    centres = (-math.pi + (np.arange(len(f_kT)) + 0.5) * 2 * math.pi / len(f_kT)
               if centres is None else centres)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["phi_rad", "free_energy_kT", "sigma_kT", "frames"])
        for c, f in zip(centres, f_kT, strict=True):
            writer.writerow([f"{c:.6f}", f"{f:.6f}", "0.1", "100"])
    return path


# ------------------------------------------------------------------------------ angles
def test_wrap_angle_maps_onto_the_half_open_interval():
    got = ad.wrap_angle(np.array([math.pi, -math.pi, 3 * math.pi, 0.1 + 2 * math.pi,
                                  -math.pi - 0.1, 0.0]))
    expected = [-math.pi, -math.pi, -math.pi, 0.1, math.pi - 0.1, 0.0]
    np.testing.assert_allclose(got, expected, atol=EXACT)
    assert np.all(got < math.pi) and np.all(got >= -math.pi)


def test_phi_and_psi_come_from_their_sin_and_cos():
    phi = np.array([-3.0, -1.3, 0.0, 0.5, 1.2, 3.1, math.pi])
    psi = np.array([2.9, -0.7, 1.0, -2.0, 0.4, -3.1, 0.0])
    features = _features(phi, psi)
    np.testing.assert_allclose(ad.phi_of_features(features), ad.wrap_angle(phi), atol=EXACT)
    np.testing.assert_allclose(ad.dihedral_from_features(features, ad.PSI_COLUMNS), psi,
                               atol=EXACT)
    assert ad.phi_of_features(features)[-1] == pytest.approx(-math.pi, abs=EXACT)  # pi is -pi
    with pytest.raises(ValueError, match=r"features must be \(n_frames, d\)"):
        ad.dihedral_from_features(np.zeros((3, 2)), ad.PSI_COLUMNS)


def test_periodic_binning_puts_an_angle_and_its_images_in_one_bin():
    width = 2 * math.pi / N_BINS
    angles = np.array([-math.pi, math.pi, math.pi - 1e-9, 0.05, 0.05 + 2 * math.pi, -0.05,
                       -math.pi + 2.5 * width - 4 * math.pi])
    assert ad.angle_bin_index(angles, N_BINS).tolist() == [0, 0, 35, 18, 18, 17, 2]
    # two frames in bin 0 (one given as phi > pi), one in bin 18: F = 0 and ln 2, inf elsewhere
    f = ad.angle_free_energy(np.array([-math.pi + 0.01, math.pi + 0.02, 0.1]), None, N_BINS)
    assert f[0] == 0.0 and f[18] == pytest.approx(math.log(2.0), abs=EXACT)
    assert np.isinf(np.delete(f, [0, 18])).all()


# ------------------------------------------------------------------------- transitions
def test_basins_have_dead_zones_around_zero_and_pi():
    phi = np.array([-1.3, -0.3, 0.3, 1.2, 2.9, -2.9, -2.5, 1.0, -1.0, 4.0, 3.5])
    # 4.0 rad is -2.28 rad, in the phi < 0 basin; 3.5 rad is -2.78 rad, within 0.5 of -pi
    assert ad.basin_labels(phi).tolist() == [0, -1, -1, 1, -1, -1, 0, 1, 0, 0, -1]
    assert ad.basin_labels(np.array([0.3, 0.6]), dead_zone_rad=0.2).tolist() == [1, 1]


def test_transitions_count_changes_of_the_last_basin_within_each_trajectory():
    phi = np.array([-1.3, -0.3, 0.3, 1.2, 2.9, -2.9, -2.5, 1.0, -1.0])
    assert ad.phi_transitions(phi).tolist() == [0, 0, 0, 1, 1, 1, 2, 3, 4]
    segments = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1])  # a new trajectory from frame 7
    assert ad.phi_transitions(phi, segments).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 3]
    # rattling in and out of the dead zone on one side is no transition
    assert ad.phi_transitions(np.array([-1.0, -0.2, -1.1, 0.1, -0.9]))[-1] == 0


# ------------------------------------------------------------------------ error measure
def test_rmse_against_the_reference_removes_a_known_offset():
    reference = ad.make_reference(_profile())
    region = np.flatnonzero(reference.mask)
    assert region.size == 31  # the bins more than 6 kT up are the 5 around phi = 0
    # one frame per bin at its centre, weighted so that its F is the reference + 2.7 kT, and
    # +-0.3 kT alternating over the region bins (16 +, 15 -): after the best offset, the RMSE
    # is 0.3 sqrt(1 - (1/31)^2) kT
    centres = 0.5 * (reference.edges[1:] + reference.edges[:-1])
    error = np.zeros(N_BINS)
    error[region] = 0.3 * (-1.0) ** np.arange(region.size)
    log_w = -(reference.exact_kT + 2.7 + error)
    run = se.Run(_features(centres), log_w, wall_s=1.0)
    rows = se.evaluate_prefixes(run, reference, [N_BINS * 10], 10)
    expected = 0.3 * math.sqrt(1.0 - (1.0 / 31) ** 2)
    assert rows[0]["rmse_kT"] == pytest.approx(expected, abs=EXACT)
    assert rows[0]["coverage"] == 1.0
    # without the perturbation the estimate is the reference plus a constant: RMSE 0
    run = se.Run(_features(centres), -(reference.exact_kT + 2.7), wall_s=1.0)
    assert se.evaluate_prefixes(run, reference, [N_BINS * 10], 10)[0]["rmse_kT"] < EXACT
    # a region bin without a frame: infinite, coverage reported
    keep = np.arange(N_BINS) != region[0]
    run = se.Run(_features(centres[keep]), log_w[keep], wall_s=1.0)
    row = se.evaluate_prefixes(run, reference, [(N_BINS - 1) * 10], 10)[0]
    assert row["rmse_kT"] == math.inf
    assert row["coverage"] == pytest.approx((region.size - 1) / region.size)


def test_reference_file_is_read_back_and_checked(tmp_path):
    f = _profile()
    reference = ad.load_reference(_write_reference(tmp_path / "ref.csv", f))
    np.testing.assert_allclose(reference.exact_kT, f - f.min(), atol=1e-5)
    np.testing.assert_allclose(reference.edges, np.linspace(-math.pi, math.pi, N_BINS + 1))
    assert reference.mask.tolist() == (f - f.min() <= se.REGION_KT).tolist()
    with pytest.raises(FileNotFoundError,
                       match=r"workflows.benchmarks.alanine_reference.*--reference PATH"):
        ad.load_reference(tmp_path / "missing.csv")
    shifted = -math.pi + np.arange(N_BINS) * 2 * math.pi / N_BINS  # left edges, not centres
    with pytest.raises(ValueError, match=r"must be the centres of 36 equal bins"):
        ad.load_reference(_write_reference(tmp_path / "edges.csv", f, shifted))
    (tmp_path / "other.csv").write_text("phi,F\n0,1\n")
    with pytest.raises(ValueError, match=r"must be a CSV with the columns phi_rad"):
        ad.load_reference(tmp_path / "other.csv")


# ------------------------------------------------------------------------------ system
@pytest.fixture(scope="module")
def alanine():
    return ad.load_alanine()


def test_features_are_sin_and_cos_of_the_four_backbone_dihedrals(alanine):
    atoms = [tuple(g[0] for g in f.groups) for f in alanine.features]
    expected = [ad.PHI, ad.PHI, ad.PSI, ad.PSI, ad.OMEGA1, ad.OMEGA1, ad.OMEGA2, ad.OMEGA2]
    assert atoms == expected
    assert [f.name for f in alanine.features] == list(ad.FEATURE_NAMES)
    assert [f.function for f in alanine.features] == ["sin", "cos"] * 4
    # the openmm kind's MD settings
    assert (alanine.temperature_K, alanine.timestep_ps, alanine.friction_per_ps) == (
        300.0, 0.002, 1.0)  # fmt: skip


def test_torsion_cv_equals_the_dihedral_from_the_features(alanine):
    import openmm

    rng = np.random.default_rng(4)
    for which, (atoms, columns) in ad.CVS.items():
        cv = ad.dihedral_cv(atoms, columns)
        system = openmm.System()
        for _ in range(len(alanine.positions)):
            system.addParticle(1.0)
        system.addForce(cv.make_force())
        context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                                 openmm.Platform.getPlatformByName("Reference"))
        for _ in range(3):
            positions = alanine.positions + rng.normal(0.0, 0.05, alanine.positions.shape)
            context.setPositions(positions)
            energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(
                openmm.unit.kilojoule_per_mole)
            from_features = cv.of_features(se.frame_features(alanine)(positions)[None, :])[0]
            assert energy == pytest.approx(from_features, abs=CV_TOL_RAD), which
        assert cv.periodic and (cv.lo, cv.hi) == (-math.pi, math.pi)


def test_campaign_config_sets_the_budget_the_bias_and_no_early_stopping(tmp_path):
    ref = _write_reference(tmp_path / "ref.csv", _profile())
    args = ad.parse_args(["--reference", str(ref), "--max-total-steps", "300000",
                          "--first-round-steps", "50000", "--steps-per-round", "100000",
                          "--rounds", "6", "--models", "1", "--opes-barrier", "40"])
    config = ad.campaign_config(3, args, "opes")
    sampling = config["sampling"]
    assert (sampling["max_total_steps"], sampling["first_round_steps"],
            sampling["steps_per_round"], sampling["rounds"]) == (300_000, 50_000, 100_000, 6)
    assert (sampling["seed"], sampling["report_interval"], sampling["walkers"]) == (3, 250, 1)
    assert sampling["platform"] == "Reference"
    assert config["convergence"]["min_rounds"] == 7
    assert config["bias"]["method"] == "opes" and config["bias"]["opes_barrier_kjmol"] == 40.0
    assert [f["name"] for f in config["features"]] == list(ad.FEATURE_NAMES)
    assert ad.campaign_config(3, args, "static")["bias"] == {"method": "static"}


def test_command_line_names_what_is_wrong(tmp_path, capsys):
    with pytest.raises(SystemExit):
        ad.parse_args(["--reference", str(tmp_path / "none.csv"), "--methods", "plain_md"])
    err = capsys.readouterr().err
    assert "none.csv does not exist" in err and "workflows.benchmarks.alanine_reference" in err
    assert str(ad.HERE / "alanine_dipeptide_reference.csv") in err  # the default's place
    ref = _write_reference(tmp_path / "ref.csv", _profile())
    with pytest.raises(SystemExit):
        ad.parse_args(["--reference", str(ref), "--budgets", "1000", "1100"])
    assert "multiples of --report-interval (250). You supplied [1100]" in (
        capsys.readouterr().err)  # fmt: skip
    with pytest.raises(SystemExit):
        ad.parse_args(["--reference", str(ref), "--max-total-steps", "50000"])
    assert "invalid campaign" in capsys.readouterr().err


def test_quick_run_writes_every_method(tmp_path, capsys):
    ref = _write_reference(tmp_path / "ref.csv", _profile())
    csv_path = tmp_path / "bench.csv"
    assert ad.main(["--quick", "--reference", str(ref), "--out", str(tmp_path),
                    "--csv", str(csv_path)]) == 0
    with open(csv_path) as handle:
        table = list(csv.DictReader(handle))
    expected = set(ad.RUNS) | {"metad_ideal_bias", "opes_ideal_bias"}
    assert {r["method"] for r in table} == expected
    assert {r["system"] for r in table} == {"alanine_dipeptide"}
    for column in ("steps", "rmse_median_kT", "rmse_min_kT", "rmse_max_kT", "coverage_median",
                   "transitions_median"):
        assert column in table[0]
    with open(tmp_path / "bench_to_target.csv") as handle:
        to_target = list(csv.DictReader(handle))
    assert {(r["method"], float(r["target_kT"])) for r in to_target} == {
        (m, t) for m in expected for t in (0.5, 0.2)}
    for column in ("steps_to_target_median", "wall_to_target_median_s", "ratio_to_rave"):
        assert column in to_target[0]
    with open(tmp_path / "bench_runs.csv") as handle:
        runs = list(csv.DictReader(handle))
    assert {int(r["steps"]) for r in runs if r["method"] == "plain_md"} == {5_000, 10_000,
                                                                           20_000}
    assert {int(r["seed"]) for r in runs} == {1}
    captured = capsys.readouterr()
    assert "MD steps (and wall time, s) to reach RMSE <= 0.5 kT" in captured.out
    assert "MD steps (and wall time, s) to reach RMSE <= 0.2 kT" in captured.out
    # the periodic spline of the bias matches what OpenMM applied (else a warning on stderr)
    assert captured.out.count("|OpenMM - numpy bias|") == 4
    assert "differ by" not in captured.err
