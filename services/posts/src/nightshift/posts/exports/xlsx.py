"""XLSX exports: XlsxWriter in constant-memory mode, zipped straight into the upload's parts.

Constant-memory mode writes each row out as soon as the next one starts (strings
inline, no shared-string table), so memory stays flat; each sheet's XML waits in a
temporary file until the workbook closes, when the zip is assembled and written
through :class:`PartSink` into the upload, part by part. A sheet holds at most
Excel's 1,048,576 rows (a header and 1,048,575 rows); the next one continues.

Not resumable: the zip is only assembled at the end, from temporary files that do
not survive the worker, so a redelivered XLSX export starts again from zero.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import xlsxwriter

from nightshift.posts.exports.queries import CellKind, ExportQuery

#: Rows fetched per round trip from the server-side cursor.
FETCH_ROWS = 5000
#: Rows between two progress callbacks.
REPORT_EVERY = 10_000


class PartSink:
    """A write-only file that hands its bytes on in parts of at least *part_bytes*.

    Parameters:
      part_bytes: The size a part must reach before it is handed on (the last may be smaller).
      send: Called with each part's bytes.
    """

    def __init__(self, part_bytes: int, send: Callable[[bytes], None]) -> None:
        self.part_bytes = part_bytes
        self.send = send
        self._chunks: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self._size += len(data)
        if self._size >= self.part_bytes:
            self._hand_on()
        return len(data)

    def flush(self) -> None:
        """Nothing to do: parts leave at their size, the last at :meth:`close`."""

    def close(self) -> None:
        """Hand on what is left as the last part."""
        if self._size:
            self._hand_on()

    def _hand_on(self) -> None:
        data = b"".join(self._chunks)
        self._chunks, self._size = [], 0
        self.send(data)


def write_xlsx(
    connection: Any,
    query: ExportQuery,
    sink: PartSink,
    *,
    sheet_rows: int,
    on_rows: Callable[[int], None],
) -> int:
    """Write every row of *query* into a workbook streamed to *sink*; return the row count.

    Parameters:
      connection: A psycopg connection inside a transaction whose time zone is set.
      sheet_rows: Data rows per sheet (at most 1,048,575: Excel's limit less the header).
      on_rows: Called with the rows written so far, every :data:`REPORT_EVERY` rows.
    """
    workbook = xlsxwriter.Workbook(
        sink,
        {"constant_memory": True, "remove_timezone": True, "strings_to_numbers": False, "strings_to_urls": False},
    )
    header = workbook.add_format({"bold": True})
    formats = {
        "timestamp": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"}),
        "date": workbook.add_format({"num_format": "yyyy-mm-dd"}),
    }
    kinds = [kind for _, kind in query.columns]
    rows = 0
    sheet: Any = None
    line = 0
    with connection.cursor(name="nightshift_export_xlsx") as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(query.select(), {**query.params, "after": 0})
        for record in cursor:
            if sheet is None or line > sheet_rows:
                sheet = workbook.add_worksheet(f"Export {len(workbook.worksheets()) + 1}")
                sheet.write_row(0, 0, query.header, header)
                line = 1
            for column, (kind, value) in enumerate(zip(kinds, record, strict=True)):
                if value is not None:
                    _write(sheet, line, column, kind, value, formats)
            line += 1
            rows += 1
            if rows % REPORT_EVERY == 0:
                on_rows(rows)
    if sheet is None:
        workbook.add_worksheet("Export 1").write_row(0, 0, query.header, header)
    workbook.close()
    sink.close()
    return rows


def _write(sheet: Any, row: int, column: int, kind: CellKind, value: Any, formats: dict[str, Any]) -> None:
    if kind == "int" or kind == "float":
        sheet.write_number(row, column, float(value) if isinstance(value, Decimal) else value)
    elif kind == "timestamp":
        sheet.write_datetime(row, column, value, formats["timestamp"])
    elif kind == "date":
        sheet.write_datetime(row, column, dt.datetime.combine(value, dt.time()), formats["date"])
    else:
        sheet.write_string(row, column, value)
