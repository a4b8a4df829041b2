"""The loss of the 1-D-latent VAE: pure functions of tensors (the KL term, the per-frame
reconstruction and KL parts, the weighted negative ELBO); see :mod:`rave.learn.vae`."""

from __future__ import annotations

import torch


def kl_divergence_standard_normal(mu: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per frame, summed over latent dimensions.

    Parameters
    ----------
    mu, log_variance : torch.Tensor, shape=(n_frames,) or (n_frames, n_latent)
        Mean and log variance (dimensionless) of the Gaussian posterior of each frame.

    Returns
    -------
    torch.Tensor, shape=(n_frames,)
        ``-0.5 * sum(1 + log_variance - mu**2 - exp(log_variance))``; >= 0, and 0 exactly when
        mu = 0 and log_variance = 0.

    Raises
    ------
    ValueError
        When ``mu`` and ``log_variance`` differ in shape.
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
    """Per-frame reconstruction and KL parts of the VAE loss.

    Parameters
    ----------
    x, x_reconstructed : torch.Tensor, shape=(n_frames, n_features)
        Standardised inputs and their reconstruction (dimensionless).
    mu, log_variance : torch.Tensor, shape=(n_frames,) or (n_frames, n_latent)
        Posterior mean and log variance of the latent.

    Returns
    -------
    reconstruction : torch.Tensor, shape=(n_frames,)
        Sum over features of the squared error.
    kl : torch.Tensor, shape=(n_frames,)
        KL(N(mu, sigma^2) || N(0, 1)) of each frame.

    Raises
    ------
    ValueError
        When ``x`` is not 2-D or differs in shape from ``x_reconstructed``, or ``mu``
        does not have one row per frame.
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
    """Negative ELBO of the VAE, averaged over frames (weighted mean if ``weights`` are given).

    Per frame: ``sum_j (x_reconstructed_j - x_j)**2 + beta * KL(N(mu, sigma^2) || N(0, 1))``.

    Parameters
    ----------
    x, x_reconstructed : torch.Tensor, shape=(n_frames, n_features)
        Standardised inputs and their reconstruction (dimensionless).
    mu, log_variance : torch.Tensor, shape=(n_frames,) or (n_frames, n_latent)
        Posterior mean and log variance of the latent.
    beta : float
        Weight of the KL term, >= 0.
    weights : torch.Tensor, shape=(n_frames,), optional
        Non-negative frame weights, not necessarily normalised; the result is
        ``sum(w * loss) / sum(w)``. Integer weights give the same value as repeating each frame
        w times.

    Returns
    -------
    torch.Tensor, shape=()
        The (weighted) mean loss per frame.

    Raises
    ------
    ValueError
        When ``beta < 0``, or the weights are not one per frame.
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

