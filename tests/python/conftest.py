"""Shared fixtures: a clean cache per test, a movable clock, an HTTP client for an app, and
real servers (Redis, Redis Cluster, Sentinel, memcached, DynamoDB via moto) for the backends."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

import oxicache
from oxicache import _log, config
from tests.python import servers as servers_mod

# --- short failure reports ---------------------------------------------------------------------

#: A failing test's captured stdout, stderr and log are cut to their last lines in the report:
#: a load test can capture tens of thousands of lines, which would bury the failure itself.
REPORT_TAIL_LINES = 40


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        report.sections = [(title, _tail(text)) for title, text in report.sections]
    return report


def _tail(text: str, keep: int = REPORT_TAIL_LINES) -> str:
    lines = text.splitlines()
    if len(lines) <= keep:
        return text
    return f"({len(lines) - keep} earlier lines cut)\n" + "\n".join(lines[-keep:]) + "\n"


@pytest.fixture(autouse=True)
def root_logger_restored() -> Iterator[None]:
    """The root logger's level and handlers as they were before each test: a framework that
    configures logging when an app is built (Litestar sets INFO and a stderr handler) must not
    make every later test log each HTTP request."""
    root = logging.getLogger()
    level, before = root.level, set(root.handlers)
    yield
    root.setLevel(level)
    for handler in root.handlers[:]:
        # pytest's own capture handlers come and go with each phase of the test: left alone.
        if handler not in before and not type(handler).__module__.startswith("_pytest."):
            root.removeHandler(handler)


@pytest.fixture(autouse=True)
def clean_cache() -> Iterator[None]:
    """Every test starts with default settings, the in-process store (no backend left by a
    test before), empty, and zeroed counters."""
    oxicache.configure("memory://", **dataclass_defaults())
    config.get_store().clear()
    _log.reset_counters()
    yield
    oxicache.configure("memory://", **dataclass_defaults())
    config.get_store().clear()


def dataclass_defaults() -> dict[str, Any]:
    import dataclasses

    return {f.name: f.default for f in dataclasses.fields(oxicache.Settings)}


class Clock:
    """Moves the store's clock: expiry tests never sleep."""

    def advance(self, seconds: float) -> None:
        config.get_store().advance_clock(seconds)


@pytest.fixture
def clock() -> Iterator[Clock]:
    store = config.get_store()
    start = store.now()
    yield Clock()
    store.advance_clock(start - store.now())


@pytest.fixture
def client() -> Callable[[Any], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with client(app) as c:`` drives a real ASGI app over httpx's ASGI transport."""

    @asynccontextmanager
    async def make(app: Any) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c

    return make


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- real servers for the backend tests (tests/python/servers.py) ---------------------------
#
# Session-scoped and lazy: a server starts the first time a test asks for it and stops at the
# end of the run. A missing binary skips the tests that need it, unless OXICACHE_REQUIRE_SERVERS
# is set (`make test` sets it), where it fails them instead: CI never passes by skipping.


def _need(kind: str) -> None:
    missing = servers_mod.missing_binaries(kind)
    if not missing:
        return
    reason = f"{kind} tests need {', '.join(missing)} (install with `make servers`)"
    if os.environ.get("OXICACHE_REQUIRE_SERVERS"):
        pytest.fail(f"OXICACHE_REQUIRE_SERVERS is set and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[servers_mod.RedisServer]:
    """A standalone redis-server: ``.url``, ``.port``, ``.pause()``/``.resume()``/``.restart()``."""
    _need("redis")
    with servers_mod.RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[servers_mod.RedisCluster]:
    """Three Redis Cluster masters: ``.url``, ``.startup_nodes``, ``.node(i)``."""
    _need("redis-cluster")
    with servers_mod.RedisCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[servers_mod.RedisSentinel]:
    """A master and one sentinel (``mymaster``, quorum 1): ``.sentinels``, ``.master``."""
    _need("redis-sentinel")
    with servers_mod.RedisSentinel() as setup:
        yield setup


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[servers_mod.MemcachedServer]:
    """memcached on TCP only: ``.address``, ``.port``, ``.pause()``/``.resume()``/``.restart()``."""
    _need("memcached")
    with servers_mod.MemcachedServer() as server:
        yield server


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[servers_mod.DynamoDBServer]:
    """moto's DynamoDB in server mode: ``.endpoint_url``, ``.client_kwargs``, ``.restart()``."""
    _need("dynamodb")
    with servers_mod.DynamoDBServer() as server:
        yield server


@pytest.fixture(scope="session")
def memcached_server_2() -> Iterator[servers_mod.MemcachedServer]:
    """A second memcached, for backends that spread keys over several servers."""
    _need("memcached")
    with servers_mod.MemcachedServer() as server:
        yield server


@pytest.fixture(scope="session")
def dynamodb_table(dynamodb_server: servers_mod.DynamoDBServer) -> str:
    """A table on the moto server, made by ``DynamoDBBackend.ensure_table`` (its name)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from oxicache.backends.dynamodb import DynamoDBBackend

    name = "oxicache-tests"

    async def make() -> None:
        backend = DynamoDBBackend(name, **dynamodb_kwargs(dynamodb_server))
        try:
            await backend.ensure_table()
        finally:
            await backend.close()

    # Its own thread and loop: the fixture may be first requested from inside a running loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, make()).result()
    return name


def dynamodb_kwargs(server: servers_mod.DynamoDBServer) -> dict[str, Any]:
    """``DynamoDBBackend`` keyword arguments for the moto server (dummy credentials)."""
    kw = server.client_kwargs
    return {
        "endpoint_url": kw["endpoint_url"],
        "region": kw["region_name"],
        "aws_access_key_id": kw["aws_access_key_id"],
        "aws_secret_access_key": kw["aws_secret_access_key"],
    }
