"""One particle in a 2-D model potential U(x, y): OpenMM system, numpy energy, exact F(chi).

Three kinds, each defined once, as an OpenMM (Lepton) energy expression in kJ/mol of x and y
in nm; the numpy energy is obtained from the same string by a small Lepton -> numpy
translator (:func:`lepton_to_numpy`), so OpenMM and numpy cannot drift apart.

``three_state``
    U/kT = -12 [exp(-(x+1)^2 - 2(y-1)^2) + exp(-2(x+0.8)^2 - 2(y+1)^2) + exp(-2(x-1)^2 - 2y^2)]
    + ((x^2 + y^2)/4)^4.

    The last term is a soft wall (r^8 with r in units of 2 nm) that makes exp(-U/kT)
    integrable; it is below 0.07 kT inside r = 1.42 nm (the minima) and below 0.002 kT at the
    saddles (r < 0.9 nm), but 6 kT at r = 2.5 nm and 88 kT at r = 3.5 nm. Because U is
    scaled by kT, barriers are the same number of kT at any temperature.

    Measured here (scipy.optimize.minimize, BFGS, from the guesses (-1, 1), (-0.8, -1), (1, 0);
    saddle points by scipy.optimize.root on the gradient, Hessian with one negative eigenvalue;
    minimax levels by flooding a 1001 x 1001 grid on [-2.5, 2.5]^2 nm, 4-connected, see
    :func:`minimax_path_energy`). Values are stored in :data:`THREE_STATE_MINIMA`,
    :data:`THREE_STATE_SADDLES` and :data:`THREE_STATE_MINIMAX_KT` and re-derived by the tests.

    =====  ==================  =========
    state  minimum (x, y) nm   U / kT
    =====  ==================  =========
    A      (-0.9898, 0.9944)   -11.9439
    B      (-0.7974, -0.9963)  -11.9786
    C      ( 0.9965, 0.0023)   -12.0288
    =====  ==================  =========

    Saddle points (first-order, all three exist):

    =====  ==================  =========
    pair   saddle (x, y) nm    U / kT
    =====  ==================  =========
    A-B    (-0.8564, 0.0024)   -3.2155
    A-C    ( 0.1671, 0.5802)   -3.7013
    B-C    ( 0.0867, -0.4786)  -2.9236
    =====  ==================  =========

    Minimax (lowest possible highest point of any path; flooding) for each pair: A-B -3.2157,
    A-C -3.7013, B-C -3.2157 kT: the lowest path from B to C goes through A, because the
    direct B-C saddle (-2.92 kT) is higher. The lowest barrier out of each basin is
    A: 8.24 kT (to C), B: 8.76 kT (to A, or via A to C), C: 8.33 kT (to A); all pair barriers
    lie in 8.2-8.8 kT (RAVE.md quotes saddles at -3.2 / -3.7 kT and barriers of 8.3-8.8 kT for
    the same Gaussians without the wall; the wall lifts the A and B minima by 0.03-0.06 kT).
    Flooding the grid is exact on the grid, which can undercut a saddle by ~1e-3 kT.

``rotated_double_well``
    U/kT = B ((u/u0)^2 - 1)^2 + (k_v/2) v^2 with u = cos(a) x + sin(a) y and
    v = -sin(a) x + cos(a) y. Defaults: a = 35 deg, B = 6 kT, u0 = 1 nm, and
    k_v = 2 * (8 B / u0^2) kT/nm^2, i.e. twice the curvature of the well along u at its
    minimum. Within a basin the variance along u is then larger than along v (the quartic
    well is also softer toward the barrier), so the slow direction is also the first
    principal direction in a basin, while std_v / std_u stays about 0.62 (default
    parameters, by quadrature in the basin u < 0). ``slow_direction`` = (cos a, sin a).

``from_expression``
    Any OpenMM energy expression of x and y (nm) in kJ/mol (not kT units).

Every system is one particle of mass ``mass_amu`` with ``0.5 kz z^2`` added to confine z, no
box, no constraints, no CMMotionRemover (it would remove the only particle's motion).

Dynamics defaults (for openmm.LangevinMiddleIntegrator): mass 1 amu, friction 25 /ps,
timestep 5 fs. Measured for three_state at 300 K (OpenMM 8.6.1, 2 CPU cores, seeded runs):

* stability: 1e6 steps on Reference, all positions finite, x-y kinetic temperature 301.9 K
  from velocities every 100 steps (statistical error about 3 K);
* basin decorrelation: integrated autocorrelation time of x and y from 1e5-step runs in each
  basin, 100-105 steps in B and C, 175 steps for x in A (its soft direction);
* barrier crossing: mean first-passage time from each minimum into another basin (within
  0.35 nm of another minimum), 20 seeds each: A 6.1e5 +- 1.0e5, B 5.3e5 +- 1.0e5,
  C 6.2e5 +- 1.3e5 steps; 20-30 % of unbiased 2e5-step runs cross once. With 8.2-8.8 kT
  barriers the crossing time is only 3000-6000 basin decorrelation times, so fewer crossings
  would need a basin decorrelation time approaching 1000 steps; these defaults balance the two.

MD speeds (Reference against CPU platform for one particle) are in docs/benchmarks.md.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import openmm
import scipy.special
from openmm import app
from openmm import unit as u
from scipy import ndimage

from rave.errors import ConfigError
from rave.units import kT_kjmol  # the one definition of kT (also this module's name)

from .registry import SimulationSystem, SystemKind

if TYPE_CHECKING:  # pragma: no cover
    from rave.campaign.config import Config, SystemConfig

__all__ = [
    "ModelSystem",
    "ModelPotential",
    "NumpyExpression",
    "three_state",
    "rotated_double_well",
    "from_expression",
    "make_model_potential",
    "model_simulation_system",
    "potential_from_config",
    "lepton_to_numpy",
    "minimax_path_energy",
    "kT_kjmol",
    "MODEL_KINDS",
    "THREE_STATE_MINIMA",
    "THREE_STATE_SADDLES",
    "THREE_STATE_MINIMAX_KT",
    "THREE_STATE_GUESSES",
    "DEFAULT_MASS_AMU",
    "DEFAULT_FRICTION_PER_PS",
    "DEFAULT_TIMESTEP_PS",
    "DEFAULT_Z_FORCE_CONSTANT",
    "SYSTEM_KINDS",
]

DEFAULT_MASS_AMU = 1.0
DEFAULT_FRICTION_PER_PS = 25.0
DEFAULT_TIMESTEP_PS = 0.005
# kJ/mol/nm^2; std of z at 300 K is sqrt(kT/kz) = 0.16 nm, angular frequency 10 /ps at 1 amu.
DEFAULT_Z_FORCE_CONSTANT = 100.0

MODEL_KINDS = ("three_state", "rotated_double_well", "expression", "mixed_slow_mode")

# Measured as described in the module docstring; the tests recompute them.
# name -> ((x, y) nm, U/kT)
THREE_STATE_MINIMA: dict[str, tuple[tuple[float, float], float]] = {
    "A": ((-0.9898, 0.9944), -11.9439),
    "B": ((-0.7974, -0.9963), -11.9786),
    "C": ((0.9965, 0.0023), -12.0288),
}
# first-order saddle points: pair -> ((x, y) nm, U/kT)
THREE_STATE_SADDLES: dict[str, tuple[tuple[float, float], float]] = {
    "A-B": ((-0.8564, 0.0024), -3.2155),
    "A-C": ((0.1671, 0.5802), -3.7013),
    "B-C": ((0.0867, -0.4786), -2.9236),
}
# minimax level (lowest highest point over all paths) between each pair of minima, U/kT
THREE_STATE_MINIMAX_KT: dict[str, float] = {"A-B": -3.2157, "A-C": -3.7013, "B-C": -3.2157}
# Starting guesses for the minima: a local minimiser started there reaches THREE_STATE_MINIMA.
THREE_STATE_GUESSES: dict[str, tuple[float, float]] = {
    "A": (-1.0, 1.0),
    "B": (-0.8, -1.0),
    "C": (1.0, 0.0),
}

_THREE_STATE_REDUCED = (
    "-12*(exp(-(x+1)^2-2*(y-1)^2)+exp(-2*(x+0.8)^2-2*(y+1)^2)+exp(-2*(x-1)^2-2*y^2))"
    "+((x^2+y^2)/4)^4"
)
_EXPRESSION_KEY = "system.expression"


# --------------------------------------------------------------------------------------------
# small validation helpers
# --------------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _quantity_to(value: Any, target: u.Unit, name: str, what: str) -> float:
    """A float in `target` units from a bare number (taken in those units) or a Quantity."""
    if u.is_quantity(value):
        if not value.unit.is_compatible(target):
            raise TypeError(f"{name} must be {what}. You supplied a quantity in {value.unit}")
        value = value.value_in_unit(target)
    if not _is_number(value):
        raise TypeError(f"{name} must be a number or an OpenMM Quantity. You supplied {value!r}")
    return float(value)


def _positive(value: Any, target: u.Unit, name: str, what: str) -> float:
    result = _quantity_to(value, target, name, what)
    if not (math.isfinite(result) and result > 0):
        raise ValueError(f"{name} must be a finite number > 0 ({what}). You supplied {value!r}")
    return result


def _temperature(value: Any) -> float:
    return _positive(value, u.kelvin, "temperature_K", "a temperature in K")


def _point(value: Any, name: str) -> tuple[float, float]:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != (2,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be two finite numbers (x, y) in nm. You supplied {value!r}")
    return (float(arr[0]), float(arr[1]))


def _extent(value: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if (
        arr is None
        or arr.shape != (2, 2)
        or not np.all(np.isfinite(arr))
        or not np.all(arr[:, 0] < arr[:, 1])
    ):
        raise ValueError(
            "extent must be ((x_min, x_max), (y_min, y_max)) in nm, finite, with min < max. "
            f"You supplied {value!r}"
        )
    return ((float(arr[0, 0]), float(arr[0, 1])), (float(arr[1, 0]), float(arr[1, 1])))


# --------------------------------------------------------------------------------------------
# Lepton -> numpy translator
# --------------------------------------------------------------------------------------------
# name -> (number of arguments, numpy implementation); semantics as in Lepton's Operation.h
_NUMPY_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "sqrt": (1, np.sqrt),
    "exp": (1, np.exp),
    "log": (1, np.log),
    "sin": (1, np.sin),
    "cos": (1, np.cos),
    "sec": (1, lambda a: 1.0 / np.cos(a)),
    "csc": (1, lambda a: 1.0 / np.sin(a)),
    "tan": (1, np.tan),
    "cot": (1, lambda a: 1.0 / np.tan(a)),
    "asin": (1, np.arcsin),
    "acos": (1, np.arccos),
    "atan": (1, np.arctan),
    "atan2": (2, np.arctan2),
    "sinh": (1, np.sinh),
    "cosh": (1, np.cosh),
    "tanh": (1, np.tanh),
    "erf": (1, scipy.special.erf),
    "erfc": (1, scipy.special.erfc),
    "step": (1, lambda a: np.where(a >= 0.0, 1.0, 0.0)),
    "delta": (1, lambda a: np.where(a == 0.0, 1.0, 0.0)),
    "square": (1, lambda a: a * a),
    "cube": (1, lambda a: a * a * a),
    "recip": (1, lambda a: 1.0 / a),
    "min": (2, np.minimum),
    "max": (2, np.maximum),
    "abs": (1, np.abs),
    "floor": (1, np.floor),
    "ceil": (1, np.ceil),
    "select": (3, lambda c, a, b: np.where(c != 0.0, a, b)),
}
_OPERATORS = "+-*/^"
_PRECEDENCE = {"+": 0, "-": 0, "*": 1, "/": 1, "^": 3}
_LEFT_ASSOCIATIVE = {"+": True, "-": True, "*": True, "/": True, "^": False}
_PYTHON_OPERATOR = {"+": "+", "-": "-", "*": "*", "/": "/", "^": "**"}


def _lepton_tokens(text: str) -> list[tuple[str, str]]:
    """Split like Lepton's Parser::tokenize: (kind, text) with kind in
    number, operator, variable, function (text without the '('), lparen, rparen, comma."""
    tokens: list[tuple[str, str]] = []
    pos, n = 0, len(text)
    while pos < n:
        c = text[pos]
        if c == "(":
            tokens.append(("lparen", c))
            pos += 1
        elif c == ")":
            tokens.append(("rparen", c))
            pos += 1
        elif c == ",":
            tokens.append(("comma", c))
            pos += 1
        elif c in _OPERATORS:
            tokens.append(("operator", c))
            pos += 1
        elif c.isspace():
            pos += 1
        elif c == "." or c.isdigit():
            end = pos + 1
            found_decimal, found_exp = c == ".", False
            while end < n:
                d = text[end]
                if d.isdigit():
                    end += 1
                elif d == "." and not found_decimal:
                    found_decimal = True
                    end += 1
                elif d in "eE" and not found_exp:
                    found_exp = True
                    if end < n - 1 and text[end + 1] in "+-":
                        end += 1
                    end += 1
                else:
                    break
            tokens.append(("number", text[pos:end]))
            pos = end
        else:
            end = pos
            kind = "variable"
            while end < n:
                d = text[end]
                if d == "(":
                    kind = "function"
                    break
                if d in _OPERATORS or d in ",)" or d.isspace():
                    break
                end += 1
            tokens.append((kind, text[pos:end]))
            pos = end + 1 if kind == "function" else end
    return tokens


class _LeptonParser:
    """Precedence-climbing parser mirroring Lepton's Parser::parsePrecedence; emits Python."""

    def __init__(self) -> None:
        self.constants: dict[str, np.float64] = {}
        self.variables: dict[str, str] = {}  # Lepton name -> Python name
        self.functions: set[str] = set()

    def constant(self, text: str) -> str:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"malformed number: {text}") from None
        name = f"_c{len(self.constants)}"
        self.constants[name] = np.float64(value)
        return name

    def parse(self, tokens: list[tuple[str, str]], defs: dict[str, str]) -> str:
        self.tokens, self.pos, self.defs = tokens, 0, defs
        result = self._parse_precedence(0)
        if self.pos != len(tokens):
            raise ValueError(f"unexpected text at end of expression: {tokens[self.pos][1]}")
        return result

    def _parse_precedence(self, precedence: int) -> str:
        tokens = self.tokens
        if self.pos == len(tokens):
            raise ValueError("unexpected end of expression")
        kind, text = tokens[self.pos]
        if kind == "number":
            result = self.constant(text)
            self.pos += 1
        elif kind == "variable":
            if text in self.defs:
                result = self.defs[text]
            else:
                result = self.variables.setdefault(text, f"_v{len(self.variables)}")
            self.pos += 1
        elif kind == "lparen":
            self.pos += 1
            result = self._parse_precedence(0)
            if self.pos == len(tokens) or tokens[self.pos][0] != "rparen":
                raise ValueError("unbalanced parentheses")
            self.pos += 1
        elif kind == "function":
            self.pos += 1
            args = [self._parse_precedence(0)]
            while self.pos < len(tokens) and tokens[self.pos][0] == "comma":
                self.pos += 1
                args.append(self._parse_precedence(0))
            if self.pos == len(tokens) or tokens[self.pos][0] != "rparen":
                raise ValueError("unbalanced parentheses")
            self.pos += 1
            if text not in _NUMPY_FUNCTIONS:
                raise ValueError(
                    f"unknown function: {text} (the numpy translator knows "
                    f"{', '.join(sorted(_NUMPY_FUNCTIONS))})"
                )
            n_args = _NUMPY_FUNCTIONS[text][0]
            if len(args) != n_args:
                raise ValueError(f"wrong number of arguments to function: {text}")
            self.functions.add(text)
            result = f"_f_{text}({', '.join(args)})"
        elif kind == "operator" and text == "-":
            self.pos += 1
            result = f"(-{self._parse_precedence(2)})"
        else:
            raise ValueError(f"unexpected token: {text}")
        while self.pos < len(tokens) and tokens[self.pos][0] == "operator":
            op = tokens[self.pos][1]
            if _PRECEDENCE[op] < precedence:
                return result
            self.pos += 1
            next_precedence = _PRECEDENCE[op] + (1 if _LEFT_ASSOCIATIVE[op] else 0)
            arg = self._parse_precedence(next_precedence)
            result = f"({result} {_PYTHON_OPERATOR[op]} {arg})"
        return result


