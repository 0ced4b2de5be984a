"""The storage interface behaves the same on a local folder and on S3 (moto over HTTP)."""

from __future__ import annotations

import datetime as dt
import os
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from nightshift.common.errors import ConfigurationError, NotFound
from nightshift.common.storage import Storage, open_storage
from nightshift.common.storage.local import LocalStorage
from tests.integration.storage.s3server import new_bucket


def test_put_get_size_list_delete(storage: Storage) -> None:
    storage.put("media/1/original", b"first", content_type="image/jpeg")
    storage.put("media/1/original", b"second version")
    storage.put("media/2/thumb.webp", b"x")

    assert storage.get("media/1/original") == b"second version"
    assert storage.size("media/1/original") == len(b"second version")
    assert storage.exists("media/2/thumb.webp")
    assert sorted(storage.list("media/")) == ["media/1/original", "media/2/thumb.webp"]
    assert sorted(storage.list("media/1/")) == ["media/1/original"]

    storage.delete_many(["media/1/original", "media/1/never-existed"])
    storage.delete("media/2/thumb.webp")
    storage.delete("media/2/thumb.webp")  # idempotent
    assert list(storage.list("media/")) == []
    assert not storage.exists("media/1/original")


def test_put_stream_stores_a_file_larger_than_one_chunk_from_its_position(storage: Storage, tmp_path: Path) -> None:
    # Larger than S3's 8 MB multipart chunk, so a multipart upload of several parts.
    data = os.urandom(9 * 1024 * 1024 + 123)
    with open(tmp_path / "spool", "w+b") as spool:
        spool.write(b"skipped" + data)
        spool.seek(len(b"skipped"))
        storage.put_stream("exports/big.zip", spool, content_type="application/zip")

    assert storage.size("exports/big.zip") == len(data)
    assert storage.get("exports/big.zip") == data
    assert list(storage.list("exports/")) == ["exports/big.zip"]  # no temporary left


def test_missing_objects_raise_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound, match="nope/key"):
        storage.get("nope/key")
    with pytest.raises(NotFound, match="nope/key"):
        storage.size("nope/key")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "trailing/", "sp ace"])
def test_unsafe_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        storage.put(key, b"x")


def test_link_lifetime_is_bounded(storage: Storage) -> None:
    storage.put("a", b"x")
    with pytest.raises(ValueError, match="lifetime"):
        storage.link("a", expires_in=dt.timedelta(0))
    with pytest.raises(ValueError, match="lifetime"):
        storage.link("a", expires_in=dt.timedelta(days=8))


def test_s3_presigned_link_downloads(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = open_storage(f"s3://{new_bucket(s3_endpoint, monkeypatch)}/env-a?endpoint_url={s3_endpoint}")
    storage.put("exports/report.csv.gz", b"payload", content_type="application/gzip")
    url = storage.link("exports/report.csv.gz", expires_in=dt.timedelta(minutes=5), filename="report.csv.gz")
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == b"payload"
        assert "report.csv.gz" in response.headers["Content-Disposition"]
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["300"]
    # moto serves presigned URLs without enforcing their expiry; AWS enforces this field.
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]


def test_local_link_is_signed_and_expires(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}", signing_key="secret", link_base="http://files.test/f")
    assert isinstance(storage, LocalStorage)
    storage.put("exports/7.csv.gz", b"x")
    url = storage.link("exports/7.csv.gz", expires_in=dt.timedelta(minutes=5), filename="7.csv.gz")
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://files.test/f/exports/7.csv.gz"
    expires, signature = int(query["expires"]), query["signature"]

    assert storage.verify_link("exports/7.csv.gz", expires, signature, filename="7.csv.gz")
    assert not storage.verify_link("exports/7.csv.gz", expires, signature, filename="8.csv.gz")
    assert not storage.verify_link("exports/8.csv.gz", expires, signature, filename="7.csv.gz")
    assert not storage.verify_link("exports/7.csv.gz", expires + 1, signature, filename="7.csv.gz")
    assert not storage.verify_link("exports/7.csv.gz", expires, signature, filename="7.csv.gz", now=expires + 1)
    other = open_storage(f"file://{tmp_path}", signing_key="another")
    assert isinstance(other, LocalStorage)
    assert not other.verify_link("exports/7.csv.gz", expires, signature, filename="7.csv.gz")


def test_local_delete_prunes_empty_folders(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path / 'root'}")
    storage.put("media/5/large.webp", b"x")
    storage.delete("media/5/large.webp")
    assert list((tmp_path / "root").iterdir()) == []


def test_s3_prefix_keeps_environments_apart(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = new_bucket(s3_endpoint, monkeypatch)
    first = open_storage(f"s3://{bucket}/one?endpoint_url={s3_endpoint}")
    second = open_storage(f"s3://{bucket}/two?endpoint_url={s3_endpoint}")
    first.put("k", b"1")
    second.put("k", b"2")
    assert (first.get("k"), second.get("k")) == (b"1", b"2")
    assert list(first.list()) == ["k"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://x", "expected a file:// or s3://"),
        ("s3:///no-bucket", "needs a bucket"),
        ("s3://b?colour=red", "unknown options colour"),
        ("file://", "needs a folder"),
    ],
)
def test_bad_storage_urls_name_the_variable(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=f"STORAGE_URL.*{problem}"):
        open_storage(url)


#: S3's smallest part (all but the last).
PART = 5 * 1024 * 1024


def test_an_upload_in_parts_resends_a_part_and_completes(storage: Storage) -> None:
    upload = storage.start_upload("exports/big.csv.gz", content_type="application/gzip")
    first, second, third = b"a" * PART, b"b" * PART, b"c" * 1000
    tags = [storage.upload_part("exports/big.csv.gz", upload, 1, first)]
    tags.append(storage.upload_part("exports/big.csv.gz", upload, 2, b"half-written"))
    storage.upload_part("exports/big.csv.gz", upload, 3, b"lost")
    assert not storage.exists("exports/big.csv.gz")
    # A writer that crashed after recording part 1 sends part 2 again, then the rest.
    tags[1] = storage.upload_part("exports/big.csv.gz", upload, 2, second)
    tags.append(storage.upload_part("exports/big.csv.gz", upload, 3, third))
    storage.complete_upload("exports/big.csv.gz", upload, tags)

    assert storage.size("exports/big.csv.gz") == 2 * PART + 1000
    assert storage.get("exports/big.csv.gz") == first + second + third
    assert list(storage.list("exports/")) == ["exports/big.csv.gz"]


def test_an_aborted_upload_leaves_nothing(storage: Storage) -> None:
    upload = storage.start_upload("exports/dropped.csv.gz")
    storage.upload_part("exports/dropped.csv.gz", upload, 1, b"x" * 100)
    storage.abort_upload("exports/dropped.csv.gz", upload)
    storage.abort_upload("exports/dropped.csv.gz", upload)  # idempotent
    assert list(storage.list("")) == []


def test_local_parts_must_come_in_order(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}", signing_key="k")
    upload = storage.start_upload("exports/x")
    with pytest.raises(ValueError, match="part 2 of 'exports/x' sent before part 1"):
        storage.upload_part("exports/x", upload, 2, b"y")
    with pytest.raises(ValueError, match="part number"):
        storage.upload_part("exports/x", upload, 0, b"y")
    storage.abort_upload("exports/x", upload)
    with pytest.raises(NotFound):  # moto answers 500 here instead of S3's NoSuchUpload: checked locally only
        storage.upload_part("exports/x", upload, 1, b"y")
