"""OPES along the learned RC within a round (``[bias] method = "opes"``): the blocks of the
adaptive bias, the bias each frame felt, and the reweighting against the exact F."""

import json
import math

import numpy as np
import pytest

from rave.analysis import CampaignResult
from rave.bias_grid import Bias, bias_blocks, effective_log_sum
from rave.campaign import Campaign
from rave.campaign.config import ConfigError, config_from_dict
from rave.campaign.loop import RoundLoop
from rave.learn.bias import adaptive_bias_dict, applied_states, reduced_bias_matrix
from rave.md.opes import OPESBias, OPESSpec, linear_map, map_opes_state
from rave.md.walker import Walker
from rave.stats import free_energy_profile, mbar_reweight
from rave.systems.model_potentials import rotated_double_well

TEMPERATURE_K = 300.0
KT = 2.494338785445972  # kJ/mol at 300 K
#: RMS error (kT) of F(chi) from one OPES walker (200,000 steps, ~150 crossings, 4,000 frames)
#: plus an unbiased start, against quadrature where the exact F < 4 kT. Its statistical error
#: is 0.1-0.2 kT (seeds 1-5 measured 0.20, 0.16, 0.13, 0.28, 0.14 kT); 0.35 kT leaves room for
#: the spread of seeds, not for a method off by a barrier-sized error (0.5 kT and more).
OPES_RMSE_KT = 0.35


# ------------------------------------------------------------------ pure functions
def test_one_block_of_a_constant_bias_is_that_bias_less_its_c():
    values = np.tile(np.linspace(-5.0, 0.0, 7), (4, 1))
    blocks = bias_blocks(values, np.full(4, -1.5), np.array([3, 0, 5, 2]), KT)
    assert len(blocks) == 1
    np.testing.assert_allclose(blocks[0][0], values[0] + 1.5, atol=1e-12)
    assert blocks[0][1] == 10


def test_a_block_is_the_exact_mixture_of_its_versions():
    # two versions within delta: V_block = -kT ln[(n1 e^{-(V1-c1)/kT} + n2 e^{-(V2-c2)/kT}) / n]
    v1, v2 = np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.5, 1.0])
    c1, c2, n1, n2 = 0.2, -0.3, 4, 6
    (block, n), = bias_blocks(np.array([v1, v2]), np.array([c1, c2]), np.array([n1, n2]), KT,
                              delta_kT=1.0)
    expected = -KT * np.log((n1 * np.exp(-(v1 - c1) / KT) + n2 * np.exp(-(v2 - c2) / KT))
                            / (n1 + n2))
    np.testing.assert_allclose(block, expected, atol=1e-12)
    assert n == n1 + n2
    np.testing.assert_allclose(
        effective_log_sum(np.array([v1, v2]), np.array([c1, c2]), np.array([n1, n2]), KT),
        np.log(n1 * np.exp(-(v1 - c1) / KT) + n2 * np.exp(-(v2 - c2) / KT)), atol=1e-12)


def test_blocks_split_where_the_bias_moves_by_more_than_delta_and_respect_max_blocks():
    # the bias deepens by 0.6 kT per version: with delta 1 kT a block holds two versions
    values = np.array([np.array([0.0, -0.6 * k * KT]) for k in range(8)])
    counts = np.ones(8, dtype=int)
    blocks = bias_blocks(values, np.zeros(8), counts, KT, delta_kT=1.0)
    assert [n for _, n in blocks] == [2, 2, 2, 2]
    few = bias_blocks(values, np.zeros(8), counts, KT, delta_kT=1.0, max_blocks=2)
    assert len(few) <= 2 and sum(n for _, n in few) == 8
    # versions without frames make no state
    counts[2:4] = 0
    assert sum(n for _, n in bias_blocks(values, np.zeros(8), counts, KT)) == 6


def test_the_states_of_an_adaptive_round_round_trip_through_its_json():
    blocks = [(np.linspace(-3, 0, 5), 7), (np.linspace(-2, 0, 5), 3)]
    data = json.loads(json.dumps(adaptive_bias_dict([0.6, 0.8], -1.0, 2.0, blocks)))
    states = applied_states(data, 10)
    assert [n for _, n in states] == [7, 3]
    np.testing.assert_allclose(states[1][0].grid.values_kjmol, blocks[1][0])
    # readers that want one Bias get the one in force at the end
    np.testing.assert_allclose(Bias.from_dict(data).grid.values_kjmol, blocks[1][0])
    with pytest.raises(ValueError, match="10 frames but the round has 11"):
        applied_states(data, 11)
    features = np.array([[0.0, 0.0], [1.0, 1.0]])
    reduced, counts = reduced_bias_matrix(features, [(None, 1)] + states, KT)
    assert counts == [1, 7, 3] and np.all(reduced[0] == 0)
    np.testing.assert_allclose(reduced[2], states[1][0].energy(features) / KT)


