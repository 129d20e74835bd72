"""Render one raw benchmark run (bench/SCHEMA.md) into bench/RESULTS.md and bench/plots/*.png.

    python bench/report.py bench/results/run-<stamp>.json [--out bench/RESULTS.md]
                           [--plots bench/plots]

Only reads the JSON: it never runs anything. Every phase and every target is optional (a quick
run may hold only some); what is absent shows as "–". In RESULTS.md only the text between the
GENERATED markers and the HEADLINE markers is replaced; everything else is kept, and the file is
created with a short header when it does not exist. The three-line headline is also printed.

Ratios are taken from the JSON as the runner computed them (medians of per-round ratios, both
sides measured in the same round); this script does not divide medians by medians. When the
runner left a derived figure out, it is filled in from the same run: µs added per hit as the
difference of the two medians, RSS growth over stored bytes from those two numbers.
"""

# The report is typographic on purpose: en dash for "no figure", × for ratios, µs.
# ruff: noqa: RUF002, RUF003

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent

GEN_BEGIN, GEN_END = "<!-- GENERATED:BEGIN -->", "<!-- GENERATED:END -->"
HEAD_BEGIN, HEAD_END = "<!-- HEADLINE:BEGIN -->", "<!-- HEADLINE:END -->"

RAW, PREBUILT, UNCACHED = "raw-asgi", "fastapi-prebuilt", "fastapi-uncached"
FLOOR = "fastapi-redis-floor"
BASELINE_ORDER = (RAW, PREBUILT, FLOOR, UNCACHED)
BACKEND_ORDER = {"none": 0, "": 0, "memory": 1, "redis": 2, "memcached": 3, "dynamodb": 4}

PLOT_RPS = "throughput_rps.png"
PLOT_US = "inproc_us.png"
PLOT_RSS = "growth_rss.png"

DASH = "–"
RefStyle = Literal["--", ":"]
Ref = tuple[float, str, RefStyle]
MIB = 1024 * 1024

# The order of the known checks in the table; any other check key is appended after these.
CHECK_LABELS = {
    "set_cookie_not_replayed": "Set-Cookie not replayed",
    "identity_dep_not_leaked": "identity (Depends) not leaked",
    "identity_req_not_leaked": "identity (request header) not leaked",
    "etag_304": "ETag → 304",
    "request_no_cache": "request no-cache honoured",
}

HEADER = """# oxicache — side-by-side benchmark

oxicache against FastAPI's own floors (raw ASGI, a route returning a prebuilt `Response`, the
uncached endpoint) and the peer caching libraries, measured in the same rounds and reported as
ratios. `make bench` runs it (`bench/run.py`, raw JSON in `bench/results/`); the tables and plots
below are regenerated from that JSON by `python bench/report.py bench/results/run-<stamp>.json`.
Text outside the GENERATED and HEADLINE markers is hand-written and kept.

"""


# ---------------------------------------------------------------------------------------------
# Reading the JSON defensively: every field may be missing, null or of an unexpected type.


def as_dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def as_list(x: Any) -> list[Any]:
    return x if isinstance(x, list) else []


