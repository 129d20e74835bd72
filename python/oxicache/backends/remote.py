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

import dataclasses
import difflib
import importlib.util
import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..exceptions import ConfigError
from ..runtime import STATE
from .base import Backend
from .guard import GuardedBackend

__all__ = [
    "BackendURL",
    "backend_from_url",
    "check_spec",
    "close_backend",
    "get_backend",
    "parse_url",
    "set_backend",
]

#: scheme -> (engine, default port, the extra that installs its client, the client's module)
_SCHEMES: dict[str, tuple[str, int, str, str]] = {
    "redis": ("redis", 6379, "redis", "redis"),
    "rediss": ("redis", 6379, "redis", "redis"),
    "unix": ("redis", 0, "redis", "redis"),
    "redis+cluster": ("redis-cluster", 6379, "redis", "redis"),
    "redis+sentinel": ("redis-sentinel", 26379, "redis", "redis"),
    "memcached": ("memcached", 11211, "memcached", "emcache"),
    "dynamodb": ("dynamodb", 0, "dynamodb", "aiobotocore"),
}
_DYNAMODB_OPTIONS = ("region", "endpoint_url")
_HELP = (
    "use memory://, redis://host:6379/0, rediss://..., unix:///path/redis.sock,"
    " redis+cluster://host:port, redis+sentinel://host:port/service,"
    " memcached://host:port[,host:port] or dynamodb://table?region=..."
)


