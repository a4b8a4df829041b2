"""Order parameters (features): numpy/mdtraj evaluation and the matching OpenMM force.

Every feature has two faces that agree to numerical precision:

* :meth:`Feature.evaluate` computes the order parameter on raw coordinate arrays (nm) with
  numpy, and :meth:`Feature.evaluate_trajectory` does the same on an ``mdtraj.Trajectory``;
* :meth:`Feature.openmm_force` returns a new OpenMM force whose potential energy, in kJ/mol,
  is numerically equal to the order parameter, so it can be used as a collective variable in
  ``openmm.CustomCVForce``.

Periodic boundary conditions follow OpenMM's convention: box vectors are the rows ``a, b, c``
of a (3, 3) array in OpenMM's reduced form (``a`` along x, ``b`` in the xy plane) and the
minimum-image displacement is obtained exactly as OpenMM's Reference platform does it
(subtract ``c``, then ``b``, then ``a``, each rounded on its diagonal component). Centroids of
groups are computed from the coordinates as given, i.e. molecules are assumed whole.

Caveats of the OpenMM face:

* a force built with ``periodic=True`` always uses the Context's box (OpenMM's default box is
  2 nm), whereas ``evaluate(..., box_vectors=None)`` does not wrap: compare like with like;
* every bonded-type force (CustomCentroidBondForce, CustomBondForce), even inside a
  CustomCVForce, makes OpenMM treat all particles it touches as one "molecule" for periodic
  wrapping of reported positions and for MonteCarloBarostat scaling;
* CUDA/OpenCL store positions wrapped into the box in periodic systems, so a Position there is
  not the unwrapped coordinate (checked on the Reference platform only).
"""


from .base import CompoundTerm, Feature, NoPlumedAction, PlumedAction
from .cavity import (
    CYLINDRICAL_BOX_TOL_NM,  # noqa: F401  (public constant, not in __all__)
    CYLINDRICAL_RHO_EPS_NM2,  # noqa: F401  (public constant, not in __all__)
    CylinderCount,
    CylindricalPosition,
    smooth_step_down,
)
from .force_feature import ForceFeature
from .geometric import (
    COORDINATION_TAYLOR_HALF_WIDTH,  # noqa: F401  (public constant, not in __all__)
    Angle,
    Coordination,
    Dihedral,
    Distance,
    Position,
    dihedral_angles,
    pair_distances,
    switching_function,
)
from .sets import (
    evaluate_features,
    feature_from_dict,
    feature_keys,
    feature_names,
    openmm_feature_values,
)

__all__ = [
    "Feature",
    "CompoundTerm",
    "PlumedAction",
    "NoPlumedAction",
    "Position",
    "Distance",
    "Angle",
    "Dihedral",
    "Coordination",
    "CylindricalPosition",
    "CylinderCount",
    "ForceFeature",
    "dihedral_angles",
    "pair_distances",
    "switching_function",
    "smooth_step_down",
    "feature_from_dict",
    "evaluate_features",
    "feature_names",
    "feature_keys",
    "openmm_feature_values",
]
