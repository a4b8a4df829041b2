"""Campaigns on the non-model system kinds: the ligand cavity and a bring-your-own OpenMM system."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rave.campaign import Campaign, store
from rave.campaign.config import ConfigError, config_from_dict, load_config
from rave.campaign.simsystem import build_simulation_system

ROOT = Path(__file__).resolve().parents[1]
ALANINE = ROOT / "workflows" / "alanine_dipeptide" / "alanine_dipeptide.toml"
#: tiny VAE settings: these tests check the plumbing, not the physics
TINY_VAE = {"models": 1, "max_epochs": 1, "frames_per_epoch": 256}
QUIET = {"figures": False, "progress": False}


def test_ligand_cavity_smoke_campaign_writes_summary_with_three_coefficients(tmp_path):
    config = config_from_dict({
        "system": {"kind": "ligand_cavity", "variant": "hydrophobic", "ligand": "methane",
                   "size": "small", "prepare_steps": 20, "minimize_iterations": 5},
        "sampling": {"rounds": 2, "steps_per_round": 100, "report_interval": 10,
                     "platform": "CPU"},
        "vae": TINY_VAE, "output": QUIET,
    })
    summary = Campaign(config, tmp_path).run()
    assert summary["feature_names"] == ["z", "rho", "n_w"]
    assert [len(r["coefficients"]) for r in summary["rounds"]] == [3, 3]
    assert [r["frames"] for r in summary["rounds"]] == [10, 10]
    lines = (tmp_path / "free_energy.csv").read_text().splitlines()
    assert lines[0] == "chi,free_energy_kT" and len(lines) > 2
    prepared = store.read_npz(tmp_path / "prepared.npz")
    assert prepared["positions"].shape[1] == 3
    frames = store.read_npz(tmp_path / "round_000" / "frames.npz")["features"]
    z, rho = frames[:, 0], frames[:, 1]
    assert np.all(np.abs(z) < 0.6) and np.all(rho < 0.6), "the ligand left the pocket in 0.2 ps"


def test_byo_alanine_dipeptide_features_resolve_from_selections():
    config = load_config(ALANINE)
    sim = build_simulation_system(config)
    assert [f.name for f in sim.features] == ["sin_phi", "cos_phi", "sin_psi", "cos_psi"]
    phi = (4, 6, 8, 14)
    psi = (6, 8, 14, 16)
    assert [tuple(g[0] for g in f.groups) for f in sim.features] == [phi, phi, psi, psi]
    values = np.array([f.evaluate(sim.positions[None])[0] for f in sim.features])
    assert np.allclose(values[0] ** 2 + values[1] ** 2, 1.0)
    assert sim.system.getNumParticles() == 22


def test_byo_campaign_runs_and_copies_its_inputs(tmp_path):
    data = load_config(ALANINE).to_dict()
    data["sampling"].update(rounds=2, steps_per_round=1000, report_interval=10, walkers=1)
    data["vae"] = TINY_VAE
    data["output"] = QUIET
    summary = Campaign(config_from_dict(data), tmp_path / "w").run()
    assert [len(r["coefficients"]) for r in summary["rounds"]] == [4, 4]
    assert sorted(p.name for p in (tmp_path / "w" / "inputs").iterdir()) == [
        "alanine_dipeptide.pdb", "alanine_dipeptide_system.xml"]
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert set(manifest["input_sha256"]) == {"pdb", "system_xml"}


@pytest.mark.parametrize("selection, message", [
    ("resname XYZ", "matches no atom"),
    ("name C and (", "not a valid mdtraj selection"),
    ([99], "outside 0..21"),
])
def test_byo_bad_selection_names_the_feature(selection, message):
    data = load_config(ALANINE).to_dict()
    data["features"] = [{"kind": "distance", "name": "d", "group1": selection,
                         "group2": "resname ALA and name CA"}]
    with pytest.raises(ConfigError, match=rf"features\[0\] \(d\)\.group1: .*{message}"):
        build_simulation_system(config_from_dict(data))


def test_a_dihedral_without_its_function_is_refused():
    # "phi" must not silently mean cos(phi)
    data = load_config(ALANINE).to_dict()
    data["features"] = [{"kind": "dihedral", "name": "phi", "groups": [
        "resname ACE and name C", "resname ALA and name N", "resname ALA and name CA",
        "resname ALA and name C"]}]
    with pytest.raises(ConfigError, match=r'features\[0\] \(phi\): a dihedral needs function = '
                                          r'"sin" or "cos"'):
        build_simulation_system(config_from_dict(data))


def test_byo_config_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="system.pdb is required"):
        config_from_dict({"system": {"kind": "openmm", "system_xml": "x.xml"}})
    with pytest.raises(ConfigError, match="exactly one of system.system_xml"):
        config_from_dict({"system": {"kind": "openmm", "pdb": "a.pdb"}})
    with pytest.raises(ConfigError, match=r"\[\[features\]\] are only read for"):
        config_from_dict({"system": {"kind": "three_state"},
                          "features": [{"kind": "distance", "group1": 0, "group2": 1}]})
    missing = config_from_dict({"system": {"kind": "openmm", "pdb": str(tmp_path / "no.pdb"),
                                           "system_xml": "x.xml"}})
    with pytest.raises(ConfigError, match="no.pdb does not exist"):
        build_simulation_system(missing)


def test_ligand_cavity_config_defaults_and_choices():
    config = config_from_dict({"system": {"kind": "ligand_cavity"}})
    assert (config.system.variant, config.system.ligand, config.system.size) == (
        "hydrophobic", "methane", "small")
    with pytest.raises(ConfigError, match="system.size must be one of 'small', 'paper'"):
        config_from_dict({"system": {"kind": "ligand_cavity", "size": "huge"}})
    with pytest.raises(ConfigError, match="system.ligand only applies to kind = 'ligand_cavity'"):
        config_from_dict({"system": {"kind": "three_state", "ligand": "c60"}})
    for name in ("hydrophobic", "hydrophilic"):
        workflow = load_config(ROOT / "workflows" / f"ligand_cavity_{name}.toml")
        assert workflow.system.variant == name and workflow.system.kind == "ligand_cavity"


#: OpenMM (Reference, double) vs numpy value of an order parameter, nm
PERIODIC_TOL_NM = 1e-9


def _two_particle_system(tmp_path):
    """A PDB of two argon atoms 1.5 nm apart and a serialized System without periodic
    boundaries (OpenMM's default box is still 2 nm)."""
    import openmm

    pdb = tmp_path / "two.pdb"
    pdb.write_text(
        "HETATM    1 AR    AR A   1       0.000   0.000   0.000  1.00  0.00          AR\n"
        "HETATM    2 AR    AR A   2      15.000   0.000   0.000  1.00  0.00          AR\n"
        "END\n")
    system = openmm.System()
    for _ in range(2):
        system.addParticle(39.9)
    xml = tmp_path / "two.xml"
    xml.write_text(openmm.XmlSerializer.serialize(system))
    return {"kind": "openmm", "pdb": str(pdb), "system_xml": str(xml)}


def test_order_parameters_of_a_non_periodic_system_are_not_wrapped(tmp_path):
    from rave.md.features import openmm_feature_values

    system = _two_particle_system(tmp_path)
    config = config_from_dict({"system": system, "features": [
        {"kind": "distance", "name": "d", "group1": "index 0", "group2": "index 1"}]})
    sim = build_simulation_system(config)
    (feature,) = sim.features
    assert feature.periodic is False
    numpy_value = feature.evaluate(sim.positions[None], None)[0]
    openmm_value = openmm_feature_values([feature], sim.positions, None, sim.system)[0, 0]
    assert numpy_value == pytest.approx(1.5, abs=PERIODIC_TOL_NM)
    assert openmm_value == pytest.approx(1.5, abs=PERIODIC_TOL_NM)
    explicit = config_from_dict({"system": system, "features": [
        {"kind": "distance", "name": "d", "group1": "index 0", "group2": "index 1",
         "periodic": True}]})
    with pytest.raises(ConfigError, match=r"features\[0\] \(d\).periodic = true, but the System "
                                          r"has no periodic boundary conditions"):
        build_simulation_system(explicit)


def test_a_misspelt_feature_key_of_a_config_is_named(tmp_path):
    config = config_from_dict({"system": _two_particle_system(tmp_path), "features": [
        {"kind": "distance", "name": "d", "group1": "index 0", "grup2": "index 1"}]})
    with pytest.raises(ConfigError, match=r"features\[0\] \(d\): unknown key\(s\) grup2 for a "
                                          r"'distance' feature. Allowed: kind, group1, group2"):
        build_simulation_system(config)
