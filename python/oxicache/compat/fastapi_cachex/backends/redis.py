"""``AsyncRedisCacheBackend``: oxicache's :class:`~oxicache.backends.RedisBackend`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..exceptions import CacheXError
from .base import BaseCacheBackend
from .config import DEFAULT_REDIS_PREFIX, RedisConfig

__all__ = ["AsyncRedisCacheBackend"]


class AsyncRedisCacheBackend(BaseCacheBackend):
    """Redis, with fastapi-cachex's constructor.

    The connection is oxicache's (pipelined reads, a deadline per read, a circuit breaker:
    a Redis that is down makes requests misses, never errors). ``key_prefix`` becomes the
    oxicache prefix (its trailing ``:`` dropped); entries are oxicache's framed envelopes,
    not fastapi-cachex's JSON, so the two libraries do not read each other's entries: use a
    fresh prefix, or let the old keys expire. ``protocol`` is accepted and ignored (oxicache
    speaks RESP2). Other keyword arguments go to redis-py's client, as in fastapi-cachex.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        password: str | None = None,
        db: int = 0,
        socket_timeout: float = 1.0,
        socket_connect_timeout: float = 1.0,
        key_prefix: str = DEFAULT_REDIS_PREFIX,
        protocol: int = 2,
        **kwargs: Any,
    ) -> None:
        for name in ("encoding", "decode_responses"):
            if name in kwargs:
                raise TypeError(
                    f"AsyncRedisCacheBackend() got an unexpected keyword argument {name!r}"
                )
        try:
            from ....backends.redis.client import RedisBackend
        except ImportError as exc:  # pragma: no cover - redis is a dependency of the extra
            raise CacheXError("redis is not installed: pip install 'oxicache[redis]'") from exc
        self.key_prefix = key_prefix
        self.protocol = protocol
        host_part = f"[{host}]" if ":" in host and not host.startswith("[") else host
        url = f"redis://{quote(host_part, safe='[]:')}:{int(port)}/{int(db)}"
        client_kwargs = dict(kwargs)
        if password is not None:
            client_kwargs["password"] = password
        client_kwargs.setdefault("socket_timeout", socket_timeout)
        client_kwargs.setdefault("socket_connect_timeout", socket_connect_timeout)
        self._engine = RedisBackend(
            url, prefix=key_prefix.rstrip(":") or "oxicache", **client_kwargs
        )

    @staticmethod
    def load_from_config(config: RedisConfig) -> AsyncRedisCacheBackend:
        """A backend from a :class:`RedisConfig`."""
        return AsyncRedisCacheBackend(
            host=config.host,
            port=config.port,
            password=None if config.password is None else config.password.get_secret_value(),
            db=config.db,
            socket_timeout=config.socket_timeout,
            socket_connect_timeout=config.socket_connect_timeout,
            key_prefix=config.key_prefix,
            protocol=config.protocol,
        )

    def oxicache_backend(self) -> Any:
        return self._engine
