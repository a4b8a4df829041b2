"""Tests for rave.systems.model_potentials: landscape, numpy vs OpenMM, exact F(chi), dynamics."""

from __future__ import annotations

import math

import numpy as np
import openmm
import pytest
from openmm import unit as u
from scipy import optimize

from rave.systems.model_potentials import (
    THREE_STATE_GUESSES,
    THREE_STATE_MINIMA,
    THREE_STATE_MINIMAX_KT,
    THREE_STATE_SADDLES,
    ModelPotential,
    from_expression,
    kT_kjmol,
    lepton_to_numpy,
    make_model_potential,
    minimax_path_energy,
    rotated_double_well,
    three_state,
)

# Documented minima/saddles are rounded to 1e-4; optimiser results agree to this, nm and kT.
POSITION_TOL_NM = 3e-4
ENERGY_TOL_KT = 3e-4
# Flooding a 1001^2 grid (spacing 0.005 nm) vs the documented grid result (rounded to 1e-4)
# and vs the exact saddle energy: a 4-connected grid path can pass a saddle ~1e-3 kT low.
FLOOD_TOL_KT = 3e-4
FLOOD_VS_SADDLE_TOL_KT = 0.01
# Barrier range quoted in the module docstring, kT (lowest pair barrier 8.24, highest 8.81).
BARRIER_RANGE_KT = (8.2, 8.85)
# numpy energy vs OpenMM Reference energy, relative (both in float64).
ENERGY_RTOL = 1e-6
# ... and an absolute floor for energies that are nearly zero, kJ/mol.
ENERGY_ATOL_KJMOL = 1e-9
# exact F(chi) vs analytic / brute-force references, kT.
FREE_ENERGY_TOL_KT = 0.01
# Statistical tolerances of the Langevin test, in standard errors.
N_SIGMA = 4.0


def _openmm_energies(potential: ModelPotential, xyz: np.ndarray, kz: float = 100.0) -> np.ndarray:
    """Energies (kJ/mol) of the built System at points (n, 3) nm, Reference platform."""
    model = potential.build(z_force_constant=kz)
    context = openmm.Context(
        model.system,
        openmm.VerletIntegrator(0.001),
        openmm.Platform.getPlatformByName("Reference"),
    )
    out = []
    for point in xyz:
        context.setPositions([openmm.Vec3(*point)])
        energy = context.getState(getEnergy=True).getPotentialEnergy()
        out.append(energy.value_in_unit(u.kilojoule_per_mole))
    return np.array(out)


def _reduced(potential: ModelPotential):
    """U/kT as a function of a point (2,)."""
    return lambda q: float(potential.energy(q[0], q[1]) / potential.kT)


def _gradient(f, q, h=1e-6):
    q = np.asarray(q, dtype=float)
    return np.array([(f(q + e) - f(q - e)) / (2 * h) for e in np.eye(2) * h])


def _hessian(f, q, h=1e-4):
    q = np.asarray(q, dtype=float)
    return np.array([(_gradient(f, q + e) - _gradient(f, q - e)) / (2 * h) for e in np.eye(2) * h])


# --------------------------------------------------------------------------------------------
# three-state landscape
# --------------------------------------------------------------------------------------------
def test_three_state_minima_are_where_documented():
    f = _reduced(three_state())
    for name, guess in THREE_STATE_GUESSES.items():
        result = optimize.minimize(f, np.array(guess), method="BFGS", options={"gtol": 1e-10})
        position, energy = THREE_STATE_MINIMA[name]
        print(name, result.x, result.fun, "documented", position, energy)
        np.testing.assert_allclose(result.x, position, atol=POSITION_TOL_NM)
        assert abs(result.fun - energy) < ENERGY_TOL_KT
        assert np.all(np.linalg.eigvalsh(_hessian(f, result.x)) > 0)


def test_three_state_saddles_are_first_order_stationary_points():
    f = _reduced(three_state())
    for pair, (position, energy) in THREE_STATE_SADDLES.items():
        root = optimize.root(lambda q: _gradient(f, q), np.array(position), tol=1e-12)
        assert root.success, pair
        eigenvalues = np.linalg.eigvalsh(_hessian(f, root.x))
        print(pair, root.x, f(root.x), eigenvalues)
        np.testing.assert_allclose(root.x, position, atol=POSITION_TOL_NM)
        assert abs(f(root.x) - energy) < ENERGY_TOL_KT
        assert eigenvalues[0] < 0 < eigenvalues[1]


