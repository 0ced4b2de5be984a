"""Property-based: random and mutated messages and payloads against the decoder, the signature check and publish.

Nothing may raise anything but a refusal with a reason, nothing unsigned or altered
may pass the check, and what the platform signs always passes it after the trip
through the encoder.
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

import pytest
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nightshift.common.encoder import MessageEncoder, encode_default
from nightshift.common.errors import EventError, MessageRefused
from nightshift.common.events import publish
from nightshift.common.events.catalog import CATALOG
from nightshift.common.keyring import KeyRing, RingKey
from nightshift.common.middleware.signatures import MessageSigning, SignatureCheck
from nightshift.common.signing import SIGNATURE_OPTION, UNSIGNED_OPTIONS, KeyMac, MessageSigner, canonical_bytes

KEY = RingKey("k1", os.urandom(32))
SIGNER = MessageSigner(KeyRing([KEY]))

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
options = st.dictionaries(
    st.sampled_from(["max_retries", "time_limit", "trigger", "event", "trace_context", "retries", "eta_like"]),
    json_values,
    max_size=4,
)


@st.composite
def messages(draw: st.DrawFn) -> Message[Any]:
    return Message(
        queue_name=draw(names),
        actor_name=draw(names),
        args=tuple(draw(st.lists(json_values, max_size=3))),
        kwargs=draw(st.dictionaries(names, json_values, max_size=4)),
        options=draw(options),
    )


def _encode(message: Message[Any]) -> bytes:
    return MessageEncoder().encode(message.asdict())


def _check(body: bytes) -> tuple[str, str]:
    """What a worker does with *body*: ("undecodable" | "refused" | "runs", reason)."""
    try:
        message = Message.decode(body)
        assert isinstance(message.options, dict)
    except Exception as error:  # the consumer dead-letters it with this reason
        return "undecodable", type(error).__name__
    proxy = MessageProxy(message)
    check = SignatureCheck(signer=SIGNER, alerts=False)
    try:
        check.before_process_message(StubBroker(), proxy)
    except MessageRefused as refusal:
        assert proxy.failed, "a refused message must be failed (dead-lettered, not retried)"
        return "refused", str(refusal)
    return "runs", ""


@settings(max_examples=200, deadline=None)
@given(messages())
def test_what_the_platform_signs_passes_the_check_after_encoding(message: Message[Any]) -> None:
    SIGNER.sign(message)
    outcome, reason = _check(_encode(message))
    assert (outcome, reason) == ("runs", "")


@settings(max_examples=300, deadline=None)
@given(messages())
def test_canonical_bytes_are_json_dumps_sorted_and_compact(message: Message[Any]) -> None:
    # The writer made once must write what json.dumps does, or signed messages in flight would fail.
    signed = {k: v for k, v in message.options.items() if k not in UNSIGNED_OPTIONS}
    parts: list[Any] = [message.queue_name, message.actor_name, message.args, message.kwargs, signed]
    parts += [message.message_id, message.message_timestamp]
    reference = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=encode_default).encode()
    assert canonical_bytes(message) == reference
    assert canonical_bytes(MessageProxy(message)) == reference


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=200), st.from_regex(r"[A-Za-z0-9_-]{1,32}", fullmatch=True), st.binary())
def test_a_prepared_mac_is_hmac_sha256_of_the_key_id_and_the_bytes(secret: bytes, key_id: str, data: bytes) -> None:
    expected = hmac.digest(secret, key_id.encode() + b"\n" + data, "sha256")
    assert KeyMac(RingKey(key_id, secret)).digest(data) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.data())
def test_a_mutated_message_never_runs_unless_only_unsigned_parts_changed(message: Message[Any], data: Any) -> None:
    SIGNER.sign(message)
    original = canonical_bytes(message)
    fields = message.asdict()
    mutation = data.draw(
        st.sampled_from(["drop_signature", "field", "option", "signature_text", "bytes", "truncate", "rekey"])
    )
    if mutation == "drop_signature":
        del fields["options"][SIGNATURE_OPTION]
    elif mutation == "field":
        name = data.draw(st.sampled_from(["queue_name", "actor_name", "args", "kwargs", "message_id"]))
        fields[name] = data.draw(json_values)
    elif mutation == "option":
        fields["options"][data.draw(names)] = data.draw(json_values)
    elif mutation == "signature_text":
        fields["options"][SIGNATURE_OPTION] = data.draw(st.text(max_size=60))
    elif mutation == "rekey":
        fields["options"][SIGNATURE_OPTION] = "k9" + fields["options"][SIGNATURE_OPTION][2:]
    body = json.dumps(fields).encode()
    if mutation == "bytes":
        position = data.draw(st.integers(0, len(body) - 1))
        body = body[:position] + bytes([data.draw(st.integers(0, 255))]) + body[position + 1 :]
    elif mutation == "truncate":
        body = body[: data.draw(st.integers(0, len(body) - 1))]

    outcome, reason = _check(body)
    if outcome == "runs":
        # Only possible when what is signed did not change (an unsigned option, the same value…).
        decoded = Message.decode(body)
        assert canonical_bytes(decoded) == original
        assert decoded.options[SIGNATURE_OPTION] == message.options[SIGNATURE_OPTION]
    else:
        assert reason, "every refusal has a reason"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_random_bodies_are_refused_with_a_reason_and_never_run(body: bytes) -> None:
    outcome, reason = _check(body)
    assert outcome in {"undecodable", "refused"}
    assert reason


@settings(max_examples=150, deadline=None)
@given(
    st.builds(
        lambda d: json.dumps(d).encode(),
        st.dictionaries(
            st.sampled_from(
                ["queue_name", "actor_name", "args", "kwargs", "options", "message_id", "message_timestamp"]
            ),
            json_values,
        ),
    )
)
def test_message_shaped_json_without_a_valid_signature_never_runs(body: bytes) -> None:
    outcome, reason = _check(body)
    assert outcome in {"undecodable", "refused"}
    assert reason


@pytest.fixture(scope="module")
def signing_broker() -> StubBroker:
    broker = StubBroker(middleware=[MessageSigning(signer=SIGNER)])
    for spec in CATALOG.values():
        for subscriber in spec.subscribers:
            broker.declare_queue(subscriber.contract.queue_name)
    return broker


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(sorted(CATALOG)) | st.text(max_size=30),
    st.dictionaries(st.text(max_size=12), json_values, max_size=5) | json_values,
)
def test_publish_either_enqueues_signed_messages_or_refuses_with_a_reason(
    signing_broker: StubBroker, name: str, payload: Any
) -> None:
    try:
        sent = publish(name, payload, broker=signing_broker)
    except EventError as error:
        refusal = str(error)
        assert refusal, "a refusal without its reason"
        return
    for message in sent:
        assert SIGNER.verify(message) is KEY
        assert _check(_encode(message)) == ("runs", "")
