"""Each feature kind answers for its own OpenMM compound term and PLUMED action; the bias force
and the PLUMED text built from them are pinned to what the kind-switching code produced."""

import numpy as np
import pytest

from rave.analysis.export import ExportError, plumed_feature_lines
from rave.learn.bias import Bias, BiasGrid
from rave.md.bias_force import _compound_terms, bias_force, chi_force
from rave.md.features import (
    Angle,
    CompoundTerm,
    Coordination,
    CylinderCount,
    CylindricalPosition,
    Dihedral,
    Distance,
    NoPlumedAction,
    PlumedAction,
    Position,
)

# feature set -> (what _compound_terms returns, the chi sum in the bias force's energy)
COMPOUND_CASES = {
    "single_nonperiodic": (
        [Position(3, "x"), Position(5, "z"), Distance(3, 7, periodic=False),
         Angle((1, 3, 5), periodic=False), Dihedral((0, 1, 2, 3), "sin", periodic=False)],
        ([3, 5, 7, 1, 0, 2],
         ["x1", "z2", "distance(p1,p3)", "angle(p4,p1,p2)", "sin(dihedral(p5,p4,p6,p1))"],
         False),
        "{p}_c0*x1 + {p}_c1*z2 + {p}_c2*distance(p1,p3) + {p}_c3*angle(p4,p1,p2) + "
        "{p}_c4*sin(dihedral(p5,p4,p6,p1))",
    ),
    "single_periodic": (
        [Distance(3, 7), Angle((1, 3, 5)), Dihedral((0, 1, 2, 3))],
        ([3, 7, 1, 5, 0, 2],
         ["distance(p1,p2)", "angle(p3,p1,p4)", "cos(dihedral(p5,p3,p6,p1))"], True),
        "{p}_c0*distance(p1,p2) + {p}_c1*angle(p3,p1,p4) + {p}_c2*cos(dihedral(p5,p3,p6,p1))",
    ),
    "positions_only": (
        [Position(4, "y"), Position(2, "x")],
        ([4, 2], ["y1", "x2"], False),
        "{p}_c0*y1 + {p}_c1*x2",
    ),
    "position_beside_periodic": (
        [Position(3, "x"), Distance(3, 7)], None, "{p}_c0*f0 + {p}_c1*f1",
    ),
    "mixed_periodicity": (
        [Distance(3, 7), Distance(1, 2, periodic=False)], None, "{p}_c0*f0 + {p}_c1*f1",
    ),
    "centroid_distance": ([Distance([0, 1], 7)], None, "{p}_c0*f0"),
    "centroid_position": ([Position([0, 1, 2], "z")], None, "{p}_c0*f0"),
    "coordination": (
        [Distance(3, 7), Coordination([0, 1], [5, 6], 0.4)], None, "{p}_c0*f0 + {p}_c1*f1",
    ),
    "cylindrical": (
        [CylindricalPosition(0, (0, 0, 0), "z"), CylinderCount([1, 2], (0, 0, 0), 0.9, -1, 1)],
        None, "{p}_c0*f0 + {p}_c1*f1",
    ),
}


@pytest.mark.parametrize("case", sorted(COMPOUND_CASES))
def test_bias_and_chi_force_expressions_are_pinned_for_every_kind(case):
    features, expected_terms, chi_sum = COMPOUND_CASES[case]
    assert _compound_terms(features) == expected_terms
    bias = Bias(np.arange(1.0, len(features) + 1), BiasGrid.zero())
    force_type = "CustomCVForce" if expected_terms is None else "CustomCompoundBondForce"
    force = bias_force(features, bias)
    assert type(force).__name__ == force_type
    assert force.getEnergyFunction() == (
        "rave_bias(chi); chi = max(rave_chi_min, min(rave_chi_max, "
        + chi_sum.format(p="rave") + "))"
    )
    chi = chi_force(features, bias.coefficients, -1.0, 1.0)
    assert type(chi).__name__ == force_type
    assert chi.getEnergyFunction() == (
        "chi; chi = max(rave_opes_chi_min, min(rave_opes_chi_max, "
        + chi_sum.format(p="rave_opes") + "))"
    )
    if expected_terms is not None:
        assert force.usesPeriodicBoundaryConditions() == expected_terms[2]


