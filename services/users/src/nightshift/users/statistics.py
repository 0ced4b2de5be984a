"""Per-user counters recomputed in one set-based statement."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction

_RECOMPUTE = text(
    """
    INSERT INTO user_stats AS s (user_id, posts_count, likes_received, comments_received, last_activity_at, updated_at)
    SELECT u.id,
           COALESCE(p.posts, 0),
           COALESCE(l.likes, 0),
           COALESCE(c.comments, 0),
           GREATEST(u.last_active_at, p.last_post_at, c.last_comment_at),
           now()
    FROM users u
    LEFT JOIN (
        SELECT author_id, count(*) AS posts, max(created_at) AS last_post_at FROM posts GROUP BY author_id
    ) p ON p.author_id = u.id
    LEFT JOIN (
        SELECT po.author_id, count(*) AS likes
        FROM post_likes pl JOIN posts po ON po.id = pl.post_id GROUP BY po.author_id
    ) l ON l.author_id = u.id
    LEFT JOIN (
        SELECT po.author_id, count(*) AS comments, max(cm.created_at) AS last_comment_at
        FROM comments cm JOIN posts po ON po.id = cm.post_id GROUP BY po.author_id
    ) c ON c.author_id = u.id
    ON CONFLICT (user_id) DO UPDATE SET
        posts_count = EXCLUDED.posts_count,
        likes_received = EXCLUDED.likes_received,
        comments_received = EXCLUDED.comments_received,
        last_activity_at = EXCLUDED.last_activity_at,
        updated_at = EXCLUDED.updated_at
    WHERE (s.posts_count, s.likes_received, s.comments_received, s.last_activity_at)
          IS DISTINCT FROM
          (EXCLUDED.posts_count, EXCLUDED.likes_received, EXCLUDED.comments_received, EXCLUDED.last_activity_at)
    """
)


def update_user_statistics(sessions: sessionmaker[Session]) -> int:
    """Recompute every user's counters; return how many rows changed.

    One ``INSERT … SELECT … ON CONFLICT`` over grouped subqueries: PostgreSQL
    hashes each table once instead of Python visiting each user. Rows whose
    counters did not change are not rewritten, so a second run writes nothing.
    """
    with transaction(sessions) as session:
        return int(session.execute(_RECOMPUTE).rowcount)  # type: ignore[attr-defined]
