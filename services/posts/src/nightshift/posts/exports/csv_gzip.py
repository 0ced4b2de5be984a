"""CSV exports: ``COPY … TO STDOUT`` compressed into gzip parts as the rows arrive.

Each part is a complete gzip member (RFC 1952 allows a file of several; gzip,
zcat and Python read them as one stream), so a part can be uploaded, recorded and,
after a crash, continued from without the compressor's state: the next part is a
new member that starts after the last row of the previous one. Memory holds one
part and two batches of rows at a time, whatever the export's size. zlib releases
the GIL while it compresses, so each batch is compressed in a thread of its own
while the next one is read from ``COPY``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
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
) -> Generator[Part, None, None]:
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
    pending: list[bytes] = []  # compressed since the last cut
    pending_bytes = part_rows = streamed = 0
    unflushed = False  # something was given to the compressor since the last cut
    last_id = after
    header_pending = header
    params = {**query.params, "after": after, "upto": upto}
    # zlib lets go of the GIL while it compresses: batch n is compressed in a thread of
    # its own while this one reads batch n + 1 from COPY. One batch in flight at most.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-gzip") as pool:
        flight: tuple[Future[bytes], int, int] | None = None

        def land() -> None:
            nonlocal flight, pending_bytes, part_rows, streamed, last_id
            if flight is None:
                return
            compressed, rows, batch_last = flight
            flight = None
            pending.append(compressed.result())
            pending_bytes += len(pending[-1])
            part_rows += rows
            streamed += rows
            last_id = batch_last
            on_rows(streamed)

        def launch(batch: list[Any]) -> None:
            nonlocal flight, header_pending, unflushed
            rows = len(batch) - (1 if header_pending else 0)  # the header line is not a row
            header_pending = False
            unflushed = True
            flight = (pool.submit(compressor.compress, b"".join(batch)), rows, _post_id(batch[-1]) if rows else last_id)

        def seal() -> Part:
            """End the gzip member: everything compressed since the last cut is one part."""
            nonlocal compressor, pending, pending_bytes, part_rows, unflushed
            pending.append(compressor.flush())
            part = Part(b"".join(pending), part_rows, last_id)
            compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP)
            pending, pending_bytes, part_rows, unflushed = [], 0, 0, False
            return part

        batch: list[Any] = []
        statement = copy_statement(query, header=header)
        with connection.cursor() as cursor, cursor.copy(statement, params) as copy:
            for row in copy:
                batch.append(row)
                if len(batch) < BATCH_ROWS:
                    continue
                land()
                if pending_bytes >= part_bytes:
                    yield seal()
                launch(batch)
                batch = []
        land()
        if batch and pending_bytes >= part_bytes:
            yield seal()
        if batch:
            launch(batch)
            land()
    if unflushed:
        yield seal()


def _post_id(row: Any) -> int:
    """The post id of a CSV row: its first field, an integer, never quoted."""
    return int(bytes(row).split(b",", 1)[0])
