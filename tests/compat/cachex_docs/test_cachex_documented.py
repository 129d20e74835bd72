"""HTTP-level tests of fastapi-cachex 0.5.1 as its README and ``@cache`` docstring describe it.

Written against ``fastapi_cachex`` (the peer's own import name): ``run_cachex_tests.py`` runs
them twice, against the real fastapi-cachex 0.5.1 (its sdist, fetched at run time) to check
that they describe the peer faithfully, and against ``oxicache.compat.fastapi_cachex`` with
only the imports rewritten. They exist because the peer's sdist ships no tests and its
repository could not be reached; each test names the documented behaviour it checks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from fastapi_cachex import BackendProxy, build_cache_key, cache, invalidate
from fastapi_cachex.backends import MemoryBackend
from fastapi_cachex.exceptions import BackendNotFoundError, CacheXError


@pytest.fixture
def backend() -> Iterator[MemoryBackend]:
    made = MemoryBackend()
    BackendProxy.set(made)
    yield made
    BackendProxy.set(None)


def directives(response: object) -> set[str]:
    value = response.headers.get("cache-control", "")  # type: ignore[attr-defined]
    return {d.strip() for d in value.split(",") if d.strip()}


def test_readme_example_is_served_from_the_cache(backend: MemoryBackend) -> None:
    """README: ``@cache(ttl=60)`` -- served from the cache for 60 seconds, with ETag
    revalidation."""
    app = FastAPI()
    calls = []

    @app.get("/items/{item_id}")
    @cache(ttl=60)
    async def read_item(item_id: int) -> dict[str, int]:
        calls.append(item_id)
        return {"item_id": item_id}

    c = TestClient(app)
    first = c.get("/items/1")
    second = c.get("/items/1")
    assert first.json() == second.json() == {"item_id": 1}
    assert calls == [1]
    assert "max-age=60" in directives(first)
    assert "etag" in first.headers
    revalidated = c.get("/items/1", headers={"If-None-Match": first.headers["etag"]})
    assert revalidated.status_code == 304


def test_paths_and_queries_get_their_own_entries(backend: MemoryBackend) -> None:
    """The default key is method, host, path and query."""
    app = FastAPI()
    calls = []

    @app.get("/items/{item_id}")
    @cache(ttl=60)
    async def read_item(item_id: int, q: str = "") -> dict[str, object]:
        calls.append((item_id, q))
        return {"item_id": item_id, "q": q}

    c = TestClient(app)
    assert c.get("/items/1?q=a").json() == {"item_id": 1, "q": "a"}
    assert c.get("/items/1?q=b").json() == {"item_id": 1, "q": "b"}
    assert c.get("/items/2?q=a").json() == {"item_id": 2, "q": "a"}
    c.get("/items/1?q=a")
    assert len(calls) == 3


def test_sort_query_shares_reordered_queries(backend: MemoryBackend) -> None:
    """sort_query (on by default): ``?a=1&b=2`` and ``?b=2&a=1`` share one entry."""
    app = FastAPI()
    calls = []

    @app.get("/s")
    @cache(ttl=60)
    async def s(a: int = 0, b: int = 0) -> dict[str, int]:
        calls.append(1)
        return {"a": a, "b": b}

    c = TestClient(app)
    c.get("/s?a=1&b=2")
    c.get("/s?b=2&a=1")
    assert len(calls) == 1


def test_without_ttl_the_handler_runs_every_time(backend: MemoryBackend) -> None:
    """Without a positive ttl nothing is read from or written to the backend."""
    app = FastAPI()
    calls = []

    @app.get("/x")
    @cache()
    async def x() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    c = TestClient(app)
    assert c.get("/x").json() == {"n": 1}
    assert c.get("/x").json() == {"n": 2}


def test_no_store(backend: MemoryBackend) -> None:
    """no_store: run the handler, store nothing, and send ``no-store``."""
    app = FastAPI()
    calls = []

    @app.get("/x")
    @cache(no_store=True)
    async def x() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    c = TestClient(app)
    first, second = c.get("/x"), c.get("/x")
    assert (first.json(), second.json()) == ({"n": 1}, {"n": 2})
    assert first.headers["cache-control"] == "no-store"


def test_no_cache_sends_no_cache(backend: MemoryBackend) -> None:
    """no_cache: send ``no-cache``; If-None-Match still gets a 304 when it matches."""
    app = FastAPI()

    @app.get("/x")
    @cache(ttl=60, no_cache=True)
    async def x() -> dict[str, int]:
        return {"n": 1}

    c = TestClient(app)
    first = c.get("/x")
    assert "no-cache" in directives(first)
    assert c.get("/x", headers={"If-None-Match": first.headers["etag"]}).status_code == 304


def test_no_cache_runs_the_handler_on_every_request(backend: MemoryBackend) -> None:
    """no_cache: run the handler on every request."""
    app = FastAPI()
    calls = []

    @app.get("/x")
    @cache(ttl=60, no_cache=True)
    async def x() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    c = TestClient(app)
    c.get("/x")
    c.get("/x")
    assert len(calls) == 2


def test_directives(backend: MemoryBackend) -> None:
    """public, immutable, must_revalidate and stale send their directives."""
    app = FastAPI()

    @app.get("/x")
    @cache(
        ttl=60,
        public=True,
        immutable=True,
        must_revalidate=True,
        stale="revalidate",
        stale_ttl=30,
    )
    async def x() -> dict[str, int]:
        return {"n": 1}

    got = directives(TestClient(app).get("/x"))
    assert {
        "max-age=60",
        "public",
        "immutable",
        "must-revalidate",
        "stale-while-revalidate=30",
    } <= got


def test_stale_if_error_directive(backend: MemoryBackend) -> None:
    """stale="error" sends ``stale-if-error=<stale_ttl>``."""
    app = FastAPI()

    @app.get("/x")
    @cache(ttl=60, stale="error", stale_ttl=120)
    async def x() -> dict[str, int]:
        return {"n": 1}

    assert "stale-if-error=120" in directives(TestClient(app).get("/x"))


def test_private_is_never_stored(backend: MemoryBackend) -> None:
    """private: send ``private`` and bypass the shared backend entirely."""
    app = FastAPI()
    calls = []

    @app.get("/x")
    @cache(ttl=60, private=True)
    async def x() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    c = TestClient(app)
    first = c.get("/x")
    c.get("/x")
    assert "private" in directives(first)
    assert len(calls) == 2


def test_requests_with_authorization_bypass_the_backend(backend: MemoryBackend) -> None:
    """A request with Authorization bypasses the backend (unless public or
    cache_authorized) and its response is sent with ``private``."""
    app = FastAPI()
    calls = []

    @app.get("/x")
    @cache(ttl=60)
    async def x() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    c = TestClient(app)
    c.get("/x")
    authorized = c.get("/x", headers={"Authorization": "Bearer t"})
    assert authorized.json() == {"n": 2}
    assert "private" in directives(authorized)


def test_public_routes_share_entries_with_authorized_requests(backend: MemoryBackend) -> None:
    """public: requests with credentials read the shared entry."""
    app = FastAPI()
    calls = []

    @app.get("/x")
    @cache(ttl=60, public=True)
    async def x() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    c = TestClient(app)
    c.get("/x")
    assert c.get("/x", headers={"Authorization": "Bearer t"}).json() == {"n": 1}


def test_vary(backend: MemoryBackend) -> None:
    """vary: every distinct header value gets its own entry; names sent in ``Vary``."""
    app = FastAPI()
    calls = []

    @app.get("/x")
    @cache(ttl=60, vary=["Accept-Language"])
    async def x(request: Request) -> dict[str, str | None]:
        calls.append(1)
        return {"lang": request.headers.get("accept-language")}

    c = TestClient(app)
    en = c.get("/x", headers={"Accept-Language": "en"})
    fr = c.get("/x", headers={"Accept-Language": "fr"})
    c.get("/x", headers={"Accept-Language": "en"})
    assert (en.json()["lang"], fr.json()["lang"]) == ("en", "fr")
    assert len(calls) == 2
    assert "accept-language" in en.headers["vary"].lower()


def test_key_builder_with_build_cache_key(backend: MemoryBackend) -> None:
    """key_builder: return ``build_cache_key(request, component)`` to add a component."""
    app = FastAPI()
    calls = []

    def per_tenant(request: Request) -> str:
        return build_cache_key(request, request.headers.get("x-tenant", "none"))

    @app.get("/x")
    @cache(ttl=60, key_builder=per_tenant)
    async def x(request: Request) -> dict[str, str | None]:
        calls.append(1)
        return {"tenant": request.headers.get("x-tenant")}

    c = TestClient(app)
    assert c.get("/x", headers={"X-Tenant": "a"}).json() == {"tenant": "a"}
    assert c.get("/x", headers={"X-Tenant": "b"}).json() == {"tenant": "b"}
    c.get("/x", headers={"X-Tenant": "a"})
    assert len(calls) == 2


def test_set_cookie_is_never_stored(backend: MemoryBackend) -> None:
    """A response that sets a cookie is served as rendered and not stored."""
    app = FastAPI()
    calls = []

    @app.get("/x")
    @cache(ttl=60)
    async def x(response: Response) -> dict[str, int]:
        calls.append(1)
        response.set_cookie("sid", "secret")
        return {"n": len(calls)}

    c = TestClient(app)
    c.get("/x")
    c.get("/x")
    assert len(calls) == 2


def test_error_statuses_are_not_stored(backend: MemoryBackend) -> None:
    """Uncacheable statuses are served as-is and never stored."""
    app = FastAPI()
    calls = []

    @app.get("/x")
    @cache(ttl=60)
    async def x() -> Response:
        calls.append(1)
        return JSONResponse({"n": len(calls)}, status_code=503)

    c = TestClient(app)
    c.get("/x")
    c.get("/x")
    assert len(calls) == 2


def test_only_get_and_head_go_through_the_cache(backend: MemoryBackend) -> None:
    """Only GET and HEAD requests go through the cache."""
    app = FastAPI()
    calls = []

    @app.api_route("/x", methods=["GET", "POST"])
    @cache(ttl=60)
    async def x() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    c = TestClient(app)
    c.post("/x")
    c.post("/x")
    assert len(calls) == 2


def test_head_reads_the_get_entry(backend: MemoryBackend) -> None:
    """A HEAD request is answered from the entry a GET stored."""
    app = FastAPI()
    calls = []

    @app.api_route("/x", methods=["GET", "HEAD"])
    @cache(ttl=60)
    async def x() -> dict[str, int]:
        calls.append(1)
        return {"n": 1}

    c = TestClient(app)
    c.get("/x")
    head = c.head("/x")
    assert head.status_code == 200
    assert len(calls) == 1


def test_invalidate_after_a_mutation(backend: MemoryBackend) -> None:
    """invalidate(request): bust the entry a GET to the route would use."""
    app = FastAPI()
    items = {"1": "old"}

    @app.get("/items/{item_id}")
    @cache(ttl=60)
    async def read(item_id: str) -> dict[str, str]:
        return {"name": items[item_id]}

    @app.put("/items/{item_id}")
    async def write(item_id: str, request: Request) -> dict[str, bool]:
        items[item_id] = "new"
        target = Request({**request.scope, "method": "GET"})
        return {"invalidated": await invalidate(target)}

    c = TestClient(app)
    assert c.get("/items/1").json() == {"name": "old"}
    assert c.put("/items/1").json() == {"invalidated": True}
    assert c.get("/items/1").json() == {"name": "new"}


def test_clear_path(backend: MemoryBackend) -> None:
    """backend.clear_path(path): the path's entries; include_params=True for every query."""
    app = FastAPI()
    calls = []

    @app.get("/items/{item_id}")
    @cache(ttl=60)
    async def read(item_id: int) -> dict[str, int]:
        calls.append(item_id)
        return {"id": item_id}

    c = TestClient(app)
    c.get("/items/1")
    c.get("/items/2")
    with c as running:
        cleared = running.portal.call(backend.clear_path, "/items/1")  # type: ignore[union-attr]
    assert cleared == 1
    c.get("/items/1")
    c.get("/items/2")
    assert calls == [1, 2, 1]


