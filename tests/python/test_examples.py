"""The demo app answers as the README and `make demo` say."""

from __future__ import annotations

import pytest

from examples import demo_app


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    demo_app.handler_runs.clear()


async def test_items_miss_then_hit(client) -> None:
    async with client(demo_app.app) as c:
        first = await c.get("/items")
        second = await c.get("/items")
    assert first.headers["x-cache"] == "MISS" and second.headers["x-cache"] == "HIT"
    assert first.content == second.content and len(first.json()) == 20
    assert demo_app.handler_runs == {"list_items": 1}


async def test_report_is_sync_and_cached_for_ninety_minutes(client) -> None:
    async with client(demo_app.app) as c:
        first = await c.get("/report")
        second = await c.get("/report")
    assert first.headers["cache-control"] == "max-age=5400"
    assert second.headers["x-cache"] == "HIT"
    assert demo_app.handler_runs == {"report": 1}


async def test_me_is_per_user_and_never_served_without_token(client) -> None:
    async with client(demo_app.app) as c:
        alice = await c.get("/me", headers={"authorization": "Bearer alice"})
        bob = await c.get("/me", headers={"authorization": "Bearer bob"})
        again = await c.get("/me", headers={"authorization": "Bearer alice"})
        anonymous = await c.get("/me")
    assert alice.json() == {"user": "alice"} and bob.json() == {"user": "bob"}
    assert again.headers["x-cache"] == "HIT" and again.json() == {"user": "alice"}
    assert anonymous.status_code == 401
    assert alice.headers["cache-control"].startswith("private")
