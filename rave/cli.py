"""Command line: ``rave run CONFIG.toml``, ``rave export WORKDIR``, ``rave analyse WORKDIR``,
``rave status WORKDIR``, ``rave --version``.

Every failure a user can cause ends with one line ``rave: error: ...`` on stderr that names the
file or key and what to do, and one of these exit codes:

* 0: done;
* 1: the campaign stopped: MD failed after its recoveries, or OpenMM's and numpy's bias
  energies disagree (frames of finished walkers and rounds are kept; ``rave run`` resumes);
* 2: refused: a bad config, command line or work directory, a damaged stored file, an export
  that would overwrite (nothing was changed);
* 3: the work directory is in use by another rave (its lock names the pid, host, start);
* 4: the operating system refused a read or write (permissions, disk full, a path under a
  file); what was stored before stays, and ``rave run`` resumes once it is fixed;
* 130: interrupted (Ctrl-C or SIGTERM); ``rave run`` with the same arguments resumes.
"""

from __future__ import annotations

import signal
import sys

#: exit codes, see the module docstring
EXIT_STOPPED = 1
EXIT_REFUSED = 2
EXIT_BUSY = 3
EXIT_OS = 4
EXIT_INTERRUPTED = 130


def _raise_interrupt(signum, frame):  # SIGTERM (a batch system's stop) as Ctrl-C
    raise KeyboardInterrupt


# a Ctrl-C or SIGTERM while the libraries load (the first second) is an interrupt like any
# other: one line and exit 130, not a traceback or a silent 143
try:
    signal.signal(signal.SIGTERM, _raise_interrupt)
except ValueError:  # not the main thread (rave.cli imported by a threaded program)
    pass
try:
    import argparse
    import contextlib
    import errno
    import logging
    import os
    from collections.abc import Iterator
    from pathlib import Path

    from . import __version__
    from .analysis import CampaignFileError
    from .analysis.export import ExportError
    from .campaign.config import ConfigError, load_config
    from .campaign.store import CampaignStore, StoreFileError, WorkdirBusy, WorkdirError
except KeyboardInterrupt:
    print("rave: error: interrupted while starting; nothing was done", file=sys.stderr)
    sys.exit(EXIT_INTERRUPTED)

def _error(message: str) -> None:
    print(f"rave: error: {' '.join(str(message).split())}", file=sys.stderr)


def _os_advice(error: OSError) -> str:
    """What to do about an OS error, by its errno."""
    code = error.errno
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "make it writable (or readable) for this user, or choose another path"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "free disk space (or raise the quota); `rave run` then resumes where it stopped"
    if code in (errno.ENOTDIR, errno.EEXIST):
        return "a part of that path is a file, not a directory: choose another path"
    if code == errno.EISDIR:
        return "that path is a directory; give a file name"
    if code == errno.ENOENT:
        return "check the path"
    return "fix the cause; `rave run` resumes where it stopped"


class _TerminalHandler(logging.Handler):
    """Log records on stderr through ``tqdm.write``: a line never lands on a progress bar (the
    bars are cleared, the line written, the bars drawn again below it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # as logging.StreamHandler: never let a log line raise
            self.handleError(record)


class _RaveOrWarning(logging.Filter):
    """rave's own records from INFO up; other libraries' only from WARNING up."""

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "rave" or record.name.startswith("rave.")
        return record.levelno >= (logging.INFO if ours else logging.WARNING)


class _Formatter(logging.Formatter):
    """rave's lines as they are; another library's line prefixed by its logger's name and
    level, so no line on the terminal is of unknown origin."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.name == "rave" or record.name.startswith("rave."):
            return message
        return f"{record.name} {record.levelname.lower()}: {message}"


@contextlib.contextmanager
def terminal_log(quiet: bool = False) -> Iterator[None]:
    """rave's log on stderr for the duration of a command."""
    if quiet:
        yield
        return
    from .campaign.logs import RepeatedWarnings

    handler = _TerminalHandler()
    handler.setFormatter(_Formatter("%(message)s"))
    handler.addFilter(_RaveOrWarning())
    handler.addFilter(RepeatedWarnings())
    root = logging.getLogger()
    rave_logger = logging.getLogger("rave")
    old_level = rave_logger.level
    root.addHandler(handler)
    rave_logger.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        rave_logger.setLevel(old_level)
        root.removeHandler(handler)


