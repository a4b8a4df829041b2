"""Benchmark: MD steps/s with and without the RAVE bias, as a ratio measured in one run.

Prints a table (and writes CSV with --csv). Unbiased and biased walkers are timed in the same
run, interleaved over repeats, stepping in chunks of ``report_interval`` with a frame recorded
(positions, features and bias energy) after each chunk, exactly as a campaign does. The bias is
a realistic one: built from an unbiased run's frames along a fixed RC.

    python -m workflows.benchmarks.bias_overhead [--system three_state] [--steps 200000]
        [--repeats 3] [--platforms Reference CPU] [--out DIR] [--csv PATH]
    python -m workflows.benchmarks.bias_overhead --system ligand_cavity --steps 500 \
        --report-interval 50 --platforms CPU

Writes ``bias_overhead.csv`` (each platform's median steps/s and the spread over repeats) and the
harness's record ``bias_overhead.json`` in a fresh folder under ``--out`` (default
``runs/benchmarks``). Run at two git revisions, ``python -m workflows.benchmarks.harness compare
OLD.json NEW.json`` compares the walker's speed between them.

Systems: a model-potential kind (one particle) or ``ligand_cavity`` (the ``small`` hydrophobic
methane system, ~5300 particles, or ``--size paper``, ~21,000; prepared by a short
minimisation and equilibration first). For the ligand cavity the table also gives ns/day.
On platforms other than Reference, model potentials run a tenth of ``--steps`` (the CPU
platform's per-step cost for one particle is ~100x Reference's).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from rave.campaign.config import config_from_dict
from rave.campaign.simsystem import build_simulation_system
from rave.learn.bias import Bias, build_bias_grid
from rave.md.walker import Walker
from rave.units import kT_kjmol

from . import harness

TITLE = "Bias overhead: MD steps/s with and without the RAVE bias, interleaved"

TEMPERATURE_K = 300.0


def _system(name: str, size: str = "small", prepare_steps: int = 500):
    """(simulation system, start positions, RC direction)."""
    if name == "ligand_cavity":
        config = config_from_dict({"system": {
            "kind": "ligand_cavity", "size": size, "prepare_steps": prepare_steps,
            "minimize_iterations": 50}})
        sim = build_simulation_system(config)
        start = sim.prepare(TEMPERATURE_K, "CPU", 1)["positions"]
        return sim, start, np.array([1.0, 0.0, 0.0])  # chi = z
    sim = build_simulation_system(config_from_dict({"system": {"kind": name}}))
    return sim, sim.positions, np.array([1.0, 1.0]) / np.sqrt(2.0)


def _walker(sim, start, platform: str, with_bias: bool, seed: int) -> Walker:
    return Walker(sim.system, start, sim.features, TEMPERATURE_K, sim.timestep_ps,
                  sim.friction_per_ps, seed=seed, platform=platform, with_bias=with_bias,
                  box_vectors=sim.box_vectors)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="three_state")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--report-interval", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--platforms", nargs="+", default=["Reference", "CPU"])
    parser.add_argument("--size", default="small", choices=("small", "paper"),
                        help="ligand_cavity size")
    parser.add_argument("--prepare-steps", type=int, default=500,
                        help="ligand_cavity equilibration steps before timing")
    parser.add_argument("--csv", help="also write the table here")
    parser.add_argument("--out", type=Path, default=harness.DEFAULT_OUT,
                        help="parent of the fresh output folder")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.steps < args.report_interval or args.report_interval < 1:
        parser.error(f"need --repeats >= 1 and --steps >= --report-interval >= 1. You supplied "
                     f"--repeats {args.repeats}, --steps {args.steps}, --report-interval "
                     f"{args.report_interval}")
    bench = harness.BenchmarkRun("bias_overhead", TITLE, argv, args.out)

    sim, start, c = _system(args.system, args.size, args.prepare_steps)
    model_potential = sim.potential is not None
    # a realistic bias: built from an unbiased run along the RC c
    warm = _walker(sim, start, args.platforms[0], False, 0)
    frames = warm.run(100_000 if model_potential else args.steps, args.report_interval)
    bias = Bias(c, build_bias_grid(frames.features @ c, None, kT_kjmol(TEMPERATURE_K)))

    rows = []
    for platform in args.platforms:
        steps_per_s = {False: [], True: []}
        for repeat in range(args.repeats):
            for with_bias in (False, True):
                walker = _walker(sim, start, platform, with_bias, seed=repeat + 1)
                if with_bias:
                    walker.set_bias(bias)
                steps = (args.steps if platform == "Reference" or not model_potential
                         else args.steps // 10)
                t0 = time.perf_counter()
                walker.run(steps, args.report_interval)
                steps_per_s[with_bias].append(steps / (time.perf_counter() - t0))
        unbiased, biased = np.median(steps_per_s[False]), np.median(steps_per_s[True])
        rows.append({
            "system": args.system, "platform": platform,
            "particles": sim.system.getNumParticles(), "steps_per_run": steps,
            "unbiased_steps_per_s": round(unbiased), "biased_steps_per_s": round(biased),
            "bias_cost_percent": round(100 * (1 - biased / unbiased), 1),
            "unbiased_min_steps_per_s": round(min(steps_per_s[False])),
            "unbiased_max_steps_per_s": round(max(steps_per_s[False])),
            "biased_min_steps_per_s": round(min(steps_per_s[True])),
            "biased_max_steps_per_s": round(max(steps_per_s[True])),
            "repeats": args.repeats,
            "unbiased_ns_per_day": round(unbiased * sim.timestep_ps * 86400 / 1000, 3),
            "biased_ns_per_day": round(biased * sim.timestep_ps * 86400 / 1000, 3),
        })
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))
    if args.csv:
        harness.write_csv(Path(args.csv), rows)
    harness.write_csv(bench.out / "bias_overhead.csv", rows)
    settings = {k: v for k, v in vars(args).items() if k not in ("csv", "out")}
    record = bench.write(rows, key=("system", "platform"), settings=settings,
                         seeds=list(range(1, args.repeats + 1)),
                         files={"table": "bias_overhead.csv"})
    print(f"wrote {record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
