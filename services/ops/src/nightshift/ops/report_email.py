"""Emailing a stored report to the operators: its HTML, the charts attached inline, through notifications.

The charts are drawn here (the ops worker), put in storage under the report's id and
named by key in notifications' ``send_operator_email`` message, which attaches them
inline (``cid:``): the message carries keys, never image bytes, and a mail client shows
the charts without loading anything from the dashboard.
"""

from __future__ import annotations

import datetime as dt

import dramatiq
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import SEND_OPERATOR_EMAIL, InlineImage, OperatorEmail
from nightshift.common.db.engine import transaction
from nightshift.common.storage import Storage
from nightshift.ops import reports
from nightshift.ops.models import Report


def chart_key(report_id: int, name: str) -> str:
    """Where chart *name* of report *report_id* is stored (the same key on a retry: overwritten)."""
    return f"ops/reports/{report_id}/{name}.png"


def content_id(name: str) -> str:
    """The content id chart *name* has in the email (``<img src="cid:throughput-chart">``)."""
    return f"{name}-chart"


def operator_email(report: Report, storage: Storage, *, public_url: str) -> OperatorEmail:
    """Store *report*'s charts and build the email that shows them inline."""
    link = f"{public_url.rstrip('/')}/reports/{report.id}"
    images, sources = [], {}
    for name, png in reports.chart_images(report.figures).items():
        key = chart_key(report.id, name)
        storage.put(key, png, content_type="image/png")
        images.append(InlineImage(content_id=content_id(name), storage_key=key, content_type="image/png"))
        sources[name] = f"cid:{content_id(name)}"
    subject = reports.headline(report.period, report.figures)
    return OperatorEmail(
        idempotency_key=f"report:{report.id}",
        subject=subject,
        text=f"{subject}.\n\nThe report: {link}\n",
        html=reports.render(report.period, report.figures, sources, link=link),
        images=images,
    )


def email_report(
    sessions: sessionmaker[Session],
    storage: Storage,
    report_id: int,
    *,
    public_url: str,
    broker: dramatiq.Broker | None = None,
) -> bool:
    """Send report *report_id* to the operators unless it was sent; return whether it was sent now.

    The report row is locked while the message is built and sent, so two deliveries of
    the same build message send it once (notifications dedupes on the key besides).
    """
    with transaction(sessions) as session:
        report = session.get(Report, report_id, with_for_update=True)
        if report is None or report.emailed_at is not None:
            return False
        SEND_OPERATOR_EMAIL.send(operator_email(report, storage, public_url=public_url), broker=broker)
        report.emailed_at = dt.datetime.now(dt.UTC)
    return True
