"""Order parameters (features): numpy/mdtraj evaluation and the matching OpenMM force.

Every feature has two faces that agree to numerical precision:

* :meth:`Feature.evaluate` computes the order parameter on raw coordinate arrays (nm) with
  numpy, and :meth:`Feature.evaluate_trajectory` does the same on an ``mdtraj.Trajectory``;
* :meth:`Feature.openmm_force` returns a new OpenMM force whose potential energy, in kJ/mol,
  is numerically equal to the order parameter, so it can be used as a collective variable in
  ``openmm.CustomCVForce``.

Periodic boundary conditions follow OpenMM's convention: box vectors are the rows ``a, b, c``
of a (3, 3) array in OpenMM's reduced form (``a`` along x, ``b`` in the xy plane) and the
minimum-image displacement is obtained exactly as OpenMM's Reference platform does it
(subtract ``c``, then ``b``, then ``a``, each rounded on its diagonal component). Centroids of
groups are computed from the coordinates as given, i.e. molecules are assumed whole.

Caveats of the OpenMM face:

* a force built with ``periodic=True`` always uses the Context's box (OpenMM's default box is
  2 nm), whereas ``evaluate(..., box_vectors=None)`` does not wrap: compare like with like;
* every bonded-type force (CustomCentroidBondForce, CustomBondForce), even inside a
  CustomCVForce, makes OpenMM treat all particles it touches as one "molecule" for periodic
  wrapping of reported positions and for MonteCarloBarostat scaling;
* CUDA/OpenCL store positions wrapped into the box in periodic systems, so a Position there is
  not the unwrapped coordinate (checked on the Reference platform only).
"""

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

__all__ = [
    "Feature",
    "CompoundTerm",
    "PlumedAction",
    "NoPlumedAction",
    "Position",
    "Distance",
    "Angle",
    "Dihedral",
    "Coordination",
    "CylindricalPosition",
    "CylinderCount",
    "ForceFeature",
    "dihedral_angles",
    "pair_distances",
    "switching_function",
    "smooth_step_down",
    "feature_from_dict",
    "evaluate_features",
    "feature_names",
    "feature_keys",
    "openmm_feature_values",
]

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
    """Minimum-image displacement, as OpenMM's Reference platform computes it.

    Parameters
    ----------
    delta : np.ndarray, shape=(n_frames, ..., 3), dtype=float
        Displacements in nm.
    box : np.ndarray, shape=(n_frames, 3, 3), dtype=float
        Box vectors (rows a, b, c) in nm, OpenMM reduced form.

    Returns
    -------
    np.ndarray, shape=(n_frames, ..., 3), dtype=float
        Wrapped displacements in nm.
    """
    extra = delta.ndim - 2
    bx = box.reshape(box.shape[0], *([1] * extra), 3, 3)
    d = delta.copy()
    for k in (2, 1, 0):
        shift = np.floor(d[..., k] / bx[..., k, k] + 0.5)
        d -= shift[..., None] * bx[..., k, :]
    return d


