"""A ligand (C60 or a methane-like site) in a pocket cut into a frozen LJ wall, explicit water.

The hydrophobic cavity of Setny/Berne, in the setup published by the Tiwary lab (GROMACS files,
JPCB 2024) and used for the RAVE ligand-unbinding example, rebuilt from scratch with OpenMM;
no external files (the water box is OpenMM's own pre-equilibrated one).

Geometry
--------
* Wall: LJ sites on an hcp lattice, nearest neighbour 0.125 nm, layers 0.125 sqrt(2/3) =
  0.1021 nm apart (ABAB stacking along z), a rectangular block centred in the periodic box.
  Sites are frozen (mass 0: integrators and the minimiser never move them).
* Pocket: a bowl cut into the top face, on the vertical axis through the block centre: the
  lattice sites strictly inside a sphere and strictly above a flat floor are removed. The sphere
  is the one through the floor rim (radius ``floor_radius`` at the floor) and the mouth rim
  (radius ``mouth_radius`` in the top layer); the depth is rounded to a whole number of layers.
  For ``paper`` (depth 0.8 -> 0.8165 nm, mouth 1.0 nm, floor 0.66 nm) that sphere has radius
  1.002 nm and its centre lies 0.063 nm below the top layer: a near-hemispherical bowl with a
  flat bottom.
* Lining: the wall sites within ``LINING_THICKNESS_NM`` = 0.35 nm of the pocket (the region
  whose sites were removed; exact distance to that sphere-and-floor region) get the lining
  epsilon.
* Ligand, "c60": 60 sites on a truncated icosahedron with all 90 edges 0.1408 nm (the middle of
  the published 0.1404-0.1411 nm), cage radius 0.349 nm, mass 12.011 each. It is held rigid by
  harmonic bonds at their rest lengths (:data:`C60_BOND_K`): the 90 edges, the 180 second
  neighbours (pairs sharing a neighbour) and the 30 antipodal pairs; this network has exactly
  six zero modes (rigid translations and rotations) and its fastest mode has a period of
  21 fs, 10.6 time steps of 2 fs (tested). All 1770 intra-ligand pairs are excluded from the
  nonbonded forces. "methane": one site, mass 16.04.
* Ligand start: on the pocket axis, ``LIGAND_FLOOR_CLEARANCE_NM`` above the floor layer.
* Water: TIP4P-Ew (default) or TIP3P from OpenMM's ForceField XML, rigid (constraints), the M
  site a virtual site. Molecules are taken from OpenMM's pre-equilibrated water box
  (``openmm/app/data/<model>.pdb``, 3 nm cube) tiled over the box; a water is dropped if its
  oxygen is within ``WATER_EXCLUSION_NM`` = 0.3 nm of a wall or ligand site, or within
  ``WATER_SEAM_NM`` = 0.2 nm of an already kept oxygen (clashes at the seams where the tiled
  box meets its periodic image; minimisation relaxes the rest). The pocket therefore starts full of
  water, apart from the ligand.

Parameters (kJ/mol, nm)
-----------------------
==============  ======  =========  =========================================
site            sigma   epsilon    charge (e)
==============  ======  =========  =========================================
wall            0.4152  0.0024     0 (hydrophilic: +0.5 on dipole tails)
lining          0.4152  0.0080     0 (hydrophilic: -0.5 heads, +0.5 tails)
C60 site        0.35    0.276144   0
methane         0.373   1.2301     0
water O         model   model      model (TIP4P-Ew: 0, M -1.04844, H 0.52422)
==============  ======  =========  =========================================

Nonbonded model: ``NonbondedForce`` (PME, Ewald tolerance 5e-4) carries all charges and the
water-water LJ (water oxygens only); every ligand and wall site has epsilon 0 there. A
``CustomNonbondedForce`` carries all other LJ with geometric combining rules for sigma and
epsilon, ``4 eps ((sig/r)^12 - (sig/r)^6)``, sig = sqrt(sig1 sig2), eps = sqrt(eps1 eps2),
restricted by interaction groups to ligand x water-O, ligand x wall and water-O x wall, so
wall-wall pairs are never computed. Both use the same cutoff and LJ switch (published:
switched 1.14 -> 1.2 nm; both sizes keep it, the ``small`` box's shortest edge 3.0 nm being
over twice the cutoff), and have identical exclusions (water intramolecular, intra-ligand),
as the CUDA platform requires. Water-water LJ has the usual long-range dispersion correction;
the custom force has none (its pairs involve the fixed wall or one ligand: an inhomogeneous
system where the homogeneous correction would be wrong; at fixed volume it is a constant
anyway). No CMMotionRemover: the frozen wall pins the frame, and momentum is not conserved.
Wall-wall Coulomb pairs (hydrophilic) remain in NonbondedForce: a constant energy, since the
wall never moves.

Variants
--------
"hydrophobic": no charges on the wall or the ligand (the published system).
"hydrophilic": the pocket lining carries hydroxyl-like surface dipoles; the ligand stays
apolar. Heads are lining sites in the first layer of the pocket surface (within
``DIPOLE_HEAD_SURFACE_NM`` = 0.125 nm of the pocket), picked greedily in index order at least
``DIPOLE_HEAD_SPACING_NM`` = 0.45 nm apart (a surface density of a few per nm^2, like silanols
on silica, ~4.6 nm^-2); each head gets ``-DIPOLE_CHARGE_E`` = -0.5 e and the unused wall site
nearest to the point one lattice spacing (0.125 nm) behind it (away from the pocket), and
further from the pocket than the head, gets +0.5 e (a nearest neighbour of the head, or for a
few heads a second neighbour 0.177 nm away): a dipole of about 0.0625 e nm = 3.0 D per pair,
pointing into the pocket with its negative end exposed, comparable to a water dipole
(TIP4P-Ew 2.32 D), so water H-bonds to the lining. The heads are only at the pocket surface
(and its rim), not on the rest of the top face, so the pocket wets while the rest of the wall
stays hydrophobic. Net charge is exactly 0 (pairs).

Sizes
-----
``paper``: box 4.548 x 4.548 x 5.932 nm, block 2.8 x 2.8 x 1.7 nm (17 layers, 1.633 nm between
the top and bottom site planes), pocket as above.
``small`` (CPU tests and demos): box 3.0 x 3.0 x 3.3 nm, block 2.3 x 2.3 x 1.0 nm (10 layers,
0.919 nm), pocket depth 0.7 -> 0.7144 nm, mouth radius 0.85 nm, floor radius 0.55 nm (sphere
radius 0.852 nm): the floor is 0.20 nm (2 more layers) thick below the pocket, and a C60 still
fits (its centroid needs ~0.75 nm to the nearest wall site; it fills the pocket, n_w ~ 0 when
bound). The cutoff stays 1.2 nm (the shortest edge, 3.0 nm, is over twice it).

Particle counts (measured by ``build_ligand_cavity(...).describe()``, identical for both
variants; TIP4P-Ew, 4 particles per water; see :data:`PARTICLE_COUNTS`):

=====  =======  ====  ======  ======  =====
size   ligand   wall  lining  waters  total
=====  =======  ====  ======  ======  =====
small  methane  2870  1758    620     5351
small  c60      2870  1758    590     5290
paper  methane  8156  2462    3239    21113
paper  c60      8156  2462    3209    21052
=====  =======  ====  ======  ======  =====

Hydrophilic: 27 dipole pairs (small), 37 (paper). TIP3P: 608/580 (small), 3218/3188 (paper)
waters. The published paper system has 3375 waters; here the water is at the density of
OpenMM's pre-equilibrated box with the 0.3 nm exclusion around the block as specified (2.8 x
2.8 nm of site centres), which leaves ~4 % fewer. Build time 0.1-0.3 s (small), 0.4-0.7 s
(paper).

MD speeds (ns/day, biased and unbiased, both sizes) are in docs/benchmarks.md. The wall is not
free in NonbondedForce: that force has every particle, so its direct-space neighbour list holds
the (zero-charge, zero-LJ) wall-wall pairs.

Order parameters (:attr:`LigandCavitySystem.features`), about ``pocket_center``: the
centroid of the pocket region (the sphere-and-floor region below the top layer), on the axis.

* ``z``: signed height (nm) of the ligand centroid above ``pocket_center``
  (:class:`rave.md.features.CylindricalPosition`, component "z");
* ``rho``: distance (nm) of the ligand centroid from the pocket axis (component "rho");
* ``n_w``: smooth count of water oxygens in the pocket (:class:`rave.md.features.CylinderCount`):
  a cylinder of the pocket-sphere radius from 0.1 nm below the floor layer to the top layer,
  each boundary softened over ``N_W_WIDTH_NM`` = 0.2 nm. Water cannot enter the wall, so below
  the top face only pocket water is inside; waters on the flat top face (oxygens 0.3 nm or
  more above the top layer, 0.38 nm in a prepared small system, past the switch's 0.1 nm
  half-width) and under the block are outside.

All three wrap periodic images with the fixed box (NVT), so they do not depend on which image
of the ligand or a water is used.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import openmm
from openmm import app
from openmm import unit as u
from scipy.spatial import cKDTree

from rave.errors import ConfigError
from rave.md.features import CylinderCount, CylindricalPosition, Feature

from .registry import SimulationSystem, SystemKind

if TYPE_CHECKING:  # pragma: no cover
    from rave.campaign.config import Config, SystemConfig

__all__ = [
    "LigandCavitySystem",
    "CavityGeometry",
    "build_ligand_cavity",
    "prepare_ligand_cavity",
    "hcp_lattice",
    "truncated_icosahedron",
    "pocket_distance",
    "Pocket",
    "VARIANTS",
    "LIGANDS",
    "SIZES",
    "WATER_MODELS",
    "GEOMETRIES",
    "PARTICLE_COUNTS",
]

VARIANTS = ("hydrophobic", "hydrophilic")
LIGANDS = ("methane", "c60")
SIZES = ("small", "paper")
WATER_MODELS = ("tip4pew", "tip3p")

#: hcp nearest-neighbour distance (nm) and layer spacing (nm, ideal c/2 = a sqrt(2/3))
HCP_NEIGHBOUR_NM = 0.125
HCP_LAYER_NM = HCP_NEIGHBOUR_NM * math.sqrt(2.0 / 3.0)

# (sigma nm, epsilon kJ/mol)
WALL_LJ = (0.4152, 0.0024)
LINING_LJ = (0.4152, 0.0080)
C60_LJ = (0.35, 0.276144)
METHANE_LJ = (0.373, 1.2301)
CARBON_MASS_AMU = 12.011
METHANE_MASS_AMU = 16.04
#: C60 edge length (nm), uniform
C60_BOND_NM = 0.1408
#: force constants (kJ/mol/nm^2) of the C60 rigidity network: edges, second neighbours, antipodes
C60_BOND_K = {"edge": 2.0e5, "second": 1.0e5, "antipodal": 1.0e4}

LINING_THICKNESS_NM = 0.35
DIPOLE_HEAD_SURFACE_NM = 0.125
DIPOLE_HEAD_SPACING_NM = 0.45
DIPOLE_CHARGE_E = 0.5

WATER_EXCLUSION_NM = 0.3
WATER_SEAM_NM = 0.2
#: ligand centroid start height above the floor layer (nm); contact with the floor sites
LIGAND_FLOOR_CLEARANCE_NM = {"methane": 0.40, "c60": 0.75}
#: n_w cylinder: switching width and how far below the floor layer it starts (nm)
N_W_WIDTH_NM = 0.2
N_W_BELOW_FLOOR_NM = 0.1
#: ``is_bound``: the ligand centroid may rise this far above the top layer (nm)
BOUND_Z_MARGIN_NM = 0.3

TIMESTEP_PS = 0.002
FRICTION_PER_PS = 1.0
EWALD_TOLERANCE = 5e-4
#: temporary harmonic restraint of the ligand centroid in prepare_ligand_cavity, kJ/mol/nm^2
PREPARE_RESTRAINT_K = 1000.0
#: friction (1/ps) during prepare_ligand_cavity's equilibration (fast thermalisation)
PREPARE_FRICTION_PER_PS = 10.0


@dataclass(frozen=True)
class CavityGeometry:
    """Box, wall block and pocket of one size (nm)."""

    box: tuple[float, float, float]
    block: tuple[float, float, float]
    pocket_depth: float
    mouth_radius: float
    floor_radius: float
    cutoff: float = 1.2
    switch: float = 1.14


GEOMETRIES: dict[str, CavityGeometry] = {
    "paper": CavityGeometry(
        box=(4.548, 4.548, 5.932),
        block=(2.8, 2.8, 1.7),
        pocket_depth=0.8,
        mouth_radius=1.0,
        floor_radius=0.66,
    ),
    "small": CavityGeometry(
        box=(3.0, 3.0, 3.3),
        block=(2.3, 2.3, 1.0),
        pocket_depth=0.7,
        mouth_radius=0.85,
        floor_radius=0.55,
    ),
}

#: (size, ligand, water_model) -> counts from build_ligand_cavity (both variants; n_dipoles:
#: surface dipole pairs of the hydrophilic variant). Deterministic; the tests rebuild them.
PARTICLE_COUNTS: dict[tuple[str, str, str], dict[str, int]] = {
    ("small", "methane", "tip4pew"): {
        "n_particles": 5351,
        "n_wall": 2870,
        "n_lining": 1758,
        "n_waters": 620,
        "n_dipoles": 27,
    },
    ("small", "c60", "tip4pew"): {
        "n_particles": 5290,
        "n_wall": 2870,
        "n_lining": 1758,
        "n_waters": 590,
        "n_dipoles": 27,
    },
    ("paper", "methane", "tip4pew"): {
        "n_particles": 21113,
        "n_wall": 8156,
        "n_lining": 2462,
        "n_waters": 3239,
        "n_dipoles": 37,
    },
    ("paper", "c60", "tip4pew"): {
        "n_particles": 21052,
        "n_wall": 8156,
        "n_lining": 2462,
        "n_waters": 3209,
        "n_dipoles": 37,
    },
    ("small", "methane", "tip3p"): {
        "n_particles": 4695,
        "n_wall": 2870,
        "n_lining": 1758,
        "n_waters": 608,
        "n_dipoles": 27,
    },
    ("small", "c60", "tip3p"): {
        "n_particles": 4670,
        "n_wall": 2870,
        "n_lining": 1758,
        "n_waters": 580,
        "n_dipoles": 27,
    },
    ("paper", "methane", "tip3p"): {
        "n_particles": 17811,
        "n_wall": 8156,
        "n_lining": 2462,
        "n_waters": 3218,
        "n_dipoles": 37,
    },
    ("paper", "c60", "tip3p"): {
        "n_particles": 17780,
        "n_wall": 8156,
        "n_lining": 2462,
        "n_waters": 3188,
        "n_dipoles": 37,
    },
}


# --------------------------------------------------------------------------------------------
# pure geometry
# --------------------------------------------------------------------------------------------
def hcp_lattice(
    center_xy: tuple[float, float],
    half_widths: tuple[float, float],
    z_top: float,
    n_layers: int,
    a: float = HCP_NEIGHBOUR_NM,
) -> np.ndarray:
    """Sites of an hcp lattice (ABAB along z) in a rectangular block, top layer at ``z_top``."""
    dy = a * math.sqrt(3.0) / 2.0
    layer = a * math.sqrt(2.0 / 3.0)
    hx, hy = half_widths
    ni, nj = int(math.ceil(hx / a)) + 2, int(math.ceil(hy / dy)) + 2
    i, j = np.meshgrid(np.arange(-ni, ni + 1), np.arange(-nj, nj + 1), indexing="ij")
    i, j = i.ravel(), j.ravel()
    out = []
    for k in range(n_layers):
        shift = (0.0, 0.0) if k % 2 == 0 else (a / 2.0, a * math.sqrt(3.0) / 6.0)
        x = i * a + (j % 2) * (a / 2.0) + shift[0]
        y = j * dy + shift[1]
        keep = (np.abs(x) <= hx + 1e-9) & (np.abs(y) <= hy + 1e-9)
        pts = np.stack(
            [
                x[keep] + center_xy[0],
                y[keep] + center_xy[1],
                np.full(keep.sum(), z_top - k * layer),
            ],
            axis=1,
        )
        order = np.lexsort((pts[:, 0], pts[:, 1]))
        out.append(pts[order])
    return np.concatenate(out)


def truncated_icosahedron(edge: float = C60_BOND_NM) -> np.ndarray:
    """Vertices of a truncated icosahedron (C60 cage) centred at the origin.

    Even permutations of (0, +-1, +-3 phi), (+-1, +-(2 + phi), +-2 phi) and
    (+-phi, +-2, +-(2 phi + 1)), edge length 2, scaled to ``edge``.
    """
    phi = (1.0 + math.sqrt(5.0)) / 2.0
    bases = [(0.0, 1.0, 3 * phi), (1.0, 2.0 + phi, 2 * phi), (phi, 2.0, 2 * phi + 1.0)]
    even = [(0, 1, 2), (1, 2, 0), (2, 0, 1)]
    points = set()
    for base in bases:
        for signs in itertools.product((1.0, -1.0), repeat=3):
            v = [s * b for s, b in zip(signs, base, strict=True)]
            for p in even:
                points.add(tuple(round(v[k], 12) + 0.0 for k in p))
    out = np.array(sorted(points)) * (edge / 2.0)
    if out.shape != (60, 3):  # pragma: no cover - construction invariant
        raise RuntimeError(f"truncated icosahedron has {len(out)} vertices, expected 60")
    return out


def _c60_bonds(xyz: np.ndarray) -> dict[str, list[tuple[int, int, float]]]:
    """Edges, second-neighbour and antipodal pairs of a C60 cage with their rest lengths."""
    d = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    edge = float(np.min(d[d > 0]))
    n = len(xyz)
    edges = [(i, j) for i in range(n) for j in range(i + 1, n) if abs(d[i, j] - edge) < 1e-6]
    nbr = {i: set() for i in range(n)}
    for i, j in edges:
        nbr[i].add(j)
        nbr[j].add(i)
    second = sorted(
        {(min(i, k), max(i, k)) for j in range(n) for i in nbr[j] for k in nbr[j] if i != k}
    )
    antipodal = [(i, int(np.argmax(d[i]))) for i in range(n) if i < int(np.argmax(d[i]))]
    return {
        name: [(i, j, float(d[i, j])) for i, j in pairs]
        for name, pairs in (("edge", edges), ("second", second), ("antipodal", antipodal))
    }


@dataclass(frozen=True)
class Pocket:
    """The pocket region: inside a sphere centred on the axis and above the floor plane (nm)."""

    axis_xy: tuple[float, float]
    z_top: float
    z_floor: float
    sphere_z: float
    sphere_radius: float
    floor_radius: float
    mouth_radius: float

    @classmethod
    def make(cls, axis_xy, z_top: float, depth: float, mouth: float, floor: float) -> Pocket:
        # r(z)^2 = R^2 - (z - zs)^2 through (floor, z_floor) and (mouth, z_top)
        """The pocket of a depth and the radii at its floor and its mouth (nm).

        The bowl's sphere is the one whose section is a circle of radius ``floor`` at the floor
        and of radius ``mouth`` at the top layer.
        """
        z_floor = z_top - depth
        zs = (mouth**2 - floor**2 + z_top**2 - z_floor**2) / (2.0 * (z_top - z_floor))
        radius = math.sqrt(floor**2 + (z_floor - zs) ** 2)
        return cls(tuple(axis_xy), z_top, z_floor, zs, radius, floor, mouth)

    def centroid(self) -> np.ndarray:
        """Centroid of the region between the floor and the top layer (on the axis)."""
        t0, t1 = self.z_floor - self.sphere_z, self.z_top - self.sphere_z
        r2 = self.sphere_radius**2
        volume = r2 * (t1 - t0) - (t1**3 - t0**3) / 3.0
        moment = r2 * (t1**2 - t0**2) / 2.0 - (t1**4 - t0**4) / 4.0
        return np.array([self.axis_xy[0], self.axis_xy[1], self.sphere_z + moment / volume])

    def inside(self, p: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """Whether points are strictly inside the region (by more than ``tol``)."""
        c = np.array([self.axis_xy[0], self.axis_xy[1], self.sphere_z])
        return (np.linalg.norm(p - c, axis=1) < self.sphere_radius - tol) & (
            p[:, 2] > self.z_floor + tol
        )


def pocket_distance(points: np.ndarray, pocket: Pocket) -> tuple[np.ndarray, np.ndarray]:
    """Exact distance from points to the (convex) pocket region and the closest points."""
    p = np.asarray(points, dtype=np.float64)
    centre = np.array([pocket.axis_xy[0], pocket.axis_xy[1], pocket.sphere_z])
    rel = p - centre
    r = np.linalg.norm(rel, axis=1)
    lateral = p[:, :2] - np.asarray(pocket.axis_xy)
    rho = np.linalg.norm(lateral, axis=1)
    best = np.full(len(p), np.inf)
    closest = p.copy()

    def offer(valid, q):
        dist = np.linalg.norm(p - q, axis=1)
        better = valid & (dist < best)
        best[better] = dist[better]
        closest[better] = q[better]

    safe_r = np.where(r > 0, r, 1.0)
    sphere_q = centre + rel * (pocket.sphere_radius / safe_r)[:, None]
    offer((r >= pocket.sphere_radius) & (sphere_q[:, 2] >= pocket.z_floor), sphere_q)
    floor_q = np.column_stack([p[:, :2], np.full(len(p), pocket.z_floor)])
    offer((rho <= pocket.floor_radius) & (p[:, 2] <= pocket.z_floor), floor_q)
    unit_lat = np.where(rho[:, None] > 0, lateral / np.where(rho > 0, rho, 1.0)[:, None], [1, 0])
    rim_q = np.column_stack(
        [
            np.asarray(pocket.axis_xy) + pocket.floor_radius * unit_lat,
            np.full(len(p), pocket.z_floor),
        ]
    )
    offer(np.ones(len(p), dtype=bool), rim_q)
    inside = (r <= pocket.sphere_radius) & (p[:, 2] >= pocket.z_floor)
    best[inside] = 0.0
    closest[inside] = p[inside]
    return best, closest


def _dipole_pairs(wall: np.ndarray, lining: np.ndarray, pocket: Pocket) -> list[tuple[int, int]]:
    """(head, tail) wall-site indices of the hydrophilic lining's surface dipoles."""
    dist, closest = pocket_distance(wall, pocket)
    tree = cKDTree(wall)
    used: set[int] = set()
    heads: list[int] = []
    pairs = []
    for h in np.flatnonzero(lining & (dist <= DIPOLE_HEAD_SURFACE_NM)):
        if any(np.linalg.norm(wall[h] - wall[k]) < DIPOLE_HEAD_SPACING_NM for k in heads):
            continue
        normal = wall[h] - closest[h]
        norm = np.linalg.norm(normal)
        normal = normal / norm if norm > 1e-9 else np.array([0.0, 0.0, -1.0])
        target = wall[h] + HCP_NEIGHBOUR_NM * normal
        for t in tree.query(target, k=6)[1]:
            t = int(t)
            if t != h and t not in used and dist[t] > dist[h]:
                break
        else:  # pragma: no cover - the lattice always has a deeper neighbour
            continue
        heads.append(int(h))
        used.update((int(h), t))
        pairs.append((int(h), t))
    return pairs


