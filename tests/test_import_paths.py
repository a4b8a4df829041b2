"""The public paths of the order parameters and of the VAE: every name imports from
``rave.md.features`` and ``rave.learn.vae`` whichever module defines it, and objects pickled under
those paths (a feature, a network, a trained model) load again."""

from __future__ import annotations

import importlib
import pickle

import numpy as np
import pytest

#: The names each public path answers for: its ``__all__`` and the public constants below.
PUBLIC = {
    "rave.md.features": (
        "Feature", "CompoundTerm", "PlumedAction", "NoPlumedAction", "Position", "Distance",
        "Angle", "Dihedral", "Coordination", "CylindricalPosition", "CylinderCount",
        "ForceFeature", "dihedral_angles", "pair_distances", "switching_function",
        "smooth_step_down", "feature_from_dict", "evaluate_features", "feature_names",
        "feature_keys", "openmm_feature_values",
    ),
    "rave.learn.vae": (
        "ACTIVATIONS", "LR_SCHEDULES", "VAE", "VAEConfig", "VAEEstimator", "VAEModel",
        "elbo_loss", "elbo_terms", "fit_seeds", "kl_divergence_standard_normal",
        "resolve_device",
    ),
}
#: Public constants of each path that its ``__all__`` leaves out.
CONSTANTS = {
    "rave.md.features": ("COORDINATION_TAYLOR_HALF_WIDTH", "CYLINDRICAL_RHO_EPS_NM2",
                         "CYLINDRICAL_BOX_TOL_NM"),
    "rave.learn.vae": ("FILE_FORMAT_VERSION", "MIN_TRAINING_FRAMES", "MIN_VALIDATION_FRAMES"),
}


def _as_if_pickled_at(data: bytes, moves: dict[str, str]) -> bytes:
    """``data`` (pickle protocol 2: a class is ``c<module>\\n<name>\\n``) with each class named
    under the path given in ``moves`` (name -> module), as it was written before its module
    moved."""
    for name, old in moves.items():
        new = importlib.import_module(old).__dict__[name].__module__
        target = f"c{new}\n{name}\n".encode()
        assert target in data, f"{name} is not pickled from {new}"
        data = data.replace(target, f"c{old}\n{name}\n".encode())
    return data


@pytest.mark.parametrize("path", sorted(PUBLIC))
def test_every_public_name_imports_from_its_public_path(path):
    module = importlib.import_module(path)
    assert sorted(module.__all__) == sorted(PUBLIC[path])
    missing = [name for name in PUBLIC[path] + CONSTANTS[path] if not hasattr(module, name)]
    assert missing == []


def test_the_feature_kinds_are_defined_in_modules_of_the_features_package():
    features = importlib.import_module("rave.md.features")
    for cls in features.Feature._registry.values():
        assert cls.__module__.startswith("rave.md.features.")
        assert getattr(features, cls.__name__) is cls


def test_a_feature_pickled_under_rave_md_features_loads():
    from rave.md.features import CylinderCount, Distance, feature_from_dict

    kept = [Distance([0], [1, 2], periodic=True, name="d"),
            CylinderCount([3, 4], origin=(0.0, 0.0, 0.0), radius=0.5, z_min=-0.2, z_max=0.2)]
    data = _as_if_pickled_at(pickle.dumps(kept, protocol=2),
                             {"Distance": "rave.md.features",
                              "CylinderCount": "rave.md.features"})
    loaded = pickle.loads(data)
    assert loaded == kept
    assert [feature_from_dict(f.to_dict()) for f in loaded] == kept


def test_a_network_and_a_model_pickled_under_rave_learn_vae_load():
    torch = pytest.importorskip("torch")
    from rave.learn.vae import VAE, VAEConfig, VAEModel

    torch.manual_seed(0)
    network = VAE(3, hidden=(8,), activation="tanh")
    model = VAEModel(network, VAEConfig(hidden=(8,), device="cpu"), np.zeros(3), np.ones(3),
                     {"epochs": 0})
    data = _as_if_pickled_at(pickle.dumps(model, protocol=2),
                             {"VAEModel": "rave.learn.vae", "VAE": "rave.learn.vae"})
    loaded = pickle.loads(data)
    assert isinstance(loaded, VAEModel) and isinstance(loaded.network, VAE)
    frames = np.random.default_rng(0).normal(size=(20, 3))
    # the same float32 weights and arithmetic: the latents agree exactly
    np.testing.assert_array_equal(loaded.transform(frames), model.transform(frames))
