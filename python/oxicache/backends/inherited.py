"""The sockets a forked child inherited from its parent's backend clients.

After ``fork()`` the child holds a copy of every descriptor its parent had open, the
connections of a warm-up's backend clients included. The child never uses them (it builds its
own clients), but a copy it keeps open holds the connection open after the parent closes it,
and anything written through it would interleave with the parent's commands. Each backend
lists the sockets of its clients' connections; the child points those descriptors at
``/dev/null`` (the fork hook of :mod:`oxicache.backends.remote`).

The clients' connection pools are read through their attributes, which are not public API:
every reader here is best effort and returns what it can see (a renamed attribute finds
nothing; it never raises)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["aiohttp_sockets", "emcache_sockets", "redis_client_sockets", "socket_of"]


def socket_of(transport: Any) -> Any | None:
    """The socket under an asyncio transport; None for none, or a closed one."""
    if transport is None:
        return None
    try:
        return transport.get_extra_info("socket")
    except Exception:
        return None


def _sockets(transports: Iterable[Any]) -> list[Any]:
    return [s for s in map(socket_of, transports) if s is not None]


def redis_client_sockets(client: Any) -> list[Any]:
    """The sockets of a redis-py asyncio client's connections: a standalone or Sentinel
    client's pool, or every node's connections of a Cluster client."""
    conns: list[Any] = []  # a connection may be listed twice (a startup node is a node)
    try:
        pool = getattr(client, "connection_pool", None)
        conns += getattr(pool, "_available_connections", ())
        conns += getattr(pool, "_in_use_connections", ())
        manager = getattr(client, "nodes_manager", None)
        nodes = [
            *getattr(manager, "nodes_cache", {}).values(),
            *getattr(manager, "startup_nodes", {}).values(),  # the discovery's connections
        ]
        for node in nodes:
            conns += getattr(node, "_connections", ())
    except Exception:
        pass
    found = _sockets(getattr(getattr(c, "_writer", None), "transport", None) for c in conns)
    return list({id(s): s for s in found}.values())


def emcache_sockets(clients: Iterable[Any]) -> list[Any]:
    """The sockets of emcache clients' pooled connections (free and in use)."""
    transports: list[Any] = []
    try:
        for client in clients:
            cluster = getattr(client, "_cluster", None)
            nodes = [
                *getattr(cluster, "_healthy_nodes", ()),
                *getattr(cluster, "_unhealthy_nodes", ()),
            ]
            for node in nodes:
                pool = getattr(node, "_connection_pool", None)
                conns = {
                    *getattr(pool, "_unused_connections", ()),
                    *getattr(pool, "_connections_last_time_used", {}),
                }
                transports += (getattr(c, "_transport", None) for c in conns)
    except Exception:
        pass
    return _sockets(transports)


def aiohttp_sockets(sessions: Iterable[Any]) -> list[Any]:
    """The sockets of aiohttp client sessions' connections (kept alive and in use)."""
    transports: list[Any] = []
    try:
        for session in sessions:
            connector = getattr(session, "connector", None)
            protos = [p for held in getattr(connector, "_conns", {}).values() for p, _ in held]
            protos += getattr(connector, "_acquired", ())
            transports += (getattr(p, "transport", None) for p in protos)
    except Exception:
        pass
    return _sockets(transports)
