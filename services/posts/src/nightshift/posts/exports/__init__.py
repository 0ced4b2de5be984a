"""Content exports: CSV (gzip) streamed from ``COPY`` in resumable parts, or XLSX, with an expiring link.

:func:`export_content` makes or resumes one export; :func:`purge_expired_exports`
removes them once their link has expired. See ``docs/posts.md``.
"""

from __future__ import annotations

from nightshift.posts.exports.retention import PurgeOutcome, purge_expired_exports
from nightshift.posts.exports.run import FORMATS, ExportLimits, ExportOutcome, export_content

__all__ = ["FORMATS", "ExportLimits", "ExportOutcome", "PurgeOutcome", "export_content", "purge_expired_exports"]
