"""A finished (or running) campaign loaded from its work directory, for notebooks and reports.

Everything here is computation on stored files; figures are in :mod:`rave.plots`.

    >>> from rave.analysis import CampaignResult
    >>> result = CampaignResult.load("runs/rdw")
    >>> centers, F, sigma = result.free_energy(result.coefficients(-1))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import store
from .bias import Bias
from .features import feature_from_dict
from .reweight import ReweightResult, free_energy_profile, free_energy_uncertainty, mbar_reweight
from .units import kT_kjmol


class CampaignFileError(RuntimeError):
    """A file of the campaign is missing or unreadable; the message names it."""


def _read_json(path: Path):
    try:
        return store.read_json(path)
    except FileNotFoundError as error:
        raise CampaignFileError(f"{path} is missing") from error
    except ValueError as error:
        raise CampaignFileError(f"{path} is not valid JSON (truncated or corrupted?): "
                                f"{error}") from error


@dataclass
class RoundData:
    index: int
    features: np.ndarray          # (n_frames, d)
    bias_kjmol: np.ndarray        # (n_frames,) applied when sampled
    time_ps: np.ndarray           # (n_frames,)
    bias_applied: Bias | None     # None in the unbiased round
    coordinate: dict              # coordinate.json
    next_bias: Bias               # bias.json


class CampaignResult:
    """Frames, biases, RCs and models of a campaign's finished rounds."""

    def __init__(self, workdir: Path, summary: dict, features: list, rounds: list[RoundData]):
        self.workdir = Path(workdir)
        self.summary = summary
        self.features = features
        self.rounds = rounds
        self.temperature_K = float(summary["temperature_K"])
        self.kT = kT_kjmol(self.temperature_K)
        self._reweighted: ReweightResult | None = None

    @classmethod
    def load(cls, workdir: str | Path) -> CampaignResult:
        workdir = Path(workdir)
        summary = _read_json(workdir / "summary.json")
        features = [feature_from_dict(d) for d in _read_json(workdir / "features.json")]
        rounds = []
        for record in summary["rounds"]:
            folder = store.round_dir(workdir, record["index"])
            try:
                frames = store.read_npz(folder / "frames.npz")
            except FileNotFoundError as error:
                raise CampaignFileError(f"{folder / 'frames.npz'} is missing") from error
            except Exception as error:  # zip/pickle errors of a truncated file
                raise CampaignFileError(f"{folder / 'frames.npz'} cannot be read "
                                        f"(truncated or corrupted?): {error}") from error
            applied = folder / "bias_applied.json"
            rounds.append(RoundData(
                index=record["index"],
                features=frames["features"],
                bias_kjmol=frames["bias_kjmol"],
                time_ps=frames["time_ps"],
                bias_applied=Bias.from_dict(_read_json(applied)) if applied.exists() else None,
                coordinate=_read_json(folder / "coordinate.json"),
                next_bias=Bias.from_dict(_read_json(folder / "bias.json")),
            ))
        if not rounds:
            raise CampaignFileError(f"{workdir / 'summary.json'} lists no finished round")
        return cls(workdir, summary, features, rounds)

    # ----------------------------------------------------------------- data
    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def all_features(self) -> np.ndarray:
        return np.concatenate([r.features for r in self.rounds])

    def coefficients(self, index: int = -1) -> np.ndarray:
        """The RC learned after round ``index`` (unit norm, feature order)."""
        return np.asarray(self.rounds[index].coordinate["coefficients"], dtype=float)

    def reweight(self) -> ReweightResult:
        """MBAR over all rounds toward the unbiased ensemble (cached)."""
        if self._reweighted is None:
            from .campaign import reduced_bias_matrix

            reduced = reduced_bias_matrix(self.all_features(),
                                          [r.bias_applied for r in self.rounds], self.kT)
            self._reweighted = mbar_reweight(reduced, [len(r.features) for r in self.rounds])
        return self._reweighted

    def free_energy(
        self, coefficients: np.ndarray, bins: int = 60, n_blocks: int = 10, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """F(chi) in kT along chi = coefficients . features from all rounds, with the
        block-bootstrap standard error (blocks within each round's time order)."""
        c = np.asarray(coefficients, dtype=float)
        chi = self.all_features() @ c
        log_w = self.reweight().log_weights
        edges = np.linspace(chi.min(), chi.max(), bins + 1)
        centers, profile = free_energy_profile(chi, log_w, edges)
        sigma = free_energy_uncertainty(chi, log_w, edges, n_blocks=n_blocks, seed=seed)
        return centers, profile, sigma

    def free_energy_2d(
        self, i: int = 0, j: int = 1, bins: int = 50
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """F(s_i, s_j) in kT (min 0, inf where empty) over two order parameters."""
        features = self.all_features()
        w = np.exp(self.reweight().log_weights - self.reweight().log_weights.max())
        hist, xe, ye = np.histogram2d(features[:, i], features[:, j], bins=bins, weights=w)
        with np.errstate(divide="ignore"):
            f = -np.log(hist)
        f -= f[np.isfinite(f)].min()
        return 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]), f.T

    def latent(self, index: int = -1) -> np.ndarray:
        """Latent mean of every frame under the model chosen in round ``index``."""
        from .vae import VAEModel

        record = self.rounds[index]
        name = record.coordinate["model_files"][int(record.coordinate["chosen_model"])]
        path = store.round_dir(self.workdir, record.index) / name
        if not path.is_file():
            raise CampaignFileError(f"{path} is missing")
        return VAEModel.load(path).transform(self.all_features()[: self.frames_up_to(index)])

    def frames_up_to(self, index: int) -> int:
        """Number of frames in rounds 0..index."""
        index = index % len(self.rounds)
        return sum(len(r.features) for r in self.rounds[: index + 1])

    def diagnostics(self) -> list[dict]:
        """Per round: RC angle change, F change, ESS, KL, frames, and chi-sign transitions."""
        rows = []
        final = self.coefficients(-1)
        everything = self.all_features() @ final
        bounds = (float(everything.min()), float(everything.max()))
        for record, round_data in zip(self.summary["rounds"], self.rounds, strict=True):
            chi = round_data.features @ final
            rows.append({
                "round": record["index"],
                "frames": record["frames"],
                "effective_sample_size": record["effective_sample_size"],
                "kl_divergence": record["kl_divergence"],
                "angle_change_deg": record.get("angle_change_deg"),
                "free_energy_change_kT": record.get("free_energy_change_kT"),
                "converged": record.get("converged", False),
                "transitions": count_transitions(chi, bounds),
            })
        return rows


