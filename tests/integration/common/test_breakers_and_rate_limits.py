"""Circuit breakers and provider rate limits shared through Redis: deferred messages keep their retries."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import dramatiq
import pytest
import redis
from click.testing import CliRunner
from prometheus_client import generate_latest

from nightshift.common import runtime
from nightshift.common.breakers import CircuitBreaker, breaker_states
from nightshift.common.broker import find_middleware
from nightshift.common.cli import main
from nightshift.common.contracts.ops import RECORD_RAISED_ALERT
from nightshift.common.errors import BreakerOpen, RateLimited, TransientError
from nightshift.common.middleware.retries import ScheduledRetries
from nightshift.common.processes import wait_for
from nightshift.common.rate_limits import ProviderRateLimit
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.settings import CommonSettings

pytestmark = pytest.mark.integration

QUEUE = "breakersvc_normal"
#: The dependency the actor calls: healthy or failing, and what the actor saw per job.
DEPENDENCY: dict[str, Any] = {"healthy": False, "served": [], "failed": []}
SEEN: dict[str, list[dict[str, Any]]] = {}


def _breaker() -> CircuitBreaker:
    return CircuitBreaker(runtime.app_redis(), "test:dependency", failure_threshold=2, open_ms=400, probe_ms=2000)


@dramatiq.actor(queue_name=QUEUE, actor_name="call_dependency")
def call_dependency(job: str) -> None:
    message = dramatiq.middleware.CurrentMessage.get_current_message()
    assert message is not None
    SEEN.setdefault(job, []).append(dict(message.options))
    with _breaker().guard():
        if not DEPENDENCY["healthy"]:
            DEPENDENCY["failed"].append(job)
            raise TransientError("dependency answered 500")
        DEPENDENCY["served"].append(job)


def _client(env: CommonSettings) -> redis.Redis[bytes]:
    client: redis.Redis[bytes] = redis.Redis.from_url(env.redis_url)
    return client


def test_breaker_opens_fails_fast_then_closes_after_a_successful_probe(
    env: CommonSettings, broker: NightshiftRedisBroker
) -> None:
    client = _client(env)
    opened: list[str] = []
    breaker = CircuitBreaker(
        client, "mail:test", failure_threshold=3, open_ms=300, probe_ms=5000, on_open=lambda s: opened.append(s.state)
    )

    for _ in range(2):
        breaker.allow()
        assert breaker.record_failure(TransientError("503")) is False
    breaker.allow()
    assert breaker.record_failure(TransientError("503")) is True
    assert opened == ["open"]
    with pytest.raises(BreakerOpen) as refused:
        breaker.allow()
    assert 0 < refused.value.delay_ms <= 300 + 1000

    time.sleep(0.35)
    breaker.allow()  # the probe
    with pytest.raises(BreakerOpen):
        breaker.allow()  # a second caller waits while the probe is under way
    breaker.record_success()

    [state] = breaker_states(client)
    assert (state.name, state.state, state.failures) == ("mail:test", "closed", 0)
    assert state.transitions == {"closed": 1, "half_open": 1, "open": 1}
    assert state.last_error == "TransientError: 503"
    metrics = generate_latest(broker.metrics_registry).decode()
    assert 'nightshift_breaker_state{breaker="mail:test"} 0.0' in metrics
    assert 'nightshift_breaker_transitions_total{breaker="mail:test",to="open"} 1.0' in metrics


def test_a_failed_probe_opens_the_breaker_again_and_an_opening_raises_an_alert(
    env: CommonSettings, broker: NightshiftRedisBroker, redis_client: redis.Redis[bytes]
) -> None:
    breaker = CircuitBreaker(_client(env), "push:test", failure_threshold=1, open_ms=100, probe_ms=5000)

    breaker.allow()
    breaker.record_failure(TransientError("timeout"))
    time.sleep(0.15)
    breaker.allow()
    breaker.record_failure(TransientError("timeout"))

    state = breaker.state()
    assert state.state == "open"
    assert state.transitions == {"closed": 0, "half_open": 1, "open": 2}
    # Each opening published ops.alert_raised, which ops records once per key and delivers to the operators.
    alerts = [json.loads(body) for body in redis_client.hvals(broker.keys.messages(RECORD_RAISED_ALERT.queue_name))]
    keys = {a["kwargs"]["alert_key"] for a in alerts}
    assert len(alerts) == len(keys) == 2
    assert all(key.startswith("breaker_open:push:test:") for key in keys)
    assert {a["kwargs"]["kind"] for a in alerts} == {"breaker_open"}


def test_messages_meeting_an_open_breaker_wait_without_using_retries_and_resume(
    env: CommonSettings, broker: NightshiftRedisBroker, run_worker: Any
) -> None:
    DEPENDENCY.update(healthy=False, served=[], failed=[])
    # Enough retries that failed probes never exhaust them: the test is about waiting.
    find_middleware(broker, ScheduledRetries).delays_ms = (20,) * 10
    SEEN.clear()
    run_worker({QUEUE}, threads=1)
    jobs = [str(uuid.uuid4()) for _ in range(2)]
    call_dependency.send(jobs[0])
    wait_for(lambda: _breaker().state().state == "open", what="the breaker opened")
    call_dependency.send(jobs[1])
    wait_for(lambda: len(SEEN.get(jobs[1], [])) >= 3, what="the second job deferred twice")
    DEPENDENCY["healthy"] = True

    wait_for(lambda: len(DEPENDENCY["served"]) == 2, what="both jobs served by the recovered dependency")
    assert sorted(DEPENDENCY["served"]) == sorted(jobs)
    # Waiting used no retry: the second job's retries are exactly its failed calls (as a probe).
    last = SEEN[jobs[1]][-1]
    assert last.get("retries", 0) == DEPENDENCY["failed"].count(jobs[1])
    assert last["deferrals"] >= 2
    assert len(SEEN[jobs[1]]) == 1 + last["deferrals"] + last.get("retries", 0)
    assert _breaker().state().state == "closed"


def test_rate_limit_defers_calls_over_the_limit_across_clients(env: CommonSettings) -> None:
    client = _client(env)
    client.flushdb()
    first = ProviderRateLimit(client, "testprovider", per_second=3)
    second = ProviderRateLimit(_client(env), "testprovider", per_second=3)

    # Start at the beginning of a second so the window does not roll over mid-test.
    time.sleep(1 - time.time() % 1)
    admitted = 0
    delays: list[int] = []
    for limiter in (first, second, first, second, first):
        try:
            with limiter.acquire():
                admitted += 1
        except RateLimited as error:
            delays.append(error.delay_ms)
    assert (admitted, len(delays)) == (3, 2)
    assert all(0 < delay <= 1000 + 250 for delay in delays)


def test_concurrency_limit_frees_its_slot_when_the_call_ends(env: CommonSettings) -> None:
    limiter = ProviderRateLimit(_client(env), "slowprovider", concurrency=1)

    with limiter.acquire(), pytest.raises(RateLimited, match="1 requests already under way"), limiter.acquire():
        pass
    with limiter.acquire():
        pass


def test_breakers_list_command(env: CommonSettings, broker: NightshiftRedisBroker) -> None:
    breaker = CircuitBreaker(_client(env), "webhook:7", failure_threshold=1, on_open=None)
    breaker.allow()
    breaker.record_failure("HTTP 500")

    result = CliRunner().invoke(main, ["breakers", "list", "--json"])
    assert result.exit_code == 0, result.output
    [listed] = json.loads(result.output)
    assert (listed["name"], listed["state"], listed["last_error"]) == ("webhook:7", "open", "HTTP 500")
    text = CliRunner().invoke(main, ["breakers", "list"])
    assert "webhook:7" in text.output and "open" in text.output

    reset = CliRunner().invoke(main, ["breakers", "reset", "webhook:7"])
    assert reset.output.strip() == "webhook:7 closed"
    missing = CliRunner().invoke(main, ["breakers", "reset", "webhook:8"])
    assert missing.exit_code == 1 and "no circuit breaker called 'webhook:8'" in missing.output
