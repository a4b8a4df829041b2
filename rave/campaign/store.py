"""The campaign directory: :class:`CampaignStore`, the one writer and reader of its files.

:class:`CampaignStore` owns the layout: it names the files (:mod:`rave.campaign.layout`, where
the layout is drawn), writes them (:mod:`rave.campaign.writer`, through the atomic writers of
:mod:`rave.files`) and reads them back (config, manifest, summary, features, a round's frames
as a :class:`rave.md.frames.Frames`, its bias states, RC, next bias, weights, records, walker
files and models). The campaign, the analysis, the export and ``rave status`` go through it; a
damaged or missing file is a :class:`StoreFileError` naming it.

The guard of the work directory (the lock, the checks before a new campaign, rave's own
temporaries, ``--redo-round``) is :mod:`rave.campaign.workdir`; a round's records
(:class:`RoundRecord`, :class:`RoundBias`) are :mod:`rave.campaign.records`. Their names are
importable from this module too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..files import TEMPORARY, copy_file, write_file, write_json, write_npz, write_text
from .records import RoundBias, RoundRecord
from .workdir import (
    CAMPAIGN_MARKERS,
    FORMAT,
    FORMAT_VERSION,
    LOCK,
    MANIFEST,
    RAVE_FILE,
    StoreFileError,
    WorkdirBusy,
    WorkdirError,
    campaign_holding,
    check_new_workdir,
    discard_rounds_from,
    fault_point,
    holds_resumable_campaign,
    is_rave_temporary,
    load_json,
    load_npz,
    lock_workdir,
    read_json,
    read_npz,
    remove_stale_temporaries,
    round_dir,
)
from .writer import StoreWriter, write_dcd

__all__ = [
    "CAMPAIGN_MARKERS",
    "FORMAT",
    "FORMAT_VERSION",
    "LOCK",
    "MANIFEST",
    "RAVE_FILE",
    "TEMPORARY",
    "CampaignStore",
    "RoundBias",
    "RoundRecord",
    "StoreFileError",
    "WorkdirBusy",
    "WorkdirError",
    "campaign_holding",
    "check_new_workdir",
    "copy_file",
    "discard_rounds_from",
    "fault_point",
    "holds_resumable_campaign",
    "is_rave_temporary",
    "load_json",
    "load_npz",
    "lock_workdir",
    "read_json",
    "read_npz",
    "remove_stale_temporaries",
    "round_dir",
    "write_dcd",
    "write_file",
    "write_json",
    "write_npz",
    "write_text",
]


class CampaignStore(StoreWriter):
    """A campaign's work directory: the one owner of its layout, writer and reader of its files.

    File names are spelled in :class:`~rave.campaign.layout.StoreLayout`; writes
    (:class:`~rave.campaign.writer.StoreWriter`) go through the atomic writers of :mod:`rave.files`,
    and the files that complete a walker, a round or the manifest are fsynced with their directory.
    A store never writes outside its work directory. Every reader raises :class:`StoreFileError`
    naming a missing or damaged file; ``index`` is a round from 0.

    >>> store = CampaignStore("runs/rdw")                      # doctest: +SKIP
    >>> [store.frames(r) for r in store.complete_rounds()]     # doctest: +SKIP
    """

    # ------------------------------------------------------------------ readers
    @staticmethod
    def _parsed(path: Path, build: Callable):
        """``build(JSON of path)``; a malformed file becomes a StoreFileError naming it."""
        data = load_json(path)
        try:
            return build(data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise StoreFileError(f"{path} is not a valid rave {path.name} (missing or malformed "
                                 f"{error})") from error

    def manifest(self) -> dict:
        """``manifest.json``, checked to be a rave campaign manifest this rave can resume.

        Raises StoreFileError (missing, damaged) or WorkdirError (not rave's, or a newer format).
        """
        path = self.path(self.MANIFEST)
        try:
            manifest = load_json(path)
        except StoreFileError as error:
            raise StoreFileError(
                f"{error}. Nothing was changed; restore it from a backup (it records the "
                f"campaign's input-file hashes and runs, which cannot be recomputed)") from error
        if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
                or not isinstance(manifest.get("version"), int)
                or not isinstance(manifest.get("runs", []), list)):
            raise WorkdirError(f"{path} is not a rave campaign manifest; nothing was changed. "
                               f"Restore it from a backup, or choose another --workdir")
        if manifest["version"] > FORMAT_VERSION:
            raise WorkdirError(
                f"{self.workdir} was written by a newer rave (store format "
                f"{manifest['version']} > {FORMAT_VERSION}); upgrade rave to resume it")
        return manifest

    def config(self) -> dict:
        """``config.json`` as stored (a JSON object of sections)."""
        return load_json(self.path(self.CONFIG))

    def resume_config(self, manifest: dict) -> dict:
        """``config.json`` for a resume; restored from ``manifest["config"]`` when missing."""
        path = self.path(self.CONFIG)
        if not path.exists() and isinstance(manifest.get("config"), dict):
            self.write_config(manifest["config"])
            logging.getLogger("rave").info("%s was missing: restored from %s", path,
                                           self.MANIFEST)
        try:
            stored = load_json(path)
        except StoreFileError as error:
            fix = ("remove it and rerun: `rave run` restores it from manifest.json"
                   if isinstance(manifest.get("config"), dict) else "restore it from a backup")
            raise StoreFileError(f"{error}. Nothing was changed; {fix}") from error
        if not isinstance(stored, dict):
            raise StoreFileError(f"{path} is not a rave config (a JSON object of sections). "
                                 f"Nothing was changed; restore it from a backup")
        return stored

    def summary(self) -> dict:
        """``summary.json``."""
        return load_json(self.path(self.SUMMARY))

    def feature_dicts(self) -> list:
        """``features.json`` as stored (each order parameter's ``to_dict()``)."""
        return load_json(self.path(self.FEATURES))

    def features(self) -> list:
        """The order parameters of ``features.json`` (see
        :func:`~rave.md.features.feature_from_dict`).
        """
        from ..md.features import feature_from_dict

        return [feature_from_dict(d) for d in self.feature_dicts()]

    def prepared(self) -> dict[str, np.ndarray] | None:
        """``prepared.npz`` (``positions`` in nm, and what else was prepared), or None if absent."""
        path = self.path(self.PREPARED)
        return load_npz(path, ("positions",)) if path.exists() else None

    def round_record(self, index: int) -> RoundRecord:
        """``round.json`` of round ``index``."""
        return self._parsed(self.round_path(index, self.ROUND), RoundRecord.from_summary)

    def frames(self, index: int):
        """The :class:`rave.md.frames.Frames` of round ``index`` (``frames.npz``).

        Features, applied bias (kJ/mol), time (ps); ``walker`` labels each frame's walker (None: a
        store
        without them, one walker). A per-frame array of the wrong shape is a StoreFileError.
        """
        from ..md.frames import Frames

        path = self.round_path(index, self.FRAMES)
        data = load_npz(path, self.FRAMES_ARRAYS)
        walker = data.get("walker")
        if walker is not None:
            if walker.shape != (len(data["features"]),):
                raise StoreFileError(f"{path}: walker has shape {walker.shape}, expected "
                                     f"({len(data['features'])},)")
            walker = walker.astype(np.int64)
        optional = {}
        for name in ("potential_kjmol", "state"):
            value = data.get(name)
            if value is not None:
                if value.shape != (len(data["features"]),):
                    raise StoreFileError(f"{path}: {name} has shape {value.shape}, expected "
                                         f"({len(data['features'])},)")
                optional[name] = value.astype(np.int64) if name == "state" else value
        return Frames(data["features"], data["bias_kjmol"], data["time_ps"], walker=walker,
                      **optional)

    def applied_bias(self, index: int, required: bool = False) -> dict | None:
        """``bias_applied.json`` of round ``index`` as stored; None when absent (the unbiased round)
        unless ``required``.
        """
        path = self.round_path(index, self.BIAS_APPLIED)
        if not required and not path.exists():
            return None
        return self._parsed(path, dict)

    def bias_states(self, index: int, n_frames: int,
                    required: bool = False) -> list[tuple[object, int]]:
        """The MBAR states (bias, number of frames) of round ``index``'s ``n_frames`` frames, in
        frame order.
        """
        return self.round_bias(index, n_frames, required).states

    def round_bias(self, index: int, n_frames: int, required: bool = False) -> RoundBias:
        """Round ``index``'s :class:`RoundBias` (states, applied bias, adaptive) from one read of
        ``bias_applied.json``.

        Absent and not ``required``: the round is unbiased.
        """
        from ..learn.bias import Bias, applied_states

        path = self.round_path(index, self.BIAS_APPLIED)
        if not required and not path.exists():
            return RoundBias(applied_states(None, n_frames), None, False)
        def parse(data: dict) -> RoundBias:
            if data.get("method") == "explore":
                return RoundBias(applied_states(data, n_frames), None, False)
            return RoundBias(applied_states(data, n_frames), Bias.from_dict(data),
                             "states" in data)

        return self._parsed(path, parse)

    def bias_applied(self, index: int):
        """The bias round ``index`` was sampled under (of an adaptive round, the one at its end), or
        None (unbiased or exploring).
        """
        from ..bias_grid import Bias

        path = self.round_path(index, self.BIAS_APPLIED)
        if not path.exists():
            return None
        return self._parsed(path, lambda data: None if data.get("method") == "explore"
                            else Bias.from_dict(data))

    def is_adaptive(self, index: int) -> bool:
        """Whether round ``index`` ran OPES (its ``bias_applied.json`` holds ``states``)."""
        data = self.applied_bias(index)
        return data is not None and "states" in data and data.get("method") != "explore"

    def bias(self, index: int):
        """``bias.json`` of round ``index``: the :class:`~rave.bias_grid.Bias` built after it,
        applied in the next round.
        """
        from ..bias_grid import Bias

        return self._parsed(self.round_path(index, self.BIAS), Bias.from_dict)

    def coordinate(self, index: int) -> dict:
        """``coordinate.json`` of round ``index``: RC coefficients (a finite vector), KL, model
        files.
        """
        def build(data: dict) -> dict:
            c = np.asarray(data["coefficients"], dtype=float)
            if c.ndim != 1 or not c.size or not np.isfinite(c).all():
                raise ValueError("coefficients: not a finite vector")
            return dict(data)

        return self._parsed(self.round_path(index, self.COORDINATE), build)

    def model_files(self, index: int) -> list[str]:
        """The model files listed by ``coordinate.json`` of round ``index``."""
        return self._parsed(self.round_path(index, self.COORDINATE),
                            lambda data: [str(f) for f in data["model_files"]])

    def model(self, index: int, name: str):
        """The VAE ``name`` of round ``index`` (a truncated or corrupted file: StoreFileError)."""
        from ..learn.vae import VAEModel

        path = self.round_path(index, name)
        if not path.is_file():
            raise StoreFileError(f"{path} is missing")
        try:
            return VAEModel.load(path)
        except Exception as error:  # torch / zip errors of a damaged file
            raise StoreFileError(f"{path} cannot be read (truncated or corrupted?): "
                                 f"{error}") from error

    def weights(self, index: int) -> dict[str, np.ndarray]:
        """``weights.npz`` of round ``index``: ``log_weights`` of every frame of rounds 0..index,
        ``free_energies``, ``frames_per_round``.
        """
        return load_npz(self.round_path(index, self.WEIGHTS), ("log_weights",))

    def walker(self, index: int, walker: int,
               required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """The arrays of ``round_NNN/walkers/walker_KK.npz``, which must hold ``required``."""
        return load_npz(self.walker_path(index, walker), required)
