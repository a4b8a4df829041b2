"""Take a campaign's coordinate and bias to other engines: PLUMED, TorchScript, OpenMM XML.

The exported bias is what the campaign ran (:func:`exported_bias`): in an OPES campaign
(``[bias] method = "opes"``) the OPES bias in force at the end of the last round
(``bias_applied.json``), tabulated on its grid along the RC: a fixed bias that does not adapt
further in the other engine. In a static campaign (``method = "static"``), or before any OPES
round ran, the static bias V = kT ln P built after the last round (``bias.json``: the one the
next round would apply). Every exported file's header and ``rave export``'s output say which.
The exported encoder is the model chosen in that round (``coordinate.json``).

Exports never overwrite a file unless asked (``force``) and never write into a campaign's work
directory (:func:`check_targets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..bias_grid import BiasGrid
from ..campaign import store
from ..md.bias_force import bias_force
from ..md.features import NoPlumedAction

#: the exported PLUMED grid extends this many grid widths beyond each end of the bias grid with
#: the edge value and zero derivative (the clamping rave applies), because PLUMED stops when
#: chi leaves its grid
PLUMED_EXTRA_WIDTHS = 1.0


class ExportError(RuntimeError):
    """The work directory lacks what the export needs, or a target cannot be written; the
    message names the file."""


def plumed_paths(directory: Path) -> list[Path]:
    """The files :func:`write_plumed` writes into ``directory``.

    Raises ExportError: ``directory`` exists and is not a directory.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ExportError(f"--plumed {directory}: exists and is not a directory; give a "
                          f"directory for plumed.dat, bias.grid and README.txt")
    return [directory / "plumed.dat", directory / "bias.grid", directory / "README.txt"]


def check_targets(paths: Sequence[Path], force: bool = False) -> None:
    """Refuse export targets that clash with each other, are directories, lie inside a
    campaign, or exist.

    Existing files are allowed with ``force``; every target is checked before anything is
    written.

    Raises ExportError: naming the target and what to do.
    """
    seen: dict[Path, Path] = {}
    for path in map(Path, paths):
        key = path.resolve()
        if key in seen:
            raise ExportError(f"{path} is given for two exports ({seen[key]} and {path}); "
                              f"nothing was written. Give each export its own file")
        seen[key] = path
    for path in map(Path, paths):
        if path.is_dir():
            raise ExportError(f"{path} is a directory; give a file name for the export")
        campaign = store.campaign_holding(path)
        if campaign is not None:
            raise ExportError(f"{path} lies inside the rave campaign {campaign}; exports never "
                              f"write into a campaign. Choose a path outside it")
        if path.exists() and not force:
            raise ExportError(f"{path} exists; nothing was written. Choose another path, or "
                              f"add --force to overwrite it")


def _latest(campaign: store.CampaignStore) -> int:
    """The index of the latest complete round, whose RC and next bias must be stored (a
    complete round that lost one is a damaged store: exporting an earlier round's instead
    would pass off an old bias as the campaign's)."""
    complete = campaign.complete_rounds()
    if not complete:
        raise ExportError(
            f"{campaign.workdir} holds no finished round (round_NNN/{campaign.ROUND}, "
            f"{campaign.BIAS} and {campaign.COORDINATE}): is it a rave work directory, and has "
            f"round 0 finished?"
        )
    index = complete[-1]
    missing = [name for name in (campaign.BIAS, campaign.COORDINATE)
               if not campaign.round_has(index, name)]
    if missing:
        raise ExportError(
            f"round {index} of {campaign.workdir} is complete but its {' and '.join(missing)} "
            f"is missing, so its RC and bias cannot be exported (an earlier round's would not "
            f"be the campaign's). Nothing was written. {campaign.redo_advice(index)}")
    return index


