"""Figures. Plotting only: every number shown is computed elsewhere.

Every function builds and returns a ``matplotlib.figure.Figure`` (no pyplot state, no backend
switch, so it is safe in scripts, threads and notebooks, where the returned figure displays
itself); given a ``path`` it also writes the figure there as PNG (atomically).

    >>> from rave import plots
    >>> fig = plots.profile_with_errors(centers=x, profile_kT=f, sigma_kT=s, chi_unit="nm")
    >>> plots.save(fig, "free_energy.png")

What every figure holds to:

* every axis label ends with its unit in parentheses, ``(nm)``, ``(kT)``, ``(deg)``,
  ``(dimensionless)``, ``(mixed units)`` when chi combines order parameters of different units
  (see :func:`rave.analysis.chi_unit`), or says what the axis counts (``round (index)``);
* a profile is drawn only over bins with frames: lines break at bins without frames (NaN), and
  such bins inside the sampled range are shaded "no frames";
* a reference profile says how it was shifted (:func:`rave.stats.align_reference`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..campaign import store
from ..stats import AlignedReference, align_reference, walker_segments

#: Axis text of chi when the caller does not know its order parameters' unit.
CHI_UNIT_NOT_GIVEN = "the order parameters' units"
#: The label of chi without its unit.
CHI = r"$\chi = \sum_i c_i s_i$"


def unit_label(quantity: str, unit: str | None) -> str:
    """An axis label ``"quantity (unit)"``."""
    if unit is None:
        unit = CHI_UNIT_NOT_GIVEN
    elif unit in ("1", ""):
        unit = "dimensionless"
    return f"{quantity} ({unit})"


def save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG to ``path`` (atomically: a complete file or none)."""
    path = Path(path)
    store.write_file(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    return path


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        save(fig, path)
    return fig


def _colours(n: int) -> np.ndarray:
    return matplotlib.colormaps["viridis"](np.linspace(0, 1, max(2, n)))


def with_gaps(values: np.ndarray) -> np.ndarray:
    """``values`` as float with NaN wherever they are not finite.

    A bin without frames has F = inf; matplotlib breaks a line at NaN, so no line is drawn
    across such bins.
    """
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v), v, np.nan)


def _bin_edges(centers: np.ndarray) -> np.ndarray:
    c = np.asarray(centers, dtype=float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    inner = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[2 * c[0] - inner[0]], inner, [2 * c[-1] - inner[-1]]])


def _shade_gaps(ax, centers: np.ndarray, sampled: np.ndarray) -> None:
    """Shade runs of bins without frames between the first and the last sampled bin."""
    hits = np.flatnonzero(sampled)
    if hits.size < 2:
        return
    edges = _bin_edges(centers)
    inside = ~sampled[hits[0] : hits[-1] + 1]
    labelled = False
    start = None
    for offset, empty in enumerate(np.append(inside, False)):
        if empty and start is None:
            start = offset
        elif not empty and start is not None:
            lo, hi = hits[0] + start, hits[0] + offset  # bins lo .. hi-1 are empty
            ax.axvspan(edges[lo], edges[hi], color="0.85", lw=0, zorder=0,
                       label=None if labelled else "bins without frames")
            labelled = True
            start = None


def reference_label(aligned: AlignedReference, name: str = "exact (quadrature)") -> str:
    """Legend text of a reference profile that says how it was shifted."""
    if aligned.matched_bins:
        return f"{name}, shifted to RAVE's mean where exact F < {aligned.below_kT:g} kT"
    return f"{name}, shifted to a minimum of 0 (no bin to match)"


