"""The RAVE bias: V(chi) = kT ln P(chi) built on a grid from reweighted frames, and the bias states
of the rounds (static, or blocks of an adaptive round) for MBAR.

The bias of a round is built from the reweighted frames of all rounds so far, projected on the
reaction coordinate chi = sum_i c_i s_i:

1. a weighted histogram P(chi) on a grid padded past the sampled range (unsampled bins are 0);
2. F = -ln(P / max P) in kT, floored where P is empty;
3. V = -damping * kT * F, capped at V >= -cap_kT * kT;
4. a Gaussian smoothing of V (``smoothing_bins`` grid spacings, edge values held), then a shift
   so that max V = 0.

The grid and its numpy evaluation (:class:`BiasGrid`, :class:`Bias`), shared with the MD layer
that applies it, live in :mod:`rave.bias_grid`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..bias_grid import Bias, BiasGrid
from ..stats.weights import as_energy_kjmol, as_log_weights, free_energy_histogram
from ..units import kT_kjmol


def build_bias_grid(
    chi: np.ndarray,
    log_weights: np.ndarray | None,
    kT: float,
    *,
    n_points: int = 128,
    padding: float = 0.25,
    cap_kT: float = 8.0,
    smoothing_bins: float = 2.0,
    damping: float = 1.0,
) -> BiasGrid:
    """Build V(chi) = damping * kT ln P(chi) from weighted frames, shifted to max 0.

    Raises ValueError: when ``chi`` is empty or not finite, ``kT`` or ``cap_kT`` is not > 0,
    ``n_points < 8``, ``padding`` or ``smoothing_bins`` is negative, ``damping`` is not in (0, 1],
    or the sampled range of chi has no width.
    """
    chi = np.asarray(chi, dtype=float).reshape(-1)
    if chi.size == 0:
        raise ValueError("chi is empty: no frames to build a bias from")
    if not np.all(np.isfinite(chi)):
        raise ValueError(f"chi holds {np.count_nonzero(~np.isfinite(chi))} NaN/inf values")
    if log_weights is not None:
        log_weights = as_log_weights(log_weights, chi.size, like="chi")
    kT = as_energy_kjmol(kT, "kT")  # a float in kJ/mol or an OpenMM energy Quantity
    if n_points < 8:
        raise ValueError(f"n_points must be >= 8. You supplied {n_points}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0. You supplied {padding}")
    if not cap_kT > 0:
        raise ValueError(f"cap_kT must be > 0. You supplied {cap_kT}")
    if smoothing_bins < 0:
        raise ValueError(f"smoothing_bins must be >= 0. You supplied {smoothing_bins}")
    if not 0 < damping <= 1:
        raise ValueError(f"damping must be in (0, 1]. You supplied {damping}")

    lo, hi = float(chi.min()), float(chi.max())
    width = hi - lo
    if width <= 1e-12 * max(1.0, abs(lo)):
        raise ValueError(
            f"chi has no spread (all frames at {lo:g}): a bias needs frames over a range of chi"
        )
    chi_min, chi_max = lo - padding * width, hi + padding * width
    grid = np.linspace(chi_min, chi_max, n_points)
    spacing = grid[1] - grid[0]
    edges = np.concatenate([grid - 0.5 * spacing, [grid[-1] + 0.5 * spacing]])
    free_energy_kT = free_energy_histogram(chi, log_weights, edges, density=False)
    free_energy_kT -= free_energy_kT.min()
    free_energy_kT = np.minimum(free_energy_kT, cap_kT / damping)  # empty bins -> the cap
    values = np.maximum(-damping * free_energy_kT, -cap_kT)
    if smoothing_bins > 0:
        values = gaussian_filter1d(values, smoothing_bins, mode="nearest")
    values = (values - values.max()) * kT
    return BiasGrid(chi_min, chi_max, values)


def adaptive_bias_dict(coefficients: Sequence[float], chi_min: float, chi_max: float,
                       blocks: Sequence[tuple[np.ndarray, int]]) -> dict:
    """``bias_applied.json`` of an adaptive round: its RC, ``grid`` = the last block's bias (the
    bias in force at the end of the round, a :class:`Bias` for readers that want one) and
    ``states``: each block's bias and frames, in the order of the round's frames.

    Raises ValueError: when ``blocks`` is empty.
    """
    if not blocks:
        raise ValueError("an adaptive round needs at least one block of frames")
    last = BiasGrid(chi_min, chi_max, np.asarray(blocks[-1][0], dtype=float))
    return {
        "method": "opes",
        **Bias(np.asarray(coefficients, dtype=float), last).to_dict(),
        "states": [{"values_kjmol": [float(v) for v in values], "frames": int(n)}
                   for values, n in blocks],
    }


@dataclass(frozen=True)
class TemperatureState:
    """An unbiased thermodynamic state at another temperature (a state of an exploring round's
    ladder): its reduced potential is U / kT_k, so relative to the target temperature a frame's
    reduced bias is (1/kT_k - 1/kT) U.
    """

    temperature_K: float

    def reduced_bias(self, potential_kjmol: np.ndarray, kT: float) -> np.ndarray:
        """(1/kT_k - 1/kT) U of each frame: the state's reduced potential less the target's."""
        return (1.0 / kT_kjmol(self.temperature_K) - 1.0 / kT) * np.asarray(potential_kjmol,
                                                                           dtype=float)


def exploration_dict(temperatures_K: Sequence[float], counts: Sequence[int]) -> dict:
    """``bias_applied.json`` of an exploring round: one MBAR state per temperature of its
    walkers' ladders, with the frames sampled in it (the round's ``frames.npz`` labels each
    frame's state).
    """
    return {"method": "explore",
            "states": [{"temperature_K": float(t), "frames": int(n)}
                       for t, n in zip(temperatures_K, counts, strict=True)]}


def applied_states(data: dict | None, n_frames: int
                   ) -> list[tuple[Bias | TemperatureState | None, int]]:
    """The bias states a round's frames were sampled under, in frame order, from its
    ``bias_applied.json`` (None: the unbiased round): one static bias, or the blocks of an
    adaptive round (:func:`adaptive_bias_dict`). Each is (bias or None, frames).

    Raises ValueError: when the frames of an adaptive round's states do not add up to ``n_frames``.
    """
    if data is None:
        return [(None, int(n_frames))]
    if "states" not in data:
        return [(Bias.from_dict(data), int(n_frames))]
    if data.get("method") == "explore":
        states = [(TemperatureState(float(s["temperature_K"])), int(s["frames"]))
                  for s in data["states"]]
        total = sum(n for _, n in states)
        if total != n_frames:
            raise ValueError(f"the temperature states hold {total} frames but the round has "
                             f"{n_frames}")
        return states
    grid = data["grid"]
    coefficients = np.asarray(data["coefficients"], dtype=float)
    states = [(Bias(coefficients, BiasGrid(float(grid["chi_min"]), float(grid["chi_max"]),
                                           np.asarray(s["values_kjmol"], dtype=float))),
               int(s["frames"])) for s in data["states"]]
    total = sum(n for _, n in states)
    if total != n_frames:
        raise ValueError(f"the bias states hold {total} frames but the round has {n_frames}")
    return states


def reduced_bias_matrix(features: np.ndarray,
                        states: Sequence[tuple[Bias | TemperatureState | None, int]],
                        kT: float, potential_kjmol: np.ndarray | None = None
                        ) -> tuple[np.ndarray, list[int]]:
    """MBAR's input: reduced[k, n] = V_k(frame n) / kT of every frame under every state's bias
    (None: unbiased, 0; a :class:`TemperatureState`: (1/kT_k - 1/kT) U), and the frames of each
    state.

    Raises ValueError: temperature states without ``potential_kjmol`` for every frame.
    """
    features = np.asarray(features, dtype=float)
    reduced = np.zeros((len(states), len(features)))
    for k, (bias, _) in enumerate(states):
        if isinstance(bias, TemperatureState):
            if potential_kjmol is None or len(potential_kjmol) != len(features):
                raise ValueError("temperature states need the potential energy of every frame "
                                 "(potential_kjmol)")
            reduced[k] = bias.reduced_bias(potential_kjmol, kT)
        elif bias is not None:
            reduced[k] = bias.energy(features) / kT
    return reduced, [int(n) for _, n in states]


def frame_states(states_per_round: Sequence[Sequence[tuple]],
                 labels_per_round: Sequence[np.ndarray | None]) -> np.ndarray:
    """The MBAR state of every frame of every round, states numbered over all rounds.

    A round's states hold its frames in frame order (a static round, the blocks of an adaptive
    one), except an exploring round's temperature states, whose frames interleave and carry
    their state as a label (``frames.npz``'s ``state``).
    """
    out, first = [], 0
    for states, labels in zip(states_per_round, labels_per_round, strict=True):
        if labels is not None and isinstance(states[0][0], TemperatureState):
            out.append(first + np.asarray(labels, dtype=np.int64))
        else:
            out.append(first + np.repeat(np.arange(len(states)), [n for _, n in states]))
        first += len(states)
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def frame_potentials(states_per_round: Sequence[Sequence[tuple]],
                     potentials_per_round: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """Every frame's potential energy when some round has temperature states (what
    :func:`reduced_bias_matrix` needs then), else None.

    Raises ValueError: temperature states while a round recorded no potential energies (the message
    names the rounds).
    """
    if not any(isinstance(b, TemperatureState) for r in states_per_round for b, _ in r):
        return None
    missing = [i for i, u in enumerate(potentials_per_round) if u is None]
    if missing:
        raise ValueError(f"round(s) {missing} hold no potential energies (frames.npz without "
                         f"potential_kjmol), which reweighting across the temperatures of an "
                         f"exploring round needs")
    return np.concatenate([np.asarray(u, dtype=float) for u in potentials_per_round])
