"""DynamoDBBackend beyond the shared contract, against moto's DynamoDB server: the table it
makes, expired items DynamoDB still returns, the 400 KB item limit, long keys, paginated
invalidation, and fork safety."""

from __future__ import annotations

import asyncio
import math
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.session import get_session  # type: ignore[import-untyped]

from oxicache.backends.dynamodb import (
    DEFAULT_MAX_ITEM_SIZE,
    ITEM_SIZE_LIMIT,
    DynamoDBBackend,
    item_size,
)
from oxicache.exceptions import EntryTooLarge
from tests.python.conftest import dynamodb_kwargs
from tests.python.servers import DynamoDBServer, free_port


@pytest.fixture
async def backend(
    dynamodb_server: DynamoDBServer, dynamodb_table: str
) -> AsyncIterator[DynamoDBBackend]:
    b = DynamoDBBackend(
        dynamodb_table, prefix="t" + uuid.uuid4().hex[:12], **dynamodb_kwargs(dynamodb_server)
    )
    yield b
    await b.clear()
    await b.close()


@pytest.fixture
async def raw(dynamodb_server: DynamoDBServer) -> AsyncIterator[Any]:
    """A plain aiobotocore DynamoDB client on the same server, to look under the backend."""
    async with get_session().create_client("dynamodb", **dynamodb_server.client_kwargs) as c:
        yield c


def key(b: DynamoDBBackend, *parts: str) -> str:
    return ":".join([b.prefix, *parts])


# --- the table -------------------------------------------------------------------------------


