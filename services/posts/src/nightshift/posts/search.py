"""Searching posts, and the text search configuration of each language.

Every configuration unaccents before stemming, so ``cafe`` finds ``café``. A
query is read in every configuration at once (a searcher's language is not
known): it matches a document if its English, French or plain reading does.
Matches are ranked by ``ts_rank`` with PostgreSQL's default weights, so a
hashtag (weight A, 1.0) outranks the same word in a body (weight B, 0.4).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

#: A post's language → the configuration its document is built with.
CONFIG_BY_LANGUAGE = {"en": "nightshift_en", "fr": "nightshift_fr"}
#: For posts whose language is unknown: no stemming, still unaccented.
DEFAULT_CONFIG = "nightshift_simple"

#: Most matches ranked per query: bounds the cost of a query matching a large part of the index.
#: Matches beyond it are not considered (their order is the index's, not the rank's).
MAX_CANDIDATES = 2000

_QUERY = """
    (websearch_to_tsquery('nightshift_en', :q)
     || websearch_to_tsquery('nightshift_fr', :q)
     || websearch_to_tsquery('nightshift_simple', :q))
"""

_SEARCH = text(
    f"""
    WITH query AS (SELECT {_QUERY} AS q),
    candidates AS (
        SELECT d.post_id, d.document
        FROM search_documents d, query
        WHERE d.document @@ query.q
        LIMIT :candidates
    )
    SELECT c.post_id, ts_rank(c.document, query.q) AS rank
    FROM candidates c, query
    ORDER BY rank DESC, c.post_id DESC
    LIMIT :limit
    """  # noqa: S608 - SQL from module constants; values are bound
)


def config_for(language: str | None) -> str:
    """The text search configuration of a post written in *language* (``en``, ``fr`` or unknown)."""
    return CONFIG_BY_LANGUAGE.get((language or "").lower(), DEFAULT_CONFIG)


@dataclass(frozen=True)
class Hit:
    post_id: int
    rank: float


def search_posts(session: Session, query: str, *, limit: int = 20, candidates: int = MAX_CANDIDATES) -> list[Hit]:
    """The posts matching *query* (web-search syntax: words, ``"phrases"``, ``-not``, ``or``), best first.

    Parameters:
      session: Any session; the search reads only.
      query: What the user typed; a leading ``#`` is ignored, so ``#café`` searches ``café``.
      limit: Most hits returned.
      candidates: Most matches ranked (see ``MAX_CANDIDATES``).

    Returns:
      Hits ordered by rank, newest first among equals; empty when nothing matches.
    """
    rows = session.execute(_SEARCH, {"q": query, "limit": limit, "candidates": candidates})
    return [Hit(int(post_id), float(rank)) for post_id, rank in rows]
