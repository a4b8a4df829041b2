"""The campaign directory: layout, atomic writes, and the guard against overwriting.

Layout::

    WORKDIR/
      manifest.json        format name and version, rave version, input-file hashes, runs
      config.json          the validated configuration (every default filled in)
      features.json        the order parameters (rave.features.Feature.to_dict)
      inputs/              copies of a bring-your-own system's PDB / System XML
      prepared.npz         minimised and equilibrated start (systems that need preparation)
      summary.json         rounds, RC coefficients, KL, frames, effective sample size
      free_energy.csv      chi,free_energy_kT from all rounds, reweighted, along the final RC
      free_energy.png      the same, with the exact profile for model potentials
      campaign.log
      round_000/
        bias_applied.json  the static bias this round was sampled under (absent in round 0)
        walkers/walker_KK.npz  one walker's frames, position snapshots, final state
                           (its OpenMM checkpoint), faults; written as each walker finishes
        frames.npz         all walkers' frames: features, bias_kjmol (applied when sampled),
                           time_ps, walker (index of the walker of each frame)
        weights.npz        MBAR log-weights of every frame of rounds 0..r, f_k per round
        models/vae_seed<N>.pt
        coordinate.json    the RC learned from rounds 0..r, per-model KL, spurious models
        bias.json          the bias built after this round (applied in the next)
        free_energy.csv    profile along this round's RC
        figure.png
        round.json         this round's record; written last: the round is complete

Every file is written to a temporary name in the same directory and renamed into place, so a
file with its final name is complete. A round is complete when its round.json exists; a walker
when its walker file exists. Resuming redoes only what is not complete.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: names that mark a directory as holding a campaign
CAMPAIGN_MARKERS = ("config.json", "summary.json", "round_000")
#: the file that marks a resumable campaign, and its format
MANIFEST = "manifest.json"
FORMAT = "rave-campaign"
FORMAT_VERSION = 2


class WorkdirError(RuntimeError):
    """The work directory cannot be used; nothing in it was changed."""


class StoreFileError(WorkdirError):
    """A stored file is missing, truncated or corrupted; the message names it."""


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL at the named point when ``RAVE_FAULT_AT`` equals it.

    Fault injection for the crash-and-resume tests; a no-op otherwise. ``RAVE_FAULT_AT`` may
    be ``name`` or ``name:N`` (the N-th time the point is reached, from 1).
    """
    target = os.environ.get("RAVE_FAULT_AT")
    if not target:
        return
    wanted, _, count = target.partition(":")
    if wanted != name:
        return
    _FAULT_COUNTS[name] = _FAULT_COUNTS.get(name, 0) + 1
    if _FAULT_COUNTS[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


_FAULT_COUNTS: dict[str, int] = {}


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


def load_npz(path: Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """:func:`read_npz` that names the file in a :class:`StoreFileError` when it is missing,
    truncated or corrupted, or lacks one of the ``required`` arrays."""
    path = Path(path)
    try:
        data = read_npz(path)
    except FileNotFoundError as error:
        raise StoreFileError(f"{path} is missing") from error
    except Exception as error:  # zipfile / pickle / EOF errors of a damaged file
        raise StoreFileError(f"{path} cannot be read (truncated or corrupted?): {error}. Move "
                             f"it away to have it recomputed, or restore it") from error
    missing = [key for key in required if key not in data]
    if missing:
        raise StoreFileError(f"{path} lacks {', '.join(missing)} (corrupted or from another "
                             f"program?)")
    return data


def load_json(path: Path):
    """:func:`read_json` that names the file in a :class:`StoreFileError`."""
    path = Path(path)
    try:
        return read_json(path)
    except FileNotFoundError as error:
        raise StoreFileError(f"{path} is missing") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise StoreFileError(f"{path} is not valid JSON (truncated or corrupted?): {error}. "
                             f"Move it away to have it recomputed, or restore it") from error


def remove_stale_temporaries(workdir: Path) -> list[Path]:
    """Delete the temporary files (``.NAME.XXXX.tmp``) a killed process left; they were never
    renamed into place, so they hold nothing that was stored."""
    stale = [p for p in Path(workdir).rglob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink()
    return stale


def holds_resumable_campaign(workdir: Path) -> bool:
    return (Path(workdir) / MANIFEST).is_file()


def prepare_workdir(workdir: Path) -> Path:
    """Create the work directory for a new campaign, refusing one that already holds data.

    A directory with only ``config.json`` / ``features.json`` (a start interrupted before the
    manifest was written) is taken over.
    """
    workdir = Path(workdir)
    if (workdir / "config.json").exists() and not (workdir / MANIFEST).exists() and not any(
        (workdir / name).exists() for name in ("summary.json", "round_000")
    ):
        return workdir
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
