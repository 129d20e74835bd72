"""The benchmark harness still starts and produces a report, on a tiny run.

No wrk, no redis, no peer venvs: ``bench/run.py --phases inproc --only oxicache
--python-current`` calls the oxicache targets (decorator, CacheMiddleware around the raw ASGI
app, CacheMiddleware around the decorator app) and the raw-ASGI / FastAPI-prebuilt baselines in
process under this interpreter, then ``bench/report.py`` renders that JSON into a temporary
directory. A few seconds; the figures of such a run mean nothing (debug build, no pinning).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.python.servers import free_port

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "bench" / "run.py"
REPORT = REPO / "bench" / "report.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = ("throughput_rps.png", "inproc_us.png", "growth_rss.png")
TARGETS = (
    "raw-asgi",
    "fastapi-prebuilt",
    "oxicache/memory",
    "oxicache[middleware]/memory",
    "oxicache[mw+fastapi]/memory",
)


def run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BENCH_PIN": "0",
        "MPLBACKEND": "Agg",
        # Ports of its own: a full benchmark may be running on the default ones.
        "BENCH_REDIS_PORT": str(free_port()),
        "BENCH_VICTIM_REDIS_PORT": str(free_port()),
        "BENCH_MEMCACHED_PORT": str(free_port()),
    }
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
        check=False,
    )


def test_tiny_run_produces_a_report(tmp_path: Path) -> None:
    # What the bench apps and the report import; all come with the project's test extra.
    for module in ("fastapi", "pydantic", "matplotlib"):
        pytest.importorskip(module)
    out = tmp_path / "run.json"
    proc = run(
        [
            str(RUNNER),
            "--quick",
            "--phases",
            "inproc",
            "--only",
            "oxicache",
            "--python-current",
            "--inproc-calls",
            "100",
            "--inproc-batches",
            "2",
            "--out",
            str(out),
        ],
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out), "last stdout line: the JSON path"

    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["args"]["python_current"] is True
    assert result["args"]["phases"] == ["inproc"]
    assert not result.get("errors"), result.get("errors")
    names = {t["name"] for t in result["targets"]}
    assert set(TARGETS) <= names
    inproc = result["inproc"]
    for name in TARGETS:
        assert name in inproc, (name, proc.stderr[-2000:])
        assert inproc[name]["statuses"] == [200, 200, 200], name
        assert inproc[name]["us_per_call_median"] > 0, name
    for name in ("oxicache/memory", "oxicache[middleware]/memory", "oxicache[mw+fastapi]/memory"):
        assert inproc[name]["handler_runs"] == 0, f"{name}: every timed call is a hit"
    for name in ("oxicache[middleware]/memory", "oxicache[mw+fastapi]/memory"):
        assert inproc[name]["us_added_vs_raw"] is not None, name
    assert any(g["name"].startswith("decorator hit") for g in result["goals"])

    md, plots = tmp_path / "RESULTS.md", tmp_path / "plots"
    rep = run([str(REPORT), str(out), "--out", str(md), "--plots", str(plots)], timeout=120)
    assert rep.returncode == 0, rep.stderr[-2000:]
    text = md.read_text(encoding="utf-8")
    for marker in ("<!-- HEADLINE:BEGIN -->", "<!-- GENERATED:BEGIN -->", "<!-- GENERATED:END -->"):
        assert text.count(marker) == 1, marker
    assert "| **oxicache[middleware]/memory** |" in text
    for name in PLOTS:
        assert (plots / name).read_bytes()[:8] == PNG_MAGIC, name
