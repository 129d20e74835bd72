"""The one small protocol every storage engine implements.

A backend stores opaque values (the versioned Rust envelope, already compressed) under ``str``
keys, with a TTL and tags. It knows nothing about HTTP. Rules every implementation follows:

- ``get`` is one network round trip on the hot path (Redis: one GET; Memcached: one multi-get;
  DynamoDB: one GetItem or BatchGetItem). A value past its TTL is never returned, even when the
  engine itself would still return it (DynamoDB keeps expired items for up to ~48 h).
- ``set`` writes the value and its TTL together (no separate EXPIRE round trip); a value over
  ``max_item_size`` is refused with :class:`~oxicache.exceptions.EntryTooLarge` before any I/O.
- Keys are built by oxicache as ``"<prefix>:<namespace>:<route>:<digest>"`` (ASCII, no spaces).
  ``delete_prefix`` invalidates every key that starts with the given string; callers only pass
  prefixes that end at a ``:`` boundary. Never KEYS: Redis uses SCAN.
- ``delete_tag`` invalidates every live entry written with that tag. Tags are short ASCII
  strings (``"ns:default"``, ``"path:3f2a..."``).
- ``clear`` removes every entry under the backend's own ``prefix`` (and nothing else).
- Errors from the engine propagate as exceptions (``OSError``, ``asyncio.TimeoutError``, the
  client library's own); the caller (:mod:`oxicache.backends.guard`) turns them into misses,
  applies deadlines and the circuit breaker. A backend never retries by itself.
- Nothing is created at import or construction time that would not survive ``fork()``:
  connections and pools are opened lazily on first use, in the running event loop. A backend
  may also have ``async def connect(self) -> None``, which sets them up for the running
  process and loop: the guard awaits it once, before the first call, so that set-up (an
  import, a TLS handshake, a Cluster's slot map) is not charged to that call's deadline.
- Listing is optional, for operators' tools (``python -m oxicache``, the admin router:
  :mod:`oxicache.admin`), never on a request's path: ``async def scan(self, prefix)`` yields
  the entries under a key prefix in batches of ``(key, size in bytes)``, and
  ``async def tagged(self, tag) -> list[str]`` the keys written with a tag. Redis has both;
  Memcached cannot list its keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["Backend"]


@runtime_checkable
class Backend(Protocol):
    """What oxicache needs from a storage engine. See the module docstring for the rules."""

    #: Short engine name for logs and metrics: ``"memory"``, ``"redis"``, ``"memcached"``...
    name: str
    #: Largest value accepted by :meth:`set`, in bytes (``None``: no engine limit).
    max_item_size: int | None

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or ``None`` (absent, expired or invalidated)."""
        ...

    async def set(self, key: str, value: bytes, ttl: float, tags: Sequence[str] = ()) -> None:
        """Stores ``value`` for ``ttl`` seconds (> 0), tagged with ``tags``."""
        ...

    async def ttl(self, key: str) -> float | None:
        """Seconds ``key`` has left to live, or ``None`` when absent. Not on the hot path."""
        ...

    async def delete(self, key: str) -> bool:
        """Removes ``key``; True when something was removed (best effort where the engine
        cannot tell)."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Removes every key starting with ``prefix``; the count removed (best effort)."""
        ...

    async def delete_tag(self, tag: str) -> int:
        """Removes every entry written with ``tag``; the count removed (best effort)."""
        ...

    async def clear(self) -> None:
        """Removes every entry under this backend's prefix."""
        ...

    async def close(self) -> None:
        """Releases connections; the backend may be used again afterwards (reconnects)."""
        ...
