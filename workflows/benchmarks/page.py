"""The benchmarks page: ``docs/benchmarks.md`` and its figures, written from result records.

::

    python -m workflows.benchmarks.page                 # docs/benchmarks.md and the figures
    python -m workflows.benchmarks.page --check         # exit 1 if the page is not up to date
    python -m workflows.benchmarks.page record RUNS_CSV --benchmark sampling_efficiency \\
        --name NAME --command "python -m workflows.benchmarks.sampling_efficiency ..."

Results live in ``docs/benchmarks/results/<name>/``: a harness record ``<benchmark>.json``
(``workflows.benchmarks.harness``) and the CSV files it names. A benchmark run writes both into
its output folder; copying that folder's record and CSV files there and running this module
puts the result on the page. The page shows, per result, the command, the date, the machine,
the versions, the notes, one table per target (or the summary rows) and, for the sampling
benchmarks, two figures drawn from the CSV files: the MD steps each method needs to reach the
target, and the error against MD steps.

``record`` turns the ``*_runs.csv`` of an earlier sampling run (``sampling_efficiency`` or
``alanine_dipeptide``, finished or stopped: that file grows run by run) into such a result:
the summaries are computed from it again by the benchmark's own code, the date is the file's
modification time, the machine is the one this command runs on (so run it where the benchmark
ran), and the versions are ``unknown`` unless given with ``--version NAME=VALUE``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from . import harness

DOCS = harness.ROOT / "docs"
RESULTS = DOCS / "benchmarks" / "results"
PAGE = DOCS / "benchmarks.md"
FIGURES = DOCS / "benchmarks"

#: every benchmark of the package: (module, what it measures, an example command's arguments)
CATALOGUE = (
    ("sampling_efficiency", "RAVE against plain MD, metadynamics, OPES and the expanded "
     "ensemble on model potentials with exact free energies: MD steps to an accurate F(chi)",
     "--quick"),
    ("alanine_dipeptide", "the same methods on alanine dipeptide in vacuum, F(phi) against a "
     "100 ns OPES reference", "--methods rave_opes opes_ideal opes_naive --seeds 1 2 3"),
    ("alanine_reference", "the reference F(phi) of alanine dipeptide (OPES on phi and psi)",
     "--ns 100"),
    ("training", "wall time of the learning step, idle, on one core and beside a busy process",
     ""),
    ("mbar_solver", "rave's MBAR solver against pymbar: wall time and agreement",
     "5x10000 5x100000 32x100000 200x10000 200x100000"),
    ("bias_overhead", "MD steps/s with and without the RAVE bias", "--repeats 3"),
    ("walker_scaling", "walker throughput serial and on 1 or 2 local Dask workers",
     "--steps 200000 --repeats 2"),
    ("unbinding", "ligand unbinding events per ns, biased rounds against unbiased MD",
     "workflows/ligand_cavity_hydrophilic.toml --workdir runs/unbinding_hydrophilic"),
)
#: the sampling benchmarks (their records have steps-to-target rows)
SAMPLING = ("sampling_efficiency", "alanine_dipeptide")
#: method order and labels of the sampling tables and figures
METHOD_LABELS = {
    "plain_md": "plain MD",
    "expanded": "expanded ensemble alone",
    "metad_ideal": "metaD, ideal CV",
    "metad_ideal_bias": "metaD, ideal CV (its bias)",
    "metad_naive": "metaD, naive CV",
    "opes_ideal": "OPES, ideal CV",
    "opes_ideal_bias": "OPES, ideal CV (its estimate)",
    "opes_naive": "OPES, naive CV",
    "rave": "RAVE (paper)",
    "rave_opes": "RAVE, OPES bias",
    "rave_barrier": "RAVE, barrier rule",
    "rave_opes_barrier": "RAVE, OPES bias, barrier rule",
    "rave_explore": "RAVE + explore",
    "rave_explore_barrier": "RAVE + explore + barrier",
}


# ============================================================================================
# formatting
# ============================================================================================
def _steps(steps: float) -> str:
    """400k, 1.6M, never."""
    if not math.isfinite(steps):
        return "never"
    if steps >= 1e6:
        return f"{steps / 1e6:.3g}M"
    if steps >= 1e3:
        return f"{steps / 1e3:.3g}k"
    return f"{steps:g}"


def _cell(value) -> str:
    """A table cell: numbers to 4 significant digits, ``|`` escaped."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|") if value not in (None, "") else "-"


