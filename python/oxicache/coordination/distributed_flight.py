"""Cross-process single-flight: concurrent misses for one key run the handler once across
every process that shares a Redis backend.

In-process single-flight (:mod:`oxicache.coordination.singleflight`) elects one leader per key
and process; with ``N`` workers a cold key still runs the handler ``N`` times. On a remote route
whose backend has locks (:class:`~oxicache.backends.redis.RedisBackend`), each process's leader
also asks Redis for a lock with a lease before it runs the handler::

    SET "<remote key>:lock" <random token> NX PX <lease ms>

- The process that gets it leads: it runs the handler, and releases the lock only once its
  background write of the entry has ended (``GuardedBackend.set_later(..., then=...)``), so
  other processes find the entry when the lock goes. Release is a compare-and-delete (redis-py's
  :class:`~redis.asyncio.lock.Lock`, one Lua script): a lease that ran out and was taken over is
  never released by its former holder. When nothing is written (the handler failed, the
  response may not be stored, the write was dropped), the lock is released at once.
- The others wait: every 10 to 25 ms (with jitter, so processes do not poll in step) they read the
  entry (one ``GET``) and answer from it as soon as it appears (judged by ``RouteCache.accept``
  like any backend hit); in between they try the lock again (one ``SET NX``), so a leader that
  died, hung past its lease, or stored nothing is taken over by one of them. After
  ``lock_timeout`` seconds a waiter stops waiting and runs the handler itself: nobody hangs.
- The waiting process's own concurrent requests wait on its in-process flight as usual; they
  answer from the entry their leader found (:func:`share`/:func:`shared`).
- After taking the lock, a process reads the entry once more: a leader that wrote and
  released between this process's first read and its lock attempt is not run again.

Everything goes through the guard (:class:`~oxicache.backends.guard.GuardedBackend`): deadlines,
breaker, counters. A Redis that is down, slow or cut off by the breaker means no cross-process
coalescing (each process's in-process single-flight still applies), never an error or a wait
longer than the guard's deadlines. A lock request that goes unanswered while the breaker is
closed (a late answer on a loaded host, not a failing backend) is not taken as "no locks": the
process waits for the entry as if another held the lock, bounded by ``lock_timeout``, since a
burst must not turn into one handler run per process. Backends without locks (memcached,
DynamoDB, custom ones without ``try_lock``/``unlock``) coalesce within each process only.
Requests that revalidate (``Cache-Control: no-cache``) and background refreshes of stale entries
take no lock.

Costs and limits: a cold miss's leader pays one ``SET NX`` and one more ``GET``; each waiting
process one ``GET`` and one ``SET NX`` per poll. Reads and ``SET NX`` run under the guard's
read deadline (``backend_timeout``: they hold a request, like any read), the release under
``backend_write_timeout`` (in the background). On a loaded host a burst of cold requests
misses the default 5 ms read deadline often; such late answers make the process wait, and the
breaker stays closed while the server still answers (late replies count as signs of life), so
a burst runs the handler once (tested: 10 bursts of 50 requests over ``uvicorn --workers 4``
at the default settings on a 2-core machine shared with two CPU-bound processes). A
response that is never stored (an error, ``no-store``) is run by one process at a time, each
taking the lock over from the previous one.

Settings: ``distributed_single_flight`` (on by default), ``lock_lease`` (the lease; 0 means
``lock_timeout``; it should exceed the handler's duration: the lease is not extended while the
handler runs) and ``lock_timeout`` (how long a waiter waits). Counters (``oxicache._log``):
``coalesced.remote``, ``coalesce.remote_took_over``, ``coalesce.remote_gave_up``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from .. import _core, _log
from ..backends import remote
from ..backends.guard import BreakerState, GuardedBackend, NoAnswer
from ..runtime import STATE

__all__ = ["LOCK_SUFFIX", "Joined", "Lease", "join", "join_key", "share", "shared"]

#: Appended to an entry's backend key to name its lock.
LOCK_SUFFIX = ":lock"
#: Waiters poll the backend every POLL_MIN + up to POLL_JITTER seconds.
POLL_MIN = 0.010
POLL_JITTER = 0.015
#: How long a frame found by a waiting process stays available to its local followers.
SHARE_SECONDS = 1.0

Reply = tuple[int, Any, bytes]
_T = TypeVar("_T")


class Lease:
    """The lock this process holds for one key. :meth:`release` is idempotent; once
    :meth:`hold_until_written` was called, :meth:`release_soon` leaves the release to the
    background write (which calls :meth:`release` when it ends)."""

    __slots__ = ("_handed", "_released", "backend", "key", "token")

    def __init__(self, backend: GuardedBackend, key: str, token: str) -> None:
        self.backend = backend
        self.key = key
        self.token = token
        self._released = False
        self._handed = False

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        await self.backend.unlock(self.key, self.token)

    def hold_until_written(self) -> None:
        """The background write now releases the lock when it ends."""
        self._handed = True

    def release_soon(self) -> None:
        """Releases in the background, unless a write releases it or it is released."""
        if self._released or self._handed:
            return
        task = asyncio.get_running_loop().create_task(self.release())
        STATE.releases.add(task)  # a reference until it ends
        task.add_done_callback(STATE.releases.discard)


@dataclass(frozen=True)
class Joined:
    """What :func:`join` decided: ``reply`` (and the ``frame`` it came from) when another
    process's entry answers the request; else run the handler, holding ``lease`` if any."""

    lease: Lease | None = None
    reply: Reply | None = None
    frame: bytes | None = None


