"""The steps of a decorated endpoint's answer, each on its own: which one a lookup result goes
to (bypass, stale, follow, lead), and the stale rule (RFC 5861 §3). The whole pipeline over
HTTP is covered by test_decorator.py, test_stale.py and the coordination tests."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.responses import Response

from oxicache import _core, cache

app = FastAPI()


@app.get("/items")
@cache(ttl=60)
async def items() -> dict[str, int]:
    return {"n": 1}


STEPS = ("bypass", "answer_stale", "follow", "lead")


def _cached() -> Any:
    return items.__oxicache__  # type: ignore[attr-defined]


def _pending(
    *, stale: bool, serve_stale: bool = True, key: str = "k", early: bool = False
) -> SimpleNamespace:
    return SimpleNamespace(
        key=key,
        remote_key=None,
        stale_reply=(200, [], b"stale") if stale else None,
        serve_stale=serve_stale,
        refresh_early=early,
    )


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each step replaced on the instance by one that records its name."""
    called: list[str] = []
    cached = _cached()
    for name in STEPS:

        def step(*args: Any, _name: str = name, **kwargs: Any) -> Any:
            called.append(_name)
            response = Response(_name)
            if _name == "answer_stale":
                return response

            async def done() -> Response:
                return response

            return done()

        monkeypatch.setattr(cached, name, step)
    return called


async def _answer(result: Any) -> Response:
    cached = _cached()
    response: Response = await cached.answer(None, None, {}, [], result)
    return response


async def test_a_reason_goes_to_bypass(calls: list[str]) -> None:
    await _answer(_core.Bypass("credentials"))
    assert calls == ["bypass"]


async def test_a_miss_with_no_one_ahead_leads(calls: list[str]) -> None:
    await _answer(_pending(stale=False, key="lead-me"))
    assert calls == ["lead"]


async def test_a_miss_behind_a_leader_follows(calls: list[str]) -> None:
    cached = _cached()
    leading = cached.flights.lead("busy")
    try:
        await _answer(_pending(stale=False, key="busy"))
    finally:
        cached.flights.land("busy", leading, False)
    assert calls == ["follow"]


async def test_a_fresh_entry_drawn_for_refresh_leads(calls: list[str]) -> None:
    await _answer(_pending(stale=True, serve_stale=False, key="refresh-me", early=True))
    assert calls == ["lead"]


async def test_a_fresh_entry_already_refreshing_is_answered_from_the_entry(
    calls: list[str],
) -> None:
    cached = _cached()
    leading = cached.flights.lead("refreshing")
    try:
        response = await _answer(
            _pending(stale=True, serve_stale=False, key="refreshing", early=True)
        )
    finally:
        cached.flights.land("refreshing", leading, False)
    assert calls == []
    assert response.body == b"stale"


async def test_a_stale_entry_inside_its_window_is_answered_stale(calls: list[str]) -> None:
    await _answer(_pending(stale=True))
    assert calls == ["answer_stale"]


@pytest.mark.parametrize(
    ("stale", "serve_stale", "resources", "expected"),
    [
        (True, True, False, True),
        (True, False, False, False),  # outside stale-while-revalidate: refresh first
        (False, True, False, False),  # nothing stale to answer with
        (True, True, True, False),  # yield dependencies close with the request
    ],
)
def test_may_answer_stale(
    monkeypatch: pytest.MonkeyPatch, stale: bool, serve_stale: bool, resources: bool, expected: bool
) -> None:
    cached = _cached()
    monkeypatch.setattr(cached, "plan", SimpleNamespace(resources=resources))
    pending = _pending(stale=stale, serve_stale=serve_stale)
    assert cached.may_answer_stale(pending) is expected


async def test_follow_replays_the_leaders_entry() -> None:
    """A follower waits for the leader and answers from what it stored, without running the
    handler (the leader's entry is in the route's store by then)."""
    cached = _cached()
    leading = cached.flights.lead("shared")
    replayed = (200, [(b"content-type", b"application/json")], b'{"n":1}')
    rc = SimpleNamespace(replay_pending=lambda pending: replayed)

    async def leader() -> None:
        await asyncio.sleep(0)
        cached.flights.land("shared", leading, True)

    task = asyncio.ensure_future(leader())
    response = await cached.follow(rc, _pending(stale=False, key="shared"), None, None, {}, [])
    await task
    assert response.body == b'{"n":1}'
