"""What a campaign's stored rounds give: MBAR weights, profiles, states, crossings, references.

:class:`CampaignQuantities` derives from the rounds read by
:class:`rave.analysis.result_reader.CampaignData`: the MBAR reweighting of every frame, F along
any linear combination of the features (with block-bootstrap errors) or over order parameters,
the metastable states, the barrier crossings per round and walker, the per-round diagnostics,
and, for model potentials, the comparison with the exact profile. Every time series is taken per
walker (:func:`rave.stats.walker_segments`). :class:`rave.analysis.result.CampaignResult` adds
the report's figures.
"""

from __future__ import annotations

import numpy as np

from ..learn.bias import frame_potentials, frame_states, reduced_bias_matrix
from ..learn.coordinate import direction_angle_deg
from ..stats import (
    AlignedReference,
    ProfileEstimate,
    ReweightResult,
    align_reference,
    bootstrap_free_energy_profile,
    free_energy_histogram,
    free_energy_profile,
    mbar_reweight,
    reference_edges,
)
from .basins import (
    FULL_TURN_DEG,
    BarrierCrossings,
    OrderParameter,
    barrier_crossings,
    order_parameters,
)
from .result_reader import CampaignData, CampaignFileError
from .states import (
    MIN_BIN_FRAMES,
    MIN_STATE_FRAMES,
    MetastableState,
    find_metastable_states,
)

#: Default number of bootstrap replicates of the F(chi) error bars (sigma to ~10 %).
DEFAULT_BOOTSTRAP = 100


class CampaignQuantities(CampaignData):
    """MBAR weights, profiles, states, crossings and exact comparisons of a campaign's rounds.

    The base of :class:`rave.analysis.result.CampaignResult`; load with :meth:`load`, built
    from what :class:`~rave.analysis.result_reader.CampaignData` takes. Profiles and crossings
    are cached per arguments.
    """

    # ----------------------------------------------------------------- reweighting
    def frames_per_state(self) -> list[int]:
        """Frames of each MBAR state (a round, or a block of an adaptive round), in order."""
        return [n for r in self.rounds for _, n in r.states()]

    def reduced_bias(self) -> np.ndarray:
        """``V_k(frame n) / kT``, shape (K, n_frames): K states, one per static round or adaptive
        block.
        """
        states = [state for r in self.rounds for state in r.states()]
        try:
            potential = frame_potentials([r.states() for r in self.rounds],
                                         [r.frames.potential_kjmol for r in self.rounds])
        except ValueError as error:
            raise CampaignFileError(str(error)) from error
        return reduced_bias_matrix(self.all_features(), states, self.kT, potential)[0]

    def frame_states(self) -> np.ndarray:
        """Each frame's MBAR state, shape (n_frames,) (:func:`rave.learn.bias.frame_states`)."""
        return frame_states([r.states() for r in self.rounds],
                            [r.frames.state for r in self.rounds])

    def reweight(self) -> ReweightResult:
        """MBAR over all rounds toward the unbiased ensemble (cached): log-weights and ``f_k``."""
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
        """``(centers, F, sigma)`` of :meth:`profile`: bin centres (unit of chi), F and its sigma,
        kT.

        F is inf in an empty bin, sigma nan where not estimable. See :meth:`profile` for the
        arguments.
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
        """The order parameters the report shows F over, in feature order.

        The angle of each sin/cos pair of one dihedral, other features as they are
        (:func:`rave.analysis.basins.order_parameters`).
        """
        return order_parameters(self.features)


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


    # ----------------------------------------------------------------- exact references
    def slow_direction(self) -> np.ndarray | None:
        """The model potential's known slow direction in feature space (unit norm, shape (d,)), or
        None.

        None when the system has none, or the potential's coordinates are not the features.
        """
        potential = self.potential()
        direction = getattr(potential, "slow_direction", None)
        if direction is None or len(direction) != len(self.features):
            return None
        return np.asarray(direction, dtype=float)

    def slow_direction_angles_deg(self) -> list[float] | None:
        """Per round, the sign-agnostic angle (degrees) between the RC and the slow direction, or
        None.
        """
        direction = self.slow_direction()
        if direction is None:
            return None
        return [direction_angle_deg(np.asarray(r["coefficients"], float), direction)
                for r in self.summary["rounds"]]

    def exact_profile(self, coefficients: np.ndarray, centers: np.ndarray) -> np.ndarray | None:
        """The exact F (kT) along ``coefficients`` at ``centers`` by quadrature; None without a
        model potential.
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