_ALONE = Joined()


async def join(rc: _core.RouteCache, pending: _core.Pending) -> Joined:
    """Called by a process's in-process leader of a remote miss of ``@cache``: takes the key's
    lock, or waits for the process that has it (see the module docstring)."""
    key = pending.remote_key
    if key is None or pending.revalidate:
        return _ALONE
    backend = remote.get_backend()

    async def read() -> tuple[Reply, bytes | None] | None:
        assert backend is not None and key is not None
        return await _read(rc, pending, backend, key)

    return await join_key(backend, key, read)


async def join_key(
    backend: GuardedBackend | None,
    key: str,
    read: Callable[[], Awaitable[tuple[Reply, bytes | None] | None]],
) -> Joined:
    """:func:`join` for any entry: ``key`` is the entry's backend key (its lock is ``key +
    LOCK_SUFFIX``), ``read`` reads it and judges it for the request (a fresh reply and the
    frame it came from, else None). ``CacheMiddleware`` uses this for its entries."""
    settings = STATE.settings
    if not settings.distributed_single_flight:
        return _ALONE
    if backend is None or not backend.supports_locks or backend.silent:
        # A silent backend (hung: failing, nothing heard for a while) is not asked for a
        # lock: the request would wait the whole deadline, and its process's other requests
        # for the key with it.
        return _ALONE
    lease = settings.lock_lease or settings.lock_timeout
    lock_key = key + LOCK_SUFFIX
    # One token for every attempt: an attempt answered too late may still have taken the
    # lock, and a later attempt then finds it is this process's (not someone to wait for).
    mine = uuid.uuid4().hex
    answered, token = await backend.try_lock(lock_key, lease, token=mine)
    if not answered and not _still_up(backend):
        return _ALONE  # no locks now (breaker open): in-process only
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.lock_timeout
    if token is not None:
        return await _lead(backend, read, Lease(backend, lock_key, token), deadline)
    # Another process holds the lock, or the answer was late while the backend is still up (a
    # burst on a loaded host): wait for the entry rather than run the handler here too.
    while True:
        await _pause()
        if not _still_up(backend):
            return _ALONE  # hung or cut off meanwhile: nothing to wait for
        try:
            reply = await _unless_cut_off(backend, read())
        except NoAnswer:
            reply = None  # a late answer: poll again
        if reply is _CUT_OFF:
            return _ALONE
        if reply is not None:
            _log.count("coalesced.remote")
            return Joined(reply=reply[0], frame=reply[1])
        if loop.time() >= deadline:
            _log.count("coalesce.remote_gave_up")
            return _ALONE
        attempt = await _unless_cut_off(
            backend, backend.try_lock(lock_key, lease, waiting=True, token=mine)
        )
        if attempt is _CUT_OFF:
            return _ALONE
        answered, token = attempt
        if not answered:
            if _still_up(backend):
                continue  # a late answer: poll again
            return _ALONE
        if token is not None:
            # The leader is gone (lease over) or released without storing: lead instead.
            joined = await _lead(backend, read, Lease(backend, lock_key, token), deadline)
            if joined.lease is not None:
                _log.count("coalesce.remote_took_over")
            return joined


