"""``CVReporter``: an OpenMM reporter that records the order parameters and the RAVE bias.

Add it to any ``app.Simulation``; every ``reportInterval`` steps it appends one row to a text
file::

    time_ps sin_phi cos_phi sin_psi cos_psi bias_kjmol
    0.1 -0.93 0.36 0.95 -0.31 0.0
    ...

The header names the columns: the simulation time in ps, each feature by its name (in its own
unit: nm, rad or dimensionless) and the bias energy in kJ/mol that acted on the frame. The
file reads back with :func:`read_cv` (exact names, arrays) or ``numpy.genfromtxt(file,
names=True)`` (which drops characters such as ``(),-`` from the names). Feature values and
bias energies are written with ``repr`` precision, so they read back exactly; the time with 12
significant digits.

The features are evaluated with their numpy face (:func:`rave.md.features.evaluate_features`) on
the State's unwrapped positions (and its box when the System is periodic), the values the
bias force computes in OpenMM. The bias column is read from the :class:`rave.BiasForce`
given as ``bias``: the energy OpenMM applied, from the bias force group alone. Without one it
is 0 (the frames count as unbiased), and a Simulation that holds a RAVE bias is refused at the
first report rather than recorded as unbiased.

A trajectory is OpenMM's business: add ``app.DCDReporter(path, reportInterval)`` (or
``app.XTCReporter``) with the same interval beside this reporter, and frame ``k`` of the
trajectory is row ``k`` of the CV file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .bias_force import BIAS_PARAMETER

__all__ = ["CVData", "CVReporter", "read_cv", "TIME_COLUMN", "BIAS_COLUMN"]

#: the first and last column of a CV file
TIME_COLUMN = "time_ps"
BIAS_COLUMN = "bias_kjmol"
#: the name of the RAVE bias force's global parameter that marks a Context holding one
_BIAS_PARAMETER = BIAS_PARAMETER


class CVData(NamedTuple):
    """The rows of a CV file (see :func:`read_cv`).

    Attributes
    ----------
    time_ps : np.ndarray, shape=(n_frames,), dtype=float
        Simulation time of each frame, ps.
    features : np.ndarray, shape=(n_frames, n_features), dtype=float
        Order parameters of each frame, each in its own unit.
    bias_kjmol : np.ndarray, shape=(n_frames,), dtype=float
        Bias energy that acted on each frame, kJ/mol (0 for unbiased frames).
    names : list of str
        Feature names, in column order.
    """

    time_ps: np.ndarray
    features: np.ndarray
    bias_kjmol: np.ndarray
    names: list[str]


def _header_names(names: Sequence[str]) -> list[str]:
    """Column names of a CV file with these features; refuses names a header cannot hold."""
    for name in names:
        if not name or any(c.isspace() for c in name) or "#" in name:
            raise ValueError(
                f"feature names must be non-empty, without whitespace or '#', to be columns of a "
                f"CV file header. You supplied {name!r}; build the feature with name=..."
            )
        if name in (TIME_COLUMN, BIAS_COLUMN):
            raise ValueError(f"feature names must not be {TIME_COLUMN!r} or {BIAS_COLUMN!r} "
                             f"(the CV file's own columns). You supplied {name!r}")
    return [TIME_COLUMN, *names, BIAS_COLUMN]


def _path(file: Any, name: str = "file") -> Path:
    if isinstance(file, str | os.PathLike):
        return Path(os.fspath(file))
    raise TypeError(f"{name} must be a path (str or os.PathLike). You supplied "
                    f"{type(file).__name__}")


class CVReporter:
    """An OpenMM reporter appending the order parameters and the bias energy to a text file.

    Parameters
    ----------
    file : str or os.PathLike
        The CV file. A new file gets the header line ``time_ps <feature names> bias_kjmol``.
        An existing file with the same header is appended to (a restarted run goes on in
        the same file); one with another header is refused, and nothing is written to it.
    reportInterval : int
        Steps between rows (>= 1), counted from step 0 as OpenMM's reporters do: rows at
        steps k, 2k, ...
    features : sequence of rave.md.features.Feature
        The order parameters recorded, names unique, without whitespace or '#'.
    bias : rave.BiasForce, optional
        The bias of the Simulation, whose energy fills the ``bias_kjmol`` column. None: the
        column holds 0 (unbiased frames); a Simulation whose System holds a RAVE bias is
        then refused at the first report. A bias that is not a RAVE BiasForce (e.g.
        ``app.Metadynamics``) is not seen: record it separately.

    Attributes
    ----------
    path : pathlib.Path
    names : list of str
        The column names, ``time_ps``, the feature names, ``bias_kjmol``.

    Raises
    ------
    ValueError
        A bad interval or feature names, or an existing file with another header or an
        incomplete last row.

    Notes
    -----
    Each row is written with one ``write`` and flushed, so a crash loses at most the row
    being written; a file that ends in an incomplete row is refused for appending (remove
    that line). Rows are appended in the order reported: a run restarted from an earlier
    checkpoint repeats times already in the file. Featurising costs a numpy pass per row; at
    intervals below ~10 steps on a small system it dominates the MD.

    Examples
    --------
    >>> simulation.reporters.append(CVReporter("cv.txt", 100, features, bias=bias_force))
    >>> simulation.reporters.append(app.DCDReporter("traj.dcd", 100))  # frames = rows
    >>> simulation.step(10_000)
    >>> data = read_cv("cv.txt")  # data.features: shape (100, len(features))
    """

    def __init__(self, file: str | os.PathLike, reportInterval: int,
                 features: Sequence, bias: Any = None) -> None:
        from .bias_force import BiasForce
        from .features import feature_names

        if (isinstance(reportInterval, bool) or not isinstance(reportInterval, int | np.integer)
                or reportInterval < 1):
            raise ValueError(f"reportInterval must be an int >= 1 (steps). You supplied "
                             f"{reportInterval!r}")
        self.features = list(features)
        if not self.features:
            raise ValueError("features must hold at least one order parameter. You supplied []")
        self.names = _header_names(feature_names(self.features))
        if bias is not None and not isinstance(bias, BiasForce):
            raise TypeError(f"bias must be a rave.BiasForce or None. You supplied "
                            f"{type(bias).__name__}")
        self.bias = bias
        self._interval = int(reportInterval)
        self.path = _path(file)
        self._checked_unbiased = False
        self._file = self._open()

    def _open(self):
        header = " ".join(self.names)
        try:
            handle = open(self.path, "x", encoding="utf-8")
        except FileExistsError:
            pass
        else:
            handle.write(header + "\n")
            handle.flush()
            return handle
        with open(self.path, "rb") as existing:
            first = existing.readline()
            existing.seek(0, os.SEEK_END)
            size = existing.tell()
            if size:
                existing.seek(size - 1)
                last = existing.read(1)
        if size == 0:  # an empty file: nothing to keep, start it
            handle = open(self.path, "a", encoding="utf-8")
            handle.write(header + "\n")
            handle.flush()
            return handle
        found = first.decode("utf-8", "replace").rstrip("\r\n")
        if found.split() != self.names:
            raise ValueError(
                f"{self.path} exists with the header {found[:200]!r}, not this reporter's "
                f"{header!r}; refusing to append to it (the file is unchanged). Give another "
                f"file name, or move that file away"
            )
        if last != b"\n":
            raise ValueError(
                f"{self.path} ends in an incomplete row (a run stopped while writing it?); "
                f"refusing to append after it (the file is unchanged). Delete its last line, "
                f"then create the reporter again"
            )
        return open(self.path, "a", encoding="utf-8")

    @property
    def reportInterval(self) -> int:
        """Steps between rows."""
        return self._interval

    def describeNextReport(self, simulation: Any) -> dict:
        """Steps to the next row and what it needs (OpenMM 8's dict form).

        Parameters
        ----------
        simulation : openmm.app.Simulation

        Returns
        -------
        dict
            ``steps`` to the next report, ``periodic`` False (unwrapped positions, as the bias
            force sees them) and ``include`` ["positions"].
        """
        steps = self._interval - simulation.currentStep % self._interval
        return {"steps": steps, "periodic": False, "include": ["positions"]}

    def report(self, simulation: Any, state: Any) -> None:
        """Append the row of the current state.

        Parameters
        ----------
        simulation : openmm.app.Simulation
        state : openmm.State
            Holding positions (OpenMM asks for them through :meth:`describeNextReport`).
        """
        from openmm import unit

        from .bias_force import state_positions
        from .features import evaluate_features

        if self._file is None:
            raise ValueError(f"this CVReporter of {self.path} was closed; remove it from "
                             f"simulation.reporters or create a new one")
        positions, box = state_positions(state, simulation.system)
        values = evaluate_features(self.features, positions, box)[0]
        if self.bias is not None:
            bias = self.bias.getBiasEnergy(simulation.context).value_in_unit(
                unit.kilojoule_per_mole)
        else:
            if not self._checked_unbiased:
                if _BIAS_PARAMETER in simulation.context.getParameters():
                    raise ValueError(
                        "the Simulation holds a RAVE BiasForce, but this CVReporter was given "
                        "bias=None: its bias_kjmol column would read 0 for biased frames. Pass "
                        "bias=<the BiasForce>"
                    )
                self._checked_unbiased = True
            bias = 0.0
        time_ps = state.getTime().value_in_unit(unit.picosecond)
        row = [f"{time_ps:.12g}", *(repr(float(v)) for v in (*values.tolist(), bias))]
        self._file.write(" ".join(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file (later reports are refused)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()

    def __repr__(self) -> str:
        return (f"CVReporter({str(self.path)!r}, every {self._interval} steps, "
                f"{' '.join(self.names[1:-1])}, bias={'yes' if self.bias is not None else 'no'})")


def read_cv(file: str | os.PathLike) -> CVData:
    """Read a CV file written by :class:`CVReporter`.

    Parameters
    ----------
    file : str or os.PathLike

    Returns
    -------
    CVData
        ``time_ps`` shape (n_frames,), ``features`` shape (n_frames, n_features),
        ``bias_kjmol`` shape (n_frames,) and the feature ``names``; a file with only its
        header gives n_frames = 0.

    Raises
    ------
    ValueError
        The header is not ``time_ps <names> bias_kjmol`` or a row is not a row of numbers
        of the header's length (an incomplete last row after a crash, for instance).
    """
    path = _path(file)
    with open(path, encoding="utf-8") as handle:
        header = handle.readline().split()
        if len(header) < 3 or header[0] != TIME_COLUMN or header[-1] != BIAS_COLUMN:
            raise ValueError(f"{path} is not a CV file: its first line must be "
                             f"'{TIME_COLUMN} <feature names> {BIAS_COLUMN}'. It is "
                             f"{' '.join(header)[:200]!r}")
        lines = [line for line in handle if line.strip()]
    if lines:
        try:
            rows = np.loadtxt(lines, dtype=float, ndmin=2)
        except ValueError as error:
            raise ValueError(f"{path} holds a row that is not {len(header)} numbers: "
                             f"{error}") from error
        if rows.shape[1] != len(header):
            raise ValueError(f"{path} has rows of {rows.shape[1]} numbers, but its header names "
                             f"{len(header)} columns")
    else:
        rows = np.zeros((0, len(header)))
    return CVData(rows[:, 0].copy(), rows[:, 1:-1].copy(), rows[:, -1].copy(), header[1:-1])
