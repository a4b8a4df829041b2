"""Resuming a campaign: what a resume may change, and reading back the rounds a campaign holds.

A config that changes what the stored data mean (system, temperature, features, the MD of a
round, the exploration) is refused with the differences named (:func:`config_differences`);
other changes are recorded (:func:`recorded_changes`). :class:`CampaignResume` holds the
campaign's resume steps: checking the work directory, rebuilding a lost manifest, reading the
complete rounds back into the loop, and refusing a budget below the steps already spent.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from pathlib import Path

from .. import __version__
from . import store
from .config import ExploreConfig
from .schedule import steps_used

log = logging.getLogger("rave")

#: [sampling] keys that define what a round's stored frames are; a resume may not change them
#: (max_total_steps and first_round_steps may change: each round stores its own steps, and a
#: budget below the steps already spent is refused, see Campaign._check_budget_not_spent)
ROUND_DEFINING = ("steps_per_round", "report_interval", "walkers", "seed", "timestep",
                  "friction", "snapshots")
#: keys a resume may change without it being recorded: they do not change what is computed
UNRECORDED = ("sampling.rounds", "sampling.scheduler", "sampling.workers", "vae.threads",
              "output.progress",
              "output.figures")

def config_differences(stored: dict, current: dict) -> list[str]:
    """What changed between two config dicts in what defines the stored data.

    That is every ``[system]`` and ``[explore]`` key (round 0's MD), the round-defining
    ``[sampling]`` keys (:data:`ROUND_DEFINING`) and the ``[[features]]``: a resume that changes
    them is refused.
    """
    diffs = []
    old_sys, new_sys = stored.get("system", {}), current.get("system", {})
    for key in sorted(set(old_sys) | set(new_sys)):
        if old_sys.get(key) != new_sys.get(key):
            diffs.append(f"system.{key}: stored {old_sys.get(key)!r}, now {new_sys.get(key)!r}")
    old_s, new_s = stored.get("sampling", {}), current.get("sampling", {})
    for key in ROUND_DEFINING:
        if old_s.get(key) != new_s.get(key):
            diffs.append(f"sampling.{key}: stored {old_s.get(key)!r}, now {new_s.get(key)!r}")
    if stored.get("features", []) != current.get("features", []):
        diffs.append("[[features]] differ from the stored ones")
    old_x = dataclasses.asdict(ExploreConfig(**stored.get("explore", {})))
    new_x = dataclasses.asdict(ExploreConfig(**current.get("explore", {})))
    for key in sorted(old_x):
        if old_x[key] != new_x[key]:
            diffs.append(f"explore.{key}: stored {old_x[key]!r}, now {new_x[key]!r}")
    return diffs


def _flat(config: dict) -> dict:
    return {f"{section}.{key}": value for section, values in config.items()
            if isinstance(values, dict) for key, value in values.items()}


def recorded_changes(stored: dict, current: dict) -> list[str]:
    """Keys a resume changes that a run records rather than refuses.

    Every key except those of :func:`config_differences` (refused) and :data:`UNRECORDED`.
    """
    old, new = _flat(stored), _flat(current)
    refused = {f"sampling.{k}" for k in ROUND_DEFINING}
    changes = []
    for key in sorted(set(old) | set(new)):
        if (key.startswith(("system.", "explore.")) or key in refused
                or key in UNRECORDED):
            continue
        if old.get(key) != new.get(key):
            changes.append(f"{key}: stored {old.get(key)!r}, now {new.get(key)!r}")
    return changes


class CampaignResume:
    """The resume steps of :class:`rave.campaign.Campaign` (a mixin: it reads the campaign's
    ``config``, ``store``, ``workdir``, ``loop`` and ``records``)."""

    def _check_resumable(self) -> dict:
        manifest = self.store.manifest()
        stored = self.store.resume_config(manifest)
        diffs = config_differences(stored, self.config.to_dict())
        if not self.store.has(self.store.FEATURES) and not diffs:
            # derived from the config, which matches in everything that defines the features
            self.store.write_features(self._features_dicts())
            log.info("%s was missing: rewritten from the config",
                     self.store.path(self.store.FEATURES))
        try:
            stored_features = self.store.feature_dicts()
        except store.StoreFileError as error:
            raise store.StoreFileError(f"{error}. Nothing was changed; remove it and rerun: "
                                       f"`rave run` rewrites it from {self.store.CONFIG}"
                                       ) from error
        if stored_features != self._features_dicts():
            names = [f.get("name") for f in stored_features]
            diffs.append(f"order parameters: stored {names}, now {self.feature_names}")
        for name, digest in self._input_hashes().items():
            if manifest.get("input_sha256", {}).get(name) != digest:
                diffs.append(f"system.{name}: {self.sim.input_files[name]} changed since the "
                             f"campaign started (its SHA-256 differs)")
        if diffs and not self._holds_md():
            # nothing stored means nothing to protect: e.g. round 0's MD failed and is rerun
            # with a smaller time step
            log.warning("%s holds no MD yet; it starts afresh with this config (%s)",
                        self.workdir, "; ".join(diffs))
            self.store.write_config(self.config.to_dict())
            self.store.write_features(self._features_dicts())
            for source in self.sim.input_files.values():
                store.copy_file(Path(source), self.store.path(self.store.input_name(source)))
            if any(d.startswith("system.") for d in diffs) and self.store.has(
                    self.store.PREPARED):
                self.store.path(self.store.PREPARED).unlink()
            manifest["config"] = self.config.to_dict()
            manifest["input_sha256"] = self._input_hashes()
            self.store.write_manifest(manifest)
            return manifest
        if diffs:
            raise store.WorkdirError(
                f"cannot resume {self.workdir}: the config changes what its stored data mean:\n  "
                + "\n  ".join(diffs)
                + "\nNothing was changed. Run with the stored config "
                  f"({self.store.path(self.store.CONFIG)}) or choose another --workdir")
        return manifest

    def _rebuild_manifest(self) -> None:
        """``manifest.json`` anew from the stored config.json (``rave run --rebuild-manifest``)."""
        if self.store.holds_campaign():
            return  # another rave restored it meanwhile
        config_path = self.store.path(self.store.CONFIG)
        if not config_path.is_file():
            raise store.WorkdirError(
                f"--rebuild-manifest: {self.workdir} holds no {self.store.CONFIG} to rebuild "
                f"{store.MANIFEST} from. Nothing was changed")
        stored = store.load_json(config_path)
        diffs = config_differences(stored, self.config.to_dict())
        if diffs:
            raise store.WorkdirError(
                f"--rebuild-manifest: {config_path} differs from this config in what defines "
                f"the stored data:\n  " + "\n  ".join(diffs)
                + f"\nNothing was changed. Run with the stored config ({config_path})")
        self.store.write_manifest({
            "format": store.FORMAT, "version": store.FORMAT_VERSION,
            "rave_version": __version__, "system": self.sim.name,
            "input_sha256": self._input_hashes(), "config": stored, "runs": [],
            "rebuilt": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        })
        log.warning("%s was rebuilt from %s; the record of earlier runs was lost",
                    self.store.path(store.MANIFEST), config_path)

    def _stored_walker_steps(self, index: int) -> int | None:
        """Steps per walker of round ``index``'s walkers already stored by an interrupted run
        (frames x report_interval of the first one that reads back), or None."""
        for k in range(self.config.sampling.walkers):
            if not self.store.walker_path(index, k).is_file():
                continue
            try:
                frames = len(self.store.walker(index, k, ("features",))["features"])
            except store.StoreFileError:
                continue  # reported by name when the round reads its walkers
            return frames * self.config.sampling.report_interval
        return None

    def _check_budget_not_spent(self) -> None:
        """Refuse a resume whose max_total_steps is below the steps already spent (the
        complete rounds and a round whose walkers are partly stored)."""
        s = self.config.sampling
        if s.max_total_steps is None:
            return
        spent = steps_used(self.records)
        where = f"round(s) 0..{len(self.records) - 1}" if self.records else "no round"
        stored = self._stored_walker_steps(len(self.records))
        if stored is not None:
            spent += stored * s.walkers
            where += f" and the walkers of round {len(self.records)} ({stored} steps each)"
        if s.max_total_steps < spent:
            raise store.WorkdirError(
                f"cannot resume {self.workdir}: sampling.max_total_steps ({s.max_total_steps}) "
                f"is below the {spent} MD steps already spent or committed ({where}, over all "
                f"walkers). Nothing was changed. Raise sampling.max_total_steps to at least "
                f"{spent}")

    def _discard_rounds_from(self, index: int) -> None:
        """--redo-round: remove round ``index`` (but its readable walker files) and later."""
        removed = self.store.discard_rounds_from(index)
        log.info("--redo-round %d: %d file(s) of round %d and later removed, to be recomputed",
                 index, len(removed), index)

    def _load_complete_rounds(self) -> None:
        """Records, frames, biases and weights of the complete rounds, in order; their model
        files are checked to read back (analysis and export load them)."""
        st = self.store
        for index in st.complete_rounds():
            try:
                record = st.round_record(index)
                if record.steps is None:  # stores before the schedule: the fixed one
                    record.steps = self.config.sampling.round_steps
                frames = st.frames(index)
                bias = st.round_bias(index, len(frames), required=index > 0)
                states, adaptive = bias.states, bias.adaptive
                weights = st.weights(index)
                next_bias = st.bias(index)
                for name in st.model_files(index):
                    st.model(index, name)
            except store.StoreFileError as error:
                raise store.StoreFileError(
                    f"{error}. Round {index} is complete but this file of it is damaged; "
                    f"nothing was changed. {st.redo_advice(index)} (or restore the file from "
                    f"a backup)") from error
            self.loop.add_complete_round(record, frames, states, adaptive,
                                         weights["log_weights"], next_bias)
        loop = self.loop
        total = sum(len(f) for f in loop.frames)
        if loop.previous_log_weights is not None and len(loop.previous_log_weights) != total:
            raise store.StoreFileError(
                f"{st.round_path(len(loop.frames) - 1, st.WEIGHTS)} has "
                f"{len(loop.previous_log_weights)} weights for {total} stored frames "
                f"(corrupted?)")
