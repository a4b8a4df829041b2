"""Benchmark: sampling efficiency on alanine dipeptide in vacuum, F(phi) against a long reference.

The molecular case of ``sampling_efficiency``: the same methods, error
measure and tables, on alanine dipeptide (ACE-ALA-NME, ff14SB, vacuum) instead of a model
potential. Every method runs from the PDB's minimised C7eq structure with the same MD settings,
those of the campaign's ``openmm`` kind: ``LangevinMiddleIntegrator``, 300 K, 2 fs, friction
1 /ps, HBonds constraints (the System XML), Reference platform, a frame every
``--report-interval`` steps (250 = 0.5 ps), integrator and velocities seeded by the seed. One
long run per method and seed is evaluated at checkpoints of cumulative MD steps (its prefixes).

System and order parameters (``workflows/alanine_dipeptide/``: ``alanine_dipeptide.pdb`` and
``alanine_dipeptide_system.xml``, 22 atoms, NoCutoff). The four backbone dihedrals, atoms as
mdtraj selections (0-based indices of the PDB):

* phi = C(ACE) N CA C (4, 6, 8, 14), psi = N CA C N(NME) (6, 8, 14, 16),
* omega1 = CH3(ACE) C(ACE) N CA (0, 4, 6, 8), omega2 = CA C N C(NME) (8, 14, 16, 18);

and the 8 order parameters sin and cos of each (``rave.md.features.Dihedral``; in this order:
sin_phi, cos_phi, sin_psi, cos_psi, sin_omega1, cos_omega1, sin_omega2, cos_omega2). Every
method records these 8 at every frame; phi of a frame is atan2(sin_phi, cos_phi), wrapped into
[-pi, pi).

Methods (``--methods``; the system is named ``alanine_dipeptide`` in the tables):

* ``plain_md``: unbiased MD (``rave.md.walker.Walker`` without bias).
* ``rave``: a ``rave.campaign.Campaign`` on the 8 order parameters (config built here: the
  ``[system]`` section of ``alanine_dipeptide.toml`` with absolute paths, the features above,
  1 walker, serial scheduler, Reference platform, ``[bias] method = "static"``, every other
  key the campaign's default) under a budget: ``[sampling] max_total_steps``
  (``--max-total-steps``, 2,000,000), ``first_round_steps`` (``--first-round-steps``,
  100,000, the unbiased round 0), ``steps_per_round`` (``--steps-per-round``, 400,000, the
  first biased round; later rounds adapt, ``rave.campaign.schedule``), ``rounds`` an upper bound
  (``--rounds``, 20), ``--models`` VAEs per round (2). Early stopping is off
  (``convergence.min_rounds = rounds + 1``), figures and progress bars are off. After round k
  F(phi) comes from the frames of rounds 0..k-1, weighted by MBAR (``rave.stats.mbar_reweight``)
  over their stored bias states (``rave.learn.bias.applied_states``, ``reduced_bias_matrix``), as
  ``sampling_efficiency.evaluate_rave`` does; its checkpoints are its round ends.
* ``rave_opes``: the same campaign with ``[bias] method = "opes"``: OPES along each round's
  learned RC within the round (``rave.md.opes``), with the OPES baseline's barrier, pace and
  variance pace (``opes_barrier_kjmol``, ``opes_pace``, ``opes_variance_pace``).
* ``rave_barrier``, ``rave_opes_barrier``: the two above with ``[coordinate] rc_choice =
  "barrier"`` (the VAE's RC, the most skewed direction and the previous RC compete; the
  highest barrier along F wins; ``rave.learn.anharmonic``); the two above pin ``"vae"``.
* ``metad_ideal``, ``metad_naive``: well-tempered ``openmm.app.Metadynamics`` on phi (ideal CV)
  or psi (naive CV), each a ``CustomTorsionForce("theta")`` on its four atoms, as
  ``BiasVariable(force, -pi, pi, sigma, periodic=True, gridWidth=128)``. Gaussian height
  1.2 kJ/mol (0.48 kT), sigma 0.35 rad (below the 0.5 rad standard deviation of phi in the
  phi < 0 basin in plain MD), bias factor 10, a Gaussian every 500 steps (1 ps). Frames are
  reweighted by the c(t) method (Tiwary and Parrinello 2015): log w = [V(s(t), t) - c(t)]/kT
  with the bias the frame was sampled under, c(t) over the distinct grid points
  (``sampling_efficiency.run_metadynamics``).
  ``metad_ideal_bias``: F(phi) = -(gamma/(gamma-1)) V(phi, t) from the bias itself.
* ``opes_ideal``, ``opes_naive``: OPES (``openmm_opes.OPES``, not explore mode, adaptive kernel
  width) on phi or psi, the same periodic grid: barrier 50 kJ/mol (20 kT; in the reference
  the phi > 0 basin lies ~3 kT above C7eq, behind barriers of ~15 kT at phi = 0 and ~25 kT at
  phi = 2.2 rad), a kernel every 500 steps, the variance updated every 100 steps. Frames are
  reweighted by exp(V_t(s_t)/kT) with the bias each frame was sampled under, read from OpenMM
  (``sampling_efficiency.run_opes``).
  ``opes_ideal_bias``: OPES's own estimate ``getFreeEnergy()`` along phi.

For every metadynamics and OPES run the bias OpenMM applied to the first 200 frames is compared
with the bias evaluated here from the recorded features (the grid's periodic spline at
atan2(sin, cos)); a difference above 1e-6 kJ/mol is printed as a warning.

Reference F(phi) (``--reference``, default
``workflows/benchmarks/alanine_dipeptide_reference.csv``): made by
``workflows/benchmarks/alanine_reference.py`` (see its docstring): a 100 ns OPES run biasing
phi and psi together (barrier 50 kJ/mol, same MD settings), frames after the first 10 %
reweighted by exp(V/kT), 36 bins of phi over [-pi, pi), with a block standard error per bin.
Its columns: phi_rad (bin centre), free_energy_kT, sigma_kT, frames. Its bins are the bins of
every method here.

Error measure (as ``sampling_efficiency.py``): F(phi) of a method's frames up to a checkpoint,
histogrammed (weighted) in the reference's bins (periodic: phi wrapped into [-pi, pi)),
compared with the reference over the bins where the reference F is within 6 kT of its minimum
(C7eq/C5 and the C7ax/alpha_L basin, not the barriers): RMSE after removing the best constant
offset (``profile_rmse``), infinite while a bin of that region has no frame (the fraction of
those bins covered is reported). Steps to 0.5 kT and to 0.2 kT (``--target``,
``--second-target``): the first checkpoint after which the RMSE stays at or below the target
(``steps_to_target``), and the wall time of the run up to it; medians and min-max over seeds,
ratio = median / RAVE's median. The reference has its own error (its sigma_kT, printed at the
start): an RMSE well below it cannot be resolved.

Transitions: crossings between the phi < 0 and phi > 0 basins, a frame within 0.5 rad of
phi = 0 or pi belonging to neither (the last basin visited counts), counted within each
continuous trajectory (RAVE: each round) up to each checkpoint.

Outputs (a fresh folder ``runs/benchmarks/alanine_dipeptide_<time>/`` under ``--out``, never
reused; RAVE campaigns in its ``campaigns/`` subfolder): the printed tables, ``--csv`` (default
``alanine_dipeptide.csv`` there: median and min-max RMSE, coverage and transitions per method
and checkpoint), ``*_to_target.csv`` (steps and wall time to 0.5 and 0.2 kT, ratio to RAVE),
``*_runs.csv`` (every run and checkpoint), ``*.png`` (RMSE vs MD steps), ``settings.json``
(every setting of the run, the reference file and its SHA-256) and ``alanine_dipeptide.json``,
the harness's result record (``workflows.benchmarks.harness``: command, date, machine,
versions, the settings and the steps-to-target rows).

Defaults: seeds 1 2 3; checkpoints 50k x 2^k steps up to 6.4M (every non-RAVE run is that long,
12.8 ns); RAVE as above. Measured speeds on the 2-core machine (shared, so upper
bounds on time; Reference platform, 400k-step runs, frames every 250 steps): plain MD ~86,000
steps/s, metadynamics ~56,000-61,000, OPES ~59,000-60,000; so one seed of the non-RAVE methods
takes ~10 min, RAVE's 2M steps ~0.5 min of MD plus its learning steps. ``--quick`` (1 seed,
checkpoints up to 20k steps, frames every 100 steps, RAVE 15k steps in 2 rounds with one small
VAE) is a smoke test of the pipeline, not a measurement; it runs in ~10 s.

Usage::

    python -m workflows.benchmarks.alanine_dipeptide [--quick] [--methods plain_md rave ...]
        [--seeds 1 2 3] [--budgets 50000 100000 ...] [--reference PATH]
        [--report-interval 250] [--max-total-steps 2000000] [--first-round-steps 100000]
        [--steps-per-round 400000] [--rounds 20] [--models 2] [--metad-height 1.2]
        [--metad-sigma 0.35] [--metad-bias-factor 10] [--metad-frequency 500]
        [--opes-barrier 50] [--opes-frequency 500] [--opes-variance-frequency 100]
        [--target 0.5] [--second-target 0.2] [--csv PATH] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rave.systems.registry import file_sha256

from . import harness
from . import sampling_efficiency as se

HERE = Path(__file__).resolve().parent
WORKFLOWS = HERE.parent
SYSTEM_DIR = WORKFLOWS / "alanine_dipeptide"
DEFAULT_REFERENCE = HERE / "alanine_dipeptide_reference.csv"
DEFAULT_OUT = harness.DEFAULT_OUT
TITLE = "Alanine dipeptide in vacuum: MD steps to an accurate F(phi), the CV hidden"
#: the system's name in the tables and CSV files
SYSTEM = "alanine_dipeptide"

#: atom indices (0-based) of alanine_dipeptide.pdb
PHI = (4, 6, 8, 14)  # C(ACE) N CA C
PSI = (6, 8, 14, 16)  # N CA C N(NME)
OMEGA1 = (0, 4, 6, 8)  # CH3(ACE) C(ACE) N CA
OMEGA2 = (8, 14, 16, 18)  # CA C N C(NME)
#: the four backbone dihedrals as mdtraj selections (the features' atoms), and their indices
DIHEDRALS = {
    "phi": (("resname ACE and name C", "resname ALA and name N", "resname ALA and name CA",
             "resname ALA and name C"), PHI),
    "psi": (("resname ALA and name N", "resname ALA and name CA", "resname ALA and name C",
             "resname NME and name N"), PSI),
    "omega1": (("resname ACE and name CH3", "resname ACE and name C", "resname ALA and name N",
                "resname ALA and name CA"), OMEGA1),
    "omega2": (("resname ALA and name CA", "resname ALA and name C", "resname NME and name N",
                "resname NME and name C"), OMEGA2),
}
#: the order parameters, in this order: sin and cos of each dihedral
FEATURE_NAMES = tuple(f"{fn}_{name}" for name in DIHEDRALS for fn in ("sin", "cos"))
#: columns of (sin, cos) of phi and psi among the features
PHI_COLUMNS = (0, 1)
PSI_COLUMNS = (2, 3)

#: frames within this distance of phi = 0 or pi belong to neither basin, rad
DEAD_ZONE_RAD = 0.5
#: grid points of the periodic metadynamics and OPES grid over [-pi, pi] (spacing 0.049 rad)
GRID_POINTS = 128

RUNS = ("plain_md", *se.RAVE_METHODS, "metad_ideal", "metad_naive", "opes_ideal",
        "opes_naive")
DEFAULT_SEEDS = (1, 2, 3)
DEFAULT_BUDGETS = tuple(50_000 * 2**k for k in range(8))  # 50k ... 6.4M steps
DEFAULT_REPORT_INTERVAL = 250  # 0.5 ps
DEFAULT_RAVE = {"max_total_steps": 2_000_000, "first_round_steps": 100_000,
                "steps_per_round": 400_000, "rounds": 20, "models": 2}
DEFAULT_METAD = {"height_kjmol": 1.2, "sigma_rad": 0.35, "bias_factor": 10.0, "frequency": 500}
DEFAULT_OPES = {"barrier_kjmol": 50.0, "frequency": 500, "variance_frequency": 100}
QUICK = {
    "seeds": [1],
    "budgets": [5_000, 10_000, 20_000],
    "report_interval": 100,
    "max_total_steps": 15_000,
    "first_round_steps": 5_000,
    "steps_per_round": 10_000,
    "rounds": 3,
    "models": 1,
    # a small, short VAE on one thread: the smoke test checks the pipeline, not the physics
    "vae": {"max_epochs": 2, "frames_per_epoch": 1024, "hidden": [64, 64, 64], "threads": 1},
}


# ============================================================================================
# pure functions
# ============================================================================================
def wrap_angle(angle_rad: np.ndarray) -> np.ndarray:
    """Angles wrapped into [-pi, pi).

    Parameters
    ----------
    angle_rad : np.ndarray, shape=(n,), dtype=float
        Angles, rad (any real value).

    Returns
    -------
    np.ndarray, shape=(n,), dtype=float
        The same angles modulo 2 pi, in [-pi, pi).
    """
    wrapped = np.mod(np.asarray(angle_rad, dtype=float) + math.pi, 2 * math.pi) - math.pi
    # np.mod can round a value just below pi up to pi: keep the interval half-open
    return np.where(wrapped >= math.pi, wrapped - 2 * math.pi, wrapped)


def dihedral_from_features(features: np.ndarray, columns: tuple[int, int]) -> np.ndarray:
    """A dihedral from its sin and cos features: atan2(sin, cos), wrapped into [-pi, pi).

    Parameters
    ----------
    features : np.ndarray, shape=(n_frames, d), dtype=float
        Order parameters of each frame (:data:`FEATURE_NAMES`).
    columns : tuple[int, int]
        Columns of the sin and the cos of the dihedral (:data:`PHI_COLUMNS`,
        :data:`PSI_COLUMNS`).

    Returns
    -------
    np.ndarray, shape=(n_frames,), dtype=float
        The dihedral, rad.
    """
    f = np.asarray(features, dtype=float)
    if f.ndim != 2 or max(columns) >= f.shape[1]:
        raise ValueError(f"features must be (n_frames, d) with d > {max(columns)}. You supplied "
                         f"shape {f.shape}")
    return wrap_angle(np.arctan2(f[:, columns[0]], f[:, columns[1]]))


def phi_of_features(features: np.ndarray) -> np.ndarray:
    """phi of each frame from its order parameters, rad in [-pi, pi)."""
    return dihedral_from_features(features, PHI_COLUMNS)


def angle_edges(n_bins: int) -> np.ndarray:
    """Edges of ``n_bins`` equal bins over [-pi, pi], rad (``n_bins + 1`` values)."""
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2. You supplied {n_bins}")
    return np.linspace(-math.pi, math.pi, n_bins + 1)


def angle_bin_index(angle_rad: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each angle among ``n_bins`` equal bins of [-pi, pi), periodically (an angle and the
    angle plus 2 pi share a bin; pi is -pi, bin 0).

    Parameters
    ----------
    angle_rad : np.ndarray, shape=(n,), dtype=float
    n_bins : int

    Returns
    -------
    np.ndarray, shape=(n,), dtype=int
        Indices in 0..n_bins-1.
    """
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2. You supplied {n_bins}")
    index = np.floor((wrap_angle(angle_rad) + math.pi) * n_bins / (2 * math.pi)).astype(int)
    return np.clip(index, 0, n_bins - 1)


