"""OpenMM reporters that record the order parameters and the RAVE bias of every frame.

Two forms share one base, :class:`FrameReporter` (when a frame is taken, the State it needs, the
bias energy it felt):

* :class:`CVReporter` appends one row per frame to a text file::

      time_ps sin_phi cos_phi sin_psi cos_psi bias_kjmol
      0.1 -0.93 0.36 0.95 -0.31 0.0
      ...

  The header names the columns: the simulation time in ps, each feature by its name (in its
  own unit: nm, rad or dimensionless) and the bias energy in kJ/mol that acted on the frame.
  The file reads back with :func:`read_cv` (exact names, arrays) or ``numpy.genfromtxt(file,
  names=True)`` (which drops characters such as ``(),-`` from the names). Feature values and
  bias energies are written with ``repr`` precision, so they read back exactly; the time with
  12 significant digits.
* :class:`CVRecorder` keeps the frames in memory and gives them as a
  :class:`rave.md.frames.Frames` (the campaign's walker records with it); it buffers the
  positions and evaluates the features in blocks of frames, one numpy pass per block, and can
  keep position snapshots.

The features are evaluated with their numpy face (:func:`rave.md.features.evaluate_features`) on
the State's unwrapped positions (and its box when the System is periodic), the values the
bias force computes in OpenMM. The bias is read from the :class:`rave.BiasForce` given as
``bias``: the energy OpenMM applied, from the bias force group alone. Without one it is 0 (the
frames count as unbiased), and a Simulation that holds a RAVE bias is refused at the first
report rather than recorded as unbiased.

A trajectory is OpenMM's business: add ``app.DCDReporter(path, reportInterval)`` (or
``app.XTCReporter``) with the same interval beside this reporter, and frame ``k`` of the
trajectory is row ``k`` of the CV file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .bias_force import BIAS_PARAMETER

__all__ = ["CVData", "CVRecorder", "CVReporter", "FrameReporter", "read_cv", "TIME_COLUMN",
           "BIAS_COLUMN"]

#: the first and last column of a CV file
TIME_COLUMN = "time_ps"
BIAS_COLUMN = "bias_kjmol"


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


def _positions(state: Any, out: np.ndarray) -> np.ndarray:
    """The State's positions (nm) written into ``out`` (shape (n_particles, 3), float64).

    What ``state.getPositions(asNumpy=True)`` reads, without its per-call ``dir(state)`` and
    Quantity (about 10 us a frame, as much as 10 MD steps of a model potential); OpenMM builds
    without the array reader take the public path.
    """
    try:
        state._getVectorAsNumpy(state.Positions, out)
    except (AttributeError, TypeError):
        out[...] = state.getPositions(asNumpy=True)._value
    return out


class FrameReporter:
    """The part of an OpenMM reporter that :class:`CVReporter` and :class:`CVRecorder` share.

    It says when the next frame is due and what State it needs (``describeNextReport``), and
    reads a frame from a State: its time, its unwrapped positions (and box) and the bias
    energy that acted on it. Subclasses implement ``report``.
    """

    def __init__(self, reportInterval: int, features: Sequence, bias: Any = None, *,  # noqa: N803
                 extra_groups: Iterable[int] = (), energy_offset_kjmol: float = 0.0,
                 first_step: int = 0) -> None:
        from .bias_force import BiasForce

        if (isinstance(reportInterval, bool) or not isinstance(reportInterval, int | np.integer)
                or reportInterval < 1):
            raise ValueError(f"reportInterval must be an int >= 1 (steps). You supplied "
                             f"{reportInterval!r}")
        self.features = list(features)
        if not self.features:
            raise ValueError("features must hold at least one order parameter. You supplied []")
        if bias is not None and not isinstance(bias, BiasForce):
            raise TypeError(f"bias must be a rave.BiasForce or None. You supplied "
                            f"{type(bias).__name__}")
        self.bias = bias
        self._interval = int(reportInterval)
        self._first_step = int(first_step)
        groups = {int(g) for g in extra_groups}
        if bias is not None:
            groups.add(bias.forceGroup)
        self._groups = groups
        self._offset = float(energy_offset_kjmol)
        self._checked_context = None
        self._periodic = False
        self._n_particles = 0

    @property
    def reportInterval(self) -> int:  # noqa: N802 - OpenMM's name
        """Steps between frames."""
        return self._interval

    def describeNextReport(self, simulation: Any) -> dict:  # noqa: N802 - OpenMM's name
        """Steps to the next frame and what it needs (OpenMM 8's dict form)."""
        steps = self._interval - (simulation.currentStep - self._first_step) % self._interval
        return {"steps": steps, "periodic": False, "include": ["positions"]}

    def _check_context(self, simulation: Any) -> None:
        """Once per Context: it holds the bias if one was given, and none if not."""
        context = simulation.context
        holds = BIAS_PARAMETER in context.getParameters()
        if self.bias is not None and not holds:
            raise ValueError(
                "this Context does not hold the RAVE bias: it was created before BiasForce added "
                "the bias to the System (or from another System). Create the Simulation or "
                "Context after BiasForce(system, ...)"
            )
        if self.bias is None and holds:
            raise ValueError(
                f"the Simulation holds a RAVE BiasForce, but this {type(self).__name__} was "
                f"given bias=None: its bias_kjmol column would read 0 for biased frames. Pass "
                f"bias=<the BiasForce>"
            )
        if self.bias is not None:
            from .bias_force import check_group_alone

            check_group_alone(context.getSystem(), self.bias.forceGroup)
        self._periodic = simulation.system.usesPeriodicBoundaryConditions()
        self._n_particles = simulation.system.getNumParticles()
        self._checked_context = context

    def read_frame(self, simulation: Any, state: Any, out: np.ndarray | None = None
                   ) -> tuple[float, np.ndarray, np.ndarray | None, float]:
        """The frame of a reported State.

        Raises ValueError: at the first frame of a Context: the bias was given but the Context lacks
        it, or was not given but the Context holds a RAVE bias.
        """
        if simulation.context is not self._checked_context:
            self._check_context(simulation)
        # OpenMM's State holds nm, ps and kJ/mol: the Quantity's value is in those units
        positions = _positions(state, np.empty((self._n_particles, 3)) if out is None else out)
        box = state.getPeriodicBoxVectors(asNumpy=True)._value if self._periodic else None
        if self._groups:
            energy = simulation.context.getState(getEnergy=True, groups=self._groups)
            bias = energy.getPotentialEnergy()._value - self._offset
        else:
            bias = 0.0
        return state.getTime()._value, positions, box, bias


class CVReporter(FrameReporter):
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
        The CV file.
    names : list of str
        The feature names, in column order (as :class:`CVData` ``names``).
    columns : list of str
        The file's columns: ``time_ps``, the feature names, ``bias_kjmol``.

    Raises
    ------
    ValueError
        A bad interval or feature names, or an existing file with another header or an
        incomplete last row.

    See Also
    --------
    CVRecorder : the same frames, kept in memory.

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

    def __init__(self, file: str | os.PathLike, reportInterval: int,  # noqa: N803
                 features: Sequence, bias: Any = None) -> None:
        from .features import feature_names

        super().__init__(reportInterval, features, bias)
        self.names = list(feature_names(self.features))
        self.columns = _header_names(self.names)
        self.path = _path(file)
        self._file = self._open()

    def _open(self):
        header = " ".join(self.columns)
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
        if found.split() != self.columns:
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

    def report(self, simulation: Any, state: Any) -> None:
        """Append the row of the current state.

        Parameters
        ----------
        simulation : openmm.app.Simulation
            The Simulation reported on.
        state : openmm.State
            Holding positions (OpenMM asks for them through :meth:`describeNextReport`).
        """
        from .features import evaluate_features

        if self._file is None:
            raise ValueError(f"this CVReporter of {self.path} was closed; remove it from "
                             f"simulation.reporters or create a new one")
        time_ps, positions, box, bias = self.read_frame(simulation, state)
        values = evaluate_features(self.features, positions, box)[0]
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
                f"{' '.join(self.names)}, bias={'yes' if self.bias is not None else 'no'})")



