"""fastapi-cachemate's ``core`` package layout: backends, locks, coders, compression, types."""
