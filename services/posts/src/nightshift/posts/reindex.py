"""Rebuilding the whole search index without taking search offline.

The new documents are built in ``search_documents_rebuild`` beside the live
table, in batches of posts by id, each batch a transaction that also moves the
run's cursor: a crash loses at most one batch and the next run resumes at the
cursor. Then the indexes and the foreign key are built on the new table, and one
short transaction swaps the tables: it locks the live table against writers,
copies in the documents the incremental indexer wrote since the rebuild started,
drops the live table and renames the new one into its place. Readers keep
reading the live table until that commit and the new one after it; they never
see an empty or partial index.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.posts.autocommit import autocommit
from nightshift.posts.indexing import document_select
from nightshift.posts.models import SearchMaintenance

logger = logging.getLogger(__name__)

#: The table the new index is built in.
REBUILD_TABLE = "search_documents_rebuild"
#: The live table.
LIVE_TABLE = "search_documents"
#: Documents the incremental indexer wrote this long before the rebuild started are copied
#: in at the swap too: a transaction that began before the rebuild may have committed after
#: its batch was copied.
CATCH_UP_MARGIN = dt.timedelta(minutes=10)
#: The advisory lock held by the one rebuild working at a time.
REINDEX_LOCK = 7_204_815_401

#: Names of the live table's constraints and index, which the new table takes at the swap.
_NAMES = {
    "pk": "pk_search_documents",
    "fk": "fk_search_documents_post_id_posts",
    "gin": "ix_search_documents_document",
}


@dataclass(frozen=True)
class ReindexOutcome:
    """What a call of :func:`reindex_search` did.

    ``done``: the new index is live. ``paused``: *max_batches* were copied and the
    run waits to be resumed. ``busy``: another rebuild holds the lock.
    """

    status: Literal["done", "paused", "busy"]
    run_id: int | None = None
    documents: int = 0
    batches: int = 0
    resumed: bool = False


def reindex_search(
    sessions: sessionmaker[Session],
    *,
    reason: str = "requested",
    batch_size: int = 20_000,
    max_body_chars: int = 20_000,
    max_batches: int | None = None,
) -> ReindexOutcome:
    """Rebuild every post's search document beside the live index, then swap.

    Parameters:
      sessions: Sessions on the database.
      reason: Recorded with a new run.
      batch_size: Posts copied per transaction.
      max_body_chars: Posts with longer bodies get no document (as in the indexer).
      max_batches: Stop after copying this many batches (the run stays resumable);
        None copies everything and swaps.

    Returns:
      What was done; ``documents`` counts the live index's documents after a swap.
    """
    with autocommit(sessions) as lock:
        if not lock.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": REINDEX_LOCK}).scalar():
            return ReindexOutcome("busy")
        try:
            run_id, resumed = _start_or_resume(sessions, reason)
            batches, finished = _copy(sessions, run_id, batch_size, max_body_chars, max_batches)
            if not finished:
                return ReindexOutcome("paused", run_id, batches=batches, resumed=resumed)
            _build_indexes(sessions)
            documents = _swap(sessions, run_id)
            return ReindexOutcome("done", run_id, documents=documents, batches=batches, resumed=resumed)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REINDEX_LOCK})


def _start_or_resume(sessions: sessionmaker[Session], reason: str) -> tuple[int, bool]:
    with transaction(sessions) as session:
        run = session.scalars(
            select(SearchMaintenance).where(SearchMaintenance.kind == "reindex", SearchMaintenance.status == "running")
        ).one_or_none()
        exists = session.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": REBUILD_TABLE}).scalar()
        if run is not None and exists:
            logger.info("Resuming search rebuild %s after post %s.", run.id, run.cursor)
            return run.id, True
        if run is not None:  # the table was lost: start this run again from the first post
            run.cursor = 0
            run.details = {**run.details, "batches": 0, "restarted": True}
        else:
            run = SearchMaintenance(kind="reindex", status="running", reason=reason, cursor=0, details={"batches": 0})
            session.add(run)
        session.execute(text(f"DROP TABLE IF EXISTS {REBUILD_TABLE}"))
        session.execute(
            text(
                f"CREATE TABLE {REBUILD_TABLE} (post_id bigint NOT NULL, config varchar(32) NOT NULL, "
                "document tsvector NOT NULL, indexed_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        session.flush()
        return run.id, False


def _copy(
    sessions: sessionmaker[Session], run_id: int, batch_size: int, max_body_chars: int, max_batches: int | None
) -> tuple[int, bool]:
    copied = 0
    insert = text(
        f"INSERT INTO {REBUILD_TABLE} (post_id, config, document, indexed_at) "
        + document_select("p.id > :after AND p.id <= :upto AND length(p.body) <= :max_chars")
    )
    while max_batches is None or copied < max_batches:
        with transaction(sessions) as session:
            run = session.get(SearchMaintenance, run_id, with_for_update=True)
            assert run is not None
            upto = session.execute(
                text("SELECT max(id) FROM (SELECT id FROM posts WHERE id > :after ORDER BY id LIMIT :n) b"),
                {"after": run.cursor, "n": batch_size},
            ).scalar()
            if upto is None:
                return copied, True
            session.execute(insert, {"after": run.cursor, "upto": upto, "max_chars": max_body_chars})
            run.cursor = int(upto)
            run.details = {**run.details, "batches": int(run.details.get("batches", 0)) + 1}
        copied += 1
    with sessions() as session:
        cursor = session.get(SearchMaintenance, run_id)
        more = session.execute(
            text("SELECT EXISTS (SELECT 1 FROM posts WHERE id > :after)"), {"after": cursor.cursor if cursor else 0}
        ).scalar()
    return copied, not more


def _constraint_exists(session: Session, name: str) -> bool:
    return bool(
        session.execute(text("SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = :n)"), {"n": name}).scalar()
    )


def _build_indexes(sessions: sessionmaker[Session]) -> None:
    """The new table's primary key, GIN index and foreign key; each step skipped when done already."""
    with autocommit(sessions) as connection:
        connection.execute(
            text(f"CREATE UNIQUE INDEX IF NOT EXISTS {_NAMES['pk']}_rebuild ON {REBUILD_TABLE} (post_id)")
        )
        connection.execute(
            text(f"CREATE INDEX IF NOT EXISTS {_NAMES['gin']}_rebuild ON {REBUILD_TABLE} USING gin (document)")
        )
    with transaction(sessions) as session:
        if not _constraint_exists(session, f"{_NAMES['pk']}_rebuild"):
            session.execute(
                text(
                    f"ALTER TABLE {REBUILD_TABLE} ADD CONSTRAINT {_NAMES['pk']}_rebuild "
                    f"PRIMARY KEY USING INDEX {_NAMES['pk']}_rebuild"
                )
            )
        if not _constraint_exists(session, f"{_NAMES['fk']}_rebuild"):
            # From here on, deleting a post deletes its new document too; the ones whose
            # post went while they were copied are removed in the same transaction.
            session.execute(
                text(
                    f"ALTER TABLE {REBUILD_TABLE} ADD CONSTRAINT {_NAMES['fk']}_rebuild FOREIGN KEY (post_id) "
                    "REFERENCES posts (id) ON DELETE CASCADE NOT VALID"
                )
            )
            session.execute(
                text(f"DELETE FROM {REBUILD_TABLE} r WHERE NOT EXISTS (SELECT 1 FROM posts p WHERE p.id = r.post_id)")  # noqa: S608
            )
    with autocommit(sessions) as connection:
        connection.execute(text(f"ALTER TABLE {REBUILD_TABLE} VALIDATE CONSTRAINT {_NAMES['fk']}_rebuild"))


