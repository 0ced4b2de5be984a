"""Settings shared by every process, read from the environment.

Every settings class subclasses :class:`ServiceSettings`: the common one reads
unprefixed variables (``REDIS_URL``, ``DATABASE_URL``…); a service's own sets
only its prefix (``MEDIA_``…) and its fields, and is loaded once per process by
``runtime.service_settings``. When ``nightshift up`` runs the platform on
embedded servers it writes their addresses to ``var/run/local.env``, which is
read as a fallback so that the CLI finds the running platform without any set-up.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nightshift.common.errors import ConfigurationError
from nightshift.common.keyring import KeyRing, development_ring_text, is_development_ring
from nightshift.common.redis_client import RedisTLS, uses_tls

#: Where ``nightshift up`` records the addresses of the embedded servers.
LOCAL_ENV_FILE = "var/run/local.env"

#: Retry delays in milliseconds used when neither the actor nor the
#: environment says otherwise: 1 s, 5 s, 25 s, then the dead letters.
DEFAULT_RETRY_DELAYS_MS = (1000, 5000, 25000)

#: Key rings: (field, purpose, exact key length or None). Both are required in production.
KEY_RINGS = {"message_signing_keys": ("signing", None), "sealing_keys": ("sealing", 32)}


class ServiceSettings(BaseSettings):
    """Base of every settings class: subclasses set only ``env_prefix`` and their fields.

    Example::

        class MediaSettings(ServiceSettings):
            model_config = SettingsConfigDict(env_prefix="MEDIA_")

            max_pixels: int = Field(default=50_000_000, ge=10_000)

    pydantic merges the subclass's ``model_config`` with this one, so the env file
    fallback (``var/run/local.env``), ``extra="ignore"`` and ``frozen`` hold for
    every service. Load one through ``runtime.service_settings(MediaSettings)``.
    """

    model_config = SettingsConfigDict(env_file=LOCAL_ENV_FILE, extra="ignore", frozen=True)


class CommonSettings(ServiceSettings):
    """What every Nightshift process needs to know (unprefixed variables)."""

    environment: Literal["development", "production", "test"] = "development"
    redis_url: str = Field(description="Redis for application state (locks, dedup, rate limits).")
    #: Sentinels to ask for the current primary (``host:port,host:port``); see ``redis_ha``.
    redis_sentinels: str | None = None
    #: The name the sentinels monitor the primary under.
    redis_sentinel_master: str = "nightshift"
    #: Replicas that must acknowledge each enqueue (``WAIT``) before it is accepted; 0: none.
    redis_wait_replicas: int = Field(default=0, ge=0)
    redis_wait_timeout_ms: int = Field(default=1000, ge=1)
    #: A Redis reply awaited longer than this is a ``TimeoutError`` (a black-holed connection
    #: must not hang a publisher); idle ``BLPOP`` waits are kept to half of it, and it must
    #: outlast the job event stream's 1 s ``XREAD`` block, hence at least 2.
    redis_socket_timeout_s: float = Field(default=5.0, ge=2.0)
    #: How long connecting to Redis may take before ``ConnectionError``.
    redis_connect_timeout_s: float = Field(default=2.0, gt=0)
    #: A connection idle this long is PINGed before it is used again (a dropped one is replaced); 0: never.
    redis_health_check_interval_s: int = Field(default=30, ge=0)
    #: Dramatiq's maintenance uses KEYS, so the broker lives on a database of its own.
    broker_redis_db: int = Field(default=1, ge=0, le=15)
    #: The CA that signs the Redis server's certificate (``rediss://`` only; the system's CAs otherwise).
    redis_tls_ca_file: str | None = None
    #: A client certificate for Redis servers that require one (may hold its key too).
    redis_tls_cert_file: str | None = None
    #: The client certificate's key, when not in ``REDIS_TLS_CERT_FILE``.
    redis_tls_key_file: str | None = None
    #: PostgreSQL TLS goes in the URL: ``?sslmode=verify-full&sslrootcert=…&sslcert=…&sslkey=…``.
    database_url: str
    storage_url: str = "file://var/storage"
    mail_backend: Literal["outbox", "smtp", "sendgrid"] = "outbox"
    outbox_dir: str = "var/outbox"
    otel_exporter_otlp_endpoint: str | None = None
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    timezone: str = "Europe/Paris"
    retry_delays_ms: tuple[int, ...] = DEFAULT_RETRY_DELAYS_MS
    #: A message older than this without a heartbeat from its worker is redelivered.
    heartbeat_timeout_ms: int = Field(default=5000, ge=1000)
    #: How often each worker looks for messages held by dead workers.
    recovery_interval_ms: int = Field(default=1000, ge=100)
    #: Time given to in-flight work on SIGTERM before it is requeued.
    shutdown_grace_ms: int = Field(default=30000, ge=0)
    #: Default per-message time limit.
    task_time_limit_ms: int = Field(default=10 * 60 * 1000, ge=1000)
    #: Job records and audit are written in batches at most this often.
    record_flush_interval_ms: int = Field(default=200, ge=10)
    #: HMAC keys of message signatures, ``<id>:<base64>[@<retired at>],…`` (see ``keyring``);
    #: required in production, a fixed development key elsewhere.
    message_signing_keys: SecretStr | None = Field(default=None, validate_default=True)
    #: AES-256-GCM keys of sealed (personal) message fields, same format, 32-byte keys;
    #: required in production, a fixed development key elsewhere.
    sealing_keys: SecretStr | None = Field(default=None, validate_default=True)
    #: Where job records wait on disk when PostgreSQL is down longer than the memory
    #: buffer lasts; unset, recording blocks instead (back-pressure). Never dropped.
    record_spill_dir: str | None = None
    health_host: str = "0.0.0.0"  # noqa: S104 - containers are probed from outside
    health_port: int = Field(default=8100, ge=0, le=65535)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file")
    @classmethod
    def _redis_tls_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not uses_tls(info.data.get("redis_url", "rediss://")):
            raise ValueError("is set but REDIS_URL does not start with rediss://")
        if not Path(value).is_file():
            raise ValueError(f"no such file: {value}")
        if info.field_name == "redis_tls_key_file" and not info.data.get("redis_tls_cert_file"):
            raise ValueError("is set without REDIS_TLS_CERT_FILE")
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinel_addresses(cls, value: str | None) -> str | None:
        if value:
            from nightshift.common.redis_ha import parse_sentinels

            parse_sentinels(value)
        return value

    @model_validator(mode="after")
    def _wait_within_socket_timeout(self) -> CommonSettings:
        if self.redis_wait_timeout_ms / 1000 >= self.redis_socket_timeout_s:
            raise ValueError(
                f"REDIS_WAIT_TIMEOUT_MS ({self.redis_wait_timeout_ms}) must be shorter than "
                f"REDIS_SOCKET_TIMEOUT_S ({self.redis_socket_timeout_s}): WAIT blocks on the socket"
            )
        return self

    def redis_socket_options(self) -> dict[str, Any]:
        """The redis-py timeouts every client of the platform gets (see ``redis_ha.redis_client``)."""
        return {
            "socket_timeout": self.redis_socket_timeout_s,
            "socket_connect_timeout": self.redis_connect_timeout_s,
            "health_check_interval": self.redis_health_check_interval_s,
        }

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("message_signing_keys", "sealing_keys")
    @classmethod
    def _key_ring(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        assert info.field_name is not None
        purpose, key_bytes = KEY_RINGS[info.field_name]
        production = info.data.get("environment") == "production"
        if value is None:
            if production:
                raise ValueError("must be set in production (the development key is public)")
            return None
        try:
            ring = KeyRing.parse(value.get_secret_value(), variable=info.field_name.upper(), key_bytes=key_bytes)
        except ConfigurationError as error:
            raise ValueError(str(error).partition(": ")[2]) from None
        if production and is_development_ring(ring, purpose):
            raise ValueError("holds the development key, which is public: not in production")
        return value

    def signing_keys(self) -> KeyRing:
        """The ring of ``MESSAGE_SIGNING_KEYS`` (the development ring when unset, outside production)."""
        return self._ring("message_signing_keys")

    def sealing_key_ring(self) -> KeyRing:
        """The ring of ``SEALING_KEYS`` (the development ring when unset, outside production)."""
        return self._ring("sealing_keys")

    def _ring(self, field: str) -> KeyRing:
        purpose, key_bytes = KEY_RINGS[field]
        value: SecretStr | None = getattr(self, field)
        text = value.get_secret_value() if value is not None else development_ring_text(purpose)
        return KeyRing.parse(text, variable=field.upper(), key_bytes=key_bytes)

    @property
    def redis_tls(self) -> RedisTLS | None:
        """The TLS material every Redis client of this process uses (``None``: none configured)."""
        if not (self.redis_tls_ca_file or self.redis_tls_cert_file):
            return None
        return RedisTLS(self.redis_tls_ca_file, self.redis_tls_cert_file, self.redis_tls_key_file)

    @property
    def broker_url(self) -> str:
        """The Redis URL of the broker's own database."""
        return with_redis_db(self.redis_url, self.broker_redis_db)


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def with_redis_db(url: str, db: int) -> str:
    """Return *url* pointing at Redis database *db*.

    Parameters:
      url: A ``redis://`` or ``rediss://`` URL, with or without a database.
      db: The database number.
    """
    head, _, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    host = rest.split("/", 1)[0]
    suffix = f"?{query}" if query else ""
    return f"{scheme}://{host}/{db}{suffix}"


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """Build *cls* from the environment or stop the process naming what is wrong.

    Raises:
      SystemExit: With a message naming every missing or malformed variable.
    """
    try:
        return cls()
    except ValidationError as error:
        prefix = str(cls.model_config.get("env_prefix", "") or "")
        problems = []
        for item in error.errors():
            name = (prefix + "_".join(str(part) for part in item["loc"][:1])).upper()
            problems.append(f"  {name}: {item['msg']}")
        message = "Invalid configuration:\n" + "\n".join(problems)
        print(message, file=sys.stderr)
        raise SystemExit(2) from None
