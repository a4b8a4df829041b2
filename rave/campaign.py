"""The RAVE loop: unbiased round 0, then train -> RC -> bias -> biased MD -> reweight.

After the MD of round r, all frames of rounds 0..r are reweighted with MBAR over the rounds'
static biases, ``vae.models`` VAEs are trained on them, the linear RC chi = c . s is chosen by
KL matching (spurious models dropped), F(chi) is estimated, convergence is checked against
round r-1, and the bias for round r+1 is built from F(chi). The campaign stops after
``sampling.rounds`` MD rounds or when the RC direction and F(chi) stop changing.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import store
from .bias import Bias, build_bias_grid
from .config import Config, ConfigError
from .coordinate import align_sign, direction_angle_deg, fit_coordinate, select_models
from .engine import Frames, Walker
from .reweight import free_energy_profile, mbar_reweight

log = logging.getLogger("rave")

#: bins of the F(chi) profiles written and compared between rounds
PROFILE_BINS = 80


@dataclass
class RoundRecord:
    index: int
    coefficients: np.ndarray
    kl_divergence: float
    frames: int
    effective_sample_size: float
    angle_change_deg: float | None = None
    free_energy_change_kT: float | None = None
    converged: bool = False
    timings_s: dict = field(default_factory=dict)

    def to_summary(self) -> dict:
        return {
            "index": self.index,
            "coefficients": [float(c) for c in self.coefficients],
            "kl_divergence": float(self.kl_divergence),
            "frames": int(self.frames),
            "effective_sample_size": float(self.effective_sample_size),
            "angle_change_deg": self.angle_change_deg,
            "free_energy_change_kT": self.free_energy_change_kT,
            "converged": self.converged,
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
        }


def build_model_potential(config: Config):
    """The model potential of a config (validates the expression with OpenMM)."""
    from systems.model_potentials import from_expression, make_model_potential

    system = config.system
    placement = {}
    if system.start is not None:
        placement["start"] = tuple(system.start)
    if system.extent is not None:
        placement["extent"] = tuple(tuple(r) for r in system.extent)
    try:
        if system.kind == "expression":
            return from_expression(system.expression, system.temperature, **placement)
        options = {k: getattr(system, k) for k in ("angle_deg", "barrier_kT")
                   if getattr(system, k) is not None}
        potential = make_model_potential(system.kind, system.temperature, **options)
        # replace() validates again (a finite energy at the new start, a sane extent)
        return dataclasses.replace(potential, **placement) if placement else potential
    except ValueError as error:
        raise ConfigError(str(error)) from error


def reduced_bias_matrix(features: np.ndarray, biases, kT: float) -> np.ndarray:
    """reduced[k, n] = V_k(frame n) / kT for every round's bias (None: unbiased round)."""
    reduced = np.zeros((len(biases), len(features)))
    for k, bias in enumerate(biases):
        if bias is not None:
            reduced[k] = bias.energy(features) / kT
    return reduced


def profile_change_kT(
    centers: np.ndarray, current: np.ndarray, previous: np.ndarray, max_kT: float
) -> float:
    """RMS difference of two F profiles (kT) on the same bins where both are finite and the
    current one is below ``max_kT``, after removing the mean offset (F is defined up to a
    constant)."""
    mask = np.isfinite(current) & np.isfinite(previous) & (current < max_kT)
    if mask.sum() < 3:
        return float("inf")
    diff = current[mask] - previous[mask]
    return float(np.sqrt(np.mean((diff - diff.mean()) ** 2)))


