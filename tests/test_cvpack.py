"""cvpack collective variables as rave order parameters, on alanine dipeptide.

Each cvpack CV is wrapped in a :class:`rave.md.features.ForceFeature` (or built from a
``[[features]] kind = "cvpack"`` table) and checked against a computation that does not go
through cvpack or OpenMM: mdtraj, or numpy in float64 from the CV's documented formula.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# cvpack and mdtraj are test dependencies (pyproject's [test] extra): a missing one fails the
# suite at import, it does not skip these checks silently
import cvpack
import mdtraj
import numpy as np
import openmm
import pytest
from openmm import app

import rave
from rave.campaign.config import ConfigError, config_from_dict, load_config
from rave.campaign.simsystem import build_simulation_system
from rave.learn.bias import Bias, BiasGrid
from rave.md.features import ForceFeature, evaluate_features, feature_from_dict

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_DIR = ROOT / "workflows" / "alanine_dipeptide"
ALANINE = SYSTEM_DIR / "alanine_dipeptide.toml"
#: cvpack's value vs mdtraj (which computes in float32), nm
MDTRAJ_TOL_NM = 1e-5
#: cvpack's value (OpenMM Reference platform, double) vs numpy in float64, in the CV's unit
NUMPY_TOL = 1e-9
#: the bias energy OpenMM applies vs numpy's Bias.energy, kJ/mol
ENERGY_TOL_KJMOL = 1e-6
#: the CVReporter's rows vs the features evaluated on the reported positions
REPORTER_TOL = 1e-5
#: phi = C(ACE) N CA C and psi = N CA C N(NME), 0-based atom indices of the PDB
PHI, PSI = (4, 6, 8, 14), (6, 8, 14, 16)


# --------------------------------------------------------------------------------------------
# the system and independent references
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ala():
    """PDB positions (nm, float64), System, mdtraj topology and heavy-atom indices."""
    pdb = app.PDBFile(str(SYSTEM_DIR / "alanine_dipeptide.pdb"))
    system = openmm.XmlSerializer.deserialize(
        (SYSTEM_DIR / "alanine_dipeptide_system.xml").read_text())
    topology = mdtraj.Topology.from_openmm(pdb.topology)
    positions = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer),
                           dtype=float)
    heavy = [int(i) for i in topology.select("not element H")]
    return {"pdb": pdb, "system": system, "topology": topology, "positions": positions,
            "heavy": heavy}


def _rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _frames(positions: np.ndarray, seed: int, n_frames: int = 5, noise_nm: float = 0.02,
            rotate: bool = True) -> np.ndarray:
    """Perturbed, rotated and shifted copies of ``positions``, rounded to float32 (so mdtraj
    and the feature see the same coordinates)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_frames):
        x = positions + rng.normal(scale=noise_nm, size=positions.shape)
        if rotate:
            x = x @ _rotation(rng).T + rng.uniform(-1.0, 1.0, size=3)
        out.append(x)
    return np.asarray(out, dtype=np.float32).astype(np.float64)


def _trajectory(x: np.ndarray, topology) -> mdtraj.Trajectory:
    return mdtraj.Trajectory(x.astype(np.float32), topology)


def _rg_numpy(x: np.ndarray, atoms) -> np.ndarray:
    """Unweighted radius of gyration (cvpack's definition), float64."""
    sel = x[:, atoms, :]
    return np.sqrt(((sel - sel.mean(axis=1, keepdims=True)) ** 2).sum(axis=(1, 2)) / len(atoms))


def _rmsd_numpy(x: np.ndarray, reference: np.ndarray, atoms) -> np.ndarray:
    """RMSD after optimal superposition of the centroid-centred groups (Kabsch), float64."""
    q = reference[atoms] - reference[atoms].mean(axis=0)
    out = []
    for frame in x:
        p = frame[atoms] - frame[atoms].mean(axis=0)
        u_, s, vt = np.linalg.svd(p.T @ q)
        d = np.sign(np.linalg.det(u_ @ vt))
        msd = ((p ** 2).sum() + (q ** 2).sum() - 2.0 * (s[0] + s[1] + d * s[2])) / len(atoms)
        out.append(np.sqrt(max(msd, 0.0)))
    return np.asarray(out)


