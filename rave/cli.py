"""Command line: ``rave run CONFIG.toml``, ``rave export WORKDIR``, ``rave analyse WORKDIR``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .analysis import CampaignFileError
from .config import ConfigError, load_config
from .export import ExportError
from .store import WorkdirError


def _run(args: argparse.Namespace) -> int:
    from .campaign import Campaign
    from .engine import MDError

    overrides = {}
    if args.rounds is not None:
        overrides["sampling.rounds"] = args.rounds
    config = load_config(args.config, overrides)
    workdir = Path(args.workdir) if args.workdir else Path("runs") / Path(args.config).stem
    try:
        summary = Campaign(config, workdir, scheduler=args.scheduler).run()
    except MDError as error:
        print(f"rave: MD failed: {error}. Frames of finished rounds and walkers are kept in "
              f"{workdir}; `rave run` with the same config and --workdir resumes",
              file=sys.stderr)
        return 1
    last = summary["rounds"][-1]
    print(f"\n{len(summary['rounds'])} rounds, converged: {summary['converged']}")
    print("final RC: chi = " + " + ".join(
        f"{c:+.4f}*{n}" for c, n in zip(last["coefficients"], summary["feature_names"],
                                        strict=True)))
    print(f"results in {workdir}/ (summary.json, free_energy.csv, free_energy.png, round_*/)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from . import export

    if not (args.plumed or args.torchscript or args.openmm):
        raise ValueError("rave export needs at least one of --plumed DIR, --torchscript FILE, "
                         "--openmm FILE")
    workdir = Path(args.workdir)
    if not workdir.is_dir():
        raise ValueError(f"work directory {workdir} does not exist")
    written = []
    if args.plumed:
        written += export.write_plumed(workdir, Path(args.plumed))
    if args.torchscript:
        written.append(export.write_torchscript(workdir, Path(args.torchscript)))
    if args.openmm:
        written.append(export.write_openmm(workdir, Path(args.openmm)))
    for path in written:
        print(f"wrote {path}")
    return 0


def _analyse(args: argparse.Namespace) -> int:
    from .analysis import write_report

    report = write_report(args.workdir, args.out)
    print(f"wrote {report}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from . import store
    from .analysis import _read_json

    workdir = Path(args.workdir)
    if not (workdir / "summary.json").exists() and store.holds_resumable_campaign(workdir):
        # started, no round complete yet
        config = store.load_json(workdir / "config.json")
        manifest = store.load_json(workdir / store.MANIFEST)
        summary = {"system": manifest.get("system"), "converged": False, "rounds": [],
                   "temperature_K": config["system"].get("temperature"),
                   "walkers": config.get("sampling", {}).get("walkers", 1),
                   "feature_names": []}
    else:
        summary = _read_json(workdir / "summary.json")
    names = summary["feature_names"]
    rounds = summary["rounds"]
    print(f"{args.workdir}: {summary.get('system', '?')} at {summary['temperature_K']} K, "
          f"{len(rounds)} round(s) done, {sum(r['frames'] for r in rounds)} frames, "
          f"converged: {summary['converged']}")
    print(f"{'round':>5} {'frames':>7} {'ESS':>9} {'KL':>8} {'dAngle':>7} {'dF/kT':>7}  RC")
    for r in rounds:
        angle = "" if r.get("angle_change_deg") is None else f"{r['angle_change_deg']:.2f}"
        change = ("" if r.get("free_energy_change_kT") is None
                  else f"{r['free_energy_change_kT']:.3f}")
        rc = " + ".join(f"{c:+.3f}*{n}" for c, n in zip(r["coefficients"], names, strict=True))
        print(f"{r['index']:>5} {r['frames']:>7} {r['effective_sample_size']:>9.1f} "
              f"{r['kl_divergence']:>8.4f} {angle:>7} {change:>7}  {rc}"
              + (f"  ({r['faults']} MD fault(s) recovered)" if r.get("faults") else ""))
    print(_verdict(workdir, summary))
    _status_in_progress(Path(args.workdir), len(rounds), summary.get("walkers", 1))
    return 0


def _verdict(workdir: Path, summary: dict) -> str:
    """One line: converged or not, and why, against the campaign's own thresholds."""
    from .config import ConvergenceConfig

    rounds = summary["rounds"]
    if summary["converged"]:
        return f"verdict: converged after {len(rounds)} rounds"
    if len(rounds) < 2:
        return "verdict: not converged (needs at least two rounds to compare)"
    try:
        import json

        stored = json.loads((workdir / "config.json").read_text()).get("convergence", {})
        thresholds = ConvergenceConfig(**stored)
    except (OSError, ValueError, TypeError):
        thresholds = ConvergenceConfig()
    last = rounds[-1]
    angle, change = last.get("angle_change_deg"), last.get("free_energy_change_kT")
    reasons = []
    if angle is None or angle >= thresholds.angle_deg:
        reasons.append(f"the RC still moved {angle:.1f} deg (limit {thresholds.angle_deg:g})")
    if change is None or change >= thresholds.free_energy_kT:
        reasons.append(f"F(chi) still changed {change:.2f} kT RMS "
                       f"(limit {thresholds.free_energy_kT:g})")
    if len(rounds) < thresholds.min_rounds:
        reasons.append(f"fewer than {thresholds.min_rounds} rounds")
    return "verdict: not converged: " + "; ".join(reasons or ["thresholds not met"]) + \
        ". Raise --rounds to go on"


