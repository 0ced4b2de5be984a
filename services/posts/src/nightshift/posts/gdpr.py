"""The posts service's part of a GDPR request: the user's posts, comments, likes and shares.

Export: the user's own posts (with their hashtags), the comments they wrote, the
posts they liked and shared, each with its time. Comments others wrote under the
user's posts are theirs, not the user's, and are not exported.

Erasure policy (one transaction, acknowledged with the counts in it):

==========================  ==============================================================
``posts`` by the user       deleted; by cascade their search documents (the search
                            index), hashtag links, engagement rows, and the comments,
                            likes and shares under them (a comment lives under its post)
``comments`` by the user    deleted (on anyone's post)
``post_likes``/``shares``   the user's deleted; other posts' ``post_engagement`` rows keep
                            their counts (aggregates naming no one) until the next recompute
``hashtags``                a tag that only the user's posts used is deleted, with its
                            ``trending_hashtags`` rows; it is removed from the cached
                            rankings in Redis and from ``content_analytics.top_hashtags``
``content_analytics``       kept: daily counts naming no one
==========================  ==============================================================
"""

from __future__ import annotations

import json

import redis
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.gdpr.parts import ExportPart, write_export_part
from nightshift.common.gdpr.workflow import finish_part, pending_subject
from nightshift.common.storage import Storage
from nightshift.posts.trending import HOUR_KEY, LATEST_KEY

SERVICE = "posts"

DESCRIPTION = (
    "Your posts (with their hashtags), the comments you wrote, and the posts you liked and shared, "
    "each with its date. Comments other people wrote under your posts are theirs and are not included."
)

_POSTS = text(
    """
    SELECT p.id, p.body, p.language, p.created_at, p.updated_at,
           coalesce(array_agg(h.tag ORDER BY h.tag) FILTER (WHERE h.tag IS NOT NULL), '{}') AS hashtags
    FROM posts p
    LEFT JOIN post_hashtags ph ON ph.post_id = p.id
    LEFT JOIN hashtags h ON h.id = ph.hashtag_id
    WHERE p.author_id = :user GROUP BY p.id ORDER BY p.id
    """
)
_COMMENTS = text("SELECT id, post_id, body, created_at FROM comments WHERE author_id = :user ORDER BY id")
_LIKES = text("SELECT post_id, created_at FROM post_likes WHERE user_id = :user ORDER BY created_at, post_id")
_SHARES = text("SELECT id, post_id, created_at FROM shares WHERE user_id = :user ORDER BY id")

#: The user's hashtags that no other post uses: they go with the user's posts.
_OWN_TAGS = text(
    """
    SELECT h.id, h.tag FROM hashtags h
    WHERE EXISTS (SELECT 1 FROM post_hashtags ph JOIN posts p ON p.id = ph.post_id
                  WHERE ph.hashtag_id = h.id AND p.author_id = :user)
      AND NOT EXISTS (SELECT 1 FROM post_hashtags ph JOIN posts p ON p.id = ph.post_id
                      WHERE ph.hashtag_id = h.id AND p.author_id <> :user)
    """
)
_DELETE = {
    "comments": text("DELETE FROM comments WHERE author_id = :user"),
    "likes": text("DELETE FROM post_likes WHERE user_id = :user"),
    "shares": text("DELETE FROM shares WHERE user_id = :user"),
    "posts": text("DELETE FROM posts WHERE author_id = :user"),
    "hashtags": text("DELETE FROM hashtags WHERE id = ANY(:tag_ids)"),
}
_STRIP_ANALYTICS = text(
    """
    UPDATE content_analytics SET top_hashtags = (
        SELECT coalesce(jsonb_agg(entry), '[]'::jsonb) FROM jsonb_array_elements(top_hashtags) entry
        WHERE NOT (entry->>'tag' = ANY(:tags))
    )
    WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(top_hashtags) entry WHERE entry->>'tag' = ANY(:tags))
    """
)


def export_part(sessions: sessionmaker[Session], storage: Storage, request_id: int) -> dict[str, int] | None:
    """Write the user's posts, comments, likes and shares for export *request_id*; acknowledge the part.

    Returns:
      The part's counts, or None when it was done already.
    """
    with sessions() as session:
        user_id = pending_subject(session, request_id, SERVICE, kind="export")
        if user_id is None:
            return None
        params = {"user": user_id}
        tables = {
            name: [dict(row._mapping) for row in session.execute(query, params)]
            for name, query in (("posts", _POSTS), ("comments", _COMMENTS), ("likes", _LIKES), ("shares", _SHARES))
        }
    counts = write_export_part(storage, request_id, ExportPart(SERVICE, DESCRIPTION, tables))
    with transaction(sessions) as session:
        finish_part(session, request_id, SERVICE, counts)
    return counts


def erase_part(sessions: sessionmaker[Session], cache: redis.Redis[bytes], request_id: int) -> dict[str, int] | None:
    """Erase the user's posts, comments, likes and shares (see the module's policy); acknowledge the part.

    One transaction: a crash leaves everything or nothing erased, and a rerun of a
    done part changes nothing.

    Returns:
      The counts erased, or None when the part was done already.
    """
    with transaction(sessions) as session:
        user_id = pending_subject(session, request_id, SERVICE, kind="erasure")
        if user_id is None:
            return None
        params = {"user": user_id}
        own_tags = session.execute(_OWN_TAGS, params).all()
        tag_ids = [int(row.id) for row in own_tags]
        tags = sorted(str(row.tag) for row in own_tags)
        counts = {
            "search_documents": _count(
                session,
                "SELECT count(*) FROM search_documents d JOIN posts p ON p.id = d.post_id WHERE p.author_id = :user",
                params,
            ),
        }
        for name in ("comments", "likes", "shares", "posts"):
            counts[name] = int(session.execute(_DELETE[name], params).rowcount)  # type: ignore[attr-defined]
        counts["hashtags"] = int(
            session.execute(_DELETE["hashtags"], {"tag_ids": tag_ids}).rowcount  # type: ignore[attr-defined]
        )
        counts["analytics_days_stripped"] = (
            int(session.execute(_STRIP_ANALYTICS, {"tags": tags}).rowcount) if tags else 0  # type: ignore[attr-defined]
        )
        # Before the commit: should it fail, the cache merely lost tags the next hourly run puts back.
        counts["cached_rankings_stripped"] = strip_cached_rankings(cache, set(tags)) if tags else 0
        finish_part(session, request_id, SERVICE, counts)
    return counts


def strip_cached_rankings(cache: redis.Redis[bytes], tags: set[str]) -> int:
    """Remove *tags* from every cached trending ranking, keeping each key's TTL; return how many keys changed."""
    changed = 0
    pattern = HOUR_KEY.format(hour="*")
    for key in [LATEST_KEY, *(k.decode() for k in cache.scan_iter(match=pattern, count=1000))]:
        raw = cache.get(key)
        if raw is None:
            continue
        ranking = json.loads(raw)
        kept = [entry for entry in ranking.get("hashtags", []) if entry.get("tag") not in tags]
        if len(kept) == len(ranking.get("hashtags", [])):
            continue
        ranking["hashtags"] = [{**entry, "rank": rank} for rank, entry in enumerate(kept, start=1)]
        cache.set(key, json.dumps(ranking), keepttl=True)
        changed += 1
    return changed


def _count(session: Session, query: str, params: dict[str, int]) -> int:
    return int(session.execute(text(query), params).scalar_one())