class NumpyExpression:
    """A Lepton (OpenMM) expression compiled to numpy; build it with :func:`lepton_to_numpy`.

    Raises
    ------
    TypeError
        When ``expression`` is not a str.
    ValueError
        When the expression does not parse (or uses a function numpy has no translation of).
    """

    def __init__(self, expression: str) -> None:
        if not isinstance(expression, str):
            raise TypeError(f"expression must be a str. You supplied {expression!r}")
        self.expression = expression
        # Split like Lepton: the primary expression, then definitions parsed from the last one
        # backwards, each seeing only the definitions that follow it in the string.
        parts = expression.split(";")
        primary, subexpressions = parts[0], [p.strip() for p in parts[1:][::-1]]
        parser = _LeptonParser()
        defs: dict[str, str] = {}
        steps: list[tuple[str, str]] = []
        try:
            for sub in subexpressions:
                if not sub:
                    continue
                if "=" not in sub:
                    raise ValueError("subexpression does not specify a name")
                name, body = sub.split("=", 1)
                name = name.strip()
                if not name:
                    raise ValueError("subexpression does not specify a name")
                code = parser.parse(_lepton_tokens(body), defs)
                python_name = f"_d{len(steps)}"
                steps.append((python_name, code))
                defs[name] = python_name
            result = parser.parse(_lepton_tokens(primary), defs)
        except ValueError as exc:
            raise ValueError(f'Parse error in expression "{expression}": {exc}') from None
        self.variables = frozenset(parser.variables)
        self._python_names = dict(parser.variables)
        self._namespace: dict[str, Any] = {"__builtins__": {}}
        self._namespace.update(parser.constants)
        for fname in parser.functions:
            self._namespace[f"_f_{fname}"] = _NUMPY_FUNCTIONS[fname][1]
        self._steps = [(name, compile(code, "<lepton>", "eval")) for name, code in steps]
        self._result = compile(result, "<lepton>", "eval")
        lines = [f"{name} = {code}" for name, code in steps] + [result]
        self.source = "\n".join(lines)

    def __call__(self, **values: Any) -> np.ndarray:
        """Evaluate with numpy; keyword arguments give every free variable (broadcasting)."""
        missing = self.variables - set(values)
        extra = set(values) - self.variables
        if missing or extra:
            raise ValueError(
                f"variables must be exactly {sorted(self.variables)}. You supplied {sorted(values)}"
            )
        arrays = np.broadcast_arrays(*[np.asarray(v, dtype=float) for v in values.values()])
        namespace = dict(self._namespace)
        for (name, _), arr in zip(values.items(), arrays, strict=True):
            namespace[self._python_names[name]] = arr
        shape = arrays[0].shape if arrays else ()
        with np.errstate(all="ignore"):
            for name, code in self._steps:
                namespace[name] = eval(code, namespace)  # generated code, no builtins
            result = eval(self._result, namespace)
        return np.array(np.broadcast_to(np.asarray(result, dtype=float), shape))

    def __repr__(self) -> str:
        return f"NumpyExpression({self.expression!r})"

    def __reduce__(self) -> tuple[type, tuple[str]]:
        # code objects do not pickle: rebuild from the expression
        return (NumpyExpression, (self.expression,))


