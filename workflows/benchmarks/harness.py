"""The benchmarks' harness: output folder, CSV, the result record, statistics over seeds, compare.

Every benchmark of this package is a module run from the repository root::

    python -m workflows.benchmarks.<name> [options]

(``python workflows/benchmarks/<name>.py`` does not work: the modules import each other as a
package.) Each one writes a fresh folder ``runs/benchmarks/<name>_<time>/`` (``--out`` sets its
parent) holding its CSV files and ``<name>.json``, the result record this module writes:

``benchmark``, ``title``
    The module's name and what it measures.
``command``
    The exact command line, as ``python -m workflows.benchmarks.<name> ...``.
``date``
    When it finished (ISO 8601 with the UTC offset).
``machine``
    CPU model, cores, memory (GiB), operating system (:func:`machine_info`).
``versions``
    Python, rave and its git revision, numpy, scipy, torch, openmm, openmm-opes, pymbar,
    matplotlib, distributed (:func:`package_versions`); ``"unknown"`` where a result was
    recorded from older output files that did not keep them.
``seeds``, ``settings``, ``wall_s``
    The seeds, every setting of the run, its wall time in seconds.
``key``, ``summary``
    The summary rows (medians and spreads over seeds, :func:`spread`) and the fields that
    identify a row; :func:`compare` matches rows of two records by them.
``files``
    The CSV files beside the record (role -> file name).
``notes``
    Anything a reader of the numbers must know (a stopped run, a busy machine).

Comparing two revisions: run the same benchmark command at each (``git worktree add`` of the
other revision, the same command there), then::

    python -m workflows.benchmarks.harness compare OLD.json NEW.json

prints every numeric summary field of the rows both records share, old, new and new / old.

Results committed for the benchmarks page (``docs/benchmarks/results/``) are such records;
``python -m workflows.benchmarks.page`` writes ``docs/benchmarks.md`` from them.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

#: the repository root (this file is workflows/benchmarks/harness.py)
ROOT = Path(__file__).resolve().parents[2]
#: parent of every benchmark's fresh output folder
DEFAULT_OUT = ROOT / "runs" / "benchmarks"
#: the result record's format name and version
FORMAT = "rave-benchmark"
FORMAT_VERSION = 1
#: the distributions whose versions a record keeps (besides Python and rave's git revision)
PACKAGES = ("rave", "numpy", "scipy", "torch", "openmm", "openmm-opes", "pymbar", "matplotlib",
            "distributed")
UNKNOWN = "unknown"


# ============================================================================================
# the machine and the versions
# ============================================================================================
def machine_info() -> dict:
    """The machine a benchmark runs on.

    Returns
    -------
    dict
        ``cpu`` (the model name of ``/proc/cpuinfo``, else :func:`platform.processor`),
        ``cores`` (:func:`os.cpu_count`), ``memory_gib`` (physical memory, GiB, one decimal),
        ``os`` (:func:`platform.platform`).
    """
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = math.nan
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    return {"cpu": cpu or platform.processor() or UNKNOWN, "cores": os.cpu_count(),
            "memory_gib": round(memory, 1) if math.isfinite(memory) else UNKNOWN,
            "os": platform.platform()}


def git_revision(root: Path = ROOT) -> str:
    """The git revision of ``root``'s checkout, ``+dirty`` if tracked files differ from it.

    Parameters
    ----------
    root : Path
        A folder inside the checkout.

    Returns
    -------
    str
        The commit's 40 hex digits (with ``+dirty``), or ``"unknown"`` outside a git checkout.
    """
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return UNKNOWN
    return head + ("+dirty" if dirty else "")


def package_versions() -> dict:
    """Python's version, rave's git revision and the installed versions of :data:`PACKAGES`.

    Returns
    -------
    dict
        ``python``, ``rave_git`` and one entry per package (``"not installed"`` where absent).
    """
    versions = {"python": platform.python_version(), "rave_git": git_revision()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def command_line(benchmark: str, argv: Sequence[str] | None = None) -> str:
    """The command that runs ``benchmark`` with ``argv``, as a user types it.

    Parameters
    ----------
    benchmark : str
        The module's name in this package (``sampling_efficiency``).
    argv : sequence of str, optional
        Its arguments (default ``sys.argv[1:]``).

    Returns
    -------
    str
        ``python -m workflows.benchmarks.<benchmark> <argv, shell-quoted>``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    return " ".join([f"python -m workflows.benchmarks.{benchmark}", shlex.join(args)]).strip()


def now_iso() -> str:
    """The local time now, ISO 8601 to the second with the UTC offset.

    Returns
    -------
    str
        For example ``2026-12-07T21:59:44+00:00``.
    """
    return datetime.now().astimezone().isoformat(timespec="seconds")


