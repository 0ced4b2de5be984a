"""Key rings, message signatures, sealed fields and the keys production insists on."""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid
from decimal import Decimal
from typing import Any

import pytest
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from pydantic import BaseModel

from nightshift.common.encoder import MessageEncoder, install_encoder
from nightshift.common.errors import (
    ConfigurationError,
    RetiredSigningKey,
    SealedFieldError,
    TamperedMessage,
    UnknownSigningKey,
    UnsignedMessage,
)
from nightshift.common.events import publish
from nightshift.common.events.catalog import CATALOG
from nightshift.common.keyring import KeyRing, RingKey, development_ring_text
from nightshift.common.middleware.signatures import MessageSigning
from nightshift.common.sealing import SealedStr, Sealer, is_sealed, personal_fields
from nightshift.common.settings import CommonSettings
from nightshift.common.signing import SIGNATURE_OPTION, MessageSigner, canonical_bytes

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
CURRENT = RingKey("k2", b"c" * 32)
PREVIOUS = RingKey("k1", b"p" * 32)


def _b64(secret: bytes) -> str:
    return base64.b64encode(secret).decode()


def _message(**kwargs: Any) -> Message[Any]:
    return Message(queue_name="testsvc_high", actor_name="work", args=(), kwargs=kwargs or {"n": 1}, options={})


def test_a_ring_reads_ids_secrets_and_retirements_and_names_its_variable_when_wrong() -> None:
    ring = KeyRing.parse(f"k2:{_b64(b'a' * 32)}, k1:{_b64(b'b' * 32)}@2026-12-01T00:00:00Z", variable="X")
    assert ring.current.key_id == "k2"
    old = ring.get("k1")
    assert old is not None and old.retired_at == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert not old.retired(NOW) and old.retired(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert "secret" not in repr(old) and "bbbb" not in repr(old)
    for text, problem in [
        ("", "at least one key"),
        ("k2", "entry 1 must be"),
        ("bad id!:AAAA", "entry 1 must be"),
        ("k2:%%%", "not base64"),
        (f"k2:{_b64(b'short')}", "at least 32 bytes"),
        (f"k2:{_b64(b'a' * 32)}@tomorrow", "not ISO 8601"),
        (f"k2:{_b64(b'a' * 32)}@2026-12-01T00:00:00Z", "cannot have a retirement time"),
        (f"k2:{_b64(b'a' * 32)},k2:{_b64(b'b' * 32)}", "appears twice"),
    ]:
        with pytest.raises(ConfigurationError, match=problem) as error:
            KeyRing.parse(text, variable="MESSAGE_SIGNING_KEYS")
        assert str(error.value).startswith("MESSAGE_SIGNING_KEYS: ")
    with pytest.raises(ConfigurationError, match="must be 32 bytes, not 40"):
        KeyRing.parse(f"s1:{_b64(b'a' * 40)}", variable="SEALING_KEYS", key_bytes=32)


def test_canonical_bytes_are_the_same_before_encoding_and_after_decoding() -> None:
    install_encoder()
    kwargs: dict[Any, Any] = {
        "at": dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC),
        "id": uuid.uuid4(),
        "d": Decimal("1.5"),
        3: "x",  # an integer key: a string once decoded
    }
    message: Message[Any] = Message(
        queue_name="testsvc_high.DQ",
        actor_name="work",
        args=(1, "two"),
        kwargs=kwargs,
        options={"trace_context": {"traceparent": "00-abc"}, "eta": 5, "retries": 2},
    )
    decoded = Message.decode(MessageEncoder().encode(message.asdict()))
    assert canonical_bytes(decoded) == canonical_bytes(message)
    # The delay queue's suffix and the options that change while a message lives are not signed.
    moved = decoded.copy(queue_name="testsvc_high", options={"retries": 3, "traceback": "…", "redis_message_id": "r"})
    assert canonical_bytes(moved) == canonical_bytes(message)


