"""The campaign directory: layout, atomic writes, and the guard against overwriting.

Layout::

    WORKDIR/
      config.json          the validated configuration (every default filled in)
      summary.json         rounds, RC coefficients, KL, frames, effective sample size
      free_energy.csv      chi,free_energy_kT from all rounds, reweighted, along the final RC
      free_energy.png      the same, with the exact profile for model potentials
      campaign.log
      round_000/
        frames.npz         features, bias_kjmol (bias applied when sampled), time_ps
        bias_applied.json  the static bias this round was sampled under (absent in round 0)
        state.npz          positions/velocities at the end of the round
        models/vae_seed<N>.pt
        coordinate.json    the RC learned from rounds 0..r, per-model KL, spurious models
        bias.json          the bias built after this round (applied in the next)
        free_energy.csv    profile along this round's RC
        figure.png

Every file is written to a temporary name in the same directory and renamed into place, so a
file with its final name is complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: names that mark a directory as holding a campaign
CAMPAIGN_MARKERS = ("config.json", "summary.json", "round_000")


class WorkdirError(RuntimeError):
    """The work directory cannot be used; nothing in it was changed."""


def round_dir(workdir: Path, index: int) -> Path:
    return Path(workdir) / f"round_{index:03d}"


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    _atomic(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    _atomic(path, write)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def prepare_workdir(workdir: Path) -> Path:
    """Create the work directory, refusing one that already holds a campaign."""
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"work directory {workdir} exists and is not a directory")
    present = [name for name in CAMPAIGN_MARKERS if (workdir / name).exists()]
    if present:
        raise WorkdirError(
            f"work directory {workdir} already holds a campaign ({', '.join(present)}); nothing "
            f"was changed. Choose another --workdir, or move that one away to start afresh"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir
