"""Tests for rave.systems.ligand_cavity: construction, geometry, dynamics, features, bias."""

from __future__ import annotations

import functools
import itertools
import json
import math

import numpy as np
import openmm
import pytest
from openmm import unit as u
from scipy.spatial import cKDTree

from rave.learn.bias import Bias, BiasGrid
from rave.md.features import evaluate_features
from rave.md.walker import Walker
from rave.systems.ligand_cavity import (
    C60_BOND_K,
    C60_BOND_NM,
    C60_LJ,
    CARBON_MASS_AMU,
    DIPOLE_CHARGE_E,
    GEOMETRIES,
    HCP_LAYER_NM,
    HCP_NEIGHBOUR_NM,
    LIGAND_FLOOR_CLEARANCE_NM,
    LIGANDS,
    LINING_LJ,
    LINING_THICKNESS_NM,
    METHANE_LJ,
    METHANE_MASS_AMU,
    PARTICLE_COUNTS,
    SIZES,
    VARIANTS,
    WALL_LJ,
    WATER_EXCLUSION_NM,
    _c60_bonds,
    _water_model,
    build_ligand_cavity,
    pocket_distance,
    prepare_ligand_cavity,
    truncated_icosahedron,
)
from rave.units import GAS_CONSTANT_KJ_PER_MOL_K

# Geometry computed in float64 from exact constructions, nm.
GEOM_TOL_NM = 1e-9
# Numpy order parameters vs OpenMM CV energies on the same positions (nm or count).
FACE_TOL = 1e-5
# Bias energy read from OpenMM's bias force group vs Bias.energy of the recorded features;
# kJ/mol. The CPU platform evaluates the CVs in double precision.
BIAS_TOL_KJMOL = 1e-6
# Brute-force pocket distance samples the pocket surface every ~2.5e-3 nm: error <= ~2e-3 nm.
BRUTE_FORCE_TOL_NM = 3e-3
# Charges are sums of floats like 0.52422: exact to round-off, e.
CHARGE_TOL_E = 1e-9

# Dynamics run: minimiser iterations (each one costs several force evaluations of a
# 5300-particle system on 2 CPU cores) and equilibration steps (2 fs, friction 10/ps).
PREPARE_ITERATIONS = 10
PREPARE_STEPS = 250
TEMPERATURE_K = 300.0

ALL_BUILDS = list(itertools.product(VARIANTS, LIGANDS, SIZES))


@functools.cache
def built(variant: str, ligand: str, size: str, water_model: str = "tip4pew"):
    return build_ligand_cavity(variant, ligand, size, water_model)


def _nonbonded(lc):
    forces = lc.system.getForces()
    nb = [f for f in forces if isinstance(f, openmm.NonbondedForce)]
    custom = [f for f in forces if isinstance(f, openmm.CustomNonbondedForce)]
    assert len(nb) == 1 and len(custom) == 1
    return nb[0], custom[0]


def _masses(lc) -> np.ndarray:
    s = lc.system
    return np.array(
        [s.getParticleMass(i).value_in_unit(u.dalton) for i in range(s.getNumParticles())]
    )


# --------------------------------------------------------------------------------------------
# construction
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("variant", "ligand", "size"), ALL_BUILDS)
def test_particle_counts_are_as_documented(variant: str, ligand: str, size: str) -> None:
    lc = built(variant, ligand, size)
    d = lc.describe()
    doc = PARTICLE_COUNTS[(size, ligand, "tip4pew")]
    assert d["name"] == f"ligand_cavity/{variant}/{ligand}/{size}"
    json.dumps(d)  # JSON-able: raises TypeError otherwise
    assert (d["n_particles"], d["n_wall"], d["n_lining"], d["n_waters"]) == (
        doc["n_particles"],
        doc["n_wall"],
        doc["n_lining"],
        doc["n_waters"],
    )
    n_lig = 60 if ligand == "c60" else 1
    assert d["n_ligand"] == n_lig == len(lc.ligand_atoms)
    assert d["n_particles"] == n_lig + d["n_wall"] + 4 * d["n_waters"]
    assert lc.topology.getNumAtoms() == lc.system.getNumParticles() == len(lc.positions)
    assert len(lc.water_oxygens) == d["n_waters"]
    assert set(lc.lining_atoms) <= set(lc.wall_atoms)
    assert [a.name for a in lc.topology.atoms() if a.index in lc.water_oxygens][:1] == ["O"]
    np.testing.assert_array_equal(lc.box_vectors, np.diag(GEOMETRIES[size].box))


