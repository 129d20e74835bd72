"""The Rust functions and classes of ``oxicache._core``, called as Python sees them."""

from __future__ import annotations

import contextlib
import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import oxicache
from oxicache import ConfigError, EntryDecodeError, _core
from oxicache.keys import key_value

MiB = 1024 * 1024


def key(*values: Any) -> _core.Key:
    return _core.build_key(values, key_value)


# -- Cache-Control -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([b"max-age=60, public"], {"max-age": 60, "public": True}),
        ([b"Max-Age=60,PUBLIC"], {"max-age": 60, "public": True}),
        ([b'max-age="60"'], {"max-age": 60}),
        ([b"no-store"], {"no-store": True}),
        ([b"no-cache", b"private"], {"no-cache": True, "private": True}),
        ([b'private="Set-Cookie", no-cache="X-A"'], {"private": True, "no-cache": True}),
        ([b"max-stale"], {"max-stale": True}),
        ([b"max-stale=30, min-fresh=5"], {"max-stale": 30, "min-fresh": 5}),
        (
            [b"s-maxage=10, stale-while-revalidate=5, stale-if-error=7"],
            {"s-maxage": 10, "stale-while-revalidate": 5, "stale-if-error": 7},
        ),
        (
            [b"immutable, no-transform, must-revalidate, proxy-revalidate"],
            {
                "immutable": True,
                "no-transform": True,
                "must-revalidate": True,
                "proxy-revalidate": True,
            },
        ),
        ([b"must-understand, only-if-cached"], {"must-understand": True, "only-if-cached": True}),
        ([b"max-age=99999999999999999999"], {"max-age": 2147483648}),  # saturates (RFC 9111)
        ([], {}),
        ([b""], {}),
        ([b",, ,"], {}),
        ([b"community=UCI, foo=bar"], {}),  # unknown extensions are ignored
    ],
)
def test_parse_cache_control(lines: list[bytes], expected: dict[str, Any]) -> None:
    assert _core.parse_cache_control(lines) == expected


def test_parse_cache_control_flags_conflicts_and_keeps_what_is_valid() -> None:
    assert _core.parse_cache_control([b"max-age=abc, public"]) == {
        "public": True,
        "conflicting": True,
    }
    assert _core.parse_cache_control([b"max-age=-1"]) == {"conflicting": True}
    # Repeated with different values, across lines too: the first is kept, flagged.
    assert _core.parse_cache_control([b"max-age=1", b"max-age=2"]) == {
        "max-age": 1,
        "conflicting": True,
    }
    assert _core.parse_cache_control([b"max-age=1, max-age=1"]) == {"max-age": 1}


cc_tokens = st.sampled_from(
    [b"max-age", b"s-maxage", b"no-cache", b"no-store", b"private", b"public", b"max-stale",
     b"immutable", b"stale-if-error", b"=", b",", b'"', b"\\", b" ", b"\t", b"60", b"-1",
     b"99999999999999999999999", b"\x00", b"\xff", b"\r\n", b";"]
)  # fmt: skip


@given(st.lists(st.one_of(st.binary(max_size=64), st.lists(cc_tokens).map(b"".join)), max_size=4))
def test_parse_cache_control_never_raises(lines: list[bytes]) -> None:
    result = _core.parse_cache_control(lines)
    assert isinstance(result, dict)
    for name, value in result.items():
        assert isinstance(name, str)
        if name in {"max-age", "s-maxage", "min-fresh", "stale-while-revalidate", "stale-if-error"}:
            assert type(value) is int and 0 <= value <= 2147483648
        elif name == "max-stale":
            assert value is True or (type(value) is int and value >= 0)
        else:
            assert value is True


@given(st.integers(0, 2**40), st.sampled_from(["max-age", "s-maxage", "stale-if-error"]))
def test_parse_cache_control_reads_delta_seconds(n: int, name: str) -> None:
    assert _core.parse_cache_control([f"{name}={n}".encode()]) == {name: min(n, 2147483648)}


# -- ETags ---------------------------------------------------------------------------------------


def test_etag_for_is_pinned() -> None:
    # Pinned: a change here changes every ETag oxicache ever sent, so clients' cached copies
    # stop revalidating. Change it only on purpose.
    assert _core.etag_for(b"hello") == 'W/"6o8WPbOGgpJeRJHF5Y1Lsw"'
    assert _core.etag_for(b"hello", weak=False) == '"6o8WPbOGgpJeRJHF5Y1Lsw"'
    assert _core.etag_for(b"") == 'W/"rxNJufX5oaagQE3qNtzJSQ"'


