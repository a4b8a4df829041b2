"""The campaign's walker at two git revisions, interleaved in one process: steps/s and identity.

The walker of revision ``--rev`` (its ``rave`` package, extracted with ``git archive`` into a
temporary folder and imported as ``rave_old``) and the walker of this checkout run the same
biased rotated double well (a static bias along the slow direction, or OPES on top with
``--mode opes``; ``--mode plain`` runs without a bias) on the Reference platform, one after the
other, alternating which goes first, ``--repeats`` times. Each run records a frame every
``--report-interval`` steps and a snapshot every 20 frames. Prints each run's steps/s, the median,
minimum and maximum of both, and whether the first runs' frames (features, bias energies,
times, snapshots) are bit-identical.

Example (the walker before it became an ``app.Simulation``)::

    python workflows/benchmarks/walker_before_after.py --rev 75389f6 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TEMPERATURE_K = 300.0


def _old_rave(rev: str, into: Path) -> None:
    """Extract ``rave/`` of ``rev`` into ``into/rave_old`` (its imports are relative)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "rave"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    (into / "rave").rename(into / "rave_old")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", required=True, help="git revision of the walker to compare")
    parser.add_argument("--mode", default="static", choices=("static", "opes", "plain"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--report-interval", type=int, default=50)
    args = parser.parse_args(argv)

    from rave.systems.model_potentials import rotated_double_well

    with tempfile.TemporaryDirectory() as folder:
        _old_rave(args.rev, Path(folder))
        sys.path.insert(0, folder)
        import rave_old.learn.bias as old_bias
        import rave_old.md.walker as old_walker

        import rave.learn.bias as new_bias
        import rave.md.walker as new_walker

        potential = rotated_double_well(TEMPERATURE_K)
        c = np.asarray(potential.slow_direction)
        chi = np.linspace(-2.2, 2.2, 200)
        exact = potential.exact_free_energy(c, chi)
        values = -0.8 * potential.kT * (exact - exact.min())

        def walker(walker_module, bias_module):
            model = potential.build()
            kwargs = {"force_group": 30}
            if args.mode == "opes":
                kwargs["opes"] = {"coefficients": list(c), "chi_min": -2.5, "chi_max": 2.5,
                                  "n_points": 256, "barrier_kjmol": 25.0, "pace": 500,
                                  "variance_pace": 100, "explore": False, "block_kT": 1.0}
            if args.mode == "plain":
                kwargs["with_bias"] = False
            w = walker_module.Walker(model.system, model.positions, model.features,
                                     TEMPERATURE_K, potential.timestep_ps,
                                     potential.friction_per_ps, seed=3, platform="Reference",
                                     **kwargs)
            if args.mode != "plain":
                w.set_bias(bias_module.Bias(c, bias_module.BiasGrid(-2.2, 2.2,
                                                                    values - values.max())))
            w.run(20 * args.report_interval, args.report_interval)  # warm up
            return w

        modules = {"old": (old_walker, old_bias), "new": (new_walker, new_bias)}
        rates: dict[str, list[float]] = {"old": [], "new": []}
        first = {}
        for repeat in range(args.repeats):
            for name in (("old", "new") if repeat % 2 == 0 else ("new", "old")):
                w = walker(*modules[name])
                t0 = time.perf_counter()
                frames = w.run(args.steps, args.report_interval, snapshot_every=20)
                rates[name].append(args.steps / (time.perf_counter() - t0))
                first.setdefault(name, frames)
                print(f"repeat {repeat} {name}: {rates[name][-1]:,.0f} steps/s", flush=True)
    same = all(np.array_equal(getattr(first["old"], a), getattr(first["new"], a))
               for a in ("features", "bias_kjmol", "time_ps", "snapshots", "snapshot_frames"))
    for name, x in rates.items():
        print(f"{name} ({args.rev if name == 'old' else 'this checkout'}): median "
              f"{statistics.median(x):,.0f} steps/s, min {min(x):,.0f}, max {max(x):,.0f}")
    ratio = statistics.median(rates["new"]) / statistics.median(rates["old"])
    print(f"new/old median {ratio:.3f}; frames bit-identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
