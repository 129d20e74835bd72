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

import sys
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


def main() -> int:
    args = peer_suite.arguments(
        __doc__ or "", env="OXICACHE_PEER_FASTAPI_CACHE", source=DEFAULT_SOURCE, ref=DEFAULT_REF
    )
    with peer_suite.workdir("oxicache-peer-fastapi-cache-", keep=args.keep) as work:
        tree = work / "fastapi-cache"
        if not peer_suite.fetch("fastapi-cache2", args, tree):
            return 2
        changed = peer_suite.prepare(tree, "fastapi_cache", REWRITTEN)
        print(f"fastapi-cache2 {args.ref[:12]}: {changed} import lines rewritten")
        results = peer_suite.run_pytest(
            tree,
            TEST_FILES,
            args.pytest_args,
            extra_path=peer_suite.install_missing(work, EXTRA_DEPS),
        )
        gaps = peer_suite.summarize("fastapi-cache2", results, CHOSEN)
        return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
