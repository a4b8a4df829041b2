"""Benchmark: rave's MBAR solver (``rave.stats.mbar.solve_mbar``) against ``pymbar.MBAR``.

States as a campaign produces them: ``V_k = -lam_k U`` with ``lam_k`` evenly in [0, 0.9] (a bias
that fills the wells step by step, like the blocks of an adaptive OPES bias, up to 32 states per
round) on the double well ``U/kT = 8 (x^2 - 1)^2 + 0.5 x`` (barrier ~8 kT). Each state's frames
are drawn exactly from ``exp(-U/kT - V_k/kT)`` on a fine grid; the frames are split evenly over
the states. Both solvers start from ``f = 0`` and are asked for ``1e-12`` (pymbar's relative
tolerance) and ``1e-10`` kT (rave's self-consistency error). The table gives the wall time of
each and the largest difference of their ``f_k``, kT.

    python workflows/benchmarks/mbar_solver.py 5x10000 5x100000 32x100000 200x10000 200x100000

Needs pymbar (``pip install -e ".[test]"``). Results are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import time

import numpy as np

from rave.stats import solve_mbar

#: default (states, frames) sizes of the table
DEFAULT_SIZES = ((5, 10_000), (5, 100_000), (32, 100_000), (200, 10_000), (200, 100_000))


def double_well_states(
    n_states: int, n_frames: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Reduced biases ``u_kn`` (shape (n_states, n_frames)) and frames per state ``N_k``."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(-2.0, 2.0, 4001)
    reduced_u = 8.0 * (grid**2 - 1.0) ** 2 + 0.5 * grid
    lam = np.linspace(0.0, 0.9, n_states)
    n_k = np.full(n_states, n_frames // n_states)
    n_k[: n_frames - n_k.sum()] += 1
    x = []
    for k in range(n_states):
        p = np.exp(-(1.0 - lam[k]) * (reduced_u - reduced_u.min()))
        jitter = rng.uniform(-5e-4, 5e-4, n_k[k])  # off the grid points
        x.append(rng.choice(grid, size=n_k[k], p=p / p.sum()) + jitter)
    x = np.concatenate(x)
    return -lam[:, None] * (8.0 * (x**2 - 1.0) ** 2 + 0.5 * x)[None, :], n_k


def _pymbar():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import pymbar  # its import banner and import time stay out of the measurement
    logging.getLogger("pymbar").setLevel(logging.ERROR)
    return pymbar


def measure(n_states: int, n_frames: int) -> dict:
    """Wall times (s) of both solvers on one data set and the largest difference of f_k (kT)."""
    pymbar = _pymbar()
    u_kn, n_k = double_well_states(n_states, n_frames)
    start = time.perf_counter()
    f_pymbar = pymbar.MBAR(u_kn, n_k, relative_tolerance=1e-12, initialize="zeros").f_k
    t_pymbar = time.perf_counter() - start
    start = time.perf_counter()
    f_rave, error = solve_mbar(u_kn, n_k)
    t_rave = time.perf_counter() - start
    return {
        "states": n_states,
        "frames": n_frames,
        "pymbar_s": t_pymbar,
        "rave_s": t_rave,
        "max_df_kT": float(np.max(np.abs((f_rave - f_rave[0]) - (f_pymbar - f_pymbar[0])))),
        "rave_error_kT": error,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", help="KxN: states x frames (default: the table)")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes] or DEFAULT_SIZES
    print(f"{'K':>4} {'N':>7} {'pymbar s':>9} {'rave s':>7} {'speed-up':>8} {'max|df| kT':>11}")
    rows = []
    for n_states, n_frames in sizes:
        r = measure(n_states, n_frames)
        rows.append(r)
        print(
            f"{n_states:>4} {n_frames:>7} {r['pymbar_s']:9.2f} {r['rave_s']:7.2f} "
            f"{r['pymbar_s'] / r['rave_s']:8.1f} {r['max_df_kT']:11.1e}",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    main()
