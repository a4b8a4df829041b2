"""The work directory's guard: the lock, the checks before writing, and rave's own files.

Only rave writes a work directory, and rave removes and overwrites only what it wrote: every
command that writes holds an exclusive lock (:func:`lock_workdir`, released by the OS when the
process dies), a new campaign starts only in a missing or empty directory
(:func:`check_new_workdir`), and stale temporaries are removed only by rave's own names in
rave's own folders (:func:`remove_stale_temporaries`). File modes follow the umask.

Every file is written to a temporary name (``.NAME.XXXXXXXX.tmp``) in the same directory and
renamed into place (:mod:`rave.files`), so a file with its final name is complete; the files
that complete a walker or a round, and the manifest, are fsynced with their directory. A round
is complete when its round.json exists; a walker when its walker file exists. Resuming redoes
only what is not complete.

The readers of this module (:func:`load_json`, :func:`load_npz`) name a missing or damaged file
in a :class:`StoreFileError`; :class:`rave.campaign.store.CampaignStore` reads and writes the
layout through them.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..files import TEMPORARY

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
_ROUND_FOLDER = re.compile(r"round_\d{3}")


class WorkdirError(RuntimeError):
    """The work directory cannot be used; nothing in it was changed."""


class StoreFileError(WorkdirError):
    """A stored file is missing, truncated or corrupted; the message names it."""


class WorkdirBusy(WorkdirError):
    """Another rave process holds the work directory's lock; the message names it."""


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL at the named point when ``RAVE_FAULT_AT`` equals it.

    Fault injection for the crash-and-resume tests; a no-op otherwise. ``RAVE_FAULT_AT`` may
    be ``name`` or ``name:N`` (the N-th time the point is reached, from 1). ``RAVE_HOLD_AT =
    "name=PATH"`` holds the process at the point (the concurrency tests' handshake): it creates
    ``PATH.reached`` and waits until ``PATH`` exists (at most 5 minutes).
    """
    hold = os.environ.get("RAVE_HOLD_AT")
    if hold:  # "name=path": say the point is reached (path + ".reached"), wait for path
        point, _, gate = hold.partition("=")
        if point == name and gate:
            Path(gate + ".reached").touch()
            deadline = time.monotonic() + _HOLD_TIMEOUT_S
            while not Path(gate).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
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
#: longest wait at a RAVE_HOLD_AT point, s
_HOLD_TIMEOUT_S = 300.0


def campaign_holding(path: str | Path) -> Path | None:
    """The rave work directory (resolved) that ``path`` is or lies in, or None."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        manifest = folder / MANIFEST
        if manifest.is_file():
            try:
                if read_json(manifest).get("format") == FORMAT:
                    return folder
            except (OSError, ValueError, AttributeError):
                return folder  # a damaged manifest: still a campaign
    return None


def round_dir(workdir: Path, index: int) -> Path:
    """The folder of round ``index`` (from 0) in ``workdir``: ``WORKDIR/round_NNN``."""
    return Path(workdir) / f"round_{index:03d}"


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``, read into memory (NumPy's errors: see
    :func:`load_npz`).
    """
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def read_json(path: Path):
    """The JSON content of ``path`` (Python's errors: see :func:`load_json`)."""
    return json.loads(Path(path).read_text())


def load_npz(path: Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every array of ``path``, which must hold ``required``; a StoreFileError names a bad file."""
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
    """The JSON content of ``path``; a StoreFileError names a missing or malformed file."""
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
    """Whether ``path``'s name is a temporary of one of rave's files (``.NAME.XXXXXXXX.tmp``)."""
    match = TEMPORARY.fullmatch(Path(path).name)
    return bool(match) and bool(RAVE_FILE.fullmatch(match["name"]))


def remove_stale_temporaries(workdir: Path) -> list[Path]:
    """Delete (and return) the temporaries of rave's files that a killed rave left in its folders.

    They were never renamed into place. Call it only while holding the lock (:func:`lock_workdir`):
    a live writer's temporaries look the same. Other names and other folders are never touched.
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
    """Hold an exclusive lock on ``workdir`` (created if missing); yields the lock file.

    The lock is ``fcntl.flock`` on ``WORKDIR/rave.lock``, so the OS releases it when the holder
    exits in any way, ``kill -9`` included; the file stays and names its last holder (pid, host,
    start time). Raises WorkdirBusy when another process holds it, WorkdirError when ``workdir``
    is not a directory.
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
    """Whether ``workdir`` holds a resumable campaign (a ``manifest.json`` file)."""
    return (Path(workdir) / MANIFEST).is_file()


def check_new_workdir(workdir: Path, own: dict[str, bytes] | None = None) -> None:
    """Refuse (WorkdirError) to start a new campaign in ``workdir`` unless that loses nothing.

    Allowed: a missing or empty directory (rave's lock file and temporaries do not count), one
    holding only files equal to ``own`` (name -> content this campaign writes before its manifest:
    a start interrupted before it), or one that meanwhile holds a resumable campaign.
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
        match = TEMPORARY.fullmatch(path.name)
        if path.parent == workdir / "inputs" and match and f".{match['name']}" in own_temporaries:
            continue
        if name in own and path.is_file() and path.read_bytes() == own[name]:
            continue
        foreign.append(name)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        if (workdir / "config.json").is_file() and any(n.startswith("round_")
                                                       for n in foreign):
            raise WorkdirError(
                f"work directory {workdir} holds a rave campaign's files ({shown}) but its "
                f"{MANIFEST} is missing. Nothing was changed. Restore {MANIFEST} from a "
                f"backup, or rebuild it from config.json and resume: rave run "
                f"{workdir / 'config.json'} --workdir {workdir} --rebuild-manifest")
        raise WorkdirError(
            f"work directory {workdir} is not empty and holds no rave campaign "
            f"({MANIFEST} is missing); it holds {shown}. Nothing was changed. A new campaign "
            f"starts only in a missing or empty directory: choose another --workdir")


def discard_rounds_from(workdir: Path, index: int,
                        keep: Callable[[Path], bool] = lambda path: False) -> list[Path]:
    """Remove (and return) rave's files of round ``index`` and later, and the campaign totals.

    This is ``rave run --redo-round``: the totals are ``summary.json`` and ``free_energy.csv/png``;
    only rave's own file names are removed, and a walker file of round ``index`` for which
    ``keep(path)`` is true stays (its MD is reused).
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