# ============================================================================================
# files
# ============================================================================================
def fresh_dir(parent: Path, name: str) -> Path:
    """A new, empty folder ``parent/name`` (``name_1``, ``name_2``, ... if taken).

    Parameters
    ----------
    parent : Path
        Created if missing.
    name : str
        The folder's name.

    Returns
    -------
    Path
        The folder, just created.

    Raises
    ------
    RuntimeError
        If 1000 candidates are all taken.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for i in range(1000):
        candidate = parent / (name if i == 0 else f"{name}_{i}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a fresh folder for {name} under {parent}")


def write_csv(path: Path, rows: Sequence[dict]) -> None:
    """Rows as CSV with a header (the first row's keys); nothing is written for no rows.

    Parameters
    ----------
    path : Path
        The file; its folder is created.
    rows : sequence of dict
        One dict per row, all with the first row's keys.
    """
    if not rows:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _number(text: str):
    """``text`` as int or float where it is one (``inf``, ``nan`` included), else itself."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_csv(path: Path) -> list[dict]:
    """A CSV of :func:`write_csv` as rows, numbers converted back to int or float.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    list of dict
        One dict per row; a field that reads as a number is an int or a float, an empty field
        an empty string.
    """
    with open(path, newline="") as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


# ============================================================================================
# statistics over seeds
# ============================================================================================
def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max) of ``values``.

    Parameters
    ----------
    values : sequence of float
        One value per seed or repeat; ``inf`` allowed (a target never reached).

    Returns
    -------
    tuple of float
        Median, minimum and maximum; NaN for no values.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    return (float(np.median(v)), float(v.min()), float(v.max()))


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile) of ``values`` (linear interpolation).

    Parameters
    ----------
    values : sequence of float
        One value per seed or repeat.

    Returns
    -------
    tuple of float
        Q1, median, Q3; NaN for no values.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    q1, q2, q3 = np.percentile(v, [25, 50, 75])
    return (float(q1), float(q2), float(q3))


# ============================================================================================
# the result record
# ============================================================================================
def _json_value(value):
    """``value`` in plain JSON: inf and NaN as strings, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _from_json(value):
    """The inverse of :func:`_json_value` for the numbers it wrote as strings."""
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value


class BenchmarkRun:
    """One run of a benchmark: its clock, its fresh output folder and its result record.

    Parameters
    ----------
    benchmark : str
        The module's name in this package.
    title : str
        What it measures, one line.
    argv : sequence of str, optional
        The command-line arguments (default ``sys.argv[1:]``), kept in the record.
    out : Path, optional
        Parent of the fresh folder ``<benchmark>_<time>`` (default :data:`DEFAULT_OUT`).
    suffix : str
        Appended to the folder's name (``"_quick"``).
    folder : Path, optional
        Use this folder (created if missing) instead of a fresh one (a resumable benchmark).
    """

    def __init__(self, benchmark: str, title: str, argv: Sequence[str] | None = None,
                 out: Path | None = None, suffix: str = "", folder: Path | None = None):
        self.benchmark = benchmark
        self.title = title
        self.command = command_line(benchmark, argv)
        self.started = time.perf_counter()
        if folder is not None:
            self.out = Path(folder)
            self.out.mkdir(parents=True, exist_ok=True)
        else:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            self.out = fresh_dir(Path(out or DEFAULT_OUT), f"{benchmark}_{stamp}{suffix}")

    def elapsed_s(self) -> float:
        """Seconds since the run started.

        Returns
        -------
        float
            Wall time, s.
        """
        return time.perf_counter() - self.started

    def write(self, summary: Sequence[dict], key: Sequence[str], settings: dict | None = None,
              seeds: Sequence[int] = (), files: dict | None = None, notes: str = "") -> Path:
        """Write the result record ``<benchmark>.json`` into the output folder.

        Parameters
        ----------
        summary : sequence of dict
            The summary rows (medians and spreads over seeds or repeats).
        key : sequence of str
            The fields that identify a summary row.
        settings : dict, optional
            Every setting of the run.
        seeds : sequence of int
            The seeds (or repeats) the spreads are over.
        files : dict, optional
            Role -> name of a CSV file in the output folder.
        notes : str
            What a reader of the numbers must know.

        Returns
        -------
        Path
            The record's path.
        """
        record = make_record(self.benchmark, self.title, self.command, summary, key,
                             settings=settings, seeds=seeds, files=files, notes=notes,
                             wall_s=round(self.elapsed_s(), 1))
        path = self.out / f"{self.benchmark}.json"
        write_record(path, record)
        return path


def make_record(benchmark: str, title: str, command: str, summary: Sequence[dict],
                key: Sequence[str], *, settings: dict | None = None, seeds: Sequence[int] = (),
                files: dict | None = None, notes: str = "", wall_s: float | None = None,
                date: str | None = None, machine: dict | None = None,
                versions: dict | None = None) -> dict:
    """A result record (the module docstring lists its fields).

    Parameters
    ----------
    benchmark : str
        The module's name.
    title : str
        What it measures.
    command : str
        The command that produced it.
    summary : sequence of dict
        The summary rows.
    key : sequence of str
        The fields that identify a summary row; each must be in every row.
    settings : dict, optional
        Every setting of the run.
    seeds : sequence of int
        The seeds or repeats.
    files : dict, optional
        Role -> CSV file name beside the record.
    notes : str
        Remarks for the reader.
    wall_s : float, optional
        Wall time of the run, s.
    date : str, optional
        When measured (default now, :func:`now_iso`).
    machine : dict, optional
        Default: this machine (:func:`machine_info`).
    versions : dict, optional
        Default: the versions installed now (:func:`package_versions`).

    Returns
    -------
    dict
        The record, ready for :func:`write_record`.

    Raises
    ------
    ValueError
        If a summary row lacks a key field.
    """
    for row in summary:
        missing = [k for k in key if k not in row]
        if missing:
            raise ValueError(f"summary row {row} lacks the key field(s) {missing}; key is "
                             f"{list(key)}")
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "benchmark": benchmark, "title": title,
        "command": command, "date": date or now_iso(),
        "machine": machine if machine is not None else machine_info(),
        "versions": versions if versions is not None else package_versions(),
        "seeds": list(seeds), "settings": settings or {}, "wall_s": wall_s,
        "key": list(key), "summary": [dict(r) for r in summary], "files": dict(files or {}),
        "notes": notes,
    }


def write_record(path: Path, record: dict) -> None:
    """Write a record as indented JSON (inf and NaN as the strings ``"inf"``, ``"nan"``).

    Parameters
    ----------
    path : Path
        The file; its folder is created.
    record : dict
        A record of :func:`make_record`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_value(record), indent=1, allow_nan=False) + "\n")


