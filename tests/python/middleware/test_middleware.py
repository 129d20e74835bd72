"""``CacheMiddleware`` in front of real ASGI apps, driven over HTTP.

Every test builds an app (FastAPI, a plain Starlette app or a raw ASGI callable), puts
``CacheMiddleware`` in front of it and checks what a client sees: status, headers, body bytes,
and how many times the app ran. Each test cites the rule it checks (RFC 9111, RFC 9110,
RFC 5861, RFC 9211; docs/http.md for the stricter policies of this project).

Time: the middleware computes ages from the store's clock, so ``clock.advance(s)`` ages every
stored response by ``s`` seconds; apps that send a ``Date`` take it from the same clock
(:func:`http_date`). Nothing sleeps.
"""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import oxicache
from oxicache import CacheMiddleware, ConfigError, cache, config

ROOT = Path(__file__).resolve().parents[3]
HIT_STATUS = re.compile(r"^oxicache; hit; ttl=(-?\d+)$")

RawHeaders = list[tuple[bytes, bytes]]


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def now() -> float:
    """The store's clock: the middleware's idea of the current time."""
    return config.get_store().now()


def http_date(offset: float = 0.0) -> str:
    """An IMF-fixdate ``offset`` seconds from the store's clock (RFC 9110 §5.6.7), rounded up
    to the next whole second: a Date never lies in the past, so it adds no apparent age
    (RFC 9111 §4.2.3) and ages stay exact."""
    return formatdate(math.ceil(now()) + offset, usegmt=True)


def xc(r: httpx.Response) -> str | None:
    return r.headers.get("x-cache")


def cs(r: httpx.Response) -> str | None:
    return r.headers.get("cache-status")


def assert_hit(r: httpx.Response, ttl: int | None = None) -> None:
    """Answered from the cache (RFC 9211 §2.1 ``hit``, §2.5 ``ttl``)."""
    assert xc(r) == "HIT", r.headers
    m = HIT_STATUS.match(cs(r) or "")
    assert m, r.headers
    if ttl is not None:
        assert ttl - 1 <= int(m.group(1)) <= ttl, cs(r)


def assert_stored_miss(r: httpx.Response) -> None:
    """Forwarded and stored (RFC 9211 §2.2 ``fwd``, §2.7 ``stored``). Why it was forwarded
    (``miss``, ``stale``, ``request``) is checked where it matters, in
    test_cache_status_fwd_names_why_the_request_was_forwarded."""
    assert xc(r) == "MISS", r.headers
    assert cs(r) in {f"oxicache; fwd={why}; stored" for why in ("miss", "stale", "request")}


def assert_not_stored(r: httpx.Response, detail: str) -> None:
    """Forwarded and not stored, with the reason (RFC 9211 §2.2, §2.8 ``detail``)."""
    assert xc(r) == "MISS", r.headers
    assert cs(r) == f"oxicache; fwd=miss; detail={detail}"


def bypass_label(detail: str, name: bytes = b"x-cache") -> RawHeaders:
    """The fields the cache adds to the response of a request it passed to the app without a
    lookup, as the decorator labels its bypasses (RFC 9211 §2.2 ``fwd=bypass``: the cache was
    configured to go to the origin; §2.8 ``detail``: a fixed reason, never key material)."""
    status = f"oxicache; fwd=bypass; detail={detail}".encode()
    return [(name, b"BYPASS"), (b"cache-status", status)]


def assert_bypassed(r: httpx.Response, detail: str, app_headers: RawHeaders | None = None) -> None:
    """Passed through without a lookup: labelled ``BYPASS`` with the reason, once, and no
    ``Age``. With ``app_headers`` (what the app sent): the reply's fields are exactly those,
    in order, followed by the two label fields, which are the only additions."""
    assert r.headers.get_list("x-cache") == ["BYPASS"], r.headers
    assert r.headers.get_list("cache-status") == [f"oxicache; fwd=bypass; detail={detail}"]
    assert "age" not in r.headers, r.headers
    if app_headers is not None:
        assert list(r.headers.raw) == [*app_headers, *bypass_label(detail)]


def age(r: httpx.Response) -> int:
    """The Age field (RFC 9111 §5.1)."""
    values = r.headers.get_list("age")
    assert len(values) == 1, r.headers
    return int(values[0])


class Origin:
    """A raw ASGI app whose answer tests change between requests.

    ``body=None`` answers ``body-N`` for run N, so a reply shows which run produced it. The
    request headers of every run are kept in ``seen``.
    """

    def __init__(
        self,
        headers: Iterable[tuple[str, str]] = (),
        *,
        status: int = 200,
        body: bytes | None = None,
        chunks: Sequence[bytes] | None = None,
    ) -> None:
        self.status = status
        self.headers = list(headers)
        self.body = body
        self.chunks = chunks
        self.seen: list[httpx.Headers] = []
        self.methods: list[str] = []
        self.scopes: list[dict[str, Any]] = []
        #: The response fields of every run, as sent.
        self.sent: list[RawHeaders] = []

    @property
    def runs(self) -> int:
        return len(self.seen)

    def request(self, i: int = -1) -> httpx.Headers:
        """The headers of the request of run ``i`` (the last by default)."""
        return self.seen[i]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        while True:  # read the request body, as a real app does
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        self.scopes.append(scope)
        self.methods.append(scope["method"])
        self.seen.append(httpx.Headers(list(scope["headers"]), encoding="latin-1"))
        if self.chunks is not None:
            chunks = list(self.chunks)
        else:
            chunks = [self.body if self.body is not None else b"body-%d" % self.runs]
        headers = [(n.lower().encode(), v.encode()) for n, v in self.headers]
        if self.status != 304 and self.chunks is None:
            headers.append((b"content-length", str(len(chunks[0])).encode()))
        self.sent.append(list(headers))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})


class Reply:
    """A response collected from a direct ASGI call."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        start = messages[0]
        assert start["type"] == "http.response.start", messages
        self.status: int = start["status"]
        self.raw_headers: RawHeaders = [(bytes(n), bytes(v)) for n, v in start["headers"]]
        self.body = b"".join(m.get("body", b"") for m in messages[1:])
        assert messages[-1].get("more_body", False) is False

    def headers_without(self, *names: bytes) -> RawHeaders:
        return [(n, v) for n, v in self.raw_headers if n.lower() not in names]

    def get(self, name: bytes) -> bytes | None:
        return next((v for n, v in self.raw_headers if n.lower() == name), None)


async def call(
    app: Any,
    path: str = "/",
    headers: Sequence[tuple[bytes, bytes]] = (),
    *,
    method: str = "GET",
    query: bytes = b"",
    body: bytes = b"",
) -> Reply:
    """One request straight into an ASGI app, with any header bytes (no client validation)."""
    scope = http_scope(path, headers, method=method, query_string=query)
    messages: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the app answers
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        messages.append(dict(message))

    await app(scope, receive, send)
    return Reply(messages)


def http_scope(
    path: str, headers: Sequence[tuple[bytes, bytes]] = (), **extra: Any
) -> dict[str, Any]:
    """An ASGI ``http`` scope for ``GET path`` on ``testserver``; ``extra`` overrides."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    scope.update(extra)
    return scope


class Runs:
    """Counts calls."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def fastapi_app(
    cache_control: str = "max-age=60", **options: Any
) -> tuple[FastAPI, dict[str, Runs]]:
    """A FastAPI app with CacheMiddleware outermost and counters at every layer inside it:
    ``entered`` (a middleware inside the cache, before routing), ``dependency``, ``handler``."""
    app = FastAPI()
    counts = {"entered": Runs(), "dependency": Runs(), "handler": Runs()}

    @app.middleware("http")
    async def count_entries(request: Request, call_next: Any) -> Any:
        counts["entered"]()
        return await call_next(request)

    def dependency() -> int:
        return counts["dependency"]()

    @app.get("/items")
    async def items(response: Response, n: int = Depends(dependency)) -> dict[str, Any]:
        counts["handler"]()
        response.headers["cache-control"] = cache_control
        return {"items": [1, 2, 3], "run": n}

    app.add_middleware(CacheMiddleware, **options)
    return app, {k: v for k, v in counts.items()}


def count(counter: Runs) -> int:
    return counter.n


# ---------------------------------------------------------------------------------------------
# 1. A hit is answered before routing
# ---------------------------------------------------------------------------------------------


async def test_fastapi_miss_then_hit_answered_before_routing(client, clock) -> None:
    """RFC 9111 §4 (a fresh stored response answers without contacting the origin), §4.2.3 and
    §5.1 (Age), RFC 9211 §2.1/§2.2/§2.5/§2.7 (hit, fwd=miss, ttl, stored): the second request
    never enters the app: no middleware inside the cache, no dependency, no handler."""
    app, counts = fastapi_app()
    async with client(app) as c:
        first = await c.get("/items")
        clock.advance(10)
        second = await c.get("/items")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content == b'{"items":[1,2,3],"run":1}'
    assert_stored_miss(first)
    assert age(first) == 0
    assert_hit(second, ttl=50)
    assert age(second) == 10
    assert second.headers["cache-control"] == "max-age=60"
    assert second.headers["content-type"] == "application/json"
    assert second.headers["content-length"] == str(len(second.content))
    assert second.headers.get_list("x-cache") == ["HIT"]
    assert len(second.headers.get_list("cache-status")) == 1
    assert {k: count(v) for k, v in counts.items()} == {"entered": 1, "dependency": 1, "handler": 1}


async def test_starlette_app_miss_then_hit(client, clock) -> None:
    """RFC 9111 §4, §5.1: a plain Starlette app, wrapped with ``Middleware``."""
    runs = Runs()

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"home {runs()}", headers={"Cache-Control": "max-age=30"})

    app = Starlette(routes=[Route("/", home)], middleware=[Middleware(CacheMiddleware)])
    async with client(app) as c:
        a = await c.get("/")
        clock.advance(29)
        b = await c.get("/")
        clock.advance(2)
        d = await c.get("/")
    assert (a.text, b.text, d.text) == ("home 1", "home 1", "home 2")
    assert_stored_miss(a)
    assert_hit(b, ttl=1)
    assert age(b) == 29
    assert_stored_miss(d)  # stale, no validator: a plain miss (RFC 9111 §4.2, §4.3.1)
    assert runs.n == 2


async def test_raw_asgi_app_hit_is_byte_identical(client) -> None:
    """RFC 9111 §4, §3.1 (the stored header fields are sent with the stored body): repeated
    fields and their order come back as the app sent them."""
    origin = Origin(
        [("cache-control", "max-age=60"), ("x-multi", "a"), ("x-multi", "b"), ("link", "</a>")]
    )
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/raw")
        b = await c.get("/raw")
    assert a.content == b.content == b"body-1"
    assert b.headers.get_list("x-multi") == ["a", "b"]
    assert b.headers["link"] == "</a>"
    assert_hit(b)
    assert origin.runs == 1


async def test_query_and_path_are_part_of_the_key(client) -> None:
    """RFC 9111 §2 (the primary cache key is the method and target URI), docs/http.md (raw path,
    raw query, never normalised)."""
    origin = Origin([("cache-control", "max-age=60")])
    async with client(CacheMiddleware(origin)) as c:
        bodies = [
            (await c.get(u)).content
            for u in ["/p?a=1", "/p?a=2", "/p", "/P", "/p?a=1", "/p%2Fx", "/p/x"]
        ]
    assert bodies == [b"body-1", b"body-2", b"body-3", b"body-4", b"body-1", b"body-5", b"body-6"]


async def test_s_maxage_wins_over_max_age_in_a_shared_cache(client, clock) -> None:
    """RFC 9111 §5.2.2.10, §4.2.1: in a shared cache s-maxage overrides max-age (and Expires)."""
    origin = Origin(
        [
            ("cache-control", "max-age=10, s-maxage=100"),
            ("expires", http_date(5)),
            ("date", http_date()),
        ]
    )
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(50)
        r = await c.get("/")
        assert_hit(r, ttl=50)
        clock.advance(51)
        r = await c.get("/")
    assert_stored_miss(r)
    assert origin.runs == 2


async def test_s_maxage_shorter_than_max_age_makes_it_stale_sooner(client, clock) -> None:
    """RFC 9111 §5.2.2.10: s-maxage=10 beats max-age=100 for a shared cache."""
    origin = Origin([("cache-control", "max-age=100, s-maxage=10")])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(11)
        r = await c.get("/")
    assert_stored_miss(r)
    assert origin.runs == 2


async def test_private_cache_ignores_s_maxage_and_stores_private(client, clock) -> None:
    """RFC 9111 §5.2.2.10 (s-maxage is for shared caches only), §5.2.2.7 (a private cache may
    store ``private``): ``shared=False``."""
    origin = Origin([("cache-control", "private, max-age=10, s-maxage=100")])
    async with client(CacheMiddleware(origin, shared=False)) as c:
        a = await c.get("/")
        clock.advance(5)
        b = await c.get("/")
        clock.advance(6)
        d = await c.get("/")
    assert_stored_miss(a)
    assert_hit(b, ttl=5)
    assert_stored_miss(d)
    assert origin.runs == 2


async def test_expires_minus_date_gives_the_lifetime(client, clock) -> None:
    """RFC 9111 §4.2.1: without max-age, the lifetime is Expires minus Date."""
    origin = Origin([("date", http_date()), ("expires", http_date(100))])
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/")
        clock.advance(50)
        b = await c.get("/")
        clock.advance(51)
        d = await c.get("/")
    assert_stored_miss(a)
    assert_hit(b, ttl=50)
    assert b.headers["expires"] == origin.headers[1][1]
    assert b.headers["date"] == origin.headers[0][1]  # the stored Date is kept (RFC 9111 §4.2.3)
    assert d.content == b"body-2"
    assert origin.runs == 2


async def test_expires_without_date_counts_from_reception(client, clock) -> None:
    """RFC 9111 §4.2.1 and RFC 9110 §6.6.1: without Date the receive time stands for it."""
    origin = Origin([("expires", http_date(30))])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(20)
        r = await c.get("/")
    assert_hit(r, ttl=10)
    assert origin.runs == 1


@pytest.mark.parametrize("expires", ["0", "not a date", "Thu, 01 Jan 1970 00:00:00 GMT"])
async def test_invalid_or_past_expires_is_already_stale(client, expires: str) -> None:
    """RFC 9111 §5.3: an invalid Expires (such as ``0``) means "already expired"."""
    origin = Origin([("expires", expires)])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        r = await c.get("/")
    assert r.content == b"body-2"
    assert xc(r) == "MISS"
    assert origin.runs == 2


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("cache-control", "public")],
        [("last-modified", "Mon, 01 Jan 2001 00:00:00 GMT")],
        [("cache-control", "must-revalidate")],
    ],
    ids=["nothing", "public-only", "last-modified-only", "must-revalidate-only"],
)
async def test_no_explicit_freshness_is_not_stored(client, headers) -> None:
    """RFC 9111 §3 (storing needs explicit permission), §4.2.2 and docs/http.md (no heuristic
    freshness by default)."""
    origin = Origin(headers)
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/")
        b = await c.get("/")
    assert_not_stored(a, "no-freshness")
    assert_not_stored(b, "no-freshness")
    assert (a.content, b.content) == (b"body-1", b"body-2")


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ([("cache-control", "private, max-age=60")], "private"),
        ([("cache-control", "no-store, max-age=60")], "no-store"),
        ([("cache-control", "max-age=60"), ("set-cookie", "sid=1")], "set-cookie"),
        ([("cache-control", "max-age=60"), ("vary", "*")], "vary-star"),
        ([("cache-control", "max-age=60"), ("vary", "accept, *")], "vary-star"),
        (
            [("cache-control", "max-age=60"), ("access-control-allow-origin", "https://a.example")],
            "cors-origin",
        ),
    ],
    ids=["private", "no-store", "set-cookie", "vary-star", "vary-list-star", "cors"],
)
async def test_responses_that_are_never_stored(client, headers, detail: str) -> None:
    """RFC 9111 §5.2.2.7 (private, shared cache), §5.2.2.5 (no-store), §4.1 (``Vary: *``
    never matches); docs/http.md (Set-Cookie, a single-origin CORS answer without Vary: Origin).
    The app's response passes through whole, with its own header fields."""
    origin = Origin(headers)
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/")
        c.cookies.clear()  # the client would send the Set-Cookie back: a credential
        b = await c.get("/")
    assert_not_stored(a, detail)
    assert_not_stored(b, detail)
    assert (a.content, b.content) == (b"body-1", b"body-2")
    for name, value in headers:
        assert value in a.headers.get_list(name)
    assert origin.runs == 2


