"""Counters and rate-limited logging of cache events.

Every event the cache handles by itself (a bypass, an unkeyable argument, a response it would
not store, an internal error answered uncached) is counted; warnings about them are logged at
most once per :data:`LOG_INTERVAL` seconds per event kind, so a flood of bad requests cannot
flood the logs. Log lines name routes, event kinds and exception types, never keys, request
data or bodies (see :func:`describe`).
"""

from __future__ import annotations

import logging
import time

from .exceptions import OxicacheError
from .runtime import STATE

__all__ = ["LOG_INTERVAL", "count", "counters", "describe", "logger", "reset_counters", "warn"]

logger = logging.getLogger("oxicache")

#: Minimum seconds between two log lines of the same event kind.
LOG_INTERVAL = 60.0


def count(event: str) -> None:
    """Counts one occurrence of ``event`` (e.g. ``"bypass.credentials"``)."""
    STATE.events[event] += 1


def warn(event: str, message: str, *args: object) -> None:
    """Counts ``event`` and logs ``message`` unless the same event was logged recently."""
    STATE.events[event] += 1
    now = time.monotonic()
    with STATE.log_lock:
        last = STATE.last_logged.get(event)
        if last is not None and now - last < LOG_INTERVAL:
            STATE.suppressed[event] += 1
            return
        STATE.last_logged[event] = now
        skipped = STATE.suppressed.pop(event, 0)
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
    return dict(STATE.events)


def reset_counters() -> None:
    """Zeroes the counters and the log rate limiter (tests)."""
    with STATE.log_lock:
        STATE.events.clear()
        STATE.last_logged.clear()
        STATE.suppressed.clear()