def _dihedral_numpy(x: np.ndarray, quad) -> np.ndarray:
    """IUPAC dihedral angle in (-pi, pi], float64."""
    p0, p1, p2, p3 = (x[:, i, :] for i in quad)
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
    y = np.linalg.norm(b1, axis=1) * (b0 * n2).sum(axis=1)
    return np.arctan2(y, (n1 * n2).sum(axis=1))


def _excluded_pairs(system: openmm.System) -> set[frozenset[int]]:
    """The pairs of the System's NonbondedForce exceptions (cvpack excludes them)."""
    (nonbonded,) = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)]
    return {frozenset(nonbonded.getExceptionParameters(k)[:2])
            for k in range(nonbonded.getNumExceptions())}


def _contacts_numpy(x, group1, group2, excluded, r0, cutoff_factor, switch_factor):
    """cvpack.NumberOfContacts' documented sum of S(r/r0) = 1/(1+(r/r0)^6) over the pairs of
    group1 x group2 that are not excluded, times OpenMM's switching function
    1 - 6t^5 + 15t^4 - 10t^3, t = (r - r_s)/(r_c - r_s), zero from r_c = cutoff_factor r0."""
    pairs = [(i, j) for i in group1 for j in group2 if frozenset((i, j)) not in excluded]
    r = np.linalg.norm(x[:, [i for i, _ in pairs]] - x[:, [j for _, j in pairs]], axis=2)
    rs, rc = switch_factor * r0, cutoff_factor * r0
    t = np.clip((r - rs) / (rc - rs), 0.0, 1.0)
    switch = 1.0 - 6.0 * t ** 5 + 15.0 * t ** 4 - 10.0 * t ** 3
    value = np.where(r < rc, switch / (1.0 + (r / r0) ** 6), 0.0)
    return value.sum(axis=1), r


def _path_numpy(cvs: np.ndarray, milestones: np.ndarray, sigma: float):
    """Branduardi's path CV as cvpack documents it, for angles (periodic deltas):
    w_i = exp(-|c - c_i|^2 / (2 sigma^2)), s = (sum_i i w_i / sum_i w_i - 1) / (n - 1) with
    i = 1..n, z = -2 sigma^2 ln sum_i w_i."""
    delta = cvs[:, None, :] - milestones[None, :, :]
    delta = np.angle(np.exp(1j * delta))  # shortest angular difference
    w = np.exp(-(delta ** 2).sum(axis=2) / (2.0 * sigma ** 2))
    n = milestones.shape[0]
    index = np.arange(1, n + 1)
    s = ((w * index).sum(axis=1) / w.sum(axis=1) - 1.0) / (n - 1)
    z = -2.0 * sigma ** 2 * np.log(w.sum(axis=1))
    return s, z


def _assert_varies(values: np.ndarray, tol: float) -> None:
    """The frames give values that differ by far more than the tolerance (so a constant, or
    the reference configuration's value, would fail the comparison)."""
    assert np.ptp(values) > 100 * tol, values


# --------------------------------------------------------------------------------------------
# each cvpack CV against an independent computation
# --------------------------------------------------------------------------------------------
def test_radius_of_gyration_equals_mdtraj(ala):
    heavy = ala["heavy"]
    feature = ForceFeature(cvpack.RadiusOfGyration(heavy), heavy)
    x = _frames(ala["positions"], seed=1)
    values = feature.evaluate(x)
    # cvpack's Rg is unweighted (distances from the geometric centre): mdtraj with masses=None
    expected = mdtraj.compute_rg(_trajectory(x, ala["topology"]).atom_slice(heavy))
    print("Rg", values, "mdtraj", expected, "max |diff|", np.abs(values - expected).max())
    np.testing.assert_allclose(values, expected, rtol=0, atol=MDTRAJ_TOL_NM)
    np.testing.assert_allclose(values, _rg_numpy(x, heavy), rtol=0, atol=NUMPY_TOL)
    _assert_varies(values, MDTRAJ_TOL_NM)
    assert feature.unit == "nm" and feature.name == "radius_of_gyration"


