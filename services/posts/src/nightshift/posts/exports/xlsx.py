"""XLSX exports: XlsxWriter in constant-memory mode, zipped straight into the upload's parts.

Constant-memory mode writes each row out as soon as the next one starts (strings
inline, no shared-string table), so memory stays flat; each sheet's XML waits in a
temporary file until the workbook closes, when the zip is assembled and written
through :class:`PartSink` into the upload, part by part. A sheet holds at most
Excel's 1,048,576 rows (a header and 1,048,575 rows); the next one continues.

Times and dates leave PostgreSQL as Excel serial numbers (days since 1899-12-30, in
UTC), written as numbers with a date format: no Python ``datetime`` is made, by
psycopg or by XlsxWriter, for any cell. Cells go through the worksheet's
undecorated ``_write_number`` / ``_write_string``: the public methods wrap them
with a decorator that parses "A1" notation on every call and costs as much as the
write itself (measured: about 15,000 against 30,000 rows/s); XlsxWriter is pinned
below its next major version for that reason, and the public methods are used if
those ever go.

Not resumable: the zip is only assembled at the end, from temporary files that do
not survive the worker, so a redelivered XLSX export starts again from zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import xlsxwriter

from nightshift.posts.exports.queries import CellKind, ExportQuery

#: Rows fetched per round trip from the server-side cursor.
FETCH_ROWS = 5000
#: Rows between two progress callbacks.
REPORT_EVERY = 10_000
#: 1970-01-01 as an Excel serial day number.
_UNIX_EPOCH_SERIAL = 25569


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


def spreadsheet_select(query: ExportQuery) -> str:
    """*query*'s rows with times and dates as Excel serial numbers, numbers as floats."""
    columns = []
    for name, kind in query.columns:
        if kind == "timestamp":
            columns.append(f"CAST(extract(epoch FROM {name}) AS float8) / 86400.0 + {_UNIX_EPOCH_SERIAL}")
        elif kind == "date":
            columns.append(f"{name} - DATE '1970-01-01' + {_UNIX_EPOCH_SERIAL}")
        elif kind == "float":
            columns.append(f"CAST({name} AS float8)")
        else:
            columns.append(name)
    return f"SELECT {', '.join(columns)} FROM ({query.select()}) rows ORDER BY post_id"  # noqa: S608


def write_xlsx(
    connection: Any,
    query: ExportQuery,
    sink: PartSink,
    *,
    upto: int,
    sheet_rows: int,
    on_rows: Callable[[int], None],
) -> int:
    """Write every row of *query* into a workbook streamed to *sink*; return the row count.

    Parameters:
      connection: A psycopg connection inside a transaction.
      upto: The export's last post id.
      sheet_rows: Data rows per sheet (at most 1,048,575: Excel's limit less the header).
      on_rows: Called with the rows written so far, every :data:`REPORT_EVERY` rows.
    """
    workbook = xlsxwriter.Workbook(
        sink,
        {"constant_memory": True, "strings_to_numbers": False, "strings_to_urls": False},
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
        cursor.execute(spreadsheet_select(query), {**query.params, "after": 0, "upto": upto})
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
    if number is None or string is None:  # a future XlsxWriter: the public methods
        number, string = sheet.write_number, sheet.write_string
    if kind in ("timestamp", "date"):
        shown = formats[kind]
        return lambda row, column, value: number(row, column, value, shown)
    if kind in ("int", "float"):
        return lambda row, column, value: number(row, column, value, None)
    return lambda row, column, value: string(row, column, value, None)
