"""Benchmark: sampling efficiency of RAVE against plain MD, OpenMM metadynamics and OPES.

For each model potential (``three_state``, ``rotated_double_well``, ``mixed_slow_mode``) and each
seed, one long run per method is evaluated at checkpoints of cumulative MD steps (prefixes of
the run):

* ``plain_md``: unbiased Langevin MD (``rave.md.walker.Walker`` without bias), histogram along chi.
* ``rave``: a ``rave.campaign.Campaign`` with the settings of ``workflows/<system>.toml``
  (rounds, steps per round and VAE models can be overridden). After round k (cumulative
  steps = k x steps_per_round) F(chi) comes from all frames of rounds 0..k-1, reweighted by
  MBAR (``rave.stats.mbar_reweight``) over the static biases stored in
  ``round_NNN/bias_applied.json``. Early stopping on convergence is switched off
  (``convergence.min_rounds = rounds + 1``) so that every budget is reached; everything else
  is the campaign's own behaviour.
* ``rave_opes``: the same campaign with ``[bias] method = "opes"``: OPES along each round's
  learned RC within the round (``rave.md.opes``); its frames enter MBAR as the blocks of the
  OPES bias listed in ``bias_applied.json`` (``rave.learn.bias.applied_states``).
* ``rave_barrier``, ``rave_opes_barrier``: ``rave`` and ``rave_opes`` with ``[coordinate]
  rc_choice = "barrier"``: the VAE's RC, the most skewed direction of the frames and the
  previous RC compete, the highest barrier along F wins (``rave.learn.estimator.RAVE``,
  ``rave.learn.anharmonic``); the other two methods pin ``"vae"`` (the paper's RC).
* ``rave_explore``, ``rave_explore_barrier``: ``rave_opes`` and ``rave_opes_barrier`` with
  ``[explore] method = "temperature"``: round 0 is an expanded ensemble over temperatures
  (``rave.md.explore``), all its states reweighted to 300 K by MBAR with the other rounds.
  Every RAVE method counts a round's MD steps as ``round.json`` records them over all walkers
  (an exploring round's warm-up frames, which are not stored, included).
* ``expanded``: the expanded ensemble alone (one walker: a calibration at 300 K, then
  ``openmm.app.ExpandedEnsembleSampler`` over the ladder ``rave.md.explore`` sizes), every
  prefix reweighted to 300 K by MBAR over its temperature states.
* ``metad_ideal``: ``openmm.app.Metadynamics`` (well-tempered) on the ideal CV, the reference
  chi below (``BiasVariable`` of a ``CustomCompoundBondForce`` whose energy is the linear CV,
  :func:`linear_cv_force`; ``metaD.step(simulation, n)``).
  F(chi) comes from the frames, reweighted with the time-dependent bias by the c(t) method of
  Tiwary and Parrinello (J. Phys. Chem. B 119, 736 (2015)): each frame has
  log w = [V(s(t), t) - c(t)] / kT with
  c(t) = kT ln[ int ds exp(gamma/(gamma-1) V(s,t)/kT) / int ds exp(V(s,t)/((gamma-1) kT)) ],
  where V(., t) is the bias the frame was sampled under (the deposit that follows a frame is
  not yet in it) and the integrals run over the bias grid.
* ``metad_ideal_bias``: the same run, F(chi) = -(gamma/(gamma-1)) V(chi, t) read from the bias
  itself (``Metadynamics.getFreeEnergy``), as a check of the reweighting.
* ``metad_naive``: the same metadynamics on the naive CV, reweighted as above along the
  reference chi. Naive CV: x for the 2-D potentials, the best single coordinate x1 (59 degrees
  off the slow mode) for ``mixed_slow_mode`` (:func:`naive_direction`).
* ``opes_ideal``, ``opes_naive``: OPES through the ``openmm-opes`` package
  (``openmm_opes.OPES(system, [BiasVariable], temperature, barrier, frequency,
  varianceFrequency)``, ``opes.step(simulation, n)``; not explore mode, bias factor barrier/kT,
  adaptive kernel bandwidth) on the same two CVs, :func:`run_opes`. Defaults: barrier 25 kJ/mol
  (10 kT at 300 K), a kernel every 500 steps, the variance updated every 100 steps. Each frame's
  bias V_t(s_t) is read from OpenMM by a reporter (:class:`OPESFrameRecorder`) inside
  ``simulation.step``, i.e. before a kernel deposited at the same step; frames are reweighted
  with exp(V_t(s_t)/kT), the standard OPES reweighting (its bias is normalised by the explored
  density Z_n and becomes quasi-static, so no c(t) is subtracted; every frame from step 0
  counts, early ones included).
* ``opes_ideal_bias``: the same run, F(chi) = OPES's own estimate ``getFreeEnergy()`` (its
  reweighted kernel density) on the CV grid at each checkpoint.

Reference chi (the same for every method's RMSE):

* rotated double well: its ``slow_direction`` (cos 35 deg, sin 35 deg).
* mixed_slow_mode (three particles in a plane, six coordinates x1..y3, one slow mode u mixing
  all of them, harmonic in the other five directions; ``systems/mixed_slow_mode.py``): u; the
  exact F along any direction is a 1-D convolution. Its cores (below) are intervals of
  half-width 0.35 nm along u around the two minima, since the harmonic directions spread each
  basin over more than 0.35 nm.
* three-state potential: no 1-D direction is ideal. We use c = (cos -31 deg, sin -31 deg) =
  (0.857, -0.515): of all directions in 1 deg steps it is the one whose exact F(chi) separates
  all three minima best, i.e. the lower of the two barriers between consecutive projected
  minima is highest (A at chi = -1.36 nm, B at -0.17 nm, C at 0.85 nm; barriers 3.88 kT
  between A and B, 3.72 kT between B and C; :func:`separation_barriers_kT`, re-derived in
  tests/test_benchmarks.py). Directions near x or y merge two minima into one well. This is
  only the best-separating 1-D projection, not a CV that removes every slow barrier: the 2-D
  barriers are 8.2-8.8 kT against 3.7-3.9 kT along chi, so metadynamics on it also has to wait
  for crossings it does not bias.

Error measure: F(chi) is histogrammed in bins of ``--bin-width`` (0.1 nm) and compared with the
exact profile of the same bins (quadrature, averaged over each bin as exp(-F), so binning adds
no bias) over the bins where the exact F is within 6 kT of its minimum. The best constant
offset (the mean difference) is removed and the RMSE is unweighted over those bins. A bin of
that region with no sample makes the RMSE infinite (the estimate has failed there); the
fraction of region bins covered is reported alongside. "Steps to 0.5 kT" is the first
checkpoint at which the RMSE is <= 0.5 kT and stays so at every later checkpoint of that run
(infinite if never); medians and min-max spreads are over seeds, and the ratio to RAVE is the
ratio of the medians.

Transitions: a frame is in a metastable state when it lies within 0.35 nm of that state's
minimum (core sets); a transition is a change of the last core visited. Counted over the
frames up to each checkpoint, within each continuous trajectory (for RAVE: each walker in each
round, since a walker may restart between rounds; with several walkers per round a round's
budget is walkers x steps_per_round).

Metadynamics defaults (PLUMED-tutorial-like well-tempered settings): Gaussian height 1.2 kJ/mol
(0.48 kT at 300 K), width sigma 0.1 nm (below the ~0.15-0.2 nm standard deviation of the CV in
a basin), bias factor 10, a deposit every 500 steps (2.5 ps at 5 fs); the CV grid (metaD and
OPES) spans the projection of the potential's extent (mixed_slow_mode: its ``chi_range``, 60 kT
up the double well and 6 sigma of the harmonic part) plus 0.5 nm on each side (outside its grid
OpenMM's bias is zero; the walls keep the particle well inside). Frames are recorded every
``--report-interval`` steps (50) for every method; all runs use the Reference platform with
``LangevinMiddleIntegrator`` at 300 K, 5 fs, friction 25 /ps.

Outputs (a fresh folder ``runs/benchmarks/sampling_efficiency_<time>/`` under ``--out``; RAVE
campaigns in its ``campaigns/`` subfolder, never reused): a printed table, ``--csv`` (default
``sampling_efficiency.csv`` in that folder: median and min-max of RMSE, coverage and transitions
per system, method and budget), ``*_to_target.csv`` (steps to 0.5 kT and ratio to RAVE),
``*_runs.csv`` (every run and checkpoint) and ``*.png`` (RMSE vs MD steps, log x).

Defaults: seeds 1 2 3, checkpoints 25k x 2^k steps up to 25.6M (every non-RAVE run is that
long), RAVE as in the TOML files (4 rounds x 200k steps; 2 VAEs per round for the three-state
potential, 3 for the double well). Measured speeds on the 2-core machine (shared,
so upper bounds on time): plain MD ~1e6 steps/s (mixed_slow_mode 1.7e6), metadynamics
~2.3e5 steps/s, OPES 1.5e5-2.5e5 steps/s (100k-300k-step runs; Reference), RAVE dominated by
its learning step (docs/benchmarks.md). ``--quick`` runs in ~20 s.

Usage (from the repository root; the harness, ``workflows.benchmarks.harness``, also writes
``sampling_efficiency.json``: command, date, machine, versions, settings and the steps-to-target
rows)::

    python -m workflows.benchmarks.sampling_efficiency [--quick] [--systems three_state ...]
        [--seeds 1 2 3] [--budgets 25000 50000 ...] [--rounds R] [--steps-per-round N]
        [--models M] [--report-interval 50] [--metad-height 1.2] [--metad-sigma 0.1]
        [--metad-bias-factor 10] [--metad-frequency 500] [--opes-barrier 25]
        [--opes-frequency 500] [--opes-variance-frequency 100] [--methods ...] [--csv PATH]
        [--out DIR]
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openmm
import scipy.optimize
from openmm import app
from openmm import unit as u
from scipy.interpolate import CubicSpline
from scipy.special import logsumexp

from rave.campaign import Campaign
from rave.campaign.config import config_from_dict
from rave.campaign.store import CampaignStore
from rave.learn.bias import TemperatureState, frame_potentials, reduced_bias_matrix
from rave.md.features import evaluate_features
from rave.md.walker import Walker
from rave.stats import free_energy_profile, mbar_reweight
from rave.systems.model_potentials import THREE_STATE_MINIMA, make_model_potential

from . import figures, harness

WORKFLOWS = Path(__file__).resolve().parent.parent
DEFAULT_OUT = harness.DEFAULT_OUT

TITLE = "Sampling efficiency on model potentials: MD steps to an accurate F(chi)"
SYSTEMS = ("three_state", "rotated_double_well", "mixed_slow_mode")
METHODS = (
    "plain_md",
    "rave",
    "rave_opes",
    "rave_barrier",
    "rave_opes_barrier",
    "rave_explore",
    "rave_explore_barrier",
    "expanded",
    "metad_ideal",
    "metad_ideal_bias",
    "metad_naive",
    "opes_ideal",
    "opes_ideal_bias",
    "opes_naive",
)
#: methods that need their own simulation (*_ideal_bias comes with *_ideal)
_RUNS = ("plain_md", "rave", "rave_opes", "rave_barrier", "rave_opes_barrier", "rave_explore",
         "rave_explore_barrier", "expanded", "metad_ideal", "metad_naive", "opes_ideal",
         "opes_naive")
#: the RAVE methods: (bias method, coordinate.rc_choice, explore.method)
RAVE_METHODS = {"rave": ("static", "vae", "none"), "rave_opes": ("opes", "vae", "none"),
                "rave_barrier": ("static", "barrier", "none"),
                "rave_opes_barrier": ("opes", "barrier", "none"),
                "rave_explore": ("opes", "vae", "temperature"),
                "rave_explore_barrier": ("opes", "barrier", "temperature")}

#: target RMSE of F(chi), kT, and a second, tighter one
TARGET_RMSE_KT = 0.5
SECOND_TARGET_RMSE_KT = 0.2
#: the RMSE is taken over bins where the exact F is within this of its minimum, kT
REGION_KT = 6.0
#: a frame is in a metastable state within this distance of its minimum, nm
CORE_RADIUS_NM = 0.35
#: reference direction of the three-state potential, degrees from x (see module docstring)
THREE_STATE_REFERENCE_ANGLE_DEG = -31.0
#: sub-points per bin for the bin-averaged exact profile
EXACT_POINTS_PER_BIN = 10
#: the metadynamics CV grid extends this far beyond the projected extent, nm
CV_MARGIN_NM = 0.5
#: largest accepted difference between OpenMM's applied metadynamics bias and ours, kJ/mol
BIAS_CHECK_TOLERANCE_KJMOL = 1e-6
#: frames at the start of each metadynamics run whose bias is also read from OpenMM
BIAS_CHECK_FRAMES = 200

DEFAULT_BUDGETS = tuple(25_000 * 2**k for k in range(11))  # 25k ... 25.6M steps
DEFAULT_SEEDS = (1, 2, 3)
DEFAULT_METAD = {"height_kjmol": 1.2, "sigma_nm": 0.1, "bias_factor": 10.0, "frequency": 500}
#: OPES (openmm-opes): barrier kJ/mol, steps between kernels, steps between updates of the
#: adaptive kernel variance; grid_sigma_nm only sizes the CV grid (5 points per 0.1 nm)
DEFAULT_OPES = {
    "barrier_kjmol": 25.0,
    "frequency": 500,
    "variance_frequency": 100,
    "grid_sigma_nm": 0.1,
}
QUICK = {
    "seeds": [1],
    "budgets": [5_000, 10_000, 20_000, 40_000],
    "rounds": 2,
    "steps_per_round": 20_000,
    "models": 1,
    # a small, short VAE: the smoke test checks the pipeline, not the physics
    "vae": {"max_epochs": 2, "frames_per_epoch": 1024, "hidden": [64, 64, 64]},
}


# ============================================================================================
# pure functions
# ============================================================================================
def unit_vector(direction: Sequence[float]) -> np.ndarray:
    """``direction`` normalised to length 1.

    Parameters
    ----------
    direction : Sequence[float], shape=(d,)
        A non-zero vector (d = 2 for the 2-D potentials, 6 for mixed_slow_mode).

    Returns
    -------
    np.ndarray, shape=(d,), dtype=float
    """
    c = np.asarray(direction, dtype=float).reshape(-1)
    norm = float(np.linalg.norm(c))
    if c.size < 1 or not np.isfinite(norm) or norm == 0:
        raise ValueError(f"direction must be a finite non-zero vector. You supplied {direction}")
    return c / norm


def bin_averaged_free_energy(
    free_energy_kT: np.ndarray, points_per_bin: int = EXACT_POINTS_PER_BIN
) -> np.ndarray:
    """F of each bin from F at evenly spaced sub-points: -ln mean exp(-F), minimum 0.

    Parameters
    ----------
    free_energy_kT : np.ndarray, shape=(n_bins * points_per_bin,), dtype=float
        F/kT at ``points_per_bin`` sub-points per bin, bin after bin (``inf`` allowed).
    points_per_bin : int
        Sub-points per bin.

    Returns
    -------
    np.ndarray, shape=(n_bins,), dtype=float
        F/kT of each bin (what an exact histogram would give), shifted to minimum 0.
    """
    f = np.asarray(free_energy_kT, dtype=float)
    if f.ndim != 1 or f.size % points_per_bin:
        raise ValueError(
            f"free_energy_kT must be 1-D with a multiple of {points_per_bin} entries. "
            f"You supplied shape {f.shape}"
        )
    per_bin = -f.reshape(-1, points_per_bin)
    out = -(logsumexp(per_bin, axis=1) - math.log(points_per_bin))
    return out - out[np.isfinite(out)].min()


def region_mask(exact_kT: np.ndarray, region_kT: float = REGION_KT) -> np.ndarray:
    """Bins where the exact F is within ``region_kT`` of its minimum.

    Parameters
    ----------
    exact_kT : np.ndarray, shape=(n_bins,), dtype=float
        Exact F/kT per bin (``inf`` allowed).
    region_kT : float
        Width of the region above the minimum, kT.

    Returns
    -------
    np.ndarray, shape=(n_bins,), dtype=bool
    """
    exact = np.asarray(exact_kT, dtype=float)
    return np.isfinite(exact) & (exact - np.min(exact) <= region_kT)


def profile_rmse(
    estimate_kT: np.ndarray, exact_kT: np.ndarray, mask: np.ndarray
) -> tuple[float, float]:
    """RMSE of an F profile against the exact one over ``mask``, best constant offset removed.

    Parameters
    ----------
    estimate_kT : np.ndarray, shape=(n_bins,), dtype=float
        Estimated F/kT per bin; ``inf`` (or NaN) where the bin has no sample.
    exact_kT : np.ndarray, shape=(n_bins,), dtype=float
        Exact F/kT per bin, finite on ``mask``.
    mask : np.ndarray, shape=(n_bins,), dtype=bool
        Bins compared (the region within ``REGION_KT`` of the exact minimum).

    Returns
    -------
    rmse_kT : float
        sqrt(mean((d - mean d)^2)) with d = estimate - exact over ``mask``, in kT; ``inf`` if
        any bin of ``mask`` has no estimate.
    coverage : float
        Fraction of the bins of ``mask`` with a finite estimate, in [0, 1].
    """
    estimate = np.asarray(estimate_kT, dtype=float)
    exact = np.asarray(exact_kT, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    if not (estimate.shape == exact.shape == mask.shape) or estimate.ndim != 1:
        raise ValueError(
            f"estimate_kT, exact_kT and mask must be 1-D of one shape. You supplied "
            f"{estimate.shape}, {exact.shape}, {mask.shape}"
        )
    if not mask.any():
        raise ValueError("mask selects no bin: there is nothing to compare")
    if not np.all(np.isfinite(exact[mask])):
        raise ValueError("exact_kT must be finite on every bin of mask")
    covered = np.isfinite(estimate[mask])
    coverage = float(covered.mean())
    if not covered.all():
        return math.inf, coverage
    diff = estimate[mask] - exact[mask]
    return float(np.sqrt(np.mean((diff - diff.mean()) ** 2))), coverage


def core_labels(
    xy: np.ndarray, minima: np.ndarray, radius_nm: float = CORE_RADIUS_NM
) -> np.ndarray:
    """Index of the metastable state whose core (a disc around its minimum) holds each frame.

    Parameters
    ----------
    xy : np.ndarray, shape=(n_frames, k), dtype=float
        Position of each frame, nm (k = 2 for x, y; any k, e.g. 1 for a projection).
    minima : np.ndarray, shape=(n_states, k), dtype=float
        Minimum of each state, nm; the discs (balls) must not overlap.
    radius_nm : float
        Core radius, nm.

    Returns
    -------
    np.ndarray, shape=(n_frames,), dtype=int
        State index, or -1 outside every core.
    """
    xy = np.asarray(xy, dtype=float)
    minima = np.asarray(minima, dtype=float)
    if xy.ndim != 2 or minima.ndim != 2 or xy.shape[1] != minima.shape[1]:
        raise ValueError(
            f"xy and minima must be shape (Any, k) with one k. You supplied {xy.shape} and "
            f"{minima.shape}"
        )
    gaps = np.linalg.norm(minima[:, None] - minima[None, :], axis=-1)
    if np.any(gaps[np.triu_indices(len(minima), 1)] <= 2 * radius_nm):
        raise ValueError(f"cores of radius {radius_nm} nm overlap for minima {minima.tolist()}")
    distance = np.linalg.norm(xy[:, None, :] - minima[None, :, :], axis=-1)
    labels = np.argmin(distance, axis=1)
    return np.where(distance[np.arange(len(xy)), labels] <= radius_nm, labels, -1)


def cumulative_transitions(labels: np.ndarray, segments: np.ndarray | None = None) -> np.ndarray:
    """Number of transitions between cores up to each frame (core-set / milestoning count).

    Parameters
    ----------
    labels : np.ndarray, shape=(n_frames,), dtype=int
        Core of each frame, -1 outside every core (see :func:`core_labels`).
    segments : np.ndarray, shape=(n_frames,), dtype=int, optional
        Trajectory segment of each frame (e.g. one walker in one round); a change of core
        counts only between frames of one segment. None: one continuous trajectory.

    Returns
    -------
    np.ndarray, shape=(n_frames,), dtype=int
        ``out[i]``: how often the last core visited changed in frames 0..i.
    """
    labels = np.asarray(labels).reshape(-1)
    if segments is None:
        segments = np.zeros(labels.size, dtype=int)
    segments = np.asarray(segments).reshape(-1)
    if segments.shape != labels.shape:
        raise ValueError(
            f"segments must have the shape of labels {labels.shape}. You supplied {segments.shape}"
        )
    inside = np.flatnonzero(labels >= 0)
    changes = np.zeros(labels.size, dtype=int)
    if inside.size > 1:
        visited, seg = labels[inside], segments[inside]
        changed = (visited[1:] != visited[:-1]) & (seg[1:] == seg[:-1])
        changes[inside[1:][changed]] = 1
    return np.cumsum(changes)


def ct_offset_kjmol(bias_kjmol: np.ndarray, kT: float, bias_factor: float) -> float:
    """c(t) of well-tempered metadynamics (Tiwary and Parrinello 2015) from the bias on a grid.

    c = kT ln[ sum exp(gamma/(gamma-1) V/kT) / sum exp(V/((gamma-1) kT)) ] over an evenly spaced
    grid of the CV (the spacing cancels). Frames sampled under V then have the unbiased weight
    exp([V(s) - c]/kT).

    Parameters
    ----------
    bias_kjmol : np.ndarray, shape=(n_grid,), dtype=float
        The bias V(s, t) at evenly spaced grid points, kJ/mol.
    kT : float
        Thermal energy, kJ/mol.
    bias_factor : float
        gamma > 1.

    Returns
    -------
    float
        c(t), kJ/mol.
    """
    if not bias_factor > 1:
        raise ValueError(f"bias_factor must be > 1. You supplied {bias_factor}")
    v = np.asarray(bias_kjmol, dtype=float) / kT
    g = bias_factor
    return float(kT * (logsumexp(g / (g - 1) * v) - logsumexp(v / (g - 1))))


def steps_to_target(steps: np.ndarray, rmse_kT: np.ndarray, target_kT: float) -> float:
    """First checkpoint from which the RMSE stays <= ``target_kT`` (inf if none).

    Parameters
    ----------
    steps : np.ndarray, shape=(n_checkpoints,), dtype=int
        Cumulative MD steps of each checkpoint, increasing.
    rmse_kT : np.ndarray, shape=(n_checkpoints,), dtype=float
        RMSE at each checkpoint, kT (inf allowed).
    target_kT : float
        Target, kT.

    Returns
    -------
    float
        Steps, or ``inf`` if the RMSE is above the target at the last checkpoint.
    """
    steps = np.asarray(steps, dtype=float)
    rmse = np.asarray(rmse_kT, dtype=float)
    if steps.shape != rmse.shape or steps.ndim != 1:
        raise ValueError(f"steps and rmse_kT must be 1-D of one shape: {steps.shape}, {rmse.shape}")
    above = np.flatnonzero(~(rmse <= target_kT))
    first = 0 if above.size == 0 else above[-1] + 1
    return float(steps[first]) if first < steps.size else math.inf


spread = harness.spread


def separation_barriers_kT(
    chi: np.ndarray, free_energy_kT: np.ndarray, minima_chi: Sequence[float]
) -> list[float]:
    """Barriers of a 1-D F between consecutive projected minima.

    Parameters
    ----------
    chi : np.ndarray, shape=(n,), dtype=float
        Increasing grid of chi.
    free_energy_kT : np.ndarray, shape=(n,), dtype=float
        F/kT on ``chi``.
    minima_chi : Sequence[float]
        chi of each minimum (any order).

    Returns
    -------
    list[float]
        For each pair of neighbours in chi, max F between them minus the higher of the lowest F
        on either side of that maximum, kT; 0 where the two minima fall in one well.
    """
    chi = np.asarray(chi, dtype=float)
    f = np.asarray(free_energy_kT, dtype=float)
    points = sorted(float(m) for m in minima_chi)
    barriers = []
    for lo, hi in zip(points, points[1:], strict=False):
        segment = f[(chi >= lo) & (chi <= hi)]
        if segment.size < 3:
            barriers.append(0.0)
            continue
        top = int(np.argmax(segment))
        barriers.append(float(segment[top] - max(segment[: top + 1].min(), segment[top:].min())))
    return barriers


def natural_spline(grid_min: float, grid_max: float, values: np.ndarray) -> CubicSpline:
    """The natural cubic spline OpenMM's ``Continuous1DFunction`` uses on an even grid."""
    values = np.asarray(values, dtype=float)
    return CubicSpline(np.linspace(grid_min, grid_max, values.size), values, bc_type="natural")