# --------------------------------------------------------------------------------------------
# water
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _WaterModel:
    names: tuple[str, ...]
    elements: tuple[Any, ...]
    masses: tuple[float, ...]
    charges: tuple[float, ...]
    sigmas: tuple[float, ...]
    epsilons: tuple[float, ...]
    constraints: tuple[tuple[int, int, float], ...]
    virtual_sites: tuple[tuple[int, tuple[int, int, int], tuple[float, float, float]], ...]
    exclusions: tuple[tuple[int, int], ...]
    template_box: np.ndarray
    template_positions: np.ndarray  # (n_molecules, n_sites, 3) nm


_WATER_CACHE: dict[str, _WaterModel] = {}


def _water_model(model: str) -> _WaterModel:
    """Parameters of one rigid water from OpenMM's ForceField XML and its water box PDB."""
    if model in _WATER_CACHE:
        return _WATER_CACHE[model]
    data = os.path.join(os.path.dirname(app.__file__), "data")
    pdb = app.PDBFile(os.path.join(data, f"{model}.pdb"))
    residues = list(pdb.topology.residues())
    names = tuple(a.name for a in residues[0].atoms())
    xyz = pdb.getPositions(asNumpy=True).value_in_unit(u.nanometer)
    per = len(names)
    template = np.asarray(xyz).reshape(len(residues), per, 3)
    box = np.asarray(pdb.topology.getUnitCellDimensions().value_in_unit(u.nanometer))
    # one molecule through the ForceField: masses, charges, LJ, constraints, virtual sites
    top = app.Topology()
    res = top.addResidue("HOH", top.addChain())
    atoms = [top.addAtom(a.name, a.element, res) for a in residues[0].atoms()]
    for a in atoms[1:]:
        if a.element is not None and a.element.symbol == "H":
            top.addBond(atoms[0], a)
    system = app.ForceField(f"{model}.xml").createSystem(
        top, nonbondedMethod=app.NoCutoff, constraints=app.HBonds, rigidWater=True
    )
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    params = [nb.getParticleParameters(i) for i in range(per)]
    vsites = []
    for i in range(per):
        if system.isVirtualSite(i):
            vs = system.getVirtualSite(i)
            if not isinstance(vs, openmm.ThreeParticleAverageSite):  # pragma: no cover
                raise RuntimeError(f"unsupported virtual site in {model}: {type(vs).__name__}")
            vsites.append(
                (
                    i,
                    tuple(vs.getParticle(k) for k in range(3)),
                    tuple(vs.getWeight(k) for k in range(3)),
                )
            )
    constraints = []
    for k in range(system.getNumConstraints()):
        i, j, d = system.getConstraintParameters(k)
        constraints.append((i, j, d.value_in_unit(u.nanometer)))
    exclusions = []
    for k in range(nb.getNumExceptions()):
        i, j, qq, _, eps = nb.getExceptionParameters(k)
        if qq._value != 0 or eps._value != 0:  # pragma: no cover - water has no 1-4 pairs
            raise RuntimeError(f"{model}: unexpected non-zero water exception {i}-{j}")
        exclusions.append((min(i, j), max(i, j)))
    model_params = _WaterModel(
        names=names,
        elements=tuple(a.element for a in residues[0].atoms()),
        masses=tuple(system.getParticleMass(i).value_in_unit(u.dalton) for i in range(per)),
        charges=tuple(p[0].value_in_unit(u.elementary_charge) for p in params),
        sigmas=tuple(p[1].value_in_unit(u.nanometer) for p in params),
        epsilons=tuple(p[2].value_in_unit(u.kilojoule_per_mole) for p in params),
        constraints=tuple(constraints),
        virtual_sites=tuple(vsites),
        exclusions=tuple(sorted(set(exclusions))),
        template_box=box,
        template_positions=template,
    )
    _WATER_CACHE[model] = model_params
    return model_params


