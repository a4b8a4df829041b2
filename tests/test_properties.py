"""Properties of the featuriser and the bias on random configurations and random boxes
(hypothesis): periodic images, rigid motions, numpy face == OpenMM face, and the OpenMM force
as the slope of the OpenMM energy. One Context per test, reused across examples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_features import N_PARTICLES
from test_features import _features as geometry_features
from test_features_cavity import BOX as CAVITY_BOX
from test_features_cavity import N_PARTICLES as N_CAVITY
from test_features_cavity import ORIGIN as CAVITY_ORIGIN
from test_features_cavity import _context, _energies
from test_features_cavity import _features as cavity_features
from test_features_cavity import _positions as cavity_positions
from test_forces import FD_STEP_NM, FORCE_TOL, _energy, _force

from rave.learn.bias import Bias, BiasGrid
from rave.md.bias_force import bias_force
from rave.md.features import (
    Angle,
    Coordination,
    CylindricalPosition,
    Dihedral,
    Distance,
    Position,
    evaluate_features,
)

#: numpy face against itself after a lattice shift or a rigid motion: float64 round-off of
#: coordinates up to ~10 nm, in the feature's unit
INVARIANCE_TOL = 1e-9
#: numpy face against OpenMM's energy (Reference, double), in the feature's unit: both wrap
#: with the same reduced-form steps, so only round-off of coordinates up to ~10 nm differs
FACE_TOL = 1e-8
#: OpenMM bias energy against Bias.energy, kJ/mol
ENERGY_TOL_KJMOL = 1e-6

#: examples per property: enough to meet several boxes and images, few enough for one core
EXAMPLES = 40
PROPERTY_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None)


# --------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------
def _reduced_box(a_x, b_y, c_z, b_x, c_x, c_y) -> np.ndarray:
    """A box in OpenMM's reduced form from edge lengths and tilts (fractions of a_x, b_y)."""
    return np.array([[a_x, 0.0, 0.0], [b_x * a_x, b_y, 0.0], [c_x * a_x, c_y * b_y, c_z]])


edges = st.floats(2.4, 4.0)
tilts = st.floats(-0.45, 0.45)
#: reduced-form boxes, rectangular or triclinic (|b_x|, |c_x| <= a_x / 2, |c_y| <= b_y / 2)
boxes = st.one_of(
    st.builds(lambda a, b, c: np.diag([a, b, c]), edges, edges, edges),
    st.builds(_reduced_box, edges, edges, edges, tilts, tilts, tilts),
)
#: seeds of positions drawn uniformly over about two box lengths (never exactly on a face)
seeds = st.integers(0, 2**32 - 1)


def _spread(seed: int, n: int = N_PARTICLES, lo: float = -1.0, hi: float = 7.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, (n, 3))


@st.composite
def rotations(draw) -> np.ndarray:
    """Proper rotation matrices from unit quaternions."""
    q = draw(arrays(np.float64, 4, elements=st.floats(-1.0, 1.0)).filter(
        lambda v: np.linalg.norm(v) > 0.1))
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


translations = arrays(np.float64, 3, elements=st.floats(-5.0, 5.0))


def _image_groups(feature) -> list[tuple[int, ...]]:
    """The parts of a feature that may sit in any periodic image on their own: each centroid
    group (groups are whole), each particle of a pair sum or a count."""
    if isinstance(feature, Distance):
        return [feature.group1, feature.group2]
    if isinstance(feature, Angle | Dihedral):
        return list(feature.groups)
    if isinstance(feature, CylindricalPosition):
        return [feature.atoms]
    return [(i,) for i in feature.particles]  # Coordination, CylinderCount


def _shifted(x: np.ndarray, groups, shifts: np.ndarray, box: np.ndarray) -> np.ndarray:
    """x with each group moved by its own integer combination of the box vectors."""
    out = x.copy()
    for group, n in zip(groups, shifts[:len(groups)], strict=True):
        out[list(group)] += n @ box
    return out


def _set_box(context, box: np.ndarray) -> None:
    context.setPeriodicBoxVectors(*[list(row) for row in box])


def _slope(context, x: np.ndarray, direction: np.ndarray, group: int) -> float:
    """Central difference of OpenMM's energy along ``direction``."""
    h = FD_STEP_NM
    return (_energy(context, x + h * direction, group)
            - _energy(context, x - h * direction, group)) / (2 * h)


