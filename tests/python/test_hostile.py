"""Hostile inputs: the cache never makes the app answer differently, nor fail.

docs/http.md: "Whatever happens to it, each request gets the answer the app would have given
without it." Each test builds the same app twice, with and without ``@cache``, sends the same
requests to both, and compares status and body. The cached app gets every request twice in a
row and the whole list in one store, so a request answered from another's entry (a key
collision, a normalisation) shows up as a wrong body.

The handlers only read what the key sees (path, raw query, the ``vary`` header, the user from
a dependency): a handler reading an unkeyed header is the application's choice, not a cache bug.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxicache import cache

Headers = Sequence[tuple[str, str | bytes]]


def current_user(request: Request) -> str:
    auth = request.headers.get("authorization")
    if auth is None:
        raise HTTPException(401, "no credentials")
    return auth


def build(cached: bool) -> FastAPI:
    """The app under test; ``cached`` puts ``@cache`` on every route."""
    app = FastAPI()

    def wrap(**options: Any) -> Callable[[Any], Any]:
        return cache(ttl=60, **options) if cached else (lambda f: f)

    @app.get("/echo/{rest:path}")
    @wrap()
    async def echo(rest: str, request: Request) -> dict[str, Any]:
        return {
            "rest": rest,
            "raw_path": request.scope["raw_path"].decode("latin-1"),
            "query": request.scope["query_string"].decode("latin-1"),
            "params": request.query_params.multi_items(),
        }

    @app.get("/q")
    @wrap()
    def q(
        q: str | None = None,
        tags: Annotated[list[str] | None, Query()] = None,
        n: int = 0,
    ) -> dict[str, Any]:
        return {"q": q, "tags": tags, "n": n}

    @app.get("/items/{item_id}")
    @wrap()
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/vary")
    @wrap(vary=["Accept-Language"])
    async def vary(request: Request) -> dict[str, Any]:
        # The field value as HTTP defines it: leading and trailing whitespace excluded
        # (RFC 9110 §5.5; servers strip it, httpx's ASGI transport does not) and several field
        # lines combined with ", " (RFC 9110 §5.3). RFC 9111 §4.1 lets a cache match Vary
        # values after exactly these normalisations.
        values = request.scope["headers"]
        lines = [v.strip(b" \t") for k, v in values if k == b"accept-language"]
        return {"accept-language": b", ".join(lines).decode("latin-1") if lines else None}

    @app.get("/me")
    @wrap()
    async def me(user: str = Depends(current_user)) -> dict[str, str]:
        return {"user": user}

    @app.get("/public")
    @wrap(public=True)
    async def public() -> str:
        return "the same for everyone"

    return app


Call = tuple[str, Headers]


async def answers(app: FastAPI, calls: Sequence[Call], repeat: int) -> list[tuple[int, bytes]]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    out = []
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        for _ in range(repeat):
            for url, headers in calls:
                c.cookies.clear()
                r = await c.get(url, headers=list(headers))
                out.append((r.status_code, r.content))
    return out


async def assert_same_answers(calls: Sequence[Call]) -> None:
    """The cached app answers every call (twice, in one store) as the plain app does."""
    expected = await answers(build(False), calls, 1)
    got = await answers(build(True), calls, 2)
    n = len(calls)
    for i, call in enumerate(calls):
        assert got[i] == expected[i], f"first answer differs for {call!r}"
        assert got[n + i] == expected[i], f"second answer differs for {call!r}"
    assert all(status < 500 for status, _ in expected), "the reference app must not fail"


# ---------------------------------------------------------------------------------------------
# Named hostile requests
# ---------------------------------------------------------------------------------------------


async def test_long_and_encoded_paths() -> None:
    """RFC 9111 §4 (the key is the target URI, compared without normalising what the router
    distinguishes), RFC 3986 §2.1/§6.2.2 (percent-encodings), RFC 9110 §4.1 (no length limit is
    assumed: an 8 KB path is keyed like any other)."""
    calls: list[Call] = [
        ("/echo/" + "a" * 8192, []),
        ("/echo/" + "a" * 8191, []),
        ("/echo/a%2Fb", []),
        ("/echo/a/b", []),
        ("/echo/a%252Fb", []),
        ("/echo/a%25252Fb", []),
        ("/echo/%E2%82%AC", []),
        ("/echo/%e2%82%ac", []),
        ("/echo/\u20ac", []),
        ("/echo/%zz%", []),
        ("/echo/..%2F..%2Fetc%2Fpasswd", []),
        ("/echo/a;b=c", []),
        ("/echo/a", []),
        ("/echo/A", []),
        ("/echo/a/", []),
        ("/echo/ab", []),
        ("/echo/a?b", []),  # "/echo/a" + "b" must not key like "/echo/ab" + ""
        ("/echo/a%3Fb", []),
        ("/ECHO/a", []),
        ("/items/%31", []),
        ("/items/1", []),
        ("/items/1%2F2", []),
        ("/items/" + "9" * 5000, []),
    ]
    await assert_same_answers(calls)


async def test_nul_and_non_utf8_bytes_in_path_and_query() -> None:
    """RFC 3986 §2.1: percent-encoded octets are data, any value; RFC 9110 §5.5: field values
    may carry obs-text (bytes >= 0x80)."""
    calls: list[Call] = [
        ("/echo/a%00b", []),
        ("/echo/a%00", []),
        ("/echo/%ff%fe", []),
        ("/echo/%c0%af", []),  # overlong UTF-8 for "/"
        ("/q?q=a%00b", []),
        ("/q?q=%00", []),
        ("/q?q=%ff%fe", []),
        ("/q?q=%FF%FE", []),
        ("/q?q=%ff", []),
        ("/q?q=%c3%bf", []),
        ("/q?%ff=%fe", []),
        ("/echo/x?q=%ff%fe&%00=%00", []),
        ("/items/%00", []),
        ("/items/1%00", []),
    ]
    await assert_same_answers(calls)


async def test_duplicate_and_odd_query_parameters() -> None:
    """RFC 9111 §4 / docs/http.md: duplicate parameters and their order are not normalised away."""
    calls: list[Call] = [
        ("/q?tags=a&tags=b", []),
        ("/q?tags=b&tags=a", []),
        ("/q?tags=a&tags=b&tags=a", []),
        ("/q?tags=a", []),
        ("/q?q=1&q=2", []),
        ("/q?q=2&q=1", []),
        ("/q?q=1&&q=2", []),
        ("/q?q=1;q=2", []),
        ("/q?q", []),
        ("/q?q=", []),
        ("/q?=", []),
        ("/q?&&&", []),
        ("/q?q=a+b", []),
        ("/q?q=a%20b", []),
        ("/q?q=a b", []),
        ("/q?n=1", []),
        ("/q?n=01", []),
        ("/q?n=abc", []),  # 422 from FastAPI, identical with the cache
        ("/q?n=" + "9" * 5000, []),
        ("/q?" + "&".join(f"tags={i}" for i in range(500)), []),
        ("/echo/p?a=1&b=2", []),
        ("/echo/p?b=2&a=1", []),
        ("/echo/p?a=1&b=2#fragment", []),
    ]
    await assert_same_answers(calls)


async def test_header_values_with_obs_text_and_odd_vary_values() -> None:
    """RFC 9110 §5.5: field values may contain obs-text; RFC 9111 §4.1: Vary matching compares
    the values (absent is not empty, case and bytes matter)."""
    calls: list[Call] = [
        ("/vary", []),
        ("/vary", [("Accept-Language", "")]),
        ("/vary", [("Accept-Language", " ")]),
        ("/vary", [("Accept-Language", "fr")]),
        ("/vary", [("Accept-Language", "FR")]),
        ("/vary", [("Accept-Language", b"caf\xe9")]),
        ("/vary", [("Accept-Language", b"caf\xc3\xa9")]),
        ("/vary", [("Accept-Language", b"\xff\xfe\x80")]),
        ("/vary", [("Accept-Language", "fr"), ("Accept-Language", "de")]),
        ("/vary", [("Accept-Language", "fr, de")]),
        ("/vary", [("Accept-Language", "de"), ("Accept-Language", "fr")]),
        ("/vary", [("Accept-Language", "x" * 8192)]),
        ("/echo/h", [("X-Thing", b"\x80\x81\xfe\xff")]),
        ("/me", [("Authorization", b"Bearer caf\xe9")]),
        ("/me", [("Authorization", b"Bearer caf\xc3\xa9")]),
        ("/me", [("Authorization", "")]),
        ("/me", []),
        ("/public", [("Cookie", b"s=\xff")]),
        ("/echo/c", [("Cookie", b"s=\xff")]),
    ]
    await assert_same_answers(calls)


@pytest.mark.parametrize(
    "value",
    [
        'max-age=abc, ,,=,"',
        "max-age=99999999999999999999999999999999",
        "max-age=-1",
        "max-age=1e400",
        "min-fresh=18446744073709551616, max-stale",
        'no-cache="',
        'no-cache="unterminated, no-store',
        "no-cache\x00",
        "\x00no-store",
        "no-\x00store",
        ",,,,,,",
        "=" * 4096,
        "max-age=" + "9" * 4096,
        "NO-CACHE",
        "no-cache, no-cache, no-store, no-store",
        b"no-cache\xff",
        b"\xff\xfe",
    ],
)
async def test_malformed_request_cache_control(value: str | bytes) -> None:
    """RFC 9111 §5.2: a cache ignores directives it does not understand and must parse
    defensively; §5.2.1.1: an invalid max-age is treated as if absent or as stale, never an
    error. Whatever the header says, the answer is the app's."""
    calls: list[Call] = [
        ("/echo/cc", []),
        ("/echo/cc", [("Cache-Control", value)]),
        ("/q?q=cc", [("Cache-Control", value)]),
        ("/q?q=cc", [("Pragma", value)]),
        ("/echo/cc", []),
    ]
    await assert_same_answers(calls)


