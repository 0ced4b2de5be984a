"""Demo traffic for ``nightshift up``: a generated photo uploaded every few seconds."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageChops, ImageDraw, ImageFilter
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from nightshift.common import runtime
from nightshift.common.db.engine import transaction
from nightshift.common.db.models import User
from nightshift.common.outbox import publish_in_transaction
from nightshift.media.models import Media

#: Size of the demo uploads: a modest phone photo.
DEMO_SIZE = (1600, 1200)

#: EXIF orientation tag; every other demo photo is "taken sideways" to show auto-orientation.
ORIENTATION_TAG = 0x0112


def photo_like(width: int, height: int, *, seed: int = 0) -> Image.Image:
    """A photo-like RGB image: smooth gradients and shapes under sensor-like noise.

    Flat synthetic images compress and decode unrealistically fast; the noise
    gives the file the entropy (and so the size and decode cost) of a photo.
    """
    rng = random.Random(seed)
    small = (max(1, width // 8), max(1, height // 8))
    base = Image.new("RGB", small)
    draw = ImageDraw.Draw(base)
    for y in range(small[1]):
        t = y / small[1]
        draw.line([(0, y), (small[0], y)], fill=(int(90 + 120 * t), int(140 + 60 * t), int(220 - 150 * t)))
    for _ in range(60):
        x, y = rng.randrange(small[0]), rng.randrange(small[1])
        radius = rng.randrange(max(1, small[0] // 40), max(2, small[0] // 6))
        colour = (rng.randrange(30, 230), rng.randrange(30, 230), rng.randrange(30, 230))
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
    base = base.filter(ImageFilter.GaussianBlur(3)).resize((width, height), Image.Resampling.BICUBIC)
    noise = Image.effect_noise((width, height), 18).convert("RGB")
    return ImageChops.add(base, noise, scale=1.0, offset=-128)


def photo_jpeg(width: int, height: int, *, seed: int = 0, orientation: int = 1, quality: int = 90) -> bytes:
    """:func:`photo_like` as a JPEG, with an EXIF orientation when it is not 1."""
    image = photo_like(width, height, seed=seed)
    exif = Image.Exif()
    if orientation != 1:
        exif[ORIENTATION_TAG] = orientation
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, exif=exif.tobytes())
    return buffer.getvalue()


def tick(sessions: sessionmaker[Session]) -> int:
    """Upload one generated photo: store it, insert its media row, publish ``media.uploaded``.

    Returns:
      The new media id; its variants appear under ``media/<id>/`` in storage.
    """
    storage = runtime.storage()
    seed = random.randrange(1_000_000)
    data = photo_jpeg(*DEMO_SIZE, seed=seed, orientation=6 if seed % 2 else 1)
    with transaction(sessions) as session:
        owner_id = session.scalar(select(func.max(User.id))) or 1
        media = Media(owner_id=owner_id, original_key="")
        session.add(media)
        session.flush()
        media.original_key = f"uploads/{media.id}/original.jpg"
        storage.put(media.original_key, data, content_type="image/jpeg")
        publish_in_transaction(session, "media.uploaded", {"media_id": media.id}, aggregate_id=f"media:{media.id}")
    print(f"demo        media {media.id} uploaded -> variants on their way to media/{media.id}/")
    return media.id
