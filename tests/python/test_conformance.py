"""RFC 9111 conformance: the HTTP caching test suite behind cache-tests.fyi (npm
``http-cache-tests``) runs against ``oxicache.CacheMiddleware`` in front of the suite's own
origin, and no "required" test that passed in tests/conformance/baseline.json may fail now.

It runs tests/conformance/run.py in a subprocess (about 20-30 s; the first run also installs the
suite from the npm registry into tests/conformance/.node/). Deliberately unmarked: it belongs to
the normal ``pytest`` run. Skipped when node or npm is missing, when the suite cannot be installed
(run.py exits 77), or while ``oxicache.CacheMiddleware`` does not exist yet. The same run by hand,
with the tables: ``make conformance``.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "tests" / "conformance" / "run.py"
UNAVAILABLE = 77


def _middleware_missing() -> bool:
    try:
        return not hasattr(importlib.import_module("oxicache"), "CacheMiddleware")
    except ImportError:
        return True


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="node and npm are needed"
)
@pytest.mark.skipif(_middleware_missing(), reason="oxicache.CacheMiddleware does not exist yet")
def test_http_cache_tests_required_do_not_regress(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(RUNNER),
            "--middleware",
            "oxicache:CacheMiddleware",
            "--results",
            str(tmp_path / "results.json"),
            "--timeout",
            "300",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=360,
        check=False,
    )
    if proc.returncode == UNAVAILABLE:
        pytest.skip(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "unavailable")
    assert proc.returncode == 0, f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
