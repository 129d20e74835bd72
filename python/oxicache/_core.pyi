"""Type stub of the Rust extension ``oxicache._core`` (hand-written; checked by stubtest)."""

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, final

__all__ = [
    "DEFAULT_STATUSES",
    "BlobStore",
    "Bypass",
    "Hit",
    "Key",
    "MemoryStore",
    "MiddlewareEngine",
    "MiddlewarePending",
    "Pending",
    "ResponseAction",
    "RouteCache",
    "RouteConfig",
    "__version__",
    "build_key",
    "bypass_status",
    "decode_entry",
    "encode_entry",
    "etag_for",
    "if_none_match_hits",
    "inspect_entry",
    "pack_frame",
    "parse_cache_control",
    "parse_memcached_replies",
    "path_tag_of",
    "unpack_frame",
]

__version__: str
#: The statuses stored by default (RFC 9111 §3, with the safe subset: no errors, 206, 304).
DEFAULT_STATUSES: tuple[int, ...]

@final
class Key:
    """A cache key: canonical bytes and their BLAKE3 digest. Hashable."""

    @property
    def hex(self) -> str:
        """The digest as 64 hex characters."""
    @property
    def canonical(self) -> bytes:
        """The canonical, length-prefixed key bytes."""
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class MemoryStore:
    """The in-process store: bounded by bytes, TTL per entry, hot keys kept."""

    def __new__(cls, max_bytes: int = ..., max_entry_bytes: int = ...) -> MemoryStore: ...
    def reset(self, max_bytes: int, max_entry_bytes: int) -> None:
        """Replaces the store with an empty one of the given limits."""
    @property
    def max_bytes(self) -> int: ...
    @property
    def max_entry_bytes(self) -> int: ...
    @property
    def weighted_size(self) -> int:
        """Sum of the charged sizes of all entries, in bytes."""
    def now(self) -> float:
        """The store clock, Unix seconds."""
    def advance_clock(self, seconds: float) -> None:
        """Moves the store clock (tests: expiry without sleeping)."""
    def clear(self) -> None: ...
    def invalidate(
        self,
        *,
        namespace: str | None = None,
        route: str | None = None,
        path: bytes | None = None,
        path_hash: str | int | None = None,
        tag: str | None = None,
    ) -> None:
        """Invalidates entries matching every given label. ``path_hash`` names a path by its
        hash: a backend path tag (``"path:<16 hex>"``), its 16 hex digits, or the integer.
        ``tag``: an application tag given to entries (``CacheRequest.tag``)."""
    def remove_digest(self, digest: str) -> bool:
        """Removes the entry whose key digest is ``digest`` (64 hex digits, the last field of
        a backend key); True if one was there."""
    def run_pending_tasks(self) -> None: ...
    def __len__(self) -> int: ...
    def stats(self) -> dict[str, int]: ...

@final
class Pending:
    """The context of a miss, passed back to ``RouteCache.complete``."""

    @property
    def key(self) -> Key: ...
    @property
    def revalidate(self) -> bool: ...
    @property
    def refresh_early(self) -> bool:
        """The entry is fresh and this request was drawn to refresh it ahead of expiry
        (``refresh_ahead``); ``stale_reply`` is then the entry's hit reply."""
    @property
    def stale_reply(self) -> Hit | None:
        """A reply from the stale entry, inside a stale-while-revalidate/-if-error window."""
    @property
    def serve_stale(self) -> bool:
        """True when the stale reply may be sent now while the entry refreshes."""
    @property
    def remote_key(self) -> str | None:
        """The key in the remote backend; None for a memory-only route."""
    @property
    def path_tag(self) -> str:
        """The backend tag of the request's path."""
    @property
    def only_if_cached(self) -> bool:
        """The request said only-if-cached (RFC 9111 §5.2.1.7)."""

