"""``ZlibCompressManager``: zlib compression.

Accepted by ``CacheSetup.setup(compress_manager=...)``; oxicache compresses its entries with
zstd (``compression_mode`` and ``compression_min_size_bytes`` say which)."""

from __future__ import annotations

import zlib

from ..types import CompressManager

__all__ = ["ZlibCompressManager"]


class ZlibCompressManager(CompressManager):
    def __init__(self, level: int = 6) -> None:
        self.level = level

    def compress(self, data: bytes) -> bytes:
        return zlib.compress(data, self.level)

    def decompress(self, data: bytes) -> bytes:
        return zlib.decompress(data)
