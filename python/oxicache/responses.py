"""The response a hit is answered with: stored bytes, sent as they are."""

from __future__ import annotations

from starlette.responses import Response

__all__ = ["CachedResponse"]


class CachedResponse(Response):
    """A ``Response`` built from a stored status, header list and body without re-encoding.

    Starlette's ``Response.__init__`` renders content and rebuilds headers; a hit has both
    already, so this constructor only assigns them. Sending is Starlette's own ``__call__``.
    """

    def __init__(self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes):
        self.status_code = status_code
        self.raw_headers = raw_headers
        self.body = body
        self.background = None
