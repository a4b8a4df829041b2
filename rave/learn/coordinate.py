"""Linear reaction coordinate from a VAE latent by KL matching (RAVE step 2).

The reaction coordinate (RC) is ``chi = sum_i c_i s_i`` over the *raw* order parameters
``s`` (in their own units), with ``|c| = 1``. ``c`` is chosen so that the weighted distribution
of ``chi`` looks most like the weighted distribution of the VAE latent mean ``mu``:

    ``c = argmin_c KL(P || Q_c) = sum_b P_b ln(P_b / Q_c,b)``,

``P`` the histogram of the latent, ``Q_c`` the histogram of ``chi = s . c``, both on ``[0, 1]``
after a robust rescaling (below), with the same per-frame weights.

Choices made here (and why)
---------------------------
* **Robust rescaling.** Each quantity is mapped to ``[0, 1]`` by sending its weighted 0.5 % and
  99.5 % quantiles to 0 and 1 and clipping (``robust_unit_scale``). Min-max scaling is at the
  mercy of a single outlier in the latent or in chi, which squeezes everything else into a few
  bins and makes the chosen direction jump between rounds. Clipped frames pile up in the two
  edge bins; they do so for both histograms alike.
* **Empty bins.** Both histograms get a pseudocount ``pseudocount`` (default ``1e-6``
  probability per bin) and are renormalised: ``P <- (P + eps) / (1 + n_bins eps)``, same for
  Q. A bin where P has mass and Q has none costs ``P_b ln(P_b / eps)`` (finite, large).
* **Search.** ``c`` and ``-c`` give mirrored histograms, so both signs are scanned: in 2-D the
  full circle (``n_directions`` equally spaced angles, default 360), in d >= 3 a quasi-uniform
  grid over the full sphere (a Fibonacci grid on one hemisphere plus its mirror image in 3-D,
  seeded random directions plus mirror images in d >= 4), then Nelder-Mead in the tangent plane
  (``c = normalise(c0 + B u)``) from the ``n_starts`` best grid points, on all frames.
* **Sign.** The returned ``c`` is the KL-matched orientation: chi's histogram matches the
  latent's *without* mirroring, i.e. chi increases with the latent. The latent's own sign is
  arbitrary (it depends on the VAE seed), so to compare RCs across models or rounds use
  ``align_sign(c, reference)``, or ``align_sign(c)`` for the canonical sign (largest ``|c_i|``
  positive), or the sign-agnostic ``direction_angle_deg``.

Public API
----------
``CoordinateResult``, ``fit_coordinate``, ``kl_divergence_histograms``, ``robust_unit_scale``,
``weighted_quantile``, ``select_models``, ``NoValidModelError``, ``align_sign``,
``direction_angle_deg``, ``sphere_directions``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from ..stats.weights import as_log_weights, as_weights

__all__ = [
    "CoordinateResult",
    "NoValidModelError",
    "fit_coordinate",
    "kl_divergence_histograms",
    "robust_unit_scale",
    "weighted_quantile",
    "select_models",
    "choose_coordinate",
    "least_squares_direction",
    "align_sign",
    "direction_angle_deg",
    "sphere_directions",
]

logger = logging.getLogger(__name__)

DEFAULT_BINS = 50
DEFAULT_LOWER_QUANTILE = 0.005
DEFAULT_UPPER_QUANTILE = 0.995
DEFAULT_PSEUDOCOUNT = 1e-6


@dataclass(frozen=True)
class CoordinateResult:
    """A fitted linear reaction coordinate ``chi = features @ coefficients``."""

    coefficients: np.ndarray
    kl_divergence: float
    directions: np.ndarray
    kl_landscape: np.ndarray


class NoValidModelError(ValueError):
    """Raised by ``select_models`` when no model's KL is at or below the threshold."""


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _as_values(values: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D, shape (n_frames,). You supplied shape {v.shape}")
    if v.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.isfinite(v).all():
        raise ValueError(
            f"{name} contains {int((~np.isfinite(v)).sum())} NaN or inf value(s); all must be "
            "finite"
        )
    return v


def _as_weights(weights: np.ndarray | None, n: int, name: str = "weights") -> np.ndarray:
    return np.ones(n) if weights is None else as_weights(weights, n, name=name)


def _weights_from_log(log_weights: np.ndarray | None, n: int) -> np.ndarray:
    if log_weights is None:
        return np.ones(n)
    lw = as_log_weights(log_weights, n, like="features")
    return np.exp(lw - lw.max())


def _check_quantiles(lower: float, upper: float) -> None:
    if not (0.0 <= lower < upper <= 1.0):
        raise ValueError(
            "quantiles must satisfy 0 <= lower_quantile < upper_quantile <= 1. You supplied "
            f"lower_quantile={lower}, upper_quantile={upper}"
        )


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or int(bins) != bins or bins < 2:
        raise ValueError(f"bins must be an integer >= 2. You supplied {bins!r}")
    return int(bins)


def _as_direction(c: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(c, dtype=float)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"{name} must be a 1-D vector of shape (d,). You supplied {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} must be finite. You supplied {v.tolist()}")
    if not np.linalg.norm(v) > 0:
        raise ValueError(f"{name} must be nonzero")
    return v


# --------------------------------------------------------------------------------------------
# histogram helpers
# --------------------------------------------------------------------------------------------


def weighted_quantile(
    values: np.ndarray, weights: np.ndarray | None, q: float | np.ndarray
) -> float | np.ndarray:
    """Quantile(s) of a weighted sample.

    Raises ValueError: when a level of ``q`` is not finite or outside [0, 1] (and for invalid
    ``values`` or ``weights``).
    """
    v = _as_values(values, "values")
    w = _as_weights(weights, v.size)
    qa = np.asarray(q, dtype=float)
    if not np.isfinite(qa).all() or (qa < 0).any() or (qa > 1).any():
        raise ValueError(f"q must lie in [0, 1]. You supplied {q!r}")
    keep = w > 0
    v, w = v[keep], w[keep]
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    cw = np.cumsum(w)
    pos = (cw - 0.5 * w) / cw[-1]
    out = np.interp(qa, pos, v)
    return float(out) if np.ndim(out) == 0 else out


#: Below this many values the tail quantiles come from a full sort; above, from a coarse
#: histogram that locates them and a sort of the few values around them (same result).
_SORT_BELOW = 4096
#: Bins of that coarse histogram.
_LOCATE_BINS = 1024


def _quantile_pair_sorted(
    v: np.ndarray, w: np.ndarray, lower: float, upper: float
) -> tuple[float, float]:
    order = np.argsort(v)
    vs, ws = v[order], w[order]
    cw = np.cumsum(ws)
    pos = (cw - 0.5 * ws) / cw[-1]
    lo, hi = np.interp([lower, upper], pos, vs)
    return float(lo), float(hi)


def _quantile_pair(v: np.ndarray, w: np.ndarray, lower: float, upper: float) -> tuple[float, float]:
    """Fast core of weighted_quantile for two levels on validated input (w >= 0, zeros allowed)."""
    if not (w > 0).all():
        keep = w > 0
        v, w = v[keep], w[keep]
    n = v.size
    lo_v, hi_v = float(v.min()), float(v.max())
    if n <= _SORT_BELOW or not hi_v > lo_v:
        return _quantile_pair_sorted(v, w, lower, upper)
    bins = _LOCATE_BINS
    idx = ((v - lo_v) * (bins / (hi_v - lo_v))).astype(np.int64)
    np.minimum(idx, bins - 1, out=idx)
    cw = np.cumsum(np.bincount(idx, weights=w, minlength=bins))
    occupied = np.flatnonzero(np.bincount(idx, minlength=bins))
    total = cw[-1]
    out = []
    for q in (lower, upper):
        b = min(int(np.searchsorted(cw, q * total)), bins - 1)
        at = int(np.searchsorted(occupied, b))
        first = int(occupied[max(at - 1, 0)])
        last = int(occupied[min(at + (1 if at < occupied.size and occupied[at] == b else 0),
                                occupied.size - 1)])
        mask = (idx >= first) & (idx <= last)
        vs, ws = v[mask], w[mask]
        order = np.argsort(vs)
        vs, ws = vs[order], ws[order]
        base = cw[first - 1] if first > 0 else 0.0
        pos = (base + np.cumsum(ws) - 0.5 * ws) / total
        out.append(float(np.interp(q, pos, vs)))
    return out[0], out[1]


def _unit_scale(v: np.ndarray, w: np.ndarray, lower: float, upper: float) -> np.ndarray:
    lo, hi = _quantile_pair(v, w, lower, upper)
    if not hi > lo:
        # the central mass is a single value: fall back to the full weighted range
        nz = v[w > 0]
        lo, hi = float(nz.min()), float(nz.max())
    if not hi > lo:
        return np.full(v.shape, 0.5)
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0)


