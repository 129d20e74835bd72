"""``DynamoBackend(table_name, region)``: oxicache's DynamoDB engine."""

from __future__ import annotations

from typing import Any

from ....backends.dynamodb import DynamoDBBackend as _Engine
from ._engine import EngineBackend

__all__ = ["DynamoBackend"]


class DynamoBackend(EngineBackend):
    """oxicache's :class:`oxicache.backends.DynamoDBBackend` on ``table_name``.

    The table's layout is oxicache's, not fastapi-cache2's: a string partition key ``k`` and
    TTL on ``exp`` (``DynamoDBBackend.create_table`` makes one); a table made for
    fastapi-cache2 (key ``key``, TTL ``ttl``) must be replaced. Credentials come from the
    environment as before. ``await init()`` and ``await close()`` are kept (the engine
    connects lazily, so ``init`` has nothing left to do). Further keyword arguments
    (``endpoint_url=``, credentials, timeouts...) go to ``DynamoDBBackend``.
    """

    def __init__(self, table_name: str, region: str | None = None, **options: Any) -> None:
        self.table_name = table_name
        self.region = region
        self.options = options

    def make_engine(self, prefix: str) -> _Engine:
        return _Engine(self.table_name, region=self.region, prefix=prefix, **self.options)

    async def init(self) -> None:
        return None

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.close()
