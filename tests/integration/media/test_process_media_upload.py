"""process_media_upload end to end: real Redis, PostgreSQL and worker, on both storage backends."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nightshift.common.contracts.media import PROCESS_MEDIA_UPLOAD
from nightshift.common.db.models import OutboxEvent, TaskAudit
from nightshift.common.dead_letters import list_dead_letters
from nightshift.common.redis_broker import NightshiftRedisBroker
from nightshift.media.images import PNG_MAX_METADATA_CHUNK
from nightshift.media.models import FAILED, PROCESSED
from tests.integration.media.conftest import TEST_MAX_BYTES, Uploads, wait_for_jobs
from tests.unit.media.images import (
    BLUE,
    RED,
    animated_gif,
    assert_no_metadata,
    close_to,
    encode,
    halves,
    jpeg_with_metadata,
    open_output,
    png_bomb,
    png_with_icc_chunk,
)

pytestmark = pytest.mark.integration


def _outbox(engine: Engine, name: str) -> list[dict[str, object]]:
    with Session(engine) as session:
        rows = session.scalars(select(OutboxEvent).where(OutboxEvent.event_name == name).order_by(OutboxEvent.id)).all()
    return [row.payload for row in rows]


def test_uploads_become_upright_stripped_variants(
    uploads: Uploads, broker: NightshiftRedisBroker, media_worker: object, clean_db: Engine
) -> None:
    sideways = uploads.add(jpeg_with_metadata(1600, 1200, orientation=6))
    wide_png = uploads.add(encode(halves(2400, 1800), "PNG"), name="wide.png")
    webp = uploads.add(encode(halves(640, 480), "WEBP"), name="small.webp")
    gif = uploads.add(animated_gif(), name="anim.jpg")  # the name lies; the bytes decide
    jobs = wait_for_jobs(broker, clean_db, [uploads.publish(m) for m in (sideways, wide_png, webp, gif)])
    assert {record.status for record in jobs.values()} == {"done"}

    expected = {
        sideways: ("jpeg", (1200, 1600), {"large": (1080, 1440), "small": (480, 640), "thumb": (150, 150)}),
        wide_png: ("png", (2400, 1800), {"large": (1080, 810), "small": (480, 360), "thumb": (150, 150)}),
        webp: ("webp", (640, 480), {"large": (640, 480), "small": (480, 360), "thumb": (150, 150)}),
        gif: ("gif", (300, 200), {"large": (300, 200), "small": (300, 200), "thumb": (150, 150)}),
    }
    for media_id, (source_type, size, variant_sizes) in expected.items():
        media = uploads.row(media_id)
        assert media is not None
        assert (media.status, media.source_type, (media.width, media.height)) == (PROCESSED, source_type, size)
        assert media.bytes == uploads.storage.size(media.original_key)
        assert sorted(media.variants) == ["large", "small", "thumb"]
        for name, entry in media.variants.items():
            assert (entry["width"], entry["height"]) == variant_sizes[name]
            for kind in ("webp", "jpeg"):
                data = uploads.storage.get(entry[kind]["key"])
                assert entry[kind]["key"] == f"media/{media_id}/{name}.{'jpg' if kind == 'jpeg' else kind}"
                assert entry[kind]["bytes"] == len(data)
                image = open_output(data)
                assert (image.format, image.size) == (kind.upper(), variant_sizes[name])
                assert_no_metadata(image)

    # EXIF orientation 6: the red left half of the stored pixels is now the top.
    large = open_output(uploads.storage.get(f"media/{sideways}/large.jpg"))
    assert close_to(large.getpixel((540, 5)), RED)
    assert close_to(large.getpixel((540, 1430)), BLUE)
    assert len(_outbox(clean_db, "media.processed")) == 4


def test_processing_again_reuses_the_same_keys(
    uploads: Uploads, broker: NightshiftRedisBroker, media_worker: object, clean_db: Engine
) -> None:
    media_id = uploads.add(jpeg_with_metadata(800, 600, orientation=1))
    wait_for_jobs(broker, clean_db, [uploads.publish(media_id)])
    first = uploads.row(media_id)
    jobs = wait_for_jobs(broker, clean_db, [uploads.publish(media_id), uploads.publish(media_id)])
    again = uploads.row(media_id)

    assert {record.status for record in jobs.values()} == {"done"}
    assert first is not None and again is not None
    assert first.variants == again.variants
    assert sorted(uploads.storage.list(f"media/{media_id}/")) == [
        f"media/{media_id}/{name}.{ext}" for name in ("large", "small", "thumb") for ext in ("jpg", "webp")
    ]
    assert _outbox(clean_db, "media.processed") == [
        {"media_id": media_id, "width": 800, "height": 600, "variants": ["large", "small", "thumb"]}
    ]


def test_bad_uploads_fail_once_with_a_reason_and_the_worker_goes_on(
    uploads: Uploads, broker: NightshiftRedisBroker, media_worker: object, clean_db: Engine
) -> None:
    photo = encode(halves(800, 600), "JPEG", quality=90)
    bad = {
        "unsupported_type": uploads.add(b"Dear diary, this is not a photo.\n" * 40, name="photo.jpg"),
        "corrupt": uploads.add(photo[: len(photo) // 2], name="truncated.jpg"),
        "too_many_pixels": uploads.add(png_bomb(), name="bomb.png"),
        "too_large": uploads.add(b"\xff\xd8\xff\xe0" + os.urandom(TEST_MAX_BYTES), name="huge.jpg"),
    }
    messages = {code: uploads.publish(media_id) for code, media_id in bad.items()}
    good = uploads.add(photo)
    messages["good"] = uploads.publish(good)
    jobs = wait_for_jobs(broker, clean_db, list(messages.values()))

    reasons = {
        "unsupported_type": "not a JPEG, PNG, WebP or GIF",
        "corrupt": "cannot be decoded",
        "too_many_pixels": "400.0 MP, over the",
        "too_large": f"over the {TEST_MAX_BYTES} byte limit",
    }
    for code, media_id in bad.items():
        media = uploads.row(media_id)
        record = jobs[messages[code]]
        assert media is not None
        assert (media.status, media.failure_code) == (FAILED, code)
        assert reasons[code] in (media.failure_reason or "")
        assert (record.status, record.attempts) == ("dead", 1)
        assert record.last_error is not None and record.last_error.startswith(f"MediaRejected: {code}:")
        assert media.variants == {}
    assert uploads.row(good) is not None and uploads.row(good).status == PROCESSED  # type: ignore[union-attr]
    assert jobs[messages["good"]].status == "done"

    with Session(clean_db) as session:
        attempts = session.scalars(select(TaskAudit.message_id)).all()
    assert sorted(str(m) for m in attempts) == sorted(messages.values())  # one attempt each, no retries
    assert sorted((p["media_id"], p["reason"]) for p in _outbox(clean_db, "media.failed")) == sorted(
        (media_id, code) for code, media_id in bad.items()
    )
    dead = list_dead_letters(broker, PROCESS_MEDIA_UPLOAD.queue_name)
    assert sorted(letter.reason.split(":")[0] for letter in dead) == sorted(bad)
    assert {letter.error_type for letter in dead} == {"MediaRejected"}


def test_a_large_jpeg_is_recorded_with_its_original_dimensions(
    uploads: Uploads, broker: NightshiftRedisBroker, media_worker: object, clean_db: Engine
) -> None:
    # 4000x3000: decoded at half scale (2000x1500), recorded at full size, upright.
    upright = uploads.add(encode(halves(4000, 3000), "JPEG", quality=90))
    sideways = uploads.add(jpeg_with_metadata(4000, 3000, orientation=6))
    jobs = wait_for_jobs(broker, clean_db, [uploads.publish(upright), uploads.publish(sideways)])
    assert {record.status for record in jobs.values()} == {"done"}

    expected = {
        upright: ((4000, 3000), {"large": (1080, 810), "small": (480, 360), "thumb": (150, 150)}),
        sideways: ((3000, 4000), {"large": (1080, 1440), "small": (480, 640), "thumb": (150, 150)}),
    }
    for media_id, (size, variant_sizes) in expected.items():
        media = uploads.row(media_id)
        assert media is not None
        assert (media.status, (media.width, media.height)) == (PROCESSED, size)
        for name, entry in media.variants.items():
            assert (entry["width"], entry["height"]) == variant_sizes[name]
            for kind in ("webp", "jpeg"):
                assert open_output(uploads.storage.get(entry[kind]["key"])).size == variant_sizes[name]
    assert sorted((p["media_id"], p["width"], p["height"]) for p in _outbox(clean_db, "media.processed")) == [
        (upright, 4000, 3000),
        (sideways, 3000, 4000),
    ]


def test_a_png_with_an_oversized_metadata_chunk_fails_before_it_is_decoded(
    uploads: Uploads, broker: NightshiftRedisBroker, media_worker: object, clean_db: Engine
) -> None:
    data = png_with_icc_chunk(PNG_MAX_METADATA_CHUNK + 150_000)
    assert len(data) <= TEST_MAX_BYTES  # the file itself is allowed: the chunk is refused
    media_id = uploads.add(data, name="huge-profile.png")
    message_id = uploads.publish(media_id)
    record = wait_for_jobs(broker, clean_db, [message_id])[message_id]

    media = uploads.row(media_id)
    assert media is not None
    assert (media.status, media.failure_code, media.variants) == (FAILED, "too_large", {})
    assert (media.failure_reason or "").startswith("PNG iCCP chunk of ")
    assert (media.failure_reason or "").endswith("for metadata (checked before decoding)")
    assert (record.status, record.attempts) == ("dead", 1)
    assert _outbox(clean_db, "media.failed") == [{"media_id": media_id, "reason": "too_large"}]
    [letter] = list_dead_letters(broker, PROCESS_MEDIA_UPLOAD.queue_name)
    assert (letter.error_type, letter.reason.split(":")[0]) == ("MediaRejected", "too_large")
