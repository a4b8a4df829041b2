"""The MD layer: order parameters, the bias force, the reporter, the walker; the only OpenMM
code of the library (with the export of a bias and the unit boundary).

* :class:`BiasForce`: the RAVE bias ``V(chi)`` in the System, in a free force group, updated
  in place between rounds;
* :class:`CVReporter`: an OpenMM reporter recording the order parameters and the bias energy
  of every frame to a text file, read back by :func:`read_cv`; :class:`CVRecorder`, the same
  frames kept in memory (what the campaign's walker records with);
* :mod:`rave.md.features`: the order parameters (numpy and OpenMM faces);
* :mod:`rave.md.walker`: the campaign's walker, an ``app.Simulation`` with a BiasForce and a
  CVRecorder; :mod:`rave.md.opes`: OPES along the RC;
* :class:`Frames` (:mod:`rave.md.frames`, numpy only): what a walker records.

Names are loaded on first use, so ``from rave.md.frames import Frames`` imports no OpenMM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names

if TYPE_CHECKING:  # pragma: no cover
    from .bias_force import BiasForce, free_force_group
    from .frames import Frames
    from .reporter import CVData, CVRecorder, CVReporter, read_cv

_LAZY = {
    "BiasForce": "rave.md.bias_force",
    "free_force_group": "rave.md.bias_force",
    "CVData": "rave.md.reporter",
    "CVRecorder": "rave.md.reporter",
    "CVReporter": "rave.md.reporter",
    "read_cv": "rave.md.reporter",
    "Frames": "rave.md.frames",
}

__all__ = ["BiasForce", "CVData", "CVRecorder", "CVReporter", "Frames", "free_force_group",
           "read_cv"]


__getattr__, __dir__ = lazy_names("rave.md", _LAZY, globals())
