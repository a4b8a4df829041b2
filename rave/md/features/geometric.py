"""Geometric order parameters: :class:`Position`, :class:`Distance`, :class:`Angle`,
:class:`Dihedral`, :class:`Coordination`, and their numpy kernels (:func:`pair_distances`,
:func:`dihedral_angles`, :func:`switching_function`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import openmm

from .base import (
    _AXES,
    CompoundTerm,
    Feature,
    PlumedAction,
    _centroid,
    _centroid_force,
    _displacement,
    _fail,
    _group_label,
    _plumed_atoms,
    _plumed_pbc,
    _plumed_point,
    _single_atoms,
    _to_nm,
    _validate_group,
    _validate_name,
    _validate_weights,
)


def pair_distances(x: np.ndarray, pairs: np.ndarray, box: np.ndarray | None = None) -> np.ndarray:
    """Pair distances (n_frames, n_pairs) nm of x (n_frames, n_particles, 3) nm; box as OpenMM's."""
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
    """Dihedral angles (n_frames,) rad in (-pi, pi], IUPAC sign as OpenMM and mdtraj."""
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
    """s(r) = (1 - (r/r0)^n) / (1 - (r/r0)^m), dimensionless, same shape as r (nm); m default 2n.

    Within ``COORDINATION_TAYLOR_HALF_WIDTH`` of r = r0 the 2nd-order Taylor series replaces the
    0/0, as in the OpenMM face.
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
    """Smooth count (dimensionless) of (a, b) pairs closer than ``r0`` (nm), a sum of switchings.

    Pairs are i in group_a, j in group_b, i != j, each unordered pair once; no cutoff. ``m``
    defaults to 2n (then s = 1 / (1 + (r/r0)^n)). Raises ValueError for ``r0`` not finite > 0 and
    for invalid groups, exponents or name. OpenMM face: a ``CustomBondForce``, one bond per pair.
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
        """A new ``CustomBondForce`` (kJ/mol = the count), one bond per pair."""
        force = openmm.CustomBondForce(_switch_expression(self.r0, self.n, self.m or 2 * self.n))
        for i, j in self._pairs.tolist():
            force.addBond(i, j, [])
        force.setUsesPeriodicBoundaryConditions(self.periodic)
        return force

    def plumed_action(self, label: str) -> PlumedAction:
        """``COORDINATION`` with PLUMED's RATIONAL switching (R_0, NN, MM) and no cutoff."""
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
