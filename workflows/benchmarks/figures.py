"""The benchmarks' figures (matplotlib only here): error against MD steps, steps to a target.

Both take the summary rows the sampling benchmarks write (``sampling_efficiency.summarise``):
the per-checkpoint table (``rmse_median_kT``, ``rmse_min_kT``, ``rmse_max_kT`` per system,
method and steps) and the steps-to-target rows (``steps_to_target_median/min/max``,
``longest_run_steps`` per system and method).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _steps_axis(ax) -> None:
    """Log x axis of MD steps labelled 20k, 50k, 100k, ... (no crowded minor labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _steps(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def rmse_vs_steps(path: Path, table: Sequence[dict], target_kT: float,
                  methods: Sequence[str] | None = None,
                  ylabel: str = r"RMSE of $F(\chi)$ / kT",
                  dashed: Sequence[str] = ()) -> None:
    """RMSE (median, min-max band) against MD steps per method, one panel per system.

    Parameters
    ----------
    path : Path
        The PNG; its folder is created.
    table : sequence of dict
        Per-checkpoint summary rows.
    target_kT : float
        Drawn as a dashed line, kT.
    methods : sequence of str, optional
        The methods in legend order (default: their order in ``table``).
    ylabel : str
        The y-axis label.
    dashed : sequence of str
        Methods drawn dashed (besides those ending in ``_bias``: estimates read from a bias).
    """
    plt = _pyplot()
    systems = list(dict.fromkeys(r["system"] for r in table))
    methods = list(methods or dict.fromkeys(r["method"] for r in table))
    fig, axes = plt.subplots(1, len(systems), figsize=(6 * len(systems), 4.5), squeeze=False)
    for ax, system in zip(axes[0], systems, strict=True):
        finite = False
        for method in methods:
            rows = sorted((r for r in table if r["system"] == system and r["method"] == method),
                          key=lambda r: r["steps"])
            if not rows:
                continue
            steps = np.array([r["steps"] for r in rows], dtype=float)
            med = np.array([r["rmse_median_kT"] for r in rows], dtype=float)
            lo = np.array([r["rmse_min_kT"] for r in rows], dtype=float)
            hi = np.array([r["rmse_max_kT"] for r in rows], dtype=float)
            ok = np.isfinite(med)
            finite |= bool(ok.any())
            style = "s--" if method.endswith("_bias") or method in dashed else "o-"
            (line,) = ax.plot(steps[ok], med[ok], style, ms=3, label=method)
            band = np.isfinite(lo) & np.isfinite(hi)
            ax.fill_between(steps[band], lo[band], hi[band], color=line.get_color(), alpha=0.2)
        ax.axhline(target_kT, color="k", ls="--", lw=1)
        if finite:  # log axes need data: a panel with no finite RMSE stays linear
            _steps_axis(ax)
            ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "no finite RMSE yet", transform=ax.transAxes, ha="center")
        ax.set_xlabel("MD steps")
        ax.set_ylabel(ylabel)
        ax.set_title(system.replace("_", " "))
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def steps_to_target(path: Path, to_target: Sequence[dict], target_kT: float,
                    methods: Sequence[str] | None = None, labels: dict | None = None,
                    error: str = "RMSE") -> None:
    """MD steps each method needs to reach ``target_kT`` and stay, median and min-max over
    seeds, one panel per system; a method that never got there is drawn at its run's length
    with an arrow ("not reached").

    Parameters
    ----------
    path : Path
        The PNG; its folder is created.
    to_target : sequence of dict
        Steps-to-target rows of one target.
    target_kT : float
        The target, kT (in the title).
    methods : sequence of str, optional
        Methods top to bottom (default: their order in ``to_target``).
    labels : dict, optional
        Method -> label on the y axis (default: the method's name).
    error : str
        What the target bounds, for the title.
    """
    plt = _pyplot()
    systems = list(dict.fromkeys(r["system"] for r in to_target))
    methods = list(methods or dict.fromkeys(r["method"] for r in to_target))
    labels = labels or {}
    fig, axes = plt.subplots(1, len(systems), figsize=(5.2 * len(systems), 0.5 + 0.42 * len(
        methods) + 0.9), squeeze=False, sharey=True)
    longest = max(r["longest_run_steps"] for r in to_target)
    seeds = max(r["seeds"] for r in to_target)
    low = 10 ** math.floor(math.log10(min(
        [r["steps_to_target_min"] for r in to_target
         if math.isfinite(r["steps_to_target_min"])] or [longest / 100])))
    for ax, system in zip(axes[0], systems, strict=True):
        rows = {r["method"]: r for r in to_target if r["system"] == system}
        for y, method in enumerate(methods):
            row = rows.get(method)
            if row is None:
                ax.text((low * longest) ** 0.5, y, "not run", va="center", ha="center",
                        fontsize=8, color="0.5")
                continue
            if row["seeds"] < seeds:
                ax.text(longest * 2.4, y - 0.3, f"{row['seeds']} seed"
                        f"{'s' if row['seeds'] > 1 else ''}", va="center", ha="right",
                        fontsize=7, color="0.4")
            med, lo, hi = (row["steps_to_target_median"], row["steps_to_target_min"],
                           row["steps_to_target_max"])
            end = row["longest_run_steps"]
            if math.isfinite(med):
                right = hi if math.isfinite(hi) else end
                ax.plot([lo, right], [y, y], color="C0", lw=2)
                ax.plot([med], [y], "o", color="C0", ms=6)
                if not math.isfinite(hi):  # some seed never got there
                    ax.annotate("", xy=(end * 1.6, y), xytext=(end, y),
                                arrowprops={"arrowstyle": "->", "color": "C0"})
            else:
                ax.annotate("", xy=(end * 1.6, y), xytext=(end, y),
                            arrowprops={"arrowstyle": "->", "color": "C3"})
                ax.text(end / 1.15, y, f"not reached in {_steps(end)}", va="center",
                        ha="right", fontsize=8, color="C3")
        _steps_axis(ax)
        ax.set_xlim(low, longest * 2.5)
        ax.set_yticks(range(len(methods)), [labels.get(m, m) for m in methods])
        ax.set_ylim(len(methods) - 0.5, -0.5)
        ax.grid(axis="x", which="major", alpha=0.3)
        ax.set_xlabel("MD steps (log scale)")
        ax.set_title(system.replace("_", " "), fontsize=10)
    fig.suptitle(f"MD steps to {error} <= {target_kT:g} kT and staying there: median (dot), "
                 f"min-max over {seeds} seeds (bar); arrow: not reached by some seed",
                 fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _steps(steps: float) -> str:
    """``steps`` as 400k, 1.6M."""
    if steps >= 1e6:
        return f"{steps / 1e6:.3g}M"
    if steps >= 1e3:
        return f"{steps / 1e3:.3g}k"
    return f"{steps:g}"
