"""``CacheMiddleware``: an RFC 9111 shared cache in front of any ASGI app.

A hit is answered before routing, from the stored status, headers and body, without entering
the app. What may be stored is what the app's responses allow (``max-age``, ``s-maxage``,
``Expires``; routes decorated with ``@cache`` send ``max-age`` too); requests carrying
credentials are neither answered from nor stored in the shared cache unless the middleware was
told to share them and the response said so (docs/http.md). A request the cache does not handle
(credentials, a body, a method other than GET/HEAD, ...) reaches the app unchanged, and its
response is passed on with only the label added, as the decorator labels it (``X-Cache:
BYPASS``, ``Cache-Status: oxicache; fwd=bypass; detail=<reason>``). Every decision is made by
the Rust engine (``_core.MiddlewareEngine``); this class only moves ASGI messages.

Per-request state lives in an :class:`_Exchange` made for each call, never on ``self``.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, cast

from .. import _core, _log
from ..backends import remote
from ..backends.base import Backend
from ..backends.guard import GuardedBackend
from ..bypassing import SCOPE_KEY
from ..bypassing import requested as requested_bypass
from ..cache_status import relabelled
from ..config import guard_options
from ..coordination import coherence, distributed_flight
from ..coordination.singleflight import AsyncFlights
from ..exceptions import ConfigError
from ..integrations import observe
from ..keys import function_label
from ..placement import routes_of
from ..runtime import STATE
from ..statuses import DEFAULT_STATUS_CODES, storable_statuses

__all__ = ["CacheMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# What MiddlewareEngine.on_response asks of the response in flight.
_PASS, _BUFFER, _FRESHENED, _STALE = (
    _core.ResponseAction.PASS,
    _core.ResponseAction.BUFFER,
    _core.ResponseAction.FRESHEN,
    _core.ResponseAction.STALE_ON_ERROR,
)

#: With a backend, the most variants (``Vary``) of one URL it holds (``max_variants``).
DEFAULT_MAX_VARIANTS = 64
#: The most ``max_variants`` may be.
MAX_VARIANTS_LIMIT = 65_536
#: Seconds a URL whose response was judged not storable skips single-flight (Varnish's
#: "hit-for-miss"): concurrent requests for it go to the app side by side instead of queueing
#: behind one another for an answer that will not be shared.
HIT_FOR_MISS_SECONDS = 10.0
#: URLs remembered as not storable at most (the oldest are forgotten first).
HIT_FOR_MISS_MAX = 10_000


class CacheMiddleware:
    """Caches an ASGI app's responses as a shared HTTP cache (RFC 9111).

    Args:
        app: the ASGI app.
        shared: shared-cache semantics (``s-maxage``, ``private`` not stored, ``Authorization``
            rules of RFC 9111 §3.5). ``False`` makes it a private cache.
        statuses: statuses that may be stored (with explicit freshness).
        share_authorized: let responses to requests with ``Authorization``/``Cookie`` be stored
            and reused when they say ``public``, ``s-maxage`` or ``must-revalidate``. Off by
            default: the middleware sits before authentication.
        honor_request_no_cache: whether request ``no-cache``/``max-age``/``min-fresh`` make the
            app run; default from :func:`oxicache.configure`.
        max_entry_size: largest body stored (bytes); default from :func:`oxicache.configure`.
        namespace: which app the entries belong to. By default, derived from the app it wraps
            (its routes: paths, methods and endpoints; or its name for a bare ASGI app), so
            two apps in one process never answer from each other's entries, and the same app
            finds its entries in every process. Give one to set it yourself.
        backend: where entries live. By default, the backend :func:`oxicache.configure` (or
            ``OXICACHE_URL``) selected, shared with ``@cache``; a URL or a backend object
            here gives this middleware its own (``"memory://"``: this process only). With a
            remote backend every worker and host answers from one set of entries, under the
            same guard as the decorator (deadlines, breaker, writes after the response): a
            backend that is down, hung or returns a foreign entry is a miss.
        max_variants: with a backend, the most variants of one URL (responses with ``Vary``,
            one per set of request values) it holds, 1 to 65,536: each variant takes one of
            this many slots of its URL, so requests sending ever new values for a ``Vary``
            field cannot fill the backend with one URL's variants. Two variants that share
            their slots replace each other (a miss, never the other's answer). In memory,
            variants are bounded by the store's size.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        shared: bool = True,
        statuses: Iterable[int] = DEFAULT_STATUS_CODES,
        share_authorized: bool = False,
        honor_request_no_cache: bool | None = None,
        max_entry_size: int | None = None,
        namespace: str | None = None,
        backend: Backend | str | None = None,
        max_variants: int = DEFAULT_MAX_VARIANTS,
    ) -> None:
        remote.check_spec(backend, where="CacheMiddleware: ")
        if (
            isinstance(max_variants, bool)
            or not isinstance(max_variants, int)
            or not 1 <= max_variants <= MAX_VARIANTS_LIMIT
        ):
            raise ConfigError(
                f"CacheMiddleware: max_variants must be a whole number from 1 to"
                f" {MAX_VARIANTS_LIMIT}, got {max_variants!r} (the default,"
                f" {DEFAULT_MAX_VARIANTS}, suits most apps)"
            )
        self._max_variants = max_variants
        self.app = app
        self._backend_spec = backend
        #: The guard of ``backend=``, and the process it was built in (rebuilt after a fork).
        self._own_guard: GuardedBackend | None = None
        self._own_pid = -1
        self._namespace = namespace
        self._shared = shared
        self._statuses = list(storable_statuses(statuses, option="statuses"))
        self._share_authorized = share_authorized
        self._honor = honor_request_no_cache
        self._max_entry_size = max_entry_size
        self._engine: _core.MiddlewareEngine | None = None
        self._generation = -1
        self._enabled = True  # configure(enabled=...) as of the engine's build
        #: Enabled and no bypass_header configured: only oxicache.bypass() (a mark in the
        #: scope) can make a request bypass (as of the engine's build).
        self._plain = True
        self._backend_name = "memory"
        self._flights = AsyncFlights()
        self._refreshes: set[asyncio.Task[None]] = set()
        #: Flight keys whose last response was not storable, with when that stops counting.
        self._uncacheable: dict[object, float] = {}
        #: Flight keys whose leader is writing a variants index to the backend: done once
        #: the write has ended (see ``_writer``). Its waiters read after it, so that their
        #: variants join that index rather than each replacing it with one of its own.
        self._index_writes: dict[object, asyncio.Future[None]] = {}

    def engine(self) -> _core.MiddlewareEngine:
        """The Rust engine, rebuilt after :func:`oxicache.configure`."""
        generation = STATE.generation
        engine = self._engine
        if engine is None or self._generation != generation:
            settings = STATE.settings
            honor = settings.honor_request_no_cache if self._honor is None else self._honor
            if self._namespace is None:
                self._namespace = app_namespace(self.app)
            backend = self.backend()
            tier = "memory" if backend is None else "two-tier" if settings.two_tier else "remote"
            self._backend_name = "memory" if backend is None else backend.name
            engine = self._engine = _core.MiddlewareEngine(
                STATE.store,
                prefix=settings.prefix,
                app_namespace=self._namespace,
                header_name=settings.header_name,
                honor_no_cache=honor,
                max_body=self._max_entry_size or settings.max_entry_size,
                shared=self._shared,
                statuses=self._statuses,
                share_authorized=self._share_authorized,
                tier=tier,
                local_ttl=settings.local_ttl,
                compress_threshold=settings.compress_threshold,
                max_variants=self._max_variants,
            )
            self._generation = generation
            self._enabled = settings.enabled
            self._plain = settings.enabled and not settings.bypass_header
        return engine

    def backend(self) -> GuardedBackend | None:
        """The guarded backend entries live in, or None in memory (see ``backend=``)."""
        spec = self._backend_spec
        if spec is None:
            return remote.get_backend()
        pid = os.getpid()
        if self._own_pid != pid:
            raw = (
                remote.backend_from_url(spec, prefix=STATE.settings.prefix)
                if isinstance(spec, str)
                else spec
            )
            self._own_guard = (
                None if raw is None else GuardedBackend(raw, **guard_options(STATE.settings))
            )
            self._own_pid = pid
        return self._own_guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if STATE.observing and ((gate := STATE.observe_gate) is None or gate()):
            send = _observed(send, self._backend_name)  # (a listener wants this reply)
        engine = self._engine
        if engine is None or self._generation != STATE.generation:
            engine = self.engine()
        if not self._plain or SCOPE_KEY in scope:
            if not self._enabled:
                await self.app(scope, receive, _Bypass(engine, "disabled", send).send)
                return
            skip = requested_bypass(scope)  # bypass_header, or oxicache.bypass() outside
            if skip is not None:
                await self.app(scope, receive, _Bypass(engine, skip, send).send)
                return
        try:
            result = engine.lookup(scope)
        except Exception as exc:  # a broken cache is a miss, never an error page
            _log.warn(
                "error.middleware", "oxicache middleware: lookup failed: %s", _log.describe(exc)
            )
            await self.app(scope, receive, _Bypass(engine, "error", send).send)
            return
        if result.__class__ is tuple:  # a _core.Hit: sent here, no coroutine more
            status, headers, body = result
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        if isinstance(result, _core.Bypass):
            reason = result.reason
            _log.count(f"middleware.bypass.{reason}")
            unsafe = scope if reason == "unsafe" else None
            backend = self.backend() if unsafe else None
            announce = self._backend_spec is None
            bypass = _Bypass(engine, reason, send, unsafe, backend, announce)
            await self.app(scope, receive, bypass.send)
            return
        pending = cast(_core.MiddlewarePending, result)
        if pending.read_key is not None:
            got = await self._read(engine, pending)
            if got.__class__ is tuple:
                await _send_reply(send, got)
                return
            pending = cast(_core.MiddlewarePending, got)
        await self._miss(engine, pending, scope, receive, send)

    async def _miss(
        self,
        engine: _core.MiddlewareEngine,
        pending: _core.MiddlewarePending,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """What neither memory nor the backend answered: stale-while-revalidate, waiting for
        another request's answer, or the app itself (stored on the way out). Apart from
        ``__call__`` so that a hit creates none of the closures this needs: every object a
        request holds while it waits for the backend brings the collector closer."""
        forward = pending.forward_headers
        child = scope if forward is None else {**scope, "headers": forward}
        stale = pending.stale_reply
        if stale is not None and pending.serve_stale:
            # RFC 5861 §3: answer stale now; one background request per URL refreshes it.
            await _send_reply(send, stale)
            leading = self._flights.lead(pending.flight)
            if leading is not None:
                task = asyncio.get_running_loop().create_task(
                    self._refresh(engine, pending, child, leading)
                )
                self._refreshes.add(task)
                task.add_done_callback(self._refreshes.discard)
            return
        flight = pending.flight
        loop = asyncio.get_running_loop()
        until = self._uncacheable.get(flight)
        lease: distributed_flight.Lease | None = None
        if until is not None and until > loop.time():
            leading = None  # hit-for-miss: to the app at once, no queue
        else:
            leading = self._flights.lead(flight)
            # Another request for this URL at the app: wait for its outcome, then look again.
            timeout = STATE.settings.lock_timeout
            if leading is None and await self._flights.wait(flight, timeout):
                written = self._index_writes.get(flight)
                if written is not None:  # (the guard's write deadline bounds it too)
                    await asyncio.wait((written,), timeout=timeout)
                again = engine.lookup_coalesced(scope)
                if isinstance(again, _core.MiddlewarePending) and again.read_key is not None:
                    again = await self._read(engine, again)
                if isinstance(again, tuple):
                    _log.count("middleware.coalesced")
                    await _send_reply(send, again)
                    return
                if isinstance(again, _core.MiddlewarePending):
                    # Another variant of a URL with Vary: this one joins the index its
                    # leader wrote (RFC 9111 §4.1), rather than replacing it.
                    pending = again
            remote_key = pending.remote_key
            if leading is not None and remote_key is not None and not pending.revalidating:
                # Across processes too: the URL's lock in the backend, or its holder's entry.
                joined = await self._join(engine, pending, remote_key)
                if joined.reply is not None:
                    self._flights.land(flight, leading, True)
                    await _send_reply(send, joined.reply)
                    return
                lease = joined.lease

        def decided(stored: bool) -> None:
            """The response's fate is known: the waiters go on now, not once the leader's
            client has read it all (a slow reader, an endless event stream)."""
            if stored:
                self._uncacheable.pop(flight, None)
            else:
                if lease is not None:
                    # Nothing will be written: the other processes go on now, not once
                    # this response's client has read it all (a slow reader, a stream).
                    lease.release_soon()
                if len(self._uncacheable) >= HIT_FOR_MISS_MAX:
                    self._uncacheable.pop(next(iter(self._uncacheable)))
                self._uncacheable[flight] = loop.time() + HIT_FOR_MISS_SECONDS
            if leading is not None:
                self._flights.land(flight, leading, stored)

        try:
            writer = self._writer(pending, lease, flight if leading is not None else None)
            exchange = _Exchange(engine, pending, send, decided, writer)
            try:
                await exchange.run(self.app, child, receive)
            except Exception:
                if stale is None or exchange.start is not None:
                    raise
                # RFC 5861 §4: stale-if-error covers an app that fails before answering.
                _log.count("middleware.stale.if_error")
                await _send_reply(send, stale)
        finally:
            if lease is not None:
                lease.release_soon()  # unless the entry's write releases it once written
            if leading is not None:
                self._flights.land(flight, leading, True)

    async def _read(
        self,
        engine: _core.MiddlewareEngine,
        pending: _core.MiddlewarePending,
        waiting: bool = False,
    ) -> _Reply | _core.MiddlewarePending:
        """Reads the backend for a request memory could not answer: the URL's entry, or its
        variants index and then the variant (RFC 9111 §4.1), from one of its two slots. A
        reply to send, or the pending miss to go on with. A backend that fails, hangs or
        returns a foreign entry is a miss. ``waiting``: read by a request that waits for
        another process's entry (``GuardedBackend.get_waiting``), for this process's waiting
        requests too (they find the entry in memory, not through another read that a busy
        loop could make late)."""
        backend = self.backend()
        if self._backend_spec is None:
            coherence.ensure("middleware", self._namespace)  # two tiers: hear invalidations
        got: _Reply | _core.MiddlewarePending = pending
        # The URL's entry or variants index; then the variant's first slot, and its second
        # when the first holds another variant.
        for _ in range(3):
            key = cast(_core.MiddlewarePending, got).read_key
            if key is None:
                break
            if backend is None:
                frame = None
            elif waiting:
                frame = await backend.get_waiting(key)
            else:
                frame = await backend.get(key)
            try:
                got = engine.accept(cast(_core.MiddlewarePending, got), frame, coalesced=waiting)
            except Exception as exc:  # never an error page
                _log.warn(
                    "error.middleware.remote",
                    "oxicache middleware: remote entry unusable: %s",
                    _log.describe(exc),
                )
                return engine.accept(pending, None)
            if got.__class__ is tuple:
                _log.count("middleware.remote.hit")
                return got
            if cast(_core.MiddlewarePending, got).foreign:
                # Foreign, truncated or damaged: a miss, overwritten by this request.
                _log.warn(
                    "middleware.remote.corrupt",
                    "oxicache middleware: corrupt entry in the backend",
                )
        return got

    async def _join(
        self, engine: _core.MiddlewareEngine, pending: _core.MiddlewarePending, key: str
    ) -> distributed_flight.Joined:
        """Cross-process single-flight for a cold URL (``coordination.distributed_flight``)."""

        async def read() -> tuple[_Reply, bytes | None] | None:
            again = engine.reread(pending)
            got = await self._read(engine, again, waiting=True)
            return (got, None) if isinstance(got, tuple) else None

        return await distributed_flight.join_key(self.backend(), key, read)

    def _writer(
        self,
        pending: _core.MiddlewarePending,
        lease: distributed_flight.Lease | None = None,
        flight: object = None,
    ) -> Callable[[list[tuple[str, bytes, float]]], str | None]:
        """Schedules a response's backend writes after it (bounded, never delaying it); the
        cross-process lock is released once the last has ended, so waiters find the entry.
        The writer returns None when the response's own entry was scheduled, else why not,
        decided before any I/O: ``backend-too-large`` (over ``max_item_size``),
        ``backend-down`` (breaker open) or ``backend-busy`` (too many writes in flight).
        ``flight``: this process's waiters for the URL, when this request leads them; they
        read after the variants index (the last write, when there is one) has ended."""

        def write(writes: list[tuple[str, bytes, float]]) -> str | None:
            backend = self.backend() if writes else None
            if backend is None:
                return None
            tags = (pending.path_tag,)
            last = len(writes) - 1
            skipped: str | None = None
            for i, (key, frame, ttl) in enumerate(writes):
                releasing = lease if i == last else None  # the last write releases the lock
                index_written = None
                if i == last and i > 0 and flight is not None:  # the variants index
                    index_written = self._index_write(flight)
                then: dict[str, Any] = {}
                if releasing is not None or index_written is not None:
                    then["then"] = self._after_write(releasing, flight, index_written)
                if self._backend_spec is None:
                    then = coherence.with_announce(then, key)
                why = backend.write_later(key, frame, ttl, tags, **then)
                if why is None:
                    if releasing is not None:
                        releasing.hold_until_written()
                else:
                    if index_written is not None:
                        self._index_written(flight, index_written)
                    _log.count(f"middleware.remote.write_skipped.{why}")
                    if i == 0:  # the response's own entry (its variants index comes after)
                        skipped = why
            return skipped

        return write

    def _after_write(
        self,
        releasing: distributed_flight.Lease | None,
        flight: object,
        index_written: asyncio.Future[None] | None,
    ) -> Callable[[], Awaitable[None]]:
        """What runs once the last write has ended: the URL's lock released, and this
        process's waiters told the variants index was written."""

        async def after() -> None:
            try:
                if releasing is not None:
                    await releasing.release()
            finally:
                if index_written is not None:
                    self._index_written(flight, index_written)

        return after

    def _index_write(self, flight: object) -> asyncio.Future[None]:
        """Marks ``flight``'s variants index as being written (see ``_index_writes``)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._index_writes[flight] = done
        return done

    def _index_written(self, flight: object, done: asyncio.Future[None]) -> None:
        """The write of ``flight``'s variants index has ended (landed, failed or skipped)."""
        if not done.done():
            done.set_result(None)
        if self._index_writes.get(flight) is done:
            del self._index_writes[flight]

    async def _refresh(
        self,
        engine: _core.MiddlewareEngine,
        pending: _core.MiddlewarePending,
        child: Scope,
        leading: asyncio.Future[bool],
    ) -> None:
        """The background request of stale-while-revalidate: its reply goes nowhere, the
        response it gets (or a 304 freshening the entry) is stored."""

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: Message) -> None:
            return None

        try:
            exchange = _Exchange(engine, pending, discard, write=self._writer(pending))
            await exchange.run(self.app, child, receive)
        except Exception as exc:
            _log.warn(
                "error.refresh",
                "oxicache middleware: background refresh failed: %s",
                _log.describe(exc),
            )
        finally:
            self._flights.land(pending.flight, leading, True)


