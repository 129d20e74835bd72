"""Fork safety on real prefork servers against a real Redis.

- ``uvicorn --workers 4`` (workers are spawned processes that import the app themselves);
- ``gunicorn --preload -k uvicorn.workers.UvicornWorker -w 4``: the app module is imported,
  and ``oxicache.configure(...)`` runs, in the master *before* it forks the workers. Whatever
  the import created would be inherited by every worker; a connection opened there would be
  one socket shared by five processes, whose replies interleave ("protocol error", answers to
  another worker's command).

What is checked: importing and configuring opens no socket at all; 50 concurrent requests are
all answered 200; an entry one worker wrote is a HIT in the others (the body says which worker
produced it, the ``x-pid`` header which one answered); and, read from ``/proc``, no socket
connected to Redis is held by two processes, the master holds none, and the workers' logs show
no error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.python import prefork, servers

pytest.importorskip("redis", reason="the fork tests run the app on redis (the test extra)")

WORKERS = 4

APP = textwrap.dedent(
    """
    import os

    from fastapi import FastAPI, Request

    import oxicache
    from oxicache import cache

    # At import time, as an app module does: the backend named by OXICACHE_URL (read on
    # first use), a prefix of this test's own. Deadlines a loaded 2-core test machine meets:
    # these tests are about processes, not about the breaker (test_outage.py).
    oxicache.configure(
        prefix=os.environ["T_PREFIX"], backend_timeout=1.0, backend_write_timeout=2.0
    )
    app = FastAPI()


    @app.middleware("http")
    async def tag_pid(request: Request, call_next):
        response = await call_next(request)
        response.headers["x-pid"] = str(os.getpid())
        return response


    @app.get("/pid")
    async def pid() -> dict:
        return {"pid": os.getpid()}


    @app.get("/items/{item_id}")
    @cache(ttl=60)
    async def item(item_id: int) -> dict:
        return {"id": item_id, "pid": os.getpid()}


    if os.environ.get("T_WARM"):
        # A warm-up in the importing process (gunicorn --preload's master, before it forks):
        # entries stored, in memory and in Redis, by a process that is about to fork.
        import asyncio

        import httpx

        async def warm() -> None:
            transport = httpx.ASGITransport(app=app)
            # The URL the server will answer on: the host is part of every key.
            base = os.environ["T_WARM"]
            async with httpx.AsyncClient(transport=transport, base_url=base) as c:
                for i in range(3):
                    assert (await c.get(f"/items/{5000 + i}")).headers["x-cache"] == "MISS"
                await asyncio.sleep(0.2)  # the background writes land

        asyncio.run(warm())
    """
)

#: Runs in a fresh interpreter: imports the app module (as gunicorn --preload's master does)
#: and builds the process's guarded backend, counting this process's sockets around it.
IMPORT_PROBE = textwrap.dedent(
    """
    import json, os, sys

    def sockets():
        n = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
            except OSError:
                pass
        return n

    before = sockets()
    sys.path.insert(0, sys.argv[1])
    import fork_app  # noqa: F401
    from oxicache.backends import remote

    guard = remote.get_backend()
    print(json.dumps({"before": before, "after": sockets(), "guard": repr(guard)}))
    """
)


# --- processes ------------------------------------------------------------------------------


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "fork_app.py").write_text(APP)
    return tmp_path


@pytest.fixture
def env(redis_server: Any) -> dict[str, str]:
    return {
        **os.environ,
        "OXICACHE_URL": redis_server.url,
        "T_PREFIX": f"fk{uuid.uuid4().hex[:10]}",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(params=["redis", "memcached", "dynamodb"])
def engine(request: pytest.FixtureRequest, env: dict[str, str]) -> int:
    """Points ``env`` at one engine's server; returns the port its connections go to."""
    if request.param == "redis":
        return int(request.getfixturevalue("redis_server").port)
    if request.param == "memcached":
        pytest.importorskip("emcache", reason="the memcached extra")
        server = request.getfixturevalue("memcached_server")
        env["OXICACHE_URL"] = f"memcached://{server.address[0]}:{server.port}"
        return int(server.port)
    pytest.importorskip("aiobotocore", reason="the dynamodb extra")
    table = request.getfixturevalue("dynamodb_table")
    server = request.getfixturevalue("dynamodb_server")
    kw = server.client_kwargs
    env["OXICACHE_URL"] = (
        f"dynamodb://{table}?region={kw['region_name']}&endpoint_url={server.endpoint_url}"
    )
    env["AWS_ACCESS_KEY_ID"] = kw["aws_access_key_id"]
    env["AWS_SECRET_ACCESS_KEY"] = kw["aws_secret_access_key"]
    return int(server.port)


