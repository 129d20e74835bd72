"""``@cache`` on FastAPI endpoints, driven over HTTP.

Every test builds a real FastAPI app, sends requests through httpx's ASGI transport and checks
what a client would see: status, headers, body bytes, and how many times the handler ran.
Expiry uses the ``clock`` fixture (the store's clock), never sleeps.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import (
    BackgroundTasks,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
)
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, SecretStr, field_validator
from starlette.middleware.gzip import GZipMiddleware

import oxicache
from oxicache import ConfigError, cache
from oxicache._core import etag_for

WEAK_ETAG = re.compile(r'^W/"[A-Za-z0-9_-]{22}"$')
CACHE_STATUS_HIT = re.compile(r"^oxicache; hit; ttl=(\d+)$")


class Runs:
    """Counts handler runs."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def xc(r: httpx.Response) -> str | None:
    return r.headers.get("x-cache")


def status_of(r: httpx.Response) -> str | None:
    return r.headers.get("cache-status")


def hit_ttl(r: httpx.Response) -> int:
    m = CACHE_STATUS_HIT.match(r.headers["cache-status"])
    assert m, r.headers["cache-status"]
    return int(m.group(1))


def assert_not_stored(r: httpx.Response, reason: str) -> None:
    """A miss that was answered but not stored (RFC 9211 §2.7 ``detail``)."""
    assert xc(r) == "MISS", r.headers
    assert status_of(r) == f"oxicache; fwd=miss; detail={reason}"


def assert_bypass(r: httpx.Response, reason: str) -> None:
    """A request the cache did not look up at all (RFC 9211 §2.2 ``fwd=bypass``)."""
    assert xc(r) == "BYPASS", r.headers
    assert status_of(r) == f"oxicache; fwd=bypass; detail={reason}"


# ---------------------------------------------------------------------------------------------
# 1. Miss, hit, Age, expiry
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_miss_then_hit_replays_the_same_response(client, kind: str) -> None:
    """RFC 9111 §4 (reuse), §5.1 (Age); RFC 9211 §2.1/§2.2/§2.5 (hit, fwd=miss, stored)."""
    app = FastAPI()
    runs = Runs()
    if kind == "async":

        @app.get("/items")
        @cache(ttl=60)
        async def items() -> dict[str, Any]:
            return {"run": runs(), "items": [1, 2, 3]}

    else:

        @app.get("/items")
        @cache(ttl=60)
        def items() -> dict[str, Any]:
            return {"run": runs(), "items": [1, 2, 3]}

    async with client(app) as c:
        miss = await c.get("/items")
        hit = await c.get("/items")

    assert miss.status_code == hit.status_code == 200
    assert miss.content == hit.content == b'{"run":1,"items":[1,2,3]}'
    assert runs.n == 1
    assert xc(miss) == "MISS"
    assert status_of(miss) == "oxicache; fwd=miss; stored"
    assert WEAK_ETAG.match(miss.headers["etag"])
    assert miss.headers["cache-control"] == "max-age=60"
    assert "age" not in miss.headers
    assert xc(hit) == "HIT"
    assert int(hit.headers["age"]) == 0
    assert hit_ttl(hit) in (59, 60)
    for name in ("content-type", "content-length", "etag", "cache-control"):
        assert hit.headers[name] == miss.headers[name], name


async def test_age_grows_while_max_age_stays_the_ttl(client, clock) -> None:
    """RFC 9111 §4.2.3 and §5.1: a downstream cache computes remaining = max-age - Age, so
    Cache-Control keeps the full TTL and Age counts the time since storage."""
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return runs()

    async with client(app) as c:
        await c.get("/a")
        clock.advance(20)
        hit = await c.get("/a")
    assert xc(hit) == "HIT"
    assert hit.headers["age"] == "20"
    assert hit.headers["cache-control"] == "max-age=60"
    assert hit_ttl(hit) in (39, 40)
    assert runs.n == 1


async def test_expired_entry_is_never_served(client, clock) -> None:
    """RFC 9111 §4.2: a stale response is not reused (no stale directives given)."""
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return runs()

    async with client(app) as c:
        first = await c.get("/a")
        clock.advance(59)
        still = await c.get("/a")
        clock.advance(1)
        after = await c.get("/a")
        again = await c.get("/a")
    assert (xc(first), xc(still), xc(after), xc(again)) == ("MISS", "HIT", "MISS", "HIT")
    assert (first.content, still.content, after.content, again.content) == (b"1", b"1", b"2", b"2")
    assert status_of(after) == "oxicache; fwd=miss; stored"


async def test_hit_skips_response_model_validation_and_serialization(client) -> None:
    """RFC 9111 §4: a hit replays the stored bytes; the handler, the response_model validation
    and the serialization do not run again."""
    app = FastAPI()
    runs = Runs()
    validations = Runs()

    class Item(BaseModel):
        name: str
        price: float

        @field_validator("name")
        @classmethod
        def count(cls, v: str) -> str:
            validations()
            return v

    @app.get("/item", response_model=Item)
    @cache(ttl=60)
    async def item() -> Any:
        runs()
        return {"name": "pen", "price": 1.5, "secret": "dropped by the model"}

    async with client(app) as c:
        miss = await c.get("/item")
        hits = [await c.get("/item") for _ in range(3)]
    assert miss.json() == {"name": "pen", "price": 1.5}
    assert all(h.content == miss.content and xc(h) == "HIT" for h in hits)
    assert runs.n == 1
    assert validations.n == 1


async def test_miss_renders_like_fastapi_without_the_cache(client) -> None:
    """The cache is transparent on a miss: same status, content-type and body as FastAPI."""

    class Item(BaseModel):
        name: str

    def build(cached: bool) -> FastAPI:
        app = FastAPI()
        wrap = cache(ttl=60) if cached else (lambda f: f)

        @app.get("/model", response_model=Item)
        @wrap
        async def model() -> Any:
            return {"name": "x", "extra": 1}

        @app.get("/text", response_class=PlainTextResponse)
        @wrap
        def text() -> str:
            return "hello"

        @app.get("/list")
        @wrap
        async def listing(limit: int = 3) -> list[int]:
            return list(range(limit))

        return app

    for path in ("/model", "/text", "/list?limit=5"):
        async with client(build(False)) as c:
            plain = await c.get(path)
        async with client(build(True)) as c:
            miss = await c.get(path)
            hit = await c.get(path)
        assert (miss.status_code, miss.content) == (plain.status_code, plain.content), path
        assert (hit.status_code, hit.content) == (plain.status_code, plain.content), path
        assert (
            miss.headers["content-type"]
            == plain.headers["content-type"]
            == hit.headers["content-type"]
        )
        assert xc(hit) == "HIT"


# ---------------------------------------------------------------------------------------------
# 2. TTL forms
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "max_age"),
    [(60, "60"), (90.7, "90"), (timedelta(minutes=2), "120"), ("1h30m", "5400"), ("45s", "45")],
)
async def test_ttl_forms_set_max_age(client, ttl: Any, max_age: str) -> None:
    """RFC 9111 §5.2.2.1: the TTL is sent as max-age (whole seconds)."""
    app = FastAPI()

    @app.get("/t")
    @cache(ttl=ttl)
    async def t() -> str:
        return "t"

    async with client(app) as c:
        r = await c.get("/t")
    assert r.headers["cache-control"] == f"max-age={max_age}"


@pytest.mark.parametrize(
    "ttl", ["abc", "1x", "", "h1", "1h30", "-5", 0, -1, float("inf"), float("nan"), True]
)
def test_bad_ttl_is_a_config_error_at_decoration(ttl: Any) -> None:
    with pytest.raises(ConfigError):
        cache(ttl=ttl)


# ---------------------------------------------------------------------------------------------
# 3. What the key sees
# ---------------------------------------------------------------------------------------------


