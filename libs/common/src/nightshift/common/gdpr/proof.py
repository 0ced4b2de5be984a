"""The proof of a completed request: its completion record, signed (HMAC-SHA256), with no personal data.

The record holds the request id and kind, who asked and when, the deadline,
each service's acknowledgement (counts and time) and when it completed; never
the user's id, address or name. An operator fetches it with
``nightshift gdpr proof <request id>`` and anyone holding the key checks it with
:func:`verify_proof`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlalchemy.orm import Session

from nightshift.common.db.models import GdprRequest
from nightshift.common.errors import NightshiftError, NotFound

#: The signature's algorithm, written into the proof.
ALGORITHM = "HMAC-SHA256"


class NotCompleted(NightshiftError):
    """The request has no proof yet: it is not completed."""


def key_id(key: bytes) -> str:
    """A short public name of *key* (the start of its SHA-256), so a proof says which key signed it."""
    return hashlib.sha256(key).hexdigest()[:12]


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes that are signed: JSON with sorted keys and no spaces."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(record: dict[str, Any], key: bytes) -> dict[str, Any]:
    """*record* with its signature: ``{"record": …, "algorithm", "key_id", "signature"}``."""
    signature = hmac.new(key, canonical(record), hashlib.sha256).hexdigest()
    return {"record": record, "algorithm": ALGORITHM, "key_id": key_id(key), "signature": signature}


def verify_proof(proof: dict[str, Any], key: bytes) -> bool:
    """Whether *proof* was signed with *key* and its record is unchanged."""
    record = proof.get("record")
    if not isinstance(record, dict) or proof.get("algorithm") != ALGORITHM:
        return False
    expected = hmac.new(key, canonical(record), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, str(proof.get("signature", "")))


def proof_of(session: Session, request_id: int, key: bytes) -> dict[str, Any]:
    """The signed completion record of request *request_id*.

    Raises:
      NotFound: There is no such request.
      NotCompleted: The request is not completed yet.
    """
    request = session.get(GdprRequest, request_id)
    if request is None:
        raise NotFound(f"GDPR request {request_id} does not exist")
    if request.status != "done" or not request.summary:
        raise NotCompleted(f"GDPR request {request_id} is {request.status}: no proof until it is done")
    return sign(dict(request.summary), key)
