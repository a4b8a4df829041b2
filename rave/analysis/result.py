"""A finished (or running) campaign loaded from its work directory, for notebooks and reports.

Everything here is computation on stored files; figures are drawn by :mod:`rave.analysis.plots`,
whose
functions return matplotlib ``Figure`` objects (and save them when given a path).

In a notebook::

    >>> from rave.analysis import CampaignResult
    >>> result = CampaignResult.load("runs/rdw")
    >>> c = result.coefficients(-1)                   # final RC, unit norm, feature order
    >>> est = result.profile(c)                       # F(chi) in kT, bootstrap sigma, f_k
    >>> est.centers, est.free_energy, est.sigma
    >>> log_w = result.log_weights                    # MBAR log-weight of every frame
    >>> model = result.model(-1)                      # the chosen VAE of the last round
    >>> models = result.models(-1)                    # all VAEs trained in the last round
    >>> states = result.metastable_states(c)          # minima of F and their cores
    >>> result.diagnostics()                          # per round: ESS, KL, RC change, transitions
    >>> figures = result.figures()                    # name -> matplotlib Figure
    >>> figures["free_energy"]                        # displays in Jupyter
    >>> result.report_figures()["free_energy"].caption  # what the figure shows, one sentence
    >>> result.outcome_lines()                        # final RC (with chi's unit), F error

Frames of a round may come from several walkers (``round_NNN/frames.npz`` may hold an integer
array ``walker``); every time series (blocks of the bootstrap, transitions, chi(t) lines) is
taken per walker, through :func:`rave.stats.walker_segments`.

Metastable states and transitions are found by the pure functions of
:mod:`rave.analysis.states`; the report is written by :mod:`rave.analysis.report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..campaign import store
from ..learn.bias import Bias, frame_potentials, frame_states, reduced_bias_matrix
from ..learn.coordinate import direction_angle_deg
from ..md.frames import Frames
from ..stats import (
    ALIGN_BELOW_KT,
    AlignedReference,
    ProfileEstimate,
    ReweightResult,
    align_reference,
    bootstrap_free_energy_profile,
    free_energy_histogram,
    free_energy_profile,
    mbar_reweight,
    normalised_weights,
    reference_edges,
)
from ..units import chi_unit, kT_kjmol
from .basins import (
    FULL_TURN_DEG,
    MIN_BASIN_ENTRIES,
    BarrierCrossings,
    OrderParameter,
    barrier_crossings,
    order_parameters,
)
from .states import (
    MIN_BIN_FRAMES,
    MIN_STATE_FRAMES,
    MetastableState,
    find_metastable_states,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CampaignFileError",
    "CampaignResult",
    "ReportFigure",
    "RoundData",
    "chi_unit",
    "config_change_lines",
]

#: Default number of bootstrap replicates of the F(chi) error bars (sigma to ~10 %).
DEFAULT_BOOTSTRAP = 100


class CampaignFileError(store.StoreFileError):
    """A file of the campaign is missing or unreadable; the message names it (and, for a file
    of a round, how to recompute it). A :class:`rave.campaign.store.StoreFileError`."""


def check_campaign_folder(campaign: store.CampaignStore) -> None:
    """Say plainly when a folder to read is missing, holds no campaign, or no finished round.

    Parameters
    ----------
    campaign : rave.campaign.store.CampaignStore
        The store of the folder.

    Raises
    ------
    CampaignFileError
        The folder does not exist, holds neither a manifest nor a summary (not a rave work
        directory), or holds a campaign whose round 0 has not finished.
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


def config_change_lines(rounds: list[dict]) -> list[str]:
    """Lines naming the rounds that ran with a config other than ``config.json``.

    The rounds are grouped by the run that completed them (from each round's ``run`` and
    ``config_changes``).

    Parameters
    ----------
    rounds : list of dict
        The round records (``summary.json``'s rounds, :meth:`RoundRecord.to_summary
        <rave.campaign.store.RoundRecord.to_summary>`).

    Returns
    -------
    list of str
        One line per group of rounds with the same run and changes; empty when no round ran
        with a changed config.
    """
    groups: dict[tuple, list[int]] = {}
    for r in rounds:
        changes = tuple(r.get("config_changes") or ())
        if changes:
            groups.setdefault((r.get("run"), changes), []).append(int(r["index"]))
    return [f"round(s) {', '.join(map(str, indices))} ran with a changed config "
            f"(run {run} of manifest.json): {'; '.join(changes)}"
            for (run, changes), indices in groups.items()]


def _unit_text(unit: str) -> str:
    """"chi in nm", "chi dimensionless", "chi in mixed units"."""
    return "chi dimensionless" if unit == "dimensionless" else f"chi in {unit}"


