"""The memory a campaign's frames take, checked against this machine's before a campaign runs.

:func:`frame_memory_bytes` estimates the frame arrays and MBAR's matrix at the last round from
a :class:`rave.campaign.config.Config`; :func:`check_frame_memory` refuses a campaign whose
estimate exceeds half of the physical memory.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .config import Config


def frame_memory_bytes(config: Config, n_features: int) -> int:
    """Memory the campaign's frame arrays take at the last round, in bytes.

    That is every frame's order parameters, bias, time and walker (float64/int64) plus the
    MBAR matrix of every round's bias at every frame. Under a budget the frames are bounded by
    ``max_total_steps`` and by the longest rounds the schedule allows.
    """
    s = config.sampling
    frames = s.round_limit * s.walkers * (s.round_steps // s.report_interval)
    if s.max_total_steps is not None:
        # rounds adapt up to CAP_FACTOR x steps_per_round (plus a floor round's rest); the
        # budget bounds the frames over all rounds and walkers
        from .schedule import round_limits

        floor, cap = round_limits(s.round_steps, s.report_interval)
        frames = min(s.max_total_steps // s.report_interval,
                     s.round_limit * s.walkers * ((cap + floor) // s.report_interval))
        rounds = min(s.round_limit, s.max_total_steps // max(1, floor * s.walkers))
        return 8 * frames * (n_features + 3 + rounds)
    return 8 * frames * (n_features + 3 + s.round_limit)


def check_frame_memory(config: Config, n_features: int, available: int | None = None) -> None:
    """Refuse (ConfigError) a campaign whose frame arrays would not fit in half of ``available``
    bytes.

    ``available`` defaults to this machine's physical memory (the check is skipped where that
    cannot be read); the error names the estimate and the keys that set it.
    """
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return
    need = frame_memory_bytes(config, n_features)
    if need > available / 2:
        s = config.sampling
        if s.max_total_steps is not None:
            raise ConfigError(
                f"the frames of this campaign would take about {need / 2**30:.3g} GiB (up to "
                f"{s.max_total_steps} steps / {s.report_interval} frames over up to "
                f"{s.round_limit} rounds "
                f"of {n_features} order parameters, plus MBAR's matrix), more than half of "
                f"this machine's {available / 2**30:.3g} GiB. Lower sampling.max_total_steps "
                f"or sampling.rounds, or raise sampling.report_interval")
        raise ConfigError(
            f"the frames of this campaign would take about {need / 2**30:.3g} GiB "
            f"({s.round_limit} rounds x {s.walkers} walker(s) x "
            f"{s.round_steps // s.report_interval} frames of {n_features} order parameters, "
            f"plus MBAR's matrix), more than half of "
            f"this machine's {available / 2**30:.3g} GiB. Lower sampling.steps_per_round, "
            f"sampling.rounds or sampling.walkers, or raise sampling.report_interval")

