"""The types of the fastapi-cache2 surface: the key builder's call shape and the backend ABC."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Backend", "KeyBuilder"]

_Func = Callable[..., Any]


class KeyBuilder(Protocol):
    """``key_builder(func, namespace, *, request=, response=, args=, kwargs=) -> str`` (or an
    awaitable of one)."""

    def __call__(
        self,
        __function: _Func,
        __namespace: str = ...,
        *,
        request: Request | None = ...,
        response: Response | None = ...,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Awaitable[str] | str: ...


class Backend(abc.ABC):
    """A key-value store as fastapi-cache2 sees it (raw ``bytes`` under ``str`` keys).

    The backends of :mod:`oxicache.compat.fastapi_cache.backends` implement it on oxicache's
    engines, so code that called the backend directly keeps working. A backend of your own
    (a subclass implementing these four methods) is accepted by ``FastAPICache.init`` too:
    oxicache then stores its entries through these methods (see :class:`PeerBackendAdapter`
    in ``backends``).
    """

    @abc.abstractmethod
    async def get_with_ttl(self, key: str) -> tuple[int, bytes | None]:
        raise NotImplementedError

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    @abc.abstractmethod
    async def set(self, key: str, value: bytes, expire: int | None = None) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    async def clear(self, namespace: str | None = None, key: str | None = None) -> int:
        raise NotImplementedError