def test_verify_accepts_the_ring_and_refuses_unsigned_unknown_retired_and_altered() -> None:
    retired = RingKey("k0", b"r" * 32, retired_at=NOW - dt.timedelta(seconds=1))
    signer = MessageSigner(KeyRing([CURRENT, PREVIOUS, retired]), clock=lambda: NOW)
    message = _message()
    signer.sign(message)
    assert signer.verify(message) is CURRENT
    assert message.options[SIGNATURE_OPTION].startswith("k2.")

    by_previous = _message()
    MessageSigner(KeyRing([PREVIOUS])).sign(by_previous)
    assert signer.verify(by_previous).key_id == "k1"

    with pytest.raises(UnsignedMessage, match="carries no signature"):
        signer.verify(_message())
    stranger = _message()
    MessageSigner(KeyRing([RingKey("zz", os.urandom(32))])).sign(stranger)
    with pytest.raises(UnknownSigningKey, match="unknown key 'zz'"):
        signer.verify(stranger)
    by_retired = _message()
    MessageSigner(KeyRing([RingKey("k0", retired.secret)])).sign(by_retired)
    with pytest.raises(RetiredSigningKey, match="retired at 2026-11-29T11:59:59"):
        signer.verify(by_retired)
    altered: Message[Any] = Message(**{**message.asdict(), "kwargs": {"n": 2}})
    with pytest.raises(TamperedMessage, match="altered"):
        signer.verify(altered)
    longer_age = message.copy(options={"max_age": 10**12})
    with pytest.raises(TamperedMessage):
        signer.verify(longer_age)
    malformed = message.copy(options={SIGNATURE_OPTION: 42})
    with pytest.raises(TamperedMessage, match="malformed"):
        signer.verify(malformed)


def test_signatures_are_those_earlier_releases_wrote() -> None:
    # Messages signed before an upgrade must still pass after it: the bytes and the MAC never change.
    message: Message[Any] = Message(
        queue_name="testsvc_high",
        actor_name="work",
        args=(1, "two"),
        kwargs={"n": 1, "text": "é✓"},
        options={"max_retries": 3, "trace_context": {"traceparent": "00-abc"}, "time_limit": 2.5},
        message_id="6f1c2a3e-0a4b-4c5d-8e9f-0123456789ab",
        message_timestamp=1795900000000,
    )
    # Written by the release before the prepared MACs (hmac.digest, JSONEncoder.encode).
    for key, expected in [
        (CURRENT, "k2.QZHxFDbHQ3Eu4UU8c_6TB0zeE9MjXz4jsseQqPY_x34"),
        (RingKey("long", b"L" * 100), "long.b-mYD73uVqBzVL4NTVRIlaXCPeUaGa8yJzehut1vyQ4"),  # longer than a block
    ]:
        signer = MessageSigner(KeyRing([key]))
        signer.sign(message)
        assert message.options[SIGNATURE_OPTION] == expected
        assert signer.verify(MessageProxy(Message.decode(message.encode()))) is key


def test_a_signature_with_a_key_from_outside_the_ring_uses_that_key() -> None:
    signer = MessageSigner(KeyRing([CURRENT]))
    message = _message()
    forged = signer.signature(message, RingKey(CURRENT.key_id, b"f" * 32))
    message.options[SIGNATURE_OPTION] = forged
    with pytest.raises(TamperedMessage, match="altered"):
        signer.verify(message)


def test_enqueue_signs_new_messages_keeps_signatures_and_renews_the_previous_keys() -> None:
    signer = MessageSigner(KeyRing([CURRENT, PREVIOUS]))
    fresh = _message()
    signer.ensure_signed(fresh)
    assert signer.verify(fresh) is CURRENT

    # A forged signature stays forged: enqueueing again never makes it valid.
    forged = fresh.copy(kwargs={"n": 99})
    signer.ensure_signed(forged)
    assert forged.options[SIGNATURE_OPTION] == fresh.options[SIGNATURE_OPTION]
    with pytest.raises(TamperedMessage):
        signer.verify(forged)
    stale = _message()
    MessageSigner(KeyRing([PREVIOUS])).sign(stale)
    forged_stale = stale.copy(kwargs={"n": 99})
    signer.ensure_signed(forged_stale)
    with pytest.raises(TamperedMessage):
        signer.verify(forged_stale)

    # A valid signature by the previous key is renewed with the current one.
    signer.ensure_signed(stale)
    assert signer.verify(stale) is CURRENT


def test_publish_through_a_broker_with_signing_signs_every_message() -> None:
    broker = StubBroker(middleware=[MessageSigning(signer=MessageSigner(KeyRing([CURRENT])))])
    for spec in CATALOG.values():
        for subscriber in spec.subscribers:
            broker.declare_queue(subscriber.contract.queue_name)
    messages = publish("post.deleted", {"post_id": 3}, broker=broker)
    assert len(messages) == 3
    for message in messages:
        assert MessageSigner(KeyRing([CURRENT])).verify(message) is CURRENT