#: A reply ``(status, headers, body)``: what a lookup returns on a hit, and every other reply
#: the engines build. At runtime ``Hit`` is ``tuple`` (dispatch with ``x.__class__ is tuple``):
#: a pyclass measured hundreds of instructions more per hit.
Hit = tuple[int, list[tuple[bytes, bytes]], bytes]

@final
class Bypass:
    """A request the cache does not handle: the app answers it, labelled ``BYPASS`` with the
    reason (``Cache-Status: oxicache; fwd=bypass; detail=<reason>``, RFC 9211)."""

    def __new__(cls, reason: str) -> Bypass: ...
    @property
    def reason(self) -> str:
        """Why: ``method``, ``credentials``, ``request-body``, ``unsafe`` (the middleware: an
        unsafe method, whose success invalidates the URI), ..."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ResponseAction:
    """What ``MiddlewareEngine.on_response`` asks of the app's response as it starts."""

    #: Pass it on as it comes, with the fields returned; it will not be stored.
    PASS: ResponseAction
    #: Hold it back until complete: it may be stored (``MiddlewareEngine.complete``).
    BUFFER: ResponseAction
    #: The app confirmed the stale entry with a 304: ``MiddlewareEngine.freshen``.
    FRESHEN: ResponseAction
    #: The app failed inside the stale-if-error window: send the stale reply.
    STALE_ON_ERROR: ResponseAction
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __int__(self) -> int: ...

@final
class BlobStore:
    """Keys, values, TTLs and tags in memory: ``MemoryBackend``'s store."""

    def __new__(cls, max_bytes: int = ..., max_entry_bytes: int = ...) -> BlobStore: ...
    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl: float, tags: list[str] = ...) -> bool: ...
    def ttl(self, key: str) -> float | None: ...
    def delete(self, key: str) -> bool: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def delete_tag(self, tag: str) -> int: ...
    def clear(self) -> None: ...
    def advance_clock(self, seconds: float) -> None: ...
    def __len__(self) -> int: ...

@final
class RouteConfig:
    """A route's cache settings, checked once (``ConfigError``): a positive finite ``ttl``,
    ``tier`` one of ``memory``, ``remote``, ``two-tier``, ``query_key`` one of ``raw``,
    ``sorted``, ``declared`` (``query_names``: the declared parameters), ``refresh_ahead``
    finite and not negative. Negative stale windows and ``local_ttl`` read as 0 (a non-finite
    ``local_ttl`` too)."""

    def __new__(
        cls,
        *,
        namespace: str,
        route: str,
        ttl: float,
        prefix: str = ...,
        stale_while_revalidate: float = 0.0,
        stale_if_error: float = 0.0,
        vary: Sequence[str] = ...,
        statuses: Sequence[int] = ...,
        cache_control: str = ...,
        per_user: bool = False,
        public: bool = False,
        private: bool = False,
        weak_etag: bool = True,
        honor_no_cache: bool = True,
        url_in_key: bool = True,
        header_name: str = ...,
        tier: str = ...,
        local_ttl: float = 5.0,
        compress_threshold: int = 1024,
        refresh_ahead: float = 0.0,
        expires: bool = False,
        query_key: str = "raw",
        query_names: Sequence[str] = ...,
    ) -> RouteConfig: ...
    @property
    def namespace(self) -> str:
        """The namespace label of the route's entries."""
    @property
    def route(self) -> str:
        """The route label of its entries."""
    @property
    def ttl(self) -> float:
        """Freshness lifetime, seconds."""
    @property
    def prefix(self) -> str:
        """The application-wide key prefix."""
    @property
    def stale_while_revalidate(self) -> float: ...
    @property
    def stale_if_error(self) -> float: ...
    @property
    def vary(self) -> list[str]:
        """Request headers the key includes (and the response's Vary names)."""
    @property
    def statuses(self) -> list[int]:
        """Statuses that may be stored."""
    @property
    def cache_control(self) -> str:
        """Directives added to the outgoing Cache-Control."""
    @property
    def per_user(self) -> bool: ...
    @property
    def public(self) -> bool: ...
    @property
    def private(self) -> bool:
        """Answers must not be stored by shared caches downstream."""
    @property
    def weak_etag(self) -> bool: ...
    @property
    def honor_no_cache(self) -> bool: ...
    @property
    def url_in_key(self) -> bool: ...
    @property
    def header_name(self) -> str: ...
    @property
    def tier(self) -> str:
        """``memory``, ``remote`` or ``two-tier``."""
    @property
    def local_ttl(self) -> float: ...
    @property
    def compress_threshold(self) -> int: ...
    @property
    def refresh_ahead(self) -> float:
        """Seconds before expiry in which a hit may refresh the entry; 0: never."""
    @property
    def expires(self) -> bool:
        """Stored responses carry ``Expires`` (RFC 9111 §5.3)."""
    @property
    def query_key(self) -> str:
        """How the key holds the query string: ``raw``, ``sorted`` or ``declared``."""
    @property
    def query_names(self) -> list[str]:
        """With ``query_key="declared"``: the query parameters the key holds."""