def lepton_to_numpy(expression: str) -> NumpyExpression:
    """Translate an OpenMM (Lepton) energy expression to a vectorised numpy function.

    Supports ``+ - * / ^``, unary minus, numbers, variables, ``;``-separated intermediate
    definitions (``"a*x; a = b + 1; b = 2"``: each definition may use the ones that follow
    it, as in Lepton) and Lepton's built-in functions (sqrt, exp, log, sin, cos, sec, csc, tan,
    cot, asin, acos, atan, atan2, sinh, cosh, tanh, erf, erfc, step, delta, square, cube,
    recip, min, max, abs, floor, ceil, select), with Lepton's semantics (``step(0) = 1``,
    ``select(c, a, b) = a if c != 0 else b``). The translated code is evaluated with no
    Python builtins and only these functions in scope.

    Parameters
    ----------
    expression : str
        Lepton expression.

    Returns
    -------
    function : NumpyExpression
        Call it with the free variables as keyword arguments: ``f(x=..., y=...)``.

    Raises
    ------
    ValueError
        If the expression does not parse, or uses a function not in the list above (e.g.
        OpenMM's ``periodicdistance`` or tabulated functions).
    """
    return NumpyExpression(expression)


# --------------------------------------------------------------------------------------------
# flooding: minimax path energy on a grid
# --------------------------------------------------------------------------------------------
def minimax_path_energy(
    energy: np.ndarray, start: tuple[int, int], end: tuple[int, int]
) -> tuple[float, tuple[int, int]]:
    """Lowest level at which two grid cells are connected by cells of energy <= level.

    This is the energy of the highest point on the best path between the two cells
    (the minimax, or flooding, barrier top), exact on the grid: the grid values are searched
    by bisection, with 4-connected components from ``scipy.ndimage.label`` at each level.

    Parameters
    ----------
    energy : np.ndarray, shape=(n_x, n_y), dtype=float
        Energy on a regular grid (any unit; the result is in the same unit).
    start, end : tuple[int, int]
        Grid indices of the two cells (e.g. the cells nearest two minima).

    Returns
    -------
    level : float
        The minimax energy, same unit as `energy`.
    saddle_index : tuple[int, int]
        Grid index of the cell at that level through which the two cells connect.

    Raises
    ------
    ValueError
        When ``energy`` is not 2-D, an end point is outside the grid, or no path of
        finite energy joins them.
    """
    energy = np.asarray(energy, dtype=float)
    if energy.ndim != 2:
        raise ValueError(f"energy must be a 2-D array. You supplied shape {energy.shape}")
    for name, idx in (("start", start), ("end", end)):
        if len(idx) != 2 or not all(0 <= i < s for i, s in zip(idx, energy.shape, strict=True)):
            raise ValueError(
                f"{name} must be a grid index inside shape {energy.shape}. You supplied {idx!r}"
            )
    start, end = tuple(int(i) for i in start), tuple(int(i) for i in end)
    finite = np.where(np.isfinite(energy), energy, np.inf)
    levels = np.unique(finite[np.isfinite(finite)])
    floor = max(finite[start], finite[end])
    levels = levels[levels >= floor]

    def connected(level: float) -> tuple[bool, np.ndarray]:
        labels, _ = ndimage.label(finite <= level)
        return labels[start] != 0 and labels[start] == labels[end], labels

    lo, hi = 0, len(levels) - 1
    if hi < 0 or not connected(levels[hi])[0]:
        raise ValueError("start and end are not connected through finite grid energies")
    while lo < hi:
        mid = (lo + hi) // 2
        if connected(levels[mid])[0]:
            hi = mid
        else:
            lo = mid + 1
    level = float(levels[lo])
    _, labels = connected(level)
    component = labels == labels[start]
    candidates = np.argwhere(component & (finite == level))
    return level, (int(candidates[0][0]), int(candidates[0][1]))


