"""OxicacheSettings: every option of configure() from OXICACHE_* environment variables."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from pydantic import ValidationError

import oxicache
from oxicache import metrics
from oxicache.backends import remote
from oxicache.settings import OxicacheSettings

ENV = {
    "OXICACHE_MAX_SIZE": "64MiB",
    "OXICACHE_MAX_ENTRY_SIZE": "1048576",
    "OXICACHE_DEFAULT_TTL": "1h30m",
    "OXICACHE_NAMESPACE": "ns",
    "OXICACHE_PREFIX": "app1",
    "OXICACHE_HEADER_NAME": "X-My-Cache",
    "OXICACHE_ENABLED": "false",
    "OXICACHE_HONOR_REQUEST_NO_CACHE": "0",
    "OXICACHE_WEAK_ETAGS": "no",
    "OXICACHE_LOCK_TIMEOUT": "2.5",
    "OXICACHE_DISTRIBUTED_SINGLE_FLIGHT": "false",
    "OXICACHE_LOCK_LEASE": "30s",
    "OXICACHE_TWO_TIER": "true",
    "OXICACHE_LOCAL_TTL": "2",
    "OXICACHE_BACKEND_TIMEOUT": "10ms",
    "OXICACHE_BACKEND_WRITE_TIMEOUT": "0.1",
    "OXICACHE_COMPRESS_THRESHOLD": "4096",
}


def test_every_configure_option_is_a_setting() -> None:
    options = set(inspect.signature(oxicache.configure).parameters) - {"backend"}
    assert options == set(OxicacheSettings.model_fields) - {"url"}
    assert options == set(oxicache.config.FIELDS)


def test_environment_to_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    s = OxicacheSettings().apply()
    assert s.max_size == 64 * 1024 * 1024
    assert s.max_entry_size == 1048576
    assert s.default_ttl == 5400.0
    assert (s.namespace, s.prefix, s.header_name) == ("ns", "app1", "X-My-Cache")
    assert (s.enabled, s.honor_request_no_cache, s.weak_etags) == (False, False, False)
    assert s.lock_timeout == 2.5 and s.lock_lease == 30.0
    assert (s.distributed_single_flight, s.two_tier, s.local_ttl) == (False, True, 2.0)
    assert (s.backend_timeout, s.backend_write_timeout) == (0.01, 0.1)
    assert s.compress_threshold == 4096
    assert oxicache.get_settings() == s


def test_unset_variables_keep_the_values_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    oxicache.configure(namespace="kept", default_ttl=5)
    monkeypatch.setenv("OXICACHE_PREFIX", "other")
    s = OxicacheSettings().apply()
    assert (s.namespace, s.default_ttl, s.prefix) == ("kept", 5.0, "other")


def test_url_and_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OXICACHE_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("OXICACHE_METRICS", "true")
    try:
        OxicacheSettings().apply()
        assert remote.current_spec() == "redis://127.0.0.1:1/0"
        assert metrics.enabled()
    finally:
        oxicache.configure("memory://", metrics=False)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("OXICACHE_MAX_SIZE", "lots", "cannot read 'lots' as a size"),
        ("OXICACHE_DEFAULT_TTL", "-5", "ttl must be positive"),
        ("OXICACHE_LOCK_TIMEOUT", "0", "greater than 0"),
        ("OXICACHE_BACKEND_TIMEOUT", "soon", "cannot read 'soon' as a duration"),
        # The same reader and messages as configure() and the environment at import.
        ("OXICACHE_ENABLED", "maybe", "must be true or false"),
        ("OXICACHE_HEADER_NAME", "X Cache", "must be a header field name"),
        ("OXICACHE_COMPRESS_THRESHOLD", "-1", "whole number >= 0"),
    ],
)
def test_invalid_values_are_clear_errors(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        OxicacheSettings()
    text = str(info.value)
    assert name.removeprefix("OXICACHE_").lower() in text
    assert reason in text, text


def test_keywords_and_env_file(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / ".env"
    env.write_text("OXICACHE_NAMESPACE=from-file\n")
    assert OxicacheSettings(_env_file=env).namespace == "from-file"  # type: ignore[call-arg]
    assert OxicacheSettings(max_size="1KiB").max_size == 1024


def test_the_settings_table_lists_every_variable() -> None:
    """docs/quickstart.md#settings is the one table of options: each has its variable."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).parents[3] / "docs" / "quickstart.md").read_text()
    rows = re.findall(r"^\| `(\w+)`[^|]*\| `(OXICACHE_\w+)` \|", text, re.M)
    documented = {env for _, env in rows}
    expected = {f"OXICACHE_{name.upper()}" for name in OxicacheSettings.model_fields}
    assert documented == expected
    for option, env in rows:
        assert env in (f"OXICACHE_{option.upper()}", "OXICACHE_URL")
