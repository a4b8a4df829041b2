"""Walker trajectories ([output] dcd_interval): a DCD per walker whose frames are the walker's
frames, loadable by mdtraj with the run's topology."""

from __future__ import annotations

from pathlib import Path

import mdtraj as md
import numpy as np
import openmm
import pytest

from rave.campaign.config import ConfigError, config_from_dict
from rave.campaign.store import CampaignStore
from rave.campaign.walkers import WalkerResult, WalkerTask, run_walker
from rave.cli import main
from rave.md.features import Dihedral
from rave.systems.model_potentials import make_model_potential

ROOT = Path(__file__).resolve().parent.parent
ALANINE = ROOT / "workflows" / "alanine_dipeptide"
#: DCD positions are float32 Angstrom: |x| < 3 nm is kept to ~3e-7 nm; 1e-5 nm leaves margin
POSITION_TOL_NM = 1e-5
#: sin/cos of a dihedral from float32 positions (relative error ~1e-7 over bonds of 0.1 nm)
DIHEDRAL_TOL = 1e-4
#: IUPAC phi: C(ACE) - N - CA - C(ALA), 0-based atom indices of the PDB beside the config
PHI_ATOMS = (4, 6, 8, 14)


def _model_task(dcd_every: int, seed: int = 5) -> WalkerTask:
    potential = make_model_potential("rotated_double_well", 300.0)
    model = potential.build()
    return WalkerTask(
        round_index=0, walker_index=0,
        system_xml=openmm.XmlSerializer.serialize(model.system),
        features=tuple(f.to_dict() for f in model.features),
        positions=np.asarray(model.positions, float).reshape(-1, 3), velocities=None,
        box_vectors=None, time_ps=0.0, bias=None, temperature_K=300.0, timestep_ps=0.005,
        friction_per_ps=potential.friction_per_ps, seed=seed, platform="Reference",
        force_group=30, n_steps=2400, report_interval=20, snapshot_every=10,
        segment_frames=50, dcd_every=dcd_every,
    )


def _stored(tmp_path, result: WalkerResult) -> tuple[CampaignStore, WalkerResult]:
    campaign = CampaignStore(tmp_path / "run")
    campaign.write_walker(0, 0, result.to_arrays())
    return campaign, WalkerResult.from_arrays(campaign.walker(0, 0))


def test_walker_dcd_holds_every_frame_in_order(tmp_path):
    result = run_walker(_model_task(dcd_every=1))
    campaign, stored = _stored(tmp_path, result)
    path = campaign.walker_trajectory_path(0, 0)
    traj = md.load(str(path), top=md.Topology.from_openmm(_one_atom_topology()))
    assert traj.n_frames == len(stored.features) == 120
    np.testing.assert_array_equal(stored.trajectory_frames, np.arange(120))
    # one particle whose features are its x and y
    np.testing.assert_allclose(traj.xyz[:, 0, :2], stored.features, atol=POSITION_TOL_NM)
    np.testing.assert_allclose(traj.xyz[stored.snapshot_frames], stored.snapshots,
                               atol=POSITION_TOL_NM)
    assert "trajectory" not in np.load(campaign.walker_path(0, 0)).files  # in the DCD only


def _one_atom_topology():
    from rave.md.walker import minimal_topology

    return minimal_topology(1)


def test_a_sparser_trajectory_leaves_frames_and_snapshots_unchanged(tmp_path):
    plain = run_walker(_model_task(dcd_every=0))
    sparse = run_walker(_model_task(dcd_every=3))
    np.testing.assert_array_equal(plain.features, sparse.features)
    np.testing.assert_array_equal(plain.snapshot_frames, sparse.snapshot_frames)
    np.testing.assert_array_equal(plain.snapshots, sparse.snapshots)
    assert plain.trajectory is None
    campaign, stored = _stored(tmp_path, sparse)
    np.testing.assert_array_equal(stored.trajectory_frames, np.arange(0, 120, 3))
    traj = md.load(str(campaign.walker_trajectory_path(0, 0)), top=md.Topology.from_openmm(
        _one_atom_topology()))
    np.testing.assert_allclose(traj.xyz[:, 0, :2], stored.features[stored.trajectory_frames],
                               atol=POSITION_TOL_NM)


def test_alanine_dcd_loads_with_the_runs_pdb_and_gives_its_phi(tmp_path):
    pdb = md.load(str(ALANINE / "alanine_dipeptide.pdb"))
    features = [Dihedral(PHI_ATOMS, "sin", periodic=False, name="sin_phi"),
                Dihedral(PHI_ATOMS, "cos", periodic=False, name="cos_phi")]
    task = WalkerTask(
        round_index=0, walker_index=0,
        system_xml=(ALANINE / "alanine_dipeptide_system.xml").read_text(),
        features=tuple(f.to_dict() for f in features),
        positions=pdb.xyz[0].astype(float), velocities=None, box_vectors=None, time_ps=0.0,
        bias=None, temperature_K=300.0, timestep_ps=0.002, friction_per_ps=1.0, seed=2,
        platform="Reference", force_group=30, n_steps=600, report_interval=20,
        snapshot_every=5, segment_frames=10, dcd_every=1,
    )
    campaign, stored = _stored(tmp_path, run_walker(task))
    traj = md.load(str(campaign.walker_trajectory_path(0, 0)),
                   top=str(ALANINE / "alanine_dipeptide.pdb"))
    assert traj.n_frames == len(stored.features) == 30
    phi = md.compute_dihedrals(traj, [PHI_ATOMS])[:, 0]
    np.testing.assert_allclose(np.sin(phi), stored.features[:, 0], atol=DIHEDRAL_TOL)
    np.testing.assert_allclose(np.cos(phi), stored.features[:, 1], atol=DIHEDRAL_TOL)


def test_campaign_dcds_line_up_with_frames_npz(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        '[system]\nkind = "rotated_double_well"\n'
        "[sampling]\nrounds = 1\nsteps_per_round = 4000\nreport_interval = 20\nwalkers = 2\n"
        'scheduler = "serial"\n'
        "[vae]\nmodels = 1\nhidden = [8]\n[output]\nprogress = false\nfigures = false\n"
        "dcd_interval = 1\n")
    workdir = tmp_path / "run"
    assert main(["run", str(config), "--workdir", str(workdir), "-q"]) == 0
    campaign = CampaignStore(workdir)
    frames = campaign.frames(0)
    for k in (0, 1):
        traj = md.load(str(campaign.walker_trajectory_path(0, k)),
                       top=md.Topology.from_openmm(_one_atom_topology()))
        mine = frames.features[frames.walker == k]
        assert traj.n_frames == len(mine) == 200
        np.testing.assert_allclose(traj.xyz[:, 0, :2], mine, atol=POSITION_TOL_NM)


@pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
def test_a_bad_dcd_interval_is_refused_by_name(value):
    with pytest.raises(ConfigError, match="dcd_interval"):
        config_from_dict({"system": {"kind": "rotated_double_well"},
                          "output": {"dcd_interval": value}})
