"""Checks of the RAVE estimator's arguments: each error names the argument, what was given and
what is allowed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (not a bool)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an int >= ``low``, or ValueError naming ``name``."""
    if not is_int(value) or value < low:
        raise ValueError(f"{name} must be an int >= {low}. You supplied {value!r}")
    return int(value)


def check_real(name: str, value: Any, low: float, high: float = math.inf) -> float:
    """``value`` as a finite float in [``low``, ``high``], or an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a real number. You supplied {value!r}")
    value = float(value)
    if not (math.isfinite(value) and low <= value <= high):
        rule = f">= {low:g}" if math.isinf(high) else f"in [{low:g}, {high:g}]"
        raise ValueError(f"{name} must be finite and {rule}. You supplied {value!r}")
    return value


def check_frames(X: Any) -> np.ndarray:
    """``X`` as a finite float array of shape (n_frames >= 2, n_features >= 1)."""
    try:
        x = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"X must be a real array of shape (n_frames, n_features). You supplied "
                        f"{type(X).__name__}: {error}") from None
    if x.ndim != 2:
        raise ValueError(f"X must be shape (n_frames, n_features). You supplied {x.shape}; for "
                         f"one order parameter use X.reshape(-1, 1)")
    if x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"X must hold at least 2 frames of at least 1 order parameter. You "
                         f"supplied shape {x.shape}")
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"X holds {int(bad.sum())} NaN or inf value(s) (in column(s) "
                         f"{np.flatnonzero(bad.any(axis=0)).tolist()}); all must be finite")
    return x


def check_direction(name: str, c: Any, d: int) -> np.ndarray:
    """``c`` as a read-only finite nonzero vector of shape (d,)."""
    v = np.array(c, dtype=float)
    if v.shape != (d,):
        raise ValueError(f"{name} must be shape ({d},), one coefficient per order parameter. "
                         f"You supplied {v.shape}")
    if not np.isfinite(v).all() or not np.linalg.norm(v) > 0:
        raise ValueError(f"{name} must be a finite nonzero vector. You supplied {v.tolist()}")
    v.setflags(write=False)
    return v
