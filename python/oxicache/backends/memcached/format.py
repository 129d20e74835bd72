"""Memcached key names and the version header of a stored entry (see :mod:`.memcached`).

Pure functions on bytes, no I/O, so the layout can be tested without a server.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from dataclasses import dataclass

__all__ = [
    "KEY_LIMIT",
    "MAX_RELATIVE_TTL",
    "Header",
    "HeaderError",
    "exptime",
    "mc_key",
    "scan",
    "segments",
]

#: Memcached's key limit in bytes (text protocol).
KEY_LIMIT = 250
#: Memcached reads an exptime above 30 days as an absolute Unix time.
MAX_RELATIVE_TTL = 30 * 24 * 3600

# What memcached's text protocol accepts in a key and what stays readable in `stats cachedump`
# or a packet capture: printable ASCII without space.
_SAFE = re.compile(rb"[\x21-\x7e]+\Z")
_UNSAFE_BYTE = re.compile(rb"[^\x21-\x7e]")
_READABLE = 160
_DIGEST_SIZE = 20  # 160-bit BLAKE2b: 40 hex digits


def mc_key(kind: str, text: str) -> bytes:
    """The memcached key for ``text`` in namespace ``kind`` (one lowercase ASCII letter).

    Short keys of safe bytes are kept as ``"<kind>:<text>"``. Longer ones, or ones with spaces,
    control bytes or non-ASCII characters, become ``"<KIND>:<readable>#<blake2b hex>"``: the
    readable part is the first bytes of the text with unsafe bytes replaced by ``_``, and the
    digest covers the whole text. The upper-case kind letter keeps hashed names apart from any
    exact name, so no text can be spelled to collide with another text's hashed form.
    """
    raw = text.encode("utf-8", "surrogatepass")
    head = kind.encode("ascii")
    if len(head) + 1 + len(raw) <= KEY_LIMIT and _SAFE.match(raw):
        return head + b":" + raw
    readable = _UNSAFE_BYTE.sub(b"_", raw[:_READABLE])
    digest = hashlib.blake2b(raw, digest_size=_DIGEST_SIZE).hexdigest().encode("ascii")
    return head.upper() + b":" + readable + b"#" + digest


def segments(key: str) -> list[str]:
    """Every prefix of ``key`` that ends with ``:``, shortest first: the prefixes that
    ``delete_prefix`` may be called with for this key."""
    found = []
    i = key.find(":")
    while i >= 0:
        found.append(key[: i + 1])
        i = key.find(":", i + 1)
    return found


def exptime(ttl: float, now: float) -> int:
    """Memcached's exptime for a TTL of ``ttl`` seconds: whole seconds rounded up (at least 1);
    over 30 days, the absolute Unix time instead (memcached would read a relative number that
    large as a date in 1970 and drop the item at once)."""
    seconds = max(1, math.ceil(ttl))
    if seconds > MAX_RELATIVE_TTL:
        return math.ceil(now + ttl)
    return seconds


class HeaderError(ValueError):
    """The stored bytes do not start with a header this version wrote."""


_MAGIC = b"OXM\x01"
_FIXED = struct.Struct(">4sdQQH")  # magic, expires_at, root, epoch, segment count
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")
#: The segment versions of a key with ``n`` segments (``_SEGS[n]``), for the usual key depths.
_SEGS = [struct.Struct(f">{n}Q") for n in range(16)]


@dataclass(frozen=True, slots=True)
class Header:
    """The counter versions an entry was written under, and its absolute expiry.

    ``root`` is the backend's clear generation, ``epoch`` its tag epoch, ``segs`` one version
    per :func:`segments` of the key (same order) and ``tags`` one ``(tag, version)`` pair per
    tag of the entry.
    """

    expires_at: float
    root: int
    epoch: int
    segs: tuple[int, ...]
    tags: tuple[tuple[str, int], ...]

    def encode(self) -> bytes:
        parts = [_FIXED.pack(_MAGIC, self.expires_at, self.root, self.epoch, len(self.segs))]
        parts.extend(_U64.pack(v) for v in self.segs)
        parts.append(_U16.pack(len(self.tags)))
        for tag, version in self.tags:
            raw = tag.encode("utf-8", "surrogatepass")
            parts.append(_U16.pack(len(raw)) + raw + _U64.pack(version))
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> tuple[Header, int]:
        """The header at the start of ``data`` and the offset of the value after it."""
        expires_at, root, epoch, segs, pos = _fixed(data)
        try:
            (ntags,) = _U16.unpack_from(data, pos)
            pos += 2
            tags = []
            for _ in range(ntags):
                (n,) = _U16.unpack_from(data, pos)
                pos += 2
                tag = data[pos : pos + n].decode("utf-8", "surrogatepass")
                pos += n
                (version,) = _U64.unpack_from(data, pos)
                pos += 8
                tags.append((tag, version))
        except (struct.error, UnicodeDecodeError) as e:
            raise HeaderError(f"truncated or corrupt header: {e}") from e
        return cls(expires_at, root, epoch, segs, tuple(tags)), pos

    def with_epoch(self, epoch: int) -> Header:
        return Header(self.expires_at, self.root, epoch, self.segs, self.tags)


def _fixed(data: bytes) -> tuple[float, int, int, tuple[int, ...], int]:
    """The fixed part of a header and its segment versions: ``(expires_at, root, epoch, segs,
    offset of the tag count)``."""
    try:
        magic, expires_at, root, epoch, nseg = _FIXED.unpack_from(data, 0)
        if magic != _MAGIC:
            raise HeaderError("not an oxicache memcached entry")
        segs = (_SEGS[nseg] if nseg < len(_SEGS) else struct.Struct(f">{nseg}Q")).unpack_from(
            data, _FIXED.size
        )
    except struct.error as e:
        raise HeaderError(f"truncated or corrupt header: {e}") from e
    return expires_at, root, epoch, segs, _FIXED.size + 8 * nseg


def scan(data: bytes) -> tuple[float, int, int, tuple[int, ...], int]:
    """What a read checks of the header at the start of ``data``, without decoding its tags:
    ``(expires_at, root, epoch, segs, offset of the value)``. :meth:`Header.decode` gives the
    tags when they must be checked."""
    expires_at, root, epoch, segs, pos = _fixed(data)
    try:
        (ntags,) = _U16.unpack_from(data, pos)
        pos += 2
        for _ in range(ntags):
            (n,) = _U16.unpack_from(data, pos)
            pos += 2 + n + 8
    except struct.error as e:
        raise HeaderError(f"truncated or corrupt header: {e}") from e
    if pos > len(data):
        raise HeaderError("truncated header")
    return expires_at, root, epoch, segs, pos
