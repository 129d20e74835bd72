"""Global settings: defaults, configure(), and the FastAPI lifespan helper."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import oxicache
from oxicache import ConfigError, Settings, cache, config, configure, get_settings, get_store
from oxicache.backends import MemoryBackend

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


# --- mistakes fail at configuration time, naming the fix ------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_szie": "64MiB"}, "'max_szie' is not a setting; did you mean 'max_size'"),
        ({"metric": True}, "did you mean 'metrics'"),
        ({"ttl": 5}, "'ttl' is not a setting"),
        ({"backend_timeout": 0}, "backend_timeout must be greater than 0"),
        ({"breaker_reset": 0}, "breaker_reset must be greater than 0"),
        ({"enabled": "maybe"}, "enabled must be true or false"),
        ({"breaker_failures": 0}, "breaker_failures must be a whole number >= 1"),
        ({"prefix": ""}, "prefix must be a non-empty string"),
    ],
)
def test_a_wrong_setting_is_a_config_error_that_names_it(
    options: dict[str, Any], message: str
) -> None:
    before = get_settings()
    with pytest.raises(ConfigError, match=message):
        configure(**options)
    assert get_settings() == before


async def test_lifespan_takes_a_url_and_settings() -> None:
    app = FastAPI(lifespan=oxicache.lifespan("memory://", max_size="32MiB", namespace="n"))
    async with app.router.lifespan_context(app):
        assert get_store().max_bytes == 32 * MiB
        assert get_settings().namespace == "n"
        assert oxicache.remote.get_backend() is None


class _Recording(MemoryBackend):
    """A backend that records being closed."""

    def __init__(self) -> None:
        super().__init__(prefix="lf")
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1
        await super().close()


@pytest.mark.parametrize("how", ["positional", "keyword"])
async def test_lifespan_closes_its_backend_at_shutdown(how: str) -> None:
    backend = _Recording()
    made = oxicache.lifespan(backend) if how == "positional" else oxicache.lifespan(backend=backend)
    app = FastAPI(lifespan=made)
    runs: list[int] = []

    @app.get("/x")
    @cache(ttl=60)
    async def x() -> dict[str, int]:
        runs.append(1)
        return {"n": 1}

    async with app.router.lifespan_context(app):
        guard = oxicache.remote.get_backend()
        assert guard is not None and guard.backend is backend
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            await c.get("/x")
            await guard.drain()
            assert (await c.get("/x")).headers["x-cache"] == "HIT"
        assert backend.closed == 0
    assert backend.closed == 1
    assert runs == [1]
    oxicache.configure("memory://")


async def test_lifespan_closes_a_redis_backend_named_by_url(redis_server: Any) -> None:
    """The connections a ``redis://`` lifespan opened are gone after shutdown."""
    import redis.asyncio as aioredis

    probe = aioredis.Redis.from_url(redis_server.url)
    try:
        baseline = len(await probe.client_list())
        app = FastAPI(lifespan=oxicache.lifespan(redis_server.url, prefix="lfr"))

        @app.get("/y")
        @cache(ttl=60)
        async def y() -> dict[str, int]:
            return {"n": 1}

        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                assert (await c.get("/y")).status_code == 200
                guard = oxicache.remote.get_backend()
                assert guard is not None
                await guard.drain()
                assert (await c.get("/y")).headers["x-cache"] == "HIT"
            assert len(await probe.client_list()) > baseline
        # The server sees the sockets close shortly after; poll with a wide margin.
        for _ in range(100):
            if len(await probe.client_list()) <= baseline:
                break
            await asyncio.sleep(0.05)
        assert len(await probe.client_list()) <= baseline
    finally:
        oxicache.configure("memory://")
        await probe.aclose()


def test_lifespan_accepts_an_inner_lifespan_as_keyword_too() -> None:
    @asynccontextmanager
    async def inner(app: Any) -> AsyncIterator[None]:
        yield None

    assert callable(oxicache.lifespan(inner=inner, namespace="k"))
    with pytest.raises(ConfigError, match="inner="):
        oxicache.lifespan(inner, inner=inner)
    with pytest.raises(ConfigError, match="backend must be a URL or a backend object"):
        oxicache.lifespan(42)  # type: ignore[arg-type]