def test_rmsd_equals_mdtraj(ala):
    heavy, reference = ala["heavy"], ala["positions"]
    feature = ForceFeature(cvpack.RMSD(reference, heavy, len(reference)), heavy)
    x = _frames(reference, seed=2)  # perturbed, rotated and shifted: superposition matters
    values = feature.evaluate(x)
    # both superpose the groups' geometric centres and rotate optimally (unweighted)
    ref_traj = _trajectory(reference[None], ala["topology"])
    expected = mdtraj.rmsd(_trajectory(x, ala["topology"]), ref_traj, atom_indices=heavy)
    print("RMSD", values, "mdtraj", expected, "max |diff|", np.abs(values - expected).max())
    np.testing.assert_allclose(values, expected, rtol=0, atol=MDTRAJ_TOL_NM)
    np.testing.assert_allclose(values, _rmsd_numpy(x, reference, heavy), rtol=0,
                               atol=NUMPY_TOL)
    _assert_varies(values, MDTRAJ_TOL_NM)
    assert feature.evaluate(reference)[0] < 1e-6  # the reference itself: zero
    assert feature.unit == "nm"


def test_number_of_contacts_equals_its_switching_function(ala):
    system, top = ala["system"], ala["topology"]
    group1 = [int(i) for i in top.select("resname ACE and not element H")]
    group2 = [int(i) for i in top.select("(resname ALA or resname NME) and not element H")]
    nonbonded = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)][0]
    r0, cutoff_factor, switch_factor = 0.25, 2.0, 1.5
    cv = cvpack.NumberOfContacts(group1, group2, nonbonded, thresholdDistance=r0,
                                 cutoffFactor=cutoff_factor, switchFactor=switch_factor)
    feature = ForceFeature(cv, group1 + group2)
    x = _frames(ala["positions"], seed=3, noise_nm=0.03)
    values = feature.evaluate(x)
    excluded = _excluded_pairs(system)
    expected, r = _contacts_numpy(x, group1, group2, excluded, r0, cutoff_factor, switch_factor)
    print("contacts", values, "numpy", expected, "max |diff|", np.abs(values - expected).max())
    np.testing.assert_allclose(values, expected, rtol=0, atol=NUMPY_TOL)
    _assert_varies(values, NUMPY_TOL)
    # the frames reach every branch: plain S(x), the switched range, beyond the cutoff; and
    # the exclusions matter (bonded pairs across the groups, r < r0, would count ~1 each)
    assert (r < switch_factor * r0).any() and (r > cutoff_factor * r0).any()
    assert ((r > switch_factor * r0) & (r < cutoff_factor * r0)).any()
    assert any(frozenset((i, j)) in excluded for i in group1 for j in group2)
    assert feature.unit == "1"


@pytest.mark.parametrize("metric", ["progress", "deviation"])
def test_path_in_cv_space_equals_its_formula(ala, metric):
    milestones = np.array([[1.3, -0.2], [1.2, 3.1], [-2.7, 2.9], [-1.3, 2.7]])  # phi, psi
    sigma = np.pi / 6
    variables = [cvpack.Torsion(*PHI), cvpack.Torsion(*PSI)]
    cv = cvpack.PathInCVSpace(getattr(cvpack.path, metric), variables, milestones, sigma)
    feature = ForceFeature(cv, sorted(set(PHI + PSI)))
    x = _frames(ala["positions"], seed=4, noise_nm=0.04)
    values = feature.evaluate(x)
    angles = np.stack([_dihedral_numpy(x, PHI), _dihedral_numpy(x, PSI)], axis=1)
    progress, deviation = _path_numpy(angles, milestones, sigma)
    expected = progress if metric == "progress" else deviation
    print(metric, values, "numpy", expected, "max |diff|", np.abs(values - expected).max())
    np.testing.assert_allclose(values, expected, rtol=0, atol=NUMPY_TOL)
    _assert_varies(values, NUMPY_TOL)


