"""``make demo``: starts the demo app under uvicorn on loopback and drives it over real HTTP,
printing for each request whether the cache answered (HIT) or the handler ran (MISS), and how
long it took. Then it calls the same app in process (no socket, no server) to show what a hit
costs the cache itself, next to a FastAPI route that returns a prebuilt response."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "examples.demo_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/stats", timeout=0.5)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the demo server did not start")


async def show(
    client: httpx.AsyncClient, path: str, note: str = "", **headers: str
) -> httpx.Response:
    started = time.perf_counter()
    r = await client.get(path, headers=headers)
    ms = (time.perf_counter() - started) * 1000
    label = r.headers.get("x-cache", "-")
    colour = {"HIT": "\033[32m", "MISS": "\033[33m"}.get(label, "\033[36m")
    print(
        f"  GET {path:<16} {r.status_code}  {colour}{label:<6}\033[0m {ms:8.2f} ms"
        f"  age={r.headers.get('age', '-'):<3} {note}"
    )
    return r


async def drive(base: str) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=10) as c:
        print(
            "\n1. A list endpoint (20 pydantic models; the handler sleeps 50 ms for its 'query'):"
        )
        for i in range(4):
            await show(c, "/items", "first request runs the handler" if i == 0 else "")
        await show(c, "/items?page=2", "another query string is another entry")
        r = await show(c, "/items?page=2")

        print("\n2. Conditional request: the client already has this ETag (RFC 9110 §13.1.2):")
        await show(c, "/items?page=2", "304, no body", **{"If-None-Match": r.headers["etag"]})

        print("\n3. A sync endpoint (threadpool, 100 ms); hits never touch the threadpool:")
        for _ in range(3):
            await show(c, "/report")

        print("\n4. Per-user keys: the user comes from Depends(current_user):")
        await show(c, "/me", "alice", Authorization="Bearer alice")
        await show(c, "/me", "bob gets his own entry", Authorization="Bearer bob")
        await show(c, "/me", "alice again", Authorization="Bearer alice")
        await show(c, "/me", "no token: 401 from the app, never a cached 200")

        print("\n5. A cold key hit by 50 clients at once (single-flight):")
        started = time.perf_counter()
        rs = await asyncio.gather(*(c.get("/items?page=3") for _ in range(50)))
        ms = (time.perf_counter() - started) * 1000
        runs = (await c.get("/stats")).json()
        statuses = sorted({r.status_code for r in rs})
        print(
            f"  50 requests, statuses {statuses}, {ms:.0f} ms in all; handler runs for all"
            f" /items pages so far: {runs.get('list_items')} (pages 1, 2, 3: one run each)"
        )

        print("\n6. Warm hits, sequential:")
        n, started = 200, time.perf_counter()
        for _ in range(n):
            await c.get("/items")
        per = (time.perf_counter() - started) / n * 1000
        print(f"  {n} hits of /items: {per:.2f} ms each over HTTP (client included)")
    return per


# --- in process: what a hit costs the cache itself ----------------------------------------


def _asgi_get(app: Any, path: str, query: bytes) -> Callable[[], Awaitable[bytes]]:
    """A function sending one GET straight to ``app`` (no socket) and returning the body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"demo")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def get() -> bytes:
        parts: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await app(dict(scope), receive, send)
        return b"".join(parts)

    return get


async def in_process(http_ms: float) -> None:
    """Alternating batches of cache hits and of a FastAPI route returning the same bytes
    prebuilt; the median per call of each, and the difference: the cache's own cost."""
    from fastapi import FastAPI, Response

    sys.path.insert(0, str(ROOT))
    from examples.demo_app import app as demo

    hit = _asgi_get(demo, "/items", b"")
    body = await hit()  # the miss: the handler runs once
    prebuilt = FastAPI()

    @prebuilt.get("/items")
    async def items() -> Response:
        return Response(body, media_type="application/json")

    floor = _asgi_get(prebuilt, "/items", b"")
    assert await floor() == body == await hit()
    batches: dict[str, list[float]] = {"hit": [], "prebuilt": []}
    for _ in range(7):
        for name, call in (("hit", hit), ("prebuilt", floor)):
            started = time.perf_counter()
            for _ in range(300):
                await call()
            batches[name].append((time.perf_counter() - started) / 300 * 1e6)
    hit_us, floor_us = (statistics.median(batches[k]) for k in ("hit", "prebuilt"))
    print("\n7. The same hit in process (the app called directly: no socket, no server):")
    print(f"  a cache hit of /items                        {hit_us:7.1f} µs per request")
    print(f"  FastAPI returning the same bytes prebuilt    {floor_us:7.1f} µs per request")
    print(f"  the cache's own cost per hit: about {hit_us - floor_us:.1f} µs on top of FastAPI.")
    print(
        f"  Of the {http_ms:.2f} ms per hit over HTTP in step 6, the rest is the HTTP client,\n"
        "  the socket and uvicorn; a miss runs the handler (here 50 ms and 20 pydantic models).\n"
    )


def main() -> None:
    port = free_port()
    proc = start_server(port)
    try:
        print(f"oxicache demo: uvicorn serving examples/demo_app.py on http://127.0.0.1:{port}")
        http_ms = asyncio.run(drive(f"http://127.0.0.1:{port}"))
        asyncio.run(in_process(http_ms))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    os._exit(0)


if __name__ == "__main__":
    main()
