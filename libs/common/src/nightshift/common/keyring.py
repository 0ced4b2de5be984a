"""Key rings: keys by id, one current, so that a key rotates with two valid at once.

A ring is one setting, comma-separated entries ``<id>:<secret>[@<retired at>]``::

    MESSAGE_SIGNING_KEYS="k2:<base64 secret>,k1:<base64 secret>@2026-12-01T00:00:00Z"

The first entry is the **current** key: it signs (or seals). The others are still
accepted, each until the time after its ``@`` (ISO 8601; UTC when no offset is
given) and refused from then on; an entry without ``@`` stays accepted until it is
removed. Rotating is: put the new key first, keep the old one with a retirement
time past the longest a message can wait (its retries' delays), deploy, and remove
the old entry after that time.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from nightshift.common.errors import ConfigurationError

#: What a key id may look like (it travels with every signature and sealed value).
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

#: The id of the development keys; refused in production.
DEVELOPMENT_KEY_ID = "dev"


@dataclass(frozen=True)
class RingKey:
    """One key of a ring.

    Parameters:
      key_id: Its id, written beside what it signs or seals.
      secret: The key's bytes.
      retired_at: From when it is refused (None: accepted while it is in the ring).
    """

    key_id: str
    secret: bytes
    retired_at: dt.datetime | None = None

    def retired(self, now: dt.datetime) -> bool:
        """Whether this key is refused at *now*."""
        return self.retired_at is not None and now >= self.retired_at

    def __repr__(self) -> str:  # never the secret
        return f"RingKey({self.key_id!r}, retired_at={self.retired_at!r})"


class KeyRing:
    """Keys by id; the first is the current one.

    Parameters:
      keys: The current key first, then the keys still accepted.

    Raises:
      ValueError: No key, a key id twice, or a current key with a retirement time.
    """

    def __init__(self, keys: Sequence[RingKey]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.current = keys[0]
        if self.current.retired_at is not None:
            raise ValueError(f"the current key {self.current.key_id!r} (the first) cannot have a retirement time")
        self._by_id = {key.key_id: key for key in keys}
        if len(self._by_id) != len(keys):
            raise ValueError("a key id appears twice")

    def get(self, key_id: str) -> RingKey | None:
        """The key *key_id*, retired or not (None: not in the ring)."""
        return self._by_id.get(key_id)

    @property
    def keys(self) -> tuple[RingKey, ...]:
        return tuple(self._by_id.values())

    @classmethod
    def parse(cls, text: str, *, variable: str, key_bytes: int | None = None, min_bytes: int = 32) -> KeyRing:
        """Read a ring written as the module doc says.

        Parameters:
          variable: The setting's name, for the error message.
          key_bytes: The exact length every secret must have (AES-256: 32), if any.
          min_bytes: The least length of a secret otherwise.

        Raises:
          ConfigurationError: Naming *variable* and what is wrong (never a secret).
        """
        keys = []
        for number, entry in enumerate((part.strip() for part in text.split(",")), start=1):
            if not entry:
                continue
            key_id, sep, rest = entry.partition(":")
            if not sep or not KEY_ID_PATTERN.match(key_id):
                raise ConfigurationError(
                    f"{variable}: entry {number} must be <id>:<base64 secret>[@<retired at>], "
                    "the id made of letters, digits, '_' or '-' (at most 32)"
                )
            encoded, _, retired = rest.partition("@")
            secret = _decode_secret(encoded, variable=variable, key_id=key_id)
            if key_bytes is not None and len(secret) != key_bytes:
                raise ConfigurationError(f"{variable}: key {key_id!r} must be {key_bytes} bytes, not {len(secret)}")
            if len(secret) < min_bytes:
                raise ConfigurationError(f"{variable}: key {key_id!r} must be at least {min_bytes} bytes")
            keys.append(RingKey(key_id, secret, _parse_time(retired, variable=variable, key_id=key_id)))
        try:
            return cls(keys)
        except ValueError as error:
            raise ConfigurationError(f"{variable}: {error}") from None


def development_ring_text(purpose: str) -> str:
    """A fixed, publicly known ring for development and tests (never accepted in production)."""
    secret = hashlib.sha256(f"nightshift development {purpose} key".encode()).digest()
    return f"{DEVELOPMENT_KEY_ID}:{base64.b64encode(secret).decode()}"


def is_development_ring(ring: KeyRing, purpose: str) -> bool:
    """Whether *ring* holds the development key of *purpose* (by id or by secret)."""
    development = KeyRing.parse(development_ring_text(purpose), variable=purpose).current.secret
    return any(key.key_id == DEVELOPMENT_KEY_ID or key.secret == development for key in ring.keys)


def _decode_secret(encoded: str, *, variable: str, key_id: str) -> bytes:
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        if "-" in encoded or "_" in encoded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{variable}: key {key_id!r} is not base64") from None


def _parse_time(text: str, *, variable: str, key_id: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(f"{variable}: key {key_id!r} has a retirement time that is not ISO 8601") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
