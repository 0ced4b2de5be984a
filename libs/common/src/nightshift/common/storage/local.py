"""Objects as files under one folder, with HMAC-signed expiring links."""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

from nightshift.common.errors import NotFound
from nightshift.common.storage.base import Storage, check_part_number, validate_key, validate_lifetime

#: The folder (under the root) where unfinished uploads are appended to.
UPLOADS = ".uploads"

#: Bytes copied at a time by :meth:`LocalStorage.put_stream`.
COPY_CHUNK = 1024 * 1024


class LocalStorage(Storage):
    """Keys are paths relative to *root*; writes are atomic (temporary file, then rename).

    An upload in parts appends each part to one file under ``.uploads/<id>/``
    and records the part's size and digest in a small index beside it; sending a
    part again truncates the file back to where that part starts. Completing
    renames the file into place: the object is never copied, never held in memory.

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
        for directory, folders, files in os.walk(start):
            if Path(directory) == self.root and UPLOADS in folders:
                folders.remove(UPLOADS)
            for name in files:
                if name.endswith(".part") and name.startswith("."):
                    continue
                key = (Path(directory) / name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def _upload_dir(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise ValueError(f"invalid upload id {upload_id!r}")
        return self.root / UPLOADS / upload_id

    def _parts(self, upload_id: str, key: str) -> builtins.list[tuple[int, str]]:
        """(size, tag) of each recorded part, in order.

        Raises:
          NotFound: When the upload does not exist.
        """
        index = self._upload_dir(upload_id) / "parts"
        try:
            lines = index.read_text().split()
        except FileNotFoundError:
            raise NotFound(f"no upload {upload_id!r} of {key!r}") from None
        return [(int(size), tag) for size, _, tag in (line.partition(":") for line in lines)]

    def start_upload(self, key: str, *, content_type: str = "application/octet-stream") -> str:
        validate_key(key)
        upload_id = secrets.token_hex(16)
        folder = self._upload_dir(upload_id)
        folder.mkdir(parents=True)
        (folder / "data").touch()
        (folder / "parts").touch()
        (folder / "key").write_text(key)
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        check_part_number(number)
        parts = self._parts(upload_id, key)
        if number > len(parts) + 1:
            raise ValueError(f"part {number} of {key!r} sent before part {len(parts) + 1}")
        kept = parts[: number - 1]
        offset = sum(size for size, _ in kept)
        tag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        folder = self._upload_dir(upload_id)
        with open(folder / "data", "r+b") as file:
            file.truncate(offset)
            file.seek(offset)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        index = "".join(f"{size}:{t}\n" for size, t in [*kept, (len(data), tag)])
        temporary = folder / "parts.new"
        temporary.write_text(index)
        os.replace(temporary, folder / "parts")
        return tag

    def complete_upload(self, key: str, upload_id: str, tags: Sequence[str]) -> None:
        parts = self._parts(upload_id, key)
        if [tag for _, tag in parts] != list(tags):
            raise ValueError(f"upload {upload_id!r} of {key!r}: the tags do not match the {len(parts)} parts stored")
        folder = self._upload_dir(upload_id)
        with open(folder / "data", "r+b") as file:
            file.truncate(sum(size for size, _ in parts))
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder / "data", target)
        self._remove_upload(folder)

    def abort_upload(self, key: str, upload_id: str) -> None:
        folder = self._upload_dir(upload_id)
        if folder.is_dir():
            for name in ("data", "parts", "parts.new", "key"):
                (folder / name).unlink(missing_ok=True)
            self._remove_upload(folder)

    def _remove_upload(self, folder: Path) -> None:
        for name in ("parts", "parts.new", "key"):
            (folder / name).unlink(missing_ok=True)
        folder.rmdir()

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