@pytest.mark.parametrize("ligand", LIGANDS)
def test_tip3p_builds_with_three_sites_per_water(ligand: str) -> None:
    lc = built("hydrophobic", ligand, "small", "tip3p")
    d = lc.describe()
    doc = PARTICLE_COUNTS[("small", ligand, "tip3p")]
    assert (d["n_particles"], d["n_waters"]) == (doc["n_particles"], doc["n_waters"])
    assert d["n_particles"] == len(lc.ligand_atoms) + d["n_wall"] + 3 * d["n_waters"]
    assert abs(d["net_charge_e"]) < CHARGE_TOL_E
    assert lc.system.getNumConstraints() == 3 * d["n_waters"]


@pytest.mark.parametrize(("variant", "ligand", "size"), ALL_BUILDS)
def test_charges_are_as_documented_and_net_zero(variant: str, ligand: str, size: str) -> None:
    lc = built(variant, ligand, size)
    nb, _ = _nonbonded(lc)
    q = np.array(
        [
            nb.getParticleParameters(i)[0].value_in_unit(u.elementary_charge)
            for i in range(nb.getNumParticles())
        ]
    )
    np.testing.assert_array_equal(q, lc.charges)
    assert abs(q.sum()) < CHARGE_TOL_E
    assert np.all(q[list(lc.ligand_atoms)] == 0)
    water = _water_model("tip4pew")
    first = len(lc.ligand_atoms) + len(lc.wall_atoms)
    np.testing.assert_array_equal(
        q[first:].reshape(-1, 4), np.tile(water.charges, (len(lc.water_oxygens), 1))
    )
    wall_q = q[list(lc.wall_atoms)]
    n_dipoles = PARTICLE_COUNTS[(size, ligand, "tip4pew")]["n_dipoles"]
    if variant == "hydrophobic":
        assert np.all(wall_q == 0)
        return
    assert set(np.unique(wall_q)) == {-DIPOLE_CHARGE_E, 0.0, DIPOLE_CHARGE_E}
    assert np.sum(wall_q < 0) == np.sum(wall_q > 0) == n_dipoles
    heads = np.asarray(lc.wall_atoms)[wall_q < 0]
    assert set(heads.tolist()) <= set(lc.lining_atoms)  # negative ends line the pocket
    # each head has its +q partner behind it: a nearest neighbour, or a second one (a sqrt 2)
    pos = lc.positions
    tails = np.asarray(lc.wall_atoms)[wall_q > 0]
    d = np.linalg.norm(pos[heads][:, None] - pos[tails][None], axis=-1).min(axis=1)
    assert np.all(d < HCP_NEIGHBOUR_NM * math.sqrt(2) + GEOM_TOL_NM)


@pytest.mark.parametrize(("variant", "ligand", "size"), ALL_BUILDS)
def test_wall_is_frozen_and_mobile_particles_have_their_masses(variant, ligand, size) -> None:
    lc = built(variant, ligand, size)
    m = _masses(lc)
    assert np.all(m[list(lc.wall_atoms)] == 0)
    lig_mass = CARBON_MASS_AMU if ligand == "c60" else METHANE_MASS_AMU
    assert np.all(m[list(lc.ligand_atoms)] == lig_mass)
    assert np.allclose(m[list(lc.water_oxygens)], 15.99943)
    n_virtual = sum(lc.system.isVirtualSite(i) for i in range(lc.system.getNumParticles()))
    assert n_virtual == len(lc.water_oxygens)  # the M sites of TIP4P-Ew
    assert not any(isinstance(f, openmm.CMMotionRemover) for f in lc.system.getForces())


