"""A campaign's stored rounds read back: :class:`CampaignData` and :class:`RoundData`.

:meth:`CampaignData.load` reads ``summary.json``, ``features.json`` and every finished round's
files through :class:`rave.campaign.store.CampaignStore`; a missing or damaged file is a
:class:`CampaignFileError` naming it and how to recompute it. Per-round data (frames, applied
bias and its MBAR states, RC, next bias), the models, the config and the model potential of a
campaign are read here; :mod:`rave.analysis.result_quantities` derives profiles, states and
crossings from them, and :class:`rave.analysis.result.CampaignResult` adds the report's figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

import numpy as np

from ..campaign import store
from ..learn.bias import Bias
from ..md.frames import Frames
from ..units import chi_unit, kT_kjmol

if TYPE_CHECKING:  # pragma: no cover
    from ..stats import ProfileEstimate, ReweightResult
    from .basins import BarrierCrossings


class CampaignFileError(store.StoreFileError):
    """A file of the campaign is missing or unreadable; the message names it (and, for a file
    of a round, how to recompute it). A :class:`rave.campaign.store.StoreFileError`."""


def check_campaign_folder(campaign: store.CampaignStore) -> None:
    """Raise CampaignFileError when ``campaign``'s folder is missing, holds no campaign, or no
    finished round.
    """
    workdir = campaign.workdir
    if not workdir.is_dir():
        raise CampaignFileError(f"work directory {workdir} does not exist (or is not a "
                                f"directory); give the --workdir of a `rave run`")
    if not campaign.holds_campaign() and not campaign.has(campaign.SUMMARY):
        raise CampaignFileError(f"{workdir} holds no rave campaign (no {campaign.MANIFEST}); "
                                f"give the --workdir of a `rave run`")
    if campaign.holds_campaign() and not campaign.complete_rounds():
        raise CampaignFileError(f"no round of {workdir} has finished yet (round 0 is running "
                                f"or was interrupted): nothing to analyse. `rave status "
                                f"{workdir}` shows its progress; `rave run` resumes it")


@dataclass
class RoundData:
    """One finished round as stored in ``round_NNN/``.

    Attributes
    ----------
    index : int
        The round's index, from 0.
    frames : rave.md.frames.Frames
        The round's frames (``frames.npz``), walkers concatenated, each walker in time order;
        ``features``, ``bias_kjmol``, ``time_ps`` and ``walker`` below are its arrays.
    bias_applied : Bias or None
        The static bias of the round (None in the unbiased round); of an adaptive (OPES)
        round, the bias in force at its end.
    coordinate : dict
        ``coordinate.json``: RC coefficients, KL, model files.
    next_bias : Bias
        ``bias.json``: the bias built after this round.
    bias_states : list of (Bias or None, int), optional
        The MBAR states of the round's frames, in frame order
        (:func:`rave.learn.bias.applied_states`): one for a static round, the blocks of an adaptive
        one. None: the one state ``bias_applied``.
    """

    index: int
    frames: Frames
    bias_applied: Bias | None
    coordinate: dict
    next_bias: Bias
    bias_states: list | None = None

    @classmethod
    def read(cls, campaign: store.CampaignStore, index: int) -> RoundData:
        """Round ``index`` of a campaign store.

        Parameters
        ----------
        campaign : rave.campaign.store.CampaignStore
            The campaign's store.
        index : int
            The round, from 0.

        Returns
        -------
        RoundData
            The round's frames, applied bias and its MBAR states, RC and next bias.

        Raises
        ------
        CampaignFileError
            A file of the round is missing or damaged; the message names it and how to
            recompute the round.
        """
        try:
            frames = campaign.frames(index)
            bias = campaign.round_bias(index, len(frames))
            return cls(index=index, frames=frames, bias_applied=bias.applied,
                       bias_states=bias.states,
                       coordinate=campaign.coordinate(index), next_bias=campaign.bias(index))
        except store.StoreFileError as error:
            raise CampaignFileError(f"{error}. {campaign.redo_advice(index)}") from error

    @property
    def features(self) -> np.ndarray:
        """Order parameters of every frame, shape (n_frames, d)."""
        return self.frames.features

    @property
    def bias_kjmol(self) -> np.ndarray:
        """Bias energy applied when each frame was sampled, kJ/mol, shape (n_frames,)."""
        return self.frames.bias_kjmol

    @property
    def time_ps(self) -> np.ndarray:
        """Time of each frame within its walker, ps, shape (n_frames,)."""
        return self.frames.time_ps

    @property
    def walker(self) -> np.ndarray | None:
        """Walker index of each frame, shape (n_frames,), dtype int; None when the round
        stored none (one walker)."""
        return self.frames.walker

    def states(self) -> list:
        """(bias or None, frames) of each MBAR state of the round, in frame order.

        Returns
        -------
        list of (Bias or None, int)
            :attr:`bias_states`, or the one state (``bias_applied``, all frames) when it is None.
        """
        return self.bias_states or [(self.bias_applied, len(self.features))]

    def segments(self) -> list[np.ndarray]:
        """Index arrays of each walker's frames, in time order.

        Returns
        -------
        list of np.ndarray
            One integer array per walker (:meth:`rave.md.frames.Frames.segments`).
        """
        return self.frames.segments()


class CampaignData:
    """The finished rounds of a campaign as stored: frames, biases, RCs, models and config.

    The base of :class:`rave.analysis.result.CampaignResult`; load with :meth:`load`.

    Parameters
    ----------
    workdir : path
        The campaign's work directory.
    summary : dict
        Its ``summary.json`` (``temperature_K`` and the round records).
    features : list of rave.md.features.Feature
        Its order parameters (``features.json``), in feature order.
    rounds : list of RoundData
        Its finished rounds, in order.
    """

    def __init__(self, workdir: Path, summary: dict, features: list, rounds: list[RoundData]):
        self.workdir = Path(workdir)
        self.summary = summary
        self.features = features
        self.rounds = rounds
        self.store = store.CampaignStore(self.workdir)
        self.temperature_K = float(summary["temperature_K"])
        self.kT = kT_kjmol(self.temperature_K)
        self._reweighted: ReweightResult | None = None
        self._profiles: dict[tuple, ProfileEstimate] = {}
        self._crossings: dict[tuple, BarrierCrossings] = {}

    @classmethod
    def load(cls, workdir: str | Path) -> Self:
        """Read ``summary.json``, ``features.json`` and every finished round's files.

        Parameters
        ----------
        workdir : str or path
            The campaign's work directory.

        Returns
        -------
        CampaignResult
            The campaign's finished rounds, an instance of the class it is called on.

        Raises
        ------
        CampaignFileError
            A file is missing, damaged or not what rave wrote, or ``summary.json`` lists no
            finished round; the message names the file and how to recompute it.
        """
        try:
            return cls._load(Path(workdir))
        except (KeyError, TypeError, AttributeError, IndexError) as error:
            files = store.CampaignStore
            raise CampaignFileError(
                f"a file of {workdir} is not what rave wrote (missing or malformed {error}): "
                f"{files.SUMMARY}, {files.FEATURES} or a round's {files.COORDINATE}. `rave run` "
                f"with the campaign's config and --workdir {workdir} rewrites {files.SUMMARY}; "
                f"`rave status {workdir}` names damaged round files") from error

    @classmethod
    def _load(cls, workdir: Path) -> Self:
        campaign = store.CampaignStore(workdir)
        check_campaign_folder(campaign)
        try:
            summary = campaign.summary()
            features = campaign.features()
        except store.StoreFileError as error:
            raise CampaignFileError(str(error)) from error
        rounds = [RoundData.read(campaign, record["index"]) for record in summary["rounds"]]
        if not rounds:
            raise CampaignFileError(f"{campaign.path(campaign.SUMMARY)} lists no finished round")
        return cls(workdir, summary, features, rounds)

    # ----------------------------------------------------------------- data
    @property
    def feature_names(self) -> list[str]:
        """list of str: the name of each order parameter, feature order."""
        return [f.name for f in self.features]

    def all_features(self) -> np.ndarray:
        """Features of all frames, round by round, shape (n_frames, d), in their MD units."""
        return np.concatenate([r.features for r in self.rounds])

    def walker_labels(self) -> np.ndarray:
        """Walker index of every frame within its round (0 where a round stored none), shape
        (n_frames,).
        """
        return np.concatenate(
            [
                np.zeros(len(r.features), dtype=np.int64) if r.walker is None else r.walker
                for r in self.rounds
            ]
        )

    def frames_per_round(self) -> list[int]:
        """The number of frames of each finished round."""
        return [len(r.features) for r in self.rounds]

    def coefficients(self, index: int = -1) -> np.ndarray:
        """The RC learned after round ``index`` (a position in :attr:`rounds`): unit norm, (d,)."""
        return np.asarray(self.rounds[index].coordinate["coefficients"], dtype=float)

    def round_labels(self) -> np.ndarray:
        """The round index of every frame, shape (n_frames,)."""
        return np.concatenate([np.full(len(r.features), r.index, dtype=np.int64)
                               for r in self.rounds])

    # ----------------------------------------------------------------- models
    def _load_model(self, index: int, name: str):
        r = self.rounds[index].index
        try:
            return self.store.model(r, name)
        except store.StoreFileError as error:
            raise CampaignFileError(f"{error}. {self.store.redo_advice(r)}") from error

    def models(self, index: int = -1) -> list:
        """Every VAE trained after round ``index`` (position in :attr:`rounds`), in training order.

        A missing or damaged model file raises CampaignFileError.
        """
        names = self.rounds[index].coordinate["model_files"]
        return [self._load_model(index, name) for name in names]

    def model(self, index: int = -1):
        """The VAE chosen (lowest KL) after round ``index`` (position in :attr:`rounds`).

        A missing or damaged model file raises CampaignFileError.
        """
        coordinate = self.rounds[index].coordinate
        name = coordinate["model_files"][int(coordinate["chosen_model"])]
        return self._load_model(index, name)

    def latent(self, index: int = -1) -> np.ndarray:
        """Latent mean of every frame of rounds 0..index under the model chosen after ``index``."""
        return self.model(index).transform(self.all_features()[: self.frames_up_to(index)])

    def frames_up_to(self, index: int) -> int:
        """Number of frames in rounds 0..index (``index`` a position in :attr:`rounds`)."""
        index = index % len(self.rounds)
        return sum(len(r.features) for r in self.rounds[: index + 1])

    def potential(self):
        """The model potential of ``config.json`` (with ``exact_free_energy``), or None when
        the campaign has no config or its system is not a model potential (cached)."""
        if not hasattr(self, "_potential"):
            self._potential = self._build_potential()
        return self._potential

    def _config(self) -> dict | None:
        """``config.json``, or None when the campaign has none."""
        if not self.store.has(self.store.CONFIG):
            return None
        try:
            return self.store.config()
        except store.StoreFileError as error:
            raise CampaignFileError(str(error)) from error

    def _build_potential(self):
        from ..campaign.config import ConfigError, config_from_dict
        from ..campaign.simsystem import build_model_potential

        config = self._config()
        if config is None:
            return None
        try:
            return build_model_potential(config_from_dict(config))
        except (ConfigError, KeyError, ValueError):
            return None

    # ----------------------------------------------------------------- units, config
    @property
    def feature_units(self) -> list[str]:
        """The unit of each order parameter (``"1"`` for a pure number), feature order."""
        return [f.unit for f in self.features]

    @property
    def chi_unit(self) -> str:
        """The unit of chi (see :func:`chi_unit`)."""
        return chi_unit(self.feature_units)

    def convergence_settings(self):
        """The ``[convergence]`` thresholds of ``config.json`` (a
        :class:`rave.campaign.config.ConvergenceConfig`), or None when the campaign has no readable
        config."""
        from ..campaign.config import ConfigError, config_from_dict

        config = self._config()
        if config is None:
            return None
        try:
            return config_from_dict(config).convergence
        except (ConfigError, KeyError, ValueError, TypeError):
            return None
