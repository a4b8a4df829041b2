"""The walker: Boltzmann sampling, biased MD reweighted back to the exact F, blow-up detection."""

import numpy as np
import openmm
import pytest
from openmm import app

from rave.learn.bias import Bias, BiasGrid
from rave.md.bias_force import bias_force, update_bias_force
from rave.md.features import evaluate_features
from rave.md.walker import MDError, Walker
from rave.stats import free_energy_profile, single_round_log_weights
from rave.systems.model_potentials import from_expression, rotated_double_well

TEMPERATURE_K = 300.0
#: RMS error (kT) of the reweighted biased-MD profile against quadrature where F < 4 kT; the
#: statistical error of ~4000 correlated frames per bin set is about 0.1-0.2 kT
REWEIGHT_RMSE_KT = 0.3
#: relative tolerance on a harmonic variance from 20,000 frames spaced by ~2 decorrelation times
#: (standard error about 1.5 %, so this is ~5 sigma)
VARIANCE_REL_TOL = 0.08


def _walker(potential, seed=1, **kwargs):
    model = potential.build()
    return Walker(model.system, model.positions, model.features, TEMPERATURE_K,
                  kwargs.pop("timestep_ps", potential.timestep_ps), potential.friction_per_ps,
                  seed=seed, platform="Reference", **kwargs)


def test_unbiased_walker_samples_the_boltzmann_variance_of_a_harmonic_well():
    k_x, k_y = 200.0, 50.0  # kJ/mol/nm^2
    potential = from_expression(f"0.5*{k_x}*x^2 + 0.5*{k_y}*y^2", TEMPERATURE_K)
    walker = _walker(potential, with_bias=False)
    walker.run(10_000, 100)  # equilibrate
    frames = walker.run(400_000, 20)
    kT = walker.kT
    variance = frames.features.var(axis=0)
    expected = np.array([kT / k_x, kT / k_y])
    print(f"variance {variance}, expected {expected}")
    np.testing.assert_allclose(variance, expected, rtol=VARIANCE_REL_TOL)
    assert np.all(frames.bias_kjmol == 0.0)


def test_biased_md_reweighted_with_its_bias_recovers_the_exact_free_energy():
    # a static bias of -0.8 F along the slow direction of the double well: the walker crosses
    # the 6 kT barrier often; weights exp(+V/kT) give back the unbiased F(chi) of quadrature
    potential = rotated_double_well(TEMPERATURE_K)
    c = np.asarray(potential.slow_direction)
    grid_chi = np.linspace(-2.2, 2.2, 200)
    exact = potential.exact_free_energy(c, grid_chi)
    kT = potential.kT
    bias = Bias(c, _grid_from_values(grid_chi, -0.8 * kT * (exact - exact.min())))
    walker = _walker(potential)
    walker.set_bias(bias)
    walker.run(20_000, 100)
    frames = walker.run(1_000_000, 50)
    np.testing.assert_allclose(frames.bias_kjmol, bias.energy(frames.features), atol=1e-6)
    chi = frames.features @ c
    log_w = single_round_log_weights(frames.bias_kjmol / kT)
    edges = np.linspace(-1.6, 1.6, 33)
    centers, profile = free_energy_profile(chi, log_w, edges)
    reference = potential.exact_free_energy(c, centers)
    region = np.isfinite(profile) & (reference < 4.0)
    diff = profile[region] - reference[region]
    rmse = float(np.sqrt(np.mean((diff - diff.mean()) ** 2)))
    crossings = int(np.count_nonzero(np.diff(np.sign(chi)) != 0))
    print(f"RMSE {rmse:.3f} kT over {region.sum()} bins, {crossings} sign changes of chi")
    assert crossings > 20, "the bias should make the barrier easy to cross"
    assert rmse <= REWEIGHT_RMSE_KT


def _grid_from_values(chi, values):
    return BiasGrid(float(chi[0]), float(chi[-1]), values - values.max())


def test_blow_up_is_reported_with_what_to_do():
    potential = from_expression("1000*(x^2 + y^2)", TEMPERATURE_K, start=(0.5, 0.5))
    walker = _walker(potential, timestep_ps=1.0)
    with pytest.raises(MDError, match="Lower sampling.timestep"):
        walker.run(10_000, 100)


