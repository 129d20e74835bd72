"""``CacheMiddleware`` on every backend (real servers): remote-only and two tiers.

"Another process" is simulated where it matters: the middleware's memory is emptied
(``config.get_store().clear()``), so only the backend is shared. The multi-process proofs
(``uvicorn --workers``) are in ``tests/python/coordination/test_distributed_flight.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

import oxicache
from oxicache import CacheMiddleware, config
from oxicache.backends.guard import GuardedBackend
from oxicache.exceptions import ConfigError
from tests.python.backends.test_remote import configured, settle

#: Every engine the middleware runs on: the contract suite's factories.
ENGINES = ("dynamodb", "memcached", "memory", "redis", "redis-cluster", "redis-sentinel")


@pytest.fixture(params=ENGINES)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    async for b in configured(request):
        yield b


def another_process() -> None:
    """Nothing in this process's memory: only the backend is shared."""
    config.get_store().clear()


def app_with(runs: list[str], **middleware: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> Response:
        runs.append(f"item {item_id}")
        return Response(
            f'{{"id": {item_id}, "run": {len(runs)}}}',
            media_type="application/json",
            headers={"cache-control": "max-age=60", "etag": f'"v{len(runs)}"'},
        )

    @app.get("/lang")
    async def lang(request: Request) -> Response:
        runs.append("lang")
        value = request.headers.get("accept-language", "none")
        return Response(
            f"hello in {value}",
            headers={"cache-control": "max-age=60", "vary": "Accept-Language"},
        )

    @app.post("/items/{item_id}")
    async def update(item_id: int) -> dict[str, bool]:
        runs.append(f"update {item_id}")
        return {"ok": True}

    @app.get("/short")
    async def short() -> Response:
        runs.append("short")
        return Response(
            f"v{len(runs)}",
            headers={"cache-control": "max-age=1", "etag": f'"s{len(runs)}"'},
        )

    app.add_middleware(CacheMiddleware, **middleware)
    return app


async def test_the_configured_backend_is_used_by_default(backend, client) -> None:
    """``configure(backend)`` then ``add_middleware(CacheMiddleware)`` is the whole set-up: a
    second process answers from the entry the first stored, without the app."""
    runs: list[str] = []
    async with client(app_with(runs)) as c:
        first = await c.get("/items/1")
        await settle()
        another_process()
        second = await c.get("/items/1")
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT", second.headers
    assert second.content == first.content and runs == ["item 1"]
    assert second.headers["etag"] == first.headers["etag"]
    # RFC 9111 §5.1: the age is the entry's, computed from what the backend kept.
    assert int(second.headers["age"]) >= 0
    assert "cache-status" in second.headers and "hit" in second.headers["cache-status"]


async def test_variants_under_vary_are_shared(backend, client) -> None:
    """RFC 9111 §4.1: several variants of one URL, each answered to its own requests only,
    from the backend (a variants index beside one entry per variant)."""
    runs: list[str] = []
    async with client(app_with(runs)) as c:
        en = await c.get("/lang", headers={"accept-language": "en"})
        await settle()
        fr = await c.get("/lang", headers={"accept-language": "fr"})
        await settle()
        another_process()
        en2 = await c.get("/lang", headers={"accept-language": "en"})
        fr2 = await c.get("/lang", headers={"accept-language": "fr"})
        de = await c.get("/lang", headers={"accept-language": "de"})
    assert (en.text, fr.text) == ("hello in en", "hello in fr")
    assert en2.headers["x-cache"] == "HIT" and en2.text == "hello in en"
    assert fr2.headers["x-cache"] == "HIT" and fr2.text == "hello in fr"
    assert de.headers["x-cache"] == "MISS" and de.text == "hello in de"
    assert runs == ["lang", "lang", "lang"]


async def test_the_variants_of_one_url_in_the_backend_are_bounded(backend, client) -> None:
    """Requests that send ever new values for a ``Vary`` field (an attacker's way to fill a
    shared cache with one URL) store at most ``max_variants`` variants of that URL in the
    backend: each takes one of that many slots. Variants sharing a slot replace each other,
    and a request is never answered with another variant's response (RFC 9111 §4.1)."""
    runs: list[str] = []
    languages = [f"x-{i}" for i in range(24)]
    app = app_with(runs, max_variants=3)
    async with client(app) as c:
        for lang in languages:
            first = await c.get("/lang", headers={"accept-language": lang})
            assert first.text == f"hello in {lang}"
            await settle()
        another_process()
        # RFC 9111 §5.2.1.7: only-if-cached reads without storing (a miss is a 504), so the
        # probe does not move the variants it counts.
        probe = {"cache-control": "only-if-cached"}
        again = [
            await c.get("/lang", headers={"accept-language": lang, **probe}) for lang in languages
        ]
    hits = [lang for r, lang in zip(again, languages, strict=True) if r.status_code == 200]
    assert all(r.status_code == 504 for r in again if r.status_code != 200)
    assert all(
        r.text == f"hello in {lang}"
        for r, lang in zip(again, languages, strict=True)
        if lang in hits
    )
    assert 1 <= len(hits) <= 3, hits  # the last variant written to each slot, at most 3
    assert languages[-1] in hits  # the last one written took its slot
    assert runs == ["lang"] * len(languages)
    # A cold burst: concurrent requests that each find no index write one each, under new
    # stamps. Still no more keys for the URL: the slots do not depend on the stamp.
    async with client(app) as c:
        another_process()
        burst = [f"y-{i}" for i in range(12)]
        got = await asyncio.gather(
            *(c.get("/lang", headers={"accept-language": lang}) for lang in burst)
        )
        assert [r.text for r in got] == [f"hello in {lang}" for lang in burst]
        await settle()
    if hasattr(backend, "scan"):  # Redis: what the backend holds for the URL, counted
        keys = [k for batch in [b async for b in backend.scan(backend.prefix)] for k, _ in batch]
        entries = [k for k in keys if ":middleware:" in k]
        assert len({k.rsplit(":", 1)[0] for k in entries}) == 1  # one app, one URL
        assert 2 <= len(entries) <= 1 + 3, entries  # the variants index and three slots


async def test_a_cold_burst_of_variants_leaves_every_variant_reachable(backend, client) -> None:
    """Concurrent first requests for one URL with different values of its ``Vary`` field: the
    first runs the app, the others wait for it, then run the app for their own variant. They
    join the variants index the first one wrote (read after its write has ended) instead of
    each writing an index of its own, which would leave only the last one's variant
    reachable (RFC 9111 §4.1: each variant answers its own requests, from every process)."""
    runs: list[str] = []
    app = FastAPI()

    @app.get("/slow-lang")
    async def slow_lang(request: Request) -> Response:
        value = request.headers.get("accept-language", "none")
        runs.append(value)
        await asyncio.sleep(0.2)  # so that the burst waits for the first request
        return Response(
            f"hello in {value}",
            headers={"cache-control": "max-age=60", "vary": "Accept-Language"},
        )

    # Slots many enough that concurrent writers do not share one (that is the bound's test)
    app.add_middleware(CacheMiddleware, max_variants=65_536)
    languages = [f"z-{i}" for i in range(8)]
    async with client(app) as c:
        got = await asyncio.gather(
            *(c.get("/slow-lang", headers={"accept-language": lang}) for lang in languages)
        )
        assert [r.text for r in got] == [f"hello in {lang}" for lang in languages]
        await settle()
        another_process()
        probe = {"cache-control": "only-if-cached"}
        again = [
            await c.get("/slow-lang", headers={"accept-language": lang, **probe})
            for lang in languages
        ]
    assert [(r.status_code, r.text) for r in again] == [
        (200, f"hello in {lang}") for lang in languages
    ]
    assert sorted(runs) == sorted(languages)


async def test_max_variants_must_be_a_whole_number_of_at_least_one() -> None:
    for wrong in (0, -1, 2.5, True, "8", 65_537, 2**64):
        with pytest.raises(ConfigError, match="max_variants"):
            CacheMiddleware(FastAPI(), max_variants=wrong)  # type: ignore[arg-type]


async def test_conditional_requests_are_answered_from_the_backend(backend, client) -> None:
    """RFC 9110 §13.1.2: a client's If-None-Match matching the shared entry gets a 304."""
    runs: list[str] = []
    async with client(app_with(runs)) as c:
        first = await c.get("/items/5")
        await settle()
        another_process()
        again = await c.get("/items/5", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert runs == ["item 5"]


async def test_an_unsafe_method_invalidates_for_every_process(backend, client) -> None:
    """RFC 9111 §4.4: a successful POST to a URL drops its entry in the backend, so another
    process (which never saw the POST) misses too."""
    runs: list[str] = []
    async with client(app_with(runs)) as c:
        await c.get("/items/2")
        await settle()
        assert (await c.post("/items/2")).status_code == 200
        another_process()
        again = await c.get("/items/2")
    assert again.headers["x-cache"] == "MISS"
    assert runs == ["item 2", "update 2", "item 2"]


async def test_invalidate_by_path_reaches_middleware_entries(backend, client) -> None:
    """``oxicache.invalidate(path=...)`` drops the middleware's entries for that path in the
    backend (they carry the path's tag)."""
    runs: list[str] = []
    async with client(app_with(runs)) as c:
        await c.get("/items/3")
        await settle()
        await oxicache.invalidate(path="/items/3")
        another_process()
        again = await c.get("/items/3")
    assert again.headers["x-cache"] == "MISS" and runs == ["item 3", "item 3"]


async def test_a_stale_entry_is_revalidated_with_its_validator(backend, client, clock) -> None:
    """RFC 9111 §4.3.1: a stale entry read from the backend is revalidated with its ETag; the
    app's 304 freshens it (§4.3.4) and the client gets the stored body."""
    runs: list[str] = []
    app = FastAPI()

    @app.get("/doc")
    async def doc(request: Request) -> Response:
        runs.append(request.headers.get("if-none-match", "-"))
        if request.headers.get("if-none-match") == '"d1"':
            return Response(status_code=304, headers={"etag": '"d1"', "cache-control": "max-age=1"})
        return Response("body", headers={"etag": '"d1"', "cache-control": "max-age=1"})

    app.add_middleware(CacheMiddleware)
    async with client(app) as c:
        await c.get("/doc")
        await settle()
        another_process()
        clock.advance(5)
        again = await c.get("/doc")
    assert runs == ["-", '"d1"']
    assert again.status_code == 200 and again.text == "body"


async def test_a_foreign_frame_is_a_miss_and_is_overwritten(backend, client) -> None:
    """Bytes another program left under the key are never served: a miss, then the entry."""
    runs: list[str] = []
    async with client(app_with(runs)) as c:
        await c.get("/items/4")
        await settle()
        for key in list(_written):  # the keys the middleware wrote
            await backend.set(key, b"not an oxicache entry", 60)
        another_process()
        miss = await c.get("/items/4")
        await settle()
        another_process()
        hit = await c.get("/items/4")
    assert miss.status_code == 200 and miss.headers["x-cache"] == "MISS"
    assert hit.headers["x-cache"] == "HIT"
    assert runs == ["item 4", "item 4"]


#: The backend keys written through the guard in the current test (``record_writes``).
_written: list[str] = []


@pytest.fixture(autouse=True)
def record_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records the keys written through the guard (to overwrite them with foreign bytes)."""
    _written.clear()
    original = GuardedBackend.set_later

    def set_later(self: GuardedBackend, key: str, *args: Any, **kwargs: Any) -> bool:
        _written.append(key)
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(GuardedBackend, "set_later", set_later)


async def test_two_tiers_answer_from_memory_then_the_backend(backend, client) -> None:
    oxicache.configure(two_tier=True, local_ttl=30)
    runs: list[str] = []
    async with client(app_with(runs)) as c:
        await c.get("/items/6")
        await settle()
        local = await c.get("/items/6")
        await backend.clear()  # another process's invalidation, no message on this engine
        still_local = await c.get("/items/6")
        another_process()
        gone = await c.get("/items/6")
    assert local.headers["x-cache"] == "HIT"
    assert still_local.headers["x-cache"] == "HIT"  # bounded by local_ttl
    assert gone.headers["x-cache"] == "MISS"
    assert runs == ["item 6", "item 6"]


async def test_remote_only_never_answers_from_memory(backend, client) -> None:
    """Without two tiers, an entry dropped from the backend by any process is gone at once."""
    runs: list[str] = []
    async with client(app_with(runs)) as c:
        await c.get("/items/7")
        await settle()
        assert (await c.get("/items/7")).headers["x-cache"] == "HIT"
        await backend.clear()
        again = await c.get("/items/7")
    assert again.headers["x-cache"] == "MISS" and runs == ["item 7", "item 7"]


async def test_backend_argument_overrides_the_configured_one(backend, client) -> None:
    """``backend="memory://"`` keeps this middleware's entries in this process."""
    runs: list[str] = []
    async with client(app_with(runs, backend="memory://")) as c:
        await c.get("/items/8")
        another_process()
        again = await c.get("/items/8")
    assert again.headers["x-cache"] == "MISS" and runs == ["item 8", "item 8"]


async def test_a_backend_that_is_down_is_a_miss(client) -> None:
    """Nothing listens there: every request is answered by the app, never an error page."""
    oxicache.configure("redis://127.0.0.1:9/0", backend_timeout=0.05)
    runs: list[str] = []
    async with client(app_with(runs)) as c:
        answers = [await c.get("/items/9") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len(runs) == 3


def test_a_misspelled_backend_fails_when_the_middleware_is_built() -> None:
    with pytest.raises(ConfigError, match="did you mean redis://"):
        CacheMiddleware(FastAPI(), backend="reddis://localhost:6379/0")
    with pytest.raises(ConfigError, match="backend must be a URL or a backend object"):
        CacheMiddleware(FastAPI(), backend=42)  # type: ignore[arg-type]


class Entered:
    """A pure ASGI middleware inside ``CacheMiddleware``: counts the requests that reach the
    app (FastAPI's routing and dependencies) at all."""

    count = 0

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            Entered.count += 1
        await self.app(scope, receive, send)


async def test_shareable_decorated_hits_never_enter_fastapi(backend, client) -> None:
    """With CacheMiddleware in front, a shareable ``@cache`` response is stored by the
    middleware too, on the configured backend: its hits are answered before routing. A route
    keyed per user says ``private`` (RFC 9111 §5.2.2.7) and stays with the decorator."""
    from fastapi import Header

    from oxicache import cache

    app = FastAPI()
    runs: list[str] = []

    @app.get("/public")
    @cache(ttl=60)
    async def public() -> dict[str, str]:
        runs.append("public")
        return {"kind": "public"}

    @app.get("/mine")
    @cache(ttl=60, per_user=True)
    async def mine(authorization: str = Header("")) -> dict[str, str]:
        runs.append("mine")
        return {"kind": "mine"}

    app.add_middleware(Entered)
    app.add_middleware(CacheMiddleware)
    Entered.count = 0
    async with client(app) as c:
        first = await c.get("/public")
        await settle()
        another_process()
        entered = Entered.count
        hits = [await c.get("/public") for _ in range(3)]
        assert Entered.count == entered  # none of them reached FastAPI
        mine_1 = await c.get("/mine")
        await settle()
        mine_2 = await c.get("/mine")
    assert first.headers["x-cache"] == "MISS"
    assert all(h.headers["x-cache"] == "HIT" for h in hits) and runs.count("public") == 1
    assert "private" in mine_1.headers["cache-control"]
    # The decorator answered it (after routing, from its entry: the handler ran once); the
    # middleware passed it on unstored and labels its own outcome.
    assert runs.count("mine") == 1 and "age" in mine_2.headers
    assert "detail=private" in mine_2.headers["cache-status"]
    assert Entered.count == entered + 2


async def test_an_app_cannot_forge_the_entrys_own_facts(backend, client) -> None:
    """Fields named like the frame's pseudo-fields (``:cc``, ``:rt``: not field names, RFC
    9110 §5.1) are never stored, so a response cannot stretch its own freshness in the
    backend: the entry follows the response's real ``Cache-Control``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"cache-control", b"max-age=1"),
                    (b":cc", b"max-age=99999"),
                    (b":rt", b"0"),
                    (b"content-length", b"2"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    async with client(CacheMiddleware(app)) as c:
        first = await c.get("/x")
        await settle()
        another_process()
        hit = await c.get("/x")
    assert first.status_code == hit.status_code == 200
    assert hit.headers["x-cache"] == "HIT"
    assert ":cc" not in hit.headers and ":rt" not in hit.headers
    assert "max-age=1" in hit.headers["cache-control"]


async def test_an_unsafe_request_deletes_its_uris_keys_and_scans_nothing(
    backend, client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 9111 §4.4 costs one delete per key of the target URI, never a scan or a tag walk:
    a POST to a path that was never cached does not make the backend look for entries."""
    calls: list[str] = []
    for name in ("delete", "delete_tag", "delete_prefix"):
        original = getattr(GuardedBackend, name)

        def recorded(self: GuardedBackend, arg: str, _n: str = name, _o: Any = original) -> Any:
            calls.append(_n)
            return _o(self, arg)

        monkeypatch.setattr(GuardedBackend, name, recorded)
    runs: list[str] = []
    async with client(app_with(runs)) as c:
        assert (await c.post("/items/77")).status_code == 200
    assert calls and set(calls) == {"delete"}, calls


async def test_a_frame_this_middleware_would_not_store_is_not_served(backend, client) -> None:
    """A frame is judged again when read (a backend others can write to): a middleware whose
    ``statuses`` exclude the stored status misses on it."""
    runs: list[str] = []

    def app(statuses: Any) -> FastAPI:
        built = FastAPI()

        @built.get("/thing")
        async def thing() -> Response:
            runs.append("thing")
            return Response("x", headers={"cache-control": "max-age=60"})

        built.add_middleware(CacheMiddleware, namespace="one-app", statuses=statuses)
        return built

    async with client(app([200])) as c:
        await c.get("/thing")
        await settle()
    another_process()
    async with client(app([203])) as c:
        other = await c.get("/thing")
    assert other.headers["x-cache"] == "MISS" and runs == ["thing", "thing"]


async def test_a_request_without_host_is_invalidated_too() -> None:
    """HTTP/1.0 requests may omit ``Host``: their entry is keyed without one, and a
    successful unsafe request without one invalidates it (RFC 9111 §4.4)."""
    runs: list[str] = []

    async def origin(scope: Any, receive: Any, send: Any) -> None:
        runs.append(scope["method"])
        headers = [(b"cache-control", b"max-age=60"), (b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = CacheMiddleware(origin)

    async def call(method: str) -> list[tuple[bytes, bytes]]:
        sent: list[Any] = []

        async def receive() -> Any:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "http_version": "1.0",
            "method": method,
            "scheme": "http",
            "path": "/old",
            "raw_path": b"/old",
            "query_string": b"",
            "headers": [],
        }
        await middleware(scope, receive, send)
        return list(sent[0]["headers"])

    def label(headers: list[tuple[bytes, bytes]]) -> bytes:
        return dict(headers)[b"x-cache"]

    assert label(await call("GET")) == b"MISS"
    assert label(await call("GET")) == b"HIT"
    await call("POST")
    assert label(await call("GET")) == b"MISS"
    assert runs == ["GET", "POST", "GET"]


async def test_cache_status_says_stored_only_when_the_write_goes_ahead(client) -> None:
    """RFC 9211 §2.7: a response whose entry the backend will not take (over its item size)
    is not labelled ``stored``; the reason is given, and nothing is served from it after."""
    from oxicache.backends.memory import MemoryBackend

    oxicache.configure(MemoryBackend(prefix="small", max_item_size=64), backend_timeout=2.0)
    runs: list[str] = []
    async with client(app_with(runs)) as c:
        first = await c.get("/items/1")
        another_process()
        again = await c.get("/items/1")
    status = first.headers["cache-status"]
    assert "stored" not in status and "detail=backend-too-large" in status, status
    assert again.headers["x-cache"] == "MISS" and runs == ["item 1", "item 1"]