def num(x: Any) -> float | None:
    """A finite number, or None (bools, strings, NaN and infinities are not numbers here)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def phase(run: Mapping[str, Any], name: str) -> dict[str, dict[str, Any]]:
    """The per-target mapping of a phase, with non-dict entries dropped."""
    return {k: v for k, v in as_dict(run.get(name)).items() if isinstance(v, dict)}


# ---------------------------------------------------------------------------------------------
# Formatting


def f_int(x: Any) -> str:
    v = num(x)
    return DASH if v is None else f"{v:,.0f}"


def f_dec(x: Any, digits: int = 2) -> str:
    v = num(x)
    return DASH if v is None else f"{v:,.{digits}f}"


def f_ratio(x: Any) -> str:
    v = num(x)
    return DASH if v is None else f"{v:.2f}×"


def f_signed(x: Any, digits: int = 1) -> str:
    v = num(x)
    return DASH if v is None else f"{v:+,.{digits}f}"


def f_mib(nbytes: Any) -> str:
    v = num(nbytes)
    return DASH if v is None else f"{v / MIB:,.1f}"


def f_goal_value(x: Any) -> str:
    v = num(x)
    if v is None:
        return DASH
    return f"{v:,.0f}" if v.is_integer() else f"{v:,.2f}"


def f_bool(x: Any) -> str:
    if x is True:
        return "✓"
    if x is False:
        return "✗"
    return DASH


def f_statuses(x: Any) -> str:
    d = as_dict(x)
    if not d:
        return DASH
    items = sorted(d.items(), key=lambda kv: str(kv[0]))
    # Zero counts are noise ("500×0"), unless nothing else is there.
    shown = [(k, v) for k, v in items if num(v) != 0] or items
    return ", ".join(f"{k}×{f_int(v)}" for k, v in shown)


def cell(s: str) -> str:
    """Text safe inside a Markdown table cell."""
    return s.replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Targets


class Target:
    """One target's description, from the run's `targets` list or, failing that, its name."""

    def __init__(self, name: str, meta: Mapping[str, Any] | None = None) -> None:
        meta = meta or {}
        lib, _, backend = name.partition("/")
        self.name = name
        self.lib = str(meta.get("lib") or lib)
        self.backend = str(meta.get("backend") or backend or "none")
        kind = meta.get("kind")
        self.kind = str(kind) if kind else ("cache" if backend else "baseline")
        self.variant = str(meta.get("variant") or "")

    @property
    def ours(self) -> bool:
        return self.lib.startswith("oxicache")

    @property
    def baseline(self) -> bool:
        return self.kind == "baseline"

    def sort_key(self) -> tuple[int, int, str]:
        if self.baseline:
            rank = BASELINE_ORDER.index(self.name) if self.name in BASELINE_ORDER else 3
            return (0, rank, self.name)
        return (1, BACKEND_ORDER.get(self.backend, 9), self.name)


PHASES = ("throughput", "inproc", "stampede", "growth", "down", "checks")


def collect_targets(run: Mapping[str, Any]) -> dict[str, Target]:
    """Every target the run mentions: the declared list first, then any name a phase uses."""
    out: dict[str, Target] = {}
    for t in as_list(run.get("targets")):
        if isinstance(t, dict) and isinstance(t.get("name"), str):
            out[t["name"]] = Target(t["name"], t)
    for p in PHASES:
        for name in phase(run, p):
            out.setdefault(name, Target(name))
    return out


def ordered(
    names: Iterable[str],
    targets: Mapping[str, Target],
    score: Callable[[str], float | None] | None = None,
) -> list[str]:
    """Baselines first (raw, prebuilt, uncached), then caches by backend; within a group by
    score (ascending, missing last) when given, else by name."""

    def key(n: str) -> tuple[int, int, float, str]:
        group, rank, _ = targets.get(n, Target(n)).sort_key()
        v = score(n) if score and group == 1 else None
        return (group, rank, math.inf if v is None else v, n)

    return sorted(names, key=key)


def backend_of(name: str, targets: Mapping[str, Target]) -> str:
    t = targets.get(name, Target(name))
    return DASH if t.baseline and t.backend == "none" else t.backend


def pick_oxicache_memory(targets: Mapping[str, Target]) -> str:
    """The decorator-on-memory target the headline talks about."""
    cands = [t for t in targets.values() if t.ours and t.backend == "memory"]
    prefs: list[Callable[[Target], bool]] = [
        lambda t: t.name == "oxicache/memory",
        lambda t: t.lib == "oxicache" and t.variant in ("", "decorator"),
        lambda t: t.variant in ("", "decorator"),
        lambda t: True,
    ]
    for pref in prefs:
        hits = sorted(t.name for t in cands if pref(t))
        if hits:
            return hits[0]
    return "oxicache/memory"


def best_peer(run: Mapping[str, Any], targets: Mapping[str, Target]) -> tuple[str, float] | None:
    """The peer cache with the highest ratio to prebuilt, on memory when any peer ran there."""
    tp = phase(run, "throughput")
    peers: list[tuple[str, float, bool]] = []
    for name, row in tp.items():
        t = targets.get(name, Target(name))
        r = num(row.get("ratio_prebuilt"))
        if t.baseline or t.ours or r is None:
            continue
        peers.append((name, r, t.backend == "memory"))
    pool = [p for p in peers if p[2]] or peers
    if not pool:
        return None
    name, r, _ = max(pool, key=lambda p: p[1])
    return name, r


# ---------------------------------------------------------------------------------------------
# Headline


def us_added(ip: Mapping[str, Mapping[str, Any]], name: str) -> float | None:
    """µs a hit costs above FastAPI-prebuilt: the runner's figure, else the difference of the
    two medians of the same run (what the runner computes too)."""
    if name not in ip:
        return None
    v = num(ip[name].get("us_added_vs_prebuilt"))
    if v is not None:
        return v
    mine = num(ip[name].get("us_per_call_median"))
    pre = num(ip.get(PREBUILT, {}).get("us_per_call_median"))
    return None if mine is None or pre is None else mine - pre


def headline(run: Mapping[str, Any], targets: Mapping[str, Target]) -> list[str]:
    tp, ip = phase(run, "throughput"), phase(run, "inproc")
    oxi = pick_oxicache_memory(targets)
    t_row, i_row = tp.get(oxi, {}), ip.get(oxi, {})
    pre_rps = tp.get(PREBUILT, {}).get("median_rps")
    pre_us = ip.get(PREBUILT, {}).get("us_per_call_median")

    line1 = (
        f"{oxi} hit: {f_ratio(t_row.get('ratio_prebuilt'))} FastAPI-prebuilt req/s "
        f"({f_int(t_row.get('median_rps'))} vs {f_int(pre_rps)} req/s; target ≥ 0.90×)"
    )
    line2 = (
        f"In process: {f_signed(us_added(ip, oxi))} µs per hit above "
        f"FastAPI-prebuilt ({f_dec(i_row.get('us_per_call_median'), 1)} vs "
        f"{f_dec(pre_us, 1)} µs; target ≤ 8 µs)"
    )
    bp = best_peer(run, targets)
    if bp is None:
        line3 = f"Best peer: {DASH} (no peer cache in the throughput phase of this run)"
    else:
        where = "on memory" if targets.get(bp[0], Target(bp[0])).backend == "memory" else "overall"
        line3 = f"Best peer {where}: {bp[0]} at {f_ratio(bp[1])} FastAPI-prebuilt req/s"
    return [line1, line2, line3]


# ---------------------------------------------------------------------------------------------
# Tables


def goals_section(run: Mapping[str, Any]) -> str:
    goals = [g for g in as_list(run.get("goals")) if isinstance(g, dict)]
    if not goals:
        return "_No goal was judged by this run._"
    rows = []
    for g in goals:
        v = g.get("value")
        value = f_goal_value(v) if num(v) is not None else (DASH if v is None else str(v))
        rows.append(
            [str(g.get("name", DASH)), value, str(g.get("target", DASH)), f_bool(g.get("met"))]
        )
    met = sum(1 for g in goals if g.get("met") is True)
    judged = sum(1 for g in goals if isinstance(g.get("met"), bool))
    summary = f"{met} of {judged} judged goals met in this run"
    if judged < len(goals):
        summary += f"; {len(goals) - judged} not judged (–)"
    summary += "."
    return table(["goal", "value", "target", "met"], rows) + "\n\n" + summary


def throughput_section(run: Mapping[str, Any], targets: Mapping[str, Target]) -> str:
    tp = phase(run, "throughput")
    if not tp:
        return "_Not measured in this run._"
    rows = []
    for name in ordered(tp, targets, lambda n: -(num(tp[n].get("median_rps")) or 0.0)):
        r = tp[name]
        rounds = [x for x in as_list(r.get("rounds")) if isinstance(x, dict)]
        rps = [v for v in (num(x.get("rps")) for x in rounds) if v is not None]
        spread = f"{f_int(min(rps))}–{f_int(max(rps))}" if rps else DASH
        bad = [num(x.get("errors")) or 0.0 for x in rounds] + [
            num(x.get("non2xx")) or 0.0 for x in rounds
        ]
        ratio_pre = r.get("ratio_prebuilt")
        if num(ratio_pre) is None and name == PREBUILT:
            ratio_pre = 1.0
        rows.append(
            [
                f"**{name}**" if targets.get(name, Target(name)).ours else name,
                backend_of(name, targets),
                f_int(r.get("median_rps")),
                spread,
                f_dec(r.get("median_p50_ms")),
                f_dec(r.get("median_p99_ms")),
                f_ratio(ratio_pre),
                f_ratio(r.get("ratio_raw")),
                f_ratio(r.get("ratio_uncached")),
                f_ratio(r.get("p99_ratio_prebuilt")),
                f_int(sum(bad)) if rounds else DASH,
            ]
        )
    header = [
        "target",
        "backend",
        "req/s (median)",
        "min–max",
        "p50 ms",
        "p99 ms",
        "×prebuilt",
        "×raw ASGI",
        "×uncached",
        "p99 ×prebuilt",
        "errors + non-2xx",
    ]
    return table(header, rows)


def inproc_section(run: Mapping[str, Any], targets: Mapping[str, Target]) -> str:
    ip = phase(run, "inproc")
    if not ip:
        return "_Not measured in this run._"
    rows = []
    for name in ordered(ip, targets, lambda n: num(ip[n].get("us_per_call_median"))):
        r = ip[name]
        batches = [v for v in (num(b) for b in as_list(r.get("batches_us"))) if v is not None]
        added = us_added(ip, name)
        rows.append(
            [
                f"**{name}**" if targets.get(name, Target(name)).ours else name,
                backend_of(name, targets),
                f_dec(r.get("us_per_call_median"), 1),
                f_signed(added),
                str(len(batches)) if batches else DASH,
                f"{min(batches):,.1f}–{max(batches):,.1f}" if batches else DASH,
            ]
        )
    header = [
        "target",
        "backend",
        "µs per hit (median)",
        "µs added vs prebuilt",
        "batches",
        "min–max µs",
    ]
    return table(header, rows)


def is_middleware(t: Target) -> bool:
    """oxicache's CacheMiddleware targets (``oxicache[middleware]``, ``oxicache[mw+fastapi]``)."""
    return t.ours and ("[middleware]" in t.lib or "[mw" in t.lib)


