"""What ``@cache`` tells the caches downstream: its own ``CacheMiddleware`` in front, a CDN, a
browser (RFC 9111 §5.2.2.7 ``private``, RFC 9110 §12.5.5 ``Vary``).

The decorator's own hit runs after routing, so the route's dependencies still run; a shared
cache in front answers before them. A response whose route is guarded by a dependency, or
keyed on a credential, must therefore say ``private``; one keyed on a header must name it in
``Vary``. Every scenario runs a real FastAPI app behind ``CacheMiddleware``, with the
middleware added before and after the routes are declared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Cookie, Depends, FastAPI, Header, HTTPException, Security
from fastapi.security import APIKeyHeader

from oxicache import CacheMiddleware, cache

API_KEY = "valid-key"
key_header = APIKeyHeader(name="X-Key", auto_error=False)


def require_key(x_key: Annotated[str | None, Header()] = None) -> None:
    if x_key != API_KEY:
        raise HTTPException(status_code=401, detail="no key")


def checked_key(key: Annotated[str | None, Security(key_header)]) -> None:
    if key != API_KEY:
        raise HTTPException(status_code=401, detail="no key")


def get_db() -> Any:
    yield "session"


#: Handler runs, per test (reset by the autouse fixture below).
RUNS: list[int] = []


@pytest.fixture(autouse=True)
def _runs() -> None:
    RUNS.clear()


async def body() -> dict[str, str]:
    RUNS.append(1)
    return {"secret": "for key holders"}


def route_dependency(app: FastAPI, public: bool) -> None:
    app.get("/guarded", dependencies=[Depends(require_key)])(cache(ttl=60, public=public)(body))


def router_dependency(app: FastAPI, public: bool) -> None:
    router = APIRouter(dependencies=[Depends(require_key)])
    router.get("/guarded")(cache(ttl=60, public=public)(body))
    app.include_router(router)


def inclusion_dependency(app: FastAPI, public: bool) -> None:
    router = APIRouter()
    router.get("/guarded")(cache(ttl=60, public=public)(body))
    app.include_router(router, dependencies=[Depends(require_key)])


def security_dependency(app: FastAPI, public: bool) -> None:
    app.get("/guarded", dependencies=[Security(checked_key)])(cache(ttl=60, public=public)(body))


def unkeyed_parameter_dependency(app: FastAPI, public: bool) -> None:
    async def guarded(
        _: Annotated[None, Depends(require_key)], db: Annotated[Any, Depends(get_db)]
    ) -> dict[str, str]:
        return await body()

    app.get("/guarded")(cache(ttl=60, public=public, ignore_args=["_"])(guarded))


GUARDS: dict[str, Callable[[FastAPI, bool], None]] = {
    "route": route_dependency,
    "router": router_dependency,
    "include_router": inclusion_dependency,
    "security": security_dependency,
    "parameter": unkeyed_parameter_dependency,
}


def app_with(
    guard: Callable[[FastAPI, bool], None], *, middleware_first: bool, public: bool
) -> Any:
    app = FastAPI()
    if middleware_first:
        app.add_middleware(CacheMiddleware)
    guard(app, public)
    if not middleware_first:
        app.add_middleware(CacheMiddleware)
    return app


@pytest.mark.parametrize("middleware_first", [True, False], ids=["mw-first", "mw-last"])
@pytest.mark.parametrize("guard", list(GUARDS))
async def test_a_guarded_route_is_never_answered_to_a_request_without_the_key(
    client: Any, guard: str, middleware_first: bool
) -> None:
    app = app_with(GUARDS[guard], middleware_first=middleware_first, public=False)
    async with client(app) as c:
        ok = await c.get("/guarded", headers={"x-key": API_KEY})
        again = await c.get("/guarded", headers={"x-key": API_KEY})
        refused = await c.get("/guarded")
    assert ok.status_code == 200 and ok.json() == {"secret": "for key holders"}
    assert "private" in ok.headers["cache-control"], ok.headers
    assert again.status_code == 200
    assert RUNS == [1]  # the second answer came from the decorator's entry
    assert refused.status_code == 401, refused.headers


async def test_the_app_level_dependency_guards_too(client: Any) -> None:
    app = FastAPI(dependencies=[Depends(require_key)])
    app.add_middleware(CacheMiddleware)
    app.get("/guarded")(cache(ttl=60)(body))
    async with client(app) as c:
        ok = await c.get("/guarded", headers={"x-key": API_KEY})
        refused = await c.get("/guarded")
    assert ok.status_code == 200 and "private" in ok.headers["cache-control"]
    assert refused.status_code == 401


async def test_public_true_is_the_route_saying_it_may_be_shared(client: Any) -> None:
    """The user's explicit opt-in: the middleware then shares the answer (documented)."""
    app = app_with(route_dependency, middleware_first=True, public=True)
    async with client(app) as c:
        ok = await c.get("/guarded", headers={"x-key": API_KEY})
        shared = await c.get("/guarded")
    assert "public" in ok.headers["cache-control"]
    assert "private" not in ok.headers["cache-control"]
    assert shared.status_code == 200 and shared.headers["x-cache"] == "HIT"


def test_a_route_without_dependencies_stays_shareable() -> None:
    from fastapi.testclient import TestClient

    app = FastAPI()
    app.get("/open")(cache(ttl=60)(body))
    assert "private" not in TestClient(app).get("/open").headers["cache-control"]


