"""Docstrings, checked on the AST: full numpydoc on the public API, a summary line elsewhere.

Two rules, and each problem the test reports names the rule its name falls under:

* **public** -- a name in the ``__all__`` of ``rave`` or of one of its subpackages
  (:data:`PACKAGES`), and the public methods (and nested public classes) of such a class, get
  full numpydoc:

  * a docstring;
  * a function or method with a parameter besides ``self``/``cls`` has a ``Parameters`` section
    naming each parameter (``*args``/``**kwargs`` by their name), or its docstring points to
    where they are documented (``See :class:`...``` / ``See :func:`...```: thin wrappers only);
  * a function or method with a return annotation other than ``None`` has a ``Returns`` or
    ``Yields`` section (properties are exempt: a one-line summary with the type is enough);
  * a class whose ``__init__`` takes parameters documents them in a ``Parameters`` section (of
    the class docstring, as numpydoc has it, or of ``__init__``'s);
  * a dataclass or ``NamedTuple`` has an ``Attributes`` section naming each public field;
  * each entry of a Parameters or Attributes section has a description under its
    ``name : type`` line;
  * the sections of a docstring come in numpydoc's order (Parameters, Attributes, Returns or
    Yields, ..., Raises, ..., See Also, Notes, References, Examples).

* **internal** -- every other function, class and method without a leading ``_`` (the names a
  module shares with the rest of the package) has a docstring with a summary line; sections it
  has are checked as above (descriptions, order), none is required.

A section is numpydoc's: its name on a line, underlined with dashes on the next.

The share of docstring and comment lines in rave/ stays under :data:`MAX_DOC_SHARE`: code is
read for what it does, and a docstring says what a reader of the code needs (units, shapes,
what is raised, why a default is what it is), not how a number was measured
(docs/benchmarks.md holds those).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Collection
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: the packages whose ``__all__`` is the public API (their folders, relative to the root)
PACKAGES = ("rave", "rave/stats", "rave/md", "rave/learn", "rave/campaign", "rave/analysis",
            "systems")

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


def _where(filename: str, node: ast.AST, name: str, public: bool) -> str:
    return f"{filename}:{node.lineno} {name} ({'public' if public else 'internal'})"


def _check_function(func, where: str, method: bool, public: bool, problems: list[str]) -> None:
    decorators = _decorator_names(func)
    if decorators & {"setter", "deleter", "overload"}:
        return  # documented on the property's getter / the implementation
    doc = ast.get_docstring(func)
    if not doc or not doc.splitlines()[0].strip():
        problems.append(f"{where}: no docstring" if not doc else f"{where}: no summary line")
        return
    if order := _order_problem(doc):
        problems.append(f"{where}: {order}")
    problems += [f"{where}: {problem}" for problem in _undescribed(doc)]
    if not public or decorators & {"property", "cached_property"}:
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


def _check_class(cls: ast.ClassDef, name: str, filename: str, public: bool,
                 problems: list[str]) -> None:
    where = _where(filename, cls, name, public)
    doc = ast.get_docstring(cls)
    if not doc or not doc.splitlines()[0].strip():
        problems.append(f"{where}: no docstring" if not doc else f"{where}: no summary line")
        doc = ""
    if order := _order_problem(doc):
        problems.append(f"{where}: {order}")
    problems += [f"{where}: {problem}" for problem in _undescribed(doc)]
    sections = _sections(doc)
    is_record = "dataclass" in _decorator_names(cls) or any(
        ast.unparse(base).endswith("NamedTuple") for base in cls.bases)
    fields = _fields(cls)
    if public and is_record and fields:
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
                if public and params and not (_SEE_ALSO.search(doc)
                                              or _SEE_ALSO.search(init_doc)):
                    documented = _entry_names(sections.get("Parameters", []))
                    documented |= _entry_names(_sections(init_doc).get("Parameters", []))
                    missing = [p for p in params if p not in documented]
                    if missing:
                        problems.append(f"{_where(filename, node, name + '.__init__', public)}"
                                        ": Parameters (of the class or of __init__) does not "
                                        f"name {', '.join(missing)}")
            elif not node.name.startswith("_"):
                method = f"{name}.{node.name}"
                _check_function(node, _where(filename, node, method, public), True, public,
                                problems)
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            _check_class(node, f"{name}.{node.name}", filename, public, problems)


def docstring_problems(source: str, filename: str = "<source>",
                       public: Collection[str] | None = None) -> list[str]:
    """What the rules above find wrong in ``source``: one line per problem.

    ``public`` names the module-level names under the public rule (None: every name without a
    leading ``_``); the others fall under the internal rule.
    """
    problems: list[str] = []
    for node in ast.parse(source, filename).body:
        if getattr(node, "name", "_").startswith("_"):
            continue
        is_public = public is None or node.name in public
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _check_function(node, _where(filename, node, node.name, is_public), False,
                            is_public, problems)
        elif isinstance(node, ast.ClassDef):
            _check_class(node, node.name, filename, is_public, problems)
    return problems


def _module_path(package_dir: str, module: str) -> str:
    """The file of ``module`` ("rave.md.opes", or "opes" relative to the package)."""
    parts = module.split(".")
    if parts[0] == "rave" and len(parts) > 1 and parts[1] == "systems":
        parts = ["systems", *parts[2:]]
    elif parts[0] != "rave":
        return f"{package_dir}/{'/'.join(parts)}.py"
    return "/".join(parts) + ".py"


def public_names() -> dict[str, set[str]]:
    """File -> the module-level names it defines that the ``__all__`` of :data:`PACKAGES` export.

    Read from each package's ``__init__.py``: a name comes from a relative import
    (``from .weights import as_log_weights``) or from the package's ``_LAZY`` table of
    name -> module.
    """
    public: dict[str, set[str]] = {}
    for package_dir in PACKAGES:
        tree = ast.parse((ROOT / package_dir / "__init__.py").read_text())
        exported: list[str] = []
        source_of: dict[str, str] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                for alias in node.names:
                    source_of[alias.asname or alias.name] = _module_path(package_dir,
                                                                         node.module)
            targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(
                node, "targets", [])
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if "__all__" in names:
                exported = list(ast.literal_eval(node.value))
            elif "_LAZY" in names:
                for name, module in ast.literal_eval(node.value).items():
                    source_of[name] = _module_path(package_dir, module)
        for name in exported:
            if name in source_of:
                public.setdefault(_defining_file(source_of[name], name), set()).add(name)
    return public


def _defined_names(tree: ast.Module) -> set[str]:
    """The module-level names ``tree`` defines (functions, classes, assigned names)."""
    names = {node.name for node in tree.body
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    for node in tree.body:
        targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(
            node, "targets", [])
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _defining_file(path: str, name: str) -> str:
    """The file that defines ``name``, following relative re-exports from ``path``."""
    if not (ROOT / path).is_file() and (ROOT / path[:-3] / "__init__.py").is_file():
        path = f"{path[:-3]}/__init__.py"  # a package
    tree = ast.parse((ROOT / path).read_text())
    if name in _defined_names(tree):
        return path
    for node in tree.body:
        if (isinstance(node, ast.ImportFrom) and node.level and node.module
                and name in {alias.name for alias in node.names}):
            package = Path(path).parents[node.level - 1].as_posix()
            return _defining_file(f"{package}/{node.module.replace('.', '/')}.py", name)
    return path


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
def test_public_names_have_numpydoc_and_others_a_summary(path):
    public = public_names().get(path, set())
    problems = docstring_problems((ROOT / path).read_text(), path, public)
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
    ("def f(x):\n    return x\n", "f (public): no docstring"),
    ("class C:\n    pass\n", "C (public): no docstring"),
    ('class C:\n    """C."""\n\n    def m(self):\n        pass\n', "C.m (public): no docstring"),
    ('def f(x):\n    """Summary."""\n', "f (public): no Parameters section"),
    ('def f() -> int:\n    """Summary."""\n    return 1\n',
     "f (public): no Returns (or Yields) section"),
    ('def f(x, y):\n    """Summary.\n\n    Parameters\n    ----------\n    x : int\n        X.\n'
     '    """\n', "f (public): Parameters does not name y"),
    ('class C:\n    """C."""\n\n    def __init__(self, n):\n        self.n = n\n',
     "C.__init__ (public): Parameters (of the class or of __init__) does not name n"),
    ('from dataclasses import dataclass\n\n\n@dataclass\nclass D:\n    """D."""\n\n    n: int\n',
     "D (public): no Attributes section"),
    ('from typing import NamedTuple\n\n\nclass T(NamedTuple):\n    """T.\n\n    Attributes\n'
     '    ----------\n    a : int\n        A.\n    """\n\n    a: int\n    b: int\n',
     "T (public): Attributes does not name b"),
    ('def f(x):\n    """S.\n\n    Raises\n    ------\n    ValueError\n        V.\n\n'
     '    Parameters\n    ----------\n    x : int\n        X.\n    """\n',
     "f (public): sections out of numpydoc order (Raises, Parameters)"),
    ('def f(x, y):\n    """S.\n\n    Parameters\n    ----------\n    x : int\n'
     '    y : int\n        Y.\n    """\n', "f (public): Parameters entry 'x' has no description"),
])
def test_the_checker_reports_a_missing_docstring_or_section(source, expected):
    problems = docstring_problems(source)
    assert len(problems) == 1 and problems[0].endswith(expected), problems


