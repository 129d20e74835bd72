"""Pipelined reads on one connection per process and event loop: what the Redis and the
Memcached hit paths share.

Why not each library's client for reads: a command through a pooled client takes a
connection from the pool (under load, requests queue for one in Python), wraps the call for
retries and timeouts and gives the connection back; and a read cancelled by a deadline makes
the client close its connection (the reply would otherwise be read by the next command), so
under a deadline every slow read also costs a reconnect.

Here one TCP (or Unix) connection per process and event loop carries every read. The
commands asked for during one turn of the event loop are written together (one system call
for every request being served at that moment), and replies are matched to requests in order
(Redis and memcached both answer a connection's commands in the order they were sent). A
request whose caller gave up (a deadline) keeps its place in the queue: its reply is read and
dropped, so the stream never loses sync and the connection survives a slow spell.

Deadlines are kept here, without cancelling any task: one timer watches the read due first.
A deadline measures the server, not the event loop: it starts when the command is written
(at the end of the loop's turn, not when the request asked), a timer that fires late because
the loop was busy gives the reads one more deadline, a due read is failed only after a
couple more turns of the loop, in which the replies already in the socket are read, and a due
read whose server has answered since it was written (slow, working through the queue, not
hung) is given one more deadline.

A protocol subclass parses its server's replies and hands each to :meth:`PipelinedProtocol.
answer`; a :class:`PipelinedConnection` subclass opens the connection and sends its set-up
commands. Nothing connects before the first read; a new process (fork) or another event loop
gets a connection of its own.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import os
import time
from typing import Any, cast

__all__ = ["GRACE_TURNS", "PipelinedConnection", "PipelinedProtocol"]

#: Turns of the event loop a due read is given before it fails (see `PipelinedProtocol._expire`).
GRACE_TURNS = 2

#: A read's place in the deadline heap: (due, order sent, deadline, waiter, when written
#: (``time.monotonic()``), whether it was given a second deadline).
_Due = tuple[float, int, float, "asyncio.Future[Any]", float, bool]


class PipelinedProtocol(asyncio.Protocol):
    """One pipelined connection: the queue of waiting reads, their deadlines and the batched
    writes. Subclasses implement :meth:`parse` (the server's replies, in order)."""

    #: The server's name in error messages.
    server = "server"

    def __init__(self) -> None:
        self.waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        #: Commands written at the end of this turn of the event loop (see `send`).
        self.outgoing: list[bytes] = []
        #: (due, order sent, deadline, waiter, when written (``time.monotonic()``), whether
        #: given its second deadline) of the reads with a deadline, a heap by due time: reads
        #: with different deadlines may share the connection, and the one due first is not
        #: always the oldest. One timer watches the first due (see `_expire`).
        self.deadlines: list[_Due] = []
        #: The deadlines (seconds) and waiters of the reads queued but not written yet.
        self.unsent_deadlines: list[float] = []
        self.unsent_waiters: list[asyncio.Future[Any]] = []
        self._sent = 0
        #: The deadline timer, or the turns of grace before failing (see `_expire`).
        self._timer: asyncio.Handle | None = None
        self._timer_due = 0.0
        self._grace_given = False
        #: When the server last sent anything (``time.monotonic()``), late replies included.
        self.heard = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses; they write all the same)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.heard = time.monotonic()
        self.parse(data)

    def parse(self, data: bytes) -> None:
        """Feeds ``data``; calls :meth:`answer` or :meth:`answer_error` for each complete
        reply, or :meth:`broken` when the stream cannot be read."""
        raise NotImplementedError

    def answer(self, reply: Any) -> bool:
        """The next waiting read gets ``reply`` (dropped if its caller gave up). False when
        nobody asked for a reply: the connection is then closed."""
        if not self.waiters:
            self.broken(f"unexpected reply from {self.server}")
            return False
        waiter = self.waiters.popleft()
        if not waiter.done():  # done: its caller gave up (deadline); drop it, stay in sync
            waiter.set_result(reply)
        return True

    def answer_error(self, exc: Exception) -> bool:
        """The next waiting read fails with ``exc`` (the server refused that one command)."""
        if not self.waiters:
            self.broken(f"unexpected reply from {self.server}")
            return False
        waiter = self.waiters.popleft()
        if not waiter.done():
            waiter.set_exception(exc)
        return True

    def broken(self, why: str) -> None:
        """The stream is not ours or cannot be parsed: fail every read and close."""
        self._fail(ConnectionError(why))
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"{self.server} connection lost: {exc!r}"))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.deadlines.clear()
        self.unsent_deadlines, self.unsent_waiters = [], []
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(exc)

    def send(self, command: bytes, deadline: float | None = None) -> asyncio.Future[Any]:
        """Queues a command; the commands queued during one turn of the event loop go out in
        one write (one system call for all the requests being handled together). With a
        ``deadline`` (seconds), the future fails with :class:`TimeoutError` once it passes."""
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionError(f"{self.server} connection closed")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self.waiters.append(waiter)
        self.outgoing.append(command)
        if len(self.outgoing) == 1:
            loop.call_soon(self._flush)
        if deadline is not None:
            # Its clock starts when the command is written (`_flush`), not now: the rest of
            # this turn of the loop (other requests' work) is not the server's time.
            self.unsent_deadlines.append(deadline)
            self.unsent_waiters.append(waiter)
        return waiter

    def _start_deadlines(self, loop: asyncio.AbstractEventLoop) -> None:
        """The deadlines of the reads just written start now."""
        now, written = loop.time(), time.monotonic()
        heap = self.deadlines
        for deadline, waiter in zip(self.unsent_deadlines, self.unsent_waiters, strict=True):
            self._sent += 1
            heapq.heappush(heap, (now + deadline, self._sent, deadline, waiter, written, False))
        self.unsent_deadlines, self.unsent_waiters = [], []
        due = heap[0][0]
        if self._timer is None:
            self._arm(loop, due)
        elif due < self._timer_due:  # due before the read the timer watches
            self._timer.cancel()
            self._arm(loop, due)

    def _arm(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        self._timer_due = due
        self._timer = loop.call_at(due, self._expire)

    def _expire(self) -> None:
        """The one deadline timer: fails every read past its deadline (its reply, when it
        comes, is dropped in order, so the connection stays in sync), and re-arms for the
        next one due.

        A deadline measures the server, not the event loop, so a read is not failed while
        its reply may be waiting in the socket:

        - a timer that fired late because the loop was busy (by more than the deadline
          itself, 2 ms at least) gives the reads one more deadline;
        - a due read is failed only after :data:`GRACE_TURNS` more turns of the loop, each of
          which reads the sockets that are ready. (An event loop may run its due timers
          before it looks at the sockets, as uvloop does: after a long turn, a reply that
          came during it would otherwise be thrown away for a miss.)
        - and a due read whose server has sent anything since the read was written is given
          one more deadline, once (see `_fail_due`)."""
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
        self._timer = loop.call_soon(self._fail_due, now, GRACE_TURNS)

    def _fail_due(self, now: float, turns: int) -> None:
        """Fails the reads due at ``now`` once ``turns`` more turns of the loop have passed.

        Except a read whose server has sent a reply since the read was written: replies come
        in order, so the server is working through the queue in front of it (slow, as on a
        host whose CPU it shares with its clients), not hung. Such a read gets one more
        deadline, once; a hung server (nothing heard since the write) still costs a read its
        one deadline."""
        loop = asyncio.get_running_loop()
        if turns:
            self._timer = loop.call_soon(self._fail_due, now, turns - 1)
            return
        self._timer = None
        heap, heard = self.deadlines, self.heard
        while heap and (heap[0][0] <= now or heap[0][3].done()):
            _, order, deadline, waiter, written, extended = heapq.heappop(heap)
            if waiter.done():
                continue
            if not extended and heard >= written:
                heapq.heappush(heap, (now + deadline, order, deadline, waiter, written, True))
                continue
            waiter.set_exception(TimeoutError())
        if heap:
            self._arm(loop, heap[0][0])

    def _flush(self) -> None:
        commands, self.outgoing = self.outgoing, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(commands))
        if self.unsent_waiters and not self.closed:
            self._start_deadlines(asyncio.get_running_loop())


