"""bench/report.py renders a raw run (bench/SCHEMA.md) into RESULTS.md and PNG plots; the
benchmark harness itself still starts. Nothing here runs a benchmark."""

# The report writes – for "no figure" and × for ratios; the expected lines quote it.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import json
import re
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


# --- the figures of README.md and docs/ (bench/summary.py) -------------------------------------

SUMMARY = REPO / "bench" / "summary.py"
PUBLISHED = REPO / "bench" / "published.json"


def load_summary() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_summary", SUMMARY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_summary"] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


summary = load_summary()
# CHANGELOG.md is a page of the site too (docs/changelog.md includes it).
USER_PAGES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").rglob("*.md"))]


def test_published_files_are_committed_runs() -> None:
    spec = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    for key in ("main", "remote_shipped", "remote_gc_tuned", "gc_counts", "conformance"):
        path = (PUBLISHED.parent / spec[key]).resolve()
        assert path.is_file(), f"{key}: {path}"
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", str(path)], cwd=REPO, capture_output=True
        )
        assert tracked.returncode == 0, f"{key}: {path} is not committed"


@pytest.mark.parametrize("page", [*USER_PAGES, REPO / "bench" / "RESULTS.md"], ids=lambda p: p.name)
def test_generated_blocks_are_up_to_date(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    fresh = summary.render(text, summary.Sources.load(), str(page))
    assert fresh == text, f"{page.relative_to(REPO)} is out of date: run python bench/summary.py"


def test_every_block_is_used_and_every_marker_closes() -> None:
    used = set()
    for page in [*USER_PAGES, REPO / "bench" / "RESULTS.md"]:
        text = page.read_text(encoding="utf-8")
        found = [m["name"] for m in summary.blocks_of(text)]
        assert text.count("<!-- results:begin ") == len(found), page
        assert text.count("<!-- results:end -->") == len(found), page
        used.update(found)
    assert used == set(summary.BLOCKS), f"never shown: {set(summary.BLOCKS) - used}"


def test_conformance_record_agrees_with_the_baseline() -> None:
    spec = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    record = json.loads((PUBLISHED.parent / spec["conformance"]).read_text(encoding="utf-8"))
    baseline = json.loads(
        (PUBLISHED.parent / spec["conformance_baseline"]).read_text(encoding="utf-8")
    )
    assert record["suite"] == baseline["suite"]
    required = baseline["runs"][record["middleware"]]["summary"]["required"]
    assert record["required_tests"] == required["tests"]
    assert record["oxicache"]["failed"] == required["failed"]
    assert record["oxicache"]["passed"] == required["passed"]
    assert len(record["oxicache"]["failed_ids"]) == required["failed"]


# A measured figure: a ratio, a duration below a second, a rate, a percentage, a test count.
FIGURE = re.compile(
    r"\d\s?[×x]\b|\d\s?×|\d\s?[µμ]s\b|\d\s?ms\b|\d\s?req/s|\d\s?%"
    r"|\b\d+ (?:of \d+|(?:required )?(?:tests? )?fail)",
    re.IGNORECASE,
)
MS = re.compile(r"(\d+(?:\.\d+)?)\s?ms\b")
CODE_SPAN = re.compile(r"`[^`\n]*`")
SETTING_NAME = re.compile(r"`([a-z_]+)`")


def prose_units(text: str) -> list[tuple[int, str]]:
    """(first line, text) of each paragraph or table row outside fenced blocks, HTML comments
    and generated blocks."""
    text = summary.BLOCK.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.DOTALL)
    units: list[tuple[int, str]] = []
    fence: str | None = None
    current: list[str] = []
    start = 0
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if fence is None and stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
        elif fence is not None:
            if stripped.startswith(fence):
                fence = None
            continue
        elif stripped.startswith("|"):
            units.append((n, stripped))
            continue
        if not stripped or fence is not None:
            if current:
                units.append((start, " ".join(current)))
            current = []
            continue
        if not current:
            start = n
        current.append(stripped)
    if current:
        units.append((start, " ".join(current)))
    return units


def setting_defaults() -> dict[str, object]:
    import dataclasses

    import oxicache

    defaults = oxicache.Settings()
    return {f.name: getattr(defaults, f.name) for f in dataclasses.fields(defaults)}


def allowed_ms(unit: str, defaults: dict[str, object]) -> bool:
    """A figure in ms is a setting's default when the same paragraph names that setting."""
    named = {n for n in SETTING_NAME.findall(unit) if n in defaults}
    values = {float(defaults[n]) * 1000 for n in named if isinstance(defaults[n], int | float)}
    return all(float(v) in values for v in MS.findall(unit)) and not FIGURE.search(MS.sub("", unit))


def hand_written_figures(text: str) -> list[tuple[int, str, str]]:
    """(line, figure, paragraph) for each measured figure outside generated blocks; inline code
    is not prose (``"500ms"``), but a setting's name in it counts for :func:`allowed_ms`."""
    defaults = setting_defaults()
    out = []
    for line, unit in prose_units(text):
        bare = CODE_SPAN.sub(lambda m: m[0] if SETTING_NAME.fullmatch(m[0]) else "", unit)
        m = FIGURE.search(bare)
        if m and not allowed_ms(bare, defaults):
            out.append((line, m.group(0), unit))
    return out


@pytest.mark.parametrize("page", USER_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_hand_written_figure_on_user_pages(page: Path) -> None:
    """Measured figures come from bench/summary.py, so they cannot disagree; a setting's
    default (5 ms, named with its setting) is the only other duration allowed."""
    found = [
        f"{page.relative_to(REPO)}:{line}: {fig!r} in {unit[:120]!r}"
        for line, fig, unit in hand_written_figures(page.read_text(encoding="utf-8"))
    ]
    assert not found, "hand-written figures (render them with bench/summary.py):\n" + "\n".join(
        found
    )


DEVELOPMENT_HISTORY = re.compile(
    r"\bissue \d+|#\d{1,4}\b|PRODUCT\.md|other engineers|\b20\d{6}T\d{6}Z|\bcommit [0-9a-f]{7}",
    re.IGNORECASE,
)


@pytest.mark.parametrize("page", USER_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_user_pages_carry_no_development_history(page: Path) -> None:
    found = [
        f"{line}: {m.group(0)!r}"
        for line, unit in prose_units(page.read_text(encoding="utf-8"))
        for m in DEVELOPMENT_HISTORY.finditer(unit)
    ]
    assert not found, f"{page.relative_to(REPO)}: belongs in bench/ or the commit log: {found}"


def test_the_figure_scan_catches_hand_written_numbers(tmp_path: Path) -> None:
    page = (
        "A hit costs 3.3 µs, or 0.99x, at 10,000 req/s.\n\n"
        "Reads have a deadline of `backend_timeout` (5 ms by default).\n\n"
        "Reads have a deadline of 7 ms.\n\n"
        "| `backend_write_timeout` | 50 ms |\n\n"
        "On the suite, 3 required tests fail; 23 of 26 pass.\n\n"
        "<!-- results:begin overview -->\n0.94×\n<!-- results:end -->\n\n"
        "```python\nsleep(0.05)  # 50 ms\n```\n\n"
        'Durations take `"500ms"`.\n'
    )
    assert [line for line, _, _ in hand_written_figures(page)] == [1, 5, 9]