@pytest.mark.parametrize(
    "value",
    [
        "W/",
        "W/x",
        '"unterminated',
        'W/"unterminated',
        '"',
        '""',
        'W/""',
        "," * 10240,
        ", ".join(['W/"x"'] * 2000),
        '"a"b"',
        "w/" + '"abc"',
        b'"\xff\xfe"',
        '"\x00"',
        "**",
        "* , junk",
    ],
)
async def test_malformed_if_none_match(value: str | bytes) -> None:
    """RFC 9110 §13.1.2 and §8.8.3: only a syntactically valid entity tag matching the stored
    one (or ``*``) yields 304; anything else is a plain 200 with the body."""
    calls: list[Call] = [
        ("/echo/inm", []),
        ("/echo/inm", [("If-None-Match", value)]),
        ("/q?q=inm", [("If-None-Match", value)]),
        ("/echo/inm", []),
    ]
    await assert_same_answers(calls)


# ---------------------------------------------------------------------------------------------
# Requests httpx will not send: straight to the ASGI app, as a server could hand them over
# ---------------------------------------------------------------------------------------------


async def asgi_get(
    app: Any,
    raw_path: bytes,
    query: bytes = b"",
    headers: Sequence[tuple[bytes, bytes]] = ((b"host", b"testserver"),),
    include_raw_path: bool = True,
) -> tuple[int, bytes]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote_to_bytes(raw_path).decode("utf-8", "surrogateescape"),
        "query_string": query,
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    if include_raw_path:
        scope["raw_path"] = raw_path
    sent: list[dict[str, Any]] = []
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    except Exception:
        return (500, b"exception")
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body


