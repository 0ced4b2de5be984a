"""Turning an uploaded image into its variants, quickly and safely, with Pillow.

Safety: the type comes from the bytes, the pixel count is checked from the
header and a PNG's metadata chunks from their length fields before anything is
decoded or inflated, and every decoder error becomes a
:class:`~nightshift.media.errors.MediaRejected`. Speed: a JPEG is decoded
straight at the smallest scale the largest variant needs (libjpeg's DCT
scaling through ``Image.draft``; the dimensions reported stay the original's),
and each smaller variant is resized from the previous one rather than from the
original. No metadata (EXIF, GPS, XMP, ICC, comments) reaches any output: the
orientation is applied to the pixels, colours are converted to sRGB, and the
rest is dropped.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
from dataclasses import dataclass
from typing import Literal

from PIL import Image, ImageCms, PngImagePlugin

from nightshift.media.errors import MediaRejected

#: Output formats: WebP first, progressive JPEG as the fallback.
OutputFormat = Literal["webp", "jpeg"]

#: Input types accepted, by their Pillow format name.
PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}

#: The EXIF tag holding the orientation.
ORIENTATION_TAG = 0x0112

#: EXIF orientation → the transposition that makes the pixels upright.
TRANSPOSITIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

#: EXIF orientations whose transposition swaps width and height.
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})

#: Errors Pillow raises on corrupt, truncated or hostile files.
DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, Image.DecompressionBombError)

#: PNG chunks of pixel data, which Pillow streams to the decoder.
PNG_PIXEL_CHUNKS = frozenset({b"IDAT", b"fdAT"})

#: Largest other PNG chunk (ICC profile, text, EXIF, unknown). Pillow reads each of them
#: whole, copying it three times before inflating it, and refuses to inflate beyond this
#: (``PngImagePlugin.MAX_TEXT_CHUNK``) anyway: a bigger chunk is refused from its length
#: field instead, so a 20 MiB ICC profile costs no memory (it cost 60 MB before failing).
PNG_MAX_METADATA_CHUNK = PngImagePlugin.MAX_TEXT_CHUNK

#: Sources larger than this are resized with bicubic rather than Lanczos (see :func:`_resize`).
LANCZOS_MAX_PIXELS = 1_500_000

_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True)
class VariantSpec:
    """One size the app displays.

    Parameters:
      name: Used in storage keys and on the media row.
      width: Target width (never exceeded, never upscaled to).
      square: Centre-crop to a square of side *width*.
    """

    name: str
    width: int
    square: bool = False


#: The variants, largest first: each is resized from the one before.
VARIANTS = (VariantSpec("large", 1080), VariantSpec("small", 480), VariantSpec("thumb", 150, square=True))


@dataclass(frozen=True)
class Quality:
    """Encoder settings.

    Parameters:
      jpeg: JPEG quality (1-95); 82 is visually lossless for photos at these sizes.
      webp: WebP quality (1-100).
      webp_method: WebP effort (0 fastest - 6 smallest). 2 encodes in half the time of
        libwebp's default 4 with the same quality setting; on 12 MP photos the large variant
        is the same size and the small ones 4-8 % larger (see docs/benchmarks.md).
    """

    jpeg: int = 82
    webp: int = 80
    webp_method: int = 2


@dataclass(frozen=True)
class EncodedVariant:
    """One output file."""

    name: str
    format: OutputFormat
    width: int
    height: int
    data: bytes

    @property
    def extension(self) -> str:
        return "webp" if self.format == "webp" else "jpg"

    @property
    def content_type(self) -> str:
        return f"image/{self.format}"


@dataclass(frozen=True)
class Rendering:
    """The outcome of :func:`render_variants`."""

    source_type: str
    width: int
    height: int
    variants: tuple[EncodedVariant, ...]


def detect_type(data: bytes) -> str:
    """The image type of *data* from its first bytes: ``jpeg``, ``png``, ``webp`` or ``gif``.

    Raises:
      MediaRejected: ``unsupported_type`` when the bytes are none of these.
    """
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    raise MediaRejected("unsupported_type", "the bytes are not a JPEG, PNG, WebP or GIF image")


def target_size(width: int, height: int, spec: VariantSpec) -> tuple[int, int]:
    """The size of variant *spec* of a *width* x *height* image (never larger than it)."""
    if spec.square:
        side = min(spec.width, width, height)
        return side, side
    new_width = min(spec.width, width)
    return new_width, max(1, round(height * new_width / width))


def render_variants(data: bytes, *, max_pixels: int, quality: Quality | None = None) -> Rendering:
    """Validate *data* and produce every variant in WebP and progressive JPEG.

    Parameters:
      data: The uploaded file.
      max_pixels: Images with more pixels are refused before being decoded.
      quality: Encoder settings.

    Returns:
      The source type, the original's upright dimensions and the encoded variants.

    Raises:
      MediaRejected: ``unsupported_type``, ``too_large``, ``too_many_pixels`` or ``corrupt``.
    """
    quality = quality or Quality()
    source_type, upright, resized = resize_variants(data, max_pixels=max_pixels)
    variants = tuple(encoded for name, image in resized for encoded in _encode(name, image, quality))
    return Rendering(source_type, upright[0], upright[1], variants)


def resize_variants(data: bytes, *, max_pixels: int) -> tuple[str, tuple[int, int], list[tuple[str, Image.Image]]]:
    """Validate and decode *data* and resize it to every variant, without encoding.

    Returns:
      The source type, the original's upright size (a JPEG decoded at a reduced scale
      still reports its full size; EXIF orientation 5-8 swaps width and height), and
      each variant's name and pixels (no metadata).

    Raises:
      MediaRejected: ``unsupported_type``, ``too_large``, ``too_many_pixels`` or ``corrupt``.
    """
    source_type = detect_type(data)
    if source_type == "png":
        _refuse_large_png_metadata(data)
    upright, size = _decode_upright(_open(data, source_type, max_pixels), source_type)
    resized = []
    source = upright
    for spec in VARIANTS:
        source = _resize(source, target_size(*size, spec), spec.square)
        resized.append((spec.name, source))
    return source_type, size, resized


def _refuse_large_png_metadata(data: bytes) -> None:
    """Walk the PNG's chunk lengths and refuse a non-pixel chunk too big to read whole.

    Raises:
      MediaRejected: ``too_large``, naming the chunk, before any of it is read or inflated.
    """
    offset = 8  # after the signature
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        if kind not in PNG_PIXEL_CHUNKS and length > PNG_MAX_METADATA_CHUNK:
            name = kind.decode("ascii", "backslashreplace")
            raise MediaRejected(
                "too_large",
                f"PNG {name} chunk of {length} bytes, over the {PNG_MAX_METADATA_CHUNK} byte limit "
                "for metadata (checked before decoding)",
            )
        if kind == b"IEND":
            return
        offset += 12 + length  # length, type, data, CRC


def _open(data: bytes, source_type: str, max_pixels: int) -> Image.Image:
    """Read the header only and refuse what is too big to decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[PILLOW_FORMATS[source_type]])
    except Image.DecompressionBombError as error:
        # Pillow's own guard fired first (its limit is above ours): report ours.
        found = re.search(r"\((\d+) pixels\)", str(error))
        pixels = int(found.group(1)) if found else 0
        raise MediaRejected("too_many_pixels", _pixel_message(pixels, max_pixels)) from None
    except (*DECODER_ERRORS, Image.DecompressionBombWarning) as error:
        raise MediaRejected("corrupt", f"unreadable {source_type.upper()} header ({error})") from None
    width, height = image.size
    if width * height > max_pixels:
        raise MediaRejected("too_many_pixels", f"{width}x{height}: {_pixel_message(width * height, max_pixels)}")
    return image


