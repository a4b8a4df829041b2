"""The learning part: the RAVE step on arrays of order parameters.

* :class:`RAVE`: the estimator (frames and their log-weights -> VAEs -> linear RC);
* :class:`RAVEModel`: what it learned (the RC, its models, the bias it implies);
* :class:`TrainedModel`: one VAE of a fit and its RC.

torch is imported by the learning itself (:meth:`RAVE.fit`, and a ``VAEConfig``), never by
``import rave.learn``.
"""

from .estimator import RAVE, RAVEModel, TrainedModel, stale_warm_starts

__all__ = ["RAVE", "RAVEModel", "TrainedModel", "stale_warm_starts"]
