"""The bias: grid construction, numpy spline == OpenMM energy, clamping, in-place updates."""

import math

import numpy as np
import openmm
import pytest

from rave.learn.bias import Bias, BiasGrid, build_bias_grid
from rave.md.bias_force import bias_force, update_bias_force
from rave.md.features import Position

#: numpy vs OpenMM Reference (double precision) bias energy, kJ/mol
ENERGY_TOL_KJMOL = 1e-6
KT = 2.494  # kJ/mol, about 300 K


def _context(bias: Bias, n_particles: int = 1):
    system = openmm.System()
    for _ in range(n_particles):
        system.addParticle(1.0)
    features = [Position(0, "x", name="x"), Position(0, "y", name="y")]
    force = bias_force(features, bias, force_group=5)
    system.addForce(force)
    integrator = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context._keep_alive = (system, integrator)  # OpenMM aborts if the integrator is collected
    return context, force


def _openmm_energies(context, points: np.ndarray) -> np.ndarray:
    energies = []
    for x, y in points:
        context.setPositions([[x, y, 0.0]])
        state = context.getState(getEnergy=True, groups={5})
        energies.append(state.getPotentialEnergy().value_in_unit(
            openmm.unit.kilojoule_per_mole))
    return np.array(energies)


def _example_bias(seed: int = 0) -> Bias:
    rng = np.random.default_rng(seed)
    chi = np.concatenate([rng.normal(-1.0, 0.3, 4000), rng.normal(0.8, 0.2, 1500)])
    grid = build_bias_grid(chi, None, KT, n_points=64, cap_kT=6.0)
    c = np.array([np.cos(0.6), np.sin(0.6)])
    return Bias(c, grid)


def test_numpy_bias_equals_openmm_inside_at_and_beyond_grid_edges():
    bias = _example_bias()
    context, _ = _context(bias)
    c = bias.coefficients
    lo, hi = bias.grid.chi_min, bias.grid.chi_max
    # chi values inside, exactly at both edges, and far beyond both edges
    chis = np.concatenate([np.linspace(lo, hi, 37), [lo, hi, lo - 0.5, hi + 0.5, lo - 5, hi + 7]])
    perpendicular = np.array([-c[1], c[0]])
    offsets = np.random.default_rng(1).normal(0, 0.4, len(chis))
    points = chis[:, None] * c + offsets[:, None] * perpendicular
    expected = bias.energy(points)
    np.testing.assert_allclose(_openmm_energies(context, points), expected, atol=ENERGY_TOL_KJMOL)


def test_bias_is_clamped_outside_grid():
    bias = _example_bias()
    grid = bias.grid
    assert grid(grid.chi_min - 3.0) == pytest.approx(grid.values_kjmol[0], abs=1e-12)
    assert grid(grid.chi_max + 3.0) == pytest.approx(grid.values_kjmol[-1], abs=1e-12)
    # the energy never falls to zero past the edges (OpenMM's table alone would)
    context, _ = _context(bias)
    far = np.array([[100.0 * bias.coefficients[0], 100.0 * bias.coefficients[1]]])
    assert _openmm_energies(context, far)[0] == pytest.approx(grid.values_kjmol[-1],
                                                              abs=ENERGY_TOL_KJMOL)
    assert grid.values_kjmol[-1] < -1.0  # the padded edge sits at the cap, far from zero


def test_openmm_force_matches_numpy_derivative():
    bias = _example_bias()
    context, _ = _context(bias)
    c = bias.coefficients
    for chi in np.linspace(bias.grid.chi_min + 0.05, bias.grid.chi_max - 0.05, 9):
        context.setPositions([[chi * c[0], chi * c[1], 0.0]])
        force = context.getState(getForces=True, groups={5}).getForces(asNumpy=True)._value[0]
        expected = -bias.grid.derivative(chi) * c
        np.testing.assert_allclose(force[:2], expected, atol=1e-5)


def test_built_bias_is_kT_ln_p_shifted_to_zero_and_capped():
    rng = np.random.default_rng(3)
    chi = rng.normal(0.0, 1.0, 200_000)
    cap = 5.0
    grid = build_bias_grid(chi, None, KT, n_points=101, padding=0.25, cap_kT=cap,
                           smoothing_bins=0.0)
    assert grid.values_kjmol.max() == pytest.approx(0.0, abs=1e-12)
    assert grid.values_kjmol.min() >= -cap * KT - 1e-9
    # in the well-sampled core V/kT = ln p(chi) - ln p(0) = -chi^2/2 for a unit Gaussian
    core = np.abs(grid.grid) < 1.5
    exact = -0.5 * grid.grid[core] ** 2
    measured = grid.values_kjmol[core] / KT
    # tolerance: histogram noise of 200k samples in bins of ~0.06 and the binning bias
    np.testing.assert_allclose(measured - measured.max(), exact - exact.max(), atol=0.12)
    # the padded region beyond the samples is at the cap
    assert grid.values_kjmol[0] == pytest.approx(-cap * KT)
    assert grid.chi_min < chi.min() and grid.chi_max > chi.max()


