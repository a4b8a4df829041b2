"""Atomic file writing: every file rave writes goes to a temporary name in its folder
(``.NAME.XXXXXXXX.tmp``) and is renamed into place, so a file with its final name is complete.
File modes follow the umask; a durable write fsyncs the file and then its folder.

The one writer of files: the campaign store (:mod:`rave.campaign.store`) and the models of
:mod:`rave.learn.vae` write through it.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["TEMPORARY", "copy_file", "current_umask", "fsync_directory", "write_file",
           "write_json", "write_npz", "write_text"]

#: the name of a temporary of :func:`write_file` (``tempfile.mkstemp``: 8 characters of
#: [a-z0-9_]); group ``name`` is the final file's name
TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")


def current_umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: the process's umask, read once (os.umask can only be read by setting it)
_UMASK = current_umask()


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


#: a disk with less free space than this counts as full when a write fails without an errno
_FULL_DISK_BYTES = 64 * 2**20


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
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        if error.filename is None:  # numpy's and zipfile's writes name no file
            raise OSError(error.errno, error.strerror or str(error), str(path)) from error
        raise
    except RuntimeError as error:  # torch's writer turns a failed write into RuntimeError
        Path(tmp).unlink(missing_ok=True)
        full = shutil.disk_usage(path.parent).free < _FULL_DISK_BYTES
        raise OSError(errno.ENOSPC if full else errno.EIO,
                      f"{os.strerror(errno.ENOSPC if full else errno.EIO)} ({error})",
                      str(path)) from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        fsync_directory(path.parent)


def write_file(path: Path, write: Callable[[Path], None], durable: bool = False) -> None:
    """Write ``path`` with ``write(temporary_path)``, atomically (see :func:`_atomic`).

    The one writer for files whose bytes another module produces (a torch model, TorchScript).
    """
    _atomic(Path(path), write, durable)


def write_text(path: Path, text: str, durable: bool = False) -> None:
    """Write ``text`` to ``path``, atomically."""
    _atomic(path, lambda tmp: tmp.write_text(text), durable)


def write_json(path: Path, data, durable: bool = False) -> None:
    """Write ``data`` as indented JSON (and a final newline) to ``path``, atomically."""
    write_text(path, json.dumps(data, indent=2) + "\n", durable)


def write_npz(path: Path, durable: bool = False, **arrays: np.ndarray) -> None:
    """Write ``arrays`` (``np.savez``, uncompressed) to ``path``, atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    _atomic(path, write, durable)


def copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically (an input file into ``inputs/``)."""
    _atomic(target, lambda tmp: shutil.copyfile(source, tmp))

