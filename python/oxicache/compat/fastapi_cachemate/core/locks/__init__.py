"""fastapi-cachemate's lock managers: :mod:`.redis`."""
