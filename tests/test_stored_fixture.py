"""Stores written by the code of 2026-11-30 (tests/fixtures/store_2026_11_30_*: a static and an
OPES campaign of two short rounds on the rotated double well, made by the code at that date) must
stay readable: they resume, analyse and report with the code of today. When a change breaks one of
these tests, it breaks users' campaigns: make the change read the old layout instead."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rave.analysis import CampaignResult
from rave.campaign import Campaign
from rave.campaign.config import config_from_dict
from rave.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
STORES = ("store_2026_11_30_static", "store_2026_11_30_opes")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", STORES)
def test_a_stored_campaign_of_2026_11_30_analyses_and_resumes(tmp_path, name):
    workdir = tmp_path / name
    shutil.copytree(FIXTURES / name, workdir)
    before = {k: v for k, v in _digest(workdir).items() if k.startswith("round_")}

    result = CampaignResult.load(workdir)
    assert result.frames_per_round() == [100, 100]
    assert np.isfinite(result.log_weights).all()
    profile = result.profile(n_bootstrap=4)
    assert np.isfinite(profile.free_energy).sum() >= 10

    data = json.loads((workdir / "config.json").read_text())
    data["sampling"]["rounds"] = 3
    Campaign(config_from_dict(data), workdir).run()
    after = _digest(workdir)
    # the stored rounds are read, not rewritten; the new round is complete
    assert {k: after[k] for k in before} == before
    assert (workdir / "round_002" / "round.json").is_file()
    summary = json.loads((workdir / "summary.json").read_text())
    assert [r["index"] for r in summary["rounds"]] == [0, 1, 2]
    assert CampaignResult.load(workdir).frames_per_round() == [100, 100, 100]
    # and the command line's status and report read it
    assert main(["status", str(workdir)]) == 0
    assert main(["analyse", str(workdir)]) == 0
    assert (workdir / "report" / "report.html").is_file()


def test_status_into_a_closed_pipe_is_not_an_error(tmp_path):
    # `rave status W | head -1`: the reader leaves after one line; rave exits 0 without a word
    import subprocess
    import sys

    workdir = tmp_path / "w"
    shutil.copytree(FIXTURES / "store_2026_11_30_static", workdir)
    status = subprocess.Popen([sys.executable, "-m", "rave.cli", "status", str(workdir)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    status.stdout.close()  # the reader is gone before rave writes (head -1 after its line)
    err = status.stderr.read().decode()
    assert status.wait(timeout=120) == 0, err
    assert "Broken pipe" not in err and "rave: error" not in err


def test_status_counts_the_stored_rounds_not_the_summary(tmp_path, capsys):
    from rave.cli import main

    workdir = tmp_path / "w"
    shutil.copytree(FIXTURES / "store_2026_11_30_static", workdir)
    rounds = len(sorted(workdir.glob("round_*/round.json")))
    assert rounds >= 2
    (workdir / "summary.json").unlink()
    assert main(["status", str(workdir)]) == 0
    out = capsys.readouterr().out
    assert "summary.json is missing; the rounds below are read from their round.json" in out
    assert f"{rounds} round(s) done" in out
    # a round.json deleted: the rounds before it are the complete ones
    (workdir / f"round_{rounds - 1:03d}" / "round.json").unlink()
    assert main(["status", str(workdir)]) == 0
    assert f"{rounds - 1} round(s) done" in capsys.readouterr().out
    again = tmp_path / "again"
    shutil.copytree(FIXTURES / "store_2026_11_30_static", again)
    (again / f"round_{rounds - 1:03d}" / "round.json").unlink()
    assert main(["status", str(again)]) == 0
    out = capsys.readouterr().out
    assert f"summary.json lists {rounds} round(s) but {rounds - 1} complete round(s)" in out
    assert f"{rounds - 1} round(s) done" in out


def test_status_and_analyse_say_what_a_folder_is_not(tmp_path, capsys):
    from rave.cli import main

    missing, foreign, running = tmp_path / "missing", tmp_path / "foreign", tmp_path / "running"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a campaign")
    shutil.copytree(FIXTURES / "store_2026_11_30_static", running)
    for folder in sorted(running.glob("round_*")):
        shutil.rmtree(folder)
    (running / "summary.json").unlink()
    cases = [(missing, "does not exist"), (foreign, "holds no rave campaign (no manifest.json)")]
    for folder, message in cases:
        for command in ("status", "analyse"):
            assert main([command, str(folder)]) == 2
            err = capsys.readouterr().err
            assert message in err and "summary.json is missing" not in err, err
    assert main(["analyse", str(running)]) == 2
    assert "no round of" in capsys.readouterr().err
    assert main(["status", str(running)]) == 0
    assert "0 round(s) done" in capsys.readouterr().out