def robust_unit_scale(
    values: np.ndarray,
    weights: np.ndarray | None = None,
    lower_quantile: float = DEFAULT_LOWER_QUANTILE,
    upper_quantile: float = DEFAULT_UPPER_QUANTILE,
) -> np.ndarray:
    """Map values to ``[0, 1]`` by their weighted quantiles, clipping the tails."""
    v = _as_values(values, "values")
    w = _as_weights(weights, v.size)
    _check_quantiles(lower_quantile, upper_quantile)
    return _unit_scale(v, w, lower_quantile, upper_quantile)


def _unit_histogram(scaled: np.ndarray, w: np.ndarray, bins: int, eps: float) -> np.ndarray:
    """Regularised probability histogram of values in [0, 1] with ``bins`` equal bins."""
    idx = np.minimum((scaled * bins).astype(np.int64), bins - 1)
    h = np.bincount(idx, weights=w, minlength=bins)
    h = h / h.sum()
    return (h + eps) / (1.0 + bins * eps)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(p * np.log(p / q)))


def kl_divergence_histograms(
    p_values: np.ndarray,
    q_values: np.ndarray,
    weights: np.ndarray | None = None,
    bins: int = DEFAULT_BINS,
    lower_quantile: float = DEFAULT_LOWER_QUANTILE,
    upper_quantile: float = DEFAULT_UPPER_QUANTILE,
    pseudocount: float = DEFAULT_PSEUDOCOUNT,
) -> float:
    """``KL(P || Q)`` between the weighted histograms of two per-frame quantities.

    Raises ValueError: when ``p_values`` and ``q_values`` differ in shape, or ``pseudocount`` is not
    a finite number > 0 (and for invalid values, weights, bins or quantiles).
    """
    p = _as_values(p_values, "p_values")
    q = _as_values(q_values, "q_values")
    if p.shape != q.shape:
        raise ValueError(
            f"p_values and q_values must have the same shape. You supplied {p.shape} and {q.shape}"
        )
    w = _as_weights(weights, p.size)
    bins = _check_bins(bins)
    _check_quantiles(lower_quantile, upper_quantile)
    if not (np.isfinite(pseudocount) and pseudocount > 0):
        raise ValueError(f"pseudocount must be finite and > 0. You supplied {pseudocount}")
    hp = _unit_histogram(_unit_scale(p, w, lower_quantile, upper_quantile), w, bins, pseudocount)
    hq = _unit_histogram(_unit_scale(q, w, lower_quantile, upper_quantile), w, bins, pseudocount)
    return _kl(hp, hq)