def _place_waters(water: _WaterModel, box: np.ndarray, solute: np.ndarray) -> np.ndarray:
    """Tile the template water box over ``box`` and drop clashing molecules."""
    tb = water.template_box
    reps = [int(math.ceil(box[k] / tb[k])) for k in range(3)]
    mols = []
    for shift in itertools.product(*(range(n) for n in reps)):
        mols.append(water.template_positions + np.asarray(shift) * tb)
    mols = np.concatenate(mols)
    oxygen = mols[:, 0, :]
    mols = mols[np.all((oxygen >= 0) & (oxygen < box), axis=1)]
    oxygen = mols[:, 0, :]
    tree = cKDTree(np.mod(solute, box), boxsize=box)
    clash = np.array([len(n) > 0 for n in tree.query_ball_point(oxygen, WATER_EXCLUSION_NM)])
    mols, oxygen = mols[~clash], oxygen[~clash]
    # seams: drop the later molecule of every pair of oxygens closer than WATER_SEAM_NM
    pairs = cKDTree(oxygen, boxsize=box).query_pairs(WATER_SEAM_NM, output_type="ndarray")
    drop = np.zeros(len(mols), dtype=bool)
    for i, j in sorted(map(tuple, np.sort(pairs, axis=1).tolist())):
        if not drop[i]:
            drop[j] = True
    return mols[~drop]


