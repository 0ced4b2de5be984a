"""Queue stats, live workers and running jobs as dashboards read them; purging a queue."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import dramatiq
import pytest
from dramatiq import Message

from nightshift.common.broker import find_middleware
from nightshift.common.middleware.liveness import WorkerLiveness
from nightshift.common.processes import wait_for
from nightshift.common.purge import purge_queue
from nightshift.common.queue_stats import backlog, queue_stats
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.common.workers import live_workers, running_jobs

pytestmark = pytest.mark.integration

QUEUE = "state_high"
OTHER = "state_low"
#: Set to let :func:`held` return.
RELEASE = threading.Event()


@dramatiq.actor(queue_name=QUEUE, actor_name="held")
def held() -> None:
    RELEASE.wait(30)


@dramatiq.actor(queue_name=OTHER, actor_name="idle_low")
def idle_low() -> None:
    """Never run here: only enqueued."""


def _old_message(queue: str, age_ms: int) -> Message[Any]:
    return Message(
        queue_name=queue,
        actor_name="idle_low",
        args=(),
        kwargs={},
        options={},
        message_timestamp=int(time.time() * 1000) - age_ms,
    )


def test_queue_stats_split_ready_in_flight_delayed_dead_and_age(broker: NightshiftRedisBroker) -> None:
    broker.declare_queue(OTHER)
    for _ in range(3):
        broker.enqueue(_old_message(OTHER, 60_000))
    idle_low.send_with_options(delay=5_000)  # due soon: counts in the backlog
    idle_low.send_with_options(delay=3_600_000)  # an hour away: does not
    broker.client.zadd(broker.keys.dead(OTHER), {"dead-1": 1})
    broker.fetch(OTHER, 1)  # a worker took one: in flight

    [stats, empty] = queue_stats(broker, [OTHER, QUEUE])

    assert (stats.ready, stats.in_flight, stats.delayed, stats.dead) == (2, 1, 2, 1)
    assert stats.delayed_due == 1
    assert stats.oldest_age_s is not None and stats.oldest_age_s >= 60
    assert backlog(stats) == 2 + 1 + 1
    assert (empty.ready, empty.in_flight, empty.delayed, empty.dead, empty.oldest_age_s) == (0, 0, 0, 0, None)


def test_purge_removes_ready_messages_and_leaves_those_in_flight(broker: NightshiftRedisBroker) -> None:
    broker.declare_queue(OTHER)
    for _ in range(4):
        idle_low.send()
    [(taken_id, _)] = broker.fetch(OTHER, 1)

    assert purge_queue(broker, OTHER) == 3

    assert broker.client.llen(broker.keys.queue(OTHER)) == 0
    assert broker.client.hkeys(broker.keys.messages(OTHER)) == [taken_id.encode()]
    assert purge_queue(broker, OTHER) == 0


def test_live_workers_and_what_they_run(broker: NightshiftRedisBroker, run_worker: Any) -> None:
    RELEASE.clear()
    liveness: WorkerLiveness = find_middleware(broker, WorkerLiveness)
    liveness.service = "statesvc"
    worker = run_worker({QUEUE}, threads=3)

    [info] = wait_for(lambda: live_workers(broker), what="the worker published its state")
    assert (info.service, info.pid, info.threads, info.queues) == ("statesvc", os.getpid(), 3, (QUEUE,))
    assert info.worker_id == broker.broker_id
    assert info.heartbeat_at >= info.started_at

    message = held.send()
    [job] = wait_for(lambda: running_jobs(broker), what="the running job published")
    assert (job.message_id, job.actor, job.queue, job.worker_id) == (message.message_id, "held", QUEUE, info.worker_id)
    assert job.running_for_s() >= 0

    RELEASE.set()
    wait_for(lambda: running_jobs(broker) == [], what="the finished job withdrawn")
    worker.stop(timeout=5000)
    assert live_workers(broker) == []
    assert not broker.client.exists(broker.keys.worker(broker.broker_id), broker.keys.running(broker.broker_id))


def test_a_dead_workers_state_expires(broker: NightshiftRedisBroker) -> None:
    liveness: WorkerLiveness = find_middleware(broker, WorkerLiveness)
    liveness.publish_state(broker)  # as a worker's liveness thread does, then never again
    broker.heartbeat()
    assert broker.client.exists(broker.keys.worker(broker.broker_id))

    ttl_ms = broker.client.pttl(broker.keys.worker(broker.broker_id))
    assert 0 < ttl_ms <= max(broker.heartbeat_timeout, 3000)
    wait_for(lambda: not broker.client.exists(broker.keys.worker(broker.broker_id)), what="state expired")
    assert live_workers(broker) == []