def test_the_bias_method_is_validated():
    base = {"system": {"kind": "rotated_double_well"}}
    with pytest.raises(ConfigError, match='bias.method must be "static" or "opes"'):
        config_from_dict({**base, "bias": {"method": "metad"}})
    with pytest.raises(ConfigError, match="opes_variance_pace .300. must divide"):
        config_from_dict({**base, "bias": {"method": "opes", "opes_variance_pace": 300}})


# ------------------------------------------------------------------ the walker
def _opes_walker(potential, spec: OPESSpec, seed: int) -> Walker:
    model = potential.build()
    return Walker(model.system, model.positions, model.features, TEMPERATURE_K,
                  potential.timestep_ps, potential.friction_per_ps, seed=seed,
                  platform="Reference", opes=spec.to_dict())


def test_each_frame_keeps_the_opes_bias_it_felt_as_openmm_applied_it():
    potential = rotated_double_well(TEMPERATURE_K)
    c = np.asarray(potential.slow_direction)
    spec = OPESSpec(tuple(c), -2.5, 2.5, 256, 25.0, 500, 100)
    walker = _opes_walker(potential, spec, seed=2)
    frames = walker.run(20_000, 50)
    opes = walker.opes
    assert opes.opes.getNumKernels() > 0
    # OpenMM's energy of each frame equals numpy's spline of the version it was recorded under
    np.testing.assert_allclose(frames.bias_kjmol, opes.frame_bias(frames.features @ c),
                               atol=1e-6)
    # before the first kernel (OPES waits 10 x 500 steps) V = -barrier everywhere and c(t) too
    ct = opes.frame_ct()
    early = np.arange(len(frames.bias_kjmol)) < 5_000 // 50 - 1
    np.testing.assert_allclose(frames.bias_kjmol[early], -25.0, atol=1e-9)
    np.testing.assert_allclose(ct[early], -25.0)
    assert np.all(np.isfinite(ct)) and sum(opes.counts) == len(frames.bias_kjmol)


def test_a_failed_segment_rolls_the_opes_bias_back():
    potential = rotated_double_well(TEMPERATURE_K)
    spec = OPESSpec(tuple(potential.slow_direction), -2.5, 2.5, 128, 25.0, 500, 100)
    walker = _opes_walker(potential, spec, seed=4)
    walker.run(10_000, 50)
    saved = walker.get_state()
    kernels, versions, frames = (walker.opes.opes.getNumKernels(), len(walker.opes.values),
                                 len(walker.opes.frame_versions))
    walker.run(10_000, 50)
    assert len(walker.opes.frame_versions) == frames + 200
    walker.set_state(saved)
    assert walker.opes.opes.getNumKernels() == kernels
    assert len(walker.opes.frame_versions) == frames
    assert sum(walker.opes.counts) == frames
    assert len(walker.opes.values) == versions + 1  # the restored bias, pushed again
    np.testing.assert_allclose(walker.opes.values[-1], walker.opes.values[versions - 1])


@pytest.mark.parametrize("seed", [1])
def test_opes_frames_reweighted_by_their_blocks_recover_the_exact_free_energy(seed):
    # an unbiased start in one basin (round 0), then OPES along the slow direction (round 1):
    # MBAR over the unbiased state and the blocks of the OPES bias gives back quadrature
    potential = rotated_double_well(TEMPERATURE_K)
    c = np.asarray(potential.slow_direction)
    model = potential.build()
    plain = Walker(model.system, model.positions, model.features, TEMPERATURE_K,
                   potential.timestep_ps, potential.friction_per_ps, seed=seed,
                   platform="Reference")
    start = plain.run(20_000, 50)
    spec = OPESSpec(tuple(c), -2.5, 2.5, 512, 25.0, 500, 100)
    walker = _opes_walker(potential, spec, seed=seed + 100)
    walker.set_state(plain.get_state())
    frames = walker.run(200_000, 50)
    kT = walker.kT
    blocks = walker.opes.blocks()
    assert 5 <= len(blocks) <= 32
    data = adaptive_bias_dict(c, spec.chi_min, spec.chi_max, blocks)
    states = [(None, len(start.features))] + applied_states(data, len(frames.features))
    features = np.concatenate([start.features, frames.features])
    reduced, counts = reduced_bias_matrix(features, states, kT)
    log_w = mbar_reweight(reduced, counts).log_weights
    chi = features @ c
    centers, profile = free_energy_profile(chi, log_w, np.linspace(-1.6, 1.6, 33))
    exact = potential.exact_free_energy(c, centers)
    region = np.isfinite(profile) & (exact < 4.0)
    assert region.sum() >= 16
    diff = profile[region] - exact[region]
    rmse = math.sqrt(np.mean((diff - diff.mean()) ** 2))
    print(f"seed {seed}: {len(blocks)} blocks, RMSE {rmse:.3f} kT")
    assert rmse < OPES_RMSE_KT


