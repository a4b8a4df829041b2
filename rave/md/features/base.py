"""The base of the order parameters: :class:`Feature`, its optional faces
(:class:`CompoundTerm`, :class:`PlumedAction`) and the helpers every kind shares (argument
checks, frames and boxes, OpenMM's minimum image, group centroids, PLUMED atom lists)."""

from __future__ import annotations

import abc
import math
import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, NoReturn

import numpy as np
import openmm
from openmm import unit as u

if TYPE_CHECKING:  # pragma: no cover
    import mdtraj

_AXES = ("x", "y", "z")
# Relative tolerance on the zero entries of OpenMM's reduced-form box (a_y, a_z, b_z).
_BOX_FORM_RTOL = 1e-6


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _fail(name: str, requirement: str, supplied: Any) -> NoReturn:
    """Raise a ValueError worded like mdtraj's: "<name> must be <req>. You supplied <x>"."""
    raise ValueError(f"{name} must be {requirement}. You supplied {supplied!r}")


def _validate_name(name: Any, default: str) -> str:
    """A user-given label, or the default made from the arguments."""
    if name is None:
        return default
    if not isinstance(name, str) or not name.strip():
        _fail("name", "None or a non-empty string", name)
    return name


def _to_nm(value: Any, name: str) -> float:
    """A length in nm from a bare number (taken as nm) or an OpenMM Quantity."""
    if u.is_quantity(value):
        if not value.unit.is_compatible(u.nanometer):
            raise TypeError(
                f"{name} must be a length (nm). You supplied a quantity in {value.unit}"
            )
        value = value.value_in_unit(u.nanometer)
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(
            f"{name} must be a number in nm or a length Quantity. You supplied {value!r}"
        )
    return float(value)


def _validate_group(group: Any, name: str) -> tuple[int, ...]:
    """A group of particle indices: an int, or a non-empty sequence of distinct ints >= 0."""
    if isinstance(group, int | np.integer) and not isinstance(group, bool):
        group = [group]
    requirement = "a non-empty sequence of particle indices"
    if isinstance(group, str | bytes) or not isinstance(group, Sequence | np.ndarray):
        _fail(name, f"{requirement} (or a single index)", group)
    items = list(group.tolist() if isinstance(group, np.ndarray) else group)
    if len(items) == 0:
        _fail(name, requirement, items)
    out = []
    for i in items:
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            _fail(name, requirement + " (integers)", items)
        if i < 0:
            _fail(name, requirement + " (>= 0)", items)
        out.append(int(i))
    if len(set(out)) != len(out):
        _fail(name, requirement + " without duplicates", items)
    return tuple(out)


def _validate_weights(weights: Any, group: tuple[int, ...], name: str) -> tuple[float, ...] | None:
    """Centroid weights: None (plain mean) or one finite weight >= 0 per particle, sum > 0."""
    if weights is None:
        return None
    if isinstance(weights, str | bytes) or not isinstance(weights, Sequence | np.ndarray):
        _fail(name, f"None or a sequence of {len(group)} weights", weights)
    w = [float(x) for x in (weights.tolist() if isinstance(weights, np.ndarray) else weights)]
    if len(w) != len(group):
        _fail(name, f"a sequence of {len(group)} weights (one per particle)", w)
    if not all(math.isfinite(x) and x >= 0 for x in w) or sum(w) <= 0:
        _fail(name, "finite and >= 0 with a positive sum", w)
    return tuple(w)


