"""Tests for rave.md.features: numpy face vs OpenMM face vs mdtraj vs exact answers."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import mdtraj
import numpy as np
import openmm
import pytest
from openmm import unit as u

from rave.md.features import (
    COORDINATION_TAYLOR_HALF_WIDTH,
    Angle,
    Coordination,
    Dihedral,
    Distance,
    Feature,
    Position,
    evaluate_features,
    feature_from_dict,
    feature_names,
    switching_function,
)

# Agreement between the numpy face and the OpenMM energy, in the feature's unit
# (nm, rad or dimensionless; energy in kJ/mol is numerically the feature value).
FACE_TOL = 1e-5
# Agreement with mdtraj, which computes in float32: absolute, in the feature's unit.
MDTRAJ_TOL = 2e-5
# Agreement with exact hand-computed or rational-arithmetic answers (float64 round-off).
EXACT_TOL = 1e-12
# Switching function vs exact rational arithmetic, dimensionless: near r0 the rational form
# loses ~1e-16/|r/r0 - 1| to cancellation and the Taylor window errs by ~(n m)^2 |r/r0 - 1|^3.
SWITCH_TOL = 1e-9

N_PARTICLES = 12
BOX_EDGE = 3.0  # nm
CUBIC_BOX = np.diag([BOX_EDGE] * 3)
# A reduced-form triclinic box: a along x, b in the xy plane, |b_x|, |c_x| <= a_x/2,
# |c_y| <= b_y/2.
TRICLINIC_BOX = np.array([[3.0, 0.0, 0.0], [0.6, 2.8, 0.0], [-0.5, 0.9, 2.7]])


def _random_positions(seed: int, n_frames: int | None = None) -> np.ndarray:
    """Random positions (nm) spread over about two box lengths, so many pairs cross the box."""
    rng = np.random.default_rng(seed)
    shape = (N_PARTICLES, 3) if n_frames is None else (n_frames, N_PARTICLES, 3)
    return rng.uniform(-1.0, 2 * BOX_EDGE, size=shape)


def _boundary_positions(seed: int) -> np.ndarray:
    """Positions inside the box but hugging its faces, so minimum images matter."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 0.25, size=(N_PARTICLES, 3))
    flip = rng.random((N_PARTICLES, 3)) < 0.5
    return np.where(flip, BOX_EDGE - x, x)


def openmm_value(
    feature: Feature,
    positions: np.ndarray,
    box: np.ndarray | None = None,
    in_cv: bool = False,
    n_particles: int = N_PARTICLES,
) -> float:
    """Potential energy (kJ/mol) of the feature's force alone or inside CustomCVForce("f0")."""
    system = openmm.System()
    for i in range(n_particles):
        system.addParticle(float(i + 1))  # unequal masses: centroid weights must not be masses
    force = feature.openmm_force()
    if box is None and force.usesPeriodicBoundaryConditions():
        raise AssertionError("a periodic force needs an explicit box (OpenMM's default is 2 nm)")
    if in_cv:
        cv = openmm.CustomCVForce("f0")
        cv.addCollectiveVariable("f0", force)
        force = cv
    system.addForce(force)
    if box is not None:
        system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*row) for row in box])
    context = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    context.setPositions(positions)
    if box is not None:
        context.setPeriodicBoxVectors(*[openmm.Vec3(*row) for row in box])
    energy = context.getState(getEnergy=True).getPotentialEnergy()
    return energy.value_in_unit(u.kilojoule_per_mole)


def _features(periodic: bool) -> list[Feature]:
    return [
        Position(3, "x"),
        Position([0, 4, 7], "y"),
        Position([1, 2, 5, 9], "z", weights=[0.5, 2.0, 1.0, 3.5]),
        Distance(0, 5, periodic=periodic),
        Distance([0, 1, 2], [3, 4], periodic=periodic, weights1=[1.0, 2.0, 3.0]),
        Angle([0, 1, 2], periodic=periodic),
        Angle([[0, 6], 1, [2, 3, 8]], periodic=periodic),
        Dihedral([0, 1, 2, 3], "cos", periodic=periodic),
        Dihedral([0, 1, 2, 3], "sin", periodic=periodic),
        Dihedral([[0, 4], 1, [2, 10], 3], "sin", periodic=periodic),
        Coordination([0, 1], range(2, N_PARTICLES), r0=0.9, periodic=periodic),
        Coordination([0, 1, 2], [2, 3, 4, 5, 6], r0=0.8, n=6, m=10, periodic=periodic),
    ]


