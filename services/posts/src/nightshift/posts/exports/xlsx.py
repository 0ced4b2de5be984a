"""XLSX exports: XlsxWriter in constant-memory mode, zipped straight into the upload's parts.

Constant-memory mode writes each row out as soon as the next one starts (strings
inline, no shared-string table), so memory stays flat; each sheet's XML waits in a
temporary file until the workbook closes, when the zip is assembled and written
through :class:`PartSink` into the upload, part by part. A sheet holds at most
Excel's 1,048,576 rows (a header and 1,048,575 rows); the next one continues.

Cells go through the worksheet's undecorated ``_write_number`` / ``_write_string``
/ ``_write_datetime``: the public methods wrap them with a decorator that parses
"A1" notation on every call and costs as much as the write itself (measured:
about 15,000 against 30,000 rows/s); XlsxWriter is pinned below its next major
version for that reason, and the public methods are used if those ever go.

Not resumable: the zip is only assembled at the end, from temporary files that do
not survive the worker, so a redelivered XLSX export starts again from zero.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
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
    writers: list[Callable[[int, int, Any], Any]] = []
    line = 0
    with connection.cursor(name="nightshift_export_xlsx") as cursor:
        cursor.itersize = FETCH_ROWS
        cursor.execute(query.select(), {**query.params, "after": 0})
        for record in cursor:
            if sheet is None or line > sheet_rows:
                sheet = workbook.add_worksheet(f"Export {len(workbook.worksheets()) + 1}")
                sheet.write_row(0, 0, query.header, header)
                writers = [_writer(sheet, kind, formats) for kind in kinds]
                line = 1
            for column, value in enumerate(record):
                if value is not None:
                    writers[column](line, column, value)
            line += 1
            rows += 1
            if rows % REPORT_EVERY == 0:
                on_rows(rows)
    if sheet is None:
        workbook.add_worksheet("Export 1").write_row(0, 0, query.header, header)
    workbook.close()
    sink.close()
    return rows


def _writer(sheet: Any, kind: CellKind, formats: dict[str, Any]) -> Callable[[int, int, Any], Any]:
    """The fastest way to write a cell of *kind* on *sheet* (see the module's docstring)."""
    number = getattr(sheet, "_write_number", None)
    string = getattr(sheet, "_write_string", None)
    moment = getattr(sheet, "_write_datetime", None)
    if number is None or string is None or moment is None:  # a future XlsxWriter: the public methods
        number, string, moment = sheet.write_number, sheet.write_string, sheet.write_datetime
    if kind == "int":
        return lambda row, column, value: number(row, column, value, None)
    if kind == "float":
        return lambda row, column, value: number(row, column, float(value), None)
    if kind == "timestamp":
        timestamp = formats["timestamp"]
        return lambda row, column, value: moment(row, column, value, timestamp)
    if kind == "date":
        day = formats["date"]
        return lambda row, column, value: moment(row, column, dt.datetime.combine(value, dt.time()), day)
    return lambda row, column, value: string(row, column, value, None)
