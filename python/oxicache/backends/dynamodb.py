"""DynamoDB backend, on `aiobotocore <https://pypi.org/project/aiobotocore/>`_.

Install with ``pip install 'oxicache[dynamodb]'``. The table has one string partition key
``k`` and is billed per request; :meth:`DynamoDBBackend.ensure_table` (or the
:meth:`DynamoDBBackend.create_table` shortcut) creates it and turns on DynamoDB's TTL on the
``exp`` attribute. Any endpoint speaking the DynamoDB API works (``endpoint_url``), e.g. moto's
server or DynamoDB Local for tests.

One item per entry:

============  ====  ===============================================================
``k``         S     the key (over 1 KiB: a readable head + ``#`` + BLAKE2b hex; the
                    whole key is then kept in ``fk`` for prefix invalidation)
``v``         B     the value
``exp``       N     expiry, whole Unix seconds rounded up: DynamoDB's TTL attribute
``xp``        N     expiry to the millisecond, checked on every read
``p``         S     the backend's ``prefix`` (scopes :meth:`~DynamoDBBackend.clear`)
``tags``      SS    the entry's tags (absent without tags)
============  ====  ===============================================================

``get`` is one ``GetItem``, strongly consistent by default so that a read never returns an entry
an invalidation has just deleted (``consistent_read=False`` halves the read cost and lets reads
lag writes by about a second). DynamoDB deletes
expired items in the background, typically within ~48 hours, and returns them until then, so
the expiry is checked on read: an expired item is a miss. ``set`` is one ``PutItem``; an item
over DynamoDB's 400 KB (attribute names plus values) or a value over ``max_item_size`` is
refused with :class:`~oxicache.exceptions.EntryTooLarge` before any I/O.

``delete_prefix``, ``delete_tag`` and ``clear`` are a paginated, strongly consistent ``Scan``
of the whole table filtered to this backend's ``prefix`` (and the key prefix or tag), with
``BatchWriteItem`` deletes of what matched: O(size of the table) in time and read capacity,
meant for invalidation, never the hot path. Their count is what they deleted (expired
leftovers included).

botocore's own retries are off (``total_max_attempts=1``): the caller
(:mod:`oxicache.backends.guard`) owns deadlines and retries. The one exception is
``BatchWriteItem``'s ``UnprocessedItems`` (a partial success, not an error), which are sent
again a bounded number of times.

The aiobotocore client is created lazily, inside the running event loop, held by an
``AsyncExitStack`` that :meth:`~DynamoDBBackend.close` closes; it is created again after a
``fork()`` (the pid changed) or in another event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from ..exceptions import EntryTooLarge
from .inherited import aiohttp_sockets

try:
    from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
    from aiobotocore.session import get_session  # type: ignore[import-untyped]
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "oxicache.backends.dynamodb needs aiobotocore: pip install 'oxicache[dynamodb]'"
    ) from e

__all__ = ["DEFAULT_MAX_ITEM_SIZE", "ITEM_SIZE_LIMIT", "DynamoDBBackend", "item_size"]

#: DynamoDB's largest item: the UTF-8 lengths of attribute names plus the values' sizes.
ITEM_SIZE_LIMIT = 400 * 1024
#: The default ``max_item_size``: room left for the key, tags and the other attributes.
DEFAULT_MAX_ITEM_SIZE = ITEM_SIZE_LIMIT - 8 * 1024
_KEY_LIMIT = 1024  # partition keys may be 2048 bytes; longer keys are hashed well below that
_BATCH = 25  # BatchWriteItem's limit
_UNPROCESSED_ROUNDS = 8


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """DynamoDB's size of a low-level item (``{"name": {"S": ...}}``), in bytes."""
    size = 0
    for name, typed in item.items():
        size += len(name.encode())
        for kind, value in typed.items():
            if kind == "S":
                size += len(value.encode("utf-8", "surrogatepass"))
            elif kind == "B":
                size += len(value)
            elif kind == "N":
                size += _number_size(value)
            elif kind == "SS":
                size += sum(len(s.encode("utf-8", "surrogatepass")) for s in value)
            else:  # pragma: no cover - this module writes no other types
                raise ValueError(f"unsupported attribute type {kind}")
    return size


def _table_key(key: str) -> tuple[str, bool]:
    raw = key.encode("utf-8", "surrogatepass")
    if len(raw) <= _KEY_LIMIT:
        return key, False
    head = raw[:512].decode("utf-8", "ignore")
    return f"{head}#{hashlib.blake2b(raw, digest_size=20).hexdigest()}", True


@dataclass(slots=True)
class _Client:
    pid: int
    loop: asyncio.AbstractEventLoop
    stack: AsyncExitStack
    client: Any