def _profile_axes(
    ax,
    centers,
    profile_kT,
    exact_kT,
    label="RAVE (all rounds, MBAR)",
    chi_unit: str | None = None,
    sigma_kT=None,
    flagged=None,
    flag_label: str = "",
) -> AlignedReference | None:
    c = np.asarray(centers, dtype=float)
    f = np.asarray(profile_kT, dtype=float)
    sampled = np.isfinite(f)
    _shade_gaps(ax, c, sampled)
    ax.plot(c, with_gaps(f), "o-", ms=3, label=label)
    if sigma_kT is not None:
        s = np.asarray(sigma_kT, dtype=float)
        bars = sampled & np.isfinite(s)
        bad = np.zeros_like(bars) if flagged is None else np.asarray(flagged, dtype=bool)
        ax.errorbar(c[bars & ~bad], f[bars & ~bad], yerr=s[bars & ~bad], fmt="none",
                    ecolor="tab:blue", alpha=0.6, capsize=2,
                    label=r"$\pm 1\sigma$ (block bootstrap)")
        if (bars & bad).any():
            ax.errorbar(c[bars & bad], f[bars & bad], yerr=s[bars & bad], fmt="none",
                        ecolor="tab:red", alpha=0.9, capsize=2, lw=1.5,
                        label=flag_label or "error bar not trustworthy")
    aligned = None
    if exact_kT is not None:
        aligned = align_reference(exact_kT, f)
        ax.plot(c, with_gaps(aligned.free_energy), "k--", lw=1.5, label=reference_label(aligned))
    ax.set_xlabel(unit_label(CHI, chi_unit))
    ax.set_ylabel(unit_label(r"$F(\chi)$", "kT"))
    top = np.max(f[sampled]) if sampled.any() else 10
    ax.set_ylim(-0.5, min(top + 1, 25))
    ax.legend(fontsize=7)
    return aligned


def _potential_axes(fig: Figure, ax, potential, frames, coefficients) -> None:
    (x0, x1), (y0, y1) = potential.extent
    x, y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    u = potential.energy(x, y) / potential.kT
    u -= u.min()
    contour = ax.contourf(x, y, np.minimum(u, 20), levels=30, cmap="Greys_r")
    fig.colorbar(contour, ax=ax, label=unit_label("U, capped at 20 kT", "kT"))
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
    ax.set_xlabel(unit_label("x", "nm"))
    ax.set_ylabel(unit_label("y", "nm"))
    ax.set_title("potential, samples, RC direction (red)")
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
    chi_unit: str | None = None,
    bias_label: str | None = None,
) -> Figure:
    """F(chi) and next bias; for 2-D systems also the potential, samples and the RC direction."""
    two_d = potential is not None and frames[0].shape[1] == 2
    fig = Figure(figsize=(11 if two_d else 5.5, 4.5), layout="tight")
    axes = np.atleast_1d(fig.subplots(1, 2 if two_d else 1))
    ax = axes[0]
    _profile_axes(ax, centers, profile_kT, exact_kT, chi_unit=chi_unit)
    grid = bias.grid.grid
    ax.plot(grid, bias.grid(grid) / kT + 0.0, color="tab:red", lw=1,
            label=bias_label or f"kT ln P bias built after round {index}")
    ax.set_ylim(min(ax.get_ylim()[0], bias.grid.values_kjmol.min() / kT - 0.5), ax.get_ylim()[1])
    ax.set_ylabel(unit_label(r"$F(\chi)$ and bias", "kT"))
    ax.legend(fontsize=7)
    ax.set_title(f"after round {index}: F along c = {np.round(coefficients, 3).tolist()}",
                 fontsize=9)
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


def _per_round_axes(ax, rounds: Sequence[int]) -> None:
    ax.set_xlabel("round (index)")
    ax.set_xticks(list(rounds))


def final_figure(
    path: str | Path | None = None,
    *,
    centers: np.ndarray,
    profile_kT: np.ndarray,
    exact_kT: np.ndarray | None,
    records: Sequence,
    feature_names: Sequence[str],
    sigma_kT: np.ndarray | None = None,
    chi_unit: str | None = None,
) -> Figure:
    """Final F(chi) beside the exact one, RC coefficients and ESS per round.

    F has 1-sigma error bars when ``sigma_kT`` is given.
    """
    fig = Figure(figsize=(15, 4.3), layout="tight")
    axes = fig.subplots(1, 3)
    _profile_axes(axes[0], centers, profile_kT, exact_kT, chi_unit=chi_unit, sigma_kT=sigma_kT)
    axes[0].set_title("free energy along the final RC"
                      + ("" if sigma_kT is not None else " (no error bars computed)"), fontsize=9)
    rounds = [r.index for r in records]
    coefficients = np.array([r.coefficients for r in records])
    for i, name in enumerate(feature_names):
        axes[1].plot(rounds, coefficients[:, i], "o-", label=f"c[{name}]")
    axes[1].set_ylabel(unit_label("RC coefficient, |c| = 1", "1"))
    axes[1].set_title("reaction coordinate per round")
    axes[1].legend(fontsize=8)
    axes[2].plot(rounds, [r.effective_sample_size for r in records], "o-")
    axes[2].set_ylabel(unit_label("effective sample size (MBAR)", "frames"))
    axes[2].set_title("MBAR effective sample size (counts usable frames; it does not\n"
                      "check that the weights are right)", fontsize=9)
    for ax in axes[1:]:
        _per_round_axes(ax, rounds)
    return _finish(fig, path)


