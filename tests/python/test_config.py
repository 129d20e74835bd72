"""Global settings: defaults, configure(), and the FastAPI lifespan helper."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

import oxicache
from oxicache import ConfigError, Settings, cache, configure, get_settings, get_store

MiB = 1024 * 1024


def fill(n: int = 3) -> Any:
    """Stores n memoized entries; returns the function."""

    @cache(ttl=60)
    def square(x: int) -> int:
        return x * x

    for i in range(n):
        square(i)
    get_store().run_pending_tasks()
    assert len(get_store()) == n
    return square


def test_defaults() -> None:
    s = get_settings()
    assert isinstance(s, Settings)
    assert s.max_size == 256 * MiB
    assert s.max_entry_size == 8 * MiB
    assert s.header_name == "X-Cache"
    assert s.default_ttl == 60.0
    assert s.namespace == "default"
    assert s.enabled is True
    assert s.honor_request_no_cache is True
    assert s.weak_etags is True
    assert s.lock_timeout == 10.0
    assert get_store().max_bytes == 256 * MiB
    assert get_store().max_entry_bytes == 8 * MiB


def test_settings_are_immutable() -> None:
    with pytest.raises(AttributeError):
        get_settings().max_size = 1  # type: ignore[misc]


def test_configure_returns_the_settings_in_force() -> None:
    s = configure(default_ttl="5m", namespace="app", header_name="X-My-Cache")
    assert s is get_settings()
    assert (s.default_ttl, s.namespace, s.header_name) == (300.0, "app", "X-My-Cache")
    assert s.max_size == 256 * MiB  # untouched options keep their value
    assert configure() == s


def test_configure_max_size_replaces_the_store() -> None:
    fill()
    store = get_store()
    s = configure(max_size="64MiB")
    assert s.max_size == 64 * MiB
    assert get_store() is store  # the same object, resized in place: routes keep it
    assert store.max_bytes == 64 * MiB
    assert len(store) == 0
    configure(max_entry_size="1MiB")
    assert store.max_entry_bytes == 1 * MiB


def test_configure_without_size_changes_keeps_entries() -> None:
    square = fill()
    configure(header_name="X-Other", default_ttl=10, max_size=256 * MiB)
    assert len(get_store()) == 3
    assert (
        square.__oxicache__.route_cache().get_value(
            square.__oxicache__.route_cache().call_key((1,))
        )
        is not None
    )


def test_memoized_function_keeps_working_after_a_resize() -> None:
    runs = 0

    @cache(ttl=60)
    def f(x: int) -> int:
        nonlocal runs
        runs += 1
        return x

    f(1)
    configure(max_size="32MiB")
    f(1)  # the store was emptied
    f(1)
    assert runs == 2
    get_store().run_pending_tasks()
    assert len(get_store()) == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"header_name": ""},
        {"header_name": "X Cache"},
        {"header_name": "X-Cache:"},
        {"header_name": "X-Cache\r\nSet-Cookie: a=b"},
        {"max_size": 0},
        {"max_size": "lots"},
        {"max_size": -1},
        {"max_entry_size": "0"},
        {"default_ttl": 0},
        {"default_ttl": "-1s"},
        {"lock_timeout": 0},
        {"lock_timeout": -1.0},
        {"lock_timeout": float("nan")},
    ],
)
def test_invalid_settings_raise_config_error_and_change_nothing(bad: dict[str, Any]) -> None:
    square = fill()
    before = get_settings()
    with pytest.raises(ConfigError):
        configure(**{"max_size": "64MiB", "default_ttl": 5, **bad})
    assert get_settings() == before
    assert get_store().max_bytes == 256 * MiB
    assert len(get_store()) == 3
    assert square(2) == 4


async def test_lifespan_applies_settings_at_startup() -> None:
    app = FastAPI(lifespan=oxicache.lifespan(max_size="32MiB", default_ttl="2m"))
    assert get_settings().max_size == 256 * MiB  # nothing happens before startup
    async with app.router.lifespan_context(app) as state:
        assert get_settings().max_size == 32 * MiB
        assert get_settings().default_ttl == 120.0
        assert get_store().max_bytes == 32 * MiB
        assert not state
    # the settings stay after shutdown
    assert get_settings().max_size == 32 * MiB


async def test_lifespan_runs_an_inner_lifespan() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def inner(app: Any) -> AsyncIterator[dict[str, Any]]:
        # oxicache's settings are already applied when the inner lifespan starts.
        events.append(f"start {get_settings().namespace}")
        yield {"db": "connected"}
        events.append("stop")

    app = FastAPI(lifespan=oxicache.lifespan(inner, namespace="svc"))
    async with app.router.lifespan_context(app) as state:
        assert state == {"db": "connected"}
        assert events == ["start svc"]
    assert events == ["start svc", "stop"]


async def test_lifespan_called_directly() -> None:
    app = FastAPI()
    async with oxicache.lifespan(max_size="32MiB")(app):
        assert get_store().max_bytes == 32 * MiB


def test_lifespan_with_invalid_settings_fails_when_called_not_at_startup() -> None:
    with pytest.raises(ConfigError, match="header_name"):
        oxicache.lifespan(header_name="bad header")
    with pytest.raises(ConfigError, match="did you mean 'max_size'"):
        oxicache.lifespan(max_szie="64MiB")
    with pytest.raises(ConfigError, match="unknown scheme 'reddis'"):
        oxicache.lifespan("reddis://localhost:6379/0")


def test_default_ttl_applies_to_functions_decorated_before_configure(clock: Any) -> None:
    runs = 0

    @cache()
    def f(x: int) -> int:
        nonlocal runs
        runs += 1
        return x

    configure(default_ttl=timedelta(seconds=10))
    f(1)
    clock.advance(9)
    f(1)
    assert runs == 1
    clock.advance(2)
    f(1)
    assert runs == 2


def test_without_configure_the_default_ttl_is_60s(clock: Any) -> None:
    runs = 0

    @cache()
    async def g() -> int:
        return 0

    @cache()
    def f() -> int:
        nonlocal runs
        runs += 1
        return 0

    f()
    clock.advance(59)
    f()
    assert runs == 1
    clock.advance(2)
    f()
    assert runs == 2


def test_an_explicit_ttl_beats_the_default(clock: Any) -> None:
    runs = 0

    @cache(ttl=300)
    def f() -> int:
        nonlocal runs
        runs += 1
        return 0

    configure(default_ttl=1)
    f()
    clock.advance(200)
    f()
    assert runs == 1


def test_configured_namespace_applies_to_functions_without_one() -> None:
    @cache(ttl=60)
    def f() -> int:
        return 1

    @cache(ttl=60, namespace="mine")
    def g() -> int:
        return 1

    configure(namespace="tenant-a")
    assert f.__oxicache__.route_cache().namespace == "tenant-a"
    assert g.__oxicache__.route_cache().namespace == "mine"


def test_cache_option_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        cache(ttl=60, public=True, private=True)
    with pytest.raises(ConfigError):
        cache(ttl=60, vary=["Accept Language"])
    with pytest.raises(ConfigError):
        cache(ttl=60, vary=[""])