async def test_cache_control_lines_combine(client) -> None:
    """RFC 9110 §5.3, RFC 9111 §5.2: several Cache-Control lines are one list, so a
    ``private`` on a second line forbids storing as if it were on the first."""
    origin = Origin([("cache-control", "max-age=60"), ("cache-control", "private")])
    async with client(CacheMiddleware(origin)) as c:
        r = await c.get("/")
    assert_not_stored(r, "private")
    assert r.headers.get_list("cache-control") == ["max-age=60", "private"]


@pytest.mark.parametrize(
    "cache_control",
    ["max-age=60, max-age=120", "max-age=60, max-age=abc", 'max-age="60"x', "max-age=1.5"],
)
async def test_conflicting_or_invalid_freshness_is_stale(client, cache_control: str) -> None:
    """RFC 9111 §4.2.1 (invalid or conflicting freshness information: a cache is encouraged
    to consider the response stale), §1.2.2 (delta-seconds are digits): never served fresh."""
    origin = Origin([("cache-control", cache_control)])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        r = await c.get("/")
    assert r.content == b"body-2"
    assert origin.runs == 2


@pytest.mark.parametrize("status", [404, 410, 500, 503, 302, 201, 206])
async def test_statuses_not_stored_by_default(client, status: int) -> None:
    """RFC 9111 §3 (a cache stores only statuses it understands), docs/http.md (stored by default:
    200, 203, 204, 300, 301, 308; never 5xx or 206)."""
    origin = Origin([("cache-control", "max-age=60")], status=status)
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/")
        b = await c.get("/")
    assert a.status_code == b.status_code == status
    assert_not_stored(a, "partial-or-304" if status == 206 else "status")
    assert origin.runs == 2


@pytest.mark.parametrize("status", [200, 203, 204, 300, 301, 308])
async def test_default_statuses_are_stored(client, status: int) -> None:
    """docs/http.md: 200, 203, 204, 300, 301, 308 are stored by default (RFC 9110 §15.1)."""
    body = b"" if status == 204 else None
    headers = [("cache-control", "max-age=60")]
    if status in (301, 308):
        headers.append(("location", "/elsewhere"))
    origin = Origin(headers, status=status, body=body)
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/")
        b = await c.get("/")
    assert a.status_code == b.status_code == status
    assert a.content == b.content
    assert_hit(b)
    assert origin.runs == 1


async def test_statuses_option(client) -> None:
    """RFC 9111 §3, docs/http.md (404/410 only when asked; never 5xx: a list naming one is
    refused when the middleware is built, and a 5xx is not stored with the default list)."""
    not_found = Origin([("cache-control", "max-age=60")], status=404)
    error = Origin([("cache-control", "max-age=60")], status=500)
    ok = Origin([("cache-control", "max-age=60")])
    with pytest.raises(ConfigError, match="status 500 is never stored"):
        CacheMiddleware(error, statuses=(404, 500))
    statuses = (404,)
    async with client(CacheMiddleware(not_found, statuses=statuses)) as c:
        await c.get("/404")
        r = await c.get("/404")
    assert r.status_code == 404
    assert_hit(r)
    assert not_found.runs == 1
    async with client(CacheMiddleware(error)) as c:
        await c.get("/500")
        r = await c.get("/500")
    assert_not_stored(r, "status")
    assert error.runs == 2
    async with client(CacheMiddleware(ok, statuses=statuses)) as c:
        await c.get("/ok")
        r = await c.get("/ok")
    assert_not_stored(r, "status")  # 200 is not in the list any more
    assert ok.runs == 2


