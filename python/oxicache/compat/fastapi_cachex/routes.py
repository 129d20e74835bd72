"""``add_routes``: fastapi-cachex's two read-only monitoring routes, ``/cached-hits`` and
``/cached-records``, listing the responses compat routes stored in this process (see
:mod:`._records` for what is listed)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from . import _records

__all__ = [
    "CacheHitRecord",
    "CacheHitSummary",
    "CacheHitsResponse",
    "CacheSummary",
    "CachedRecord",
    "CachedRecordsResponse",
    "add_routes",
]


@dataclass
class CacheHitRecord:
    """One cached route entry (hits are not counted: the name is fastapi-cachex's)."""

    cache_key: str
    method: str
    host: str
    path: str
    query_params: str
    etag: str
    is_expired: bool
    ttl_remaining: float | None
    extra_components: list[str] = field(default_factory=list)


@dataclass
class CacheHitSummary:
    total_cached_entries: int
    active_entries: int
    cached_paths: list[str]


@dataclass
class CacheHitsResponse:
    """``/cached-hits``: the entries, their counts and the distinct paths (the ``*_hits``
    fields repeat the counts under fastapi-cachex's older names)."""

    entries: list[CacheHitRecord]
    total_entries: int
    valid_entries: int
    expired_entries: int
    unique_routes: int
    summary: CacheHitSummary
    cached_hits: list[CacheHitRecord]
    total_hits: int
    valid_hits: int
    expired_hits: int


@dataclass
class CachedRecord:
    """One cached route entry with its size and, if asked, the first 100 bytes of its body."""

    cache_key: str
    method: str
    host: str
    path: str
    query_params: str
    etag: str
    content_type: str
    content_size: int
    is_expired: bool
    ttl_remaining: float | None
    content_preview: str | None
    media_type: str | None
    extra_components: list[str] = field(default_factory=list)


@dataclass
class CacheSummary:
    total_entries: int
    valid_entries: int
    estimated_cache_size_kb: float


@dataclass
class CachedRecordsResponse:
    """``/cached-records``: the entries with their sizes, and totals."""

    cached_records: list[CachedRecord]
    total_records: int
    active_records: int
    expired_records: int
    total_cache_size_bytes: int
    summary: CacheSummary


def _described(record: _records.Record, now: float) -> dict[str, Any]:
    """The fields both views report for an entry (the key's parts, ETag, expiry)."""
    return {
        "cache_key": record.cache_key,
        "method": record.method,
        "host": record.host,
        "path": record.path,
        "query_params": record.query,
        "etag": record.etag,
        "is_expired": False,
        "ttl_remaining": max(0.0, round(record.expiry - now, 2)),
        "extra_components": list(record.extra),
    }


def cached_hits() -> CacheHitsResponse:
    now = time.time()
    entries = [CacheHitRecord(**_described(r, now)) for r in _records.snapshot()]
    paths = sorted({e.path for e in entries})
    total = len(entries)
    return CacheHitsResponse(
        entries=entries,
        total_entries=total,
        valid_entries=total,
        expired_entries=0,
        unique_routes=len(paths),
        summary=CacheHitSummary(
            total_cached_entries=total, active_entries=total, cached_paths=paths
        ),
        cached_hits=entries,
        total_hits=total,
        valid_hits=total,
        expired_hits=0,
    )


def cached_records(include_content_preview: bool) -> CachedRecordsResponse:
    now = time.time()
    records = [
        CachedRecord(
            **_described(r, now),
            content_type="bytes",
            content_size=r.size,
            content_preview=(
                r.preview.decode("utf-8", errors="ignore") if include_content_preview else None
            ),
            media_type=r.media_type,
        )
        for r in _records.snapshot()
    ]
    size = sum(r.content_size for r in records)
    return CachedRecordsResponse(
        cached_records=records,
        total_records=len(records),
        active_records=len(records),
        expired_records=0,
        total_cache_size_bytes=size,
        summary=CacheSummary(
            total_entries=len(records),
            valid_entries=len(records),
            estimated_cache_size_kb=round(size / 1024, 2),
        ),
    )


def add_routes(
    app: FastAPI,
    prefix: str = "",
    include_in_schema: bool = False,
    *,
    dependencies: Sequence[Any],
    include_content_preview: bool = False,
) -> None:
    """Mounts ``{prefix}/cached-hits`` and ``{prefix}/cached-records``. They have no
    authentication of their own, so ``dependencies`` is required: your guard
    (``[Depends(verify_admin)]``), or ``[]`` to mount them unguarded on purpose. Bodies are
    previewed only with ``include_content_preview=True``."""
    if dependencies is None:
        raise TypeError(
            "add_routes() requires dependencies: pass dependencies=[Depends(your_auth)] to "
            "guard the cache monitoring routes, or dependencies=[] to mount them unguarded"
        )
    guards = list(dependencies)

    @app.get(f"{prefix}/cached-hits", include_in_schema=include_in_schema, dependencies=guards)
    async def get_cached_hits() -> CacheHitsResponse:
        """The cached route entries of this process, with their ETags and time left."""
        return cached_hits()

    @app.get(f"{prefix}/cached-records", include_in_schema=include_in_schema, dependencies=guards)
    async def get_cached_records() -> CachedRecordsResponse:
        """The cached route entries of this process, with their sizes."""
        return cached_records(include_content_preview)