def _flags(found: BarrierCrossings, parameter: OrderParameter | None = None) -> dict:
    """The flag arguments of a profile figure: red error bars, the barrier and a warning."""
    flagged = found.flagged_basins
    unit = "" if parameter is None or parameter.unit in ("1", "") else f" {parameter.unit}"
    note = ""
    if found.barrier is None:
        note = ("one basin found: no crossing counted; a basin never reached, or visited too "
                "briefly\nto be a state, has no reliable F")
    elif flagged:
        note = (f"{found.crossings} crossing(s) of the highest barrier; basin(s) at "
                + " and ".join(f"{found.basin_minima[b]:.3g}{unit}" for b in flagged)
                + f" entered < {MIN_BASIN_ENTRIES} times:\ntheir F relative to the other "
                  f"basin rests on those crossings")
    return {"flagged": found.flagged_bins, "barrier": found.barrier, "note": note,
            "flag_label": f"basin entered < {MIN_BASIN_ENTRIES} times: error bar understated"}


def _rc_text(c: np.ndarray, names: Sequence[str]) -> str:
    return "chi = " + " ".join(f"{ci:+.3f} {name}" for ci, name in zip(c, names, strict=True))


@dataclass(frozen=True)
class ReportFigure:
    """A figure of the report and its one-sentence caption.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
        The figure.
    caption : str
        What it shows, one sentence.
    """

    figure: Figure
    caption: str


# --------------------------------------------------------------------------------------------
# the campaign on disk
# --------------------------------------------------------------------------------------------


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


