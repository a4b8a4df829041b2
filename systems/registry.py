"""The registry of ``[system] kind`` values: what each kind takes and how it is built.

A kind is one :class:`SystemKind`: its name, the ``[system]`` keys it takes (and, for keys of
its own, a frozen dataclass of them with defaults and checks), a check of the whole section and
``build(config) -> SimulationSystem``. The built-in kinds are listed here by module and loaded on
first use, so importing this module (and parsing a config of another kind) imports neither
OpenMM nor the other kinds' modules:

=======================  =================================
kind                     module (``rave.systems.*``)
=======================  =================================
``three_state``          ``model_potentials``
``rotated_double_well``  ``model_potentials``
``expression``           ``model_potentials``
``mixed_slow_mode``      ``mixed_slow_mode``
``ligand_cavity``        ``ligand_cavity``
``openmm``               ``openmm_files``
=======================  =================================

A new kind is one module with its options and ``build()``, declared in ``SYSTEM_KINDS``::

    @dataclass(frozen=True)
    class WellOptions:                     # [system] keys of this kind, with defaults
        k_kjmol_nm2: float = 100.0

    def build(config):                     # -> rave.systems.SimulationSystem
        k = config.system.options.k_kjmol_nm2
        ...

    SYSTEM_KINDS = (SystemKind("harmonic_well", build, options=WellOptions),)

An installed package makes it known to every process (``rave run``, a resume, ``rave
analyse``) through the entry-point group ``rave.system_kinds`` (name = kind, value = module),
loaded when that kind is asked for::

    [project.entry-points."rave.system_kinds"]
    harmonic_well = "my_package.harmonic_well"

A script can instead call ``register_kind(KIND)`` before it reads the config.

Stored campaigns record ``system.kind`` by name; a built-in name keeps its meaning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover (type checkers only: rave.campaign.config imports this module)
    from rave.campaign.config import Config, SystemConfig

__all__ = [
    "ENTRY_POINT_GROUP",
    "SHARED_KEYS",
    "SYSTEM_KEYS",
    "SimulationSystem",
    "SystemKind",
    "UnknownSystemKind",
    "all_kinds",
    "file_sha256",
    "get_kind",
    "kind_names",
    "register_kind",
]

#: [system] keys besides kind, temperature and options: each applies to the kinds that name it
#: in their ``keys``
SHARED_KEYS = ("expression", "start", "extent", "angle_deg", "barrier_kT", "variant", "ligand",
               "size", "prepare_steps", "minimize_iterations", "pdb", "system_xml", "forcefield")
#: every key of a [system] table (the fields of rave.campaign.config.SystemConfig): a kind's own
#: options may not take these names
SYSTEM_KEYS = ("kind", "temperature", "options", *SHARED_KEYS)

#: built-in kind -> module of this package that declares it (in ``SYSTEM_KINDS``)
_BUILTIN: dict[str, str] = {
    "three_state": "model_potentials",
    "rotated_double_well": "model_potentials",
    "expression": "model_potentials",
    "mixed_slow_mode": "mixed_slow_mode",
    "ligand_cavity": "ligand_cavity",
    "openmm": "openmm_files",
}

#: entry-point group of installed packages' kinds: name = kind, value = module with SYSTEM_KINDS
ENTRY_POINT_GROUP = "rave.system_kinds"

#: kinds loaded or registered so far, by name
_KINDS: dict[str, SystemKind] = {}


@dataclass
class SimulationSystem:
    """Everything the campaign needs about what it simulates (what ``build`` returns).

    Attributes
    ----------
    name : str
        A label of the system.
    system : openmm.System
        The System simulated.
    positions : np.ndarray, shape=(n_particles, 3), nm
        Starting positions.
    features : list of rave.md.features.Feature
        The order parameters.
    timestep_ps, friction_per_ps : float
        Defaults of this system, ps and 1/ps (``[sampling]`` may override them).
    box_vectors : np.ndarray, shape=(3, 3), nm, or None
        Periodic box vectors of the starting positions; None: the System's default.
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
        """The System as OpenMM XML.

        Returns
        -------
        str
            ``openmm.XmlSerializer.serialize(system)``.
        """
        import openmm

        return openmm.XmlSerializer.serialize(self.system)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class SystemKind:
    """One ``[system] kind``.

    Each attribute is also a keyword of the constructor.

    Attributes
    ----------
    name : str
        The value of ``[system] kind``.
    build : callable(Config) -> SimulationSystem
        Builds the system; raises ``rave.errors.ConfigError`` for anything wrong in the
        config.
    keys : tuple of str
        Keys of :data:`SHARED_KEYS` this kind takes (the built-in kinds' keys, e.g.
        ``("start", "extent")``); any other of them that is set is refused, naming the kinds
        that take it.
    options : type, optional
        A frozen dataclass of the keys of this kind's own (typed fields with defaults, checks
        in ``__post_init__``); ``config.system.options`` is an instance of it.
    check : callable(SystemConfig) -> dict or None, optional
        Checks the section (raises ``ConfigError`` naming the key); returns defaults to fill
        in, ``{key: value}``.
    potential : callable(Config) -> object, optional
        The analytic model potential of the config (exact F(chi) for figures and analysis).
    reads_features : bool
        Whether the kind reads ``[[features]]`` tables (its order parameters come from the
        config, not from the kind).

    Raises
    ------
    ValueError
        When ``name`` is empty (or not a string), or an option is named like a key of every
        ``[system]`` section.
    TypeError
        When ``build`` is not callable, or ``options`` is not a dataclass type.
    """

    name: str
    build: Callable[[Config], SimulationSystem]
    keys: tuple[str, ...] = ()
    options: type | None = None
    check: Callable[[SystemConfig], Mapping[str, Any] | None] | None = None
    potential: Callable[[Config], Any] | None = None
    reads_features: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"SystemKind.name must be a non-empty string. You supplied "
                             f"{self.name!r}")
        if not callable(self.build):
            raise TypeError(f"SystemKind {self.name!r}: build must be callable. You supplied "
                            f"{self.build!r}")
        object.__setattr__(self, "keys", tuple(self.keys))
        if self.options is None:
            return
        if not (dataclasses.is_dataclass(self.options) and isinstance(self.options, type)):
            raise TypeError(f"SystemKind {self.name!r}: options must be a dataclass type. You "
                            f"supplied {self.options!r}")
        taken = sorted(set(self.option_names()) & set(SYSTEM_KEYS))
        if taken:
            raise ValueError(f"SystemKind {self.name!r}: options {', '.join(taken)} are keys "
                             f"of every [system] section (rave.campaign.config.SystemConfig); name "
                             f"them otherwise, or list them in keys")

    def option_names(self) -> tuple[str, ...]:
        """The keys of this kind's own (the fields of ``options``).

        Returns
        -------
        tuple of str
            The field names of ``options``, in order; empty without ``options``.
        """
        if self.options is None:
            return ()
        return tuple(f.name for f in dataclasses.fields(self.options))


