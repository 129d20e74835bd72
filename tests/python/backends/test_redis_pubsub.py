"""``RedisPubSub.subscribe`` against a client that misbehaves on cancellation.

redis-py's ``get_message`` can take a cancellation that lands during its read timeout as
that timeout and return None. The subscription must still end when its task is cancelled:
an event loop's shutdown waits for it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from oxicache.backends.redis.pubsub import RedisPubSub


class SwallowingPubSub:
    """Confirms the subscription, answers pings, and returns None when cancelled."""

    def __init__(self) -> None:
        self.confirmed = False
        self.closed = False

    async def subscribe(self, channel: str) -> None:
        return None

    async def get_message(self, timeout: float) -> Any:
        if not self.confirmed:
            self.confirmed = True
            return {"type": "subscribe"}
        try:
            await asyncio.sleep(timeout)
        except asyncio.CancelledError:
            return None  # the cancellation taken as a timeout
        return {"type": "pong", "data": b""}  # the server is alive

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self.closed = True


class Subscriber(RedisPubSub):
    def __init__(self, pubsub: SwallowingPubSub) -> None:
        self.pubsub = pubsub

    def _conn(self) -> tuple[Any, asyncio.Semaphore]:
        pubsub = self.pubsub

        class Client:
            def pubsub(self) -> SwallowingPubSub:
                return pubsub

        return Client(), asyncio.Semaphore(1)


async def test_a_subscription_ends_when_cancelled_even_if_the_client_swallows_it() -> None:
    pubsub = SwallowingPubSub()
    subscriber = Subscriber(pubsub)
    seen: list[Any] = []

    async def consume() -> None:
        async for item in subscriber.subscribe("c", ping_interval=0.05):
            seen.append(item)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    assert task.done(), "the subscription went on after its task was cancelled"
    with pytest.raises(asyncio.CancelledError):
        task.result()
    assert seen == [None]  # subscribed, then nothing
    assert pubsub.closed
