"""fastapi-cachemate's compression: :mod:`.zlib`."""
