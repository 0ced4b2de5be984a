"""Choosing and building the storage backend from ``STORAGE_URL``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from nightshift.common.errors import ConfigurationError
from nightshift.common.settings import CommonSettings, ServiceSettings, load_settings
from nightshift.common.storage.base import Storage
from nightshift.common.storage.local import LocalStorage
from nightshift.common.storage.s3 import S3Storage

#: Signs local links outside production, where no secret is configured.
DEVELOPMENT_SIGNING_KEY = "nightshift-development-storage-signing-key"


class StorageSettings(ServiceSettings):
    """Storage secrets and link options (``STORAGE_URL`` itself is a common setting)."""

    model_config = SettingsConfigDict(env_prefix="STORAGE_")

    #: Secret of the local backend's signed links; required in production.
    signing_key: SecretStr | None = None
    #: Prefix of the local backend's links (where the files are served).
    link_base: str = "/files"


def open_storage(url: str, *, signing_key: str = DEVELOPMENT_SIGNING_KEY, link_base: str = "/files") -> Storage:
    """The backend *url* names.

    Parameters:
      url: ``file:///absolute/folder``, ``file://relative/folder``, or
        ``s3://bucket[/prefix][?endpoint_url=…&region_name=…]``.
      signing_key: Secret of the local backend's links.
      link_base: Prefix of the local backend's links.

    Raises:
      ConfigurationError: Naming ``STORAGE_URL`` when the URL is not understood.
    """
    parts = urlsplit(url)
    options = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    if parts.scheme == "file":
        folder = parts.netloc + parts.path
        if not folder:
            raise ConfigurationError(f"STORAGE_URL {url!r}: a file:// URL needs a folder")
        return LocalStorage(Path(folder), signing_key=signing_key.encode(), link_base=link_base)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigurationError(f"STORAGE_URL {url!r}: an s3:// URL needs a bucket")
        unknown = set(options) - {"endpoint_url", "region_name"}
        if unknown:
            raise ConfigurationError(f"STORAGE_URL {url!r}: unknown options {', '.join(sorted(unknown))}")
        return S3Storage(
            parts.netloc,
            prefix=parts.path,
            endpoint_url=options.get("endpoint_url"),
            region_name=options.get("region_name"),
        )
    raise ConfigurationError(f"STORAGE_URL {url!r}: expected a file:// or s3:// URL")


def storage_from_settings(settings: CommonSettings) -> Storage:
    """The backend configured by ``STORAGE_URL`` and ``STORAGE_SIGNING_KEY``.

    Raises:
      ConfigurationError: When the URL is not understood, or in production when no
        signing key is set for local links.
    """
    extra = load_settings(StorageSettings)
    if extra.signing_key is None:
        if settings.environment == "production" and settings.storage_url.startswith("file:"):
            raise ConfigurationError("STORAGE_SIGNING_KEY must be set in production")
        key = DEVELOPMENT_SIGNING_KEY
    else:
        key = extra.signing_key.get_secret_value()
    return open_storage(settings.storage_url, signing_key=key, link_base=extra.link_base)