FEATURE_IDS = [f.name for f in _features(True)]


@pytest.mark.parametrize("in_cv", [False, True], ids=["bare", "in_cv"])
@pytest.mark.parametrize("index", range(len(FEATURE_IDS)), ids=FEATURE_IDS)
@pytest.mark.parametrize(
    "case",
    ["no_box", "cubic_across_boundary", "cubic_spread", "triclinic_spread", "nonperiodic_in_box"],
)
def test_openmm_energy_equals_numpy_value(index: int, case: str, in_cv: bool) -> None:
    # A periodic OpenMM force always uses the context's box (OpenMM's default box is 2 nm),
    # whereas the numpy face without a box does not wrap: without a box, use periodic=False.
    periodic = case not in ("no_box", "nonperiodic_in_box")
    feature = _features(periodic)[index]
    x = {
        "no_box": _random_positions(1),
        "cubic_across_boundary": _boundary_positions(2),
        "cubic_spread": _random_positions(3),
        "triclinic_spread": _random_positions(4),
        "nonperiodic_in_box": _boundary_positions(5),
    }[case]
    box = {"triclinic_spread": TRICLINIC_BOX, "no_box": None}.get(case, CUBIC_BOX)
    expected = feature.evaluate(x, box)
    assert expected.shape == (1,)
    got = openmm_value(feature, x, box, in_cv=in_cv)
    assert abs(got - expected[0]) < FACE_TOL, (feature.name, case, got, expected[0])


def test_periodic_and_nonperiodic_differ_across_boundary() -> None:
    """The boundary configuration must actually exercise the minimum image."""
    x = _boundary_positions(2)
    d_pbc = Distance(0, 5).evaluate(x, CUBIC_BOX)[0]
    d_raw = Distance(0, 5, periodic=False).evaluate(x, CUBIC_BOX)[0]
    assert d_pbc < d_raw - 1.0


def test_distance_uses_minimum_image_checked_by_hand() -> None:
    x = np.zeros((3, 3))
    x[0] = [0.1, 0.2, 2.9]
    x[1] = [2.9, 0.1, 0.3]  # image displacement (-0.2, -0.1, +0.4): |d| = sqrt(0.21)
    x[2] = [1.0, 1.0, 1.0]
    expected_pbc = math.sqrt(0.2**2 + 0.1**2 + 0.4**2)
    expected_raw = math.sqrt(2.8**2 + 0.1**2 + 2.6**2)
    pbc, raw = Distance(0, 1), Distance(0, 1, periodic=False)
    assert abs(pbc.evaluate(x, CUBIC_BOX)[0] - expected_pbc) < EXACT_TOL
    assert abs(raw.evaluate(x, CUBIC_BOX)[0] - expected_raw) < EXACT_TOL
    assert abs(pbc.evaluate(x)[0] - expected_raw) < EXACT_TOL  # no box, no wrapping
    assert abs(openmm_value(pbc, x, CUBIC_BOX, n_particles=3) - expected_pbc) < FACE_TOL
    assert abs(openmm_value(raw, x, CUBIC_BOX, n_particles=3) - expected_raw) < FACE_TOL


def test_centroid_distance_uses_minimum_image_between_centroids_of_whole_groups() -> None:
    # Group 1 = {0, 1}, centroid (0.2, 0, 0); group 2 = {2, 3}, centroid (2.9, 0, 0).
    x = np.array([[0.1, 0, 0], [0.3, 0, 0], [2.8, 0, 0], [3.0, 0, 0]])
    f = Distance([0, 1], [2, 3])
    assert abs(f.evaluate(x, CUBIC_BOX)[0] - 0.3) < EXACT_TOL
    assert abs(openmm_value(f, x, CUBIC_BOX, n_particles=4) - 0.3) < FACE_TOL


def test_position_is_absolute_and_not_wrapped() -> None:
    x = np.array([[3.7, -0.4, 7.25], [0.0, 0.0, 0.0]])
    for axis, expected in zip("xyz", x[0], strict=True):
        f = Position(0, axis)
        assert f.evaluate(x, CUBIC_BOX)[0] == expected
        assert abs(openmm_value(f, x, CUBIC_BOX, n_particles=2) - expected) < FACE_TOL


