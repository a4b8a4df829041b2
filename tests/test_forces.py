"""Forces of every order parameter and of every bias path: OpenMM's force (Reference platform,
double precision) against central differences of OpenMM's own energy and against the gradient
of the numpy face of the same feature or bias, on random configurations with fixed seeds.

The paths: each feature kind's own force (Position, Distance, Angle, Dihedral sin/cos,
Coordination, the cavity's z, rho and n_w, ForceFeature with a CustomCVForce and with cvpack
CVs); the static bias as one ``CustomCompoundBondForce`` of single-atom terms and as a
``CustomCVForce`` over the features' forces, inside its grid, at its edges and beyond them (where
the energy holds the edge value, so the force is zero); the OPES bias along chi.
"""

from __future__ import annotations

from collections.abc import Callable

import cvpack
import numpy as np
import openmm
import pytest
import test_cvpack
from openmm import unit as u
from scipy.interpolate import CubicSpline
from test_bias import _context as position_bias_context
from test_cvpack import _frames, _rg_numpy, _rmsd_numpy
from test_features import (
    CUBIC_BOX,
    FEATURE_IDS,
    TRICLINIC_BOX,
    _random_positions,
)
from test_features import N_PARTICLES as N_GEOMETRY
from test_features import _features as geometry_features
from test_features_cavity import BOX as CAVITY_BOX
from test_features_cavity import BOX_LENGTHS as CAVITY_BOX_LENGTHS
from test_features_cavity import N_PARTICLES as N_CAVITY
from test_features_cavity import ORIGIN as CAVITY_ORIGIN
from test_features_cavity import _context
from test_features_cavity import _features as cavity_features
from test_features_cavity import _positions as cavity_positions
from test_force_feature import ATOMS as RG_ATOMS
from test_force_feature import N_PARTICLES as N_RG
from test_force_feature import _positions as rg_positions
from test_force_feature import _radius_of_gyration, _radius_of_gyration_force

from rave.learn.bias import Bias, BiasGrid
from rave.md.bias_force import bias_force, update_bias_force
from rave.md.features import (
    Angle,
    Dihedral,
    Distance,
    ForceFeature,
    Position,
    evaluate_features,
)
from rave.md.opes import OPESBias, OPESSpec

#: the alanine dipeptide of the cvpack tests (PDB positions, System, heavy atoms): a fixture
ala = test_cvpack.ala

#: step of the central differences, nm
FD_STEP_NM = 1e-5
#: OpenMM's force against a central difference (of OpenMM's energy or of the numpy face), in
#: kJ/mol/nm for a bias and 1/nm for a feature (its value read as kJ/mol). A central difference
#: errs by h^2/6 |E'''| + eps |E| / h: with h = 1e-5 nm, third derivatives below 1e4 kJ/mol/nm^3
#: (the steepest here: dihedrals of atoms 0.2 nm apart, switching functions of width 0.3 nm)
#: and |E| < 100 kJ/mol that is < 2e-7 + 1e-9; the largest difference measured over these
#: cases is 2.2e-7 (a dihedral's sine in the cubic box).
FORCE_TOL = 1e-6
#: a force the test would not tell from zero must not pass for an agreement: 1000 FORCE_TOL,
#: kJ/mol/nm (1/nm)
NONTRIVIAL_FORCE = 1e-3
#: spacing of the test biases' grids, units of chi
GRID_SPACING = 0.05
#: beyond the grid the force is zero up to round-off of OpenMM's double sums, kJ/mol/nm
ZERO_FORCE_TOL = 1e-12


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _energy(context: openmm.Context, x: np.ndarray, group: int) -> float:
    context.setPositions(x)
    energy = context.getState(getEnergy=True, groups={group}).getPotentialEnergy()
    return energy.value_in_unit(u.kilojoule_per_mole)


def _force(context: openmm.Context, x: np.ndarray, group: int) -> np.ndarray:
    context.setPositions(x)
    forces = context.getState(getForces=True, groups={group}).getForces(asNumpy=True)
    return np.asarray(forces.value_in_unit(u.kilojoule_per_mole / u.nanometer))


