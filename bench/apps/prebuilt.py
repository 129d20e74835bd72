"""Baseline: a FastAPI route that returns a ready-made Response holding page 1's bytes.

Routing, query parsing and the Response class run; no handler work and no serialization: the
ceiling of any cache that answers from inside a FastAPI route."""

from fastapi import FastAPI
from starlette.responses import Response

from apps.common import control_routes, page_bytes

BODY = page_bytes(1)

app = FastAPI()
control_routes(app, "fastapi-prebuilt")


@app.get("/items")
async def items(page: int = 1) -> Response:
    return Response(BODY, media_type="application/json")