def test_weighted_centroid_position_checked_by_hand() -> None:
    x = np.array([[0.0, 0, 0], [1.0, 0, 0], [4.0, 0, 0]])
    f = Position([0, 1, 2], "x", weights=[1.0, 1.0, 2.0])
    assert abs(f.evaluate(x)[0] - 9.0 / 4.0) < EXACT_TOL
    assert abs(Position([0, 1, 2], "x").evaluate(x)[0] - 5.0 / 3.0) < EXACT_TOL


def _trajectory(x: np.ndarray, box: np.ndarray | None) -> mdtraj.Trajectory:
    top = mdtraj.Topology()
    chain = top.add_chain()
    for _ in range(x.shape[1]):
        top.add_atom("Ar", mdtraj.element.argon, top.add_residue("AR", chain))
    traj = mdtraj.Trajectory(x.astype(np.float32), top)
    if box is not None:
        traj.unitcell_vectors = np.broadcast_to(box, (x.shape[0], 3, 3)).astype(np.float32)
    return traj


@pytest.mark.parametrize("periodic", [False, True])
def test_distance_matches_mdtraj_compute_distances(periodic: bool) -> None:
    x = _random_positions(7, n_frames=5).astype(np.float32).astype(np.float64)
    traj = _trajectory(x, CUBIC_BOX)
    pairs = [(0, 5), (2, 11), (3, 4)]
    ref = mdtraj.compute_distances(traj, pairs, periodic=periodic)
    for k, (i, j) in enumerate(pairs):
        f = Distance(i, j, periodic=periodic)
        assert np.max(np.abs(f.evaluate_trajectory(traj) - ref[:, k])) < MDTRAJ_TOL
        assert np.max(np.abs(f.evaluate(x, CUBIC_BOX) - ref[:, k])) < MDTRAJ_TOL


def test_angle_matches_mdtraj_compute_angles() -> None:
    x = _random_positions(8, n_frames=5).astype(np.float32).astype(np.float64)
    traj = _trajectory(x, CUBIC_BOX)
    triples = [(0, 1, 2), (5, 3, 9)]
    ref = mdtraj.compute_angles(traj, triples, periodic=True)
    for k, t in enumerate(triples):
        assert np.max(np.abs(Angle(t).evaluate_trajectory(traj) - ref[:, k])) < MDTRAJ_TOL


def test_angle_of_right_angle_is_half_pi() -> None:
    x = np.array([[1.0, 0, 0], [0.0, 0, 0], [0.0, 0, 2.5]])
    f = Angle([0, 1, 2], periodic=False)
    assert abs(f.evaluate(x)[0] - math.pi / 2) < EXACT_TOL
    assert abs(openmm_value(f, x, n_particles=3) - math.pi / 2) < FACE_TOL


@pytest.mark.parametrize("periodic", [False, True])
def test_dihedral_sign_matches_mdtraj_compute_dihedrals(periodic: bool) -> None:
    x = _random_positions(9, n_frames=20).astype(np.float32).astype(np.float64)
    traj = _trajectory(x, CUBIC_BOX)
    quad = (0, 1, 2, 3)
    phi = mdtraj.compute_dihedrals(traj, [quad], periodic=periodic)[:, 0]
    assert np.any(phi > 0.5) and np.any(phi < -0.5)  # both signs are exercised
    sin_f = Dihedral(quad, "sin", periodic=periodic)
    cos_f = Dihedral(quad, "cos", periodic=periodic)
    assert np.max(np.abs(sin_f.evaluate_trajectory(traj) - np.sin(phi))) < MDTRAJ_TOL
    assert np.max(np.abs(cos_f.evaluate_trajectory(traj) - np.cos(phi))) < MDTRAJ_TOL


