"""Frames: the order parameters of an MD run with the bias each frame felt (numpy only).

One type for what a walker records and a round stores (``round_NNN/frames.npz``): the walker
returns it, the campaign concatenates its walkers' frames into one, the analysis reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..stats import walker_segments

__all__ = ["Frames"]


@dataclass(frozen=True)
class Frames:
    """Frames recorded by a walker, or a round's frames (its walkers' concatenated).

    Attributes
    ----------
    features : np.ndarray, shape=(n_frames, n_features)
        The order parameters of each frame, in their own units.
    bias_kjmol : np.ndarray, shape=(n_frames,)
        Bias energy applied at each frame (0 in an unbiased round).
    time_ps : np.ndarray, shape=(n_frames,)
        Simulation time of each frame, ps.
    snapshots : np.ndarray, shape=(n_snapshots, n_particles, 3), dtype=float32, nm
        Positions at the frames ``snapshot_frames`` (empty unless ``snapshot_every`` was given):
        starting points for later walkers.
    snapshot_frames : np.ndarray, shape=(n_snapshots,), dtype=int
        The frame index of each snapshot.
    walker : np.ndarray, shape=(n_frames,), dtype=int, optional
        The walker of each frame, when frames of several walkers are concatenated (a round's
        frames; None: one walker).
    potential_kjmol : np.ndarray, shape=(n_frames,), optional
        Potential energy of the System's own forces (no bias) at each frame, kJ/mol: recorded
        when a campaign explores, for reweighting across temperatures (None: not recorded).
    state : np.ndarray, shape=(n_frames,), dtype=int, optional
        The thermodynamic state each frame was sampled in: a walker's index in its temperature
        ladder, or a round's MBAR state (None: one state, or states in frame order).
    """

    features: np.ndarray
    bias_kjmol: np.ndarray
    time_ps: np.ndarray
    snapshots: np.ndarray | None = None
    snapshot_frames: np.ndarray | None = None
    walker: np.ndarray | None = None
    potential_kjmol: np.ndarray | None = None
    state: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.bias_kjmol)

    def segments(self) -> list[np.ndarray]:
        """Index arrays of each walker's frames, in time order (one array for one walker).

        Returns
        -------
        list of np.ndarray, dtype=int
            One index array per walker (:func:`rave.stats.walker_segments`).

        Raises
        ------
        ValueError
            When ``walker`` is not of shape (n_frames,).
        TypeError
            When ``walker`` holds non-integer values.
        """
        return walker_segments(len(self), self.walker)
