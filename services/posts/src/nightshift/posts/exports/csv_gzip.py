"""CSV exports: ``COPY … TO STDOUT`` compressed into gzip parts as the rows arrive.

Each part is a complete gzip member (RFC 1952 allows a file of several; gzip,
zcat and Python read them as one stream), so a part can be uploaded, recorded and,
after a crash, continued from without the compressor's state: the next part is a
new member that starts after the last row of the previous one. Memory holds one
part and one batch of rows at a time, whatever the export's size.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nightshift.posts.exports.queries import ExportQuery

#: Rows compressed per call into zlib (one call per row costs more than the compression).
BATCH_ROWS = 2000
#: zlib's window bits for a gzip member.
_GZIP = 16 + zlib.MAX_WBITS


@dataclass(frozen=True)
class Part:
    """A compressed part: its bytes, how many data rows it holds and the post id of the last."""

    data: bytes
    rows: int
    last_id: int


def copy_statement(query: ExportQuery, *, header: bool) -> str:
    """The ``COPY`` of *query*'s rows as CSV (with the header line only at the very start)."""
    options = "FORMAT csv, HEADER true" if header else "FORMAT csv"
    return f"COPY ({query.select()}) TO STDOUT WITH ({options})"


def _no_progress(rows: int) -> None:
    return None


def csv_gzip_parts(
    connection: Any,
    query: ExportQuery,
    *,
    after: int,
    upto: int,
    part_bytes: int,
    level: int,
    header: bool = True,
    on_rows: Callable[[int], None] = _no_progress,
) -> Iterator[Part]:
    """Stream *query*'s rows with post ids in (*after*, *upto*] as gzip parts of about *part_bytes* compressed bytes.

    Parameters:
      connection: A psycopg connection, inside a transaction whose time zone is set.
      after: The last post id already exported.
      upto: The export's last post id.
      part_bytes: A part is cut at the first batch boundary past this size.
      level: The gzip level.
      header: Start with the header line (the first part of an export).
      on_rows: Called with the rows compressed so far by this call, after each batch.
    """
    compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP)
    pending: list[bytes] = []
    pending_bytes = 0
    part_rows = -1 if header else 0  # the header line is not a row
    last_id = after
    batch: list[Any] = []
    statement = copy_statement(query, header=header)
    streamed = 0
    params = {**query.params, "after": after, "upto": upto}
    with connection.cursor() as cursor, cursor.copy(statement, params) as copy:
        for row in copy:
            batch.append(row)
            if len(batch) < BATCH_ROWS:
                continue
            pending.append(compressor.compress(b"".join(batch)))
            pending_bytes += len(pending[-1])
            part_rows += len(batch)
            streamed += len(batch)
            last_id = _post_id(batch[-1])
            batch.clear()
            on_rows(streamed)
            if pending_bytes >= part_bytes:
                pending.append(compressor.flush())
                yield Part(b"".join(pending), part_rows, last_id)
                compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP)
                pending, pending_bytes, part_rows = [], 0, 0
    if batch:
        pending.append(compressor.compress(b"".join(batch)))
        part_rows += len(batch)
        if part_rows > 0:
            last_id = _post_id(batch[-1])
    if batch or part_rows > 0 or pending_bytes:
        pending.append(compressor.flush())
        yield Part(b"".join(pending), part_rows, last_id)


def _post_id(row: Any) -> int:
    """The post id of a CSV row: its first field, an integer, never quoted."""
    return int(bytes(row).split(b",", 1)[0])