def test_dihedral_of_plus_ninety_degrees_checked_by_hand() -> None:
    # b1 = (-1,0,0), b2 = (0,0,1), b3 = (0,1,0): n1 = (0,1,0), n2 = (-1,0,0), phi = +pi/2.
    x = np.array([[1.0, 0, 0], [0.0, 0, 0], [0.0, 0, 1], [0.0, 1, 1]])
    sin_f = Dihedral([0, 1, 2, 3], "sin", periodic=False)
    cos_f = Dihedral([0, 1, 2, 3], "cos", periodic=False)
    assert abs(sin_f.evaluate(x)[0] - 1.0) < EXACT_TOL
    assert abs(cos_f.evaluate(x)[0]) < EXACT_TOL
    assert abs(openmm_value(sin_f, x, n_particles=4) - 1.0) < FACE_TOL
    mirrored = x * np.array([1.0, -1.0, 1.0])  # mirror image: phi = -pi/2
    assert abs(sin_f.evaluate(mirrored)[0] + 1.0) < EXACT_TOL
    assert abs(openmm_value(sin_f, mirrored, n_particles=4) + 1.0) < FACE_TOL


def _exact_switch(r: float, r0: float, n: int, m: int) -> float:
    """(1 - q^n) / (1 - q^m) in exact rational arithmetic on the float inputs."""
    q = Fraction(r) / Fraction(r0)
    if q == 1:
        return n / m
    return float((1 - q**n) / (1 - q**m))


@pytest.mark.parametrize("n, m", [(6, None), (6, 10), (8, 14), (6, 4)])
@pytest.mark.parametrize("rel", [0.0, 1e-9, -3e-7, 5e-5, -9.9e-5, 1.01e-4, -2e-4, 3e-3, 0.5, -0.6])
def test_coordination_at_and_near_r0_matches_exact_switch(n: int, m: int | None, rel: float):
    r0 = 0.5  # nm, exactly representable so that r = r0 is exact for rel = 0
    r = r0 * (1.0 + rel)
    x = np.array([[0.2, 0.3, 0.4], [0.2 + r, 0.3, 0.4]])
    f = Coordination([0], [1], r0=r0, n=n, m=m, periodic=False)
    expected = _exact_switch(r, r0, n, 2 * n if m is None else m)
    got = f.evaluate(x)[0]
    assert abs(got - expected) < SWITCH_TOL, (got, expected)
    assert abs(openmm_value(f, x, n_particles=2) - expected) < FACE_TOL
    assert abs(openmm_value(f, x, n_particles=2, in_cv=True) - expected) < FACE_TOL


def test_coordination_exactly_at_r0_is_n_over_m() -> None:
    x = np.array([[0.0, 0, 0], [0.35, 0, 0]])
    f = Coordination(0, 1, r0=0.35, n=6, m=10, periodic=False)
    assert f.evaluate(x)[0] == 0.6
    assert Coordination(0, 1, r0=0.35).evaluate(x)[0] == 0.5
    assert abs(openmm_value(f, x, n_particles=2) - 0.6) < FACE_TOL


def test_switching_function_is_continuous_across_taylor_window_edge() -> None:
    r0, w = 1.0, COORDINATION_TAYLOR_HALF_WIDTH
    eps = 1e-13
    r = np.array([r0 * (1 + w - eps), r0 * (1 + w + eps), r0 * (1 - w - eps), r0 * (1 - w + eps)])
    s = switching_function(r, r0, n=6, m=10)
    assert abs(s[0] - s[1]) < SWITCH_TOL and abs(s[2] - s[3]) < SWITCH_TOL


def test_coordination_counts_each_unordered_pair_once_and_skips_self_pairs() -> None:
    f = Coordination([0, 1], [1, 2], r0=0.4, periodic=False)
    assert f.pairs.tolist() == [[0, 1], [0, 2], [1, 2]]
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 1, size=(3, 3))
    expected = sum(1.0 / (1.0 + (np.linalg.norm(x[i] - x[j]) / 0.4) ** 6) for i, j in f.pairs)
    assert abs(f.evaluate(x)[0] - expected) < EXACT_TOL
    assert abs(openmm_value(f, x, n_particles=3) - expected) < FACE_TOL


