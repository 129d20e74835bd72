"""Real servers for the backend tests, on free loopback ports in a temporary directory.

Nothing here is a mock: each class starts the real binary (``redis-server``, ``redis-cli``,
``redis-sentinel``, ``memcached``, moto's DynamoDB server) as a child process, waits (bounded)
until it answers, and can freeze (SIGSTOP), thaw (SIGCONT), terminate (SIGTERM) and restart it
empty on the same port, so that tests can break a server under load and bring it back.

No server persists anything: Redis runs with ``--save '' --appendonly no``, memcached and moto
keep everything in memory. Children get ``PR_SET_PDEATHSIG`` on Linux (via ``setpriv``), so a
test run that is killed does not leave servers behind; an ``atexit`` hook stops the rest. Start
servers from the main thread: the death signal fires when the thread that started them ends.

Readiness probes speak the wire protocols directly (a few lines of RESP, the memcached text
protocol, one HTTP request), so the harness needs no client library.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "DynamoDBServer",
    "MemcachedServer",
    "RedisCluster",
    "RedisSentinel",
    "RedisServer",
    "ServerError",
    "ServerProcess",
    "free_port",
    "missing_binaries",
    "resp_command",
]

HOST = "127.0.0.1"
#: Bound on every readiness wait, in seconds (overridable for slow machines).
READY_TIMEOUT = float(os.environ.get("OXICACHE_SERVER_TIMEOUT", "30"))


class ServerError(RuntimeError):
    """A server did not start, did not become ready in time, or answered unexpectedly."""


# --- ports and binaries -------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def missing_binaries(kind: str) -> list[str]:
    """The executables (or Python modules) that ``kind`` needs and this machine lacks.

    ``kind`` is one of ``"redis"``, ``"redis-cluster"``, ``"redis-sentinel"``, ``"memcached"``,
    ``"dynamodb"``.
    """
    if kind == "redis":
        needed = ["redis-server"]
    elif kind == "redis-cluster":
        needed = ["redis-server", "redis-cli"]
    elif kind == "redis-sentinel":
        # ``redis-server --sentinel`` is a sentinel too when the redis-sentinel package is absent.
        needed = ["redis-server"]
    elif kind == "memcached":
        needed = ["memcached"]
    elif kind == "dynamodb":
        import importlib.util

        try:
            found = importlib.util.find_spec("moto.server") is not None
        except ImportError:
            found = False
        # moto's server mode needs its [server] extra (flask, werkzeug).
        found = found and importlib.util.find_spec("flask") is not None
        return [] if found else ["moto[server] (Python package)"]
    else:
        raise ValueError(f"unknown server kind {kind!r}")
    return [b for b in needed if shutil.which(b) is None]


# --- a minimal RESP client for probes -----------------------------------------------------


def _encode(args: Sequence[str | bytes | int]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buf += chunk

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def reply(self) -> Any:
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise ServerError(f"redis error: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ServerError(f"unexpected RESP reply {line!r}")


def resp_command(port: int, *args: str | bytes | int, timeout: float = 2.0) -> Any:
    """Sends one command to the Redis (or Sentinel) on ``port`` and returns the decoded reply.

    Bulk strings come back as ``bytes``, simple strings as ``str``; an error reply raises
    :class:`ServerError`; a server that does not answer within ``timeout`` raises ``OSError``.
    """
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_encode(args))
        return _Reader(sock).reply()


# --- child processes ----------------------------------------------------------------------


def _orphan_guard() -> list[str]:
    """An argv prefix that makes the child die with the test process (Linux's util-linux
    ``setpriv --pdeathsig``, which execs the server with PR_SET_PDEATHSIG set); empty elsewhere.
    No ``preexec_fn``: it is unsafe in a process with threads."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


_LIVE: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()


