"""Directions that see barriers: the most skewed and the most bimodal linear combinations of
order parameters, and the choice of the RC by the barrier F shows along each candidate.

Why. Round 0 of a campaign samples one basin. There the VAE's latent (like PCA or TICA) follows
the softest, slowest fluctuations, and where the slow mode of the system is stiffer inside the
basin than some harmonic directions (``rave.systems.mixed_slow_mode``: curvature 180 against
25 and 50 kJ/mol/nm^2) the learned RC is a harmonic direction: a bias along it flattens a
Gaussian and never leads over the barrier (docs/benchmarks.md). What does tell the slow
direction apart inside one basin is the anharmonicity of the well: along a direction that leads
toward a saddle the potential softens (a cubic term), so the Boltzmann distribution along it
is skewed toward the saddle, while along a harmonic direction it is symmetric
(docs/benchmarks.md compares the two on the mixed-slow-mode model).

What. :func:`skewed_direction` finds the unit ``c`` (raw order-parameter units, like every RC
here) that maximises the squared weighted skewness of ``chi = X @ c``. The search runs in
whitened coordinates ``y = W (x - mean)`` (``W`` the inverse square root of the weighted
covariance), where every direction has unit variance and the skewness of ``y . a`` is the cubic
form ``E[(y . a)^3]``; BFGS with its analytic gradient from several starts (the whitened axes,
seeded random directions, and any given directions). :func:`find_basins` splits a 1-D
free-energy profile (:func:`smoothed_free_energy`, a kernel estimate) into basins separated by
at least a given barrier and measures the highest barrier between them. Once the frames hold
two basins, :func:`bimodal_direction` (the least kurtosis, projection pursuit) finds the
direction that splits them, sharpened by Fisher's discriminant across its highest barrier
(:func:`separating_direction`). The estimator's ``rc_choice = "barrier"``
(``rave.learn.estimator.RAVE``) takes, of the VAE's RC, its latent's least-squares direction,
the bimodal and skewed directions and the previous RC, the one along which F shows the
highest barrier, and the VAE's RC while none shows two basins (:func:`choose_by_barrier`).
:func:`barrier_choice_sigma_deg` is the block-bootstrap uncertainty of that choice.

Limits. Skewness is a third moment: it needs independent samples (its standard error is about
``sqrt(6 / n)`` for ``n`` independent frames along one direction, and the maximum over
directions is biased up by the search), and order parameters that are nonlinear functions of
harmonic motion (the cosine of a stiff dihedral) are skewed without any barrier. So the
estimator makes it the RC only where F along it shows the highest barrier of the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.signal import find_peaks

from ..stats.bootstrap import block_resample
from ..stats.weights import as_log_weights, normalised_weights
from .coordinate import direction_angle_deg

__all__ = [
    "SkewedDirection",
    "weighted_skewness",
    "weighted_kurtosis",
    "skewed_direction",
    "bimodal_direction",
    "latent_direction",
    "Basins",
    "find_basins",
    "smoothed_free_energy",
    "BarrierChoice",
    "choose_by_barrier",
    "barrier_choice_sigma_deg",
    "TIE_ORDER",
]

#: Silverman's bandwidth is optimal for one Gaussian and blurs two basins: on 2,000 samples of
#: two unit Gaussians 4 apart (a 1.3 kT barrier) it found two basins in 5 of 20 data sets, this
#: fraction of it in 19 of 20
BANDWIDTH_FACTOR = 0.7
#: least share of the probability a basin holds (a bump in a sparse tail is none): with
#: BANDWIDTH_FACTOR, unimodal samples of 200 frames (Gaussian, gamma(2), Student t3) showed two
#: basins in 0, 5 and 8 of 200 data sets, of 400 frames in 0, 0, 3, of 2,000 in none
MIN_BASIN_FRACTION = 0.03

#: relative eigenvalue below which a direction of the covariance counts as constant (dropped)
_RANK_TOL = 1e-10


@dataclass(frozen=True)
class SkewedDirection:
    """The most skewed direction of weighted frames."""

    coefficients: np.ndarray
    skewness: float


def _weights(log_weights: np.ndarray | None, n: int) -> np.ndarray:
    return normalised_weights(n, log_weights=log_weights)


def _frames(X: np.ndarray) -> np.ndarray:
    x = np.asarray(X, dtype=float)
    if x.ndim != 2 or x.shape[0] < 3 or x.shape[1] < 1:
        raise ValueError(f"X must be 2-D with at least 3 frames and 1 column. You supplied "
                         f"shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"X contains {int((~np.isfinite(x)).sum())} NaN or inf value(s)")
    return x


def _standardised_moment(values: np.ndarray, log_weights: np.ndarray | None,
                         order: int) -> float | None:
    """``E[(v - m)^order] / E[(v - m)^2]^(order / 2)`` of weighted values; None when the
    coordinate is constant."""
    v = _frames(np.asarray(values, dtype=float).reshape(-1, 1))[:, 0]
    w = _weights(log_weights, len(v))
    d = v - w @ v
    m2 = float(w @ d ** 2)
    # a constant coordinate leaves only rounding in d (relative 1e-16 of |v|)
    if m2 <= (1e-12 * float(np.abs(v).max())) ** 2:
        return None
    return float(w @ d ** order) / m2 ** (order / 2)


def weighted_skewness(values: np.ndarray, log_weights: np.ndarray | None = None) -> float:
    """Weighted skewness ``E[(v - m)^3] / E[(v - m)^2]^(3/2)`` (the moment estimator).

    Raises ValueError: when ``values`` is not 1-D with at least 3 finite entries, or the log-weights
    are bad.
    """
    moment = _standardised_moment(values, log_weights, 3)
    return 0.0 if moment is None else moment


def _whitening(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whitened frames ``y = (x - mean) @ W`` (n, k), identity weighted covariance, and ``W``
    (d, k); k < d when some combination of the columns is constant. chi = y @ a is
    (x - mean) @ (W @ a): a whitened direction ``a`` is the raw direction ``W @ a``."""
    centred = x - w @ x
    cov = (centred * w[:, None]).T @ centred
    values, vectors = np.linalg.eigh(cov)
    keep = values > _RANK_TOL * max(float(values.max()), 0.0)
    if not keep.any():
        raise ValueError("X is constant (every order parameter the same in every frame): no "
                         "direction has a distribution")
    W = vectors[:, keep] / np.sqrt(values[keep])
    return centred @ W, W


