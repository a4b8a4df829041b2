"""The campaign store (rave.campaign.store.CampaignStore): every file kind round-trips through it,
its readers name the file that is missing or damaged, it never writes outside its work directory,
and what it reads equals what a campaign wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_CAMPAIGN

from rave.analysis import CampaignFileError, CampaignResult
from rave.campaign import Campaign
from rave.campaign.config import config_from_dict
from rave.campaign.store import (
    FORMAT,
    FORMAT_VERSION,
    CampaignStore,
    RoundRecord,
    StoreFileError,
    WorkdirError,
)
from rave.learn.bias import Bias, BiasGrid, adaptive_bias_dict
from rave.md.features import feature_from_dict
from rave.md.frames import Frames

FEATURES = [{"kind": "position", "name": name, "atoms": [0], "axis": name, "weights": None}
            for name in ("x", "y")]
#: a campaign small enough for a few seconds (plumbing, not physics): two walkers, two rounds
TINY = {
    "system": {"kind": "rotated_double_well"},
    "sampling": {"rounds": 2, "steps_per_round": 2000, "report_interval": 20, "walkers": 2,
                 "snapshots": 5, "scheduler": "serial"},
    "vae": {"models": 1, "max_epochs": 1, "frames_per_epoch": 512},
    "bias": {"method": "static"},  # a round's applied bias is the previous round's bias.json
    "output": {"figures": False, "progress": False},
}


def _bias(offset: float = 0.0) -> Bias:
    return Bias(np.array([0.6, 0.8]), BiasGrid(-2.0, 2.0, np.linspace(-4.0, 0.0, 11) + offset))


def _frames(walkers: int = 3, per_walker: int = 4) -> Frames:
    n = walkers * per_walker
    rng = np.random.default_rng(0)
    return Frames(rng.normal(size=(n, 2)), rng.normal(size=n),
                  np.tile(np.arange(per_walker, dtype=float), walkers),
                  walker=np.repeat(np.arange(walkers, dtype=np.int64), per_walker))


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _same_bias(a: Bias | None, b: Bias | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.to_dict() == b.to_dict()


# ------------------------------------------------------------------------- round trips
def test_every_file_kind_round_trips_and_stays_inside_the_workdir(tmp_path):
    store = CampaignStore(tmp_path / "w")
    config = {"system": {"kind": "rotated_double_well", "temperature": 300.0}}
    store.initialise(config, FEATURES, [], {"rave_version": "x", "runs": []})
    manifest = store.manifest()
    assert list(manifest)[:2] == ["format", "version"]
    assert (manifest["format"], manifest["version"]) == (FORMAT, FORMAT_VERSION)
    assert store.holds_campaign()
    assert store.config() == config and store.feature_dicts() == FEATURES
    assert [f.to_dict() for f in store.features()] == [
        feature_from_dict(d).to_dict() for d in FEATURES]
    # the bytes a new start writes before its manifest are those on disk
    for name, content in store.start_files(config, FEATURES, []).items():
        assert store.path(name).read_bytes() == content

    assert store.prepared() is None
    store.write_prepared({"positions": np.ones((1, 3)), "velocities": None})
    prepared = store.prepared()
    assert sorted(prepared) == ["positions"]
    np.testing.assert_array_equal(prepared["positions"], np.ones((1, 3)))

    store.write_walker(0, 1, {"features": np.zeros((3, 2)), "walker_index": np.int64(1)})
    assert store.stored_walkers(0) == [1]
    np.testing.assert_array_equal(store.walker(0, 1, ("features",))["features"],
                                  np.zeros((3, 2)))

    frames = _frames()
    store.write_frames(0, frames)
    with np.load(store.round_path(0, store.FRAMES)) as data:  # the stored format
        assert data.files == ["features", "bias_kjmol", "time_ps", "walker"]
        assert data["walker"].dtype == np.int64
    back = store.frames(0)
    for key in ("features", "bias_kjmol", "time_ps", "walker"):
        np.testing.assert_array_equal(getattr(back, key), getattr(frames, key))

    static = _bias()
    store.write_bias_applied(1, static.to_dict())
    assert store.applied_bias(1) == static.to_dict()
    assert _same_bias(store.bias_applied(1), static) and not store.is_adaptive(1)
    ((state, n),) = store.bias_states(1, 7)
    assert _same_bias(state, static) and n == 7
    adaptive = adaptive_bias_dict([0.6, 0.8], -2.0, 2.0,
                                  [(np.linspace(-3, 0, 11), 3), (np.linspace(-4, 0, 11), 4)])
    store.write_bias_applied(2, adaptive)
    assert store.is_adaptive(2) and [n for _, n in store.bias_states(2, 7)] == [3, 4]
    # the unbiased round stores none
    assert store.applied_bias(0) is None and store.bias_applied(0) is None
    assert store.bias_states(0, 5) == [(None, 5)]

    store.write_bias(0, _bias(1.0))
    assert _same_bias(store.bias(0), _bias(1.0))
    coordinate = {"coefficients": [0.6, 0.8], "model_files": [store.model_name(7)],
                  "chosen_model": 0}
    store.write_coordinate(0, coordinate)
    assert store.coordinate(0) == coordinate
    assert store.model_files(0) == ["models/vae_seed7.pt"]
    store.write_weights(0, np.log(np.full(12, 1 / 12)), np.zeros(1), np.array([12]))
    weights = store.weights(0)
    assert sorted(weights) == ["frames_per_round", "free_energies", "log_weights"]
    assert weights["log_weights"].shape == (12,)
    store.write_profile(np.array([0.0, 1.0]), np.array([0.5, np.inf]), 0)
    assert store.round_path(0, store.FREE_ENERGY).read_text() == (
        "chi,free_energy_kT\n0.000000,0.500000\n")
    store.write_final_profile(0)
    assert store.path(store.FREE_ENERGY).read_text() == (
        store.round_path(0, store.FREE_ENERGY).read_text())

    assert store.complete_rounds() == []
    record = {"index": 0, "coefficients": [0.6, 0.8], "kl_divergence": 0.1, "frames": 12,
              "effective_sample_size": 12.0}
    store.write_round(0, RoundRecord.from_summary(record))
    assert store.round_record(0).to_summary() == RoundRecord.from_summary(record).to_summary()
    assert {k: v for k, v in json.loads(store.round_path(0, store.ROUND).read_text()).items()
            if k in record} == record
    assert store.complete_rounds() == [0] and store.learned_rounds() == [0]
    store.write_summary({"rounds": [record]})
    assert store.summary() == {"rounds": [record]}

    # everything lies in the work directory, under the names of the layout
    assert [p.name for p in tmp_path.iterdir()] == ["w"]
    assert _files(tmp_path / "w") == [
        "config.json", "features.json", "free_energy.csv", "manifest.json", "prepared.npz",
        "round_000/bias.json", "round_000/coordinate.json", "round_000/frames.npz",
        "round_000/free_energy.csv", "round_000/round.json", "round_000/walkers/walker_01.npz",
        "round_000/weights.npz", "round_001/bias_applied.json", "round_002/bias_applied.json",
        "summary.json"]


def test_the_store_refuses_to_write_outside_its_workdir(tmp_path):
    store = CampaignStore(tmp_path / "w")
    for name in ("../escaped.json", tmp_path / "escaped.json", "round_000/../../escaped.json"):
        with pytest.raises(ValueError, match="lies outside the work directory"):
            store.write_json(name, {})
    with pytest.raises(ValueError, match="lies outside the work directory"):
        store.write_text("/tmp/escaped.txt", "")
    with pytest.raises(ValueError, match="lies outside the work directory"):
        store.round_path(0, "../../escaped.npz")
    assert list(tmp_path.iterdir()) == []
    # a name that stays inside is fine
    written = store.write_json("round_000/../summary.json", {})
    assert written == tmp_path / "w" / "round_000" / ".." / "summary.json"
    assert store.summary() == {}


def test_a_round_without_round_json_is_not_complete(tmp_path):
    store = CampaignStore(tmp_path)
    for index in (0, 1, 3):
        store.write_round(index, RoundRecord(index, np.array([1.0, 0.0]), 0.1, 5, 5.0))
    store.write_frames(2, _frames())  # started, never completed
    assert store.complete_rounds() == [0, 1]  # up to the first incomplete round
    assert store.round_folders() == [0, 1, 2, 3]
    assert store.round_started(2) and not store.round_complete(2)
    assert store.round_has(2, store.FRAMES)


def test_frames_of_a_multi_walker_round_carry_their_walker_labels(tmp_path):
    store = CampaignStore(tmp_path)
    store.write_frames(0, _frames(walkers=3, per_walker=4))
    frames = store.frames(0)
    np.testing.assert_array_equal(frames.walker, np.repeat([0, 1, 2], 4))
    assert [s.tolist() for s in frames.segments()] == [[0, 1, 2, 3], [4, 5, 6, 7],
                                                       [8, 9, 10, 11]]
    # a store written before walkers were labelled: one walker
    path = store.round_path(1, store.FRAMES)
    path.parent.mkdir()
    np.savez(path, features=np.zeros((5, 2)), bias_kjmol=np.zeros(5), time_ps=np.arange(5.0))
    old = store.frames(1)
    assert old.walker is None and len(old.segments()) == 1
    # one without a frame count's walker labels is damaged
    np.savez(path, features=np.zeros((5, 2)), bias_kjmol=np.zeros(5), time_ps=np.arange(5.0),
             walker=np.zeros(4, dtype=np.int64))
    with pytest.raises(StoreFileError, match=r"frames.npz: walker has shape \(4,\), expected"):
        store.frames(1)


# ------------------------------------------------------------------------- damaged files
@pytest.mark.parametrize(("name", "read", "message"), [
    ("round_000/frames.npz", lambda s: s.frames(0), "cannot be read"),
    ("round_000/weights.npz", lambda s: s.weights(0), "cannot be read"),
    ("round_000/bias.json", lambda s: s.bias(0), "is not valid JSON"),
    ("round_000/coordinate.json", lambda s: s.coordinate(0), "is not valid JSON"),
    ("round_000/round.json", lambda s: s.round_record(0), "is not valid JSON"),
    ("round_000/walkers/walker_00.npz", lambda s: s.walker(0, 0), "cannot be read"),
    ("summary.json", lambda s: s.summary(), "is not valid JSON"),
    ("features.json", lambda s: s.features(), "is not valid JSON"),
    ("config.json", lambda s: s.config(), "is not valid JSON"),
])
def test_a_damaged_or_missing_file_is_named(tmp_path, name, read, message):
    store = CampaignStore(tmp_path)
    path = tmp_path / name
    with pytest.raises(StoreFileError, match=f"{path} is missing"):
        read(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK\x03\x04 truncated" if name.endswith(".npz") else b'{"trunc')
    with pytest.raises(StoreFileError, match=f"{path} {message}"):
        read(store)


def test_a_malformed_file_is_named_with_what_is_wrong(tmp_path):
    store = CampaignStore(tmp_path)
    store.write_json("round_000/bias.json", {"coefficients": [1.0, 0.0]})
    with pytest.raises(StoreFileError, match=r"round_000/bias.json is not a valid rave "
                                             r"bias.json \(missing or malformed 'grid'\)"):
        store.bias(0)
    store.write_json("round_001/bias_applied.json", adaptive_bias_dict(
        [1.0, 0.0], -1.0, 1.0, [(np.zeros(5), 3)]))
    with pytest.raises(StoreFileError, match="bias_applied.json is not a valid rave"):
        store.bias_states(1, 4)  # the blocks hold 3 frames
    with pytest.raises(StoreFileError, match="bias_applied.json is missing"):
        store.bias_states(2, 4, required=True)
    store.write_npz("round_000/frames.npz", features=np.zeros((2, 2)))
    store.write_json("round_000/round.json", {"index": 0})
    with pytest.raises(StoreFileError, match=r"round.json is not a valid rave round.json "
                                             r"\(missing or malformed 'coefficients'\)"):
        store.round_record(0)
    with pytest.raises(StoreFileError, match="frames.npz lacks bias_kjmol, time_ps"):
        store.frames(0)
    store.write_json("round_001/coordinate.json", {"x": 1})
    with pytest.raises(StoreFileError, match=r"round_001/coordinate.json is not a valid rave "
                                             r"coordinate.json \(missing or malformed "
                                             r"'coefficients'\)"):
        store.coordinate(1)
    store.write_json("manifest.json", {"format": "other"})
    with pytest.raises(WorkdirError, match="is not a rave campaign manifest"):
        store.manifest()
    store.write_json("manifest.json", {"format": FORMAT, "version": FORMAT_VERSION + 1})
    with pytest.raises(WorkdirError, match="written by a newer rave"):
        store.manifest()
    with pytest.raises(StoreFileError, match="vae_seed1.pt is missing"):
        store.model(0, store.model_name(1))
    assert issubclass(CampaignFileError, StoreFileError)


# ------------------------------------------------------------------------- against a campaign
@pytest.fixture
def campaign(small_campaign):
    """The shared campaign (conftest.SMALL_CAMPAIGN: two rounds, two walkers, static bias)
    and its summary."""
    return small_campaign


def test_the_store_reads_back_what_the_campaign_wrote(campaign):
    campaign, summary = campaign
    store = CampaignStore(campaign.workdir)
    assert store.summary() == summary
    assert store.config() == campaign.config.to_dict()
    assert store.feature_dicts() == [f.to_dict() for f in campaign.features]
    assert store.manifest()["runs"][0]["rounds_requested"] == 2
    assert store.complete_rounds() == [0, 1] == store.learned_rounds()
    for index in store.complete_rounds():
        frames = store.frames(index)
        written = campaign.loop.frames[index]
        np.testing.assert_array_equal(frames.features, written.features)
        np.testing.assert_array_equal(frames.bias_kjmol, written.bias_kjmol)
        np.testing.assert_array_equal(frames.time_ps, written.time_ps)
        np.testing.assert_array_equal(frames.walker, written.walker)
        assert sorted(set(frames.walker.tolist())) == [0, 1]
        assert store.stored_walkers(index) == [0, 1]
        walkers = [store.walker(index, k) for k in (0, 1)]
        np.testing.assert_array_equal(frames.features,
                                      np.concatenate([w["features"] for w in walkers]))
        states = store.bias_states(index, len(frames), required=index > 0)
        assert len(states) == len(campaign.loop.biases[index])
        for (a, n), (b, m) in zip(states, campaign.loop.biases[index], strict=True):
            assert _same_bias(a, b) and n == m
        record = store.round_record(index)
        assert record.to_summary() == campaign.records[index].to_summary()
        coordinate = store.coordinate(index)
        assert coordinate["coefficients"] == summary["rounds"][index]["coefficients"]
        for name in store.model_files(index):
            assert store.model(index, name) is not None
    np.testing.assert_array_equal(store.weights(1)["log_weights"],
                                  campaign.loop.previous_log_weights)
    assert _same_bias(store.bias(1), campaign.loop.next_bias)
    assert _same_bias(store.bias_applied(1), store.bias(0))  # round 1 ran under round 0's bias


def test_analysis_and_a_resume_read_the_same_store(campaign):
    campaign, summary = campaign
    result = CampaignResult.load(campaign.workdir)
    store = CampaignStore(campaign.workdir)
    for data in result.rounds:
        frames = store.frames(data.index)
        np.testing.assert_array_equal(data.features, frames.features)
        np.testing.assert_array_equal(data.walker, frames.walker)
        assert [len(s) for s in data.segments()] == [len(s) for s in frames.segments()]
        assert data.coordinate == store.coordinate(data.index)
    resumed = Campaign(config_from_dict(SMALL_CAMPAIGN), campaign.workdir)
    resumed._load_complete_rounds()
    assert [r.to_summary() for r in resumed.records] == summary["rounds"]
    for a, b in zip(resumed.loop.frames, campaign.loop.frames, strict=True):
        np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(resumed.loop.previous_log_weights,
                                  campaign.loop.previous_log_weights)
    assert json.loads(store.path(store.SUMMARY).read_text()) == summary


def test_a_campaign_in_a_relative_workdir_runs_resumes_and_analyses(tmp_path, monkeypatch):
    """``rave run --workdir runs/x`` (relative): every path the store builds stays inside it
    (a relative workdir once got prefixed twice: runs/x/runs/x/round_000/...)."""
    from rave.analysis import CampaignResult

    monkeypatch.chdir(tmp_path)
    relative = Path("runs") / "w"
    summary = Campaign(config_from_dict(TINY), relative).run()
    assert len(summary["rounds"]) == 2
    assert (tmp_path / "runs" / "w" / "round_001" / "round.json").is_file()
    assert not (tmp_path / "runs" / "w" / "runs").exists()
    again = Campaign(config_from_dict(TINY), relative).run()  # complete: resumes, adds nothing
    assert again["rounds"] == summary["rounds"]
    assert len(CampaignResult.load(relative).rounds) == 2
