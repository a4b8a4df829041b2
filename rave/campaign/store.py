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

    Every file name of the layout is spelled in :class:`~rave.campaign.layout.StoreLayout`;
    the campaign, the analysis, the export and ``rave status`` reach the files through a store.
    Writes (:class:`~rave.campaign.writer.StoreWriter`) go through the atomic writers of
    :mod:`rave.files` (a file with its final name is complete); the files that complete a walker
    or a round, and the manifest, are written durably (fsynced with their directory). A store
    never writes outside its work directory. Readers raise :class:`StoreFileError` naming the
    file and what is wrong with it.

    Parameters
    ----------
    workdir : path
        The work directory (it need not exist yet).

    Examples
    --------
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

        Returns
        -------
        dict
            The manifest.

        Raises
        ------
        StoreFileError
            It is missing or damaged.
        WorkdirError
            It is not a rave manifest, or a newer rave wrote the store.
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
        """``config.json`` as stored (a JSON object of sections).

        Returns
        -------
        dict
            The configuration.

        Raises
        ------
        StoreFileError
            It is missing or damaged.
        """
        return load_json(self.path(self.CONFIG))

    def resume_config(self, manifest: dict) -> dict:
        """``config.json`` for a resume; restored from the manifest's copy when missing.

        Parameters
        ----------
        manifest : dict
            The campaign's manifest (:meth:`manifest`); its ``config`` entry, when present,
            restores a missing ``config.json``.

        Returns
        -------
        dict
            The stored configuration.

        Raises
        ------
        StoreFileError
            It is damaged or not a config; the message says how to recover.
        """
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
        """``summary.json``.

        Returns
        -------
        dict
            The campaign's summary.

        Raises
        ------
        StoreFileError
            It is missing or damaged.
        """
        return load_json(self.path(self.SUMMARY))

    def feature_dicts(self) -> list:
        """``features.json`` as stored (each order parameter's ``to_dict()``).

        Returns
        -------
        list of dict
            The order parameters' dictionaries, in feature order.

        Raises
        ------
        StoreFileError
            It is missing or damaged.
        """
        return load_json(self.path(self.FEATURES))

    def features(self) -> list:
        """The order parameters of ``features.json``.

        Returns
        -------
        list of rave.md.features.Feature
            Each built by :func:`rave.md.features.feature_from_dict`, in feature order.

        Raises
        ------
        StoreFileError
            ``features.json`` is missing or damaged.
        """
        from ..md.features import feature_from_dict

        return [feature_from_dict(d) for d in self.feature_dicts()]

    def prepared(self) -> dict[str, np.ndarray] | None:
        """``prepared.npz`` (``positions`` and what else was prepared), or None when absent.

        Returns
        -------
        dict of str to np.ndarray or None
            The arrays by name (``positions`` in nm), or None.

        Raises
        ------
        StoreFileError
            It is damaged or lacks ``positions``.
        """
        path = self.path(self.PREPARED)
        return load_npz(path, ("positions",)) if path.exists() else None

    def round_record(self, index: int) -> RoundRecord:
        """``round.json`` of round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        RoundRecord
            The round's record.

        Raises
        ------
        StoreFileError
            It is missing or malformed.
        """
        return self._parsed(self.round_path(index, self.ROUND), RoundRecord.from_summary)

    def frames(self, index: int):
        """The frames of round ``index`` (``frames.npz``).

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        rave.md.frames.Frames
            Features, applied bias (kJ/mol), time (ps); its ``walker`` labels each frame's walker
            (None: a store without them, one walker).

        Raises
        ------
        StoreFileError
            The file is missing or damaged, lacks an array, or its ``walker`` has the wrong shape.
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
        """``bias_applied.json`` of round ``index`` as stored.

        Parameters
        ----------
        index : int
            The round, from 0.
        required : bool, optional
            Raise when the file is absent instead of returning None.

        Returns
        -------
        dict or None
            Its content; None when absent (the unbiased round) unless ``required``.

        Raises
        ------
        StoreFileError
            It is damaged, or absent while ``required``.
        """
        path = self.round_path(index, self.BIAS_APPLIED)
        if not required and not path.exists():
            return None
        return self._parsed(path, dict)

    def bias_states(self, index: int, n_frames: int,
                    required: bool = False) -> list[tuple[object, int]]:
        """The MBAR states of round ``index``'s ``n_frames`` frames.

        Parameters
        ----------
        index : int
            The round, from 0.
        n_frames : int
            The round's number of frames.
        required : bool, optional
            Raise when ``bias_applied.json`` is absent instead of taking the round as unbiased.

        Returns
        -------
        list of tuple of (object, int)
            :func:`rave.learn.bias.applied_states` of its ``bias_applied.json``: each state's bias
            and its number of frames, in frame order.

        Raises
        ------
        StoreFileError
            The file is damaged, or absent while ``required``.
        """
        return self.round_bias(index, n_frames, required).states

    def round_bias(self, index: int, n_frames: int, required: bool = False) -> RoundBias:
        """Round ``index``'s MBAR states, applied bias and kind, from one read of its
        ``bias_applied.json``.

        Parameters
        ----------
        index : int
            The round, from 0.
        n_frames : int
            The round's number of frames.
        required : bool, optional
            Raise when ``bias_applied.json`` is absent instead of taking the round as unbiased.

        Returns
        -------
        RoundBias
            Its states, its applied bias and whether it was adaptive.

        Raises
        ------
        StoreFileError
            The file is damaged, or absent while ``required``.
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
        """The bias round ``index`` was sampled under, or None (the unbiased round).

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        rave.bias_grid.Bias or None
            The static bias; of an adaptive round, the one in force at its end; None for an
            unbiased or exploring round.

        Raises
        ------
        StoreFileError
            Its ``bias_applied.json`` is damaged.
        """
        from ..bias_grid import Bias

        path = self.round_path(index, self.BIAS_APPLIED)
        if not path.exists():
            return None
        return self._parsed(path, lambda data: None if data.get("method") == "explore"
                            else Bias.from_dict(data))

    def is_adaptive(self, index: int) -> bool:
        """Whether round ``index`` ran OPES (its ``bias_applied.json`` lists blocks).

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        bool
            True when its ``bias_applied.json`` holds ``states``.
        """
        data = self.applied_bias(index)
        return data is not None and "states" in data and data.get("method") != "explore"

    def bias(self, index: int):
        """``bias.json`` of round ``index``: the bias built after it.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        rave.bias_grid.Bias
            The bias applied in the next round.

        Raises
        ------
        StoreFileError
            It is missing or malformed.
        """
        from ..bias_grid import Bias

        return self._parsed(self.round_path(index, self.BIAS), Bias.from_dict)

    def coordinate(self, index: int) -> dict:
        """``coordinate.json`` of round ``index``: RC coefficients, KL, model files.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        dict
            Its content.

        Raises
        ------
        StoreFileError
            It is missing or malformed.
        """
        def build(data: dict) -> dict:
            c = np.asarray(data["coefficients"], dtype=float)
            if c.ndim != 1 or not c.size or not np.isfinite(c).all():
                raise ValueError("coefficients: not a finite vector")
            return dict(data)

        return self._parsed(self.round_path(index, self.COORDINATE), build)

    def model_files(self, index: int) -> list[str]:
        """The model files ``coordinate.json`` of round ``index`` lists.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        list of str
            Names within the round folder (:meth:`model_name`).

        Raises
        ------
        StoreFileError
            ``coordinate.json`` is missing or malformed.
        """
        return self._parsed(self.round_path(index, self.COORDINATE),
                            lambda data: [str(f) for f in data["model_files"]])

    def model(self, index: int, name: str):
        """The VAE ``name`` of round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.
        name : str
            The model file within the round folder (:meth:`model_name`).

        Returns
        -------
        rave.learn.vae.VAEModel
            The loaded model.

        Raises
        ------
        StoreFileError
            The file is missing, truncated or corrupted.
        """
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
        """``weights.npz`` of round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.

        Returns
        -------
        dict of str to np.ndarray
            ``log_weights`` of every frame of rounds 0..index, ``free_energies`` and
            ``frames_per_round``.

        Raises
        ------
        StoreFileError
            It is missing, damaged or lacks ``log_weights``.
        """
        return load_npz(self.round_path(index, self.WEIGHTS), ("log_weights",))

    def walker(self, index: int, walker: int,
               required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
        """The arrays of ``round_NNN/walkers/walker_KK.npz``.

        :meth:`rave.campaign.walkers.WalkerResult.from_arrays` reads them.

        Parameters
        ----------
        index : int
            The round, from 0.
        walker : int
            The walker, from 0.
        required : tuple of str, optional
            The arrays the file must hold.

        Returns
        -------
        dict of str to np.ndarray
            The arrays by name.

        Raises
        ------
        StoreFileError
            The file is missing or damaged, or lacks one of ``required``.
        """
        return load_npz(self.walker_path(index, walker), required)