def test_coordination_matches_naive_sum_over_mdtraj_periodic_distances() -> None:
    x = _random_positions(12, n_frames=4).astype(np.float32).astype(np.float64)
    traj = _trajectory(x, CUBIC_BOX)
    a, b = [0, 3, 4], list(range(2, N_PARTICLES))
    f = Coordination(a, b, r0=0.7, n=6, m=12)
    pairs = sorted({(min(i, j), max(i, j)) for i in a for j in b if i != j})
    r = mdtraj.compute_distances(traj, pairs, periodic=True).astype(np.float64)
    expected = (1.0 / (1.0 + (r / 0.7) ** 6)).sum(axis=1)
    # float32 distances: relative error ~1e-7 per pair, summed over <= 30 pairs
    assert np.max(np.abs(f.evaluate_trajectory(traj) - expected)) < MDTRAJ_TOL


def test_coordination_scales_to_large_group_b() -> None:
    n_b = 3000
    f = Coordination(range(40), range(40, 40 + n_b), r0=0.5)
    assert len(f.pairs) == 40 * n_b
    rng = np.random.default_rng(13)
    x = rng.uniform(0, 5.0, size=(3, 40 + n_b, 3))
    values = f.evaluate(x, np.diag([5.0] * 3))
    assert values.shape == (3,) and np.all(values > 0)
    assert f.openmm_force().getNumBonds() == 40 * n_b


def test_openmm_force_returns_new_object_each_call() -> None:
    for f in _features(True):
        f1, f2 = f.openmm_force(), f.openmm_force()
        assert f1 is not f2
        cv = openmm.CustomCVForce("f0 + f1")
        cv.addCollectiveVariable("f0", f1)
        cv.addCollectiveVariable("f1", f2)  # would fail if the same object were reused


def test_linear_combination_in_cv_force_equals_numpy_combination() -> None:
    x = _boundary_positions(14)
    feats = [Distance(0, 5), Dihedral([0, 1, 2, 3], "sin"), Coordination([0], range(1, 12), 0.9)]
    coeffs = [0.7, -1.3, 2.1]
    system = openmm.System()
    for _ in range(N_PARTICLES):
        system.addParticle(1.0)
    system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*row) for row in CUBIC_BOX])
    cv = openmm.CustomCVForce(" + ".join(f"{c!r}*f{i}" for i, c in enumerate(coeffs)))
    for i, f in enumerate(feats):
        cv.addCollectiveVariable(f"f{i}", f.openmm_force())
    system.addForce(cv)
    ctx = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    ctx.setPositions(x)
    got = ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)
    expected = evaluate_features(feats, x, CUBIC_BOX)[0] @ np.array(coeffs)
    assert abs(got - expected) < FACE_TOL


def test_evaluate_accepts_frames_single_frame_and_quantities() -> None:
    xs = _random_positions(15, n_frames=3)
    f = Distance([0, 1], 2)
    many = f.evaluate(xs, CUBIC_BOX)
    assert many.shape == (3,) and many.dtype == np.float64
    one = f.evaluate(xs[1], CUBIC_BOX)
    assert one.shape == (1,) and one[0] == many[1]
    q = f.evaluate(u.Quantity(xs * 10.0, u.angstrom), u.Quantity(CUBIC_BOX, u.nanometer))
    assert np.max(np.abs(q - many)) < EXACT_TOL
    per_frame_boxes = np.stack([CUBIC_BOX, 2 * CUBIC_BOX, TRICLINIC_BOX])
    varied = f.evaluate(xs, per_frame_boxes)
    for k in range(3):
        assert varied[k] == f.evaluate(xs[k], per_frame_boxes[k])[0]


def test_evaluate_features_stacks_columns_in_order() -> None:
    xs = _random_positions(16, n_frames=4)
    feats = _features(True)
    table = evaluate_features(feats, xs, CUBIC_BOX)
    assert table.shape == (4, len(feats))
    for k, f in enumerate(feats):
        assert np.array_equal(table[:, k], f.evaluate(xs, CUBIC_BOX))


def test_evaluate_trajectory_without_unitcell_is_nonperiodic() -> None:
    xs = _boundary_positions(17)[None]
    traj = _trajectory(xs, None)
    f = Distance(0, 5)
    assert abs(f.evaluate_trajectory(traj)[0] - f.evaluate(xs.astype(np.float32))[0]) < EXACT_TOL


@pytest.mark.parametrize("index", range(len(FEATURE_IDS)), ids=FEATURE_IDS)
def test_to_dict_round_trips_through_json(index: int) -> None:
    f = _features(False)[index]
    d = json.loads(json.dumps(f.to_dict()))
    assert d["kind"] == f.kind
    g = feature_from_dict(d)
    assert g == f and type(g) is type(f) and g.name == f.name
    x = _random_positions(18)
    assert np.array_equal(g.evaluate(x, CUBIC_BOX), f.evaluate(x, CUBIC_BOX))


