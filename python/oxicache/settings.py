"""``OxicacheSettings``: every option of :func:`oxicache.configure` from ``OXICACHE_*``
environment variables (``pip install oxicache[settings]``, on pydantic-settings).

::

    from oxicache.settings import OxicacheSettings

    OxicacheSettings().apply()        # reads the environment (and .env if you pass _env_file)

Variables left unset keep their current value; set ones are checked when the settings are
read (a ``pydantic.ValidationError`` naming the variable and the reason), then applied by
:meth:`OxicacheSettings.apply`. The README's "Settings" section lists them all.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from .config import Settings, check_setting, configure

try:
    from pydantic_settings import BaseSettings, SettingsConfigDict
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "OxicacheSettings needs pydantic-settings: pip install 'oxicache[settings]'"
    ) from exc

__all__ = ["OxicacheSettings"]


class OxicacheSettings(BaseSettings):
    """The options of :func:`oxicache.configure`, read from ``OXICACHE_<NAME>`` variables
    (case-insensitive); ``None`` means "not set: keep the value in force"."""

    model_config = SettingsConfigDict(env_prefix="OXICACHE_", extra="ignore")

    #: Backend URL (``redis://...``, ``memcached://...``, ``dynamodb://...``, ``memory://``).
    url: str | None = None
    max_size: int | None = None
    max_entry_size: int | None = None
    default_ttl: float | None = None
    namespace: str | None = Field(default=None, min_length=1)
    prefix: str | None = Field(default=None, min_length=1)
    header_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+$")
    enabled: bool | None = None
    honor_request_no_cache: bool | None = None
    weak_etags: bool | None = None
    lock_timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    distributed_single_flight: bool | None = None
    lock_lease: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    two_tier: bool | None = None
    local_ttl: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    backend_timeout: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    backend_write_timeout: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    breaker_failures: int | None = Field(default=None, ge=1)
    breaker_open_after: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    breaker_reset: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    compress_threshold: int | None = Field(default=None, ge=0)
    metrics: bool | None = None

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "max_size",
        "max_entry_size",
        "default_ttl",
        "lock_timeout",
        "lock_lease",
        "local_ttl",
        "backend_timeout",
        "backend_write_timeout",
        "breaker_open_after",
        "breaker_reset",
        mode="before",
    )
    @classmethod
    def _read(cls, value: Any, info: ValidationInfo) -> Any:
        """Sizes (``"64MiB"``) and durations (``"500ms"``, ``"1h"``) read and checked as
        :func:`oxicache.configure` reads them."""
        return None if value is None else check_setting(str(info.field_name), value)

    def options(self) -> dict[str, Any]:
        """The options that were set, as :func:`oxicache.configure` keywords."""
        return {
            name: value
            for name, value in self.model_dump(exclude={"url"}).items()
            if value is not None
        }

    def apply(self) -> Settings:
        """Calls :func:`oxicache.configure` with the options that were set (and the backend
        URL, if ``OXICACHE_URL`` is); returns the settings now in force."""
        return configure(self.url, **self.options())