def test_log_weights_reweight_the_bias():
    # frames uniform in [0, 1], weighted by exp(-chi / 0.2): the bias must follow ln w
    rng = np.random.default_rng(4)
    chi = rng.uniform(0, 1, 400_000)
    log_w = -chi / 0.2
    grid = build_bias_grid(chi, log_w, KT, n_points=51, padding=0.0, cap_kT=20,
                           smoothing_bins=0.0)
    inner = slice(3, -3)
    slope = np.polyfit(grid.grid[inner], grid.values_kjmol[inner] / KT, 1)[0]
    assert slope == pytest.approx(-1 / 0.2, rel=0.03)


def test_damping_scales_the_bias():
    rng = np.random.default_rng(5)
    chi = rng.normal(0.0, 1.0, 100_000)
    full = build_bias_grid(chi, None, KT, cap_kT=100, smoothing_bins=0, padding=0)
    half = build_bias_grid(chi, None, KT, cap_kT=100, smoothing_bins=0, padding=0, damping=0.5)
    sampled = full.values_kjmol > -100 * KT + 1e-6  # empty bins sit at the cap in both
    assert sampled.sum() > 100
    np.testing.assert_allclose(half.values_kjmol[sampled], 0.5 * full.values_kjmol[sampled],
                               atol=1e-9)
    assert np.all(half.values_kjmol[~sampled] == pytest.approx(-100 * KT))


def test_update_in_place_changes_openmm_energy_without_new_context():
    first = _example_bias(0)
    context, force = _context(first)
    rng = np.random.default_rng(7)
    second = Bias(np.array([0.0, 1.0]),
                  build_bias_grid(rng.normal(0.3, 0.5, 3000), None, KT, n_points=90))
    update_bias_force(force, context, second)
    points = rng.normal(0, 1.0, (12, 2))
    np.testing.assert_allclose(_openmm_energies(context, points), second.energy(points),
                               atol=ENERGY_TOL_KJMOL)


def test_bias_round_trips_through_dict():
    bias = _example_bias()
    again = Bias.from_dict(bias.to_dict())
    x = np.linspace(-4, 4, 50)
    np.testing.assert_array_equal(again.grid(x), bias.grid(x))
    np.testing.assert_array_equal(again.coefficients, bias.coefficients)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chi": np.array([])}, "chi is empty"),
        ({"chi": np.array([1.0, np.nan])}, "NaN/inf"),
        ({"chi": np.ones(10)}, "no spread"),
        ({"damping": 1.5}, r"damping must be in \(0, 1\]"),
        ({"cap_kT": 0.0}, "cap_kT must be > 0"),
        ({"kT": 0.0}, r"kT must be finite and > 0 \(kJ/mol\)"),
        ({"log_weights": np.zeros(3)},
         r"log_weights must have shape \(10,\), one per frame of chi"),
        ({"n_points": 7}, "n_points must be >= 8"),
        ({"damping": 0.0}, r"damping must be in \(0, 1\]"),
        ({"chi": np.array([0.0, 1e-12])}, "no spread"),
        ({"chi": np.array([1e6, 1e6 + 1e-7])}, "no spread"),
    ],
)
def test_bad_bias_input_is_refused(kwargs, message):
    args = {"chi": np.linspace(0, 1, 10), "log_weights": None, "kT": KT}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        build_bias_grid(args.pop("chi"), args.pop("log_weights"), args.pop("kT"), **args)


