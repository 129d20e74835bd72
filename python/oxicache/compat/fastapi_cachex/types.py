"""fastapi-cachex's value types: ``CacheEntry`` (what the backends' key-value primitives store)
and the counter entries ``increment`` keeps.

Entries of cached *routes* are oxicache's own (framed envelopes under digest keys), not
``CacheEntry`` objects: the primitives here serve the application cache (``CacheManager``,
``@cached``, ``CacheLock``, counters) and values an application stores itself.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from starlette.requests import Request

from .exceptions import CacheXError

__all__ = [
    "COUNTER_FINGERPRINT",
    "CacheEntry",
    "CacheItem",
    "CacheKeyBuilder",
    "counter_entry",
    "counter_value",
    "decode_entry",
    "encode_entry",
]

CacheKeyBuilder = Callable[[Request], str]

#: The fingerprint of an entry that holds an integer counter.
COUNTER_FINGERPRINT = "counter"

HeaderPairs = tuple[tuple[str, str], ...]


def _pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> HeaderPairs:
    if not headers:
        return ()
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = tuple(tuple(item) for item in items)
    if not all(len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], str) for p in pairs):
        raise TypeError("CacheEntry.headers must hold (str, str) pairs")
    return pairs


@dataclass
class CacheEntry:
    """A stored value: a fingerprint (an ETag, or what the caller wants), the raw bytes, and
    the response facts fastapi-cachex keeps beside them."""

    fingerprint: str
    content: bytes
    media_type: str | None = None
    status_code: int = 200
    headers: HeaderPairs = ()
    stored_at: float | None = None

    def __post_init__(self) -> None:
        self.headers = _pairs(self.headers)


@dataclass
class CacheItem:
    """An entry with its expiry (epoch seconds; ``None``: never)."""

    value: CacheEntry
    expiry: float | None = None


def counter_entry(value: int) -> CacheEntry:
    """The entry ``increment`` keeps for ``value``."""
    return CacheEntry(fingerprint=COUNTER_FINGERPRINT, content=str(value).encode())


# Memcached pads a value that decr shortened with spaces ("10" -> "9 ").
_DECIMAL = re.compile(rb"-?[0-9]+ *")


def _decimal(raw: bytes) -> int | None:
    return int(raw) if _DECIMAL.fullmatch(raw) else None


def counter_value(entry: CacheEntry) -> int:
    """The integer a counter entry holds; :class:`CacheXError` for any other entry."""
    value = _decimal(entry.content)
    if entry.fingerprint != COUNTER_FINGERPRINT or value is None:
        raise CacheXError("Cache key holds a value that is not a counter")
    return value


def encode_entry(entry: CacheEntry) -> bytes:
    """``entry`` as stored by the remote backends: a counter as its bare decimal (so the
    server's own increment works on it), anything else as a small JSON document."""
    value = _decimal(entry.content) if entry.fingerprint == COUNTER_FINGERPRINT else None
    if value is not None and entry == counter_entry(value):
        return entry.content
    document = {
        "f": entry.fingerprint,
        "c": base64.b64encode(entry.content).decode("ascii"),
        "m": entry.media_type,
        "s": entry.status_code,
        "h": [list(pair) for pair in entry.headers],
        "t": entry.stored_at,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def decode_entry(raw: bytes | None) -> CacheEntry | None:
    """What :func:`encode_entry` wrote; ``None`` for anything else (read as a miss)."""
    if raw is None:
        return None
    counter = _decimal(raw)
    if counter is not None:
        return counter_entry(counter)
    try:
        doc = json.loads(raw)
        return CacheEntry(
            fingerprint=doc["f"],
            content=base64.b64decode(doc["c"]),
            media_type=doc.get("m"),
            status_code=int(doc.get("s", 200)),
            headers=tuple((str(n), str(v)) for n, v in doc.get("h") or ()),
            stored_at=doc.get("t"),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
