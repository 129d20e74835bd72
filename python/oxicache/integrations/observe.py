"""Who hears about each reply the cache labels: Prometheus metrics, OpenTelemetry spans.

While nobody listens, a reply costs one check of ``STATE.observing``
(:mod:`oxicache.runtime`), made by the decorator and the middleware on each request; nothing is
swapped or patched when listening starts or stops. A listener receives, for each reply that
carries the cache's label, ``(route, backend, outcome, detail, stored, status)``:

- ``outcome``: ``"hit"``, ``"miss"``, ``"stale"`` or ``"bypass"`` (from ``X-Cache``);
- ``detail``: ``Cache-Status``'s ``detail=`` (the bypass reason, why a miss was not stored,
  which stale window), else ``""``;
- ``stored``: the miss's response was stored (``Cache-Status: ...; stored``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .. import _log
from ..backends import remote
from ..runtime import STATE, Listener

__all__ = ["Listener", "classify", "listen", "listening", "reply"]


def listen(name: str, listener: Listener | None, gate: Callable[[], bool] | None = None) -> None:
    """Adds (or with ``None`` removes) the listener called ``name``. ``gate()``, if given,
    says cheaply whether the listener wants the current reply at all (tracing: is a span
    recording?); while every listener has one and none wants it, replies are not classified.
    """
    listeners, gates = STATE.listeners, STATE.listener_gates
    if listener is None:
        listeners.pop(name, None)
        gates.pop(name, None)
    else:
        listeners[name] = listener
        if gate is None:
            gates.pop(name, None)
        else:
            gates[name] = gate
    STATE.active_listeners = tuple(listeners.values())
    STATE.observing = bool(listeners)
    every = list(gates.values())
    if len(every) < len(listeners) or not every:
        STATE.observe_gate = None
    elif len(every) == 1:
        STATE.observe_gate = every[0]
    else:
        STATE.observe_gate = lambda: any(g() for g in every)


def listening() -> tuple[str, ...]:
    """The names of the listeners in place."""
    return tuple(STATE.listeners)


_OUTCOMES = {b"HIT": "hit", b"MISS": "miss", b"STALE": "stale", b"BYPASS": "bypass"}


def _header_name() -> bytes:
    generation, name = STATE.label_name
    if generation != STATE.generation:
        name = STATE.settings.header_name.lower().encode("latin-1")
        STATE.label_name = (STATE.generation, name)
    return name


def backend_label() -> str:
    """The name of the backend decorated routes use (``"memory"`` without one). Cached until
    the next :func:`oxicache.configure` (a forked child's backend has the same name)."""
    generation, name = STATE.backend_name
    if generation == STATE.generation:
        return name
    backend = remote.get_backend()
    name = "memory" if backend is None else backend.name
    if backend is not None and STATE.settings.two_tier:
        name += "+memory"
    STATE.backend_name = (STATE.generation, name)
    return name


_HIT = ("hit", "", False)
_STORED = ("miss", "", True)


def classify(headers: Sequence[tuple[bytes, bytes]]) -> tuple[str, str, bool] | None:
    """``(outcome, detail, stored)`` from the cache's label on a reply; None when unlabelled.

    The engine appends the label last (``<header_name>`` then ``Cache-Status``): replies of
    the decorator are read from their last two fields, and a plain hit or a stored miss is
    settled without parsing. Otherwise the fields are looked for from the end.
    """
    name = _header_name()
    if len(headers) >= 2:
        (k1, label), (k2, status) = headers[-2], headers[-1]
        if k2 == b"cache-status" and k1 == name:
            if label == b"HIT" and b"detail=" not in status:
                return _HIT
            if label == b"MISS" and status.endswith(b"; stored"):
                return _STORED
            return _parse(label, status)
    found_label: bytes | None = None
    found_status: bytes | None = None
    for key, value in reversed(headers):
        lowered = key.lower()
        if found_status is None and lowered == b"cache-status":
            found_status = value
        elif found_label is None and lowered == name:
            found_label = value
        if found_label is not None and found_status is not None:
            break
    if found_label is None:
        return None
    return _parse(found_label, found_status)


def _parse(label: bytes, status: bytes | None) -> tuple[str, str, bool] | None:
    outcome = _OUTCOMES.get(label.upper())
    if outcome is None:
        return None
    detail, stored = "", False
    if status is not None:
        # This cache's member is the last one (another cache's members may come first).
        member = status.rpartition(b"oxicache;")[2]
        at = member.find(b"detail=")
        if at >= 0:
            detail = member[at + 7 :].split(b";", 1)[0].split(b",", 1)[0].strip().decode("latin-1")
        stored = outcome == "miss" and member.rstrip().endswith(b"stored")
    return outcome, detail, stored


def reply(
    route: str, backend: str | None, status: int, headers: Sequence[tuple[bytes, bytes]]
) -> None:
    """Tells every listener about one reply (nothing when it carries no label). ``backend``
    None: the decorated routes' backend (:func:`backend_label`)."""
    gate = STATE.observe_gate
    if gate is not None and not gate():
        return
    found = classify(headers)
    if found is None:
        return
    outcome, detail, stored = found
    if backend is None:
        backend = backend_label()
    for listener in STATE.active_listeners:
        try:
            listener(route, backend, outcome, detail, stored, status)
        except Exception as exc:  # observing must never fail a response
            _log.warn(
                "error.observe",
                "oxicache: a metrics/tracing listener failed: %s",
                _log.describe(exc),
            )