@pytest.mark.parametrize(
    ("raw_path", "query", "headers", "include_raw_path"),
    [
        (b"/echo/raw", b"q=\xff\xfe", [(b"host", b"testserver")], True),
        (b"/q", b"q=\xff\xfe\x00", [(b"host", b"testserver")], True),
        (b"/q", b"q=caf\xe9&q=\x80", [(b"host", b"testserver")], True),
        (b"/echo/\xff", b"", [(b"host", b"testserver")], True),
        (b"/echo/nohost", b"", [], True),
        (b"/echo/two-hosts", b"", [(b"host", b"a.example"), (b"host", b"b.example")], True),
        (b"/echo/odd-host", b"", [(b"host", b"\xff:99999")], True),
        (b"/echo/no-raw-path", b"a=1", [(b"host", b"testserver")], False),
        (b"/echo/upper", b"", [(b"Host", b"testserver"), (b"Cache-Control", b"no-cache")], True),
        (b"/vary", b"", [(b"host", b"t"), (b"accept-language", b"\x00\xff")], True),
        (b"/me", b"", [(b"host", b"t"), (b"authorization", b"\xff")], True),
    ],
)
async def test_raw_asgi_requests(
    raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]], include_raw_path: bool
) -> None:
    """ASGI 3 (HTTP connection scope): raw bytes in ``query_string`` and ``raw_path``, a missing
    or repeated Host (RFC 9112 §3.2 makes these a client error, but the server may still pass
    them), a server that omits ``raw_path``. The cache answers as the app would."""
    plain, cached = build(False), build(True)
    expected = await asgi_get(plain, raw_path, query, headers, include_raw_path)
    for _ in range(2):
        got = await asgi_get(cached, raw_path, query, headers, include_raw_path)
        assert got == expected


