"""The media service's part of a GDPR request: the images the user uploaded.

Export: each upload's row (status, type, size, dimensions, post, dates) and its
original file, copied beside the part so the archive holds it as uploaded.
Variants are derived from the original and are not exported.

Erasure policy: every upload the user owns is deleted — original, every variant,
and the row — whether or not it is attached to a post. Objects are deleted
before the rows, inside the rows' transaction, as ``removal`` does: a failure
leaves the rows for the retry, which deletes again (a missing object is ignored).
"""

from __future__ import annotations

import posixpath

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.db.engine import transaction
from nightshift.common.gdpr.parts import ExportPart, part_file_key, write_export_part
from nightshift.common.gdpr.workflow import finish_part, pending_subject
from nightshift.common.storage import Storage
from nightshift.media.models import Media

SERVICE = "media"

DESCRIPTION = (
    "The images you uploaded: for each, its status, type, size, dimensions, the post it belongs to and its dates, "
    "and the original file as you uploaded it (in files/media/)."
)

#: Columns of an upload that are exported.
_COLUMNS = ("id", "post_id", "status", "source_type", "width", "height", "bytes", "created_at", "processed_at")


def export_part(sessions: sessionmaker[Session], storage: Storage, request_id: int) -> dict[str, int] | None:
    """Copy the user's originals and write their rows for export *request_id*; acknowledge the part.

    Originals are copied one at a time (memory holds one original at most).

    Returns:
      The part's counts, or None when it was done already.
    """
    with sessions() as session:
        user_id = pending_subject(session, request_id, SERVICE, kind="export")
        if user_id is None:
            return None
        uploads = session.scalars(select(Media).where(Media.owner_id == user_id).order_by(Media.id)).all()
    files: dict[str, str] = {}
    rows = []
    for media in uploads:
        row = {column: getattr(media, column) for column in _COLUMNS}
        if storage.exists(media.original_key):
            name = f"{media.id}-{posixpath.basename(media.original_key)}"
            target = part_file_key(request_id, SERVICE, name)
            storage.put(target, storage.get(media.original_key))
            files[name] = target
            row["file"] = f"files/{SERVICE}/{name}"
        rows.append(row)
    counts = write_export_part(storage, request_id, ExportPart(SERVICE, DESCRIPTION, {"media": rows}, files))
    with transaction(sessions) as session:
        finish_part(session, request_id, SERVICE, counts)
    return counts


def erase_part(sessions: sessionmaker[Session], storage: Storage, request_id: int) -> dict[str, int] | None:
    """Delete every upload the user owns, files first, then rows; acknowledge the part.

    Returns:
      The counts erased, or None when the part was done already.
    """
    with transaction(sessions) as session:
        user_id = pending_subject(session, request_id, SERVICE, kind="erasure")
        if user_id is None:
            return None
        uploads = session.scalars(select(Media).where(Media.owner_id == user_id).with_for_update()).all()
        keys = [key for media in uploads for key in media.stored_keys()]
        storage.delete_many(keys)
        session.execute(delete(Media).where(Media.id.in_([media.id for media in uploads])))
        counts = {"media": len(uploads), "files": len(keys)}
        finish_part(session, request_id, SERVICE, counts)
    return counts
