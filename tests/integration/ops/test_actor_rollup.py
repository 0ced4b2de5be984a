"""The per-minute actor rollup against the audit it sums: exact counts, percentiles within one
bucket, idempotent re-runs, catching up in bounded batches, late rows, and the Actors endpoint
reading rollup plus tail."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from nightshift.ops import actor_rollup, histogram, maintenance, stats
from nightshift.ops.context import OpsContext
from nightshift.ops.models import MaintenanceRun
from nightshift.ops.settings import OpsSettings
from tests.integration.ops.conftest import bearer
from tests.support.ops import PASSWORD

pytestmark = pytest.mark.integration

#: ``:count`` attempts of ``:actor`` spread over ``:minutes`` minutes before ``:until``, with
#: durations from 0.5 ms to 40 s and every outcome.
_SEED = text(
    """
    INSERT INTO task_audit (message_id, actor, queue, attempt, outcome, started_at, finished_at, duration_ms)
    SELECT gen_random_uuid(), :actor, 'q', 1,
           (ARRAY['done', 'done', 'done', 'skipped', 'retrying', 'dead', 'done'])[1 + i % 7],
           :until - (i % :minutes) * interval '1 minute' - (i % 50) * interval '1 second',
           :until, 0.5 + ((i * 7919) % 4001) ^ 1.3 / 1.2
    FROM generate_series(1, :count) AS i
    """
)

_EXACT = text(
    """
    SELECT actor, date_bin('1 minute', started_at, timestamptz '2000-01-01 00:00:00+00') AS minute,
           count(*), count(*) FILTER (WHERE outcome IN ('done', 'skipped')),
           count(*) FILTER (WHERE outcome IN ('retrying', 'dead')),
           round(sum(duration_ms)::numeric, 3), min(duration_ms), max(duration_ms)
    FROM task_audit GROUP BY 1, 2 ORDER BY 1, 2
    """
)

_EXACT_HOURS = text(
    """
    SELECT actor, date_bin('1 hour', started_at, timestamptz '2000-01-01 00:00:00+00') AS hour,
           count(*), count(*) FILTER (WHERE outcome IN ('retrying', 'dead')),
           round(sum(duration_ms)::numeric, 3), min(duration_ms), max(duration_ms)
    FROM task_audit GROUP BY 1, 2 ORDER BY 1, 2
    """
)

_ROLLED_HOURS = text(
    """
    SELECT actor, hour, attempts, failed, round(duration_sum_ms::numeric, 3), min_ms, max_ms
    FROM ops_actor_hours ORDER BY 1, 2
    """
)

_ROLLED = text(
    """
    SELECT actor, minute, attempts, succeeded, failed, round(duration_sum_ms::numeric, 3), min_ms, max_ms
    FROM ops_actor_minutes ORDER BY 1, 2
    """
)


def _seed(engine: Engine, actor: str, count: int, minutes: int, until: dt.datetime) -> None:
    with engine.begin() as connection:
        connection.execute(_SEED, {"actor": actor, "count": count, "minutes": minutes, "until": until})


def _rows(engine: Engine, query: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def _histograms(engine: Engine, period: str = "minute") -> dict[tuple[str, dt.datetime], dict[int, int]]:
    with engine.connect() as connection:
        query = f"SELECT actor, {period}, buckets, counts FROM ops_actor_{period}s"  # noqa: S608 - test tables
        rows = connection.execute(text(query))
        return {(actor, start): dict(zip(buckets, counts, strict=True)) for actor, start, buckets, counts in rows}


def _exact_histograms(engine: Engine, period: str = "minute") -> dict[tuple[str, dt.datetime], dict[int, int]]:
    found: dict[tuple[str, dt.datetime], dict[int, int]] = {}
    truncate = {"second": 0, "microsecond": 0} | ({"minute": 0} if period == "hour" else {})
    with engine.connect() as connection:
        for actor, started_at, duration in connection.execute(
            text("SELECT actor, started_at, duration_ms FROM task_audit")
        ):
            counts = found.setdefault((actor, started_at.astimezone(dt.UTC).replace(**truncate)), {})
            index = histogram.bucket(duration)
            counts[index] = counts.get(index, 0) + 1
    return found


def _now(engine: Engine) -> dt.datetime:
    with engine.connect() as connection:
        moment: dt.datetime = connection.scalar(text("SELECT now()"))
    return moment


def test_the_rollup_equals_the_exact_aggregates_and_its_percentiles_are_within_a_bucket(
    ctx: OpsContext, clean_db: Engine
) -> None:
    now = _now(clean_db)
    _seed(clean_db, "resize", 3000, 30, now)
    _seed(clean_db, "notify", 1200, 45, now - dt.timedelta(minutes=3))

    # Small batches: minutes split across batches are re-rolled whole each time.
    result = actor_rollup.roll_up(ctx.sessions, batch_size=500)

    assert result["rows"] == 4200 and result["batches"] == 9 and result["caught_up"]
    assert _rows(clean_db, _ROLLED) == _rows(clean_db, _EXACT)
    assert _histograms(clean_db) == _exact_histograms(clean_db)
    assert _rows(clean_db, _ROLLED_HOURS) == _rows(clean_db, _EXACT_HOURS)
    assert _histograms(clean_db, "hour") == _exact_histograms(clean_db, "hour")
    with ctx.sessions() as session:
        assert actor_rollup.progress(session) == result["through_id"]
    with ctx.sessions() as session:
        described = {row["actor"]: row for row in stats.per_actor(session, minutes=60)}
    with clean_db.connect() as connection:
        exact = {
            actor: (attempts, failed, [float(value) for value in quantiles])
            for actor, attempts, failed, quantiles in connection.execute(
                text(
                    "SELECT actor, count(*), count(*) FILTER (WHERE outcome IN ('retrying', 'dead')),"
                    " percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY duration_ms)"
                    " FROM task_audit GROUP BY actor"
                )
            )
        }
    assert set(described) == {"resize", "notify"}
    for actor, (attempts, failed, quantiles) in exact.items():
        row = described[actor]
        assert row["attempts"] == attempts
        assert row["failure_rate"] == round(failed / attempts, 4)
        for estimate, value in zip((row["p50_ms"], row["p95_ms"], row["p99_ms"]), quantiles, strict=True):
            assert abs(estimate - value) <= value * histogram.RELATIVE_ERROR + 0.001, (actor, estimate, value)


def test_rolling_up_again_replaces_minutes_and_changes_nothing(ctx: OpsContext, clean_db: Engine) -> None:
    now = _now(clean_db)
    _seed(clean_db, "resize", 900, 20, now)
    actor_rollup.roll_up(ctx.sessions, batch_size=200)
    first = _rows(clean_db, _ROLLED)

    # The next run reads the last run's rows again (rows committed late below its progress), the one after nothing.
    assert actor_rollup.roll_up(ctx.sessions, batch_size=200)["rows"] == 900
    assert _rows(clean_db, _ROLLED) == first
    assert actor_rollup.roll_up(ctx.sessions, batch_size=200)["rows"] == 0
    # Every minute re-rolled from the start: the same rows, not doubled.
    with clean_db.begin() as connection:
        connection.execute(text("UPDATE ops_rollup_progress SET through_id = 0, rescan_from_id = 0"))
    assert actor_rollup.roll_up(ctx.sessions, batch_size=200)["rows"] == 900
    assert _rows(clean_db, _ROLLED) == first == _rows(clean_db, _EXACT)


def test_it_catches_up_in_bounded_batches_and_counts_late_rows_in_their_minute(
    ctx: OpsContext, clean_db: Engine
) -> None:
    now = _now(clean_db)
    _seed(clean_db, "resize", 600, 10, now - dt.timedelta(hours=3))
    actor_rollup.roll_up(ctx.sessions, batch_size=1000)
    # Downtime: three hours of attempts, one of them a slow task that started before the last run.
    _seed(clean_db, "resize", 2000, 180, now)
    _seed(clean_db, "export", 1, 1, now - dt.timedelta(hours=3, minutes=5))

    stopped = actor_rollup.roll_up(ctx.sessions, batch_size=300, max_batches=2)
    assert not stopped["caught_up"] and stopped["batches"] == 2
    finished = actor_rollup.roll_up(ctx.sessions, batch_size=300)
    assert finished["caught_up"]

    assert _rows(clean_db, _ROLLED) == _rows(clean_db, _EXACT)
    assert _histograms(clean_db) == _exact_histograms(clean_db)
    assert _rows(clean_db, _ROLLED_HOURS) == _rows(clean_db, _EXACT_HOURS)
    assert _histograms(clean_db, "hour") == _exact_histograms(clean_db, "hour")
    # A day's window: whole hours from the hourly rollup, the ragged ends from the minutes.
    with ctx.sessions() as session:
        day = {row["actor"]: row["attempts"] for row in stats.per_actor(session, minutes=1440)}
    assert day == {"resize": 2600, "export": 1}


def test_a_row_committed_after_a_higher_id_was_rolled_is_counted_by_the_next_run(
    ctx: OpsContext, clean_db: Engine
) -> None:
    now = _now(clean_db)
    with clean_db.begin() as connection:
        # A recorder drew this id, then a faster one committed a higher id before it.
        drawn = connection.scalar(text("SELECT nextval(pg_get_serial_sequence('task_audit', 'id'))"))
    _seed(clean_db, "resize", 50, 5, now)
    actor_rollup.roll_up(ctx.sessions, batch_size=1000)
    with clean_db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO task_audit (id, message_id, actor, queue, attempt, outcome, started_at, finished_at, "
                "duration_ms) VALUES (:id, gen_random_uuid(), 'resize', 'q', 1, 'dead', :at, :at, 12)"
            ),
            {"id": drawn, "at": now},
        )

    actor_rollup.roll_up(ctx.sessions, batch_size=1000)

    assert _rows(clean_db, _ROLLED) == _rows(clean_db, _EXACT)


def test_the_actors_endpoint_adds_the_rows_not_rolled_up_yet_and_counts_each_once(
    client: TestClient, tokens: dict[str, str], ctx: OpsContext, clean_db: Engine, operator: str
) -> None:
    now = _now(clean_db)
    _seed(clean_db, "resize", 700, 30, now - dt.timedelta(minutes=1))
    result = maintenance.roll_up_actor_stats(ctx.sessions, OpsSettings(), run_key="actor_rollup:1")
    assert result["rows"] == 700
    # After the run: new attempts, one of them in a minute already rolled up.
    _seed(clean_db, "resize", 70, 3, _now(clean_db))
    _seed(clean_db, "notify", 7, 1, _now(clean_db))

    def actors() -> dict[str, dict[str, Any]]:
        response = client.get("/api/actors", params={"window": 60}, headers=bearer(tokens["read"]))
        assert response.status_code == 200
        body = response.json()
        assert body["window_min"] == 60
        return {row["actor"]: row for row in body["actors"]}

    before = actors()
    assert (before["resize"]["attempts"], before["notify"]["attempts"]) == (770, 7)
    assert before["notify"]["failure_rate"] == round(2 / 7, 4)

    maintenance.roll_up_actor_stats(ctx.sessions, OpsSettings(), run_key="actor_rollup:2")
    assert actors() == before
    with ctx.sessions() as session:
        assert session.query(MaintenanceRun).filter_by(kind="actor_rollup").count() == 2
    # The page shows the same table, saying its percentiles are estimates.
    login = client.get("/login")
    token = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"name": operator, "password": PASSWORD, "csrf_token": token}, follow_redirects=False)
    page = client.get("/actors", params={"window": 60})
    assert page.status_code == 200
    assert "<td>770</td>" in page.text and "estimated from duration histograms" in page.text
