"""Prometheus metrics (oxicache.metrics) and OpenTelemetry span attributes (oxicache.tracing),
driven over HTTP through real apps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Response
from prometheus_client import CollectorRegistry

import oxicache
from oxicache import CacheMiddleware, cache, metrics, tracing
from oxicache.backends import MemoryBackend
from oxicache.integrations import observe as _observe
from oxicache.runtime import STATE


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    reg = CollectorRegistry()
    metrics.enable(reg)
    yield reg
    metrics.disable()


def value(reg: CollectorRegistry, name: str, **labels: str) -> float:
    got = reg.get_sample_value(name, labels)
    return 0.0 if got is None else got


def make_app() -> tuple[FastAPI, str, str]:
    app = FastAPI()

    @app.get("/items")
    @cache(ttl=60)
    async def items(q: str = "") -> dict[str, str]:
        return {"q": q}

    @app.get("/cookie")
    @cache(ttl=60)
    async def cookie(response: Response) -> dict[str, int]:
        response.set_cookie("session", "abc")
        return {"n": 1}

    return app, items.__oxicache__.label, cookie.__oxicache__.label  # type: ignore[attr-defined]


async def test_route_counters(registry: CollectorRegistry, client: Any) -> None:
    app, label, cookie_label = make_app()
    route = {"route": label, "backend": "memory"}
    async with client(app) as c:
        first = await c.get("/items")
        assert first.headers["x-cache"] == "MISS"
        second = await c.get("/items")
        assert second.headers["x-cache"] == "HIT"
        etag = second.headers["etag"]
        assert (await c.get("/items", headers={"if-none-match": etag})).status_code == 304
        await c.get("/items", headers={"authorization": "Bearer x"})
        await c.get("/cookie")
    assert value(registry, "oxicache_misses_total", **route) == 1
    assert value(registry, "oxicache_stores_total", **route) == 1
    assert value(registry, "oxicache_hits_total", **route) == 2
    assert value(registry, "oxicache_not_modified_total", **route) == 1
    assert value(registry, "oxicache_bypasses_total", reason="credentials", **route) == 1
    cookie_route = {"route": cookie_label, "backend": "memory"}
    assert value(registry, "oxicache_store_refused_total", reason="set-cookie", **cookie_route) == 1
    assert value(registry, "oxicache_misses_total", **cookie_route) == 1
    # Read when scraped: the store's gauges.
    assert value(registry, "oxicache_memory_entries") == 1
    assert value(registry, "oxicache_memory_bytes") > 0
    assert value(registry, "oxicache_events_total", event="bypass.credentials") == 1


async def test_middleware_counters(registry: CollectorRegistry, client: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"cache-control", b"max-age=60")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    route = {"route": "CacheMiddleware", "backend": "memory"}
    async with client(CacheMiddleware(app)) as c:
        assert (await c.get("/a")).headers["x-cache"] == "MISS"
        assert (await c.get("/a")).headers["x-cache"] == "HIT"
        await c.post("/a")
    assert value(registry, "oxicache_misses_total", **route) == 1
    assert value(registry, "oxicache_stores_total", **route) == 1
    assert value(registry, "oxicache_hits_total", **route) == 1
    assert value(registry, "oxicache_bypasses_total", reason="method", **route) == 1


async def test_backend_latency_and_breaker(registry: CollectorRegistry, client: Any) -> None:
    oxicache.configure(MemoryBackend())
    try:
        app, _, _ = make_app()
        async with client(app) as c:
            await c.get("/items")
            await c.get("/items?q=1")
        get = {"backend": "memory", "op": "get"}
        assert value(registry, "oxicache_backend_operation_seconds_count", **get) == 2
        closed = {"backend": "memory", "state": "closed"}
        assert value(registry, "oxicache_backend_breaker_state", **closed) == 1
        error = {"backend": "memory", "kind": "error"}
        assert registry.get_sample_value("oxicache_backend_failures_total", error) == 0
    finally:
        oxicache.configure("memory://")


async def test_asgi_app_and_route(registry: CollectorRegistry, client: Any) -> None:
    app, _, _ = make_app()
    metrics.add_route(app)
    app.mount("/mounted", metrics.asgi_app())
    async with client(app) as c:
        await c.get("/items")
        text = (await c.get("/metrics")).text
        assert "oxicache_misses_total{" in text
        assert "oxicache_memory_entries 1.0" in text
        assert "/metrics" not in app.openapi()["paths"]
        assert "oxicache_misses_total{" in (await c.get("/mounted/")).text


def test_enable_is_idempotent_and_moves_registries() -> None:
    a, b = CollectorRegistry(), CollectorRegistry()
    try:
        metrics.enable(a)
        metrics.enable(a)
        assert metrics.enabled()
        metrics.enable(b)
        assert a.get_sample_value("oxicache_memory_entries") is None
        assert b.get_sample_value("oxicache_memory_entries") == 0
    finally:
        metrics.disable()
    assert not metrics.enabled()


def test_configure_metrics_uses_the_default_registry() -> None:
    from prometheus_client import REGISTRY

    oxicache.configure(metrics=True)
    assert metrics.enabled()
    assert REGISTRY.get_sample_value("oxicache_memory_entries") is not None
    oxicache.configure(metrics=False)
    assert not metrics.enabled()
    assert REGISTRY.get_sample_value("oxicache_memory_entries") is None


def test_without_listeners_the_plain_paths_run() -> None:
    was = tracing.enabled()
    tracing.disable()
    try:
        assert not metrics.enabled()
        assert not STATE.observing
        middleware_call = CacheMiddleware.__call__
        metrics.enable(CollectorRegistry())
        assert STATE.observing
        # Observation is a check on each request, never a method swapped on the class.
        assert CacheMiddleware.__call__ is middleware_call
        metrics.disable()
        assert not STATE.observing
    finally:
        if was:
            tracing.enable()


def test_classify() -> None:
    assert _observe.classify([(b"x-cache", b"HIT"), (b"cache-status", b"oxicache; hit; ttl=5")])
    assert _observe.classify(
        [(b"X-Cache", b"MISS"), (b"Cache-Status", b"oxicache; fwd=miss; stored")]
    ) == ("miss", "", True)
    assert _observe.classify(
        [
            (b"x-cache", b"BYPASS"),
            (b"cache-status", b"upstream; hit, oxicache; fwd=bypass; detail=credentials"),
        ]
    ) == ("bypass", "credentials", False)
    assert _observe.classify([(b"content-type", b"text/plain")]) is None


# -- OpenTelemetry ----------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


async def test_span_attributes(spans: Any, client: Any) -> None:
    provider, exporter = spans
    tracer = provider.get_tracer("test")
    app, label, _ = make_app()
    assert tracing.available() and tracing.enabled()

    async def traced(scope: Any, receive: Any, send: Any) -> None:
        with tracer.start_as_current_span("request"):
            await app(scope, receive, send)

    async with client(traced) as c:
        await c.get("/items")
        await c.get("/items")
        await c.get("/items", headers={"authorization": "Bearer x"})
    got = [dict(s.attributes) for s in exporter.get_finished_spans()]
    assert [a["oxicache.outcome"] for a in got] == ["miss", "hit", "bypass"], got
    assert {a["oxicache.route"] for a in got} == {label}
    assert got[2]["oxicache.detail"] == "credentials"


async def test_span_attributes_middleware(spans: Any, client: Any) -> None:
    provider, exporter = spans
    tracer = provider.get_tracer("test")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"cache-control", b"max-age=60")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    inner = CacheMiddleware(app)

    async def traced(scope: Any, receive: Any, send: Any) -> None:
        with tracer.start_as_current_span("request"):
            await inner(scope, receive, send)

    async with client(traced) as c:
        await c.get("/m")
        await c.get("/m")
    got = [dict(s.attributes) for s in exporter.get_finished_spans()]
    assert [a["oxicache.outcome"] for a in got] == ["miss", "hit"]
    assert got[0]["oxicache.route"] == "CacheMiddleware"


async def test_no_span_no_attributes(client: Any) -> None:
    """Without a tracer provider the current span is not recording: nothing is set, and
    nothing fails."""
    app, _, _ = make_app()
    async with client(app) as c:
        assert (await c.get("/items")).status_code == 200


def test_without_prometheus_client_enable_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    with pytest.raises(oxicache.ConfigError, match=r"oxicache\[prometheus\]"):
        metrics.enable()
    with pytest.raises(oxicache.ConfigError):
        oxicache.configure(metrics=True)
    assert not metrics.enabled()
    assert not oxicache.get_settings().metrics


def test_tracing_alone_is_gated_on_a_recording_span() -> None:
    """With only tracing listening, a reply is not even classified unless a span records."""
    assert tracing.enabled()
    assert STATE.observe_gate is not None and not STATE.observe_gate()
    metrics.enable(CollectorRegistry())
    try:
        assert STATE.observe_gate is None  # metrics want every reply
    finally:
        metrics.disable()
    assert STATE.observe_gate is not None
