"""Job records that outlast the writer's memory while PostgreSQL is down: spilled to disk.

:class:`~nightshift.common.records.RecordWriter` keeps unwritten records in
memory up to ``max_buffered``. Past that, with a :class:`RecordSpill`, the
oldest are appended to a file in a folder of their own (one JSON document per
batch, written to a temporary name and renamed, so a crash leaves whole files
only); once PostgreSQL takes a batch again, the spilled files are written back,
oldest first, and deleted. The upsert keeps the furthest status whatever the
order, so records written late change nothing that happened since. Without a
spill folder the writer applies back-pressure instead: whoever records blocks
until there is room (see ``RecordWriter.job``). Nothing is dropped silently.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from nightshift.common.records import AuditEntry, JobEvent

#: A spill file's name: when, which process, which of its spills.
_SEQUENCE = itertools.count()


class RecordSpill:
    """A folder of spilled record batches.

    Parameters:
      directory: Created if missing; used by this process only (names carry the pid).
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, jobs: list[JobEvent], audit: list[AuditEntry]) -> Path:
        """Append one batch as a new file; return its path.

        Raises:
          OSError: The folder cannot be written (the caller then keeps the records).
        """
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_SEQUENCE):06d}.json"
        path = self.directory / name
        temporary = path.with_suffix(".tmp")
        document = {"jobs": [_plain(event) for event in jobs], "audit": [_plain(entry) for entry in audit]}
        with open(temporary, "w") as file:
            json.dump(document, file)
            file.flush()
            os.fsync(file.fileno())
        temporary.rename(path)
        return path

    def files(self) -> list[Path]:
        """The spilled batches, oldest first."""
        return sorted(self.directory.glob("*.json"))

    def read(self, path: Path) -> tuple[list[JobEvent], list[AuditEntry]]:
        """The records of one spilled batch."""
        document = json.loads(path.read_text())
        jobs = [JobEvent(**_typed(JobEvent, item)) for item in document["jobs"]]
        audit = [AuditEntry(**_typed(AuditEntry, item)) for item in document["audit"]]
        return jobs, audit

    def replay(self, write: Callable[[list[JobEvent], list[AuditEntry]], None]) -> int:
        """Pass every spilled batch to *write*, oldest first, deleting each once written.

        Several processes may share the folder: a batch is first claimed by renaming it
        (one rename wins), and put back if *write* fails.

        Returns:
          How many records were written.

        Raises:
          Exception: Whatever *write* raised; the batch is back in the folder.
        """
        written = 0
        for path in self.files():
            claimed = path.with_suffix(f".claimed-{os.getpid()}")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another process took it
            jobs, audit = self.read(claimed)
            try:
                write(jobs, audit)
            except BaseException:
                claimed.rename(path)
                raise
            claimed.unlink()
            written += len(jobs) + len(audit)
        return written

    def count(self) -> int:
        """How many records wait on disk."""
        return sum(len(jobs) + len(audit) for jobs, audit in map(self.read, self.files()))


def _plain(record: JobEvent | AuditEntry) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, dt.datetime) else value for key, value in vars(record).items()}


def _typed(kind: type[JobEvent] | type[AuditEntry], item: dict[str, Any]) -> dict[str, Any]:
    dates = {f.name for f in fields(kind) if "datetime" in str(f.type)}
    return {
        key: dt.datetime.fromisoformat(value) if key in dates and value is not None else value
        for key, value in item.items()
    }
