"""Headers a dependency sets on the injected ``Response`` belong to that request.

A rate-limit counter, an ``X-Account`` header, a refreshed session cookie: FastAPI merges them
into the rendered response. They are never stored in the entry, and on a hit the current
request's own injected headers and cookies are sent with the replayed body.
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Response

from oxicache import CacheMiddleware, cache

_counter = itertools.count(1)


def rate_limit(response: Response, x_account: Annotated[str, Header()] = "anon") -> None:
    response.headers["X-RateLimit-Remaining"] = str(100 - next(_counter))
    response.headers["X-Account"] = x_account
    response.set_cookie("session", f"refreshed-for-{x_account}")


def make_app(*, middleware: bool = False) -> FastAPI:
    app = FastAPI()
    if middleware:
        app.add_middleware(CacheMiddleware)

    @app.get("/catalog", dependencies=[Depends(rate_limit)])
    @cache(ttl=60, public=True)  # the body is the same for everyone
    async def catalog() -> dict[str, list[int]]:
        app.state.runs = getattr(app.state, "runs", 0) + 1
        return {"items": [1, 2, 3]}

    return app


async def test_each_request_gets_its_own_dependency_headers_on_a_hit(client: Any) -> None:
    app = make_app()
    async with client(app) as c:
        alice = await c.get("/catalog", headers={"x-account": "alice"})
        bob = await c.get("/catalog", headers={"x-account": "bob"})
    assert app.state.runs == 1
    assert bob.headers["x-cache"] == "HIT" and bob.json() == {"items": [1, 2, 3]}
    assert alice.headers["x-account"] == "alice" and bob.headers["x-account"] == "bob"
    assert (
        int(bob.headers["x-ratelimit-remaining"]) == int(alice.headers["x-ratelimit-remaining"]) - 1
    )
    assert alice.headers.get_list("set-cookie") == [
        "session=refreshed-for-alice; Path=/; SameSite=lax"
    ]
    assert bob.headers.get_list("set-cookie") == ["session=refreshed-for-bob; Path=/; SameSite=lax"]


async def test_dependency_headers_are_never_part_of_the_entry(client: Any) -> None:
    """The entry was stored despite the dependency's Set-Cookie (it is not the handler's), and
    a shared cache in front never replays one client's cookie or counter to another."""
    app = make_app(middleware=True)
    async with client(app) as c:
        first = await c.get("/catalog", headers={"x-account": "alice"})
        second = await c.get("/catalog", headers={"x-account": "bob"})
        third = await c.get("/catalog", headers={"x-account": "carol"})
    assert first.status_code == second.status_code == third.status_code == 200
    assert app.state.runs == 1
    for r, who in ((second, "bob"), (third, "carol")):
        assert r.headers["x-account"] == who
        assert r.headers.get_list("set-cookie") == [
            f"session=refreshed-for-{who}; Path=/; SameSite=lax"
        ]


async def test_a_cookie_the_handler_sets_is_its_response_sent_once_and_not_stored(
    client: Any,
) -> None:
    """A header the handler itself sets on its ``Response`` parameter is part of its response
    (RFC 9111 §3: a ``Set-Cookie`` response is not stored here), sent once, not twice."""
    app = FastAPI()

    @app.get("/login")
    @cache(ttl=60)
    async def login(response: Response) -> dict[str, str]:
        response.set_cookie("session", "abc")
        return {"ok": "yes"}

    async with client(app) as c:
        r = await c.get("/login")
    assert r.headers.get_list("set-cookie") == ["session=abc; Path=/; SameSite=lax"]
    assert r.headers["cache-status"] == "oxicache; fwd=miss; detail=set-cookie"
