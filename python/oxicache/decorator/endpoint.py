"""Endpoint caching: a request to a decorated route is looked up, then replayed (a hit) or
answered as a bypass or a miss (served from a backend, followed, led, or served stale).

The methods of :class:`EndpointMixin` are those of :class:`._Cached` that serve requests."""

from __future__ import annotations

import asyncio
import copy
from typing import TYPE_CHECKING, Any, cast

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from .. import _core, _log
from ..backends import remote
from ..bypassing import HEADER_REASON
from ..bypassing import requested as requested_bypass
from ..cache_request import Asked, asked
from ..cache_status import relabelled
from ..coordination import coherence, distributed_flight
from ..exceptions import UnkeyableArgument
from ..integrations import observe
from ..render import render
from ..request_reads import ReadLog, recording
from ..responses import CachedResponse
from ..runtime import STATE
from .base import CachedBase, is_held, serving_route

if TYPE_CHECKING:
    from ..backends.guard import GuardedBackend


class EndpointMixin(CachedBase):
    """Serving a route's requests: lookup, then a replayed hit, a bypass, or a miss."""

    # -- endpoints ----------------------------------------------------------------------

    async def produce(
        self, request: Request, sub: Response | None, kwargs: dict[str, Any]
    ) -> Response:
        """Runs the handler and renders its response as FastAPI would."""
        return (await self.produce_watched(request, sub, kwargs))[0]

    async def produce_watched(
        self, request: Request, sub: Response | None, kwargs: dict[str, Any]
    ) -> tuple[Response, bool]:
        """Runs the handler; True when it read a request input its key did not include
        (then its response must not be stored under that key)."""
        log = None
        name = self.plan.request_param
        if name is not None and self.options.key_builder is None and name in kwargs:
            log = ReadLog(query_keyed=self.query_as_sent)
            kwargs = {**kwargs, name: recording(kwargs[name], log)}
        if self.is_async:
            value = await self.func(**kwargs)
        else:
            value = await run_in_threadpool(self.func, **kwargs)
        self.returns_response = isinstance(value, Response)
        response = await render(request, value, sub, self.is_async)
        return response, log is not None and self.learn(log)

    def learn(self, log: ReadLog) -> bool:
        """Folds what the handler read into the route's key; True if anything was new."""
        if log.opaque is not None:
            if self.opaque is None:
                self.opaque = log.opaque
                _log.warn(
                    "bypass.reads-request",
                    "oxicache: %s reads %s, which no cache key can hold: it is answered "
                    "uncached from now on (key it with key_builder= to cache it)",
                    self.label,
                    log.opaque,
                )
            return True
        self.route_cache()  # keyed_headers reflects the settings in force
        new = sorted(log.headers - self.keyed_headers)
        if not new:
            return False
        with self._build_lock:
            self.learned = tuple(sorted(set(self.learned) | set(new)))
            self._route_cache = None
        _log.count("learned_vary")
        return True

    # A request to the endpoint: :meth:`lookup`, then a hit is replayed (:meth:`replay`) and
    # anything else goes to :meth:`serve_looked_up` (the wrapper FastAPI calls runs these).

    def replay(self, hit: tuple[int, Any, bytes], sub: Response | None) -> Response:
        """The response for a hit from memory.

        Headers already on the injected ``Response`` were set by the route's dependencies (a
        rate-limit counter, a refreshed session cookie): they belong to this request. They are
        kept out of the entry, and sent with whatever answers this request, a replay included
        (as FastAPI merges them into a rendered response)."""
        response = CachedResponse(*hit)
        if sub is not None and sub.raw_headers and not self.returns_response:
            response.raw_headers = [*response.raw_headers, *sub.raw_headers]
        if STATE.observing and ((gate := STATE.observe_gate) is None or gate()):
            observe.reply(self.label, None, response.status_code, response.raw_headers)
        return response

    async def serve_looked_up(
        self, request: Request, sub: Response | None, kwargs: dict[str, Any], result: Any
    ) -> Response:
        """Answers a request whose :meth:`lookup` found no hit in memory (:meth:`answer`),
        with this request's own headers (see :meth:`replay`)."""
        # A copy: the handler may add to the same list (``response.set_cookie``), and those
        # are the handler's response, rendered into it, not this request's own.
        owned = list(sub.raw_headers) if sub is not None else None
        response = await self.answer(request, sub, kwargs, list(owned or ()), result)
        if owned and response.__class__ is CachedResponse and not self.returns_response:
            response.raw_headers = [*response.raw_headers, *owned]
        if STATE.observing:
            observe.reply(self.label, None, response.status_code, response.raw_headers)
        return response

    def lookup(self, request: Request, kwargs: dict[str, Any]) -> Any:
        """The engine's answer for this request, without awaiting anything: a
        :data:`_core.Hit` (the reply tuple), a :class:`_core.Bypass`, a :class:`_core.Pending`
        miss, or :data:`_ASYNC_KEY` when the key needs an awaited ``key_builder`` (then
        :meth:`answer` looks up).

        Once :meth:`lookup_checked` has passed every check for a route, the compiled cache
        is armed for it (``RouteCache.arm``): its calls are then looked up in one call to the
        engine, which hands back None for any call those checks must see again."""
        rc = self._route_cache
        if rc is not None and self._generation == STATE.generation and self.opaque is None:
            try:
                result = rc.lookup_call(request.scope, kwargs)
            except Exception as exc:
                return self.lookup_failed(exc)
            if result is not None:
                return result
        return self.lookup_checked(request, kwargs)

    def lookup_checked(self, request: Request, kwargs: dict[str, Any]) -> Any:
        """:meth:`lookup` with every check made in Python: the route serving the request
        (:meth:`check_route`), the settings in force, a bypass, an input no key can hold, a
        key to await."""
        scope = request.scope
        checked, serving = self._checked_route, serving_route(scope)
        if (
            checked is None
            or not is_held(checked[0], serving[0])
            or not is_held(checked[1], serving[1])
        ):
            self.check_route(scope, serving)
        rc = self.route_cache()
        if not self.enabled:
            return _DISABLED
        reason = requested_bypass(scope)
        if reason is not None:
            return _BYPASSES.get(reason) or _core.Bypass(reason)
        if self.opaque is not None:
            return _READS_REQUEST
        if not self.plain_keys:
            return _ASYNC_KEY
        if serving[0] is not None and not STATE.settings.bypass_header:
            rc.arm(serving[0], serving[1], list(self.plan.keyed))
        try:
            values = tuple([kwargs[n] for n in self.plan.keyed if n in kwargs])
            return rc.lookup(scope, values, None)
        except Exception as exc:
            return self.lookup_failed(exc)

    def lookup_failed(self, exc: Exception) -> _core.Bypass:
        """The bypass for a key or lookup that raised (logged, rate-limited)."""
        if isinstance(exc, UnkeyableArgument):
            _log.warn(
                "bypass.unkeyable", "oxicache: %s uncached: %s", self.label, _log.describe(exc)
            )
            return _UNKEYABLE
        # A broken cache is a miss, never an error page.
        _log.warn(
            "error.lookup", "oxicache: lookup failed on %s: %s", self.label, _log.describe(exc)
        )
        return _ERROR

    async def answer(
        self,
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        owned: list[tuple[bytes, bytes]],
        result: Any,
    ) -> Response:
        """Everything but a memory hit from :meth:`lookup`, as named steps: a bypass
        (:meth:`bypass`), the backend's entry (:meth:`remote_answer`), a stale answer with one
        refresh (:meth:`answer_stale`), waiting for a concurrent identical request
        (:meth:`follow`) or running the handler for all of them (:meth:`lead`). ``owned``:
        this request's own headers, kept out of entries."""
        if result is _ASYNC_KEY:
            result = await self.lookup_awaited(request, kwargs)
            if result.__class__ is tuple:
                return CachedResponse(*result)
        if isinstance(result, _core.Bypass):
            reason = result.reason
            if reason not in _SILENT_BYPASSES:
                _log.count(f"bypass.{reason}")
            return await self.bypass(request, sub, kwargs, reason)
        pending = cast(_core.Pending, result)
        rc = self.route_cache()
        if pending.remote_key is not None:
            # read_remote inlined: one coroutine less alive while the backend answers
            backend = self.remote_backend(rc, pending)
            frame = None if backend is None else await backend.get(pending.remote_key)
            answer = self.remote_answer(rc, pending, frame)
            if isinstance(answer, tuple):
                return CachedResponse(*answer)
            pending = answer
        if self.may_answer_stale(pending):
            return self.answer_stale(rc, pending, request, sub, kwargs, owned)
        if pending.refresh_early:
            return await self.refresh_ahead(rc, pending, request, sub, kwargs, owned)
        leading = self.flights.lead(pending.key)
        if leading is None:
            return await self.follow(rc, pending, request, sub, kwargs, owned)
        return await self.lead(rc, pending, leading, request, sub, kwargs, owned)

    async def lookup_awaited(self, request: Request, kwargs: dict[str, Any]) -> Any:
        """:meth:`lookup` for a route whose ``key_builder`` must be awaited."""
        try:
            values, per_user = await self.key_material(request, kwargs)
            return self.route_cache().lookup(request.scope, values, per_user)
        except Exception as exc:
            return self.lookup_failed(exc)

    def may_answer_stale(self, pending: _core.Pending) -> bool:
        """RFC 5861 §3: inside stale-while-revalidate, a request is answered stale while one
        refresh runs in the background. Not for routes whose handler takes resources from
        yield dependencies: those close when this request ends, before a background refresh
        would use them."""
        return pending.stale_reply is not None and pending.serve_stale and not self.plan.resources

    def answer_stale(
        self,
        rc: _core.RouteCache,
        pending: _core.Pending,
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        owned: list[tuple[bytes, bytes]],
    ) -> Response:
        """The stale entry now, and one refresh in the background (:meth:`may_answer_stale`)."""
        self.refresh_in_background(rc, pending, request, sub, kwargs, owned)
        _log.count("stale.while_revalidate")
        return CachedResponse(*cast(tuple[int, Any, bytes], pending.stale_reply))

    async def refresh_ahead(
        self,
        rc: _core.RouteCache,
        pending: _core.Pending,
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        owned: list[tuple[bytes, bytes]],
    ) -> Response:
        """A fresh entry near its expiry, and this request was drawn to refresh it
        (``refresh_ahead``): unless another request of this process refreshes it already
        (then this one gets the entry), this one runs the handler and stores its response, as
        a miss would, inside the request (its ``yield`` dependencies are open). Across
        processes no lock is taken: the draw spreads the refreshes out. A refresh that fails
        answers with the entry, which is still fresh."""
        entry = cast(tuple[int, Any, bytes], pending.stale_reply)
        leading = self.flights.lead(pending.key)
        if leading is None:
            return CachedResponse(*entry)
        _log.count("refresh_ahead")
        return await self.lead(rc, pending, leading, request, sub, kwargs, owned)

    async def follow(
        self,
        rc: _core.RouteCache,
        pending: _core.Pending,
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        owned: list[tuple[bytes, bytes]],
    ) -> Response:
        """Another request with this key runs the handler in this process: wait for its
        entry (``lock_timeout`` at most) and replay it; if it stored nothing, failed or is
        too slow, look in the backend once more, then answer as a plain miss."""
        if await self.flights.wait(pending.key, STATE.settings.lock_timeout):
            reply = rc.replay_pending(pending)
            if reply is None and pending.remote_key is not None:
                # The leader answered from another process's entry (distributed_flight).
                reply = distributed_flight.shared(rc, pending)
            if reply is not None:
                _log.count("coalesced")
                return CachedResponse(*reply)
        if pending.remote_key is not None:
            # Another process may have stored it meanwhile (distributed_flight).
            answer = await self.read_remote(rc, pending)
            if isinstance(answer, tuple):
                return CachedResponse(*answer)
        _log.count("coalesce.gave_up")
        return (await self.finish_miss(rc, pending, request, sub, kwargs, owned=owned))[0]

    async def lead(
        self,
        rc: _core.RouteCache,
        pending: _core.Pending,
        leading: asyncio.Future[bool],
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        owned: list[tuple[bytes, bytes]],
    ) -> Response:
        """This request runs the handler for every request with its key (in this process,
        and with a remote backend in every process: :mod:`distributed_flight`), stores the
        response, then lets the followers go. RFC 5861 §4: with a stale entry, a handler
        that fails (or answers 5xx) is answered with the stale entry instead."""
        stale = pending.stale_reply
        stored = False
        lease: distributed_flight.Lease | None = None
        try:
            if pending.remote_key is not None and not pending.refresh_early:
                # A leader that finished while this request was reading the backend left its
                # entry in memory for the coalescing window: answer from it.
                reply = rc.replay_pending(pending)
                if reply is not None:
                    _log.count("coalesced")
                    return CachedResponse(*reply)
                # Across processes too: a lock in the backend, or wait for its holder's entry.
                joined = await distributed_flight.join(rc, pending)
                if joined.reply is not None and joined.frame is not None:
                    distributed_flight.share(pending.key, joined.frame)
                    stored = True
                    return CachedResponse(*joined.reply)
                lease = joined.lease
            response, stored = await self.finish_miss(
                rc, pending, request, sub, kwargs, lease, owned=owned
            )
        except Exception as exc:
            if stale is None:
                raise
            _log.warn(
                "stale.if_error",
                "oxicache: %s failed (%s); answered stale",
                self.label,
                _log.describe(exc),
            )
            return CachedResponse(*stale)
        finally:
            if lease is not None:
                lease.release_soon()  # unless the entry's write releases it once written
            self.flights.land(pending.key, leading, stored)
        if stale is not None and response.status_code >= 500:
            _log.count("stale.if_error")
            return CachedResponse(*stale)
        return response

    async def read_remote(
        self, rc: _core.RouteCache, pending: _core.Pending
    ) -> tuple[int, Any, bytes] | _core.Pending:
        """Asks the backend for a miss of the memory tier: a reply to send, or the pending
        miss to go on with (with a stale reply when the backend's entry is inside a stale
        window). A backend that fails, hangs or returns a foreign entry is a miss."""
        backend = self.remote_backend(rc, pending)
        frame = None if backend is None else await backend.get(cast(str, pending.remote_key))
        return self.remote_answer(rc, pending, frame)

    def remote_backend(self, rc: _core.RouteCache, pending: _core.Pending) -> GuardedBackend | None:
        """The backend to read ``pending``'s entry from, or None when there is none to read
        (no backend, or a revalidation the client asked for)."""
        backend = remote.get_backend()
        coherence.ensure(rc.namespace, self.label)  # two tiers: hear the others' invalidations
        if backend is None or pending.remote_key is None or pending.revalidate:
            return None
        return backend

    def remote_answer(
        self, rc: _core.RouteCache, pending: _core.Pending, frame: bytes | None
    ) -> tuple[int, Any, bytes] | _core.Pending:
        """What the backend's ``frame`` (None: nothing there) gives ``pending``: a reply to
        send, or the miss to go on with."""
        if frame is not None:
            try:
                got = rc.accept(pending, frame)
            except Exception as exc:  # never an error page
                _log.warn("error.remote", "oxicache: remote entry unusable: %s", _log.describe(exc))
                got = None
            if got.__class__ is tuple:
                _log.count("remote.hit")
                return cast(tuple[int, Any, bytes], got)
            if isinstance(got, str):
                # Foreign, truncated or corrupt: a miss, overwritten by this request.
                _log.warn(
                    "remote.corrupt", "oxicache: corrupt entry in the backend for %s", self.label
                )
            elif got is not None:
                pending = cast(_core.Pending, got)
        if pending.only_if_cached and pending.stale_reply is None:
            return rc.gateway_timeout()
        return pending

    def refresh_in_background(
        self,
        rc: _core.RouteCache,
        pending: _core.Pending,
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        owned: list[tuple[bytes, bytes]] | tuple[()] = (),
    ) -> None:
        """Starts the one refresh of a stale key, unless one is running already (``owned``:
        this request's own headers, kept out of the new entry)."""
        leading = self.flights.lead(pending.key)
        if leading is None:
            return

        async def refresh() -> None:
            stored = False
            try:
                _, stored = await self.finish_miss(rc, pending, request, sub, kwargs, owned=owned)
            except Exception as exc:
                _log.warn(
                    "error.refresh",
                    "oxicache: refreshing %s failed: %s",
                    self.label,
                    _log.describe(exc),
                )
            finally:
                self.flights.land(pending.key, leading, stored)

        task = asyncio.get_running_loop().create_task(refresh())
        self._refreshes.add(task)  # keep a reference until it ends
        task.add_done_callback(self._refreshes.discard)

    async def finish_miss(
        self,
        rc: _core.RouteCache,
        pending: _core.Pending,
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        lease: distributed_flight.Lease | None = None,
        *,
        owned: list[tuple[bytes, bytes]] | tuple[()] = (),
    ) -> tuple[Response, bool]:
        """Runs the handler for a miss and stores its response when allowed (without the
        request's own headers, ``owned``: see :meth:`replay`)."""
        response, revealed = await self.produce_watched(request, sub, kwargs)
        if revealed:  # keyed without an input the handler reads: not stored under this key
            return _marked(response, "learned-input"), False
        scope = request.scope
        skipped = requested_bypass(scope)  # the handler called CacheRequest.skip()
        if skipped is not None:
            _log.count(f"bypass.{skipped}")
            return _marked(response, skipped), False
        return self.complete(rc, pending, response, lease, owned=owned, asked=asked(scope))

    def complete(
        self,
        rc: _core.RouteCache,
        pending: _core.Pending,
        response: Response,
        lease: distributed_flight.Lease | None = None,
        *,
        owned: list[tuple[bytes, bytes]] | tuple[()] = (),
        asked: Asked | None = None,
    ) -> tuple[Response, bool]:
        """Stores the miss's response when allowed. Returns the response to send (the
        handler's, with the cache's fields, as a new object: a handler may return the same
        ``Response`` every time) and whether it was stored. ``owned``: headers that belong
        to this request (see :meth:`replay`), left out of the entry and of the reply (which
        :meth:`serve_looked_up` completes). ``asked``: the TTL and tags this request's
        :class:`~oxicache.CacheRequest` gave its entry."""
        body = getattr(response, "body", None)
        if not isinstance(body, bytes):  # streaming or file responses are never stored
            _log.count("not_stored.streaming")
            return _marked(response, "streaming"), False
        raw_headers = response.raw_headers
        if owned:
            raw_headers = _without(raw_headers, owned)
        ttl = tags = None
        if asked is not None:
            ttl, tags = asked.ttl, asked.tags
        try:
            status, headers, body, stored, frame = rc.complete(
                pending, response.status_code, raw_headers, body, ttl=ttl, tags=tags
            )
        except Exception as exc:
            _log.warn(
                "error.store",
                "oxicache: storing a response of %s failed: %s",
                self.label,
                _log.describe(exc),
            )
            return _marked(response, "error"), False
        if not stored:
            _log.count("not_stored")
        if frame is not None and pending.remote_key is not None:
            # A cross-process lock is released once the write has ended, so waiters find it.
            then = {} if lease is None else {"then": lease.release}
            remote_tags: tuple[str, ...] = (pending.path_tag,)
            if asked is not None:
                remote_tags += asked.backend_tags()
            skipped = self._write_remote(pending.remote_key, frame, remote_tags, then, ttl)
            if skipped is None:
                if lease is not None:
                    lease.hold_until_written()
            else:
                # RFC 9211 §2.5: `stored` only for a write the backend is going to get.
                headers = relabelled(headers, rc.write_skipped_status(pending, skipped))
        reply = CachedResponse(status, headers, body)
        reply.background = response.background
        return reply, bool(stored)

    async def bypass(
        self,
        request: Request,
        sub: Response | None,
        kwargs: dict[str, Any],
        reason: str,
    ) -> Response:
        """Answers without the cache, labelled ``BYPASS`` with the reason."""
        response = await self.produce(request, sub, kwargs)
        return _marked(response, reason)