def test_cvpack_features_round_trip_through_json(ala):
    heavy, reference = ala["heavy"], ala["positions"]
    features = [ForceFeature(cvpack.RadiusOfGyration(heavy), heavy, name="rg"),
                ForceFeature(cvpack.RMSD(reference, heavy, len(reference)), heavy, name="rmsd")]
    x = _frames(reference, seed=5)
    for feature, expected in zip(features, (_rg_numpy(x, heavy),
                                            _rmsd_numpy(x, reference, heavy)), strict=True):
        again = feature_from_dict(json.loads(json.dumps(feature.to_dict())))
        assert again == feature and again.unit == "nm"
        np.testing.assert_allclose(again.evaluate(x), expected, rtol=0, atol=NUMPY_TOL)
        np.testing.assert_array_equal(again.evaluate(x), feature.evaluate(x))


# --------------------------------------------------------------------------------------------
# the OpenMM face: a user's Simulation with a BiasForce over cvpack CVs
# --------------------------------------------------------------------------------------------
class _PositionRecorder:
    """Records the positions (nm, float64) OpenMM reports, at a fixed interval."""

    def __init__(self, interval: int) -> None:
        self.interval, self.positions = interval, []

    def describeNextReport(self, simulation):  # noqa: N802 - OpenMM's name
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": False, "include": ["positions"]}

    def report(self, simulation, state) -> None:
        self.positions.append(np.asarray(
            state.getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer), float))


def test_bias_force_over_cvpack_cvs_in_a_simulation(ala, tmp_path):
    heavy, reference = ala["heavy"], ala["positions"]
    system = openmm.XmlSerializer.deserialize(
        (SYSTEM_DIR / "alanine_dipeptide_system.xml").read_text())
    features = [ForceFeature(cvpack.RadiusOfGyration(heavy), heavy, name="rg"),
                ForceFeature(cvpack.RMSD(reference, heavy, len(reference)), heavy, name="rmsd")]
    bias_force = rave.BiasForce(system, features, 300.0)
    integrator = openmm.LangevinMiddleIntegrator(300.0, 5.0, 0.002)
    integrator.setRandomNumberSeed(7)
    simulation = app.Simulation(ala["pdb"].topology, system, integrator,
                                openmm.Platform.getPlatformByName("Reference"))
    simulation.context.setPositions(reference)
    simulation.context.setVelocitiesToTemperature(300.0, 7)

    def independent(x):  # numpy in float64, no cvpack, no OpenMM
        return np.stack([_rg_numpy(x, heavy), _rmsd_numpy(x, reference, heavy)], axis=1)

    # a non-zero bias whose grid spans the values reached: V = 20 sin(...) kJ/mol
    coefficients = np.array([1.0, 3.0])
    chi0 = float((independent(reference[None]) @ coefficients)[0])
    grid = BiasGrid(chi0 - 0.05, chi0 + 0.25, 20.0 * np.sin(np.linspace(0.0, 6.0, 41)))
    bias = Bias(coefficients, grid)
    bias_force.updateBias(simulation.context, bias)
    cv_file = tmp_path / "cvpack.cv"
    simulation.reporters.append(rave.CVReporter(str(cv_file), 10, features, bias=bias_force))
    recorder = _PositionRecorder(10)
    simulation.reporters.append(recorder)
    simulation.step(200)

    data = rave.read_cv(cv_file)
    x = np.asarray(recorder.positions)
    assert data.names == ["rg", "rmsd"] and data.features.shape == (20, 2) and len(x) == 20
    values = independent(x)
    print("rows vs numpy: max |diff|", np.abs(data.features - values).max(), "bias rows vs "
          "Bias.energy: max |diff|", np.abs(data.bias_kjmol - bias.energy(values)).max(),
          "chi", bias.chi(values).min(), bias.chi(values).max(), "bias", data.bias_kjmol.min(),
          data.bias_kjmol.max())
    np.testing.assert_allclose(data.features, evaluate_features(features, x), rtol=0,
                               atol=REPORTER_TOL)
    np.testing.assert_allclose(data.features, values, rtol=0, atol=REPORTER_TOL)
    np.testing.assert_allclose(data.bias_kjmol, bias.energy(values), rtol=0,
                               atol=ENERGY_TOL_KJMOL)
    assert np.ptp(values[:, 1]) > 1e-3, "the RMSD did not move"
    assert np.ptp(data.bias_kjmol) > 0.1 and np.abs(data.bias_kjmol).max() > 0.1
    assert ((bias.chi(values) > grid.chi_min) & (bias.chi(values) < grid.chi_max)).all()
    # the energy OpenMM applies now vs numpy's Bias.energy at the Context's positions
    state = simulation.context.getState(getPositions=True)
    now = np.asarray(state.getPositions(asNumpy=True).value_in_unit(openmm.unit.nanometer))
    applied = bias_force.getBiasEnergy(simulation.context).value_in_unit(
        openmm.unit.kilojoule_per_mole)
    expected = float(bias.energy(independent(now[None]))[0])
    print("bias energy: OpenMM", applied, "numpy", expected)
    assert abs(applied - expected) < ENERGY_TOL_KJMOL and abs(expected) > 0.1
    np.testing.assert_allclose(bias_force.getCollectiveVariables(simulation.context).ravel(),
                               independent(now[None])[0], rtol=0, atol=NUMPY_TOL)


