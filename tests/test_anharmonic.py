"""The most skewed direction (rave.learn.anharmonic) and the estimator's single-basin rule.

References: scipy.stats.skew; the mixed-slow-mode model's exact in-basin sampler (the slow
direction u is known); analytic free-energy profiles for the basin count; a Gaussian's exact
F for the kernel estimate.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rave.learn.anharmonic import (
    barrier_choice_sigma_deg,
    choose_by_barrier,
    find_basins,
    latent_direction,
    skewed_direction,
    smoothed_free_energy,
    weighted_kurtosis,
    weighted_skewness,
)
from rave.learn.coordinate import direction_angle_deg
from rave.learn.estimator import RAVE
from rave.systems.mixed_slow_mode import mixed_slow_mode

#: the small VAE of the estimator tests (seconds)
VAE = {"hidden": [32, 32, 32], "max_epochs": 2, "frames_per_epoch": 1024, "device": "cpu"}
#: angle of the skewed direction to u from 20,000 in-basin samples (measured 2-6 degrees over
#: seeds 0-2 with 2,000-36,000 samples; the sampling spread at 20,000 is about 2 degrees)
SLOW_DIRECTION_TOL_DEG = 6.0


@pytest.fixture(scope="module")
def potential():
    return mixed_slow_mode()


def in_basin(potential, n: int, seed: int) -> np.ndarray:
    """n exact samples of exp(-U/kT) restricted to the lower well (s = u . q < 0)."""
    q = potential.sample(4 * n, seed)
    q = q[q @ np.asarray(potential.slow_direction) < 0]
    assert len(q) >= n
    return q[:n]


def test_weighted_skewness_matches_scipy_and_repeated_frames():
    rng = np.random.default_rng(0)
    v = rng.gamma(3.0, size=500)
    assert weighted_skewness(v) == pytest.approx(stats.skew(v), rel=1e-12)
    counts = rng.integers(1, 4, size=len(v))
    assert weighted_skewness(v, np.log(counts)) == pytest.approx(
        stats.skew(np.repeat(v, counts)), rel=1e-12)
    assert weighted_skewness(np.full(10, 2.0)) == 0.0
    with pytest.raises(ValueError, match="NaN or inf"):
        weighted_skewness(np.array([1.0, np.nan, 2.0]))


def test_skewed_direction_finds_the_slow_mode_inside_one_basin(potential):
    u = np.asarray(potential.slow_direction)
    q = in_basin(potential, 20_000, seed=1)
    found = skewed_direction(q, seed=0)
    angle = direction_angle_deg(found.coefficients, u)
    # the first principal component (what a variance-led latent follows) is a harmonic one
    pc = np.linalg.eigh(np.cov(q.T))[1][:, -1]
    print(f"skewed direction {angle:.2f} deg off u (skewness {found.skewness:.3f}); first "
          f"principal component {direction_angle_deg(pc, u):.1f} deg off u")
    assert angle < SLOW_DIRECTION_TOL_DEG
    assert direction_angle_deg(pc, u) > 80.0
    assert np.linalg.norm(found.coefficients) == pytest.approx(1.0, abs=1e-12)
    # oriented to its positive skewness: the tail, toward the barrier at s = 0, is +chi
    assert found.skewness > 0
    assert found.skewness == pytest.approx(weighted_skewness(q @ found.coefficients), rel=1e-9)
    assert float(found.coefficients @ u) > 0
    # a reference turns it (and its skewness sign)
    turned = skewed_direction(q, seed=0, reference=-u)
    np.testing.assert_allclose(turned.coefficients, -found.coefficients, atol=1e-6)
    assert turned.skewness < 0


def test_skewed_direction_is_a_property_of_chi_not_of_the_units():
    """Rescaling an order parameter (nm -> Angstrom) gives the same chi up to a factor."""
    rng = np.random.default_rng(3)
    n = 20_000
    hidden = np.column_stack([rng.gamma(2.0, size=n), 3.0 * rng.normal(size=n),
                              rng.normal(size=n)])
    mix = np.array([[0.6, 0.8, 0.0], [-0.8, 0.6, 0.0], [0.0, 0.0, 1.0]])
    x = hidden @ mix
    found = skewed_direction(x, seed=0)
    # the skewed source is hidden[:, 0] = x @ mix^-1[:, 0]
    truth = np.linalg.inv(mix)[:, 0]
    assert direction_angle_deg(found.coefficients, truth) < 2.0
    scale = np.array([10.0, 1.0, 1.0])
    scaled = skewed_direction(x * scale, seed=0)
    chi, chi_scaled = x @ found.coefficients, (x * scale) @ scaled.coefficients
    assert abs(np.corrcoef(chi, chi_scaled)[0, 1]) == pytest.approx(1.0, abs=1e-8)


def test_skewed_direction_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 3 frames"):
        skewed_direction(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="constant"):
        skewed_direction(np.ones((10, 2)))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        skewed_direction(np.random.default_rng(0).normal(size=(10, 2)),
                         initial_directions=[np.ones(3)])


def test_a_constant_column_is_no_direction():
    rng = np.random.default_rng(4)
    x = np.column_stack([rng.gamma(2.0, size=5000), np.full(5000, 1.5), rng.normal(size=5000)])
    found = skewed_direction(x, seed=0)
    assert direction_angle_deg(found.coefficients, [1.0, 0.0, 0.0]) < 3.0


def test_basins_of_exact_profiles():
    x = np.linspace(-2.0, 2.0, 401)
    assert find_basins(3.0 * (x ** 2 - 1) ** 2, 1.0).count == 2        # barrier 3 kT
    assert find_basins(0.5 * (x ** 2 - 1) ** 2, 1.0).count == 1        # barrier 0.5 kT
    assert find_basins(x ** 2, 1.0).count == 1
    three = -np.log(sum(np.exp(-((x - m) / 0.2) ** 2) for m in (-1.5, 0.0, 1.5)))
    assert find_basins(three, 1.0).count == 3
    # unsampled bins between two sampled stretches count as high ground
    gap = 2.0 * x ** 2
    gap[(x > -0.1) & (x < 0.1)] = np.inf
    assert find_basins(gap, 1.0).count == 2
    # a bump far out in a tail (above max_kT, or with < 1 % of the weight) is no basin
    tail = x ** 2 / 0.05
    tail[(x > 1.5) & (x < 1.55)] = 5.5
    assert find_basins(tail, 1.0).count == 1
    assert find_basins(np.full(5, np.inf), 1.0).count == 0
    with pytest.raises(ValueError, match="barrier_kT"):
        find_basins(x ** 2, 0.0)
    with pytest.raises(ValueError, match="max_kT"):
        find_basins(x ** 2, 2.0, max_kT=1.0)


def test_smoothed_free_energy_of_a_gaussian_and_of_two_wells():
    rng = np.random.default_rng(5)
    v = rng.normal(size=50_000)
    grid, f = smoothed_free_energy(v)
    h = 0.9 * min(1.0, (np.quantile(v, 0.75) - np.quantile(v, 0.25)) / 1.34) * 50_000 ** -0.2
    # the estimate is the sample convolved with the kernel: a Gaussian of variance 1 + h^2
    core = np.abs(grid) < 2.0
    exact = grid ** 2 / (2.0 * (1.0 + h ** 2))
    assert np.max(np.abs((f - exact)[core] - np.mean((f - exact)[core]))) < 0.1
    assert find_basins(f, 1.0).count == 1
    two = np.concatenate([rng.normal(-1.0, 0.15, 4000), rng.normal(1.0, 0.15, 1000)])
    assert find_basins(smoothed_free_energy(two)[1], 1.0).count == 2
    # weights that remove the second well leave one basin
    log_w = np.where(two > 0, -np.inf, 0.0)
    assert find_basins(smoothed_free_energy(two, log_w)[1], 1.0).count == 1


def test_unimodal_samples_rarely_look_like_two_basins():
    """False two-basin verdicts on one-basin samples (Gaussian and skewed gamma, 200-5000
    samples) at the default 0.75 kT: measured 0 in 300; allowed 3 %. Heavier tails (Student
    t3, 200 frames) gave 15 in 200."""
    wrong = 0
    for seed in range(50):
        rng = np.random.default_rng(100 + seed)
        for n in (200, 1000, 5000):
            wrong += find_basins(smoothed_free_energy(rng.normal(size=n))[1], 0.75).count != 1
            wrong += find_basins(smoothed_free_energy(rng.gamma(4.0, size=n))[1],
                                 0.75).count != 1
    assert wrong <= 9


def test_choose_by_barrier_and_its_bootstrap(potential):
    u = np.asarray(potential.slow_direction)
    harmonic = np.asarray(potential.complement[0])
    # one basin: no candidate shows a barrier, the VAE's RC stands (the skewed direction
    # where no VAE RC is given)
    q = in_basin(potential, 20_000, seed=2)
    one = choose_by_barrier(q, None, {"vae": harmonic}, seed=0)
    assert one.source == "vae" and {b.count for b in one.basins.values()} == {1}
    np.testing.assert_allclose(one.coefficients, harmonic / np.linalg.norm(harmonic))
    alone = choose_by_barrier(q, None, {"previous": harmonic}, seed=0)
    assert alone.source == "skew"
    assert direction_angle_deg(alone.coefficients, u) < SLOW_DIRECTION_TOL_DEG
    # both wells: the candidate with the highest barrier, u itself against v_1 and a 30-degree
    # mixture of the two (its barrier blurred by the harmonic part)
    both = potential.sample(20_000, 5)
    mixed = np.cos(np.radians(30)) * u + np.sin(np.radians(30)) * harmonic
    two = choose_by_barrier(both, None, {"vae": mixed, "previous": harmonic}, seed=0)
    print({k: (b.count, round(b.barrier_kT, 2)) for k, b in two.basins.items()}, two.source)
    assert two.basins["previous"].count == 1
    assert two.basins["bimodal"].barrier_kT > two.basins["vae"].barrier_kT + 1.0
    highest = max(b.barrier_kT for b in two.basins.values())
    assert two.basins[two.source].barrier_kT >= highest - 0.5
    assert two.source in ("bimodal", "skew") and direction_angle_deg(two.coefficients, u) < 5.0
    # ties go to the previous RC: u itself as the previous RC is kept
    kept = choose_by_barrier(both, None, {"vae": mixed, "previous": u}, seed=0)
    assert kept.source == "previous"
    np.testing.assert_array_equal(kept.coefficients, u / np.linalg.norm(u))
    # the bootstrap of the choice: small where the choice is clear, large on 300 frames
    many = barrier_choice_sigma_deg(both, None, {"vae": mixed}, two.coefficients, 4, seed=0,
                                    n_starts=4)
    few_q = both[:300]
    few_pick = choose_by_barrier(few_q, None, {"vae": mixed}, seed=0)
    few = barrier_choice_sigma_deg(few_q, None, {"vae": mixed}, few_pick.coefficients, 4,
                                   seed=0, n_starts=4)
    print(f"bootstrap of the choice: {many:.1f} deg (20,000 frames), {few:.1f} deg (300)")
    assert many < 8.0 and few > many
    with pytest.raises(ValueError, match="replicates"):
        barrier_choice_sigma_deg(both, None, {"vae": mixed}, two.coefficients, 1, seed=0)
    with pytest.raises(ValueError, match="'skew'"):
        choose_by_barrier(both, None, {"skew": u})
    with pytest.raises(ValueError, match="'bimodal'"):
        choose_by_barrier(both, None, {"bimodal": u})
    with pytest.raises(ValueError, match="candidate 'vae'"):
        choose_by_barrier(both, None, {"vae": np.zeros(6)})


def test_estimator_keeps_the_vae_rc_while_no_candidate_shows_a_barrier(potential):
    u = np.asarray(potential.slow_direction)
    q = in_basin(potential, 4000, seed=3)
    paper = RAVE(n_models=1, vae=VAE, seed=5, rc_choice="vae").fit(q).fetch_model()
    assert paper.rc_source == "vae" and paper.vae_coefficients is None
    assert paper.candidates is None and paper.skewness is None
    model = RAVE(n_models=1, vae=VAE, seed=5, rc_choice="barrier",
                 rc_bootstrap=2).fit(q).fetch_model()
    print(f"VAE RC {direction_angle_deg(paper.coefficients, u):.1f} deg off u; "
          f"{model.candidates}")
    assert model.rc_source == "vae" and model.vae_coefficients is None
    assert {v["basins"] for v in model.candidates.values()} == {1}
    assert set(model.candidates) == {"vae", "latent", "skew", "bimodal"}
    np.testing.assert_array_equal(model.coefficients, paper.coefficients)
    np.testing.assert_allclose(model.chi, q @ model.coefficients)
    assert model.angle_sigma_deg is not None
    # the skewness of the most skewed direction is recorded (its sign follows the VAE's side)
    assert abs(model.skewness) > 0.2
    with pytest.raises(ValueError, match="rc_choice"):
        RAVE(rc_choice="pca")
    with pytest.raises(ValueError, match="basin_barrier_kT"):
        RAVE(basin_barrier_kT=0.0)


def test_estimator_takes_the_candidate_with_the_highest_barrier(potential):
    """Both wells sampled (exact samples): the chosen RC is the candidate whose F shows the
    highest barrier, near u; a harmonic previous RC (v_1, no barrier) is not kept."""
    u = np.asarray(potential.slow_direction)
    both = potential.sample(4000, 4)
    harmonic = np.asarray(potential.complement[0])
    assert direction_angle_deg(harmonic, u) == pytest.approx(90.0)
    model = RAVE(n_models=1, vae=VAE, seed=5, rc_choice="barrier").fit(
        both, initial=[None], previous=harmonic).fetch_model()
    print({k: v for k, v in model.candidates.items()}, model.rc_source,
          direction_angle_deg(model.coefficients, u))
    barriers = {k: v["barrier_kT"] for k, v in model.candidates.items()}
    assert barriers["previous"] == 0.0 and model.candidates["previous"]["basins"] == 1
    assert model.rc_source != "previous"
    assert barriers[model.rc_source] >= max(barriers.values()) - 0.5
    assert model.candidates[model.rc_source]["basins"] == 2
    assert direction_angle_deg(model.coefficients, u) < 15.0


def test_a_campaign_with_the_barrier_rule_records_its_choice(tmp_path):
    """A short campaign with [coordinate] rc_choice = "barrier": coordinate.json names the
    source and every candidate's basins, the bias is built along the RC chosen, and the
    estimator refitted from the stored frames and weights chooses the same RC."""
    import json

    from rave.campaign import Campaign, store
    from rave.campaign.config import config_from_dict

    config = {
        "system": {"kind": "rotated_double_well", "temperature": 300.0, "angle_deg": 35.0,
                   "barrier_kT": 6.0},
        "sampling": {"rounds": 2, "steps_per_round": 6000, "report_interval": 20, "seed": 3,
                     "scheduler": "serial"},
        "vae": {**VAE, "models": 2, "cold_seeds": 1, "threads": 1},
        "coordinate": {"max_frames": 300, "rc_choice": "barrier", "bootstrap": 2},
        "output": {"figures": False, "progress": False},
    }
    workdir = tmp_path / "rdw"
    Campaign(config_from_dict(config), workdir).run()
    for index in (0, 1):
        folder = store.round_dir(workdir, index)
        coordinate = json.loads((folder / "coordinate.json").read_text())
        assert coordinate["rc_source"] in ("vae", "latent", "skew", "bimodal", "previous")
        names = {"vae", "latent", "skew", "bimodal"} | ({"previous"} if index else set())
        assert set(coordinate["rc_candidates"]) == names
        chosen = coordinate["rc_candidates"][coordinate["rc_source"]]
        assert chosen["angle_deg"] == pytest.approx(0.0, abs=1e-6)
        assert (coordinate["vae_coefficients"] is None) == (coordinate["rc_source"] == "vae")
        bias = json.loads((folder / "bias.json").read_text())
        np.testing.assert_allclose(bias["coefficients"], coordinate["coefficients"])
        record = json.loads((folder / "round.json").read_text())
        assert record["rc_angle_sigma_deg"] is not None


def _two_gaussians_and_noise(seed: int, n: int = 2000) -> np.ndarray:
    """x0: two unit Gaussians at -2 and +2 (a 1.3 kT barrier between them); x1, x2: unit
    Gaussians. Standardised, every direction has the same variance: only the barrier tells x0."""
    rng = np.random.default_rng(seed)
    x0 = rng.choice([-2.0, 2.0], size=n) + rng.normal(size=n)
    return np.column_stack([x0, rng.normal(size=n), rng.normal(size=n)])


#: the most bimodal direction (least kurtosis, then the discriminant across its barrier) on
#: the two-Gaussians case, data seeds 0-9: measured 1.4-4.4 deg off x0
BIMODAL_TOL_DEG = 5.0


@pytest.mark.parametrize("seed", range(10))
def test_the_bimodal_direction_wins_over_a_tilted_rc_on_two_basins(seed):
    x = _two_gaussians_and_noise(seed)
    tilted = np.array([1.0, 1.0, 0.0])  # 45 deg off x0: F along it shows no barrier
    choice = choose_by_barrier(x, None, {"vae": tilted}, seed=seed)
    angle = direction_angle_deg(choice.coefficients, np.array([1.0, 0.0, 0.0]))
    print(f"seed {seed}: {choice.source}, {angle:.1f} deg off x0, basins "
          f"{ {k: (b.count, round(b.barrier_kT, 2)) for k, b in choice.basins.items()} }")
    assert choice.source == "bimodal" and choice.basins["bimodal"].count == 2
    assert angle < BIMODAL_TOL_DEG
    assert weighted_kurtosis(x @ choice.coefficients) < 2.0 < weighted_kurtosis(x @ tilted)


def test_the_estimator_finds_the_bimodal_direction_the_vae_misses():
    x = _two_gaussians_and_noise(3)
    model = RAVE(n_models=1, vae=VAE, seed=3, rc_choice="barrier",
                 rc_bootstrap=0).fit(x).fetch_model()
    angle = direction_angle_deg(model.coefficients, np.array([1.0, 0.0, 0.0]))
    print(f"{model.rc_source}: {angle:.1f} deg off x0; VAE's "
          f"{direction_angle_deg(model.vae_coefficients, np.array([1.0, 0.0, 0.0])):.1f} deg")
    assert model.rc_source == "bimodal" and angle < BIMODAL_TOL_DEG


def test_weighted_kurtosis_and_the_latent_direction_against_references():
    rng = np.random.default_rng(0)
    v = rng.normal(size=5000)
    assert weighted_kurtosis(v) == pytest.approx(stats.kurtosis(v, fisher=False), rel=1e-12)
    counts = rng.integers(1, 4, size=5000)
    assert weighted_kurtosis(v, np.log(counts)) == pytest.approx(
        stats.kurtosis(np.repeat(v, counts), fisher=False), rel=1e-12)
    assert weighted_kurtosis(np.repeat([-1.0, 1.0], 50)) == pytest.approx(1.0)
    # a latent exactly linear in the features: its least-squares direction is that line's
    x = rng.normal(size=(500, 3))
    c = np.array([0.3, -0.5, 0.8])
    found = latent_direction(x, 2.0 + x @ c)
    np.testing.assert_allclose(found, c / np.linalg.norm(c), atol=1e-12)
