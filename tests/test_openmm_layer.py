"""The OpenMM-native layer: BiasForce and CVReporter in a user's own app.Simulation.

Alanine dipeptide in vacuum (workflows/alanine_dipeptide) on the Reference platform (double
precision), with two feature sets: sin/cos of phi and psi (single atoms: the bias is one
CustomCompoundBondForce) and a centroid distance beside them (a CustomCVForce).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import openmm
import pytest
from conftest import modules_after
from openmm import app, unit

import rave
from rave.bias_grid import BiasGrid
from rave.learn.bias import Bias, build_bias_grid
from rave.md import CVRecorder, CVReporter, free_force_group, read_cv
from rave.md.features import Dihedral, Distance, Position, evaluate_features, openmm_feature_values
from rave.units import kT_kjmol

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_DIR = ROOT / "workflows" / "alanine_dipeptide"
EXAMPLE = ROOT / "workflows" / "examples" / "openmm_script.py"
#: recorded feature value vs numpy on the same positions (the feature's own unit)
FEATURE_TOL = 1e-5
#: OpenMM (Reference, double) bias energy vs numpy's Bias.energy, kJ/mol
ENERGY_TOL_KJMOL = 1e-6
#: features from DCD positions (float32, Angstrom) vs the CV rows (dimensionless sin/cos)
DCD_FEATURE_TOL = 1e-4
PHI, PSI = (4, 6, 8, 14), (6, 8, 14, 16)
INTERVAL = 20


def dihedral_features() -> list:
    return [Dihedral(atoms, function, periodic=False, name=f"{function}_{angle}")
            for angle, atoms in (("phi", PHI), ("psi", PSI)) for function in ("sin", "cos")]


def centroid_features() -> list:
    """A centroid distance (methyl H's of ACE and NME) forces the CustomCVForce path."""
    return [*dihedral_features()[:2],
            Distance([1, 2, 3], [19, 20, 21], periodic=False, name="d_methyls")]


FEATURE_SETS = {"dihedrals": dihedral_features, "centroid": centroid_features}


def alanine_system() -> tuple[app.PDBFile, openmm.System]:
    pdb = app.PDBFile(str(SYSTEM_DIR / "alanine_dipeptide.pdb"))
    system = openmm.XmlSerializer.deserialize(
        (SYSTEM_DIR / "alanine_dipeptide_system.xml").read_text())
    return pdb, system


def simulation_of(pdb: app.PDBFile, system: openmm.System, seed: int = 3) -> app.Simulation:
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond,
                                                 2 * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    simulation = app.Simulation(pdb.topology, system, integrator,
                                openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(pdb.positions)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, seed)
    return simulation


class PositionRecorder:
    """A test reporter keeping the exact positions and times OpenMM reports."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.positions: list[np.ndarray] = []
        self.times: list[float] = []

    def describeNextReport(self, simulation):
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": False, "include": ["positions"]}

    def report(self, simulation, state):
        self.positions.append(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))
        self.times.append(state.getTime().value_in_unit(unit.picosecond))


def random_bias(features: np.ndarray, kT: float, seed: int = 0, n_points: int = 100) -> Bias:
    """A bias along a random direction, built from the frames as RAVE builds one, on a grid
    padded wide enough that the biased frames stay on it (not at its clamped edges)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=features.shape[1])
    c /= np.linalg.norm(c)
    return Bias(c, build_bias_grid(features @ c, None, kT, n_points=n_points, padding=3.0))


