"""Prometheus metrics (``pip install oxicache[prometheus]``).

Off until enabled, and free until then: ``oxicache.metrics.enable()`` (or
``oxicache.configure(metrics=True)``, or ``OXICACHE_METRICS=true`` with
:class:`oxicache.settings.OxicacheSettings`) registers them in prometheus-client's default
``REGISTRY``, or in the registry passed. Then serve them::

    app.mount("/metrics", oxicache.metrics.asgi_app())   # or:
    oxicache.metrics.add_route(app)                      # GET /metrics

Per reply of a decorated route (``route``: the function's module and qualified name) or of
``CacheMiddleware`` (``route="CacheMiddleware"``), with ``backend`` the backend's name
(``memory``, ``redis``, ``redis+memory`` for two tiers, ...):

- ``oxicache_hits_total``: answered from the cache (304s included);
- ``oxicache_not_modified_total``: of those, answered ``304 Not Modified``;
- ``oxicache_misses_total``: the handler ran for a cacheable request;
- ``oxicache_stale_total{reason}``: answered stale (``stale-while-revalidate``,
  ``stale-if-error``, ``max-stale``);
- ``oxicache_bypasses_total{reason}``: not handled by the cache (``credentials``, ``method``,
  ``disabled``, ``unkeyable``, ``streaming``...);
- ``oxicache_stores_total``: a miss's response stored;
- ``oxicache_store_refused_total{reason}``: a miss's response not stored (``too-large``,
  ``set-cookie``, ``private``, ``status``, ``no-store``, ``vary-star``...).

Read when scraped (nothing on the request path): ``oxicache_memory_entries``,
``oxicache_memory_bytes``, ``oxicache_memory_evictions_total``,
``oxicache_memory_expirations_total`` (the in-process store), ``oxicache_backend_failures_total
{kind}`` (errors, timeouts, short-circuited calls, dropped writes, failed invalidations),
``oxicache_backend_breaker_state{state}`` (1 for the current state) and
``oxicache_backend_breaker_changes_total``, and ``oxicache_events_total{event}`` (the event
counters of :func:`oxicache.stats`). Backend counters restart at zero when :func:`configure`
replaces the backend (Prometheus' ``rate()`` handles counter resets).

A reply costs one dict increment (its route, backend, outcome and reason); the counters above
are derived from those tallies when scraped. Without :func:`enable` (nor tracing) the decorator
and the middleware run their plain code paths: nothing at all is added to a hit.

``oxicache_backend_operation_seconds{backend, op}``: a histogram of backend calls' latency
(``get``, ``set``, ``delete``, ...), observed by the guard around the backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import _log
from ..backends import guard
from ..exceptions import ConfigError
from ..runtime import STATE
from . import observe

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["BUCKETS", "add_route", "asgi_app", "disable", "enable", "enabled"]

#: Buckets of the backend latency histogram, in seconds (reads are bounded by 5 ms deadlines).
BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


#: The counters derived from the reply tallies: (name, help, with a reason label).
_FAMILIES = (
    ("oxicache_hits", "Replies from the cache (304s included).", False),
    ("oxicache_not_modified", "Replies from the cache answered 304 Not Modified.", False),
    ("oxicache_misses", "Cacheable requests the handler answered.", False),
    ("oxicache_stale", "Replies from a stale entry, by the window that allowed it.", True),
    ("oxicache_bypasses", "Requests the cache did not handle, by reason.", True),
    ("oxicache_stores", "Responses stored after a miss.", False),
    ("oxicache_store_refused", "Responses to a miss not stored, by reason.", True),
)

_Tally = tuple[str, str, str, str, bool, bool]


class _Metrics:
    """The metrics of one registry. A reply costs one dict increment (its tally, keyed by
    route, backend, outcome, detail, stored, 304); the counters are derived when scraped."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Histogram

        self.registry = registry
        self.tallies: dict[_Tally, int] = {}
        self.latency = Histogram(
            "oxicache_backend_operation_seconds",
            "Latency of backend operations (as the guard saw them, failures included).",
            ["backend", "op"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.collector = _Collector(self)
        registry.register(self.collector)
        self._timers: dict[tuple[str, str], Callable[[float], None]] = {}

    def unregister(self) -> None:
        self.registry.unregister(self.latency)
        self.registry.unregister(self.collector)

    def observe(
        self, route: str, backend: str, outcome: str, detail: str, stored: bool, status: int
    ) -> None:
        """A reply's outcome (an :data:`oxicache.observe.Listener`)."""
        key = (route, backend, outcome, detail, stored, status == 304)
        tallies = self.tallies
        tallies[key] = tallies.get(key, 0) + 1

    def counts(self) -> dict[str, dict[tuple[str, ...], int]]:
        """The counters' values, by family name and label values."""
        out: dict[str, dict[tuple[str, ...], int]] = {name: {} for name, _, _ in _FAMILIES}

        def add(family: str, labels: tuple[str, ...], n: int) -> None:
            values = out[family]
            values[labels] = values.get(labels, 0) + n

        for (route, backend, outcome, detail, stored, not_modified), n in list(
            self.tallies.items()
        ):
            where = (route, backend)
            if outcome == "hit":
                add("oxicache_hits", where, n)
                if not_modified:
                    add("oxicache_not_modified", where, n)
            elif outcome == "miss":
                add("oxicache_misses", where, n)
                if stored:
                    add("oxicache_stores", where, n)
                elif detail and detail != "only-if-cached":  # a 504: nothing to store
                    add("oxicache_store_refused", (*where, detail), n)
            elif outcome == "stale":
                add("oxicache_stale", (*where, detail or "unknown"), n)
            else:
                add("oxicache_bypasses", (*where, detail or "unknown"), n)
        return out

    def time(self, backend: str, op: str, seconds: float) -> None:
        """A backend operation's duration (the guard's hook)."""
        observe = self._timers.get((backend, op))
        if observe is None:
            observe = self._timers[backend, op] = self.latency.labels(backend, op).observe
        observe(seconds)


class _Collector:
    """Metrics made when scraped: the reply counters, the memory store's and the backend
    guard's own counters."""

    def __init__(self, metrics: _Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        counts = self.metrics.counts()
        for name, documentation, reasoned in _FAMILIES:
            labels = ["route", "backend", "reason"] if reasoned else ["route", "backend"]
            family = CounterMetricFamily(name, documentation, labels=labels)
            for values, n in sorted(counts[name].items()):
                family.add_metric(list(values), n)
            yield family

        stats = STATE.store.stats()
        yield GaugeMetricFamily(
            "oxicache_memory_entries", "Entries in the in-process store.", stats["entries"]
        )
        yield GaugeMetricFamily(
            "oxicache_memory_bytes",
            "Charged size of the in-process store's entries, in bytes.",
            stats["weighted_size"],
        )
        yield CounterMetricFamily(
            "oxicache_memory_evictions",
            "Entries the in-process store evicted to stay within max_size.",
            stats["evictions"],
        )
        yield CounterMetricFamily(
            "oxicache_memory_expirations",
            "Entries the in-process store dropped past their lifetime.",
            stats["expirations"],
        )
        events = CounterMetricFamily(
            "oxicache_events",
            "Events the cache handled by itself (oxicache.stats()).",
            labels=["event"],
        )
        for event, n in sorted(_log.counters().items()):
            events.add_metric([event], n)
        yield events
        # The backend of this process, if one was made (never created by a scrape).
        backend = STATE.guard if STATE.guard_pid == os.getpid() else None
        failures = CounterMetricFamily(
            "oxicache_backend_failures",
            "Backend operations that failed or were not attempted, by kind.",
            labels=["backend", "kind"],
        )
        changes = CounterMetricFamily(
            "oxicache_backend_breaker_changes",
            "Circuit breaker state changes.",
            labels=["backend"],
        )
        state = GaugeMetricFamily(
            "oxicache_backend_breaker_state",
            "The circuit breaker's state (1 for the current one).",
            labels=["backend", "state"],
        )
        if backend is not None:
            c = backend.counters
            for kind, n in (
                ("error", c.errors),
                ("timeout", c.timeouts),
                ("short_circuited", c.short_circuited),
                ("write_dropped", c.writes_dropped),
                ("invalidation_failed", c.invalidations_failed),
                ("refused", c.refused),
            ):
                failures.add_metric([backend.name, kind], n)
            changes.add_metric([backend.name], c.state_changes)
            for s in guard.BreakerState:
                state.add_metric([backend.name, s.value], 1.0 if backend.state is s else 0.0)
        yield failures
        yield changes
        yield state


def enable(registry: CollectorRegistry | None = None) -> None:
    """Starts counting, in ``registry`` (default: prometheus-client's ``REGISTRY``).

    Calling it again with the same registry changes nothing; with another one, the metrics
    move there (from zero). Raises :class:`~oxicache.ConfigError` when prometheus-client is
    not installed.
    """
    try:
        import prometheus_client
    except ImportError as exc:
        raise ConfigError(
            "metrics need prometheus-client: pip install 'oxicache[prometheus]'"
        ) from exc
    registry = registry if registry is not None else prometheus_client.REGISTRY
    if STATE.metrics is not None:
        if STATE.metrics.registry is registry:
            return
        disable()
    STATE.metrics = _Metrics(registry)
    guard.set_timer(STATE.metrics.time)
    observe.listen("metrics", STATE.metrics.observe)


def disable() -> None:
    """Stops counting and removes the metrics from their registry."""
    if STATE.metrics is None:
        return
    observe.listen("metrics", None)
    guard.set_timer(None)
    STATE.metrics.unregister()
    STATE.metrics = None


def enabled() -> bool:
    """Whether metrics are being counted."""
    return STATE.metrics is not None


def _registry(registry: CollectorRegistry | None) -> CollectorRegistry:
    if registry is not None:
        return registry
    if STATE.metrics is not None:
        chosen: CollectorRegistry = STATE.metrics.registry
        return chosen
    from prometheus_client import REGISTRY

    return REGISTRY


def asgi_app(registry: CollectorRegistry | None = None) -> Any:
    """An ASGI app answering with the metrics (prometheus-client's ``make_asgi_app``) of
    ``registry``, default the one :func:`enable` used. Mount it: ``app.mount("/metrics",
    oxicache.metrics.asgi_app())``."""
    from prometheus_client import make_asgi_app

    return make_asgi_app(_registry(registry))


def add_route(app: Any, path: str = "/metrics", registry: CollectorRegistry | None = None) -> None:
    """Adds ``GET path`` answering with the metrics to a Starlette or FastAPI app (left out of
    the OpenAPI schema). Enables the metrics if they are not yet."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.requests import Request
    from starlette.responses import Response

    if not enabled():
        enable(registry)
    chosen = _registry(registry)

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(chosen), media_type=CONTENT_TYPE_LATEST)

    app.add_route(path, metrics_endpoint, methods=["GET"], include_in_schema=False)