async def test_hop_by_hop_fields_are_not_stored(client) -> None:
    """RFC 9111 §3.1, RFC 9110 §7.6.1: Connection, the fields it names, and the other
    hop-by-hop fields are not stored."""
    origin = Origin(
        [
            ("cache-control", "max-age=60"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("x-end", "kept"),
        ]
    )
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        r = await c.get("/")
    assert_hit(r)
    for name in ("connection", "x-hop", "keep-alive"):
        assert name not in r.headers
    assert r.headers["x-end"] == "kept"


async def test_header_name_setting_renames_x_cache(client) -> None:
    """RFC 9211 §2 (Cache-Status always sent); docs/http.md (X-Cache's name is configurable)."""
    oxicache.configure(header_name="X-Edge")
    origin = Origin([("cache-control", "max-age=60"), ("x-edge", "from-the-app")])
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/")
        b = await c.get("/")
    assert a.headers.get_list("x-edge") == ["MISS"]
    assert b.headers.get_list("x-edge") == ["HIT"]
    assert "x-cache" not in b.headers
    assert HIT_STATUS.match(b.headers["cache-status"])


# ---------------------------------------------------------------------------------------------
# 2. Routes decorated with @cache
# ---------------------------------------------------------------------------------------------


async def test_cache_decorated_routes_are_cached_by_the_middleware(client, clock) -> None:
    """RFC 9111 §4: the decorator's ``max-age`` lets the middleware store the route's reply;
    RFC 9211 §2: one Cache-Status and one X-Cache per reply (the route's own are replaced).
    When both are stale, the middleware revalidates with the decorator's ETag and the route
    answers 304 (RFC 9111 §4.3.1, §4.3.4), so the stored body is served again."""
    app = FastAPI()
    runs = Runs()

    @app.get("/d")
    @cache(ttl=60)
    async def decorated() -> dict[str, int]:
        runs()
        return {"value": 42}

    app.add_middleware(CacheMiddleware)
    async with client(app) as c:
        a = await c.get("/d")
        b = await c.get("/d")
        clock.advance(61)
        d = await c.get("/d")
        e = await c.get("/d")
    assert a.content == b.content == d.content == e.content == b'{"value":42}'
    for r in (a, b, d, e):
        assert len(r.headers.get_list("x-cache")) == 1, r.headers
        assert len(r.headers.get_list("cache-status")) == 1, r.headers
        assert len(r.headers.get_list("age")) == 1, r.headers
        assert r.headers["cache-control"] == "max-age=60"
    assert_stored_miss(a)
    assert_hit(b, ttl=60)
    assert xc(d) == "HIT"
    assert "fwd=stale; fwd-status=304" in (cs(d) or "")
    assert age(d) == 0
    assert_hit(e, ttl=60)
    assert runs.n == 2  # the route ran again when its own entry expired, and answered 304


async def test_cache_decorated_route_sees_no_client_conditional(client) -> None:
    """RFC 9111 §4.3.2: the cache evaluates the client's If-None-Match itself; the route gets
    the request without it, so its full 200 is what is stored."""
    app = FastAPI()

    @app.get("/d")
    @cache(ttl=60)
    async def decorated() -> dict[str, int]:
        return {"value": 1}

    app.add_middleware(CacheMiddleware)
    async with client(app) as c:
        probe = await c.get("/d")
        oxicache.get_store().clear()
        tag = probe.headers["etag"]
        r = await c.get("/d", headers={"if-none-match": tag})
        full = await c.get("/d")
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == tag
    assert full.status_code == 200
    assert full.content == b'{"value":1}'
    assert_hit(full)


# ---------------------------------------------------------------------------------------------
# 3. Safe in front of authentication (RFC 9111 §3.5, docs/http.md)
# ---------------------------------------------------------------------------------------------


def auth_app(cache_control: str, **options: Any) -> tuple[FastAPI, Runs, Runs]:
    """Routes behind a token: ``Authorization: Bearer good`` or a 401."""
    app = FastAPI()
    checks, handler = Runs(), Runs()

    def require_token(request: Request) -> str:
        checks()
        if request.headers.get("authorization") != "Bearer good":
            raise HTTPException(
                401,
                "no token",
                headers={"WWW-Authenticate": "Bearer", "Cache-Control": "max-age=60"},
            )
        return "alice"

    @app.get("/secret")
    async def secret(response: Response, user: str = Depends(require_token)) -> dict[str, str]:
        handler()
        response.headers["cache-control"] = cache_control
        return {"user": user, "secret": "s3cret"}

    app.add_middleware(CacheMiddleware, **options)
    return app, checks, handler


GOOD = {"authorization": "Bearer good"}


async def test_no_token_is_401_every_time_even_after_a_token_200(client) -> None:
    """RFC 9111 §3.5 (a shared cache must not use a response to a request with
    Authorization unless the response allows it), docs/http.md (the middleware runs before
    authentication: a request that the app would refuse gets the refusal, every time)."""
    app, checks, handler = auth_app("max-age=60")
    async with client(app) as c:
        ok1 = await c.get("/secret", headers=GOOD)
        anon1 = await c.get("/secret")
        ok2 = await c.get("/secret", headers=GOOD)
        anon2 = await c.get("/secret")
        bad = await c.get("/secret", headers={"authorization": "Bearer bad"})
    for ok in (ok1, ok2):
        assert ok.status_code == 200
        assert ok.json() == {"user": "alice", "secret": "s3cret"}
        assert_bypassed(ok, "credentials")  # neither looked up nor stored
        assert ok.headers["cache-control"] == "max-age=60"  # the app's own fields are kept
    for refused in (anon1, anon2):
        assert refused.status_code == 401
        assert b"s3cret" not in refused.content
        assert_not_stored(refused, "status")
    assert bad.status_code == 401
    assert (checks.n, handler.n) == (5, 2)


async def test_share_authorized_without_public_still_refuses_to_store(client) -> None:
    """RFC 9111 §3.5: with the opt-in, a credentialed response is stored only when it says
    ``public``, ``s-maxage`` or ``must-revalidate``; plain ``max-age`` is not enough."""
    app, checks, handler = auth_app("max-age=60", share_authorized=True)
    async with client(app) as c:
        ok = await c.get("/secret", headers=GOOD)
        anon = [await c.get("/secret") for _ in range(3)]
        again = await c.get("/secret", headers=GOOD)
    assert ok.status_code == again.status_code == 200
    assert_not_stored(ok, "credentials")
    assert [r.status_code for r in anon] == [401, 401, 401]
    assert all(b"s3cret" not in r.content for r in anon)
    assert handler.n == 2
    assert checks.n == 5


async def test_share_authorized_public_response_is_shared_with_everyone(client) -> None:
    """RFC 9111 §3.5: ``public`` explicitly allows a shared cache to store and reuse the
    response to a credentialed request, for any later request of that URI. Documented
    behaviour: with ``share_authorized=True`` an anonymous request then gets the stored 200
    without reaching the authentication dependency. Only opt in for responses that really are
    the same for everyone."""
    app, checks, handler = auth_app("public, max-age=60", share_authorized=True)
    async with client(app) as c:
        ok = await c.get("/secret", headers=GOOD)
        again = await c.get("/secret", headers=GOOD)
        anon = await c.get("/secret")
    assert_stored_miss(ok)
    assert_hit(again)
    assert anon.status_code == 200
    assert_hit(anon)
    assert anon.content == ok.content
    assert (checks.n, handler.n) == (1, 1)


@pytest.mark.parametrize("cache_control", ["s-maxage=60", "must-revalidate, max-age=60"])
async def test_share_authorized_s_maxage_or_must_revalidate_are_stored(
    client, cache_control: str
) -> None:
    """RFC 9111 §3.5: s-maxage and must-revalidate also allow a shared cache to store a
    response to a credentialed request (with the opt-in)."""
    app, _, handler = auth_app(cache_control, share_authorized=True)
    async with client(app) as c:
        a = await c.get("/secret", headers=GOOD)
        b = await c.get("/secret", headers=GOOD)
    assert_stored_miss(a)
    assert_hit(b)
    assert handler.n == 1


async def test_credentialed_request_is_not_answered_from_an_anonymous_entry(client) -> None:
    """RFC 9111 §3.5, docs/http.md: a request with Authorization or Cookie is not answered from the
    shared cache (without the opt-in), even when an entry for the URI exists; nor stored."""
    app = FastAPI()

    @app.get("/me")
    async def me(request: Request, response: Response) -> dict[str, str | None]:
        response.headers["cache-control"] = "max-age=60"
        return {
            "auth": request.headers.get("authorization"),
            "session": request.cookies.get("session"),
        }

    app.add_middleware(CacheMiddleware)
    async with client(app) as c:
        anon = await c.get("/me")
        bearer = await c.get("/me", headers={"authorization": "Bearer x"})
        cookie = await c.get("/me", headers={"cookie": "session=alice"})
        cookie2 = await c.get("/me", headers={"cookie": "session=bob"})
        anon2 = await c.get("/me")
    assert anon.json() == {"auth": None, "session": None}
    assert bearer.json() == {"auth": "Bearer x", "session": None}
    assert cookie.json() == {"auth": None, "session": "alice"}
    assert cookie2.json() == {"auth": None, "session": "bob"}
    for r in (bearer, cookie, cookie2):
        assert_bypassed(r, "credentials")
    assert_hit(anon2)
    assert anon2.json() == anon.json()


async def test_cookie_is_a_credential_for_storing(client) -> None:
    """docs/http.md (Cookie counts as a credential), RFC 9111 §3.5: a response to a request with a
    Cookie is not stored, so an anonymous request is answered by the app."""
    origin = Origin([("cache-control", "public, max-age=60")])
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/", headers={"cookie": "session=alice"})
        b = await c.get("/")
        d = await c.get("/", headers={"cookie": "session=alice"})
    assert_bypassed(a, "credentials", origin.sent[0])
    assert a.content == b"body-1"
    assert_stored_miss(b)
    assert b.content == b"body-2"
    assert_bypassed(d, "credentials", origin.sent[2])
    assert d.content == b"body-3"


async def test_token_protected_app_refuses_every_anonymous_request_after_a_user_200(
    client,
) -> None:
    """RFC 9111 §3.5, docs/http.md (the middleware runs before authentication): with a token
    dependency, a request without the token gets the app's 401 every time, even after users'
    200s were cached (by the ``@cache`` route, keyed per user, behind the middleware). The
    credentialed requests pass the middleware without a lookup: labelled ``BYPASS`` with
    ``detail=credentials`` (RFC 9211 §2.2), or, on the ``@cache`` route, with the decorator's
    own label, which the middleware keeps and does not repeat."""
    app = FastAPI()
    checks = Runs()

    def require_token(request: Request) -> str:
        checks()
        token = request.headers.get("authorization", "")
        if not token.startswith("Bearer user-"):
            raise HTTPException(
                401,
                "no token",
                headers={"WWW-Authenticate": "Bearer", "Cache-Control": "max-age=60"},
            )
        return token.removeprefix("Bearer user-")

    @app.get("/profile")
    @cache(ttl=60)
    async def profile(user: str = Depends(require_token)) -> dict[str, str]:
        return {"user": user}

    @app.get("/plain")
    async def plain(response: Response, user: str = Depends(require_token)) -> dict[str, str]:
        response.headers["cache-control"] = "max-age=60"
        response.headers["x-app"] = "kept"
        return {"user": user}

    app.add_middleware(CacheMiddleware)
    alice = {"authorization": "Bearer user-alice"}
    bob = {"authorization": "Bearer user-bob"}
    async with client(app) as c:
        a1 = await c.get("/profile", headers=alice)
        a2 = await c.get("/profile", headers=alice)
        p1 = await c.get("/plain", headers=alice)
        anon = [await c.get(path) for path in ("/profile", "/plain", "/profile", "/plain")]
        b1 = await c.get("/profile", headers=bob)
        p2 = await c.get("/plain", headers=bob)
        anon_after = [await c.get(path) for path in ("/profile", "/plain")]
    assert a1.json() == a2.json() == p1.json() == {"user": "alice"}
    assert b1.json() == p2.json() == {"user": "bob"}
    # The decorator's label on its route, once: the middleware adds none of its own.
    assert a1.headers.get_list("x-cache") == ["MISS"]
    assert a2.headers.get_list("x-cache") == ["HIT"]
    for r in (a1, a2, b1):
        assert len(r.headers.get_list("cache-status")) == 1, r.headers
        assert "fwd=bypass" not in r.headers["cache-status"]
    # The plain route: the middleware's label, after the app's own fields.
    for r in (p1, p2):
        assert_bypassed(r, "credentials")
        assert r.headers["x-app"] == "kept"
        assert r.headers["cache-control"] == "max-age=60"
        assert [n for n, _ in r.headers.raw][-2:] == [b"x-cache", b"cache-status"]
    for r in anon + anon_after:
        assert r.status_code == 401
        assert r.json() == {"detail": "no token"}
        assert b"alice" not in r.content and b"bob" not in r.content
        assert_not_stored(r, "status")
    assert checks.n == 11  # every request met the token check (dependencies run first)


async def test_cache_decorated_route_keeps_its_own_bypass_label(client) -> None:
    """RFC 9211 §2 (one member per cache): a credentialed request to an ``@cache`` route that
    is not keyed per user is bypassed by both; the reply has the decorator's label once."""
    app = FastAPI()

    @app.get("/d")
    @cache(ttl=60)
    async def decorated() -> dict[str, int]:
        return {"value": 1}

    app.add_middleware(CacheMiddleware)
    async with client(app) as c:
        r = await c.get("/d", headers={"authorization": "Bearer x"})
    assert r.json() == {"value": 1}
    assert_bypassed(r, "credentials")


async def test_share_authorized_credentialed_request_revalidates_an_anonymous_entry(
    client,
) -> None:
    """RFC 9111 §3.5, §4.3: with the opt-in, an entry stored for an anonymous request whose
    response did not say public/s-maxage/must-revalidate is not served to a credentialed
    request without asking the origin."""
    origin = Origin([("cache-control", "max-age=60"), ("etag", '"v1"')])
    async with client(CacheMiddleware(origin, share_authorized=True)) as c:
        await c.get("/")
        r = await c.get("/", headers={"authorization": "Bearer x"})
    assert origin.runs == 2
    assert origin.request()["authorization"] == "Bearer x"
    assert r.content == b"body-2"


# ---------------------------------------------------------------------------------------------
# 4. Vary (RFC 9111 §4.1)
# ---------------------------------------------------------------------------------------------


def vary_app(*vary: str) -> tuple[Starlette, Runs]:
    """A Starlette app answering with the request's Accept-Language/X-A/X-B values."""
    runs = Runs()

    async def page(request: Request) -> PlainTextResponse:
        n = runs()
        values = ",".join(
            f"{h}={request.headers.get(h, '<absent>')!s}" for h in ("accept-language", "x-a", "x-b")
        )
        response = PlainTextResponse(f"{n}:{values}", headers={"cache-control": "max-age=60"})
        for v in vary:
            response.headers.append("vary", v)
        return response

    return Starlette(routes=[Route("/page", page)], middleware=[Middleware(CacheMiddleware)]), runs


async def test_vary_keeps_one_variant_per_value(client) -> None:
    """RFC 9111 §4.1: a stored response is used only for requests whose selecting header
    values match; several variants of one URL coexist."""
    app, runs = vary_app("Accept-Language")
    async with client(app) as c:
        fr = await c.get("/page", headers={"accept-language": "fr"})
        en = await c.get("/page", headers={"accept-language": "en"})
        fr2 = await c.get("/page", headers={"accept-language": "fr"})
        en2 = await c.get("/page", headers={"accept-language": "en"})
    assert fr.text.startswith("1:accept-language=fr")
    assert en.text.startswith("2:accept-language=en")
    assert_stored_miss(fr)
    assert_stored_miss(en)
    assert (fr2.content, en2.content) == (fr.content, en.content)
    assert_hit(fr2)
    assert_hit(en2)
    assert fr2.headers["vary"] == "Accept-Language"
    assert runs.n == 2


async def test_vary_absent_is_not_empty(client) -> None:
    """RFC 9111 §4.1: a header absent from the request does not match one present with an
    empty value, and the other way round."""
    app, runs = vary_app("Accept-Language")
    async with client(app) as c:
        absent = await c.get("/page")
        empty = await c.get("/page", headers={"accept-language": ""})
        absent2 = await c.get("/page")
        empty2 = await c.get("/page", headers={"accept-language": ""})
    assert "accept-language=<absent>" in absent.text
    assert "accept-language=," in empty.text
    assert_stored_miss(empty)
    assert (absent2.content, empty2.content) == (absent.content, empty.content)
    assert_hit(absent2)
    assert_hit(empty2)
    assert runs.n == 2


async def test_vary_names_are_case_insensitive(client) -> None:
    """RFC 9110 §5.1 (field names are case-insensitive), RFC 9111 §4.1: ``Vary:
    ACCEPT-language`` selects on the request's ``accept-language``, whatever its spelling."""
    app, runs = vary_app("ACCEPT-language")
    async with client(app) as c:
        a = await c.get("/page", headers={"Accept-Language": "fr"})
        b = await c.get("/page", headers={"accept-language": "fr"})
        d = await c.get("/page", headers={"accept-language": "de"})
    assert_hit(b)
    assert b.content == a.content
    assert_stored_miss(d)
    # Spelled otherwise in the scope itself (not what ASGI servers send, but possible).
    mixed = await call(app, "/page", [(b"Accept-Language", b"fr")])
    assert mixed.body == a.content
    assert mixed.get(b"x-cache") == b"HIT"
    assert runs.n == 2


async def test_two_vary_lines_combine(client) -> None:
    """RFC 9110 §5.3 (field lines combine into one list), RFC 9111 §4.1: every name of every
    Vary line selects."""
    app, runs = vary_app("X-A", "X-B")
    async with client(app) as c:
        r11 = await c.get("/page", headers={"x-a": "1", "x-b": "1"})
        r12 = await c.get("/page", headers={"x-a": "1", "x-b": "2"})
        r21 = await c.get("/page", headers={"x-a": "2", "x-b": "1"})
        again = [
            await c.get("/page", headers={"x-a": a, "x-b": b})
            for a, b in [("1", "1"), ("1", "2"), ("2", "1")]
        ]
        only_a = await c.get("/page", headers={"x-a": "1"})
    assert [r.content for r in again] == [r11.content, r12.content, r21.content]
    for r in again:
        assert_hit(r)
    assert_stored_miss(only_a)
    assert runs.n == 4


async def test_vary_value_whitespace_is_normalised(client) -> None:
    """RFC 9111 §4.1: a cache may normalise whitespace that has no meaning in a list field
    (``fr,en`` and ``fr, en`` select the same variant)."""
    app, runs = vary_app("Accept-Language")
    async with client(app) as c:
        a = await c.get("/page", headers={"accept-language": "fr,en"})
        b = await c.get("/page", headers={"accept-language": "fr,   en"})
    assert_hit(b)
    assert b.content == a.content
    assert runs.n == 1


async def test_unsafe_method_invalidates_every_variant(client) -> None:
    """RFC 9111 §4.4 (all stored responses for the target URI), §4.1 (variants)."""
    app, runs = vary_app("Accept-Language")

    async def post(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app.router.routes.append(Route("/page", post, methods=["POST"]))
    async with client(app) as c:
        for lang in ("fr", "en"):
            await c.get("/page", headers={"accept-language": lang})
        posted = await c.post("/page", content=b"x")
        after = [await c.get("/page", headers={"accept-language": lang}) for lang in ("fr", "en")]
    assert posted.status_code == 200
    for r in after:
        assert_stored_miss(r)
    assert runs.n == 4


# ---------------------------------------------------------------------------------------------
# 5. Request directives (RFC 9111 §5.2.1, §5.4)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_headers",
    [
        {"cache-control": "no-cache"},
        {"pragma": "no-cache"},
        {"cache-control": "max-age=0, no-cache"},
    ],
    ids=["no-cache", "pragma", "max-age-0-no-cache"],
)
async def test_request_no_cache_revalidates_and_304_freshens(
    client, clock, request_headers
) -> None:
    """RFC 9111 §5.2.1.4 (no-cache: validate with the origin before using a stored response),
    §5.4 (Pragma: no-cache without Cache-Control), §4.3.1 (the cache's validation request
    carries the stored ETag), §4.3.4 (a 304 updates the stored header fields): the client gets
    a 200 with the stored body and the 304's fields."""
    origin = Origin([("cache-control", "max-age=60"), ("etag", '"v1"'), ("x-version", "1")])
    async with client(CacheMiddleware(origin)) as c:
        first = await c.get("/")
        origin.status, origin.body = 304, b""
        origin.headers = [("cache-control", "max-age=120"), ("etag", '"v1"'), ("x-version", "2")]
        clock.advance(30)
        r = await c.get("/", headers=request_headers)
        clock.advance(100)
        later = await c.get("/")
    assert origin.runs == 2
    assert origin.request()["if-none-match"] == '"v1"'
    for name, value in request_headers.items():
        assert origin.request()[name] == value  # the client's directives reach the app
    assert r.status_code == 200
    assert r.content == first.content == b"body-1"
    assert r.headers["x-version"] == "2"
    assert r.headers["cache-control"] == "max-age=120"
    assert r.headers["content-length"] == "6"
    assert age(r) == 0
    assert xc(r) == "HIT"
    assert "fwd-status=304" in (cs(r) or "")
    assert later.content == b"body-1"
    assert_hit(later, ttl=20)
    assert age(later) == 100


async def test_request_no_cache_without_validators_is_a_full_miss(client) -> None:
    """RFC 9111 §5.2.1.4, §4.3.1: nothing to validate with, so the request goes to the app
    unconditionally and its new response replaces the entry."""
    origin = Origin([("cache-control", "max-age=60")])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        r = await c.get("/", headers={"cache-control": "no-cache"})
        after = await c.get("/")
    assert "if-none-match" not in origin.request()
    assert "if-modified-since" not in origin.request()
    assert r.content == after.content == b"body-2"
    assert_stored_miss(r)
    assert_hit(after)


async def test_request_max_age(client, clock) -> None:
    """RFC 9111 §5.2.1.1: max-age=N refuses a stored response older than N seconds."""
    origin = Origin([("cache-control", "max-age=60")])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(10)
        young = await c.get("/", headers={"cache-control": "max-age=20"})
        old = await c.get("/", headers={"cache-control": "max-age=0"})
    assert_hit(young)
    assert young.content == b"body-1"
    assert old.content == b"body-2"
    assert_stored_miss(old)
    assert origin.runs == 2


async def test_request_min_fresh(client, clock) -> None:
    """RFC 9111 §5.2.1.3: min-fresh=N wants a response fresh for at least N more seconds."""
    origin = Origin([("cache-control", "max-age=60")])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(30)
        ok = await c.get("/", headers={"cache-control": "min-fresh=20"})
        refused = await c.get("/", headers={"cache-control": "min-fresh=40"})
    assert_hit(ok)
    assert refused.content == b"body-2"
    assert origin.runs == 2


async def test_request_max_stale_serves_a_stale_entry(client, clock) -> None:
    """RFC 9111 §5.2.1.2, §4.2.4: a client may accept a stale response, within its
    max-stale (any staleness without a value); RFC 9211 §2.5 (ttl is negative when stale)."""
    origin = Origin([("cache-control", "max-age=60")])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(70)
        within = await c.get("/", headers={"cache-control": "max-stale=30"})
        anything = await c.get("/", headers={"cache-control": "max-stale"})
        beyond = await c.get("/", headers={"cache-control": "max-stale=5"})
    for r in (within, anything):
        assert r.content == b"body-1"
        assert xc(r) == "STALE"
        assert re.fullmatch(r"oxicache; hit; ttl=-1[01]; detail=max-stale", cs(r) or ""), cs(r)
        assert age(r) == 70
    assert beyond.content == b"body-2"
    assert origin.runs == 2


@pytest.mark.parametrize(
    "cache_control",
    ["max-age=60, must-revalidate", "max-age=60, proxy-revalidate", "s-maxage=60"],
)
async def test_must_revalidate_refuses_max_stale(client, clock, cache_control: str) -> None:
    """RFC 9111 §5.2.2.2 (must-revalidate), §5.2.2.8 (proxy-revalidate, shared caches),
    §5.2.2.10 (s-maxage implies proxy-revalidate): once stale, the response is not used
    without successful validation, whatever the client's max-stale."""
    origin = Origin([("cache-control", cache_control), ("etag", '"m"')])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(61)
        origin.headers = [("cache-control", cache_control), ("etag", '"m2"')]
        r = await c.get("/", headers={"cache-control": "max-stale=3600"})
    assert origin.runs == 2
    assert origin.request()["if-none-match"] == '"m"'
    assert r.content == b"body-2"
    assert r.headers["etag"] == '"m2"'
    assert_stored_miss(r)


async def test_only_if_cached_with_nothing_stored_is_504(client) -> None:
    """RFC 9111 §5.2.1.7: only-if-cached and no usable stored response → 504, and the origin
    is not contacted."""
    app, counts = fastapi_app()
    async with client(app) as c:
        r = await c.get("/items", headers={"cache-control": "only-if-cached"})
    assert r.status_code == 504
    assert r.content == b""
    assert xc(r) == "MISS"
    assert cs(r) == "oxicache; fwd=miss; detail=only-if-cached"
    assert count(counts["entered"]) == 0


async def test_only_if_cached_uses_a_fresh_entry_and_refuses_a_stale_one(client, clock) -> None:
    """RFC 9111 §5.2.1.7: a fresh stored response answers; a stale one that needs validation
    gives 504 instead of contacting the origin."""
    origin = Origin([("cache-control", "max-age=60"), ("etag", '"x"')])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        fresh = await c.get("/", headers={"cache-control": "only-if-cached"})
        clock.advance(61)
        stale = await c.get("/", headers={"cache-control": "only-if-cached"})
        stale_ok = await c.get("/", headers={"cache-control": "only-if-cached, max-stale"})
    assert fresh.status_code == 200
    assert_hit(fresh)
    assert stale.status_code == 504
    assert stale_ok.status_code == 200
    assert stale_ok.content == b"body-1"
    assert origin.runs == 1


@pytest.mark.parametrize("share_authorized", [False, True])
async def test_only_if_cached_with_credentials_and_no_shareable_entry_is_504(
    client, share_authorized: bool
) -> None:
    """RFC 9111 §5.2.1.7 with §3.5: a credentialed request may not be answered from an entry
    that does not allow it (without the opt-in: from any entry); with only-if-cached the cache
    answers 504 rather than going to the origin."""
    origin = Origin([("cache-control", "max-age=60"), ("etag", '"a"')])
    async with client(CacheMiddleware(origin, share_authorized=share_authorized)) as c:
        await c.get("/")
        r = await c.get(
            "/", headers={"authorization": "Bearer x", "cache-control": "only-if-cached"}
        )
        plain = await c.get("/", headers={"authorization": "Bearer x"})
    assert r.status_code == 504
    assert r.content == b""
    assert origin.runs == 2
    assert plain.content == b"body-2"


async def test_request_no_store_is_served_but_not_stored(client) -> None:
    """RFC 9111 §5.2.1.5: no-store forbids storing the response to this request (it does not
    forbid answering it from a stored response)."""
    origin = Origin([("cache-control", "max-age=60")])
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/", headers={"cache-control": "no-store"})
        b = await c.get("/")
        d = await c.get("/", headers={"cache-control": "no-store"})
    assert_not_stored(a, "request-no-store")
    assert_stored_miss(b)
    assert_hit(d)
    assert d.content == b"body-2"


@pytest.mark.parametrize("how", ["option", "configure"])
async def test_honor_request_no_cache_off(client, clock, how: str) -> None:
    """RFC 9111 §5.2.1 (request directives are advisory; a cache MAY ignore them), docs/http.md (a
    setting stops clients forcing recomputation): no-cache, Pragma, max-age and min-fresh are
    ignored; max-stale and only-if-cached still work."""
    origin = Origin([("cache-control", "max-age=60"), ("etag", '"e"')])
    if how == "option":
        app = CacheMiddleware(origin, honor_request_no_cache=False)
    else:
        oxicache.configure(honor_request_no_cache=False)
        app = CacheMiddleware(origin)
    async with client(app) as c:
        await c.get("/")
        clock.advance(30)
        forced = [
            await c.get("/", headers=h)
            for h in (
                {"cache-control": "no-cache"},
                {"pragma": "no-cache"},
                {"cache-control": "max-age=0"},
                {"cache-control": "min-fresh=50"},
            )
        ]
        clock.advance(40)
        stale = await c.get("/", headers={"cache-control": "max-stale=60"})
        gone = await c.get("/", headers={"cache-control": "only-if-cached"})
    for r in forced:
        assert_hit(r)
        assert r.content == b"body-1"
    assert xc(stale) == "STALE"
    assert gone.status_code == 504
    assert origin.runs == 1


@pytest.mark.parametrize(
    "value", ["max-age=abc", "max-age=-1", '"no-cache"', "nocache", "max-age", "x-new=1"]
)
async def test_unknown_or_invalid_request_directives_do_not_force_a_miss(client, value) -> None:
    """RFC 9111 §5.2 (unknown directives are ignored), §5.2.1.1 (an invalid max-age is not a
    max-age): the stored response still answers."""
    origin = Origin([("cache-control", "max-age=60")])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        r = await c.get("/", headers={"cache-control": value})
    assert r.content == b"body-1"
    assert_hit(r)
    assert origin.runs == 1


# ---------------------------------------------------------------------------------------------
# 6. Freshness and stale responses (RFC 9111 §4.2, §4.3)
# ---------------------------------------------------------------------------------------------


async def test_stale_with_etag_is_revalidated_and_304_resets_age(client, clock) -> None:
    """RFC 9111 §4.2 (stale once age ≥ lifetime), §4.3.1 (validation carries If-None-Match),
    §4.3.4 (the 304 freshens the entry: its Date/Cache-Control replace the stored ones, the
    body is kept), §4.2.3 (Age restarts from the validation)."""
    origin = Origin([("cache-control", "max-age=60"), ("etag", 'W/"v1"'), ("date", http_date())])
    async with client(CacheMiddleware(origin)) as c:
        first = await c.get("/")
        clock.advance(61)
        origin.status, origin.body = 304, b""
        origin.headers = [
            ("cache-control", "max-age=60"),
            ("etag", 'W/"v1"'),
            ("date", http_date()),
        ]
        validated = await c.get("/")
        clock.advance(5)
        hit = await c.get("/")
    assert origin.runs == 2
    assert origin.request(0).get("if-none-match") is None
    assert origin.request()["if-none-match"] == 'W/"v1"'
    assert validated.status_code == 200
    assert validated.content == first.content == b"body-1"
    assert validated.headers["date"] == origin.headers[2][1]
    assert age(validated) == 0
    assert hit.content == b"body-1"
    assert_hit(hit, ttl=55)
    assert age(hit) == 5


async def test_stale_with_last_modified_is_revalidated_with_if_modified_since(
    client, clock
) -> None:
    """RFC 9111 §4.3.1: without an ETag, the validation request carries If-Modified-Since
    with the stored Last-Modified."""
    lm = "Mon, 01 Jan 2001 00:00:00 GMT"
    origin = Origin([("cache-control", "max-age=60"), ("last-modified", lm)])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(61)
        origin.status, origin.body = 304, b""
        r = await c.get("/")
    assert origin.request()["if-modified-since"] == lm
    assert "if-none-match" not in origin.request()
    assert r.status_code == 200
    assert r.content == b"body-1"
    assert r.headers["last-modified"] == lm


async def test_stale_with_validator_and_a_new_200_replaces_the_entry(client, clock) -> None:
    """RFC 9111 §4.3.3: a full response to a validation request replaces the stored one."""
    origin = Origin([("cache-control", "max-age=60"), ("etag", '"v1"')])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(61)
        origin.headers = [("cache-control", "max-age=60"), ("etag", '"v2"')]
        r = await c.get("/")
        after = await c.get("/")
    assert origin.request()["if-none-match"] == '"v1"'
    assert r.content == after.content == b"body-2"
    assert_stored_miss(r)
    assert_hit(after)
    assert after.headers["etag"] == '"v2"'


async def test_stale_without_validators_is_a_plain_miss(client, clock) -> None:
    """RFC 9111 §4.2, §4.3.1: nothing to validate with, so the request is forwarded as it
    came and the new response is stored."""
    origin = Origin([("cache-control", "max-age=60")])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(60)  # age == lifetime: stale (RFC 9111 §4.2: fresh iff lifetime > age)
        r = await c.get("/")
    assert origin.request().get("if-none-match") is None
    assert origin.request().get("if-modified-since") is None
    assert origin.scopes[1]["headers"] == origin.scopes[0]["headers"]
    assert r.content == b"body-2"
    assert_stored_miss(r)


async def test_origin_age_counts_towards_the_age(client, clock) -> None:
    """RFC 9111 §4.2.3 (corrected_age_value = age_value + response_delay), §5.1: an origin
    Age of 30 with max-age=60 leaves 30 s of freshness; the cache sends its own Age."""
    origin = Origin([("cache-control", "max-age=60"), ("age", "30")])
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/")
        clock.advance(20)
        b = await c.get("/")
        clock.advance(11)
        d = await c.get("/")
    assert age(a) == 30
    assert_hit(b, ttl=10)
    assert age(b) == 50
    assert d.content == b"body-2"
    assert origin.runs == 2


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "30s", ", 30"])
async def test_invalid_origin_age_is_ignored(client, clock, value: str) -> None:
    """RFC 9111 §5.1: an invalid Age ("something other than a non-negative integer") is
    ignored, so the response is as old as its Date says (here: new); the cache
    sends its own Age and never repeats the invalid value."""
    origin = Origin([("cache-control", "max-age=60"), ("age", value), ("etag", '"a"')])
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/")
        clock.advance(10)
        b = await c.get("/")
    assert a.headers.get_list("age") == ["0"]
    assert_hit(b, ttl=50)
    assert b.headers.get_list("age") == ["10"]
    assert origin.runs == 1


