"""``CacheMiddleware``: a shared HTTP cache (RFC 9111) in front of any ASGI app, answering hits
before the app is called. The ASGI plumbing is :mod:`.asgi`; the HTTP rules run in the Rust
engine."""

from .asgi import CacheMiddleware

__all__ = ["CacheMiddleware"]
