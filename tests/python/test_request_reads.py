"""Handlers that read the Request: what they read joins the key, or the route goes uncached.

docs/http.md (decorator mode): "The danger is an input the handler reads that the key does not
see (a header, a cookie, request.url, the Host)". RFC 9111 §4.1 is the model: a response may
only answer requests that agree on the fields it depended on.
"""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI, Request

import oxicache
from oxicache import cache


def xc(r) -> str:
    return r.headers["x-cache"]


async def test_a_header_read_in_the_handler_keys_the_entry(client) -> None:
    """The bench's identity check: an API key read from request.headers never leaks."""
    app = FastAPI()
    runs = 0

    @app.get("/me")
    @cache(ttl=60)
    async def me(request: Request) -> dict[str, str]:
        nonlocal runs
        runs += 1
        return {"who": request.headers.get("x-api-key", "anonymous")}

    async with client(app) as c:
        first = await c.get("/me", headers={"x-api-key": "alice"})
        bob = await c.get("/me", headers={"x-api-key": "bob"})
        alice = await c.get("/me", headers={"x-api-key": "alice"})
        alice_again = await c.get("/me", headers={"x-api-key": "alice"})
        anonymous = await c.get("/me")
    assert first.json() == alice.json() == alice_again.json() == {"who": "alice"}
    assert bob.json() == {"who": "bob"} and anonymous.json() == {"who": "anonymous"}
    # The first response revealed the input, so it was not stored under a key without it.
    assert "detail=learned-input" in first.headers["cache-status"]
    assert xc(alice_again) == "HIT" and alice_again.headers["vary"] == "x-api-key"
    assert runs == 4


@pytest.mark.parametrize("read", ["client", "user-headers-items", "session-cookies"])
async def test_inputs_no_key_can_hold_make_the_route_uncached(client, caplog, read) -> None:
    app = FastAPI()

    @app.get("/x")
    @cache(ttl=60)
    async def handler(request: Request) -> dict[str, str]:
        if read == "client":
            return {"v": str(request.client.host if request.client else None)}
        if read == "user-headers-items":
            return {"v": str(sorted(k for k, _ in request.headers.items()))}
        return {"v": str(request.cookies)}

    caplog.set_level(logging.WARNING, logger="oxicache")
    async with client(app) as c:
        responses = [await c.get("/x") for _ in range(3)]
    if read == "session-cookies":  # cookies are a header: keyed like one
        assert [xc(r) for r in responses] == ["BYPASS", "MISS", "HIT"]
        assert responses[2].headers["vary"] == "cookie"
        return
    assert all(xc(r) == "BYPASS" for r in responses)
    assert "detail=reads-request" in responses[2].headers["cache-status"]
    assert sum("no cache key can hold" in m for m in caplog.messages) == 1


async def test_a_key_builder_takes_responsibility(client) -> None:
    app = FastAPI()

    @app.get("/x")
    @cache(ttl=60, key_builder=lambda request, args: "one")
    async def handler(request: Request) -> dict[str, str]:
        return {"v": str(request.client.host if request.client else None)}

    async with client(app) as c:
        first, second = await c.get("/x"), await c.get("/x")
    assert (xc(first), xc(second)) == ("MISS", "HIT")


async def test_learned_names_survive_configure(client) -> None:
    app = FastAPI()

    @app.get("/me")
    @cache(ttl=60)
    async def me(request: Request) -> dict[str, str | None]:
        return {"lang": request.headers.get("accept-language")}

    async with client(app) as c:
        await c.get("/me", headers={"accept-language": "fr"})
        oxicache.configure(header_name="X-Cache")  # rebuilds the compiled route settings
        await c.get("/me", headers={"accept-language": "fr"})
        en = await c.get("/me", headers={"accept-language": "en"})
        fr = await c.get("/me", headers={"accept-language": "fr"})
    assert en.json() == {"lang": "en"} and fr.json() == {"lang": "fr"} and xc(fr) == "HIT"
