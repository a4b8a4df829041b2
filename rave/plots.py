"""Figures (matplotlib, Agg). Plotting only: every number shown is computed elsewhere."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import store  # noqa: E402


def _save(fig, path: Path) -> None:
    store._atomic(Path(path), lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def _profile_axes(ax, centers, profile_kT, exact_kT, label="RAVE (all rounds, MBAR)") -> None:
    finite = np.isfinite(profile_kT)
    ax.plot(centers[finite], profile_kT[finite], "o-", ms=3, label=label)
    if exact_kT is not None:
        exact = exact_kT - np.nanmin(exact_kT[finite]) if finite.any() else exact_kT
        # align the exact profile to ours by the mean offset where ours is below 5 kT
        mask = finite & np.isfinite(exact) & (profile_kT < 5)
        if mask.any():
            exact = exact - np.mean(exact[mask] - profile_kT[mask])
        ax.plot(centers, exact, "k--", lw=1.5, label="exact (quadrature)")
    ax.set_xlabel(r"$\chi = \sum_i c_i s_i$")
    ax.set_ylabel(r"$F(\chi)$ / kT")
    top = np.nanmax(profile_kT[finite]) if finite.any() else 10
    ax.set_ylim(-0.5, min(top + 1, 25))
    ax.legend(fontsize=8)


def round_figure(
    path: Path,
    *,
    index: int,
    centers: np.ndarray,
    profile_kT: np.ndarray,
    exact_kT: np.ndarray | None,
    bias,
    kT: float,
    frames: Sequence[np.ndarray],
    coefficients: np.ndarray,
    potential=None,
) -> None:
    """F(chi) and next bias; for 2-D systems also the potential, samples and the RC direction."""
    two_d = potential is not None and frames[0].shape[1] == 2
    fig, axes = plt.subplots(1, 2 if two_d else 1, figsize=(11 if two_d else 5.5, 4.5))
    axes = np.atleast_1d(axes)
    ax = axes[0]
    _profile_axes(ax, centers, profile_kT, exact_kT)
    grid = bias.grid.grid
    ax.plot(grid, bias.grid(grid) / kT + 0.0, color="tab:red", lw=1,
            label=f"bias for round {index + 1} / kT")
    ax.set_ylim(min(ax.get_ylim()[0], bias.grid.values_kjmol.min() / kT - 0.5),
                ax.get_ylim()[1])
    ax.legend(fontsize=8)
    ax.set_title(f"after round {index}: F along c = {np.round(coefficients, 3).tolist()}")
    if two_d:
        ax = axes[1]
        (x0, x1), (y0, y1) = potential.extent
        x, y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
        u = potential.energy(x, y) / potential.kT
        u -= u.min()
        contour = ax.contourf(x, y, np.minimum(u, 20), levels=30, cmap="Greys_r")
        fig.colorbar(contour, ax=ax, label="U / kT")
        colours = plt.cm.viridis(np.linspace(0, 1, max(2, len(frames))))
        for k, f in enumerate(frames):
            step = max(1, len(f) // 3000)
            ax.plot(f[::step, 0], f[::step, 1], ".", ms=1.5, color=colours[k],
                    label=f"round {k}")
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        half = 0.45 * min(x1 - x0, y1 - y0)
        c = np.asarray(coefficients)
        ax.annotate("", xy=centre + half * c, xytext=centre - half * c,
                    arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 2})
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel("x / nm")
        ax.set_ylabel("y / nm")
        ax.set_title("potential, samples, RC direction")
        ax.legend(fontsize=7, markerscale=5, loc="upper right")
    fig.tight_layout()
    _save(fig, path)


def final_figure(
    path: Path,
    *,
    centers: np.ndarray,
    profile_kT: np.ndarray,
    exact_kT: np.ndarray | None,
    records: Sequence,
    feature_names: Sequence[str],
) -> None:
    """Final F(chi) beside the exact one, RC coefficients and ESS per round."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    _profile_axes(axes[0], centers, profile_kT, exact_kT)
    axes[0].set_title("free energy along the final RC")
    rounds = [r.index for r in records]
    coefficients = np.array([r.coefficients for r in records])
    for i, name in enumerate(feature_names):
        axes[1].plot(rounds, coefficients[:, i], "o-", label=f"c[{name}]")
    axes[1].set_xlabel("round")
    axes[1].set_ylabel("RC coefficient")
    axes[1].set_title("reaction coordinate per round")
    axes[1].legend(fontsize=8)
    axes[2].plot(rounds, [r.effective_sample_size for r in records], "o-")
    axes[2].set_xlabel("round")
    axes[2].set_ylabel("effective sample size (MBAR)")
    axes[2].set_title("reweighting quality")
    for ax in axes[1:]:
        ax.set_xticks(rounds)
    fig.tight_layout()
    _save(fig, path)


