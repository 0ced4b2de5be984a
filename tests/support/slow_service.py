"""A test-only service with one slow actor, run as a real worker process by the e2e tests.

``python -m tests.support.slow_service`` runs it through the same
:func:`nightshift.common.worker.run_worker` as every real service.
"""

from __future__ import annotations

import os
import sys
import time

import dramatiq
import redis

from nightshift.common import runtime
from nightshift.common.lanes import Lane
from nightshift.common.service import ServiceSpec

SERVICE = ServiceSpec(name="slowsvc", lanes=(Lane.HIGH,), actors_module="tests.support.slow_service", threads=2)
#: Redis list (application database) where the actor logs what it does.
EVENTS_KEY = "slowsvc:events"


def declare_actors() -> None:
    @dramatiq.actor(queue_name="slowsvc_high", actor_name="slow_job")
    def slow_job(job_id: str, seconds: float) -> None:
        client = redis.Redis.from_url(runtime.settings().redis_url)
        client.rpush(EVENTS_KEY, f"started {job_id} {os.getpid()} {time.time()}")
        time.sleep(seconds)
        client.rpush(EVENTS_KEY, f"done {job_id} {os.getpid()} {time.time()}")


if __name__ == "__main__":
    from nightshift.common.worker import run_worker

    sys.exit(run_worker(SERVICE, health_port=0))
else:
    declare_actors()
