"""The message encoder: JSON that also carries datetimes, UUIDs and decimals.

Values are written as strings and parsed back by the receiving actor's
pydantic payload model, so no type information travels in messages and
nothing is ever unpickled.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import Any

import dramatiq
from dramatiq.encoder import JSONEncoder, MessageData


def encode_default(value: Any) -> Any:
    """JSON for what :mod:`json` does not write itself (datetimes, UUIDs, decimals, sets).

    Raises:
      TypeError: For any other type.
    """
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot encode {type(value).__name__} in a message")


class MessageEncoder(JSONEncoder):
    """Dramatiq's JSON encoder extended with datetime, UUID and Decimal."""

    def encode(self, data: MessageData) -> bytes:
        return json.dumps(data, separators=(",", ":"), default=encode_default).encode("utf-8")


def install_encoder() -> None:
    """Make :class:`MessageEncoder` Dramatiq's process-wide encoder."""
    if not isinstance(dramatiq.get_encoder(), MessageEncoder):
        dramatiq.set_encoder(MessageEncoder())
