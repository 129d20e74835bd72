"""OpenTelemetry span attributes (``pip install oxicache[otel]``).

When ``opentelemetry-api`` is importable, every reply of a decorated route or of
``CacheMiddleware`` sets, on the current span (the request's span, made by your
instrumentation such as ``opentelemetry-instrumentation-fastapi``), when that span is
recording (a tracer provider is configured and the span sampled):

- ``oxicache.outcome``: ``hit``, ``miss``, ``stale`` or ``bypass``;
- ``oxicache.route``: the decorated function's module and qualified name, or
  ``CacheMiddleware``;
- ``oxicache.detail``: Cache-Status' ``detail=`` when there is one (the bypass reason, why a
  miss was not stored, which stale window).

Without ``opentelemetry-api`` nothing is installed (checked once, at import). With it, each
reply first asks whether the current span records (one read of OpenTelemetry's context
variable) and, with no tracer provider or an unsampled span, does nothing more;
:func:`disable` removes even that check.
"""

from __future__ import annotations

from typing import Any

from . import observe

__all__ = ["available", "disable", "enable", "enabled"]

_get_current_span: Any
try:
    from opentelemetry.trace import get_current_span as _get_current_span
except ImportError:  # not installed: nothing to do, ever
    _get_current_span = None


def available() -> bool:
    """Whether ``opentelemetry-api`` is installed."""
    return _get_current_span is not None


def _recording_public() -> bool:
    """The gate through the public API: is the current span recording?"""
    return bool(_get_current_span().is_recording())


def _fast_gate() -> Any:
    """The same question asked of the context variable OpenTelemetry keeps the current
    context in, when its API is the one this was written against (checked once): a hit must
    not pay several Python calls to learn that no span records (FastAPI installs the API,
    rarely a tracer provider). Else the public API."""
    if _get_current_span is None:
        return _recording_public
    try:
        from opentelemetry.context import _RUNTIME_CONTEXT
        from opentelemetry.trace.propagation import _SPAN_KEY

        current = _RUNTIME_CONTEXT._current_context  # type: ignore[attr-defined]
        current.get().get(_SPAN_KEY)  # the shape this relies on
    except Exception:
        return _recording_public

    def recording() -> bool:
        span = current.get().get(_SPAN_KEY)
        return span is not None and bool(span.is_recording())

    return recording


_recording = _fast_gate()


def _annotate(
    route: str, backend: str, outcome: str, detail: str, stored: bool, status: int
) -> None:
    # The cheap check first: with metrics on, every reply comes here (no gate applies).
    if not _recording():
        return
    span = _get_current_span()
    if span.is_recording():
        span.set_attribute("oxicache.outcome", outcome)
        span.set_attribute("oxicache.route", route)
        if detail:
            span.set_attribute("oxicache.detail", detail)


def enable() -> None:
    """Sets the span attributes (the default when ``opentelemetry-api`` is installed)."""
    if _get_current_span is not None:
        observe.listen("tracing", _annotate, gate=_recording)


def disable() -> None:
    """Stops setting them."""
    observe.listen("tracing", None)


def enabled() -> bool:
    """Whether the span attributes are being set."""
    return "tracing" in observe.listening()


enable()
