"""Two tiers kept coherent across processes (``oxicache.coherence``): Redis pub/sub messages.

The main tests start TWO REAL server processes (``python -m uvicorn``) of one app on one
``redis-server`` and drive them over TCP with httpx: what one process invalidates or rewrites,
the other stops serving from its in-memory tier. Latencies are printed (``pytest -s``) and
bounded generously (a shared 2-core machine): the subscription's delivery latency is typically
a few milliseconds on loopback. Without a subscription, the bound is ``local_ttl``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import oxicache
from oxicache import _core, cache, config
from oxicache.backends import remote
from oxicache.backends.guard import GuardedBackend
from oxicache.coordination import coherence
from tests.python import servers as servers_mod

APP = '''
"""The app both server processes run (written by tests/python/coordination/test_coherence.py)."""
import os

from fastapi import FastAPI, Request

import oxicache
from oxicache import _log, cache, config
from oxicache.coordination import coherence

# OXICACHE_URL names the Redis; read on first use, in the running loop.
oxicache.configure(
    two_tier=True,
    local_ttl=float(os.environ["COH_LOCAL_TTL"]),
    prefix=os.environ["COH_PREFIX"],
    backend_timeout=0.5,
    backend_write_timeout=1.0,
)
app = FastAPI()
runs = {"n": 0}


@app.get("/items/{item_id}")
@cache(ttl=60)
async def item(item_id: int, request: Request) -> dict:
    runs["n"] += 1
    return {"id": item_id, "pid": os.getpid(), "run": runs["n"]}


@app.post("/invalidate")
async def invalidate(path: str) -> dict:
    await oxicache.invalidate(path=path)
    return {"ok": True}


@app.get("/stats")
async def stats() -> dict:
    return {
        "pid": os.getpid(),
        "local_entries": len(config.get_store()),
        "remote_hits": _log.counters().get("remote.hit", 0),
        "coherence": coherence.status(),
    }
'''


class Server:
    """One ``uvicorn`` process of the app, on a free port."""

    def __init__(self, app_dir: Path, redis_url: str, prefix: str, local_ttl: float) -> None:
        self.port = servers_mod.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "OXICACHE_URL": redis_url,
            "COH_PREFIX": prefix,
            "COH_LOCAL_TTL": str(local_ttl),
        }
        self.log = app_dir / f"uvicorn-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "coh_app:app",
                    "--app-dir",
                    str(app_dir),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # One Host for both, as behind a load balancer: the key includes the request's URL.
        self.http = httpx.Client(base_url=self.base, timeout=10.0, headers={"Host": "app.test"})

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if self.http.get("/stats").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready: {self.log.read_text()[-2000:]}")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get("/stats").json()
        return data

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _until(predicate: Any, timeout: float, what: str, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


@pytest.fixture
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A factory: ``pair(local_ttl)`` starts processes A and B of the app, and the prefix."""
    redis = request.getfixturevalue("redis_server")
    (tmp_path / "coh_app.py").write_text(textwrap.dedent(APP))
    started: list[Server] = []

    def make(local_ttl: float) -> tuple[Server, Server, str]:
        prefix = f"coh{uuid.uuid4().hex[:8]}"
        a = Server(tmp_path, redis.url, prefix, local_ttl)
        b = Server(tmp_path, redis.url, prefix, local_ttl)
        started.extend([a, b])
        a.wait_ready()
        b.wait_ready()
        return a, b, prefix

    try:
        yield make
    finally:
        for server in started:
            server.stop()


def _redis_keys(port: int, prefix: str) -> list[bytes]:
    keys: list[bytes] = servers_mod.resp_command(port, "KEYS", f"{prefix}:default:*")
    return [k for k in keys if not k.endswith(b":lock")]  # (locks of distributed_flight)