def angle_free_energy(angle_rad: np.ndarray, log_weights: np.ndarray | None,
                      n_bins: int) -> np.ndarray:
    """F/kT of (weighted) frames in ``n_bins`` periodic bins of [-pi, pi), minimum 0.

    Parameters
    ----------
    angle_rad : np.ndarray, shape=(n,), dtype=float
        Angle of each frame, rad (wrapped here).
    log_weights : np.ndarray, shape=(n,), dtype=float, or None
        Log weight of each frame; None: uniform.
    n_bins : int

    Returns
    -------
    np.ndarray, shape=(n_bins,), dtype=float
        F/kT per bin, ``inf`` where no frame has weight.
    """
    _, f = se.free_energy_profile(wrap_angle(angle_rad), log_weights, angle_edges(n_bins))
    return f


def basin_labels(phi_rad: np.ndarray, dead_zone_rad: float = DEAD_ZONE_RAD) -> np.ndarray:
    """The phi basin of each frame: 0 for phi < 0, 1 for phi > 0, -1 within the dead zone.

    Parameters
    ----------
    phi_rad : np.ndarray, shape=(n,), dtype=float
        phi, rad (wrapped here).
    dead_zone_rad : float
        A frame within this distance of phi = 0 or phi = pi is in neither basin.

    Returns
    -------
    np.ndarray, shape=(n,), dtype=int
        Labels for ``sampling_efficiency.cumulative_transitions``.
    """
    if not 0 <= dead_zone_rad < math.pi / 2:
        raise ValueError(f"dead_zone_rad must be in [0, pi/2). You supplied {dead_zone_rad}")
    phi = wrap_angle(phi_rad)
    edge = math.pi - dead_zone_rad
    negative = (phi < -dead_zone_rad) & (phi > -edge)
    positive = (phi > dead_zone_rad) & (phi < edge)
    return np.where(negative, 0, np.where(positive, 1, -1))


