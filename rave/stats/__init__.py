"""The statistics core: log-weights, effective sample size, weighted F, MBAR, block bootstrap.

One implementation of each statistic, used by the VAE, the RC fit, the bias, the campaign and
the analysis:

* :mod:`rave.stats.weights`: :func:`as_log_weights` (the one log-weight validation),
  :func:`normalise_log_weights`, :func:`normalised_weights`, :func:`effective_sample_size`
  (Kish), :func:`free_energy_histogram` (the one weighted histogram to F, in kT),
  :func:`free_energy_profile`, :func:`align_reference`, :func:`reference_edges`;
* :mod:`rave.stats.mbar`: :func:`mbar_reweight` and its solver :func:`solve_mbar` (the one MBAR
  path; pymbar is the test oracle), :func:`reweight_rounds` (the rounds of one's own script);
* :mod:`rave.stats.bootstrap`: :func:`bootstrap_free_energy_profile` (block bootstrap that
  re-solves MBAR), :func:`statistical_inefficiency`, :func:`walker_segments`.

Everything works on reduced (dimensionless) quantities: log-weights, ``V/kT``, F in kT.
numpy and scipy only.
"""

from __future__ import annotations

from .bootstrap import (
    BLOCKS_PER_INEFFICIENCY,
    MIN_BLOCKS_PER_ROUND,
    ProfileEstimate,
    bootstrap_free_energy_profile,
    statistical_inefficiency,
    walker_segments,
)
from .mbar import (
    ReweightResult,
    mbar_reweight,
    reweight_rounds,
    single_round_log_weights,
    solve_mbar,
)
from .weights import (
    ALIGN_BELOW_KT,
    AlignedReference,
    align_reference,
    as_log_weights,
    as_weights,
    effective_sample_size,
    free_energy_histogram,
    free_energy_profile,
    normalise_log_weights,
    normalised_weights,
    reference_edges,
)

__all__ = [
    "ALIGN_BELOW_KT",
    "AlignedReference",
    "align_reference",
    "reference_edges",
    "as_log_weights",
    "as_weights",
    "effective_sample_size",
    "free_energy_histogram",
    "free_energy_profile",
    "normalise_log_weights",
    "normalised_weights",
    "ReweightResult",
    "mbar_reweight",
    "reweight_rounds",
    "single_round_log_weights",
    "solve_mbar",
    "BLOCKS_PER_INEFFICIENCY",
    "MIN_BLOCKS_PER_ROUND",
    "ProfileEstimate",
    "bootstrap_free_energy_profile",
    "statistical_inefficiency",
    "walker_segments",
]
