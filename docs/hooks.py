"""MkDocs hooks.

- Serve the benchmark plots from bench/plots/ without copying them into docs/:
  ``docs/benchmark.md`` shows the plots that ``bench/report.py`` draws into ``bench/plots/``
  as ``plots/<name>.png``; this adds each ``bench/plots/*.png`` to the site under that path.
- Fill ``<!-- settings-table -->`` in the API reference with the fields of
  ``oxicache.Settings``: name, environment variable, default and description, read from the
  model itself so that the table cannot drift from it.
- Tidy what mkdocstrings renders from Sphinx-style docstrings (roles, ``~`` paths and the
  ``::`` that introduces a literal block).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

BENCH = Path(__file__).resolve().parent.parent / "bench"


def on_files(files: Files, config: Any) -> Files:
    for plot in sorted((BENCH / "plots").glob("*.png")):
        files.append(
            File(
                f"plots/{plot.name}",
                src_dir=str(BENCH),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files


# Docstrings are written for Sphinx-style reading (":func:`configure`", ":class:`~a.B`");
# mkdocstrings renders the roles as text, so they are dropped here, and "~a.b.C" shows "C".
_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj):(?=<code>)")
_TILDE = re.compile(r"<code>~(?:[\w]+\.)*([\w]+)")


# reST ends a paragraph with "::" to introduce a literal block, which Markdown renders as a
# code block already: "text::" reads "text:", and a "::" alone is dropped.
_LITERAL_ALONE = re.compile(r"<p>\s*::\s*</p>\n?")
_LITERAL_SPACED = re.compile(r"\s+::</p>")
_LITERAL = re.compile(r"::</p>")


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    html = _TILDE.sub(r"<code>\1", _ROLE.sub("", html))
    html = _LITERAL_ALONE.sub("", html)
    html = _LITERAL_SPACED.sub("</p>", html)
    return _LITERAL.sub(":</p>", html)


SETTINGS_TABLE = "<!-- settings-table -->"
_DOUBLE_BACKTICKS = re.compile(r"``([^`]+)``")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if SETTINGS_TABLE in markdown:
        markdown = markdown.replace(SETTINGS_TABLE, settings_table())
    return markdown


def settings_table() -> str:
    """The fields of ``oxicache.Settings`` as a Markdown table."""
    from oxicache.config import DESCRIPTIONS, Settings

    rows = [
        "| setting | environment variable | default | |",
        "|---|---|---|---|",
    ]
    for field in dataclasses.fields(Settings):
        default = field.default
        shown = (
            f"{default:_}"
            if isinstance(default, int) and not isinstance(default, bool)
            else repr(default)
        )
        about = _DOUBLE_BACKTICKS.sub(r"`\1`", DESCRIPTIONS[field.name]).replace("|", "\\|")
        rows.append(f"| `{field.name}` | `OXICACHE_{field.name.upper()}` | `{shown}` | {about} |")
    return "\n".join(rows) + "\n"
