"""Redis backend: standalone, Cluster or Sentinel, over redis-py's asyncio client.

Install with ``pip install 'oxicache[redis]'`` (redis-py with the hiredis parser, which redis-py
picks up by itself when installed).

Layout, under ``prefix`` (default ``"oxicache"``):

- an entry is a plain string at its key, written with ``SET key value PX ttl_ms`` (value and TTL
  in one command) and read with one ``GET``;
- a tag is a sorted set ``"<prefix>:tag:<tag>"`` of the keys written with it, each scored by
  when its entry expires (Unix milliseconds). It is written in the same non-transactional
  pipeline as the entry (``SET``, ``ZADD``, ``ZREMRANGEBYSCORE``, ``PEXPIRE NX``, ``PEXPIRE
  GT``): every write drops the keys whose entries expired more than a minute ago (a margin for
  the clocks of the hosts writing one tag), so a tag written to all the time (one path under
  ever new query strings) lists its recent entries only, and the set lives exactly as long as
  its longest-lived entry and disappears with it. On a Cluster the entry and its tag sets may
  sit on different slots: the cluster pipeline sends each command to its own node, never a
  cross-slot ``MULTI``. ``PEXPIRE NX``/``GT`` need Redis 7.0 or newer.

Invalidation never uses ``KEYS``: ``delete_prefix`` walks ``SCAN MATCH <escaped prefix>*
COUNT 1000`` (every primary of a Cluster) and ``UNLINK``\\ s in batches; ``delete_tag`` pops the
tag set in chunks (``ZPOPMIN key 1000``, atomic, so an entry tagged while the invalidation runs
is either popped and deleted or kept in the set for the next one) and ``UNLINK``\\ s the keys.

Fork safety: nothing connects at construction. The client is created on first use and
remembered with the pid and event loop that created it; used from another process (after
``fork()``) or another event loop, the backend drops it and builds a new one. A client passed in
with ``client=`` belongs to the caller: it is used as is and never closed here.

Locks (cross-process single-flight, :mod:`oxicache.coordination.distributed_flight`):
:meth:`RedisBackend.try_lock` is ``SET key token NX PX lease`` in a small script that also reports
the lock as taken when it already holds the caller's token (an earlier attempt whose answer came
too late); :meth:`RedisBackend.unlock` a compare-and-delete through redis-py's
:class:`~redis.asyncio.lock.Lock`. Other backends have no locks: they coalesce within each
process only.

Bursts: at most ``max_connections`` operations are in flight per event loop (each holds at most
one connection per node); the others wait their turn instead of failing with redis-py's "Too
many connections". The pools of the clients the backend creates have that many connections;
for a client passed in, the limit is lowered to its pool size when that can be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...exceptions import ConfigError, EntryTooLarge
from ..inherited import redis_client_sockets
from .pubsub import RedisPubSub
from .reads import PipelinedReads, reads_for_url

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    Client = Redis | RedisCluster

__all__ = ["RedisBackend"]

#: ``try_lock``: set the lock if free; or report it taken when it already holds this token.
_TAKE_LOCK = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('get', KEYS[1]) == ARGV[1] then return 1 end
return 0
"""

#: Redis refuses strings over 512 MB (``proto-max-bulk-len``); keep a little room for the key.
DEFAULT_MAX_ITEM_SIZE = 512 * 1024 * 1024 - 64 * 1024
#: How long (ms) a key stays in its tag's set after its entry expired: more than the clocks
#: of the hosts writing one tag are expected to differ.
TAG_TRIM_MARGIN_MS = 60_000
#: Keys per SCAN step, per UNLINK batch and per ZPOPMIN chunk.
BATCH = 1000
_GLOB_SPECIAL = frozenset("*?[]\\")


def _escape_glob(text: str) -> str:
    """``text`` as a literal inside a Redis ``MATCH`` pattern."""
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


def _import_redis() -> Any:
    try:
        import redis.asyncio
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("RedisBackend needs redis-py: pip install 'oxicache[redis]'") from e
    return redis.asyncio