def _run(args: argparse.Namespace) -> int:
    from .campaign import BiasMismatchError, Campaign
    from .campaign.walkers import SchedulerUnreachable
    from .md.walker import MDError

    overrides = {}
    if args.rounds is not None:
        overrides["sampling.rounds"] = args.rounds
    config = load_config(args.config, overrides)
    workdir = Path(args.workdir) if args.workdir else Path("runs") / Path(args.config).stem
    figures = None
    if config.output.figures:
        from .analysis import plots as figures
    try:
        summary = Campaign(config, workdir, scheduler=args.scheduler, figures=figures).run(
            redo_round=args.redo_round, rebuild_manifest=args.rebuild_manifest)
    except MDError as error:
        _error(f"MD failed: {error}. Frames of finished rounds and walkers are kept in "
               f"{workdir}; `rave run` with the same config and --workdir resumes")
        return EXIT_STOPPED
    except BiasMismatchError as error:
        _error(str(error))
        return EXIT_STOPPED
    except SchedulerUnreachable as error:
        _error(f"{error}. Frames of finished rounds and walkers are kept in {workdir}")
        return EXIT_REFUSED
    except KeyboardInterrupt:
        _error(f"interrupted; finished walkers and rounds are stored in {workdir}. `rave run "
               f"{args.config} --workdir {workdir}` resumes where it stopped")
        return EXIT_INTERRUPTED
    from .analysis import CampaignResult

    print(f"\n{len(summary['rounds'])} rounds; {_verdict(workdir, summary)}")
    if summary.get("stop_reason"):
        print(f"stopped: {summary['stop_reason']}")
    if summary.get("max_total_steps") is not None:
        print(f"MD budget: {summary['steps_used']} of {summary['max_total_steps']} steps used, "
              f"{summary['steps_left']} left")
    for line in CampaignResult.load(workdir).outcome_lines():
        print(line)
    files = CampaignStore(workdir)
    print(f"results: {workdir / files.SUMMARY}, {files.FREE_ENERGY}, round_*/")
    if config.output.figures:
        print(f"figures: {workdir / files.FREE_ENERGY_FIGURE} (final F and RC per round), "
              f"{workdir}/round_*/{files.FIGURE} (F and the next bias after each round)")
    else:
        print("figures: none ([output] figures = false)")
    print(f"report: `rave analyse {workdir}` writes {workdir / 'report' / 'report.html'} "
          f"(F over the RC and the order parameters with error bars, basins, barrier crossings, "
          f"convergence, captions)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .analysis import export

    if not (args.plumed or args.torchscript or args.openmm):
        raise ValueError("rave export needs at least one of --plumed DIR, --torchscript FILE, "
                         "--openmm FILE")
    workdir = Path(args.workdir)
    if not workdir.is_dir():
        raise ValueError(f"work directory {workdir} does not exist or is not a directory")
    targets = []
    if args.plumed:
        targets += export.plumed_paths(Path(args.plumed))
    if args.torchscript:
        targets.append(Path(args.torchscript))
    if args.openmm:
        targets.append(Path(args.openmm))
    export.check_targets(targets, force=args.force)  # all of them before writing any
    written = []
    if args.plumed:
        written += export.write_plumed(workdir, Path(args.plumed), force=args.force)
    if args.torchscript:
        written.append(export.write_torchscript(workdir, Path(args.torchscript),
                                                     force=args.force))
    if args.openmm:
        written.append(export.write_openmm(workdir, Path(args.openmm), force=args.force))
    for path in written:
        print(f"wrote {path}")
    if args.plumed or args.openmm:
        campaign = CampaignStore(workdir)
        print(f"bias: {export.exported_bias(campaign, export._latest(campaign))[1]}")
    return 0


def _analyse(args: argparse.Namespace) -> int:
    from .analysis import write_report

    report = write_report(args.workdir, args.out)
    print(f"wrote {report}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from .campaign import store

    campaign = CampaignStore(args.workdir)
    workdir = campaign.workdir
    if not workdir.is_dir() or not (campaign.holds_campaign() or campaign.has(campaign.SUMMARY)):
        from .analysis.result import check_campaign_folder

        check_campaign_folder(campaign)  # says what the folder is not
    # the rounds are what the store holds (round.json), whatever summary.json says
    complete = campaign.complete_rounds() if campaign.holds_campaign() else []
    stored_rounds = [campaign.round_record(i).to_summary() for i in complete]
    if not campaign.has(campaign.SUMMARY) and campaign.holds_campaign():
        if stored_rounds:
            print(f"{campaign.path(campaign.SUMMARY)} is missing; the rounds below are read "
                  f"from their round.json files. `rave run` with the campaign's config and "
                  f"--workdir {workdir} rewrites it")
        config = campaign.config()
        manifest = store.load_json(campaign.path(campaign.MANIFEST))
        try:
            summary = {"system": manifest.get("system"),
                       "converged": bool(stored_rounds and stored_rounds[-1]["converged"]),
                       "rounds": stored_rounds,
                       "temperature_K": config["system"].get("temperature"),
                       "walkers": config.get("sampling", {}).get("walkers", 1),
                       "feature_names": ([d.get("name") for d in campaign.feature_dicts()]
                                         if stored_rounds else [])}
        except (KeyError, TypeError, AttributeError) as error:
            raise store.StoreFileError(f"{campaign.path(campaign.CONFIG)} is not a rave config "
                                       f"(missing or malformed {error}); restore it from a "
                                       f"backup") from error
    else:
        summary = campaign.summary()
        listed = len(summary.get("rounds", []))
        if holds := campaign.holds_campaign():
            summary = {**summary, "rounds": stored_rounds}
        if holds and listed != len(stored_rounds):
            print(f"{campaign.path(campaign.SUMMARY)} lists {listed} round(s) but "
                  f"{len(stored_rounds)} complete round(s) are stored (a round.json is missing "
                  f"or damaged?); the rounds below are the stored ones")
    try:
        _print_status(workdir, summary)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise store.StoreFileError(
            f"{campaign.path(campaign.SUMMARY)} is not a rave summary (missing or malformed "
            f"{error}); "
            f"`rave run` with the campaign's config and --workdir {workdir} rewrites it") from error
    return 0


def _print_status(workdir: Path, summary: dict) -> None:
    names = summary["feature_names"]
    rounds = summary["rounds"]
    print(f"{workdir}: {summary.get('system', '?')} at {summary['temperature_K']} K, "
          f"{len(rounds)} round(s) done, {sum(r['frames'] for r in rounds)} frames, "
          f"converged: {summary['converged']}")
    if summary.get("max_total_steps") is not None:
        print(f"MD budget: {summary['steps_used']} of {summary['max_total_steps']} steps used "
              f"over all rounds and walkers, {summary['steps_left']} left")
    print(f"{'round':>5} {'steps':>8} {'frames':>7} {'ESS':>9} {'KL':>8} {'dAngle':>7} "
          f"{'dF/kT':>7}  RC")
    for r in rounds:
        angle = "" if r.get("angle_change_deg") is None else f"{r['angle_change_deg']:.2f}"
        change = ("" if r.get("free_energy_change_kT") is None
                  else f"{r['free_energy_change_kT']:.3f}")
        rc = " + ".join(f"{c:+.3f}*{n}" for c, n in zip(r["coefficients"], names, strict=True))
        steps = "" if r.get("steps") is None else str(r["steps"])
        print(f"{r['index']:>5} {steps:>8} {r['frames']:>7} {r['effective_sample_size']:>9.1f} "
              f"{r['kl_divergence']:>8.4f} {angle:>7} {change:>7}  {rc}"
              + (f"  ({r['faults']} MD fault(s) recovered)" if r.get("faults") else ""))
    from .analysis import config_change_lines

    for line in config_change_lines(rounds):
        print(line)
    for r in rounds:
        if r.get("plan_reason") and "fixed schedule" not in r["plan_reason"]:
            print(f"round {r['index']} plan: {r['steps']} steps per walker: {r['plan_reason']}")
    print(_verdict(workdir, summary))
    _status_in_progress(workdir, len(rounds), summary.get("walkers", 1))


def _verdict(workdir: Path, summary: dict) -> str:
    """One line: converged or not, and why: the failed criteria the last round stored
    (:mod:`rave.learn.convergence`); for rounds of an older rave, which stored none, the same
    function judges what they recorded against the campaign's own thresholds."""
    from .campaign.config import ConvergenceConfig
    from .learn.convergence import RoundEvidence, convergence_failures

    rounds = summary["rounds"]
    if summary["converged"]:
        return f"verdict: converged after {len(rounds)} rounds"
    if len(rounds) < 2:
        return "verdict: not converged (needs at least two rounds to compare)"
    last = rounds[-1]
    reasons = last.get("convergence_failures")
    if reasons is None:
        try:
            stored = CampaignStore(workdir).config().get("convergence", {})
            thresholds = ConvergenceConfig(**stored)
        except (StoreFileError, OSError, ValueError, TypeError):
            thresholds = ConvergenceConfig()
        reasons = convergence_failures(RoundEvidence(
            index=len(rounds) - 1, angle_change_deg=last.get("angle_change_deg"),
            seed_spread_deg=last.get("seed_spread_deg"), usable_seeds=0, models=0,  # not stored
            free_energy_change_kT=last.get("free_energy_change_kT"),
            free_energy_sigma_kT=last.get("free_energy_sigma_kT"),
            rc_angle_sigma_deg=last.get("rc_angle_sigma_deg")), thresholds)
    advice = ("Raise sampling.max_total_steps to go on"
              if str(summary.get("stop_reason") or "").startswith("budget spent")
              else "Raise --rounds to go on")
    return "verdict: not converged: " + "; ".join(reasons or ["thresholds not met"]) + \
        ". " + advice


def _status_in_progress(workdir: Path, done: int, walkers: int) -> None:
    """A line on the round after the last complete one, if it was started."""
    campaign = CampaignStore(workdir)
    if not campaign.round_started(done) or campaign.round_complete(done):
        return
    stored = len(campaign.stored_walkers(done))
    stage = ("learning (MD done)" if campaign.round_has(done, campaign.FRAMES)
             else f"MD: {stored} of {walkers} walker(s) stored")
    print(f"round {done} started, not complete: {stage}. `rave run` with the same config and "
          f"--workdir resumes it")


def main(argv: list[str] | None = None) -> int:
    """The ``rave`` command line: ``run``, ``export``, ``status`` and ``analyse``.

    Errors a user can fix (a bad config, a busy or foreign work directory, a damaged file, a
    refused export target) are printed as one ``rave: error:`` line and give an exit code;
    SIGTERM is handled as Ctrl-C.
    """
    parser = argparse.ArgumentParser(
        prog="rave",
        description="RAVE enhanced sampling in OpenMM: reaction coordinates learned by a VAE "
                    "round after round, biased by OPES (default) or the paper's kT ln P bias.",
    )
    parser.add_argument("--version", action="version", version=f"rave {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a RAVE campaign from a TOML config")
    run.add_argument("config", help="campaign TOML file (see workflows/*.toml), or a "
                                    "campaign's stored config.json")
    run.add_argument("--workdir", help="output directory (default: runs/<config name>); one "
                                        "that holds a campaign is resumed where it stopped")
    run.add_argument("--rounds", type=int, help="override [sampling] rounds (default: the "
                                                "config's; raise it to extend a finished "
                                                "campaign)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="run walkers on this Dask scheduler (tcp://host:8786), or 'local' / "
                          "'serial'; overrides [sampling] scheduler (default: the config's, "
                          "else 'local')")
    run.add_argument("--redo-round", type=int, metavar="N",
                     help="recompute round N from its stored MD, and every later round (after a "
                          "file of a complete round was damaged)")
    run.add_argument("--rebuild-manifest", action="store_true",
                     help="the work directory lost its manifest.json: rebuild it from its "
                          "config.json (which must match the config given) and resume")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="no log on the terminal (campaign.log is still written); progress "
                          "bars are drawn only on a terminal, and [output] progress = false "
                          "turns them off")
    exp = sub.add_parser("export", help="export the last round's RC, encoder and bias: the OPES "
                                        "bias in force at its end (an OPES campaign) or the "
                                        "static kT ln P bias built after it")
    exp.add_argument("workdir", help="a rave work directory")
    exp.add_argument("--plumed", metavar="DIR",
                     help="write plumed.dat, bias.grid (the bias tabulated along the RC, for "
                          "EXTERNAL) and README.txt into DIR")
    exp.add_argument("--torchscript", metavar="FILE",
                     help="write the encoder (raw features -> latent mean) as TorchScript")
    exp.add_argument("--openmm", metavar="FILE",
                     help="write the bias force as serialized OpenMM XML")
    exp.add_argument("--force", action="store_true",
                     help="overwrite existing files (never files inside a campaign)")
    sta = sub.add_parser("status", help="rounds, frames, ESS, RC and convergence of a campaign")
    sta.add_argument("workdir", help="a rave work directory")
    ana = sub.add_parser("analyse", help="write a report with figures for a campaign")
    ana.add_argument("workdir", help="a rave work directory")
    ana.add_argument("--out", help="report directory (default: WORKDIR/report)")
    try:
        args = parser.parse_args(argv)
        with terminal_log(quiet=getattr(args, "quiet", False)):
            return _dispatch(args)
    except KeyboardInterrupt:  # before or after _dispatch's own handling
        _error("interrupted; nothing more was done")
        return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace) -> int:
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "export":
            return _export(args)
        if args.command == "analyse":
            return _analyse(args)
        if args.command == "status":
            return _status(args)
    except WorkdirBusy as error:
        _error(str(error))
        return EXIT_BUSY
    except (ConfigError, WorkdirError, ValueError, ExportError, CampaignFileError) as error:
        _error(str(error))
        return EXIT_REFUSED
    except BrokenPipeError:
        # the reader of the output went away (`rave status W | head -1`): nothing is wrong
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return 0
    except OSError as error:
        where = error.filename if error.filename is not None else "a file"
        _error(f"{where}: {error.strerror or error}. {_os_advice(error)}; nothing stored "
               f"before was lost")
        return EXIT_OS
    except KeyboardInterrupt:
        _error(f"interrupted; `rave {args.command}` can be run again"
               + ("; `rave run` resumes where it stopped" if args.command == "run" else ""))
        return EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())



