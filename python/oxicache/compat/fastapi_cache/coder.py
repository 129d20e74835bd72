"""Coders: how the compat ``@cache`` stores the values of *plain functions*.

Endpoints never go through a coder: oxicache stores the rendered response (status, headers,
body bytes) and replays it on a hit, with no decoding or re-validation. A coder given to
``@cache(coder=...)`` or ``FastAPICache.init(coder=...)`` other than :class:`JsonCoder` is used
for memoized plain functions; with :class:`JsonCoder` (the default) oxicache's own codec is used
(JSON through pydantic by return annotation, else pickle), which gives back the very types
returned (a tuple stays a tuple).
"""

from __future__ import annotations

import datetime
import json
import pickle
from decimal import Decimal
from typing import Any, ClassVar

from starlette.responses import Response

__all__ = ["Coder", "JsonCoder", "PickleCoder"]


class Coder:
    """Base class: ``encode(value) -> bytes``, ``decode(bytes) -> value`` (class methods)."""

    #: pydantic ``TypeAdapter`` per type, for :meth:`decode_as_type`.
    _adapters: ClassVar[dict[Any, Any]] = {}

    @classmethod
    def encode(cls, value: Any) -> bytes:
        raise NotImplementedError

    @classmethod
    def decode(cls, value: bytes) -> Any:
        raise NotImplementedError

    @classmethod
    def decode_as_type(cls, value: bytes, *, type_: Any) -> Any:
        """``decode``, then validated as ``type_`` by pydantic when it is not None (a model,
        a dataclass, ``tuple[int, int]``...); raises pydantic's ``ValidationError``."""
        result = cls.decode(value)
        if type_ is None:
            return result
        adapter = Coder._adapters.get(type_)
        if adapter is None:
            from pydantic import TypeAdapter

            adapter = Coder._adapters[type_] = TypeAdapter(type_)
        return adapter.validate_python(result)


def _tagged(value: Any) -> Any:
    """``json.dumps`` fallback: dates and decimals as tagged objects, the rest through
    FastAPI's ``jsonable_encoder`` (models, dataclasses, UUIDs, enums...)."""
    if isinstance(value, datetime.datetime):
        return {"val": value.isoformat(), "_spec_type": "datetime"}
    if isinstance(value, datetime.date):
        return {"val": value.isoformat(), "_spec_type": "date"}
    if isinstance(value, Decimal):
        return {"val": str(value), "_spec_type": "decimal"}
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(value)


_UNTAG: dict[str, Any] = {
    "datetime": datetime.datetime.fromisoformat,
    "date": datetime.date.fromisoformat,
    "decimal": Decimal,
}


def _untag(obj: dict[str, Any]) -> Any:
    kind = obj.get("_spec_type")
    if not kind:
        return obj
    convert = _UNTAG.get(kind)
    if convert is None:
        raise TypeError(f"unknown _spec_type {kind!r}")
    return convert(obj["val"])


class JsonCoder(Coder):
    """JSON; ``datetime``, ``date`` and ``Decimal`` come back as such (standard-library
    types: fastapi-cache2 returned pendulum's), other values as their JSON form unless a type
    is given to :meth:`decode_as_type`. A ``Response`` is stored as its body."""

    @classmethod
    def encode(cls, value: Any) -> bytes:
        if isinstance(value, Response):
            return bytes(value.body)
        return json.dumps(value, default=_tagged).encode()

    @classmethod
    def decode(cls, value: bytes) -> Any:
        return json.loads(value.decode(), object_hook=_untag)


class PickleCoder(Coder):
    """``pickle``: any picklable value, same type back. A ``Response`` is stored as its body.
    Only for data this application wrote itself (unpickling runs code)."""

    @classmethod
    def encode(cls, value: Any) -> bytes:
        if isinstance(value, Response):
            value = bytes(value.body)
        return pickle.dumps(value)

    @classmethod
    def decode(cls, value: bytes) -> Any:
        return pickle.loads(value)

    @classmethod
    def decode_as_type(cls, value: bytes, *, type_: Any) -> Any:
        return cls.decode(value)  # pickle restores the type itself
