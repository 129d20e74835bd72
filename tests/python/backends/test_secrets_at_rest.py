"""What reaches a backend holds no credential in clear (docs/security.md).

Routes keyed by credentials (an ``Authorization`` header, an API-key ``Header()`` parameter,
a cookie, a dependency's value) and a memoized function called with a token store entries on
every engine of the contract suite. Every key, tag and stored frame written during the run is
read back from the backend, unpacked (frames above the compression threshold are zstd), and
scanned for the secrets: none may appear. Entries carry a second digest of their canonical key,
never the key itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Cookie, Depends, FastAPI, Header

import oxicache
from oxicache import _core, cache
from oxicache.backends import Backend
from tests.python.backends.test_backend_contract import FACTORIES, _prefix

SECRETS = {
    "authorization": "Bearer authz-5ecret-7f3a",
    "api_key": "apikey-5ecret-91c2",
    "cookie": "cookie-5ecret-44d0",
    "dependency": "dep-5ecret-be21",
    "memo": "memo-5ecret-0a9e",
}


async def current_user(x_token: Annotated[str, Header()]) -> str:
    return x_token  # the token is the user's identity: a keyed dependency value


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/authz")
    @cache(ttl=60, vary=["Authorization"])
    async def authz() -> dict[str, str]:
        return {"route": "authz"}

    @app.get("/apikey")
    @cache(ttl=60)
    async def apikey(x_api_key: Annotated[str, Header()]) -> dict[str, str]:
        return {"route": "apikey", "len": str(len(x_api_key))}

    @app.get("/cookie")
    @cache(ttl=60, private=True)
    async def cookie(session: Annotated[str | None, Cookie()] = None) -> dict[str, str]:
        return {"route": "cookie"}

    @app.get("/me")
    @cache(ttl=60)
    async def me(user: Annotated[str, Depends(current_user)]) -> dict[str, str]:
        return {"route": "me", "padding": "x" * 2000}  # above the compression threshold

    return app


@cache(ttl=60)
async def lookup(token: str) -> str:
    return "looked up"


@pytest.fixture(params=list(FACTORIES))
async def recorded(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Backend, list[tuple[str, tuple[str, ...]]]]]:
    """A backend of each engine, configured, whose writes (key and tags) are recorded."""
    backend = FACTORIES[request.param](request, _prefix())
    writes: list[tuple[str, tuple[str, ...]]] = []
    original = backend.set

    async def set_recorded(key: str, value: bytes, ttl: float, tags: Any = ()) -> None:
        writes.append((key, tuple(tags)))
        await original(key, value, ttl, tags)

    backend.set = set_recorded  # type: ignore[method-assign]
    oxicache.configure(backend, backend_timeout=1.0, backend_write_timeout=2.0)
    yield backend, writes
    oxicache.configure("memory://", backend_timeout=0.005, backend_write_timeout=0.05)
    del backend.set
    await backend.clear()
    await backend.close()


async def drain() -> None:
    guard = oxicache.remote.get_backend()
    assert guard is not None
    await guard.drain()


async def test_no_credential_reaches_the_backend_in_clear(
    recorded: tuple[Backend, list[tuple[str, tuple[str, ...]]]],
) -> None:
    backend, writes = recorded
    requests: list[tuple[str, dict[str, str], dict[str, str]]] = [
        ("/authz", {"authorization": SECRETS["authorization"]}, {}),
        ("/apikey", {"x-api-key": SECRETS["api_key"]}, {}),
        ("/cookie", {}, {"session": SECRETS["cookie"]}),
        ("/me", {"x-token": SECRETS["dependency"]}, {}),
    ]
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        for path, headers, cookies in requests:
            c.cookies.clear()
            c.cookies.update(cookies)
            first = await c.get(path, headers=headers)
            await drain()
            c.cookies.clear()
            c.cookies.update(cookies)
            second = await c.get(path, headers=headers)
            assert first.status_code == second.status_code == 200, path
            assert second.headers["x-cache"] == "HIT", (path, second.headers)
    assert await lookup(SECRETS["memo"]) == await lookup(SECRETS["memo"]) == "looked up"
    await drain()

    assert len(writes) >= 5, writes
    seen = 0
    for key, tags in writes:
        frame = await backend.get(key)
        texts = [key.encode(), *(t.encode() for t in tags)]
        if frame is not None:
            texts.append(frame)
            texts.append(_core.unpack_frame(frame, 64 * 1024 * 1024))
            seen += 1
        for text in texts:
            for name, secret in SECRETS.items():
                assert secret.encode() not in text, f"{name} stored in clear under {key!r}"
                assert secret.split("-")[0].encode() + b"-5ecret" not in text
    assert seen >= 5  # the entries were there to scan
