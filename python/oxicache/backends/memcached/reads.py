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
one command they answer. Anything else closes the connection.
"""

from __future__ import annotations

import asyncio
from typing import cast

from ..pipelined import PipelinedConnection, PipelinedProtocol

__all__ = ["Items", "MemcachedReads"]

#: A ``gets`` reply: each key found, with its value and its CAS unique (None for ``get``).
Items = dict[bytes, tuple[bytes, int | None]]

_STORAGE_REPLIES = frozenset((b"STORED", b"EXISTS", b"NOT_FOUND", b"NOT_STORED"))
_ERRORS = (b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")


class MemcachedError(Exception):
    """Memcached refused a command (``ERROR``, ``CLIENT_ERROR``, ``SERVER_ERROR``)."""


class _Protocol(PipelinedProtocol):
    server = "memcached"

    def __init__(self) -> None:
        super().__init__()
        #: The start of a reply that has not fully arrived yet.
        self._rest = b""
        self._items: Items = {}

    def parse(self, data: bytes) -> None:
        # Replies usually arrive whole: then ``data`` is parsed as it is, with no copy.
        buf = self._rest + data if self._rest else data
        pos = 0
        try:
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                if buf.startswith(b"VALUE ", pos):
                    fields = buf[pos + 6 : eol].split(b" ")
                    if len(fields) not in (3, 4):
                        raise ValueError("malformed VALUE line")
                    start = eol + 2
                    end = start + int(fields[2])
                    if len(buf) < end + 2:
                        break  # the data block is still coming
                    if buf[end : end + 2] != b"\r\n":
                        raise ValueError("data block without its terminator")
                    cas = int(fields[3]) if len(fields) == 4 else None
                    self._items[fields[0]] = (buf[start:end], cas)
                    pos = end + 2
                    continue
                line = buf[pos:eol]
                pos = eol + 2
                if line == b"END":
                    items, self._items = self._items, {}
                    if not self.answer(items):
                        return
                elif line in _STORAGE_REPLIES:
                    if not self.answer(line):
                        return
                elif line.startswith(_ERRORS):
                    self._items = {}
                    if not self.answer_error(MemcachedError(line.decode("ascii", "replace"))):
                        return
                else:
                    raise ValueError("unexpected line")
        except ValueError as exc:
            self.broken(f"memcached protocol error: {exc}")
            return
        self._rest = buf[pos:] if pos < len(buf) else b""


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
