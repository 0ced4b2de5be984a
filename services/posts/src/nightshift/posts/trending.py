"""Trending hashtags: a sudden rise in engagement-weighted use, against each hashtag's own baseline.

For the hour *H* (default: the last complete hour), with a window of *W* hours
ending at *H* + 1 h and a baseline of the *B* days before the window:

* each post counts ``w = 1 + ln(1 + likes + 2·comments + 3·shares)``, its engagement
  counted over its first *W* hours (and before the window's end), so old and new
  posts are weighed alike and one viral post cannot make a tag trend alone;
* ``recent`` is the sum of *w* over the hashtag's posts in the window, ``baseline``
  the same over the baseline period, and ``expected = baseline · W / (24·B)`` what
  the window would hold at the baseline's pace;
* ``score = (recent - expected) / sqrt(expected + 10)``: a Poisson-like z-score.
  A tag that is always popular has ``recent ≈ expected`` and scores near 0; a tag
  that rises from nothing scores high. The constant 10 keeps a tag going from 0 to
  a handful of posts from beating a real surge.

Tags with fewer than ``min_posts`` posts in the window, or no rise, are not ranked.
The top *N* are stored for *H* (replacing any earlier run for *H*) and cached in
Redis. The ranking depends only on rows dated before the window's end, and ties are
broken by tag, so running it again for the same hour gives the same ranking.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass

import redis
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction

#: Redis key of the latest ranking (the app reads this one).
LATEST_KEY = "posts:trending:latest"
#: Redis key of one hour's ranking.
HOUR_KEY = "posts:trending:{hour}"
#: Smoothing added under the square root (see the module's docstring).
PRIOR = 10.0

_RANK = text(
    """
    WITH posts_in AS (
        SELECT p.id, p.created_at, p.created_at >= :window_start AS recent
        FROM posts p
        WHERE p.created_at >= :baseline_start AND p.created_at < :window_end
    ),
    tagged AS (
        SELECT ph.hashtag_id, ph.post_id, pi.recent
        FROM posts_in pi JOIN post_hashtags ph ON ph.post_id = pi.id
    ),
    tagged_posts AS (
        SELECT DISTINCT pi.id, pi.created_at FROM posts_in pi JOIN post_hashtags ph ON ph.post_id = pi.id
    ),
    likes AS (
        SELECT l.post_id, count(*) AS n FROM post_likes l JOIN tagged_posts t ON t.id = l.post_id
        WHERE l.created_at < least(t.created_at + :window, :window_end) GROUP BY l.post_id
    ),
    comments AS (
        SELECT c.post_id, count(*) AS n FROM comments c JOIN tagged_posts t ON t.id = c.post_id
        WHERE c.created_at < least(t.created_at + :window, :window_end) GROUP BY c.post_id
    ),
    shares AS (
        SELECT s.post_id, count(*) AS n FROM shares s JOIN tagged_posts t ON t.id = s.post_id
        WHERE s.created_at < least(t.created_at + :window, :window_end) GROUP BY s.post_id
    ),
    weights AS (
        SELECT t.id AS post_id,
               1 + ln(1 + coalesce(l.n, 0) + 2 * coalesce(c.n, 0) + 3 * coalesce(s.n, 0)) AS w
        FROM tagged_posts t
        LEFT JOIN likes l ON l.post_id = t.id
        LEFT JOIN comments c ON c.post_id = t.id
        LEFT JOIN shares s ON s.post_id = t.id
    ),
    uses AS (
        SELECT tg.hashtag_id,
               count(*) FILTER (WHERE tg.recent) AS recent_posts,
               coalesce(sum(w.w) FILTER (WHERE tg.recent), 0) AS recent_use,
               coalesce(sum(w.w) FILTER (WHERE NOT tg.recent), 0) AS baseline_use
        FROM tagged tg JOIN weights w ON w.post_id = tg.post_id
        GROUP BY tg.hashtag_id
    ),
    scored AS (
        SELECT u.*, (u.recent_use - u.baseline_use * :scale) / sqrt(u.baseline_use * :scale + :prior) AS score
        FROM uses u
        WHERE u.recent_posts >= :min_posts
    )
    SELECT s.hashtag_id, h.tag, s.score, s.recent_posts, s.recent_use, s.baseline_use
    FROM scored s JOIN hashtags h ON h.id = s.hashtag_id
    WHERE s.score > 0
    ORDER BY s.score DESC, h.tag
    LIMIT :top
    """
)


@dataclass(frozen=True)
class TrendingEntry:
    rank: int
    hashtag_id: int
    tag: str
    score: float
    recent_posts: int
    recent_use: float
    baseline_use: float


def hour_start(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC hour holding *moment*."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def update_trending_hashtags(
    sessions: sessionmaker[Session],
    cache: redis.Redis[bytes],
    *,
    hour: dt.datetime | None = None,
    now: dt.datetime | None = None,
    window_hours: int = 3,
    baseline_days: int = 7,
    top_n: int = 20,
    min_posts: int = 3,
    cache_ttl_s: int = 7200,
) -> list[TrendingEntry]:
    """Rank the hashtags of *hour*, store the ranking and cache it in Redis.

    Parameters:
      sessions: Sessions on the database.
      cache: The application Redis.
      hour: Any moment of the hour to rank (naive means UTC); None: the last complete hour.
      now: The current time (for the default hour).
      window_hours, baseline_days, top_n, min_posts: See the module's docstring.
      cache_ttl_s: Lifetime of the cached rankings.

    Returns:
      The ranking, best first.
    """
    if hour is None:
        hour = hour_start(now or dt.datetime.now(dt.UTC)) - dt.timedelta(hours=1)
    elif hour.tzinfo is None:
        hour = hour.replace(tzinfo=dt.UTC)
    hour = hour_start(hour)
    window = dt.timedelta(hours=window_hours)
    window_end = hour + dt.timedelta(hours=1)
    window_start = window_end - window
    params = {
        "window_start": window_start,
        "window_end": window_end,
        "baseline_start": window_start - dt.timedelta(days=baseline_days),
        "window": window,
        "scale": window_hours / (24.0 * baseline_days),
        "prior": PRIOR,
        "min_posts": min_posts,
        "top": top_n,
    }
    with transaction(sessions) as session:
        rows = session.execute(_RANK, params).all()
        entries = [
            TrendingEntry(rank, int(r[0]), r[1], float(r[2]), int(r[3]), float(r[4]), float(r[5]))
            for rank, r in enumerate(rows, start=1)
        ]
        session.execute(text("DELETE FROM trending_hashtags WHERE hour = :hour"), {"hour": hour})
        if entries:
            session.execute(
                text(
                    "INSERT INTO trending_hashtags (hour, rank, hashtag_id, tag, score, recent_posts, recent_use, "
                    "baseline_use) VALUES (:hour, :rank, :hashtag_id, :tag, :score, :recent_posts, :recent_use, "
                    ":baseline_use)"
                ),
                [{"hour": hour, **asdict(entry)} for entry in entries],
            )
    _cache(cache, hour, entries, cache_ttl_s)
    return entries


def _cache(cache: redis.Redis[bytes], hour: dt.datetime, entries: list[TrendingEntry], ttl_s: int) -> None:
    """Cache the hour's ranking; also as the latest one unless a later hour is cached already."""
    value = json.dumps(
        {"hour": hour.isoformat(), "hashtags": [{"rank": e.rank, "tag": e.tag, "score": e.score} for e in entries]}
    )
    cache.set(HOUR_KEY.format(hour=hour.strftime("%Y-%m-%dT%H")), value, ex=ttl_s)
    latest = cache.get(LATEST_KEY)
    if latest is None or json.loads(latest)["hour"] <= hour.isoformat():
        cache.set(LATEST_KEY, value, ex=ttl_s)


def cached_trending(cache: redis.Redis[bytes]) -> dict[str, object] | None:
    """The latest cached ranking as the app reads it: ``{"hour": …, "hashtags": [{rank, tag, score}…]}``."""
    value = cache.get(LATEST_KEY)
    return json.loads(value) if value is not None else None