# --------------------------------------------------------------------------------------------
# the system
# --------------------------------------------------------------------------------------------
@dataclass
class LigandCavitySystem:
    """A built ligand-cavity system and its order parameters.

    Attributes
    ----------
    system : openmm.System
        Periodic; wall sites have mass 0; forces in group 0.
    topology : openmm.app.Topology
        Chain "L" (residue LIG), chain "W" (one residue WAL per wall site, atom names W or WL for
        lining), chain "S" (HOH residues).
    positions : np.ndarray, shape=(n_particles, 3), nm
        Start positions (water oxygens in the box, ligand on the pocket axis).
    box_vectors : np.ndarray, shape=(3, 3), nm
        Rows a, b, c (rectangular).
    features : list of rave.md.features.Feature
        ``z``, ``rho``, ``n_w`` in that order.
    ligand_atoms, wall_atoms, lining_atoms, water_oxygens : tuple of int
        Particle indices (lining atoms are a subset of wall atoms).
    pocket_center : np.ndarray, shape=(3,), nm
        Origin of z, rho and n_w: centroid of the pocket region, on the pocket axis.
    timestep_ps, friction_per_ps : float
        Dynamics defaults (LangevinMiddleIntegrator).
    name : str
        "ligand_cavity/<variant>/<ligand>/<size>".
    geometry : dict
        Resolved numbers: box, block, layers, pocket (z_top, z_floor, sphere, radii), cutoffs.
    charges : np.ndarray, shape=(n_particles,), e
        Partial charges as in the NonbondedForce.
    """

    system: openmm.System
    topology: app.Topology
    positions: np.ndarray
    box_vectors: np.ndarray
    features: list[Feature]
    ligand_atoms: tuple[int, ...]
    wall_atoms: tuple[int, ...]
    lining_atoms: tuple[int, ...]
    water_oxygens: tuple[int, ...]
    pocket_center: np.ndarray
    timestep_ps: float = TIMESTEP_PS
    friction_per_ps: float = FRICTION_PER_PS
    name: str = ""
    geometry: dict[str, Any] = field(default_factory=dict)
    charges: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def pocket(self) -> Pocket:
        """The pocket region (see :class:`Pocket`).

        Returns
        -------
        Pocket
            Built from ``pocket_center``'s axis and the pocket entries of ``geometry``.
        """
        g = self.geometry
        return Pocket(
            (float(self.pocket_center[0]), float(self.pocket_center[1])),
            g["z_top"],
            g["z_floor"],
            g["sphere_z"],
            g["sphere_radius"],
            g["floor_radius"],
            g["mouth_radius"],
        )

    def is_bound(self, z: np.ndarray, rho: np.ndarray) -> np.ndarray:
        """Whether (z, rho) of the ligand centroid is in the pocket.

        Bound: ``rho < mouth_radius`` and ``z_floor <= z <= z_top + BOUND_Z_MARGIN_NM``, heights
        relative to ``pocket_center`` (the floor and top layers of the wall).

        Parameters
        ----------
        z, rho : np.ndarray, any (equal) shape, nm
            Height of the ligand centroid relative to ``pocket_center`` and its distance from
            the pocket axis.

        Returns
        -------
        np.ndarray of bool, same shape
            Whether each (z, rho) is bound.
        """
        g = self.geometry
        z0 = float(self.pocket_center[2])
        z, rho = np.asarray(z, dtype=float), np.asarray(rho, dtype=float)
        return (
            (rho < g["mouth_radius"])
            & (z >= g["z_floor"] - z0)
            & (z <= g["z_top"] - z0 + BOUND_Z_MARGIN_NM)
        )

    def describe(self) -> dict[str, Any]:
        """Particle counts by kind, charges, box, cutoffs and pocket geometry (JSON-able).

        Returns
        -------
        dict
            Quantity name -> value (numbers, lists and strings).
        """
        n_water = len(self.water_oxygens)
        q = self.charges
        wall = np.asarray(self.wall_atoms)
        return {
            "name": self.name,
            "n_particles": int(self.system.getNumParticles()),
            "n_ligand": len(self.ligand_atoms),
            "n_wall": len(self.wall_atoms),
            "n_lining": len(self.lining_atoms),
            "n_waters": n_water,
            "n_water_particles": int(self.system.getNumParticles())
            - len(self.ligand_atoms)
            - len(self.wall_atoms),
            "net_charge_e": float(np.sum(q)),
            "ligand_charge_e": float(np.sum(np.abs(q[list(self.ligand_atoms)]))),
            "n_charged_wall": int(np.count_nonzero(q[wall])),
            "wall_charges_e": sorted({float(c) for c in q[wall]}),
            "box_nm": np.diag(self.box_vectors).tolist(),
            "cutoff_nm": self.geometry["cutoff"],
            "switch_nm": self.geometry["switch"],
            "pocket_center_nm": self.pocket_center.tolist(),
            "geometry": dict(self.geometry),
        }


