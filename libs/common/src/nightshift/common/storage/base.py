"""The storage interface every backend implements."""

from __future__ import annotations

import abc
import datetime as dt
import re
from collections.abc import Iterable, Iterator
from typing import IO

#: Keys are relative, slash-separated paths of safe characters: no ``..``, no leading ``/``.
_KEY = re.compile(r"^(?!/)(?!.*//)[A-Za-z0-9._\-/]{1,1024}(?<!/)$")

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