def test_grid_refuses_bad_values():
    with pytest.raises(ValueError, match="chi_max must be > chi_min"):
        BiasGrid(1.0, 0.0, np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        BiasGrid(0.0, 1.0, np.array([0.0, np.inf, 0.0]))


def test_cv_force_path_for_composite_features_matches_numpy():
    # centroid and distance features are not single-particle coordinates: CustomCVForce path
    from rave.md.features import Distance, evaluate_features

    features = [Distance([0], [1], periodic=False, name="d"), Position([0, 1], "x", name="cx")]
    rng = np.random.default_rng(11)
    positions = rng.normal(0, 0.8, (15, 2, 3))
    values = evaluate_features(features, positions)
    c = np.array([0.6, -0.8])
    bias = Bias(c, build_bias_grid(values @ c, None, KT, n_points=40))
    force = bias_force(features, bias, force_group=7)
    assert isinstance(force, openmm.CustomCVForce)
    energies = _energies_of_frames(force, 2, positions, 7)
    np.testing.assert_allclose(energies, bias.energy(values), atol=ENERGY_TOL_KJMOL)


@pytest.mark.parametrize("periodic", [False, True])
def test_compound_path_for_single_atom_geometry_matches_numpy(periodic):
    # distance, angle and dihedrals of single atoms share one CustomCompoundBondForce; with a
    # periodic box the particles are spread over several box lengths (minimum image)
    from rave.md.features import Angle, Dihedral, Distance, evaluate_features

    features = [
        Distance([0], [2], periodic=periodic, name="d"),
        Angle([0, 1, 2], periodic=periodic, name="a"),
        Dihedral([0, 1, 2, 3], "sin", periodic=periodic, name="s"),
        Dihedral([0, 1, 2, 3], "cos", periodic=periodic, name="c"),
    ]
    rng = np.random.default_rng(12)
    box = np.diag([2.1, 2.3, 2.5])
    positions = rng.uniform(-3.0, 3.0, (12, 4, 3)) if periodic else rng.normal(0, 0.6, (12, 4, 3))
    boxes = np.repeat(box[None], len(positions), axis=0) if periodic else None
    values = evaluate_features(features, positions, boxes)
    c = np.array([0.5, -0.3, 0.6, 0.55])
    c /= np.linalg.norm(c)
    bias = Bias(c, build_bias_grid(values @ c, None, KT, n_points=50))
    force = bias_force(features, bias, force_group=9)
    assert isinstance(force, openmm.CustomCompoundBondForce)
    energies = _energies_of_frames(force, 4, positions, 9, box=box)
    np.testing.assert_allclose(energies, bias.energy(values), atol=ENERGY_TOL_KJMOL)


def _energies_of_frames(force, n_particles, frames, group, box=None):
    """OpenMM energy (kJ/mol) of ``force``'s group at each frame, Reference platform."""
    system = openmm.System()
    for _ in range(n_particles):
        system.addParticle(1.0)
    if box is not None:
        system.setDefaultPeriodicBoxVectors(*box)
    system.addForce(force)
    integrator = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    energies = []
    for frame in frames:
        context.setPositions(frame)
        energies.append(context.getState(getEnergy=True, groups={group}).getPotentialEnergy()
                        .value_in_unit(openmm.unit.kilojoule_per_mole))
    return np.array(energies)


# ---- BiasForce and the builders of rave.md.bias_force: groups, temperature, features, names --

def _particles(n: int, box: np.ndarray | None = None) -> openmm.System:
    system = openmm.System()
    for _ in range(n):
        system.addParticle(1.0)
    if box is not None:
        system.setDefaultPeriodicBoxVectors(*box)
    return system


def _external_force(group: int, name: str | None = None) -> openmm.CustomExternalForce:
    force = openmm.CustomExternalForce("0.1*x^2")
    force.addParticle(0, [])
    force.setForceGroup(group)
    if name is not None:
        force.setName(name)
    return force


def _reference_context(system: openmm.System) -> openmm.Context:
    integrator = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context._keep_alive = (system, integrator)
    return context


def _group_energy(context: openmm.Context, group: int) -> float:
    state = context.getState(getEnergy=True, groups={group})
    return state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)


def test_reciprocal_space_group_of_a_nonbonded_force_counts_as_used():
    from rave.md.bias_force import BiasForce, free_force_group

    # groups 1..31 hold a force each; the only other group, 0, holds the reciprocal space
    system = _particles(1)
    for group in range(1, 32):
        system.addForce(_external_force(group))
    nonbonded = openmm.NonbondedForce()
    nonbonded.addParticle(0.0, 0.3, 0.0)
    nonbonded.setForceGroup(1)
    nonbonded.setReciprocalSpaceForceGroup(0)
    system.addForce(nonbonded)
    features = [Position(0, "x", name="x")]
    with pytest.raises(ValueError, match="uses all 32 force groups"):
        free_force_group(system)
    with pytest.raises(ValueError, match="force group 0 is used"):
        BiasForce(system, features, 300.0, forceGroup=0)
    # reciprocal space in the force's own group (-1, OpenMM's default): group 0 is free
    nonbonded.setReciprocalSpaceForceGroup(-1)
    assert free_force_group(system) == 0
    assert BiasForce(system, features, 300.0).forceGroup == 0


def test_force_group_is_an_int_in_0_to_31_that_is_free():
    from rave.md.bias_force import BiasForce

    features = [Position(0, "x", name="x")]
    for group in (0, 31, np.int64(17)):
        system = _particles(1)
        system.addForce(_external_force(3))
        bias_force_ = BiasForce(system, features, 300.0, forceGroup=group)
        assert bias_force_.forceGroup == int(group)
        assert bias_force_.force.getForceGroup() == int(group)
    for group in (5.0, "5", True):
        with pytest.raises(TypeError, match="forceGroup must be an int in 0..31"):
            BiasForce(_particles(1), features, 300.0, forceGroup=group)
    for group in (-1, 32):
        with pytest.raises(ValueError, match="forceGroup must be in 0..31"):
            BiasForce(_particles(1), features, 300.0, forceGroup=group)
    bias = Bias(np.ones(1), BiasGrid.zero())
    assert bias_force(features, bias, force_group=31).getForceGroup() == 31
    for group in (-1, 32):
        with pytest.raises(ValueError, match="force_group must be in 0..31"):
            bias_force(features, bias, force_group=group)


