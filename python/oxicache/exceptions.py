"""Exceptions raised by oxicache.

The hierarchy, drawn once::

    OxicacheError                 base of everything oxicache raises
    ├── ConfigError               a setting or decorator option is invalid (also a ValueError)
    ├── UnkeyableArgument         a handler or function argument cannot be part of a cache key
    │                             (also a TypeError); on an endpoint the request is answered
    │                             uncached (BYPASS) and the event is logged
    ├── EntryDecodeError          a stored entry is corrupt, truncated or foreign (read as a miss)
    └── EntryTooLarge             an entry is over the per-entry size limit (not stored)

Only ``ConfigError`` and ``UnkeyableArgument`` from a plain memoized function reach user code in
normal operation; the others are handled inside the cache and counted in :func:`oxicache.stats`.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EntryDecodeError",
    "EntryTooLarge",
    "OxicacheError",
    "UnkeyableArgument",
]


class OxicacheError(Exception):
    """Base class of oxicache's exceptions."""


class ConfigError(OxicacheError, ValueError):
    """A setting or decorator option is invalid."""


class UnkeyableArgument(OxicacheError, TypeError):
    """An argument cannot be turned into cache-key material.

    Give the type a ``__cache_key__()`` method, list the parameter in ``ignore_args``, or pass a
    ``key_builder``.
    """


class EntryDecodeError(OxicacheError):
    """A stored entry failed to decode or belongs to another key."""


class EntryTooLarge(OxicacheError):
    """An entry exceeds the per-entry size limit."""
