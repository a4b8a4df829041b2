"""Benchmark: MD steps/s on a model potential with and without the RAVE bias.

Prints a table (and writes CSV with --csv). Unbiased and biased walkers are timed in the same
run, interleaved over repeats, stepping in chunks of ``report_interval`` with a frame recorded
(positions, features and bias energy) after each chunk, exactly as a campaign does.

    python workflows/bench_md.py [--steps 200000] [--repeats 3] [--platforms Reference CPU]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time

import numpy as np

from rave.bias import Bias, build_bias_grid
from rave.engine import Walker
from systems.model_potentials import make_model_potential


def _walker(potential, model, platform: str, with_bias: bool, seed: int) -> Walker:
    return Walker(model.system, model.positions, model.features, potential.temperature_K,
                  potential.timestep_ps, potential.friction_per_ps, seed=seed,
                  platform=platform, with_bias=with_bias)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="three_state")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--report-interval", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--platforms", nargs="+", default=["Reference", "CPU"])
    parser.add_argument("--csv", help="also write the table here")
    args = parser.parse_args(argv)

    potential = make_model_potential(args.system, 300.0)
    model = potential.build()
    # a realistic bias: built from an unbiased run along a diagonal RC
    warm = _walker(potential, model, "Reference", False, 0)
    frames = warm.run(100_000, args.report_interval)
    c = np.array([1.0, 1.0]) / np.sqrt(2.0)
    bias = Bias(c, build_bias_grid(frames.features @ c, None, potential.kT))

    rows = []
    for platform in args.platforms:
        steps_per_s = {False: [], True: []}
        for repeat in range(args.repeats):
            for with_bias in (False, True):
                walker = _walker(potential, model, platform, with_bias, seed=repeat + 1)
                if with_bias:
                    walker.set_bias(bias)
                steps = args.steps if platform == "Reference" else args.steps // 10
                t0 = time.perf_counter()
                walker.run(steps, args.report_interval)
                steps_per_s[with_bias].append(steps / (time.perf_counter() - t0))
        unbiased, biased = np.median(steps_per_s[False]), np.median(steps_per_s[True])
        rows.append({
            "system": args.system, "platform": platform,
            "steps_per_run": args.steps if platform == "Reference" else args.steps // 10,
            "unbiased_steps_per_s": round(unbiased), "biased_steps_per_s": round(biased),
            "bias_cost_percent": round(100 * (1 - biased / unbiased), 1),
        })
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, keys)
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
