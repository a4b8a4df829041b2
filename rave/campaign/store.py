"""The campaign directory: layout, atomic writes, and the guard against overwriting.

Layout::

    WORKDIR/
      manifest.json        format name and version, rave version, input-file hashes, runs
      config.json          the validated configuration (every default filled in)
      features.json        the order parameters (rave.md.features.Feature.to_dict)
      inputs/              copies of a bring-your-own system's PDB / System XML
      prepared.npz         minimised and equilibrated start (systems that need preparation)
      summary.json         rounds, RC coefficients, KL, frames, effective sample size, MD
                           steps per round and the budget used and left, why it stopped
      free_energy.csv      chi,free_energy_kT from all rounds, reweighted, along the final RC
      free_energy.png      the same, with the exact profile for model potentials
      campaign.log
      rave.lock            the lock a writing rave holds (pid, host, start); kept when released
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
        round.json         this round's record, its MD steps per walker and why the schedule
                           chose them (and the run of manifest.json that made it,
                           with the config keys that run changed); written last: complete

Every file is written to a temporary name (``.NAME.XXXXXXXX.tmp``) in the same directory and
renamed into place, so a file with its final name is complete; the files that complete a walker
or a round, and the manifest, are fsynced with their directory. A round is complete when its
round.json exists; a walker when its walker file exists. Resuming redoes only what is not
complete.

Only rave writes here, and rave removes and overwrites only what it wrote: every command that
writes holds an exclusive lock (:func:`lock_workdir`, released by the OS when the process dies),
a new campaign starts only in a missing or empty directory (:func:`check_new_workdir`), and
stale temporaries are removed only by rave's own names in rave's own folders
(:func:`remove_stale_temporaries`). File modes follow the umask.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

#: names that mark a directory as holding a campaign
CAMPAIGN_MARKERS = ("config.json", "summary.json", "round_000")
#: the file that marks a resumable campaign, and its format
MANIFEST = "manifest.json"
FORMAT = "rave-campaign"
FORMAT_VERSION = 2
#: the lock file every writing command holds (flock), with its holder's pid, host, start
LOCK = "rave.lock"
#: names of the files rave writes into a work directory and its round folders
RAVE_FILE = re.compile(
    r"(manifest|config|features|summary|round|coordinate|bias|bias_applied)\.json"
    r"|free_energy\.(csv|png)|figure\.png|campaign\.log|rave\.lock"
    r"|(prepared|frames|weights|walker_\d{2})\.npz|vae_seed\d+\.pt"
)
#: a temporary of :func:`_atomic` (``tempfile.mkstemp``: 8 characters of [a-z0-9_])
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")
_ROUND_FOLDER = re.compile(r"round_\d{3}")


class WorkdirError(RuntimeError):
    """The work directory cannot be used; nothing in it was changed."""


class StoreFileError(WorkdirError):
    """A stored file is missing, truncated or corrupted; the message names it."""


class WorkdirBusy(WorkdirError):
    """Another rave process holds the work directory's lock; the message names it."""


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: the process's umask, read once (os.umask can only be read by setting it)
_UMASK = _current_umask()


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


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic(path: Path, write: Callable[[Path], None], durable: bool = False) -> None:
    """Write ``path`` through a temporary in its folder and rename it into place.

    The file gets the mode a plain ``open`` would (0666 less the umask). With ``durable``, the
    file's data and then its directory entry are fsynced, so a power cut after the return
    keeps the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)
        if durable:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)


def write_file(path: Path, write: Callable[[Path], None], durable: bool = False) -> None:
    """Write ``path`` with ``write(temporary_path)``, atomically (see :func:`_atomic`): the one
    writer for files whose bytes another module produces (a torch model, TorchScript)."""
    _atomic(Path(path), write, durable)


def write_text(path: Path, text: str, durable: bool = False) -> None:
    _atomic(path, lambda tmp: tmp.write_text(text), durable)


def write_json(path: Path, data, durable: bool = False) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n", durable)


def write_npz(path: Path, durable: bool = False, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    _atomic(path, write, durable)


def copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically (an input file into ``inputs/``)."""
    _atomic(target, lambda tmp: shutil.copyfile(source, tmp))


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
        raise StoreFileError(f"{path} cannot be read (truncated or corrupted?): "
                             f"{error}") from error
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
        raise StoreFileError(f"{path} is not valid JSON (truncated or corrupted?): "
                             f"{error}") from error


def _rave_folders(workdir: Path) -> list[Path]:
    """The folders rave writes: the work directory and each round's (walkers/, models/)."""
    workdir = Path(workdir)
    folders = [workdir]
    if workdir.is_dir():
        for entry in sorted(workdir.iterdir()):
            if entry.is_dir() and _ROUND_FOLDER.fullmatch(entry.name):
                folders += [entry, entry / "walkers", entry / "models"]
    return [f for f in folders if f.is_dir() and not f.is_symlink()]


