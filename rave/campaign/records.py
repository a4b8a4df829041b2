"""A round's records as stored: :class:`RoundRecord` (``round.json``) and :class:`RoundBias`.

:class:`RoundRecord` converts to and from the JSON of ``round.json`` and of ``summary.json``'s
rounds (keys added in later versions are optional when read); :class:`RoundBias` is what a
round's ``bias_applied.json`` says about its frames (:meth:`rave.campaign.store.CampaignStore.
round_bias`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RoundRecord:
    """A complete round's record: ``round.json``, and its entry in ``summary.json``'s rounds.

    Attributes
    ----------
    index : int
        The round's index, from 0.
    coefficients : np.ndarray, shape=(n_features,)
        The RC learned after the round (unit norm, feature order).
    kl_divergence : float
        ``KL(P_latent || Q_chi)`` of the chosen RC (nats, >= 0; see
        :class:`rave.learn.coordinate.CoordinateResult`).
    frames : int
        Frames the round added.
    effective_sample_size : float
        MBAR's, over all frames so far.
    angle_change_deg, free_energy_change_kT : float or None
        Change of the RC (degrees) and of F(chi) (kT) from the previous round (None: round 0).
    converged : bool
        Whether the campaign's convergence criteria held after this round.
    walkers : int
        The walkers the round ran.
    faults : int
        The MD faults its walkers recovered from (segments retried at a halved time step;
        :mod:`rave.campaign.walkers`).
    timings_s : dict
        Seconds per stage.
    run : int or None
        The entry of ``manifest.json``'s runs that completed this round (None: not recorded).
    config_changes : list of str
        The config keys that run changed from ``config.json``, as "key: stored X, now Y".
    steps : int or None
        MD steps per walker of this round (None: not recorded).
    plan_reason : str or None
        Why the schedule (:mod:`rave.campaign.schedule`) chose ``steps``.
    chi_range_growth : float or None
        Growth of the chi span of all frames by this round's frames, as a fraction of the span
        of the earlier rounds' frames, along this round's RC (None: round 0).
    seed_spread_deg : float or None
        Largest angle between the chosen RC and the other usable seeds' RCs, degrees (None:
        one model).
    free_energy_sigma_kT : float or None
        RMS block-bootstrap uncertainty of F(chi) where F < profile_max_kT, kT (None: not run).
    rc_angle_sigma_deg : float or None
        Block-bootstrap uncertainty of the RC's direction, degrees (None: not run).
    convergence_failures : list of str or None
        The convergence criteria this round failed, in words (:mod:`rave.learn.convergence`;
        empty: converged; None: not recorded, an older rave).
    """

    index: int
    coefficients: np.ndarray
    kl_divergence: float
    frames: int
    effective_sample_size: float
    angle_change_deg: float | None = None
    free_energy_change_kT: float | None = None
    converged: bool = False
    walkers: int = 1
    faults: int = 0
    timings_s: dict = field(default_factory=dict)
    run: int | None = None
    config_changes: list[str] = field(default_factory=list)
    steps: int | None = None
    plan_reason: str | None = None
    chi_range_growth: float | None = None
    seed_spread_deg: float | None = None
    free_energy_sigma_kT: float | None = None
    rc_angle_sigma_deg: float | None = None
    convergence_failures: list[str] | None = None

    def to_summary(self) -> dict:
        """The record as ``round.json`` stores it: plain JSON, timings rounded to 1 ms."""
        return {
            "index": self.index,
            "coefficients": [float(c) for c in self.coefficients],
            "kl_divergence": float(self.kl_divergence),
            "frames": int(self.frames),
            "walkers": int(self.walkers),
            "faults": int(self.faults),
            "effective_sample_size": float(self.effective_sample_size),
            "angle_change_deg": self.angle_change_deg,
            "free_energy_change_kT": self.free_energy_change_kT,
            "converged": self.converged,
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
            "run": self.run,
            "config_changes": list(self.config_changes),
            "steps": None if self.steps is None else int(self.steps),
            "plan_reason": self.plan_reason,
            "chi_range_growth": (None if self.chi_range_growth is None
                                 else float(self.chi_range_growth)),
            "seed_spread_deg": (None if self.seed_spread_deg is None
                                else float(self.seed_spread_deg)),
            "free_energy_sigma_kT": (None if self.free_energy_sigma_kT is None
                                     else float(self.free_energy_sigma_kT)),
            "rc_angle_sigma_deg": (None if self.rc_angle_sigma_deg is None
                                   else float(self.rc_angle_sigma_deg)),
            "convergence_failures": (None if self.convergence_failures is None
                                     else [str(f) for f in self.convergence_failures]),
        }

    @classmethod
    def from_summary(cls, data: dict) -> RoundRecord:
        """The record from :meth:`to_summary` output; absent later keys take their defaults."""
        return cls(
            index=int(data["index"]),
            coefficients=np.asarray(data["coefficients"], dtype=float),
            kl_divergence=float(data["kl_divergence"]),
            frames=int(data["frames"]),
            effective_sample_size=float(data["effective_sample_size"]),
            angle_change_deg=data.get("angle_change_deg"),
            free_energy_change_kT=data.get("free_energy_change_kT"),
            converged=bool(data.get("converged", False)),
            walkers=int(data.get("walkers", 1)),
            faults=int(data.get("faults", 0)),
            timings_s=dict(data.get("timings_s", {})),
            run=None if data.get("run") is None else int(data["run"]),
            config_changes=[str(c) for c in data.get("config_changes", [])],
            steps=None if data.get("steps") is None else int(data["steps"]),
            plan_reason=None if data.get("plan_reason") is None else str(data["plan_reason"]),
            chi_range_growth=(None if data.get("chi_range_growth") is None
                              else float(data["chi_range_growth"])),
            seed_spread_deg=(None if data.get("seed_spread_deg") is None
                             else float(data["seed_spread_deg"])),
            free_energy_sigma_kT=(None if data.get("free_energy_sigma_kT") is None
                                  else float(data["free_energy_sigma_kT"])),
            rc_angle_sigma_deg=(None if data.get("rc_angle_sigma_deg") is None
                                else float(data["rc_angle_sigma_deg"])),
            convergence_failures=(None if data.get("convergence_failures") is None
                                  else [str(f) for f in data["convergence_failures"]]),
        )


@dataclass(frozen=True)
class RoundBias:
    """What ``bias_applied.json`` says about a round's frames, from one read of it.

    Attributes
    ----------
    states : list of tuple of (rave.bias_grid.Bias or None, int)
        The MBAR states of the round's frames in frame order
        (:func:`rave.learn.bias.applied_states`): one for a static or the unbiased round, the
        blocks of an adaptive one.
    applied : rave.bias_grid.Bias or None
        The static bias; of an adaptive round the one in force at its end; None when unbiased.
    adaptive : bool
        Whether the round ran OPES (its file lists blocks under ``states``).
    """

    states: list
    applied: object
    adaptive: bool
