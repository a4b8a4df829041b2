"""The 1-D-latent variational autoencoder (VAE) of RAVE, its weighted ELBO, and its estimator.

This is the only rave module that imports torch. Everything that leaves it is numpy.

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

How the per-frame weights enter (the weighted ELBO)
---------------------------------------------------
The objective is the weighted mean of the per-frame losses, sum_i w_i l_i / sum_i w_i: the
expectation of the loss under the reweighted (unbiased) ensemble. Training estimates its
gradient on minibatches drawn **with replacement with probability proportional to w_i**, and
averages the per-frame losses of a minibatch with equal weight. This estimate is unbiased, like a
weighted mean over a uniformly drawn minibatch, but its variance does not blow up when the
weights span many orders of magnitude (frames reweighted with exp(+beta V) of a bias do): with
uniform minibatches the one frame of largest weight in a batch would carry nearly all of the
gradient and the effective batch size would collapse to ~1. Frames of weight zero are never
drawn. The validation loss, used for early stopping, is the exact weighted mean over the
validation frames with a fixed draw of eps, so it is a deterministic function of the network.

Training cost is set by a budget of optimiser steps that follows the data, not by a pass over
it: an "epoch" is ``ceil(frames_per_epoch / batch_size)`` steps (frames are drawn with
replacement, so an epoch needs no pass over the data), followed by one validation pass. A cold
fit runs ``ceil(max_passes * n_train / frames_per_epoch)`` epochs clipped to
``[min_epochs, max_epochs]``; a warm start (``fit(..., initial=model)``: the previous round's
network, its input layer and output layer rescaled so that it computes the same function of the
raw order parameters under the new standardisation) gets ``warm_fraction`` of that. The learning
rate follows a cosine decay to zero over the budget (or, optionally, halves on plateaus).
Training stops early when the validation loss has not improved by a relative
``min_improvement`` for ``patience`` epochs, or, with ``stop_on_stable_order``, when what the
campaign uses stopped changing: the ordering of the validation frames by the latent and the
direction of the latent's best linear fit on the inputs. The network of lowest validation loss
(of any epoch) is returned. Measured costs are in docs/benchmarks.md.

Several seeds train at once with :func:`fit_seeds`: one thread per seed, each with its own
generator, so that a seed gives the same model whether it trains alone or beside others (with
the same number of intra-op threads).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..files import write_file
from ..stats.weights import effective_sample_size, normalised_weights
from .coordinate import least_squares_direction
from .vae_config import LR_SCHEDULES, VAEConfig, _is_int

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

#: Activation functions that :class:`VAEConfig` accepts, by name (``ACTIVATION_NAMES``).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
}

#: Version of the file layout written by :meth:`VAEModel.save`.
FILE_FORMAT_VERSION = 1
#: the file-format tag of a saved model (a stored contract: the module it was first defined in,
#: kept when the module moved)
_FILE_KIND = "rave.vae.VAEModel"

#: Frames pushed through the network at once at inference (memory bound, not a result).
_INFERENCE_CHUNK = 65_536

#: The smallest validation split and training split that ``fit`` accepts, in frames.
MIN_VALIDATION_FRAMES = 1
MIN_TRAINING_FRAMES = 2


def resolve_device(device: str = "auto") -> torch.device:
    """Turn a device name into a :class:`torch.device`.

    Parameters
    ----------
    device : str
        "auto" (CUDA if available, else CPU), "cpu", "cuda" or "cuda:N".

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For an unknown name, or for a CUDA device when torch sees no CUDA device.
    """
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'. You supplied {device!r}"
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but torch {torch.__version__} sees no CUDA "
                "device; use device='cpu' or 'auto'"
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but only {torch.cuda.device_count()} CUDA "
                "device(s) exist"
            )
    return torch.device(device)


# --------------------------------------------------------------------------------------------
# loss: pure functions of tensors
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------------


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Gaussian VAE with a 1-D latent.

    Parameters
    ----------
    n_features : int
        Number of input features d.
    hidden : tuple of int
        Hidden-layer widths of the encoder d -> hidden -> 2 (mu, log sigma^2); the decoder is
        1 -> hidden -> d.
    activation : str
        One of :data:`ACTIVATIONS`.

    Raises
    ------
    ValueError
        When ``n_features`` is not a positive int or ``activation`` is not one of
        :data:`ACTIVATIONS`.
    """

    def __init__(
        self,
        n_features: int,
        hidden: tuple[int, ...] = (512, 512, 512),
        activation: str = "tanh",
    ) -> None:
        super().__init__()
        if not _is_int(n_features) or n_features < 1:
            raise ValueError(f"n_features must be a positive int. You supplied {n_features!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATIONS)}. You supplied {activation!r}"
            )
        self.n_features = int(n_features)
        self.encoder = _mlp(self.n_features, tuple(hidden), 2, activation)
        self.decoder = _mlp(1, tuple(hidden), self.n_features, activation)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log variance, each of shape (n_frames, 1).

        Parameters
        ----------
        x : torch.Tensor, shape=(n_frames, n_features)
            Standardised inputs.

        Returns
        -------
        mu, log_variance : torch.Tensor, shape=(n_frames, 1)
            Mean and log variance of the Gaussian posterior of the latent.
        """
        out = self.encoder(x)
        return out[:, :1], out[:, 1:]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction of shape (n_frames, n_features) from latents of shape (n_frames, 1).

        Parameters
        ----------
        z : torch.Tensor, shape=(n_frames, 1)
            Latents.

        Returns
        -------
        torch.Tensor, shape=(n_frames, n_features)
            The decoder's output (standardised features).
        """
        return self.decoder(z)

    def forward(
        self,
        x: torch.Tensor,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, draw the latent, decode.

        Parameters
        ----------
        x : torch.Tensor, shape=(n_frames, n_features)
            Standardised inputs.
        eps : torch.Tensor, shape=(n_frames, 1), optional
            Standard-normal noise for z = mu + sigma * eps. If None, it is drawn (from
            ``generator``) in training mode, and z = mu (no noise) in eval mode.
        generator : torch.Generator, optional
            Source of eps in training mode, on the device of ``x``.

        Returns
        -------
        x_reconstructed : torch.Tensor, shape=(n_frames, n_features)
        mu, log_variance, z : torch.Tensor, shape=(n_frames, 1)
        """
        mu, log_variance = self.encode(x)
        if eps is None and self.training:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu if eps is None else mu + torch.exp(0.5 * log_variance) * eps
        return self.decode(z), mu, log_variance, z


# --------------------------------------------------------------------------------------------
# input checks (numpy side)
# --------------------------------------------------------------------------------------------


def _check_features(features: Any, name: str = "features") -> np.ndarray:
    try:
        array = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be a real array of shape (n_frames, n_features). You supplied "
            f"{type(features).__name__}: {exc}"
        ) from None
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D, shape (n_frames, n_features). You supplied shape "
            f"{array.shape}; for one feature use features.reshape(-1, 1)"
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: the trajectory has no frames")
    if array.shape[1] == 0:
        raise ValueError(f"{name} has no feature columns. You supplied shape {array.shape}")
    finite = np.isfinite(array)
    if not finite.all():
        bad = (~finite).sum(axis=0)
        columns = ", ".join(
            f"feature {j} in {int(bad[j])} of {array.shape[0]} frames" for j in np.flatnonzero(bad)
        )
        raise ValueError(f"{name} contains NaN or inf values: {columns}")
    return array


def _weighted_draws(cdf: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator):
    """Frame indices drawn with replacement, P(i) = cdf[i] - cdf[i-1] (cdf ends at 1).

    Frames of weight zero are never drawn: u in [0, 1) picks the first i with cdf[i] > u.
    """
    draws = np.searchsorted(cdf, rng.random(shape), side="right")
    return np.minimum(draws, cdf.shape[0] - 1)


def _weighted_scaler(x: np.ndarray, w: np.ndarray, fallback_scale: np.ndarray):
    """Weighted mean and standard deviation per column (w sums to 1)."""
    mean = w @ x
    scale = np.sqrt(w @ (x - mean) ** 2)
    # The weighted spread can vanish when the weight sits on a few frames with equal values of
    # a feature; dividing by it would blow that feature up. Use the unweighted spread instead.
    tiny = scale <= 1e-8 * fallback_scale
    scale = np.where(tiny, fallback_scale, scale)
    return mean, scale


# --------------------------------------------------------------------------------------------
# the trained model
# --------------------------------------------------------------------------------------------


def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array


class _EncoderMean(nn.Module):
    """Raw order parameters -> latent mean; the scaler is part of the module (TorchScript)."""

    def __init__(self, encoder: nn.Module, mean: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder((x - self.mean) / self.scale)[:, :1]


class VAEModel:
    """A trained 1-D-latent VAE with its input scaler: maps order parameters to the latent.

    Parameters
    ----------
    network : VAE
        The trained network; it is put in eval mode and its parameters are frozen.
    config : VAEConfig
        The settings it was trained with.
    feature_mean, feature_scale : np.ndarray, shape=(n_features,)
        The input scaler, in the features' units (kept as read-only copies).
    history : dict
        The training record (copied); its keys are listed under Attributes.
    device : torch.device or str, optional
        Where the network lives.

    Attributes
    ----------
    n_features : int
        Number of input features d.
    config : VAEConfig
        The settings it was trained with.
    feature_mean, feature_scale : np.ndarray, shape=(n_features,)
        Weighted mean and standard deviation of the training frames, in the features' units;
        inputs are standardised as (s - feature_mean) / feature_scale.
    history : dict
        ``train_loss``, ``validation_loss``, ``learning_rate`` (at the end of the epoch),
        ``elapsed_s`` (lists, one entry per epoch), ``epochs``, ``steps``, ``steps_per_epoch``,
        ``best_epoch`` (1-based epoch whose network is kept), ``best_validation_loss``,
        ``stopped_early`` (bool), ``wall_time_s``, ``n_train``, ``n_validation``,
        ``effective_sample_size`` (Kish ESS of the training weights), ``device``, ``seed``.
    device : torch.device
        Where the network lives.

    Raises
    ------
    ValueError
        When ``feature_mean`` or ``feature_scale`` is not of shape (n_features,).
    """

    def __init__(
        self,
        network: VAE,
        config: VAEConfig,
        feature_mean: np.ndarray,
        feature_scale: np.ndarray,
        history: dict[str, Any],
        device: torch.device | str = "cpu",
    ) -> None:
        self._network = network.eval()
        self.config = config
        self.n_features = int(network.n_features)
        self.feature_mean = _readonly(feature_mean)
        self.feature_scale = _readonly(feature_scale)
        if self.feature_mean.shape != (self.n_features,) or self.feature_scale.shape != (
            self.n_features,
        ):
            raise ValueError(
                f"feature_mean and feature_scale must have shape ({self.n_features},). You "
                f"supplied {self.feature_mean.shape} and {self.feature_scale.shape}"
            )
        self.history = dict(history)
        self.device = torch.device(device)
        for p in self._network.parameters():
            p.requires_grad_(False)

    @property
    def network(self) -> VAE:
        """The torch module (eval mode, frozen parameters)."""
        return self._network

    def _standardised(self, features: Any) -> np.ndarray:
        x = _check_features(features)
        if x.shape[1] != self.n_features:
            raise ValueError(
                f"features must have {self.n_features} columns, as in training. You supplied "
                f"shape {x.shape}"
            )
        return (x - self.feature_mean) / self.feature_scale

    def encode(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and log variance of the latent.

        Parameters
        ----------
        features : np.ndarray, shape=(n_frames, n_features)
            Order parameters, in the units used in training.

        Returns
        -------
        mu : np.ndarray, shape=(n_frames,), dtype=float64
            Latent mean (dimensionless): the RAVE latent coordinate.
        log_variance : np.ndarray, shape=(n_frames,), dtype=float64
            Log of the posterior variance of the latent.
        """
        x = self._standardised(features)
        mus, log_vars = [], []
        # flush denormals as training does: the switch is global, so without this a latent
        # would depend on whether another seed was still training at that moment
        with torch.no_grad(), _flush_denormal(self.device.type == "cpu"):
            for start in range(0, x.shape[0], _INFERENCE_CHUNK):
                chunk = torch.as_tensor(
                    x[start : start + _INFERENCE_CHUNK], dtype=torch.float32, device=self.device
                )
                mu, log_variance = self._network.encode(chunk)
                mus.append(mu[:, 0].detach().cpu().numpy())
                log_vars.append(log_variance[:, 0].detach().cpu().numpy())
        return (
            np.concatenate(mus).astype(np.float64),
            np.concatenate(log_vars).astype(np.float64),
        )

    def transform(self, features: np.ndarray) -> np.ndarray:
        """The latent coordinate: the encoder mean, deterministic.

        Parameters
        ----------
        features : np.ndarray, shape=(n_frames, n_features)
            Order parameters, in the units used in training.

        Returns
        -------
        np.ndarray, shape=(n_frames,), dtype=float64
            Latent mean mu of each frame (dimensionless; its sign is arbitrary).
        """
        return self.encode(features)[0]

    def loss(
        self,
        features: np.ndarray,
        weights: np.ndarray | None = None,
        log_weights: np.ndarray | None = None,
        seed: int = 0,
    ) -> float:
        """Weighted mean VAE loss (negative ELBO, ``config.beta``) of frames, e.g. a test set.

        One draw of eps per frame, from ``seed``, so the value is reproducible; it is the same
        quantity as the validation loss in ``history``.

        Parameters
        ----------
        features : np.ndarray, shape=(n_frames, n_features)
            Order parameters, in the units used in training.
        weights, log_weights : np.ndarray, shape=(n_frames,), optional
            Frame weights or their logs (at most one); uniform if neither.
        seed : int
            Seed of the reparameterisation noise.

        Returns
        -------
        float
            Loss per frame, in the units of squared standardised features.
        """
        x = self._standardised(features)
        w = normalised_weights(x.shape[0], weights, log_weights)
        eps = np.random.default_rng(seed).standard_normal((x.shape[0], 1))
        total = 0.0
        with torch.no_grad(), _flush_denormal(self.device.type == "cpu"):
            for start in range(0, x.shape[0], _INFERENCE_CHUNK):
                stop = start + _INFERENCE_CHUNK
                chunk = torch.as_tensor(x[start:stop], dtype=torch.float32, device=self.device)
                noise = torch.as_tensor(eps[start:stop], dtype=torch.float32, device=self.device)
                x_rec, mu, log_variance, _ = self._network(chunk, eps=noise)
                reconstruction, kl = elbo_terms(chunk, x_rec, mu, log_variance)
                per_frame = (reconstruction + self.config.beta * kl).double().cpu().numpy()
                total += float(w[start:stop] @ per_frame)
        return total

    def export_torchscript(self, path: str | Path) -> None:
        """Write the encoder mean as TorchScript, standardisation included.

        The module takes raw order parameters, float32 of shape (n, n_features), and returns the
        latent mean, shape (n, 1): the deterministic RAVE latent (e.g. for PLUMED's PYTORCH
        module or an OpenMM-Torch force). Written atomically.

        Parameters
        ----------
        path : str or Path
            Destination file.
        """
        module = _EncoderMean(
            copy.deepcopy(self._network.encoder).to("cpu").float().eval(),
            torch.tensor(np.array(self.feature_mean), dtype=torch.float32),
            torch.tensor(np.array(self.feature_scale), dtype=torch.float32),
        )
        scripted = torch.jit.script(module)
        write_file(Path(path), lambda tmp: scripted.save(str(tmp)))

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to one file (torch.save of plain tensors/lists), atomically.

        Parameters
        ----------
        path : str or os.PathLike
            Destination; written to a temporary file in the same folder, then renamed
            (:func:`rave.files.write_file`: mode from the umask, fsynced with its folder).
        """
        payload = {
            "kind": _FILE_KIND,
            "format_version": FILE_FORMAT_VERSION,
            "n_features": self.n_features,
            "config": self.config.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self._network.state_dict().items()},
            "feature_mean": torch.from_numpy(np.array(self.feature_mean)),
            "feature_scale": torch.from_numpy(np.array(self.feature_scale)),
            "history": self.history,
        }
        write_file(path, lambda tmp: torch.save(payload, tmp), durable=True)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu") -> VAEModel:
        """Read a model written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
            File written by :meth:`save`.
        device : str
            Where to put the network: "cpu", "cuda", "cuda:N" or "auto".

        Returns
        -------
        VAEModel

        Raises
        ------
        ValueError
            When the file is not a saved VAEModel, or of another format version.
        """
        target = resolve_device(device)
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("kind") != _FILE_KIND:
            raise ValueError(f"{path} is not a rave VAEModel file")
        if payload.get("format_version") != FILE_FORMAT_VERSION:
            raise ValueError(
                f"{path} has VAEModel file format {payload.get('format_version')}; this rave "
                f"reads format {FILE_FORMAT_VERSION}"
            )
        config = VAEConfig.from_dict(payload["config"])
        network = VAE(payload["n_features"], config.hidden, config.activation)
        network.load_state_dict(payload["state_dict"])
        network.to(target)
        return cls(
            network,
            config,
            payload["feature_mean"].numpy(),
            payload["feature_scale"].numpy(),
            payload["history"],
            target,
        )

    def __repr__(self) -> str:
        return (
            f"VAEModel(n_features={self.n_features}, hidden={self.config.hidden}, "
            f"activation={self.config.activation!r}, epochs={self.history.get('epochs')})"
        )


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------


class VAEEstimator:
    """Trains a 1-D-latent VAE on weighted frames (see the module docstring for the scheme).

    Parameters
    ----------
    config : VAEConfig
        Architecture and training settings.
    seed : int
        Seeds the validation split, the network initialisation, the minibatch draws and the
        reparameterisation noise. The same seed, data and config give the same model on CPU
        (with the same number of torch threads). Global torch and numpy random states are left
        untouched.

    Raises
    ------
    TypeError
        When ``config`` is not a VAEConfig.
    ValueError
        When ``seed`` is not a non-negative int.

    Examples
    --------
    >>> model = VAEEstimator(VAEConfig(), seed=1).fit(features, log_weights=log_w).fetch_model()
    >>> latent = model.transform(features)
    """

    def __init__(self, config: VAEConfig = VAEConfig(), seed: int = 0) -> None:  # noqa: B008
        if not isinstance(config, VAEConfig):
            raise TypeError(f"config must be a VAEConfig. You supplied {type(config).__name__}")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seed must be a non-negative int. You supplied {seed!r}")
        self.config = config
        self.seed = int(seed)
        self._model: VAEModel | None = None

    def _n_validation(self, n_frames: int) -> int:
        fraction = round(self.config.validation_fraction * n_frames)
        return min(max(MIN_VALIDATION_FRAMES, int(fraction)), self.config.max_validation_frames)

    def fetch_model(self) -> VAEModel:
        """The model of the last :meth:`fit`.

        Returns
        -------
        VAEModel
            The trained model.

        Raises
        ------
        ValueError
            When :meth:`fit` has not been called.
        """
        if self._model is None:
            raise ValueError("no model yet: call fit(features) before fetch_model()")
        return self._model

    def budget_epochs(self, n_train: int, warm: bool = False) -> int:
        """Epochs a fit on ``n_train`` training frames may run (see ``VAEConfig.max_passes``).

        Parameters
        ----------
        n_train : int
            Frames in the training split.
        warm : bool
            A warm start gets ``warm_fraction`` of the cold budget, at least one epoch.

        Returns
        -------
        int
        """
        cfg = self.config
        by_data = math.ceil(cfg.max_passes * n_train / cfg.frames_per_epoch)
        cold = min(cfg.max_epochs, max(cfg.min_epochs, by_data))
        return max(1, math.ceil(cfg.warm_fraction * cold)) if warm else cold

    def fit(
        self,
        features: np.ndarray,
        weights: np.ndarray | None = None,
        log_weights: np.ndarray | None = None,
        progress: bool | str = False,
        initial: VAEModel | None = None,
    ) -> VAEEstimator:
        """Train on frames of order parameters, each with a weight.

        Parameters
        ----------
        features : np.ndarray, shape=(n_frames, n_features), dtype=float
            Order parameters of each frame, any units (each column is standardised).
        weights : np.ndarray, shape=(n_frames,), optional
            Non-negative frame weights, any scale.
        log_weights : np.ndarray, shape=(n_frames,), optional
            Natural logs of the weights (preferred; -inf for weight 0). Give at most one of
            ``weights`` and ``log_weights``; with neither, frames weigh the same.
        progress : bool or str
            Show a tqdm progress bar over epochs; a string is the bar's label.
        initial : VAEModel, optional
            Warm start: begin from this model's network (same ``n_features``, ``hidden`` and
            ``activation``), rescaled to the standardisation of these frames so that it starts
            as the same function of the raw order parameters, and train for ``warm_fraction``
            of the cold budget. The validation split, minibatches and noise still follow
            ``seed``.

        Returns
        -------
        VAEEstimator
            self; the result is :meth:`fetch_model`.

        Raises
        ------
        ValueError
            When the frames are too few for a validation split (fewer than
            ``MIN_TRAINING_FRAMES`` left to train), the training or validation weights sum to
            0, or a feature is constant (and for invalid features or weights).
        FloatingPointError
            When the validation loss is not finite.
        """
        cfg = self.config
        started = time.perf_counter()
        x = _check_features(features)
        n_frames, n_features = x.shape
        w = normalised_weights(n_frames, weights, log_weights)
        spread = x.std(axis=0)
        for j in range(n_features):
            if np.ptp(x[:, j]) == 0.0:
                raise ValueError(
                    f"feature {j} has zero variance over the {n_frames} frames: it carries no "
                    "information; remove it"
                )
        if initial is not None:
            _check_initial(initial, n_features, cfg)
        n_val = self._n_validation(n_frames)
        n_train = n_frames - n_val
        if n_train < MIN_TRAINING_FRAMES:
            need = MIN_TRAINING_FRAMES + MIN_VALIDATION_FRAMES
            while need - self._n_validation(need) < MIN_TRAINING_FRAMES:
                need += 1
            raise ValueError(
                f"too few frames for a validation split: {n_frames} frames with "
                f"validation_fraction={cfg.validation_fraction:g} leave {n_train} for training; "
                f"need at least {need} frames to keep >= {MIN_VALIDATION_FRAMES} validation and "
                f">= {MIN_TRAINING_FRAMES} training frames"
            )
        device = resolve_device(cfg.device)

        rng = np.random.default_rng(self.seed)
        order = rng.permutation(n_frames)
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        w_train, w_val = w[train_idx], w[val_idx]
        if w_train.sum() <= 0.0:
            raise ValueError(
                f"all {int((w > 0).sum())} frames with non-zero weight fell into the validation "
                "split: nothing left to train on; give more frames non-zero weight"
            )
        if w_val.sum() <= 0.0:
            raise ValueError(
                f"none of the {int((w > 0).sum())} frames with non-zero weight fell into the "
                "validation split: the validation loss is undefined; give more frames non-zero "
                "weight or raise validation_fraction"
            )
        w_train = w_train / w_train.sum()
        w_val = w_val / w_val.sum()
        x_train_raw = x[train_idx]
        mean, scale = _weighted_scaler(x_train_raw, w_train, spread)

        def to_device(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(array, dtype=torch.float32).to(device)

        x_val_np = (x[val_idx] - mean) / scale
        x_train = to_device((x_train_raw - mean) / scale)
        x_val = to_device(x_val_np)
        w_val_t = to_device(w_val)

        # Initialise on CPU under a forked RNG: same weights whatever the device, and the
        # caller's global torch RNG state is untouched. The global RNG is shared by threads, so
        # seeds trained side by side (fit_seeds) take turns here.
        # A warm start is built here too: constructing a module draws from the global RNG.
        with _INIT_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if initial is None:
                network = VAE(n_features, cfg.hidden, cfg.activation)
            else:
                network = _warm_network(initial, mean, scale)
            eps_val = torch.randn((n_val, 1), dtype=torch.float32)
        network.to(device)
        eps_val = eps_val.to(device)
        noise = torch.Generator(device=device)
        noise.manual_seed(self.seed + 1)
        optimiser = torch.optim.Adam(network.parameters(), lr=cfg.learning_rate)
        learning_rate = cfg.learning_rate

        cdf = np.cumsum(w_train)
        cdf /= cdf[-1]
        steps_per_epoch = math.ceil(cfg.frames_per_epoch / cfg.batch_size)
        budget = self.budget_epochs(n_train, warm=initial is not None)
        # the stable-order stop: warm fits may stop after their first epoch (compared with the
        # starting network), cold fits not before min_epochs
        first_order_check = 1 if initial is not None else min(cfg.min_epochs, budget)

        def validation_pass() -> tuple[float, np.ndarray]:
            network.eval()
            with torch.no_grad():
                x_rec, mu, log_variance, _ = network(x_val, eps=eps_val)
                loss = elbo_loss(x_val, x_rec, mu, log_variance, cfg.beta, w_val_t)
            network.train()
            return float(loss.item()), mu[:, 0].detach().cpu().numpy().astype(np.float64)

        history: dict[str, Any] = {
            "train_loss": [],
            "validation_loss": [],
            "learning_rate": [],
            "elapsed_s": [],
            "rank_correlation": [],
            "direction_change_deg": [],
        }
        best_loss = math.inf  # lowest validation loss so far: its network is kept
        best_state: dict[str, torch.Tensor] | None = None
        best_epoch = 0
        reference_loss = math.inf  # last loss that beat its predecessor by min_improvement
        since_best = 0
        since_decay = 0
        stop_reason = "budget"
        steps = 0
        previous_order = None
        if initial is not None:
            previous_order = _order_summary(validation_pass()[1], x_val_np, w_val)

        bar = None
        if progress:
            from tqdm.auto import tqdm

            label = progress if isinstance(progress, str) else f"VAE seed {self.seed}"
            bar = tqdm(total=budget, desc=label, unit="epoch", leave=False,
                       disable=None)  # no bar when stderr is not a terminal
        network.train()
        with _flush_denormal(device.type == "cpu"):
            try:
                for epoch in range(1, budget + 1):
                    draws = _weighted_draws(cdf, (steps_per_epoch, cfg.batch_size), rng)
                    draws = torch.as_tensor(draws).to(device)
                    running = torch.zeros((), device=device)
                    for step in range(steps_per_epoch):
                        if cfg.lr_schedule == "cosine":
                            t = (steps + step) / (budget * steps_per_epoch)
                            learning_rate = cfg.learning_rate * 0.5 * (1.0 + math.cos(math.pi * t))
                            for group in optimiser.param_groups:
                                group["lr"] = learning_rate
                        batch = x_train[draws[step]]
                        x_rec, mu, log_variance, _ = network(batch, generator=noise)
                        loss = elbo_loss(batch, x_rec, mu, log_variance, cfg.beta)
                        optimiser.zero_grad(set_to_none=True)
                        loss.backward()
                        optimiser.step()
                        running += loss.detach()
                    steps += steps_per_epoch
                    train_loss = float(running.item()) / steps_per_epoch
                    val_loss, mu_val = validation_pass()
                    if not math.isfinite(val_loss):
                        raise FloatingPointError(
                            f"VAE training diverged at epoch {epoch} (validation loss "
                            f"{val_loss}); lower learning_rate (now {cfg.learning_rate:g})"
                        )
                    history["train_loss"].append(train_loss)
                    history["validation_loss"].append(val_loss)
                    history["learning_rate"].append(learning_rate)
                    history["elapsed_s"].append(time.perf_counter() - started)
                    order_now = _order_summary(mu_val, x_val_np, w_val)
                    rank_corr = angle = None
                    if previous_order is not None:
                        rank_corr, angle = _order_change(previous_order, order_now, w_val)
                    previous_order = order_now
                    history["rank_correlation"].append(rank_corr)
                    history["direction_change_deg"].append(angle)
                    if val_loss < best_loss:
                        best_loss, best_epoch = val_loss, epoch
                        best_state = {
                            k: v.detach().clone() for k, v in network.state_dict().items()
                        }
                    # patience counts epochs without a *significant* improvement
                    if math.isinf(reference_loss) or val_loss < reference_loss - (
                        cfg.min_improvement * abs(reference_loss)
                    ):
                        reference_loss = val_loss
                        since_best = since_decay = 0
                    else:
                        since_best += 1
                        since_decay += 1
                    if bar is not None:
                        bar.set_postfix(val=f"{val_loss:.4f}")
                        bar.update(1)
                    if since_best >= cfg.patience:
                        stop_reason = "loss"
                        break
                    if (
                        cfg.stop_on_stable_order
                        and epoch >= first_order_check
                        and rank_corr is not None
                        and rank_corr >= cfg.stop_rank_correlation
                        and angle <= cfg.stop_angle_deg
                        and since_best > 0
                    ):
                        stop_reason = "stable order"
                        break
                    if (
                        cfg.lr_schedule == "plateau"
                        and since_decay >= cfg.lr_patience
                        and cfg.lr_decay < 1.0
                    ):
                        learning_rate *= cfg.lr_decay
                        for group in optimiser.param_groups:
                            group["lr"] = learning_rate
                        since_decay = 0
            finally:
                if bar is not None:
                    bar.close()

        if best_state is not None:
            network.load_state_dict(best_state)
        network.eval()
        with np.errstate(divide="ignore"):  # weight 0 -> -inf
            log_w_train = np.log(w_train)
        history.update(
            epochs=len(history["validation_loss"]),
            budget_epochs=budget,
            steps=steps,
            steps_per_epoch=steps_per_epoch,
            best_epoch=best_epoch,
            best_validation_loss=best_loss,
            stopped_early=stop_reason != "budget",
            stop_reason=stop_reason,
            warm_start=initial is not None,
            wall_time_s=time.perf_counter() - started,
            n_train=n_train,
            n_validation=n_val,
            effective_sample_size=effective_sample_size(log_w_train),
            device=str(device),
            seed=self.seed,
            intra_op_threads=torch.get_num_threads(),
        )
        self._model = VAEModel(network, cfg, mean, scale, history, device)
        return self


# --------------------------------------------------------------------------------------------
# helpers of fit: warm start, stable-order check, thread-safe global torch state
# --------------------------------------------------------------------------------------------

_INIT_LOCK = threading.Lock()
_FLUSH_LOCK = threading.Lock()
_flush_users = 0


@contextlib.contextmanager
def _flush_denormal(enable: bool):
    """Flush denormal floats to zero while any fit is training on the CPU.

    Adam's second moments of near-dead units underflow into denormal floats, which made CPU
    steps 3x slower. The switch is global to the process and torch has no getter, so fits
    running side by side count themselves in and out; the last one resets torch's default (off).
    """
    global _flush_users
    if not enable:
        yield
        return
    with _FLUSH_LOCK:
        if _flush_users == 0:
            torch.set_flush_denormal(True)
        _flush_users += 1
    try:
        yield
    finally:
        with _FLUSH_LOCK:
            _flush_users -= 1
            if _flush_users == 0:
                torch.set_flush_denormal(False)


def _check_initial(initial: Any, n_features: int, cfg: VAEConfig) -> None:
    if not isinstance(initial, VAEModel):
        raise TypeError(f"initial must be a VAEModel. You supplied {type(initial).__name__}")
    mine = (n_features, cfg.hidden, cfg.activation)
    theirs = (initial.n_features, initial.config.hidden, initial.config.activation)
    if mine != theirs:
        raise ValueError(
            "initial must have the architecture being trained (n_features, hidden, "
            f"activation) = {mine}. You supplied a model with {theirs}"
        )


def _warm_network(initial: VAEModel, mean: np.ndarray, scale: np.ndarray) -> VAE:
    """A copy of ``initial``'s network that, fed inputs standardised with ``mean``/``scale``,
    computes what ``initial`` computes from the same raw order parameters. Call it under
    ``_INIT_LOCK`` with the global RNG forked (building the module draws from it).

    With x_old = (s - m1)/s1 and x_new = (s - m2)/s2: x_old = x_new * (s2/s1) + (m2 - m1)/s1, so
    the first encoder layer takes W * (s2/s1) and b + W (m2 - m1)/s1; the decoder's output, a
    reconstruction of x_old, becomes one of x_new through (y - (m2 - m1)/s1) * (s1/s2).
    """
    source = initial.network
    network = VAE(source.n_features, initial.config.hidden, initial.config.activation)
    network.load_state_dict({k: v.detach().to("cpu") for k, v in source.state_dict().items()})
    m1, s1 = np.asarray(initial.feature_mean), np.asarray(initial.feature_scale)
    ratio = torch.as_tensor(np.asarray(scale) / s1, dtype=torch.float32)
    shift = torch.as_tensor((np.asarray(mean) - m1) / s1, dtype=torch.float32)
    first, last = network.encoder[0], network.decoder[-1]
    with torch.no_grad():
        first.bias += first.weight @ shift
        first.weight *= ratio[None, :]
        last.bias -= shift
        last.bias /= ratio
        last.weight /= ratio[:, None]
    for p in network.parameters():
        p.requires_grad_(True)
    return network


def _order_summary(mu: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of the latent and the unit direction of its weighted linear fit on x."""
    ranks = np.empty(mu.shape[0])
    ranks[np.argsort(mu, kind="stable")] = np.arange(mu.shape[0])
    direction = least_squares_direction(x, mu, w)
    return ranks, np.zeros(x.shape[1]) if direction is None else direction


