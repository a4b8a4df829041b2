"""The RAVE loop: unbiased round 0, then train -> RC -> bias -> biased MD -> reweight.

Each round runs ``sampling.walkers`` independent walkers under the same static bias (in this
process or on Dask, see :mod:`rave.campaign.walkers`). After the MD of round r, all frames of rounds
0..r are reweighted with MBAR over the rounds' static biases, the RAVE step
(:class:`rave.learn.estimator.RAVE`: ``vae.models`` VAEs, the linear RC chi = c . s chosen by
KL matching, spurious models dropped) runs on them, F(chi) is estimated, convergence is
checked against round r-1, and the bias for round r+1 is built from F(chi). The campaign
stops after ``sampling.rounds`` MD rounds or when the RC direction and F(chi) stop changing.

Resuming: ``Campaign(config, workdir).run()`` on a work directory that holds a campaign goes on
where it stopped (a crash, ``kill -9``, a pre-empted job, or more rounds asked for). Complete
rounds (``round.json``) and complete walkers (``walkers/walker_KK.npz``) are kept; everything
else of an interrupted round is redone; every choice (seeds, starting frames) is a function of
the stored data, so a resumed campaign stores what an uninterrupted one would. A config that
changes what the stored data mean (system, temperature, features, the MD of a round) is
refused with the differences named; a resume that changes any other key that can change
results ([vae], [coordinate], [bias], [convergence], the platform ...) is recorded: each run's
config and its changes from ``config.json`` go into ``manifest.json``, and each round's
``round.json`` names the run that completed it and those changes (``rave status`` shows them).
``run(redo_round=N)`` (``rave run --redo-round N``) recomputes round N from its stored MD, and
every later round, after a file of a complete round was damaged.

Schedule: without ``[sampling] max_total_steps`` every round runs ``steps_per_round`` steps per
walker. With it, :func:`rave.campaign.schedule.plan_round_steps` plans each round's length from the
complete rounds (a short unbiased round 0, then lengths that adapt to how much the RC and F(chi)
still change) and the MD steps over all rounds and walkers never exceed the budget; each
round.json stores its ``steps`` and ``plan_reason``, summary.json the budget used and left. A
resume recomputes the same plan from the stored rounds; a round whose walkers are partly stored
keeps their length. Changing ``max_total_steps`` or ``first_round_steps`` on a resume is
recorded (not refused), but a budget below the steps already spent is refused.

Every write happens under the work directory's lock (:func:`rave.campaign.store.lock_workdir`). See
:mod:`rave.campaign.store` for the layout.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..learn.bias import (
    Bias,
)
from ..learn.estimator import RAVE, RAVEModel, cold_positions, rc_frames, stale_warm_starts  # noqa: F401
from ..md.features import openmm_feature_values
from ..md.frames import Frames
from ..md.opes import OPESSpec
from ..md.walker import MDError
from ..units import chi_unit, kT_kjmol
from . import store
from .config import (
    BUDGET_ROUNDS,
    UNLIMITED_ROUNDS,
    Config,
    ConfigError,
    check_frame_memory,
)
from .logs import RepeatedWarnings, progress_disabled
from .loop import (  # noqa: F401 - BiasMismatchError, profile_change_kT: their old home
    BIAS_MISMATCH_TOL_KJMOL,
    PROFILE_BINS,
    BiasMismatchError,
    RoundLoop,
    profile_change_kT,
)
from .resources import read_allowed_cores
from .resume import (  # noqa: F401 - ROUND_DEFINING, UNRECORDED: their old home
    ROUND_DEFINING,
    UNRECORDED,
    CampaignResume,
    config_differences,
    recorded_changes,
)
from .schedule import BUDGET_MIN_ROUNDS, RoundPlan, round_limits, steps_used
from .simsystem import build_model_potential, build_simulation_system, file_sha256
from .store import RoundRecord
from .walkers import (
    WalkerResult,
    WalkerTask,
    make_executor,
    round_frames,
)

__all__ = ["BiasMismatchError", "Campaign", "RoundFailed", "RoundRecord",
           "build_model_potential", "recorded_changes"]

log = logging.getLogger("rave")

#: bootstrap replicates (MBAR re-solved per replicate) of the error bars on free_energy.png
FINAL_BOOTSTRAP = 20
#: largest |OpenMM - numpy| value of an order parameter at the same positions (its own unit)
FEATURE_MISMATCH_TOL = 1e-5


class RoundFailed(MDError):
    """Walkers of a round failed after their recoveries; the others' frames are stored."""