def middleware_section(run: Mapping[str, Any], targets: Mapping[str, Target]) -> str:
    """CacheMiddleware's hit next to raw ASGI (the app it wraps answers with the same bytes),
    and the peer caches' best ratio to raw ASGI in the same run."""
    tp, ip = phase(run, "throughput"), phase(run, "inproc")
    mws = [n for n in targets if is_middleware(targets[n]) and (n in tp or n in ip)]
    if not mws:
        return "_Not measured in this run._"
    peers = [
        (n, num(r.get("ratio_raw")))
        for n, r in tp.items()
        if not targets.get(n, Target(n)).baseline and not targets.get(n, Target(n)).ours
    ]
    ranked = sorted((p for p in peers if p[1] is not None), key=lambda p: -(p[1] or 0.0))
    names = [RAW, *sorted(mws), *(n for n, _ in ranked[:1])]
    rows = []
    for name in names:
        r, i = tp.get(name, {}), ip.get(name, {})
        ratio_raw = 1.0 if name == RAW and r else r.get("ratio_raw")
        if targets.get(name, Target(name)).ours:
            label = f"**{name}**"
        elif ranked and name == ranked[0][0]:
            label = f"{name} (best peer)"
        else:
            label = name
        rows.append(
            [
                label,
                f_int(r.get("median_rps")),
                f_ratio(ratio_raw),
                f_ratio(r.get("ratio_prebuilt")),
                f_dec(r.get("median_p99_ms")),
                f_dec(i.get("us_per_call_median"), 1),
                f_signed(i.get("us_added_vs_raw")),
            ]
        )
    header = [
        "target",
        "req/s (median)",
        "×raw ASGI",
        "×prebuilt",
        "p99 ms",
        "µs per hit in process",
        "µs added vs raw ASGI",
    ]
    return table(header, rows)