def app_namespace(app: Any) -> str:
    """A name for the app behind a middleware, the same in every process that runs it: a digest
    of its routes (path, methods, endpoint) found through the middlewares it is wrapped in, or
    the module and name of a bare ASGI app."""
    inner, seen = app, 0
    while not hasattr(inner, "routes") and hasattr(inner, "app") and seen < 32:
        inner, seen = inner.app, seen + 1  # the middlewares Starlette stacks inside this one
    parts: list[str] = []
    for route in routes_of(inner):
        endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
        name = _endpoint_label(endpoint)
        methods = ",".join(sorted(getattr(route, "methods", None) or ()))
        parts.append(f"{getattr(route, 'path', '')} {methods} {name}")
    if not parts:
        kind = inner if hasattr(inner, "__qualname__") else type(inner)
        parts.append(f"{getattr(kind, '__module__', '')}.{getattr(kind, '__qualname__', '')}")
    return hashlib.blake2b("\n".join(sorted(parts)).encode(), digest_size=12).hexdigest()


def _endpoint_label(endpoint: Any) -> str:
    """An endpoint's label as ``@cache`` labels functions: two apps made by one factory
    differ by what their endpoints' closures captured (``create_app("internal")``)."""
    cached = getattr(endpoint, "__oxicache__", None)
    if cached is not None:
        return str(cached.label)
    if inspect.isfunction(endpoint) or inspect.ismethod(endpoint):
        # A closure over something unkeyable (the app itself, for FastAPI's docs routes) is
        # named by its code alone: the namespace must be the same in every process.
        return function_label(inspect.unwrap(endpoint), unkeyable="name")
    kind = endpoint if hasattr(endpoint, "__qualname__") else type(endpoint)
    return f"{getattr(kind, '__module__', '')}.{getattr(kind, '__qualname__', '')}"


