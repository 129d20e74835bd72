"""Deadlines, a circuit breaker and bounded background writes around any :class:`Backend`.

The cache is an optimisation: a slow or dead backend must never make a response slower than
a bounded, small amount, nor make it fail. :class:`GuardedBackend` wraps any backend so that:

- every operation runs under a deadline (``asyncio.timeout``): ``timeout`` for reads (5 ms by
  default: a cache read slower than that is not worth waiting for), ``write_timeout`` for
  writes and ``invalidate_timeout`` for invalidations (which may scan);
- a circuit breaker stops calling a backend that keeps failing. **Closed**: calls go through;
  ``failure_threshold`` consecutive failures (an exception or a deadline) open it, once the
  backend has been quiet for ``open_after`` (50 ms: a hiccup that fails every read in flight
  at once is not an outage): no call succeeded and, for a backend that tells (the pipelined
  reads of Redis and Memcached), nothing at all was heard from the server since the first of
  those failing calls was sent (replies arriving after their reader gave up show a slow
  server, not a dead one; an idle spell before the calls shows nothing). **Open**: no
  I/O at all, ``get`` answers a miss at once; after ``reset_timeout`` seconds the next call is
  let through as a single **half-open** probe (concurrent calls fail fast meanwhile). The
  probe's success closes the breaker, its failure opens it again for another
  ``reset_timeout``;
- connection set-up is not slowness: the first call of a process (and event loop) waits for
  the backend's ``connect()`` (bounded by ``connect_timeout``; the ``backend_connect_timeout``
  setting, 1 s) before its own deadline starts, so a script's, a cron job's or a fresh
  worker's first result is read and written like any other. Concurrent first calls share
  that one set-up; after a failed set-up, calls connect within their own deadlines, as after
  a reconnect;
- a deadline that fires well after it was due (by more than the deadline itself, 2 ms at
  least) measured a busy event loop, not the backend: that call is a miss, counted in
  ``loop_busy``, and leaves the breaker alone, so a healthy backend under load is not cut off;
- no exception from the backend escapes: a failed ``get`` is a miss, a failed ``set`` is
  dropped, a failed invalidation returns 0 (never a success it did not have) and is logged as a
  warning. Cancellation of the caller still propagates;
- :meth:`GuardedBackend.set_later` stores after the response, as a background task, with at
  most ``max_pending_writes`` in flight: beyond that a write is dropped, never queued, so a slow
  backend cannot hold memory or delay anything;
- ``set_later(..., then=...)`` awaits ``then`` in the write's task once the write has ended,
  and :meth:`GuardedBackend.try_lock` / :meth:`GuardedBackend.unlock` reach a backend's locks
  (Redis) under the read and write deadlines and the breaker; without an answer there is no
  lock, and callers go on uncoordinated (:mod:`oxicache.coordination.distributed_flight`);
- every outcome is counted (:class:`GuardCounters`), and logged under ``oxicache.backend``: one
  line per breaker state change, and failures at most once per ``log_interval`` seconds as a
  summary. Log lines name the backend, the operation and the exception type — never a key, a
  tag, a prefix or a value.

A guard holds no connection of its own, so it survives ``fork()`` as well as the backend it
wraps. It is meant for one event loop; background writes belong to the loop that started them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ..exceptions import ConfigError, EntryTooLarge
from ..runtime import STATE
from .base import Backend

__all__ = ["BreakerState", "GuardCounters", "GuardedBackend"]

logger = logging.getLogger("oxicache.backend")

_T = TypeVar("_T")


def set_timer(timer: Callable[[str, str, float], None] | None) -> None:
    """Installs (or removes, with None) ``timer(backend_name, op, seconds)``, told about every
    guarded call while metrics are enabled (:mod:`oxicache.integrations.metrics`); without
    one, timing costs nothing."""
    STATE.backend_timer = timer


class BreakerState(enum.Enum):
    """The circuit breaker's state."""

    #: Calls go through to the backend.
    CLOSED = "closed"
    #: No call reaches the backend until ``reset_timeout`` has passed.
    OPEN = "open"
    #: One probe call is in flight; every other call fails fast until it ends.
    HALF_OPEN = "half_open"