@pytest.mark.parametrize(
    "lines", [["30, 60"], ["30", "60"], ["30;foo=bar"]], ids=["list", "two-lines", "param"]
)
async def test_list_based_origin_age_uses_the_first_member(client, clock, lines) -> None:
    """RFC 9111 §5.1: a cache meeting a list-based Age "SHOULD use the first member of the
    field value, discarding subsequent ones" (and a parameter never makes it younger)."""
    origin = Origin([("cache-control", "max-age=60"), *(("age", v) for v in lines)])
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/")
        clock.advance(10)
        b = await c.get("/")
    assert a.headers.get_list("age") == ["30"]
    assert_hit(b, ttl=20)
    assert b.headers.get_list("age") == ["40"]
    assert origin.runs == 1


async def test_response_no_cache_is_stored_but_always_validated(client) -> None:
    """RFC 9111 §5.2.2.4: a response with no-cache may be stored but not used without
    successful validation."""
    origin = Origin([("cache-control", "no-cache, max-age=60"), ("etag", '"nc"')])
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/")
        origin.status, origin.body = 304, b""
        b = await c.get("/")
    assert_stored_miss(a)
    assert origin.request()["if-none-match"] == '"nc"'
    assert b.status_code == 200
    assert b.content == b"body-1"


async def test_a_304_from_the_app_to_a_plain_request_is_never_stored(client) -> None:
    """RFC 9111 §3, docs/http.md: a 304 is never stored as an entry; it passes through."""
    origin = Origin([("cache-control", "max-age=60"), ("etag", '"x"')], status=304, body=b"")
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/")
        b = await c.get("/")
    assert a.status_code == b.status_code == 304
    assert_not_stored(a, "partial-or-304")
    assert origin.runs == 2


