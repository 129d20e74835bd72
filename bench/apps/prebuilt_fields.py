"""Baseline: the prebuilt FastAPI route (bench/apps/prebuilt.py) returning the response a
``@cache`` hit sends: page 1's body with the same header fields (``Content-Type``,
``Content-Length``, ``Cache-Control``, ``Last-Modified``, ``ETag``, ``Age``, ``X-Cache``,
``Cache-Status``; fixed values of the same lengths).

The server encodes every header field on its own (uvicorn checks and lower-cases each one), so
``oxicache / fastapi-prebuilt`` counts the fields a hit carries as well as the cache's work.
``oxicache / fastapi-prebuilt-fields`` compares two routes that send the same response: what it
measures is the decorator's work alone."""

from fastapi import FastAPI
from starlette.responses import Response

from apps.common import TTL, control_routes, page_bytes

BODY = page_bytes(1)

#: The fields a hit adds to the prebuilt route's two (values as long as a hit's).
FIELDS = {
    "cache-control": f"max-age={TTL}",
    "last-modified": "Mon, 07 Dec 2026 12:00:00 GMT",
    "etag": 'W/"AAAAAAAAAAAAAAAAAAAAAA"',
    "age": "0",
    "x-cache": "HIT",
    "cache-status": f"oxicache; hit; ttl={TTL - 1}",
}

app = FastAPI()
control_routes(app, "fastapi-prebuilt-fields")


@app.get("/items")
async def items(page: int = 1) -> Response:
    return Response(BODY, media_type="application/json", headers=FIELDS)