def grid_spline(
    grid_min: float, grid_max: float, values: np.ndarray, periodic: bool = False
) -> Callable[[np.ndarray], np.ndarray]:
    """The cubic spline of OpenMM's ``Continuous1DFunction`` on an even grid, as a function.

    Parameters
    ----------
    grid_min, grid_max : float
        Ends of the grid (``numpy.linspace(grid_min, grid_max, len(values))``).
    values : np.ndarray, shape=(n,), dtype=float
        Values at the grid points. Periodic: the last point is the first one again (its value
        is taken from the first, as metadynamics and OPES store it).
    periodic : bool
        False: the natural spline (:func:`natural_spline`). True: the periodic spline, period
        grid_max - grid_min, arguments wrapped into [grid_min, grid_max).

    Returns
    -------
    callable
        x (array, any shape) -> the spline at x.
    """
    if not periodic:
        return natural_spline(grid_min, grid_max, values)
    values = np.array(values, dtype=float)
    values[-1] = values[0]
    spline = CubicSpline(np.linspace(grid_min, grid_max, values.size), values, bc_type="periodic")
    period = grid_max - grid_min
    return lambda x: spline(grid_min + np.mod(np.asarray(x, dtype=float) - grid_min, period))


def _sub_points(edges: np.ndarray) -> np.ndarray:
    """``EXACT_POINTS_PER_BIN`` evenly spaced points inside each bin (bin after bin)."""
    width = np.diff(edges)
    frac = (np.arange(EXACT_POINTS_PER_BIN) + 0.5) / EXACT_POINTS_PER_BIN
    return (edges[:-1, None] + width[:, None] * frac[None, :]).ravel()