# ------------------------------------------------------------------------------ CVReporter
@pytest.mark.parametrize("feature_set", sorted(FEATURE_SETS))
def test_reporter_rows_equal_numpy_features_and_bias_of_the_same_positions(tmp_path,
                                                                          feature_set):
    features = FEATURE_SETS[feature_set]()
    pdb, system = alanine_system()
    bias_force = rave.BiasForce(system, features, 300.0)
    simulation = simulation_of(pdb, system)
    recorder = PositionRecorder(INTERVAL)
    path = tmp_path / "cv.txt"
    simulation.reporters += [rave.CVReporter(path, INTERVAL, features, bias=bias_force),
                             recorder]
    simulation.step(10 * INTERVAL)
    unbiased = read_cv(path)
    bias = random_bias(unbiased.features, bias_force.kT)
    bias_force.updateBias(simulation.context, bias)
    simulation.step(10 * INTERVAL)

    data = read_cv(path)
    positions = np.array(recorder.positions)
    expected = evaluate_features(features, positions)
    assert data.names == [f.name for f in features]
    assert data.features.shape == (20, len(features))
    np.testing.assert_allclose(data.features, expected, rtol=0, atol=FEATURE_TOL)
    np.testing.assert_allclose(data.time_ps, recorder.times, rtol=1e-12)
    np.testing.assert_allclose(data.time_ps, 0.002 * INTERVAL * np.arange(1, 21), rtol=1e-9)
    np.testing.assert_array_equal(data.bias_kjmol[:10], 0.0)
    np.testing.assert_allclose(data.bias_kjmol[10:], bias.energy(expected[10:]), rtol=0,
                               atol=ENERGY_TOL_KJMOL)
    assert np.ptp(data.bias_kjmol[10:]) > 0.1, "the bias should vary over the biased frames"
    # the numpy face the reporter uses agrees with the OpenMM face the bias force uses
    np.testing.assert_allclose(openmm_feature_values(features, positions, None, system),
                               expected, rtol=0, atol=FEATURE_TOL)


def test_cv_file_reads_with_genfromtxt_and_read_cv_alike(tmp_path):
    features = centroid_features()
    pdb, system = alanine_system()
    simulation = simulation_of(pdb, system)
    path = tmp_path / "cv.txt"
    simulation.reporters.append(CVReporter(str(path), INTERVAL, features))
    simulation.step(5 * INTERVAL)

    assert path.read_text().splitlines()[0] == "time_ps sin_phi cos_phi d_methyls bias_kjmol"
    table = np.genfromtxt(path, names=True)
    assert table.dtype.names == ("time_ps", "sin_phi", "cos_phi", "d_methyls", "bias_kjmol")
    data = read_cv(path)
    np.testing.assert_array_equal(data.time_ps, table["time_ps"])
    np.testing.assert_array_equal(data.features[:, 2], table["d_methyls"])
    np.testing.assert_array_equal(data.bias_kjmol, np.zeros(5))
    time_ps, values, bias_kjmol, names = data  # unpacks as arrays and names
    assert values.shape == (5, 3) and names == ["sin_phi", "cos_phi", "d_methyls"]


def test_read_cv_of_a_header_only_file_gives_empty_arrays(tmp_path):
    path = tmp_path / "cv.txt"
    CVReporter(path, 10, dihedral_features()).close()
    data = read_cv(path)
    assert data.features.shape == (0, 4) and data.time_ps.shape == (0,)
    assert data.bias_kjmol.shape == (0,)


def test_read_cv_refuses_a_file_that_is_not_a_cv_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("time sin_phi\n1 2\n")
    with pytest.raises(ValueError, match="is not a CV file"):
        read_cv(path)
    path.write_text("time_ps a bias_kjmol\n0.1 0.5 0.0\n0.2 0.5\n")
    with pytest.raises(ValueError, match="holds a row that is not 3 numbers"):
        read_cv(path)


def test_reporter_refuses_a_file_with_another_header_and_leaves_it_unchanged(tmp_path):
    path = tmp_path / "cv.txt"
    content = "time_ps sin_phi cos_phi bias_kjmol\n0.1 0.5 0.8 0.0\n"
    path.write_text(content)
    with pytest.raises(ValueError, match="exists with the header .* refusing to append"):
        CVReporter(path, 10, dihedral_features())
    path.write_text("my notes: do not lose\n")
    with pytest.raises(ValueError, match="refusing to append"):
        CVReporter(path, 10, dihedral_features())
    assert path.read_text() == "my notes: do not lose\n"


