"""Walkers of a round: one task per walker, run in this process or on a Dask cluster.

A :class:`WalkerTask` holds everything one walker needs (the System as XML, the features as
dicts, the bias as a dict, the starting state, seeds and MD settings), so the same function,
:func:`run_walker`, runs in this process (``scheduler = "serial"``), on a local Dask cluster
(``"local"``) or on any Dask scheduler (``"tcp://host:8786"``). Workers need rave installed and
nothing else: they read no files. Results come back to the campaign, which writes them.

MD faults: a walker runs in segments; before each it keeps its state in memory. If a segment
blows up (non-finite or exploding positions or energies, or an OpenMM error), the walker goes
back to that state, halves its time step and tries the segment again (logged in the result's
``faults``); after ``max_retries`` failures it raises :class:`WalkerFailed`. The frame count
does not depend on faults (the steps of a retried segment are run again at the smaller step).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .resources import read_allowed_cores

log = logging.getLogger("rave")


#: prefix of the OPES snapshot's arrays in a walker file
_OPES_STATE = "opes_state."


class WalkerFailed(RuntimeError):
    """A walker kept blowing up after ``max_retries`` recoveries."""


class SchedulerUnreachable(RuntimeError):
    """The Dask scheduler named by ``--scheduler`` or ``[sampling] scheduler`` does not answer."""


@dataclass(frozen=True)
class WalkerTask:
    """One walker of one round (plain data: picklable, sent to Dask workers)."""

    round_index: int
    walker_index: int
    system_xml: str
    features: tuple
    positions: np.ndarray
    velocities: np.ndarray | None
    box_vectors: np.ndarray | None
    time_ps: float
    bias: dict | None
    temperature_K: float
    timestep_ps: float
    friction_per_ps: float
    seed: int
    platform: str
    force_group: int | None
    n_steps: int
    report_interval: int
    snapshot_every: int
    max_retries: int = 4
    segment_frames: int = 200
    cpu_threads: int | None = None
    opes: dict | None = None
    opes_state: dict | None = None
    explore: dict | None = None
    record_potential: bool = False
    dcd_every: int = 0

    @property
    def label(self) -> str:
        """str: "round R walker K", for messages."""
        return f"round {self.round_index} walker {self.walker_index}"


@dataclass
class WalkerResult:
    """Frames and final state of one walker (see :meth:`to_arrays` for the stored form)."""

    round_index: int
    walker_index: int
    features: np.ndarray
    bias_kjmol: np.ndarray
    time_ps: np.ndarray
    snapshots: np.ndarray
    snapshot_frames: np.ndarray
    final_positions: np.ndarray
    final_velocities: np.ndarray
    final_box_vectors: np.ndarray | None
    final_time_ps: float
    final_timestep_ps: float
    seed: int
    platform: str
    wall_s: float
    faults: list[str] = field(default_factory=list)
    #: adaptive (OPES) walkers: largest |OpenMM - numpy| bias of its frames, kJ/mol; c(t) of
    #: each frame, kJ/mol; the MBAR states of its frames (rave.bias_grid.bias_blocks): each block's
    #: bias on the OPES grid (kJ/mol) and its frames, in time order
    bias_check_kjmol: float = 0.0
    ct_kjmol: np.ndarray | None = None
    opes_block_values: np.ndarray | None = None
    opes_block_frames: np.ndarray | None = None
    #: the walker's OPES at the end (``OPES.getState()``), for the next round to continue
    opes_state: dict | None = None
    potential_kjmol: np.ndarray | None = None
    ladder_temperatures_K: np.ndarray | None = None
    ladder_state: np.ndarray | None = None
    counted: np.ndarray | None = None
    heat_capacity: float = float("nan")
    ladder_reason: str = ""
    trajectory: np.ndarray | None = None
    trajectory_frames: np.ndarray | None = None
    trajectory_box: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.bias_kjmol)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The result as named arrays for ``np.savez`` (walker checkpoint file)."""
        out = {
            "features": self.features,
            "bias_kjmol": self.bias_kjmol,
            "time_ps": self.time_ps,
            "snapshots": self.snapshots,
            "snapshot_frames": self.snapshot_frames,
            "final_positions": self.final_positions,
            "final_velocities": self.final_velocities,
            "final_time_ps": np.float64(self.final_time_ps),
            "final_timestep_ps": np.float64(self.final_timestep_ps),
            "round_index": np.int64(self.round_index),
            "walker_index": np.int64(self.walker_index),
            "seed": np.int64(self.seed),
            "platform": np.str_(self.platform),
            "wall_s": np.float64(self.wall_s),
            "faults": np.array(self.faults, dtype=np.str_),
        }
        if self.final_box_vectors is not None:
            out["final_box_vectors"] = self.final_box_vectors
        if self.opes_block_values is not None:
            out["bias_check_kjmol"] = np.float64(self.bias_check_kjmol)
            out["ct_kjmol"] = self.ct_kjmol
            out["opes_block_values"] = self.opes_block_values
            out["opes_block_frames"] = self.opes_block_frames
        for key, value in (self.opes_state or {}).items():
            out[_OPES_STATE + key] = np.asarray(value)
        if self.potential_kjmol is not None:
            out["potential_kjmol"] = self.potential_kjmol
        if self.ladder_state is not None:
            out["ladder_temperatures_K"] = self.ladder_temperatures_K
            out["ladder_state"] = self.ladder_state
            out["counted"] = self.counted
            out["heat_capacity"] = np.float64(self.heat_capacity)
            out["ladder_reason"] = np.str_(self.ladder_reason)
        if self.trajectory_frames is not None:
            # the positions go to the DCD (rave.campaign.store.CampaignStore.write_walker),
            # which the walker file's trajectory_frames index
            out["trajectory"] = self.trajectory
            out["trajectory_frames"] = self.trajectory_frames
            if self.trajectory_box is not None:
                out["trajectory_box"] = self.trajectory_box
        return out

    @classmethod
    def from_arrays(cls, data: dict[str, np.ndarray]) -> WalkerResult:
        """The result from :meth:`to_arrays` output (a walker file read back)."""
        return cls(
            round_index=int(data["round_index"]),
            walker_index=int(data["walker_index"]),
            features=data["features"],
            bias_kjmol=data["bias_kjmol"],
            time_ps=data["time_ps"],
            snapshots=data["snapshots"],
            snapshot_frames=data["snapshot_frames"],
            final_positions=data["final_positions"],
            final_velocities=data["final_velocities"],
            final_box_vectors=data.get("final_box_vectors"),
            final_time_ps=float(data["final_time_ps"]),
            final_timestep_ps=float(data["final_timestep_ps"]),
            seed=int(data["seed"]),
            platform=str(data["platform"]),
            wall_s=float(data["wall_s"]),
            faults=[str(f) for f in data["faults"]],
            bias_check_kjmol=float(data.get("bias_check_kjmol", 0.0)),
            ct_kjmol=data.get("ct_kjmol"),
            opes_block_values=data.get("opes_block_values"),
            opes_block_frames=data.get("opes_block_frames"),
            opes_state={key[len(_OPES_STATE):]: np.asarray(data[key]) for key in data
                        if key.startswith(_OPES_STATE)} or None,
            potential_kjmol=data.get("potential_kjmol"),
            ladder_temperatures_K=data.get("ladder_temperatures_K"),
            ladder_state=data.get("ladder_state"),
            counted=None if data.get("counted") is None else data["counted"].astype(bool),
            heat_capacity=float(data.get("heat_capacity", np.nan)),
            ladder_reason=str(data.get("ladder_reason", "")),
            trajectory=data.get("trajectory"),
            trajectory_frames=data.get("trajectory_frames"),
            trajectory_box=data.get("trajectory_box"),
        )


