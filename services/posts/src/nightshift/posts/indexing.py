"""Incremental indexing: a post's hashtags linked and its search document written, in one transaction.

The document is computed by PostgreSQL from the post row and its hashtag links
(:func:`document_select`), the same statement the full rebuild uses, so an
incremental update and a rebuild always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.posts import PostChangeKind
from nightshift.common.db.engine import transaction
from nightshift.common.db.models import Post
from nightshift.common.errors import NotFound
from nightshift.posts.errors import PostRejected
from nightshift.posts.hashtags import extract_hashtags
from nightshift.posts.search import CONFIG_BY_LANGUAGE, DEFAULT_CONFIG

_CONFIG_CASE = (
    "CASE lower(p.language) "
    + " ".join(f"WHEN '{language}' THEN '{config}'" for language, config in CONFIG_BY_LANGUAGE.items())
    + f" ELSE '{DEFAULT_CONFIG}' END"
)


def document_select(where: str) -> str:
    """``SELECT post_id, config, document, indexed_at`` for the posts matching *where* (on ``posts p``).

    Hashtags are weighted A and the body B, both read with the post's language
    configuration (so ``#running`` also matches ``run`` in English).
    """
    return f"""
        SELECT p.id, c.config,
               setweight(to_tsvector(c.config::regconfig, coalesce(t.tags, '')), 'A')
               || setweight(to_tsvector(c.config::regconfig, p.body), 'B'),
               now()
        FROM posts p
        CROSS JOIN LATERAL (SELECT {_CONFIG_CASE} AS config) c
        LEFT JOIN LATERAL (
            SELECT string_agg(h.tag, ' ') AS tags
            FROM post_hashtags ph JOIN hashtags h ON h.id = ph.hashtag_id
            WHERE ph.post_id = p.id
        ) t ON true
        WHERE {where}
    """  # noqa: S608 - SQL from module constants; values are bound


_UPSERT_DOCUMENT = text(
    f"""
    INSERT INTO search_documents AS d (post_id, config, document, indexed_at)
    {document_select("p.id = :post_id")}
    ON CONFLICT (post_id) DO UPDATE SET
        config = EXCLUDED.config, document = EXCLUDED.document, indexed_at = EXCLUDED.indexed_at
    """
)

_ADD_HASHTAGS = text("INSERT INTO hashtags (tag) SELECT unnest(CAST(:tags AS text[])) ON CONFLICT (tag) DO NOTHING")
_HASHTAG_IDS = text("SELECT id FROM hashtags WHERE tag = ANY(CAST(:tags AS text[]))")
_UNLINK_OTHERS = text(
    "DELETE FROM post_hashtags WHERE post_id = :post_id AND NOT (hashtag_id = ANY(CAST(:ids AS bigint[])))"
)
_LINK = text(
    "INSERT INTO post_hashtags (post_id, hashtag_id) SELECT :post_id, unnest(CAST(:ids AS bigint[])) "
    "ON CONFLICT DO NOTHING"
)
_REMOVE_DOCUMENT = text("DELETE FROM search_documents WHERE post_id = :post_id")
_REMOVE_LINKS = text("DELETE FROM post_hashtags WHERE post_id = :post_id")


@dataclass(frozen=True)
class IndexOutcome:
    """What :func:`index_post` did: ``indexed`` (with its hashtags), ``removed`` or ``missing``."""

    status: Literal["indexed", "removed", "missing"]
    hashtags: tuple[str, ...] = ()


def index_post(
    sessions: sessionmaker[Session], post_id: int, change: PostChangeKind, *, max_body_chars: int
) -> IndexOutcome:
    """Bring post *post_id*'s hashtag links and search document in line with the post.

    Idempotent: the links and document depend only on the post as it is now.

    Parameters:
      sessions: Sessions on the database.
      post_id: The post.
      change: What the app said happened. ``deleted`` removes the document and links
        (deleting the post already did, by cascade; this also covers a post that
        still exists). ``updated`` for a post that is gone does nothing: its
        ``post.deleted`` follows.
      max_body_chars: Longer bodies are refused.

    Raises:
      NotFound: ``created`` for a post that does not exist.
      PostRejected: The body is over *max_body_chars*; the previous document, if any, is kept.
    """
    with transaction(sessions) as session:
        if change == "deleted":
            session.execute(_REMOVE_DOCUMENT, {"post_id": post_id})
            session.execute(_REMOVE_LINKS, {"post_id": post_id})
            return IndexOutcome("removed")
        post = session.get(Post, post_id, with_for_update=True)
        if post is None:
            if change == "created":
                raise NotFound(f"post {post_id} does not exist")
            return IndexOutcome("missing")
        if len(post.body) > max_body_chars:
            raise PostRejected(f"post {post_id}: body is {len(post.body)} characters, over the {max_body_chars} limit")
        tags = extract_hashtags(post.body)
        ids: list[int] = []
        if tags:
            session.execute(_ADD_HASHTAGS, {"tags": sorted(tags)})
            ids = [int(i) for i in session.scalars(_HASHTAG_IDS, {"tags": tags})]
        session.execute(_UNLINK_OTHERS, {"post_id": post_id, "ids": ids})
        if ids:
            session.execute(_LINK, {"post_id": post_id, "ids": ids})
        session.execute(_UPSERT_DOCUMENT, {"post_id": post_id})
        return IndexOutcome("indexed", tuple(tags))
