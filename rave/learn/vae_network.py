"""The network of the 1-D-latent VAE: :class:`VAE` (encoder and decoder), the activations it
accepts, the device it runs on, and the encoder-mean module that TorchScript export writes."""

from __future__ import annotations

import re

import torch
from torch import nn

from .vae_config import _is_int

#: Activation functions that :class:`VAEConfig` accepts, by name (``ACTIVATION_NAMES``).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
}


def resolve_device(device: str = "auto") -> torch.device:
    """The :class:`torch.device` of "auto" (CUDA if available, else CPU), "cpu", "cuda" or "cuda:N".

    ValueError for another name, or for CUDA when torch sees no such CUDA device.
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



def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """1-D-latent Gaussian VAE: encoder d -> hidden -> (mu, log sigma^2), decoder 1 -> hidden -> d.

    ValueError when ``n_features`` is not a positive int or ``activation`` not in ACTIVATIONS.
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
        """Posterior mean and log variance, each (n_frames, 1), of standardised x (n_frames, d)."""
        out = self.encoder(x)
        return out[:, :1], out[:, 1:]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruction (n_frames, n_features), standardised, of latents z (n_frames, 1)."""
        return self.decoder(z)

    def forward(
        self,
        x: torch.Tensor,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, draw the latent, decode: (x_reconstructed, mu, log_variance, z).

        z = mu + sigma eps; ``eps`` (n_frames, 1) None is drawn from ``generator`` in training mode,
        and z = mu in eval mode.
        """
        mu, log_variance = self.encode(x)
        if eps is None and self.training:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu if eps is None else mu + torch.exp(0.5 * log_variance) * eps
        return self.decode(z), mu, log_variance, z



class _EncoderMean(nn.Module):
    """Raw order parameters -> latent mean; the scaler is part of the module (TorchScript)."""

    def __init__(self, encoder: nn.Module, mean: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder((x - self.mean) / self.scale)[:, :1]