#: What :func:`_unless_cut_off` returns when the breaker opened first.
_CUT_OFF: Any = object()


async def _unless_cut_off(backend: GuardedBackend, call: Awaitable[_T]) -> _T:
    """``call``'s result, or ``_CUT_OFF`` as soon as the breaker opens while it runs (the call
    is cancelled): a wait that is a choice ends when the backend is cut off, so the requests
    of this process waiting on it are not held up to the call's own deadline."""
    opening = backend.opening()
    task = asyncio.ensure_future(call)
    either: set[asyncio.Future[Any]] = {task, opening}
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        opening.cancel()
    if task.done():
        return task.result()
    task.cancel()
    return cast(_T, _CUT_OFF)


def _still_up(backend: GuardedBackend) -> bool:
    """Whether a lock that went unanswered is worth waiting on: the breaker is closed and the
    server still replies, late (a loaded host), rather than being silent (hung: nothing heard
    for a read deadline) or cut off (breaker open or probing): then each process alone."""
    return backend.state is BreakerState.CLOSED and not backend.silent


async def _pause() -> None:
    """The wait between two polls, with jitter so processes do not poll in step."""
    await asyncio.sleep(POLL_MIN + random.random() * POLL_JITTER)


async def _lead(
    backend: GuardedBackend,
    read: Callable[[], Awaitable[tuple[Reply, bytes | None] | None]],
    lease: Lease,
    deadline: float,
) -> Joined:
    """Holding the lock: reads the entry once more (a leader may have written and released
    since this request's first read), else leads. A read left unanswered while the backend
    is up is read again (until ``deadline``, the end of ``lock_timeout``): the entry a leader
    released its lock after writing is most likely there, and a late answer is no reason to
    run the handler again."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            found = await read()
            break
        except NoAnswer:
            if loop.time() >= deadline or not _still_up(backend):
                found = None
                break
            await _pause()
    if found is None:
        return Joined(lease=lease)
    lease.release_soon()
    _log.count("coalesced.remote")
    return Joined(reply=found[0], frame=found[1])


async def _read(
    rc: _core.RouteCache, pending: _core.Pending, backend: GuardedBackend, key: str
) -> tuple[Reply, bytes | None] | None:
    """A fresh reply from the backend's entry, with its frame; None while there is none
    (absent, stale, corrupt: the leader overwrites those)."""
    frame = await backend.get_waiting(key)
    if frame is None:
        return None
    reply = _accept(rc, pending, frame)
    return None if reply is None else (reply, frame)


def _accept(rc: _core.RouteCache, pending: _core.Pending, frame: bytes) -> Reply | None:
    try:
        got = rc.accept(pending, frame)
    except Exception:
        return None
    if got.__class__ is tuple:
        return got
    return None


# --- handing a found entry to this process's own waiters -----------------------------------


def share(key: Hashable, frame: bytes) -> None:
    """Keeps the frame a waiting leader found for ``SHARE_SECONDS``, for its local followers
    (a remote-only route does not keep entries from the backend in memory)."""
    STATE.shared_frames[key] = frame

    def forget() -> None:
        if STATE.shared_frames.get(key) is frame:
            del STATE.shared_frames[key]

    asyncio.get_running_loop().call_later(SHARE_SECONDS, forget)


def shared(rc: _core.RouteCache, pending: _core.Pending) -> Reply | None:
    """A local follower's reply from the frame its leader found, if any (judged for this
    request: its own conditions, HEAD...)."""
    frame = STATE.shared_frames.get(pending.key)
    return None if frame is None else _accept(rc, pending, frame)