def phi_transitions(phi_rad: np.ndarray, segments: np.ndarray | None = None,
                    dead_zone_rad: float = DEAD_ZONE_RAD) -> np.ndarray:
    """Crossings between the phi < 0 and phi > 0 basins up to each frame.

    Parameters
    ----------
    phi_rad : np.ndarray, shape=(n,), dtype=float
    segments : np.ndarray, shape=(n,), dtype=int, optional
        Continuous trajectory of each frame; a crossing counts only within one. None: one.
    dead_zone_rad : float
        See :func:`basin_labels`.

    Returns
    -------
    np.ndarray, shape=(n,), dtype=int
        ``out[i]``: how often the last basin visited changed in frames 0..i.
    """
    return se.cumulative_transitions(basin_labels(phi_rad, dead_zone_rad), segments)


@dataclass(frozen=True)
class PhiReference:
    """The reference F(phi) every method is measured against (what the evaluation functions of
    ``sampling_efficiency`` read: ``edges``, ``exact_kT``, ``mask``, :meth:`chi`,
    :meth:`core_labels`).

    Attributes
    ----------
    edges : np.ndarray, shape=(n_bins + 1,)
        Bin edges of phi over [-pi, pi], rad.
    exact_kT : np.ndarray, shape=(n_bins,)
        Reference F/kT per bin (``inf`` where the reference run had no frame).
    sigma_kT : np.ndarray, shape=(n_bins,)
        Its block standard error, kT (NaN where not estimated).
    frames : np.ndarray, shape=(n_bins,), dtype=int
        Frames of the reference run per bin.
    mask : np.ndarray, shape=(n_bins,), dtype=bool
        Bins within ``region_kT`` of the reference minimum: the bins compared.
    path : str
        The file it was read from ("" if built in memory).
    """

    edges: np.ndarray
    exact_kT: np.ndarray
    sigma_kT: np.ndarray
    frames: np.ndarray
    mask: np.ndarray
    path: str = ""

    def chi(self, features: np.ndarray) -> np.ndarray:
        """phi of frames (n_frames, 8), rad in [-pi, pi)."""
        return phi_of_features(features)

    def core_labels(self, features: np.ndarray) -> np.ndarray:
        """:func:`basin_labels` of the frames' phi."""
        return basin_labels(phi_of_features(features))


