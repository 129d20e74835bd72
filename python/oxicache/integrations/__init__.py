"""What oxicache tells, and is told by, the rest of a deployment: Prometheus metrics
(:mod:`.metrics`), OpenTelemetry span attributes (:mod:`.tracing`), both fed by the reply
observer (:mod:`.observe`), and settings read from the environment or a ``.env`` file with
pydantic-settings (:mod:`.settings`); and what ``@cache`` adds to a route, in the app's OpenAPI
schema (:mod:`.openapi`).

The user-facing modules are also importable by their short names: ``oxicache.metrics``,
``oxicache.tracing`` and ``oxicache.settings``.
"""
