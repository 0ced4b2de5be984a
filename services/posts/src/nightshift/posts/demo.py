"""Demo traffic for ``nightshift up``: a post with hashtags written every few seconds, and a few likes."""

from __future__ import annotations

import random

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.db.models import Post, User
from nightshift.common.outbox import publish_in_transaction

#: (language, body template); ``{tags}`` becomes two or three hashtags.
_BODIES = (
    ("en", "Night shift again, coffee number three {tags}"),
    ("en", "Finally fixed the flaky test, running the whole suite twice {tags}"),
    ("fr", "Un café crème et un croissant avant la réunion {tags}"),
    ("fr", "Les déploiements du vendredi soir, quelle idée {tags}"),
    (None, "{tags} {tags}"),
)
_TAGS = ("#café", "#Café", "#nightshift", "#python", "#postgres", "#déploiement", "#dramatiq", "#weekend")


def tick(sessions: sessionmaker[Session]) -> int:
    """Write one post (and like a few recent ones), publishing ``post.created`` in the same transaction.

    Returns:
      The new post's id; ``nightshift posts search café`` finds the French ones.
    """
    language, template = random.choice(_BODIES)
    body = template.format(tags=" ".join(random.sample(_TAGS, 2)))
    with transaction(sessions) as session:
        author_id = session.scalar(select(func.max(User.id)))
        if author_id is None:
            raise LookupError("no user yet to write a post")
        post = Post(author_id=author_id, body=body, language=language)
        session.add(post)
        session.flush()
        session.execute(
            text(
                "INSERT INTO post_likes (post_id, user_id) "
                "SELECT p.id, :user FROM posts p ORDER BY p.id DESC LIMIT 3 ON CONFLICT DO NOTHING"
            ),
            {"user": author_id},
        )
        publish_in_transaction(session, "post.created", {"post_id": post.id}, aggregate_id=f"post:{post.id}")
    print(f"demo        post {post.id} written ({language or 'language unknown'}) -> hashtags and search index")
    return post.id
