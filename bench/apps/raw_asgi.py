"""Baseline: a bare ASGI callable that sends the constant bytes of page 1 for /items.

No framework at all: the most any in-process cache could reach under this server."""

import json
import os

from apps.common import RUNS, page_bytes

BODY = page_bytes(1)


def _reply(status: int, body: bytes, ctype: bytes) -> tuple:
    return status, [(b"content-type", ctype), (b"content-length", str(len(body)).encode())], body


ITEMS = _reply(200, BODY, b"application/json")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/items":
        status, headers, body = ITEMS
    elif path == "/_stats":
        doc = {"pid": os.getpid(), "counters": RUNS, "backend": "none", "lib": "raw-asgi"}
        status, headers, body = _reply(200, json.dumps(doc).encode(), b"application/json")
    elif path == "/_health":
        status, headers, body = _reply(200, b"ok", b"text/plain")
    else:
        status, headers, body = _reply(404, b"", b"text/plain")
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