async def test_path_params_key_the_entry(client) -> None:
    """RFC 9111 §4: the stored response is reused only for the same target URI."""
    app = FastAPI()
    runs = Runs()

    @app.get("/items/{item_id}")
    @cache(ttl=60)
    async def item(item_id: int) -> dict[str, int]:
        runs()
        return {"id": item_id}

    async with client(app) as c:
        a1, b1, a2, b2 = [await c.get(p) for p in ("/items/1", "/items/2", "/items/1", "/items/2")]
    assert (a1.json(), b1.json(), a2.json(), b2.json()) == (
        {"id": 1},
        {"id": 2},
        {"id": 1},
        {"id": 2},
    )
    assert [xc(r) for r in (a1, b1, a2, b2)] == ["MISS", "MISS", "HIT", "HIT"]
    assert runs.n == 2


async def test_query_order_is_not_normalised(client) -> None:
    """RFC 9111 §4 / RFC 3986 §6: the cache compares target URIs without reordering the query;
    ``?a=1&b=2`` and ``?b=2&a=1`` are different entries."""
    app = FastAPI()
    runs = Runs()

    @app.get("/q")
    @cache(ttl=60)
    async def q(request: Request) -> str:
        runs()
        return request.url.query

    async with client(app) as c:
        ab = await c.get("/q?a=1&b=2")
        ba = await c.get("/q?b=2&a=1")
        ab2 = await c.get("/q?a=1&b=2")
        ba2 = await c.get("/q?b=2&a=1")
    assert (ab.json(), ba.json()) == ("a=1&b=2", "b=2&a=1")
    assert (ab2.content, ba2.content) == (ab.content, ba.content)
    assert [xc(r) for r in (ab, ba, ab2, ba2)] == ["MISS", "MISS", "HIT", "HIT"]
    assert runs.n == 2


async def test_duplicate_query_params_are_distinct_entries(client) -> None:
    """RFC 9111 §4: ``?t=a&t=b`` is not ``?t=a`` (nor ``?t=b&t=a``)."""
    app = FastAPI()
    runs = Runs()

    @app.get("/tags")
    @cache(ttl=60)
    async def tags(t: Annotated[list[str] | None, Query()] = None) -> list[str]:
        runs()
        return t or []

    async with client(app) as c:
        bodies = [(await c.get(p)).json() for p in ("/tags?t=a&t=b", "/tags?t=a", "/tags?t=b&t=a")]
        again = [(await c.get(p)).json() for p in ("/tags?t=a&t=b", "/tags?t=a", "/tags?t=b&t=a")]
    assert bodies == again == [["a", "b"], ["a"], ["b", "a"]]
    assert runs.n == 3


async def test_raw_path_keys_the_entry(client) -> None:
    """docs/http.md (keys): the raw path is keyed, never the percent-decoded one. Starlette routes
    ``/f/a%2Fb`` and ``/f/a/b`` to the same ``{name:path}`` handler; the app can still tell them
    apart (``raw_path``), so each gets its own entry and its own answer."""
    app = FastAPI()
    runs = Runs()

    @app.get("/f/{name:path}")
    @cache(ttl=60)
    async def f(name: str, request: Request) -> dict[str, str]:
        runs()
        return {"name": name, "raw": request.scope["raw_path"].decode()}

    async with client(app) as c:
        enc = await c.get("/f/a%2Fb")
        plain = await c.get("/f/a/b")
        enc2 = await c.get("/f/a%2Fb")
        plain2 = await c.get("/f/a/b")
    assert enc.json() == {"name": "a/b", "raw": "/f/a%2Fb"}
    assert plain.json() == {"name": "a/b", "raw": "/f/a/b"}
    assert (enc2.content, plain2.content) == (enc.content, plain.content)
    assert runs.n == 2


async def test_host_header_keys_the_entry(client) -> None:
    """RFC 9111 §4 / RFC 9110 §7.2: the target URI includes the authority (Host)."""
    app = FastAPI()
    runs = Runs()

    @app.get("/where")
    @cache(ttl=60)
    async def where(request: Request) -> str:
        runs()
        return str(request.url)

    async with client(app) as c:
        a = await c.get("http://a.example/where")
        b = await c.get("http://b.example/where")
        a2 = await c.get("http://A.EXAMPLE/where")
        b2 = await c.get("/where", headers={"host": "b.example"})
    assert (a.json(), b.json()) == ("http://a.example/where", "http://b.example/where")
    assert xc(a2) == "HIT" and a2.content == a.content  # host names are case-insensitive
    assert xc(b2) == "HIT" and b2.content == b.content
    assert runs.n == 2


async def test_vary_keys_per_header_value_and_absent_is_not_empty(client) -> None:
    """RFC 9111 §4.1: a stored response is reused only when the Vary-selected header fields
    match; a header absent in one request and present (even empty) in another does not match."""
    app = FastAPI()
    runs = Runs()

    @app.get("/hello")
    @cache(ttl=60, vary=["Accept-Language"])
    async def hello(request: Request) -> dict[str, Any]:
        runs()
        return {"lang": request.headers.get("accept-language")}

    async with client(app) as c:
        send = [None, "", "fr", "de"]

        async def get(lang: str | None) -> httpx.Response:
            return await c.get("/hello", headers={} if lang is None else {"Accept-Language": lang})

        first = [await get(v) for v in send]
        second = [await get(v) for v in send]
    assert [r.json()["lang"] for r in first] == send
    assert [xc(r) for r in first] == ["MISS"] * 4
    assert [xc(r) for r in second] == ["HIT"] * 4
    assert [r.content for r in second] == [r.content for r in first]
    assert runs.n == 4
    for r in first + second:
        assert r.headers["vary"].lower() == "accept-language"


# ---------------------------------------------------------------------------------------------
# 4. Users and credentials
# ---------------------------------------------------------------------------------------------


def current_user(request: Request) -> str:
    auth = request.headers.get("authorization")
    if not auth:
        raise HTTPException(401, "who are you?")
    return auth.removeprefix("Bearer ")


async def test_per_user_dependency_gives_each_user_their_own_entry(client) -> None:
    """RFC 9111 §3.5: a response to a request with Authorization may be reused only when the key
    identifies the user; §5.2.2.7: it is sent ``private`` so that shared caches downstream do
    not keep it."""
    app = FastAPI()
    runs = Runs()

    @app.get("/me")
    @cache(ttl=60)
    async def me(user: str = Depends(current_user)) -> dict[str, str]:
        runs()
        return {"user": user}

    async with client(app) as c:
        alice = await c.get("/me", headers={"Authorization": "Bearer alice"})
        bob = await c.get("/me", headers={"Authorization": "Bearer bob"})
        alice2 = await c.get("/me", headers={"Authorization": "Bearer alice"})
        bob2 = await c.get("/me", headers={"Authorization": "Bearer bob"})
        anon = await c.get("/me")
    assert alice.json() == alice2.json() == {"user": "alice"}
    assert bob.json() == bob2.json() == {"user": "bob"}
    assert [xc(r) for r in (alice, bob, alice2, bob2)] == ["MISS", "MISS", "HIT", "HIT"]
    assert runs.n == 2
    for r in (alice, bob, alice2, bob2):
        assert r.headers["cache-control"] == "private, max-age=60"
    assert anon.status_code == 401  # the dependency still guards the route


async def test_annotated_dependency_is_per_user_too(client) -> None:
    """RFC 9111 §3.5, with ``Annotated[str, Depends(...)]``."""
    app = FastAPI()
    runs = Runs()

    @app.get("/me")
    @cache(ttl=60)
    def me(user: Annotated[str, Depends(current_user)]) -> str:
        runs()
        return user

    async with client(app) as c:
        got = [
            (await c.get("/me", headers={"Authorization": f"Bearer {u}"})).json() for u in "abab"
        ]
    assert got == ["a", "b", "a", "b"]
    assert runs.n == 2


async def test_url_keyed_route_bypasses_requests_with_credentials(client) -> None:
    """RFC 9111 §3.5: a shared cache does not use a stored response to answer a request with
    Authorization (docs/http.md extends this to Cookie), and does not store the answer. The
    handler reads neither header, so nothing makes its key per user."""
    app = FastAPI()
    runs = Runs()

    @app.get("/page")
    @cache(ttl=60)
    async def page() -> dict[str, Any]:
        runs()
        return {"page": runs.n}

    async with client(app) as c:
        authed = await c.get("/page", headers={"Authorization": "Bearer alice"})
        cookied = await c.get("/page", headers={"Cookie": "session=alice"})
        anon = await c.get("/page")
        anon2 = await c.get("/page")
        authed_after = await c.get("/page", headers={"Authorization": "Bearer bob"})
    assert_bypass(authed, "credentials")
    assert_bypass(cookied, "credentials")
    assert (authed.json(), cookied.json()) == ({"page": 1}, {"page": 2})
    assert xc(anon) == "MISS" and anon.json() == {"page": 3}
    assert xc(anon2) == "HIT" and anon2.json() == {"page": 3}
    # The anonymous entry does not answer a request with credentials either.
    assert_bypass(authed_after, "credentials")
    assert authed_after.json() == {"page": 4}
    assert runs.n == 4


