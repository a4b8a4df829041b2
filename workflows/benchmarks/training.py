"""Benchmark: the wall time of RAVE's learning step, idle and beside a busy process.

Two measurements, each in a fresh subprocess per mode so that torch's thread state and the
CPU affinity are those a user would have:

1. **The learning step of a round** through the campaign's own code (``Campaign._train``,
   the RAVE estimator: every VAE seed, each seed's RC fit, the stale-warm-start guard, the RC
   choice), then the bias grid (``RAVEModel.bias``), on ``--frames`` frames (default 200,000) of
   ``--dims`` order parameters (default 10): independent samples of the three-state 2-D
   potential (rejection sampling, below) in two coordinates, eight more coordinates of
   N(0, 0.3^2) noise, all ten mixed by a fixed random rotation so that the slow plane mixes
   every order parameter. Round "cold" trains every seed from scratch (as round 0 does); round
   "warm" then trains on a fresh draw with the first round's models as the warm start (one
   seed cold, rotating, as every later round does by default); round "warm, no cold seed"
   does the same with ``[vae] cold_seeds = 0``. Reported: wall time of each step, each
   model's KL, the angle between consecutive rounds' RCs.
2. **A 3-round campaign** on the three-state potential, 20,000 steps a round
   (``rave run``, end to end: MD, MBAR, training, figures), wall time of the command.

3. **How to train several seeds** (idle machine): the cost per seed and optimiser step of the
   default network (batch 512, d = 10) with 2 intra-op threads, with 1, two seeds side by
   side in threads of 1, and three seeds stacked into batched matrix products; the campaign
   uses the fastest (threads side by side, see rave.campaign.resources).

Modes: ``idle`` (all cores this process may use, nothing else running), ``onecore`` (the
same work restricted to CPU 0, as ``taskset -c 0`` would), ``busy`` (all cores, with one
CPU-bound process spinning beside it for the whole measurement). The targets compare busy
with onecore: with one of two cores taken, the best possible is the time on one idle core.

Usage::

    python -m workflows.benchmarks.training [--frames 200000] [--dims 10]
        [--modes idle,onecore,busy]
        [--skip-campaign] [--skip-step] [--skip-kernels] [--csv PATH] [--out DIR]

Prints a table and writes ``training.csv`` and the harness's record ``training.json`` in a fresh
folder under ``--out`` (default ``runs/benchmarks``; ``--csv`` writes the table there too).
Timings need an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import harness

TITLE = "The learning step: wall time idle, on one core and beside a busy process"

#: Half-width of the sampling box, in the (dimensionless) units of x and y.
BOX_HALF_WIDTH = 2.5
#: Grid points per axis for locating the minimum of U.
GRID_POINTS = 1001
#: Lowering of the grid minimum of U/kT so that the envelope bounds exp(-U/kT) between grid
#: points too (the curvature of U/kT in a well is ~50 per unit^2 and the grid step is 0.005,
#: so the grid misses the minimum by < 50 * 0.005^2 / 2 ~ 6e-4).
ENVELOPE_MARGIN_KT = 0.01
#: Standard deviation of the extra (noise) order parameters.
NOISE_SIGMA = 0.3
ROOT = Path(__file__).resolve().parents[2]


def three_state_potential_kt(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """U/kT of the three-state 2-D potential (minima near (-1, 1), (-0.8, -1), (1, 0))."""
    return -12.0 * (
        np.exp(-((x + 1.0) ** 2) - 2.0 * (y - 1.0) ** 2)
        + np.exp(-2.0 * (x + 0.8) ** 2 - 2.0 * (y + 1.0) ** 2)
        + np.exp(-2.0 * (x - 1.0) ** 2 - 2.0 * y**2)
    )


def sample_three_state(n_frames: int, seed: int = 0) -> np.ndarray:
    """Independent samples of exp(-U/kT) on the box [-2.5, 2.5]^2, by rejection sampling.

    Returns
    -------
    np.ndarray, shape=(n_frames, 2), dtype=float64
    """
    rng = np.random.default_rng(seed)
    axis = np.linspace(-BOX_HALF_WIDTH, BOX_HALF_WIDTH, GRID_POINTS)
    u_min = three_state_potential_kt(axis[:, None], axis[None, :]).min() - ENVELOPE_MARGIN_KT
    out = np.empty((0, 2))
    while out.shape[0] < n_frames:
        proposal = rng.uniform(-BOX_HALF_WIDTH, BOX_HALF_WIDTH, size=(2_000_000, 2))
        u = three_state_potential_kt(proposal[:, 0], proposal[:, 1])
        accept = rng.random(proposal.shape[0]) < np.exp(-(u - u_min))
        out = np.concatenate([out, proposal[accept]])
    return out[:n_frames]


def mixed_frames(n_frames: int, dims: int, seed: int) -> np.ndarray:
    """Three-state samples plus ``dims - 2`` noise coordinates, mixed by a fixed rotation."""
    rng = np.random.default_rng(seed)
    plane = sample_three_state(n_frames, seed=seed)
    noise = NOISE_SIGMA * rng.normal(size=(n_frames, dims - 2))
    rotation, _ = np.linalg.qr(np.random.default_rng(12345).normal(size=(dims, dims)))
    return np.hstack([plane, noise]) @ rotation.T


# ------------------------------------------------------------------ one mode, in a subprocess
def learning_step_child(frames: int, dims: int) -> dict:
    """Time a cold and a warm learning step through Campaign._train (in this process)."""
    from rave.campaign import Campaign
    from rave.campaign.config import config_from_dict
    from rave.learn.coordinate import direction_angle_deg
    from rave.units import kT_kjmol

    def config(cold_seeds: int):
        return config_from_dict({"system": {"kind": "three_state"},
                                 "vae": {"cold_seeds": cold_seeds},
                                 "output": {"progress": False, "figures": False}})

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        campaign = Campaign(config(1), Path(tmp) / "w")
        log_w = np.zeros(frames)
        coefficients = []
        for index, label in enumerate(("cold", "warm", "warm, no cold seed")):
            if index == 2:  # the same campaign asked for no cold seed in later rounds
                previous = campaign._previous_coefficients
                campaign = Campaign(config(0), Path(tmp) / "w")
                campaign._previous_coefficients = previous
            x = mixed_frames(frames, dims, seed=index)
            folder = Path(tmp) / "w" / f"round_{index:03d}"
            t0 = time.perf_counter()
            model, _ = campaign._train(index, folder, x, log_w)
            model.bias(kT_kjmol(300.0))
            wall = time.perf_counter() - t0
            c = model.coefficients
            campaign._previous_coefficients = c
            coefficients.append(c)
            out[label] = {"wall_s": wall, "kl": [m.kl_divergence for m in model.models],
                          "warm": [m.warm for m in model.models]}
        out["rc_angle_between_rounds_deg"] = [direction_angle_deg(a, b) for a, b
                                              in zip(coefficients[:-1], coefficients[1:],
                                                     strict=True)]
    return out


def campaign_child() -> dict:
    """Time ``rave run`` of a 3-round, 20,000-step three-state campaign (in this process)."""
    with tempfile.TemporaryDirectory() as tmp:
        toml = Path(tmp) / "three_state_short.toml"
        toml.write_text('[system]\nkind = "three_state"\ntemperature = 300.0\n[sampling]\n'
                        'rounds = 3\nsteps_per_round = 20000\nseed = 1\nreport_interval = 50\n'
                        '[output]\nprogress = false\n')
        t0 = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "rave.cli", "run", str(toml),
                                 "--workdir", str(Path(tmp) / "w"), "-q"],
                                capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if result.returncode != 0:
            raise RuntimeError(f"rave run failed: {result.stderr[-2000:]}")
        from rave.campaign.store import CampaignStore

        summary = CampaignStore(Path(tmp) / "w").summary()
        train = [r["timings_s"].get("train_and_rc", float("nan")) for r in summary["rounds"]]
    return {"wall_s": wall, "train_and_rc_s": train}


def _step_time(threads: int, seeds: int, stacked: bool, steps: int = 60) -> float:
    """Seconds per seed-step of the default 3 x 512 VAE, batch 512, on d = 10 frames:
    ``seeds`` networks trained side by side in threads (``stacked`` False, ``threads``
    intra-op threads each), or stacked into batched matrix products in one thread of
    control (``stacked`` True)."""
    import threading

    import torch

    from rave.learn.vae import VAE, elbo_loss

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    x = torch.randn(20_000, 10)
    if stacked:
        width, layers = 512, []
        for n_in, n_out in [(10, width), (width, width), (width, width), (width, 2),
                            (1, width), (width, width), (width, width), (width, 10)]:
            weight = (torch.randn(seeds, n_in, n_out) / n_in**0.5).requires_grad_()
            layers.append((weight, torch.zeros(seeds, 1, n_out, requires_grad=True)))
        optimiser = torch.optim.Adam([p for layer in layers for p in layer], 1e-3)

        def mlp(part, h):
            for j, (weight, bias) in enumerate(part):
                h = torch.baddbmm(bias, h, weight)
                h = torch.tanh(h) if j < len(part) - 1 else h
            return h

        def step():
            batch = x[torch.randint(0, 20_000, (seeds, 512))]
            out = mlp(layers[:4], batch)
            mu, log_var = out[..., :1], out[..., 1:]
            rec = mlp(layers[4:], mu + torch.exp(0.5 * log_var) * torch.randn_like(mu))
            kl = -0.5 * (1 + log_var - mu.pow(2) - log_var.exp())[..., 0]
            loss = ((rec - batch).pow(2).sum(-1) + kl).mean(-1).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()

        for _ in range(5):
            step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - t0) / steps / seeds

    def train(out: list) -> None:
        network = VAE(10)
        optimiser = torch.optim.Adam(network.parameters(), 1e-3)
        for i in range(steps + 5):
            if i == 5:
                t0 = time.perf_counter()
            batch = x[torch.randint(0, 20_000, (512,))]
            rec, mu, log_var, _ = network(batch)
            loss = elbo_loss(batch, rec, mu, log_var)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        out.append(time.perf_counter() - t0)

    times: list = []
    if seeds == 1:  # as fit_seeds does: a single seed trains in the calling thread
        train(times)
        return times[0] / steps
    workers = [threading.Thread(target=train, args=(times,)) for _ in range(seeds)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return (time.perf_counter() - t0) / steps / seeds


def _three_seeds_s(workers: int) -> float:
    """Wall time of fit_seeds training 3 default seeds for 150 steps each, ``workers`` at once
    (one intra-op thread each), on 20,000 frames of d = 10."""
    from rave.learn.vae import VAEConfig, fit_seeds

    x = mixed_frames(20_000, 10, seed=3)
    config = VAEConfig(max_epochs=6, min_epochs=6, stop_on_stable_order=False, patience=100)
    t0 = time.perf_counter()
    fit_seeds(x, [1, 2, 3], config, workers=workers, intra_op_threads=1)
    return time.perf_counter() - t0


def kernels_child() -> dict:
    """Per seed-step cost of the ways to train several seeds on this machine's cores."""
    return {
        "3 seeds x 150 steps, all at once (s)": _three_seeds_s(3),
        "3 seeds x 150 steps, two at a time (s)": _three_seeds_s(2),
        "one seed, 2 intra-op threads": _step_time(2, 1, False),
        "one seed, 1 thread": _step_time(1, 1, False),
        "2 seeds side by side, 1 thread each": _step_time(1, 2, False),
        "3 seeds stacked (batched matmul), 2 threads": _step_time(2, 3, True),
    }


