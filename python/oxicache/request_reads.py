"""What a handler reads from the ``Request`` beyond its arguments.

A handler that takes the ``Request`` can read inputs its cache key does not see: a header
(``request.headers.get("x-api-key")``), the cookies, the client's address, the user an
authentication middleware attached. Serving its stored response to a request that differs in
such an input would hand one client's answer to another. So on a miss the handler gets a
recording view of the request: the header names it reads join the route's key (as ``vary``
does), and reading something that cannot be keyed (the client address, ``request.user``,
``request.session``, ``request.state.*`` where authentication middleware puts the user, a
``request.scope`` entry the key does not hold, every header at once) makes the route answer
uncached from then on. The response of the request that revealed a new input is not stored.

``request.scope`` is recorded only when the handler reads it: Starlette and FastAPI read the
same dict to build ``request.url``, ``request.headers``... (inputs recorded on their own), so
the view hands them the plain dict (told apart by the caller's file: this runs on misses only).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

from starlette.datastructures import URL, Headers, QueryParams
from starlette.requests import Request

__all__ = ["ReadLog", "recording"]


class ReadLog:
    """Header names read, and the first input read that cannot be part of a key."""

    def __init__(self, *, query_keyed: bool = True) -> None:
        self.headers: set[str] = set()
        self.opaque: str | None = None
        #: The key holds the query string as sent; when it holds it sorted or filtered
        #: (``query_key``), reading the query itself is an input the key lacks.
        self.query_keyed = query_keyed

    def query(self, what: str) -> None:
        if not self.query_keyed:
            self.everything(f"{what} (the key holds the query sorted or filtered)")

    def header(self, name: str) -> None:
        self.headers.add(name.lower())

    def everything(self, what: str) -> None:
        if self.opaque is None:
            self.opaque = what


class _RecordingHeaders(Headers):
    def __init__(self, scope: Any, log: ReadLog) -> None:
        super().__init__(scope=scope)
        self._log = log

    def __getitem__(self, key: str) -> str:
        self._log.header(key)
        return super().__getitem__(key)

    def __contains__(self, key: Any) -> bool:
        if isinstance(key, str):
            self._log.header(key)
        return super().__contains__(key)

    def getlist(self, key: str) -> list[str]:
        self._log.header(key)
        return super().getlist(key)

    def keys(self) -> list[str]:  # type: ignore[override]
        self._log.everything("request.headers (all of them)")
        return super().keys()

    def values(self) -> list[str]:  # type: ignore[override]
        self._log.everything("request.headers (all of them)")
        return super().values()

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        self._log.everything("request.headers (all of them)")
        return super().items()

    def __iter__(self) -> Iterator[Any]:
        self._log.everything("request.headers (all of them)")
        return super().__iter__()

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        self._log.everything("request.headers.raw")
        return super().raw


#: ``scope`` keys whose values the key holds (method, scheme, path, query) or that do not
#: depend on the client (the app, the route): reading them reveals nothing.
_KEYED_SCOPE = frozenset(
    {
        "type",
        "asgi",
        "http_version",
        "method",
        "scheme",
        "path",
        "raw_path",
        "query_string",
        "root_path",
        "app_root_path",
        "path_params",
        "server",
        "app",
        "router",
        "route",
        "endpoint",
        "fastapi",
    }
)


def _package_dir(name: str) -> str | None:
    spec = importlib.util.find_spec(name)
    origin = spec.origin if spec is not None else None
    return os.path.dirname(origin) + os.sep if origin else None


#: Files whose reads of ``scope`` are the framework (or oxicache) building its own views.
_FRAMEWORK_DIRS = tuple(
    d for d in (_package_dir("starlette"), _package_dir("fastapi"), _package_dir("oxicache")) if d
)


class _RecordingScope(MutableMapping[str, Any]):
    """The handler's view of ``request.scope``: reads of entries the key does not hold (the
    client, all headers, the state, whatever a middleware put there) are recorded."""

    def __init__(self, scope: dict[str, Any], log: ReadLog) -> None:
        self._scope = scope
        self._log = log

    def _read(self, key: object) -> None:
        if key not in _KEYED_SCOPE:
            self._log.everything(f"request.scope[{key!r}]")
        elif key == "query_string":
            self._log.query("request.scope['query_string']")

    def __getitem__(self, key: str) -> Any:
        self._read(key)
        return self._scope[key]

    def __contains__(self, key: object) -> bool:
        self._read(key)
        return key in self._scope

    def __setitem__(self, key: str, value: Any) -> None:
        self._scope[key] = value

    def __delitem__(self, key: str) -> None:
        del self._scope[key]

    def __iter__(self) -> Iterator[str]:
        self._log.everything("request.scope (all of it)")
        return iter(self._scope)

    def __len__(self) -> int:
        return len(self._scope)


class _RecordingState:
    """The handler's view of ``request.state``: any attribute read is recorded (an
    authentication middleware's user lives there, and no key holds it)."""

    def __init__(self, state: Any, log: ReadLog) -> None:
        object.__setattr__(self, "_state", state)
        object.__setattr__(self, "_log", log)

    def __getattr__(self, name: str) -> Any:
        self._log.everything(f"request.state.{name}")
        return getattr(self._state, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._state, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._state, name)


class _RecordingRequest(Request):
    _log: ReadLog

    @property
    def scope(self) -> Any:
        raw = self.__dict__["_raw_scope"]
        if sys._getframe(1).f_code.co_filename.startswith(_FRAMEWORK_DIRS):
            return raw
        return _RecordingScope(raw, self._log)

    @scope.setter
    def scope(self, value: Any) -> None:
        self.__dict__["_raw_scope"] = value

    # ``request[key]`` and ``iter(request)`` read the scope: recorded by the same rule.
    def __getitem__(self, key: str) -> Any:
        return _RecordingScope(self.__dict__["_raw_scope"], self._log)[key]

    def __iter__(self) -> Iterator[str]:
        return iter(_RecordingScope(self.__dict__["_raw_scope"], self._log))

    @property
    def state(self) -> Any:
        return _RecordingState(super().state, self._log)

    @property
    def headers(self) -> Headers:
        return _RecordingHeaders(self.scope, self._log)

    @property
    def query_params(self) -> QueryParams:
        self._log.query("request.query_params")
        return super().query_params

    @property
    def url(self) -> URL:
        self._log.query("request.url")
        return super().url

    @property
    def cookies(self) -> dict[str, str]:
        self._log.header("cookie")
        return super().cookies

    @property
    def client(self) -> Any:
        self._log.everything("request.client")
        return super().client

    @property
    def user(self) -> Any:
        self._log.everything("request.user")
        return super().user

    @property
    def auth(self) -> Any:
        self._log.everything("request.auth")
        return super().auth

    @property
    def session(self) -> Any:
        self._log.everything("request.session")
        return super().session


def recording(request: Request, log: ReadLog) -> Request:
    """A view of ``request`` for the handler that records into ``log`` what it reads."""
    view = _RecordingRequest(request.scope, request.receive, request._send)
    for cached in ("_body", "_json", "_form", "_stream_consumed"):
        if cached in request.__dict__:
            view.__dict__[cached] = request.__dict__[cached]
    view._log = log
    return view
