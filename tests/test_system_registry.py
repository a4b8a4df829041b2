"""The registry of [system] kinds: built-in kinds by name, a new kind as one module, packaging.

This module is itself a kind's module: ``harmonic_well`` below (its options, ``build`` and
``SYSTEM_KINDS``) is what a user writes to add a kind.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import rave
import rave.systems
from rave.campaign import Campaign
from rave.campaign.config import ConfigError, config_from_dict
from rave.campaign.simsystem import build_model_potential, build_simulation_system
from rave.md.features import Position
from rave.systems import SimulationSystem, SystemKind, get_kind, kind_names, register_kind, registry

ROOT = Path(__file__).resolve().parent.parent
BUILT_IN = ("three_state", "rotated_double_well", "expression", "mixed_slow_mode",
            "ligand_cavity", "openmm")
#: tiny VAE settings: the campaign test checks the plumbing, not the physics
TINY_VAE = {"models": 1, "max_epochs": 1, "frames_per_epoch": 256}


# ------------------------------------------------------------------- a new kind, one module
@dataclass(frozen=True)
class WellOptions:
    """[system] keys of kind "harmonic_well"."""

    k_kjmol_nm2: float = 100.0

    def __post_init__(self) -> None:
        if not self.k_kjmol_nm2 > 0:
            raise ValueError(f"k_kjmol_nm2 must be > 0. You supplied {self.k_kjmol_nm2}")


def build_well(config) -> SimulationSystem:
    """One particle in 0.5 k r^2; order parameters x and y."""
    import openmm

    system = openmm.System()
    system.addParticle(1.0)
    force = openmm.CustomExternalForce("0.5*k*(x^2+y^2+z^2)")
    force.addGlobalParameter("k", config.system.options.k_kjmol_nm2)
    force.addParticle(0, [])
    system.addForce(force)
    return SimulationSystem(
        name="harmonic_well", system=system, positions=np.zeros((1, 3)),
        features=[Position([0], "x", name="x"), Position([0], "y", name="y")],
        timestep_ps=0.005, friction_per_ps=25.0)


WELL = SystemKind("harmonic_well", build_well, options=WellOptions)
SYSTEM_KINDS = (WELL,)


@pytest.fixture
def harmonic_well(monkeypatch):
    """The registry with harmonic_well registered (as it was before, after the test)."""
    monkeypatch.setattr(registry, "_KINDS", dict(registry._KINDS))
    return register_kind(WELL)


# ------------------------------------------------------------------------- built-in kinds
def test_every_built_in_kind_resolves_by_the_name_stored_campaigns_record():
    assert kind_names()[: len(BUILT_IN)] == BUILT_IN
    for name in BUILT_IN:
        kind = get_kind(name)
        assert kind.name == name
        assert kind.build.__module__ == f"rave.systems.{registry._BUILTIN[name]}"


def test_unknown_kind_names_the_known_kinds():
    known = ", ".join(repr(k) for k in BUILT_IN)
    with pytest.raises(ConfigError, match=rf"system.kind must be one of {known}\. You supplied "
                                          r"'banana'"):
        config_from_dict({"system": {"kind": "banana"}})
    with pytest.raises(registry.UnknownSystemKind, match="You supplied 'banana'"):
        get_kind("banana")


def test_a_key_of_another_kind_names_the_kinds_that_take_it():
    with pytest.raises(ConfigError, match="system.start only applies to kind = 'three_state' or "
                                          "'rotated_double_well' or 'expression'; kind is "
                                          "'mixed_slow_mode'"):
        config_from_dict({"system": {"kind": "mixed_slow_mode", "start": [0.0, 0.0]}})


def test_a_kind_without_a_model_potential_says_so():
    config = config_from_dict({"system": {"kind": "ligand_cavity"}})
    with pytest.raises(ConfigError, match="'ligand_cavity' has no model potential"):
        build_model_potential(config)


def test_built_in_names_cannot_be_taken():
    with pytest.raises(ValueError, match="'three_state' is built in"):
        register_kind(SystemKind("three_state", build_well))


# ---------------------------------------------------------------------------- a new kind
def test_a_new_kind_reads_its_own_keys_with_types_and_defaults(harmonic_well):
    config = config_from_dict({"system": {"kind": "harmonic_well", "k_kjmol_nm2": 50}})
    assert config.system.options == WellOptions(50.0)
    assert config_from_dict({"system": {"kind": "harmonic_well"}}).system.options == WellOptions()
    with pytest.raises(ConfigError, match="system.k_kjmol_nm2 must be a number. You supplied "
                                          "'stiff'"):
        config_from_dict({"system": {"kind": "harmonic_well", "k_kjmol_nm2": "stiff"}})
    with pytest.raises(ConfigError, match="k_kjmol_nm2 must be > 0. You supplied -1"):
        config_from_dict({"system": {"kind": "harmonic_well", "k_kjmol_nm2": -1.0}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in \[system\]: stiffness\. "
                                          r"Allowed: kind, .*, k_kjmol_nm2"):
        config_from_dict({"system": {"kind": "harmonic_well", "stiffness": 1.0}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) in \[system\]: k_kjmol_nm2"):
        config_from_dict({"system": {"kind": "three_state", "k_kjmol_nm2": 1.0}})
    with pytest.raises(ConfigError, match="system.start only applies to kind = 'three_state'"):
        config_from_dict({"system": {"kind": "harmonic_well", "start": [0.0, 0.0]}})


def test_a_new_kind_round_trips_through_the_stored_config(harmonic_well):
    config = config_from_dict({"system": {"kind": "harmonic_well", "k_kjmol_nm2": 50.0}})
    data = config.to_dict()
    assert data["system"] == {"kind": "harmonic_well", "temperature": 300.0, "k_kjmol_nm2": 50.0}
    assert config_from_dict(json.loads(json.dumps(data))) == config


def test_a_new_kind_builds_and_runs_a_campaign(harmonic_well, tmp_path):
    config = config_from_dict({
        "system": {"kind": "harmonic_well", "k_kjmol_nm2": 50.0},
        "sampling": {"rounds": 2, "steps_per_round": 1000, "report_interval": 10,
                     "platform": "Reference"},
        "vae": TINY_VAE, "output": {"figures": False, "progress": False},
    })
    sim = build_simulation_system(config)
    assert [f.name for f in sim.features] == ["x", "y"]
    assert sim.system.getForce(0).getGlobalParameterDefaultValue(0) == 50.0
    summary = Campaign(config, tmp_path).run()
    assert summary["feature_names"] == ["x", "y"]
    assert [r["frames"] for r in summary["rounds"]] == [100, 100]
    stored = json.loads((tmp_path / "config.json").read_text())
    assert stored["system"]["kind"] == "harmonic_well"
    assert stored["system"]["k_kjmol_nm2"] == 50.0


def test_an_installed_package_declares_a_kind_by_entry_point(monkeypatch):
    monkeypatch.setattr(registry, "_KINDS", dict(registry._KINDS))
    point = importlib.metadata.EntryPoint(name="harmonic_well", value=__name__,
                                          group=registry.ENTRY_POINT_GROUP)

    def entry_points(group=None):
        return [point] if group == registry.ENTRY_POINT_GROUP else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert "harmonic_well" in kind_names()
    assert "harmonic_well" not in registry._KINDS  # listed, not loaded
    assert get_kind("harmonic_well") is WELL


def test_a_kind_is_registered_once(harmonic_well):
    with pytest.raises(ValueError, match="'harmonic_well' is already registered"):
        register_kind(dataclasses.replace(WELL))
    assert register_kind(dataclasses.replace(WELL), replace=True) is not WELL


def test_options_may_not_shadow_the_common_keys():
    @dataclass(frozen=True)
    class Clash:
        temperature: float = 1.0

    with pytest.raises(ValueError, match="options temperature are keys of every"):
        SystemKind("clash", build_well, options=Clash)


# ----------------------------------------------------------------------------- the checkout
def test_rave_systems_is_the_checkouts_systems_folder():
    if Path(rave.__file__).resolve().parent != ROOT / "rave":
        pytest.skip("rave is installed from elsewhere")
    assert Path(rave.systems.__file__).resolve() == ROOT / "systems" / "__init__.py"
