"""Memcached backend, on `emcache <https://pypi.org/project/emcache/>`_ (asyncio-native).

Install with ``pip install 'oxicache[memcached]'``.

Why emcache: it is asyncio-native, released regularly, and a connection that an operation was
cancelled on (a deadline of :mod:`oxicache.backends.guard`) is closed instead of going back to
the pool half-read, so a late reply can never be taken for the answer to the next command.
Keep its per-operation ``timeout`` set (default 1 s): emcache does not fail a command whose
connection the server closes mid-flight (a restart); the command ends at that timeout.

Design
======

Servers and keys
    Each server gets its own single-node emcache client; a key goes to the server with the highest
    rendezvous (highest-random-weight) score ``blake2b(server || key)``, so adding or removing a
    server moves only that server's share of keys. Oxicache's key is kept as the memcached key
    (``e:<key>``) when it is printable ASCII without spaces and fits memcached's 250 bytes;
    otherwise the memcached key is ``E:<first bytes, unsafe ones as _>#<blake2b-160 hex>``.
    Counters use the same scheme with other letters (see below), so names never collide.

Invalidation without SCAN or tags: generation counters
    Memcached cannot list keys, so nothing is deleted by prefix or tag. Instead, integer
    counters stored in memcached (decimal text, bumped with ``incr``) name the current
    *generation* of

    - the backend (``r:<prefix>``), bumped by :meth:`~MemcachedBackend.clear`;
    - every key prefix that ends with ``:`` (``s:<prefix>``), bumped by ``delete_prefix`` —
      for ``"oxicache:ns:route:digest"`` these are ``"oxicache:"``, ``"oxicache:ns:"`` and
      ``"oxicache:ns:route:"``;
    - every tag (``t:<backend prefix>:<tag>``), bumped by ``delete_tag``;
    - the backend's *tag epoch* (``x:<prefix>``), bumped by every ``delete_tag`` after the tag.

    A stored item is a small binary header (magic, absolute expiry, the root, epoch, segment
    and tag versions it was written under) followed by the value. ``set`` reads the current
    counters first (creating missing ones with ``add`` of a random 56-bit start, so a counter
    that was evicted and recreated never repeats an old generation), then writes the item.

    ``get`` is one ``gets`` of the item, the root counter, the tag epoch and the key's segment
    counters, in one multi-get round trip to one server. Any version that differs (or a counter
    that is gone) makes the item a miss. The tags of an item are only known once it is read,
    so they are not in that round trip: while the tag epoch still equals the one in the header,
    no tag has been invalidated since the write and the item is served. Otherwise a second
    multi-get reads the item's tag counters; if they all still match, the item is served and its
    header is rewritten with the new epoch (``cas``, best effort), so the next read is one round
    trip again. Invalidations cost one ``incr`` per counter per server and never touch entries;
    invalidated items stay in memory until they expire or memcached evicts them (LRU).

Several servers
    Counters are kept on *every* server (each server has its own copy and ``delete_*`` bumps
    them all), so the value and all its counters are always fetched from the same server in
    one round trip. If a server cannot be reached during an invalidation the call raises after
    bumping the others; a server that missed a bump while partitioned could serve entries from
    before it until they expire, which is why the error is not swallowed. A restarted server is
    empty and so holds nothing stale.

Limits
    ``set`` refuses a value over ``max_item_size`` (default 1 MiB minus 4 KiB, room for the key,
    memcached's item header and the version header under memcached's default ``-I 1m``) with
    :class:`~oxicache.exceptions.EntryTooLarge` before any I/O. TTLs are rounded up to whole
    seconds (at least 1); one over 30 days is sent as an absolute Unix time, as memcached reads
    any larger relative number as a date. The header keeps the precise expiry, checked on read.
    ``delete_prefix`` and ``delete_tag`` return 0: memcached cannot count what they invalidate.

Reads and writes
    Reads (``get``, and the counters ``set`` reads) go over one pipelined connection per server,
    process and event loop (:mod:`oxicache.backends.memcached.reads`), which keeps the guard's
    read deadline itself without cancelling a task; writes, counters and invalidations go
    through emcache's pooled clients.

Connections are created lazily on first use, in the running event loop, and again after a
``fork()`` (the pid changed) or in another event loop; nothing is opened at construction.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ...exceptions import ConfigError, EntryTooLarge
from ..inherited import emcache_sockets
from .format import KEY_LIMIT, Header, HeaderError, exptime, mc_key, scan, segments
from .reads import Items, MemcachedError, MemcachedReads

try:
    import emcache
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "oxicache.backends.memcached needs emcache: pip install 'oxicache[memcached]'"
    ) from e

__all__ = ["DEFAULT_MAX_ITEM_SIZE", "ITEM_SIZE_LIMIT", "MemcachedBackend"]

#: Memcached's default largest item (``-I 1m``), counting key, item header and value.
ITEM_SIZE_LIMIT = 1024 * 1024
#: The default ``max_item_size``: what is left of an item for the value.
DEFAULT_MAX_ITEM_SIZE = ITEM_SIZE_LIMIT - 4096
# memcached's own per-item bytes (struct item, CAS, terminators), rounded up.
_ITEM_OVERHEAD = 96
_COUNTER_START_BITS = 56


class _ReadPlan(NamedTuple):
    server: int  # its index in `servers`
    ekey: bytes
    seg_keys: tuple[bytes, ...]
    command: bytes  # the ``gets`` of the entry and its counters


#: An entry read back, judged current but for its tags (see ``MemcachedBackend._judge``):
#: ``(stored bytes, offset of the value in them, expires_at, the tag epoch it was written
#: under, its CAS unique, the backend's tag epoch now)``. A plain tuple: built on every hit.
_Found = tuple[bytes, int, float, int, int | None, int | None]


#: Read plans kept per backend (see ``MemcachedBackend._plan``).
_PLANS_KEPT = 4096


@dataclass(slots=True)
class _Connections:
    pid: int
    loop: asyncio.AbstractEventLoop
    clients: list[emcache.Client]


def _parse_server(server: str | tuple[str, int]) -> tuple[str, int]:
    if isinstance(server, tuple):
        return str(server[0]), int(server[1])
    host, sep, port = server.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"memcached server {server!r} is not 'host:port'")
    return host.strip("[]"), int(port)


def _version(items: Items, key: bytes) -> int | None:
    item = items.get(key)
    if item is None:
        return None
    try:
        return int(item[0])
    except ValueError:
        return None


def _ignore_outcome(reply: asyncio.Future[bytes]) -> None:
    if not reply.cancelled():
        reply.exception()  # retrieved: a lost connection is not worth a warning


class MemcachedBackend:
    """A :class:`~oxicache.backends.Backend` on one or more memcached servers.

    ``servers`` are ``"host:port"`` strings or ``(host, port)`` pairs; ``prefix`` scopes
    :meth:`clear` and the tag counters (two apps with different prefixes never invalidate each
    other's tags); ``timeout`` bounds each operation (``None``: only the caller's deadline;
    the guard's read deadline is kept by the read connection itself); ``max_connections`` is
    per server, for emcache's pool (writes and invalidations: reads share one pipelined
    connection per server).
    """

    name = "memcached"
    #: ``get_within`` keeps its deadline itself: the guard need not cancel a read.
    reads_keep_deadlines = True

    def __init__(
        self,
        servers: Sequence[str | tuple[str, int]] = ("127.0.0.1:11211",),
        *,
        prefix: str = "oxicache",
        max_item_size: int = DEFAULT_MAX_ITEM_SIZE,
        item_size_limit: int = ITEM_SIZE_LIMIT,
        timeout: float | None = 1.0,
        connect_timeout: float = 1.0,
        max_connections: int = 8,
    ) -> None:
        if isinstance(servers, str):
            servers = [servers]
        self.servers = [_parse_server(s) for s in servers]
        if not self.servers:
            raise ConfigError("MemcachedBackend needs at least one server")
        if len(set(self.servers)) != len(self.servers):
            raise ConfigError(f"memcached servers listed twice: {servers!r}")
        if max_item_size + KEY_LIMIT + _ITEM_OVERHEAD > item_size_limit:
            raise ConfigError(
                f"max_item_size {max_item_size} leaves no room for the key and headers"
                f" in memcached items of {item_size_limit} bytes"
            )
        self.prefix = prefix
        self.max_item_size: int | None = max_item_size
        self.item_size_limit = item_size_limit
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self._ids = [f"{h}:{p}".encode() for h, p in self.servers]
        self._root = mc_key("r", prefix)
        self._epoch = mc_key("x", prefix)
        self._conns: _Connections | None = None
        #: A forked child's copies of its parent's clients, kept unused (`inherited_sockets`).
        self._inherited: list[_Connections] = []
        #: The read path: one pipelined connection per server (see ``reads``).
        self._reads = [MemcachedReads(host, port) for host, port in self.servers]
        self._plans: dict[str, _ReadPlan] = {}

    def __repr__(self) -> str:
        servers = ",".join(f"{h}:{p}" for h, p in self.servers)
        return f"MemcachedBackend(servers={servers!r}, prefix={self.prefix!r})"

    # --- routing and names ------------------------------------------------------------------

    def server_index(self, key: str) -> int:
        """Index in :attr:`servers` of the server that holds ``key``."""
        return self._index(mc_key("e", key))

    def _index(self, mkey: bytes) -> int:
        if len(self._ids) == 1:
            return 0
        scores = [
            hashlib.blake2b(sid + b"\x00" + mkey, digest_size=8).digest() for sid in self._ids
        ]
        return max(range(len(scores)), key=scores.__getitem__)

    def _tag_key(self, tag: str) -> bytes:
        return mc_key("t", f"{self.prefix}:{tag}")

    async def _clients(self) -> list[emcache.Client]:
        loop = asyncio.get_running_loop()
        conns = self._conns
        if conns is not None and conns.pid == os.getpid() and conns.loop is loop:
            return conns.clients
        # Forked or another loop: the old sockets belong to someone else; drop, never close.
        self._conns = None
        clients = [
            await emcache.create_client(
                [emcache.MemcachedHostAddress(host, port)],
                timeout=self.timeout,
                connection_timeout=self.connect_timeout,
                max_connections=self.max_connections,
                min_connections=1,
            )
            for host, port in self.servers
        ]
        current = self._conns
        if current is not None and current.pid == os.getpid() and current.loop is loop:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
            return current.clients
        self._conns = _Connections(os.getpid(), loop, clients)
        return clients

    async def _client_for(self, mkey: bytes) -> emcache.Client:
        return (await self._clients())[self._index(mkey)]

    async def connect(self) -> None:
        """Sets up this process's connections (for the running event loop): per server, the
        pipelined read connection and emcache's client for writes."""
        await asyncio.gather(*(reads.connect() for reads in self._reads))
        await self._clients()

    # --- reads ------------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        found = await self._lookup(key, None)
        return None if found is None else found[1]

    async def get_within(self, key: str, deadline: float) -> bytes | None:
        """``get`` that keeps its own deadline (:class:`TimeoutError` past it, connecting
        included) without cancelling any task: the guard's read path
        (``reads_keep_deadlines``)."""
        waiter = self.read_soon(key, deadline)
        if waiter is None:  # not connected yet
            found = await self._lookup(key, deadline)
            return None if found is None else found[1]
        got = self.finish_read(key, await waiter, deadline)
        return got if got is None or isinstance(got, bytes) else await got

    def read_soon(self, key: str, deadline: float) -> asyncio.Future[Items] | None:
        """The ``gets`` of ``key``'s entry and counters, sent at once on the live connection,
        as the future of its reply (to be judged by :meth:`finish_read`); None when this
        process and event loop have no live connection yet (then await :meth:`get_within`,
        which connects). The guard's hit path: one future awaited, no coroutine more."""
        plan = self._plan(key)
        proto = self._reads[plan.server].live()
        return None if proto is None else proto.send(plan.command, deadline)

    def finish_read(
        self, key: str, reply: Items, deadline: float
    ) -> bytes | Awaitable[bytes | None] | None:
        """The value that :meth:`read_soon`'s reply holds for ``key``, or None; when a tag was
        invalidated since the entry's write (perhaps not one of its own), an awaitable that
        checks its tags first (under ``deadline``)."""
        plan = self._plan(key)
        found = self._judge(plan, reply)
        if found is None:
            return None
        if found[5] == found[3]:  # no tag invalidated since the write
            return found[0][found[1] :]
        return self._value_if_tags_current(plan, found, deadline)

    async def _value_if_tags_current(
        self, plan: _ReadPlan, found: _Found, deadline: float
    ) -> bytes | None:
        settled = await self._settle(plan, found, deadline)
        return None if settled is None else settled[1]

    def inherited_sockets(self) -> list[Any]:
        """After ``fork()``, in the child: the sockets of the parent's read connections and
        of emcache's pooled ones, which this process must let go of without using them (it
        opens its own when used). This object forgets them, keeping the clients unused (no
        finaliser of theirs runs in the child)."""
        conns, self._conns = self._conns, None
        if conns is not None:
            self._inherited.append(conns)
        sockets = [sock for reads in self._reads for sock in reads.inherited_sockets()]
        return sockets + ([] if conns is None else emcache_sockets(conns.clients))

    def last_heard(self) -> float:
        """When a read connection last received anything (``time.monotonic()``, late replies
        included; 0 before any): the guard's breaker does not open while a slow server still
        answers."""
        return max(reads.last_heard() for reads in self._reads)

    async def ttl(self, key: str) -> float | None:
        found = await self._lookup(key, None)
        if found is None:
            return None
        left = found[0] - time.time()
        return left if left > 0 else None

    def _plan(self, key: str) -> _ReadPlan:
        """How ``key`` is read (its server, memcached names and ``gets`` command), kept for
        the keys read most recently: a hit then builds no names."""
        plan = self._plans.get(key)
        if plan is None:
            ekey = mc_key("e", key)
            seg_keys = tuple(mc_key("s", s) for s in segments(key))
            names = b" ".join([ekey, self._root, self._epoch, *seg_keys])
            plan = _ReadPlan(self._index(ekey), ekey, seg_keys, b"gets " + names + b"\r\n")
            if len(self._plans) >= _PLANS_KEPT:
                del self._plans[next(iter(self._plans))]  # the oldest
            self._plans[key] = plan
        return plan

    def _judge(self, plan: _ReadPlan, items: Items) -> _Found | None:
        """The entry of a ``gets`` reply if it is unexpired and written under the current
        root and segment counters, else None. Its tags still need checking when the tag epoch
        moved since its write."""
        item = items.get(plan.ekey)
        if item is None:
            return None
        value = item[0]
        try:
            expires_at, root, written_epoch, segs, offset = scan(value)
        except HeaderError:  # a foreign entry: a miss
            return None
        if expires_at <= time.time() or len(segs) != len(plan.seg_keys):
            return None
        if _version(items, self._root) != root:
            return None
        for skey, version in zip(plan.seg_keys, segs, strict=True):
            if _version(items, skey) != version:
                return None
        return value, offset, expires_at, written_epoch, item[1], _version(items, self._epoch)

    async def _lookup(self, key: str, deadline: float | None) -> tuple[float, bytes] | None:
        """``(expires_at, value)`` of the entry, or None (general path: connects if need be)."""
        plan = self._plan(key)
        loop = asyncio.get_running_loop()
        started = loop.time()
        reads = self._reads[plan.server]
        # Without the caller's deadline, emcache's per-operation ``timeout`` bounds reads too.
        limit = self.timeout if deadline is None else deadline
        found = self._judge(plan, await reads.request_items(plan.command, limit))
        if found is None:
            return None
        left = None if limit is None else max(limit - (loop.time() - started), 0.001)
        return await self._settle(plan, found, left, wait=deadline is None)

    async def _settle(
        self, plan: _ReadPlan, found: _Found, deadline: float | None, *, wait: bool = False
    ) -> tuple[float, bytes] | None:
        """``(expires_at, value)`` of an entry judged current but for its tags: when the tag
        epoch moved since its write, its own tags are checked (a second round trip, under
        ``deadline``) and, if still current, it is rewritten under the new epoch so that the
        next read is one round trip again. That rewrite is not waited for under a deadline."""
        value, offset, expires_at, written_epoch, cas, epoch = found
        if epoch != written_epoch:
            try:
                header, _ = Header.decode(value)
            except HeaderError:
                return None
            reads = self._reads[plan.server]
            if not await self._tags_current(reads, header, deadline):
                return None
            if epoch is not None and cas is not None:
                await self._refresh(
                    reads,
                    plan.ekey,
                    header.with_epoch(epoch),
                    value,
                    cas,
                    offset,
                    wait=wait,
                )
        return expires_at, value[offset:]

    async def _tags_current(
        self, reads: MemcachedReads, header: Header, deadline: float | None
    ) -> bool:
        if not header.tags:
            return True
        keys = [self._tag_key(tag) for tag, _ in header.tags]
        items = await reads.gets(keys, deadline)
        return all(
            _version(items, k) == version for k, (_, version) in zip(keys, header.tags, strict=True)
        )

    async def _refresh(
        self,
        reads: MemcachedReads,
        ekey: bytes,
        header: Header,
        value: bytes,
        cas: int,
        offset: int,
        *,
        wait: bool,
    ) -> None:
        """Rewrites the item under the current tag epoch so the next read is one round trip.
        Best effort: a concurrent write wins (``cas``), and a failure leaves a valid item.
        A read under a deadline does not wait for the answer."""
        now = time.time()
        data = header.encode() + value[offset:]
        try:
            reply = reads.cas_soon(ekey, data, cas, exptime(header.expires_at - now, now))
        except ConnectionError:
            return
        if not wait:
            reply.add_done_callback(_ignore_outcome)
            return
        with contextlib.suppress(MemcachedError, OSError):
            await reply

    # --- writes -----------------------------------------------------------------------------

    async def set(self, key: str, value: bytes, ttl: float, tags: Sequence[str] = ()) -> None:
        if self.max_item_size is not None and len(value) > self.max_item_size:
            raise EntryTooLarge(
                f"{len(value)} bytes is over the memcached backend's max_item_size"
                f" ({self.max_item_size})"
            )
        if not ttl > 0:
            raise ValueError(f"ttl must be > 0, got {ttl!r}")
        tag_list = list(dict.fromkeys(tags))
        ekey = mc_key("e", key)
        seg_keys = [mc_key("s", s) for s in segments(key)]
        tag_keys = [self._tag_key(t) for t in tag_list]
        # The header's size does not depend on the versions: check the whole item before I/O.
        blank = Header(0.0, 0, 0, (0,) * len(seg_keys), tuple((t, 0) for t in tag_list))
        total = len(blank.encode()) + len(value) + len(ekey) + _ITEM_OVERHEAD
        if total > self.item_size_limit:
            raise EntryTooLarge(
                f"{total} bytes with its key and {len(tag_list)} tags is over memcached's item"
                f" size limit ({self.item_size_limit})"
            )
        index = self._index(ekey)
        client = (await self._clients())[index]
        # The epoch is read before the tags (memcached answers a multi-get in order), so a
        # write that sees an epoch bumped by delete_tag also sees that tag's new version.
        versions = await self._versions(
            client, self._reads[index], [self._root, self._epoch, *seg_keys, *tag_keys]
        )
        now = time.time()
        header = Header(
            now + ttl,
            versions[self._root],
            versions[self._epoch],
            tuple(versions[k] for k in seg_keys),
            tuple((t, versions[k]) for t, k in zip(tag_list, tag_keys, strict=True)),
        )
        await client.set(ekey, header.encode() + value, exptime=exptime(ttl, now))

    async def _versions(
        self, client: emcache.Client, reads: MemcachedReads, keys: list[bytes]
    ) -> dict[bytes, int]:
        """The current value of each counter, creating missing ones."""
        items = await reads.gets(keys)
        versions: dict[bytes, int] = {}
        for k in keys:
            version = _version(items, k)
            if version is None:
                version = await self._create_counter(client, k)
            versions[k] = version
        return versions

    async def _create_counter(self, client: emcache.Client, key: bytes) -> int:
        start = secrets.randbits(_COUNTER_START_BITS) + 1
        try:
            await client.add(key, str(start).encode())
            return start
        except emcache.NotStoredStorageCommandError:
            pass  # another writer created it first: use theirs
        item = await client.get(key)
        if item is not None:
            try:
                return int(item.value)
            except ValueError:
                pass
        # Gone again (evicted) or garbage: this entry will read as a miss, which is safe.
        await client.set(key, str(start).encode())
        return start

    async def delete(self, key: str) -> bool:
        ekey = mc_key("e", key)
        client = await self._client_for(ekey)
        try:
            await client.delete(ekey)
        except emcache.NotFoundCommandError:
            return False
        return True

    # --- invalidation -----------------------------------------------------------------------

    async def delete_prefix(self, prefix: str) -> int:
        if prefix == "":
            await self.clear()
            return 0
        if not prefix.endswith(":"):
            raise ValueError(
                f"memcached can only invalidate prefixes that end with ':', got {prefix!r}"
            )
        await self._bump([mc_key("s", prefix)])
        return 0

    async def delete_tag(self, tag: str) -> int:
        # The tag first, then the epoch: a reader that sees the new epoch checks the tags.
        await self._bump([self._tag_key(tag), self._epoch])
        return 0

    async def clear(self) -> None:
        await self._bump([self._root])

    async def _bump(self, keys: Iterable[bytes]) -> None:
        """``incr`` each counter, in order, on every server; a missing counter needs nothing
        (entries read it as a mismatch). Raises the first failure after trying every server."""
        keys = list(keys)

        async def on(client: emcache.Client) -> None:
            for k in keys:
                with contextlib.suppress(emcache.NotFoundCommandError):
                    await client.increment(k, 1)

        results = await asyncio.gather(
            *(on(c) for c in await self._clients()), return_exceptions=True
        )
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def close(self) -> None:
        for reads in self._reads:
            reads.drop()
        conns, self._conns = self._conns, None
        if conns is None or conns.pid != os.getpid():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if conns.loop is running:
            await asyncio.gather(*(c.close() for c in conns.clients), return_exceptions=True)
