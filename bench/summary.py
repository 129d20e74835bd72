"""Render the measured figures of README.md and docs/ from the committed results.

    python bench/summary.py            # rewrite every generated block in place
    python bench/summary.py --check    # exit 1 and name the blocks that differ

bench/published.json names the committed files the user pages publish: the main side-by-side
run, the remote-backend runs (CPython's collector as shipped, and tuned), the run that counted
the collector's work, and the conformance record (bench/conformance.py). A page asks for a
figure with a block between two markers:

    <!-- results:begin overview -->
    (generated: never edit by hand)
    <!-- results:end -->

and this script replaces what lies between them with the named rendering. Text outside the
markers is left alone; tests/python/test_bench_report.py fails when a block is out of date, and
when a measured figure (×, µs, req/s, ms, "N fail") appears outside a block.

The lab details (run stamps, machine conditions, commit ids) stay in bench/RESULTS.md, which
bench/report.py writes from the main run; the user pages carry ratios and what was measured.
"""

# Typographic on purpose: × for ratios, µs, en dash for "no figure".
# ruff: noqa: RUF002, RUF003

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PUBLISHED = HERE / "published.json"

BLOCK = re.compile(
    r"(?P<begin><!-- results:begin (?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(?P<end><!-- results:end -->)",
    re.DOTALL,
)

RAW, PREBUILT, FLOOR = "raw-asgi", "fastapi-prebuilt", "fastapi-redis-floor"
OXI, OXI_REDIS = "oxicache/memory", "oxicache/redis"
OXI_MW, OXI_TWO_TIER = "oxicache[middleware]/memory", "oxicache[two-tier]/redis"
DASH = "–"


def pages() -> list[Path]:
    """Every page that may hold generated blocks."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), HERE / "RESULTS.md"]


# ---------------------------------------------------------------------------------------------
# Sources


@dataclass(frozen=True)
class Sources:
    main: dict[str, Any]
    remote_shipped: dict[str, Any]
    remote_tuned: dict[str, Any]
    gc_counts: dict[str, Any]
    conformance: dict[str, Any]
    left_out: dict[str, dict[str, str]]
    shared: dict[str, Any]

    @classmethod
    def load(cls, published: Path = PUBLISHED) -> Sources:
        spec = json.loads(published.read_text(encoding="utf-8"))
        base = published.parent

        def read(key: str) -> dict[str, Any]:
            data: dict[str, Any] = json.loads((base / spec[key]).read_text(encoding="utf-8"))
            return data

        return cls(
            main=read("main"),
            remote_shipped=read("remote_shipped"),
            remote_tuned=read("remote_gc_tuned"),
            gc_counts=read("gc_counts"),
            conformance=read("conformance"),
            left_out=spec.get("left_out", {}),
            shared=read("shared_backends"),
        )


def row(run: Mapping[str, Any], phase: str, target: str) -> dict[str, Any]:
    got = run.get(phase, {}).get(target)
    if not isinstance(got, dict):
        raise KeyError(f"{phase} has no {target!r} in the run started {run.get('started')}")
    return got


def same_round(run: Mapping[str, Any], a: str, b: str) -> float:
    """Median of a's req/s over b's, round by round (both measured in the same round)."""
    ra, rb = row(run, "throughput", a)["rounds"], row(run, "throughput", b)["rounds"]
    return statistics.median(x["rps"] / y["rps"] for x, y in zip(ra, rb, strict=True))


def is_peer(name: str) -> bool:
    return "/" in name and not name.startswith("oxicache")


def best_peer(run: Mapping[str, Any], key: str, backend: str = "memory") -> str:
    """The peer cache on ``backend`` with the highest ``key`` ratio in the throughput phase."""
    peers = {
        n: r[key]
        for n, r in run["throughput"].items()
        if is_peer(n) and n.endswith("/" + backend) and isinstance(r.get(key), int | float)
    }
    return max(peers, key=lambda n: peers[n])


def library(target: str) -> str:
    """'fastapi-cachex/memory' -> 'fastapi-cachex'; variants keep their label."""
    return target.split("/")[0]


# ---------------------------------------------------------------------------------------------
# Formatting


def ratio(x: float) -> str:
    return f"{x:.2f}×"


def us(x: float) -> str:
    return f"{x:,.1f} µs"


def ms(x: float) -> str:
    return f"{x / 1000:,.1f} s" if x >= 1000 else f"{x:,.1f} ms"


def count(x: float) -> str:
    return f"{x:,.0f}"


def size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,.0f} B"


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def check(x: object) -> str:
    return {True: "✓", False: "✗"}.get(x, DASH)  # type: ignore[call-overload]


def label(target: str) -> str:
    """How a target reads in a user's table."""
    names = {
        RAW: "bare ASGI app",
        PREBUILT: "FastAPI route returning a prebuilt `Response`",
        FLOOR: "FastAPI route doing one bare Redis `GET`",
        "fastapi-uncached": "FastAPI route, uncached",
        OXI: "**oxicache** `@cache`, in-process store",
        OXI_MW: "**oxicache** `CacheMiddleware`",
        "oxicache[mw+fastapi]/memory": "**oxicache** `CacheMiddleware` in front of `@cache`",
        "oxicache[capped]/memory": "**oxicache** `@cache`, store capped lower",
        OXI_REDIS: "**oxicache** `@cache`, Redis",
        "oxicache/memcached": "**oxicache** `@cache`, Memcached",
        OXI_TWO_TIER: "**oxicache** `@cache`, two tiers on Redis (hot key)",
    }
    if target in names:
        return names[target]
    lib, _, backend = target.partition("/")
    return f"{lib}, {backend}" if backend else lib


