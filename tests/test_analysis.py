"""Analysis: metastable states, transitions per walker, the notebook API and the report, on a
campaign store written by hand from known synthetic data (no MD, no training)."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from rave.analysis import (
    MIN_BIN_FRAMES,
    MIN_STATE_FRAMES,
    CampaignFileError,
    CampaignResult,
    count_transitions,
    find_metastable_states,
    transition_matrix,
    write_report,
)
from rave.campaign import store
from rave.campaign.config import load_config
from rave.cli import main
from rave.learn.bias import Bias, BiasGrid
from rave.learn.vae import VAE, VAEConfig, VAEModel
from rave.md.features import Position
from rave.stats import bootstrap_free_energy_profile, free_energy_profile, reference_edges

ROUND_OFF = 1e-12  # chi units or kT: agreement of two exact computations of the same number
BIN = 0.01  # chi units: bin width of the hand-made profiles

# ---- metastable states -------------------------------------------------------------------------


def _grid(lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return np.arange(lo, hi + 0.5 * BIN, BIN)


def test_double_well_has_two_states_with_cores_below_one_kT():
    x = _grid()
    f = 5.0 * (x**2 - 1.0) ** 2  # barrier 5 kT at 0, minima at +-1
    states = find_metastable_states(x, f, smoothing_bins=0)
    assert [s.minimum for s in states] == pytest.approx([-1.0, 1.0], abs=ROUND_OFF)
    assert [s.depth_kT for s in states] == pytest.approx([5.0, 5.0], abs=ROUND_OFF)
    # core: F < 1 kT  <=>  |x^2 - 1| < 1/sqrt(5), to within half a bin at each end
    inner, outer = np.sqrt(1 - 1 / np.sqrt(5)), np.sqrt(1 + 1 / np.sqrt(5))
    assert states[1].core[0] == pytest.approx(inner, abs=BIN / 2 + ROUND_OFF)
    assert states[1].core[1] == pytest.approx(outer, abs=BIN / 2 + ROUND_OFF)
    mirrored = (-states[1].core[1], -states[1].core[0])  # the profile is symmetric
    assert states[0].core == pytest.approx(mirrored, abs=ROUND_OFF)


def test_shallow_minimum_is_merged_and_deep_one_kept():
    # piecewise-linear profile with minima A (0 kT), B (3 kT) and C (1 kT); maxima 4 kT between
    # A and B, 4.5 kT between B and C. B is 1 kT below its lower neighbouring maximum: not a state.
    knots_x = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]
    knots_f = [6.0, 0.0, 4.0, 3.0, 4.5, 1.0, 6.0]
    x = _grid()
    f = np.interp(x, knots_x, knots_f)
    states = find_metastable_states(x, f, smoothing_bins=0)
    assert [s.minimum for s in states] == pytest.approx([-1.0, 1.0], abs=ROUND_OFF)
    # after merging B into A's basin the barrier between A and C is the 4.5 kT maximum
    assert [s.depth_kT for s in states] == pytest.approx([4.5, 3.5], abs=ROUND_OFF)
    # with a 1 kT threshold B is a state of depth 1 kT
    three = find_metastable_states(x, f, min_depth_kT=0.9, core_kT=0.5, smoothing_bins=0)
    assert [s.minimum for s in three] == pytest.approx([-1.0, 0.0, 1.0], abs=ROUND_OFF)
    assert three[1].depth_kT == pytest.approx(1.0, abs=ROUND_OFF)


def test_single_well_is_one_state_of_infinite_depth_and_noise_adds_none():
    x = _grid()
    f = 2.0 * x**2 + 0.3 * np.where(np.arange(x.size) % 2, 1.0, -1.0)  # +-0.3 kT zigzag
    states = find_metastable_states(x, f, smoothing_bins=0)
    assert len(states) == 1 and np.isinf(states[0].depth_kT)
    assert abs(states[0].minimum) <= 2 * BIN


def test_empty_bins_separate_states():
    x = _grid()
    f = np.where(np.abs(x) < 0.5, np.inf, 0.5 * (np.abs(x) - 1.0) ** 2)
    states = find_metastable_states(x, f)
    assert [s.minimum for s in states] == pytest.approx([-1.0, 1.0], abs=ROUND_OFF)
    assert all(np.isinf(s.depth_kT) for s in states)


def test_bins_with_too_few_frames_are_never_states():
    # a double well sampled well, plus lone frames in the tails: each lone frame's bin lies
    # between empty bins, so without counts it is a minimum with no barrier (a "state")
    x = _grid()
    counts = np.where(np.abs(np.abs(x) - 1.0) < 0.3, 200, 0)
    lone = [10, 30, 370, 390]  # bins at chi = -1.9, -1.7, 1.7, 1.9
    counts[lone] = 1
    with np.errstate(divide="ignore"):
        f = -np.log(counts / counts.sum())
    f -= f[np.isfinite(f)].min()
    assert len(find_metastable_states(x, f)) == 6  # the trap: lone frames make 4 more
    states = find_metastable_states(x, f, counts=counts)
    assert [s.minimum for s in states] == pytest.approx([-1.0, 1.0], abs=0.3)
    for s in states:
        inside = (x > s.core[0]) & (x < s.core[1])
        assert s.frames == counts[inside].sum() >= MIN_STATE_FRAMES
    # a lone bin with enough frames for its F but too few for a state: no state either
    counts[lone] = MIN_BIN_FRAMES
    assert len(find_metastable_states(x, f, counts=counts)) == 2


def test_deep_minimum_with_a_thin_core_joins_its_neighbour():
    # minima A (0 kT, 50 frames per bin) and B (1 kT) 4 kT deep, but B's core holds 3 frames
    # per bin over 3 bins (9 < MIN_STATE_FRAMES): B is merged into A across the sampled barrier
    knots_x = [-2.0, -1.0, 0.0, 1.0, 2.0]
    knots_f = [4.0, 0.0, 5.0, 1.0, 5.0]
    x = _grid()
    f = np.interp(x, knots_x, knots_f)
    counts = np.where(x < 0.5, 50, 3)
    states = find_metastable_states(x, f, smoothing_bins=0, counts=counts)
    assert [s.minimum for s in states] == pytest.approx([-1.0], abs=ROUND_OFF)
    assert np.isinf(states[0].depth_kT)
    # with the frames to be a state, B is one
    both = find_metastable_states(x, f, smoothing_bins=0, counts=np.full(x.size, 50))
    assert [s.minimum for s in both] == pytest.approx([-1.0, 1.0], abs=ROUND_OFF)
    assert [s.depth_kT for s in both] == pytest.approx([5.0, 4.0], abs=ROUND_OFF)


def test_a_lone_sampled_island_without_enough_frames_is_dropped_not_merged():
    x = _grid()
    f = np.where(np.abs(x + 1.0) < 0.5, (x + 1.0) ** 2, np.inf)
    island = np.abs(x - 1.5) < 0.015  # 3 bins, separated from the well by empty bins
    f[island] = 0.5
    counts = np.where(np.isfinite(f), 100, 0)
    counts[island] = MIN_BIN_FRAMES  # each bin sampled, 15 frames in all: too few
    assert island.sum() * MIN_BIN_FRAMES < MIN_STATE_FRAMES
    states = find_metastable_states(x, f, counts=counts)
    assert [s.minimum for s in states] == pytest.approx([-1.0], abs=ROUND_OFF)
    assert states[0].frames >= MIN_STATE_FRAMES and np.isinf(states[0].depth_kT)
    # with enough frames the island is a state of its own (no sampled barrier between them)
    counts[island] = MIN_STATE_FRAMES
    two = find_metastable_states(x, f, counts=counts)
    assert [s.minimum for s in two] == pytest.approx([-1.0, 1.49], abs=ROUND_OFF)
    assert two[1].frames == 3 * MIN_STATE_FRAMES


def test_state_finder_errors_name_the_problem():
    x = _grid()
    with pytest.raises(ValueError, match=r"core_kT must be in \(0, min_depth_kT = 2.0\)"):
        find_metastable_states(x, x**2, core_kT=2.0)
    with pytest.raises(ValueError, match=r"profile_kT must have the shape of centers"):
        find_metastable_states(x, x[:-1])
    with pytest.raises(ValueError, match=r"must not contain NaN"):
        find_metastable_states(x, np.full(x.size, np.nan))
    with pytest.raises(ValueError, match=r"strictly increasing"):
        find_metastable_states(x[::-1], x**2)
    with pytest.raises(ValueError, match=r"smoothing_bins must be an integer >= 0"):
        find_metastable_states(x, x**2, smoothing_bins=-1)
    with pytest.raises(ValueError, match=r"counts must be integers of the shape of centers"):
        find_metastable_states(x, x**2, counts=np.ones(x.size))
    with pytest.raises(ValueError, match=r"counts must be >= 0"):
        find_metastable_states(x, x**2, counts=np.full(x.size, -1))
    with pytest.raises(ValueError, match=r"min_state_frames must be an integer >= 1"):
        find_metastable_states(x, x**2, min_state_frames=0)


# ---- transitions -------------------------------------------------------------------------------

CORES = [(-1.2, -0.8), (0.8, 1.2)]


def test_transitions_count_entries_into_a_different_core():
    # A, between, A, B, between, B, A: two transitions (A->B, B->A); time between cores and
    # returns to the same core do not count
    chi = np.array([-1.0, 0.0, -1.0, 1.0, 0.0, 0.9, -0.9])
    assert count_transitions(chi, CORES) == 2
    assert count_transitions(np.array([-1.0, 0.0, 0.5, -1.1]), CORES) == 0
    assert count_transitions(np.array([0.0, 0.3]), CORES) == 0
    # three cores: A -> C through B's core counts two
    three = [(-1.2, -0.8), (-0.1, 0.1), (0.8, 1.2)]
    assert count_transitions(np.array([-1.0, -0.5, 0.0, 0.5, 1.0]), three) == 2


def test_transitions_are_counted_per_walker_never_across_the_join():
    # walker 0 stays in A, walker 1 stays in B: no transition, though the joined series
    # jumps from A to B
    chi = np.array([-1.0, -1.0, -1.0, 1.0, 1.0])
    assert count_transitions(chi, CORES) == 1
    assert count_transitions(chi, CORES, walker=np.array([0, 0, 0, 1, 1])) == 0
    # interleaved labels: each walker's own series is A, B
    assert (
        count_transitions(np.array([-1.0, 1.0, 1.0, -1.0]), CORES, walker=np.array([0, 1, 0, 1]))
        == 2
    )


def test_transition_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"cores must not overlap"):
        count_transitions(np.zeros(3), [(0.0, 1.0), (0.5, 2.0)])
    with pytest.raises(ValueError, match=r"low <= high"):
        count_transitions(np.zeros(3), [(1.0, 0.0)])


def test_transition_matrix_counts_each_direction():
    # bound 0, unbound 1, -1 between: 0 -> 1 -> 0 -> 1, a return to 1 through "between" and a
    # stay in 0 through "between" are no transitions
    labels = np.array([0, -1, 0, -1, 1, 1, -1, 1, 0, 0, -1, 1])
    m = transition_matrix(labels, 2)
    assert m.tolist() == [[0, 2], [1, 0]]
    # per walker: the 1 -> 0 at the join of walker 0 (ends in 1) and walker 1 (starts in 0)
    # is not a transition
    walker = np.array([0] * 8 + [1] * 4)
    assert transition_matrix(labels, 2, walker).tolist() == [[0, 2], [0, 0]]
    # count_transitions is the off-diagonal sum of the same matrix
    chi = np.array([-1.0, 0.0, -1.0, 1.0, 0.0, 0.9, -0.9])
    assert count_transitions(chi, CORES) == transition_matrix(
        np.array([0, -1, 0, 1, -1, 1, 0]), 2).sum()
    assert transition_matrix(np.array([], dtype=int), 3).tolist() == [[0] * 3] * 3


def test_transition_matrix_refuses_labels_it_cannot_place():
    with pytest.raises(ValueError, match=r"-1 \.\. 1"):
        transition_matrix(np.array([0, 2]), 2)
    with pytest.raises(ValueError, match=r"integer"):
        transition_matrix(np.array([0.0, 1.0]), 2)


# ---- a campaign store written by hand ----------------------------------------------------------
# Two rounds along x (the RC is c = (1, 0)); each visit to a well is 100 frames of x = +-1 plus
# Gaussian noise (0.12), nothing in between, so F has two states at +-1 and the transitions are
# known. Round 0 has two walkers: walker 0 visits L, R, L (2 transitions), walker 1 R, L (1); the
# join of the two (L then R) is not a transition. Round 1 stores no walker array (one walker):
# L, R, L, R (3 transitions).
TEMPERATURE_K = 300.0
VISIT = 100
ROUND0_WALKERS = [[-1, 1, -1], [1, 1, -1, -1]]  # wells visited, 100 frames each
ROUND1_VISITS = [-1, 1, -1, 1]
TRANSITIONS = [3, 3]
RC = np.array([1.0, 0.0])


def _visits(wells, rng):
    x = np.concatenate([np.full(VISIT, float(w)) for w in wells])
    x = x + rng.normal(0.0, 0.12, x.size)
    return np.column_stack([x, rng.normal(0.0, 0.3, x.size)])


def _model(seed: int) -> VAEModel:
    torch.manual_seed(seed)
    config = VAEConfig(hidden=(8,))
    return VAEModel(
        VAE(2, config.hidden, config.activation),
        config,
        np.zeros(2),
        np.ones(2),
        history={"epochs": 0},
    )


def _write_campaign(root, with_config: bool = True):
    rng = np.random.default_rng(0)
    workdir = root / "run"
    bias = Bias(RC, BiasGrid(-2.0, 2.0, -3.0 * np.exp(-(np.linspace(-2.0, 2.0, 41) ** 2))))
    rounds = []
    round0 = [_visits(w, rng) for w in ROUND0_WALKERS]
    walker = np.concatenate([np.full(len(f), i) for i, f in enumerate(round0)])
    frames = [np.concatenate(round0), _visits(ROUND1_VISITS, rng)]
    for k, features in enumerate(frames):
        folder = store.round_dir(workdir, k)
        applied = bias if k == 1 else None
        arrays = {
            "features": features,
            "bias_kjmol": np.zeros(len(features)) if applied is None else applied.energy(features),
            "time_ps": np.arange(len(features)) * 0.1,
        }
        if k == 0:
            arrays["walker"] = walker
            arrays["time_ps"] = np.concatenate([np.arange(len(f)) * 0.1 for f in round0])
        store.write_npz(folder / "frames.npz", **arrays)
        if applied is not None:
            store.write_json(folder / "bias_applied.json", applied.to_dict())
        store.write_json(folder / "bias.json", bias.to_dict())
        names = [f"models/vae_seed{k}{m}.pt" for m in range(2)]
        for m, name in enumerate(names):
            (folder / "models").mkdir(parents=True, exist_ok=True)
            _model(10 * k + m).save(folder / name)
        store.write_json(
            folder / "coordinate.json",
            {
                "coefficients": RC.tolist(),
                "kl_divergence": 0.01,
                "feature_names": ["x", "y"],
                "model_kl_divergences": [0.02, 0.01],
                "chosen_model": 1,
                "model_files": names,
                "spurious_models": [],
                "kl_threshold": 0.5,
            },
        )
        rounds.append(
            {
                "index": k,
                "coefficients": RC.tolist(),
                "kl_divergence": 0.01,
                "frames": len(features),
                "effective_sample_size": float(len(features)),
                "angle_change_deg": None if k == 0 else 1.0,
                "free_energy_change_kT": None if k == 0 else 0.2,
                "converged": False,
                "timings_s": {},
            }
        )
    (store.round_dir(workdir, 1) / "figure.png").write_bytes(b"png")  # the campaign's own
    store.write_json(
        workdir / "features.json",
        [Position(0, "x", name="x").to_dict(), Position(0, "y", name="y").to_dict()],
    )
    store.write_json(
        workdir / "summary.json",
        {
            "temperature_K": TEMPERATURE_K,
            "feature_names": ["x", "y"],
            "converged": False,
            "system": "hand-made",
            "rounds": rounds,
        },
    )
    if with_config:
        toml = root / "c.toml"
        toml.write_text('[system]\nkind = "rotated_double_well"\n')
        store.write_json(workdir / "config.json", load_config(toml).to_dict())
    return workdir


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    return _write_campaign(tmp_path_factory.mktemp("analysis"))


@pytest.fixture(scope="module")
def result(campaign):
    return CampaignResult.load(campaign)


def test_loads_walkers_and_treats_a_round_without_them_as_one_walker(result):
    assert result.rounds[0].walker is not None and result.rounds[1].walker is None
    assert [len(s) for s in result.rounds[0].segments()] == [3 * VISIT, 4 * VISIT]
    assert [len(s) for s in result.rounds[1].segments()] == [4 * VISIT]
    labels = result.walker_labels()
    assert labels.shape == (11 * VISIT,)
    assert labels[: 3 * VISIT].max() == 0 and labels[3 * VISIT : 7 * VISIT].min() == 1
    assert labels[7 * VISIT :].max() == 0


def test_states_and_transitions_per_round_from_the_stored_frames(result):
    states = result.metastable_states()
    assert [s.minimum for s in states] == pytest.approx([-1.0, 1.0], abs=0.1)
    rows = result.diagnostics()
    assert [r["transitions"] for r in rows] == TRANSITIONS
    assert [r["walkers"] for r in rows] == [2, 1]
    # counted across the join of round 0's walkers there would be one more
    chi0 = result.rounds[0].features @ RC
    assert count_transitions(chi0, [s.core for s in states]) == TRANSITIONS[0] + 1


def test_profile_is_the_bootstrap_of_the_stored_rounds_with_walkers(result):
    est = result.profile(n_bootstrap=10, seed=2)
    chi = result.all_features() @ RC
    direct = bootstrap_free_energy_profile(
        result.reduced_bias(),
        result.frames_per_round(),
        chi,
        np.linspace(chi.min(), chi.max(), 61),
        n_bootstrap=10,
        seed=2,
        walker=result.walker_labels(),
    )
    np.testing.assert_array_equal(est.sigma, direct.sigma)
    np.testing.assert_array_equal(est.free_energy, direct.free_energy)
    centers, f, sigma = result.free_energy(n_bootstrap=10, seed=2)
    assert f is est.free_energy and sigma is est.sigma and centers is est.centers
    wells = np.isfinite(f) & (f < 2.0)
    assert wells.sum() >= 6 and np.isfinite(sigma[wells]).all() and (sigma[wells] > 0).all()


def test_notebook_api_gives_weights_models_and_latent(result):
    log_w = result.log_weights
    assert log_w.shape == (11 * VISIT,)
    assert np.exp(log_w).sum() == pytest.approx(1.0, abs=1e-9)
    models = result.models(-1)
    assert len(models) == 2 and all(isinstance(m, VAEModel) for m in models)
    features = result.all_features()
    np.testing.assert_array_equal(
        result.model(-1).transform(features), models[1].transform(features)
    )
    np.testing.assert_array_equal(
        result.latent(0), result.model(0).transform(features[: 7 * VISIT])
    )


def test_figures_are_matplotlib_figures_with_one_line_per_walker(result):
    figures = result.figures(n_bootstrap=10)
    assert set(figures) == {
        "free_energy",
        "latent",
        "chi_time_series",
        "convergence",
        "free_energy_2d",
        "free_energy_order_parameters",
        "potential",
    }
    assert all(isinstance(f, Figure) for f in figures.values())
    lines = [line for line in figures["chi_time_series"].axes[0].get_lines()
             if not line.get_label().startswith("dividing surface")]
    assert len(lines) == 3  # round 0: two walkers, round 1: one
    assert len(lines[0].get_xdata()) == 3 * VISIT and len(lines[1].get_xdata()) == 4 * VISIT
    # MD time runs on: round 1 starts where round 0's longest walker ended (400 frames of 0.1 ps)
    assert np.nanmin(lines[2].get_xdata()) == pytest.approx(4 * VISIT * 0.1 + 0.1)
    assert "rounds one after another" in figures["chi_time_series"].axes[0].get_xlabel()


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.open, self.captions = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs["href"])
        if tag == "figcaption":
            self.captions.append("")
        if tag not in ("meta", "br", "img"):  # void elements have no end tag
            self.open.append(tag)

    def handle_data(self, data):
        if self.open and self.open[-1] == "figcaption":
            self.captions[-1] += data

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag, f"unbalanced </{tag}>"


def test_analyse_writes_markdown_and_self_contained_html_with_every_figure(campaign, tmp_path):
    out = tmp_path / "report"
    assert main(["analyse", str(campaign), "--out", str(out)]) == 0
    markdown = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    names = [
        "free_energy.png",
        "latent.png",
        "chi_time_series.png",
        "convergence.png",
        "free_energy_2d.png",
        "free_energy_order_parameters.png",
        "potential.png",
    ]
    lines = markdown.splitlines()
    captions = {}
    for name in names:
        assert (out / name).stat().st_size > 1000, name
        at = lines.index(f"![{name}]({name})")
        # one sentence under each figure says what it shows
        caption = lines[at + 2]
        assert caption.startswith("*") and caption.endswith(".*") and len(caption) > 60, name
        captions[name] = caption.strip("*")
    assert "shifted by a constant" in captions["free_energy.png"]
    assert "thresholds" in captions["convergence.png"]
    tags = _Tags()
    tags.feed(page)
    assert tags.open == [], f"unclosed tags {tags.open}"
    assert sorted(tags.images) == sorted(names)
    assert sorted(tags.captions) == sorted(captions.values())
    # figures and the last round's figure are linked by relative path
    assert tags.links == [os.path.relpath(store.round_dir(campaign, 1) / "figure.png", out)]
    assert not tags.links[0].startswith("/") and (out / tags.links[0]).resolve().is_file()
    for text in (markdown, page):
        assert "verdict" in text and "metastable states" in text
    assert "| round | frames | ESS |" in markdown
    # 3 + 3 crossings of the barrier between the wells: each well entered 3 times, < 10, so
    # the report, the caption and the figure say so
    assert "crossings along the RC | crossings along x | crossings along y |" in markdown
    assert "- warning: few barrier crossings along the RC (6, basins entered 3 and 3 times)" \
        in markdown
    assert "FEW CROSSINGS" in captions["free_energy.png"]
    assert "entered fewer than 10 times" in page
    assert "| 0 | 700 | 700.0 | 0.0100 |  |  | 2 | 3 |" in markdown
    assert "<td>3</td>" in page


def test_report_of_a_campaign_without_config_has_no_potential_figure(tmp_path):
    workdir = _write_campaign(tmp_path, with_config=False)
    report = write_report(workdir)
    assert report == workdir / "report" / "report.md"
    assert (workdir / "report" / "report.html").exists()
    assert not (workdir / "report" / "potential.png").exists()
    text = report.read_text()
    assert "free_energy.png" in text
    assert "the convergence thresholds are not drawn: the campaign has no readable" in text
    assert "RC angle to the known slow direction" not in text
    assert "error against the exact profile" not in text


def test_missing_model_file_is_reported_by_name(campaign, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(campaign, copy)
    coordinate = json.loads((copy / "round_001" / "coordinate.json").read_text())
    (copy / "round_001" / coordinate["model_files"][1]).unlink()
    with pytest.raises(CampaignFileError, match=r"round_001/models/vae_seed11.pt is missing"):
        CampaignResult.load(copy).model(-1)


# ---- a short campaign with one crossing --------------------------------------------------------
# Round 0 (unbiased) stays in the well at chi = -1 with two single-frame excursions into the left
# tail; round 1 (biased) stays at -1, crosses the barrier once in four frames and stays at +1,
# with two single-frame excursions into the right tail. chi(t) crosses once: one transition, two
# states. The lone frames of the tails and of the barrier sit in bins between empty bins: the
# trap of counting such bins as states.
CROSSING_FRAMES = (500, 804)


def _correlated(n: int, mean: float, rng, sd: float = 0.15, tau: float = 5.0) -> np.ndarray:
    """An AR(1) series about ``mean`` (stationary sd ``sd``, correlation time ``tau`` frames)."""
    a = np.exp(-1.0 / tau)
    x = np.empty(n)
    x[0] = mean
    for i in range(1, n):
        x[i] = mean + a * (x[i - 1] - mean) + sd * np.sqrt(1 - a * a) * rng.standard_normal()
    return x


def _one_crossing_chi() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    round0 = _correlated(500, -1.0, rng)
    round0[[100, 300]] = [-1.9, -1.75]
    round1 = np.concatenate(
        [_correlated(300, -1.0, rng), np.linspace(-0.7, 0.7, 4), _correlated(500, 1.0, rng)]
    )
    round1[[500, 700]] = [1.8, 2.0]
    return [round0, round1]


def _write_one_crossing_campaign(root):
    rng = np.random.default_rng(2)
    workdir = root / "crossing"
    grid = np.linspace(-2.5, 2.5, 51)
    bias = Bias(RC, BiasGrid(-2.5, 2.5, -3.0 * np.exp(-(grid**2))))
    rounds = []
    for k, chi in enumerate(_one_crossing_chi()):
        features = np.column_stack([chi, rng.normal(0.0, 0.3, chi.size)])
        folder = store.round_dir(workdir, k)
        applied = bias if k == 1 else None
        store.write_npz(
            folder / "frames.npz",
            features=features,
            bias_kjmol=np.zeros(len(features)) if applied is None else applied.energy(features),
            time_ps=np.arange(len(features)) * 0.1,
        )
        if applied is not None:
            store.write_json(folder / "bias_applied.json", applied.to_dict())
        store.write_json(folder / "bias.json", bias.to_dict())
        (folder / "models").mkdir(parents=True, exist_ok=True)
        _model(k).save(folder / "models/vae.pt")
        store.write_json(folder / "coordinate.json", {
            "coefficients": RC.tolist(), "kl_divergence": 0.01, "feature_names": ["x", "y"],
            "model_kl_divergences": [0.01], "chosen_model": 0, "model_files": ["models/vae.pt"],
            "spurious_models": [], "kl_threshold": 0.5,
        })
        rounds.append({
            "index": k, "coefficients": RC.tolist(), "kl_divergence": 0.01,
            "frames": len(features), "effective_sample_size": float(len(features)),
            "angle_change_deg": None if k == 0 else 0.5,
            "free_energy_change_kT": None if k == 0 else 0.9, "converged": False,
        })
    store.write_json(workdir / "features.json",
                     [Position(0, "x", name="x").to_dict(), Position(0, "y", name="y").to_dict()])
    store.write_json(workdir / "summary.json", {
        "temperature_K": TEMPERATURE_K, "feature_names": ["x", "y"], "converged": False,
        "system": "hand-made, one crossing", "rounds": rounds,
    })
    return workdir


def test_one_crossing_gives_one_transition_and_no_state_without_frames(tmp_path):
    workdir = _write_one_crossing_campaign(tmp_path)
    result = CampaignResult.load(workdir)
    assert [len(r.features) for r in result.rounds] == list(CROSSING_FRAMES)
    chi = result.all_features() @ RC
    # the trap is there: along the report's 60 bins, lone frames make minima between empty bins
    edges = np.linspace(chi.min(), chi.max(), 61)
    centers, f = free_energy_profile(chi, result.log_weights, edges)
    assert len(find_metastable_states(centers, f)) > 2
    states = result.metastable_states()
    assert [s.minimum for s in states] == pytest.approx([-1.0, 1.0], abs=0.15)
    for s in states:  # every state's core holds the frames it reports, and enough of them
        assert s.frames == np.count_nonzero((chi >= s.core[0]) & (chi <= s.core[1]))
        assert s.frames >= MIN_STATE_FRAMES
    assert [r["transitions"] for r in result.diagnostics()] == [0, 1]
    figures = result.report_figures(n_bootstrap=10)
    assert "2 metastable state(s)" in figures["free_energy"].caption
    assert ": 1 crossing(s) of it in all" in figures["chi_time_series"].caption
    cores = [ax for ax in figures["chi_time_series"].figure.axes if ax.patches]
    assert len(cores[0].patches) == 2  # one band per state core
    report = write_report(workdir).read_text()
    assert "| 1 | 804 | 804.0 | 0.0100 | 0.50 | 0.900 | 1 | 1 |" in report
    assert report.count("frames)") >= 2 and "depth not bounded by a sampled barrier" in report


# ---- the report's figures: units, gaps, references, captions -----------------------------------


def test_every_axis_of_every_report_figure_names_its_unit(result):
    from test_figures import axis_labels_without_unit

    figures = result.figures(n_bootstrap=10)
    for name, fig in figures.items():
        assert axis_labels_without_unit(fig) == [], name
    assert result.chi_unit == "nm"
    assert figures["free_energy"].axes[0].get_xlabel().endswith("(nm)")
    assert figures["chi_time_series"].axes[0].get_ylabel().endswith("(nm)")
    assert [ax.get_xlabel() for ax in figures["latent"].axes[:2]] == ["x (nm)", "y (nm)"]


def test_report_profile_breaks_its_line_at_bins_without_frames_and_states_the_shift(result):
    est = result.profile(n_bootstrap=10)
    empty = ~np.isfinite(est.free_energy)
    assert empty.sum() >= 5  # the hand-made wells leave a gap between them
    ax = result.figures(n_bootstrap=10)["free_energy"].axes[0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "RAVE (all rounds, MBAR)"]
    np.testing.assert_array_equal(line.get_xdata(), est.centers)
    assert np.isnan(np.asarray(line.get_ydata(), float)[empty]).all()
    labels = ax.get_legend_handles_labels()[1]
    assert "exact (quadrature), shifted to RAVE's mean where exact F < 5 kT" in labels
    assert "bins without frames" in labels


def test_convergence_figure_of_a_campaign_draws_its_config_thresholds_and_slow_direction(result):
    # the fixture's config is a rotated double well (slow direction 35 deg off x) with the
    # default [convergence] thresholds; the RC is x in both rounds
    assert result.slow_direction_angles_deg() == pytest.approx([35.0, 35.0], abs=1e-9)
    fig = result.figures(n_bootstrap=10)["convergence"]
    axes = {ax.get_ylabel(): ax for ax in fig.axes}
    slow = axes["angle to the slow direction (deg)"].get_lines()[0].get_ydata()
    assert list(slow) == pytest.approx([35.0, 35.0], abs=1e-9)

    def levels(name):
        return [line.get_ydata()[0] for line in axes[name].get_lines()
                if line.get_linestyle() == "--"]

    assert levels("RC change (deg)") == [5.0]
    assert levels(r"$F(\chi)$ change, RMS (kT)") == [0.5]
    assert levels(r"KL(latent $\|$ $\chi$) (nats)") == [0.5]


def test_rave_run_summary_lines_say_what_the_campaign_gave(result):
    lines = result.outcome_lines()
    assert lines[0] == "final RC: chi = +1.000 x +0.000 y (chi in nm)"
    assert lines[1] == "RC angle to the known slow direction: 35.0 deg"
    comparison = result.exact_comparison()
    match = re.fullmatch(r"F\(chi\) error against the exact profile: (\d+\.\d\d) kT RMS over "
                         r"(\d+) of the (\d+) bins where the reference F < 5 kT( \(.*\))?",
                         lines[2])
    assert match, lines[2]
    # the comparison's bins: those of the sampled range continued over the model's extent
    # along the RC, and the region where the exact F (quadrature) is below 5 kT
    c = result.coefficients(-1)
    chi = result.all_features() @ c
    edges = reference_edges(float(chi.min()), float(chi.max()), 60,
                            result.potential().chi_range(c))
    centers = 0.5 * (edges[1:] + edges[:-1])
    exact = result.potential().exact_free_energy(c, centers)
    assert int(match.group(3)) == int(np.count_nonzero(exact < 5.0)) > 10
    assert int(match.group(2)) == comparison.matched_bins <= int(match.group(3))