# ---------------------------------------------------------------------------------------------
# 7. Conditional requests answered by the cache (RFC 9110 §13, RFC 9111 §4.3.2)
# ---------------------------------------------------------------------------------------------


def validated_origin() -> Origin:
    return Origin(
        [
            ("cache-control", "max-age=60"),
            ("etag", '"abc"'),
            ("last-modified", "Mon, 01 Jan 2001 00:00:00 GMT"),
            ("content-type", "text/plain"),
            ("x-other", "not in a 304"),
        ]
    )


@pytest.mark.parametrize(
    "inm",
    ['"abc"', 'W/"abc"', '"zzz", "abc"', "*", ' "abc" '],
    ids=["strong", "weak", "list", "star", "ows"],
)
async def test_if_none_match_matching_the_stored_etag_is_304(client, clock, inm: str) -> None:
    """RFC 9110 §13.1.2 (weak comparison, lists, ``*``), §15.4.5 (a 304 carries ETag,
    Cache-Control, ... and no content), RFC 9111 §4.3.2 (the cache answers the client's
    conditional from the stored response), §5.1 (Age)."""
    origin = validated_origin()
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(7)
        r = await c.get("/", headers={"if-none-match": inm})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == '"abc"'
    assert r.headers["cache-control"] == "max-age=60"
    assert age(r) == 7
    assert "x-other" not in r.headers
    assert "content-type" not in r.headers
    assert_hit(r)
    assert origin.runs == 1


async def test_if_none_match_not_matching_is_the_full_response(client) -> None:
    """RFC 9110 §13.1.2: no match → the stored 200."""
    origin = validated_origin()
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        r = await c.get("/", headers={"if-none-match": '"other", W/"x"'})
    assert r.status_code == 200
    assert r.content == b"body-1"
    assert_hit(r)


@pytest.mark.parametrize(
    ("ims", "status"),
    [
        ("Mon, 01 Jan 2001 00:00:00 GMT", 304),
        ("Tue, 02 Jan 2001 00:00:00 GMT", 304),
        ("Sun, 31 Dec 2000 23:59:59 GMT", 200),
        ("not a date", 200),
    ],
)
async def test_if_modified_since_against_last_modified(client, ims: str, status: int) -> None:
    """RFC 9110 §13.1.3: 304 when the representation was not modified after the date; an
    invalid date is ignored."""
    origin = validated_origin()
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        r = await c.get("/", headers={"if-modified-since": ims})
    assert r.status_code == status
    assert r.content == (b"" if status == 304 else b"body-1")
    assert origin.runs == 1


async def test_if_none_match_wins_over_if_modified_since(client) -> None:
    """RFC 9110 §13.1.3, §13.2.2: If-Modified-Since is ignored when If-None-Match is present."""
    origin = validated_origin()
    late = "Tue, 02 Jan 2001 00:00:00 GMT"
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        no_match = await c.get("/", headers={"if-none-match": '"other"', "if-modified-since": late})
        match = await c.get(
            "/", headers={"if-none-match": '"abc"', "if-modified-since": "not a date"}
        )
    assert no_match.status_code == 200
    assert no_match.content == b"body-1"
    assert match.status_code == 304


async def test_head_conditional_is_304_too(client) -> None:
    """RFC 9110 §13.1.2, §13.1.3 (GET and HEAD): a HEAD with a matching validator is 304."""
    origin = validated_origin()
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        r = await c.head("/", headers={"if-none-match": '"abc"'})
    assert r.status_code == 304
    assert origin.runs == 1


async def test_client_conditional_on_a_miss_goes_to_the_app_without_it(client) -> None:
    """RFC 9111 §4.3.2 (a cache evaluates the client's conditions against its stored
    response), docs/http.md (a conditional request that misses is passed to the app; the app's
    304 is never stored): the app gets the request without the client's validators, answers
    200, that is stored, and the client gets 304 when its tag matches the new entry."""
    origin = validated_origin()
    async with client(CacheMiddleware(origin)) as c:
        r = await c.get(
            "/", headers={"if-none-match": '"abc"', "if-modified-since": http_date(), "x-keep": "1"}
        )
        full = await c.get("/")
    assert "if-none-match" not in origin.request(0)
    assert "if-modified-since" not in origin.request(0)
    assert origin.request(0)["x-keep"] == "1"
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == '"abc"'
    assert_stored_miss(r)
    assert full.status_code == 200
    assert full.content == b"body-1"
    assert_hit(full)
    assert origin.runs == 1


async def test_client_conditional_on_a_miss_not_matching_gets_the_200(client) -> None:
    """RFC 9110 §13.1.2: the new entry does not match the client's tag → the full 200."""
    origin = validated_origin()
    async with client(CacheMiddleware(origin)) as c:
        r = await c.get("/", headers={"if-none-match": '"old"'})
    assert r.status_code == 200
    assert r.content == b"body-1"
    assert_stored_miss(r)


async def test_client_conditional_when_the_response_is_not_storable_reaches_the_client(
    client,
) -> None:
    """RFC 9110 §13.2.1: the cache strips the client's conditionals only to store a full
    response; the client still gets a 200 it can use (its conditional was not evaluated by
    anyone, which a 200 always satisfies)."""
    origin = Origin([("cache-control", "no-store"), ("etag", '"abc"')])
    async with client(CacheMiddleware(origin)) as c:
        r = await c.get("/", headers={"if-none-match": '"abc"'})
    assert r.status_code == 200
    assert r.content == b"body-1"
    assert_not_stored(r, "no-store")


async def test_client_conditional_with_a_stale_entry_uses_the_cache_validator(
    client, clock
) -> None:
    """RFC 9111 §4.3.1, §4.3.2: revalidating a stale entry for a conditional request, the
    cache sends its own validator (not the client's), then answers the client's condition
    from the freshened entry."""
    origin = validated_origin()
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(61)
        origin.status, origin.body = 304, b""
        origin.headers = [("cache-control", "max-age=60"), ("etag", '"abc"')]
        r = await c.get("/", headers={"if-none-match": '"zzz"'})
        r304 = await c.get("/", headers={"if-none-match": '"abc"'})
    assert origin.request()["if-none-match"] == '"abc"'
    assert r.status_code == 200
    assert r.content == b"body-1"
    assert r304.status_code == 304
    assert origin.runs == 2


# ---------------------------------------------------------------------------------------------
# 8. Unsafe methods invalidate (RFC 9111 §4.4)
# ---------------------------------------------------------------------------------------------


class Site:
    """GETs answer with max-age=60; unsafe methods answer what the test sets."""

    def __init__(self) -> None:
        self.gets = Origin([("cache-control", "max-age=60")])
        self.unsafe = Origin([], status=200, body=b"done")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] in ("GET", "HEAD"):
            await self.gets(scope, receive, send)
        else:
            await self.unsafe(scope, receive, send)


async def stored(c: httpx.AsyncClient, *urls: str) -> list[bool]:
    """Whether each URL is answered from the cache (checked with only-if-cached)."""
    out = []
    for u in urls:
        r = await c.get(u, headers={"cache-control": "only-if-cached"})
        out.append(r.status_code != 504)
    return out


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "PURGE"])
@pytest.mark.parametrize("status", [200, 201, 204, 303])
async def test_successful_unsafe_method_invalidates_the_uri(
    client, method: str, status: int
) -> None:
    """RFC 9111 §4.4: a non-error response to an unsafe method (or one of unknown safety)
    invalidates the stored responses for the target URI. The response itself passes through
    as the app sent it, labelled ``BYPASS`` (RFC 9211 §2.2) like the decorator's: the label's
    two fields are the only additions."""
    site = Site()
    site.unsafe.status = status
    site.unsafe.body = b"" if status == 204 else b"done"
    async with client(CacheMiddleware(site)) as c:
        await c.get("/items")
        await c.get("/items?page=2")
        await c.get("/other")
        r = await c.request(method, "/items", content=b"{}")
        state = await stored(c, "/items", "/items?page=2", "/other")
    assert r.status_code == status
    assert r.content == site.unsafe.body
    assert_bypassed(r, "method", site.unsafe.sent[0])
    assert state == [False, True, True]
    assert site.unsafe.runs == 1


async def test_credentialed_unsafe_request_still_invalidates(client) -> None:
    """RFC 9111 §4.4: invalidation does not depend on who made the request; a POST with
    Authorization or Cookie (never cached) still invalidates the stored GET."""
    site = Site()
    async with client(CacheMiddleware(site)) as c:
        await c.get("/a")
        await c.get("/b")
        await c.post("/a", headers={"authorization": "Bearer x"}, content=b"{}")
        await c.delete("/b", headers={"cookie": "sid=1"})
        state = await stored(c, "/a", "/b")
    assert state == [False, False]


@pytest.mark.parametrize("status", [400, 404, 409, 500, 503])
async def test_failed_unsafe_method_does_not_invalidate(client, status: int) -> None:
    """RFC 9111 §4.4: only a non-error status invalidates."""
    site = Site()
    site.unsafe.status = status
    async with client(CacheMiddleware(site)) as c:
        await c.get("/items")
        r = await c.post("/items", content=b"{}")
        state = await stored(c, "/items")
    assert r.status_code == status
    assert state == [True]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("location", "/items/1"),
        ("location", "http://testserver/items/1"),
        ("location", "1"),
        ("content-location", "/items/1"),
        ("content-location", "http://TESTSERVER:80/items/1"),
    ],
)
async def test_same_origin_location_and_content_location_are_invalidated(
    client, field: str, value: str
) -> None:
    """RFC 9111 §4.4: the URIs in Location and Content-Location are invalidated too, when they
    have the target's origin (RFC 3986 §5.2 resolution: ``1`` from ``/items/`` is
    ``/items/1``)."""
    site = Site()
    site.unsafe.status = 201
    site.unsafe.headers = [(field, value)]
    async with client(CacheMiddleware(site)) as c:
        await c.get("/items/")
        await c.get("/items/1")
        await c.get("/items/2")
        await c.post("/items/", content=b"{}")
        state = await stored(c, "/items/", "/items/1", "/items/2")
    assert state == [False, False, True]


@pytest.mark.parametrize(
    "value",
    [
        "http://elsewhere.example/items/1",
        "https://testserver/items/1",
        "//elsewhere.example/items/1",
    ],
)
async def test_other_origin_location_is_not_invalidated(client, value: str) -> None:
    """RFC 9111 §4.4: a cache must not invalidate a Location or Content-Location with a
    different origin (scheme, host or port), so one site cannot evict another's entries."""
    site = Site()
    site.unsafe.status = 201
    site.unsafe.headers = [("location", value), ("content-location", value)]
    async with client(CacheMiddleware(site)) as c:
        await c.get("/items/1")
        await c.post("/items", content=b"{}")
        state = await stored(c, "/items/1")
    assert state == [True]


async def test_unsafe_methods_are_never_cached(client) -> None:
    """RFC 9111 §3, docs/http.md: only GET (and HEAD from a stored GET) is answered by the cache."""
    site = Site()
    site.unsafe.headers = [("cache-control", "max-age=60")]
    async with client(CacheMiddleware(site)) as c:
        for _ in range(2):
            r = await c.post("/form", content=b"a=1")
            assert_bypassed(r, "method")
        o = await c.options("/form")
    assert site.unsafe.runs == 3
    assert_bypassed(o, "method", site.unsafe.sent[2])


async def test_post_is_labelled_bypass_and_otherwise_untouched() -> None:
    """RFC 9111 §3 (only GET and HEAD are cached), RFC 9211 §2.2 (``fwd=bypass``): a POST
    reaches the app without a lookup; its response keeps the app's status, fields (in order,
    repeated ones too, a Cache-Status of another cache included) and body, and gets the two
    label fields after them, with ``detail=method`` as the decorator says."""
    fields = [
        (b"content-type", b"application/json"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"cache-status", b"upstream; fwd=uri-miss"),
        (b"location", b"/items/7"),
    ]
    body = b'{"id":7}'

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 201, "headers": list(fields)})
        await send({"type": "http.response.body", "body": body})

    r = await call(CacheMiddleware(app), "/items", method="POST", body=b'{"name":"x"}')
    assert r.status == 201
    assert r.body == body
    assert r.raw_headers == [*fields, *bypass_label("method")]


