"""Each feature kind answers for its own OpenMM compound term and PLUMED action. The terms, the
bias and chi forces built from them, and the PLUMED lines are checked by what they compute:
OpenMM expressions evaluated in a Context, PLUMED lines read by a small interpreter of the
actions rave writes, both against the numpy face on random configurations."""

import math

import numpy as np
import openmm
import pytest
from openmm import unit as u

from rave.analysis.export import ExportError, plumed_feature_lines
from rave.learn.bias import Bias, BiasGrid
from rave.md.bias_force import _compound_terms, bias_force, chi_force
from rave.md.features import (
    Angle,
    Coordination,
    CylinderCount,
    CylindricalPosition,
    Dihedral,
    Distance,
    NoPlumedAction,
    PlumedAction,
    Position,
    evaluate_features,
)

#: an OpenMM expression (Reference, double) against the numpy face, in the feature's unit
TERM_TOL = 1e-9
#: OpenMM bias energy against Bias.energy, kJ/mol (spline round-off in double precision)
ENERGY_TOL_KJMOL = 1e-6
#: the PLUMED interpreter (float64, the same formulas written from PLUMED's manual) against the
#: numpy face: round-off only, in the feature's unit
PLUMED_TOL = 1e-9

N_PARTICLES = 8
#: a small rectangular box, so positions spread over [-3, 3] nm cross it: periodic terms
#: and non-periodic ones then give different values
TERM_BOX = np.diag([2.1, 2.3, 2.5])


def _frames(seed: int, n_frames: int = 6, n_particles: int = N_PARTICLES) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-3.0, 3.0, (n_frames, n_particles, 3))


def _context(forces, box: np.ndarray = TERM_BOX, n_particles: int = N_PARTICLES):
    """A Reference Context of ``forces`` in groups 0, 1, ... with ``box`` as its box."""
    system = openmm.System()
    for i in range(n_particles):
        system.addParticle(float(i + 1))
    system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*row) for row in box])
    for group, force in enumerate(forces):
        force.setForceGroup(group)
        system.addForce(force)
    return openmm.Context(system, openmm.VerletIntegrator(0.001),
                          openmm.Platform.getPlatformByName("Reference"))


def _energies(context, frames, group: int) -> np.ndarray:
    out = []
    for x in frames:
        context.setPositions(x)
        out.append(context.getState(getEnergy=True, groups={group}).getPotentialEnergy()
                   .value_in_unit(u.kilojoule_per_mole))
    return np.array(out)


def _term_values(particles, expression: str, periodic: bool, frames) -> np.ndarray:
    """A compound term evaluated by OpenMM: one bond over ``particles``, energy = term."""
    force = openmm.CustomCompoundBondForce(len(particles), expression)
    force.addBond(list(particles), [])
    force.setUsesPeriodicBoundaryConditions(periodic)
    return _energies(_context([force]), frames, 0)


# feature set -> the force the bias and chi are built as
COMPOUND_CASES = {
    "single_nonperiodic": (
        [Position(3, "x"), Position(5, "z"), Distance(3, 7, periodic=False),
         Angle((1, 3, 5), periodic=False), Dihedral((0, 1, 2, 3), "sin", periodic=False)],
        "CustomCompoundBondForce"),
    "single_periodic": (
        [Distance(3, 7), Angle((1, 3, 5)), Dihedral((0, 1, 2, 3)), Dihedral((6, 1, 2, 4), "sin")],
        "CustomCompoundBondForce"),
    "positions_only": ([Position(4, "y"), Position(2, "x")], "CustomCompoundBondForce"),
    "position_beside_periodic": ([Position(3, "x"), Distance(3, 7)], "CustomCVForce"),
    "mixed_periodicity": ([Distance(3, 7), Distance(1, 2, periodic=False)], "CustomCVForce"),
    "centroid_distance": ([Distance([0, 1], 7)], "CustomCVForce"),
    "centroid_position": ([Position([0, 1, 2], "z")], "CustomCVForce"),
    "coordination": ([Distance(3, 7), Coordination([0, 1], [5, 6], 0.4)], "CustomCVForce"),
    "cylindrical": (
        [CylindricalPosition(0, (0, 0, 0), "z"), CylinderCount([1, 2], (0, 0, 0), 0.9, -1, 1)],
        "CustomCVForce"),
}
SINGLE_ATOM_CASES = sorted(k for k, (_, kind) in COMPOUND_CASES.items()
                           if kind == "CustomCompoundBondForce")


