"""Baseline: the prebuilt FastAPI app with one user middleware, added with
``app.add_middleware``, that answers GET /items with page 1's constant bytes.

The floor of any middleware added the way FastAPI users add one: FastAPI's own middleware stack
(ServerErrorMiddleware, then the user's, in front of ExceptionMiddleware and the router) runs
around it, and nothing else does: no key, no lookup, no headers of a cache. A CacheMiddleware
hit added the same way (``oxicache[mw+fastapi]``) is compared with it."""

from apps.prebuilt import BODY, app

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))],
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
