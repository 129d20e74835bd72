"""Cost of one request with no sockets: an ASGI app called directly, sequentially, on uvloop.

Runs under a target's venv python (bench/run.py starts it, pinned like a server), with bench/ on
PYTHONPATH and the target's BENCH_* environment. With ``--ref`` a second app (FastAPI returning
a prebuilt Response) is loaded in the same process and measured in alternating batches, so the
difference of the two is taken from the same interpreter, the same package versions and the
same moments; ``--ref`` may be given again (a middleware is also set beside raw ASGI), the first
one being the reference of ``added_us_median``. Prints one JSON line. Bounded: a fixed number of calls and a deadline.

    PYTHONPATH=bench BENCH_BACKEND=memory bench/.venvs/oxicache/bin/python \
        bench/harness/inproc_worker.py apps.oxi:app --ref apps.prebuilt:app
"""

import argparse
import asyncio
import gc
import importlib
import json
import statistics
import sys
import time


def load(spec: str):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "app")


async def start_lifespan(app):
    """Runs the app's startup; returns a function that runs its shutdown (or None)."""
    inbox: asyncio.Queue = asyncio.Queue()
    answered = asyncio.Event()
    outcome = {}

    async def receive():
        return await inbox.get()

    async def send(message):
        outcome["type"] = message["type"]
        answered.set()

    async def run():
        try:
            await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
        except Exception as e:
            outcome.setdefault("type", f"unsupported: {e!r}")
            answered.set()

    task = asyncio.ensure_future(run())
    await inbox.put({"type": "lifespan.startup"})
    await asyncio.wait_for(answered.wait(), 15)
    if outcome["type"] == "lifespan.startup.failed":
        raise RuntimeError("lifespan startup failed")
    if outcome["type"] != "lifespan.startup.complete":
        return None

    async def shutdown():
        answered.clear()
        await inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(task, 5)
        except Exception:
            pass

    return shutdown


def requester(app, path: str, query: str):
    """A coroutine function that sends one GET to ``app`` and returns (status, body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    headers = ((b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench-inproc"), (b"accept", b"*/*"))
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive():
        return request

    async def one():
        status = [0]
        chunks = []

        async def send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app({**scope, "headers": list(headers), "state": {}}, receive, send)
        return status[0], b"".join(chunks)

    return one


async def timed_batch(call, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - t0) / n * 1e6


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("app", help="module:attr of the target")
    ap.add_argument(
        "--ref",
        action="append",
        default=[],
        help="module:attr measured in alternating batches (repeatable)",
    )
    ap.add_argument("--path", default="/items")
    ap.add_argument("--query", default="page=1")
    ap.add_argument("--calls", type=int, default=1000, help="calls per batch")
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--deadline", type=float, default=60.0)
    a = ap.parse_args()

    common = importlib.import_module("apps.common")
    apps = {"target": load(a.app)}
    for spec in a.ref:
        apps[spec] = load(spec)
    shutdowns = [await start_lifespan(app) for app in apps.values()]
    calls = {k: requester(app, a.path, a.query) for k, app in apps.items()}
    first = {}
    for k, call in calls.items():  # the target's first call is the miss that fills it
        first[k] = [(await call())[0] for _ in range(3)]
        await timed_batch(call, max(1, a.calls // 10))  # warm-up, not recorded
    runs_before = common.RUNS["items"]
    batches = {k: [] for k in calls}
    stop_at = time.perf_counter() + a.deadline
    gc.collect()
    for _ in range(a.batches):
        for k, call in calls.items():
            batches[k].append(await timed_batch(call, a.calls))
        if time.perf_counter() > stop_at:
            break
    _, body = await calls["target"]()
    out = {
        "app": a.app,
        "statuses": first["target"],
        "body_bytes": len(body),
        "handler_runs": common.RUNS["items"] - runs_before,
        "us_per_call_median": statistics.median(batches["target"]),
        "batches_us": [round(x, 2) for x in batches["target"]],
    }
    refs = {}
    for spec in a.ref:
        refs[spec] = {
            "statuses": first[spec],
            "us_per_call_median": statistics.median(batches[spec]),
            "batches_us": [round(x, 2) for x in batches[spec]],
            # per-batch-pair differences: both sides measured back to back
            "added_us_median": statistics.median(
                t - r for t, r in zip(batches["target"], batches[spec])
            ),
        }
    if a.ref:
        ref = refs[a.ref[0]]
        out.update(
            {
                "ref": a.ref[0],
                "ref_statuses": ref["statuses"],
                "ref_us_per_call_median": ref["us_per_call_median"],
                "ref_batches_us": ref["batches_us"],
                "added_us_median": ref["added_us_median"],
                "refs": refs,
            }
        )
    print(json.dumps(out))
    for shutdown in shutdowns:
        if shutdown is not None:
            await shutdown()


if __name__ == "__main__":
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    asyncio.run(main())
    sys.exit(0)
