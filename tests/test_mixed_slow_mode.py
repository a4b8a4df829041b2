"""Tests for rave.systems.mixed_slow_mode: parameters, numpy vs OpenMM, exact F by convolution
against closed forms, exact samples and Langevin MD."""

from __future__ import annotations

import math
import time

import numpy as np
import openmm
import pytest
from openmm import unit as u

from rave.campaign.config import ConfigError, config_from_dict
from rave.campaign.simsystem import build_simulation_system
from rave.systems.mixed_slow_mode import (
    COORDINATE_NAMES,
    DEFAULT_SLOW_DIRECTION,
    MixedSlowModePotential,
    mixed_slow_mode,
    orthonormal_complement,
)
from rave.systems.model_potentials import make_model_potential

# numpy energy vs OpenMM Reference energy (both float64), relative and absolute (kJ/mol).
ENERGY_RTOL = 1e-9
ENERGY_ATOL_KJMOL = 1e-9
# exact F against a closed form evaluated without the convolution, kT.
CLOSED_FORM_TOL_KT = 1e-6
# a nearly orthogonal direction: the quadrature against the moment-matched Gaussian, kT
# (the s part is scaled by a = 1e-3, so its non-Gaussian shape is invisible at this level).
NEAR_ORTHOGONAL_TOL_KT = 1e-3
# documented numbers (module docstring) are rounded to these.
ANGLE_TOL_DEG = 0.01
BARRIER_TOL_KT = 0.05
# statistical checks: per-bin error in standard errors, and the smallest count of a bin used.
N_SIGMA = 4.0
MIN_COUNT = 400
# Langevin histogram vs exact F at a 2.5 kT barrier: RMSE over bins with >= MIN_COUNT frames,
# best offset removed, kT. Fast: 2e6 steps (~140 crossings of s; measured RMSE 0.06-0.10 kT
# over seeds 1, 2, 3, 17); slow: 2e7 steps (1417 crossings, 0.022 kT at seed 23): statistical
# error falling as 1/sqrt(steps), so each tolerance is about twice the measured error.
MD_RMSE_TOL_KT = 0.15
MD_RMSE_TOL_SLOW_KT = 0.05