async def test_credentials_read_in_the_handler_key_the_entry_per_credential(client) -> None:
    """A handler that reads Authorization/Cookie itself has them learned into its key
    (request_reads.py): each credential gets its own entry, never another's."""
    app = FastAPI()

    @app.get("/page")
    @cache(ttl=60)
    async def page(request: Request) -> dict[str, Any]:
        return {
            "auth": request.headers.get("authorization"),
            "cookie": request.headers.get("cookie"),
        }

    async with client(app) as c:
        seen = [
            (await c.get("/page", headers=h)).json()
            for h in [
                {"Authorization": "Bearer alice"},
                {"Authorization": "Bearer bob"},
                {},
                {"Authorization": "Bearer alice"},
                {"Cookie": "s=1"},
                {"Authorization": "Bearer bob"},
            ]
        ]
    assert [d["auth"] for d in seen] == [
        "Bearer alice",
        "Bearer bob",
        None,
        "Bearer alice",
        None,
        "Bearer bob",
    ]
    assert [d["cookie"] for d in seen] == [None, None, None, None, "s=1", None]


async def test_public_lets_requests_with_credentials_share(client) -> None:
    """RFC 9111 §3.5: ``public`` allows a shared cache to reuse a response to an authenticated
    request."""
    app = FastAPI()
    runs = Runs()

    @app.get("/news")
    @cache(ttl=60, public=True)
    async def news() -> str:
        return f"news {runs()}"

    async with client(app) as c:
        a = await c.get("/news", headers={"Authorization": "Bearer alice"})
        b = await c.get("/news", headers={"Authorization": "Bearer bob"})
        anon = await c.get("/news")
        cookie = await c.get("/news", headers={"Cookie": "x=y"})
    assert [xc(r) for r in (a, b, anon, cookie)] == ["MISS", "HIT", "HIT", "HIT"]
    assert {r.json() for r in (a, b, anon, cookie)} == {"news 1"}
    assert runs.n == 1
    cc = [d.strip() for d in a.headers["cache-control"].split(",")]
    assert "public" in cc and "max-age=60" in cc and "private" not in cc


async def test_private_keys_per_credentials_and_says_private(client) -> None:
    """RFC 9111 §5.2.2.7 (private) and §4.1 (Vary on the credentials it is keyed on)."""
    app = FastAPI()
    runs = Runs()

    @app.get("/inbox")
    @cache(ttl=60, private=True)
    async def inbox(request: Request) -> dict[str, Any]:
        runs()
        return {
            "auth": request.headers.get("authorization"),
            "cookie": request.headers.get("cookie"),
        }

    async with client(app) as c:
        heads = [
            {"Authorization": "Bearer alice"},
            {"Authorization": "Bearer bob"},
            {"Cookie": "s=alice"},
            {"Cookie": "s=bob"},
            {},
        ]
        first = [await c.get("/inbox", headers=h) for h in heads]
        second = [await c.get("/inbox", headers=h) for h in heads]
    assert [xc(r) for r in first] == ["MISS"] * 5
    assert [xc(r) for r in second] == ["HIT"] * 5
    assert [r.content for r in second] == [r.content for r in first]
    assert len({r.content for r in first}) == 5
    assert runs.n == 5
    for r in first + second:
        directives = [d.strip() for d in r.headers["cache-control"].split(",")]
        assert "private" in directives and "max-age=60" in directives
        vary = {v.strip().lower() for v in r.headers["vary"].split(",")}
        assert {"authorization", "cookie"} <= vary


async def test_yield_dependency_and_plumbing_params_are_not_keyed(client) -> None:
    """docs/http.md (keys): resources from ``yield`` dependencies (a DB session with a default repr
    that differs per request), Request, Response and BackgroundTasks are not key material."""
    app = FastAPI()
    runs = Runs()
    sessions: list[object] = []
    background: list[str] = []

    class Session:  # default repr: differs per instance
        pass

    async def get_db() -> AsyncIterator[Session]:
        s = Session()
        sessions.append(s)
        yield s

    def get_sync_db() -> Iterator[Session]:
        yield Session()

    @app.get("/things/{n}")
    @cache(ttl=60)
    async def things(
        n: int,
        request: Request,
        response: Response,
        tasks: BackgroundTasks,
        db: Session = Depends(get_db),  # noqa: B008
        db2: Session = Depends(get_sync_db),  # noqa: B008
    ) -> dict[str, int]:
        runs()
        tasks.add_task(background.append, "done")
        return {"n": n}

    async with client(app) as c:
        r1 = await c.get("/things/1")
        r2 = await c.get("/things/1")
        r3 = await c.get("/things/2")
    assert (xc(r1), xc(r2), xc(r3)) == ("MISS", "HIT", "MISS")
    assert r1.json() == r2.json() == {"n": 1}
    assert runs.n == 2
    assert len(sessions) == 3  # the dependency itself still ran for every request
    assert background == ["done", "done"]  # the handler's background tasks ran with the handler


async def test_a_user_from_a_yield_dependency_is_never_shared(client) -> None:
    """RFC 9111 §3.5: a response to a request with Authorization is reused only for the same
    user. Here the user comes from a ``yield`` dependency (it opens a DB session to load the
    user), and the route also takes an ordinary keyed dependency."""
    app = FastAPI()

    async def yield_user(request: Request) -> AsyncIterator[str]:
        yield request.headers["authorization"]

    def pagination(limit: int = 10) -> dict[str, int]:
        return {"limit": limit}

    @app.get("/mine")
    @cache(ttl=60)
    async def mine(
        user: str = Depends(yield_user),
        page: dict[str, int] = Depends(pagination),  # noqa: B008
    ) -> dict[str, Any]:
        return {"user": user, **page}

    async with client(app) as c:
        alice = await c.get("/mine", headers={"Authorization": "alice"})
        bob = await c.get("/mine", headers={"Authorization": "bob"})
    assert alice.json() == {"user": "alice", "limit": 10}
    assert bob.json() == {"user": "bob", "limit": 10}


async def test_an_unresolvable_annotation_does_not_hide_the_plumbing(client) -> None:
    """docs/http.md, keys. Module uses ``from __future__ import annotations``: every annotation
    is a string, and one that cannot be resolved (here a class local to the test, as with a
    ``TYPE_CHECKING`` import) must not stop ``request: Request`` being recognised."""
    app = FastAPI()
    runs = Runs()

    class Local:
        pass

    def local() -> Local:
        return Local()

    @app.get("/p")
    @cache(ttl=60, ignore_args=["thing"])
    async def p(request: Request, tasks: BackgroundTasks, thing: Local = Depends(local)) -> str:  # noqa: B008
        runs()
        return request.url.path

    async with client(app) as c:
        r1 = await c.get("/p")
        r2 = await c.get("/p")
    assert (r1.status_code, r1.json(), xc(r1)) == (200, "/p", "MISS")
    assert (r2.status_code, r2.json(), xc(r2)) == (200, "/p", "HIT")
    assert runs.n == 1


# ---------------------------------------------------------------------------------------------
# 5. Responses that are never stored
# ---------------------------------------------------------------------------------------------


async def test_set_cookie_via_injected_response_is_not_stored(client) -> None:
    """RFC 9111 §3, docs/http.md: a Set-Cookie response is one client's (RFC 6265 §4.1)."""
    app = FastAPI()
    runs = Runs()

    @app.get("/login")
    @cache(ttl=60)
    async def login(response: Response) -> dict[str, int]:
        n = runs()
        response.set_cookie("session", f"s{n}")
        return {"n": n}

    async with client(app) as c:
        first = await c.get("/login")
        c.cookies.clear()  # the next request is anonymous again
        second = await c.get("/login")
    assert_not_stored(first, "set-cookie")
    assert_not_stored(second, "set-cookie")
    assert first.json() == {"n": 1} and second.json() == {"n": 2}
    assert "session=s1" in first.headers["set-cookie"]
    assert "session=s2" in second.headers["set-cookie"]
    assert runs.n == 2


