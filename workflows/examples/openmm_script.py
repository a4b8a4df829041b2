"""RAVE in your own OpenMM script: alanine dipeptide in vacuum, two rounds.

The script is an ordinary OpenMM script (your System, integrator, ``app.Simulation``) with
three additions from rave:

1. ``rave.BiasForce(system, features, temperature)`` before the Simulation is made: the
   RAVE bias, zero at first, in a force group it picks itself;
2. ``rave.CVReporter(file, interval, features, bias=bias_force)`` in ``simulation.reporters``:
   one row per frame, the order parameters (sin and cos of phi and psi) and the bias energy;
3. between rounds, one RAVE step on the recorded arrays, ``rave.RAVE(...).fit(X,
   log_weights).fetch_model()`` (VAEs with a 1-D latent, the linear RC chi = c . s fitted to
   the latent, spurious models dropped), its bias V = kT ln P(chi) (``model.bias(kT)``) and
   ``bias_force.updateBias(simulation.context, bias)``: the same Simulation goes on, biased.

After the biased round the frames of both rounds are reweighted by MBAR for the unbiased
ensemble: ``rave.stats.reweight_rounds`` evaluates each round's bias on every recorded frame.

A trajectory for mdtraj: pass ``--dcd``, which adds OpenMM's own
``app.DCDReporter(path, interval)`` beside the CVReporter; frame k of the DCD is row k of the
CV file.

Run (from the repository root)::

    python workflows/examples/openmm_script.py --out runs/openmm_script
    python workflows/examples/openmm_script.py --quick --out /tmp/openmm_script

The first runs 50,000 steps (100 ps) per round and trains two VAEs of the campaign's size
(most of its time); the second (``--quick``) runs 5,000 steps per round and small VAEs in
about ten seconds: a smoke test, not a converged result.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import openmm
from openmm import app, unit

import rave
from rave.md.features import Dihedral

#: the system files of workflows/alanine_dipeptide (written by its make_system.py)
SYSTEM_DIR = Path(__file__).resolve().parent.parent / "alanine_dipeptide"
TEMPERATURE = 300.0 * unit.kelvin
TIMESTEP = 2.0 * unit.femtosecond
FRICTION = 1.0 / unit.picosecond
#: atom indices (0-based) in alanine_dipeptide.pdb: phi = C(ACE) N CA C, psi = N CA C N(NME)
PHI = (4, 6, 8, 14)
PSI = (6, 8, 14, 16)


def backbone_features() -> list:
    """sin and cos of the backbone dihedrals phi and psi (as alanine_dipeptide.toml).

    Returns
    -------
    list of rave.md.features.Dihedral
        sin_phi, cos_phi, sin_psi, cos_psi; non-periodic (the System is in vacuum).
    """
    return [Dihedral(atoms, function, periodic=False, name=f"{function}_{angle}")
            for angle, atoms in (("phi", PHI), ("psi", PSI)) for function in ("sin", "cos")]


def record_round(simulation: app.Simulation, path: Path, steps: int, interval: int,
                 features: list, bias_force: rave.BiasForce, dcd: bool) -> rave.md.CVData:
    """Run ``steps`` MD steps recorded by a CVReporter (and OpenMM's DCDReporter if asked).

    Parameters
    ----------
    simulation : openmm.app.Simulation
    path : pathlib.Path
        The CV file of the round (and, with ``dcd``, the trajectory beside it, ``.dcd``).
    steps, interval : int
        MD steps, and steps between recorded frames.
    features : list of rave.md.features.Feature
    bias_force : rave.BiasForce
    dcd : bool

    Returns
    -------
    rave.md.CVData
        The round's rows: time_ps, features, bias_kjmol, names.
    """
    reporters = [rave.CVReporter(path, interval, features, bias=bias_force)]
    if dcd:  # OpenMM's own trajectory reporter: frame k is row k of the CV file
        reporters.append(app.DCDReporter(str(path.with_suffix(".dcd")), interval))
    simulation.reporters.extend(reporters)
    simulation.step(steps)
    for reporter in reporters:
        simulation.reporters.remove(reporter)
    reporters[0].close()
    return rave.read_cv(path)


def run_example(out: Path, steps: int = 50_000, interval: int = 50, quick: bool = False,
                dcd: bool = False, seed: int = 1) -> dict:
    """The two rounds; returns what the test and the printout use.

    Parameters
    ----------
    out : pathlib.Path
        Directory for round0_cv.txt and round1_cv.txt (and .dcd); files there are refused.
    steps : int
        MD steps per round (2 fs each).
    interval : int
        Steps between recorded frames.
    quick : bool
        Small VAEs (2 x 32, few epochs): seconds instead of minutes.
    dcd : bool
        Also write each round's trajectory with OpenMM's DCDReporter.
    seed : int
        Seeds the integrator, the velocities and the VAEs.

    Returns
    -------
    dict
        ``rounds`` (the CVData of each round), ``bias`` (the Bias of round 1), ``kl``,
        ``log_weights`` and ``ess`` (MBAR over both rounds), ``kT`` (kJ/mol).
    """
    from rave.stats import reweight_rounds

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"round{k}_cv.txt" for k in (0, 1)]
    for path in paths:
        if path.exists():
            raise FileExistsError(f"{path} exists; give another --out for a new run")

    # --- your OpenMM script ------------------------------------------------------------------
    pdb = app.PDBFile(str(SYSTEM_DIR / "alanine_dipeptide.pdb"))
    system = openmm.XmlSerializer.deserialize(
        (SYSTEM_DIR / "alanine_dipeptide_system.xml").read_text())
    features = backbone_features()
    bias_force = rave.BiasForce(system, features, TEMPERATURE)  # before the Simulation
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE, FRICTION, TIMESTEP)
    integrator.setRandomNumberSeed(seed)
    # Reference is the fastest platform for 22 atoms; use CPU or CUDA for a real system
    platform = openmm.Platform.getPlatformByName("Reference")
    simulation = app.Simulation(pdb.topology, system, integrator, platform)
    simulation.context.setPositions(pdb.positions)
    simulation.context.setVelocitiesToTemperature(TEMPERATURE, seed)

    # --- round 0: unbiased ------------------------------------------------------------------
    round0 = record_round(simulation, paths[0], steps, interval, features, bias_force, dcd)

    # --- the RAVE step on the recorded arrays, then the same Simulation, biased -------------
    # two VAEs (seeds seed, seed + 1) of the campaign's size, or small ones for --quick
    vae = (dict(hidden=(32, 32), max_epochs=4, min_epochs=2, frames_per_epoch=2048) if quick
           else None)
    model = rave.RAVE(n_models=2, vae=vae, seed=seed).fit(round0.features).fetch_model()
    bias, kl = model.bias(bias_force.kT), model.kl_divergence  # V(chi) = kT ln P(chi)
    bias_force.updateBias(simulation.context, bias)
    round1 = record_round(simulation, paths[1], steps, interval, features, bias_force, dcd)

    # --- MBAR over both rounds: round 0 unbiased, round 1 under bias ------------------------
    reweighted = reweight_rounds([round0.features, round1.features], [None, bias],
                                 bias_force.kT)
    return {"rounds": [round0, round1], "bias": bias, "kl": kl, "kT": bias_force.kT,
            "log_weights": reweighted.log_weights, "ess": reweighted.effective_sample_size,
            "paths": paths}


def _phi_positive(data: np.ndarray) -> np.ndarray:
    """Frames with phi > 0 (C7ax / alpha_L, the slow transition of alanine dipeptide)."""
    return data[:, 0] > 0  # sin(phi) > 0


def main(argv: list[str] | None = None) -> int:
    """Command line: run the two rounds and print the RC, the bias check and phi > 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/openmm_script"),
                        help="directory for the CV files (default: runs/openmm_script)")
    parser.add_argument("--steps", type=int, default=None,
                        help="MD steps per round, 2 fs each (default 50000; --quick: 5000)")
    parser.add_argument("--interval", type=int, default=None,
                        help="steps between frames (default 50; --quick: 25)")
    parser.add_argument("--quick", action="store_true",
                        help="short rounds and small VAEs: a smoke test in seconds")
    parser.add_argument("--dcd", action="store_true",
                        help="also write each round's trajectory (OpenMM's DCDReporter)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    steps = args.steps or (5_000 if args.quick else 50_000)
    interval = args.interval or (25 if args.quick else 50)
    result = run_example(args.out, steps, interval, args.quick, args.dcd, args.seed)

    bias, (round0, round1) = result["bias"], result["rounds"]
    names = round0.names
    print("RC: chi = " + " ".join(f"{c:+.3f}*{n}" for c, n in zip(bias.coefficients, names,
                                                                   strict=True))
          + f"  (KL {result['kl']:.3f})")
    applied = np.max(np.abs(round1.bias_kjmol - bias.energy(round1.features)))
    print(f"round 1: bias from {bias.grid.values_kjmol.min():.1f} to 0 kJ/mol; OpenMM's and "
          f"numpy's bias energies of its {len(round1.time_ps)} frames agree within "
          f"{applied:.1e} kJ/mol")
    frames = np.concatenate([round0.features, round1.features])
    weights = np.exp(result["log_weights"])
    print(f"phi > 0: {_phi_positive(round0.features).mean():.1%} of the unbiased frames, "
          f"{_phi_positive(round1.features).mean():.1%} of the biased ones; reweighted "
          f"(MBAR, both rounds, ESS {result['ess']:.0f} of {len(frames)} frames): "
          f"{weights[_phi_positive(frames)].sum():.1%}")
    print("CV files: " + ", ".join(str(p) for p in result["paths"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