@given(st.binary(max_size=256))
def test_etag_for_is_a_stable_valid_entity_tag(body: bytes) -> None:
    weak, strong = _core.etag_for(body), _core.etag_for(body, weak=False)
    assert weak == _core.etag_for(body)
    assert weak == "W/" + strong
    assert strong.startswith('"') and strong.endswith('"')
    opaque = strong[1:-1]
    assert opaque and all(c.isalnum() or c in "-_" for c in opaque)
    # An If-None-Match with our own tag matches it, weak or strong.
    assert _core.if_none_match_hits([weak.encode()], strong)
    assert _core.if_none_match_hits([strong.encode()], weak)


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_different_bodies_get_different_etags(a: bytes, b: bytes) -> None:
    assert (_core.etag_for(a) == _core.etag_for(b)) == (a == b)


@pytest.mark.parametrize(
    ("lines", "stored", "hits"),
    [
        ([b'"abc"'], '"abc"', True),
        ([b'W/"abc"'], '"abc"', True),  # weak comparison (RFC 9110 §13.1.2)
        ([b'"abc"'], 'W/"abc"', True),
        ([b'W/"abc"'], 'W/"abc"', True),
        ([b'"abd"'], '"abc"', False),
        ([b'"a", "b", W/"abc"'], '"abc"', True),
        ([b'"a"', b'"abc"'], '"abc"', True),  # several field lines form one list
        ([b' "abc" ,'], '"abc"', True),
        ([b"*"], '"abc"', True),
        ([b"*"], 'W/"abc"', True),
        ([b"*", b""], '"abc"', True),
        ([b'*, "x"'], '"abc"', False),  # a star inside a list is malformed: no 304
        ([], '"abc"', False),
        ([b""], '"abc"', False),
        ([b"abc"], '"abc"', False),  # unquoted is not an entity-tag
        ([b'w/"abc"'], '"abc"', False),  # W/ is case-sensitive
        ([b'"abc"'], "abc", False),  # a stored value that does not parse never matches
        ([b"*"], "", True),  # RFC 9110 §13.1.2: `*` matches any stored response
    ],
)
def test_if_none_match_hits(lines: list[bytes], stored: str, hits: bool) -> None:
    assert _core.if_none_match_hits(lines, stored) is hits


@given(st.lists(st.binary(max_size=40), max_size=4), st.text(max_size=20))
def test_if_none_match_hits_never_raises(lines: list[bytes], stored: str) -> None:
    assert _core.if_none_match_hits(lines, stored) in (True, False)


# -- the entry envelope --------------------------------------------------------------------------


def sample_envelope(k: _core.Key | None = None) -> bytes:
    return _core.encode_entry(
        k or key("GET", "/items"),
        200,
        [(b"content-type", b"application/json"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")],
        b'{"items": [1, 2, 3]}',
        stored_at=1_700_000_000.5,
        ttl=60.0,
        etag='W/"abc"',
        stale_while_revalidate=5.0,
        stale_if_error=30.0,
        flags=1,
    )


def test_encode_decode_round_trip() -> None:
    k = key("GET", "/items")
    data = sample_envelope(k)
    assert isinstance(data, bytes)
    assert data[:4] == b"\x89OXC"
    assert _core.decode_entry(data, k) == {
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"set-cookie", b"a=1"),
            (b"set-cookie", b"b=2"),
        ],
        "body": b'{"items": [1, 2, 3]}',
        "stored_at": 1_700_000_000.5,
        "ttl": 60.0,
        "etag": 'W/"abc"',
        "stale_while_revalidate": 5.0,
        "stale_if_error": 30.0,
        "flags": 1,
    }


def test_encode_defaults_and_empty_fields() -> None:
    k = key()
    data = _core.encode_entry(k, 204, [], b"", stored_at=0.0, ttl=1.0)
    d = _core.decode_entry(data, k)
    assert (d["status"], d["headers"], d["body"], d["etag"], d["flags"]) == (204, [], b"", "", 0)
    assert (d["stale_while_revalidate"], d["stale_if_error"]) == (0.0, 0.0)


@given(
    st.integers(0, 999),
    st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=40)), max_size=5),
    st.binary(max_size=300),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.integers(0, 255),
)
def test_envelope_round_trips_any_content(
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    stored_at: float,
    ttl: float,
    etag: str,
    flags: int,
) -> None:
    k = key("k", body[:3])
    data = _core.encode_entry(
        k, status, headers, body, stored_at=stored_at, ttl=ttl, etag=etag, flags=flags
    )
    d = _core.decode_entry(data, k)
    assert d["status"] == status
    assert d["headers"] == headers
    assert d["body"] == body
    assert d["stored_at"] == stored_at and d["ttl"] == ttl
    assert d["etag"] == etag and d["flags"] == flags


