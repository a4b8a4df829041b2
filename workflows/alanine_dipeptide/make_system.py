"""Generate alanine dipeptide (ACE-ALA-NME) from scratch: PDB + serialised OpenMM System.

No PDB of alanine dipeptide ships with openmm or mdtraj, so this script builds one:

1. the 10 heavy atoms are placed from internal coordinates (standard bond lengths and angles,
   trans peptide bonds, the requested phi/psi) with the NeRF method
   (:func:`build_heavy_atoms`, a pure function);
2. an :class:`openmm.app.Topology` is made for them (bonds from ``createStandardBonds``),
   hydrogens are added by ``Modeller.addHydrogens`` with the Amber ff14SB force field
   (``amber14/protein.ff14SB.xml``, plus ``implicit/obc2.xml`` for GB-OBC2 implicit solvent);
3. the System (NoCutoff, HBonds constraints, default hydrogen mass) is energy-minimised and
   ``alanine_dipeptide.pdb`` (minimised positions) and ``alanine_dipeptide_system.xml``
   (``openmm.XmlSerializer``) are written.

Usage::

    python workflows/alanine_dipeptide/make_system.py [--out DIR] [--solvent implicit|vacuum]
                                                      [--force]

Atom names follow OpenMM's residue definitions (``residues.xml`` / ``hydrogens.xml``): ACE has
CH3, C, O (+ H1 H2 H3); NME has N, C (+ H, H1 H2 H3) -- NME's methyl carbon is "C" there, while
``protein.ff14SB.xml`` calls it "CH3"; ForceField matches residues by their bond graph, so the
names do not matter to it. The 22 atoms come out in this order (0-based)::

     0 ACE CH3   1 ACE H1   2 ACE H2   3 ACE H3   4 ACE C    5 ACE O
     6 ALA N     7 ALA H    8 ALA CA   9 ALA HA  10 ALA CB  11 ALA HB1
    12 ALA HB2  13 ALA HB3 14 ALA C   15 ALA O   16 NME N   17 NME H
    18 NME C    19 NME H1  20 NME H2  21 NME H3

so phi = (4, 6, 8, 14) and psi = (6, 8, 14, 16) (see :data:`PHI_ATOMS`, :data:`PSI_ATOMS`).

Where minimisation ends (default start phi = -80, psi = 150 deg; Reference platform, measured
with this script for seeds 0-3): GB-OBC2 phi = -67.8, psi = 153.7 deg, E = -142.97 kJ/mol
(a local minimum near the start); vacuum phi = -75.0, psi = 54.0 deg, E = -91.17 kJ/mol -- in
vacuum ff14SB has no minimum in the PII/beta region and the structure slides into C7eq.

Units: nm, rad, kJ/mol inside; angles given by the user are in degrees (``*_deg``).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import openmm
from openmm import app
from openmm import unit as u

# Backbone dihedrals of the default start, degrees: the extended beta / PII region of the broad
# phi < 0 basin (C7eq proper is near (-83, 73)).
PHI_DEG_DEFAULT = -80.0
PSI_DEG_DEFAULT = 150.0

PDB_NAME = "alanine_dipeptide.pdb"
XML_NAME = "alanine_dipeptide_system.xml"
SOLVENTS = ("implicit", "vacuum")

# 0-based indices in the generated 22-atom system (hydrogens included); see module docstring.
PHI_ATOMS = (4, 6, 8, 14)  # C(ACE), N(ALA), CA(ALA), C(ALA)
PSI_ATOMS = (6, 8, 14, 16)  # N(ALA), CA(ALA), C(ALA), N(NME)
# mdtraj selection strings that pick each of those atoms uniquely, in the same order.
PHI_SELECTIONS = (
    "resname ACE and name C",
    "resname ALA and name N",
    "resname ALA and name CA",
    "resname ALA and name C",
)
PSI_SELECTIONS = (
    "resname ALA and name N",
    "resname ALA and name CA",
    "resname ALA and name C",
    "resname NME and name N",
)

# Standard peptide geometry (Engh & Huber 1991 backbone values), nm and degrees. The minimiser
# moves these to the force field's own equilibria (ff14SB differs by < 0.001 nm).
BOND_NM = {
    "CH3-C": 0.1520,  # ACE methyl - carbonyl C
    "C=O": 0.1231,
    "C-N": 0.1329,  # peptide bond
    "N-CA": 0.1458,
    "CA-C": 0.1525,
    "CA-CB": 0.1530,
    "N-CH3": 0.1458,  # NME N - methyl
}
ANGLE_DEG = {
    "CA-C-N": 116.2,  # also CH3-C-N of ACE
    "O-C-N": 123.0,  # CA-C-O = 360 - 116.2 - 123.0 = 120.8 (planar carbonyl)
    "C-N-CA": 121.7,  # also C-N-CH3 of NME
    "N-CA-C": 111.2,
    "C-CA-CB": 110.1,
}
OMEGA_DEG = 180.0  # trans peptide bonds
# Improper N-C-CA-CB that makes CA an L centre (measured on L residues of openmm's test.pdb:
# +116 to +126 deg; a D centre has the opposite sign).
CB_IMPROPER_DEG = 122.5

HEAVY_NAMES = ("CH3", "C", "O", "N", "CA", "CB", "C", "O", "N", "C")
HEAVY_RESIDUES = ("ACE", "ACE", "ACE", "ALA", "ALA", "ALA", "ALA", "ALA", "NME", "NME")
_ELEMENT = {"C": app.element.carbon, "N": app.element.nitrogen, "O": app.element.oxygen}


def _as_degrees(value: float | u.Quantity, name: str) -> float:
    """A finite angle in degrees from a bare float (degrees) or an OpenMM angle Quantity."""
    if u.is_quantity(value):
        if not value.unit.is_compatible(u.degrees):
            raise TypeError(
                f"{name} must be an angle (a float in degrees or an angle Quantity); "
                f"got a Quantity in {value.unit}"
            )
        value = value.value_in_unit(u.degrees)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number in degrees; got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    return float(value)


def place_atom_nerf(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    bond_nm: float,
    angle_rad: float,
    torsion_rad: float,
) -> np.ndarray:
    """Position of atom d from three placed atoms by NeRF (Parsons et al., JCC 26, 1063, 2005).

    Parameters
    ----------
    a, b, c : np.ndarray, shape=(3,), dtype=float, unit nm
        Positions of the three preceding atoms; ``c`` is bonded to the new atom.
    bond_nm : float, unit nm
        Bond length |d - c|.
    angle_rad : float, unit rad
        Bond angle b-c-d.
    torsion_rad : float, unit rad
        Dihedral a-b-c-d (IUPAC sign convention, as ``mdtraj.compute_dihedrals``).

    Returns
    -------
    d : np.ndarray, shape=(3,), dtype=float, unit nm
    """
    a, b, c = (np.asarray(x, dtype=float) for x in (a, b, c))
    bc = c - b
    bc /= np.linalg.norm(bc)
    n = np.cross(b - a, bc)
    n_norm = np.linalg.norm(n)
    if n_norm < 1e-12:
        raise ValueError(f"atoms a, b, c must not be collinear; got a={a}, b={b}, c={c}")
    n /= n_norm
    m = np.cross(n, bc)
    d_local = bond_nm * np.array(
        [
            -math.cos(angle_rad),
            math.sin(angle_rad) * math.cos(torsion_rad),
            math.sin(angle_rad) * math.sin(torsion_rad),
        ]
    )
    return c + d_local[0] * bc + d_local[1] * m + d_local[2] * n


def build_heavy_atoms(
    phi_deg: float | u.Quantity = PHI_DEG_DEFAULT,
    psi_deg: float | u.Quantity = PSI_DEG_DEFAULT,
) -> tuple[list[str], list[str], np.ndarray]:
    """Heavy atoms of ACE-ALA-NME from internal coordinates (NeRF), with exact phi and psi.

    Standard bond lengths and angles (:data:`BOND_NM`, :data:`ANGLE_DEG`), planar trans peptide
    bonds (omega = 180 deg), an L alpha carbon. Pure: no I/O, no randomness.

    Parameters
    ----------
    phi_deg : float or openmm.unit.Quantity, unit deg
        Backbone dihedral C(ACE)-N-CA-C.
    psi_deg : float or openmm.unit.Quantity, unit deg
        Backbone dihedral N-CA-C-N(NME).

    Returns
    -------
    names : list of str, length 10
        Atom names: CH3 C O (ACE), N CA CB C O (ALA), N C (NME).
    residues : list of str, length 10
        Residue name of each atom.
    xyz_nm : np.ndarray, shape=(10, 3), dtype=float, unit nm
        Positions; the first atom at the origin.
    """
    phi = math.radians(_as_degrees(phi_deg, "phi_deg"))
    psi = math.radians(_as_degrees(psi_deg, "psi_deg"))
    omega = math.radians(OMEGA_DEG)
    ang = {k: math.radians(v) for k, v in ANGLE_DEG.items()}

    # First three atoms (CH3, C of ACE; N of ALA) in the xy plane.
    ch3_ace = np.zeros(3)
    c_ace = np.array([BOND_NM["CH3-C"], 0.0, 0.0])
    theta = ang["CA-C-N"]  # CH3-C-N
    n_ala = c_ace + BOND_NM["C-N"] * np.array([-math.cos(theta), math.sin(theta), 0.0])

    ca = place_atom_nerf(ch3_ace, c_ace, n_ala, BOND_NM["N-CA"], ang["C-N-CA"], omega)
    # Carbonyl O of ACE is cis to CA across the trans peptide bond.
    o_ace = place_atom_nerf(ca, n_ala, c_ace, BOND_NM["C=O"], ang["O-C-N"], 0.0)
    c_ala = place_atom_nerf(c_ace, n_ala, ca, BOND_NM["CA-C"], ang["N-CA-C"], phi)
    cb = place_atom_nerf(
        n_ala, c_ala, ca, BOND_NM["CA-CB"], ang["C-CA-CB"], math.radians(CB_IMPROPER_DEG)
    )
    n_nme = place_atom_nerf(n_ala, ca, c_ala, BOND_NM["C-N"], ang["CA-C-N"], psi)
    # Carbonyl O of ALA: in the peptide plane, opposite N(NME) about the CA-C bond.
    ca_c_o = 2.0 * math.pi - ang["CA-C-N"] - ang["O-C-N"]  # planar sp2 carbon
    o_ala = place_atom_nerf(n_ala, ca, c_ala, BOND_NM["C=O"], ca_c_o, psi + math.pi)
    c_nme = place_atom_nerf(ca, c_ala, n_nme, BOND_NM["N-CH3"], ang["C-N-CA"], omega)

    xyz = np.array([ch3_ace, c_ace, o_ace, n_ala, ca, cb, c_ala, o_ala, n_nme, c_nme])
    return list(HEAVY_NAMES), list(HEAVY_RESIDUES), xyz


def heavy_atom_topology(names: list[str], residues: list[str]) -> app.Topology:
    """OpenMM Topology (one chain, residue ids 1..3) with elements and standard bonds.

    Parameters
    ----------
    names, residues : list of str, length n_atoms
        Atom names and residue names, atoms of one residue contiguous (as
        :func:`build_heavy_atoms` returns them). Element = first letter of the name.

    Returns
    -------
    topology : openmm.app.Topology
    """
    if len(names) != len(residues):
        raise ValueError(
            f"names and residues must have the same length; got {len(names)} and {len(residues)}"
        )
    topology = app.Topology()
    chain = topology.addChain("A")
    residue = None
    for name, resname in zip(names, residues, strict=True):
        if residue is None or residue.name != resname:
            residue = topology.addResidue(resname, chain, id=str(len(list(chain.residues())) + 1))
        if name[0] not in _ELEMENT:
            raise ValueError(f"atom name {name!r} must start with one of {sorted(_ELEMENT)}")
        topology.addAtom(name, _ELEMENT[name[0]], residue)
    topology.createStandardBonds()
    return topology


def make_forcefield(solvent: str = "implicit") -> app.ForceField:
    """Amber ff14SB, plus GB-OBC2 (``implicit/obc2.xml``) for ``solvent="implicit"``."""
    if solvent not in SOLVENTS:
        raise ValueError(f"solvent must be one of {SOLVENTS}; got {solvent!r}")
    files = ["amber14/protein.ff14SB.xml"]
    if solvent == "implicit":
        files.append("implicit/obc2.xml")
    return app.ForceField(*files)


def build_alanine_dipeptide(
    phi_deg: float | u.Quantity = PHI_DEG_DEFAULT,
    psi_deg: float | u.Quantity = PSI_DEG_DEFAULT,
    solvent: str = "implicit",
    minimize: bool = True,
    seed: int = 0,
) -> tuple[app.Topology, openmm.System, np.ndarray]:
    """Topology, System and (minimised) positions of alanine dipeptide.

    Parameters
    ----------
    phi_deg, psi_deg : float or openmm.unit.Quantity, unit deg
        Backbone dihedrals of the starting structure (:func:`build_heavy_atoms`).
    solvent : {"implicit", "vacuum"}
        GB-OBC2 implicit solvent or vacuum.
    minimize : bool
        Energy-minimise (``LocalEnergyMinimizer``, Reference platform) before returning;
        ``False`` returns the structure as built, hydrogens placed by ``addHydrogens``.
    seed : int
        Seed for the random initial hydrogen positions of ``Modeller.addHydrogens`` (it draws
        from Python's global ``random``; the global state is restored afterwards).

    Returns
    -------
    topology : openmm.app.Topology
        22 atoms, residues ACE ALA NME.
    system : openmm.System
        NoCutoff, HBonds constraints, default hydrogen mass.
    positions_nm : np.ndarray, shape=(22, 3), dtype=float, unit nm
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {type(seed).__name__}")
    forcefield = make_forcefield(solvent)
    names, residues, xyz = build_heavy_atoms(phi_deg, psi_deg)
    modeller = app.Modeller(heavy_atom_topology(names, residues), xyz * u.nanometer)
    state = random.getstate()
    try:
        random.seed(int(seed))
        modeller.addHydrogens(forcefield)
    finally:
        random.setstate(state)
    topology = modeller.topology
    system = forcefield.createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    positions = np.array(modeller.positions.value_in_unit(u.nanometer), dtype=float)
    if minimize:
        integrator = openmm.VerletIntegrator(0.001)
        context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
        context.setPositions(positions)
        openmm.LocalEnergyMinimizer.minimize(context, 1.0, 0)  # tolerance in kJ/mol/nm
        positions = context.getState(getPositions=True).getPositions(asNumpy=True)
        positions = np.array(positions.value_in_unit(u.nanometer), dtype=float)
        del context, integrator
    return topology, system, positions


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_alanine_dipeptide(
    out_dir: str | os.PathLike,
    solvent: str = "implicit",
    force: bool = False,
    phi_deg: float | u.Quantity = PHI_DEG_DEFAULT,
    psi_deg: float | u.Quantity = PSI_DEG_DEFAULT,
    seed: int = 0,
) -> tuple[Path, Path]:
    """Build, minimise and write ``alanine_dipeptide.pdb`` and ``alanine_dipeptide_system.xml``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Directory to write into (created if missing).
    solvent : {"implicit", "vacuum"}
    force : bool
        Overwrite existing files; otherwise an existing file raises ``FileExistsError``
        before anything is written.
    phi_deg, psi_deg : float or openmm.unit.Quantity, unit deg
    seed : int

    Returns
    -------
    pdb_path, xml_path : pathlib.Path
    """
    out = Path(out_dir)
    pdb_path, xml_path = out / PDB_NAME, out / XML_NAME
    existing = [str(p) for p in (pdb_path, xml_path) if p.exists()]
    if existing and not force:
        raise FileExistsError(
            f"refusing to overwrite existing file(s) {', '.join(existing)}; "
            "pass --force (force=True) to overwrite"
        )
    topology, system, positions = build_alanine_dipeptide(phi_deg, psi_deg, solvent, True, seed)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    app.PDBFile.writeFile(topology, positions * u.nanometer, buf, keepIds=True)
    _write_atomic(pdb_path, buf.getvalue())
    _write_atomic(xml_path, openmm.XmlSerializer.serialize(system))
    return pdb_path, xml_path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description="Generate alanine dipeptide (ACE-ALA-NME, Amber ff14SB): "
        f"{PDB_NAME} (minimised) and {XML_NAME} (serialised OpenMM System)."
    )
    parser.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent),
        help="output directory (default: this script's folder)",
    )
    parser.add_argument(
        "--solvent",
        choices=SOLVENTS,
        default="implicit",
        help="implicit = GB-OBC2 (implicit/obc2.xml), vacuum = none (default: implicit)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    args = parser.parse_args(argv)
    try:
        pdb_path, xml_path = write_alanine_dipeptide(args.out, args.solvent, args.force)
    except FileExistsError as exc:
        parser.error(str(exc))
    print(f"wrote {pdb_path}")
    print(f"wrote {xml_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
