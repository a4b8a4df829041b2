"""Export: PLUMED grid and input, TorchScript encoder, OpenMM XML bias, each checked back."""

import json
import shutil

import numpy as np
import openmm
import pytest
import torch

from rave.analysis.export import plumed_grid_text
from rave.cli import main
from rave.learn.bias import Bias
from rave.learn.vae import VAEModel

#: OpenMM Reference (double) vs numpy bias energy, kJ/mol
ENERGY_TOL_KJMOL = 1e-6
#: TorchScript (float32) vs VAEModel.transform (float64 output of a float32 network)
LATENT_TOL = 1e-5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    config = root / "c.toml"
    config.write_text(
        '[system]\nkind = "rotated_double_well"\n'
        "[sampling]\nrounds = 2\nsteps_per_round = 20000\nreport_interval = 20\n"
        "[vae]\nmodels = 2\nhidden = [32, 32]\n[output]\nprogress = false\nfigures = false\n"
    )
    workdir = root / "run"
    assert main(["run", str(config), "--workdir", str(workdir), "-q"]) == 0
    out = root / "out"
    assert main(["export", str(workdir), "--plumed", str(out / "plumed"),
                 "--torchscript", str(out / "encoder.pt"), "--openmm", str(out / "bias.xml")]) == 0
    return workdir, out


def _ran(workdir):
    """The OPES bias in force at the end of the last round: what the campaign ran."""
    data = json.loads((workdir / "round_001" / "bias_applied.json").read_text())
    assert data["method"] == "opes"
    return Bias.from_dict(data)


def test_an_opes_campaign_exports_the_opes_bias_it_ran_and_says_so(exported, capsys):
    workdir, out = exported
    assert "# bias: the OPES bias in force at the end of round_001" in \
        (out / "plumed" / "plumed.dat").read_text()
    assert "The bias is the OPES bias in force" in (out / "plumed" / "README.txt").read_text()
    force = openmm.XmlSerializer.deserialize((out / "bias.xml").read_text())
    assert "the OPES bias in force at the end of round_001" in force.getName()
    static = Bias.from_dict(json.loads((workdir / "round_001" / "bias.json").read_text()))
    chi = np.linspace(static.grid.chi_min, static.grid.chi_max, 50)
    assert np.ptp(_ran(workdir).grid(chi) - static.grid(chi)) > 1.0  # kJ/mol: other shapes


def test_a_static_round_exports_the_static_bias_and_says_so(exported, tmp_path, capsys):
    workdir, _ = exported
    copy = tmp_path / "static"
    shutil.copytree(workdir, copy)
    (copy / "round_001" / "bias_applied.json").write_text(
        (copy / "round_001" / "bias.json").read_text())
    assert main(["export", str(copy), "--openmm", str(tmp_path / "b.xml")]) == 0
    assert "bias: the static bias V = kT ln P built after round_001" in capsys.readouterr().out
    force = openmm.XmlSerializer.deserialize((tmp_path / "b.xml").read_text())
    assert "static bias V = kT ln P" in force.getName()


def _parse_grid(text):
    header = {}
    rows = []
    for line in text.splitlines():
        if line.startswith("#!"):
            parts = line[2:].split()
            if parts[0] == "SET":
                header[parts[1]] = parts[2]
            else:
                header["FIELDS"] = parts[1:]
        else:
            rows.append([float(v) for v in line.split()])
    return header, np.array(rows)


def test_plumed_grid_follows_plumed_conventions(exported):
    workdir, out = exported
    header, rows = _parse_grid((out / "plumed" / "bias.grid").read_text())
    assert header["FIELDS"] == ["chi", "ext.bias", "der_chi"]
    assert header["periodic_chi"] == "false"
    n = int(header["nbins_chi"])
    assert rows.shape == (n, 3)
    lo, hi = float(header["min_chi"]), float(header["max_chi"])
    assert rows[0, 0] == pytest.approx(lo) and rows[-1, 0] == pytest.approx(hi)
    np.testing.assert_allclose(np.diff(rows[:, 0]), (hi - lo) / (n - 1), rtol=1e-9)
    # derivatives agree with finite differences of the values: on each row interval the values
    # are one cubic, so value step = trapezoid of the derivatives - h^3/12 * third derivative,
    # exactly
    bias = _ran(workdir)
    h = np.diff(rows[:, 0])
    mid = 0.5 * (rows[1:, 0] + rows[:-1, 0])
    inside = (mid > bias.grid.chi_min) & (mid < bias.grid.chi_max)
    third = np.where(inside, bias.grid._spline(mid, 3), 0.0)
    steps = np.diff(rows[:, 1])
    trapezoid = 0.5 * h * (rows[1:, 2] + rows[:-1, 2]) - h**3 / 12 * third
    np.testing.assert_allclose(trapezoid, steps, atol=1e-8)
    # and the values are the campaign's bias
    np.testing.assert_allclose(rows[:, 1], bias.grid(rows[:, 0]), atol=1e-9)