def test_the_checker_ignores_private_names_and_prose_mentions_of_a_section():
    source = ('def _f(x):\n    return x\n\n\ndef g(x):\n    """Parameters: x, a number."""\n')
    assert docstring_problems(source) == ["<source>:5 g (public): no Parameters section"]


def test_the_checker_asks_an_internal_name_for_a_summary_only():
    source = ('def helper(x) -> int:\n    """One line."""\n    return x\n\n\n'
              'def bare(x):\n    return x\n\n\nclass Tool:\n    """A tool."""\n\n'
              '    def use(self, y):\n        return y\n')
    assert docstring_problems(source, public=()) == [
        "<source>:6 bare (internal): no docstring",
        "<source>:13 Tool.use (internal): no docstring"]
    assert "<source>:1 helper (public): no Parameters section" in docstring_problems(
        source, public=("helper",))


def test_every_exported_name_is_found_where_it_is_defined():
    found = public_names()
    for package_dir in PACKAGES:
        tree = ast.parse((ROOT / package_dir / "__init__.py").read_text())
        exported = next(ast.literal_eval(node.value) for node in tree.body
                        if isinstance(node, ast.Assign)
                        and any(getattr(t, "id", "") == "__all__" for t in node.targets))
        for name in exported:
            if name == "__version__":
                continue
            files = [path for path, names in found.items() if name in names]
            assert files, f"{package_dir}: {name} of __all__ has no module"
            defined = _defined_names(ast.parse((ROOT / files[0]).read_text()))
            assert name in defined, f"{name} is not defined in {files[0]}"


