"""The names of a campaign's files: :class:`StoreLayout`, the paths of the work directory.

Every file name of a work directory is spelled here, once; :class:`rave.campaign.store.
CampaignStore` writes and reads the files by these names, and the state of a campaign (which
rounds are started, complete, learned; which walkers are stored) is read from which of them
exist.

Layout::

    WORKDIR/
      manifest.json        format name and version, rave version, input-file hashes, runs
      config.json          the validated configuration (every default filled in)
      features.json        the order parameters (rave.md.features.Feature.to_dict)
      inputs/              copies of a bring-your-own system's PDB / System XML
      prepared.npz         minimised and equilibrated start (systems that need preparation)
      summary.json         rounds, RC coefficients, KL, frames, effective sample size, MD
                           steps per round and the budget used and left, why it stopped
      free_energy.csv      chi,free_energy_kT from all rounds, reweighted, along the final RC
      free_energy.png      the same, with the exact profile for model potentials
      campaign.log
      rave.lock            the lock a writing rave holds (pid, host, start); kept when released
      round_000/
        bias_applied.json  the static bias this round was sampled under (absent in round 0)
        walkers/walker_KK.npz  one walker's frames, position snapshots, final state
        walkers/walker_KK.dcd  its positions as a DCD trajectory ([output] dcd_interval)
                           (its OpenMM checkpoint), faults; written as each walker finishes
        frames.npz         all walkers' frames: features, bias_kjmol (applied when sampled),
                           time_ps, walker (index of the walker of each frame)
        weights.npz        MBAR log-weights of every frame of rounds 0..r, f_k per round
        models/vae_seed<N>.pt
        coordinate.json    the RC learned from rounds 0..r, per-model KL, spurious models
        bias.json          the bias built after this round (applied in the next)
        free_energy.csv    profile along this round's RC
        figure.png
        round.json         this round's record, its MD steps per walker and why the schedule
                           chose them (and the run of manifest.json that made it,
                           with the config keys that run changed), the convergence
                           criteria it failed; written last: complete
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .workdir import _ROUND_FOLDER, LOCK, MANIFEST, holds_resumable_campaign, round_dir


class StoreLayout:
    """The paths of a campaign's work directory and the state they show.

    The base of :class:`rave.campaign.store.CampaignStore`: the file names of the layout (module
    docstring) as class attributes, the path of each file, and whether it exists. Nothing here
    writes or reads a file's content. ``index`` is a round and ``walker`` a walker, from 0.
    """

    MANIFEST = MANIFEST
    CONFIG = "config.json"
    FEATURES = "features.json"
    SUMMARY = "summary.json"
    PREPARED = "prepared.npz"
    INPUTS = "inputs"
    FREE_ENERGY = "free_energy.csv"
    FREE_ENERGY_FIGURE = "free_energy.png"
    LOG = "campaign.log"
    LOCK = LOCK
    #: the files of a round folder
    FRAMES = "frames.npz"
    BIAS_APPLIED = "bias_applied.json"
    BIAS = "bias.json"
    COORDINATE = "coordinate.json"
    WEIGHTS = "weights.npz"
    ROUND = "round.json"
    FIGURE = "figure.png"
    WALKERS = "walkers"
    MODELS = "models"
    #: the arrays every frames.npz holds (``walker`` too since walkers were stored)
    FRAMES_ARRAYS = ("features", "bias_kjmol", "time_ps")

    def __init__(self, workdir: str | os.PathLike) -> None:
        # absolute, so that a path the store made (workdir/round_000/...) and a name relative
        # to the work directory can never be confused when the user gave a relative workdir
        self.workdir = Path(os.path.abspath(workdir))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.workdir)!r})"

    # ------------------------------------------------------------------ paths
    def path(self, name: str | os.PathLike) -> Path:
        """The path of ``name`` (relative to the work directory, or a path inside it).

        Raises ValueError when it lies outside the work directory.
        """
        path = Path(name)
        if not path.is_absolute():
            path = self.workdir / path
        inside = Path(os.path.abspath(self.workdir))
        if not Path(os.path.abspath(path)).is_relative_to(inside):
            raise ValueError(f"{path} lies outside the work directory {self.workdir}; a "
                             f"campaign store writes only inside it")
        return path

    def round_dir(self, index: int) -> Path:
        """The folder of round ``index`` (``round_NNN``; it need not exist)."""
        return round_dir(self.workdir, index)

    def round_path(self, index: int, name: str) -> Path:
        """The path of ``name`` (e.g. :attr:`FRAMES`, a model file) in round ``index``."""
        return self.path(self.round_dir(index) / name)

    def walker_path(self, index: int, walker: int) -> Path:
        """``round_NNN/walkers/walker_KK.npz``: one walker's frames and final state."""
        return self.round_path(index, f"{self.WALKERS}/walker_{walker:02d}.npz")

    def walker_trajectory_path(self, index: int, walker: int) -> Path:
        """``round_NNN/walkers/walker_KK.dcd``: one walker's trajectory.

        Its frames are those the walker file's ``trajectory_frames`` name (``[output]
        dcd_interval``).
        """
        return self.round_path(index, f"{self.WALKERS}/walker_{walker:02d}.dcd")

    @classmethod
    def model_name(cls, seed: int) -> str:
        """``models/vae_seed<seed>.pt``: the VAE trained with ``seed``, as ``coordinate.json`` lists
        it.
        """
        return f"{cls.MODELS}/vae_seed{seed}.pt"

    def input_name(self, source: str | os.PathLike) -> str:
        """``inputs/<file name>``: the copy of an input file (a PDB, a System XML)."""
        return f"{self.INPUTS}/{Path(source).name}"

    def redo_advice(self, index: int) -> str:
        """What recomputes round ``index`` after a file of it was damaged (the ``--redo-round`` to
        run).
        """
        return (f"`rave run` with the campaign's config, --workdir {self.workdir} and "
                f"--redo-round {index} recomputes round {index} from its stored MD and redoes "
                f"the later rounds")

    # ------------------------------------------------------------------ state
    def holds_campaign(self) -> bool:
        """Whether the work directory holds a resumable campaign (its manifest)."""
        return holds_resumable_campaign(self.workdir)

    def has(self, name: str) -> bool:
        """Whether the file ``name`` (relative to the work directory) exists."""
        return self.path(name).is_file()

    def round_started(self, index: int) -> bool:
        """Whether round ``index``'s folder exists."""
        return self.round_dir(index).is_dir()

    def round_complete(self, index: int) -> bool:
        """Whether round ``index`` is complete (its ``round.json`` exists)."""
        return self.round_path(index, self.ROUND).is_file()

    def round_has(self, index: int, name: str) -> bool:
        """Whether the file ``name`` of round ``index`` exists."""
        return self.round_path(index, name).is_file()

    def complete_rounds(self) -> list[int]:
        """0, 1, ... up to the first round without ``round.json`` (a later folder is unfinished or
        discarded).
        """
        index = 0
        while self.round_complete(index):
            index += 1
        return list(range(index))

    def round_folders(self) -> list[int]:
        """The indices of every round folder, complete or not, in order."""
        return sorted(int(p.name[len("round_"):]) for p in self.workdir.glob("round_*")
                      if p.is_dir() and _ROUND_FOLDER.fullmatch(p.name))

    def learned_rounds(self) -> list[int]:
        """The rounds whose folder holds ``coordinate.json`` and ``bias.json``, ascending."""
        return [r for r in self.round_folders()
                if self.round_has(r, self.BIAS) and self.round_has(r, self.COORDINATE)]

    def stored_walkers(self, index: int) -> list[int]:
        """The walkers of round ``index`` whose ``walkers/walker_KK.npz`` exists, ascending."""
        folder = self.round_path(index, self.WALKERS)
        if not folder.is_dir():
            return []
        return sorted(int(m[1]) for p in folder.iterdir()
                      if (m := re.fullmatch(r"walker_(\d+)\.npz", p.name)))