def test_custom_name_survives_round_trip_and_particles_are_sorted_unique() -> None:
    f = Distance([5, 2], [2, 9], name="gate")
    assert feature_from_dict(f.to_dict()).name == "gate"
    assert f.particles == (2, 5, 9)
    assert f.unit == "nm" and Angle([0, 1, 2]).unit == "rad" and Dihedral([0, 1, 2, 3]).unit == "1"


def test_default_names_are_short_and_distinct() -> None:
    assert Position(3, "x").name == "x(3)"
    assert Distance(0, 5).name == "d(0,5)"
    assert Coordination(range(10), range(10, 3010), 0.35).name == "cn([0-9],[10-3009];r0=0.35)"
    assert len(set(feature_names(_features(True)))) == len(FEATURE_IDS)


@pytest.mark.parametrize(
    "build, error, match",
    [
        (
            lambda: Distance([], 1),
            ValueError,
            r"group1 must be a non-empty sequence of particle "
            r"indices\. You supplied \[\]",
        ),
        (
            lambda: Position(0, "w"),
            ValueError,
            r"axis must be one of 'x', 'y', 'z'\. You supplied 'w'",
        ),
        (lambda: Coordination(0, 1, r0=-1), ValueError, r"r0 must be > 0 nm\. You supplied -1"),
        (lambda: Coordination(0, 1, r0=0.3, n=6, m=6), ValueError, r"m must be None or an integer"),
        (lambda: Coordination(0, 0, r0=0.3), ValueError, r"at least one pair"),
        (lambda: Coordination(0, 1, r0=3 * u.kelvin), TypeError, r"r0 must be a length"),
        (
            lambda: Dihedral([0, 1, 2, 3], "tan"),
            ValueError,
            r"function must be one of 'sin', 'cos'",
        ),
        (lambda: Angle([0, 1]), ValueError, r"groups must be a sequence of 3"),
        (lambda: Distance([0, 0], 1), ValueError, r"group1 must be .* without duplicates"),
        (lambda: Distance(-1, 1), ValueError, r"group1 must be .*>= 0"),
        (
            lambda: Distance([0, 1], 2, weights1=[1.0]),
            ValueError,
            r"weights1 must be a sequence of 2",
        ),
        (lambda: Distance(0, 1, periodic="yes"), ValueError, r"periodic must be True or False"),
        (lambda: feature_from_dict({"kind": "rmsd"}), ValueError, r"kind must be one of"),
    ],
)
def test_invalid_arguments_raise_with_clear_message(build, error, match) -> None:
    with pytest.raises(error, match=match):
        build()


def test_out_of_range_particle_index_names_the_feature() -> None:
    with pytest.raises(ValueError, match=r"Feature 'd\(0,12\)' uses particle index 12, .* only 12"):
        Distance(0, 12).evaluate(_random_positions(19))


def test_bad_positions_and_box_shapes_are_rejected() -> None:
    f = Distance(0, 1)
    with pytest.raises(
        ValueError, match=r"positions must have shape .* You supplied shape \(4, 2\)"
    ):
        f.evaluate(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"box_vectors must have shape \(2, 3, 3\) or \(3, 3\)"):
        f.evaluate(np.zeros((2, 4, 3)), np.zeros((3, 3, 3)))
    skewed = np.array([[3.0, 0.5, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 3.0]])
    with pytest.raises(ValueError, match=r"reduced form"):
        f.evaluate(np.zeros((4, 3)), skewed)


def test_duplicate_feature_names_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"feature names must be unique.*'d\(0,1\)'"):
        feature_names([Distance(0, 1), Distance(0, 1, periodic=False)])


def test_misspelt_feature_key_is_named_with_the_allowed_keys():
    from rave.md.features import feature_from_dict

    with pytest.raises(ValueError, match=r"unknown key\(s\) grup2 for a 'distance' feature. "
                                         r"Allowed: kind, group1, group2, "):
        feature_from_dict({"kind": "distance", "group1": [0], "grup2": [1]})