# ============================================================================================
# systems
# ============================================================================================
@dataclass(frozen=True)
class Reference:
    """What every method of one system is measured against.

    Attributes
    ----------
    direction : np.ndarray, shape=(d,)
        Reference chi = direction . features (x, y; or x1..y3 for mixed_slow_mode), nm.
    edges : np.ndarray, shape=(n_bins + 1,)
        Bin edges along chi, nm.
    exact_kT : np.ndarray, shape=(n_bins,)
        Exact bin-averaged F/kT.
    mask : np.ndarray, shape=(n_bins,), dtype=bool
        Bins within ``REGION_KT`` of the exact minimum.
    minima : np.ndarray, shape=(n_states, d)
        Minima of the metastable states, nm.
    core_axis : np.ndarray, shape=(d,), optional
        Cores are balls of ``CORE_RADIUS_NM`` in the features; with ``core_axis`` they are
        intervals of that half-width along this axis instead (mixed_slow_mode: its slow
        direction, since its harmonic directions spread a basin over more than 0.35 nm).
    """

    direction: np.ndarray
    edges: np.ndarray
    exact_kT: np.ndarray
    mask: np.ndarray
    minima: np.ndarray
    core_axis: np.ndarray | None = None

    def chi(self, features: np.ndarray) -> np.ndarray:
        """The reference chi of frames (n_frames, d): features . direction, nm.

        The evaluation functions (:func:`evaluate_prefixes`, :func:`evaluate_bias`,
        :func:`evaluate_rave`) read only ``edges``, ``exact_kT``, ``mask``, :meth:`chi` and
        :meth:`core_labels` of a reference, so another benchmark can pass its own reference
        with these (e.g. alanine_dipeptide.py: chi = phi, from its sin and cos features).
        """
        return np.asarray(features, dtype=float) @ self.direction

    def core_labels(self, features: np.ndarray) -> np.ndarray:
        """:func:`core_labels` of frames (n_frames, d) under this reference's cores."""
        features = np.asarray(features, dtype=float)
        if self.core_axis is None:
            return core_labels(features, self.minima)
        axis = np.asarray(self.core_axis, dtype=float)[:, None]
        return core_labels(features @ axis, self.minima @ axis)


def reference_direction(system: str, potential) -> np.ndarray:
    """Reference chi direction of a system, the "ideal" CV (see the module docstring)."""
    if system == "three_state":
        angle = math.radians(THREE_STATE_REFERENCE_ANGLE_DEG)
        return np.array([math.cos(angle), math.sin(angle)])
    if potential.slow_direction is None:
        raise ValueError(f"no reference direction for system {system!r}")
    return unit_vector(potential.slow_direction)


def naive_direction(system: str, potential) -> np.ndarray:
    """The "naive" CV: x for the 2-D potentials, the best single coordinate (x1, 59 degrees
    off the slow mode) for mixed_slow_mode."""
    if system == "mixed_slow_mode":
        return unit_vector(potential.naive_direction)
    return np.array([1.0, 0.0])


def metastable_minima(system: str, potential) -> np.ndarray:
    """Minima of the metastable states, nm, shape (n_states, d)."""
    if system == "three_state":
        return np.array([THREE_STATE_MINIMA[k][0] for k in sorted(THREE_STATE_MINIMA)])
    if system == "mixed_slow_mode":
        return np.asarray(potential.minima, dtype=float)
    # the rotated double well is symmetric: one well at the start, the other opposite
    start = np.asarray(potential.start, dtype=float)
    found = []
    for guess in (start, -start):
        result = scipy.optimize.minimize(
            lambda p: float(potential.energy(p[0], p[1])) / potential.kT, guess
        )
        found.append(result.x)
    return np.array(found)


def projected_range(potential, direction: np.ndarray) -> tuple[float, float]:
    """Range of direction . (x, y) over the corners of the potential's extent, nm; for
    mixed_slow_mode its ``chi_range`` (60 kT along the slow mode, 6 sigma of the rest)."""
    if hasattr(potential, "chi_range"):
        return potential.chi_range(direction)
    (x0, x1), (y0, y1) = potential.extent
    corners = np.array([[x, y] for x in (x0, x1) for y in (y0, y1)]) @ np.asarray(direction)
    return float(corners.min()), float(corners.max())


def make_reference(system: str, potential, bin_width_nm: float) -> Reference:
    """Reference chi, bins, exact profile and states of one system."""
    if not bin_width_nm > 0:
        raise ValueError(f"bin_width_nm must be > 0. You supplied {bin_width_nm}")
    direction = reference_direction(system, potential)
    lo, hi = projected_range(potential, direction)
    n_bins = int(math.ceil((hi - lo) / bin_width_nm))
    edges = lo + bin_width_nm * np.arange(n_bins + 1)
    exact = bin_averaged_free_energy(potential.exact_free_energy(direction, _sub_points(edges)))
    core_axis = direction if system == "mixed_slow_mode" else None
    return Reference(
        direction,
        edges,
        exact,
        region_mask(exact),
        metastable_minima(system, potential),
        core_axis,
    )


