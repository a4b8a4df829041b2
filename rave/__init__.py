"""rave: reweighted autoencoded variational Bayes (RAVE) enhanced sampling with OpenMM.

The public face, for a user's own OpenMM script:

* :class:`BiasForce` (``rave.md``): the RAVE bias in a System, in a free force group;
* :class:`CVReporter` (``rave.md``): an OpenMM reporter recording order parameters and bias;
* :func:`read_cv`: the recorded arrays;
* :class:`RAVE` (``rave.learn``): the RAVE step on arrays, frames and log-weights -> VAEs ->
  linear RC -> bias, as an estimator (``RAVE(...).fit(X, log_weights).fetch_model()``).

Names are loaded on first use, so ``import rave`` imports neither OpenMM nor torch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._lazy import lazy_names

if TYPE_CHECKING:  # pragma: no cover (for type checkers and IDEs; loaded lazily below)
    from .campaign.sampler import RAVESampler
    from .learn.estimator import RAVE
    from .md.bias_force import BiasForce
    from .md.features import Angle, Dihedral, Distance, Position
    from .md.reporter import CVReporter, read_cv
    from .systems.openmm_files import features_from_tables

__version__ = "0.1.0"

# rave.systems is the repository's top-level systems/ folder: an install puts it in place
# (pyproject.toml maps it with package-dir). A source checkout used without installing
# (PYTHONPATH=<checkout>) has it beside this package, so the checkout is searched too.
_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_checkout, "pyproject.toml")) and os.path.isfile(
        os.path.join(_checkout, "systems", "registry.py")):
    __path__.append(_checkout)
del _checkout

#: public name -> module that defines it (imported on first access)
_LAZY = {
    "BiasForce": "rave.md.bias_force",
    "CVReporter": "rave.md.reporter",
    "read_cv": "rave.md.reporter",
    "RAVE": "rave.learn.estimator",
    "RAVESampler": "rave.campaign.sampler",
    # the order parameters, as the TOML's [[features]] kinds name them
    "Position": "rave.md.features",
    "Distance": "rave.md.features",
    "Angle": "rave.md.features",
    "Dihedral": "rave.md.features",
    # [[features]] tables (mdtraj selections) in Python, periodicity from the System
    "features_from_tables": "rave.systems.openmm_files",
}

__all__ = ["Angle", "BiasForce", "CVReporter", "Dihedral", "Distance", "Position", "RAVE",
           "RAVESampler", "features_from_tables", "read_cv", "__version__"]


__getattr__, __dir__ = lazy_names("rave", _LAZY, globals())
