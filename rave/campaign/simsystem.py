"""What a campaign simulates: an OpenMM System, starting positions and the order parameters.

:func:`build_simulation_system` turns the ``[system]`` section (and ``[[features]]`` for
``kind = "openmm"``) into a :class:`SimulationSystem` through the kind's ``build`` in the
registry of system kinds (:mod:`rave.systems.registry`, the repository's ``systems/`` folder):

- model potentials (``three_state``, ``rotated_double_well``, ``expression``): one particle,
  features x and y, and the exact F(chi) by quadrature for figures;
- ``mixed_slow_mode``: three particles in a plane, features x1, y1, x2, y2, x3, y3, one slow
  mode mixing all six, and the exact F(chi) along any direction by a 1-D convolution;
- ``ligand_cavity``: a ligand in a pocket of a frozen wall in explicit water, with the order
  parameters z, rho, n_w and a preparation step (minimisation and equilibration);
- ``openmm``: bring your own system: a serialized System XML plus a PDB, or a PDB plus
  force-field XML names, with order parameters given by mdtraj atom selections
  (:mod:`rave.systems.openmm_files`);
- any kind registered with :func:`rave.systems.register_kind`.

A kind's module is imported when a config of that kind is read or built, not before.
"""

from __future__ import annotations

from ..systems.registry import SimulationSystem, file_sha256, get_kind
from .config import Config, ConfigError

__all__ = ["SimulationSystem", "build_model_potential", "build_simulation_system",
           "file_sha256"]


def build_model_potential(config: Config):
    """The model potential of a config, with ``exact_free_energy``.

    An ``expression`` is validated with OpenMM.

    Raises ConfigError: for anything wrong in the config, or a kind without a model potential.
    """
    kind = get_kind(config.system.kind)
    if kind.potential is None:
        raise ConfigError(f"system.kind {kind.name!r} has no model potential (no exact F(chi))")
    return kind.potential(config)


def build_simulation_system(config: Config) -> SimulationSystem:
    """The :class:`SimulationSystem` of a config.

    Raises ConfigError: for anything wrong in the config.
    """
    return get_kind(config.system.kind).build(config)