def _position_indices(model) -> tuple[np.ndarray, np.ndarray]:
    """(particle, axis) index of each feature, all ``Position`` of one particle, so that
    ``positions[particle, axis]`` (positions (n_particles, 3) nm) gives the feature values."""
    particle, axis = [], []
    for feature in model.features:
        if getattr(feature, "kind", None) != "position" or len(feature.atoms) != 1:
            raise ValueError(f"feature {feature!r} is not the position of one particle")
        particle.append(feature.atoms[0])
        axis.append("xyz".index(feature.axis))
    return np.array(particle), np.array(axis)


def linear_cv_force(model, direction: Sequence[float]) -> openmm.Force:
    """An OpenMM force whose energy is the CV direction . features, nm.

    Parameters
    ----------
    model : ModelSystem
        Its features must be ``rave.md.features.Position`` of single particles (x, y of each
        model particle), as for every model potential here.
    direction : Sequence[float], shape=(n_features,)
        Coefficients (normalised here).

    Returns
    -------
    openmm.CustomCompoundBondForce
        One bond over all particles of the system.
    """
    c = unit_vector(direction)
    features = list(model.features)
    if c.size != len(features):
        raise ValueError(
            f"direction must have one entry per feature ({len(features)}). You supplied {c.size}"
        )
    n = model.system.getNumParticles()
    particle, axis = _position_indices(model)
    terms = [
        f"({float(k)!r})*{'xyz'[a]}{p + 1}" for k, p, a in zip(c, particle, axis, strict=True)
    ]
    force = openmm.CustomCompoundBondForce(n, "+".join(terms))
    force.addBond(list(range(n)), [])
    return force


@dataclass(frozen=True)
class BiasCV:
    """A CV for metadynamics and OPES: its OpenMM force, its grid, and its value from features.

    :func:`run_metadynamics` and :func:`run_opes` take one in place of a direction, e.g. a
    dihedral (``CustomTorsionForce("theta")``, periodic on [-pi, pi)) in alanine_dipeptide.py;
    a direction becomes :func:`linear_cv`.

    Attributes
    ----------
    make_force : callable
        () -> a new ``openmm.Force`` whose energy is the CV (for ``app.BiasVariable``).
    lo, hi : float
        The CV grid, in the CV's units (OpenMM's bias is zero outside it unless periodic).
    of_features : callable
        features (n_frames, d) -> CV (n_frames,): the same CV from the recorded features (the
        frames' bias and the reweighting use it).
    periodic : bool
        A periodic CV of period hi - lo (the grid's last point is its first).
    grid_width : int, optional
        Grid points; None: OpenMM's default, 5 per Gaussian width.
    """

    make_force: Callable[[], openmm.Force]
    lo: float
    hi: float
    of_features: Callable[[np.ndarray], np.ndarray]
    periodic: bool = False
    grid_width: int | None = None

    def variable(self, width: float) -> app.BiasVariable:
        """An ``app.BiasVariable`` of this CV with Gaussian (or grid) width ``width``."""
        return app.BiasVariable(
            self.make_force(), self.lo, self.hi, width, self.periodic, self.grid_width
        )

    def spline(self, values: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """OpenMM's spline of grid ``values`` on this CV's grid (:func:`grid_spline`)."""
        return grid_spline(self.lo, self.hi, values, self.periodic)

    def distinct(self, values: np.ndarray) -> np.ndarray:
        """Grid values at distinct CV points (periodic: without the repeated last point)."""
        values = np.asarray(values, dtype=float)
        return values[:-1] if self.periodic else values


def linear_cv(potential, model, direction: Sequence[float]) -> BiasCV:
    """The CV direction . features of a model system (:func:`linear_cv_force`), on the
    projected range of the potential plus ``CV_MARGIN_NM`` at both ends, nm."""
    c = unit_vector(direction)
    lo, hi = projected_range(potential, c)
    return BiasCV(
        lambda: linear_cv_force(model, c),
        lo - CV_MARGIN_NM,
        hi + CV_MARGIN_NM,
        lambda features: np.asarray(features, dtype=float) @ c,
    )


def frame_features(model) -> Callable[[np.ndarray], np.ndarray]:
    """positions (n_particles, 3) nm -> the features of ``model`` (d,) at one frame.

    Positions of single particles (the model potentials) are read by indexing; any other
    features (e.g. sin and cos of dihedrals) by ``rave.md.features.evaluate_features``.
    """
    try:
        particle, axis = _position_indices(model)
    except ValueError:
        features = list(model.features)
        return lambda positions: evaluate_features(features, positions)[0]
    return lambda positions: np.asarray(positions)[particle, axis]


# ============================================================================================
# runs
# ============================================================================================
@dataclass
class Run:
    """One run of one method: frames in sampling order, their weights and per-checkpoint data.

    Attributes
    ----------
    features : np.ndarray, shape=(n_frames, d)
        Order parameters of each frame (x, y; x1..y3 for mixed_slow_mode), nm.
    segments : np.ndarray, shape=(n_frames,), dtype=int
        Continuous trajectory piece of each frame (RAVE: one per round and walker).
    log_weights : np.ndarray, shape=(n_frames,)
        Unbiasing log-weight of each frame (zeros for plain MD; unused by RAVE, which
        reweights each prefix by MBAR).
    bias_free_energy : dict
        metadynamics and OPES only: checkpoint steps -> F/kT of the method's own estimate
        (metaD: its bias; OPES: ``getFreeEnergy``) on the reference bins.
    rounds : list
        RAVE only: (features, its MBAR states: list of (state, frames), potential energies or
        None, MD steps over all walkers) of each round.
    steps_per_round : int
        RAVE only: MD steps of one round over all its walkers.
    round_wall_s : list of float
        RAVE only: wall time of each round (MD, reweighting, learning, bias), from the sum of
        its ``round.json`` timings.
    wall_s : float
        Wall time of the run, s.
    notes : dict
        Diagnostics (e.g. the OpenMM/numpy bias mismatch).
    """

    features: np.ndarray
    log_weights: np.ndarray
    segments: np.ndarray | None = None
    bias_free_energy: dict = field(default_factory=dict)
    rounds: list = field(default_factory=list)
    round_wall_s: list = field(default_factory=list)
    steps_per_round: int = 0
    wall_s: float = 0.0
    notes: dict = field(default_factory=dict)


def run_plain_md(potential, model, seed: int, n_steps: int, report_interval: int) -> Run:
    """Unbiased MD on the Reference platform (``rave.md.walker.Walker`` without bias)."""
    t0 = time.perf_counter()
    walker = Walker(
        model.system,
        model.positions,
        model.features,
        potential.temperature_K,
        potential.timestep_ps,
        potential.friction_per_ps,
        seed=seed,
        platform="Reference",
        with_bias=False,
    )
    frames = walker.run(n_steps, report_interval)
    return Run(
        np.array(frames.features, dtype=float),
        np.zeros(len(frames)),
        wall_s=time.perf_counter() - t0,
    )


def run_expanded(potential, model, seed: int, n_steps: int, report_interval: int) -> Run:
    """The expanded ensemble alone: one walker calibrates at the target temperature (5 % of
    the steps), then moves over the ladder ``rave.md.explore`` sizes (300-1200 K for 300 K)."""
    from rave.md.explore import (
        ExplorationSpec,
        calibration_frames,
        potential_heat_capacity,
        temperature_ladder,
    )

    t0 = time.perf_counter()
    t_k = potential.temperature_K
    walker = Walker(model.system, model.positions, model.features, t_k, potential.timestep_ps,
                    potential.friction_per_ps, seed=seed, platform="Reference",
                    with_bias=False, record_potential=True)
    spec = ExplorationSpec(max_temperature_K=4.0 * t_k)
    n_frames = n_steps // report_interval
    n_cal = calibration_frames(n_frames, spec.calibration_fraction)
    calibration = walker.run(n_cal * report_interval, report_interval)
    plan = temperature_ladder(t_k, spec, potential_heat_capacity(calibration.potential_kjmol,
                                                                 walker.kT))
    walker.start_ladder(plan.temperatures_K, spec.move_interval, seed + 1)
    frames = walker.run((n_frames - n_cal) * report_interval, report_interval)
    state = np.concatenate([np.zeros(n_cal, dtype=np.int64), frames.state])
    return Run(
        np.concatenate([calibration.features, frames.features]),
        np.zeros(n_frames),
        wall_s=time.perf_counter() - t0,
        notes={"temperatures_K": plan.temperatures_K, "state": state,
               "potential_kjmol": np.concatenate([calibration.potential_kjmol,
                                                  frames.potential_kjmol])},
    )


def evaluate_expanded(run: Run, reference: Reference, kT: float,
                      checkpoints: Sequence[int], report_interval: int) -> list[dict]:
    """:func:`evaluate_prefixes` with each prefix reweighted to the target temperature by MBAR
    over its temperature states."""
    temperatures = run.notes["temperatures_K"]
    state, potential = run.notes["state"], run.notes["potential_kjmol"]
    weighted = []
    for steps in checkpoints:
        n = int(steps) // report_interval
        if n < 1 or n > len(state):
            continue
        counts = np.bincount(state[:n], minlength=len(temperatures))
        states = [(TemperatureState(t), int(c)) for t, c in zip(temperatures, counts,
                                                                 strict=True)]
        reduced, _ = reduced_bias_matrix(run.features[:n], states, kT, potential[:n])
        keep = counts > 0
        log_w = mbar_reweight(reduced[keep], counts[keep]).log_weights
        prefix = Run(run.features[:n], log_w, segments=None, wall_s=run.wall_s * n / len(state))
        weighted += evaluate_prefixes(prefix, reference, [steps], report_interval)
    return weighted


def run_metadynamics(
    potential,
    model,
    cv_direction: Sequence[float] | BiasCV,
    seed: int,
    n_steps: int,
    report_interval: int,
    *,
    height_kjmol: float,
    sigma_nm: float,
    bias_factor: float,
    frequency: int,
    reference: Reference | None = None,
    checkpoints: Sequence[int] = (),
) -> Run:
    """Well-tempered metadynamics with ``openmm.app.Metadynamics`` on a linear CV (or any
    :class:`BiasCV`).

    Parameters
    ----------
    potential, model
        A model potential and its ``ModelSystem`` (features: particle positions). Any objects
        with these attributes will do: ``potential``: ``temperature_K``, ``timestep_ps``,
        ``friction_per_ps``, ``kT`` (kJ/mol); ``model``: ``system``, ``topology``,
        ``positions`` (nm), ``features`` (``rave.md.features.Feature``; recorded at every frame,
        :func:`frame_features`).
    cv_direction : Sequence[float], shape=(d,), or BiasCV
        CV = cv_direction . features (normalised here), nm (:func:`linear_cv`); or a
        :class:`BiasCV`, e.g. a periodic dihedral.
    seed : int
        Seeds the integrator and the initial velocities.
    n_steps, report_interval : int
        Run length and frame interval, steps; ``frequency`` must be a multiple of
        ``report_interval`` so that a deposit never falls inside a frame's interval.
    height_kjmol, sigma_nm, bias_factor, frequency
        Initial Gaussian height (kJ/mol), width (in the CV's units: nm for a linear CV, rad
        for a dihedral), gamma, steps between deposits.
    reference : Reference, optional
        When given (and ``checkpoints``), F from the bias, -(gamma/(gamma-1)) V, is recorded on
        its bins at each checkpoint; meaningful when the CV is the reference chi.
    checkpoints : Sequence[int]
        Cumulative steps at which to record F from the bias.

    Returns
    -------
    Run
        Frames with log-weights [V(s(t), t) - c(t)] / kT (c(t) reweighting); ``notes`` holds
        the largest difference between the bias OpenMM applied at a frame and ours.
    """
    if frequency % report_interval:
        raise ValueError(
            f"metadynamics frequency ({frequency}) must be a multiple of report_interval "
            f"({report_interval})"
        )
    t0 = time.perf_counter()
    cv = (cv_direction if isinstance(cv_direction, BiasCV)
          else linear_cv(potential, model, cv_direction))
    kT = potential.kT
    lo, hi = cv.lo, cv.hi
    system = openmm.XmlSerializer.clone(model.system)
    variable = cv.variable(sigma_nm)
    meta = app.Metadynamics(
        system,
        [variable],
        potential.temperature_K * u.kelvin,
        bias_factor,
        height_kjmol * u.kilojoule_per_mole,
        frequency,
    )
    bias_group = system.getForce(system.getNumForces() - 1).getForceGroup()  # metaD's force
    integrator = openmm.LangevinMiddleIntegrator(
        potential.temperature_K, potential.friction_per_ps, potential.timestep_ps
    )
    integrator.setRandomNumberSeed(int(seed))
    simulation = app.Simulation(
        model.topology, system, integrator, openmm.Platform.getPlatformByName("Reference")
    )
    simulation.context.setPositions(np.asarray(model.positions, dtype=float))
    simulation.context.setVelocitiesToTemperature(potential.temperature_K, int(seed))
    to_bias = (bias_factor - 1.0) / bias_factor  # V = -(gamma-1)/gamma * getFreeEnergy()

    def current_bias() -> np.ndarray:
        return -to_bias * np.asarray(meta.getFreeEnergy().value_in_unit(u.kilojoule_per_mole))

    n_frames = n_steps // report_interval
    features = np.empty((n_frames, len(model.features)))
    extract = frame_features(model)
    log_w = np.empty(n_frames)
    applied = {}  # frame -> bias read from OpenMM (frames not followed by a deposit)
    wanted = {int(s) for s in checkpoints}
    bias_free_energy = {}
    grid = np.zeros(variable.gridWidth)  # the bias the next frames are sampled under
    pending_from = 0
    for frame in range(n_frames):
        meta.step(simulation, report_interval)
        step = simulation.currentStep
        deposited = step % frequency == 0
        check = frame < BIAS_CHECK_FRAMES and not deposited
        state = simulation.context.getState(getPositions=True, getEnergy=check, groups={bias_group})
        positions = state.getPositions(asNumpy=True).value_in_unit(u.nanometer)
        features[frame] = extract(positions)
        if check:
            applied[frame] = state.getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)
        if deposited or frame == n_frames - 1:
            span = slice(pending_from, frame + 1)
            v = cv.spline(grid)(cv.of_features(features[span]))
            log_w[span] = (v - ct_offset_kjmol(cv.distinct(grid), kT, bias_factor)) / kT
            for f in applied.keys() & range(span.start, span.stop):
                applied[f] -= v[f - span.start]
            pending_from = frame + 1
            if deposited:
                grid = current_bias()
        if step in wanted and reference is not None:
            f_bias = -current_bias() / to_bias / kT  # F/kT on the CV grid
            centers = _sub_points(reference.edges)
            values = cv.spline(f_bias)(np.clip(centers, lo, hi))
            bias_free_energy[step] = bin_averaged_free_energy(values)
    mismatch = max((abs(d) for d in applied.values()), default=0.0)
    if mismatch > BIAS_CHECK_TOLERANCE_KJMOL:
        print(
            f"warning: metadynamics bias from OpenMM and numpy differ by {mismatch:.2e} kJ/mol",
            file=sys.stderr,
        )
    return Run(
        features,
        log_w,
        bias_free_energy=bias_free_energy,
        wall_s=time.perf_counter() - t0,
        notes={"bias_mismatch_kjmol": mismatch, "grid": (lo, hi, variable.gridWidth)},
    )