def _warm(a: Server, b: Server, redis_port: int, prefix: str, path: str) -> dict[str, Any]:
    """A computes ``path`` and writes it; B reads it from Redis; both then hit locally.
    Returns the body both serve."""
    first = a.get(path)
    assert first.headers["x-cache"] == "MISS"
    _until(lambda: _redis_keys(redis_port, prefix), 5, "A's entry in Redis")
    before = b.stats()["remote_hits"]
    remote_hit = b.get(path)
    assert remote_hit.headers["x-cache"] == "HIT"
    assert remote_hit.json() == first.json()  # A's entry, read from Redis
    assert b.stats()["remote_hits"] == before + 1
    local = b.get(path)
    assert local.headers["x-cache"] == "HIT" and local.json() == first.json()
    assert b.stats()["remote_hits"] == before + 1, "B's second hit must be local"
    again = a.get(path)
    assert again.headers["x-cache"] == "HIT" and a.stats()["remote_hits"] == 0  # local in A
    for s in (a, b):
        _until(lambda s=s: s.stats()["coherence"]["subscribed"], 10, "subscription")
    body: dict[str, Any] = first.json()
    return body


def _poll_until_changed(b: Server, path: str, old: dict[str, Any], timeout: float) -> tuple:
    """Polls B until it stops answering ``old`` from memory; (seconds, response, stale seen)."""
    start = time.perf_counter()
    stale = 0
    while True:
        reply = b.get(path)
        if reply.headers["x-cache"] != "HIT" or reply.json() != old:
            return time.perf_counter() - start, reply, stale
        stale += 1
        if time.perf_counter() - start > timeout:
            raise AssertionError(f"B still serves the old entry after {timeout} s")
        time.sleep(0.002)


def test_invalidation_reaches_the_other_process(pair: Any, redis_server: Any) -> None:
    a, b, prefix = pair(5.0)
    old = _warm(a, b, redis_server.port, prefix, "/items/1")

    t0 = time.perf_counter()
    assert a.http.post("/invalidate", params={"path": "/items/1"}).status_code == 200
    posted = time.perf_counter() - t0
    seconds, reply, _ = _poll_until_changed(b, "/items/1", old, timeout=5.0)
    assert reply.headers["x-cache"] == "MISS"
    assert reply.json()["pid"] == b.proc.pid  # B recomputed: the entry was gone everywhere
    a_stats, b_stats = a.stats()["coherence"], b.stats()["coherence"]
    delivery = b_stats["last_applied"] - a_stats["last_published"]
    print(
        f"\ncoherence: invalidation POST took {posted * 1000:.1f} ms; B saw it"
        f" {seconds * 1000:.1f} ms after the POST returned;"
        f" pub/sub delivery {delivery * 1000:.2f} ms"
    )
    assert seconds < 1.0
    assert 0 <= delivery < 1.0
    assert b_stats["applied"] >= 1 and a_stats["published"] >= 1
    assert a.get("/items/1").json() == reply.json()  # A reads B's new entry (or its own hit)


def test_overwrite_reaches_the_other_process(pair: Any, redis_server: Any) -> None:
    """A rewrites the entry (a request with ``Cache-Control: no-cache`` runs the handler and
    stores the new response): B drops its copy and serves A's new value, from Redis."""
    a, b, prefix = pair(5.0)
    old = _warm(a, b, redis_server.port, prefix, "/items/2")

    fresh = a.get("/items/2", headers={"Cache-Control": "no-cache"})
    assert fresh.headers["x-cache"] == "MISS" and fresh.json()["run"] == old["run"] + 1
    seconds, reply, _ = _poll_until_changed(b, "/items/2", old, timeout=5.0)
    print(f"\ncoherence: overwrite seen by B {seconds * 1000:.1f} ms after A answered")
    assert reply.json() == fresh.json()  # A's new value, not a recomputation in B
    assert reply.headers["x-cache"] == "HIT"
    assert seconds < 1.0


