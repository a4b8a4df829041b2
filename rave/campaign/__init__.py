"""The campaign: config, the rounds of MD and learning, the walkers that run them, the store.

* :mod:`rave.campaign.config`: the TOML config (:func:`load_config`, :func:`config_from_dict`,
  :class:`Config`, :class:`ConfigError`); parsing imports neither torch nor OpenMM;
* :mod:`rave.campaign.campaign`: :class:`Campaign` (rounds, persistence, resume);
* :mod:`rave.campaign.schedule`: the MD budget and round lengths;
* :mod:`rave.campaign.walkers`: walker tasks run in this process or on Dask;
* :mod:`rave.campaign.resources`: cores and threads;
* :mod:`rave.campaign.simsystem`: the ``[system]`` section to an OpenMM System;
* :mod:`rave.campaign.store`: the work directory
  (:class:`~rave.campaign.store.CampaignStore`: its layout, writers and readers), atomic
  writes, the lock.

Names are loaded on first use, so ``import rave.campaign.config`` does not import the campaign
(and torch with it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # pragma: no cover
    from .campaign import BiasMismatchError, Campaign, RoundFailed
    from .config import Config, ConfigError, config_from_dict, load_config

_LAZY = {
    "Campaign": "rave.campaign.campaign",
    "RoundFailed": "rave.campaign.campaign",
    "BiasMismatchError": "rave.campaign.campaign",
    "Config": "rave.campaign.config",
    "ConfigError": "rave.campaign.config",
    "config_from_dict": "rave.campaign.config",
    "load_config": "rave.campaign.config",
}

__all__ = ["BiasMismatchError", "Campaign", "Config", "ConfigError", "RoundFailed",
           "config_from_dict", "load_config"]


__getattr__, __dir__ = lazy_names("rave.campaign", _LAZY, globals())