async def test_ensure_table_creates_the_table_with_ttl(
    dynamodb_server: DynamoDBServer, raw: Any
) -> None:
    name = "made-" + uuid.uuid4().hex[:8]
    b = await DynamoDBBackend.create_table(name, **dynamodb_kwargs(dynamodb_server))
    try:
        table = (await raw.describe_table(TableName=name))["Table"]
        assert table["KeySchema"] == [{"AttributeName": "k", "KeyType": "HASH"}]
        assert table["AttributeDefinitions"] == [{"AttributeName": "k", "AttributeType": "S"}]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["TableStatus"] == "ACTIVE"
        ttl = (await raw.describe_time_to_live(TableName=name))["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
        assert ttl["AttributeName"] == "exp"
        await b.ensure_table()  # idempotent on an existing table
        await b.set("oxicache:ns:r:x", b"v", 60)
        assert await b.get("oxicache:ns:r:x") == b"v"
    finally:
        await b.close()
        await raw.delete_table(TableName=name)


async def test_stored_item_layout(backend: DynamoDBBackend, raw: Any) -> None:
    k = key(backend, "ns", "r", "layout")
    before = time.time()
    await backend.set(k, b"\x00value", 90.5, tags=["ns:default", "path:abc", "ns:default"])
    item = (await raw.get_item(TableName=backend.table, Key={"k": {"S": k}}))["Item"]
    assert item["v"] == {"B": b"\x00value"}
    assert item["p"] == {"S": backend.prefix}
    assert sorted(item["tags"]["SS"]) == ["ns:default", "path:abc"]
    exp, xp = int(item["exp"]["N"]), float(item["xp"]["N"])
    assert before + 90.5 <= xp + 0.001 and xp <= time.time() + 90.5
    assert exp == math.ceil(xp) or exp == math.ceil(xp) + 1  # whole seconds, rounded up
    assert "fk" not in item


# --- expiry is checked on read ---------------------------------------------------------------


async def test_expired_item_still_returned_by_dynamodb_is_a_miss(
    backend: DynamoDBBackend, raw: Any
) -> None:
    past = time.time() - 3600  # DynamoDB may keep such an item for ~48 h and return it
    for name, attrs in {
        "both": {"exp": {"N": str(int(past))}, "xp": {"N": f"{past:.3f}"}},
        "exp-only": {"exp": {"N": str(int(past))}},
        "just-expired": {"exp": {"N": str(int(time.time()) + 5)}, "xp": {"N": f"{past:.3f}"}},
    }.items():
        k = key(backend, "ns", "r", name)
        item = {"k": {"S": k}, "v": {"B": b"stale"}, "p": {"S": backend.prefix}, **attrs}
        await raw.put_item(TableName=backend.table, Item=item)
        # The engine does return it...
        assert "Item" in await raw.get_item(TableName=backend.table, Key={"k": {"S": k}})
        # ...the backend does not.
        assert await backend.get(k) is None, name
        assert await backend.ttl(k) is None, name
    # The same hand-written item with an expiry ahead is served: the check is the only filter.
    k = key(backend, "ns", "r", "fresh")
    ahead = time.time() + 120
    item = {
        "k": {"S": k},
        "v": {"B": b"fresh"},
        "p": {"S": backend.prefix},
        "exp": {"N": str(math.ceil(ahead))},
    }
    await raw.put_item(TableName=backend.table, Item=item)
    assert await backend.get(k) == b"fresh"
    left = await backend.ttl(k)
    assert left is not None and 115 < left <= 121


async def test_item_of_another_prefix_is_not_read(backend: DynamoDBBackend, raw: Any) -> None:
    k = key(backend, "ns", "r", "foreign")
    item = {
        "k": {"S": k},
        "v": {"B": b"theirs"},
        "p": {"S": "someone-else"},
        "exp": {"N": str(int(time.time()) + 60)},
    }
    await raw.put_item(TableName=backend.table, Item=item)
    assert await backend.get(k) is None
    await raw.delete_item(TableName=backend.table, Key={"k": {"S": k}})


# --- sizes -----------------------------------------------------------------------------------


def test_item_size_counts_names_and_values() -> None:
    item: dict[str, dict[str, Any]] = {
        "k": {"S": "abc"},  # 1 + 3
        "v": {"B": b"\x00" * 10},  # 1 + 10
        "exp": {"N": "1800000000"},  # 3 + (2 significant digits -> 2)
        "tags": {"SS": ["é", "ab"]},  # 4 + 2 + 2
        "p": {"S": "ключ"},  # 1 + 8
    }
    assert item_size(item) == 4 + 11 + 5 + 8 + 9


async def test_item_limit(backend: DynamoDBBackend) -> None:
    k = key(backend, "ns", "r", "big")
    value = os.urandom(DEFAULT_MAX_ITEM_SIZE)
    await backend.set(k, value, 60, tags=["a"])
    assert await backend.get(k) == value
    with pytest.raises(EntryTooLarge):
        await backend.set(k, value + b"x", 60)
    assert await backend.get(k) == value  # refused before writing: the old item stays


async def test_refused_before_any_io() -> None:
    # Nothing listens there: a request that went out would fail with a connection error.
    b = DynamoDBBackend(
        "nowhere",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with pytest.raises(EntryTooLarge):
        await b.set("p:ns:r:k", b"x" * (DEFAULT_MAX_ITEM_SIZE + 1), 60)
    # Under max_item_size, but the tags push the whole item over DynamoDB's 400 KB.
    tags = [f"tag-{i:05d}-" + "t" * 500 for i in range(40)]
    with pytest.raises(EntryTooLarge):
        await b.set("p:ns:r:k", b"x" * (DEFAULT_MAX_ITEM_SIZE - 10), 60, tags=tags)
    assert item_size({"t": {"SS": tags}}) + DEFAULT_MAX_ITEM_SIZE > ITEM_SIZE_LIMIT
    assert b._state is None  # no client was even created
    await b.close()


# --- keys and invalidation -------------------------------------------------------------------


async def test_long_keys_are_hashed_and_still_invalidated_by_prefix(
    backend: DynamoDBBackend, raw: Any
) -> None:
    route = "é" * 700  # 1400 bytes: over the backend's 1 KiB key budget
    long_keys = [key(backend, "ns", route, f"d{i}") for i in range(3)]
    other = key(backend, "ns", "é" * 699 + "x", "d0")
    for i, k in enumerate([*long_keys, other]):
        await backend.set(k, f"v{i}".encode(), 60)
    for i, k in enumerate(long_keys):
        assert await backend.get(k) == f"v{i}".encode()
    page = await raw.scan(TableName=backend.table)
    mine = [i for i in page["Items"] if i["p"]["S"] == backend.prefix]
    assert all(len(i["k"]["S"].encode()) <= 1024 for i in mine)
    assert sorted(i["fk"]["S"] for i in mine) == sorted([*long_keys, other])
    assert await backend.delete_prefix(key(backend, "ns", route, "")) == 3
    assert [await backend.get(k) for k in long_keys] == [None] * 3
    assert await backend.get(other) == b"v3"


async def test_invalidation_walks_every_scan_page(
    dynamodb_server: DynamoDBServer, dynamodb_table: str
) -> None:
    b = DynamoDBBackend(
        dynamodb_table,
        prefix="t" + uuid.uuid4().hex[:12],
        scan_page_size=7,
        **dynamodb_kwargs(dynamodb_server),
    )
    try:
        keys = [f"{b.prefix}:ns:r:{i}" for i in range(60)]
        for i, k in enumerate(keys):
            await b.set(k, b"v", 60, tags=["even" if i % 2 == 0 else "odd"])
        assert await b.delete_tag("even") == 30
        assert await b.delete_prefix(f"{b.prefix}:ns:") == 30
        assert await b.delete_tag("odd") == 0
        assert [await b.get(k) for k in keys] == [None] * 60
    finally:
        await b.clear()
        await b.close()


# --- client lifecycle ------------------------------------------------------------------------


def test_nothing_connects_at_construction() -> None:
    b = DynamoDBBackend("t", endpoint_url="http://127.0.0.1:1", region="us-east-1")
    assert b._state is None


def test_after_fork_the_child_makes_its_own_client(
    dynamodb_server: DynamoDBServer, dynamodb_table: str
) -> None:
    b = DynamoDBBackend(
        dynamodb_table, prefix="t" + uuid.uuid4().hex[:12], **dynamodb_kwargs(dynamodb_server)
    )
    k = f"{b.prefix}:ns:r:fork"
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(b.set(k, b"parent", 60))
        parent_client = b._state.client if b._state else None
        assert parent_client is not None
        pid = os.fork()
        if pid == 0:
            code = 1
            try:

                async def child() -> None:
                    assert await b.get(k) == b"parent"
                    assert b._state is not None and b._state.client is not parent_client
                    await b.set(k, b"child", 60)
                    await b.close()

                asyncio.run(child())
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert loop.run_until_complete(b.get(k)) == b"child"
        assert b._state is not None and b._state.client is parent_client  # kept in the parent
        loop.run_until_complete(b.clear())
        loop.run_until_complete(b.close())
    finally:
        loop.close()