# --- OXICACHE_* variables: each one the docs list does what they say -------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs"
_ROW = re.compile(r"^\|\s*`(?P<option>\w+)`[^|]*\|\s*`(?P<variable>OXICACHE_\w+)`\s*\|")

#: A value for each kind of setting that differs from every default.
_SAMPLES = {
    "size": ("48MiB", 48 * MiB),
    "ttl": ("90s", 90.0),
    "text": ("other", "other"),
    "header": ("X-Other-Cache", "X-Other-Cache"),
    "seconds": ("3s", 3.0),
    "positive_seconds": ("1500ms", 1.5),
    "count": ("7", 7),
    "bytes": ("2048", 2048),
    "optional_header": ("X-Skip-Cache", "X-Skip-Cache"),
    "optional_text": ("let-me-in", "let-me-in"),
    "choice": ("declared", "declared"),
}


def documented_variables() -> dict[str, str]:
    """``{variable: option}`` from the settings table of the docs."""
    found: dict[str, str] = {}
    for page in sorted(DOCS.rglob("*.md")):
        for line in page.read_text(encoding="utf-8").splitlines():
            m = _ROW.match(line)
            if m:
                found[m["variable"]] = m["option"]
    return found


def test_the_docs_list_every_setting_as_a_variable() -> None:
    documented = documented_variables()
    expected = {f"OXICACHE_{name.upper()}": name for name in config.KINDS}
    expected["OXICACHE_URL"] = "backend"
    assert documented == expected


def test_every_documented_variable_is_applied_at_import() -> None:
    """All the variables at once, in a new process: importing oxicache applies each one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXICACHE_")}
    expected: dict[str, Any] = {}
    defaults = Settings()
    for variable, option in documented_variables().items():
        if option == "backend":
            env[variable] = "redis://127.0.0.1:1/0"
            continue
        kind = config.KINDS[option]
        if kind == "bool":
            value = not getattr(defaults, option)
            text = "true" if value else "false"
        else:
            text, value = _SAMPLES[kind]
        assert value != getattr(defaults, option)
        env[variable] = text
        expected[option] = value
    code = (
        "import json, oxicache, dataclasses\n"
        "from oxicache import metrics, remote\n"
        "s = dataclasses.asdict(oxicache.get_settings())\n"
        "g = remote.get_backend()\n"
        "print(json.dumps({'settings': s, 'metrics': metrics.enabled(),"
        " 'backend': type(g.backend).__name__}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout)
    for option, value in expected.items():
        assert seen["settings"][option] == value, option
    assert seen["metrics"] is True  # OXICACHE_METRICS=true alone turns metrics on
    assert seen["backend"] == "RedisBackend"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OXICACHE_MAX_SIZE", "lots", "OXICACHE_MAX_SIZE='lots': max_size: cannot read"),
        ("OXICACHE_METRICS", "sure", "metrics must be true or false"),
        ("OXICACHE_BACKEND_TIMEOUT", "0", "greater than 0"),
        ("OXICACHE_URL", "reddis://localhost", "unknown scheme 'reddis'"),
        ("OXICACHE_METRIC", "true", "did you mean OXICACHE_METRICS"),
        ("OXICACHE_MAXSIZE", "1", "did you mean OXICACHE_MAX_SIZE"),
    ],
)
def test_a_wrong_variable_is_a_config_error_naming_it(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.environment_options({variable: value})


def test_a_wrong_variable_fails_the_import_with_the_message() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXICACHE_")}
    env["OXICACHE_DEFAULT_TTL"] = "soon"
    out = subprocess.run(
        [sys.executable, "-c", "import oxicache"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "ConfigError: environment variable OXICACHE_DEFAULT_TTL='soon'" in out.stderr


def test_unrelated_and_empty_variables_are_left_alone() -> None:
    assert (
        config.environment_options(
            {"OXICACHE_REQUIRE_SERVERS": "1", "OXICACHE_MAX_SIZE": " ", "PATH": "/bin"}
        )
        == {}
    )
