"""Benchmark: ligand unbinding events per ns in RAVE's biased rounds vs unbiased MD, same length.

    python -m workflows.benchmarks.unbinding workflows/ligand_cavity_hydrophobic.toml \
        [--workdir runs/unbinding_hydrophobic] [--reference-rounds N] [--unbound-height NM]
        [--csv PATH]

1. The campaign of the config runs (or resumes) in ``WORKDIR/campaign``, exactly as
   ``rave run CONFIG --workdir WORKDIR/campaign`` (the same code); its wall time is the
   workflow's end-to-end time and is printed (``WORKDIR/timing.json`` keeps it).
2. Unbiased reference: every walker of round 0 goes on from where round 0 ended, without a bias,
   in one chunk per biased round, each as long as that round (its stored ``steps``, so a
   campaign under ``[sampling] max_total_steps``, whose rounds differ in length, is matched
   round by round); ``--reference-rounds N`` takes the first N such chunks, or, beyond the
   biased rounds, more chunks of ``steps_per_round``. Chunks are stored in
   ``WORKDIR/unbiased/`` as they finish and are not rerun. With one walker the biased rounds
   start from that same state: same start, same length, same integrator, with and without the
   bias.
3. Events, counted per round (per chunk) and per walker: an unbinding is a move from *bound*
   (ligand centroid in the pocket, :meth:`rave.systems.ligand_cavity.LigandCavitySystem.is_bound`)
   to *unbound* (centroid at least ``--unbound-height`` nm above the plane of the wall's top
   layer, default 0.6 nm for methane and 1.0 nm for C60: past the ligand's contact layer on the
   wall, in or beyond the first water layer); a rebinding
   is the move back. Frames in between count for neither (hysteresis), so a ligand rattling
   at the mouth is not counted.

The table gives, for each round or chunk and in total: ns, unbindings, unbindings per ns with
the exact (Garwood) Poisson 95 % interval, rebindings, the fractions of frames bound and
unbound, and the greatest height of the ligand centroid above the wall's top-layer plane (how far
out it got); then the ratio of the biased to the unbiased unbinding rate with its exact conditional
(Clopper-Pearson) 95 % interval. ``WORKDIR/unbinding.csv`` keeps the table and
``WORKDIR/unbinding.json`` the harness's record of the run (``workflows.benchmarks.harness``:
command, date, machine, versions, the table, the rate ratio and the wall times).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openmm
from scipy import stats

from rave.analysis import transition_matrix
from rave.campaign import store
from rave.campaign.config import load_config
from rave.campaign.walkers import WalkerResult, WalkerTask, run_walker
from rave.cli import main as rave_main

from . import harness

TITLE = "Ligand unbinding events per ns: RAVE's biased rounds against unbiased MD"

#: default height of the unbound region above the wall's top-layer plane, by ligand, nm.
#: methane touches the flat wall with its centre ~0.44 nm above the site plane (the LJ minimum
#: of its cross sigma 0.394 nm): 0.6 nm puts it beyond that contact layer, in the first water
#: layer or further. C60 touches with its centroid about 0.75 nm up (cage radius 0.349 nm plus the
#: C-wall LJ minimum 0.43 nm, less the lattice corrugation): 1.0 nm, a water layer beyond.
UNBOUND_HEIGHT_NM = {"methane": 0.6, "c60": 1.0}
BOUND, UNBOUND = 0, 1


# -------------------------------------------------------------------------- pure functions
def binding_labels(z: np.ndarray, rho: np.ndarray, cavity, unbound_height_nm: float):
    """State of each frame: ``BOUND`` (0), ``UNBOUND`` (1) or -1 (between).

    Parameters
    ----------
    z, rho : np.ndarray, shape=(n_frames,), nm
        Order parameters ``z`` and ``rho`` of the frames (about the pocket centre).
    cavity : rave.systems.ligand_cavity.LigandCavitySystem
        Gives the pocket (``is_bound``), the top-layer height and the pocket centre.
    unbound_height_nm : float
        Unbound when ``z`` is at least this far above the top-layer plane (> 0).
    """
    if not unbound_height_nm > 0:
        raise ValueError(f"unbound height must be > 0 nm. You supplied {unbound_height_nm}")
    z, rho = np.asarray(z, float), np.asarray(rho, float)
    top = cavity.geometry["z_top"] - float(cavity.pocket_center[2])
    labels = np.full(z.shape, -1, dtype=np.int64)
    labels[cavity.is_bound(z, rho)] = BOUND
    labels[z >= top + unbound_height_nm] = UNBOUND
    return labels


def poisson_interval(k: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval of a Poisson mean given ``k`` observed events."""
    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else stats.chi2.ppf(alpha / 2, 2 * k) / 2
    return float(low), float(stats.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2)


