"""The options of ``@cache``, checked when the decorator is applied: a mistake is a
:class:`~oxicache.ConfigError` naming the fix, never a surprise at request time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from ..codec import Codec
from ..durations import parse_ttl
from ..exceptions import ConfigError
from ..keys import QUERY_KEYS
from ..statuses import DEFAULT_STATUS_CODES, storable_statuses

if TYPE_CHECKING:
    pass

KeyBuilder = Callable[[Request | None, dict[str, Any]], Any]


@dataclass(frozen=True)
class _Options:
    ttl: float | None
    namespace: str | None
    key_builder: KeyBuilder | None
    vary: tuple[str, ...]
    status_codes: tuple[int, ...]
    public: bool
    private: bool
    immutable: bool
    stale_while_revalidate: float
    stale_if_error: float
    cache_control: str
    per_user: bool | None
    ignore_args: tuple[str, ...]
    codec: Codec | None
    #: Whether the route's OpenAPI operation shows what the cache adds
    #: (:mod:`oxicache.integrations.openapi`).
    openapi: bool = True
    #: None: the settings' default (``configure(refresh_ahead=..., query_key=..., expires=...)``).
    refresh_ahead: float | None = None
    query_key: str | None = None
    expires: bool | None = None


def _options(
    ttl: float | int | timedelta | str | None,
    *,
    namespace: str | None = None,
    key_builder: KeyBuilder | None = None,
    vary: Iterable[str] = (),
    status_codes: Iterable[int] = DEFAULT_STATUS_CODES,
    public: bool = False,
    private: bool = False,
    immutable: bool = False,
    stale_while_revalidate: float | int | timedelta | str | None = None,
    stale_if_error: float | int | timedelta | str | None = None,
    cache_control: str | None = None,
    per_user: bool | None = None,
    ignore_args: Iterable[str] = (),
    codec: Codec | None = None,
    openapi: bool = True,
    refresh_ahead: float | int | timedelta | str | None = None,
    query_key: str | None = None,
    expires: bool | None = None,
) -> _Options:
    """The decorator's options, checked."""
    if public and private:
        raise ConfigError("a response cannot be both public and private: choose one")
    if private and per_user is False:
        raise ConfigError(
            "private=True keys entries per client (Authorization/Cookie), which contradicts"
            " per_user=False: drop one of them"
        )
    if key_builder is not None and not callable(key_builder):
        raise ConfigError(f"key_builder must be a function, got {key_builder!r}")
    if isinstance(vary, str) or isinstance(ignore_args, str):
        raise ConfigError("vary and ignore_args take a list of names, not a single string")
    if not isinstance(openapi, bool):
        raise ConfigError(f"openapi must be True or False, got {openapi!r}")
    codes = storable_statuses(status_codes, option="status_codes")
    if query_key is not None and query_key not in QUERY_KEYS:
        accepted = ", ".join(repr(q) for q in QUERY_KEYS)
        raise ConfigError(f"query_key must be one of {accepted}, got {query_key!r}")
    if expires is not None and not isinstance(expires, bool):
        raise ConfigError(f"expires must be True or False, got {expires!r}")
    options = _Options(
        ttl=parse_ttl(ttl) if ttl is not None else None,
        namespace=namespace,
        key_builder=key_builder,
        vary=tuple(vary),
        status_codes=codes,
        public=public,
        private=private,
        immutable=immutable,
        stale_while_revalidate=_window(stale_while_revalidate),
        stale_if_error=_window(stale_if_error),
        cache_control=_extra_directives(cache_control),
        per_user=per_user,
        ignore_args=tuple(ignore_args),
        codec=codec,
        openapi=openapi,
        refresh_ahead=None if refresh_ahead is None else _window(refresh_ahead),
        query_key=query_key,
        expires=expires,
    )
    if (
        options.ttl is not None
        and options.refresh_ahead is not None
        and options.refresh_ahead >= options.ttl
    ):
        raise ConfigError(
            f"refresh_ahead={refresh_ahead!r} is not shorter than ttl={ttl!r}: every hit could"
            " refresh the entry; give a window shorter than the TTL (a tenth of it, say)"
        )
    for name in options.vary:
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise ConfigError(f"vary names header fields; {name!r} is not one")
    return options


#: Directives ``cache_control=`` may not carry, with what to write instead: ``no-store``
#: contradicts storing the response at all (RFC 9111 §5.2.2.5); the others are set by an
#: option of their own, which the decorator also applies to its own entries (a second
#: ``max-age`` would conflict with the one it sends, RFC 9111 §4.2.1). ``no-cache`` stays
#: allowed: clients revalidate, and the decorator answers them from its entry.
_OWN_OPTION = {
    "no-store": "the route would store what it tells every cache not to; drop @cache instead",
    "private": "write private=True (entries are then keyed per client)",
    "public": "write public=True",
    "max-age": "write ttl=...",
    "immutable": "write immutable=True",
    "stale-while-revalidate": "write stale_while_revalidate=...",
    "stale-if-error": "write stale_if_error=...",
}


def _extra_directives(cache_control: str | None) -> str:
    """``cache_control=`` checked: further directives (``no-transform``, ``s-maxage=...``,
    ``must-revalidate``), none that contradicts caching or duplicates an option."""
    text = (cache_control or "").strip().strip(",")
    for part in text.split(","):
        name = part.split("=", 1)[0].strip().lower()
        if name in _OWN_OPTION:
            raise ConfigError(f"cache_control={cache_control!r}: {name}: {_OWN_OPTION[name]}")
        if any(c in part for c in "\r\n\0"):
            raise ConfigError(f"cache_control={cache_control!r} holds a line break or NUL")
    return text


def _window(value: float | int | timedelta | str | None) -> float:
    if value is None or (not isinstance(value, bool) and value == 0):
        return 0.0
    return parse_ttl(value)
