"""The loss of the 1-D-latent VAE: pure functions of tensors (the KL term, the per-frame
reconstruction and KL parts, the weighted negative ELBO); see :mod:`rave.learn.vae`."""

from __future__ import annotations

import torch


def kl_divergence_standard_normal(mu: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per frame (n_frames,), summed over latent dimensions.

    ``-0.5 sum(1 + log_variance - mu^2 - exp(log_variance))``, >= 0; ``mu`` and ``log_variance``
    of one shape, (n_frames,) or (n_frames, n_latent), else ValueError.
    """
    if mu.shape != log_variance.shape:
        raise ValueError(
            f"mu and log_variance must have the same shape. You supplied {tuple(mu.shape)} and "
            f"{tuple(log_variance.shape)}"
        )
    kl = -0.5 * (1.0 + log_variance - mu.pow(2) - log_variance.exp())
    return kl.reshape(kl.shape[0], -1).sum(dim=1) if kl.ndim > 1 else kl


def elbo_terms(
    x: torch.Tensor,
    x_reconstructed: torch.Tensor,
    mu: torch.Tensor,
    log_variance: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame (reconstruction, kl), each (n_frames,): squared error summed over features, and KL.

    ``x``, ``x_reconstructed`` (n_frames, n_features), standardised; ValueError for other shapes or
    ``mu`` without one row per frame.
    """
    if x.ndim != 2 or x.shape != x_reconstructed.shape:
        raise ValueError(
            "x and x_reconstructed must both have shape (n_frames, n_features). You supplied "
            f"{tuple(x.shape)} and {tuple(x_reconstructed.shape)}"
        )
    if mu.shape[0] != x.shape[0]:
        raise ValueError(
            f"mu must have one row per frame of x ({x.shape[0]}). You supplied {tuple(mu.shape)}"
        )
    reconstruction = (x_reconstructed - x).pow(2).sum(dim=1)
    return reconstruction, kl_divergence_standard_normal(mu, log_variance)


def elbo_loss(
    x: torch.Tensor,
    x_reconstructed: torch.Tensor,
    mu: torch.Tensor,
    log_variance: torch.Tensor,
    beta: float = 1.0,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Negative ELBO per frame, averaged (``sum(w loss) / sum(w)`` with ``weights``), a 0-d tensor.

    Per frame ``sum_j (x_reconstructed_j - x_j)^2 + beta KL``; integer weights equal repeating
    each frame w times. ValueError for ``beta < 0`` or weights not one per frame.
    """
    if beta < 0:
        raise ValueError(f"beta must be >= 0. You supplied {beta}")
    reconstruction, kl = elbo_terms(x, x_reconstructed, mu, log_variance)
    per_frame = reconstruction + beta * kl
    if weights is None:
        return per_frame.mean()
    if weights.shape != per_frame.shape:
        raise ValueError(
            f"weights must have shape ({per_frame.shape[0]},), one per frame. You supplied "
            f"{tuple(weights.shape)}"
        )
    weights = weights.to(per_frame.dtype)
    return (weights * per_frame).sum() / weights.sum()

