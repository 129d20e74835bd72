"""What the peer-test runners share: fetch a peer's repository into a temporary directory at
a pinned commit (never into this repository), rewrite only the imports of its tests, run
pytest there, and report each test as passed, a difference oxicache chose (with the reason),
or a gap.

Used by ``run_peer_tests.py`` (fastapi-cache2), ``run_redis_cache_tests.py`` and
``run_cachemate_tests.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path


def checkout(source: str, ref: str, into: Path) -> None:
    """``source`` (a git URL, or a local clone or bare repository) at ``ref``."""
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", source, str(into)], check=True)
    subprocess.run(["git", "-C", str(into), "checkout", "--quiet", ref], check=True)


def rewrite_imports(text: str, package: str) -> str:
    """``from <package>... import`` / ``import <package>...`` lines only, to
    ``oxicache.compat.<package>``."""
    pattern = re.compile(rf"^(\s*(?:from|import)\s+){package}(?=[\s.]|$)", re.MULTILINE)
    return pattern.sub(rf"\1oxicache.compat.{package}", text)


def prepare(tree: Path, package: str, directories: Iterable[str]) -> int:
    """Deletes the peer's package and rewrites the imports of the Python files under
    ``directories``; the number of lines changed."""
    shutil.rmtree(tree / package)
    changed = 0
    for top in directories:
        for path in sorted((tree / top).rglob("*.py")):
            text = path.read_text()
            new = rewrite_imports(text, package)
            if new != text:
                pairs = zip(text.splitlines(), new.splitlines(), strict=True)
                changed += sum(a != b for a, b in pairs)
                path.write_text(new)
    return changed


#: pytest options for suites whose asyncio tests and fixtures share one loop per session.
ASYNCIO_SESSION = (
    "asyncio_mode = auto",
    "asyncio_default_fixture_loop_scope = session",
    "asyncio_default_test_loop_scope = session",
)


def run_pytest(
    tree: Path,
    files: Iterable[str],
    pytest_args: Iterable[str],
    *,
    ini_lines: Iterable[str] = (),
    extra_path: Iterable[str] = (),
) -> dict[str, tuple[str, str]]:
    """Runs pytest on ``files`` in ``tree`` (``ini_lines`` added to its configuration,
    ``extra_path`` to ``PYTHONPATH``); each test's ``(outcome, first line of the message)``."""
    report = tree / "report.xml"
    ini = tree / "peer-pytest.ini"
    lines = ["[pytest]", "addopts = -p no:warnings -p no:cacheprovider", *ini_lines]
    ini.write_text("\n".join(lines) + "\n")
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(tree), *extra_path, *filter(None, [environ.get("PYTHONPATH")])]
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ini),
            "--rootdir",
            str(tree),
            f"--junitxml={report}",
            "-q",
            *files,
            *pytest_args,
        ],
        cwd=tree,
        env=environ,
        check=False,
    )
    if not report.exists():
        raise SystemExit("pytest wrote no report")
    return outcomes(report)


def outcomes(report: Path) -> dict[str, tuple[str, str]]:
    """``{test id: (outcome, message)}`` from pytest's JUnit XML."""
    found: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        test_id = f"{path}.py::{case.get('name')}"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                lines = (node.get("message") or "").splitlines()
                message = lines[0][:160] if lines else ""
                break
        found[test_id] = (outcome, message)
    return found


def summarize(peer: str, results: Mapping[str, tuple[str, str]], chosen: Mapping[str, str]) -> int:
    """Prints each test and the counts; the number of gaps (failures not in ``chosen``)."""
    counts: dict[str, int] = {}
    gaps = 0
    for test_id, (outcome, message) in sorted(results.items()):
        counts[outcome] = counts.get(outcome, 0) + 1
        line = f"{outcome.upper():8} {test_id}"
        if outcome in ("failed", "error"):
            reason = chosen.get(test_id)
            if reason is None:
                gaps += 1
                line += f"\n         GAP: {message}"
            else:
                line += f"\n         chosen difference: {reason}"
        print(line)
    passed = counts.get("passed", 0)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"peer tests ({peer}): {passed}/{len(results)} passed ({summary}); gaps: {gaps}")
    return gaps
