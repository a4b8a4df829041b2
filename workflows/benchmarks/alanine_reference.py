"""Reference F(phi) of alanine dipeptide in vacuum: a long OPES run on phi and psi.

The alanine-dipeptide case of ``sampling_efficiency.py`` needs an F(phi) no method under test
produced. This script makes it with OPES (``openmm_opes.OPES``, not explore mode) biasing both
backbone dihedrals, so that neither slow degree of freedom is left to chance:

* System: ``workflows/alanine_dipeptide`` (ff14SB, vacuum, NoCutoff, HBonds constraints), the
  MD settings of the campaign's ``openmm`` kind (LangevinMiddleIntegrator, 300 K, 2 fs,
  friction 1 /ps), Reference platform unless ``--platform``.
* OPES on phi and psi (``BiasVariable`` of a ``CustomTorsionForce`` each, periodic on
  [-pi, pi), 128 grid points): barrier 50 kJ/mol (20 kT, above the ~35 kJ/mol the phi > 0
  basins lie above C7eq plus their barrier), a kernel every 500 steps, the variance updated
  every 100 steps.
* Frames every ``--report-interval`` steps (500 = 1 ps): phi, psi and the bias V_t the frame
  felt (read from OpenMM inside ``simulation.step``, before a kernel deposited at that step).
* F(phi): the frames after ``--discard`` (the first 10 %, while OPES fills the basins) weighted
  by exp(V_t/kT), the standard OPES reweighting (the bias is quasi-static by then), histogrammed
  in ``--bins`` bins of phi over [-pi, pi) and set to 0 at its minimum. Its uncertainty is the
  standard error over ``--blocks`` consecutive blocks of the kept frames, each block's profile
  aligned to the full profile by its mean over bins where both are finite (the estimator's
  offset is arbitrary).

Outputs in ``--out`` (default ``runs/benchmarks/alanine_reference_<time>/``, never reused; with
``alanine_reference.json``, the harness's record of the run: command, date, machine, versions,
settings and the summary below):
``frames.npz`` (step, phi, psi, bias_kjmol), ``alanine_dipeptide_reference.csv`` (bin centre,
F in kT, its block standard error, frames per bin) and a plain summary on stdout (ns, ns/day,
transitions between phi < 0 and phi > 0 counted with a 0.5 rad dead zone around 0 and pi).

Usage::

    python -m workflows.benchmarks.alanine_reference --ns 60 [--seed 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np
import openmm
from openmm import app
from openmm import unit as u

from . import harness

WORKFLOWS = Path(__file__).resolve().parent.parent
SYSTEM_DIR = WORKFLOWS / "alanine_dipeptide"
DEFAULT_OUT = harness.DEFAULT_OUT
#: atom indices (0-based) of alanine_dipeptide.pdb: phi = C(ACE) N CA C, psi = N CA C N(NME)
PHI = (4, 6, 8, 14)
PSI = (6, 8, 14, 16)
TEMPERATURE_K = 300.0
TIMESTEP_PS = 0.002
FRICTION_PER_PS = 1.0
KT_KJMOL = 0.0083144626 * TEMPERATURE_K
TITLE = "Reference F(phi) of alanine dipeptide: OPES on phi and psi"


def torsion_force(atoms: tuple[int, int, int, int]) -> openmm.CustomTorsionForce:
    """A force whose energy is the dihedral angle (rad) of ``atoms``: a CV for BiasVariable."""
    force = openmm.CustomTorsionForce("theta")
    force.addTorsion(*atoms, [])
    return force


def load_system() -> tuple[openmm.System, app.PDBFile]:
    """The vacuum alanine dipeptide of ``workflows/alanine_dipeptide`` (PDB and System XML)."""
    pdb = app.PDBFile(str(SYSTEM_DIR / "alanine_dipeptide.pdb"))
    system = openmm.XmlSerializer.deserialize((SYSTEM_DIR / "alanine_dipeptide_system.xml")
                                              .read_text())
    return system, pdb


def opes_free_energy(phi: np.ndarray, log_w: np.ndarray, n_bins: int) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """F(phi) in kT from weighted frames (log weights), bins over [-pi, pi); inf where empty.

    Returns
    -------
    f_kT, counts : numpy.ndarray
        F with its minimum at 0, and frames per bin.
    """
    edges = np.linspace(-math.pi, math.pi, n_bins + 1)
    index = np.clip(np.digitize(phi, edges) - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    shift = log_w.max()
    mass = np.bincount(index, weights=np.exp(log_w - shift), minlength=n_bins)
    with np.errstate(divide="ignore"):
        f = -np.log(mass)
    return f - f[np.isfinite(f)].min(), counts


def block_error(phi: np.ndarray, log_w: np.ndarray, n_bins: int, n_blocks: int,
                full: np.ndarray) -> np.ndarray:
    """Standard error of F per bin over consecutive blocks, each aligned to ``full`` by its mean
    difference over the bins finite in both (nan where fewer than 2 blocks sampled a bin)."""
    profiles = []
    for part_phi, part_w in zip(np.array_split(phi, n_blocks), np.array_split(log_w, n_blocks),
                                   strict=True):
        f, _ = opes_free_energy(part_phi, part_w, n_bins)
        both = np.isfinite(f) & np.isfinite(full)
        profiles.append(f - np.mean(f[both] - full[both]))
    stack = np.array(profiles)
    finite = np.isfinite(stack)
    n = finite.sum(axis=0)
    stack = np.where(finite, stack, np.nan)
    sd = np.full(stack.shape[1], np.nan)
    several = n >= 2
    sd[several] = np.nanstd(stack[:, several], axis=0, ddof=1)
    return sd / np.sqrt(np.maximum(n, 1))


def phi_transitions(phi: np.ndarray, dead_zone: float = 0.5) -> int:
    """Crossings between phi < 0 and phi > 0 basins, a frame within ``dead_zone`` rad of 0 or
    pi belonging to neither (the last basin visited counts)."""
    side = np.where((phi < -dead_zone) & (phi > -math.pi + dead_zone), -1,
                    np.where((phi > dead_zone) & (phi < math.pi - dead_zone), 1, 0))
    visited = side[side != 0]
    return int(np.count_nonzero(np.diff(visited)))


class FrameRecorder:
    """An OpenMM reporter: phi, psi and the OPES bias energy of every ``interval``-th step."""

    def __init__(self, opes, interval: int, n_frames: int) -> None:
        self.opes = opes
        self.interval = interval
        self.step = np.zeros(n_frames, dtype=np.int64)
        self.cv = np.zeros((n_frames, 2))
        self.bias = np.zeros(n_frames)
        self.n = 0

    def describeNextReport(self, simulation):  # noqa: N802 (OpenMM's reporter API)
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": None, "include": []}

    def report(self, simulation, state):
        if self.n == len(self.bias):
            return
        context = simulation.context
        self.step[self.n] = simulation.currentStep
        self.cv[self.n] = self.opes.getCollectiveVariables(simulation)
        self.bias[self.n] = self.opes.getBiasEnergy(context).value_in_unit(u.kilojoule_per_mole)
        self.n += 1


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ns", type=float, default=60.0, help="length of the run (ns)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report-interval", type=int, default=500)
    parser.add_argument("--barrier", type=float, default=50.0, help="OPES barrier (kJ/mol)")
    parser.add_argument("--pace", type=int, default=500)
    parser.add_argument("--variance-pace", type=int, default=100)
    parser.add_argument("--discard", type=float, default=0.1,
                        help="fraction of frames left out of F(phi) at the start")
    parser.add_argument("--bins", type=int, default=36)
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--platform", default="Reference")
    parser.add_argument("--chunk-ns", type=float, default=1.0,
                        help="frames and the CSV are written after each chunk")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.ns > 0 or not 0 <= args.discard < 1 or args.bins < 4 or args.blocks < 2:
        parser.error("need --ns > 0, 0 <= --discard < 1, --bins >= 4, --blocks >= 2")
    if args.report_interval < 1 or args.pace % args.variance_pace:
        parser.error("--report-interval >= 1, and --variance-pace must divide --pace")
    return args


def write_outputs(out: Path, rec: FrameRecorder, args: argparse.Namespace) -> tuple:
    """frames.npz and the reference CSV from the frames so far; returns (F, sigma, counts)."""
    n = rec.n
    np.savez(out / "frames.npz.tmp.npz", step=rec.step[:n], phi=rec.cv[:n, 0],
             psi=rec.cv[:n, 1], bias_kjmol=rec.bias[:n])
    (out / "frames.npz.tmp.npz").replace(out / "frames.npz")
    keep = slice(int(args.discard * n), n)
    phi, log_w = rec.cv[keep, 0], rec.bias[keep] / KT_KJMOL
    f, counts = opes_free_energy(phi, log_w, args.bins)
    sigma = block_error(phi, log_w, args.bins, args.blocks, f)
    centres = -math.pi + (np.arange(args.bins) + 0.5) * 2 * math.pi / args.bins
    tmp = out / "alanine_dipeptide_reference.csv.tmp"
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["phi_rad", "free_energy_kT", "sigma_kT", "frames"])
        for row in zip(centres, f, sigma, counts, strict=True):
            writer.writerow([f"{row[0]:.6f}", f"{row[1]:.6f}", f"{row[2]:.6f}", int(row[3])])
    tmp.replace(out / "alanine_dipeptide_reference.csv")
    return f, sigma, counts


def main(argv=None) -> int:
    args = parse_args(argv)
    from openmm_opes import OPES

    if args.out is not None and args.out.exists():
        raise SystemExit(f"--out {args.out} exists; give a new folder (an output folder is "
                         f"never reused)")
    bench = harness.BenchmarkRun("alanine_reference", TITLE, argv, folder=args.out)
    out = bench.out
    system, pdb = load_system()
    variables = [app.BiasVariable(torsion_force(atoms), -math.pi, math.pi, 0.3, True, 128)
                 for atoms in (PHI, PSI)]
    opes = OPES(system, variables, TEMPERATURE_K * u.kelvin, args.barrier * u.kilojoule_per_mole,
                args.pace, args.variance_pace)
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE_K * u.kelvin,
                                                 FRICTION_PER_PS / u.picosecond,
                                                 TIMESTEP_PS * u.picosecond)
    integrator.setRandomNumberSeed(args.seed)
    platform = openmm.Platform.getPlatformByName(args.platform)
    simulation = app.Simulation(pdb.topology, system, integrator, platform)
    simulation.context.setPositions(pdb.positions)
    simulation.context.setVelocitiesToTemperature(TEMPERATURE_K * u.kelvin, args.seed)
    n_steps = int(round(args.ns * 1000 / TIMESTEP_PS))
    n_steps -= n_steps % args.report_interval
    rec = FrameRecorder(opes, args.report_interval, n_steps // args.report_interval)
    simulation.reporters.append(rec)
    chunk = max(args.report_interval,
                int(args.chunk_ns * 1000 / TIMESTEP_PS) // args.report_interval
                * args.report_interval)
    print(f"alanine dipeptide reference: OPES on phi and psi, {args.ns:g} ns "
          f"({n_steps} steps), barrier {args.barrier:g} kJ/mol, {args.platform}; out {out}",
          flush=True)
    start = time.perf_counter()
    while simulation.currentStep < n_steps:
        opes.step(simulation, min(chunk, n_steps - simulation.currentStep))
        f, sigma, counts = write_outputs(out, rec, args)
        elapsed = time.perf_counter() - start
        ns = simulation.currentStep * TIMESTEP_PS / 1000
        print(f"{ns:7.2f} ns  {ns / elapsed * 86400:7.1f} ns/day  "
              f"transitions {phi_transitions(rec.cv[:rec.n, 0]):4d}  "
              f"F(phi>0 basin) - F(C7eq) {np.min(f[len(f) // 2:]):5.2f} kT", flush=True)
    sampled = counts > 0
    print(f"done: {rec.n} frames, F finite in {sampled.sum()}/{args.bins} bins, "
          f"median block sigma {np.nanmedian(sigma):.3f} kT", flush=True)
    summary = {"seed": args.seed, "ns": round(ns, 3), "ns_per_day": round(ns / elapsed * 86400, 2),
               "frames": rec.n, "phi_transitions": phi_transitions(rec.cv[:rec.n, 0]),
               "bins_sampled": int(sampled.sum()), "bins": args.bins,
               "median_block_sigma_kT": float(np.nanmedian(sigma))}
    bench.write([summary], key=("seed",), settings=vars(args), seeds=[args.seed],
                files={"reference": "alanine_dipeptide_reference.csv"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