def _displaced(x: np.ndarray, atoms, h: float = FD_STEP_NM) -> np.ndarray:
    """Frames of ``x`` with one coordinate of one of ``atoms`` moved by +h, then -h, in turn."""
    frames = np.repeat(x[None], 6 * len(atoms), axis=0)
    k = 0
    for a in atoms:
        for d in range(3):
            frames[k, a, d] += h
            frames[k + 1, a, d] -= h
            k += 2
    return frames


def central_gradient(values, x: np.ndarray, atoms, h: float = FD_STEP_NM) -> np.ndarray:
    """Central-difference gradient of ``values`` (frames (m, n, 3) -> (m,) or (m, d)) at ``x``
    with respect to the coordinates of ``atoms``; zero for the other particles.

    Returns shape (n, 3) or, for (m, d) values, (d, n, 3).
    """
    atoms = list(atoms)
    v = np.asarray(values(_displaced(x, atoms, h)), dtype=float)
    diff = (v[0::2] - v[1::2]) / (2 * h)  # (3 k,) or (3 k, d)
    grad = np.zeros((*diff.shape[1:], *x.shape))
    moved = np.moveaxis(diff.reshape(len(atoms), 3, *diff.shape[1:]), (0, 1), (-2, -1))
    grad[..., atoms, :] = moved
    return grad


def openmm_gradient(context: openmm.Context, x: np.ndarray, atoms, group: int) -> np.ndarray:
    """Central differences of OpenMM's energy of ``group``, kJ/mol/nm."""
    return central_gradient(
        lambda frames: [_energy(context, f, group) for f in frames], x, atoms)


def assert_force_matches(force: np.ndarray, gradient: np.ndarray, what: str) -> None:
    """OpenMM's force is minus the gradient, component by component, within FORCE_TOL."""
    worst = float(np.max(np.abs(force + gradient)))
    assert worst < FORCE_TOL, (f"{what}: max |F + grad E| = {worst:.3g} "
                               f"(F max {np.abs(force).max():.3g})")


def _with_box(forces, n_particles: int, box: np.ndarray | None) -> openmm.Context:
    """A Reference Context of ``forces`` in groups 0, 1, ... (the cavity tests' helper), with
    ``box`` as its periodic box (any box when no force is periodic)."""
    return _context(forces, n_particles=n_particles, box=CAVITY_BOX if box is None else box)


def _sloped_grid(chi_lo: float, chi_hi: float) -> BiasGrid:
    """A bias grid with bumps and a slope at both ends, V = 3 sin(3 chi) + 4 chi kJ/mol, on
    points at most GRID_SPACING apart (its third derivative stays near 3 * 3^3 = 81)."""
    n_points = int(np.ceil((chi_hi - chi_lo) / GRID_SPACING)) + 1
    grid = np.linspace(chi_lo, chi_hi, n_points)
    return BiasGrid(chi_lo, chi_hi, 3.0 * np.sin(3.0 * grid) + 4.0 * grid)


# --------------------------------------------------------------------------------------------
# each feature kind's own force
# --------------------------------------------------------------------------------------------
GEOMETRY_CASES = {"no_box": None, "cubic": CUBIC_BOX, "triclinic": TRICLINIC_BOX}


@pytest.mark.parametrize("case", sorted(GEOMETRY_CASES))
@pytest.mark.parametrize("index", range(len(FEATURE_IDS)), ids=FEATURE_IDS)
def test_feature_force_is_minus_the_gradient_of_both_faces(index: int, case: str) -> None:
    box = GEOMETRY_CASES[case]
    feature = geometry_features(periodic=box is not None)[index]
    context = _with_box([feature.openmm_force()], N_GEOMETRY, box)
    for seed in (31, 32):
        x = _random_positions(seed)
        force = _force(context, x, 0)
        assert np.abs(force).max() > NONTRIVIAL_FORCE
        assert_force_matches(force, openmm_gradient(context, x, feature.particles, 0),
                             f"{feature.name} {case}: OpenMM energy")
        numpy_grad = central_gradient(lambda f: feature.evaluate(f, box), x, feature.particles)
        assert_force_matches(force, numpy_grad, f"{feature.name} {case}: numpy face")


