"""Invalidation of memoized functions: one call, a function, a namespace, everything."""

from __future__ import annotations

from typing import Any

import pytest

import oxicache
from oxicache import ConfigError, cache, invalidate


class Runs:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any) -> None:
        self.calls.append(args)

    def count(self, *args: Any) -> int:
        return self.calls.count(args)


def memoized(runs: Runs, namespace: str | None = None, name: str = "f") -> Any:
    async def f(a: int, b: int = 0) -> int:
        runs(name, a, b)
        return a + b

    f.__qualname__ = f.__name__ = name
    return cache(ttl=60, namespace=namespace)(f)


async def test_invalidate_one_call_drops_only_that_call() -> None:
    runs = Runs()
    f = memoized(runs)
    await f(1, 2)
    await f(1, 3)
    await invalidate(f, 1, 2)
    await f(1, 2)
    await f(1, 3)
    assert runs.count("f", 1, 2) == 2
    assert runs.count("f", 1, 3) == 1


async def test_invalidate_binds_arguments_like_the_call() -> None:
    runs = Runs()
    f = memoized(runs)
    await f(a=4)
    await invalidate(f, 4, 0)  # positional, default spelled out
    await f(4)
    assert runs.count("f", 4, 0) == 2
    await invalidate(f, b=0, a=4)
    await f(4, b=0)
    assert runs.count("f", 4, 0) == 3


async def test_invalidate_an_absent_call_is_harmless() -> None:
    runs = Runs()
    f = memoized(runs)
    await invalidate(f, 99)
    await f(1)
    await invalidate(f, 2)
    await f(1)
    assert runs.count("f", 1, 0) == 1


async def test_invalidate_a_sync_function_call() -> None:
    runs = 0

    @cache(ttl=60)
    def load(key: str) -> str:
        nonlocal runs
        runs += 1
        return key.upper()

    load("a")
    load("b")
    await invalidate(load, "a")
    load("a")
    load("b")
    assert runs == 3


async def test_invalidate_with_ignored_args_and_key_builder() -> None:
    runs = 0

    @cache(ttl=60, ignore_args=("db",))
    def get(db: Any, item: int) -> int:
        nonlocal runs
        runs += 1
        return item

    get(object(), 1)
    await invalidate(get, object(), 1)  # the ignored argument may be anything
    get(object(), 1)
    assert runs == 2


async def test_invalidate_route_drops_every_call_of_that_function_only() -> None:
    runs = Runs()
    f, g = memoized(runs, name="f"), memoized(runs, name="g")
    for i in range(3):
        await f(i)
        await g(i)
    await invalidate(route=f)
    for i in range(3):
        await f(i)
        await g(i)
    assert [runs.count("f", i, 0) for i in range(3)] == [2, 2, 2]
    assert [runs.count("g", i, 0) for i in range(3)] == [1, 1, 1]


async def test_invalidate_route_by_label() -> None:
    runs = Runs()
    f = memoized(runs, name="labelled")
    await f(1)
    label = f.__oxicache__.label
    assert label.endswith("labelled")
    await invalidate(route=label)
    await f(1)
    assert runs.count("labelled", 1, 0) == 2
    await invalidate(route="no.such.route")
    await f(1)
    assert runs.count("labelled", 1, 0) == 2


async def test_invalidate_namespace() -> None:
    runs = Runs()
    users = memoized(runs, namespace="users", name="users")
    also_users = memoized(runs, namespace="users", name="profiles")
    items = memoized(runs, namespace="items", name="items")
    plain = memoized(runs, name="plain")
    for fn in (users, also_users, items, plain):
        await fn(1)
    await invalidate(namespace="users")
    for fn in (users, also_users, items, plain):
        await fn(1)
    assert runs.count("users", 1, 0) == 2
    assert runs.count("profiles", 1, 0) == 2
    assert runs.count("items", 1, 0) == 1
    assert runs.count("plain", 1, 0) == 1
    await invalidate(namespace="default")  # the configured default namespace
    await plain(1)
    await items(1)
    assert runs.count("plain", 1, 0) == 2
    assert runs.count("items", 1, 0) == 1


async def test_namespace_and_route_combine() -> None:
    runs = Runs()
    a = memoized(runs, namespace="n1", name="a")
    b = memoized(runs, namespace="n2", name="b")
    await a(1)
    await b(1)
    await invalidate(namespace="n2", route=a)  # nothing is both
    await a(1)
    await b(1)
    assert runs.count("a", 1, 0) == 1 and runs.count("b", 1, 0) == 1
    await invalidate(namespace="n1", route=a)
    await a(1)
    await b(1)
    assert runs.count("a", 1, 0) == 2 and runs.count("b", 1, 0) == 1


async def test_memoized_entries_have_no_path() -> None:
    runs = Runs()
    f = memoized(runs)
    await f(1)
    await invalidate(path="/")
    await f(1)
    assert runs.count("f", 1, 0) == 1


async def test_clear_drops_everything() -> None:
    runs = Runs()
    f = memoized(runs, namespace="x", name="f")
    g = memoized(runs, name="g")
    await f(1)
    await g(1)
    await oxicache.clear()
    assert len(oxicache.get_store()) == 0
    await f(1)
    await g(1)
    assert runs.count("f", 1, 0) == 2 and runs.count("g", 1, 0) == 2


async def test_invalidate_needs_a_target() -> None:
    with pytest.raises(ConfigError):
        await invalidate()
    with pytest.raises(ConfigError):
        await invalidate(namespace=None, route=None, path=None)


async def test_invalidate_refuses_undecorated_functions() -> None:
    async def plain(x: int) -> int:
        return x

    with pytest.raises(ConfigError, match="not decorated"):
        await invalidate(plain, 1)
    with pytest.raises(ConfigError, match="not decorated"):
        await invalidate(route=plain)


async def test_call_arguments_without_a_function_are_refused() -> None:
    with pytest.raises(ConfigError):
        await invalidate(namespace="n", a=1)


async def test_invalidate_with_wrong_arguments_raises_type_error() -> None:
    runs = Runs()
    f = memoized(runs)
    with pytest.raises(TypeError):
        await invalidate(f, 1, 2, 3)


async def test_invalidate_with_unkeyable_arguments_raises() -> None:
    @cache(ttl=60)
    async def f(x: Any) -> int:
        return 1

    with pytest.raises(oxicache.UnkeyableArgument):
        await invalidate(f, object())


async def test_invalidated_entries_are_gone_from_the_store() -> None:
    runs = Runs()
    f = memoized(runs, namespace="gone")
    for i in range(10):
        await f(i)
    store = oxicache.get_store()
    store.run_pending_tasks()
    assert len(store) == 10
    await invalidate(namespace="gone")
    store.run_pending_tasks()
    assert len(store) == 0
    assert store.weighted_size == 0