class OPESFrameRecorder:
    """OpenMM reporter: every ``report_interval`` steps, the features and the OPES bias energy.

    ``OPES.step`` advances the Simulation with ``simulation.step`` between its kernel
    deposits, and OpenMM calls reporters inside ``simulation.step``, after the integration
    step and before ``step`` returns. A frame at a deposit step is therefore recorded before
    that kernel enters the bias: the energy read (``OPES.getBiasEnergy``, the bias force group
    of the Context, minus the barrier offset the table carries) is the bias the frame was
    sampled under.

    Parameters
    ----------
    opes : openmm_opes.OPES
    model : ModelSystem
        Its features are recorded at every frame (:func:`frame_features`).
    report_interval : int
        Steps between frames.
    n_frames : int
        Frames to hold.
    check_frames : int
        For the first ``check_frames`` frames, also evaluate the bias from ``opes.getBias()``
        on the grid with the spline of ``Continuous1DFunction`` (natural, or periodic for a
        periodic CV) and keep the largest |OpenMM - numpy| difference (kJ/mol) in
        :attr:`mismatch_kjmol`.
    direction : np.ndarray, shape=(d,), or BiasCV
        The CV direction (for that check), or the CV itself.
    limits : tuple[float, float], optional
        The CV grid (for that check), nm; needed with a direction, unused with a BiasCV.
    """

    def __init__(
        self, opes, model, report_interval, n_frames, check_frames, direction, limits=None
    ) -> None:
        self.opes = opes
        self.interval = int(report_interval)
        self.extract = frame_features(model)
        self.features = np.empty((n_frames, len(model.features)))
        self.bias_kjmol = np.empty(n_frames)
        self.steps = np.empty(n_frames, dtype=int)
        self.count = 0
        self.check_frames = int(check_frames)
        if isinstance(direction, BiasCV):
            self.cv = direction
        else:
            if limits is None:
                raise ValueError("OPESFrameRecorder needs limits (the CV grid) with a direction")
            c = np.asarray(direction, dtype=float)
            self.cv = BiasCV(lambda: None, float(limits[0]), float(limits[1]),
                             lambda features: np.asarray(features, dtype=float) @ c)
        self.limits = (self.cv.lo, self.cv.hi)
        self.mismatch_kjmol = 0.0

    def describeNextReport(self, simulation) -> dict:  # noqa: N802 - OpenMM's reporter API
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": None, "include": []}

    def report(self, simulation, state) -> None:
        if self.count >= len(self.features):
            return
        context = simulation.context
        positions = context.getState(getPositions=True).getPositions(asNumpy=True)
        values = self.extract(positions.value_in_unit(u.nanometer))
        bias = self.opes.getBiasEnergy(context).value_in_unit(u.kilojoule_per_mole)
        i = self.count
        self.features[i], self.bias_kjmol[i], self.steps[i] = values, bias, simulation.currentStep
        if i < self.check_frames:
            grid = np.asarray(self.opes.getBias().value_in_unit(u.kilojoule_per_mole))
            chi = float(self.cv.of_features(np.asarray(values)[None, :])[0])
            if not self.cv.periodic:
                chi = float(np.clip(chi, self.cv.lo, self.cv.hi))
            numpy_bias = float(self.cv.spline(grid)(chi))
            self.mismatch_kjmol = max(self.mismatch_kjmol, abs(numpy_bias - bias))
        self.count += 1


