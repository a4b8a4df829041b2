"""Benchmark: train one default VAE on 200,000 frames of a 2-D three-basin data set.

The frames are independent samples of exp(-U/kT) for the three-state potential

    U/kT = -12 [exp(-(x+1)^2 - 2(y-1)^2) + exp(-2(x+0.8)^2 - 2(y+1)^2) + exp(-2(x-1)^2 - 2y^2)]

restricted to the box [-2.5, 2.5]^2 (the potential has no confining term; outside its wells
exp(-U/kT) ~ 1 against ~e^12 in a well, so the box holds ~0.1 % of the mass in its flat
plateau), drawn by rejection sampling: uniform proposals in the box, accepted with probability
exp(-(U - U_min)/kT), where U_min is the minimum of U over a 1001 x 1001 grid of the box lowered
by a margin (so the envelope bounds the density everywhere, not only at grid points).

Usage::

    python workflows/benchmarks/training.py [--frames 200000] [--device auto] [--seed 0]
                                  [--test-frames 50000] [--progress]

Prints a table: frames, device, threads, epochs and steps run, wall time (s) of the fit, final
train and validation loss, the loss on fresh held-out frames (comparable across --frames),
whether early stopping triggered. The speed target (RAVE brief) is <= 60 s of training on 2 CPU
cores for 200,000 frames. Timings need an otherwise idle machine: with another process busy on
one of the 2 cores, torch's two threads wait on each other and a fit ran 3-10x slower.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rave.vae import VAEConfig, VAEEstimator

#: Half-width of the sampling box, in the (dimensionless) units of x and y.
BOX_HALF_WIDTH = 2.5
#: Grid points per axis for locating the minimum of U.
GRID_POINTS = 1001
#: Lowering of the grid minimum of U/kT so that the envelope bounds exp(-U/kT) between grid
#: points too (the curvature of U/kT in a well is ~50 per unit^2 and the grid step is 0.005,
#: so the grid misses the minimum by < 50 * 0.005^2 / 2 ~ 6e-4).
ENVELOPE_MARGIN_KT = 0.01


def three_state_potential_kt(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """U/kT of the three-state 2-D potential (minima near (-1, 1), (-0.8, -1), (1, 0)).

    Parameters
    ----------
    x, y : np.ndarray
        Coordinates (dimensionless), broadcastable.

    Returns
    -------
    np.ndarray
        U/kT, dimensionless.
    """
    return -12.0 * (
        np.exp(-((x + 1.0) ** 2) - 2.0 * (y - 1.0) ** 2)
        + np.exp(-2.0 * (x + 0.8) ** 2 - 2.0 * (y + 1.0) ** 2)
        + np.exp(-2.0 * (x - 1.0) ** 2 - 2.0 * y**2)
    )


def sample_three_state(n_frames: int, seed: int = 0) -> np.ndarray:
    """Independent samples of exp(-U/kT) on the box, by rejection sampling.

    Parameters
    ----------
    n_frames : int
        Number of samples.
    seed : int
        Seed of the numpy generator.

    Returns
    -------
    np.ndarray, shape=(n_frames, 2), dtype=float64
        (x, y) of each sample.
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200_000, help="frames to train on")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and training")
    parser.add_argument(
        "--test-frames", type=int, default=50_000, help="fresh frames for a held-out loss"
    )
    parser.add_argument("--progress", action="store_true", help="show a progress bar")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    features = sample_three_state(args.frames, seed=args.seed)
    sample_s = time.perf_counter() - t0

    estimator = VAEEstimator(VAEConfig(device=args.device), seed=args.seed)
    t0 = time.perf_counter()
    model = estimator.fit(features, progress=args.progress).fetch_model()
    wall = time.perf_counter() - t0
    h = model.history
    # held-out loss on fresh samples (another seed): comparable across --frames
    test_loss = model.loss(sample_three_state(args.test_frames, seed=args.seed + 1000))

    best = h["best_epoch"] - 1
    rows = [
        ("frames", f"{args.frames}"),
        ("sampling time (s)", f"{sample_s:.1f}"),
        (
            "device",
            h["device"] + (f" ({torch.cuda.get_device_name()})" if "cuda" in h["device"] else ""),
        ),
        ("torch threads", f"{torch.get_num_threads()}"),
        ("train / validation frames", f"{h['n_train']} / {h['n_validation']}"),
        ("epochs run (best)", f"{h['epochs']} ({h['best_epoch']})"),
        ("optimiser steps", f"{h['steps']} ({h['steps_per_epoch']} per epoch)"),
        ("wall time (s)", f"{wall:.1f}"),
        ("final train loss", f"{h['train_loss'][-1]:.4f}"),
        ("final validation loss", f"{h['validation_loss'][-1]:.4f}"),
        ("best validation loss (kept)", f"{h['validation_loss'][best]:.4f}"),
        (f"held-out loss ({args.test_frames} fresh frames)", f"{test_loss:.4f}"),
        ("final learning rate", f"{h['learning_rate'][-1]:.2e}"),
        ("early stopping triggered", "yes" if h["stopped_early"] else "no (max_epochs)"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print("validation loss per epoch:", " ".join(f"{v:.4f}" for v in h["validation_loss"]))
    return h


if __name__ == "__main__":
    main()