# --------------------------------------------------------------------------------------------
# [[features]] kind = "cvpack" in a campaign config
# --------------------------------------------------------------------------------------------
def _config_with(features: list[dict]):
    data = load_config(ALANINE).to_dict()
    data["features"] = features
    return config_from_dict(data)


def test_cvpack_features_from_a_campaign_config(ala):
    heavy_sel = "not element H"
    config = _config_with([
        {"kind": "cvpack", "cv": "RadiusOfGyration", "name": "rg",
         "atoms": {"group": heavy_sel}},
        {"kind": "cvpack", "cv": "RMSD", "atoms": {"group": heavy_sel}},
        {"kind": "cvpack", "cv": "NumberOfContacts", "name": "contacts",
         "atoms": {"group1": "resname ACE and not element H",
                   "group2": "(resname ALA or resname NME) and not element H"},
         "options": {"thresholdDistance": 0.25}},
        {"kind": "cvpack", "cv": "Distance", "name": "d", "unit": "nm",
         "atoms": {"atom1": "resname ACE and name C", "atom2": "resname NME and name N"}},
        {"kind": "dihedral", "name": "sin_phi", "function": "sin",
         "groups": ["resname ACE and name C", "resname ALA and name N",
                    "resname ALA and name CA", "resname ALA and name C"]},
    ])
    sim = build_simulation_system(config)
    assert [f.name for f in sim.features] == ["rg", "rmsd", "contacts", "d", "sin_phi"]
    assert [f.kind for f in sim.features[:4]] == ["openmm_force"] * 4
    assert [f.unit for f in sim.features[:4]] == ["nm", "nm", "1", "nm"]
    heavy, reference = ala["heavy"], ala["positions"]
    assert sim.features[0].particles == tuple(heavy)
    x = _frames(reference, seed=6, noise_nm=0.03)
    values = evaluate_features(sim.features, x)
    group1 = [int(i) for i in ala["topology"].select("resname ACE and not element H")]
    group2 = [int(i) for i in ala["topology"].select(
        "(resname ALA or resname NME) and not element H")]
    contacts, _ = _contacts_numpy(x, group1, group2, _excluded_pairs(ala["system"]), 0.25,
                                  2.0, 1.5)
    expected = np.stack([
        _rg_numpy(x, heavy),
        _rmsd_numpy(x, reference, heavy),  # referencePositions: the PDB's, filled in
        contacts,
        np.linalg.norm(x[:, 4] - x[:, 16], axis=1),
    ], axis=1)
    np.testing.assert_allclose(values[:, :4], expected, rtol=0, atol=NUMPY_TOL)
    np.testing.assert_allclose(values[:, 4], np.sin(_dihedral_numpy(x, PHI)), rtol=0,
                               atol=NUMPY_TOL)
    # stored as features.json stores them, and rebuilt by the walkers
    again = [feature_from_dict(json.loads(json.dumps(f.to_dict()))) for f in sim.features]
    np.testing.assert_array_equal(evaluate_features(again, x), values)


