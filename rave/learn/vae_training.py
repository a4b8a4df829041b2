"""Training of the 1-D-latent VAE on weighted frames: :class:`VAEEstimator` and
:func:`fit_seeds` (several seeds at once).

How the per-frame weights enter (the weighted ELBO)
---------------------------------------------------
The objective is the weighted mean of the per-frame losses, sum_i w_i l_i / sum_i w_i: the
expectation of the loss under the reweighted (unbiased) ensemble. Training estimates its
gradient on minibatches drawn **with replacement with probability proportional to w_i**, and
averages the per-frame losses of a minibatch with equal weight. This estimate is unbiased, like a
weighted mean over a uniformly drawn minibatch, but its variance does not blow up when the
weights span many orders of magnitude (frames reweighted with exp(+beta V) of a bias do): with
uniform minibatches the one frame of largest weight in a batch would carry nearly all of the
gradient and the effective batch size would collapse to ~1. Frames of weight zero are never
drawn. The validation loss, used for early stopping, is the exact weighted mean over the
validation frames with a fixed draw of eps, so it is a deterministic function of the network.

Training cost is set by a budget of optimiser steps that follows the data, not by a pass over
it: an "epoch" is ``ceil(frames_per_epoch / batch_size)`` steps (frames are drawn with
replacement, so an epoch needs no pass over the data), followed by one validation pass. A cold
fit runs ``ceil(max_passes * n_train / frames_per_epoch)`` epochs clipped to
``[min_epochs, max_epochs]``; a warm start (``fit(..., initial=model)``: the previous round's
network, its input layer and output layer rescaled so that it computes the same function of the
raw order parameters under the new standardisation) gets ``warm_fraction`` of that. The learning
rate follows a cosine decay to zero over the budget (or, optionally, halves on plateaus).
Training stops early when the validation loss has not improved by a relative
``min_improvement`` for ``patience`` epochs, or, with ``stop_on_stable_order``, when what the
campaign uses stopped changing: the ordering of the validation frames by the latent and the
direction of the latent's best linear fit on the inputs. The network of lowest validation loss
(of any epoch) is returned. Measured costs are in docs/benchmarks.md.

Several seeds train at once with :func:`fit_seeds`: one thread per seed, each with its own
generator, so that a seed gives the same model whether it trains alone or beside others (with
the same number of intra-op threads).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
import torch

from ..stats.weights import effective_sample_size, normalised_weights
from .coordinate import least_squares_direction
from .vae_config import VAEConfig, _is_int
from .vae_loss import elbo_loss
from .vae_model import VAEModel, _check_features, _flush_denormal
from .vae_network import VAE, resolve_device

#: The smallest validation split and training split that ``fit`` accepts, in frames.
MIN_VALIDATION_FRAMES = 1
MIN_TRAINING_FRAMES = 2


def _weighted_draws(cdf: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator):
    """Frame indices drawn with replacement, P(i) = cdf[i] - cdf[i-1]; weight-0 frames never."""
    draws = np.searchsorted(cdf, rng.random(shape), side="right")
    return np.minimum(draws, cdf.shape[0] - 1)


def _weighted_scaler(x: np.ndarray, w: np.ndarray, fallback_scale: np.ndarray):
    """Weighted mean and standard deviation per column (w sums to 1)."""
    mean = w @ x
    scale = np.sqrt(w @ (x - mean) ** 2)
    # The weighted spread can vanish when the weight sits on a few frames with equal values of
    # a feature; dividing by it would blow that feature up. Use the unweighted spread instead.
    tiny = scale <= 1e-8 * fallback_scale
    scale = np.where(tiny, fallback_scale, scale)
    return mean, scale



class VAEEstimator:
    """Trains a 1-D-latent VAE on weighted frames (the scheme is in the module docstring).

    ``seed`` seeds the validation split, initialisation, minibatches and noise: the same seed, data
    and config give the same model on CPU (same torch threads); global random states are left
    untouched. TypeError for a config that is not a VAEConfig, ValueError for a negative seed.
    """

    def __init__(self, config: VAEConfig = VAEConfig(), seed: int = 0) -> None:  # noqa: B008
        if not isinstance(config, VAEConfig):
            raise TypeError(f"config must be a VAEConfig. You supplied {type(config).__name__}")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seed must be a non-negative int. You supplied {seed!r}")
        self.config = config
        self.seed = int(seed)
        self._model: VAEModel | None = None

    def _n_validation(self, n_frames: int) -> int:
        fraction = round(self.config.validation_fraction * n_frames)
        return min(max(MIN_VALIDATION_FRAMES, int(fraction)), self.config.max_validation_frames)

    def fetch_model(self) -> VAEModel:
        """The model of the last :meth:`fit`; ValueError before any fit."""
        if self._model is None:
            raise ValueError("no model yet: call fit(features) before fetch_model()")
        return self._model

    def budget_epochs(self, n_train: int, warm: bool = False) -> int:
        """Epochs a fit on ``n_train`` frames may run; warm: ``warm_fraction`` of it, >= 1."""
        cfg = self.config
        by_data = math.ceil(cfg.max_passes * n_train / cfg.frames_per_epoch)
        cold = min(cfg.max_epochs, max(cfg.min_epochs, by_data))
        return max(1, math.ceil(cfg.warm_fraction * cold)) if warm else cold

    def fit(
        self,
        features: np.ndarray,
        weights: np.ndarray | None = None,
        log_weights: np.ndarray | None = None,
        progress: bool | str = False,
        initial: VAEModel | None = None,
    ) -> VAEEstimator:
        """Train on frames of order parameters (n_frames, n_features), each weighted; returns self.

        ``weights`` or ``log_weights`` (preferred, -inf for 0; at most one; uniform if neither).
        ``progress``: a tqdm bar over epochs (a string labels it). ``initial``: warm start from this
        model's network (same n_features, hidden, activation), rescaled to this standardisation so
        it starts as the same function of the raw order parameters. Raises ValueError for too few
        frames for the split (under ``MIN_TRAINING_FRAMES`` left), a split whose weights sum to 0,
        or a constant feature; FloatingPointError when the validation loss is not finite.
        """
        cfg = self.config
        started = time.perf_counter()
        x = _check_features(features)
        n_frames, n_features = x.shape
        w = normalised_weights(n_frames, weights, log_weights)
        spread = x.std(axis=0)
        for j in range(n_features):
            if np.ptp(x[:, j]) == 0.0:
                raise ValueError(
                    f"feature {j} has zero variance over the {n_frames} frames: it carries no "
                    "information; remove it"
                )
        if initial is not None:
            _check_initial(initial, n_features, cfg)
        n_val = self._n_validation(n_frames)
        n_train = n_frames - n_val
        if n_train < MIN_TRAINING_FRAMES:
            need = MIN_TRAINING_FRAMES + MIN_VALIDATION_FRAMES
            while need - self._n_validation(need) < MIN_TRAINING_FRAMES:
                need += 1
            raise ValueError(
                f"too few frames for a validation split: {n_frames} frames with "
                f"validation_fraction={cfg.validation_fraction:g} leave {n_train} for training; "
                f"need at least {need} frames to keep >= {MIN_VALIDATION_FRAMES} validation and "
                f">= {MIN_TRAINING_FRAMES} training frames"
            )
        device = resolve_device(cfg.device)

        rng = np.random.default_rng(self.seed)
        order = rng.permutation(n_frames)
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
        w_train, w_val = w[train_idx], w[val_idx]
        if w_train.sum() <= 0.0:
            raise ValueError(
                f"all {int((w > 0).sum())} frames with non-zero weight fell into the validation "
                "split: nothing left to train on; give more frames non-zero weight"
            )
        if w_val.sum() <= 0.0:
            raise ValueError(
                f"none of the {int((w > 0).sum())} frames with non-zero weight fell into the "
                "validation split: the validation loss is undefined; give more frames non-zero "
                "weight or raise validation_fraction"
            )
        w_train = w_train / w_train.sum()
        w_val = w_val / w_val.sum()
        x_train_raw = x[train_idx]
        mean, scale = _weighted_scaler(x_train_raw, w_train, spread)

        def to_device(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(array, dtype=torch.float32).to(device)

        x_val_np = (x[val_idx] - mean) / scale
        x_train = to_device((x_train_raw - mean) / scale)
        x_val = to_device(x_val_np)
        w_val_t = to_device(w_val)

        # Initialise on CPU under a forked RNG: same weights whatever the device, and the
        # caller's global torch RNG state is untouched. The global RNG is shared by threads, so
        # seeds trained side by side (fit_seeds) take turns here.
        # A warm start is built here too: constructing a module draws from the global RNG.
        with _INIT_LOCK, torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if initial is None:
                network = VAE(n_features, cfg.hidden, cfg.activation)
            else:
                network = _warm_network(initial, mean, scale)
            eps_val = torch.randn((n_val, 1), dtype=torch.float32)
        network.to(device)
        eps_val = eps_val.to(device)
        noise = torch.Generator(device=device)
        noise.manual_seed(self.seed + 1)
        optimiser = torch.optim.Adam(network.parameters(), lr=cfg.learning_rate)
        learning_rate = cfg.learning_rate

        cdf = np.cumsum(w_train)
        cdf /= cdf[-1]
        steps_per_epoch = math.ceil(cfg.frames_per_epoch / cfg.batch_size)
        budget = self.budget_epochs(n_train, warm=initial is not None)
        # the stable-order stop: warm fits may stop after their first epoch (compared with the
        # starting network), cold fits not before min_epochs
        first_order_check = 1 if initial is not None else min(cfg.min_epochs, budget)

        def validation_pass() -> tuple[float, np.ndarray]:
            network.eval()
            with torch.no_grad():
                x_rec, mu, log_variance, _ = network(x_val, eps=eps_val)
                loss = elbo_loss(x_val, x_rec, mu, log_variance, cfg.beta, w_val_t)
            network.train()
            return float(loss.item()), mu[:, 0].detach().cpu().numpy().astype(np.float64)

        history: dict[str, Any] = {
            "train_loss": [],
            "validation_loss": [],
            "learning_rate": [],
            "elapsed_s": [],
            "rank_correlation": [],
            "direction_change_deg": [],
        }
        best_loss = math.inf  # lowest validation loss so far: its network is kept
        best_state: dict[str, torch.Tensor] | None = None
        best_epoch = 0
        reference_loss = math.inf  # last loss that beat its predecessor by min_improvement
        since_best = 0
        since_decay = 0
        stop_reason = "budget"
        steps = 0
        previous_order = None
        if initial is not None:
            previous_order = _order_summary(validation_pass()[1], x_val_np, w_val)

        bar = None
        if progress:
            from tqdm.auto import tqdm

            label = progress if isinstance(progress, str) else f"VAE seed {self.seed}"
            bar = tqdm(total=budget, desc=label, unit="epoch", leave=False,
                       disable=None)  # no bar when stderr is not a terminal
        network.train()
        with _flush_denormal(device.type == "cpu"):
            try:
                for epoch in range(1, budget + 1):
                    draws = _weighted_draws(cdf, (steps_per_epoch, cfg.batch_size), rng)
                    draws = torch.as_tensor(draws).to(device)
                    running = torch.zeros((), device=device)
                    for step in range(steps_per_epoch):
                        if cfg.lr_schedule == "cosine":
                            t = (steps + step) / (budget * steps_per_epoch)
                            learning_rate = cfg.learning_rate * 0.5 * (1.0 + math.cos(math.pi * t))
                            for group in optimiser.param_groups:
                                group["lr"] = learning_rate
                        batch = x_train[draws[step]]
                        x_rec, mu, log_variance, _ = network(batch, generator=noise)
                        loss = elbo_loss(batch, x_rec, mu, log_variance, cfg.beta)
                        optimiser.zero_grad(set_to_none=True)
                        loss.backward()
                        optimiser.step()
                        running += loss.detach()
                    steps += steps_per_epoch
                    train_loss = float(running.item()) / steps_per_epoch
                    val_loss, mu_val = validation_pass()
                    if not math.isfinite(val_loss):
                        raise FloatingPointError(
                            f"VAE training diverged at epoch {epoch} (validation loss "
                            f"{val_loss}); lower learning_rate (now {cfg.learning_rate:g})"
                        )
                    history["train_loss"].append(train_loss)
                    history["validation_loss"].append(val_loss)
                    history["learning_rate"].append(learning_rate)
                    history["elapsed_s"].append(time.perf_counter() - started)
                    order_now = _order_summary(mu_val, x_val_np, w_val)
                    rank_corr = angle = None
                    if previous_order is not None:
                        rank_corr, angle = _order_change(previous_order, order_now, w_val)
                    previous_order = order_now
                    history["rank_correlation"].append(rank_corr)
                    history["direction_change_deg"].append(angle)
                    if val_loss < best_loss:
                        best_loss, best_epoch = val_loss, epoch
                        best_state = {
                            k: v.detach().clone() for k, v in network.state_dict().items()
                        }
                    # patience counts epochs without a *significant* improvement
                    if math.isinf(reference_loss) or val_loss < reference_loss - (
                        cfg.min_improvement * abs(reference_loss)
                    ):
                        reference_loss = val_loss
                        since_best = since_decay = 0
                    else:
                        since_best += 1
                        since_decay += 1
                    if bar is not None:
                        bar.set_postfix(val=f"{val_loss:.4f}")
                        bar.update(1)
                    if since_best >= cfg.patience:
                        stop_reason = "loss"
                        break
                    if (
                        cfg.stop_on_stable_order
                        and epoch >= first_order_check
                        and rank_corr is not None
                        and rank_corr >= cfg.stop_rank_correlation
                        and angle <= cfg.stop_angle_deg
                        and since_best > 0
                    ):
                        stop_reason = "stable order"
                        break
                    if (
                        cfg.lr_schedule == "plateau"
                        and since_decay >= cfg.lr_patience
                        and cfg.lr_decay < 1.0
                    ):
                        learning_rate *= cfg.lr_decay
                        for group in optimiser.param_groups:
                            group["lr"] = learning_rate
                        since_decay = 0
            finally:
                if bar is not None:
                    bar.close()

        if best_state is not None:
            network.load_state_dict(best_state)
        network.eval()
        with np.errstate(divide="ignore"):  # weight 0 -> -inf
            log_w_train = np.log(w_train)
        history.update(
            epochs=len(history["validation_loss"]),
            budget_epochs=budget,
            steps=steps,
            steps_per_epoch=steps_per_epoch,
            best_epoch=best_epoch,
            best_validation_loss=best_loss,
            stopped_early=stop_reason != "budget",
            stop_reason=stop_reason,
            warm_start=initial is not None,
            wall_time_s=time.perf_counter() - started,
            n_train=n_train,
            n_validation=n_val,
            effective_sample_size=effective_sample_size(log_w_train),
            device=str(device),
            seed=self.seed,
            intra_op_threads=torch.get_num_threads(),
        )
        self._model = VAEModel(network, cfg, mean, scale, history, device)
        return self


# --------------------------------------------------------------------------------------------
# helpers of fit: warm start, stable-order check
# --------------------------------------------------------------------------------------------

_INIT_LOCK = threading.Lock()


def _check_initial(initial: Any, n_features: int, cfg: VAEConfig) -> None:
    if not isinstance(initial, VAEModel):
        raise TypeError(f"initial must be a VAEModel. You supplied {type(initial).__name__}")
    mine = (n_features, cfg.hidden, cfg.activation)
    theirs = (initial.n_features, initial.config.hidden, initial.config.activation)
    if mine != theirs:
        raise ValueError(
            "initial must have the architecture being trained (n_features, hidden, "
            f"activation) = {mine}. You supplied a model with {theirs}"
        )


def _warm_network(initial: VAEModel, mean: np.ndarray, scale: np.ndarray) -> VAE:
    """A copy of ``initial``'s network computing, on inputs standardised with ``mean``/``scale``,
    what ``initial`` computes from the same raw order parameters (call under ``_INIT_LOCK``).

    With x_old = (s - m1)/s1 and x_new = (s - m2)/s2: x_old = x_new (s2/s1) + (m2 - m1)/s1, so the
    first encoder layer takes W (s2/s1) and b + W (m2 - m1)/s1, and the decoder's output maps back
    through (y - (m2 - m1)/s1) (s1/s2).
    """
    source = initial.network
    network = VAE(source.n_features, initial.config.hidden, initial.config.activation)
    network.load_state_dict({k: v.detach().to("cpu") for k, v in source.state_dict().items()})
    m1, s1 = np.asarray(initial.feature_mean), np.asarray(initial.feature_scale)
    ratio = torch.as_tensor(np.asarray(scale) / s1, dtype=torch.float32)
    shift = torch.as_tensor((np.asarray(mean) - m1) / s1, dtype=torch.float32)
    first, last = network.encoder[0], network.decoder[-1]
    with torch.no_grad():
        first.bias += first.weight @ shift
        first.weight *= ratio[None, :]
        last.bias -= shift
        last.bias /= ratio
        last.weight /= ratio[:, None]
    for p in network.parameters():
        p.requires_grad_(True)
    return network


def _order_summary(mu: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of the latent and the unit direction of its weighted linear fit on x."""
    ranks = np.empty(mu.shape[0])
    ranks[np.argsort(mu, kind="stable")] = np.arange(mu.shape[0])
    direction = least_squares_direction(x, mu, w)
    return ranks, np.zeros(x.shape[1]) if direction is None else direction


