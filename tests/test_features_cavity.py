"""Tests for the cavity order parameters: CylindricalPosition (z, rho) and CylinderCount (n_w)."""

from __future__ import annotations

import json
import math

import numpy as np
import openmm
import pytest
from openmm import unit as u

from rave.learn.bias import Bias, BiasGrid
from rave.md.bias_force import bias_force
from rave.md.features import (
    CYLINDRICAL_RHO_EPS_NM2,
    CylinderCount,
    CylindricalPosition,
    Feature,
    evaluate_features,
    feature_from_dict,
    smooth_step_down,
)
from rave.md.walker import Walker

# Agreement between the numpy face and the OpenMM energy, in the feature's unit (nm or 1).
FACE_TOL = 1e-5
# Hand-computed answers (float64 round-off; rho carries the 1e-12 nm^2 regularisation).
EXACT_TOL = 1e-12
# Bias energy read from OpenMM vs Bias.energy of the recorded features, kJ/mol.
BIAS_TOL_KJMOL = 1e-6

N_PARTICLES = 40
BOX_LENGTHS = (3.0, 3.2, 3.5)  # nm, a rectangular box
BOX = np.diag(BOX_LENGTHS)
ORIGIN = (1.4, 1.7, 1.2)  # nm
LIGAND = [0, 1, 2]
COUNTED = list(range(3, N_PARTICLES))


def _features(box_lengths=BOX_LENGTHS) -> list[Feature]:
    return [
        CylindricalPosition(LIGAND, ORIGIN, "z", box_lengths, name="z"),
        CylindricalPosition(LIGAND, ORIGIN, "rho", box_lengths, name="rho"),
        CylindricalPosition(5, ORIGIN, "z", box_lengths, name="z1"),
        CylindricalPosition(5, ORIGIN, "rho", box_lengths, name="rho1"),
        CylinderCount(COUNTED, ORIGIN, 1.0, -0.6, 0.4, 0.3, box_lengths, name="n"),
    ]


