"""The scheduler loop on real Redis and PostgreSQL: fires, cursor, policies, split brain."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

import redis
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from nightshift.common.db.engine import make_engine, make_session_factory
from nightshift.common.db.models import JobRecord, ScheduleEvent, ScheduleRow
from nightshift.common.processes import free_port, wait_for
from nightshift.common.schedules import Schedule
from tests.integration.scheduler.conftest import StartScheduler
from tests.support.scheduled_messages import scheduled_messages
from tests.support.scheduler_schedules import EVERY_SECOND, SCHEDULES, TICK

QUEUE = TICK.queue_name


def test_active_scheduler_enqueues_one_message_per_second_with_its_record(
    start_scheduler: StartScheduler, redis_client: redis.Redis[bytes], clean_db: Engine
) -> None:
    catch_up = SCHEDULES[0]
    running = start_scheduler((catch_up,))

    messages = wait_for(
        lambda: len(scheduled_messages(redis_client, QUEUE)) >= 3 and scheduled_messages(redis_client, QUEUE),
        timeout=10,
        what="three fires",
    )

    times = [m.scheduled_for for m in messages]
    assert len(set(times)) == len(times)
    assert all(t.microsecond == 0 for t in times)
    assert all(b - a == dt.timedelta(seconds=1) for a, b in itertools.pairwise(times))
    assert running.scheduler.status()["role"] == "active"
    with Session(clean_db) as session:
        # The cursor is written once the tick's messages are enqueued.
        row = wait_for(
            lambda: (
                (r := session.get(ScheduleRow, catch_up.name, populate_existing=True))
                and r.handled_through >= times[-1]
                and r
            ),
            what="the cursor past the fires",
        )
        record = wait_for(
            lambda: session.get(JobRecord, row.last_message_id, populate_existing=True), what="job record"
        )
    assert record.status == "queued"
    assert record.trigger == "schedule:ticks.catch_up"


def test_two_schedulers_that_both_think_they_are_active_never_enqueue_a_fire_twice(
    start_scheduler: StartScheduler, redis_client: redis.Redis[bytes], clean_db: Engine
) -> None:
    # A split brain: each holds a lease of its own, so both fire the same schedules.
    first = start_scheduler(SCHEDULES, lease_key="test:lease:a")
    second = start_scheduler(SCHEDULES, lease_key="test:lease:b")
    wait_for(lambda: first.lease.token() and second.lease.token(), what="both active")

    wait_for(lambda: len(scheduled_messages(redis_client, QUEUE)) >= 12, timeout=15, what="four seconds of fires")

    messages = scheduled_messages(redis_client, QUEUE)
    per_fire = Counter((m.schedule, m.scheduled_for) for m in messages)
    assert max(per_fire.values()) == 1
    assert len({m.message_id for m in messages}) == len(messages)


def test_fires_missed_while_no_scheduler_ran_follow_each_policy(
    start_scheduler: StartScheduler, redis_client: redis.Redis[bytes], clean_db: Engine
) -> None:
    first = start_scheduler(SCHEDULES)
    wait_for(lambda: scheduled_messages(redis_client, QUEUE), what="a first fire")
    first.kill()
    # Ten seconds of downtime, without waiting ten seconds: move every cursor back.
    with Session(clean_db) as session, session.begin():
        cursor = session.scalar(select(ScheduleRow.handled_through).where(ScheduleRow.name == "ticks.skip"))
        assert cursor is not None
        session.execute(update(ScheduleRow).values(handled_through=cursor - dt.timedelta(seconds=10)))
    restart = dt.datetime.now(dt.UTC)

    start_scheduler(SCHEDULES)
    wait_for(
        lambda: (
            {m.schedule for m in scheduled_messages(redis_client, QUEUE) if m.scheduled_for > restart}
            >= {"ticks.catch_up", "ticks.coalesce", "ticks.skip"}
        ),
        timeout=10,
        what="on-time fires after the restart",
    )

    messages = scheduled_messages(redis_client, QUEUE)
    fires = {
        name: [m.scheduled_for for m in messages if m.schedule == name]
        for name in ("ticks.catch_up", "ticks.coalesce", "ticks.skip")
    }
    # The seconds between the moved-back cursor and the old one never fired; the old one did,
    # and its claim keeps it from firing again.
    missed = {cursor - dt.timedelta(seconds=k) for k in range(1, 10)}

    def skip_events() -> dict[str, ScheduleEvent]:
        with Session(clean_db) as session:
            events = session.scalars(select(ScheduleEvent).where(ScheduleEvent.kind == "misfire_skipped"))
            return {e.schedule: e for e in events}

    skipped = wait_for(lambda: len(skip_events()) == 2 and skip_events(), what="the skips recorded")
    # Every fire, before and after the downtime, was enqueued at most once.
    assert all(len(times) == len(set(times)) for times in fires.values())
    # catch_up: every missed second ran; nothing skipped.
    assert missed <= set(fires["ticks.catch_up"])
    assert "ticks.catch_up" not in skipped
    # coalesce and skip: the missed seconds were recorded as skipped, and none of them ran;
    # coalesce ran once for them all (the old cursor's second, already enqueued, counts).
    for name in ("ticks.coalesce", "ticks.skip"):
        event = skipped[name]
        assert event.first_fire_at == min(missed)
        assert event.last_fire_at == max(missed)
        assert event.detail == "9 fire(s)"
        assert not missed & set(fires[name])
    assert cursor in fires["ticks.coalesce"]


def test_overlap_skip_waits_for_the_previous_run_to_finish(
    start_scheduler: StartScheduler, redis_client: redis.Redis[bytes], clean_db: Engine
) -> None:
    exclusive = Schedule("ticks.exclusive", EVERY_SECOND, TICK, {"label": "x"}, overlap="skip", timezone="UTC")
    start_scheduler((exclusive,))
    first = wait_for(lambda: scheduled_messages(redis_client, QUEUE), what="a first fire")[0]

    with Session(clean_db) as session:
        wait_for(
            lambda: session.scalar(
                select(ScheduleEvent)
                .where(ScheduleEvent.kind == "overlap_skipped")
                .execution_options(populate_existing=True)
            ),
            timeout=10,
            what="a fire skipped while the first run is queued",
        )
    assert len(scheduled_messages(redis_client, QUEUE)) == 1
    # The run finishes (as a worker's job records middleware would record it): fires resume.
    with Session(clean_db) as session, session.begin():
        wait_for(lambda: session.get(JobRecord, first.message_id), what="the first run's record")
        session.execute(update(JobRecord).where(JobRecord.message_id == first.message_id).values(status="done"))
    wait_for(lambda: len(scheduled_messages(redis_client, QUEUE)) == 2, timeout=10, what="the next fire")


def test_fires_continue_while_postgresql_is_unreachable_and_cursors_catch_up(
    start_scheduler: StartScheduler, redis_client: redis.Redis[bytes], clean_db: Engine
) -> None:
    factory = make_session_factory(clean_db)
    catch_up = SCHEDULES[0]
    start_scheduler((catch_up,), session_factory=factory)
    wait_for(lambda: scheduled_messages(redis_client, QUEUE), what="a first fire")

    # PostgreSQL becomes unreachable for the scheduler (nothing listens on that port).
    unreachable = make_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    factory.configure(bind=unreachable)
    outage_from = dt.datetime.now(dt.UTC)
    wait_for(
        lambda: len([m for m in scheduled_messages(redis_client, QUEUE) if m.scheduled_for > outage_from]) >= 3,
        timeout=15,
        what="fires during the outage",
    )
    factory.configure(bind=clean_db)
    outage_until = dt.datetime.now(dt.UTC)

    with Session(clean_db) as session:
        wait_for(
            lambda: (
                (r := session.get(ScheduleRow, catch_up.name, populate_existing=True))
                and r.handled_through >= outage_until
            ),
            timeout=10,
            what="the cursor written again",
        )
    times = [m.scheduled_for for m in scheduled_messages(redis_client, QUEUE)]
    assert len(times) == len(set(times))
    assert times == [times[0] + dt.timedelta(seconds=n) for n in range(len(times))]
    unreachable.dispose()
