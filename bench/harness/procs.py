"""Child processes of the runner: redis-server, memcached and one uvicorn per target.

Every child is started here, recorded, and stopped by its own pid (SIGTERM, then SIGKILL after a
grace period). Everything binds 127.0.0.1. With two or more CPUs the app servers run on CPU 0
and everything else (wrk, redis, memcached, the runner's own clients) on CPU 1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from registry import Target

BENCH = Path(__file__).resolve().parent.parent
VENVS = BENCH / ".venvs"

PIN = (
    os.environ.get("BENCH_PIN", "1") == "1"
    and (os.cpu_count() or 1) >= 2
    and shutil.which("taskset") is not None
)
SERVER_CPU, CLIENT_CPU = 0, 1

REDIS_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6391"))
VICTIM_REDIS_PORT = int(os.environ.get("BENCH_VICTIM_REDIS_PORT", "6392"))
MEMCACHED_PORT = int(os.environ.get("BENCH_MEMCACHED_PORT", "11291"))
FIRST_APP_PORT = int(os.environ.get("BENCH_FIRST_PORT", "18300"))

_children: dict[int, Child] = {}
_lock = threading.Lock()
LOG_DIR = BENCH / "results" / "logs"


def pinned(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if PIN else []


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check, timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise RuntimeError(f"gave up waiting for {what} after {timeout:.0f}s")


class Child:
    """A process we started; its output goes to a log file whose size the down phase reads."""

    def __init__(
        self, label: str, argv: list[str], env: dict | None = None, cwd: Path | None = None
    ):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.label = label
        self.log_path = LOG_DIR / f"{label}.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd or BENCH,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        with _lock:
            _children[self.proc.pid] = self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def rss_bytes(self) -> int | None:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def stop(self, grace: float = 5.0) -> None:
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()
        with _lock:
            _children.pop(self.pid, None)


def stop_all() -> None:
    with _lock:
        kids = list(_children.values())
    for c in kids:
        try:
            c.stop(grace=3)
        except Exception:
            pass


def _tcp_says(port: int, send: bytes, expect: bytes) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(send)
            return expect in s.recv(128)
    except OSError:
        return False


class Redis:
    """A private redis-server: loopback only, no persistence, its own working directory."""

    def __init__(self, port: int, label: str):
        if port_in_use(port):
            raise RuntimeError(f"127.0.0.1:{port} is taken; not reusing a redis we did not start")
        self.port = port
        self.dir = tempfile.mkdtemp(prefix=f"bench-redis-{port}-")
        self.child = Child(
            label,
            pinned(CLIENT_CPU)
            + [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--dir",
                self.dir,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--databases",
                "64",
                "--protected-mode",
                "yes",
                "--loglevel",
                "warning",
            ],
            cwd=Path(self.dir),
        )
        wait_until(self.ping, 10, f"redis on :{port}")

    def ping(self) -> bool:
        return _tcp_says(self.port, b"PING\r\n", b"+PONG")

    def flushall(self) -> None:
        _tcp_says(self.port, b"FLUSHALL\r\n", b"+OK")

    def stop(self) -> None:
        self.child.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Memcached:
    def __init__(self, port: int, label: str = "memcached"):
        if port_in_use(port):
            raise RuntimeError(
                f"127.0.0.1:{port} is taken; not reusing a memcached we did not start"
            )
        self.port = port
        self.dir = tempfile.mkdtemp(prefix=f"bench-memcached-{port}-")
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        # Extra server options for experiments, e.g. "-t 1 -o no_lru_crawler,no_lru_maintainer"
        # (memcached's worker and LRU threads share CPU 1 with wrk; see bench/ab.py's results).
        extra = os.environ.get("BENCH_MEMCACHED_ARGS", "").split()
        self.child = Child(
            label,
            pinned(CLIENT_CPU)
            + ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "1024"]
            + extra
            + user,
            cwd=Path(self.dir),
        )
        wait_until(lambda: _tcp_says(port, b"version\r\n", b"VERSION"), 10, f"memcached on :{port}")

    def stop(self) -> None:
        self.child.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------------------------ app servers
_next_port = [FIRST_APP_PORT]
_redis_db: dict[str, int] = {}


def free_port() -> int:
    with _lock:
        while True:
            p = _next_port[0]
            _next_port[0] += 1
            if not port_in_use(p):
                return p


# bench/run.py --python-current: every target runs under the runner's own interpreter instead of
# its venv (a smoke run needing no venv; the figures are then not the pinned peers' own).
PYTHON_OVERRIDE: str | None = None
#: "default" (CPython's collector as shipped) or "tuned" (run.py --gc tuned: every app server
#: runs through apps/gc_tuned.py, which freezes the startup heap and raises the threshold).
GC_MODE = "default"


def venv_python(venv: str) -> str:
    if PYTHON_OVERRIDE:
        return PYTHON_OVERRIDE
    return str(VENVS / venv / "bin" / "python")


def target_env(t: Target, redis_port: int = REDIS_PORT, extra: dict | None = None) -> dict:
    """The environment of a target's process: backend, its own redis database, variant."""
    db = _redis_db.setdefault(t.name, len(_redis_db) % 63 + 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "PYTHON"))}
    env.update(
        {
            "PYTHONPATH": str(BENCH),
            "PYTHONDONTWRITEBYTECODE": "1",
            "BENCH_BACKEND": t.backend,
            "BENCH_REDIS_URL": f"redis://127.0.0.1:{redis_port}/{db}",
            "BENCH_MEMCACHED": f"127.0.0.1:{MEMCACHED_PORT}",
            "BENCH_VARIANT": t.variant,
        }
    )
    env.update(dict(t.env))
    env.update(extra or {})
    return env


