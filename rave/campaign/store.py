"""The campaign directory: layout, atomic writes, and the guard against overwriting.

:class:`CampaignStore` owns the layout: it is the one place that names the files below, writes
them (through the atomic writers of this module) and reads them back (config, manifest, summary,
features, a round's frames as a :class:`rave.md.frames.Frames`, its bias states, RC, next bias,
weights, records, walker files and models). The campaign, the analysis, the export and ``rave
status`` go through it; a damaged or missing file is a :class:`StoreFileError` naming it.

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
        walkers/walker_KK.dcd  its positions as a DCD trajectory ([output] dcd_interval)
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
                           with the config keys that run changed), the convergence
                           criteria it failed; written last: complete

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
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import (
    TEMPORARY,
    copy_file,
    write_file,
    write_json,
    write_npz,
    write_text,
)

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

    Parameters
    ----------
    name : str
        The name of this point in the code (e.g. a stage of a round).
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
    """The rave work directory that ``path`` is, or lies in (a folder with a rave manifest).

    Parameters
    ----------
    path : str or path
        A file or folder, existing or not.

    Returns
    -------
    Path or None
        The campaign's folder (resolved); None when ``path`` is in no campaign.
    """
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
    """The folder of round ``index`` in ``workdir``: ``WORKDIR/round_NNN``.

    Parameters
    ----------
    workdir : path
        The work directory.
    index : int
        The round's index, from 0.

    Returns
    -------
    Path
        ``workdir / f"round_{index:03d}"`` (it need not exist).
    """
    return Path(workdir) / f"round_{index:03d}"


def write_dcd(path: Path, positions_nm: np.ndarray, box_nm: np.ndarray | None = None) -> None:
    """Write positions as a DCD trajectory (mdtraj's writer), durably and atomically.

    Parameters
    ----------
    path : path
        The ``.dcd`` file; its folder is created if missing.
    positions_nm : np.ndarray, shape=(n_frames, n_particles, 3)
        The positions, nm (stored in the DCD's Angstrom, float32).
    box_nm : np.ndarray or None, shape=(3, 3)
        Periodic box vectors written with every frame, nm; None: no unit cell.
    """
    from mdtraj.formats import DCDTrajectoryFile
    from mdtraj.utils import box_vectors_to_lengths_and_angles

    xyz = 10.0 * np.asarray(positions_nm, dtype=np.float32)
    lengths = angles = None
    if box_nm is not None:
        a, b, c = (10.0 * np.asarray(box_nm, dtype=float).reshape(3, 3))
        cell = box_vectors_to_lengths_and_angles(a, b, c)
        lengths = np.tile(np.array(cell[:3], dtype=np.float32), (len(xyz), 1))
        angles = np.tile(np.array(cell[3:], dtype=np.float32), (len(xyz), 1))

    def write(tmp: Path) -> None:
        with DCDTrajectoryFile(str(tmp), "w", force_overwrite=True) as handle:
            handle.write(xyz, cell_lengths=lengths, cell_angles=angles)

    write_file(path, write, durable=True)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file ``path``, read into memory.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    dict of str to np.ndarray
        The arrays by name. A missing or damaged file raises NumPy's error (:func:`load_npz`
        names the file instead).
    """
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def read_json(path: Path):
    """The JSON content of ``path``.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    object
        The decoded JSON. A missing or malformed file raises Python's error (:func:`load_json`
        names the file instead).
    """
    return json.loads(Path(path).read_text())


def load_npz(path: Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """:func:`read_npz` that names the file when it cannot be read or lacks an array.

    Parameters
    ----------
    path : path
        The file.
    required : tuple of str, optional
        The names of the arrays it must hold.

    Returns
    -------
    dict of str to np.ndarray
        The arrays by name.

    Raises
    ------
    StoreFileError
        The file is missing, truncated or corrupted, or lacks one of the ``required`` arrays.
    """
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
    """:func:`read_json` that names the file in a :class:`StoreFileError`.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    object
        The decoded JSON.

    Raises
    ------
    StoreFileError
        The file is missing, or is not valid JSON (truncated or corrupted).
    """
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
    """Whether ``path`` is named as a temporary of a file rave writes (``.NAME.XXXXXXXX.tmp``).

    Parameters
    ----------
    path : path
        The file; only its name is looked at.

    Returns
    -------
    bool
        True when the name is a temporary of :func:`rave.files.write_file` for one of rave's
        file names.
    """
    match = TEMPORARY.fullmatch(Path(path).name)
    return bool(match) and bool(RAVE_FILE.fullmatch(match["name"]))


def remove_stale_temporaries(workdir: Path) -> list[Path]:
    """Delete the temporaries of rave's own files that a killed rave left in rave's own folders.

    They were never renamed into place, so they hold nothing that was stored. Call it only
    while holding the lock (:func:`lock_workdir`): a live writer's temporaries look the same.
    Files of other names, and files in other folders, are never touched.

    Parameters
    ----------
    workdir : path
        The work directory; it and its round folders (with their ``walkers/`` and ``models/``)
        are searched.

    Returns
    -------
    list of Path
        The files deleted.
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

    Parameters
    ----------
    workdir : path
        The work directory.

    Yields
    ------
    Path
        The lock file, ``WORKDIR/rave.lock``, holding this process's pid, host and start time.

    Raises
    ------
    WorkdirBusy
        Another process holds the lock; the message names its pid, host and start time.
    WorkdirError
        ``workdir`` exists and is not a directory.
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
    """Whether ``workdir`` holds a resumable campaign (its ``manifest.json``).

    Parameters
    ----------
    workdir : path
        The work directory.

    Returns
    -------
    bool
        True when ``WORKDIR/manifest.json`` is a file.
    """
    return (Path(workdir) / MANIFEST).is_file()


def check_new_workdir(workdir: Path, own: dict[str, bytes] | None = None) -> None:
    """Refuse to start a new campaign in ``workdir`` unless that loses nothing.

    Allowed: a missing or empty directory (rave's lock file and rave temporaries do not
    count), or one holding only files equal to what this campaign would write there (a start
    interrupted before its manifest), or one that meanwhile holds a resumable campaign.

    Parameters
    ----------
    workdir : path
        The work directory.
    own : dict of str to bytes, optional
        What this campaign writes before its manifest: name relative to ``workdir`` ->
        content (:meth:`CampaignStore.start_files`).

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
    """Remove what rave wrote for round ``index`` and every later round, and the campaign totals.

    The totals are those built from the rounds (``summary.json``, ``free_energy.csv``,
    ``free_energy.png``); this is ``rave run --redo-round``. Only rave's own file names are
    removed; in round ``index`` a walker file for which ``keep(path)`` is true stays (its MD is
    reused). Other files and folders stay.

    Parameters
    ----------
    workdir : path
        The work directory.
    index : int
        The first round discarded.
    keep : callable, optional
        ``keep(path) -> bool`` for each walker file of round ``index``: True keeps it. By
        default none is kept.

    Returns
    -------
    list of Path
        The files removed.
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


@dataclass
class RoundRecord:
    """A complete round's record: ``round.json``, and its entry in ``summary.json``'s rounds.

    Attributes
    ----------
    index : int
        The round's index, from 0.
    coefficients : np.ndarray, shape=(n_features,)
        The RC learned after the round (unit norm, feature order).
    kl_divergence : float
        ``KL(P_latent || Q_chi)`` of the chosen RC (nats, >= 0; see
        :class:`rave.learn.coordinate.CoordinateResult`).
    frames : int
        Frames the round added.
    effective_sample_size : float
        MBAR's, over all frames so far.
    angle_change_deg, free_energy_change_kT : float or None
        Change of the RC (degrees) and of F(chi) (kT) from the previous round (None: round 0).
    converged : bool
        Whether the campaign's convergence criteria held after this round.
    walkers : int
        The walkers the round ran.
    faults : int
        The MD faults its walkers recovered from (segments retried at a halved time step;
        :mod:`rave.campaign.walkers`).
    timings_s : dict
        Seconds per stage.
    run : int or None
        The entry of ``manifest.json``'s runs that completed this round (None: not recorded).
    config_changes : list of str
        The config keys that run changed from ``config.json``, as "key: stored X, now Y".
    steps : int or None
        MD steps per walker of this round (None: not recorded).
    plan_reason : str or None
        Why the schedule (:mod:`rave.campaign.schedule`) chose ``steps``.
    chi_range_growth : float or None
        Growth of the chi span of all frames by this round's frames, as a fraction of the span
        of the earlier rounds' frames, along this round's RC (None: round 0).
    seed_spread_deg : float or None
        Largest angle between the chosen RC and the other usable seeds' RCs, degrees (None:
        one model).
    free_energy_sigma_kT : float or None
        RMS block-bootstrap uncertainty of F(chi) where F < profile_max_kT, kT (None: not run).
    rc_angle_sigma_deg : float or None
        Block-bootstrap uncertainty of the RC's direction, degrees (None: not run).
    convergence_failures : list of str or None
        The convergence criteria this round failed, in words (:mod:`rave.learn.convergence`;
        empty: converged; None: not recorded, an older rave).
    """

    index: int
    coefficients: np.ndarray
    kl_divergence: float
    frames: int
    effective_sample_size: float
    angle_change_deg: float | None = None
    free_energy_change_kT: float | None = None
    converged: bool = False
    walkers: int = 1
    faults: int = 0
    timings_s: dict = field(default_factory=dict)
    #: the entry of manifest.json's runs that completed this round (None: not recorded)
    run: int | None = None
    #: config keys that run changed from config.json, "key: stored X, now Y"
    config_changes: list[str] = field(default_factory=list)
    #: MD steps per walker of this round, and why the schedule chose them (rave.campaign.schedule)
    steps: int | None = None
    plan_reason: str | None = None
    #: growth of the chi span of all frames by this round's frames, as a fraction of the span
    #: of the earlier rounds' frames, along this round's RC (None: round 0)
    chi_range_growth: float | None = None
    #: largest angle between the chosen RC and the other usable seeds' RCs (None: one model)
    seed_spread_deg: float | None = None
    #: RMS block-bootstrap uncertainty of F(chi) where F < profile_max_kT, kT (None: not run)
    free_energy_sigma_kT: float | None = None
    #: block-bootstrap uncertainty of the RC's direction, degrees (None: not run)
    rc_angle_sigma_deg: float | None = None
    #: the convergence criteria this round failed, in words (rave.learn.convergence; empty:
    #: converged; None: not recorded, an older rave)
    convergence_failures: list[str] | None = None

    def to_summary(self) -> dict:
        """The record as ``round.json`` (and ``summary.json``'s rounds) store it.

        Returns
        -------
        dict
            JSON-ready: plain floats, ints, lists, timings rounded to the millisecond.
        """
        return {
            "index": self.index,
            "coefficients": [float(c) for c in self.coefficients],
            "kl_divergence": float(self.kl_divergence),
            "frames": int(self.frames),
            "walkers": int(self.walkers),
            "faults": int(self.faults),
            "effective_sample_size": float(self.effective_sample_size),
            "angle_change_deg": self.angle_change_deg,
            "free_energy_change_kT": self.free_energy_change_kT,
            "converged": self.converged,
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
            "run": self.run,
            "config_changes": list(self.config_changes),
            "steps": None if self.steps is None else int(self.steps),
            "plan_reason": self.plan_reason,
            "chi_range_growth": (None if self.chi_range_growth is None
                                 else float(self.chi_range_growth)),
            "seed_spread_deg": (None if self.seed_spread_deg is None
                                else float(self.seed_spread_deg)),
            "free_energy_sigma_kT": (None if self.free_energy_sigma_kT is None
                                     else float(self.free_energy_sigma_kT)),
            "rc_angle_sigma_deg": (None if self.rc_angle_sigma_deg is None
                                   else float(self.rc_angle_sigma_deg)),
            "convergence_failures": (None if self.convergence_failures is None
                                     else [str(f) for f in self.convergence_failures]),
        }

    @classmethod
    def from_summary(cls, data: dict) -> RoundRecord:
        """The record from :meth:`to_summary` output (keys added later are optional).

        Parameters
        ----------
        data : dict
            A ``round.json`` (or an entry of ``summary.json``'s rounds).

        Returns
        -------
        RoundRecord
            The record; absent optional keys take the fields' defaults.
        """
        return cls(
            index=int(data["index"]),
            coefficients=np.asarray(data["coefficients"], dtype=float),
            kl_divergence=float(data["kl_divergence"]),
            frames=int(data["frames"]),
            effective_sample_size=float(data["effective_sample_size"]),
            angle_change_deg=data.get("angle_change_deg"),
            free_energy_change_kT=data.get("free_energy_change_kT"),
            converged=bool(data.get("converged", False)),
            walkers=int(data.get("walkers", 1)),
            faults=int(data.get("faults", 0)),
            timings_s=dict(data.get("timings_s", {})),
            run=None if data.get("run") is None else int(data["run"]),
            config_changes=[str(c) for c in data.get("config_changes", [])],
            steps=None if data.get("steps") is None else int(data["steps"]),
            plan_reason=None if data.get("plan_reason") is None else str(data["plan_reason"]),
            chi_range_growth=(None if data.get("chi_range_growth") is None
                              else float(data["chi_range_growth"])),
            seed_spread_deg=(None if data.get("seed_spread_deg") is None
                             else float(data["seed_spread_deg"])),
            free_energy_sigma_kT=(None if data.get("free_energy_sigma_kT") is None
                                  else float(data["free_energy_sigma_kT"])),
            rc_angle_sigma_deg=(None if data.get("rc_angle_sigma_deg") is None
                                else float(data["rc_angle_sigma_deg"])),
            convergence_failures=(None if data.get("convergence_failures") is None
                                  else [str(f) for f in data["convergence_failures"]]),
        )



@dataclass(frozen=True)
class RoundBias:
    """What ``bias_applied.json`` says about a round's frames, from one read of it.

    Attributes
    ----------
    states : list of tuple of (rave.bias_grid.Bias or None, int)
        The MBAR states of the round's frames in frame order
        (:func:`rave.learn.bias.applied_states`): one for a static or the unbiased round, the
        blocks of an adaptive one.
    applied : rave.bias_grid.Bias or None
        The static bias; of an adaptive round the one in force at its end; None when unbiased.
    adaptive : bool
        Whether the round ran OPES (its file lists blocks under ``states``).
    """

    states: list
    applied: object
    adaptive: bool


class CampaignStore:
    """A campaign's work directory: the one owner of its layout, writer and reader of its files.

    Every file name of the layout (module docstring) is spelled here; the campaign, the
    analysis, the export and ``rave status`` reach the files through a store. Writes go through
    the atomic writers of this module (a file with its final name is complete); the files that
    complete a walker or a round, and the manifest, are written durably (fsynced with their
    directory). A store never writes outside its work directory. Readers raise
    :class:`StoreFileError` naming the file and what is wrong with it.

    Parameters
    ----------
    workdir : path
        The work directory (it need not exist yet).

    Examples
    --------
    >>> store = CampaignStore("runs/rdw")                      # doctest: +SKIP
    >>> [store.frames(r) for r in store.complete_rounds()]     # doctest: +SKIP
    """

    #: the files of the work directory
    MANIFEST = MANIFEST
    CONFIG = "config.json"
    FEATURES = "features.json"
    SUMMARY = "summary.json"
    PREPARED = "prepared.npz"
    INPUTS = "inputs"
    FREE_ENERGY = "free_energy.csv"
    FREE_ENERGY_FIGURE = "free_energy.png"
    LOG = "campaign.log"
    LOCK = LOCK
    #: the files of a round folder
    FRAMES = "frames.npz"
    BIAS_APPLIED = "bias_applied.json"
    BIAS = "bias.json"
    COORDINATE = "coordinate.json"
    WEIGHTS = "weights.npz"
    ROUND = "round.json"
    FIGURE = "figure.png"
    WALKERS = "walkers"
    MODELS = "models"
    #: the arrays every frames.npz holds (``walker`` too since walkers were stored)
    FRAMES_ARRAYS = ("features", "bias_kjmol", "time_ps")

    def __init__(self, workdir: str | os.PathLike) -> None:
        # absolute, so that a path the store made (workdir/round_000/...) and a name relative
        # to the work directory can never be confused when the user gave a relative workdir
        self.workdir = Path(os.path.abspath(workdir))

    def __repr__(self) -> str:
        return f"CampaignStore({str(self.workdir)!r})"

    # ------------------------------------------------------------------ paths
    def path(self, name: str | os.PathLike) -> Path:
        """The path of ``name`` (relative to the work directory, or a path inside it).

        Parameters
        ----------
        name : str or path
            A name relative to the work directory, or a path inside it.

        Returns
        -------
        Path
            The path, inside the work directory.

        Raises
        ------
        ValueError
            ``name`` lies outside the work directory.
        """
        path = Path(name)
        if not path.is_absolute():
            path = self.workdir / path
        inside = Path(os.path.abspath(self.workdir))
        if not Path(os.path.abspath(path)).is_relative_to(inside):
            raise ValueError(f"{path} lies outside the work directory {self.workdir}; a "
                             f"campaign store writes only inside it")
        return path

    def round_dir(self, index: int) -> Path:
        """The folder of round ``index`` (``round_NNN``).

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        Path
            The folder (it need not exist).
        """
        return round_dir(self.workdir, index)

    def round_path(self, index: int, name: str) -> Path:
        """The path of ``name`` (e.g. :attr:`FRAMES`, a model file) in round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.
        name : str
            The name within the round folder.

        Returns
        -------
        Path
            The path (it need not exist).
        """
        return self.path(self.round_dir(index) / name)

    def walker_path(self, index: int, walker: int) -> Path:
        """``round_NNN/walkers/walker_KK.npz``: one walker's frames and final state.

        Parameters
        ----------
        index : int
            The round, from 0.
        walker : int
            The walker, from 0.

        Returns
        -------
        Path
            The path (it need not exist).
        """
        return self.round_path(index, f"{self.WALKERS}/walker_{walker:02d}.npz")

    def walker_trajectory_path(self, index: int, walker: int) -> Path:
        """``round_NNN/walkers/walker_KK.dcd``: one walker's trajectory (``[output]
        dcd_interval``); its frames are those the walker file's ``trajectory_frames`` name.

        Parameters
        ----------
        index : int
            The round, from 0.
        walker : int
            The walker, from 0.

        Returns
        -------
        Path
            The path (it need not exist).
        """
        return self.round_path(index, f"{self.WALKERS}/walker_{walker:02d}.dcd")

    @classmethod
    def model_name(cls, seed: int) -> str:
        """The name, within its round folder, of the VAE trained with ``seed``.

        Parameters
        ----------
        seed : int
            The training seed.

        Returns
        -------
        str
            ``models/vae_seed<seed>.pt``, as ``coordinate.json`` lists it.
        """
        return f"{cls.MODELS}/vae_seed{seed}.pt"

    def input_name(self, source: str | os.PathLike) -> str:
        """The name, relative to the work directory, of the copy of an input file.

        Parameters
        ----------
        source : str or path
            The input file (a PDB, a System XML); only its file name is used.

        Returns
        -------
        str
            ``inputs/<file name>``.
        """
        return f"{self.INPUTS}/{Path(source).name}"

    def redo_advice(self, index: int) -> str:
        """What recomputes round ``index`` after a file of it was damaged.

        Parameters
        ----------
        index : int
            The damaged round.

        Returns
        -------
        str
            The advice, in words (the ``rave run --redo-round`` to run).
        """
        return (f"`rave run` with the campaign's config, --workdir {self.workdir} and "
                f"--redo-round {index} recomputes round {index} from its stored MD and redoes "
                f"the later rounds")

    # ------------------------------------------------------------------ state
    def holds_campaign(self) -> bool:
        """Whether the work directory holds a resumable campaign (its manifest).

        Returns
        -------
        bool
            True when ``manifest.json`` is a file.
        """
        return holds_resumable_campaign(self.workdir)

    def has(self, name: str) -> bool:
        """Whether the file ``name`` (relative to the work directory) exists.

        Parameters
        ----------
        name : str
            The name, relative to the work directory.

        Returns
        -------
        bool
            True when it is a file.
        """
        return self.path(name).is_file()

    def round_started(self, index: int) -> bool:
        """Whether round ``index``'s folder exists.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        bool
            True when ``round_NNN`` is a directory.
        """
        return self.round_dir(index).is_dir()

    def round_complete(self, index: int) -> bool:
        """Whether round ``index`` is complete (its ``round.json`` exists).

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        bool
            True when ``round_NNN/round.json`` is a file.
        """
        return self.round_path(index, self.ROUND).is_file()

    def round_has(self, index: int, name: str) -> bool:
        """Whether the file ``name`` of round ``index`` exists.

        Parameters
        ----------
        index : int
            The round, from 0.
        name : str
            The name within the round folder.

        Returns
        -------
        bool
            True when it is a file.
        """
        return self.round_path(index, name).is_file()

    def complete_rounds(self) -> list[int]:
        """The indices of the complete rounds, up to the first without ``round.json``.

        Returns
        -------
        list of int
            0, 1, ... up to the first round without ``round.json`` (a later folder is an
            unfinished or discarded round).
        """
        index = 0
        while self.round_complete(index):
            index += 1
        return list(range(index))

    def round_folders(self) -> list[int]:
        """The indices of every round folder, complete or not, in order.

        Returns
        -------
        list of int
            The indices of the ``round_NNN`` folders, ascending.
        """
        return sorted(int(p.name[len("round_"):]) for p in self.workdir.glob("round_*")
                      if p.is_dir() and _ROUND_FOLDER.fullmatch(p.name))

    def learned_rounds(self) -> list[int]:
        """The indices of the rounds whose RC and next bias are stored, in order.

        Returns
        -------
        list of int
            The rounds whose folder holds ``coordinate.json`` and ``bias.json``, ascending.
        """
        return [r for r in self.round_folders()
                if self.round_has(r, self.BIAS) and self.round_has(r, self.COORDINATE)]

    def stored_walkers(self, index: int) -> list[int]:
        """The walkers of round ``index`` whose file exists.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        list of int
            The walker indices of its ``walkers/walker_KK.npz`` files, ascending (empty when the
            folder is missing).
        """
        folder = self.round_path(index, self.WALKERS)
        if not folder.is_dir():
            return []
        return sorted(int(m[1]) for p in folder.iterdir()
                      if (m := re.fullmatch(r"walker_(\d+)\.npz", p.name)))

    # ------------------------------------------------------------------ writers
    def write_file(self, name: str | os.PathLike, write: Callable[[Path], None],
                   durable: bool = False) -> Path:
        """Write ``name`` inside the work directory with ``write(temporary_path)``, atomically.

        Parameters
        ----------
        name : str or path
            The file, relative to the work directory or a path inside it.
        write : callable
            ``write(temporary_path)`` writes the content (:func:`write_file`).
        durable : bool, optional
            Fsync the file and then its directory.

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ValueError
            ``name`` lies outside the work directory.
        """
        path = self.path(name)
        write_file(path, write, durable)
        return path

    def write_text(self, name: str | os.PathLike, text: str, durable: bool = False) -> Path:
        """Write text to ``name`` inside the work directory, atomically.

        Parameters
        ----------
        name : str or path
            The file, relative to the work directory or a path inside it.
        text : str
            Its content.
        durable : bool, optional
            Fsync the file and then its directory.

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ValueError
            ``name`` lies outside the work directory.
        """
        path = self.path(name)
        write_text(path, text, durable)
        return path

    def write_json(self, name: str | os.PathLike, data, durable: bool = False) -> Path:
        """Write ``data`` as indented JSON to ``name`` inside the work directory, atomically.

        Parameters
        ----------
        name : str or path
            The file, relative to the work directory or a path inside it.
        data : object
            What ``json.dumps`` can encode.
        durable : bool, optional
            Fsync the file and then its directory.

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ValueError
            ``name`` lies outside the work directory.
        """
        path = self.path(name)
        write_json(path, data, durable)
        return path

    def write_npz(self, name: str | os.PathLike, durable: bool = False,
                  **arrays: np.ndarray) -> Path:
        """Write ``arrays`` (``np.savez``) to ``name`` inside the work directory, atomically.

        Parameters
        ----------
        name : str or path
            The file, relative to the work directory or a path inside it.
        durable : bool, optional
            Fsync the file and then its directory.
        **arrays : np.ndarray
            The arrays, by the names they are stored under.

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ValueError
            ``name`` lies outside the work directory.
        """
        path = self.path(name)
        write_npz(path, durable, **arrays)
        return path

    @staticmethod
    def json_bytes(data) -> bytes:
        """The bytes :meth:`write_json` writes for ``data``.

        Parameters
        ----------
        data : object
            What ``json.dumps`` can encode.

        Returns
        -------
        bytes
            Indented JSON with a final newline, UTF-8.
        """
        return (json.dumps(data, indent=2) + "\n").encode()

    def start_files(self, config: dict, features: list[dict],
                    inputs: list[str | os.PathLike]) -> dict[str, bytes]:
        """What :meth:`initialise` writes before the manifest.

        That is what an interrupted start leaves, which a new start may find
        (:func:`check_new_workdir`).

        Parameters
        ----------
        config : dict
            The validated configuration (``config.json``).
        features : list of dict
            Each order parameter's ``to_dict()`` (``features.json``).
        inputs : list of str or path
            The input files copied into ``inputs/``.

        Returns
        -------
        dict of str to bytes
            Name relative to the work directory -> content.
        """
        own = {self.CONFIG: self.json_bytes(config), self.FEATURES: self.json_bytes(features)}
        for source in inputs:
            own[self.input_name(source)] = Path(source).read_bytes()
        return own

    def check_new(self, own: dict[str, bytes] | None = None) -> None:
        """:func:`check_new_workdir` of this work directory.

        Parameters
        ----------
        own : dict of str to bytes, optional
            What this campaign writes before its manifest (:meth:`start_files`).

        Raises
        ------
        WorkdirError
            The work directory is a file, or holds something else.
        """
        check_new_workdir(self.workdir, own)

    def initialise(self, config: dict, features: list[dict], inputs: list[str | os.PathLike],
                   manifest: dict) -> None:
        """Start a new campaign: config.json, features.json, the input files, then the manifest.

        The input files are copied into ``inputs/``; the manifest is written last, durably, with
        ``format`` and ``version`` first.

        Parameters
        ----------
        config : dict
            The validated configuration.
        features : list of dict
            Each order parameter's ``to_dict()``.
        inputs : list of str or path
            The input files of a bring-your-own system (PDB, System XML).
        manifest : dict
            The manifest's other entries (rave version, input-file hashes, runs).
        """
        self.write_config(config)
        self.write_features(features)
        for source in inputs:
            copy_file(Path(source), self.path(self.input_name(source)))
        self.write_manifest({"format": FORMAT, "version": FORMAT_VERSION, **manifest})

    def write_manifest(self, manifest: dict) -> None:
        """``manifest.json``, durably.

        Parameters
        ----------
        manifest : dict
            Its content (``format``, ``version``, rave version, input-file hashes, runs).
        """
        self.write_json(self.MANIFEST, manifest, durable=True)

    def write_config(self, config: dict) -> None:
        """``config.json``: the validated configuration.

        Parameters
        ----------
        config : dict
            The configuration, a JSON object of sections.
        """
        self.write_json(self.CONFIG, config)

    def write_features(self, features: list[dict]) -> None:
        """``features.json``: each order parameter's ``to_dict()``.

        Parameters
        ----------
        features : list of dict
            The order parameters' ``to_dict()``, in feature order.
        """
        self.write_json(self.FEATURES, features)

    def write_summary(self, summary: dict) -> None:
        """``summary.json``.

        Parameters
        ----------
        summary : dict
            The campaign's summary (rounds, RC, KL, frames, steps, budget, why it stopped).
        """
        self.write_json(self.SUMMARY, summary)

    def write_prepared(self, state: dict) -> None:
        """``prepared.npz``: the prepared start (arrays; None entries are left out).

        Parameters
        ----------
        state : dict
            Name -> array-like (``positions`` in nm, and what else was prepared) or None.
        """
        self.write_npz(self.PREPARED, **{k: np.asarray(v) for k, v in state.items()
                                         if v is not None})

    def write_walker(self, index: int, walker: int, arrays: dict) -> None:
        """``round_NNN/walkers/walker_KK.npz``, durably: it completes the walker.

        With a ``trajectory`` array (positions in nm, ``[output] dcd_interval``), the
        trajectory is written first, durably and atomically, as ``walker_KK.dcd``
        (:meth:`walker_trajectory_path`), and left out of the ``.npz``: a walker whose file is
        stored always has its whole DCD, and a walker run again (no ``.npz``) replaces it.

        Parameters
        ----------
        index : int
            The round, from 0.
        walker : int
            The walker, from 0.
        arrays : dict
            Name -> array (:meth:`rave.campaign.walkers.WalkerResult.to_arrays`).
        """
        arrays = dict(arrays)
        trajectory = arrays.pop("trajectory", None)
        if trajectory is not None:
            write_dcd(self.walker_trajectory_path(index, walker), trajectory,
                      arrays.get("trajectory_box"))
        self.write_npz(self.walker_path(index, walker), durable=True, **arrays)

    def write_frames(self, index: int, frames) -> None:
        """``round_NNN/frames.npz`` from a :class:`rave.md.frames.Frames`, durably.

        Parameters
        ----------
        index : int
            The round, from 0.
        frames : rave.md.frames.Frames
            All walkers' frames; their ``walker`` labels are stored too (all 0 when None).
        """
        walker = (np.zeros(len(frames), dtype=np.int64) if frames.walker is None
                  else frames.walker)
        optional = {name: value for name in ("potential_kjmol", "state")
                    if (value := getattr(frames, name)) is not None}
        self.write_npz(self.round_path(index, self.FRAMES), durable=True,
                       features=frames.features, bias_kjmol=frames.bias_kjmol,
                       time_ps=frames.time_ps, walker=walker, **optional)

    def write_bias_applied(self, index: int, data: dict) -> None:
        """``round_NNN/bias_applied.json``: the bias round ``index`` was sampled under.

        Parameters
        ----------
        index : int
            The round, from 0.
        data : dict
            The static bias's ``to_dict()``, or the adaptive (OPES) blocks.
        """
        self.write_json(self.round_path(index, self.BIAS_APPLIED), data)

    def write_weights(self, index: int, log_weights: np.ndarray, free_energies: np.ndarray,
                      frames_per_round: np.ndarray) -> None:
        """``round_NNN/weights.npz``: MBAR over rounds 0..index.

        Parameters
        ----------
        index : int
            The round, from 0.
        log_weights : np.ndarray, shape=(n_frames,)
            The MBAR log-weight of every frame of rounds 0..index.
        free_energies : np.ndarray
            MBAR's f_k, per state, kT.
        frames_per_round : np.ndarray
            The number of frames of each round 0..index.
        """
        self.write_npz(self.round_path(index, self.WEIGHTS), log_weights=log_weights,
                       free_energies=free_energies, frames_per_round=frames_per_round)

    def write_coordinate(self, index: int, data: dict) -> None:
        """``round_NNN/coordinate.json``: the RC learned after round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.
        data : dict
            RC coefficients, per-model KL, model files, spurious models.
        """
        self.write_json(self.round_path(index, self.COORDINATE), data)

    def write_bias(self, index: int, bias) -> None:
        """``round_NNN/bias.json``: the bias built after round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.
        bias : rave.bias_grid.Bias
            The bias (stored as its ``to_dict()``).
        """
        self.write_json(self.round_path(index, self.BIAS), bias.to_dict())

    def write_round(self, index: int, record: RoundRecord) -> None:
        """``round_NNN/round.json``, durably: written last, it completes the round.

        Parameters
        ----------
        index : int
            The round, from 0.
        record : RoundRecord
            The round's record (stored as :meth:`RoundRecord.to_summary`).
        """
        self.write_json(self.round_path(index, self.ROUND), record.to_summary(), durable=True)

    def save_model(self, index: int, name: str, model) -> None:
        """A VAE as ``name`` in round ``index``'s folder.

        Parameters
        ----------
        index : int
            The round, from 0.
        name : str
            The name within the round folder (:meth:`model_name`).
        model : rave.learn.vae.VAEModel
            The model; its ``save`` writes the file.
        """
        model.save(self.round_path(index, name))

    def write_profile(self, centers: np.ndarray, profile: np.ndarray,
                      index: int | None = None) -> None:
        """``free_energy.csv`` (``chi,free_energy_kT``, the finite bins) of a round or the campaign.

        Parameters
        ----------
        centers : np.ndarray
            The bin centres along the RC, chi.
        profile : np.ndarray
            The free energy of each bin, kT (non-finite bins are left out).
        index : int or None, optional
            The round whose folder gets the file; None: the work directory's (the campaign's).
        """
        rows = [f"{x:.6f},{f:.6f}" for x, f in zip(centers, profile, strict=True)
                if np.isfinite(f)]
        path = self.FREE_ENERGY if index is None else self.round_path(index, self.FREE_ENERGY)
        self.write_text(path, "chi,free_energy_kT\n" + "\n".join(rows) + "\n")

    def write_final_profile(self, index: int) -> None:
        """The campaign's ``free_energy.csv``: a copy of that of round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.
        """
        self.write_text(self.FREE_ENERGY,
                        self.round_path(index, self.FREE_ENERGY).read_text())

    def discard_rounds_from(self, index: int) -> list[Path]:
        """``rave run --redo-round``: remove round ``index``, every later round and the totals.

        The walker files of round ``index`` that read back stay (their MD is reused); see
        :func:`discard_rounds_from`.

        Parameters
        ----------
        index : int
            The first round discarded.

        Returns
        -------
        list of Path
            The files removed.

        Raises
        ------
        WorkdirError
            Round ``index`` does not exist; nothing was changed.
        """
        if not self.round_started(index):
            done = [f"round_{r:03d}" for r in self.round_folders()]
            raise WorkdirError(
                f"--redo-round {index}: {self.round_dir(index)} does not exist (the campaign "
                f"has {', '.join(done) or 'no rounds'}); nothing was changed")

        def readable(path: Path) -> bool:
            try:
                load_npz(path)
            except StoreFileError:
                return False
            return True

        return discard_rounds_from(self.workdir, index, keep=readable)

    # ------------------------------------------------------------------ readers
    @staticmethod
    def _parsed(path: Path, build: Callable):
        """``build(JSON of path)``; a malformed file becomes a StoreFileError naming it."""
        data = load_json(path)
        try:
            return build(data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise StoreFileError(f"{path} is not a valid rave {path.name} (missing or malformed "
                                 f"{error})") from error

    def manifest(self) -> dict:
        """``manifest.json``, checked to be a rave campaign manifest this rave can resume.

        Returns
        -------
        dict
            The manifest.

        Raises
        ------
        StoreFileError
            It is missing or damaged.
        WorkdirError
            It is not a rave manifest, or a newer rave wrote the store.
        """
        path = self.path(self.MANIFEST)
        try:
            manifest = load_json(path)
        except StoreFileError as error:
            raise StoreFileError(
                f"{error}. Nothing was changed; restore it from a backup (it records the "
                f"campaign's input-file hashes and runs, which cannot be recomputed)") from error
        if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
                or not isinstance(manifest.get("version"), int)
                or not isinstance(manifest.get("runs", []), list)):
            raise WorkdirError(f"{path} is not a rave campaign manifest; nothing was changed. "
                               f"Restore it from a backup, or choose another --workdir")
        if manifest["version"] > FORMAT_VERSION:
            raise WorkdirError(
                f"{self.workdir} was written by a newer rave (store format "
                f"{manifest['version']} > {FORMAT_VERSION}); upgrade rave to resume it")
        return manifest

    def config(self) -> dict:
        """``config.json`` as stored (a JSON object of sections).

        Returns
        -------
        dict
            The configuration.

        Raises
        ------
        StoreFileError
            It is missing or damaged.
        """
        return load_json(self.path(self.CONFIG))

    def resume_config(self, manifest: dict) -> dict:
        """``config.json`` for a resume; restored from the manifest's copy when missing.

        Parameters
        ----------
        manifest : dict
            The campaign's manifest (:meth:`manifest`); its ``config`` entry, when present,
            restores a missing ``config.json``.

        Returns
        -------
        dict
            The stored configuration.

        Raises
        ------
        StoreFileError
            It is damaged or not a config; the message says how to recover.
        """
        path = self.path(self.CONFIG)
        if not path.exists() and isinstance(manifest.get("config"), dict):
            self.write_config(manifest["config"])
            logging.getLogger("rave").info("%s was missing: restored from %s", path,
                                           self.MANIFEST)
        try:
            stored = load_json(path)
        except StoreFileError as error:
            fix = ("remove it and rerun: `rave run` restores it from manifest.json"
                   if isinstance(manifest.get("config"), dict) else "restore it from a backup")
            raise StoreFileError(f"{error}. Nothing was changed; {fix}") from error
        if not isinstance(stored, dict):
            raise StoreFileError(f"{path} is not a rave config (a JSON object of sections). "
                                 f"Nothing was changed; restore it from a backup")
        return stored

    def summary(self) -> dict:
        """``summary.json``.

        Returns
        -------
        dict
            The campaign's summary.

        Raises
        ------
        StoreFileError
            It is missing or damaged.
        """
        return load_json(self.path(self.SUMMARY))

    def feature_dicts(self) -> list:
        """``features.json`` as stored (each order parameter's ``to_dict()``).

        Returns
        -------
        list of dict
            The order parameters' dictionaries, in feature order.

        Raises
        ------
        StoreFileError
            It is missing or damaged.
        """
        return load_json(self.path(self.FEATURES))

    def features(self) -> list:
        """The order parameters of ``features.json``.

        Returns
        -------
        list of rave.md.features.Feature
            Each built by :func:`rave.md.features.feature_from_dict`, in feature order.

        Raises
        ------
        StoreFileError
            ``features.json`` is missing or damaged.
        """
        from ..md.features import feature_from_dict

        return [feature_from_dict(d) for d in self.feature_dicts()]

    def prepared(self) -> dict[str, np.ndarray] | None:
        """``prepared.npz`` (``positions`` and what else was prepared), or None when absent.

        Returns
        -------
        dict of str to np.ndarray or None
            The arrays by name (``positions`` in nm), or None.

        Raises
        ------
        StoreFileError
            It is damaged or lacks ``positions``.
        """
        path = self.path(self.PREPARED)
        return load_npz(path, ("positions",)) if path.exists() else None

    def round_record(self, index: int) -> RoundRecord:
        """``round.json`` of round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        RoundRecord
            The round's record.

        Raises
        ------
        StoreFileError
            It is missing or malformed.
        """
        return self._parsed(self.round_path(index, self.ROUND), RoundRecord.from_summary)

    def frames(self, index: int):
        """The frames of round ``index`` (``frames.npz``).

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        rave.md.frames.Frames
            Features, applied bias (kJ/mol), time (ps); its ``walker`` labels each frame's walker
            (None: a store without them, one walker).

        Raises
        ------
        StoreFileError
            The file is missing or damaged, lacks an array, or its ``walker`` has the wrong shape.
        """
        from ..md.frames import Frames

        path = self.round_path(index, self.FRAMES)
        data = load_npz(path, self.FRAMES_ARRAYS)
        walker = data.get("walker")
        if walker is not None:
            if walker.shape != (len(data["features"]),):
                raise StoreFileError(f"{path}: walker has shape {walker.shape}, expected "
                                     f"({len(data['features'])},)")
            walker = walker.astype(np.int64)
        optional = {}
        for name in ("potential_kjmol", "state"):
            value = data.get(name)
            if value is not None:
                if value.shape != (len(data["features"]),):
                    raise StoreFileError(f"{path}: {name} has shape {value.shape}, expected "
                                         f"({len(data['features'])},)")
                optional[name] = value.astype(np.int64) if name == "state" else value
        return Frames(data["features"], data["bias_kjmol"], data["time_ps"], walker=walker,
                      **optional)

    def applied_bias(self, index: int, required: bool = False) -> dict | None:
        """``bias_applied.json`` of round ``index`` as stored.

        Parameters
        ----------
        index : int
            The round, from 0.
        required : bool, optional
            Raise when the file is absent instead of returning None.

        Returns
        -------
        dict or None
            Its content; None when absent (the unbiased round) unless ``required``.

        Raises
        ------
        StoreFileError
            It is damaged, or absent while ``required``.
        """
        path = self.round_path(index, self.BIAS_APPLIED)
        if not required and not path.exists():
            return None
        return self._parsed(path, dict)

    def bias_states(self, index: int, n_frames: int,
                    required: bool = False) -> list[tuple[object, int]]:
        """The MBAR states of round ``index``'s ``n_frames`` frames.

        Parameters
        ----------
        index : int
            The round, from 0.
        n_frames : int
            The round's number of frames.
        required : bool, optional
            Raise when ``bias_applied.json`` is absent instead of taking the round as unbiased.

        Returns
        -------
        list of tuple of (object, int)
            :func:`rave.learn.bias.applied_states` of its ``bias_applied.json``: each state's bias
            and its number of frames, in frame order.

        Raises
        ------
        StoreFileError
            The file is damaged, or absent while ``required``.
        """
        return self.round_bias(index, n_frames, required).states

    def round_bias(self, index: int, n_frames: int, required: bool = False) -> RoundBias:
        """Round ``index``'s MBAR states, applied bias and kind, from one read of its
        ``bias_applied.json``.

        Parameters
        ----------
        index : int
            The round, from 0.
        n_frames : int
            The round's number of frames.
        required : bool, optional
            Raise when ``bias_applied.json`` is absent instead of taking the round as unbiased.

        Returns
        -------
        RoundBias
            Its states, its applied bias and whether it was adaptive.

        Raises
        ------
        StoreFileError
            The file is damaged, or absent while ``required``.
        """
        from ..learn.bias import Bias, applied_states

        path = self.round_path(index, self.BIAS_APPLIED)
        if not required and not path.exists():
            return RoundBias(applied_states(None, n_frames), None, False)
        def parse(data: dict) -> RoundBias:
            if data.get("method") == "explore":
                return RoundBias(applied_states(data, n_frames), None, False)
            return RoundBias(applied_states(data, n_frames), Bias.from_dict(data),
                             "states" in data)

        return self._parsed(path, parse)

    def bias_applied(self, index: int):
        """The bias round ``index`` was sampled under, or None (the unbiased round).

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        rave.bias_grid.Bias or None
            The static bias; of an adaptive round, the one in force at its end; None for an
            unbiased or exploring round.

        Raises
        ------
        StoreFileError
            Its ``bias_applied.json`` is damaged.
        """
        from ..bias_grid import Bias

        path = self.round_path(index, self.BIAS_APPLIED)
        if not path.exists():
            return None
        return self._parsed(path, lambda data: None if data.get("method") == "explore"
                            else Bias.from_dict(data))

    def is_adaptive(self, index: int) -> bool:
        """Whether round ``index`` ran OPES (its ``bias_applied.json`` lists blocks).

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        bool
            True when its ``bias_applied.json`` holds ``states``.
        """
        data = self.applied_bias(index)
        return data is not None and "states" in data and data.get("method") != "explore"

    def bias(self, index: int):
        """``bias.json`` of round ``index``: the bias built after it.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        rave.bias_grid.Bias
            The bias applied in the next round.

        Raises
        ------
        StoreFileError
            It is missing or malformed.
        """
        from ..bias_grid import Bias

        return self._parsed(self.round_path(index, self.BIAS), Bias.from_dict)

    def coordinate(self, index: int) -> dict:
        """``coordinate.json`` of round ``index``: RC coefficients, KL, model files.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        dict
            Its content.

        Raises
        ------
        StoreFileError
            It is missing or malformed.
        """
        def build(data: dict) -> dict:
            c = np.asarray(data["coefficients"], dtype=float)
            if c.ndim != 1 or not c.size or not np.isfinite(c).all():
                raise ValueError("coefficients: not a finite vector")
            return dict(data)

        return self._parsed(self.round_path(index, self.COORDINATE), build)

    def model_files(self, index: int) -> list[str]:
        """The model files ``coordinate.json`` of round ``index`` lists.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        list of str
            Names within the round folder (:meth:`model_name`).

        Raises
        ------
        StoreFileError
            ``coordinate.json`` is missing or malformed.
        """
        return self._parsed(self.round_path(index, self.COORDINATE),
                            lambda data: [str(f) for f in data["model_files"]])

    def model(self, index: int, name: str):
        """The VAE ``name`` of round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.
        name : str
            The model file within the round folder (:meth:`model_name`).

        Returns
        -------
        rave.learn.vae.VAEModel
            The loaded model.

        Raises
        ------
        StoreFileError
            The file is missing, truncated or corrupted.
        """
        from ..learn.vae import VAEModel

        path = self.round_path(index, name)
        if not path.is_file():
            raise StoreFileError(f"{path} is missing")
        try:
            return VAEModel.load(path)
        except Exception as error:  # torch / zip errors of a damaged file
            raise StoreFileError(f"{path} cannot be read (truncated or corrupted?): "
                                 f"{error}") from error

    def weights(self, index: int) -> dict[str, np.ndarray]:
        """``weights.npz`` of round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        dict of str to np.ndarray
            ``log_weights`` of every frame of rounds 0..index, ``free_energies`` and
            ``frames_per_round``.

        Raises
        ------
        StoreFileError
            It is missing, damaged or lacks ``log_weights``.
        """
        return load_npz(self.round_path(index, self.WEIGHTS), ("log_weights",))

    def walker(self, index: int, walker: int,
               required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """The arrays of ``round_NNN/walkers/walker_KK.npz``.

        :meth:`rave.campaign.walkers.WalkerResult.from_arrays` reads them.

        Parameters
        ----------
        index : int
            The round, from 0.
        walker : int
            The walker, from 0.
        required : tuple of str, optional
            The arrays the file must hold.

        Returns
        -------
        dict of str to np.ndarray
            The arrays by name.

        Raises
        ------
        StoreFileError
            The file is missing or damaged, or lacks one of ``required``.
        """
        return load_npz(self.walker_path(index, walker), required)
