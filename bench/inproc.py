"""In-process cost of one cache hit, side by side with FastAPI's own floor.

Each target's ASGI app is called directly (no socket, no server), sequentially, on one event
loop (uvloop when installed). Batches of the targets are interleaved so that machine noise
hits them alike; the figure per target is the median of its batches, and the added cost of a
hit is oxicache's median minus FastAPI-prebuilt's median from the same run.

    python bench/inproc.py [--calls 2000] [--batches 9] [--json out.json]
                           [--backend redis://127.0.0.1:6379/0 [--two-tier]]
                           [--metrics] [--no-tracing]

Targets:
  raw-asgi           a bare ASGI callable sending constant bytes (the floor of Python itself)
  fastapi-prebuilt   a FastAPI route returning a prebuilt Response of the same bytes
  oxicache           @cache(ttl=3600) over the 20-item pydantic workload, every call a hit
  raw-asgi+middleware  CacheMiddleware around an ASGI app that sends Cache-Control: max-age,
                     every call a hit (compare with raw-asgi)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, TypeAdapter
from starlette.responses import Response

from oxicache import CacheMiddleware, cache


class Item(BaseModel):
    id: int
    name: str
    price: float
    in_stock: bool
    tags: list[str]
    description: str


def make_items(page: int) -> list[Item]:
    base = page * 20
    return [
        Item(
            id=base + i,
            name=f"Item {base + i}",
            price=round(((base + i) * 7919 % 100000) / 100, 2),
            in_stock=(base + i) % 3 != 0,
            tags=[f"tag{(base + i) % 7}", f"cat{(base + i) % 11}"],
            description=f"lorem ipsum {base + i}",
        )
        for i in range(20)
    ]


BODY = TypeAdapter(list[Item]).dump_json(make_items(1))


async def raw_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


async def raw_asgi_cacheable(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BODY)).encode()),
                (b"cache-control", b"max-age=3600"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


middleware = CacheMiddleware(raw_asgi_cacheable)

prebuilt = FastAPI()


@prebuilt.get("/items")
async def prebuilt_items(page: int = 1) -> Response:
    return Response(content=BODY, media_type="application/json")


cached = FastAPI()


@cached.get("/items")
@cache(ttl=3600)
async def cached_items(page: int = 1) -> list[Item]:
    return make_items(page)


def caller(app: Any) -> Any:
    scope_base = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/items",
        "raw_path": b"/items",
        "query_string": b"page=1",
        "root_path": "",
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"inproc"), (b"accept", b"*/*")]
    message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    async def call() -> tuple[int, bytes]:
        out: dict[str, Any] = {"status": 0, "body": b""}

        async def send(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                out["status"] = msg["status"]
            else:
                out["body"] += msg.get("body", b"")

        await app({**scope_base, "headers": list(headers), "state": {}}, receive, send)
        return out["status"], out["body"]

    return call


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--batches", type=int, default=9)
    ap.add_argument("--json", default="")
    ap.add_argument("--backend", default="", help="oxicache on this backend URL (issue 6)")
    ap.add_argument("--two-tier", action="store_true", help="with --backend: two tiers")
    ap.add_argument(
        "--metrics", action="store_true", help="with Prometheus metrics (oxicache.metrics)"
    )
    ap.add_argument(
        "--no-tracing",
        action="store_true",
        help="without the OpenTelemetry span attributes (on when opentelemetry-api is installed)",
    )
    a = ap.parse_args()
    import oxicache.metrics
    import oxicache.tracing

    if a.metrics:
        oxicache.metrics.enable()
    if a.no_tracing:
        oxicache.tracing.disable()
    if a.backend:
        import oxicache

        oxicache.configure(a.backend, two_tier=a.two_tier, backend_timeout=1.0)
    targets = {
        "raw-asgi": caller(raw_asgi),
        "fastapi-prebuilt": caller(prebuilt),
        "oxicache": caller(cached),
        "raw-asgi+middleware": caller(middleware),
    }
    for name, call in targets.items():  # warm up; the first oxicache call is the miss
        for _ in range(3):
            status, body = await call()
            if a.backend:
                from oxicache.backends import remote

                guard = remote.get_backend()
                assert guard is not None
                await guard.drain()  # the miss's write lands before the hits
        assert status == 200 and body == BODY, (name, status, body[:80])
    per_call: dict[str, list[float]] = {n: [] for n in targets}
    gc.collect()
    for _ in range(a.batches):
        for name, call in targets.items():
            t0 = time.perf_counter()
            for _ in range(a.calls):
                await call()
            per_call[name].append((time.perf_counter() - t0) / a.calls * 1e6)
    med = {n: statistics.median(v) for n, v in per_call.items()}
    result = {
        "python": sys.version.split()[0],
        "calls": a.calls,
        "batches": a.batches,
        "us_per_call_median": {n: round(v, 2) for n, v in med.items()},
        "oxicache_added_us_per_hit": round(med["oxicache"] - med["fastapi-prebuilt"], 2),
        "oxicache_vs_prebuilt": round(med["oxicache"] / med["fastapi-prebuilt"], 3),
        "middleware_added_us_per_hit": round(med["raw-asgi+middleware"] - med["raw-asgi"], 2),
        "metrics": a.metrics,
        "tracing": oxicache.tracing.enabled(),
    }
    print(json.dumps(result, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({**result, "batches_us": per_call}, f, indent=2)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
