"""Message signatures: HMAC-SHA256 over the parts of a message that must not change.

Write access to the broker's Redis must not be enough to run work: every
message the platform enqueues is signed (:class:`~nightshift.common.middleware.signatures.MessageSigning`,
in the enqueue path that ``publish``, the outbox relay, the scheduler, retries and
replays all take) and a worker refuses, before anything else, a message that is
unsigned, signed with an unknown or retired key, or altered
(:class:`~nightshift.common.middleware.signatures.SignatureCheck`).

What is signed: the queue (without its ``.DQ``), the actor, the arguments, the
message id and timestamp, and every option except :data:`UNSIGNED_OPTIONS` —
those the platform changes while a message lives (its retry count and last
traceback, a delay's ``eta``, the broker's Redis id, a replay's earlier
attempts). The signature is ``<key id>.<base64url MAC>`` in the ``signature``
option; the key id is part of what the MAC covers.

A message keeps its signature when it is enqueued again (a retry, a delayed
message coming due, a replayed dead letter), so an unsigned or forged message
never becomes signed on its way; one signed with an older key of the ring is
signed again with the current key once its signature holds (rotation).
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.common import q_name

from nightshift.common.encoder import encode_default
from nightshift.common.errors import (
    MessageRefused,
    RetiredSigningKey,
    TamperedMessage,
    UnknownSigningKey,
    UnsignedMessage,
)
from nightshift.common.keyring import KeyRing, RingKey
from nightshift.common.records import PRIOR_ATTEMPTS
from nightshift.common.revocation import REVOKED_OPTION

#: The message option holding ``<key id>.<MAC>``.
SIGNATURE_OPTION = "signature"

#: Options the platform changes while a message lives; everything else is signed.
UNSIGNED_OPTIONS = frozenset(
    {
        SIGNATURE_OPTION,
        "redis_message_id",  # a new one at every enqueue
        "eta",  # set by a delay, removed when it comes due
        "retries",  # counted by the retries middleware
        "traceback",
        "requeue_timestamp",
        "deferrals",  # a breaker or rate limit put it back
        PRIOR_ATTEMPTS,  # a replayed dead letter's earlier attempts
        REVOKED_OPTION,  # set in memory when a job is revoked
        "trace_context",  # observability only: a retry carries the trace it ran in
    }
)

#: Longest part of an untrusted value (key id, actor name) quoted in a refusal.
QUOTE_MAX_CHARS = 40

Message = dramatiq.Message[Any] | MessageProxy

#: Sorted, compact JSON (one encoder for every call: ``json.dumps`` with options builds one each time).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=encode_default)


def canonical_bytes(message: Message) -> bytes:
    """The bytes a signature covers: the signed parts of *message* as sorted, compact JSON.

    The same before encoding as after decoding (tuples and lists, datetimes and
    their strings, integer and string keys all come out alike).

    Raises:
      TypeError, ValueError: A part that cannot be written as JSON.
    """
    signed = {name: value for name, value in message.options.items() if name not in UNSIGNED_OPTIONS}
    parts = [
        q_name(message.queue_name),
        message.actor_name,
        message.args,
        message.kwargs,
        signed,
        message.message_id,
        message.message_timestamp,
    ]
    try:
        return _CANONICAL.encode(parts).encode()
    except TypeError:
        # Keys of mixed types cannot be sorted: as JSON they are all strings, as after decoding.
        return _CANONICAL.encode(json.loads(json.dumps(parts, default=encode_default))).encode()


class MessageSigner:
    """Signs and checks messages with a :class:`~nightshift.common.keyring.KeyRing`.

    Parameters:
      keys: The current key signs; every key of the ring not retired is accepted.
      clock: The time now (tests move it past a retirement).
    """

    def __init__(self, keys: KeyRing, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.keys = keys
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._current_prefix = keys.current.key_id + "."

    def signature(self, message: Message, key: RingKey | None = None) -> str:
        """The signature of *message* with *key* (the current key by default)."""
        key = key or self.keys.current
        return f"{key.key_id}.{self._mac(key, canonical_bytes(message))}"

    def sign(self, message: Message) -> None:
        """Write the current key's signature into *message*'s options."""
        message.options[SIGNATURE_OPTION] = self.signature(message)

    def ensure_signed(self, message: Message) -> None:
        """Sign a message that has no signature yet; keep or renew the signature of one that has.

        A signature by the current key is kept as it is (it covers only what must
        not change); one by another key is renewed with the current key if it
        holds, and left alone if it does not (the worker refuses the message).
        """
        present = message.options.get(SIGNATURE_OPTION)
        if present is None:
            self.sign(message)
            return
        if isinstance(present, str) and present.startswith(self._current_prefix):
            return
        try:
            self.verify(message)
        except MessageRefused:
            return
        self.sign(message)

    def verify(self, message: Message) -> RingKey:
        """Check *message*'s signature.

        Returns:
          The key that signed it.

        Raises:
          UnsignedMessage: No signature.
          UnknownSigningKey: A key id not in the ring.
          RetiredSigningKey: A key retired before now.
          TamperedMessage: A malformed signature, or one that does not match the message.
        """
        options = message.options
        present = options.get(SIGNATURE_OPTION) if isinstance(options, dict) else None
        if present is None:
            raise UnsignedMessage(f"message {_quote(message.message_id)} carries no signature")
        if not isinstance(present, str) or "." not in present:
            raise TamperedMessage(f"message {_quote(message.message_id)} has a malformed signature")
        key_id, _, mac = present.partition(".")
        key = self.keys.get(key_id)
        if key is None:
            raise UnknownSigningKey(f"message {_quote(message.message_id)} is signed with unknown key {_quote(key_id)}")
        if key.retired_at is not None and key.retired(self._clock()):
            raise RetiredSigningKey(
                f"message {_quote(message.message_id)} is signed with key {key.key_id!r}, "
                f"retired at {key.retired_at.isoformat()}"
            )
        try:
            expected = self._mac(key, canonical_bytes(message))
        except Exception as error:
            raise TamperedMessage(
                f"message {_quote(message.message_id)} cannot be checked ({type(error).__name__})"
            ) from None
        if not hmac.compare_digest(expected, mac):
            raise TamperedMessage(
                f"message {_quote(message.message_id)} does not match its signature (altered after it was signed)"
            )
        return key

    @staticmethod
    def _mac(key: RingKey, canonical: bytes) -> str:
        digest = hmac.digest(key.secret, key.key_id.encode() + b"\n" + canonical, "sha256")
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _quote(value: object) -> str:
    """*value* quoted for a refusal's reason, cut short (it comes from an untrusted message)."""
    text = value if isinstance(value, str) else type(value).__name__
    return repr(text[:QUOTE_MAX_CHARS] + ("…" if len(text) > QUOTE_MAX_CHARS else ""))
