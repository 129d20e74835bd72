"""``python -m oxicache``, run as a real subprocess against a real redis-server that an app
filled: what it prints, what it never prints (keys, passwords, bodies unless asked), and the
exit codes scripts rely on (0 done, 1 nothing found or the backend failed, 2 usage)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

import oxicache
from oxicache import cache
from oxicache.backends import remote
from tests.python.servers import RedisServer

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def oxicache_cli(*args: str, env: dict[str, str] | None = None) -> Run:
    """``python -m oxicache ARGS`` in a subprocess, with no ``OXICACHE_*`` variable but
    those given."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OXICACHE_")}
    environ.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oxicache",
        *args,
        cwd=ROOT,
        env=environ,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


@dataclass
class Filled:
    """A Redis keyspace under its own prefix, filled by a real app's misses."""

    url: str
    prefix: str
    items_label: str

    def args(self, *more: str) -> list[str]:
        return ["--url", self.url, "--prefix", self.prefix, *more]


@pytest.fixture
async def filled(redis_server: RedisServer, client: Any) -> AsyncIterator[Filled]:
    prefix = f"cli{uuid.uuid4().hex[:8]}"
    oxicache.configure(redis_server.url, prefix=prefix)
    app = FastAPI()

    @app.get("/items")
    @cache(ttl=60, namespace="catalog")
    async def items(page: int = 1) -> dict[str, Any]:
        return {"page": page, "secret-body-marker": True}

    @app.get("/users/{uid}")
    @cache(ttl=60)
    async def user(uid: int) -> dict[str, int]:
        return {"uid": uid}

    try:
        async with client(app) as c:
            for page in (1, 2, 3):
                assert (await c.get("/items", params={"page": page})).status_code == 200
            assert (await c.get("/users/7")).status_code == 200
        guard = remote.get_backend()
        assert guard is not None
        await guard.drain()  # the writes happen after the responses
        yield Filled(redis_server.url, prefix, items.__oxicache__.label)  # type: ignore[attr-defined]
    finally:
        await remote.close_backend()


async def test_stats_counts_entries_per_route_with_progress_on_stderr(filled: Filled) -> None:
    run = await oxicache_cli(*filled.args("--json", "stats"))
    assert run.code == 0, run.err
    stats = run.json()
    assert stats["backend"] == "redis" and stats["prefix"] == filled.prefix
    assert stats["entries"] == 4 and stats["bytes"] > 0
    by_route = {(r["namespace"], r["route"]): r["entries"] for r in stats["routes"]}
    assert by_route[("catalog", filled.items_label)] == 3
    assert sum(by_route.values()) == 4
    assert "scanned 4 entries" in run.err

    text = await oxicache_cli(*filled.args("--quiet", "stats"))
    assert text.code == 0 and text.err == ""
    assert "entries    4" in text.out and filled.items_label in text.out


async def test_inspect_shows_variants_age_ttl_and_size_never_keys_or_bodies(
    filled: Filled, redis_server: RedisServer
) -> None:
    run = await oxicache_cli(*filled.args("--json", "inspect", "/items?page=2"))
    assert run.code == 0, run.err
    entries = run.json()
    assert len(entries) == 3  # every variant of the path: the query is inside the key's digest
    for entry in entries:
        assert entry["route"] == filled.items_label and entry["namespace"] == "catalog"
        assert entry["status"] == 200 and entry["content_type"] == "application/json"
        assert 0 <= entry["age"] < 30 and 30 < entry["fresh_for"] <= 60
        assert 30 < entry["expires_in"] <= 60
        assert entry["size"] > 0 and entry["body_size"] > 0 and entry["body"] is None
        assert entry["etag"].startswith('W/"')
    assert "secret-body-marker" not in run.out
    # No key material: not the backend keys, nor their digests.
    from tests.python.servers import resp_command

    keys = resp_command(redis_server.port, "KEYS", f"{filled.prefix}:*")
    digests = [k.decode().rsplit(":", 1)[-1] for k in keys]
    assert digests and not any(d in run.out for d in digests)

    text = await oxicache_cli(*filled.args("inspect", "http://example.com/users/7"))
    assert text.code == 0 and "status     200" in text.out and "expires in" in text.out
    assert '{"uid":7}' not in text.out
    shown = await oxicache_cli(*filled.args("inspect", "--show-body", "/users/7"))
    assert shown.code == 0 and '{"uid":7}' in shown.out


async def test_inspect_of_a_url_with_nothing_stored_exits_1(filled: Filled) -> None:
    run = await oxicache_cli(*filled.args("inspect", "/nothing/here"))
    assert run.code == 1 and run.out == ""
    assert "nothing stored for /nothing/here" in run.err


async def test_invalidate_a_route_a_path_then_clear(filled: Filled) -> None:
    run = await oxicache_cli(
        *filled.args("invalidate", "--route", filled.items_label, "--namespace", "catalog")
    )
    assert run.code == 0 and run.out.strip() == "invalidated", run.err
    assert (await oxicache_cli(*filled.args("--json", "stats"))).json()["entries"] == 1

    run = await oxicache_cli(*filled.args("invalidate", "--path", "/users/7"))
    assert run.code == 0, run.err
    assert (await oxicache_cli(*filled.args("--json", "stats"))).json()["entries"] == 0


async def test_clear_needs_yes(filled: Filled) -> None:
    refused = await oxicache_cli(*filled.args("clear"))
    assert refused.code == 2 and "add --yes" in refused.err
    assert (await oxicache_cli(*filled.args("--json", "stats"))).json()["entries"] == 4
    done = await oxicache_cli(*filled.args("clear", "--yes"))
    assert done.code == 0 and done.out.strip() == "cleared"
    assert (await oxicache_cli(*filled.args("--json", "stats"))).json()["entries"] == 0


async def test_the_url_may_come_from_the_environment(filled: Filled) -> None:
    env = {"OXICACHE_URL": filled.url, "OXICACHE_PREFIX": filled.prefix}
    run = await oxicache_cli("--json", "--quiet", "stats", env=env)
    assert run.code == 0 and run.json()["entries"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "required: COMMAND"),
        (("stats",), "give a shared backend with --url or OXICACHE_URL"),
        (("--url", "memory://", "stats"), "oxicache.admin_router()"),
        (("--url", "reddis://localhost", "stats"), "did you mean redis://"),
        (("--url", "redis://127.0.0.1:1/0", "invalidate"), "say what to invalidate"),
        (
            ("--url", "redis://127.0.0.1:1/0", "invalidate", "--tag", "t", "--path", "/"),
            "on its own",
        ),
        (("--url", "redis://127.0.0.1:1/0", "stats", "--bogus"), "unrecognized arguments"),
    ],
)
async def test_usage_and_configuration_errors_exit_2(args: tuple[str, ...], message: str) -> None:
    run = await oxicache_cli(*args)
    assert run.code == 2
    assert message in run.err


async def test_a_backend_that_cannot_answer_exits_1_without_the_password() -> None:
    run = await oxicache_cli("--url", "redis://admin:hunter2@127.0.0.1:1/0", "stats")
    assert run.code == 1
    assert "redis://admin:***@127.0.0.1:1/0" in run.err and "hunter2" not in run.err + run.out


async def test_a_backend_that_cannot_list_its_keys_says_so() -> None:
    run = await oxicache_cli("--url", "memcached://127.0.0.1:1", "stats")
    assert run.code == 1 and "cannot list its keys" in run.err


async def test_help_documents_the_exit_codes() -> None:
    run = await oxicache_cli("--help")
    assert run.code == 0
    assert "Exit codes: 0 done; 1 nothing found" in " ".join(run.out.split())
