"""Pub/sub on the Redis backend, for :mod:`oxicache.coordination.coherence` (beyond the
Backend protocol).

A mixin of :class:`~oxicache.backends.redis.RedisBackend`, on the same lazily created,
fork-safe client (its ``_conn()``):

- :meth:`RedisPubSub.publish` sends one ``PUBLISH`` (on a Cluster, to any node: the cluster
  bus broadcasts classic pub/sub messages to every node);
- :meth:`RedisPubSub.subscribe` holds one connection in ``SUBSCRIBE`` mode (outside the
  backend's in-flight limit) and pings it when idle, so that a dead or frozen server ends the
  subscription with an exception instead of leaving it silently deaf.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["RedisPubSub"]

_CONFIRM = ("subscribe", b"subscribe")
_MESSAGE = ("message", b"message")


class RedisPubSub:
    """``publish`` and ``subscribe`` for a backend whose ``_conn()`` returns
    ``(redis client, semaphore)`` for the running loop and process."""

    def _conn(self) -> tuple[Any, asyncio.Semaphore]:  # pragma: no cover - the backend's
        raise NotImplementedError

    async def publish(self, channel: str, message: str | bytes) -> int:
        """``PUBLISH channel message``; the number of subscribers that got it (on a Cluster,
        those connected to the node asked)."""
        client, sem = self._conn()
        async with sem:
            return int(await client.publish(channel, message))

    async def subscribe(
        self, channel: str, *, ping_interval: float = 1.0
    ) -> AsyncIterator[bytes | None]:
        """Subscribes to ``channel`` on a connection of its own and yields ``None`` once the
        server confirmed the subscription, then each message's payload. When nothing arrives
        for ``ping_interval`` seconds it sends a ``PING``; silence for three intervals (a
        frozen server, a lost network) raises ``TimeoutError``, as a dropped connection raises
        ``ConnectionError``: the caller subscribes again. Closing the iterator closes the
        connection."""
        if not ping_interval > 0:
            raise ValueError("ping_interval must be positive")
        client, _ = self._conn()
        pubsub = client.pubsub()
        silence = 3 * ping_interval
        try:
            async with asyncio.timeout(silence):
                if hasattr(client, "nodes_manager"):
                    # A Cluster client learns its slots on its first command; its pub/sub
                    # object needs them before (idempotent once done).
                    await client.initialize()
                await pubsub.subscribe(channel)
                while True:
                    confirm = await pubsub.get_message(timeout=ping_interval)
                    _raise_if_cancelled()
                    if confirm is not None and confirm.get("type") in _CONFIRM:
                        break
            yield None
            heard = pinged = time.monotonic()
            while True:
                message = await pubsub.get_message(timeout=ping_interval)
                _raise_if_cancelled()
                now = time.monotonic()
                if message is not None:
                    heard = now
                    if message.get("type") in _MESSAGE:
                        data = message.get("data")
                        yield data if isinstance(data, bytes) else str(data).encode()
                    continue
                if now - heard >= silence:
                    raise TimeoutError(f"no reply on the subscription for {silence:.3g} s")
                if now - pinged >= ping_interval:
                    pinged = now
                    async with asyncio.timeout(ping_interval):
                        await pubsub.ping()
        finally:
            # Closed in a task of its own, waited for at most ping_interval: a client that
            # swallows the cancellation of its own close (seen with Sentinel connections) must
            # not hold this iterator's task, nor an event loop's shutdown, forever.
            closing = asyncio.ensure_future(_close_quietly(pubsub))
            _closing.add(closing)
            closing.add_done_callback(_closing.discard)
            await asyncio.wait({closing}, timeout=ping_interval)


#: Subscriptions being closed (a reference until each close ends).
_closing: set[asyncio.Future[None]] = set()


async def _close_quietly(pubsub: Any) -> None:
    """Closes a pub/sub object; the connection may be gone already: nothing to release then."""
    with contextlib.suppress(Exception):
        await pubsub.aclose()


def _raise_if_cancelled() -> None:
    """Raises ``CancelledError`` when this task was asked to stop: redis-py's ``get_message``
    can take a cancellation that lands during its read timeout as that timeout, and return
    None; the subscription loop would then go on forever (an event loop's shutdown waiting on
    it)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
