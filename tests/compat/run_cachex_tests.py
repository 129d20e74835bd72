#!/usr/bin/env python3
"""Runs fastapi-cachex's HTTP-level tests against ``oxicache.compat.fastapi_cachex``.

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python tests/compat/run_cachex_tests.py [--source GIT_URL_OR_PATH] [--ref TAG]

Steps, in a temporary directory (nothing fetched is ever copied into this repository):

1. Clone fastapi-cachex's repository at the tag of 0.5.1 (``--source``/``--ref``). If it has
   tests, its HTTP-level ones are the suite (``REPO_TESTS``), with its ``tests/conftest.py``
   replaced by ``REPO_CONFTEST`` (the upstream one imports the session/state/manager modules,
   which are outside the surface compared).
2. If the clone fails (no network to GitHub), download the 0.5.1 sdist with pip. Its archive
   has no tests, so the suite is ``tests/compat/cachex_docs``: tests written from
   fastapi-cachex's README and docstrings (``@cache``; ``CacheManager``, ``AppCache``,
   ``@cached``, ``CacheLock``, the backends' primitives, ``add_routes``, ``max_entries``),
   against the ``fastapi_cachex`` imports.
3. Baseline: the suite runs against the real fastapi-cachex (the fetched source on
   ``PYTHONPATH``), to show the tests describe the peer. Every test must pass there.
4. The suite's imports (and only those) are rewritten ``fastapi_cachex`` ->
   ``oxicache.compat.fastapi_cachex``, the peer's source is taken off the path, and pytest
   runs it again. Each failure is either in ``CHOSEN`` (a difference oxicache keeps, with the
   reason, printed) or a gap: the exit status is 1 when there is a gap, or when the baseline
   does not pass.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = "https://github.com/allen0099/FastAPI-CacheX.git"
DEFAULT_REF = "v0.5.1"
VERSION = "0.5.1"

#: The repository's tests of the ``@cache`` HTTP surface (globs under its ``tests/``). Its
#: application-cache, lock, monitoring-route and backend tests need its own conftest (a clock
#: that patches its modules' ``time``, fixtures over its backends' internals), so those parts
#: are checked by ``tests/compat/cachex_docs`` (run against fastapi-cachex first); the session
#: and state modules are outside the compatibility layer.
REPO_TESTS = (
    "test_cache.py",
    "test_cache_[a-l]*.py",
    "test_cache_[n-z]*.py",
    "test_custom_cache_key.py",
    "test_build_cache_key.py",
    "test_proxybackend.py",
    "test_timedelta_ttl.py",
)
REPO_SKIP = ("test_cache_internals.py", "test_cache_module.py", "test_cache_max_entries.py")
REPO_CONFTEST = '''"""Replaces fastapi-cachex's conftest (it imports session/state modules)."""
import pytest

from fastapi_cachex.backends.memory import MemoryBackend
from fastapi_cachex.proxy import BackendProxy


@pytest.fixture
def memory_backend():
    return MemoryBackend()


@pytest.fixture(autouse=True)
def setup_default_backend():
    BackendProxy.set(MemoryBackend())
    yield
    BackendProxy.set(None)