def test_bias_force_temperature_sets_kT_and_refuses_what_is_not_a_temperature():
    from openmm import unit

    from rave.md.bias_force import BiasForce

    features = [Position(0, "x", name="x")]
    gas_constant = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)
    for temperature, kelvin in ((0.5, 0.5), (300, 300.0), (310.0 * unit.kelvin, 310.0)):
        bias_force_ = BiasForce(_particles(1), features, temperature)
        assert bias_force_.temperature.value_in_unit(unit.kelvin) == kelvin
        assert bias_force_.kT == pytest.approx(gas_constant * kelvin, rel=1e-12)
    for temperature in ("300", None, True, 300 * unit.nanometer):
        with pytest.raises(TypeError, match="temperature must be"):
            BiasForce(_particles(1), features, temperature)
    for temperature in (0.0, -5.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be > 0 K"):
            BiasForce(_particles(1), features, temperature)


def test_feature_on_the_last_particle_is_accepted_and_one_past_it_refused():
    from rave.md.bias_force import BiasForce, check_features_fit_system

    # Position has no periodic flag; it fits a non-periodic System
    check_features_fit_system([Position(1, "x", name="x")], _particles(2))
    bias_force_ = BiasForce(_particles(2), [Position(1, "y", name="y")], 300.0)
    assert bias_force_.featureNames == ["y"]
    with pytest.raises(ValueError, match=r"uses particle 2, but the system has 2 particles"):
        check_features_fit_system([Position(2, "x", name="x")], _particles(2))


def test_collective_variables_of_a_periodic_system_use_its_box():
    from rave.md.bias_force import BiasForce, state_positions
    from rave.md.features import Distance

    box = np.diag([2.0, 2.5, 3.0])
    system = _particles(2, box)
    bond = openmm.HarmonicBondForce()  # a force with periodic boundary conditions
    bond.addBond(0, 1, 0.5, 0.0)
    bond.setUsesPeriodicBoundaryConditions(True)
    system.addForce(bond)
    features = [Distance([0], [1], periodic=True, name="d")]
    bias_force_ = BiasForce(system, features, 300.0)
    context = _reference_context(system)
    # 1.8 nm apart along x in a 2 nm box: the minimum image is 0.2 nm
    context.setPositions([[0.1, 0.3, 0.4], [1.9, 0.3, 0.4]])
    np.testing.assert_allclose(bias_force_.getCollectiveVariables(context), [0.2], atol=1e-12)
    positions, state_box = state_positions(context.getState(getPositions=True), system)
    np.testing.assert_allclose(positions, [[0.1, 0.3, 0.4], [1.9, 0.3, 0.4]], atol=1e-12)
    np.testing.assert_allclose(state_box, box, atol=1e-12)
    # a non-periodic System has no box
    plain = _particles(2)
    plain_context = _reference_context(plain)
    plain_context.setPositions([[0.1, 0.3, 0.4], [1.9, 0.3, 0.4]])
    assert state_positions(plain_context.getState(getPositions=True), plain)[1] is None


def test_bias_group_shared_with_another_force_is_refused_naming_both():
    from rave.md.bias_force import BiasForce

    system = _particles(1)
    bias_force_ = BiasForce(system, [Position(0, "x", name="x")], 300.0)
    system.addForce(_external_force(bias_force_.forceGroup, name="wall"))
    context = _reference_context(system)
    message = (r"force group 31 holds the RAVE bias and 1 other force\(s\) "
               r"\(CustomCompoundBondForce 'RAVE bias', CustomExternalForce 'wall'\)")
    with pytest.raises(ValueError, match=message):
        bias_force_.getBiasEnergy(context)


def test_bias_force_repr_names_features_group_and_temperature():
    from rave.md.bias_force import BiasForce

    bias_force_ = BiasForce(_particles(1), [Position(0, "x", name="px"),
                                            Position(0, "z", name="pz")], 310.5)
    assert repr(bias_force_) == "BiasForce(2 features: px, pz; force group 31, 310.5 K)"


def test_forces_carry_their_documented_names():
    from rave.md.bias_force import BiasForce, chi_force

    features = [Position(0, "x", name="x")]
    assert bias_force(features, Bias(np.ones(1), BiasGrid.zero())).getName() == "RAVE bias"
    assert chi_force(features, [1.0], -1.0, 1.0).getName() == "RAVE chi"
    system = _particles(1)
    BiasForce(system, features, 300.0)
    assert [f.getName() for f in system.getForces()] == ["RAVE bias"]


def test_mixed_periodicity_takes_the_cv_path_and_matches_numpy():
    # absolute coordinates beside a minimum-image distance cannot share one compound force
    from rave.md.features import Distance, evaluate_features

    features = [Position(0, "x", name="x"), Distance([0], [1], periodic=True, name="d")]
    box = np.diag([2.1, 2.3, 2.5])
    positions = np.random.default_rng(13).uniform(-3.0, 3.0, (12, 2, 3))
    boxes = np.repeat(box[None], len(positions), axis=0)
    values = evaluate_features(features, positions, boxes)
    c = np.array([0.3, 0.9])
    bias = Bias(c, build_bias_grid(values @ c, None, KT, n_points=40))
    force = bias_force(features, bias, force_group=4)
    assert isinstance(force, openmm.CustomCVForce)
    energies = _energies_of_frames(force, 2, positions, 4, box=box)
    np.testing.assert_allclose(energies, bias.energy(values), atol=ENERGY_TOL_KJMOL)


def test_chi_force_beside_the_bias_keeps_its_own_coefficients_through_updates():
    # one Context holds the static bias (group 5) and the OPES CV chi (group 6)
    from rave.md.bias_force import chi_force

    features = [Position(0, "x", name="x"), Position(0, "y", name="y")]
    first = _example_bias(0)
    system = _particles(1)
    force = bias_force(features, first, force_group=5)
    system.addForce(force)
    # a row vector, as a linear layer's weight holds the RC: flattened to one coefficient each
    cv_coefficients = np.array([[0.8, -0.6]])
    cv = chi_force(features, cv_coefficients, -1.5, 2.0)
    cv.setForceGroup(6)
    system.addForce(cv)
    context = _reference_context(system)
    lo, hi = -1.5 + 1e-9 * 3.5, 2.0 - 1e-9 * 3.5  # clamp bounds: 1e-9 of the width inside
    points = np.random.default_rng(14).normal(0, 1.5, (20, 2))
    expected_cv = np.clip(points @ cv_coefficients[0], lo, hi)
    second = Bias(np.array([0.0, 1.0]), build_bias_grid(points[:, 1], None, KT, n_points=30))
    for bias in (first, second):
        if bias is second:
            update_bias_force(force, context, second)
        for point, cv_value in zip(points, expected_cv, strict=True):
            context.setPositions([[point[0], point[1], 0.0]])
            assert _group_energy(context, 6) == pytest.approx(cv_value, abs=ENERGY_TOL_KJMOL)
            assert _group_energy(context, 5) == pytest.approx(bias.energy(point[None])[0],
                                                              abs=ENERGY_TOL_KJMOL)
    assert np.any(np.abs(points @ cv_coefficients[0]) > 1.5)  # some points beyond the clamp


def test_updated_bias_holds_in_a_new_context_of_the_same_system():
    # update_bias_force changes the force's defaults too: a Context made afterwards (a restart,
    # a serialised System) applies the new bias, not the first
    first = _example_bias(0)
    context, force = _context(first)
    second = Bias(np.array([0.6, 0.8]),
                  build_bias_grid(np.random.default_rng(15).normal(0.2, 0.7, 2000), None, KT,
                                  n_points=70))
    update_bias_force(force, context, second)
    system = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(
        context.getSystem()))
    fresh = _reference_context(system)
    points = np.random.default_rng(16).normal(0, 1.0, (15, 2))
    np.testing.assert_allclose(_openmm_energies(fresh, points), second.energy(points),
                               atol=ENERGY_TOL_KJMOL)


