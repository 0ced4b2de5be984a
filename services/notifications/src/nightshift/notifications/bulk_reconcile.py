"""Settling bulk recipients left ``uncertain`` by a crash mid-request: provider events, then the operators.

A recipient whose request was in flight when its sender died is not sent again
(:mod:`~nightshift.notifications.bulk`). It is settled here:

- **by the provider's events**: every SendGrid event (``processed``,
  ``delivered``, ``deferred``, ``bounce``, ``dropped``, ``open``…) proves the
  request reached SendGrid. Events carrying the personalization's custom
  arguments (campaign, user) turn the recipient's ``sending`` or ``uncertain``
  row into ``sent`` (``confirmed_by = 'event'``);
- **after the grace period** (``NOTIFICATIONS_BULK_UNCERTAIN_GRACE_S``, from the
  slice's request): a recipient still unconfirmed most likely never got it
  (SendGrid posts ``processed`` within seconds), but a lost webhook looks the
  same, so nothing is sent on a guess. :func:`alert_uncertain` (the
  ``check_uncertain_bulk_email`` schedule) raises one ``ops.alert_raised`` per
  campaign; the operator checks SendGrid's activity feed and runs
  ``nightshift notifications resend-uncertain CAMPAIGN``, which enqueues
  :func:`resend_batches` (``resend_uncertain``): those recipients are sent again
  (at most once more: the resend has the same in-flight protection).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import MAX_BULK_RECIPIENTS, BulkEmailBatch, BulkRecipient
from nightshift.common.db.engine import transaction
from nightshift.common.outbox import publish_in_transaction
from nightshift.notifications.bulk import CAMPAIGN_ARG, USER_ARG

_CONFIRM = text(
    """
    UPDATE bulk_email_deliveries d
    SET status = 'sent', context_ids = NULL, confirmed_by = 'event', updated_at = now()
    FROM unnest(CAST(:campaigns AS text[]), CAST(:users AS bigint[])) AS e(campaign, user_id)
    WHERE d.campaign = e.campaign AND d.user_id = e.user_id AND d.status IN ('sending', 'uncertain')
    """
)

#: Recipients of slices requested before the cut-off, still unconfirmed, per campaign (not alerted yet).
_OVERDUE = text(
    """
    SELECT d.campaign, count(*) AS recipients, count(DISTINCT s.id) AS slices, min(s.started_at) AS oldest,
           array_agg(DISTINCT s.id) AS slice_ids
    FROM bulk_email_deliveries d JOIN bulk_email_slices s ON s.id = d.slice_id
    WHERE d.status IN ('sending', 'uncertain') AND s.started_at < :cutoff AND s.alerted_at IS NULL
    GROUP BY d.campaign ORDER BY d.campaign
    """
)

_UNCERTAIN = text(
    """
    SELECT d.user_id, d.context_ids, s.template, s.category, s.facts
    FROM bulk_email_deliveries d JOIN bulk_email_slices s ON s.id = d.slice_id
    WHERE d.campaign = :campaign AND d.status = 'uncertain'
    ORDER BY s.template, s.category, d.user_id
    """
)

_SUMMARY = text(
    """
    SELECT d.campaign, d.status, count(*) AS recipients, min(s.started_at) AS oldest,
           bool_and(s.alerted_at IS NOT NULL) AS alerted
    FROM bulk_email_deliveries d JOIN bulk_email_slices s ON s.id = d.slice_id
    WHERE d.status IN ('sending', 'uncertain')
    GROUP BY d.campaign, d.status ORDER BY d.campaign, d.status
    """
)


@dataclass(frozen=True)
class InFlight:
    """Recipients of *campaign* in *status* (``sending`` or ``uncertain``) since *oldest*."""

    campaign: str
    status: str
    recipients: int
    oldest: dt.datetime
    alerted: bool


def event_recipient(event: Mapping[str, Any]) -> tuple[str, int] | None:
    """The (campaign, user) a SendGrid event is about, from its custom arguments; None for other mail.

    SendGrid posts custom arguments as top-level fields of the event; a nested
    ``custom_args`` / ``unique_args`` object is read too.
    """
    for source in (event, event.get("custom_args"), event.get("unique_args")):
        if isinstance(source, Mapping):
            campaign, user = source.get(CAMPAIGN_ARG), source.get(USER_ARG)
            if isinstance(campaign, str) and campaign and str(user).isdigit():
                return campaign, int(str(user))
    return None


def confirm_from_events(sessions: sessionmaker[Session], events: Iterable[Mapping[str, Any]]) -> int:
    """Mark ``sent`` the in-flight or uncertain recipients some provider event is about.

    Returns:
      How many rows were settled now.
    """
    pairs = sorted({pair for event in events if (pair := event_recipient(event)) is not None})
    if not pairs:
        return 0
    with transaction(sessions) as session:
        result = session.execute(
            _CONFIRM, {"campaigns": [campaign for campaign, _ in pairs], "users": [user for _, user in pairs]}
        )
    return int(getattr(result, "rowcount", 0) or 0)


def alert_uncertain(sessions: sessionmaker[Session], *, grace: dt.timedelta, now: dt.datetime | None = None) -> int:
    """Raise ``ops.alert_raised`` for each campaign with recipients unconfirmed *grace* after their request.

    A ``sending`` row that old is abandoned too (its sender's request timed out long
    ago and no redelivery took it over): it becomes ``uncertain``. The alert and the
    slices' ``alerted_at`` commit together, so each slice is reported once.

    Returns:
      The number of campaigns alerted now.
    """
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - grace
    with transaction(sessions) as session:
        overdue = session.execute(_OVERDUE, {"cutoff": cutoff}).all()
        for row in overdue:
            session.execute(
                text(
                    "UPDATE bulk_email_deliveries SET status = 'uncertain', updated_at = now() "
                    "WHERE slice_id = ANY(:slices) AND status = 'sending'"
                ),
                {"slices": list(row.slice_ids)},
            )
            session.execute(
                text("UPDATE bulk_email_slices SET alerted_at = :now WHERE id = ANY(:slices)"),
                {"now": now, "slices": list(row.slice_ids)},
            )
            publish_in_transaction(
                session,
                "ops.alert_raised",
                {
                    "alert_key": f"bulk_email_uncertain:{row.campaign}:{min(str(s) for s in row.slice_ids)}",
                    "source": "notifications",
                    "kind": "bulk_email_uncertain",
                    "severity": "warning",
                    "summary": (
                        f"{row.recipients} recipients of campaign {row.campaign} unconfirmed "
                        f"{int(grace.total_seconds() // 60)} min after a request cut short by a crash: "
                        f"check SendGrid's activity, then `nightshift notifications resend-uncertain {row.campaign}`"
                    )[:300],
                    "facts": {
                        "campaign": row.campaign,
                        "recipients": int(row.recipients),
                        "slices": int(row.slices),
                        "oldest_request": row.oldest.isoformat(),
                    },
                },
                aggregate_id=f"bulk_email:{row.campaign}",
            )
    return len(overdue)


def in_flight(sessions: sessionmaker[Session]) -> list[InFlight]:
    """Every campaign's recipients still ``sending`` or ``uncertain``, for ``nightshift notifications uncertain``."""
    with sessions() as session:
        return [
            InFlight(row.campaign, row.status, int(row.recipients), row.oldest, bool(row.alerted))
            for row in session.execute(_SUMMARY)
        ]


def resend_batches(sessions: sessionmaker[Session], campaign: str) -> Iterator[BulkEmailBatch]:
    """The batches (``resend_uncertain``) that send *campaign*'s uncertain recipients once more.

    One per template, category and facts of their slices, at most
    ``MAX_BULK_RECIPIENTS`` recipients each, with the ids their copy was made of.
    """
    with sessions() as session:
        rows = session.execute(_UNCERTAIN, {"campaign": campaign}).all()
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.template, row.category, repr(sorted(row.facts.items()))), []).append(row)
    for members in groups.values():
        first = members[0]
        for start in range(0, len(members), MAX_BULK_RECIPIENTS):
            yield BulkEmailBatch(
                campaign=campaign,
                template=first.template,
                category=first.category,
                facts=first.facts,
                resend_uncertain=True,
                recipients=[
                    BulkRecipient(user_id=row.user_id, context_ids=row.context_ids or {})
                    for row in members[start : start + MAX_BULK_RECIPIENTS]
                ],
            )