# --- Header() parameters ---------------------------------------------------------------------


@pytest.mark.parametrize("middleware_first", [True, False], ids=["mw-first", "mw-last"])
async def test_api_key_header_parameters_are_private_and_named_in_vary(
    client: Any, middleware_first: bool
) -> None:
    app = FastAPI()
    if middleware_first:
        app.add_middleware(CacheMiddleware)

    @app.get("/account")
    @cache(ttl=60)
    async def account(x_api_key: Annotated[str, Header()]) -> dict[str, str]:
        return {"owner": {"alice-key": "alice", "bob-key": "bob"}.get(x_api_key, "?")}

    if not middleware_first:
        app.add_middleware(CacheMiddleware)
    async with client(app) as c:
        alice = await c.get("/account", headers={"x-api-key": "alice-key"})
        bob = await c.get("/account", headers={"x-api-key": "bob-key"})
        alice_again = await c.get("/account", headers={"x-api-key": "alice-key"})
    assert alice.json() == {"owner": "alice"} and bob.json() == {"owner": "bob"}
    assert alice_again.json() == {"owner": "alice"}
    assert "x-api-key" in alice.headers["vary"].lower()
    assert "private" in alice.headers["cache-control"]


@pytest.mark.parametrize("middleware_first", [True, False], ids=["mw-first", "mw-last"])
async def test_a_header_parameter_is_named_in_vary_under_its_alias(
    client: Any, middleware_first: bool
) -> None:
    app = FastAPI()
    if middleware_first:
        app.add_middleware(CacheMiddleware)

    @app.get("/greeting")
    @cache(ttl=60)
    async def greeting(
        lang: Annotated[str, Header(alias="Accept-Language")] = "en",
    ) -> dict[str, str]:
        return {"text": {"fr": "bonjour", "en": "hello"}.get(lang[:2], "hello")}

    if not middleware_first:
        app.add_middleware(CacheMiddleware)
    async with client(app) as c:
        fr = await c.get("/greeting", headers={"accept-language": "fr"})
        en = await c.get("/greeting", headers={"accept-language": "en"})
        fr_again = await c.get("/greeting", headers={"accept-language": "fr"})
        en_again = await c.get("/greeting", headers={"accept-language": "en"})
    assert fr.json() == fr_again.json() == {"text": "bonjour"}
    assert en.json() == en_again.json() == {"text": "hello"}
    assert "accept-language" in fr.headers["vary"].lower()
    assert "private" not in fr.headers["cache-control"]  # a language is not a credential
    assert fr_again.headers["x-cache"] == "HIT" and en_again.headers["x-cache"] == "HIT"


# --- headers read by dependencies ----------------------------------------------------------


def region_of(x_region: Annotated[str, Header()] = "eu") -> str:
    return x_region


@pytest.mark.parametrize("middleware_first", [True, False], ids=["mw-first", "mw-last"])
async def test_a_dependency_header_is_named_in_vary_even_when_not_per_user(
    client: Any, middleware_first: bool
) -> None:
    """``per_user=False`` says the dependency's value is not about identity: the response may
    be shared, so the header the dependency reads must be in Vary for the cache in front."""
    app = FastAPI()
    if middleware_first:
        app.add_middleware(CacheMiddleware)

    @app.get("/prices")
    @cache(ttl=60, per_user=False)
    async def prices(region: Annotated[str, Depends(region_of)]) -> dict[str, str]:
        return {"region": region}

    if not middleware_first:
        app.add_middleware(CacheMiddleware)
    async with client(app) as c:
        eu = await c.get("/prices", headers={"x-region": "eu"})
        us = await c.get("/prices", headers={"x-region": "us"})
        eu_again = await c.get("/prices", headers={"x-region": "eu"})
    assert eu.json() == eu_again.json() == {"region": "eu"}
    assert us.json() == {"region": "us"}
    assert "x-region" in eu.headers["vary"].lower()


async def test_a_cookie_parameter_is_named_in_vary(client: Any) -> None:
    app = FastAPI()

    @app.get("/theme")
    @cache(ttl=60)
    async def theme(theme: Annotated[str, Cookie()] = "light") -> dict[str, str]:
        return {"theme": theme}

    async with client(app) as c:
        c.cookies.set("theme", "dark")
        r = await c.get("/theme")
    assert r.json() == {"theme": "dark"}
    assert "cookie" in r.headers["vary"].lower()
    assert "private" in r.headers["cache-control"]


async def test_one_router_included_twice_is_checked_through_each_inclusion(client: Any) -> None:
    """The same route through an open inclusion first, then through a guarded one: the
    guarded inclusion's answers are private, so the middleware never serves them keyless."""
    router = APIRouter()
    router.get("/guarded")(cache(ttl=60)(body))
    app = FastAPI()
    app.add_middleware(CacheMiddleware)
    app.include_router(router, prefix="/open")
    app.include_router(router, prefix="/locked", dependencies=[Depends(require_key)])
    async with client(app) as c:
        assert (await c.get("/open/guarded")).status_code == 200
        ok = await c.get("/locked/guarded", headers={"x-key": API_KEY})
        refused = await c.get("/locked/guarded")
    assert ok.status_code == 200 and "private" in ok.headers["cache-control"]
    assert refused.status_code == 401
