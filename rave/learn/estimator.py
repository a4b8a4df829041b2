"""The RAVE step as an estimator: weighted frames -> K VAEs -> linear RC -> bias.

One step of RAVE (Ribeiro et al., J. Chem. Phys. 149, 072301 (2018)) on arrays, in the
deeptime estimator/model style::

    model = RAVE(n_models=3, seed=1).fit(X, log_weights).fetch_model()
    chi = model.transform(X)          # X @ model.coefficients
    bias = model.bias(kT)             # rave.bias_grid.Bias: V(chi) = kT ln P(chi) on a grid

What :meth:`RAVE.fit` does (the campaign's learning step of one round, :mod:`rave.campaign`):

1. trains ``n_models`` VAEs with a 1-D latent (:func:`rave.learn.vae.fit_seeds`), one per seed,
   side by side on torch's threads (``torch.get_num_threads()``), each frame weighted by its
   log-weight; a model given in ``initial`` warm-starts its seed (``cold_models`` of them
   train from scratch when ``initial`` is a :class:`RAVEModel`);
2. fits each model's linear RC ``chi = c . X`` by KL matching of its latent mean
   (:func:`rave.learn.coordinate.fit_coordinate`, on at most ``max_frames`` frames, a seeded
   subset);
3. drops warm-started models whose RC is more than ``stale_angle_deg`` off the best cold
   model's (:func:`stale_warm_starts`) and, among the rest, chooses the lowest KL below
   ``kl_threshold`` (the others are spurious), KL ties within ``kl_tie`` going to the RC
   closest to the previous one (:func:`rave.learn.coordinate.choose_coordinate`);
4. turns the chosen ``c`` to the previous RC's side (:func:`rave.learn.coordinate.align_sign`);
5. with ``rc_choice = "barrier"``, candidates compete
   (:func:`rave.learn.anharmonic.choose_by_barrier`): the chosen model's RC ("vae"), its
   latent's least-squares direction ("latent", :func:`rave.learn.anharmonic.latent_direction`),
   the most bimodal direction of the weighted frames ("bimodal",
   :func:`rave.learn.anharmonic.bimodal_direction` refined by
   :func:`rave.learn.anharmonic.separating_direction`), the most skewed one ("skew", the way a
   basin opens, :func:`rave.learn.anharmonic.skewed_direction`) and the previous RC. F along
   each (a kernel estimate) is split into basins separated by at least ``basin_barrier_kT``;
   the RC is the candidate with the highest barrier between its basins (a projection can only
   blur a barrier, so the direction that shows the highest one is the least blurred), ties
   within ``barrier_tie_kT`` going to the previous RC, then the bimodal direction. While no
   candidate shows two basins (the frames have crossed no barrier along any of them) the RC
   is the VAE's. The model's RC is kept in ``vae_coefficients`` when it is not chosen.

The model keeps chi and the log-weights of the fit's frames, so :meth:`RAVEModel.bias` builds
the bias of the next round (:func:`rave.learn.bias.build_bias_grid`) without the frames.

The estimator holds the method's hyperparameters only; how it runs (cores, progress bars, the
logger) and the campaign's resume hooks (models already trained, a callback that stores each
model) are settings of one call, :meth:`RAVE._fit`, which :mod:`rave.campaign` uses. Nothing
here writes a file. torch is imported by :meth:`RAVE.fit` (and by building a ``VAEConfig``),
not by importing this module.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..stats.bootstrap import block_resample
from ..stats.weights import as_log_weights, effective_sample_size
from .anharmonic import barrier_choice_sigma_deg, choose_by_barrier, latent_direction
from .bias import Bias, build_bias_grid
from .checks import check_direction as _check_direction
from .checks import check_frames as _check_frames
from .checks import check_int as _check_int
from .checks import check_real as _check_real
from .checks import is_int as _is_int
from .coordinate import (
    CoordinateResult,
    align_sign,
    choose_coordinate,
    direction_angle_deg,
    fit_coordinate,
)
from .warm_starts import cold_positions, stale_warm_starts

if TYPE_CHECKING:  # pragma: no cover (torch is imported by fit only)
    from .vae import VAEConfig, VAEModel

__all__ = [
    "DEFAULT_SCAN_FRAMES",
    "RAVE",
    "RAVEModel",
    "TrainedModel",
    "cold_positions",
    "rc_frames",
    "block_resample",
    "rc_angle_sigma_deg",
    "stale_warm_starts",
]

_log = logging.getLogger(__name__)

#: frames of the grid scan of each RC fit (the local optimisation uses all the RC frames)
DEFAULT_SCAN_FRAMES = 10_000
#: fewest effective frames (Kish) the weighted fit accepts
MIN_EFFECTIVE_FRAMES = 10
#: what RAVE(rc_choice=...) takes
RC_CHOICES = ("vae", "barrier")


# --------------------------------------------------------------------------------------------
# the rules of the step, as functions
# --------------------------------------------------------------------------------------------


def rc_frames(n_frames: int, max_frames: int, seed: int | Sequence[int]) -> np.ndarray:
    """Frames the RC is fitted on: all, or a seeded subset of ``max_frames`` of them."""
    if n_frames <= max_frames:
        return np.arange(n_frames)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_frames, size=max_frames, replace=False))


def rc_angle_sigma_deg(x: np.ndarray, latent: np.ndarray, log_weights: np.ndarray | None,
                       coefficients: np.ndarray, replicates: int, seed: int, *,
                       bins: int = 50, n_blocks: int = 20,
                       scan_frames: int | None = None) -> float:
    """Block-bootstrap uncertainty of an RC's direction, degrees.

    Raises ValueError: when ``replicates < 2``.
    """
    if replicates < 2:
        raise ValueError(f"replicates must be >= 2. You supplied {replicates}")
    rng = np.random.default_rng(seed)
    n_blocks = min(n_blocks, len(x))
    angles = []
    for r in range(replicates):
        take = block_resample(len(x), n_blocks, rng)
        refit = fit_coordinate(x[take], latent[take],
                               log_weights=None if log_weights is None else log_weights[take],
                               bins=bins, n_directions=8, seed=seed + r,
                               initial_directions=[coefficients], max_scan_frames=scan_frames)
        angles.append(direction_angle_deg(refit.coefficients, coefficients))
    return float(np.sqrt(np.mean(np.square(angles))))


def _fit_note(model: VAEModel) -> str:
    """How a model was trained, for the log: warm or cold, epochs, why it stopped."""
    h = model.history
    if "epochs" not in h:
        return ""
    kind = "warm" if h.get("warm_start") else "cold"
    return (f" ({kind}, {h['epochs']}/{h.get('budget_epochs', h['epochs'])} epochs, "
            f"{h.get('stop_reason', 'budget')}, {h.get('wall_time_s', 0.0):.1f} s)")


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _readonly(array: np.ndarray) -> np.ndarray:
    out = np.array(array, dtype=float)
    out.setflags(write=False)
    return out


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """One VAE of a RAVE fit, its RC and whether the RC choice kept it.

    Attributes
    ----------
    seed : int
        The VAE's seed.
    vae : rave.learn.vae.VAEModel
        The trained VAE (``vae.transform(X)`` is its latent mean).
    coordinate : rave.learn.coordinate.CoordinateResult
        Its RC fitted by KL matching (KL-matched sign: chi increases with the latent).
    validation_loss : float
        Best validation loss of its training (NaN when its history has none).
    warm : bool
        Whether it was warm-started from an earlier model.
    spurious : bool
        Its best KL is above the fit's ``kl_threshold``: no linear RC reproduces its latent.
    stale : bool
        A warm start whose RC is more than ``stale_angle_deg`` off the best cold model's.
    """

    seed: int
    vae: VAEModel
    coordinate: CoordinateResult
    validation_loss: float
    warm: bool
    spurious: bool = False
    stale: bool = False

    @property
    def coefficients(self) -> np.ndarray:
        """np.ndarray, shape=(d,): its RC, unit norm, in the KL-matched sign."""
        return self.coordinate.coefficients

    @property
    def kl_divergence(self) -> float:
        """float: KL (nats) between its latent's and its RC's distributions."""
        return float(self.coordinate.kl_divergence)

    @property
    def dropped(self) -> bool:
        """bool: spurious or stale (not used for the RC unless every model is spurious)."""
        return self.spurious or self.stale


@dataclass(frozen=True, eq=False)
class RAVEModel:
    """What a :class:`RAVE` fit learned: the linear RC, the models behind it, its frames' chi.

    Attributes
    ----------
    coefficients : np.ndarray, shape=(n_features,), dtype=float
        Unit-norm ``c`` of ``chi = X @ c``, in the order of X's columns (the chosen model's
        RC, turned to the side of the previous RC when there was one). Read-only.
    kl_divergence : float
        KL (nats) of the chosen model's RC.
    chosen : int
        Index into ``models`` of the model whose RC this is.
    models : tuple of TrainedModel
        Every VAE of the fit, in seed order.
    seed_spread_deg : float or None
        Largest angle (degrees) between the chosen RC and the other usable models' RCs; None
        with one usable model.
    chi : np.ndarray, shape=(n_frames,), dtype=float
        ``X @ coefficients`` of the fit's frames. Read-only.
    log_weights : np.ndarray, shape=(n_frames,), dtype=float
        The fit's log-weights (zeros when it had none). Read-only.
    generation : int
        0 for a fit without warm starts; ``initial.generation + 1`` for a fit warm-started
        from a RAVEModel; 1 for a fit given per-model warm starts.
    angle_sigma_deg : float or None
        Block-bootstrap uncertainty of the RC's direction (degrees): the RMS angle between the
        RC and its refits, on resampled blocks of the RC frames, of the chosen model's latent
        (:func:`rc_angle_sigma_deg`); when the barrier rule chose another candidate, the RMS
        angle between the RC and the rule's choice on resampled blocks
        (:func:`rave.learn.anharmonic.barrier_choice_sigma_deg`); None when the fit ran no
        bootstrap.
    rc_source : str
        "vae": the RC is the chosen model's (the paper's); with ``rc_choice = "barrier"`` also
        "latent" (its latent's least-squares direction), "bimodal" (the most bimodal
        direction), "skew" (the most skewed direction of the frames) or "previous" (the
        previous RC kept).
    vae_coefficients : np.ndarray or None, shape=(n_features,)
        The chosen model's RC when ``rc_source`` is not "vae" (else None: it is
        ``coefficients``).
    candidates : dict or None
        With ``rc_choice = "barrier"``: per candidate ("vae", "latent", "bimodal", "skew",
        "previous"), its
        ``basins`` and ``barrier_kT`` along F, and its ``angle_deg`` to the RC chosen.
    skewness : float or None
        Weighted skewness of the most skewed direction (None with ``rc_choice = "vae"``).
    """

    coefficients: np.ndarray
    kl_divergence: float
    chosen: int
    models: tuple[TrainedModel, ...]
    seed_spread_deg: float | None
    chi: np.ndarray
    log_weights: np.ndarray
    generation: int = 0
    angle_sigma_deg: float | None = None
    rc_source: str = "vae"
    vae_coefficients: np.ndarray | None = None
    candidates: dict | None = None
    skewness: float | None = None

    @property
    def n_features(self) -> int:
        """int: order parameters (columns of X)."""
        return int(self.coefficients.size)

    @property
    def dropped(self) -> list[int]:
        """list of int: models that are spurious or stale (see :class:`TrainedModel`)."""
        return [i for i, m in enumerate(self.models) if m.dropped]

    @property
    def stale(self) -> list[int]:
        """list of int: warm-started models dropped as stale."""
        return [i for i, m in enumerate(self.models) if m.stale]

    @property
    def vae_models(self) -> list[VAEModel]:
        """list of rave.learn.vae.VAEModel: the trained VAEs, in seed order."""
        return [m.vae for m in self.models]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The reaction coordinate of frames.

        Parameters
        ----------
        X : np.ndarray, shape=(n_frames, n_features), dtype=float
            Order parameters, in the units and column order of the fit's X.

        Returns
        -------
        chi : np.ndarray, shape=(n_frames,), dtype=float
            ``X @ coefficients``, in the order parameters' units.

        Raises
        ------
        ValueError
            When ``X`` is not 2-D with ``n_features`` columns.
        """
        x = np.asarray(X, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"X must be shape (Any, {self.n_features}). You supplied {x.shape}")
        return x @ self.coefficients

    def bias(self, kT: float, **grid: Any) -> Bias:
        """The bias of the next round, ``V(chi) = kT ln P(chi)``, from the fit's frames.

        Parameters
        ----------
        kT : float or openmm.unit.Quantity
            Thermal energy, kJ/mol (or an energy Quantity, e.g. ``2.494 *
            unit.kilojoule_per_mole``).
        **grid
            Keyword arguments of :func:`rave.learn.bias.build_bias_grid`: ``n_points``,
            ``padding``, ``cap_kT``, ``smoothing_bins``, ``damping``.

        Returns
        -------
        rave.bias_grid.Bias
            ``coefficients`` and the grid ``build_bias_grid(chi, log_weights, kT, **grid)``.
        """
        return Bias(self.coefficients, build_bias_grid(self.chi, self.log_weights, kT, **grid))


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------


