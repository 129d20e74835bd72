"""The read path of :class:`~oxicache.backends.memcached.MemcachedBackend`: pipelined
multi-key ``gets`` on one connection per server, process and event loop
(:mod:`oxicache.backends.pipelined`), in memcached's text protocol.

Why not emcache for reads: each of its commands takes a connection from a pool of
``max_connections``. Under load, requests queue for a connection in Python, so a read's
deadline fires while the reply it waits for is not even asked for yet: the hit becomes a miss
and the handler runs exactly when the server is busiest. And a read cancelled by a deadline
closes its connection. Here every read is written at once, replies come back in order, and a
late reply is read and dropped. Writes, counters and invalidations stay on emcache.

Replies understood (the memcached protocol's text commands): ``VALUE <key> <flags> <bytes>
[<cas>]`` blocks ended by ``END`` for ``get``/``gets``; ``STORED``, ``EXISTS``, ``NOT_FOUND``
and ``NOT_STORED`` for ``cas``; ``ERROR``, ``CLIENT_ERROR`` and ``SERVER_ERROR`` fail the
one command they answer. Anything else closes the connection. The replies are parsed by the
Rust core (``parse_memcached_replies``).
"""

from __future__ import annotations

import asyncio
from typing import cast

from ..._core import parse_memcached_replies
from ..pipelined import PipelinedConnection, PipelinedProtocol

__all__ = ["Items", "MemcachedReads"]

#: A ``gets`` reply: each key found, with its value and its CAS unique (None for ``get``).
Items = dict[bytes, tuple[bytes, int | None]]


class MemcachedError(Exception):
    """Memcached refused a command (``ERROR``, ``CLIENT_ERROR``, ``SERVER_ERROR``)."""


class _Protocol(PipelinedProtocol):
    server = "memcached"

    def __init__(self) -> None:
        super().__init__()
        #: The start of a reply that has not fully arrived yet.
        self._rest = b""

    def parse(self, data: bytes) -> None:
        # Replies usually arrive whole: then ``data`` is parsed as it is, with no copy.
        buf = self._rest + data if self._rest else data
        try:
            replies, used = parse_memcached_replies(buf)
        except ValueError as exc:
            self.broken(f"memcached protocol error: {exc}")
            return
        self._rest = buf[used:] if used < len(buf) else b""
        for reply in replies:
            if reply.__class__ is str:
                answered = self.answer_error(MemcachedError(reply))
            else:
                answered = self.answer(reply)
            if not answered:
                return


class MemcachedReads(PipelinedConnection):
    """Pipelined reads to one memcached server (see the module doc)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self._host, self._port = host, port

    async def _open(self, loop: asyncio.AbstractEventLoop) -> PipelinedProtocol:
        _, proto = await loop.create_connection(_Protocol, self._host, self._port)
        return proto

    async def gets(self, keys: list[bytes], deadline: float | None = None) -> Items:
        """The items found among ``keys`` with their CAS uniques, in one round trip;
        :class:`TimeoutError` past ``deadline`` seconds (connecting included)."""
        return await self.request_items(b"gets " + b" ".join(keys) + b"\r\n", deadline)

    async def request_items(self, command: bytes, deadline: float | None = None) -> Items:
        """:meth:`gets` with its command already built."""
        return cast(Items, await self.request(command, deadline))

    def cas_soon(self, key: bytes, value: bytes, cas: int, exptime: int) -> asyncio.Future[bytes]:
        """Sends ``cas`` at once, as the future of its reply (``STORED``, ``EXISTS``...); raises
        :class:`ConnectionError` without a live connection."""
        proto = self.live()
        if proto is None:
            raise ConnectionError("memcached connection closed")
        command = b"cas %b 0 %d %d %d\r\n%b\r\n" % (key, exptime, len(value), cas, value)
        return cast("asyncio.Future[bytes]", proto.send(command))