async def test_set_cookie_on_returned_response_is_not_stored(client) -> None:
    """RFC 9111 §3 / docs/http.md: never store a response with Set-Cookie."""
    app = FastAPI()
    runs = Runs()

    @app.get("/login")
    @cache(ttl=60)
    def login() -> Response:
        n = runs()
        r = PlainTextResponse(f"hello {n}")
        r.set_cookie("session", f"s{n}")
        return r

    async with client(app) as c:
        first = await c.get("/login")
        c.cookies.clear()
        second = await c.get("/login")
    assert_not_stored(first, "set-cookie")
    assert_not_stored(second, "set-cookie")
    assert first.text == "hello 1" and "session=s1" in first.headers["set-cookie"]
    assert second.text == "hello 2"
    assert runs.n == 2


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Cache-Control": "private, max-age=30"}, "private"),  # RFC 9111 §5.2.2.7
        ({"Cache-Control": "no-store"}, "no-store"),  # RFC 9111 §5.2.2.5
        ({"Cache-Control": "max-age=30", "Vary": "Accept, *"}, "vary-star"),  # RFC 9111 §4.1
        ({"Vary": "*"}, "vary-star"),
    ],
)
async def test_response_directives_forbid_storage(
    client, headers: dict[str, str], reason: str
) -> None:
    """RFC 9111 §3: the response's own fields forbid storing it; it is still delivered intact."""
    app = FastAPI()
    runs = Runs()

    @app.get("/r")
    @cache(ttl=60)
    async def r() -> Response:
        return PlainTextResponse(f"body {runs()}", headers=headers)

    async with client(app) as c:
        first = await c.get("/r")
        second = await c.get("/r")
    assert_not_stored(first, reason)
    assert_not_stored(second, reason)
    assert (first.text, second.text) == ("body 1", "body 2")
    for name, value in headers.items():
        assert first.headers[name] == value  # the app's own fields pass through untouched
    assert runs.n == 2


async def test_response_vary_on_an_unkeyed_header_is_not_stored(client) -> None:
    """RFC 9111 §4.1: a stored response answers a request only when the headers named by its
    Vary match. A handler's own ``Vary`` naming a header the route does not key on would let one
    client's variant answer another (here: another language, another CORS origin)."""
    app = FastAPI()
    runs = Runs()
    seen: contextvars.ContextVar[list[tuple[bytes, bytes]]] = contextvars.ContextVar("seen")

    def remember_headers(inner: Any) -> Any:
        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                seen.set(list(scope["headers"]))
            await inner(scope, receive, send)

        return asgi

    app.add_middleware(remember_headers)

    def raw_header(request: Request, name: bytes, default: str) -> str:
        # Read through a context variable a middleware filled: an input the cache cannot see
        # being read (a library may do this), so only the response's own Vary can warn it.
        found = [v for k, v in seen.get() if k == name]
        return found[0].decode() if found else default

    def lang_reply(request: Request) -> Response:
        runs()
        lang = raw_header(request, b"accept-language", "none")
        return PlainTextResponse(lang, headers={"Vary": "Accept-Language"})

    def cors_reply(request: Request) -> Response:
        runs()
        origin = raw_header(request, b"origin", "null")
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return PlainTextResponse(origin, headers=headers)

    @app.get("/unkeyed")
    @cache(ttl=60)
    async def unkeyed(request: Request) -> Response:
        return lang_reply(request)

    @app.get("/keyed")
    @cache(ttl=60, vary=["accept-language"])
    async def keyed(request: Request) -> Response:
        return lang_reply(request)

    @app.get("/cors")
    @cache(ttl=60)
    async def cors(request: Request) -> Response:
        return cors_reply(request)

    @app.get("/cors-keyed")
    @cache(ttl=60, vary=["Origin"])
    async def cors_keyed(request: Request) -> Response:
        return cors_reply(request)

    async with client(app) as c:
        for path, header, values in [
            ("/unkeyed", "Accept-Language", ["fr", "de"]),
            ("/cors", "Origin", ["https://a.example", "https://b.example"]),
        ]:
            before = runs.n
            replies = [await c.get(path, headers={header: v}) for v in values * 2]
            assert [r.text for r in replies] == values * 2
            for r in replies:
                assert_not_stored(r, "vary-unkeyed")
            assert runs.n == before + 4
        for path, header, values in [
            ("/keyed", "Accept-Language", ["fr", "de"]),
            ("/cors-keyed", "Origin", ["https://a.example", "https://b.example"]),
        ]:
            before = runs.n
            replies = [await c.get(path, headers={header: v}) for v in values * 2]
            assert [r.text for r in replies] == values * 2
            assert [xc(r) for r in replies] == ["MISS", "MISS", "HIT", "HIT"]
            assert runs.n == before + 2


async def test_statuses_outside_the_allowed_set_are_not_stored(client) -> None:
    """RFC 9111 §3 and docs/http.md: only 200, 203, 204, 300, 301, 308 are stored by default;
    never 5xx; 404 only when asked."""
    app = FastAPI()
    runs = Runs()

    @app.post("/unused")
    async def unused() -> None:  # pragma: no cover - keeps the app honest about methods
        return None

    @app.get("/created", status_code=201)
    @cache(ttl=60)
    async def created() -> dict[str, int]:
        return {"n": runs()}

    @app.get("/missing", status_code=404)
    @cache(ttl=60)
    async def missing() -> dict[str, int]:
        return {"n": runs()}

    @app.get("/json404")
    @cache(ttl=60)
    async def json404() -> Response:
        return JSONResponse({"n": runs()}, status_code=404)

    @app.get("/json500")
    @cache(ttl=60)
    def json500() -> Response:
        return JSONResponse({"n": runs()}, status_code=500)

    @app.get("/sub503")
    @cache(ttl=60)
    async def sub503(response: Response) -> dict[str, int]:
        response.status_code = 503
        return {"n": runs()}

    async with client(app) as c:
        for path, code in [
            ("/created", 201),
            ("/missing", 404),
            ("/json404", 404),
            ("/json500", 500),
            ("/sub503", 503),
        ]:
            before = runs.n
            first = await c.get(path)
            second = await c.get(path)
            assert (first.status_code, second.status_code) == (code, code), path
            assert first.json() == {"n": before + 1} and second.json() == {"n": before + 2}, path
            assert_not_stored(first, "status")
            assert_not_stored(second, "status")


async def test_status_codes_option_makes_404_cacheable(client) -> None:
    """RFC 9111 §3: 404 is cacheable by default in HTTP; oxicache stores it only when asked."""
    app = FastAPI()
    runs = Runs()

    @app.get("/gone/{n}")
    @cache(ttl=60, status_codes=[200, 404])
    async def gone(n: int) -> Response:
        runs()
        if n == 0:
            return JSONResponse({"detail": "nope"}, status_code=404)
        return JSONResponse({"n": n})

    @app.get("/declared", status_code=404)
    @cache(ttl=60, status_codes=[404])
    async def declared() -> dict[str, int]:
        return {"n": runs()}

    async with client(app) as c:
        a = await c.get("/gone/0")
        b = await c.get("/gone/0")
        ok = await c.get("/gone/1")
        d1 = await c.get("/declared")
        d2 = await c.get("/declared")
    assert (a.status_code, b.status_code) == (404, 404)
    assert (xc(a), xc(b)) == ("MISS", "HIT")
    assert a.content == b.content
    assert ok.status_code == 200 and xc(ok) == "MISS"
    assert (d1.status_code, d2.status_code, xc(d2)) == (404, 404, "HIT")
    assert runs.n == 3


