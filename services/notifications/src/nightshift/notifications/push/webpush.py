"""Web Push (RFC 8030) with VAPID (RFC 8292) and payload encryption (RFC 8291), through ``pywebpush``."""

from __future__ import annotations

import base64
import json
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from nightshift.notifications.errors import ProviderUnavailable
from nightshift.notifications.push.http_errors import classify

#: Seconds a push service keeps an undelivered message.
TTL_S = 24 * 3600


class WebPushClient:
    """Sends encrypted Web Push messages signed with the VAPID key.

    Parameters:
      private_key: The VAPID private key: PEM, or base64url (raw 32 bytes or DER).
      subject: The VAPID ``sub`` claim (``mailto:`` or ``https:``).
      timeout_s: Seconds allowed per request.
    """

    def __init__(self, private_key: str, *, subject: str, timeout_s: float = 10.0) -> None:
        key = private_key.strip()
        self.vapid = Vapid.from_pem(key.encode()) if key.startswith("-----BEGIN") else Vapid.from_string(key)
        self.subject = subject
        self.timeout_s = timeout_s
        self.session = requests.Session()

    def send(self, endpoint: str, *, p256dh: str, auth: str, payload: dict[str, Any]) -> str:
        """Encrypt *payload* for the subscription and POST it to its push service.

        Returns:
          The push service's ``Location`` (the message's URL), or the status.

        Raises:
          DeadToken: 404 or 410 (the subscription is gone: remove it).
          ProviderBusy, ProviderUnavailable: 429, 5xx, no connection.
          ProviderRejected: Any other 4xx.
        """
        try:
            response = webpush(
                {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}},
                json.dumps(payload),
                vapid_private_key=self.vapid,
                vapid_claims={"sub": self.subject},  # a new dict each time: pywebpush adds the endpoint's aud
                ttl=TTL_S,
                timeout=self.timeout_s,
                requests_session=self.session,
            )
        except WebPushException as error:
            if error.response is None:
                raise ProviderUnavailable("Web Push unreachable: WebPushException") from None
            raise classify("Web Push", error.response.status_code, error.response.headers.get("Retry-After")) from None
        except requests.RequestException as error:
            raise ProviderUnavailable(f"Web Push unreachable: {type(error).__name__}") from None
        return str(response.headers.get("Location") or response.status_code)


def new_vapid_key() -> str:
    """A fresh VAPID private key, base64url of its raw 32 bytes."""
    private = ec.generate_private_key(ec.SECP256R1())
    raw = private.private_numbers().private_value.to_bytes(32, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def application_server_key(private_key: str) -> str:
    """The public key browsers subscribe with (``applicationServerKey``), base64url."""
    from cryptography.hazmat.primitives import serialization

    key = private_key.strip()
    vapid = Vapid.from_pem(key.encode()) if key.startswith("-----BEGIN") else Vapid.from_string(key)
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