# ------------------------------------------------------------------ the campaign
def test_an_opes_campaign_stores_its_blocks_resumes_and_analyses(tmp_path):
    data = {"system": {"kind": "rotated_double_well"},
            "sampling": {"rounds": 2, "steps_per_round": 20_000, "report_interval": 50,
                         "seed": 5},
            "vae": {"models": 1, "max_epochs": 2, "frames_per_epoch": 1024,
                    "hidden": [32, 32, 32]},
            "bias": {"method": "opes", "opes_grid_points": 128},
            "convergence": {"min_rounds": 5},
            "output": {"figures": False, "progress": False}}
    workdir = tmp_path / "w"
    Campaign(config_from_dict(data), workdir).run()
    applied = json.loads((workdir / "round_001" / "bias_applied.json").read_text())
    assert applied["method"] == "opes"
    with np.load(workdir / "round_001" / "frames.npz") as frames:
        n = len(frames["features"])
        assert sum(s["frames"] for s in applied["states"]) == n
    # one more round from the stored ones: the adaptive round is read back as its blocks
    data["sampling"]["rounds"] = 3
    Campaign(config_from_dict(data), workdir).run()
    assert (workdir / "round_002" / "round.json").is_file()
    result = CampaignResult.load(workdir)
    assert len(result.frames_per_state()) == 1 + len(applied["states"]) + len(
        json.loads((workdir / "round_002" / "bias_applied.json").read_text())["states"])
    assert np.isfinite(result.log_weights).all()
    profile = result.profile(n_bootstrap=4)
    assert np.isfinite(profile.free_energy).any()



# ------------------------------------------------------------------ OPES across rounds
def test_linear_map_recovers_an_exact_affine_relation():
    x = np.random.default_rng(0).normal(size=500)
    assert linear_map(x, -1.5 * x + 0.25) == pytest.approx((-1.5, 0.25))
    with pytest.raises(ValueError, match="spread"):
        linear_map(np.ones(5), np.arange(5.0))


@pytest.mark.parametrize("a, b", [(1.0, 0.0), (2.0, 0.5), (-0.5, 0.1)])
def test_a_moved_opes_state_is_the_same_density_on_the_moved_grid(a, b):
    # P_new(a x + b) = P_old(x) / |a|: F_new on the moved grid = F_old + kT ln|a| exactly
    potential = rotated_double_well(TEMPERATURE_K)
    c = tuple(potential.slow_direction)
    walker = _opes_walker(potential, OPESSpec(c, -2.5, 2.5, 101, 25.0, 500, 100), seed=6)
    walker.run(20_000, 50)
    old = walker.opes.opes
    lo, hi = sorted((-2.5 * a + b, 2.5 * a + b))
    model = potential.build()
    moved = OPESBias(model.system, model.features, OPESSpec(c, lo, hi, 101, 25.0, 500, 100),
                     TEMPERATURE_K, map_opes_state(old.getState(), a, b))
    f_old = np.asarray(old.getFreeEnergy()._value)
    f_new = np.asarray(moved.opes.getFreeEnergy()._value)
    if a < 0:
        f_new = f_new[::-1]  # the moved grid runs the other way
    finite = np.isfinite(f_old)
    np.testing.assert_allclose(f_new[finite], f_old[finite] + KT * math.log(abs(a)), atol=1e-6)
    assert moved.opes.getNumKernels() == old.getNumKernels()


