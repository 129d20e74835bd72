"""fastapi-cachemate's base classes and small types, for code written against them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Literal

from pydantic import BaseModel

__all__ = [
    "Backend",
    "ByPass",
    "CoderManager",
    "CompressManager",
    "CompressionMode",
    "LockManager",
]

#: ``all`` compresses every entry, ``smart`` those of ``compression_min_size_bytes`` or more,
#: ``disabled`` none (oxicache's ``compress_threshold``, zstd).
CompressionMode = Literal["all", "smart", "disabled"]


class ByPass(BaseModel):
    """The request header (and value) that makes a request skip the cache."""

    value: str | None = None
    header: str = "X-BYPASS-HEADER"


class Backend(ABC):
    """A key-value store with TTLs (``RedisBackend`` is the one oxicache runs on)."""

    @abstractmethod
    async def get(self, key: str) -> tuple[int, bytes | None]:
        """``(milliseconds left, value)``; the value is None when absent."""

    @abstractmethod
    async def set(self, key: str, data: bytes | str, *, ttl: int, nx: bool = False) -> Any:
        """Stores ``data`` for ``ttl`` seconds (only if absent, with ``nx``)."""

    @abstractmethod
    async def close(self) -> None: ...

    @property
    @abstractmethod
    def client(self) -> Any:
        """The underlying client."""


class CoderManager(ABC):
    @abstractmethod
    def encode(self, value: Any) -> bytes: ...

    @abstractmethod
    def decode(self, data: bytes) -> Any: ...


class CompressManager(ABC):
    @abstractmethod
    def compress(self, data: bytes) -> bytes: ...

    @abstractmethod
    def decompress(self, data: bytes) -> bytes: ...


class LockManager(ABC):
    @abstractmethod
    async def acquire(self, lock_key: str) -> bool: ...

    @abstractmethod
    async def release(self, lock_key: str) -> bool: ...
