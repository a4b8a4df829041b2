"""Honest figures: no line across bins without frames, a unit on every axis, the reference's
shift stated, the convergence thresholds drawn; and log lines that never share a line with a
progress bar. Figures are built from hand-made numbers (no campaign)."""

from __future__ import annotations

import io
import logging
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.figure import Figure

from rave.analysis import chi_unit, plots
from rave.cli import terminal_log
from rave.learn.bias import Bias, BiasGrid
from rave.stats import align_reference, reference_edges

ROUND_OFF = 1e-12  # kT: agreement of two exact computations of the same number
RAVE_LABEL = "RAVE (all rounds, MBAR)"
#: an axis label ends with its unit in parentheses, or says what it counts
UNIT = re.compile(
    r"\((nm|rad|kT|deg|ps|nats|frames|dimensionless|mixed units|index)\)$"
)


def axis_labels_without_unit(fig: Figure) -> list[str]:
    """Labels of the visible, ticked axes of ``fig`` that do not end with a unit."""
    fig.savefig(io.BytesIO(), format="png")  # lays out ticks and labels
    missing = []
    for ax in fig.axes:
        if not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible() or len(axis.get_ticklocs()) == 0:
                continue
            label = axis.get_label_text()
            if not UNIT.search(label):
                missing.append(f"{ax.get_title() or '?'}: {axis.axis_name} {label!r}")
    return missing


def _profile_with_gap():
    centers = np.linspace(-1.5, 1.5, 31)
    f = 2.0 * (centers**2 - 1.0) ** 2
    empty = (np.abs(centers) < 0.35) | (np.arange(31) == 2)  # a gap and a lone empty bin
    f[empty] = np.inf
    return centers, f, empty


def _rave_line(ax):
    lines = [line for line in ax.get_lines() if line.get_label() == RAVE_LABEL]
    assert len(lines) == 1, [line.get_label() for line in ax.get_lines()]
    return lines[0]


def _bias() -> Bias:
    grid = np.linspace(-2.0, 2.0, 41)
    return Bias(np.array([1.0, 0.0]), BiasGrid(-2.0, 2.0, -3.0 * np.exp(-(grid**2))))


def _profile_figures(centers, f, chi_unit_name):
    sigma = np.where(np.isfinite(f), 0.1, np.nan)
    records = [SimpleNamespace(index=k, coefficients=np.array([1.0, 0.0]),
                               effective_sample_size=100.0 * (k + 1)) for k in range(2)]
    frames = [np.zeros((5, 2)), np.ones((5, 2))]
    return {
        "profile_with_errors": plots.profile_with_errors(
            centers=centers, profile_kT=f, sigma_kT=sigma, exact_kT=f.copy(),
            chi_unit=chi_unit_name),
        "round_figure": plots.round_figure(
            index=1, centers=centers, profile_kT=f, exact_kT=None, bias=_bias(), kT=2.494,
            frames=frames, coefficients=np.array([1.0, 0.0]), chi_unit=chi_unit_name),
        "final_figure": plots.final_figure(
            centers=centers, profile_kT=f, exact_kT=None, records=records,
            feature_names=["x", "y"], sigma_kT=sigma, chi_unit=chi_unit_name),
    }


# ---- no line across bins without frames -------------------------------------------------------


def test_profile_lines_break_at_every_bin_without_frames():
    centers, f, empty = _profile_with_gap()
    for name, fig in _profile_figures(centers, f, "nm").items():
        line = _rave_line(fig.axes[0])
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        np.testing.assert_array_equal(x, centers, err_msg=name)
        assert np.isnan(y[empty]).all(), name  # matplotlib breaks a line at NaN
        np.testing.assert_array_equal(y[~empty], f[~empty], err_msg=name)


def test_bins_without_frames_inside_the_sampled_range_are_shaded_and_labelled():
    centers, f, empty = _profile_with_gap()
    fig = plots.profile_with_errors(centers=centers, profile_kT=f, sigma_kT=np.zeros(31))
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels.count("bins without frames") == 1
    grey = [p for p in ax.patches if tuple(p.get_facecolor()[:3]) == pytest.approx((0.85,) * 3)]
    # two runs of empty bins: the lone bin 2 and the central gap, each from its first bin's
    # left edge to its last bin's right edge
    edges = sorted((p.get_x(), p.get_x() + p.get_width()) for p in grey)
    gap = np.flatnonzero(np.abs(centers) < 0.35)
    width = centers[1] - centers[0]
    expected = [(centers[2] - width / 2, centers[2] + width / 2),
                (centers[gap[0]] - width / 2, centers[gap[-1]] + width / 2)]
    np.testing.assert_allclose(edges, expected, atol=ROUND_OFF)