def test_without_subscription_local_ttl_bounds_staleness(pair: Any, redis_server: Any) -> None:
    """The subscription is cut (``CLIENT KILL TYPE pubsub``) and kept down (the ``default``
    user loses its channels, so re-subscribing and publishing fail): the invalidation message
    is lost, B keeps its copy, and converges when the copy's ``local_ttl`` (2 s) ends."""
    port = redis_server.port
    a, b, prefix = pair(2.0)
    old = _warm(a, b, port, prefix, "/items/3")
    # Wait for B to renew its copy from Redis (its previous one ended): then we know when the
    # copy was taken, to within a poll, and that it has the whole local_ttl ahead.
    hits = b.stats()["remote_hits"]
    _until(lambda: b.get("/items/3") and b.stats()["remote_hits"] > hits, 5, "a new copy")
    warmed = time.perf_counter()  # B's copy lives until ~warmed + 2
    try:
        servers_mod.resp_command(port, "ACL", "SETUSER", "default", "resetchannels")
        servers_mod.resp_command(port, "CLIENT", "KILL", "TYPE", "pubsub")
        _until(lambda: not b.stats()["coherence"]["subscribed"], 5, "B's subscription down")
        assert a.http.post("/invalidate", params={"path": "/items/3"}).status_code == 200
        invalidated = time.perf_counter()
        seconds, reply, stale = _poll_until_changed(b, "/items/3", old, timeout=5.0)
        total = time.perf_counter() - warmed
    finally:
        servers_mod.resp_command(port, "ACL", "SETUSER", "default", "allchannels")
    print(
        f"\ncoherence: no subscription: B served the invalidated entry {stale} more times,"
        f" converged {seconds * 1000:.0f} ms after the invalidation,"
        f" {total * 1000:.0f} ms after taking its copy (local_ttl 2000 ms)"
    )
    assert stale >= 1, "the message should have been lost: B kept serving its copy"
    assert reply.headers["x-cache"] == "MISS"
    assert 2.0 - 0.25 < total < 2.0 + 0.75  # local_ttl ended it (polling, a loaded machine)
    assert seconds <= total
    assert invalidated - warmed < 2.0
    # Once channels are allowed again, B subscribes again (and drops its local copies).
    _until(lambda: b.stats()["coherence"]["subscribed"], 15, "B subscribed again")
    assert b.stats()["coherence"]["resyncs"] >= 1


# --- in one process: the messages and what they drop ---------------------------------------


@pytest.fixture
async def two_tier_redis(redis_server: Any) -> Any:
    from oxicache.backends.redis import RedisBackend

    b = RedisBackend(redis_server.url, prefix=f"t{uuid.uuid4().hex[:8]}")
    oxicache.configure(b, backend_timeout=2.0, backend_write_timeout=5.0, two_tier=True)
    yield b
    await coherence.stop()
    guard = remote.get_backend()
    if guard is not None:
        await guard.drain()
    oxicache.configure("memory://")
    await b.clear()
    await b.close()


async def test_messages_drop_the_local_copies(two_tier_redis: Any, client: Any, monkeypatch):
    keys: list[str] = []
    original = GuardedBackend.set_later

    def recording(self: GuardedBackend, key: str, *args: Any, **kwargs: Any) -> bool:
        keys.append(key)
        return original(self, key, *args, **kwargs)

    monkeypatch.setattr(GuardedBackend, "set_later", recording)
    app = FastAPI()

    @app.get("/things/{n}")
    @cache(ttl=60, namespace="things")
    async def thing(n: int) -> dict[str, int]:
        return {"n": n}

    prefix = config.get_settings().prefix
    store = config.get_store()
    async with client(app) as c:

        async def fill() -> None:
            for n in (1, 2):
                await c.get(f"/things/{n}")
            assert len(store) == 2

        await fill()
        assert coherence.apply_message("k", keys[0], prefix)
        assert len(store) == 1
        assert coherence.apply_message("t", _core.path_tag_of(b"/things/2"), prefix)
        assert len(store) == 0
        store.clear()
        await fill()
        route = keys[0].split(":")[2]
        assert coherence.apply_message("p", f"{prefix}:things:{route}:", prefix)
        assert len(store) == 0
        await fill()
        assert coherence.apply_message("p", f"{prefix}:other:", prefix) and len(store) == 2
        assert coherence.apply_message("p", f"{prefix}:things:", prefix) and len(store) == 0
        await fill()
        assert coherence.apply_message("c", "", prefix) and len(store) == 0
        for bad in [("k", "x"), ("k", "other:a:b:" + "0" * 64), ("t", "ns:x"), ("z", "")]:
            assert not coherence.apply_message(*bad, prefix)
    status = coherence.status()
    assert status["running"] and status["channel"] == f"{prefix}:oxicache:inval"


