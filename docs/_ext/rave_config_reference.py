"""Sphinx extension: the campaign configuration reference, generated from the dataclasses.

Two directives, used inside ``{eval-rst}`` blocks of the MyST pages:

``.. rave-config-reference::``
    One subsection per TOML section of a campaign (``[system]``, ``[sampling]``, ``[vae]``,
    ...), each a table of its keys: type and description from the ``Attributes`` section of the
    dataclass's numpydoc docstring, default from the dataclass field itself. The sections are
    those :func:`rave.campaign.config.config_from_dict` reads; ``[vae]`` joins
    :class:`rave.campaign.config.ModelConfig` and :class:`rave.learn.vae_config.VAEConfig`.
``.. rave-system-kinds::``
    A table of the registered ``[system] kind`` values (:mod:`rave.systems.registry`).

The build fails (an error, or a warning under ``-W``) when a dataclass field has no
documentation, a documented attribute is no field, or ``Config`` gains a section this
extension does not know, so the page cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import inspect

from docutils import nodes
from docutils.statemachine import StringList
from numpydoc.docscrape import NumpyDocString
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

LOGGER = logging.getLogger(__name__)

#: Config fields that are not a TOML section of their own: ``models`` is read from ``[vae]``,
#: ``vae`` holds the network's keys (VAEConfig), ``features`` is the [[features]] array of tables
NOT_A_SECTION = {"models", "vae", "features"}


def _sections() -> list[tuple[str, list[type]]]:
    """TOML section name -> the dataclasses whose fields are its keys, in the order read."""
    from rave.campaign import config
    from rave.learn.vae_config import VAEConfig

    config_fields = [f.name for f in dataclasses.fields(config.Config)]
    known = set(config._SECTIONS) | NOT_A_SECTION
    unknown = [name for name in config_fields if name not in known]
    if unknown:
        raise RuntimeError(f"rave.campaign.config.Config has field(s) {unknown} that the config "
                           f"reference does not know; add them to docs/_ext/"
                           f"rave_config_reference.py")
    sections = [(name, [cls]) for name, cls in config._SECTIONS.items()]
    sections.insert(2, ("vae", [config.ModelConfig, VAEConfig]))
    return sections


def _attribute_docs(cls: type) -> dict[str, tuple[str, str]]:
    """Field name -> (type text, description) from the numpydoc ``Attributes`` section."""
    docs = {}
    for parameter in NumpyDocString(inspect.getdoc(cls) or "")["Attributes"]:
        type_text = parameter.type.split(", default")[0].strip()
        description = " ".join(line.strip() for line in parameter.desc).strip()
        for name in parameter.name.split(","):
            docs[name.strip()] = (type_text, description)
    return docs


def _toml_value(value: object) -> str:
    """A default as it is written in TOML (``None``: the key is not set)."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "``true``" if value else "``false``"
    if isinstance(value, str):
        return f'``"{value}"``'
    if isinstance(value, tuple | list):
        return "``[" + ", ".join(str(v) for v in value) + "]``"
    return f"``{value!r}``"


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return _toml_value(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return _toml_value(field.default_factory())
    return "required"


def _cell(text: str) -> str:
    """One list-table cell: RST text, never empty."""
    return text if text else "\\ "


def section_rst(section: str, classes: list[type]) -> tuple[list[str], list[str]]:
    """The RST of one section (a title and a list-table), and the problems found.

    Parameters
    ----------
    section : str
        The TOML section's name, e.g. ``"sampling"``.
    classes : list of type
        The dataclasses whose fields are its keys.

    Returns
    -------
    lines : list of str
        RST lines.
    problems : list of str
        Fields without documentation and documented names that are no field.
    """
    title = f"[{section}]"
    lines = [title, "-" * len(title), ""]
    sources = ", ".join(f":class:`{cls.__module__}.{cls.__qualname__}`" for cls in classes)
    summary = (inspect.getdoc(classes[0]) or "").split("\n\n")[0].replace("\n", " ")
    lines += [summary, "", f"Generated from {sources}.", ""]
    lines += [".. list-table::", "   :header-rows: 1", "   :widths: 18 14 14 54", "",
              "   * - key", "     - type", "     - default", "     - meaning"]
    problems = []
    for cls in classes:
        docs = _attribute_docs(cls)
        fields = dataclasses.fields(cls)
        names = {f.name for f in fields}
        problems += [f"{cls.__qualname__}.{name} is documented but is no field"
                     for name in docs if name not in names]
        for field in fields:
            if field.name not in docs:
                problems.append(f"{cls.__qualname__}.{field.name} has no entry in the class "
                                f"docstring's Attributes section")
            type_text, description = docs.get(field.name, ("", ""))
            lines += [f"   * - ``{field.name}``", f"     - {_cell(type_text)}",
                      f"     - {_default(field)}", f"     - {_cell(description)}"]
    return lines + [""], problems


class ConfigReference(SphinxDirective):
    """``.. rave-config-reference::``: every section of a campaign config, one table each."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        lines = []
        for section, classes in _sections():
            section_lines, problems = section_rst(section, classes)
            for problem in problems:
                LOGGER.warning("config reference: %s", problem, location=self.get_location())
            lines += section_lines
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="rave.campaign.config"),
                                 container)
        return container.children


class SystemKinds(SphinxDirective):
    """``.. rave-system-kinds::``: the registered ``[system] kind`` values."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from rave.systems.registry import all_kinds

        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 20 30 34 16", "",
                 "   * - ``kind``", "     - module", "     - ``[system]`` keys of its own",
                 "     - reads ``[[features]]``"]
        for kind in all_kinds():
            module = inspect.getmodule(kind.build)
            keys = ", ".join(f"``{key}``" for key in kind.keys)
            if kind.options is not None:
                keys = ", ".join(filter(None, [keys] + [f"``{f.name}``" for f in
                                                        dataclasses.fields(kind.options)]))
            lines += [f"   * - ``{kind.name}``",
                      f"     - :mod:`{module.__name__ if module else '?'}`",
                      f"     - {_cell(keys)}",
                      f"     - {'yes' if kind.reads_features else 'no'}"]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="rave.systems.registry"),
                                 container)
        return container.children


def setup(app) -> dict:
    """Register the directives.

    Parameters
    ----------
    app : sphinx.application.Sphinx

    Returns
    -------
    dict
        Extension metadata: safe for parallel reading.
    """
    app.add_directive("rave-config-reference", ConfigReference)
    app.add_directive("rave-system-kinds", SystemKinds)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
