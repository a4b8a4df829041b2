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

A ``cvpack`` collective variable (``pip install cvpack``) is a feature too, built once, when
the config is read, into a :class:`rave.md.features.ForceFeature` (kind "openmm_force" in
features.json)::

    [[features]]
    kind = "cvpack"
    cv = "RadiusOfGyration"                  # a class of cvpack
    name = "rg"                              # optional: default the CV's own name
    atoms = { group = "not element H" }     # constructor arguments that take atoms
    # options = { ... }                      # the constructor's other keyword arguments
    # unit = "nm"                            # optional: default the CV's own unit

See :func:`cvpack_feature` for the arguments filled in from the System and the PDB.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rave.errors import ConfigError
from rave.md.features import Feature, feature_from_dict, feature_keys, feature_names

from .registry import SimulationSystem, SystemKind

if TYPE_CHECKING:  # pragma: no cover
    from rave.campaign.config import Config, SystemConfig

__all__ = ["SYSTEM_KINDS", "cvpack_feature", "features_from_selections"]

#: feature parameters that take particles (an index, a list of indices, or a selection)
_ATOM_KEYS = ("atoms", "group1", "group2", "group_a", "group_b")
#: the keys of a [[features]] table of kind "cvpack"
_CVPACK_KEYS = ("kind", "cv", "name", "unit", "atoms", "options")


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


def _cvpack_signature(cls) -> str:
    import inspect

    try:
        return f"cvpack.{cls.__name__}{inspect.signature(cls)}"
    except (TypeError, ValueError):  # pragma: no cover - a class without a signature
        return f"cvpack.{cls.__name__}"


def cvpack_feature(entry: dict, topology, system=None, positions=None,
                   periodic: bool | None = None, where: str = "features"):
    """A ``[[features]]`` table of kind "cvpack" as a :class:`~rave.md.features.ForceFeature`.

    Raises
    ------
    rave.errors.ConfigError
        When cvpack is not installed, ``cv`` is not a cvpack collective variable, a key or
        selection is wrong, the table has no ``atoms``, or the constructor refuses the
        arguments (the message gives its signature).
    """
    import inspect

    from rave.md.features import ForceFeature

    unknown = sorted(set(entry) - set(_CVPACK_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} for a 'cvpack' "
                          f"feature. Allowed: {', '.join(_CVPACK_KEYS)} (the CV's own "
                          f"arguments go in atoms = {{...}} and options = {{...}})")
    try:
        import cvpack
    except ImportError as error:
        raise ConfigError(f"{where}: kind = \"cvpack\" needs the cvpack package, which is "
                          f"not installed: pip install cvpack") from error
    name = entry.get("cv")
    known = sorted(n for n in dir(cvpack) if isinstance(getattr(cvpack, n), type)
                   and issubclass(getattr(cvpack, n), cvpack.CollectiveVariable)
                   and getattr(cvpack, n) is not cvpack.CollectiveVariable)
    if not isinstance(name, str) or name not in known:
        raise ConfigError(f"{where}.cv must name a cvpack collective variable, one of "
                          f"{', '.join(known)}. You supplied {name!r}")
    cls = getattr(cvpack, name)
    parameters = inspect.signature(cls).parameters
    atoms, options = entry.get("atoms"), entry.get("options", {})
    if not isinstance(atoms, dict) or not atoms:
        raise ConfigError(f"{where}.atoms must be a table of the constructor arguments that "
                          f"take atoms, e.g. atoms = {{ group = \"not element H\" }}, for "
                          f"{_cvpack_signature(cls)}. You supplied {atoms!r}")
    if not isinstance(options, dict):
        raise ConfigError(f"{where}.options must be a table of keyword arguments of "
                          f"{_cvpack_signature(cls)}. You supplied {options!r}")
    both = sorted(set(atoms) & set(options))
    if both:
        raise ConfigError(f"{where}: {', '.join(both)} given in both atoms and options")
    if options.get("pbc") is True and periodic is False:
        raise ConfigError(f"{where}.options.pbc = true, but the System has no periodic "
                          f"boundary conditions: OpenMM would apply the minimum image in its "
                          f"default box. Remove it")
    kwargs, particles = {}, set()
    for key, selection in atoms.items():
        if key not in parameters:
            raise ConfigError(f"{where}.atoms.{key}: {_cvpack_signature(cls)} has no argument "
                              f"{key!r}")
        indices = _select(topology, selection, f"{where}.atoms.{key}")
        if parameters[key].annotation in (int, "int"):
            if len(indices) != 1:
                raise ConfigError(f"{where}.atoms.{key} takes one atom; the selection "
                                  f"{selection!r} matches {len(indices)}")
            kwargs[key] = indices[0]
        else:
            kwargs[key] = indices
        particles.update(indices)
    supplied = {"numAtoms": topology.n_atoms}
    if positions is not None:
        supplied["referencePositions"] = np.asarray(positions, dtype=float)
    if system is not None:
        import openmm

        nonbonded = [f for f in system.getForces() if isinstance(f, openmm.NonbondedForce)]
        if nonbonded:
            supplied["nonbondedForce"] = nonbonded[0]
    for key, value in supplied.items():
        if key in parameters and key not in options:
            kwargs[key] = value
    kwargs.update(options)
    try:
        cv = cls(**kwargs)
    except Exception as error:  # cvpack and OpenMM raise several types for bad arguments
        raise ConfigError(f"{where}: cvpack.{name} refuses the arguments atoms = "
                          f"{sorted(atoms)}, options = {options!r}: {error} (signature: "
                          f"{_cvpack_signature(cls)})") from error
    try:
        return ForceFeature(cv, sorted(particles), unit=entry.get("unit"),
                            name=entry.get("name"))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error


