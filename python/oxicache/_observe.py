"""Who hears about each reply the cache labels: Prometheus metrics, OpenTelemetry spans.

While nobody listens, a reply costs one check of :data:`active` (the decorator) or nothing at
all (the middleware registers an *installer*, which swaps its observed variant in only when a
listener is added). A listener receives, for each reply that carries
the cache's label, ``(route, backend, outcome, detail, stored, status)``:

- ``outcome``: ``"hit"``, ``"miss"``, ``"stale"`` or ``"bypass"`` (from ``X-Cache``);
- ``detail``: ``Cache-Status``'s ``detail=`` (the bypass reason, why a miss was not stored,
  which stale window), else ``""``;
- ``stored``: the miss's response was stored (``Cache-Status: ...; stored``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import config, remote

__all__ = ["Listener", "classify", "gate", "listen", "listening", "on_change", "reply"]

Listener = Callable[[str, str, str, str, bool, int], None]

_listeners: dict[str, Listener] = {}
_gates: dict[str, Callable[[], bool]] = {}
#: Set when every listener has a gate: checked before a reply is classified.
_gate: Callable[[], bool] | None = None
_installers: list[Callable[[bool], None]] = []
#: The listeners, as a tuple read on every observed reply.
_active: tuple[Listener, ...] = ()
#: Whether anyone listens: checked once per reply by the decorator.
active = False


def on_change(installer: Callable[[bool], None]) -> None:
    """Registers ``installer(active)``, called now and whenever listening starts or stops."""
    _installers.append(installer)
    installer(bool(_listeners))


def listen(name: str, listener: Listener | None, gate: Callable[[], bool] | None = None) -> None:
    """Adds (or with ``None`` removes) the listener called ``name``. ``gate()``, if given,
    says cheaply whether the listener wants the current reply at all (tracing: is a span
    recording?); while every listener has one and none wants it, replies are not classified.
    """
    global _active, _gate, active
    was = bool(_listeners)
    if listener is None:
        _listeners.pop(name, None)
        _gates.pop(name, None)
    else:
        _listeners[name] = listener
        if gate is None:
            _gates.pop(name, None)
        else:
            _gates[name] = gate
    _active = tuple(_listeners.values())
    active = bool(_active)
    gates = list(_gates.values())
    if len(gates) < len(_listeners) or not gates:
        _gate = None
    elif len(gates) == 1:
        _gate = gates[0]
    else:
        _gate = lambda: any(g() for g in gates)  # noqa: E731
    if bool(_listeners) != was:
        for installer in _installers:
            installer(bool(_listeners))


def gate() -> Callable[[], bool] | None:
    """The cheap check that every listener wants nothing of the current reply, or None when
    some listener wants every reply (metrics)."""
    return _gate


def listening() -> tuple[str, ...]:
    """The names of the listeners in place."""
    return tuple(_listeners)


_OUTCOMES = {b"HIT": "hit", b"MISS": "miss", b"STALE": "stale", b"BYPASS": "bypass"}
_name_cache: tuple[int, bytes] = (-1, b"")
_backend_cache: tuple[int, str] = (-1, "memory")


def _header_name() -> bytes:
    global _name_cache
    if _name_cache[0] != config._generation:
        name = config.get_settings().header_name.lower().encode("latin-1")
        _name_cache = (config._generation, name)
    return _name_cache[1]


def backend_label() -> str:
    """The name of the backend decorated routes use (``"memory"`` without one). Cached until
    the next :func:`oxicache.configure` (a forked child's backend has the same name)."""
    global _backend_cache
    if _backend_cache[0] == config._generation:
        return _backend_cache[1]
    backend = remote.get_backend()
    name = "memory" if backend is None else backend.name
    if backend is not None and config.get_settings().two_tier:
        name += "+memory"
    _backend_cache = (config._generation, name)
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
    if _gate is not None and not _gate():
        return
    found = classify(headers)
    if found is None:
        return
    outcome, detail, stored = found
    if backend is None:
        backend = backend_label()
    for listener in _active:
        try:
            listener(route, backend, outcome, detail, stored, status)
        except Exception as exc:  # observing must never fail a response
            from . import _log

            _log.warn(
                "error.observe",
                "oxicache: a metrics/tracing listener failed: %s",
                _log.describe(exc),
            )
