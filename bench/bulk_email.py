"""The weekly digest and a bulk announcement to 100,000 recipients, end to end, through SendGrid's client.

Seeds (set-based) ``--users`` active users who all interacted with authors who
posted this week; ``--unsubscribed`` percent turned the digest off and
``--suppressed`` percent have a suppressed address. A local HTTP server answers
like SendGrid's Mail Send API with a realistic latency (``--latency-ms`` per
request plus ``--per-recipient-us`` per personalization) and records every
request. A real notifications worker process (``nightshift worker
notifications``) sends; the benchmark process plays the posts worker.

Phase 1, **digest**: ``send_content_digest_email`` composes and enqueues batches
of ids; the clock stops when the last recipient is recorded. Phase 2,
**announcement**: batches of 5,000 recipients naming every user, so the
notifications side does the skipping. For each: requests made, personalizations
per request, recipients per second, and whether the recipients skipped are
exactly the unsubscribed and suppressed ones.

Run it with ``python -m bench.bulk_email`` (``--users 10000`` for a quick run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine, text

from bench._common import header, servers
from nightshift.common.broker import build_broker
from nightshift.common.contracts.notifications import SEND_BULK_EMAIL, BulkEmailBatch, BulkRecipient
from nightshift.common.db.engine import make_engine, make_session_factory
from nightshift.common.processes import free_port, stop_processes, wait_for
from nightshift.common.settings import CommonSettings
from nightshift.posts import digest

TIMEZONE = "Europe/Paris"


class SendGridRecorder:
    """A local Mail Send endpoint with latency; records personalizations per request."""

    def __init__(self, *, latency_s: float, per_recipient_s: float) -> None:
        self.sizes: list[int] = []
        self.emails: set[str] = set()
        self.duplicates = 0
        lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                people = body["personalizations"]
                time.sleep(latency_s + per_recipient_s * len(people))
                with lock:
                    recorder.sizes.append(len(people))
                    for person in people:
                        email = person["to"][0]["email"]
                        recorder.duplicates += email in recorder.emails
                        recorder.emails.add(email)
                self.send_response(202)
                self.send_header("X-Message-Id", f"bench-{len(recorder.sizes)}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        self.sizes.clear()
        self.emails.clear()
        self.duplicates = 0


def seed(engine: Engine, users: int, unsubscribed_pct: float, suppressed_pct: float, now: dt.datetime) -> None:
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE users, posts, notification_preferences, email_suppressions CASCADE"))
        connection.execute(text("TRUNCATE bulk_email_deliveries"))
        connection.execute(
            text(
                "INSERT INTO users (email, display_name, locale, last_active_at) "
                "SELECT 'user' || i || '@example.org', 'User ' || i, CASE WHEN i % 3 = 0 THEN 'fr' ELSE 'en' END, :now "
                "FROM generate_series(1, :n) i"
            ),
            {"n": users, "now": now - dt.timedelta(days=1)},
        )
        connection.execute(
            text(
                "INSERT INTO posts (author_id, body, language, created_at) "
                "SELECT a, 'Post ' || k || ' of author ' || a || ' #bench', "
                "       CASE WHEN k % 2 = 0 THEN 'fr' ELSE 'en' END, :now - make_interval(days => 1 + k) "
                "FROM generate_series(1, 50) a, generate_series(1, 5) k"
            ),
            {"now": now},
        )
        # Every user liked one post of one of the 50 authors (last week's, so it is not in the digest).
        connection.execute(
            text(
                "INSERT INTO posts (author_id, body, created_at) SELECT a, 'older', :old FROM generate_series(1, 50) a"
            ),
            {"old": now - dt.timedelta(days=20)},
        )
        connection.execute(
            text(
                "INSERT INTO post_likes (post_id, user_id, created_at) "
                "SELECT (SELECT min(id) FROM posts WHERE body = 'older') + (u % 50), u, :at "
                "FROM generate_series(51, :n) u"
            ),
            {"n": users, "at": now - dt.timedelta(days=10)},
        )
        connection.execute(
            text(
                "INSERT INTO notification_preferences (user_id, category, channel, enabled) "
                "SELECT id, 'digest', 'email', false FROM users WHERE id > 50 AND id % 1000 < :permille"
            ),
            {"permille": int(unsubscribed_pct * 10)},
        )
        connection.execute(
            text(
                "INSERT INTO email_suppressions (email, reason, source) "
                "SELECT email, 'bounce', 'bench' FROM users WHERE id > 50 AND (id + 500) % 1000 < :permille"
            ),
            {"permille": int(suppressed_pct * 10)},
        )
        connection.execute(text("ANALYZE"))


def expected_recipients(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT email FROM users u WHERE id > 50 "
                "AND NOT EXISTS (SELECT 1 FROM notification_preferences p WHERE p.user_id = u.id AND NOT p.enabled) "
                "AND NOT EXISTS (SELECT 1 FROM email_suppressions s WHERE s.email = lower(u.email))"
            )
        ).scalars()
        return set(rows)


def recorded(engine: Engine, campaign: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.scalar(
                text(
                    "SELECT count(*) FROM bulk_email_deliveries "
                    "WHERE campaign = :c AND status NOT IN ('sending', 'uncertain')"  # settled only
                ),
                {"c": campaign},
            )
            or 0
        )


def report(name: str, recorder: SendGridRecorder, seconds: float, expected: set[str], engine: Engine, c: str) -> None:
    with engine.connect() as connection:
        statuses: dict[str, int] = dict(
            connection.execute(
                text("SELECT status, count(*) FROM bulk_email_deliveries WHERE campaign = :c GROUP BY status"),
                {"c": c},
            ).all()
        )
    sent = len(recorder.emails)
    print(f"{name}:")
    print(
        f"  requests to SendGrid        {len(recorder.sizes)} (largest {max(recorder.sizes or [0])} personalizations)"
    )
    print(f"  recipients sent             {sent}  ({sent / seconds:,.0f} per second end to end, {seconds:.1f} s)")
    print(f"  duplicates                  {recorder.duplicates}")
    print(f"  recorded by status          {statuses}")
    print(f"  sent == eligible exactly    {recorder.emails == expected}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--unsubscribed", type=float, default=3.0, help="percent who turned the digest off")
    parser.add_argument("--suppressed", type=float, default=2.0, help="percent whose address is suppressed")
    parser.add_argument("--latency-ms", type=float, default=250.0, help="SendGrid's time per request")
    parser.add_argument("--per-recipient-us", type=float, default=500.0, help="and per personalization")
    parser.add_argument("--threads", type=int, default=8, help="notifications worker threads")
    options = parser.parse_args()
    now = dt.datetime.now(dt.UTC)
    monday = (now - dt.timedelta(days=now.weekday())).date() + dt.timedelta(days=7)
    print(header("Bulk email: the weekly digest and an announcement through SendGrid's client"))
    recorder = SendGridRecorder(latency_s=options.latency_ms / 1000, per_recipient_s=options.per_recipient_us / 1e6)
    with servers("bulk_email") as srv:
        engine = make_engine(srv.database_url)
        started = time.perf_counter()
        seed(
            engine,
            options.users,
            options.unsubscribed,
            options.suppressed,
            dt.datetime.combine(monday, dt.time(), dt.UTC),
        )
        print(f"seeded {options.users} users in {time.perf_counter() - started:.1f} s")
        expected = expected_recipients(engine)
        env = {
            **srv.env(),
            "MAIL_BACKEND": "sendgrid",
            "NOTIFICATIONS_SENDGRID_API_KEY": "SG.bench",
            "NOTIFICATIONS_SENDGRID_HOST": recorder.url,
            "NOTIFICATIONS_SENDGRID_RPS": "100",
            "NOTIFICATIONS_PUBLIC_PORT": str(free_port()),
            "NOTIFICATIONS_UNSUBSCRIBE_SECRET": "bench-secret-of-enough-length",
        }
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "nightshift.common.cli",
                "worker",
                "notifications",
                "--threads",
                str(options.threads),
                "--health-port",
                "0",
            ],
            env=env,
        )
        try:
            settings = CommonSettings(redis_url=srv.redis_url, database_url=srv.database_url)
            broker = build_broker(settings)
            sessions = make_session_factory(engine)
            started = time.perf_counter()
            outcome = digest.send_content_digest_email(
                sessions,
                lambda batch: SEND_BULK_EMAIL.send(batch, broker=broker),
                week_end=monday + dt.timedelta(days=0),
                timezone=TIMEZONE,
                now=dt.datetime.combine(monday, dt.time(), dt.UTC),
            )
            composed = time.perf_counter() - started
            wait_for(
                lambda: recorded(engine, outcome.campaign) >= outcome.recipients,
                timeout=1800,
                interval=0.2,
                what="every digest recipient recorded",
            )
            seconds = time.perf_counter() - started
            print(f"digest composed in {composed:.1f} s: {outcome}")
            report("digest", recorder, seconds, expected, engine, outcome.campaign)

            recorder.reset()
            with engine.connect() as connection:
                everyone = list(connection.execute(text("SELECT id FROM users WHERE id > 50 ORDER BY id")).scalars())
            started = time.perf_counter()
            for start in range(0, len(everyone), 5000):
                SEND_BULK_EMAIL.send(
                    BulkEmailBatch(
                        campaign="announcement:bench",
                        template="digest",
                        category="digest",
                        recipients=[BulkRecipient(user_id=u) for u in everyone[start : start + 5000]],
                    ),
                    broker=broker,
                )
            wait_for(
                lambda: recorded(engine, "announcement:bench") >= len(everyone),
                timeout=1800,
                interval=0.2,
                what="every announcement recipient recorded",
            )
            report(
                "announcement (skipping done by notifications)",
                recorder,
                time.perf_counter() - started,
                expected,
                engine,
                "announcement:bench",
            )
            broker.close()
        finally:
            stop_processes([worker], grace_s=10)
        engine.dispose()


if __name__ == "__main__":
    main()
