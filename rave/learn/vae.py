"""The 1-D-latent variational autoencoder (VAE) of RAVE, its weighted ELBO, and its estimator.

The network, its loss, the trained model and its training (the modules listed below) are, with
:mod:`rave.learn.estimator`, the torch code of rave; everything that leaves them is numpy.

Model (RAVE step 1, Ribeiro et al., J. Chem. Phys. 149, 072301 (2018)):

- inputs are the order parameters ("features") s in R^d, standardised with the weighted mean
  and standard deviation of the training frames (stored with the model);
- encoder d -> 512 -> 512 -> 512 -> (mu, log sigma^2), a Gaussian q(z|s) = N(mu, sigma^2) over a
  **1-D** latent z; decoder 1 -> 512 -> 512 -> 512 -> d;
- loss per frame: sum over features of the squared reconstruction error of the standardised
  inputs, plus beta * KL(N(mu, sigma^2) || N(0, 1)) with
  KL = -0.5 (1 + log sigma^2 - mu^2 - sigma^2);
- training draws z = mu + sigma * eps (reparameterisation); at inference the latent is the
  encoder mean mu, a deterministic function of s.

The code lives in one module per concern, each re-exported here:

* :mod:`rave.learn.vae_network`: the network (:class:`VAE`, ``ACTIVATIONS``, the device);
* :mod:`rave.learn.vae_loss`: the weighted ELBO as pure functions of tensors;
* :mod:`rave.learn.vae_model`: the trained model (:class:`VAEModel`) and its file;
* :mod:`rave.learn.vae_training`: :class:`VAEEstimator` (how the weights enter training,
  the budget of steps, early stopping, warm starts) and :func:`fit_seeds`;
* :mod:`rave.learn.vae_config`: :class:`VAEConfig`.
"""

from .vae_config import LR_SCHEDULES, VAEConfig
from .vae_loss import elbo_loss, elbo_terms, kl_divergence_standard_normal
from .vae_model import (
    FILE_FORMAT_VERSION,  # noqa: F401  (public constant, not in __all__)
    VAEModel,
)
from .vae_network import ACTIVATIONS, VAE, resolve_device
from .vae_training import (
    MIN_TRAINING_FRAMES,  # noqa: F401  (public constant, not in __all__)
    MIN_VALIDATION_FRAMES,  # noqa: F401  (public constant, not in __all__)
    VAEEstimator,
    fit_seeds,
)

__all__ = [
    "ACTIVATIONS",
    "LR_SCHEDULES",
    "VAE",
    "VAEConfig",
    "VAEEstimator",
    "VAEModel",
    "elbo_loss",
    "elbo_terms",
    "fit_seeds",
    "kl_divergence_standard_normal",
    "resolve_device",
]