def is_rave_temporary(path: Path) -> bool:
    """Whether ``path`` is named as a temporary of a file rave writes (``.NAME.XXXXXXXX.tmp``)."""
    match = _TEMPORARY.fullmatch(Path(path).name)
    return bool(match) and bool(RAVE_FILE.fullmatch(match["name"]))


def remove_stale_temporaries(workdir: Path) -> list[Path]:
    """Delete the temporaries of rave's own files that a killed rave left in rave's own
    folders; they were never renamed into place, so they hold nothing that was stored.

    Call it only while holding the lock (:func:`lock_workdir`): a live writer's temporaries
    look the same. Files of other names, and files in other folders, are never touched.
    """
    stale = [p for folder in _rave_folders(workdir) for p in sorted(folder.iterdir())
             if p.is_file() and not p.is_symlink() and is_rave_temporary(p)]
    for path in stale:
        path.unlink()
    return stale


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return (f"pid {info['pid']} on {info['host']}, started {info['started']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that did not say who it is"


@contextlib.contextmanager
def lock_workdir(workdir: Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``workdir`` (created if missing) while writing it.

    The lock is ``fcntl.flock`` on ``WORKDIR/rave.lock``, so the OS releases it when the
    holder exits in any way, ``kill -9`` included; the file stays and names its last holder.

    Raises
    ------
    WorkdirBusy
        Another process holds the lock; the message names its pid, host and start time.
    """
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"work directory {workdir} exists and is not a directory. Choose "
                           f"another --workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise WorkdirBusy(
                f"work directory {workdir} is in use by another rave ({_holder(path)}); "
                f"nothing was changed. Wait for it to finish (`rave status {workdir}` shows its "
                f"progress), or choose another --workdir") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


def holds_resumable_campaign(workdir: Path) -> bool:
    return (Path(workdir) / MANIFEST).is_file()


def check_new_workdir(workdir: Path, own: dict[str, bytes] | None = None) -> None:
    """Refuse to start a new campaign in ``workdir`` unless that loses nothing.

    Allowed: a missing or empty directory (rave's lock file and rave temporaries do not
    count), or one holding only files equal to what this campaign would write there (``own``:
    name relative to ``workdir`` -> content; a start interrupted before its manifest).

    Raises
    ------
    WorkdirError
        ``workdir`` is a file, or holds anything else; the message names what it holds.
    """
    workdir = Path(workdir)
    if not workdir.exists():
        return
    if not workdir.is_dir():
        raise WorkdirError(f"work directory {workdir} exists and is not a directory. Choose "
                           f"another --workdir")
    if holds_resumable_campaign(workdir):
        return  # started by another rave meanwhile: resumed under the lock
    own = own or {}
    own_temporaries = {f".{Path(name).name}" for name in own}
    foreign = []
    for path in sorted(workdir.rglob("*")):
        name = path.relative_to(workdir).as_posix()
        if path.is_dir() and not path.is_symlink():
            continue
        if name == LOCK or (path.parent == workdir and is_rave_temporary(path)):
            continue
        match = _TEMPORARY.fullmatch(path.name)
        if path.parent == workdir / "inputs" and match and f".{match['name']}" in own_temporaries:
            continue
        if name in own and path.is_file() and path.read_bytes() == own[name]:
            continue
        foreign.append(name)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise WorkdirError(
            f"work directory {workdir} is not empty and holds no rave campaign "
            f"({MANIFEST} is missing); it holds {shown}. Nothing was changed. A new campaign "
            f"starts only in a missing or empty directory: choose another --workdir")


def discard_rounds_from(workdir: Path, index: int,
                        keep: Callable[[Path], bool] = lambda path: False) -> list[Path]:
    """Remove what rave wrote for round ``index`` and every later round, and the campaign
    totals built from them (``rave run --redo-round``).

    Only rave's own file names are removed; in round ``index`` a walker file for which
    ``keep(path)`` is true stays (its MD is reused). Other files and folders stay.
    """
    workdir = Path(workdir)
    removed = []
    for name in ("summary.json", "free_energy.csv", "free_energy.png"):
        if (workdir / name).is_file():
            removed.append(workdir / name)
    r = index
    while round_dir(workdir, r).is_dir():
        for folder in (round_dir(workdir, r), round_dir(workdir, r) / "walkers",
                       round_dir(workdir, r) / "models"):
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if not path.is_file() or not (RAVE_FILE.fullmatch(path.name)
                                              or is_rave_temporary(path)):
                    continue
                if r == index and folder.name == "walkers" and keep(path):
                    continue
                removed.append(path)
        r += 1
    for path in removed:
        path.unlink()
    return removed
