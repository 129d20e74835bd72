"""The hit path of :class:`~oxicache.backends.redis.RedisBackend`: pipelined GETs on one
connection per event loop, parsed by hiredis.

Why not redis-py's client for reads: every command through it takes a connection from the
pool, wraps the call for retries and timeouts, and gives the connection back; measured here
(``bench/inproc.py --backend``), that is most of the CPU a Redis hit costs. And a read
cancelled by a deadline makes redis-py close its connection (the reply would otherwise be
read by the next command), so under a deadline every slow read also costs a reconnect.

This module keeps one TCP (or Unix) connection per process and event loop, writes the GETs
asked for during one turn of the event loop together (one system call for every request
being served at that moment), and matches replies to requests in order (Redis answers a
connection's commands in the order they were sent). A request whose caller gave up (a
deadline) keeps its place in the queue: its reply is read and dropped, so the stream never
loses sync and the connection survives a slow spell. hiredis parses the replies.

Scope: standalone Redis given by a ``redis://`` or ``unix://`` URL (with username, password
and database). TLS (``rediss://``), Cluster, Sentinel and a client passed in keep using
redis-py for reads too. Writes, invalidations and locks always go through redis-py.

Nothing here connects before the first read; a new process (fork) or another event loop
gets a connection of its own.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import importlib.util
import os
import time
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from ... import _log

__all__ = ["PipelinedReads", "reads_for_url"]

#: Whether the "hiredis is not installed" line was logged (once per process).
_warned_no_hiredis = False


class _ReplyError(Exception):
    """Redis answered a read with an error (``-ERR ...``)."""


class _Protocol(asyncio.Protocol):
    def __init__(self, hiredis: Any) -> None:
        self._reader = hiredis.Reader()
        self._protocol_error = hiredis.ProtocolError
        self._reply_error = hiredis.ReplyError
        self.waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        #: Commands written at the end of this turn of the event loop (see `send`).
        self.outgoing: list[bytes] = []
        #: (due, order sent, deadline, waiter) of the reads with a deadline, a heap by due
        #: time: reads with different deadlines may share the connection, and the one due
        #: first is not always the oldest. One timer watches the first due (see `_expire`).
        self.deadlines: list[tuple[float, int, float, asyncio.Future[Any]]] = []
        self._sent = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self._grace_given = False
        #: When the server last sent anything (``time.monotonic()``), late replies included.
        self.heard = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses; they write all the same)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.heard = time.monotonic()
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except self._protocol_error as exc:
                self._fail(ConnectionError(f"redis protocol error: {exc}"))
                if self.transport is not None:
                    self.transport.close()
                return
            if reply is False:
                return
            if not self.waiters:  # a reply nobody asked for: the stream is not ours
                self._fail(ConnectionError("unexpected reply from redis"))
                if self.transport is not None:
                    self.transport.close()
                return
            waiter = self.waiters.popleft()
            if waiter.done():  # its caller gave up (deadline): drop the reply, stay in sync
                continue
            if reply is None or reply.__class__ is bytes:
                waiter.set_result(reply)
            elif isinstance(reply, self._reply_error):
                waiter.set_exception(_ReplyError(str(reply)))
            else:  # GET, AUTH and SELECT answer bytes or nil; anything else is not ours
                waiter.set_exception(TypeError(f"unexpected reply type {type(reply).__name__}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"redis connection lost: {exc!r}"))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.deadlines.clear()
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)

    def send(self, command: bytes, deadline: float | None = None) -> asyncio.Future[Any]:
        """Queues a command; the commands queued during one turn of the event loop go out in
        one write (one system call for all the requests being handled together). With a
        ``deadline`` (seconds), the future fails with :class:`TimeoutError` once it passes."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionError("redis connection closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self.waiters.append(waiter)
        self.outgoing.append(command)
        if len(self.outgoing) == 1:
            loop.call_soon(self._flush)
        if deadline is not None:
            due = loop.time() + deadline
            self._sent += 1
            heapq.heappush(self.deadlines, (due, self._sent, deadline, waiter))
            if self._timer is None:
                self._arm(loop, due)
            elif due < self._timer_due:  # due before the read the timer watches
                self._timer.cancel()
                self._arm(loop, due)
        return waiter

    def _arm(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        self._timer_due = due
        self._timer = loop.call_at(due, self._expire)

    def _expire(self) -> None:
        """The one deadline timer: fails every read past its deadline (its reply, when it
        comes, is dropped in order, so the connection stays in sync), and re-arms for the
        next one due.

        A timer that fired late because the event loop was busy (by more than the deadline
        itself, 2 ms at least) measured the loop, not Redis, whose replies may be waiting in
        the socket: the reads then get one more deadline before any is failed."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        heap = self.deadlines
        while heap and heap[0][3].done():
            heapq.heappop(heap)
        if not heap:
            self._grace_given = False
            return
        deadline = heap[0][2]
        if not self._grace_given and now - self._timer_due > max(deadline, 0.002):
            self._grace_given = True
            self._arm(loop, now + deadline)
            return
        self._grace_given = False
        while heap and (heap[0][0] <= now or heap[0][3].done()):
            waiter = heapq.heappop(heap)[3]
            if not waiter.done():
                waiter.set_exception(TimeoutError())
        if heap:
            self._arm(loop, heap[0][0])

    def _flush(self) -> None:
        commands, self.outgoing = self.outgoing, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(commands))


def _command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


def _get(key: str) -> bytes:
    """``_command(b"GET", key.encode())`` in one formatting step (the hit path)."""
    raw = key.encode()
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(raw), raw)


class PipelinedReads:
    """GETs on one pipelined connection per process and event loop (see the module doc)."""

    def __init__(
        self,
        *,
        host: str | None = None,
        port: int = 6379,
        path: str | None = None,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._hiredis: Any = None  # imported on the first read (import oxicache stays light)
        self._host, self._port, self._path = host, port, path
        self._setup: list[bytes] = []
        if password is not None:
            auth = [b"AUTH"] + ([username.encode()] if username else []) + [password.encode()]
            self._setup.append(_command(*auth))
        if db:
            self._setup.append(_command(b"SELECT", str(db).encode()))
        #: How many connections of this process were lost (the backend resets redis-py's
        #: pool when it changes: the server the writes go to went away too).
        self.lost = 0
        self._proto: _Protocol | None = None
        self._owner: tuple[int, asyncio.AbstractEventLoop] | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def _connection(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        owner = (os.getpid(), loop)
        proto = self._proto
        if proto is not None and self._owner == owner:
            if not proto.closed:
                return proto
            self.lost += 1
            self._proto = None
        if self._owner != owner:
            # A forked child or another loop: the old socket is someone else's; forget it.
            self._proto, self._connecting, self._owner = None, None, owner
        if self._connecting is None or self._connecting.done():
            self._connecting = loop.create_future()
            connecting = self._connecting
            try:
                proto = await self._open(loop)
            except BaseException as exc:
                connecting.set_exception(exc if isinstance(exc, Exception) else ConnectionError())
                connecting.exception()  # retrieved: no "never retrieved" warning
                self._connecting = None
                raise
            self._proto = proto
            connecting.set_result(proto)
            return proto
        return await asyncio.shield(self._connecting)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        if self._hiredis is None:
            import hiredis  # the parser; installed with redis[hiredis]

            self._hiredis = hiredis

        def factory() -> _Protocol:
            return _Protocol(self._hiredis)

        if self._path is not None:
            _, proto = await loop.create_unix_connection(factory, self._path)
        else:
            _, proto = await loop.create_connection(factory, self._host or "localhost", self._port)
        for command in self._setup:
            await proto.send(command)  # an error here (bad password) raises
        return proto

    async def connect(self) -> None:
        """Opens this process's connection (for this event loop) now, if it is not open."""
        await self._connection()

    async def get(self, key: str) -> bytes | None:
        proto = await self._connection()
        return cast("bytes | None", await proto.send(_get(key)))

    async def get_within(self, key: str, deadline: float) -> bytes | None:
        """:meth:`get` that raises :class:`TimeoutError` once ``deadline`` seconds have passed
        without a reply (connecting included). The request keeps its place in the stream: its
        late reply is read and dropped. No task is cancelled, so no cancellation can be lost
        or swallowed on the way."""
        loop = asyncio.get_running_loop()
        proto = self._proto
        if proto is None or proto.closed or self._owner != (os.getpid(), loop):
            async with asyncio.timeout(deadline):
                proto = await self._connection()
        return cast("bytes | None", await proto.send(_get(key), deadline))

    def read_soon(self, key: str, deadline: float) -> asyncio.Future[bytes | None] | None:
        """The GET of :meth:`get_within` sent at once on the live connection, as the future of
        its reply; None when this process and event loop have no live connection yet (the
        caller then awaits :meth:`get_within`, which connects). The hit path of
        :class:`~oxicache.backends.guard.GuardedBackend`: awaiting one future instead of a
        chain of coroutines keeps fewer objects alive while the request waits."""
        proto = self._proto
        if (
            proto is None
            or proto.closed
            or proto.transport is None
            or proto.transport.is_closing()
            or self._owner != (os.getpid(), asyncio.get_running_loop())
        ):
            return None
        return proto.send(_get(key), deadline)

    def inherited_sockets(self) -> list[Any]:
        """After ``fork()``, in the child: the socket of the parent's connection (to be let go
        of, never used), and this object forgets it."""
        proto, self._proto, self._owner, self._connecting = self._proto, None, None, None
        transport = None if proto is None else proto.transport
        sock = None if transport is None else transport.get_extra_info("socket")
        return [] if sock is None else [sock]

    def last_heard(self) -> float:
        """When this process's connection last received anything from the server
        (``time.monotonic()``; 0 before any): a reply that came after its reader gave up
        still shows the server is up."""
        proto = self._proto
        return 0.0 if proto is None else proto.heard

    def drop(self) -> None:
        """Closes the connection (the backend's ``close()``): only from the process and event
        loop that own it; another's is forgotten, never touched."""
        proto, owner = self._proto, self._owner
        self._proto, self._owner, self._connecting = None, None, None
        if proto is None or proto.transport is None or owner is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if owner == (os.getpid(), running):
            proto.transport.close()


def reads_for_url(url: str, kwargs: dict[str, Any]) -> PipelinedReads | None:
    """The fast read path for a standalone ``redis://`` / ``unix://`` URL, or None when the
    URL or the options need redis-py itself (TLS, query options other than ``db``, client
    keyword arguments). Imports nothing: hiredis is loaded on the first read."""
    if kwargs:  # client options (timeouts, TLS settings...) that only redis-py knows
        return None
    if importlib.util.find_spec("hiredis") is None:
        # A missing speed-up is not a broken cache: redis-py reads with its own parser.
        global _warned_no_hiredis
        if not _warned_no_hiredis:
            _warned_no_hiredis = True
            _log.logger.warning(
                "hiredis is not installed: Redis reads go through redis-py's own parser"
                " (slower); pip install 'oxicache[redis]' installs it"
            )
        return None
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        if set(query) - {"db"}:
            return None
        db = int(query["db"][-1]) if "db" in query else 0
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if parts.scheme == "unix":
            if not parts.path:
                return None
            return PipelinedReads(path=parts.path, db=db, username=username, password=password)
        if parts.scheme != "redis":
            return None
        path = parts.path.strip("/")
        if path:
            db = int(path)
        return PipelinedReads(
            host=parts.hostname or "localhost",
            port=parts.port or 6379,
            db=db,
            username=username,
            password=password,
        )
    except ValueError:
        return None