def stampede_section(run: Mapping[str, Any], targets: Mapping[str, Target]) -> str:
    st = phase(run, "stampede")
    if not st:
        return "_Not measured in this run._"
    rows = []
    for name in ordered(st, targets):
        r = st[name]
        trials = [x for x in as_list(r.get("trials")) if isinstance(x, dict)]
        runs = ", ".join(f_int(x.get("handler_runs")) for x in trials) or DASH
        statuses: dict[str, float] = {}
        for x in trials:
            for k, v in as_dict(x.get("statuses")).items():
                statuses[str(k)] = statuses.get(str(k), 0.0) + (num(v) or 0.0)
        rows.append(
            [
                f"**{name}**" if targets.get(name, Target(name)).ours else name,
                backend_of(name, targets),
                f_int(r.get("n")),
                f_dec(r.get("median_handler_runs"), 1).removesuffix(".0"),
                runs,
                f_statuses(statuses),
            ]
        )
    header = [
        "target",
        "backend",
        "simultaneous requests",
        "handler runs (median)",
        "handler runs per trial",
        "statuses (all trials)",
    ]
    return table(header, rows)


def growth_ratio(r: Mapping[str, Any]) -> float | None:
    g = num(r.get("growth_over_stored"))
    if g is not None:
        return g
    growth, stored = num(r.get("rss_growth_mib")), num(r.get("stored_bytes"))
    if growth is None or not stored:
        return None
    return growth * MIB / stored


def keys_sent(r: Mapping[str, Any]) -> float | None:
    pts = [p for p in as_list(r.get("points")) if isinstance(p, list) and len(p) >= 2]
    xs = [v for v in (num(p[0]) for p in pts) if v is not None]
    return max(xs) if xs else None


