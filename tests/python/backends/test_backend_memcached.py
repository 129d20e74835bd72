"""MemcachedBackend beyond the shared contract: key hashing, memcached's TTL and size rules,
the generation counters, and rendezvous hashing over two real memcached servers."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from oxicache.backends.memcached import DEFAULT_MAX_ITEM_SIZE, MemcachedBackend
from oxicache.backends.memcached.format import (
    KEY_LIMIT,
    MAX_RELATIVE_TTL,
    Header,
    HeaderError,
    exptime,
    mc_key,
    scan,
)
from oxicache.exceptions import EntryTooLarge
from tests.python.servers import MemcachedServer, free_port

DAY = 86400


def raw(address: tuple[str, int], command: bytes) -> bytes:
    """One text-protocol command on its own connection; the reply up to its end marker."""
    with socket.create_connection(address, timeout=2.0) as sock:
        sock.sendall(command + b"\r\n")
        buf = b""
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return buf
            buf += chunk
            head, sep, rest = buf.partition(b"\r\n")
            if not sep:
                continue
            if head.startswith(b"VA "):
                size = int(head.split()[1])
                if len(rest) >= size + 2:
                    return buf
            else:
                return buf


def meta(address: tuple[str, int], mkey: bytes) -> tuple[int, bytes] | None:
    """``mg <key> t v``: the server's remaining TTL (-1: none) and the stored bytes."""
    reply = raw(address, b"mg " + mkey + b" t v")
    if reply.startswith(b"EN"):
        return None
    head, _, rest = reply.partition(b"\r\n")
    fields = head.split()
    size = int(fields[1])
    ttl = next(int(f[1:]) for f in fields[2:] if f.startswith(b"t"))
    return ttl, rest[:size]


def holder(servers: list[MemcachedServer], mkey: bytes) -> list[int]:
    """Indexes of the servers that hold ``mkey``."""
    return [i for i, s in enumerate(servers) if meta(s.address, mkey) is not None]


@pytest.fixture
def servers(
    memcached_server: MemcachedServer, memcached_server_2: MemcachedServer
) -> list[MemcachedServer]:
    return [memcached_server, memcached_server_2]


@pytest.fixture
async def backend(servers: list[MemcachedServer]) -> AsyncIterator[MemcachedBackend]:
    b = MemcachedBackend([s.address for s in servers], prefix="t" + uuid.uuid4().hex[:12])
    yield b
    await b.clear()
    await b.close()


def key(b: MemcachedBackend, *parts: str) -> str:
    return ":".join([b.prefix, *parts])


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "p:ns:r:" + "a" * 300,
        "p:ns:r:with space",
        "p:ns:r:tab\there",
        "p:ns:r:new\nline",
        "p:ns:r:ünïcödé-ключ-鍵",
        "p:ns:r:\x00\x7f",
        "é" * 200,
    ],
)
def test_names_fit_memcached(text: str) -> None:
    name = mc_key("e", text)
    assert len(name) <= KEY_LIMIT
    assert all(0x21 <= c <= 0x7E for c in name)
    assert name.startswith(b"E:")  # hashed names use the upper-case letter
    assert name.split(b"#")[0].startswith(b"E:p:ns:r:") or text.startswith("é")


def test_short_safe_names_stay_readable() -> None:
    assert mc_key("e", "oxicache:ns:route:3f2a") == b"e:oxicache:ns:route:3f2a"
    longest = "x" * (KEY_LIMIT - 2)
    assert mc_key("e", longest) == b"e:" + longest.encode()
    assert mc_key("e", longest + "x").startswith(b"E:")


def test_hashed_names_differ_when_only_the_tail_differs() -> None:
    head = "p:ns:r:" + "a" * 400
    assert mc_key("e", head + "1") != mc_key("e", head + "2")
    # A text that spells out another text's hashed name gets a different (exact) name.
    hashed = mc_key("e", head).decode()[2:]
    assert mc_key("e", hashed) != mc_key("e", head)


