"""The bias: grid construction, numpy spline == OpenMM energy, clamping, in-place updates."""

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
        ({"log_weights": np.zeros(3)}, r"log_weights must have shape \(10,\), one per frame"),
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
    assert BiasForce(system, features, 300.0).force_group == 0


def test_force_group_is_an_int_in_0_to_31_that_is_free():
    from rave.md.bias_force import BiasForce

    features = [Position(0, "x", name="x")]
    for group in (0, 31, np.int64(17)):
        system = _particles(1)
        system.addForce(_external_force(3))
        bias_force_ = BiasForce(system, features, 300.0, forceGroup=group)
        assert bias_force_.force_group == int(group)
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
        assert bias_force_.temperature_K == kelvin
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
    assert bias_force_.feature_names == ["y"]
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
    system.addForce(_external_force(bias_force_.force_group, name="wall"))
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
