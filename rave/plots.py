"""Figures. Plotting only: every number shown is computed elsewhere.

Every function builds and returns a ``matplotlib.figure.Figure`` (no pyplot state, no backend
switch, so it is safe in scripts, threads and notebooks, where the returned figure displays
itself); given a ``path`` it also writes the figure there as PNG (atomically).

    >>> from rave import plots
    >>> fig = plots.profile_with_errors(centers=x, profile_kT=f, sigma_kT=s)
    >>> plots.save(fig, "free_energy.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from . import store
from .reweight import walker_segments


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG to ``path`` (atomically: a complete file or none); returns it."""
    path = Path(path)
    store._atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    return path


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        save(fig, path)
    return fig


def _colours(n: int) -> np.ndarray:
    return matplotlib.colormaps["viridis"](np.linspace(0, 1, max(2, n)))


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


def _potential_axes(fig: Figure, ax, potential, frames, coefficients) -> None:
    (x0, x1), (y0, y1) = potential.extent
    x, y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    u = potential.energy(x, y) / potential.kT
    u -= u.min()
    contour = ax.contourf(x, y, np.minimum(u, 20), levels=30, cmap="Greys_r")
    fig.colorbar(contour, ax=ax, label="U / kT")
    colours = _colours(len(frames))
    for k, f in enumerate(frames):
        step = max(1, len(f) // 3000)
        ax.plot(f[::step, 0], f[::step, 1], ".", ms=1.5, color=colours[k], label=f"round {k}")
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    half = 0.45 * min(x1 - x0, y1 - y0)
    c = np.asarray(coefficients)
    ax.annotate(
        "",
        xy=centre + half * c,
        xytext=centre - half * c,
        arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 2},
    )
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x / nm")
    ax.set_ylabel("y / nm")
    ax.set_title("potential, samples, RC direction")
    ax.legend(fontsize=7, markerscale=5, loc="upper right")


def round_figure(
    path: str | Path | None = None,
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
) -> Figure:
    """F(chi) and next bias; for 2-D systems also the potential, samples and the RC direction."""
    two_d = potential is not None and frames[0].shape[1] == 2
    fig = Figure(figsize=(11 if two_d else 5.5, 4.5), layout="tight")
    axes = np.atleast_1d(fig.subplots(1, 2 if two_d else 1))
    ax = axes[0]
    _profile_axes(ax, centers, profile_kT, exact_kT)
    grid = bias.grid.grid
    ax.plot(
        grid,
        bias.grid(grid) / kT + 0.0,
        color="tab:red",
        lw=1,
        label=f"bias for round {index + 1} / kT",
    )
    ax.set_ylim(min(ax.get_ylim()[0], bias.grid.values_kjmol.min() / kT - 0.5), ax.get_ylim()[1])
    ax.legend(fontsize=8)
    ax.set_title(f"after round {index}: F along c = {np.round(coefficients, 3).tolist()}")
    if two_d:
        _potential_axes(fig, axes[1], potential, frames, coefficients)
    return _finish(fig, path)


def potential_with_samples(
    path: str | Path | None = None, *, potential, frames: Sequence[np.ndarray], coefficients
) -> Figure:
    """A 2-D model potential (kT, contours), every round's samples, and the RC direction."""
    fig = Figure(figsize=(6, 5), layout="tight")
    _potential_axes(fig, fig.subplots(), potential, frames, coefficients)
    return _finish(fig, path)


def final_figure(
    path: str | Path | None = None,
    *,
    centers: np.ndarray,
    profile_kT: np.ndarray,
    exact_kT: np.ndarray | None,
    records: Sequence,
    feature_names: Sequence[str],
) -> Figure:
    """Final F(chi) beside the exact one, RC coefficients and ESS per round."""
    fig = Figure(figsize=(15, 4.3), layout="tight")
    axes = fig.subplots(1, 3)
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
    return _finish(fig, path)


def convergence(
    path: str | Path | None = None,
    *,
    rounds: Sequence[int],
    coefficients: np.ndarray,
    feature_names: Sequence[str],
    effective_sample_size: Sequence[float],
    kl_divergence: Sequence[float],
    angle_change_deg: Sequence[float | None],
    free_energy_change_kT: Sequence[float | None],
) -> Figure:
    """Per round: RC coefficients, MBAR ESS, KL of the chosen RC, RC angle and F changes."""
    fig = Figure(figsize=(16, 3.8), layout="tight")
    axes = fig.subplots(1, 4)
    coefficients = np.asarray(coefficients, dtype=float).reshape(len(rounds), -1)
    for i, name in enumerate(feature_names):
        axes[0].plot(rounds, coefficients[:, i], "o-", label=f"c[{name}]")
    axes[0].set_ylabel("RC coefficient")
    axes[0].set_title("reaction coordinate per round")
    axes[0].legend(fontsize=7)
    axes[1].plot(rounds, effective_sample_size, "o-")
    axes[1].set_ylabel("effective sample size (MBAR)")
    axes[1].set_title("reweighting quality")
    axes[2].plot(rounds, kl_divergence, "o-")
    axes[2].set_ylabel("KL(latent || chi)")
    axes[2].set_title("KL of the chosen RC")
    later = [i for i, a in enumerate(angle_change_deg) if a is not None]
    ax = axes[3]
    ax.plot(
        [rounds[i] for i in later],
        [angle_change_deg[i] for i in later],
        "o-",
        color="tab:blue",
        label="RC change / deg",
    )
    ax.set_ylabel("RC change / deg", color="tab:blue")
    twin = ax.twinx()
    changes = [i for i, f in enumerate(free_energy_change_kT) if f is not None]
    twin.plot(
        [rounds[i] for i in changes],
        [free_energy_change_kT[i] for i in changes],
        "s--",
        color="tab:orange",
        label="F change / kT",
    )
    twin.set_ylabel("F(chi) change / kT (RMS)", color="tab:orange")
    ax.set_title("change from the previous round")
    for a in axes:
        a.set_xlabel("round")
        a.set_xticks(list(rounds))
    return _finish(fig, path)