def test_three_state_minimax_levels_by_flooding_a_fine_grid():
    potential = three_state()
    xs = np.linspace(-2.5, 2.5, 1001)
    grid = potential.energy(*np.meshgrid(xs, xs, indexing="ij")) / potential.kT
    index = {
        name: (int(np.argmin(abs(xs - p[0]))), int(np.argmin(abs(xs - p[1]))))
        for name, (p, _) in THREE_STATE_MINIMA.items()
    }
    levels = {}
    for pair, documented in THREE_STATE_MINIMAX_KT.items():
        a, b = pair.split("-")
        levels[pair], _ = minimax_path_energy(grid, index[a], index[b])
        print(pair, levels[pair], "documented", documented)
        assert abs(levels[pair] - documented) < FLOOD_TOL_KT
        for state in (a, b):
            barrier = levels[pair] - THREE_STATE_MINIMA[state][1]
            assert BARRIER_RANGE_KT[0] < barrier < BARRIER_RANGE_KT[1], (pair, state, barrier)
    # independent check: A-B and A-C pass their own saddle points; B-C goes through A
    # because its own saddle is higher than the A-B one.
    for pair in ("A-B", "A-C"):
        assert abs(levels[pair] - THREE_STATE_SADDLES[pair][1]) < FLOOD_VS_SADDLE_TOL_KT
    assert THREE_STATE_SADDLES["B-C"][1] > THREE_STATE_SADDLES["A-B"][1]
    assert levels["B-C"] == levels["A-B"]


def test_minimax_path_energy_of_a_hand_made_grid():
    # two wells (0) separated by a wall of 5 with a gap of 3: the minimax is 3 at the gap.
    grid = np.zeros((5, 5))
    grid[:, 2] = 5.0
    grid[4, 2] = 3.0
    level, saddle = minimax_path_energy(grid, (0, 0), (0, 4))
    assert level == 3.0 and saddle == (4, 2)
    with pytest.raises(ValueError, match="start must be a grid index inside shape"):
        minimax_path_energy(grid, (7, 0), (0, 4))


def test_three_state_barriers_are_the_same_in_kT_at_any_temperature():
    x, y = np.meshgrid(np.linspace(-2, 2, 21), np.linspace(-2, 2, 21))
    cold, hot = three_state(250.0), three_state(450.0 * u.kelvin)
    np.testing.assert_allclose(cold.energy(x, y) / cold.kT, hot.energy(x, y) / hot.kT, rtol=1e-12)
    assert hot.temperature_K == 450.0
    assert hot.kT == pytest.approx(450.0 * 8.314462618e-3, rel=1e-9)


# --------------------------------------------------------------------------------------------
# numpy face == OpenMM face
# --------------------------------------------------------------------------------------------
EXPRESSION_WITH_DEFINITIONS = "10*(x^2-1)^2 + 5*y^2 + a*x*y; a = 2*sin(b) + c; b = 0.3; c = y/4"


@pytest.mark.parametrize(
    "potential",
    [
        three_state(300.0),
        rotated_double_well(310.0, angle_deg=-20.0, barrier_kT=4.0),
        from_expression(EXPRESSION_WITH_DEFINITIONS, 300.0),
    ],
    ids=["three_state", "rotated_double_well", "expression"],
)
def test_numpy_energy_equals_openmm_energy_at_random_points(potential):
    rng = np.random.default_rng(11)
    (x0, x1), (y0, y1) = potential.extent
    xyz = np.column_stack(
        [rng.uniform(x0, x1, 60), rng.uniform(y0, y1, 60), rng.uniform(-0.5, 0.5, 60)]
    )
    kz = 37.0
    expected = _openmm_energies(potential, xyz, kz=kz)
    numpy_energy = potential.energy(xyz[:, 0], xyz[:, 1]) + 0.5 * kz * xyz[:, 2] ** 2
    np.testing.assert_allclose(numpy_energy, expected, rtol=ENERGY_RTOL, atol=ENERGY_ATOL_KJMOL)


