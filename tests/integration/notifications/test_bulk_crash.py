"""A bulk batch redelivered after its worker was SIGKILLed sends nobody twice and loses nobody.

A real ``nightshift run notifications`` process sends a campaign of ten
recipients in requests of four to the local SendGrid server; it is killed at
three points — while a request is in flight, after SendGrid answered but before
the answer was recorded, and before a request was made — and the test's own
worker (started after the kill) takes the redelivered message over. The
recording server counts what each address received; signed ``processed``
events, built from the requests SendGrid received as its event webhook would
send them, settle the recipients left uncertain.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

from nightshift.common import runtime
from nightshift.common.cli import main
from nightshift.common.contracts.notifications import SEND_BULK_EMAIL, BulkEmailBatch, BulkRecipient
from nightshift.common.db.engine import make_session_factory
from nightshift.common.processes import free_port, wait_for
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.notifications import bulk, bulk_reconcile
from nightshift.notifications.errors import ProviderOutcomeUnknown
from nightshift.notifications.mailers import configured_mailer
from nightshift.notifications.public import build_public_server, configured_links
from nightshift.notifications.public_http import PublicServer
from tests.integration.notifications.conftest import PUBLIC_KEY, post_events, signed_headers
from tests.support.processes import service_process
from tests.support.sendgrid_stub import SendGridStub

pytestmark = pytest.mark.integration

CAMPAIGN = "news:crash"
RECIPIENTS = 10
#: Requests of four: slices of 4, 4 and 2 recipients.
SLICE = 4
#: The service as deployed: its worker and its public listener (the event webhook).
WORKER = ["-m", "nightshift.common.cli", "run", "notifications", "--health-port", "0"]


@pytest.fixture
def mail_env(configure_mail: Callable[..., None], sendgrid_stub: SendGridStub) -> dict[str, str]:
    """The settings of this test process and of the worker processes it starts."""
    values = {
        "MAIL_BACKEND": "sendgrid",
        "NOTIFICATIONS_SENDGRID_API_KEY": "SG.crash",
        "NOTIFICATIONS_SENDGRID_HOST": sendgrid_stub.url,
        "NOTIFICATIONS_SENDGRID_BATCH_SIZE": str(SLICE),
        "NOTIFICATIONS_SENDGRID_RPS": "1000",
        "NOTIFICATIONS_UNSUBSCRIBE_SECRET": "a-test-secret-of-enough-length",
        "NOTIFICATIONS_PUBLIC_URL": "http://127.0.0.1:1",
        "NOTIFICATIONS_SENDGRID_WEBHOOK_PUBLIC_KEY": PUBLIC_KEY,
    }
    configure_mail(**values)
    return values


def _users(engine: Engine) -> list[int]:
    with engine.begin() as connection:
        return list(
            connection.scalars(
                text(
                    "INSERT INTO users (email, display_name, locale) "
                    "SELECT 'reader' || i || '@example.org', 'Reader ' || i, 'en' "
                    "FROM generate_series(1, :n) i ORDER BY i RETURNING id"
                ),
                {"n": RECIPIENTS},
            )
        )


def _batch(users: list[int]) -> BulkEmailBatch:
    return BulkEmailBatch(
        campaign=CAMPAIGN,
        template="digest",
        category="digest",
        recipients=[BulkRecipient(user_id=u) for u in users],
    )


def _statuses(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status, count(*) FROM bulk_email_deliveries WHERE campaign = :c GROUP BY status"),
            {"c": CAMPAIGN},
        ).all()
    return {status: int(count) for status, count in rows}


def _waiting_on_lock(engine: Engine, statement: str) -> bool:
    """Whether a backend is waiting for a lock while running *statement* (a prefix of its SQL)."""
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND pid <> pg_backend_pid() AND query LIKE :q"
                ),
                {"q": statement + "%"},
            )
        )


@contextmanager
def _worker_process(env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A ``nightshift run notifications`` process (killed at the end if still running: the test is over)."""
    settings = {**env, "NOTIFICATIONS_PUBLIC_PORT": str(free_port())}
    with service_process(WORKER, tmp_path / "worker.log", settings) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()


