"""Walkers: serial vs Dask identity, MD fault recovery, starting frames spread along chi."""

from __future__ import annotations

import numpy as np
import openmm
import pytest

from rave.campaign import Campaign, RoundFailed
from rave.campaign.campaign import spread_along_chi
from rave.campaign.config import config_from_dict
from rave.campaign.walkers import DaskExecutor, SerialExecutor, WalkerFailed, WalkerTask, run_walker
from rave.systems.model_potentials import make_model_potential

#: frames per walker in these tests (4000 steps, a frame every 20)
N_FRAMES = 200


def _task(walker: int, seed: int, timestep_ps: float = 0.005, max_retries: int = 4,
          n_steps: int = 4000) -> WalkerTask:
    potential = make_model_potential("rotated_double_well", 300.0)
    model = potential.build()
    return WalkerTask(
        round_index=0, walker_index=walker,
        system_xml=openmm.XmlSerializer.serialize(model.system),
        features=tuple(f.to_dict() for f in model.features),
        positions=np.asarray(model.positions, float).reshape(-1, 3), velocities=None,
        box_vectors=None, time_ps=0.0, bias=None, temperature_K=300.0, timestep_ps=timestep_ps,
        friction_per_ps=potential.friction_per_ps, seed=seed, platform="Reference",
        force_group=30, n_steps=n_steps, report_interval=20, snapshot_every=10,
        max_retries=max_retries, segment_frames=50,
    )


def _collect(executor, tasks):
    results = {}
    failures = executor.run(tasks, lambda r: results.__setitem__(r.walker_index, r))
    return results, failures


def test_serial_and_dask_walkers_give_identical_frames():
    tasks = [_task(0, seed=11), _task(1, seed=12)]
    serial, failures = _collect(SerialExecutor(), tasks)
    assert failures == []
    executor = DaskExecutor(None, n_workers=2)
    try:
        assert executor.n_workers == 2
        dask, failures = _collect(executor, tasks)
    finally:
        executor.close()
    assert failures == []
    for k in (0, 1):
        assert len(serial[k]) == N_FRAMES
        np.testing.assert_array_equal(serial[k].features, dask[k].features)
        np.testing.assert_array_equal(serial[k].final_velocities, dask[k].final_velocities)
        np.testing.assert_array_equal(serial[k].snapshots, dask[k].snapshots)
    # different seeds: different trajectories
    assert not np.array_equal(serial[0].features, serial[1].features)


def test_walker_snapshots_are_the_positions_of_their_frames():
    result = run_walker(_task(0, seed=3))
    assert result.snapshot_frames.tolist() == list(range(0, N_FRAMES, 10))
    # one particle whose features are its x and y: snapshot positions give the frame's features
    np.testing.assert_allclose(result.snapshots[:, 0, :2],
                               result.features[result.snapshot_frames], atol=1e-6)


def test_blown_up_walker_recovers_with_smaller_time_step():
    # 0.5 ps is 100x the model potential's time step: the particle leaves to infinity
    result = run_walker(_task(0, seed=5, timestep_ps=0.5, max_retries=8))
    assert result.faults, "the huge time step should have blown up at least once"
    assert "retrying from the checkpoint" in result.faults[0]
    assert result.final_timestep_ps < 0.5
    assert len(result) == N_FRAMES
    assert np.isfinite(result.features).all()
    assert np.abs(result.features).max() < 5.0  # nm: inside the double well's region
    assert np.all(np.diff(result.time_ps) > 0)


def test_walker_fails_after_max_retries_and_others_are_kept():
    good, bad = _task(0, seed=1), _task(1, seed=2, timestep_ps=0.5, max_retries=0)
    with pytest.raises(WalkerFailed, match="round 0 walker 1 blew up 1 times"):
        run_walker(bad)
    results, failures = _collect(SerialExecutor(), [bad, good])
    assert list(results) == [0] and len(results[0]) == N_FRAMES
    assert len(failures) == 1 and "Lower sampling.timestep" in str(failures[0])


def test_campaign_round_fails_with_clear_message_and_keeps_good_walkers(tmp_path):
    config = config_from_dict({
        "system": {"kind": "rotated_double_well"},
        "sampling": {"rounds": 2, "steps_per_round": 4000, "report_interval": 20,
                     "walkers": 2, "scheduler": "serial", "timestep": 0.5, "max_retries": 0},
        "vae": {"models": 1, "max_epochs": 1},
        "output": {"figures": False, "progress": False},
    })
    with pytest.raises(RoundFailed, match=r"walkers of round 0 failed.*rerun to retry"):
        Campaign(config, tmp_path / "w").run()
    assert not (tmp_path / "w" / "round_000" / "frames.npz").exists()


def test_spread_along_chi_picks_distinct_frames_across_the_range():
    chi = np.array([0.0, 0.1, 0.2, 5.0, 9.8, 9.9, 10.0])
    picks = spread_along_chi(chi, 3)
    assert len(set(picks)) == 3
    # targets at 1/6, 3/6, 5/6 of [0, 10]: nearest are 0.2 (index 2), 5.0 (3), 9.8 (4)
    assert picks == [2, 3, 4]
    assert sorted(spread_along_chi(chi, 7)) == list(range(7))
    with pytest.raises(ValueError, match="cannot pick 8 starting frames from 7"):
        spread_along_chi(chi, 8)