def test_plumed_input_combines_the_features_with_the_rc(exported):
    workdir, out = exported
    text = (out / "plumed" / "plumed.dat").read_text()
    bias = _ran(workdir)
    line = next(x for x in text.splitlines() if x.startswith("chi: COMBINE"))
    assert "ARG=s0.x,s1.y" in line and "PERIODIC=NO" in line
    coefficients = [float(c) for c in line.split("COEFFICIENTS=")[1].split()[0].split(",")]
    np.testing.assert_allclose(coefficients, bias.coefficients, atol=1e-10)
    assert "ext: EXTERNAL ARG=chi FILE=bias.grid" in text
    assert "POSITION" in (out / "plumed" / "README.txt").read_text()


def test_torchscript_encoder_gives_the_model_latent(exported):
    workdir, out = exported
    coordinate = json.loads((workdir / "round_001" / "coordinate.json").read_text())
    model = VAEModel.load(workdir / "round_001" /
                          coordinate["model_files"][coordinate["chosen_model"]])
    features = np.load(workdir / "round_001" / "frames.npz")["features"]
    scripted = torch.jit.load(str(out / "encoder.pt"))
    latent = scripted(torch.tensor(features, dtype=torch.float32))
    assert tuple(latent.shape) == (len(features), 1)
    np.testing.assert_allclose(latent[:, 0].detach().numpy(), model.transform(features),
                               atol=LATENT_TOL)


def test_openmm_xml_force_gives_the_live_bias_energy(exported):
    workdir, out = exported
    force = openmm.XmlSerializer.deserialize((out / "bias.xml").read_text())
    bias = _ran(workdir)
    system = openmm.System()
    system.addParticle(1.0)
    system.addForce(force)
    integrator = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    points = np.random.default_rng(0).uniform(-2.5, 2.5, (20, 2))
    group = force.getForceGroup()
    for x, y in points:
        context.setPositions([[x, y, 0.0]])
        energy = context.getState(getEnergy=True, groups={group}).getPotentialEnergy()
        assert energy.value_in_unit(openmm.unit.kilojoule_per_mole) == pytest.approx(
            float(bias.energy(np.array([[x, y]]))[0]), abs=ENERGY_TOL_KJMOL)


def test_export_of_a_directory_without_rounds_is_refused(tmp_path, capsys):
    assert main(["export", str(tmp_path), "--openmm", str(tmp_path / "b.xml")]) == 2
    assert "holds no finished round" in capsys.readouterr().err
    assert main(["export", str(tmp_path)]) == 2
    assert "needs at least one of" in capsys.readouterr().err


def test_a_complete_round_without_its_bias_is_not_exported_from_an_earlier_one(exported,
                                                                              tmp_path, capsys):
    import shutil

    workdir, _ = exported
    damaged = tmp_path / "damaged"
    shutil.copytree(workdir, damaged)
    (damaged / "round_001" / "bias.json").unlink()
    target = tmp_path / "b.xml"
    assert main(["export", str(damaged), "--openmm", str(target)]) == 2
    err = capsys.readouterr().err
    assert "round 1 of" in err and "is complete but its bias.json is missing" in err
    assert "--redo-round 1" in err and not target.exists()


def test_analyse_never_writes_into_another_campaign_or_outside_its_report_folder(
        exported, tmp_path, capsys):
    import shutil

    workdir, _ = exported
    other = tmp_path / "B"
    shutil.copytree(workdir, other)
    before = {p: p.stat().st_mtime_ns for p in other.rglob("*") if p.is_file()}
    own_figure = (workdir / "free_energy.png").stat().st_mtime_ns \
        if (workdir / "free_energy.png").exists() else None
    for target in (other, other / "round_000", other / "report", workdir,
                   workdir / "round_001" / "figs"):
        assert main(["analyse", str(workdir), "--out", str(target)]) == 2, target
        err = capsys.readouterr().err
        assert "the rave campaign" in err and "Nothing was written" in err, err
    assert {p: p.stat().st_mtime_ns for p in other.rglob("*") if p.is_file()} == before
    assert not (workdir / "round_001" / "figs").exists()
    if own_figure is not None:
        assert (workdir / "free_energy.png").stat().st_mtime_ns == own_figure
    # its own report folder (the default) and folders outside every campaign are fine
    assert main(["analyse", str(workdir), "--out", str(workdir / "report" / "again")]) == 0


