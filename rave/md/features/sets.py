"""Sets of order parameters: rebuilding a feature from its dict (:func:`feature_from_dict`,
:func:`feature_keys`), names, and the values of several features at once from their numpy
face (:func:`evaluate_features`) or their OpenMM face (:func:`openmm_feature_values`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import openmm
from openmm import unit as u

from .base import (
    Feature,
    _as_frames,
    _fail,
)


def feature_from_dict(d: dict[str, Any]) -> Feature:
    """Rebuild a feature from :meth:`Feature.to_dict` output.

    Parameters
    ----------
    d : dict
        Must contain "kind" (one of the registered kinds) and the constructor arguments.

    Returns
    -------
    Feature

    Raises
    ------
    ValueError
        When ``d`` has no registered ``kind``, a key the kind does not take, or
        arguments its constructor refuses.
    """
    if not isinstance(d, dict) or "kind" not in d:
        _fail("d", "a dict with a 'kind' key", d)
    kwargs = dict(d)
    kind = kwargs.pop("kind")
    if kind not in Feature._registry:
        _fail("kind", f"one of {sorted(Feature._registry)}", kind)
    allowed = feature_keys(kind)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} for a {kind!r} feature. Allowed: "
                         f"kind, {', '.join(allowed)}")
    try:
        return Feature._registry[kind](**kwargs)
    except TypeError as err:
        raise ValueError(f"cannot build a {kind!r} feature from {d!r}: {err}") from err


def feature_keys(kind: str) -> list[str]:
    """The keys a feature of ``kind`` takes besides ``kind`` (its constructor's keywords).

    Parameters
    ----------
    kind : str
        A registered kind (``Feature.kind`` of a subclass, e.g. "distance").

    Returns
    -------
    list of str
        The keyword names of its constructor, in order.

    Raises
    ------
    KeyError
        When ``kind`` is not registered.
    """
    import inspect

    parameters = inspect.signature(Feature._registry[kind].__init__).parameters
    return [name for name, p in parameters.items() if name != "self"
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def openmm_feature_values(
    features: Sequence[Feature],
    positions: np.ndarray,
    box_vectors: np.ndarray | None,
    system: openmm.System,
) -> np.ndarray:
    """The features' values from their OpenMM forces, as a simulation of ``system`` sees them.

    Each feature's :meth:`Feature.openmm_force` goes into a copy of ``system``'s particles
    (no other force) on the Reference platform, with ``box_vectors`` as the box, or, for
    ``None``, the System's default box (which OpenMM uses for a force with periodic boundary
    conditions even when the System has none). Compare with :meth:`Feature.evaluate` on the
    same positions and ``box_vectors`` to see whether the two faces agree.

    Parameters
    ----------
    features : Sequence[Feature]
        The d features.
    positions : np.ndarray, shape=(n_frames, n_particles, 3) or (n_particles, 3), nm
        Coordinates of the frames.
    box_vectors : np.ndarray, shape=(3, 3), nm, or None
        The periodic box of every frame; None: the System's default box.
    system : openmm.System
        The simulated System (particle count and default box).

    Returns
    -------
    np.ndarray, shape=(n_frames, d), dtype=float64
    """
    x = _as_frames(positions)
    values = np.empty((x.shape[0], len(features)))
    for start in range(0, len(features), 32):  # one force group each, 32 groups
        batch = features[start:start + 32]
        copy = openmm.System()
        for i in range(system.getNumParticles()):
            copy.addParticle(system.getParticleMass(i))
        copy.setDefaultPeriodicBoxVectors(*system.getDefaultPeriodicBoxVectors())
        for group, feature in enumerate(batch):
            force = feature.openmm_force()
            force.setForceGroup(group)
            copy.addForce(force)
        context = openmm.Context(copy, openmm.VerletIntegrator(0.001),
                                 openmm.Platform.getPlatformByName("Reference"))
        if box_vectors is not None:
            context.setPeriodicBoxVectors(*np.asarray(box_vectors, dtype=float))
        for n, frame in enumerate(x):
            context.setPositions(frame)
            for group in range(len(batch)):
                energy = context.getState(getEnergy=True, groups={group}).getPotentialEnergy()
                values[n, start + group] = energy.value_in_unit(u.kilojoule_per_mole)
        del context
    return values


def feature_names(features: Sequence[Feature]) -> list[str]:
    """Names of the features, in order; ValueError if two share a name.

    Parameters
    ----------
    features : Sequence[Feature]
        The features.

    Returns
    -------
    list of str
        ``f.name`` of each feature.

    Raises
    ------
    ValueError
        When two features share a name.
    """
    names = [f.name for f in features]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(
            f"feature names must be unique. You supplied duplicates {dupes}; "
            "pass name=... to tell them apart"
        )
    return names


def evaluate_features(
    features: Sequence[Feature], positions: np.ndarray, box_vectors: np.ndarray | None = None
) -> np.ndarray:
    """Evaluate several features on the same coordinates.

    Parameters
    ----------
    features : Sequence[Feature]
        The d features (names must be unique).
    positions : np.ndarray, shape=(n_frames, n_particles, 3) or (n_particles, 3), nm
        Coordinates of the frames (an OpenMM Quantity is converted to nm).
    box_vectors : np.ndarray, shape=(n_frames, 3, 3) or (3, 3), nm, optional
        Periodic box vectors (see :meth:`Feature.evaluate`); None for no periodicity.

    Returns
    -------
    np.ndarray, shape=(n_frames, d), dtype=float64
    """
    feature_names(features)
    x = _as_frames(positions)
    if len(features) == 0:
        return np.zeros((x.shape[0], 0))
    return np.stack([f.evaluate(x, box_vectors) for f in features], axis=1)