@pytest.mark.parametrize("case", SINGLE_ATOM_CASES)
def test_each_compound_term_evaluates_to_its_feature(case):
    features, _ = COMPOUND_CASES[case]
    particles, terms, periodic = _compound_terms(features)
    assert sorted(particles) == sorted(set().union(*(f.particles for f in features)))
    frames = _frames(1)
    expected = evaluate_features(features, frames, TERM_BOX)
    for k, (feature, term) in enumerate(zip(features, terms, strict=True)):
        got = _term_values(particles, term, periodic, frames)
        np.testing.assert_allclose(got, expected[:, k], rtol=0, atol=TERM_TOL,
                                   err_msg=f"{feature.name}: {term}")
    # the box matters here: a wrong periodicity of the force would show
    if any(getattr(f, "periodic", False) for f in features):
        assert np.abs(evaluate_features(features, frames) - expected).max() > 0.1


def _bias_over(values: np.ndarray) -> Bias:
    """A sloped bias whose grid covers the middle of the frames' chi, so that some frames lie
    beyond each edge (clamped) and some inside."""
    c = np.linspace(1.0, -0.7, values.shape[1])
    c /= np.linalg.norm(c)
    chi = values @ c
    lo, hi = np.quantile(chi, [0.2, 0.8])
    grid = np.linspace(lo, hi, 40)
    return Bias(c, BiasGrid(lo, hi, 3.0 * np.sin(4.0 * (grid - lo) / (hi - lo)) + grid))


@pytest.mark.parametrize("case", sorted(COMPOUND_CASES))
def test_bias_and_chi_forces_evaluate_to_numpy_for_every_kind(case):
    features, force_type = COMPOUND_CASES[case]
    assert (_compound_terms(features) is None) == (force_type == "CustomCVForce")
    frames = _frames(2, n_frames=12)
    values = evaluate_features(features, frames, TERM_BOX)
    bias = _bias_over(values)
    force = bias_force(features, bias)
    chi = chi_force(features, bias.coefficients, bias.grid.chi_min, bias.grid.chi_max)
    assert type(force).__name__ == force_type and type(chi).__name__ == force_type
    context = _context([force, chi])  # one Context holds both, as a walker with OPES does
    chi_values = values @ bias.coefficients
    lo, hi = bias.grid.clamp_bounds
    assert np.any(chi_values < lo) and np.any(chi_values > hi)  # clamped frames on both sides
    np.testing.assert_allclose(_energies(context, frames, 0), bias.energy(values), rtol=0,
                               atol=ENERGY_TOL_KJMOL)
    np.testing.assert_allclose(_energies(context, frames, 1), np.clip(chi_values, lo, hi),
                               rtol=0, atol=TERM_TOL)


# --------------------------------------------------------------------------------------------
# PLUMED: a small interpreter of the actions rave writes, from PLUMED's manual
# --------------------------------------------------------------------------------------------
def _atoms(spec: str) -> list[str]:
    return spec.split(",")


def _dihedral(b1, b2, b3) -> float:
    """IUPAC torsion of bond vectors (PLUMED's TORSION of four atoms)."""
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    return math.atan2(np.linalg.norm(b2) * np.dot(b1, n2), np.dot(n1, n2))