def exported_bias(campaign: store.CampaignStore, index: int):
    """The bias an export writes for round ``index``, and one line saying what it is.

    Raises ExportError: the round's ``bias_applied.json`` or ``bias.json`` is damaged.
    """
    name = campaign.round_dir(index).name
    try:
        applied_path = campaign.round_path(index, campaign.BIAS_APPLIED)
        method = (store.load_json(applied_path).get("method")
                  if applied_path.exists() else None)
        if method == "opes":
            return campaign.bias_applied(index), (
                f"the OPES bias in force at the end of {name} (the last round), tabulated on its "
                f"grid along the RC: a fixed bias, it does not adapt further")
        bias = campaign.bias(index)
    except (store.StoreFileError, AttributeError) as error:
        raise ExportError(f"{error}. {campaign.redo_advice(index)}") from error
    return bias, (f"the static bias V = kT ln P built after {name} (bias.json, the one a next "
                  f"round would apply; no OPES bias ran in {name})")


def latest_round(workdir: Path) -> Path:
    """The folder of the latest round of ``workdir`` whose RC and next bias are stored.

    Those are ``coordinate.json`` and ``bias.json``.

    Raises ExportError: there is none.
    """
    campaign = store.CampaignStore(workdir)
    return campaign.round_dir(_latest(campaign))


def load_features(workdir: Path) -> list:
    """The order parameters of the campaign in ``workdir`` (``features.json``).

    Raises ExportError: ``features.json`` is missing.
    """
    campaign = store.CampaignStore(workdir)
    if not campaign.has(campaign.FEATURES):
        raise ExportError(f"{campaign.path(campaign.FEATURES)} is missing: the campaign's "
                          f"features are not known")
    return campaign.features()


def plumed_grid_text(grid: BiasGrid, extra_widths: float = PLUMED_EXTRA_WIDTHS) -> str:
    """The bias as a PLUMED grid file (FIELDS chi ext.bias der_chi), non-periodic.

    The grid keeps rave's spacing and is extended by ``extra_widths`` grid widths on each side,
    where the value is the edge value and the derivative zero, as rave's clamped argument gives.
    ``nbins`` is the number of rows; the last row sits at ``max_chi``.
    """
    spacing = grid.spacing
    n_extra = int(np.ceil(extra_widths * (grid.chi_max - grid.chi_min) / spacing))
    n = len(grid.values_kjmol) + 2 * n_extra
    lo = grid.chi_min - n_extra * spacing
    chi = lo + spacing * np.arange(n)
    values = grid(chi)
    derivatives = grid.derivative(chi)
    lines = [
        "#! FIELDS chi ext.bias der_chi",
        f"#! SET min_chi {chi[0]:.12f}",
        f"#! SET max_chi {chi[-1]:.12f}",
        f"#! SET nbins_chi {n}",
        "#! SET periodic_chi false",
    ]
    lines += [f" {x:.12f} {v:.12f} {d:.12f}" for x, v, d in
              zip(chi, values, derivatives, strict=True)]
    return "\n".join(lines) + "\n"


def plumed_feature_lines(features: Sequence) -> tuple[list[str], list[str], list[str]]:
    """PLUMED actions computing each feature: (lines, argument of each feature, notes).

    Each feature writes its own actions (:meth:`rave.md.features.Feature.plumed_action`), labelled
    ``s0``, ``s1``, ... in order.

    Raises ExportError: for a feature whose kind has no PLUMED action, naming it.
    """
    lines: list[str] = []
    args: list[str] = []
    notes: list[str] = []
    for i, feature in enumerate(features):
        try:
            action = feature.plumed_action(f"s{i}")
        except NoPlumedAction as error:
            raise ExportError(str(error)) from error
        lines += action.lines
        args.append(action.argument)
        notes += action.notes
    return lines, args, notes