class ServerProcess:
    """One server child process on a fixed loopback port, with its log in ``workdir``.

    ``start()`` launches it and waits for ``probe`` to succeed; ``pause()``/``resume()`` send
    SIGSTOP/SIGCONT; ``terminate()`` sends SIGTERM and reaps it; ``kill()`` sends SIGKILL;
    ``restart()`` stops it and starts it again, empty, on the same port.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        workdir: Path,
        probe: Callable[[], bool],
        *,
        ready_timeout: float = READY_TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.workdir = workdir
        self.probe = probe
        self.ready_timeout = ready_timeout
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{name}.log"

    # lifecycle

    def start(self, *, wait: bool = True) -> None:
        if self.running:
            raise ServerError(f"{self.name} is already running (pid {self.pid})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*_orphan_guard(), *self.argv],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        _LIVE.add(self)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Polls ``probe`` until it succeeds; :class:`ServerError` with the log tail if not."""
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with code {self.proc.returncode} before it was ready"
                    f" (argv: {self.argv}){self._log_tail()}"
                )
            try:
                if self.probe():
                    return
            except (OSError, ServerError) as e:
                last_error = e
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"{self.name} on {HOST}:{self.port} was not ready within {timeout:.0f} s"
                    f" (last probe error: {last_error!r}){self._log_tail()}"
                )
            time.sleep(0.05)

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def running(self) -> bool:
        """The process exists (it may be stopped with SIGSTOP)."""
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        if not self.running:
            raise ServerError(f"{self.name} is not running")
        assert self.proc is not None
        self.proc.send_signal(sig)

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections (kernel backlog) but nothing answers.

        Returns once every thread of the server is stopped: the kernel delivers SIGSTOP to a
        multi-threaded process asynchronously, so without the wait a command sent right after
        could still be answered (memcached and Redis both run several threads)."""
        self._signal(signal.SIGSTOP)
        self._wait_threads(stopped=True)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`; returns once no thread of the server is stopped."""
        self._signal(signal.SIGCONT)
        self._wait_threads(stopped=False)

    def thread_states(self) -> list[str] | None:
        """The state letter (``/proc/<pid>/task/<tid>/stat``: ``R``, ``S``, ``T`` stopped...)
        of each thread of the server; None where there is no ``/proc`` (not Linux)."""
        if self.proc is None:
            return None
        task_dir = Path(f"/proc/{self.proc.pid}/task")
        try:
            tids = os.listdir(task_dir)
        except OSError:
            return None
        states = []
        for tid in tids:
            try:
                stat = (task_dir / tid / "stat").read_text()
            except OSError:
                continue  # the thread ended meanwhile
            # "tid (comm) S ...": comm may hold spaces and parentheses, the state follows the
            # last ")".
            states.append(stat[stat.rindex(")") + 2])
        return states

    def _wait_threads(self, *, stopped: bool, timeout: float = 10.0) -> None:
        """Waits (bounded) until every thread is stopped (``T``), or none is."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.thread_states()
            if states is None:
                return  # no /proc: nothing to observe, as before
            if states and all((s == "T") is stopped for s in states):
                return
            if not self.running:
                raise ServerError(
                    f"{self.name} exited while being {'stopped' if stopped else 'continued'}"
                )
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"{self.name} (pid {self.pid}): threads in states {states}"
                    f" {timeout:.0f} s after {'SIGSTOP' if stopped else 'SIGCONT'}"
                )
            time.sleep(0.001)

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (after SIGCONT, so a paused server can act on it), then reap; SIGKILL if it
        has not exited within ``timeout``. Returns the exit code (None if it was not running).
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
                self.proc.send_signal(signal.SIGCONT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL and reap: the server dies without any shutdown work."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        self.terminate()
        _LIVE.discard(self)

    def restart(self, *, wait: bool = True) -> None:
        """Stops the server (if it runs) and starts it again, empty, on the same port."""
        self.stop()
        self.start(wait=wait)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "\n--- last lines of " + str(self.log_path) + " ---\n" + "\n".join(text)


def _redis_probe(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        return bool(resp_command(port, "PING", timeout=1.0) == "PONG")

    return probe


def _redis_argv(port: int, workdir: Path, *extra: str) -> list[str]:
    return [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        HOST,
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--loglevel",
        "warning",
        *extra,
    ]


class _Base:
    """Owns a temporary directory; a context manager that stops everything on exit."""

    kind = "server"

    def __init__(self, workdir: Path | None = None) -> None:
        self._own_dir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix=f"oxicache-{self.kind}-")) if workdir is None else workdir
        )

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _OneProcess(_Base):
    """A server that is one :class:`ServerProcess` (``self.process``): starting, stopping and
    the failure injections act on that process."""

    process: ServerProcess

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    # failure injection: the process itself
    def pause(self) -> None:
        self.process.pause()

    def resume(self) -> None:
        self.process.resume()

    def terminate(self) -> None:
        self.process.terminate()

    def restart(self) -> None:
        self.process.restart()


class RedisServer(_OneProcess):
    """A standalone ``redis-server`` on a free loopback port, persisting nothing."""

    kind = "redis"

    def __init__(self, workdir: Path | None = None, *, extra_args: Sequence[str] = ()) -> None:
        super().__init__(workdir)
        self.port = free_port()
        self.process = ServerProcess(
            "redis",
            _redis_argv(self.port, self.workdir, *extra_args),
            self.port,
            self.workdir,
            _redis_probe(self.port),
        )

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def flushall(self) -> None:
        resp_command(self.port, "FLUSHALL")


class RedisCluster(_Base):
    """Three ``redis-server`` masters with ``cluster-enabled yes``, joined by
    ``redis-cli --cluster create --cluster-replicas 0`` and waited on until every node reports
    ``cluster_state:ok``.

    ``cluster-require-full-coverage no``: when one master is frozen or killed, the other two keep
    serving their slots (what failure tests want to observe). Restarting a node keeps its
    ``nodes-<port>.conf`` (its identity and slots) but none of its data.
    """

    kind = "redis-cluster"

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        masters: int = 3,
        node_timeout_ms: int = 2000,
    ) -> None:
        super().__init__(workdir)
        self.nodes: list[ServerProcess] = []
        for i in range(masters):
            port, bus = free_port(), free_port()
            node_dir = self.workdir / f"node{i}"
            argv = _redis_argv(
                port,
                node_dir,
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-port",
                str(bus),
                "--cluster-node-timeout",
                str(node_timeout_ms),
                "--cluster-require-full-coverage",
                "no",
            )
            self.nodes.append(
                ServerProcess(f"redis-cluster-{port}", argv, port, node_dir, _redis_probe(port))
            )

    @property
    def ports(self) -> list[int]:
        return [n.port for n in self.nodes]

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(HOST, p) for p in self.ports]

    @property
    def url(self) -> str:
        """A ``redis://`` URL of one node (a cluster client discovers the others from it)."""
        return f"redis://{HOST}:{self.nodes[0].port}"

    def start(self) -> None:
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_ready()
        create = [
            "redis-cli",
            "--cluster",
            "create",
            *(f"{HOST}:{p}" for p in self.ports),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]
        try:
            done = subprocess.run(
                create, capture_output=True, text=True, timeout=READY_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as e:
            raise ServerError(f"{' '.join(create)} did not finish in {READY_TIMEOUT:.0f} s") from e
        if done.returncode != 0:
            raise ServerError(
                f"{' '.join(create)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        self.wait_ok()

    def cluster_info(self, port: int) -> dict[str, str]:
        raw = resp_command(port, "CLUSTER", "INFO", timeout=1.0)
        info = {}
        for line in bytes(raw).decode().splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                info[k] = v.strip()
        return info

    def wait_ok(self, timeout: float = READY_TIMEOUT) -> None:
        """Waits until every node reports ``cluster_state:ok`` with all 16384 slots assigned and
        sees every other node (so clients get one consistent slot map)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                states = [self.cluster_info(p) for p in self.ports]
                if all(
                    s.get("cluster_state") == "ok"
                    and s.get("cluster_slots_ok") == "16384"
                    and s.get("cluster_known_nodes") == str(len(self.nodes))
                    for s in states
                ):
                    return
                last = [s.get("cluster_state") for s in states]
            except (OSError, ServerError) as e:
                last = e
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"Redis Cluster on ports {self.ports} not ok within {timeout:.0f} s"
                    f" (last: {last!r})"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def node(self, index: int) -> ServerProcess:
        """The ``index``-th master: ``.pause()``, ``.resume()``, ``.terminate()`` on it."""
        return self.nodes[index]

    def restart_node(self, index: int, *, wait_ok: bool = True) -> None:
        """Restarts one master, empty, with its cluster identity; waits for ``cluster_state:ok``."""
        self.nodes[index].restart()
        if wait_ok:
            self.wait_ok()

    def flushall(self) -> None:
        for p in self.ports:
            resp_command(p, "FLUSHALL")


class RedisSentinel(_Base):
    """A Redis master plus one Sentinel monitoring it as ``mymaster`` with quorum 1.

    The sentinel runs ``redis-sentinel`` when installed, else ``redis-server <conf> --sentinel``.
    With no replica there is no failover: freezing or killing the master leaves clients that
    ask the sentinel pointed at a dead address, which is what failure tests need.
    """

    kind = "redis-sentinel"

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        service_name: str = "mymaster",
        down_after_ms: int = 5000,
    ) -> None:
        super().__init__(workdir)
        self.service_name = service_name
        self.down_after_ms = down_after_ms
        self.master_port = free_port()
        self.sentinel_port = free_port()
        master_dir = self.workdir / "master"
        self.master = ServerProcess(
            "redis-master",
            _redis_argv(self.master_port, master_dir),
            self.master_port,
            master_dir,
            _redis_probe(self.master_port),
        )
        sentinel_dir = self.workdir / "sentinel"
        self.conf = sentinel_dir / "sentinel.conf"
        if shutil.which("redis-sentinel"):
            argv = ["redis-sentinel", str(self.conf)]
        else:
            argv = ["redis-server", str(self.conf), "--sentinel"]
        self.sentinel = ServerProcess(
            "redis-sentinel", argv, self.sentinel_port, sentinel_dir, self._sentinel_probe
        )

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [(HOST, self.sentinel_port)]

    def _write_conf(self) -> None:
        # The sentinel rewrites its own config file: write a fresh one for every start.
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            "\n".join(
                [
                    f"port {self.sentinel_port}",
                    f"bind {HOST}",
                    "protected-mode no",
                    "daemonize no",
                    f"dir {self.conf.parent}",
                    "loglevel warning",
                    f"sentinel monitor {self.service_name} {HOST} {self.master_port} 1",
                    f"sentinel down-after-milliseconds {self.service_name} {self.down_after_ms}",
                    f"sentinel failover-timeout {self.service_name} 60000",
                    "",
                ]
            )
        )

    def _sentinel_probe(self) -> bool:
        addr = resp_command(
            self.sentinel_port,
            "SENTINEL",
            "GET-MASTER-ADDR-BY-NAME",
            self.service_name,
            timeout=1.0,
        )
        if not addr or int(addr[1]) != self.master_port:
            return False
        # Ready once the sentinel has reached the master at least once (no s_down flag).
        fields = resp_command(
            self.sentinel_port, "SENTINEL", "MASTER", self.service_name, timeout=1.0
        )
        info = dict(zip(fields[::2], fields[1::2], strict=True))
        flags = info.get(b"flags", b"").decode()
        return "s_down" not in flags and "disconnected" not in flags

    def start(self) -> None:
        self.master.start()
        self._write_conf()
        self.sentinel.start()

    def stop(self) -> None:
        self.sentinel.stop()
        self.master.stop()

    def restart_master(self) -> None:
        """Restarts the master, empty, on the same port (the sentinel keeps pointing at it)."""
        self.master.restart()

    def restart_sentinel(self) -> None:
        self.sentinel.stop()
        self._write_conf()
        self.sentinel.start()

    def flushall(self) -> None:
        resp_command(self.master_port, "FLUSHALL")


class MemcachedServer(_OneProcess):
    """``memcached -l 127.0.0.1 -p PORT -U 0`` (TCP only), 64 MB, 1 MB items by default."""

    kind = "memcached"

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        memory_mb: int = 64,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(workdir)
        self.port = free_port()
        argv = ["memcached", "-l", HOST, "-p", str(self.port), "-U", "0", "-m", str(memory_mb)]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # memcached refuses to run as root without -u
        argv += list(extra_args)
        self.process = ServerProcess("memcached", argv, self.port, self.workdir, self._probe)

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    def _probe(self) -> bool:
        with socket.create_connection((HOST, self.port), timeout=1.0) as sock:
            sock.settimeout(1.0)
            sock.sendall(b"version\r\n")
            return _Reader(sock).line().startswith(b"VERSION ")


class DynamoDBServer(_OneProcess):
    """moto in server mode (``python -m moto.server``) answering the DynamoDB API over HTTP.

    Use ``endpoint_url`` with any region and dummy credentials (see :attr:`client_kwargs`).
    Restarting gives an empty server (no tables).
    """

    kind = "dynamodb"
    region = "us-east-1"

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.port = free_port()
        argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)]
        env = dict(os.environ)
        env.setdefault("AWS_ACCESS_KEY_ID", "testing")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        env.setdefault("AWS_DEFAULT_REGION", self.region)
        self.process = ServerProcess(
            "moto-dynamodb", argv, self.port, self.workdir, self._probe, env=env
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for a boto3/aiobotocore DynamoDB client against this server."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }

    def _probe(self) -> bool:
        # DynamoDB's JSON protocol: ListTables answers 200 once the server is up.
        req = urllib.request.Request(
            self.endpoint_url + "/",
            data=b"{}",
            method="POST",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "Authorization": (
                    "AWS4-HMAC-SHA256 Credential=testing/20240101/"
                    f"{self.region}/dynamodb/aws4_request, SignedHeaders=host, Signature=x"
                ),
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=2.0) as resp:
                return int(resp.status) == 200
        except urllib.error.HTTPError as e:
            raise ServerError(f"moto answered HTTP {e.code}") from e