def _check_choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}. You supplied {value!r}")
    return value


def build_ligand_cavity(
    variant: str = "hydrophobic",
    ligand: str = "methane",
    size: str = "small",
    water_model: str = "tip4pew",
) -> LigandCavitySystem:
    """Build the ligand-cavity system (see the module docstring for every number).

    Parameters
    ----------
    variant : str
        "hydrophobic" (no charges on wall or ligand) or "hydrophilic" (polar pocket lining).
    ligand : str
        "methane" (one LJ site) or "c60" (60-site rigid cage).
    size : str
        "small" (CPU tests, demos) or "paper" (the published box).
    water_model : str
        "tip4pew" or "tip3p".

    Returns
    -------
    LigandCavitySystem
    """
    _check_choice(variant, "variant", VARIANTS)
    _check_choice(ligand, "ligand", LIGANDS)
    _check_choice(size, "size", SIZES)
    _check_choice(water_model, "water_model", WATER_MODELS)
    geo = GEOMETRIES[size]
    box = np.asarray(geo.box, dtype=np.float64)
    if not geo.cutoff < 0.5 * box.min():  # pragma: no cover - preset invariant
        raise ValueError(f"cutoff {geo.cutoff} nm must be < half the shortest box edge {box}")

    # wall and pocket
    n_layers = int(math.floor(geo.block[2] / HCP_LAYER_NM + 1e-9)) + 1
    span = (n_layers - 1) * HCP_LAYER_NM
    centre = box / 2.0
    z_top = centre[2] + span / 2.0
    lattice = hcp_lattice(
        (centre[0], centre[1]), (geo.block[0] / 2.0, geo.block[1] / 2.0), z_top, n_layers
    )
    depth_layers = int(round(geo.pocket_depth / HCP_LAYER_NM))
    pocket = Pocket.make(
        (centre[0], centre[1]),
        z_top,
        depth_layers * HCP_LAYER_NM,
        geo.mouth_radius,
        geo.floor_radius,
    )
    wall = lattice[~pocket.inside(lattice)]
    dist, _ = pocket_distance(wall, pocket)
    lining = dist <= LINING_THICKNESS_NM
    pocket_center = pocket.centroid()

    # ligand
    if ligand == "c60":
        lig_local = truncated_icosahedron()
        lig_sigma, lig_eps = C60_LJ
        lig_mass = CARBON_MASS_AMU
    else:
        lig_local = np.zeros((1, 3))
        lig_sigma, lig_eps = METHANE_LJ
        lig_mass = METHANE_MASS_AMU
    lig_start = np.array([centre[0], centre[1], pocket.z_floor + LIGAND_FLOOR_CLEARANCE_NM[ligand]])
    lig_xyz = lig_local + lig_start

    # water
    water = _water_model(water_model)
    mols = _place_waters(water, box, np.concatenate([lig_xyz, wall]))
    per = len(water.names)

    n_lig, n_wall, n_wat = len(lig_xyz), len(wall), len(mols)
    lig_idx = np.arange(n_lig)
    wall_idx = n_lig + np.arange(n_wall)
    water_start = n_lig + n_wall
    n_total = water_start + per * n_wat

    charges = np.zeros(n_total)
    if variant == "hydrophilic":
        for head, tail in _dipole_pairs(wall, lining, pocket):
            charges[n_lig + head] = -DIPOLE_CHARGE_E
            charges[n_lig + tail] = +DIPOLE_CHARGE_E
    charges[water_start:] = np.tile(water.charges, n_wat)

    # system
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*row) for row in np.diag(box)])
    for _ in range(n_lig):
        system.addParticle(lig_mass)
    for _ in range(n_wall):
        system.addParticle(0.0)
    for _ in range(n_wat):
        for m in water.masses:
            system.addParticle(m)
    for w in range(n_wat):
        base = water_start + per * w
        for i, j, d in water.constraints:
            system.addConstraint(base + i, base + j, d)
        for site, parents, weights in water.virtual_sites:
            system.setVirtualSite(
                base + site,
                openmm.ThreeParticleAverageSite(*(base + p for p in parents), *weights),
            )

    exclusions = [
        (base + i, base + j)
        for base in water_start + per * np.arange(n_wat)
        for i, j in water.exclusions
    ]
    if ligand == "c60":
        bonds = openmm.HarmonicBondForce()
        bonds.setName("C60 rigidity network")
        for kind, pairs in _c60_bonds(lig_local).items():
            for i, j, r0 in pairs:
                bonds.addBond(int(i), int(j), r0, C60_BOND_K[kind])
        system.addForce(bonds)
        exclusions += list(itertools.combinations(range(n_lig), 2))

    nb = openmm.NonbondedForce()
    nb.setName("charges and water-water LJ")
    nb.setNonbondedMethod(openmm.NonbondedForce.PME)
    nb.setCutoffDistance(geo.cutoff)
    nb.setUseSwitchingFunction(True)
    nb.setSwitchingDistance(geo.switch)
    nb.setEwaldErrorTolerance(EWALD_TOLERANCE)
    nb.setUseDispersionCorrection(True)
    custom = openmm.CustomNonbondedForce(
        "4*eps*((sig/r)^12-(sig/r)^6); sig=sqrt(sig1*sig2); eps=sqrt(eps1*eps2)"
    )
    custom.setName("ligand and wall LJ (geometric)")
    custom.addPerParticleParameter("sig")
    custom.addPerParticleParameter("eps")
    custom.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    custom.setCutoffDistance(geo.cutoff)
    custom.setUseSwitchingFunction(True)
    custom.setSwitchingDistance(geo.switch)
    custom.setUseLongRangeCorrection(False)
    for i in range(n_lig):
        nb.addParticle(charges[i], 1.0, 0.0)
        custom.addParticle([lig_sigma, lig_eps])
    for k in range(n_wall):
        nb.addParticle(charges[n_lig + k], 1.0, 0.0)
        custom.addParticle(list(LINING_LJ if lining[k] else WALL_LJ))
    water_lj = [(s if e > 0 else 1.0, e) for s, e in zip(water.sigmas, water.epsilons, strict=True)]
    for _ in range(n_wat):
        for q, (s, e) in zip(water.charges, water_lj, strict=True):
            nb.addParticle(q, s, e)
            custom.addParticle([s, e])
    for i, j in exclusions:
        nb.addException(int(i), int(j), 0.0, 1.0, 0.0)
        custom.addExclusion(int(i), int(j))
    oxygen_site = next(k for k, e in enumerate(water.epsilons) if e > 0)
    oxygens = water_start + per * np.arange(n_wat) + oxygen_site
    custom.addInteractionGroup(lig_idx.tolist(), oxygens.tolist())
    custom.addInteractionGroup(lig_idx.tolist(), wall_idx.tolist())
    custom.addInteractionGroup(oxygens.tolist(), wall_idx.tolist())
    system.addForce(nb)
    system.addForce(custom)

    # topology
    top = app.Topology()
    top.setPeriodicBoxVectors([openmm.Vec3(*row) for row in np.diag(box)] * u.nanometer)
    carbon = app.element.carbon
    res = top.addResidue("LIG", top.addChain("L"))
    lig_atoms = [top.addAtom(f"C{i + 1}" if n_lig > 1 else "C", carbon, res) for i in range(n_lig)]
    if ligand == "c60":
        for i, j, _ in _c60_bonds(lig_local)["edge"]:
            top.addBond(lig_atoms[i], lig_atoms[j])
    chain = top.addChain("W")
    for k in range(n_wall):
        top.addAtom("WL" if lining[k] else "W", None, top.addResidue("WAL", chain))
    chain = top.addChain("S")
    for _ in range(n_wat):
        res = top.addResidue("HOH", chain)
        atoms = [top.addAtom(n, e, res) for n, e in zip(water.names, water.elements, strict=True)]
        for a in atoms[1:]:
            if a.element is not None and a.element.symbol == "H":
                top.addBond(atoms[0], a)

    positions = np.concatenate([lig_xyz, wall, mols.reshape(-1, 3)])
    lengths = tuple(float(x) for x in box)
    lig_list = lig_idx.tolist()
    features: list[Feature] = [
        CylindricalPosition(lig_list, pocket_center, "z", lengths, name="z"),
        CylindricalPosition(lig_list, pocket_center, "rho", lengths, name="rho"),
        CylinderCount(
            oxygens.tolist(),
            pocket_center,
            radius=pocket.sphere_radius,
            z_min=pocket.z_floor - N_W_BELOW_FLOOR_NM - pocket_center[2],
            z_max=pocket.z_top - pocket_center[2],
            width=N_W_WIDTH_NM,
            box_lengths=lengths,
            name="n_w",
        ),
    ]
    geometry = {
        "box": lengths,
        "block": tuple(geo.block),
        "n_layers": n_layers,
        "pocket_layers": depth_layers,
        "z_top": float(pocket.z_top),
        "z_floor": float(pocket.z_floor),
        "pocket_depth": float(pocket.z_top - pocket.z_floor),
        "mouth_radius": pocket.mouth_radius,
        "floor_radius": pocket.floor_radius,
        "sphere_radius": pocket.sphere_radius,
        "sphere_z": float(pocket.sphere_z),
        "cutoff": geo.cutoff,
        "switch": geo.switch,
        "water_model": water_model,
    }
    return LigandCavitySystem(
        system=system,
        topology=top,
        positions=positions,
        box_vectors=np.diag(box),
        features=features,
        ligand_atoms=tuple(lig_list),
        wall_atoms=tuple(wall_idx.tolist()),
        lining_atoms=tuple((wall_idx[lining]).tolist()),
        water_oxygens=tuple(oxygens.tolist()),
        pocket_center=pocket_center,
        name=f"ligand_cavity/{variant}/{ligand}/{size}",
        geometry=geometry,
        charges=charges,
    )