class DynamoDBBackend:
    """A :class:`~oxicache.backends.Backend` on one DynamoDB table.

    ``region``, ``endpoint_url`` and the credentials default to botocore's usual chain (the
    ``AWS_*`` variables, config files, instance roles); pass them for a local endpoint.
    ``scan_page_size`` caps the items each invalidation ``Scan`` request reads (its ``Limit``;
    default: DynamoDB's 1 MB pages), to spread an invalidation's read capacity over more calls.
    """

    name = "dynamodb"

    def __init__(
        self,
        table: str = "oxicache",
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        prefix: str = "oxicache",
        max_item_size: int = DEFAULT_MAX_ITEM_SIZE,
        consistent_read: bool = True,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        max_pool_connections: int = 16,
        scan_page_size: int | None = None,
    ) -> None:
        self.table = table
        self.region = region
        self.endpoint_url = endpoint_url
        self.prefix = prefix
        self.max_item_size: int | None = max_item_size
        self.consistent_read = consistent_read
        self.scan_page_size = scan_page_size
        self._credentials = {
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
        }
        self._config = {
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_pool_connections": max_pool_connections,
            "retries": {"total_max_attempts": 1},
        }
        self._state: _Client | None = None
        #: A forked child's copy of its parent's client, kept unused (`inherited_sockets`).
        self._inherited: list[_Client] = []

    def __repr__(self) -> str:
        return f"DynamoDBBackend(table={self.table!r}, prefix={self.prefix!r})"

    # --- the client -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Creates this process's client (for the running event loop)."""
        await self._client()

    async def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        state = self._state
        if state is not None and state.pid == os.getpid() and state.loop is loop:
            return state.client
        # Forked or another loop: the old client's sockets are not ours to close.
        self._state = None
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            get_session().create_client(
                "dynamodb",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=AioConfig(**self._config),
                **self._credentials,
            )
        )
        current = self._state
        if current is not None and current.pid == os.getpid() and current.loop is loop:
            await stack.aclose()  # another task created one meanwhile
            return current.client
        self._state = _Client(os.getpid(), loop, stack, client)
        return client

    def inherited_sockets(self) -> list[Any]:
        """After ``fork()``, in the child: the sockets of the parent's client's HTTP
        connections (kept alive), which this process must let go of without using them (it
        makes its own client when used). This object forgets the client, keeping it unused
        (no finaliser of its session runs in the child)."""
        state, self._state = self._state, None
        if state is None:
            return []
        self._inherited.append(state)
        endpoint = getattr(state.client, "_endpoint", None)
        sessions = getattr(getattr(endpoint, "http_session", None), "_sessions", None) or {}
        return aiohttp_sockets(sessions.values())

    async def close(self) -> None:
        state, self._state = self._state, None
        if state is None or state.pid != os.getpid():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if state.loop is running:
            await state.stack.aclose()

    # --- the table --------------------------------------------------------------------------

    @classmethod
    async def create_table(cls, table: str = "oxicache", **kwargs: Any) -> DynamoDBBackend:
        """A backend on ``table`` (the other arguments as for the constructor), after
        :meth:`ensure_table`."""
        backend = cls(table, **kwargs)
        await backend.ensure_table()
        return backend

    async def ensure_table(self, *, wait: float = 60.0) -> None:
        """Creates the table if it does not exist (partition key ``k``, on-demand billing),
        waits up to ``wait`` seconds for it to be ACTIVE, and enables TTL on ``exp``."""
        client = await self._client()
        try:
            await client.create_table(
                TableName=self.table,
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        deadline = time.monotonic() + wait
        while True:
            described = await client.describe_table(TableName=self.table)
            if described["Table"]["TableStatus"] == "ACTIVE":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"DynamoDB table {self.table!r} not ACTIVE after {wait} s")
            await asyncio.sleep(0.5)
        ttl = await client.describe_time_to_live(TableName=self.table)
        spec = ttl.get("TimeToLiveDescription", {})
        if spec.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            if spec.get("AttributeName") != "exp":
                raise RuntimeError(
                    f"DynamoDB table {self.table!r} has TTL on {spec.get('AttributeName')!r},"
                    " not 'exp'"
                )
            return
        await client.update_time_to_live(
            TableName=self.table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"},
        )

    # --- reads ------------------------------------------------------------------------------

    async def _read(self, key: str, *, value: bool) -> dict[str, Any] | None:
        names = {"#p": "p", "#x": "xp", "#e": "exp"}
        if value:
            names["#v"] = "v"
        client = await self._client()
        reply = await client.get_item(
            TableName=self.table,
            Key={"k": {"S": _table_key(key)[0]}},
            ConsistentRead=self.consistent_read,
            ProjectionExpression=", ".join(names),
            ExpressionAttributeNames=names,
        )
        item: dict[str, Any] | None = reply.get("Item")
        if item is None or item.get("p", {}).get("S") != self.prefix:
            return None
        return item

    @staticmethod
    def _expires_at(item: dict[str, Any]) -> float:
        raw = item.get("xp", item.get("exp", {})).get("N")
        return float(raw) if raw is not None else 0.0

    async def get(self, key: str) -> bytes | None:
        item = await self._read(key, value=True)
        if item is None or self._expires_at(item) <= time.time():
            return None  # absent, another prefix's, or expired but not yet deleted
        value = item.get("v", {}).get("B")
        return bytes(value) if value is not None else None

    async def ttl(self, key: str) -> float | None:
        item = await self._read(key, value=False)
        if item is None:
            return None
        left = self._expires_at(item) - time.time()
        return left if left > 0 else None

    # --- writes -----------------------------------------------------------------------------

    async def set(self, key: str, value: bytes, ttl: float, tags: Sequence[str] = ()) -> None:
        if self.max_item_size is not None and len(value) > self.max_item_size:
            raise EntryTooLarge(
                f"{len(value)} bytes is over the DynamoDB backend's max_item_size"
                f" ({self.max_item_size})"
            )
        if not ttl > 0:
            raise ValueError(f"ttl must be > 0, got {ttl!r}")
        expires_at = time.time() + ttl
        table_key, hashed = _table_key(key)
        item: dict[str, dict[str, Any]] = {
            "k": {"S": table_key},
            "v": {"B": value},
            "exp": {"N": str(math.ceil(expires_at))},
            "xp": {"N": f"{expires_at:.3f}"},
            "p": {"S": self.prefix},
        }
        if hashed:
            item["fk"] = {"S": key}
        if tags:
            item["tags"] = {"SS": sorted(set(tags))}
        size = item_size(item)
        if size > ITEM_SIZE_LIMIT:
            raise EntryTooLarge(
                f"the DynamoDB item would be {size} bytes, over the {ITEM_SIZE_LIMIT} limit"
            )
        client = await self._client()
        await client.put_item(TableName=self.table, Item=item)

    async def delete(self, key: str) -> bool:
        client = await self._client()
        try:
            await client.delete_item(
                TableName=self.table,
                Key={"k": {"S": _table_key(key)[0]}},
                ConditionExpression="attribute_exists(k)",
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # --- invalidation: Scan + BatchWriteItem (O(table), not the hot path) --------------------

    async def delete_prefix(self, prefix: str) -> int:
        if prefix == "":
            return await self._delete_matching("#p = :p", {}, {})
        return await self._delete_matching(
            "#p = :p AND (begins_with(#k, :x) OR begins_with(#fk, :x))",
            {"#fk": "fk"},
            {":x": {"S": prefix}},
        )

    async def delete_tag(self, tag: str) -> int:
        return await self._delete_matching(
            "#p = :p AND contains(#tags, :t)", {"#tags": "tags"}, {":t": {"S": tag}}
        )

    async def clear(self) -> None:
        await self._delete_matching("#p = :p", {}, {})

    async def _delete_matching(
        self, condition: str, names: dict[str, str], values: dict[str, dict[str, str]]
    ) -> int:
        client = await self._client()
        scan: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": condition,
            "ProjectionExpression": "#k",
            "ExpressionAttributeNames": {"#p": "p", "#k": "k", **names},
            "ExpressionAttributeValues": {":p": {"S": self.prefix}, **values},
            "ConsistentRead": True,
        }
        if self.scan_page_size is not None:
            scan["Limit"] = self.scan_page_size
        deleted = 0
        while True:
            page = await client.scan(**scan)
            keys = [item["k"]["S"] for item in page.get("Items", [])]
            for i in range(0, len(keys), _BATCH):
                deleted += await self._batch_delete(client, keys[i : i + _BATCH])
            last = page.get("LastEvaluatedKey")
            if not last:
                return deleted
            scan["ExclusiveStartKey"] = last

    async def _batch_delete(self, client: Any, keys: list[str]) -> int:
        requests = [{"DeleteRequest": {"Key": {"k": {"S": k}}}} for k in keys]
        for round_ in range(_UNPROCESSED_ROUNDS):
            reply = await client.batch_write_item(RequestItems={self.table: requests})
            requests = reply.get("UnprocessedItems", {}).get(self.table, [])
            if not requests:
                return len(keys)
            await asyncio.sleep(min(0.05 * 2**round_, 1.0))
        raise RuntimeError(
            f"DynamoDB left {len(requests)} deletes unprocessed after {_UNPROCESSED_ROUNDS}"
            " rounds (throttled)"
        )
