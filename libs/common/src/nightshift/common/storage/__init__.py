"""Object storage behind one small interface: a local folder or S3.

``STORAGE_URL`` chooses the backend: ``file:///srv/storage`` (or a relative
``file://var/storage``) keeps objects as files; ``s3://bucket/prefix?endpoint_url=…``
keeps them in S3 or any S3-compatible store through boto3. Both hand out
expiring download links: presigned URLs on S3, HMAC-signed URLs locally.
"""

from __future__ import annotations

from nightshift.common.storage.base import Storage, validate_key
from nightshift.common.storage.factory import open_storage, storage_from_settings

__all__ = ["Storage", "open_storage", "storage_from_settings", "validate_key"]
