"""Two tiers kept coherent across processes: invalidation messages over Redis pub/sub.

With ``configure(two_tier=True)`` on a remote backend, every process keeps its own in-memory
copy of the entries it served (at most ``local_ttl`` seconds, 5 by default). Without help, an
entry invalidated or rewritten by one process would be served stale by the others until their
copies expire. This module closes that gap on Redis:

- **Subscribing.** Every process that runs two tiers on a backend with pub/sub subscribes to
  the channel ``"<prefix>:oxicache:inval"``. Lazily: on the first local-tier miss (the first
  read of the backend or the first write), as a task of the running event loop; never at
  import or at :func:`oxicache.configure` time. The subscription belongs to one process and
  one loop: a forked child (new pid), another event loop, another backend or prefix start a
  new one. A dropped connection (Redis restarted, ``CLIENT KILL``, a network cut, a frozen
  server noticed by an unanswered ``PING``) is re-subscribed with exponential backoff and
  jitter (0.05 s doubling up to 5 s). Messages sent while a subscription was down are lost, so
  on every re-subscription (not the first) the process drops its local copies of the routes it
  served through two tiers: it reads them from the backend again.
- **Publishing.** Whenever this process writes an entry to the backend (a miss's response,
  ``set_later``; an overwrite must reach the others) it publishes ``"k <remote key>"`` once the
  write has been made, only when it runs two tiers itself. Whenever it invalidates —
  :func:`oxicache.invalidate` by namespace, route, path or tag, :func:`oxicache.clear` — it
  publishes, after the backend has deleted, ``"p <key prefix>"`` (``"<prefix>:<ns>:"`` or
  ``"<prefix>:<ns>:<route>:"``), ``"t <tag>"`` (``"path:<16 hex>"``, or ``"tag:<tag>"`` for
  an application tag) or ``"c"``; invalidations
  are published whether or not this process runs two tiers (others may). Each message starts
  with a random sender id of the process (new after a fork), so a process ignores its own.
- **Receiving.** ``k``: the key's last ``:``-separated field is the entry's digest (64 hex
  digits); the local copy with that digest is removed
  (:meth:`~oxicache._core.MemoryStore.remove_digest`). ``p``: the local entries of that
  namespace, or namespace and route, are invalidated (a namespace containing ``:`` makes the
  split ambiguous: both readings are applied, which drops a little more, never less). ``t``:
  the local entries of that path hash (``MemoryStore.invalidate(path_hash=...)``), or of that
  application tag (``MemoryStore.invalidate(tag=...)``; a local copy read from the backend
  does not carry the tags, which the envelope does not hold: it lives out its ``local_ttl``).
  ``c``: the local store is cleared.

**Why pub/sub and not RESP3 client-side caching (``CLIENT TRACKING``).** redis-py's asyncio
client has no client-side-caching support (only the synchronous client gained it, and only
for RESP3 connections); tracking only invalidates the keys this very connection *read*, while
oxicache invalidates by prefix (namespace, route) and by tag (path), which no read ever named;
and broadcasting mode (``BCAST PREFIX``) reports every write of every key under the prefix,
rewrites included, to every process. A plain channel carries exactly the invalidations, in a
dozen bytes, and works the same on standalone Redis, behind Sentinel (the master's
connection) and on a Cluster, where a classic ``PUBLISH`` sent to any node is broadcast to
every node by the cluster bus (so a subscriber on any node hears it).

**Staleness.** With the subscription up, another process sees an invalidation or an overwrite
after the pub/sub delivery latency (a few milliseconds on one host: the two-process test in
``tests/python/coordination/test_coherence.py`` measures it end to end over HTTP). When a
message is lost (the subscriber was disconnected, Redis restarted, the publish failed), the
local copy still lives at most ``local_ttl`` seconds: that is the bound. A request that was
reading the old entry from the backend while the message arrived may also keep it locally for
up to ``local_ttl``: the same bound. A process whose subscription starts lazily may keep, for
up to ``local_ttl``, a copy accepted in the moment before its first subscription was confirmed.

**Memcached and DynamoDB** have no pub/sub: two tiers on them rely on ``local_ttl`` alone (keep
it short), as does any backend without ``publish``/``subscribe`` methods.

Backends opt in with two methods beyond the :class:`~oxicache.backends.Backend` protocol,
looked up on the backend inside the guard: ``async publish(channel, message)`` and
``subscribe(channel)``, an async iterator yielding ``None`` once subscribed, then each
message's bytes, and raising when the subscription is lost
(:class:`~oxicache.backends.redis.RedisBackend` has both). Publishing is bounded by the
backend's write deadline and never raises; nothing here is on the hit path.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..backends import remote
from ..cache_request import BACKEND_TAG_PREFIX, check_tag
from ..exceptions import ConfigError
from ..runtime import STATE

__all__ = [
    "CoherenceCounters",
    "channel",
    "counters",
    "ensure",
    "publish",
    "status",
    "stop",
    "with_announce",
]

logger = logging.getLogger("oxicache.coherence")

#: Backoff between subscription attempts, in seconds: first wait, and the longest.
BACKOFF_MIN = 0.05
BACKOFF_MAX = 5.0
#: A subscription idle this long is pinged; three times this without a reply, it is dropped.
PING_INTERVAL = 1.0
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclasses.dataclass
class CoherenceCounters:
    """What coherence did in this process (since start, or :meth:`reset`)."""

    #: Messages published.
    published: int = 0
    #: Messages not published (backend error, deadline, breaker open).
    publish_failed: int = 0
    #: Successful subscriptions (the first one and every re-subscription).
    subscriptions: int = 0
    #: Subscriptions lost (connection dropped, server silent).
    disconnects: int = 0
    #: Messages received from other processes and applied.
    applied: int = 0
    #: This process's own messages, heard back and ignored.
    own: int = 0
    #: Messages not understood (ignored).
    malformed: int = 0
    #: Times the local copies were dropped because messages may have been lost.
    resyncs: int = 0

    def reset(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, 0)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


if STATE.coherence_counters is None:
    STATE.coherence_counters = CoherenceCounters()
#: This process's counters (kept in :data:`oxicache.runtime.STATE`).
counters: CoherenceCounters = STATE.coherence_counters
#: Wall-clock times (``time.time()``) at which the last message published here was sent, and
#: the last one received was applied: on one host, the difference between two processes is
#: the delivery latency.
_last = STATE.coherence_last


def sender_id() -> str:
    """This process's random id in its messages (a new one after a fork)."""
    pid, sender = STATE.sender
    if pid != os.getpid():
        pid, sender = STATE.sender = (os.getpid(), uuid.uuid4().hex[:16])
    return sender


