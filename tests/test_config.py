"""Config: defaults, fixed key names, clear errors for bad input."""

import pytest

from rave.campaign.config import Config, ConfigError, config_from_dict, load_config


def test_minimal_config_fills_documented_defaults():
    config = config_from_dict({"system": {"kind": "three_state"}})
    assert isinstance(config, Config)
    assert config.system.temperature == 300.0
    # rounds and steps_per_round not given: 4 rounds of 200,000 steps without a budget
    assert config.sampling.rounds is None and config.sampling.round_limit == 4
    assert config.sampling.steps_per_round is None and config.sampling.round_steps == 200000
    assert config.sampling.seed == 1
    assert config.models.models == 3
    vae = config.vae_config()
    assert tuple(vae.hidden) == (512, 512, 512)


def test_fixed_key_names_from_the_issue_are_accepted(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[system]\nkind = "expression"\nexpression = "5*(x^2-1)^2 + 10*y^2"\n'
        "temperature = 300.0\n[sampling]\nrounds = 4\nsteps_per_round = 200000\nseed = 1\n"
    )
    config = load_config(path, {"sampling.rounds": 2})
    assert config.system.expression == "5*(x^2-1)^2 + 10*y^2"
    assert config.sampling.rounds == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"system": {"kind": "three_state", "colour": 1}},
         r"unknown key\(s\) in \[system\]: colour"),
        ({"system": {"kind": "three_state"}, "extra": {}}, r"unknown section\(s\): \[extra\]"),
        ({"system": {"kind": "banana"}}, "system.kind must be one of"),
        ({"system": {"kind": "expression"}}, "system.expression is required"),
        ({"system": {"kind": "three_state", "temperature": "hot"}},
         "system.temperature must be a number"),
        ({"system": {"kind": "three_state", "temperature": -5.0}},
         "system.temperature must be a finite number > 0"),
        ({"system": {"kind": "three_state"}, "sampling": {"rounds": 2.5}},
         "sampling.rounds must be an integer"),
        ({"system": {"kind": "three_state"}, "sampling": {"steps_per_round": 500}},
         "frames per round"),
        ({"system": {"kind": "three_state"}, "vae": {"beta": -1.0}}, r"\[vae\]"),
        ({"system": {"kind": "three_state"}, "vae": {"depth": 3}}, r"unknown key\(s\) in \[vae\]"),
        ({"system": {"kind": "three_state"}, "bias": {"damping": 2.0}}, "bias.damping"),
        ({"system": {"kind": "three_state"}, "bias": {"smoothing_bins": float("inf")}},
         r"bias.smoothing_bins must be a finite number >= 0. You supplied inf"),
        ({"system": {"kind": "three_state"}, "bias": {"padding": float("nan")}},
         r"bias.padding must be a finite number >= 0. You supplied nan"),
        ({"system": {"kind": "three_state"}, "bias": {"opes_padding": float("nan")}},
         r"bias.opes_padding must be a finite number >= 0"),
        ({}, r"the \[system\] section is required"),
        ({"system": {}}, r"\[system\] is missing required key\(s\): kind"),
    ],
)
def test_bad_config_is_refused_with_a_message_naming_the_problem(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_invalid_toml_and_missing_file_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[system\nkind=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_config_round_trips_through_its_stored_dict():
    config = config_from_dict({"system": {"kind": "rotated_double_well", "angle_deg": 20.0},
                               "vae": {"models": 2, "hidden": [64, 64]}})
    again = config_from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    assert again.system.angle_deg == 20.0 and again.models.models == 2


# what can be checked is checked before the work directory is written
@pytest.mark.parametrize(
    ("sampling", "message"),
    [
        ({"seed": 9223372036854775807}, r"sampling.seed must be in 0..2147483647"),
        ({"steps_per_round": 500, "report_interval": 1000},
         r"sampling.report_interval \(1000\) must not exceed sampling.steps_per_round \(500\)"),
    ],
)
def test_out_of_range_sampling_keys_are_refused_naming_the_key(sampling, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"system": {"kind": "three_state"}, "sampling": sampling})


def test_a_campaign_whose_frames_exceed_memory_is_refused_before_any_write(tmp_path):
    from rave.campaign import Campaign

    config = config_from_dict({"system": {"kind": "three_state"},
                               "sampling": {"steps_per_round": 10**15}})
    with pytest.raises(ConfigError, match=r"the frames of this campaign would take about .* "
                                          r"Lower sampling.steps_per_round"):
        Campaign(config, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_binary_or_directory_config_file_is_named(tmp_path):
    binary = tmp_path / "c.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ConfigError, match=rf"config file {binary} is not a text file"):
        load_config(binary)
    with pytest.raises(ConfigError, match=rf"config file {tmp_path} is a directory"):
        load_config(tmp_path)


def test_a_campaigns_stored_config_json_is_a_config(tmp_path):
    # the advice "run with the stored config (W/config.json)" must be runnable
    import json

    config = config_from_dict({"system": {"kind": "rotated_double_well", "angle_deg": 20.0},
                               "sampling": {"steps_per_round": 4000, "report_interval": 20}})
    stored = tmp_path / "config.json"
    stored.write_text(json.dumps(config.to_dict()))
    assert load_config(stored).to_dict() == config.to_dict()
    stored.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="holds no config"):
        load_config(stored)
