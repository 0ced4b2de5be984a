"""The default backend: one ``.eml`` file per email in a local folder a person can open."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from nightshift.notifications.errors import ProviderUnavailable
from nightshift.notifications.mailers.base import Address, Email, Mailer
from nightshift.notifications.mailers.mime import build_mime

#: Characters kept as they are in a file name; anything else becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def outbox_file_name(idempotency_key: str) -> str:
    """The file an email is written to: readable, and the same for the same key.

    A repeated send (a retry after a crash between sending and logging)
    overwrites the file instead of adding a second one.
    """
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:12]
    return f"{_UNSAFE.sub('_', idempotency_key)[:80]}-{digest}.eml"


class OutboxMailer(Mailer):
    """Write each email atomically into *directory* (temporary file, then rename).

    Parameters:
      directory: The outbox folder, created when missing.
      sender: The ``From`` of every email.
    """

    backend = "outbox"
    #: A repeat overwrites the same files, so a larger batch costs nothing in duplicates.
    batch_size = 200
    repeat_is_harmless = True

    def __init__(self, directory: str | Path, *, sender: Address) -> None:
        super().__init__(sender=sender)
        self.directory = Path(directory)

    def send(self, email: Email) -> str:
        """Write *email*; return the file's name.

        Raises:
          ProviderUnavailable: The folder cannot be written (full disk, permissions).
          ProviderRejected: An address is malformed.
        """
        content = build_mime(email, self.sender).as_bytes()
        name = outbox_file_name(email.idempotency_key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # A dot-prefixed temporary name: readers of *.eml never see a half-written file.
            descriptor, temporary = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.directory)
            try:
                with os.fdopen(descriptor, "wb") as file:
                    file.write(content)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, self.directory / name)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as error:
            raise ProviderUnavailable(
                f"outbox folder not writable: {type(error).__name__} ({error.strerror})"
            ) from None
        return name
