"""bench/report.py renders a raw run (bench/SCHEMA.md) into RESULTS.md and PNG plots; the
benchmark harness itself still starts. Nothing here runs a benchmark."""

# The report writes – for "no figure" and × for ratios; the expected lines quote it.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
REPORT = REPO / "bench" / "report.py"
RUNNER = REPO / "bench" / "run.py"
SAMPLE = Path(__file__).resolve().parent / "data" / "bench_sample.json"

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = ("throughput_rps.png", "inproc_us.png", "growth_rss.png")
MARKERS = (
    "<!-- HEADLINE:BEGIN -->",
    "<!-- HEADLINE:END -->",
    "<!-- GENERATED:BEGIN -->",
    "<!-- GENERATED:END -->",
)
SECTIONS = (
    "### Goals",
    "### Cache-hit throughput and latency",
    "### In-process cost of one hit",
    "### Cold-key stampede",
    "### Memory growth over distinct keys",
    "### Backend stopped under load",
    "### HTTP safety checks",
)


@pytest.fixture
def matplotlib() -> None:
    pytest.importorskip("matplotlib")


def run_report(run_json: Path, out: Path, plots: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(REPORT), str(run_json), "--out", str(out), "--plots", str(plots)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def between(text: str, begin: str, end: str) -> str:
    return text[text.index(begin) + len(begin) : text.index(end)]


def test_sample_follows_the_schema() -> None:
    run = json.loads(SAMPLE.read_text(encoding="utf-8"))
    assert {"started", "quick", "args", "env", "versions", "targets", "goals"} <= run.keys()
    names = {t["name"] for t in run["targets"]}
    assert {"raw-asgi", "fastapi-prebuilt", "fastapi-uncached", "oxicache/memory"} <= names
    for t in run["targets"]:
        assert t.keys() == {"name", "lib", "backend", "venv", "kind", "variant"}
    phases = ("throughput", "inproc", "stampede", "growth", "down", "checks")
    for p in phases:
        assert set(run[p]) <= names, p
    # A quick run measures only some phases for some targets; the sample is like that.
    assert any(set(run[p]) != names for p in phases)
    for g in run["goals"]:
        assert g.keys() == {"name", "value", "target", "met"}


@pytest.mark.usefixtures("matplotlib")
def test_report_writes_tables_headline_and_plots(tmp_path: Path) -> None:
    out, plots = tmp_path / "RESULTS.md", tmp_path / "plots"
    proc = run_report(SAMPLE, out, plots)
    text = out.read_text(encoding="utf-8")

    for m in MARKERS:
        assert text.count(m) == 1, m
    assert text.index("<!-- HEADLINE:END -->") < text.index("<!-- GENERATED:BEGIN -->")
    generated = between(text, "<!-- GENERATED:BEGIN -->", "<!-- GENERATED:END -->")
    positions = [generated.index(s) for s in SECTIONS]
    assert positions == sorted(positions), "goals first, then the phases in order"

    # The headline: three lines on stdout, the same three in the block at the top.
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("oxicache/memory hit: 0.93× FastAPI-prebuilt req/s")
    assert lines[1].startswith("In process: +6.3 µs per hit")
    assert lines[2].startswith("Best peer on memory: fastapi-cachex/memory at 0.62×")
    block = between(text, "<!-- HEADLINE:BEGIN -->", "<!-- HEADLINE:END -->")
    assert block.strip().splitlines() == [f"- {line}" for line in lines]

    # Tables: the figures of the sample, ✓/✗, and "–" where a phase skipped a target.
    assert "| **oxicache/memory** | memory | 10,310 | 9,920–10,540 | 3.05 | 6.30 | 0.93× |" in text
    assert "| decorator hit, memory, req/s vs FastAPI-prebuilt | 0.93 | >= 0.90 | ✓ |" in text
    assert "| middleware hit, memory, req/s vs raw ASGI | – | >= 0.60 | – |" in text
    assert "| **oxicache/memory** | memory | 50 | 1 | 1, 1, 1 | 200×150 |" in text
    assert "| fastapi-cachex/memory | memory | 20,000 | +62.2 | – | – | – | – |" in text
    assert (
        "| **oxicache/memory** | memory | 20,000 | +45.9 | 20,000 | 42.8 | 1.07× | 256.0 |" in text
    )
    assert "| cashews/redis | redis | 200×1,412 | 11.80 | 34.50 | 5,242,880 | ✓ | ✓ |" in text
    assert "| cashews/redis | redis | ✗ | ✗ | ✗ | ✗ | – | 0/4 |" in text

    for name in PLOTS:
        png = plots / name
        assert png.read_bytes()[:8] == PNG_MAGIC, name
        assert f"]({'plots/' + name})" in text, "linked relative to RESULTS.md"


@pytest.mark.usefixtures("matplotlib")
def test_rerun_keeps_the_hand_written_text(tmp_path: Path) -> None:
    out, plots = tmp_path / "RESULTS.md", tmp_path / "plots"
    out.write_text(
        "# Our benchmark\n\nIntro written by hand.\n\n"
        "<!-- GENERATED:BEGIN -->\nstale tables\n<!-- GENERATED:END -->\n\n"
        "## Findings\n\nAnalysis written by hand.\n",
        encoding="utf-8",
    )
    run_report(SAMPLE, out, plots)
    first = out.read_text(encoding="utf-8")
    run_report(SAMPLE, out, plots)
    second = out.read_text(encoding="utf-8")

    assert first == second, "re-running on the same JSON changes nothing"
    assert second.startswith("# Our benchmark\n\n<!-- HEADLINE:BEGIN -->")
    assert "Intro written by hand." in second
    assert second.rstrip().endswith("## Findings\n\nAnalysis written by hand.")
    assert "stale tables" not in second
    for m in MARKERS:
        assert second.count(m) == 1, m


@pytest.mark.usefixtures("matplotlib")
@pytest.mark.parametrize(
    "run",
    [
        {},
        {"started": "20261201T000000Z", "throughput": {"raw-asgi": {"median_rps": 30000.0}}},
        {
            "targets": [{"name": "oxicache/memory", "kind": "cache"}],
            "inproc": {"oxicache/memory": {"us_per_call_median": None, "batches_us": "junk"}},
            "growth": {"oxicache/memory": {"points": [[0, 40.0], "junk"], "stored_bytes": None}},
            "checks": {"oxicache/memory": {"etag_304": True, "future_check": False}},
            "goals": [{"name": "only a name"}, "junk"],
        },
    ],
    ids=["empty", "throughput-only", "odd-values"],
)
def test_partial_runs_render_with_dashes(tmp_path: Path, run: dict[str, Any]) -> None:
    src = tmp_path / "run.json"
    src.write_text(json.dumps(run), encoding="utf-8")
    out, plots = tmp_path / "RESULTS.md", tmp_path / "plots"
    proc = run_report(src, out, plots)

    text = out.read_text(encoding="utf-8")
    assert len(proc.stdout.strip().splitlines()) == 3
    assert "_Not measured in this run._" in text
    assert "–" in text
    for name in PLOTS:
        assert (plots / name).read_bytes()[:8] == PNG_MAGIC, name


def test_harness_starts() -> None:
    """The smoke test of the runner: the full harness needs wrk and venvs, so only --help."""
    if not RUNNER.exists():
        pytest.skip("bench/run.py does not exist yet")
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage" in proc.stdout.lower()