@pytest.fixture
def start(app_dir: Path, env: dict[str, str]) -> Iterator[Any]:
    """``start(argv_tail, name)`` launches ``[sys.executable, *argv]`` on a free port (the
    ``{port}`` placeholder) in the app's directory; every server is stopped at the end."""
    started: list[prefork.Prefork] = []

    def launch(argv: list[str], name: str) -> prefork.Prefork:
        port = servers.free_port()
        server = prefork.launch(
            [a.replace("{port}", str(port)) for a in argv],
            port=port,
            cwd=app_dir,
            env={k: v.replace("{port}", str(port)) for k, v in env.items()},
            log=app_dir / f"{name}-{port}.log",
        )
        started.append(server)
        return server

    try:
        yield launch
    finally:
        for server in started:
            server.stop()


# --- who holds which socket (Linux /proc) ----------------------------------------------------


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(int(link[8:-1]))
    return inodes


def _inodes_connected_to(port: int) -> set[int]:
    """Inodes of the TCP sockets (IPv4) whose remote end is 127.0.0.1:``port``."""
    found = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[3] == "01":  # ESTABLISHED
                found.add(int(fields[9]))
    return found


def redis_sockets(pids: set[int], port: int) -> dict[int, set[int]]:
    """For each pid, the inodes of its sockets connected to the Redis on ``port``."""
    to_redis = _inodes_connected_to(port)
    return {pid: _socket_inodes(pid) & to_redis for pid in pids}


def assert_nothing_shared(
    master: int, workers: set[int], redis_port: int, *, master_may_hold: bool = False
) -> dict[int, int]:
    """No Redis socket is held by two processes; unless ``master_may_hold`` (it served a
    warm-up before forking), the master holds none at all."""
    held = redis_sockets({master, *workers}, redis_port)
    if not master_may_hold:
        assert held[master] == set(), f"the master holds Redis connections: {held}"
    owners: dict[int, int] = {}
    for pid, inodes in held.items():
        for inode in inodes:
            assert inode not in owners, f"socket {inode} shared by {owners[inode]} and {pid}"
            owners[inode] = pid
    return {pid: len(inodes) for pid, inodes in held.items()}


def assert_clean_log(server: prefork.Prefork) -> None:
    text = server.log_text()
    for needle in ("Traceback", "ERROR", "Exception", "protocol", "shared"):
        assert needle not in text, f"{needle!r} in the server log:\n{text[-3000:]}"


def connected_clients(redis_server: Any) -> int:
    info = servers.resp_command(redis_server.port, "INFO", "clients")
    for line in bytes(info).decode().splitlines():
        if line.startswith("connected_clients:"):
            return int(line.split(":")[1])
    raise AssertionError(f"no connected_clients in {info!r}")


# --- the checks both servers share ------------------------------------------------------------


async def serve_and_share(server: prefork.Prefork, workers: set[int]) -> dict[str, Any]:
    """50 concurrent requests all answered; then one entry read from several workers."""
    async with prefork.client() as c:
        url = server.base_url
        replies = await asyncio.gather(*(c.get(f"{url}/items/{i % 10}") for i in range(50)))
        assert [r.status_code for r in replies] == [200] * 50
        assert all(r.json()["id"] == i % 10 for i, r in enumerate(replies))
        answered_by = {int(r.headers["x-pid"]) for r in replies}
        assert answered_by <= workers

        # A new key: written once by the worker that runs the handler (after its response),
        # then read by the others, from Redis.
        first = await c.get(f"{url}/items/1000")
        assert first.headers["x-cache"] == "MISS"
        producer = int(first.json()["pid"])
        hits: list[httpx.Response] = []
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            batch = await asyncio.gather(*(c.get(f"{url}/items/1000") for _ in range(8)))
            assert all(r.status_code == 200 for r in batch)
            hits += [r for r in batch if r.headers["x-cache"] == "HIT"]
            others = {int(r.headers["x-pid"]) for r in hits} - {producer}
            if len(others) >= 2:
                break
            await asyncio.sleep(0.05)
        others = {int(r.headers["x-pid"]) for r in hits} - {producer}
        assert len(others) >= 2, f"HITs answered only by {others} (producer {producer})"
        # Every hit is the producer's entry, byte for byte the same body.
        assert {r.content for r in hits} == {first.content}
    return {"answered_by": len(answered_by), "hit_workers": len(others), "hits": len(hits)}


def _gunicorn_preload(start: Any, name: str) -> prefork.Prefork:
    if shutil.which("gunicorn", path=os.path.dirname(sys.executable)) is None:
        pytest.skip("gunicorn is not installed (the test extra)")
    server: prefork.Prefork = start(
        [
            os.path.join(os.path.dirname(sys.executable), "gunicorn"),
            "fork_app:app",
            "--preload",
            "-k",
            "uvicorn.workers.UvicornWorker",
            "-w",
            str(WORKERS),
            "-b",
            "127.0.0.1:{port}",
            "--graceful-timeout",
            "3",
            "--log-level",
            "warning",
        ],
        name,
    )
    return server