# ---- build_bias_grid against a second implementation written here ---------------------------

#: two float64 evaluations of the same sums in another order, kJ/mol
REFERENCE_TOL_KJMOL = 1e-9


def _reference_bias_values(chi, log_weights, kT, n_points=128, padding=0.25, cap_kT=8.0,
                           smoothing_bins=2.0, damping=1.0):
    """V on the grid by hand: nearest-grid-point histogram, -F capped and damped, a Gaussian
    kernel truncated at 4 sigma with the edge values held, shifted to max 0."""
    chi = np.asarray(chi, dtype=float).ravel()
    lo, hi = chi.min(), chi.max()
    a, b = lo - padding * (hi - lo), hi + padding * (hi - lo)
    h = (b - a) / (n_points - 1)
    weights = np.ones_like(chi) if log_weights is None else np.exp(log_weights - log_weights.max())
    index = np.minimum(np.floor((chi - a) / h + 0.5).astype(int), n_points - 1)
    p = np.zeros(n_points)
    for i, w in zip(index, weights, strict=True):
        p[i] += w
    with np.errstate(divide="ignore"):
        free = -np.log(p / p.max())
    values = np.maximum(-damping * np.minimum(free, cap_kT / damping), -cap_kT)
    if smoothing_bins > 0:
        radius = int(4.0 * smoothing_bins + 0.5)
        offsets = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 * (offsets / smoothing_bins) ** 2)
        kernel /= kernel.sum()
        values = np.array([sum(k * values[min(max(i + o, 0), n_points - 1)]
                               for o, k in zip(offsets, kernel, strict=True))
                           for i in range(n_points)])
    return a, b, (values - values.max()) * kT


@pytest.mark.parametrize("options", [
    {},
    {"n_points": 8, "padding": 0.0, "cap_kT": 0.5, "smoothing_bins": 0.5, "damping": 0.7},
    {"n_points": 40, "padding": 0.0, "cap_kT": 3.0, "smoothing_bins": 3.0},
    {"n_points": 60, "padding": 0.1, "cap_kT": 12.0, "smoothing_bins": 0.0, "damping": 0.4},
], ids=["defaults", "coarse_small_cap", "unpadded_smooth", "unsmoothed_damped"])
def test_built_bias_equals_a_histogram_written_by_hand(options):
    rng = np.random.default_rng(21)
    chi = np.concatenate([rng.normal(-1.0, 0.4, 3000), rng.normal(1.2, 0.3, 1000)])
    log_weights = rng.normal(0.0, 0.5, chi.size)
    grid = build_bias_grid(chi, log_weights, KT, **options)
    a, b, expected = _reference_bias_values(chi, log_weights, KT, **options)
    assert (grid.chi_min, grid.chi_max) == pytest.approx((a, b), abs=1e-12)
    np.testing.assert_allclose(grid.values_kjmol, expected, atol=REFERENCE_TOL_KJMOL)
    # chi as a column (a model's one latent output per frame) gives the same grid
    column = build_bias_grid(chi[:, None], log_weights, KT, **options)
    np.testing.assert_array_equal(column.values_kjmol, grid.values_kjmol)


