#!/usr/bin/env python3
"""Runs oxicache and the peer libraries side by side and writes the raw JSON (bench/SCHEMA.md).

    python3 bench/run.py [--quick] [--rounds N] [--duration S] [--connections C]
                         [--only oxicache,fastapi-cachex] [--phases throughput,inproc,...]
                         [--out PATH] [--python-current] [--gc default|tuned]

Stdlib only. Needs the venvs that bench/run.sh builds (bench/.venvs/<name>) and wrk,
redis-server, memcached (and taskset for CPU pinning) on the PATH; each only when a selected
phase or target uses it (``--phases inproc --only oxicache --python-current`` needs none of
them: the smoke test of tests/python/test_bench_smoke.py runs that). Phases:

  throughput  wrk on GET /items?page=1 (every request a hit), interleaved rounds; ratios to the
              baselines are medians of per-round ratios
  inproc      the ASGI app called in process, no sockets: µs per hit, and µs added over a
              FastAPI route returning a prebuilt Response measured in the same process
  stampede    50 simultaneous requests on a cold key: how many times the handler ran
  growth      distinct keys (100k) against each memory cache: server RSS vs what is stored
  down        the redis a target uses is stopped under load, then started again
  checks      Set-Cookie and identity leaks, ETag/304, request Cache-Control: no-cache

Servers listen on 127.0.0.1 only; every load loop has a deadline; children are stopped by pid.
The last line on stdout is the path of the JSON written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH / "harness"))

import goals  # noqa: E402
import phases  # noqa: E402
import procs  # noqa: E402
from registry import KEY_DISTS, PHASES, UNCACHED_FOR_VENV, targets  # noqa: E402

QUICK = {
    "rounds": 1,
    "duration": 2,
    "warmup": 0,
    "gap": 0.2,
    "inproc_rounds": 1,
    "inproc_calls": 300,
    "inproc_batches": 3,
    "stampede_trials": 1,
    "growth_keys": 3000,
    "down_seconds": 2,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="oxicache side-by-side benchmark runner")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run (~2-3 min): 1 round x 2s, 3k growth keys, 1 stampede trial, "
        "2s outage; explicit options still win",
    )
    ap.add_argument("--rounds", type=int, help="throughput rounds (default 5)")
    ap.add_argument("--duration", type=int, help="seconds per wrk run (default 10)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    ap.add_argument(
        "--warmup", type=int, help="seconds of wrk per server before the rounds (default 1)"
    )
    ap.add_argument("--gap", type=float, help="pause between wrk runs, s (default 1)")
    ap.add_argument("--only", default="", help="comma-separated libraries; baselines always run")
    ap.add_argument("--phases", default=",".join(PHASES), help=f"default: {','.join(PHASES)}")
    ap.add_argument("--out", default="", help="JSON path (default bench/results/run-<stamp>.json)")
    ap.add_argument("--inproc-rounds", type=int, help="(default 3)")
    ap.add_argument("--inproc-calls", type=int, help="calls per batch (default 1000)")
    ap.add_argument("--inproc-batches", type=int, help="(default 5)")
    ap.add_argument("--stampede-n", type=int, default=50)
    ap.add_argument("--stampede-trials", type=int, help="(default 3)")
    ap.add_argument("--growth-keys", type=int, help="(default 100000)")
    ap.add_argument("--growth-clients", type=int, default=32)
    ap.add_argument("--growth-deadline", type=float, default=600.0, help="s per target")
    ap.add_argument(
        "--down-seconds", type=int, help="outage length and recovery window (default 5)"
    )
    ap.add_argument("--down-timeout", type=float, default=10.0, help="per-request timeout, s")
    ap.add_argument(
        "--gc",
        choices=("default", "tuned"),
        default="default",
        help="tuned: every app server (baselines and peers alike) runs with gc.freeze() after "
        "startup and a young-generation threshold of 10,000 (bench/apps/gc_tuned.py)",
    )
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument(
        "--python-current",
        action="store_true",
        help="run every target under this interpreter instead of its venv (smoke "
        "runs: no venv needed; the peers' pinned versions are then not used)",
    )
    a = ap.parse_args(argv)
    defaults = {
        "rounds": 5,
        "duration": 10,
        "warmup": 1,
        "gap": 1.0,
        "inproc_rounds": 3,
        "inproc_calls": 1000,
        "inproc_batches": 5,
        "stampede_trials": 3,
        "growth_keys": 100_000,
        "down_seconds": 5,
    }
    for k, v in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, QUICK[k] if a.quick else v)
    a.phases = [p.strip() for p in a.phases.split(",") if p.strip()]
    bad = [p for p in a.phases if p not in PHASES]
    if bad:
        ap.error(f"unknown phase(s) {bad}; known: {', '.join(PHASES)}")
    a.only = [x.strip() for x in a.only.split(",") if x.strip()]
    return a


def first_line(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return ((p.stdout or p.stderr).strip().splitlines() or ["?"])[0]
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable ({e})"


def environment() -> dict:
    cpu = "?"
    try:
        cpu = next(
            x.split(":", 1)[1].strip() for x in open("/proc/cpuinfo") if x.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    git = lambda *a: first_line(["git", "-C", str(BENCH.parent), *a])  # noqa: E731
    dirty = subprocess.run(
        [
            "git",
            "-C",
            str(BENCH.parent),
            "status",
            "--porcelain",
            "--",
            "src",
            "python",
            "Cargo.toml",
            "Cargo.lock",
            "pyproject.toml",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    stamp = procs.VENVS / "oxicache" / ".repo"
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "wrk": first_line(["wrk", "--version"]),
        "redis-server": first_line(["redis-server", "--version"]),
        "memcached": first_line(["memcached", "-V"]),
        "memcached_args": os.environ.get("BENCH_MEMCACHED_ARGS", ""),
        "oxicache_git": git("rev-parse", "HEAD"),
        "oxicache_dirty": bool(dirty),
        # what the oxicache venv was built from (harness/venvs.py; BENCH_REPO=head)
        "oxicache_source": (
            "HEAD commit (git archive; uncommitted edits left out)"
            if os.environ.get("BENCH_REPO") == "head"
            else "working tree"
        ),
        "oxicache_installed_from": stamp.read_text().strip() if stamp.exists() else None,
        "oxicache_version": first_line(
            [procs.venv_python("oxicache"), "-c", "import oxicache; print(oxicache.__version__)"]
        ),
        "targets_python": procs.PYTHON_OVERRIDE,  # set by --python-current
        "pinning": procs.PIN,
        "server_cpu": procs.SERVER_CPU if procs.PIN else None,
        "client_cpu": procs.CLIENT_CPU if procs.PIN else None,
    }


def versions(venvs: set[str]) -> dict:
    out = {}
    for v in sorted(venvs):
        p = subprocess.run(
            [procs.venv_python(v), "-m", "pip", "freeze", "--all"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        pkgs = sorted((x.strip() for x in p.stdout.splitlines() if x.strip()), key=str.lower)
        key = {d.lower().replace("_", "-") for d in KEY_DISTS}
        first = [
            x for x in pkgs if x.split("==")[0].split(" @ ")[0].lower().replace("_", "-") in key
        ]
        out[v] = first + [x for x in pkgs if x not in first]
    return out


SERVER_PHASES = ("throughput", "stampede", "growth", "down", "checks")


def services_needed(a: argparse.Namespace, ts: list) -> dict[str, bool]:
    """Which external programs this selection of phases and targets uses."""
    used = [t for t in ts if set(t.phases) & set(a.phases)]
    return {
        "wrk": "throughput" in a.phases and any("throughput" in t.phases for t in ts),
        "redis-server": "down" in a.phases or any(t.backend == "redis" for t in used),
        "memcached": any(t.backend == "memcached" for t in used),
    }


def main() -> None:
    a = parse_args()
    random.seed(a.seed)
    if a.python_current:
        procs.PYTHON_OVERRIDE = sys.executable
    procs.GC_MODE = a.gc
    ts = targets(a.only or None)
    needed = services_needed(a, ts)
    for tool, need in needed.items():
        if need and not shutil.which(tool):
            sys.exit(f"{tool} is not installed; bench/run.sh installs it")
    missing = sorted({t.venv for t in ts if not Path(procs.venv_python(t.venv)).exists()})
    if missing:
        sys.exit(f"venv(s) {missing} missing; run bench/run.sh (or bench/harness/venvs.py)")
    if procs.PIN:
        os.sched_setaffinity(0, {procs.CLIENT_CPU})  # the runner's clients stay off the server CPU
    started = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    tags = ("-quick" if a.quick else "") + ("-gc-tuned" if a.gc == "tuned" else "")
    out = Path(a.out) if a.out else BENCH / "results" / f"run-{started}{tags}.json"
    procs.LOG_DIR = BENCH / "results" / "logs" / started
    result = {
        "started": started,
        "quick": a.quick,
        "args": {
            "rounds": a.rounds,
            "duration": a.duration,
            "connections": a.connections,
            "stampede_n": a.stampede_n,
            "growth_keys": a.growth_keys,
            "down_seconds": a.down_seconds,
            "phases": a.phases,
            "only": a.only,
            "warmup": a.warmup,
            "gap": a.gap,
            "inproc_rounds": a.inproc_rounds,
            "inproc_calls": a.inproc_calls,
            "inproc_batches": a.inproc_batches,
            "stampede_trials": a.stampede_trials,
            "growth_clients": a.growth_clients,
            "down_timeout": a.down_timeout,
            "seed": a.seed,
            "python_current": a.python_current,
            "gc": a.gc,
        },
        "env": environment(),
        "versions": versions({"current" if a.python_current else t.venv for t in ts}),
        "targets": [t.as_json() for t in ts],
        "uncached_for_venv": UNCACHED_FOR_VENV,
        "logs": str(procs.LOG_DIR),
    }
    ctx = phases.Context(a, ts, result)
    t0 = time.monotonic()

    def save() -> None:
        result["goals"] = goals.judge(result)
        result["elapsed_s"] = round(time.monotonic() - t0, 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(out)

    try:
        if needed["redis-server"]:
            ctx.redis = procs.Redis(procs.REDIS_PORT, "redis")
        if needed["memcached"]:
            ctx.memcached = procs.Memcached(procs.MEMCACHED_PORT)
        for name in [p for p in PHASES if p in a.phases]:
            t_phase = time.monotonic()
            if ctx.redis is not None:
                ctx.redis.flushall()
            try:
                phases.PHASE_FUNCS[name](ctx)
            except Exception as e:
                phases.log(f"{name}: FAILED: {type(e).__name__}: {e}")
                result.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}"
            result.setdefault("phase_seconds", {})[name] = round(time.monotonic() - t_phase, 1)
            save()
    finally:
        ctx.stop_servers()
        for svc in (ctx.memcached, ctx.redis):
            if svc is not None:
                svc.stop()
        procs.stop_all()
    save()
    for g in result["goals"]:
        mark = {True: "met", False: "MISSED", None: "n/a"}[g["met"]]
        phases.log(f"goal: {g['name']}: {g['value']} (target {g['target']}) {mark}")
    phases.log(f"wrote {out} in {result['elapsed_s']:.0f}s")
    print(out)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: (procs.stop_all(), sys.exit(143)))
    main()