class PipelinedConnection:
    """This process's pipelined connection to one server, per event loop. Subclasses give
    :meth:`_open` (connect, and send any set-up commands)."""

    def __init__(self) -> None:
        #: How many connections of this process were lost.
        self.lost = 0
        self._proto: PipelinedProtocol | None = None
        self._owner: tuple[int, asyncio.AbstractEventLoop] | None = None
        self._connecting: asyncio.Future[PipelinedProtocol] | None = None

    async def _open(self, loop: asyncio.AbstractEventLoop) -> PipelinedProtocol:
        raise NotImplementedError

    async def _connection(self) -> PipelinedProtocol:
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

    async def connect(self) -> None:
        """Opens this process's connection (for this event loop) now, if it is not open."""
        await self._connection()

    async def request(self, command: bytes, deadline: float | None = None) -> Any:
        """Sends ``command`` and awaits its reply; with a ``deadline`` (seconds, connecting
        included), :class:`TimeoutError` once it passes without one. The request keeps its
        place in the stream: a late reply is read and dropped. No task is cancelled, so no
        cancellation can be lost or swallowed on the way."""
        if deadline is None:
            return await (await self._connection()).send(command)
        proto = self.live()
        if proto is None:
            async with asyncio.timeout(deadline):
                proto = await self._connection()
        return await proto.send(command, deadline)

    def live(self) -> PipelinedProtocol | None:
        """This process's and event loop's open connection, or None (not connected yet)."""
        proto = self._proto
        if (
            proto is None
            or proto.closed
            or proto.transport is None
            or proto.transport.is_closing()
            or self._owner != (os.getpid(), asyncio.get_running_loop())
        ):
            return None
        return proto

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