def test_bias_force_group_clash_is_refused():
    potential = rotated_double_well(TEMPERATURE_K)
    model = potential.build()
    model.system.getForce(0).setForceGroup(30)
    with pytest.raises(ValueError, match="force group 30 is used"):
        Walker(model.system, model.positions, model.features, TEMPERATURE_K, 0.005, 25.0,
               force_group=30)


def test_bias_force_group_is_the_explicit_one_or_the_highest_free_one():
    potential = rotated_double_well(TEMPERATURE_K)
    model = potential.build()
    model.system.getForce(0).setForceGroup(31)
    picked = Walker(model.system, model.positions, model.features, TEMPERATURE_K, 0.005, 25.0)
    assert picked.force_group == 30 == picked.bias_force.force.getForceGroup()
    explicit = Walker(model.system, model.positions, model.features, TEMPERATURE_K, 0.005,
                      25.0, force_group=7)
    assert explicit.force_group == 7 == explicit.bias_force.force.getForceGroup()
    assert isinstance(explicit.simulation, app.Simulation)
    assert explicit.simulation.topology.getNumAtoms() == model.system.getNumParticles()


def _reference_frames(potential, bias, seed, n_frames, interval, force_group):
    """The walker's frames as the code before the Simulation computed them: a raw Context and
    integrator stepped ``interval`` steps per frame, the State's positions featurised with numpy
    and the bias energy of its force group, the time summed frame by frame. As there, the bias
    force starts at zero and the bias is put into the Context once it is made."""
    model = potential.build()
    system = openmm.XmlSerializer.clone(model.system)
    force = bias_force(model.features, Bias(np.zeros(2), BiasGrid.zero()), force_group)
    system.addForce(force)
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE_K, potential.friction_per_ps,
                                                 potential.timestep_ps)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(np.asarray(model.positions, dtype=float))
    context.setVelocitiesToTemperature(TEMPERATURE_K, seed)
    update_bias_force(force, context, bias)
    positions, energies, times, t = [], [], [], 0.0
    for _ in range(n_frames):
        integrator.step(interval)
        state = context.getState(getPositions=True, getEnergy=True, groups={force_group})
        positions.append(state.getPositions(asNumpy=True)._value)
        energies.append(state.getPotentialEnergy()._value)
        t += interval * potential.timestep_ps
        times.append(t)
    positions = np.array(positions)
    return evaluate_features(model.features, positions), np.array(energies), np.array(times)


@pytest.mark.parametrize("force_group", [None, 30])
def test_walker_frames_equal_a_raw_context_and_integrator_bit_for_bit(force_group):
    # the walker (app.Simulation, BiasForce, CVRecorder) runs the same physics, the same
    # numbers as the raw OpenMM loop it replaced: same integrator, seed and step sequence
    potential = rotated_double_well(TEMPERATURE_K)
    c = np.asarray(potential.slow_direction)
    grid_chi = np.linspace(-2.2, 2.2, 200)
    exact = potential.exact_free_energy(c, grid_chi)
    bias = Bias(c, _grid_from_values(grid_chi, -0.8 * potential.kT * (exact - exact.min())))
    walker = _walker(potential, seed=7, force_group=force_group)
    walker.set_bias(bias)
    first = walker.run(600 * 50, 50, snapshot_every=100)  # ten blocks of 60 frames
    second = walker.run(20 * 50, 50)
    features, energies, times = _reference_frames(potential, bias, 7, 620, 50,
                                                  walker.force_group)
    np.testing.assert_array_equal(np.concatenate([first.features, second.features]), features)
    np.testing.assert_array_equal(np.concatenate([first.bias_kjmol, second.bias_kjmol]),
                                  energies)
    np.testing.assert_array_equal(np.concatenate([first.time_ps, second.time_ps]), times)
    assert np.ptp(energies) > 1.0, "the frames should feel the bias"
    assert first.snapshot_frames.tolist() == list(range(0, 600, 100))
    np.testing.assert_array_equal(first.snapshots[:, 0, :2],
                                  features[first.snapshot_frames].astype(np.float32))
    assert walker.time_ps == times[-1]


def test_progress_moves_at_least_ten_times_per_run():
    # a slow system's round must not look stalled: before, a 250-frame round of the ligand
    # cavity was one block and its progress bar jumped from 0 to 100 % at the end
    walker = _walker(rotated_double_well(TEMPERATURE_K))
    for n_frames in (7, 250, 1000):
        done = []
        walker.run(n_frames * 10, 10, progress=done.append)
        assert sum(done) == n_frames
        assert len(done) == min(n_frames, 10)