def _positions(seed: int) -> np.ndarray:
    """Random positions spread over about three box lengths: many images, many boundaries."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 2.0, size=(N_PARTICLES, 3)) * np.asarray(BOX_LENGTHS)
    # keep the ligand group whole (within 0.3 nm of its first atom), as molecules are
    x[1:3] = x[0] + rng.uniform(-0.3, 0.3, size=(2, 3))
    return x


def _context(forces, n_particles=N_PARTICLES, box=BOX) -> openmm.Context:
    system = openmm.System()
    for i in range(n_particles):
        system.addParticle(float(i + 1))  # unequal masses: centroids must not be mass-weighted
    for g, force in enumerate(forces):
        force.setForceGroup(g)
        system.addForce(force)
    system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*row) for row in box])
    return openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )


def _energies(context: openmm.Context, x: np.ndarray, n_groups: int) -> np.ndarray:
    context.setPositions(x)
    return np.array(
        [
            context.getState(getEnergy=True, groups={g})
            .getPotentialEnergy()
            .value_in_unit(u.kilojoule_per_mole)
            for g in range(n_groups)
        ]
    )


@pytest.mark.parametrize("in_cv", [False, True], ids=["bare", "in_cv"])
@pytest.mark.parametrize("wrapped", [True, False], ids=["box", "no_box"])
def test_openmm_energy_equals_numpy_value(in_cv: bool, wrapped: bool) -> None:
    features = _features(BOX_LENGTHS if wrapped else None)
    forces = []
    for f in features:
        force = f.openmm_force()
        if in_cv:
            cv = openmm.CustomCVForce("s")
            cv.addCollectiveVariable("s", force)
            force = cv
        forces.append(force)
    context = _context(forces)
    for seed in range(5):
        x = _positions(seed)
        expected = evaluate_features(features, x, BOX)[0]
        got = _energies(context, x, len(features))
        np.testing.assert_allclose(got, expected, rtol=0, atol=FACE_TOL)


def test_values_do_not_depend_on_the_periodic_image() -> None:
    features = _features()
    context = _context([f.openmm_force() for f in features])
    x = _positions(11)
    rng = np.random.default_rng(12)
    shifted = x.copy()
    shifts = rng.integers(-2, 3, size=(N_PARTICLES, 3)).astype(float)
    shifts[1:3] = shifts[0]  # the ligand moves as a whole
    shifted += shifts * np.asarray(BOX_LENGTHS)
    assert np.any(shifts[0] != 0)
    ref = evaluate_features(features, x, BOX)[0]
    np.testing.assert_allclose(evaluate_features(features, shifted, BOX)[0], ref, atol=1e-9)
    np.testing.assert_allclose(
        _energies(context, shifted, len(features)), ref, rtol=0, atol=FACE_TOL
    )
    # without wrapping the shifted frame does differ (the test exercises the minimum image)
    raw = _features(None)
    assert np.max(np.abs(evaluate_features(raw, shifted)[0] - evaluate_features(raw, x)[0])) > 1


def test_z_and_rho_checked_by_hand_with_component_minimum_image() -> None:
    x = np.zeros((2, 3))
    # offset (2.9, -3.1, 1.6) from ORIGIN; minimum image in (3.0, 3.2, 3.5): (-0.1, 0.1, 1.6)
    x[0] = np.asarray(ORIGIN) + [2.9, -3.1, 1.6]
    z = CylindricalPosition(0, ORIGIN, "z", BOX_LENGTHS)
    rho = CylindricalPosition(0, ORIGIN, "rho", BOX_LENGTHS)
    assert abs(z.evaluate(x)[0] - 1.6) < EXACT_TOL
    assert abs(rho.evaluate(x)[0] - math.sqrt(0.02 + CYLINDRICAL_RHO_EPS_NM2)) < EXACT_TOL
    # 1.9 nm up is past half the box (1.75 nm): the image 1.6 nm below is nearer
    x[0] = np.asarray(ORIGIN) + [0.0, 0.0, 1.9]
    assert abs(z.evaluate(x)[0] - (1.9 - 3.5)) < EXACT_TOL
    context = _context([z.openmm_force(), rho.openmm_force()], n_particles=2)
    np.testing.assert_allclose(_energies(context, x, 2), [1.9 - 3.5, 1e-6], atol=FACE_TOL)


def test_centroid_is_the_plain_mean_not_mass_weighted() -> None:
    x = np.zeros((3, 3))
    x[:, 2] = [0.0, 0.3, 1.2]  # mean 0.5
    f = CylindricalPosition([0, 1, 2], (0.0, 0.0, 0.1), "z")
    assert abs(f.evaluate(x)[0] - 0.4) < EXACT_TOL
    context = _context([f.openmm_force()], n_particles=3)  # masses 1, 2, 3
    assert abs(_energies(context, x, 1)[0] - 0.4) < FACE_TOL


def test_cylinder_count_checked_by_hand() -> None:
    # cylinder: radius 1, z in [-0.6, 0.4] about the origin, boundaries softened over 0.2
    f = CylinderCount([0, 1, 2, 3, 4, 5], (0.0, 0.0, 0.0), 1.0, -0.6, 0.4, 0.2)
    x = np.array(
        [
            [0.0, 0.0, 0.0],  # well inside: 1
            [0.89, 0.0, 0.29],  # 0.01 nm further than width/2 inside both: 1
            [1.0, 0.0, 0.0],  # on the lateral boundary: 1/2
            [0.0, 0.6, 0.4],  # on the top boundary: 1/2
            [0.0, 0.0, -0.65],  # 0.05 below the bottom: S(0.25)
            [0.0, 0.0, 0.51],  # 0.01 past width/2 outside the top: 0
        ]
    )
    t = 0.75  # S(u) with u = 0.25: t = u + 1/2
    expected = 1 + 1 + 0.5 + 0.5 + (1 - t**3 * (10 - 15 * t + 6 * t * t)) + 0
    assert abs(f.evaluate(x)[0] - expected) < 1e-9
    context = _context([f.openmm_force()], n_particles=6)
    assert abs(_energies(context, x, 1)[0] - expected) < FACE_TOL


def test_smooth_step_down_is_one_half_zero_and_flat_at_its_ends() -> None:
    u_ = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(smooth_step_down(u_), [1.0, 1.0, 0.5, 0.0, 0.0])
    h = 1e-4  # first and second differences vanish at both ends (C2 joins)
    for end in (-0.5, 0.5):
        s = smooth_step_down(np.array([end - h, end, end + h]))
        assert abs(s[2] - s[0]) / (2 * h) < 1e-6
        assert abs(s[2] - 2 * s[1] + s[0]) / h**2 < 1e-2
    grid = np.linspace(-1, 1, 2001)
    assert np.all(np.diff(smooth_step_down(grid)) <= 0)


def test_forces_are_finite_with_the_particle_on_the_axis() -> None:
    features = _features()
    x = _positions(3)
    x[0:3] = ORIGIN  # the ligand centroid exactly on the axis (rho = 0)
    x[3] = ORIGIN  # a counted particle exactly on the axis
    context = _context([f.openmm_force() for f in features])
    context.setPositions(x)
    forces = context.getState(getForces=True).getForces(asNumpy=True)._value
    assert np.all(np.isfinite(forces))
    assert abs(features[1].evaluate(x, BOX)[0] - 1e-6) < EXACT_TOL


@pytest.mark.parametrize("index", range(5))
def test_round_trip_through_to_dict_and_json(index: int) -> None:
    f = _features()[index]
    d = json.loads(json.dumps(f.to_dict()))
    g = feature_from_dict(d)
    assert g == f
    assert d["origin"] == list(ORIGIN) and d["box_lengths"] == list(BOX_LENGTHS)
    x = _positions(4)
    assert g.evaluate(x, BOX)[0] == f.evaluate(x, BOX)[0]


def test_quantities_are_accepted_and_converted() -> None:
    f = CylinderCount(
        [1, 2],
        u.Quantity((14.0, 17.0, 12.0), u.angstrom),
        radius=10.0 * u.angstrom,
        z_min=-0.6,
        z_max=0.4 * u.nanometer,
        width=2.0 * u.angstrom,
        box_lengths=u.Quantity(BOX_LENGTHS, u.nanometer),
    )
    assert f.origin == pytest.approx(ORIGIN) and f.radius == pytest.approx(1.0)
    assert f.width == pytest.approx(0.2) and f.box_lengths == BOX_LENGTHS


def test_evaluate_rejects_a_box_other_than_the_fixed_one() -> None:
    f = _features()[0]
    x = _positions(5)
    with pytest.raises(ValueError, match=r"fixed rectangular box \[3.0, 3.2, 3.5\].*frame 0"):
        f.evaluate(x, np.diag([3.0, 3.2, 3.6]))
    f.evaluate(x, np.diag(BOX_LENGTHS) + 1e-6 * np.eye(3))  # float32-level rounding is fine


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"origin": (1.0, 2.0)}, ValueError, r"origin must be three finite numbers.*\(1.0, 2.0\)"),
        ({"component": "r"}, ValueError, r"component must be one of 'z', 'rho'. You supplied 'r'"),
        ({"box_lengths": (3.0, -1.0, 3.0)}, ValueError, r"box_lengths must be None or three"),
        ({"atoms": []}, ValueError, r"atoms must be a non-empty sequence"),
        ({"origin": 1.0 * u.second}, TypeError, r"origin must be lengths \(nm\)"),
    ],
)
def test_cylindrical_position_validation(kwargs, error, match) -> None:
    args = {"atoms": [0], "origin": ORIGIN, "component": "z", "box_lengths": None} | kwargs
    with pytest.raises(error, match=match):
        CylindricalPosition(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"radius": 0.0}, r"radius must be > 0 nm. You supplied 0"),
        ({"width": -0.1}, r"width must be > 0 nm. You supplied -0.1"),
        ({"z_min": 0.5, "z_max": 0.5}, r"z_min < z_max.*z_min=0.5, z_max=0.5"),
    ],
)
def test_cylinder_count_validation(kwargs, match) -> None:
    args = {"atoms": [0], "origin": ORIGIN, "radius": 1.0, "z_min": -0.5, "z_max": 0.5} | kwargs
    with pytest.raises(ValueError, match=match):
        CylinderCount(**args)


def _walker_system() -> openmm.System:
    """Soft periodic particles (a periodic force makes the walker record box vectors)."""
    system = openmm.System()
    for _ in range(N_PARTICLES):
        system.addParticle(12.0)
    soft = openmm.CustomNonbondedForce("2*(1-r/0.5)^2")
    soft.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    soft.setCutoffDistance(0.5)
    for _ in range(N_PARTICLES):
        soft.addParticle([])
    bonds = openmm.HarmonicBondForce()  # keep the ligand group whole
    bonds.addBond(0, 1, 0.2, 5000.0)
    bonds.addBond(1, 2, 0.2, 5000.0)
    bonds.addBond(0, 2, 0.2, 5000.0)
    system.addForce(soft)
    system.addForce(bonds)
    system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*row) for row in BOX])
    return system


def test_bias_on_cavity_features_is_a_custom_cv_force_and_matches_bias_energy() -> None:
    features = _features()[:2] + _features()[4:]
    chi_grid = np.linspace(-3.0, 40.0, 512)
    grid = BiasGrid(-3.0, 40.0, 3.0 * np.sin(3.0 * chi_grid) - 3.0)  # kJ/mol, period 2.1
    bias = Bias(np.array([0.6, -0.3, 0.74]) / np.linalg.norm([0.6, -0.3, 0.74]), grid)
    assert isinstance(bias_force(features, bias), openmm.CustomCVForce)
    rng = np.random.default_rng(21)
    x = rng.uniform(0.0, 1.0, size=(N_PARTICLES, 3)) * np.asarray(BOX_LENGTHS)
    x[0] = [BOX_LENGTHS[0] - 0.05, 1.7, 1.3]  # the ligand straddles the x boundary
    x[1] = x[0] + [0.1, 0.17, 0.0]
    x[2] = x[0] + [0.2, 0.0, 0.0]
    walker = Walker(_walker_system(), x, features, 300.0, 0.002, 5.0, seed=3, platform="Reference")
    walker.set_bias(bias)
    frames = walker.run(200, 20)
    expected = bias.energy(frames.features)
    assert np.ptp(expected) > 0.1  # the frames see different parts of the bias
    np.testing.assert_allclose(frames.bias_kjmol, expected, rtol=0, atol=BIAS_TOL_KJMOL)
