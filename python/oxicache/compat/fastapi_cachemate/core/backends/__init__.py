"""fastapi-cachemate's backends: :mod:`.redis`."""
