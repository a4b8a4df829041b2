"""The convergence verdict of a round: which criteria failed, in words (pure, no I/O).

One function, :func:`convergence_failures`, decides; the campaign stores its answer in
``round.json`` (``convergence_failures``; converged when the list is empty) and ``rave run`` /
``rave status`` print it, so the verdict is computed in one place.

A round converged when, against the ``[convergence]`` thresholds:

1. at least ``min_rounds`` rounds ran;
2. the RC moved less than ``angle_deg`` since the previous round;
3. with two or more VAE seeds per round, at least two gave a usable RC (neither spurious by
   KL nor a stale warm start, whose RC is more than ``stale_angle_deg`` off the cold model's)
   and their RCs agree within ``angle_deg``. A single usable seed is not evidence: a stale or
   spurious seed is a seed that disagrees. (With ``models = 1`` the check cannot be made and
   is skipped; the verdict says so. Where ``[coordinate] rc_choice = "barrier"`` made another
   candidate the RC, the seeds are not its evidence and the check is skipped: the RC's
   bootstrap, item 6, reruns that choice.)
4. F(chi) changed by less than ``free_energy_kT`` (RMS where F < ``profile_max_kT``);
5. F(chi)'s block-bootstrap uncertainty is below ``free_energy_kT`` (when ``bootstrap`` > 0);
6. the RC's block-bootstrap uncertainty is below ``angle_deg`` (when its bootstrap is on).

Why item 3 is strict: on a held-out Mueller-Brown potential (``workflows/mueller_brown.toml``) a
campaign with two seeds per round declared convergence after 4 rounds while its F(chi) was 0.53 kT
RMS off the exact profile along its own RC (1.8 kT in the B basin), with an RC that put the minima
A and C at the same chi; in every round after the first the warm-started seed's RC was more than 15
deg off the cold one's, was dropped as stale, and the seed-agreement criterion had nothing to
compare. The bootstrap uncertainties (0.15 kT, 3.7 deg) cannot see such a hidden barrier: they
measure the noise of the data, not whether the biased rounds sampled the slow orthogonal direction.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RoundEvidence", "convergence_failures"]


@dataclass(frozen=True)
class RoundEvidence:
    """What a round measured that the verdict judges."""

    index: int
    angle_change_deg: float | None
    seed_spread_deg: float | None
    usable_seeds: int
    models: int
    free_energy_change_kT: float | None
    free_energy_sigma_kT: float | None = None
    rc_angle_sigma_deg: float | None = None
    rc_source: str = "vae"


def convergence_failures(evidence: RoundEvidence, thresholds) -> list[str]:
    """The convergence criteria a round fails, each as a sentence; empty when it converged."""
    angle_limit, f_limit = float(thresholds.angle_deg), float(thresholds.free_energy_kT)
    failures = []
    if evidence.index + 1 < thresholds.min_rounds:
        failures.append(f"fewer than {thresholds.min_rounds} rounds")
    angle = evidence.angle_change_deg
    if angle is None:
        failures.append("no previous round's RC to compare with" if evidence.index == 0
                        else "the round has no RC change recorded")
    elif not angle < angle_limit:
        failures.append(f"the RC still moved {angle:.1f} deg (limit {angle_limit:g})")
    seeds_judged = evidence.rc_source == "vae"
    if seeds_judged and evidence.models >= 2 and evidence.usable_seeds == 0:
        failures.append(
            f"none of the {evidence.models} VAE seeds gave a usable RC (each was spurious by KL "
            f"or a stale warm start): the RC is the best of unconfirmed ones")
    elif seeds_judged and evidence.models >= 2 and evidence.usable_seeds < 2:
        failures.append(
            f"only 1 of the {evidence.models} VAE seeds gave a usable RC (the others were "
            f"spurious or stale warm starts, i.e. they disagree): the RC is not confirmed by a "
            f"second seed")
    spread = evidence.seed_spread_deg
    if seeds_judged and spread is not None and not spread < angle_limit:
        failures.append(f"the seeds' RCs still differ by {spread:.1f} deg (limit "
                        f"{angle_limit:g})")
    change = evidence.free_energy_change_kT
    if change is None:
        failures.append("no previous round's F(chi) to compare with" if evidence.index == 0
                        else "the round has no F(chi) change recorded")
    elif not change < f_limit:
        failures.append(f"F(chi) still changed {change:.2f} kT RMS (limit {f_limit:g})")
    sigma = evidence.free_energy_sigma_kT
    if sigma is not None and not sigma < f_limit:
        failures.append(f"F(chi)'s bootstrap uncertainty is {sigma:.2f} kT RMS (limit "
                        f"{f_limit:g})")
    rc_sigma = evidence.rc_angle_sigma_deg
    if rc_sigma is not None and not rc_sigma < angle_limit:
        failures.append(f"the RC's bootstrap uncertainty is {rc_sigma:.1f} deg (limit "
                        f"{angle_limit:g})")
    return failures
