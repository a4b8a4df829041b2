"""``[system] kind = "openmm"``: bring your own OpenMM system.

A serialized System XML plus a PDB, or a PDB plus force-field XML names, with order parameters
given by mdtraj atom selections in ``[[features]]`` tables, e.g.::

    [system]
    kind = "openmm"
    pdb = "alanine_dipeptide.pdb"
    system_xml = "alanine_dipeptide_system.xml"   # or forcefield = ["amber14-all.xml"]

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

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rave.campaign.config import ConfigError
from rave.md.features import Feature, feature_from_dict, feature_keys, feature_names

from .registry import SimulationSystem, SystemKind

if TYPE_CHECKING:  # pragma: no cover
    from rave.campaign.config import Config, SystemConfig

__all__ = ["SYSTEM_KINDS", "features_from_selections"]

#: feature parameters that take particles (an index, a list of indices, or a selection)
_ATOM_KEYS = ("atoms", "group1", "group2", "group_a", "group_b")


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
        Each a :meth:`rave.md.features.Feature.to_dict`-style dict (``kind`` and the
        constructor's keywords) where atom slots may be selection strings.
    topology : mdtraj.Topology
        The topology of the PDB the selections are applied to.
    periodic : bool, optional
        Whether the System uses periodic boundary conditions. A feature that takes
        ``periodic`` and does not set it gets this value (OpenMM would otherwise apply the
        minimum image in its default 2 nm box to a non-periodic System, numpy would not);
        ``periodic = true`` on a non-periodic System is refused.

    Returns
    -------
    list of rave.md.features.Feature
        One feature per entry, in order.

    Raises
    ------
    rave.campaign.config.ConfigError
        For a selection that is invalid or matches no atom, ``periodic = true`` on a
        non-periodic System, an entry :func:`rave.md.features.feature_from_dict` refuses, or
        two features of one name.
    """
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


def _build(config: Config) -> SimulationSystem:
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
                          'tables (see systems/openmm_files.py and workflows/alanine_dipeptide/)')
    return SimulationSystem(
        name=f"openmm:{pdb_path.name}", system=system, positions=positions, features=features,
        timestep_ps=0.002, friction_per_ps=1.0, box_vectors=box, input_files=inputs,
    )


def _check_config(system: SystemConfig) -> None:
    if system.pdb is None:
        raise ConfigError('system.pdb is required when system.kind = "openmm": the PDB '
                          'gives the positions and the topology for the selections')
    if (system.system_xml is None) == (system.forcefield is None):
        raise ConfigError('system.kind = "openmm" needs exactly one of system.system_xml '
                          '(a serialized OpenMM System) or system.forcefield (force-field '
                          'XML names)')


#: the [system] kind of this module (rave.systems.registry loads it by name)
SYSTEM_KINDS = (
    SystemKind("openmm", _build, keys=("pdb", "system_xml", "forcefield"), check=_check_config,
               reads_features=True),
)