def test_error_bars_are_drawn_only_on_bins_with_frames():
    centers, f, empty = _profile_with_gap()
    fig = plots.profile_with_errors(centers=centers, profile_kT=f,
                                    sigma_kT=np.full(31, 0.2))
    bars = [c for c in fig.axes[0].containers if c.get_label().startswith(r"$\pm 1\sigma$")]
    assert len(bars) == 1
    segments = bars[0].lines[2][0].get_segments()
    assert len(segments) == int((~empty).sum())


# ---- units -------------------------------------------------------------------------------------


def test_chi_carries_its_order_parameters_unit_or_says_mixed():
    assert chi_unit(["nm", "nm", "nm"]) == "nm"
    assert chi_unit(["rad", "rad"]) == "rad"
    assert chi_unit(["1", "1"]) == "dimensionless"
    assert chi_unit(["nm", "rad"]) == "mixed units"
    assert chi_unit(["nm", "1"]) == "mixed units"
    with pytest.raises(ValueError, match=r"at least one order parameter"):
        chi_unit([])


def test_unit_label_reads_pure_numbers_as_dimensionless_and_says_when_unknown():
    assert plots.unit_label("x", "nm") == "x (nm)"
    assert plots.unit_label("c", "1") == "c (dimensionless)"
    assert plots.unit_label("chi", None) == "chi (the order parameters' units)"


@pytest.mark.parametrize("unit", ["nm", "rad", "mixed units", "dimensionless"])
def test_every_axis_of_the_profile_figures_carries_a_unit(unit):
    centers, f, _ = _profile_with_gap()
    for name, fig in _profile_figures(centers, f, unit).items():
        assert axis_labels_without_unit(fig) == [], name
        assert fig.axes[0].get_xlabel().endswith(f"({unit})"), name


def test_chi_without_a_given_unit_says_so():
    centers, f, _ = _profile_with_gap()
    fig = _profile_figures(centers, f, None)["round_figure"]
    assert fig.axes[0].get_xlabel().endswith("(the order parameters' units)")


# ---- the reference's shift ---------------------------------------------------------------------


def test_reference_is_shifted_to_the_profiles_mean_where_the_reference_is_low():
    centers = np.linspace(-1.0, 1.0, 21)
    reference = 8.0 * centers**2  # below 5 kT where |x| < 0.79: 15 bins
    error = 0.5 * np.where(np.arange(21) % 2 == 0, 1.0, -1.0)
    low = reference < 5.0
    assert low.sum() == 15
    # an estimate offset by 3 kT with a +-0.5 kT alternating error on the reference's low
    # bins, and wild values where the reference is high (which must not count)
    profile = np.where(low, reference - 3.0 - error, 100.0)
    aligned = align_reference(reference, profile)
    mean_error = error[low].mean()  # 8 of +0.5 and 7 of -0.5 over the 15 bins
    assert aligned.offset_kT == pytest.approx(-3.0 - mean_error, abs=ROUND_OFF)
    assert aligned.matched_bins == aligned.reference_bins == 15 and aligned.below_kT == 5.0
    expected_rmse = np.sqrt(np.mean((error[low] - mean_error) ** 2))
    assert aligned.rmse_kT == pytest.approx(expected_rmse, abs=ROUND_OFF)
    np.testing.assert_allclose(aligned.free_energy, reference + aligned.offset_kT, atol=0)
    # bins without frames (inf) are left out of the match, and counted
    gapped = profile.copy()
    gapped[10] = np.inf
    gap = align_reference(reference, gapped)
    assert gap.matched_bins == 14 and gap.unsampled_bins == 1 and gap.reference_bins == 15
    assert "over 14 of the 15 bins where the reference F < 5 kT (1 bin(s) unsampled)" in (
        gap.describe())