@pytest.mark.parametrize(
    "expression",
    [
        "-x^2 + 2^-y - x*-y",  # unary minus binds below ^, above * /
        "x - y - 1 + x/y/3 + 2^x^0.5",  # left-associative - and /, right-associative ^
        "step(x) + 2*step(-x) + delta(x - 0.5) + select(y - 1, x, y) + abs(x - y)",
        "min(x, y) + max(x, y)^2 + floor(3*x) + ceil(3*y) + square(x) + cube(y) + recip(2 + x)",
        "sqrt(2 + x) + log(3 + y) + exp(x) + sin(x) + cos(y) + tan(0.3*x) + sec(y) + csc(1 + x)",
        "cot(1 + y) + asin(x/4) + acos(y/4) + atan(x) + atan2(y, x) + sinh(x) + cosh(y)",
        "tanh(x) + erf(y) + erfc(x) + 1.5e-1*x + .25*y + 1E+0",
        "a*x; a = b + 1; b = y^2",  # a definition may use the ones after it
    ],
)
def test_lepton_translator_agrees_with_openmm_on_operators_and_functions(expression):
    potential = from_expression(expression, 300.0, start=(0.5, 1.0))
    points = np.array([[0.5, 1.0, 0.0], [-1.2, 0.3, 0.0], [1.7, -0.8, 0.0], [0.0, 0.0, 0.0]])
    expected = _openmm_energies(potential, points, kz=1.0)
    np.testing.assert_allclose(
        potential.energy(points[:, 0], points[:, 1]),
        expected,
        rtol=ENERGY_RTOL,
        atol=ENERGY_ATOL_KJMOL,
    )


def test_lepton_translator_reports_variables_and_refuses_python_names():
    function = lepton_to_numpy("b*x; a = 3; b = a + 1")  # 'a' is not yet defined for b
    assert function.variables == {"x", "a"}
    np.testing.assert_allclose(function(x=np.array([1.0, 2.0]), a=2.0), [3.0, 6.0])
    with pytest.raises(ValueError, match="unknown function: __import__"):
        lepton_to_numpy("__import__(x)")
    with pytest.raises(ValueError, match="unexpected end of expression"):
        lepton_to_numpy("x^2 +")


# --------------------------------------------------------------------------------------------
# exact free energies
# --------------------------------------------------------------------------------------------
def test_exact_free_energy_of_rotated_double_well_is_the_analytic_quartic():
    barrier, u0 = 6.0, 1.0
    potential = rotated_double_well(300.0, angle_deg=35.0, barrier_kT=barrier, u0_nm=u0)
    chi = np.linspace(-1.6, 1.6, 161)  # includes +-u0
    # The perpendicular is harmonic, so integrating it out adds a constant: F/kT = B((u/u0)^2-1)^2.
    analytic = barrier * ((chi / u0) ** 2 - 1) ** 2
    # coefficients are normalised internally: pass a scaled slow direction
    exact = potential.exact_free_energy(3.0 * np.array(potential.slow_direction), chi)
    error = np.max(np.abs(exact - (analytic - analytic.min())))
    print("max |F - F_analytic| (kT):", error)
    assert error < FREE_ENERGY_TOL_KT
    assert potential.slow_direction == pytest.approx(
        (math.cos(math.radians(35)), math.sin(math.radians(35)))
    )


def test_exact_free_energy_of_three_state_along_x_matches_a_2d_histogram():
    potential = three_state()
    # brute force: exp(-U/kT) on a fine grid far beyond the states, summed in bins of x
    grid_x = np.arange(-4.0, 4.0, 0.004) + 0.002
    grid_y = np.arange(-4.0, 4.0, 0.004) + 0.002
    gx, gy = np.meshgrid(grid_x, grid_y, indexing="ij")
    weights = np.exp(-potential.energy(gx, gy) / potential.kT - 12.0)
    edges = np.linspace(-2.4, 2.4, 49)  # bins of 0.1 nm
    histogram, _ = np.histogram(gx.ravel(), bins=edges, weights=weights.ravel())
    f_histogram = -np.log(histogram)
    # exact: bin averages of exp(-F) from 10 midpoints per bin
    offsets = (np.arange(10) + 0.5) / 10 * (edges[1] - edges[0])
    chi = (edges[:-1, None] + offsets[None, :]).ravel()
    f_exact = potential.exact_free_energy((1.0, 0.0), chi).reshape(-1, 10)
    f_exact_bins = -np.log(np.mean(np.exp(-f_exact), axis=1))
    difference = (f_histogram - f_histogram.min()) - (f_exact_bins - f_exact_bins.min())
    print("max |F_hist - F_exact| (kT):", np.abs(difference).max())
    assert np.abs(difference).max() < FREE_ENERGY_TOL_KT
    assert f_exact.shape == (48, 10) and f_exact.min() == 0.0