@final
class RouteCache:
    """Per-route cache settings and the hit path."""

    def __new__(
        cls, store: MemoryStore, fallback: Callable[[Any], Any], config: RouteConfig
    ) -> RouteCache: ...
    @property
    def config(self) -> RouteConfig:
        """The settings this cache was built with."""
    def lookup(
        self,
        scope: MutableMapping[str, Any],
        values: tuple[Any, ...],
        per_user: bool | None = None,
    ) -> Hit | Pending | Bypass:
        """A Hit, a Pending on a miss (the handler runs), a Bypass otherwise."""
    def arm(self, route: object, inclusion: object, keyed: list[str]) -> bool:
        """Lets ``lookup_call`` answer the calls ``route`` serves through ``inclusion``; once
        per cache (False when armed already)."""
    def lookup_call(
        self, scope: MutableMapping[str, Any], kwargs: dict[str, Any]
    ) -> Hit | Pending | Bypass | None:
        """``lookup`` with the armed keyed arguments of ``kwargs``; None for a call the
        Python checks must see (another route or inclusion, a bypass, nothing armed)."""
    def replay_pending(self, pending: Pending) -> Hit | None: ...
    def complete(
        self,
        pending: Pending,
        status: int,
        raw_headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        *,
        ttl: float | None = None,
        tags: Sequence[str] | None = None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool, bytes | None]:
        """Stores the miss's response when allowed; the reply to send, whether it was stored,
        and the framed envelope to write to the backend (None for memory routes). ``ttl``
        replaces the route's freshness lifetime for this entry (``max-age``, ``Expires``,
        expiry); ``tags`` are application tags the entry carries in memory."""
    def accept(self, pending: Pending, frame: bytes) -> Hit | Pending | str | None:
        """Judges an entry the backend returned: a reply, a Pending with a stale reply,
        ``"corrupt"``, or None when it may not answer."""
    def write_skipped_status(self, pending: Pending, detail: str) -> bytes:
        """The ``Cache-Status`` member of a miss whose backend write was skipped (``detail``
        says why; ``stored`` only with two tiers, whose local tier holds it)."""
    def gateway_timeout(self) -> Hit:
        """The 504 of only-if-cached when nothing usable is stored."""
    @property
    def remembered_frames(self) -> int:
        """How many keys' last backend frames this route keeps decoded (remote tier)."""
    def call_key(self, values: tuple[Any, ...]) -> Key: ...
    def get_value(self, key: Key, waiter: bool = False) -> bytes | None:
        """A memoized value from memory (a remote-only route: only for coalesced waiters)."""
    def set_value(self, key: Key, value: bytes) -> tuple[bool, bytes | None]:
        """Stores a value in memory; whether it was stored, and the frame for the backend."""
    def remote_key_of(self, key: Key) -> str | None:
        """The backend key of a memoized call; None for a memory route."""
    def accept_value(self, key: Key, frame: bytes) -> bytes | str | None:
        """The value in a backend frame while fresh; None when stale; ``"corrupt"``."""
    def remove(self, key: Key) -> bool: ...
    @property
    def route(self) -> str: ...
    @property
    def namespace(self) -> str: ...