async def test_fastapi_post_is_labelled_bypass(client) -> None:
    """RFC 9211 §2.2: the FastAPI route's JSON answer to a POST, as the route made it, plus
    the label (``detail=method``)."""
    app = FastAPI()

    @app.post("/items", status_code=201)
    async def add(response: Response) -> dict[str, int]:
        response.headers["x-request-id"] = "abc"
        return {"id": 1}

    app.add_middleware(CacheMiddleware)
    async with client(app) as c:
        r = await c.post("/items", json={"name": "x"})
    assert r.status_code == 201
    assert r.content == b'{"id":1}'
    assert r.headers["x-request-id"] == "abc"
    assert_bypassed(r, "method")


async def test_fastapi_post_invalidates_then_get_is_recomputed(client) -> None:
    """RFC 9111 §4.4 end to end with FastAPI: a POST that changes a collection makes the next
    GET see the change."""
    app = FastAPI()
    items: list[int] = []

    @app.get("/items")
    async def list_items(response: Response) -> list[int]:
        response.headers["cache-control"] = "max-age=600"
        return items

    @app.post("/items", status_code=201)
    async def add_item(response: Response) -> dict[str, int]:
        items.append(len(items) + 1)
        response.headers["location"] = f"/items/{len(items)}"
        return {"id": len(items)}

    app.add_middleware(CacheMiddleware)
    async with client(app) as c:
        assert (await c.get("/items")).json() == []
        assert (await c.get("/items")).json() == []
        assert (await c.post("/items")).status_code == 201
        after = await c.get("/items")
    assert after.json() == [1]
    assert_stored_miss(after)


# ---------------------------------------------------------------------------------------------
# 9. HEAD, and requests that bypass the cache
# ---------------------------------------------------------------------------------------------


async def test_head_is_answered_from_a_stored_get(client) -> None:
    """RFC 9111 §4 (HEAD may be answered from a stored GET), RFC 9110 §9.3.2 (the same header
    fields, no content)."""
    origin = Origin([("cache-control", "max-age=60"), ("content-type", "text/plain")])
    async with client(CacheMiddleware(origin)) as c:
        g = await c.get("/")
        h = await c.head("/")
    assert h.status_code == 200
    assert h.content == b""
    assert h.headers["content-length"] == g.headers["content-length"] == "6"
    assert h.headers["content-type"] == "text/plain"
    assert_hit(h)
    assert origin.runs == 1


async def test_head_miss_goes_to_the_app_and_is_not_stored(client) -> None:
    """docs/http.md: a GET is never answered from a stored HEAD; RFC 9111 §3: a HEAD response is
    not stored as an entry."""
    runs = Runs()

    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"run {runs()}", headers={"cache-control": "max-age=60"})

    app = Starlette(routes=[Route("/", page)], middleware=[Middleware(CacheMiddleware)])
    async with client(app) as c:
        h = await c.head("/")
        g = await c.get("/")
        h2 = await c.head("/")
    assert h.status_code == 200
    assert h.content == b""
    assert_not_stored(h, "head")
    assert g.text == "run 2"
    assert_stored_miss(g)
    assert_hit(h2)
    assert runs.n == 2


@pytest.mark.parametrize(
    ("method", "kwargs", "detail"),
    [
        ("GET", {"content": b"payload"}, "request-body"),
        ("HEAD", {"content": b"payload"}, "request-body"),
        ("GET", {"headers": {"x-http-method-override": "DELETE"}}, "method-override"),
        ("GET", {"headers": {"x-original-url": "/admin"}}, "method-override"),
        ("GET", {"headers": {"x-method-override": "PUT"}}, "method-override"),
        ("GET", {"headers": {"transfer-encoding": "chunked"}}, "request-body"),
    ],
    ids=["get-body", "head-body", "method-override", "original-url", "x-method-override", "te"],
)
async def test_requests_that_bypass_the_cache(
    client, method: str, kwargs: dict[str, Any], detail: str
) -> None:
    """docs/http.md: a GET/HEAD with content, or with method-override / URL-rewrite headers, is
    neither answered from the cache nor stored (RFC 9110 §9.3.1: content on GET has no defined
    semantics, and it is not in the key). The reply is the app's, labelled ``BYPASS`` with the
    reason (RFC 9211 §2.2)."""
    origin = Origin([("cache-control", "max-age=60")])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")  # a stored entry that must not answer
        r1 = await c.request(method, "/", **kwargs)
        r2 = await c.request(method, "/", **kwargs)
        plain = await c.get("/")
    assert origin.methods == ["GET", method, method]
    for i, r in enumerate((r1, r2), start=1):
        assert_bypassed(r, detail, origin.sent[i])
    assert r1.content == (b"" if method == "HEAD" else b"body-2")
    assert plain.content == b"body-1"
    assert_hit(plain)


async def test_bypassed_request_reaches_the_app_unchanged() -> None:
    """RFC 9110 §9.3.1 (content on GET has no defined semantics), docs/http.md: the bypass is a
    pass-through; the app gets the same scope and request body, and its reply comes back as
    it was sent, with the label (RFC 9211 §2.2 ``fwd=bypass``, ``detail=request-body``) after
    its fields."""
    origin = Origin([("cache-control", "max-age=60")])
    app = CacheMiddleware(origin)
    r = await call(app, "/", [(b"content-length", b"4")], body=b"abcd")
    assert r.status == 200
    assert origin.scopes[0]["headers"] == [(b"host", b"testserver"), (b"content-length", b"4")]
    assert r.body == b"body-1"
    assert r.raw_headers == [*origin.sent[0], *bypass_label("request-body")]


async def test_fastapi_request_with_a_body_is_labelled_bypass(client) -> None:
    """docs/http.md (a GET with a body bypasses the cache), RFC 9211 §2.2: the route reads the
    body and answers; the reply is labelled ``detail=request-body`` and not stored, so the
    next plain GET runs the route and is stored."""
    app = FastAPI()
    runs = Runs()

    @app.get("/echo")
    async def echo(request: Request, response: Response) -> dict[str, Any]:
        response.headers["cache-control"] = "max-age=60"
        return {"run": runs(), "body": (await request.body()).decode()}

    app.add_middleware(CacheMiddleware)
    async with client(app) as c:
        r = await c.request("GET", "/echo", content=b"hello")
        plain = await c.get("/echo")
    assert r.json() == {"run": 1, "body": "hello"}
    assert r.headers["cache-control"] == "max-age=60"
    assert_bypassed(r, "request-body")
    assert plain.json() == {"run": 2, "body": ""}
    assert_stored_miss(plain)


async def test_bypass_label_uses_the_configured_header_name(client) -> None:
    """docs/http.md (the X-Cache name is configurable): the pass-through label uses it; a field of
    that name the app sent itself is kept and not repeated (the label adds, never replaces),
    and Cache-Status is still added (RFC 9211 §2)."""
    oxicache.configure(header_name="X-Edge")
    origin = Origin([("cache-control", "max-age=60")])
    own = Origin([("x-edge", "from-the-app")])
    async with client(CacheMiddleware(origin)) as c:
        r = await c.post("/", content=b"x")
    async with client(CacheMiddleware(own)) as c:
        kept = await c.post("/", content=b"x")
    assert list(r.headers.raw) == [*origin.sent[0], *bypass_label("method", b"x-edge")]
    assert "x-cache" not in r.headers
    assert list(kept.headers.raw) == [*own.sent[0], bypass_label("method")[1]]


async def test_failed_lookup_is_labelled_bypass(client, monkeypatch) -> None:
    """docs/http.md (a broken cache is a miss answered by the app), RFC 9211 §2.2: when the lookup
    itself fails the app answers, labelled ``detail=error`` as the decorator does."""
    origin = Origin([("cache-control", "max-age=60")])
    app = CacheMiddleware(origin)
    real = app.engine()

    class Broken:
        def lookup(self, scope: Any) -> Any:
            raise RuntimeError("store down")

        def bypass_label(self, headers: Any, reason: str) -> Any:
            return real.bypass_label(headers, reason)

    monkeypatch.setattr(app, "_engine", Broken())  # the engine the request path uses
    async with client(app) as c:
        r = await c.get("/")
    assert r.content == b"body-1"
    assert_bypassed(r, "error", origin.sent[0])


# ---------------------------------------------------------------------------------------------
# 10. Non-http scopes and the master switch
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
async def test_non_http_scopes_pass_through_untouched(kind: str) -> None:
    """RFC 9111 §1 (a cache stores HTTP responses): only ASGI ``http`` scopes are HTTP
    exchanges; everything else reaches the app with the very same scope, receive and send."""
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    scope = {"type": kind, "asgi": {"version": "3.0"}}

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: Any) -> None:
        pass

    await CacheMiddleware(app)(scope, receive, send)
    assert len(seen) == 1
    assert seen[0][0] is scope
    assert seen[0][1] is receive
    assert seen[0][2] is send


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_starlette_lifespan_and_websocket_through_the_middleware() -> None:
    """RFC 9111 §1, RFC 9110 §7.8 (a protocol switched by Upgrade is not HTTP any more): ASGI
    lifespan and websocket traffic through a Starlette app wrapped by the middleware;
    startup/shutdown run, a websocket echoes."""
    events: list[str] = []

    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        text = await ws.receive_text()
        await ws.send_text(text.upper())
        await ws.close()

    from contextlib import asynccontextmanager

    from starlette.testclient import TestClient

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(
        routes=[WebSocketRoute("/ws", echo)],
        middleware=[Middleware(CacheMiddleware)],
        lifespan=lifespan,
    )
    with TestClient(app) as tc:
        assert events == ["startup"]
        with tc.websocket_connect("/ws") as ws:
            ws.send_text("hello")
            assert ws.receive_text() == "HELLO"
    assert events == ["startup", "shutdown"]


async def test_disabled_is_a_pass_through(client) -> None:
    """RFC 9111 §3 (a cache MAY store; it never has to), docs/http.md (the cache is an
    optimisation; a master switch turns it off): with
    ``configure(enabled=False)`` every request reaches the app and its reply only gets the
    label, ``BYPASS`` with ``detail=disabled`` as the decorator's; turning it back on caches
    again."""
    origin = Origin([("cache-control", "max-age=60")])
    app = CacheMiddleware(origin)
    async with client(app) as c:
        oxicache.configure(enabled=False)
        off = [await c.get("/") for _ in range(2)]
        oxicache.configure(enabled=True)
        on = [await c.get("/") for _ in range(2)]
    for i, r in enumerate(off):
        assert_bypassed(r, "disabled", origin.sent[i])
    assert [r.content for r in off] == [b"body-1", b"body-2"]
    assert_stored_miss(on[0])
    assert_hit(on[1])
    assert origin.runs == 3


# ---------------------------------------------------------------------------------------------
# 11. Hostile input
# ---------------------------------------------------------------------------------------------

JUNK_BYTES = st.binary(max_size=40)
JUNK_TEXT = st.lists(
    st.sampled_from(
        [
            "max-age",
            "s-maxage",
            "no-cache",
            "no-store",
            "max-stale",
            "min-fresh",
            "private",
            "public",
            "must-revalidate",
            "=",
            ",",
            ";",
            '"',
            "W/",
            "*",
            " ",
            "\t",
            "-1",
            "0",
            "60",
            "99999999999999999999",
            "1.5",
            "abc",
            "GMT",
            "Mon, 01 Jan 2001",
            "\x00",
            "\xff",
            "é",
            "x-a",
            "accept",
        ]
    ),
    max_size=8,
).map("".join)
JUNK = st.one_of(JUNK_BYTES, JUNK_TEXT.map(lambda s: s.encode("utf-8")))
REQUEST_FIELDS = st.sampled_from(
    [
        b"cache-control",
        b"pragma",
        b"if-none-match",
        b"if-modified-since",
        b"age",
        b"expires",
        b"vary",
        b"x-a",
        b"accept",
        b"Cache-Control",
        b"If-None-Match",
    ]
)
RESPONSE_FIELDS = st.sampled_from(
    [
        b"cache-control",
        b"age",
        b"expires",
        b"date",
        b"vary",
        b"etag",
        b"last-modified",
        b"surrogate-control",
        b"content-location",
        b"pragma",
    ]
)


