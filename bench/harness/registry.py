"""What the benchmark runs: dependency sets (venvs), baselines and cache targets.

Every target is one uvicorn process serving one module of bench/apps/ from one venv. A cache
library appears once per backend it supports; a variant (another switch of the same library)
is a separate row so that every name stays ``<lib>/<backend>`` (``<lib>`` for a baseline).

To add a row: write bench/apps/<module>.py with the endpoint contract of bench/apps/common.py,
then add one ``Spec`` below. Nothing else in the runner needs to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# venv name -> pin file under bench/requirements/. Every venv is also installed with
# constraints-common.txt (the same uvicorn/uvloop/httptools everywhere). "oxicache" also gets
# the repository itself, built in release mode (see harness/venvs.py).
VENVS = {
    "main": "main.txt",
    "cache2": "cache2.txt",
    "reborn": "reborn.txt",
    "cachemate": "cachemate.txt",
    "oxicache": "oxicache.txt",
    "report": "report.txt",  # matplotlib for bench/report.py; serves no target
}
COMMON_PINS = "constraints-common.txt"
REPO_VENV = "oxicache"
REPORT_VENV = "report"

PREBUILT_APP = "apps.prebuilt:app"
RAW_APP = "apps.raw_asgi:app"

PHASES = ("throughput", "inproc", "stampede", "growth", "down", "checks")
CACHE_PHASES = PHASES

# Distributions whose versions the JSON lists first for each venv (the full freeze follows).
KEY_DISTS = (
    "fastapi",
    "starlette",
    "pydantic",
    "pydantic-core",
    "uvicorn",
    "uvloop",
    "httptools",
    "fastapi-cache2",
    "fastapi-cachex",
    "fastapi-redis-cache-reborn",
    "fastapi-cachemate",
    "cashews",
    "redis",
    "oxicache",
)


@dataclass(frozen=True)
class Spec:
    """One library (or baseline) and the backends it is run on."""

    lib: str  # display name; target name is lib/backend (lib for baselines)
    venv: str
    module: str  # "apps.<module>:app", imported with bench/ on sys.path
    backends: tuple[str, ...] = ("none",)
    kind: str = "cache"  # "cache" or "baseline"
    variant: str = ""  # value of BENCH_VARIANT
    phases: tuple[str, ...] = CACHE_PHASES
    env: dict[str, str] = field(default_factory=dict, hash=False)
    # apps measured in the same in-process worker, in alternating batches; the first is the
    # one "µs added" is taken against (a middleware is also set beside raw ASGI)
    inproc_refs: tuple[str, ...] = (PREBUILT_APP,)


BASELINES = [
    Spec("raw-asgi", "main", "apps.raw_asgi:app", kind="baseline", phases=("throughput", "inproc")),
    Spec(
        "fastapi-prebuilt",
        "main",
        "apps.prebuilt:app",
        kind="baseline",
        phases=("throughput", "inproc"),
    ),
    # One Redis GET in a FastAPI route and nothing else: the ceiling of any cache answering
    # from Redis inside a route (bench/apps/redis_floor.py), in the prebuilt route's venv.
    Spec(
        "fastapi-redis-floor",
        "main",
        "apps.redis_floor:app",
        ("redis",),
        kind="baseline",
        phases=("throughput",),
    ),
    # A user middleware answering the cached route's response as constant bytes, added with
    # app.add_middleware: the floor of CacheMiddleware added that way (FastAPI's own stack
    # around it; bench/apps/mw_floor.py).
    Spec(
        "fastapi-mw-floor",
        "main",
        "apps.mw_floor:app",
        kind="baseline",
        phases=("throughput",),
    ),
    # The prebuilt route sending the header fields a @cache hit sends: the floor of the
    # decorator's own work (bench/apps/prebuilt_fields.py).
    Spec(
        "fastapi-prebuilt-fields",
        "main",
        "apps.prebuilt_fields:app",
        kind="baseline",
        phases=("throughput",),
    ),
    Spec(
        "fastapi-uncached",
        "main",
        "apps.uncached:app",
        kind="baseline",
        phases=("throughput", "growth", "checks"),
    ),
    # The venvs pinned to older FastAPI/Starlette get their own uncached row, so each library's
    # "x uncached" compares like with like.
    Spec(
        "fastapi-uncached@reborn",
        "reborn",
        "apps.uncached:app",
        kind="baseline",
        phases=("throughput",),
    ),
    Spec(
        "fastapi-uncached@cachemate",
        "cachemate",
        "apps.uncached:app",
        kind="baseline",
        phases=("throughput",),
    ),
]

LIBRARIES = [
    Spec("oxicache", "oxicache", "apps.oxi:app", ("memory", "redis", "memcached")),
    # Two tiers: the in-process tier in front of Redis (hot keys at memory speed).
    Spec(
        "oxicache[two-tier]",
        "oxicache",
        "apps.oxi:app",
        ("redis",),
        variant="two-tier",
        phases=("throughput", "inproc"),
    ),
    # Growth only: the same app with a byte cap set well under the data sent, so that eviction
    # happens and "cap held" is judged on a store that is actually full.
    Spec(
        "oxicache[capped]",
        "oxicache",
        "apps.oxi:app",
        ("memory",),
        variant="capped",
        phases=("growth",),
    ),
    # CacheMiddleware (RFC 9111 shared cache) in front of the raw ASGI baseline's bytes, the
    # origin sending Cache-Control: max-age: its hit is compared with raw ASGI itself.
    Spec(
        "oxicache[middleware]",
        "oxicache",
        "apps.oxi_mw:app",
        ("memory",),
        phases=("throughput", "inproc", "stampede", "growth", "checks"),
        inproc_refs=(PREBUILT_APP, RAW_APP),
    ),
    # The decorator app above with app.add_middleware(CacheMiddleware) added: on the in-process
    # store, and on the backend the app configures (the middleware uses it by default).
    Spec(
        "oxicache[mw+fastapi]",
        "oxicache",
        "apps.oxi_mw_fastapi:app",
        ("memory", "redis", "memcached"),
        phases=("throughput", "inproc", "stampede", "checks"),
        inproc_refs=(PREBUILT_APP, RAW_APP),
    ),
    # The same with two tiers in front of Redis (hot keys answered from the local copies).
    Spec(
        "oxicache[mw+two-tier]",
        "oxicache",
        "apps.oxi_mw_fastapi:app",
        ("redis",),
        variant="two-tier",
        phases=("throughput",),
        inproc_refs=(PREBUILT_APP, RAW_APP),
    ),
    Spec("fastapi-cache2", "cache2", "apps.peer_cache2:app", ("memory", "redis", "memcached")),
    Spec("fastapi-cachex", "main", "apps.peer_cachex:app", ("memory", "redis", "memcached")),
    Spec(
        "fastapi-cachex[coalesce]",
        "main",
        "apps.peer_cachex:app",
        ("memory", "redis"),
        variant="coalesce",
        phases=("stampede",),
    ),
    Spec("fastapi-redis-cache-reborn", "reborn", "apps.peer_reborn:app", ("redis",)),
    Spec("fastapi-cachemate", "cachemate", "apps.peer_cachemate:app", ("redis",)),
    Spec("cashews", "main", "apps.peer_cashews:app", ("memory", "redis")),
    Spec("cashews+mw", "main", "apps.peer_cashews:app", ("memory", "redis"), variant="mw"),
]

# The uncached baseline each venv's targets are compared with.
UNCACHED_FOR_VENV = {
    "main": "fastapi-uncached",
    "cache2": "fastapi-uncached",  # same fastapi/starlette/pydantic as main
    "oxicache": "fastapi-uncached",  # same fastapi/starlette/pydantic as main
    "reborn": "fastapi-uncached@reborn",
    "cachemate": "fastapi-uncached@cachemate",
}


@dataclass(frozen=True)
class Target:
    name: str
    lib: str
    backend: str
    venv: str
    kind: str
    variant: str
    module: str
    phases: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    inproc_refs: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "lib": self.lib,
            "backend": self.backend,
            "venv": self.venv,
            "kind": self.kind,
            "variant": self.variant,
            "module": self.module,
            "phases": list(self.phases),
            "uncached_ref": UNCACHED_FOR_VENV[self.venv],
            "inproc_refs": list(self.inproc_refs),
        }


def targets(only: list[str] | None = None) -> list[Target]:
    """Every target; with ``only``, the baselines plus the libraries (or names) listed.

    ``--only fastapi-cachex`` also keeps its variants (``fastapi-cachex[coalesce]``)."""
    out = []
    for spec in BASELINES + LIBRARIES:
        for be in spec.backends:
            name = spec.lib if spec.kind == "baseline" else f"{spec.lib}/{be}"
            out.append(
                Target(
                    name,
                    spec.lib,
                    be,
                    spec.venv,
                    spec.kind,
                    spec.variant,
                    spec.module,
                    spec.phases,
                    tuple(sorted(spec.env.items())),
                    spec.inproc_refs if spec.kind == "cache" else (),
                )
            )
    if only:

        def wanted(t: Target) -> bool:
            base = t.lib.split("[")[0].split("+")[0]
            return t.kind == "baseline" or any(o in (t.lib, t.name, base) for o in only)

        unknown = [
            o
            for o in only
            if not any(o in (t.lib, t.name, t.lib.split("[")[0].split("+")[0]) for t in out)
        ]
        if unknown:
            raise SystemExit(
                f"--only: unknown target(s) {unknown}; known: "
                + ", ".join(sorted({t.lib for t in out}))
            )
        out = [t for t in out if wanted(t)]
    return out