def test_a_spread_of_one_and_a_half_picometre_units_is_enough():
    # the spread must exceed 1e-12 of max(1, |chi|): at chi ~ 0 that is 1e-12
    grid = build_bias_grid(np.array([0.0, 1.5e-12]), None, KT, n_points=8, smoothing_bins=0)
    assert grid.chi_max - grid.chi_min == pytest.approx(1.5 * 1.5e-12, rel=1e-6)


# ---- BiasGrid and Bias: what they hold and refuse ---------------------------------------------

def test_grid_holds_floats_read_only_and_refuses_bad_ranges():
    grid = BiasGrid(0, 2, [0, 3, 1])
    assert type(grid.chi_min) is float and type(grid.chi_max) is float
    assert isinstance(grid.values_kjmol, np.ndarray) and grid.values_kjmol.dtype == float
    np.testing.assert_array_equal(grid.values_kjmol, [0.0, 3.0, 1.0])
    with pytest.raises(ValueError, match="read-only"):
        grid.values_kjmol[0] = 5.0
    with pytest.raises(ValueError, match="1-D array of at least 3 grid values"):
        BiasGrid(0.0, 1.0, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="1-D array of at least 3 grid values"):
        BiasGrid(0.0, 1.0, np.zeros(2))
    for lo, hi in ((np.nan, 1.0), (0.0, np.inf)):
        with pytest.raises(ValueError, match="chi_min and chi_max must be finite"):
            BiasGrid(lo, hi, np.zeros(3))
    with pytest.raises(ValueError, match="chi_max must be > chi_min"):
        BiasGrid(1.0, 1.0, np.zeros(3))


def test_grid_derivative_at_the_clamp_bounds_is_the_spline_slope():
    from scipy.interpolate import CubicSpline

    values = np.array([0.0, -2.0, -1.0, -4.0, -0.5])
    grid = BiasGrid(-1.0, 3.0, values)
    spline = CubicSpline(np.linspace(-1.0, 3.0, 5), values, bc_type="natural")
    lo, hi = grid.clamp_bounds
    assert (lo, hi) == (-1.0 + 4e-9, 3.0 - 4e-9)
    np.testing.assert_allclose(grid.derivative(np.array([lo, hi, 0.3])),
                               spline(np.array([lo, hi, 0.3]), 1), rtol=1e-12)
    assert spline(lo, 1) != 0 and spline(hi, 1) != 0
    np.testing.assert_array_equal(grid.derivative(np.array([lo - 1e-6, hi + 1e-6])), [0.0, 0.0])


def test_bias_holds_a_flat_read_only_float_vector_and_refuses_bad_ones():
    grid = BiasGrid(-1.0, 1.0, np.array([0.0, -1.0, 0.0]))
    features = np.array([[0.2, -0.1], [0.5, 0.4], [-0.3, 0.3]])
    for given in ([3, -1], np.array([[3.0, -1.0]]), np.array([[3.0], [-1.0]])):
        bias = Bias(given, grid)
        assert bias.coefficients.shape == (2,) and bias.coefficients.dtype == float
        np.testing.assert_allclose(bias.chi(features), features[:, 0] * 3 - features[:, 1])
        with pytest.raises(ValueError, match="read-only"):
            bias.coefficients[0] = 1.0
    for bad in ([], [1.0, np.nan], [np.inf]):
        with pytest.raises(ValueError, match="coefficients must be a non-empty finite vector"):
            Bias(bad, grid)
    bias = Bias([3.0, -1.0], grid)
    for shape in ((2,), (4, 3), (4, 1)):
        with pytest.raises(ValueError, match=r"features must be shape \(Any, 2\)"):
            bias.chi(np.zeros(shape))


# ---- the bias states of adaptive and exploring rounds, against sums written out here ---------

def test_effective_log_sum_is_the_count_weighted_sum_over_versions_with_frames():
    from rave.bias_grid import effective_log_sum

    kT = 2.5
    values = np.array([[0.0, -1.0, -3.0], [1.0, 2.0, np.nan], [-2.0, 0.5, 1.0]])
    ct = np.array([0.3, np.inf, -0.7])
    counts = np.array([4, 0, 2])  # the middle version holds no frame: its NaN/inf do not count
    expected = [math.log(4 * math.exp(-(values[0, j] - 0.3) / kT)
                         + 2 * math.exp(-(values[2, j] + 0.7) / kT)) for j in range(3)]
    np.testing.assert_allclose(effective_log_sum(values, ct, counts, kT), expected, rtol=1e-13)
    np.testing.assert_array_equal(effective_log_sum(values, ct, np.zeros(3), kT),
                                  [-np.inf] * 3)
    with pytest.raises(ValueError, match="one c\\(t\\) and one count per version"):
        effective_log_sum(values, ct[:2], counts, kT)
    with pytest.raises(ValueError, match="one c\\(t\\) and one count per version"):
        effective_log_sum(values, ct, counts[:2], kT)
    with pytest.raises(ValueError, match="one c\\(t\\) and one count per version"):
        effective_log_sum(values[0], ct[:1], counts[:1], kT)
    with pytest.raises(ValueError, match="one c\\(t\\) and one count per version"):
        effective_log_sum(values[0], ct, counts, kT)
    with pytest.raises(ValueError, match="must be finite"):
        effective_log_sum(values, ct, np.array([4, 1, 2]), kT)
    with pytest.raises(ValueError, match="must be finite"):
        effective_log_sum(np.nan_to_num(values), ct, np.array([4, 1, 2]), kT)