def rate_ratio_interval(k1: int, t1: float, k2: int, t2: float, confidence: float = 0.95):
    """Ratio of two Poisson rates ``(k1/t1) / (k2/t2)`` and its exact conditional interval.

    Given ``n = k1 + k2``, ``k1`` is binomial with ``p = r1 t1 / (r1 t1 + r2 t2)``; the
    Clopper-Pearson interval of ``p`` maps to the ratio ``p/(1-p) * t2/t1``.

    Returns
    -------
    (ratio, low, high)
        ``nan`` for all three when ``k1 + k2 == 0`` (no events: no information);
        ``ratio = high = inf`` when ``k2 == 0 < k1``.
    """
    n = k1 + k2
    if n == 0:
        return math.nan, math.nan, math.nan
    alpha = 1.0 - confidence
    p_low = 0.0 if k1 == 0 else stats.beta.ppf(alpha / 2, k1, n - k1 + 1)
    p_high = 1.0 if k1 == n else stats.beta.ppf(1 - alpha / 2, k1 + 1, n - k1)

    def ratio(p: float) -> float:
        return math.inf if p >= 1.0 else p / (1.0 - p) * t2 / t1

    point = math.inf if k2 == 0 else (k1 / t1) / (k2 / t2)
    return point, ratio(p_low), ratio(p_high)


@dataclass
class Segment:
    """Frames of one round (or unbiased chunk), all walkers.

    labels: :func:`binding_labels`; height: ligand centroid height above the wall's top-layer
    plane, nm (how far out the ligand got, whether or not it counted as unbound).
    """

    name: str
    biased: bool
    labels: np.ndarray
    walker: np.ndarray
    ns: float
    height: np.ndarray

    def counts(self) -> dict:
        m = transition_matrix(self.labels, 2, self.walker)
        n = max(1, self.labels.size)
        return {"unbindings": int(m[BOUND, UNBOUND]), "rebindings": int(m[UNBOUND, BOUND]),
                "bound": float(np.count_nonzero(self.labels == BOUND) / n),
                "unbound": float(np.count_nonzero(self.labels == UNBOUND) / n)}


def table(segments: list[Segment]) -> list[dict]:
    """Rows per segment, then a total over the biased and one over the unbiased segments."""
    rows = []
    for name, group in ([(s.name, [s]) for s in segments]
                        + [("biased rounds, total", [s for s in segments if s.biased]),
                           ("unbiased reference, total",
                            [s for s in segments if not s.biased and s.name != "round 0"])]):
        if not group:
            continue
        ns = sum(s.ns for s in group)
        counts = [s.counts() for s in group]
        k = sum(c["unbindings"] for c in counts)
        weights = [s.labels.size for s in group]
        low, high = poisson_interval(k)
        rows.append({
            "segment": name, "ns": ns, "unbindings": k, "per_ns": k / ns,
            "per_ns_low": low / ns, "per_ns_high": high / ns,
            "rebindings": sum(c["rebindings"] for c in counts),
            "bound": float(np.average([c["bound"] for c in counts], weights=weights)),
            "unbound": float(np.average([c["unbound"] for c in counts], weights=weights)),
            "height_max_nm": float(max(np.max(s.height, initial=-np.inf) for s in group)),
        })
    return rows


# -------------------------------------------------------------------------- the runs
def _rounds_done(campaign: store.CampaignStore) -> int:
    return len(campaign.summary().get("rounds", [])) if campaign.has(campaign.SUMMARY) else 0


def _campaign(config_path: Path, workdir: Path) -> dict:
    folder = workdir / "campaign"
    timing_path = workdir / "timing.json"
    campaign = store.CampaignStore(folder)
    done_before = _rounds_done(campaign)
    t0 = time.perf_counter()
    code = 1
    try:
        code = rave_main(["run", str(config_path), "--workdir", str(folder)])
    finally:
        # the campaign's wall time summed over the runs of this script that did work (an
        # interrupted one included), so a resumed campaign still reports its time
        if code != 0 or _rounds_done(campaign) > done_before:
            timing = store.load_json(timing_path) if timing_path.exists() else {}
            timing["campaign_s"] = timing.get("campaign_s", 0.0) + time.perf_counter() - t0
            timing["campaign_runs"] = timing.get("campaign_runs", 0) + 1
            store.write_json(timing_path, timing)
    if code != 0:
        raise SystemExit(f"the campaign stopped (exit {code}); rerun this command to resume it")
    return campaign.summary()


