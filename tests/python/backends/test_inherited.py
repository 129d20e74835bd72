"""What a forked child lets go of: every connection a backend opened is listed by its
``inherited_sockets()`` (the fork hook points those descriptors at ``/dev/null``; the prefork
tests in test_fork.py run it on real servers). Checked against this process's descriptors:
each socket to the engine's servers that appeared while the backend was used must be listed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from typing import Any

import pytest

from oxicache.backends.inherited import (
    aiohttp_sockets,
    emcache_sockets,
    redis_client_sockets,
    socket_of,
)
from tests.python.backends.test_backend_contract import FACTORIES

ENGINES = ["redis", "redis-cluster", "redis-sentinel", "memcached"]


def _peer_ports_by_fd() -> dict[int, int]:
    """This process's TCP sockets: descriptor -> the remote port."""
    found: dict[int, int] = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        with contextlib.suppress(OSError):
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=fd)
            try:
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    found[fd] = sock.getpeername()[1]
            except OSError:
                pass
            finally:
                sock.detach()
    return found


@pytest.mark.parametrize("engine", ENGINES)
async def test_every_connection_a_backend_opened_is_listed(
    request: pytest.FixtureRequest, engine: str
) -> None:
    backend: Any = FACTORIES[engine](request, "t" + uuid.uuid4().hex[:12])
    before = set(_peer_ports_by_fd())
    try:
        # Writes (the client's pool), reads (the pipelined connection), several at once (so
        # a pool holds more than one connection), and a tag (a second command kind).
        await asyncio.gather(*(backend.set(f"k{i}", b"v", 60, tags=["t"]) for i in range(8)))
        assert await asyncio.gather(*(backend.get(f"k{i}") for i in range(8))) == [b"v"] * 8
        opened = {fd for fd in _peer_ports_by_fd() if fd not in before}
        assert opened, "the backend opened no connection"
        listed = {s.fileno() for s in backend.inherited_sockets()}
        assert opened <= listed, f"not listed: {sorted(opened - listed)} (listed {listed})"
    finally:
        await backend.clear()
        await backend.close()


async def test_kept_alive_http_connections_are_listed() -> None:
    """DynamoDB's client speaks HTTP through aiohttp; a connection it keeps alive is found
    (moto's server closes each one, so this uses a keep-alive server of its own)."""
    aiohttp = pytest.importorskip("aiohttp")
    from aiohttp import web

    async def ok(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.get(f"http://127.0.0.1:{port}/") as reply:
                    assert await reply.text() == "ok"
            found = aiohttp_sockets([session])
            assert [s.getpeername()[1] for s in found] == [port]
    finally:
        await runner.cleanup()


def test_the_readers_find_nothing_in_what_they_do_not_know() -> None:
    """Best effort: an unknown or closed object yields nothing, and never raises."""
    assert socket_of(None) is None
    assert aiohttp_sockets([object(), None]) == []
    assert emcache_sockets([object(), None]) == []
    assert redis_client_sockets(object()) == redis_client_sockets(None) == []

    class Closed:
        def get_extra_info(self, name: str) -> Any:
            raise RuntimeError("closed")

    assert socket_of(Closed()) is None