def test_an_opes_campaign_continues_opes_while_the_rc_holds_and_restarts_when_it_turns(
        tmp_path, caplog):
    data = {"system": {"kind": "rotated_double_well"},
            "sampling": {"rounds": 4, "steps_per_round": 20_000, "report_interval": 50,
                         "seed": 5},
            "vae": {"models": 1, "max_epochs": 2, "frames_per_epoch": 1024,
                    "hidden": [32, 32, 32]},
            "bias": {"method": "opes", "opes_grid_points": 128, "opes_restart_deg": 90.0,
                     "opes_padding": 3.0},
            # the VAE's RC moves a little every round (the barrier rule may keep it exactly)
            "coordinate": {"rc_choice": "vae"},
            "convergence": {"min_rounds": 5},
            "output": {"figures": False, "progress": False}}
    workdir = tmp_path / "w"
    with caplog.at_level("INFO", logger="rave"):
        Campaign(config_from_dict(data), workdir).run()
    text = caplog.text
    # round 1 starts fresh; round 2 continues round 1's OPES unless its walker left the grid
    assert "round 1: OPES continues" not in text
    continued = [r for r in (2, 3) if f"round {r}: OPES continues from round {r - 1}" in text]
    left = [r for r in (2, 3) if f"round {r - 1} left its OPES grid" in text]
    assert sorted(continued + left) == [2, 3]
    assert continued, text
    # with a 0-degree tolerance every round restarts
    data["bias"]["opes_restart_deg"] = 0.0
    caplog.clear()
    with caplog.at_level("INFO", logger="rave"):
        Campaign(config_from_dict(data), tmp_path / "v").run()
    assert "OPES continues" not in caplog.text


# ------------------------------------------------------------------ the convergence verdict
def _verdict_config(bootstrap: int) -> dict:
    return {"system": {"kind": "rotated_double_well"},
            "sampling": {"rounds": 3, "steps_per_round": 4_000, "report_interval": 20,
                         "seed": 3},
            "vae": {"models": 1, "max_epochs": 2, "frames_per_epoch": 1024,
                    "hidden": [32, 32, 32]},
            # the VAE's RC and its bootstrap (rave.learn.estimator.rc_angle_sigma_deg)
            "coordinate": {"rc_choice": "vae"},
            # changes this lax always pass: the bootstrap decides
            "convergence": {"min_rounds": 2, "angle_deg": 180.0, "free_energy_kT": 50.0,
                            "profile_max_kT": 5.0, "bootstrap": bootstrap},
            "output": {"figures": False, "progress": False}}


def test_the_verdict_needs_the_bootstrap_uncertainty_of_f_below_the_threshold(
        tmp_path, monkeypatch):
    rounds = []
    for sigma in (60.0, 0.1):  # kT: above and below free_energy_kT
        monkeypatch.setattr(RoundLoop, "profile_sigma", lambda self, *a, s=sigma: s)
        data = _verdict_config(16)
        workdir = tmp_path / f"s{sigma}"
        Campaign(config_from_dict(data), workdir).run()
        rounds.append([json.loads((workdir / f"round_{k:03d}" / "round.json").read_text())
                       for k in range(2)])
    high, low = rounds
    assert high[1]["free_energy_sigma_kT"] == 60.0 and not high[1]["converged"]
    assert low[1]["free_energy_sigma_kT"] == 0.1 and low[1]["converged"]
    assert high[0]["free_energy_sigma_kT"] is None  # round 0: no previous round, no verdict