def test_reporter_refuses_a_file_ending_in_an_incomplete_row(tmp_path):
    path = tmp_path / "cv.txt"
    content = "time_ps sin_phi cos_phi sin_psi cos_psi bias_kjmol\n0.1 0.5 0.8 0.1"
    path.write_text(content)
    with pytest.raises(ValueError, match="ends in an incomplete row"):
        CVReporter(path, 10, dihedral_features())
    assert path.read_text() == content


def test_reporter_appends_to_a_file_with_the_same_header(tmp_path):
    features = dihedral_features()
    pdb, system = alanine_system()
    simulation = simulation_of(pdb, system)
    path = tmp_path / "cv.txt"
    first = CVReporter(path, INTERVAL, features)
    simulation.reporters.append(first)
    simulation.step(4 * INTERVAL)
    first.close()
    simulation.reporters.remove(first)
    before = path.read_bytes()

    again = CVReporter(path, INTERVAL, features)  # a restart: same features, same file
    simulation.reporters.append(again)
    simulation.step(3 * INTERVAL)
    again.close()
    assert path.read_bytes().startswith(before)
    data = read_cv(path)
    assert len(data.time_ps) == 7
    np.testing.assert_allclose(data.time_ps, 0.002 * INTERVAL * np.arange(1, 8), rtol=1e-9)
    assert path.read_text().count("time_ps") == 1


def test_closed_reporter_refuses_to_report(tmp_path):
    pdb, system = alanine_system()
    simulation = simulation_of(pdb, system)
    reporter = CVReporter(tmp_path / "cv.txt", INTERVAL, dihedral_features())
    reporter.close()
    simulation.reporters.append(reporter)
    with pytest.raises(ValueError, match="was closed"):
        simulation.step(INTERVAL)


def test_reporter_without_the_bias_of_a_biased_simulation_is_refused(tmp_path):
    features = dihedral_features()
    pdb, system = alanine_system()
    rave.BiasForce(system, features, 300.0)
    simulation = simulation_of(pdb, system)
    simulation.reporters.append(CVReporter(tmp_path / "cv.txt", INTERVAL, features))
    with pytest.raises(ValueError, match="holds a RAVE BiasForce, but this CVReporter"):
        simulation.step(INTERVAL)


def test_a_force_added_to_the_bias_group_is_refused_not_read_as_bias(tmp_path):
    features = dihedral_features()
    pdb, system = alanine_system()
    bias = rave.BiasForce(system, features, 300.0)
    extra = openmm.CustomExternalForce("0.1*x")  # a user's restraint, in the bias's group
    extra.addParticle(0, [])
    extra.setForceGroup(bias.forceGroup)
    system.addForce(extra)
    simulation = simulation_of(pdb, system)
    with pytest.raises(ValueError, match=rf"force group {bias.forceGroup} holds the RAVE bias "
                                         r"and 1 other force\(s\)"):
        bias.getBiasEnergy(simulation)
    simulation.reporters.append(CVReporter(tmp_path / "cv.txt", INTERVAL, features, bias=bias))
    with pytest.raises(ValueError, match="holds the RAVE bias and 1 other force"):
        simulation.step(INTERVAL)


@pytest.mark.parametrize(
    ("names", "message"),
    [(["sin phi"], "without whitespace"), (["a#b"], "without whitespace or '#'"),
     (["bias_kjmol"], "must not be 'time_ps' or 'bias_kjmol'"), (["x", "x"], "unique")],
)
def test_reporter_refuses_names_a_header_cannot_hold(tmp_path, names, message):
    features = [Position(0, "xyz"[i], name=name) for i, name in enumerate(names)]
    with pytest.raises(ValueError, match=message):
        CVReporter(tmp_path / "cv.txt", 10, features)
    assert not (tmp_path / "cv.txt").exists()


