"""What a campaign simulates: an OpenMM System, starting positions and the order parameters.

:func:`build_simulation_system` turns the ``[system]`` section (and ``[[features]]`` for
``kind = "openmm"``) into a :class:`SimulationSystem`:

- model potentials (``three_state``, ``rotated_double_well``, ``expression``): one particle,
  features x and y, and the exact F(chi) by quadrature for figures;
- ``mixed_slow_mode``: three particles in a plane, features x1, y1, x2, y2, x3, y3, one slow
  mode mixing all six, and the exact F(chi) along any direction by a 1-D convolution;
- ``ligand_cavity``: a ligand in a pocket of a frozen wall in explicit water (systems/), with
  the order parameters z, rho, n_w and a preparation step (minimisation and equilibration);
- ``openmm``: bring your own system: a serialized System XML plus a PDB, or a PDB plus
  force-field XML names, with order parameters given by mdtraj atom selections, e.g.::

      [[features]]
      kind = "dihedral"
      groups = ["resname ACE and name C", "resname ALA and name N",
                "resname ALA and name CA", "resname ALA and name C"]
      function = "sin"
      name = "sin_phi"

  Every string where a feature takes atoms (``atoms``, ``group1``, ``group2``, ``groups``
  entries, ``group_a``, ``group_b``) is an mdtraj selection; a group with several atoms means
  their centroid (coordination: the set of atoms). Integers (0-based indices) are accepted too.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import Config, ConfigError
from .features import feature_from_dict, feature_names

#: feature parameters that take particles (an index, a list of indices, or a selection)
_ATOM_KEYS = ("atoms", "group1", "group2", "group_a", "group_b")


@dataclass
class SimulationSystem:
    """Everything the campaign needs about what it simulates.

    Attributes
    ----------
    name : str
    system : openmm.System
    positions : np.ndarray, shape=(n_particles, 3), nm
    features : list of rave.features.Feature
    timestep_ps, friction_per_ps : float
        Defaults of this system (``[sampling]`` may override them).
    box_vectors : np.ndarray, shape=(3, 3), nm, or None
    potential : ModelPotential or None
        For model potentials: the exact F(chi) and the 2-D figures.
    prepare : callable(temperature_K, platform, seed) -> dict, or None
        Minimisation/equilibration before round 0; returns positions (and velocities,
        box_vectors); the campaign stores the result and never redoes it.
    input_files : dict name -> Path
        Files the system was read from (copied into the work directory; their hashes guard a
        resume).
    """

    name: str
    system: object
    positions: np.ndarray
    features: list
    timestep_ps: float
    friction_per_ps: float
    box_vectors: np.ndarray | None = None
    potential: object | None = None
    prepare: Callable[[float, str, int], dict] | None = None
    input_files: dict = field(default_factory=dict)

    def system_xml(self) -> str:
        import openmm

        return openmm.XmlSerializer.serialize(self.system)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ model potentials
def build_model_potential(config: Config):
    """The model potential of a config (validates the expression with OpenMM)."""
    from systems.model_potentials import from_expression, make_model_potential

    system = config.system
    placement = {}
    if system.start is not None:
        placement["start"] = tuple(system.start)
    if system.extent is not None:
        placement["extent"] = tuple(tuple(r) for r in system.extent)
    try:
        if system.kind == "expression":
            return from_expression(system.expression, system.temperature, **placement)
        options = {k: getattr(system, k) for k in ("angle_deg", "barrier_kT")
                   if getattr(system, k) is not None}
        potential = make_model_potential(system.kind, system.temperature, **options)
        # replace() validates again (a finite energy at the new start, a sane extent)
        return dataclasses.replace(potential, **placement) if placement else potential
    except ValueError as error:
        raise ConfigError(str(error)) from error


def _model_system(config: Config) -> SimulationSystem:
    potential = build_model_potential(config)
    built = potential.build()
    return SimulationSystem(
        name=potential.name, system=built.system,
        positions=np.array(built.positions, dtype=float).reshape(-1, 3),
        features=list(built.features), timestep_ps=potential.timestep_ps,
        friction_per_ps=potential.friction_per_ps, potential=potential,
    )


# ------------------------------------------------------------------------------ ligand cavity
def _ligand_cavity(config: Config) -> SimulationSystem:
    from systems import ligand_cavity

    s = config.system
    try:
        built = ligand_cavity.build_ligand_cavity(variant=s.variant, ligand=s.ligand, size=s.size)
    except ValueError as error:
        raise ConfigError(f"[system] ligand_cavity: {error}") from error

    def prepare(temperature_K: float, platform: str, seed: int) -> dict:
        return ligand_cavity.prepare_ligand_cavity(
            built, temperature=temperature_K, platform=platform, seed=seed,
            steps=s.prepare_steps, max_minimize_iterations=s.minimize_iterations)

    return SimulationSystem(
        name=built.name, system=built.system, positions=np.asarray(built.positions, float),
        features=list(built.features), timestep_ps=built.timestep_ps,
        friction_per_ps=built.friction_per_ps, box_vectors=np.asarray(built.box_vectors, float),
        prepare=prepare,
    )


# ------------------------------------------------------------------------------ bring your own
def _select(topology, selection, where: str) -> list[int]:
    if isinstance(selection, bool):
        raise ConfigError(f"{where}: expected an mdtraj selection or atom indices, got "
                          f"{selection!r}")
    if isinstance(selection, int):
        selection = [selection]
    if isinstance(selection, list) and all(isinstance(i, int) and not isinstance(i, bool)
                                           for i in selection):
        bad = [i for i in selection if not 0 <= i < topology.n_atoms]
        if bad or not selection:
            raise ConfigError(f"{where}: atom indices {bad or selection} are outside 0.."
                              f"{topology.n_atoms - 1}")
        return list(selection)
    if not isinstance(selection, str):
        raise ConfigError(f"{where}: expected an mdtraj selection string or atom indices, got "
                          f"{selection!r}")
    try:
        atoms = topology.select(selection)
    except Exception as error:  # mdtraj raises several types for a bad selection
        raise ConfigError(f"{where}: {selection!r} is not a valid mdtraj selection: "
                          f"{error}") from error
    if len(atoms) == 0:
        raise ConfigError(f"{where}: the selection {selection!r} matches no atom of the PDB")
    return [int(i) for i in atoms]


def features_from_selections(entries: list[dict], topology,
                             periodic: bool | None = None) -> list:
    """Features from ``[[features]]`` tables whose atom slots are mdtraj selections.

    Parameters
    ----------
    entries : list of dict
        Each a :meth:`rave.features.Feature.to_dict`-style dict (``kind`` and the
        constructor's keywords) where atom slots may be selection strings.
    topology : mdtraj.Topology
    periodic : bool, optional
        Whether the System uses periodic boundary conditions. A feature that takes
        ``periodic`` and does not set it gets this value (OpenMM would otherwise apply the
        minimum image in its default 2 nm box to a non-periodic System, numpy would not);
        ``periodic = true`` on a non-periodic System is refused.
    """
    from .features import Feature, feature_keys

    features = []
    for i, entry in enumerate(entries):
        where = f"features[{i}]" + (f" ({entry['name']})" if "name" in entry else "")
        resolved = dict(entry)
        kind = resolved.get("kind")
        if periodic is not None and kind in Feature._registry and "periodic" in feature_keys(
                kind):
            if resolved.get("periodic") is True and not periodic:
                raise ConfigError(f"{where}.periodic = true, but the System has no periodic "
                                  f"boundary conditions: OpenMM would apply the minimum image "
                                  f"in its default box. Remove the periodic key")
            resolved.setdefault("periodic", periodic)
        for key in _ATOM_KEYS:
            if key in resolved:
                resolved[key] = _select(topology, resolved[key], f"{where}.{key}")
        if "groups" in resolved:
            if not isinstance(resolved["groups"], list):
                raise ConfigError(f"{where}.groups must be a list of selections")
            resolved["groups"] = [_select(topology, g, f"{where}.groups[{j}]")
                                  for j, g in enumerate(resolved["groups"])]
        try:
            features.append(feature_from_dict(resolved))
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{where}: {error}") from error
    try:
        feature_names(features)
    except ValueError as error:
        raise ConfigError(f"[[features]]: {error}") from error
    return features


def _openmm_system(config: Config) -> SimulationSystem:
    import mdtraj
    import openmm
    from openmm import app, unit

    s = config.system
    pdb_path = Path(s.pdb)
    if not pdb_path.is_file():
        raise ConfigError(f"system.pdb: {pdb_path} does not exist")
    try:
        pdb = app.PDBFile(str(pdb_path))
    except Exception as error:
        raise ConfigError(f"system.pdb: {pdb_path} cannot be read as PDB: {error}") from error
    inputs = {"pdb": pdb_path}
    if s.system_xml is not None:
        xml_path = Path(s.system_xml)
        if not xml_path.is_file():
            raise ConfigError(f"system.system_xml: {xml_path} does not exist")
        try:
            system = openmm.XmlSerializer.deserialize(xml_path.read_text())
        except Exception as error:
            raise ConfigError(f"system.system_xml: {xml_path} is not a serialized OpenMM "
                              f"System: {error}") from error
        inputs["system_xml"] = xml_path
    else:
        try:
            forcefield = app.ForceField(*s.forcefield)
            periodic = pdb.topology.getPeriodicBoxVectors() is not None
            system = forcefield.createSystem(
                pdb.topology, nonbondedMethod=app.PME if periodic else app.NoCutoff,
                constraints=app.HBonds,
            )
        except Exception as error:
            raise ConfigError(f"system.forcefield {s.forcefield}: cannot build a System for "
                              f"{pdb_path}: {error}") from error
    positions = np.asarray(pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer), float)
    if system.getNumParticles() != len(positions):
        raise ConfigError(f"the System has {system.getNumParticles()} particles but "
                          f"{pdb_path} has {len(positions)} atoms: they must describe the same "
                          f"system in the same order")
    box = None
    if system.usesPeriodicBoundaryConditions():
        vectors = pdb.topology.getPeriodicBoxVectors()
        if vectors is None:
            vectors = system.getDefaultPeriodicBoxVectors()
        box = np.asarray([[v.value_in_unit(unit.nanometer)[k] for k in range(3)]
                          for v in vectors], float)
    topology = mdtraj.Topology.from_openmm(pdb.topology)
    features = features_from_selections(config.features, topology,
                                        periodic=system.usesPeriodicBoundaryConditions())
    if not features:
        raise ConfigError('system.kind = "openmm" needs order parameters: add [[features]] '
                          'tables (see rave/simsystem.py and workflows/alanine_dipeptide/)')
    return SimulationSystem(
        name=f"openmm:{pdb_path.name}", system=system, positions=positions, features=features,
        timestep_ps=0.002, friction_per_ps=1.0, box_vectors=box, input_files=inputs,
    )


def build_simulation_system(config: Config) -> SimulationSystem:
    """The :class:`SimulationSystem` of a config; ConfigError for anything wrong in it."""
    kind = config.system.kind
    if kind == "ligand_cavity":
        return _ligand_cavity(config)
    if kind == "openmm":
        return _openmm_system(config)
    return _model_system(config)
