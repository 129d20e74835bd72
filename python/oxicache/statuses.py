"""Which response statuses a route or the middleware may store, and the check of a user's list."""

from __future__ import annotations

from collections.abc import Iterable

from . import _core
from .exceptions import ConfigError

__all__ = ["DEFAULT_STATUS_CODES", "storable_statuses"]

#: Statuses stored by default: those RFC 9111 §3 lets a cache store with explicit freshness,
#: minus the ones a route rarely means to share (404 and 410 only when a route asks).
DEFAULT_STATUS_CODES: tuple[int, ...] = tuple(_core.DEFAULT_STATUSES)

#: Statuses never stored whatever a route says: partial content (RFC 9111 §3.4: a cache that
#: does not combine ranges must not store it as the whole), a 304 (RFC 9111 §4.3.4: it updates
#: an entry, it is not one) and server errors (docs/http.md: the app's failure is not shared).
_NEVER_STORED = frozenset({206, 304})


def storable_statuses(statuses: Iterable[int], *, option: str) -> tuple[int, ...]:
    """``statuses`` checked: HTTP statuses the cache is allowed to store, else
    :class:`ConfigError` naming ``option``."""
    if isinstance(statuses, int | str):
        raise ConfigError(f"{option} takes a list of statuses, got {statuses!r}")
    codes = tuple(statuses)
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ConfigError(f"{option} holds HTTP statuses, got {code!r}")
        if code in _NEVER_STORED or code >= 500:
            raise ConfigError(
                f"status {code} is never stored (no partial content, no 304, no server"
                f" errors); remove it from {option}"
            )
    return codes