# --------------------------------------------------------------------------------------------
# direction grids and geometry
# --------------------------------------------------------------------------------------------


def sphere_directions(d: int, n_directions: int, seed: int = 0) -> np.ndarray:
    """A quasi-uniform grid of unit vectors over the full sphere in ``R^d``, closed under ``-c``.

    Raises ValueError: when ``d`` is not an integer >= 1 or ``n_directions`` not an integer >= 2.
    """
    if int(d) != d or d < 1:
        raise ValueError(f"d must be an integer >= 1. You supplied {d!r}")
    if int(n_directions) != n_directions or n_directions < 2:
        raise ValueError(f"n_directions must be an integer >= 2. You supplied {n_directions!r}")
    d, half = int(d), (int(n_directions) + 1) // 2
    if d == 1:
        hemi = np.ones((1, 1))
    elif d == 2:
        theta = np.pi * np.arange(half) / half
        hemi = np.column_stack([np.cos(theta), np.sin(theta)])
    elif d == 3:
        i = np.arange(half)
        z = 1.0 - (i + 0.5) / half  # uniform in z on (0, 1): equal area on the hemisphere
        r = np.sqrt(1.0 - z**2)
        phi = i * np.pi * (3.0 - np.sqrt(5.0))  # golden angle
        hemi = np.column_stack([r * np.cos(phi), r * np.sin(phi), z])
    else:
        g = np.random.default_rng(seed).standard_normal((half, d))
        hemi = g / np.linalg.norm(g, axis=1, keepdims=True)
    return np.concatenate([hemi, -hemi])