def _cavity_configuration(seed: int, wrapped: bool) -> np.ndarray:
    """Cavity-test positions with three counted particles inside the softened boundaries of
    the cylinder (radius 1, z in [-0.6, 0.4], width 0.3), moved by box vectors when wrapped."""
    x = cavity_positions(seed)
    near = np.array([[0.95, 0.1, 0.0], [0.2, 0.3, 0.38], [0.1, -0.2, -0.62]])
    shifts = np.array([[1, 0, 0], [0, -1, 2], [-1, 1, 0]]) if wrapped else np.zeros((3, 3))
    x[3:6] = np.asarray(CAVITY_ORIGIN) + near + shifts * np.asarray(CAVITY_BOX_LENGTHS)
    return x


@pytest.mark.parametrize("wrapped", [True, False], ids=["box", "no_box"])
def test_cavity_feature_forces_are_minus_the_gradient_of_both_faces(wrapped: bool) -> None:
    features = cavity_features(CAVITY_BOX_LENGTHS if wrapped else None)
    context = _with_box([f.openmm_force() for f in features], N_CAVITY, CAVITY_BOX)
    for seed in (41, 42):
        x = _cavity_configuration(seed, wrapped)
        for group, feature in enumerate(features):
            force = _force(context, x, group)
            assert np.abs(force).max() > NONTRIVIAL_FORCE, feature.name
            assert_force_matches(force, openmm_gradient(context, x, feature.particles, group),
                                 f"{feature.name}: OpenMM energy")
            numpy_grad = central_gradient(lambda f, ft=feature: ft.evaluate(f, CAVITY_BOX), x,
                                          feature.particles)
            assert_force_matches(force, numpy_grad, f"{feature.name}: numpy face")


def test_force_feature_force_is_minus_the_gradient_of_the_cv_it_computes() -> None:
    feature = ForceFeature(_radius_of_gyration_force(RG_ATOMS), RG_ATOMS, unit="nm")
    context = _with_box([feature.openmm_force()], N_RG, None)
    for x in rg_positions(51, n_frames=2):
        force = _force(context, x, 0)
        assert np.abs(force).max() > NONTRIVIAL_FORCE
        assert_force_matches(force, openmm_gradient(context, x, RG_ATOMS, 0), "Rg: OpenMM")
        assert_force_matches(force, central_gradient(feature.evaluate, x, RG_ATOMS),
                             "Rg: the feature's evaluate")
        independent = central_gradient(lambda f: _radius_of_gyration(f, RG_ATOMS), x, RG_ATOMS)
        assert_force_matches(force, independent, "Rg: numpy")


def _cvpack_features(ala) -> tuple[list[ForceFeature], Callable]:
    heavy, reference = ala["heavy"], ala["positions"]
    features = [ForceFeature(cvpack.RadiusOfGyration(heavy), heavy, name="rg"),
                ForceFeature(cvpack.RMSD(reference, heavy, len(reference)), heavy, name="rmsd")]

    def independent(x):  # numpy, float64, no OpenMM
        return np.stack([_rg_numpy(x, heavy), _rmsd_numpy(x, reference, heavy)], axis=1)

    return features, independent


def test_cvpack_feature_forces_are_minus_the_gradient_of_their_numpy_definition(ala) -> None:
    features, independent = _cvpack_features(ala)
    heavy, n = ala["heavy"], len(ala["positions"])
    context = _with_box([f.openmm_force() for f in features], n, None)
    for x in _frames(ala["positions"], seed=52, n_frames=2, noise_nm=0.03):
        x = x.astype(float)
        numpy_grads = central_gradient(independent, x, heavy)
        for group, feature in enumerate(features):
            force = _force(context, x, group)
            assert np.abs(force).max() > NONTRIVIAL_FORCE, feature.name
            assert_force_matches(force, openmm_gradient(context, x, heavy, group),
                                 f"{feature.name}: OpenMM energy")
            assert_force_matches(force, numpy_grads[group], f"{feature.name}: numpy")


