"""The measurements. Each phase takes the run context and fills its part of the result
(the format is bench/SCHEMA.md; fields beyond it are additions, never renames)."""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpc
import procs
from registry import RAW_APP, UNCACHED_FOR_VENV, Target

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024
RAW, PREBUILT, UNCACHED = "raw-asgi", "fastapi-prebuilt", "fastapi-uncached"


def log(msg: str) -> None:
    import sys

    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def rnd(x, nd=3):
    return None if x is None else round(x, nd)


def pct(sorted_xs: list[float], p: float) -> float | None:
    if not sorted_xs:
        return None
    return sorted_xs[min(len(sorted_xs) - 1, int(p * len(sorted_xs)))]


def rotated(items: list, r: int) -> list:
    """Round r's order: rotated by r, reversed every other round (no target always goes first
    or always follows the same neighbour)."""
    if not items:
        return []
    k = r % len(items)
    out = items[k:] + items[:k]
    return out[::-1] if r % 2 else out


@dataclass
class Context:
    args: object
    targets: list[Target]
    result: dict
    redis: object = None
    memcached: object = None
    servers: dict = field(default_factory=dict)  # name -> AppServer, reused across phases

    def running(self, targets: list[Target]) -> dict:
        """Servers for these targets, starting the missing ones together."""
        dead = [n for n, s in self.servers.items() if not s.child.alive()]
        for n in dead:
            log(f"  {n}: server had exited (see {self.servers[n].child.log_path}); restarting")
            self.servers.pop(n).stop()
        missing = [t for t in targets if t.name not in self.servers]
        if missing:
            self.servers.update(procs.start_servers(missing))
        return {t.name: self.servers[t.name] for t in targets}

    def stop_servers(self) -> None:
        for s in self.servers.values():
            s.stop()
        self.servers.clear()

    def of_phase(self, phase: str, kind: str | None = None) -> list[Target]:
        return [t for t in self.targets if phase in t.phases and (kind is None or t.kind == kind)]


# ------------------------------------------------------------------------------ throughput
def run_wrk(port: int, path: str, seconds: int, connections: int) -> dict:
    argv = procs.pinned(procs.CLIENT_CPU) + [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(HERE / "wrk_summary.lua"),
        f"http://127.0.0.1:{port}{path}",
    ]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    for line in p.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            w = json.loads(line[len("BENCHJSON ") :])
            secs = w["duration_us"] / 1e6
            return {
                "rps": round(w["requests"] / secs, 1),
                "p50_ms": w["p50_us"] / 1000,
                "p99_ms": w["p99_us"] / 1000,
                "errors": w["connect_errors"]
                + w["read_errors"]
                + w["write_errors"]
                + w["timeouts"],
                "non2xx": w["non2xx"],
                "p90_ms": w["p90_us"] / 1000,
                "max_ms": w["max_us"] / 1000,
                "requests": w["requests"],
                "bytes_per_response": round(w["bytes"] / w["requests"], 1)
                if w["requests"]
                else None,
                "seconds": round(secs, 3),
            }
    raise RuntimeError(f"wrk printed no summary (exit {p.returncode}): {p.stderr[-400:]}")


