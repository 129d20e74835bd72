"""RedisBackend beyond the shared contract: layout, fork safety, limits, servers that freeze or
restart. Real servers from conftest.py (tests/python/servers.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest

from oxicache.backends.redis import RedisBackend
from oxicache.backends.redis import client as redis_client
from oxicache.backends.redis.client import _escape_glob
from oxicache.exceptions import ConfigError
from tests.python.servers import RedisCluster, RedisSentinel, RedisServer, resp_command


def _prefix() -> str:
    return "r" + uuid.uuid4().hex[:12]


def test_import_oxicache_does_not_import_redis() -> None:
    code = (
        "import sys, oxicache, oxicache.backends as b\n"
        "assert 'redis' not in sys.modules, 'import oxicache imported redis'\n"
        "b.RedisBackend('redis://127.0.0.1:1/0')\n"
        "assert 'redis' not in sys.modules, 'constructing a backend imported redis'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_construction_never_connects() -> None:
    # Port 1 on the loopback refuses connections: constructing must not notice.
    RedisBackend("redis://127.0.0.1:1/0")
    RedisBackend("unix:///nonexistent/redis.sock")
    RedisBackend.cluster([("127.0.0.1", 1)])
    RedisBackend.cluster("redis://127.0.0.1:1")
    RedisBackend.sentinel([("127.0.0.1", 1)], service_name="mymaster")


async def test_unreachable_server_raises_on_use() -> None:
    b = RedisBackend("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    with pytest.raises(Exception, match=r"(?i)connect|refused"):
        await b.get("x")
    await b.close()


def test_bad_configuration() -> None:
    with pytest.raises(ConfigError):
        RedisBackend(prefix="")
    with pytest.raises(ConfigError):
        RedisBackend(decode_responses=True)
    with pytest.raises(ConfigError):
        RedisBackend("redis://x", sentinel=[("h", 1)])
    with pytest.raises(ConfigError):
        RedisBackend(max_item_size=0)
    with pytest.raises(ConfigError):
        RedisBackend(max_connections=0)


async def test_user_client_is_used_and_not_closed(redis_server: RedisServer) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_server.url)
    b = RedisBackend(client=client, prefix=_prefix())
    await b.set(f"{b.prefix}:k", b"v", 10)
    await b.close()
    assert await client.get(f"{b.prefix}:k") == b"v"  # still usable: ours to close, not its
    await b.clear()
    await client.aclose()

    decoding = Redis.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ConfigError):
        RedisBackend(client=decoding)
    await decoding.aclose()


@pytest.mark.parametrize(
    ("text", "pattern"),
    [("a:b:", "a:b:"), ("a*", "a\\*"), ("?[x]", "\\?\\[x\\]"), ("a\\b", "a\\\\b")],
)
def test_escape_glob(text: str, pattern: str) -> None:
    assert _escape_glob(text) == pattern


async def test_layout_and_tag_set_expiry(redis_server: RedisServer) -> None:
    b = RedisBackend(redis_server.url, prefix=_prefix())
    tag_key = f"{b.prefix}:tag:path:1"
    await b.set(f"{b.prefix}:ns:r:mid", b"m", 5, tags=["path:1"])
    await b.set(f"{b.prefix}:ns:r:long", b"l", 50, tags=["path:1"])
    await b.set(f"{b.prefix}:ns:r:short", b"s", 1, tags=["path:1"])
    # One plain string per entry, one set per tag, living as long as its longest entry.
    assert resp_command(redis_server.port, "TYPE", f"{b.prefix}:ns:r:mid") == "string"
    assert resp_command(redis_server.port, "TYPE", tag_key) == "zset"
    assert resp_command(redis_server.port, "ZCARD", tag_key) == 3
    tag_ttl = resp_command(redis_server.port, "PTTL", tag_key)
    assert 49_000 < tag_ttl <= 50_000

    # A tag set whose entries all expire disappears with them.
    await b.set(f"{b.prefix}:ns:r:brief", b"b", 0.2, tags=["brief"])
    assert resp_command(redis_server.port, "EXISTS", f"{b.prefix}:tag:brief") == 1
    await asyncio.sleep(0.4)
    assert resp_command(redis_server.port, "EXISTS", f"{b.prefix}:tag:brief") == 0
    await b.clear()
    assert resp_command(redis_server.port, "EXISTS", tag_key) == 0
    await b.close()


async def test_a_tag_written_all_the_time_lists_only_its_live_entries(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One path under ever new query strings (an attacker's, or a busy search page): every
    write drops from the tag's set the keys whose entries have expired, so the set does not
    grow with every key ever written while the tag stays in use; invalidation still reaches
    the live entries."""
    b = RedisBackend(redis_server.url, prefix=_prefix())
    tag_key = f"{b.prefix}:tag:path:search"
    for i in range(50):
        await b.set(f"{b.prefix}:ns:r:q{i}", b"x", 0.05, tags=["path:search"])
    await asyncio.sleep(0.3)  # all fifty have expired (with a margin)
    # Their keys stay in the set for the clock margin; past it, the next write drops them.
    monkeypatch.setattr(redis_client, "TAG_TRIM_MARGIN_MS", 0)
    await b.set(f"{b.prefix}:ns:r:live", b"l", 60, tags=["path:search"])
    assert resp_command(redis_server.port, "ZCARD", tag_key) == 1
    assert await b.tagged("path:search") == [f"{b.prefix}:ns:r:live"]
    assert await b.delete_tag("path:search") == 1
    assert await b.get(f"{b.prefix}:ns:r:live") is None
    assert resp_command(redis_server.port, "EXISTS", tag_key) == 0
    await b.close()


