"""Generated test images: marked so orientation can be checked, and hostile ones."""

from __future__ import annotations

import io
import os
import struct
import zlib

from PIL import Image, ImageCms

#: Colours of the two halves of :func:`halves`.
RED, BLUE = (220, 20, 20), (20, 20, 220)

#: EXIF tags: orientation and the GPS directory.
ORIENTATION, GPS_IFD = 0x0112, 0x8825


def halves(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: where red ends up shows how the image was turned."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image.convert(mode) if mode != "RGB" else image


def encode(image: Image.Image, kind: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def jpeg_with_metadata(width: int, height: int, *, orientation: int = 6) -> bytes:
    """A JPEG carrying an orientation, GPS coordinates, XMP, a comment and an ICC profile."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (48.0, 51.0, 24.0)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(
        halves(width, height),
        "JPEG",
        quality=90,
        exif=exif.tobytes(),
        comment=b"shot at home",
        xmp=b"<x:xmpmeta>where: home</x:xmpmeta>",
        icc_profile=srgb,
    )


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, data and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_icc_chunk(profile_bytes: int) -> bytes:
    """An 800x600 PNG whose ``iCCP`` chunk holds *profile_bytes* of zlib-compressed noise.

    The noise does not compress, so the chunk is about *profile_bytes* long and would
    inflate to as much; it sits after ``IHDR``, where the PNG format puts it.
    """
    png = encode(halves(800, 600), "PNG")
    header_end = 8 + 12 + 13  # signature, then the IHDR chunk
    profile = zlib.compress(os.urandom(profile_bytes), 1)
    return png[:header_end] + png_chunk(b"iCCP", b"huge\x00\x00" + profile) + png[header_end:]


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG of *width* x *height* black pixels that compresses to tens of kilobytes."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def animated_gif() -> bytes:
    """A two-frame GIF: red first, blue second."""
    frames = [Image.new("RGB", (300, 200), RED), Image.new("RGB", (300, 200), BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def open_output(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def close_to(pixel: object, colour: tuple[int, int, int]) -> bool:
    """Whether *pixel* (as ``getpixel`` returns it) is within lossy-compression noise of *colour*."""
    assert isinstance(pixel, tuple)
    return all(abs(a - b) < 40 for a, b in zip(pixel[:3], colour, strict=True))


def assert_no_metadata(image: Image.Image) -> None:
    """No EXIF (so no GPS), XMP, ICC profile or comment survived."""
    assert not image.getexif(), dict(image.getexif())
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment"):
        assert not image.info.get(key), key
