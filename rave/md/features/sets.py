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

    Raises ValueError for an unregistered kind, a key the kind does not take, or arguments its
    constructor refuses.
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
    """The constructor keywords of registered ``kind``, in order; KeyError if unknown."""
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
    """The features' values (n_frames, d) from their OpenMM forces, as ``system`` sees them.

    Each force goes into a copy of ``system``'s particles (no other force) on the Reference
    platform, with ``box_vectors`` ((3, 3) nm) as the box or, for None, the System's default box.
    ``positions`` (n_frames, n_particles, 3) or (n_particles, 3), nm. Compare with
    :meth:`Feature.evaluate` to check that the two faces agree.
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
    """Names of the features, in order; ValueError if two share a name."""
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
    """Values (n_frames, d) of d uniquely named features (see :meth:`Feature.evaluate`)."""
    feature_names(features)
    x = _as_frames(positions)
    if len(features) == 0:
        return np.zeros((x.shape[0], 0))
    return np.stack([f.evaluate(x, box_vectors) for f in features], axis=1)