def test_sealed_values_open_with_the_ring_and_refuse_unknown_retired_or_altered() -> None:
    current, previous = RingKey("s2", os.urandom(32)), RingKey("s1", os.urandom(32))
    sealer = Sealer(KeyRing([current, previous]))
    sealed = sealer.seal("oncall@example.org")
    assert is_sealed(sealed) and "oncall" not in sealed and sealed.startswith("sealed:v1:s2:")
    assert sealer.open(sealed) == "oncall@example.org"
    assert sealer.seal("x") != sealer.seal("x")  # a random nonce each time
    assert sealer.open(Sealer(KeyRing([previous])).seal("old")) == "old"

    with pytest.raises(SealedFieldError, match="unknown key"):
        Sealer(KeyRing([previous])).open(Sealer(KeyRing([RingKey("s9", os.urandom(32))])).seal("x"))
    later = Sealer(KeyRing([current, RingKey("s1", previous.secret, retired_at=NOW)]))
    with pytest.raises(SealedFieldError, match="retired"):
        later.open(Sealer(KeyRing([previous])).seal("old"))
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(SealedFieldError, match="does not authenticate"):
        sealer.open(flipped)
    moved = sealed.replace("sealed:v1:s2:", "sealed:v1:s1:")
    with pytest.raises(SealedFieldError):
        sealer.open(moved)
    for not_sealed in ("oncall@example.org", "sealed:v1:s2:", "sealed:v1::AAAA", "sealed:v1:s2:%%%"):
        assert not is_sealed(not_sealed)
        with pytest.raises(SealedFieldError):
            sealer.open(not_sealed)


def test_personal_fields_are_found_and_refused_in_clear() -> None:
    class Model(BaseModel):
        required: SealedStr
        optional: SealedStr | None = None
        plain: str = ""

    assert personal_fields(Model) == ("required", "optional")
    sealed = Sealer(KeyRing([RingKey("s2", os.urandom(32))])).seal("a@example.org")
    assert Model(required=sealed).required == sealed
    with pytest.raises(ValueError, match="must be sealed"):
        Model(required="a@example.org")


def test_every_field_named_like_personal_data_in_the_catalog_is_sealed() -> None:
    """A new address, URL or name field in an event must be declared SealedStr."""
    suspicious = ("email", "address", "url", "phone", "name", "notify", "recipient")
    for spec in CATALOG.values():
        for field in spec.schema.model_fields:
            if any(word in field for word in suspicious):
                assert field in spec.personal_fields, f"{spec.name}.{field} looks personal but is not SealedStr"


@pytest.mark.parametrize("variable", ["MESSAGE_SIGNING_KEYS", "SEALING_KEYS"])
def test_production_refuses_a_missing_or_development_key_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str
) -> None:
    from nightshift.common.settings import load_settings

    monkeypatch.setenv("REDIS_URL", "redis://localhost:6379/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://localhost/nightshift")
    monkeypatch.setenv("ENVIRONMENT", "production")
    other = "SEALING_KEYS" if variable == "MESSAGE_SIGNING_KEYS" else "MESSAGE_SIGNING_KEYS"
    monkeypatch.setenv(other, f"p1:{_b64(os.urandom(32))}")
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(SystemExit):
        load_settings(CommonSettings)
    assert f"{variable}: Value error, must be set in production" in capsys.readouterr().err

    purpose = "signing" if variable == "MESSAGE_SIGNING_KEYS" else "sealing"
    monkeypatch.setenv(variable, development_ring_text(purpose))
    with pytest.raises(SystemExit):
        load_settings(CommonSettings)
    assert f"{variable}: Value error, holds the development key" in capsys.readouterr().err

    monkeypatch.setenv(variable, f"p2:{_b64(os.urandom(32))}")
    settings = load_settings(CommonSettings)
    assert settings.signing_keys().current.key_id in {"p1", "p2"}
    assert settings.sealing_key_ring().current.key_id in {"p1", "p2"}

    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.delenv(variable)
    development = load_settings(CommonSettings)  # outside production the development key stands in
    ring = development.signing_keys() if variable == "MESSAGE_SIGNING_KEYS" else development.sealing_key_ring()
    assert ring.current.key_id == "dev"
