"""Quiet logs: a warning once per round; no progress bar when the output is not a terminal."""

from __future__ import annotations

import io
import logging

from tqdm import tqdm

from rave.campaign.logs import RepeatedWarnings, progress_disabled


def _logger(stream):
    logger = logging.getLogger("rave.test_logs")
    logger.handlers.clear()
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    handler.addFilter(RepeatedWarnings())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger


def test_a_warning_is_written_once_per_round_and_old_news_once():
    stream = io.StringIO()
    log = _logger(stream)
    log.info("round 1: training")
    for replicate in range(100):  # the same warning from every bootstrap replicate
        log.warning("MBAR reached a self-consistency error of %.3g kT", 1e-3 + replicate)
    log.warning("MBAR states 3-4: statistical inefficiency %d", 6)
    log.info("round 2: training")
    log.warning("MBAR reached a self-consistency error of %.3g kT", 5.0)  # new round: again
    log.warning("MBAR states 3-4: statistical inefficiency %d", 6)  # same text: old news
    log.warning("MBAR states 5-6: statistical inefficiency %d", 7)  # new text
    lines = stream.getvalue().splitlines()
    assert lines == ["round 1: training", "MBAR reached a self-consistency error of 0.001 kT",
                     "MBAR states 3-4: statistical inefficiency 6", "round 2: training",
                     "MBAR reached a self-consistency error of 5 kT",
                     "MBAR states 5-6: statistical inefficiency 7"]


def test_no_progress_bar_is_drawn_into_a_file():
    stream = io.StringIO()  # not a terminal
    with tqdm(total=10, file=stream, disable=progress_disabled(True)) as bar:
        bar.update(10)
    assert stream.getvalue() == ""
    assert progress_disabled(False) is True
