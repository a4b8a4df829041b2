"""Errors shared across the layers of rave: raised by the lowest layer that detects them and
caught by the layers above (the command line turns them into exit codes and one-line messages).

:class:`ConfigError` is raised where a configuration is checked: the ``[system]`` kinds of
:mod:`rave.systems` check their own keys, :mod:`rave.campaign.config` the rest.
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A configuration that cannot be run; the message names the key and what is allowed."""