async def test_streaming_response_is_bypassed(client) -> None:
    """docs/http.md: a streaming body is never stored (it may be incomplete; RFC 9111 §3.3)."""
    app = FastAPI()
    runs = Runs()

    @app.get("/stream")
    @cache(ttl=60)
    async def stream() -> StreamingResponse:
        n = runs()

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"{n}-{i};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    async with client(app) as c:
        first = await c.get("/stream")
        second = await c.get("/stream")
    assert first.content == b"1-0;1-1;1-2;"
    assert second.content == b"2-0;2-1;2-2;"
    assert_bypass(first, "streaming")
    assert_bypass(second, "streaming")
    assert runs.n == 2


async def test_body_over_the_entry_limit_is_not_stored(client) -> None:
    """docs/http.md: a body over the size limit is answered, not stored. (The limit applies to the
    charged size of an entry, headers and bookkeeping included, so a tiny response needs a limit
    of a few hundred bytes more than its body.)"""
    oxicache.configure(max_entry_size=4096)
    app = FastAPI()
    runs = Runs()

    @app.get("/big")
    @cache(ttl=60)
    async def big() -> Response:
        return PlainTextResponse(str(runs()) * 5000)

    @app.get("/small")
    @cache(ttl=60)
    async def small() -> str:
        return "small"

    async with client(app) as c:
        first = await c.get("/big")
        second = await c.get("/big")
        s1 = await c.get("/small")
        s2 = await c.get("/small")
    assert first.content == b"1" * 5000 and second.content == b"2" * 5000
    assert first.headers["content-length"] == "5000"
    assert_not_stored(first, "too-large")
    assert_not_stored(second, "too-large")
    assert (xc(s1), xc(s2)) == ("MISS", "HIT")


async def test_handler_errors_propagate_and_nothing_is_stored(client) -> None:
    """docs/http.md: a response produced while an exception propagated is never stored; the error
    reaches the client as FastAPI would answer it (RFC 9110 §15.6.1: 500)."""
    app = FastAPI()
    runs = Runs()

    @app.get("/boom")
    @cache(ttl=60)
    async def boom() -> str:
        n = runs()
        if n == 1:
            raise RuntimeError("first call fails")
        return f"ok {n}"

    @app.get("/teapot")
    @cache(ttl=60)
    def teapot() -> str:
        n = runs()
        if n in (3, 4):
            raise HTTPException(418, f"no coffee {n}")
        return f"tea {n}"

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        failed = await c.get("/boom")
        ok = await c.get("/boom")
        ok2 = await c.get("/boom")
        t1 = await c.get("/teapot")
        t2 = await c.get("/teapot")
        t3 = await c.get("/teapot")
        t4 = await c.get("/teapot")
    assert failed.status_code == 500
    assert (ok.json(), xc(ok), ok2.json(), xc(ok2)) == ("ok 2", "MISS", "ok 2", "HIT")
    assert (t1.status_code, t1.json()) == (418, {"detail": "no coffee 3"})
    assert (t2.status_code, t2.json()) == (418, {"detail": "no coffee 4"})
    assert (t3.json(), xc(t3), t4.json(), xc(t4)) == ("tea 5", "MISS", "tea 5", "HIT")


async def test_handler_exception_reaches_the_test_client_unchanged(client) -> None:
    """The exception is not swallowed: with default ASGI transport it propagates as is."""
    app = FastAPI()

    class Boom(Exception):
        pass

    @app.get("/boom")
    @cache(ttl=60)
    async def boom() -> str:
        raise Boom("x")

    async with client(app) as c:
        with pytest.raises(Boom):
            await c.get("/boom")


async def test_a_response_object_returned_again_does_not_pile_up_cache_fields(client) -> None:
    """RFC 9211 §2: one Cache-Status field per cache, and one X-Cache: a handler returning the
    same Response object every time (a module-level constant) gets the fields once per reply."""
    app = FastAPI()
    shared = PlainTextResponse("shared")
    shared_no_store = PlainTextResponse("no", headers={"Cache-Control": "no-store"})

    @app.get("/shared")
    @cache(ttl=60)
    async def get_shared() -> Response:
        return shared

    @app.get("/no-store")
    @cache(ttl=60)
    async def get_no_store() -> Response:
        return shared_no_store

    async with client(app) as c:
        replies = [await c.get("/shared", headers={"Authorization": "x"}) for _ in range(3)]
        replies += [await c.get("/no-store") for _ in range(3)]
    for r in replies:
        names = [k.lower() for k, _ in r.headers.raw]
        assert names.count(b"x-cache") == 1, r.headers.raw
        assert names.count(b"cache-status") == 1, r.headers.raw
    assert replies[-1].headers["cache-status"] == "oxicache; fwd=miss; detail=no-store"


# ---------------------------------------------------------------------------------------------
# 6. Request directives
# ---------------------------------------------------------------------------------------------


async def test_request_no_store_answers_but_does_not_store(client) -> None:
    """RFC 9111 §5.2.1.5: ``no-store`` in a request: do not store any part of it or its response.
    A stored response may still answer it."""
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return runs()

    @app.get("/b")
    @cache(ttl=60)
    async def b() -> int:
        return runs()

    async with client(app) as c:
        ns = {"Cache-Control": "no-store"}
        miss = await c.get("/a", headers=ns)
        after = await c.get("/a")
        stored_hit = await c.get("/a", headers=ns)
        await c.get("/b")
        b_hit = await c.get("/b", headers=ns)
    assert_not_stored(miss, "request-no-store")
    assert miss.json() == 1
    assert xc(after) == "MISS" and after.json() == 2
    assert xc(stored_hit) == "HIT" and stored_hit.json() == 2
    assert xc(b_hit) == "HIT"
    assert runs.n == 3


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "no-cache"},
        {"Cache-Control": "max-age=0, NO-CACHE"},
        {"Pragma": "no-cache"},
    ],
)
async def test_request_no_cache_runs_the_handler_and_refreshes(
    client, headers: dict[str, str]
) -> None:
    """RFC 9111 §5.2.1.4 (no-cache: do not answer from the cache without going to the origin)
    and §5.4 (Pragma: no-cache when Cache-Control is absent); RFC 9211 §2.2 ``fwd=request``."""
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return runs()

    async with client(app) as c:
        first = await c.get("/a")
        forced = await c.get("/a", headers=headers)
        after = await c.get("/a")
    assert first.json() == 1
    assert forced.json() == 2
    assert xc(forced) == "MISS"
    assert status_of(forced) == "oxicache; fwd=request; stored"
    assert xc(after) == "HIT" and after.json() == 2


async def test_pragma_is_ignored_when_cache_control_is_present(client) -> None:
    """RFC 9111 §5.4: Pragma is only honoured when there is no Cache-Control field."""
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return runs()

    async with client(app) as c:
        await c.get("/a")
        r = await c.get("/a", headers={"Pragma": "no-cache", "Cache-Control": "max-stale=5"})
    assert xc(r) == "HIT" and r.json() == 1


async def test_no_cache_can_be_ignored_by_configuration(client) -> None:
    """docs/http.md: a setting stops clients forcing recomputation (RFC 9111 §5.2.1.4 is a request,
    not an order, to a cache that the deployment controls)."""
    oxicache.configure(honor_request_no_cache=False)
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return runs()

    async with client(app) as c:
        await c.get("/a")
        r1 = await c.get("/a", headers={"Cache-Control": "no-cache"})
        r2 = await c.get("/a", headers={"Pragma": "no-cache"})
    assert (xc(r1), xc(r2)) == ("HIT", "HIT")
    assert runs.n == 1


@pytest.mark.parametrize("directive", ["max-age=5", "max-age=0", "min-fresh=55"])
async def test_request_max_age_and_min_fresh_refuse_an_entry_too_old(
    client, clock, directive: str
) -> None:
    """RFC 9111 §5.2.1.1 (max-age: the client does not want a response older than N seconds)
    and §5.2.1.3 (min-fresh: it wants one still fresh for N more seconds)."""
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return runs()

    async with client(app) as c:
        await c.get("/a")
        clock.advance(10)
        ok = await c.get("/a", headers={"Cache-Control": "max-age=30, min-fresh=10"})
        refused = await c.get("/a", headers={"Cache-Control": directive})
    assert xc(ok) == "HIT" and ok.json() == 1
    assert xc(refused) == "MISS" and refused.json() == 2