def _order_change(before, after, w: np.ndarray) -> tuple[float, float]:
    """Weighted rank correlation of two latents and the angle (degrees, sign-agnostic)
    between their linear-fit directions."""
    (r0, c0), (r1, c1) = before, after
    d0, d1 = r0 - w @ r0, r1 - w @ r1
    denominator = math.sqrt(float(w @ d0**2) * float(w @ d1**2))
    correlation = float(w @ (d0 * d1)) / denominator if denominator > 0 else 0.0
    cosine = min(1.0, abs(float(c0 @ c1)))
    return correlation, math.degrees(math.acos(cosine))


# --------------------------------------------------------------------------------------------
# several seeds at once
# --------------------------------------------------------------------------------------------


def fit_seeds(
    features: np.ndarray,
    seeds: list[int],
    config: VAEConfig = VAEConfig(),  # noqa: B008
    log_weights: np.ndarray | None = None,
    initial: list[VAEModel | None] | None = None,
    workers: int = 1,
    intra_op_threads: int | None = None,
    progress: bool | str = False,
    after_fit: Any = None,
) -> list[Any]:
    """Train one VAE per seed, ``workers`` of them at once (threads), on the same frames.

    Each seed runs in its own thread with its own generators, so it gives the model it gives
    when trained alone with the same ``intra_op_threads``. Independent threads never wait for
    each other (unlike the intra-op threads of one fit), so a core busy with another process
    slows only the seed that shares it. See :mod:`rave.campaign.resources` for choosing ``workers``.

    Parameters
    ----------
    features : np.ndarray, shape=(n_frames, n_features)
        Order parameters of every frame.
    seeds : list of int
        One VAE per seed.
    config : VAEConfig
        Settings shared by all seeds.
    log_weights : np.ndarray, shape=(n_frames,), optional
        Natural logs of the frame weights.
    initial : list of VAEModel or None, optional
        Warm start per seed (None entries train cold); same length as ``seeds``.
    workers : int
        Seeds trained at once (>= 1).
    intra_op_threads : int, optional
        torch's intra-op threads while training (restored afterwards); None leaves it as is.
    progress : bool or str
        A progress bar per seed, labelled with the seed; a string prefixes the label (e.g.
        "round 3" gives "round 3: VAE seed 7 (warm)").
    after_fit : callable, optional
        ``after_fit(index, model)`` runs in the worker thread right after seed ``index`` is
        trained (e.g. save the model and fit its RC, overlapping other seeds' training); its
        return values replace the models in the result.

    Returns
    -------
    list
        Per seed, in the order of ``seeds``: the VAEModel, or what ``after_fit`` returned.
        If any seed fails, the others still finish (and run ``after_fit``) before the first
        error is raised.

    Raises
    ------
    ValueError
        When ``seeds`` is empty, ``initial`` is not one model (or None) per seed, or
        ``workers`` is not an int >= 1.
    Exception
        The first error of a seed's fit (or of ``after_fit``), after the other seeds
        have finished.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed. You supplied []")
    if initial is None:
        initial = [None] * len(seeds)
    if len(initial) != len(seeds):
        raise ValueError(
            f"initial must hold one entry per seed ({len(seeds)}). You supplied {len(initial)}"
        )
    if not _is_int(workers) or workers < 1:
        raise ValueError(f"workers must be an int >= 1. You supplied {workers!r}")
    x = _check_features(features)

    def job(index: int) -> Any:
        label = f"VAE seed {seeds[index]}" + (" (warm)" if initial[index] is not None else "")
        if isinstance(progress, str):
            label = f"{progress}: {label}"
        estimator = VAEEstimator(config, seed=seeds[index])
        model = estimator.fit(
            x, log_weights=log_weights, progress=label if progress else False,
            initial=initial[index],
        ).fetch_model()
        return after_fit(index, model) if after_fit is not None else model

    previous = torch.get_num_threads()
    if intra_op_threads is not None:
        torch.set_num_threads(int(intra_op_threads))
    try:
        if workers == 1 or len(seeds) == 1:
            return [job(i) for i in range(len(seeds))]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(workers, len(seeds)),
                                thread_name_prefix="rave-vae") as pool:
            futures = [pool.submit(job, i) for i in range(len(seeds))]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]
    finally:
        torch.set_num_threads(previous)