@pytest.mark.parametrize(("variant", "ligand", "size"), ALL_BUILDS)
def test_both_nonbonded_forces_have_identical_exclusions(variant, ligand, size) -> None:
    lc = built(variant, ligand, size)
    nb, custom = _nonbonded(lc)
    exceptions = set()
    for k in range(nb.getNumExceptions()):
        i, j, qq, _, eps = nb.getExceptionParameters(k)
        assert qq._value == 0 and eps._value == 0
        exceptions.add((min(i, j), max(i, j)))
    exclusions = {
        tuple(sorted(custom.getExclusionParticles(k))) for k in range(custom.getNumExclusions())
    }
    assert exceptions == exclusions
    assert nb.getNumExceptions() == custom.getNumExclusions() == len(exclusions)
    n_lig = len(lc.ligand_atoms)
    assert len(exclusions) == 6 * len(lc.water_oxygens) + n_lig * (n_lig - 1) // 2


@pytest.mark.parametrize(("variant", "ligand", "size"), ALL_BUILDS)
def test_no_wall_wall_pairs_in_any_interaction_group(variant, ligand, size) -> None:
    lc = built(variant, ligand, size)
    _, custom = _nonbonded(lc)
    wall = set(lc.wall_atoms)
    groups = []
    for k in range(custom.getNumInteractionGroups()):
        a, b = (set(s) for s in custom.getInteractionGroupParameters(k))
        assert not (a & wall and b & wall), f"group {k} pairs wall sites with wall sites"
        groups.append((frozenset(a), frozenset(b)))
    lig, oxy = frozenset(lc.ligand_atoms), frozenset(lc.water_oxygens)
    assert set(groups) == {(lig, oxy), (lig, frozenset(wall)), (oxy, frozenset(wall))}