def test_rotated_double_well_slow_direction_is_first_principal_direction_in_a_basin():
    potential = rotated_double_well()
    c = np.array(potential.slow_direction)
    perp = np.array([-c[1], c[0]])
    uu, vv = np.meshgrid(np.linspace(-3.0, 0.0, 601), np.linspace(-2.0, 2.0, 801), indexing="ij")
    x, y = uu * c[0] + vv * perp[0], uu * c[1] + vv * perp[1]
    w = np.exp(-potential.energy(x, y) / potential.kT)
    w /= w.sum()
    xy = np.stack([x.ravel(), y.ravel()])
    mean = xy @ w.ravel()
    cov = ((xy - mean[:, None]) * w.ravel()) @ (xy - mean[:, None]).T
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    print("basin variances (v, u):", eigenvalues)
    assert abs(eigenvectors[:, 1] @ c) > 0.999
    assert eigenvalues[1] > eigenvalues[0] >= 0.25 * eigenvalues[1]  # std_v >= 0.5 std_u


# --------------------------------------------------------------------------------------------
# the OpenMM system and its dynamics
# --------------------------------------------------------------------------------------------
def test_build_makes_one_free_particle_with_x_y_features():
    potential = three_state()
    model = potential.build(z_force_constant=200.0 * u.kilojoule_per_mole / u.nanometer**2)
    system = model.system
    assert system.getNumParticles() == 1 and system.getNumConstraints() == 0
    assert system.getParticleMass(0).value_in_unit(u.dalton) == potential.mass_amu
    assert not system.usesPeriodicBoundaryConditions()
    assert [type(f).__name__ for f in system.getForces()] == ["CustomExternalForce"]
    assert model.topology.getNumAtoms() == 1
    assert model.positions.shape == (1, 3)
    assert [f.name for f in model.features] == ["x", "y"]
    values = [float(np.squeeze(f.evaluate(model.positions))) for f in model.features]
    assert values == list(potential.start)
    # z is confined by 0.5 kz z^2
    e = _openmm_energies(potential, np.array([[*potential.start, 0.0], [*potential.start, 0.3]]))
    assert e[1] - e[0] == pytest.approx(0.5 * 100.0 * 0.3**2, rel=1e-9)


def test_unbiased_langevin_run_samples_the_starting_basin():
    potential = three_state(300.0)
    model = potential.build()
    integrator = openmm.LangevinMiddleIntegrator(
        potential.temperature_K, potential.friction_per_ps, potential.timestep_ps
    )
    integrator.setRandomNumberSeed(2024)
    context = openmm.Context(
        model.system, integrator, openmm.Platform.getPlatformByName("Reference")
    )
    context.setPositions(model.positions)
    context.setVelocitiesToTemperature(potential.temperature_K, 2024)
    stride, n_samples = 50, 800  # 4e4 steps; velocities decorrelate in 1/friction = 8 steps
    positions, velocities = [], []
    for _ in range(n_samples):
        integrator.step(stride)
        state = context.getState(getPositions=True, getVelocities=True)
        positions.append(state.getPositions(asNumpy=True).value_in_unit(u.nanometer)[0, :2])
        velocities.append(
            state.getVelocities(asNumpy=True).value_in_unit(u.nanometer / u.picosecond)[0, :2]
        )
    positions, velocities = np.array(positions), np.array(velocities)

    # expected Boltzmann mean of basin A (points nearer A than B or C) by quadrature
    minima = np.array([p for p, _ in THREE_STATE_MINIMA.values()])
    xs = np.linspace(-2.5, 2.5, 501)
    gx, gy = np.meshgrid(xs, xs, indexing="ij")
    nearest = np.argmin(np.hypot(gx[..., None] - minima[:, 0], gy[..., None] - minima[:, 1]), -1)
    w = np.exp(-potential.energy(gx, gy) / potential.kT) * (nearest == 0)
    expected_mean = np.array([(w * gx).sum(), (w * gy).sum()]) / w.sum()

    assert np.all(np.argmin(np.linalg.norm(positions[:, None] - minima, axis=2), 1) == 0)
    blocks = positions.reshape(8, -1, 2).mean(axis=1)  # 8 blocks of 5000 steps (>25 IACT)
    sigma = blocks.std(axis=0, ddof=1) / np.sqrt(len(blocks))
    mean = positions.mean(axis=0)
    print("mean position", mean, "expected", expected_mean, "sigma", sigma)
    assert np.all(np.abs(mean - expected_mean) < N_SIGMA * sigma)

    # kinetic temperature of x-y motion: 2 * n_samples independent chi^2_1 terms
    r_kjmol = kT_kjmol(1.0)
    temperature = potential.mass_amu * np.mean(velocities**2) / r_kjmol
    sigma_t = potential.temperature_K * math.sqrt(2.0 / velocities.size)
    print("T_xy", temperature, "expected", potential.temperature_K, "sigma", sigma_t)
    assert abs(temperature - potential.temperature_K) < N_SIGMA * sigma_t


