"""A finished (or running) campaign loaded from its work directory, for notebooks and reports.

Everything here is computation on stored files, in three parts: the reader
(:mod:`rave.analysis.result_reader`: :meth:`CampaignResult.load`, :class:`RoundData`), the
derived quantities (:mod:`rave.analysis.result_quantities`: profiles, states, crossings, the
comparison with an exact profile) and, here, what the report presents (the outcome's lines, the
figures with their captions). Figures are drawn by :mod:`rave.analysis.plots`, whose functions
return matplotlib ``Figure`` objects (and save them when given a path).

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
from typing import TYPE_CHECKING

import numpy as np

from ..stats import ALIGN_BELOW_KT, normalised_weights
from ..units import chi_unit
from .basins import MIN_BASIN_ENTRIES, BarrierCrossings, OrderParameter
from .result_quantities import DEFAULT_BOOTSTRAP, CampaignQuantities
from .result_reader import CampaignData, CampaignFileError, RoundData, check_campaign_folder

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "CampaignData",
    "CampaignFileError",
    "CampaignQuantities",
    "CampaignResult",
    "ReportFigure",
    "RoundData",
    "check_campaign_folder",
    "chi_unit",
    "config_change_lines",
]


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


class CampaignResult(CampaignQuantities):
    """Frames, biases, RCs, models, profiles and figures of a campaign's finished rounds.

    Load with :meth:`load`; see the module docstring for a notebook example. The stored data
    are those of :class:`~rave.analysis.result_reader.CampaignData`, the profiles, states and
    crossings those of :class:`~rave.analysis.result_quantities.CampaignQuantities`; this class
    adds what the report presents.

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

    # ----------------------------------------------------------------- outcome
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
