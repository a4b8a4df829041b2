"""The writers of a campaign's files: :class:`StoreWriter`, and the DCD writer of the walkers.

Every write goes through the atomic writers of :mod:`rave.files` (a file with its final name is
complete) and stays inside the work directory; the files that complete a walker or a round, and
the manifest, are written durably (fsynced with their directory). A round computes, then the
store writes: nothing here computes what it stores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..files import copy_file, write_file, write_json, write_npz, write_text
from .layout import StoreLayout
from .records import RoundRecord
from .workdir import (
    FORMAT,
    FORMAT_VERSION,
    StoreFileError,
    WorkdirError,
    check_new_workdir,
    discard_rounds_from,
    load_npz,
)


def write_dcd(path: Path, positions_nm: np.ndarray, box_nm: np.ndarray | None = None) -> None:
    """Write positions as a DCD trajectory (mdtraj's writer), durably and atomically.

    Parameters
    ----------
    path : path
        The ``.dcd`` file; its folder is created if missing.
    positions_nm : np.ndarray, shape=(n_frames, n_particles, 3)
        The positions, nm (stored in the DCD's Angstrom, float32).
    box_nm : np.ndarray or None, shape=(3, 3)
        Periodic box vectors written with every frame, nm; None: no unit cell.
    """
    from mdtraj.formats import DCDTrajectoryFile
    from mdtraj.utils import box_vectors_to_lengths_and_angles

    xyz = 10.0 * np.asarray(positions_nm, dtype=np.float32)
    lengths = angles = None
    if box_nm is not None:
        a, b, c = (10.0 * np.asarray(box_nm, dtype=float).reshape(3, 3))
        cell = box_vectors_to_lengths_and_angles(a, b, c)
        lengths = np.tile(np.array(cell[:3], dtype=np.float32), (len(xyz), 1))
        angles = np.tile(np.array(cell[3:], dtype=np.float32), (len(xyz), 1))

    def write(tmp: Path) -> None:
        with DCDTrajectoryFile(str(tmp), "w", force_overwrite=True) as handle:
            handle.write(xyz, cell_lengths=lengths, cell_angles=angles)

    write_file(path, write, durable=True)


class StoreWriter(StoreLayout):
    """The writers of a campaign's files, by the names of :class:`~rave.campaign.layout.
    StoreLayout`; :class:`rave.campaign.store.CampaignStore` adds the readers.

    Parameters
    ----------
    workdir : path
        The work directory (it need not exist yet).
    """

    # ------------------------------------------------------------------ writers
    def write_file(self, name: str | os.PathLike, write: Callable[[Path], None],
                   durable: bool = False) -> Path:
        """Write ``name`` inside the work directory with ``write(temporary_path)``, atomically.

        Parameters
        ----------
        name : str or path
            The file, relative to the work directory or a path inside it.
        write : callable
            ``write(temporary_path)`` writes the content (:func:`write_file`).
        durable : bool, optional
            Fsync the file and then its directory.

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ValueError
            ``name`` lies outside the work directory.
        """
        path = self.path(name)
        write_file(path, write, durable)
        return path

    def write_text(self, name: str | os.PathLike, text: str, durable: bool = False) -> Path:
        """Write text to ``name`` inside the work directory, atomically.

        Parameters
        ----------
        name : str or path
            The file, relative to the work directory or a path inside it.
        text : str
            Its content.
        durable : bool, optional
            Fsync the file and then its directory.

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ValueError
            ``name`` lies outside the work directory.
        """
        path = self.path(name)
        write_text(path, text, durable)
        return path

    def write_json(self, name: str | os.PathLike, data, durable: bool = False) -> Path:
        """Write ``data`` as indented JSON to ``name`` inside the work directory, atomically.

        Parameters
        ----------
        name : str or path
            The file, relative to the work directory or a path inside it.
        data : object
            What ``json.dumps`` can encode.
        durable : bool, optional
            Fsync the file and then its directory.

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ValueError
            ``name`` lies outside the work directory.
        """
        path = self.path(name)
        write_json(path, data, durable)
        return path

    def write_npz(self, name: str | os.PathLike, durable: bool = False,
                  **arrays: np.ndarray) -> Path:
        """Write ``arrays`` (``np.savez``) to ``name`` inside the work directory, atomically.

        Parameters
        ----------
        name : str or path
            The file, relative to the work directory or a path inside it.
        durable : bool, optional
            Fsync the file and then its directory.
        **arrays : np.ndarray
            The arrays, by the names they are stored under.

        Returns
        -------
        Path
            The path written.

        Raises
        ------
        ValueError
            ``name`` lies outside the work directory.
        """
        path = self.path(name)
        write_npz(path, durable, **arrays)
        return path

    @staticmethod
    def json_bytes(data) -> bytes:
        """The bytes :meth:`write_json` writes for ``data``.

        Parameters
        ----------
        data : object
            What ``json.dumps`` can encode.

        Returns
        -------
        bytes
            Indented JSON with a final newline, UTF-8.
        """
        return (json.dumps(data, indent=2) + "\n").encode()

    def start_files(self, config: dict, features: list[dict],
                    inputs: list[str | os.PathLike]) -> dict[str, bytes]:
        """What :meth:`initialise` writes before the manifest.

        That is what an interrupted start leaves, which a new start may find
        (:func:`check_new_workdir`).

        Parameters
        ----------
        config : dict
            The validated configuration (``config.json``).
        features : list of dict
            Each order parameter's ``to_dict()`` (``features.json``).
        inputs : list of str or path
            The input files copied into ``inputs/``.

        Returns
        -------
        dict of str to bytes
            Name relative to the work directory -> content.
        """
        own = {self.CONFIG: self.json_bytes(config), self.FEATURES: self.json_bytes(features)}
        for source in inputs:
            own[self.input_name(source)] = Path(source).read_bytes()
        return own

    def check_new(self, own: dict[str, bytes] | None = None) -> None:
        """:func:`check_new_workdir` of this work directory.

        Parameters
        ----------
        own : dict of str to bytes, optional
            What this campaign writes before its manifest (:meth:`start_files`).

        Raises
        ------
        WorkdirError
            The work directory is a file, or holds something else.
        """
        check_new_workdir(self.workdir, own)

    def initialise(self, config: dict, features: list[dict], inputs: list[str | os.PathLike],
                   manifest: dict) -> None:
        """Start a new campaign: config.json, features.json, the input files, then the manifest.

        The input files are copied into ``inputs/``; the manifest is written last, durably, with
        ``format`` and ``version`` first.

        Parameters
        ----------
        config : dict
            The validated configuration.
        features : list of dict
            Each order parameter's ``to_dict()``.
        inputs : list of str or path
            The input files of a bring-your-own system (PDB, System XML).
        manifest : dict
            The manifest's other entries (rave version, input-file hashes, runs).
        """
        self.write_config(config)
        self.write_features(features)
        for source in inputs:
            copy_file(Path(source), self.path(self.input_name(source)))
        self.write_manifest({"format": FORMAT, "version": FORMAT_VERSION, **manifest})

    def write_manifest(self, manifest: dict) -> None:
        """``manifest.json``, durably.

        Parameters
        ----------
        manifest : dict
            Its content (``format``, ``version``, rave version, input-file hashes, runs).
        """
        self.write_json(self.MANIFEST, manifest, durable=True)

    def write_config(self, config: dict) -> None:
        """``config.json``: the validated configuration.

        Parameters
        ----------
        config : dict
            The configuration, a JSON object of sections.
        """
        self.write_json(self.CONFIG, config)

    def write_features(self, features: list[dict]) -> None:
        """``features.json``: each order parameter's ``to_dict()``.

        Parameters
        ----------
        features : list of dict
            The order parameters' ``to_dict()``, in feature order.
        """
        self.write_json(self.FEATURES, features)

    def write_summary(self, summary: dict) -> None:
        """``summary.json``.

        Parameters
        ----------
        summary : dict
            The campaign's summary (rounds, RC, KL, frames, steps, budget, why it stopped).
        """
        self.write_json(self.SUMMARY, summary)

    def write_prepared(self, state: dict) -> None:
        """``prepared.npz``: the prepared start (arrays; None entries are left out).

        Parameters
        ----------
        state : dict
            Name -> array-like (``positions`` in nm, and what else was prepared) or None.
        """
        self.write_npz(self.PREPARED, **{k: np.asarray(v) for k, v in state.items()
                                         if v is not None})

    def write_walker(self, index: int, walker: int, arrays: dict) -> None:
        """``round_NNN/walkers/walker_KK.npz``, durably: it completes the walker.

        With a ``trajectory`` array (positions in nm, ``[output] dcd_interval``), the
        trajectory is written first, durably and atomically, as ``walker_KK.dcd``
        (:meth:`walker_trajectory_path`), and left out of the ``.npz``: a walker whose file is
        stored always has its whole DCD, and a walker run again (no ``.npz``) replaces it.

        Parameters
        ----------
        index : int
            The round, from 0.
        walker : int
            The walker, from 0.
        arrays : dict
            Name -> array (:meth:`rave.campaign.walkers.WalkerResult.to_arrays`).
        """
        arrays = dict(arrays)
        trajectory = arrays.pop("trajectory", None)
        if trajectory is not None:
            write_dcd(self.walker_trajectory_path(index, walker), trajectory,
                      arrays.get("trajectory_box"))
        self.write_npz(self.walker_path(index, walker), durable=True, **arrays)

    def write_frames(self, index: int, frames) -> None:
        """``round_NNN/frames.npz`` from a :class:`rave.md.frames.Frames`, durably.

        Parameters
        ----------
        index : int
            The round, from 0.
        frames : rave.md.frames.Frames
            All walkers' frames; their ``walker`` labels are stored too (all 0 when None).
        """
        walker = (np.zeros(len(frames), dtype=np.int64) if frames.walker is None
                  else frames.walker)
        optional = {name: value for name in ("potential_kjmol", "state")
                    if (value := getattr(frames, name)) is not None}
        self.write_npz(self.round_path(index, self.FRAMES), durable=True,
                       features=frames.features, bias_kjmol=frames.bias_kjmol,
                       time_ps=frames.time_ps, walker=walker, **optional)

    def write_bias_applied(self, index: int, data: dict) -> None:
        """``round_NNN/bias_applied.json``: the bias round ``index`` was sampled under.

        Parameters
        ----------
        index : int
            The round, from 0.
        data : dict
            The static bias's ``to_dict()``, or the adaptive (OPES) blocks.
        """
        self.write_json(self.round_path(index, self.BIAS_APPLIED), data)

    def write_weights(self, index: int, log_weights: np.ndarray, free_energies: np.ndarray,
                      frames_per_round: np.ndarray) -> None:
        """``round_NNN/weights.npz``: MBAR over rounds 0..index.

        Parameters
        ----------
        index : int
            The round, from 0.
        log_weights : np.ndarray, shape=(n_frames,)
            The MBAR log-weight of every frame of rounds 0..index.
        free_energies : np.ndarray
            MBAR's f_k, per state, kT.
        frames_per_round : np.ndarray
            The number of frames of each round 0..index.
        """
        self.write_npz(self.round_path(index, self.WEIGHTS), log_weights=log_weights,
                       free_energies=free_energies, frames_per_round=frames_per_round)

    def write_coordinate(self, index: int, data: dict) -> None:
        """``round_NNN/coordinate.json``: the RC learned after round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.
        data : dict
            RC coefficients, per-model KL, model files, spurious models.
        """
        self.write_json(self.round_path(index, self.COORDINATE), data)

    def write_bias(self, index: int, bias) -> None:
        """``round_NNN/bias.json``: the bias built after round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.
        bias : rave.bias_grid.Bias
            The bias (stored as its ``to_dict()``).
        """
        self.write_json(self.round_path(index, self.BIAS), bias.to_dict())

    def write_round(self, index: int, record: RoundRecord) -> None:
        """``round_NNN/round.json``, durably: written last, it completes the round.

        Parameters
        ----------
        index : int
            The round, from 0.
        record : RoundRecord
            The round's record (stored as :meth:`RoundRecord.to_summary`).
        """
        self.write_json(self.round_path(index, self.ROUND), record.to_summary(), durable=True)

    def save_model(self, index: int, name: str, model) -> None:
        """A VAE as ``name`` in round ``index``'s folder.

        Parameters
        ----------
        index : int
            The round, from 0.
        name : str
            The name within the round folder (:meth:`model_name`).
        model : rave.learn.vae.VAEModel
            The model; its ``save`` writes the file.
        """
        model.save(self.round_path(index, name))

    def write_profile(self, centers: np.ndarray, profile: np.ndarray,
                      index: int | None = None) -> None:
        """``free_energy.csv`` (``chi,free_energy_kT``, the finite bins) of a round or the campaign.

        Parameters
        ----------
        centers : np.ndarray
            The bin centres along the RC, chi.
        profile : np.ndarray
            The free energy of each bin, kT (non-finite bins are left out).
        index : int or None, optional
            The round whose folder gets the file; None: the work directory's (the campaign's).
        """
        rows = [f"{x:.6f},{f:.6f}" for x, f in zip(centers, profile, strict=True)
                if np.isfinite(f)]
        path = self.FREE_ENERGY if index is None else self.round_path(index, self.FREE_ENERGY)
        self.write_text(path, "chi,free_energy_kT\n" + "\n".join(rows) + "\n")

    def write_final_profile(self, index: int) -> None:
        """The campaign's ``free_energy.csv``: a copy of that of round ``index``.

        Parameters
        ----------
        index : int
            The round, from 0.
        """
        self.write_text(self.FREE_ENERGY,
                        self.round_path(index, self.FREE_ENERGY).read_text())

    def discard_rounds_from(self, index: int) -> list[Path]:
        """``rave run --redo-round``: remove round ``index``, every later round and the totals.

        The walker files of round ``index`` that read back stay (their MD is reused); see
        :func:`discard_rounds_from`.

        Parameters
        ----------
        index : int
            The first round discarded.

        Returns
        -------
        list of Path
            The files removed.

        Raises
        ------
        WorkdirError
            Round ``index`` does not exist; nothing was changed.
        """
        if not self.round_started(index):
            done = [f"round_{r:03d}" for r in self.round_folders()]
            raise WorkdirError(
                f"--redo-round {index}: {self.round_dir(index)} does not exist (the campaign "
                f"has {', '.join(done) or 'no rounds'}); nothing was changed")

        def readable(path: Path) -> bool:
            try:
                load_npz(path)
            except StoreFileError:
                return False
            return True

        return discard_rounds_from(self.workdir, index, keep=readable)