def profile_with_errors(
    path: str | Path | None = None,
    *,
    centers,
    profile_kT,
    sigma_kT,
    exact_kT=None,
    cores: Sequence[tuple[float, float]] = (),
    title: str = "",
) -> Figure:
    """F(chi) with bootstrap error bars (1 sigma), the exact profile when known, and the
    metastable states' cores shaded."""
    fig = Figure(figsize=(6, 4.3), layout="tight")
    ax = fig.subplots()
    for i, (lo, hi) in enumerate(cores):
        ax.axvspan(
            lo, hi, color="tab:green", alpha=0.12, lw=0, label="state cores" if i == 0 else None
        )
    _profile_axes(ax, centers, profile_kT, exact_kT)
    finite = np.isfinite(profile_kT) & np.isfinite(sigma_kT)
    ax.errorbar(
        centers[finite],
        profile_kT[finite],
        yerr=sigma_kT[finite],
        fmt="none",
        ecolor="tab:blue",
        alpha=0.6,
        capsize=2,
    )
    ax.set_title(title, fontsize=9)
    return _finish(fig, path)


def latent_analysis(
    path: str | Path | None = None,
    *,
    features,
    latent,
    chi,
    weights,
    feature_names,
    directions=None,
    kl_landscape=None,
) -> Figure:
    """Latent vs each order parameter, latent vs chi histograms, and the KL landscape."""
    from .coordinate import robust_unit_scale

    d = features.shape[1]
    n_panels = d + 1 + (kl_landscape is not None)
    fig = Figure(figsize=(4.2 * n_panels, 3.8), layout="tight")
    axes = np.atleast_1d(fig.subplots(1, n_panels))
    step = max(1, len(latent) // 5000)
    for i in range(d):
        axes[i].plot(features[::step, i], latent[::step], ".", ms=1.5, alpha=0.5)
        axes[i].set_xlabel(feature_names[i])
        axes[i].set_ylabel("latent (encoder mean)")
    ax = axes[d]
    bins = np.linspace(0, 1, 51)
    ax.hist(
        robust_unit_scale(latent, weights),
        bins=bins,
        weights=weights,
        density=True,
        alpha=0.5,
        label="latent",
    )
    ax.hist(
        robust_unit_scale(chi, weights),
        bins=bins,
        weights=weights,
        density=True,
        alpha=0.5,
        label=r"$\chi$",
    )
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
    return _finish(fig, path)


def chi_time_series(
    path: str | Path | None = None,
    *,
    rounds,
    coefficients,
    cores: Sequence[tuple[float, float]] = (),
) -> Figure:
    """chi(t) along the final RC: one line per walker of every round (coloured by round), with
    the metastable states' cores shaded.

    ``rounds`` holds objects with ``index``, ``features`` (n, d), ``time_ps`` (n,) and an
    optional ``walker`` (n,) array (e.g. :class:`rave.analysis.RoundData`).
    """
    fig = Figure(figsize=(10, 3.5), layout="tight")
    ax = fig.subplots()
    for lo, hi in cores:
        ax.axhspan(lo, hi, color="tab:green", alpha=0.12, lw=0)
    colours = _colours(len(rounds))
    for k, r in enumerate(rounds):
        chi = r.features @ coefficients
        segments = walker_segments(len(chi), getattr(r, "walker", None))
        for w, segment in enumerate(segments):
            ax.plot(
                r.time_ps[segment],
                chi[segment],
                lw=0.5,
                color=colours[k],
                label=(
                    f"round {r.index}"
                    + (f" ({len(segments)} walkers)" if len(segments) > 1 else "")
                )
                if w == 0
                else None,
            )
    ax.set_xlabel("time / ps")
    ax.set_ylabel(r"$\chi$ (final RC)")
    ax.legend(fontsize=7, ncol=min(6, len(rounds)))
    return _finish(fig, path)


def free_energy_surface(
    path: str | Path | None = None, *, x, y, f_kT, xlabel: str, ylabel: str
) -> Figure:
    """2-D free-energy surface (kT) over two order parameters."""
    fig = Figure(figsize=(5.5, 4.5), layout="tight")
    ax = fig.subplots()
    shown = np.where(np.isfinite(f_kT), np.minimum(f_kT, 12), np.nan)
    mesh = ax.pcolormesh(x, y, shown, shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="F / kT")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("free-energy surface (all rounds, MBAR)")
    return _finish(fig, path)