# --- the tests ----------------------------------------------------------------------------------


def test_import_and_configure_open_no_connection(
    app_dir: Path, env: dict[str, str], redis_server: Any
) -> None:
    """What gunicorn --preload's master does before forking: import the app (which calls
    ``oxicache.configure``) and even build the guarded backend. No socket is opened, and Redis
    sees no new client."""
    before = connected_clients(redis_server)
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(app_dir)],
        env=env,
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["after"] == probe["before"], probe
    assert "GuardedBackend('redis'" in probe["guard"], probe
    assert connected_clients(redis_server) <= before  # (a client of an earlier test may close)


async def test_uvicorn_workers_share_entries(start: Any, redis_server: Any) -> None:
    """``uvicorn --workers 4``: every worker connects on its own; entries are shared."""
    t0 = time.monotonic()
    server = start(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "fork_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--workers",
            str(WORKERS),
            "--log-level",
            "warning",
        ],
        "uvicorn",
    )
    workers = await prefork.wait_workers(server, WORKERS, timeout=15.0)
    ready = time.monotonic() - t0
    figures = await serve_and_share(server, workers)
    per_worker = assert_nothing_shared(server.proc.pid, workers, redis_server.port)
    assert sum(per_worker.values()) >= 2  # the workers that answered did connect
    assert_clean_log(server)
    print(f"uvicorn: ready in {ready:.1f} s, {figures}, redis sockets per pid {per_worker}")


async def test_gunicorn_preload_forks_without_shared_connections(
    start: Any, redis_server: Any
) -> None:
    """``gunicorn --preload``: the app is imported and configured in the master, then forked.
    Until a request comes, Redis sees no client from any of the five processes; then the
    workers each open their own, and entries are shared through Redis."""
    before = connected_clients(redis_server)
    t0 = time.monotonic()
    server = _gunicorn_preload(start, "gunicorn")
    workers = await prefork.wait_workers(server, WORKERS, timeout=15.0)
    ready = time.monotonic() - t0
    # Imported, configured, forked, serving /pid: not one connection to Redis yet.
    assert connected_clients(redis_server) <= before  # (a client of an earlier test may close)
    assert all(
        not s for s in redis_sockets({server.proc.pid, *workers}, redis_server.port).values()
    )
    figures = await serve_and_share(server, workers)
    per_worker = assert_nothing_shared(server.proc.pid, workers, redis_server.port)
    assert sum(per_worker.values()) >= 2
    assert_clean_log(server)
    print(f"gunicorn --preload: ready in {ready:.1f} s, {figures}, redis sockets {per_worker}")


async def test_workers_forked_after_a_warm_up_answer_from_it(
    start: Any, env: dict[str, str], engine: int
) -> None:
    """``gunicorn --preload`` whose master served and stored entries before forking (a
    warm-up at import): the workers answer from what it stored, on every engine."""
    env["T_WARM"] = "http://127.0.0.1:{port}"
    server = _gunicorn_preload(start, "gunicorn-warm")
    workers = await prefork.wait_workers(server, WORKERS, timeout=15.0)
    async with prefork.client() as c:
        replies = await asyncio.gather(
            *(c.get(f"{server.base_url}/items/{5000 + i % 3}") for i in range(24))
        )
    assert [r.status_code for r in replies] == [200] * 24
    assert {r.headers["x-cache"] for r in replies} == {"HIT"}
    assert {r.json()["pid"] for r in replies} == {server.proc.pid}  # the master's entries
    assert {int(r.headers["x-pid"]) for r in replies} <= workers
    assert_clean_log(server)


async def test_workers_forked_after_a_warm_up_hold_none_of_its_connections(
    start: Any, env: dict[str, str], engine: int
) -> None:
    """The master's warm-up connections stay the master's: each worker lets go of its copies
    at the fork and opens its own, so no socket to the backend is held by two processes (on
    every engine: Redis, memcached's pipelined reads and emcache's pool, DynamoDB's HTTP
    connections)."""
    env["T_WARM"] = "http://127.0.0.1:{port}"
    server = _gunicorn_preload(start, "gunicorn-warm-sockets")
    workers = await prefork.wait_workers(server, WORKERS, timeout=15.0)
    async with prefork.client() as c:
        replies = await asyncio.gather(*(c.get(f"{server.base_url}/items/{i}") for i in range(8)))
    assert [r.status_code for r in replies] == [200] * 8
    held = assert_nothing_shared(server.proc.pid, workers, engine, master_may_hold=True)
    # moto's server closes each connection after its answer, so on DynamoDB nothing is kept
    # alive to inherit (test_inherited.py checks that a kept-alive one is found).
    if not env["OXICACHE_URL"].startswith("dynamodb:"):
        assert held[server.proc.pid], "the warm-up's connections should still be the master's"
        assert any(held[w] for w in workers), "the workers that answered connect themselves"
    assert_clean_log(server)