@final
class MiddlewarePending:
    """A miss or revalidation of the middleware, passed back to the engine."""

    @property
    def forward_headers(self) -> list[tuple[bytes, bytes]] | None:
        """Headers to forward to the app (validators added, the client's conditionals
        removed), or None to forward the request unchanged."""
    @property
    def stale_reply(self) -> Hit | None:
        """A reply from the stale entry (stale-while-revalidate / stale-if-error)."""
    @property
    def serve_stale(self) -> bool:
        """True when the stale reply is to be sent now while the entry refreshes."""
    @property
    def flight(self) -> str:
        """Identifies the URL for single-flight."""
    @property
    def read_key(self) -> str | None:
        """The backend key to read, then give to ``MiddlewareEngine.accept``; None: decided."""
    @property
    def remote_key(self) -> str | None:
        """The URL's backend key (its entry or its variants index); None in memory."""
    @property
    def foreign(self) -> bool:
        """The backend's frame was foreign or damaged: read as a miss, overwritten."""
    @property
    def revalidating(self) -> bool:
        """A revalidation, or a stored entry the client refused: takes no cross-process lock."""
    @property
    def path_tag(self) -> str:
        """The backend tag of the request's path (``path:<16 hex>``)."""

@final
class MiddlewareEngine:
    """The decisions of CacheMiddleware (RFC 9111 shared cache)."""

    def __new__(
        cls,
        store: MemoryStore,
        *,
        prefix: str = ...,
        app_namespace: str = ...,
        shared: bool = True,
        statuses: Sequence[int] = ...,
        share_authorized: bool = False,
        honor_no_cache: bool = True,
        max_body: int = ...,
        header_name: str = ...,
        tier: str = "memory",
        local_ttl: float = 5.0,
        compress_threshold: int = 1024,
        max_variants: int = 64,
    ) -> MiddlewareEngine: ...
    @property
    def max_body(self) -> int: ...
    @property
    def max_variants(self) -> int:
        """With a backend, the most variants (``Vary``) of one URL it holds."""
    @property
    def tier(self) -> str:
        """Where entries live: ``memory``, ``remote`` or ``two-tier``."""
    def lookup(self, scope: MutableMapping[str, Any]) -> Hit | MiddlewarePending | Bypass:
        """A Hit, a MiddlewarePending when the app must answer (or, with ``read_key``, the
        backend must be read first), else a Bypass."""
    def lookup_coalesced(self, scope: MutableMapping[str, Any]) -> Hit | MiddlewarePending | Bypass:
        """``lookup`` after waiting for another request of this process: with a remote
        backend, the entry that request left in memory answers too."""
    def accept(
        self, pending: MiddlewarePending, frame: bytes | None, *, coalesced: bool = False
    ) -> Hit | MiddlewarePending:
        """What the backend returned for ``pending.read_key``: a Hit, or the next pending."""
    def write_skipped_status(self, pending: MiddlewarePending, detail: str) -> bytes:
        """The Cache-Status member of a stored response whose backend write was skipped."""
    def reread(self, pending: MiddlewarePending) -> MiddlewarePending:
        """``pending``'s request, to read from the backend again from the URL's key."""
    def on_response(
        self, pending: MiddlewarePending, status: int, raw_headers: Sequence[tuple[bytes, bytes]]
    ) -> tuple[ResponseAction, list[tuple[bytes, bytes]]]:
        """What to do with the response, and the fields to send it with on ``PASS``."""
    def not_stored_headers(
        self, raw_headers: Sequence[tuple[bytes, bytes]], detail: str
    ) -> list[tuple[bytes, bytes]]: ...
    def bypass_label(
        self, raw_headers: Sequence[tuple[bytes, bytes]], reason: str
    ) -> list[tuple[bytes, bytes]]:
        """The fields labelling a response the cache passed through (BYPASS, fwd=bypass)."""
    def complete(
        self,
        pending: MiddlewarePending,
        status: int,
        raw_headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
    ) -> tuple[Hit, list[tuple[str, bytes, float]]]:
        """The reply to send, and the backend writes to make after it."""
    def freshen(
        self, pending: MiddlewarePending, raw_headers: Sequence[tuple[bytes, bytes]]
    ) -> tuple[Hit, list[tuple[str, bytes, float]]]: ...
    def invalidate(
        self,
        scope: MutableMapping[str, Any],
        status: int,
        raw_headers: Sequence[tuple[bytes, bytes]],
    ) -> int:
        """After an unsafe method: drops the stored entries of its URIs (RFC 9111 §4.4)."""
    def invalidated_keys(
        self,
        scope: MutableMapping[str, Any],
        status: int,
        raw_headers: Sequence[tuple[bytes, bytes]],
    ) -> list[str]:
        """With a backend, the keys an unsafe method's response invalidates there."""

