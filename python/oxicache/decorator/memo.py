"""Memoization: a plain function decorated with ``@cache``, its value stored with its type
(a codec) in memory or in the backend.

The methods of :class:`MemoMixin` are those of :class:`._Cached` that memoize calls."""

from __future__ import annotations

import inspect
from typing import Any

from .. import _core, _log
from ..backends import remote
from ..codec import PickleCodec
from ..coordination import coherence
from ..exceptions import ConfigError, UnkeyableArgument
from ..runtime import STATE
from .base import CachedBase


class MemoMixin(CachedBase):
    """Memoizing a plain function's calls (mixed into :class:`._Cached`)."""

    # -- plain functions ----------------------------------------------------------------

    def call_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments

    def _call_key(
        self, arguments: dict[str, Any], values: tuple[Any, ...], memory_only: bool = False
    ) -> Any:
        try:
            return self.route_cache(memory_only=memory_only).call_key(values)
        except UnkeyableArgument as exc:
            _log.warn(
                "bypass.unkeyable", "oxicache: %s uncached: %s", self.label, _log.describe(exc)
            )
            return None

    def _load(self, rc: _core.RouteCache, key: Any, waiter: bool = False) -> tuple[bool, Any]:
        data = rc.get_value(key, waiter)
        if data is None:
            return False, None
        return self._decode(data)

    def _decode(self, data: bytes) -> tuple[bool, Any]:
        try:
            return True, self.codec().loads(data)
        except Exception as exc:  # undecodable entry: a miss, and it is overwritten below
            _log.warn(
                "error.decode",
                "oxicache: stored value of %s unreadable: %s",
                self.label,
                _log.describe(exc),
            )
            return False, None

    def _save(
        self, rc: _core.RouteCache, key: Any, value: Any, remote_key: str | None = None
    ) -> bool:
        try:
            stored, frame = rc.set_value(key, self.codec().dumps(value))
        except Exception as exc:
            _log.warn(
                "error.encode",
                "oxicache: value of %s not stored: %s",
                self.label,
                _log.describe(exc),
            )
            return False
        if frame is not None and remote_key is not None:
            self._write_remote(remote_key, frame, (), {})
        return bool(stored)

    async def memoized_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not STATE.settings.enabled:
            return await self.func(*args, **kwargs)
        arguments = self.call_arguments(args, kwargs)
        # Pickled values (no return annotation, no codec chosen) never go to a backend: reading
        # one back would run code that anyone able to write to the backend could choose.
        memory_only = self.options.codec is None and isinstance(self.codec(), PickleCodec)
        key = self._call_key(
            arguments, await self.key_values(None, arguments), memory_only=memory_only
        )
        if key is None:
            return await self.func(*args, **kwargs)
        rc = self.route_cache(memory_only=memory_only)
        found, value = self._load(rc, key)
        if found:
            return value
        remote_key = rc.remote_key_of(key)
        if remote_key is not None:
            found, value = await self._load_remote(rc, key, remote_key)
            if found:
                return value
        leading = self.flights.lead(key)
        if leading is None:
            if await self.flights.wait(key, STATE.settings.lock_timeout):
                found, value = self._load(rc, key, waiter=True)
                if found:
                    return value
            return await self.func(*args, **kwargs)
        stored = False
        try:
            if remote_key is not None:
                # A leader finished while this call was reading the backend.
                found, value = self._load(rc, key, waiter=True)
                if found:
                    return value
            value = await self.func(*args, **kwargs)
            stored = self._save(rc, key, value, remote_key)
            return value
        finally:
            self.flights.land(key, leading, stored)

    async def _load_remote(
        self, rc: _core.RouteCache, key: Any, remote_key: str
    ) -> tuple[bool, Any]:
        """A memoized value from the backend: a failure, a stale or a corrupt entry is a miss
        (and the miss overwrites it)."""
        backend = remote.get_backend()
        if backend is None:
            return False, None
        coherence.ensure(rc.namespace, self.label)  # two tiers: hear the others' invalidations
        frame = await backend.get(remote_key)
        if frame is None:
            return False, None
        try:
            data = rc.accept_value(key, frame)
        except Exception as exc:  # never an error for the caller
            _log.warn("error.remote", "oxicache: remote value unusable: %s", _log.describe(exc))
            return False, None
        if isinstance(data, str) or data is None:
            if isinstance(data, str):
                _log.warn(
                    "remote.corrupt", "oxicache: corrupt value in the backend for %s", self.label
                )
            return False, None
        return self._decode(data)

    def memoized_sync(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not STATE.settings.enabled:
            return self.func(*args, **kwargs)
        if self.options.key_builder is not None:
            arguments = self.call_arguments(args, kwargs)
            built = self.options.key_builder(None, arguments)
            if inspect.isawaitable(built):
                close = getattr(built, "close", None)
                if close is not None:  # never awaited: close it, or Python warns at GC
                    close()
                raise ConfigError("an async key_builder cannot key a synchronous function")
            values: tuple[Any, ...] = (built,)
        else:
            arguments = self.call_arguments(args, kwargs)
            values = tuple(arguments[name] for name in self.plan.keyed if name in arguments)
        key = self._call_key(arguments, values, memory_only=True)
        if key is None:
            return self.func(*args, **kwargs)
        rc = self.route_cache(memory_only=True)
        found, value = self._load(rc, key)
        if found:
            return value
        event = self.thread_flights.lead(key)
        if event is None:
            self.thread_flights.wait(key, STATE.settings.lock_timeout)
            found, value = self._load(rc, key)
            return value if found else self.func(*args, **kwargs)
        try:
            value = self.func(*args, **kwargs)
            self._save(rc, key, value)
            return value
        finally:
            self.thread_flights.land(key, event)