def growth_section(run: Mapping[str, Any], targets: Mapping[str, Target]) -> str:
    gr = phase(run, "growth")
    if not gr:
        return "_Not measured in this run._"
    rows = []
    for name in ordered(gr, targets):
        r = gr[name]
        rows.append(
            [
                f"**{name}**" if targets.get(name, Target(name)).ours else name,
                backend_of(name, targets),
                f_int(keys_sent(r)),
                f_signed(r.get("rss_growth_mib")),
                f_int(r.get("entries")),
                f_mib(r.get("stored_bytes")),
                f_ratio(growth_ratio(r)),
                f_mib(r.get("cap_bytes")),
            ]
        )
    header = [
        "target",
        "backend",
        "distinct keys sent",
        "RSS growth MiB",
        "entries",
        "stored MiB",
        "growth / stored",
        "cap MiB",
    ]
    return table(header, rows)


def down_section(run: Mapping[str, Any], targets: Mapping[str, Target]) -> str:
    dn = phase(run, "down")
    if not dn:
        return "_Not measured in this run._"
    rows = []
    for name in ordered(dn, targets):
        r = dn[name]
        rows.append(
            [
                f"**{name}**" if targets.get(name, Target(name)).ours else name,
                backend_of(name, targets),
                f_statuses(r.get("statuses")),
                f_dec(r.get("p50_ms")),
                f_dec(r.get("p99_ms")),
                f_int(r.get("log_bytes")),
                f_bool(r.get("recovered")),
                f_bool(r.get("cached_after_recovery")),
            ]
        )
    header = [
        "target",
        "backend",
        "statuses during the outage",
        "p50 ms",
        "p99 ms",
        "log bytes",
        "recovered",
        "caching again",
    ]
    return table(header, rows)


def checks_section(run: Mapping[str, Any], targets: Mapping[str, Target]) -> str:
    ck = phase(run, "checks")
    if not ck:
        return "_Not measured in this run._"
    keys = [k for k in CHECK_LABELS if any(k in r for r in ck.values())]
    keys += sorted({k for r in ck.values() for k in r if k not in CHECK_LABELS})
    rows = []
    for name in ordered(ck, targets):
        r = ck[name]
        passed = sum(1 for k in keys if r.get(k) is True)
        judged = sum(1 for k in keys if isinstance(r.get(k), bool))
        rows.append(
            [
                f"**{name}**" if targets.get(name, Target(name)).ours else name,
                backend_of(name, targets),
                *(f_bool(r.get(k)) for k in keys),
                f"{passed}/{judged}" if judged else DASH,
            ]
        )
    header = ["target", "backend", *(CHECK_LABELS.get(k, k) for k in keys), "passed"]
    return table(header, rows)


KEY_PACKAGES = {
    "oxicache",
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "uvloop",
    "httptools",
    "redis",
    "fastapi-cache2",
    "fastapi-cachex",
    "fastapi-redis-cache-reborn",
    "fastapi-cachemate",
    "cashews",
}


def pkg_name(spec: str) -> str:
    for sep in ("==", " @ ", ">=", "<=", "~=", "==="):
        if sep in spec:
            spec = spec.split(sep, 1)[0]
    return spec.strip().lower().replace("_", "-")


def run_section(run: Mapping[str, Any], source: str) -> str:
    args, env = as_dict(run.get("args")), as_dict(run.get("env"))
    out = []
    if args:
        out.append("Arguments: " + ", ".join(f"`{k}={v}`" for k, v in args.items()) + ".")
    if env:
        out.append("")
        out.append("Environment: " + "; ".join(f"{k}: {v}" for k, v in env.items()) + ".")
    versions = {k: v for k, v in as_dict(run.get("versions")).items() if isinstance(v, list)}
    if versions:
        rows = []
        for venv, specs in sorted(versions.items()):
            sel = [str(s) for s in specs if pkg_name(str(s)) in KEY_PACKAGES]
            rows.append([venv, ", ".join(sel) or DASH, str(len(specs))])
        out += ["", table(["venv", "key packages", "packages in total"], rows)]
    if not out:
        out.append(f"_No arguments, environment or versions recorded in `{source}`._")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Plots


def plot_colors(t: Target) -> str:
    if t.ours:
        return "#d95f02"
    if t.baseline:
        return "#9e9e9e"
    return "#4c78a8"