def test_reporter_refuses_a_bad_interval(tmp_path):
    with pytest.raises(ValueError, match="reportInterval must be an int >= 1"):
        CVReporter(tmp_path / "cv.txt", 0, dihedral_features())


def test_describe_next_report_counts_from_step_zero(tmp_path):
    reporter = CVReporter(tmp_path / "cv.txt", 50, dihedral_features())

    class At:
        currentStep = 0

    assert reporter.describeNextReport(At) == {"steps": 50, "periodic": False,
                                               "include": ["positions"]}
    At.currentStep = 130
    assert reporter.describeNextReport(At)["steps"] == 20


def test_dcd_frames_line_up_with_cv_rows(tmp_path):
    import mdtraj
    features = dihedral_features()
    pdb, system = alanine_system()
    simulation = simulation_of(pdb, system)
    cv, dcd = tmp_path / "cv.txt", tmp_path / "traj.dcd"
    simulation.reporters += [CVReporter(cv, INTERVAL, features),
                             app.DCDReporter(str(dcd), INTERVAL)]
    simulation.step(6 * INTERVAL)
    del simulation  # closes the DCD file
    traj = mdtraj.load(str(dcd), top=str(SYSTEM_DIR / "alanine_dipeptide.pdb"))
    np.testing.assert_allclose(evaluate_features(features, traj.xyz), read_cv(cv).features,
                               rtol=0, atol=DCD_FEATURE_TOL)



# ------------------------------------------------------------------------------ CVRecorder
@pytest.mark.parametrize("feature_set", sorted(FEATURE_SETS))
def test_recorder_frames_equal_the_reporter_rows(tmp_path, feature_set):
    # the in-memory form shares CVReporter's frames: same features, bias and times, in blocks
    features = FEATURE_SETS[feature_set]()
    pdb, system = alanine_system()
    bias_force = rave.BiasForce(system, features, 300.0)
    simulation = simulation_of(pdb, system)
    path = tmp_path / "cv.txt"
    recorder = CVRecorder(INTERVAL, features, bias=bias_force, snapshot_every=3, block_frames=7)
    positions = PositionRecorder(INTERVAL)
    simulation.reporters += [CVReporter(path, INTERVAL, features, bias=bias_force), recorder,
                             positions]
    simulation.step(10 * INTERVAL)
    bias_force.updateBias(simulation.context, random_bias(read_cv(path).features, bias_force.kT))
    simulation.step(10 * INTERVAL)
    rows, frames = read_cv(path), recorder.frames()
    assert len(recorder) == len(frames) == 20
    np.testing.assert_array_equal(frames.features, rows.features)
    np.testing.assert_array_equal(frames.bias_kjmol, rows.bias_kjmol)
    np.testing.assert_allclose(frames.time_ps, rows.time_ps, rtol=1e-11)
    np.testing.assert_array_equal(frames.time_ps, positions.times)
    assert np.ptp(frames.bias_kjmol[10:]) > 0.1
    assert frames.snapshot_frames.tolist() == [0, 3, 6, 9, 12, 15, 18]
    np.testing.assert_array_equal(
        frames.snapshots, np.array(positions.positions)[frames.snapshot_frames].astype(np.float32))


def test_recorder_on_block_can_stop_the_simulation_and_drops_that_block():
    features = dihedral_features()
    pdb, system = alanine_system()
    simulation = simulation_of(pdb, system)
    seen = []

    def on_block(first, positions, values, bias):
        seen.append((first, positions.shape, values.shape, bias.shape))
        if first > 0:
            raise RuntimeError("stop here")

    recorder = CVRecorder(INTERVAL, features, block_frames=4, on_block=on_block)
    simulation.reporters.append(recorder)
    with pytest.raises(RuntimeError, match="stop here"):
        simulation.step(10 * INTERVAL)
    assert seen == [(0, (4, 22, 3), (4, 4), (4,)), (4, (4, 22, 3), (4, 4), (4,))]
    assert simulation.currentStep == 8 * INTERVAL
    frames = recorder.frames()
    assert len(frames) == len(recorder) == 4 and frames.features.shape == (4, 4)
    np.testing.assert_array_equal(frames.bias_kjmol, 0.0)


