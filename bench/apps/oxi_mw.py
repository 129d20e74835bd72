"""oxicache's ``CacheMiddleware`` in front of the raw ASGI baseline (bench/apps/raw_asgi.py).

The inner app is a bare ASGI callable like the raw baseline: GET /items sends the same bytes
(page 1's pydantic JSON), with the headers an origin sends to be cached by a shared cache:
``Cache-Control: max-age=<BENCH_TTL>`` and a strong ``ETag`` of the body (the middleware keeps
the origin's validators; it does not invent them). A hit is answered by the middleware without
entering the app, so ``req/s ÷ raw-asgi req/s`` is the middleware's whole cost per hit.

Misses behave like every other target's handler: counted in RUNS["items"], a BENCH_WORK_MS wait,
then the page's bytes (``page_bytes(page)``), so the stampede, growth and checks phases can tell
hits from misses.

The checks endpoints are written the way an origin behind a shared cache would be, with no
option of the middleware chosen for the benchmark (its defaults: shared cache, requests with
``Authorization`` or ``Cookie`` neither served from nor stored in it unless the response allows):

  /me/dep   the identity is declared: ``max-age`` plus ``Vary: Authorization, X-Api-Key``
            (the raw-ASGI counterpart of a key that includes the authenticated user).
  /me/req   the identity is not declared: ``max-age`` only, the origin says the answer may be
            shared (the counterpart of a handler reading a header the key cannot see).
  /cookie   ``max-age`` and a fresh ``Set-Cookie``: a shared cache must not store it.
"""

import asyncio
import hashlib
import json
import os
from urllib.parse import parse_qsl

import oxicache
from apps.common import BACKEND, RUNS, TTL, VARIANT, WORK_MS, new_session_id, page_bytes, who
from oxicache import CacheMiddleware

CACHE_CONTROL = f"max-age={TTL}".encode()
JSON = b"application/json"


def _etag(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'


def _items_reply(body: bytes) -> tuple:
    return (
        200,
        [
            (b"content-type", JSON),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", CACHE_CONTROL),
            (b"etag", _etag(body)),
        ],
        body,
    )


PAGE1 = _items_reply(page_bytes(1))


def _reply(status: int, body: bytes, ctype: bytes, *extra: tuple[bytes, bytes]) -> tuple:
    return (
        status,
        [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *extra],
        body,
    )


def _int(query: dict, name: str, default: int) -> int:
    try:
        return int(query.get(name, default))
    except ValueError:
        return default


def store_figures() -> dict:
    store = oxicache.get_store()
    store.run_pending_tasks()  # weighted_size is approximate until maintenance has run
    return {
        "oxicache": oxicache.stats(),
        "store": {
            "weighted_size": store.weighted_size,
            "entries": len(store),
            "max_bytes": store.max_bytes,
        },
    }


async def origin(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    if path == "/items":
        RUNS["items"] += 1
        if WORK_MS > 0:
            await asyncio.sleep(WORK_MS / 1000)
        page = _int(query, "page", 1)
        status, headers, body = PAGE1 if page == 1 else _items_reply(page_bytes(page))
    elif path in ("/me/dep", "/me/req"):
        RUNS["me_dep" if path == "/me/dep" else "me_req"] += 1
        hdrs = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        doc = {"user": who(hdrs), "v": _int(query, "v", 0)}
        extra = [(b"cache-control", CACHE_CONTROL)]
        if path == "/me/dep":
            extra.append((b"vary", b"Authorization, X-Api-Key"))
        status, headers, body = _reply(200, json.dumps(doc).encode(), JSON, *extra)
    elif path == "/cookie":
        RUNS["cookie"] += 1
        sid = new_session_id()
        doc = {"sid": sid, "v": _int(query, "v", 0)}
        status, headers, body = _reply(
            200,
            json.dumps(doc).encode(),
            JSON,
            (b"cache-control", CACHE_CONTROL),
            (b"set-cookie", f"sid={sid}; Path=/".encode()),
        )
    elif path == "/_stats":
        doc = {
            "pid": os.getpid(),
            "counters": RUNS,
            "backend": BACKEND,
            "lib": "oxicache[middleware]",
            "variant": VARIANT,
            **store_figures(),
        }
        status, headers, body = _reply(200, json.dumps(doc).encode(), JSON)
    elif path == "/_health":
        status, headers, body = _reply(200, b"ok", b"text/plain")
    else:
        status, headers, body = _reply(404, b"", b"text/plain")
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = CacheMiddleware(origin)