def reference_chunk_steps(round_steps: list[int], steps_per_round: int,
                          n_chunks: int | None) -> list[int]:
    """Steps per walker of each unbiased reference chunk.

    Parameters
    ----------
    round_steps : list of int
        Steps per walker of every stored round, round 0 first (``summary.json``'s ``steps``).
    steps_per_round : int
        ``[sampling] steps_per_round``: the length of chunks beyond the biased rounds.
    n_chunks : int or None
        Number of chunks; None: one per biased round (the reference as long as they are).

    Returns
    -------
    list of int
        Chunk c (from 1) as long as biased round c, then ``steps_per_round`` each.
    """
    biased = [int(n) for n in round_steps[1:]]
    n = len(biased) if n_chunks is None else int(n_chunks)
    if n < 1:
        raise ValueError(f"the reference needs at least one chunk. You supplied {n}")
    return (biased + [int(steps_per_round)] * max(0, n - len(biased)))[:n]


def _unbiased_chunks(config, cavity, timestep_ps: float, workdir: Path,
                     chunk_steps: list[int]) -> list[list[WalkerResult]]:
    """Each walker of round 0 continued without bias, one chunk per entry of ``chunk_steps``."""
    sampling = config.sampling
    folder = workdir / "unbiased"
    folder.mkdir(exist_ok=True)
    campaign = store.CampaignStore(workdir / "campaign")
    previous = [WalkerResult.from_arrays(campaign.walker(0, k)) for k in range(sampling.walkers)]
    xml = openmm.XmlSerializer.serialize(cavity.system)
    features = tuple(f.to_dict() for f in cavity.features)
    chunks = []
    timing_path = workdir / "timing.json"
    n_chunks = len(chunk_steps)
    for c, n_steps in enumerate(chunk_steps, start=1):
        n_frames = n_steps // sampling.report_interval
        chunk = []
        for k, last in enumerate(previous):
            path = folder / f"chunk_{c:03d}_walker_{k:02d}.npz"
            if path.exists():
                chunk.append(WalkerResult.from_arrays(store.load_npz(path)))
                continue
            seed = int(np.random.SeedSequence([sampling.seed, 10_000 + c, k]).generate_state(1)[0]
                       % 2**31)
            task = WalkerTask(
                round_index=c, walker_index=k, system_xml=xml, features=features,
                positions=last.final_positions, velocities=last.final_velocities,
                box_vectors=last.final_box_vectors, time_ps=last.final_time_ps, bias=None,
                temperature_K=config.system.temperature,
                timestep_ps=timestep_ps,
                friction_per_ps=sampling.friction or cavity.friction_per_ps, seed=seed,
                platform=sampling.platform, force_group=config.bias.force_group,
                n_steps=n_steps, report_interval=sampling.report_interval,
                snapshot_every=max(1, n_frames), max_retries=sampling.max_retries)
            print(f"unbiased reference: chunk {c}/{n_chunks}, walker {k} "
                  f"({n_steps} steps)", flush=True)
            result = run_walker(task)
            store.write_npz(path, **result.to_arrays())
            timing = store.load_json(timing_path) if timing_path.exists() else {}
            timing["unbiased_s"] = timing.get("unbiased_s", 0.0) + result.wall_s
            store.write_json(timing_path, timing)
            chunk.append(result)
        chunks.append(chunk)
        previous = chunk
    return chunks


def _segment(name: str, biased: bool, features: np.ndarray, walker: np.ndarray, ns: float,
             cavity, unbound_height: float) -> Segment:
    names = [f.name for f in cavity.features]
    z, rho = features[:, names.index("z")], features[:, names.index("rho")]
    top = cavity.geometry["z_top"] - float(cavity.pocket_center[2])
    return Segment(name, biased, binding_labels(z, rho, cavity, unbound_height),
                   np.asarray(walker, np.int64), ns, z - top)


def _segments(config, cavity, timestep_ps: float, workdir: Path, summary: dict, chunks,
              height: float):
    sampling = config.sampling
    segments = []
    for r, entry in enumerate(summary["rounds"]):
        frames = store.CampaignStore(workdir / "campaign").frames(r)
        f = frames.features
        walker = np.zeros(len(f), dtype=np.int64) if frames.walker is None else frames.walker
        ns = int(entry.get("steps") or sampling.round_steps) * timestep_ps / 1000
        segments.append(_segment(f"round {r}", r > 0, f, walker, ns * sampling.walkers,
                                 cavity, height))
    for c, chunk in enumerate(chunks, start=1):
        f = np.concatenate([w.features for w in chunk])
        walker = np.concatenate([np.full(len(w.features), k) for k, w in enumerate(chunk)])
        ns = len(chunk[0].features) * sampling.report_interval * timestep_ps / 1000
        segments.append(_segment(f"unbiased chunk {c}", False, f, walker, ns * len(chunk),
                                 cavity, height))
    return segments


