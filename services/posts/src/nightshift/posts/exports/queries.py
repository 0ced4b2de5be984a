"""What each kind of export selects: its columns, its rows, in post id order.

Every export is ordered by post id and filtered ``p.id > %(after)s AND p.id <=
%(upto)s``, so one that stopped after a part resumes from that part's last id. The
bounds are the first and last post ids of the export, taken when it starts: they
fix which posts it holds across a resume, and they let PostgreSQL read a date range
through the primary key's index in id order instead of sorting the range (posts'
ids grow with their time, so the id range is close to the date range). Placeholders are
psycopg's: the queries run on the raw connection (``COPY`` takes no server-side
parameters; psycopg merges them client-side).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from nightshift.common.contracts.posts import ExportRequest

#: How each column is written to a spreadsheet.
CellKind = Literal["int", "float", "text", "timestamp", "date"]


@dataclass(frozen=True)
class ExportQuery:
    """The rows of one export: ``select`` with ``params`` (plus ``after``), one column per ``columns`` entry."""

    columns: tuple[tuple[str, CellKind], ...]
    source: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def header(self) -> list[str]:
        return [name for name, _ in self.columns]

    def select(self) -> str:
        """The rows with post ids in ``(%(after)s, %(upto)s]``, in post id order (the first column is the post id)."""
        return f"{self.source} AND p.id > %(after)s AND p.id <= %(upto)s ORDER BY p.id"

    def bounds(self) -> str:
        """How many rows the export has in all, and its first and last post ids."""
        return f"SELECT count(*), min(post_id), max(post_id) FROM ({self.source}) rows"  # noqa: S608


#: Columns of a post as its author sees it.
_POST = "p.id AS post_id, p.created_at, p.updated_at, p.language, p.body"


def export_query(request: ExportRequest, *, timezone: str) -> ExportQuery:
    """The query of *request*, its dates taken as local days in *timezone*."""
    params: dict[str, Any] = {"requester": request.requester_id}
    where = "TRUE"
    if request.since is not None and request.until is not None:
        zone = ZoneInfo(timezone)
        params["start"] = dt.datetime.combine(request.since, dt.time(), zone)
        params["end"] = dt.datetime.combine(request.until + dt.timedelta(days=1), dt.time(), zone)
        where = "p.created_at >= %(start)s AND p.created_at < %(end)s"
    if request.what == "own_posts":
        return ExportQuery(
            (
                ("post_id", "int"),
                ("created_at", "timestamp"),
                ("updated_at", "timestamp"),
                ("language", "text"),
                ("body", "text"),
            ),
            f"SELECT {_POST} FROM posts p WHERE p.author_id = %(requester)s AND {where}",  # noqa: S608
            params,
        )
    if request.what == "author_analytics":
        return ExportQuery(
            (
                ("post_id", "int"),
                ("created_at", "timestamp"),
                ("likes", "int"),
                ("comments", "int"),
                ("shares", "int"),
                ("score", "float"),
                ("score_as_of", "date"),
            ),
            "SELECT p.id AS post_id, p.created_at, coalesce(e.likes, 0) AS likes, "  # noqa: S608
            "coalesce(e.comments, 0) AS comments, coalesce(e.shares, 0) AS shares, e.score, e.as_of AS score_as_of "
            "FROM posts p LEFT JOIN post_engagement e ON e.post_id = p.id "
            f"WHERE p.author_id = %(requester)s AND {where}",
            params,
        )
    return ExportQuery(
        (
            ("post_id", "int"),
            ("author_id", "int"),
            ("created_at", "timestamp"),
            ("updated_at", "timestamp"),
            ("language", "text"),
            ("body", "text"),
        ),
        "SELECT p.id AS post_id, p.author_id, p.created_at, p.updated_at, p.language, p.body "  # noqa: S608
        f"FROM posts p WHERE {where}",
        params,
    )