def _periodic_range(spec: str):
    """PERIODIC=NO -> None, PERIODIC=lo,hi -> (lo, hi) (evaluated: pi, -pi allowed)."""
    if spec == "NO":
        return None
    lo, hi = (float(eval(v, {"__builtins__": {}}, {"pi": math.pi})) for v in spec.split(","))
    return lo, hi


def plumed_values(lines: list[str], x: np.ndarray, box_lengths) -> dict[str, float]:
    """The values of every label of PLUMED ``lines`` at positions ``x`` (n, 3) in nm, in an
    orthorhombic box: atoms are 1-based, virtual atoms are labels, without NOPBC vectors take
    the minimum image and a POSITION is wrapped, CUSTOM and COMBINE apply their numbers."""
    lengths = np.asarray(box_lengths, dtype=float)
    points: dict[str, np.ndarray] = {}
    values: dict[str, float] = {}
    periodic_outputs: dict[str, tuple | None] = {}
    for line in lines:
        label, body = (part.strip() for part in line.split(":", 1))
        action, *words = body.split()
        keys = dict(w.split("=", 1) for w in words if "=" in w)
        pbc = "NOPBC" not in words

        def point(token: str, line: str = line) -> np.ndarray:
            if token in points:
                return points[token]
            index = int(token)
            assert 1 <= index <= len(x), f"{line}: atom {token} is not a 1-based index"
            return x[index - 1]

        def vector(a, b, pbc=pbc):
            d = point(b) - point(a)
            return d - lengths * np.round(d / lengths) if pbc else d

        if action == "CENTER":
            assert not pbc, f"{line}: rave's centroids use the coordinates as given"
            atoms = [point(t) for t in _atoms(keys["ATOMS"])]
            w = (np.ones(len(atoms)) if "WEIGHTS" not in keys
                 else np.array([float(v) for v in keys["WEIGHTS"].split(",")]))
            points[label] = np.einsum("p,pk->k", w / w.sum(), np.array(atoms))
        elif action == "POSITION":
            p = point(keys["ATOM"])
            p = p - lengths * np.round(p / lengths) if pbc else p
            values.update({f"{label}.{axis}": float(v) for axis, v in zip("xyz", p, strict=True)})
        elif action == "DISTANCE":
            a, b = _atoms(keys["ATOMS"])
            values[label] = float(np.linalg.norm(vector(a, b)))
        elif action == "ANGLE":
            a, b, c = _atoms(keys["ATOMS"])
            v1, v2 = vector(b, a), vector(b, c)
            values[label] = math.atan2(np.linalg.norm(np.cross(v1, v2)), np.dot(v1, v2))
        elif action == "TORSION":
            a, b, c, d = _atoms(keys["ATOMS"])
            values[label] = _dihedral(vector(a, b), vector(b, c), vector(c, d))
            periodic_outputs[label] = (-math.pi, math.pi)
        elif action == "CUSTOM":
            (arg,) = _atoms(keys["ARG"])
            functions = {"sin": math.sin, "cos": math.cos, "exp": math.exp, "sqrt": math.sqrt}
            value = eval(keys["FUNC"], {"__builtins__": {}}, {**functions, "x": values[arg]})
            periodic_outputs[label] = _periodic_range(keys["PERIODIC"])
            values[label] = float(value)
        elif action == "COMBINE":
            args = _atoms(keys["ARG"])
            coefficients = [float(c) for c in keys.get(
                "COEFFICIENTS", ",".join(["1"] * len(args))).split(",")]
            assert len(coefficients) == len(args), line
            assert all(periodic_outputs.get(a) is None for a in args), (
                f"{line}: a linear sum of periodic arguments")
            periodic_outputs[label] = _periodic_range(keys["PERIODIC"])
            values[label] = sum(c * values[a] for c, a in zip(coefficients, args, strict=True))
        elif action == "COORDINATION":
            group_a, group_b = _atoms(keys["GROUPA"]), _atoms(keys["GROUPB"])
            assert not set(group_a) & set(group_b), f"{line}: overlapping groups"
            r0, n, m = float(keys["R_0"]), int(keys["NN"]), int(keys["MM"])
            total = 0.0
            for a in group_a:
                for b in group_b:
                    q = np.linalg.norm(vector(a, b)) / r0
                    total += (1 - q**n) / (1 - q**m)  # RATIONAL, D_0 = 0
            values[label] = float(total)
        else:
            raise AssertionError(f"no interpreter for PLUMED action {action!r} in {line!r}")
    values["__periodic__"] = periodic_outputs  # type: ignore[assignment]
    return values


