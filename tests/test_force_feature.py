"""ForceFeature: any OpenMM force whose energy is a CV (a cvpack CV, a CustomCVForce of one's
own) is an order parameter with the same faces as the built-in kinds."""

from __future__ import annotations

import json

import numpy as np
import openmm
import pytest

from rave.analysis.export import ExportError, plumed_feature_lines
from rave.learn.bias import Bias, BiasGrid
from rave.md.bias_force import _compound_terms, bias_force
from rave.md.features import (
    Distance,
    ForceFeature,
    evaluate_features,
    feature_from_dict,
    openmm_feature_values,
)

#: numpy radius of gyration vs the force's energy (Reference, double), nm
RG_TOL_NM = 1e-9
#: numpy bias vs the OpenMM bias energy on the Reference platform, kJ/mol
ENERGY_TOL_KJMOL = 1e-6

ATOMS = [0, 2, 3, 5]
N_PARTICLES = 6


def _radius_of_gyration_force(atoms) -> openmm.CustomCVForce:
    """Rg = sqrt(sum_{i<j} r_ij^2) / N as a CustomCVForce, the way cvpack builds its CVs."""
    pairs = openmm.CustomBondForce("r^2")
    for k, i in enumerate(atoms):
        for j in atoms[k + 1:]:
            pairs.addBond(i, j, [])
    force = openmm.CustomCVForce(f"sqrt(s)/{len(atoms)}")
    force.addCollectiveVariable("s", pairs)
    force.setName("rg")
    return force


def _radius_of_gyration(x: np.ndarray, atoms) -> np.ndarray:
    sel = x[:, atoms, :]
    return np.sqrt(((sel - sel.mean(axis=1, keepdims=True)) ** 2).sum(axis=(1, 2)) / len(atoms))


def _positions(seed: int, n_frames: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 2.0, size=(n_frames, N_PARTICLES, 3))


def test_force_feature_value_is_the_force_energy_on_both_faces():
    feature = ForceFeature(_radius_of_gyration_force(ATOMS), ATOMS, unit="nm")
    x = _positions(1)
    expected = _radius_of_gyration(x, ATOMS)
    values = feature.evaluate(x)
    print("Rg", values, "expected", expected)
    np.testing.assert_allclose(values, expected, rtol=0, atol=RG_TOL_NM)
    system = openmm.System()
    for _ in range(N_PARTICLES):
        system.addParticle(1.0)
    np.testing.assert_allclose(openmm_feature_values([feature], x, None, system)[:, 0],
                               expected, rtol=0, atol=RG_TOL_NM)
    assert feature.name == "rg" and feature.unit == "nm" and feature.particles == (0, 2, 3, 5)


def test_force_feature_round_trips_through_json():
    feature = ForceFeature(_radius_of_gyration_force(ATOMS), ATOMS, unit="nm", name="Rg")
    again = feature_from_dict(json.loads(json.dumps(feature.to_dict())))
    assert again == feature
    x = _positions(2)
    np.testing.assert_array_equal(again.evaluate(x), feature.evaluate(x))


def test_force_feature_biases_through_a_cv_force_that_matches_numpy():
    features = [ForceFeature(_radius_of_gyration_force(ATOMS), ATOMS, unit="nm"),
                Distance(0, 5, periodic=False)]
    assert _compound_terms(features) is None
    x = _positions(3)
    values = evaluate_features(features, x)
    chi = values @ np.array([1.0, -0.5])
    bias = Bias(np.array([1.0, -0.5]),
                BiasGrid(chi.min() - 0.1, chi.max() + 0.1, np.linspace(0.0, -3.0, 16) ** 2))
    force = bias_force(features, bias, force_group=1)
    assert isinstance(force, openmm.CustomCVForce)
    system = openmm.System()
    for _ in range(N_PARTICLES):
        system.addParticle(1.0)
    system.addForce(force)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    for frame, expected in zip(x, bias.energy(values), strict=True):
        context.setPositions(frame)
        energy = context.getState(getEnergy=True, groups={1}).getPotentialEnergy()
        assert abs(energy.value_in_unit(openmm.unit.kilojoule_per_mole) - expected) < (
            ENERGY_TOL_KJMOL)


def test_force_feature_has_no_plumed_action():
    feature = ForceFeature(_radius_of_gyration_force(ATOMS), ATOMS, name="Rg")
    with pytest.raises(ExportError, match=r"^feature Rg of kind 'openmm_force' has no PLUMED"):
        plumed_feature_lines([feature])


@pytest.mark.parametrize("kwargs, message", [
    ({"force": "<not xml", "particles": [0]}, r"force must be an openmm.Force or its XML\. The "
                                               r"XML given cannot be read"),
    ({"force": 3.0, "particles": [0]}, r"force must be an openmm.Force or its XML\. You "
                                       r"supplied 3.0"),
    ({"force": openmm.CustomExternalForce("x"), "particles": []},
     r"particles must be a non-empty sequence"),
    ({"force": openmm.CustomExternalForce("x"), "particles": [0], "unit": ""},
     r"unit must be a non-empty string"),
])
def test_bad_force_feature_input_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ForceFeature(**kwargs)


def test_force_feature_refuses_positions_without_its_particles():
    feature = ForceFeature(_radius_of_gyration_force(ATOMS), ATOMS)
    with pytest.raises(ValueError, match=r"uses particle index 5, but positions has only 4"):
        feature.evaluate(np.zeros((4, 3)))
