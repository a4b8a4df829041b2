"""The MD schedule: a budget over all rounds and walkers that is never exceeded,
round lengths that adapt to the stored rounds, a plan a resume keeps, and the fixed schedule
unchanged without a budget."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import rave_run

from rave.analysis import write_report
from rave.campaign import Campaign, store
from rave.campaign.config import ConfigError, config_from_dict, frame_memory_bytes
from rave.campaign.schedule import (
    BUDGET_MIN_ROUNDS,
    CAP_FACTOR,
    FLOOR_DIVISOR,
    MIN_ROUND_FRAMES,
    NEW_RANGE_FRACTION,
    default_first_round_steps,
    plan_round_steps,
)
from rave.cli import main

#: the [sampling] and [convergence] keys of the pure-function tests
SPR, RI = 8000, 20
KEYS = {"steps_per_round": SPR, "report_interval": RI, "angle_deg": 5.0, "free_energy_kT": 0.5}


@dataclass
class Outcome:
    """A complete round as the schedule reads it (rave.campaign.RoundRecord's fields)."""

    steps: int
    walkers: int = 1
    angle_change_deg: float | None = None
    free_energy_change_kT: float | None = None
    chi_range_growth: float | None = None


TURNED = {"angle_change_deg": 20.0, "free_energy_change_kT": 2.0, "chi_range_growth": 0.0}
NEW_RANGE = {"angle_change_deg": 1.0, "free_energy_change_kT": 2.0,
             "chi_range_growth": 2 * NEW_RANGE_FRACTION}
SETTLED = {"angle_change_deg": 1.0, "free_energy_change_kT": 0.1, "chi_range_growth": 0.0}
UNCLEAR = {"angle_change_deg": 1.0, "free_energy_change_kT": 2.0, "chi_range_growth": 0.0}


def _plan(previous, **keys):
    return plan_round_steps(previous, **{**KEYS, "walkers": 1, "max_total_steps": 10**9,
                                         **keys})


# ---------------------------------------------------------------- the rule, as a pure function
def test_a_fixed_round_runs_and_records_whole_frames():
    # steps_per_round 4010 with frames every 20 steps: 200 frames, 4000 steps run and recorded
    plan = plan_round_steps([], steps_per_round=4010, report_interval=20, walkers=1)
    assert plan.steps == 4000 and "rounded down to whole frames of 20 steps" in plan.reason


def test_without_a_budget_every_round_runs_steps_per_round():
    history = [Outcome(SPR, **TURNED), Outcome(SPR, **SETTLED), Outcome(SPR, **NEW_RANGE)]
    for k in range(len(history) + 1):
        plan = plan_round_steps(history[:k], **KEYS, walkers=2)
        assert plan.steps == SPR and "fixed schedule" in plan.reason


def test_first_round_is_short_and_the_first_biased_round_runs_steps_per_round():
    first = _plan([])
    assert first.steps == default_first_round_steps(SPR, RI) == 4000 < SPR
    assert _plan([], first_round_steps=600).steps == 600
    assert _plan([Outcome(600)]).steps == SPR


def test_default_first_round_has_enough_frames_to_train_on():
    # a quarter of 8000 steps is 100 frames of 20: raised to 200 frames (4000 steps)
    assert default_first_round_steps(8000, 20) == 4000
    # a quarter of 200000 steps at 100 is 500 frames: kept
    assert default_first_round_steps(200_000, 100) == 50_000
    # never longer than steps_per_round (rounded down to whole frames)
    assert default_first_round_steps(2010, 20) == 2000


@pytest.mark.parametrize(
    ("last", "expected", "word"),
    [
        (TURNED, SPR // 2, "the RC turned"),
        (NEW_RANGE, SPR // 2, "new chi values"),
        (SETTLED, SPR * 2, "settled"),
        (UNCLEAR, SPR, "kept"),
    ],
)
def test_round_length_follows_the_last_rounds_change(last, expected, word):
    plan = _plan([Outcome(4000), Outcome(SPR, **last)])
    print(f"plan {plan.steps} steps (expected {expected}): {plan.reason}")
    assert plan.steps == expected and word in plan.reason


def test_round_length_stays_within_floor_and_cap():
    floor, cap = SPR // FLOOR_DIVISOR, SPR * CAP_FACTOR
    history = [Outcome(4000), Outcome(SPR, **TURNED)]
    lengths = []
    for _ in range(5):  # keeps turning: halves down to the floor
        plan = _plan(history)
        lengths.append(plan.steps)
        history.append(Outcome(plan.steps, **TURNED))
    assert lengths == [4000, 2000, floor, floor, floor]
    for _ in range(6):  # settles: doubles up to the cap
        plan = _plan(history[:-1] + [Outcome(history[-1].steps, **SETTLED)])
        history.append(Outcome(plan.steps, **SETTLED))
    assert history[-1].steps == cap
    assert "cap" in _plan(history).reason


def test_the_last_round_is_cut_and_a_too_short_rest_is_taken_by_the_round_before():
    walkers = 2
    # 4000 + 8000 steps x 2 walkers used; 5000 steps left per walker: cut from 16000
    history = [Outcome(4000, walkers), Outcome(SPR, walkers, **SETTLED)]
    plan = _plan(history, walkers=walkers, max_total_steps=2 * (4000 + SPR + 5000))
    assert plan.steps == 5000 and "cut" in plan.reason
    # 8000 + 1000 left per walker (less than the 2000-step floor): the round takes all of it
    plan = _plan(history[:1] + [Outcome(SPR, walkers, **UNCLEAR)], walkers=walkers,
                 max_total_steps=2 * (4000 + SPR + SPR + 1000))
    assert plan.steps == SPR + 1000 and "rest of the budget" in plan.reason
    # less than a round of MIN_ROUND_FRAMES frames per walker left: stop
    plan = _plan(history, walkers=walkers,
                 max_total_steps=2 * (4000 + SPR) + walkers * MIN_ROUND_FRAMES * RI - 1)
    assert plan.steps is None and plan.reason.startswith("budget spent")


@pytest.mark.parametrize("walkers", [1, 2, 3])
def test_budget_is_never_exceeded_over_rounds_and_walkers(walkers):
    rng = np.random.default_rng(12)
    kinds = [TURNED, NEW_RANGE, SETTLED, UNCLEAR]
    for budget in rng.integers(4000 * walkers, 40 * SPR * walkers, size=200):
        first = int(rng.integers(10, 4000 // RI + 1)) * RI
        if first * walkers > budget:
            continue
        history: list[Outcome] = []
        while True:
            plan = _plan(history, walkers=walkers, max_total_steps=int(budget),
                         first_round_steps=first)
            if plan.steps is None:
                break
            assert plan.steps % RI == 0 and plan.steps >= MIN_ROUND_FRAMES * RI
            history.append(Outcome(plan.steps, walkers, **kinds[rng.integers(len(kinds))]))
        used = sum(o.steps * o.walkers for o in history)
        assert used <= budget, f"{used} steps used of a budget of {budget}"
        # stopped because less than a round was left, not earlier
        assert budget - used < walkers * MIN_ROUND_FRAMES * RI


@pytest.mark.parametrize("walkers", [1, 2])
def test_a_budget_alone_gives_rounds_from_the_budget_at_least_eight_and_spends_it(walkers):
    rng = np.random.default_rng(5)
    kinds = [TURNED, NEW_RANGE, SETTLED, UNCLEAR]
    for budget in rng.integers(20_000 * walkers, 4_000_000 * walkers, size=300):
        sampling = config_from_dict({"system": {"kind": "three_state"}, "sampling": {
            "report_interval": RI, "walkers": walkers, "max_total_steps": int(budget)}}).sampling
        assert sampling.budget_shaped
        assert sampling.round_steps == int(budget) // (walkers * 10) // RI * RI
        assert sampling.planned_first_round_steps() == sampling.round_steps
        history: list[Outcome] = []
        while True:
            plan = plan_round_steps(
                history, steps_per_round=sampling.round_steps, report_interval=RI,
                walkers=walkers, max_total_steps=int(budget),
                first_round_steps=sampling.planned_first_round_steps(),
                min_rounds=BUDGET_MIN_ROUNDS)
            if plan.steps is None:
                break
            history.append(Outcome(plan.steps, walkers, **kinds[rng.integers(len(kinds))]))
        used = sum(o.steps * o.walkers for o in history)
        assert used <= budget
        assert budget - used < walkers * MIN_ROUND_FRAMES * RI  # spent, not stopped early
        assert len(history) >= BUDGET_MIN_ROUNDS, (int(budget), [o.steps for o in history])


def test_a_budget_alone_is_not_capped_by_the_default_round_count(tmp_path):
    # 1.6M steps with nothing else used to stop after the default 4 rounds
    sampling = config_from_dict({"system": {"kind": "three_state"},
                                 "sampling": {"max_total_steps": 1_600_000}}).sampling
    assert sampling.round_limit >= 10 ** 6 and sampling.round_steps == 160_000
    # an explicit rounds or steps_per_round still decides
    assert config_from_dict({"system": {"kind": "three_state"}, "sampling": {
        "max_total_steps": 1_600_000, "rounds": 4}}).sampling.round_limit == 4
    assert not config_from_dict({"system": {"kind": "three_state"}, "sampling": {
        "max_total_steps": 1_600_000, "steps_per_round": 50_000}}).sampling.budget_shaped


# ---------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("sampling", "message"),
    [
        ({"max_total_steps": 1000}, r"sampling.max_total_steps must be >= the first round's "
                                    r"steps x walkers \(4000 x 1 = 4000\)"),
        ({"max_total_steps": 10000, "walkers": 3, "first_round_steps": 4000},
         r"sampling.max_total_steps must be >= .* \(4000 x 3 = 12000\)"),
        ({"first_round_steps": 4000}, r"sampling.first_round_steps \(4000\) only applies with "
                                      r"sampling.max_total_steps"),
        ({"max_total_steps": 10**6, "first_round_steps": 4010},
         r"sampling.first_round_steps must be a multiple of sampling.report_interval \(20\)"),
        ({"max_total_steps": 10**6, "first_round_steps": 100},
         r"sampling.first_round_steps must be .* at least 10 frames"),
    ],
)
def test_bad_budget_keys_are_refused_naming_the_key(sampling, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"system": {"kind": "three_state"},
                          "sampling": {"steps_per_round": SPR, "report_interval": RI,
                                       **sampling}})


def test_frame_memory_of_a_budget_is_bounded_by_the_budget():
    fixed = config_from_dict({"system": {"kind": "three_state"},
                              "sampling": {"rounds": 100, "steps_per_round": SPR,
                                           "report_interval": RI}})
    budget = config_from_dict({"system": {"kind": "three_state"},
                               "sampling": {"rounds": 100, "steps_per_round": SPR,
                                            "report_interval": RI, "max_total_steps": 10 * SPR}})
    # 10 rounds' worth of frames, not 100 rounds' (nor 100 rounds at the cap); MBAR's matrix
    # holds at most the 40 rounds of the shortest length (SPR / 4) that fit in the budget
    assert frame_memory_bytes(budget, 2) == 8 * (10 * SPR // RI) * (2 + 3 + 40)
    assert frame_memory_bytes(budget, 2) < frame_memory_bytes(fixed, 2)
    # a budget alone: no round limit, and still bounded by the budget
    alone = config_from_dict({"system": {"kind": "three_state"},
                              "sampling": {"report_interval": RI, "max_total_steps": 10 * SPR}})
    assert alone.sampling.round_limit >= 10 ** 6
    assert frame_memory_bytes(alone, 2) <= 8 * (10 * SPR // RI) * (2 + 3 + 10 * SPR // RI)


# ---------------------------------------------------------------- campaigns
def _tiny(**sampling):
    return config_from_dict({
        "system": {"kind": "rotated_double_well"},
        "sampling": {"rounds": 6, "steps_per_round": 2000, "report_interval": 20,
                     "scheduler": "serial", **sampling},
        "vae": {"models": 1, "max_epochs": 1, "frames_per_epoch": 512},
        "output": {"figures": False, "progress": False},
    })


def _round_steps(workdir: Path) -> list[int]:
    return [json.loads(p.read_text())["steps"] for p in sorted(workdir.glob("round_*/round.json"))]


def test_budget_campaign_with_two_walkers_never_exceeds_the_budget(tmp_path, capsys):
    budget = 2 * (600 + 2000 + 1300)
    summary = Campaign(_tiny(walkers=2, max_total_steps=budget, first_round_steps=600),
                       tmp_path).run()
    steps = [r["steps"] for r in summary["rounds"]]
    print(f"rounds' steps per walker {steps}, {summary['steps_used']} of {budget} used; "
          f"{summary['stop_reason']}")
    assert steps[:2] == [600, 2000]
    assert sum(s * 2 for s in steps) == summary["steps_used"] <= budget
    assert summary["steps_left"] == budget - summary["steps_used"]
    assert summary["max_total_steps"] == budget
    assert summary["stop_reason"].startswith("budget spent") or summary["converged"]
    for index, record in enumerate(summary["rounds"]):
        assert record["frames"] == 2 * record["steps"] // 20
        assert record["walkers"] == 2 and record["plan_reason"]
        frames = store.read_npz(store.round_dir(tmp_path, index) / "frames.npz")
        assert np.bincount(frames["walker"]).tolist() == [record["steps"] // 20] * 2
        assert _round_steps(tmp_path)[index] == record["steps"]
    log = (tmp_path / "campaign.log").read_text()
    assert "schedule: a budget of 7800 MD steps" in log
    assert "budget after this round" in log
    capsys.readouterr()
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"MD budget: {summary['steps_used']} of 7800 steps used" in out
    assert "round 1 plan: 2000 steps per walker: first biased round" in out
    report = write_report(tmp_path, tmp_path / "report").read_text()
    assert (f"MD schedule: {summary['steps_used']} steps over all rounds and walkers of a "
            f"budget of 7800") in report


def test_a_budget_alone_runs_at_least_eight_rounds_and_logs_its_plan(tmp_path):
    config = config_from_dict({
        "system": {"kind": "rotated_double_well"},
        "sampling": {"max_total_steps": 40_000, "report_interval": 20, "scheduler": "serial"},
        "vae": {"models": 1, "max_epochs": 1, "frames_per_epoch": 512},
        "convergence": {"min_rounds": 20},
        "output": {"figures": False, "progress": False},
    })
    summary = Campaign(config, tmp_path).run()
    steps = [r["steps"] for r in summary["rounds"]]
    print(f"rounds' steps {steps}; {summary['stop_reason']}")
    assert len(steps) >= 8 and steps[0] == 4000
    assert summary["steps_used"] <= 40_000 and summary["stop_reason"].startswith("budget spent")
    log = (tmp_path / "campaign.log").read_text()
    assert ("schedule: from the budget of 40000 MD steps over all rounds and walkers (0 used, "
            "40000 left): rounds of 4000 steps per walker") in log


def test_fixed_schedule_is_unchanged_without_a_budget(tmp_path):
    summary = Campaign(_tiny(rounds=2), tmp_path).run()
    assert [r["steps"] for r in summary["rounds"]] == [2000, 2000]
    assert [r["frames"] for r in summary["rounds"]] == [100, 100]
    assert all("fixed schedule" in r["plan_reason"] for r in summary["rounds"])
    assert summary["max_total_steps"] is None and summary["steps_left"] is None
    assert summary["steps_used"] == 4000
    assert summary["stop_reason"] in ("converged", "round limit reached (2 rounds)")


def test_budget_below_the_steps_spent_is_refused_and_a_raised_one_is_recorded(tmp_path):
    Campaign(_tiny(rounds=1, max_total_steps=3000, first_round_steps=600), tmp_path).run()
    manifest = (tmp_path / "manifest.json").read_bytes()
    with pytest.raises(store.WorkdirError, match=r"sampling.max_total_steps \(500\) is below "
                                                 r"the 600 MD steps already spent"):
        Campaign(_tiny(rounds=2, max_total_steps=500, first_round_steps=20 * 10), tmp_path).run()
    assert (tmp_path / "manifest.json").read_bytes() == manifest
    summary = Campaign(_tiny(rounds=2, max_total_steps=5000, first_round_steps=600),
                       tmp_path).run()
    assert [r["steps"] for r in summary["rounds"]] == [600, 2000]
    assert summary["rounds"][1]["config_changes"] == [
        "sampling.max_total_steps: stored 3000, now 5000"]
    assert summary["steps_left"] == 5000 - 2600


RESUME_CONFIG = """
[system]
kind = "rotated_double_well"
[sampling]
rounds = 5
steps_per_round = 2000
report_interval = 20
walkers = 2
max_total_steps = 9000
first_round_steps = 600
scheduler = "serial"
[vae]
models = 1
max_epochs = 1
frames_per_epoch = 512
[convergence]
min_rounds = 10
[output]
figures = false
progress = false
"""


def test_killed_and_resumed_budget_campaign_keeps_the_plan(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(RESUME_CONFIG)
    reference = tmp_path / "reference"
    code, output = rave_run(config, reference)
    assert code == 0, output
    workdir = tmp_path / "killed"
    # after round 1 is complete, then in the middle of round 2's walkers
    for fault in ("round_complete:2", "walker_stored:1"):
        code, output = rave_run(config, workdir, fault=fault)
        assert code == -signal.SIGKILL, f"{fault}: expected a SIGKILL, got {code}: {output}"
    code, output = rave_run(config, workdir)
    assert code == 0, output
    got = json.loads((workdir / "summary.json").read_text())
    expected = json.loads((reference / "summary.json").read_text())
    print(f"steps per round: resumed {_round_steps(workdir)}, "
          f"uninterrupted {_round_steps(reference)}")
    assert _round_steps(workdir) == _round_steps(reference)
    assert [r["plan_reason"] for r in got["rounds"]] == [
        r["plan_reason"] for r in expected["rounds"]]
    assert got["steps_used"] == expected["steps_used"] <= 9000
    assert got["stop_reason"] == expected["stop_reason"]
    assert got["stop_reason"].startswith("budget spent")  # min_rounds keeps it from converging