class RAVE:
    """The RAVE step: VAEs on weighted frames, the linear RC of their latent, spurious dropped.

    Parameters
    ----------
    n_models : int, default 3
        VAEs trained, one per seed (>= 1).
    vae : rave.learn.vae.VAEConfig or dict, optional
        Network and training settings (a dict is ``VAEConfig``'s keyword arguments); default
        ``VAEConfig()``.
    seed : int or sequence of int, default 0
        Seeds of the models: an int ``s`` gives ``s, s + 1, ..., s + n_models - 1``; a
        sequence names one non-negative int per model.
    cold_models : int, default 1
        In a fit warm-started from a :class:`RAVEModel`, models trained from scratch (they
        rotate with the generation, :func:`cold_positions`); at least one keeps a warm start
        from holding the RC on a stale direction. In [0, n_models].
    kl_threshold : float, default 0.5
        A model whose best KL (nats) is above this is spurious and dropped (if every model is,
        the lowest KL is used and a warning logged).
    kl_tie : float, default 0.02
        KL differences (nats) up to this count as ties, which go to the RC closest to the
        previous one.
    bins : int, default 50
        Histogram bins of the KL matching (>= 2).
    max_frames : int, default 50_000
        The RC is fitted on at most this many frames, a seeded subset with their weights (the
        VAEs train, and chi and the bias use, every frame).
    scan_frames : int or None, default 10_000
        Frames of the grid scan of each RC fit (``fit_coordinate``'s ``max_scan_frames``).
    rc_bootstrap : int, default 0
        Block-bootstrap replicates of the chosen RC (:func:`rc_angle_sigma_deg`, on the RC
        frames); 0: none (``RAVEModel.angle_sigma_deg`` is None).
    rc_seed : int or sequence of int, optional
        Seed of the ``max_frames`` subset (``numpy.random.default_rng``); default the first
        model seed.
    stale_angle_deg : float, default 15.0
        A warm-started model whose RC is more than this (degrees) off the best cold model's is
        dropped as stale (:func:`stale_warm_starts`).
    rc_choice : {"vae", "barrier"}, default "vae"
        "vae": the RC is the chosen model's (the paper's); "barrier": step 5 above (as the
        campaign's ``[coordinate] rc_choice``, whose default is the same).
    basin_barrier_kT : float, default 0.75
        Least barrier (kT) between two basins of F along a candidate (``rc_choice =
        "barrier"``).
    barrier_tie_kT : float, default 0.5
        Barriers within this (kT) of the highest tie (``rc_choice = "barrier"``).

    Attributes
    ----------
    model : RAVEModel
        The model of the last :meth:`fit` (as :meth:`fetch_model`).
    has_model : bool
        Whether :meth:`fit` has run.

    Raises
    ------
    TypeError
        When ``vae`` is not a VAEConfig (or a dict of its fields), ``seed`` is not an int
        or a sequence of ints, or a threshold is not a real number.
    ValueError
        When a setting is out of range: ``seed`` does not give ``n_models`` distinct
        non-negative ints, ``cold_models > n_models``, ``rc_bootstrap == 1``, ``rc_seed`` is
        not a non-negative int (or a sequence of them), a count is not an int at or above its
        minimum, or a threshold is not finite and at or above its minimum.

    Examples
    --------
    >>> estimator = RAVE(n_models=2, vae={"hidden": (64, 64)}, seed=1)
    >>> model = estimator.fit(X, log_weights).fetch_model()
    >>> chi = model.transform(X)
    >>> bias = model.bias(kT=2.494)           # for rave.BiasForce.updateBias(context, bias)
    >>> later = RAVE(n_models=2, seed=3).fit(X_all, log_w_all, initial=model).fetch_model()
    """

    def __init__(
        self,
        n_models: int = 3,
        vae: VAEConfig | dict | None = None,
        *,
        seed: int | Sequence[int] = 0,
        cold_models: int = 1,
        kl_threshold: float = 0.5,
        kl_tie: float = 0.02,
        bins: int = 50,
        max_frames: int = 50_000,
        scan_frames: int | None = DEFAULT_SCAN_FRAMES,
        rc_bootstrap: int = 0,
        rc_seed: int | Sequence[int] | None = None,
        stale_angle_deg: float = 15.0,
        rc_choice: str = "vae",
        basin_barrier_kT: float = 0.75,
        barrier_tie_kT: float = 0.5,
    ) -> None:
        from .vae import VAEConfig

        self.n_models = _check_int("n_models", n_models, 1)
        if vae is None:
            vae = VAEConfig()
        elif isinstance(vae, dict):
            vae = VAEConfig.from_dict(vae)
        elif not isinstance(vae, VAEConfig):
            raise TypeError(f"vae must be a VAEConfig or a dict of its fields. You supplied "
                            f"{type(vae).__name__}")
        self.vae = vae
        if _is_int(seed):
            seeds = [int(seed) + m for m in range(self.n_models)]
        elif isinstance(seed, Sequence | np.ndarray) and not isinstance(seed, str):
            seeds = list(seed)
        else:
            raise TypeError(f"seed must be an int or a sequence of n_models ints. You supplied "
                            f"{seed!r}")
        if (len(seeds) != self.n_models or not all(_is_int(s) and s >= 0 for s in seeds)
                or len(set(seeds)) != len(seeds)):
            raise ValueError(f"seed must give {self.n_models} distinct non-negative ints, one "
                             f"per model (n_models = {self.n_models}). You supplied {seed!r}")
        self.seeds = [int(s) for s in seeds]
        self.cold_models = _check_int("cold_models", cold_models, 0)
        if self.cold_models > self.n_models:
            raise ValueError(f"cold_models must be <= n_models ({self.n_models}). You supplied "
                             f"{cold_models}")
        self.kl_threshold = _check_real("kl_threshold", kl_threshold, 0.0)
        self.kl_tie = _check_real("kl_tie", kl_tie, 0.0)
        self.bins = _check_int("bins", bins, 2)
        self.max_frames = _check_int("max_frames", max_frames, 2)
        self.scan_frames = None if scan_frames is None else _check_int("scan_frames",
                                                                       scan_frames, 2)
        self.rc_bootstrap = _check_int("rc_bootstrap", rc_bootstrap, 0)
        if self.rc_bootstrap == 1:
            raise ValueError("rc_bootstrap must be 0 (none) or >= 2 replicates. You supplied 1")
        if rc_seed is None:
            rc_seed = self.seeds[0]
        try:
            np.random.SeedSequence(rc_seed)
        except (TypeError, ValueError) as error:
            raise ValueError(f"rc_seed must be a non-negative int or a sequence of them. You "
                             f"supplied {rc_seed!r}") from error
        self.rc_seed = rc_seed
        self.stale_angle_deg = _check_real("stale_angle_deg", stale_angle_deg, 0.0)
        if rc_choice not in RC_CHOICES:
            raise ValueError(f"rc_choice must be one of {', '.join(RC_CHOICES)}. You supplied "
                             f"{rc_choice!r}")
        self.rc_choice = rc_choice
        self.basin_barrier_kT = _check_real("basin_barrier_kT", basin_barrier_kT, 0.0)
        if self.basin_barrier_kT <= 0:
            raise ValueError(f"basin_barrier_kT must be > 0. You supplied {basin_barrier_kT}")
        self.barrier_tie_kT = _check_real("barrier_tie_kT", barrier_tie_kT, 0.0)
        self._model: RAVEModel | None = None

    # ------------------------------------------------------------------ public
    @property
    def has_model(self) -> bool:
        """Whether :meth:`fit` has run (deeptime's ``has_model``)."""
        return self._model is not None

    @property
    def model(self) -> RAVEModel:
        """The model of the last :meth:`fit` (as :meth:`fetch_model`); ValueError before one."""
        return self.fetch_model()

    def fetch_model(self) -> RAVEModel:
        """The model of the last :meth:`fit`.

        Returns
        -------
        RAVEModel

        Raises
        ------
        ValueError
            No fit yet.
        """
        if self._model is None:
            raise ValueError("no model yet: call fit(X, log_weights) before fetch_model()")
        return self._model

    def fit(
        self,
        X: np.ndarray,
        log_weights: np.ndarray | None = None,
        initial: RAVEModel | Sequence[VAEModel | None] | None = None,
        *,
        previous: np.ndarray | None = None,
    ) -> RAVE:
        """Train the VAEs on weighted frames and choose the linear RC.

        The models train side by side on torch's intra-op threads (``torch.get_num_threads()``,
        set by ``OMP_NUM_THREADS`` or ``torch.set_num_threads``): as many models at once as
        there are threads, one thread each; a lone model gets them all.

        Parameters
        ----------
        X : np.ndarray, shape=(n_frames, n_features), dtype=float
            Order parameters of every frame, in their own units (chi is built from these).
        log_weights : np.ndarray, shape=(n_frames,), optional
            Natural log of each frame's weight toward the unbiased ensemble (any offset;
            ``-inf`` = weight 0), e.g. MBAR's. None: all frames weigh the same.
        initial : RAVEModel or sequence of (rave.learn.vae.VAEModel or None), optional
            Warm starts. A RAVEModel (the previous step's): model ``m`` starts from its model
            ``m``, except the ``cold_models`` positions of this generation
            (:func:`cold_positions`), and its ``coefficients`` are the ``previous`` RC. A
            sequence: one entry per model, None training that one from scratch.
        previous : np.ndarray, shape=(n_features,), optional
            The previous RC: a starting direction of each RC fit, the winner of KL ties, and
            the side the chosen RC is turned to. Default: ``initial.coefficients`` when
            ``initial`` is a RAVEModel, else none.

        Returns
        -------
        RAVE
            self; the result is :meth:`fetch_model`.

        Raises
        ------
        ValueError
            Bad shapes, NaN or inf in X, NaN or +inf (or all -inf) log-weights, warm starts of
            another number of models or order parameters; log-weights whose effective sample
            size is below :data:`MIN_EFFECTIVE_FRAMES` (a few frames carry all the weight: no
            RC or bias can rest on them).
        TypeError
            A warm start that is not a ``rave.learn.vae.VAEModel``.
        """
        import torch

        return self._fit(X, log_weights, initial, previous=previous,
                         threads=torch.get_num_threads())

    def _fit(
        self,
        X: np.ndarray,
        log_weights: np.ndarray | None = None,
        initial: RAVEModel | Sequence[VAEModel | None] | None = None,
        *,
        previous: np.ndarray | None = None,
        threads: int = 1,
        workers: int | None = None,
        progress: bool | str = False,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
        trained: Sequence[VAEModel | None] | None = None,
        on_trained: Callable[[int, VAEModel], Any] | None = None,
    ) -> RAVE:
        """:meth:`fit` with the settings of this call: how it runs and the hooks of a resumable
        caller (the campaign).

        Raises
        ------
        ValueError
            As :meth:`fit`; ``threads`` or ``workers`` below 1.
        TypeError
            As :meth:`fit`; a trained model that is not a VAEModel, ``progress`` that is not a
            bool or a label, a ``logger`` that is not a ``logging.Logger``/``LoggerAdapter``.
        """
        from .vae import fit_seeds

        threads = _check_int("threads", threads, 1)
        workers = None if workers is None else _check_int("workers", workers, 1)
        if not isinstance(progress, bool | str):
            raise TypeError(f"progress must be True, False or a label. You supplied "
                            f"{progress!r}")
        if logger is not None and not isinstance(logger, logging.Logger | logging.LoggerAdapter):
            raise TypeError(f"logger must be a logging.Logger or LoggerAdapter. You supplied "
                            f"{type(logger).__name__}")

        x = _check_frames(X)
        n, d = x.shape
        log_w = None if log_weights is None else as_log_weights(log_weights, n, like="X")
        if log_w is not None:
            ess = effective_sample_size(log_w)
            if ess < min(MIN_EFFECTIVE_FRAMES, n):
                raise ValueError(
                    f"the log-weights give an effective sample size of {ess:.3g} frames of {n} "
                    f"(Kish): a few frames carry all the weight, so no RC or bias can rest on "
                    f"them. Check the log-weights (natural log, relative to the ensemble of "
                    f"interest) or sample more where the weight lies")
        initial_models, generation, previous = self._warm_starts(initial, previous, d)
        done = self._models("trained", trained, d)
        log = logger if logger is not None else _log
        seeds = self.seeds
        subset = rc_frames(n, self.max_frames, self.rc_seed)
        x_rc = x[subset]
        log_w_rc = None if log_w is None else log_w[subset]
        directions = None if previous is None else [previous]

        def coordinate(m: int, model: VAEModel) -> TrainedModel:
            result = fit_coordinate(x_rc, model.transform(x_rc), log_weights=log_w_rc,
                                    bins=self.bins, seed=seeds[m], initial_directions=directions,
                                    max_scan_frames=self.scan_frames)
            loss = float(model.history.get("best_validation_loss", float("nan")))
            log.info("VAE seed %d%s, validation loss %.4f, best KL %.4f, c = %s", seeds[m],
                     _fit_note(model), loss, result.kl_divergence,
                     np.round(result.coefficients, 4).tolist())
            return TrainedModel(seeds[m], model, result, loss,
                                bool(model.history.get("warm_start", False)))

        results: list[TrainedModel | None] = [
            None if model is None else coordinate(m, model) for m, model in enumerate(done)]
        pending = [m for m in range(self.n_models) if results[m] is None]
        if pending:
            starts = [initial_models[m] for m in pending]
            at_once = min(len(pending), threads if workers is None else workers)
            intra_op = threads if at_once == 1 else 1
            log.info("training %d VAE seed(s) (%d warm-started): %d at once x %d thread(s)",
                     len(pending), sum(s is not None for s in starts), at_once, intra_op)

            def after_fit(j: int, model: VAEModel) -> TrainedModel:
                if on_trained is not None:
                    on_trained(pending[j], model)
                return coordinate(pending[j], model)

            fitted = fit_seeds(x, [seeds[m] for m in pending], self.vae, log_weights=log_w,
                               initial=starts, workers=at_once,
                               intra_op_threads=intra_op, progress=progress,
                               after_fit=after_fit)
            for m, result in zip(pending, fitted, strict=True):
                results[m] = result
        self._model = self._choose(results, x, log_w, previous, generation, log)
        fixed = None
        if self.rc_choice == "barrier":
            self._model, fixed = self._choose_by_barrier(self._model, x, x_rc, log_w_rc,
                                                         previous, log)
        if self._model.rc_source != "vae" and self.rc_bootstrap:
            sigma = barrier_choice_sigma_deg(
                x_rc, log_w_rc, fixed, self._model.coefficients, self.rc_bootstrap,
                int(seeds[self._model.chosen]), barrier_kT=self.basin_barrier_kT,
                tie_kT=self.barrier_tie_kT, n_starts=4)
            self._model = dataclasses.replace(self._model, angle_sigma_deg=sigma)
        elif self.rc_bootstrap:
            chosen = self._model.models[self._model.chosen].vae
            sigma = rc_angle_sigma_deg(
                x_rc, chosen.transform(x_rc), log_w_rc, self._model.coefficients,
                self.rc_bootstrap, int(seeds[self._model.chosen]), bins=self.bins,
                scan_frames=self.scan_frames)
            self._model = dataclasses.replace(self._model, angle_sigma_deg=sigma)
        return self

    # ------------------------------------------------------------------ steps of fit
    def _choose(self, results: list, x: np.ndarray, log_w: np.ndarray | None,
                previous: np.ndarray | None, generation: int, log) -> RAVEModel:
        """Drop stale and spurious models, choose the RC, turn it to the previous side."""
        kls = [r.kl_divergence for r in results]
        coefficients = [r.coefficients for r in results]
        stale = stale_warm_starts(coefficients, kls, [r.warm for r in results],
                                  self.kl_threshold, self.stale_angle_deg)
        if stale:
            log.warning("warm-started model(s) %s dropped as stale: their RC is more than %g "
                        "deg off the cold-started model's", stale, self.stale_angle_deg)
        usable = [i for i in range(len(results)) if i not in stale]
        # lowest KL among the usable models below the threshold (if none is, the lowest
        # overall; choose_coordinate logs that warning); KL ties go to the previous direction
        pick, spread = choose_coordinate([coefficients[i] for i in usable],
                                         [kls[i] for i in usable], self.kl_threshold,
                                         self.kl_tie, previous)
        best = usable[pick]
        c = np.asarray(results[best].coefficients, dtype=float)
        if previous is not None:
            c = align_sign(c, previous)
        chi = x @ c
        models = tuple(dataclasses.replace(r, spurious=bool(kls[i] > self.kl_threshold),
                                           stale=i in stale) for i, r in enumerate(results))
        return RAVEModel(
            coefficients=_readonly(c), kl_divergence=float(results[best].kl_divergence),
            chosen=int(best), models=models, seed_spread_deg=spread, chi=_readonly(chi),
            log_weights=_readonly(np.zeros(len(x)) if log_w is None else log_w),
            generation=generation)

    def _choose_by_barrier(self, model: RAVEModel, x: np.ndarray, x_rc: np.ndarray,
                           log_w_rc: np.ndarray | None, previous: np.ndarray | None,
                           log) -> tuple[RAVEModel, dict]:
        """Step 5 (:func:`rave.learn.anharmonic.choose_by_barrier`); also returns the fixed
        candidates, for the bootstrap of the choice."""
        fixed = {"vae": model.coefficients,
                 "latent": latent_direction(x_rc, model.models[model.chosen].vae.transform(x_rc),
                                            log_w_rc)}
        if previous is not None:
            fixed["previous"] = np.asarray(previous, dtype=float)
        choice = choose_by_barrier(x_rc, log_w_rc, fixed, seed=self.rc_seed,
                                   barrier_kT=self.basin_barrier_kT, tie_kT=self.barrier_tie_kT)
        c = choice.coefficients
        if previous is not None:
            c = align_sign(c, previous)
        summary = {name: {"basins": choice.basins[name].count,
                          "barrier_kT": float(choice.basins[name].barrier_kT),
                          "angle_deg": direction_angle_deg(d, c)}
                   for name, d in choice.candidates.items()}
        log.info("RC candidates (basins, highest barrier along F, angle to the RC chosen): %s "
                 "-> the %s direction%s", "; ".join(
                     f"{n} {v['basins']}, {v['barrier_kT']:.2f} kT, {v['angle_deg']:.1f} deg"
                     for n, v in summary.items()), choice.source,
                 "" if any(v["basins"] > 1 for v in summary.values())
                 else " (no candidate shows two basins)")
        skew = float(choice.skewed.skewness)
        if choice.source == "vae":
            return dataclasses.replace(model, candidates=summary, skewness=skew), fixed
        return dataclasses.replace(model, coefficients=_readonly(c), chi=_readonly(x @ c),
                                   rc_source=choice.source, vae_coefficients=model.coefficients,
                                   candidates=summary, skewness=skew), fixed

    def _models(self, name: str, models: Sequence | None, d: int) -> list:
        """Check one entry per model, each a VAEModel of ``d`` inputs or None."""
        from .vae import VAEModel

        if models is None:
            return [None] * self.n_models
        if isinstance(models, str | bytes) or not isinstance(models, Sequence):
            raise TypeError(f"{name} must be a sequence of {self.n_models} VAEModel or None "
                            f"entries. You supplied {type(models).__name__}")
        models = list(models)
        if len(models) != self.n_models:
            raise ValueError(f"{name} must hold one entry per model (n_models = "
                             f"{self.n_models}). You supplied {len(models)}")
        for m, model in enumerate(models):
            if model is None:
                continue
            if not isinstance(model, VAEModel):
                raise TypeError(f"{name}[{m}] must be a rave.learn.vae.VAEModel or None. You "
                                f"supplied {type(model).__name__}")
            if model.n_features != d:
                raise ValueError(f"{name}[{m}] takes {model.n_features} order parameters; X "
                                 f"has {d}")
        return models

    def _warm_starts(self, initial, previous, d: int) -> tuple[list, int, np.ndarray | None]:
        """Per model, its warm start or None; the generation; the previous RC."""
        if isinstance(initial, RAVEModel):
            if len(initial.models) != self.n_models:
                raise ValueError(f"initial holds {len(initial.models)} models; this estimator "
                                 f"trains n_models = {self.n_models}")
            if initial.n_features != d:
                raise ValueError(f"initial was fitted on {initial.n_features} order "
                                 f"parameters; X has {d}")
            generation = initial.generation + 1
            cold = cold_positions(generation, self.n_models, self.cold_models)
            models = [None if m in cold else initial.models[m].vae
                      for m in range(self.n_models)]
            if previous is None:
                previous = initial.coefficients
        else:
            models = self._models("initial", initial, d)
            generation = int(any(m is not None for m in models))
        if previous is not None:
            previous = _check_direction("previous", previous, d)
        return models, generation, previous