class Campaign:
    """A RAVE campaign in a work directory.

    Parameters
    ----------
    config : Config
    workdir : path
        Created; refused if it already holds a campaign.
    """

    def __init__(self, config: Config, workdir: str | Path) -> None:
        self.config = config
        self.vae_config = config.vae_config()
        # Everything that can fail on bad input fails here, before the work directory is touched.
        self.potential = build_model_potential(config)
        self.model_system = self.potential.build()
        self.features = list(self.model_system.features)
        self.feature_names = [f.name for f in self.features]
        self.kT = float(self.potential.kT)
        self.workdir = Path(workdir)
        self.records: list[RoundRecord] = []
        self._frames: list[Frames] = []
        self._biases: list[Bias | None] = []
        self._previous_log_weights: np.ndarray | None = None
        self._previous_coefficients: np.ndarray | None = None

    # ------------------------------------------------------------------ set-up
    def _make_walker(self) -> Walker:
        sampling = self.config.sampling
        start = np.array(self.model_system.positions, dtype=float).reshape(-1, 3)
        return Walker(
            self.model_system.system,
            start,
            self.features,
            self.config.system.temperature,
            sampling.timestep if sampling.timestep is not None else self.potential.timestep_ps,
            sampling.friction if sampling.friction is not None else self.potential.friction_per_ps,
            seed=int(np.random.SeedSequence(sampling.seed).generate_state(1)[0]),
            platform=sampling.platform,
            force_group=self.config.bias.force_group,
        )

    def _setup_logging(self) -> logging.Handler:
        handler = logging.FileHandler(self.workdir / "campaign.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        return handler

    # ------------------------------------------------------------------ the loop
    def run(self, rounds: int | None = None) -> dict:
        """Run the campaign; returns the summary written to ``summary.json``."""
        rounds = self.config.sampling.rounds if rounds is None else int(rounds)
        if rounds < 1:
            raise ConfigError(f"rounds must be >= 1. You supplied {rounds}")
        store.prepare_workdir(self.workdir)
        handler = self._setup_logging()
        try:
            store.write_json(self.workdir / "config.json", self.config.to_dict())
            store.write_json(self.workdir / "features.json",
                             [feature.to_dict() for feature in self.features])
            log.info("RAVE campaign: %s at %.1f K (kT = %.4f kJ/mol), features %s, %d rounds",
                     self.potential.name, self.config.system.temperature, self.kT,
                     self.feature_names, rounds)
            walker = self._make_walker()
            log.info("OpenMM platform %s, time step %.4f ps, friction %.2f/ps",
                     walker.platform.getName(), walker.timestep_ps, walker.friction_per_ps)
            converged = False
            for index in range(rounds):
                record = self._round(walker, index)
                self.records.append(record)
                self._write_summary(converged=record.converged)
                if record.converged:
                    converged = True
                    log.info("converged after %d rounds", index + 1)
                    break
            self._write_final()
            summary = self._write_summary(converged=converged)
            log.info("done: %s", self.workdir)
            return summary
        finally:
            log.removeHandler(handler)
            handler.close()

    def _round(self, walker: Walker, index: int) -> RoundRecord:
        sampling = self.config.sampling
        folder = store.round_dir(self.workdir, index)
        timings = {}
        bias = self._next_bias if index > 0 else None
        if bias is not None:
            walker.set_bias(bias)
            store.write_json(folder / "bias_applied.json", bias.to_dict())
        n_frames = sampling.steps_per_round // sampling.report_interval
        label = "round 0 (unbiased MD)" if index == 0 else f"round {index} (biased MD)"
        log.info("%s: %d steps, %d frames", label, sampling.steps_per_round, n_frames)
        t0 = time.perf_counter()
        with tqdm(total=n_frames, desc=label, unit="frame",
                  disable=not self.config.output.progress, leave=False) as bar:
            frames = walker.run(sampling.steps_per_round, sampling.report_interval,
                                progress=bar.update)
        timings["md"] = time.perf_counter() - t0
        steps_per_s = sampling.steps_per_round / timings["md"]
        log.info("%s: %.1f s, %.0f steps/s", label, timings["md"], steps_per_s)
        store.write_npz(folder / "frames.npz", features=frames.features,
                        bias_kjmol=frames.bias_kjmol, time_ps=frames.time_ps)
        store.write_npz(folder / "state.npz", **walker.get_state())
        self._frames.append(frames)
        self._biases.append(bias)
        return self._learn(index, folder, timings)

    def _reweight(self):
        """MBAR over all rounds so far: reduced bias of every frame under every round's bias."""
        features = np.concatenate([f.features for f in self._frames])
        reduced = reduced_bias_matrix(features, self._biases, self.kT)
        # consistency: the energy OpenMM applied equals the numpy bias of the same frames
        applied = self._frames[-1].bias_kjmol
        own = reduced[-1, len(features) - len(applied):] * self.kT
        mismatch = float(np.max(np.abs(applied - own))) if len(applied) else 0.0
        if mismatch > 1e-3:
            log.warning("bias energy from OpenMM and numpy differ by up to %.2e kJ/mol", mismatch)
        result = mbar_reweight(reduced, [len(f) for f in self._frames])
        return features, result

    def _learn(self, index: int, folder: Path, timings: dict) -> RoundRecord:
        cfg = self.config
        t0 = time.perf_counter()
        features, reweighted = self._reweight()
        self._last_reweight = (features, reweighted)
        log_w = reweighted.log_weights
        timings["reweight"] = time.perf_counter() - t0
        log.info("round %d: %d frames in all, MBAR effective sample size %.1f", index,
                 len(features), reweighted.effective_sample_size)

        from .vae import VAEEstimator

        t0 = time.perf_counter()
        results, kls, model_files = [], [], []
        base_seed = cfg.sampling.seed * 1000 + index * 17
        (folder / "models").mkdir(parents=True, exist_ok=True)
        for m in range(cfg.models.models):
            seed = base_seed + m
            model = VAEEstimator(self.vae_config, seed=seed).fit(
                features, log_weights=log_w, progress=cfg.output.progress
            ).fetch_model()
            model_files.append(f"models/vae_seed{seed}.pt")
            model.save(folder / model_files[-1])
            latent = model.transform(features)
            result = fit_coordinate(features, latent, log_weights=log_w,
                                    bins=cfg.coordinate.bins, seed=seed)
            results.append(result)
            kls.append(result.kl_divergence)
            log.info("round %d: VAE seed %d, best KL %.4f, c = %s", index, seed,
                     result.kl_divergence, np.round(result.coefficients, 4).tolist())
        timings["train_and_rc"] = time.perf_counter() - t0
        kept = [i for i in range(len(results)) if kls[i] <= cfg.coordinate.kl_threshold]
        # lowest KL among the models below the threshold; if none is, the lowest overall
        # (select_models logs that warning)
        best = select_models(results, cfg.coordinate.kl_threshold, fallback_to_best=True)[0]
        chosen = results[best]
        c = np.asarray(chosen.coefficients, dtype=float)
        if self._previous_coefficients is not None:
            c = align_sign(c, self._previous_coefficients)
        chi = features @ c

        # F(chi) from all frames, and the change from the previous round along the same chi
        edges = np.linspace(chi.min(), chi.max(), PROFILE_BINS + 1)
        centers, profile = free_energy_profile(chi, log_w, edges)
        angle = change = None
        converged = False
        if self._previous_coefficients is not None:
            n_old = len(self._previous_log_weights)
            _, previous = free_energy_profile(chi[:n_old], self._previous_log_weights, edges)
            angle = direction_angle_deg(c, self._previous_coefficients)
            change = profile_change_kT(centers, profile, previous,
                                       cfg.convergence.profile_max_kT)
            converged = (
                angle < cfg.convergence.angle_deg
                and change < cfg.convergence.free_energy_kT
                and index + 1 >= cfg.convergence.min_rounds
            )
            log.info("round %d: RC changed by %.2f deg, F(chi) by %.3f kT RMS%s", index, angle,
                     change, " -> converged" if converged else "")
        self._write_profile(folder / "free_energy.csv", centers, profile)
        store.write_json(folder / "coordinate.json", {
            "coefficients": c.tolist(),
            "kl_divergence": float(chosen.kl_divergence),
            "feature_names": self.feature_names,
            "model_kl_divergences": [float(k) for k in kls],
            "chosen_model": best,
            "model_files": model_files,
            "spurious_models": [i for i in range(len(results)) if i not in kept],
            "kl_threshold": cfg.coordinate.kl_threshold,
        })

        # the bias of the next round
        grid = build_bias_grid(
            chi, log_w, self.kT,
            n_points=cfg.bias.grid_points, padding=cfg.bias.padding, cap_kT=cfg.bias.cap_kT,
            smoothing_bins=cfg.bias.smoothing_bins, damping=cfg.bias.damping,
        )
        self._next_bias = Bias(c, grid)
        store.write_json(folder / "bias.json", self._next_bias.to_dict())
        self._previous_coefficients = c
        self._previous_log_weights = log_w
        record = RoundRecord(
            index=index, coefficients=c, kl_divergence=float(chosen.kl_divergence),
            frames=len(self._frames[-1]),
            effective_sample_size=float(reweighted.effective_sample_size),
            angle_change_deg=angle, free_energy_change_kT=change, converged=converged,
            timings_s=timings,
        )
        if cfg.output.figures:
            t0 = time.perf_counter()
            self._round_figure(folder / "figure.png", record, chi, log_w, centers, profile)
            timings["figure"] = time.perf_counter() - t0
        return record

    # ------------------------------------------------------------------ outputs
    def _exact_profile(self, coefficients: np.ndarray, centers: np.ndarray):
        exact = getattr(self.potential, "exact_free_energy", None)
        if exact is None:
            return None
        return np.asarray(exact(coefficients, centers), dtype=float)

    def _round_figure(self, path, record, chi, log_w, centers, profile) -> None:
        from . import plots

        plots.round_figure(
            path,
            index=record.index,
            centers=centers,
            profile_kT=profile,
            exact_kT=self._exact_profile(record.coefficients, centers),
            bias=self._next_bias,
            kT=self.kT,
            frames=[f.features for f in self._frames],
            coefficients=record.coefficients,
            potential=self.potential,
        )

    @staticmethod
    def _write_profile(path: Path, centers: np.ndarray, profile: np.ndarray) -> None:
        rows = [f"{x:.6f},{f:.6f}" for x, f in zip(centers, profile, strict=True)
                if np.isfinite(f)]
        store.write_text(path, "chi,free_energy_kT\n" + "\n".join(rows) + "\n")

    def _write_final(self) -> None:
        last = store.round_dir(self.workdir, self.records[-1].index)
        store.write_text(self.workdir / "free_energy.csv", (last / "free_energy.csv").read_text())
        if self.config.output.figures:
            from . import plots

            features, reweighted = self._last_reweight  # all rounds: computed after the last
            c = self.records[-1].coefficients
            chi = features @ c
            edges = np.linspace(chi.min(), chi.max(), PROFILE_BINS + 1)
            centers, profile = free_energy_profile(chi, reweighted.log_weights, edges)
            plots.final_figure(
                self.workdir / "free_energy.png", centers=centers, profile_kT=profile,
                exact_kT=self._exact_profile(c, centers), records=self.records,
                feature_names=self.feature_names,
            )

    def _write_summary(self, converged: bool) -> dict:
        summary = {
            "temperature_K": float(self.config.system.temperature),
            "feature_names": self.feature_names,
            "converged": bool(converged),
            "system": self.potential.name,
            "rounds": [r.to_summary() for r in self.records],
        }
        store.write_json(self.workdir / "summary.json", summary)
        return summary