def run_opes(
    potential,
    model,
    cv_direction: Sequence[float] | BiasCV,
    seed: int,
    n_steps: int,
    report_interval: int,
    *,
    barrier_kjmol: float,
    frequency: int,
    variance_frequency: int,
    grid_sigma_nm: float,
    reference: Reference | None = None,
    checkpoints: Sequence[int] = (),
) -> Run:
    """OPES (``openmm_opes.OPES``, not explore mode) on a linear CV (or any :class:`BiasCV`);
    frames reweighted.

    The CV is a ``BiasVariable`` of :func:`linear_cv_force` on the projected range of the
    potential plus ``CV_MARGIN_NM`` at both ends (:func:`linear_cv`), or the given
    :class:`BiasCV`; the kernel bandwidth is adaptive
    (``varianceFrequency``), the bias factor OPES's default barrier / kT. Dynamics as for every
    method here: ``LangevinMiddleIntegrator`` at the potential's temperature, time step and
    friction, Reference platform, seeded integrator and velocities.

    Reweighting: each frame gets log w = V_t(s_t)/kT, the bias read from OpenMM at that frame
    (:class:`OPESFrameRecorder`: the bias the frame was sampled under, before a deposit at the
    same step). This is the standard OPES reweighting: its bias is normalised by the mean
    explored density Z_n, so it becomes quasi-static and no c(t) is subtracted; all frames from
    step 0 are used (before the first kernel, after ``statsWindowSize`` x ``frequency`` steps,
    V = -barrier everywhere, a constant weight), so early frames under a still-changing bias
    count as they are, as the prefixes of the other methods do.

    Parameters
    ----------
    potential, model
        A model potential and its ``ModelSystem`` (features: particle positions), or any
        objects with the attributes :func:`run_metadynamics` names.
    cv_direction : Sequence[float], shape=(d,), or BiasCV
        CV = cv_direction . features (normalised here), nm; or a :class:`BiasCV`.
    seed : int
        Seeds the integrator and the initial velocities.
    n_steps, report_interval : int
        Run length and frame interval, steps.
    barrier_kjmol : float
        OPES ``barrier``, kJ/mol.
    frequency, variance_frequency : int
        Steps between kernels, and between updates of the CV variance (a divisor of
        ``frequency``).
    grid_sigma_nm : float
        ``biasWidth`` of the BiasVariable: sets only the grid, 5 points per width, nm (in the
        CV's units; unused when the BiasCV fixes ``grid_width``).
    reference : Reference, optional
        When given (and ``checkpoints``), OPES's own estimate ``getFreeEnergy()`` is recorded
        on its bins at each checkpoint; meaningful when the CV is the reference chi.
    checkpoints : Sequence[int]
        Cumulative steps at which to record that estimate.

    Returns
    -------
    Run
        Frames with log-weights V_t(s_t)/kT; ``notes`` holds the largest |OpenMM - numpy|
        bias over the first ``BIAS_CHECK_FRAMES`` frames, the CV grid and the kernel count.
    """
    from openmm_opes import OPES

    if frequency % variance_frequency:
        raise ValueError(
            f"OPES variance_frequency ({variance_frequency}) must divide frequency ({frequency})"
        )
    t0 = time.perf_counter()
    cv = (cv_direction if isinstance(cv_direction, BiasCV)
          else linear_cv(potential, model, cv_direction))
    lo, hi = cv.lo, cv.hi
    system = openmm.XmlSerializer.clone(model.system)
    variable = cv.variable(grid_sigma_nm)
    opes = OPES(
        system,
        [variable],
        potential.temperature_K * u.kelvin,
        barrier_kjmol * u.kilojoule_per_mole,
        frequency,
        variance_frequency,
    )
    integrator = openmm.LangevinMiddleIntegrator(
        potential.temperature_K, potential.friction_per_ps, potential.timestep_ps
    )
    integrator.setRandomNumberSeed(int(seed))
    simulation = app.Simulation(
        model.topology, system, integrator, openmm.Platform.getPlatformByName("Reference")
    )
    simulation.context.setPositions(np.asarray(model.positions, dtype=float))
    simulation.context.setVelocitiesToTemperature(potential.temperature_K, int(seed))
    n_frames = n_steps // report_interval
    recorder = OPESFrameRecorder(opes, model, report_interval, n_frames, BIAS_CHECK_FRAMES, cv)
    simulation.reporters.append(recorder)
    stops = sorted({int(s) for s in checkpoints if 0 < s <= n_steps} | {n_frames * report_interval})
    bias_free_energy = {}
    for stop in stops:
        opes.step(simulation, stop - simulation.currentStep)
        if reference is None or stop not in checkpoints:
            continue
        if opes.getNumKernels() == 0:  # no kernel yet: no estimate (getFreeEnergy is NaN)
            bias_free_energy[stop] = np.full(len(reference.exact_kT), math.inf)
            continue
        f_cv = np.asarray(opes.getFreeEnergy().value_in_unit(u.kilojoule_per_mole)) / potential.kT
        finite = np.isfinite(f_cv)
        # a grid point where the density estimate underflowed: far above any compared bin
        f_cv = np.where(finite, f_cv, f_cv[finite].max() + 50.0)
        centers = _sub_points(reference.edges)
        values = cv.spline(f_cv)(np.clip(centers, lo, hi))
        bias_free_energy[stop] = bin_averaged_free_energy(values)
    if recorder.count != n_frames:
        raise RuntimeError(f"OPES run recorded {recorder.count} frames, expected {n_frames}")
    if recorder.mismatch_kjmol > BIAS_CHECK_TOLERANCE_KJMOL:
        print(
            f"warning: OPES bias from OpenMM and numpy differ by {recorder.mismatch_kjmol:.2e} "
            "kJ/mol",
            file=sys.stderr,
        )
    return Run(
        recorder.features,
        recorder.bias_kjmol / potential.kT,
        bias_free_energy=bias_free_energy,
        wall_s=time.perf_counter() - t0,
        notes={
            "bias_mismatch_kjmol": recorder.mismatch_kjmol,
            "grid": (lo, hi, variable.gridWidth),
            "kernels": opes.getNumKernels(),
            "bias_kjmol": recorder.bias_kjmol,
        },
    )


def rave_config(
    system: str,
    seed: int,
    report_interval: int,
    rounds: int | None = None,
    steps_per_round: int | None = None,
    models: int | None = None,
    vae: dict | None = None,
    max_total_steps: int | None = None,
    first_round_steps: int | None = None,
    *,
    base: dict | None = None,
    budget_only: bool = False,
) -> dict:
    """The campaign config (TOML-shaped dict) of ``workflows/<system>.toml`` with overrides.

    Early stopping is disabled (``convergence.min_rounds = rounds + 1``), figures and progress
    bars are off; ``sampling.seed`` and ``sampling.report_interval`` are the benchmark's;
    ``vae`` adds keys to ``[vae]`` (e.g. a smaller network for a smoke test);
    ``max_total_steps`` and ``first_round_steps`` set the campaign's budget schedule
    (``rave.campaign.schedule``; ``rounds`` is then an upper bound). ``base``: start from this
    config (a TOML-shaped dict, copied, e.g. alanine_dipeptide.py's) instead of the system's
    TOML file; ``system`` is then only a name. ``budget_only``: the TOML's ``rounds`` and
    ``steps_per_round`` are dropped, so the budget alone shapes the schedule.
    """
    if base is not None:
        data = copy.deepcopy(base)
    else:
        data = tomllib.loads((WORKFLOWS / f"{system}.toml").read_text())
    sampling = data.setdefault("sampling", {})
    if budget_only:
        sampling.pop("rounds", None)
        sampling.pop("steps_per_round", None)
    if rounds is not None:
        sampling["rounds"] = int(rounds)
    if steps_per_round is not None:
        sampling["steps_per_round"] = int(steps_per_round)
    sampling["seed"] = int(seed)
    sampling["report_interval"] = int(report_interval)
    if max_total_steps is not None:
        sampling["max_total_steps"] = int(max_total_steps)
    if first_round_steps is not None:
        sampling["first_round_steps"] = int(first_round_steps)
    if models is not None:
        data.setdefault("vae", {})["models"] = int(models)
    data.setdefault("vae", {}).update(vae or {})
    data["output"] = {"figures": False, "progress": False}
    rounds_total = config_from_dict(data).sampling.round_limit  # validates, before any MD
    data.setdefault("convergence", {})["min_rounds"] = rounds_total + 1
    config_from_dict(data)
    return data


def run_rave(config: dict, workdir: Path) -> Run:
    """A RAVE campaign in ``workdir`` (must not exist); frames and biases read back per round.

    Reads each round's frames (``round_NNN/frames.npz``: features, and walker when present)
    and the bias states they were sampled under (``round_NNN/bias_applied.json``, absent in
    round 0) through the campaign store (:class:`rave.campaign.store.CampaignStore`).
    """
    t0 = time.perf_counter()
    parsed = config_from_dict(config)
    Campaign(parsed, workdir).run()
    walkers = int(getattr(parsed.sampling, "walkers", 1))
    campaign = CampaignStore(workdir)
    rounds, segments, round_wall = [], [], []
    index = 0
    while campaign.round_complete(index):
        frames = campaign.frames(index)
        features = np.asarray(frames.features, dtype=float)
        walker = np.zeros(len(features)) if frames.walker is None else frames.walker
        record = campaign.round_record(index)
        rounds.append((features, campaign.bias_states(index, len(features)),
                       frames.potential_kjmol, int(record.steps) * int(record.walkers)))
        round_wall.append(sum(campaign.round_record(index).timings_s.values())
                          if campaign.round_complete(index) else math.nan)
        segments.append(index * (walkers + 1) + walker.astype(int))
        index += 1
    if not rounds:
        raise RuntimeError(f"the RAVE campaign in {workdir} wrote no "
                           f"round_NNN/{campaign.FRAMES}")
    features = np.concatenate([r[0] for r in rounds])
    return Run(
        features,
        np.zeros(len(features)),
        segments=np.concatenate(segments),
        rounds=rounds,
        round_wall_s=round_wall,
        steps_per_round=parsed.sampling.round_steps * walkers,
        wall_s=time.perf_counter() - t0,
    )


# ============================================================================================
# evaluation
# ============================================================================================
def evaluate_prefixes(
    run: Run, reference: Reference, checkpoints: Sequence[int], report_interval: int
) -> list[dict]:
    """RMSE, coverage and transitions of a frame-based run at each checkpoint (a prefix)."""
    chi = reference.chi(run.features)
    transitions = cumulative_transitions(reference.core_labels(run.features), run.segments)
    rows = []
    for steps in checkpoints:
        n = int(steps) // report_interval
        if n < 1 or n > len(chi):
            continue
        _, estimate = free_energy_profile(chi[:n], run.log_weights[:n], reference.edges)
        rmse, coverage = profile_rmse(estimate, reference.exact_kT, reference.mask)
        rows.append(
            {
                "steps": int(steps),
                "rmse_kT": rmse,
                "coverage": coverage,
                "transitions": int(transitions[n - 1]),
                # MD-only methods: wall time grows with the steps run
                "elapsed_s": run.wall_s * n / len(chi),
            }
        )
    return rows