def load_record(path: Path) -> dict:
    """Read a record written by :func:`write_record`.

    Parameters
    ----------
    path : Path
        The JSON file.

    Returns
    -------
    dict
        The record, ``"inf"``/``"nan"`` back as floats.

    Raises
    ------
    ValueError
        If the file is not a result record of this format.
    """
    record = _from_json(json.loads(Path(path).read_text()))
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{path} is not a benchmark result record (format {FORMAT!r}); "
                         f"give a <benchmark>.json written by workflows.benchmarks")
    if record.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path} has record version {record.get('version')}; this harness "
                         f"reads version {FORMAT_VERSION}")
    return record


# ============================================================================================
# comparing two records
# ============================================================================================
def compare(old: dict, new: dict) -> list[dict]:
    """Numeric summary fields of the rows two records share, side by side.

    Parameters
    ----------
    old, new : dict
        Records of the same benchmark (:func:`load_record`).

    Returns
    -------
    list of dict
        One entry per shared row and numeric field: the key fields, ``field``, ``old``,
        ``new`` and ``ratio`` (new / old; NaN where old is 0 or either is not finite).

    Raises
    ------
    ValueError
        If the records belong to different benchmarks or identify rows differently.
    """
    if old["benchmark"] != new["benchmark"] or old["key"] != new["key"]:
        raise ValueError(f"cannot compare {old['benchmark']} (key {old['key']}) with "
                         f"{new['benchmark']} (key {new['key']}): give two records of one "
                         f"benchmark")
    key = old["key"]
    by_key = {tuple(r[k] for k in key): r for r in old["summary"]}
    rows = []
    for row in new["summary"]:
        before = by_key.get(tuple(row[k] for k in key))
        if before is None:
            continue
        for field, value in row.items():
            if field in key or field not in before:
                continue
            a, b = before[field], value
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)):
                continue
            ok = math.isfinite(a) and math.isfinite(b) and a != 0
            rows.append({**{k: row[k] for k in key}, "field": field, "old": a, "new": b,
                         "ratio": b / a if ok else math.nan})
    return rows


def _print_comparison(old: dict, new: dict, rows: list[dict]) -> None:
    for name, record in (("old", old), ("new", new)):
        print(f"{name}: {record['command']}\n     {record['date']}, rave "
              f"{record['versions'].get('rave_git', UNKNOWN)}")
    if not rows:
        print("no summary row in common")
        return
    names = [*old["key"], "field"]
    widths = [max(len(n), *(len(str(r[n])) for r in rows)) for n in names]
    print(" | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
          + " | old        | new        | new / old")
    for r in rows:
        ratio = "-" if math.isnan(r["ratio"]) else f"{r['ratio']:.3f}"
        print(" | ".join(str(r[n]).ljust(w) for n, w in zip(names, widths, strict=True))
              + f" | {r['old']:<10.4g} | {r['new']:<10.4g} | {ratio}")


def main(argv: Sequence[str] | None = None) -> int:
    """``compare OLD.json NEW.json``: print the shared summary rows of two records.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="two records of one benchmark, side by side")
    cmp.add_argument("old", type=Path)
    cmp.add_argument("new", type=Path)
    args = parser.parse_args(argv)
    try:
        old, new = load_record(args.old), load_record(args.new)
        rows = compare(old, new)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    _print_comparison(old, new, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