class AppServer:
    """uvicorn serving one target, one worker, uvloop + httptools, pinned to the server CPU."""

    def __init__(
        self, t: Target, tag: str = "", redis_port: int = REDIS_PORT, env: dict | None = None
    ):
        self.target = t
        self.port = free_port()
        module, env = t.module, dict(env or {})
        if GC_MODE == "tuned":  # every target alike: apps/gc_tuned.py wraps the app module
            module, env["BENCH_GC_APP"] = "apps.gc_tuned:app", t.module.split(":")[0]
        argv = pinned(SERVER_CPU) + [
            venv_python(t.venv),
            "-m",
            "uvicorn",
            module,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        label = "".join(c if c.isalnum() or c in "-_." else "_" for c in t.name)
        self.child = Child(
            f"app-{label}{'-' + tag if tag else ''}-{self.port}",
            argv,
            env=target_env(t, redis_port, env),
        )

    def wait_ready(self, timeout: float = 60.0) -> AppServer:
        from httpc import fetch, stats

        def up() -> bool:
            if not self.child.alive():
                raise RuntimeError(
                    f"{self.target.name} exited at startup; see {self.child.log_path}"
                )
            return fetch(self.port, "/_health", timeout=2).status == 200

        wait_until(up, timeout, f"{self.target.name} on :{self.port}", every=0.1)
        pid = stats(self.port)["pid"]
        if pid != self.child.pid:
            raise RuntimeError(
                f"{self.target.name}: :{self.port} is served by pid {pid}, "
                f"not by the {self.child.pid} we started"
            )
        return self

    def stats(self) -> dict:
        from httpc import stats

        return stats(self.port)

    def runs(self, counter: str = "items") -> int:
        return int(self.stats()["counters"][counter])

    def gc_collections(self) -> list[int] | None:
        """The server's garbage collections so far, per generation (young, middle, full)."""
        return self.stats().get("gc")

    def stop(self) -> None:
        self.child.stop()


def start_servers(targets: list[Target], tag: str = "", **kw) -> dict[str, AppServer]:
    """Starts them all at once, then waits for each (a failure stops the others)."""
    servers = {}
    try:
        for t in targets:
            servers[t.name] = AppServer(t, tag, **kw)
        for s in servers.values():
            s.wait_ready()
    except BaseException:
        for s in servers.values():
            s.stop()
        raise
    return servers