def _grid_spacing_rad(d: int, n: int) -> float:
    """Typical angular spacing of an ``n``-point full-sphere grid in ``R^d`` (radians)."""
    if d <= 1:
        return 0.0
    if d == 2:
        return 2.0 * np.pi / n
    # area of the unit (d-1)-sphere shared by n points, side of that patch
    from scipy.special import gammaln

    log_area = np.log(2.0) + 0.5 * d * np.log(np.pi) - gammaln(0.5 * d)
    return float(np.exp((log_area - np.log(n)) / (d - 1)))


def align_sign(c: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Flip ``c`` so its sign is comparable across models and rounds (an RC's sign is arbitrary).

    Raises ValueError: when ``c`` or ``reference`` is not a finite nonzero 1-D vector, or their
    shapes differ.
    """
    v = _as_direction(c, "c")
    if reference is not None:
        r = _as_direction(reference, "reference")
        if r.shape != v.shape:
            raise ValueError(
                f"reference must have the shape of c {v.shape}. You supplied {r.shape}"
            )
        dot = float(v @ r)
        if dot != 0.0:
            return -v if dot < 0 else v.copy()
    return -v if v[int(np.argmax(np.abs(v)))] < 0 else v.copy()


def direction_angle_deg(c1: np.ndarray, c2: np.ndarray) -> float:
    """Sign-agnostic angle between two RC directions, in degrees in ``[0, 90]``.

    ``c`` and ``-c`` define the same RC, so the angle is that between the lines; computed
    with ``atan2`` so it stays accurate for nearly parallel vectors.

    Raises ValueError: when either is not a finite nonzero 1-D vector, or their shapes differ.
    """
    a = _as_direction(c1, "c1")
    b = _as_direction(c2, "c2")
    if a.shape != b.shape:
        raise ValueError(
            f"c1 and c2 must have the same shape. You supplied {a.shape} and {b.shape}"
        )
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    cos = abs(float(a @ b))
    sin = float(np.linalg.norm(b - (a @ b) * a))
    return float(np.degrees(np.arctan2(sin, cos)))


# --------------------------------------------------------------------------------------------
# the fit
# --------------------------------------------------------------------------------------------

#: Largest first step of the local optimisation (radians): the grid spacing, capped here
#: because in high d the grid is too sparse for its spacing to be a useful first step.
_LOCAL_STEP_RAD = 0.2
#: Nelder-Mead's tolerance on the tangent-plane coordinates (radians, ~0.03 degrees): finer
#: than any angle the histogram KL can resolve.
_XATOL_RAD = 5e-4


#: relative spread below which a latent counts as constant
CONSTANT_RTOL = 1e-12


def least_squares_direction(x: np.ndarray, z: np.ndarray, w: np.ndarray) -> np.ndarray | None:
    """Unit c of the weighted least-squares fit z ~ x c + b, oriented to increase with z; None
    when z does not vary (a constant z fitted by round-off would give an arbitrary direction)."""
    if np.ptp(z) <= CONSTANT_RTOL * max(1.0, float(np.max(np.abs(z)))):
        return None
    root = np.sqrt(w)
    design = np.hstack([x, np.ones((x.shape[0], 1))]) * root[:, None]
    c = np.linalg.lstsq(design, z * root, rcond=None)[0][:-1]
    norm = np.linalg.norm(c)
    return c / norm if np.isfinite(norm) and norm > 0 else None


class _KLObjective:
    """KL(P_latent || Q_chi(c)) for fixed frames, weights and latent histogram."""

    def __init__(
        self,
        features: np.ndarray,
        latent: np.ndarray,
        w: np.ndarray,
        bins: int,
        lower: float,
        upper: float,
        eps: float,
    ) -> None:
        self.features = features
        self.w = w
        self.bins, self.lower, self.upper, self.eps = bins, lower, upper, eps
        self.p = _unit_histogram(_unit_scale(latent, w, lower, upper), w, bins, eps)
        self.p_mirror = self.p[::-1]

    def q(self, c: np.ndarray) -> np.ndarray:
        # einsum, not BLAS: OpenBLAS's threads busy-wait for each other, and a matrix-vector
        # product this small took 8 ms instead of 0.6 ms with another process on a core
        chi = np.einsum("ij,j->i", self.features, c)
        return _unit_histogram(
            _unit_scale(chi, self.w, self.lower, self.upper), self.w, self.bins, self.eps
        )

    def both_signs(self, c: np.ndarray) -> tuple[float, float]:
        """KL at ``c`` and at ``-c`` from one histogram (the mirror quantiles are symmetric)."""
        q = self.q(c)
        # Q(-c) is Q(c) reversed, and KL(P || rev Q) = KL(rev P || Q)
        return _kl(self.p, q), _kl(self.p_mirror, q)

    def __call__(self, c: np.ndarray) -> float:
        return _kl(self.p, self.q(c))


def _tangent_basis(c: np.ndarray) -> np.ndarray:
    """Orthonormal basis (d, d-1) of the plane orthogonal to unit vector ``c``."""
    d = c.size
    # QR of [c, I] gives an orthonormal basis whose first vector is +-c
    q, _ = np.linalg.qr(np.column_stack([c, np.eye(d)]))
    return q[:, 1:d]


def fit_coordinate(
    features: np.ndarray,
    latent: np.ndarray,
    log_weights: np.ndarray | None = None,
    bins: int = DEFAULT_BINS,
    n_directions: int | None = None,
    seed: int = 0,
    *,
    lower_quantile: float = DEFAULT_LOWER_QUANTILE,
    upper_quantile: float = DEFAULT_UPPER_QUANTILE,
    pseudocount: float = DEFAULT_PSEUDOCOUNT,
    n_starts: int = 3,
    max_scan_frames: int | None = 50_000,
    initial_directions: Sequence[np.ndarray] | None = None,
) -> CoordinateResult:
    """Fit the linear RC ``chi = features @ c`` whose distribution best matches the latent's.

    Minimises ``KL(P_latent || Q_chi)`` (see ``kl_divergence_histograms``) over unit vectors ``c``:
    a grid over the full sphere (both signs), then Nelder-Mead in the tangent plane of the
    ``n_starts`` best grid points; the best of all is returned. ValueError for features not a finite
    2-D array of >= 2 frames, a latent not one value per frame, ``pseudocount`` not finite > 0,
    ``n_starts`` < 1, ``max_scan_frames`` not None or >= 2, or invalid weights, quantiles or bins.
    """
    x = np.asarray(features, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D, shape (n_frames, d). You supplied shape {x.shape}")
    n, d = x.shape
    if n < 2 or d < 1:
        raise ValueError(
            f"features need at least 2 frames and 1 order parameter. You supplied shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise ValueError(
            f"features contains {int((~np.isfinite(x)).sum())} NaN or inf value(s); all must be "
            "finite"
        )
    z = _as_values(latent, "latent")
    if z.shape != (n,):
        raise ValueError(
            f"latent must have shape ({n},), one value per frame of features. You supplied "
            f"{z.shape}"
        )
    w = _weights_from_log(log_weights, n)
    bins = _check_bins(bins)
    _check_quantiles(lower_quantile, upper_quantile)
    if not (np.isfinite(pseudocount) and pseudocount > 0):
        raise ValueError(f"pseudocount must be finite and > 0. You supplied {pseudocount}")
    if isinstance(n_starts, bool) or int(n_starts) != n_starts or n_starts < 1:
        raise ValueError(f"n_starts must be an integer >= 1. You supplied {n_starts!r}")
    if n_directions is None:
        n_directions = {1: 2, 2: 360, 3: 2000}.get(d, 300 * d)
    if max_scan_frames is not None and (
        int(max_scan_frames) != max_scan_frames or max_scan_frames < 2
    ):
        raise ValueError(
            f"max_scan_frames must be None or an integer >= 2. You supplied {max_scan_frames!r}"
        )

    full = _KLObjective(x, z, w, bins, lower_quantile, upper_quantile, pseudocount)
    if max_scan_frames is not None and n > max_scan_frames:
        rng = np.random.default_rng(seed)
        sub = np.sort(rng.choice(n, size=int(max_scan_frames), replace=False))
        if not (w[sub] > 0).any():
            sub = np.arange(n)
        scan = _KLObjective(
            x[sub], z[sub], w[sub], bins, lower_quantile, upper_quantile, pseudocount
        )
    else:
        scan = full

    directions = sphere_directions(d, n_directions, seed=seed)
    half = directions.shape[0] // 2
    landscape = np.empty(directions.shape[0])
    for i in range(half):
        landscape[i], landscape[half + i] = scan.both_signs(directions[i])

    candidates: list[tuple[float, np.ndarray]] = []
    if d == 1:
        for c in directions:
            candidates.append((full(c), c.copy()))
    else:
        step = _grid_spacing_rad(d, directions.shape[0])
        starts = [directions[i] for i in np.argsort(landscape, kind="stable")[: int(n_starts)]]
        # Starts beside the grid's best: the latent's weighted least-squares direction (close to
        # the KL optimum whenever the latent is near-affine in the order parameters, and found
        # however sparse the grid is in high d), and any given directions (the previous RC),
        # each in its better orientation.
        extra = [least_squares_direction(x, z, w)]
        if initial_directions is not None:
            extra += [_as_direction(c, "initial_directions") for c in initial_directions]
        for c in extra:
            if c is None or c.shape != (d,):
                continue
            plus, minus = scan.both_signs(c)
            starts.append(-c if minus < plus else c)
        # the local optimisation (the costly part) runs from the n_starts best of them all
        scored = sorted(((scan(c), k) for k, c in enumerate(starts)), key=lambda t: t[0])
        starts = [starts[k] for _, k in scored[: int(n_starts)]]
        for c0 in starts:
            basis = _tangent_basis(c0)

            def to_c(u: np.ndarray, c0: np.ndarray = c0, basis: np.ndarray = basis) -> np.ndarray:
                v = c0 + basis @ u
                return v / np.linalg.norm(v)

            simplex = np.vstack([np.zeros(d - 1), min(step, _LOCAL_STEP_RAD) * np.eye(d - 1)])
            opt = minimize(
                lambda u, to_c=to_c: full(to_c(u)),
                np.zeros(d - 1),
                method="Nelder-Mead",
                options={
                    "initial_simplex": simplex,
                    "xatol": _XATOL_RAD,
                    "fatol": 1e-7,
                    "maxiter": 200 * (d - 1),
                },
            )
            c_opt = to_c(opt.x)
            candidates.append((full(c0), c0.copy()))
            candidates.append((full(c_opt), c_opt))
    kl_best, c_best = min(candidates, key=lambda t: t[0])
    c_best = c_best / np.linalg.norm(c_best)
    kl_plus, kl_minus = full.both_signs(c_best)
    if kl_minus < kl_plus:
        c_best, kl_best = -c_best, kl_minus
    else:
        kl_best = kl_plus
    return CoordinateResult(
        coefficients=c_best,
        kl_divergence=float(kl_best),
        directions=directions,
        kl_landscape=landscape,
    )


# --------------------------------------------------------------------------------------------
# model selection
# --------------------------------------------------------------------------------------------


def select_models(
    results: Sequence[CoordinateResult],
    kl_threshold: float,
    fallback_to_best: bool = False,
) -> list[int]:
    """Indices of the non-spurious models: those whose best KL is at most ``kl_threshold``.

    A VAE that converged to a spurious solution has a latent that no linear combination of the
    order parameters reproduces, so its best KL stays large (RAVE step 2).

    Raises NoValidModelError: (a ``ValueError``) if no model passes and ``fallback_to_best`` is
    False.
    """
    if len(results) == 0:
        raise ValueError("results must hold at least one CoordinateResult; you supplied none")
    for i, r in enumerate(results):
        if not isinstance(r, CoordinateResult):
            raise TypeError(
                f"results[{i}] must be a CoordinateResult. You supplied {type(r).__name__}"
            )
    return _usable_by_kl([r.kl_divergence for r in results], kl_threshold, fallback_to_best)


def _usable_by_kl(kls: Sequence[float], kl_threshold: float, fallback_to_best: bool) -> list[int]:
    """The rule of :func:`select_models`, on the models' KLs."""
    try:
        threshold = float(kl_threshold)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"kl_threshold must be a number. You supplied {kl_threshold!r}") from exc
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"kl_threshold must be finite and >= 0. You supplied {kl_threshold}")
    kls = np.asarray(kls, dtype=float)
    order = np.argsort(kls, kind="stable")
    passed = [int(i) for i in order if kls[i] <= threshold]
    if passed:
        return passed
    summary = ", ".join(f"{k:.4g}" for k in kls)
    if fallback_to_best:
        logger.warning(
            "no model has KL <= %g (KLs: %s); using the lowest, model %d",
            threshold,
            summary,
            int(order[0]),
        )
        return [int(order[0])]
    raise NoValidModelError(
        f"no model has KL <= kl_threshold = {threshold:g} (KLs: {summary}); all look spurious. "
        "Train more VAE seeds, or raise kl_threshold, or pass fallback_to_best=True"
    )