def pipe_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown pipe table.

    Parameters
    ----------
    header : sequence of str
        The column titles.
    rows : sequence of sequence of str
        The cells, one sequence per row, as long as ``header``.

    Returns
    -------
    list of str
        The table's lines.
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _date(iso: str) -> str:
    """``2026-12-07T21:41:42+00:00`` as ``2026-12-07 21:41 (UTC+00:00)``."""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    offset = when.strftime("%z")
    return when.strftime("%Y-%m-%d %H:%M") + (f" (UTC{offset[:3]}:{offset[3:]})" if offset
                                              else "")


def _machine(machine: dict) -> str:
    return (f"{machine.get('cpu', harness.UNKNOWN)}, {machine.get('cores', harness.UNKNOWN)} "
            f"cores, {machine.get('memory_gib', harness.UNKNOWN)} GiB memory, "
            f"{machine.get('os', harness.UNKNOWN)}")


def _versions(versions: dict) -> str:
    return ", ".join(f"{name} {value}" for name, value in versions.items())


# ============================================================================================
# results
# ============================================================================================
def load_results(folder: Path = RESULTS) -> list[tuple[str, dict]]:
    """Every result record under ``folder``, in the catalogue's order, then by date.

    Parameters
    ----------
    folder : Path
        Holds one subfolder per result with its ``<benchmark>.json``.

    Returns
    -------
    list of (str, dict)
        The result's name (its subfolder) and its record, with ``"_folder"`` set to the
        subfolder's path.
    """
    order = [name for name, _, _ in CATALOGUE]
    found = []
    for path in sorted(Path(folder).glob("*/*.json")):
        record = harness.load_record(path)
        record["_folder"] = path.parent
        found.append((path.parent.name, record))
    rank = {name: i for i, name in enumerate(order)}
    return sorted(found, key=lambda item: (rank.get(item[1]["benchmark"], len(order)),
                                           item[1]["date"], item[0]))


def _methods(rows: Sequence[dict]) -> list[str]:
    present = {r["method"] for r in rows}
    return [m for m in METHOD_LABELS if m in present] + sorted(present - set(METHOD_LABELS))