# --------------------------------------------------------------------------------------------
# errors a user can cause
# --------------------------------------------------------------------------------------------
def test_invalid_expression_is_reported_with_openmm_message():
    with pytest.raises(
        ValueError,
        match=r"system.expression is not a valid OpenMM energy expression of x and y: "
        r".*unexpected end of expression",
    ):
        from_expression("x^2 +", 300.0)


@pytest.mark.parametrize("expression, bad", [("x^2 + foo*y", "foo"), ("x^2 + z^2", "z")])
def test_expression_with_other_variables_is_rejected(expression, bad):
    with pytest.raises(ValueError, match=rf"only the variables x and y.*uses {bad}$"):
        from_expression(expression, 300.0)


def test_expression_not_finite_at_start_is_rejected():
    with pytest.raises(ValueError, match=r"must give a finite energy at the start point"):
        from_expression("log(x) + y^2", 300.0, start=(-1.0, 0.0))


def test_expression_valid_for_openmm_but_not_translatable_is_rejected():
    with pytest.raises(ValueError, match=r"cannot be translated to numpy: .*periodicdistance"):
        from_expression("periodicdistance(x, y, 0, 0, 0, 0)^2", 300.0, start=(0.1, 0.2))


def test_unknown_kind_and_option_are_rejected():
    with pytest.raises(
        ValueError,
        match=r"kind must be one of 'three_state', 'rotated_double_well', 'expression', "
        r"'mixed_slow_mode'. You supplied 'four_state'",
    ):
        make_model_potential("four_state", 300.0)
    with pytest.raises(ValueError, match=r"options for kind 'three_state' must be among"):
        make_model_potential("three_state", 300.0, barrier_kT=3.0)
    with pytest.raises(ValueError, match=r"kind 'expression' needs the option expression"):
        make_model_potential("expression", 300.0)
    with pytest.raises(ValueError, match=r"options for kind 'mixed_slow_mode' must be among"):
        make_model_potential("mixed_slow_mode", 300.0, angle_deg=10.0)


def test_make_model_potential_builds_each_kind():
    assert make_model_potential("three_state", 300.0) == three_state(300.0)
    assert make_model_potential("rotated_double_well", 300.0, angle_deg=10.0) == (
        rotated_double_well(300.0, angle_deg=10.0)
    )
    custom = make_model_potential("expression", 300.0, expression="x^2 + y^2", start=(0.1, 0))
    assert custom.energy(1.0, 2.0) == pytest.approx(5.0)


def test_bad_numbers_are_rejected():
    with pytest.raises(ValueError, match=r"temperature_K must be a finite number > 0"):
        three_state(-5.0)
    with pytest.raises(TypeError, match=r"temperature_K must be a temperature in K"):
        three_state(300.0 * u.nanometer)
    with pytest.raises(ValueError, match=r"coefficients must be a non-zero vector"):
        three_state().exact_free_energy((0.0, 0.0), [0.0])
    with pytest.raises(ValueError, match=r"barrier_kT must be a finite number > 0"):
        rotated_double_well(barrier_kT=0.0)
    with pytest.raises(ValueError, match=r"extent must be \(\(x_min, x_max\), \(y_min, y_max\)\)"):
        from_expression("x^2", 300.0, extent=((1.0, -1.0), (0.0, 1.0)))


#: |grad U| at the default start of an expression potential, kJ/mol/nm
START_GRADIENT_TOL = 1e-3


def test_expression_default_start_is_a_minimum_of_the_potential():
    potential = from_expression("5*(x^2-1)^2 + 10*(y-0.3*x)^2", 300.0)  # README's example
    x, y = potential.start
    h = 1e-5
    gx = (potential.energy(x + h, y) - potential.energy(x - h, y)) / (2 * h)
    gy = (potential.energy(x, y + h) - potential.energy(x, y - h)) / (2 * h)
    assert abs(float(gx)) < START_GRADIENT_TOL and abs(float(gy)) < START_GRADIENT_TOL
    assert float(potential.energy(x, y)) == pytest.approx(0.0, abs=1e-6)