async def test_long_and_unicode_keys_round_trip(
    backend: MemcachedBackend, servers: list[MemcachedServer]
) -> None:
    keys = [
        key(backend, "ns", "r", "a" * 400),
        key(backend, "ns", "r", "a" * 400 + "b"),
        key(backend, "ns", "r", "ünïcödé ключ 鍵"),
        key(backend, "ns", "r", "with space"),
    ]
    for i, k in enumerate(keys):
        await backend.set(k, f"v{i}".encode(), 60, tags=["tag with space", "ключ"])
    for i, k in enumerate(keys):
        assert await backend.get(k) == f"v{i}".encode()
        assert holder(servers, mc_key("e", k)) == [backend.server_index(k)]
    # Invalidation by a unicode prefix and by a tag with a space reach the hashed names.
    await backend.delete_prefix(key(backend, "ns", "r", ""))
    assert [await backend.get(k) for k in keys] == [None] * 4
    await backend.set(keys[2], b"again", 60, tags=["tag with space"])
    assert await backend.get(keys[2]) == b"again"
    await backend.delete_tag("tag with space")
    assert await backend.get(keys[2]) is None


# --- the version header ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        Header(1.5, 1, 2, (), ()),
        Header(1e9, 2**56, 7, (3, 4, 5), (("path:a", 9),)),
        Header(2.0, 1, 1, (1,), (("é", 1), ("t" * 300, 2**63))),
    ],
)
def test_the_read_scan_agrees_with_the_full_decode(header: Header) -> None:
    """A hit checks the header with ``scan`` (no tags decoded); it must see what ``decode``
    sees, and refuse every truncation of it."""
    data = header.encode() + b"value"
    decoded, offset = Header.decode(data)
    assert decoded == header
    assert scan(data) == (header.expires_at, header.root, header.epoch, header.segs, offset)
    assert data[offset:] == b"value"
    for cut in range(offset):
        with pytest.raises(HeaderError):
            scan(data[:cut])
        with pytest.raises(HeaderError):
            Header.decode(data[:cut])


# --- TTLs ------------------------------------------------------------------------------------


def test_exptime_rules() -> None:
    now = 1_800_000_000.25
    assert exptime(0.001, now) == 1  # at least one second
    assert exptime(2.1, now) == 3  # rounded up
    assert exptime(60, now) == 60
    assert exptime(MAX_RELATIVE_TTL, now) == MAX_RELATIVE_TTL  # 30 days: still relative
    assert exptime(MAX_RELATIVE_TTL + 1, now) == 1_800_000_000 + MAX_RELATIVE_TTL + 2
    assert exptime(400 * DAY, now) == 1_800_000_001 + 400 * DAY


@pytest.mark.parametrize("days", [29, 31, 365])
async def test_long_ttls_keep_entries_alive(
    backend: MemcachedBackend, servers: list[MemcachedServer], days: int
) -> None:
    k = key(backend, "ns", "r", f"d{days}")
    await backend.set(k, b"long", days * DAY)
    # Sent as a relative 31 days, memcached would read a date in 1970 and drop the item at once.
    assert await backend.get(k) == b"long"
    found = meta(servers[backend.server_index(k)].address, mc_key("e", k))
    assert found is not None
    server_ttl, _ = found
    # memcached's clock ticks once a second and absolute times convert through it: a few
    # seconds either way.
    assert abs(server_ttl - days * DAY) <= 5
    left = await backend.ttl(k)
    assert left is not None and days * DAY - 5 < left <= days * DAY


async def test_subsecond_ttl_expires_on_time(backend: MemcachedBackend) -> None:
    # memcached keeps it for a whole second; the header's precise expiry ends it sooner.
    k = key(backend, "ns", "r", "short")
    await backend.set(k, b"s", 0.2)
    assert await backend.get(k) == b"s"
    await asyncio.sleep(0.35)
    assert await backend.get(k) is None
    assert await backend.ttl(k) is None


# --- sizes -----------------------------------------------------------------------------------