def test_a_basin_the_estimate_missed_stays_in_its_error():
    # exact: two basins at x = -1 and +1, 2 kT apart; the estimate has the left basin right
    # and puts the right one 6 kT too high
    centers = np.linspace(-2.0, 2.0, 41)
    reference = np.minimum(4.0 * (centers + 1) ** 2, 2.0 + 4.0 * (centers - 1) ** 2)
    region = reference < 5.0
    profile = reference + np.where(centers > 0, 6.0, 0.0)
    aligned = align_reference(reference, profile)
    assert aligned.reference_bins == aligned.matched_bins == int(region.sum())
    d = (profile - reference)[region]
    assert aligned.rmse_kT == pytest.approx(np.sqrt(np.mean((d - d.mean()) ** 2)), abs=1e-12)
    assert aligned.rmse_kT > 2.5
    # bins where the estimate is >= 5 kT above its minimum while the reference is low
    assert aligned.above_bins == int(np.count_nonzero(region & (profile - profile.min() >= 5)))
    assert aligned.above_bins > 0
    # the same basin never sampled: counted as unsampled, the RMS only over what was sampled
    unsampled = np.where(centers > 0, np.inf, reference)
    missed = align_reference(reference, unsampled)
    assert missed.unsampled_bins == int(np.count_nonzero(region & (centers > 0)))
    assert missed.coverage == pytest.approx(missed.matched_bins / missed.reference_bins)
    assert "unsampled" in missed.describe()


def test_reference_with_no_bin_to_match_is_shifted_to_a_minimum_of_zero():
    reference = np.array([5.0, 3.0, 4.0])
    aligned = align_reference(reference, np.array([np.inf, np.inf, np.inf]))
    assert aligned.matched_bins == 0 and np.isnan(aligned.rmse_kT)
    assert aligned.reference_bins == 3 and aligned.unsampled_bins == 3
    np.testing.assert_array_equal(aligned.free_energy, [2.0, 0.0, 1.0])
    assert aligned.describe() == "none of the 3 bins where the reference F < 5 kT was sampled"
    with pytest.raises(ValueError, match=r"one shape"):
        align_reference(reference, np.zeros(2))
    with pytest.raises(ValueError, match=r"no finite value"):
        align_reference(np.full(3, np.inf), np.zeros(3))


def test_comparison_bins_continue_over_the_references_range():
    edges = reference_edges(-1.0, 1.0, 20, (-2.05, 1.5))
    np.testing.assert_allclose(np.diff(edges), 0.1)
    assert edges[0] <= -2.05 and edges[-1] >= 1.5
    inner = edges[(edges >= -1.0 - 1e-12) & (edges <= 1.0 + 1e-12)]
    np.testing.assert_allclose(inner, np.linspace(-1.0, 1.0, 21), atol=1e-12)
    np.testing.assert_array_equal(reference_edges(-1.0, 1.0, 20), np.linspace(-1.0, 1.0, 21))


def test_the_exact_profile_legend_states_its_shift():
    centers, f, _ = _profile_with_gap()
    fig = plots.profile_with_errors(centers=centers, profile_kT=f, sigma_kT=np.zeros(31),
                                    exact_kT=f + 7.0)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "exact (quadrature), shifted to RAVE's mean where exact F < 5 kT" in labels
    exact = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("exact")]
    finite = np.isfinite(f)
    np.testing.assert_allclose(np.asarray(exact[0].get_ydata())[finite], f[finite], atol=1e-12)


# ---- the convergence figure --------------------------------------------------------------------

CONVERGENCE = {
    "rounds": [0, 1, 2, 3],
    "coefficients": np.array([[1.0, 0.0], [0.9, 0.436], [0.8, 0.6], [0.8, 0.6]]),
    "feature_names": ["x", "y"],
    "effective_sample_size": [100.0, 180.0, 250.0, 330.0],
    "kl_divergence": [0.02, 0.03, 0.01, 0.01],
    "angle_change_deg": [None, 25.8, 10.9, 0.4],
    "free_energy_change_kT": [None, 1.2, 0.7, 0.2],
    "seed_spread_deg": [None, 8.0, None, 3.0],
    "slow_direction_angle_deg": [35.0, 9.2, 1.7, 1.7],
}


def _axes_by_ylabel(fig: Figure) -> dict:
    return {ax.get_ylabel(): ax for ax in fig.axes if ax.get_ylabel()}