def evaluate_bias(run: Run, reference: Reference, report_interval: int) -> list[dict]:
    """RMSE of F from the metadynamics bias itself at each recorded checkpoint."""
    transitions = cumulative_transitions(reference.core_labels(run.features), run.segments)
    rows = []
    for steps, estimate in sorted(run.bias_free_energy.items()):
        rmse, coverage = profile_rmse(estimate, reference.exact_kT, reference.mask)
        rows.append(
            {
                "steps": int(steps),
                "rmse_kT": rmse,
                "coverage": coverage,
                "transitions": int(transitions[steps // report_interval - 1]),
                "elapsed_s": run.wall_s * steps / (len(run.features) * report_interval),
            }
        )
    return rows


def evaluate_rave(run: Run, reference: Reference, kT: float, report_interval: int) -> list[dict]:
    """After each round k: F(chi) from rounds 0..k-1, MBAR over their stored states (one per
    static round, one per block of an OPES round, one per temperature of an exploring round);
    the cumulative MD steps are those ``round.json`` records for rounds 0..k-1 (all walkers;
    rounds may differ in length)."""
    transitions = cumulative_transitions(reference.core_labels(run.features), run.segments)
    rows = []
    for k in range(1, len(run.rounds) + 1):
        features = np.concatenate([r[0] for r in run.rounds[:k]])
        per_round = [r[1] for r in run.rounds[:k]]
        states = [state for round_states in per_round for state in round_states]
        potential = frame_potentials(per_round, [r[2] for r in run.rounds[:k]])
        reduced, counts = reduced_bias_matrix(features, states, kT, potential)
        log_w = mbar_reweight(reduced, counts).log_weights
        chi = reference.chi(features)
        _, estimate = free_energy_profile(chi, log_w, reference.edges)
        rmse, coverage = profile_rmse(estimate, reference.exact_kT, reference.mask)
        rows.append(
            {
                "steps": int(sum(r[3] for r in run.rounds[:k])),
                "elapsed_s": float(np.sum(run.round_wall_s[:k])),
                "rmse_kT": rmse,
                "coverage": coverage,
                "transitions": int(transitions[len(features) - 1]),
            }
        )
    return rows


def summarise(rows: list[dict], target_kT: float) -> tuple[list[dict], list[dict]]:
    """Per (system, method, steps): median/min/max over seeds; per (system, method): steps to
    target and ratio to RAVE."""
    table, to_target = [], []
    keys = sorted(
        {(r["system"], r["method"]) for r in rows},
        key=lambda k: (SYSTEMS.index(k[0]) if k[0] in SYSTEMS else 99, METHODS.index(k[1])),
    )
    for system, method in keys:
        mine = [r for r in rows if r["system"] == system and r["method"] == method]
        for steps in sorted({r["steps"] for r in mine}):
            at = [r for r in mine if r["steps"] == steps]
            rm, rlo, rhi = spread([r["rmse_kT"] for r in at])
            tm, tlo, thi = spread([r["transitions"] for r in at])
            table.append(
                {
                    "system": system,
                    "method": method,
                    "steps": steps,
                    "seeds": len(at),
                    "rmse_median_kT": rm,
                    "rmse_min_kT": rlo,
                    "rmse_max_kT": rhi,
                    "coverage_median": spread([r["coverage"] for r in at])[0],
                    "transitions_median": tm,
                    "transitions_min": tlo,
                    "transitions_max": thi,
                }
            )
        reached, longest, walls = [], [], []
        for seed in sorted({r["seed"] for r in mine}):
            run = sorted((r for r in mine if r["seed"] == seed), key=lambda r: r["steps"])
            steps = np.array([r["steps"] for r in run])
            reached.append(steps_to_target(steps, np.array([r["rmse_kT"] for r in run]), target_kT))
            longest.append(int(steps[-1]))
            at = [r.get("elapsed_s", math.nan) for r in run if r["steps"] == reached[-1]]
            walls.append(at[0] if at else math.inf)
        m, lo, hi = spread(reached)
        wm, wlo, whi = spread(walls)
        to_target.append(
            {
                "system": system,
                "method": method,
                "seeds": len(reached),
                "steps_to_target_median": m,
                "steps_to_target_min": lo,
                "steps_to_target_max": hi,
                "wall_to_target_median_s": wm,
                "wall_to_target_min_s": wlo,
                "wall_to_target_max_s": whi,
                "longest_run_steps": max(longest),
            }
        )
    for row in to_target:
        rave = [r for r in to_target if r["system"] == row["system"] and r["method"] == "rave"]
        row["ratio_to_rave"], row["ratio_bound"] = math.nan, ""
        if not rave:
            continue
        a, b = row["steps_to_target_median"], rave[0]["steps_to_target_median"]
        if math.isfinite(a) and math.isfinite(b):
            row["ratio_to_rave"] = a / b
        elif math.isfinite(b):  # this method never got there: more than its longest run
            row["ratio_to_rave"], row["ratio_bound"] = row["longest_run_steps"] / b, ">"
        elif math.isfinite(a):  # RAVE never got there
            row["ratio_to_rave"] = a / rave[0]["longest_run_steps"]
            row["ratio_bound"] = "<"
    return table, to_target


# ============================================================================================
# output
# ============================================================================================
def _fmt_steps(steps: float) -> str:
    if not math.isfinite(steps):
        return "never"
    if steps >= 1e6:
        return f"{steps / 1e6:g}M"
    if steps >= 1e3:
        return f"{steps / 1e3:g}k"
    return f"{steps:g}"


def _fmt_rmse(row: dict | None) -> str:
    if row is None:
        return "-"
    if not math.isfinite(row["rmse_median_kT"]):
        return f"inf ({100 * row['coverage_median']:.0f}% cov)"
    hi = row["rmse_max_kT"]
    return f"{row['rmse_median_kT']:.2f} [{row['rmse_min_kT']:.2f}-{hi:.2f}]"


def print_tables(
    table: list[dict], to_target: list[dict], target_kT: float, profile: str = "F(chi) vs exact"
) -> None:
    """The RMSE and transitions tables per system and the steps-to-target table; ``profile``
    names what the RMSE compares in the tables' titles."""
    for system in dict.fromkeys(r["system"] for r in table):
        rows = [r for r in table if r["system"] == system]
        methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
        seeds = max(r["seeds"] for r in rows)
        print(
            f"\n{system}: RMSE of {profile} (kT), median [min-max] over {seeds} seed(s); "
            f"'inf' = a bin within {REGION_KT:g} kT unsampled"
        )
        cell = {(r["method"], r["steps"]): r for r in rows}
        steps_all = sorted({r["steps"] for r in rows})
        widths = [10] + [max(len(m), 24) for m in methods]
        print(" | ".join(h.ljust(w) for h, w in zip(["steps", *methods], widths, strict=True)))
        for steps in steps_all:
            cells = [_fmt_steps(steps)] + [_fmt_rmse(cell.get((m, steps))) for m in methods]
            print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
        print(f"\n{system}: transitions between metastable states, median [min-max]")
        print(" | ".join(h.ljust(w) for h, w in zip(["steps", *methods], widths, strict=True)))
        for steps in steps_all:
            cells = [_fmt_steps(steps)]
            for m in methods:
                r = cell.get((m, steps))
                cells.append(
                    "-"
                    if r is None
                    else f"{r['transitions_median']:g} "
                    f"[{r['transitions_min']:g}-{r['transitions_max']:g}]"
                )
            print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    print_to_target(to_target, target_kT)


def print_to_target(to_target: list[dict], target_kT: float) -> None:
    """The steps-to-target table: MD steps and wall time (s) to reach ``target_kT``."""
    print(
        f"\nMD steps (and wall time, s) to reach RMSE <= {target_kT:g} kT (and stay), median "
        f"[min-max]; ratio = median / RAVE's median"
    )
    print(f"{'system':<20} | {'method':<17} | {'steps':<26} | {'wall s':<20} | ratio to RAVE")
    for r in to_target:
        steps = (
            f"{_fmt_steps(r['steps_to_target_median'])} [{_fmt_steps(r['steps_to_target_min'])}"
            f"-{_fmt_steps(r['steps_to_target_max'])}]"
        )
        if not math.isfinite(r["steps_to_target_median"]):
            steps = f"> {_fmt_steps(r['longest_run_steps'])} (not reached)"
        ratio = r["ratio_to_rave"]
        ratio_text = "-" if math.isnan(ratio) else f"{r['ratio_bound']}{ratio:.2f}"
        wall = r.get("wall_to_target_median_s", math.nan)
        wall_text = ("-" if not math.isfinite(wall) else
                     f"{wall:.1f} [{r['wall_to_target_min_s']:.1f}-"
                     f"{r['wall_to_target_max_s']:.1f}]")
        print(f"{r['system']:<20} | {r['method']:<17} | {steps:<26} | {wall_text:<20} | "
              f"{ratio_text}")


write_csv = harness.write_csv


def summaries(rows: list[dict], targets: Sequence[float]) -> tuple[list[dict], list[dict]]:
    """The per-checkpoint table and the steps-to-target rows of every target.

    Parameters
    ----------
    rows : list of dict
        Every run and checkpoint (system, seed, method, steps, rmse_kT, coverage, transitions,
        elapsed_s).
    targets : sequence of float
        Target RMSEs, kT.

    Returns
    -------
    table : list of dict
        Medians and min-max over seeds per system, method and steps (:func:`summarise`).
    to_target : list of dict
        :func:`summarise`'s steps-to-target rows for each target, with ``target_kT``.
    """
    table, to_target = [], []
    for k, target in enumerate(targets):
        t, reached = summarise(rows, target)
        table = table if k else t
        to_target += [{**r, "target_kT": target} for r in reached]
    return table, to_target


def finish(bench: harness.BenchmarkRun, csv_path: Path, rows: list[dict],
           targets: Sequence[float], *, settings: dict, seeds: Sequence[int],
           profile: str = "F(chi) vs exact", ylabel: str = r"RMSE of $F(\chi)$ / kT") -> None:
    """Print the tables and write the CSV files, the figure and the result record of a run.

    Parameters
    ----------
    bench : harness.BenchmarkRun
        The run (its output folder takes the record).
    csv_path : Path
        The per-checkpoint table; ``*_to_target.csv``, ``*_runs.csv`` and ``*.png`` go beside.
    rows : list of dict
        Every run and checkpoint.
    targets : sequence of float
        The target RMSE and the second, tighter one, kT.
    settings : dict
        Every setting of the run, for the record.
    seeds : sequence of int
        The seeds.
    profile : str
        What the RMSE compares, in the tables' titles.
    ylabel : str
        The figure's y label.
    """
    table, to_target = summaries(rows, targets)
    print_tables(table, [r for r in to_target if r["target_kT"] == targets[0]], targets[0],
                 profile=profile)
    for target in targets[1:]:
        print_to_target([r for r in to_target if r["target_kT"] == target], target)
    names = {"table": csv_path, "to_target": csv_path.with_name(csv_path.stem + "_to_target.csv"),
             "runs": csv_path.with_name(csv_path.stem + "_runs.csv")}
    write_csv(names["table"], table)
    write_csv(names["to_target"], to_target)
    write_csv(names["runs"], rows)
    png = csv_path.with_suffix(".png")
    figures.rmse_vs_steps(png, table, targets[0], methods=[m for m in METHODS if any(
        r["method"] == m for r in table)], ylabel=ylabel)
    record = bench.write(to_target, key=("system", "method", "target_kT"), settings=settings,
                         seeds=seeds, files={role: os.path.relpath(path, bench.out)
                                             for role, path in names.items()})
    print(f"\nwrote {csv_path}, {csv_path.stem}_to_target.csv, {csv_path.stem}_runs.csv, "
          f"{png.name}, {record}")


# ============================================================================================
# command line
# ============================================================================================
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=_RUNS,
        default=list(_RUNS),
        help="simulations to run (metad_ideal also gives metad_ideal_bias)",
    )
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default 1 2 3)")
    parser.add_argument(
        "--budgets",
        nargs="+",
        type=int,
        help="checkpoints in MD steps; the longest is the length of every "
        "non-RAVE run (default 25k x 2^k up to 25.6M)",
    )
    parser.add_argument("--rounds", type=int, help="RAVE rounds (default: the system's TOML)")
    parser.add_argument("--steps-per-round", type=int, help="RAVE steps per round (TOML)")
    parser.add_argument("--models", type=int, help="RAVE VAEs per round (TOML)")
    parser.add_argument("--max-total-steps", type=int,
                        help="RAVE budget schedule: total MD steps (sampling.max_total_steps)")
    parser.add_argument("--first-round-steps", type=int,
                        help="RAVE budget schedule: steps of the unbiased round 0")
    parser.add_argument("--budget-only", action="store_true",
                        help="RAVE: drop the TOML's rounds and steps_per_round, so "
                             "--max-total-steps alone shapes the schedule")
    parser.add_argument("--report-interval", type=int, default=50, help="steps between frames")
    parser.add_argument(
        "--metad-height",
        type=float,
        default=DEFAULT_METAD["height_kjmol"],
        help="initial Gaussian height, kJ/mol",
    )
    parser.add_argument(
        "--metad-sigma", type=float, default=DEFAULT_METAD["sigma_nm"], help="Gaussian width, nm"
    )
    parser.add_argument("--metad-bias-factor", type=float, default=DEFAULT_METAD["bias_factor"])
    parser.add_argument(
        "--metad-frequency",
        type=int,
        default=DEFAULT_METAD["frequency"],
        help="steps between Gaussians",
    )
    parser.add_argument(
        "--opes-barrier",
        type=float,
        default=DEFAULT_OPES["barrier_kjmol"],
        help="OPES barrier, kJ/mol",
    )
    parser.add_argument(
        "--opes-frequency",
        type=int,
        default=DEFAULT_OPES["frequency"],
        help="steps between OPES kernels",
    )
    parser.add_argument(
        "--opes-variance-frequency",
        type=int,
        default=DEFAULT_OPES["variance_frequency"],
        help="steps between updates of the adaptive OPES kernel variance (divides "
        "--opes-frequency)",
    )
    parser.add_argument("--bin-width", type=float, default=0.1, help="bins of F(chi), nm")
    parser.add_argument("--target", type=float, default=TARGET_RMSE_KT, help="target RMSE, kT")
    parser.add_argument("--second-target", type=float, default=SECOND_TARGET_RMSE_KT,
                        help="a second, tighter target RMSE, kT")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="parent of the fresh output folder"
    )
    parser.add_argument("--csv", type=Path, help="summary CSV (default in the output folder)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny settings for a smoke test: 1 seed, budgets up to 40k steps, "
        "RAVE 2 rounds x 20k steps, 1 small VAE (3 x 64, 2 epochs)",
    )
    args = parser.parse_args(argv)
    quick = QUICK if args.quick else {}
    args.seeds = args.seeds or quick.get("seeds", list(DEFAULT_SEEDS))
    args.budgets = sorted(set(args.budgets or quick.get("budgets", DEFAULT_BUDGETS)))
    for key in ("rounds", "steps_per_round", "models"):
        if getattr(args, key) is None:
            setattr(args, key, quick.get(key))
    args.vae = quick.get("vae")
    check_run_arguments(parser, args)
    return args


