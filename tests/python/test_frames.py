"""The zstd frame around stored envelopes: ``_core.pack_frame`` / ``_core.unpack_frame``."""

from __future__ import annotations

import random
import threading

import pytest

from oxicache import _core
from oxicache.exceptions import EntryDecodeError

MAGIC = 0x9E
RAW, ZSTD = 0, 1


def _envelope(body: bytes) -> tuple[_core.Key, bytes]:
    key = _core.build_key(("GET", "/items"), repr)
    data = _core.encode_entry(
        key, 200, [(b"content-type", b"text/html")], body, stored_at=1.0, ttl=60.0
    )
    return key, data


def test_an_envelope_round_trips_compressed() -> None:
    body = b"<li>oxicache</li>\n" * 5000
    key, env = _envelope(body)
    frame = _core.pack_frame(env, 1024)
    assert frame[0] == MAGIC and frame[1] == ZSTD
    assert len(frame) < len(env) // 10
    back = _core.unpack_frame(frame, 1 << 20)
    assert back == env
    assert _core.decode_entry(back, key)["body"] == body


def test_threshold_and_incompressible_values_stay_raw() -> None:
    small = b"a" * 1024
    assert _core.pack_frame(small) == bytes([MAGIC, RAW]) + small
    assert _core.pack_frame(small, 1023)[1] == ZSTD
    noise = random.Random(7).randbytes(4096)
    assert _core.pack_frame(noise, 0) == bytes([MAGIC, RAW]) + noise


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x9e", b"{}", b"\x89OXC\x01\x00", b"\x9e\x07abc", b"\x9e\x01\x28\xb5\x2f\xfd"],
)
def test_foreign_values_raise_entry_decode_error(bad: bytes) -> None:
    with pytest.raises(EntryDecodeError):
        _core.unpack_frame(bad, 1 << 20)


def test_truncations_raise() -> None:
    frame = _core.pack_frame(b"x" * 3000 + b"y" * 3000, 0)
    for cut in range(len(frame)):
        with pytest.raises(EntryDecodeError):
            _core.unpack_frame(frame[:cut], 1 << 20)


def test_a_bomb_is_refused() -> None:
    bomb = _core.pack_frame(bytes(32 << 20), 0)
    assert len(bomb) < 4096
    with pytest.raises(EntryDecodeError, match="limit of 1048576 bytes"):
        _core.unpack_frame(bomb, 1 << 20)
    raw = _core.pack_frame(b"abc", 1024)
    with pytest.raises(EntryDecodeError):
        _core.unpack_frame(raw, 2)
    assert _core.unpack_frame(raw, 3) == b"abc"


def test_negative_sizes_are_refused() -> None:
    with pytest.raises(OverflowError):
        _core.unpack_frame(b"\x9e\x00", -1)
    with pytest.raises(OverflowError):
        _core.pack_frame(b"", -1)


def test_large_values_from_several_threads() -> None:
    """Inputs over 64 KiB run with the GIL released; results stay per call."""
    values = [bytes([65 + i]) * (1 << 20) + b"%d" % i for i in range(4)]
    results: dict[int, bool] = {}

    def work(i: int) -> None:
        ok = True
        for _ in range(5):
            frame = _core.pack_frame(values[i], 1024)
            ok &= _core.unpack_frame(frame, len(values[i])) == values[i]
        results[i] = ok

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == dict.fromkeys(range(4), True)
