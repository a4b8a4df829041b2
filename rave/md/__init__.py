"""The MD layer: what goes into a user's own OpenMM script.

* :class:`BiasForce`: the RAVE bias ``V(chi)`` in the System, in a free force group, updated
  in place between rounds;
* :class:`CVReporter`: an OpenMM reporter recording the order parameters and the bias energy
  of every frame to a text file, read back by :func:`read_cv`.

OpenMM is imported here and nowhere in the learning part.
"""

from .bias_force import BiasForce, free_force_group
from .reporter import CVData, CVReporter, read_cv

__all__ = ["BiasForce", "CVData", "CVReporter", "free_force_group", "read_cv"]
