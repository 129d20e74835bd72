"""Choosing a backend: URLs, objects, ``OXICACHE_URL``, and nothing connected before use."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

import oxicache
from oxicache import config
from oxicache.backends import GuardedBackend, MemoryBackend, remote
from oxicache.exceptions import ConfigError


@pytest.fixture(autouse=True)
def _back_to_memory() -> object:
    yield None
    oxicache.configure("memory://")


@pytest.mark.parametrize(
    ("url", "kind", "where"),
    [
        ("redis://10.0.0.1:6380/2", "RedisBackend", "10.0.0.1:6380"),
        ("unix:///run/redis.sock", "RedisBackend", "/run/redis.sock"),
        ("redis+cluster://10.0.0.1:7000,10.0.0.2:7000", "RedisBackend", "cluster"),
        ("redis+sentinel://10.0.0.5:26379/cache", "RedisBackend", "service=cache"),
        ("memcached://a:11211,b:11212", "MemcachedBackend", None),
        ("dynamodb://tbl?region=eu-west-1", "DynamoDBBackend", None),
    ],
)
def test_urls_name_backends_without_connecting(url: str, kind: str, where: str | None) -> None:
    backend = remote.backend_from_url(url, prefix="app")
    assert type(backend).__name__ == kind
    assert getattr(backend, "prefix", None) == "app"
    if where is not None:
        assert where in repr(backend)


def test_memcached_and_dynamodb_urls_keep_their_parts() -> None:
    mc = remote.backend_from_url("memcached://a:11211,b:11212", prefix="p")
    assert getattr(mc, "servers", None) == [("a", 11211), ("b", 11212)]
    ddb = remote.backend_from_url("dynamodb://tbl?region=eu-west-1&endpoint_url=http://h:1")
    assert getattr(ddb, "table", None) == "tbl"


def test_memory_url_and_unknown_schemes() -> None:
    assert remote.backend_from_url("memory://") is None
    with pytest.raises(ConfigError):
        remote.backend_from_url("mongodb://x")


def test_configure_with_an_object_adopts_its_prefix_and_guards_it() -> None:
    backend = MemoryBackend(prefix="shop")
    oxicache.configure(backend, backend_timeout=0.01)
    assert config.get_settings().prefix == "shop"
    guard = remote.get_backend()
    assert isinstance(guard, GuardedBackend) and guard.backend is backend
    assert guard.timeout == 0.01
    oxicache.configure("memory://")
    assert remote.get_backend() is None


def test_configure_refuses_what_is_not_a_backend() -> None:
    with pytest.raises(ConfigError):
        oxicache.configure(object())  # type: ignore[arg-type]


def test_oxicache_url_is_read_on_first_use_not_at_import() -> None:
    """``OXICACHE_URL`` picks the backend; importing and configuring open no connection (a
    server that does not exist is never contacted until a request needs it)."""
    code = (
        "import oxicache\n"
        "from oxicache import remote\n"
        "oxicache.configure(default_ttl=5)\n"
        "g = remote.get_backend()\n"
        "print(type(g.backend).__name__, g.backend.prefix)\n"
    )
    env = {**os.environ, "OXICACHE_URL": "redis://127.0.0.1:1/0"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["RedisBackend", "oxicache"]


async def test_a_backend_nobody_listens_on_is_a_miss(client) -> None:  # type: ignore[no-untyped-def]
    """A URL pointing at a closed port: every request is answered by the app (a miss)."""
    from fastapi import FastAPI

    oxicache.configure("redis://127.0.0.1:1/0")
    app = FastAPI()
    runs: list[int] = []

    @app.get("/x")
    @oxicache.cache(ttl=60)
    async def x() -> dict[str, int]:
        runs.append(1)
        return {"n": len(runs)}

    async with client(app) as c:
        replies = [await c.get("/x") for _ in range(3)]
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert len(runs) == 3


async def test_stats_report_the_backend_and_its_breaker() -> None:
    assert oxicache.stats()["backend"] is None
    oxicache.configure(MemoryBackend(prefix="st"))
    guard = remote.get_backend()
    assert guard is not None
    await guard.set("st:k", b"v", 60)
    assert await guard.get("st:k") == b"v"
    figures = oxicache.stats()["backend"]
    assert figures["name"] == "memory" and figures["breaker"] == "closed"
    assert figures["hits"] == 1 and figures["pending_writes"] == 0


def test_breaker_settings_reach_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    oxicache.configure(
        MemoryBackend(prefix="br"), breaker_failures=3, breaker_open_after=0.2, breaker_reset=7
    )
    guard = remote.get_backend()
    assert guard is not None
    assert (guard.failure_threshold, guard.open_after, guard.reset_timeout) == (3, 0.2, 7.0)
    with pytest.raises(ConfigError):
        oxicache.configure(breaker_failures=0)
    from oxicache.settings import OxicacheSettings

    monkeypatch.setenv("OXICACHE_BREAKER_RESET", "500ms")
    monkeypatch.setenv("OXICACHE_BREAKER_FAILURES", "4")
    OxicacheSettings().apply()
    guard = remote.get_backend()
    assert guard is not None
    assert (guard.failure_threshold, guard.reset_timeout) == (4, 0.5)
    oxicache.configure(breaker_failures=5, breaker_open_after=0.05, breaker_reset=2)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("reddis://localhost:6379/0", "unknown scheme 'reddis' (did you mean redis://?)"),
        ("memcache://a:11211", "did you mean memcached://?"),
        ("redis//localhost:6379", "is not a URL"),
        ("localhost:6379", "is not a URL"),
        ("", "is not a URL"),
        ("redis://local host:6379", "is not a URL"),
        ("redis://localhost:65536/0", "'65536' is not a port"),
        ("redis://localhost:port/0", "'port' is not a port"),
        ("redis://localhost:6379/zero", "the path is the database number"),
        ("redis://a:6379,b:6379/0", "redis:// names one server"),
        ("memcached://a:11211/extra", "memcached:// takes no path"),
        ("memcached://a:11211,b:x", "'x' is not a port"),
        ("redis+cluster://h:0", "'0' is not a port"),
        ("dynamodb://table?regoin=eu-west-1", "unknown option 'regoin'"),
        ("unix://", "give the socket's path"),
        ("memory://somewhere", "memory:// takes nothing after it"),
    ],
)
def test_a_wrong_url_fails_at_configure_and_changes_nothing(url: str, message: str) -> None:
    oxicache.configure(MemoryBackend(prefix="keep"))
    before = remote.get_backend()
    with pytest.raises(ConfigError, match=re.escape(message)):
        oxicache.configure(url)
    assert remote.get_backend() is before  # the backend in force is kept


def test_a_password_in_a_wrong_url_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        oxicache.configure("redis://:hunter2@localhost:notaport/0")
    assert "hunter2" not in str(caught.value)
    assert ":***@" in str(caught.value)


def test_a_url_whose_client_is_not_installed_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "emcache" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=re.escape("pip install 'oxicache[memcached]'")):
        oxicache.configure("memcached://localhost:11211")


async def test_a_misspelt_url_never_reaches_a_request(client) -> None:  # type: ignore[no-untyped-def]
    """The mistake is raised where it was made; the app keeps answering from memory."""
    from fastapi import FastAPI

    with pytest.raises(ConfigError):
        oxicache.configure("reddis://localhost:6379/0")
    app = FastAPI()

    @app.get("/x")
    @oxicache.cache(ttl=60)
    async def x() -> dict[str, int]:
        return {"n": 1}

    async with client(app) as c:
        replies = [await c.get("/x") for _ in range(2)]
    assert [r.status_code for r in replies] == [200, 200]
    assert [r.headers["x-cache"] for r in replies] == ["MISS", "HIT"]