@pytest.mark.parametrize(("variant", "ligand"), itertools.product(VARIANTS, LIGANDS))
def test_lj_parameters_and_geometric_combining_rule(variant: str, ligand: str) -> None:
    lc = built(variant, ligand, "small")
    nb, custom = _nonbonded(lc)
    lig_lj = C60_LJ if ligand == "c60" else METHANE_LJ
    lining = set(lc.lining_atoms)
    for i in lc.ligand_atoms[:3] + lc.wall_atoms[::97]:
        assert nb.getParticleParameters(i)[2]._value == 0  # LJ only in the custom force
        expected = lig_lj if i in lc.ligand_atoms else (LINING_LJ if i in lining else WALL_LJ)
        assert tuple(custom.getParticleParameters(i)) == expected
    # the pair energy of a ligand site and a lining site, from a copy of the custom force
    pair = openmm.CustomNonbondedForce(custom.getEnergyFunction())
    for k in range(custom.getNumPerParticleParameters()):
        pair.addPerParticleParameter(custom.getPerParticleParameterName(k))
    lining_site = lc.lining_atoms[0]
    pair.addParticle(custom.getParticleParameters(lc.ligand_atoms[0]))
    pair.addParticle(custom.getParticleParameters(lining_site))
    system = openmm.System()
    system.addParticle(1.0)
    system.addParticle(1.0)
    system.addForce(pair)
    context = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    sig, eps = math.sqrt(lig_lj[0] * LINING_LJ[0]), math.sqrt(lig_lj[1] * LINING_LJ[1])
    for r in (0.35, 0.42, 0.8):
        context.setPositions([[0, 0, 0], [r, 0, 0]])
        e = context.getState(getEnergy=True).getPotentialEnergy()._value
        assert e == pytest.approx(4 * eps * ((sig / r) ** 12 - (sig / r) ** 6), rel=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_cutoffs_fit_the_box_and_agree_between_forces(size: str) -> None:
    lc = built("hydrophobic", "methane", size)
    nb, custom = _nonbonded(lc)
    assert nb.getNonbondedMethod() == openmm.NonbondedForce.PME
    assert custom.getNonbondedMethod() == openmm.CustomNonbondedForce.CutoffPeriodic
    for f in (nb, custom):
        assert f.getCutoffDistance()._value == 1.2 and f.getSwitchingDistance()._value == 1.14
        assert f.getUseSwitchingFunction()
    assert 1.2 < 0.5 * np.min(np.diag(lc.box_vectors))
    box = np.array([v.value_in_unit(u.nanometer) for v in lc.system.getDefaultPeriodicBoxVectors()])
    np.testing.assert_array_equal(box, lc.box_vectors)


def test_paper_system_is_accepted_by_openmm_and_has_a_finite_energy() -> None:
    lc = built("hydrophilic", "c60", "paper")  # built, not simulated: one energy evaluation
    context = openmm.Context(
        lc.system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU")
    )
    context.setPositions(lc.positions)
    energy = (
        context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(u.kilojoule_per_mole)
    )
    assert math.isfinite(energy)


# --------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_wall_is_an_hcp_lattice_with_12_neighbours_inside(size: str) -> None:
    lc = built("hydrophobic", "methane", size)
    wall = lc.positions[list(lc.wall_atoms)]
    tree = cKDTree(wall)
    d, _ = tree.query(wall, k=2)
    np.testing.assert_allclose(d[:, 1], HCP_NEIGHBOUR_NM, atol=GEOM_TOL_NM)
    layers = np.unique(np.round(wall[:, 2], 9))
    np.testing.assert_allclose(np.diff(layers), HCP_LAYER_NM, atol=GEOM_TOL_NM)
    assert len(layers) == lc.geometry["n_layers"]
    counts = np.array([len(n) for n in tree.query_ball_point(wall, HCP_NEIGHBOUR_NM + 1e-6)]) - 1
    # sites at least one spacing inside the block and away from the pocket have 12 neighbours
    lo, hi = wall.min(axis=0) + 0.13, wall.max(axis=0) - 0.13
    dist, _ = pocket_distance(wall, lc.pocket())
    interior = np.all((wall > lo) & (wall < hi), axis=1) & (dist > 0.13)
    assert interior.sum() > 100
    assert np.all(counts[interior] == 12)
    assert np.all(counts <= 12)
    # block extent and centring
    span = wall.max(axis=0) - wall.min(axis=0)
    block = GEOMETRIES[size].block
    assert np.all(span[:2] <= np.asarray(block[:2]) + GEOM_TOL_NM)
    assert np.all(span[:2] > np.asarray(block[:2]) - 2 * HCP_NEIGHBOUR_NM)
    centre = 0.5 * (wall.max(axis=0) + wall.min(axis=0))
    np.testing.assert_allclose(centre[2], lc.box_vectors[2, 2] / 2, atol=GEOM_TOL_NM)


@pytest.mark.parametrize("size", SIZES)
def test_pocket_is_the_documented_bowl(size: str) -> None:
    lc = built("hydrophobic", "methane", size)
    geo, g, pocket = GEOMETRIES[size], lc.geometry, lc.pocket()
    # depth rounded to whole layers; the sphere passes through both rims
    assert abs(g["pocket_depth"] - geo.pocket_depth) <= HCP_LAYER_NM / 2
    assert g["pocket_depth"] / HCP_LAYER_NM == pytest.approx(
        round(g["pocket_depth"] / HCP_LAYER_NM)
    )
    for z, r in ((g["z_floor"], geo.floor_radius), (g["z_top"], geo.mouth_radius)):
        assert math.hypot(r, z - g["sphere_z"]) == pytest.approx(
            g["sphere_radius"], abs=GEOM_TOL_NM
        )
    wall = lc.positions[list(lc.wall_atoms)]
    assert not np.any(pocket.inside(wall))
    assert np.max(wall[:, 2]) == pytest.approx(g["z_top"], abs=GEOM_TOL_NM)
    # pocket_center on the axis, inside the pocket, at the centroid of a dense sample of it
    c = lc.pocket_center
    np.testing.assert_allclose(c[:2], np.diag(lc.box_vectors)[:2] / 2, atol=GEOM_TOL_NM)
    h = 0.02  # cell centres of a grid over the pocket's bounding box
    grid = np.mgrid[-1.1:1.1:h, -1.1:1.1:h, g["z_floor"] : g["z_top"] : h].reshape(3, -1).T + h / 2
    grid[:, :2] += c[:2]
    grid = grid[pocket.inside(grid)]
    assert abs(grid[:, 2].mean() - c[2]) < 0.01


def test_pocket_distance_matches_brute_force_sampling_of_the_surface() -> None:
    pocket = built("hydrophobic", "methane", "paper").pocket()
    # the surface: sphere band between floor and top, plus the floor disk
    zs, radius = pocket.sphere_z, pocket.sphere_radius
    theta = np.linspace(0, 2 * np.pi, 2500, endpoint=False)
    z = np.linspace(pocket.z_floor, pocket.z_top, 400)
    tt, zz = np.meshgrid(theta, z)
    rr = np.sqrt(radius**2 - (zz - zs) ** 2)
    band = np.stack([rr * np.cos(tt), rr * np.sin(tt), zz], axis=-1).reshape(-1, 3)
    rho = np.linspace(0, pocket.floor_radius, 300)
    tt, rr = np.meshgrid(theta, rho)
    disk = np.stack([rr * np.cos(tt), rr * np.sin(tt), np.full_like(rr, pocket.z_floor)], axis=-1)
    surface = np.concatenate([band, disk.reshape(-1, 3)])
    surface[:, :2] += np.asarray(pocket.axis_xy)
    rng = np.random.default_rng(0)
    points = np.asarray(pocket.axis_xy + (pocket.z_floor,)) + rng.uniform(
        [-1.5, -1.5, -0.8], [1.5, 1.5, 0.8], size=(400, 3)
    )
    points = points[~pocket.inside(points) & (points[:, 2] <= pocket.z_top)]
    dist, closest = pocket_distance(points, pocket)
    brute, _ = cKDTree(surface).query(points)
    np.testing.assert_allclose(dist, brute, atol=BRUTE_FORCE_TOL_NM)
    np.testing.assert_allclose(np.linalg.norm(points - closest, axis=1), dist, atol=GEOM_TOL_NM)


@pytest.mark.parametrize("size", SIZES)
def test_lining_is_the_wall_shell_around_the_pocket(size: str) -> None:
    lc = built("hydrophobic", "methane", size)
    wall = lc.positions[list(lc.wall_atoms)]
    dist, _ = pocket_distance(wall, lc.pocket())
    lining = np.isin(lc.wall_atoms, lc.lining_atoms)
    np.testing.assert_array_equal(lining, dist <= LINING_THICKNESS_NM)
    names = np.array([a.name for a in lc.topology.atoms()])[list(lc.wall_atoms)]
    np.testing.assert_array_equal(names == "WL", lining)
    # every wall site next to the pocket (first layer) is lining
    assert np.all(lining[dist < HCP_NEIGHBOUR_NM])


@pytest.mark.parametrize(("ligand", "size"), itertools.product(LIGANDS, SIZES))
def test_water_is_clear_of_wall_and_ligand_and_fills_the_pocket(ligand: str, size: str) -> None:
    lc = built("hydrophobic", ligand, size)
    box = np.diag(lc.box_vectors)
    oxygens = lc.positions[list(lc.water_oxygens)]
    solute = lc.positions[list(lc.ligand_atoms) + list(lc.wall_atoms)]
    d, _ = cKDTree(np.mod(solute, box), boxsize=box).query(np.mod(oxygens, box))
    assert d.min() >= WATER_EXCLUSION_NM
    # the pocket starts full: n_w ~ bulk density x the pocket volume open to water oxygens
    pocket = lc.pocket()
    h = 0.02
    grid = (
        np.mgrid[-1.1:1.1:h, -1.1:1.1:h, pocket.z_floor : pocket.z_top : h].reshape(3, -1).T + h / 2
    )
    grid[:, :2] += np.asarray(pocket.axis_xy)
    grid = grid[pocket.inside(grid)]
    free = cKDTree(solute).query(grid)[0] >= WATER_EXCLUSION_NM
    water = _water_model("tip4pew")
    density = len(water.template_positions) / np.prod(water.template_box)  # per nm^3
    expected = free.sum() * h**3 * density
    n_w = lc.features[2].evaluate(lc.positions, lc.box_vectors)[0]
    # Poisson-like fluctuation of a count of ~expected molecules, plus 2 for the mouth plane
    assert abs(n_w - expected) <= 3 * math.sqrt(expected) + 2, (n_w, expected)
    if ligand == "methane":
        assert n_w > 5


def test_c60_is_a_rigid_truncated_icosahedron() -> None:
    xyz = truncated_icosahedron()
    bonds = _c60_bonds(xyz)
    assert {k: len(v) for k, v in bonds.items()} == {"edge": 90, "second": 180, "antipodal": 30}
    np.testing.assert_allclose([r for *_, r in bonds["edge"]], C60_BOND_NM, atol=GEOM_TOL_NM)
    np.testing.assert_allclose(np.linalg.norm(xyz, axis=1), 0.3489, atol=1e-4)
    degree = np.bincount(np.array([(i, j) for i, j, _ in bonds["edge"]]).ravel())
    assert np.all(degree == 3)
    # mass-weighted Hessian of the bond network: exactly six zero modes (rigid body)
    hessian = np.zeros((180, 180))
    for kind, pairs in bonds.items():
        for i, j, _ in pairs:
            e = (xyz[j] - xyz[i]) / np.linalg.norm(xyz[j] - xyz[i])
            block = C60_BOND_K[kind] * np.outer(e, e)
            for a, b, sign in ((i, i, 1), (j, j, 1), (i, j, -1), (j, i, -1)):
                hessian[3 * a : 3 * a + 3, 3 * b : 3 * b + 3] += sign * block
    omega2 = np.linalg.eigvalsh(hessian / CARBON_MASS_AMU)  # 1/ps^2
    assert np.all(np.abs(omega2[:6]) < 1e-6 * omega2[-1]) and omega2[6] > 100.0
    period_ps = 2 * np.pi / np.sqrt(omega2[-1])
    assert period_ps > 10 * 0.002  # the fastest vibration spans > 10 steps of 2 fs
    lc = built("hydrophobic", "c60", "small")
    bond_forces = [f for f in lc.system.getForces() if isinstance(f, openmm.HarmonicBondForce)]
    assert len(bond_forces) == 1 and bond_forces[0].getNumBonds() == 300


@pytest.mark.parametrize(("ligand", "size"), itertools.product(LIGANDS, SIZES))
def test_features_are_z_rho_n_w_about_the_pocket_center(ligand: str, size: str) -> None:
    lc = built("hydrophobic", ligand, size)
    assert [f.name for f in lc.features] == ["z", "rho", "n_w"]
    for f in lc.features:
        np.testing.assert_array_equal(f.origin, lc.pocket_center)
        assert f.box_lengths == tuple(np.diag(lc.box_vectors))
    assert lc.features[2].atoms == lc.water_oxygens
    z, rho, _ = evaluate_features(lc.features, lc.positions, lc.box_vectors)[0]
    expected_z = lc.geometry["z_floor"] + LIGAND_FLOOR_CLEARANCE_NM[ligand] - lc.pocket_center[2]
    assert z == pytest.approx(expected_z, abs=GEOM_TOL_NM)
    assert rho == pytest.approx(1e-6, abs=GEOM_TOL_NM)
    assert lc.is_bound(z, rho)
    assert not lc.is_bound(z + 1.5, rho) and not lc.is_bound(z, lc.geometry["mouth_radius"] + 0.1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"variant": "polar"},
            r"variant must be one of \['hydrophobic', 'hydrophilic'\]. You supplied 'polar'",
        ),
        ({"ligand": "benzene"}, r"ligand must be one of \['methane', 'c60'\]"),
        ({"size": "large"}, r"size must be one of \['small', 'paper'\]"),
        ({"water_model": "spce"}, r"water_model must be one of \['tip4pew', 'tip3p'\]"),
    ],
)
def test_invalid_choices_are_rejected(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        build_ligand_cavity(**kwargs)


def test_prepare_rejects_bad_arguments() -> None:
    lc = built("hydrophobic", "methane", "small")
    with pytest.raises(ValueError, match=r"steps must be an integer >= 0. You supplied -1"):
        prepare_ligand_cavity(lc, steps=-1)
    with pytest.raises(ValueError, match=r"temperature must be > 0 K"):
        prepare_ligand_cavity(lc, temperature=0.0)


# --------------------------------------------------------------------------------------------
# dynamics (small, CPU platform)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def prepared():
    lc = built("hydrophilic", "c60", "small")
    state = prepare_ligand_cavity(
        lc,
        temperature=TEMPERATURE_K,
        platform="CPU",
        seed=1,
        steps=PREPARE_STEPS,
        max_minimize_iterations=PREPARE_ITERATIONS,
    )
    return lc, state


def test_prepared_state_is_finite_and_the_wall_did_not_move(prepared) -> None:
    lc, state = prepared
    assert set(state) == {"positions", "velocities", "box_vectors"}
    for key in state:
        assert np.all(np.isfinite(state[key]))
    wall = list(lc.wall_atoms)
    np.testing.assert_array_equal(state["positions"][wall], lc.positions[wall])  # exactly
    assert np.all(state["velocities"][wall] == 0)
    np.testing.assert_array_equal(state["box_vectors"], lc.box_vectors)


def test_mobile_particles_are_at_the_temperature(prepared) -> None:
    lc, state = prepared
    m = _masses(lc)
    v = state["velocities"]
    n_dof = 3 * np.count_nonzero(m) - lc.system.getNumConstraints()  # no CM motion removal
    temperature = np.sum(m[:, None] * v**2) / (n_dof * GAS_CONSTANT_KJ_PER_MOL_K)
    # one snapshot: relative std sqrt(2/n_dof) (~7 K here); 4 sigma, plus 10 K for heat still
    # flowing out of the minimised structure (the friction is 10/ps during preparation)
    sigma = TEMPERATURE_K * math.sqrt(2.0 / n_dof)
    print(f"T = {temperature:.1f} K, expected {TEMPERATURE_K} +- {sigma:.1f} K")
    assert abs(temperature - TEMPERATURE_K) < 4 * sigma + 10.0


def test_ligand_is_still_bound_after_preparation(prepared) -> None:
    lc, state = prepared
    z, rho, n_w = evaluate_features(lc.features, state["positions"], state["box_vectors"])[0]
    print(f"z = {z:.3f} nm, rho = {rho:.3f} nm, n_w = {n_w:.2f}")
    assert lc.is_bound(z, rho)
    # the C60 stays whole: every edge within 5 thermal standard deviations of its rest length
    # (sqrt(kT / k_edge) = 0.0035 nm bounds the std: the rest of the network only stiffens it)
    lig = state["positions"][list(lc.ligand_atoms)]
    edges = np.array([(i, j) for i, j, _ in _c60_bonds(truncated_icosahedron())["edge"]])
    lengths = np.linalg.norm(lig[edges[:, 0]] - lig[edges[:, 1]], axis=1)
    kT = GAS_CONSTANT_KJ_PER_MOL_K * TEMPERATURE_K
    assert np.all(np.abs(lengths - C60_BOND_NM) < 5 * math.sqrt(kT / C60_BOND_K["edge"]))


def _feature_energies(lc, frames: list[np.ndarray]) -> np.ndarray:
    """OpenMM energies of the three feature forces (Reference platform), one group each."""
    system = openmm.System()
    for m in _masses(lc):
        system.addParticle(m + 1.0)  # unequal, non-zero: centroids must not depend on masses
    for g, f in enumerate(lc.features):
        force = f.openmm_force()
        force.setForceGroup(g)
        system.addForce(force)
    system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*row) for row in lc.box_vectors])
    context = openmm.Context(
        system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    out = []
    for x in frames:
        context.setPositions(x)
        out.append(
            [
                context.getState(getEnergy=True, groups={g}).getPotentialEnergy()._value
                for g in range(3)
            ]
        )
    return np.array(out)


def test_order_parameters_equal_openmm_values_including_across_the_boundary(prepared) -> None:
    lc, state = prepared
    x0 = state["positions"]
    lig = list(lc.ligand_atoms)
    box = np.diag(lc.box_vectors)
    image = x0.copy()
    image[lig] += lc.box_vectors[0] - 2 * lc.box_vectors[2]  # another image of the ligand
    rng = np.random.default_rng(5)
    oxy = list(lc.water_oxygens)
    image[oxy] += rng.integers(-1, 2, size=(len(oxy), 3)) * box  # and of the oxygens
    straddle = x0.copy()  # the cage straddles the x = 0 and y = L_y faces
    centroid = x0[lig].mean(axis=0)
    straddle[lig] += np.array([0.01, box[1] - 0.02, 0.3]) - np.array(
        [centroid[0], centroid[1], 0.0]
    )
    frames = [x0, image, straddle]
    expected = evaluate_features(lc.features, np.array(frames), lc.box_vectors)
    got = _feature_energies(lc, frames)
    np.testing.assert_allclose(got, expected, rtol=0, atol=FACE_TOL)
    np.testing.assert_allclose(expected[1], expected[0], atol=1e-9)  # image-independent
    assert np.any(straddle[lig, 0] < 0) and np.any(straddle[lig, 0] > 0)
    assert expected[2, 1] > 1.0  # far from the axis


def test_walker_runs_and_its_bias_energy_equals_bias_energy_of_features(prepared) -> None:
    lc, state = prepared
    chi_grid = np.linspace(-5.0, 40.0, 256)
    grid = BiasGrid(-5.0, 40.0, 4.0 * np.sin(2.0 * chi_grid) - 4.0)  # kJ/mol
    c = np.array([0.5, 0.3, 0.05])
    bias = Bias(c / np.linalg.norm(c), grid)
    walker = Walker(
        lc.system,
        state["positions"],
        lc.features,
        TEMPERATURE_K,
        lc.timestep_ps,
        lc.friction_per_ps,
        seed=2,
        platform="CPU",
        box_vectors=state["box_vectors"],
    )
    walker.context.setVelocities(state["velocities"])
    walker.set_bias(bias)
    frames = walker.run(30, 10)
    assert len(frames) == 3 and np.all(np.isfinite(frames.features))
    expected = bias.energy(frames.features)
    assert np.all(expected < -0.01)  # a non-trivial part of the bias
    np.testing.assert_allclose(frames.bias_kjmol, expected, rtol=0, atol=BIAS_TOL_KJMOL)
    assert np.all(lc.is_bound(frames.features[:, 0], frames.features[:, 1]))
