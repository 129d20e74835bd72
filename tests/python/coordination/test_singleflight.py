"""Single-flight: concurrent misses on one key run the handler once (docs/http.md, Backends).

Requests are sent concurrently with ``asyncio.gather`` over httpx's ASGI transport, so they
interleave on one event loop exactly as they would under an ASGI server. Each request gets its
own client: no cookie jar carries one response's ``Set-Cookie`` into another request.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Request, Response

import oxicache
from oxicache import cache

N = 50


async def fetch(
    app: Any, path: str, headers: Mapping[str, str] | None = None, method: str = "GET"
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        return await c.request(method, path, headers=headers)


async def burst(app: Any, path: str, n: int = N, **kw: Any) -> list[httpx.Response]:
    return list(await asyncio.gather(*(fetch(app, path, **kw) for _ in range(n))))


class Counter:
    """Counts handler runs; safe from the threadpool."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.n += 1
            return self.n


async def test_concurrent_misses_on_an_async_handler_run_it_once() -> None:
    """docs/http.md: concurrent misses on one key run the handler once; RFC 9111 §4 lets the waiters
    be answered from the response the leader stored."""
    app = FastAPI()
    runs = Counter()

    @app.get("/slow")
    @cache(ttl=60)
    async def slow() -> dict[str, int]:
        n = runs()
        await asyncio.sleep(0.05)
        return {"run": n}

    replies = await burst(app, "/slow")
    assert runs.n == 1
    assert {r.status_code for r in replies} == {200}
    assert {r.content for r in replies} == {b'{"run":1}'}
    assert sorted(r.headers["x-cache"] for r in replies) == ["HIT"] * (N - 1) + ["MISS"]
    assert len({r.headers["etag"] for r in replies}) == 1
    # The burst left one entry behind.
    after = await fetch(app, "/slow")
    assert after.headers["x-cache"] == "HIT" and runs.n == 1


async def test_concurrent_misses_on_a_sync_handler_run_it_once() -> None:
    """docs/http.md single-flight, for a ``def`` handler run in the threadpool."""
    app = FastAPI()
    runs = Counter()

    @app.get("/slow")
    @cache(ttl=60)
    def slow() -> dict[str, int]:
        n = runs()
        time.sleep(0.05)
        return {"run": n}

    replies = await burst(app, "/slow")
    assert runs.n == 1
    assert {r.status_code for r in replies} == {200}
    assert {r.content for r in replies} == {b'{"run":1}'}


async def test_different_keys_do_not_wait_for_each_other() -> None:
    """Single-flight is per key: distinct URLs run concurrently, each once."""
    app = FastAPI()
    runs = Counter()

    @app.get("/item/{n}")
    @cache(ttl=60)
    async def item(n: int) -> int:
        runs()
        await asyncio.sleep(0.05)
        return n

    start = time.monotonic()
    replies = await asyncio.gather(*(fetch(app, f"/item/{i % 10}") for i in range(N)))
    elapsed = time.monotonic() - start
    assert runs.n == 10
    assert [r.json() for r in replies] == [i % 10 for i in range(N)]
    assert elapsed < 0.5  # ten 50 ms handlers in parallel, not one after the other


async def test_failing_leader_lets_waiters_run_the_handler() -> None:
    """docs/http.md: a response produced while an exception propagated is not stored; the waiters
    do not receive the leader's error, they run the handler themselves (RFC 9110 §15.6.1: only
    the leader's request gets the 500)."""
    app = FastAPI()
    runs = Counter()

    @app.get("/flaky")
    @cache(ttl=60)
    async def flaky() -> dict[str, str]:
        n = runs()
        await asyncio.sleep(0.05)
        if n == 1:
            raise RuntimeError("the first call fails")
        return {"ok": "yes"}

    replies = await burst(app, "/flaky", n=20)
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] * 19 + [500]
    assert {r.content for r in replies if r.status_code == 200} == {b'{"ok":"yes"}'}
    assert runs.n >= 2
    settled = runs.n
    after = await fetch(app, "/flaky")
    assert after.status_code == 200 and after.headers["x-cache"] == "HIT"
    assert runs.n == settled


async def test_failing_sync_leader_lets_waiters_run_the_handler() -> None:
    """As above, for a ``def`` handler raising in the threadpool."""
    app = FastAPI()
    runs = Counter()

    @app.get("/flaky")
    @cache(ttl=60)
    def flaky() -> str:
        n = runs()
        time.sleep(0.05)
        if n == 1:
            raise ValueError("boom")
        return "ok"

    replies = await burst(app, "/flaky", n=10)
    assert sorted(r.status_code for r in replies) == [200] * 9 + [500]


