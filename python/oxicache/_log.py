"""Counters and rate-limited logging of cache events.

Every event the cache handles by itself (a bypass, an unkeyable argument, a response it would
not store, an internal error answered uncached) is counted; warnings about them are logged at
most once per :data:`LOG_INTERVAL` seconds per event kind, so a flood of bad requests cannot
flood the logs. Log lines name routes, event kinds and exception types, never keys, request
data or bodies (see :func:`describe`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from .exceptions import OxicacheError

__all__ = ["LOG_INTERVAL", "count", "counters", "describe", "logger", "reset_counters", "warn"]

logger = logging.getLogger("oxicache")

#: Minimum seconds between two log lines of the same event kind.
LOG_INTERVAL = 60.0

_counters: Counter[str] = Counter()
_last_logged: dict[str, float] = {}
_suppressed: Counter[str] = Counter()
_lock = threading.Lock()


def count(event: str) -> None:
    """Counts one occurrence of ``event`` (e.g. ``"bypass.credentials"``)."""
    _counters[event] += 1


def warn(event: str, message: str, *args: object) -> None:
    """Counts ``event`` and logs ``message`` unless the same event was logged recently."""
    _counters[event] += 1
    now = time.monotonic()
    with _lock:
        last = _last_logged.get(event)
        if last is not None and now - last < LOG_INTERVAL:
            _suppressed[event] += 1
            return
        _last_logged[event] = now
        skipped = _suppressed.pop(event, 0)
    suffix = f" ({skipped} similar events not logged)" if skipped else ""
    logger.warning(message + suffix, *args)


def describe(exc: BaseException) -> str:
    """How a log line names an exception: its type only, since the message of an exception
    raised by a handler, a key builder, a codec or pydantic may quote request data, a key or a
    body (a ``ValidationError`` quotes its input); oxicache's own exceptions, whose messages
    never quote values, keep theirs."""
    if isinstance(exc, OxicacheError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def counters() -> dict[str, int]:
    """A snapshot of the event counters."""
    return dict(_counters)


def reset_counters() -> None:
    """Zeroes the counters and the log rate limiter (tests)."""
    with _lock:
        _counters.clear()
        _last_logged.clear()
        _suppressed.clear()
