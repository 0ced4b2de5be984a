"""Webhook deliveries per second to a local endpoint, and what a dead endpoint costs once its breaker opens.

A real Dramatiq worker (the full Nightshift middleware stack, ``--threads``
threads) consumes ``deliver_webhook`` messages; the receivers run in this process.

* **healthy** — ``--deliveries`` events to an endpoint answering 204 after
  ``--latency-ms``: deliveries per second, signed and recorded.
* **dead** — the same number of events to an endpoint that answers 503: when its
  breaker opens (after ``--failures`` failures in a row), how many requests the
  dead endpoint received in all, and, once open, how many per second (only the
  half-open probes, one per ``--open-s``) and how long the worker spends on each
  message that meets the open breaker (a Redis script and a re-enqueue).

Run it with ``python -m bench.webhooks``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dramatiq
import redis
from sqlalchemy import text

from bench._common import header, median, servers
from nightshift.common import runtime
from nightshift.common.breakers import read_state
from nightshift.common.broker import build_broker
from nightshift.common.contracts.notifications import DELIVER_WEBHOOK, WebhookDelivery
from nightshift.common.db.engine import make_engine, make_session_factory
from nightshift.common.processes import wait_for


class Endpoint:
    """A local receiver answering *status* after *latency_s*; counts requests with their times."""

    def __init__(self, *, status: int, latency_s: float) -> None:
        self.status = status
        self.times: list[float] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(latency_s)
                endpoint.times.append(time.time())
                self.send_response(endpoint.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--failures", type=int, default=5, help="failures in a row that open a breaker")
    parser.add_argument("--open-s", type=float, default=2.0, help="seconds a breaker stays open before a probe")
    parser.add_argument("--dead-window-s", type=float, default=10.0, help="how long the dead endpoint is watched")
    options = parser.parse_args()
    print(header("Webhooks: deliveries per second, and a dead endpoint behind its breaker"))
    with servers("webhooks") as srv:
        os.environ.update(
            REDIS_URL=srv.redis_url,
            DATABASE_URL=srv.database_url,
            ENVIRONMENT="test",
            LOG_LEVEL="WARNING",
            NOTIFICATIONS_WEBHOOKS_ALLOW_LOOPBACK="true",
            NOTIFICATIONS_WEBHOOK_BREAKER_FAILURES=str(options.failures),
            NOTIFICATIONS_WEBHOOK_BREAKER_OPEN_S=str(options.open_s),
        )
        runtime.reset()
        engine = make_engine(srv.database_url)
        redis.Redis.from_url(srv.redis_url).flushall()
        broker = build_broker(runtime.settings())
        import nightshift.notifications.actors  # noqa: F401 - declares deliver_webhook on this broker
        from nightshift.notifications.webhooks.endpoints import register_endpoint

        broker.declare_queue(DELIVER_WEBHOOK.queue_name)
        sessions = make_session_factory(engine)
        with engine.begin() as connection:
            connection.execute(text("TRUNCATE users, webhook_endpoints CASCADE"))
            owner = connection.scalar(
                text("INSERT INTO users (email, display_name) VALUES ('owner@example.org', 'Owner') RETURNING id")
            )
        healthy = Endpoint(status=204, latency_s=options.latency_ms / 1000)
        dead = Endpoint(status=503, latency_s=options.latency_ms / 1000)
        healthy_id = register_endpoint(sessions, owner, healthy.url, ["post.created"], allow_loopback=True).id
        dead_id = register_endpoint(sessions, owner, dead.url, ["post.created"], allow_loopback=True).id
        worker = dramatiq.Worker(broker, queues={DELIVER_WEBHOOK.queue_name}, worker_threads=options.threads)
        worker.start()
        try:
            started = time.perf_counter()
            enqueue(broker, healthy_id, options.deliveries, "healthy")
            wait_for(
                lambda: delivered(engine, healthy_id) >= options.deliveries,
                timeout=600,
                interval=0.1,
                what="every healthy delivery",
            )
            seconds = time.perf_counter() - started
            print(f"healthy endpoint ({options.latency_ms:.0f} ms per answer, {options.threads} threads):")
            print(
                f"  {options.deliveries} deliveries in {seconds:.2f} s = {options.deliveries / seconds:,.0f} per second"
            )

            client = redis.Redis.from_url(srv.redis_url)
            first_open: list[float] = []
            watcher = threading.Thread(
                target=watch_opening, args=(client, f"webhook:{dead_id}", first_open), daemon=True
            )
            watcher.start()
            enqueue(broker, dead_id, options.deliveries, "dead")
            watcher.join(timeout=60)
            if not first_open:
                raise SystemExit("the dead endpoint's breaker never opened")
            opened = first_open[0]
            time.sleep(max(0.0, opened + options.dead_window_s - time.time()))
            window_end = opened + options.dead_window_s
            during = [t for t in dead.times if opened <= t < window_end]
            print(f"dead endpoint (503), breaker opening after {options.failures} failures, open {options.open_s} s:")
            first = min(dead.times) if dead.times else opened
            print(
                f"  breaker open {(opened - first) * 1000:.0f} ms after the first failed request "
                "; requests before: "
                f"{sum(1 for t in dead.times if t < opened)} (threads already under way)"
            )
            print(
                f"  requests in the {options.dead_window_s:.0f} s after opening: {len(during)} "
                f"({len(during) / options.dead_window_s:.2f} per second: the half-open probes)"
            )
            print(f"  messages waiting (deferred, retries untouched): {options.deliveries - len(dead.times)}+")
            print(
                f"  worker time per message meeting the open breaker: {deferral_cost_ms(client, dead_id):.3f} ms "
                "(median of 1,000 checks)"
            )
        finally:
            worker.stop(timeout=5000)
            broker.close()
            engine.dispose()


def watch_opening(client: redis.Redis[bytes], name: str, found: list[float]) -> None:
    """Record when breaker *name* first leaves the closed state (polled every 2 ms)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        if read_state(client, name).state != "closed":
            found.append(time.time())
            return
        time.sleep(0.002)


def enqueue(broker: dramatiq.Broker, endpoint_id: int, count: int, prefix: str) -> None:
    now = dt.datetime.now(dt.UTC)
    for n in range(count):
        DELIVER_WEBHOOK.send(
            WebhookDelivery(
                endpoint_id=endpoint_id,
                event="post.created",
                event_id=f"{prefix}-{n}",
                occurred_at=now,
                data={"post_id": n},
            ),
            broker=broker,
        )


def delivered(engine: Any, endpoint_id: int) -> int:
    with engine.connect() as connection:
        return int(
            connection.scalar(
                text("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = :e AND status = 'delivered'"),
                {"e": endpoint_id},
            )
            or 0
        )


def deferral_cost_ms(client: redis.Redis[bytes], endpoint_id: int) -> float:
    """What refusing a call costs: the breaker's ``allow`` (one Lua script) until it raises."""
    from nightshift.common.breakers import CircuitBreaker
    from nightshift.common.errors import BreakerOpen

    breaker = CircuitBreaker(client, f"webhook:{endpoint_id}", on_open=None)
    timings = []
    for _ in range(1000):
        started = time.perf_counter()
        with contextlib.suppress(BreakerOpen):
            breaker.allow()
        timings.append((time.perf_counter() - started) * 1000)
    return median(timings)


if __name__ == "__main__":
    main()