def counted_frames(n_frames: int, n_calibration: int, settled: int) -> np.ndarray:
    """Which frames of an exploring walker count: all but the ``settled`` frames after the
    ``n_calibration`` calibration frames (the expanded ensemble's weights were settling).
    """
    counted = np.ones(n_frames, dtype=bool)
    counted[n_calibration:n_calibration + settled] = False
    return counted


class WalkerRound:
    """One walker's round, run in pieces: the frames so far, the exploration's calibration and
    ladder, and the :class:`WalkerResult` at the end. :func:`run_walker` runs a task through it
    (with fault recovery); :class:`rave.campaign.sampler.RAVESampler` runs a user's Simulation
    through it as the user steps.
    """

    def __init__(self, walker, n_frames: int, report_interval: int, snapshot_every: int,
                 explore: dict | None = None, ladder_seed: int = 0, dcd_every: int = 0,
                 box_vectors=None) -> None:
        from ..md.explore import ExplorationSpec, calibration_frames

        self.walker = walker
        self.n_frames = int(n_frames)
        self.report_interval = int(report_interval)
        self.snapshot_every = int(snapshot_every)
        self.spec = None if explore is None else ExplorationSpec.from_dict(explore)
        self.n_calibration = 0 if self.spec is None else calibration_frames(
            self.n_frames, self.spec.calibration_fraction, self.snapshot_every)
        self.ladder_seed = int(ladder_seed)
        self.dcd_every = int(dcd_every)
        self.box_vectors = box_vectors
        # with a trajectory, positions are kept every gcd(snapshot_every, dcd_every) frames and
        # sorted afterwards into the snapshots and the trajectory's frames
        self.keep_every = (math.gcd(self.snapshot_every, self.dcd_every) if self.dcd_every
                           else self.snapshot_every)
        self.plan = None
        self.parts: list = []
        self.done = 0

    @property
    def left(self) -> int:
        """Frames still to run."""
        return self.n_frames - self.done

    def next_piece(self, n: int) -> int:
        """How many of the next ``n`` frames to run in one piece (the calibration ends a
        piece, so the ladder starts on a frame boundary).
        """
        n = min(n, self.left)
        if self.plan is None and self.done < self.n_calibration:
            n = min(n, self.n_calibration - self.done)
        return n

    def run(self, n: int, progress=None) -> None:
        """Run the next ``n`` frames (at most :meth:`next_piece` of them); the ladder starts
        once the calibration's frames are in.

        Raises rave.md.walker.MDError: the MD blew up (the walker's state is then unusable until
        restored).
        """
        from ..md.explore import potential_heat_capacity, temperature_ladder
        from ..units import kT_kjmol

        walker = self.walker
        if self.spec is not None and self.plan is None and self.done == self.n_calibration:
            potential = np.concatenate([p.potential_kjmol for p, _ in self.parts])
            self.plan = temperature_ladder(walker.temperature_K, self.spec,
                                           potential_heat_capacity(
                                               potential, kT_kjmol(walker.temperature_K)))
            walker.start_ladder(self.plan.temperatures_K, self.spec.move_interval,
                                self.ladder_seed)
        n = self.next_piece(n)
        frames = walker.run(n * self.report_interval, self.report_interval, progress=progress,
                            snapshot_every=self.keep_every)
        self.parts.append((frames, frames.snapshot_frames + self.done))
        self.done += n

    def result(self, round_index: int, walker_index: int, seed: int, wall_s: float,
               faults: list[str]) -> WalkerResult:
        """The round's :class:`WalkerResult` (the ladder stopped, back at the walker's
        temperature).
        """
        from ..md.explore import settled_from

        walker, parts = self.walker, self.parts
        walker.stop_ladder()
        state = walker.get_state()
        kept = np.concatenate([p.snapshots for p, _ in parts])
        kept_frames = np.concatenate([s for _, s in parts])
        snapshot = kept_frames % self.snapshot_every == 0
        features_all = np.concatenate([p.features for p, _ in parts])
        bias_all = np.concatenate([p.bias_kjmol for p, _ in parts])
        adaptive = {}
        if walker.opes is not None:
            chi = features_all @ np.asarray(walker.opes.spec.coefficients)
            numpy_bias = walker.opes.frame_bias(chi) + (0.0 if walker.bias is None
                                                        else walker.bias.energy(features_all))
            adaptive = {
                "bias_check_kjmol": float(np.max(np.abs(numpy_bias - bias_all), initial=0.0)),
                "ct_kjmol": walker.opes.frame_ct(),
            }
            blocks = walker.opes.blocks()
            adaptive["opes_block_values"] = np.array([v for v, _ in blocks])
            adaptive["opes_block_frames"] = np.array([n for _, n in blocks], dtype=np.int64)
            adaptive["opes_state"] = walker.opes.opes.getState()
        if walker.record_potential:
            adaptive["potential_kjmol"] = np.concatenate([p.potential_kjmol for p, _ in parts])
        counted = None
        if self.plan is not None:
            counted = counted_frames(self.n_frames, self.n_calibration, settled_from(
                np.asarray(walker.ladder_weights), self.spec.settle_tolerance))
        if self.dcd_every:
            chosen = kept_frames % self.dcd_every == 0
            if counted is not None:  # frames the round drops are not in the trajectory either
                chosen &= counted[kept_frames]
            adaptive.update(trajectory=kept[chosen], trajectory_frames=kept_frames[chosen],
                            trajectory_box=self.box_vectors)
        if self.plan is not None:
            n_calibration = self.n_calibration
            ladder_state = np.concatenate([np.zeros(n_calibration, dtype=np.int64)]
                                          + [p.state for p, _ in parts if p.state is not None])
            adaptive.update(ladder_temperatures_K=np.asarray(self.plan.temperatures_K),
                            ladder_state=ladder_state, counted=counted,
                            heat_capacity=self.plan.heat_capacity,
                            ladder_reason=self.plan.reason)
        return WalkerResult(
            round_index=round_index,
            walker_index=walker_index,
            features=features_all,
            bias_kjmol=bias_all,
            time_ps=np.concatenate([p.time_ps for p, _ in parts]),
            snapshots=kept[snapshot],
            snapshot_frames=kept_frames[snapshot],
            final_positions=state["positions"],
            final_velocities=state["velocities"],
            final_box_vectors=state.get("box_vectors"),
            final_time_ps=float(state["time_ps"]),
            final_timestep_ps=walker.timestep_ps,
            seed=seed,
            platform=walker.platform.getName(),
            wall_s=wall_s,
            faults=faults,
            **adaptive,
        )