def pair_distances(x: np.ndarray, pairs: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
    """Distances between particle pairs, minimum image as OpenMM when a box is given.

    Parameters
    ----------
    x : np.ndarray, shape=(n_frames, n_particles, 3), nm
        Coordinates.
    pairs : np.ndarray, shape=(n_pairs, 2), dtype=int
        Particle index pairs.
    box : np.ndarray, shape=(n_frames, 3, 3), nm, optional
        Box vectors (rows a, b, c), OpenMM reduced form.

    Returns
    -------
    np.ndarray, shape=(n_frames, n_pairs), dtype=float64
        Distances in nm.
    """
    i, j = pairs[:, 0], pairs[:, 1]
    # Work per Cartesian component on (n_frames, n_particles) arrays: gathers and the
    # minimum-image update are much cheaper than on (n_frames, n_pairs, 3).
    comps = [np.ascontiguousarray(x[:, :, k]) for k in range(3)]
    d = [c[:, j] - c[:, i] for c in comps]
    if box is not None:
        for k in (2, 1, 0):
            shift = np.floor(d[k] / box[:, k, k][:, None] + 0.5)  # as OpenMM Reference
            for m in range(k + 1):  # reduced form: box[k, m] = 0 for m > k
                vec = box[:, k, m]
                if np.any(vec != 0):
                    d[m] -= shift * vec[:, None]
    return np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])


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
    """A PLUMED atom spec for a group: the atom itself, or a CENTER virtual atom (its action
    appended to ``lines``)."""
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

    Subclasses set the class attributes ``kind`` and ``unit`` and implement ``_compute``,
    ``openmm_force``, ``particles`` and ``_params``. A kind answers for itself elsewhere too:
    it overrides :meth:`compound_term` when it can join the bias's single
    ``CustomCompoundBondForce``, and :meth:`plumed_action` when PLUMED can compute it.

    Attributes
    ----------
    name : str
        Short label, unique within a feature set (default made from the arguments).
    kind : str
        The registered kind ("position", "distance", "angle", "dihedral", "coordination",
        "cylindrical", "cylinder_count", "openmm_force"); the "kind" key of :meth:`to_dict`.
    unit : str
        Unit of the value: "nm", "rad" or "1" (dimensionless).
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
        """Values for x of shape (n_frames, n_particles, 3) nm; box (n_frames, 3, 3) or None."""

    @abc.abstractmethod
    def openmm_force(self) -> openmm.Force:
        """A new OpenMM force whose potential energy (kJ/mol) equals the feature value.

        Returns
        -------
        openmm.Force
            A new object on every call, suitable for ``CustomCVForce.addCollectiveVariable``.
        """

    @property
    @abc.abstractmethod
    def particles(self) -> tuple[int, ...]:
        """All particle indices used by the feature, sorted and unique."""

    @abc.abstractmethod
    def _params(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON-able), excluding ``name``."""

    # -- optional faces -----------------------------------------------------------------------
    def compound_term(self, slot: Callable[[int], int]) -> CompoundTerm | None:
        """The feature as a term of one ``CustomCompoundBondForce`` over single particles.

        Parameters
        ----------
        slot : Callable[[int], int]
            Maps a particle index to its 1-based place in the bond (``p<k>``, ``x<k>``),
            adding the particle to the bond the first time it is asked for.

        Returns
        -------
        CompoundTerm or None
            The Lepton expression and its periodicity; None when the feature is not a function
            of single particles (centroids of groups, pair sums, wrapped offsets). This default
            returns None without calling ``slot``.
        """
        return None

    def plumed_action(self, label: str) -> PlumedAction:
        """The PLUMED actions that compute the feature.

        Parameters
        ----------
        label : str
            The label of the feature's action; helper actions (virtual atoms) take labels
            that start with it.

        Returns
        -------
        PlumedAction
            The action lines, the ARG naming the value, and notes for a README.

        Raises
        ------
        NoPlumedAction
            When the kind has no PLUMED equivalent (this default).
        """
        raise NoPlumedAction(f"feature {self.name} of kind {self.kind!r} has no PLUMED mapping")

    # -- shared -------------------------------------------------------------------------------
    def evaluate(self, positions: np.ndarray, box_vectors: np.ndarray | None = None) -> np.ndarray:
        """Evaluate the feature on coordinates.

        Parameters
        ----------
        positions : np.ndarray, shape=(n_frames, n_particles, 3) or (n_particles, 3), nm
            Coordinates (an OpenMM Quantity is converted to nm).
        box_vectors : np.ndarray, shape=(n_frames, 3, 3) or (3, 3), nm, optional
            Periodic box vectors, rows a, b, c in OpenMM reduced form; None for no periodicity.
            Ignored by features constructed with ``periodic=False`` and by Position.

        Returns
        -------
        np.ndarray, shape=(n_frames,), dtype=float64
            Feature values in :attr:`unit`.

        Raises
        ------
        ValueError
            When the feature uses a particle index beyond those of ``positions`` (and for
            positions or box vectors of the wrong shape).
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
        """Evaluate the feature on an mdtraj Trajectory (``traj.xyz``, ``traj.unitcell_vectors``).

        Parameters
        ----------
        traj : mdtraj.Trajectory
            Trajectory in nm; its unit cell (if any) gives the periodic box.

        Returns
        -------
        np.ndarray, shape=(n_frames,), dtype=float64
            Feature values in :attr:`unit`.
        """
        return self.evaluate(traj.xyz, traj.unitcell_vectors)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description; ``feature_from_dict(f.to_dict()) == f``.

        Returns
        -------
        dict
            ``kind``, ``name`` and the constructor's keyword arguments (JSON-able).
        """
        return {"kind": self.kind, "name": self.name, **self._params()}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args}, name={self.name!r})"


# --------------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------------
class Position(Feature):
    """Cartesian coordinate (nm) of one particle or of a group centroid.

    The coordinate is absolute and never wrapped into the periodic box.

    Parameters
    ----------
    atoms : int or Sequence[int]
        Particle index, or indices of the group whose centroid is used.
    axis : str
        "x", "y" or "z".
    name : str, optional
        Label; default e.g. "x(5)" or "z([0,1,2])".
    weights : Sequence[float], optional
        Centroid weights (one per atom, >= 0); None for the plain mean.

    Notes
    -----
    OpenMM face: ``CustomExternalForce("x")`` for one atom, ``CustomCentroidBondForce(1, "x1")``
    with explicit weights for a group. On GPU platforms OpenMM may store periodically wrapped
    coordinates for periodic systems; this was checked on the Reference platform only.
    """

    kind = "position"
    unit = "nm"

    def __init__(
        self,
        atoms: Sequence[int] | int,
        axis: str,
        name: str | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        self.atoms = _validate_group(atoms, "atoms")
        if axis not in _AXES:
            _fail("axis", "one of 'x', 'y', 'z'", axis)
        self.axis = axis
        self.weights = _validate_weights(weights, self.atoms, "weights")
        if len(self.atoms) == 1:
            self.weights = None  # irrelevant for one atom
        default = f"{axis}({_group_label(self.atoms)}{';w' if self.weights else ''})"
        self.name = _validate_name(name, default)

    @property
    def particles(self) -> tuple[int, ...]:
        """tuple of int: the particle, or the group's particles, sorted."""
        return tuple(sorted(self.atoms))

    def _compute(self, x: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        return _centroid(x, self.atoms, self.weights)[:, _AXES.index(self.axis)]

    def openmm_force(self) -> openmm.Force:
        """A new force whose energy (kJ/mol) is the coordinate in nm.

        Returns
        -------
        openmm.Force
            A ``CustomExternalForce`` for one particle, else a ``CustomCentroidBondForce`` of the
            group with its weights; never periodic.
        """
        if len(self.atoms) == 1:
            force = openmm.CustomExternalForce(self.axis)
            force.addParticle(self.atoms[0], [])
            return force
        return _centroid_force(f"{self.axis}1", [self.atoms], [self.weights], periodic=False)

    def compound_term(self, slot: Callable[[int], int]) -> CompoundTerm | None:
        """``x<k>`` (or y, z) of a single particle, never periodic; None for a centroid.

        Parameters
        ----------
        slot : Callable[[int], int]
            Maps a particle index to its 1-based place in the bond (see
            :meth:`Feature.compound_term`).

        Returns
        -------
        CompoundTerm or None
            The term; None when a group has more than one particle.
        """
        if len(self.atoms) != 1:
            return None
        return CompoundTerm(f"{self.axis}{slot(self.atoms[0])}", periodic=False)

    def plumed_action(self, label: str) -> PlumedAction:
        """``POSITION`` of the atom or of a plain ``CENTER`` (a weighted centroid is exported
        unweighted, with a warning note), unwrapped; the argument is ``<label>.<axis>``.

        Parameters
        ----------
        label : str
            The label of the feature's action; helper actions take labels that start with it.

        Returns
        -------
        PlumedAction
            The action lines, the ARG (``<label>.<axis>``) and a note for the export's README.
        """
        lines: list[str] = []
        point = _plumed_point(f"{label}c", self.atoms, lines)
        lines.append(f"{label}: POSITION ATOM={point} NOPBC")
        notes = [f"{self.name}: POSITION (absolute, unwrapped {self.axis})"]
        if self.weights:
            notes.append(f"  WARNING {self.name}: weighted centroid exported as a plain CENTER")
        return PlumedAction(lines, f"{label}.{self.axis}", notes)

    def _params(self) -> dict[str, Any]:
        return {
            "atoms": list(self.atoms),
            "axis": self.axis,
            "weights": None if self.weights is None else list(self.weights),
        }


def _validate_groups(groups: Any, count: int, name: str) -> tuple[tuple[int, ...], ...]:
    """``count`` groups, each an index or a sequence of indices."""
    if isinstance(groups, str | bytes) or not isinstance(groups, Sequence) or len(groups) != count:
        _fail(name, f"a sequence of {count} particle indices or index groups", groups)
    return tuple(_validate_group(g, f"{name}[{i}]") for i, g in enumerate(groups))


def _validate_periodic(periodic: Any) -> bool:
    if not isinstance(periodic, bool | np.bool_):
        _fail("periodic", "True or False", periodic)
    return bool(periodic)


def _join_labels(groups) -> str:
    return ",".join(_group_label(g) for g in groups)


class Distance(Feature):
    """Distance (nm) between two particles or two group centroids.

    Parameters
    ----------
    group1, group2 : int or Sequence[int]
        Particle index or group of indices (centroid) at each end.
    periodic : bool
        Minimum-image distance between the two centroids when a box is given. Centroids are
        computed from the coordinates as given (molecules assumed whole).
    name : str, optional
        Label; default e.g. "d(0,5)".
    weights1, weights2 : Sequence[float], optional
        Centroid weights (>= 0) for each group; None for the plain mean.

    Notes
    -----
    OpenMM face: ``CustomCentroidBondForce(2, "distance(g1,g2)")`` with explicit weights.
    """

    kind = "distance"
    unit = "nm"

    def __init__(
        self,
        group1: Sequence[int] | int,
        group2: Sequence[int] | int,
        periodic: bool = True,
        name: str | None = None,
        weights1: Sequence[float] | None = None,
        weights2: Sequence[float] | None = None,
    ) -> None:
        self.group1 = _validate_group(group1, "group1")
        self.group2 = _validate_group(group2, "group2")
        self.periodic = _validate_periodic(periodic)
        self.weights1 = _validate_weights(weights1, self.group1, "weights1")
        self.weights2 = _validate_weights(weights2, self.group2, "weights2")
        self.name = _validate_name(name, f"d({_join_labels((self.group1, self.group2))})")

    @property
    def particles(self) -> tuple[int, ...]:
        """tuple of int: the particles of both groups, sorted and unique."""
        return tuple(sorted(set(self.group1) | set(self.group2)))

    def _compute(self, x: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        c1 = _centroid(x, self.group1, self.weights1)
        c2 = _centroid(x, self.group2, self.weights2)
        d = _displacement(c1, c2, box if self.periodic else None)
        return np.linalg.norm(d, axis=-1)

    def openmm_force(self) -> openmm.Force:
        """A new force whose energy (kJ/mol) is the distance in nm.

        Returns
        -------
        openmm.Force
            A ``CustomCentroidBondForce`` of ``distance(g1,g2)`` over the two groups with their
            weights, periodic if the feature is.
        """
        return _centroid_force(
            "distance(g1,g2)",
            [self.group1, self.group2],
            [self.weights1, self.weights2],
            self.periodic,
        )

    def compound_term(self, slot: Callable[[int], int]) -> CompoundTerm | None:
        """``distance(p<i>,p<j>)`` of two single atoms; None for centroids.

        Parameters
        ----------
        slot : Callable[[int], int]
            Maps a particle index to its 1-based place in the bond (see
            :meth:`Feature.compound_term`).

        Returns
        -------
        CompoundTerm or None
            The term; None when a group has more than one particle.
        """
        atoms = _single_atoms([self.group1, self.group2])
        if atoms is None:
            return None
        return CompoundTerm(f"distance({','.join(f'p{slot(a)}' for a in atoms)})", self.periodic)

    def plumed_action(self, label: str) -> PlumedAction:
        """``DISTANCE`` between atoms or plain ``CENTER`` virtual atoms (weights are not
        exported).

        Parameters
        ----------
        label : str
            The label of the feature's action; helper actions take labels that start with it.

        Returns
        -------
        PlumedAction
            The action lines, the ARG (the label) and a note for the export's README.
        """
        lines: list[str] = []
        a = _plumed_point(f"{label}a", self.group1, lines)
        b = _plumed_point(f"{label}b", self.group2, lines)
        lines.append(f"{label}: DISTANCE ATOMS={a},{b}{_plumed_pbc(self.periodic)}")
        return PlumedAction(lines, label, [f"{self.name}: DISTANCE"])

    def _params(self) -> dict[str, Any]:
        return {
            "group1": list(self.group1),
            "group2": list(self.group2),
            "periodic": self.periodic,
            "weights1": None if self.weights1 is None else list(self.weights1),
            "weights2": None if self.weights2 is None else list(self.weights2),
        }


class Angle(Feature):
    """Angle (rad, in [0, pi]) at the middle of three particles or group centroids.

    Parameters
    ----------
    groups : Sequence[int | Sequence[int]], length 3
        The three ends; the angle is at ``groups[1]`` (plain-mean centroids for groups).
    periodic : bool
        Use minimum-image bond vectors when a box is given.
    name : str, optional
        Label; default e.g. "angle(0,1,2)".

    Notes
    -----
    OpenMM face: ``CustomCentroidBondForce(3, "angle(g1,g2,g3)")`` with unit weights.
    """

    kind = "angle"
    unit = "rad"

    def __init__(
        self,
        groups: Sequence[int | Sequence[int]],
        periodic: bool = True,
        name: str | None = None,
    ) -> None:
        self.groups = _validate_groups(groups, 3, "groups")
        self.periodic = _validate_periodic(periodic)
        self.name = _validate_name(name, f"angle({_join_labels(self.groups)})")

    @property
    def particles(self) -> tuple[int, ...]:
        """tuple of int: the particles of the three groups, sorted and unique."""
        return tuple(sorted(set().union(*self.groups)))

    def _compute(self, x: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        c = [_centroid(x, g, None) for g in self.groups]
        box = box if self.periodic else None
        v1 = _displacement(c[1], c[0], box)
        v2 = _displacement(c[1], c[2], box)
        cross = np.linalg.norm(np.cross(v1, v2), axis=-1)
        return np.arctan2(cross, np.einsum("fk,fk->f", v1, v2))

    def openmm_force(self) -> openmm.Force:
        """A new force whose energy (kJ/mol) is the angle in rad.

        Returns
        -------
        openmm.Force
            A ``CustomCentroidBondForce`` of ``angle(g1,g2,g3)`` over the three groups (plain-mean
            centroids), periodic if the feature is.
        """
        return _centroid_force("angle(g1,g2,g3)", self.groups, [None] * 3, self.periodic)

    def compound_term(self, slot: Callable[[int], int]) -> CompoundTerm | None:
        """``angle(p<i>,p<j>,p<k>)`` of three single atoms; None for centroids.

        Parameters
        ----------
        slot : Callable[[int], int]
            Maps a particle index to its 1-based place in the bond (see
            :meth:`Feature.compound_term`).

        Returns
        -------
        CompoundTerm or None
            The term; None when a group has more than one particle.
        """
        atoms = _single_atoms(self.groups)
        if atoms is None:
            return None
        return CompoundTerm(f"angle({','.join(f'p{slot(a)}' for a in atoms)})", self.periodic)

    def plumed_action(self, label: str) -> PlumedAction:
        """``ANGLE`` of atoms or plain ``CENTER`` virtual atoms, in rad.

        Parameters
        ----------
        label : str
            The label of the feature's action; helper actions take labels that start with it.

        Returns
        -------
        PlumedAction
            The action lines, the ARG (the label) and a note for the export's README.
        """
        lines: list[str] = []
        points = [_plumed_point(f"{label}{k}", g, lines) for k, g in enumerate(self.groups)]
        lines.append(f"{label}: ANGLE ATOMS={','.join(points)}{_plumed_pbc(self.periodic)}")
        return PlumedAction(lines, label, [f"{self.name}: ANGLE (rad)"])

    def _params(self) -> dict[str, Any]:
        return {"groups": [list(g) for g in self.groups], "periodic": self.periodic}


def dihedral_angles(p1: np.ndarray, p2: np.ndarray, p3: np.ndarray, p4: np.ndarray, box=None):
    """Dihedral angle (rad, in (-pi, pi]) with the IUPAC sign used by OpenMM and mdtraj.

    Parameters
    ----------
    p1, p2, p3, p4 : np.ndarray, shape=(n_frames, 3), nm
        The four points.
    box : np.ndarray, shape=(n_frames, 3, 3), nm, optional
        Box for minimum-image bond vectors.

    Returns
    -------
    np.ndarray, shape=(n_frames,), dtype=float64
    """
    b1 = _displacement(p1, p2, box)
    b2 = _displacement(p2, p3, box)
    b3 = _displacement(p3, p4, box)
    n1 = np.cross(b1, b2)
    n2 = np.cross(b2, b3)
    y = np.linalg.norm(b2, axis=-1) * np.einsum("fk,fk->f", b1, n2)
    return np.arctan2(y, np.einsum("fk,fk->f", n1, n2))


class Dihedral(Feature):
    """sin or cos (dimensionless) of the dihedral of four particles or group centroids.

    Parameters
    ----------
    groups : Sequence[int | Sequence[int]], length 4
        The four points (plain-mean centroids for groups).
    function : str
        "cos" or "sin". The dihedral sign is the IUPAC one, as OpenMM's ``dihedral()`` and
        ``mdtraj.compute_dihedrals``.
    periodic : bool
        Use minimum-image bond vectors when a box is given.
    name : str, optional
        Label; default e.g. "cos_dih(0,1,2,3)".

    Notes
    -----
    OpenMM face: ``CustomCentroidBondForce(4, "cos(dihedral(g1,g2,g3,g4))")``, unit weights.
    """

    kind = "dihedral"
    unit = "1"

    def __init__(
        self,
        groups: Sequence[int | Sequence[int]],
        function: str = "cos",
        periodic: bool = True,
        name: str | None = None,
    ) -> None:
        self.groups = _validate_groups(groups, 4, "groups")
        if function not in ("sin", "cos"):
            _fail("function", "one of 'sin', 'cos'", function)
        self.function = function
        self.periodic = _validate_periodic(periodic)
        self.name = _validate_name(name, f"{function}_dih({_join_labels(self.groups)})")

    @property
    def particles(self) -> tuple[int, ...]:
        """tuple of int: the particles of the four groups, sorted and unique."""
        return tuple(sorted(set().union(*self.groups)))

    def _compute(self, x: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        c = [_centroid(x, g, None) for g in self.groups]
        phi = dihedral_angles(*c, box=box if self.periodic else None)
        return np.sin(phi) if self.function == "sin" else np.cos(phi)

    def openmm_force(self) -> openmm.Force:
        """A new force whose energy (kJ/mol) is the cos (or sin) of the dihedral (dimensionless).

        Returns
        -------
        openmm.Force
            A ``CustomCentroidBondForce`` of ``cos(dihedral(g1,g2,g3,g4))`` (or sin) over the four
            groups (plain-mean centroids), periodic if the feature is.
        """
        expression = f"{self.function}(dihedral(g1,g2,g3,g4))"
        return _centroid_force(expression, self.groups, [None] * 4, self.periodic)

    def compound_term(self, slot: Callable[[int], int]) -> CompoundTerm | None:
        """``cos(dihedral(p<i>,...))`` (or sin) of four single atoms; None for centroids.

        Parameters
        ----------
        slot : Callable[[int], int]
            Maps a particle index to its 1-based place in the bond (see
            :meth:`Feature.compound_term`).

        Returns
        -------
        CompoundTerm or None
            The term; None when a group has more than one particle.
        """
        atoms = _single_atoms(self.groups)
        if atoms is None:
            return None
        points = ",".join(f"p{slot(a)}" for a in atoms)
        return CompoundTerm(f"{self.function}(dihedral({points}))", self.periodic)

    def plumed_action(self, label: str) -> PlumedAction:
        """``TORSION`` (labelled ``<label>t``) then ``CUSTOM`` with ``cos(x)`` or ``sin(x)``.

        Parameters
        ----------
        label : str
            The label of the feature's action; helper actions take labels that start with it.

        Returns
        -------
        PlumedAction
            The action lines, the ARG (the label of the ``CUSTOM`` action) and a note for the
            export's README.
        """
        lines: list[str] = []
        points = [_plumed_point(f"{label}{k}", g, lines) for k, g in enumerate(self.groups)]
        lines.append(f"{label}t: TORSION ATOMS={','.join(points)}{_plumed_pbc(self.periodic)}")
        lines.append(f"{label}: CUSTOM ARG={label}t FUNC={self.function}(x) PERIODIC=NO")
        return PlumedAction(lines, label, [f"{self.name}: TORSION then CUSTOM {self.function}(x)"])

    def _params(self) -> dict[str, Any]:
        return {
            "groups": [list(g) for g in self.groups],
            "function": self.function,
            "periodic": self.periodic,
        }


# Half-width, in r/r0 (dimensionless), of the window around r = r0 where the switching
# function s = (1 - q^n) / (1 - q^m) is replaced by its 2nd-order Taylor series. There the
# rational form loses ~1e-16/|q - 1| relative accuracy to cancellation, and the truncation
# error of the series is ~ (n m)^2 |q - 1|^3; at 1e-4 both are below ~1e-10.
COORDINATION_TAYLOR_HALF_WIDTH = 1e-4
# Pairs (frames x pairs) evaluated per numpy chunk, to bound memory for large groups.
_PAIR_CHUNK = 2_000_000


def _switch_taylor_coefficients(n: int, m: int) -> tuple[float, float, float]:
    """s(1 + e) = c0 + c1 e + c2 e^2 + O(e^3) for s(q) = (1 - q^n) / (1 - q^m)."""
    a1, a2 = (n - 1) / 2, (n - 1) * (n - 2) / 6
    b1, b2 = (m - 1) / 2, (m - 1) * (m - 2) / 6
    c0 = n / m
    return c0, c0 * (a1 - b1), c0 * (a2 - b2 + b1 * b1 - a1 * b1)


def switching_function(r: np.ndarray, r0: float, n: int = 6, m: int | None = None) -> np.ndarray:
    """Rational switching function s(r) = (1 - (r/r0)^n) / (1 - (r/r0)^m).

    Parameters
    ----------
    r : np.ndarray, any shape, nm
        Distances.
    r0 : float
        Switching distance in nm (s(r0) = n/m).
    n, m : int
        Exponents; m defaults to 2n, where s = 1 / (1 + (r/r0)^n).

    Returns
    -------
    np.ndarray, same shape as r, dimensionless
        Near r = r0 (|r/r0 - 1| < ``COORDINATION_TAYLOR_HALF_WIDTH``) the 2nd-order Taylor
        series is used, which removes the 0/0 at r = r0; the OpenMM face does the same.
    """
    q = np.asarray(r, dtype=np.float64) / r0
    if m is None or m == 2 * n:
        return 1.0 / (1.0 + q**n)
    c0, c1, c2 = _switch_taylor_coefficients(n, m)
    e = q - 1.0
    near = np.abs(e) < COORDINATION_TAYLOR_HALF_WIDTH
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = (1.0 - q**n) / (1.0 - q**m)
    return np.where(near, c0 + e * (c1 + e * c2), exact)


def _switch_expression(r0: float, n: int, m: int) -> str:
    """Lepton expression of :func:`switching_function` in terms of the distance ``r``."""
    if m == 2 * n:
        return f"1/(1+q^{n}); q=r/{r0!r}"
    c0, c1, c2 = _switch_taylor_coefficients(n, m)
    return (
        f"select(step(abs(e)-{COORDINATION_TAYLOR_HALF_WIDTH!r}), "
        f"(1-q^{n})/(1-q^{m}), {c0!r}+e*({c1!r}+e*({c2!r}))); "
        f"e=q-1; q=r/{r0!r}"
    )


class Coordination(Feature):
    """Smooth count (dimensionless) of (a, b) particle pairs closer than r0.

    ``sum_{pairs} s(r_ij)`` with ``s(r) = (1 - (r/r0)^n) / (1 - (r/r0)^m)`` (m default 2n,
    then ``s = 1 / (1 + (r/r0)^n)``); ``s(r0) = n/m``. Pairs run over ``i`` in group_a and
    ``j`` in group_b with ``i != j``; when the groups overlap each unordered pair is counted
    once. There is no cutoff: every pair contributes.

    Parameters
    ----------
    group_a, group_b : int or Sequence[int]
        The two particle sets.
    r0 : float or Quantity
        Switching distance (nm), > 0.
    n : int
        Numerator exponent, >= 1.
    m : int, optional
        Denominator exponent, >= 1 and != n; default 2n.
    periodic : bool
        Minimum-image pair distances when a box is given.
    name : str, optional
        Label; default e.g. "cn([0-9],[10-3009];r0=0.35)".

    Raises
    ------
    ValueError
        When ``r0`` is not a finite number > 0 (and for invalid groups, exponents or
        name).

    Notes
    -----
    OpenMM face: a ``CustomBondForce`` with one bond per pair (exact, no cutoff; it scales
    linearly with the number of pairs, e.g. 60 x 3000 = 1.8e5 bonds). Near r = r0 both faces
    use the same 2nd-order Taylor series (see :func:`switching_function`).
    """

    kind = "coordination"
    unit = "1"

    def __init__(
        self,
        group_a: Sequence[int] | int,
        group_b: Sequence[int] | int,
        r0: float,
        n: int = 6,
        m: int | None = None,
        periodic: bool = True,
        name: str | None = None,
    ) -> None:
        self.group_a = _validate_group(group_a, "group_a")
        self.group_b = _validate_group(group_b, "group_b")
        self.r0 = _to_nm(r0, "r0")
        if not (math.isfinite(self.r0) and self.r0 > 0):
            raise ValueError(f"r0 must be > 0 nm. You supplied {self.r0:g}")
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            _fail("n", "an integer >= 1", n)
        self.n = int(n)
        if m is not None:
            if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1 or m == n:
                _fail("m", f"None or an integer >= 1 different from n={n}", m)
            m = int(m)
        self.m = m
        self.periodic = _validate_periodic(periodic)
        self._pairs = self._make_pairs()
        if len(self._pairs) == 0:
            _fail(
                "group_a and group_b",
                "able to form at least one pair of distinct particles",
                (list(self.group_a), list(self.group_b)),
            )
        label = _join_labels((self.group_a, self.group_b))
        self.name = _validate_name(name, f"cn({label};r0={self.r0:g})")

    def _make_pairs(self) -> np.ndarray:
        a = np.asarray(self.group_a, dtype=np.int64)
        b = np.asarray(self.group_b, dtype=np.int64)
        i, j = np.meshgrid(a, b, indexing="ij")
        i, j = i.ravel(), j.ravel()
        keep = i != j
        pairs = np.stack([np.minimum(i, j)[keep], np.maximum(i, j)[keep]], axis=1)
        if set(self.group_a) & set(self.group_b):
            pairs = np.unique(pairs, axis=0)
        return pairs

    @property
    def pairs(self) -> np.ndarray:
        """The counted pairs, shape (n_pairs, 2), each row (i, j) with i < j."""
        return self._pairs.copy()

    @property
    def particles(self) -> tuple[int, ...]:
        """tuple of int: the particles of both groups, sorted and unique."""
        return tuple(sorted(set(self.group_a) | set(self.group_b)))

    def _compute(self, x: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        box = box if self.periodic else None
        step = max(1, _PAIR_CHUNK // len(self._pairs))
        out = np.empty(x.shape[0])
        for s in range(0, x.shape[0], step):
            r = pair_distances(
                x[s : s + step], self._pairs, None if box is None else box[s : s + step]
            )
            out[s : s + step] = switching_function(r, self.r0, self.n, self.m).sum(axis=1)
        return out

    def openmm_force(self) -> openmm.Force:
        """A new force whose energy (kJ/mol) is the coordination number (dimensionless).

        Returns
        -------
        openmm.Force
            A ``CustomBondForce`` of the rational switching function, one bond per counted pair,
            periodic if the feature is.
        """
        force = openmm.CustomBondForce(_switch_expression(self.r0, self.n, self.m or 2 * self.n))
        for i, j in self._pairs.tolist():
            force.addBond(i, j, [])
        force.setUsesPeriodicBoundaryConditions(self.periodic)
        return force

    def plumed_action(self, label: str) -> PlumedAction:
        """``COORDINATION`` with PLUMED's RATIONAL switching (R_0, NN, MM) and no cutoff.

        Parameters
        ----------
        label : str
            The label of the feature's action; helper actions take labels that start with it.

        Returns
        -------
        PlumedAction
            The action lines, the ARG (the label) and a note for the export's README.
        """
        m = self.m if self.m is not None else 2 * self.n
        line = (
            f"{label}: COORDINATION GROUPA={_plumed_atoms(self.group_a)} "
            f"GROUPB={_plumed_atoms(self.group_b)} R_0={self.r0!r} NN={self.n} MM={m}"
            f"{_plumed_pbc(self.periodic)}"
        )
        note = (f"{self.name}: COORDINATION (RATIONAL switching, no cutoff: check PLUMED's "
                f"NLIST/D_MAX choices match)")
        return PlumedAction([line], label, [note])

    def _params(self) -> dict[str, Any]:
        return {
            "group_a": list(self.group_a),
            "group_b": list(self.group_b),
            "r0": self.r0,
            "n": self.n,
            "m": self.m,
            "periodic": self.periodic,
        }


# Regularisation (nm^2) under the square root of the lateral distance: sqrt(dx^2 + dy^2 + eps)
# keeps the force finite on the axis (where d rho / dx is 0/0) and changes rho by at most
# 1e-6 nm (at rho = 0) and by < 1e-9 nm for rho > 1e-3 nm. Both faces use the same expression.
CYLINDRICAL_RHO_EPS_NM2 = 1e-12
# Largest difference (nm) between a frame's box diagonal and the fixed box lengths a
# cylindrical feature was built for (float32 trajectories round 6 nm boxes to ~5e-7 nm).
CYLINDRICAL_BOX_TOL_NM = 1e-4


def _validate_point(value: Any, name: str) -> tuple[float, float, float]:
    """Three finite numbers (nm), or a length Quantity holding three."""
    if u.is_quantity(value):
        if not value.unit.is_compatible(u.nanometer):
            raise TypeError(f"{name} must be lengths (nm). You supplied a quantity in {value.unit}")
        value = value.value_in_unit(u.nanometer)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (3,) or not np.all(np.isfinite(arr)):
        _fail(name, "three finite numbers (x, y, z) in nm", value)
    return (float(arr[0]), float(arr[1]), float(arr[2]))


def _validate_box_lengths(value: Any) -> tuple[float, float, float] | None:
    """None (no wrapping) or the three edge lengths (nm, > 0) of a fixed rectangular box."""
    if value is None:
        return None
    lengths = _validate_point(value, "box_lengths")
    if min(lengths) <= 0:
        _fail("box_lengths", "None or three edge lengths > 0 nm of a rectangular box", value)
    return lengths


def _check_fixed_box(
    box: np.ndarray | None, lengths: tuple[float, float, float] | None, name: str
) -> None:
    """A frame's box (if given) must be the rectangular box the feature was built for."""
    if box is None or lengths is None:
        return
    diag = np.diagonal(box, axis1=1, axis2=2)
    off = box - diag[:, :, None] * np.eye(3)
    worst = np.max(np.abs(diag - np.asarray(lengths)), axis=1)
    bad = (worst > CYLINDRICAL_BOX_TOL_NM) | (np.max(np.abs(off), axis=(1, 2)) > 0)
    if np.any(bad):
        k = int(np.argmax(bad))
        raise ValueError(
            f"Feature {name!r} wraps with the fixed rectangular box {list(lengths)} nm "
            f"(NVT), within {CYLINDRICAL_BOX_TOL_NM} nm. You supplied frame {k} with box "
            f"vectors {box[k].tolist()}"
        )


def _wrap_components(d: np.ndarray, lengths: tuple[float, float, float] | None) -> np.ndarray:
    """Minimum image of each Cartesian component, d - L floor(d/L + 1/2), as the OpenMM face."""
    if lengths is None:
        return d
    L = np.asarray(lengths)
    return d - L * np.floor(d / L + 0.5)


def _wrapped_definitions(
    variables: tuple[str, str, str],
    origin: tuple[float, float, float],
    lengths: tuple[float, float, float] | None,
    axes: str = "xyz",
) -> list[str]:
    """Lepton definitions of the wrapped offsets ``dx, dy, dz`` from ``origin`` (only ``axes``)."""
    out = []
    for k, axis in enumerate("xyz"):
        if axis not in axes:
            continue
        raw = f"({variables[k]}-({origin[k]!r}))"
        if lengths is None:
            out.append(f"d{axis}={raw}")
        else:
            L = lengths[k]
            out.append(f"d{axis}={raw}-{L!r}*floor({raw}/{L!r}+0.5)")
    return out


def _rho_expression() -> str:
    return f"sqrt(dx^2+dy^2+{CYLINDRICAL_RHO_EPS_NM2!r})"


def smooth_step_down(u_: np.ndarray) -> np.ndarray:
    """C2 switch from 1 (u <= -1/2) to 0 (u >= +1/2): 1 - t^3 (10 - 15 t + 6 t^2), t = u + 1/2.

    Parameters
    ----------
    u_ : np.ndarray, any shape, dimensionless
        Signed distance past a boundary in units of the switching width.

    Returns
    -------
    np.ndarray, same shape, dimensionless, in [0, 1]
        Exactly 1 inside, exactly 0 outside, s(0) = 1/2; value, slope and curvature continuous.
    """
    t = np.clip(np.asarray(u_, dtype=np.float64) + 0.5, 0.0, 1.0)
    return 1.0 - t**3 * (10.0 - 15.0 * t + 6.0 * t * t)


def _step_down_expression(var: str, argument: str) -> str:
    """Lepton twin of :func:`smooth_step_down`; defines helper ``t<var>``."""
    return f"(1-t{var}^3*(10-15*t{var}+6*t{var}^2)); t{var}=min(1,max(0,{argument}+0.5))"


class CylindricalPosition(Feature):
    """Axial (z) or radial (rho) coordinate (nm) of a particle or group centroid about a fixed
    axis parallel to z through ``origin``.

    ``z``: signed height of the centroid above ``origin``; ``rho``: its distance from the axis,
    ``sqrt(dx^2 + dy^2 + CYLINDRICAL_RHO_EPS_NM2)`` (regularised so the force stays finite on
    the axis). Offsets are wrapped component by component, ``d - L floor(d/L + 1/2)``, with the
    fixed rectangular box ``box_lengths`` stored in the feature (the box must not change: NVT).
    In that box the values do not depend on which periodic image of the particle is used (GPU
    platforms wrap positions, CPU ones do not). Groups are assumed whole.

    Parameters
    ----------
    atoms : int or Sequence[int]
        Particle, or group whose plain-mean centroid is used.
    origin : Sequence[float] or Quantity, shape=(3,), nm
        The fixed point on the axis (e.g. a pocket centroid of a frozen wall).
    component : str
        "z" or "rho".
    box_lengths : Sequence[float] or Quantity, shape=(3,), nm, optional
        Edges of the fixed rectangular periodic box; None: no wrapping. ``evaluate`` checks a
        given ``box_vectors`` against it (within ``CYLINDRICAL_BOX_TOL_NM``).
    name : str, optional
        Label; default e.g. "z_cyl(0)" or "rho_cyl([0-59])".

    Notes
    -----
    OpenMM face: ``CustomExternalForce`` for one particle, else a
    ``CustomCentroidBondForce(1, ...)`` with unit weights (the group becomes one "molecule" in
    OpenMM, as any bonded force does); the box lengths are literal constants.
    """

    kind = "cylindrical"
    unit = "nm"

    def __init__(
        self,
        atoms: Sequence[int] | int,
        origin: Sequence[float],
        component: str = "z",
        box_lengths: Sequence[float] | None = None,
        name: str | None = None,
    ) -> None:
        self.atoms = _validate_group(atoms, "atoms")
        self.origin = _validate_point(origin, "origin")
        if component not in ("z", "rho"):
            _fail("component", "one of 'z', 'rho'", component)
        self.component = component
        self.box_lengths = _validate_box_lengths(box_lengths)
        self.name = _validate_name(name, f"{component}_cyl({_group_label(self.atoms)})")

    @property
    def particles(self) -> tuple[int, ...]:
        """tuple of int: the particle, or the group's particles, sorted."""
        return tuple(sorted(self.atoms))

    def _compute(self, x: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        _check_fixed_box(box, self.box_lengths, self.name)
        c = _centroid(x, self.atoms, None)
        d = _wrap_components(c - np.asarray(self.origin), self.box_lengths)
        if self.component == "z":
            return d[:, 2]
        return np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2 + CYLINDRICAL_RHO_EPS_NM2)

    def openmm_force(self) -> openmm.Force:
        """A new force whose energy (kJ/mol) is z or rho in nm.

        Returns
        -------
        openmm.Force
            A ``CustomExternalForce`` for one particle, else a ``CustomCentroidBondForce`` with unit
            weights; offsets wrapped in the feature's fixed ``box_lengths``.
        """
        single = len(self.atoms) == 1
        variables = ("x", "y", "z") if single else ("x1", "y1", "z1")
        if self.component == "z":
            head = "dz"
            defs = _wrapped_definitions(variables, self.origin, self.box_lengths, "z")
        else:
            head = _rho_expression()
            defs = _wrapped_definitions(variables, self.origin, self.box_lengths, "xy")
        expression = "; ".join([head, *defs])
        if single:
            force = openmm.CustomExternalForce(expression)
            force.addParticle(self.atoms[0], [])
            return force
        return _centroid_force(expression, [self.atoms], [None], periodic=False)

    def _params(self) -> dict[str, Any]:
        return {
            "atoms": list(self.atoms),
            "origin": list(self.origin),
            "component": self.component,
            "box_lengths": None if self.box_lengths is None else list(self.box_lengths),
        }


class CylinderCount(Feature):
    """Smooth count (dimensionless) of particles inside a capped cylinder about a fixed axis.

    ``sum_i S((rho_i - radius)/width) S((dz_i - z_max)/width) S((z_min - dz_i)/width)`` over
    ``atoms``, where ``dz_i`` and ``rho_i`` are the particle's signed height above ``origin`` and
    its (regularised) distance from the axis parallel to z through ``origin``, wrapped as in
    :class:`CylindricalPosition`, and ``S`` is :func:`smooth_step_down`: each boundary is
    softened over ``width`` centred on it; a particle further than ``width/2`` inside every
    boundary counts exactly 1, one further than ``width/2`` outside any counts exactly 0.

    Parameters
    ----------
    atoms : Sequence[int]
        The counted particles (e.g. water oxygens).
    origin : Sequence[float] or Quantity, shape=(3,), nm
        A point on the axis; heights are measured from it.
    radius : float or Quantity
        Cylinder radius (nm), > 0.
    z_min, z_max : float or Quantity
        Bottom and top of the cylinder relative to ``origin`` (nm), z_min < z_max.
    width : float or Quantity
        Switching width (nm), > 0.
    box_lengths : Sequence[float] or Quantity, shape=(3,), nm, optional
        Edges of the fixed rectangular periodic box; None: no wrapping.
    name : str, optional
        Label; default e.g. "n_cyl([0-99];R=0.9)".

    Raises
    ------
    ValueError
        When ``radius`` or ``width`` is not a finite number > 0, or ``z_min``,
        ``z_max`` are not finite with ``z_min < z_max`` (and for invalid atoms, origin, box
        lengths or name).

    Notes
    -----
    OpenMM face: one ``CustomExternalForce`` term per counted particle (cost linear in the
    number of particles, no neighbour list, and no bonded force that would tie the counted
    particles into one "molecule").
    """

    kind = "cylinder_count"
    unit = "1"

    def __init__(
        self,
        atoms: Sequence[int] | int,
        origin: Sequence[float],
        radius: float,
        z_min: float,
        z_max: float,
        width: float = 0.2,
        box_lengths: Sequence[float] | None = None,
        name: str | None = None,
    ) -> None:
        self.atoms = _validate_group(atoms, "atoms")
        self.origin = _validate_point(origin, "origin")
        self.radius = _to_nm(radius, "radius")
        self.z_min = _to_nm(z_min, "z_min")
        self.z_max = _to_nm(z_max, "z_max")
        self.width = _to_nm(width, "width")
        for label in ("radius", "width"):
            value = getattr(self, label)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{label} must be > 0 nm. You supplied {value:g}")
        if not (
            math.isfinite(self.z_min) and math.isfinite(self.z_max) and self.z_min < self.z_max
        ):
            raise ValueError(
                f"z_min and z_max must be finite with z_min < z_max (nm). You supplied "
                f"z_min={self.z_min:g}, z_max={self.z_max:g}"
            )
        self.box_lengths = _validate_box_lengths(box_lengths)
        label = _group_label(self.atoms)
        self.name = _validate_name(name, f"n_cyl({label};R={self.radius:g})")

    @property
    def particles(self) -> tuple[int, ...]:
        """tuple of int: the counted particles, sorted."""
        return tuple(sorted(self.atoms))

    def _compute(self, x: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        _check_fixed_box(box, self.box_lengths, self.name)
        d = _wrap_components(x[:, list(self.atoms), :] - np.asarray(self.origin), self.box_lengths)
        rho = np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 + CYLINDRICAL_RHO_EPS_NM2)
        dz = d[..., 2]
        w = self.width
        s = (
            smooth_step_down((rho - self.radius) / w)
            * smooth_step_down((dz - self.z_max) / w)
            * smooth_step_down((self.z_min - dz) / w)
        )
        return s.sum(axis=1)

    def openmm_force(self) -> openmm.Force:
        """A new force whose energy (kJ/mol) is the smooth count of particles in the cylinder.

        Returns
        -------
        openmm.Force
            A ``CustomExternalForce`` over the counted particles (the sum of their smooth
            indicators); offsets wrapped in the feature's fixed ``box_lengths``.
        """
        w = self.width
        expression = "; ".join(
            [
                "sr*shi*slo",
                "sr="
                + _step_down_expression("r", f"({_rho_expression()}-({self.radius!r}))/{w!r}"),
                "shi=" + _step_down_expression("h", f"(dz-({self.z_max!r}))/{w!r}"),
                "slo=" + _step_down_expression("l", f"(({self.z_min!r})-dz)/{w!r}"),
                *_wrapped_definitions(("x", "y", "z"), self.origin, self.box_lengths),
            ]
        )
        force = openmm.CustomExternalForce(expression)
        for i in self.atoms:
            force.addParticle(i, [])
        return force

    def _params(self) -> dict[str, Any]:
        return {
            "atoms": list(self.atoms),
            "origin": list(self.origin),
            "radius": self.radius,
            "z_min": self.z_min,
            "z_max": self.z_max,
            "width": self.width,
            "box_lengths": None if self.box_lengths is None else list(self.box_lengths),
        }


def _force_unit(force: Any) -> str:
    """The unit a force states for its energy-as-CV (a cvpack CV's ``getUnit()``), else "1"."""
    get_unit = getattr(force, "getUnit", None)
    if get_unit is None:
        return "1"
    stated = get_unit()
    for name, known in (("nm", u.nanometer), ("rad", u.radian), ("1", u.dimensionless)):
        if stated == known:
            return name
    return str(stated.get_symbol()) or "1"


class ForceFeature(Feature):
    """Any OpenMM force whose potential energy is the order parameter (e.g. a ``cvpack`` CV).

    The value is the force's energy in kJ/mol read as a number in ``unit``: a ``cvpack``
    collective variable (RMSD, radius of gyration, contacts, path CVs), a
    ``CustomCentroidBondForce``, or a ``CustomCVForce`` of one's own qualifies. The force is
    stored as OpenMM XML, so the feature round-trips through :meth:`to_dict` and a campaign's
    features.json; a ``cvpack`` CV comes back as the OpenMM force it is built on.

    Parameters
    ----------
    force : openmm.Force or str
        The force, or its XML (``openmm.XmlSerializer.serialize``). It is copied.
    particles : int or Sequence[int]
        The particle indices the force uses (checked against the positions given to
        :meth:`evaluate`).
    unit : str, optional
        Unit of the value, e.g. "nm" for an RMSD, "1" for a count. Default: the force's own
        unit when it states one (a ``cvpack`` CV's ``getUnit()``: "nm", "rad", "1", else its
        symbol), otherwise "1".
    name : str, optional
        Label; default the force's own name (``force.getName()``).

    Raises
    ------
    ValueError
        When ``force`` is neither an ``openmm.Force`` nor readable XML of one, or
        ``particles``, ``unit`` or ``name`` is invalid.

    Notes
    -----
    OpenMM face: a copy of ``force``. Numpy face: the energy of the copy in a System of
    ``n_particles`` unit masses on the Reference platform, frame by frame (far slower than the
    other kinds). With ``box_vectors=None`` a force that uses periodic boundary conditions sees
    OpenMM's default box, as in a System without one. There is no PLUMED action and the force
    never joins the bias's ``CustomCompoundBondForce``.
    """

    kind = "openmm_force"

    def __init__(
        self,
        force: openmm.Force | str,
        particles: Sequence[int] | int,
        unit: str | None = None,
        name: str | None = None,
    ) -> None:
        if unit is None:
            unit = _force_unit(force)
        if isinstance(force, str):
            try:
                force = openmm.XmlSerializer.deserialize(force)
            except Exception as error:  # OpenMM raises a bare Exception on bad XML
                raise ValueError(f"force must be an openmm.Force or its XML. The XML given "
                                 f"cannot be read: {error}") from error
        if not isinstance(force, openmm.Force):
            _fail("force", "an openmm.Force or its XML", force)
        self.xml = openmm.XmlSerializer.serialize(force)
        self._particles = tuple(sorted(_validate_group(particles, "particles")))
        if not isinstance(unit, str) or not unit.strip():
            _fail("unit", "a non-empty string such as 'nm', 'rad' or '1'", unit)
        self.unit = unit
        self.name = _validate_name(name, force.getName())

    @property
    def particles(self) -> tuple[int, ...]:
        """tuple of int: the particle indices given, sorted and unique."""
        return self._particles

    def openmm_force(self) -> openmm.Force:
        """A new copy of the force (from its stored XML).

        Returns
        -------
        openmm.Force
            The force, its energy in kJ/mol read as the value in :attr:`unit`.
        """
        return openmm.XmlSerializer.deserialize(self.xml)

    def _compute(self, x: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        system = openmm.System()
        for _ in range(x.shape[1]):
            system.addParticle(1.0)
        system.addForce(self.openmm_force())
        context = openmm.Context(system, openmm.VerletIntegrator(0.001),
                                 openmm.Platform.getPlatformByName("Reference"))
        values = np.empty(x.shape[0])
        for k, frame in enumerate(x):
            if box is not None:
                context.setPeriodicBoxVectors(*box[k])
            context.setPositions(frame)
            energy = context.getState(getEnergy=True).getPotentialEnergy()
            values[k] = energy.value_in_unit(u.kilojoule_per_mole)
        del context
        return values

    def _params(self) -> dict[str, Any]:
        return {"force": self.xml, "particles": list(self._particles), "unit": self.unit}


# --------------------------------------------------------------------------------------------
# collections
# --------------------------------------------------------------------------------------------
def feature_from_dict(d: dict[str, Any]) -> Feature:
    """Rebuild a feature from :meth:`Feature.to_dict` output.

    Parameters
    ----------
    d : dict
        Must contain "kind" (one of the registered kinds) and the constructor arguments.

    Returns
    -------
    Feature

    Raises
    ------
    ValueError
        When ``d`` has no registered ``kind``, a key the kind does not take, or
        arguments its constructor refuses.
    """
    if not isinstance(d, dict) or "kind" not in d:
        _fail("d", "a dict with a 'kind' key", d)
    kwargs = dict(d)
    kind = kwargs.pop("kind")
    if kind not in Feature._registry:
        _fail("kind", f"one of {sorted(Feature._registry)}", kind)
    allowed = feature_keys(kind)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(unknown)} for a {kind!r} feature. Allowed: "
                         f"kind, {', '.join(allowed)}")
    try:
        return Feature._registry[kind](**kwargs)
    except TypeError as err:
        raise ValueError(f"cannot build a {kind!r} feature from {d!r}: {err}") from err


def feature_keys(kind: str) -> list[str]:
    """The keys a feature of ``kind`` takes besides ``kind`` (its constructor's keywords).

    Parameters
    ----------
    kind : str
        A registered kind (``Feature.kind`` of a subclass, e.g. "distance").

    Returns
    -------
    list of str
        The keyword names of its constructor, in order.

    Raises
    ------
    KeyError
        When ``kind`` is not registered.
    """
    import inspect

    parameters = inspect.signature(Feature._registry[kind].__init__).parameters
    return [name for name, p in parameters.items() if name != "self"
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def openmm_feature_values(
    features: Sequence[Feature],
    positions: np.ndarray,
    box_vectors: np.ndarray | None,
    system: openmm.System,
) -> np.ndarray:
    """The features' values from their OpenMM forces, as a simulation of ``system`` sees them.

    Each feature's :meth:`Feature.openmm_force` goes into a copy of ``system``'s particles
    (no other force) on the Reference platform, with ``box_vectors`` as the box, or, for
    ``None``, the System's default box (which OpenMM uses for a force with periodic boundary
    conditions even when the System has none). Compare with :meth:`Feature.evaluate` on the
    same positions and ``box_vectors`` to see whether the two faces agree.

    Parameters
    ----------
    features : Sequence[Feature]
        The d features.
    positions : np.ndarray, shape=(n_frames, n_particles, 3) or (n_particles, 3), nm
        Coordinates of the frames.
    box_vectors : np.ndarray, shape=(3, 3), nm, or None
        The periodic box of every frame; None: the System's default box.
    system : openmm.System
        The simulated System (particle count and default box).

    Returns
    -------
    np.ndarray, shape=(n_frames, d), dtype=float64
    """
    x = _as_frames(positions)
    values = np.empty((x.shape[0], len(features)))
    for start in range(0, len(features), 32):  # one force group each, 32 groups
        batch = features[start:start + 32]
        copy = openmm.System()
        for i in range(system.getNumParticles()):
            copy.addParticle(system.getParticleMass(i))
        copy.setDefaultPeriodicBoxVectors(*system.getDefaultPeriodicBoxVectors())
        for group, feature in enumerate(batch):
            force = feature.openmm_force()
            force.setForceGroup(group)
            copy.addForce(force)
        context = openmm.Context(copy, openmm.VerletIntegrator(0.001),
                                 openmm.Platform.getPlatformByName("Reference"))
        if box_vectors is not None:
            context.setPeriodicBoxVectors(*np.asarray(box_vectors, dtype=float))
        for n, frame in enumerate(x):
            context.setPositions(frame)
            for group in range(len(batch)):
                energy = context.getState(getEnergy=True, groups={group}).getPotentialEnergy()
                values[n, start + group] = energy.value_in_unit(u.kilojoule_per_mole)
        del context
    return values


def feature_names(features: Sequence[Feature]) -> list[str]:
    """Names of the features, in order; ValueError if two share a name.

    Parameters
    ----------
    features : Sequence[Feature]
        The features.

    Returns
    -------
    list of str
        ``f.name`` of each feature.

    Raises
    ------
    ValueError
        When two features share a name.
    """
    names = [f.name for f in features]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(
            f"feature names must be unique. You supplied duplicates {dupes}; "
            "pass name=... to tell them apart"
        )
    return names


def evaluate_features(
    features: Sequence[Feature], positions: np.ndarray, box_vectors: np.ndarray | None = None
) -> np.ndarray:
    """Evaluate several features on the same coordinates.

    Parameters
    ----------
    features : Sequence[Feature]
        The d features (names must be unique).
    positions : np.ndarray, shape=(n_frames, n_particles, 3) or (n_particles, 3), nm
        Coordinates of the frames (an OpenMM Quantity is converted to nm).
    box_vectors : np.ndarray, shape=(n_frames, 3, 3) or (3, 3), nm, optional
        Periodic box vectors (see :meth:`Feature.evaluate`); None for no periodicity.

    Returns
    -------
    np.ndarray, shape=(n_frames, d), dtype=float64
    """
    feature_names(features)
    x = _as_frames(positions)
    if len(features) == 0:
        return np.zeros((x.shape[0], 0))
    return np.stack([f.evaluate(x, box_vectors) for f in features], axis=1)