def _sampling_sections(name: str, record: dict, figures_dir: Path, page_dir: Path) -> list[str]:
    """Tables (steps to each target, the state at the end) and figure links of a sampling
    result."""
    folder = record["_folder"]
    to_target = record["summary"]
    methods = _methods(to_target)
    systems = list(dict.fromkeys(r["system"] for r in to_target))
    seeds = max(r["seeds"] for r in to_target)
    lines = []
    error = "RMSE of F(phi)" if record["benchmark"] == "alanine_dipeptide" else "RMSE of F(chi)"
    for target in sorted({r["target_kT"] for r in to_target}, reverse=True):
        mine = {(r["system"], r["method"]): r for r in to_target if r["target_kT"] == target}
        fewer = (f"; a count in brackets: fewer seeds than {seeds}"
                 if any(r["seeds"] < seeds for r in mine.values()) else "")
        lines += ["", f"MD steps to {error} <= {target:g} kT and staying there, median "
                      f"[min-max] over seeds (\"never\": not within the run{fewer}):", ""]
        rows = []
        for system in systems:
            cells = [system]
            for method in methods:
                r = mine.get((system, method))
                if r is None:
                    cells.append("not run")
                    continue
                med = r["steps_to_target_median"]
                text = (f"{_steps(med)} [{_steps(r['steps_to_target_min'])}-"
                        f"{_steps(r['steps_to_target_max'])}]" if math.isfinite(med) else
                        f"never (in {_steps(r['longest_run_steps'])})")
                if r["seeds"] < seeds:
                    text += f" ({r['seeds']} seed{'s' if r['seeds'] > 1 else ''})"
                cells.append(text)
            rows.append(cells)
        lines += pipe_table(["system", *(METHOD_LABELS.get(m, m) for m in methods)], rows)
    table_file = record["files"].get("table")
    if table_file:
        table = harness.read_csv(folder / table_file)
        lines += ["", f"At each method's last checkpoint: {error} (kT) and transitions between "
                      f"metastable states, median [min-max] over seeds:", ""]
        rows = []
        for system in systems:
            cells = [system]
            for method in methods:
                mine = [r for r in table if r["system"] == system and r["method"] == method]
                if not mine:
                    cells.append("not run")
                    continue
                r = max(mine, key=lambda r: r["steps"])
                rmse = (f"{r['rmse_median_kT']:.2f} [{r['rmse_min_kT']:.2f}-"
                        f"{r['rmse_max_kT']:.2f}]" if math.isfinite(r["rmse_median_kT"]) else
                        f"inf ({100 * r['coverage_median']:.0f} % of bins)")
                cells.append(f"{rmse} at {_steps(r['steps'])}; {r['transitions_median']:g} "
                             f"[{r['transitions_min']:g}-{r['transitions_max']:g}]")
            rows.append(cells)
        lines += pipe_table(["system", *(METHOD_LABELS.get(m, m) for m in methods)], rows)
    for figure in _figure_names(name, record):
        rel = os.path.relpath(figures_dir / figure, page_dir)
        lines += ["", f"![{figure.removesuffix('.png').replace('_', ' ')}]({rel})"]
    return lines


def _figure_names(name: str, record: dict) -> list[str]:
    """The figures a result gets: steps to the first target (two methods or more) and the
    error against MD steps (a per-checkpoint table)."""
    if record["benchmark"] not in SAMPLING:
        return []
    names = []
    if len({r["method"] for r in record["summary"]}) > 1:
        names.append(f"{name}_steps_to_target.png")
    if record["files"].get("table"):
        names.append(f"{name}_rmse.png")
    return names


def draw_figures(results: Sequence[tuple[str, dict]], figures_dir: Path = FIGURES) -> list[Path]:
    """Draw every result's figures from its record and CSV files.

    Parameters
    ----------
    results : sequence of (str, dict)
        Of :func:`load_results`.
    figures_dir : Path
        Where the PNG files go.

    Returns
    -------
    list of Path
        The files written.
    """
    from . import figures

    written = []
    for name, record in results:
        wanted = _figure_names(name, record)
        if not wanted:
            continue
        error = "RMSE of F(phi)" if record["benchmark"] == "alanine_dipeptide" else \
            "RMSE of F(chi)"
        target = max(r["target_kT"] for r in record["summary"])
        labels = {m: METHOD_LABELS.get(m, m) for m in _methods(record["summary"])}
        if f"{name}_steps_to_target.png" in wanted:
            path = figures_dir / f"{name}_steps_to_target.png"
            rows = [r for r in record["summary"] if r["target_kT"] == target]
            figures.steps_to_target(path, rows, target, methods=list(labels), labels=labels,
                                    error=error)
            written.append(path)
        if f"{name}_rmse.png" in wanted:
            path = figures_dir / f"{name}_rmse.png"
            table = harness.read_csv(record["_folder"] / record["files"]["table"])
            for row in table:
                row["method"] = labels.get(row["method"], row["method"])
            ylabel = (r"RMSE of $F(\phi)$ / kT" if record["benchmark"] == "alanine_dipeptide"
                      else r"RMSE of $F(\chi)$ / kT")
            figures.rmse_vs_steps(path, table, target, methods=list(labels.values()),
                                  ylabel=ylabel, dashed=[labels[m] for m in labels
                                                         if m.endswith("_bias")])
            written.append(path)
    return written


def _generic_sections(record: dict) -> list[str]:
    rows = record["summary"]
    if not rows:
        return ["", "(no summary rows)"]
    header = list(rows[0])
    return ["", *pipe_table(header, [[_cell(r.get(k)) for k in header] for r in rows])]