# --------------------------------------------------------------------------------------------
# systems
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSystem:
    """What a campaign needs to simulate one model-potential particle.

    Attributes
    ----------
    system : openmm.System
        One particle, one CustomExternalForce (U(x, y) + 0.5 kz z^2), no box, no constraints.
    topology : openmm.app.Topology
        One chain, one residue ``MOD``, one atom ``P`` (no element).
    positions : np.ndarray, shape=(1, 3), dtype=float
        Start position, nm (z = 0).
    features : list of rave.md.features.Position
        The order parameters x and y of particle 0.
    """

    system: openmm.System
    topology: app.Topology
    positions: np.ndarray
    features: list


def _split_primary(expression: str) -> tuple[str, str]:
    """Primary expression and the ``;``-definitions that follow it (with their ``;``)."""
    head, sep, tail = expression.partition(";")
    return head, sep + tail


def _with_z(expression: str, z_force_constant: float) -> str:
    primary, definitions = _split_primary(expression)
    return f"({primary}) + {0.5 * z_force_constant!r}*z^2{definitions}"


def _openmm_system(
    expression: str, mass_amu: float, z_force_constant: float | None
) -> openmm.System:
    """One particle in a CustomExternalForce; z_force_constant None: the expression as given."""
    system = openmm.System()
    system.addParticle(mass_amu)
    if z_force_constant is not None:
        expression = _with_z(expression, z_force_constant)
    force = openmm.CustomExternalForce(expression)
    force.addParticle(0, [])
    force.setName("model_potential")
    system.addForce(force)
    return system


def _openmm_energies(expression: str, xy: np.ndarray) -> np.ndarray:
    """Energies (kJ/mol) of the expression at points (n, 2) nm, by OpenMM's Reference platform.

    Raises openmm.OpenMMException on an invalid expression.
    """
    system = _openmm_system(expression, 1.0, None)
    integrator = openmm.VerletIntegrator(0.001)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    out = np.empty(len(xy))
    for i, (x, y) in enumerate(np.asarray(xy, dtype=float)):
        context.setPositions([openmm.Vec3(x, y, 0.0)])
        out[i] = (
            context.getState(getEnergy=True)
            .getPotentialEnergy()
            .value_in_unit(u.kilojoule_per_mole)
        )
    return out


def _evaluate_xy(function: NumpyExpression, x: Any, y: Any) -> np.ndarray:
    """Evaluate an expression whose free variables are among x and y, broadcasting x and y."""
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    values = {"x": x, "y": y}
    result = function(**{k: values[k] for k in function.variables})
    return np.array(np.broadcast_to(result, x.shape))