def _horizontal_levels(ax) -> list[float]:
    return [float(line.get_ydata()[0]) for line in ax.get_lines()
            if len(set(np.asarray(line.get_ydata(), float))) == 1
            and line.get_linestyle() == "--"]


def test_convergence_figure_has_one_axis_per_quantity_with_its_threshold():
    fig = plots.convergence(**CONVERGENCE, angle_limit_deg=5.0, free_energy_limit_kT=0.5,
                            profile_max_kT=5.0, min_rounds=3, kl_threshold=0.3)
    axes = _axes_by_ylabel(fig)
    assert set(axes) == {
        "$c_i$ (dimensionless)",
        "RC change (deg)",
        "seed spread (deg)",
        r"$F(\chi)$ change, RMS (kT)",
        r"KL(latent $\|$ $\chi$) (nats)",
        "ESS (frames)",
        "angle to the slow direction (deg)",
    }
    assert len(fig.axes) == 7  # no twin axes: one quantity per axis
    assert _horizontal_levels(axes["RC change (deg)"]) == [5.0]
    assert _horizontal_levels(axes["seed spread (deg)"]) == [5.0]
    assert _horizontal_levels(axes[r"$F(\chi)$ change, RMS (kT)"]) == [0.5]
    assert _horizontal_levels(axes[r"KL(latent $\|$ $\chi$) (nats)"]) == [0.3]
    assert _horizontal_levels(axes["ESS (frames)"]) == []
    for name in ("RC change (deg)", "seed spread (deg)", r"$F(\chi)$ change, RMS (kT)"):
        dotted = [line for line in axes[name].get_lines() if line.get_linestyle() == ":"]
        assert len(dotted) == 1 and list(dotted[0].get_xdata()) == [2, 2], name
    # data: the rounds where each quantity exists
    change = [line for line in axes["RC change (deg)"].get_lines() if line.get_marker() == "o"]
    assert list(change[0].get_xdata()) == [1, 2, 3]
    slow = axes["angle to the slow direction (deg)"].get_lines()[0]
    assert list(slow.get_ydata()) == CONVERGENCE["slow_direction_angle_deg"]
    assert axis_labels_without_unit(fig) == []


def test_convergence_figure_without_known_thresholds_says_so():
    data = dict(CONVERGENCE, seed_spread_deg=[None] * 4, slow_direction_angle_deg=None)
    fig = plots.convergence(**data)
    assert len(fig.axes) == 5
    assert all(_horizontal_levels(ax) == [] for ax in fig.axes)
    assert "thresholds not known: RC change, F change, min_rounds" in fig._suptitle.get_text()


# ---- progress output ---------------------------------------------------------------------------


def test_log_lines_never_share_a_line_with_a_progress_bar(capsys):
    from tqdm import tqdm

    with terminal_log():
        bar = tqdm(total=10, desc="VAE seed 2", unit="epoch", mininterval=0, ascii=True)
        bar.update(5)
        logging.getLogger("rave.campaign").info("round 1: trained")
        bar.update(5)
        bar.close()
    err = capsys.readouterr().err
    for line in re.split(r"[\r\n]", err):
        assert not ("VAE seed 2" in line and "trained" in line), repr(err)
    assert "round 1: trained" in err


def test_terminal_log_shows_rave_info_and_only_named_warnings_of_other_libraries(capsys):
    with terminal_log():
        logging.getLogger("rave").info("rave says hello")
        logging.getLogger("somelib").info("library chatter")
        logging.getLogger("somelib").warning("library warning")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("a python warning", UserWarning, stacklevel=1)
    err = capsys.readouterr().err
    assert "rave says hello" in err
    assert "library chatter" not in err
    assert "somelib warning: library warning" in err
    assert "py.warnings warning:" in err and "a python warning" in err
    # nothing stays installed after the command
    with_handler = [h for h in logging.getLogger().handlers if type(h).__name__ ==
                    "_TerminalHandler"]
    assert with_handler == []
    logging.getLogger("rave").info("after the command")
    assert "after the command" not in capsys.readouterr().err


def test_quiet_terminal_log_adds_nothing(capsys):
    before = list(logging.getLogger().handlers)
    with terminal_log(quiet=True):
        assert logging.getLogger().handlers == before
    assert logging.getLogger().handlers == before
