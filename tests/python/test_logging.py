"""Logging: every line under the ``oxicache`` logger hierarchy, rate-limited, and never key
material, request data or bodies, even when what fails quotes them in its exception."""

from __future__ import annotations

import asyncio
import logging
import pathlib
import re
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi import FastAPI, Request

import oxicache
from oxicache import CacheMiddleware, cache
from oxicache.backends import MemoryBackend

SECRET = "s3cr3t-T0KEN-4f9c"
PACKAGE = pathlib.Path(oxicache.__file__).parent


class Leaky(MemoryBackend):
    """A backend whose every failure quotes the key and the value it was given."""

    async def get(self, key: str) -> bytes | None:
        raise ConnectionError(f"cannot read {key} ({SECRET})")

    async def set(self, key: str, value: bytes, ttl: float, tags: Sequence[str] = ()) -> None:
        raise ConnectionError(f"cannot write {key}={value!r} ({SECRET})")


class LeakyCodec:
    def dumps(self, value: Any) -> bytes:
        return repr(value).encode()

    def loads(self, data: bytes) -> Any:
        raise ValueError(f"cannot decode {data!r}")


def make_app() -> FastAPI:
    app = FastAPI()
    fail = {"on": False}

    @app.get("/builder/{token}")
    @cache(ttl=60, key_builder=lambda request, args: _raise(request))
    async def builder(token: str) -> dict[str, str]:
        return {"token": token}

    @app.get("/unkeyable")
    @cache(ttl=60, key_builder=lambda request, args: object())
    async def unkeyable(q: str = "") -> dict[str, str]:
        return {"q": q}

    @app.get("/stale")
    @cache(ttl=1, stale_if_error=600)
    async def stale(q: str = "") -> dict[str, str]:
        if fail["on"]:
            raise RuntimeError(f"handler failed for {q}")
        return {"q": q, "body": SECRET}

    @app.get("/swr")
    @cache(ttl=1, stale_while_revalidate=600)
    async def swr(q: str = "") -> dict[str, str]:
        if fail["on"]:
            raise RuntimeError(f"refresh failed for {q}")
        return {"q": q, "body": SECRET}

    app.state.fail = fail
    return app


def _raise(request: Request) -> Any:
    raise ValueError(f"no key for {request.url}")


@cache(ttl=60, codec=LeakyCodec())
async def memoized(token: str) -> str:
    return f"value for {token}"


async def test_no_secret_in_logs(caplog: pytest.LogCaptureFixture, client: Any, clock: Any) -> None:
    caplog.set_level(logging.DEBUG, logger="oxicache")
    app = make_app()
    secret_headers = {"authorization": f"Bearer {SECRET}", "cookie": f"sid={SECRET}"}
    q = {"q": SECRET, "token": SECRET}
    async with client(app) as c:
        for _ in range(20):  # one line, not twenty (rate limit)
            assert (await c.get(f"/builder/{SECRET}", params=q)).status_code == 200
        await c.get("/unkeyable", params=q)
        await c.get("/stale", params=q)
        await c.get("/swr", params=q)
        r = await c.get("/swr", params={"q": "x"}, headers=secret_headers)  # credentials
        assert r.headers["x-cache"] == "BYPASS"
        app.state.fail["on"] = True
        clock.advance(5)
        r = await c.get("/stale", params=q)  # stale-if-error: the handler's error is logged
        assert r.headers["x-cache"] == "STALE"
        assert (await c.get("/swr", params=q)).headers["x-cache"] == "STALE"
        await asyncio.sleep(0.05)  # the failing background refresh

    # Through the middleware, with credentials and a body.
    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": SECRET.encode()})

    async with client(CacheMiddleware(asgi)) as c:
        await c.get(f"/{SECRET}", params=q, headers=secret_headers)
        await c.post(f"/{SECRET}", params=q, content=SECRET.encode())

    # A memoized value its codec cannot read back (the codec's error quotes the bytes).
    await memoized(SECRET)
    await memoized(SECRET)

    # A backend failing on every call, its errors quoting keys and values.
    oxicache.configure(Leaky(), backend_timeout=0.5)
    try:
        async with client(make_app()) as c:
            for i in range(12):
                if i == 2:
                    await asyncio.sleep(0.06)  # past the breaker's quiet spell (open_after)
                await c.get("/stale", params={"q": f"{SECRET}{i}"}, headers={"x-n": SECRET})
            await asyncio.sleep(0.05)
    finally:
        oxicache.configure("memory://")

    records = caplog.records
    text = caplog.text + "\n".join(r.getMessage() for r in records)
    kinds = {r.getMessage().split(":")[0] for r in records}
    assert len(records) >= 6, text  # the failures above were logged...
    assert "backend memory" in kinds, kinds
    assert "circuit open" in text
    assert SECRET not in text  # ...and none quotes the secret
    assert SECRET.lower() not in text.lower()
    assert "ValueError" in text and "RuntimeError" in text and "ConnectionError" in text
    for record in records:
        assert record.name == "oxicache" or record.name.startswith("oxicache."), record.name
    builder_lines = [r for r in records if "lookup failed" in r.getMessage()]
    assert len(builder_lines) == 1  # rate-limited: 20 failures, one line


def test_loggers_are_under_oxicache() -> None:
    """Every logger the package makes is ``oxicache`` or a child of it; nothing prints but the
    command line, whose output is its result."""
    names = []
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        names += re.findall(r"getLogger\(([^)]*)\)", source)
        if path != PACKAGE / "admin" / "cli.py":
            assert not re.search(r"^\s*print\(", source, re.M), path
        assert "logging.warning(" not in source and "logging.info(" not in source, path
    assert names
    for name in names:
        assert re.fullmatch(r"""["']oxicache(\.[\w.]+)?["']""", name), name
