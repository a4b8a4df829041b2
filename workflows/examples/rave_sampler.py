"""RAVE in your own OpenMM script: alanine dipeptide in vacuum, F(phi) against the reference.

An ordinary OpenMM script (System, integrator, ``app.Simulation``) with one object from rave,
:class:`rave.RAVESampler`, built before the Simulation and stepped instead of it (as
``app.Metadynamics``). It runs the rounds ``rave run`` runs: unbiased round 0, then after each
round MBAR over every frame, the VAEs, the RC and the next round's OPES bias along it, round
lengths from the MD budget, until the RC and F converge or the budget is spent. The order
parameters are the sin and cos of phi and psi, so nobody tells it that phi is the slow one;
F(phi) is then computed from the reweighted frames and compared with the shipped reference
(workflows/benchmarks/alanine_dipeptide_reference.csv, a 100 ns OPES run on phi) over the
reference's bins within 6 kT of its minimum.

Run (from the repository root)::

    python workflows/examples/rave_sampler.py                 # 1.6M steps (3.2 ns)
    python workflows/examples/rave_sampler.py --quick         # 40k steps, small VAEs: seconds
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import openmm
from openmm import app, unit

import rave

HERE = Path(__file__).resolve().parent
SYSTEM_DIR = HERE.parent / "alanine_dipeptide"
REFERENCE = HERE.parent / "benchmarks" / "alanine_dipeptide_reference.csv"
#: atom indices (0-based) in alanine_dipeptide.pdb: phi = C(ACE) N CA C, psi = N CA C N(NME)
PHI, PSI = (4, 6, 8, 14), (6, 8, 14, 16)
#: the reference bins compared: F within this of the reference's minimum, kT
REGION_KT = 6.0


def run(budget: int = 1_600_000, quick: bool = False, seed: int = 1) -> dict:
    """Run the script; returns the sampler and F(phi) against the reference.

    Parameters
    ----------
    budget : int
        MD steps (2 fs each).
    quick : bool
        Small VAEs (seconds): a smoke test, not a converged result.
    seed : int
        Seeds the integrator, the velocities and the VAEs.

    Returns
    -------
    dict
        ``sampler``, ``phi`` (rad, per frame, in [-pi, pi]), ``centers`` and
        ``free_energy_kT`` (on the reference's bins), ``reference_kT``, ``region`` (the
        bins compared), ``rmse_kT``.
    """
    # --- your OpenMM script, with the sampler built before the Simulation -------------------
    pdb = app.PDBFile(str(SYSTEM_DIR / "alanine_dipeptide.pdb"))
    system = openmm.XmlSerializer.deserialize(
        (SYSTEM_DIR / "alanine_dipeptide_system.xml").read_text())
    features = [rave.Dihedral(atoms, function, periodic=False, name=f"{function}_{angle}")
                for angle, atoms in (("phi", PHI), ("psi", PSI)) for function in ("sin", "cos")]
    vae = {"models": 2, **({"hidden": [32, 32], "max_epochs": 4, "min_epochs": 2}
                           if quick else {})}
    sampler = rave.RAVESampler(system, features, 300 * unit.kelvin, vae=vae,
                               sampling={"max_total_steps": budget, "report_interval": 50,
                                         "seed": seed})
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond,
                                                 2 * unit.femtosecond)
    integrator.setRandomNumberSeed(seed)
    platform = openmm.Platform.getPlatformByName("Reference")  # fastest for 22 atoms
    simulation = app.Simulation(pdb.topology, system, integrator, platform)
    simulation.context.setPositions(pdb.positions)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, seed)
    sampler.step(simulation, budget)

    # --- F(phi) from the reweighted frames, on the reference's bins -------------------------
    reference = np.loadtxt(REFERENCE, delimiter=",", skiprows=1)
    centers, reference_kT = reference[:, 0], reference[:, 1]
    width = centers[1] - centers[0]
    edges = np.append(centers - width / 2, centers[-1] + width / 2)
    _, free_energy = sampler.getFreeEnergy("phi", bins=edges)  # from sin_phi and cos_phi
    region = reference_kT - reference_kT.min() < REGION_KT
    diff = free_energy[region] - reference_kT[region]
    rmse = (float(np.sqrt(np.mean((diff - diff.mean()) ** 2))) if np.isfinite(diff).all()
            else float("inf"))
    s = sampler.getFrames().features
    return {"sampler": sampler, "phi": np.arctan2(s[:, 0], s[:, 1]), "centers": centers,
            "free_energy_kT": free_energy, "reference_kT": reference_kT, "region": region,
            "rmse_kT": rmse}


def main(argv: list[str] | None = None) -> int:
    """Command line: run, then print the rounds, the RC and F(phi)'s error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=None,
                        help="MD steps, 2 fs each (default 1600000; --quick: 40000)")
    parser.add_argument("--quick", action="store_true", help="a smoke test in seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    budget = args.budget or (40_000 if args.quick else 1_600_000)
    out = run(budget, args.quick, args.seed)
    sampler = out["sampler"]
    names = sampler.bias_force.featureNames
    print(f"{len(sampler.records)} rounds, {sampler.stop_reason}; RC chi = "
          + " ".join(f"{c:+.3f}*{n}" for c, n in zip(sampler.coefficients, names, strict=True)))
    crossings = int(np.count_nonzero(np.diff(np.sign(out["phi"])) != 0))
    compared = int(out["region"].sum())
    print(f"F(phi) against the reference: {out['rmse_kT']:.2f} kT RMS over the {compared} "
          f"reference bins within {REGION_KT:g} kT of its minimum; phi changed sign "
          f"{crossings} times between frames")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
