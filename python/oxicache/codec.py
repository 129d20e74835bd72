"""How memoized return values are stored: bytes out, the same types back in.

With a return annotation, values go through pydantic's ``TypeAdapter`` as JSON, so pydantic
models, dataclasses, ``datetime``, ``UUID``, ``Decimal``, enums and their containers come back
as the annotated types (and the bytes are portable to the remote backends of later versions).
Without an annotation, ``pickle`` keeps whatever type the value had; it is only ever read back
from this process's own memory: such functions stay in the in-process store even when a remote
backend is configured (unpickling what a backend returned would run code chosen by whoever can
write to it). Passing ``codec=PickleCodec()`` explicitly opts in to the backend.
``-> bytes`` values are stored as they are.
"""

from __future__ import annotations

import inspect
import pickle
import typing
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["BytesCodec", "Codec", "JsonCodec", "PickleCodec", "codec_for"]


class Codec(Protocol):
    """Turns values into bytes and back."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JsonCodec:
    """JSON through a pydantic ``TypeAdapter`` of the given type."""

    def __init__(self, annotation: Any) -> None:
        from pydantic import TypeAdapter

        self._adapter: Any = TypeAdapter(annotation)

    def dumps(self, value: Any) -> bytes:
        return bytes(self._adapter.dump_json(value))

    def loads(self, data: bytes) -> Any:
        return self._adapter.validate_json(data)


class PickleCodec:
    """``pickle``: any picklable type, for values that never leave the process."""

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


class BytesCodec:
    """``bytes`` kept as they are: the value of a ``-> bytes`` function needs no encoding, and
    JSON cannot carry bytes that are not UTF-8 (images, compressed data...)."""

    def dumps(self, value: Any) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"expected bytes, got {type(value).__name__}")
        return bytes(value)

    def loads(self, data: bytes) -> Any:
        return bytes(data)


def codec_for(func: Callable[..., Any]) -> Codec:
    """A :class:`BytesCodec` for ``-> bytes``, a :class:`JsonCodec` for another return
    annotation, else a :class:`PickleCodec`."""
    try:
        annotation = typing.get_type_hints(func, include_extras=True).get("return")
    except Exception:
        annotation = None
    if annotation is None or annotation is type(None) or annotation is Any:
        return PickleCodec()
    if annotation is bytes:
        return BytesCodec()
    origin = typing.get_origin(annotation)
    if origin is not None and inspect.isclass(origin) and issubclass(origin, typing.Awaitable):
        return PickleCodec()
    try:
        return JsonCodec(annotation)
    except Exception:  # a type pydantic cannot handle: keep it as it is
        return PickleCodec()