def run_mode(mode: str, what: str, frames: int, dims: int) -> dict:
    """Run one measurement in a fresh interpreter under the mode's conditions."""
    cmd = [sys.executable, "-m", "workflows.benchmarks.training", "--child", what, "--frames",
           str(frames), "--dims", str(dims)]
    if mode == "onecore":
        cmd = ["taskset", "-c", "0"] + cmd
    spinner = None
    if mode == "busy":
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    if result.returncode != 0:
        raise RuntimeError(f"{mode} {what} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=10)
    parser.add_argument("--modes", default="idle,onecore,busy")
    parser.add_argument("--skip-step", action="store_true")
    parser.add_argument("--skip-campaign", action="store_true")
    parser.add_argument("--csv", type=Path, help="also write the table here")
    parser.add_argument("--out", type=Path, default=harness.DEFAULT_OUT,
                        help="parent of the fresh output folder")
    parser.add_argument("--skip-kernels", action="store_true")
    parser.add_argument("--child", choices=["step", "campaign", "kernels"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "step":
        print(json.dumps(learning_step_child(args.frames, args.dims)))
        return []
    if args.child == "campaign":
        print(json.dumps(campaign_child()))
        return []
    if args.child == "kernels":
        print(json.dumps(kernels_child()))
        return []
    if args.dims < 2:
        parser.error("--dims must be >= 2")
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in ("idle", "onecore", "busy") for m in modes):
        parser.error("--modes takes idle, onecore and busy")
    if "onecore" in modes and shutil.which("taskset") is None:
        parser.error("onecore mode needs taskset (util-linux)")
    bench = harness.BenchmarkRun("training", TITLE, argv, args.out)
    print(f"# {bench.command}")
    print(f"# {platform.node()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d %H:%M')}")
    rows = []
    if not args.skip_kernels:
        for name, seconds in run_mode("idle", "kernels", args.frames, args.dims).items():
            whole = name.endswith("(s)")
            rows.append({"mode": "idle", "what": name if whole else f"ms per seed-step: {name}",
                         "frames": 20_000 if whole else 0, "dims": 10,
                         "value": round(seconds if whole else 1e3 * seconds, 2),
                         "unit": "s" if whole else "ms", "note": ""})
            print(rows[-1], flush=True)
    for mode in modes:
        if not args.skip_step:
            step = run_mode(mode, "step", args.frames, args.dims)
            for j, label in enumerate(("cold", "warm", "warm, no cold seed")):
                turned = (f"; RC turned {step['rc_angle_between_rounds_deg'][j - 1]:.1f} deg"
                          if j else "")
                rows.append({"mode": mode, "what": f"learning step, {label}",
                             "frames": args.frames, "dims": args.dims,
                             "value": round(step[label]["wall_s"], 2), "unit": "s",
                             "note": f"KL {', '.join(f'{k:.3f}' for k in step[label]['kl'])}"
                                     + turned})
                print(rows[-1], flush=True)
        if not args.skip_campaign:
            run = run_mode(mode, "campaign", args.frames, args.dims)
            rows.append({"mode": mode, "what": "3-round campaign, 20,000 steps/round",
                         "frames": 1200, "dims": 2, "value": round(run["wall_s"], 2),
                         "unit": "s",
                         "note": "training+RC per round (s): "
                                 + ", ".join(f"{t:.1f}" for t in run["train_and_rc_s"])})
            print(rows[-1], flush=True)
    print()
    print(f"{'mode':<9} {'what':<52} {'frames':>8} {'d':>3} {'value':>9} unit  note")
    for r in rows:
        print(f"{r['mode']:<9} {r['what']:<52} {r['frames']:>8} {r['dims']:>3} "
              f"{r['value']:>9.2f} {r['unit']:<4}  {r['note']}")
    by = {(r["mode"], r["what"]): r["value"] for r in rows}
    for what in sorted({r["what"] for r in rows}):
        if ("busy", what) in by and ("onecore", what) in by:
            print(f"busy / onecore, {what}: {by['busy', what] / by['onecore', what]:.2f}x "
                  f"(target <= 1.25x)")
    if args.csv:
        harness.write_csv(args.csv, rows)
    harness.write_csv(bench.out / "training.csv", rows)
    settings = {k: v for k, v in vars(args).items() if k not in ("csv", "out", "child")}
    record = bench.write(rows, key=("mode", "what"), settings=settings,
                         files={"table": "training.csv"})
    print(f"wrote {bench.out / 'training.csv'}, {record}")
    return rows


if __name__ == "__main__":
    main()
