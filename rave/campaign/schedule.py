"""The MD schedule of a campaign: how many steps each round runs.

Fixed schedule (no ``[sampling] max_total_steps``): every round runs ``steps_per_round`` steps
per walker, for ``rounds`` rounds (or until converged).

Budget (``max_total_steps`` set): the campaign's MD steps summed over rounds and walkers never
exceed ``max_total_steps``; ``rounds`` is an upper bound on the number of rounds. Round lengths
(steps per walker, always a whole multiple of ``report_interval``) follow from the stored
rounds only, so a resumed campaign plans what an uninterrupted one did:

- round 0 (unbiased) is short: ``first_round_steps`` (default
  :func:`default_first_round_steps`: a quarter of ``steps_per_round``, but at least
  :data:`MIN_FIRST_ROUND_FRAMES` frames per walker, and at most ``steps_per_round``);
- round 1 (the first biased round) runs ``steps_per_round``;
- round r >= 2 starts from round r-1's length and, judged by the record learned after round r-1
  (its change from round r-2):

  * halves (by :data:`SHRINK_FACTOR`) if the RC turned by more than ``convergence.angle_deg``,
    or if round r-1 reached new ground: the chi span of all frames grew by more than
    :data:`NEW_RANGE_FRACTION` of the span of the earlier rounds' frames (along the new RC);
  * doubles (by :data:`GROW_FACTOR`) if the RC turned by less than ``convergence.angle_deg`` and
    F(chi) changed by less than ``convergence.free_energy_kT`` (RMS): the RC and F settle, so
    longer rounds buy statistics instead of new directions;
  * otherwise keeps its length;

  and stays within [floor, cap] = [``steps_per_round`` / :data:`FLOOR_DIVISOR` (at least
  :data:`MIN_ROUND_FRAMES` frames), ``steps_per_round`` x :data:`CAP_FACTOR`];
- then the budget: a round gets at most what is left per walker (the last round is cut), and a
  round after which less than a floor round per walker would be left takes the rest (no
  leftover too short to be a round). When less than :data:`MIN_ROUND_FRAMES` frames per
  walker is left, the campaign stops: the budget is spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

#: frames per walker the default first round gives at least (enough to train the VAE on)
MIN_FIRST_ROUND_FRAMES = 200
#: the default first round is steps_per_round divided by this (before the frame minimum)
FIRST_ROUND_DIVISOR = 4
#: a round shrinks by this factor while the RC turns or new chi ranges appear
SHRINK_FACTOR = 2
#: a round grows by this factor once the RC and F(chi) change less than the thresholds
GROW_FACTOR = 2
#: shortest adapted round: steps_per_round divided by this (but MIN_ROUND_FRAMES frames)
FLOOR_DIVISOR = 4
#: frames per walker a round needs at least (as [sampling] requires of steps_per_round); with
#: less of the budget left the campaign stops
MIN_ROUND_FRAMES = 10
#: longest adapted round: steps_per_round times this
CAP_FACTOR = 4
#: with only max_total_steps (the budget-shaped schedule): no round takes more of what is left
#: than leaves room for this many rounds in all
BUDGET_MIN_ROUNDS = 8
#: a round reached new ground when the chi span of all frames grew by more than this fraction
#: of the span of the earlier rounds' frames
NEW_RANGE_FRACTION = 0.1


class RoundOutcome(Protocol):
    """What the plan reads of a complete round (rave.campaign.RoundRecord has these)."""

    steps: int | None
    walkers: int
    angle_change_deg: float | None
    free_energy_change_kT: float | None
    chi_range_growth: float | None


@dataclass(frozen=True)
class RoundPlan:
    """The plan of one round."""

    steps: int | None
    reason: str


def _whole(steps: int, report_interval: int) -> int:
    """``steps`` rounded down to a multiple of ``report_interval``, at least one interval."""
    return max(report_interval, steps // report_interval * report_interval)


def default_first_round_steps(steps_per_round: int, report_interval: int) -> int:
    """Round 0's steps per walker when ``first_round_steps`` is not given.

    A quarter of ``steps_per_round`` (rounded down to a multiple of ``report_interval``), raised
    to at least :data:`MIN_FIRST_ROUND_FRAMES` frames, at most ``steps_per_round`` (rounded
    down).
    """
    quarter = _whole(steps_per_round // FIRST_ROUND_DIVISOR, report_interval)
    return min(_whole(steps_per_round, report_interval),
               max(quarter, MIN_FIRST_ROUND_FRAMES * report_interval))


def round_limits(steps_per_round: int, report_interval: int) -> tuple[int, int]:
    """(floor, cap): the shortest and longest adapted round, steps per walker."""
    floor = max(_whole(steps_per_round // FLOOR_DIVISOR, report_interval),
                MIN_ROUND_FRAMES * report_interval)
    return (min(floor, _whole(steps_per_round, report_interval)),
            _whole(steps_per_round * CAP_FACTOR, report_interval))


def steps_used(previous: Sequence[RoundOutcome]) -> int:
    """MD steps of complete rounds, summed over rounds and walkers."""
    return sum(int(r.steps) * int(r.walkers) for r in previous)


def plan_round_steps(
    previous: Sequence[RoundOutcome],
    *,
    steps_per_round: int,
    report_interval: int,
    walkers: int,
    max_total_steps: int | None = None,
    first_round_steps: int | None = None,
    angle_deg: float = 5.0,
    free_energy_kT: float = 0.5,
    min_rounds: int | None = None,
) -> RoundPlan:
    """Steps per walker of the next round, a pure function of the complete rounds."""
    index = len(previous)
    if max_total_steps is None:
        whole = _whole(steps_per_round, report_interval)
        return RoundPlan(whole, "fixed schedule: sampling.steps_per_round" + (
            "" if whole == steps_per_round else
            f" ({steps_per_round}) rounded down to whole frames of {report_interval} steps"))
    ri = report_interval
    floor, cap = round_limits(steps_per_round, ri)
    if index == 0:
        steps = (default_first_round_steps(steps_per_round, ri) if first_round_steps is None
                 else _whole(first_round_steps, ri))
        reason = "round 0: short unbiased round (sampling.first_round_steps)"
    elif index == 1:
        steps = _whole(steps_per_round, ri)
        reason = "first biased round: sampling.steps_per_round"
    else:
        last = previous[-1]
        before = int(last.steps)
        angle, change = last.angle_change_deg, last.free_energy_change_kT
        growth = last.chi_range_growth
        if angle is not None and angle >= angle_deg:
            steps = before // SHRINK_FACTOR
            reason = (f"the RC turned by {angle:.1f} deg (>= {angle_deg:g}) after round "
                      f"{index - 1}: round length / {SHRINK_FACTOR}")
        elif growth is not None and growth > NEW_RANGE_FRACTION:
            steps = before // SHRINK_FACTOR
            reason = (f"round {index - 1} reached new chi values (span +{100 * growth:.0f}% > "
                      f"{100 * NEW_RANGE_FRACTION:g}%): round length / {SHRINK_FACTOR}")
        elif angle is not None and change is not None and change < free_energy_kT:
            steps = before * GROW_FACTOR
            reason = (f"the RC ({angle:.1f} deg < {angle_deg:g}) and F(chi) ({change:.2f} kT < "
                      f"{free_energy_kT:g}) settled after round {index - 1}: round length x "
                      f"{GROW_FACTOR}")
        else:
            steps = before
            reason = f"no clear trend after round {index - 1}: round length kept"
        bounded = min(cap, max(floor, _whole(steps, ri)))
        if bounded != steps:
            reason += f" ({'floor' if bounded == floor else 'cap'} {bounded})"
        steps = bounded
    left = max_total_steps - steps_used(previous)
    available = left // (walkers * ri) * ri  # per walker, whole frames
    if available < MIN_ROUND_FRAMES * ri:
        return RoundPlan(None, f"budget spent: {steps_used(previous)} of {max_total_steps} "
                               f"steps used, {max(left, 0)} left (less than {walkers} "
                               f"walker(s) x {MIN_ROUND_FRAMES * ri} steps, a round of "
                               f"{MIN_ROUND_FRAMES} frames)")
    if min_rounds is not None and index < min_rounds - 1:
        share = max(MIN_ROUND_FRAMES * ri, available // (min_rounds - index) // ri * ri)
        if steps > share:
            steps = share
            reason += (f"; cut to {share} steps: 1/{min_rounds - index} of the budget left, "
                       f"room for {min_rounds} rounds in all")
            return RoundPlan(steps, reason)
    if steps > available:
        steps = available
        reason += f"; cut to {available} steps: the rest of the budget"
    elif 0 < available - steps < floor:
        steps = available
        reason += (f"; takes the rest of the budget ({available} steps: less than a "
                   f"{floor}-step round would be left)")
    return RoundPlan(steps, reason)
