#!/usr/bin/env python3
"""Runs fastapi-cachemate's documented behaviour against ``oxicache.compat.fastapi_cachemate``.

Usage (from the repository root, with the project's virtualenv)::

    .venv/bin/python tests/compat/run_cachemate_tests.py [--source GIT_URL_OR_PATH] [--ref REF]

fastapi-cachemate's own tests (``tests/test_cache.py``, ``test_helpers.py``, ``test_lock.py``,
``test_utils.py``) replace its internal helpers and its Redis client with mocks: none is an
HTTP-level test. So the suite is ``tests/compat/cachemate_docs``: its README as HTTP tests.

Steps, in a temporary directory (the peer's source is never copied into this repository):

1. Clone fastapi-cachemate at the commit of its 0.1.1 release (``--source``/``--ref``), and
   install its one dependency this virtualenv may lack (orjson) there.
2. Start a ``redis-server`` on a free port (``CACHEMATE_REDIS_URL`` to use another).
3. Baseline: the suite runs against the real fastapi-cachemate. Every test must pass there.
4. The suite's imports (and only those) are rewritten ``fastapi_cachemate`` ->
   ``oxicache.compat.fastapi_cachemate``, the peer's source is taken off the path, and pytest
   runs it again. Each failure is in ``CHOSEN`` (a difference oxicache keeps, with the reason)
   or a gap; the exit status is 1 when there is a gap or the baseline does not pass.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))
import peer_suite  # noqa: E402

DEFAULT_SOURCE = "https://github.com/diyelise/fastapi-cachemate.git"
#: The 0.1.1 release.
DEFAULT_REF = "9cf2e98072f6963968a59bd0b4ba8115ca7f3d8e"
PACKAGE = "fastapi_cachemate"
SUITE = "cachemate_docs"
#: What the real fastapi-cachemate imports that oxicache's test extra does not bring.
PEER_DEPS = {"orjson": ["orjson>=3.10"]}

#: Failures that are differences oxicache chose, with the reason.
CHOSEN: dict[str, str] = {
    "cachemate_docs/test_cachemate_documented.py::"
    "test_a_hot_key_near_expiry_is_refreshed_while_others_get_the_cached_value": (
        "the refresh window is buffer x ttl (0.8 s of this 4 s entry), not derived from the"
        " last compute time (3.2 s here), and the refresh runs inside the request drawn (so"
        " it works with yield dependencies), not in a background task: this entry expired"
        " before any request fell in its window"
    ),
}


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    given = os.environ.get("CACHEMATE_REDIS_URL")
    if given:
        yield given
        return
    import servers  # tests/python/servers.py: the test harness's server launcher

    with servers.RedisServer() as server:
        yield server.url


def main() -> int:
    args = peer_suite.arguments(
        __doc__ or "", env="OXICACHE_PEER_FASTAPI_CACHEMATE", source=DEFAULT_SOURCE, ref=DEFAULT_REF
    )
    with peer_suite.workdir("oxicache-peer-cachemate-", keep=args.keep) as work:
        peer = work / "fastapi-cachemate"
        if not peer_suite.fetch("fastapi-cachemate", args, peer):
            return 2
        deps = peer_suite.install_missing(work, PEER_DEPS)
        ini = peer_suite.ASYNCIO_SESSION[:1]  # asyncio_mode = auto
        with redis_url() as url:
            os.environ["CACHEMATE_REDIS_URL"] = url
            # Baseline: the suite against the real library (its package on the path).
            base = work / "baseline"
            shutil.copytree(HERE / SUITE, base / SUITE)
            baseline = peer_suite.run_pytest(
                base, [SUITE], args.pytest_args, ini_lines=ini, extra_path=[str(peer), *deps]
            )
            print("\nbaseline, the fetched fastapi-cachemate itself:")
            baseline_gaps = peer_suite.summarize("fastapi-cachemate, baseline", baseline, {})
            # The same tests, imports rewritten, against oxicache.
            tree = work / "oxicache"
            shutil.copytree(HERE / SUITE, tree / SUITE)
            (tree / PACKAGE).mkdir()  # prepare() removes the peer's package from the tree
            changed = peer_suite.prepare(tree, PACKAGE, (SUITE,))
            print(f"\nfastapi-cachemate {args.ref[:12]}: {changed} import lines rewritten")
            results = peer_suite.run_pytest(tree, [SUITE], args.pytest_args, ini_lines=ini)
            gaps = peer_suite.summarize("fastapi-cachemate", results, CHOSEN)
        return 1 if gaps or baseline_gaps else 0


if __name__ == "__main__":
    sys.exit(main())