def test_clear_path_without_include_params_keeps_query_variants(
    backend: MemoryBackend,
) -> None:
    """clear_path(path, include_params=False) clears only the exact path (no query)."""
    app = FastAPI()
    calls = []

    @app.get("/x")
    @cache(ttl=60)
    async def x(q: str = "") -> dict[str, str]:
        calls.append(q)
        return {"q": q}

    c = TestClient(app)
    c.get("/x?q=1")
    with c as running:
        running.portal.call(backend.clear_path, "/x")  # type: ignore[union-attr]
    c.get("/x?q=1")
    assert calls == ["1"]


def test_clear_pattern(backend: MemoryBackend) -> None:
    """backend.clear_pattern(glob over whole keys ``http:v2|method|host|path|query``)."""
    app = FastAPI()
    calls = []

    @app.get("/users/{uid}")
    @cache(ttl=60)
    async def user(uid: int) -> dict[str, int]:
        calls.append(uid)
        return {"uid": uid}

    @app.get("/other")
    @cache(ttl=60)
    async def other() -> dict[str, int]:
        calls.append(0)
        return {"uid": 0}

    c = TestClient(app)
    c.get("/users/1")
    c.get("/users/2")
    c.get("/other")
    with c as running:
        cleared = running.portal.call(  # type: ignore[union-attr]
            backend.clear_pattern, "http:v2|GET|*|/users/*"
        )
    assert cleared == 2
    c.get("/users/1")
    c.get("/other")
    assert calls == [1, 2, 0, 1]