async def test_keys_do_not_collide_across_hosts_paths_and_queries() -> None:
    """docs/http.md (keys): fields are length-prefixed, so moving bytes between host, path and query
    never gives the same key."""
    cached = build(True)
    variants = [
        (b"/echo/ab", b"", b"h"),
        (b"/echo/a", b"b", b"h"),
        (b"/echo/", b"ab", b"h"),
        (b"/echo/ab", b"", b"h/echo"),
    ]
    results = []
    for _ in range(2):
        for raw_path, query, host in variants:
            results.append(await asgi_get(cached, raw_path, query, [(b"host", host)]))
    plain = build(False)
    expected = [await asgi_get(plain, p, q, [(b"host", h)]) for p, q, h in variants]
    assert results == expected * 2


# ---------------------------------------------------------------------------------------------
# Property: random query strings and header values
# ---------------------------------------------------------------------------------------------

QUERY_PIECES = st.sampled_from(
    [
        *"abcq=&;+/?:@!$'()*,~-._ 019",
        *("%", "%00", "%ff", "%FE", "%2F", "%25", "%26", "%3D", "%C3%A9", "\u00e9", "\u2603"),
        *("q=", "tags=", "n="),
    ]
)
QUERY = st.lists(QUERY_PIECES, max_size=24).map("".join)
# Any byte but CR and LF (which would split the field); obs-text and NUL included.
HEADER_VALUE = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
HEADER_NAMES = st.sampled_from(
    [
        "Cache-Control",
        "Pragma",
        "If-None-Match",
        "Accept-Language",
        "Authorization",
        "Cookie",
        "X-Thing",
    ]
)
PATHS = st.sampled_from(["/echo/p", "/q", "/vary", "/me", "/public", "/items/1"])


def keep_if_none_match_honest(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """``If-None-Match: *`` legitimately turns a hit into a 304 (RFC 9110 §13.1.2); keep it out
    so that any 304 left is a bug. A random value matching a 22-character hash is not a concern."""
    return [(n, v.replace(b"*", b"")) if n == "If-None-Match" else (n, v) for n, v in headers]


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=PATHS,
    query=QUERY,
    headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUE), max_size=4).map(
        keep_if_none_match_honest
    ),
)
async def test_random_queries_and_headers_never_change_the_answer(
    path: str, query: str, headers: list[tuple[str, bytes]]
) -> None:
    """docs/http.md: the cache is an optimisation; RFC 9111 §4: a stored response answers only a
    request it matches. For random queries and header values, the cached app (twice) answers
    as the plain app does and never raises."""
    url = f"{path}?{query}" if query else path
    calls: list[Call] = [(url, headers), (url, [])]
    expected = await answers(build(False), calls, 1)
    got = await answers(build(True), calls, 2)
    assert got == expected * 2


# ---------------------------------------------------------------------------------------------
# Arguments the key cannot take
# ---------------------------------------------------------------------------------------------