@dataclasses.dataclass(frozen=True)
class BackendURL:
    """A backend URL, read and checked (see the module docstring); nothing connected."""

    url: str
    engine: str  # "memory", "redis", "redis-cluster", "redis-sentinel", "memcached", "dynamodb"
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""  # Sentinel's service name
    table: str = ""  # DynamoDB's table
    options: tuple[tuple[str, str], ...] = ()  # DynamoDB's query options


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (error messages never carry secrets)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _hosts(url: str, netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    out = []
    for part in netloc.rpartition("@")[2].split(","):
        part = part.strip()
        if part.startswith("["):  # [::1]:6379
            host, _, port = part[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = part.partition(":") if part.count(":") == 1 else (part, "", "")
        if not port:
            number = default_port
        elif port.isdigit() and 0 < int(port) < 65536:
            number = int(port)
        else:
            raise ConfigError(f"backend URL {redact(url)!r}: {port!r} is not a port (1-65535)")
        out.append((host or "127.0.0.1", number))
    return tuple(out)


def parse_url(url: str) -> BackendURL:
    """Reads a backend URL and checks it (scheme, hosts, ports, database, options) and that the
    client library of its extra is installed; raises :class:`ConfigError` naming the mistake
    and the fix. Opens nothing."""
    if not isinstance(url, str) or "://" not in url or any(c.isspace() for c in url.strip()):
        raise ConfigError(f"backend URL {url!r} is not a URL; {_HELP}")
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ConfigError(f"backend URL {redact(url)!r} is malformed ({exc}); {_HELP}") from None
    scheme = parts.scheme.lower()
    if scheme == "memory":
        if parts.netloc or parts.path.strip("/") or parts.query:
            raise ConfigError(f"backend URL {url!r}: memory:// takes nothing after it")
        return BackendURL(url, "memory")
    if scheme not in _SCHEMES:
        close = difflib.get_close_matches(scheme, [*_SCHEMES, "memory"], n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}://?)" if close else ""
        raise ConfigError(f"backend URL {redact(url)!r}: unknown scheme {scheme!r}{hint}; {_HELP}")
    engine, port, extra, module = _SCHEMES[scheme]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"backend URL {redact(url)!r} needs the {module} client:"
            f" pip install 'oxicache[{extra}]'"
        )
    if scheme == "unix":
        if not parts.path:
            raise ConfigError(f"backend URL {url!r}: give the socket's path, unix:///path")
        return BackendURL(url, engine)
    if scheme == "dynamodb":
        table = parts.netloc or parts.path.strip("/") or "oxicache"
        query = parse_qs(parts.query, keep_blank_values=True)
        for name in query:
            if name not in _DYNAMODB_OPTIONS:
                raise ConfigError(
                    f"backend URL {url!r}: unknown option {name!r}"
                    f" (dynamodb:// takes {', '.join(_DYNAMODB_OPTIONS)})"
                )
        options = tuple((k, v[-1]) for k, v in query.items())
        return BackendURL(url, engine, table=table, options=options)
    hosts = _hosts(url, parts.netloc, port)
    if scheme in ("redis", "rediss"):
        if len(hosts) != 1:
            raise ConfigError(
                f"backend URL {redact(url)!r}: redis:// names one server"
                " (several: redis+cluster:// or redis+sentinel://)"
            )
        db = parts.path.strip("/")
        if db and not db.isdigit():
            raise ConfigError(
                f"backend URL {redact(url)!r}: the path is the database number, got {db!r}"
            )
        return BackendURL(url, engine, hosts)
    if scheme == "redis+sentinel":
        return BackendURL(url, engine, hosts, service=parts.path.strip("/") or "mymaster")
    if parts.path.strip("/"):
        raise ConfigError(f"backend URL {redact(url)!r}: {scheme}:// takes no path")
    return BackendURL(url, engine, hosts)


def backend_from_url(url: str, *, prefix: str = "oxicache") -> Backend | None:
    """The backend a URL names (see the module docstring); None for ``memory://``."""
    spec = parse_url(url)
    if spec.engine == "memory":
        return None
    if spec.engine == "redis":
        from .redis.client import RedisBackend

        return RedisBackend(spec.url, prefix=prefix)
    if spec.engine == "redis-cluster":
        from .redis.client import RedisBackend

        return RedisBackend.cluster(list(spec.hosts), prefix=prefix)
    if spec.engine == "redis-sentinel":
        from .redis.client import RedisBackend

        return RedisBackend.sentinel(list(spec.hosts), service_name=spec.service, prefix=prefix)
    if spec.engine == "memcached":
        from .memcached.client import MemcachedBackend

        return MemcachedBackend([f"{h}:{p}" for h, p in spec.hosts], prefix=prefix)
    from .dynamodb import DynamoDBBackend

    options = dict(spec.options)
    return DynamoDBBackend(
        spec.table,
        region=options.get("region") or None,
        endpoint_url=options.get("endpoint_url") or None,
        prefix=prefix,
    )


def _after_fork_in_child() -> None:
    """In a child after ``fork()``: the parent's backend connections (a warm-up before a
    prefork server forks, for instance) are let go of. Each inherited descriptor is pointed at
    ``/dev/null``, so this process holds no copy of the parent's sockets and nothing it does
    can write to them; the Python objects are kept (unused) so that no finaliser tries to close
    them through the parent's event loop. The child builds its own guard and connections."""
    guard = STATE.guard
    STATE.guard, STATE.guard_pid = None, None
    if guard is None:
        return
    _inherited.append(guard)
    inherited = getattr(guard.backend, "inherited_sockets", None)
    if inherited is None:
        return
    try:
        sockets = inherited()
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            for sock in sockets:
                fd = sock.fileno()
                if fd >= 0:
                    os.dup2(devnull, fd)
        finally:
            os.close(devnull)
    except Exception:  # never fail a fork; the child still never uses those sockets
        pass


#: What children inherited from their parent's backend, kept unused (see above).
_inherited: list[object] = []
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def check_spec(spec: object, *, where: str = "") -> None:
    """Raises :class:`ConfigError` unless ``spec`` is None, a backend object or a URL that
    :func:`parse_url` accepts; ``where`` names the call in the message."""
    if isinstance(spec, str):
        parse_url(spec)
    elif spec is not None and not isinstance(spec, Backend):
        raise ConfigError(
            f"{where}backend must be a URL or a backend object (such as"
            f" 'redis://localhost:6379/0', or one from oxicache.backends), got {spec!r}"
        )


def set_backend(spec: Backend | str | None, **guard_options: Any) -> None:
    """Sets the backend (an object, a URL, or None for the environment / memory). Closes
    nothing: the previous backend is left to the caller (it may be shared)."""
    check_spec(spec)
    STATE.backend_spec, STATE.guard_options = spec, dict(guard_options)
    STATE.guard, STATE.guard_pid = None, None


async def close_backend() -> None:
    """Waits for this process's background writes, then closes its backend's connections
    (a lifespan's shutdown). The settings stay: the backend reconnects if used again."""
    guard = STATE.guard if STATE.guard_pid == os.getpid() else None
    if guard is not None:
        await guard.close()


def current_spec() -> Backend | str | None:
    """What :func:`set_backend` was last given."""
    return STATE.backend_spec


def get_backend() -> GuardedBackend | None:
    """The guarded backend of this process, or None when entries stay in memory."""
    pid = os.getpid()
    if STATE.guard_pid == pid:
        return STATE.guard
    spec = STATE.backend_spec
    if spec is None:
        spec = os.environ.get("OXICACHE_URL") or None
    backend: Backend | None
    if isinstance(spec, str):
        backend = backend_from_url(spec, prefix=STATE.settings.prefix)
    else:
        backend = spec
    # A forked child gets a guard of its own; the backend reconnects by itself (pid check).
    guard = GuardedBackend(backend, **STATE.guard_options) if backend is not None else None
    STATE.guard, STATE.guard_pid = guard, pid
    return guard
