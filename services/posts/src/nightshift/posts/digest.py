"""The weekly content digest: who gets one, what is in it, handed to notifications in batches of ids.

Run on Monday morning for the week that ended at Monday 00:00 (local time).
Users are taken in id order, ``batch_size`` at a time (keyset pagination: no
offset scans); for each page one statement selects and composes:

* **eligible** — active in the last ``active_days``, digest email not turned off
  (``notification_preferences``; on by default), address not suppressed;
* **authors they interacted with** — whose posts they liked, commented on or
  shared in the last ``interaction_days`` (not themselves);
* **their top posts of the week** — those authors' posts of the week, posts in the
  user's language (or of unknown language) first, then by engagement score, at
  most ``top_posts``. Users with none get no digest (an empty one is noise).

The week's trending hashtags (summed hourly scores, ``trending`` of them) are
shared facts of the campaign. Each page becomes one ``send_bulk_email`` message
carrying user ids and post ids only; notifications renders each copy in the
user's language and sends it once per user and campaign (``digest:<week end>``),
so running the task twice sends nobody a second digest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.notifications import BulkEmailBatch, BulkRecipient
from nightshift.common.db.models import suppressed_sql

#: The notifications template of the digest.
DIGEST_TEMPLATE = "digest"

_PAGE = text(
    f"""
    WITH eligible AS (
        SELECT u.id, left(lower(u.locale), 2) AS language
        FROM users u
        LEFT JOIN notification_preferences pref
               ON pref.user_id = u.id AND pref.category = 'digest' AND pref.channel = 'email'
        WHERE u.id > :after
          AND u.last_active_at >= :active_since
          AND coalesce(pref.enabled, true)
          AND NOT {suppressed_sql("u.email")}
        ORDER BY u.id
        LIMIT :batch
    ),
    interactions AS (
        SELECT e.id AS user_id, p.author_id
        FROM eligible e JOIN post_likes l ON l.user_id = e.id JOIN posts p ON p.id = l.post_id
        WHERE l.created_at >= :interacted_since
        UNION
        SELECT e.id, p.author_id
        FROM eligible e JOIN comments c ON c.author_id = e.id JOIN posts p ON p.id = c.post_id
        WHERE c.created_at >= :interacted_since
        UNION
        SELECT e.id, p.author_id
        FROM eligible e JOIN shares sh ON sh.user_id = e.id JOIN posts p ON p.id = sh.post_id
        WHERE sh.created_at >= :interacted_since
    ),
    ranked AS (
        SELECT i.user_id, p.id AS post_id,
               row_number() OVER (
                   PARTITION BY i.user_id
                   ORDER BY (p.language IS NULL OR p.language = e.language) DESC,
                            coalesce(pe.score, 0) DESC, p.id DESC
               ) AS rank
        FROM interactions i
        JOIN eligible e ON e.id = i.user_id
        JOIN posts p ON p.author_id = i.author_id AND p.created_at >= :week_start AND p.created_at < :week_end
        LEFT JOIN post_engagement pe ON pe.post_id = p.id
        WHERE i.author_id <> i.user_id
    )
    SELECT e.id AS user_id,
           array_agg(r.post_id ORDER BY r.rank) FILTER (WHERE r.rank <= :top) AS post_ids
    FROM eligible e
    LEFT JOIN ranked r ON r.user_id = e.id
    GROUP BY e.id
    ORDER BY e.id
    """  # noqa: S608 - SQL from the code
)

_TRENDING = text(
    """
    SELECT tag FROM trending_hashtags
    WHERE hour >= :week_start AND hour < :week_end
    GROUP BY tag ORDER BY sum(score) DESC, tag LIMIT :limit
    """
)


@dataclass(frozen=True)
class DigestOutcome:
    """What a run handed over: the campaign, users scanned, digests and batches."""

    campaign: str
    scanned: int
    recipients: int
    batches: int


def week_bounds(week_end: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The week ending at local midnight starting *week_end*: (start, end), aware."""
    zone = ZoneInfo(timezone)
    end = dt.datetime.combine(week_end, dt.time(), zone)
    start = dt.datetime.combine(week_end - dt.timedelta(days=7), dt.time(), zone)
    return start, end


def send_content_digest_email(
    sessions: sessionmaker[Session],
    send: Callable[[BulkEmailBatch], object],
    *,
    week_end: dt.date,
    timezone: str,
    now: dt.datetime,
    batch_size: int = 1000,
    top_posts: int = 5,
    active_days: int = 30,
    interaction_days: int = 90,
    trending: int = 5,
) -> DigestOutcome:
    """Compose the digests of the week ending *week_end* and hand them over in batches.

    Parameters:
      sessions: Sessions on the platform's database.
      send: Enqueues one batch (``SEND_BULK_EMAIL.send``); called once per page with recipients.
      week_end: The local date whose midnight ends the week (the Monday of the run).
      timezone: The platform's ``TIMEZONE``.
      now: The time "active in the last *active_days*" is measured from.
      batch_size: Users per page, and so at most per batch.

    Returns:
      The campaign and its counts.
    """
    week_start, week_stop = week_bounds(week_end, timezone)
    campaign = f"digest:{week_end.isoformat()}"
    with sessions() as session:
        tags = list(
            session.scalars(_TRENDING, {"week_start": week_start, "week_end": week_stop, "limit": trending}).all()
        )
    after = 0
    scanned = recipients = batches = 0
    while True:
        with sessions() as session:
            rows = session.execute(
                _PAGE,
                {
                    "after": after,
                    "batch": batch_size,
                    "active_since": now - dt.timedelta(days=active_days),
                    "interacted_since": now - dt.timedelta(days=interaction_days),
                    "week_start": week_start,
                    "week_end": week_stop,
                    "top": top_posts,
                },
            ).all()
        if not rows:
            break
        scanned += len(rows)
        after = rows[-1].user_id
        page = [
            BulkRecipient(user_id=row.user_id, context_ids={"post_ids": list(row.post_ids)})
            for row in rows
            if row.post_ids
        ]
        if page:
            send(
                BulkEmailBatch(
                    campaign=campaign,
                    template=DIGEST_TEMPLATE,
                    category="digest",
                    recipients=page,
                    facts={"trending": tags, "week_start": week_start.date().isoformat()},
                )
            )
            recipients += len(page)
            batches += 1
    return DigestOutcome(campaign=campaign, scanned=scanned, recipients=recipients, batches=batches)