def throughput(ctx: Context) -> None:
    a = ctx.args
    ts = ctx.of_phase("throughput")
    log(
        f"throughput: {len(ts)} targets, {a.rounds} round(s) x {a.duration}s, wrk -c{a.connections}"
    )
    servers = ctx.running(ts)
    warm = {}
    for t in ts:
        s = servers[t.name]
        before = s.runs()
        statuses = [httpc.fetch(s.port, "/items?page=1").status for _ in range(2)]
        warm[t.name] = {"statuses": statuses, "handler_runs": s.runs() - before}
        if statuses[-1] != 200:
            log(f"  {t.name}: warm-up answered {statuses}")
    if a.warmup > 0:
        for t in ts:
            run_wrk(servers[t.name].port, "/items?page=1", a.warmup, a.connections)
    runs_before = {t.name: servers[t.name].runs() for t in ts}
    rounds: dict[str, list[dict]] = {t.name: [] for t in ts}
    for r in range(a.rounds):
        order = rotated(ts, r)
        log(f"  round {r + 1}/{a.rounds}")
        for pos, t in enumerate(order):
            s = servers[t.name]
            if not s.child.alive():
                raise RuntimeError(f"{t.name} died; see {s.child.log_path}")
            gc_before = s.gc_collections()
            row = run_wrk(s.port, "/items?page=1", a.duration, a.connections)
            gc_after = s.gc_collections()
            row.update({"round": r, "position": pos})
            if gc_before and gc_after:  # per generation, during this run of wrk
                row["gc_collections"] = [b - a for a, b in zip(gc_before, gc_after, strict=True)]
            rounds[t.name].append(row)
            log(
                f"    {t.name:34s} {row['rps']:9.0f} req/s  p50 {row['p50_ms']:6.2f} ms  "
                f"p99 {row['p99_ms']:6.2f} ms  non2xx {row['non2xx']}  errors {row['errors']}"
            )
            time.sleep(a.gap)
    by_round = {name: {x["round"]: x for x in rows} for name, rows in rounds.items()}

    def ratios(name: str, ref: str, key: str) -> list[float]:
        out = []
        for r, row in by_round[name].items():
            other = by_round.get(ref, {}).get(r)
            if other and other[key]:
                out.append(row[key] / other[key])
        return out

    res = {}
    for t in ts:
        rows = rounds[t.name]
        uref = UNCACHED_FOR_VENV[t.venv]
        res[t.name] = {
            "rounds": rows,
            "median_rps": rnd(med(x["rps"] for x in rows), 1),
            "median_p50_ms": rnd(med(x["p50_ms"] for x in rows)),
            "median_p99_ms": rnd(med(x["p99_ms"] for x in rows)),
            "ratio_prebuilt": rnd(med(ratios(t.name, PREBUILT, "rps"))),
            "ratio_raw": rnd(med(ratios(t.name, RAW, "rps"))),
            "ratio_uncached": rnd(med(ratios(t.name, uref, "rps"))),
            "p99_ratio_prebuilt": rnd(med(ratios(t.name, PREBUILT, "p99_ms"))),
            "uncached_ref": uref,
            "warm": warm[t.name],
            "handler_runs_during_rounds": servers[t.name].runs() - runs_before[t.name],
            "rss_mib_after": rnd((servers[t.name].child.rss_bytes() or 0) / MIB, 1),
            # CPython's collections per second of wrk (young, middle, full), median of rounds
            "gc_collections_per_s": gc_rates(rows),
        }
    ctx.result["throughput"] = res
    ctx.result["throughput_config"] = {
        "path": "/items?page=1",
        "threads": 1,
        "connections": a.connections,
        "duration_s": a.duration,
        "rounds": a.rounds,
        "warmup_s": a.warmup,
    }


def gc_rates(rows: list[dict]) -> list[float] | None:
    """Median over rounds of each generation's collections per second of load."""
    per_s = [[n / x["seconds"] for n in x["gc_collections"]] for x in rows if "gc_collections" in x]
    if not per_s:
        return None
    return [rnd(med(gen), 1) for gen in zip(*per_s, strict=True)]


