"""``RedisConfig``: the settings of ``AsyncRedisCacheBackend.load_from_config``."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

__all__ = ["DEFAULT_REDIS_PREFIX", "RedisConfig"]

DEFAULT_REDIS_PREFIX = "fastapi_cachex:"


class RedisConfig(BaseModel):
    """Where the Redis server is, as fastapi-cachex's model names it."""

    host: str = "localhost"
    port: int = Field(default=6379, ge=1, le=65535)
    password: SecretStr | None = None
    db: int = Field(default=0, ge=0)
    socket_timeout: float = 1.0
    socket_connect_timeout: float = 1.0
    key_prefix: str = DEFAULT_REDIS_PREFIX
    protocol: int = Field(default=2, ge=2, le=3)