def make_reference(free_energy_kT: Sequence[float], sigma_kT: Sequence[float] | None = None,
                   frames: Sequence[int] | None = None, region_kT: float = se.REGION_KT,
                   path: str = "") -> PhiReference:
    """A :class:`PhiReference` from F/kT in equal bins of [-pi, pi) (bin 0 starts at -pi).

    Parameters
    ----------
    free_energy_kT : Sequence[float], shape=(n_bins,)
        F/kT per bin; ``inf`` for an unsampled bin.
    sigma_kT, frames : Sequence, shape=(n_bins,), optional
        Its standard error and frames per bin (NaN and 0 if not given).
    region_kT : float
        Bins within this of the minimum are compared.
    path : str
        Where it came from.
    """
    f = np.asarray(free_energy_kT, dtype=float)
    n = f.size
    if f.ndim != 1 or n < 2 or np.isnan(f).any() or not np.isfinite(f).any():
        raise ValueError(f"the reference F(phi) must be >= 2 bins, no NaN, some finite. You "
                         f"supplied {f.tolist()}")
    sigma = np.full(n, np.nan) if sigma_kT is None else np.asarray(sigma_kT, dtype=float)
    count = np.zeros(n, dtype=int) if frames is None else np.asarray(frames, dtype=int)
    if sigma.shape != f.shape or count.shape != f.shape:
        raise ValueError(f"sigma_kT and frames must have {n} entries, one per bin")
    f = f - f[np.isfinite(f)].min()
    return PhiReference(angle_edges(n), f, sigma, count, se.region_mask(f, region_kT), path)


