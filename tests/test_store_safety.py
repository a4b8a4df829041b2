"""A user's data is never lost, mixed or overwritten, and every failure a user can cause ends
with one ``rave: error:`` line and a documented exit code.

Each test is one case a careful user tried; OS failures are injected by monkeypatching (the
tests may run as root, which ignores file permissions).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rave import files
from rave.campaign import BiasMismatchError, Campaign, store
from rave.campaign.config import config_from_dict
from rave.cli import EXIT_BUSY, EXIT_INTERRUPTED, EXIT_OS, EXIT_REFUSED, main
from rave.learn.bias import Bias, BiasGrid
from rave.md.frames import Frames

#: a campaign small enough for a few seconds per run (plumbing, not physics)
TINY = """
[system]
kind = "rotated_double_well"
[sampling]
rounds = 1
steps_per_round = 2000
report_interval = 20
scheduler = "serial"
[vae]
models = 1
max_epochs = 1
frames_per_epoch = 512
[output]
figures = false
progress = false
"""


def _config(tmp_path: Path, text: str = TINY, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _run(config: Path, workdir: Path, *extra: str) -> int:
    return main(["run", str(config), "--workdir", str(workdir), "-q", *extra])


def _files(workdir: Path) -> list[str]:
    """Every stored file but the log and the lock (whose content names the last holder)."""
    return sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*")
                  if p.is_file() and p.name not in ("campaign.log", store.LOCK))


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rave: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted tiny campaign, and its config file."""
    root = tmp_path_factory.mktemp("reference")
    config = _config(root)
    assert _run(config, root / "run") == 0
    return config, root / "run"


def _copy(reference_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "w"
    shutil.copytree(reference_run, copy)
    return copy


# 1 ----------------------------------------------------------------------------------------------
def test_resume_removes_only_rave_temporaries_in_rave_folders(reference, tmp_path):
    config, run = reference
    workdir = _copy(run, tmp_path)
    users = [workdir / "u" / "sub" / ".thesis_backup.tmp", workdir / ".notes.abcd1234.tmp",
             workdir / "round_000" / ".thesis_backup.tmp"]
    for path in users:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("keep")
    stale = workdir / "round_000" / ".frames.npz.k2j4h6g8.tmp"  # a killed rave's temporary
    stale.write_text("partial")
    assert _run(config, workdir) == 0
    assert all(path.read_text() == "keep" for path in users)
    assert not stale.exists()


# 2 ----------------------------------------------------------------------------------------------
def test_a_run_on_a_locked_workdir_is_refused_naming_the_holder(reference, tmp_path, capsys):
    config, run = reference
    workdir = _copy(run, tmp_path)
    before = {name: (workdir / name).read_bytes() for name in _files(workdir)}
    with store.lock_workdir(workdir):
        assert _run(config, workdir, "--rounds", "2") == EXIT_BUSY
    line = _one_error_line(capsys.readouterr().err)
    assert f"pid {os.getpid()}" in line and "in use by another rave" in line
    assert {name: (workdir / name).read_bytes() for name in _files(workdir)} == before


def test_two_concurrent_runs_one_proceeds_and_the_store_equals_an_uninterrupted_run(tmp_path):
    config = _config(tmp_path, TINY.replace("rounds = 1", "rounds = 3"))
    run = tmp_path / "uninterrupted"
    assert _run(config, run) == 0
    workdir = tmp_path / "w"
    command = [sys.executable, "-m", "rave.cli", "run", str(config), "--workdir", str(workdir),
               "-q"]
    # handshake, no timing: the first run holds the lock at the end of round 0 until the
    # second has been refused
    gate = tmp_path / "go"
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "RAVE_HOLD_AT": f"round_complete={gate}"})
    reached = Path(f"{gate}.reached")
    while not reached.exists():
        assert first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    outputs = [None, second.communicate(timeout=300)]
    gate.touch()
    outputs[0] = first.communicate(timeout=300)
    procs = [first, second]
    assert second.returncode == EXIT_BUSY, outputs
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, EXIT_BUSY], outputs
    refused = next(err for p, (_, err) in zip(procs, outputs, strict=True)
                   if p.returncode == EXIT_BUSY)
    assert "in use by another rave (pid " in _one_error_line(refused)
    assert _files(workdir) == _files(run)
    manifest = json.loads((workdir / "manifest.json").read_text())
    assert len(manifest["runs"]) == 1
    got = json.loads((workdir / "summary.json").read_text())["rounds"]
    expected = json.loads((run / "summary.json").read_text())["rounds"]
    assert [r["frames"] for r in got] == [r["frames"] for r in expected] == [100] * 3
    for name in ("frames.npz", "walkers/walker_00.npz"):
        a = store.read_npz(workdir / "round_000" / name)
        b = store.read_npz(run / "round_000" / name)
        for key in ("features", "bias_kjmol", "time_ps"):
            np.testing.assert_array_equal(a[key], b[key])


