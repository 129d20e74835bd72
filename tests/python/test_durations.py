"""TTLs and sizes as users write them: numbers, timedeltas, "1h30m", "256MiB"."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oxicache import ConfigError, cache
from oxicache.durations import parse_size, parse_ttl


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (60, 60.0),
        (0.25, 0.25),
        (timedelta(minutes=2), 120.0),
        (timedelta(milliseconds=1), 0.001),
        ("90", 90.0),
        ("2.5", 2.5),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        (" 1h 30m ", 5400.0),
        ("1H30M", 5400.0),
        ("1m30s", 90.0),
        ("1h1ms", 3600.001),
        ("10s", 10.0),
        ("0.5s", 0.5),
        ("1mo", 30 * 86400.0),  # a month is 30 days
        ("1y", 365 * 86400.0),  # a year is 365 days
        ("1y2mo", (365 + 60) * 86400.0),
        ("1MO1m", 30 * 86400.0 + 60.0),
    ],
)
def test_parse_ttl_accepts(value: Any, seconds: float) -> None:
    assert parse_ttl(value) == pytest.approx(seconds)
    assert isinstance(parse_ttl(value), float)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "abc",
        "1x",
        "h",
        "1h30",
        "30m1",
        "1h-30m",
        "-5",
        "-1h",
        "0",
        "0s",
        "0h0m",
        "nan",
        "inf",
        "1e400",
        "1 h x",
        0,
        0.0,
        -1,
        -0.5,
        math.nan,
        math.inf,
        -math.inf,
        True,
        False,
        None,
        timedelta(0),
        timedelta(seconds=-1),
        [60],
        b"60",
    ],
)
def test_parse_ttl_refuses(value: Any) -> None:
    with pytest.raises(ConfigError):
        parse_ttl(value)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_ttl("soon")


@given(st.integers(0, 100), st.integers(0, 100), st.integers(0, 100))
def test_parse_ttl_adds_up_units(h: int, m: int, s: int) -> None:
    total = h * 3600 + m * 60 + s
    text = f"{h}h{m}m{s}s"
    if total == 0:
        with pytest.raises(ConfigError):
            parse_ttl(text)
    else:
        assert parse_ttl(text) == total
        assert parse_ttl(f" {h}h {m}m {s}s ") == total


@given(st.floats(min_value=1e-6, max_value=1e12))
def test_parse_ttl_keeps_positive_numbers(x: float) -> None:
    assert parse_ttl(x) == x
    assert parse_ttl(repr(x)) == x


@given(st.text(max_size=20))
def test_parse_ttl_never_fails_otherwise_than_config_error(text: str) -> None:
    try:
        seconds = parse_ttl(text)
    except ConfigError:
        return
    assert math.isfinite(seconds) and seconds > 0


def test_cache_decorator_validates_ttl_when_decorating() -> None:
    with pytest.raises(ConfigError):
        cache(ttl="forever")
    with pytest.raises(ConfigError):
        cache(ttl=0)
    with pytest.raises(ConfigError):
        cache(ttl=60, stale_while_revalidate="-1")


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1024, 1024),
        ("1024", 1024),
        ("256MiB", 256 * 1024**2),
        ("256 MiB", 256 * 1024**2),
        ("64MB", 64 * 1000**2),
        ("64mb", 64 * 1000**2),
        ("1g", 1024**3),
        ("1G", 1024**3),
        ("2GiB", 2 * 1024**3),
        ("1GB", 1000**3),
        ("10k", 10 * 1024),
        ("10KiB", 10 * 1024),
        ("10kb", 10_000),
        ("512b", 512),
        ("1.5k", 1536),
        (" 8 m ", 8 * 1024**2),
    ],
)
def test_parse_size_accepts(value: Any, size: int) -> None:
    assert parse_size(value) == size
    assert isinstance(parse_size(value), int)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "1x",
        "MiB",
        "-5",
        "-5MiB",
        "0",
        "0MiB",
        "0.0001k",
        "1.5.5k",
        "1 0k",
        "5 TB",
        0,
        -1,
        True,
        False,
        None,
        1.5,
        b"1k",
        "9" * 400,
    ],
)
def test_parse_size_refuses(value: Any) -> None:
    with pytest.raises(ConfigError):
        parse_size(value)


@given(st.text(max_size=20))
def test_parse_size_never_fails_otherwise_than_config_error(text: str) -> None:
    try:
        size = parse_size(text)
    except ConfigError:
        return
    assert isinstance(size, int) and size > 0
