"""The entries a compat ``MemoryBackend`` keeps in this process, bounded by count.

fastapi-cachex's ``MemoryBackend(max_entries=N)`` holds at most ``N`` entries, whatever they
are (cached responses, ``CacheManager`` values, counters, locks), evicting the least recently
used. oxicache's own in-process store is bounded by bytes, so a bounded ``MemoryBackend``
keeps everything in one :class:`LocalEntries` instead: the key-value primitives read and write
it directly, and the cached routes reach it through :class:`BoundedEngine`, an oxicache
:class:`~oxicache.backends.Backend` that ``BackendProxy.set()`` configures. Without
``max_entries`` only the primitives use it; routes stay on the faster built-in store.

Every operation is synchronous under one lock, so each primitive is atomic for every task and
thread of the process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["HTTP", "KV", "BoundedEngine", "LocalEntries"]

#: The two kinds of entry: application values, and cached responses (oxicache envelopes).
KV = "kv"
HTTP = "http"


@dataclass
class _Item:
    value: Any
    expiry: float | None
    tags: tuple[str, ...] = ()


class LocalEntries:
    """Key -> value with an expiry, least recently used first, at most ``max_entries``."""

    def __init__(self, max_entries: int | None, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        #: Wall-clock seconds (expiries are reported as epoch times, as fastapi-cachex does).
        self.clock = clock
        self._items: OrderedDict[tuple[str, str], _Item] = OrderedDict()
        self.lock = threading.RLock()

    def _live(self, item: _Item, now: float) -> bool:
        return item.expiry is None or item.expiry > now

    def expiry_of(self, ttl: float | None) -> float | None:
        return None if ttl is None else self.clock() + ttl

    def get(self, kind: str, key: str) -> _Item | None:
        """The live item (marked most recently used), or ``None``; call under ``lock`` to
        read-modify-write."""
        with self.lock:
            item = self._items.get((kind, key))
            if item is None:
                return None
            if not self._live(item, self.clock()):
                del self._items[(kind, key)]
                return None
            self._items.move_to_end((kind, key))
            return item

    def put(self, kind: str, key: str, item: _Item) -> None:
        with self.lock:
            self._items[(kind, key)] = item
            self._items.move_to_end((kind, key))
            if self.max_entries is not None:
                while len(self._items) > self.max_entries:
                    self._items.popitem(last=False)

    def store(
        self, kind: str, key: str, value: Any, ttl: float | None, tags: Sequence[str] = ()
    ) -> None:
        self.put(kind, key, _Item(value, self.expiry_of(ttl), tuple(tags)))

    def pop(self, kind: str, key: str) -> _Item | None:
        """Removes ``key``; the item when it was live."""
        with self.lock:
            item = self._items.pop((kind, key), None)
            return item if item is not None and self._live(item, self.clock()) else None

    def remove_where(self, kind: str, matches: Callable[[str, _Item], bool]) -> int:
        """Removes every item of ``kind`` that ``matches``; how many were live."""
        with self.lock:
            now = self.clock()
            doomed = [k for k, item in self._items.items() if k[0] == kind and matches(k[1], item)]
            return sum(self._live(self._items.pop(k), now) for k in doomed)

    def live(self, kind: str) -> Iterator[tuple[str, _Item]]:
        """A snapshot of the live items of ``kind``."""
        with self.lock:
            now = self.clock()
            snapshot = [(k[1], i) for k, i in self._items.items() if k[0] == kind]
        return iter([(key, item) for key, item in snapshot if self._live(item, now)])

    def count(self, kind: str) -> int:
        return sum(1 for _ in self.live(kind))


class BoundedEngine:
    """The oxicache :class:`~oxicache.backends.Backend` protocol on a :class:`LocalEntries`:
    where a bounded ``MemoryBackend``'s cached responses live."""

    name = "memory"
    max_item_size: int | None = None

    def __init__(self, entries: LocalEntries) -> None:
        self.entries = entries

    def __repr__(self) -> str:
        return f"BoundedEngine(max_entries={self.entries.max_entries})"

    async def get(self, key: str) -> bytes | None:
        item = self.entries.get(HTTP, key)
        return None if item is None else item.value

    async def set(self, key: str, value: bytes, ttl: float, tags: Sequence[str] = ()) -> None:
        self.entries.store(HTTP, key, value, float(ttl), tags)

    async def ttl(self, key: str) -> float | None:
        item = self.entries.get(HTTP, key)
        if item is None:
            return None
        return None if item.expiry is None else max(0.0, item.expiry - self.entries.clock())

    async def delete(self, key: str) -> bool:
        return self.entries.pop(HTTP, key) is not None

    async def delete_prefix(self, prefix: str) -> int:
        return self.entries.remove_where(HTTP, lambda key, _: key.startswith(prefix))

    async def delete_tag(self, tag: str) -> int:
        return self.entries.remove_where(HTTP, lambda _, item: tag in item.tags)

    async def clear(self) -> None:
        self.entries.remove_where(HTTP, lambda _key, _item: True)

    async def close(self) -> None:
        return None
