"""A cached route's OpenAPI operation shows what the cache adds, checked on FastAPI's own
``app.openapi()``: the ``304 Not Modified`` (RFC 9110 §15.4.5), the validators and cache
headers of the responses (``ETag``, ``Cache-Control``, ``Age`` of RFC 9111 §5.1, ``Vary``,
``X-Cache``, ``Cache-Status`` of RFC 9211), and the conditional request headers it honours
(RFC 9110 §13.1). What the app declared itself, and routes without ``@cache``, are kept as
FastAPI wrote them."""

from __future__ import annotations

import copy
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI, Header
from fastapi.openapi.utils import get_openapi
from openapi_spec_validator import validate

import oxicache
from oxicache import ConfigError, cache
from oxicache.integrations import openapi

CACHE_HEADERS = {"ETag", "Last-Modified", "Cache-Control", "Age", "Vary", "X-Cache", "Cache-Status"}


def header_params(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}


def cached_app(**options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    @cache(ttl=60, **options)
    async def items(page: int = 1) -> list[int]:
        return [page]

    @app.get("/plain")
    async def plain() -> dict[str, int]:
        return {"n": 1}

    return app


def plain_app() -> FastAPI:
    """The reference: the same routes, undecorated (``enabled=False`` hands back the function
    itself)."""
    return cached_app(enabled=False)


def test_a_cached_operation_shows_the_304_the_headers_and_the_conditionals() -> None:
    schema = cached_app().openapi()
    validate(schema)  # still a valid OpenAPI document
    operation = schema["paths"]["/items"]["get"]
    responses = operation["responses"]
    assert list(responses) == ["200", "304", "422"]  # in status order
    assert "content" not in responses["304"]  # RFC 9110 §15.4.5: a 304 has no content
    assert "Not Modified" in responses["304"]["description"]
    assert {"ETag", "Cache-Control", "X-Cache", "Cache-Status"} <= set(responses["304"]["headers"])
    assert set(responses["200"]["headers"]) == CACHE_HEADERS
    assert responses["200"]["headers"]["Age"]["schema"] == {"type": "integer", "minimum": 0}
    assert "headers" not in responses["422"]  # never stored: nothing of the cache on it
    params = header_params(operation)
    assert set(params) == {"If-None-Match", "If-Modified-Since", "Cache-Control"}
    assert all(p["required"] is False for p in params.values())
    assert "only-if-cached" in params["Cache-Control"]["description"]
    # The handler's own parameters come first, unchanged.
    assert operation["parameters"][0]["name"] == "page"


async def test_the_schema_says_what_the_route_actually_answers(client: Any) -> None:
    """Every header the schema promises on the 200 and the 304 is on real replies."""
    app = cached_app()
    responses = app.openapi()["paths"]["/items"]["get"]["responses"]
    async with client(app) as c:
        miss = await c.get("/items")
        hit = await c.get("/items")
        not_modified = await c.get("/items", headers={"If-None-Match": miss.headers["etag"]})
    assert not_modified.status_code == 304
    for reply in (miss, hit):
        assert reply.status_code == 200
    sent = {name.lower() for name in hit.headers} | {name.lower() for name in miss.headers}
    promised = {name.lower() for name in responses["200"]["headers"]} - {"vary"}  # none keyed
    assert promised <= sent
    promised_304 = {name.lower() for name in responses["304"]["headers"]} - {"vary"}
    assert promised_304 <= {name.lower() for name in not_modified.headers}


def test_a_route_without_cache_is_exactly_as_fastapi_writes_it() -> None:
    cached, plain = cached_app().openapi(), plain_app().openapi()
    assert cached["paths"]["/plain"] == plain["paths"]["/plain"]
    assert cached["components"] == plain["components"]


def test_openapi_false_on_the_route_leaves_its_operation_alone() -> None:
    plain = plain_app().openapi()
    assert cached_app(openapi=False).openapi() == plain


def test_the_setting_turns_it_off_for_every_route() -> None:
    oxicache.configure(openapi=False)
    assert cached_app().openapi() == plain_app().openapi()


def test_the_label_header_is_the_configured_one() -> None:
    oxicache.configure(header_name="X-Edge-Cache")
    headers = cached_app().openapi()["paths"]["/items"]["get"]["responses"]["200"]["headers"]
    assert "X-Edge-Cache" in headers and "X-Cache" not in headers


def test_no_cache_is_described_as_the_server_treats_it() -> None:
    oxicache.configure(honor_request_no_cache=False)
    operation = cached_app().openapi()["paths"]["/items"]["get"]
    assert "is ignored" in header_params(operation)["Cache-Control"]["description"]


def test_what_the_app_declared_is_kept() -> None:
    app = FastAPI()
    own_304 = {"description": "Our own not-modified"}
    own_etag = {"description": "Our ETag", "schema": {"type": "string", "example": '"v1"'}}

    @app.get(
        "/items/{item_id}",
        responses={
            200: {"headers": {"etag": own_etag}},
            304: own_304,
            404: {"description": "No such item"},
        },
        openapi_extra={"x-team": "catalog"},
    )
    @cache(ttl=60)
    async def item(
        item_id: int, if_none_match: Annotated[str | None, Header()] = None
    ) -> dict[str, int]:
        return {"id": item_id}

    schema = app.openapi()
    validate(schema)
    operation = schema["paths"]["/items/{item_id}"]["get"]
    responses = operation["responses"]
    assert responses["304"] == own_304
    assert responses["200"]["headers"]["etag"] == own_etag
    assert "ETag" not in responses["200"]["headers"]  # not a second ETag
    assert CACHE_HEADERS - {"ETag"} <= set(responses["200"]["headers"])
    assert responses["404"] == {"description": "No such item"}  # 404 is not stored by default
    assert operation["x-team"] == "catalog"
    names = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert names.count("if-none-match") == 1 and "If-None-Match" not in names
    assert {"If-Modified-Since", "Cache-Control"} <= set(names)


def test_declared_statuses_that_may_be_stored_get_the_headers() -> None:
    app = FastAPI()

    @app.get("/maybe", responses={404: {"description": "Absent"}})
    @cache(ttl=60, status_codes=(200, 404))
    async def maybe() -> dict[str, int]:
        return {}

    responses = app.openapi()["paths"]["/maybe"]["get"]["responses"]
    assert set(responses["404"]["headers"]) == CACHE_HEADERS


@pytest.mark.filterwarnings("ignore:Duplicate Operation ID")  # FastAPI: one id per route
def test_get_and_head_are_documented_other_methods_are_not() -> None:
    app = FastAPI()

    @app.api_route("/both", methods=["GET", "HEAD", "POST"])
    @cache(ttl=60)
    async def both() -> dict[str, int]:
        return {}

    item = app.openapi()["paths"]["/both"]
    assert "304" in item["get"]["responses"] and "304" in item["head"]["responses"]
    assert "304" not in item["post"]["responses"]


async def test_a_custom_openapi_function_is_wrapped_by_the_lifespan() -> None:
    """FastAPI's documented customisation (``app.openapi = custom``) replaces what was
    installed when ``@cache`` was applied; the lifespan installs again, around it."""
    app = cached_app()

    def custom() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title="Custom", version="2.0", routes=app.routes)
        schema["info"]["x-logo"] = {"url": "logo.png"}
        app.openapi_schema = schema
        return schema

    app.openapi = custom  # type: ignore[method-assign]
    assert "304" not in app.openapi()["paths"]["/items"]["get"]["responses"]

    async with oxicache.lifespan()(app):
        pass
    schema = app.openapi()
    assert schema["info"]["x-logo"] == {"url": "logo.png"}  # the app's customisation stays
    assert "304" in schema["paths"]["/items"]["get"]["responses"]
    assert schema is app.openapi_schema  # still the app's cached schema, documented in place
    before = copy.deepcopy(schema)
    assert app.openapi() == before  # documenting twice adds nothing