async def test_item_limit(backend: MemcachedBackend) -> None:
    k = key(backend, "ns", "r", "big")
    assert backend.max_item_size == DEFAULT_MAX_ITEM_SIZE
    value = os.urandom(DEFAULT_MAX_ITEM_SIZE)
    await backend.set(k, value, 60, tags=["a", "b"])  # a real memcached -I 1m takes it
    assert await backend.get(k) == value
    with pytest.raises(EntryTooLarge):
        await backend.set(k, value + b"x", 60)
    assert await backend.get(k) == value  # refused before writing: the old item stays


async def test_refused_before_any_io() -> None:
    # Nothing listens on this port: a write that reached the network would fail otherwise.
    b = MemcachedBackend([("127.0.0.1", free_port())], timeout=0.5)
    with pytest.raises(EntryTooLarge):
        await b.set("p:ns:r:k", b"x" * (DEFAULT_MAX_ITEM_SIZE + 1), 60)
    # Under max_item_size but with so many tags that the header overflows memcached's item.
    many = [f"tag-{i:05d}-" + "t" * 200 for i in range(200)]
    with pytest.raises(EntryTooLarge):
        await b.set("p:ns:r:k", b"x" * (DEFAULT_MAX_ITEM_SIZE - 100), 60, tags=many)
    assert b._conns is None  # no connection was even created
    await b.close()


# --- generation counters --------------------------------------------------------------------


async def test_one_round_trip_for_current_items_and_epoch_refresh(
    backend: MemcachedBackend, servers: list[MemcachedServer]
) -> None:
    k = key(backend, "ns", "r", "epoch")
    address = servers[backend.server_index(k)].address
    await backend.set(k, b"v", 60, tags=["mine"])
    await backend.delete_tag("someone-else")  # bumps the tag epoch, not "mine"
    found = meta(address, mc_key("e", k))
    assert found is not None
    before, _ = Header.decode(found[1])
    assert await backend.get(k) == b"v"  # tags checked: still current
    found = meta(address, mc_key("e", k))
    assert found is not None
    after, _ = Header.decode(found[1])
    epoch = int(raw(address, b"get " + mc_key("x", backend.prefix)).split(b"\r\n")[1])
    assert before.epoch != epoch and after.epoch == epoch  # rewritten under the new epoch
    assert after.tags == before.tags and after.expires_at == before.expires_at
    await backend.delete_tag("mine")
    assert await backend.get(k) is None


async def test_lost_counter_reads_as_miss(
    backend: MemcachedBackend, servers: list[MemcachedServer]
) -> None:
    k = key(backend, "ns", "r", "lost")
    address = servers[backend.server_index(k)].address
    await backend.set(k, b"v", 60, tags=["t"])
    # Eviction of a counter (here: deleted by hand) must never resurrect older entries.
    assert raw(address, b"delete " + mc_key("s", key(backend, "ns", ""))) == b"DELETED\r\n"
    assert await backend.get(k) is None
    await backend.set(k, b"w", 60, tags=["t"])  # recreated with a fresh random generation
    assert await backend.get(k) == b"w"
    # The same for a tag counter, once an epoch change makes readers look at the tags.
    assert raw(address, b"delete " + mc_key("t", f"{backend.prefix}:t")) == b"DELETED\r\n"
    await backend.delete_tag("other")
    assert await backend.get(k) is None


async def test_corrupt_item_is_a_miss(
    backend: MemcachedBackend, servers: list[MemcachedServer]
) -> None:
    k = key(backend, "ns", "r", "junk")
    address = servers[backend.server_index(k)].address
    name = mc_key("e", k)
    for junk in [b"", b"OXM", b"not a header at all", b"OXM\x01" + b"\x00" * 10]:
        cmd = b"set %s 0 60 %d\r\n%s" % (name, len(junk), junk)
        assert raw(address, cmd) == b"STORED\r\n"
        assert await backend.get(k) is None
        assert await backend.ttl(k) is None


# --- two servers -----------------------------------------------------------------------------