def test_encode_refuses_non_finite_times() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(EntryDecodeError):
            _core.encode_entry(key(), 200, [], b"", stored_at=bad, ttl=1.0)
        with pytest.raises(EntryDecodeError):
            _core.encode_entry(key(), 200, [], b"", stored_at=0.0, ttl=bad)


def test_decode_refuses_an_entry_of_another_key() -> None:
    data = sample_envelope(key("GET", "/a"))
    with pytest.raises(EntryDecodeError, match="different key"):
        _core.decode_entry(data, key("GET", "/b"))


def test_decode_refuses_every_truncation() -> None:
    k = key("GET", "/items")
    data = sample_envelope(k)
    for n in range(len(data)):
        with pytest.raises(EntryDecodeError):
            _core.decode_entry(data[:n], k)
    with pytest.raises(EntryDecodeError):
        _core.decode_entry(data + b"\x00", k)


def test_decode_refuses_every_single_bit_flip() -> None:
    k = key("GET", "/items")
    data = sample_envelope(k)
    for i in range(len(data)):
        for bit in (0, 3, 7):
            corrupt = bytearray(data)
            corrupt[i] ^= 1 << bit
            with pytest.raises(EntryDecodeError):
                _core.decode_entry(bytes(corrupt), k)


def test_decode_refuses_foreign_values() -> None:
    import json
    import pickle

    k = key()
    for foreign in (
        b"",
        b"garbage",
        json.dumps({"status": 200}).encode(),
        pickle.dumps({"status": 200}),
        b"\x89OXC",
        b"\x89OXC\x03" + bytes(100),  # a future version
        b"\x89PNG\r\n\x1a\n" + bytes(64),
    ):
        with pytest.raises(EntryDecodeError):
            _core.decode_entry(foreign, k)


@given(st.binary(max_size=200))
def test_decode_of_any_bytes_is_an_entry_or_entry_decode_error(data: bytes) -> None:
    with contextlib.suppress(EntryDecodeError):
        _core.decode_entry(data, key())


@given(st.binary(min_size=1, max_size=40), st.integers(0, 2**32))
def test_decode_of_mangled_envelopes_never_raises_anything_else(noise: bytes, seed: int) -> None:
    k = key("x")
    data = bytearray(sample_envelope(k))
    rng = random.Random(seed)
    at = rng.randrange(len(data))
    data[at : at + len(noise)] = noise  # overwrite, insert or shorten
    with contextlib.suppress(EntryDecodeError):
        _core.decode_entry(bytes(data), k)


# -- MemoryStore ---------------------------------------------------------------------------------


def route(store: _core.MemoryStore, *, namespace: str = "ns", name: str = "r", ttl: float = 60.0):
    config = _core.RouteConfig(namespace=namespace, route=name, ttl=ttl)
    return _core.RouteCache(store, key_value, config)


def test_memory_store_limits_and_validation() -> None:
    store = _core.MemoryStore(max_bytes=4 * MiB, max_entry_bytes=64 * 1024)
    assert (store.max_bytes, store.max_entry_bytes) == (4 * MiB, 64 * 1024)
    assert len(store) == 0 and store.weighted_size == 0
    default = _core.MemoryStore()
    assert (default.max_bytes, default.max_entry_bytes) == (256 * MiB, 8 * MiB)
    with pytest.raises(ConfigError):
        _core.MemoryStore(max_bytes=0)
    with pytest.raises(ConfigError):
        _core.MemoryStore(max_entry_bytes=0)
    with pytest.raises(ConfigError):
        store.reset(0, 1)
    assert store.max_bytes == 4 * MiB  # a failed reset keeps the store


def test_memory_store_set_get_len_and_weighted_size() -> None:
    store = _core.MemoryStore(max_bytes=4 * MiB)
    rc = route(store)
    keys = [rc.call_key((i,)) for i in range(10)]
    for i, k in enumerate(keys):
        assert rc.set_value(k, b"v%d" % i + bytes(1000)) == (True, None)
    store.run_pending_tasks()
    assert len(store) == 10
    assert 10 * 1000 < store.weighted_size < 10 * 3000  # charged near the real cost
    assert rc.get_value(keys[3]) == b"v3" + bytes(1000)
    assert rc.get_value(rc.call_key((99,))) is None
    assert rc.remove(keys[3]) is True
    assert rc.remove(keys[3]) is False
    assert rc.get_value(keys[3]) is None
    store.run_pending_tasks()
    assert len(store) == 9


