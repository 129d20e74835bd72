"""The runner's HTTP client (stdlib only, 127.0.0.1 only, every call bounded in time).

- ``fetch``: one request on its own connection (http.client), for checks and /_stats;
- ``burst``: n connections opened first, then n identical requests written back to back;
- ``closed_loop``: k keep-alive clients sending requests back to back for a fixed time;
- ``sweep``: every path of an iterator requested once, by k keep-alive clients.

The asyncio parts speak just enough HTTP/1.1 for what the apps send (Content-Length or
chunked bodies) and never follow redirects.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

HOST = "127.0.0.1"


@dataclass
class Reply:
    status: int  # -1: no response (see ``error``)
    headers: list[tuple[str, str]] = field(default_factory=list)  # names lower-cased
    body: bytes = b""
    seconds: float = 0.0
    error: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), default)

    def headers_named(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


# ------------------------------------------------------------------------------ sequential
def fetch(
    port: int,
    path: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    timeout: float = 10.0,
) -> Reply:
    """One request on a fresh connection; connection errors come back as status -1."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        return Reply(
            r.status, [(k.lower(), v) for k, v in r.getheaders()], body, time.perf_counter() - t0
        )
    except (OSError, http.client.HTTPException) as e:
        return Reply(-1, seconds=time.perf_counter() - t0, error=f"{type(e).__name__}: {e}")
    finally:
        conn.close()


def stats(port: int, timeout: float = 10.0) -> dict:
    r = fetch(port, "/_stats", timeout=timeout)
    if r.status != 200:
        raise RuntimeError(f":{port}/_stats answered {r.status} {r.error}")
    return json.loads(r.body)


# ------------------------------------------------------------------------------ asyncio
def _request_bytes(path: str, port: int, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_reply(reader: asyncio.StreamReader) -> Reply:
    line = await reader.readline()
    if not line:
        raise ConnectionError("closed before the status line")
    status = int(line.split(b" ", 2)[1])
    headers = []
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        headers.append((name.strip().lower().decode("latin-1"), value.strip().decode("latin-1")))
    fields = dict(headers)
    if status in (204, 304) or status < 200:
        body = b""
    elif "chunked" in fields.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    elif "content-length" in fields:
        body = await reader.readexactly(int(fields["content-length"]))
    else:
        body = await reader.read()
    return Reply(status, headers, body)


class KeepAlive:
    """One client connection, reopened after an error or a ``Connection: close``."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self, timeout: float = 10.0) -> None:
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(HOST, self.port), timeout
        )

    async def close(self) -> None:
        w, self.reader, self.writer = self.writer, None, None
        if w is not None:
            w.close()
            try:
                await asyncio.wait_for(w.wait_closed(), 1.0)
            except (TimeoutError, OSError):
                pass

    async def get(self, path: str, timeout: float) -> Reply:
        t0 = time.perf_counter()
        try:
            if self.writer is None:
                await self.connect(timeout)
            assert self.writer is not None and self.reader is not None
            self.writer.write(_request_bytes(path, self.port))
            await asyncio.wait_for(self.writer.drain(), timeout)
            reply = await asyncio.wait_for(_read_reply(self.reader), timeout)
        except BaseException:
            await self.close()
            raise
        reply.seconds = time.perf_counter() - t0
        if (reply.header("connection") or "").lower() == "close":
            await self.close()
        return reply


async def _burst(port: int, path: str, n: int, timeout: float) -> list[Reply]:
    conns = [KeepAlive(port) for _ in range(n)]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.connect() for c in conns)), timeout)
        payload = _request_bytes(path, port)
        t0 = time.perf_counter()
        for c in conns:  # all writes before any read: the requests arrive together
            assert c.writer is not None
            c.writer.write(payload)

        async def one(c: KeepAlive) -> Reply:
            try:
                assert c.writer is not None and c.reader is not None
                await c.writer.drain()
                r = await _read_reply(c.reader)
                r.seconds = time.perf_counter() - t0
                return r
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
                return Reply(-1, seconds=time.perf_counter() - t0, error=type(e).__name__)

        return await asyncio.wait_for(asyncio.gather(*(one(c) for c in conns)), timeout)
    finally:
        await asyncio.gather(*(c.close() for c in conns))


def burst(port: int, path: str, n: int = 50, timeout: float = 30.0) -> list[Reply]:
    """n simultaneous requests for one path (a cold-key stampede)."""
    return asyncio.run(_burst(port, path, n, timeout))


async def _closed_loop(port, path_for, clients, seconds, req_timeout):
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    samples: list[tuple[float, int, object, float]] = []

    async def client(i: int) -> None:
        conn = KeepAlive(port)
        seq = 0
        try:
            while time.perf_counter() < stop_at:
                path = path_for(i, seq)
                seq += 1
                start = time.perf_counter()
                try:
                    r = await conn.get(path, req_timeout)
                    outcome: object = r.status
                except TimeoutError:
                    outcome = "timeout"
                except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
                    outcome = "error"
                samples.append((start - t0, i, outcome, time.perf_counter() - start))
                if outcome == "error":
                    await asyncio.sleep(0.05)  # a refused connection must not spin
        finally:
            await conn.close()

    await asyncio.gather(*(client(i) for i in range(clients)))
    return samples


def closed_loop(
    port: int,
    path_for: Callable[[int, int], str],
    clients: int,
    seconds: float,
    req_timeout: float = 10.0,
) -> list[tuple[float, int, object, float]]:
    """``clients`` keep-alive clients, each sending its next request as soon as the previous one
    is answered, until ``seconds`` have passed (a request started before then may end up to
    ``req_timeout`` later). Returns (start offset s, client, status or "timeout"/"error",
    latency s) per request."""
    return asyncio.run(_closed_loop(port, path_for, clients, seconds, req_timeout))


async def _sweep(port, paths, clients, deadline_s, req_timeout, every, on_progress):
    it = iter(paths)
    stop_at = time.perf_counter() + deadline_s
    state = {"done": 0, "errors": 0, "statuses": {}, "body_bytes": 0, "timed_out": False}
    next_mark = [every]

    async def client() -> None:
        conn = KeepAlive(port)
        try:
            for path in it:
                if time.perf_counter() >= stop_at:
                    state["timed_out"] = True
                    return
                try:
                    r = await conn.get(path, req_timeout)
                    key = str(r.status)
                    state["body_bytes"] += len(r.body) if r.status == 200 else 0
                except (
                    TimeoutError,
                    OSError,
                    ConnectionError,
                    asyncio.IncompleteReadError,
                    ValueError,
                ):
                    key = "error"
                    state["errors"] += 1
                state["statuses"][key] = state["statuses"].get(key, 0) + 1
                state["done"] += 1
                if on_progress is not None and state["done"] >= next_mark[0]:
                    next_mark[0] += every
                    on_progress(state["done"])
        finally:
            await conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return state


def sweep(
    port: int,
    paths: Iterable[str],
    clients: int,
    deadline_s: float,
    req_timeout: float = 10.0,
    every: int = 10_000,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Requests every path once with ``clients`` keep-alive clients, stopping at the deadline;
    ``on_progress(done)`` is called about every ``every`` requests."""
    return asyncio.run(_sweep(port, paths, clients, deadline_s, req_timeout, every, on_progress))