def _check_expression(expression: Any, start: tuple[float, float]) -> NumpyExpression:
    """Validate an energy expression of x and y; return its numpy face."""
    if not isinstance(expression, str) or not expression.strip():
        raise TypeError(
            f"{_EXPRESSION_KEY} must be a non-empty OpenMM energy expression string of x and y. "
            f"You supplied {expression!r}"
        )
    try:
        function = lepton_to_numpy(expression)
    except ValueError as exc:
        function, translation_error = None, exc
    if function is not None:
        others = sorted(function.variables - {"x", "y"})
        if others:
            raise ValueError(
                f"{_EXPRESSION_KEY} may use only the variables x and y (nm; z is confined by "
                f"the model system itself). You supplied {expression!r}, which uses "
                f"{', '.join(others)}"
            )
    try:
        openmm_start = _openmm_energies(expression, np.array([start]))[0]
    except openmm.OpenMMException as exc:
        raise ValueError(
            f"{_EXPRESSION_KEY} is not a valid OpenMM energy expression of x and y: {exc}"
        ) from None
    if function is None:
        raise ValueError(
            f"{_EXPRESSION_KEY} is valid for OpenMM but cannot be translated to numpy: "
            f"{translation_error}"
        )
    numpy_start = float(_evaluate_xy(function, start[0], start[1]))
    if not (math.isfinite(openmm_start) and math.isfinite(numpy_start)):
        raise ValueError(
            f"{_EXPRESSION_KEY} must give a finite energy at the start point {start} nm. "
            f"You supplied {expression!r}, whose energy there is {openmm_start} kJ/mol"
        )
    return function