# ---------------------------------------------------------------------------------------------
# Blocks


def conditions(run: Mapping[str, Any]) -> str:
    a, cfg = run["args"], run.get("throughput_config", {})
    return (
        f"{a['rounds']} rounds of {a['duration']} s per target, `wrk` with "
        f"{cfg.get('connections', a['connections'])} connections, one server process"
    )


def block_overview(s: Sources) -> str:
    m, sh, tu = s.main, s.remote_shipped, s.remote_tuned
    peer = best_peer(m, "ratio_prebuilt")
    mw_peer = best_peer(m, "ratio_raw")
    mw_ratio = row(m, "throughput", OXI_MW)["ratio_raw"]
    down = row(sh, "down", OXI_REDIS)
    answered = down["statuses"].get("200", 0)
    growth = row(m, "growth", OXI)
    stampede = row(m, "stampede", OXI)
    c = s.conformance
    proxies = sorted(p["failed"] for p in c["published"])
    rows = [
        [
            "`@cache` hit (in-process store): req/s against a FastAPI route returning a prebuilt `Response`",
            ratio(row(m, "throughput", OXI)["ratio_prebuilt"]),
        ],
        [
            f"the same hit against the fastest peer library ({library(peer)}, in memory)",
            ratio(same_round(m, OXI, peer)),
        ],
        [
            "CPU time a `@cache` hit adds to that prebuilt route, in process",
            "+" + us(row(m, "inproc", OXI)["us_added_vs_prebuilt"]),
        ],
        [
            f"`CacheMiddleware` hit: req/s against the bare ASGI app (fastest peer: {ratio(row(m, 'throughput', mw_peer)['ratio_raw'])})",
            ratio(mw_ratio),
        ],
        [
            "`@cache` hit on Redis: req/s against the prebuilt route, CPython's collector as shipped / tuned",
            f"{ratio(row(sh, 'throughput', OXI_REDIS)['ratio_prebuilt'])} / {ratio(row(tu, 'throughput', OXI_REDIS)['ratio_prebuilt'])}",
        ],
        [
            f"{stampede['n']} simultaneous requests for a cold key: handler runs",
            count(stampede["median_handler_runs"]),
        ],
        [
            f"{count(growth['keys_sent'])} distinct keys: memory growth over the body bytes stored",
            ratio(growth["growth_over_stored"]),
        ],
        [
            f"Redis stopped for {sh['args']['down_seconds']} s under load: requests answered `200`",
            f"{count(answered)} of {count(down['requests'])}",
        ],
        [
            f"HTTP caching conformance (cache-tests.fyi): required tests failed (reverse proxies: {proxies[0]} to {proxies[-1]})",
            f"{c['oxicache']['failed']} of {c['required_tests']}",
        ],
    ]
    return table(["measured", "result"], rows)


