"""MkDocs hooks: serve the benchmark plots from bench/plots/ without copying them into docs/.

``docs/benchmark.md`` shows the plots that ``bench/report.py`` draws into ``bench/plots/`` as
``plots/<name>.png``; this adds each ``bench/plots/*.png`` to the site under that path.
"""

from __future__ import annotations

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


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    return _TILDE.sub(r"<code>\1", _ROLE.sub("", html))
