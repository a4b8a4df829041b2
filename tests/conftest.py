"""What several test modules share: one small campaign run once per test session, and the
helpers that run ``rave`` in a fresh process.

Helpers are imported by name (``from conftest import rave_run``); the campaign is the
``small_campaign`` fixture.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: the small VAE of the shared campaign (two epochs of two minibatches: seconds, not minutes)
SMALL_VAE = {"hidden": [32, 32, 32], "max_epochs": 2, "frames_per_epoch": 1024, "device": "cpu"}
#: a small campaign for plumbing and for the estimator's reproduction of it (not physics): the
#: rotated double well (35 deg, 6 kT), 2 rounds x 2 walkers x 6000 steps, a frame every 20
#: steps; the static bias (a round's applied bias is the previous round's bias.json); 2 VAEs
#: (round 1: one warm, one cold) on one core (bit-identical training needs the same intra-op
#: threads); the RC fitted on a seeded subset of 100 frames (coordinate.max_frames)
SMALL_CAMPAIGN = {
    "system": {"kind": "rotated_double_well", "temperature": 300.0, "angle_deg": 35.0,
               "barrier_kT": 6.0},
    "sampling": {"rounds": 2, "steps_per_round": 6000, "report_interval": 20, "seed": 3,
                 "walkers": 2, "snapshots": 5, "scheduler": "serial"},
    "vae": {**SMALL_VAE, "models": 2, "cold_seeds": 1, "threads": 1},
    "coordinate": {"max_frames": 100},
    "bias": {"method": "static"},
    "output": {"figures": False, "progress": False},
}


@pytest.fixture(scope="session")
def small_campaign(tmp_path_factory):
    """:data:`SMALL_CAMPAIGN` run once: the finished :class:`rave.campaign.Campaign` (its work
    directory is ``.workdir``) and the summary ``run()`` returned. Read it, do not write to it."""
    from rave.campaign import Campaign
    from rave.campaign.config import config_from_dict

    workdir = tmp_path_factory.mktemp("small_campaign") / "rdw"
    campaign = Campaign(config_from_dict(SMALL_CAMPAIGN), workdir)
    summary = campaign.run()
    return campaign, summary


def rave_run(config: Path, workdir: Path, fault: str | None = None,
             kill_after_s: float | None = None) -> tuple[int, str]:
    """``rave run CONFIG --workdir WORKDIR -q`` in a fresh process.

    Parameters
    ----------
    config, workdir : Path
        The config file and the work directory.
    fault : str, optional
        ``RAVE_FAULT_AT``: the point (``name`` or ``name:N``) where the process kills itself
        (:func:`rave.campaign.store.fault_point`).
    kill_after_s : float, optional
        SIGKILL the process after this many seconds (wherever it is).

    Returns
    -------
    tuple of (int, str)
        The exit status (``-SIGKILL`` when killed) and stdout + stderr.
    """
    env = {**os.environ, "RAVE_FAULT_AT": fault or ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rave.cli", "run", str(config), "--workdir", str(workdir), "-q"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    if kill_after_s is not None:
        time.sleep(kill_after_s)
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out + err


def modules_after(statement: str, *modules: str) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``statement``.

    Parameters
    ----------
    statement : str
        Python code (lines), run with the checkout on ``PYTHONPATH``.
    *modules : str
        Module names to look for in ``sys.modules``.

    Returns
    -------
    list of str
        Those imported, sorted.
    """
    code = f"import sys\n{statement}\nprint(sorted(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)}).stdout
    return ast.literal_eval(out.strip().splitlines()[-1])
