"""Parsing of TTLs and sizes given as numbers, ``timedelta`` or strings like ``"1h30m"``."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from .exceptions import ConfigError

__all__ = ["parse_size", "parse_ttl"]

#: A month is 30 days and a year 365 days: a TTL is a length of time, not a calendar date.
_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "mo": 30 * 86400.0,
    "y": 365 * 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|mo|s|m|h|d|w|y)", re.IGNORECASE)
_SIZES = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)
#: The store counts bytes in 64 bits.
_MAX_SIZE = 2**64 - 1


def parse_ttl(value: float | int | timedelta | str) -> float:
    """Seconds from an int, float, ``timedelta`` or a string such as ``"90"``, ``"1h30m"``,
    ``"2d"``, ``"500ms"``, ``"1mo"`` (30 days), ``"1y"`` (365 days). Raises
    :class:`ConfigError` unless the result is positive and finite.
    """
    seconds: float
    if isinstance(value, bool):
        raise ConfigError(f"ttl must be a duration, not {value!r}")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for match in _PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2).lower()]
                pos = match.end()
            if pos != len(text) or not text:
                raise ConfigError(
                    f"cannot read {value!r} as a duration (try '90', '1h30m')"
                ) from None
    else:
        raise ConfigError(f"ttl must be a number, timedelta or string, not {type(value).__name__}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"ttl must be positive and finite, got {value!r}")
    return seconds


def parse_size(value: int | str) -> int:
    """Bytes from an int or a string such as ``"256MiB"``, ``"64 MB"``, ``"1g"``."""
    if isinstance(value, bool):
        raise ConfigError(f"size must be a number of bytes, not {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value)
        unit = match.group(2).lower() if match else ""
        if not match or unit not in _SIZES:
            raise ConfigError(f"cannot read {value!r} as a size (try '256MiB')")
        number = float(match.group(1)) * _SIZES[unit]
        if not math.isfinite(number):  # a run of digits too long for a float
            raise ConfigError(f"size {value!r} is too large")
        size = int(number)
    else:
        raise ConfigError(f"size must be an int or a string, not {type(value).__name__}")
    if size <= 0:
        raise ConfigError(f"size must be positive, got {value!r}")
    if size > _MAX_SIZE:
        raise ConfigError(f"size {value!r} is too large (at most {_MAX_SIZE} bytes)")
    return size