def test_recorder_counts_frames_from_its_first_step():
    recorder = CVRecorder(50, dihedral_features(), first_step=30)

    class At:
        currentStep = 30

    assert recorder.describeNextReport(At)["steps"] == 50
    At.currentStep = 100
    assert recorder.describeNextReport(At)["steps"] == 30
    assert len(recorder.frames()) == 0 and recorder.frames().features.shape == (0, 4)


def test_recorder_without_the_bias_of_a_biased_simulation_is_refused():
    features = dihedral_features()
    pdb, system = alanine_system()
    rave.BiasForce(system, features, 300.0)
    simulation = simulation_of(pdb, system)
    simulation.reporters.append(CVRecorder(INTERVAL, features))
    with pytest.raises(ValueError, match="holds a RAVE BiasForce, but this CVRecorder"):
        simulation.step(INTERVAL)


def test_bias_force_takes_an_explicit_free_force_group():
    pdb, system = alanine_system()
    bias_force = rave.BiasForce(system, dihedral_features(), 300.0, forceGroup=5)
    assert bias_force.forceGroup == 5 == bias_force.force.getForceGroup()
    pdb, system = alanine_system()
    system.getForce(0).setForceGroup(5)
    n_forces = system.getNumForces()
    with pytest.raises(ValueError, match="force group 5 is used by the system's own forces"):
        rave.BiasForce(system, dihedral_features(), 300.0, forceGroup=5)
    with pytest.raises(ValueError, match="forceGroup must be in 0..31"):
        rave.BiasForce(system, dihedral_features(), 300.0, forceGroup=32)
    assert system.getNumForces() == n_forces

# ------------------------------------------------------------------------------- BiasForce
@pytest.mark.parametrize("feature_set", sorted(FEATURE_SETS))
def test_bias_energy_equals_numpy_bias_after_update_in_the_same_context(feature_set):
    features = FEATURE_SETS[feature_set]()
    pdb, system = alanine_system()
    bias_force = rave.BiasForce(system, features, 300 * unit.kelvin)
    simulation = simulation_of(pdb, system)
    context = simulation.context
    assert bias_force.getBiasEnergy(context) == 0 * unit.kilojoule_per_mole
    frames = []
    for _ in range(20):
        simulation.step(INTERVAL)
        frames.append(bias_force.getCollectiveVariables(simulation))
    for seed, n_points in ((1, 64), (2, 150)):  # a second update with another grid size
        bias = random_bias(np.array(frames), bias_force.kT, seed=seed, n_points=n_points)
        bias_force.updateBias(simulation, bias)
        assert simulation.context is context and bias_force.bias is bias
        for _ in range(5):
            simulation.step(INTERVAL)
            values = bias_force.getCollectiveVariables(context)
            energy = bias_force.getBiasEnergy(context)
            assert unit.is_quantity(energy)
            assert energy.value_in_unit(unit.kilojoule_per_mole) == pytest.approx(
                float(bias.energy(values[None])[0]), abs=ENERGY_TOL_KJMOL)
        positions = context.getState(getPositions=True).getPositions(asNumpy=True)
        np.testing.assert_allclose(values, evaluate_features(features, positions)[0],
                                   rtol=0, atol=FEATURE_TOL)
    assert bias.energy(values[None])[0] != 0.0


def test_bias_sits_alone_in_the_highest_free_force_group():
    pdb, system = alanine_system()
    system.getForce(0).setForceGroup(31)
    system.getForce(1).setForceGroup(29)
    nonbonded = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    nonbonded.setReciprocalSpaceForceGroup(30)  # occupied though no force has it as group
    assert free_force_group(system) == 28
    bias_force = rave.BiasForce(system, dihedral_features(), 300.0)
    assert bias_force.forceGroup == 28
    groups = [f.getForceGroup() for f in system.getForces()]
    assert groups.count(28) == 1
    assert bias_force.force.getForceGroup() == 28