def _pubsub_backend(request: pytest.FixtureRequest, kind: str) -> Any:
    from oxicache.backends.redis import RedisBackend

    prefix = f"t{uuid.uuid4().hex[:8]}"
    if kind == "redis-cluster":
        cluster = request.getfixturevalue("redis_cluster")
        return RedisBackend.cluster(cluster.startup_nodes, prefix=prefix)
    if kind == "redis-sentinel":
        setup = request.getfixturevalue("redis_sentinel")
        return RedisBackend.sentinel(
            setup.sentinels, service_name=setup.service_name, prefix=prefix
        )
    return RedisBackend(request.getfixturevalue("redis_server").url, prefix=prefix)


@pytest.mark.parametrize("kind", ["redis", "redis-cluster", "redis-sentinel"])
async def test_publish_and_subscribe(request: pytest.FixtureRequest, kind: str) -> None:
    """The same on standalone, Cluster (PUBLISH broadcast by the cluster bus; a second
    backend object, so publisher and subscriber share no connection) and Sentinel."""
    import asyncio

    listener = _pubsub_backend(request, kind)
    speaker = _pubsub_backend(request, kind)
    name = "chan-" + listener.prefix
    got: list[bytes | None] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async for item in listener.subscribe(name):
            got.append(item)
            ready.set()
            if len(got) == 3:
                return

    task = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(ready.wait(), 10)
        assert got == [None]
        await speaker.publish(name, "hello")
        await speaker.publish(name, b"k key")
        await asyncio.wait_for(task, 10)
    finally:
        task.cancel()
        await listener.close()
        await speaker.close()
    assert got == [None, b"hello", b"k key"]


def test_memory_store_remove_digest_and_path_hash() -> None:
    store = _core.MemoryStore()
    assert store.remove_digest("ab" * 32) is False
    with pytest.raises(oxicache.ConfigError):
        store.remove_digest("xyz")
    with pytest.raises(oxicache.ConfigError):
        store.invalidate(path_hash="path:nothex")
    for bad in ("ab" * 31, "zz" * 32, "ab" * 33):
        with pytest.raises(oxicache.ConfigError):
            store.remove_digest(bad)
    for bad in ("path:+000000000000000", "ff", "path:" + "0" * 17):
        with pytest.raises(oxicache.ConfigError):
            store.invalidate(path_hash=bad)
    store.invalidate(path_hash=_core.path_tag_of(b"/a"))  # nothing stored: no effect
    store.invalidate(path_hash="00000000000000FF")  # without "path:", either case
    store.invalidate(path_hash=12345)


async def test_path_hash_and_digest_remove_what_they_name(client: Any) -> None:
    """In memory: ``invalidate(path_hash=...)`` drops the entries of that path only, and
    ``remove_digest`` the entry of that key digest."""
    app = FastAPI()

    @app.get("/p/{n}")
    @cache(ttl=60)
    async def p(n: int) -> dict[str, int]:
        return {"n": n}

    store = config.get_store()
    async with client(app) as c:
        for n in (1, 2, 3):
            await c.get(f"/p/{n}")
        assert len(store) == 3
        store.invalidate(path_hash=_core.path_tag_of(b"/p/1").upper().replace("PATH:", ""))
        assert len(store) == 2
        tag = int(_core.path_tag_of(b"/p/2").removeprefix("path:"), 16)
        store.invalidate(path_hash=tag, path=b"/p/3")  # two different paths: nothing matches
        assert len(store) == 2
        store.invalidate(path_hash=tag)
        assert len(store) == 1
        assert (await c.get("/p/3")).headers["x-cache"] == "HIT"