# 3 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["config.json", "features.json", "notes.txt"])
def test_new_campaign_refuses_a_folder_holding_the_users_files(tmp_path, capsys, name):
    config = _config(tmp_path)
    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / name).write_text('{"mine": true}\n')
    assert _run(config, workdir) == EXIT_REFUSED
    line = _one_error_line(capsys.readouterr().err)
    assert "not empty and holds no rave campaign" in line and name in line
    assert (workdir / name).read_text() == '{"mine": true}\n'
    assert sorted(p.name for p in workdir.iterdir()) == [name]


def test_a_start_interrupted_before_its_manifest_is_taken_over(reference, tmp_path):
    config, run = reference
    workdir = tmp_path / "w"
    workdir.mkdir()
    for name in ("config.json", "features.json"):  # what the same config writes first
        shutil.copyfile(run / name, workdir / name)
    assert _run(config, workdir) == 0
    assert _files(workdir) == _files(run)


# 5 ----------------------------------------------------------------------------------------------
def test_resume_with_changed_bias_key_is_recorded_per_round_and_shown(reference, tmp_path,
                                                                      capsys):
    config, run = reference
    workdir = _copy(run, tmp_path)
    changed = _config(tmp_path, TINY.replace("[output]", "[bias]\ncap_kT = 2.0\n[output]"),
                      "changed.toml")
    assert _run(changed, workdir, "--rounds", "2") == 0
    round0 = json.loads((workdir / "round_000" / "round.json").read_text())
    round1 = json.loads((workdir / "round_001" / "round.json").read_text())
    change = "bias.cap_kT: stored 8.0, now 2.0"
    assert round0["config_changes"] == [] and round0["run"] == 0
    assert round1["config_changes"] == [change] and round1["run"] == 1
    manifest = json.loads((workdir / "manifest.json").read_text())
    assert manifest["runs"][1]["config"]["bias"]["cap_kT"] == 2.0
    assert manifest["runs"][1]["config_changes"] == [change]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["rounds"][1]["config_changes"] == [change]
    capsys.readouterr()
    assert main(["status", str(workdir)]) == 0
    assert f"round(s) 1 ran with a changed config (run 1 of manifest.json): {change}" in (
        capsys.readouterr().out)


# 6 (and 10: a refused resume appends no run) --------------------------------------------------
@pytest.mark.parametrize("name", ["frames.npz", "weights.npz", "models/vae_seed1000.pt",
                                  "round.json"])
def test_following_the_advice_for_a_damaged_round_file_gives_the_uninterrupted_store(
        reference, tmp_path, capsys, name):
    config, run = reference
    workdir = _copy(run, tmp_path)
    damaged = workdir / "round_000" / name
    damaged.write_bytes(damaged.read_bytes()[:100] if name != "round.json" else b"{}")
    manifest = (workdir / "manifest.json").read_bytes()
    assert _run(config, workdir) == EXIT_REFUSED
    line = _one_error_line(capsys.readouterr().err)
    assert str(damaged) in line and "--redo-round 0" in line
    assert (workdir / "manifest.json").read_bytes() == manifest  # the refused run left no trace
    assert _run(config, workdir, "--redo-round", "0") == 0
    assert _files(workdir) == _files(run)
    for file in ("frames.npz", "weights.npz"):
        a, b = (store.read_npz(w / "round_000" / file) for w in (workdir, run))
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    got = json.loads((workdir / "summary.json").read_text())["rounds"]
    expected = json.loads((run / "summary.json").read_text())["rounds"]
    assert [r["coefficients"] for r in got] == [r["coefficients"] for r in expected]