def features_from_selections(entries: list[dict], topology,
                             periodic: bool | None = None, system=None,
                             positions=None) -> list:
    """Features from ``[[features]]`` tables whose atom slots are mdtraj selections.

    Raises
    ------
    rave.errors.ConfigError
        For a selection that is invalid or matches no atom, ``periodic = true`` on a
        non-periodic System, an entry :func:`rave.md.features.feature_from_dict` refuses, or
        two features of one name.
    """
    features = []
    for i, entry in enumerate(entries):
        where = f"features[{i}]" + (f" ({entry['name']})" if "name" in entry else "")
        if entry.get("kind") == "cvpack":
            features.append(cvpack_feature(entry, topology, system, positions, periodic, where))
            continue
        resolved = dict(entry)
        kind = resolved.get("kind")
        if kind not in Feature._registry:
            kinds = ", ".join(repr(k) for k in [*sorted(Feature._registry), "cvpack"])
            raise ConfigError(f"{where}.kind must be one of {kinds}. You supplied {kind!r}")
        if kind == "dihedral" and "function" not in resolved:
            # a table named "phi" that silently meant cos(phi) misled readers of every figure
            raise ConfigError(f'{where}: a dihedral needs function = "sin" or "cos" (the '
                              f'order parameter is that function of the angle)')
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


def features_from_tables(tables: list[dict], topology, system=None) -> list:
    """Order parameters from tables as the TOML's ``[[features]]`` has them, for a Python script.

    The same keys as the TOML (``kind``, ``name``, ``function``, ``group1``/``group2`` or
    ``groups`` as mdtraj selections or atom indices, ...), and the same default periodicity: the
    System's (``periodic`` left out means periodic exactly when the System is).

    Parameters
    ----------
    tables : list of dict
        One table per order parameter, e.g. ``{"kind": "dihedral", "name": "sin_phi",
        "function": "sin", "groups": ["resname ACE and name C", "resname ALA and name N",
        "resname ALA and name CA", "resname ALA and name C"]}``.
    topology : openmm.app.Topology or mdtraj.Topology
        The topology the selections are made on.
    system : openmm.System, optional
        Gives the default periodicity (without it, ``periodic`` is each kind's own default).

    Returns
    -------
    list of rave.md.features.Feature

    Raises
    ------
    rave.errors.ConfigError
        A selection that is invalid or matches no atom, a key the kind does not take,
        ``periodic = true`` on a non-periodic System, or two features of one name.
    """
    import mdtraj

    if not isinstance(topology, mdtraj.Topology):
        topology = mdtraj.Topology.from_openmm(topology)
    periodic = None if system is None else system.usesPeriodicBoundaryConditions()
    return features_from_selections([dict(t) for t in tables], topology, periodic=periodic,
                                    system=system)


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
                                        periodic=system.usesPeriodicBoundaryConditions(),
                                        system=system, positions=positions)
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