def no_only_if_cached(headers: RawHeaders) -> RawHeaders:
    """``only-if-cached`` legitimately answers 504 on a miss (RFC 9111 §5.2.1.7),
    ``max-stale`` legitimately answers STALE from an entry stored stale (RFC 9111 §5.2.1.1,
    an invalid ``Expires`` makes one, §5.3), and ``If-None-Match: *`` legitimately answers
    304 on a hit (RFC 9110 §13.1.2: it matches any stored response); the junk vocabulary may
    spell them, so keep them out."""
    return [
        (n, v)
        for n, v in headers
        if b"only-if-cached" not in v.lower()
        and b"max-stale" not in v.lower()
        and not (
            n.lower() == b"if-none-match" and {m.strip() for m in v.split(b",")} <= {b"*", b""}
        )
    ]


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(headers=st.lists(st.tuples(REQUEST_FIELDS, JUNK), max_size=5).map(no_only_if_cached))
async def test_junk_request_headers_never_change_the_answer(headers: RawHeaders) -> None:
    """docs/http.md (each request gets the answer the app would have given), RFC 9111 §5.2 (unknown
    or malformed directives are ignored), RFC 9110 §13.1.1 (an unusable If-None-Match is
    ignored): an origin without validators, asked with junk request headers on a miss and on
    a hit, answers exactly as the plain app does, and nothing raises."""
    config.get_store().clear()
    plain = Origin([("cache-control", "max-age=60"), ("content-type", "text/plain")], body=b"b")
    origin = Origin([("cache-control", "max-age=60"), ("content-type", "text/plain")], body=b"b")
    app = CacheMiddleware(origin)
    expected = await call(plain, "/j", headers)
    for _ in range(2):
        got = await call(app, "/j", headers)
        assert got.status == expected.status == 200
        assert got.body == expected.body
        assert got.headers_without(b"age", b"x-cache", b"cache-status") == expected.raw_headers
    again = await call(app, "/j")
    assert again.status == 200
    assert again.body == b"b"


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    response=st.lists(st.tuples(RESPONSE_FIELDS, JUNK), max_size=5),
    request=st.lists(st.tuples(REQUEST_FIELDS, JUNK), max_size=3).map(no_only_if_cached),
)
async def test_junk_response_headers_never_raise(response: RawHeaders, request: RawHeaders) -> None:
    """RFC 9111 §4.2.1 (invalid freshness information means stale), §5.1 (an invalid Age is
    ignored), §4.1 (an unusable Vary never matches), RFC 9110 §8.8.3 (a malformed ETag never
    matches): whatever the app sends, the middleware neither raises nor changes the status
    or content of a full response; a 304 only answers a client conditional."""
    config.get_store().clear()

    async def app_(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(response)})
        await send({"type": "http.response.body", "body": b"content"})

    app = CacheMiddleware(app_)
    conditional = any(n.lower().startswith(b"if-") for n, _ in request)
    # What the cache consumes or replaces: its own Age, and the fields addressed to it.
    own = (b"age", b"surrogate-control", b"x-cache", b"cache-status")
    app_fields = [(n, v) for n, v in response if n not in own]
    for headers in ([], request, request, []):
        r = await call(app, "/h", headers)
        if r.status == 304:
            assert conditional and headers
            assert r.body == b""
        else:
            assert r.status == 200
            assert r.body == b"content"
            assert r.headers_without(*own) == app_fields
        assert r.get(b"x-cache") in (b"HIT", b"MISS")
        if r.get(b"x-cache") == b"HIT":
            assert len([n for n, _ in r.raw_headers if n == b"age"]) == 1


@pytest.mark.parametrize(
    "scope_change",
    [
        {"headers": [(b"host", b"\xff\x00")]},
        {"headers": []},
        {"raw_path": None},
        {"query_string": b"\x00\xff&&=="},
        {"method": "get"},
        {"scheme": "weird"},
    ],
    ids=["binary-host", "no-host", "no-raw-path", "binary-query", "lowercase-method", "scheme"],
)
async def test_odd_scopes_never_raise(scope_change: dict[str, Any]) -> None:
    """RFC 9110 §9.1 (method names are case-sensitive: ``get`` is not GET), §7.2 (Host),
    docs/http.md (the cache never makes the app fail): odd but possible scopes are answered."""
    origin = Origin([("cache-control", "max-age=60")])
    app = CacheMiddleware(origin)
    for _ in range(2):
        scope = http_scope("/odd", **scope_change)
        messages: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(m: dict[str, Any], messages=messages) -> None:
            messages.append(m)

        await app(scope, receive, send)
        assert Reply(messages).status == 200


# ---------------------------------------------------------------------------------------------
# 12. Big and streamed bodies
# ---------------------------------------------------------------------------------------------


async def test_body_over_max_entry_size_with_content_length_streams_through(client) -> None:
    """RFC 9111 §3 (storing is never required), docs/http.md (a body over the size limit is
    answered, not stored): Content-Length says it is too large, so the response passes
    through as it comes."""
    big = bytes(range(256)) * 20  # 5120 bytes
    origin = Origin([("cache-control", "max-age=60")], body=big)
    async with client(CacheMiddleware(origin, max_entry_size=1000)) as c:
        a = await c.get("/big")
        b = await c.get("/big")
    assert a.content == b.content == big
    assert_not_stored(a, "too-large")
    assert origin.runs == 2


async def test_streamed_body_over_max_entry_size_is_sent_whole_and_not_stored(client) -> None:
    """RFC 9111 §3, docs/http.md: a streamed body that outgrows the limit is sent on, every byte in
    order, and not stored."""
    chunks = [bytes([i]) * 300 for i in range(10)]
    runs = Runs()

    async def gen() -> Any:
        runs()
        for chunk in chunks:
            yield chunk

    app = FastAPI()

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        headers = {"cache-control": "max-age=60", "content-length": "3000"}
        return StreamingResponse(gen(), headers=headers)

    app.add_middleware(CacheMiddleware, max_entry_size=1000)
    async with client(app) as c:
        a = await c.get("/stream")
        b = await c.get("/stream")
    assert a.content == b.content == b"".join(chunks)
    assert_not_stored(a, "too-large")
    assert runs.n == 2


async def test_storable_streamed_body_is_stored_and_replayed_whole(client) -> None:
    """RFC 9111 §3 (a complete response may be stored), §4: the chunks of a streamed response
    are stored as one body and replayed whole."""
    chunks = [b"part-%d;" % i for i in range(6)]
    length = str(len(b"".join(chunks)))
    origin = Origin([("cache-control", "max-age=60"), ("content-length", length)], chunks=chunks)
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/s")
        b = await c.get("/s")
    assert a.content == b.content == b"".join(chunks)
    assert_stored_miss(a)
    assert_hit(b)
    assert origin.runs == 1


async def test_a_body_streamed_without_a_length_passes_through_and_is_not_stored(client) -> None:
    """RFC 9111 §3.3: a body that streams with no Content-Length may never be complete. It is
    sent on as it comes (never held back) and never stored, whatever its Cache-Control says."""
    chunks = [b"part-%d;" % i for i in range(6)]
    origin = Origin([("cache-control", "max-age=60")], chunks=chunks)
    async with client(CacheMiddleware(origin)) as c:
        a = await c.get("/s")
        b = await c.get("/s")
    assert a.content == b.content == b"".join(chunks)
    assert_not_stored(a, "streaming")
    assert origin.runs == 2


async def test_body_exactly_at_the_limit_is_stored(client) -> None:
    """RFC 9111 §3, docs/http.md: the size limit is inclusive; one byte more is not stored."""
    at = Origin(
        [("cache-control", "max-age=60"), ("content-length", "1000")],
        chunks=[b"a" * 500, b"b" * 500],
    )
    over = Origin(
        [("cache-control", "max-age=60"), ("content-length", "1001")],
        chunks=[b"a" * 500, b"b" * 501],
    )
    async with client(CacheMiddleware(at, max_entry_size=1000)) as c:
        await c.get("/")
        r = await c.get("/")
    assert_hit(r)
    assert len(r.content) == 1000
    async with client(CacheMiddleware(over, max_entry_size=1000)) as c:
        r = await c.get("/over")
    assert len(r.content) == 1001
    assert_not_stored(r, "too-large")


async def test_app_returning_before_the_body_ends_is_sent_and_not_stored(client) -> None:
    """RFC 9111 §3.3 (an incomplete response is not used as a complete one), docs/http.md (never
    store an incomplete body): an app that returns without the final body message gets its
    response sent as it was, and nothing is stored."""
    runs = Runs()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        runs()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"cache-control", b"max-age=60"), (b"content-length", b"20")],
            }
        )
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})

    async with client(CacheMiddleware(app)) as c:
        a = await c.get("/")
        b = await c.get("/")
    assert a.content == b.content == b"partial"
    assert_not_stored(a, "incomplete")
    assert runs.n == 2


# ---------------------------------------------------------------------------------------------
# 13. The app raising
# ---------------------------------------------------------------------------------------------


class Boom(Exception):
    pass


def raising_app(when: str) -> tuple[Any, Runs]:
    """Raises on its first run (``before`` the response starts or ``after`` part of the body
    was sent); answers normally after that."""
    runs = Runs()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        n = runs()
        if n == 1 and when == "before":
            raise Boom("before")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"cache-control", b"max-age=60"), (b"content-length", b"7")],
            }
        )
        await send({"type": "http.response.body", "body": b"one ", "more_body": True})
        if n == 1:
            raise Boom("after")
        await send({"type": "http.response.body", "body": b"two", "more_body": False})

    return app, runs


@pytest.mark.parametrize("when", ["before", "after"])
async def test_app_exception_propagates_and_nothing_is_stored(client, when: str) -> None:
    """RFC 9111 §3.3 (incomplete responses), docs/http.md (never store a response produced while
    an exception propagated; the cache does not change the app's failures): the exception
    reaches the server as it would without the middleware, and the next request runs the
    app."""
    bare, _ = raising_app(when)
    with pytest.raises(Boom, match=when):
        async with client(bare) as c:
            await c.get("/")
    app, runs = raising_app(when)
    wrapped = CacheMiddleware(app)
    with pytest.raises(Boom, match=when):
        async with client(wrapped) as c:
            await c.get("/")
    async with client(wrapped) as c:
        ok = await c.get("/")
        hit = await c.get("/")
    assert ok.content == b"one two"
    assert_stored_miss(ok)
    assert_hit(hit)
    assert runs.n == 2


@pytest.mark.parametrize("when", ["before", "after"])
async def test_fastapi_route_raising_gives_the_same_500(client, when: str) -> None:
    """RFC 9111 §3 and docs/http.md (5xx never stored), §3.3 (incomplete responses): with
    Starlette's error handler outside the cache, a route that raises before answering gives
    the client the same 500 as without the middleware, and nothing is stored. When it raises
    after starting to stream (no Content-Length), the stream was passed on as it came, so the
    client gets the same truncated 200 as without the cache, and nothing is stored."""

    def build(with_cache: bool) -> tuple[FastAPI, Runs]:
        app = FastAPI()
        runs = Runs()

        async def gen() -> Any:
            yield b"one "
            raise Boom("after")

        @app.get("/r")
        async def route() -> Any:
            runs()
            if when == "before":
                raise Boom("before")
            return StreamingResponse(gen(), headers={"cache-control": "max-age=60"})

        if with_cache:
            app.add_middleware(CacheMiddleware)
        return app, runs

    plain, _ = build(False)
    cached, runs = build(True)
    transport_plain = httpx.ASGITransport(app=plain, raise_app_exceptions=False)
    transport_cached = httpx.ASGITransport(app=cached, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport_plain, base_url="http://t") as c:
        expected = await c.get("/r")
    async with httpx.AsyncClient(transport=transport_cached, base_url="http://t") as c:
        got = [await c.get("/r") for _ in range(2)]
    if when == "before":
        assert expected.status_code == 500
        assert [r.status_code for r in got] == [500, 500]
        assert [r.content for r in got] == [expected.content] * 2
    else:
        assert (expected.status_code, expected.content) == (200, b"one ")  # truncated
        assert [(r.status_code, r.content) for r in got] == [(200, b"one ")] * 2
    assert runs.n == 2


async def test_client_disconnect_while_the_app_answers_is_not_stored() -> None:
    """RFC 9111 §3 (storing is optional), docs/http.md (never store a response produced after the
    client disconnected): an app that sees ``http.disconnect`` and still answers gets its
    answer sent, not stored."""
    runs = Runs()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        runs()
        while (await receive())["type"] != "http.disconnect":
            pass
        headers = [(b"cache-control", b"max-age=60")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"degraded"})

    middleware = CacheMiddleware(app)
    for _ in range(2):
        messages: list[dict[str, Any]] = []
        incoming = iter(
            [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}]
        )

        async def receive(incoming=incoming) -> dict[str, Any]:
            return next(incoming)

        async def send(m: dict[str, Any], messages=messages) -> None:
            messages.append(m)

        await middleware(http_scope("/d"), receive, send)
        reply = Reply(messages)
        assert reply.body == b"degraded"
        assert reply.get(b"cache-status") == b"oxicache; fwd=miss; detail=disconnected"
    assert runs.n == 2


async def test_pathsend_response_is_passed_on_in_order(tmp_path) -> None:
    """RFC 9111 §3 (storing is optional), ASGI ``http.response.pathsend``: the content is not
    in body messages, so the response is not stored, and the held-back start is sent before
    the pathsend message."""
    from starlette.responses import FileResponse

    file = tmp_path / "f.txt"
    file.write_bytes(b"file content")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        response = FileResponse(file, headers={"cache-control": "max-age=60"})
        await response(scope, receive, send)

    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(m: dict[str, Any]) -> None:
        messages.append(m)

    scope = http_scope("/f", extensions={"http.response.pathsend": {}})
    await CacheMiddleware(app)(scope, receive, send)
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.pathsend"]
    assert (b"cache-status", b"oxicache; fwd=miss; detail=not-buffered") in messages[0]["headers"]
    assert messages[1]["path"] == str(file)


async def test_revalidation_304_without_a_body_message_still_answers(client, clock) -> None:
    """RFC 9111 §4.3.4: the app's 304 confirms the stale entry; an app that returns after the
    start of its 304 (no body message) still gets the freshened entry sent."""
    runs = Runs()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"cache-control", b"max-age=60"), (b"etag", b'"e"')]
        if runs() == 1:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"stored body"})
        else:
            await send({"type": "http.response.start", "status": 304, "headers": headers})

    async with client(CacheMiddleware(app)) as c:
        await c.get("/")
        clock.advance(61)
        r = await c.get("/")
    assert runs.n == 2
    assert r.status_code == 200
    assert r.content == b"stored body"
    assert age(r) == 0