def _print(rows: list[dict], ratio, timing: dict) -> None:
    print(f"\n{'segment':<28}{'ns':>8}{'unbind':>8}{'per ns':>9}{'95 % interval':>18}"
          f"{'rebind':>8}{'bound':>7}{'unbound':>9}{'max height':>12}")
    for r in rows:
        interval = f"[{r['per_ns_low']:.1f}, {r['per_ns_high']:.1f}]"
        print(f"{r['segment']:<28}{r['ns']:>8.3f}{r['unbindings']:>8d}{r['per_ns']:>9.1f}"
              f"{interval:>18}{r['rebindings']:>8d}{r['bound']:>7.2f}{r['unbound']:>9.2f}"
              f"{r['height_max_nm']:>9.3f} nm")
    point, low, high = ratio
    if math.isnan(point):
        print("\nunbinding rate, biased / unbiased: no unbinding event in either, so no ratio "
              "(each rate's 95 % upper limit is in the table)")
    else:
        print(f"\nunbinding rate, biased / unbiased: {point:.2f} (95 % interval {low:.2f} - "
              f"{high:.2f})")
    runs = timing.get("campaign_runs", 1)
    for key, label in (("campaign_s", "campaign (all rounds, training included"
                        + (f", over {runs} runs of this script)" if runs > 1 else ")")),
                       ("unbiased_s", "unbiased reference MD")):
        if key in timing:
            print(f"wall time, {label}: {timing[key] / 60:.1f} min")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="a ligand_cavity campaign TOML")
    parser.add_argument("--workdir", type=Path,
                        help="default: runs/unbinding_<config name>; rerun to resume")
    parser.add_argument("--reference-rounds", type=int,
                        help="unbiased chunks, each as long as the biased round of its number "
                             "(default: one per biased round)")
    parser.add_argument("--unbound-height", type=float,
                        help="nm above the wall's top-layer plane (default: 0.6 for methane, "
                             "1.0 for c60)")
    parser.add_argument("--csv", type=Path, help="also write the table here")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    if config.system.kind != "ligand_cavity":
        parser.error(f"{args.config} has [system] kind = {config.system.kind!r}; this benchmark "
                     f"needs kind = \"ligand_cavity\"")
    if config.sampling.round_limit < 2:
        parser.error(f"{args.config} has {config.sampling.round_limit} round(s); at least 2 are "
                     f"needed (round 0 is unbiased)")
    from rave.systems.ligand_cavity import build_ligand_cavity

    s = config.system
    cavity = build_ligand_cavity(variant=s.variant, ligand=s.ligand, size=s.size)
    height = (UNBOUND_HEIGHT_NM[s.ligand] if args.unbound_height is None
              else args.unbound_height)
    workdir = args.workdir or Path("runs") / f"unbinding_{args.config.stem}"
    bench = harness.BenchmarkRun("unbinding", TITLE, argv, folder=workdir)
    summary = _campaign(args.config, workdir)
    chunk_steps = reference_chunk_steps([int(r.get("steps") or config.sampling.round_steps)
                                         for r in summary["rounds"]],
                                        config.sampling.steps_per_round, args.reference_rounds)
    # the campaign's own MD settings (rave.campaign.Campaign: [sampling] overrides the system's)
    timestep_ps = config.sampling.timestep or cavity.timestep_ps
    chunks = _unbiased_chunks(config, cavity, timestep_ps, workdir, chunk_steps)
    segments = _segments(config, cavity, timestep_ps, workdir, summary, chunks, height)
    rows = table(segments)
    biased = next(r for r in rows if r["segment"] == "biased rounds, total")
    unbiased = next((r for r in rows if r["segment"] == "unbiased reference, total"), None)
    ratio = ((math.nan,) * 3 if unbiased is None else
             rate_ratio_interval(biased["unbindings"], biased["ns"], unbiased["unbindings"],
                                 unbiased["ns"]))
    timing = store.load_json(workdir / "timing.json") if (workdir / "timing.json").exists() else {}
    _print(rows, ratio, timing)
    if args.csv:
        harness.write_csv(args.csv, rows)
    harness.write_csv(workdir / "unbinding.csv", rows)
    point, low, high = ratio
    bench.write(rows, key=("segment",), settings={
        "config": str(args.config), "unbound_height_nm": height,
        "reference_rounds": args.reference_rounds, "rate_ratio": [point, low, high],
        "timing_s": timing}, files={"table": "unbinding.csv"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