def choose_coordinate(
    coefficients: Sequence[np.ndarray],
    kls: Sequence[float],
    kl_threshold: float,
    kl_tie: float = 0.0,
    previous: np.ndarray | None = None,
) -> tuple[int, float | None]:
    """Which model's RC a round uses, and how far the usable models' RCs spread.

    Raises ValueError: when ``coefficients`` and ``kls`` differ in length, or ``kl_tie`` is not a
    finite number >= 0.
    """
    if len(coefficients) != len(kls):
        raise ValueError(
            f"coefficients and kls must have one entry per model. You supplied "
            f"{len(coefficients)} and {len(kls)}"
        )
    if not (np.isfinite(kl_tie) and kl_tie >= 0):
        raise ValueError(f"kl_tie must be finite and >= 0. You supplied {kl_tie}")
    usable = _usable_by_kl(kls, kl_threshold, fallback_to_best=True)
    tied = [i for i in usable if kls[i] <= kls[usable[0]] + kl_tie]
    chosen = usable[0]
    if previous is not None and len(tied) > 1:
        chosen = min(tied, key=lambda i: direction_angle_deg(coefficients[i], previous))
    others = [i for i in usable if i != chosen]
    spread = (
        max(direction_angle_deg(coefficients[i], coefficients[chosen]) for i in others)
        if others
        else None
    )
    return chosen, spread
