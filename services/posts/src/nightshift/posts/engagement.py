"""Per-post engagement scores, recomputed set-based in batches of post ids.

The formula, for a post on local day *D* (the day of the run)::

    raw   = 1·likes + 3·comments + 5·shares
    age   = D - the post's local creation date, in whole days (0 on its first day)
    score = round(raw · 0.5 ^ (age / half_life_days), 4)

A comment costs more effort than a like and a share reaches new readers, hence the
weights; the half-life (7 days by default) lets new posts with engagement rise above
old ones. Ages are whole days, so every run on the same day gives the same scores:
a second run writes nothing. Scores of old posts decay towards 0 and, once they
round to 0, stop changing, so only posts with recent engagement or a young age
are rewritten each day.

Each batch is one ``INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE`` over a range of
post ids: the counts come from grouped scans of that range of ``post_likes``,
``comments`` and ``shares``, and rows whose counts and score did not change are
not updated.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction

#: Weights of one like, one comment and one share.
LIKE_WEIGHT, COMMENT_WEIGHT, SHARE_WEIGHT = 1, 3, 5

_BATCH = text(
    f"""
    INSERT INTO post_engagement AS e (post_id, likes, comments, shares, score, as_of, updated_at)
    SELECT p.id, n.likes, n.comments, n.shares,
           round((({LIKE_WEIGHT} * n.likes + {COMMENT_WEIGHT} * n.comments + {SHARE_WEIGHT} * n.shares)
                  * power(0.5::float8, greatest(0, :as_of - (p.created_at AT TIME ZONE :tz)::date) / :half_life)
                 )::numeric, 4),
           :as_of, now()
    FROM posts p
    LEFT JOIN (SELECT post_id, count(*) AS n FROM post_likes WHERE post_id >= :lo AND post_id < :hi GROUP BY post_id) l
        ON l.post_id = p.id
    LEFT JOIN (SELECT post_id, count(*) AS n FROM comments WHERE post_id >= :lo AND post_id < :hi GROUP BY post_id) c
        ON c.post_id = p.id
    LEFT JOIN (SELECT post_id, count(*) AS n FROM shares WHERE post_id >= :lo AND post_id < :hi GROUP BY post_id) s
        ON s.post_id = p.id
    CROSS JOIN LATERAL (
        SELECT coalesce(l.n, 0)::int AS likes, coalesce(c.n, 0)::int AS comments, coalesce(s.n, 0)::int AS shares
    ) n
    WHERE p.id >= :lo AND p.id < :hi
    ON CONFLICT (post_id) DO UPDATE SET
        likes = EXCLUDED.likes, comments = EXCLUDED.comments, shares = EXCLUDED.shares,
        score = EXCLUDED.score, as_of = EXCLUDED.as_of, updated_at = EXCLUDED.updated_at
    WHERE (e.likes, e.comments, e.shares, e.score)
          IS DISTINCT FROM (EXCLUDED.likes, EXCLUDED.comments, EXCLUDED.shares, EXCLUDED.score)
    """  # noqa: S608 - SQL from module constants; values are bound
)


@dataclass(frozen=True)
class EngagementOutcome:
    as_of: dt.date
    batches: int
    rows_written: int


def engagement_score(likes: int, comments: int, shares: int, age_days: int, half_life_days: float = 7.0) -> Decimal:
    """The documented formula in Python, for checking the SQL (see the module's docstring)."""
    raw = LIKE_WEIGHT * likes + COMMENT_WEIGHT * comments + SHARE_WEIGHT * shares
    value = raw * math.pow(0.5, max(0, age_days) / half_life_days)
    return Decimal(repr(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def update_post_engagement_scores(
    sessions: sessionmaker[Session],
    *,
    as_of: dt.date,
    timezone: str,
    batch_size: int = 50_000,
    half_life_days: float = 7.0,
) -> EngagementOutcome:
    """Recompute every post's counts and score as of local day *as_of*; write only what changed.

    Parameters:
      sessions: Sessions on the database.
      as_of: The local day ages are counted to.
      timezone: The IANA zone local days are read in.
      batch_size: Post ids per statement (one short transaction each).
      half_life_days: Days for a score to halve.

    Returns:
      How many batches ran and rows were written.
    """
    with sessions() as session:
        low, high = session.execute(text("SELECT min(id), max(id) FROM posts")).one()
    if low is None:
        return EngagementOutcome(as_of, 0, 0)
    written = batches = 0
    for lo in range(int(low), int(high) + 1, batch_size):
        params = {"lo": lo, "hi": lo + batch_size, "as_of": as_of, "tz": timezone, "half_life": half_life_days}
        with transaction(sessions) as session:
            written += int(session.execute(_BATCH, params).rowcount)  # type: ignore[attr-defined]
        batches += 1
    return EngagementOutcome(as_of, batches, written)