def _order_change(before, after, w: np.ndarray) -> tuple[float, float]:
    """Weighted rank correlation of two latents and the angle (degrees, sign-agnostic)
    between their linear-fit directions."""
    (r0, c0), (r1, c1) = before, after
    d0, d1 = r0 - w @ r0, r1 - w @ r1
    denominator = math.sqrt(float(w @ d0**2) * float(w @ d1**2))
    correlation = float(w @ (d0 * d1)) / denominator if denominator > 0 else 0.0
    cosine = min(1.0, abs(float(c0 @ c1)))
    return correlation, math.degrees(math.acos(cosine))


# --------------------------------------------------------------------------------------------
# several seeds at once
# --------------------------------------------------------------------------------------------


def fit_seeds(
    features: np.ndarray,
    seeds: list[int],
    config: VAEConfig = VAEConfig(),  # noqa: B008
    log_weights: np.ndarray | None = None,
    initial: list[VAEModel | None] | None = None,
    workers: int = 1,
    intra_op_threads: int | None = None,
    progress: bool | str = False,
    after_fit: Any = None,
) -> list[Any]:
    """Train one VAE per seed on the same frames, ``workers`` seeds at once (threads).

    Each seed has its own thread and generators, so it gives the model it gives alone with the same
    ``intra_op_threads`` (set while training, then restored). ``initial``: one warm-start model or
    None per seed. ``progress``: a bar per seed, a string prefixing its label. ``after_fit(index,
    model)`` runs in the worker right after a seed is trained and its return value replaces the
    model in the result (in the order of ``seeds``). ValueError for no seeds, ``initial`` of another
    length or ``workers`` < 1; a seed's error is raised after the other seeds have finished.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed. You supplied []")
    if initial is None:
        initial = [None] * len(seeds)
    if len(initial) != len(seeds):
        raise ValueError(
            f"initial must hold one entry per seed ({len(seeds)}). You supplied {len(initial)}"
        )
    if not _is_int(workers) or workers < 1:
        raise ValueError(f"workers must be an int >= 1. You supplied {workers!r}")
    x = _check_features(features)

    def job(index: int) -> Any:
        label = f"VAE seed {seeds[index]}" + (" (warm)" if initial[index] is not None else "")
        if isinstance(progress, str):
            label = f"{progress}: {label}"
        estimator = VAEEstimator(config, seed=seeds[index])
        model = estimator.fit(
            x, log_weights=log_weights, progress=label if progress else False,
            initial=initial[index],
        ).fetch_model()
        return after_fit(index, model) if after_fit is not None else model

    previous = torch.get_num_threads()
    if intra_op_threads is not None:
        torch.set_num_threads(int(intra_op_threads))
    try:
        if workers == 1 or len(seeds) == 1:
            return [job(i) for i in range(len(seeds))]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(workers, len(seeds)),
                                thread_name_prefix="rave-vae") as pool:
            futures = [pool.submit(job, i) for i in range(len(seeds))]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]
    finally:
        torch.set_num_threads(previous)
