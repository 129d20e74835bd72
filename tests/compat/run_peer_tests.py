#!/usr/bin/env python3
"""Runs fastapi-cache2's own tests against ``oxicache.compat.fastapi_cache``.

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python tests/compat/run_peer_tests.py [--source GIT_URL_OR_PATH] [--ref REF]

Steps: clones fastapi-cache2's repository at a pinned commit into a temporary directory (its
source is never copied into this repository), deletes its ``fastapi_cache`` package, rewrites
*only the imports* of its tests and example apps (``fastapi_cache`` ->
``oxicache.compat.fastapi_cache``), installs the one test dependency it has that oxicache does
not (pendulum) into the temporary directory if it is missing, runs pytest there, and prints
each test's outcome and the pass/fail counts.

Which tests: ``tests/test_decorator.py`` (HTTP level: the example app of
``examples/in_memory`` through Starlette's ``TestClient``) and ``tests/test_codecs.py`` (the
public ``JsonCoder``/``PickleCoder`` class methods). At the pinned commit the repository has no
backend unit tests (nothing pokes a backend's internals), so nothing is skipped.

Failures listed in ``CHOSEN`` are differences oxicache keeps on purpose (the reason is
printed); any other failure is a gap, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

#: fastapi-cache2's repository, and the commit whose tests are run: the main branch of the
#: 0.2.x series (after v0.2.1; its decorator and coders are those released as 0.2.2).
DEFAULT_SOURCE = "https://github.com/long2ice/fastapi-cache.git"
DEFAULT_REF = "91ba6d75524b1f6a17ae6a3300ab51b9aa1fcf71"

TEST_FILES = ("tests/test_decorator.py", "tests/test_codecs.py")
#: Directories whose Python files get their imports rewritten (the tests import the example).
REWRITTEN = ("tests", "examples")
#: Test dependencies of fastapi-cache2 that oxicache's test extra does not bring (with the
#: pins that keep them from replacing what the virtualenv has).
EXTRA_DEPS = {"pendulum": ["pendulum>=3", "python-dateutil<3"]}

#: Failures that are differences oxicache chose, with the reason. Empty: none expected.
CHOSEN: dict[str, str] = {}

_IMPORT = re.compile(r"^(\s*(?:from|import)\s+)fastapi_cache(?=[\s.]|$)", re.MULTILINE)


def rewrite_imports(text: str) -> str:
    """``from fastapi_cache... import`` / ``import fastapi_cache...`` lines only."""
    return _IMPORT.sub(r"\1oxicache.compat.fastapi_cache", text)


def checkout(source: str, ref: str, into: Path) -> None:
    subprocess.run(
        ["git", "clone", "--quiet", "--no-checkout", source, str(into)],
        check=True,
    )
    subprocess.run(["git", "-C", str(into), "checkout", "--quiet", ref], check=True)


def prepare(tree: Path) -> int:
    """Removes the peer's package and rewrites the imports; the number of lines changed."""
    shutil.rmtree(tree / "fastapi_cache")
    changed = 0
    for top in REWRITTEN:
        for path in sorted((tree / top).rglob("*.py")):
            text = path.read_text()
            new = rewrite_imports(text)
            if new != text:
                pairs = zip(text.splitlines(), new.splitlines(), strict=True)
                changed += sum(a != b for a, b in pairs)
                path.write_text(new)
    return changed


def ensure_deps(work: Path) -> list[str]:
    """Installs the missing test dependencies into ``work/deps``; the extra sys.path."""
    missing: list[str] = []
    for module, requirements in EXTRA_DEPS.items():
        probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
        if probe.returncode != 0:
            missing.extend(requirements)
    if not missing:
        return []
    deps = work / "deps"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(deps), *missing],
        check=True,
    )
    return [str(deps)]


def run_pytest(tree: Path, extra_path: list[str], pytest_args: list[str]) -> Path:
    report = tree / "report.xml"
    ini = tree / "peer-pytest.ini"
    ini.write_text("[pytest]\naddopts = -p no:warnings -p no:cacheprovider\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tree), *extra_path, *filter(None, [env.get("PYTHONPATH")])]
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
            *TEST_FILES,
            *pytest_args,
        ],
        cwd=tree,
        env=env,
        check=False,
    )
    return report


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source",
        default=os.environ.get("OXICACHE_PEER_FASTAPI_CACHE", DEFAULT_SOURCE),
        help="git URL or local clone of fastapi-cache2 (env OXICACHE_PEER_FASTAPI_CACHE)",
    )
    parser.add_argument("--ref", default=DEFAULT_REF, help="commit or tag to test")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="oxicache-peer-fastapi-cache-"))
    try:
        tree = work / "fastapi-cache"
        try:
            checkout(args.source, args.ref, tree)
        except subprocess.CalledProcessError:
            print(
                f"cannot get fastapi-cache2 from {args.source} at {args.ref}: pass --source "
                "with a reachable URL or a local clone",
                file=sys.stderr,
            )
            return 2
        changed = prepare(tree)
        print(f"fastapi-cache2 {args.ref[:12]}: {changed} import lines rewritten")
        report = run_pytest(tree, ensure_deps(work), args.pytest_args)
        if not report.exists():
            print("pytest wrote no report", file=sys.stderr)
            return 2
        results = outcomes(report)
        counts: dict[str, int] = {}
        gaps = 0
        for test_id, (outcome, message) in sorted(results.items()):
            counts[outcome] = counts.get(outcome, 0) + 1
            line = f"{outcome.upper():8} {test_id}"
            if outcome in ("failed", "error"):
                reason = CHOSEN.get(test_id)
                if reason is None:
                    gaps += 1
                    line += f"\n         GAP: {message}"
                else:
                    line += f"\n         chosen difference: {reason}"
            print(line)
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        print(f"peer tests (fastapi-cache2): {summary}; {len(results)} in all; gaps: {gaps}")
        return 1 if gaps else 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
