"""The campaign report: ``report.md`` and ``report.html`` with their figures and captions
(:func:`write_report`, ``rave report``)."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..campaign import store
from ..stats import BLOCKS_PER_INEFFICIENCY
from .basins import MIN_BASIN_ENTRIES
from .result import CampaignResult, _unit_text, config_change_lines
from .states import MIN_BIN_FRAMES, MIN_STATE_FRAMES

__all__ = ["write_report"]

_TABLE_HEADER = [
    "round",
    "frames",
    "ESS",
    "KL",
    "RC change (deg)",
    "F change (kT)",
    "walkers",
    "crossings along the RC",
]


def _table_header(rows: list[dict]) -> list[str]:
    names = list(rows[0].get("crossings", {})) if rows else []
    return _TABLE_HEADER + [f"crossings along {name}" for name in names]


def _table_rows(rows: list[dict]) -> list[list[str]]:
    out = []
    for r in rows:
        angle = "" if r["angle_change_deg"] is None else f"{r['angle_change_deg']:.2f}"
        change = "" if r["free_energy_change_kT"] is None else f"{r['free_energy_change_kT']:.3f}"
        out.append(
            [
                str(r["round"]),
                str(r["frames"]),
                f"{r['effective_sample_size']:.1f}",
                f"{r['kl_divergence']:.4f}",
                angle,
                change,
                str(r["walkers"]),
                str(r["transitions"]),
                *[str(v) for v in r.get("crossings", {}).values()],
            ]
        )
    return out


def _schedule_items(summary: dict) -> list[tuple[str, str]]:
    """The report's line on the MD schedule (summaries before the schedule have none)."""
    if "steps_used" not in summary:
        return []
    steps = ", ".join(str(r.get("steps", "?")) for r in summary["rounds"])
    budget = summary.get("max_total_steps")
    text = (f"{summary['steps_used']} steps over all rounds and walkers"
            + ("" if budget is None else
               f" of a budget of {budget} ({summary.get('steps_left')} left)")
            + f"; steps per walker by round: {steps}")
    if summary.get("stop_reason"):
        text += f"; stopped: {summary['stop_reason']}"
    return [("MD schedule", text)]


@dataclass(frozen=True)
class _ReportContent:
    """What the Markdown and HTML reports both say."""

    title: str
    header: list[str]
    items: list[tuple[str, str]]
    verdict: str
    table: list[list[str]]
    notes: list[str]
    figures: list[tuple[str, str]]  # file name, caption
    extra: list[tuple[str, str]]


def _markdown(report: _ReportContent) -> str:
    title, items, verdict, table, notes, figures, extra = (
        report.title, report.items, report.verdict, report.table, report.notes, report.figures,
        report.extra)
    lines = [f"# {title}", "", f"- verdict: **{verdict}**"]
    lines += [f"- {label}: {value}" for label, value in items]
    lines += ["", "| " + " | ".join(report.header) + " |", "|" + "---|" * len(report.header)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    lines += [""] + [line for note in notes for line in (note, "")]
    for name, caption in figures:
        lines += [f"![{name}]({name})", "", f"*{caption}*", ""]
    for label, target in extra:
        lines += [f"{label}: [{target}]({target})", ""]
    return "\n".join(lines)


def _html(report: _ReportContent) -> str:
    title, items, verdict, table, notes, figures, extra = (
        report.title, report.items, report.verdict, report.table, report.notes, report.figures,
        report.extra)
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in report.header)
    body = "\n".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in table)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px;"
        "text-align:right}th{background:#eee}img{max-width:100%;display:block;margin:1em 0}"
        ".warn{color:#b00}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<ul>",
        f"<li>verdict: <strong>{e(verdict)}</strong></li>",
        *[f'<li{" class=warn" if label.startswith("warning") else ""}>{e(label)}: '
          f"{e(value)}</li>" for label, value in items],
        "</ul>",
        f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>",
        *[f"<p>{e(note)}</p>" for note in notes],
        *[
            f'<figure><img src="{e(name)}" alt="{e(name)}"><figcaption>{e(caption)}'
            "</figcaption></figure>"
            for name, caption in figures
        ],
        *[f'<p>{e(label)}: <a href="{e(target)}">{e(target)}</a></p>' for label, target in extra],
        "</body></html>",
        "",
    ]
    return "\n".join(parts)