def _series(rounds: Sequence[int], values: Sequence[float | None] | None):
    """The rounds and values where a per-round value exists (None: not defined that round)."""
    if values is None:
        return [], []
    kept = [(r, v) for r, v in zip(rounds, values, strict=True) if v is not None]
    return [r for r, _ in kept], [float(v) for _, v in kept]


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
    seed_spread_deg: Sequence[float | None] | None = None,
    slow_direction_angle_deg: Sequence[float] | None = None,
    angle_limit_deg: float | None = None,
    free_energy_limit_kT: float | None = None,
    profile_max_kT: float | None = None,
    min_rounds: int | None = None,
    kl_threshold: float | None = None,
) -> Figure:
    """One panel per quantity, per round, with the campaign's thresholds as lines."""
    rounds = [int(r) for r in rounds]
    coefficients = np.asarray(coefficients, dtype=float).reshape(len(rounds), -1)
    has_spread = bool(_series(rounds, seed_spread_deg)[0])
    has_slow = slow_direction_angle_deg is not None
    n_panels = 5 + has_spread + has_slow
    columns = 3 if n_panels <= 6 else 4
    rows = -(-n_panels // columns)
    fig = Figure(figsize=(4.3 * columns, 3.4 * rows), layout="constrained")
    grid = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for extra in grid[n_panels:]:
        fig.delaxes(extra)
    panels = iter(grid[:n_panels])
    ticks = list(range(min(rounds), max(rounds + [(min_rounds or 1) - 1]) + 1)) if rounds else []

    def panel(ylabel: str, unit: str, title: str):
        ax = next(panels)
        ax.set_ylabel(unit_label(ylabel, unit))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("round (index)")
        ax.set_xticks(ticks)
        if ticks:
            ax.set_xlim(ticks[0] - 0.3, ticks[-1] + 0.3)
        return ax

    def criterion(ax, limit, unit) -> None:
        if limit is not None:
            ax.axhline(limit, color="tab:red", ls="--", lw=1, label=f"limit {limit:g} {unit}")
        if min_rounds is not None:
            ax.axvline(min_rounds - 1, color="0.4", ls=":", lw=1,
                       label=f"first round that may converge (min_rounds {min_rounds})")
        if limit is not None or min_rounds is not None:
            ax.legend(fontsize=7)
        ax.set_ylim(bottom=0)

    ax = panel("$c_i$", "1", "RC coefficients (|c| = 1)")
    for i, name in enumerate(feature_names):
        ax.plot(rounds, coefficients[:, i], "o-", label=f"c[{name}]")
    ax.legend(fontsize=7)

    ax = panel("RC change", "deg", "criterion: RC change from the previous round")
    ax.plot(*_series(rounds, angle_change_deg), "o-", color="tab:blue")
    criterion(ax, angle_limit_deg, "deg")

    if has_spread:
        ax = panel("seed spread", "deg", "criterion: largest angle between the seeds' RCs")
        ax.plot(*_series(rounds, seed_spread_deg), "o-", color="tab:purple")
        criterion(ax, angle_limit_deg, "deg")

    region = "" if profile_max_kT is None else f" where F < {profile_max_kT:g} kT"
    ax = panel(r"$F(\chi)$ change, RMS", "kT", "criterion: F change" + region)
    ax.plot(*_series(rounds, free_energy_change_kT), "s-", color="tab:orange")
    criterion(ax, free_energy_limit_kT, "kT")

    ax = panel(r"KL(latent $\|$ $\chi$)", "nats", "KL of the chosen RC")
    ax.plot(rounds, [float(k) for k in kl_divergence], "o-", color="tab:green")
    if kl_threshold is not None:
        ax.axhline(kl_threshold, color="tab:red", ls="--", lw=1,
                   label=f"spurious-model threshold {kl_threshold:g} nats")
        ax.legend(fontsize=7)
    ax.set_ylim(bottom=0)

    ax = panel("ESS", "frames", "MBAR effective sample size")
    ax.plot(rounds, [float(e) for e in effective_sample_size], "o-", color="tab:gray")
    ax.set_ylim(bottom=0)

    if has_slow:
        ax = panel("angle to the slow direction", "deg", "RC against the known slow direction")
        ax.plot(rounds, [float(a) for a in slow_direction_angle_deg], "o-", color="tab:brown")
        ax.set_ylim(0, 90)

    unknown = [name for name, value in (("RC change", angle_limit_deg),
                                        ("F change", free_energy_limit_kT),
                                        ("min_rounds", min_rounds)) if value is None]
    fig.suptitle("convergence per round"
                 + (f" (thresholds not known: {', '.join(unknown)})" if unknown else ""),
                 fontsize=10)
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
    chi_unit: str | None = None,
    flagged=None,
    flag_label: str = "",
    barrier: float | None = None,
    note: str = "",
) -> Figure:
    """F(chi) with bootstrap error bars (1 sigma), the exact profile and the states' cores.

    The exact profile, when known, is shifted as its legend says; the metastable states' cores
    are shaded; no line is drawn across bins without frames.
    """
    fig = Figure(figsize=(6.5, 4.5), layout="tight")
    ax = fig.subplots()
    _basin_axes(ax, centers, profile_kT, sigma_kT, cores, flagged, flag_label, barrier, note,
                exact_kT=exact_kT, chi_unit=chi_unit)
    ax.set_title(title, fontsize=9, pad=_NOTE_PAD if note else 6)
    return _finish(fig, path)