def test_memory_store_stats() -> None:
    store = _core.MemoryStore(max_bytes=4 * MiB, max_entry_bytes=10_000)
    rc = route(store)
    k = rc.call_key(("a",))
    assert rc.get_value(k) is None
    rc.set_value(k, b"x")
    assert rc.get_value(k) == b"x"
    assert rc.get_value(k) == b"x"
    assert rc.set_value(rc.call_key(("big",)), bytes(20_000)) == (False, None)  # over the limit
    store.run_pending_tasks()
    stats = store.stats()
    assert set(stats) == {
        "hits", "stale_hits", "misses", "inserts", "rejected", "collisions", "evictions",
        "expirations", "entries", "weighted_size",
    }  # fmt: skip
    assert (stats["hits"], stats["misses"], stats["inserts"], stats["rejected"]) == (2, 1, 1, 1)
    assert stats["entries"] == 1
    assert stats["weighted_size"] == store.weighted_size > 0


def test_memory_store_expiry_with_the_store_clock() -> None:
    store = _core.MemoryStore()
    rc = route(store, ttl=10)
    k = rc.call_key((1,))
    start = store.now()
    rc.set_value(k, b"v")
    store.advance_clock(9.5)
    assert store.now() == pytest.approx(start + 9.5, abs=1.0)
    assert rc.get_value(k) == b"v"
    store.advance_clock(1)
    assert rc.get_value(k) is None
    store.advance_clock(-1)  # the entry is gone, not just hidden
    assert rc.get_value(k) is None


def test_memory_store_invalidate_by_labels() -> None:
    store = _core.MemoryStore()
    a1, a2 = route(store, namespace="a", name="one"), route(store, namespace="a", name="two")
    b1 = route(store, namespace="b", name="one")
    ka1, ka2, kb1 = a1.call_key((1,)), a2.call_key((1,)), b1.call_key((1,))
    assert len({ka1, ka2, kb1}) == 3  # namespace and route are part of the key

    def fill() -> None:
        for rc, k in ((a1, ka1), (a2, ka2), (b1, kb1)):
            rc.set_value(k, b"v")

    def present() -> list[bool]:
        return [rc.get_value(k) is not None for rc, k in ((a1, ka1), (a2, ka2), (b1, kb1))]

    fill()
    store.invalidate()  # no label: nothing happens
    assert present() == [True, True, True]
    store.invalidate(namespace="a")
    assert present() == [False, False, True]
    fill()
    store.invalidate(route="one")
    assert present() == [False, True, False]
    fill()
    store.invalidate(namespace="a", route="one")
    assert present() == [False, True, True]
    fill()
    store.invalidate(path=b"")  # memoized entries carry the empty path
    assert present() == [False, False, False]
    fill()
    store.invalidate(path=b"/x")
    assert present() == [True, True, True]


def test_memory_store_clear_and_reset() -> None:
    store = _core.MemoryStore(max_bytes=4 * MiB)
    rc = route(store)
    for i in range(5):
        rc.set_value(rc.call_key((i,)), b"v")
    store.clear()
    assert len(store) == 0 and store.weighted_size == 0
    assert rc.get_value(rc.call_key((1,))) is None
    rc.set_value(rc.call_key((1,)), b"v")
    store.reset(8 * MiB, 1024)
    assert (store.max_bytes, store.max_entry_bytes, len(store)) == (8 * MiB, 1024, 0)
    # A route built before the reset writes to the new store.
    assert rc.set_value(rc.call_key((2,)), b"w") == (True, None)
    assert rc.set_value(rc.call_key((3,)), bytes(2048)) == (False, None)
    assert rc.get_value(rc.call_key((2,))) == b"w"


def test_route_cache_keys_depend_on_namespace_route_and_values() -> None:
    store = _core.MemoryStore()
    k = route(store).call_key((1, "a"))
    assert k == route(store).call_key((1, "a"))
    assert k != route(store, namespace="other").call_key((1, "a"))
    assert k != route(store, name="other").call_key((1, "a"))
    assert k != route(store).call_key((1, "b"))
    assert k != route(store).call_key(((1, "a"),))
    assert len(k.hex) == 64
    assert isinstance(k.canonical, bytes)
    assert route(store).namespace == "ns" and route(store).route == "r"