# ---------------------------------------------------------------------------------------------
# 14. Server-side stale serving (RFC 5861): not implemented by the middleware yet
# ---------------------------------------------------------------------------------------------


async def test_stale_while_revalidate_refreshes_in_the_background(client, clock) -> None:
    """RFC 5861 §3 (issue 5: serve the stale entry while exactly one background refresh per
    key runs)."""
    origin = Origin([("cache-control", "max-age=1, stale-while-revalidate=60"), ("etag", '"a"')])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(2)
        stale = [await c.get("/") for _ in range(3)]
        for _ in range(20):
            if origin.runs > 1:
                break
            await asyncio.sleep(0.01)
    assert [r.content for r in stale] == [b"body-1"] * 3
    assert origin.runs == 2


async def test_stale_if_error_serves_the_stale_entry_on_5xx(client, clock) -> None:
    """RFC 5861 §4, RFC 9111 §4.3.3 (issue 5: stale-if-error serves the stale entry when the
    handler returns 5xx)."""
    origin = Origin([("cache-control", "max-age=1, stale-if-error=60"), ("etag", '"a"')])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(2)
        origin.status = 503
        r = await c.get("/")
    assert r.status_code == 200
    assert r.content == b"body-1"


async def test_stale_if_error_from_a_fresh_entry_says_how_fresh_it_is(client, clock) -> None:
    """RFC 5861 §4 with a fresh entry the request's ``no-cache`` refused: the app fails, the
    entry answers, and its ``Cache-Status`` ``ttl`` is the freshness it has left, an RFC 8941
    integer (RFC 9211 §2.4), not a doubled minus sign."""
    origin = Origin([("cache-control", "max-age=60, stale-if-error=600")])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        clock.advance(10.5)
        origin.status = 500
        r = await c.get("/", headers={"cache-control": "no-cache"})
    assert (r.status_code, r.content, xc(r)) == (200, b"body-1", "STALE")
    assert re.fullmatch(r"oxicache; hit; ttl=4[89]; detail=stale-if-error", cs(r) or ""), cs(r)


async def test_concurrent_misses_enter_the_app_once(client) -> None:
    """RFC 9111 §4 (a cache answers from what it stored; requests for one key can wait for
    the response in flight), docs/http.md (concurrent misses on one key run the handler once),
    issue 5 (revalidation coalesced)."""
    origin = Origin([("cache-control", "max-age=60")])
    gate = asyncio.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await gate.wait()
        await origin(scope, receive, send)

    async with client(CacheMiddleware(slow)) as c:
        tasks = [asyncio.create_task(c.get("/s")) for _ in range(5)]
        await asyncio.sleep(0.05)
        gate.set()
        replies = await asyncio.gather(*tasks)
    assert [r.content for r in replies] == [b"body-1"] * 5
    assert origin.runs == 1


async def test_cache_status_fwd_names_why_the_request_was_forwarded(client, clock) -> None:
    """RFC 9211 §2.2: ``fwd=stale`` when the selected response was stale, ``fwd=request``
    when a fresh one was refused by the request's directives."""
    origin = Origin([("cache-control", "max-age=60")])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/")
        refused = await c.get("/", headers={"cache-control": "no-cache"})
        clock.advance(61)
        stale = await c.get("/")
    assert cs(refused) == "oxicache; fwd=request; stored"
    assert cs(stale) == "oxicache; fwd=stale; stored"


async def test_unsafe_method_also_drops_the_decorators_entries(client) -> None:
    """RFC 9111 §4.4 for `@cache` routes behind the middleware: a successful POST to the URI
    invalidates the decorator's entries for that path as well as the middleware's own."""
    from fastapi import FastAPI

    from oxicache import cache

    app = FastAPI()
    runs = 0

    @app.get("/items/1")
    @cache(ttl=60)
    async def item() -> dict[str, int]:
        nonlocal runs
        runs += 1
        return {"version": runs}

    @app.post("/items/1")
    async def update() -> dict[str, bool]:
        return {"ok": True}

    async with client(CacheMiddleware(app)) as c:
        first = await c.get("/items/1")
        again = await c.get("/items/1")
        posted = await c.post("/items/1")
        after = await c.get("/items/1")
    assert first.json() == again.json() == {"version": 1} and xc(again) == "HIT"
    assert posted.status_code == 200
    assert after.json() == {"version": 2} and runs == 2


async def test_a_route_keyed_per_user_is_never_shared_by_the_middleware(client) -> None:
    """RFC 9111 §5.2.2.7: the decorator marks answers of a route keyed on a dependency value
    `private`, so the shared cache in front never serves them to another user (the benchmark
    found alice's identity served to others when the user came from X-Api-Key)."""
    from fastapi import Depends, FastAPI, Header

    from oxicache import cache

    async def current_user(x_api_key: str | None = Header(None)) -> str:
        return x_api_key or "anonymous"

    app = FastAPI()
    runs = 0

    @app.get("/me")
    @cache(ttl=60)
    async def me(user: str = Depends(current_user)) -> dict[str, str]:
        nonlocal runs
        runs += 1
        return {"user": user}

    async with client(CacheMiddleware(app)) as c:
        seen = [
            (await c.get("/me", headers={"x-api-key": k} if k else {})).json()["user"]
            for k in ["alice", "bob", None, "alice", "carol", None]
        ]
        again = await c.get("/me", headers={"x-api-key": "alice"})
    assert seen == ["alice", "bob", "anonymous", "alice", "carol", "anonymous"]
    assert again.headers["cache-control"].startswith("private")
    assert runs == 4  # alice, bob, anonymous, carol: repeats come from the decorator's entries


# ---------------------------------------------------------------------------------------------
# Two apps in one process
# ---------------------------------------------------------------------------------------------


def _site(name: str, extra_route: str) -> FastAPI:
    app = FastAPI()

    @app.get("/info")
    async def info() -> Response:
        return Response(name.encode(), headers={"cache-control": "max-age=60"})

    @app.get(extra_route)
    async def other() -> dict[str, str]:
        return {}

    app.add_middleware(CacheMiddleware)
    return app


async def test_two_apps_never_answer_from_each_others_entries(client) -> None:
    """A public and an internal app in one process, same path: a request to the public app
    carrying the internal app's Host gets the public app's answer, never the internal one's."""
    internal, public = _site("internal", "/admin"), _site("public", "/shop")
    host = {"host": "internal.example"}
    async with client(internal) as c:
        await c.get("/info", headers=host)
        assert (await c.get("/info", headers=host)).headers["x-cache"] == "HIT"
    async with client(public) as c:
        r = await c.get("/info", headers=host)
    assert r.content == b"public"
    assert r.headers["x-cache"] == "MISS"


def test_the_namespace_is_the_same_in_every_process() -> None:
    """Derived from the app's routes, not from an object's address or an order of creation:
    a shared backend still finds the app's entries from another process."""
    code = (
        "from tests.python.middleware.test_middleware import _site\n"
        "from oxicache.middleware.asgi import app_namespace\n"
        "a, b = _site('x', '/admin').router, _site('x', '/shop').router\n"
        "print(app_namespace(a), app_namespace(b))\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    first, second = (r.stdout.split() for r in runs)
    assert first == second and first[0] != first[1]


async def test_an_explicit_namespace_lets_two_middlewares_share(client) -> None:
    origin = Origin([("cache-control", "max-age=60")])
    one = CacheMiddleware(origin, namespace="site")
    two = CacheMiddleware(Origin([("cache-control", "max-age=60")]), namespace="site")
    async with client(one) as c:
        await c.get("/x")
    async with client(two) as c:
        assert (await c.get("/x")).headers["x-cache"] == "HIT"


# ---------------------------------------------------------------------------------------------
# Unkeyed forwarding and rewrite headers (web cache poisoning)
# ---------------------------------------------------------------------------------------------


def _echoing_site() -> Any:
    """An app that trusts no proxy but, like many, builds links and redirects from the
    forwarding headers it finds."""
    app = FastAPI()

    def origin(request: Request) -> str:
        h = request.headers
        forwarded = h.get("forwarded", "")
        host = h.get("x-forwarded-host") or h.get("x-host") or request.url.hostname
        if "host=" in forwarded:
            host = forwarded.split("host=")[1].split(";")[0].split(",")[0]
        scheme = h.get("x-forwarded-proto") or h.get("x-forwarded-scheme") or request.url.scheme
        return f"{scheme}://{host}"

    @app.get("/page")
    async def page(request: Request) -> Response:
        body = f'<a href="{origin(request)}/next">next</a>'.encode()
        return Response(body, headers={"cache-control": "max-age=60"})

    @app.get("/go")
    async def go(request: Request) -> Response:
        headers = {"cache-control": "max-age=60", "location": f"{origin(request)}/landing"}
        return Response(status_code=301, headers=headers)

    @app.get("/{path:path}")
    async def anything(path: str) -> Response:
        return Response(f"path {path}".encode(), headers={"cache-control": "max-age=60"})

    return CacheMiddleware(app)


@pytest.mark.parametrize(
    "poison",
    [
        {"x-forwarded-host": "evil.example"},
        {"x-host": "evil.example"},
        {"forwarded": "for=203.0.113.9;host=evil.example;proto=http"},
        {"x-forwarded-proto": "http"},
        {"x-forwarded-scheme": "http"},
    ],
)
async def test_forwarding_headers_never_poison_the_clean_entry(client, poison) -> None:
    site = _echoing_site()
    async with client(site) as c:
        for path in ("/page", "/go"):
            bad = await c.get(path, headers=poison, follow_redirects=False)
            clean = await c.get(path, follow_redirects=False)
            clean_again = await c.get(path, follow_redirects=False)
            text = clean.text + clean.headers.get("location", "")
            assert "evil.example" not in text and "http://" not in text.replace(
                "http://testserver", ""
            ), (path, clean.headers, clean.text)
            assert clean_again.headers["x-cache"] == "HIT"
            assert clean_again.content == clean.content
            # ... and the poisoned variant stays with the requests that carry it.
            again = await c.get(path, headers=poison, follow_redirects=False)
            assert again.content == bad.content
            assert again.headers.get("location") == bad.headers.get("location")


@pytest.mark.parametrize("rewrite", ["x-original-url", "x-rewrite-url"])
async def test_url_rewrite_headers_bypass_the_cache(client, rewrite: str) -> None:
    site = _echoing_site()
    async with client(site) as c:
        bad = await c.get("/page", headers={rewrite: "/admin"})
        clean = await c.get("/page")
    assert bad.headers["x-cache"] == "BYPASS"
    assert clean.headers["x-cache"] == "MISS"


async def test_behind_a_proxy_an_unsafe_request_still_invalidates(client) -> None:
    """RFC 9111 §4.4 with forwarding headers keyed: a proxy that adds X-Forwarded-Proto to
    every request still gets the URI's entry dropped by its clients' POST."""
    site = Site()
    proxy = {"x-forwarded-proto": "https", "x-forwarded-host": "shop.example"}
    async with client(CacheMiddleware(site)) as c:
        await c.get("/a", headers=proxy)
        assert (await c.get("/a", headers=proxy)).headers["x-cache"] == "HIT"
        await c.post("/a", headers=proxy, content=b"{}")
        after = await c.get("/a", headers=proxy)
    assert after.headers["x-cache"] == "MISS"


async def test_a_range_request_keeps_its_if_range(client) -> None:
    """RFC 9110 §13.1.5: If-Range makes a Range request conditional; dropping it would hand a
    client with an outdated copy a 206 of the new representation. The middleware passes a
    Range request (If-Range included) to the app untouched: the app answers the full 200."""
    seen: list[dict[bytes, bytes]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope["headers"])
        seen.append(headers)
        body = b"0123456789"
        if b"range" in headers and headers.get(b"if-range") == b'"v2"':
            start = {"status": 206, "headers": [(b"content-range", b"bytes 0-3/10")]}
            await send({"type": "http.response.start", **start})
            await send({"type": "http.response.body", "body": body[:4]})
            return
        cc = [(b"cache-control", b"max-age=60"), (b"etag", b'"v2"')]
        await send({"type": "http.response.start", "status": 200, "headers": cc})
        await send({"type": "http.response.body", "body": body})

    async with client(CacheMiddleware(app)) as c:
        await c.get("/f")  # stored
        outdated = await c.get("/f", headers={"range": "bytes=0-3", "if-range": '"v1"'})
        current = await c.get("/f", headers={"range": "bytes=0-3", "if-range": '"v2"'})
    assert seen[1][b"if-range"] == b'"v1"' and seen[2][b"if-range"] == b'"v2"'
    assert outdated.status_code == 200 and outdated.content == b"0123456789"
    assert current.status_code == 206 and current.content == b"0123"
    assert outdated.headers["x-cache"] == current.headers["x-cache"] == "BYPASS"


def _made_by_one_factory(name: str) -> FastAPI:
    app = FastAPI()

    @app.get("/info")
    async def info() -> Response:
        return Response(name.encode(), headers={"cache-control": "max-age=60"})

    app.add_middleware(CacheMiddleware)
    return app


async def test_two_apps_from_one_factory_never_share_entries(client) -> None:
    """Same routes, same endpoint code: the apps differ by what the factory captured, and so
    do their namespaces (as ``@cache`` labels functions made by factories)."""
    internal, public = _made_by_one_factory("internal"), _made_by_one_factory("public")
    host = {"host": "internal.example"}
    async with client(internal) as c:
        await c.get("/info", headers=host)
    async with client(public) as c:
        r = await c.get("/info", headers=host)
    assert r.content == b"public" and r.headers["x-cache"] == "MISS"
