"""What :func:`oxicache.stats` returns, typed: plain dicts (JSON-ready, and the same keys as
before), described by :class:`typing.TypedDict` classes so that editors and type checkers know
every field."""

from __future__ import annotations

from typing import Any, TypedDict

from . import _log
from .backends import remote
from .coordination import coherence
from .runtime import STATE

__all__ = ["BackendStats", "Stats", "StoreStats", "TierStats", "stats"]


class StoreStats(TypedDict):
    """The in-process store's counters (lookups, whatever the route's tier)."""

    hits: int
    stale_hits: int
    misses: int
    inserts: int
    #: Entries refused by the store (over ``max_entry_size``).
    rejected: int
    collisions: int
    evictions: int
    expirations: int
    entries: int
    #: Bytes charged for the entries held.
    weighted_size: int


class BackendStats(TypedDict):
    """The remote backend of this process: its guard's state and counters
    (:class:`~oxicache.backends.guard.GuardCounters`), and the writes skipped before any I/O."""

    name: str
    #: ``"closed"``, ``"open"`` or ``"half_open"``.
    breaker: str
    pending_writes: int
    hits: int
    misses: int
    errors: int
    timeouts: int
    short_circuited: int
    state_changes: int
    loop_busy: int
    writes_dropped: int
    invalidations_failed: int
    refused: int
    #: Entries not sent to the backend, by reason (``backend-too-large``, ``backend-down``,
    #: ``backend-busy``): their replies' ``Cache-Status`` does not say ``stored``.
    writes_skipped: dict[str, int]


class TierStats(TypedDict):
    """Reads of one tier: answered with an entry, answered "absent", or not answered."""

    hits: int
    misses: int
    #: Reads that failed, timed out or were cut off by the breaker (the request missed).
    failed: int


class Stats(TypedDict):
    """:func:`oxicache.stats`."""

    #: Per tier: ``"local"`` (the in-process store, which every lookup reads first), and the
    #: backend's name when there is one (``"redis"``, ``"memcached"``...): remote hits and
    #: misses are counted there, not in ``store``.
    tiers: dict[str, TierStats]
    store: StoreStats
    #: Event counters: bypasses by reason, responses not stored, errors handled, ...
    events: dict[str, int]
    #: Two tiers on Redis: the subscription's state and counters
    #: (:mod:`oxicache.coordination.coherence`).
    coherence: dict[str, Any]
    #: None without a backend.
    backend: BackendStats | None


_SKIPPED = "remote.write_skipped."


def stats() -> Stats:
    """Counters of this process, per tier and in detail (see :class:`Stats`)."""
    events = _log.counters()
    store: StoreStats = STATE.store.stats()  # type: ignore[assignment]
    tiers: dict[str, TierStats] = {
        "local": {"hits": store["hits"], "misses": store["misses"], "failed": 0}
    }
    guard = remote.get_backend()
    backend: BackendStats | None = None
    if guard is not None:
        c = guard.counters
        backend = {  # type: ignore[assignment]
            "name": guard.name,
            "breaker": guard.state.value,
            "pending_writes": guard.pending_writes,
            **c.as_dict(),
            "writes_skipped": {
                k.removeprefix(_SKIPPED): n for k, n in events.items() if k.startswith(_SKIPPED)
            },
        }
        tiers[guard.name] = {
            "hits": c.hits,
            "misses": c.misses,
            "failed": c.errors + c.timeouts + c.short_circuited,
        }
    return {
        "tiers": tiers,
        "store": store,
        "events": events,
        "coherence": coherence.status(),
        "backend": backend,
    }
