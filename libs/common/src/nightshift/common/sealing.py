"""Sealed fields: the personal data that must travel in a message, encrypted with a key ring.

Messages carry ids, not personal data (SPEC §10). Where something personal has
to travel anyway — an address that belongs to no user of the platform, so there
is no row to point to — the payload field is :data:`SealedStr`: the sender seals
the value (AES-256-GCM with the current key of ``SEALING_KEYS``), the queue,
the dead letters and the job records only ever hold the ciphertext, and the
receiving actor opens it (:meth:`Sealer.open`) when it needs it.

A sealed value is ``sealed:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>``; the
version and key id are authenticated with it. A :data:`SealedStr` field refuses
anything else, so ``publish`` refuses a catalogued personal field sent in clear
(:func:`personal_fields` lists them) — and says which field, never the value.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import AfterValidator, BaseModel, Field
from pydantic.fields import FieldInfo

from nightshift.common.errors import SealedFieldError
from nightshift.common.keyring import KEY_ID_PATTERN, KeyRing

#: What every sealed value starts with (the format's version included).
SEALED_PREFIX = "sealed:v1:"
#: Bytes of an AES-GCM nonce, random per value.
NONCE_BYTES = 12
#: Bytes of the authentication tag at the end of the ciphertext.
TAG_BYTES = 16
#: Marker in a field's JSON schema: personal data, sealed.
PERSONAL_MARKER = "x-personal"


class Sealer:
    """Seals and opens values with a :class:`~nightshift.common.keyring.KeyRing` of 32-byte keys.

    Parameters:
      keys: The current key seals; every key not retired opens.
      clock: The time now, for retirements.
    """

    def __init__(self, keys: KeyRing, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.keys = keys
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keys.keys}

    def seal(self, value: str) -> str:
        """*value* encrypted with the current key, as a sealed value."""
        key_id = self.keys.current.key_id
        header = f"{SEALED_PREFIX}{key_id}:"
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._ciphers[key_id].encrypt(nonce, value.encode(), header.encode())
        return header + base64.urlsafe_b64encode(nonce + ciphertext).rstrip(b"=").decode()

    def open(self, sealed: str) -> str:
        """The value inside *sealed*.

        Raises:
          SealedFieldError: Not a sealed value, an unknown or retired key, or a value
            altered or sealed under another key (the message never holds the value).
        """
        key_id, body = _split(sealed)
        key = self.keys.get(key_id)
        if key is None:
            raise SealedFieldError(f"sealed with unknown key {key_id!r}")
        if key.retired(self._clock()):
            raise SealedFieldError(f"sealed with key {key_id!r}, retired since")
        data = _unb64(body)
        header = f"{SEALED_PREFIX}{key_id}:"
        try:
            plain = self._ciphers[key_id].decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], header.encode())
        except InvalidTag:
            raise SealedFieldError(f"sealed value under key {key_id!r} does not authenticate (altered)") from None
        return plain.decode()


def is_sealed(value: str) -> bool:
    """Whether *value* has the shape of a sealed value (it is not opened)."""
    try:
        _split(value)
    except SealedFieldError:
        return False
    return True


def _split(sealed: str) -> tuple[str, str]:
    if not isinstance(sealed, str) or not sealed.startswith(SEALED_PREFIX):
        raise SealedFieldError("not a sealed value")
    key_id, sep, body = sealed[len(SEALED_PREFIX) :].partition(":")
    if not sep or not KEY_ID_PATTERN.match(key_id):
        raise SealedFieldError("a sealed value without a valid key id")
    if len(_unb64(body)) < NONCE_BYTES + TAG_BYTES:
        raise SealedFieldError("a sealed value too short to hold a nonce and a tag")
    return key_id, body


def _unb64(body: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise SealedFieldError("a sealed value that is not base64url") from None


def _must_be_sealed(value: str) -> str:
    if not is_sealed(value):
        raise ValueError("personal data must be sealed (nightshift.common.sealing.Sealer.seal), never sent in clear")
    return value


#: A payload field holding personal data: only a sealed value is accepted.
SealedStr = Annotated[
    str, AfterValidator(_must_be_sealed), Field(max_length=4096, json_schema_extra={PERSONAL_MARKER: True})
]


def personal_fields(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of *model* declared :data:`SealedStr` (directly or optional)."""
    return tuple(
        name
        for name, field in model.model_fields.items()
        if _is_personal(field.json_schema_extra) or _annotation_is_personal(field.annotation)
    )


def _is_personal(extra: Any) -> bool:
    return isinstance(extra, dict) and bool(extra.get(PERSONAL_MARKER))


def _annotation_is_personal(annotation: Any) -> bool:
    if get_origin(annotation) is Annotated:
        metadata = getattr(annotation, "__metadata__", ())
        if any(isinstance(item, FieldInfo) and _is_personal(item.json_schema_extra) for item in metadata):
            return True
    return any(_annotation_is_personal(arg) for arg in get_args(annotation))
