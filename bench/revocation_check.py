"""The per-message cost of honouring revocations, on a real Redis.

:class:`~nightshift.common.middleware.revocations.Revocations` sends one
``EXISTS`` per message before it runs; :class:`WorkerLiveness` only touches a
dict per message. This measures both hooks call by call on a worker's broker
(redis-py with hiredis, as deployed): the wall time a worker thread spends
(most of it waiting for Redis, with the GIL released) and the CPU time.

Run it with ``python -m bench.revocation_check [--messages N]``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from dramatiq import Message
from dramatiq.broker import MessageProxy

from bench._common import WORKDIR, header, median, percentile
from nightshift.common.local.embedded import EmbeddedRedis
from nightshift.common.middleware.liveness import WorkerLiveness
from nightshift.common.middleware.revocations import Revocations
from nightshift.common.redis_broker import NightshiftRedisBroker


def _measure(hooks: Any, broker: NightshiftRedisBroker, messages: list[MessageProxy]) -> tuple[list[float], float]:
    wall = []
    cpu_start = time.process_time()
    for message in messages:
        start = time.perf_counter()
        hooks.before_process_message(broker, message)
        hooks.after_process_message(broker, message, result=None)
        wall.append((time.perf_counter() - start) * 1e6)
    return wall, (time.process_time() - cpu_start) * 1e6 / len(messages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    count = parser.parse_args().messages
    server = EmbeddedRedis(WORKDIR / "revocation_check" / "redis").start()
    try:
        broker = NightshiftRedisBroker(url=server.url + "/1", middleware=[])
        messages = [
            MessageProxy(Message(queue_name="q", actor_name="a", args=(), kwargs={}, options={})) for _ in range(count)
        ]
        print(header(f"Revocation check per message ({count} messages)"))
        for name, hooks in (("Revocations (EXISTS)", Revocations()), ("WorkerLiveness (dict)", WorkerLiveness())):
            _measure(hooks, broker, messages[: count // 10])  # warm up
            wall, cpu = _measure(hooks, broker, messages)
            print(
                f"{name:<24} wall p50 {median(wall):6.1f} µs  p99 {percentile(wall, 0.99):6.1f} µs"
                f"  CPU {cpu:5.1f} µs/message"
            )
        broker.client.connection_pool.disconnect()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