def _empty_plot(path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.2))
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.45, "not measured in this run", ha="center", va="center", color="#666666")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _legend_patches() -> list[Any]:
    from matplotlib.patches import Patch

    return [
        Patch(color="#d95f02", label="oxicache"),
        Patch(color="#4c78a8", label="peer library"),
        Patch(color="#9e9e9e", label="baseline"),
    ]


def _barh(
    path: Path,
    title: str,
    xlabel: str,
    items: list[tuple[str, float, str]],
    targets: Mapping[str, Target],
    refs: list[Ref],
    log: bool = False,
) -> None:
    """Horizontal bars, first item at the top, each annotated with its label."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    n = len(items)
    fig_h = 1.2 + 0.42 * n
    fig, ax = plt.subplots(figsize=(9, fig_h))
    ys = list(range(n))[::-1]
    vals = [v for _, v, _ in items]
    colors = [plot_colors(targets.get(name, Target(name))) for name, _, _ in items]
    ax.barh(ys, vals, color=colors, height=0.65, zorder=2)
    ax.set_yticks(ys, [name for name, _, _ in items])
    if log:
        ax.set_xscale("log")
    top = max(vals)
    handles = _legend_patches()
    for x, label, style in refs:
        ax.axvline(x, color="#333333", linestyle=style, linewidth=0.9, zorder=1)
        handles.append(Line2D([], [], color="#333333", linestyle=style, linewidth=0.9, label=label))
    for y, (_, v, label) in zip(ys, items, strict=True):
        ax.text(
            v * 1.04 if log else v + top * 0.012,
            y,
            label,
            va="center",
            fontsize=8.5,
            zorder=3,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0, "alpha": 0.85},
        )
    if log:
        ax.set_xlim(min(vals) / 1.5, top * 8)
    else:
        ax.set_xlim(0, top * 1.35)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left")
    ax.grid(axis="x", alpha=0.25, zorder=0)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(
        handles=handles,
        loc="upper center",
        # Below the x label: about 0.5 inch under the axes (default axes height 0.77 × figure).
        bbox_to_anchor=(0.5, -0.5 / (0.77 * fig_h)),
        ncol=len(handles),
        fontsize=8,
        frameon=False,
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_throughput(run: Mapping[str, Any], targets: Mapping[str, Target], path: Path) -> None:
    tp = phase(run, "throughput")
    items = []
    for name, r in tp.items():
        rps = num(r.get("median_rps"))
        if rps is None:
            continue
        ratio = num(r.get("ratio_prebuilt"))
        if ratio is None and name == PREBUILT:
            ratio = 1.0
        label = f"{rps:,.0f}  ({f_ratio(ratio)} prebuilt)" if ratio is not None else f"{rps:,.0f}"
        items.append((name, rps, label))
    title = "Cache-hit throughput (median req/s; ratio to FastAPI-prebuilt, same rounds)"
    if not items:
        _empty_plot(path, title)
        return
    items.sort(key=lambda it: -it[1])
    refs: list[Ref] = []
    pre = num(tp.get(PREBUILT, {}).get("median_rps"))
    if pre is not None:
        refs.append((pre, "FastAPI-prebuilt", "--"))
        refs.append((0.9 * pre, "0.90× prebuilt (target)", ":"))
    _barh(path, title, "requests per second (higher is better)", items, targets, refs)


def plot_inproc(run: Mapping[str, Any], targets: Mapping[str, Target], path: Path) -> None:
    ip = phase(run, "inproc")
    items = []
    for name, r in ip.items():
        us = num(r.get("us_per_call_median"))
        if us is None or us <= 0:
            continue
        added = us_added(ip, name)
        label = f"{us:,.1f} µs" + (f"  ({added:+,.1f} vs prebuilt)" if added is not None else "")
        items.append((name, us, label))
    title = "In-process cost of one hit (µs, ASGI app called directly)"
    if not items:
        _empty_plot(path, title)
        return
    items.sort(key=lambda it: it[1])
    pre = num(ip.get(PREBUILT, {}).get("us_per_call_median"))
    # Linear unless a row (an uncached handler's sleep, a remote round trip) would squash the rest.
    vals = sorted(v for _, v, _ in items)
    log = vals[-1] / (pre or statistics.median(vals)) > 20
    refs: list[Ref] = []
    if pre is not None:
        refs.append((pre, "FastAPI-prebuilt", "--"))
        refs.append((pre + 8, "prebuilt + 8 µs (target)", ":"))
    xlabel = "µs per hit (lower is better" + (", log scale)" if log else ")")
    _barh(path, title, xlabel, items, targets, refs, log=log)


def plot_growth(run: Mapping[str, Any], targets: Mapping[str, Target], path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    gr = phase(run, "growth")
    series = []
    for name in ordered(gr, targets):
        pts = []
        for p in as_list(gr[name].get("points")):
            if isinstance(p, list) and len(p) >= 2:
                x, y = num(p[0]), num(p[1])
                if x is not None and y is not None:
                    pts.append((x, y))
        if pts:
            series.append((name, sorted(pts)))
    title = "Memory: RSS of the server process against distinct keys sent"
    if not series:
        _empty_plot(path, title)
        return
    fig, ax = plt.subplots(figsize=(9, 5))
    ours_colors = ["#d95f02", "#8c2d04", "#fd8d3c", "#feb24c"]
    peer_colors = ["#4c78a8", "#54a24b", "#b279a2", "#72b7b2", "#e45756", "#9d755d", "#bab0ac"]
    styles = ["-", "--", "-.", ":"]
    n_ours = n_peer = 0
    for name, pts in series:
        t = targets.get(name, Target(name))
        growth = num(gr[name].get("rss_growth_mib"))
        if growth is None:
            growth = pts[-1][1] - pts[0][1]
        if t.ours:
            color, style = ours_colors[n_ours % len(ours_colors)], "-"
            n_ours += 1
        else:
            color = peer_colors[n_peer % len(peer_colors)]
            style = styles[(n_peer // len(peer_colors) + (1 if t.baseline else 0)) % len(styles)]
            n_peer += 1
        ax.plot(
            [x for x, _ in pts],
            [y for _, y in pts],
            marker="o",
            markersize=4,
            linewidth=2.4 if t.ours else 1.5,
            linestyle=style,
            color=color,
            label=f"{name}  ({growth:+,.0f} MiB)",
            zorder=3 if t.ours else 2,
        )
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.set_xlabel("distinct keys sent")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title(title, loc="left")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.25)
    ax.spines[["top", "right"]].set_visible(False)
    if len(series) <= 6:
        ax.legend(fontsize=8.5, frameon=False, loc="upper left")
    else:
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def make_plots(run: Mapping[str, Any], targets: Mapping[str, Target], plots: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    plots.mkdir(parents=True, exist_ok=True)
    makers: list[tuple[str, Callable[[Mapping[str, Any], Mapping[str, Target], Path], None]]] = [
        (PLOT_RPS, plot_throughput),
        (PLOT_US, plot_inproc),
        (PLOT_RSS, plot_growth),
    ]
    out = []
    for fname, fn in makers:
        fn(run, targets, plots / fname)
        out.append(plots / fname)
    return out


# ---------------------------------------------------------------------------------------------
# RESULTS.md


def rel_link(target: Path, md: Path) -> str:
    return Path(os.path.relpath(target.resolve(), md.resolve().parent)).as_posix()


def display_path(p: Path) -> str:
    try:
        return p.resolve().relative_to(HERE.parent).as_posix()
    except ValueError:
        return p.as_posix()


def render(run: Mapping[str, Any], source: str, md: Path, plots: Path) -> str:
    targets = collect_targets(run)
    args = as_dict(run.get("args"))
    rounds, dur, conns = args.get("rounds"), args.get("duration"), args.get("connections")
    quick = " (quick run)" if run.get("quick") is True else ""
    if args.get("gc") == "tuned":
        quick += (
            " with `--gc tuned` (every server: `gc.freeze()` after startup, young-generation"
            " threshold 10,000; bench/apps/gc_tuned.py)"
        )
    img = {f: rel_link(plots / f, md) for f in (PLOT_RPS, PLOT_US, PLOT_RSS)}
    elapsed = num(run.get("elapsed_s"))
    parts = [
        GEN_BEGIN,
        "",
        f"_Generated by `bench/report.py` from `{source}`: run started "
        f"{run.get('started', DASH)}{quick}, "
        f"{f_dec(elapsed, 0) + ' s' if elapsed is not None else DASH}. Do not edit between "
        "the GENERATED markers._",
        "",
        "### Goals",
        "",
        "The project's performance targets that this run can judge, as the runner judged them.",
        "",
        goals_section(run),
        "",
        "### Cache-hit throughput and latency",
        "",
        f"wrk, {f_int(conns)} connections, {f_int(dur)} s per target and round, "
        f"{f_int(rounds)} interleaved rounds, `GET /items?page=1` (always a hit). Values are "
        "medians over rounds; ratios are medians of per-round ratios (both sides measured in "
        "the same round). Uncached = the same endpoint without a cache.",
        "",
        throughput_section(run, targets),
        "",
        f"![req/s per target, ratio to FastAPI-prebuilt]({img[PLOT_RPS]})",
        "",
        "### In-process cost of one hit",
        "",
        "The ASGI app called directly on one event loop, no sockets; median over batches. "
        "'Added' is the target's cost minus FastAPI-prebuilt's, from the same run.",
        "",
        inproc_section(run, targets),
        "",
        f"![µs per hit per target]({img[PLOT_US]})",
        "",
        "### CacheMiddleware hit against raw ASGI",
        "",
        "`oxicache[middleware]` is the raw ASGI app (same bytes) wrapped in `CacheMiddleware`, "
        "its `/items` sending `Cache-Control: max-age`; `oxicache[mw+fastapi]` is the decorator "
        "app with `app.add_middleware(CacheMiddleware)`. Ratios as above (same rounds); µs added "
        "vs raw ASGI is measured in the same process, alternating batches. The last row is the "
        "peer cache with the highest ratio to raw ASGI. Target: ≥ 0.60× raw ASGI.",
        "",
        middleware_section(run, targets),
        "",
        "### Cold-key stampede",
        "",
        f"{f_int(args.get('stampede_n'))} simultaneous requests on a key never seen before; "
        "handler runs as counted by the app itself (1 = single-flight).",
        "",
        stampede_section(run, targets),
        "",
        "### Memory growth over distinct keys",
        "",
        f"`GET /items?page=<k>` for {f_int(args.get('growth_keys'))} distinct k; RSS of the "
        "server process. Stored bytes and entries as the cache reports them (– when it cannot); "
        "growth / stored ≤ 1.2× is the target.",
        "",
        growth_section(run, targets),
        "",
        f"![RSS against distinct keys sent]({img[PLOT_RSS]})",
        "",
        "### Backend stopped under load",
        "",
        f"The backend server is stopped under load for {f_int(args.get('down_seconds'))} s, then "
        "started again; statuses and latency seen by the clients during the outage, bytes "
        "the app logged, and whether it answered and cached again afterwards.",
        "",
        down_section(run, targets),
        "",
        "### HTTP safety checks",
        "",
        "✓ = the correct behaviour was observed, ✗ = it was not, – = not checked.",
        "",
        checks_section(run, targets),
        "",
        "### Run",
        "",
        run_section(run, source),
        "",
        GEN_END,
    ]
    return "\n".join(parts)


def render_headline(lines: list[str]) -> str:
    return "\n".join([HEAD_BEGIN, *(f"- {line}" for line in lines), HEAD_END])


def splice(text: str, begin: str, end: str, block: str) -> str | None:
    """Replace begin…end (inclusive) with block; None when the markers are not both there."""
    i = text.find(begin)
    j = text.find(end, i + len(begin)) if i >= 0 else -1
    if i < 0 or j < 0:
        return None
    return text[:i] + block + text[j + len(end) :]


def update_markdown(md: Path, head: str, gen: str) -> None:
    text = md.read_text(encoding="utf-8") if md.exists() else HEADER
    new = splice(text, GEN_BEGIN, GEN_END, gen)
    text = new if new is not None else text.rstrip("\n") + "\n\n" + gen + "\n"
    new = splice(text, HEAD_BEGIN, HEAD_END, head)
    if new is None:
        # At the top: right under the title when the file starts with one.
        first, _, rest = text.partition("\n")
        if first.startswith("# "):
            new = first + "\n\n" + head + "\n\n" + rest.lstrip("\n")
        else:
            new = head + "\n\n" + text
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(new, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("run", type=Path, help="raw run JSON (bench/results/run-<stamp>.json)")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="Markdown report")
    ap.add_argument("--plots", type=Path, default=HERE / "plots", help="directory for PNGs")
    a = ap.parse_args(argv)

    try:
        run = json.loads(a.run.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"report.py: cannot read {a.run}: {e}", file=sys.stderr)
        return 2
    if not isinstance(run, dict):
        print(f"report.py: {a.run} is not a JSON object", file=sys.stderr)
        return 2

    targets = collect_targets(run)
    lines = headline(run, targets)
    make_plots(run, targets, a.plots)
    update_markdown(
        a.out,
        render_headline(lines),
        render(run, display_path(a.run), a.out, a.plots),
    )
    print("\n".join(lines))
    print(f"wrote {display_path(a.out)} and 3 plots in {display_path(a.plots)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