@dataclasses.dataclass
class GuardCounters:
    """What a :class:`GuardedBackend` did, since it was created (or :meth:`reset`).

    A ``get`` counts once: in ``hits`` or ``misses`` when the backend answered, else in
    ``errors``, ``timeouts`` or ``short_circuited``. The failure counters cover every operation.
    """

    #: ``get`` answered with a value.
    hits: int = 0
    #: ``get`` answered "absent" (the backend answered; failures are counted apart).
    misses: int = 0
    #: Operations that raised (connection refused, protocol error...), deadlines excluded.
    errors: int = 0
    #: Operations that passed their deadline.
    timeouts: int = 0
    #: Operations not attempted because the breaker was open or a probe was in flight.
    short_circuited: int = 0
    #: Breaker transitions (closed → open → half-open → closed/open each count one).
    state_changes: int = 0
    #: Timeouts whose deadline fired late because the event loop was busy (also counted in
    #: ``timeouts``); they do not move the breaker.
    loop_busy: int = 0
    #: Background writes not made: too many in flight, or no running event loop.
    writes_dropped: int = 0
    #: Invalidations (``delete*``, ``clear``) that could not be applied: breaker open, error
    #: or deadline. The entries they meant to remove may still be served until their TTL.
    invalidations_failed: int = 0
    #: Writes refused before any I/O: the value is over the backend's item size limit, or the
    #: TTL is not a positive finite number. Not backend failures: they never open the breaker.
    refused: int = 0

    def reset(self) -> None:
        """Zeroes every counter."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, 0)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


#: Turns of the event loop a call gets, once its deadline is due, before it is cancelled.
_GRACE_TURNS = 4


async def _within(deadline: float, make: Callable[[], Awaitable[_T]]) -> _T:
    """``await make()`` bounded by ``deadline``: :class:`TimeoutError` past it.

    The deadline measures the backend, not the event loop: when it is due, the call is given
    :data:`_GRACE_TURNS` more turns of the loop before it is cancelled. A reply that reached the
    socket while the loop was busy with other requests is read in the first of those turns
    (asyncio runs the callbacks of ready sockets before those scheduled after them) and
    completes the call, instead of being thrown away for a miss that makes the handler run on
    an overloaded server. A backend that does not answer still costs the deadline plus a few
    turns.

    A deadline works by cancelling the call, and some code swallows a cancellation: on Python
    3.11, ``asyncio.wait_for`` (which redis-py uses to send every command) returns the result
    of its inner future when that future completed just as the cancellation arrived, and
    carries on — with a frozen server, into a read that lasts the library's own socket timeout
    (5 s for redis-py) while the request waits (seen under load by the outage tests,
    tests/python/backends/test_outage.py). So once cancelled, as long as the call has not
    ended, the cancellation is delivered again every fifth of the deadline (at least 1 ms).
    Every cancellation delivered is withdrawn (``uncancel``) before :class:`TimeoutError` is
    raised, so a cancellation of the caller itself still propagates as one.
    """
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    every = max(0.001, deadline / 5)
    delivered = 0
    finished = False
    handle: asyncio.Handle | None = None

    def expire(turns_left: int) -> None:
        nonlocal delivered, handle
        if finished:
            return
        if turns_left:
            handle = loop.call_soon(expire, turns_left - 1)
            return
        delivered += 1
        task.cancel()
        handle = loop.call_later(every, expire, 0)

    handle = loop.call_at(loop.time() + deadline, expire, _GRACE_TURNS)
    try:
        return await make()
    except asyncio.CancelledError:
        if not delivered or task.cancelling() > delivered:
            raise  # the caller itself was cancelled
    finally:
        finished = True
        if handle is not None:
            handle.cancel()
        for _ in range(delivered):  # also when the call swallowed them and returned
            task.uncancel()
    raise TimeoutError


class NoAnswer(Exception):
    """A waiting read (:meth:`GuardedBackend.get_waiting`) went unanswered while the backend
    is still up: neither a hit nor a miss."""


class _Ticket:
    """Admission of one call: the breaker generation it was admitted in, and whether it is
    the half-open probe. Results of calls admitted before a state change do not count."""

    __slots__ = ("generation", "probe")

    def __init__(self, generation: int, probe: bool) -> None:
        self.generation = generation
        self.probe = probe


class GuardedBackend:
    """A :class:`~oxicache.backends.base.Backend` that never raises backend errors, bounds the
    latency of every call and stops calling a failing backend. See the module docstring.

    Parameters (all durations in seconds):

    - ``timeout``: deadline of ``get`` and ``ttl`` (default 0.005).
    - ``write_timeout``: deadline of ``set`` and of background writes (default 0.05).
    - ``invalidate_timeout``: deadline of ``delete``, ``delete_prefix``, ``delete_tag`` and
      ``clear`` (default 2.0).
    - ``connect_timeout``: how long the first call in a process waits for the backend's
      connection set-up (its ``connect()``, when it has one) before its own deadline starts.
      ``None`` (the default of a guard built by hand): no separate set-up, connecting is part
      of each call's deadline. The guard :func:`oxicache.configure` builds uses the
      ``backend_connect_timeout`` setting (1 s).
    - ``failure_threshold``: consecutive failures that open the breaker (default 5), provided
      the backend has been quiet for ``open_after`` seconds too (default 0.05): a hiccup that
      times out every read in flight at once (hundreds under load) is not an outage.
    - ``reset_timeout``: how long the breaker stays open before one probe (default 2.0).
    - ``max_pending_writes``: background writes in flight at most (default 256).
    - ``log_interval``: at most one failure summary per this many seconds (default 60).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        timeout: float = 0.005,
        write_timeout: float = 0.05,
        invalidate_timeout: float = 2.0,
        connect_timeout: float | None = None,
        failure_threshold: int = 5,
        reset_timeout: float = 2.0,
        max_pending_writes: int = 256,
        log_interval: float = 60.0,
        open_after: float = 0.05,
    ) -> None:
        if not (isinstance(open_after, int | float) and 0 <= open_after < float("inf")):
            raise ConfigError(f"open_after must be >= 0 seconds, got {open_after!r}")
        self.open_after = float(open_after)
        #: The backend's ``get_within`` when it keeps read deadlines itself (RedisBackend's
        #: pipelined reads): then no task cancellation bounds a read.
        keeps = getattr(backend, "reads_keep_deadlines", False)
        self._get_within: Callable[[str, float], Awaitable[bytes | None]] | None = (
            backend.get_within if keeps else None  # type: ignore[attr-defined]
        )
        #: And its ``read_soon`` (the read sent at once, as a future, when connected): the
        #: hit path of :meth:`get`.
        self._read_soon: Callable[[str, float], asyncio.Future[bytes | None] | None] | None = (
            getattr(backend, "read_soon", None) if keeps else None
        )
        #: And its ``finish_read``, when a reply needs judging before it is a value
        #: (MemcachedBackend: the entry's counters): a value, None, or (rarely) an awaitable.
        self._finish_read: (
            Callable[[str, Any, float], bytes | Awaitable[bytes | None] | None] | None
        ) = getattr(backend, "finish_read", None) if keeps else None
        #: When a call last succeeded (monotonic): the breaker opens only after a quiet spell.
        self._last_success = time.monotonic()
        #: When the call that began the current run of failures was sent (monotonic).
        self._streak_since = 0.0
        #: The backend's ``last_heard()``, if it has one: when its server last sent anything,
        #: late replies included. A server that answers late is slow, not down.
        self._last_heard: Callable[[], float] | None = getattr(backend, "last_heard", None)
        for label, value in (
            ("timeout", timeout),
            ("write_timeout", write_timeout),
            ("invalidate_timeout", invalidate_timeout),
            ("connect_timeout", 1.0 if connect_timeout is None else connect_timeout),
            ("reset_timeout", reset_timeout),
        ):
            if not (isinstance(value, int | float) and 0 < value < float("inf")):
                raise ConfigError(f"{label} must be a positive number of seconds, got {value!r}")
        if not (isinstance(log_interval, int | float) and log_interval >= 0):
            raise ConfigError(f"log_interval must be >= 0 seconds, got {log_interval!r}")
        for label, count in (
            ("failure_threshold", failure_threshold),
            ("max_pending_writes", max_pending_writes),
        ):
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ConfigError(f"{label} must be an integer >= 1, got {count!r}")
        self.backend = backend
        self.name: str = backend.name
        self.max_item_size: int | None = backend.max_item_size
        self.timeout = float(timeout)
        self.write_timeout = float(write_timeout)
        self.invalidate_timeout = float(invalidate_timeout)
        self.connect_timeout = None if connect_timeout is None else float(connect_timeout)
        #: The backend's connection set-up, if it has one (and a connect timeout is given), and
        #: the set-up of this process and event loop: ``(pid, loop, done)``; ``done`` holds
        #: None once it succeeded, else the exception it ended with.
        self._connect: Callable[[], Awaitable[None]] | None = (
            None if connect_timeout is None else getattr(backend, "connect", None)
        )
        self._setup: (
            tuple[int, asyncio.AbstractEventLoop, asyncio.Future[Exception | None]] | None
        ) = None
        self._setup_task: asyncio.Task[None] | None = None
        self.failure_threshold = failure_threshold
        self.reset_timeout = float(reset_timeout)
        self.max_pending_writes = max_pending_writes
        self.log_interval = float(log_interval)
        self.counters = GuardCounters()

        self._state = BreakerState.CLOSED
        self._generation = 0
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._down_since = 0.0
        self._writes: set[asyncio.Task[None]] = set()
        #: Told when the breaker opens (:meth:`opening`).
        self._opening: set[asyncio.Future[None]] = set()
        # Rate-limited failure log: the window's start and what happened in it.
        self._window_start = -float("inf")
        self._window_failures = 0
        self._window_last_error = ""
        self._window_marks = GuardCounters()
        self._invalidation_warned_at = -float("inf")

    # --- state ---------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """The breaker's state. An open breaker whose ``reset_timeout`` has passed still reads
        ``OPEN`` until the next call probes the backend."""
        return self._state

    def opening(self) -> asyncio.Future[None]:
        """A future of the running loop that is done once the breaker is not closed (at once
        when it is open already): a caller waiting on the backend by choice (cross-process
        single-flight) stops as soon as the backend is cut off."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._state is not BreakerState.CLOSED:
            future.set_result(None)
        else:
            self._opening.add(future)
            future.add_done_callback(self._opening.discard)
        return future

    @property
    def silent(self) -> bool:
        """The breaker is not closed, or the last call failed and the backend has said nothing
        (no success; for a backend that tells, no reply at all) for two read deadlines and at
        least ``open_after``: a hung server, not a slow one. A call now would most likely
        hold its caller for its whole deadline, so optional calls (a cross-process lock) are
        skipped. A slow server under load still replies, late, and is not silent."""
        if self._state is not BreakerState.CLOSED:
            return True
        if not self._consecutive_failures:
            return False
        # Twice the read deadline, and no less than open_after: on a loaded loop a gap of one
        # deadline between replies is common and says nothing about the server.
        return self._quiet_for() >= max(2 * self.timeout, self.open_after)

    def _quiet_for(self) -> float:
        """How long the backend has said nothing while asked: since the last success, the
        last reply heard (for a backend that tells), or the sending of the call whose timeout
        began the current run of failures, whichever came last. An idle spell before that
        call says nothing about the server (a process between two bursts asks nothing)."""
        last = max(self._last_success, self._streak_since)
        if self._last_heard is not None:
            last = max(last, self._last_heard())
        return time.monotonic() - last

    @property
    def pending_writes(self) -> int:
        """Background writes in flight."""
        return len(self._writes)

    def _set_state(self, new: BreakerState, why: str) -> None:
        old = self._state
        if new is old:
            return
        self._state = new
        self._generation += 1
        self.counters.state_changes += 1
        if new is BreakerState.OPEN:
            self._opened_at = time.monotonic()
            waiting, self._opening = self._opening, set()
            for future in waiting:
                if not future.done():
                    future.set_result(None)
            if old is BreakerState.CLOSED:
                self._down_since = self._opened_at
                logger.warning(
                    "backend %s: circuit open (%s); reads are misses and writes are skipped,"
                    " next probe in %.3g s",
                    self.name,
                    why,
                    self.reset_timeout,
                )
            else:
                # Every reset_timeout while the backend stays down: the summary covers it.
                logger.debug("backend %s: circuit open again (%s)", self.name, why)
        elif new is BreakerState.HALF_OPEN:
            logger.debug("backend %s: circuit half-open, probing (%s)", self.name, why)
        else:
            self._consecutive_failures = 0
            logger.info(
                "backend %s: circuit closed (%s) after %.3g s open",
                self.name,
                why,
                time.monotonic() - self._down_since,
            )

    def _admit(self) -> _Ticket | None:
        """A ticket if the call may reach the backend now; None (and counted) otherwise."""
        state = self._state
        if state is BreakerState.CLOSED:
            return _Ticket(self._generation, probe=False)
        if state is BreakerState.OPEN and time.monotonic() - self._opened_at >= self.reset_timeout:
            self._set_state(BreakerState.HALF_OPEN, f"{self.reset_timeout:.3g} s elapsed")
            return _Ticket(self._generation, probe=True)
        self.counters.short_circuited += 1
        self._maybe_summarise()
        return None

    def _succeeded(self, ticket: _Ticket) -> None:
        self._last_success = time.monotonic()
        if ticket.generation != self._generation:
            return
        if ticket.probe:
            self._set_state(BreakerState.CLOSED, "probe succeeded")
        else:
            self._consecutive_failures = 0

    def _failed(self, ticket: _Ticket, op: str, exc: BaseException, elapsed: float) -> None:
        kind = type(exc).__name__
        if isinstance(exc, TimeoutError):
            self.counters.timeouts += 1
        else:
            self.counters.errors += 1
        self._window_failures += 1
        self._window_last_error = f"{op}: {kind}"
        if ticket.generation == self._generation:
            if ticket.probe:
                self._set_state(BreakerState.OPEN, f"probe failed: {op} {kind}")
            elif self._state is BreakerState.CLOSED:
                if not self._consecutive_failures:
                    # A call that went unanswered: the server's silence is measured from when
                    # it was asked. An error (refused, reset) is an answer of its own.
                    timed_out = isinstance(exc, TimeoutError)
                    self._streak_since = time.monotonic() - elapsed if timed_out else 0.0
                self._consecutive_failures += 1
                if (
                    self._consecutive_failures >= self.failure_threshold
                    and self._quiet_for() >= self.open_after
                ):
                    self._set_state(
                        BreakerState.OPEN,
                        f"{self._consecutive_failures} consecutive failures, last {op} {kind}",
                    )
        self._maybe_summarise()

    def _abandoned(self, ticket: _Ticket) -> None:
        """The caller was cancelled mid-call: no verdict on the backend. A probe gives its
        turn back (the breaker reopens with its old deadline, so the next call probes)."""
        if ticket.probe and ticket.generation == self._generation:
            opened_at = self._opened_at
            self._set_state(BreakerState.OPEN, "probe cancelled")
            self._opened_at = opened_at

    # --- rate-limited failure log ----------------------------------------------------------

    def _maybe_summarise(self) -> None:
        now = time.monotonic()
        if now - self._window_start < self.log_interval:
            return
        c, m = self.counters, self._window_marks
        failures = self._window_failures
        short = c.short_circuited - m.short_circuited
        dropped = c.writes_dropped - m.writes_dropped
        lost = c.invalidations_failed - m.invalidations_failed
        if failures or short or dropped or lost:
            logger.warning(
                "backend %s: %d failed operations (last %s), %d calls short-circuited,"
                " %d writes dropped, %d invalidations not applied since the last report;"
                " circuit %s",
                self.name,
                failures,
                self._window_last_error or "none",
                short,
                dropped,
                lost,
                self._state.value,
            )
        self._window_start = now
        self._window_failures = 0
        self._window_marks = dataclasses.replace(self.counters)

    # --- guarded calls ---------------------------------------------------------------------

    async def _call(
        self,
        op: str,
        deadline: float,
        make: Callable[[], Awaitable[_T]],
        *,
        self_timed: bool = False,
    ) -> tuple[bool, _T | None]:
        """``(True, result)`` if the backend answered in time, ``(False, None)`` otherwise
        (short-circuited, failed or late; counted). Cancellation of the caller propagates."""
        ticket = self._admit()
        if ticket is None:
            return False, None
        loop = asyncio.get_running_loop()
        if (
            self._connect is not None
            and not self._is_set_up(loop)
            and not await self._set_up(loop, ticket)
        ):
            return False, None
        started = loop.time()
        try:
            # A backend that keeps the deadline itself (a read whose reply is simply not
            # waited for past it) needs no task cancellation: much cheaper on the hit path.
            result = await (make() if self_timed else _within(deadline, make))
        except asyncio.CancelledError:
            self._abandoned(ticket)
            raise
        except Exception as exc:
            self._call_failed(ticket, op, deadline, loop.time() - started, exc)
            return False, None
        finally:
            timer = STATE.backend_timer
            if timer is not None:
                timer(self.name, op, loop.time() - started)
        self._succeeded(ticket)
        return True, result

    def _setup_for(
        self, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[Exception | None] | None:
        """The set-up of this process and ``loop``, if one was started."""
        setup = self._setup
        if setup is None or setup[1] is not loop or setup[0] != os.getpid():
            return None
        return setup[2]

    def _is_set_up(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether this process's set-up for ``loop`` has ended (successfully or not)."""
        done = self._setup_for(loop)
        return done is not None and done.done()

    async def _set_up(self, loop: asyncio.AbstractEventLoop, ticket: _Ticket) -> bool:
        """Waits for the backend's connection set-up in this process and event loop (the first
        caller starts it; the others wait for the same one): True when it succeeded, else the
        failure is counted (a failure like any other for the breaker) and this call is a miss.
        Bounded by ``connect_timeout``; a caller cancelled meanwhile leaves it running."""
        done = self._setup_for(loop)
        if done is None:
            done = loop.create_future()
            self._setup = (os.getpid(), loop, done)
            self._setup_task = loop.create_task(self._connect_within(done))
        failure = await asyncio.shield(done)
        if failure is None:
            return True
        # Counted like the call's own failure would be (a set-up past its timeout: a timeout).
        assert self.connect_timeout is not None
        self._call_failed(ticket, "connect", self.connect_timeout, self.connect_timeout, failure)
        return False

    async def _connect_within(self, done: asyncio.Future[Exception | None]) -> None:
        assert self._connect is not None
        failure: Exception | None = ConnectionError("connection set-up cancelled")
        try:
            async with asyncio.timeout(self.connect_timeout):
                await self._connect()
            failure = None
        except Exception as exc:
            logger.debug("backend %s: connection set-up failed: %s", self.name, type(exc).__name__)
            failure = exc
        finally:
            if not done.done():  # also when cancelled by close(): the waiters go on
                done.set_result(failure)

    def _call_failed(
        self, ticket: _Ticket, op: str, deadline: float, elapsed: float, exc: Exception
    ) -> None:
        """The verdict on a call that raised ``exc`` after ``elapsed`` seconds."""
        if isinstance(exc, TimeoutError):
            # A deadline that fired well after it was due measures the event loop (busy with
            # other requests), not the backend: a miss, but no verdict for the breaker, which
            # would otherwise open on a healthy backend under load. On-time timeouts (a hung
            # backend, an idle loop) still count; so does a probe.
            if elapsed - deadline > max(deadline, 0.002) and not ticket.probe:
                self.counters.timeouts += 1
                self.counters.loop_busy += 1
                return
        elif isinstance(exc, EntryTooLarge):
            # Refused before any I/O: says nothing about the backend's health.
            self.counters.refused += 1
            if ticket.probe:
                self._abandoned(ticket)
            return
        self._failed(ticket, op, exc, elapsed)

    async def get(self, key: str) -> bytes | None:
        """The stored value, or None: absent, or the backend failed, was late or is cut off."""
        soon = self._read_soon
        waiter = None
        if soon is not None and self._state is BreakerState.CLOSED and STATE.backend_timer is None:
            # The hit path (pipelined Redis reads, breaker closed, no metrics): the same
            # verdicts as ``_call``, awaiting the reply's future itself. No coroutine, closure
            # or ticket stays alive while the request waits (the ticket is made after); under
            # load, every object a waiting request holds brings CPython's collector closer to
            # running.
            loop = asyncio.get_running_loop()
            started = loop.time()
            generation = self._generation
            try:
                waiter = soon(key, self.timeout)  # None: not connected yet (the path below)
                value = None if waiter is None else await waiter
                finish = self._finish_read
                if finish is not None and waiter is not None:
                    got = finish(key, value, self.timeout)
                    value = got if got is None or isinstance(got, bytes) else await got
            except Exception as exc:  # sending failed too, not only the reply: never raise
                elapsed = loop.time() - started
                self._call_failed(_Ticket(generation, False), "get", self.timeout, elapsed, exc)
                return None
            if waiter is not None:
                self._succeeded(_Ticket(generation, False))
                ok = True
        if waiter is None:
            ok, value = await self._call_get(key, self.timeout)
        if ok:
            if value is None:
                self.counters.misses += 1
            else:
                self.counters.hits += 1
        return value

    async def get_waiting(self, key: str) -> bytes | None:
        """:meth:`get` for a request that already waits for another's entry (cross-process
        single-flight): under ``write_timeout``, not the read deadline. The read deadline
        bounds what a hit may cost; a waiter that gives up a late read only waits longer, or
        runs the handler once more when it gives up, which is what single-flight prevents.

        An unanswered read is not a miss here: while the breaker is closed and the server is
        not silent (a late answer on a loaded host), it raises :class:`NoAnswer`, so the
        waiter reads again instead of running the handler for an entry that may well be
        there. A backend cut off or silent answers None, as :meth:`get` does."""
        ok, value = await self._call_get(key, self.write_timeout)
        if not ok:
            if self._state is BreakerState.CLOSED and not self.silent:
                raise NoAnswer
            return None
        if value is None:
            self.counters.misses += 1
        else:
            self.counters.hits += 1
        return value

    async def _call_get(self, key: str, deadline: float) -> tuple[bool, bytes | None]:
        """A guarded read under ``deadline`` (kept by the backend itself when it can, as
        RedisBackend's pipelined reads do): ``(answered, value)``."""
        timed = self._get_within
        if timed is not None:
            return await self._call("get", deadline, lambda: timed(key, deadline), self_timed=True)
        return await self._call("get", deadline, lambda: self.backend.get(key))

    async def set(self, key: str, value: bytes, ttl: float, tags: Sequence[str] = ()) -> None:
        """Stores the value, or silently does not (counted) when the backend cannot."""
        if not (ttl > 0 and math.isfinite(ttl)):
            # A caller's mistake, not the backend's: it must not open the breaker.
            self.counters.refused += 1
            return
        await self._call("set", self.write_timeout, lambda: self.backend.set(key, value, ttl, tags))

    def set_later(
        self,
        key: str,
        value: bytes,
        ttl: float,
        tags: Sequence[str] = (),
        *,
        then: Callable[[], Awaitable[object]] | None = None,
    ) -> bool:
        """Schedules :meth:`set` as a background task and returns at once: True if scheduled;
        False if the breaker is open, ``max_pending_writes`` writes are already in flight or
        no event loop is running (the write is dropped and counted, never queued).

        ``then`` is awaited in the same task once the write has ended (landed or failed), e.g.
        to release a lock only when the entry can be read. It is not called when the write is
        not scheduled (``False``): the caller does what it would have done."""
        if self._state is not BreakerState.CLOSED and not (
            self._state is BreakerState.OPEN
            and time.monotonic() - self._opened_at >= self.reset_timeout
        ):
            self.counters.short_circuited += 1
            return False
        if len(self._writes) >= self.max_pending_writes:
            self.counters.writes_dropped += 1
            self._maybe_summarise()
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.counters.writes_dropped += 1
            return False
        write = (
            self.set(key, value, ttl, tags)
            if then is None
            else self._set_then(key, value, ttl, tags, then)
        )
        task = loop.create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return True

    def write_later(
        self,
        key: str,
        value: bytes,
        ttl: float,
        tags: Sequence[str] = (),
        *,
        then: Callable[[], Awaitable[object]] | None = None,
    ) -> str | None:
        """:meth:`set_later` for an entry a response reports on (``Cache-Status``): None when
        the write was scheduled, else why not, decided before any I/O: ``backend-too-large``
        (over ``max_item_size``: not even offered to the backend), ``backend-down`` (the
        breaker is open) or ``backend-busy`` (too many writes in flight)."""
        limit = self.max_item_size
        if limit is not None and len(value) > limit:
            why: str | None = "backend-too-large"
        elif self.set_later(key, value, ttl, tags, then=then):
            why = None
        else:
            why = "backend-down" if self._state is not BreakerState.CLOSED else "backend-busy"
        return why

    async def _set_then(
        self,
        key: str,
        value: bytes,
        ttl: float,
        tags: Sequence[str],
        then: Callable[[], Awaitable[object]],
    ) -> None:
        try:
            await self.set(key, value, ttl, tags)
        finally:
            await then()

    # --- locks (cross-process single-flight, oxicache.coordination.distributed_flight) --------

    @property
    def supports_locks(self) -> bool:
        """Whether the backend has ``try_lock``/``unlock`` (Redis does; the others do not)."""
        return callable(getattr(self.backend, "try_lock", None)) and callable(
            getattr(self.backend, "unlock", None)
        )

    async def try_lock(
        self, key: str, lease: float, *, waiting: bool = False, token: str | None = None
    ) -> tuple[bool, str | None]:
        """``(answered, token)``: ``(True, token)`` when this caller now holds the lock ``key``
        for ``lease`` seconds, ``(True, None)`` when another holder has it, ``(False, None)``
        when the backend has no locks or could not answer (breaker open, error, later than
        ``timeout``, the read deadline, or ``write_timeout`` when ``waiting``): then nothing is
        coordinated. Counted and guarded like any call. ``token``: the caller's own token,
        the same on every attempt, so that a lock an unanswered attempt took is found to be
        the caller's (backends whose ``try_lock`` takes a ``token``)."""
        try_lock = getattr(self.backend, "try_lock", None)
        if try_lock is None:
            return False, None
        if not (lease > 0 and math.isfinite(lease)):
            self.counters.refused += 1
            return False, None
        # On the request's path before the handler runs, like a read: the read deadline; for a
        # request already waiting for another's entry, the write deadline (see get_waiting).
        deadline = self.write_timeout if waiting else self.timeout
        if token is None:
            ok, got = await self._call("try_lock", deadline, lambda: try_lock(key, lease))
        else:
            ok, got = await self._call(
                "try_lock", deadline, lambda: try_lock(key, lease, token=token)
            )
        if not ok:
            return False, None
        return True, got if isinstance(got, str) else None

    async def unlock(self, key: str, token: str) -> bool:
        """Releases the lock ``key`` if ``token`` still holds it; False otherwise (expired,
        taken over, or the backend could not be asked: the lease then ends by itself)."""
        unlock = getattr(self.backend, "unlock", None)
        if unlock is None:
            return False
        ok, released = await self._call("unlock", self.write_timeout, lambda: unlock(key, token))
        return bool(released) if ok else False

    async def drain(self) -> None:
        """Waits for the background writes in flight (each is bounded by ``write_timeout``)."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def ttl(self, key: str) -> float | None:
        """Seconds ``key`` has left, or None (absent, or the backend cannot tell now)."""
        _, left = await self._call("ttl", self.timeout, lambda: self.backend.ttl(key))
        return left

    async def _invalidate(
        self, op: str, make: Callable[[], Awaitable[_T]]
    ) -> tuple[bool, _T | None]:
        ok, result = await self._call(op, self.invalidate_timeout, make)
        if not ok:
            self.counters.invalidations_failed += 1
            now = time.monotonic()
            if now - self._invalidation_warned_at >= self.log_interval:
                # Its own limiter: a lost invalidation matters more than a lost read, so the
                # first of each interval is a line of its own (the summary counts the rest).
                self._invalidation_warned_at = now
                logger.warning(
                    "backend %s: %s not applied (circuit %s); entries it should remove may be"
                    " served until they expire",
                    self.name,
                    op,
                    self._state.value,
                )
        return ok, result

    async def delete(self, key: str) -> bool:
        """True if the backend removed something; False also when it could not be asked."""
        ok, removed = await self._invalidate("delete", lambda: self.backend.delete(key))
        return bool(removed) if ok else False

    async def delete_prefix(self, prefix: str) -> int:
        """The count removed; 0 also when the backend could not be asked (logged, counted)."""
        ok, n = await self._invalidate("delete_prefix", lambda: self.backend.delete_prefix(prefix))
        return int(n or 0) if ok else 0

    async def delete_tag(self, tag: str) -> int:
        """The count removed; 0 also when the backend could not be asked (logged, counted)."""
        ok, n = await self._invalidate("delete_tag", lambda: self.backend.delete_tag(tag))
        return int(n or 0) if ok else 0

    async def clear(self) -> None:
        """Clears the backend, or logs and counts that it could not."""
        await self._invalidate("clear", self.backend.clear)

    async def close(self) -> None:
        """Waits for the background writes, then closes the backend (errors are logged). A
        later call sets the connection up again."""
        await self.drain()
        task, self._setup, self._setup_task = self._setup_task, None, None
        if task is not None and not task.done():
            task.cancel()
        try:
            async with asyncio.timeout(self.invalidate_timeout):
                await self.backend.close()
        except Exception as exc:
            logger.warning("backend %s: close failed: %s", self.name, type(exc).__name__)

    def __repr__(self) -> str:
        return f"GuardedBackend({self.name!r}, state={self._state.value})"
