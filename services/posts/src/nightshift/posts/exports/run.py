"""Running one export: claim or resume it, stream its parts into storage, record each, finish with a link.

An export is identified by its job id (the message id), so a redelivered message
finds the export its first delivery started. CSV exports resume: each uploaded
part is recorded in ``export_parts`` with the last post id it holds, and a resumed
run streams from there into the same storage upload. XLSX exports start again
(see :mod:`nightshift.posts.exports.xlsx`). A session-level advisory lock keeps
two deliveries of one job from writing at once; PostgreSQL releases it when a
killed worker's connection drops.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.posts import ExportRequest
from nightshift.common.db.engine import transaction
from nightshift.common.db.models import User
from nightshift.common.errors import NotFound
from nightshift.common.outbox import publish_in_transaction
from nightshift.common.storage import Storage
from nightshift.posts.autocommit import autocommit
from nightshift.posts.errors import ExportBusy, ExportRefused
from nightshift.posts.exports.csv_gzip import csv_gzip_parts
from nightshift.posts.exports.queries import ExportQuery, export_query
from nightshift.posts.exports.xlsx import PartSink, write_xlsx
from nightshift.posts.models import Export, ExportPart

logger = logging.getLogger(__name__)

#: The formats an export can be made in: file suffix and content type.
FORMATS = {
    "csv": (".csv.gz", "application/gzip"),
    "xlsx": (".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}
#: Namespace of the advisory locks held while an export is written.
LOCK_NAMESPACE = "export:"


@dataclass(frozen=True)
class ExportLimits:
    """The posts settings an export needs (see ``PostsSettings.export_*``)."""

    max_range_days: int = 366
    part_bytes: int = 5 * 1024 * 1024
    gzip_level: int = 1
    link_ttl: dt.timedelta = dt.timedelta(hours=72)
    sheet_rows: int = 1_048_575
    timezone: str = "Europe/Paris"


@dataclass(frozen=True)
class ExportOutcome:
    """A finished export: where it is, what it holds, the link and when it expires."""

    export_id: int
    key: str
    format: str
    rows: int
    size: int
    parts: int
    parts_written: int
    link: str
    expires_at: dt.datetime
    resumed: bool

    def result(self) -> dict[str, Any]:
        """The job's result (small, JSON)."""
        return {
            "export_id": self.export_id,
            "key": self.key,
            "format": self.format,
            "rows": self.rows,
            "size": self.size,
            "parts": self.parts,
            "expires_at": self.expires_at.isoformat(),
            "link": self.link,
        }


def _nothing() -> None:
    return None


def _ignore(done: int, total: int | None, note: str | None) -> None:
    return None


def export_content(
    sessions: sessionmaker[Session],
    storage: Storage,
    request: ExportRequest,
    *,
    job_id: str,
    limits: ExportLimits,
    attempt: int = 1,
    report: Callable[[int, int | None, str | None], None] = _ignore,
    check_abort: Callable[[], None] = _nothing,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> ExportOutcome:
    """Make (or finish) the export of job *job_id* and return where it is.

    Parameters:
      sessions: Sessions on the database.
      storage: Where the file goes.
      request: What to export, for whom, in which format.
      job_id: The job (message) id: the export's identity across redeliveries.
      limits: Range maximum, part size, gzip level, link lifetime, rows per sheet, time zone.
      attempt: Which attempt this is (recorded in the part log).
      report: Called with (rows done, rows in all, note) as parts are written.
      check_abort: Called between parts: raises to stop (a revoked job).
      now: The clock.

    Raises:
      ExportRefused: The requester does not exist, the range is over the maximum,
        or the format is unknown (permanent: no retry).
      ExportBusy: Another delivery is writing this export now (retried).
    """
    lock_key = LOCK_NAMESPACE + job_id
    with autocommit(sessions) as lock:
        if not lock.execute(text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))"), {"k": lock_key}).scalar():
            raise ExportBusy(f"export of job {job_id} is being written by another worker")
        try:
            export_id, query, resumed = _claim(sessions, request, job_id, limits)
            with sessions() as session:
                export = session.get(Export, export_id)
                assert export is not None
                if export.status == "done":
                    return _outcome(sessions, storage, export, limits, now(), parts_written=0, resumed=True)
            if request.format == "csv":
                written = _write_csv(sessions, storage, export_id, query, limits, attempt, report, check_abort)
            else:
                written = _write_xlsx(sessions, storage, export_id, query, limits, attempt, report, check_abort)
            return _finish(sessions, storage, export_id, limits, now(), written, resumed)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), {"k": lock_key})