def _pixel_message(pixels: int, max_pixels: int) -> str:
    return f"{pixels / 1e6:.1f} MP, over the {max_pixels / 1e6:.1f} MP limit (checked before decoding)"


def _decode_upright(image: Image.Image, source_type: str) -> tuple[Image.Image, tuple[int, int]]:
    """Decode (a JPEG at the smallest DCT scale that suffices) and apply orientation and sRGB.

    Returns:
      The upright pixels, and the original's upright size (which the pixels of a
      reduced-scale decode are smaller than).
    """
    try:
        orientation = int(image.getexif().get(ORIENTATION_TAG, 1)) if source_type != "gif" else 1
        transposition = TRANSPOSITIONS.get(orientation)
        width, height = image.size  # the header's: draft() below changes image.size
        swapped = orientation in SWAPPING_ORIENTATIONS
        size = (height, width) if swapped else (width, height)
        if source_type == "jpeg":
            image.draft("RGB", _draft_size(image.size, transposed=swapped))
        image.load()
        icc_profile = image.info.get("icc_profile")
        image = _normalise_mode(image)
    except DECODER_ERRORS as error:
        raise MediaRejected("corrupt", f"the {source_type.upper()} data cannot be decoded ({error})") from None
    if icc_profile:
        image = _to_srgb(image, icc_profile)
    if transposition is not None:
        image = image.transpose(transposition)
    image.info = {}  # EXIF, XMP, ICC and comments stop here
    return image, size