# --- the share of docstring and comment lines --------------------------------------------

#: the most of rave/'s lines that may be docstrings or comments (a fraction of all lines)
MAX_DOC_SHARE = 0.30
#: modules of rave/ the share leaves out (none: it covers every module)
SHARE_EXCLUDED: tuple[str, ...] = ()


def doc_and_comment_lines(source: str) -> tuple[int, int]:
    """(docstring and comment lines, all lines) of ``source``.

    The count: every line from the first to the last line of a docstring (of the module, a
    class, a function or a method) plus every line whose first non-blank character starts a
    comment, each line counted once; over all lines of the file, blank ones included.
    """
    tree = ast.parse(source)
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                lines.update(range(first.lineno, first.end_lineno + 1))
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and not token.line[:token.start[1]].strip():
            lines.add(token.start[0])
    return len(lines), len(source.splitlines())


def test_the_line_count_sees_docstrings_and_comments_only():
    source = ('"""Module.\n\nMore.\n"""\n\n# a comment\nx = 1  # trailing: code\n\n\n'
              'def f():\n    """F."""\n    s = """not a docstring"""\n    return s\n')
    assert doc_and_comment_lines(source) == (6, 13)


def test_docstrings_and_comments_stay_under_the_share_of_rave():
    counted = [p for p in sorted((ROOT / "rave").rglob("*.py"))
               if p.relative_to(ROOT).as_posix() not in SHARE_EXCLUDED]
    doc = total = 0
    for path in counted:
        d, n = doc_and_comment_lines(path.read_text())
        doc, total = doc + d, total + n
    share = doc / total
    print(f"docstring+comment lines {doc} of {total} in {len(counted)} modules: {share:.1%}")
    assert share <= MAX_DOC_SHARE, (
        f"{share:.1%} of the lines of rave/ are "
        f"docstrings or comments ({doc} of {total}); at most {MAX_DOC_SHARE:.0%}: shorten "
        f"the docstrings of internal names to a summary line")