async def test_only_if_cached_answers_504_without_running_the_handler(client) -> None:
    """RFC 9111 §5.2.1.7: with ``only-if-cached`` the cache answers from storage or with 504."""
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return runs()

    async with client(app) as c:
        cold = await c.get("/a", headers={"Cache-Control": "only-if-cached"})
        await c.get("/a")
        warm = await c.get("/a", headers={"Cache-Control": "only-if-cached"})
    assert cold.status_code == 504
    assert warm.status_code == 200 and xc(warm) == "HIT"
    assert runs.n == 1


# ---------------------------------------------------------------------------------------------
# 7. Conditional requests
# ---------------------------------------------------------------------------------------------


def conditional_app(runs: Runs) -> FastAPI:
    app = FastAPI()

    @app.get("/doc")
    @cache(ttl=60)
    async def doc() -> dict[str, str]:
        runs()
        return {"doc": "text"}

    @app.get("/varied")
    @cache(ttl=60, vary=["Accept-Language"])
    async def varied() -> str:
        runs()
        return "varied"

    return app


async def test_if_none_match_on_a_hit_gives_304(client) -> None:
    """RFC 9110 §13.1.2 (If-None-Match), §15.4.5 (304 fields: ETag, Cache-Control, Vary ... and
    no content); RFC 9111 §4.3.2 / §5.1 (Age on a cached 304)."""
    runs = Runs()
    async with client(conditional_app(runs)) as c:
        full = await c.get("/doc")
        tag = full.headers["etag"]
        nm = await c.get("/doc", headers={"If-None-Match": tag})
    assert nm.status_code == 304
    assert nm.content == b""
    assert nm.headers["etag"] == tag
    assert nm.headers["cache-control"] == "max-age=60"
    assert nm.headers["age"] == "0"
    assert xc(nm) == "HIT"
    assert CACHE_STATUS_HIT.match(nm.headers["cache-status"])
    assert "content-type" not in nm.headers
    assert "content-length" not in nm.headers
    assert runs.n == 1


async def test_if_none_match_uses_weak_comparison_lists_and_star(client) -> None:
    """RFC 9110 §13.1.2: If-None-Match uses the weak comparison (§8.8.3.2), accepts a list of
    entity tags and ``*``."""
    runs = Runs()
    async with client(conditional_app(runs)) as c:
        tag = (await c.get("/doc")).headers["etag"]
        assert tag.startswith('W/"')
        opaque = tag[2:]
        for inm in (tag, opaque, f'"x", {tag}', f'"x",{opaque}  ', "*", f'W/"nope", W/"x" , {tag}'):
            r = await c.get("/doc", headers={"If-None-Match": inm})
            assert r.status_code == 304, inm
            assert r.content == b""
        # Several field lines combine (RFC 9110 §5.3).
        r = await c.get("/doc", headers=[("If-None-Match", '"x"'), ("If-None-Match", opaque)])
        assert r.status_code == 304
        for inm in ('"other"', 'W/"other"', opaque.upper() if opaque != opaque.upper() else '"zz"'):
            r = await c.get("/doc", headers={"If-None-Match": inm})
            assert r.status_code == 200, inm
            assert r.json() == {"doc": "text"}
            assert xc(r) == "HIT"
    assert runs.n == 1


async def test_304_carries_vary(client) -> None:
    """RFC 9110 §15.4.5: a 304 carries the Vary the 200 would have carried."""
    runs = Runs()
    async with client(conditional_app(runs)) as c:
        full = await c.get("/varied", headers={"Accept-Language": "fr"})
        nm = await c.get(
            "/varied", headers={"Accept-Language": "fr", "If-None-Match": full.headers["etag"]}
        )
    assert nm.status_code == 304
    assert nm.headers["vary"].lower() == "accept-language"


async def test_if_none_match_on_a_miss_whose_new_etag_matches_gives_304(client) -> None:
    """RFC 9110 §13.1.2 and §13.2.2: the precondition is evaluated against the selected
    representation, even when it was just produced; the 304 is never stored as the entry."""
    runs = Runs()
    tag = etag_for(b'{"doc":"text"}')
    async with client(conditional_app(runs)) as c:
        nm = await c.get("/doc", headers={"If-None-Match": tag})
        full = await c.get("/doc")
        nm2 = await c.get("/doc", headers={"If-None-Match": tag})
    assert nm.status_code == 304 and nm.content == b""
    assert xc(nm) == "MISS"
    assert nm.headers["etag"] == tag
    assert "content-length" not in nm.headers and "content-type" not in nm.headers
    assert full.status_code == 200 and full.json() == {"doc": "text"}
    assert xc(full) == "HIT"
    assert full.headers["etag"] == tag
    assert full.headers["content-length"] == str(len(b'{"doc":"text"}'))
    assert nm2.status_code == 304
    assert runs.n == 1


async def test_if_none_match_on_a_miss_that_does_not_match_gives_the_full_body(client) -> None:
    """RFC 9110 §13.1.2: a false condition means the normal 200."""
    runs = Runs()
    async with client(conditional_app(runs)) as c:
        r = await c.get("/doc", headers={"If-None-Match": '"stale", W/"older"'})
    assert r.status_code == 200 and r.json() == {"doc": "text"}
    assert xc(r) == "MISS"


async def test_304_from_the_app_is_never_stored(client) -> None:
    """docs/http.md / RFC 9111 §3: a 304 the app returns itself is not stored as the entry."""
    app = FastAPI()
    runs = Runs()

    @app.get("/own")
    @cache(ttl=60)
    async def own(request: Request) -> Response:
        runs()
        if request.headers.get("if-none-match") == '"v1"':
            return Response(status_code=304, headers={"etag": '"v1"'})
        return PlainTextResponse("v1 body", headers={"etag": '"v1"'})

    async with client(app) as c:
        nm = await c.get("/own", headers={"If-None-Match": '"v1"'})
        full = await c.get("/own")
        full2 = await c.get("/own")
    assert nm.status_code == 304
    # Not stored: the handler reading If-None-Match first makes it part of the key
    # (request_reads.py), and a 304 would not be stored anyway.
    assert xc(nm) in ("MISS", "BYPASS") and "stored" not in nm.headers["cache-status"]
    assert full.status_code == 200 and full.text == "v1 body" and xc(full) == "MISS"
    assert full.headers["etag"] == '"v1"'  # the app's own ETag is kept
    assert xc(full2) == "HIT" and full2.text == "v1 body"
    assert runs.n == 2


# ---------------------------------------------------------------------------------------------
# 8. HEAD
# ---------------------------------------------------------------------------------------------


def head_app(runs: Runs) -> FastAPI:
    app = FastAPI()

    @app.api_route("/x", methods=["GET", "HEAD"])
    @cache(ttl=60)
    async def x() -> dict[str, Any]:
        runs()
        return {"x": list(range(10))}

    @app.get("/get-only")
    @cache(ttl=60)
    async def get_only() -> str:
        runs()
        return "g"

    return app


async def test_head_after_get_is_a_hit_without_body(client) -> None:
    """RFC 9110 §9.3.2: HEAD is GET without content, same header fields (Content-Length
    included); RFC 9111 §4.3.5 / docs/http.md: HEAD may be answered from a stored GET."""
    runs = Runs()
    async with client(head_app(runs)) as c:
        get = await c.get("/x")
        head = await c.head("/x")
    assert xc(head) == "HIT"
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-type"] == get.headers["content-type"]
    assert runs.n == 1


async def test_get_after_head_miss_gets_the_full_body(client) -> None:
    """RFC 9110 §9.3.2 and docs/http.md: a GET is never answered from a stored HEAD. A HEAD miss is
    answered (headers only) but stores nothing; the GET that follows runs the handler and
    fills the entry, which then answers HEAD too."""
    runs = Runs()
    async with client(head_app(runs)) as c:
        head = await c.head("/x")
        get = await c.get("/x")
        head2 = await c.head("/x")
    assert head.status_code == 200 and head.content == b"" and xc(head) == "MISS"
    assert "detail=head" in head.headers["cache-status"]
    assert get.status_code == 200 and xc(get) == "MISS"
    assert get.json() == {"x": list(range(10))}
    assert get.headers["content-length"] == str(len(get.content)) == head.headers["content-length"]
    assert xc(head2) == "HIT" and head2.content == b""
    assert runs.n == 2