class UnknownSystemKind(ValueError):
    """A ``[system] kind`` that no module declared; the message names the known kinds."""


def kind_names() -> tuple[str, ...]:
    """Every known kind: the built-in ones, the registered ones, then those of installed
    packages' entry points (imports no kind's module).

    Returns
    -------
    tuple of str
        The names, each once, in that order.
    """
    return tuple(dict.fromkeys([*_BUILTIN, *_KINDS, *_entry_points()]))


def register_kind(kind: SystemKind, *, replace: bool = False) -> SystemKind:
    """Make a kind known to ``[system] kind``.

    Parameters
    ----------
    kind : SystemKind
        The kind.
    replace : bool, optional
        Replace a kind of the same name (otherwise that is an error; a built-in name is never
        replaced: stored campaigns rely on what it means).

    Returns
    -------
    SystemKind
        ``kind``, so that a module can write ``KIND = register_kind(SystemKind(...))``.

    Raises
    ------
    TypeError
        When ``kind`` is not a :class:`SystemKind`.
    ValueError
        When its name is built in, or already registered to another kind and not ``replace``.
    """
    if not isinstance(kind, SystemKind):
        raise TypeError(f"register_kind takes a SystemKind. You supplied {kind!r}")
    if kind.name in _BUILTIN:
        raise ValueError(f"system kind {kind.name!r} is built in "
                         f"(rave.systems.{_BUILTIN[kind.name]}); choose another name")
    existing = _KINDS.get(kind.name)
    if existing is not None and existing is not kind and not replace:
        raise ValueError(f"system kind {kind.name!r} is already registered (build "
                         f"{_qualname(existing.build)}); pass replace=True to replace it")
    _KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> SystemKind:
    """The kind of this name, loading its module on first use (a built-in kind's, or the one
    an installed package names in the entry-point group :data:`ENTRY_POINT_GROUP`).

    Parameters
    ----------
    name : str
        The value of ``[system] kind``.

    Returns
    -------
    SystemKind
        The kind.

    Raises
    ------
    UnknownSystemKind
        For a name no module declared, naming the known kinds.
    """
    if isinstance(name, str) and name not in _KINDS:
        if name in _BUILTIN:
            _load(f"{__package__}.{_BUILTIN[name]}")
        elif name in (plugins := _entry_points()):
            _load(plugins[name])
    try:
        return _KINDS[name]
    except (KeyError, TypeError):
        raise UnknownSystemKind(
            f"system.kind must be one of {', '.join(map(repr, kind_names()))}. You supplied "
            f"{name!r}") from None


def all_kinds() -> list[SystemKind]:
    """Every known kind, in :func:`kind_names` order (loads every built-in kind's module).

    Returns
    -------
    list of SystemKind
        The kinds.
    """
    return [get_kind(name) for name in kind_names()]


def _load(module: str) -> None:
    """Register the ``SYSTEM_KINDS`` of a module (a built-in one, or an entry point's)."""
    declared = getattr(importlib.import_module(module), "SYSTEM_KINDS", None)
    if declared is None:
        raise UnknownSystemKind(f"module {module} declares no SYSTEM_KINDS (a tuple of "
                                f"rave.systems.SystemKind)")
    builtin = module.startswith(f"{__package__}.")
    for kind in declared:
        if kind.name in _BUILTIN and not builtin:
            raise ValueError(f"{module} declares system kind {kind.name!r}, which is built in "
                             f"(rave.systems.{_BUILTIN[kind.name]}); choose another name")
        _KINDS.setdefault(kind.name, kind)


def _entry_points() -> dict[str, str]:
    """Kinds that installed packages declare: name -> module."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _qualname(function: Callable) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', function)}"