# --------------------------------------------------------------------------------------------
# the static bias along chi, on both force paths
# --------------------------------------------------------------------------------------------
def _numpy_bias_gradient(bias: Bias, features, x, box, values=None) -> np.ndarray:
    """grad V = V'(chi) sum_i c_i grad s_i: the spline's derivative (numpy) and central
    differences of the features' numpy faces."""
    if values is None:
        def values(frames):
            return evaluate_features(features, frames, box)
    s = np.asarray(values(x[None]))[0]
    grads = central_gradient(values, x, sorted(set().union(*(f.particles for f in features))))
    return float(bias.grid.derivative(s @ bias.coefficients)) * np.tensordot(
        bias.coefficients, grads, axes=1)


def _bias_on(features, frames, box, values=None):
    """A bias whose chi = c . s spans the frames' chi with room on both sides."""
    if values is None:
        def values(f):
            return evaluate_features(features, f, box)
    c = np.linspace(1.0, -0.6, len(features))
    c /= np.linalg.norm(c)
    chi = np.asarray(values(frames)) @ c
    margin = 0.3 * np.ptp(chi) + 0.1
    return Bias(c, _sloped_grid(chi.min() - margin, chi.max() + margin)), values


def _check_bias_path(features, frames, box, n_particles, force_type, values=None) -> None:
    """Build the bias force with a zero bias, update it in place to a sloped one (as a campaign
    does between rounds) and compare its forces with both gradients at every frame."""
    bias, values = _bias_on(features, frames, box, values)
    zero = Bias(np.zeros(len(features)), BiasGrid.zero())
    force = bias_force(features, zero, force_group=0)
    assert type(force).__name__ == force_type
    context = _with_box([force], n_particles, box)
    update_bias_force(force, context, bias)
    atoms = sorted(set().union(*(f.particles for f in features)))
    for x in frames:
        got = _force(context, x, 0)
        assert np.abs(got).max() > NONTRIVIAL_FORCE
        assert_force_matches(got, openmm_gradient(context, x, atoms, 0), "bias: OpenMM energy")
        assert_force_matches(got, _numpy_bias_gradient(bias, features, x, box, values),
                             "bias: numpy V'(chi) c . grad s")


BIAS_PATHS = {
    # single atoms: one CustomCompoundBondForce
    "compound_periodic": (lambda: [Distance(0, 5), Angle((1, 3, 5)), Dihedral((0, 1, 2, 3)),
                                   Dihedral((4, 1, 2, 3), "sin")],
                          TRICLINIC_BOX, "CustomCompoundBondForce"),
    "compound_nonperiodic": (lambda: [Position(3, "x"), Position(5, "z"),
                                      Distance(3, 7, periodic=False),
                                      Angle((1, 3, 5), periodic=False),
                                      Dihedral((0, 1, 2, 3), "sin", periodic=False)],
                             None, "CustomCompoundBondForce"),
    # centroids, pair sums and a position beside periodic terms: a CustomCVForce
    "cv_geometry": (lambda: [f for f in geometry_features(True) if f.compound_term(
        lambda i: i + 1) is None] + [Position(3, "x")], CUBIC_BOX, "CustomCVForce"),
}


@pytest.mark.parametrize("path", sorted(BIAS_PATHS))
def test_bias_force_is_minus_the_gradient_of_both_faces(path: str) -> None:
    build, box, force_type = BIAS_PATHS[path]
    frames = np.stack([_random_positions(seed) for seed in (61, 62, 63)])
    _check_bias_path(build(), frames, box, N_GEOMETRY, force_type)