#: Points between an axes and its title when a two-line warning sits between them.
_NOTE_PAD = 26


def _basin_axes(ax, centers, profile_kT, sigma_kT, cores, flagged, flag_label, barrier, note,
                exact_kT=None, chi_unit=None, xlabel: str | None = None) -> None:
    """F with error bars, state cores, the dividing surface and a warning, on ``ax``."""
    for i, (lo, hi) in enumerate(cores):
        ax.axvspan(
            lo, hi, color="tab:green", alpha=0.12, lw=0, label="state cores" if i == 0 else None
        )
    if barrier is not None:
        ax.axvline(barrier, color="tab:purple", ls="--", lw=1,
                   label="dividing surface (highest barrier)")
    _profile_axes(ax, centers, profile_kT, exact_kT, chi_unit=chi_unit, sigma_kT=sigma_kT,
                  flagged=flagged, flag_label=flag_label)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(unit_label("F", "kT"))
    if note:  # above the axes, under the title (set with pad=_NOTE_PAD), clear of the legend
        ax.text(0.0, 1.02, note, transform=ax.transAxes, va="bottom", ha="left", fontsize=7,
                color="tab:red")


def order_parameter_profiles(path: str | Path | None = None, *, panels: Sequence[dict]
                             ) -> Figure:
    """F over each order parameter (an angle over -180..180 deg), one panel each.

    Each panel is drawn as :func:`profile_with_errors` draws F(chi): error bars (red where
    ``flagged``), the states' cores, the dividing surface and a warning.
    """
    n = len(panels)
    columns = min(n, 2)
    rows = -(-n // columns)
    fig = Figure(figsize=(6.2 * columns, 4.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for extra in axes[n:]:
        fig.delaxes(extra)
    for ax, panel in zip(axes, panels, strict=False):
        _basin_axes(ax, panel["centers"], panel["profile_kT"], panel["sigma_kT"],
                    panel["cores"], panel["flagged"], panel["flag_label"], panel["barrier"],
                    panel["note"], xlabel=panel["xlabel"])
        if panel.get("periodic"):
            ax.set_xlim(-180, 180)
            ax.set_xticks(np.arange(-180, 181, 60))
        ax.set_title(panel["title"], fontsize=9, pad=_NOTE_PAD if panel["note"] else 6)
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
    feature_units: Sequence[str] | None = None,
) -> Figure:
    """Latent vs each order parameter, latent vs chi histograms, and the KL landscape."""
    from ..learn.coordinate import robust_unit_scale

    d = features.shape[1]
    units = list(feature_units) if feature_units is not None else [None] * d
    n_panels = d + 1 + (kl_landscape is not None)
    columns = min(n_panels, 4)
    rows = -(-n_panels // columns)
    fig = Figure(figsize=(3.6 * columns, 3.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for extra in axes[n_panels:]:
        fig.delaxes(extra)
    step = max(1, len(latent) // 5000)
    for i in range(d):
        axes[i].plot(features[::step, i], latent[::step], ".", ms=1.5, alpha=0.5)
        axes[i].set_xlabel(unit_label(feature_names[i], units[i] if units[i] else "unit not given"))
        axes[i].set_ylabel(unit_label("latent, encoder mean", "1"))
    ax = axes[d]
    bins = np.linspace(0, 1, 51)
    ax.hist(robust_unit_scale(latent, weights), bins=bins, weights=weights, density=True,
            alpha=0.5, label="latent")
    ax.hist(robust_unit_scale(chi, weights), bins=bins, weights=weights, density=True,
            alpha=0.5, label=r"$\chi$")
    ax.set_xlabel(unit_label("rescaled to [0, 1] by weighted quantiles", "1"))
    ax.set_ylabel(unit_label("reweighted probability density", "1"))
    ax.set_title("KL match (reweighted)")
    ax.legend(fontsize=8)
    if kl_landscape is not None:
        ax = axes[d + 1]
        if directions.shape[1] == 2:
            angle = np.degrees(np.arctan2(directions[:, 1], directions[:, 0]))
            order = np.argsort(angle)
            ax.plot(angle[order], kl_landscape[order])
            ax.set_xlabel(unit_label("direction angle from the first feature", "deg"))
        else:
            ax.plot(np.sort(kl_landscape))
            ax.set_xlabel("scanned directions, sorted by KL (index)")
        ax.set_ylabel(unit_label(r"KL(latent $\|$ $\chi$)", "nats"))
        ax.set_title("KL landscape")
    return _finish(fig, path)


def chi_time_series(
    path: str | Path | None = None,
    *,
    rounds,
    coefficients,
    cores: Sequence[tuple[float, float]] = (),
    chi_unit: str | None = None,
    barrier: float | None = None,
) -> Figure:
    """chi(t) along the final RC: one line per walker of every round, with the states' cores.

    Lines are coloured by round; the metastable states' cores are shaded. The time axis is
    the campaign's MD time: each round starts where the longest walker of the previous one
    ended (a walker's times are taken from its own first frame, whatever clock it kept).
    """
    fig = Figure(figsize=(10, 3.5), layout="tight")
    ax = fig.subplots()
    for i, (lo, hi) in enumerate(cores):
        ax.axhspan(lo, hi, color="tab:green", alpha=0.12, lw=0,
                   label="state cores" if i == 0 else None)
    if barrier is not None:
        ax.axhline(barrier, color="tab:purple", ls="--", lw=1,
                   label="dividing surface (highest barrier)")
    colours = _colours(len(rounds))
    start = 0.0
    for k, r in enumerate(rounds):
        chi = r.features @ coefficients
        segments = walker_segments(len(chi), getattr(r, "walker", None))
        longest = 0.0
        for w, segment in enumerate(segments):
            t = np.asarray(r.time_ps, dtype=float)[segment]
            y = chi[segment]
            step = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
            elapsed = t - t[0] + step  # time since the walker's round began
            longest = max(longest, float(elapsed[-1]) if len(t) else 0.0)
            # frames the round dropped (an exploring round's settling) leave a gap, not a line
            gaps = np.flatnonzero(np.diff(t) > 1.5 * step) + 1 if step > 0 else []
            ax.plot(
                start + np.insert(elapsed, gaps, np.nan),
                np.insert(y, gaps, np.nan),
                lw=0.5,
                color=colours[k],
                label=(
                    f"round {r.index}"
                    + (f" ({len(segments)} walkers)" if len(segments) > 1 else "")
                )
                if w == 0
                else None,
            )
        start += longest
    ax.set_xlabel(unit_label("MD time, rounds one after another (walkers overlaid)", "ps"))
    ax.set_ylabel(unit_label(r"$\chi$ (final RC)", chi_unit))
    ax.legend(fontsize=7, ncol=min(6, len(rounds) + 1))
    return _finish(fig, path)


def free_energy_surface(
    path: str | Path | None = None, *, x, y, f_kT, xlabel: str, ylabel: str,
    angles: bool = False, title: str = "free-energy surface (all rounds, MBAR); blank: no frames",
) -> Figure:
    """2-D free-energy surface (kT) over two order parameters; bins without frames are blank."""
    fig = Figure(figsize=(5.5, 4.5), layout="tight")
    ax = fig.subplots()
    shown = np.where(np.isfinite(f_kT), np.minimum(f_kT, 12), np.nan)
    mesh = ax.pcolormesh(x, y, shown, shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label=unit_label("F, capped at 12 kT", "kT"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if angles:
        for set_lim, set_ticks in ((ax.set_xlim, ax.set_xticks), (ax.set_ylim, ax.set_yticks)):
            set_lim(-180, 180)
            set_ticks(np.arange(-180, 181, 60))
        ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    return _finish(fig, path)
