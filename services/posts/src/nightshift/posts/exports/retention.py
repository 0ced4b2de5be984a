"""Removing exports whose link has expired, and abandoned unfinished ones."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.storage import Storage
from nightshift.posts.models import Export, ExportPart

logger = logging.getLogger(__name__)

#: Exports handled per transaction.
BATCH = 500


@dataclass(frozen=True)
class PurgeOutcome:
    """How many expired exports were deleted and unfinished ones abandoned."""

    expired: int = 0
    abandoned: int = 0


def purge_expired_exports(
    sessions: sessionmaker[Session],
    storage: Storage,
    *,
    abandon_after: dt.timedelta,
    now: dt.datetime | None = None,
) -> PurgeOutcome:
    """Delete the files of exports past their expiry and drop uploads nobody resumed.

    The rows stay (``expired`` / ``abandoned``) as the record of what was exported
    for whom; their part logs go. Safe to run concurrently: rows are taken with
    ``SKIP LOCKED``.

    Parameters:
      abandon_after: An unfinished export untouched this long is abandoned.
      now: The time to compare with (now by default).
    """
    moment = now or dt.datetime.now(dt.UTC)
    expired = abandoned = 0
    while True:
        with transaction(sessions) as session:
            batch = list(
                session.scalars(
                    select(Export)
                    .where(Export.status == "done", Export.expires_at <= moment)
                    .order_by(Export.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            storage.delete_many([export.storage_key for export in batch])
            for export in batch:
                export.status = "expired"
            _drop_parts(session, [export.id for export in batch])
        expired += len(batch)
        if len(batch) < BATCH:
            break
    while True:
        with transaction(sessions) as session:
            stale = list(
                session.scalars(
                    select(Export)
                    .where(Export.status == "running", Export.updated_at <= moment - abandon_after)
                    .order_by(Export.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            )
            for export in stale:
                if export.upload_id is not None:
                    storage.abort_upload(export.storage_key, export.upload_id)
                export.status = "abandoned"
                export.upload_id = None
            _drop_parts(session, [export.id for export in stale])
        abandoned += len(stale)
        if len(stale) < BATCH:
            break
    if expired or abandoned:
        logger.info("Exports purged: %d expired, %d abandoned.", expired, abandoned)
    return PurgeOutcome(expired, abandoned)


def _drop_parts(session: Session, export_ids: list[int]) -> None:
    if export_ids:
        session.execute(delete(ExportPart).where(ExportPart.export_id.in_(export_ids)))
