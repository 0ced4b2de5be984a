"""Keeping the search structures fast: vacuum, analyse, flush the GIN pending list, rebuild when bloated.

A GIN index grows with every update and never shrinks on its own: vacuum makes
its dead entries reusable, not its pages free. Bloat is judged by the index's
bytes per document against those of a freshly built index (recorded by the
last rebuild, or by the first run when there was none): past ``bloat_ratio``
times that, and above ``min_bytes``, the index is rebuilt with ``REINDEX …
CONCURRENTLY`` (searches and indexing go on meanwhile). Every run is recorded
in ``search_maintenance`` with what it found and did.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.posts.autocommit import autocommit
from nightshift.posts.models import SearchMaintenance

logger = logging.getLogger(__name__)

#: The GIN index of the live search table.
GIN_INDEX = "ix_search_documents_document"


@dataclass(frozen=True)
class OptimizeOutcome:
    """What one run found and did (also stored as the run's details)."""

    documents: int
    dead_documents_before: int
    pending_pages_cleaned: int
    index_bytes_before: int
    index_bytes_after: int
    baseline_bytes_per_document: float | None
    bloat: float | None
    reindexed: bool
    seconds: float


def optimize_search_index(
    sessions: sessionmaker[Session], *, bloat_ratio: float = 1.5, min_bytes: int = 16 * 1024 * 1024
) -> OptimizeOutcome:
    """Vacuum and analyse the search table, clean the GIN pending list, and rebuild the GIN index if bloated.

    Running it again right after does the cheap steps again and rebuilds nothing.

    Parameters:
      sessions: Sessions on the database.
      bloat_ratio: Rebuild when bytes per document exceed the baseline's by this factor.
      min_bytes: Never rebuild an index smaller than this.

    Returns:
      What it found and did.
    """
    started = time.monotonic()
    baseline = _baseline(sessions)
    with autocommit(sessions) as connection:
        dead = int(
            connection.execute(
                text("SELECT coalesce(n_dead_tup, 0) FROM pg_stat_user_tables WHERE relname = 'search_documents'")
            ).scalar()
            or 0
        )
        cleaned = int(connection.execute(text(f"SELECT gin_clean_pending_list('{GIN_INDEX}'::regclass)")).scalar_one())
        connection.execute(text("VACUUM (ANALYZE) search_documents"))
        documents, before = _size(connection)
        per_document = before / documents if documents else None
        bloat = per_document / baseline if per_document and baseline else None
        reindexed = bloat is not None and bloat >= bloat_ratio and before >= min_bytes
        if reindexed:
            logger.info("Search index bloat %.2fx over its fresh size: rebuilding it concurrently.", bloat)
            connection.execute(text(f"REINDEX INDEX CONCURRENTLY {GIN_INDEX}"))
        _, after = _size(connection)
    outcome = OptimizeOutcome(
        documents=documents,
        dead_documents_before=dead,
        pending_pages_cleaned=cleaned,
        index_bytes_before=before,
        index_bytes_after=after,
        baseline_bytes_per_document=baseline,
        bloat=bloat,
        reindexed=reindexed,
        seconds=round(time.monotonic() - started, 3),
    )
    fresh = after / documents if documents and (reindexed or baseline is None) else None
    with transaction(sessions) as session:
        details = {**asdict(outcome), "baseline_bytes_per_document": fresh or baseline}
        session.add(
            SearchMaintenance(kind="optimize", status="done", details=details, finished_at=dt.datetime.now(dt.UTC))
        )
    return outcome


def _size(connection: Connection) -> tuple[int, int]:
    """The live table's document count (from the statistics vacuum just refreshed) and its GIN index's bytes."""
    row = connection.execute(
        text(
            "SELECT greatest(c.reltuples, 0)::bigint, pg_relation_size(i.oid) "
            "FROM pg_class c, pg_class i WHERE c.relname = 'search_documents' AND i.relname = :index"
        ),
        {"index": GIN_INDEX},
    ).one()
    return int(row[0]), int(row[1])


def _baseline(sessions: sessionmaker[Session]) -> float | None:
    """Bytes per document of the index when last built fresh (by a rebuild, or recorded by a run)."""
    with sessions() as session:
        details = session.scalars(
            select(SearchMaintenance.details)
            .where(
                SearchMaintenance.status == "done",
                SearchMaintenance.details["baseline_bytes_per_document"].as_float().is_not(None),
            )
            .order_by(SearchMaintenance.finished_at.desc())
            .limit(1)
        ).first()
    if not details:
        return None
    value = details.get("baseline_bytes_per_document")
    return float(value) if value else None
