"""Order parameters of a cylindrical cavity: :class:`CylindricalPosition` (a group's place
in cylindrical coordinates about an axis) and :class:`CylinderCount` (a smooth count of
particles inside a cylinder), with the smooth step :func:`smooth_step_down`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import openmm
from openmm import unit as u

from .base import (
    Feature,
    _centroid,
    _centroid_force,
    _fail,
    _group_label,
    _to_nm,
    _validate_group,
    _validate_name,
)

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
    """C2 step from exactly 1 (u <= -1/2) to exactly 0 (u >= 1/2), s(0) = 1/2; u dimensionless.

    1 - t^3 (10 - 15 t + 6 t^2) with t = u + 1/2 clipped to [0, 1].
    """
    t = np.clip(np.asarray(u_, dtype=np.float64) + 0.5, 0.0, 1.0)
    return 1.0 - t**3 * (10.0 - 15.0 * t + 6.0 * t * t)


def _step_down_expression(var: str, argument: str) -> str:
    """Lepton twin of :func:`smooth_step_down`; defines helper ``t<var>``."""
    return f"(1-t{var}^3*(10-15*t{var}+6*t{var}^2)); t{var}=min(1,max(0,{argument}+0.5))"


class CylindricalPosition(Feature):
    """Axial (``component="z"``) or radial ("rho") coordinate (nm) of a particle or group centroid.

    The axis is parallel to z through ``origin`` (3 values, nm); rho is
    ``sqrt(dx^2 + dy^2 + CYLINDRICAL_RHO_EPS_NM2)``, finite force on the axis. Offsets are wrapped
    per component, ``d - L floor(d/L + 1/2)``, in the fixed rectangular box ``box_lengths`` (nm,
    None: no wrapping; NVT), so the value does not depend on the periodic image; ``evaluate``
    checks a given box against it within ``CYLINDRICAL_BOX_TOL_NM``. Groups are assumed whole.
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
        """A new force (kJ/mol = z or rho in nm), offsets wrapped in ``box_lengths``."""
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
    """Smooth count (dimensionless) of ``atoms`` inside a capped cylinder about a fixed axis.

    ``sum_i S((rho_i - radius)/width) S((dz_i - z_max)/width) S((z_min - dz_i)/width)``, with
    ``dz_i``, ``rho_i`` as in :class:`CylindricalPosition` and ``S`` = :func:`smooth_step_down`:
    a particle more than ``width/2`` inside every boundary counts 1, more than ``width/2`` outside
    any counts 0. Lengths in nm. Raises ValueError unless radius, width > 0 and z_min < z_max are
    finite. OpenMM face: one ``CustomExternalForce`` term per counted particle.
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
        """A new ``CustomExternalForce`` (kJ/mol = the count), wrapped in ``box_lengths``."""
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