'''

#: Failures that are differences oxicache keeps on purpose, by test name, with the reason.
CHOSEN: dict[str, str] = {
    "test_no_cache_runs_the_handler_on_every_request": (
        "no_cache: oxicache stores the response and serves it, sending no-cache so clients "
        "revalidate (answered 304 from the stored ETag); fastapi-cachex re-renders on every "
        "request. The entry is at most ttl old, as on any cached route."
    ),
    "test_private_is_never_stored": (
        "private: oxicache keys private entries on Authorization/Cookie, so one caller's "
        "entry is never served to another; fastapi-cachex never stores them. Requests "
        "without credentials share one entry (they cannot be told apart anyway)."
    ),
    "test_clear_path_without_include_params_keeps_query_variants": (
        "clear_path(include_params=False): oxicache drops entries by path (a tag in remote "
        "backends) and cannot single out the query-less variant; it drops every variant, "
        "which is more than asked, never less (a variant left stale would be wrong)."
    ),
}

_IMPORT = re.compile(r"^(\s*(?:from|import)\s+)fastapi_cachex(?=[\s.]|$)", re.MULTILINE)


def rewrite_imports(text: str) -> str:
    """``from fastapi_cachex... import`` / ``import fastapi_cachex...`` lines only."""
    return _IMPORT.sub(r"\1oxicache.compat.fastapi_cachex", text)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, text=True, capture_output=True, check=False, **kwargs)


def fetch_repository(source: str, ref: str, into: Path) -> bool:
    done = run(["git", "clone", "--quiet", "--depth", "1", "--branch", ref, source, str(into)])
    if done.returncode != 0:
        print(f"clone of {source}@{ref} failed: {done.stderr.strip().splitlines()[-1:]}")
        return False
    return True


def fetch_sdist(into: Path) -> Path:
    done = run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            "fastapi-cachex",
            f"fastapi-cachex=={VERSION}",
            "-d",
            str(into),
        ]
    )
    if done.returncode != 0:
        sys.exit(f"pip download fastapi-cachex=={VERSION} failed:\n{done.stderr}")
    archive = next(into.glob("fastapi_cachex-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / f"fastapi_cachex-{VERSION}"


_UNPROVIDED = re.compile(r"No module named '(oxicache\.compat\.fastapi_cachex\.[\w.]+)'")


def pytest_run(suite: Path, pythonpath: list[Path], label: str) -> dict[str, str]:
    """Runs pytest in ``suite``; returns each test's outcome (passed/failed/skipped/error,
    or ``unprovided <module>`` for a test file importing a module the compat layer does not
    have)."""
    report = suite / f"report-{label}.xml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath)}
    done = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
            "--continue-on-collection-errors",
            "--rootdir",
            str(suite),
            f"--junitxml={report}",
            str(suite),
        ],
        cwd=suite,
        env=env,
    )
    if not report.exists():
        sys.exit(f"pytest ({label}) produced no report:\n{done.stdout}\n{done.stderr}")
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                missing = _UNPROVIDED.search(child.get("message", "") + (child.text or ""))
                if missing:
                    outcome = f"unprovided {missing.group(1)}"
        outcomes[name] = outcome
    if done.returncode not in (0, 1):
        print(done.stdout[-3000:], done.stderr[-3000:])
    return outcomes


def counts(outcomes: dict[str, str]) -> str:
    tally: dict[str, int] = {}
    for outcome in outcomes.values():
        tally[outcome] = tally.get(outcome, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(tally.items())) or "no tests"


def prepare_repository_suite(repo: Path, suite: Path) -> None:
    tests = suite / "tests"
    tests.mkdir(parents=True)
    (tests / "__init__.py").write_text("")
    (tests / "conftest.py").write_text(REPO_CONFTEST)
    for pattern in REPO_TESTS:
        for path in sorted((repo / "tests").glob(pattern)):
            if path.name not in REPO_SKIP:
                shutil.copy(path, tests / path.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="git URL or local repository")
    parser.add_argument("--ref", default=DEFAULT_REF, help="tag or branch to clone")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cachex-tests-"))
    try:
        repo = work / "repo"
        suite = work / "suite"
        if fetch_repository(args.source, args.ref, repo) and (repo / "tests").is_dir():
            print(f"suite: the repository's HTTP-level tests ({args.source} @ {args.ref})")
            peer_source = repo
            prepare_repository_suite(repo, suite)
        else:
            peer_source = fetch_sdist(work / "sdist")
            if (peer_source / "tests").is_dir():
                print(f"suite: the sdist's tests (fastapi-cachex {VERSION})")
                prepare_repository_suite(peer_source, suite)
            else:
                print(
                    f"the fastapi-cachex {VERSION} sdist ships no tests: suite is "
                    "tests/compat/cachex_docs (its README and docstrings as tests)"
                )
                shutil.copytree(HERE / "cachex_docs", suite)

        baseline = pytest_run(suite, [peer_source], "peer")
        print(f"\nbaseline, the fetched fastapi-cachex itself: {counts(baseline)}")
        for name, outcome in sorted(baseline.items()):
            if outcome != "passed":
                print(f"  {outcome}: {name}")

        for path in suite.rglob("*.py"):
            path.write_text(rewrite_imports(path.read_text()))
        ours = pytest_run(suite, [], "oxicache")
        print(f"\noxicache.compat.fastapi_cachex: {counts(ours)}")
        gaps = []
        for name, outcome in sorted(ours.items()):
            if outcome.startswith("unprovided"):
                print(f"  SCOPE   {name}: imports {outcome.split()[1]}, not provided")
            elif outcome in ("failed", "error"):
                reason = CHOSEN.get(name.rsplit("::", 1)[-1])
                if reason is None:
                    gaps.append(name)
                    print(f"  GAP     {name}")
                else:
                    print(f"  CHOSEN  {name}\n          {reason}")
        chosen = sum(1 for n, o in ours.items() if o in ("failed", "error")) - len(gaps)
        print(
            f"\nsummary: {sum(o == 'passed' for o in ours.values())} passed, "
            f"{chosen} failed by choice, {len(gaps)} gaps; "
            f"baseline {sum(o == 'passed' for o in baseline.values())}/{len(baseline)} passed"
        )
        baseline_ok = all(o in ("passed", "skipped") for o in baseline.values())
        return 1 if gaps or not baseline_ok else 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