class CVRecorder(FrameReporter):
    """An OpenMM reporter keeping the order parameters and the bias energy in memory.

    The frames :class:`CVReporter` would write, as arrays: add it to ``simulation.reporters``,
    step, then take :meth:`frames`. Positions are buffered and featurised in blocks of
    ``block_frames`` frames (one numpy pass per block, not per frame), so recording costs
    little even at a frame every few tens of steps of a small system.

    Parameters
    ----------
    reportInterval : int
        Steps between frames (>= 1).
    features : sequence of rave.md.features.Feature
        The order parameters recorded.
    bias : rave.BiasForce, optional
        The bias of the Simulation (see :class:`FrameReporter`).
    extra_groups : iterable of int, optional
        Force groups of other bias forces whose energy is part of each frame's bias.
    energy_offset_kjmol : float, optional
        Subtracted from the energy of the bias groups, kJ/mol.
    first_step : int, optional
        Frames fall at steps ``first_step + k * reportInterval``, k >= 1 (default 0, as
        OpenMM's reporters; the walker passes the step it starts from).
    snapshot_every : int, optional
        Also keep the positions (float32, nm) of frames 0, k, 2k, ... with k this.
    block_frames : int, optional
        Frames buffered before featurising (default 512).
    on_block : callable, optional
        Called after each block is featurised as ``on_block(first, positions, features,
        bias_kjmol)``: the index of the block's first frame, its positions (shape (n,
        n_particles, 3), nm), feature values (shape (n, n_features)) and bias energies
        (shape (n,)). It may raise to stop the Simulation (the walker's blow-up check); the
        block's frames are then dropped.

    Attributes
    ----------
    features : list of rave.md.features.Feature
        The order parameters recorded.
    bias : rave.BiasForce or None
        The bias of the Simulation, or None (unbiased frames).

    Examples
    --------
    >>> recorder = CVRecorder(50, features, bias=bias_force)
    >>> simulation.reporters.append(recorder)
    >>> simulation.step(10_000)
    >>> frames = recorder.frames()  # frames.features: shape (200, len(features))
    """

    def __init__(self, reportInterval: int, features: Sequence, bias: Any = None, *,  # noqa: N803
                 extra_groups: Iterable[int] = (), energy_offset_kjmol: float = 0.0,
                 first_step: int = 0, snapshot_every: int | None = None,
                 block_frames: int = 512,
                 on_block: Callable[[int, np.ndarray, np.ndarray, np.ndarray], None] | None = None,
                 ) -> None:
        super().__init__(reportInterval, features, bias, extra_groups=extra_groups,
                         energy_offset_kjmol=energy_offset_kjmol, first_step=first_step)
        if snapshot_every is not None and snapshot_every < 1:
            raise ValueError(f"snapshot_every must be >= 1 or None. You supplied "
                             f"{snapshot_every}")
        if block_frames < 1:
            raise ValueError(f"block_frames must be >= 1. You supplied {block_frames}")
        self._snapshot_every = snapshot_every
        self._block_frames = int(block_frames)
        self._on_block = on_block
        self._block = None  # positions of the frames not yet featurised
        self._boxes = None
        self._pending = 0
        self._time: list[float] = []
        self._bias: list[float] = []
        self._features: list[np.ndarray] = []
        self._snapshots: list[np.ndarray] = []
        self._snapshot_frames: list[int] = []

    def __len__(self) -> int:
        """Frames recorded so far."""
        return len(self._bias)

    def report(self, simulation: Any, state: Any) -> None:
        """Keep the frame of the current state (featurised when its block is full).

        Parameters
        ----------
        simulation : openmm.app.Simulation
            The Simulation reported on.
        state : openmm.State
            Holding positions.
        """
        if self._block is None:
            n_particles = simulation.system.getNumParticles()
            self._block = np.empty((self._block_frames, n_particles, 3))
        time_ps, _, box, bias = self.read_frame(simulation, state, self._block[self._pending])
        if box is not None:
            if self._boxes is None:
                self._boxes = np.empty((self._block_frames, 3, 3))
            self._boxes[self._pending] = box
        self._pending += 1
        self._time.append(time_ps)
        self._bias.append(bias)
        if self._pending == self._block_frames:
            self.flush()

    def flush(self) -> None:
        """Featurise the frames buffered so far (:meth:`frames` does it too)."""
        from .features import evaluate_features

        n = self._pending
        if n == 0:
            return
        first = len(self._bias) - n
        positions = self._block[:n]
        values = evaluate_features(self.features, positions,
                                   None if self._boxes is None else self._boxes[:n])
        if self._on_block is not None:
            try:
                self._on_block(first, positions, values, np.asarray(self._bias[first:]))
            except BaseException:
                del self._bias[first:], self._time[first:]
                self._pending = 0
                raise
        self._features.append(values)
        if self._snapshot_every:
            k = self._snapshot_every
            frames = np.arange(-(-first // k) * k, first + n, k, dtype=np.int64)
            self._snapshots.append(positions[frames - first].astype(np.float32))
            self._snapshot_frames.extend(frames.tolist())
        self._pending = 0

    def frames(self):
        """The frames recorded so far.

        Returns
        -------
        rave.md.frames.Frames
            ``features`` (n_frames, n_features), ``bias_kjmol`` and ``time_ps`` (the States'
            times) of shape (n_frames,), and the snapshots (empty without
            ``snapshot_every``) with their frame indices.
        """
        from .frames import Frames

        self.flush()
        n_features = len(self.features)
        features = (np.concatenate(self._features) if self._features
                    else np.empty((0, n_features)))
        if self._snapshots:
            snapshots = np.concatenate(self._snapshots)
        else:
            shape = (0, *(self._block.shape[1:] if self._block is not None else (0, 3)))
            snapshots = np.empty(shape, dtype=np.float32)
        return Frames(features, np.asarray(self._bias, dtype=float),
                      np.asarray(self._time, dtype=float), snapshots,
                      np.asarray(self._snapshot_frames, dtype=np.int64))

    def __repr__(self) -> str:
        from .features import feature_names

        return (f"CVRecorder({len(self)} frames, every {self._interval} steps, "
                f"{' '.join(feature_names(self.features))}, "
                f"bias={'yes' if self.bias is not None else 'no'})")

def read_cv(file: str | os.PathLike) -> CVData:
    """Read a CV file written by :class:`CVReporter`.

    Parameters
    ----------
    file : str or os.PathLike
        The CV file.

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