def parse_cache_control(lines: Sequence[bytes]) -> dict[str, bool | int]:
    """Directives present in ``Cache-Control`` field lines; junk is ignored."""

def etag_for(body: bytes, weak: bool = True) -> str:
    """The entity tag oxicache derives from a body."""

def if_none_match_hits(lines: Sequence[bytes], etag: str) -> bool:
    """RFC 9110 §13.1.2 weak comparison of If-None-Match lines with a stored ETag."""

def encode_entry(
    key: Key,
    status: int,
    headers_list: Sequence[tuple[bytes, bytes]],
    body: bytes,
    *,
    stored_at: float,
    ttl: float,
    etag: str = ...,
    stale_while_revalidate: float = 0.0,
    stale_if_error: float = 0.0,
    flags: int = 0,
) -> bytes:
    """The versioned binary envelope of an entry."""

def decode_entry(data: bytes, key: Key) -> dict[str, Any]:
    """Decodes an envelope stored under ``key``; raises EntryDecodeError otherwise."""

def inspect_entry(data: bytes) -> dict[str, Any]:
    """Decodes an envelope found in a backend without knowing its request (an operator's
    inspection): the dict of :func:`decode_entry`, checksum verified, key not checked;
    raises EntryDecodeError for anything corrupt, truncated or foreign."""

def build_key(values: tuple[Any, ...], fallback: Callable[[Any], Any]) -> Key:
    """A key from values, with the routes' encoding."""

def bypass_status(reason: str) -> bytes:
    """The ``Cache-Status`` member of a request answered without the cache
    (``oxicache; fwd=bypass; detail=<reason>``, RFC 9211; a reason that is not a plain token
    reads ``other``)."""

def path_tag_of(path: bytes) -> str:
    """The backend tag under which remote entries of a raw request path are written."""

def pack_frame(data: bytes, threshold: int = 1024) -> bytes:
    """The stored frame of an encoded envelope: zstd-compressed when ``data`` is longer than
    ``threshold`` bytes and that saves space, raw otherwise."""

def unpack_frame(data: bytes, max_len: int) -> bytes:
    """The envelope inside a stored frame; raises EntryDecodeError if ``data`` is foreign, cut
    short or corrupt, or would decode to more than ``max_len`` bytes."""

def parse_memcached_replies(
    data: bytes,
) -> tuple[list[dict[bytes, tuple[bytes, int | None]] | bytes | str], int]:
    """The complete memcached text-protocol replies at the start of ``data`` and how many bytes
    they took: per reply, ``{key: (value, cas)}`` for ``get``/``gets``, the bytes of a storage
    reply (``b"STORED"``...), or the ``str`` line of a refused command. Raises ValueError when
    ``data`` is not memcached's protocol."""