def count_transitions(
    chi: np.ndarray, bounds: tuple[float, float], core_fraction: float = 0.25
) -> int:
    """Transitions between the two ends of a chi range ``bounds`` (e.g. all rounds' range along
    the final RC): a frame is in the low (high) core when chi is in the lowest (highest)
    ``core_fraction`` of that range; a transition is a move from one core to the other (time in
    between does not count)."""
    chi = np.asarray(chi, dtype=float)
    if chi.size < 2:
        return 0
    lo, hi = bounds
    span = hi - lo
    if span <= 0:
        return 0
    state = np.where(chi <= lo + core_fraction * span, -1,
                     np.where(chi >= hi - core_fraction * span, 1, 0))
    visited = state[state != 0]
    return int(np.count_nonzero(np.diff(visited) != 0))


def write_report(workdir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.md`` and its PNG figures (default: WORKDIR/report/); returns its path."""
    from . import plots
    from .campaign import build_model_potential
    from .config import config_from_dict
    from .coordinate import fit_coordinate

    result = CampaignResult.load(workdir)
    out = Path(out) if out is not None else result.workdir / "report"
    out.mkdir(parents=True, exist_ok=True)
    c = result.coefficients(-1)
    potential = None
    config_path = result.workdir / "config.json"
    if config_path.exists():
        potential = build_model_potential(config_from_dict(_read_json(config_path)))

    centers, profile, sigma = result.free_energy(c)
    exact = (potential.exact_free_energy(c, centers)
             if hasattr(potential, "exact_free_energy") else None)
    plots.profile_with_errors(out / "free_energy.png", centers=centers, profile_kT=profile,
                              sigma_kT=sigma, exact_kT=exact,
                              title="F along the final RC (error bars: block bootstrap)")
    features = result.all_features()
    latent = result.latent(-1)
    log_w = result.reweight().log_weights
    weights = np.exp(log_w - log_w.max())
    scan = fit_coordinate(features, latent, log_weights=log_w, seed=0)
    chi = features @ c
    if np.corrcoef(latent, chi)[0, 1] < 0:
        chi = -chi  # the latent's sign is arbitrary: show chi oriented like it
    plots.latent_analysis(out / "latent.png", features=features, latent=latent, chi=chi,
                          weights=weights, feature_names=result.feature_names,
                          directions=scan.directions, kl_landscape=scan.kl_landscape)
    plots.chi_time_series(out / "chi_time_series.png", rounds=result.rounds, coefficients=c)
    figures = ["free_energy.png", "latent.png", "chi_time_series.png"]
    if features.shape[1] >= 2:
        x, y, f2 = result.free_energy_2d(0, 1)
        plots.free_energy_surface(out / "free_energy_2d.png", x=x, y=y, f_kT=f2,
                                  xlabel=result.feature_names[0], ylabel=result.feature_names[1])
        figures.append("free_energy_2d.png")

    rows = result.diagnostics()
    last = rows[-1]
    verdict = ("converged" if result.summary.get("converged") else
               f"not converged: last RC change {last['angle_change_deg'] or 0:.2f} deg, F change "
               f"{last['free_energy_change_kT'] or 0:.3f} kT (see [convergence] in the config)")
    lines = [
        f"# RAVE campaign report: {result.workdir}",
        "",
        f"- system: {result.summary.get('system', '?')} at {result.temperature_K} K",
        f"- verdict: **{verdict}**",
        "- final RC: chi = " + " + ".join(
            f"{ci:+.4f} {name}" for ci, name in zip(c, result.feature_names, strict=True)),
        f"- frames: {len(features)} in {len(result.rounds)} rounds; MBAR effective sample size "
        f"{result.reweight().effective_sample_size:.1f}",
        "",
        "| round | frames | ESS | KL | RC change (deg) | F change (kT) | transitions |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        angle = "" if r["angle_change_deg"] is None else f"{r['angle_change_deg']:.2f}"
        change = "" if r["free_energy_change_kT"] is None else f"{r['free_energy_change_kT']:.3f}"
        lines.append(f"| {r['round']} | {r['frames']} | {r['effective_sample_size']:.1f} | "
                     f"{r['kl_divergence']:.4f} | {angle} | {change} | {r['transitions']} |")
    lines += ["", "Transitions: moves, within a round, between the lowest and highest quarter of "
              "the chi range that all rounds sampled along the final RC.", ""]
    for name in figures:
        lines += [f"![{name}]({name})", ""]
    last_round = store.round_dir(result.workdir, result.rounds[-1].index) / "figure.png"
    if last_round.exists():
        lines += [f"Last round: `{last_round}`", ""]
    report = out / "report.md"
    store.write_text(report, "\n".join(lines))
    return report