PLUMED_BOX = (3.0, 3.0, 3.0)
PLUMED_FEATURES = [
    Position(3, "x"), Position([0, 1, 2], "z", weights=[1, 2, 3]), Position([4, 5], "y"),
    Distance(3, 7), Distance([0, 1], [5, 6, 7], periodic=False),
    Angle((1, 3, 5)), Angle(([0, 1], 3, 5), periodic=False),
    Dihedral((0, 1, 2, 3)), Dihedral(([0, 1], 2, 3, [4, 5]), "sin", periodic=False),
    Coordination([0, 1], [5, 6], 0.4),
    Coordination([0, 1], [5, 6, 7], 0.3456789, n=8, m=14, periodic=False),
]


def _plumed_twin(feature):
    """What the PLUMED action of ``feature`` computes: the feature itself, except that a
    weighted centroid Position is exported as a plain CENTER (with a warning note)."""
    if isinstance(feature, Position) and feature.weights:
        return Position(feature.atoms, feature.axis)
    return feature


def test_plumed_actions_compute_each_feature():
    lines, args, notes = plumed_feature_lines(PLUMED_FEATURES)
    assert len(args) == len(PLUMED_FEATURES)
    box = np.diag(PLUMED_BOX)
    # positions spread over -1..7 nm: periodic actions must take the minimum image, POSITION
    # must not wrap
    frames = np.random.default_rng(3).uniform(-1.0, 7.0, (5, N_PARTICLES, 3))
    for x in frames:
        values = plumed_values(lines, x, PLUMED_BOX)
        periodic = values.pop("__periodic__")
        for feature, arg in zip(PLUMED_FEATURES, args, strict=True):
            expected = _plumed_twin(feature).evaluate(x, box)[0]
            assert abs(values[arg] - expected) < PLUMED_TOL, (feature.name, arg, values[arg],
                                                              expected)
            # rave's chi adds the values linearly: none may be declared periodic
            assert periodic.get(arg) is None, (feature.name, periodic.get(arg))
    # one note per feature, starting with its name; the weighted centroid is warned about
    for feature in PLUMED_FEATURES:
        assert sum(n.startswith(f"{feature.name}: ") for n in notes) == 1, feature.name
    warned = [n for n in notes if "WARNING" in n]
    assert len(warned) == 1 and PLUMED_FEATURES[1].name in warned[0]


def test_plumed_interpreter_tells_wrong_numbers_apart():
    # the check above can fail: a 0-based atom, a lost NOPBC or a wrong R_0 change the values
    x = np.random.default_rng(4).uniform(-1.0, 7.0, (N_PARTICLES, 3))
    good = plumed_values(["d: DISTANCE ATOMS=4,8 NOPBC", "c: COORDINATION GROUPA=1 GROUPB=6 "
                          "R_0=0.4 NN=6 MM=12"], x, PLUMED_BOX)
    bad = plumed_values(["d: DISTANCE ATOMS=3,7 NOPBC", "c: COORDINATION GROUPA=1 GROUPB=6 "
                         "R_0=0.41 NN=6 MM=12"], x, PLUMED_BOX)
    wrapped = plumed_values(["d: DISTANCE ATOMS=4,8"], x, PLUMED_BOX)
    assert abs(good["d"] - Distance(3, 7, periodic=False).evaluate(x)[0]) < PLUMED_TOL
    assert abs(good["d"] - bad["d"]) > 1e-3 and abs(good["d"] - wrapped["d"]) > 1e-3
    assert abs(good["c"] - bad["c"]) > 1e-6


