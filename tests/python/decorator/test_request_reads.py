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


class _Authenticate:
    """Starlette's documented pattern: a middleware puts the user on ``request.state``
    (``scope["state"]``), and, as some do, on ``scope["user"]`` and a custom scope key."""

    def __init__(self, app: object) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        if scope["type"] == "http":
            token = dict(scope["headers"]).get(b"authorization", b"").decode()
            user = token.removeprefix("Bearer ") or "anonymous"
            scope.setdefault("state", {})["user"] = user
            scope["tenant"] = user
        await self.app(scope, receive, send)  # type: ignore[operator]


READERS = {
    "state": lambda request: request.state.user,
    "scope-state": lambda request: request.scope["state"]["user"],
    "scope-custom": lambda request: request.scope["tenant"],
    "scope-get": lambda request: request.scope.get("tenant"),
    "mapping": lambda request: request["tenant"],
    "scope-client": lambda request: str(request.scope["client"]),
    "scope-headers": lambda request: str(dict(request.scope["headers"]).get(b"authorization")),
}


@pytest.mark.parametrize("read", list(READERS))
async def test_identity_from_middleware_never_reaches_another_user(client, caplog, read) -> None:
    """request.state.* and request.scope[...] are inputs no key holds: alice's answer never
    reaches bob, and the route answers uncached (logged once)."""
    app = FastAPI()
    app.add_middleware(_Authenticate)
    reader = READERS[read]

    @app.get("/me")
    @cache(ttl=60)
    async def me(request: Request) -> dict[str, str]:
        return {"who": str(reader(request))}

    caplog.set_level(logging.WARNING, logger="oxicache")
    async with client(app) as c:
        answers = []
        for who in ("alice", "bob", "alice", "bob"):
            r = await c.get("/me", headers={"authorization": f"Bearer {who}"})
            answers.append((who, r))
    for who, r in answers:
        assert r.status_code == 200
        if read != "scope-client":  # the others answer with the user
            assert who in r.json()["who"], (read, who, r.json())
        assert xc(r) != "HIT"
    assert sum("no cache key can hold" in m for m in caplog.messages) == 1


async def test_reading_keyed_parts_of_the_scope_still_caches(client) -> None:
    app = FastAPI()

    @app.get("/where")
    @cache(ttl=60)
    async def where(request: Request) -> dict[str, str]:
        return {
            "path": request.scope["path"],
            "method": request.scope["method"],
            "url": str(request.url),
            "query": request.query_params.get("q", ""),
        }

    async with client(app) as c:
        first, second = await c.get("/where?q=1"), await c.get("/where?q=1")
    assert xc(first) == "MISS" and xc(second) == "HIT"
    assert second.json()["url"] == "http://testserver/where?q=1"
