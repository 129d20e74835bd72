"""``OxicacheSettings``: every option of :func:`oxicache.configure` from ``OXICACHE_*``
environment variables (``pip install oxicache[settings]``, on pydantic-settings).

::

    from oxicache.integrations.settings import OxicacheSettings

    OxicacheSettings().apply()        # reads the environment (and .env if you pass _env_file)

Variables left unset keep their current value; set ones are checked when the settings are
read (a ``pydantic.ValidationError`` naming the variable and the reason), then applied by
:meth:`OxicacheSettings.apply`. The README's "Settings" section lists them all.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, create_model, field_validator

from ..config import FIELDS, KINDS, Settings, check_setting, configure

try:
    from pydantic_settings import BaseSettings, SettingsConfigDict
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "OxicacheSettings needs pydantic-settings: pip install 'oxicache[settings]'"
    ) from exc

__all__ = ["OxicacheSettings"]


class _FromEnvironment(BaseSettings):
    """What every generated settings class shares: the prefix, the backend URL, the reader and
    :meth:`apply`."""

    model_config = SettingsConfigDict(env_prefix="OXICACHE_", extra="ignore")

    #: Backend URL (``redis://...``, ``memcached://...``, ``dynamodb://...``, ``memory://``).
    url: str | None = None

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("*", mode="before")
    @classmethod
    def _read(cls, value: Any, info: ValidationInfo) -> Any:
        """Every setting read and checked as :func:`oxicache.configure` reads it (sizes like
        ``"64MiB"``, durations like ``"500ms"``, flags like ``"true"``); unset stays None."""
        name = str(info.field_name)
        if value is None or name not in KINDS:
            return value
        return check_setting(name, value)

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


def _optional(name: str) -> Any:
    info = FIELDS[name]
    annotation: Any = info.annotation
    return (annotation | None, Field(default=None, description=info.description))


#: Every field of :class:`oxicache.Settings`, optional (``None``: "not set, keep the value in
#: force"), read from ``OXICACHE_<NAME>`` (case-insensitive), plus ``url``.
OxicacheSettings: type[_FromEnvironment] = create_model(
    "OxicacheSettings",
    __base__=_FromEnvironment,
    __module__=__name__,
    __doc__=(
        "The settings of :func:`oxicache.configure` read from ``OXICACHE_<NAME>`` variables"
        " (and a ``.env`` file if given): :meth:`apply` configures oxicache with those set."
    ),
    **{name: _optional(name) for name in KINDS},
)