def test_debug_header(backend: MemoryBackend) -> None:
    """debug_header=True: ``X-Cache`` says MISS, then HIT."""
    app = FastAPI()

    @app.get("/x")
    @cache(ttl=60, debug_header=True)
    async def x() -> dict[str, int]:
        return {"n": 1}

    c = TestClient(app)
    assert c.get("/x").headers["x-cache"] == "MISS"
    assert c.get("/x").headers["x-cache"] == "HIT"


def test_backend_proxy() -> None:
    """BackendProxy: class methods only; get() raises with no backend set."""
    BackendProxy.set(None)
    with pytest.raises(BackendNotFoundError):
        BackendProxy.get()
    with pytest.raises(TypeError):
        BackendProxy()
    made = MemoryBackend()
    BackendProxy.set(made)
    assert BackendProxy.get() is made
    BackendProxy.set(None)


def test_decoration_errors() -> None:
    """Raises CacheXError for public with private, and stale without stale_ttl."""
    with pytest.raises(CacheXError):

        @cache(ttl=60, public=True, private=True)
        async def a() -> None: ...

    with pytest.raises(CacheXError):

        @cache(ttl=60, stale="revalidate")
        async def b() -> None: ...


def test_without_ttl_etag_revalidation_still_works(backend: MemoryBackend) -> None:
    """A bare ``@cache()`` adds an ETag and answers a matching If-None-Match with 304,
    keeping the handler's own Cache-Control."""
    app = FastAPI()

    @app.get("/x")
    @cache()
    async def x(response: Response) -> dict[str, int]:
        response.headers["Cache-Control"] = "max-age=5"
        return {"n": 1}

    c = TestClient(app)
    first = c.get("/x")
    assert first.headers["cache-control"] == "max-age=5"
    again = c.get("/x", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
