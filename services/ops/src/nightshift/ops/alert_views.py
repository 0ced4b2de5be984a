"""The data of the Alerts, Maintenance and Reports pages (and their JSON API)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from nightshift.ops import alert_lifecycle, maintenance
from nightshift.ops.alert_delivery import alert_link
from nightshift.ops.context import OpsContext
from nightshift.ops.models import Alert, AlertNotice, Report

#: Resolved alerts listed under the active ones.
RECENT = 50


class UnknownAlert(LookupError):
    """No alert (or report) has that id."""


def alerts(ctx: OpsContext) -> dict[str, Any]:
    """Active alerts (newest first), the recently resolved ones, and the silences in force."""
    now = dt.datetime.now(dt.UTC)
    with ctx.sessions() as session:
        active = session.scalars(select(Alert).where(Alert.resolved_at.is_(None)).order_by(Alert.fired_at.desc()))
        active_list = [_alert(ctx, alert, now) for alert in active]
        recent = session.scalars(
            select(Alert).where(Alert.resolved_at.is_not(None)).order_by(Alert.resolved_at.desc()).limit(RECENT)
        )
        return {
            "active": active_list,
            "recent": [_alert(ctx, alert, now) for alert in recent],
            "silences": alert_lifecycle.active_silences(session, now),
        }


def alert(ctx: OpsContext, alert_id: int) -> dict[str, Any]:
    """One alert with its notices (when each was emailed and posted).

    Raises:
      UnknownAlert: No such alert.
    """
    with ctx.sessions() as session:
        row = session.get(Alert, alert_id)
        if row is None:
            raise UnknownAlert(f"no alert {alert_id}")
        notices = session.scalars(select(AlertNotice).where(AlertNotice.alert_id == alert_id).order_by(AlertNotice.id))
        return _alert(ctx, row, dt.datetime.now(dt.UTC)) | {
            "notices": [
                {
                    "id": notice.id,
                    "kind": notice.kind,
                    "created_at": notice.created_at.isoformat(),
                    "email_sent_at": _iso(notice.email_sent_at),
                    "webhook_sent_at": _iso(notice.webhook_sent_at),
                }
                for notice in notices
            ]
        }


def maintenance_status(ctx: OpsContext) -> dict[str, Any]:
    """The latest cache statistics (and their series), purges and dependency checks."""
    with ctx.sessions() as session:
        cache = maintenance.runs(session, "cache_stats", limit=288)
        return {
            "cache": cache[0] if cache else None,
            "cache_series": [
                {"at": run["at"], "hit_ratio": run["result"].get("hit_ratio"), "keys": run["result"].get("keys")}
                for run in reversed(cache)
            ],
            "purges": maintenance.runs(session, "purge", limit=24),
            "dependencies": maintenance.runs(session, "dependencies", limit=1),
        }


def reports(ctx: OpsContext) -> list[dict[str, Any]]:
    """Every stored report, newest first, with its headline figures."""
    with ctx.sessions() as session:
        rows = session.scalars(select(Report).order_by(Report.starts_at.desc(), Report.period).limit(200))
        return [
            {
                "id": row.id,
                "period": row.period,
                "starts_at": row.starts_at.isoformat(),
                "ends_at": row.ends_at.isoformat(),
                "first_day": row.figures.get("first_day", row.starts_at.date().isoformat()),
                "last_day": row.figures.get("last_day", row.ends_at.date().isoformat()),
                "attempts": row.figures["attempts"],
                "failed": row.figures["failed"],
                "dead_total": row.figures["dead_total"],
                "alerts": len(row.figures["alerts"]),
                "emailed_at": _iso(row.emailed_at),
            }
            for row in rows
        ]


def report(ctx: OpsContext, report_id: int) -> tuple[dict[str, Any], str]:
    """A report's figures and HTML.

    Raises:
      UnknownAlert: No such report.
    """
    with ctx.sessions() as session:
        row = session.get(Report, report_id)
        if row is None:
            raise UnknownAlert(f"no report {report_id}")
        return {"id": row.id, "period": row.period, "figures": row.figures}, row.html


def _alert(ctx: OpsContext, row: Alert, now: dt.datetime) -> dict[str, Any]:
    end = row.resolved_at or now
    return {
        "id": row.id,
        "key": row.key,
        "rule": row.rule,
        "source": row.source,
        "severity": row.severity,
        "summary": row.summary,
        "facts": row.facts,
        "fired_at": row.fired_at.isoformat(),
        "last_seen_at": row.last_seen_at.isoformat(),
        "resolved_at": _iso(row.resolved_at),
        "active_for_s": round((end - row.fired_at).total_seconds()),
        "notified": row.notified,
        "link": alert_link(ctx.options, row.id),
    }


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None
