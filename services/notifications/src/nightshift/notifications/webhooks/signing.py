"""Standard Webhooks signatures (https://www.standardwebhooks.com).

Three headers: ``webhook-id`` (the event's id, the same on every retry),
``webhook-timestamp`` (seconds since the epoch) and ``webhook-signature``: a
space-separated list of ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``,
one per valid secret, so a receiver that still has the previous secret during a
rotation verifies as well as one that already has the new one. Secrets are
``whsec_`` followed by the base64 of the key's bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping

from nightshift.common.errors import PermanentError

#: Prefix of a secret's text.
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
#: Bytes of a new secret's key.
SECRET_BYTES = 32
#: Signatures older or newer than this are refused by :func:`verify` (replays).
TOLERANCE_S = 300


class InvalidWebhookSignature(PermanentError):
    """A webhook request whose signature does not verify with the secret, or whose timestamp is off."""


def new_secret() -> str:
    """A new signing secret, ``whsec_…``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC>`` of ``<id>.<timestamp>.<body>`` with *secret*."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def sign(secrets_in_use: Iterable[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret in use."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets_in_use),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
    """Check a request the way a receiver does.

    Raises:
      InvalidWebhookSignature: A header is missing, the timestamp is off by more than
        ``TOLERANCE_S``, or no signature matches *secret*.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id, stamp, signatures = (lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (message_id and stamp and signatures and stamp.isdigit()):
        raise InvalidWebhookSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    if abs((now if now is not None else time.time()) - int(stamp)) > TOLERANCE_S:
        raise InvalidWebhookSignature("webhook timestamp outside the tolerance")
    expected = signature(secret, message_id, int(stamp), body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures.split(" ")):
        raise InvalidWebhookSignature("no webhook signature matches the secret")