async def test_waiters_never_get_a_response_that_was_not_stored() -> None:
    """docs/http.md / RFC 6265 §4.1: a response with Set-Cookie belongs to one client. When the
    leader's response is not storable, each waiter gets its own response, never the leader's."""
    app = FastAPI()
    runs = Counter()

    @app.get("/login")
    @cache(ttl=60)
    async def login(response: Response) -> dict[str, int]:
        n = runs()
        await asyncio.sleep(0.02)
        response.set_cookie("session", f"s{n}")
        return {"run": n}

    replies = await burst(app, "/login", n=10)
    assert runs.n == 10
    cookies = [r.headers["set-cookie"].split(";")[0] for r in replies]
    assert len(set(cookies)) == 10
    for r in replies:
        assert r.headers["set-cookie"].startswith(f"session=s{r.json()['run']};")


def current_user(request: Request) -> str:
    return request.headers.get("authorization", "anonymous")


async def test_per_user_keys_do_not_coalesce_across_users() -> None:
    """RFC 9111 §3.5: a per-user entry answers only its user, so concurrent requests of
    different users are different flights, and each user sees their own body."""
    app = FastAPI()
    runs = Counter()

    @app.get("/me")
    @cache(ttl=60)
    async def me(user: str = Depends(current_user)) -> dict[str, str]:
        runs()
        await asyncio.sleep(0.05)
        return {"user": user}

    users = [f"Bearer u{i}" for i in range(10)]
    requests = [users[i % 10] for i in range(N)]
    replies = await asyncio.gather(
        *(fetch(app, "/me", headers={"Authorization": u}) for u in requests)
    )
    assert runs.n == 10
    for user, r in zip(requests, replies, strict=True):
        assert r.status_code == 200
        assert r.json() == {"user": user}
        assert r.headers["cache-control"].startswith("private")


async def test_waiters_give_up_after_the_lock_timeout() -> None:
    """docs/http.md: waiters time out and compute for themselves rather than hang."""
    oxicache.configure(lock_timeout=0.01)
    app = FastAPI()
    runs = Counter()

    @app.get("/slow")
    @cache(ttl=60)
    async def slow() -> str:
        runs()
        await asyncio.sleep(0.2)
        return "done"

    start = time.monotonic()
    replies = await burst(app, "/slow", n=10)
    elapsed = time.monotonic() - start
    assert runs.n > 1
    assert {r.status_code for r in replies} == {200}
    assert {r.content for r in replies} == {b'"done"'}
    assert elapsed < 1.0  # the handlers overlapped; nobody waited for the 10 s default


async def test_a_cancelled_leader_does_not_leave_waiters_hanging() -> None:
    """docs/http.md: a response produced after the client disconnected is not stored, and the
    waiters of a leader that vanished do not wait for the (10 s) lock timeout."""
    app = FastAPI()
    runs = Counter()
    started = asyncio.Event()

    @app.get("/slow")
    @cache(ttl=60)
    async def slow() -> int:
        n = runs()
        if n == 1:
            started.set()
            await asyncio.sleep(10)  # cancelled below
        else:
            await asyncio.sleep(0.02)
        return n

    leader = asyncio.create_task(fetch(app, "/slow"))
    await asyncio.wait_for(started.wait(), 1)
    waiters = asyncio.gather(*(fetch(app, "/slow") for _ in range(5)))
    await asyncio.sleep(0.02)  # let the waiters queue behind the leader
    leader.cancel()
    replies = await asyncio.wait_for(waiters, 2)
    assert {r.status_code for r in replies} == {200}
    assert all(r.json() >= 2 for r in replies)


async def test_waiters_with_if_none_match_or_head_get_their_own_answer() -> None:
    """RFC 9110 §13.1.2 and §9.3.2: a waiter answered from the leader's entry still gets the
    answer its own request calls for (304, or no body for HEAD)."""
    app = FastAPI()
    runs = Counter()
    body = b'{"v":1}'

    @app.api_route("/doc", methods=["GET", "HEAD"])
    @cache(ttl=60)
    async def doc() -> dict[str, int]:
        runs()
        await asyncio.sleep(0.05)
        return {"v": 1}

    tag = oxicache._core.etag_for(body)
    leader = asyncio.create_task(fetch(app, "/doc"))
    await asyncio.sleep(0.01)
    cond, head, plain = await asyncio.gather(
        fetch(app, "/doc", headers={"If-None-Match": tag}),
        fetch(app, "/doc", method="HEAD"),
        fetch(app, "/doc"),
    )
    first = await leader
    assert runs.n == 1
    assert first.content == plain.content == body
    assert cond.status_code == 304 and cond.content == b"" and cond.headers["etag"] == tag
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(body))