def test_route_cache_refuses_invalid_ttls() -> None:
    store = _core.MemoryStore()
    for bad in (0.0, -1.0, math.nan, math.inf):
        try:
            rc = route(store, ttl=bad)
        except ConfigError:
            continue
        with pytest.raises(ConfigError):
            rc.set_value(rc.call_key((1,)), b"v")


def test_route_config_is_checked_once_and_read_back() -> None:
    config = _core.RouteConfig(
        namespace="n", route="r", ttl=60, tier="two-tier", stale_if_error=-5, local_ttl=math.nan
    )
    assert (config.namespace, config.route, config.ttl, config.tier) == ("n", "r", 60, "two-tier")
    assert (config.stale_if_error, config.local_ttl) == (0, 0)  # read as "none"
    assert config.statuses == list(_core.DEFAULT_STATUSES) and config.header_name == "x-cache"
    rc = _core.RouteCache(_core.MemoryStore(), key_value, config)
    assert rc.config is config and rc.namespace == "n"
    with pytest.raises(ConfigError, match="tier"):
        _core.RouteConfig(namespace="n", route="r", ttl=60, tier="disk")
    with pytest.raises(TypeError):
        _core.RouteConfig("n", "r", 60)  # type: ignore[misc]  # keywords only
    with pytest.raises(AttributeError):
        config.ttl = 5  # type: ignore[misc]  # frozen


# -- the typed results of a lookup ---------------------------------------------------------------


def scope(method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "scheme": "http",
        "path": "/r",
        "raw_path": b"/r",
        "query_string": b"",
        "headers": headers if headers is not None else [(b"host", b"a")],
    }


def test_a_lookup_is_a_bypass_a_pending_or_a_hit() -> None:
    """RFC 9111 §2 (only GET and HEAD are cached), RFC 9211 §2.2: a lookup's result says by its
    class what it is; a Hit is the reply tuple itself."""
    store = _core.MemoryStore()
    rc = route(store)
    bypass = rc.lookup(scope("POST"), ())
    assert isinstance(bypass, _core.Bypass) and bypass.reason == "method"
    pending = rc.lookup(scope(), ())
    assert isinstance(pending, _core.Pending)
    rc.complete(pending, 200, [(b"content-type", b"text/plain")], b"hi")
    hit = rc.lookup(scope(), ())
    assert _core.Hit is tuple and hit.__class__ is _core.Hit
    status, headers, body = hit
    assert (status, body) == (200, b"hi")
    assert (b"x-cache", b"HIT") in headers


def test_the_middleware_lookup_is_typed_the_same_way() -> None:
    engine = _core.MiddlewareEngine(_core.MemoryStore())
    unsafe = engine.lookup(scope("DELETE"))
    assert unsafe == _core.Bypass("unsafe") and hash(unsafe) == hash(_core.Bypass("unsafe"))
    assert isinstance(engine.lookup(scope()), _core.MiddlewarePending)


def test_bypass_is_a_frozen_value() -> None:
    b = _core.Bypass("credentials")
    assert b.reason == "credentials" and repr(b) == "Bypass('credentials')"
    assert b != _core.Bypass("method")
    with pytest.raises(AttributeError):
        b.reason = "other"  # type: ignore[misc]


def test_response_actions_are_an_enum() -> None:
    engine = _core.MiddlewareEngine(_core.MemoryStore())
    pending = engine.lookup(scope())
    assert isinstance(pending, _core.MiddlewarePending)
    action, _ = engine.on_response(pending, 200, [(b"cache-control", b"max-age=60")])
    assert action == _core.ResponseAction.BUFFER
    action, fields = engine.on_response(pending, 200, [(b"cache-control", b"no-store")])
    assert action == _core.ResponseAction.PASS
    assert fields[-1] == (b"cache-status", b"oxicache; fwd=miss; detail=no-store")
    assert [int(a) for a in (_core.ResponseAction.PASS, _core.ResponseAction.STALE_ON_ERROR)] == [
        0,
        3,
    ]
    assert len({_core.ResponseAction.FRESHEN, _core.ResponseAction.FRESHEN}) == 1


def test_bypass_status_is_the_one_builder_s_member() -> None:
    """RFC 9211 §2.2 ``fwd=bypass``, §2.8 ``detail``: a fixed token, never request material."""
    assert _core.bypass_status("credentials") == b"oxicache; fwd=bypass; detail=credentials"
    assert _core.bypass_status("Not A Token") == b"oxicache; fwd=bypass; detail=other"


def test_version_is_exposed() -> None:
    assert oxicache.__version__ == _core.__version__
    assert oxicache.__version__.count(".") >= 2