def test_bias_blocks_split_where_the_bias_moved_more_than_delta_and_mix_their_versions():
    from rave.bias_grid import bias_blocks

    kT = 2.0
    # version t is flat at -0.6 t kT with c(t) = 0.1 t kJ/mol: it moves 0.6 kT per version
    values = np.array([np.full(4, -0.6 * t * kT) for t in range(7)])
    ct = 0.1 * np.arange(7)
    counts = np.array([3, 1, 0, 0, 2, 5, 1])

    def mixed(block):  # -kT ln [sum_t n_t exp(-(V_t - c_t)/kT) / n_block]
        n = sum(counts[t] for t in block)
        total = sum(counts[t] * math.exp(-(values[t, 0] - ct[t]) / kT) for t in block)
        return -kT * math.log(total / n), n

    # delta 1 kT: a block starts at versions 0, 2 (1.2 kT from 0), 4, 6; block 2-3 has no frame
    blocks = bias_blocks(values, ct, counts, kT)  # delta_kT = 1 by default
    assert [n for _, n in blocks] == [4, 7, 1]
    for (v, n), block in zip(blocks, ([0, 1], [4, 5], [6]), strict=True):
        value, frames = mixed(block)
        assert n == frames
        np.testing.assert_allclose(v, np.full(4, value), rtol=1e-12)
    # at most 2 blocks: delta doubles to 2 kT (starts 0, 4: 2.4 kT from version 0)
    blocks = bias_blocks(values, ct, counts, kT, delta_kT=1.0, max_blocks=2)
    assert [n for _, n in blocks] == [4, 8]
    np.testing.assert_allclose(blocks[1][0], np.full(4, mixed([4, 5, 6])[0]), rtol=1e-12)
    # delta 0.5 kT: every version with frames is its own block, the second one included
    assert [n for _, n in bias_blocks(values, ct, counts, kT, delta_kT=0.5)] == [3, 1, 2, 5, 1]
    # 33 versions 1.5 kT apart are 33 blocks at 1 kT, more than the default 32: at 2 kT, 17
    steps = np.array([np.full(2, -1.5 * t * kT) for t in range(33)])
    assert len(bias_blocks(steps, np.zeros(33), np.ones(33, dtype=int), kT)) == 17
    assert len(bias_blocks(steps, np.zeros(33), np.ones(33, dtype=int), kT, max_blocks=33)) == 33
    # one frame in all is enough
    [(single, n)] = bias_blocks(values, ct, np.array([0, 0, 0, 1, 0, 0, 0]), kT)
    assert n == 1
    np.testing.assert_allclose(single, values[3] - ct[3], rtol=1e-12)
    # exactly delta apart stays in one block; one block holds everything with max_blocks=1
    assert len(bias_blocks(values[:2], ct[:2], counts[:2], kT, delta_kT=0.6)) == 1
    assert [n for _, n in bias_blocks(values, ct, counts, kT, max_blocks=1)] == [12]
    for delta, most in ((0.0, 4), (1.0, 0)):
        with pytest.raises(ValueError, match="delta_kT must be > 0 and max_blocks >= 1"):
            bias_blocks(values, ct, counts, kT, delta_kT=delta, max_blocks=most)
    for bad_counts in (counts[:3], np.zeros(7, dtype=int)):
        with pytest.raises(ValueError, match="one count per version and at least one frame"):
            bias_blocks(values, ct, bad_counts, kT)
    with pytest.raises(ValueError, match="one count per version and at least one frame"):
        bias_blocks(values[0], ct, counts, kT)


def test_adaptive_bias_dict_round_trips_into_its_states():
    from rave.learn.bias import adaptive_bias_dict, applied_states, reduced_bias_matrix

    blocks = [(np.array([0.0, -2.0, -1.0, 0.0]), 3), (np.array([-2.0, -1.0, 0.0, -1.0]), 0),
              (np.array([-1.0, 0.0, -3.0, -0.5]), 2)]
    data = adaptive_bias_dict([0.6, 0.8], -1.0, 2.0, blocks)
    del data["states"][1]  # a block without frames holds no state of the round
    blocks.pop(1)
    assert data["method"] == "opes"
    assert data["coefficients"] == [0.6, 0.8]
    assert data["grid"] == {"chi_min": -1.0, "chi_max": 2.0,
                            "values_kjmol": [-1.0, 0.0, -3.0, -0.5]}
    assert data["states"] == [{"values_kjmol": [0.0, -2.0, -1.0, 0.0], "frames": 3},
                              {"values_kjmol": [-1.0, 0.0, -3.0, -0.5], "frames": 2}]
    assert Bias.from_dict(data).grid.values_kjmol.tolist() == [-1.0, 0.0, -3.0, -0.5]
    states = applied_states(data, 5)
    assert [n for _, n in states] == [3, 2]
    features = np.array([[0.1, 0.2], [1.0, -0.5], [0.3, 0.9], [2.0, 2.0], [-1.0, 0.1]])
    chi = features @ np.array([0.6, 0.8])
    reduced, counts = reduced_bias_matrix(features, states, 2.5)
    assert counts == [3, 2]
    for k, (values, _) in enumerate(blocks):
        expected = BiasGrid(-1.0, 2.0, values)(chi) / 2.5
        np.testing.assert_allclose(reduced[k], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="the bias states hold 5 frames but the round has 6"):
        applied_states(data, 6)
    with pytest.raises(ValueError, match="at least one block"):
        adaptive_bias_dict([1.0], 0.0, 1.0, [])