def _as_frames(positions: Any) -> np.ndarray:
    """Positions as a float64 array of shape (n_frames, n_particles, 3) in nm."""
    if u.is_quantity(positions):
        positions = positions.value_in_unit(u.nanometer)
    x = np.asarray(positions, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(
            "positions must have shape (n_frames, n_particles, 3) or (n_particles, 3) in nm. "
            f"You supplied shape {np.shape(positions)}"
        )
    return x


def _as_boxes(box_vectors: Any, n_frames: int) -> np.ndarray | None:
    """Box vectors as a float64 array of shape (n_frames, 3, 3) in nm, or None."""
    if box_vectors is None:
        return None
    if u.is_quantity(box_vectors):
        box_vectors = box_vectors.value_in_unit(u.nanometer)
    b = np.asarray(box_vectors, dtype=np.float64)
    if b.shape == (3, 3):
        b = np.broadcast_to(b, (n_frames, 3, 3))
    if b.shape != (n_frames, 3, 3):
        raise ValueError(
            f"box_vectors must have shape ({n_frames}, 3, 3) or (3, 3) in nm, rows a, b, c. "
            f"You supplied shape {np.shape(box_vectors)}"
        )
    diag = np.diagonal(b, axis1=1, axis2=2)
    if not np.all(np.isfinite(b)) or np.any(diag <= 0):
        raise ValueError(
            "box_vectors must be finite with positive diagonal entries a_x, b_y, c_z. "
            f"You supplied diagonals {diag.tolist()[:3]}..."
        )
    off = np.abs(b[:, [0, 0, 1], [1, 2, 2]])  # a_y, a_z, b_z
    if np.any(off > _BOX_FORM_RTOL * diag.max(axis=1, keepdims=True)):
        raise ValueError(
            "box_vectors must be in OpenMM's reduced form (a along x, b in the xy plane: "
            "a_y = a_z = b_z = 0). You supplied a box with "
            f"(a_y, a_z, b_z) = {b[0, [0, 0, 1], [1, 2, 2]].tolist()}"
        )
    return b


def _minimum_image(delta: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Minimum-image delta (n_frames, ..., 3) nm in box (n_frames, 3, 3), as OpenMM Reference."""
    extra = delta.ndim - 2
    bx = box.reshape(box.shape[0], *([1] * extra), 3, 3)
    d = delta.copy()
    for k in (2, 1, 0):
        shift = np.floor(d[..., k] / bx[..., k, k] + 0.5)
        d -= shift[..., None] * bx[..., k, :]
    return d



def _centroid(x: np.ndarray, group: tuple[int, ...], weights: tuple[float, ...] | None):
    """Weighted centroid of a group; x shape (n_frames, n_particles, 3) -> (n_frames, 3)."""
    if len(group) == 1:
        return x[:, group[0], :]
    sel = x[:, list(group), :]
    if weights is None:
        return sel.mean(axis=1)
    w = np.asarray(weights, dtype=np.float64)
    return np.einsum("fpk,p->fk", sel, w / w.sum())


def _displacement(p_from: np.ndarray, p_to: np.ndarray, box: np.ndarray | None) -> np.ndarray:
    """p_to - p_from, minimum image when a box is given."""
    d = p_to - p_from
    return d if box is None else _minimum_image(d, box)


def _group_label(group: tuple[int, ...]) -> str:
    """Short label for a group: "5", "[0,1,2]", "[0-99]" or "[3..97;n=40;#crc32]"."""
    if len(group) == 1:
        return str(group[0])
    if len(group) <= 4:
        return "[" + ",".join(map(str, group)) + "]"
    if group == tuple(range(group[0], group[0] + len(group))):
        return f"[{group[0]}-{group[-1]}]"
    crc = zlib.crc32(",".join(map(str, group)).encode())
    return f"[{group[0]}..{group[-1]};n={len(group)};#{crc:08x}]"


def _centroid_force(expression: str, groups, weights, periodic: bool):
    """A CustomCentroidBondForce with one bond over ``groups`` and explicit weights."""
    force = openmm.CustomCentroidBondForce(len(groups), expression)
    gids = []
    for g, w in zip(groups, weights, strict=True):
        ww = [1.0] * len(g) if w is None else list(w)
        gids.append(force.addGroup(list(g), ww))
    force.addBond(gids, [])
    force.setUsesPeriodicBoundaryConditions(bool(periodic))
    return force


def _single_atoms(groups: Sequence[tuple[int, ...]]) -> list[int] | None:
    """The one atom of each group, or None when any group is a centroid of several."""
    return [g[0] for g in groups] if all(len(g) == 1 for g in groups) else None


def _plumed_atoms(group: Sequence[int]) -> str:
    """A PLUMED atom list: 1-based indices joined by commas."""
    return ",".join(str(i + 1) for i in group)  # PLUMED counts atoms from 1


def _plumed_point(label: str, group: Sequence[int], lines: list[str]) -> str:
    """A PLUMED atom spec: the atom itself, or a CENTER virtual atom appended to ``lines``."""
    if len(group) == 1:
        return str(group[0] + 1)
    lines.append(f"{label}: CENTER ATOMS={_plumed_atoms(group)} NOPBC")
    return label


def _plumed_pbc(periodic: bool) -> str:
    """The suffix of a PLUMED action: nothing (minimum image) or " NOPBC"."""
    return "" if periodic else " NOPBC"


class CompoundTerm(NamedTuple):
    """A feature as one term of a ``CustomCompoundBondForce`` over single particles.

    Attributes
    ----------
    expression : str
        Lepton expression of the feature in the bond's particles: ``p<k>`` in ``distance``,
        ``angle`` and ``dihedral``, ``x<k>``, ``y<k>``, ``z<k>`` for coordinates.
    periodic : bool
        Whether the term needs minimum-image geometry; terms that share one force must agree
        (absolute coordinates count as non-periodic).
    """

    expression: str
    periodic: bool


class PlumedAction(NamedTuple):
    """The PLUMED input that computes a feature.

    Attributes
    ----------
    lines : list[str]
        Actions in order (virtual atoms first), the last one labelled as asked.
    argument : str
        The ARG that names the feature's value (the label, or a component such as ``s0.x``).
    notes : list[str]
        Human-readable lines for the export's README (what the action is, any caveat).
    """

    lines: list[str]
    argument: str
    notes: list[str]


class NoPlumedAction(NotImplementedError):
    """A feature kind with no PLUMED equivalent; the message names the feature and its kind."""


# --------------------------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------------------------
class Feature(abc.ABC):
    """An order parameter with a numpy face and an OpenMM-force face.

    Subclasses set ``kind`` (the registered kind, the "kind" key of :meth:`to_dict`) and ``unit``
    ("nm", "rad" or "1"), and implement ``_compute``, ``openmm_force``, ``particles`` and
    ``_params``; they override :meth:`compound_term` when they can join the bias's single
    ``CustomCompoundBondForce`` and :meth:`plumed_action` when PLUMED can compute them. ``name`` is
    the label, unique within a feature set.
    """

    kind: ClassVar[str]
    unit: ClassVar[str]
    name: str

    _registry: ClassVar[dict[str, type[Feature]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            Feature._registry[cls.kind] = cls

    # -- to implement -------------------------------------------------------------------------
    @abc.abstractmethod
    def _compute(self, x: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        """Values for x (n_frames, n_particles, 3) nm; box (n_frames, 3, 3) or None."""

    @abc.abstractmethod
    def openmm_force(self) -> openmm.Force:
        """A new OpenMM force whose potential energy (kJ/mol) equals the feature value."""

    @property
    @abc.abstractmethod
    def particles(self) -> tuple[int, ...]:
        """All particle indices used by the feature, sorted and unique."""

    @abc.abstractmethod
    def _params(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON-able), excluding ``name``."""

    # -- optional faces -----------------------------------------------------------------------
    def compound_term(self, slot: Callable[[int], int]) -> CompoundTerm | None:
        """The feature as a term of one ``CustomCompoundBondForce`` over single particles, or None.

        ``slot`` maps a particle index to its 1-based place in the bond (``p<k>``, ``x<k>``),
        adding it the first time. None (this default): not a function of single particles.
        """
        return None

    def plumed_action(self, label: str) -> PlumedAction:
        """The PLUMED actions computing the feature as ``label``; by default NoPlumedAction."""
        raise NoPlumedAction(f"feature {self.name} of kind {self.kind!r} has no PLUMED mapping")

    # -- shared -------------------------------------------------------------------------------
    def evaluate(self, positions: np.ndarray, box_vectors: np.ndarray | None = None) -> np.ndarray:
        """Feature values (n_frames,) in :attr:`unit` on positions in nm.

        ``positions`` (n_frames, n_particles, 3) or (n_particles, 3); ``box_vectors`` (n_frames, 3,
        3) or (3, 3), nm, rows a, b, c in OpenMM's reduced form, or None for no periodicity (ignored
        with ``periodic=False`` and by Position). Raises ValueError for a particle index beyond
        ``positions`` or arrays of the wrong shape.
        """
        x = _as_frames(positions)
        n_particles = x.shape[1]
        top = self.particles[-1]
        if top >= n_particles:
            raise ValueError(
                f"Feature {self.name!r} uses particle index {top}, but positions has only "
                f"{n_particles} particles (allowed indices 0..{n_particles - 1})"
            )
        box = _as_boxes(box_vectors, x.shape[0])
        return np.asarray(self._compute(x, box), dtype=np.float64).reshape(x.shape[0])

    def evaluate_trajectory(self, traj: mdtraj.Trajectory) -> np.ndarray:
        """Feature values (n_frames,) on an mdtraj Trajectory (nm; its unit cell gives the box)."""
        return self.evaluate(traj.xyz, traj.unitcell_vectors)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able kind, name and constructor arguments (``feature_from_dict`` inverts it)."""
        return {"kind": self.kind, "name": self.name, **self._params()}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args}, name={self.name!r})"