def _draft_size(size: tuple[int, int], *, transposed: bool) -> tuple[int, int]:
    """The decode size the largest variant needs, in the file's own (unrotated) orientation."""
    width, height = size
    upright_width = height if transposed else width
    scale = min(1.0, VARIANTS[0].width / upright_width)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _normalise_mode(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency (palette, grey, CMYK, 16-bit… converted)."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    wanted = "RGBA" if has_alpha else "RGB"
    if image.mode == wanted:
        return image
    if image.mode == "P" and has_alpha:
        return image.convert("RGBA")
    if image.mode.startswith("I;16") or image.mode == "I":
        image = image.point(lambda value: value / 256).convert("L")
    return image.convert(wanted)


def _to_srgb(image: Image.Image, icc_profile: bytes) -> Image.Image:
    """Convert from the embedded colour profile to sRGB, unless it already is sRGB."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if "srgb" in (ImageCms.getProfileDescription(profile) or "").lower().replace(" ", ""):
            return image
        converted = ImageCms.profileToProfile(image, profile, _SRGB, outputMode=image.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # an unusable profile: keep the pixels as they are
    return converted if converted is not None else image


def _resize(source: Image.Image, size: tuple[int, int], square: bool) -> Image.Image:
    """Resize *source* to *size*; a square is centre-cropped in the same pass.

    Beyond a 2x reduction Pillow first shrinks by whole factors with a box
    filter (``reducing_gap``), which is much cheaper and indistinguishable. The
    first resize after a JPEG's DCT-scaled decode is under 2x, where bicubic is
    within 0.5 dB PSNR of Lanczos at 40 % of its cost; later, smaller ones use Lanczos.
    """
    box = None
    if square:
        side = min(source.size)
        left, top = (source.width - side) // 2, (source.height - side) // 2
        box = (left, top, left + side, top + side)
        if (side, side) == size:
            return source.crop(box)
    elif source.size == size:
        return source
    large = source.width * source.height > LANCZOS_MAX_PIXELS
    resample = Image.Resampling.BICUBIC if large else Image.Resampling.LANCZOS
    return source.resize(size, resample, box=box, reducing_gap=2.0)


def _encode(name: str, image: Image.Image, quality: Quality) -> list[EncodedVariant]:
    webp = io.BytesIO()
    image.save(webp, "WEBP", quality=quality.webp, method=quality.webp_method)
    opaque = image if image.mode == "RGB" else _flatten(image)
    jpeg = io.BytesIO()
    opaque.save(jpeg, "JPEG", quality=quality.jpeg, progressive=True, optimize=True)
    return [
        EncodedVariant(name, "webp", image.width, image.height, webp.getvalue()),
        EncodedVariant(name, "jpeg", image.width, image.height, jpeg.getvalue()),
    ]


def _flatten(image: Image.Image) -> Image.Image:
    """Transparent pixels over white, for JPEG."""
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background
