"""Assembling an export: every part into one zip archive, streamed to storage, linked and emailed.

The archive is written to a temporary file (on disk, not in memory) one member
at a time — each part's JSON, then its files — and uploaded from there in
chunks (``Storage.put_stream``). Memory holds one original at most. The link
is recorded on the request with its expiry, and ``notification.requested``
(template ``gdpr_export_ready``, the request's id as context) is written in
the same transaction; notifications looks the address and the link up itself.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import zipfile
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from nightshift.common.contracts.gdpr import GDPR_SERVICES
from nightshift.common.db.engine import transaction
from nightshift.common.gdpr.parts import read_export_part, request_prefix
from nightshift.common.outbox import publish_in_transaction
from nightshift.common.storage import Storage
from nightshift.users.gdpr import complete_request, open_request

#: The template notifications renders when an archive is ready.
EXPORT_READY_TEMPLATE = "gdpr_export_ready"


def archive_key(request_id: int) -> str:
    """Where export *request_id*'s archive is stored."""
    return f"{request_prefix(request_id)}export.zip"


def assemble_export(
    sessions: sessionmaker[Session], storage: Storage, request_id: int, *, link_lifetime: dt.timedelta
) -> dict[str, Any] | None:
    """Build export *request_id*'s archive from its parts, store it, link it and ask for the email.

    Run again after a crash, it rebuilds the same archive under the same key; once
    the request is done it only removes leftover part objects.

    Returns:
      The completion record, or None when the request was done already.

    Raises:
      NotFound: There is no such request, or a part's document is missing.
      PermanentError: A part is still pending.
    """
    with sessions() as session:
        request = open_request(session, request_id, "export")
    if request is None:
        _delete_parts(storage, request_id)
        return None
    key = archive_key(request_id)
    parts = [(service, read_export_part(storage, request_id, service)) for service in GDPR_SERVICES]
    with tempfile.TemporaryFile() as spool:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            archive.writestr("README.txt", readme(request_id, parts))
            for service, document in parts:
                archive.writestr(f"{service}.json", json.dumps(document["tables"], ensure_ascii=False, indent=2))
                for name, stored in sorted(document["files"].items()):
                    with archive.open(f"files/{service}/{name}", "w", force_zip64=True) as member:
                        member.write(storage.get(stored))
        spool.seek(0)
        storage.put_stream(key, spool, content_type="application/zip")
    expires = dt.datetime.now(dt.UTC) + link_lifetime
    link = storage.link(key, expires_in=link_lifetime, filename=f"nightshift-data-{request_id}.zip")
    with transaction(sessions) as session:
        request = open_request(session, request_id, "export")
        if request is None:
            return None
        request.archive_key, request.link_url, request.link_expires_at = key, link, expires
        user_id = request.user_id
        record = complete_request(
            session, request, {"step": "assemble_user_export", "counts": {"parts": len(parts), "archives": 1}}
        )
        publish_in_transaction(
            session,
            "notification.requested",
            {
                "user_id": user_id,
                "template": EXPORT_READY_TEMPLATE,
                "idempotency_key": f"gdpr_export:{request_id}",
                "context_ids": {"gdpr_request": request_id},
            },
            aggregate_id=f"gdpr:{request_id}",
        )
    _delete_parts(storage, request_id)
    return record


def readme(request_id: int, parts: list[tuple[str, dict[str, Any]]]) -> str:
    """The archive's README: what each part is and what it holds."""
    lines = [
        "Your Nightshift data",
        "====================",
        "",
        f"Export {request_id}, made {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "Each part of Nightshift that keeps data about you wrote one JSON file: an object whose keys are",
        "the kinds of records and whose values are lists of records (dates in ISO 8601, UTC).",
        "Files you uploaded are in files/<part>/.",
        "",
    ]
    for service, document in parts:
        counts = ", ".join(f"{len(rows)} {name}" for name, rows in document["tables"].items())
        files = f", {len(document['files'])} files in files/{service}/" if document["files"] else ""
        lines += [f"{service}.json", f"  {document['description']}", f"  Holds: {counts or 'nothing'}{files}.", ""]
    return "\n".join(lines)


def _delete_parts(storage: Storage, request_id: int) -> None:
    prefix = request_prefix(request_id)
    storage.delete_many([key for key in storage.list(prefix) if key.startswith((f"{prefix}parts/", f"{prefix}files/"))])
