"""Sphinx configuration of the rave documentation.

Build (from the repository root; the ``docs`` extra of pyproject.toml installs the tools)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

``tests/test_docs.py`` runs the same build, warnings as errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))  # rave from this checkout, as the tests import it

import rave  # noqa: E402

project = "rave"
author = "the rave authors"
copyright = "the rave authors, MIT licence"  # noqa: A001 (Sphinx's name)
release = rave.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "rave_config_reference",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**/README.md"]

# MyST: $...$ and $$...$$ maths, ::: fences, and anchors for headings down to level 3 so that
# pages can link to [a section](page.md#section)
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc: the public names are those of each package's __all__ (automodule :members:
# follows __all__); members in source order; type hints stay in the signatures
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autosummary_generate = False
# numpydoc: no autosummary stub pages of its own for every class member
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = f"rave {release}"
html_static_path = ["_static"]
html_css_files = ["rave.css"]
html_theme_options = {
    "navigation_depth": 3,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_show_sourcelink = False
