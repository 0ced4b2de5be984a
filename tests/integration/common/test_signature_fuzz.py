"""Property-based, against a real worker: random and mutated bodies pushed into Redis.

Nothing crashes the worker (its consumer and worker threads stay alive and it still
runs genuine work), nothing unsigned or altered runs, and every body that does not
run is in the dead letters with a reason.
"""

from __future__ import annotations

import json
from typing import Any

import dramatiq
import pytest
from dramatiq import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nightshift.common import runtime
from nightshift.common.processes import wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.signing import SIGNATURE_OPTION, MessageSigner

pytestmark = pytest.mark.integration

QUEUE = "fuzzsvc_high"
RAN: list[str] = []


@dramatiq.actor(queue_name=QUEUE, actor_name="fuzz_target")
def fuzz_target(job: Any = None, **extra: Any) -> None:
    RAN.append(str(job))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A genuine signed body, mutated (or not), or random bytes."""
    kind = draw(st.sampled_from(["random", "genuine", "unsigned", "field", "option", "signature", "bytes"]))
    if kind == "random":
        return draw(st.binary(max_size=200))
    message: Message[Any] = Message(
        queue_name=QUEUE, actor_name="fuzz_target", args=(), kwargs={"job": draw(st.text(max_size=8))}, options={}
    )
    MessageSigner(runtime.settings().signing_keys()).sign(message)
    fields = message.asdict()
    if kind == "unsigned":
        del fields["options"][SIGNATURE_OPTION]
    elif kind == "field":
        fields[draw(st.sampled_from(["queue_name", "args", "kwargs", "message_id", "message_timestamp"]))] = draw(
            json_values
        )
    elif kind == "option":
        fields["options"][draw(st.sampled_from(["max_retries", "time_limit", "pipe_target"]))] = draw(json_values)
    elif kind == "signature":
        fields["options"][SIGNATURE_OPTION] = draw(st.text(max_size=50))
    body = json.dumps(fields).encode()
    if kind == "bytes":
        position = draw(st.integers(0, len(body) - 1))
        body = body[:position] + bytes([draw(st.integers(0, 255))]) + body[position + 1 :]
    return body


@pytest.fixture
def fuzz_worker(broker: NightshiftRedisBroker, run_worker: Any) -> dramatiq.Worker:
    RAN.clear()
    fuzz_target.broker = broker
    broker.declare_actor(fuzz_target)
    worker: dramatiq.Worker = run_worker({QUEUE}, threads=2)
    return worker


def _settled(broker: NightshiftRedisBroker) -> bool:
    keys = broker.keys
    return broker.client.llen(keys.queue(QUEUE)) == 0 and broker.client.hlen(keys.messages(QUEUE)) == 0


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies())
def test_pushed_bodies_never_crash_the_worker_and_only_genuine_ones_run(
    broker: NightshiftRedisBroker, fuzz_worker: dramatiq.Worker, body: bytes
) -> None:
    keys = broker.keys
    dead_before = broker.client.zcard(keys.dead(QUEUE))
    ran_before = len(RAN)
    redis_id = f"fuzz-{broker.client.incr('fuzz-ids')}"
    broker.client.hset(keys.messages(QUEUE), redis_id, body)
    broker.client.rpush(keys.queue(QUEUE), redis_id)
    broker.client.rpush(keys.wake(QUEUE), "1")
    wait_for(lambda: _settled(broker), timeout=10, what="the body consumed")

    try:
        genuine = MessageSigner(runtime.settings().signing_keys()).verify(Message.decode(body)) is not None
    except Exception:
        genuine = False
    if genuine:
        wait_for(lambda: len(RAN) == ran_before + 1, timeout=10, what="the genuine message run")
    else:
        # The reason is written just after the nack: every dead letter gets one.
        reason = wait_for(lambda: broker.client.hget(keys.dead_reasons(QUEUE), redis_id), what="the refusal's reason")
        assert json.loads(reason)["reason"]
        assert broker.client.zcard(keys.dead(QUEUE)) == dead_before + 1
        assert len(RAN) == ran_before, "an unsigned or altered body ran"

    assert all(thread.is_alive() for thread in fuzz_worker.consumers.values())
    assert all(thread.is_alive() for thread in fuzz_worker.workers)