def test_system_with_all_32_force_groups_used_is_refused():
    pdb, system = alanine_system()
    for group in range(32):
        force = openmm.CustomExternalForce("0")
        force.setForceGroup(group)
        system.addForce(force)
    n_forces = system.getNumForces()
    with pytest.raises(ValueError, match="system uses all 32 force groups"):
        rave.BiasForce(system, dihedral_features(), 300.0)
    assert system.getNumForces() == n_forces  # nothing added


def test_second_bias_force_in_one_system_is_refused():
    pdb, system = alanine_system()
    rave.BiasForce(system, dihedral_features(), 300.0)
    with pytest.raises(ValueError, match="already holds a RAVE bias"):
        rave.BiasForce(system, dihedral_features(), 300.0)


def test_context_made_before_the_bias_force_is_refused():
    pdb, system = alanine_system()
    simulation = simulation_of(pdb, system)
    bias_force = rave.BiasForce(system, dihedral_features(), 300.0)
    with pytest.raises(ValueError, match="does not hold the RAVE bias"):
        bias_force.getBiasEnergy(simulation.context)
    bias = Bias(np.array([1.0, 0, 0, 0]), build_bias_grid(np.linspace(-1, 1, 50), None, 2.5))
    with pytest.raises(ValueError, match="Create the Simulation or Context after BiasForce"):
        bias_force.updateBias(simulation.context, bias)


def test_update_with_a_bias_of_other_dimension_is_refused():
    pdb, system = alanine_system()
    bias_force = rave.BiasForce(system, dihedral_features(), 300.0)
    simulation = simulation_of(pdb, system)
    bias = Bias(np.array([1.0, 0.0]), build_bias_grid(np.linspace(-1, 1, 50), None, 2.5))
    with pytest.raises(ValueError, match="bias has 2 coefficients, but this BiasForce has 4"):
        bias_force.updateBias(simulation.context, bias)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [({"features": []}, ValueError, "at least one order parameter"),
     ({"temperature": -1.0}, ValueError, "temperature must be > 0 K"),
     ({"temperature": 1.0 * unit.nanometer}, TypeError, "must be a temperature"),
     ({"features": [Dihedral(PHI, "sin")]}, ValueError, "periodic=True, but the system has no"),
     ({"features": [Position(99, "x")]}, ValueError, "uses particle 99, but the system has 22")],
)
def test_bad_bias_force_arguments_are_refused(kwargs, error, message):
    pdb, system = alanine_system()
    arguments = {"system": system, "features": dihedral_features(), "temperature": 300.0,
                 **kwargs}
    with pytest.raises(error, match=message):
        rave.BiasForce(**arguments)


def test_temperature_is_a_quantity_or_kelvin():
    _, system = alanine_system()
    kelvin = rave.BiasForce(system, dihedral_features(), 300.0)
    _, system = alanine_system()
    quantity = rave.BiasForce(system, dihedral_features(), 300.0 * unit.kelvin)
    assert kelvin.kT == quantity.kT == pytest.approx(kT_kjmol(300.0))
    assert kelvin.temperature == quantity.temperature == 300.0 * unit.kelvin


def test_bias_force_update_is_a_deprecated_name_of_update_bias():
    _, system = alanine_system()
    bias_force = rave.BiasForce(system, dihedral_features(), 300.0)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    bias = Bias(np.array([1.0, 0.0, 0.0, 0.0]), BiasGrid(-1.0, 1.0, np.linspace(-2.0, 0.0, 8)))
    with pytest.warns(DeprecationWarning, match="use BiasForce.updateBias"):
        bias_force.update(context, bias)
    assert bias_force.bias is bias


# ------------------------------------------------------------------------------ public face
def test_rave_version_prints_the_version(capsys):
    from rave.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rave {rave.__version__}"


def test_import_rave_imports_neither_torch_nor_openmm():
    assert modules_after("import rave; assert rave.__all__", "torch", "openmm") == []


