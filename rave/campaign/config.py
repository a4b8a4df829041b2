"""Campaign configuration: TOML in, typed dataclasses out, clear errors for bad input.

The sections are the dataclasses of :mod:`rave.campaign.config_sections`; this module reads the
TOML (:func:`load_config`), checks each table's keys and types against its section
(:func:`config_from_dict`) and puts the sections together into a :class:`Config`. The memory
check of a campaign's frames is :mod:`rave.campaign.frame_memory`. Every name of those modules
is importable from this one.

Every key has a documented default except ``[system] kind`` (and ``expression`` for
``kind = "expression"``). Units: temperature in K, time step in ps, friction in 1/ps, energies
in kT where the key says ``_kT``.

Example::

    [system]
    kind = "expression"          # also "three_state", "rotated_double_well", "mixed_slow_mode"
    expression = "..."           # OpenMM energy expression of x, y (nm) in kJ/mol
    temperature = 300.0          # K
    [sampling]
    rounds = 4
    steps_per_round = 200000
    seed = 1
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..systems.registry import SHARED_KEYS, UnknownSystemKind, all_kinds, get_kind
from .config_sections import (
    BUDGET_ROUNDS,
    DEFAULT_MAX_TEMPERATURE_FACTOR,
    DEFAULT_ROUNDS,
    DEFAULT_STEPS_PER_ROUND,
    MAX_BINS,
    MAX_GRID_POINTS,
    MAX_SEED,
    UNLIMITED_ROUNDS,
    BiasConfig,
    ConvergenceConfig,
    CoordinateConfig,
    ExploreConfig,
    ModelConfig,
    OutputConfig,
    SamplingConfig,
    SystemConfig,
)
from .frame_memory import check_frame_memory, frame_memory_bytes

__all__ = [
    "BUDGET_ROUNDS",
    "DEFAULT_MAX_TEMPERATURE_FACTOR",
    "DEFAULT_ROUNDS",
    "DEFAULT_STEPS_PER_ROUND",
    "LOOP_SECTIONS",
    "MAX_BINS",
    "MAX_GRID_POINTS",
    "MAX_SEED",
    "SHARED_KEYS",
    "UNLIMITED_ROUNDS",
    "BiasConfig",
    "Config",
    "ConfigError",
    "ConvergenceConfig",
    "CoordinateConfig",
    "ExploreConfig",
    "LoopConfig",
    "ModelConfig",
    "OutputConfig",
    "SamplingConfig",
    "SystemConfig",
    "UnknownSystemKind",
    "all_kinds",
    "check_frame_memory",
    "config_from_dict",
    "frame_memory_bytes",
    "get_kind",
    "load_config",
    "loop_config_from_dict",
]


@dataclass(frozen=True)
class Config:
    """A validated campaign configuration: one typed section per TOML table.

    Build it with :func:`load_config` (a TOML file) or :func:`config_from_dict`.

    Attributes
    ----------
    system : SystemConfig
        ``[system]``: what is simulated.
    sampling : SamplingConfig
        ``[sampling]``: the MD of each round.
    vae : dict
        The keyword arguments of rave.learn.vae.VAEConfig given in ``[vae]``.
    models : ModelConfig
        The other ``[vae]`` keys: models per round, threads, warm starts.
    coordinate : CoordinateConfig
        ``[coordinate]``: the RC chosen by KL matching.
    bias : BiasConfig
        ``[bias]``: the bias built after each round.
    convergence : ConvergenceConfig
        ``[convergence]``: when to stop early.
    explore : ExploreConfig
        ``[explore]``: exploration without a CV in round 0.
    output : OutputConfig
        ``[output]``: figures and progress bars.
    features : list of dict
        The ``[[features]]`` tables (kinds that read them, e.g. "openmm").
    """
    system: SystemConfig
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    vae: dict = field(default_factory=dict)  # keyword arguments of rave.learn.vae.VAEConfig
    models: ModelConfig = field(default_factory=ModelConfig)
    coordinate: CoordinateConfig = field(default_factory=CoordinateConfig)
    bias: BiasConfig = field(default_factory=BiasConfig)
    convergence: ConvergenceConfig = field(default_factory=ConvergenceConfig)
    explore: ExploreConfig = field(default_factory=ExploreConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    features: list = field(default_factory=list)  # [[features]] tables (kind = "openmm")

    def vae_config(self):
        """The rave.learn.vae.VAEConfig of this campaign.

        Returns
        -------
        rave.learn.vae_config.VAEConfig
            Built from :attr:`vae` (lists become tuples).

        Raises
        ------
        ConfigError
            ``[vae]`` holds a key or value VAEConfig refuses.
        """
        from ..learn.vae_config import VAEConfig

        try:
            return VAEConfig(**_tuples(self.vae))
        except (TypeError, ValueError) as error:
            raise ConfigError(f"[vae]: {error}") from error

    def to_dict(self) -> dict:
        """The config as a TOML-shaped dict (unset optional keys left out).

        Returns
        -------
        dict
            Section -> keys, such that ``config_from_dict(config.to_dict())`` gives the same
            Config.
        """
        data = dataclasses.asdict(self)
        data["vae"] = {**self.vae, **dataclasses.asdict(self.models)}
        del data["models"]
        features = data.pop("features")
        data["system"].update(data["system"].pop("options") or {})  # a kind's own keys
        out = {section: {k: v for k, v in values.items() if v is not None}
               for section, values in data.items()}
        if features:
            out["features"] = features
        return out


@dataclass(frozen=True)
class LoopConfig:
    """The sections of a Config the RAVE loop reads, without ``[system]``: what
    :class:`rave.RAVESampler` takes.

    Same keys and defaults as :class:`Config`; build it with :func:`loop_config_from_dict`.
    """

    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    vae: dict = field(default_factory=dict)
    models: ModelConfig = field(default_factory=ModelConfig)
    coordinate: CoordinateConfig = field(default_factory=CoordinateConfig)
    bias: BiasConfig = field(default_factory=BiasConfig)
    convergence: ConvergenceConfig = field(default_factory=ConvergenceConfig)
    explore: ExploreConfig = field(default_factory=ExploreConfig)

    vae_config = Config.vae_config


#: the sections a LoopConfig takes
LOOP_SECTIONS = ("sampling", "vae", "coordinate", "bias", "convergence", "explore")


def loop_config_from_dict(data: dict) -> LoopConfig:
    """Build and validate a :class:`LoopConfig` from sections as the TOML has them.

    Raises ConfigError naming an unknown section or key, or a value of the wrong type or range.
    """
    unknown = sorted(set(data) - set(LOOP_SECTIONS))
    if unknown:
        raise ConfigError(f"unknown section(s): {', '.join(unknown)}. Allowed: "
                          f"{', '.join(LOOP_SECTIONS)}")
    sections = {name: _section(name, _SECTIONS[name], data[name])
                for name in LOOP_SECTIONS if name != "vae" and name in data}
    vae, models = _vae_section(data.get("vae", {}))
    config = LoopConfig(**sections, vae=vae, models=models)
    config.vae_config()  # refuses a [vae] key or value VAEConfig does not take
    return config


_SECTIONS = {
    "system": SystemConfig,
    "sampling": SamplingConfig,
    "coordinate": CoordinateConfig,
    "bias": BiasConfig,
    "convergence": ConvergenceConfig,
    "explore": ExploreConfig,
    "output": OutputConfig,
}


def _tuples(values: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _check_type(key: str, value: Any, annotation: Any) -> Any:
    """Check a TOML value against a dataclass field annotation; ints pass as floats."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {"list": list, "dict": dict})  # noqa: S307 - own annotations
    origin = typing.get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _check_type(key, value, options[0])
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list. You supplied {value!r}")
        (inner,) = typing.get_args(annotation)
        return [_check_type(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number. You supplied {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer. You supplied {value!r}")
        return value
    if annotation is bool and not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false. You supplied {value!r}")
    if annotation is str and not isinstance(value, str):
        raise ConfigError(f"{key} must be a string. You supplied {value!r}")
    return value


def _section(name: str, cls: type, values: Any):
    if not isinstance(values, dict):
        raise ConfigError(f"[{name}] must be a table. You supplied {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) in [{name}]: {', '.join(unknown)}. Allowed: {', '.join(fields)}"
        )
    checked = {k: _check_type(f"{name}.{k}", v, fields[k].type) for k, v in values.items()}
    try:
        return cls(**checked)
    except TypeError as error:  # a required key is missing
        missing = [f for f, spec in fields.items() if f not in checked
                   and spec.default is dataclasses.MISSING]
        raise ConfigError(f"[{name}] is missing required key(s): {', '.join(missing)}") from error


def _system_section(values: Any) -> SystemConfig:
    """``[system]``: the kind's own keys (its ``options`` dataclass) are split off first."""
    if not isinstance(values, dict):
        raise ConfigError(f"[system] must be a table. You supplied {values!r}")
    values = dict(values)
    kind = None
    if isinstance(values.get("kind"), str):
        try:
            kind = get_kind(values["kind"])
        except UnknownSystemKind as error:
            raise ConfigError(str(error)) from None
    fields = [f.name for f in dataclasses.fields(SystemConfig) if f.name != "options"]
    own = kind.option_names() if kind is not None else ()
    unknown = sorted(set(values) - set(fields) - set(own))
    if unknown:
        raise ConfigError(
            f"unknown key(s) in [system]: {', '.join(unknown)}. Allowed: "
            f"{', '.join([*fields, *own])}"
        )
    if own:
        try:
            values["options"] = _section("system", kind.options,
                                         {k: values.pop(k) for k in own if k in values})
        except ConfigError:
            raise
        except ValueError as error:  # the kind's own checks
            raise ConfigError(f"[system] kind {kind.name!r}: {error}") from error
    return _section("system", SystemConfig, values)


def _vae_section(values: Any) -> tuple[dict, ModelConfig]:
    if not isinstance(values, dict):
        raise ConfigError(f"[vae] must be a table. You supplied {values!r}")
    values = dict(values)
    own = [f.name for f in dataclasses.fields(ModelConfig)]
    models = _section("vae", ModelConfig, {k: values.pop(k) for k in own if k in values})
    from ..learn.vae_config import VAEConfig

    fields = {f.name: f for f in dataclasses.fields(VAEConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key(s) in [vae]: {', '.join(unknown)}. Allowed: {', '.join(own)}, "
            f"{', '.join(fields)}"
        )
    try:
        VAEConfig(**_tuples(values))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"[vae]: {error}") from error
    return values, models


def config_from_dict(data: dict) -> Config:
    """Build and validate a Config from a parsed TOML document.

    Parameters
    ----------
    data : dict
        Section name -> table (as ``tomllib`` parses it, or :meth:`Config.to_dict`).

    Returns
    -------
    Config
        The configuration, every default filled in.

    Raises
    ------
    ConfigError
        An unknown section or key, a value of the wrong type or range, a missing
        ``[system]`` or required key, or ``[[features]]`` for a kind that does not read them.
    """
    known = set(_SECTIONS) | {"vae", "features"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"unknown section(s): {', '.join(f'[{u}]' for u in unknown)}. "
            f"Allowed: {', '.join(f'[{k}]' for k in sorted(known))}"
        )
    if "system" not in data:
        raise ConfigError('the [system] section is required, e.g. [system] kind = "three_state"')
    sections = {name: _system_section(data[name]) if name == "system" else
                _section(name, cls, data[name])
                for name, cls in _SECTIONS.items() if name in data}
    vae, models = _vae_section(data.get("vae", {}))
    features = data.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, dict) and "kind" in f
                                                 for f in features):
        raise ConfigError("[[features]] must be tables with a kind, e.g. [[features]] kind = "
                          "\"distance\" group1 = \"resid 0 and name CA\" group2 = ...")
    if features and not get_kind(sections["system"].kind).reads_features:
        readers = " or ".join(f'"{k.name}"' for k in all_kinds() if k.reads_features)
        raise ConfigError(f"[[features]] are only read for system.kind = {readers}; "
                          f"{sections['system'].kind!r} defines its own order parameters. "
                          f"Remove the [[features]] tables")
    return Config(**sections, vae=vae, models=models, features=[dict(f) for f in features])


def load_config(path: str | Path, overrides: dict | None = None) -> Config:
    """Read a campaign TOML file (or a campaign's stored ``config.json``).

    Relative ``pdb`` and ``system_xml`` paths of ``[system]`` are taken relative to the file.

    Parameters
    ----------
    path : str or path
        The TOML file.
    overrides : dict, optional
        Maps "section.key" to a value (CLI flags); applied before validation.

    Returns
    -------
    Config
        The validated configuration.

    Raises
    ------
    ConfigError
        The file is missing, a directory, not UTF-8 text or not valid TOML, or the
        configuration is refused (see :func:`config_from_dict`).
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory; give the campaign's TOML file "
                          f"(see workflows/*.toml)")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {path} is not a text file (not UTF-8: {error.reason} at "
                          f"byte {error.start}); give the campaign's TOML file") from error
    if path.suffix == ".json":  # a campaign's stored config.json (Config.to_dict)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path} is not valid JSON: {error}") from error
        if not isinstance(data, dict):
            raise ConfigError(f"{path} holds no config (a JSON object of sections)")
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path} is not valid TOML: {error}") from error
    for dotted, value in (overrides or {}).items():
        section, key = dotted.split(".")
        data.setdefault(section, {})[key] = value
    system = data.get("system")
    if isinstance(system, dict):  # input files are relative to the config file
        for key in ("pdb", "system_xml"):
            if isinstance(system.get(key), str) and not Path(system[key]).is_absolute():
                system[key] = str((path.parent / system[key]).resolve())
    return config_from_dict(data)
