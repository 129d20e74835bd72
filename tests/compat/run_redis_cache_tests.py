#!/usr/bin/env python3
"""Runs fastapi-redis-cache-reborn's own tests against ``oxicache.compat.fastapi_redis_cache``.

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python tests/compat/run_redis_cache_tests.py [--source GIT_URL_OR_PATH] [--ref REF]

Steps, in a temporary directory (its source is never copied into this repository): clone the
repository at the commit of its 0.3.1 release, delete its ``fastapi_redis_cache`` package,
rewrite *only the imports* of its tests (``fastapi_redis_cache`` ->
``oxicache.compat.fastapi_redis_cache``), and run ``tests/test_cache.py``: the HTTP-level
suite, the test app of ``tests/main.py`` through Starlette's ``TestClient``, in the library's
test mode (``CACHE_ENV=TEST``, set by its ``conftest.py``: oxicache's in-process store).
``tests/live_test.py`` needs a hand-run server and is not a test module pytest collects.

Failures listed in ``CHOSEN`` are differences oxicache keeps on purpose (the reason is
printed); any other failure is a gap, and the exit status is 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer_suite

DEFAULT_SOURCE = "https://github.com/seapagan/fastapi-redis-cache-reborn.git"
#: The 0.3.1 release.
DEFAULT_REF = "e354fd52a5020066843278f8da9e60311486c15c"
PACKAGE = "fastapi_redis_cache"
TEST_FILES = ("tests/test_cache.py",)

#: Failures that are differences oxicache chose, with the reason.
CHOSEN: dict[str, str] = {
    "tests/test_cache.py::test_cache_json_encoder": (
        "responses are rendered as FastAPI renders them (dates in ISO 8601, response_model"
        " applied); fastapi-redis-cache sent its storage format ({'val', '_spec_type'}"
        " objects) and skipped response_model when the handler took no Response"
    ),
}


def main() -> int:
    args = peer_suite.arguments(
        __doc__ or "",
        env="OXICACHE_PEER_FASTAPI_REDIS_CACHE",
        source=DEFAULT_SOURCE,
        ref=DEFAULT_REF,
    )
    with peer_suite.workdir("oxicache-peer-redis-cache-", keep=args.keep) as work:
        tree = work / "fastapi-redis-cache"
        if not peer_suite.fetch("fastapi-redis-cache-reborn", args, tree):
            return 2
        changed = peer_suite.prepare(tree, PACKAGE, ("tests",))
        print(f"fastapi-redis-cache-reborn {args.ref[:12]}: {changed} import lines rewritten")
        results = peer_suite.run_pytest(tree, TEST_FILES, args.pytest_args)
        gaps = peer_suite.summarize("fastapi-redis-cache-reborn", results, CHOSEN)
        return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
