"""The process's remote backend: built from a URL or an object, guarded, created lazily.

Nothing here opens a connection at import or at :func:`oxicache.configure` time: the backend
objects connect on first use, inside the running event loop, and the guard around them is
rebuilt in a forked child (a new pid), so an app imported by gunicorn ``--preload`` or uvicorn
``--workers`` before the fork never shares a socket between processes.

URLs (``oxicache.configure("redis://...")`` or the ``OXICACHE_URL`` environment variable):

- ``memory://``: no backend (the in-process store; the default);
- ``redis://host:port/db``, ``rediss://...``, ``unix:///path``: Redis standalone;
- ``redis+cluster://host:port``: Redis Cluster (the node given is a startup node);
- ``redis+sentinel://host:port[,host:port]/service_name``: Redis behind Sentinel;
- ``memcached://host:port[,host:port]``: Memcached (several servers);
- ``dynamodb://table?region=...&endpoint_url=...``: DynamoDB.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .backends.base import Backend
from .backends.guard import GuardedBackend
from .exceptions import ConfigError

__all__ = ["backend_from_url", "get_backend", "set_backend"]

#: What configure() set: a Backend, a URL, or None (then ``OXICACHE_URL`` decides).
_spec: Backend | str | None = None
#: Keyword arguments for the guard (deadlines, breaker).
_guard_options: dict[str, Any] = {}
_guarded: GuardedBackend | None = None
_pid: int | None = None


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    out = []
    for part in netloc.split(","):
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
        out.append((host or "127.0.0.1", int(port) if port else default_port))
    return out


def backend_from_url(url: str, *, prefix: str = "oxicache") -> Backend | None:
    """The backend a URL names (see the module docstring); None for ``memory://``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("", "memory"):
        return None
    if scheme in ("redis", "rediss", "unix"):
        from .backends.redis import RedisBackend

        return RedisBackend(url, prefix=prefix)
    if scheme == "redis+cluster":
        from .backends.redis import RedisBackend

        return RedisBackend.cluster(_hosts(parts.netloc, 6379), prefix=prefix)
    if scheme == "redis+sentinel":
        from .backends.redis import RedisBackend

        service = parts.path.strip("/") or "mymaster"
        return RedisBackend.sentinel(
            _hosts(parts.netloc, 26379), service_name=service, prefix=prefix
        )
    if scheme == "memcached":
        from .backends.memcached import MemcachedBackend

        servers = [f"{h}:{p}" for h, p in _hosts(parts.netloc, 11211)]
        return MemcachedBackend(servers, prefix=prefix)
    if scheme == "dynamodb":
        from .backends.dynamodb import DynamoDBBackend

        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        table = parts.netloc or parts.path.strip("/") or "oxicache"
        return DynamoDBBackend(
            table,
            region=query.get("region"),
            endpoint_url=query.get("endpoint_url"),
            prefix=prefix,
        )
    raise ConfigError(f"unknown backend URL scheme {scheme!r} (see oxicache.remote)")


def set_backend(spec: Backend | str | None, **guard_options: Any) -> None:
    """Sets the backend (an object, a URL, or None for the environment / memory). Closes
    nothing: the previous backend is left to the caller (it may be shared)."""
    global _spec, _guarded, _pid, _guard_options
    if spec is not None and not isinstance(spec, str) and not isinstance(spec, Backend):
        raise ConfigError(f"backend must be a URL or a Backend, got {spec!r}")
    _spec, _guard_options = spec, dict(guard_options)
    _guarded, _pid = None, None


def current_spec() -> Backend | str | None:
    """What :func:`set_backend` was last given."""
    return _spec


def get_backend() -> GuardedBackend | None:
    """The guarded backend of this process, or None when entries stay in memory."""
    global _guarded, _pid
    pid = os.getpid()
    if _pid == pid:
        return _guarded
    spec = _spec if _spec is not None else os.environ.get("OXICACHE_URL") or None
    backend: Backend | None
    if isinstance(spec, str):
        from . import config

        backend = backend_from_url(spec, prefix=config.get_settings().prefix)
    else:
        backend = spec
    # A forked child gets a guard of its own; the backend reconnects by itself (pid check).
    _guarded = GuardedBackend(backend, **_guard_options) if backend is not None else None
    _pid = pid
    return _guarded
