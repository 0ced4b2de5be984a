"""What a service's export part writes to storage, and where.

A part is one JSON document (``gdpr/<request>/parts/<service>.json``) holding a
description of what it is, its rows by table, and the files it copied beside it
(``gdpr/<request>/files/<service>/<name>``). The users service assembles every
part into the archive, then deletes these objects. Keys depend only on the
request and the service, so a part run again overwrites the same objects.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nightshift.common.storage import Storage

#: The version of a part's JSON layout, written into it.
PART_FORMAT = 1


def request_prefix(request_id: int) -> str:
    """The prefix of every object a request writes (parts, files, the archive)."""
    return f"gdpr/{request_id}/"


def part_key(request_id: int, service: str) -> str:
    """Where *service*'s part of export *request_id* is written."""
    return f"{request_prefix(request_id)}parts/{service}.json"


def part_file_key(request_id: int, service: str, name: str) -> str:
    """Where a file of *service*'s part is copied (*name* as it appears in the archive)."""
    return f"{request_prefix(request_id)}files/{service}/{name}"


@dataclass(frozen=True)
class ExportPart:
    """One service's share of a user's data.

    Parameters:
      service: The service.
      description: What the part holds, in a sentence or two (it goes into the archive's README).
      tables: Rows by table name, each row a mapping of column to value.
      files: Archive name → storage key of each file copied beside the part.
    """

    service: str
    description: str
    tables: Mapping[str, Sequence[Mapping[str, Any]]]
    files: Mapping[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Rows per table and the number of files: the part's acknowledgement."""
        return {**{name: len(rows) for name, rows in self.tables.items()}, "files": len(self.files)}


def write_export_part(storage: Storage, request_id: int, part: ExportPart) -> dict[str, int]:
    """Write *part* as JSON to storage; return its counts."""
    document = {
        "format": PART_FORMAT,
        "service": part.service,
        "description": part.description,
        "tables": {name: list(rows) for name, rows in part.tables.items()},
        "files": dict(part.files),
    }
    data = json.dumps(document, default=_json_default, ensure_ascii=False, indent=2).encode()
    storage.put(part_key(request_id, part.service), data, content_type="application/json")
    return part.counts()


def read_export_part(storage: Storage, request_id: int, service: str) -> dict[str, Any]:
    """The JSON document *service* wrote for export *request_id*.

    Raises:
      NotFound: The part was not written.
    """
    document: dict[str, Any] = json.loads(storage.get(part_key(request_id, service)))
    return document


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} in an export part")