PLUMED_FEATURES = [
    Position(3, "x"), Position([0, 1, 2], "z", weights=[1, 2, 3]), Position([4, 5], "y"),
    Distance(3, 7), Distance([0, 1], [5, 6, 7], periodic=False),
    Angle((1, 3, 5)), Angle(([0, 1], 3, 5), periodic=False),
    Dihedral((0, 1, 2, 3)), Dihedral(([0, 1], 2, 3, [4, 5]), "sin", periodic=False),
    Coordination([0, 1], [5, 6], 0.4),
    Coordination([0, 1], [5, 6], 0.35, n=8, m=14, periodic=False),
]
PLUMED_LINES = [
    "s0: POSITION ATOM=4 NOPBC",
    "s1c: CENTER ATOMS=1,2,3 NOPBC", "s1: POSITION ATOM=s1c NOPBC",
    "s2c: CENTER ATOMS=5,6 NOPBC", "s2: POSITION ATOM=s2c NOPBC",
    "s3: DISTANCE ATOMS=4,8",
    "s4a: CENTER ATOMS=1,2 NOPBC", "s4b: CENTER ATOMS=6,7,8 NOPBC",
    "s4: DISTANCE ATOMS=s4a,s4b NOPBC",
    "s5: ANGLE ATOMS=2,4,6",
    "s60: CENTER ATOMS=1,2 NOPBC", "s6: ANGLE ATOMS=s60,4,6 NOPBC",
    "s7t: TORSION ATOMS=1,2,3,4", "s7: CUSTOM ARG=s7t FUNC=cos(x) PERIODIC=NO",
    "s80: CENTER ATOMS=1,2 NOPBC", "s83: CENTER ATOMS=5,6 NOPBC",
    "s8t: TORSION ATOMS=s80,3,4,s83 NOPBC", "s8: CUSTOM ARG=s8t FUNC=sin(x) PERIODIC=NO",
    "s9: COORDINATION GROUPA=1,2 GROUPB=6,7 R_0=0.400000 NN=6 MM=12",
    "s10: COORDINATION GROUPA=1,2 GROUPB=6,7 R_0=0.350000 NN=8 MM=14 NOPBC",
]
PLUMED_ARGS = ["s0.x", "s1.z", "s2.y", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10"]
_COORDINATION_NOTE = (": COORDINATION (RATIONAL switching, no cutoff: check PLUMED's "
                      "NLIST/D_MAX choices match)")
PLUMED_NOTES = [
    "x(3): POSITION (absolute, unwrapped x)",
    "z([0,1,2];w): POSITION (absolute, unwrapped z)",
    "  WARNING z([0,1,2];w): weighted centroid exported as a plain CENTER",
    "y([4,5]): POSITION (absolute, unwrapped y)",
    "d(3,7): DISTANCE", "d([0,1],[5,6,7]): DISTANCE",
    "angle(1,3,5): ANGLE (rad)", "angle([0,1],3,5): ANGLE (rad)",
    "cos_dih(0,1,2,3): TORSION then CUSTOM cos(x)",
    "sin_dih([0,1],2,3,[4,5]): TORSION then CUSTOM sin(x)",
    "cn([0,1],[5,6];r0=0.4)" + _COORDINATION_NOTE,
    "cn([0,1],[5,6];r0=0.35)" + _COORDINATION_NOTE,
]


def test_plumed_actions_are_pinned_for_every_kind():
    lines, args, notes = plumed_feature_lines(PLUMED_FEATURES)
    assert lines == PLUMED_LINES
    assert args == PLUMED_ARGS
    assert notes == PLUMED_NOTES


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
    assert Position(7, "y").compound_term(slot) == CompoundTerm("y1", False)
    assert Dihedral((7, 2, 3, 4), "sin").compound_term(slot) == CompoundTerm(
        "sin(dihedral(p1,p2,p3,p4))", True)


class _HalfDistance(Distance):
    """A kind defined outside rave (not registered): its own term and action, nothing else."""

    def compound_term(self, slot):
        term = super().compound_term(slot)
        return None if term is None else term._replace(expression=f"0.5*{term.expression}")

    def plumed_action(self, label):
        inner = super().plumed_action(f"{label}d")
        return PlumedAction([*inner.lines, f"{label}: COMBINE ARG={label}d COEFFICIENTS=0.5 "
                             "PERIODIC=NO"], label, ["half distance"])


def test_a_new_kind_answering_for_itself_needs_no_change_to_bias_or_export():
    features = [_HalfDistance(3, 7), Angle((1, 3, 5))]
    assert _compound_terms(features) == ([3, 7, 1, 5],
                                         ["0.5*distance(p1,p2)", "angle(p3,p1,p4)"], True)
    lines, args, notes = plumed_feature_lines(features)
    assert lines == ["s0d: DISTANCE ATOMS=4,8", "s0: COMBINE ARG=s0d COEFFICIENTS=0.5 PERIODIC=NO",
                     "s1: ANGLE ATOMS=2,4,6"]
    assert args == ["s0", "s1"]
    assert notes == ["half distance", "angle(1,3,5): ANGLE (rad)"]


def test_the_feature_itself_refuses_a_plumed_action_it_does_not_have():
    with pytest.raises(NoPlumedAction, match=r"^feature z_cyl\(0\) of kind 'cylindrical' has no "):
        CylindricalPosition(0, (0, 0, 0)).plumed_action("s0")
