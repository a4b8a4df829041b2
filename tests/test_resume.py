"""Crash and resume: SIGKILL a campaign at many points, rerun, and get the uninterrupted store.

Each run is a subprocess (``python -m rave.cli run``). Kills come from ``RAVE_FAULT_AT``
(``rave.campaign.store.fault_point``: the process SIGKILLs itself right after the named write) and
from
outside at a random moment.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import rave_run

from rave.campaign import Campaign, store
from rave.campaign.config import config_from_dict, load_config

CONFIG = """
[system]
kind = "rotated_double_well"
[sampling]
rounds = 3
steps_per_round = 4000
report_interval = 20
walkers = 2
scheduler = "serial"
[vae]
models = 1
max_epochs = 2
frames_per_epoch = 1024
[output]
figures = false
progress = false
"""
#: frames each round adds: 2 walkers x 4000 / 20
FRAMES_PER_ROUND = 400


def _round_files(workdir: Path) -> list[str]:
    return sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")
                  if p.is_file() and p.name != "campaign.log")


def test_campaign_killed_at_many_points_resumes_to_the_uninterrupted_result(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    reference = tmp_path / "reference"
    code, output = rave_run(config, reference)
    assert code == 0, output

    workdir = tmp_path / "killed"
    # each point is reached in a later stage than the previous one, so every rerun progresses
    for fault in ("walker_stored:1", "frames_stored:1", "model_stored:1", "round_complete:1",
                  "walker_stored:1", "round_complete:1"):
        code, output = rave_run(config, workdir, fault=fault)
        assert code == -signal.SIGKILL, f"{fault}: expected a SIGKILL, got {code}: {output}"
    code, output = rave_run(config, workdir, kill_after_s=4.0)  # somewhere in round 2
    code, output = rave_run(config, workdir)
    assert code == 0, output

    summary = json.loads((workdir / "summary.json").read_text())
    expected = json.loads((reference / "summary.json").read_text())
    assert [r["index"] for r in summary["rounds"]] == [0, 1, 2]
    assert [r["frames"] for r in summary["rounds"]] == [FRAMES_PER_ROUND] * 3
    assert [r["frames"] for r in expected["rounds"]] == [FRAMES_PER_ROUND] * 3
    assert _round_files(workdir) == _round_files(reference)
    for index in range(3):
        frames = store.read_npz(store.round_dir(workdir, index) / "frames.npz")
        assert len(frames["features"]) == FRAMES_PER_ROUND
        assert np.bincount(frames["walker"]).tolist() == [FRAMES_PER_ROUND // 2] * 2
        assert np.isfinite(frames["features"]).all()
    # round 0 depends on seeds only: bit-identical to the uninterrupted run (Reference platform)
    for name in ("frames.npz", "walkers/walker_00.npz", "walkers/walker_01.npz"):
        a = store.read_npz(store.round_dir(workdir, 0) / name)
        b = store.read_npz(store.round_dir(reference, 0) / name)
        for key in ("features", "bias_kjmol", "time_ps"):
            np.testing.assert_array_equal(a[key], b[key])
    assert not list(workdir.rglob("*.tmp")), "stale temporary files were left behind"
    log = (workdir / "campaign.log").read_text()
    assert "of 2 walkers already stored" in log


def _tiny_config(**sampling):
    return config_from_dict({
        "system": {"kind": "rotated_double_well"},
        "sampling": {"rounds": 1, "steps_per_round": 2000, "report_interval": 20,
                     "scheduler": "serial", **sampling},
        "vae": {"models": 1, "max_epochs": 1, "frames_per_epoch": 512},
        "output": {"figures": False, "progress": False},
    })


def test_resume_with_changed_meaning_is_refused_naming_the_difference(tmp_path):
    Campaign(_tiny_config(), tmp_path).run()
    before = _round_files(tmp_path)
    changed = config_from_dict({**_tiny_config().to_dict(),
                                "system": {"kind": "rotated_double_well", "temperature": 310.0}})
    with pytest.raises(store.WorkdirError, match=r"system.temperature: stored 300.0, now 310.0"):
        Campaign(changed, tmp_path).run()
    with pytest.raises(store.WorkdirError, match=r"sampling.walkers: stored 1, now 2"):
        Campaign(_tiny_config(walkers=2), tmp_path).run()
    assert _round_files(tmp_path) == before  # nothing written


def test_resume_extends_a_finished_campaign_and_keeps_its_rounds(tmp_path):
    Campaign(_tiny_config(), tmp_path).run()
    round0 = (tmp_path / "round_000" / "frames.npz").read_bytes()
    summary = Campaign(_tiny_config(), tmp_path).run(rounds=2)
    assert [r["index"] for r in summary["rounds"]] == [0, 1]
    assert (tmp_path / "round_000" / "frames.npz").read_bytes() == round0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["version"] == store.FORMAT_VERSION and len(manifest["runs"]) == 2


def test_corrupted_walker_file_is_reported_by_name(tmp_path):
    workdir = tmp_path / "w"
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    code, output = rave_run(config, workdir, fault="frames_stored:1")
    assert code == -signal.SIGKILL, output
    status = subprocess.run([sys.executable, "-m", "rave.cli", "status", str(workdir)],
                            capture_output=True, text=True, check=True).stdout
    assert "0 round(s) done" in status
    assert "round 0 started, not complete: learning (MD done)" in status
    walker = workdir / "round_000" / "walkers" / "walker_01.npz"
    walker.write_bytes(walker.read_bytes()[:100])
    (workdir / "round_000" / "frames.npz").unlink()  # so that the walkers are read again
    with pytest.raises(store.StoreFileError, match=r"walker_01.npz cannot be read.*Remove it "
                                                   r"and rerun: `rave run` runs that walker"):
        Campaign(load_config(config), workdir).run()
    assert len(walker.read_bytes()) == 100  # left for the user to inspect


def test_a_walker_file_of_another_round_or_campaign_is_refused_not_mixed_in(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    workdir = tmp_path / "w"
    code, output = rave_run(config, workdir, fault="walker_stored:3")  # round 1, walker 0
    assert code == -signal.SIGKILL, output
    walkers = workdir / "round_001" / "walkers"
    stored = sorted(p.name for p in walkers.iterdir())
    assert stored == ["walker_00.npz"]
    # round 0's walker 1 copied into the interrupted round 1
    (walkers / "walker_01.npz").write_bytes(
        (workdir / "round_000" / "walkers" / "walker_01.npz").read_bytes())
    with pytest.raises(store.StoreFileError, match=r"walker_01.npz holds round 0 walker 1 with "
                                                   r"MD seed \d+, not this campaign's round 1 "
                                                   r"walker 1"):
        Campaign(load_config(config), workdir).run()
    # a walker file of another campaign (another seed) in its own place
    other = tmp_path / "other.toml"
    other.write_text(CONFIG.replace("[sampling]", "[sampling]\nseed = 7"))
    elsewhere = tmp_path / "elsewhere"
    code, output = rave_run(other, elsewhere, fault="walker_stored:4")
    assert code == -signal.SIGKILL, output
    (walkers / "walker_01.npz").write_bytes(
        (elsewhere / "round_001" / "walkers" / "walker_01.npz").read_bytes())
    with pytest.raises(store.StoreFileError, match=r"copied from another round or campaign"):
        Campaign(load_config(config), workdir).run()


def test_directory_from_another_program_is_refused(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(store.WorkdirError, match="not empty and holds no rave campaign"):
        Campaign(_tiny_config(), tmp_path).run()


def test_a_round_0_that_stored_nothing_does_not_lock_the_config(tmp_path):
    # the MD of round 0 blows up (a time step far too long, no recovery allowed): nothing is
    # stored, and the advice (a smaller time step) must work on the same work directory
    from rave.campaign.campaign import RoundFailed

    workdir = tmp_path / "w"
    with pytest.raises(RoundFailed, match="failed"):
        Campaign(_tiny_config(timestep=2.0, max_retries=0), workdir).run()
    assert not list(workdir.glob("round_*/walkers/*.npz"))
    summary = Campaign(_tiny_config(timestep=0.005), workdir).run()
    assert len(summary["rounds"]) == 1
    stored = json.loads((workdir / "config.json").read_text())
    assert stored["sampling"]["timestep"] == 0.005
    manifest = json.loads((workdir / "manifest.json").read_text())
    assert manifest["config"]["sampling"]["timestep"] == 0.005
    # once MD is stored, the same change is refused again
    with pytest.raises(store.WorkdirError, match="sampling.timestep: stored 0.005, now 0.004"):
        Campaign(_tiny_config(timestep=0.004), workdir).run(rounds=2)
