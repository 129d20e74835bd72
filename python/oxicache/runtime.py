"""The process's state, in one object: :data:`STATE`.

Everything oxicache keeps between two calls lives here (the settings in force, the in-memory
store, the backend chosen and its guard, who observes replies, the event counters, the
coherence subscription, the flights in progress), so it is easy to see, to reset in a test,
and to reason about after a fork. This module imports nothing of oxicache but the Rust
engine: every other module may import it, and no import cycle can form through it.

The modules that own a piece of state change it through their own functions
(:func:`oxicache.configure`, :mod:`oxicache.backends.remote`, :mod:`oxicache.integrations.observe`,
...); reading it on a hot path is one attribute lookup.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from . import _core

if TYPE_CHECKING:  # types only: nothing is imported at run time
    import asyncio

    from .backends.base import Backend
    from .backends.guard import GuardedBackend
    from .config import Settings

__all__ = ["STATE", "Listener", "Runtime"]

#: ``listener(route, backend, outcome, detail, stored, status)``, told about each labelled
#: reply (see :mod:`oxicache.integrations.observe`).
Listener = Callable[[str, str, str, str, bool, int], None]


class Runtime:
    """The state of oxicache in this process (one instance: :data:`STATE`)."""

    settings: Settings
    """The settings in force; set when :mod:`oxicache.config` is imported, replaced (never
    mutated) by :func:`oxicache.configure`."""

    def __init__(self) -> None:
        # --- settings and the in-process store -------------------------------------------
        #: The in-memory store (resized by configure()).
        self.store = _core.MemoryStore()
        #: Incremented by every configure(): what compiled settings (routes, the middleware's
        #: engine, cached labels) compare to know they are out of date.
        self.generation = 0

        # --- the remote backend ----------------------------------------------------------
        #: What configure() chose: a backend object, a URL, or None (``OXICACHE_URL`` decides).
        self.backend_spec: Backend | str | None = None
        #: Keyword arguments of the guard (deadlines, breaker).
        self.guard_options: dict[str, Any] = {}
        #: The guarded backend built from the spec, and the pid that built it (a forked child
        #: builds its own).
        self.guard: GuardedBackend | None = None
        self.guard_pid: int | None = None
        #: ``timer(backend, op, seconds)`` for every guarded call while metrics are on.
        self.backend_timer: Callable[[str, str, float], None] | None = None

        # --- observation (metrics, tracing) -----------------------------------------------
        self.listeners: dict[str, Listener] = {}
        self.listener_gates: dict[str, Callable[[], bool]] = {}
        #: The listeners as a tuple (read per observed reply), and whether there is any.
        self.active_listeners: tuple[Listener, ...] = ()
        self.observing = False
        #: Set when every listener has a gate: the decorator and the middleware ask it before
        #: a reply is classified (``STATE.observing and (gate is None or gate())``).
        self.observe_gate: Callable[[], bool] | None = None
        #: ``(generation, value)`` caches of the label header's name and the backend's name.
        self.label_name: tuple[int, bytes] = (-1, b"")
        self.backend_name: tuple[int, str] = (-1, "memory")
        #: The Prometheus collectors while metrics are on.
        self.metrics: Any = None

        # --- events and logging -----------------------------------------------------------
        self.events: Counter[str] = Counter()
        self.last_logged: dict[str, float] = {}
        self.suppressed: Counter[str] = Counter()
        self.log_lock = threading.Lock()

        # --- coordination -----------------------------------------------------------------
        #: The coherence subscription of this process (two tiers), its counters, the times of
        #: the last message published and applied, and ``(pid, id)`` of this process.
        self.coherence: Any = None
        self.coherence_counters: Any = None
        self.coherence_last = {"published": 0.0, "applied": 0.0}
        self.sender: tuple[int, str] = (-1, "")
        #: Cross-process flights: releases in progress, and frames a waiting leader found
        #: for its local followers.
        self.releases: set[asyncio.Task[None]] = set()
        self.shared_frames: dict[Hashable, bytes] = {}
        #: Functions wrapped by ``@cache`` (the placement check recognises them).
        self.wrapped: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


#: The one instance.
STATE = Runtime()