def profile_with_errors(path: Path, *, centers, profile_kT, sigma_kT, exact_kT=None,
                        title: str = "") -> None:
    """F(chi) with block-bootstrap error bars, beside the exact profile when known."""
    fig, ax = plt.subplots(figsize=(6, 4.3))
    _profile_axes(ax, centers, profile_kT, exact_kT)
    finite = np.isfinite(profile_kT) & np.isfinite(sigma_kT)
    ax.errorbar(centers[finite], profile_kT[finite], yerr=sigma_kT[finite], fmt="none",
                ecolor="tab:blue", alpha=0.6, capsize=2)
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)


def latent_analysis(path: Path, *, features, latent, chi, weights, feature_names,
                    directions=None, kl_landscape=None) -> None:
    """Latent vs each order parameter, latent vs chi histograms, and the KL landscape."""
    from .coordinate import robust_unit_scale

    d = features.shape[1]
    n_panels = d + 1 + (kl_landscape is not None)
    fig, axes = plt.subplots(1, n_panels, figsize=(4.2 * n_panels, 3.8))
    step = max(1, len(latent) // 5000)
    for i in range(d):
        axes[i].plot(features[::step, i], latent[::step], ".", ms=1.5, alpha=0.5)
        axes[i].set_xlabel(feature_names[i])
        axes[i].set_ylabel("latent (encoder mean)")
    ax = axes[d]
    bins = np.linspace(0, 1, 51)
    ax.hist(robust_unit_scale(latent, weights), bins=bins, weights=weights, density=True,
            alpha=0.5, label="latent")
    ax.hist(robust_unit_scale(chi, weights), bins=bins, weights=weights, density=True,
            alpha=0.5, label=r"$\chi$")
    ax.set_xlabel("rescaled to [0, 1] (weighted quantiles)")
    ax.set_title("KL match (reweighted)")
    ax.legend(fontsize=8)
    if kl_landscape is not None:
        ax = axes[d + 1]
        if directions.shape[1] == 2:
            angle = np.degrees(np.arctan2(directions[:, 1], directions[:, 0]))
            order = np.argsort(angle)
            ax.plot(angle[order], kl_landscape[order])
            ax.set_xlabel("direction angle from the first feature / deg")
        else:
            ax.plot(np.sort(kl_landscape))
            ax.set_xlabel("scanned directions (sorted)")
        ax.set_ylabel("KL(latent || chi)")
        ax.set_title("KL landscape")
    fig.tight_layout()
    _save(fig, path)


def chi_time_series(path: Path, *, rounds, coefficients) -> None:
    """chi(t) along the final RC for every round's walker."""
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for r in rounds:
        ax.plot(r.time_ps, r.features @ coefficients, lw=0.5, label=f"round {r.index}")
    ax.set_xlabel("time / ps")
    ax.set_ylabel(r"$\chi$ (final RC)")
    ax.legend(fontsize=7, ncol=min(6, len(rounds)))
    fig.tight_layout()
    _save(fig, path)


def free_energy_surface(path: Path, *, x, y, f_kT, xlabel: str, ylabel: str) -> None:
    """2-D free-energy surface (kT) over two order parameters."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    shown = np.where(np.isfinite(f_kT), np.minimum(f_kT, 12), np.nan)
    mesh = ax.pcolormesh(x, y, shown, shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="F / kT")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("free-energy surface (all rounds, MBAR)")
    fig.tight_layout()
    _save(fig, path)