def _status_in_progress(workdir: Path, done: int, walkers: int) -> None:
    """A line on the round after the last complete one, if it was started."""
    from .store import round_dir

    folder = round_dir(workdir, done)
    if not folder.is_dir() or (folder / "round.json").exists():
        return
    stored = len(list((folder / "walkers").glob("walker_*.npz")))
    stage = ("learning (MD done)" if (folder / "frames.npz").exists()
             else f"MD: {stored} of {walkers} walker(s) stored")
    print(f"round {done} started, not complete: {stage}. `rave run` with the same config and "
          f"--workdir resumes it")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rave",
        description="RAVE enhanced sampling: iterative VAE-learned reaction coordinates and "
                    "kT ln P biases in OpenMM.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a RAVE campaign from a TOML config")
    run.add_argument("config", help="campaign TOML file (see workflows/*.toml)")
    run.add_argument("--workdir", help="output directory (default: runs/<config name>); one "
                                        "that holds a campaign is resumed where it stopped")
    run.add_argument("--rounds", type=int, help="override [sampling] rounds (raise it to extend "
                                                "a finished campaign)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="run walkers on this Dask scheduler (tcp://host:8786), or 'local' / "
                          "'serial'; overrides [sampling] scheduler")
    run.add_argument("-q", "--quiet", action="store_true", help="no log on the terminal")
    exp = sub.add_parser("export", help="export the latest RC and bias of a campaign")
    exp.add_argument("workdir", help="a rave work directory")
    exp.add_argument("--plumed", metavar="DIR",
                     help="write plumed.dat, bias.grid and README.txt into DIR")
    exp.add_argument("--torchscript", metavar="FILE",
                     help="write the encoder (raw features -> latent mean) as TorchScript")
    exp.add_argument("--openmm", metavar="FILE",
                     help="write the bias force as serialized OpenMM XML")
    sta = sub.add_parser("status", help="rounds, frames, ESS, RC and convergence of a campaign")
    sta.add_argument("workdir", help="a rave work directory")
    ana = sub.add_parser("analyse", help="write a report with figures for a campaign")
    ana.add_argument("workdir", help="a rave work directory")
    ana.add_argument("--out", help="report directory (default: WORKDIR/report)")
    args = parser.parse_args(argv)
    if not getattr(args, "quiet", False):
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "export":
            return _export(args)
        if args.command == "analyse":
            return _analyse(args)
        if args.command == "status":
            return _status(args)
    except (ConfigError, WorkdirError, ValueError, ExportError, CampaignFileError) as error:
        print(f"rave: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())



