"""The VAE's settings (:class:`VAEConfig`), without torch: a config file is checked with them.

:mod:`rave.learn.vae` (the network and its training) re-exports :class:`VAEConfig` and
:data:`LR_SCHEDULES`; its ``ACTIVATIONS`` maps :data:`ACTIVATION_NAMES` to torch modules.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

__all__ = ["ACTIVATION_NAMES", "LR_SCHEDULES", "VAEConfig"]

#: Activation functions that :class:`VAEConfig` accepts, by name (``rave.learn.vae.ACTIVATIONS``
#: maps them to torch modules).
ACTIVATION_NAMES = ("elu", "relu", "silu", "gelu", "tanh", "softplus")

#: Learning-rate schedules that :class:`VAEConfig` accepts.
LR_SCHEDULES = ("cosine", "plateau", "constant")


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


@dataclass(frozen=True)
class VAEConfig:
    """Architecture and training settings of the 1-D-latent VAE.

    Each attribute is also a keyword of the constructor, with the default shown.

    Attributes
    ----------
    hidden : tuple of int, default (512, 512, 512)
        Widths of the hidden layers of the encoder; the decoder mirrors them (1 -> hidden -> d).
        The RAVE paper's network is three layers of 512.
    activation : str, default "tanh"
        Non-linearity between layers, one of :data:`ACTIVATION_NAMES`. tanh: smooth, so the
        latent mean (from which the RC is fitted) is smooth in the order parameters, no dead
        units, no denormal floats (see docs/benchmarks.md for the comparison).
    beta : float, default 1.0
        Weight of the KL term; >= 0. The reconstruction term is the plain sum of squared errors
        on standardised inputs, i.e. twice the Gaussian NLL of unit variance up to a constant,
        so beta = 1 is the exact negative ELBO of a Gaussian decoder of variance 1/2.
    learning_rate : float, default 1e-3
        Adam step size; > 0.
    batch_size : int, default 512
        Frames per minibatch (drawn with probability proportional to the weights); where the
        CPU throughput levels off (see docs/benchmarks.md).
    max_epochs : int, default 12
        Most epochs of a cold fit (see ``frames_per_epoch``), the ceiling of the data-following
        budget below; >= 1. With the defaults: 12 x 25 = 300 optimiser steps.
    patience : int, default 4
        Stop when the validation loss has not improved (by a relative ``min_improvement``) for
        this many epochs in a row; >= 1.
    validation_fraction : float, default 0.1
        Fraction of the frames held out (random, seeded) for early stopping; in (0, 1). The
        validation split is capped at ``max_validation_frames`` frames; the rest train.
    device : str, default "auto"
        "auto" (CUDA if available, else CPU), "cpu", "cuda" or "cuda:N".
    frames_per_epoch : int, default 12_800
        Frames drawn (with replacement, proportional to weight) per epoch; an epoch is
        ``ceil(frames_per_epoch / batch_size)`` steps (25 with the defaults) followed by a
        validation pass and the stopping checks.
    max_validation_frames : int, default 4_096
        Cap on the size of the validation split; >= 1. The validation pass runs every epoch,
        so it is kept small next to the epoch's 25 steps of 512 frames.
    min_improvement : float, default 1e-3
        Relative decrease of the validation loss that counts as an improvement for early
        stopping; >= 0.
    lr_schedule : str, default "cosine"
        "cosine": the learning rate falls from ``learning_rate`` to 0 along a half cosine over
        the ``max_epochs * steps_per_epoch`` steps, so the loss settles within a fixed budget.
        "plateau": the rate is multiplied by ``lr_decay`` whenever the validation loss has not
        improved for ``lr_patience`` epochs. "constant": no decay.
    lr_decay : float, default 0.5
        Factor for the "plateau" schedule; in (0, 1].
    lr_patience : int, default 2
        Epochs without improvement before the "plateau" schedule decays the rate; >= 1. Should
        be smaller than ``patience`` for the decay to act before stopping.
    min_epochs : int, default 4
        Fewest epochs of a cold fit (capped by ``max_epochs``), and the earliest epoch at which
        the stable-order stop may end a cold fit; >= 1.
    max_passes : float, default 50
        The budget follows the data: a cold fit runs at most
        ``ceil(max_passes * n_train / frames_per_epoch)`` epochs, clipped to
        ``[min_epochs, max_epochs]``: 400 frames get the 4-epoch floor (100 steps), 200,000
        frames the 12-epoch ceiling. Drawing each frame more than ~50 times only overfits.
    warm_fraction : float, default 0.25
        A warm-started fit (``fit(..., initial=model)``) gets this fraction of the cold
        budget (at least one epoch); in (0, 1].
    stop_on_stable_order : bool, default True
        Also stop when what the campaign uses has stopped changing from one epoch to the next:
        the ordering of the validation frames by their latent mean (weighted rank correlation
        >= ``stop_rank_correlation``) and the direction of the best linear fit of the latent on
        the standardised inputs (change <= ``stop_angle_deg``), in an epoch that did not
        improve the validation loss by ``min_improvement`` (a network still learning keeps
        going, however still its ordering looks). Cold fits check from epoch
        ``min_epochs`` on; warm fits from their first epoch, against the starting network.
    stop_rank_correlation : float, default 0.999
        See ``stop_on_stable_order``; in (0, 1].
    stop_angle_deg : float, default 1.0
        See ``stop_on_stable_order``; in [0, 180].

    Raises
    ------
    TypeError
        When ``hidden`` is not a sequence, a real-valued setting is not a finite real number, a
        count is not an int, or ``stop_on_stable_order`` is not a bool.
    ValueError
        When a setting is outside its range above, ``hidden`` is empty or holds a width that is
        not a positive int, or ``activation``, ``lr_schedule``, ``device`` is not one of the
        names allowed.
    """

    hidden: tuple[int, ...] = (512, 512, 512)
    activation: str = "tanh"
    beta: float = 1.0
    learning_rate: float = 1e-3
    batch_size: int = 512
    max_epochs: int = 12
    patience: int = 4
    validation_fraction: float = 0.1
    device: str = "auto"
    frames_per_epoch: int = 12_800
    max_validation_frames: int = 4_096
    min_improvement: float = 1e-3
    lr_decay: float = 0.5
    lr_patience: int = 2
    lr_schedule: str = "cosine"
    min_epochs: int = 4
    max_passes: float = 50.0
    warm_fraction: float = 0.25
    stop_on_stable_order: bool = True
    stop_rank_correlation: float = 0.999
    stop_angle_deg: float = 1.0

    def __post_init__(self) -> None:
        hidden = self.hidden
        if isinstance(hidden, str) or not hasattr(hidden, "__iter__"):
            raise TypeError(
                f"hidden must be a tuple of positive ints (layer widths). You supplied {hidden!r}"
            )
        hidden = tuple(hidden)
        if len(hidden) == 0:
            raise ValueError("hidden must name at least one hidden layer. You supplied ()")
        for width in hidden:
            if not _is_int(width) or width < 1:
                raise ValueError(
                    f"hidden must be a tuple of positive ints (layer widths). You supplied "
                    f"{hidden!r}"
                )
        object.__setattr__(self, "hidden", tuple(int(w) for w in hidden))

        if not isinstance(self.activation, str) or self.activation.lower() not in ACTIVATION_NAMES:
            raise ValueError(
                f"activation must be one of {sorted(ACTIVATION_NAMES)}. You supplied "
                f"{self.activation!r}"
            )
        object.__setattr__(self, "activation", self.activation.lower())

        def real(name: str, low: float, high: float, low_open: bool, high_open: bool) -> None:
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(float(value)):
                raise TypeError(f"{name} must be a finite real number. You supplied {value!r}")
            value = float(value)
            bad_low = value <= low if low_open else value < low
            bad_high = value >= high if high_open else value > high
            if bad_low or bad_high:
                if math.isinf(high):
                    rule = f"> {low:g}" if low_open else f">= {low:g}"
                else:
                    rule = (
                        f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
                    )
                raise ValueError(f"{name} must be {rule}. You supplied {value:g}")
            object.__setattr__(self, name, value)

        inf = math.inf
        real("beta", 0.0, inf, False, True)
        real("learning_rate", 0.0, inf, True, True)
        real("validation_fraction", 0.0, 1.0, True, True)
        real("min_improvement", 0.0, inf, False, True)
        real("lr_decay", 0.0, 1.0, True, False)
        real("max_passes", 0.0, inf, True, True)
        real("warm_fraction", 0.0, 1.0, True, False)
        real("stop_rank_correlation", 0.0, 1.0, True, False)
        real("stop_angle_deg", 0.0, 180.0, False, False)
        if not isinstance(self.stop_on_stable_order, bool | np.bool_):
            raise TypeError(
                f"stop_on_stable_order must be true or false. You supplied "
                f"{self.stop_on_stable_order!r}"
            )
        object.__setattr__(self, "stop_on_stable_order", bool(self.stop_on_stable_order))

        for name in (
            "batch_size",
            "max_epochs",
            "patience",
            "frames_per_epoch",
            "max_validation_frames",
            "lr_patience",
            "min_epochs",
        ):
            value = getattr(self, name)
            if not _is_int(value):
                raise TypeError(f"{name} must be an int. You supplied {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1. You supplied {value}")
            object.__setattr__(self, name, int(value))

        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {list(LR_SCHEDULES)}. You supplied "
                f"{self.lr_schedule!r}"
            )

        if not isinstance(self.device, str) or not re.fullmatch(
            r"auto|cpu|cuda(:\d+)?", self.device
        ):
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'. You supplied {self.device!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict of the fields (``hidden`` as a list), for saving."""
        out = asdict(self)
        out["hidden"] = list(self.hidden)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VAEConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError.

        Raises
        ------
        ValueError
            When ``values`` has a key that is not a field, or a value out of range.
        TypeError
            When a value has the wrong type.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown VAEConfig fields {unknown}; allowed: {sorted(known)}")
        values = dict(values)
        if "hidden" in values:
            values["hidden"] = tuple(values["hidden"])
        return cls(**values)