@pytest.mark.parametrize("entry, message", [
    ({"cv": "RadiusOfGyraton", "atoms": {"group": "all"}},
     r"features\[0\]\.cv must name a cvpack collective variable, one of .*RadiusOfGyration"),
    ({"cv": "RadiusOfGyration", "atoms": {"group": "all"}, "options": {"weighByMass": True}},
     r"features\[0\]: cvpack.RadiusOfGyration refuses the arguments .*signature: "
     r"cvpack.RadiusOfGyration\(group"),
    ({"cv": "RadiusOfGyration", "atoms": {"group": "all"}, "options": {"colour": 1}},
     r"refuses the arguments .*unexpected keyword argument 'colour'"),
    ({"cv": "RadiusOfGyration", "atoms": {"atoms": "all"}},
     r"features\[0\]\.atoms\.atoms: cvpack.RadiusOfGyration\(group.* has no argument 'atoms'"),
    ({"cv": "RadiusOfGyration", "atoms": {"group": "resname XYZ"}},
     r"features\[0\]\.atoms\.group: the selection 'resname XYZ' matches no atom"),
    ({"cv": "RadiusOfGyration", "group": "all"},
     r"features\[0\]: unknown key\(s\) group for a 'cvpack' feature"),
    ({"cv": "RadiusOfGyration"}, r"features\[0\]\.atoms must be a table"),
    ({"cv": "Distance", "atoms": {"atom1": "name CA or name N", "atom2": 0}},
     r"features\[0\]\.atoms\.atom1 takes one atom; the selection .* matches 3"),
    ({"cv": "Distance", "atoms": {"atom1": 4, "atom2": 16}, "options": {"pbc": True}},
     r"features\[0\]\.options\.pbc = true, but the System has no periodic"),
    ({"kind": "cvpak", "cv": "Distance"},
     r"features\[0\]\.kind must be one of 'angle', .*, 'position', 'cvpack'. You supplied 'cvpak'"),
])
def test_bad_cvpack_tables_are_refused_clearly(entry, message):
    config = _config_with([{"kind": "cvpack", **entry}])
    with pytest.raises(ConfigError, match=message):
        build_simulation_system(config)


def test_a_cvpack_table_without_cvpack_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "cvpack", None)  # import cvpack raises ImportError
    config = _config_with([{"kind": "cvpack", "cv": "RadiusOfGyration",
                            "atoms": {"group": "all"}}])
    with pytest.raises(ConfigError, match=r"features\[0\]: kind = \"cvpack\" needs the cvpack "
                                          r"package, which is not installed: pip install cvpack"):
        build_simulation_system(config)


def test_a_short_campaign_over_cvpack_features(ala, tmp_path):
    from rave.campaign import Campaign, store

    data = load_config(ALANINE).to_dict()
    data["features"] = [
        {"kind": "cvpack", "cv": "RadiusOfGyration", "name": "rg",
         "atoms": {"group": "not element H"}},
        {"kind": "cvpack", "cv": "RMSD", "atoms": {"group": "not element H"}},
    ]
    data["sampling"].update(rounds=2, steps_per_round=1000, report_interval=10, walkers=1)
    data["vae"] = {"models": 1, "max_epochs": 1, "frames_per_epoch": 256}
    data["output"] = {"figures": False, "progress": False}
    summary = Campaign(config_from_dict(data), tmp_path / "w").run()
    assert summary["feature_names"] == ["rg", "rmsd"]
    stored = json.loads((tmp_path / "w" / "features.json").read_text())
    assert [d["kind"] for d in stored] == ["openmm_force"] * 2
    heavy, reference = ala["heavy"], ala["positions"]
    for round_dir in ("round_000", "round_001"):
        walker = store.read_npz(tmp_path / "w" / round_dir / "walkers" / "walker_00.npz")
        x = np.asarray(walker["snapshots"], dtype=float)
        rows = walker["features"][walker["snapshot_frames"]]
        expected = np.stack([_rg_numpy(x, heavy), _rmsd_numpy(x, reference, heavy)], axis=1)
        print(round_dir, "max |diff|", np.abs(rows - expected).max())
        np.testing.assert_allclose(rows, expected, rtol=0, atol=REPORTER_TOL)
    assert np.abs(store.read_npz(tmp_path / "w" / "round_001" / "frames.npz")[
        "bias_kjmol"]).max() > 0.0