class CampaignResult:
    """Frames, biases, RCs, models, profiles and figures of a campaign's finished rounds.

    Load with :meth:`load`; see the module docstring for a notebook example.

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
    def load(cls, workdir: str | Path) -> CampaignResult:
        """Read ``summary.json``, ``features.json`` and every finished round's files.

        Parameters
        ----------
        workdir : str or path
            The campaign's work directory.

        Returns
        -------
        CampaignResult
            The campaign's finished rounds.

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
    def _load(cls, workdir: Path) -> CampaignResult:
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
        """Features of all frames, round by round.

        Returns
        -------
        np.ndarray, shape=(n_frames, d)
            The order parameters of every frame, in their MD units.
        """
        return np.concatenate([r.features for r in self.rounds])

    def walker_labels(self) -> np.ndarray:
        """Walker index of every frame within its round (0 where a round stored none).

        Returns
        -------
        np.ndarray, shape=(n_frames,), dtype=int
            The labels, round by round.
        """
        return np.concatenate(
            [
                np.zeros(len(r.features), dtype=np.int64) if r.walker is None else r.walker
                for r in self.rounds
            ]
        )

    def frames_per_round(self) -> list[int]:
        """The number of frames of each finished round.

        Returns
        -------
        list of int
            Frames per round, in order.
        """
        return [len(r.features) for r in self.rounds]

    def coefficients(self, index: int = -1) -> np.ndarray:
        """The RC learned after round ``index`` (unit norm, feature order).

        Parameters
        ----------
        index : int, optional
            Position in :attr:`rounds` (negative from the end); default the last.

        Returns
        -------
        np.ndarray, shape=(d,)
            The RC's coefficients.
        """
        return np.asarray(self.rounds[index].coordinate["coefficients"], dtype=float)

    def frames_per_state(self) -> list[int]:
        """Frames of each MBAR state (a round, or a block of an adaptive round), in order.

        Returns
        -------
        list of int
            Frames per state.
        """
        return [n for r in self.rounds for _, n in r.states()]

    def reduced_bias(self) -> np.ndarray:
        """``V_k(frame n) / kT`` of every frame under every state's bias.

        Returns
        -------
        np.ndarray, shape=(K, n_frames)
            K states: one per static round, one per block of an adaptive round.
        """
        states = [state for r in self.rounds for state in r.states()]
        try:
            potential = frame_potentials([r.states() for r in self.rounds],
                                         [r.frames.potential_kjmol for r in self.rounds])
        except ValueError as error:
            raise CampaignFileError(str(error)) from error
        return reduced_bias_matrix(self.all_features(), states, self.kT, potential)[0]

    def frame_states(self) -> np.ndarray:
        """The MBAR state of every frame (:func:`rave.learn.bias.frame_states`).

        Returns
        -------
        np.ndarray, shape=(n_frames,), dtype=int
        """
        return frame_states([r.states() for r in self.rounds],
                            [r.frames.state for r in self.rounds])

    def reweight(self) -> ReweightResult:
        """MBAR over all rounds toward the unbiased ensemble (cached).

        Returns
        -------
        rave.stats.ReweightResult
            The log-weights of every frame and the states' free energies ``f_k``.
        """
        if self._reweighted is None:
            self._reweighted = mbar_reweight(self.reduced_bias(), self.frames_per_state())
        return self._reweighted

    @property
    def log_weights(self) -> np.ndarray:
        """MBAR log-weight of every frame (normalised: logsumexp = 0), shape (n_frames,)."""
        return self.reweight().log_weights

    def _chi(self, coefficients: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        c = self.coefficients(-1) if coefficients is None else np.asarray(coefficients, float)
        if c.shape != (len(self.features),):
            raise ValueError(
                f"coefficients must have one entry per feature "
                f"({len(self.features)}). You supplied shape {c.shape}"
            )
        return c, self.all_features() @ c

    def profile(
        self,
        coefficients: np.ndarray | None = None,
        bins: int = 60,
        n_bootstrap: int = DEFAULT_BOOTSTRAP,
        block_length: int | None = None,
        seed: int = 0,
    ) -> ProfileEstimate:
        """F(chi) along chi = coefficients . features from all rounds (MBAR), with bootstrap errors.

        The block bootstrap re-solves MBAR per replicate (see
        :func:`rave.stats.bootstrap_free_energy_profile`). Cached per arguments.

        Parameters
        ----------
        coefficients : np.ndarray, shape=(d,), optional
            Any linear combination of the features; default the final RC.
        bins : int
            Equal bins over the sampled chi range.
        n_bootstrap : int
            Bootstrap replicates.
        block_length : int or None
            Bootstrap block length, frames; None chooses it per round from the correlation time
            of chi.
        seed : int
            Seed of the bootstrap's random numbers.

        Returns
        -------
        rave.stats.ProfileEstimate
            Bin centres, F in kT (minimum 0), its bootstrap sigma in kT, and MBAR's ``f_k``.

        Raises
        ------
        ValueError
            ``coefficients`` has not one entry per feature.
        """
        c, chi = self._chi(coefficients)
        key = (tuple(c), int(bins), int(n_bootstrap), block_length, int(seed))
        if key not in self._profiles:
            edges = np.linspace(chi.min(), chi.max(), int(bins) + 1)
            self._profiles[key] = bootstrap_free_energy_profile(
                self.reduced_bias(),
                self.frames_per_state(),
                chi,
                edges,
                n_bootstrap=n_bootstrap,
                block_length=block_length,
                seed=seed,
                walker=self.walker_labels(),
                state_groups=[r.index for r in self.rounds for _ in r.states()],
                frame_states=self.frame_states(),
            )
        return self._profiles[key]

    def free_energy(
        self,
        coefficients: np.ndarray | None = None,
        bins: int = 60,
        n_bootstrap: int = DEFAULT_BOOTSTRAP,
        block_length: int | None = None,
        seed: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(centers, F, sigma)`` of :meth:`profile`.

        Parameters
        ----------
        coefficients : np.ndarray, shape=(d,), optional
            Any linear combination of the features; default the final RC.
        bins : int
            Equal bins over the sampled chi range.
        n_bootstrap : int
            Bootstrap replicates.
        block_length : int or None
            Bootstrap block length, frames; None chooses it per round.
        seed : int
            Seed of the bootstrap.

        Returns
        -------
        centers : np.ndarray, shape=(bins,)
            Bin centres, in the unit of chi.
        F : np.ndarray, shape=(bins,)
            F in kT (min 0, inf where empty).
        sigma : np.ndarray, shape=(bins,)
            Its bootstrap standard error in kT (nan where not estimable).
        """
        est = self.profile(coefficients, bins, n_bootstrap, block_length, seed)
        return est.centers, est.free_energy, est.sigma

    def free_energy_2d(
        self, i: int = 0, j: int = 1, bins: int = 50
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """F(s_i, s_j) in kT (min 0, inf where empty) over two order parameters.

        Parameters
        ----------
        i, j : int
            The two order parameters, by position in feature order.
        bins : int
            Bins along each (``np.histogram_bin_edges`` over the sampled range).

        Returns
        -------
        x : np.ndarray, shape=(bins,)
            Bin centres of s_i.
        y : np.ndarray, shape=(bins,)
            Bin centres of s_j.
        F : np.ndarray, shape=(bins, bins)
            F in kT, indexed ``[y, x]`` (as ``imshow``/``contourf`` take it).
        """
        pair = self.all_features()[:, [i, j]]
        xe, ye = (np.histogram_bin_edges(pair[:, a], bins=bins) for a in (0, 1))
        f = free_energy_histogram(pair, self.log_weights, [xe, ye], density=False)
        f -= f[np.isfinite(f)].min()
        return 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]), f.T

    def order_parameter_surface(
        self, first: OrderParameter, second: OrderParameter, bins: int = 50
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """F over two order parameters in kT (min 0, inf where empty); angles over a full turn.

        Parameters
        ----------
        first, second : rave.analysis.basins.OrderParameter
            The order parameters (x and y).
        bins : int
            Bins along each: over -180..180 deg for an angle, the sampled range otherwise.

        Returns
        -------
        x : np.ndarray, shape=(bins,)
            Bin centres of ``first``.
        y : np.ndarray, shape=(bins,)
            Bin centres of ``second``.
        F : np.ndarray, shape=(bins, bins)
            F in kT, indexed ``[y, x]``.
        """
        features = self.all_features()
        pair = np.column_stack([first.values(features), second.values(features)])
        edges = [np.linspace(-FULL_TURN_DEG / 2, FULL_TURN_DEG / 2, bins + 1) if p.periodic
                 else np.histogram_bin_edges(pair[:, a], bins=bins)
                 for a, p in enumerate((first, second))]
        f = free_energy_histogram(pair, self.log_weights, edges, density=False)
        f -= f[np.isfinite(f)].min()
        xe, ye = edges
        return 0.5 * (xe[1:] + xe[:-1]), 0.5 * (ye[1:] + ye[:-1]), f.T

    def metastable_states(
        self,
        coefficients: np.ndarray | None = None,
        bins: int = 60,
        min_depth_kT: float = 2.0,
        core_kT: float = 1.0,
        smoothing_bins: int = 1,
        min_bin_frames: int = MIN_BIN_FRAMES,
        min_state_frames: int = MIN_STATE_FRAMES,
    ) -> list[MetastableState]:
        """States of the MBAR profile along ``coefficients``, from the frames per bin as well as F.

        See :func:`rave.analysis.states.find_metastable_states` for the rule.

        Parameters
        ----------
        coefficients : np.ndarray, shape=(d,), optional
            Any linear combination of the features; default the final RC.
        bins : int
            Equal bins over the sampled chi range.
        min_depth_kT : float
            Least depth of a state, kT.
        core_kT : float
            Height of a state's core above its minimum, kT.
        smoothing_bins : int
            Half-width of the moving average of F, bins (0: no smoothing).
        min_bin_frames : int
            Fewest frames in a sampled bin.
        min_state_frames : int
            Fewest frames in a state's core.

        Returns
        -------
        list of MetastableState
            In increasing chi.

        Raises
        ------
        ValueError
            ``coefficients`` has not one entry per feature.
        """
        _, chi = self._chi(coefficients)
        edges = np.linspace(chi.min(), chi.max(), int(bins) + 1)
        centers, f = free_energy_profile(chi, self.log_weights, edges)
        counts, _ = np.histogram(chi, bins=edges)
        return find_metastable_states(centers, f, min_depth_kT, core_kT, smoothing_bins,
                                      counts=counts, min_bin_frames=min_bin_frames,
                                      min_state_frames=min_state_frames)

    # ----------------------------------------------------------------- basins, crossings
    def order_parameters(self) -> list[OrderParameter]:
        """The order parameters the report shows F over (:func:`rave.analysis.basins.
        order_parameters`): the angle of each sin/cos pair of one dihedral, other features as
        they are.

        Returns
        -------
        list of rave.analysis.basins.OrderParameter
            In feature order.
        """
        return order_parameters(self.features)

    def round_labels(self) -> np.ndarray:
        """The round index of every frame.

        Returns
        -------
        np.ndarray, shape=(n_frames,), dtype=int
            The labels, round by round.
        """
        return np.concatenate([np.full(len(r.features), r.index, dtype=np.int64)
                               for r in self.rounds])

    def barrier_crossings(self, coordinate: OrderParameter | np.ndarray | None = None,
                          bins: int = 60) -> BarrierCrossings:
        """F along a coordinate, its two basins at the highest barrier, and the crossings.

        See :func:`rave.analysis.basins.barrier_crossings` (cached per arguments).

        Parameters
        ----------
        coordinate : OrderParameter or np.ndarray or None, optional
            An order parameter (:meth:`order_parameters`), or RC coefficients (shape (d,));
            default the final RC.
        bins : int, optional
            Bins over the sampled range (a full turn for an angle).

        Returns
        -------
        rave.analysis.basins.BarrierCrossings
            The profile, states, barrier, crossings per round and entries per basin.
        """
        if isinstance(coordinate, OrderParameter):
            key = (coordinate, int(bins))
            values, periodic = coordinate.values(self.all_features()), coordinate.periodic
        else:
            c, values = self._chi(coordinate)
            key, periodic = (tuple(c), int(bins)), False
        if key not in self._crossings:
            self._crossings[key] = barrier_crossings(values, self.log_weights,
                                                     self.round_labels(), self.walker_labels(),
                                                     bins=bins, periodic=periodic)
        return self._crossings[key]

    def order_parameter_profile(self, parameter: OrderParameter, bins: int = 60,
                                n_bootstrap: int = DEFAULT_BOOTSTRAP,
                                seed: int = 0) -> tuple[BarrierCrossings, np.ndarray]:
        """F over an order parameter with its block-bootstrap sigma (kT), and its crossings.

        Parameters
        ----------
        parameter : rave.analysis.basins.OrderParameter
            The order parameter.
        bins : int, optional
            Bins over the sampled range (a full turn for an angle).
        n_bootstrap : int, optional
            Bootstrap replicates (MBAR re-solved in each).
        seed : int, optional
            Seed of the bootstrap.

        Returns
        -------
        crossings : rave.analysis.basins.BarrierCrossings
            F, basins and crossings (:meth:`barrier_crossings`).
        sigma : np.ndarray, shape=(bins,)
            The bootstrap standard error of F in each bin of ``crossings.centers``, kT.
        """
        found = self.barrier_crossings(parameter, bins)
        x = parameter.values(self.all_features())
        if parameter.periodic:
            x = (x - found.cut) % FULL_TURN_DEG + found.cut
            edges = found.cut + np.linspace(0.0, FULL_TURN_DEG, int(bins) + 1)
        else:
            edges = np.linspace(x.min(), x.max(), int(bins) + 1)
        est = bootstrap_free_energy_profile(
            self.reduced_bias(), self.frames_per_state(), x, edges, n_bootstrap=n_bootstrap,
            seed=seed, walker=self.walker_labels(),
            state_groups=[r.index for r in self.rounds for _ in r.states()],
            frame_states=self.frame_states())
        sigma = np.asarray(est.sigma, dtype=float)
        if parameter.periodic:
            sigma = sigma[np.argsort((est.centers + FULL_TURN_DEG / 2) % FULL_TURN_DEG)]
        return found, sigma

    # ----------------------------------------------------------------- models
    def _load_model(self, index: int, name: str):
        r = self.rounds[index].index
        try:
            return self.store.model(r, name)
        except store.StoreFileError as error:
            raise CampaignFileError(f"{error}. {self.store.redo_advice(r)}") from error

    def models(self, index: int = -1) -> list:
        """Every VAE trained after round ``index`` (``coordinate.json``'s ``model_files``).

        Parameters
        ----------
        index : int, optional
            Position in :attr:`rounds` (negative from the end); default the last.

        Returns
        -------
        list of rave.learn.vae.VAEModel
            The models, in training order.

        Raises
        ------
        CampaignFileError
            A model file is missing or damaged.
        """
        names = self.rounds[index].coordinate["model_files"]
        return [self._load_model(index, name) for name in names]

    def model(self, index: int = -1):
        """The VAE chosen after round ``index`` (lowest KL).

        Parameters
        ----------
        index : int, optional
            Position in :attr:`rounds` (negative from the end); default the last.

        Returns
        -------
        rave.learn.vae.VAEModel
            The chosen model.

        Raises
        ------
        CampaignFileError
            Its file is missing or damaged.
        """
        coordinate = self.rounds[index].coordinate
        name = coordinate["model_files"][int(coordinate["chosen_model"])]
        return self._load_model(index, name)

    def latent(self, index: int = -1) -> np.ndarray:
        """Latent mean of every frame of rounds 0..index under the model chosen in ``index``.

        Parameters
        ----------
        index : int, optional
            Position in :attr:`rounds` (negative from the end); default the last.

        Returns
        -------
        np.ndarray, shape=(n_frames_up_to_index,)
            The latent mean of each frame.
        """
        return self.model(index).transform(self.all_features()[: self.frames_up_to(index)])

    def frames_up_to(self, index: int) -> int:
        """Number of frames in rounds 0..index.

        Parameters
        ----------
        index : int
            Position in :attr:`rounds` (negative from the end).

        Returns
        -------
        int
            The frames of rounds 0..index together.
        """
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

    # ----------------------------------------------------------------- diagnostics
    def diagnostics(self, states: list[MetastableState] | None = None) -> list[dict]:
        """Per round: frames, walkers, ESS, KL, RC change, F change, convergence and crossings.

        ``transitions`` are the crossings of the highest barrier of F along the final RC, core
        to core, counted per walker (:meth:`barrier_crossings`); ``crossings`` the same along
        each order parameter (:meth:`order_parameters`), by name.

        Parameters
        ----------
        states : list of MetastableState, optional
            Not used (the basins are those of :meth:`barrier_crossings`); kept for callers
            that pass the final RC's states.

        Returns
        -------
        list of dict
            One per round: ``round``, ``frames``, ``walkers``, ``effective_sample_size``,
            ``kl_divergence``, ``angle_change_deg``, ``free_energy_change_kT``, ``converged``,
            ``transitions`` and ``crossings`` (order parameter name -> crossings).
        """
        along_rc = self.barrier_crossings(self.coefficients(-1))
        along = {p.name: self.barrier_crossings(p) for p in self.order_parameters()}
        rows = []
        for n, (record, round_data) in enumerate(zip(self.summary["rounds"], self.rounds,
                                                     strict=True)):
            rows.append(
                {
                    "round": record["index"],
                    "frames": record["frames"],
                    "walkers": len(round_data.segments()),
                    "effective_sample_size": record["effective_sample_size"],
                    "kl_divergence": record["kl_divergence"],
                    "angle_change_deg": record.get("angle_change_deg"),
                    "free_energy_change_kT": record.get("free_energy_change_kT"),
                    "converged": record.get("converged", False),
                    "transitions": along_rc.crossings_per_round[n],
                    "crossings": {name: b.crossings_per_round[n] for name, b in along.items()},
                }
            )
        return rows

    # ----------------------------------------------------------------- units, references
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

    def slow_direction(self) -> np.ndarray | None:
        """The model potential's known slow direction in feature space (unit norm), or None.

        Returns
        -------
        np.ndarray, shape=(d,), or None
            The direction; None when the system has none (or the potential's coordinates are not
            the features).
        """
        potential = self.potential()
        direction = getattr(potential, "slow_direction", None)
        if direction is None or len(direction) != len(self.features):
            return None
        return np.asarray(direction, dtype=float)

    def slow_direction_angles_deg(self) -> list[float] | None:
        """Per round, the sign-agnostic angle between the RC and the known slow direction.

        Returns
        -------
        list of float or None
            The angles, degrees; None when there is no slow direction (see :meth:`slow_direction`).
        """
        direction = self.slow_direction()
        if direction is None:
            return None
        return [direction_angle_deg(np.asarray(r["coefficients"], float), direction)
                for r in self.summary["rounds"]]

    def exact_profile(self, coefficients: np.ndarray, centers: np.ndarray) -> np.ndarray | None:
        """The exact F along ``coefficients`` at ``centers`` for model potentials (by quadrature).

        Parameters
        ----------
        coefficients : np.ndarray, shape=(d,)
            The RC.
        centers : np.ndarray
            Values of chi.

        Returns
        -------
        np.ndarray or None
            F in kT at each centre; None when the system is not a model potential.
        """
        potential = self.potential()
        if not hasattr(potential, "exact_free_energy"):
            return None
        return np.asarray(potential.exact_free_energy(coefficients, centers), dtype=float)

    def exact_comparison(self, bins: int = 60) -> AlignedReference | None:
        """F along the final RC (MBAR) against the exact profile of a model potential.

        The bins are those of :func:`rave.stats.reference_edges`: the sampled chi range's
        ``bins`` bins, extended at the same width over the range the model's Boltzmann
        distribution covers along the RC (its ``chi_range``), so a basin the campaign never
        reached is in the comparison. :func:`rave.stats.align_reference` then takes the error
        over the bins where the EXACT F < 5 kT, counting those the campaign left unsampled.

        Parameters
        ----------
        bins : int, optional
            Equal bins over the sampled chi range (the same width beyond it).

        Returns
        -------
        rave.stats.AlignedReference or None
            The shifted exact F and the RMS difference, kT; None when the system has no exact
            profile.
        """
        c, chi = self._chi(None)
        potential = self.potential()
        if not hasattr(potential, "exact_free_energy"):
            return None
        span = potential.chi_range(c) if hasattr(potential, "chi_range") else None
        edges = reference_edges(float(chi.min()), float(chi.max()), int(bins), span)
        centers, f = free_energy_profile(chi, self.log_weights, edges)
        return align_reference(self.exact_profile(c, centers), f)

    def outcome_lines(self) -> list[str]:
        """What the campaign gave, for the end of ``rave run``.

        Returns
        -------
        list of str
            The final RC with the unit of chi and, for model potentials, its angle to the known
            slow direction and the F error against the exact profile.
        """
        c = self.coefficients(-1)
        lines = [f"final RC: {_rc_text(c, self.feature_names)} ({_unit_text(self.chi_unit)})"]
        angles = self.slow_direction_angles_deg()
        if angles is not None:
            lines.append(f"RC angle to the known slow direction: {angles[-1]:.1f} deg")
        error = self.exact_comparison()
        if error is not None:
            lines.append(f"F(chi) error against the exact profile: {error.describe()}")
        return lines

    # ----------------------------------------------------------------- figures
    def figures(self, bins: int = 60, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict:
        """Every report figure as a matplotlib ``Figure``, by name.

        See :meth:`report_figures`, which adds a caption to each.

        Parameters
        ----------
        bins : int, optional
            Equal bins over the sampled chi range.
        n_bootstrap : int, optional
            Bootstrap replicates of F's error bars.
        seed : int, optional
            Seed of the bootstrap.

        Returns
        -------
        dict of str to matplotlib.figure.Figure
            The figures, by the names of :meth:`report_figures`.
        """
        return {name: item.figure
                for name, item in self.report_figures(bins, n_bootstrap, seed).items()}

    def report_figures(
        self, bins: int = 60, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0
    ) -> dict[str, ReportFigure]:
        """Every report figure with a one-sentence caption, by name.

        ``free_energy`` (F along the final RC with error bars, state cores, and the exact F for
        model potentials), ``latent``, ``chi_time_series`` (one line per walker), ``convergence``
        (one panel per quantity with the campaign's thresholds), ``free_energy_2d`` (d >= 2) and
        ``potential`` (2-D model potentials: samples and RC direction).

        Parameters
        ----------
        bins : int, optional
            Equal bins over the sampled chi range.
        n_bootstrap : int, optional
            Bootstrap replicates of F's error bars.
        seed : int, optional
            Seed of the bootstrap.

        Returns
        -------
        dict of str to ReportFigure
            The figures with their captions.

        Raises
        ------
        CampaignFileError
            The last round's chosen model file is missing or damaged.
        """
        from ..learn.coordinate import fit_coordinate
        from . import plots

        c = self.coefficients(-1)
        # the model file first: a damaged one stops the report before the long computations
        latent = self.latent(-1)
        unit = self.chi_unit
        potential = self.potential()
        est = self.profile(c, bins=bins, n_bootstrap=n_bootstrap, seed=seed)
        exact = self.exact_profile(c, est.centers)
        along_rc = self.barrier_crossings(c, bins=bins)
        states = along_rc.states
        cores = [s.core for s in states]
        n_frames = len(self.all_features())
        caption = (
            f"F along the final RC ({_rc_text(c, self.feature_names)}, {_unit_text(unit)}) "
            f"from all {n_frames} frames of {len(self.rounds)} rounds "
            f"reweighted by MBAR; error bars are 1 sigma of a block bootstrap "
            f"({est.n_bootstrap} replicates, MBAR re-solved in each), green bands the cores of "
            f"the {len(states)} metastable state(s), the dashed purple line the dividing "
            f"surface at the highest barrier, red error bars those of a basin entered fewer "
            f"than {MIN_BASIN_ENTRIES} times (the bootstrap cannot see how few crossings fix "
            f"the basins' F difference), and no line is drawn across bins without frames "
            f"(shaded grey); {along_rc.describe('the RC', unit)}"
        )
        if exact is not None:
            caption += ("; the dashed line is the exact F by quadrature, shifted by a constant "
                        "to the mean of RAVE's F over the bins where the exact F < "
                        f"{ALIGN_BELOW_KT:g} kT (error: {self.exact_comparison().describe()})")
        out = {
            "free_energy": ReportFigure(
                plots.profile_with_errors(
                    centers=est.centers,
                    profile_kT=est.free_energy,
                    sigma_kT=est.sigma,
                    exact_kT=exact,
                    cores=cores,
                    title=f"F along the final RC ({est.n_bootstrap} block-bootstrap replicates, "
                    "MBAR re-solved)",
                    chi_unit=unit,
                    **_flags(along_rc),
                ),
                caption + ".",
            )
        }
        features = self.all_features()
        log_w = self.log_weights
        weights = normalised_weights(len(log_w), log_weights=log_w)
        scan = fit_coordinate(features, latent, log_weights=log_w, seed=0)
        chi = features @ c
        if np.corrcoef(latent, chi)[0, 1] < 0:
            chi = -chi  # the latent's sign is arbitrary: show chi oriented like it
        out["latent"] = ReportFigure(
            plots.latent_analysis(
                features=features,
                latent=latent,
                chi=chi,
                weights=weights,
                feature_names=self.feature_names,
                directions=scan.directions,
                kl_landscape=scan.kl_landscape,
                feature_units=self.feature_units,
            ),
            "The last round's chosen VAE: its latent mean against each order parameter, the "
            "reweighted histograms of the latent and of chi rescaled to [0, 1] (the KL match "
            "that chose the RC), and the KL over the scanned RC directions.",
        )
        parameters = self.order_parameters()
        panels, lines = [], []
        for parameter in parameters:
            found, sigma = self.order_parameter_profile(parameter, bins=bins,
                                                        n_bootstrap=n_bootstrap, seed=seed)
            panels.append({"centers": found.centers, "profile_kT": found.free_energy,
                           "sigma_kT": sigma, "cores": found.core_spans,
                           "xlabel": plots.unit_label(parameter.name, parameter.unit),
                           "title": f"F over {parameter.name} (all rounds, MBAR)",
                           "periodic": parameter.periodic, **_flags(found, parameter)})
            lines.append(found.describe(parameter.name, parameter.unit))
        angle_note = ("; each sin/cos pair of one dihedral is shown as its angle, atan2(sin, "
                      "cos), and the line of a full turn is cut at its least-populated bin "
                      "so that crossings either way round count"
                      if any(p.periodic for p in parameters) else "")
        out["free_energy_order_parameters"] = ReportFigure(
            plots.order_parameter_profiles(panels=panels),
            f"F over each order parameter from all frames reweighted by MBAR, error bars 1 "
            f"sigma of the block bootstrap ({n_bootstrap} replicates), red where the basin was "
            f"entered fewer than {MIN_BASIN_ENTRIES} times, green bands the state cores, the "
            f"dashed line the dividing surface at the highest barrier{angle_note}: "
            + "; ".join(lines) + ".",
        )
        out["chi_time_series"] = ReportFigure(
            plots.chi_time_series(rounds=self.rounds, coefficients=c, cores=cores,
                                  chi_unit=unit, barrier=along_rc.barrier),
            f"chi along the final RC against MD time, rounds one after another and each "
            f"round's walkers overlaid (colour: round), green bands the state cores, the dashed "
            f"line the dividing surface at the highest barrier of F(chi): "
            f"{along_rc.crossings} crossing(s) of it in all (by round: "
            f"{', '.join(map(str, along_rc.crossings_per_round))}), a crossing being an entry "
            f"into a core on the other side of the barrier than the last core visited.",
        )
        records = self.summary["rounds"]
        settings = self.convergence_settings()
        kl_threshold = self.rounds[-1].coordinate.get("kl_threshold")
        slow = self.slow_direction_angles_deg()
        out["convergence"] = ReportFigure(
            plots.convergence(
                rounds=[r["index"] for r in records],
                coefficients=np.array([r["coefficients"] for r in records]),
                feature_names=self.feature_names,
                effective_sample_size=[r["effective_sample_size"] for r in records],
                kl_divergence=[r["kl_divergence"] for r in records],
                angle_change_deg=[r.get("angle_change_deg") for r in records],
                free_energy_change_kT=[r.get("free_energy_change_kT") for r in records],
                seed_spread_deg=[r.get("seed_spread_deg") for r in records],
                slow_direction_angle_deg=slow,
                angle_limit_deg=None if settings is None else settings.angle_deg,
                free_energy_limit_kT=None if settings is None else settings.free_energy_kT,
                profile_max_kT=None if settings is None else settings.profile_max_kT,
                min_rounds=None if settings is None else settings.min_rounds,
                kl_threshold=kl_threshold,
            ),
            "Per round, one panel per quantity: the RC's coefficients, its change from the "
            "previous round, the largest angle between the VAE seeds' RCs (when several were "
            "usable), the RMS change of F(chi), the KL of the chosen RC and the MBAR effective "
            "sample size"
            + (", and the RC's angle to the model potential's known slow direction"
               if slow is not None else "")
            + "; "
            + ("dashed red lines are the [convergence] thresholds of config.json and the "
               "spurious-model KL threshold, the dotted line the first round allowed to "
               "converge."
               if settings is not None else
               "the convergence thresholds are not drawn: the campaign has no readable "
               "config.json."),
        )
        angles = [p for p in parameters if p.periodic]
        pair = angles[:2] if len(angles) >= 2 else parameters[:2]
        if len(pair) == 2:
            x, y, f2 = self.order_parameter_surface(*pair)
            both = all(p.periodic for p in pair)
            out["free_energy_2d"] = ReportFigure(
                plots.free_energy_surface(
                    x=x, y=y, f_kT=f2, xlabel=plots.unit_label(pair[0].name, pair[0].unit),
                    ylabel=plots.unit_label(pair[1].name, pair[1].unit), angles=both,
                    title=(f"F({pair[0].name}, {pair[1].name}) (all rounds, MBAR); blank: no "
                           f"frames")),
                f"F over {pair[0].name} and {pair[1].name} from all frames reweighted by MBAR, "
                f"capped at 12 kT; blank bins have no frames"
                + (" (a Ramachandran-style map over the two angles, each over a full turn)."
                   if both else "."),
            )
        if potential is not None and features.shape[1] == 2 and hasattr(potential, "extent"):
            out["potential"] = ReportFigure(
                plots.potential_with_samples(
                    potential=potential, frames=[r.features for r in self.rounds],
                    coefficients=c
                ),
                "The model potential U (kT, capped at 20 kT) with every round's frames "
                "(colour: round) and the final RC's direction (red arrow).",
            )
        return out