class Settings:
    """A plain object with the default repr (its address): never key material."""

    def __init__(self) -> None:
        self.greeting = "hello"


def get_settings() -> Settings:
    return Settings()


async def test_unkeyable_dependency_value_bypasses_with_one_warning(caplog) -> None:
    """docs/http.md: never key by ``repr()``. A dependency value the key cannot take is not an
    error page: the request is answered uncached (RFC 9211 §2.2 ``fwd=bypass``), logged once."""
    app = FastAPI()
    runs = 0

    @app.get("/greet")
    @cache(ttl=60)
    async def greet(s: Settings = Depends(get_settings)) -> str:  # noqa: B008
        nonlocal runs
        runs += 1
        return s.greeting

    caplog.set_level(logging.WARNING, logger="oxicache")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        replies = [await c.get("/greet") for _ in range(3)]
    for r in replies:
        assert r.status_code == 200
        assert r.json() == "hello"
        assert r.headers["x-cache"] == "BYPASS"
        assert r.headers["cache-status"] == "oxicache; fwd=bypass; detail=unkeyable"
    assert runs == 3
    warnings = [rec for rec in caplog.records if rec.name == "oxicache"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "greet" in warnings[0].getMessage()
    assert "Settings" in warnings[0].getMessage()


# --- response fields that must never be stored or replayed ----------------------------------


def _raw_app(extra: list[tuple[bytes, bytes]]) -> Any:
    """A raw ASGI app answering a cacheable 200 with ``extra`` fields, counting its runs."""
    runs: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        runs.append(1)
        headers = [(b"cache-control", b"max-age=60"), (b"content-length", b"2"), *extra]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    app.runs = runs  # type: ignore[attr-defined]
    return app


@pytest.mark.parametrize(
    "field",
    [
        (b"x-note", b"a\r\nset-cookie: stolen=1"),
        (b"x-note", b"a\nb"),
        (b"x-note", b"a\x00b"),
        (b"x-no\r\nte", b"v"),
    ],
)
async def test_fields_with_cr_lf_or_nul_are_never_stored(client: Any, field: Any) -> None:
    """RFC 9110 §5.5: CR, LF and NUL make a field invalid and dangerous; stored and replayed,
    one could split a response downstream. The middleware and the decorator never store it."""
    from oxicache import CacheMiddleware

    origin = _raw_app([field])
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/x")
        second = await c.get("/x")
    assert len(origin.runs) == 2
    assert "detail=invalid-field" in second.headers["cache-status"]

    from fastapi.responses import Response

    app = FastAPI()
    runs: list[int] = []

    @app.get("/y")
    @cache(ttl=60)
    async def y() -> Response:
        runs.append(1)
        response = Response(b"ok")
        response.raw_headers.append(field)
        return response

    async with client(app) as c:
        await c.get("/y")
        again = await c.get("/y")
    assert len(runs) == 2
    assert again.headers["x-cache"] != "HIT"


async def test_fields_the_connection_header_lists_are_not_stored(client: Any) -> None:
    """RFC 9111 §3.1, RFC 9110 §7.6.1: a field the response's Connection lists is for this hop
    only (the cache-tests case headers-omit-headers-listed-in-Connection)."""
    from fastapi.responses import Response

    from oxicache import CacheMiddleware

    extra = [(b"connection", b"x-hop, close"), (b"x-hop", b"secret-hop"), (b"x-kept", b"1")]
    origin = _raw_app(extra)
    async with client(CacheMiddleware(origin)) as c:
        await c.get("/x")
        hit = await c.get("/x")
    assert hit.headers["x-cache"] == "HIT"
    assert "x-hop" not in hit.headers and hit.headers["x-kept"] == "1"

    app = FastAPI()

    @app.get("/y")
    @cache(ttl=60)
    async def y() -> Response:
        return Response(b"ok", headers={"Connection": "x-hop", "X-Hop": "secret", "X-Kept": "1"})

    async with client(app) as c:
        await c.get("/y")
        hit = await c.get("/y")
    assert hit.headers["x-cache"] == "HIT"
    assert "x-hop" not in hit.headers and hit.headers["x-kept"] == "1"