def test_bias_force_over_cavity_features_is_minus_the_gradient_of_both_faces() -> None:
    frames = np.stack([_cavity_configuration(seed, True) for seed in (64, 65)])
    _check_bias_path(cavity_features(), frames, CAVITY_BOX, N_CAVITY, "CustomCVForce")


def test_bias_force_over_force_features_is_minus_the_gradient_of_both_faces(ala) -> None:
    features, independent = _cvpack_features(ala)
    rg = ForceFeature(_radius_of_gyration_force(ala["heavy"]), ala["heavy"], name="rg_cv")
    features = [*features, rg, Distance(0, 10, periodic=False)]
    heavy = ala["heavy"]

    def values(x):  # numpy, float64, no OpenMM
        d = np.linalg.norm(x[:, 10] - x[:, 0], axis=1)
        return np.column_stack([independent(x), _rg_numpy(x, heavy), d])

    frames = _frames(ala["positions"], seed=66, n_frames=2, noise_nm=0.03).astype(float)
    _check_bias_path(features, frames, None, len(ala["positions"]), "CustomCVForce", values)


# --------------------------------------------------------------------------------------------
# the grid's edges: inside the force is the spline's slope, beyond it the energy is held
# --------------------------------------------------------------------------------------------
#: how far inside the grid "just inside" is, in grid widths: far above the clamp's pull-in
#: (1e-9 widths) and the FD step (3e-6 widths), far below the grid spacing (1/60)
JUST_INSIDE_WIDTHS = 1e-4
#: step (units of chi) of the one-sided differences at the edges, >> the clamp's pull-in
ONE_SIDED_STEP = 1e-3
#: a one-sided difference at an edge errs by h/2 |V''| (V'' is 0 at a natural spline's end and
#: < 0.1 kJ/mol per chi^2 one step in) + |V'| pull-in / h (3.5e-9 / 1e-3 of |V'| < 13 kJ/mol per
#: chi) + 2 eps |V| / h: < 1e-4, kJ/mol per unit of chi
ONE_SIDED_TOL = 1e-3


def test_bias_force_inside_at_and_beyond_the_grid_edges() -> None:
    grid = _sloped_grid(-1.5, 2.0)
    c = np.array([np.cos(0.6), np.sin(0.6)])
    bias = Bias(c, grid)
    context, _ = position_bias_context(bias)  # Position x, y of particle 0 in group 5
    # the spline through the grid values, independent of rave's clamp
    spline = CubicSpline(grid.grid, grid.values_kjmol, bc_type="natural")
    width = grid.chi_max - grid.chi_min
    inside = grid.chi_min + width * np.array([JUST_INSIDE_WIDTHS, 0.05, 0.31, 0.5, 0.77, 0.95,
                                              1 - JUST_INSIDE_WIDTHS])
    edges = np.array([grid.chi_min, grid.chi_max])
    beyond = np.array([grid.chi_min - 0.3, grid.chi_min - 5.0, grid.chi_max + 0.3,
                       grid.chi_max + 7.0])
    perpendicular = np.array([-c[1], c[0]])

    def position(chi: float) -> np.ndarray:
        return np.array([[*(chi * c + 0.37 * perpendicular), 0.25]])

    for chi in inside:
        x = position(chi)
        got = _force(context, x, 5)
        expected = -spline(chi, 1) * c
        assert abs(spline(chi, 1)) > NONTRIVIAL_FORCE
        assert_force_matches(got, -np.array([[*expected, 0.0]]), f"chi={chi}: spline slope")
        assert_force_matches(got, openmm_gradient(context, x, [0], 5), f"chi={chi}: OpenMM")
        assert_force_matches(got, np.array([[*(grid.derivative(chi) * c), 0.0]]),
                             f"chi={chi}: numpy face")
    h = ONE_SIDED_STEP
    for chi, outward in zip(edges, (-1.0, 1.0), strict=True):
        x = position(chi)
        got = _force(context, x, 5)
        # the clamp starts at the edge: the outward one-sided difference is zero, the inward
        # one is the spline's slope there, and the force is the outward (clamped) one
        e0 = _energy(context, x, 5)
        out = (_energy(context, position(chi + outward * h), 5) - e0) / (outward * h)
        inward = (_energy(context, position(chi - outward * h), 5) - e0) / (-outward * h)
        assert abs(out) < FORCE_TOL, (chi, out)
        assert abs(inward - spline(chi, 1)) < ONE_SIDED_TOL, (chi, inward, spline(chi, 1))
        assert np.abs(got).max() < ZERO_FORCE_TOL, (chi, got)
        assert grid.derivative(chi) == 0.0
    for chi in beyond:
        x = position(chi)
        got = _force(context, x, 5)
        assert np.abs(got).max() < ZERO_FORCE_TOL, (chi, got)
        assert np.abs(openmm_gradient(context, x, [0], 5)).max() < FORCE_TOL, chi
        assert grid.derivative(chi) == 0.0
        # held at the edge value, not dropped to zero
        edge = grid.chi_min if chi < grid.chi_min else grid.chi_max
        assert abs(_energy(context, x, 5) - spline(edge)) < 1e-6, chi


