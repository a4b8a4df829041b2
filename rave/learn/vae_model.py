"""A trained 1-D-latent VAE: :class:`VAEModel` (the network with its input scaler; latent,
loss, TorchScript export, its file), the checks of its input and the process-wide
denormal switch that inference and training share."""

from __future__ import annotations

import contextlib
import copy
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import write_file
from ..stats.weights import normalised_weights
from .vae_config import VAEConfig
from .vae_loss import elbo_terms
from .vae_network import VAE, _EncoderMean, resolve_device

#: Version of the file layout written by :meth:`VAEModel.save`.
FILE_FORMAT_VERSION = 1
#: the file-format tag of a saved model (a stored contract: the module it was first defined in,
#: kept when the module moved)
_FILE_KIND = "rave.vae.VAEModel"

#: Frames pushed through the network at once at inference (memory bound, not a result).
_INFERENCE_CHUNK = 65_536


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



def _readonly(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64, copy=True)
    array.setflags(write=False)
    return array



_FLUSH_LOCK = threading.Lock()
_flush_users = 0


@contextlib.contextmanager
def _flush_denormal(enable: bool):
    """Flush denormal floats to zero while any fit trains on the CPU.

    Adam's second moments of near-dead units underflow into slow denormals. The switch is global
    to the process and torch has no getter, so fits side by side count themselves in and out; the
    last one out restores torch's default (off).
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



class VAEModel:
    """A trained 1-D-latent VAE with its input scaler: maps order parameters to the latent.

    ``network`` is put in eval mode and frozen; ``feature_mean``, ``feature_scale`` (n_features,)
    are the weighted mean and standard deviation of the training frames in the features' units
    (inputs standardised as (s - mean) / scale; ValueError for another shape). ``history`` holds
    per-epoch lists ``train_loss``, ``validation_loss``, ``learning_rate``, ``elapsed_s`` and
    ``epochs``, ``steps``, ``steps_per_epoch``, ``best_epoch`` (1-based, the network kept),
    ``best_validation_loss``, ``stopped_early``, ``wall_time_s``, ``n_train``, ``n_validation``,
    ``effective_sample_size`` (Kish), ``device``, ``seed``.
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
        """Posterior mean (the RAVE latent) and log variance, each (n_frames,), of features."""
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
        """The latent: the encoder mean (n_frames,), deterministic, its sign arbitrary."""
        return self.encode(features)[0]

    def loss(
        self,
        features: np.ndarray,
        weights: np.ndarray | None = None,
        log_weights: np.ndarray | None = None,
        seed: int = 0,
    ) -> float:
        """Weighted mean -ELBO (``config.beta``) per frame of ``features`` (e.g. a test set).

        One draw of eps per frame from ``seed``, so reproducible: the quantity of the validation
        loss in ``history``. ``weights`` or ``log_weights`` (at most one; uniform if neither).
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
        """Write the encoder mean as TorchScript, standardisation included, atomically.

        The module maps raw order parameters, float32 (n, n_features), to the latent mean (n, 1)
        (e.g. for PLUMED's PYTORCH module or an OpenMM-Torch force).
        """
        module = _EncoderMean(
            copy.deepcopy(self._network.encoder).to("cpu").float().eval(),
            torch.tensor(np.array(self.feature_mean), dtype=torch.float32),
            torch.tensor(np.array(self.feature_scale), dtype=torch.float32),
        )
        scripted = torch.jit.script(module)
        write_file(Path(path), lambda tmp: scripted.save(str(tmp)))

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to one file (torch.save of plain tensors and lists), atomically."""
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
        """Read a model written by :meth:`save` onto ``device``; ValueError for another file."""
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


