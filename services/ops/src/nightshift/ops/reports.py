"""Weekly and monthly reports: throughput, failures, p95 trends, top failing actors, dead letters, alerts.

A report covers a closed period in the platform's ``TIMEZONE``: the week from
Monday 00:00 to the next, or a calendar month. Its figures come from ``task_audit``
(attempts, outcomes, durations), ``job_records`` (jobs that died) and ``ops_alerts``,
each one set-based query over the period's index range. The HTML (charts inline as
PNG ``data:`` images) is stored in ``ops_reports`` once per period and shown on the
dashboard; the operators are emailed the same HTML with the charts attached inline
(``report_email``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.ops import charts
from nightshift.ops.models import Alert, Report

#: Top failing actors listed.
TOP_FAILING = 5

_PER_ACTOR = text(
    """
    SELECT actor, queue, count(*) AS attempts,
           count(*) FILTER (WHERE outcome IN ('retrying', 'dead')) AS failed,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95
    FROM task_audit WHERE started_at >= :start AND started_at < :end
    GROUP BY actor, queue ORDER BY actor
    """
)
_PER_DAY = text(
    """
    SELECT (started_at AT TIME ZONE :zone)::date AS day,
           count(*) FILTER (WHERE outcome IN ('done', 'skipped')) AS processed,
           count(*) FILTER (WHERE outcome IN ('retrying', 'dead')) AS failed,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95
    FROM task_audit WHERE started_at >= :start AND started_at < :end
    GROUP BY 1 ORDER BY 1
    """
)
_DEAD = text(
    """
    SELECT queue, count(*) FROM job_records
    WHERE status = 'dead' AND updated_at >= :start AND updated_at < :end
    GROUP BY queue ORDER BY 2 DESC
    """
)


def period_bounds(period: str, now: dt.datetime, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The last closed week (Monday to Monday) or month before *now*, in *timezone*.

    Raises:
      ValueError: *period* is neither ``weekly`` nor ``monthly``.
    """
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    if period == "weekly":
        end_day = today - dt.timedelta(days=today.weekday())
        start_day = end_day - dt.timedelta(days=7)
    elif period == "monthly":
        end_day = today.replace(day=1)
        start_day = (end_day - dt.timedelta(days=1)).replace(day=1)
    else:
        raise ValueError(f"period: {period!r} is neither 'weekly' nor 'monthly'")
    start = dt.datetime.combine(start_day, dt.time(), zone)
    end = dt.datetime.combine(end_day, dt.time(), zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def figures(session: Session, start: dt.datetime, end: dt.datetime, timezone: str) -> dict[str, Any]:
    """Everything the report shows for [*start*, *end*)."""
    bounds = {"start": start, "end": end}
    actors = [
        {
            "actor": actor,
            "service": queue.rsplit("_", 1)[0],
            "attempts": attempts,
            "failed": failed,
            "failure_rate": round(failed / attempts, 4) if attempts else 0.0,
            "p95_ms": round(float(p95), 1),
        }
        for actor, queue, attempts, failed, p95 in session.execute(_PER_ACTOR, bounds)
    ]
    services: dict[str, dict[str, Any]] = {}
    for row in actors:
        entry = services.setdefault(row["service"], {"service": row["service"], "attempts": 0, "failed": 0})
        entry["attempts"] += row["attempts"]
        entry["failed"] += row["failed"]
    for entry in services.values():
        entry["failure_rate"] = round(entry["failed"] / entry["attempts"], 4) if entry["attempts"] else 0.0
    days = [
        {"day": day.isoformat(), "processed": processed, "failed": failed, "p95_ms": round(float(p95), 1)}
        for day, processed, failed, p95 in session.execute(_PER_DAY, {**bounds, "zone": timezone})
    ]
    dead = [{"queue": queue, "dead": count} for queue, count in session.execute(_DEAD, bounds)]
    alerts = [
        {
            "id": alert.id,
            "rule": alert.rule,
            "severity": alert.severity,
            "summary": alert.summary,
            "fired_at": alert.fired_at.isoformat(),
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        }
        for alert in session.scalars(
            select(Alert).where(Alert.fired_at >= start, Alert.fired_at < end).order_by(Alert.fired_at)
        )
    ]
    failing = sorted((row for row in actors if row["failed"]), key=lambda row: (-row["failed"], row["actor"]))
    zone = ZoneInfo(timezone)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        #: The period's first and last local days (the end is exclusive).
        "first_day": start.astimezone(zone).date().isoformat(),
        "last_day": (end.astimezone(zone).date() - dt.timedelta(days=1)).isoformat(),
        "attempts": sum(row["attempts"] for row in actors),
        "failed": sum(row["failed"] for row in actors),
        "services": sorted(services.values(), key=lambda entry: entry["service"]),
        "actors": actors,
        "days": days,
        "top_failing": failing[:TOP_FAILING],
        "dead_letters": dead,
        "dead_total": sum(row["dead"] for row in dead),
        "alerts": alerts,
    }


def chart_images(data: dict[str, Any]) -> dict[str, bytes]:
    """The report's charts as PNG bytes, by name: ``throughput`` (attempts per day) and ``p95``."""
    labels = [day["day"][5:] for day in data["days"]]
    return {
        "throughput": charts.bars(
            "Attempts per day",
            labels,
            [[day["processed"] for day in data["days"]], [day["failed"] for day in data["days"]]],
            ["processed", "failed"],
        ),
        "p95": charts.line("p95 duration per day (ms)", labels, [day["p95_ms"] for day in data["days"]], "p95 ms"),
    }


def render(
    period: str, data: dict[str, Any], sources: Mapping[str, str] | None = None, *, link: str | None = None
) -> str:
    """The report's HTML: one self-contained page, styles inline.

    Parameters:
      sources: The ``src`` of each chart of :func:`chart_images`, by name (``cid:…`` in an
        email); None draws them here as ``data:`` images (the page stored for the dashboard).
      link: The report's dashboard page, linked from the email.
    """
    if sources is None:
        sources = {name: charts.data_uri(png) for name, png in chart_images(data).items()}
    environment = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
    )
    template = environment.get_template("report_document.html")
    return template.render(
        period=period, data=data, throughput_chart=sources["throughput"], p95_chart=sources["p95"], link=link
    )


def headline(period: str, data: dict[str, Any]) -> str:
    """One line saying what the report found (the email's subject)."""
    return (
        f"Nightshift {period} report {data['first_day']} to {data['last_day']}: "
        f"{data['attempts']} attempts, {data['failed']} failed, {data['dead_total']} dead letters, "
        f"{len(data['alerts'])} alerts"
    )


def build_report(sessions: sessionmaker[Session], period: str, *, now: dt.datetime, timezone: str) -> tuple[int, bool]:
    """Build and store the report of the last closed *period*; return its id and whether it is new.

    A second run for the same period finds the stored report and changes nothing.
    """
    start, end = period_bounds(period, now, timezone)
    with sessions() as session:
        existing = session.scalar(select(Report.id).where(Report.period == period, Report.starts_at == start))
        if existing is not None:
            return existing, False
        data = figures(session, start, end, timezone)
    html = render(period, data)
    with transaction(sessions) as session:
        statement = (
            insert(Report)
            .values(period=period, starts_at=start, ends_at=end, figures=data, html=html)
            .on_conflict_do_nothing(index_elements=["period", "starts_at"])
            .returning(Report.id)
        )
        report_id = session.scalar(statement)
        if report_id is None:
            found = session.scalar(select(Report.id).where(Report.period == period, Report.starts_at == start))
            assert found is not None
            return found, False
        return report_id, True
