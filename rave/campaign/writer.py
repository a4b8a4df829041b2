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
    """Write ``positions_nm`` (n_frames, n_particles, 3) as a DCD (mdtraj), durably and atomically.

    Stored in Angstrom, float32; ``box_nm`` (3, 3), nm, is written with every frame (None: no cell).
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
    """The writers of a campaign's files, by the names of
    :class:`~rave.campaign.layout.StoreLayout`.

    :class:`rave.campaign.store.CampaignStore` adds the readers. Every writer is atomic; a name
    outside the work directory raises ValueError.
    """

    # ------------------------------------------------------------------ writers
    def write_file(self, name: str | os.PathLike, write: Callable[[Path], None],
                   durable: bool = False) -> Path:
        """Write ``name`` by ``write(temporary_path)``; ``durable``: fsync it and its directory."""
        path = self.path(name)
        write_file(path, write, durable)
        return path

    def write_text(self, name: str | os.PathLike, text: str, durable: bool = False) -> Path:
        """Write ``text`` to ``name``."""
        path = self.path(name)
        write_text(path, text, durable)
        return path

    def write_json(self, name: str | os.PathLike, data, durable: bool = False) -> Path:
        """Write ``data`` as indented JSON to ``name``."""
        path = self.path(name)
        write_json(path, data, durable)
        return path

    def write_npz(self, name: str | os.PathLike, durable: bool = False,
                  **arrays: np.ndarray) -> Path:
        """Write ``arrays`` (``np.savez``) to ``name``."""
        path = self.path(name)
        write_npz(path, durable, **arrays)
        return path

    @staticmethod
    def json_bytes(data) -> bytes:
        """The bytes :meth:`write_json` writes for ``data`` (indented UTF-8 JSON, final newline)."""
        return (json.dumps(data, indent=2) + "\n").encode()

    def start_files(self, config: dict, features: list[dict],
                    inputs: list[str | os.PathLike]) -> dict[str, bytes]:
        """What :meth:`initialise` writes before the manifest: name -> content.

        That is what an interrupted start leaves, which a new start may find
        (:func:`check_new_workdir`).
        """
        own = {self.CONFIG: self.json_bytes(config), self.FEATURES: self.json_bytes(features)}
        for source in inputs:
            own[self.input_name(source)] = Path(source).read_bytes()
        return own

    def check_new(self, own: dict[str, bytes] | None = None) -> None:
        """:func:`check_new_workdir` of this work directory."""
        check_new_workdir(self.workdir, own)

    def initialise(self, config: dict, features: list[dict], inputs: list[str | os.PathLike],
                   manifest: dict) -> None:
        """Start a new campaign: config.json, features.json, ``inputs/`` copies, then the manifest.

        The manifest is written last, durably, with ``format`` and ``version`` first.
        """
        self.write_config(config)
        self.write_features(features)
        for source in inputs:
            copy_file(Path(source), self.path(self.input_name(source)))
        self.write_manifest({"format": FORMAT, "version": FORMAT_VERSION, **manifest})

    def write_manifest(self, manifest: dict) -> None:
        """``manifest.json``, durably."""
        self.write_json(self.MANIFEST, manifest, durable=True)

    def write_config(self, config: dict) -> None:
        """``config.json``: the validated configuration."""
        self.write_json(self.CONFIG, config)

    def write_features(self, features: list[dict]) -> None:
        """``features.json``: each order parameter's ``to_dict()``."""
        self.write_json(self.FEATURES, features)

    def write_summary(self, summary: dict) -> None:
        """``summary.json``."""
        self.write_json(self.SUMMARY, summary)

    def write_prepared(self, state: dict) -> None:
        """``prepared.npz``: the prepared start (``positions`` in nm, ...; None entries dropped)."""
        self.write_npz(self.PREPARED, **{k: np.asarray(v) for k, v in state.items()
                                         if v is not None})

    def write_walker(self, index: int, walker: int, arrays: dict) -> None:
        """``round_NNN/walkers/walker_KK.npz``, durably: it completes the walker.

        A ``trajectory`` array (positions in nm) is written first, durably, as ``walker_KK.dcd`` and
        left out of the ``.npz``: a stored walker always has its whole DCD, and a walker run again
        (no ``.npz``) replaces it.
        """
        arrays = dict(arrays)
        trajectory = arrays.pop("trajectory", None)
        if trajectory is not None:
            write_dcd(self.walker_trajectory_path(index, walker), trajectory,
                      arrays.get("trajectory_box"))
        self.write_npz(self.walker_path(index, walker), durable=True, **arrays)

    def write_frames(self, index: int, frames) -> None:
        """``round_NNN/frames.npz`` from a :class:`rave.md.frames.Frames`, durably (walker labels 0
        when None).
        """
        walker = (np.zeros(len(frames), dtype=np.int64) if frames.walker is None
                  else frames.walker)
        optional = {name: value for name in ("potential_kjmol", "state")
                    if (value := getattr(frames, name)) is not None}
        self.write_npz(self.round_path(index, self.FRAMES), durable=True,
                       features=frames.features, bias_kjmol=frames.bias_kjmol,
                       time_ps=frames.time_ps, walker=walker, **optional)

    def write_bias_applied(self, index: int, data: dict) -> None:
        """``round_NNN/bias_applied.json``: the bias round ``index`` was sampled under."""
        self.write_json(self.round_path(index, self.BIAS_APPLIED), data)

    def write_weights(self, index: int, log_weights: np.ndarray, free_energies: np.ndarray,
                      frames_per_round: np.ndarray) -> None:
        """``round_NNN/weights.npz``: MBAR log-weights of the frames of rounds 0..index, f_k, kT."""
        self.write_npz(self.round_path(index, self.WEIGHTS), log_weights=log_weights,
                       free_energies=free_energies, frames_per_round=frames_per_round)

    def write_coordinate(self, index: int, data: dict) -> None:
        """``round_NNN/coordinate.json``: the RC learned after round ``index``."""
        self.write_json(self.round_path(index, self.COORDINATE), data)

    def write_bias(self, index: int, bias) -> None:
        """``round_NNN/bias.json``: the bias built after round ``index``."""
        self.write_json(self.round_path(index, self.BIAS), bias.to_dict())

    def write_round(self, index: int, record: RoundRecord) -> None:
        """``round_NNN/round.json``, durably: written last, it completes the round."""
        self.write_json(self.round_path(index, self.ROUND), record.to_summary(), durable=True)

    def save_model(self, index: int, name: str, model) -> None:
        """A VAE as ``name`` in round ``index``'s folder."""
        model.save(self.round_path(index, name))

    def write_profile(self, centers: np.ndarray, profile: np.ndarray,
                      index: int | None = None) -> None:
        """``free_energy.csv`` (``chi,free_energy_kT``, finite bins) of round ``index`` or (None)
        the campaign.
        """
        rows = [f"{x:.6f},{f:.6f}" for x, f in zip(centers, profile, strict=True)
                if np.isfinite(f)]
        path = self.FREE_ENERGY if index is None else self.round_path(index, self.FREE_ENERGY)
        self.write_text(path, "chi,free_energy_kT\n" + "\n".join(rows) + "\n")

    def write_final_profile(self, index: int) -> None:
        """The campaign's ``free_energy.csv``: a copy of that of round ``index``."""
        self.write_text(self.FREE_ENERGY,
                        self.round_path(index, self.FREE_ENERGY).read_text())

    def discard_rounds_from(self, index: int) -> list[Path]:
        """``rave run --redo-round``: remove round ``index``, every later round and the totals.

        The walker files of round ``index`` that read back stay (their MD is reused). Raises
        WorkdirError when round ``index`` does not exist.
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

