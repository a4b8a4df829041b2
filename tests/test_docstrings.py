"""numpydoc on every public name: a check on the AST of the sources.

The rules, for every public module-level function and class (a name without a leading ``_``)
and every public method of a public class (nested public classes too):

* it has a docstring;
* a function or method with a parameter besides ``self``/``cls`` has a ``Parameters`` section
  naming each parameter (``*args``/``**kwargs`` by their name), or its docstring points to
  where they are documented (``See :class:`...``` / ``See :func:`...```: thin wrappers only);
* a function or method with a return annotation other than ``None`` has a ``Returns`` or
  ``Yields`` section (properties are exempt: a one-line summary with the type is enough);
* a class whose ``__init__`` takes parameters documents them in a ``Parameters`` section (of the
  class docstring, as numpydoc has it, or of ``__init__``'s);
* a dataclass or ``NamedTuple`` has an ``Attributes`` section naming each public field;
* each entry of a Parameters or Attributes section has a description under its
  ``name : type`` line;
* the sections of a docstring come in numpydoc's order (Parameters, Attributes, Returns or
  Yields, ..., Raises, ..., See Also, Notes, References, Examples).

A section is numpydoc's: its name on a line, underlined with dashes on the next.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The files checked, as path prefixes relative to the repository root: every module of rave/
# and systems/ (test_every_module_is_checked keeps it so).
CHECKED = (
    "rave/__init__.py",
    "rave/bias_grid.py",
    "rave/errors.py",
    "rave/files.py",
    "rave/_lazy.py",
    "rave/cli.py",
    "rave/units.py",
    "rave/analysis/",
    "rave/campaign/",
    "rave/learn/",
    "rave/md/",
    "rave/stats/",
    "systems/",
)

#: numpydoc's order of the sections (those present must come in this order)
_ORDER = ("Parameters", "Attributes", "Returns", "Yields", "Receives", "Other Parameters",
          "Raises", "Warns", "Warnings", "See Also", "Notes", "References", "Examples")
_SEE_ALSO = re.compile(r"See :(class|func):`[^`]+`")
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")


def _sections(doc: str) -> dict[str, list[str]]:
    """The numpydoc sections of ``doc``: name -> the lines of its body."""
    lines = doc.expandtabs().splitlines()
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    i = 0
    while i < len(lines):
        if i + 1 < len(lines) and lines[i].strip() and _UNDERLINE.match(lines[i + 1]):
            current = sections.setdefault(lines[i].strip(), [])
            i += 2
            continue
        if current is not None:
            current.append(lines[i])
        i += 1
    return sections


def _order_problem(doc: str) -> str | None:
    """Which numpydoc sections of ``doc`` are out of order, or None."""
    known = [name for name in _sections(doc) if name in _ORDER]
    ranks = [_ORDER.index(name) for name in known]
    if ranks != sorted(ranks):
        return f"sections out of numpydoc order ({', '.join(known)})"
    return None


def _entry_names(body: list[str]) -> set[str]:
    """The names a Parameters/Attributes section documents (``a, b : float`` names a and b)."""
    entries = [line for line in body if line.strip()]
    if not entries:
        return set()
    indent = min(len(line) - len(line.lstrip()) for line in entries)
    names: set[str] = set()
    for line in entries:
        if len(line) - len(line.lstrip()) == indent:
            head = line.strip().split(" : ")[0].rstrip(":")
            names.update(name.strip().lstrip("*") for name in head.split(","))
    return names


def _undescribed(doc: str) -> list[str]:
    """Entries of the Parameters/Attributes sections of ``doc`` with no description under them."""
    problems = []
    for name, body in _sections(doc).items():
        if name not in ("Parameters", "Attributes"):
            continue
        lines = [line for line in body if line.strip()]
        if not lines:
            continue
        indent = min(len(line) - len(line.lstrip()) for line in lines)
        for line, after in zip(lines, [*lines[1:], ""], strict=True):
            if len(line) - len(line.lstrip()) == indent and (
                    len(after) - len(after.lstrip()) <= indent):
                problems.append(f"{name} entry {line.strip().split(' : ')[0]!r} has no "
                                f"description")
    return problems


def _parameters(func: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> list[str]:
    """The parameter names of ``func``, without a method's ``self``/``cls``."""
    args = func.args
    names = [a.arg for a in (*args.posonlyargs, *args.args)]
    if method and names and names[0] in ("self", "cls"):
        names = names[1:]
    names += [a.arg for a in args.kwonlyargs]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return names


