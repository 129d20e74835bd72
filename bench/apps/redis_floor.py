"""Baseline: a FastAPI route whose only work is one Redis GET of page 1's bytes.

The floor of any cache that answers a hit from Redis inside a FastAPI route: routing, query
parsing and the Response class as in apps.prebuilt, plus one round trip to Redis on one
pipelined connection parsed by hiredis (the GETs of one turn of the event loop go out in one
write). No key is built, no entry decoded, no freshness judged, no deadline kept. A cache on
Redis can approach this figure, not pass it: the gap between it and apps.prebuilt is what the
network read itself costs the server (the await, the socket, and CPython's collector running
while requests wait; see apps/gc_tuned.py).

Self-contained on purpose (asyncio + hiredis only), so the floor owes nothing to oxicache.
"""

import asyncio
import collections
from urllib.parse import urlsplit

import hiredis
from fastapi import FastAPI
from starlette.responses import Response

from apps.common import REDIS_URL, control_routes, page_bytes

BODY = page_bytes(1)
KEY = b"floor:items:1"


def _command(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class _Redis(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiters: collections.deque[asyncio.Future] = collections.deque()
        self.outgoing: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            self.waiters.popleft().set_result(reply)

    def send(self, command: bytes) -> asyncio.Future:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self.outgoing.append(command)
        if len(self.outgoing) == 1:
            asyncio.get_running_loop().call_soon(self.flush)
        return waiter

    def flush(self) -> None:
        batch, self.outgoing = self.outgoing, []
        assert self.transport is not None
        self.transport.write(b"".join(batch))


_conn: _Redis | None = None


async def _redis() -> _Redis:
    global _conn
    if _conn is None:
        url = urlsplit(REDIS_URL)
        _, proto = await asyncio.get_running_loop().create_connection(
            _Redis, url.hostname or "127.0.0.1", url.port or 6379
        )
        db = url.path.strip("/") or "0"
        await proto.send(_command(b"SELECT", db.encode()))
        _conn = proto
    return _conn


app = FastAPI()
control_routes(app, "fastapi-redis-floor")


@app.get("/items")
async def items(page: int = 1) -> Response:
    redis = _conn or await _redis()
    body = await redis.send(_command(b"GET", KEY))
    if body is None:  # the first request after a flush: store it (not timed: warm-up)
        body = BODY
        await redis.send(_command(b"SET", KEY, BODY))
    return Response(body, media_type="application/json")
