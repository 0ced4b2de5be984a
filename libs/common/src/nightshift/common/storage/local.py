"""Objects as files under one folder, with HMAC-signed expiring links."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

from nightshift.common.errors import NotFound
from nightshift.common.storage.base import Storage, validate_key, validate_lifetime

#: Bytes copied at a time by :meth:`LocalStorage.put_stream`.
COPY_CHUNK = 1024 * 1024


class LocalStorage(Storage):
    """Keys are paths relative to *root*; writes are atomic (temporary file, then rename).

    Parameters:
      root: The folder holding the objects (created if missing).
      signing_key: Secret the links are signed with; whoever serves the files
        checks them with :meth:`verify_link` and the same secret.
      link_base: Prefix of the links, e.g. ``http://localhost:8100/files``; the
        default makes them site-relative paths (``/files/<key>?…``).
    """

    def __init__(self, root: str | Path, *, signing_key: bytes, link_base: str = "/files") -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.signing_key = signing_key
        self.link_base = link_base.rstrip("/")

    def path(self, key: str) -> Path:
        """The file that holds *key*."""
        return self.root / validate_key(key)

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        with self._replacing(key) as file:
            file.write(data)

    def put_stream(self, key: str, stream: IO[bytes], *, content_type: str = "application/octet-stream") -> None:
        with self._replacing(key) as file:
            shutil.copyfileobj(stream, file, COPY_CHUNK)

    @contextlib.contextmanager
    def _replacing(self, key: str) -> Iterator[IO[bytes]]:
        """A temporary file beside *key*'s that replaces it once written (removed on error)."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as file:
                yield file
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"no stored object {key!r}") from None

    def size(self, key: str) -> int:
        target = self.path(key)
        if not target.is_file():
            raise NotFound(f"no stored object {key!r}")
        return target.stat().st_size

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete_many(self, keys: Iterable[str]) -> None:
        for key in keys:
            target = self.path(key)
            target.unlink(missing_ok=True)
            self._prune(target.parent)

    def _prune(self, folder: Path) -> None:
        """Remove *folder* and its parents up to the root while they are empty."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def list(self, prefix: str = "") -> Iterator[str]:
        folder = prefix.rpartition("/")[0]
        start = self.path(folder) if folder else self.root  # walk only below the prefix's folder
        for directory, _, files in os.walk(start):
            for name in files:
                if name.endswith(".part") and name.startswith("."):
                    continue
                key = (Path(directory) / name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def link(self, key: str, *, expires_in: dt.timedelta, filename: str | None = None) -> str:
        validate_key(key)
        expires = int(time.time()) + validate_lifetime(expires_in)
        query = {"expires": str(expires), "signature": self._sign(key, expires, filename)}
        if filename:
            query["filename"] = filename
        return f"{self.link_base}/{quote(key)}?{urlencode(query)}"

    def verify_link(
        self, key: str, expires: int, signature: str, *, filename: str | None = None, now: float | None = None
    ) -> bool:
        """Whether a link's parameters were signed here and have not expired."""
        if (time.time() if now is None else now) > expires:
            return False
        return hmac.compare_digest(self._sign(key, expires, filename), signature)

    def _sign(self, key: str, expires: int, filename: str | None) -> str:
        message = f"{key}\n{expires}\n{filename or ''}".encode()
        return hmac.new(self.signing_key, message, hashlib.sha256).hexdigest()