def write_plumed(workdir: Path, directory: Path, force: bool = False) -> list[Path]:
    """Write plumed.dat, bias.grid and README.txt (the feature-to-action map) into ``directory``.

    Existing files are overwritten only with ``force``; nothing is written inside a campaign. The
    bias is :func:`exported_bias` of the latest round (nm, kJ/mol, PLUMED's defaults), a tabulated
    ``EXTERNAL`` bias; plumed.dat's header and README.txt say which bias it is. Raises ExportError
    for a refused target (:func:`check_targets`), no finished round or no ``features.json``, a bias
    and features that disagree, or a feature without a PLUMED action.
    """
    directory = Path(directory)
    check_targets(plumed_paths(directory), force)
    campaign = store.CampaignStore(workdir)
    index = _latest(campaign)
    bias, what = exported_bias(campaign, index)
    features = load_features(workdir)
    if len(features) != bias.coefficients.size:
        raise ExportError(f"{campaign.round_path(index, campaign.BIAS)} has "
                          f"{bias.coefficients.size} coefficients but {campaign.FEATURES} lists "
                          f"{len(features)} features")
    lines, args, notes = plumed_feature_lines(features)
    coefficients = ",".join(f"{c:.12f}" for c in bias.coefficients)
    text = "\n".join([
        f"# RAVE bias exported by rave from {Path(workdir).resolve()} "
        f"({campaign.round_dir(index).name})",
        f"# bias: {what}",
        "# units: nm, kJ/mol (PLUMED defaults)",
        *lines,
        f"chi: COMBINE ARG={','.join(args)} COEFFICIENTS={coefficients} PERIODIC=NO",
        "ext: EXTERNAL ARG=chi FILE=bias.grid",
        "PRINT ARG=chi,ext.bias STRIDE=100 FILE=COLVAR",
    ]) + "\n"
    readme = ("Order parameters and the PLUMED actions they map to:\n"
              + "\n".join(f"- {n}" for n in notes)
              + f"\n\nchi = sum_i c_i s_i with c = {bias.coefficients.tolist()}\n"
              f"The bias is {what}.\n"
              "bias.grid: rave's cubic-spline bias sampled on its own grid, extended with the "
              "edge value (zero derivative) past both ends; PLUMED stops if chi leaves it.\n")
    paths = [directory / "plumed.dat", directory / "bias.grid", directory / "README.txt"]
    for path, content in zip(paths, [text, plumed_grid_text(bias.grid), readme], strict=True):
        store.write_text(path, content)
    return paths


def write_torchscript(workdir: Path, path: Path, force: bool = False) -> Path:
    """The chosen encoder of the latest round as TorchScript (raw features in, latent mean out).

    An existing file is overwritten only with ``force``; nothing is written inside a campaign.
    Raises ExportError for a refused target (:func:`check_targets`), no finished round, or a model
    file not named, missing or damaged.
    """
    check_targets([Path(path)], force)
    campaign = store.CampaignStore(workdir)
    index = _latest(campaign)
    coordinate = campaign.coordinate(index)
    files = coordinate.get("model_files")
    if not files:
        raise ExportError(f"{campaign.round_path(index, campaign.COORDINATE)} names no model "
                          f"files")
    name = files[int(coordinate["chosen_model"])]
    if not campaign.round_has(index, name):
        raise ExportError(f"{campaign.round_path(index, name)} is missing")
    try:
        model = campaign.model(index, name)
    except store.StoreFileError as error:
        raise ExportError(
            f"{error}. `rave run` with the campaign's config, --workdir {workdir} and "
            f"--redo-round {index} recomputes it") from error
    model.export_torchscript(path)
    return Path(path)


def write_openmm(workdir: Path, path: Path, force_group: int | None = None,
                 force: bool = False) -> Path:
    """The latest bias as a serialized OpenMM force (XML) to add to one's own System.

    The bias is :func:`exported_bias` of the latest round; the force's name (``getName()``) says
    which. An existing file is overwritten only with ``force``; nothing is written inside a
    campaign. Raises ExportError for a refused target, no finished round or no ``features.json``.
    """
    import openmm

    check_targets([Path(path)], force)
    campaign = store.CampaignStore(workdir)
    bias, what = exported_bias(campaign, _latest(campaign))
    features = load_features(workdir)
    if force_group is None:
        config = campaign.config()
        force_group = int(config.get("bias", {}).get("force_group", 30))
    force = bias_force(features, bias, force_group)
    force.setName(f"RAVE bias from {Path(workdir).resolve()}: {what}")
    store.write_text(Path(path), openmm.XmlSerializer.serialize(force))
    return Path(path)
