"""MkDocs hooks: serve the benchmark plots from bench/plots/ without copying them into docs/.

``docs/benchmark.md`` includes ``bench/RESULTS.md`` (pymdownx.snippets), whose images point at
``plots/<name>.png``; this adds each ``bench/plots/*.png`` to the site under that path.
"""

from __future__ import annotations

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
