"""Benchmark: walker throughput (frames/s) serial vs 1 and 2 local Dask workers.

The same walker tasks (same seeds, same starting state, the system's own MD settings) run:
serially in this process, and as Dask tasks on a local cluster of 1 and of 2 worker processes
(one thread each). The Dask timings include submitting the tasks (the System XML travels with
each), running them and collecting the frames; the cluster start-up is timed separately (a
campaign pays it once, not per round). The scheduling overhead per round is the Dask wall time
minus the serial wall time of the same tasks on one worker.

    python -m workflows.benchmarks.walker_scaling [--system alanine_dipeptide] [--walkers 2]
        [--steps 50000] [--repeats 2] [--csv PATH] [--out DIR]

Writes ``walker_scaling.csv`` (the table), ``walker_scaling_runs.csv`` (every repeat) and the
harness's record ``walker_scaling.json`` in a fresh folder under ``--out`` (default
``runs/benchmarks``).

Systems: ``alanine_dipeptide`` (22 atoms, vacuum, the bring-your-own example; Reference
platform) or any model-potential kind (``rotated_double_well``, ``three_state``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import openmm

from rave.campaign.config import config_from_dict, load_config
from rave.campaign.simsystem import build_simulation_system
from rave.campaign.walkers import DaskExecutor, SerialExecutor, WalkerTask

from . import harness

TITLE = "Walker throughput: serial against 1 and 2 local Dask workers"
WORKFLOWS = Path(__file__).resolve().parents[1]


def _simulation(name: str):
    if name == "alanine_dipeptide":
        config = load_config(WORKFLOWS / "alanine_dipeptide" / "alanine_dipeptide.toml")
    else:
        config = config_from_dict({"system": {"kind": name}})
    return config, build_simulation_system(config)


def _tasks(config, sim, n_walkers: int, n_steps: int, report_interval: int,
           threads: int | None) -> list[WalkerTask]:
    xml = openmm.XmlSerializer.serialize(sim.system)
    features = tuple(f.to_dict() for f in sim.features)
    return [
        WalkerTask(
            round_index=0, walker_index=k, system_xml=xml, features=features,
            positions=np.asarray(sim.positions, float), velocities=None,
            box_vectors=sim.box_vectors, time_ps=0.0, bias=None,
            temperature_K=config.system.temperature, timestep_ps=sim.timestep_ps,
            friction_per_ps=sim.friction_per_ps, seed=100 + k, platform="auto", force_group=30,
            n_steps=n_steps, report_interval=report_interval,
            snapshot_every=max(1, n_steps // report_interval // 20), cpu_threads=threads,
        )
        for k in range(n_walkers)
    ]


def _timed(executor, tasks) -> tuple[float, int]:
    frames = []
    t0 = time.perf_counter()
    failures = executor.run(tasks, lambda r: frames.append(len(r)))
    wall = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"walkers failed: {failures}")
    return wall, sum(frames)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="alanine_dipeptide")
    parser.add_argument("--walkers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50_000, help="MD steps per walker")
    parser.add_argument("--report-interval", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--csv", help="also write the table here")
    parser.add_argument("--out", type=Path, default=harness.DEFAULT_OUT,
                        help="parent of the fresh output folder")
    args = parser.parse_args(argv)
    if args.walkers < 1 or args.repeats < 1 or args.steps < args.report_interval:
        parser.error(f"need --walkers >= 1, --repeats >= 1 and --steps >= --report-interval. "
                     f"You supplied --walkers {args.walkers}, --repeats {args.repeats}, --steps "
                     f"{args.steps}, --report-interval {args.report_interval}")
    bench = harness.BenchmarkRun("walker_scaling", TITLE, argv, args.out)

    config, sim = _simulation(args.system)
    cores = os.cpu_count() or 1
    print(f"{args.system}: {sim.system.getNumParticles()} particles, {args.walkers} walkers x "
          f"{args.steps} steps, {cores} cores", flush=True)
    rows = []
    serial = SerialExecutor()
    tasks = _tasks(config, sim, args.walkers, args.steps, args.report_interval, None)
    for repeat in range(args.repeats):
        wall, frames = _timed(serial, tasks)
        rows.append({"mode": "serial (in process)", "workers": 1, "repeat": repeat,
                     "startup_s": 0.0, "wall_s": wall, "frames": frames})
        print(f"  serial        repeat {repeat}: {wall:.2f} s", flush=True)
    for n_workers in (1, 2):
        t0 = time.perf_counter()
        executor = DaskExecutor(None, n_workers)
        startup = time.perf_counter() - t0
        threads = max(1, cores // n_workers)
        tasks = _tasks(config, sim, args.walkers, args.steps, args.report_interval, threads)
        try:
            for repeat in range(args.repeats):
                wall, frames = _timed(executor, tasks)
                rows.append({"mode": "dask local", "workers": n_workers, "repeat": repeat,
                             "startup_s": startup, "wall_s": wall, "frames": frames})
                print(f"  dask {n_workers} worker(s) repeat {repeat}: {wall:.2f} s "
                      f"(cluster start {startup:.1f} s)", flush=True)
        finally:
            executor.close()

    serial_best = min(r["wall_s"] for r in rows if r["workers"] == 1 and r["startup_s"] == 0)
    print(f"\n{'mode':<22} {'workers':>7} {'best wall s':>11} {'frames/s':>9} "
          f"{'vs serial':>9} {'overhead s/round':>16} {'cluster start s':>15}")
    table = []
    for mode, workers in (("serial (in process)", 1), ("dask local", 1), ("dask local", 2)):
        mine = [r for r in rows if r["mode"] == mode and r["workers"] == workers]
        best = min(r["wall_s"] for r in mine)
        median_wall, _, worst = harness.spread([r["wall_s"] for r in mine])
        frames = mine[0]["frames"]
        overhead = best - serial_best if (mode, workers) == ("dask local", 1) else None
        entry = {"mode": mode, "workers": workers, "best_wall_s": round(best, 3),
                 "median_wall_s": round(median_wall, 3), "max_wall_s": round(worst, 3),
                 "frames_per_s": round(frames / best, 1),
                 "speedup_vs_serial": round(serial_best / best, 3),
                 "overhead_s_per_round": None if overhead is None else round(overhead, 3),
                 "cluster_start_s": round(mine[0]["startup_s"], 2)}
        table.append(entry)
        print(f"{mode:<22} {workers:>7} {best:>11.2f} {entry['frames_per_s']:>9.1f} "
              f"{entry['speedup_vs_serial']:>9.2f} "
              f"{'' if overhead is None else f'{overhead:.2f}':>16} "
              f"{entry['cluster_start_s']:>15.1f}")
    if args.csv:
        harness.write_csv(Path(args.csv), table)
        print(f"wrote {args.csv}")
    harness.write_csv(bench.out / "walker_scaling.csv", table)
    harness.write_csv(bench.out / "walker_scaling_runs.csv", rows)
    settings = {k: v for k, v in vars(args).items() if k not in ("csv", "out")}
    record = bench.write(table, key=("mode", "workers"), settings=settings,
                         seeds=list(range(args.repeats)),
                         files={"table": "walker_scaling.csv", "runs": "walker_scaling_runs.csv"})
    print(f"wrote {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