def spread_along_chi(chi: np.ndarray, k: int) -> list[int]:
    """Indices of ``k`` distinct entries of ``chi`` spread over its range.

    For target values evenly spaced at (j + 1/2)/k of [min, max], the nearest entry not yet
    taken.

    Raises ValueError: ``k`` exceeds the number of entries.
    """
    chi = np.asarray(chi, dtype=float)
    if k > len(chi):
        raise ValueError(f"cannot pick {k} starting frames from {len(chi)} snapshots")
    lo, hi = float(chi.min()), float(chi.max())
    taken: list[int] = []
    for j in range(k):
        target = lo + (j + 0.5) / k * (hi - lo)
        order = np.argsort(np.abs(chi - target), kind="stable")
        taken.append(int(next(i for i in order if i not in taken)))
    return taken


class Campaign(CampaignResume):
    """A RAVE campaign in a work directory.

    Parameters
    ----------
    config : Config
        The validated configuration (:func:`rave.campaign.config.load_config`).
    workdir : path
        Created for a new campaign; a work directory that holds a campaign is resumed.
    scheduler : str, optional
        Overrides ``[sampling] scheduler`` ("local", "serial" or a Dask scheduler address).
    figures : object, optional
        What draws the figures of ``[output] figures = true``: an object with
        ``round_figure(path, **data)`` and ``final_figure(path, **data)``, such as the module
        :mod:`rave.analysis.plots` (``rave run`` passes it). Without it the campaign draws no
        figure (every other output is the same).
    """

    def __init__(self, config: Config, workdir: str | Path, scheduler: str | None = None,
                 figures=None) -> None:
        if scheduler is not None:
            config = dataclasses.replace(
                config, sampling=dataclasses.replace(config.sampling, scheduler=scheduler))
        self.config = config
        self.figures = figures
        self.vae_config = config.vae_config()
        # Everything that can fail on bad input fails here, before the work directory is touched.
        self.sim = build_simulation_system(config)
        self.potential = self.sim.potential
        self.features = list(self.sim.features)
        self.feature_names = [f.name for f in self.features]
        self.chi_unit = chi_unit([f.unit for f in self.features])
        check_frame_memory(config, len(self.features))
        self.kT = kT_kjmol(config.system.temperature)
        sampling = config.sampling
        self.timestep_ps = sampling.timestep or self.sim.timestep_ps
        self.friction_per_ps = sampling.friction or self.sim.friction_per_ps
        self.workdir = Path(workdir)
        self.store = store.CampaignStore(self.workdir)
        #: the rounds and the computation between them (no files): rave run's and
        #: rave.RAVESampler's one loop
        self.loop = RoundLoop(config, self.feature_names, self.kT, config.system.temperature,
                              getattr(self.potential, "exact_free_energy", None),
                              where=str(self.workdir))
        self._executor = None
        self._system_xml: str | None = None
        self._walker_cache: dict[int, list[WalkerResult]] = {}
        self._plans: dict[int, RoundPlan] = {}  # the plan of each round this run starts

    @property
    def records(self) -> list[RoundRecord]:
        """The complete rounds' records (:attr:`rave.campaign.loop.RoundLoop.records`)."""
        return self.loop.records

    # ------------------------------------------------------------------ work directory
    def _features_dicts(self) -> list[dict]:
        return [feature.to_dict() for feature in self.features]

    def _input_hashes(self) -> dict:
        return {name: file_sha256(path) for name, path in self.sim.input_files.items()}

    def _own_files(self) -> dict[str, bytes]:
        """What a new campaign writes before its manifest (an interrupted start left these)."""
        return self.store.start_files(self.config.to_dict(), self._features_dicts(),
                                      list(self.sim.input_files.values()))

    def _initialise(self) -> None:
        self.store.check_new(self._own_files())
        self.store.initialise(self.config.to_dict(), self._features_dicts(),
                              list(self.sim.input_files.values()), {
                                  "rave_version": __version__,
                                  "system": self.sim.name,
                                  "input_sha256": self._input_hashes(),
                                  "config": self.config.to_dict(),
                                  "runs": [],
                              })

    def _holds_md(self) -> bool:
        """Whether any round of the store holds MD (a walker file or frames)."""
        return any(self.store.stored_walkers(r) or self.store.round_has(r, self.store.FRAMES)
                   for r in self.store.round_folders())

    def _setup_logging(self) -> logging.Handler:
        handler = logging.FileHandler(self.store.path(self.store.LOG))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler.addFilter(RepeatedWarnings())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        return handler

    # ------------------------------------------------------------------ the loop
    def run(self, rounds: int | None = None, redo_round: int | None = None,
            rebuild_manifest: bool = False) -> dict:
        """Run (or resume) the campaign; returns the summary written to ``summary.json``.

        Parameters
        ----------
        rounds : int, optional
            MD rounds in all (default ``[sampling] rounds``).
        redo_round : int, optional
            Recompute round ``redo_round`` from its stored MD (walker files that read back are
            kept) and every later round: the recovery from a damaged file of a complete round.
        rebuild_manifest : bool, optional
            The work directory lost its ``manifest.json``: write a new one from its
            ``config.json`` (which must match this config in what defines the stored data),
            then resume. The record of earlier runs is lost.

        Returns
        -------
        dict
            The summary written to ``summary.json``: temperature (K), feature names, whether
            it converged, the system, walkers, the MD budget with the steps used and left, why
            it stopped, and every round's record (RC coefficients, KL, frames, ESS, ...).

        Raises
        ------
        rave.campaign.store.WorkdirBusy
            Another process holds the work directory's lock.
        rave.campaign.store.WorkdirError
            The directory holds something else, or a resume would change what its data mean.
        """
        rounds = self.config.sampling.round_limit if rounds is None else int(rounds)
        if rounds < 1:
            raise ConfigError(f"rounds must be >= 1. You supplied {rounds}")
        if redo_round is not None and redo_round < 0:
            raise ConfigError(f"--redo-round must be >= 0. You supplied {redo_round}")
        if not self.store.holds_campaign():
            if rebuild_manifest:
                with store.lock_workdir(self.workdir):
                    self._rebuild_manifest()
            elif redo_round is not None:
                raise store.WorkdirError(f"--redo-round {redo_round}: {self.workdir} holds no "
                                         f"campaign ({store.MANIFEST} is missing)")
            else:
                self.store.check_new(self._own_files())  # before creating it
        with store.lock_workdir(self.workdir):
            return self._run_locked(rounds, redo_round)

    def _run_locked(self, rounds: int, redo_round: int | None) -> dict:
        resuming = self.store.holds_campaign()  # again, under the lock
        if resuming:
            manifest = self._check_resumable()
        else:
            if redo_round is not None:
                raise store.WorkdirError(f"--redo-round {redo_round}: {self.workdir} holds no "
                                         f"campaign ({store.MANIFEST} is missing)")
            self._initialise()
            manifest = self.store.manifest()
        handler = self._setup_logging()
        try:
            stale = store.remove_stale_temporaries(self.workdir)
            if redo_round is not None:
                self._discard_rounds_from(redo_round)
            self._load_complete_rounds()
            self._check_budget_not_spent()
            changes = recorded_changes(self.store.resume_config(manifest),
                                       self.config.to_dict())
            manifest.setdefault("runs", []).append({
                "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "rounds_requested": rounds, "rave_version": __version__,
                "config": self.config.to_dict(), "config_changes": changes,
                **({"redo_round": redo_round} if redo_round is not None else {}),
            })
            run_index = len(manifest["runs"]) - 1
            self.store.write_manifest(manifest)
            if resuming:
                log.info("resuming %s: %d complete round(s) found%s", self.workdir,
                         len(self.records),
                         f", {len(stale)} unfinished temporary file(s) removed" if stale else "")
            else:
                log.info("RAVE campaign: %s at %.1f K (kT = %.4f kJ/mol), features %s, %d "
                         "rounds, %d walker(s) per round", self.sim.name,
                         self.config.system.temperature, self.kT, self.feature_names, rounds,
                         self.config.sampling.walkers)
            if changes:
                log.warning("this run changes the config from %s (recorded in %s and in each "
                            "%s it completes): %s", self.store.path(self.store.CONFIG),
                            self.store.MANIFEST, self.store.ROUND, "; ".join(changes))
            self._log_schedule(rounds)
            converged = bool(self.records) and self.records[-1].converged
            if converged:
                log.info("the campaign converged after %d rounds: nothing to run",
                         len(self.records))
            for index in range(len(self.records), rounds):
                if converged:
                    break
                plan = self._plans[index] = self._plan(index)
                if plan.steps is None:
                    log.info("stopping before round %d: %s", index, plan.reason)
                    break
                record = self._round(index)
                record.run = run_index
                record.config_changes = changes
                self.records.append(record)
                self.store.write_round(index, record)
                store.fault_point("round_complete")
                self._write_summary(converged=record.converged)
                if record.converged:
                    converged = True
                    log.info("converged after %d rounds", index + 1)
            self._write_final()
            stop = self._stop_reason(converged, rounds)
            summary = self._write_summary(converged=converged, stop_reason=stop)
            log.info("done (%s): %s", stop, self.workdir)
            return summary
        finally:
            if self._executor is not None:
                self._executor.close()
                self._executor = None
            log.removeHandler(handler)
            handler.close()

    # ------------------------------------------------------------------ schedule
    def _plan_from_rule(self) -> RoundPlan:
        """The schedule's plan of the next round (:meth:`RoundLoop.plan`)."""
        return self.loop.plan()

    def _plan(self, index: int) -> RoundPlan:
        """Steps of round ``index``: the schedule's, or those of its walkers already stored."""
        plan = self._plan_from_rule()
        stored = self._stored_walker_steps(index)
        ri = self.config.sampling.report_interval
        if stored is not None and (plan.steps is None or plan.steps // ri != stored // ri):
            now = "no round" if plan.steps is None else f"{plan.steps} steps"
            plan = RoundPlan(stored, f"{plan.reason}; kept {stored} steps: walkers of this round "
                                     f"were stored with them (the plan now gives {now})")
        return plan

    def _log_schedule(self, rounds: int) -> None:
        s = self.config.sampling
        if s.max_total_steps is None:
            log.info("schedule: fixed, up to %d rounds x %d walker(s) x %d steps", rounds,
                     s.walkers, s.round_steps)
            return
        floor, cap = round_limits(s.round_steps, s.report_interval)
        used = steps_used(self.records)
        if s.budget_shaped:
            log.info("schedule: from the budget of %d MD steps over all rounds and walkers (%d "
                     "used, %d left): rounds of %d steps per walker (the budget over %d walker(s)"
                     " x %d rounds), round 0 too; later rounds halve while the RC turns or new "
                     "chi values appear and double once the RC and F(chi) settle, within [%d, "
                     "%d] steps, each taking at most 1/(%d - its index) of what is left so that "
                     "at least %d rounds fit; the campaign stops when the budget is spent or it "
                     "converges%s (rave.campaign.schedule)", s.max_total_steps, used,
                     s.max_total_steps - used, s.round_steps, s.walkers, BUDGET_ROUNDS, floor,
                     cap, BUDGET_MIN_ROUNDS, BUDGET_MIN_ROUNDS,
                     "" if rounds >= UNLIMITED_ROUNDS else f", or after {rounds} rounds")
            return
        log.info("schedule: a budget of %d MD steps over all rounds and walkers (%d used, %d "
                 "left), at most %d rounds x %d walker(s); round 0 runs %d steps, round 1 %d, "
                 "later rounds halve while the RC turns or new chi values appear and double "
                 "once the RC and F(chi) settle, within [%d, %d] steps (rave.campaign.schedule)",
                 s.max_total_steps, used, s.max_total_steps - used, rounds, s.walkers,
                 s.planned_first_round_steps(), s.round_steps, floor, cap)

    def _stop_reason(self, converged: bool, rounds: int) -> str:
        """Why the campaign stopped (:meth:`RoundLoop.stop_reason`)."""
        return self.loop.stop_reason(converged, rounds)

    # ------------------------------------------------------------------ resume
    # ------------------------------------------------------------------ MD of a round
    def _prepared_state(self) -> dict:
        """The start of round 0: the system's positions, prepared once and stored."""
        if self.sim.prepare is None:
            return {"positions": self.sim.positions, "velocities": None,
                    "box_vectors": self.sim.box_vectors}
        state = self.store.prepared()
        if state is None:
            log.info("preparing %s: minimisation and equilibration", self.sim.name)
            t0 = time.perf_counter()
            state = self.sim.prepare(self.config.system.temperature, self.config.sampling.platform,
                                     self.config.sampling.seed)
            self.store.write_prepared(state)
            log.info("prepared in %.1f s (stored in %s)", time.perf_counter() - t0,
                     self.store.path(self.store.PREPARED))
        return {"positions": state["positions"], "velocities": state.get("velocities"),
                "box_vectors": state.get("box_vectors", self.sim.box_vectors)}

    def _walker_seed(self, index: int, walker: int) -> int:
        sequence = np.random.SeedSequence([self.config.sampling.seed, index, walker])
        return int(sequence.generate_state(1)[0] % 2**31)

    def _walker_results(self, index: int) -> list[WalkerResult]:
        """All walkers of a round whose MD is complete, read once per campaign run (later
        rounds' starting frames read every earlier round's snapshots)."""
        if index not in self._walker_cache:
            results = []
            for k in range(self.config.sampling.walkers):
                try:
                    results.append(WalkerResult.from_arrays(self.store.walker(index, k)))
                except store.StoreFileError as error:
                    advice = (self.store.redo_advice(index) if self.store.round_complete(index)
                              else "Remove it and rerun: `rave run` runs that walker again")
                    raise store.StoreFileError(f"{error}. {advice}") from error
            for k, result in enumerate(results):
                expected = (index, k, self._walker_seed(index, k))
                found = (result.round_index, result.walker_index, result.seed)
                if found != expected:
                    path = self.store.walker_path(index, k)
                    raise store.StoreFileError(
                        f"{path} holds round {found[0]} walker {found[1]} with MD seed "
                        f"{found[2]}, not this campaign's round {index} walker {k} (seed "
                        f"{expected[2]}): it was copied from another round or campaign, and its "
                        f"frames would be mixed in. Nothing was changed; remove it and rerun "
                        f"(`rave run` runs that walker again)")
            self._walker_cache[index] = results
        return self._walker_cache[index]

    def _start_states(self, index: int) -> list[dict]:
        """Where each walker of round ``index`` starts (a function of the stored data only).

        Round 0: the (prepared) start of the system, fresh velocities per walker. One walker:
        it continues from where round ``index - 1`` ended. Several walkers: position
        snapshots of all earlier rounds, spread along the RC of the bias now applied.
        """
        k = self.config.sampling.walkers
        if index == 0:
            start = self._prepared_state()
            return [{**start, "velocities": start["velocities"] if k == 1 else None,
                     "time_ps": 0.0} for _ in range(k)]
        if k == 1:
            (last,) = self._walker_results(index - 1)
            return [{"positions": last.final_positions, "velocities": last.final_velocities,
                     "box_vectors": last.final_box_vectors, "time_ps": last.final_time_ps}]
        snapshots, features, boxes = [], [], []
        for r in range(index):
            for result in self._walker_results(r):
                snapshots.append(result.snapshots)
                features.append(result.features[result.snapshot_frames])
                boxes += [result.final_box_vectors] * len(result.snapshots)
        pool = np.concatenate(snapshots)
        chi = np.concatenate(features) @ self.loop.previous_coefficients
        picks = spread_along_chi(chi, k)
        log.info("round %d: walkers start at chi = %s", index,
                 np.round(chi[picks], 3).tolist())
        return [{"positions": pool[i].astype(float), "velocities": None,
                 "box_vectors": boxes[i], "time_ps": 0.0} for i in picks]





    def _tasks(self, index: int, bias: Bias | None, n_steps: int,
               opes: OPESSpec | None = None) -> list[WalkerTask]:
        """One task per walker of round ``index``, ``n_steps`` MD steps each."""
        sampling = self.config.sampling
        if self._system_xml is None:
            self._system_xml = self.sim.system_xml()
        n_frames = n_steps // sampling.report_interval
        threads = None
        if sampling.walkers > 1 and sampling.scheduler == "local":
            # a local cluster's workers share the cores this process may use
            cores = read_allowed_cores()
            workers = sampling.workers or min(sampling.walkers, cores)
            threads = max(1, cores // workers)
        features = tuple(self._features_dicts())
        explore = self.loop.exploration() if index == 0 else None
        continued = ([None] * sampling.walkers if opes is None
                     else self.loop.opes_continuation(
                         index, opes,
                         lambda: [r.opes_state for r in self._walker_results(index - 1)]))
        return [
            WalkerTask(
                round_index=index, walker_index=k, system_xml=self._system_xml,
                features=features, positions=np.asarray(start["positions"], float),
                velocities=None if start["velocities"] is None
                else np.asarray(start["velocities"], float),
                box_vectors=None if start["box_vectors"] is None
                else np.asarray(start["box_vectors"], float),
                time_ps=float(start["time_ps"]), bias=None if bias is None else bias.to_dict(),
                temperature_K=self.config.system.temperature, timestep_ps=self.timestep_ps,
                friction_per_ps=self.friction_per_ps, seed=self._walker_seed(index, k),
                platform=sampling.platform, force_group=self.config.bias.force_group,
                n_steps=n_steps, report_interval=sampling.report_interval,
                snapshot_every=max(1, n_frames // sampling.snapshots),
                max_retries=sampling.max_retries, cpu_threads=threads,
                opes=None if opes is None else opes.to_dict(),
                opes_state=continued[k],
                explore=explore,
                record_potential=self.loop.records_potential(),
                dcd_every=self.config.output.dcd_interval,
            )
            for k, start in enumerate(self._start_states(index))
        ]

    def _run_walkers(self, index: int, bias: Bias | None, label: str,
                     n_steps: int, opes: OPESSpec | None = None
                     ) -> tuple[Frames, int]:
        """MD of a round: every walker not yet stored runs ``n_steps`` steps; returns all
        walkers' frames."""
        sampling = self.config.sampling
        tasks = self._tasks(index, bias, n_steps, opes)
        pending = [t for t in tasks
                   if not self.store.walker_path(index, t.walker_index).exists()]
        if len(pending) < len(tasks):
            log.info("%s: %d of %d walkers already stored", label, len(tasks) - len(pending),
                     len(tasks))
        if pending:
            if self._executor is None:
                self._executor = make_executor(sampling.scheduler, sampling.walkers,
                                               sampling.workers or None)
                if sampling.walkers > 1:
                    log.info("walkers run on %s (%d worker(s))", self._executor.name,
                             self._executor.n_workers)
            total = sum(t.n_steps // t.report_interval for t in pending)
            with tqdm(total=total, desc=label, unit="frame",
                      disable=progress_disabled(self.config.output.progress),
                      leave=False) as bar:

                def store_result(result: WalkerResult) -> None:
                    self.store.write_walker(index, result.walker_index, result.to_arrays())
                    log.info("%s walker %d: %d frames in %.1f s on %s%s", label,
                             result.walker_index, len(result), result.wall_s, result.platform,
                             f", {len(result.faults)} fault(s) recovered" if result.faults
                             else "")
                    store.fault_point("walker_stored")

                failures = self._executor.run(pending, store_result, progress=bar.update)
            if failures:
                raise RoundFailed(
                    f"{len(failures)} of {len(tasks)} walkers of round {index} failed: "
                    + "; ".join(str(f) for f in failures)
                    + f". The other walkers' frames are stored in "
                      f"{self.store.round_path(index, self.store.WALKERS)}; rerun to retry "
                      f"the failed ones")
        results = self._walker_results(index)
        frames = round_frames(results)
        self.store.write_frames(index, frames)
        store.fault_point("frames_stored")
        return frames, sum(len(r.faults) for r in results)


    def _round(self, index: int) -> RoundRecord:
        """MD of round ``index`` as planned (:meth:`_plan`), then its learning step."""
        sampling = self.config.sampling
        plan = self._plans.get(index) or self._plan(index)
        steps = int(plan.steps)
        timings = {}
        step = self.loop.next_round(index)
        bias, spec, label = step.bias, step.opes, step.label
        if bias is not None:
            self.store.write_bias_applied(index, bias.to_dict())
        log.info("%s: %d walker(s) x %d steps, %d frames each (%s)", label, sampling.walkers,
                 steps, steps // sampling.report_interval, plan.reason)
        if sampling.max_total_steps is not None:
            used = steps_used(self.records) + steps * sampling.walkers
            log.info("%s: budget after this round: %d of %d steps used, %d left", label, used,
                     sampling.max_total_steps, sampling.max_total_steps - used)
        t0 = time.perf_counter()
        frames, faults = self._run_walkers(index, bias, label, steps, spec)
        timings["md"] = time.perf_counter() - t0
        applied = None if bias is None else bias.to_dict()
        if step.exploring:
            applied = self.loop.exploration_applied(label, self._walker_results(index), frames)
            self.store.write_bias_applied(index, applied)
        if spec is not None:
            applied = self.loop.adaptive_applied(index, spec, self._walker_results(index),
                                                 str(self.store.round_dir(index)))
            self.store.write_bias_applied(index, applied)
            log.info("%s: %d MBAR states (blocks of the OPES bias within %g kT)", label,
                     len(applied["states"]), self.config.bias.opes_block_kT)
        log.info("%s: %.1f s, %.0f steps/s over all walkers", label, timings["md"],
                 sampling.walkers * steps / timings["md"])
        self.loop.add_round(frames, applied, spec is not None)
        record = self._learn(index, timings)
        record.walkers = sampling.walkers
        record.faults = faults
        record.steps = steps
        record.plan_reason = plan.reason
        return record

    # ------------------------------------------------------------------ learning
    def _reweight(self):
        """MBAR over all rounds so far (:meth:`RoundLoop.reweight`)."""
        return self.loop.reweight(self._describe_mismatch)

    def _describe_mismatch(self, index: int) -> str:
        names = self._disagreeing_features(index)
        return ((f"The order parameter(s) {', '.join(names)} differ between OpenMM and numpy "
                 f"at the round's stored positions (periodicity?)" if names else
                 "No order parameter differs at the round's stored positions")
                + f". The campaign stopped; its frames are kept in "
                  f"{self.store.round_dir(index)}. Fix the order parameters and start "
                  f"a new campaign")

    def _cold(self, index: int) -> set[int]:
        """Seeds trained from scratch in round ``index`` (:meth:`RoundLoop.cold`)."""
        return self.loop.cold(index)

    def _rc_subset(self, index: int, n_frames: int) -> np.ndarray:
        """Frames the RC is fitted on (:meth:`RoundLoop.rc_subset`)."""
        return self.loop.rc_subset(index, n_frames)

    def _disagreeing_features(self, index: int) -> list[str]:
        """Names of the order parameters whose OpenMM and numpy values differ at the position
        snapshots of round ``index`` (an empty list when none does or none can be read)."""
        try:
            results = self._walker_results(index)
        except store.StoreFileError:
            return []
        positions = [r.snapshots for r in results if len(r.snapshots)]
        if not positions:
            return []
        boxes = [r.final_box_vectors for r in results if len(r.snapshots)]
        names = set()
        for pos, box in zip(positions, boxes, strict=True):
            pos = np.asarray(pos, dtype=float)
            box = None if box is None or np.size(box) == 0 else np.asarray(box, float)
            numpy_values = np.stack([f.evaluate(pos, box) for f in self.features], axis=1)
            openmm_values = openmm_feature_values(self.features, pos, box, self.sim.system)
            bad = np.max(np.abs(numpy_values - openmm_values), axis=0) > FEATURE_MISMATCH_TOL
            names |= {self.feature_names[i] for i in np.flatnonzero(bad)}
        return [n for n in self.feature_names if n in names]

    def _model_hooks(self, index: int) -> dict:
        """The RAVE step's model files: a model file already stored by an interrupted run is
        reused, a new model is stored as soon as it is trained; from round 1 on the seeds start
        from the previous round's models, except ``cold_seeds``."""
        seeds = self.loop.seeds(index)
        model_files = [self.store.model_name(seed) for seed in seeds]
        self.store.round_path(index, self.store.MODELS).mkdir(parents=True, exist_ok=True)

        def load(r: int, name: str):
            """A stored model file, or None when it is missing."""
            return self.store.model(r, name) if self.store.round_has(r, name) else None

        trained = [load(index, name) for name in model_files]
        for seed, name, model in zip(seeds, model_files, trained, strict=True):
            if model is not None:
                log.info("round %d: VAE seed %d loaded from %s", index, seed,
                         self.store.round_path(index, name))
        initial = [None] * len(seeds)
        if index > 0:
            cold = self.loop.cold(index)
            initial = [None if trained[m] is not None or m in cold
                       else load(index - 1, self.store.model_name(seed))
                       for m, seed in enumerate(self.loop.seeds(index - 1))]

        def store_model(m: int, model) -> None:
            self.store.save_model(index, model_files[m], model)
            store.fault_point("model_stored")

        return {"initial": initial, "trained": trained, "on_trained": store_model,
                "model_files": model_files}

    def _learn(self, index: int, timings: dict) -> RoundRecord:
        """The learning step (:meth:`RoundLoop.learn`), then its files."""
        cfg = self.config
        n_frames = np.array([len(f) for f in self.loop.frames])
        learned = self.loop.learn(
            index, timings, describe_mismatch=self._describe_mismatch,
            progress=cfg.output.progress,
            on_weights=lambda log_w, f: self.store.write_weights(index, log_w, f, n_frames),
            **self._model_hooks(index))
        self.store.write_profile(learned.centers, learned.profile, index)
        self.store.write_coordinate(index, learned.coordinate)
        self.store.write_bias(index, learned.bias)
        record = learned.record
        if cfg.output.figures and self.figures is not None:
            t0 = time.perf_counter()
            self._round_figure(self.store.round_path(index, self.store.FIGURE), record,
                               learned.model.chi, learned.log_weights, learned.centers,
                               learned.profile)
            timings["figure"] = time.perf_counter() - t0
        return record

    def _round_figure(self, path, record, chi, log_w, centers, profile) -> None:
        self.figures.round_figure(
            path,
            index=record.index,
            centers=centers,
            profile_kT=profile,
            exact_kT=self.loop.exact_profile(record.coefficients, centers),
            bias=self.loop.next_bias,
            kT=self.kT,
            frames=[f.features for f in self.loop.frames],
            coefficients=record.coefficients,
            potential=self.potential,
            chi_unit=self.chi_unit,
            bias_label=(f"static kT ln P bias built after round {record.index} (not "
                        f"applied: a next round runs OPES along this RC)"
                        if self.config.bias.method == "opes" else None),
        )

    def _write_final(self) -> None:
        if not self.records:
            return
        self.store.write_final_profile(self.records[-1].index)
        if self.config.output.figures and self.figures is not None:
            if self.loop.last_reweight is None:  # resumed with every round already complete
                self.loop.last_reweight = self._reweight()
            c = self.records[-1].coefficients
            chi = self.loop.last_reweight[0] @ c
            edges = np.linspace(chi.min(), chi.max(), PROFILE_BINS + 1)
            estimate = self.loop.bootstrap(chi, edges, FINAL_BOOTSTRAP, 0)
            self.figures.final_figure(
                self.store.path(self.store.FREE_ENERGY_FIGURE), centers=estimate.centers,
                profile_kT=estimate.free_energy, sigma_kT=estimate.sigma,
                exact_kT=self.loop.exact_profile(c, estimate.centers), records=self.records,
                feature_names=self.feature_names, chi_unit=self.chi_unit,
            )

    def _write_summary(self, converged: bool, stop_reason: str | None = None) -> dict:
        budget = self.config.sampling.max_total_steps
        used = steps_used(self.records)
        summary = {
            "temperature_K": float(self.config.system.temperature),
            "feature_names": self.feature_names,
            "converged": bool(converged),
            "system": self.sim.name,
            "walkers": int(self.config.sampling.walkers),
            "max_total_steps": budget,
            "steps_used": int(used),
            "steps_left": None if budget is None else int(budget - used),
            "stop_reason": stop_reason,
            "rounds": [r.to_summary() for r in self.records],
        }
        self.store.write_summary(summary)
        return summary
