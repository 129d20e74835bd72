"""RFC 9111 conformance harness: the cache-tests.fyi suite against an ASGI cache middleware
(run.py drives it, proxy.py is the adapter; see run.py)."""
