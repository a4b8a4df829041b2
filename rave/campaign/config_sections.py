"""The sections of a campaign configuration: one frozen dataclass per TOML table.

``[system]`` (:class:`SystemConfig`), ``[sampling]`` (:class:`SamplingConfig`), the campaign's
own ``[vae]`` keys (:class:`ModelConfig`), ``[coordinate]``, ``[bias]``, ``[convergence]``,
``[explore]`` and ``[output]``. Each section checks its own values when built and raises
:class:`rave.errors.ConfigError` naming the key, the value and what is allowed; the TOML is
read and the sections are put together into a :class:`rave.campaign.config.Config` by
:mod:`rave.campaign.config`. Each ``Attributes`` section is the reference of its keys (the
documentation's configuration reference is generated from them).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..errors import ConfigError
from ..systems.registry import SHARED_KEYS, UnknownSystemKind, all_kinds, get_kind

#: [system] keys besides kind, temperature and options: each applies to the kinds that name it
#: in their ``keys`` (rave.systems.registry; every field of SystemConfig is in SYSTEM_KEYS there)
_KIND_KEYS = SHARED_KEYS


#: largest sampling.seed: OpenMM takes 32-bit signed seeds
MAX_SEED = 2**31 - 1
#: largest bias.grid_points and coordinate.bins (memory and time stay small below these)
MAX_GRID_POINTS = 1_000_000
MAX_BINS = 100_000


@dataclass(frozen=True)
class SystemConfig:
    """``[system]``: what is simulated.

    Relative paths are relative to the config file.

    Attributes
    ----------
    kind : str
        A system kind of rave.systems.registry (required): "three_state",
        "rotated_double_well", "expression", "mixed_slow_mode", "ligand_cavity", "openmm" or
        one registered with rave.systems.register_kind.
    expression : str or None
        OpenMM energy expression of x, y in nm, kJ/mol (required for "expression").
    temperature : float
        K (default 300.0).
    start : list of float or None
        [x, y] nm starting point of round 0 (default: the system's own, a minimum).
    extent : list of list of float or None
        [[xmin, xmax], [ymin, ymax]] nm, region for quadrature and plots (default: the
        system's own).
    angle_deg, barrier_kT : float or None
        Rotated double well: angle of the slow direction from x (degrees), barrier (kT);
        mixed_slow_mode (three particles, six coordinates) takes barrier_kT (9.0).
    variant, ligand, size : str or None
        ligand_cavity: "hydrophobic" | "hydrophilic", "methane" | "c60", "small" | "paper"
        (defaults "hydrophobic", "methane", "small").
    prepare_steps, minimize_iterations : int or None
        ligand_cavity: NVT equilibration steps (5000: 10 ps) and the minimiser's iteration
        limit (200) before round 0, ligand held in the pocket.
    pdb : str or None
        openmm: PDB file (positions, topology for the [[features]] selections; required).
    system_xml : str or None
        openmm: serialized OpenMM System (or give forcefield).
    forcefield : list of str or None
        openmm: force-field XML names for openmm.app.ForceField, e.g.
        ["amber14/protein.ff14SB.xml", "implicit/obc2.xml"].
    options : object or None
        The keys of a registered kind's own, an instance of its ``options`` dataclass
        (written in [system] like any other key; a dict is accepted here).

    Raises
    ------
    ConfigError
        An unknown kind, a key the kind does not take, or a value outside what is allowed;
        the message names the key.
    """

    kind: str
    expression: str | None = None
    temperature: float = 300.0
    start: list[float] | None = None
    extent: list[list[float]] | None = None
    angle_deg: float | None = None
    barrier_kT: float | None = None
    variant: str | None = None
    ligand: str | None = None
    size: str | None = None
    prepare_steps: int | None = None
    minimize_iterations: int | None = None
    pdb: str | None = None
    system_xml: str | None = None
    forcefield: list[str] | None = None
    options: object | None = None

    def __post_init__(self) -> None:
        try:
            kind = get_kind(self.kind)
        except UnknownSystemKind as error:
            raise ConfigError(str(error)) from None
        for key in _KIND_KEYS:
            if getattr(self, key) is not None and key not in kind.keys:
                takers = [k.name for k in all_kinds() if key in k.keys]
                raise ConfigError(
                    f"system.{key} only applies to kind = "
                    f"{' or '.join(repr(k) for k in takers)}; kind is {self.kind!r}. "
                    f"Remove system.{key} or change system.kind"
                )
        self._set_options(kind)
        _positive("system.temperature", self.temperature)
        if kind.check is not None:
            for key, value in (kind.check(self) or {}).items():
                object.__setattr__(self, key, value)

    def _set_options(self, kind) -> None:
        if kind.options is None:
            if self.options is not None:
                raise ConfigError(f"system.kind = {self.kind!r} takes no options of its own. "
                                  f"You supplied {self.options!r}")
            return
        options = {} if self.options is None else self.options
        if isinstance(options, dict):
            try:
                options = kind.options(**options)
            except ConfigError:
                raise
            except (TypeError, ValueError) as error:
                raise ConfigError(f"[system] options of kind {self.kind!r}: {error}") from error
        if not isinstance(options, kind.options):
            raise ConfigError(f"system.options of kind {self.kind!r} must be a "
                              f"{kind.options.__name__} or a dict. You supplied {options!r}")
        object.__setattr__(self, "options", options)


#: [sampling] defaults without a budget
DEFAULT_ROUNDS = 4
DEFAULT_STEPS_PER_ROUND = 200000
#: with only max_total_steps: the round length is the budget over this many rounds
BUDGET_ROUNDS = 10
#: with only max_total_steps: no round limit but the budget
UNLIMITED_ROUNDS = 1_000_000


@dataclass(frozen=True)
class SamplingConfig:
    """``[sampling]``: the MD of each round.

    Attributes
    ----------
    rounds : int or None
        Most MD rounds, round 0 included (default: 4; with only ``max_total_steps``, no limit:
        the campaign spends its budget or converges).
    steps_per_round : int or None
        MD steps per walker and round (default: 200000; with only ``max_total_steps``, the
        budget over walkers x :data:`rave.campaign.schedule.BUDGET_ROUNDS` rounds, see
        :attr:`round_steps`).
    seed : int
        Seeds MD, VAE training and direction search, 0..2**31 - 1 (default 1).
    report_interval : int
        Steps between recorded frames (default 100).
    timestep : float or None
        Integration time step, ps (default: the system's).
    friction : float or None
        Langevin collision rate, 1/ps (default: the system's).
    platform : str
        "auto", "Reference", "CPU", "CUDA", "OpenCL" ("auto": Reference for a few particles,
        where it is fastest, else the fastest available).
    walkers : int
        Independent walkers per round under the same bias, each with its own seed and
        starting frame (default 1).
    scheduler : str
        "local" (a Dask cluster on this machine when walkers > 1), "serial" (walkers one after
        the other in this process) or a Dask scheduler address "tcp://host:8786".
    workers : int
        Worker processes of the local Dask cluster (0: min(walkers, cores)).
    max_retries : int
        Recoveries (back to the last checkpoint, half the time step) per walker and round
        before the round fails (default 4).
    snapshots : int
        Positions kept per walker and round as starting frames of later rounds (default 20).
    max_total_steps : int or None
        The campaign's MD budget: steps summed over all rounds and walkers, never exceeded;
        round lengths then adapt (see rave.campaign.schedule) and ``rounds`` is an upper bound
        on the number of rounds (None: the fixed schedule, rounds x steps_per_round).
    first_round_steps : int or None
        Steps per walker of the unbiased round 0 under a budget, a multiple of
        report_interval, >= 10 frames (default: steps_per_round / 4, at least 200 frames, at
        most steps_per_round; with only ``max_total_steps``, the budget's round length);
        only with max_total_steps.
    """

    rounds: int | None = None
    steps_per_round: int | None = None
    seed: int = 1
    report_interval: int = 100
    timestep: float | None = None
    friction: float | None = None
    platform: str = "auto"
    walkers: int = 1
    scheduler: str = "local"
    workers: int = 0
    max_retries: int = 4
    snapshots: int = 20
    max_total_steps: int | None = None
    first_round_steps: int | None = None

    def __post_init__(self) -> None:
        if self.rounds is not None:
            _at_least("sampling.rounds", self.rounds, 1)
        if self.steps_per_round is not None:
            _at_least("sampling.steps_per_round", self.steps_per_round, 1)
        if self.max_total_steps is not None:
            _at_least("sampling.max_total_steps", self.max_total_steps, 1)
        _at_least("sampling.walkers", self.walkers, 1)
        _at_least("sampling.workers", self.workers, 0)
        _at_least("sampling.max_retries", self.max_retries, 0)
        _at_least("sampling.snapshots", self.snapshots, 1)
        if self.scheduler not in ("local", "serial") and "://" not in self.scheduler:
            raise ConfigError(
                f'sampling.scheduler must be "local", "serial" or a Dask scheduler address such '
                f'as "tcp://10.0.0.5:8786". You supplied {self.scheduler!r}'
            )
        _at_least("sampling.report_interval", self.report_interval, 1)
        where = ("sampling.steps_per_round" if not self.budget_shaped else
                 f"the round length the budget gives (sampling.max_total_steps / "
                 f"({self.walkers} walker(s) x {BUDGET_ROUNDS} rounds))")
        if self.round_steps < self.report_interval:
            raise ConfigError(
                f"sampling.report_interval ({self.report_interval}) must not exceed "
                f"{where} ({self.round_steps}): a round records a frame every report_interval "
                f"steps. Lower report_interval or raise "
                f"{'max_total_steps' if self.budget_shaped else 'steps_per_round'}")
        if self.round_steps // self.report_interval < 10:
            raise ConfigError(
                f"{where} / sampling.report_interval gives "
                f"{self.round_steps // self.report_interval} frames per round; at least 10 "
                f"are needed. Raise "
                f"{'max_total_steps' if self.budget_shaped else 'steps_per_round'} or lower "
                f"report_interval"
            )
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"sampling.seed must be in 0..{MAX_SEED}. You supplied {self.seed}")
        self._check_budget()
        if self.timestep is not None:
            _positive("sampling.timestep", self.timestep)
        if self.friction is not None:
            _positive("sampling.friction", self.friction)
        allowed = ("auto", "Reference", "CPU", "CUDA", "OpenCL")
        if self.platform not in allowed:
            raise ConfigError(
                f"sampling.platform must be one of {', '.join(map(repr, allowed))}. "
                f"You supplied {self.platform!r}"
            )

    def _check_budget(self) -> None:
        ri = self.report_interval
        if self.first_round_steps is not None:
            if self.max_total_steps is None:
                raise ConfigError(
                    f"sampling.first_round_steps ({self.first_round_steps}) only applies with "
                    f"sampling.max_total_steps (a budget); without one every round runs "
                    f"sampling.steps_per_round. Remove first_round_steps or set max_total_steps")
            if self.first_round_steps < 10 * ri or self.first_round_steps % ri:
                raise ConfigError(
                    f"sampling.first_round_steps must be a multiple of sampling.report_interval "
                    f"({ri}) of at least 10 frames (>= {10 * ri}). You supplied "
                    f"{self.first_round_steps}")
        if self.max_total_steps is None:
            return
        first = self.planned_first_round_steps()
        if self.max_total_steps < first * self.walkers:
            raise ConfigError(
                f"sampling.max_total_steps must be >= the first round's steps x walkers "
                f"({first} x {self.walkers} = {first * self.walkers}): the budget counts every "
                f"walker's steps. You supplied {self.max_total_steps}. Raise max_total_steps or "
                f"lower sampling.first_round_steps")

    @property
    def budget_shaped(self) -> bool:
        """Whether the schedule follows from ``max_total_steps`` alone (no
        ``steps_per_round``): rounds of :attr:`round_steps`, at least
        :data:`rave.campaign.schedule.BUDGET_MIN_ROUNDS` of them within the budget."""
        return self.max_total_steps is not None and self.steps_per_round is None

    @property
    def round_steps(self) -> int:
        """Steps per walker of a round: ``steps_per_round``, or with only ``max_total_steps``
        the budget over walkers x :data:`rave.campaign.schedule.BUDGET_ROUNDS` rounds (a
        multiple of ``report_interval``), or 200000."""
        if self.steps_per_round is not None:
            return self.steps_per_round
        if self.max_total_steps is not None:
            per_round = self.max_total_steps // (self.walkers * BUDGET_ROUNDS)
            return per_round // self.report_interval * self.report_interval
        return DEFAULT_STEPS_PER_ROUND

    @property
    def round_limit(self) -> int:
        """Most rounds: ``rounds``, or 4, or with only ``max_total_steps`` no limit but the
        budget (:data:`UNLIMITED_ROUNDS`)."""
        if self.rounds is not None:
            return self.rounds
        return UNLIMITED_ROUNDS if self.budget_shaped else DEFAULT_ROUNDS

    def planned_first_round_steps(self) -> int | None:
        """Round 0's steps per walker under a budget: ``first_round_steps`` or its default; None
        without ``max_total_steps``.
        """
        from .schedule import default_first_round_steps

        if self.max_total_steps is None:
            return None
        if self.first_round_steps is not None:
            return self.first_round_steps
        if self.budget_shaped:
            return self.round_steps
        return default_first_round_steps(self.round_steps, self.report_interval)


@dataclass(frozen=True)
class ModelConfig:
    """``[vae]`` keys beyond the network's own (see rave.learn.vae.VAEConfig for those).

    Attributes
    ----------
    models : int
        VAEs trained per round with different seeds; spurious ones are dropped (default 3).
    threads : int
        CPU threads for training; 0 = every core this process may use that is free when
        training starts (CPU affinity, cgroup quota and OMP_NUM_THREADS respected) (default 0).
    cold_seeds : int
        From round 1 on, seeds trained from scratch each round; the others start from the
        previous round's models (warm start). At least one cold seed keeps a warm start from
        holding the RC on a stale direction; the seed trained cold rotates (default 1).
    stale_angle_deg : float
        A warm-started model whose RC is more than this off the best cold model's is dropped
        as stale, degrees (default 15.0).
    """

    models: int = 3
    threads: int = 0
    cold_seeds: int = 1
    stale_angle_deg: float = 15.0

    def __post_init__(self) -> None:
        _at_least("vae.models", self.models, 1)
        _at_least("vae.threads", self.threads, 0)
        _at_least("vae.cold_seeds", self.cold_seeds, 0)
        _positive("vae.stale_angle_deg", self.stale_angle_deg)
        if self.cold_seeds > self.models:
            raise ConfigError(f"vae.cold_seeds must be <= vae.models ({self.models}). You "
                              f"supplied {self.cold_seeds}")


@dataclass(frozen=True)
class CoordinateConfig:
    """``[coordinate]``: the linear RC chosen by KL matching.

    Attributes
    ----------
    bins : int
        Histogram bins of the KL divergence (default 50).
    kl_threshold : float
        A model whose best KL exceeds this (nats) is spurious and dropped (default 0.5).
    max_frames : int
        The RC is fitted on at most this many frames, a seeded random subset with their
        weights (default 50000); F(chi) and the bias always use every frame.
    kl_tie : float
        Models whose KL is within this of the lowest (nats) count as tied, and the tie goes to
        the RC closest to the previous round's (default 0.02: the KL of one model's RC fitted
        on different 50,000-frame subsets spread by 0.011-0.013 nats on the 10-D frames of
        python -m workflows.benchmarks.training).
    bootstrap : int
        Block-bootstrap replicates of the chosen RC (refits on resampled blocks of the RC
        frames): its direction's uncertainty, ``rc_angle_sigma_deg`` in round.json, which
        converged needs below convergence.angle_deg (default 8; 0: none).
    rc_choice : str
        "vae": the RC is the VAE's (the paper's); "barrier": the VAE's RC, its latent's
        least-squares direction, the most bimodal and the most skewed directions of the
        weighted frames and the previous RC compete, and the one along which F shows the
        highest barrier is the RC; while none shows two basins, the VAE's
        (rave.learn.estimator.RAVE, rave.learn.anharmonic). The default stays "vae": the barrier
        rule wins where the order parameters are coordinates and loses where they include
        bounded functions of stiff motions (docs/theory.md).
    basin_barrier_kT : float
        Least barrier between two basins of F along a candidate, kT (default 0.75).
    barrier_tie_kT : float
        Barriers within this of the highest tie (kT; the tie goes to the previous RC, then
        the bimodal direction; default 0.5).
    """

    bins: int = 50
    kl_threshold: float = 0.5
    max_frames: int = 50_000
    kl_tie: float = 0.02
    bootstrap: int = 8
    rc_choice: str = "vae"
    basin_barrier_kT: float = 0.75
    barrier_tie_kT: float = 0.5

    def __post_init__(self) -> None:
        _at_least("coordinate.bins", self.bins, 5)
        _at_most("coordinate.bins", self.bins, MAX_BINS)
        _at_least("coordinate.max_frames", self.max_frames, 100)
        if self.bootstrap != 0:
            _at_least("coordinate.bootstrap", self.bootstrap, 2)
        if not (math.isfinite(self.kl_tie) and self.kl_tie >= 0):
            raise ConfigError(f"coordinate.kl_tie must be a finite number >= 0. You supplied "
                              f"{self.kl_tie}")
        _positive("coordinate.kl_threshold", self.kl_threshold)
        if self.rc_choice not in ("vae", "barrier"):
            raise ConfigError(f"coordinate.rc_choice must be \"vae\" or \"barrier\". You "
                              f"supplied {self.rc_choice!r}")
        _positive("coordinate.basin_barrier_kT", self.basin_barrier_kT)
        if not (math.isfinite(self.barrier_tie_kT) and self.barrier_tie_kT >= 0):
            raise ConfigError(f"coordinate.barrier_tie_kT must be a finite number >= 0. You "
                              f"supplied {self.barrier_tie_kT}")


@dataclass(frozen=True)
class BiasConfig:
    """``[bias]``: V(chi) = damping * kT ln P(chi), see rave.learn.bias.build_bias_grid.

    Attributes
    ----------
    grid_points : int
        Points of the bias grid (default 128).
    padding : float
        Fraction of the sampled range added each side (default 0.25).
    cap_kT : float
        V >= -cap_kT kT (default 8.0).
    smoothing_bins : float
        Gaussian sigma in grid spacings (default 2.0).
    damping : float
        Fraction of -F biased, (0, 1] (default 1.0).
    force_group : int
        0..31, the force group of the bias force (default 30; a group the system's own forces
        use is refused by rave.BiasForce).
    method : str
        "opes" (default: OPES along the round's RC within the round, through openmm-opes;
        rave.md.opes) or "static" (the paper's V = kT ln P, fixed within a round). The default
        is the one that won the sampling-efficiency benchmarks (docs/benchmarks.md).
    opes_barrier_kjmol : float
        OPES barrier, kJ/mol (default 25.0).
    opes_pace : int
        Steps between kernels (default 500).
    opes_variance_pace : int
        Steps between kernel-width updates, divides opes_pace (default 100).
    opes_explore : bool
        OPES-explore instead of OPES-metaD (default false).
    opes_padding : float
        The OPES grid extends this fraction of the sampled chi range each side (default 2.0).
    opes_grid_points : int
        Points of the OPES grid (default 512).
    opes_block_kT : float
        Largest change of the bias within one MBAR state, kT (default 1.0).
    opes_restart_deg : float
        A round's OPES continues the previous round's (moved to the new RC) unless the RC
        turned by more than this, degrees (default 20.0).
    """

    grid_points: int = 128
    padding: float = 0.25
    cap_kT: float = 8.0
    smoothing_bins: float = 2.0
    damping: float = 1.0
    force_group: int = 30
    method: str = "opes"
    opes_barrier_kjmol: float = 25.0
    opes_pace: int = 500
    opes_variance_pace: int = 100
    opes_explore: bool = False
    opes_padding: float = 2.0
    opes_grid_points: int = 512
    opes_block_kT: float = 1.0
    opes_restart_deg: float = 20.0

    def __post_init__(self) -> None:
        _at_least("bias.grid_points", self.grid_points, 8)
        _at_most("bias.grid_points", self.grid_points, MAX_GRID_POINTS)
        _non_negative("bias.padding", self.padding)
        _positive("bias.cap_kT", self.cap_kT)
        _non_negative("bias.smoothing_bins", self.smoothing_bins)
        if not 0 < self.damping <= 1:
            raise ConfigError(f"bias.damping must be in (0, 1]. You supplied {self.damping}")
        if not 0 <= self.force_group <= 31:
            raise ConfigError(f"bias.force_group must be in 0..31. You supplied "
                              f"{self.force_group}")
        if self.method not in ("static", "opes"):
            raise ConfigError(f'bias.method must be "static" or "opes". You supplied '
                              f"{self.method!r}")
        _positive("bias.opes_barrier_kjmol", self.opes_barrier_kjmol)
        _at_least("bias.opes_pace", self.opes_pace, 1)
        _at_least("bias.opes_variance_pace", self.opes_variance_pace, 1)
        if self.opes_pace % self.opes_variance_pace:
            raise ConfigError(f"bias.opes_variance_pace ({self.opes_variance_pace}) must divide "
                              f"bias.opes_pace ({self.opes_pace})")
        if not isinstance(self.opes_explore, bool):
            raise ConfigError(f"bias.opes_explore must be true or false. You supplied "
                              f"{self.opes_explore!r}")
        _non_negative("bias.opes_padding", self.opes_padding)
        _at_least("bias.opes_grid_points", self.opes_grid_points, 8)
        _at_most("bias.opes_grid_points", self.opes_grid_points, MAX_GRID_POINTS)
        _positive("bias.opes_block_kT", self.opes_block_kT)
        if not 0 <= self.opes_restart_deg <= 180:
            raise ConfigError(f"bias.opes_restart_deg must be in [0, 180]. You supplied "
                              f"{self.opes_restart_deg}")


@dataclass(frozen=True)
class ConvergenceConfig:
    """``[convergence]``: when to stop before ``sampling.rounds``.

    Attributes
    ----------
    angle_deg : float
        RC direction change between rounds below this, degrees (default 5.0).
    free_energy_kT : float
        RMS change of F(chi) where F < profile_max_kT below this, kT (default 0.5).
    profile_max_kT : float
        Region of F(chi) compared, kT (default 5.0).
    min_rounds : int
        Never stop before this many MD rounds (default 3).
    bootstrap : int
        Replicates of the block bootstrap (MBAR re-solved in each) that give the RMS
        uncertainty of F(chi) where F < profile_max_kT; converged also needs it below
        free_energy_kT (default 16; 0: no bootstrap, the verdict then rests on the changes
        alone).
    """

    angle_deg: float = 5.0
    free_energy_kT: float = 0.5
    profile_max_kT: float = 5.0
    min_rounds: int = 3
    bootstrap: int = 16

    def __post_init__(self) -> None:
        _positive("convergence.angle_deg", self.angle_deg)
        _positive("convergence.free_energy_kT", self.free_energy_kT)
        _positive("convergence.profile_max_kT", self.profile_max_kT)
        _at_least("convergence.min_rounds", self.min_rounds, 2)
        if self.bootstrap != 0:
            _at_least("convergence.bootstrap", self.bootstrap, 4)


@dataclass(frozen=True)
class ExploreConfig:
    """``[explore]``: round 0 as an expanded ensemble over temperatures, before any RC exists
    (:mod:`rave.md.explore`, OpenMM's ``ExpandedEnsembleSampler``).

    Attributes
    ----------
    method : str
        "temperature": round 0 calibrates at the system's temperature, then moves between a
        ladder of temperatures; every frame of every temperature is reweighted to the
        system's temperature by MBAR with the other rounds. "none": the paper's plain
        unbiased round 0 (default "none").
    max_temperature_K : float
        The hottest state, K (default: 4 x the system's temperature).
    states : int
        Temperatures in the ladder, the system's included; 0: sized from the energy
        fluctuations measured in the calibration (default 0).
    spacing_sigma : float
        Sized ladder: neighbouring states' mean energies this many standard deviations of U
        apart (default 1.0).
    max_states : int
        A sized ladder that needs more states is refused, with advice (default 32).
    move_interval : int
        MD steps between state moves (default 25).
    calibration_fraction : float
        Share of round 0's frames run at the system's temperature first (default 0.05, at
        least 20 frames).
    settle_tolerance : float
        Frames of the expanded ensemble count from the frame after which the sampler's
        weights stay within this of their final values (ln of a weight; default 1.0).
    """

    method: str = "none"
    max_temperature_K: float | None = None
    states: int = 0
    spacing_sigma: float = 1.0
    max_states: int = 32
    move_interval: int = 25
    calibration_fraction: float = 0.05
    settle_tolerance: float = 1.0

    def __post_init__(self) -> None:
        if self.method not in ("none", "temperature"):
            raise ConfigError(f'explore.method must be "none" or "temperature". You supplied '
                              f'{self.method!r}')
        if self.max_temperature_K is not None:
            _positive("explore.max_temperature_K", self.max_temperature_K)
        if self.states != 0:
            _at_least("explore.states", self.states, 2)
        _positive("explore.spacing_sigma", self.spacing_sigma)
        _at_least("explore.max_states", self.max_states, 2)
        _at_least("explore.move_interval", self.move_interval, 1)
        if not (math.isfinite(self.calibration_fraction) and 0 < self.calibration_fraction < 1):
            raise ConfigError(f"explore.calibration_fraction must be in (0, 1). You supplied "
                              f"{self.calibration_fraction}")
        _positive("explore.settle_tolerance", self.settle_tolerance)

    @property
    def enabled(self) -> bool:
        """Whether round 0 explores."""
        return self.method != "none"

    def spec(self, temperature_K: float):
        """The walkers' :class:`rave.md.explore.ExplorationSpec` at ``temperature_K`` (K).

        Raises ConfigError when ``max_temperature_K`` is not above it.
        """
        from ..md.explore import ExplorationSpec

        t_max = (DEFAULT_MAX_TEMPERATURE_FACTOR * temperature_K
                 if self.max_temperature_K is None else self.max_temperature_K)
        if not t_max > temperature_K:
            raise ConfigError(f"explore.max_temperature_K ({t_max:g}) must be above "
                              f"system.temperature ({temperature_K:g} K)")
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(ExplorationSpec)
                  if f.name != "max_temperature_K"}
        return ExplorationSpec(max_temperature_K=t_max, **shared)


#: [explore] max_temperature_K by default: this times the system's temperature
DEFAULT_MAX_TEMPERATURE_FACTOR = 4.0


@dataclass(frozen=True)
class OutputConfig:
    """``[output]``: what a campaign draws and shows.

    Attributes
    ----------
    figures : bool
        A PNG per round and a final one (default true).
    progress : bool
        Progress bars (default true); drawn only when the terminal log goes to a terminal.
    dcd_interval : int
        Write each walker's positions as a DCD trajectory, ``round_NNN/walkers/walker_KK.dcd``,
        every ``dcd_interval``-th recorded frame (in frames of ``sampling.report_interval``
        steps; default 0: no trajectory). With 1 the DCD's frames are the walker's frames of
        ``frames.npz``, the same frames in the same order; with k its frames 0, k, 2k, ... (the
        walker file's ``trajectory_frames`` names them). Written with the walker's file, before
        it, atomically: a stored walker always has its whole DCD, a resumed one rewrites it.
    """

    figures: bool = True
    progress: bool = True
    dcd_interval: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.dcd_interval, bool) or not isinstance(self.dcd_interval, int):
            raise ConfigError(f"output.dcd_interval must be an integer (frames of "
                              f"sampling.report_interval; 0: no trajectory). You supplied "
                              f"{self.dcd_interval!r}")
        _at_least("output.dcd_interval", self.dcd_interval, 0)


def _positive(key: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{key} must be a finite number > 0. You supplied {value}")


def _non_negative(key: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError(f"{key} must be a finite number >= 0. You supplied {value}")


def _at_least(key: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum}. You supplied {value}")


def _at_most(key: str, value: int, maximum: int) -> None:
    if value > maximum:
        raise ConfigError(f"{key} must be <= {maximum}. You supplied {value}")