class RedisBackend(RedisPubSub):
    """A :class:`~oxicache.backends.Backend` on Redis.

    ``RedisBackend("redis://host:6379/0")`` (also ``rediss://`` and ``unix://``), or
    ``RedisBackend(client=redis.asyncio.Redis(...))`` / ``client=RedisCluster(...)``, or
    :meth:`cluster` / :meth:`sentinel`. With no URL and no client: ``redis://localhost:6379/0``.
    ``client_kwargs`` go to redis-py's constructor (``socket_timeout``, ``password``,
    ``ssl_ca_certs``...). ``decode_responses`` must stay off: values are bytes.
    ``publish``/``subscribe`` (:mod:`~oxicache.backends.redis_pubsub`) carry the two-tier
    coherence messages (:mod:`oxicache.coordination.coherence`).
    """

    name = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Client | None = None,
        prefix: str = "oxicache",
        cluster: bool | Sequence[tuple[str, int]] = False,
        sentinel: Sequence[tuple[str, int]] | None = None,
        service_name: str = "mymaster",
        sentinel_kwargs: dict[str, Any] | None = None,
        max_item_size: int | None = DEFAULT_MAX_ITEM_SIZE,
        max_connections: int = 100,
        pipelined_reads: bool = True,
        **client_kwargs: Any,
    ) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ConfigError("RedisBackend: prefix must be a non-empty string")
        if max_item_size is not None and max_item_size <= 0:
            raise ConfigError("RedisBackend: max_item_size must be positive (or None)")
        if max_connections < 1:
            raise ConfigError("RedisBackend: max_connections must be at least 1")
        if client_kwargs.get("decode_responses"):
            raise ConfigError("RedisBackend: decode_responses must be False (values are bytes)")
        modes = sum([client is not None, bool(cluster), sentinel is not None])
        if modes > 1:
            raise ConfigError("RedisBackend: pass only one of client=, cluster=, sentinel=")
        if client is not None and (url is not None or client_kwargs):
            raise ConfigError("RedisBackend: client= excludes a URL and client keyword arguments")
        if sentinel is not None and url is not None:
            raise ConfigError("RedisBackend: sentinel= takes (host, port) pairs, not a URL")

        self.prefix = prefix
        self.max_item_size = max_item_size
        self._tag_prefix = f"{prefix}:tag:"
        self._owned = client is None
        self._client: Client | None = client
        self._extra: list[Any] = []  # what to close with an owned client (the Sentinel's)
        self._pid = os.getpid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limit = max_connections
        self._sem = asyncio.Semaphore(max_connections)  # replaced per event loop in _conn()
        self._factory: Callable[[], tuple[Client, list[Any]]] | None = None
        #: Standalone URLs read through one pipelined hiredis connection (:mod:`.reads`).
        self._reads: PipelinedReads | None = None
        #: Whether ``get_within`` keeps its deadline itself (set below with ``_reads``).
        self.reads_keep_deadlines = False
        user_kwargs = dict(client_kwargs)
        client_kwargs = {**client_kwargs, "max_connections": max_connections}
        if client is not None:
            _check_bytes_client(client)
            self._limit = min(max_connections, _pool_size(client) or max_connections)
            self._where = f"client={type(client).__name__}"
        elif sentinel is not None:
            nodes = [(str(h), int(p)) for h, p in sentinel]
            if not nodes:
                raise ConfigError("RedisBackend: sentinel= needs at least one (host, port)")
            self._factory = lambda: _make_sentinel(
                nodes, service_name, sentinel_kwargs, client_kwargs
            )
            self._where = f"sentinel={nodes} service={service_name}"
        elif cluster and not isinstance(cluster, bool):
            nodes = [(str(h), int(p)) for h, p in cluster]
            if not nodes or url is not None:
                raise ConfigError("RedisBackend: cluster= takes startup nodes or True with a URL")
            self._factory = lambda: (_make_cluster(None, nodes, client_kwargs), [])
            self._where = f"cluster={nodes}"
        else:
            target = url or "redis://localhost:6379/0"
            if cluster:
                self._factory = lambda: (_make_cluster(target, None, client_kwargs), [])
            else:
                self._factory = lambda: (_make_url(target, client_kwargs), [])
                if pipelined_reads:
                    self._reads = reads_for_url(target, user_kwargs)
                    self.reads_keep_deadlines = self._reads is not None
            self._where = ("cluster " if cluster else "") + _redact(target)

    # --- construction helpers --------------------------------------------------------------

    @classmethod
    def cluster(
        cls,
        url_or_nodes: str | Sequence[tuple[str, int]] = "redis://localhost:6379",
        *,
        prefix: str = "oxicache",
        max_item_size: int | None = DEFAULT_MAX_ITEM_SIZE,
        max_connections: int = 100,
        **client_kwargs: Any,
    ) -> RedisBackend:
        """A Redis Cluster from the URL of any node or a list of ``(host, port)`` startup nodes."""
        if isinstance(url_or_nodes, str):
            return cls(
                url_or_nodes,
                prefix=prefix,
                cluster=True,
                max_item_size=max_item_size,
                max_connections=max_connections,
                **client_kwargs,
            )
        return cls(
            prefix=prefix,
            cluster=url_or_nodes,
            max_item_size=max_item_size,
            max_connections=max_connections,
            **client_kwargs,
        )

    @classmethod
    def sentinel(
        cls,
        sentinels: Sequence[tuple[str, int]],
        service_name: str = "mymaster",
        *,
        prefix: str = "oxicache",
        sentinel_kwargs: dict[str, Any] | None = None,
        max_item_size: int | None = DEFAULT_MAX_ITEM_SIZE,
        max_connections: int = 100,
        **client_kwargs: Any,
    ) -> RedisBackend:
        """The master of ``service_name`` as the sentinels report it
        (``Sentinel(sentinels).master_for(service_name)``); it follows failovers."""
        return cls(
            prefix=prefix,
            sentinel=sentinels,
            service_name=service_name,
            sentinel_kwargs=sentinel_kwargs,
            max_item_size=max_item_size,
            max_connections=max_connections,
            **client_kwargs,
        )

    def __repr__(self) -> str:
        return f"RedisBackend({self._where}, prefix={self.prefix!r})"

    # --- the client, per process and event loop --------------------------------------------

    def _conn(self) -> tuple[Client, asyncio.Semaphore]:
        """The client and the in-flight limit for the running event loop in this process."""
        client = self._client
        loop = asyncio.get_running_loop()
        pid = os.getpid()
        if client is not None and self._loop is loop and self._pid == pid:
            return client, self._sem
        if self._owned:
            # First use, or a child after fork(), or another event loop: the old client's
            # sockets belong to someone else; drop it without touching them, build a new one.
            assert self._factory is not None
            client, self._extra = self._factory()
            self._client = client
        assert client is not None
        self._sem = asyncio.Semaphore(self._limit)
        self._pid, self._loop = pid, loop
        return client, self._sem

    # --- the Backend protocol --------------------------------------------------------------

    async def connect(self) -> None:
        """Sets up this process's connections (for the running event loop): the pipelined read
        connection, and one pooled connection for writes (a PING; on a Cluster, the slot map)."""
        if self._reads is not None:
            await self._reads.connect()
        client, sem = self._conn()
        async with sem:
            await client.ping()

    async def get(self, key: str) -> bytes | None:
        if self._reads is not None:
            return await self._pipelined_get(key, None)
        client, sem = self._conn()
        async with sem:
            value = await client.get(key)
        if value is None or isinstance(value, bytes):
            return value
        raise TypeError("the Redis client decodes responses; create it with decode_responses=False")

    async def _drop_idle_connections(self) -> None:
        """The read connection was lost (a restart, a failover): the pool's idle connections
        are dead too. Drop them, so the next write connects afresh instead of failing once."""
        client = self._client
        pool = getattr(client, "connection_pool", None)
        if pool is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):
                await pool.disconnect(inuse_connections=False)

    async def get_within(self, key: str, deadline: float) -> bytes | None:
        """``get`` that keeps its own deadline when ``reads_keep_deadlines`` (the pipelined
        read path: :class:`TimeoutError` past it, no task cancelled, so the guard need not
        cancel); without it, a plain ``get``."""
        if self._reads is None:
            return await self.get(key)
        return await self._pipelined_get(key, deadline)

    def inherited_sockets(self) -> list[Any]:
        """After ``fork()``, in the child: the sockets of the parent's connections (the
        pipelined read connection, the client's pooled ones, a Cluster's per-node ones and a
        Sentinel client's connections to its sentinels), which this process must let go of
        without using them; the backend then connects afresh when used."""
        sockets = [] if self._reads is None else self._reads.inherited_sockets()
        for client in (self._client, *self._extra):
            sockets += redis_client_sockets(client)
        return sockets

    def last_heard(self) -> float:
        """When the pipelined read connection last received anything (``time.monotonic()``,
        late replies included; 0 without one): the guard's breaker does not open while a slow
        server still answers."""
        reads = self._reads
        return 0.0 if reads is None else reads.last_heard()

    def read_soon(self, key: str, deadline: float) -> asyncio.Future[bytes | None] | None:
        """The pipelined GET sent at once, as a future that fails with :class:`TimeoutError`
        past ``deadline``; None when there is no pipelined connection to send it on yet (or
        none at all: TLS, Cluster, Sentinel, a client passed in): then await
        :meth:`get_within`. See :meth:`PipelinedReads.read_soon`."""
        reads = self._reads
        return None if reads is None else reads.read_soon(key, deadline)

    async def _pipelined_get(self, key: str, deadline: float | None) -> bytes | None:
        reads = self._reads
        assert reads is not None
        lost = reads.lost
        try:
            if deadline is None:
                return await reads.get(key)
            return await reads.get_within(key, deadline)
        finally:
            if reads.lost != lost:
                await self._drop_idle_connections()

    async def set(self, key: str, value: bytes, ttl: float, tags: Sequence[str] = ()) -> None:
        if self.max_item_size is not None and len(value) > self.max_item_size:
            raise EntryTooLarge(
                f"{len(value)} bytes is over the Redis backend's limit of {self.max_item_size}"
            )
        if not (ttl > 0 and math.isfinite(ttl)):
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        ms = max(1, int(ttl * 1000))
        client, sem = self._conn()
        if not tags:
            async with sem:
                await client.set(key, value, px=ms)
            return
        pipe = client.pipeline(transaction=False)
        pipe.set(key, value, px=ms)
        now_ms = int(time.time() * 1000)
        for tag in dict.fromkeys(tags):
            tag_key = self._tag_prefix + tag
            pipe.zadd(tag_key, {key: now_ms + ms})
            # The keys of entries expired a while ago leave the set. The margin covers clocks
            # that differ between the hosts writing one tag: a live entry is never dropped
            # from its tag (an invalidation must reach it), an expired one stays a little.
            pipe.zremrangebyscore(tag_key, "-inf", now_ms - TAG_TRIM_MARGIN_MS)
            # NX sets the first expiry of a new set, GT only ever lengthens it: the set outlives
            # every entry it lists by at most nothing.
            pipe.pexpire(tag_key, ms, nx=True)
            pipe.pexpire(tag_key, ms, gt=True)
        async with sem:
            await pipe.execute()

    async def ttl(self, key: str) -> float | None:
        client, sem = self._conn()
        async with sem:
            ms = int(await client.pttl(key))
        if ms == -2:
            return None
        if ms == -1:  # written by someone else without a TTL
            return math.inf
        return ms / 1000.0

    async def delete(self, key: str) -> bool:
        client, sem = self._conn()
        async with sem:
            return int(await client.unlink(key)) > 0

    async def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("delete_prefix needs a non-empty prefix")
        client, sem = self._conn()
        pattern = _escape_glob(prefix) + "*"
        removed = 0
        batch: list[bytes] = []
        async with sem:
            # On a Cluster, scan_iter walks every primary in turn.
            async for key in client.scan_iter(match=pattern, count=BATCH):
                batch.append(key)
                if len(batch) >= BATCH:
                    removed += int(await client.unlink(*batch))
                    batch = []
            if batch:
                removed += int(await client.unlink(*batch))
        return removed

    async def delete_tag(self, tag: str) -> int:
        client, sem = self._conn()
        tag_key = self._tag_prefix + tag
        removed = 0
        async with sem:
            while True:
                popped: list[tuple[bytes, float]] = await client.zpopmin(tag_key, BATCH)  # type: ignore[assignment]
                if not popped:
                    return removed
                removed += int(await client.unlink(*[member for member, _ in popped]))

    async def clear(self) -> None:
        await self.delete_prefix(self.prefix + ":")

    # --- listing (operators' tools: oxicache.admin) ------------------------------------------

    async def scan(self, prefix: str) -> AsyncIterator[list[tuple[str, int]]]:
        """The entries whose keys start with ``prefix``, in batches of ``(key, bytes)``:
        ``SCAN MATCH`` (every primary of a Cluster), then one pipelined ``STRLEN`` per batch.
        Tag sets (not strings) are left out; so are locks (they are not entries)."""
        client, sem = self._conn()
        pattern = _escape_glob(prefix) + "*"
        batch: list[str] = []
        async with sem:
            async for raw in client.scan_iter(match=pattern, count=BATCH):
                key = raw.decode() if isinstance(raw, bytes) else str(raw)
                if not key.startswith(self._tag_prefix) and not key.endswith(":lock"):
                    batch.append(key)
                if len(batch) >= BATCH:
                    yield await self._sized(client, batch)
                    batch = []
            if batch:
                yield await self._sized(client, batch)

    @staticmethod
    async def _sized(client: Client, keys: list[str]) -> list[tuple[str, int]]:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.strlen(key)
        sizes = await pipe.execute(raise_on_error=False)
        # Gone since the scan (0), or not a string (an error): not an entry.
        return [(k, n) for k, n in zip(keys, sizes, strict=True) if isinstance(n, int) and n > 0]

    async def tagged(self, tag: str) -> list[str]:
        """The keys written with ``tag`` that may still be live: every key its set lists
        (``ZRANGE``), the recently expired included (see ``TAG_TRIM_MARGIN_MS``)."""
        client, sem = self._conn()
        async with sem:
            members = await client.zrange(self._tag_prefix + tag, 0, -1)
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    # --- cross-process single-flight (oxicache.coordination.distributed_flight) --------------

    async def try_lock(self, key: str, lease: float, token: str | None = None) -> str | None:
        """Takes the lock ``key`` for ``lease`` seconds if nobody holds it (``SET key token NX
        PX lease``, never blocking): the token that proves ownership, or None when another
        holder has it. With ``token`` (a caller retrying), a lock already held with that very
        token is reported as taken: a first attempt whose answer came too late for its
        caller may have set it, and that caller must not wait for itself."""
        if not (lease > 0 and math.isfinite(lease)):
            raise ValueError(f"lease must be a positive number of seconds, got {lease!r}")
        client, sem = self._conn()
        mine = token or uuid.uuid4().hex
        millis = max(int(lease * 1000), 1)
        async with sem:
            taken = await client.eval(_TAKE_LOCK, 1, key, mine, millis)
        return mine if int(taken) == 1 else None

    async def unlock(self, key: str, token: str) -> bool:
        """Releases the lock ``key`` if ``token`` still owns it (compare-and-delete, one Lua
        script): True if released; False if it expired or another holder has it now."""
        from redis.exceptions import LockNotOwnedError

        client, sem = self._conn()
        lock = client.lock(key, thread_local=False)
        try:
            async with sem:
                await lock.do_release(token.encode())
        except LockNotOwnedError:
            return False
        return True

    async def close(self) -> None:
        if self._reads is not None:
            self._reads.drop()
        if not self._owned:
            return
        client, extra, loop = self._client, self._extra, self._loop
        self._client, self._extra, self._loop = None, [], None
        if client is None or self._pid != os.getpid() or loop is not asyncio.get_running_loop():
            return  # another process's or another loop's sockets: dropped, not touched
        for c in [client, *extra]:
            await c.aclose()


