"""How many CPU cores this process may use, and how to split them between tasks.

The learning step trains several VAE seeds; torch splits each matrix product over its
intra-op threads, which wait for each other at the end of every operation: when another
process is busy on one of those cores, every operation waits for the slowest thread. Two rules
avoid that here:

1. never give one task more intra-op threads than there are cores this process may use *and*
   that are free now (:func:`plan_threads`): threads that wait for each other must each have
   a core;
2. prefer independent tasks (one seed each, one intra-op thread) over threads of one task:
   a busy core slows only the task that shares it (see docs/benchmarks.md).

The cores a process may use are the smallest of: its CPU affinity mask
(``os.sched_getaffinity``), its cgroup CPU quota (``cpu.max`` of cgroup v2, or
``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` of v1, rounded up), ``OMP_NUM_THREADS`` when set,
and an explicit request (``[vae] threads``). "Free now" subtracts the cores other processes
kept busy over a short sample of ``/proc/stat`` (Linux; elsewhere every allowed core counts
as free).

Pure functions take their inputs (mask, quota, environment, busy cores) as arguments so that
tests can give them; the ``read_*`` helpers read them from the running system.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ThreadPlan",
    "allowed_cores",
    "busy_cores",
    "cgroup_cpu_limit",
    "omp_num_threads",
    "plan_threads",
    "read_allowed_cores",
    "read_busy_cores",
]

#: Most single-threaded tasks run at once per free core (memory, not speed, sets this).
MAX_TASKS_PER_CORE = 4
#: Seconds over which /proc/stat is sampled to count busy cores.
BUSY_SAMPLE_S = 0.25
#: A core counts as taken by others when they used more than this fraction of it (so that a
#: background daemon's blips do not cost a whole core).
BUSY_ROUNDING = 0.35


def omp_num_threads(environ: Mapping[str, str] | None = None) -> int | None:
    """The thread count that ``OMP_NUM_THREADS`` asks for, or None when unset or unusable.

    OpenMP allows a list (``"4,2"``: 4 at the outer level); the first entry counts.
    """
    value = (os.environ if environ is None else environ).get("OMP_NUM_THREADS", "").strip()
    if not value:
        return None
    try:
        n = int(value.split(",")[0])
    except ValueError:
        return None
    return n if n >= 1 else None


def cgroup_cpu_limit(root: str | os.PathLike = "/sys/fs/cgroup") -> float | None:
    """CPUs allowed by the cgroup CPU quota (e.g. 1.5), or None where no quota is set.

    Reads cgroup v2 ``cpu.max`` ("<quota> <period>" or "max <period>") or cgroup v1
    ``cpu/cpu.cfs_quota_us`` and ``cpu/cpu.cfs_period_us`` (quota -1: none).
    """
    root = Path(root)
    try:
        text = (root / "cpu.max").read_text().split()
        if len(text) == 2 and text[0] != "max":
            quota, period = float(text[0]), float(text[1])
            if quota > 0 and period > 0:
                return quota / period
        if text:
            return None
    except (OSError, ValueError):
        pass
    for folder in (root / "cpu", root / "cpu,cpuacct"):
        try:
            quota = float((folder / "cpu.cfs_quota_us").read_text())
            period = float((folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        if quota > 0 and period > 0:
            return quota / period
        return None
    return None


def allowed_cores(
    affinity: Iterable[int] | None,
    cpu_count: int | None,
    quota_cpus: float | None = None,
    omp_threads: int | None = None,
    requested: int | None = None,
) -> int:
    """Cores this process may use: the smallest of the limits that are set (at least 1)."""
    limits = [len(set(affinity)) if affinity is not None else (cpu_count or 1)]
    if quota_cpus is not None and quota_cpus > 0:
        limits.append(max(1, math.ceil(quota_cpus - 1e-9)))
    if omp_threads:
        limits.append(int(omp_threads))
    if requested:
        limits.append(int(requested))
    return max(1, min(limits))


def read_allowed_cores(requested: int | None = None) -> int:
    """:func:`allowed_cores` of the running process (affinity, cgroup, OMP_NUM_THREADS)."""
    try:
        affinity = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        affinity = None
    return allowed_cores(affinity, os.cpu_count(), cgroup_cpu_limit(), omp_num_threads(),
                         requested)


def _cpu_times(text: str) -> dict[int, tuple[int, int]]:
    """(busy, total) jiffies per CPU from the text of /proc/stat."""
    out = {}
    for line in text.splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu" or not values:
            continue
        ticks = [int(v) for v in values[:8]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        out[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return out


def busy_cores(before: str, after: str, cpus: Iterable[int] | None = None) -> float:
    """Cores kept busy between two readings of /proc/stat, summed over ``cpus``."""
    t0, t1 = _cpu_times(before), _cpu_times(after)
    keys = sorted(set(t0) & set(t1) if cpus is None else set(cpus) & set(t0) & set(t1))
    total = 0.0
    for k in keys:
        busy = t1[k][0] - t0[k][0]
        span = t1[k][1] - t0[k][1]
        if span > 0:
            total += min(1.0, max(0.0, busy / span))
    return total


def read_busy_cores(interval_s: float = BUSY_SAMPLE_S) -> float:
    """Cores of this process's affinity mask that other processes kept busy over ``interval_s``.

    This process's own CPU time over the interval is subtracted: its idle thread pools (e.g.
    OpenBLAS's, which spin for a while after each call) would otherwise count as another
    process's load.
    """
    stat = Path("/proc/stat")
    try:
        own_before = _own_cpu_s()
        wall_before = time.perf_counter()
        before = stat.read_text()
        time.sleep(interval_s)
        after = stat.read_text()
        own = (_own_cpu_s() - own_before) / max(time.perf_counter() - wall_before, 1e-9)
        cpus = os.sched_getaffinity(0)
    except (OSError, AttributeError):
        return 0.0
    return max(0.0, busy_cores(before, after, cpus) - own)


def _own_cpu_s() -> float:
    """CPU seconds this process (all its threads) has used."""
    times = os.times()
    return times.user + times.system


@dataclass(frozen=True)
class ThreadPlan:
    """How to run ``tasks`` independent CPU tasks."""

    workers: int
    intra_op_threads: int
    cores: int
    allowed: int
    busy_elsewhere: float

    def describe(self) -> str:
        """The plan in words, for the log."""
        busy = (f", {self.busy_elsewhere:.1f} busy with other processes"
                if self.busy_elsewhere >= BUSY_ROUNDING else "")
        return (f"{self.workers} task(s) at once x {self.intra_op_threads} thread(s) on "
                f"{self.cores} of {self.allowed} allowed core(s){busy}")


def plan_threads(tasks: int, allowed: int, busy_elsewhere: float = 0.0) -> ThreadPlan:
    """Split the free cores between ``tasks`` independent tasks."""
    if tasks < 1:
        raise ValueError(f"tasks must be >= 1. You supplied {tasks}")
    if allowed < 1:
        raise ValueError(f"allowed must be >= 1. You supplied {allowed}")
    taken = math.floor(max(0.0, busy_elsewhere) + (1.0 - BUSY_ROUNDING))
    cores = max(1, allowed - taken)
    workers = min(tasks, MAX_TASKS_PER_CORE * cores)
    return ThreadPlan(workers=workers, intra_op_threads=cores if workers == 1 else 1,
                      cores=cores, allowed=allowed, busy_elsewhere=float(busy_elsewhere))