# --------------------------------------------------------------------------------------------
# the OPES bias along chi
# --------------------------------------------------------------------------------------------
OPES_PATHS = {
    "compound": (lambda: [Distance(0, 1, periodic=False), Angle((0, 1, 2), periodic=False)],
                 "CustomCompoundBondForce"),
    "cv": (lambda: [Distance([0, 3], 1, periodic=False), Angle((0, 1, 2), periodic=False)],
           "CustomCVForce"),
}
#: kernels deposited on chi (units of chi), each with variance 0.04
OPES_KERNELS = (0.6, 1.1, 1.3, 2.0)


@pytest.mark.parametrize("path", sorted(OPES_PATHS))
def test_opes_force_is_minus_the_gradient_of_both_faces(path: str) -> None:
    build, force_type = OPES_PATHS[path]
    features = build()
    system = openmm.System()
    for i in range(4):
        system.addParticle(float(i + 1))
    spec = OPESSpec((0.8, 0.6), -0.5, 3.5, 101, 20.0, 500, 100)
    opes = OPESBias(system, features, spec, 300.0)
    chi_force = opes.opes._force.getCollectiveVariable(0)
    assert type(chi_force).__name__ == force_type
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    for chi in OPES_KERNELS:
        assert opes.opes.addKernel(np.array([chi]), 0.0, np.array([0.04]))
    opes.opes.updateContext(context)
    grid = BiasGrid(spec.chi_min, spec.chi_max, opes.values[-1])
    c = np.asarray(spec.coefficients)
    rng = np.random.default_rng(71)
    checked = {"inside": 0, "beyond": 0}
    while min(checked.values()) < 3:
        x = rng.normal(0.0, 0.8, (4, 3))
        s = evaluate_features(features, x)[0]
        chi = float(s @ c)
        lo, hi = grid.clamp_bounds
        where = "inside" if lo + 0.02 < chi < hi - 0.02 else (
            "beyond" if chi < lo - 0.02 or chi > hi + 0.02 else None)
        if where is None or checked[where] >= 3:
            continue
        checked[where] += 1
        got = _force(context, x, opes.force_group)
        energy = _energy(context, x, opes.force_group) - opes.energy_offset_kjmol
        assert abs(energy - float(grid(chi))) < 1e-6, (where, chi)
        assert_force_matches(got, openmm_gradient(context, x, range(4), opes.force_group),
                             f"OPES {where} chi={chi:.3f}: OpenMM energy")
        numpy_grad = float(grid.derivative(chi)) * np.tensordot(
            c, central_gradient(lambda f: evaluate_features(features, f), x, range(4)), axes=1)
        assert_force_matches(got, numpy_grad, f"OPES {where} chi={chi:.3f}: numpy face")
        if where == "inside":
            assert np.abs(got).max() > NONTRIVIAL_FORCE, chi
        else:
            assert np.abs(got).max() < ZERO_FORCE_TOL, chi
