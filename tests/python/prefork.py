"""Prefork servers in tests (``uvicorn --workers N``, gunicorn): each is started in a process
group of its own, waited for until every worker has answered, and stopped as one group.

The app under test must answer ``GET /pid`` with ``{"pid": <the worker's pid>}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest


class Prefork:
    """A server's supervisor process (leader of its own process group), its port and log."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log
        self.base_url = f"http://127.0.0.1:{port}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the process group (supervisor and workers), then SIGKILL for anything
        left after 5 s (workers the supervisor left behind)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=5)


def launch(argv: list[str], *, port: int, cwd: Path, env: dict[str, str], log: Path) -> Prefork:
    """Starts ``argv`` (which listens on ``port``) in a process group of its own, its output
    going to ``log``."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own: stopped as one
        )
    return Prefork(proc, port, log)


def client() -> httpx.AsyncClient:
    """No keep-alive: every request opens its own connection, so requests spread over the
    workers."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    return httpx.AsyncClient(limits=limits, timeout=15.0)


async def wait_workers(server: Prefork, workers: int, timeout: float) -> set[int]:
    """Waits until ``workers`` different workers have answered ``/pid``; returns their pids.
    Fails the test (with the log's end) if the server exits or too few answer in time."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    async with client() as c:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                pytest.fail(f"the server exited early:\n{server.log_text()[-3000:]}")
            replies = await asyncio.gather(
                *(c.get(f"{server.base_url}/pid") for _ in range(16)), return_exceptions=True
            )
            for r in replies:
                if isinstance(r, httpx.Response) and r.status_code == 200:
                    seen.add(int(r.json()["pid"]))
            if len(seen) >= workers:
                return seen
            await asyncio.sleep(0.1)
    pytest.fail(f"{len(seen)} of {workers} workers answered:\n{server.log_text()[-3000:]}")