def test_the_recorded_uncertainty_is_the_block_bootstrap_of_the_stored_rounds(tmp_path):
    from rave.stats import bootstrap_free_energy_profile

    workdir = tmp_path / "w"
    data = _verdict_config(8)
    data["sampling"]["rounds"] = 2
    Campaign(config_from_dict(data), workdir).run()
    record = json.loads((workdir / "round_001" / "round.json").read_text())
    sigma = record["free_energy_sigma_kT"]
    assert sigma is not None and 0 < sigma < math.inf
    # recomputed from the store: MBAR states, frames, walkers, the round's RC and seed
    features, states, walker = [], [], []
    for k in range(2):
        folder = workdir / f"round_{k:03d}"
        with np.load(folder / "frames.npz") as frames:
            features.append(frames["features"])
            walker.append(frames["walker"])
        applied = folder / "bias_applied.json"
        states += applied_states(json.loads(applied.read_text()) if applied.exists() else None,
                                 len(features[-1]))
    features = np.concatenate(features)
    c = np.asarray(record["coefficients"])
    chi = features @ c
    reduced, counts = reduced_bias_matrix(features, states, KT)
    edges = np.linspace(chi.min(), chi.max(), 81)
    estimate = bootstrap_free_energy_profile(reduced, counts, chi, edges, n_bootstrap=8,
                                             seed=3 + 7919, walker=np.concatenate(walker))
    with np.load(workdir / "round_001" / "weights.npz") as weights:
        _, profile = free_energy_profile(chi, weights["log_weights"], edges)
    region = np.isfinite(profile) & (profile - np.nanmin(profile) < 5.0)
    sigmas = np.asarray(estimate.sigma)[region]
    expected = np.sqrt(np.mean(sigmas[np.isfinite(sigmas)] ** 2))
    assert sigma == pytest.approx(expected, rel=1e-9)
    # without a bootstrap nothing is recorded and the changes decide alone
    data["convergence"]["bootstrap"] = 0
    Campaign(config_from_dict(data), tmp_path / "v").run()
    assert json.loads((tmp_path / "v" / "round_001" / "round.json").read_text())[
        "free_energy_sigma_kT"] is None


def test_the_final_verdict_line_names_every_criterion_that_failed(tmp_path):
    from rave.cli import _verdict

    (tmp_path / "config.json").write_text(json.dumps({"convergence": {"angle_deg": 5.0,
                                                                      "free_energy_kT": 0.5}}))
    rounds = [{"index": 0}, {"index": 1, "angle_change_deg": 1.0, "free_energy_change_kT": 0.1,
                             "seed_spread_deg": 9.0, "free_energy_sigma_kT": 0.8}]
    line = _verdict(tmp_path, {"converged": False, "rounds": rounds, "stop_reason": "x"})
    assert "seeds' RCs still differ by 9.0 deg" in line
    assert "bootstrap uncertainty is 0.80 kT RMS (limit 0.5)" in line
    assert "RC still moved" not in line and "F(chi) still changed" not in line
    rounds[1] = {"index": 1}  # a store without these records: no crash, says so
    line = _verdict(tmp_path, {"converged": False, "rounds": rounds, "stop_reason": "x"})
    assert "no RC change recorded" in line and "no F(chi) change recorded" in line


# ------------------------------------------------------------------ the RC's uncertainty
def test_block_resample_draws_whole_contiguous_blocks():
    from rave.learn.estimator import block_resample

    take = block_resample(103, 10, np.random.default_rng(0))
    assert take.shape == (100,) and take.max() < 100
    blocks = take.reshape(10, 10)
    assert np.all(np.diff(blocks, axis=1) == 1) and np.all(blocks[:, 0] % 10 == 0)
    with pytest.raises(ValueError, match="n_frames >= n_blocks >= 2"):
        block_resample(5, 10, np.random.default_rng(0))


def test_the_rc_bootstrap_is_small_for_a_determined_rc_and_large_for_an_undetermined_one():
    from rave.learn.estimator import rc_angle_sigma_deg

    rng = np.random.default_rng(4)
    x = rng.normal(size=(4000, 3)) * np.array([1.0, 0.8, 0.6])
    c = np.array([0.6, 0.0, 0.8])
    determined = rc_angle_sigma_deg(x, x @ c, None, c, 6, seed=1)
    noise = rng.normal(size=4000)  # a latent that no direction of x reproduces better
    undetermined = rc_angle_sigma_deg(x, noise, None, c, 6, seed=1)
    print(f"determined {determined:.2f} deg, undetermined {undetermined:.1f} deg")
    assert determined < 1.0
    assert undetermined > 10.0


def test_the_verdict_needs_the_rcs_bootstrap_uncertainty_below_angle_deg(tmp_path, monkeypatch):
    import rave.learn.estimator as estimator

    monkeypatch.setattr(RoundLoop, "profile_sigma", lambda self, *a: 0.1)
    verdicts = []
    for rc_sigma in (3.0, 200.0):  # degrees: below and above angle_deg (180 in this config)
        monkeypatch.setattr(estimator, "rc_angle_sigma_deg", lambda *a, s=rc_sigma, **k: s)
        workdir = tmp_path / f"r{rc_sigma}"
        Campaign(config_from_dict(_verdict_config(16)), workdir).run()
        record = json.loads((workdir / "round_001" / "round.json").read_text())
        assert record["rc_angle_sigma_deg"] == rc_sigma
        verdicts.append(record["converged"])
    assert verdicts == [True, False]