def run_walker(task: WalkerTask, progress: Callable[[int], None] | None = None) -> WalkerResult:
    """Run one walker with fault recovery (see the module docstring).

    Raises WalkerFailed: after ``task.max_retries`` blow-ups; the message names the walker, the time
    and the time steps tried.
    """
    from ..bias_grid import Bias
    from ..md.features import feature_from_dict
    from ..md.walker import MDError, Walker, system_from_xml

    t0 = time.perf_counter()
    system = system_from_xml(task.system_xml)
    features = [feature_from_dict(d) for d in task.features]
    walker = Walker(
        system, task.positions, features, task.temperature_K, task.timestep_ps,
        task.friction_per_ps, seed=task.seed, platform=task.platform,
        box_vectors=task.box_vectors, force_group=task.force_group, cpu_threads=task.cpu_threads,
        opes=task.opes, opes_state=task.opes_state,
        record_potential=task.record_potential or task.explore is not None,
    )
    if task.velocities is not None:
        walker.set_state({"positions": task.positions, "velocities": task.velocities,
                          "box_vectors": task.box_vectors, "time_ps": task.time_ps})
    walker.time_ps = float(task.time_ps)
    if task.bias is not None:
        walker.set_bias(Bias.from_dict(task.bias))

    n_frames = task.n_steps // task.report_interval
    # segments hold whole numbers of snapshot intervals, so snapshots fall on global frames
    segment = max(task.snapshot_every,
                  task.segment_frames // task.snapshot_every * task.snapshot_every)
    piece = WalkerRound(walker, n_frames, task.report_interval, task.snapshot_every,
                        task.explore, task.seed + 1, task.dcd_every, task.box_vectors)
    faults = []
    while piece.left:
        saved = walker.get_state()
        try:
            piece.run(segment, progress=progress)
        except MDError as error:
            if len(faults) >= task.max_retries:
                raise WalkerFailed(
                    f"{task.label} blew up {len(faults) + 1} times (last at time step "
                    f"{walker.timestep_ps:.3g} ps): {error}. Its frames are not stored; other "
                    f"walkers' are. Lower sampling.timestep (now {task.timestep_ps} ps), raise "
                    f"sampling.max_retries, or check the system"
                ) from error
            faults.append(f"t = {saved['time_ps']:.3f} ps: {error}; retrying from the "
                          f"checkpoint with time step {walker.timestep_ps / 2:.4g} ps")
            log.warning("%s: %s", task.label, faults[-1])
            walker.set_state(saved)
            walker.set_timestep(walker.timestep_ps / 2)
            continue
    return piece.result(task.round_index, task.walker_index, task.seed,
                        time.perf_counter() - t0, faults)


def exploration_temperatures(results: Sequence[WalkerResult]) -> list[float]:
    """The temperatures of an exploring round's MBAR states: every walker's ladder, merged
    (equal temperatures are one state), increasing, K.
    """
    return sorted({float(t) for r in results for t in r.ladder_temperatures_K})


def round_frames(results: Sequence[WalkerResult]):
    """A round's :class:`rave.md.frames.Frames` from its walkers, in walker order.

    An exploring round keeps the frames that count (``WalkerResult.counted``) and labels each
    with its MBAR state, an index into :func:`exploration_temperatures`.
    """
    from ..md.frames import Frames

    exploring = all(r.ladder_state is not None for r in results)
    temperatures = np.asarray(exploration_temperatures(results)) if exploring else None
    keep = [np.ones(len(r), dtype=bool) if r.counted is None else r.counted for r in results]
    has_potential = all(r.potential_kjmol is not None for r in results)

    def joined(values) -> np.ndarray:
        return np.concatenate([v[k] for v, k in zip(values, keep, strict=True)])

    state = None
    if exploring:
        state = joined([np.searchsorted(temperatures, r.ladder_temperatures_K)[r.ladder_state]
                        for r in results]).astype(np.int64)
    return Frames(
        joined([r.features for r in results]),
        joined([r.bias_kjmol for r in results]),
        joined([r.time_ps for r in results]),
        walker=joined([np.full(len(r), r.walker_index, dtype=np.int64) for r in results]),
        potential_kjmol=joined([r.potential_kjmol for r in results]) if has_potential else None,
        state=state,
    )


def _run_walker_quietly(task: WalkerTask) -> WalkerResult:
    """Entry point on Dask workers (no progress callback)."""
    return run_walker(task)


# ------------------------------------------------------------------------------ executors
class SerialExecutor:
    """Runs walkers one after the other in this process."""

    name = "serial"
    n_workers = 1

    def run(self, tasks: Sequence[WalkerTask], on_result: Callable[[WalkerResult], None],
            progress: Callable[[int], None] | None = None) -> list[BaseException]:
        """Run every task in turn; ``on_result`` is called as each finishes."""
        failures = []
        for task in tasks:
            try:
                on_result(run_walker(task, progress))
            except WalkerFailed as error:
                failures.append(error)
        return failures

    def close(self) -> None:
        """Release nothing (the executor holds no resources)."""
        pass


class DaskExecutor:
    """Runs walkers as tasks on a Dask cluster.

    A local cluster (``address=None``, processes, one thread each) or an existing scheduler at
    ``address``. Raises SchedulerUnreachable when the scheduler cannot be reached, RuntimeError when
    ``distributed`` is not installed.
    """

    name = "dask"

    def __init__(self, address: str | None = None, n_workers: int | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as error:  # pragma: no cover - a dependency
            raise RuntimeError("walkers on Dask need the 'distributed' package: "
                               "pip install distributed") from error
        self.address = address
        self._cluster = None
        # the scheduler's and workers' INFO chatter would drown the campaign's log
        logging.getLogger("distributed").setLevel(logging.ERROR)
        if address is None:
            n = n_workers or max(1, min(read_allowed_cores(), 4))
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(address, timeout="20s")
            except OSError as error:
                raise SchedulerUnreachable(
                    f"cannot reach the Dask scheduler at {address}: {error}. Start one with "
                    f"`dask scheduler` and workers with `dask worker {address}`, or leave "
                    f"--scheduler out to use a local cluster"
                ) from error
        self.n_workers = max(1, len(self.client.scheduler_info().get("workers", {})))

    def run(self, tasks: Sequence[WalkerTask], on_result: Callable[[WalkerResult], None],
            progress: Callable[[int], None] | None = None) -> list[BaseException]:
        """Submit every task; ``on_result`` is called as each finishes, in the order they finish."""
        from distributed import as_completed

        futures = [
            self.client.submit(_run_walker_quietly, task, pure=False,
                               key=f"rave-r{task.round_index}-w{task.walker_index}-{os.getpid()}"
                                   f"-{time.time_ns()}")
            for task in tasks
        ]
        sizes = {f.key: t.n_steps // t.report_interval for f, t in zip(futures, tasks,
                                                                       strict=True)}
        failures = []
        for future in as_completed(futures):
            try:
                result = future.result()
            except WalkerFailed as error:
                failures.append(error)
                continue
            on_result(result)
            if progress is not None:
                progress(sizes[future.key])
        return failures

    def close(self) -> None:
        """Close the client, and the local cluster when this executor started one."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(scheduler: str, n_walkers: int, n_workers: int | None = None):
    """The executor of ``scheduler``: serial, a local Dask cluster, or a scheduler address."""
    if scheduler == "serial" or (scheduler == "local" and n_walkers == 1):
        return SerialExecutor()
    if scheduler == "local":
        return DaskExecutor(None, n_workers or min(n_walkers, read_allowed_cores()))
    return DaskExecutor(scheduler)