def _decorator_names(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> set[str]:
    names = set()
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Attribute):
            names.add(target.attr)
        elif isinstance(target, ast.Name):
            names.add(target.id)
    return names


def _check_function(func, where: str, method: bool, problems: list[str]) -> None:
    decorators = _decorator_names(func)
    if decorators & {"setter", "deleter", "overload"}:
        return  # documented on the property's getter / the implementation
    doc = ast.get_docstring(func)
    if not doc:
        problems.append(f"{where}: no docstring")
        return
    if order := _order_problem(doc):
        problems.append(f"{where}: {order}")
    problems += [f"{where}: {problem}" for problem in _undescribed(doc)]
    if decorators & {"property", "cached_property"}:
        return
    sections = _sections(doc)
    params = _parameters(func, method)
    if params and not _SEE_ALSO.search(doc):
        if "Parameters" not in sections:
            problems.append(f"{where}: no Parameters section")
        else:
            missing = [p for p in params if p not in _entry_names(sections["Parameters"])]
            if missing:
                problems.append(f"{where}: Parameters does not name {', '.join(missing)}")
    returns = func.returns
    if returns is not None and not (isinstance(returns, ast.Constant) and returns.value is None):
        if "Returns" not in sections and "Yields" not in sections:
            problems.append(f"{where}: no Returns (or Yields) section")


def _fields(cls: ast.ClassDef) -> list[str]:
    return [s.target.id for s in cls.body if isinstance(s, ast.AnnAssign)
            and isinstance(s.target, ast.Name) and not s.target.id.startswith("_")
            and "ClassVar" not in ast.unparse(s.annotation)]


def _check_class(cls: ast.ClassDef, where: str, filename: str, problems: list[str]) -> None:
    name = where.split(" ", 1)[1]  # the class's dotted name, after "file:line "
    doc = ast.get_docstring(cls)
    if not doc:
        problems.append(f"{where}: no docstring")
        doc = ""
    if order := _order_problem(doc):
        problems.append(f"{where}: {order}")
    problems += [f"{where}: {problem}" for problem in _undescribed(doc)]
    sections = _sections(doc)
    is_record = "dataclass" in _decorator_names(cls) or any(
        ast.unparse(base).endswith("NamedTuple") for base in cls.bases)
    fields = _fields(cls)
    if is_record and fields:
        documented = _entry_names(sections.get("Attributes", []))
        documented |= _entry_names(sections.get("Parameters", []))
        if "Attributes" not in sections:
            problems.append(f"{where}: no Attributes section")
        else:
            missing = [f for f in fields if f not in documented]
            if missing:
                problems.append(f"{where}: Attributes does not name {', '.join(missing)}")
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name == "__init__":
                params = _parameters(node, method=True)
                init_doc = ast.get_docstring(node) or ""
                if params and not (_SEE_ALSO.search(doc) or _SEE_ALSO.search(init_doc)):
                    documented = _entry_names(sections.get("Parameters", []))
                    documented |= _entry_names(_sections(init_doc).get("Parameters", []))
                    missing = [p for p in params if p not in documented]
                    if missing:
                        problems.append(f"{filename}:{node.lineno} {name}.__init__: "
                                        "Parameters (of the class or of __init__) does not "
                                        f"name {', '.join(missing)}")
            elif not node.name.startswith("_"):
                _check_function(node, f"{filename}:{node.lineno} {name}.{node.name}", True,
                                problems)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            _check_class(node, f"{filename}:{node.lineno} {name}.{node.name}", filename,
                         problems)


def docstring_problems(source: str, filename: str = "<source>") -> list[str]:
    """What the rules above find wrong in ``source``: one line per problem."""
    problems: list[str] = []
    for node in ast.parse(source, filename).body:
        if getattr(node, "name", "_").startswith("_"):
            continue
        where = f"{filename}:{node.lineno} {node.name}"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _check_function(node, where, False, problems)
        elif isinstance(node, ast.ClassDef):
            _check_class(node, where, filename, problems)
    return problems


def _checked_files() -> list[str]:
    paths = sorted((ROOT / "rave").rglob("*.py")) + sorted((ROOT / "systems").rglob("*.py"))
    relative = [p.relative_to(ROOT).as_posix() for p in paths]
    return [p for p in relative if p.startswith(CHECKED)]