async def test_head_on_a_get_route_is_405_with_or_without_the_cache(client) -> None:
    """FastAPI's ``@app.get`` does not route HEAD (RFC 9110 §15.5.6: 405)."""
    runs = Runs()
    app = head_app(runs)
    plain = FastAPI()

    @plain.get("/get-only")
    async def get_only() -> str:
        return "g"

    async with client(plain) as c:
        expected = await c.head("/get-only")
    async with client(app) as c:
        await c.get("/get-only")
        got = await c.head("/get-only")
    assert expected.status_code == got.status_code == 405
    assert runs.n == 1


# ---------------------------------------------------------------------------------------------
# 9. Requests that bypass the cache
# ---------------------------------------------------------------------------------------------


async def test_get_with_a_body_bypasses(client) -> None:
    """RFC 9110 §9.3.1: content on GET has no defined semantics, but may change the answer;
    docs/http.md: no read, no write."""
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return runs()

    async with client(app) as c:
        await c.get("/a")
        r = await c.request("GET", "/a", content=b"payload")
        after = await c.get("/a")
    assert_bypass(r, "request-body")
    assert r.json() == 2
    assert xc(after) == "HIT" and after.json() == 1


@pytest.mark.parametrize(
    "header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-URL"]
)
async def test_method_override_headers_bypass(client, header: str) -> None:
    """docs/http.md: method-override / URL-rewrite headers may make the app answer differently."""
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return runs()

    async with client(app) as c:
        await c.get("/a")
        r = await c.get("/a", headers={header: "DELETE" if "URL" not in header else "/admin"})
        after = await c.get("/a")
    assert_bypass(r, "method-override")
    assert r.json() == 2
    assert xc(after) == "HIT" and after.json() == 1


async def test_post_routes_are_never_cached(client) -> None:
    """RFC 9111 §2 / docs/http.md: only GET and HEAD are cached; a POST is always sent to the
    handler, and never answers a later GET (RFC 9110 §9.3.3)."""
    app = FastAPI()
    runs = Runs()

    @app.post("/orders")
    @cache(ttl=60)
    async def orders() -> dict[str, int]:
        return {"order": runs()}

    @app.api_route("/both", methods=["GET", "POST"])
    @cache(ttl=60)
    async def both(request: Request) -> dict[str, Any]:
        return {"method": request.method, "n": runs()}

    async with client(app) as c:
        p1 = await c.post("/orders")
        p2 = await c.post("/orders")
        bp = await c.post("/both")
        bg = await c.get("/both")
        bg2 = await c.get("/both")
        bp2 = await c.post("/both")
    assert (p1.json(), p2.json()) == ({"order": 1}, {"order": 2})
    assert_bypass(p1, "method")
    assert_bypass(p2, "method")
    # The POST did not store an entry the GET could be answered from, nor answer from the GET's.
    assert bp.json() == {"method": "POST", "n": 3}
    assert bg.json() == {"method": "GET", "n": 4} and xc(bg) == "MISS"
    assert bg2.json() == {"method": "GET", "n": 4} and xc(bg2) == "HIT"
    assert bp2.json() == {"method": "POST", "n": 5}
    assert_bypass(bp2, "method")


# ---------------------------------------------------------------------------------------------
# 10. Switches and settings
# ---------------------------------------------------------------------------------------------


async def test_configure_disabled_bypasses_every_response(client) -> None:
    """RFC 9211 §2.2: ``fwd=bypass`` when the cache was configured not to answer."""
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return runs()

    async with client(app) as c:
        await c.get("/a")
        oxicache.configure(enabled=False)
        r1 = await c.get("/a")
        r2 = await c.get("/a")
        oxicache.configure(enabled=True)
        r3 = await c.get("/a")
    assert_bypass(r1, "disabled")
    assert_bypass(r2, "disabled")
    assert (r1.json(), r2.json()) == (2, 3)
    assert xc(r3) == "HIT" and r3.json() == 1


async def test_decorator_enabled_false_returns_the_function_unchanged(client) -> None:
    def handler() -> str:
        return "x"

    assert cache(ttl=60, enabled=False)(handler) is handler
    app = FastAPI()
    runs = Runs()

    @app.get("/a")
    @cache(ttl=60, enabled=False)
    async def a() -> int:
        return runs()

    async with client(app) as c:
        r1 = await c.get("/a")
        r2 = await c.get("/a")
    assert (r1.json(), r2.json()) == (1, 2)
    for r in (r1, r2):
        assert "x-cache" not in r.headers and "cache-status" not in r.headers
        assert "etag" not in r.headers and "cache-control" not in r.headers


async def test_header_name_is_configurable(client) -> None:
    """RFC 9211 keeps ``Cache-Status``; the HIT/MISS header takes the configured name."""
    oxicache.configure(header_name="X-My-Cache")
    app = FastAPI()

    @app.get("/a")
    @cache(ttl=60)
    async def a() -> int:
        return 1

    async with client(app) as c:
        r1 = await c.get("/a")
        r2 = await c.get("/a")
        r3 = await c.get("/a", headers={"Authorization": "x"})
    assert (r1.headers["x-my-cache"], r2.headers["x-my-cache"], r3.headers["x-my-cache"]) == (
        "MISS",
        "HIT",
        "BYPASS",
    )
    for r in (r1, r2, r3):
        assert "x-cache" not in r.headers
        assert r.headers["cache-status"].startswith("oxicache;")


# ---------------------------------------------------------------------------------------------
# 11. key_builder
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_key_builder_replaces_path_and_query(client, kind: str) -> None:
    """A custom key: the route says which request parts select the response."""
    app = FastAPI()
    runs = Runs()

    def by_q(request: Request, args: dict[str, Any]) -> Any:
        return request.query_params.get("q")

    async def by_q_async(request: Request, args: dict[str, Any]) -> Any:
        return request.query_params.get("q")

    @app.get("/search")
    @cache(ttl=60, key_builder=by_q if kind == "sync" else by_q_async)
    async def search(q: str = "", page: int = 1) -> dict[str, Any]:
        return {"q": q, "page": page, "run": runs()}

    async with client(app) as c:
        a1 = await c.get("/search?q=a&page=1")
        a2 = await c.get("/search?q=a&page=2")
        a3 = await c.get("/search?page=3&q=a&utm=x")
        b1 = await c.get("/search?q=b&page=1")
    assert a1.json() == {"q": "a", "page": 1, "run": 1}
    assert a2.content == a3.content == a1.content
    assert (xc(a1), xc(a2), xc(a3), xc(b1)) == ("MISS", "HIT", "HIT", "MISS")
    assert b1.json() == {"q": "b", "page": 1, "run": 2}


# ---------------------------------------------------------------------------------------------
# 12. Invalidation
# ---------------------------------------------------------------------------------------------


def invalidation_app(runs: dict[str, int]) -> tuple[FastAPI, Any, Any]:
    app = FastAPI()

    def bump(name: str) -> int:
        runs[name] = runs.get(name, 0) + 1
        return runs[name]

    @app.get("/items/{n}")
    @cache(ttl=60, namespace="ns")
    async def items(n: int) -> dict[str, int]:
        return {"n": n, "run": bump(f"items{n}")}

    @app.get("/users/{n}")
    @cache(ttl=60, namespace="users")
    async def users(n: int) -> dict[str, int]:
        return {"n": n, "run": bump(f"users{n}")}

    @app.get("/plain")
    @cache(ttl=60)
    def plain() -> int:
        return bump("plain")

    return app, items, users


PATHS = ("/items/1", "/items/2", "/users/1", "/plain")


async def warm(c: httpx.AsyncClient) -> None:
    for p in PATHS:
        assert xc(await c.get(p)) == "MISS"
    for p in PATHS:
        assert xc(await c.get(p)) == "HIT"


async def states(c: httpx.AsyncClient) -> dict[str, str | None]:
    return {p: xc(await c.get(p)) for p in PATHS}


