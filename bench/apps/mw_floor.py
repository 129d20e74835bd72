"""Baseline: the prebuilt FastAPI app with one user middleware, added with
``app.add_middleware``, that answers GET /items with constant bytes: page 1's body and the
header fields the cached route itself sends (``Content-Type``, ``Cache-Control``,
``Content-Length``, ``Last-Modified``, ``ETag``; fixed values of the same lengths).

The floor of any middleware added the way FastAPI users add one: FastAPI's own middleware stack
(ServerErrorMiddleware, then the user's, in front of ExceptionMiddleware and the router) runs
around it, and nothing else does: no key, no lookup. A CacheMiddleware hit added the same way
(``oxicache[mw+fastapi]``) is compared with it; it answers the same response, so what the ratio
measures is the cache's work and its own labels (``Age``, ``X-Cache``, ``Cache-Status``), not
the size of the response (the server encodes every header field on its own)."""

from apps.common import TTL
from apps.prebuilt import BODY, app

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"cache-control", b"max-age=%d" % TTL),
        (b"content-length", b"%d" % len(BODY)),
        (b"last-modified", b"Mon, 07 Dec 2026 12:00:00 GMT"),
        (b"etag", b'W/"AAAAAAAAAAAAAAAAAAAAAA"'),
    ],
}
_BODY = {"type": "http.response.body", "body": BODY, "more_body": False}


class ConstantItems:
    """Pure ASGI: /items answered here with constant bytes; everything else goes on."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and scope["path"] == "/items" and scope["method"] == "GET":
            await send(_START)
            await send(_BODY)
            return
        await self.app(scope, receive, send)


app.add_middleware(ConstantItems)
