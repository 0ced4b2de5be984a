"""The storage interface every backend implements."""

from __future__ import annotations

import abc
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

#: Keys are relative, slash-separated paths of safe characters: no ``..``, no leading ``/``.
_KEY = re.compile(r"^(?!/)(?!.*//)[A-Za-z0-9._\-/]{1,1024}(?<!/)$")

#: Most parts an upload may have (S3's limit).
MAX_PARTS = 10_000

#: Longest life of a download link (S3's presigned URLs cannot outlive seven days).
MAX_LINK_LIFETIME = dt.timedelta(days=7)


def validate_key(key: str) -> str:
    """Return *key* if it is a safe object key.

    Raises:
      ValueError: Naming the key, when it is empty, absolute, or climbs with ``..``.
    """
    if not _KEY.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid storage key {key!r}: use a relative path of letters, digits, '._-/'")
    return key


def validate_lifetime(expires_in: dt.timedelta) -> int:
    """The link lifetime in whole seconds.

    Raises:
      ValueError: When it is not positive or longer than :data:`MAX_LINK_LIFETIME`.
    """
    seconds = int(expires_in.total_seconds())
    if not 0 < seconds <= MAX_LINK_LIFETIME.total_seconds():
        raise ValueError(f"link lifetime must be between 1 s and {MAX_LINK_LIFETIME}, got {expires_in}")
    return seconds


class Storage(abc.ABC):
    """Objects addressed by key. Every method is safe to call from several threads.

    A missing object raises :class:`~nightshift.common.errors.NotFound` from
    :meth:`get` and :meth:`size`; :meth:`delete` of a missing object does nothing,
    so deletions are idempotent.
    """

    @abc.abstractmethod
    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Store *data* under *key*, replacing what was there (readers never see half an object)."""

    @abc.abstractmethod
    def put_stream(self, key: str, stream: IO[bytes], *, content_type: str = "application/octet-stream") -> None:
        """Store what *stream* holds from its position to its end under *key*, in bounded memory.

        For objects too large to hold in memory (an archive spooled to a temporary
        file): it is copied in chunks, and readers never see half an object.
        """

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The bytes stored under *key*.

        Raises:
          NotFound: There is no such object.
        """

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """The size in bytes of the object under *key*, without reading it.

        Raises:
          NotFound: There is no such object.
        """

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under *key*."""

    @abc.abstractmethod
    def delete_many(self, keys: Iterable[str]) -> None:
        """Remove the objects under *keys*; missing ones are ignored."""

    def delete(self, key: str) -> None:
        """Remove the object under *key*, if any."""
        self.delete_many([key])

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Every key starting with *prefix*, in no particular order."""

    @abc.abstractmethod
    def link(self, key: str, *, expires_in: dt.timedelta, filename: str | None = None) -> str:
        """A URL that downloads *key* until *expires_in* from now, then stops working.

        Parameters:
          filename: Offered to the browser as the download's name.

        Raises:
          ValueError: When the lifetime is not positive or longer than seven days.
        """

    # --- uploads in parts: a large object written as it is produced -------------

    @abc.abstractmethod
    def start_upload(self, key: str, *, content_type: str = "application/octet-stream") -> str:
        """Begin writing *key* in parts; return the upload's id (keep it to resume after a crash).

        Nothing is visible under *key* until :meth:`complete_upload`.
        """

    @abc.abstractmethod
    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        """Store part *number* (1, 2, …) of an upload; return its tag for :meth:`complete_upload`.

        Parts are sent in order. Sending part *n* again replaces it and forgets the
        parts after it, so a writer that crashed resumes from its last recorded part.
        On S3 every part but the last must be at least 5 MiB.

        Raises:
          ValueError: When *number* is out of order or above :data:`MAX_PARTS`.
          NotFound: When the upload does not exist (completed or aborted).
        """

    @abc.abstractmethod
    def complete_upload(self, key: str, upload_id: str, tags: Sequence[str]) -> None:
        """Make the parts whose *tags* are given, in order, the object under *key*.

        Raises:
          NotFound: When the upload does not exist.
          ValueError: When the tags do not match the parts stored.
        """

    @abc.abstractmethod
    def abort_upload(self, key: str, upload_id: str) -> None:
        """Drop an unfinished upload and its parts; an unknown upload is ignored."""


def check_part_number(number: int) -> int:
    """*number* if it is a valid part number.

    Raises:
      ValueError: When it is not between 1 and :data:`MAX_PARTS`.
    """
    if not 1 <= number <= MAX_PARTS:
        raise ValueError(f"part number must be between 1 and {MAX_PARTS}, got {number}")
    return number
