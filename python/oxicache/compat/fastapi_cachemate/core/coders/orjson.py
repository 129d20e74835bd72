"""``OrjsonCoderManager``: JSON coding (orjson when installed, else the standard library).

Accepted by ``CacheSetup.setup(coder_manager=...)``; oxicache stores responses as sent, so
no coder is involved in caching them."""

from __future__ import annotations

import importlib
import json
from typing import Any

from ..types import CoderManager

__all__ = ["OrjsonCoderManager"]

orjson: Any
try:
    orjson = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - depends on the installation
    orjson = None


class OrjsonCoderManager(CoderManager):
    def encode(self, value: Any) -> bytes:
        if orjson is not None:
            return bytes(orjson.dumps(value))
        return json.dumps(value, separators=(",", ":"), default=str).encode()

    def decode(self, data: bytes) -> Any:
        if orjson is not None:
            return orjson.loads(data)
        return json.loads(data)