@pytest.fixture
def successor(run_worker: Any, mail_env: dict[str, str]) -> Iterator[Callable[[], PublicServer]]:
    """Start the worker that takes the killed one's message over (this process's test worker) and its
    public listener; returns the listener (SendGrid's event webhook)."""
    servers: list[PublicServer] = []

    def start() -> PublicServer:
        run_worker({SEND_BULK_EMAIL.queue_name})
        servers.append(build_public_server(port=0).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def _confirm(stub: SendGridStub, request_numbers: list[int], port: int) -> int:
    """Post the signed ``processed`` events SendGrid would send for the given requests; the status."""
    events = [
        {
            "email": personalization["to"][0]["email"],
            "timestamp": int(time.time()),
            "event": "processed",
            "sg_event_id": f"ev-{number}-{index}",
            "sg_message_id": f"sg-{number}",
            **personalization["custom_args"],  # SendGrid posts custom arguments as top-level fields
        }
        for number in request_numbers
        for index, personalization in enumerate(stub.requests[number - 1].body["personalizations"])
    ]
    body = json.dumps(events).encode()
    url = f"http://127.0.0.1:{port}/providers/sendgrid/events"
    return post_events(url, body, signed_headers(body, str(int(time.time()))))


def _assert_everyone_once(stub: SendGridStub, engine: Engine) -> None:
    received = stub.received()
    assert len(received) == RECIPIENTS, received
    assert set(received.values()) == {1}, received
    assert _statuses(engine) == {"sent": RECIPIENTS}


def test_a_request_in_flight_when_the_worker_dies_is_not_sent_again_and_is_confirmed_by_events(
    broker: NightshiftRedisBroker,
    clean_db: Engine,
    sendgrid_stub: SendGridStub,
    mail_env: dict[str, str],
    successor: Callable[[], PublicServer],
    tmp_path: Path,
) -> None:
    users = _users(clean_db)
    sendgrid_stub.hold = {2}  # the second request reaches SendGrid and gets no answer until released

    with _worker_process(mail_env, tmp_path) as first:
        SEND_BULK_EMAIL.send(_batch(users), broker=broker)
        wait_for(lambda: len(sendgrid_stub.requests) == 2, timeout=60, interval=0.02, what="second request in flight")
        _kill(first)
    sendgrid_stub.release()
    listener = successor()
    wait_for(lambda: _statuses(clean_db) == {"sent": 6, "uncertain": 4}, timeout=60, what="redelivery settled")

    # The redelivered batch did not repeat the in-flight request: three requests, everyone once.
    assert len(sendgrid_stub.requests) == 3
    assert len(sendgrid_stub.received()) == RECIPIENTS and set(sendgrid_stub.received().values()) == {1}

    assert _confirm(sendgrid_stub, [2], listener.port) == 200
    _assert_everyone_once(sendgrid_stub, clean_db)
    with clean_db.connect() as connection:
        confirmed: dict[str, int] = dict(
            connection.execute(
                text("SELECT confirmed_by, count(*) FROM bulk_email_deliveries GROUP BY confirmed_by")
            ).all()
        )
    assert confirmed == {"response": 6, "event": 4}


def test_a_worker_dying_after_the_answer_before_recording_it_sends_nobody_twice(
    broker: NightshiftRedisBroker,
    clean_db: Engine,
    sendgrid_stub: SendGridStub,
    mail_env: dict[str, str],
    successor: Callable[[], PublicServer],
    tmp_path: Path,
) -> None:
    users = _users(clean_db)
    sendgrid_stub.hold = {1}

    with _worker_process(mail_env, tmp_path) as first, clean_db.connect() as blocker:
        SEND_BULK_EMAIL.send(_batch(users), broker=broker)
        wait_for(lambda: len(sendgrid_stub.requests) == 1, timeout=60, interval=0.02, what="first request in flight")
        # Hold the slice's row so that recording the answer waits: SendGrid has answered, nothing is committed.
        blocker.execute(text("SELECT id FROM bulk_email_slices FOR UPDATE"))
        sendgrid_stub.release()
        wait_for(lambda: sendgrid_stub.answered == 1, timeout=30, interval=0.02, what="SendGrid answered")
        wait_for(
            lambda: _waiting_on_lock(clean_db, "UPDATE bulk_email_slices"), timeout=30, interval=0.02, what="blocked"
        )
        _kill(first)
        blocker.rollback()
    listener = successor()
    wait_for(lambda: _statuses(clean_db) == {"sent": 6, "uncertain": 4}, timeout=60, what="redelivery settled")

    assert len(sendgrid_stub.requests) == 3
    assert _confirm(sendgrid_stub, [1], listener.port) == 200
    _assert_everyone_once(sendgrid_stub, clean_db)


def test_a_worker_dying_before_its_request_loses_nobody(
    broker: NightshiftRedisBroker,
    clean_db: Engine,
    sendgrid_stub: SendGridStub,
    mail_env: dict[str, str],
    successor: Callable[[], PublicServer],
    tmp_path: Path,
) -> None:
    users = _users(clean_db)

    with _worker_process(mail_env, tmp_path) as first, clean_db.connect() as blocker:
        # An uncommitted row of the second slice's first user: recording that slice as ``sending`` waits for it.
        blocker.execute(
            text(
                "INSERT INTO bulk_email_deliveries (campaign, user_id, status, template, backend) "
                "VALUES (:c, :u, 'sent', 'digest', 'sendgrid')"
            ),
            {"c": CAMPAIGN, "u": users[SLICE]},
        )
        SEND_BULK_EMAIL.send(_batch(users), broker=broker)
        wait_for(
            lambda: _waiting_on_lock(clean_db, "INSERT INTO bulk_email_deliveries"),
            timeout=60,
            interval=0.02,
            what="the second slice blocked before its request",
        )
        assert len(sendgrid_stub.requests) == 1
        _kill(first)
        blocker.rollback()
    successor()
    wait_for(lambda: _statuses(clean_db) == {"sent": RECIPIENTS}, timeout=60, what="redelivery sent everyone")

    assert len(sendgrid_stub.requests) == 3
    _assert_everyone_once(sendgrid_stub, clean_db)


def test_recipients_still_uncertain_after_the_grace_period_alert_and_an_operator_resends_them_once(
    broker: NightshiftRedisBroker,
    clean_db: Engine,
    sendgrid_stub: SendGridStub,
    mail_env: dict[str, str],
    run_worker: Any,
) -> None:
    users = _users(clean_db)
    sessions = make_session_factory(clean_db)
    mailer = runtime.resource(configured_mailer)
    links = runtime.resource(configured_links)
    sendgrid_stub.next_statuses = [202, 0]  # the second request's connection drops: SendGrid never got it

    with pytest.raises(ProviderOutcomeUnknown):
        bulk.send_bulk_email(sessions, mailer, _batch(users), links=links)
    retried = bulk.send_bulk_email(sessions, mailer, _batch(users), links=links)

    assert (retried.already_done, retried.sent) == (8, 2)  # the uncertain four are left alone
    assert _statuses(clean_db) == {"sent": 6, "uncertain": 4}
    listed = CliRunner().invoke(main, ["notifications", "uncertain"])
    assert listed.exit_code == 0 and f"{CAMPAIGN}  uncertain       4" in listed.output, listed.output

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    assert bulk_reconcile.alert_uncertain(sessions, grace=dt.timedelta(hours=1)) == 0  # within the grace period
    assert bulk_reconcile.alert_uncertain(sessions, grace=dt.timedelta(hours=1), now=later) == 1
    assert bulk_reconcile.alert_uncertain(sessions, grace=dt.timedelta(hours=1), now=later) == 0  # once
    with clean_db.connect() as connection:
        [alert] = connection.execute(
            text("SELECT payload FROM outbox_events WHERE event_name = 'ops.alert_raised'")
        ).scalars()
    assert (alert["kind"], alert["facts"]["campaign"], alert["facts"]["recipients"]) == (
        "bulk_email_uncertain",
        CAMPAIGN,
        4,
    )

    run_worker({SEND_BULK_EMAIL.queue_name})
    resent = CliRunner().invoke(main, ["notifications", "resend-uncertain", CAMPAIGN, "--yes"])
    assert resent.exit_code == 0, resent.output
    wait_for(lambda: _statuses(clean_db) == {"sent": RECIPIENTS}, timeout=60, what="uncertain recipients resent")

    assert len(sendgrid_stub.dropped) == 1 and len(sendgrid_stub.requests) == 3
    _assert_everyone_once(sendgrid_stub, clean_db)
    again = CliRunner().invoke(main, ["notifications", "resend-uncertain", CAMPAIGN, "--yes"])
    assert again.exit_code != 0 and "no uncertain recipient" in again.output


def test_with_the_outbox_a_slice_found_in_flight_is_simply_written_again(
    clean_db: Engine, configure_mail: Callable[..., None], tmp_path: Path
) -> None:
    users = _users(clean_db)
    sessions = make_session_factory(clean_db)
    mailer = runtime.resource(configured_mailer)
    # A sender died mid-slice: its first recipient is recorded ``sending``, maybe written to the outbox.
    with clean_db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO bulk_email_deliveries (campaign, user_id, status, template, backend, slice_id) "
                "VALUES (:c, :u, 'sending', 'digest', 'outbox', gen_random_uuid())"
            ),
            {"c": CAMPAIGN, "u": users[0]},
        )

    outcome = bulk.send_bulk_email(sessions, mailer, _batch(users), links=runtime.resource(configured_links))

    # Writing the same file again is harmless: no one is left uncertain, each has one file.
    assert (outcome.sent, outcome.uncertain) == (RECIPIENTS, 0)
    assert _statuses(clean_db) == {"sent": RECIPIENTS}
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == RECIPIENTS