def _reference_items(result: CampaignResult) -> list[tuple[str, str]]:
    """Report lines comparing with what a model potential knows exactly: F along the final RC
    and the slow direction."""
    items = []
    aligned = result.exact_comparison()
    if aligned is not None:
        items.append((
            "F error against the exact profile",
            f"{aligned.describe()} (exact F by quadrature over the range the model's "
            f"Boltzmann distribution covers along the RC, shifted by a constant to the same "
            f"mean over the sampled bins of that region; unsampled bins are counted, not "
            f"dropped)",
        ))
    angles = result.slow_direction_angles_deg()
    if angles is not None:
        items.append((
            "RC angle to the known slow direction",
            f"{angles[-1]:.1f} deg after the last round (by round: "
            + ", ".join(f"{a:.1f}" for a in angles) + " deg)",
        ))
    return items


def write_report(workdir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.md``, ``report.html`` and their PNG figures.

    Both documents hold the same content and link the figures by relative path.

    Parameters
    ----------
    workdir : str or path
        The campaign's work directory.
    out : str or path, optional
        The report directory, created if missing (default: ``WORKDIR/report/``).

    Returns
    -------
    Path
        The path of ``report.md``.

    Raises
    ------
    rave.analysis.CampaignFileError
        A file of the campaign is missing or damaged (see
        :meth:`rave.analysis.CampaignResult.load`).
    ValueError
        ``out`` is, or lies inside, a campaign (another one, or this one outside its
        ``report`` folder).
    """
    from . import plots

    result = CampaignResult.load(workdir)
    own = result.workdir / "report"
    out = Path(out) if out is not None else own
    holding = store.campaign_holding(out)
    inside_own = out.resolve() == own.resolve() or own.resolve() in out.resolve().parents
    if holding is not None and not inside_own:
        raise ValueError(
            f"{out} {'is' if holding == out.resolve() else 'lies inside'} the rave campaign "
            f"{holding}; a report goes into its own campaign's report folder ({own}) or a "
            f"folder outside every campaign. Nothing was written")
    out.mkdir(parents=True, exist_ok=True)
    c = result.coefficients(-1)
    figures = result.report_figures()
    names = []
    for name, item in figures.items():
        plots.save(item.figure, out / f"{name}.png")
        names.append((f"{name}.png", item.caption))

    est = result.profile(c)
    along_rc = result.barrier_crossings(c)
    states = along_rc.states
    rows = result.diagnostics()
    along = {p.name: (p, result.barrier_crossings(p)) for p in result.order_parameters()}
    last = rows[-1]
    verdict = (
        "converged"
        if result.summary.get("converged")
        else f"not converged: last RC change {last['angle_change_deg'] or 0:.2f} deg, F change "
        f"{last['free_energy_change_kT'] or 0:.3f} kT (see [convergence] in the config)"
    )
    finite = np.isfinite(est.sigma) & (est.free_energy < 5)
    items = [
        ("system", f"{result.summary.get('system', '?')} at {result.temperature_K} K"),
        (
            "final RC",
            "chi = "
            + " ".join(
                f"{ci:+.4f} {name}" for ci, name in zip(c, result.feature_names, strict=True)
            )
            + f" ({_unit_text(result.chi_unit)})",
        ),
        *_reference_items(result),
        (
            "frames",
            f"{len(result.all_features())} in {len(result.rounds)} rounds; MBAR "
            f"effective sample size {result.reweight().effective_sample_size:.1f}",
        ),
        *_schedule_items(result.summary),
        (
            "F(chi) error bars",
            f"block bootstrap, {est.n_bootstrap} replicates, blocks of "
            f"{', '.join(str(int(b)) for b in est.block_lengths)} frames "
            "(per round), MBAR re-solved per replicate; median sigma "
            + (f"{np.median(est.sigma[finite]):.2f} kT where F < 5 kT" if finite.any() else "n/a"),
        ),
        (
            "metastable states along the RC",
            "; ".join(
                f"chi = {s.minimum:.3f} (F = {s.free_energy_kT:.2f} kT, depth "
                + (f"{s.depth_kT:.1f} kT" if np.isfinite(s.depth_kT)
                   else "not bounded by a sampled barrier")
                + f", core [{s.core[0]:.3f}, {s.core[1]:.3f}] with {s.frames} frames)"
                for s in states
            )
            or "none",
        ),
        ("basins and barrier crossings", along_rc.describe("the RC", result.chi_unit)),
        *[("basins and barrier crossings", found.describe(name, parameter.unit))
          for name, (parameter, found) in along.items()],
    ]
    few = [(name, found) for name, found in
           [("the RC", along_rc)] + [(n, f) for n, (_, f) in along.items()]
           if found.flagged_basins]
    if few:
        items.append((
            "warning",
            "few barrier crossings "
            + "; ".join(f"along {name} ({found.crossings}, basins entered "
                        f"{found.entries[0]} and {found.entries[1]} times)"
                        for name, found in few)
            + f": a basin entered fewer than {MIN_BASIN_ENTRIES} times has an F, relative to "
              f"the basin across the barrier, that rests on those few crossings; its error "
              f"bars (red in the figures) understate the error. Run longer rounds, or more "
              f"walkers, until each basin is entered at least {MIN_BASIN_ENTRIES} times"))
    single = [name for name, found in [("the RC", along_rc)]
              + [(n, f) for n, (_, f) in along.items()] if found.barrier is None]
    if single:
        items.append((
            "warning",
            f"one basin only along {', '.join(single)}: no barrier was crossed there; if the "
            f"system has another basin along it, the campaign has not reached it and F says "
            f"nothing about it"))
    # the bootstrap reports per MBAR state; the states of a round (one, or the blocks of an
    # adaptive round) share its resampling unit, so the first state of each round speaks for it
    first_state = np.cumsum([0] + [len(r.states()) for r in result.rounds[:-1]])
    g_of = est.statistical_inefficiency
    short = [
        (r.index, g_of[k], est.block_lengths[k])
        for r, k in zip(result.rounds, first_state, strict=True)
        if np.isfinite(g_of[k])
        and est.block_lengths[k] < np.ceil(BLOCKS_PER_INEFFICIENCY * g_of[k])
    ]
    if short:
        items.append(
            (
                "warning",
                "round(s) "
                + ", ".join(f"{index} (g = {g:.0f} frames, blocks of {b})"
                            for index, g, b in short)
                + ": too short for blocks of 5 g frames; the error bars are underestimated",
            )
        )
    notes = [
        "Crossings: along each coordinate (the final RC, and each order parameter; a sin/cos "
        "pair of one dihedral is read as its angle, atan2(sin, cos)), the metastable states of "
        "F are split into two basins at the highest barrier between neighbouring states, whose "
        "top is the dividing surface. A crossing is counted, per walker, when the walker "
        "enters a core of one basin with the last core it visited in the other (the frames "
        "between cores are a hysteresis band: noise at the barrier top, and flips between "
        "states on one side of it, count nothing). On an angle the full turn is cut at its "
        "least-populated bin, so crossings either way round count. States are basins of F "
        f"over bins with at least {MIN_BIN_FRAMES} frames, at least 2 kT below the lower "
        f"neighbouring barrier, with at least {MIN_STATE_FRAMES} frames in the core (where "
        f"F < F_min + 1 kT); bins without frames are never states. A basin entered fewer than "
        f"N = {MIN_BASIN_ENTRIES} times is flagged: its F relative to the other basin rests on "
        f"those few crossings (an error of about 1/sqrt(n) in the population ratio), which "
        f"the block bootstrap's error bars do not show."
        + (
            " Fewer than two states were found along the RC, so no crossing can be counted "
            "there."
            if len(states) < 2 else ""
        ),
    ]
    for line in config_change_lines(result.summary["rounds"]):
        items.append(("config changed", line))
    extra = []
    last_round = result.store.round_path(result.rounds[-1].index, result.store.FIGURE)
    if last_round.exists():
        extra.append(("Last round", os.path.relpath(last_round, out)))
    title = f"RAVE campaign report: {result.workdir}"
    content = _ReportContent(title, _table_header(rows), items, verdict, _table_rows(rows),
                             notes, names, extra)
    store.write_text(out / "report.html", _html(content))
    report = out / "report.md"
    store.write_text(report, _markdown(content))
    return report
