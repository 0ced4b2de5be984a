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

import binascii
import datetime as dt
import hashlib
import hmac
import json
import json.encoder
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

#: Sorted, compact JSON (as ``json.dumps(…, sort_keys=True, separators=(",", ":"), default=encode_default)``).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=encode_default)


def _canonical_writer() -> Callable[[Any], str]:
    """The writer of :data:`_CANONICAL`'s JSON, made once.

    ``JSONEncoder.encode`` builds a new C encoder (and its table of the containers
    being written) on every call: more than half of what writing a small message
    costs. The json module's C encoder made once with the same settings writes
    the same text. It keeps no table, so threads can share it; a value that
    contains itself then fails with ``RecursionError`` instead of ``ValueError``
    (a message decoded from JSON never does).
    """
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # an interpreter without the C accelerator
        return _CANONICAL.encode
    encode = make_encoder(None, encode_default, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True)
    return lambda value: "".join(encode(value, 0))


_write_canonical = _canonical_writer()


def _unproxied(message: Message) -> dramatiq.Message[Any]:
    """The message a worker's MessageProxy wraps (the proxy forwards each attribute
    through ``__getattr__``, after a failed lookup: about 0.4 us a field)."""
    return message._message if isinstance(message, MessageProxy) else message


def canonical_bytes(message: Message) -> bytes:
    """The bytes a signature covers: the signed parts of *message* as sorted, compact JSON.

    The same before encoding as after decoding (tuples and lists, datetimes and
    their strings, integer and string keys all come out alike).

    Raises:
      TypeError, ValueError, RecursionError: A part that cannot be written as JSON.
    """
    fields = _unproxied(message)
    signed = {name: value for name, value in fields.options.items() if name not in UNSIGNED_OPTIONS}
    parts = [
        q_name(fields.queue_name),
        fields.actor_name,
        fields.args,
        fields.kwargs,
        signed,
        fields.message_id,
        fields.message_timestamp,
    ]
    try:
        return _write_canonical(parts).encode()
    except TypeError:
        # Keys of mixed types cannot be sorted: as JSON they are all strings, as after decoding.
        return _CANONICAL.encode(json.loads(json.dumps(parts, default=encode_default))).encode()


#: Base64's alphabet to base64url's.
_URLSAFE = bytes.maketrans(b"+/", b"-_")


class KeyMac:
    """HMAC-SHA256 of ``<key id>\\n<data>`` with one key, prepared once per key.

    The standard library's HMAC object keyed and fed the key id once; a MAC copies it,
    which skips hashing the padded key and the id on every message.

    Parameters:
      key: The ring's key; its id is part of what the MAC covers.
    """

    def __init__(self, key: RingKey) -> None:
        self._prepared = hmac.new(key.secret, key.key_id.encode() + b"\n", hashlib.sha256)

    def digest(self, data: bytes) -> bytes:
        """The MAC of *data* (32 bytes)."""
        mac = self._prepared.copy()
        mac.update(data)
        return mac.digest()

    def text(self, data: bytes) -> str:
        """The MAC of *data* as unpadded base64url, as it is written in a signature."""
        return binascii.b2a_base64(self.digest(data), newline=False).translate(_URLSAFE).rstrip(b"=").decode()


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
        self._macs = {key.key_id: KeyMac(key) for key in keys.keys}

    def signature(self, message: Message, key: RingKey | None = None) -> str:
        """The signature of *message* with *key* (the current key by default)."""
        key = key or self.keys.current
        # The ring's keys' MACs are prepared once; a key from elsewhere (a test's forgery) is not in the ring.
        mac = self._macs[key.key_id] if self.keys.get(key.key_id) == key else KeyMac(key)
        return f"{key.key_id}.{mac.text(canonical_bytes(message))}"

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
        options = _unproxied(message).options
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
            expected = self._macs[key.key_id].text(canonical_bytes(message))
        except Exception as error:
            raise TamperedMessage(
                f"message {_quote(message.message_id)} cannot be checked ({type(error).__name__})"
            ) from None
        if not hmac.compare_digest(expected, mac):
            raise TamperedMessage(
                f"message {_quote(message.message_id)} does not match its signature (altered after it was signed)"
            )
        return key


def _quote(value: object) -> str:
    """*value* quoted for a refusal's reason, cut short (it comes from an untrusted message)."""
    text = value if isinstance(value, str) else type(value).__name__
    return repr(text[:QUOTE_MAX_CHARS] + ("…" if len(text) > QUOTE_MAX_CHARS else ""))
