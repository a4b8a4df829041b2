"""Tests for workflows/alanine_dipeptide/make_system.py: geometry, force field, files, MD."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import mdtraj as md
import numpy as np
import openmm
import pytest
from openmm import app
from openmm import unit as u

SCRIPT = Path(__file__).resolve().parents[1] / "workflows" / "alanine_dipeptide" / "make_system.py"
_spec = importlib.util.spec_from_file_location("alanine_make_system", SCRIPT)
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

# Dihedral of the as-built structure vs the requested one, degrees (float64 geometry).
EXACT_DIHEDRAL_TOL_DEG = 1e-6
# Same, measured by mdtraj, which stores coordinates in float32 (~1e-7 relative), degrees.
FLOAT32_DIHEDRAL_TOL_DEG = 1e-3
# As-built bond length vs the standard value it was built with, nm (float64 round-off).
BUILT_BOND_TOL_NM = 1e-9
# Minimised (PDB, 1e-4 nm resolution) bond length vs force-field equilibrium, nm (a
# hundredth of a nm: a minimised structure, not an exact one).
EQUILIBRIUM_BOND_TOL_NM = 0.01
# Minimised phi/psi (GB-OBC2) vs the requested start, degrees (the
# minimiser may move a dihedral by a few tens of degrees into the nearest minimum).
MINIMISED_DIHEDRAL_TOL_DEG = 30.0
# Improper N-C-CA-CB of an L alpha carbon, degrees: L residues of openmm's test.pdb have
# +116..+126; a D centre is negative. The window allows for minimisation.
L_IMPROPER_RANGE_DEG = (100.0, 145.0)
# XML-deserialised vs live System energy on the same positions, kJ/mol (double precision,
# same force terms in the same order: agreement to round-off).
ENERGY_MATCH_TOL_KJMOL = 1e-6
# Langevin MD: mean temperature over steps 1000-2000, K. Over 60 seeds (vacuum, Reference) and
# 40 seeds (GB-OBC2, CPU) that mean was 288 +- 30 K (1 sigma); the window is 300 +- 5 sigma.
MD_TEMPERATURE_WINDOW_K = (150.0, 450.0)

# Hydrogen mass vs natural 1.008 Da (ff14SB's value; element tables give 1.00795), Da.
HYDROGEN_MASS_TOL_DA = 1e-3

TEMPERATURE_K = 300.0
N_ATOMS = 22


def _dihedral_deg(xyz: np.ndarray, idx: tuple[int, int, int, int]) -> float:
    """IUPAC dihedral in float64 (atan2 form), independent of the generator and of mdtraj."""
    p0, p1, p2, p3 = (np.asarray(xyz[i], dtype=float) for i in idx)
    b0, b1, b2 = p0 - p1, p2 - p1, p3 - p2
    b1n = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1n) * b1n
    w = b2 - np.dot(b2, b1n) * b1n
    return math.degrees(math.atan2(np.dot(np.cross(b1n, v), w), np.dot(v, w)))


def _angle_diff_deg(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _energy_kjmol(system: openmm.System, positions_nm: np.ndarray) -> float:
    context = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    context.setPositions(positions_nm)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)


@pytest.fixture(scope="module", params=gen.SOLVENTS)
def written(request, tmp_path_factory):
    """Files written by the generator with default phi/psi, for each solvent."""
    out = tmp_path_factory.mktemp(f"ala_{request.param}")
    pdb_path, xml_path = gen.write_alanine_dipeptide(out, solvent=request.param)
    return request.param, pdb_path, xml_path


@pytest.fixture(scope="module")
def written_implicit(tmp_path_factory):
    out = tmp_path_factory.mktemp("ala_implicit_default")
    return gen.write_alanine_dipeptide(out)


# --- pure geometry --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phi_deg, psi_deg", [(-80.0, 150.0), (60.0, -60.0), (-179.5, 179.5), (0.0, 0.0)]
)
def test_heavy_atoms_reproduce_requested_phi_psi_exactly(phi_deg, psi_deg):
    names, residues, xyz = gen.build_heavy_atoms(phi_deg, psi_deg)
    # heavy-atom indices: C(ACE)=1, N=3, CA=4, C=6, N(NME)=8
    phi = _dihedral_deg(xyz, (1, 3, 4, 6))
    psi = _dihedral_deg(xyz, (3, 4, 6, 8))
    assert _angle_diff_deg(phi, phi_deg) < EXACT_DIHEDRAL_TOL_DEG
    assert _angle_diff_deg(psi, psi_deg) < EXACT_DIHEDRAL_TOL_DEG
    # mdtraj's own dihedral code agrees (float32)
    mdt = md.compute_dihedrals(md.Trajectory(xyz[None], None), [[1, 3, 4, 6], [3, 4, 6, 8]])[0]
    assert _angle_diff_deg(math.degrees(mdt[0]), phi_deg) < FLOAT32_DIHEDRAL_TOL_DEG
    assert _angle_diff_deg(math.degrees(mdt[1]), psi_deg) < FLOAT32_DIHEDRAL_TOL_DEG


def test_heavy_atoms_have_expected_names_and_residues():
    names, residues, xyz = gen.build_heavy_atoms()
    assert names == ["CH3", "C", "O", "N", "CA", "CB", "C", "O", "N", "C"]
    assert residues == ["ACE"] * 3 + ["ALA"] * 5 + ["NME"] * 2
    assert xyz.shape == (10, 3)
    assert np.all(np.isfinite(xyz))


def test_heavy_atoms_have_standard_bonds_trans_omegas_and_planar_carbonyls():
    _, _, xyz = gen.build_heavy_atoms(-80.0, 150.0)
    b = gen.BOND_NM
    bonds = {
        (0, 1): b["CH3-C"], (1, 2): b["C=O"], (1, 3): b["C-N"], (3, 4): b["N-CA"],
        (4, 5): b["CA-CB"], (4, 6): b["CA-C"], (6, 7): b["C=O"], (6, 8): b["C-N"],
        (8, 9): b["N-CH3"],
    }  # fmt: skip
    for (i, j), r0 in bonds.items():
        assert abs(np.linalg.norm(xyz[i] - xyz[j]) - r0) < BUILT_BOND_TOL_NM, (i, j)
    # omega(ACE-ALA) = CH3-C-N-CA, omega(ALA-NME) = CA-C-N-C: trans
    assert _angle_diff_deg(_dihedral_deg(xyz, (0, 1, 3, 4)), 180.0) < EXACT_DIHEDRAL_TOL_DEG
    assert _angle_diff_deg(_dihedral_deg(xyz, (4, 6, 8, 9)), 180.0) < EXACT_DIHEDRAL_TOL_DEG
    # carbonyl O cis to the next CA / methyl across each peptide bond (planar amide)
    assert _angle_diff_deg(_dihedral_deg(xyz, (2, 1, 3, 4)), 0.0) < EXACT_DIHEDRAL_TOL_DEG
    assert _angle_diff_deg(_dihedral_deg(xyz, (7, 6, 8, 9)), 0.0) < EXACT_DIHEDRAL_TOL_DEG


def test_alpha_carbon_is_l_before_and_after_minimisation(written_implicit):
    _, _, xyz = gen.build_heavy_atoms()
    lo, hi = L_IMPROPER_RANGE_DEG
    assert lo < _dihedral_deg(xyz, (3, 6, 4, 5)) < hi  # N, C, CA, CB
    traj = md.load(str(written_implicit[0]))
    sel = {n: traj.topology.select(f"resname ALA and name {n}")[0] for n in ("N", "C", "CA", "CB")}
    improper = _dihedral_deg(traj.xyz[0], (sel["N"], sel["C"], sel["CA"], sel["CB"]))
    assert lo < improper < hi


def test_build_heavy_atoms_accepts_angle_quantity():
    _, _, from_float = gen.build_heavy_atoms(-80.0, 150.0)
    _, _, from_quantity = gen.build_heavy_atoms(math.radians(-80.0) * u.radians, 150.0 * u.degrees)
    np.testing.assert_allclose(from_quantity, from_float, rtol=0, atol=1e-12)


def test_build_heavy_atoms_rejects_bad_angles():
    with pytest.raises(ValueError, match=r"phi_deg must be finite; got nan"):
        gen.build_heavy_atoms(float("nan"), 150.0)
    with pytest.raises(TypeError, match=r"psi_deg must be a real number in degrees; got str"):
        gen.build_heavy_atoms(-80.0, "150")
    with pytest.raises(TypeError, match=r"phi_deg must be an angle .* Quantity in nanometer"):
        gen.build_heavy_atoms(1.0 * u.nanometer, 150.0)


def test_nerf_rejects_collinear_reference_atoms():
    a, b, c = np.zeros(3), np.array([1.0, 0, 0]), np.array([2.0, 0, 0])
    with pytest.raises(ValueError, match="must not be collinear"):
        gen.place_atom_nerf(a, b, c, 0.15, 2.0, 1.0)


def test_unknown_solvent_is_rejected():
    with pytest.raises(
        ValueError, match=r"solvent must be one of \('implicit', 'vacuum'\); got 'water'"
    ):
        gen.make_forcefield("water")


# --- hydrogens, force field, minimisation ---------------------------------------------------


def test_hydrogenated_structure_keeps_requested_phi_psi_before_minimisation():
    topology, _, xyz = gen.build_alanine_dipeptide(-80.0, 150.0, minimize=False)
    assert _angle_diff_deg(_dihedral_deg(xyz, gen.PHI_ATOMS), -80.0) < EXACT_DIHEDRAL_TOL_DEG
    assert _angle_diff_deg(_dihedral_deg(xyz, gen.PSI_ATOMS), 150.0) < EXACT_DIHEDRAL_TOL_DEG
    traj = md.Trajectory(xyz[None], md.Topology.from_openmm(topology))
    phi_idx, phi = md.compute_phi(traj)
    psi_idx, psi = md.compute_psi(traj)
    assert phi_idx.tolist() == [list(gen.PHI_ATOMS)]
    assert psi_idx.tolist() == [list(gen.PSI_ATOMS)]
    assert _angle_diff_deg(math.degrees(phi[0, 0]), -80.0) < FLOAT32_DIHEDRAL_TOL_DEG
    assert _angle_diff_deg(math.degrees(psi[0, 0]), 150.0) < FLOAT32_DIHEDRAL_TOL_DEG


def test_written_pdb_has_22_atoms_in_ace_ala_nme(written):
    _, pdb_path, _ = written
    pdb = app.PDBFile(str(pdb_path))
    assert pdb.topology.getNumAtoms() == N_ATOMS
    assert [r.name for r in pdb.topology.residues()] == ["ACE", "ALA", "NME"]
    assert [r.id for r in pdb.topology.residues()] == ["1", "2", "3"]
    n_h = sum(a.element is app.element.hydrogen for a in pdb.topology.atoms())
    assert n_h == 12
    traj = md.load(str(pdb_path))
    assert traj.n_atoms == N_ATOMS and traj.topology.n_bonds == 21  # acyclic: n_atoms - 1


def test_minimised_structure_has_finite_energy_and_equilibrium_bonds(written):
    _, pdb_path, xml_path = written
    system = openmm.XmlSerializer.deserialize(xml_path.read_text())
    xyz = app.PDBFile(str(pdb_path)).getPositions(asNumpy=True).value_in_unit(u.nanometer)
    assert math.isfinite(_energy_kjmol(system, xyz))
    bond_force = next(f for f in system.getForces() if isinstance(f, openmm.HarmonicBondForce))
    pairs = []
    for k in range(bond_force.getNumBonds()):
        i, j, r0, _ = bond_force.getBondParameters(k)
        pairs.append((i, j, r0.value_in_unit(u.nanometer)))
    for k in range(system.getNumConstraints()):
        i, j, r0 = system.getConstraintParameters(k)
        pairs.append((i, j, r0.value_in_unit(u.nanometer)))
    assert len(pairs) == 21  # every bond is either harmonic or constrained
    assert system.getNumConstraints() == 12  # HBonds
    worst = max(abs(np.linalg.norm(xyz[i] - xyz[j]) - r0) for i, j, r0 in pairs)
    assert worst < EQUILIBRIUM_BOND_TOL_NM, worst


def test_system_settings_match_the_brief(written):
    solvent, _, xml_path = written
    system = openmm.XmlSerializer.deserialize(xml_path.read_text())
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    assert nb.getNonbondedMethod() == openmm.NonbondedForce.NoCutoff
    has_gb = any(
        isinstance(f, openmm.CustomGBForce | openmm.GBSAOBCForce) for f in system.getForces()
    )
    assert has_gb == (solvent == "implicit")
    # default hydrogenMass: every hydrogen keeps its natural mass (no repartitioning)
    masses = [system.getParticleMass(i).value_in_unit(u.dalton) for i in range(N_ATOMS)]
    h_masses = sorted(masses)[:12]
    assert h_masses == pytest.approx([1.008] * 12, abs=HYDROGEN_MASS_TOL_DA)
    assert sorted(masses)[12] > 12.0  # the lightest heavy atom is a carbon


def test_minimised_phi_psi_stay_near_request_in_implicit_solvent(written_implicit):
    traj = md.load(str(written_implicit[0]))
    phi = math.degrees(md.compute_phi(traj)[1][0, 0])
    psi = math.degrees(md.compute_psi(traj)[1][0, 0])
    assert _angle_diff_deg(phi, gen.PHI_DEG_DEFAULT) < MINIMISED_DIHEDRAL_TOL_DEG, phi
    assert _angle_diff_deg(psi, gen.PSI_DEG_DEFAULT) < MINIMISED_DIHEDRAL_TOL_DEG, psi


def test_documented_indices_and_selections_pick_the_dihedral_atoms(written_implicit):
    traj = md.load(str(written_implicit[0]))
    assert md.compute_phi(traj)[0].tolist() == [list(gen.PHI_ATOMS)]
    assert md.compute_psi(traj)[0].tolist() == [list(gen.PSI_ATOMS)]
    for selections, indices in ((gen.PHI_SELECTIONS, gen.PHI_ATOMS),
                                (gen.PSI_SELECTIONS, gen.PSI_ATOMS)):  # fmt: skip
        picked = [traj.topology.select(s).tolist() for s in selections]
        assert picked == [[i] for i in indices]


def test_xml_system_gives_same_energy_as_live_system_on_pdb_positions(written):
    solvent, pdb_path, xml_path = written
    pdb = app.PDBFile(str(pdb_path))
    xyz = pdb.getPositions(asNumpy=True).value_in_unit(u.nanometer)
    from_xml = _energy_kjmol(openmm.XmlSerializer.deserialize(xml_path.read_text()), xyz)
    _, live_system, _ = gen.build_alanine_dipeptide(solvent=solvent, minimize=False)
    assert from_xml == pytest.approx(_energy_kjmol(live_system, xyz), abs=ENERGY_MATCH_TOL_KJMOL)
    # a user who rebuilds the System from the PDB with the same force field gets it too
    rebuilt = gen.make_forcefield(solvent).createSystem(
        pdb.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds
    )
    assert from_xml == pytest.approx(_energy_kjmol(rebuilt, xyz), abs=ENERGY_MATCH_TOL_KJMOL)


# --- files and command line ----------------------------------------------------------------


def test_refuses_to_overwrite_without_force(tmp_path):
    pdb_path, xml_path = gen.write_alanine_dipeptide(tmp_path, solvent="vacuum")
    xml_path.write_text("sentinel")
    with pytest.raises(FileExistsError, match=r"refusing to overwrite .*pass --force"):
        gen.write_alanine_dipeptide(tmp_path, solvent="vacuum")
    assert xml_path.read_text() == "sentinel"
    # one existing file is enough to refuse, and nothing is written
    pdb_path.unlink()
    with pytest.raises(FileExistsError, match=r"alanine_dipeptide_system\.xml"):
        gen.write_alanine_dipeptide(tmp_path, solvent="vacuum")
    assert not pdb_path.exists()
    gen.write_alanine_dipeptide(tmp_path, solvent="vacuum", force=True)
    assert pdb_path.exists()
    assert openmm.XmlSerializer.deserialize(xml_path.read_text()).getNumParticles() == N_ATOMS


def test_command_line_writes_files_and_refuses_second_run(tmp_path, capsys):
    assert gen.main(["--out", str(tmp_path), "--solvent", "vacuum"]) == 0
    assert (tmp_path / gen.PDB_NAME).exists() and (tmp_path / gen.XML_NAME).exists()
    with pytest.raises(SystemExit) as exc:
        gen.main(["--out", str(tmp_path), "--solvent", "vacuum"])
    assert exc.value.code == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert gen.main(["--out", str(tmp_path), "--solvent", "vacuum", "--force"]) == 0


# --- dynamics -------------------------------------------------------------------------------


def test_langevin_md_keeps_phi_psi_finite_and_temperature_sane(written_implicit):
    pdb_path, xml_path = written_implicit
    system = openmm.XmlSerializer.deserialize(xml_path.read_text())
    pdb = app.PDBFile(str(pdb_path))
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE_K, 1.0, 0.002)  # K, 1/ps, ps
    integrator.setRandomNumberSeed(2024)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(pdb.positions)
    context.setVelocitiesToTemperature(TEMPERATURE_K, 2024)
    kb = u.MOLAR_GAS_CONSTANT_R.value_in_unit(u.kilojoule_per_mole / u.kelvin)
    n_dof = 3 * N_ATOMS - system.getNumConstraints() - 3  # CMMotionRemover removes 3
    temps, frames = [], []
    for _ in range(100):  # 100 x 20 = 2000 steps
        integrator.step(20)
        state = context.getState(getEnergy=True, getPositions=True)
        ke = state.getKineticEnergy().value_in_unit(u.kilojoule_per_mole)
        temps.append(2.0 * ke / (n_dof * kb))
        frames.append(state.getPositions(asNumpy=True).value_in_unit(u.nanometer))
    traj = md.Trajectory(np.array(frames), md.Topology.from_openmm(pdb.topology))
    phi = np.degrees(md.compute_phi(traj)[1][:, 0])
    psi = np.degrees(md.compute_psi(traj)[1][:, 0])
    mean_t = float(np.mean(temps[50:]))
    print(
        f"MD 2000 x 2 fs: mean T(steps 1000-2000) = {mean_t:.1f} K (expected 300, sigma 30); "
        f"phi in [{phi.min():.0f}, {phi.max():.0f}], psi in [{psi.min():.0f}, {psi.max():.0f}] deg"
    )
    assert np.all(np.isfinite(phi)) and np.all(np.isfinite(psi))
    assert np.all(np.isfinite(temps))
    lo, hi = MD_TEMPERATURE_WINDOW_K
    assert lo < mean_t < hi
