"""What the monitoring routes list: the responses compat routes stored in this process.

oxicache keeps route entries under digest keys, with nothing to list them by URL, so each
response a compat route stores is noted here with its fastapi-cachex key, the parts of that
key, its ETag, size, media type and expiry. A record leaves when its entry is dropped through
this module's invalidation calls or when it expires; an entry evicted for room, or dropped by
another process, is still listed until then. At most ``MAX_RECORDS`` are kept (the most recent).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["MAX_RECORDS", "Record", "forget", "forget_all", "note", "snapshot"]

MAX_RECORDS = 10_000


@dataclass
class Record:
    cache_key: str
    method: str
    host: str
    path: str
    query: str
    etag: str
    size: int
    preview: bytes
    media_type: str | None
    expiry: float
    route: int
    extra: list[str] = field(default_factory=list)


_lock = threading.Lock()
_records: OrderedDict[str, Record] = OrderedDict()


def note(record: Record) -> None:
    with _lock:
        _records[record.cache_key] = record
        _records.move_to_end(record.cache_key)
        while len(_records) > MAX_RECORDS:
            _records.popitem(last=False)


def forget(matches: Callable[[Record], bool]) -> None:
    with _lock:
        for key in [k for k, r in _records.items() if matches(r)]:
            del _records[key]


def forget_all() -> None:
    with _lock:
        _records.clear()


def snapshot() -> list[Record]:
    """The records whose entries have not expired (expired ones are dropped)."""
    now = time.time()
    with _lock:
        for key in [k for k, r in _records.items() if r.expiry <= now]:
            del _records[key]
        return list(_records.values())