# --------------------------------------------------------------------------------------------
# preparation
# --------------------------------------------------------------------------------------------
def prepare_ligand_cavity(
    lc: LigandCavitySystem,
    temperature: float | u.Quantity = 300.0,
    platform: str = "auto",
    seed: int = 0,
    steps: int = 5000,
    max_minimize_iterations: int = 1000,
) -> dict[str, np.ndarray]:
    """Minimise, then equilibrate at constant volume with the ligand held in the pocket.

    A harmonic restraint (``PREPARE_RESTRAINT_K`` kJ/mol/nm^2) holds the ligand centroid at its
    start position during minimisation and equilibration, and is gone afterwards (it is added
    to a copy of the system). Equilibration: ``steps`` steps of LangevinMiddleIntegrator,
    ``lc.timestep_ps`` (2 fs), friction ``PREPARE_FRICTION_PER_PS`` (10/ps, to thermalise the
    minimised structure within ~0.1 ps; production uses ``lc.friction_per_ps``).

    Parameters
    ----------
    lc : LigandCavitySystem
        The system to prepare.
    temperature : float or Quantity
        K.
    platform : str
        "auto" (as rave.md.walker), "Reference", "CPU", "CUDA" or "OpenCL".
    seed : int
        Seeds the velocities and the integrator.
    steps : int
        Equilibration steps (>= 0).
    max_minimize_iterations : int
        Cap on L-BFGS iterations (0: until converged).

    Returns
    -------
    dict
        ``positions`` (n, 3) nm, ``velocities`` (n, 3) nm/ps, ``box_vectors`` (3, 3) nm.

    Raises
    ------
    RuntimeError
        If positions or velocities become non-finite.
    """
    from rave.md.walker import choose_platform

    temperature_K = (
        temperature.value_in_unit(u.kelvin) if u.is_quantity(temperature) else float(temperature)
    )
    if not (math.isfinite(temperature_K) and temperature_K > 0):
        raise ValueError(f"temperature must be > 0 K. You supplied {temperature!r}")
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0. You supplied {steps!r}")
    system = openmm.XmlSerializer.clone(lc.system)
    restraint = openmm.CustomCentroidBondForce(1, "0.5*k_restraint*((x1-x0)^2+(y1-y0)^2+(z1-z0)^2)")
    restraint.addGlobalParameter("k_restraint", PREPARE_RESTRAINT_K)
    for name in ("x0", "y0", "z0"):
        restraint.addPerBondParameter(name)
    restraint.addGroup(list(lc.ligand_atoms), [1.0] * len(lc.ligand_atoms))
    start = np.asarray(lc.positions)[list(lc.ligand_atoms)].mean(axis=0)
    restraint.addBond([0], start.tolist())
    system.addForce(restraint)
    integrator = openmm.LangevinMiddleIntegrator(
        temperature_K, PREPARE_FRICTION_PER_PS, lc.timestep_ps
    )
    integrator.setRandomNumberSeed(int(seed) % 2**31)
    context = openmm.Context(
        system, integrator, choose_platform(platform, system.getNumParticles())
    )
    context.setPeriodicBoxVectors(*[openmm.Vec3(*row) for row in lc.box_vectors])
    context.setPositions(np.asarray(lc.positions))
    openmm.LocalEnergyMinimizer.minimize(context, 10.0, int(max_minimize_iterations))
    context.setVelocitiesToTemperature(temperature_K, int(seed) % 2**31)
    if steps:
        integrator.step(int(steps))
    state = context.getState(getPositions=True, getVelocities=True)
    out = {
        "positions": np.array(state.getPositions(asNumpy=True).value_in_unit(u.nanometer)),
        "velocities": np.array(
            state.getVelocities(asNumpy=True).value_in_unit(u.nanometer / u.picosecond)
        ),
        "box_vectors": np.array(
            state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(u.nanometer)
        ),
    }
    if not (np.all(np.isfinite(out["positions"])) and np.all(np.isfinite(out["velocities"]))):
        raise RuntimeError(
            f"prepare_ligand_cavity: non-finite positions or velocities after {steps} steps "
            f"of {lc.name}; try more minimisation iterations or a smaller time step"
        )
    return out