def test_md_layer_imports_openmm_but_not_torch():
    statement = "from rave import BiasForce, CVReporter, read_cv"
    assert modules_after(statement, "torch", "openmm") == ["openmm"]


def test_public_names_are_exported():
    assert set(rave.__all__) == {"BiasForce", "CVReporter", "RAVE", "RAVESampler", "read_cv",
                                 "Position", "Distance", "Angle", "Dihedral",
                                 "features_from_tables", "__version__"}
    assert rave.Dihedral is rave.md.features.Dihedral
    assert rave.BiasForce is rave.md.BiasForce and rave.read_cv is read_cv
    with pytest.raises(AttributeError, match="has no attribute 'RAVEX'"):
        rave.RAVEX  # noqa: B018


# ---------------------------------------------------------------------------------- example
def test_example_script_runs_two_rounds(tmp_path):
    spec = importlib.util.spec_from_file_location("openmm_script", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.run_example(tmp_path, steps=2000, interval=20, quick=True)
    round0, round1 = result["rounds"]
    assert len(round0.time_ps) == len(round1.time_ps) == 100
    np.testing.assert_array_equal(round0.bias_kjmol, 0.0)
    bias = result["bias"]
    np.testing.assert_allclose(round1.bias_kjmol, bias.energy(round1.features), rtol=0,
                               atol=ENERGY_TOL_KJMOL)
    assert np.linalg.norm(bias.coefficients) == pytest.approx(1.0)
    assert np.any(round1.bias_kjmol < 0)
    assert round1.time_ps[0] > round0.time_ps[-1]  # the same Simulation went on
    assert 1 <= result["ess"] <= 200
    assert len(result["log_weights"]) == 200
    with pytest.raises(FileExistsError, match="give another --out"):
        example.run_example(tmp_path, steps=20, interval=20, quick=True)


def test_positions_are_read_the_same_with_and_without_openmms_array_reader():
    """rave.md.reporter reads positions through OpenMM's private array reader when it exists,
    else through the public getPositions: both give the same numbers."""
    import openmm

    from rave.md.reporter import _positions

    system = openmm.System()
    for _ in range(3):
        system.addParticle(1.0)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    xyz = np.array([[0.1, 0.2, 0.3], [1.5, -2.0, 0.25], [3.0, 0.0, -1.0]])
    context.setPositions(xyz)
    state = context.getState(getPositions=True)

    class PublicOnly:  # a State without the private reader
        def getPositions(self, asNumpy=False):  # noqa: N802 (OpenMM's name)
            return state.getPositions(asNumpy=asNumpy)

    fast = _positions(state, np.empty((3, 3)))
    public = _positions(PublicOnly(), np.empty((3, 3)))
    np.testing.assert_array_equal(fast, xyz)
    np.testing.assert_array_equal(public, xyz)


def test_names_mean_the_feature_names_in_the_reporter_and_the_reader(tmp_path):
    # indexing the read-back features by the reporter's names must pick the right columns
    features = dihedral_features()
    pdb, system = alanine_system()
    bias = rave.BiasForce(system, features, 300.0)
    simulation = simulation_of(pdb, system)
    reporter = CVReporter(tmp_path / "cv.txt", INTERVAL, features, bias=bias)
    simulation.reporters.append(reporter)
    simulation.step(3 * INTERVAL)
    reporter.close()
    data = read_cv(tmp_path / "cv.txt")
    assert reporter.names == data.names == ["sin_phi", "cos_phi", "sin_psi", "cos_psi"]
    assert reporter.columns == ["time_ps", *data.names, "bias_kjmol"]
    # the columns by name: sin^2 + cos^2 of the same angle is 1 in every frame
    sin_phi = data.features[:, reporter.names.index("sin_phi")]
    cos_phi = data.features[:, reporter.names.index("cos_phi")]
    np.testing.assert_allclose(sin_phi ** 2 + cos_phi ** 2, 1.0, atol=1e-6)