@pytest.mark.parametrize("name", ["config.json", "features.json"])
def test_following_the_advice_for_a_damaged_campaign_file_restores_it(reference, tmp_path,
                                                                     capsys, name):
    config, run = reference
    workdir = _copy(run, tmp_path)
    (workdir / name).write_text("{trunc")
    assert _run(config, workdir) == EXIT_REFUSED
    line = _one_error_line(capsys.readouterr().err)
    assert f"{workdir / name} is not valid JSON" in line and "remove it and rerun" in line
    (workdir / name).unlink()  # as the message says
    assert _run(config, workdir) == 0
    assert (workdir / name).read_bytes() == (run / name).read_bytes()


def test_analyse_and_export_report_a_truncated_model_by_name(reference, tmp_path, capsys):
    _, run = reference
    workdir = _copy(run, tmp_path)
    model = workdir / "round_000" / "models" / "vae_seed1000.pt"
    model.write_bytes(model.read_bytes()[:100])
    assert main(["analyse", str(workdir), "--out", str(tmp_path / "report")]) == EXIT_REFUSED
    assert f"{model} cannot be read" in _one_error_line(capsys.readouterr().err)
    assert main(["export", str(workdir), "--torchscript", str(tmp_path / "e.pt")]) == (
        EXIT_REFUSED)
    line = _one_error_line(capsys.readouterr().err)
    assert f"{model} cannot be read" in line and "--redo-round 0" in line


# 8 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "advice"), [(errno.ENOSPC, "free disk space"),
                                              (errno.EACCES, "make it writable"),
                                              (errno.EROFS, "make it writable")])