def test_every_checked_prefix_names_files():
    files = _checked_files()
    for prefix in CHECKED:
        assert any(f.startswith(prefix) for f in files), prefix


def test_every_module_is_checked():
    paths = sorted((ROOT / "rave").rglob("*.py")) + sorted((ROOT / "systems").rglob("*.py"))
    unchecked = [p.relative_to(ROOT).as_posix() for p in paths]
    unchecked = [p for p in unchecked if not p.startswith(CHECKED)]
    assert not unchecked, f"add to CHECKED: {unchecked}"


@pytest.mark.parametrize("path", _checked_files())
def test_public_names_have_numpydoc_docstrings(path):
    problems = docstring_problems((ROOT / path).read_text(), path)
    assert not problems, "\n".join(problems)


# --- the checker itself, on small sources, so that it cannot pass by finding nothing -----

GOOD = '''
from dataclasses import dataclass


def scaled(x: float, *values, factor: float = 2.0, **options) -> float:
    """x times factor.

    Parameters
    ----------
    x : float
        The value, in nm.
    *values : float
        Ignored.
    factor : float, optional
        The factor.
    **options
        Ignored.

    Returns
    -------
    float
        ``x * factor``, in nm.
    """
    return x * factor


def wrapper(x):
    """A thin wrapper. See :func:`scaled`."""
    return scaled(x)


def nothing() -> None:
    """Does nothing."""


@dataclass
class Record:
    """A record.

    Attributes
    ----------
    a, b : int
        Two numbers.
    """

    a: int
    b: int

    @property
    def total(self) -> int:
        """int: a + b."""
        return self.a + self.b

    def _private(self, y):
        return y


class Thing:
    """A thing.

    Parameters
    ----------
    size : float
        Its size, in nm.
    """

    def __init__(self, size):
        self.size = size

    def grow(self, by: float) -> Thing:
        """The thing, grown.

        Parameters
        ----------
        by : float
            By how much, in nm.

        Yields
        ------
        Thing
            A grown thing.
        """
        yield Thing(self.size + by)


def _helper(x):
    return x
'''


def test_the_checker_passes_a_documented_source():
    assert docstring_problems(GOOD) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("def f(x):\n    return x\n", "f: no docstring"),
    ("class C:\n    pass\n", "C: no docstring"),
    ('class C:\n    """C."""\n\n    def m(self):\n        pass\n', "C.m: no docstring"),
    ('def f(x):\n    """Summary."""\n', "f: no Parameters section"),
    ('def f() -> int:\n    """Summary."""\n    return 1\n', "f: no Returns (or Yields) section"),
    ('def f(x, y):\n    """Summary.\n\n    Parameters\n    ----------\n    x : int\n        X.\n'
     '    """\n', "f: Parameters does not name y"),
    ('class C:\n    """C."""\n\n    def __init__(self, n):\n        self.n = n\n',
     "C.__init__: Parameters (of the class or of __init__) does not name n"),
    ('from dataclasses import dataclass\n\n\n@dataclass\nclass D:\n    """D."""\n\n    n: int\n',
     "D: no Attributes section"),
    ('from typing import NamedTuple\n\n\nclass T(NamedTuple):\n    """T.\n\n    Attributes\n'
     '    ----------\n    a : int\n        A.\n    """\n\n    a: int\n    b: int\n',
     "T: Attributes does not name b"),
    ('def f(x):\n    """S.\n\n    Raises\n    ------\n    ValueError\n        V.\n\n'
     '    Parameters\n    ----------\n    x : int\n        X.\n    """\n',
     "f: sections out of numpydoc order (Raises, Parameters)"),
    ('def f(x, y):\n    """S.\n\n    Parameters\n    ----------\n    x : int\n'
     '    y : int\n        Y.\n    """\n', "f: Parameters entry 'x' has no description"),
])
def test_the_checker_reports_a_missing_docstring_or_section(source, expected):
    problems = docstring_problems(source)
    assert len(problems) == 1 and problems[0].endswith(expected), problems


def test_the_checker_ignores_private_names_and_prose_mentions_of_a_section():
    source = ('def _f(x):\n    return x\n\n\ndef g(x):\n    """Parameters: x, a number."""\n')
    assert docstring_problems(source) == ["<source>:5 g: no Parameters section"]