def test_two_exports_to_one_file_are_refused_before_either_is_written(exported, tmp_path,
                                                                      capsys):
    workdir, _ = exported
    target = tmp_path / "same.out"
    assert main(["export", str(workdir), "--torchscript", str(target),
                 "--openmm", str(target)]) == 2
    assert "is given for two exports" in capsys.readouterr().err and not target.exists()


def test_grid_text_extends_past_the_bias_grid_with_the_edge_value():
    from rave.learn.bias import BiasGrid

    grid = BiasGrid(-1.0, 1.0, np.linspace(-3.0, 0.0, 21) ** 2 * -1)
    header, rows = _parse_grid(plumed_grid_text(grid, extra_widths=0.5))
    assert float(header["min_chi"]) == pytest.approx(-2.0)
    beyond = rows[:, 0] > 1.0 + 1e-9
    np.testing.assert_allclose(rows[beyond, 1], grid.values_kjmol[-1], atol=1e-8)
    np.testing.assert_allclose(rows[beyond, 2], 0.0)


def test_analyse_writes_the_report_and_every_figure(exported, tmp_path):
    workdir, _ = exported
    out = tmp_path / "report"
    assert main(["analyse", str(workdir), "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    figures = ["free_energy.png", "latent.png", "chi_time_series.png", "free_energy_2d.png"]
    for name in figures:
        assert (out / name).stat().st_size > 1000, name
        assert f"]({name})" in report
    assert "| round | frames | ESS |" in report and "verdict" in report


def test_analysis_reports_a_truncated_file_by_name(exported, tmp_path, capsys):
    import shutil

    workdir, _ = exported
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    frames = copy / "round_001" / "frames.npz"
    frames.write_bytes(frames.read_bytes()[:100])
    assert main(["analyse", str(copy)]) == 2
    assert "round_001/frames.npz cannot be read" in capsys.readouterr().err


def test_analysis_profile_and_uncertainty_cover_the_sampled_range(exported):
    from rave.analysis import CampaignResult

    workdir, _ = exported
    result = CampaignResult.load(workdir)
    centers, profile, sigma = result.free_energy(result.coefficients(-1), bins=30)
    finite = np.isfinite(profile)
    assert finite.sum() >= 20
    assert np.nanmin(profile) == 0.0
    assert np.all(sigma[finite & (profile < 3)] >= 0)
    assert result.reweight().log_weights.shape == (result.frames_up_to(-1),)


def test_status_prints_rounds_and_convergence(exported, capsys, tmp_path):
    workdir, _ = exported
    assert main(["status", str(workdir)]) == 0
    out = capsys.readouterr().out
    assert "2 round(s) done, 2000 frames" in out and "converged:" in out
    # 2 rounds < min_rounds 3: never converged, and the verdict says why
    assert "verdict: not converged: " in out and "fewer than 3 rounds" in out
    assert main(["status", str(tmp_path)]) == 2
    assert "holds no rave campaign (no manifest.json)" in capsys.readouterr().err


def test_export_refuses_to_overwrite_without_force_and_never_writes_into_a_campaign(
        exported, tmp_path, capsys):
    workdir, _ = exported
    inside = workdir / "round_001" / "bias.json"
    before = inside.read_bytes()
    assert main(["export", str(workdir), "--openmm", str(inside), "--force"]) == 2
    assert "lies inside the rave campaign" in capsys.readouterr().err
    assert inside.read_bytes() == before
    mine = tmp_path / "bias.xml"
    mine.write_text("my own file")
    assert main(["export", str(workdir), "--openmm", str(mine)]) == 2
    assert f"{mine} exists; nothing was written" in capsys.readouterr().err
    assert mine.read_text() == "my own file"
    assert main(["export", str(workdir), "--openmm", str(mine), "--force"]) == 0
    assert "<" in mine.read_text()
    assert main(["export", str(workdir), "--openmm", str(tmp_path)]) == 2
    assert f"{tmp_path} is a directory" in capsys.readouterr().err
