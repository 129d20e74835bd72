"""The hit path of :class:`~oxicache.backends.redis.RedisBackend`: pipelined GETs on one
connection per event loop (:mod:`oxicache.backends.pipelined`), parsed by hiredis.

Measured here (``bench/inproc.py --backend``), taking a connection from redis-py's pool, its
retry and timeout wrappers and giving it back are most of the CPU a Redis hit costs through
redis-py; and a read cancelled by a deadline makes redis-py close its connection.

Scope: standalone Redis given by a ``redis://`` or ``unix://`` URL (with username, password
and database). TLS (``rediss://``), Cluster, Sentinel and a client passed in keep using
redis-py for reads too. Writes, invalidations and locks always go through redis-py.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from ... import _log
from ..pipelined import PipelinedConnection, PipelinedProtocol

__all__ = ["PipelinedReads", "reads_for_url"]

#: Whether the "hiredis is not installed" line was logged (once per process).
_warned_no_hiredis = False


class _ReplyError(Exception):
    """Redis answered a read with an error (``-ERR ...``)."""


class _Protocol(PipelinedProtocol):
    server = "redis"

    def __init__(self, hiredis: Any) -> None:
        super().__init__()
        self._reader = hiredis.Reader()
        self._protocol_error = hiredis.ProtocolError
        self._reply_error = hiredis.ReplyError

    def parse(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except self._protocol_error as exc:
                self.broken(f"redis protocol error: {exc}")
                return
            if reply is False:
                return
            if reply is None or reply.__class__ is bytes:
                answered = self.answer(reply)
            elif isinstance(reply, self._reply_error):
                answered = self.answer_error(_ReplyError(str(reply)))
            else:  # GET, AUTH and SELECT answer bytes or nil; anything else is not ours
                answered = self.answer_error(
                    TypeError(f"unexpected reply type {type(reply).__name__}")
                )
            if not answered:
                return


def _command(*parts: bytes) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


def _get(key: str) -> bytes:
    """``_command(b"GET", key.encode())`` in one formatting step (the hit path)."""
    raw = key.encode()
    return b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(raw), raw)


class PipelinedReads(PipelinedConnection):
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
        super().__init__()
        self._hiredis: Any = None  # imported on the first read (import oxicache stays light)
        self._host, self._port, self._path = host, port, path
        self._setup: list[bytes] = []
        if password is not None:
            auth = [b"AUTH"] + ([username.encode()] if username else []) + [password.encode()]
            self._setup.append(_command(*auth))
        if db:
            self._setup.append(_command(b"SELECT", str(db).encode()))

    async def _open(self, loop: asyncio.AbstractEventLoop) -> PipelinedProtocol:
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

    async def get(self, key: str) -> bytes | None:
        return cast("bytes | None", await self.request(_get(key)))

    async def get_within(self, key: str, deadline: float) -> bytes | None:
        """:meth:`get` that raises :class:`TimeoutError` once ``deadline`` seconds have passed
        without a reply (connecting included); see :meth:`PipelinedConnection.request`."""
        return cast("bytes | None", await self.request(_get(key), deadline))

    def read_soon(self, key: str, deadline: float) -> asyncio.Future[bytes | None] | None:
        """The GET of :meth:`get_within` sent at once on the live connection, as the future of
        its reply; None when this process and event loop have no live connection yet (the
        caller then awaits :meth:`get_within`, which connects). The hit path of
        :class:`~oxicache.backends.guard.GuardedBackend`: awaiting one future instead of a
        chain of coroutines keeps fewer objects alive while the request waits."""
        proto = self.live()
        return None if proto is None else proto.send(_get(key), deadline)


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
