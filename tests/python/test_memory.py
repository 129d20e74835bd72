"""The memory bound: the store's max size bounds the process's resident memory.

The store charges every entry its approximate resident size (body, key, headers, a fixed
overhead) and evicts past ``max_size``. Filling a 64 MiB store with ~220 MB of entries must
leave the process no more than 64 MiB plus some allocator slack bigger.

Each fill runs in a fresh interpreter: in this process, memory freed by earlier tests would be
reused and hide the growth. Run with ``-s`` to see the measured figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads VmRSS from /proc/self/status"
)

MiB = 1024 * 1024
CAP = 64 * MiB
#: Allocator slack: freed bodies leave holes that malloc does not hand back to the OS.
SLACK = 24 * MiB
ENTRIES = 100_000
BODY = 2200

FILL = textwrap.dedent(
    """
    import gc, json, sys, time

    import oxicache
    from oxicache import _core, cache, config
    from oxicache.keys import key_value

    mode, entries, body, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

    def rss():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024

    filler = b"x" * (body - 8)
    def value(i):
        return i.to_bytes(8, "little") + filler

    if mode == "route":
        store = _core.MemoryStore(max_bytes=cap)
        config = _core.RouteConfig(namespace="memory", route="fill", ttl=3600)
        rc = _core.RouteCache(store, key_value, config)
        def call(i):
            k = rc.call_key((i,))
            if rc.get_value(k) is None:  # a miss first, as every real caller does
                rc.set_value(k, value(i))
        def stored(i):
            return rc.get_value(rc.call_key((i,)))
        hot_keys = [("hot", i) for i in range(20)]
        def warm():
            for h in hot_keys:
                k = rc.call_key((h,))
                if rc.get_value(k) is None:
                    rc.set_value(k, b"hot" + filler)
        def hot_present():
            return sum(rc.get_value(rc.call_key((h,))) is not None for h in hot_keys)
    else:
        oxicache.configure(max_size=cap)
        store = config.get_store()
        runs = 0

        @cache(ttl=3600)
        def blob(i) -> bytes:
            global runs
            runs += 1
            return value(i) if isinstance(i, int) else b"hot" + filler

        rc = blob.__oxicache__.route_cache()
        def call(i):
            blob(i)
        def stored(i):
            return rc.get_value(rc.call_key((i,)))
        hot_keys = [("hot", i) for i in range(20)]
        def warm():
            for h in hot_keys:
                blob(h)
        def hot_present():
            return sum(stored(h) is not None for h in hot_keys)

    for _ in range(6):  # read often: TinyLFU keeps frequently used entries under pressure
        warm()
    gc.collect()
    before = rss()
    begin = time.perf_counter()
    for i in range(entries):
        call(i)
        if i % 5000 == 0:
            warm()
    store.run_pending_tasks()
    seconds = time.perf_counter() - begin
    after = rss()
    recent = range(entries - 1000, entries)
    kept = [i for i in recent if stored(i) is not None]
    intact = all(stored(i) == value(i) for i in kept)
    stats = store.stats()
    print(json.dumps({
        "growth": after - before, "seconds": seconds, "weighted_size": store.weighted_size,
        "entries": len(store), "evictions": stats["evictions"], "inserts": stats["inserts"],
        "recent_kept": len(kept), "intact": intact, "hot_kept": hot_present(),
        "hot_total": len(hot_keys), "runs": runs if mode != "route" else None,
    }))
    """
)


def fill(mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", FILL, mode, str(ENTRIES), str(BODY), str(CAP)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"\n[{mode}] {ENTRIES} x {BODY} B into a {CAP // MiB} MiB store in "
        f"{result['seconds']:.2f} s: RSS growth {result['growth'] / MiB:.1f} MiB "
        f"(bound {(CAP + SLACK) // MiB} MiB), weighted_size "
        f"{result['weighted_size'] / MiB:.1f} MiB, {result['entries']} entries, "
        f"{result['evictions']} evictions, {result['recent_kept']} of the last 1000 kept, "
        f"{result['hot_kept']}/{result['hot_total']} hot entries kept"
    )
    return result


def check(result: dict[str, Any]) -> None:
    assert result["weighted_size"] <= CAP
    assert result["growth"] <= CAP + SLACK
    assert result["evictions"] > ENTRIES // 2
    assert 0 < result["entries"] < ENTRIES // 2
    # Frequently read entries survive a flood of one-off entries...
    assert result["hot_kept"] == result["hot_total"]
    # ...and the store still admits new ones: some of the last thousand are there, intact.
    assert result["recent_kept"] > 0
    assert result["intact"]


def test_rss_stays_within_the_store_size_route_cache() -> None:
    """Straight through RouteCache.get_value / set_value on a 64 MiB MemoryStore."""
    check(fill("route"))


def test_rss_stays_within_the_store_size_memoized_function() -> None:
    """A memoized function storing 2.2 KB bytes values, after configure(max_size=64 MiB)."""
    result = fill("memoize")
    check(result)
    assert result["runs"] >= ENTRIES
