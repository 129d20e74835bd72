#!/usr/bin/env python3
"""One ratio, measured in adjacent pairs: target A's req/s over target B's, from short wrk runs
that alternate A, B, B, A, A, B, ... so that each pair runs within seconds of itself.

    python3 bench/ab.py A B [--pairs 12] [--seconds 3] [--connections 32]
    python3 bench/ab.py oxicache/memory fastapi-prebuilt

A and B are target names of ``bench/run.py`` (bench/harness/registry.py); their venvs must
exist (``bash bench/run.sh --setup-only``). A target on Redis or Memcached gets a private
server started here, on the throughput phase's port and CPU. Why: on a shared machine a run's speed drifts by
tens of percent over minutes, and the throughput phase's rounds put minutes between the two
runs of a ratio. A ratio of two runs a few seconds apart drifts far less, and the spread of
the pairs says how far to trust the median. Prints the per-pair ratios, their median and
quartiles; writes them to ``bench/results/ab-<stamp>.json``. Servers and wrk are pinned as in
the throughput phase (app on CPU 0, wrk on CPU 1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH / "harness"))

import procs  # noqa: E402
from phases import log, run_wrk  # noqa: E402
from registry import targets  # noqa: E402

PATH = "/items?page=1"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    by_name = {t.name: t for t in targets()}
    unknown = [n for n in (args.a, args.b) if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown target(s) {unknown}; known: {sorted(by_name)}")
    chosen = [by_name[args.a], by_name[args.b]]
    backends = {t.backend for t in chosen}
    stores = []
    if "redis" in backends:
        stores.append(procs.Redis(procs.REDIS_PORT, "redis"))
    if "memcached" in backends:
        stores.append(procs.Memcached(procs.MEMCACHED_PORT))
    try:
        pairs(args, procs.start_servers(chosen))
    finally:
        for store in stores:
            store.stop()


def _handler_runs(server: procs.AppServer) -> int | None:
    """How often the app's /items handler ran so far (None: the app does not count)."""
    try:
        return server.runs()
    except Exception:
        return None


def pairs(args: argparse.Namespace, servers: dict) -> None:
    try:
        for s in servers.values():  # warm: the entry stored, the code paths hot
            run_wrk(s.port, PATH, 1, args.connections)
        before = {name: _handler_runs(s) for name, s in servers.items()}
        ratios, runs = [], []
        for i in range(args.pairs):
            order = (args.a, args.b) if i % 2 == 0 else (args.b, args.a)
            got = {}
            for name in order:
                got[name] = run_wrk(servers[name].port, PATH, args.seconds, args.connections)
                time.sleep(0.2)
            ratio = got[args.a]["rps"] / got[args.b]["rps"]
            ratios.append(round(ratio, 4))
            runs.append({n: {"rps": got[n]["rps"], "p99_ms": got[n]["p99_ms"]} for n in got})
            log(f"pair {i + 1}/{args.pairs}: {ratio:.3f}")
        handler_runs = {
            name: None if before[name] is None else _handler_runs(s) - before[name]
            for name, s in servers.items()
        }
    finally:
        for s in servers.values():
            s.stop()
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    median = statistics.median(ratios)
    result = {
        "a": args.a,
        "b": args.b,
        "pairs": args.pairs,
        "seconds": args.seconds,
        "connections": args.connections,
        "ratios": ratios,
        "median": round(median, 4),
        "quartiles": [round(q1, 4), round(q3, 4)],
        "handler_runs_during_pairs": handler_runs,
        "memcached_args": os.environ.get("BENCH_MEMCACHED_ARGS", ""),
        "runs": runs,
    }
    out = BENCH / "results" / f"ab-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    spread = f"quartiles {q1:.3f}-{q3:.3f}, {args.pairs} pairs"
    print(f"{args.a} / {args.b}: median {median:.3f} ({spread})")
    print(f"handler runs during the pairs (every request a hit: 0 expected): {handler_runs}")
    print(out)


if __name__ == "__main__":
    main()