def _openmm_energies(potential: MixedSlowModePotential, xyz: np.ndarray, kz: float) -> np.ndarray:
    """Energies (kJ/mol) of the built System at configurations (n, 3, 3) nm, Reference."""
    model = potential.build(z_force_constant=kz)
    context = openmm.Context(
        model.system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    out = []
    for positions in xyz:
        context.setPositions(positions)
        out.append(
            context.getState(getEnergy=True)
            .getPotentialEnergy()
            .value_in_unit(u.kilojoule_per_mole)
        )
    return np.array(out)


def _barrier(chi: np.ndarray, f: np.ndarray) -> float:
    """Barrier of a double-well profile: max between the two wells minus the higher well."""
    mid = np.argmin(np.abs(chi))
    left, right = np.argmin(f[:mid]), mid + np.argmin(f[mid:])
    return float(f[left : right + 1].max() - max(f[left], f[right]))


def _bin_averaged(potential, c, edges, points=10):
    width = edges[1] - edges[0]
    sub = (edges[:-1, None] + width * (np.arange(points) + 0.5)[None, :] / points).ravel()
    f = potential.exact_free_energy(c, sub).reshape(-1, points)
    return -np.log(np.mean(np.exp(-f), axis=1))


def _compare_histogram(chi: np.ndarray, exact_bins: np.ndarray, edges: np.ndarray):
    """(rmse_kT, max_z, used bins): histogram F vs exact over bins with >= MIN_COUNT samples,
    offset removed by the count-weighted mean difference; z = |d| / (1/sqrt(count))."""
    counts, _ = np.histogram(chi, bins=edges)
    used = counts >= MIN_COUNT
    f_hist = -np.log(counts[used] / counts.sum())
    d = f_hist - exact_bins[used]
    d -= np.average(d, weights=counts[used])
    z = np.abs(d) * np.sqrt(counts[used])
    return float(np.sqrt(np.mean(d * d))), float(z.max()), int(used.sum())


# --------------------------------------------------------------------------------------------
# parameters, as documented
# --------------------------------------------------------------------------------------------
def test_default_parameters_are_the_documented_ones():
    p = mixed_slow_mode()
    u_vec = np.asarray(p.slow_direction)
    np.testing.assert_allclose(u_vec, np.asarray(DEFAULT_SLOW_DIRECTION) / 1.0016, atol=2e-4)
    assert np.linalg.norm(u_vec) == pytest.approx(1.0, abs=1e-12)
    # the complement is orthonormal and orthogonal to u
    basis = np.vstack([u_vec, p.complement])
    np.testing.assert_allclose(basis @ basis.T, np.eye(6), atol=1e-12)
    assert p.naive_index == 0 and COORDINATE_NAMES[p.naive_index] == "x1"
    assert p.naive_angle_deg == pytest.approx(59.06, abs=ANGLE_TOL_DEG)
    worst = math.degrees(math.acos(np.min(np.abs(u_vec))))
    assert worst == pytest.approx(70.77, abs=ANGLE_TOL_DEG)
    assert p.stiffnesses_kjmol_nm2 == (25.0, 50.0, 100.0, 200.0, 400.0)
    assert (p.barrier_kT, p.asymmetry_kT, p.well_nm) == (9.0, 1.0, 1.0)
    # the start is the lower minimum, at s < 0, and lies on u
    s = p.minima @ u_vec
    assert s[0] < 0 < s[1]
    assert p.double_well_kT(s[0]) < p.double_well_kT(s[1]) - 0.9
    np.testing.assert_allclose(p.start, p.minima[0])
    np.testing.assert_allclose(p.minima, np.outer(s, u_vec), atol=1e-12)


def test_slow_mode_barrier_is_hidden_from_every_single_coordinate():
    p = mixed_slow_mode()
    chi = np.linspace(-2.0, 2.0, 2001)
    along_u = _barrier(chi, p.exact_free_energy(p.slow_direction, chi))
    singles = []
    for i in range(6):
        e = np.zeros(6)
        e[i] = 1.0
        singles.append(_barrier(chi, p.exact_free_energy(e, chi)))
    print("barrier along u:", along_u, "along each coordinate:", np.round(singles, 3))
    assert along_u == pytest.approx(9.0 - 0.5, abs=0.1)  # B - A/2 from the upper well
    assert singles[0] == pytest.approx(2.2, abs=BARRIER_TOL_KT)
    assert 0.6 < min(singles[1:]) and max(singles[1:]) < 1.65
    assert int(np.argmax(singles)) == p.naive_index


def test_parameters_are_validated_with_the_name_of_the_parameter():
    with pytest.raises(ValueError, match="barrier_kT must be a finite number > 0. You supplied 0"):
        mixed_slow_mode(barrier_kT=0)
    with pytest.raises(ValueError, match=r"slow_direction must be 6 finite numbers"):
        mixed_slow_mode(slow_direction=(1.0, 0.0))
    with pytest.raises(ValueError, match="slow_direction must be a non-zero vector"):
        mixed_slow_mode(slow_direction=(0.0,) * 6)
    with pytest.raises(ValueError, match="stiffnesses_kjmol_nm2 must all be > 0"):
        mixed_slow_mode(stiffnesses_kjmol_nm2=(1.0, 2.0, 3.0, 4.0, -5.0))
    with pytest.raises(ValueError, match="asymmetry_kT must be a finite number"):
        mixed_slow_mode(asymmetry_kT=math.nan)
    with pytest.raises(ValueError, match="coefficients must be 6 finite numbers"):
        mixed_slow_mode().exact_free_energy((1.0, 0.0), [0.0])


def test_orthonormal_complement_of_a_basis_vector_and_of_a_general_one():
    np.testing.assert_allclose(orthonormal_complement([1.0, 0.0, 0.0]), [[0, 1, 0], [0, 0, 1]])
    c = np.array([-0.3, 0.2, 0.9, 0.1])
    basis = np.vstack([c / np.linalg.norm(c), orthonormal_complement(c)])
    np.testing.assert_allclose(basis @ basis.T, np.eye(4), atol=1e-12)
    with pytest.raises(ValueError, match="direction must be a finite non-zero vector"):
        orthonormal_complement([0.0, 0.0])


# --------------------------------------------------------------------------------------------
# numpy face == OpenMM face
# --------------------------------------------------------------------------------------------
def test_numpy_energy_equals_openmm_energy_at_random_points():
    p = mixed_slow_mode(310.0, barrier_kT=4.0, asymmetry_kT=-0.7, well_nm=0.8)
    rng = np.random.default_rng(5)
    xyz = rng.uniform(-1.5, 1.5, size=(60, 3, 3))
    kz = 37.0
    expected = _openmm_energies(p, xyz, kz)
    numpy_energy = p.energy(xyz[:, :, :2].reshape(60, 6)) + 0.5 * kz * np.sum(xyz[:, :, 2] ** 2, 1)
    np.testing.assert_allclose(numpy_energy, expected, rtol=ENERGY_RTOL, atol=ENERGY_ATOL_KJMOL)


def test_build_makes_three_free_particles_with_six_coordinate_features():
    p = mixed_slow_mode()
    model = p.build()
    assert model.system.getNumParticles() == 3 and model.system.getNumConstraints() == 0
    assert [type(f).__name__ for f in model.system.getForces()] == ["CustomCompoundBondForce"]
    assert [f.name for f in model.features] == list(COORDINATE_NAMES)
    values = [float(np.squeeze(f.evaluate(model.positions))) for f in model.features]
    np.testing.assert_allclose(values, p.start, atol=1e-15)
    assert model.positions.shape == (3, 3) and np.all(model.positions[:, 2] == 0.0)


def test_config_kind_builds_the_model_and_takes_only_its_keys():
    config = config_from_dict({"system": {"kind": "mixed_slow_mode", "barrier_kT": 3.0}})
    sim = build_simulation_system(config)
    assert sim.name == "mixed_slow_mode" and sim.positions.shape == (3, 3)
    assert [f.name for f in sim.features] == list(COORDINATE_NAMES)
    assert sim.potential.barrier_kT == 3.0
    assert make_model_potential("mixed_slow_mode", 300.0) == mixed_slow_mode()
    with pytest.raises(ConfigError, match="system.angle_deg only applies to kind"):
        config_from_dict({"system": {"kind": "mixed_slow_mode", "angle_deg": 10.0}})
    with pytest.raises(ConfigError, match="system.start only applies to kind"):
        config_from_dict({"system": {"kind": "mixed_slow_mode", "start": [0.0, 0.0]}})


# --------------------------------------------------------------------------------------------
# exact free energy: closed forms, exact samples
# --------------------------------------------------------------------------------------------
def test_exact_free_energy_along_the_slow_direction_is_the_double_well():
    p = mixed_slow_mode()
    chi = np.linspace(-1.8, 1.8, 361)
    for sign in (1.0, -1.0):  # c is normalised: pass a scaled (and flipped) u
        f = p.exact_free_energy(2.5 * sign * np.asarray(p.slow_direction), chi)
        expected = p.double_well_kT(sign * chi)
        np.testing.assert_allclose(f, expected - expected.min(), atol=CLOSED_FORM_TOL_KT)


def test_exact_free_energy_orthogonal_to_the_slow_direction_is_gaussian():
    p = mixed_slow_mode()
    c = p.complement[0] + 2.0 * p.complement[3]  # |c|^2 = 5
    chi = np.linspace(-1.0, 1.0, 201)
    variance = (p.kT / 25.0 + 4.0 * p.kT / 200.0) / 5.0  # sum_j (c.v_j)^2 kT / k_j, nm^2
    f = p.exact_free_energy(c, chi)
    np.testing.assert_allclose(f, chi**2 / (2 * variance), atol=CLOSED_FORM_TOL_KT)
    # tilt c by a = 1e-3 towards u: the quadrature path, against the moment-matched Gaussian
    a = 1e-3
    tilted = math.sqrt(1 - a * a) * c / np.linalg.norm(c) + a * np.asarray(p.slow_direction)
    s = np.linspace(-3, 3, 60001)
    w = np.exp(-p.double_well_kT(s))
    var_s = np.sum(w * s * s) / w.sum() - (np.sum(w * s) / w.sum()) ** 2
    mean = a * np.sum(w * s) / w.sum()
    total = (1 - a * a) * variance + a * a * var_s
    f_tilted = p.exact_free_energy(tilted, chi)
    gaussian = (chi - mean) ** 2 / (2 * total)
    error = np.max(np.abs(f_tilted - (gaussian - gaussian.min())))
    print("near-orthogonal: max |F - Gaussian| =", error, "kT")
    assert error < NEAR_ORTHOGONAL_TOL_KT


def test_exact_free_energy_along_a_general_direction_matches_exact_samples():
    p = mixed_slow_mode(barrier_kT=4.0)
    c = np.array([0.3, 0.8, -0.2, 0.4, 0.1, -0.25])  # c.u = 0.09: both terms matter
    q = p.sample(400_000, seed=3)
    chi = q @ (c / np.linalg.norm(c))
    edges = np.arange(-1.5, 1.5001, 0.05)
    rmse, z, used = _compare_histogram(chi, _bin_averaged(p, c, edges), edges)
    print(f"exact samples: RMSE {rmse:.4f} kT over {used} bins, max |d|/sigma {z:.2f}")
    assert used >= 30 and z < N_SIGMA
    # and a direction with a clear double well (a = 0.75): the two wells and the barrier
    c2 = np.asarray(p.slow_direction) + 0.9 * p.complement[0]
    chi2 = q @ (c2 / np.linalg.norm(c2))
    rmse2, z2, used2 = _compare_histogram(chi2, _bin_averaged(p, c2, edges), edges)
    print(f"double-well direction: RMSE {rmse2:.4f} kT over {used2} bins, max z {z2:.2f}")
    assert used2 >= 30 and z2 < N_SIGMA


def test_exact_samples_have_the_moments_of_the_factorised_density():
    # the sampler itself, against quadrature: mean and variance of s, variance of each g_j
    p = mixed_slow_mode(barrier_kT=4.0)
    q = p.sample(200_000, seed=8)
    s = q @ np.asarray(p.slow_direction)
    grid = np.linspace(-3, 3, 60001)
    w = np.exp(-p.double_well_kT(grid))
    mean_s = np.sum(w * grid) / w.sum()
    sd_s = math.sqrt(np.sum(w * grid**2) / w.sum() - mean_s**2)
    assert abs(s.mean() - mean_s) < N_SIGMA * sd_s / math.sqrt(len(s))
    g = q @ p.complement.T
    expected = p.kT / np.asarray(p.stiffnesses_kjmol_nm2)
    # the variance of a Gaussian sample has relative standard error sqrt(2/n)
    np.testing.assert_array_less(
        np.abs(g.var(axis=0) / expected - 1), N_SIGMA * math.sqrt(2 / len(q))
    )


# --------------------------------------------------------------------------------------------
# Langevin MD (OpenMM, Reference) against the convolution
# --------------------------------------------------------------------------------------------
def _md_chi(potential, c, n_steps, seed, interval=50):
    model = potential.build()
    integrator = openmm.LangevinMiddleIntegrator(
        potential.temperature_K, potential.friction_per_ps, potential.timestep_ps
    )
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(
        model.system, integrator, openmm.Platform.getPlatformByName("Reference")
    )
    context.setPositions(model.positions)
    context.setVelocitiesToTemperature(potential.temperature_K, seed)
    c = np.asarray(c, dtype=float) / np.linalg.norm(c)
    frames = np.empty((n_steps // interval, 6))
    for i in range(len(frames)):
        integrator.step(interval)
        xyz = context.getState(getPositions=True).getPositions(asNumpy=True)._value
        frames[i] = xyz[:, :2].ravel()
    return frames @ c, frames @ np.asarray(potential.slow_direction)


def _md_check(n_steps: int, tolerance_kT: float, seed: int):
    p = mixed_slow_mode(barrier_kT=2.5, asymmetry_kT=1.0)
    c = np.array([1.0, -1.0, 1.0, 0.0, 0.0, 1.0])  # c.u = 0.87, sigma = 0.12 nm
    t0 = time.perf_counter()
    chi, s = _md_chi(p, c, n_steps, seed)
    crossings = int(np.sum(np.diff(np.sign(s[np.abs(s) > 0.5])) != 0))
    edges = np.arange(-2.0, 2.0001, 0.1)
    rmse, z, used = _compare_histogram(chi, _bin_averaged(p, c, edges), edges)
    print(
        f"{n_steps} steps in {time.perf_counter() - t0:.1f} s, {crossings} crossings of s; "
        f"RMSE {rmse:.3f} kT over {used} bins (tolerance {tolerance_kT}), max z {z:.1f} "
        f"(frames are correlated: z is not a test statistic here)"
    )
    assert crossings >= 20
    assert used >= 20
    assert rmse < tolerance_kT


def test_langevin_histogram_matches_the_exact_convolution_at_a_low_barrier():
    _md_check(2_000_000, MD_RMSE_TOL_KT, seed=17)


@pytest.mark.slow
def test_long_langevin_histogram_matches_the_exact_convolution_at_a_low_barrier():
    _md_check(20_000_000, MD_RMSE_TOL_SLOW_KT, seed=23)