def block_throughput(s: Sources) -> str:
    m = s.main
    tp = m["throughput"]
    order = [RAW, PREBUILT, "fastapi-uncached"]
    ours = [n for n in tp if n.startswith("oxicache") and n.endswith("/memory")]
    peers = sorted(
        (n for n in tp if is_peer(n)),
        key=lambda n: (n.split("/")[1] != "memory", -tp[n]["ratio_prebuilt"]),
    )
    rows = []
    for n in [*order, *sorted(ours, key=lambda n: -tp[n]["ratio_prebuilt"]), *peers]:
        r = tp[n]
        rows.append(
            [
                label(n),
                ratio(r["ratio_prebuilt"]),
                ratio(r["ratio_raw"]),
                ratio(r["p99_ratio_prebuilt"]),
            ]
        )
    return f"{conditions(m)}; every request a hit (`GET /items?page=1`).\n\n" + table(
        ["target", "req/s × prebuilt", "req/s × bare ASGI", "p99 × prebuilt"], rows
    )


def block_inproc(s: Sources) -> str:
    ip = s.main["inproc"]
    names = [RAW, PREBUILT, OXI_MW, "oxicache[mw+fastapi]/memory", OXI]
    peers = sorted((n for n in ip if is_peer(n)), key=lambda n: ip[n]["us_per_call_median"])
    rows = [
        [label(n), us(ip[n]["us_per_call_median"])]
        for n in sorted(names, key=lambda n: ip[n]["us_per_call_median"]) + peers
    ]
    return table(["target", "CPU time per hit (median)"], rows)


def block_ways(s: Sources) -> str:
    ip = s.main["inproc"]
    names = [RAW, OXI_MW, PREBUILT, OXI]
    return table(
        ["answered by", "CPU time per hit, in process"],
        [[label(n), us(ip[n]["us_per_call_median"])] for n in names],
    )


def left_out_note(s: Sources, phase: str) -> str:
    notes = s.left_out.get(phase, {})
    if not notes:
        return ""
    parts = [f"{label(n)}: {why}" for n, why in notes.items()]
    return "\n\nLeft out of this table: " + "; ".join(parts) + "."


def block_stampede(s: Sources) -> str:
    st = s.main["stampede"]
    hide = s.left_out.get("stampede", {})
    names = sorted(
        (n for n in st if n not in hide),
        key=lambda n: (not n.startswith("oxicache"), st[n]["median_handler_runs"], n),
    )
    n = st[OXI]["n"]
    rows = [[label(x), count(st[x]["median_handler_runs"])] for x in names]
    return table(["target", f"handler runs for {n} simultaneous requests"], rows) + left_out_note(
        s, "stampede"
    )


def block_memory(s: Sources) -> str:
    g = s.main["growth"]
    names = [n for n in g if n.startswith("oxicache") and g[n].get("growth_over_stored")]
    rows = [
        [
            label(n),
            count(g[n]["entries"]),
            ratio(g[n]["growth_over_stored"]),
            f"{g[n]['cap_bytes'] / 1024 / 1024:,.0f} MiB",
        ]
        for n in names
    ]
    keys = count(g[OXI]["keys_sent"])
    return f"{keys} distinct keys sent.\n\n" + table(
        ["target", "entries kept", "RSS growth / bytes stored", "store cap"], rows
    )


CHECKS = {
    "set_cookie_not_replayed": "`Set-Cookie` not replayed",
    "identity_dep_not_leaked": "per-user answer (`Depends`) not leaked",
    "identity_req_not_leaked": "per-user answer (request header) not leaked",
    "etag_304": "`ETag` → `304`",
    "request_no_cache": "request `no-cache` honoured",
}


def block_checks(s: Sources) -> str:
    ch = s.main["checks"]
    hide = s.left_out.get("checks", {})
    names = [n for n in ch if "/" in n and n not in hide]
    names.sort(key=lambda n: (not n.startswith("oxicache"), n))
    rows = [[label(n), *(check(ch[n].get(k)) for k in CHECKS)] for n in names]
    return table(["target", *CHECKS.values()], rows) + left_out_note(s, "checks")