async def test_invalidate_route(client) -> None:
    runs: dict[str, int] = {}
    app, items, _ = invalidation_app(runs)
    async with client(app) as c:
        await warm(c)
        await oxicache.invalidate(route=items)
        assert await states(c) == {
            "/items/1": "MISS",
            "/items/2": "MISS",
            "/users/1": "HIT",
            "/plain": "HIT",
        }
    assert runs["items1"] == 2


async def test_invalidate_namespace(client) -> None:
    runs: dict[str, int] = {}
    app, _, _ = invalidation_app(runs)
    async with client(app) as c:
        await warm(c)
        await oxicache.invalidate(namespace="users")
        assert await states(c) == {
            "/items/1": "HIT",
            "/items/2": "HIT",
            "/users/1": "MISS",
            "/plain": "HIT",
        }


async def test_invalidate_path(client) -> None:
    runs: dict[str, int] = {}
    app, _, _ = invalidation_app(runs)
    async with client(app) as c:
        await warm(c)
        await oxicache.invalidate(path="/items/1")
        assert await states(c) == {
            "/items/1": "MISS",
            "/items/2": "HIT",
            "/users/1": "HIT",
            "/plain": "HIT",
        }
        r = await c.get("/items/1")
    assert r.json() == {"n": 1, "run": 2}


async def test_clear(client) -> None:
    runs: dict[str, int] = {}
    app, _, _ = invalidation_app(runs)
    async with client(app) as c:
        await warm(c)
        await oxicache.clear()
        assert await states(c) == dict.fromkeys(PATHS, "MISS")


def test_invalidate_needs_a_target() -> None:
    import asyncio

    with pytest.raises(ConfigError):
        asyncio.run(oxicache.invalidate())


# ---------------------------------------------------------------------------------------------
# 13. Middleware around the app
# ---------------------------------------------------------------------------------------------


async def test_gzip_middleware_outside_the_cache(client) -> None:
    """RFC 9110 §8.8.1 / §8.8.3: an ETag computed before a content-coding layer must be weak; the
    hit decodes to the same bytes as the miss."""
    app = FastAPI()
    app.add_middleware(GZipMiddleware, minimum_size=10)
    runs = Runs()
    payload = {"words": ["compress me"] * 50}

    @app.get("/big")
    @cache(ttl=60)
    async def big() -> dict[str, Any]:
        runs()
        return payload

    async with client(app) as c:
        gz = {"Accept-Encoding": "gzip"}
        miss = await c.get("/big", headers=gz)
        hit = await c.get("/big", headers=gz)
        identity = await c.get("/big", headers={"Accept-Encoding": "identity"})
        nm = await c.get("/big", headers={**gz, "If-None-Match": miss.headers["etag"]})
    assert miss.headers["content-encoding"] == hit.headers["content-encoding"] == "gzip"
    assert miss.json() == hit.json() == identity.json() == payload
    assert miss.content == hit.content == identity.content
    assert (xc(miss), xc(hit), xc(identity)) == ("MISS", "HIT", "HIT")
    assert miss.headers["etag"].startswith('W/"')
    assert hit.headers["etag"] == miss.headers["etag"] == identity.headers["etag"]
    assert "content-encoding" not in identity.headers
    assert nm.status_code == 304
    assert runs.n == 1


async def test_the_handlers_response_object_is_never_modified(client) -> None:
    """A handler may return one module-level Response for every request: the cache sends a
    copy with its own fields and leaves the handler's object as it was."""
    app = FastAPI()
    shared = JSONResponse({"ok": True})
    before = list(shared.raw_headers)

    @app.get("/stored")
    @cache(ttl=60)
    async def stored() -> JSONResponse:
        return shared

    @app.get("/bypassed")
    @cache(ttl=60)
    async def bypassed() -> JSONResponse:
        return shared

    async with client(app) as c:
        miss = await c.get("/stored")
        hit = await c.get("/stored")
        bypass = await c.get("/bypassed", headers={"authorization": "Bearer a"})
    assert xc(miss) == "MISS" and xc(hit) == "HIT" and xc(bypass) == "BYPASS"
    assert shared.raw_headers == before
    assert "etag" not in bypass.headers


# --- options checked when the decorator is applied ------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"public": True, "private": True}, "both public and private"),
        ({"private": True, "per_user": False}, "contradicts per_user=False"),
        ({"status_codes": [200, 500]}, "status 500 is never stored"),
        ({"status_codes": [206]}, "status 206 is never stored"),
        ({"status_codes": [304]}, "status 304 is never stored"),
        ({"status_codes": [200, "ok"]}, "status_codes holds HTTP statuses"),
        ({"status_codes": 200}, "takes a list of statuses"),
        ({"vary": "Accept-Language"}, "not a single string"),
        ({"ignore_args": "page"}, "not a single string"),
        ({"key_builder": "page"}, "key_builder must be a function"),
        ({"ttl": 0}, "ttl must be positive"),
        ({"ttl": "soon"}, "cannot read 'soon' as a duration"),
    ],
)
def test_contradictory_or_impossible_options_fail_at_decoration(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):

        @cache(**options)
        async def endpoint(page: int = 1) -> int:
            return page


def test_ignore_args_naming_no_parameter_fails_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"'sesion'.*did you mean 'session'\?"):

        @cache(ttl=5, ignore_args=["sesion"])
        def lookup(item: int, session: object = None) -> int:
            return item


async def test_bare_cache_is_cache_with_the_defaults(client) -> None:
    app = FastAPI()
    runs = Runs()

    @app.get("/bare")
    @cache
    async def bare() -> dict[str, int]:
        runs()
        return {"n": 1}

    @cache
    def double(x: int) -> int:
        runs()
        return 2 * x

    async with client(app) as c:
        first, second = await c.get("/bare"), await c.get("/bare")
    assert (xc(first), xc(second)) == ("MISS", "HIT")
    assert second.headers["cache-control"] == "max-age=60"  # configure(default_ttl=60)
    assert double(2) == double(2) == 4
    assert runs.n == 2


@pytest.mark.parametrize(
    ("directives", "fix"),
    [
        ("no-store", "drop @cache instead"),
        ("private", "write private=True"),
        ("no-transform, Public", "write public=True"),
        ("max-age=5", "write ttl="),
        ("immutable", "write immutable=True"),
        ("stale-while-revalidate=30", "write stale_while_revalidate="),
        ("stale-if-error=30", "write stale_if_error="),
    ],
)
def test_cache_control_directives_that_contradict_the_options_are_refused(
    directives: str, fix: str
) -> None:
    """RFC 9111 §5.2.2.5 (no-store), §4.2.1 (conflicting max-age): the route would say one
    thing and do another. The message names the option to use."""
    with pytest.raises(ConfigError, match=re.escape(fix)):
        cache(ttl=60, cache_control=directives)


async def test_extra_directives_that_agree_are_sent(client) -> None:
    app = FastAPI()

    @app.get("/x")
    @cache(ttl=60, cache_control="no-transform, s-maxage=30, no-cache")
    async def x() -> dict[str, int]:
        return {"n": 1}

    async with client(app) as c:
        miss, hit = await c.get("/x"), await c.get("/x")
    assert miss.headers["cache-control"] == "max-age=60, no-transform, s-maxage=30, no-cache"
    assert xc(hit) == "HIT"


class Caller(BaseModel):
    token: SecretStr


def caller(x_token: Annotated[str, Header()]) -> Caller:
    return Caller(token=SecretStr(x_token))


async def test_a_dependency_model_with_a_secret_keys_by_the_secret(client) -> None:
    """A dependency returning a pydantic model with a SecretStr: two tokens never share an
    entry (a dump would show both as '**********')."""
    app = FastAPI()

    @app.get("/who")
    @cache(ttl=60)
    async def who(c: Annotated[Caller, Depends(caller)]) -> dict[str, str]:
        return {"token": c.token.get_secret_value()}

    async with client(app) as c:
        a = await c.get("/who", headers={"x-token": "alice-token"})
        b = await c.get("/who", headers={"x-token": "bob-token"})
        a2 = await c.get("/who", headers={"x-token": "alice-token"})
    assert a.json() == {"token": "alice-token"} and b.json() == {"token": "bob-token"}
    assert xc(a2) == "HIT" and a2.json() == {"token": "alice-token"}
