"""Analysis of a campaign on disk: results, metastable states, the report, figures, export.

* :mod:`rave.analysis.result`: :class:`CampaignResult` (a campaign loaded from its store, for
  notebooks and the report), :class:`RoundData`;
* :mod:`rave.analysis.states`: :func:`find_metastable_states`, :func:`count_transitions`,
  :func:`transition_matrix` (pure functions);
* :mod:`rave.analysis.report`: :func:`write_report` (``report.md`` / ``report.html``);
* :mod:`rave.analysis.plots`: the figures (matplotlib, imported when a figure is drawn);
* :mod:`rave.analysis.export`: the bias for PLUMED, OpenMM and TorchScript.
"""

from __future__ import annotations

from .report import write_report
from .result import (
    CampaignFileError,
    CampaignResult,
    ReportFigure,
    RoundData,
    chi_unit,
    config_change_lines,
)
from .states import (
    MIN_BIN_FRAMES,
    MIN_STATE_FRAMES,
    MetastableState,
    count_transitions,
    find_metastable_states,
    transition_matrix,
)

__all__ = [
    "CampaignFileError",
    "CampaignResult",
    "MIN_BIN_FRAMES",
    "MIN_STATE_FRAMES",
    "MetastableState",
    "ReportFigure",
    "RoundData",
    "chi_unit",
    "config_change_lines",
    "count_transitions",
    "find_metastable_states",
    "transition_matrix",
    "write_report",
]