def load_reference(path: Path, region_kT: float = se.REGION_KT) -> PhiReference:
    """Read the reference CSV of ``alanine_reference.py`` (phi_rad, free_energy_kT, sigma_kT,
    frames; bin centres of equal bins over [-pi, pi), in order).

    Raises
    ------
    FileNotFoundError
        No such file (the message says how to make one).
    ValueError
        The file is not such a table (the message names what is wrong).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"reference F(phi) file {path} does not exist. Make one with "
            f"'python -m workflows.benchmarks.alanine_reference --ns 100' (it writes "
            f"alanine_dipeptide_reference.csv in its output folder) and pass it with "
            f"--reference PATH, or copy it to {DEFAULT_REFERENCE}")
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"reference file {path} cannot be read as CSV: {error}") from error
    need = ("phi_rad", "free_energy_kT", "sigma_kT", "frames")
    if not rows or any(key not in rows[0] for key in need):
        raise ValueError(f"reference file {path} must be a CSV with the columns "
                         f"{', '.join(need)} (alanine_reference.py's output) and one row per "
                         f"bin; it has {list(rows[0]) if rows else 'no rows'}")
    try:
        centres = np.array([float(r["phi_rad"]) for r in rows])
        table = {key: [float(r[key]) for r in rows] for key in need[1:]}
    except (TypeError, ValueError) as error:
        raise ValueError(f"reference file {path}: a value is not a number: {error}") from error
    n = len(rows)
    expected = -math.pi + (np.arange(n) + 0.5) * 2 * math.pi / n
    if n < 2 or np.max(np.abs(centres - expected)) > 1e-4:
        raise ValueError(f"reference file {path}: phi_rad must be the centres of {n} equal bins "
                         f"over [-pi, pi) in increasing order, e.g. {expected[:3].round(6)}...; "
                         f"it has {centres[:3]}...")
    try:
        return make_reference(table["free_energy_kT"], table["sigma_kT"],
                              np.array(table["frames"]).astype(int), region_kT, str(path))
    except ValueError as error:
        raise ValueError(f"reference file {path}: {error}") from error


# ============================================================================================
# the system
# ============================================================================================
def feature_tables() -> list[dict]:
    """The ``[[features]]`` tables: sin and cos of each backbone dihedral (mdtraj selections)."""
    return [{"kind": "dihedral", "name": f"{fn}_{name}", "function": fn, "groups": list(sel)}
            for name, (sel, _) in DIHEDRALS.items() for fn in ("sin", "cos")]


def base_config(report_interval: int, temperature_K: float = 300.0) -> dict:
    """The campaign config (TOML-shaped dict) before the benchmark's overrides.

    ``[system]`` of ``workflows/alanine_dipeptide/alanine_dipeptide.toml`` (paths made
    absolute), the 8 order parameters of :func:`feature_tables`, one walker, the serial
    scheduler and the Reference platform (as every other method), frames every
    ``report_interval`` steps.
    """
    return {
        "system": {
            "kind": "openmm",
            "pdb": str(SYSTEM_DIR / "alanine_dipeptide.pdb"),
            "system_xml": str(SYSTEM_DIR / "alanine_dipeptide_system.xml"),
            "temperature": float(temperature_K),
        },
        "sampling": {"report_interval": int(report_interval), "walkers": 1,
                     "scheduler": "serial", "platform": "Reference"},
        "features": feature_tables(),
    }


def campaign_config(seed: int, args: argparse.Namespace, bias_method: str,
                    rc_choice: str = "vae", explore: str = "none") -> dict:
    """The full RAVE campaign config of one run: :func:`base_config` with the budget, the VAEs,
    the bias method, ``[coordinate] rc_choice`` and early stopping off
    (``sampling_efficiency.rave_config``)."""
    config = se.rave_config(SYSTEM, seed, args.report_interval, args.rounds,
                            args.steps_per_round, args.models, args.vae, args.max_total_steps,
                            args.first_round_steps, base=base_config(args.report_interval))
    bias = config.setdefault("bias", {})
    bias["method"] = bias_method
    config.setdefault("coordinate", {})["rc_choice"] = rc_choice
    config.setdefault("explore", {})["method"] = explore
    if bias_method == "opes":
        bias.update(opes_barrier_kjmol=args.opes_barrier, opes_pace=args.opes_frequency,
                    opes_variance_pace=args.opes_variance_frequency)
    se.config_from_dict(config)
    return config


@dataclass
class Alanine:
    """The system and the MD settings every method shares: what the runners of
    ``sampling_efficiency`` read as both their ``potential`` and their ``model``.

    Attributes
    ----------
    system : openmm.System
        From ``alanine_dipeptide_system.xml``.
    topology : openmm.app.Topology
        Of ``alanine_dipeptide.pdb``.
    positions : np.ndarray, shape=(22, 3)
        Starting positions (the PDB: minimised C7eq), nm.
    features : list of rave.md.features.Feature
        The 8 order parameters (:data:`FEATURE_NAMES`).
    temperature_K, timestep_ps, friction_per_ps : float
        300 K, 0.002 ps, 1 /ps: the ``openmm`` kind's settings.
    """

    system: object
    topology: object
    positions: np.ndarray
    features: list
    temperature_K: float
    timestep_ps: float
    friction_per_ps: float

    @property
    def kT(self) -> float:  # noqa: N802 - the name sampling_efficiency reads
        """Thermal energy, kJ/mol."""
        from rave.units import kT_kjmol

        return kT_kjmol(self.temperature_K)


def load_alanine(report_interval: int = DEFAULT_REPORT_INTERVAL) -> Alanine:
    """The system as the campaign builds it (``rave.campaign.simsystem.build_simulation_system`` of
    :func:`base_config`), so that every method runs what RAVE runs.

    Raises
    ------
    RuntimeError
        If the selections no longer pick the atoms :data:`PHI`, :data:`PSI`, :data:`OMEGA1`,
        :data:`OMEGA2` (a changed PDB).
    """
    from openmm import app

    from rave.campaign.config import config_from_dict
    from rave.campaign.simsystem import build_simulation_system

    config = config_from_dict(base_config(report_interval))
    built = build_simulation_system(config)
    for feature, (name, (_, atoms)) in zip(built.features[::2], DIHEDRALS.items(), strict=True):
        found = tuple(g[0] for g in feature.groups)
        if found != atoms:
            raise RuntimeError(f"the selections of {name} pick atoms {found} of "
                               f"{SYSTEM_DIR / 'alanine_dipeptide.pdb'}, not {atoms}: the PDB "
                               f"changed; update DIHEDRALS in {Path(__file__).name}")
    topology = app.PDBFile(str(config.system.pdb)).topology
    return Alanine(built.system, topology, np.asarray(built.positions, dtype=float),
                   list(built.features), float(config.system.temperature),
                   float(config.sampling.timestep or built.timestep_ps),
                   float(config.sampling.friction or built.friction_per_ps))


def dihedral_cv(atoms: tuple[int, int, int, int], columns: tuple[int, int],
                grid_points: int = GRID_POINTS) -> se.BiasCV:
    """A dihedral as the CV of metadynamics or OPES: ``CustomTorsionForce("theta")`` on
    ``atoms``, periodic on [-pi, pi] with ``grid_points`` grid points, and its value from the
    recorded features (:func:`dihedral_from_features` of ``columns``)."""
    import openmm

    def make_force() -> openmm.Force:
        force = openmm.CustomTorsionForce("theta")
        force.addTorsion(*atoms, [])
        return force

    return se.BiasCV(make_force, -math.pi, math.pi,
                     lambda features: dihedral_from_features(features, columns),
                     periodic=True, grid_width=grid_points)


#: the CV of each metadynamics / OPES variant
CVS = {"ideal": (PHI, PHI_COLUMNS), "naive": (PSI, PSI_COLUMNS)}


# ============================================================================================
# one run
# ============================================================================================
def run_method(method: str, alanine: Alanine, reference: PhiReference, seed: int,
               args: argparse.Namespace, out: Path) -> tuple[se.Run, dict[str, list[dict]]]:
    """One run of one method and its rows (steps, rmse_kT, coverage, transitions, elapsed_s)
    per checkpoint; metad_ideal and opes_ideal also give their *_bias rows."""
    ri = args.report_interval
    budgets = list(args.budgets)
    max_steps = max(budgets)
    if method == "plain_md":
        run = se.run_plain_md(alanine, alanine, seed, max_steps, ri)
        return run, {method: se.evaluate_prefixes(run, reference, budgets, ri)}
    if method in se.RAVE_METHODS:
        bias_method, rc_choice, explore = se.RAVE_METHODS[method]
        config = campaign_config(seed, args, bias_method, rc_choice, explore)
        run = se.run_rave(config, out / "campaigns" / f"{SYSTEM}_{method}_seed{seed}")
        return run, {method: se.evaluate_rave(run, reference, alanine.kT, ri)}
    family, which = method.split("_")
    ideal = which == "ideal"
    cv = dihedral_cv(*CVS[which])
    if family == "metad":
        run = se.run_metadynamics(
            alanine, alanine, cv, seed, max_steps, ri, height_kjmol=args.metad_height,
            sigma_nm=args.metad_sigma, bias_factor=args.metad_bias_factor,
            frequency=args.metad_frequency, reference=reference if ideal else None,
            checkpoints=budgets)
    else:
        run = se.run_opes(
            alanine, alanine, cv, seed, max_steps, ri, barrier_kjmol=args.opes_barrier,
            frequency=args.opes_frequency, variance_frequency=args.opes_variance_frequency,
            grid_sigma_nm=2 * math.pi / GRID_POINTS,  # the grid is fixed by GRID_POINTS
            reference=reference if ideal else None, checkpoints=budgets)
    results = {method: se.evaluate_prefixes(run, reference, budgets, ri)}
    if ideal:
        results[f"{family}_ideal_bias"] = se.evaluate_bias(run, reference, ri)
    return run, results


# ============================================================================================
# command line
# ============================================================================================
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=RUNS, default=list(RUNS),
                        help="simulations to run (metad_ideal and opes_ideal also give their "
                        "*_bias estimate)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default 1 2 3)")
    parser.add_argument("--budgets", nargs="+", type=int,
                        help="checkpoints in MD steps; the longest is the length of every "
                        "non-RAVE run (default 50k x 2^k up to 6.4M)")
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE,
                        help="reference F(phi) CSV of alanine_reference.py (default "
                        "workflows/benchmarks/alanine_dipeptide_reference.csv)")
    parser.add_argument("--report-interval", type=int,
                        help=f"steps between frames, every method (default "
                        f"{DEFAULT_REPORT_INTERVAL})")
    parser.add_argument("--max-total-steps", type=int,
                        help=f"RAVE's MD budget (default {DEFAULT_RAVE['max_total_steps']:,})")
    parser.add_argument("--first-round-steps", type=int,
                        help=f"RAVE's unbiased round 0 (default "
                        f"{DEFAULT_RAVE['first_round_steps']:,})")
    parser.add_argument("--steps-per-round", type=int,
                        help=f"RAVE's first biased round; later ones adapt (default "
                        f"{DEFAULT_RAVE['steps_per_round']:,})")
    parser.add_argument("--rounds", type=int,
                        help=f"RAVE's most rounds; the budget ends it first (default "
                        f"{DEFAULT_RAVE['rounds']})")
    parser.add_argument("--models", type=int,
                        help=f"RAVE's VAEs per round (default {DEFAULT_RAVE['models']})")
    parser.add_argument("--metad-height", type=float, default=DEFAULT_METAD["height_kjmol"],
                        help="initial Gaussian height, kJ/mol")
    parser.add_argument("--metad-sigma", type=float, default=DEFAULT_METAD["sigma_rad"],
                        help="Gaussian width, rad")
    parser.add_argument("--metad-bias-factor", type=float, default=DEFAULT_METAD["bias_factor"])
    parser.add_argument("--metad-frequency", type=int, default=DEFAULT_METAD["frequency"],
                        help="steps between Gaussians")
    parser.add_argument("--opes-barrier", type=float, default=DEFAULT_OPES["barrier_kjmol"],
                        help="OPES barrier, kJ/mol (also RAVE's OPES bias)")
    parser.add_argument("--opes-frequency", type=int, default=DEFAULT_OPES["frequency"],
                        help="steps between OPES kernels (also RAVE's opes_pace)")
    parser.add_argument("--opes-variance-frequency", type=int,
                        default=DEFAULT_OPES["variance_frequency"],
                        help="steps between updates of the adaptive kernel variance (divides "
                        "--opes-frequency)")
    parser.add_argument("--target", type=float, default=se.TARGET_RMSE_KT,
                        help="target RMSE, kT")
    parser.add_argument("--second-target", type=float, default=se.SECOND_TARGET_RMSE_KT,
                        help="a second, tighter target RMSE, kT")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="parent of the fresh output folder")
    parser.add_argument("--csv", type=Path, help="summary CSV (default in the output folder)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings for a smoke test: 1 seed, checkpoints up to 20k "
                        "steps, frames every 100 steps, RAVE 15k steps, 1 small VAE")
    args = parser.parse_args(argv)
    quick = QUICK if args.quick else {}
    args.seeds = args.seeds or quick.get("seeds", list(DEFAULT_SEEDS))
    args.budgets = sorted(set(args.budgets or quick.get("budgets", DEFAULT_BUDGETS)))
    if args.report_interval is None:
        args.report_interval = quick.get("report_interval", DEFAULT_REPORT_INTERVAL)
    for key, default in DEFAULT_RAVE.items():
        if getattr(args, key) is None:
            setattr(args, key, quick.get(key, default))
    args.vae = quick.get("vae")
    se.check_run_arguments(parser, args)
    if not 0 < args.metad_sigma < math.pi:
        parser.error(f"--metad-sigma must be in (0, pi) rad. You supplied {args.metad_sigma}")
    if not (args.target > 0 and args.second_target > 0):
        parser.error(f"--target and --second-target must be > 0 kT. You supplied "
                     f"{args.target} and {args.second_target}")
    if set(se.RAVE_METHODS) & set(args.methods):
        from rave.campaign.config import ConfigError

        try:  # the campaign's own checks of the budget, before any MD
            campaign_config(args.seeds[0], args, "static")
        except ConfigError as error:
            parser.error(f"the RAVE settings (--max-total-steps, --first-round-steps, "
                         f"--steps-per-round, --rounds, --models, --report-interval) give an "
                         f"invalid campaign: {error}")
    try:
        args.reference_data = load_reference(args.reference)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    return args


def _settings(args: argparse.Namespace, alanine: Alanine) -> dict:
    """Every setting of the run, for settings.json."""
    reference = args.reference_data
    return {
        "system": SYSTEM,
        "features": list(FEATURE_NAMES),
        "md": {"integrator": "LangevinMiddleIntegrator", "temperature_K": alanine.temperature_K,
               "timestep_ps": alanine.timestep_ps, "friction_per_ps": alanine.friction_per_ps,
               "platform": "Reference", "report_interval": args.report_interval},
        "methods": args.methods,
        "seeds": args.seeds,
        "budgets": args.budgets,
        "rave": {key: getattr(args, key) for key in DEFAULT_RAVE} | {"vae": args.vae},
        "metad": {"cv_ideal": "phi", "cv_naive": "psi", "height_kjmol": args.metad_height,
                  "sigma_rad": args.metad_sigma, "bias_factor": args.metad_bias_factor,
                  "frequency": args.metad_frequency, "grid_points": GRID_POINTS},
        "opes": {"cv_ideal": "phi", "cv_naive": "psi", "barrier_kjmol": args.opes_barrier,
                 "frequency": args.opes_frequency,
                 "variance_frequency": args.opes_variance_frequency,
                 "grid_points": GRID_POINTS},
        "reference": {"path": str(args.reference), "sha256": file_sha256(args.reference),
                      "bins": len(reference.exact_kT), "region_kT": se.REGION_KT,
                      "region_bins": int(reference.mask.sum())},
        "targets_kT": [args.target, args.second_target],
        "dead_zone_rad": DEAD_ZONE_RAD,
        "quick": args.quick,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reference = args.reference_data
    bench = harness.BenchmarkRun(SYSTEM, TITLE, argv, args.out, "_quick" if args.quick else "")
    out = bench.out
    csv_path = args.csv or out / f"{SYSTEM}.csv"
    alanine = load_alanine(args.report_interval)
    settings = _settings(args, alanine)
    (out / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    region_sigma = reference.sigma_kT[reference.mask]
    print(f"output: {out}")
    print(f"reference: {args.reference}: {len(reference.exact_kT)} bins of phi, "
          f"{int(reference.mask.sum())} within {se.REGION_KT:g} kT of its minimum; their block "
          f"sigma median {np.nanmedian(region_sigma):.3f} kT, max {np.nanmax(region_sigma):.3f} "
          f"kT" if np.isfinite(region_sigma).any() else
          f"reference: {args.reference} (no sigma)")
    print(f"MD: LangevinMiddle {alanine.temperature_K:g} K, {alanine.timestep_ps:g} ps, "
          f"friction {alanine.friction_per_ps:g}/ps, Reference; frames every "
          f"{args.report_interval} steps; seeds {args.seeds}")
    print(f"metadynamics on phi / psi: height {args.metad_height:g} kJ/mol, sigma "
          f"{args.metad_sigma:g} rad, bias factor {args.metad_bias_factor:g}, every "
          f"{args.metad_frequency} steps; OPES: barrier {args.opes_barrier:g} kJ/mol, kernel every "
          f"{args.opes_frequency} steps, variance every {args.opes_variance_frequency}")
    print(f"RAVE: {args.max_total_steps:,} steps (round 0 {args.first_round_steps:,}, first "
          f"biased round {args.steps_per_round:,}, at most {args.rounds} rounds), "
          f"{args.models} VAE(s) per round")

    rows: list[dict] = []
    jobs = [(seed, m) for seed in args.seeds for m in args.methods]
    started = time.perf_counter()
    for i, (seed, method) in enumerate(jobs, 1):
        run, results = run_method(method, alanine, reference, seed, args, out)
        for name, result in results.items():
            rows.extend({"system": SYSTEM, "seed": seed, "method": name, **r,
                         "wall_s": round(run.wall_s, 2)} for r in result)
        steps = len(run.features) * args.report_interval
        last = results[method][-1] if results[method] else None
        final = "" if last is None else (f", RMSE {last['rmse_kT']:.2f} kT, "
                                         f"{last['transitions']} transitions")
        if "bias_mismatch_kjmol" in run.notes:
            final += f", |OpenMM - numpy bias| <= {run.notes['bias_mismatch_kjmol']:.1e} kJ/mol"
        print(f"[{i}/{len(jobs)}] {method} seed {seed}: {steps:,} steps in {run.wall_s:.1f} s "
              f"({steps / max(run.wall_s, 1e-9):,.0f} steps/s){final} "
              f"(elapsed {time.perf_counter() - started:.0f} s)", flush=True)

    se.finish(bench, csv_path, rows, (args.target, args.second_target), settings=settings,
              seeds=args.seeds, profile="F(phi) vs the OPES reference",
              ylabel=r"RMSE of $F(\phi)$ / kT")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
