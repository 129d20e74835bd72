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
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_suite

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
            peer_suite.checkout(args.source, args.ref, tree)
        except subprocess.CalledProcessError:
            print(
                f"cannot get fastapi-cache2 from {args.source} at {args.ref}: pass --source "
                "with a reachable URL or a local clone",
                file=sys.stderr,
            )
            return 2
        changed = peer_suite.prepare(tree, "fastapi_cache", REWRITTEN)
        print(f"fastapi-cache2 {args.ref[:12]}: {changed} import lines rewritten")
        results = peer_suite.run_pytest(
            tree, TEST_FILES, args.pytest_args, extra_path=ensure_deps(work)
        )
        gaps = peer_suite.summarize("fastapi-cache2", results, CHOSEN)
        return 1 if gaps else 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
