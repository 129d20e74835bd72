"""fastapi-redis-cache's time constants and its JSON format for dates and decimals.

The format (``{"val": ..., "_spec_type": "<class 'datetime.datetime'>"}`` for a datetime, a
date or a ``Decimal``) is what fastapi-redis-cache stored in Redis, and what it sent in some
response bodies; :func:`deserialize_json` reads it back, for data you kept in that format.
oxicache's compat module never writes it: responses are rendered as FastAPI renders them.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import BaseModel

__all__ = [
    "ONE_DAY_IN_SECONDS",
    "ONE_HOUR_IN_SECONDS",
    "ONE_MONTH_IN_SECONDS",
    "ONE_WEEK_IN_SECONDS",
    "ONE_YEAR_IN_SECONDS",
    "deserialize_json",
    "serialize_json",
]

ONE_HOUR_IN_SECONDS = 3600
ONE_DAY_IN_SECONDS = 24 * ONE_HOUR_IN_SECONDS
ONE_WEEK_IN_SECONDS = 7 * ONE_DAY_IN_SECONDS
#: A month is 30 days and a year 365, as in fastapi-redis-cache (and oxicache's "1mo", "1y").
ONE_MONTH_IN_SECONDS = 30 * ONE_DAY_IN_SECONDS
ONE_YEAR_IN_SECONDS = 365 * ONE_DAY_IN_SECONDS

#: The formats of the tagged values.
_DATETIME = "%m/%d/%Y %I:%M:%S %p %z"
_DATE = "%m/%d/%Y"


def _tag(kind: type) -> str:
    return str(kind)


def _default(value: Any) -> Any:
    # datetime before date: a datetime is a date too.
    if isinstance(value, datetime):
        return {"val": value.strftime(_DATETIME), "_spec_type": _tag(datetime)}
    if isinstance(value, date):
        return {"val": value.strftime(_DATE), "_spec_type": _tag(date)}
    if isinstance(value, Decimal):
        return {"val": str(value), "_spec_type": _tag(Decimal)}
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return str(value.value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def serialize_json(value: Any) -> str:
    """JSON text of ``value``, dates and decimals tagged as fastapi-redis-cache tags them."""
    return json.dumps(value, default=_default)


def _untag(obj: dict[str, Any]) -> Any:
    kind = obj.get("_spec_type")
    if kind is None:
        return obj
    text = obj.get("val")
    if not isinstance(text, str):
        raise TypeError(f"tagged value {obj!r} has no text")
    if kind == _tag(datetime):
        try:
            return datetime.strptime(text, _DATETIME)
        except ValueError:
            return datetime.fromisoformat(text)
    if kind == _tag(date):
        return datetime.strptime(text, _DATE)  # read back as a datetime, as before
    if kind == _tag(Decimal):
        return Decimal(text)
    raise TypeError(f'"{text}" (type: {kind}) is not JSON serializable')


def deserialize_json(text: str | bytes) -> Any:
    """The value of :func:`serialize_json` text: tagged dates and decimals become
    ``datetime`` (a date too, at midnight) and ``Decimal`` again."""
    return json.loads(text, object_hook=_untag)