# --- client factories ---------------------------------------------------------------------


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url


def _pool_size(client: Any) -> int | None:
    """The connection limit of a redis-py client's pool (per node on a Cluster), if readable."""
    size = getattr(getattr(client, "connection_pool", None), "max_connections", None)
    if size is None:
        kwargs = getattr(getattr(client, "nodes_manager", None), "connection_kwargs", None)
        size = kwargs.get("max_connections") if isinstance(kwargs, dict) else None
    return size if isinstance(size, int) and size > 0 else None


def _check_bytes_client(client: Any) -> None:
    get_encoder = getattr(client, "get_encoder", None)
    if get_encoder is not None and getattr(get_encoder(), "decode_responses", False):
        raise ConfigError("RedisBackend: the client decodes responses; values must stay bytes")


def _no_retry(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with redis-py's own retries off (redis-py 6+ retries three times with backoff
    by default): a backend never retries by itself; the guard decides. A ``retry=`` given by the
    user is kept."""
    if "retry" in kwargs:
        return kwargs
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return {**kwargs, "retry": Retry(NoBackoff(), 0)}


def _make_url(url: str, kwargs: dict[str, Any]) -> Client:
    aioredis = _import_redis()
    client: Client = aioredis.Redis.from_url(url, **_no_retry(kwargs))
    return client


def _make_cluster(
    url: str | None, nodes: Sequence[tuple[str, int]] | None, kwargs: dict[str, Any]
) -> Client:
    _import_redis()
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    # Redirections (MOVED, ASK) are still followed: they are routing, not retries.
    kwargs = _no_retry(kwargs)
    if url is not None:
        return RedisCluster.from_url(url, **kwargs)
    assert nodes is not None
    return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes], **kwargs)


def _make_sentinel(
    nodes: Sequence[tuple[str, int]],
    service_name: str,
    sentinel_kwargs: dict[str, Any] | None,
    kwargs: dict[str, Any],
) -> tuple[Client, list[Any]]:
    aioredis = _import_redis()
    if sentinel_kwargs is None:
        # What redis-py would use (the socket options), without its retries.
        sentinel_kwargs = {k: v for k, v in kwargs.items() if k.startswith("socket_")}
    manager = aioredis.Sentinel(
        list(nodes), sentinel_kwargs=_no_retry(sentinel_kwargs), **_no_retry(kwargs)
    )
    master: Client = manager.master_for(service_name)
    return master, list(manager.sentinels)
