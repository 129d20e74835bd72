"""Editing this cache's member of a ``Cache-Status`` field (RFC 9211), shared by both ways in."""

from __future__ import annotations

from typing import Any

__all__ = ["relabelled"]


def relabelled(headers: Any, status: bytes) -> list[tuple[bytes, bytes]]:
    """``headers`` with this cache's ``Cache-Status`` member replaced by ``status`` (the
    members of caches before it, RFC 9211 §2, are kept)."""

    def member(value: bytes) -> bytes:
        members = [m.strip() for m in value.split(b",")]
        own = [status if m.startswith(b"oxicache") else m for m in members]
        return b", ".join(own)

    return [(n, member(v) if n.lower() == b"cache-status" else v) for n, v in headers]