def block_remote(s: Sources) -> str:
    sh, tu = s.remote_shipped, s.remote_tuned
    names = [FLOOR, OXI, OXI_REDIS, OXI_TWO_TIER, "oxicache/memcached"]
    peers = sorted(
        (n for n in sh["throughput"] if is_peer(n)),
        key=lambda n: -sh["throughput"][n]["ratio_prebuilt"],
    )
    rows = []
    for n in names + peers:
        a, b = row(sh, "throughput", n), row(tu, "throughput", n)
        rows.append(
            [
                label(n),
                ratio(a["ratio_prebuilt"]),
                ms(a["median_p99_ms"]),
                ratio(b["ratio_prebuilt"]),
                ms(b["median_p99_ms"]),
            ]
        )
    two = (same_round(sh, OXI_TWO_TIER, OXI), same_round(tu, OXI_TWO_TIER, OXI))
    floor = (same_round(sh, OXI_REDIS, FLOOR), same_round(tu, OXI_REDIS, FLOOR))
    return (
        f"{conditions(sh)}; the two runs one after the other on the same machine.\n\n"
        + table(
            [
                "target",
                "req/s × prebuilt, as shipped",
                "p99",
                "req/s × prebuilt, collector tuned",
                "p99",
            ],
            rows,
        )
        + f"\n\nAgainst the bare-`GET` route, oxicache on Redis reaches {ratio(floor[0])} "
        f"(tuned: {ratio(floor[1])}); two tiers reach {ratio(two[0])} of the in-process "
        f"store's req/s (tuned: {ratio(two[1])})."
    )


def block_outage(s: Sources) -> str:
    sh = s.remote_shipped
    dn = sh["down"]
    names = sorted(dn, key=lambda n: (not n.startswith("oxicache"), n))
    rows = []
    for n in names:
        r = dn[n]
        ok = r["statuses"].get("200", 0)
        rows.append(
            [
                label(n),
                f"{count(ok)} of {count(r['requests'])}",
                ms(r["p99_ms"]),
                size(r["log_bytes"]),
            ]
        )
    return (
        f"Redis stopped for {sh['args']['down_seconds']} s while `wrk` kept sending requests "
        "(one key already cached, others new).\n\n"
        + table(["target", "requests answered `200`", "p99", "log written"], rows)
    )


def block_gc(s: Sources) -> str:
    sh, tu, gc = s.remote_shipped, s.remote_tuned, s.gc_counts
    rows = [
        [
            label(n),
            ratio(row(sh, "throughput", n)["ratio_prebuilt"]),
            ratio(row(tu, "throughput", n)["ratio_prebuilt"]),
        ]
        for n in (FLOOR, OXI_REDIS, "cashews/redis", OXI_TWO_TIER)
    ]
    counts = []
    for n in (FLOOR, OXI_REDIS, PREBUILT):
        young, _, full = row(gc, "throughput", n)["gc_collections_per_s"]
        counts.append(f"{label(n)}: {count(young)} young and {full:,.1f} full")
    return (
        table(["req/s × prebuilt, one worker under load", "collector as shipped", "tuned"], rows)
        + "\n\nCollections per second under the same load, collector as shipped: "
        + "; ".join(counts)
        + "."
    )


def block_conformance(s: Sources) -> str:
    c = s.conformance
    ours = c["oxicache"]
    rows = [["**oxicache** `CacheMiddleware`", count(ours["failed"]), count(ours["passed"])]]
    rows += [
        [f"{p['name']} {p['version']}", count(p["failed"]), count(p["passed"])]
        for p in c["published"]
    ]
    ids = ours["failed_ids"]
    why = ""
    if ids and all(i.startswith("age-parse-") for i in ids):
        why = (
            f" All {len(ids)} failures are `age-parse-*` tests, whose expectations in this "
            "release of the suite are the opposite of RFC 9111 §5.1 (a cache must use the "
            "first value of an `Age` list and ignore an invalid one)."
        )
    return (
        f"The `{c['suite']}` suite, {c['required_tests']} required tests, against "
        "`CacheMiddleware`; the reverse proxies' results are those the suite publishes for the "
        f"same tests.{why}\n\n" + table(["cache", "required tests failed", "passed"], rows)
    )