def _observed(send: Send, backend: str) -> Send:
    """``send``, telling the metrics and tracing listeners the outcome of the response it
    starts (called when some listener wants this reply: ``STATE.observe_gate``)."""

    async def observed_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            observe.reply("CacheMiddleware", backend, message["status"], message.get("headers", ()))
        await send(message)

    return observed_send


_Reply = tuple[int, list[tuple[bytes, bytes]], bytes]


async def _send_reply(send: Send, reply: _Reply) -> None:
    status, headers, body = reply
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _Bypass:
    """Passes the response to a request the cache does not handle (``reason``) through, its
    start labelled like the decorator's bypasses (``BYPASS``, ``Cache-Status: oxicache;
    fwd=bypass; detail=...``, RFC 9211 §2.2): the app's status, headers and body are sent as
    they are, with the label's fields after its own. For an unsafe method (``unsafe_scope``),
    a success invalidates the URI too (RFC 9111 §4.4)."""

    def __init__(
        self,
        engine: _core.MiddlewareEngine,
        reason: str,
        send: Send,
        unsafe_scope: Scope | None = None,
        backend: GuardedBackend | None = None,
        announce: bool = True,
    ) -> None:
        self.engine, self.reason, self._send = engine, reason, send
        self.scope = unsafe_scope
        self.backend = backend
        #: Tell the other processes (the configured backend's coherence channel).
        self.announce = announce

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if self.scope is not None:
                try:
                    self.engine.invalidate(self.scope, message["status"], headers)
                    if self.backend is not None:
                        await self._invalidate_remote(message["status"], headers)
                except Exception as exc:
                    _log.warn(
                        "error.invalidate",
                        "oxicache middleware: invalidation failed: %s",
                        _log.describe(exc),
                    )
            try:
                label = self.engine.bypass_label(headers, self.reason)
            except Exception as exc:  # the label is not worth a failed response
                _log.warn(
                    "error.label",
                    "oxicache middleware: bypass label failed: %s",
                    _log.describe(exc),
                )
            else:
                message = {**message, "headers": headers + label}
        await self._send(message)

    async def _invalidate_remote(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        """RFC 9111 §4.4 across processes: the backend drops the invalidated URIs' entries (or
        their variants indexes, which makes every variant unreachable), one key each, then
        the other processes drop their local copies (a coherence message), before this
        response starts, so the client's next request misses. A backend that is silent (hung)
        or cut off is not waited on: the invalidation is skipped, counted and logged, and the
        entries live out their freshness."""
        assert self.scope is not None and self.backend is not None
        keys = self.engine.invalidated_keys(self.scope, status, headers)
        if not keys:
            return
        if self.backend.silent:
            _log.warn(
                "middleware.invalidate.skipped",
                "oxicache middleware: backend unavailable, an invalidation was not applied",
            )
            return
        for key in keys:
            await self.backend.delete(key)
            if self.announce:
                await coherence.publish("k", key)


class _Exchange:
    """One miss in flight: watches the app's response, buffers it when it may be stored."""

    def __init__(
        self,
        engine: _core.MiddlewareEngine,
        pending: _core.MiddlewarePending,
        send: Send,
        decided: Callable[[bool], None] | None = None,
        write: Callable[[list[tuple[str, bytes, float]]], str | None] | None = None,
    ) -> None:
        self.engine = engine
        #: Schedules the backend writes of a stored response (None: memory only).
        self._write = write
        self.pending = pending
        self._send = send
        #: Told once whether the response was stored, as soon as that is known.
        self._decided = decided
        self.mode = _PASS
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False
        #: The client went away while the app was answering (docs/http.md: never store then).
        self.disconnected = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", []))
            action, out = self.engine.on_response(self.pending, status, headers)
            self.start = {**message, "headers": headers}
            self.mode = action
            if action == _PASS:
                self._decide(False)
                await self._send({**message, "headers": out})
            return
        if self.mode == _PASS:
            await self._send(message)
            return
        if kind != "http.response.body":
            # Another way to send the content (``http.response.pathsend``, ...): not stored;
            # the held-back start goes first.
            await self._spill(True, "not-buffered")
            await self._send(message)
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        self.chunks.append(body)
        self.size += len(body)
        if more and len(self.chunks) == 1 and not self._sized():
            # A body that streams with no Content-Length: passed on as it comes, never held
            # back and never stored (RFC 9111 §3.3: it may never be complete).
            await self._spill(True, "streaming")
            return
        if self.mode == _BUFFER and self.size > self.engine.max_body:
            await self._spill(more, "too-large")
            return
        if not more:
            await self._complete()

    async def _spill(self, more: bool, reason: str) -> None:
        """Not to be stored after all (``reason``): send what was held back, pass the rest."""
        assert self.start is not None
        _log.count(f"middleware.not_stored.{reason}")
        self._decide(False)
        headers = self.engine.not_stored_headers(self.start["headers"], reason)
        await self._send({**self.start, "headers": headers})
        if self.chunks or not more:
            await self._send(
                {"type": "http.response.body", "body": b"".join(self.chunks), "more_body": more}
            )
        self.chunks, self.mode = [], _PASS
        self.done = not more

    async def _complete(self) -> None:
        assert self.start is not None
        if self.disconnected and self.mode == _BUFFER:
            await self._spill(False, "disconnected")
            return
        body = b"".join(self.chunks)
        self.chunks = []
        writes: list[tuple[str, bytes, float]] = []
        if self.mode == _FRESHENED:
            reply, writes = self.engine.freshen(self.pending, self.start["headers"])
        elif self.mode == _STALE and self.pending.stale_reply is not None:
            _log.count("middleware.stale.if_error")
            reply = self.pending.stale_reply
        else:
            reply, writes = self.engine.complete(
                self.pending, self.start["status"], self.start["headers"], body
            )
        if writes and self._write is not None:
            skipped = self._write(writes)
            if skipped is not None:
                # RFC 9211 §2.7: `stored` only when the entry was (two tiers: locally).
                status, headers, body = reply
                label = self.engine.write_skipped_status(self.pending, skipped)
                reply = (status, relabelled(headers, label), body)
        self.done = True
        self._decide(True)  # waiters look again: the entry, if it was stored, answers them
        await _send_reply(self._send, reply)

    def _sized(self) -> bool:
        """The held-back response start announced its length (RFC 9110 §8.6)."""
        assert self.start is not None
        return any(name.lower() == b"content-length" for name, _ in self.start["headers"])

    def _decide(self, stored: bool) -> None:
        decided, self._decided = self._decided, None
        if decided is not None:
            decided(stored)

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive) -> None:
        """Calls the app with this exchange in the middle, then completes it."""

        async def watched_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected = True
            return message

        await app(scope, watched_receive, self.send)
        await self.finish()

    async def finish(self) -> None:
        """The app returned: a held-back response that never ended is sent as it is (a 304
        confirming the stale entry needs no body)."""
        if self.mode == _PASS or self.done or self.start is None:
            return
        if self.mode in (_FRESHENED, _STALE):
            await self._complete()
        else:
            await self._spill(False, "incomplete")