async def test_keys_spread_over_both_servers(
    backend: MemcachedBackend, servers: list[MemcachedServer]
) -> None:
    keys = [key(backend, "ns", "r", f"k{i}") for i in range(200)]
    for k in keys:
        await backend.set(k, k.encode(), 60, tags=["spread"])
    where = [holder(servers, mc_key("e", k)) for k in keys]
    assert all(len(w) == 1 for w in where)  # each entry on exactly one server
    assert [w[0] for w in where] == [backend.server_index(k) for k in keys]
    on_first = sum(1 for w in where if w == [0])
    assert 60 <= on_first <= 140, on_first  # rendezvous hashing: about half each

    # The same servers listed in the other order route every key to the same server.
    swapped = MemcachedBackend([s.address for s in reversed(servers)], prefix=backend.prefix)
    try:
        assert [await swapped.get(k) for k in keys] == [k.encode() for k in keys]
    finally:
        await swapped.close()

    # Invalidation reaches both servers' counters.
    await backend.delete_tag("spread")
    assert [await backend.get(k) for k in keys] == [None] * len(keys)


async def test_adding_a_server_moves_only_its_share(
    backend: MemcachedBackend, servers: list[MemcachedServer]
) -> None:
    one = MemcachedBackend([servers[0].address], prefix=backend.prefix)
    keys = [key(backend, "ns", "r", f"m{i}") for i in range(300)]
    moved = [k for k in keys if backend.server_index(k) != one.server_index(k)]
    # Going from one server to two moves about half the keys, and only to the new server.
    assert 90 <= len(moved) <= 210
    assert all(backend.server_index(k) == 1 for k in moved)
    await one.close()


# --- connections -----------------------------------------------------------------------------


def test_nothing_connects_at_construction() -> None:
    b = MemcachedBackend(["127.0.0.1:1", "[::1]:2", ("localhost", 3)])
    assert b._conns is None
    assert b.servers == [("127.0.0.1", 1), ("::1", 2), ("localhost", 3)]


def test_after_fork_the_child_opens_its_own_connections(servers: list[MemcachedServer]) -> None:
    b = MemcachedBackend([s.address for s in servers], prefix="t" + uuid.uuid4().hex[:12])
    k = f"{b.prefix}:ns:r:fork"

    async def parent_first() -> None:
        await b.set(k, b"parent", 60)
        assert await b.get(k) == b"parent"

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(parent_first())  # the parent's connections stay open
        pid = os.fork()
        if pid == 0:  # the child: the same backend object, inherited connections
            code = 1
            try:

                async def child() -> None:
                    assert await b.get(k) == b"parent"
                    await b.set(k, b"child", 60)
                    await b.close()

                asyncio.run(child())
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's own connections were not disturbed by the child.
        assert loop.run_until_complete(b.get(k)) == b"child"
        loop.run_until_complete(b.clear())
        loop.run_until_complete(b.close())
    finally:
        loop.close()


async def test_survives_a_server_restart(servers: list[MemcachedServer]) -> None:
    server = MemcachedServer()
    server.start()
    try:
        b = MemcachedBackend([server.address], prefix="t" + uuid.uuid4().hex[:12], timeout=0.5)
        k = key(b, "ns", "r", "restart")
        await b.set(k, b"v", 60)
        server.restart()  # empty, same port
        deadline = time.monotonic() + 10
        # A command sent on the connection the restart closed ends at emcache's timeout; the
        # pool reconnects in the background.
        while True:
            try:
                assert await b.get(k) is None
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        await b.set(k, b"w", 60)
        assert await b.get(k) == b"w"
        await b.close()
    finally:
        server.close()


async def test_a_read_cancelled_by_a_deadline_never_desyncs_the_connection() -> None:
    # The guard cancels slow reads. The reply that arrives later must not be taken for the
    # answer to the next command sent on a reused connection.
    server = MemcachedServer()
    server.start()
    b = MemcachedBackend([server.address], prefix="t" + uuid.uuid4().hex[:12], max_connections=1)
    try:
        keys = [key(b, "ns", "r", f"c{i}") for i in range(4)]
        for k in keys:
            await b.set(k, k.encode(), 60)
        for i in range(3):
            server.pause()
            try:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(b.get(keys[i]), 0.2)
            finally:
                server.resume()
            for k in keys:
                assert await b.get(k) == k.encode()
    finally:
        await b.close()
        server.close()
