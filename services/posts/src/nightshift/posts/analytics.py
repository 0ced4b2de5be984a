"""Daily content analytics, one row per local day, with anomaly alerts.

For a local day (default: yesterday in the configured timezone; DST days have 23
or 25 hours), counts posts, active authors (users who wrote a post or a comment),
likes, comments, shares, media processed (from the media service's table, when
installed) and the top hashtags, and stores them in ``content_analytics``
(re-running a day replaces its row). Each count is compared with the same weekday
of the previous weeks (see :mod:`nightshift.posts.anomalies`); if any is anomalous,
one ``ops.alert_raised`` event is written to the outbox in the same transaction,
once per day ever (an idempotency key), so a re-run does not alert twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.idempotency import claim
from nightshift.common.outbox import publish_in_transaction
from nightshift.posts.anomalies import Finding, assess
from nightshift.posts.models import ContentAnalytics

#: The counts compared with their history.
METRICS = ("posts", "active_authors", "likes", "comments", "shares", "media_processed")

_COUNTS = text(
    """
    SELECT
        (SELECT count(*) FROM posts WHERE created_at >= :start AND created_at < :end),
        (SELECT count(DISTINCT author_id) FROM (
            SELECT author_id FROM posts WHERE created_at >= :start AND created_at < :end
            UNION ALL
            SELECT author_id FROM comments WHERE created_at >= :start AND created_at < :end) a),
        (SELECT count(*) FROM post_likes WHERE created_at >= :start AND created_at < :end),
        (SELECT count(*) FROM comments WHERE created_at >= :start AND created_at < :end),
        (SELECT count(*) FROM shares WHERE created_at >= :start AND created_at < :end)
    """
)

# Media is another service's table: read by name, only when it exists.
_MEDIA_PROCESSED = text(
    "SELECT count(*) FROM media WHERE status = 'processed' AND processed_at >= :start AND processed_at < :end"
)

_TOP_HASHTAGS = text(
    """
    SELECT h.tag, count(*) AS posts
    FROM posts p JOIN post_hashtags ph ON ph.post_id = p.id JOIN hashtags h ON h.id = ph.hashtag_id
    WHERE p.created_at >= :start AND p.created_at < :end
    GROUP BY h.tag ORDER BY posts DESC, h.tag LIMIT :n
    """
)


@dataclass(frozen=True)
class DayReport:
    """A day's figures, its findings and whether an alert was raised now."""

    day: dt.date
    counts: dict[str, int]
    top_hashtags: list[dict[str, object]]
    findings: list[Finding]
    history_days: int
    alert_raised: bool

    @property
    def anomalies(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.anomalous]


def day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC start and end of local *day* in *timezone*."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def previous_local_day(now: dt.datetime, timezone: str) -> dt.date:
    """Yesterday, in *timezone*, as of *now*."""
    return now.astimezone(ZoneInfo(timezone)).date() - dt.timedelta(days=1)


def generate_content_analytics(
    sessions: sessionmaker[Session],
    *,
    day: dt.date,
    timezone: str,
    history_weeks: int = 6,
    min_history: int = 4,
    threshold: float = 3.5,
    top_hashtags: int = 10,
) -> DayReport:
    """Compute and store local *day*'s figures; raise one alert if they are anomalous.

    Parameters:
      sessions: Sessions on the database.
      day: The local day.
      timezone: The IANA zone the day is read in.
      history_weeks: How many previous same weekdays are compared with.
      min_history: With fewer stored days among them, nothing is assessed.
      threshold: Robust z-score beyond which a count is anomalous.
      top_hashtags: How many hashtags are listed.

    Returns:
      The day's report.
    """
    start, end = day_bounds(day, timezone)
    params = {"start": start, "end": end}
    past_days = [day - dt.timedelta(weeks=k) for k in range(1, history_weeks + 1)]
    with transaction(sessions) as session:
        posts, authors, likes, comments, shares = session.execute(_COUNTS, params).one()
        media = 0
        if session.execute(text("SELECT to_regclass('media') IS NOT NULL")).scalar():
            media = int(session.execute(_MEDIA_PROCESSED, params).scalar_one())
        counts = {
            "posts": int(posts),
            "active_authors": int(authors),
            "likes": int(likes),
            "comments": int(comments),
            "shares": int(shares),
            "media_processed": media,
        }
        tags = [
            {"tag": tag, "posts": int(n)} for tag, n in session.execute(_TOP_HASHTAGS, {**params, "n": top_hashtags})
        ]
        past = session.execute(
            text(f"SELECT {', '.join(METRICS)} FROM content_analytics WHERE day = ANY(:days)"),  # noqa: S608
            {"days": past_days},
        ).all()
        findings: list[Finding] = []
        note = None
        if len(past) >= min_history:
            findings = [
                assess(metric, counts[metric], [float(row[i]) for row in past], threshold=threshold)
                for i, metric in enumerate(METRICS)
            ]
        else:
            note = f"{len(past)} of the previous {history_weeks} same weekdays recorded; {min_history} needed to assess"
        anomalies = [asdict(finding) for finding in findings if finding.anomalous]
        values = {
            "day": day,
            "timezone": timezone,
            **counts,
            "top_hashtags": tags,
            "anomalies": anomalies,
            "note": note,
            "computed_at": dt.datetime.now(dt.UTC),
        }
        statement = insert(ContentAnalytics).values(**values)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[ContentAnalytics.day], set_={k: statement.excluded[k] for k in values if k != "day"}
            )
        )
        raised = bool(anomalies) and claim(session, f"content_anomaly:{day.isoformat()}")
        if raised:
            metrics = ", ".join(f"{a['metric']} {a['value']:.0f} (usual {a['median']:.0f})" for a in anomalies)
            publish_in_transaction(
                session,
                "ops.alert_raised",
                {
                    "alert_key": f"posts:content_anomaly:{day.isoformat()}",
                    "source": "posts",
                    "kind": "content_anomaly",
                    "severity": "warning",
                    "summary": f"Unusual content activity on {day.isoformat()}: {metrics}"[:300],
                    "facts": {"day": day.isoformat(), **{f"{a['metric']}_z": a["z"] for a in anomalies}},
                },
                aggregate_id=f"content_analytics:{day.isoformat()}",
            )
    return DayReport(day, counts, tags, findings, len(past), raised)