def render(results: Sequence[tuple[str, dict]], page: Path = PAGE,
           figures_dir: Path = FIGURES) -> str:
    """The page's Markdown.

    Parameters
    ----------
    results : sequence of (str, dict)
        Of :func:`load_results`.
    page : Path
        Where the page goes (figure links are relative to its folder).
    figures_dir : Path
        Where the figures are.

    Returns
    -------
    str
        MyST Markdown, pipe tables.
    """
    lines = [
        "# Benchmarks",
        "",
        "<!-- Written by `python -m workflows.benchmarks.page` from docs/benchmarks/results/; "
        "edit those, not this file. -->",
        "",
        "Every benchmark is a module of `workflows.benchmarks`, run from the repository root "
        "as `python -m workflows.benchmarks.<name> [options]` (`--help` lists the options). "
        "Each run writes a fresh folder under `runs/benchmarks/` with its CSV files and a "
        "result record `<name>.json`: the exact command, the date, the machine (CPU, cores, "
        "memory, OS), the versions (Python, rave and its git revision, numpy, torch, OpenMM, "
        "...), every setting, and the summary rows (medians and spreads over seeds). This page "
        "is generated from the records in `docs/benchmarks/results/` by "
        "`python -m workflows.benchmarks.page`; a test checks that it is up to date.",
        "",
        "To compare two revisions, run the same command at each (e.g. in a `git worktree` of "
        "the other revision) and compare the records: "
        "`python -m workflows.benchmarks.harness compare OLD.json NEW.json`.",
        "",
        "| benchmark | what it measures | example |",
        "|---|---|---|",
    ]
    for module, what, example in CATALOGUE:
        command = f"python -m workflows.benchmarks.{module} {example}".strip()
        lines.append(f"| `{module}` | {what} | `{command}` |")
    lines += ["", "## Results"]
    if not results:
        lines += ["", "No result is committed yet."]
    page_dir = Path(page).parent
    for name, record in results:
        lines += ["", f"### {record['title']} (`{name}`)", "",
                  f"Result `{name}` of `{record['benchmark']}`.",
                  "", "```bash", record["command"], "```", "",
                  f"- Measured: {_date(record['date'])}",
                  f"- Machine: {_machine(record['machine'])}",
                  f"- Versions: {_versions(record['versions'])}"]
        if record.get("seeds"):
            lines.append(f"- Seeds: {', '.join(str(s) for s in record['seeds'])}")
        if record.get("wall_s") is not None:
            lines.append(f"- Wall time of the run: {record['wall_s']:.0f} s")
        if record.get("notes"):
            lines += ["", record["notes"]]
        if record["benchmark"] in SAMPLING:
            lines += _sampling_sections(name, record, figures_dir, page_dir)
        else:
            lines += _generic_sections(record)
    missing = [m for m, _, _ in CATALOGUE if m not in {r["benchmark"] for _, r in results}]
    if missing:
        lines += ["", "## Benchmarks without a committed result", "",
                  "No result record of these is committed; run them as above to make one: "
                  + ", ".join(f"`{m}`" for m in missing) + "."]
    return "\n".join(lines) + "\n"