def test_os_failure_gives_one_error_line_and_a_resumable_store(tmp_path, capsys, monkeypatch,
                                                               code, advice):
    config = _config(tmp_path)
    workdir = tmp_path / "w"
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(dst).endswith("weights.npz"):
            raise OSError(code, os.strerror(code), str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    assert _run(config, workdir) == EXIT_OS
    line = _one_error_line(capsys.readouterr().err)
    assert str(workdir / "round_000" / "weights.npz") in line and advice in line
    monkeypatch.setattr(os, "replace", real_replace)
    assert _run(config, workdir) == 0
    assert (workdir / "round_000" / "round.json").is_file()
    assert not [p for p in workdir.rglob("*.tmp")]


def test_a_full_disk_in_numpys_or_torchs_writer_names_the_file_and_exits_4(
        tmp_path, capsys, monkeypatch):
    # numpy's zip writer raises OSError without a file name; torch's writer a RuntimeError
    import torch

    config = _config(tmp_path)
    workdir = tmp_path / "w"
    real_savez = np.savez

    def full_savez(file, *args, **kwargs):
        if "frames.npz" in str(file):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_savez(file, *args, **kwargs)

    monkeypatch.setattr(np, "savez", full_savez)
    assert _run(config, workdir) == EXIT_OS
    line = _one_error_line(capsys.readouterr().err)
    assert str(workdir / "round_000" / "frames.npz") in line and "free disk space" in line
    monkeypatch.setattr(np, "savez", real_savez)
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64")

    monkeypatch.setattr(torch, "save", failing_save)
    assert _run(config, workdir) == EXIT_OS
    line = _one_error_line(capsys.readouterr().err)
    assert ".pt" in line and "unexpected pos" in line and "round_000" in line
    monkeypatch.setattr(torch, "save", real_save)
    assert _run(config, workdir) == 0
    assert not [p for p in workdir.rglob("*.tmp")]


def test_a_workdir_under_a_file_gives_one_error_line(tmp_path, capsys):
    config = _config(tmp_path)
    (tmp_path / "file").write_text("not a folder")
    assert _run(config, tmp_path / "file" / "w") == EXIT_OS
    line = _one_error_line(capsys.readouterr().err)
    assert "file" in line and "is a file, not a directory" in line


def test_malformed_summary_gives_one_error_line(reference, tmp_path, capsys):
    _, run = reference
    workdir = _copy(run, tmp_path)
    (workdir / "summary.json").write_text("{}\n")
    assert main(["status", str(workdir)]) == EXIT_REFUSED
    assert f"{workdir / 'summary.json'} is not a rave summary" in _one_error_line(
        capsys.readouterr().err)
    assert main(["analyse", str(workdir)]) == EXIT_REFUSED
    assert "not what rave wrote" in _one_error_line(capsys.readouterr().err)


def test_ctrl_c_stops_cleanly_and_the_campaign_resumes(tmp_path, capsys, monkeypatch):
    config = _config(tmp_path)
    workdir = tmp_path / "w"

    def interrupted(self, index):
        raise KeyboardInterrupt

    monkeypatch.setattr(Campaign, "_round", interrupted)
    assert _run(config, workdir) == EXIT_INTERRUPTED
    line = _one_error_line(capsys.readouterr().err)
    assert "interrupted" in line and "resumes" in line
    monkeypatch.undo()
    assert _run(config, workdir) == 0
    assert (workdir / "round_000" / "round.json").is_file()


# 9 ----------------------------------------------------------------------------------------------
def test_campaign_stops_when_openmm_and_numpy_bias_energies_disagree(tmp_path):
    config = config_from_dict({"system": {"kind": "rotated_double_well"},
                               "vae": {"models": 1}, "output": {"figures": False}})
    campaign = Campaign(config, tmp_path / "w")
    features = np.random.default_rng(0).normal(size=(20, 2))
    bias = Bias(np.array([1.0, 0.0]), BiasGrid(-3.0, 3.0, np.linspace(-5.0, 0.0, 16)))
    wrong = bias.energy(features) + 0.5  # as if OpenMM had applied another chi
    campaign.loop.add_round(Frames(features, wrong, np.arange(20.0)), bias.to_dict(),
                            adaptive=False)
    with pytest.raises(BiasMismatchError, match=r"round 0: the bias energy OpenMM applied and "
                                                r"numpy's differ by up to 0.5 kJ/mol"):
        campaign._reweight()


# 10 ---------------------------------------------------------------------------------------------
def test_stored_files_follow_the_umask(reference):
    _, run = reference
    expected = 0o666 & ~files.current_umask()
    for name in ("manifest.json", "config.json", "round_000/frames.npz",
                 "round_000/walkers/walker_00.npz", "round_000/round.json"):
        assert stat.S_IMODE((run / name).stat().st_mode) == expected, name


def test_files_that_complete_a_walker_or_a_round_are_fsynced_with_their_folder(
        tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(files, "fsync_directory", lambda folder: synced.append(Path(folder)))
    workdir = tmp_path / "w"
    assert _run(_config(tmp_path), workdir) == 0
    for folder in (workdir, workdir / "round_000", workdir / "round_000" / "walkers"):
        assert folder in synced, folder


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_an_interrupt_while_rave_starts_is_one_line_and_exit_130(tmp_path, how):
    # the signal arrives while rave.cli loads its libraries (the first second of every
    # command): a finder sends it when rave.analysis is imported, no timing involved
    import subprocess
    import sys

    # SIGINT as a terminal delivers it (a background job may have inherited it ignored)
    code = f"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "rave.analysis":
            os.kill(os.getpid(), signal.{how})
        return None
sys.meta_path.insert(0, Interrupt())
sys.argv = ["rave", "status", {str(tmp_path)!r}]
import runpy
runpy.run_module("rave.cli", run_name="__main__")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "rave: error: interrupted while starting; nothing was done"


def test_an_unreachable_scheduler_is_one_error_line(tmp_path, capsys):
    config = _config(tmp_path, TINY.replace("[sampling]", "[sampling]\nwalkers = 2"))
    code = _run(config, tmp_path / "w", "--scheduler", "tcp://127.0.0.1:1")
    line = _one_error_line(capsys.readouterr().err)
    assert code == EXIT_REFUSED
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in line
    assert "Start one with `dask scheduler`" in line


def test_a_lost_manifest_has_a_way_back(reference, tmp_path, capsys):
    config, run = reference
    workdir = _copy(run, tmp_path)
    (workdir / "manifest.json").unlink()
    before = _files(workdir)
    assert _run(config, workdir) == EXIT_REFUSED
    line = _one_error_line(capsys.readouterr().err)
    assert "holds a rave campaign's files" in line and "--rebuild-manifest" in line
    assert _files(workdir) == before
    # the stored config.json itself is the config to rebuild with; the rounds are kept
    frames = (workdir / "round_000" / "frames.npz").read_bytes()
    assert _run(workdir / "config.json", workdir, "--rebuild-manifest", "--rounds", "2") == 0
    manifest = json.loads((workdir / "manifest.json").read_text())
    assert manifest["rebuilt"] and manifest["format"] == store.FORMAT
    assert (workdir / "round_000" / "frames.npz").read_bytes() == frames
    assert (workdir / "round_001" / "round.json").is_file()
