"""Warm starts across rounds: which seeds start from the previous round's models, which train
from scratch, and which warm-started models are stale."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .coordinate import direction_angle_deg


def stale_warm_starts(coefficients: Sequence[np.ndarray], kls: Sequence[float],
                      warm: Sequence[bool], kl_threshold: float,
                      max_angle_deg: float) -> list[int]:
    """Indices of warm-started models whose RC disagrees with a fresh fit's.

    A warm start can stay in the previous round's optimum when new data call for another
    direction; its latent then is still near-linear in the order parameters, so its KL is low
    and the KL alone would choose it. The reference is the cold-started model of lowest KL
    among those not spurious (KL <= ``kl_threshold``); a warm-started model whose RC is more
    than ``max_angle_deg`` off the reference's (sign-agnostic) is stale. Without a usable cold
    model nothing is dropped.

    Parameters
    ----------
    coefficients : sequence of np.ndarray, shape=(d,)
        Each model's RC.
    kls : sequence of float
        Each model's best KL (nats).
    warm : sequence of bool
        Whether each model was warm-started.
    kl_threshold : float
        Largest KL of a model that is not spurious (nats).
    max_angle_deg : float
        Largest angle (degrees) between a warm model's RC and the reference's.

    Returns
    -------
    list of int
        The stale models, in increasing order.
    """
    cold = [i for i, w in enumerate(warm) if not w and kls[i] <= kl_threshold]
    if not cold:
        return []
    reference = coefficients[min(cold, key=lambda i: kls[i])]
    return [i for i, w in enumerate(warm)
            if w and direction_angle_deg(coefficients[i], reference) > max_angle_deg]


def cold_positions(generation: int, n_models: int, cold_models: int) -> set[int]:
    """Positions of the models trained from scratch in a warm-started fit."""
    if generation == 0:
        return set(range(n_models))
    return {(generation + j) % n_models for j in range(cold_models)}