def app_out_of_sight(prefix: str = "") -> FastAPI:
    """An app that ``@cache`` cannot see where it is applied (the router and the app live in
    dicts), without an oxicache lifespan."""
    routers = {"api": APIRouter()}

    def register() -> None:
        @routers["api"].get("/hidden")
        @cache(ttl=60)
        async def hidden() -> dict[str, int]:
            return {"n": 1}

    register()
    apps = {"main": FastAPI()}
    apps["main"].include_router(routers["api"], prefix=prefix)
    return apps["main"]


async def test_routers_out_of_sight_are_documented_from_the_first_request(client: Any) -> None:
    """The first request to a cached route installs it on the app serving it."""
    app = app_out_of_sight("/v1")
    assert "304" not in app.openapi()["paths"]["/v1/hidden"]["get"]["responses"]
    async with client(app) as c:
        assert (await c.get("/v1/hidden")).status_code == 200
    assert "304" in app.openapi()["paths"]["/v1/hidden"]["get"]["responses"]


def test_install_by_hand_for_an_app_oxicache_never_sees() -> None:
    app = app_out_of_sight()
    openapi.install(app)
    openapi.install(app)  # once is enough; twice changes nothing
    assert "304" in app.openapi()["paths"]["/hidden"]["get"]["responses"]


def test_document_from_an_own_openapi_function() -> None:
    app = cached_app(openapi=True)
    schema = openapi.document(get_openapi(title="t", version="1", routes=app.routes), app.routes)
    assert "304" in schema["paths"]["/items"]["get"]["responses"]


def test_a_route_hidden_from_the_schema_stays_hidden() -> None:
    app = FastAPI()

    @app.get("/internal", include_in_schema=False)
    @cache(ttl=60)
    async def internal() -> dict[str, int]:
        return {}

    assert "/internal" not in app.openapi()["paths"]


def test_the_option_must_be_a_flag() -> None:
    with pytest.raises(ConfigError, match="openapi must be True or False"):
        cache(ttl=60, openapi="no")  # type: ignore[call-overload]