@pytest.mark.parametrize("feature, message", [
    (CylindricalPosition(0, (0, 0, 0), "rho"),
     r"^feature rho_cyl\(0\) of kind 'cylindrical' has no PLUMED mapping$"),
    (CylinderCount([1, 2], (0, 0, 0), 0.9, -1, 1),
     r"^feature n_cyl\(\[1,2\];R=0\.9\) of kind 'cylinder_count' has no PLUMED mapping$"),
])
def test_a_kind_without_plumed_action_is_refused_by_name(feature, message):
    with pytest.raises(ExportError, match=message):
        plumed_feature_lines([Distance(3, 7), feature])


def test_a_centroid_feature_declines_the_compound_force_without_taking_a_slot():
    taken = []

    def slot(index):
        if index not in taken:
            taken.append(index)
        return taken.index(index) + 1

    for feature in [Position([0, 1], "x"), Distance([0, 1], 2), Angle(([0, 1], 2, 3)),
                    Dihedral((0, 1, 2, [3, 4])), Coordination([0], [1], 0.3),
                    CylindricalPosition(0, (0, 0, 0)),
                    CylinderCount([1], (0, 0, 0), 0.9, -1, 1)]:
        assert feature.compound_term(slot) is None
    assert taken == []
    # single atoms take their slots, and their terms compute the features over them
    frames = _frames(5)
    for feature in [Position(7, "y"), Dihedral((7, 2, 3, 4), "sin")]:
        term = feature.compound_term(slot)
        got = _term_values(taken, term.expression, term.periodic, frames)
        np.testing.assert_allclose(got, feature.evaluate(frames, TERM_BOX), rtol=0,
                                   atol=TERM_TOL, err_msg=feature.name)
    assert taken == [7, 2, 3, 4]


class _HalfDistance(Distance):
    """A kind defined outside rave (not registered): its own value, term and action."""

    def _compute(self, x, box):
        return 0.5 * super()._compute(x, box)

    def compound_term(self, slot):
        term = super().compound_term(slot)
        return None if term is None else term._replace(expression=f"0.5*{term.expression}")

    def plumed_action(self, label):
        inner = super().plumed_action(f"{label}d")
        return PlumedAction([*inner.lines, f"{label}: COMBINE ARG={label}d COEFFICIENTS=0.5 "
                             "PERIODIC=NO"], label, ["half distance"])


def test_a_new_kind_answering_for_itself_needs_no_change_to_bias_or_export():
    features = [_HalfDistance(3, 7), Angle((1, 3, 5))]
    frames = _frames(6)
    expected = evaluate_features(features, frames, TERM_BOX)
    np.testing.assert_allclose(expected[:, 0], 0.5 * Distance(3, 7).evaluate(frames, TERM_BOX))
    particles, terms, periodic = _compound_terms(features)
    for k, term in enumerate(terms):
        np.testing.assert_allclose(_term_values(particles, term, periodic, frames),
                                   expected[:, k], rtol=0, atol=TERM_TOL)
    lines, args, notes = plumed_feature_lines(features)
    assert notes[0] == "half distance"
    for x, row in zip(frames, evaluate_features(features, frames, np.diag(PLUMED_BOX)),
                      strict=True):
        values = plumed_values(lines, x, PLUMED_BOX)
        np.testing.assert_allclose([values[a] for a in args], row, rtol=0, atol=PLUMED_TOL)


def test_the_feature_itself_refuses_a_plumed_action_it_does_not_have():
    with pytest.raises(NoPlumedAction, match=r"^feature z_cyl\(0\) of kind 'cylindrical' has no "):
        CylindricalPosition(0, (0, 0, 0)).plumed_action("s0")