#: :meth:`_Cached.lookup` could not key the request without awaiting a ``key_builder``.
_ASYNC_KEY = object()


#: Bypass reasons counted where they are decided, not again by :meth:`_Cached.answer`.
_SILENT_BYPASSES = frozenset({"disabled", "unkeyable", "error"})

#: The bypasses decided here rather than by the engine.
_DISABLED = _core.Bypass("disabled")
_READS_REQUEST = _core.Bypass("reads-request")
_UNKEYABLE = _core.Bypass("unkeyable")
_ERROR = _core.Bypass("error")
_BYPASSES = {r: _core.Bypass(r) for r in (HEADER_REASON, "requested")}


def _without(
    headers: list[tuple[bytes, bytes]], owned: list[tuple[bytes, bytes]] | tuple[()]
) -> list[tuple[bytes, bytes]]:
    """``headers`` less one occurrence of each of ``owned``."""
    left = list(owned)
    out = []
    for pair in headers:
        if pair in left:
            left.remove(pair)
        else:
            out.append(pair)
    return out


def _marked(response: Response, reason: str) -> Response:
    """A copy of ``response`` labelled as not answered or stored by the cache (``BYPASS``).

    A copy, because a handler may return the same Response object every time (a module-level
    constant): the cache must not change what the handler owns.
    """
    name = STATE.settings.header_name.lower().encode("latin-1")
    own = (name, b"cache-status")
    labelled = copy.copy(response)
    labelled.__dict__.pop("_headers", None)  # Starlette's cached view of the old list
    labelled.raw_headers = [
        *((k, v) for k, v in response.raw_headers if k.lower() not in own),
        (name, b"BYPASS"),
        (b"cache-status", _core.bypass_status(reason)),
    ]
    return labelled