def channel(prefix: str | None = None) -> str:
    """The channel of an app's coherence messages: ``"<prefix>:oxicache:inval"``."""
    return f"{prefix if prefix is not None else STATE.settings.prefix}:oxicache:inval"


def _pubsub_backend() -> Any | None:
    """The backend under the guard when it has ``publish`` and ``subscribe``; else None."""
    guard = remote.get_backend()
    if guard is None:
        return None
    raw = guard.backend
    if callable(getattr(raw, "publish", None)) and callable(getattr(raw, "subscribe", None)):
        return raw
    return None


class _Subscriber:
    """One process's subscription, in one event loop, for one backend and prefix."""

    def __init__(self, raw: Any, prefix: str, loop: asyncio.AbstractEventLoop) -> None:
        self.raw = raw
        self.prefix = prefix
        self.channel = channel(prefix)
        self.loop = loop
        self.pid = os.getpid()
        self.up = False
        self.ever_up = False
        self.since = 0.0
        #: (namespace, route) of the routes served through two tiers here: what a
        #: re-subscription drops locally.
        self.routes: set[tuple[str, str]] = set()
        self.task = loop.create_task(self.run(), name="oxicache-coherence")

    def current(self, raw: Any, prefix: str, loop: asyncio.AbstractEventLoop) -> bool:
        return (
            self.pid == os.getpid()
            and self.loop is loop
            and self.raw is raw
            and self.prefix == prefix
            and not self.task.done()
        )

    async def run(self) -> None:
        delay = BACKOFF_MIN
        while True:
            try:
                items = self.raw.subscribe(self.channel)
                async with contextlib.aclosing(items):
                    async for item in items:
                        if item is None:
                            self.subscribed()
                            delay = BACKOFF_MIN
                        else:
                            self.apply(item)
                raise ConnectionError("the subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                counters.disconnects += 1
                if self.up or (not self.ever_up and counters.disconnects == 1):
                    logger.warning(
                        "coherence: subscription to %s lost (%s); local copies are kept at most"
                        " local_ttl until it is back",
                        self.channel,
                        type(exc).__name__,
                    )
            finally:
                self.up = False
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_MAX)

    def subscribed(self) -> None:
        counters.subscriptions += 1
        if self.ever_up:
            # Messages published while we were away are lost: read those entries again.
            counters.resyncs += 1
            store = STATE.store
            for namespace, route in list(self.routes):
                store.invalidate(namespace=namespace, route=route)
            logger.info("coherence: subscription to %s back; local copies dropped", self.channel)
        self.up, self.ever_up, self.since = True, True, time.monotonic()

    def apply(self, raw_message: bytes) -> None:
        try:
            text = raw_message.decode("utf-8")
        except UnicodeDecodeError:
            counters.malformed += 1
            return
        sender, _, rest = text.partition(" ")
        if sender == sender_id():
            counters.own += 1
            return
        kind, _, arg = rest.partition(" ")
        if apply_message(kind, arg, self.prefix):
            counters.applied += 1
            _last["applied"] = time.time()
        else:
            counters.malformed += 1