def _swap(sessions: sessionmaker[Session], run_id: int) -> int:
    with transaction(sessions) as session:
        run = session.get(SearchMaintenance, run_id, with_for_update=True)
        assert run is not None
        # Writers wait from here to the commit; readers go on reading the live table.
        session.execute(text(f"LOCK TABLE {LIVE_TABLE} IN EXCLUSIVE MODE"))
        caught_up = session.execute(
            text(
                f"INSERT INTO {REBUILD_TABLE} AS r (post_id, config, document, indexed_at) "  # noqa: S608
                f"SELECT post_id, config, document, indexed_at FROM {LIVE_TABLE} WHERE indexed_at >= :since "
                "ON CONFLICT (post_id) DO UPDATE SET config = EXCLUDED.config, document = EXCLUDED.document, "
                "indexed_at = EXCLUDED.indexed_at"
            ),
            {"since": run.started_at - CATCH_UP_MARGIN},
        ).rowcount  # type: ignore[attr-defined]
        session.execute(text(f"DROP TABLE {LIVE_TABLE}"))
        session.execute(text(f"ALTER TABLE {REBUILD_TABLE} RENAME TO {LIVE_TABLE}"))
        for kind in ("pk", "fk"):
            session.execute(
                text(f"ALTER TABLE {LIVE_TABLE} RENAME CONSTRAINT {_NAMES[kind]}_rebuild TO {_NAMES[kind]}")
            )
        session.execute(text(f"ALTER INDEX {_NAMES['gin']}_rebuild RENAME TO {_NAMES['gin']}"))
        documents = int(session.execute(text(f"SELECT count(*) FROM {LIVE_TABLE}")).scalar_one())  # noqa: S608
        index_bytes = int(
            session.execute(text("SELECT pg_relation_size(CAST(:i AS regclass))"), {"i": _NAMES["gin"]}).scalar_one()
        )
        details: dict[str, Any] = {
            **run.details,
            "documents": documents,
            "caught_up": int(caught_up),
            "index_bytes": index_bytes,
            "baseline_bytes_per_document": index_bytes / documents if documents else None,
        }
        run.details = details
        run.status = "done"
        run.finished_at = dt.datetime.now(dt.UTC)
    logger.info("Search index rebuilt: %d documents, %d caught up at the swap.", documents, caught_up)
    return documents
