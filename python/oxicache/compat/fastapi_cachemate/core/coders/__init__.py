"""fastapi-cachemate's coders: :mod:`.orjson`."""