# ------------------------------------------------------------------------------ inproc
def inproc(ctx: Context) -> None:
    a = ctx.args
    ts = ctx.of_phase("inproc")
    log(
        f"inproc: {len(ts)} targets, {a.inproc_rounds} round(s) of {a.inproc_batches} batches "
        f"x {a.inproc_calls} calls"
    )
    runs: dict[str, list[dict]] = {t.name: [] for t in ts}
    for r in range(a.inproc_rounds):
        for t in rotated(ts, r):
            argv = procs.pinned(procs.SERVER_CPU) + [
                procs.venv_python(t.venv),
                str(HERE / "inproc_worker.py"),
                t.module,
                "--calls",
                str(a.inproc_calls),
                "--batches",
                str(a.inproc_batches),
                "--deadline",
                "60",
            ]
            for ref in t.inproc_refs:
                argv += ["--ref", ref]
            try:
                p = subprocess.run(
                    argv,
                    cwd=procs.BENCH,
                    env=procs.target_env(t),
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
            except subprocess.TimeoutExpired:
                log(f"    {t.name}: in-process worker timed out")
                continue
            line = next((x for x in reversed(p.stdout.splitlines()) if x.startswith("{")), "")
            if not line:
                log(f"    {t.name}: in-process worker failed: {p.stderr.strip()[-300:]}")
                continue
            d = json.loads(line)
            d["round"] = r
            runs[t.name].append(d)
            added = d.get("added_us_median")
            raw = d.get("refs", {}).get(RAW_APP)
            log(
                f"    {t.name:34s} {d['us_per_call_median']:8.1f} us/call"
                + (
                    f"  ({added:+.1f} us vs prebuilt in the same process)"
                    if added is not None
                    else ""
                )
                + (f"  ({raw['added_us_median']:+.1f} us vs raw ASGI)" if raw else "")
                + f"  handler runs {d['handler_runs']}"
            )
    pre_by_round = {d["round"]: d["us_per_call_median"] for d in runs.get(PREBUILT, [])}
    res = {}
    for t in ts:
        rs = runs[t.name]
        if not rs:
            continue
        if t.inproc_refs:
            added = med(d["added_us_median"] for d in rs)
        elif t.name == PREBUILT:
            added = 0.0
        else:
            added = med(
                d["us_per_call_median"] - pre_by_round[d["round"]]
                for d in rs
                if d["round"] in pre_by_round
            )
        res[t.name] = {
            "us_per_call_median": rnd(med(d["us_per_call_median"] for d in rs), 2),
            "us_added_vs_prebuilt": rnd(added, 2),
            "batches_us": [b for d in rs for b in d["batches_us"]],
            "prebuilt_us_same_process": rnd(med(d.get("ref_us_per_call_median") for d in rs), 2),
            "handler_runs": sum(d["handler_runs"] for d in rs),
            "statuses": rs[0]["statuses"],
            "venv": t.venv,
        }
        if RAW_APP in t.inproc_refs:  # a middleware: its cost over the bare ASGI app
            res[t.name].update(
                {
                    "us_added_vs_raw": rnd(
                        med(d["refs"][RAW_APP]["added_us_median"] for d in rs), 2
                    ),
                    "raw_us_same_process": rnd(
                        med(d["refs"][RAW_APP]["us_per_call_median"] for d in rs), 2
                    ),
                }
            )
    ctx.result["inproc"] = res
    ctx.result["inproc_config"] = {
        "calls_per_batch": a.inproc_calls,
        "batches": a.inproc_batches,
        "rounds": a.inproc_rounds,
        "path": "/items?page=1",
        "added_vs": "apps.prebuilt:app in the same process, alternating batches",
        "added_vs_raw": "middleware targets: apps.raw_asgi:app in the "
        "same process, alternating batches",
    }


# ------------------------------------------------------------------------------ stampede
def stampede(ctx: Context) -> None:
    a = ctx.args
    ts = ctx.of_phase("stampede", "cache")
    log(
        f"stampede: {len(ts)} targets, {a.stampede_n} simultaneous requests, "
        f"{a.stampede_trials} cold key(s) each"
    )
    servers = ctx.running(ts)
    res = {}
    for t in ts:
        s = servers[t.name]
        trials = []
        for _ in range(a.stampede_trials):
            page = random.randrange(10_000_000, 20_000_000)
            before = s.runs()
            replies = httpc.burst(s.port, f"/items?page={page}", a.stampede_n)
            time.sleep(0.3)
            statuses: dict[str, int] = {}
            for x in replies:
                statuses[str(x.status if x.status > 0 else "error")] = (
                    statuses.get(str(x.status if x.status > 0 else "error"), 0) + 1
                )
            secs = sorted(x.seconds for x in replies if x.status > 0)
            trials.append(
                {
                    "handler_runs": s.runs() - before,
                    "statuses": statuses,
                    "distinct_bodies": len({x.body for x in replies if x.status == 200}),
                    "p50_ms": rnd(pct(secs, 0.5) * 1000 if secs else None, 1),
                    "max_ms": rnd(secs[-1] * 1000 if secs else None, 1),
                }
            )
        res[t.name] = {
            "n": a.stampede_n,
            "trials": trials,
            "median_handler_runs": med(x["handler_runs"] for x in trials),
        }
        log(
            f"  {t.name:34s} handler runs {[x['handler_runs'] for x in trials]}  "
            f"statuses {trials[0]['statuses']}"
        )
    ctx.result["stampede"] = res


# ------------------------------------------------------------------------------ growth
def grow(s, a) -> dict:
    """Sends a.growth_keys distinct keys to a fresh server; RSS (and the store's own figures
    when the app reports them) before, along the way and after."""
    for _ in range(3):
        httpc.fetch(s.port, "/items?page=1")
    time.sleep(1.0)
    st0 = s.stats()
    rss0 = s.child.rss_bytes() or 0
    points = [[0, rnd(rss0 / MIB, 2)]]
    stored_seen = [st0["store"]["weighted_size"]] if "store" in st0 else []

    def sample(done: int) -> None:
        points.append([done, rnd((s.child.rss_bytes() or 0) / MIB, 2)])
        if "store" in st0:
            stored_seen.append(s.stats()["store"]["weighted_size"])

    t0 = time.monotonic()
    sw = httpc.sweep(
        s.port,
        (f"/items?page={p}" for p in range(100, 100 + a.growth_keys)),
        a.growth_clients,
        a.growth_deadline,
        every=max(1, a.growth_keys // 10),
        on_progress=sample,
    )
    elapsed = time.monotonic() - t0
    time.sleep(2.0)  # let the server settle before the last reading
    st1 = s.stats()
    rss1 = s.child.rss_bytes() or 0
    if points[-1][0] == sw["done"]:
        points[-1][1] = rnd(rss1 / MIB, 2)
    else:
        points.append([sw["done"], rnd(rss1 / MIB, 2)])
    grown = rss1 - rss0
    row = {
        "points": points,
        "rss_growth_mib": rnd(grown / MIB, 2),
        "stored_bytes": None,
        "entries": None,
        "growth_over_stored": None,
        "cap_bytes": None,
        "keys_sent": sw["done"],
        "statuses": sw["statuses"],
        "timed_out": sw["timed_out"],
        "elapsed_s": rnd(elapsed, 1),
        "rss_before_mib": rnd(rss0 / MIB, 2),
        "rss_after_mib": rnd(rss1 / MIB, 2),
        "handler_runs": st1["counters"]["items"] - st0["counters"]["items"],
        "body_bytes_sent": sw["body_bytes"],
        "growth_over_body_sent": rnd(grown / sw["body_bytes"]) if sw["body_bytes"] else None,
    }
    if "store" in st1:  # oxicache: what its store says it holds
        ws0, ws1 = st0["store"]["weighted_size"], st1["store"]["weighted_size"]
        n0, n1 = st0["store"]["entries"], st1["store"]["entries"]
        stored_seen.append(ws1)
        # Stored bytes = body bytes resident: the entries held times the mean body size sent
        # (the bodies differ by a few bytes at most). The store's own weighted size also counts
        # the key, the headers and a fixed per-entry overhead; it is reported beside it.
        mean_body = sw["body_bytes"] / max(1, sw["done"] - sw["errors"])
        body0, body1 = int(n0 * mean_body), int(n1 * mean_body)
        row.update(
            {
                "stored_bytes": body1,
                "entries": n1,
                "growth_over_stored": rnd(grown / (body1 - body0)) if body1 > body0 else None,
                "cap_bytes": st1["store"]["max_bytes"],
                "weighted_size": ws1,
                "growth_over_weighted": rnd(grown / (ws1 - ws0)) if ws1 > ws0 else None,
                "weighted_size_max_seen": max(stored_seen),
                "mean_body_bytes": round(mean_body, 1),
                "store_stats": st1.get("oxicache", {}).get("store"),
            }
        )
        row["cap_held"] = row["weighted_size_max_seen"] <= row["cap_bytes"] * 1.05
        row["rss_growth_over_cap"] = rnd(grown / row["cap_bytes"])
    return row


def growth(ctx: Context) -> None:
    a = ctx.args
    ts = [t for t in ctx.of_phase("growth") if t.backend in ("memory", "none")]
    log(f"growth: {len(ts)} targets, {a.growth_keys} distinct keys, {a.growth_clients} clients")
    # the capped variant gets a cap of about a quarter of what the sweep would store
    cap = max(1 * MIB, a.growth_keys * 2700 // 4)
    res = {}
    fresh = {}  # new servers (nothing cached yet), started together, stopped once measured
    try:
        for t in ts:
            extra = {"BENCH_OXI_MAX_SIZE": str(cap)} if t.variant == "capped" else None
            fresh[t.name] = procs.AppServer(t, tag="growth", env=extra)
        for s in fresh.values():
            s.wait_ready()
        for t in ts:
            s = fresh.pop(t.name)
            try:
                row = res[t.name] = grow(s, a)
            finally:
                s.stop()
            log(
                f"  {t.name:34s} {row['keys_sent']} keys in {row['elapsed_s']:.0f}s  RSS "
                f"{row['rss_before_mib']:.0f} -> {row['rss_after_mib']:.0f} MiB"
                + (
                    f"  {row['entries']} entries: bodies {row['stored_bytes'] / MIB:.1f} MiB, "
                    f"weighted {row['weighted_size'] / MIB:.1f} MiB; growth/stored "
                    f"{row['growth_over_stored']}, growth/weighted {row['growth_over_weighted']}"
                    if row["stored_bytes"]
                    else ""
                )
            )
    finally:
        for s in fresh.values():
            s.stop()
    ctx.result["growth"] = res
    ctx.result["growth_config"] = {
        "keys": a.growth_keys,
        "clients": a.growth_clients,
        "capped_variant_cap_bytes": cap,
    }


# ------------------------------------------------------------------------------ down
def window(samples) -> dict:
    statuses: dict[str, int] = {}
    for _, _, outcome, _ in samples:
        statuses[str(outcome)] = statuses.get(str(outcome), 0) + 1
    lat = sorted(x[3] for x in samples)
    return {
        "requests": len(samples),
        "statuses": statuses,
        "p50_ms": rnd(pct(lat, 0.5) * 1000 if lat else None, 2),
        "p99_ms": rnd(pct(lat, 0.99) * 1000 if lat else None, 2),
        "max_ms": rnd(lat[-1] * 1000 if lat else None, 1),
    }


def down(ctx: Context) -> None:
    a = ctx.args
    ts = [t for t in ctx.of_phase("down", "cache") if t.backend == "redis"]
    log(
        f"down: {len(ts)} redis targets; redis :{procs.VICTIM_REDIS_PORT} stopped for "
        f"{a.down_seconds}s under 4 clients, then restarted for {a.down_seconds}s"
    )
    res = {}
    for i, t in enumerate(ts):
        victim = procs.Redis(procs.VICTIM_REDIS_PORT, f"redis-victim-{i}")
        s = None
        try:
            s = procs.AppServer(t, tag="down", redis_port=procs.VICTIM_REDIS_PORT).wait_ready()
            httpc.fetch(s.port, "/items?page=1")
            before = s.runs()
            httpc.fetch(s.port, "/items?page=1")
            warm_hit = s.runs() == before
            log0 = s.child.log_size()
            victim.stop()
            base = random.randrange(30_000_000, 40_000_000)

            def during_path(client: int, seq: int) -> str:
                # clients 0 and 1 ask for the warm key, 2 and 3 for keys never seen
                return (
                    "/items?page=1"
                    if client < 2
                    else f"/items?page={base + client * 1_000_000 + seq}"
                )

            out = httpc.closed_loop(s.port, during_path, 4, a.down_seconds, a.down_timeout)
            log_bytes = s.child.log_size() - log0
            victim = procs.Redis(procs.VICTIM_REDIS_PORT, f"redis-victim-{i}-again")
            base2 = base + 5_000_000

            def after_path(client: int, seq: int) -> str:
                return (
                    "/items?page=1"
                    if client < 2
                    else f"/items?page={base2 + client * 1000 + seq % 50}"
                )

            back = httpc.closed_loop(s.port, after_path, 4, a.down_seconds, a.down_timeout)
            last_second = [x for x in back if x[0] >= a.down_seconds - 1]
            page = base + 9_000_000
            before = s.runs()
            r1 = httpc.fetch(s.port, f"/items?page={page}")
            r2 = httpc.fetch(s.port, f"/items?page={page}")
            cached_again = s.runs() - before == 1 and r1.status == r2.status == 200
            whole = window(out)
            res[t.name] = {
                "statuses": whole["statuses"],
                "p50_ms": whole["p50_ms"],
                "p99_ms": whole["p99_ms"],
                "log_bytes": log_bytes,
                "recovered": bool(last_second)
                and s.child.alive()
                and all(x[2] == 200 for x in last_second),
                "cached_after_recovery": cached_again,
                "max_ms": whole["max_ms"],
                "requests": whole["requests"],
                "warm_key": window([x for x in out if x[1] < 2]),
                "cold_keys": window([x for x in out if x[1] >= 2]),
                "after_restart": window(back),
                "warm_hit_before": warm_hit,
                "log_bytes_per_minute": int(log_bytes * 60 / a.down_seconds),
            }
            log(
                f"  {t.name:34s} down: {whole['statuses']} p50 {whole['p50_ms']} ms "
                f"p99 {whole['p99_ms']} ms, log {log_bytes} B | after: "
                f"{res[t.name]['after_restart']['statuses']} cached again: {cached_again}"
            )
        finally:
            if s is not None:
                s.stop()
            victim.stop()
    ctx.result["down"] = res
    ctx.result["down_config"] = {
        "seconds": a.down_seconds,
        "clients": 4,
        "request_timeout_s": a.down_timeout,
        "redis_port": procs.VICTIM_REDIS_PORT,
        "stop": "SIGTERM, then a new redis-server on the same port (empty)",
    }


# ------------------------------------------------------------------------------ checks
USERS = ("alice", "bob", "carol", "dave", "erin")
IDENTITY_HEADERS = (("Authorization", "Bearer {}"), ("X-Api-Key", "key-{}"))


def identity_check(s, endpoint: str, counter: str, header: str, fmt: str) -> dict:
    """alice, then four other users, on one URL; then the last user again."""
    v = random.randrange(1, 10**9)
    path = f"{endpoint}?v={v}"
    before = s.runs(counter)
    seen = []
    for u in USERS:
        r = httpc.fetch(s.port, path, {header: fmt.format(u)})
        got = (r.json() or {}).get("user", "") if r.status == 200 else ""
        seen.append(
            {
                "user": u,
                "got": got,
                "status": r.status,
                "x_cache": r.header("x-cache"),
                "cache_control": r.header("cache-control"),
            }
        )
    mid = s.runs(counter)
    again = httpc.fetch(s.port, path, {header: fmt.format(USERS[-1])})
    repeat_ran = s.runs(counter) - mid
    leaks = [x for x in seen if x["status"] == 200 and x["user"] not in x["got"]]
    if leaks:
        verdict = f"LEAK {len(leaks)}/{len(USERS) - 1}"
    elif repeat_ran == 0:
        verdict = "keyed per user"
    else:
        verdict = "not cached"
    return {
        "verdict": verdict,
        "leaks": len(leaks),
        "handler_runs": mid - before,
        "repeat_ran_handler": repeat_ran,
        "repeat_status": again.status,
        "responses": seen,
    }


def run_checks(s) -> tuple[dict, dict]:
    detail: dict = {}
    page = random.randrange(50_000_000, 60_000_000)
    path = f"/items?page={page}"
    before = s.runs()
    first = httpc.fetch(s.port, path)
    second = httpc.fetch(s.port, path)
    detail["second_request_hit"] = s.runs() - before == 1
    detail["hit_body_same"] = first.body == second.body
    keep = ("etag", "cache-control", "age", "vary", "x-cache", "cache-status", "last-modified")
    detail["hit_headers"] = {k: v for k, v in second.headers if k in keep or k.startswith("x-")}
    etag = second.header("etag") or first.header("etag")
    detail["etag"] = etag
    etag_ok = False
    if etag:
        before = s.runs()
        cond = httpc.fetch(s.port, path, {"If-None-Match": etag})
        detail["if_none_match"] = {
            "status": cond.status,
            "body_bytes": len(cond.body),
            "handler_ran": s.runs() - before,
        }
        etag_ok = cond.status == 304 and not cond.body
    for directive in ("no-cache", "no-store", "max-age=0"):
        before = s.runs()
        r = httpc.fetch(s.port, path, {"Cache-Control": directive})
        detail[f"request_{directive}"] = {"status": r.status, "handler_ran": s.runs() - before}
    # Set-Cookie: alice gets a session id; four other users (each with a cookie of their own)
    # and two anonymous ones (no cookie: nothing makes them bypass a cache) ask for the same
    # URL: none may see alice's sid, in the body or in a Set-Cookie.
    v = random.randrange(1, 10**9)
    before = s.runs("cookie")
    first = httpc.fetch(s.port, f"/cookie?v={v}")
    sid = (first.json() or {}).get("sid")
    others = [httpc.fetch(s.port, f"/cookie?v={v}", {"Cookie": f"sid=own-{u}"}) for u in USERS[1:]]
    anonymous = [httpc.fetch(s.port, f"/cookie?v={v}") for _ in range(2)]
    got_anon = sum(
        1
        for r in anonymous
        if sid
        and (
            (r.json() or {}).get("sid") == sid
            or any(sid in c for c in r.headers_named("set-cookie"))
        )
    )
    got_body = sum(1 for r in others if sid and (r.json() or {}).get("sid") == sid)
    got_header = sum(
        1 for r in others if sid and any(sid in c for c in r.headers_named("set-cookie"))
    )
    detail["set_cookie"] = {
        "first_status": first.status,
        "first_set_cookie": bool(first.headers_named("set-cookie")),
        "first_cache_control": first.header("cache-control"),
        "others_with_first_sid_in_body": got_body,
        "others_with_first_sid_in_set_cookie": got_header,
        "others_with_a_set_cookie": sum(1 for r in others if r.headers_named("set-cookie")),
        "anonymous_with_first_sid": got_anon,
        "handler_runs": s.runs("cookie") - before,
    }
    leaks = {"/me/dep": 0, "/me/req": 0}
    for endpoint, counter in (("/me/dep", "me_dep"), ("/me/req", "me_req")):
        for header, fmt in IDENTITY_HEADERS:
            c = identity_check(s, endpoint, counter, header, fmt)
            detail[f"{endpoint} {header}"] = c
            leaks[endpoint] += c["leaks"]
    checks = {
        "set_cookie_not_replayed": bool(sid) and got_body == got_header == got_anon == 0,
        "identity_dep_not_leaked": leaks["/me/dep"] == 0,
        "identity_req_not_leaked": leaks["/me/req"] == 0,
        "etag_304": etag_ok,
        "request_no_cache": detail["request_no-cache"]["handler_ran"] == 1,
    }
    return checks, detail


def checks(ctx: Context) -> None:
    libs = ctx.of_phase("checks", "cache")
    chosen: dict[str, Target] = {}  # one backend per library: memory where it has one
    for t in libs:
        if t.lib not in chosen or (t.backend == "memory" and chosen[t.lib].backend != "memory"):
            chosen[t.lib] = t
    ts = list(chosen.values()) + [t for t in ctx.of_phase("checks", "baseline")]
    log(f"checks: {', '.join(t.name for t in ts)}")
    servers = ctx.running(ts)
    res, details = {}, {}
    for t in ts:
        c, d = run_checks(servers[t.name])
        res[t.name], details[t.name] = c, d
        log(
            f"  {t.name:34s} "
            + " ".join(f"{k}={'ok' if v else 'NO'}" for k, v in c.items())
            + f" | /me/req: {d['/me/req Authorization']['verdict']}, "
            f"{d['/me/req X-Api-Key']['verdict']}"
        )
    ctx.result["checks"] = res
    ctx.result["checks_detail"] = details


PHASE_FUNCS = {
    "throughput": throughput,
    "inproc": inproc,
    "stampede": stampede,
    "growth": growth,
    "down": down,
    "checks": checks,
}