async def test_a_writer_whose_clock_runs_ahead_keeps_live_entries_in_their_tag(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hosts writing one tag may disagree on the time: one whose clock is 30 s ahead must not
    drop from the tag an entry another host wrote that is live for 20 s more, or
    ``invalidate(path=...)`` would miss it."""
    b = RedisBackend(redis_server.url, prefix=_prefix())
    await b.set(f"{b.prefix}:ns:r:other", b"o", 20, tags=["path:skew"])
    real = time.time
    monkeypatch.setattr(redis_client.time, "time", lambda: real() + 30)
    await b.set(f"{b.prefix}:ns:r:ahead", b"a", 60, tags=["path:skew"])
    monkeypatch.setattr(redis_client.time, "time", real)
    assert resp_command(redis_server.port, "ZCARD", f"{b.prefix}:tag:path:skew") == 2
    assert await b.delete_tag("path:skew") == 2
    await b.close()


async def test_burst_beyond_the_pool_waits_instead_of_failing(redis_server: RedisServer) -> None:
    b = RedisBackend(redis_server.url, prefix=_prefix(), max_connections=4)
    keys = [f"{b.prefix}:ns:r:{i}" for i in range(500)]
    await asyncio.gather(*(b.set(key, b"v", 30, tags=["burst"]) for key in keys))
    assert await asyncio.gather(*(b.get(key) for key in keys)) == [b"v"] * len(keys)
    await b.clear()
    await b.close()


def test_fork_child_gets_its_own_connections(redis_server: RedisServer) -> None:
    """A prefork server (gunicorn --preload): the parent used the backend, then forked. The
    child must not write on the parent's sockets; both keep working."""
    b = RedisBackend(redis_server.url, prefix=_prefix())
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(b.set(f"{b.prefix}:k", b"parent", 30))
        pid = os.fork()
        if pid == 0:  # the child: a new event loop, as a worker would have
            code = 1
            try:
                got = asyncio.run(b.get(f"{b.prefix}:k"))
                asyncio.run(b.set(f"{b.prefix}:child", b"child", 30))
                code = 0 if got == b"parent" else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's own connection is intact and sees the child's write.
        assert loop.run_until_complete(b.get(f"{b.prefix}:child")) == b"child"
        assert loop.run_until_complete(b.get(f"{b.prefix}:k")) == b"parent"
        loop.run_until_complete(b.clear())
        loop.run_until_complete(b.close())
    finally:
        loop.close()


async def _eventually(op: Any, attempts: int = 3) -> Any:
    """The first command after a restart may meet the dead connection (no retries inside)."""
    for i in range(attempts):
        try:
            return await op()
        except Exception:
            if i == attempts - 1:
                raise
            await asyncio.sleep(0.05)


async def test_frozen_server_fails_fast_and_recovers(redis_server: RedisServer) -> None:
    b = RedisBackend(redis_server.url, prefix=_prefix(), socket_timeout=0.3)
    key = f"{b.prefix}:k"
    await b.set(key, b"v", 30)
    redis_server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(Exception, match=r"(?i)timeout|timed out"):
            await b.get(key)
        assert time.monotonic() - started < 1.5  # one socket timeout, no retries
    finally:
        redis_server.resume()
    assert await _eventually(lambda: b.get(key)) == b"v"
    await b.clear()
    await b.close()


async def test_restarted_server_is_empty_and_usable(redis_server: RedisServer) -> None:
    b = RedisBackend(redis_server.url, prefix=_prefix())
    key = f"{b.prefix}:k"
    await b.set(key, b"v", 30)
    redis_server.restart()
    assert await _eventually(lambda: b.get(key)) is None
    # Reads and writes use different connections (redis_reads.py): each may meet its dead one.
    await _eventually(lambda: b.set(key, b"w", 30))
    assert await b.get(key) == b"w"
    await b.clear()
    await b.close()


async def test_cluster_spreads_keys_and_invalidates_on_every_master(
    redis_cluster: RedisCluster,
) -> None:
    b = RedisBackend.cluster(redis_cluster.url, prefix=_prefix())
    keys = [f"{b.prefix}:ns:r:{i}" for i in range(60)]
    for key in keys:
        await b.set(key, b"v", 30, tags=["all"])
    per_node = [
        len(resp_command(p, "SCAN", 0, "MATCH", f"{b.prefix}:ns:*", "COUNT", 1000)[1])
        for p in redis_cluster.ports
    ]
    assert sum(per_node) == len(keys) and all(n > 0 for n in per_node), per_node
    assert await b.delete_prefix(f"{b.prefix}:ns:") == len(keys)
    assert await b.delete_tag("all") == 0  # entries already gone; the set is popped empty
    await b.clear()
    await b.close()


async def test_cluster_frozen_master_only_affects_its_slots(redis_cluster: RedisCluster) -> None:
    from redis.crc import key_slot

    b = RedisBackend.cluster(redis_cluster.startup_nodes, prefix=_prefix(), socket_timeout=0.3)
    frozen = redis_cluster.node(0)
    # Which slots does node 0 serve? Its CLUSTER SHARDS/SLOTS view: ask it directly.
    ranges = [
        (int(r[0]), int(r[1]))
        for r in resp_command(frozen.port, "CLUSTER", "SLOTS")
        if int(r[2][1]) == frozen.port
    ]

    def on_frozen(key: str) -> bool:
        s = key_slot(key.encode())
        return any(lo <= s <= hi for lo, hi in ranges)

    names = [f"{b.prefix}:ns:r:{i}" for i in range(50)]
    there = next(n for n in names if on_frozen(n))
    elsewhere = next(n for n in names if not on_frozen(n))
    await b.set(there, b"a", 30)
    await b.set(elsewhere, b"b", 30)
    frozen.pause()
    try:
        with pytest.raises(Exception, match=r"(?i)timeout|timed out"):
            await b.get(there)
        assert await b.get(elsewhere) == b"b"
    finally:
        frozen.resume()
    assert await _eventually(lambda: b.get(there)) == b"a"
    await b.clear()
    await b.close()


async def test_sentinel_follows_a_restarted_master(redis_sentinel: RedisSentinel) -> None:
    b = RedisBackend.sentinel(redis_sentinel.sentinels, prefix=_prefix())
    key = f"{b.prefix}:k"
    await b.set(key, b"v", 30)
    assert resp_command(redis_sentinel.master_port, "GET", key) == b"v"
    redis_sentinel.restart_master()
    assert await _eventually(lambda: b.get(key)) is None
    # Reads and writes use different connections (redis_reads.py): each may meet its dead one.
    await _eventually(lambda: b.set(key, b"w", 30))
    assert await b.get(key) == b"w"
    await b.clear()
    await b.close()
