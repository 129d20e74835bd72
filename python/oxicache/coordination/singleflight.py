"""Single-flight: concurrent misses for one key run the handler once in this process.

The first request for a cold key leads: it runs the handler and stores the result. Requests
for the same key that arrive meanwhile wait for the leader, then answer from the stored
entry. A waiter gives up after ``lock_timeout`` seconds and runs the handler itself; when the
leader fails or its response was not stored, the waiters run the handler themselves.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable

__all__ = ["AsyncFlights", "ThreadFlights"]


class AsyncFlights:
    """Flights of coroutines, per event loop (a future belongs to one loop)."""

    def __init__(self) -> None:
        self._flights: dict[tuple[asyncio.AbstractEventLoop, Hashable], asyncio.Future[bool]] = {}

    def lead(self, key: Hashable) -> asyncio.Future[bool] | None:
        """A new flight's future if this caller leads, else ``None`` (someone else leads)."""
        loop = asyncio.get_running_loop()
        if (loop, key) in self._flights:
            return None
        future: asyncio.Future[bool] = loop.create_future()
        self._flights[(loop, key)] = future
        return future

    async def wait(self, key: Hashable, timeout: float) -> bool:
        """Waits for the leader of ``key``; True when it stored an entry to answer from."""
        future = self._flights.get((asyncio.get_running_loop(), key))
        if future is None:
            return False
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return False

    def land(self, key: Hashable, future: asyncio.Future[bool], stored: bool) -> None:
        """Ends the flight and wakes the waiters. Landing twice is harmless: a flight that
        ended early (its outcome known before its response was sent) leaves a later one for
        the same key alone."""
        flight = (asyncio.get_running_loop(), key)
        if self._flights.get(flight) is future:
            del self._flights[flight]
        if not future.done():
            future.set_result(stored)


class ThreadFlights:
    """Flights of threads, for memoized synchronous functions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, threading.Event] = {}

    def lead(self, key: Hashable) -> threading.Event | None:
        with self._lock:
            if key in self._flights:
                return None
            event = self._flights[key] = threading.Event()
            return event

    def wait(self, key: Hashable, timeout: float) -> None:
        with self._lock:
            event = self._flights.get(key)
        if event is not None:
            event.wait(timeout)

    def land(self, key: Hashable, event: threading.Event) -> None:
        with self._lock:
            self._flights.pop(key, None)
        event.set()