def block_shared(s: Sources) -> str:
    """One cache for every worker: the ways in on the shared backends, against FastAPI's
    prebuilt route and the bare-GET floor, each figure a ratio within one run."""
    run = s.shared
    tp = run["throughput"]
    mw = "oxicache[mw+fastapi]"

    def have(*names: str) -> bool:
        return all(n in tp for n in names)

    rows: list[list[str]] = []

    def add(what: str, target: str, value: str) -> None:
        rows.append([what, target, value])

    if have(f"{mw}/redis"):
        add(
            "`CacheMiddleware` hit on Redis (`app.add_middleware`): req/s × prebuilt",
            "≥ 1.50×",
            ratio(tp[f"{mw}/redis"]["ratio_prebuilt"]),
        )
        add(
            "its p99 × the prebuilt route's p99",
            "≤ 1.50×",
            ratio(tp[f"{mw}/redis"]["p99_ratio_prebuilt"]),
        )
    if have(f"{mw}/memcached"):
        add(
            "`CacheMiddleware` hit on Memcached: req/s × prebuilt",
            "≥ 1.20×",
            ratio(tp[f"{mw}/memcached"]["ratio_prebuilt"]),
        )
    if have(OXI_REDIS, FLOOR):
        add(
            "`@cache` hit on Redis: req/s × one bare Redis `GET` in a FastAPI route",
            "≥ 0.90×",
            ratio(same_round(run, OXI_REDIS, FLOOR)),
        )
    if have("oxicache/memcached"):
        add(
            "`@cache` hit on Memcached: req/s × prebuilt",
            "≥ 0.60×",
            ratio(tp["oxicache/memcached"]["ratio_prebuilt"]),
        )
    if have(OXI_TWO_TIER, OXI):
        add(
            "`@cache`, two tiers on Redis, hot key: req/s × the in-process store",
            "≥ 0.95×",
            ratio(same_round(run, OXI_TWO_TIER, OXI)),
        )
    if have("oxicache[mw+two-tier]/redis", f"{mw}/memory"):
        add(
            "`CacheMiddleware`, two tiers on Redis, hot key: req/s × in-process",
            "≥ 0.95×",
            ratio(same_round(run, "oxicache[mw+two-tier]/redis", f"{mw}/memory")),
        )
    for peer in ("cashews/redis", "fastapi-cachex/redis", "fastapi-cachex/memcached"):
        if have(peer):
            add(f"peer: {label(peer)}: req/s × prebuilt", DASH, ratio(tp[peer]["ratio_prebuilt"]))
    return f"{conditions(run)}; every request a hit.\n\n" + table(
        ["measured", "target", "result"], rows
    )


BLOCKS: dict[str, Callable[[Sources], str]] = {
    "overview": block_overview,
    "throughput": block_throughput,
    "inproc": block_inproc,
    "ways": block_ways,
    "stampede": block_stampede,
    "memory": block_memory,
    "checks": block_checks,
    "remote": block_remote,
    "outage": block_outage,
    "gc": block_gc,
    "conformance": block_conformance,
    "shared": block_shared,
}


# ---------------------------------------------------------------------------------------------
# Pages


def render(text: str, sources: Sources, where: str = "") -> str:
    """``text`` with every generated block re-rendered."""

    def sub(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in BLOCKS:
            raise SystemExit(f"{where}: unknown results block {name!r} (known: {sorted(BLOCKS)})")
        return m["begin"] + BLOCKS[name](sources).rstrip("\n") + "\n" + m["end"]

    return BLOCK.sub(sub, text)


def blocks_of(text: str) -> Iterator[re.Match[str]]:
    return BLOCK.finditer(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--check", action="store_true", help="only report pages that are out of date")
    args = ap.parse_args(argv)
    sources = Sources.load()
    stale = []
    for page in pages():
        if not page.exists():
            continue
        text = page.read_text(encoding="utf-8")
        new = render(text, sources, str(page.relative_to(REPO)))
        if new != text:
            stale.append(str(page.relative_to(REPO)))
            if not args.check:
                page.write_text(new, encoding="utf-8")
    if args.check:
        for p in stale:
            print(f"{p}: generated results differ; run python bench/summary.py", file=sys.stderr)
        return 1 if stale else 0
    print("rewrote " + (", ".join(stale) if stale else "nothing (every block up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