# --------------------------------------------------------------------------------------------
# periodic features on random boxes
# --------------------------------------------------------------------------------------------
PERIODIC_FEATURES = [f for f in geometry_features(periodic=True) if not isinstance(f, Position)]


@pytest.fixture(scope="module")
def periodic_context():
    return _context([f.openmm_force() for f in PERIODIC_FEATURES], N_PARTICLES, np.eye(3) * 3)


@PROPERTY_SETTINGS
@given(box=boxes, seed=seeds,
       shifts=arrays(np.int64, (N_PARTICLES, 3), elements=st.integers(-2, 2)))
def test_periodic_features_do_not_depend_on_the_image_of_each_group(periodic_context, box, seed,
                                                                    shifts):
    x = _spread(seed)
    expected = evaluate_features(PERIODIC_FEATURES, x, box)[0]
    _set_box(periodic_context, box)
    for k, feature in enumerate(PERIODIC_FEATURES):
        moved = _shifted(x, _image_groups(feature), shifts, box)
        again = feature.evaluate(moved, box)[0]
        assert abs(again - expected[k]) < INVARIANCE_TOL, feature.name
    got = _energies(periodic_context, x, len(PERIODIC_FEATURES))
    np.testing.assert_allclose(got, expected, rtol=0, atol=FACE_TOL)


@PROPERTY_SETTINGS
@given(box=boxes, seed=seeds)
def test_numpy_and_openmm_faces_agree_and_the_force_is_the_slope(periodic_context, box, seed):
    x = _spread(seed)
    _set_box(periodic_context, box)
    expected = evaluate_features(PERIODIC_FEATURES, x, box)[0]
    np.testing.assert_allclose(_energies(periodic_context, x, len(PERIODIC_FEATURES)), expected,
                               rtol=0, atol=FACE_TOL)
    direction = np.random.default_rng(seed + 1).normal(size=x.shape)
    direction /= np.linalg.norm(direction)
    for k, feature in enumerate(PERIODIC_FEATURES):
        if isinstance(feature, Coordination) and feature.m not in (None, 2 * feature.n):
            continue  # its Taylor window near r0 joins with a 1e-9 step: no central difference
        force = _force(periodic_context, x, k)
        slope = _slope(periodic_context, x, direction, k)
        assert abs(slope + np.sum(force * direction)) < FORCE_TOL, feature.name


@pytest.fixture(scope="module")
def cavity_context():
    features = cavity_features()
    return features, _context([f.openmm_force() for f in features], N_CAVITY, CAVITY_BOX)


@PROPERTY_SETTINGS
@given(seed=seeds, shifts=arrays(np.int64, (N_CAVITY, 3), elements=st.integers(-2, 2)))
def test_cavity_features_do_not_depend_on_the_image_of_each_group(cavity_context, seed, shifts):
    features, context = cavity_context
    x = cavity_positions(seed)
    expected = evaluate_features(features, x, CAVITY_BOX)[0]
    for k, feature in enumerate(features):
        moved = _shifted(x, _image_groups(feature), shifts, CAVITY_BOX)
        assert abs(feature.evaluate(moved, CAVITY_BOX)[0] - expected[k]) < INVARIANCE_TOL
        got = _energies(context, moved, len(features))[k]
        assert abs(got - expected[k]) < FACE_TOL, feature.name


# --------------------------------------------------------------------------------------------
# rigid motions without a box
# --------------------------------------------------------------------------------------------
RIGID_FEATURES = [f for f in geometry_features(periodic=False) if not isinstance(f, Position)]
POSITIONS = [f for f in geometry_features(periodic=False) if isinstance(f, Position)]


@pytest.fixture(scope="module")
def rigid_context():
    features = RIGID_FEATURES + POSITIONS
    return _context([f.openmm_force() for f in features], N_PARTICLES, np.eye(3) * 3)