def _claim(
    sessions: sessionmaker[Session], request: ExportRequest, job_id: str, limits: ExportLimits
) -> tuple[int, ExportQuery, bool]:
    """The export of *job_id*, created (after the refusals) if it is new; whether it existed."""
    query = export_query(request, timezone=limits.timezone)
    with transaction(sessions) as session:
        existing = session.scalars(select(Export).where(Export.job_id == uuid.UUID(job_id))).one_or_none()
        if existing is not None:
            return existing.id, query, True
        _refuse(session, request, limits)
        suffix, _ = FORMATS[request.format]
        export = Export(
            job_id=uuid.UUID(job_id),
            requester_id=request.requester_id,
            what=request.what,
            format=request.format,
            since=request.since,
            until=request.until,
            status="running",
            storage_key=f"exports/{request.requester_id}/{job_id}{suffix}",
        )
        session.add(export)
        session.flush()
        raw = session.connection().connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            cursor.execute(query.bounds(), query.params)
            row = cursor.fetchone()
        assert row is not None
        export.total_rows, export.first_id, export.last_id = int(row[0]), row[1], row[2]
        return export.id, query, False


def _refuse(session: Session, request: ExportRequest, limits: ExportLimits) -> None:
    if request.format not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise ExportRefused(f"unknown export format {request.format!r} (known: {known})")
    if request.since is not None and request.until is not None:
        days = (request.until - request.since).days + 1
        if days > limits.max_range_days:
            raise ExportRefused(f"the range covers {days} days, over the maximum of {limits.max_range_days}")
    if session.get(User, request.requester_id) is None:
        raise ExportRefused(f"requester {request.requester_id} does not exist")


def _parts(session: Session, export_id: int) -> list[ExportPart]:
    return list(
        session.scalars(select(ExportPart).where(ExportPart.export_id == export_id).order_by(ExportPart.number))
    )


def _start_upload(sessions: sessionmaker[Session], storage: Storage, export_id: int, *, fresh: bool) -> tuple[str, str]:
    """The export's storage key and upload id (a new upload if it has none, or if *fresh*)."""
    with transaction(sessions) as session:
        export = session.get(Export, export_id, with_for_update=True)
        assert export is not None
        if fresh and export.upload_id is not None:
            storage.abort_upload(export.storage_key, export.upload_id)
            session.execute(delete(ExportPart).where(ExportPart.export_id == export_id))
            export.upload_id = None
            export.rows = export.bytes = 0
        if export.upload_id is None:
            export.upload_id = storage.start_upload(export.storage_key, content_type=FORMATS[export.format][1])
        return export.storage_key, export.upload_id


def _record_part(
    sessions: sessionmaker[Session],
    export_id: int,
    number: int,
    rows: int,
    size: int,
    last_id: int,
    tag: str,
    attempt: int,
) -> None:
    """Add a part to the log and move the export's counters, in one transaction."""
    values = {
        "export_id": export_id,
        "number": number,
        "rows": rows,
        "bytes": size,
        "last_id": last_id,
        "tag": tag,
        "attempt": attempt,
        "worker_pid": os.getpid(),
    }
    with transaction(sessions) as session:
        session.execute(
            insert(ExportPart)
            .values(values)
            .on_conflict_do_update(index_elements=[ExportPart.export_id, ExportPart.number], set_=values)
        )
        session.execute(
            text(
                "UPDATE exports SET rows = (SELECT coalesce(sum(rows), 0) FROM export_parts WHERE export_id = :e), "
                "bytes = (SELECT coalesce(sum(bytes), 0) FROM export_parts WHERE export_id = :e), updated_at = now() "
                "WHERE id = :e"
            ),
            {"e": export_id},
        )


def _write_csv(
    sessions: sessionmaker[Session],
    storage: Storage,
    export_id: int,
    query: ExportQuery,
    limits: ExportLimits,
    attempt: int,
    report: Callable[[int, int | None, str | None], None],
    check_abort: Callable[[], None],
) -> int:
    """Stream the rest of a CSV export into its upload; return how many parts this run wrote."""
    key, upload_id = _start_upload(sessions, storage, export_id, fresh=False)
    with sessions() as session:
        done = _parts(session, export_id)
        export = session.get(Export, export_id)
        assert export is not None
        total, first_id, last_id = export.total_rows, export.first_id, export.last_id
    number = len(done)
    rows = sum(part.rows for part in done)
    after = done[-1].last_id if done else (first_id or 1) - 1
    if done:
        logger.info("Resuming export %s after part %d (post %d, %d rows).", export_id, number, after, rows)

    def progress(streamed: int) -> None:
        report(rows + streamed, max(total, rows + streamed), f"{number} parts uploaded")

    written = uploaded = 0
    with sessions() as reading:
        reading.execute(text("SET LOCAL TIME ZONE 'UTC'"))
        raw = reading.connection().connection.driver_connection
        parts = csv_gzip_parts(
            raw,
            query,
            after=after,
            upto=last_id or 0,
            part_bytes=limits.part_bytes,
            level=limits.gzip_level,
            header=not done,
            on_rows=progress,
        )
        with closing(parts):  # on an error, end the COPY before the session rolls back
            for part in parts:
                check_abort()
                number += 1
                tag = storage.upload_part(key, upload_id, number, part.data)
                _record_part(sessions, export_id, number, part.rows, len(part.data), part.last_id, tag, attempt)
                written += 1
                uploaded += part.rows
    rows += uploaded
    report(rows, max(total, rows), f"{number} parts uploaded")
    return written


