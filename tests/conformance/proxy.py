"""The adapter between the HTTP caching test suite and an ASGI cache middleware.

The suite (npm ``http-cache-tests``) tests a *reverse proxy*: its client talks to the proxy, the
proxy talks to the suite's own origin server. This module is that proxy, as an ASGI app served by
uvicorn: every request is forwarded to the origin with httpx, and the origin's status, headers
(repeated ones kept as separate fields, in order) and body come back. The cache under test is the
ASGI middleware named on the command line, wrapped around the forwarding app, exactly as an
application would wrap its own routes::

    python tests/conformance/proxy.py --origin 8000 --port 8001 \\
        --middleware oxicache:CacheMiddleware           # or: --middleware none (pass-through)

What a proxy must do here (RFC 9110 §7.6.1): hop-by-hop fields (``Connection``, the fields it
names, ``Proxy-Connection``, ``Keep-Alive``, ``TE``, ``Transfer-Encoding``, ``Upgrade``) are not
forwarded in either direction; a gateway sends ``Via`` on the requests it forwards (§7.6.3).

Two quirks of the suite. Its origin answers status 999 ("304 Not Generated") when it expected a
conditional request and did not get one; the client reports that as "should have been
conditional", a test *failure*. uvicorn's h11 backend cannot send 999 as it stands (its reason
phrase table stops at 599; h11 itself accepts up to 999), so this process adds the phrase and the
999 travels through the middleware to the client unchanged. Mapping it to 502 instead (what
``--status-999 502`` does, and the fallback if uvicorn cannot be taught) would make the client
count those tests as *setup* failures ("status is 502, not 200"), which cache-tests.fyi does not
count as failures: it would hide a cache that drops validators. Second, the server must not add
``Date`` or ``Server`` of its own, so uvicorn runs with both headers off (the ``Date`` the client
sees is the origin's, or the cache's).

Connections to the origin are not kept alive: node closes idle connections after 5 s, httpx
reuses them for 5 s, and the race sends a request down a closing connection (a spurious 502).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: RFC 9110 §7.6.1: the connection-specific fields, plus whatever ``Connection`` names.
HOP_BY_HOP = frozenset(
    {b"connection", b"proxy-connection", b"keep-alive", b"te", b"transfer-encoding", b"upgrade"}
)
VIA = b"1.1 oxicache-conformance"

#: Keyword arguments per middleware when ``--middleware-kwargs`` is not given: the configuration
#: the conformance run is about (shared cache, honour the origin's headers, nothing cached without
#: explicit freshness: no default TTL, no heuristic freshness).
#:
#: oxicache's ``CacheMiddleware`` stores only what a response's own ``s-maxage``/``max-age``/
#: ``Expires`` allow (it has no default TTL and no heuristic freshness to turn off); ``shared`` is
#: set explicitly. Everything else stays at the product's defaults, which is what users deploy: in
#: particular ``share_authorized=False`` (three "optimal" tests, other-authorization-public/
#: -must-revalidate/-smaxage, want responses to requests with ``Authorization`` reused).
_OXICACHE = {"shared": True}
PRESETS: dict[str, dict[str, Any]] = {
    "none": {},
    "oxicache:CacheMiddleware": _OXICACHE,
    "oxicache.middleware:CacheMiddleware": _OXICACHE,
}


def _connection_fields(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    names = set(HOP_BY_HOP)
    for name, value in headers:
        if name.lower() == b"connection":
            names.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(names)


def end_to_end(headers: list[tuple[bytes, bytes]], *drop: bytes) -> list[tuple[bytes, bytes]]:
    """The fields a proxy forwards: hop-by-hop ones (and ``drop``) removed, order and repeats
    kept, names lower-cased as ASGI wants them."""
    skip = _connection_fields(headers) | frozenset(drop)
    return [(n.lower(), v) for n, v in headers if n.lower() not in skip]


def teach_uvicorn_999() -> bool:
    """Let uvicorn's h11 backend send status 999 (it looks reason phrases up in a table of
    100-599). True when it can."""
    try:
        from uvicorn.protocols.http import h11_impl

        phrases: dict[int, bytes] = h11_impl.STATUS_PHRASES
    except (ImportError, AttributeError):
        return False
    phrases.setdefault(999, b"304 Not Generated")
    return True


def make_proxy(origin: str, timeout: float = 15.0, max_status: int = 999) -> ASGIApp:
    """An ASGI app forwarding every HTTP request to ``origin`` (``http://127.0.0.1:PORT``);
    statuses above ``max_status`` become 502."""
    state: dict[str, httpx.AsyncClient] = {}

    def client() -> httpx.AsyncClient:
        if "client" not in state:
            c = httpx.AsyncClient(
                base_url=origin,
                timeout=timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=0),
                # A proxy has no cookie jar: an httpx client would store the origin's Set-Cookie
                # and send it back as Cookie on later requests. This jar accepts no cookie.
                cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            )
            # httpx adds Accept, Accept-Encoding, Connection and User-Agent to every request by
            # default; a proxy forwards the client's fields, not its own.
            for name in list(c.headers.keys()):
                del c.headers[name]
            state["client"] = c
        return state["client"]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if "client" in state:
                        await state.pop("client").aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            raise RuntimeError(f"unsupported scope type {scope['type']!r}")

        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break

        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("latin-1")
        target = raw_path + (b"?" + scope["query_string"] if scope.get("query_string") else b"")
        in_headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        headers = end_to_end(in_headers, b"host")
        headers.append((b"via", VIA))
        has_length = any(n.lower() == b"content-length" for n, _ in in_headers)
        request = client().build_request(
            scope["method"],
            target.decode("latin-1"),
            headers=headers,
            content=bytes(body) if body or has_length else None,
        )
        try:
            response = await client().send(request, stream=True)
        except httpx.HTTPError as exc:
            await _bad_gateway(send, f"origin request failed: {type(exc).__name__}: {exc}")
            return
        try:
            status = response.status_code if 100 <= response.status_code <= max_status else 502
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": end_to_end(list(response.headers.raw)),
                }
            )
            # Raw bytes: the body is forwarded as the origin encoded it, so Content-Length holds.
            async for chunk in response.aiter_raw():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            # An origin that dies mid-body raises out of aiter_raw: the exception propagates and
            # the server aborts the connection, so a truncated body never looks complete.
            await response.aclose()

    return app


async def _bad_gateway(send: Send, reason: str) -> None:
    body = reason.encode("utf-8", "replace") + b"\n"
    await send(
        {
            "type": "http.response.start",
            "status": 502,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def load_middleware(spec: str) -> Any:
    """``"none"`` or ``"package.module:Name"`` -> the middleware class (None for pass-through)."""
    if spec == "none":
        return None
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"--middleware must be 'none' or 'module:Class', not {spec!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def build_app(
    origin: str, spec: str, kwargs: dict[str, Any] | None = None, max_status: int = 999
) -> ASGIApp:
    """The forwarding app, wrapped in the middleware ``spec`` with ``kwargs`` (default: the
    preset for ``spec``, see :data:`PRESETS`)."""
    app = make_proxy(origin, max_status=max_status)
    middleware = load_middleware(spec)
    if middleware is None:
        return app
    options = PRESETS.get(spec, {}) if kwargs is None else kwargs
    wrapped: ASGIApp = middleware(app, **options)
    return wrapped


def exit_with_parent(pid: int) -> None:
    """Exit when process ``pid`` (the runner that started this one) is gone."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--origin", required=True, help="origin port (or base URL) to forward to")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--middleware", default="none", help="'none' or 'module:Class'")
    parser.add_argument(
        "--middleware-kwargs",
        default=None,
        help="JSON object of keyword arguments (default: the preset for --middleware)",
    )
    parser.add_argument(
        "--status-999",
        choices=("keep", "502"),
        default="keep",
        help="send the origin's 999 on as is (default; needs uvicorn taught, else 502) or as 502",
    )
    parser.add_argument("--parent-pid", type=int, default=0, help="exit when this pid is gone")
    args = parser.parse_args(argv)
    if args.parent_pid > 0:
        exit_with_parent(args.parent_pid)

    keep_999 = args.status_999 == "keep" and teach_uvicorn_999()
    origin = args.origin if "://" in args.origin else f"http://127.0.0.1:{int(args.origin)}"
    kwargs = None if args.middleware_kwargs is None else json.loads(args.middleware_kwargs)
    if kwargs is not None and not isinstance(kwargs, dict):
        raise SystemExit("--middleware-kwargs must be a JSON object")
    app = build_app(origin, args.middleware, kwargs, max_status=999 if keep_999 else 599)
    effective = PRESETS.get(args.middleware, {}) if kwargs is None else kwargs

    import uvicorn

    print(
        f"proxy: http://{args.host}:{args.port} -> {origin} "
        f"middleware={args.middleware} kwargs={json.dumps(effective)} "
        f"status-999={'999' if keep_999 else '502'}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http="h11",
        loop="asyncio",
        server_header=False,
        date_header=False,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