# ============================================================================================
# recording an earlier sampling run
# ============================================================================================
def record_sampling_runs(runs_csv: Path, benchmark: str, name: str, command: str,
                         results: Path = RESULTS, notes: str = "", versions: dict | None = None,
                         settings: dict | None = None) -> Path:
    """A result from the ``*_runs.csv`` of an earlier ``sampling_efficiency`` or
    ``alanine_dipeptide`` run.

    Parameters
    ----------
    runs_csv : Path
        Every run and checkpoint of that run (system, seed, method, steps, rmse_kT, coverage,
        transitions, elapsed_s).
    benchmark : str
        ``sampling_efficiency`` or ``alanine_dipeptide``.
    name : str
        The result's folder under ``results``.
    command : str
        The command that ran it.
    results : Path
        The results folder.
    notes : str
        Remarks for the reader.
    versions : dict, optional
        What is known of the versions; every other entry is ``"unknown"``.
    settings : dict, optional
        What is known of the settings.

    Returns
    -------
    Path
        The record written.

    Raises
    ------
    ValueError
        If ``benchmark`` is not a sampling benchmark.
    """
    if benchmark not in SAMPLING:
        raise ValueError(f"benchmark must be one of {SAMPLING}. You supplied {benchmark!r}")
    from . import sampling_efficiency as se

    rows = harness.read_csv(runs_csv)
    targets = (se.TARGET_RMSE_KT, se.SECOND_TARGET_RMSE_KT)
    table, to_target = se.summaries(rows, targets)
    folder = Path(results) / name
    stem = benchmark
    files = {"table": f"{stem}.csv", "to_target": f"{stem}_to_target.csv",
             "runs": f"{stem}_runs.csv"}
    harness.write_csv(folder / files["table"], table)
    harness.write_csv(folder / files["to_target"], to_target)
    harness.write_csv(folder / files["runs"], rows)
    known = {"python": harness.UNKNOWN, "rave_git": harness.UNKNOWN,
             **{p: harness.UNKNOWN for p in harness.PACKAGES}, **(versions or {})}
    date = datetime.fromtimestamp(Path(runs_csv).stat().st_mtime).astimezone()
    title = {"sampling_efficiency": "Sampling efficiency on model potentials: MD steps to an "
             "accurate F(chi)", "alanine_dipeptide": "Alanine dipeptide in vacuum: MD steps to "
             "an accurate F(phi), the CV hidden"}[benchmark]
    record = harness.make_record(
        benchmark, title, command, to_target, ("system", "method", "target_kT"),
        settings=settings, seeds=sorted({int(r["seed"]) for r in rows}), files=files,
        notes=notes, date=date.isoformat(timespec="seconds"), versions=known)
    path = folder / f"{benchmark}.json"
    harness.write_record(path, record)
    return path


# ============================================================================================
# command line
# ============================================================================================
def main(argv: Sequence[str] | None = None) -> int:
    """Write the page and its figures, check it, or record an earlier sampling run.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0, or 1 for ``--check`` of a page that is not up to date.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["record"]:
        parser = argparse.ArgumentParser(prog="python -m workflows.benchmarks.page record",
                                         description="record an earlier sampling run")
        parser.add_argument("runs_csv", type=Path)
        parser.add_argument("--benchmark", required=True, choices=SAMPLING)
        parser.add_argument("--name", required=True, help="the result's folder name")
        parser.add_argument("--command", required=True, help="the command that ran it")
        parser.add_argument("--notes", default="")
        parser.add_argument("--version", action="append", default=[], metavar="NAME=VALUE")
        parser.add_argument("--results", type=Path, default=RESULTS)
        args = parser.parse_args(argv[1:])
        bad = [v for v in args.version if "=" not in v]
        if bad:
            parser.error(f"--version takes NAME=VALUE. You supplied {bad}")
        versions = dict(v.split("=", 1) for v in args.version)
        print(record_sampling_runs(args.runs_csv, args.benchmark, args.name, args.command,
                                   args.results, args.notes, versions))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--page", type=Path, default=PAGE)
    parser.add_argument("--figures", type=Path, default=FIGURES)
    parser.add_argument("--check", action="store_true",
                        help="only compare the page with what the results give")
    parser.add_argument("--no-figures", action="store_true", help="write the page only")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    text = render(results, args.page, args.figures)
    if args.check:
        current = args.page.read_text() if args.page.exists() else ""
        if current != text:
            print(f"{args.page} is not what the results in {args.results} give; run "
                  f"'python -m workflows.benchmarks.page'")
            return 1
        return 0
    args.page.parent.mkdir(parents=True, exist_ok=True)
    args.page.write_text(text)
    written = [] if args.no_figures else draw_figures(results, args.figures)
    print(f"wrote {args.page}" + "".join(f", {p}" for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