def apply_message(kind: str, arg: str, prefix: str) -> bool:
    """Drops what one message names from the local store; False if it is not understood."""
    store = STATE.store
    if kind == "k":
        digest = arg.rpartition(":")[2]
        if not arg.startswith(prefix + ":") or len(digest) != 64 or not _HEX.issuperset(digest):
            return False
        store.remove_digest(digest)
        return True
    if kind == "p":
        head = prefix + ":"
        if not (arg.startswith(head) and arg.endswith(":")):
            return False
        labels = arg[len(head) : -1]
        if not labels:
            store.clear()
            return True
        store.invalidate(namespace=labels)
        if ":" in labels:  # "<ns>:<route>" (or a namespace containing ":": both readings)
            namespace, route = labels.rsplit(":", 1)
            store.invalidate(namespace=namespace, route=route)
        return True
    if kind == "t":
        if arg.startswith(BACKEND_TAG_PREFIX):  # an application tag (CacheRequest.tag)
            try:
                store.invalidate(tag=check_tag(arg[len(BACKEND_TAG_PREFIX) :]))
            except ConfigError:
                return False
            return True
        if not arg.startswith("path:"):
            return False
        try:
            store.invalidate(path_hash=arg)
        except ConfigError:
            return False
        return True
    if kind == "c" and not arg:
        store.clear()
        return True
    return False


def ensure(namespace: str | None = None, route: str | None = None) -> None:
    """Starts this process's subscription if it runs two tiers on a backend with pub/sub and
    none is running in this loop; remembers the route as one served through two tiers. Cheap;
    called on local-tier misses, never on hits."""
    settings = STATE.settings
    if not settings.two_tier:
        return
    raw = _pubsub_backend()
    if raw is None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    state = STATE.coherence
    if state is None or not state.current(raw, settings.prefix, loop):
        if state is not None and state.pid == os.getpid() and state.loop is loop:
            state.task.cancel()  # another backend or prefix: that subscription is over
        state = STATE.coherence = _Subscriber(raw, settings.prefix, loop)
    if namespace is not None and route is not None:
        state.routes.add((namespace, route))


def status() -> dict[str, Any]:
    """The subscription's state in this process (for health endpoints and tests)."""
    state = STATE.coherence
    live = state is not None and state.pid == os.getpid() and not state.task.done()
    return {
        "sender": sender_id(),
        "channel": state.channel if state is not None else channel(),
        "running": live,
        "subscribed": bool(live and state is not None and state.up),
        "last_published": _last["published"],
        "last_applied": _last["applied"],
        **counters.as_dict(),
    }


async def stop() -> None:
    """Ends this process's subscription (e.g. in a lifespan's shutdown); :func:`ensure`
    starts a new one on the next local-tier miss."""
    state, STATE.coherence = STATE.coherence, None
    if state is None or state.pid != os.getpid() or state.task.done():
        return
    state.task.cancel()
    if state.loop is asyncio.get_running_loop():
        with contextlib.suppress(asyncio.CancelledError):
            await state.task


async def publish(kind: str, arg: str = "") -> bool:
    """Publishes one message (``"k"``, ``"p"``, ``"t"`` or ``"c"`` and its argument) if the
    backend has pub/sub; True when sent. Bounded by the backend's write deadline; never
    raises (a lost message leaves the others' copies to ``local_ttl``)."""
    guard = remote.get_backend()
    raw = _pubsub_backend()
    if guard is None or raw is None:
        return False
    if guard.state.value != "closed":  # the backend is failing: do not wait on it
        counters.publish_failed += 1
        return False
    message = f"{sender_id()} {kind} {arg}" if arg else f"{sender_id()} {kind}"
    sent = time.time()
    try:
        async with asyncio.timeout(max(guard.write_timeout, 0.05)):
            await raw.publish(channel(), message)
    except Exception as exc:
        counters.publish_failed += 1
        logger.debug("coherence: publish failed: %s", type(exc).__name__)
        return False
    counters.published += 1
    _last["published"] = sent
    return True


def with_announce(then: Mapping[str, Callable[[], Awaitable[object]]], key: str) -> dict[str, Any]:
    """The ``then=`` keyword of ``set_later`` (given as ``then``, possibly empty), extended to
    announce ``key`` once the entry was written, when this process runs two tiers on a backend
    with pub/sub (the others drop their copy); unchanged otherwise."""
    if not STATE.settings.two_tier or _pubsub_backend() is None:
        return dict(then)
    before = then.get("then")

    async def announce() -> object:
        try:
            if before is not None:
                await before()
        finally:
            await publish("k", key)
        return None

    return {"then": announce}
