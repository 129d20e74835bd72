"""``CacheMiddleware`` in front of a Litestar app (issue 5: "FastAPI, Starlette, Litestar, plain
ASGI"), over HTTP: Litestar's own middleware list and wrapping the app both work, responses are
cached as their headers allow (RFC 9111 §3), and credentials are never answered from a shared
entry (RFC 9111 §3.5, docs/http.md)."""

from __future__ import annotations

from typing import Any

import pytest

litestar = pytest.importorskip("litestar")

from litestar import Litestar, Request, Response, get  # noqa: E402
from litestar.middleware import DefineMiddleware  # noqa: E402

from oxicache import CacheMiddleware  # noqa: E402


def make_app(runs: list[str], *, wrap: bool) -> Any:
    @get("/items")
    async def items() -> Response[dict[str, int]]:
        runs.append("items")
        return Response({"n": len(runs)}, headers={"Cache-Control": "max-age=60"})

    @get("/me")
    async def me(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
        runs.append("me")
        token = request.headers.get("authorization")
        if token is None:
            return Response({"error": "no token"}, status_code=401)
        return Response({"user": token}, headers={"Cache-Control": "max-age=60"})

    if wrap:
        return CacheMiddleware(Litestar(route_handlers=[items, me]))
    return Litestar(route_handlers=[items, me], middleware=[DefineMiddleware(CacheMiddleware)])


@pytest.mark.parametrize("wrap", [False, True], ids=["litestar-middleware", "wrapped"])
async def test_litestar_responses_are_cached_as_their_headers_allow(
    client: Any, wrap: bool
) -> None:
    runs: list[str] = []
    async with client(make_app(runs, wrap=wrap)) as c:
        first = await c.get("/items")
        second = await c.get("/items")
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert second.json() == first.json() and runs == ["items"]
    assert "age" in second.headers


@pytest.mark.parametrize("wrap", [False, True], ids=["litestar-middleware", "wrapped"])
async def test_litestar_credentials_are_never_shared(client: Any, wrap: bool) -> None:
    """RFC 9111 §3.5: alice's 200 is not stored in the shared cache; a request without a token
    gets the app's 401 every time."""
    runs: list[str] = []
    async with client(make_app(runs, wrap=wrap)) as c:
        alice = await c.get("/me", headers={"Authorization": "alice"})
        anon = [await c.get("/me") for _ in range(2)]
        bob = await c.get("/me", headers={"Authorization": "bob"})
    assert alice.json() == {"user": "alice"}
    assert alice.headers["x-cache"] == "BYPASS"
    assert [r.status_code for r in anon] == [401, 401]
    assert bob.json() == {"user": "bob"}
    assert runs.count("me") == 4
