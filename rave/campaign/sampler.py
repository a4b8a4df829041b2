"""RAVE in a user's own OpenMM script: one object attached to their Simulation.

Shaped as ``app.Metadynamics`` and openmm-opes' ``OPES``: build :class:`RAVESampler` from the
System (before the Simulation: it adds its bias force), the order parameters and the
temperature, build the Simulation, then call :meth:`RAVESampler.step` instead of
``simulation.step``. As the steps go by it runs the rounds ``rave run`` runs, through the same
:class:`rave.campaign.loop.RoundLoop`: round 0 unbiased (or the expanded ensemble over
temperatures with ``explore``), then after each round MBAR over every frame, the RAVE step,
F(chi) and the next round's bias (OPES along the RC by default, or the static kT ln P bias),
round lengths from the budget (``sampling={"max_total_steps": ...}``), until the RC and F
converge or the budget is spent. Settings are the TOML's sections as dicts, with the same
keys and defaults (:class:`rave.campaign.config.LoopConfig`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from ..learn.bias import Bias, BiasGrid
from ..md.bias_force import BiasForce
from ..md.frames import Frames
from ..md.walker import check_thermostat
from ..stats import free_energy_histogram, free_energy_profile
from ..units import in_unit, kT_kjmol
from .config import ConfigError, loop_config_from_dict
from .loop import LearnedRound, NextRound, RoundLoop
from .walkers import WalkerResult, WalkerRound, round_frames

__all__ = ["RAVESampler"]

log = logging.getLogger("rave")

#: bins of getFreeEnergy's profiles unless told
FREE_ENERGY_BINS = 50
#: frames a round records before steps shorter than a frame may take frames off it (the RAVE
#: step needs at least 2 frames, rave.learn.estimator)
MIN_ROUND_FRAMES = 2


class _Round:
    """The round being run: what it applies, its walker and its frames so far."""

    def __init__(self, step: NextRound, steps: int, reason: str, walker, piece: WalkerRound):
        self.step, self.steps, self.reason = step, steps, reason
        self.walker, self.piece = walker, piece
        self.unrecorded = 0  # steps of the round that filled no frame
        self.carry = 0  # of those, not yet taken off the round's frames
        self.t0 = time.perf_counter()


class RAVESampler:
    """The RAVE loop attached to a user's Simulation (as ``app.Metadynamics``).

    Parameters
    ----------
    system : openmm.System
        The user's System; a :class:`rave.BiasForce` is added to it (in a free force group),
        so build the Simulation after this object.
    features : sequence of rave.md.features.Feature
        The order parameters the RC is learned from.
    temperature : float or openmm.unit.Quantity
        The thermostat's temperature, K.
    sampling, vae, coordinate, bias, convergence, explore : dict, optional
        The TOML's sections of the same names (same keys, same defaults), e.g.
        ``sampling={"max_total_steps": 400000, "report_interval": 100}``,
        ``explore={"method": "temperature"}``. ``sampling.walkers`` must be 1 (one
        Simulation); ``scheduler``, ``workers``, ``platform`` and ``timestep`` are the
        Simulation's own here and are ignored.
    forceGroup : int, optional
        The bias's force group (default: the highest free one).

    Attributes
    ----------
    features : list of Feature
        The order parameters.
    temperature_K : float
        K.
    kT : float
        kJ/mol.
    bias_force : rave.BiasForce
        The static bias in the System.
    loop : rave.campaign.loop.RoundLoop
        The rounds and what they learned (the same loop as ``rave run``'s).
    stop_reason : str or None
        Why the rounds stopped (None while they go on); later steps run under the last bias.
    unrecorded_steps : int
        Steps of the rounds that filled no whole frame at the end of a :meth:`step` call.
    steps_after_stop : int
        Steps run after the rounds stopped.

    Raises
    ------
    rave.campaign.config.ConfigError
        An unknown section key or a value out of range (the message names the key).
    ValueError
        Features outside the System, or more than one walker.

    Examples
    --------
    >>> sampler = rave.RAVESampler(system, features, 300 * unit.kelvin,
    ...                            sampling={"max_total_steps": 400_000})  # doctest: +SKIP
    >>> simulation = app.Simulation(topology, system, integrator)  # doctest: +SKIP
    >>> sampler.step(simulation, 400_000)  # doctest: +SKIP
    >>> centers, f_kT = sampler.getFreeEnergy()  # doctest: +SKIP
    """

    def __init__(self, system, features: Sequence, temperature, *, sampling: dict | None = None,
                 vae: dict | None = None, coordinate: dict | None = None,
                 bias: dict | None = None, convergence: dict | None = None,
                 explore: dict | None = None, forceGroup: int | None = None) -> None:  # noqa: N803
        sections = {"sampling": sampling, "vae": vae, "coordinate": coordinate, "bias": bias,
                    "convergence": convergence, "explore": explore}
        self.config = loop_config_from_dict({k: v for k, v in sections.items()
                                             if v is not None})
        if self.config.sampling.walkers != 1:
            raise ConfigError(f"sampling.walkers must be 1 for RAVESampler (it steps one "
                              f"Simulation). You supplied {self.config.sampling.walkers}; "
                              f"`rave run` runs several walkers")
        self.features = list(features)
        self.temperature_K = in_unit(temperature, "kelvin")
        if not self.temperature_K > 0:
            raise ValueError(f"temperature must be > 0 K. You supplied {self.temperature_K}")
        self.kT = kT_kjmol(self.temperature_K)
        self.bias_force = BiasForce(system, self.features, self.temperature_K,
                                    forceGroup=forceGroup)
        self.system = system
        self.loop = RoundLoop(self.config, self.bias_force.featureNames, self.kT,
                              self.temperature_K, where="this RAVESampler")
        self.stop_reason: str | None = None
        self.unrecorded_steps = 0
        self.steps_after_stop = 0
        self._round: _Round | None = None
        self._unlearned: tuple[_Round, WalkerResult] | None = None
        self._last: WalkerResult | None = None
        self._learned: LearnedRound | None = None

    # ------------------------------------------------------------------ stepping
    def step(self, simulation, steps: int) -> None:
        """Advance the Simulation by ``steps`` MD steps, running the RAVE rounds as they fall.

        A round ends when its planned frames are in; then the learning step runs (MBAR, the
        VAEs, the RC, F, the next bias) before the next step. Steps that do not fill a whole
        frame (``sampling.report_interval``) at the end of a call run biased but unrecorded
        (:attr:`unrecorded_steps` counts them). Once the rounds stop (:attr:`stop_reason`),
        steps run under the last round's RC as a static kT ln P bias.

        Parameters
        ----------
        simulation : openmm.app.Simulation
            Built from the System this object was given.
        steps : int
            MD steps (>= 0).

        Raises
        ------
        ValueError
            A negative ``steps``; a Simulation of another System or temperature, or without
            a thermostat; explore with an integrator whose temperature cannot be set; steps
            that would end a round with no frame (each call shorter than a frame).
        rave.md.walker.MDError
            The MD blew up (the rounds so far are kept).
        """
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0. You supplied {steps}")
        self._check_simulation(simulation)
        if self._unlearned is not None:  # the last round's learning step was interrupted
            self._learn_round(simulation)
        interval = self.config.sampling.report_interval
        requested = steps
        while steps > 0:
            if self._round is None and not self._start_round(simulation):
                simulation.step(steps)
                self.steps_after_stop += steps
                return
            current = self._round
            n_frames = current.piece.next_piece(steps // interval)
            if (n_frames == 0 and steps == requested and current.piece.done < MIN_ROUND_FRAMES
                    and current.carry + steps >= interval):  # refused before any MD of the call
                raise ValueError(
                    f"step(simulation, {steps}): {current.step.label.split(' (')[0]} has "
                    f"{current.piece.done} frame(s) so far and this call would drop one "
                    f"unrecorded: a frame takes "
                    f"sampling.report_interval = {interval} steps within one call, and "
                    f"{current.unrecorded} of the round's steps so far fell in shorter calls "
                    f"(unrecorded). Call "
                    f"step() with at least {interval} steps at a time (a multiple of it records "
                    f"every step), or lower sampling.report_interval")
            if n_frames == 0:
                self._unrecorded(simulation, steps)
                return
            before = current.piece.done
            current.piece.run(n_frames)
            steps -= (current.piece.done - before) * interval
            if current.piece.left == 0:
                self._finish_round(simulation)

    def _check_simulation(self, simulation) -> None:
        if simulation.system is not self.system:
            raise ValueError("the Simulation was not built from the System given to this "
                             "RAVESampler (its bias force is not in it): build the Simulation "
                             "from that System, after the RAVESampler")
        ladder = self._round is not None and self._round.walker.ladder is not None
        check_thermostat(simulation, self.temperature_K, self.config.explore.enabled, ladder)

    def _unrecorded(self, simulation, steps: int) -> None:
        """Steps that fill no whole frame: run biased, counted in the round's steps; each
        report_interval of them takes one frame off the round, so that the rounds' steps
        (recorded or not) keep to the plan and the budget."""
        current = self._round
        if current.walker.opes is not None:
            current.walker.opes.opes.step(simulation, steps)
        else:
            simulation.step(steps)
        self.unrecorded_steps += steps
        current.unrecorded += steps
        current.carry += steps
        interval = self.config.sampling.report_interval
        while current.carry >= interval and current.piece.left > 0:
            current.piece.n_frames -= 1
            current.carry -= interval
        if current.piece.left == 0:
            self._finish_round(simulation)

    def _start_round(self, simulation) -> bool:
        """Set up the next round; False when the rounds stop."""
        from ..md.walker import Walker

        if self._stopped(simulation):
            return False
        index = len(self.loop.records)
        plan = self.loop.plan()
        step = self.loop.next_round(index)
        self.bias_force.updateBias(simulation.context, step.bias if step.bias is not None else
                               Bias(np.zeros(len(self.features)), BiasGrid.zero()))
        continued = None
        if step.opes is not None:
            continued = self.loop.opes_continuation(
                index, step.opes, lambda: [self._last.opes_state])[0]
        walker = Walker.adopt(simulation, self.features, self.temperature_K, self.bias_force,
                              opes=None if step.opes is None else step.opes.to_dict(),
                              opes_state=continued,
                              record_potential=self.loop.records_potential())
        sampling = self.config.sampling
        n_frames = plan.steps // sampling.report_interval
        piece = WalkerRound(walker, n_frames, sampling.report_interval,
                            max(1, n_frames // sampling.snapshots),
                            self.loop.exploration() if step.exploring else None,
                            ladder_seed=sampling.seed + 1)
        log.info("%s: %d steps, %d frames (%s)", step.label, plan.steps, n_frames, plan.reason)
        self._round = _Round(step, int(plan.steps), plan.reason, walker, piece)
        return True

    def _stopped(self, simulation) -> bool:
        """Whether the rounds stop (converged, budget spent, round limit); on stopping, the
        last RC's kT ln P bias is put in force for the steps after."""
        if self.stop_reason is not None:
            return True
        converged = self.converged
        limit = self.config.sampling.round_limit
        if not (converged or self.loop.plan().steps is None or len(self.loop.records) >= limit):
            return False
        self.stop_reason = self.loop.stop_reason(converged, limit)
        if self.loop.next_bias is not None:
            self.bias_force.updateBias(simulation.context, self.loop.next_bias)
        log.info("RAVESampler: rounds stop (%s); later steps run under the last RC's kT ln P "
                 "bias", self.stop_reason)
        return True

    def _finish_round(self, simulation) -> None:
        current, self._round = self._round, None
        result = current.piece.result(current.step.index, 0, self.config.sampling.seed,
                                      time.perf_counter() - current.t0, [])
        current.walker.release()
        self._unlearned = (current, result)
        self._learn_round(simulation)

    def _learn_round(self, simulation) -> None:
        """The learning step after the round whose MD is done; the round's frames join the
        loop only once it completes (interrupted, e.g. by Ctrl-C, it runs again at the next
        :meth:`step`, on the same frames)."""
        current, result = self._unlearned
        step, index = current.step, current.step.index
        frames = round_frames([result])
        timings = {"md": result.wall_s}
        applied = None if step.bias is None else step.bias.to_dict()
        if step.exploring:
            applied = self.loop.exploration_applied(step.label, [result], frames)
        if step.opes is not None:
            applied = self.loop.adaptive_applied(index, step.opes, [result], "memory")
        self.loop.add_round(frames, applied, step.opes is not None)
        try:
            learned = self.loop.learn(index, timings)
        except BaseException:
            del self.loop.frames[-1], self.loop.biases[-1], self.loop.adaptive[-1]
            raise
        self._unlearned = None
        record = learned.record
        record.walkers, record.faults = 1, 0
        record.steps = len(result) * self.config.sampling.report_interval + current.unrecorded
        record.plan_reason = current.reason
        self.loop.records.append(record)
        self._last, self._learned = result, learned
        log.info("%s done: RC %s, %s", step.label, np.round(record.coefficients, 3).tolist(),
                 "converged" if record.converged else "not converged: "
                 + "; ".join(record.convergence_failures))
        self._stopped(simulation)

    # ------------------------------------------------------------------ what it learned
    @property
    def records(self) -> list:
        """The complete rounds' records (:class:`rave.campaign.store.RoundRecord`)."""
        return self.loop.records

    @property
    def converged(self) -> bool:
        """Whether the last complete round met the convergence criteria."""
        return bool(self.loop.records) and self.loop.records[-1].converged

    @property
    def coefficients(self) -> np.ndarray | None:
        """The current RC chi = c . s (unit norm, feature order), or None before round 0 ends."""
        return self.loop.previous_coefficients

    def getFrames(self) -> Frames:  # noqa: N802 - OpenMM's style
        """Every recorded frame of the complete rounds (features, bias energies, times).

        Returns
        -------
        rave.md.frames.Frames

        Raises
        ------
        RuntimeError
            No round is complete yet.
        """
        self._require_round()
        frames = self.loop.frames
        return Frames(np.concatenate([f.features for f in frames]),
                      np.concatenate([f.bias_kjmol for f in frames]),
                      np.concatenate([f.time_ps for f in frames]))

    def getLogWeights(self) -> np.ndarray:  # noqa: N802 - OpenMM's style
        """The MBAR log-weights of every frame of :meth:`getFrames` at the temperature
        (normalised: they sum to 1).

        Returns
        -------
        np.ndarray, shape=(n_frames,)

        Raises
        ------
        RuntimeError
            No round is complete yet.
        """
        self._require_round()
        return np.asarray(self.loop.previous_log_weights, dtype=float)

    def getFreeEnergy(self, along=None, bins: int | Sequence = FREE_ENERGY_BINS):  # noqa: N802
        """F = -kT ln P at the temperature from every frame so far, reweighted.

        Parameters
        ----------
        along : None, str, or array_like, optional
            None: the current RC chi; a feature name: that order parameter; the name X of a
            pair of features ``sin_X`` and ``cos_X``: the angle X (rad); an array of shape
            (n_frames,): any per-frame value the user computed from :meth:`getFrames` (e.g.
            phi = arctan2(sin phi, cos phi)); an array of shape (n_frames, 2), or two names:
            a 2-D F.
        bins : int or sequence
            Bins (equal, over the values' range) or edges; for 2-D, per axis.

        Returns
        -------
        tuple
            1-D: ``(centers, F)``; 2-D: ``(centers_x, centers_y, F)`` with F of shape
            (n_x, n_y). F in kT, its minimum 0, inf where no frame fell.

        Raises
        ------
        RuntimeError
            No round is complete yet.
        ValueError
            An unknown feature name, or values of the wrong length.
        """
        self._require_round()
        values = self._values(along)
        log_w = self.getLogWeights()
        if values.ndim == 1:
            edges = (np.linspace(values.min(), values.max(), int(bins) + 1)
                     if np.ndim(bins) == 0 else np.asarray(bins, dtype=float))
            return free_energy_profile(values, log_w, edges)
        per_axis = bins if np.ndim(bins) else (bins, bins)
        edges = [np.linspace(v.min(), v.max(), int(b) + 1) if np.ndim(b) == 0 else
                 np.asarray(b, dtype=float) for v, b in zip(values.T, per_axis, strict=True)]
        f = free_energy_histogram(values, log_w, edges)
        f = f - np.min(f[np.isfinite(f)])
        ex, ey = edges
        return 0.5 * (ex[1:] + ex[:-1]), 0.5 * (ey[1:] + ey[:-1]), f

    def _values(self, along) -> np.ndarray:
        features = self.getFrames().features
        names = self.bias_force.featureNames
        if along is None:
            return features @ self.coefficients
        if isinstance(along, str) or (isinstance(along, Sequence) and along
                                      and all(isinstance(a, str) for a in along)):
            chosen = [along] if isinstance(along, str) else list(along)
            if len(chosen) > 2:
                raise ValueError(f"along names {len(chosen)} order parameters; F is 1-D or "
                                 f"2-D: give one or two of {names}")
            columns = np.stack([self._column(features, names, a) for a in chosen], axis=1)
            return columns[:, 0] if len(chosen) == 1 else columns
        values = np.asarray(along, dtype=float)
        if not (values.ndim == 1 or values.ndim == 2 and values.shape[1] == 2):
            raise ValueError(f"along must be one value per frame, shape ({len(features)},), "
                             f"or two, shape ({len(features)}, 2). You supplied shape "
                             f"{values.shape}")
        if len(values) != len(features):
            raise ValueError(f"along holds {len(values)} values for {len(features)} frames "
                             f"(getFrames())")
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise ValueError(f"along holds {bad} NaN or inf value(s): every frame needs a "
                             f"finite value (e.g. phi = arctan2(sin phi, cos phi))")
        return values

    @staticmethod
    def _column(features: np.ndarray, names: list[str], name: str) -> np.ndarray:
        """A feature's values by name, or the angle (rad, in [-pi, pi]) of a pair of features
        named ``sin_<name>`` and ``cos_<name>``."""
        if name in names:
            return features[:, names.index(name)]
        if f"sin_{name}" in names and f"cos_{name}" in names:
            return np.arctan2(features[:, names.index(f"sin_{name}")],
                              features[:, names.index(f"cos_{name}")])
        raise ValueError(f"unknown order parameter {name!r}. The features are {names} (an "
                         f"angle is named by its sin_ and cos_ pair's name)")

    def _require_round(self) -> None:
        if not self.loop.records:
            raise RuntimeError("no RAVE round is complete yet: step() further (round 0 takes "
                               f"{self.loop.plan().steps} steps)")

    def getBiasEnergy(self, simulation):  # noqa: N802 - OpenMM's style
        """The energy of the bias in force (static and OPES), as an OpenMM Quantity.

        Parameters
        ----------
        simulation : openmm.app.Simulation
            The Simulation this sampler steps.

        Returns
        -------
        openmm.unit.Quantity
            kJ/mol.
        """
        if self._round is not None:
            return self._round.walker.bias_energy()
        return self.bias_force.getBiasEnergy(simulation.context)