@dataclass(frozen=True)
class ModelPotential:
    """A 2-D model potential U(x, y) for one particle, with exact reference free energies.

    Attributes
    ----------
    name : str
        Kind or label.
    expression : str
        OpenMM energy expression of x and y (nm), in kJ/mol (already multiplied by kT for the
        built-in kinds).
    temperature_K : float
        Temperature, K (a Quantity is accepted and converted).
    start : tuple[float, float]
        A point in a minimum, nm; round 0 starts there.
    extent : tuple[tuple[float, float], tuple[float, float]]
        ((x_min, x_max), (y_min, y_max)), nm, covering all states with margin; used for
        quadrature (with a further margin) and plots.
    mass_amu, friction_per_ps, timestep_ps : float
        Defaults for Langevin dynamics (LangevinMiddleIntegrator).
    slow_direction : tuple[float, float] or None
        Unit vector of the known slow direction, where there is one (rotated double well).

    Raises
    ------
    TypeError
        When ``name`` is not a non-empty str.
    ValueError
        When the temperature, start, extent, mass, friction or timestep is invalid,
        ``slow_direction`` is zero, or the expression cannot be evaluated with numpy or is not
        finite at ``start``.

    Notes
    -----
    Frozen and validated on construction. To move the start point or the extent, use
    ``dataclasses.replace(potential, start=..., extent=...)``, which validates again.
    Replacing ``temperature_K`` does NOT rescale an expression that was scaled by kT (the
    built-in kinds): call the factory again with the new temperature.
    """

    name: str
    expression: str
    temperature_K: float
    start: tuple[float, float] = (0.0, 0.0)
    extent: tuple[tuple[float, float], tuple[float, float]] = ((-2.0, 2.0), (-2.0, 2.0))
    mass_amu: float = DEFAULT_MASS_AMU
    friction_per_ps: float = DEFAULT_FRICTION_PER_PS
    timestep_ps: float = DEFAULT_TIMESTEP_PS
    slow_direction: tuple[float, float] | None = None
    _function: NumpyExpression = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str. You supplied {self.name!r}")
        set_(self, "temperature_K", _temperature(self.temperature_K))
        set_(self, "start", _point(self.start, "start"))
        set_(self, "extent", _extent(self.extent))
        set_(self, "mass_amu", _positive(self.mass_amu, u.dalton, "mass_amu", "a mass in amu"))
        set_(
            self,
            "friction_per_ps",
            _positive(self.friction_per_ps, u.picosecond**-1, "friction_per_ps", "a rate in 1/ps"),
        )
        set_(
            self,
            "timestep_ps",
            _positive(self.timestep_ps, u.picosecond, "timestep_ps", "a time in ps"),
        )
        if self.slow_direction is not None:
            direction = np.asarray(_point(self.slow_direction, "slow_direction"))
            norm = float(np.linalg.norm(direction))
            if norm == 0:
                raise ValueError("slow_direction must be a non-zero vector. You supplied (0, 0)")
            set_(self, "slow_direction", tuple(float(c) for c in direction / norm))
        set_(self, "_function", _check_expression(self.expression, self.start))

    @property
    def kT(self) -> float:
        """Thermal energy R T, kJ/mol."""
        return kT_kjmol(self.temperature_K)

    def energy(self, x: Any, y: Any) -> np.ndarray:
        """Potential energy U(x, y).

        Parameters
        ----------
        x, y : array_like, dtype=float
            Coordinates, nm; broadcast against each other.

        Returns
        -------
        energy : np.ndarray, shape=broadcast(x, y).shape, dtype=float
            U in kJ/mol.
        """
        return _evaluate_xy(self._function, x, y)

    def build(self, z_force_constant: float | u.Quantity = DEFAULT_Z_FORCE_CONSTANT) -> ModelSystem:
        """The OpenMM system of one particle in this potential.

        Parameters
        ----------
        z_force_constant : float or openmm.unit.Quantity
            kz of the confining term 0.5 kz z^2, kJ/mol/nm^2.

        Returns
        -------
        model : ModelSystem
            System (no integrator: the engine makes one), topology, start positions (1, 3) nm
            and the features x and y.
        """
        from rave.md.features import Position

        kz = _positive(
            z_force_constant,
            u.kilojoule_per_mole / u.nanometer**2,
            "z_force_constant",
            "a force constant in kJ/mol/nm^2",
        )
        system = _openmm_system(self.expression, self.mass_amu, kz)
        topology = app.Topology()
        chain = topology.addChain()
        residue = topology.addResidue("MOD", chain)
        topology.addAtom("P", None, residue)
        positions = np.array([[self.start[0], self.start[1], 0.0]])
        features = [Position(0, "x", name="x"), Position(0, "y", name="y")]
        return ModelSystem(system=system, topology=topology, positions=positions, features=features)

    def chi_range(self, coefficients: Sequence[float]) -> tuple[float, float]:
        """Range of chi = c . (x, y) (c normalised) over the potential's ``extent``, nm: where
        its Boltzmann distribution lies along any direction.

        Parameters
        ----------
        coefficients : Sequence[float], shape=(2,)
            Direction c (normalised here; non-zero).

        Returns
        -------
        (lo, hi) : tuple[float, float]
        """
        direction = np.asarray(_point(coefficients, "coefficients"), dtype=float)
        norm = float(np.linalg.norm(direction))
        if norm == 0:
            raise ValueError("coefficients must be a non-zero vector. You supplied (0, 0)")
        return self._line_range(direction / norm, 0.0)

    def _line_range(self, direction: np.ndarray, margin_nm: float | None) -> tuple[float, float]:
        corners = np.array([[x, y] for x in self.extent[0] for y in self.extent[1]])
        proj = corners @ direction
        lo, hi = float(proj.min()), float(proj.max())
        margin = 0.5 * (hi - lo) if margin_nm is None else margin_nm
        return lo - margin, hi + margin

    def exact_free_energy(
        self,
        coefficients: Sequence[float],
        chi: Any,
        spacing_nm: float = 0.002,
        margin_nm: float | None = None,
    ) -> np.ndarray:
        """Exact free energy along a linear coordinate chi = c . (x, y), in units of kT.

        F(chi)/kT = -ln of the integral of exp(-U/kT) over the line c . (x, y) = chi (c
        normalised here), by the trapezoid rule along the perpendicular, evaluated in log
        space (no underflow), then shifted so that its minimum over the given chi is 0.
        The perpendicular range is the projection of `extent` plus `margin_nm` at both ends;
        exp(-U/kT) must be negligible beyond it (true for the built-in kinds; for
        :func:`from_expression` potentials it is the user's choice of extent).

        Parameters
        ----------
        coefficients : Sequence[float], shape=(2,)
            Direction c (normalised here; must be non-zero).
        chi : array_like, dtype=float
            Values of the coordinate, nm (in the units of the normalised c).
        spacing_nm : float
            Quadrature spacing along the perpendicular, nm.
        margin_nm : float, optional
            Extra length added at both ends of the perpendicular range, beyond the projection
            of `extent`; default half the projected width.

        Returns
        -------
        free_energy : np.ndarray, shape=chi.shape, dtype=float
            F(chi)/kT (dimensionless), minimum 0 over `chi`; inf where exp(-U/kT) is zero on
            the whole line.

        Raises
        ------
        ValueError
            When ``coefficients`` is zero, ``chi`` is not finite, or ``spacing_nm`` is not > 0.
        """
        c = np.asarray(_point(coefficients, "coefficients"))
        norm = float(np.linalg.norm(c))
        if norm == 0:
            raise ValueError(f"coefficients must be a non-zero vector. You supplied {coefficients}")
        c = c / norm
        chi_arr = np.asarray(chi, dtype=float)
        if not np.all(np.isfinite(chi_arr)):
            raise ValueError("chi must contain finite values only")
        if not (spacing_nm > 0):
            raise ValueError(f"spacing_nm must be > 0. You supplied {spacing_nm!r}")
        perp = np.array([-c[1], c[0]])
        t_lo, t_hi = self._line_range(perp, margin_nm)
        n = int(math.ceil((t_hi - t_lo) / spacing_nm)) + 1
        t = np.linspace(t_lo, t_hi, n)
        log_w = np.full(n, math.log(t[1] - t[0]))
        log_w[[0, -1]] -= math.log(2.0)
        flat = chi_arr.ravel()
        out = np.empty(flat.shape)
        chunk = max(1, 2_000_000 // n)
        for i in range(0, flat.size, chunk):
            ch = flat[i : i + chunk, None]
            x = ch * c[0] + t[None, :] * perp[0]
            y = ch * c[1] + t[None, :] * perp[1]
            reduced = self.energy(x, y) / self.kT
            reduced = np.where(np.isnan(reduced), np.inf, reduced)
            out[i : i + chunk] = -scipy.special.logsumexp(-reduced + log_w, axis=1)
        finite = np.isfinite(out)
        if finite.any():
            out = out - out[finite].min()
        return out.reshape(chi_arr.shape)

    def exact_free_energy_kjmol(
        self, coefficients: Sequence[float], chi: Any, **kwargs: Any
    ) -> np.ndarray:
        """:meth:`exact_free_energy` in kJ/mol (F, not F/kT); same arguments.

        Parameters
        ----------
        coefficients : Sequence[float], shape=(2,)
            Direction c (normalised here; must be non-zero).
        chi : array_like, dtype=float
            Values of the coordinate, nm (in the units of the normalised c).
        **kwargs
            ``spacing_nm``, ``margin_nm`` of :meth:`exact_free_energy`.

        Returns
        -------
        np.ndarray, shape=chi.shape, dtype=float
            F(chi) in kJ/mol, minimum 0 over ``chi``.
        """
        return self.exact_free_energy(coefficients, chi, **kwargs) * self.kT


# --------------------------------------------------------------------------------------------
# factories
# --------------------------------------------------------------------------------------------
def _dynamics(mass_amu, friction_per_ps, timestep_ps) -> dict[str, Any]:
    return {
        "mass_amu": DEFAULT_MASS_AMU if mass_amu is None else mass_amu,
        "friction_per_ps": DEFAULT_FRICTION_PER_PS if friction_per_ps is None else friction_per_ps,
        "timestep_ps": DEFAULT_TIMESTEP_PS if timestep_ps is None else timestep_ps,
    }


def three_state(
    temperature_K: float | u.Quantity = 300.0,
    *,
    mass_amu: float | None = None,
    friction_per_ps: float | None = None,
    timestep_ps: float | None = None,
) -> ModelPotential:
    """The three-state 2-D potential (see the module docstring for its minima and saddles).

    Parameters
    ----------
    temperature_K : float or openmm.unit.Quantity
        Temperature, K; the potential is scaled by kT so barriers are the same in kT.
    mass_amu, friction_per_ps, timestep_ps : float, optional
        Override the dynamics defaults.

    Returns
    -------
    potential : ModelPotential
        Starts in minimum A (-1, 1); extent [-2.5, 2.5]^2 nm.
    """
    kT = kT_kjmol(temperature_K)
    return ModelPotential(
        name="three_state",
        expression=f"{kT!r}*({_THREE_STATE_REDUCED})",
        temperature_K=temperature_K,
        start=THREE_STATE_MINIMA["A"][0],
        extent=((-2.5, 2.5), (-2.5, 2.5)),
        **_dynamics(mass_amu, friction_per_ps, timestep_ps),
    )


def rotated_double_well(
    temperature_K: float | u.Quantity = 300.0,
    angle_deg: float = 35.0,
    barrier_kT: float = 6.0,
    u0_nm: float = 1.0,
    stiffness_ratio: float = 2.0,
    *,
    mass_amu: float | None = None,
    friction_per_ps: float | None = None,
    timestep_ps: float | None = None,
) -> ModelPotential:
    """A double well along u = cos(a) x + sin(a) y, harmonic along the perpendicular v.

    U/kT = B ((u/u0)^2 - 1)^2 + (k_v/2) v^2 with k_v = stiffness_ratio * 8 B / u0^2, the
    curvature of the double well at its minima times `stiffness_ratio`.

    Parameters
    ----------
    temperature_K : float or openmm.unit.Quantity
        Temperature, K.
    angle_deg : float
        Angle a of the slow direction from the x axis, degrees.
    barrier_kT : float
        Barrier height B, kT (> 0).
    u0_nm : float
        Wells at u = +-u0, nm (> 0).
    stiffness_ratio : float
        Curvature along v over curvature along u at a minimum (> 0). Values above 1 make v
        stiffer than u in a basin; the default 2 gives std_v / std_u of about 0.62.
    mass_amu, friction_per_ps, timestep_ps : float, optional
        Override the dynamics defaults.

    Returns
    -------
    potential : ModelPotential
        Starts at u = -u0, v = 0; extent is the bounding box of the region where
        U < 25 kT along both axes u and v; ``slow_direction`` = (cos a, sin a).

    Raises
    ------
    ValueError
        When ``angle_deg`` is not a finite number, or ``barrier_kT``, ``u0_nm`` or
        ``stiffness_ratio`` is not a finite number > 0.
    """
    checks = (("barrier_kT", barrier_kT), ("u0_nm", u0_nm), ("stiffness_ratio", stiffness_ratio))
    for name, value in checks:
        if not _is_number(value) or not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0. You supplied {value!r}")
    if not _is_number(angle_deg) or not math.isfinite(angle_deg):
        raise ValueError(f"angle_deg must be a finite number. You supplied {angle_deg!r}")
    kT = kT_kjmol(temperature_K)
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    kv = stiffness_ratio * 8.0 * barrier_kT / u0_nm**2
    expression = (
        f"{kT!r}*({float(barrier_kT)!r}*((u/{float(u0_nm)!r})^2-1)^2+{0.5 * kv!r}*v^2); "
        f"u = {ca!r}*x+{sa!r}*y; v = {-sa!r}*x+{ca!r}*y"
    )
    ceiling = 25.0  # kT: the extent covers U < ceiling along u and v
    u_max = u0_nm * math.sqrt(1.0 + math.sqrt(ceiling / barrier_kT))
    v_max = math.sqrt(2.0 * ceiling / kv)
    corners = np.array([[su * u_max, sv * v_max] for su in (-1, 1) for sv in (-1, 1)])
    rotation = np.array([[ca, -sa], [sa, ca]])  # (u, v) -> (x, y)
    xy = corners @ rotation.T
    extent = (
        (float(xy[:, 0].min()), float(xy[:, 0].max())),
        (float(xy[:, 1].min()), float(xy[:, 1].max())),
    )
    return ModelPotential(
        name="rotated_double_well",
        expression=expression,
        temperature_K=temperature_K,
        start=(-u0_nm * ca, -u0_nm * sa),
        extent=extent,
        slow_direction=(ca, sa),
        **_dynamics(mass_amu, friction_per_ps, timestep_ps),
    )


#: grid points per axis of the search for the default start of an expression potential
START_GRID_POINTS = 201


def lowest_point(expression: str, extent: Sequence[Sequence[float]]) -> tuple[float, float]:
    """The lowest point of an energy expression of x and y in ``extent`` (nm): the lowest
    finite value on a :data:`START_GRID_POINTS`-square grid, refined by a bounded local
    minimisation (L-BFGS-B).

    Raises
    ------
    ValueError
        If the expression cannot be translated to numpy or has no finite value in ``extent``.
    """
    from scipy.optimize import minimize

    function = lepton_to_numpy(expression)
    (x0, x1), (y0, y1) = _extent(extent)
    xs = np.linspace(x0, x1, START_GRID_POINTS)
    ys = np.linspace(y0, y1, START_GRID_POINTS)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    with np.errstate(all="ignore"):
        grid = np.asarray(_evaluate_xy(function, gx, gy), dtype=float)
    grid[~np.isfinite(grid)] = np.inf
    if not np.isfinite(grid).any():
        raise ValueError(f"{_EXPRESSION_KEY} {expression!r} has no finite energy in the "
                         f"extent {extent}")
    i, j = np.unravel_index(np.argmin(grid), grid.shape)

    def energy(point: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            value = float(_evaluate_xy(function, point[0], point[1]))
        return value if math.isfinite(value) else float(grid[i, j]) + 1e6

    best = minimize(energy, [xs[i], ys[j]], method="L-BFGS-B", bounds=[(x0, x1), (y0, y1)])
    point = best.x if best.fun <= grid[i, j] else np.array([xs[i], ys[j]])
    return float(point[0]), float(point[1])


def _on_edge(point: Sequence[float], extent, fraction: float = 1e-3) -> bool:
    """Whether a point lies on the edge of an extent (within ``fraction`` of its size)."""
    return any(min(abs(p - lo), abs(hi - p)) <= fraction * (hi - lo)
               for p, (lo, hi) in zip(point, extent, strict=True))


def from_expression(
    expression: str,
    temperature_K: float | u.Quantity,
    start: Sequence[float] | None = None,
    extent: Sequence[Sequence[float]] = ((-2.0, 2.0), (-2.0, 2.0)),
    *,
    name: str = "expression",
    mass_amu: float | None = None,
    friction_per_ps: float | None = None,
    timestep_ps: float | None = None,
    require_minimum: bool = False,
) -> ModelPotential:
    """A model potential from any OpenMM energy expression of x and y.

    Parameters
    ----------
    expression : str
        OpenMM (Lepton) expression of x and y (nm), energy in kJ/mol (not kT units); may use
        ``;``-separated intermediate definitions.
    temperature_K : float or openmm.unit.Quantity
        Temperature, K.
    start : Sequence[float], shape=(2,), optional
        Start point, nm; the energy there must be finite. Default: the lowest point in
        ``extent`` (:func:`lowest_point`), a minimum of the potential.
    extent : ((x_min, x_max), (y_min, y_max))
        Region covering the states, nm.
    name : str
        Label.
    mass_amu, friction_per_ps, timestep_ps : float, optional
        Override the dynamics defaults.
    require_minimum : bool
        Refuse an expression whose lowest point in ``extent`` lies on its edge (a campaign's
        walker would run away); the campaign's ``kind = "expression"`` sets it.

    Returns
    -------
    ModelPotential
        The potential (a 2-D particle in the expression's energy).

    Raises
    ------
    ValueError
        If OpenMM cannot parse the expression, it uses variables other than x and y, the numpy
        translator does not support it, its energy at `start` is not finite, or (with
        ``require_minimum``) its lowest point in ``extent`` lies on the extent's edge.
    """
    try:
        lowest = lowest_point(expression, extent)
    except Exception:  # noqa: BLE001 - ModelPotential below names what is wrong
        lowest = None  # ModelPotential then reports what is wrong with the expression
    if require_minimum and lowest is not None and _on_edge(lowest, _extent(extent)):
        raise ValueError(
            f"{_EXPRESSION_KEY} {expression!r}: its lowest point in the extent {extent} nm is "
            f"on the extent's edge, at ({lowest[0]:.4g}, {lowest[1]:.4g}) nm: the energy keeps "
            f"falling beyond it (no minimum inside; unbounded below?), so a walker would run "
            f"away. Give an expression with a minimum inside system.extent, or widen "
            f"system.extent to hold it")
    if start is None:
        start = (0.0, 0.0) if lowest is None else lowest
    return ModelPotential(
        name=name,
        expression=expression,
        temperature_K=temperature_K,
        start=start,
        extent=extent,
        **_dynamics(mass_amu, friction_per_ps, timestep_ps),
    )


_FACTORIES: dict[str, Callable[..., ModelPotential]] = {
    "three_state": three_state,
    "rotated_double_well": rotated_double_well,
    "expression": from_expression,
}


def make_model_potential(
    kind: str, temperature_K: float | u.Quantity, **options: Any
) -> ModelPotential:
    """Build a model potential by kind name (the entry point for configuration files).

    Parameters
    ----------
    kind : str
        One of :data:`MODEL_KINDS`: "three_state", "rotated_double_well", "expression",
        "mixed_slow_mode" (three particles, six coordinates: a
        ``rave.systems.mixed_slow_mode.MixedSlowModePotential``, not a 2-D ModelPotential).
    temperature_K : float or openmm.unit.Quantity
        Temperature, K.
    **options
        Keyword arguments of the matching factory (:func:`three_state`,
        :func:`rotated_double_well`, :func:`from_expression`,
        ``rave.systems.mixed_slow_mode.mixed_slow_mode``; "expression" needs ``expression=``).

    Returns
    -------
    ModelPotential or MixedSlowModePotential
        What the factory builds.

    Raises
    ------
    ValueError
        Unknown kind, or an option the factory does not take.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(
            f"kind must be one of {', '.join(repr(k) for k in MODEL_KINDS)}. You supplied {kind!r}"
        )
    if kind == "mixed_slow_mode":  # its own module, which imports this one
        from .mixed_slow_mode import mixed_slow_mode as factory
    else:
        factory = _FACTORIES[kind]
    allowed = [p for p in inspect.signature(factory).parameters if p != "temperature_K"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"options for kind {kind!r} must be among {', '.join(allowed)}. "
            f"You supplied {', '.join(unknown)}"
        )
    if kind == "expression" and "expression" not in options:
        raise ValueError(
            f"kind 'expression' needs the option expression (an OpenMM energy expression of "
            f"x and y in kJ/mol). You supplied options {sorted(options)}"
        )
    return factory(temperature_K=temperature_K, **options)


# --------------------------------------------------------------------------------------------
# [system] kinds: three_state, rotated_double_well, expression
# --------------------------------------------------------------------------------------------
def potential_from_config(config: Config) -> ModelPotential:
    """The model potential of a config's ``[system]`` (any kind of :data:`MODEL_KINDS`).

    Raises
    ------
    rave.errors.ConfigError
        Whatever the factory refuses (an invalid expression, a start of infinite energy, ...).
    """
    system = config.system
    placement = {}
    if system.start is not None:
        placement["start"] = tuple(system.start)
    if system.extent is not None:
        placement["extent"] = tuple(tuple(r) for r in system.extent)
    try:
        if system.kind == "expression":
            return from_expression(system.expression, system.temperature,
                                   require_minimum=True, **placement)
        options = {k: getattr(system, k) for k in ("angle_deg", "barrier_kT")
                   if getattr(system, k) is not None}
        potential = make_model_potential(system.kind, system.temperature, **options)
        # replace() validates again (a finite energy at the new start, a sane extent)
        return dataclasses.replace(potential, **placement) if placement else potential
    except ValueError as error:
        raise ConfigError(str(error)) from error


def model_simulation_system(potential: Any) -> SimulationSystem:
    """The :class:`~rave.systems.SimulationSystem` of a model potential (2-D or mixed)."""
    built = potential.build()
    return SimulationSystem(
        name=potential.name, system=built.system,
        positions=np.array(built.positions, dtype=float).reshape(-1, 3),
        features=list(built.features), timestep_ps=potential.timestep_ps,
        friction_per_ps=potential.friction_per_ps, potential=potential,
    )


def _build(config: Config) -> SimulationSystem:
    return model_simulation_system(potential_from_config(config))


def _check_placement(system: SystemConfig) -> None:
    if system.start is not None and len(system.start) != 2:
        raise ConfigError(f"system.start must be [x, y] in nm. You supplied {system.start}")
    if system.extent is not None and (
        len(system.extent) != 2 or any(len(r) != 2 or r[1] <= r[0] for r in system.extent)
    ):
        raise ConfigError(
            f"system.extent must be [[xmin, xmax], [ymin, ymax]] with max > min. "
            f"You supplied {system.extent}"
        )


def check_barrier(system: SystemConfig) -> None:
    """``system.barrier_kT`` (where set) must be a finite number > 0.

    Raises
    ------
    rave.errors.ConfigError
        When ``barrier_kT`` is set and not a finite number > 0.
    """
    value = system.barrier_kT
    if value is not None and not (math.isfinite(value) and value > 0):
        raise ConfigError(f"system.barrier_kT must be a finite number > 0. You supplied {value}")


def _check_rotated(system: SystemConfig) -> None:
    _check_placement(system)
    check_barrier(system)


def _check_expression_kind(system: SystemConfig) -> None:
    if not system.expression:
        raise ConfigError(
            'system.expression is required when system.kind = "expression": give an OpenMM '
            'energy expression of x and y in kJ/mol, e.g. expression = "5*(x^2-1)^2 + 10*y^2"'
        )
    _check_placement(system)


#: the [system] kinds of this module (rave.systems.registry loads them by name)
SYSTEM_KINDS = (
    SystemKind("three_state", _build, keys=("start", "extent"), check=_check_placement,
               potential=potential_from_config),
    SystemKind("rotated_double_well", _build,
               keys=("start", "extent", "angle_deg", "barrier_kT"), check=_check_rotated,
               potential=potential_from_config),
    SystemKind("expression", _build, keys=("expression", "start", "extent"),
               check=_check_expression_kind, potential=potential_from_config),
)
