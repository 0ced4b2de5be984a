"""The TLS options of Redis clients, so that every client gets the deployment's.

Every client is built by :func:`nightshift.common.redis_ha.redis_client` from the
settings (through Sentinel when configured), which applies these options. A
``rediss://`` URL turns TLS on; the CA that signs the server's certificate and
an optional client certificate come from :class:`RedisTLS` (the
``REDIS_TLS_*`` settings, see ``CommonSettings.redis_tls``) or from the URL's own
query parameters (``?ssl_ca_certs=…&ssl_certfile=…&ssl_keyfile=…``, which
redis-py reads). Certificates are always verified and the server's name checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nightshift.common.errors import ConfigurationError

#: The URL schemes that use TLS.
TLS_SCHEMES = ("rediss://",)


@dataclass(frozen=True)
class RedisTLS:
    """TLS material for Redis connections (paths to PEM files).

    Parameters:
      ca_file: The CA certificates the server's certificate must chain to
        (the system's trust store when ``None``).
      cert_file: A client certificate, for servers that require one
        (``tls-auth-clients yes``); it may hold the key too.
      key_file: The client certificate's private key, when not in *cert_file*.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def options(self) -> dict[str, Any]:
        """The redis-py connection options: verification required, host name checked."""
        options: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
        if self.ca_file:
            options["ssl_ca_certs"] = self.ca_file
        if self.cert_file:
            options["ssl_certfile"] = self.cert_file
        if self.key_file:
            options["ssl_keyfile"] = self.key_file
        return options


def uses_tls(url: str) -> bool:
    """True when *url* asks for TLS (``rediss://``)."""
    return url.startswith(TLS_SCHEMES)


def connection_options(url: str, tls: RedisTLS | None) -> dict[str, Any]:
    """The TLS options a client on *url* needs (none for a plain ``redis://`` URL without *tls*).

    Raises:
      ConfigurationError: TLS material given for a URL that does not use TLS.
    """
    if tls is None:
        return {}
    if not uses_tls(url):
        scheme = url.split("://", 1)[0]
        raise ConfigurationError(f"Redis TLS files are set but the URL's scheme is {scheme}://, not rediss://")
    return tls.options()
