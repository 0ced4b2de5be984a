"""Objects in S3 (or any S3-compatible store) through boto3, with presigned links."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from nightshift.common.errors import NotFound
from nightshift.common.storage.base import Storage, check_part_number, validate_key, validate_lifetime

#: S3 deletes at most this many keys per request.
DELETE_BATCH = 1000

#: Streamed uploads go in parts of this size, one part at a time (bounded memory).
MULTIPART_CHUNK = 8 * 1024 * 1024

#: Error codes S3 (and compatible stores) use for a missing object.
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


class S3Storage(Storage):
    """Keys live in *bucket* under *prefix*.

    Parameters:
      bucket: The bucket (it must exist).
      prefix: Prepended to every key, so several environments can share a bucket.
      endpoint_url: An S3-compatible endpoint (MinIO, moto…); None for AWS.
      region_name: The bucket's region.
      client: A ready boto3 client, instead of one built from the other arguments.

    Credentials come from boto3's usual chain (environment, profile, instance role).
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region_name: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region_name,
            config=Config(
                signature_version="s3v4",
                connect_timeout=3,
                read_timeout=30,
                retries={"mode": "standard", "max_attempts": 3},
                s3={"addressing_style": "path"} if endpoint_url else None,
            ),
        )

    def _name(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data, ContentType=content_type)

    def put_stream(self, key: str, stream: IO[bytes], *, content_type: str = "application/octet-stream") -> None:
        self.client.upload_fileobj(
            stream,
            self.bucket,
            self._name(key),
            ExtraArgs={"ContentType": content_type},
            Config=TransferConfig(multipart_chunksize=MULTIPART_CHUNK, max_concurrency=1, use_threads=False),
        )

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as error:
            raise self._translate(error, key) from None
        body: bytes = response["Body"].read()
        return body

    def size(self, key: str) -> int:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as error:
            raise self._translate(error, key) from None
        return int(response["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except NotFound:
            return False
        return True

    def delete_many(self, keys: Iterable[str]) -> None:
        names = [self._name(key) for key in keys]
        for start in range(0, len(names), DELETE_BATCH):
            batch = names[start : start + DELETE_BATCH]
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True}
            )
            errors = [e for e in response.get("Errors", []) if e.get("Code") not in _MISSING]
            if errors:
                first = errors[0]
                raise OSError(f"S3 refused to delete {first.get('Key')!r}: {first.get('Code')} {first.get('Message')}")

    def list(self, prefix: str = "") -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])[len(self.prefix) :]

    def start_upload(self, key: str, *, content_type: str = "application/octet-stream") -> str:
        response = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self._name(key), ContentType=content_type
        )
        return str(response["UploadId"])

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        check_part_number(number)
        try:
            response = self.client.upload_part(
                Bucket=self.bucket, Key=self._name(key), UploadId=upload_id, PartNumber=number, Body=data
            )
        except ClientError as error:
            raise self._translate(error, key) from None
        return str(response["ETag"])

    def complete_upload(self, key: str, upload_id: str, tags: Sequence[str]) -> None:
        parts = [{"PartNumber": number, "ETag": tag} for number, tag in enumerate(tags, 1)]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self._name(key), UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in {"InvalidPart", "InvalidPartOrder"}:
                raise ValueError(f"upload {upload_id!r} of {key!r}: {code}") from None
            raise self._translate(error, key) from None

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._name(key), UploadId=upload_id)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) not in _MISSING:
                raise

    def link(self, key: str, *, expires_in: dt.timedelta, filename: str | None = None) -> str:
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self._name(key)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        url: str = self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=validate_lifetime(expires_in)
        )
        return url

    def _translate(self, error: ClientError, key: str) -> Exception:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _MISSING:
            return NotFound(f"no stored object {key!r} in s3://{self.bucket}/{self.prefix}")
        other: Exception = error
        return other