def test_static_and_unbiased_rounds_are_one_state_each():
    from rave.learn.bias import applied_states, reduced_bias_matrix

    bias = Bias([1.0, -1.0], BiasGrid(-2.0, 2.0, np.array([0.0, -3.0, -1.0, -2.0, 0.0])))
    assert applied_states(None, 4) == [(None, 4)]
    [(static, n)] = applied_states(bias.to_dict(), 4)
    assert n == 4 and isinstance(static, Bias)
    assert static.to_dict() == bias.to_dict()
    features = np.array([[0.0, 0.5], [1.0, 0.0], [0.3, 0.3], [-3.0, 0.0]])
    reduced, counts = reduced_bias_matrix(features, [(None, 2), (static, 2)], 2.0)
    assert counts == [2, 2]
    np.testing.assert_array_equal(reduced[0], np.zeros(4))
    np.testing.assert_allclose(reduced[1], bias.grid(features[:, 0] - features[:, 1]) / 2.0,
                               rtol=1e-12)


def test_temperature_states_weigh_the_potential_by_the_difference_of_inverse_kT():
    from openmm import unit

    from rave.learn.bias import (
        TemperatureState,
        applied_states,
        exploration_dict,
        frame_potentials,
        frame_states,
        reduced_bias_matrix,
    )

    gas_constant = unit.MOLAR_GAS_CONSTANT_R.value_in_unit(unit.kilojoule_per_mole / unit.kelvin)
    kT = gas_constant * 300.0
    potential = np.array([-10.0, 4.0, 25.0])
    hot = TemperatureState(450.0)
    np.testing.assert_allclose(hot.reduced_bias(potential, kT),
                               (1 / (gas_constant * 450.0) - 1 / kT) * potential, rtol=1e-12)
    data = exploration_dict([300, 450.0], [1, 2])
    assert data == {"method": "explore", "states": [{"temperature_K": 300.0, "frames": 1},
                                                    {"temperature_K": 450.0, "frames": 2}]}
    with pytest.raises(ValueError, match="zip"):
        exploration_dict([300.0, 450.0], [1, 2, 3])
    states = applied_states(data, 3)
    assert [(s.temperature_K, n) for s, n in states] == [(300.0, 1), (450.0, 2)]
    with pytest.raises(ValueError, match="the temperature states hold 3 frames but the round "
                                         "has 4"):
        applied_states(data, 4)
    features = np.zeros((3, 1))
    reduced, counts = reduced_bias_matrix(features, states, kT, potential)
    assert counts == [1, 2]
    np.testing.assert_allclose(reduced[0], np.zeros(3), atol=1e-15)
    np.testing.assert_allclose(reduced[1], hot.reduced_bias(potential, kT), rtol=1e-12)
    for missing in (None, potential[:2]):
        with pytest.raises(ValueError, match="temperature states need the potential energy"):
            reduced_bias_matrix(features, states, kT, missing)
    # frames of the rounds: an unbiased round, an adaptive one (2 blocks), an exploring one
    # whose frames interleave their temperatures (labels)
    bias = Bias([1.0], BiasGrid.zero())
    rounds = [[(None, 2)], [(bias, 1), (bias, 2)], states]
    labels = [None, None, np.array([1, 0, 1])]
    np.testing.assert_array_equal(frame_states(rounds, labels), [0, 0, 1, 2, 2, 4, 3, 4])
    float_labels = [None, None, np.array([1.0, 0.0, 1.0])]  # as a float array reads back
    assert frame_states(rounds, float_labels).dtype == np.int64
    with pytest.raises(ValueError, match="zip"):
        frame_states(rounds, labels[:2])
    # without labels even an exploring round's states hold its frames in order
    np.testing.assert_array_equal(frame_states([states], [None]), [0, 1, 1])
    assert frame_states([], []).shape == (0,) and frame_states([], []).dtype == np.int64
    assert frame_potentials(rounds[:2], [None, None]) is None
    np.testing.assert_array_equal(
        frame_potentials(rounds, [np.array([1.0, 2.0]), np.array([3, 4, 5]), potential]),
        [1.0, 2.0, 3.0, 4.0, 5.0, -10.0, 4.0, 25.0])
    with pytest.raises(ValueError, match=r"round\(s\) \[0, 2\] hold no potential energies"):
        frame_potentials(rounds, [None, np.zeros(3), None])
