"""What a handler reads from the ``Request`` beyond its arguments.

A handler that takes the ``Request`` can read inputs its cache key does not see: a header
(``request.headers.get("x-api-key")``), the cookies, the client's address, the user an
authentication middleware attached. Serving its stored response to a request that differs in
such an input would hand one client's answer to another. So on a miss the handler gets a
recording view of the request: the header names it reads join the route's key (as ``vary``
does), and reading something that cannot be keyed (the client address, ``request.user``,
``request.session``, every header at once) makes the route answer uncached from then on.
The response of the request that revealed a new input is not stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request

__all__ = ["ReadLog", "recording"]


class ReadLog:
    """Header names read, and the first input read that cannot be part of a key."""

    def __init__(self) -> None:
        self.headers: set[str] = set()
        self.opaque: str | None = None

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


class _RecordingRequest(Request):
    _log: ReadLog

    @property
    def headers(self) -> Headers:
        return _RecordingHeaders(self.scope, self._log)

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