def check_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The checks every sampling benchmark makes of its common options (seeds, report
    interval, budgets, metadynamics and OPES settings); ``parser.error`` names a bad one.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        Reports the error (and exits).
    args : argparse.Namespace
        Parsed options with ``seeds``, ``report_interval``, ``budgets``, ``metad_frequency``,
        ``metad_bias_factor``, ``opes_frequency``, ``opes_variance_frequency``,
        ``opes_barrier``.
    """
    if min(args.seeds) < 1:
        # OpenMM takes a random-number seed of 0 to mean "pick one": the run would not repeat
        parser.error(f"--seeds must be integers >= 1. You supplied {args.seeds}")
    if args.report_interval < 1:
        parser.error(f"--report-interval must be >= 1. You supplied {args.report_interval}")
    bad = [b for b in args.budgets if b < args.report_interval or b % args.report_interval]
    if bad:
        parser.error(f"--budgets must be positive multiples of --report-interval "
                     f"({args.report_interval}). You supplied {bad}")
    if args.metad_frequency < 1 or args.metad_frequency % args.report_interval:
        parser.error(f"--metad-frequency ({args.metad_frequency}) must be a positive multiple "
                     f"of --report-interval ({args.report_interval})")
    if args.opes_frequency < 1 or args.opes_variance_frequency < 1 or (
            args.opes_frequency % args.opes_variance_frequency):
        parser.error(f"--opes-variance-frequency ({args.opes_variance_frequency}) must be >= 1 "
                     f"and divide --opes-frequency ({args.opes_frequency})")
    if not args.opes_barrier > 0:
        parser.error(f"--opes-barrier must be > 0 (kJ/mol). You supplied {args.opes_barrier}")
    if not args.metad_bias_factor > 1:
        parser.error(f"--metad-bias-factor must be > 1. You supplied {args.metad_bias_factor}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bench = harness.BenchmarkRun("sampling_efficiency", TITLE, argv, args.out,
                                 "_quick" if args.quick else "")
    out = bench.out
    csv_path = args.csv or out / "sampling_efficiency.csv"
    metad = {
        "height_kjmol": args.metad_height,
        "sigma_nm": args.metad_sigma,
        "bias_factor": args.metad_bias_factor,
        "frequency": args.metad_frequency,
    }
    opes = {
        "barrier_kjmol": args.opes_barrier,
        "frequency": args.opes_frequency,
        "variance_frequency": args.opes_variance_frequency,
        "grid_sigma_nm": DEFAULT_OPES["grid_sigma_nm"],
    }
    print(f"output: {out}")
    print(f"metadynamics: {metad}; frames every {args.report_interval} steps; seeds {args.seeds}")
    print(f"OPES: {opes}")

    rows: list[dict] = []
    jobs = [(s, seed, m) for s in args.systems for seed in args.seeds for m in args.methods]
    started = time.perf_counter()
    references = {}
    for i, (system, seed, method) in enumerate(jobs, 1):
        potential = make_model_potential(system, 300.0)
        if system not in references:
            references[system] = make_reference(system, potential, args.bin_width)
        reference = references[system]
        model = potential.build()
        config = rave_config(
            system,
            seed,
            args.report_interval,
            args.rounds,
            args.steps_per_round,
            args.models,
            args.vae,
            args.max_total_steps,
            args.first_round_steps,
            budget_only=args.budget_only,
        )
        sampling = config_from_dict(config).sampling
        round_steps = sampling.round_steps * int(getattr(sampling, "walkers", 1))
        max_steps = max(args.budgets)
        round_ends = {k * round_steps for k in
                      range(1, min(sampling.round_limit, max_steps // round_steps) + 1)}
        checkpoints = sorted(set(args.budgets) | {s for s in round_ends if s <= max_steps})
        common = {"system": system, "seed": seed}
        if method == "plain_md":
            run = run_plain_md(potential, model, seed, max_steps, args.report_interval)
            results = {
                "plain_md": evaluate_prefixes(run, reference, checkpoints, args.report_interval)
            }
        elif method == "expanded":
            run = run_expanded(potential, model, seed, max_steps, args.report_interval)
            results = {"expanded": evaluate_expanded(run, reference, potential.kT, checkpoints,
                                                     args.report_interval)}
        elif method in RAVE_METHODS:
            bias_method, rc_choice, explore = RAVE_METHODS[method]
            workdir = out / "campaigns" / f"{system}_{method}_seed{seed}"
            config.setdefault("bias", {})["method"] = bias_method
            config.setdefault("coordinate", {})["rc_choice"] = rc_choice
            config.setdefault("explore", {})["method"] = explore
            run = run_rave(config, workdir)
            results = {method: evaluate_rave(run, reference, potential.kT,
                                             args.report_interval)}
        else:  # metad_* or opes_*: the same driver, another bias
            family = "opes" if method.startswith("opes") else "metad"
            runner, settings = (run_opes, opes) if family == "opes" else (run_metadynamics, metad)
            ideal = method == f"{family}_ideal"
            direction = reference.direction if ideal else naive_direction(system, potential)
            run = runner(
                potential,
                model,
                direction,
                seed,
                max_steps,
                args.report_interval,
                reference=reference if ideal else None,
                checkpoints=checkpoints,
                **settings,
            )
            results = {method: evaluate_prefixes(run, reference, checkpoints, args.report_interval)}
            if ideal:
                results[f"{family}_ideal_bias"] = evaluate_bias(
                    run, reference, args.report_interval
                )
        for name, result in results.items():
            rows.extend(
                {**common, "method": name, **r, "wall_s": round(run.wall_s, 2)} for r in result
            )
        last = results[method][-1] if results[method] else None
        final = "" if last is None else f", RMSE {last['rmse_kT']:.2f} kT"
        final += "" if last is None else f", {last['transitions']} transitions"
        if "bias_mismatch_kjmol" in run.notes:
            final += f", |OpenMM - numpy bias| <= {run.notes['bias_mismatch_kjmol']:.1e} kJ/mol"
        print(
            f"[{i}/{len(jobs)}] {system} {method} seed {seed}: "
            f"{len(run.features) * args.report_interval:,} steps in {run.wall_s:.1f} s{final} "
            f"(elapsed {time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        # every run and checkpoint so far: a stopped benchmark keeps what it measured
        write_csv(csv_path.with_name(csv_path.stem + "_runs.csv"), rows)

    settings = {k: v for k, v in vars(args).items() if k not in ("out", "csv")}
    finish(bench, csv_path, rows, (args.target, args.second_target), settings=settings,
           seeds=args.seeds)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
