"""``FastApiRedisCache``: fastapi-redis-cache's one configuration object, on oxicache.

``FastApiRedisCache().init(host_url, prefix=, response_header=, ignore_arg_types=)`` points
oxicache at the Redis of ``host_url`` (:func:`oxicache.configure`); no connection is opened
then, each process connects on its first request. With ``CACHE_ENV=TEST`` in the environment
and an empty ``host_url`` (fastapi-redis-cache's test mode), entries live in oxicache's
in-process store instead, emptied by each ``init`` as a new fake Redis was.
"""

from __future__ import annotations

import os
from enum import IntEnum
from typing import Any, ClassVar

from ... import config
from ...exceptions import ConfigError

__all__ = [
    "ALLOWED_HTTP_TYPES",
    "DEFAULT_RESPONSE_HEADER",
    "HTTP_TIME",
    "FastApiRedisCache",
    "RedisStatus",
]

DEFAULT_RESPONSE_HEADER = "X-FastAPI-Cache"
#: The methods whose responses are cached (``HEAD`` is answered from ``GET`` entries too).
ALLOWED_HTTP_TYPES = ["GET"]
#: The format of ``Expires`` (RFC 9110 §5.6.7's IMF-fixdate), for ``datetime.strptime``.
HTTP_TIME = "%a, %d %b %Y %H:%M:%S GMT"


class RedisStatus(IntEnum):
    """Whether the cache is in use: ``CONNECTED`` once :meth:`FastApiRedisCache.init` ran
    (the connection itself is opened on first use, and an outage is a miss)."""

    NONE = 0
    CONNECTED = 1
    AUTH_ERROR = 2
    CONN_ERROR = 3


class FastApiRedisCache:
    """The cache's configuration; one instance per process (a singleton, as before)."""

    _instance: ClassVar[FastApiRedisCache | None] = None

    host_url: str = ""
    prefix: str = ""
    response_header: str = DEFAULT_RESPONSE_HEADER
    ignore_arg_types: list[type[Any]]
    status: RedisStatus = RedisStatus.NONE

    def __new__(cls) -> FastApiRedisCache:
        if cls._instance is None:
            instance = super().__new__(cls)
            instance.ignore_arg_types = []
            cls._instance = instance
        return cls._instance

    @property
    def connected(self) -> bool:
        """True once :meth:`init` ran: ``@cache`` routes are cached from then on."""
        return self.status == RedisStatus.CONNECTED

    @property
    def not_connected(self) -> bool:
        return not self.connected

    def init(
        self,
        host_url: str,
        prefix: str = "",
        response_header: str | None = None,
        ignore_arg_types: list[type[Any]] | None = None,
    ) -> None:
        """Configures the cache.

        Args:
            host_url: the Redis URL (``redis://host:6379/0``, ``rediss://``, ``unix://``);
                empty with ``CACHE_ENV=TEST``: oxicache's in-process store, emptied.
            prefix: prefix of every key (oxicache's ``prefix`` setting); empty keeps
                oxicache's.
            response_header: name of the ``Hit``/``Miss`` header (default
                ``X-FastAPI-Cache``).
            ignore_arg_types: types of endpoint parameters left out of the key (``Request``
                and ``Response`` never are in it).
        """
        if ignore_arg_types is not None and not all(isinstance(t, type) for t in ignore_arg_types):
            raise ConfigError(
                f"ignore_arg_types takes a list of types (such as [Session]), got"
                f" {ignore_arg_types!r}"
            )
        header = response_header or DEFAULT_RESPONSE_HEADER
        config.check_setting("header_name", header)  # a field name, or ConfigError
        options: dict[str, Any] = {"prefix": prefix} if prefix else {}
        if host_url:
            config.configure(host_url, **options)
        elif os.environ.get("CACHE_ENV") == "TEST":
            config.configure("memory://", **options)
            config.get_store().clear()
        else:
            raise ConfigError(
                "FastApiRedisCache.init(host_url=''): give the Redis URL"
                " (redis://localhost:6379/0), or set CACHE_ENV=TEST to cache in memory"
            )
        self.host_url = host_url
        self.prefix = prefix
        self.response_header = header
        self.ignore_arg_types = list(ignore_arg_types or ())
        self.status = RedisStatus.CONNECTED
