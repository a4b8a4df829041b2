"""The RAVE loop's computation, without files: what every round decides and learns.

:class:`RoundLoop` holds the rounds so far (their frames, the bias states they were sampled
under, their records) and computes, from them alone, what the next round applies (nothing,
the temperature ladder of the exploration, a static kT ln P bias, or OPES along the RC), and,
after a round's MD, the learning step: MBAR over every frame of every round and state, the
RAVE estimator, F(chi), the convergence evidence and the next bias. It reads no file and
writes none; :class:`rave.campaign.Campaign` (``rave run``) stores what it returns in a work
directory, :class:`rave.campaign.sampler.RAVESampler` keeps it in memory for a user's own
OpenMM Simulation. Both run the same rounds through it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from ..bias_grid import Bias
from ..learn.bias import (
    TemperatureState,
    adaptive_bias_dict,
    applied_states,
    exploration_dict,
    frame_potentials,
    frame_states,
    reduced_bias_matrix,
)
from ..learn.convergence import RoundEvidence, convergence_failures
from ..learn.coordinate import direction_angle_deg
from ..learn.estimator import RAVE, RAVEModel, cold_positions, rc_frames
from ..md.frames import Frames
from ..md.opes import OPESSpec, linear_map, map_opes_state
from ..stats import bootstrap_free_energy_profile, free_energy_profile, mbar_reweight
from .resources import plan_threads, read_allowed_cores, read_busy_cores
from .schedule import BUDGET_MIN_ROUNDS, RoundPlan, plan_round_steps, steps_used
from .store import RoundRecord, StoreFileError

__all__ = ["BIAS_MISMATCH_TOL_KJMOL", "BiasMismatchError", "LearnedRound", "NextRound",
           "PROFILE_BINS", "RoundLoop", "profile_change_kT"]

log = logging.getLogger("rave")

#: bins of the F(chi) profiles written and compared between rounds
PROFILE_BINS = 80
#: largest |OpenMM - numpy| bias energy of a round's frames before the campaign stops, kJ/mol
BIAS_MISMATCH_TOL_KJMOL = 1e-3
#: deposition strides a fresh OPES waits before its first kernel (openmm-opes' statsWindowSize)
OPES_FIRST_KERNEL_STRIDES = 10


class BiasMismatchError(RuntimeError):
    """The bias energy OpenMM applied and numpy's differ: the two faces of an order parameter
    disagree (the message names it where it can), so the frames cannot be reweighted."""


class _RoundLog(logging.LoggerAdapter):
    """The campaign's log with "round N: " before each line (the RAVE step's own lines)."""

    def process(self, msg, kwargs):
        return f"round {self.extra['round']}: {msg}", kwargs


def profile_change_kT(
    centers: np.ndarray, current: np.ndarray, previous: np.ndarray, max_kT: float
) -> float:
    """RMS difference of two F profiles (kT) on the same bins.

    Taken where both are finite and the current one is below ``max_kT``, after removing the
    mean offset (F is defined up to a constant).
    """
    mask = np.isfinite(current) & np.isfinite(previous) & (current < max_kT)
    if mask.sum() < 3:
        return float("inf")
    diff = current[mask] - previous[mask]
    return float(np.sqrt(np.mean((diff - diff.mean()) ** 2)))


@dataclass
class NextRound:
    """What round ``index`` applies (:meth:`RoundLoop.next_round`)."""

    index: int
    bias: Bias | None
    opes: OPESSpec | None
    exploring: bool
    label: str


@dataclass
class LearnedRound:
    """What the learning step after a round computed (:meth:`RoundLoop.learn`)."""

    record: RoundRecord
    model: RAVEModel
    log_weights: np.ndarray
    free_energies: np.ndarray
    centers: np.ndarray
    profile: np.ndarray
    coordinate: dict
    bias: Bias


class RoundLoop:
    """The rounds of one RAVE run and the computation between them."""

    def __init__(self, config, feature_names, kT: float, temperature_K: float,
                 exact_free_energy=None, where: str = "this run") -> None:
        self.config = config
        self.where = where
        self.vae_config = config.vae_config()
        self.feature_names = list(feature_names)
        self.kT = float(kT)
        self.temperature_K = float(temperature_K)
        self.exact_free_energy = exact_free_energy
        self.records: list[RoundRecord] = []
        self.frames: list[Frames] = []
        self.biases: list[list[tuple[Bias | None, int]]] = []
        self.adaptive: list[bool] = []
        self.next_bias: Bias | None = None
        self.previous_coefficients: np.ndarray | None = None
        self.previous_log_weights: np.ndarray | None = None
        self.last_reweight = None

    # ------------------------------------------------------------------ schedule
    def plan(self) -> RoundPlan:
        """The schedule's plan of the next round from the complete rounds
        (:func:`rave.campaign.schedule.plan_round_steps`).
        """
        s, c = self.config.sampling, self.config.convergence
        return plan_round_steps(
            self.records, steps_per_round=s.round_steps, report_interval=s.report_interval,
            walkers=s.walkers, max_total_steps=s.max_total_steps,
            first_round_steps=s.planned_first_round_steps(), angle_deg=c.angle_deg,
            free_energy_kT=c.free_energy_kT,
            min_rounds=BUDGET_MIN_ROUNDS if s.budget_shaped else None)

    def stop_reason(self, converged: bool, rounds: int) -> str:
        """Why the run stopped: converged, budget spent, or the round limit."""
        if converged:
            return "converged"
        if self.config.sampling.max_total_steps is not None:
            plan = self.plan()
            if plan.steps is None:
                return plan.reason
        return f"round limit reached ({rounds} rounds)"

    @property
    def steps_used(self) -> int:
        """MD steps of the complete rounds over all walkers."""
        return steps_used(self.records)

    # ------------------------------------------------------------------ the next round
    def next_round(self, index: int) -> NextRound:
        """What round ``index`` applies: nothing or the exploration (round 0), the kT ln P
        bias of the last learning step, or OPES along its RC (``[bias] method``).
        """
        bias = self.next_bias if index > 0 else None
        spec = None
        if bias is not None and self.config.bias.method == "opes":
            spec, bias = self.opes_spec(bias.coefficients), None
        exploring = index == 0 and self.config.explore.enabled
        label = ("round 0 (expanded ensemble over temperatures)" if exploring
                 else "round 0 (unbiased MD)" if index == 0
                 else f"round {index} (OPES along the RC)" if spec is not None
                 else f"round {index} (biased MD)")
        return NextRound(index, bias, spec, exploring, label)

    def exploration(self) -> dict | None:
        """The exploration's settings for round 0 (:meth:`rave.md.explore.ExplorationSpec.
        to_dict`), or None without ``[explore]``.
        """
        if not self.config.explore.enabled:
            return None
        return self.config.explore.spec(self.temperature_K).to_dict()

    def records_potential(self) -> bool:
        """Whether walkers record each frame's potential energy: in a run that explores (or
        whose stored rounds did), every frame needs it to be reweighted across temperatures.
        """
        return self.config.explore.enabled or any(f.potential_kjmol is not None
                                                  for f in self.frames)

    def opes_spec(self, coefficients: np.ndarray) -> OPESSpec:
        """OPES along chi = coefficients . s for the next round: the grid spans the chi of all
        frames so far, padded by ``bias.opes_padding`` of that range on each side (a function of
        the stored data, so a resumed round gets the same).
        """
        cfg = self.config.bias
        chi = np.concatenate([f.features for f in self.frames]) @ coefficients
        lo, hi = float(chi.min()), float(chi.max())
        pad = cfg.opes_padding * (hi - lo)
        return OPESSpec(tuple(coefficients), lo - pad, hi + pad, cfg.opes_grid_points,
                        cfg.opes_barrier_kjmol, cfg.opes_pace, cfg.opes_variance_pace,
                        cfg.opes_explore, cfg.opes_block_kT)

    def opes_continuation(self, index: int, spec: OPESSpec,
                          previous_states) -> list[dict | None]:
        """Per walker, the OPES state its adaptive round ``index`` starts from: that of the same
        walker at the end of round ``index - 1``, moved to the new RC (:func:`map_opes_state`
        with the least-squares map of the old chi onto the new over all frames so far), when
        round ``index - 1`` was adaptive too, its RC is within ``bias.opes_restart_deg`` of
        the new one and none of its frames left its OPES grid (there its clamped CV put kernels
        at the grid's edge, not where the walker was); else None (a fresh OPES).
        """
        k = self.config.sampling.walkers
        if index < 2 or not self.adaptive[index - 1]:
            return [None] * k
        previous = self.biases[index - 1][0][0]
        old = np.asarray(previous.coefficients)
        lo, hi = previous.grid.clamp_bounds
        chi_previous = self.frames[index - 1].features @ old
        outside = int(np.count_nonzero((chi_previous <= lo) | (chi_previous >= hi)))
        if outside:
            log.info("round %d: %d frame(s) of round %d left its OPES grid [%.4g, %.4g]: OPES "
                     "starts afresh on the wider grid", index, outside, index - 1,
                     previous.grid.chi_min, previous.grid.chi_max)
            return [None] * k
        new = np.asarray(spec.coefficients)
        angle = direction_angle_deg(old, new)
        if angle > self.config.bias.opes_restart_deg:
            log.info("round %d: the RC turned by %.1f deg (> bias.opes_restart_deg = %g): "
                     "OPES starts afresh", index, angle, self.config.bias.opes_restart_deg)
            return [None] * k
        features = np.concatenate([f.features for f in self.frames])
        a, b = linear_map(features @ old, features @ new)
        log.info("round %d: OPES continues from round %d (RC turned by %.1f deg; chi -> "
                 "%.4g chi %+.4g)", index, index - 1, angle, a, b)
        return [None if state is None else map_opes_state(state, a, b)
                for state in previous_states()]

    # ------------------------------------------------------------------ after the MD
    def adaptive_applied(self, index: int, spec: OPESSpec, results, where: str) -> dict:
        """The applied-bias record of an adaptive round from its walkers' OPES blocks.

        Raises
        ------
        BiasMismatchError
            A walker's frames disagree with numpy's OPES bias.
        """
        worst = max(r.bias_check_kjmol for r in results)
        if not worst <= BIAS_MISMATCH_TOL_KJMOL:
            raise BiasMismatchError(
                f"round {index}: the OPES bias energy OpenMM applied and numpy's differ by up to "
                f"{worst:.3g} kJ/mol (tolerance {BIAS_MISMATCH_TOL_KJMOL:g}), so its frames "
                f"cannot be reweighted. The campaign stopped; its frames are kept in {where}")
        blocks = [(values, int(n)) for r in results
                  for values, n in zip(r.opes_block_values, r.opes_block_frames, strict=True)]
        idle = [r.walker_index for r in results
                if all(np.ptp(v) == 0 for v in r.opes_block_values)]
        if idle:
            # a fresh OPES (openmm-opes' adaptive variance) waits statsWindowSize = 10
            # deposition strides of `pace` steps before its first kernel
            log.warning("round %d: OPES deposited no kernel in walker(s) %s: their frames are "
                        "unbiased MD. A fresh OPES waits 10 x bias.opes_pace = %d steps before "
                        "its first kernel; longer rounds (sampling.steps_per_round, or a larger "
                        "budget) give it time", index, idle, OPES_FIRST_KERNEL_STRIDES *
                        spec.pace)
        return adaptive_bias_dict(spec.coefficients, spec.chi_min, spec.chi_max, blocks)

    def exploration_applied(self, label: str, results, frames: Frames) -> dict:
        """The applied-bias record of an exploring round (its temperature states), and the log
        of each walker's ladder and warm-up.
        """
        from .walkers import exploration_temperatures

        temperatures = exploration_temperatures(results)
        for r in results:
            kept = int(np.count_nonzero(r.counted))
            log.info("%s walker %d: %s; %d of %d frames count (%d of the expanded ensemble's "
                     "first frames were the sampler's warm-up, its weights not yet within "
                     "explore.settle_tolerance = %g of their final values); counted frames per "
                     "temperature %s", label, r.walker_index, r.ladder_reason, kept, len(r),
                     len(r) - kept, self.config.explore.settle_tolerance,
                     np.bincount(r.ladder_state[r.counted],
                                 minlength=len(r.ladder_temperatures_K)).tolist())
        counts = np.bincount(frames.state, minlength=len(temperatures))
        return exploration_dict(temperatures, counts)

    def add_round(self, frames: Frames, applied: dict | None, adaptive: bool) -> None:
        """Add a round's frames and the bias states they were sampled under."""
        self.frames.append(frames)
        self.biases.append(applied_states(applied, len(frames.features)))
        self.adaptive.append(bool(adaptive))

    def add_complete_round(self, record: RoundRecord, frames: Frames, states, adaptive: bool,
                           log_weights: np.ndarray, next_bias: Bias) -> None:
        """Add a round completed earlier (a resume): its record and what it learned."""
        self.records.append(record)
        self.frames.append(frames)
        self.biases.append(states)
        self.adaptive.append(bool(adaptive))
        self.previous_coefficients = record.coefficients
        self.previous_log_weights = log_weights
        self.next_bias = next_bias

    def potential(self) -> np.ndarray | None:
        """Every frame's potential energy when the run has temperature states, else None.

        Raises
        ------
        rave.campaign.store.StoreFileError
            A round of a run with temperature states lacks its frames' potential energy.
        """
        try:
            return frame_potentials(self.biases, [f.potential_kjmol for f in self.frames])
        except ValueError as error:
            raise StoreFileError(f"{self.where}: {error}") from error

    def frame_states(self) -> np.ndarray:
        """The MBAR state of every frame (:func:`rave.learn.bias.frame_states`)."""
        return frame_states(self.biases, [f.state for f in self.frames])

    def reweight(self, describe_mismatch=None):
        """MBAR over all rounds so far: reduced bias of every frame under every round's bias.

        Raises
        ------
        BiasMismatchError
            The energy OpenMM applied in the last (static) round differs from numpy's.
        """
        features = np.concatenate([f.features for f in self.frames])
        states = [state for round_states in self.biases for state in round_states]
        reduced, counts = reduced_bias_matrix(features, states, self.kT, self.potential())
        # consistency: the energy OpenMM applied equals the numpy bias of the same frames (an
        # adaptive round's walkers checked theirs against each frame's own version)
        applied = self.frames[-1].bias_kjmol
        own = reduced[-1, len(features) - len(applied):] * self.kT
        static = not self.adaptive[-1] and not isinstance(states[-1][0], TemperatureState)
        mismatch = float(np.max(np.abs(applied - own))) if len(applied) and static else 0.0
        if not mismatch <= BIAS_MISMATCH_TOL_KJMOL:
            index = len(self.frames) - 1
            detail = "" if describe_mismatch is None else describe_mismatch(index)
            raise BiasMismatchError(
                f"round {index}: the bias energy OpenMM applied and numpy's differ by up to "
                f"{mismatch:.3g} kJ/mol (tolerance {BIAS_MISMATCH_TOL_KJMOL:g}), so its frames "
                f"cannot be reweighted. {detail}")
        result = mbar_reweight(reduced, counts)
        return features, reduced, counts, result

    # ------------------------------------------------------------------ learning
    def seeds(self, index: int) -> list[int]:
        """The VAE seeds of round ``index``."""
        base_seed = self.config.sampling.seed * 1000 + index * 17
        return [base_seed + m for m in range(self.config.models.models)]

    def cold(self, index: int) -> set[int]:
        """Positions of the seeds trained from scratch in round ``index`` (all in round 0;
        then ``cold_seeds`` of them, rotating so that each position is refreshed in turn).
        """
        return cold_positions(index, self.config.models.models, self.config.models.cold_seeds)

    def rc_seed(self, index: int) -> list[int]:
        """Seed of the frame subset the RC of round ``index`` is fitted on."""
        return [self.config.sampling.seed, index, 7]

    def rc_subset(self, index: int, n_frames: int) -> np.ndarray:
        """Frames the RC is fitted on: all, or a seeded subset of ``coordinate.max_frames``."""
        return rc_frames(n_frames, self.config.coordinate.max_frames, self.rc_seed(index))

    def train(self, index: int, features: np.ndarray, log_w: np.ndarray, *,
              initial=None, trained=None, on_trained=None, progress=False) -> RAVEModel:
        """The RAVE step of round ``index`` (:class:`rave.learn.estimator.RAVE`)."""
        cfg = self.config
        estimator = RAVE(
            cfg.models.models, self.vae_config, seed=self.seeds(index),
            kl_threshold=cfg.coordinate.kl_threshold, kl_tie=cfg.coordinate.kl_tie,
            bins=cfg.coordinate.bins, max_frames=cfg.coordinate.max_frames,
            rc_seed=self.rc_seed(index), stale_angle_deg=cfg.models.stale_angle_deg,
            rc_bootstrap=cfg.coordinate.bootstrap,
            rc_choice=cfg.coordinate.rc_choice,
            basin_barrier_kT=cfg.coordinate.basin_barrier_kT,
            barrier_tie_kT=cfg.coordinate.barrier_tie_kT)
        trained = trained or [None] * cfg.models.models
        pending = sum(model is None for model in trained)
        plan = plan_threads(max(pending, 1), read_allowed_cores(cfg.models.threads),
                            read_busy_cores() if pending else 0.0)
        if pending:
            log.info("round %d: VAE training on the free cores: %s", index, plan.describe())
        estimator._fit(features, log_w, initial or [None] * cfg.models.models,
                       previous=self.previous_coefficients, threads=plan.cores,
                       workers=plan.workers, progress=progress and f"round {index}",
                       logger=_RoundLog(log, {"round": index}), trained=trained,
                       on_trained=on_trained)
        return estimator.fetch_model()

    def learn(self, index: int, timings: dict, *, describe_mismatch=None, initial=None,
              trained=None, on_trained=None, model_files=None, progress=False,
              on_weights=None) -> LearnedRound:
        """The learning step after round ``index``'s MD (:meth:`add_round`): MBAR over every
        frame so far, the RAVE step, F(chi), the convergence evidence and the next bias.
        """
        cfg = self.config
        t0 = time.perf_counter()
        self.last_reweight = self.reweight(describe_mismatch)
        features, _, _, reweighted = self.last_reweight
        log_w = reweighted.log_weights
        free_energies = np.asarray(reweighted.free_energies)
        if on_weights is not None:
            on_weights(log_w, free_energies)
        timings["reweight"] = time.perf_counter() - t0
        log.info("round %d: %d frames in all, MBAR effective sample size %.1f", index,
                 len(features), reweighted.effective_sample_size)

        t0 = time.perf_counter()
        model = self.train(index, features, log_w, initial=initial, trained=trained,
                           on_trained=on_trained, progress=progress)
        timings["train_and_rc"] = time.perf_counter() - t0
        c, chi, spread = model.coefficients, model.chi, model.seed_spread_deg
        rc_sigma = model.angle_sigma_deg

        # F(chi) from all frames, and the change from the previous round along the same chi
        edges = np.linspace(chi.min(), chi.max(), PROFILE_BINS + 1)
        centers, profile = free_energy_profile(chi, log_w, edges)
        angle = change = growth = sigma = None
        if self.previous_coefficients is not None and cfg.convergence.bootstrap:
            t1 = time.perf_counter()
            sigma = self.profile_sigma(chi, edges, profile, index)
            timings["bootstrap"] = time.perf_counter() - t1
        if self.previous_coefficients is not None:
            n_old = len(self.previous_log_weights)
            old_span = float(np.ptp(chi[:n_old]))
            if old_span > 0:
                growth = float(np.ptp(chi)) / old_span - 1.0
            _, previous = free_energy_profile(chi[:n_old], self.previous_log_weights, edges)
            angle = direction_angle_deg(c, self.previous_coefficients)
            change = profile_change_kT(centers, profile, previous,
                                       cfg.convergence.profile_max_kT)
        usable = sum(not (m.stale or m.spurious) for m in model.models)
        failures = convergence_failures(RoundEvidence(
            index=index, angle_change_deg=angle, seed_spread_deg=spread, usable_seeds=usable,
            models=len(model.models), free_energy_change_kT=change, free_energy_sigma_kT=sigma,
            rc_angle_sigma_deg=rc_sigma, rc_source=model.rc_source), cfg.convergence)
        converged = not failures
        if self.previous_coefficients is not None:
            log.info("round %d: RC changed by %.2f deg (its bootstrap uncertainty %s; %d of %d "
                     "seeds usable, agreeing within %s), F(chi) by %.3f kT RMS (bootstrap "
                     "uncertainty %s) -> %s", index, angle,
                     "-" if rc_sigma is None else f"{rc_sigma:.1f} deg", usable,
                     len(model.models), "-" if spread is None else f"{spread:.1f} deg", change,
                     "-" if sigma is None else f"{sigma:.3f} kT",
                     "converged" if converged else "not converged: " + "; ".join(failures))
        coordinate = {
            "coefficients": c.tolist(),
            "kl_divergence": model.kl_divergence,
            "feature_names": self.feature_names,
            "model_kl_divergences": [m.kl_divergence for m in model.models],
            "chosen_model": model.chosen,
            "model_files": list(model_files or []),
            "spurious_models": model.dropped,
            "kl_threshold": cfg.coordinate.kl_threshold,
            "model_validation_losses": [m.validation_loss for m in model.models],
            "warm_started": [m.warm for m in model.models],
            "stale_models": model.stale,
            "seed_spread_deg": spread,
            "kl_tie": cfg.coordinate.kl_tie,
            "rc_angle_sigma_deg": rc_sigma,
            "rc_source": model.rc_source,
            "vae_coefficients": (None if model.vae_coefficients is None
                                 else model.vae_coefficients.tolist()),
            "rc_candidates": model.candidates,
            "skewness": model.skewness,
        }
        # the bias of the next round
        self.next_bias = model.bias(
            self.kT, n_points=cfg.bias.grid_points, padding=cfg.bias.padding,
            cap_kT=cfg.bias.cap_kT, smoothing_bins=cfg.bias.smoothing_bins,
            damping=cfg.bias.damping)
        self.previous_coefficients = c
        self.previous_log_weights = log_w
        record = RoundRecord(
            index=index, coefficients=c, kl_divergence=model.kl_divergence,
            frames=len(self.frames[-1]),
            effective_sample_size=float(reweighted.effective_sample_size),
            angle_change_deg=angle, free_energy_change_kT=change, converged=converged,
            timings_s=timings, chi_range_growth=growth, seed_spread_deg=spread,
            free_energy_sigma_kT=sigma, rc_angle_sigma_deg=rc_sigma,
            convergence_failures=failures,
        )
        return LearnedRound(record, model, log_w, free_energies, centers, profile, coordinate,
                            self.next_bias)

    def bootstrap(self, chi: np.ndarray, edges: np.ndarray, n_bootstrap: int, seed: int):
        """Block bootstrap of F(chi) over the MBAR states of the last :meth:`reweight` (its
        reduced biases, reused), resampled round by round: blocks cut within each walker's
        frames of a round, across the states of an adaptive round.
        """
        _, reduced, counts, _ = self.last_reweight
        rounds = [r for r, states in enumerate(self.biases) for _ in states]
        return bootstrap_free_energy_profile(reduced, counts, chi, edges,
                                             n_bootstrap=n_bootstrap, seed=seed,
                                             walker=np.concatenate(
                                                 [np.zeros(len(f), dtype=np.int64)
                                                  if f.walker is None else f.walker
                                                  for f in self.frames]),
                                             state_groups=rounds,
                                             frame_states=self.frame_states())

    def profile_sigma(self, chi: np.ndarray, edges: np.ndarray, profile: np.ndarray,
                      index: int) -> float:
        """RMS block-bootstrap uncertainty (kT) of F(chi) over the bins where F is within
        ``profile_max_kT`` of its minimum: ``convergence.bootstrap`` replicates, each resampling
        blocks of every walker's frames in every MBAR state and re-solving MBAR
        (:func:`rave.stats.bootstrap_free_energy_profile`; seeded by the run's seed and the
        round).
        """
        cfg = self.config.convergence
        estimate = self.bootstrap(chi, edges, cfg.bootstrap,
                                  self.config.sampling.seed + 7919 * index)
        region = np.isfinite(profile) & (profile - np.nanmin(profile) < cfg.profile_max_kT)
        sigma = np.asarray(estimate.sigma)[region]
        sigma = sigma[np.isfinite(sigma)]
        return float(np.sqrt(np.mean(sigma ** 2))) if sigma.size else math.inf

    def exact_profile(self, coefficients: np.ndarray, centers: np.ndarray):
        """The exact F along chi of a model potential (kT), or None."""
        if self.exact_free_energy is None:
            return None
        return np.asarray(self.exact_free_energy(coefficients, centers), dtype=float)
