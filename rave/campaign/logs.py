"""Quiet logs: each warning once per round, and progress bars only on a terminal.

:class:`RepeatedWarnings` is a :class:`logging.Filter` that the terminal log of ``rave`` and a
campaign's ``campaign.log`` both use. A warning is written once per round: a warning of the same
text (the same logger and message template with the same arguments) or of the same template
within one round is dropped, so a warning raised in every bootstrap replicate, or once per
walker with the same cause, is one line; a warning that names an older round and is raised
again in every later round is written once. The round is read from rave's own lines, which
start with ``round N`` (``round 3: training ...``).

:func:`progress_disabled` is the ``disable`` argument of a tqdm bar: no bar when the output
is not a terminal (a redirected log then holds no carriage returns or escape codes).
"""

from __future__ import annotations

import logging
import re

__all__ = ["RepeatedWarnings", "progress_disabled"]

_ROUND = re.compile(r"^round (\d+)\b")


class RepeatedWarnings(logging.Filter):
    """Drop a warning already written in this round (same template) or ever (same text).

    Records below WARNING pass untouched (they also tell the filter which round runs).
    """

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.round: int | None = None
        self._this_round: set[tuple[str, str]] = set()
        self._ever: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to write ``record``."""
        try:
            text = record.getMessage()
        except Exception:  # a malformed record: let the handler report it
            return True
        match = _ROUND.match(text)
        if match and int(match.group(1)) != self.round:
            self.round = int(match.group(1))
            self._this_round.clear()
        if record.levelno < logging.WARNING:
            return True
        template = (record.name, str(record.msg))
        whole = (record.name, text)
        if template in self._this_round or whole in self._ever:
            return False
        self._this_round.add(template)
        self._ever.add(whole)
        return True


def progress_disabled(enabled: bool = True) -> bool | None:
    """The ``disable`` argument of a tqdm bar."""
    return None if enabled else True
