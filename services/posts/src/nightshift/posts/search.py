"""Searching posts, and the text search configuration of each language.

Every configuration unaccents before stemming, so ``cafe`` finds ``café``. A
query is read in every configuration at once (a searcher's language is not
known): it matches a document if its English, French or plain reading does.
Matches are ranked by ``ts_rank`` with PostgreSQL's default weights, so a
hashtag (weight A, 1.0) outranks the same word in a body (weight B, 0.4).

A query ranks at most ``MAX_CANDIDATES`` matches, the newest ones, found in two
tiers. The newest ``RECENT_DOCUMENTS`` documents are read in post id order and
tested one by one, stopping at the cap: a common word (in a third of the posts)
is settled after a few hundred rows, where the GIN index would first have built
its whole posting list (hundreds of thousands of entries). Only when the recent
tier finds fewer matches than the cap does the GIN index look for the rest among
the older documents — then the word is rare among recent posts, and usually in
the index too.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

#: A post's language → the configuration its document is built with.
CONFIG_BY_LANGUAGE = {"en": "nightshift_en", "fr": "nightshift_fr"}
#: For posts whose language is unknown: no stemming, still unaccented.
DEFAULT_CONFIG = "nightshift_simple"

#: Most matches ranked per query (the newest found): bounds the cost of a query matching a large
#: part of the index. Matches beyond it are not considered.
MAX_CANDIDATES = 200
#: Newest documents tested one by one before the GIN index is asked for older matches.
RECENT_DOCUMENTS = 10_000

_QUERY = """
    (websearch_to_tsquery('nightshift_en', :q)
     || websearch_to_tsquery('nightshift_fr', :q)
     || websearch_to_tsquery('nightshift_simple', :q))
"""

_SEARCH = text(
    f"""
    WITH query AS MATERIALIZED (SELECT {_QUERY} AS q),
    recent AS (
        SELECT d.post_id, d.document
        FROM (SELECT post_id, document FROM search_documents ORDER BY post_id DESC LIMIT :recent) d, query
        WHERE d.document @@ query.q
        LIMIT :candidates
    ),
    older AS (
        SELECT d.post_id, d.document
        FROM search_documents d, query
        WHERE d.document @@ query.q
          -- evaluated once, before the scan: the GIN index is read only when the recent tier fell short
          AND (SELECT count(*) FROM recent) < :candidates
          -- "+ 0" keeps the planner on the GIN index rather than walking the primary key backwards
          AND d.post_id + 0 < (SELECT post_id FROM search_documents ORDER BY post_id DESC OFFSET :recent - 1 LIMIT 1)
        LIMIT :candidates
    ),
    candidates AS (
        SELECT * FROM recent
        UNION ALL
        (SELECT * FROM older LIMIT :candidates - (SELECT count(*) FROM recent))
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


def search_posts(
    session: Session,
    query: str,
    *,
    limit: int = 20,
    candidates: int = MAX_CANDIDATES,
    recent: int = RECENT_DOCUMENTS,
) -> list[Hit]:
    """The posts matching *query* (web-search syntax: words, ``"phrases"``, ``-not``, ``or``), best first.

    Parameters:
      session: Any session; the search reads only.
      query: What the user typed; a leading ``#`` is ignored, so ``#café`` searches ``café``.
      limit: Most hits returned.
      candidates: Most matches ranked (see ``MAX_CANDIDATES``); at least *limit* are.
      recent: Newest documents tested before the index is asked (see ``RECENT_DOCUMENTS``).

    Returns:
      Hits ordered by rank, newest first among equals; empty when nothing matches.

    Raises:
      ValueError: *recent* is below 1.
    """
    if recent < 1:
        raise ValueError(f"recent must be at least 1, not {recent}")
    params = {"q": query, "limit": limit, "candidates": max(candidates, limit), "recent": recent}
    rows = session.execute(_SEARCH, params)
    return [Hit(int(post_id), float(rank)) for post_id, rank in rows]
