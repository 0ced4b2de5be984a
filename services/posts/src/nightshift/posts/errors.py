"""Why the posts service refuses work: permanent errors, dead-lettered with their reason."""

from __future__ import annotations

from nightshift.common.errors import PermanentError, TransientError


class PostRejected(PermanentError):
    """A post cannot be indexed as it is (its body is over the size limit); retrying cannot help."""


class ExportRefused(PermanentError):
    """An export cannot be made as asked (unknown requester or format, range over the maximum)."""


class ExportBusy(TransientError):
    """Another delivery of the same export holds its lock; retried later."""