def _write_xlsx(
    sessions: sessionmaker[Session],
    storage: Storage,
    export_id: int,
    query: ExportQuery,
    limits: ExportLimits,
    attempt: int,
    report: Callable[[int, int | None, str | None], None],
    check_abort: Callable[[], None],
) -> int:
    """Write an XLSX export from the start into a new upload; return how many parts it has."""
    key, upload_id = _start_upload(sessions, storage, export_id, fresh=True)
    with sessions() as session:
        export = session.get(Export, export_id)
        assert export is not None
        total, last_id = export.total_rows, export.last_id
    numbers = [0]

    def send(data: bytes) -> None:
        check_abort()
        numbers[0] += 1
        tag = storage.upload_part(key, upload_id, numbers[0], data)
        _record_part(sessions, export_id, numbers[0], 0, len(data), 0, tag, attempt)

    def on_rows(rows: int) -> None:
        report(rows, max(total, rows), "writing the workbook")

    with sessions() as reading:
        raw = reading.connection().connection.driver_connection
        sink = PartSink(limits.part_bytes, send)
        rows = write_xlsx(raw, query, sink, upto=last_id or 0, sheet_rows=limits.sheet_rows, on_rows=on_rows)
    with transaction(sessions) as session:
        session.execute(text("UPDATE exports SET rows = :r WHERE id = :e"), {"r": rows, "e": export_id})
    report(rows, rows, "workbook uploaded")
    return numbers[0]


def _finish(
    sessions: sessionmaker[Session],
    storage: Storage,
    export_id: int,
    limits: ExportLimits,
    now: dt.datetime,
    written: int,
    resumed: bool,
) -> ExportOutcome:
    """Complete the upload, mark the export done and ask for the requester's email, in one transaction."""
    with transaction(sessions) as session:
        export = session.get(Export, export_id, with_for_update=True)
        assert export is not None
        assert export.upload_id is not None
        tags = [part.tag for part in _parts(session, export_id)]
        try:
            storage.complete_upload(export.storage_key, export.upload_id, tags)
        except NotFound:
            if not storage.exists(export.storage_key):  # completed by a run that died before recording it?
                raise
        export.bytes = storage.size(export.storage_key)
        export.status = "done"
        export.upload_id = None
        export.finished_at = now
        export.expires_at = now + limits.link_ttl
        outcome = _outcome(
            sessions, storage, export, limits, now, parts_written=written, resumed=resumed, parts=len(tags)
        )
        publish_in_transaction(
            session,
            "notification.requested",
            {
                "user_id": export.requester_id,
                "template": "export_ready",
                "idempotency_key": f"export_ready:{export.id}",
                "context_ids": {
                    "export_id": export.id,
                    "rows": export.rows,
                    "link_hours": max(1, round(limits.link_ttl.total_seconds() / 3600)),
                },
                "links": {"download": outcome.link},
            },
            aggregate_id=f"export:{export.id}",
        )
    logger.info("Export %s done: %d rows, %d bytes, %d parts.", export_id, outcome.rows, outcome.size, outcome.parts)
    return outcome


def _outcome(
    sessions: sessionmaker[Session],
    storage: Storage,
    export: Export,
    limits: ExportLimits,
    now: dt.datetime,
    *,
    parts_written: int,
    resumed: bool,
    parts: int | None = None,
) -> ExportOutcome:
    assert export.expires_at is not None
    if parts is None:
        with sessions() as session:
            parts = len(_parts(session, export.id))
    lifetime = max(dt.timedelta(seconds=1), min(export.expires_at - now, limits.link_ttl))
    filename = f"nightshift-{export.what.replace('_', '-')}-{export.id}{FORMATS[export.format][0]}"
    return ExportOutcome(
        export_id=export.id,
        key=export.storage_key,
        format=export.format,
        rows=export.rows,
        size=export.bytes,
        parts=parts,
        parts_written=parts_written,
        link=storage.link(export.storage_key, expires_in=lifetime, filename=filename),
        expires_at=export.expires_at,
        resumed=resumed,
    )