@PROPERTY_SETTINGS
@given(seed=seeds, rotation=rotations(), shift=translations)
def test_rigid_motions_leave_distances_angles_dihedrals_and_counts_unchanged(
        rigid_context, seed, rotation, shift):
    x = _spread(seed, lo=-1.5, hi=1.5)
    moved = x @ rotation.T + shift
    expected = evaluate_features(RIGID_FEATURES, x)[0]
    np.testing.assert_allclose(evaluate_features(RIGID_FEATURES, moved)[0], expected, rtol=0,
                               atol=INVARIANCE_TOL)
    got = _energies(rigid_context, moved, len(RIGID_FEATURES) + len(POSITIONS))
    np.testing.assert_allclose(got[:len(RIGID_FEATURES)], expected, rtol=0, atol=FACE_TOL)
    # a Position is not invariant: it moves with the centroid it follows
    for k, feature in enumerate(POSITIONS):
        w = np.ones(len(feature.atoms)) if feature.weights is None else np.array(feature.weights)
        centroid = (w / w.sum()) @ moved[list(feature.atoms)]
        axis = "xyz".index(feature.axis)
        assert abs(feature.evaluate(moved)[0] - centroid[axis]) < INVARIANCE_TOL
        assert abs(got[len(RIGID_FEATURES) + k] - centroid[axis]) < FACE_TOL


@PROPERTY_SETTINGS
@given(seed=seeds, angle=st.floats(-np.pi, np.pi))
def test_turning_about_the_cylinder_axis_leaves_z_rho_and_the_count_unchanged(seed, angle):
    features = cavity_features(None)
    x = cavity_positions(seed)
    cos, sin = np.cos(angle), np.sin(angle)
    turn = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    origin = np.asarray(CAVITY_ORIGIN)
    moved = (x - origin) @ turn.T + origin
    np.testing.assert_allclose(evaluate_features(features, moved)[0],
                               evaluate_features(features, x)[0], rtol=0, atol=INVARIANCE_TOL)


# --------------------------------------------------------------------------------------------
# the bias on random configurations and boxes
# --------------------------------------------------------------------------------------------
BIAS_PATHS = {
    "compound": [Distance(0, 5), Angle((1, 3, 5)), Dihedral((0, 1, 2, 3)),
                 Dihedral((4, 1, 2, 3), "sin")],
    "cv": [Distance([0, 1, 2], [3, 4]), Angle([[0, 6], 1, [2, 3, 8]]),
           Dihedral([[0, 4], 1, [2, 10], 3], "sin"),
           Coordination([0, 1], range(2, N_PARTICLES), r0=0.9), Position([0, 4, 7], "y")],
}


def _bias(features) -> Bias:
    """A sloped bias over the middle 70 % of chi of random frames (fixed seeds, a 3 nm box):
    the examples fall inside the grid and beyond both of its edges."""
    c = np.linspace(1.0, -0.5, len(features))
    c /= np.linalg.norm(c)
    frames = np.stack([_spread(seed, lo=-0.5, hi=3.5) for seed in range(100)])
    lo, hi = np.quantile(evaluate_features(features, frames, np.eye(3) * 3) @ c, [0.15, 0.85])
    grid = np.linspace(lo, hi, 61)
    return Bias(c, BiasGrid(lo, hi, 3.0 * np.sin(3.0 * grid) + 4.0 * grid))


@pytest.fixture(scope="module", params=sorted(BIAS_PATHS))
def bias_context(request):
    features = BIAS_PATHS[request.param]
    bias = _bias(features)
    force = bias_force(features, bias, force_group=0)
    return features, bias, _context([force], N_PARTICLES, np.eye(3) * 3)


@PROPERTY_SETTINGS
@given(box=boxes, seed=seeds)
def test_bias_energy_is_numpys_and_its_force_is_its_slope(bias_context, box, seed):
    features, bias, context = bias_context
    x = _spread(seed, lo=-0.5, hi=3.5)
    _set_box(context, box)
    values = evaluate_features(features, x, box)
    energy = _energies(context, x, 1)[0]
    assert abs(energy - bias.energy(values)[0]) < ENERGY_TOL_KJMOL
    direction = np.random.default_rng(seed + 2).normal(size=x.shape)
    direction /= np.linalg.norm(direction)
    force = _force(context, x, 0)
    assert abs(_slope(context, x, direction, 0) + np.sum(force * direction)) < FORCE_TOL
    # the numpy face's slope: V'(chi) times the slope of chi along the direction
    h = FD_STEP_NM
    chi_slope = (bias.chi(evaluate_features(features, x + h * direction, box))
                 - bias.chi(evaluate_features(features, x - h * direction, box)))[0] / (2 * h)
    expected = float(bias.grid.derivative(bias.chi(values)[0])) * chi_slope
    assert abs(np.sum(force * direction) + expected) < FORCE_TOL