def _objective(v: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """-(skewness)^2 of ``y @ v / |v|`` (unit-covariance y) and its gradient in v."""
    n2 = float(v @ v)
    t = y @ v
    m3 = float(w @ t ** 3)
    s = m3 / n2 ** 1.5
    ds = 3.0 * ((w * t ** 2) @ y) / n2 ** 1.5 - 3.0 * m3 * v / n2 ** 2.5
    return -s * s, -2.0 * s * ds


def _subset(n: int, max_frames: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a seeded subset of at most ``max_frames`` of ``n`` frames (all of
    them when None or n <= max_frames)."""
    if max_frames is None or n <= max_frames:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_frames, replace=False))


def _pursuit(x: np.ndarray, w: np.ndarray, objective, *, n_starts: int, seed,
             initial_directions: list[np.ndarray] | None,
             max_search_frames: int | None) -> np.ndarray:
    """The unit raw direction minimising ``objective`` (of a whitened direction, with its
    gradient) from the whitened axes, ``n_starts`` seeded random starts and the given raw
    directions: BFGS on a seeded subset of frames, the best polished on all."""
    n, d = x.shape
    if n_starts < 0:
        raise ValueError(f"n_starts must be >= 0. You supplied {n_starts}")
    y, W = _whitening(x, w)
    k = y.shape[1]
    starts = list(np.eye(k))
    rng = np.random.default_rng(seed)
    starts += list(rng.normal(size=(n_starts, k)))
    # a raw direction c has chi - mean = (x - mean) c = y (W^+ c): its whitened form
    pinv = np.linalg.pinv(W)
    for c in initial_directions or []:
        c = np.asarray(c, dtype=float)
        if c.shape != (d,):
            raise ValueError(f"initial directions must have shape ({d},). You supplied {c.shape}")
        a = pinv @ c
        if np.linalg.norm(a) > 0:
            starts.append(a)
    # the multi-start search on a seeded subset, the best start polished on every frame
    scan = _subset(n, max_search_frames, rng)
    y_scan, w_scan = y[scan], w[scan] / w[scan].sum()
    best_f, best_v = np.inf, None
    for v0 in starts:
        v0 = np.asarray(v0, dtype=float) / np.linalg.norm(v0)
        result = minimize(objective, v0, args=(y_scan, w_scan), jac=True, method="BFGS",
                          options={"gtol": 1e-8, "maxiter": 200})
        if np.isfinite(result.fun) and result.fun < best_f and np.linalg.norm(result.x) > 0:
            best_f, best_v = float(result.fun), result.x
    if best_v is None:
        raise ValueError("no direction could be fitted (the frames' moments are not finite)")
    if len(scan) < n:
        result = minimize(objective, best_v / np.linalg.norm(best_v), args=(y, w), jac=True,
                          method="BFGS", options={"gtol": 1e-8, "maxiter": 200})
        if np.isfinite(result.fun) and np.linalg.norm(result.x) > 0:
            best_v = result.x
    c = W @ (best_v / np.linalg.norm(best_v))
    return c / np.linalg.norm(c)


def _kurtosis_objective(v: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    """Kurtosis E[t^4] of ``t = y @ v / |v|`` (unit-covariance y) and its gradient in v."""
    n2 = float(v @ v)
    t = y @ v
    m4 = float(w @ t ** 4)
    return m4 / n2 ** 2, 4.0 * ((w * t ** 3) @ y) / n2 ** 2 - 4.0 * m4 * v / n2 ** 3


def weighted_kurtosis(values: np.ndarray, log_weights: np.ndarray | None = None) -> float:
    """Weighted kurtosis ``E[(v - m)^4] / E[(v - m)^2]^2`` (3 for a Gaussian, 1 for two
    equal point masses).
    """
    moment = _standardised_moment(values, log_weights, 4)
    return float("nan") if moment is None else moment


def latent_direction(X: np.ndarray, latent: np.ndarray,
                     log_weights: np.ndarray | None = None) -> np.ndarray:
    """The weighted least-squares direction of a latent: the unit ``c`` of ``latent ~ a + X c``."""
    x = _frames(X)
    z = np.asarray(latent, dtype=float).ravel()
    if z.shape != (len(x),) or not np.isfinite(z).all():
        raise ValueError(f"latent must hold one finite value per frame ({len(x)}). You "
                         f"supplied shape {z.shape}")
    w = _weights(log_weights, len(x))
    xc, zc = x - w @ x, z - w @ z
    root = np.sqrt(w)[:, None]
    c, *_ = np.linalg.lstsq(xc * root, zc * root[:, 0], rcond=None)
    norm = float(np.linalg.norm(c))
    return np.eye(x.shape[1])[0] if norm == 0 else c / norm


def bimodal_direction(
    X: np.ndarray,
    log_weights: np.ndarray | None = None,
    *,
    n_starts: int = 12,
    seed: int | list[int] = 0,
    initial_directions: list[np.ndarray] | None = None,
    max_search_frames: int | None = 10_000,
) -> np.ndarray:
    """The unit direction ``c`` of the lowest weighted kurtosis of ``X @ c``: the most bimodal
    linear combination (projection pursuit; two separated basins make a distribution flatter
    than a Gaussian, kurtosis toward 1, while one basin's is near 3 or above).

    Raises ValueError: as :func:`skewed_direction`.
    """
    x = _frames(X)
    w = _weights(log_weights, len(x))
    c = _pursuit(x, w, _kurtosis_objective, n_starts=n_starts, seed=seed,
                 initial_directions=initial_directions, max_search_frames=max_search_frames)
    return c if c[np.argmax(np.abs(c))] > 0 else -c


def separating_direction(X: np.ndarray, log_weights: np.ndarray | None,
                         coefficients: np.ndarray, basins: Basins,
                         grid: np.ndarray) -> np.ndarray | None:
    """The direction that best separates the two sides of the highest barrier along
    ``coefficients``: Fisher's discriminant, ``S_w^-1 (m_right - m_left)``, of the frames on
    either side of the barrier (weighted means, pooled within-side covariance).
    """
    if basins.count < 2:
        return None
    x = _frames(X)
    w = _weights(log_weights, len(x))
    _, f = smoothed_free_energy(x @ coefficients, log_weights, len(grid))
    pairs = list(zip(basins.minima[:-1], basins.minima[1:], strict=True))
    gaps = [float(f[a:b + 1].max()) - max(f[a], f[b]) for a, b in pairs]
    a, b = pairs[int(np.argmax(gaps))]
    cut = grid[a + int(np.argmax(f[a:b + 1]))]
    right = x @ coefficients > cut
    sides = []
    for mask in (~right, right):
        total = float(w[mask].sum())
        if total <= 0:
            return None
        mean = (w[mask] @ x[mask]) / total
        centred = x[mask] - mean
        sides.append((mean, (centred * w[mask][:, None]).T @ centred))
    pooled = sides[0][1] + sides[1][1]
    c = np.linalg.lstsq(pooled, sides[1][0] - sides[0][0], rcond=None)[0]
    norm = float(np.linalg.norm(c))
    if not norm > 0:
        return None
    c = c / norm
    return c if c @ coefficients >= 0 else -c


def skewed_direction(
    X: np.ndarray,
    log_weights: np.ndarray | None = None,
    *,
    n_starts: int = 12,
    seed: int | list[int] = 0,
    initial_directions: list[np.ndarray] | None = None,
    reference: np.ndarray | None = None,
    max_search_frames: int | None = 10_000,
) -> SkewedDirection:
    """The unit direction ``c`` of the largest weighted |skewness| of ``X @ c``.

    Raises ValueError: when X is not 2-D with >= 3 finite frames, is constant, a starting direction
    has the wrong length, or ``n_starts`` < 0.
    """
    x = _frames(X)
    w = _weights(log_weights, len(x))
    c = _pursuit(x, w, _objective, n_starts=n_starts, seed=seed,
                 initial_directions=initial_directions, max_search_frames=max_search_frames)
    skew = weighted_skewness(x @ c, None if log_weights is None else log_weights)
    if reference is not None:
        flip = float(c @ np.asarray(reference, dtype=float)) < 0
    else:
        flip = skew < 0
    if flip:
        c, skew = -c, -skew
    return SkewedDirection(coefficients=c, skewness=float(skew))


@dataclass(frozen=True)
class Basins:
    """Basins of a 1-D free-energy profile (:func:`find_basins`)."""

    minima: np.ndarray
    barrier_kT: float

    @property
    def count(self) -> int:
        """int: number of basins."""
        return int(len(self.minima))


def find_basins(free_energy: np.ndarray, barrier_kT: float, max_kT: float = 6.0,
                min_fraction: float = MIN_BASIN_FRACTION) -> Basins:
    """Basins of a 1-D free-energy profile: minima no higher than ``max_kT`` above the lowest,
    each separated from its neighbours by a barrier of at least ``barrier_kT`` and holding at
    least ``min_fraction`` of the probability.

    Raises ValueError: when ``barrier_kT`` is not > 0, ``max_kT`` not above it, ``min_fraction``
    outside [0, 1), or the profile not 1-D.
    """
    if not (np.isfinite(barrier_kT) and barrier_kT > 0):
        raise ValueError(f"barrier_kT must be a finite number > 0. You supplied {barrier_kT}")
    if not (np.isfinite(max_kT) and max_kT > barrier_kT):
        raise ValueError(f"max_kT must be finite and > barrier_kT ({barrier_kT}). You supplied "
                         f"{max_kT}")
    if not 0.0 <= min_fraction < 1.0:
        raise ValueError(f"min_fraction must be in [0, 1). You supplied {min_fraction}")
    f = np.asarray(free_energy, dtype=float)
    if f.ndim != 1:
        raise ValueError(f"free_energy must be 1-D. You supplied shape {f.shape}")
    finite = np.isfinite(f)
    if not finite.any():
        return Basins(np.zeros(0, dtype=int), 0.0)
    h = np.where(finite, f - f[finite].min(), np.inf)
    # local minima (a plateau gives its middle point), the ends counting as high ground
    padded = np.concatenate([[np.inf], h, [np.inf]])
    lows = find_peaks(-np.where(np.isfinite(padded), padded, 1e300))[0] - 1
    minima = [int(i) for i in lows if h[i] <= max_kT]

    def separation(a: int, b: int) -> float:
        return float(h[a:b + 1].max()) - max(h[a], h[b])

    while len(minima) > 1:
        gaps = [separation(a, b) for a, b in zip(minima[:-1], minima[1:], strict=True)]
        k = int(np.argmin(gaps))
        if gaps[k] >= barrier_kT:
            break
        a, b = minima[k], minima[k + 1]
        minima.remove(a if h[a] > h[b] else b)
    if len(minima) > 1 and min_fraction > 0:
        bounds = ([0] + [a + int(np.argmax(h[a:b + 1]))
                         for a, b in zip(minima[:-1], minima[1:], strict=True)] + [len(h)])
        p = np.exp(-h)
        mass = np.array([p[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
        kept = [m for m, share in zip(minima, mass / p.sum(), strict=True)
                if share >= min_fraction]
        minima = kept or [minima[int(np.argmax(mass))]]
    barrier = max((separation(a, b) for a, b in zip(minima[:-1], minima[1:], strict=True)),
                  default=0.0)
    return Basins(np.asarray(minima, dtype=int), float(barrier))


def smoothed_free_energy(values: np.ndarray, log_weights: np.ndarray | None = None,
                         n_grid: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """F(v) in kT from a weighted Gaussian kernel density estimate, minimum 0.

    Raises ValueError: when ``values`` has fewer than 3 finite entries or ``n_grid`` < 3.
    """
    v = _frames(np.asarray(values, dtype=float).reshape(-1, 1))[:, 0]
    if n_grid < 3:
        raise ValueError(f"n_grid must be >= 3. You supplied {n_grid}")
    w = _weights(log_weights, len(v))
    grid = np.linspace(v.min(), v.max(), n_grid)
    sd = float(np.sqrt(w @ (v - w @ v) ** 2))
    order = np.argsort(v)
    cdf = np.cumsum(w[order])
    q1, q3 = np.interp([0.25, 0.75], cdf - 0.5 * w[order], v[order])
    spread = min(sd, (q3 - q1) / 1.34) if q3 > q1 else sd
    if spread <= 0:
        return grid, np.zeros(n_grid)
    h = BANDWIDTH_FACTOR * 0.9 * spread * (1.0 / float(w @ w)) ** -0.2
    log_kernel = -0.5 * ((grid[:, None] - v[None, :]) / h) ** 2
    with np.errstate(divide="ignore"):
        log_w = np.log(w)
    top = (log_kernel + log_w).max(axis=1)
    log_density = top + np.log(np.exp(log_kernel + log_w - top[:, None]).sum(axis=1))
    f = -log_density
    return grid, f - f.min()




#: order in which tied candidates win (:func:`choose_by_barrier`): the previous RC first (the
#: RC does not turn without cause), then the most bimodal direction (fitted to split basins)
TIE_ORDER = ("previous", "bimodal", "vae", "latent", "skew")
#: candidates fitted by :func:`choose_by_barrier` itself
FITTED = ("skew", "bimodal")


@dataclass(frozen=True)
class BarrierChoice:
    """The RC chosen by :func:`choose_by_barrier`."""

    source: str
    coefficients: np.ndarray
    candidates: dict
    basins: dict
    skewed: SkewedDirection


def choose_by_barrier(
    X: np.ndarray,
    log_weights: np.ndarray | None,
    candidates: dict,
    *,
    barrier_kT: float = 0.75,
    tie_kT: float = 0.5,
    seed: int | list[int] = 0,
    n_starts: int = 12,
    max_frames: int | None = 10_000,
) -> BarrierChoice:
    """Of the given directions, the most bimodal one (:func:`bimodal_direction`) and the most
    skewed one, the one along which F shows the highest barrier between basins; while none
    shows two basins, the VAE's RC ("vae", where given), else the skewed direction.

    Raises ValueError: bad frames or log-weights, a candidate of the wrong shape or named "skew" or
    "bimodal".
    """
    x = _frames(X)
    taken = [name for name in FITTED if name in candidates]
    if taken:
        raise ValueError(f"a candidate may not be named {taken[0]!r}: that one is fitted here")
    rng = np.random.default_rng(seed)
    take = _subset(len(x), max_frames, rng)
    xs = x[take]
    lw = None if log_weights is None else as_log_weights(log_weights, len(x), like="X")[take]
    directions = {}
    for name, c in candidates.items():
        c = np.asarray(c, dtype=float)
        if c.shape != (x.shape[1],) or not np.isfinite(c).all() or not np.linalg.norm(c) > 0:
            raise ValueError(f"candidate {name!r} must be a finite nonzero vector of shape "
                             f"({x.shape[1]},). You supplied {c!r}")
        directions[name] = c / np.linalg.norm(c)
    given = list(directions.values())
    skewed = skewed_direction(xs, lw, n_starts=n_starts, seed=seed,
                              initial_directions=given,
                              reference=directions.get("previous", directions.get("vae")),
                              max_search_frames=None)
    directions["skew"] = skewed.coefficients
    bimodal = bimodal_direction(xs, lw, n_starts=n_starts, seed=seed,
                                initial_directions=given, max_search_frames=None)
    grid, f = smoothed_free_energy(xs @ bimodal, lw)
    split = separating_direction(xs, lw, bimodal, find_basins(f, barrier_kT), grid)
    directions["bimodal"] = bimodal if split is None else split
    basins = {name: find_basins(smoothed_free_energy(xs @ c, lw)[1], barrier_kT)
              for name, c in directions.items()}
    highest = max(b.barrier_kT for b in basins.values())
    if highest <= 0:
        source = "vae" if "vae" in directions else "skew"
    else:
        order = [n for n in TIE_ORDER if n in basins] + [n for n in basins if n not in TIE_ORDER]
        source = next(n for n in order if basins[n].count > 1
                      and basins[n].barrier_kT >= highest - tie_kT)
    return BarrierChoice(source, directions[source], directions, basins, skewed)


def barrier_choice_sigma_deg(X: np.ndarray, log_weights: np.ndarray | None, candidates: dict,
                             coefficients: np.ndarray, replicates: int, seed: int, *,
                             n_blocks: int = 20, **choice) -> float:
    """Block-bootstrap uncertainty (degrees) of the RC that :func:`choose_by_barrier` gives.

    Raises ValueError: when ``replicates`` < 2.
    """
    if replicates < 2:
        raise ValueError(f"replicates must be >= 2. You supplied {replicates}")
    x = _frames(X)
    lw = None if log_weights is None else as_log_weights(log_weights, len(x), like="X")
    rng = np.random.default_rng(seed)
    n_blocks = min(n_blocks, len(x))
    angles = []
    for r in range(replicates):
        take = block_resample(len(x), n_blocks, rng)
        pick = choose_by_barrier(x[take], None if lw is None else lw[take], candidates,
                                 seed=seed + r, **choice)
        angles.append(direction_angle_deg(pick.coefficients, coefficients))
    return float(np.sqrt(np.mean(np.square(angles))))