# --------------------------------------------------------------------------------------------
# [system] kind = "ligand_cavity"
# --------------------------------------------------------------------------------------------
#: allowed values of the [system] keys of this kind; the first is the default
CONFIG_CHOICES = {
    "variant": ("hydrophobic", "hydrophilic"),
    "ligand": ("methane", "c60"),
    "size": ("small", "paper"),
}
#: defaults of [system] prepare_steps (NVT steps, 10 ps) and minimize_iterations
CONFIG_DEFAULTS = {"prepare_steps": 5000, "minimize_iterations": 200}


def _check_config(system: SystemConfig) -> dict[str, Any]:
    filled: dict[str, Any] = {}
    for key, default in CONFIG_DEFAULTS.items():
        value = getattr(system, key)
        if value is None:
            value = filled[key] = default
        if value < 0:
            raise ConfigError(f"system.{key} must be >= 0. You supplied {value}")
    for key, choices in CONFIG_CHOICES.items():
        value = getattr(system, key)
        if value is None:
            filled[key] = choices[0]
        elif value not in choices:
            raise ConfigError(f"system.{key} must be one of {', '.join(map(repr, choices))}. "
                              f"You supplied {value!r}")
    return filled


def _build(config: Config) -> SimulationSystem:
    s = config.system
    try:
        built = build_ligand_cavity(variant=s.variant, ligand=s.ligand, size=s.size)
    except ValueError as error:
        raise ConfigError(f"[system] ligand_cavity: {error}") from error

    def prepare(temperature_K: float, platform: str, seed: int) -> dict:
        return prepare_ligand_cavity(
            built, temperature=temperature_K, platform=platform, seed=seed,
            steps=s.prepare_steps, max_minimize_iterations=s.minimize_iterations)

    return SimulationSystem(
        name=built.name, system=built.system, positions=np.asarray(built.positions, float),
        features=list(built.features), timestep_ps=built.timestep_ps,
        friction_per_ps=built.friction_per_ps, box_vectors=np.asarray(built.box_vectors, float),
        prepare=prepare,
    )


#: the [system] kind of this module (rave.systems.registry loads it by name)
SYSTEM_KINDS = (
    SystemKind("ligand_cavity", _build,
               keys=("variant", "ligand", "size", "prepare_steps", "minimize_iterations"),
               check=_check_config),
)
