"""The image pipeline: type from bytes, limits before decoding, orientation, stripping, sizes."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms

from nightshift.media.errors import MediaRejected
from nightshift.media.images import PNG_MAX_METADATA_CHUNK, VARIANTS, detect_type, render_variants, target_size
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

MAX_PIXELS = 50_000_000


def test_type_comes_from_the_bytes() -> None:
    assert detect_type(encode(halves(10, 10), "PNG")) == "png"
    assert detect_type(encode(halves(10, 10), "JPEG")) == "jpeg"
    assert detect_type(encode(halves(10, 10), "WEBP")) == "webp"
    assert detect_type(encode(halves(10, 10), "GIF")) == "gif"
    for other in (b"hello world", encode(halves(10, 10), "BMP"), encode(halves(10, 10), "TIFF"), b""):
        with pytest.raises(MediaRejected) as refused:
            detect_type(other)
        assert refused.value.code == "unsupported_type"


def test_target_sizes_never_upscale() -> None:
    large, small, thumb = VARIANTS
    assert target_size(4000, 3000, large) == (1080, 810)
    assert target_size(4000, 3000, small) == (480, 360)
    assert target_size(4000, 3000, thumb) == (150, 150)
    assert target_size(600, 900, large) == (600, 900)
    assert target_size(100, 60, thumb) == (60, 60)


def test_orientation_6_is_applied_and_all_metadata_stripped() -> None:
    rendering = render_variants(jpeg_with_metadata(1600, 1200, orientation=6), max_pixels=MAX_PIXELS)

    assert (rendering.source_type, rendering.width, rendering.height) == ("jpeg", 1200, 1600)
    sizes = {(v.name, v.format): (v.width, v.height) for v in rendering.variants}
    assert sizes == {
        ("large", "webp"): (1080, 1440),
        ("large", "jpeg"): (1080, 1440),
        ("small", "webp"): (480, 640),
        ("small", "jpeg"): (480, 640),
        ("thumb", "webp"): (150, 150),
        ("thumb", "jpeg"): (150, 150),
    }
    for variant in rendering.variants:
        image = open_output(variant.data)
        assert image.format == variant.format.upper()
        assert image.size == (variant.width, variant.height)
        assert_no_metadata(image)
        rgb = image.convert("RGB")
        # Turned a quarter clockwise: the red left half is now on top.
        assert close_to(rgb.getpixel((rgb.width // 2, 2)), RED)
        assert close_to(rgb.getpixel((rgb.width // 2, rgb.height - 3)), BLUE)
        if variant.format == "jpeg":
            assert image.info.get("progressive") or image.info.get("progression")


def test_png_transparency_is_kept_in_webp_and_flattened_on_white_in_jpeg() -> None:
    image = Image.new("RGBA", (600, 400), (0, 0, 0, 0))
    image.paste((10, 200, 10, 255), (0, 0, 300, 400))
    rendering = render_variants(encode(image, "PNG"), max_pixels=MAX_PIXELS)
    large = {v.format: open_output(v.data) for v in rendering.variants if v.name == "large"}
    assert large["webp"].mode == "RGBA"
    assert large["webp"].getpixel((590, 200))[3] == 0  # type: ignore[index]
    assert close_to(large["jpeg"].getpixel((590, 200)), (255, 255, 255))
    assert (large["jpeg"].width, large["jpeg"].height) == (600, 400)


def test_gif_first_frame_and_other_modes() -> None:
    gif = render_variants(animated_gif(), max_pixels=MAX_PIXELS)
    thumb = open_output(next(v.data for v in gif.variants if v.name == "thumb" and v.format == "jpeg"))
    assert close_to(thumb.getpixel((75, 75)), RED)
    assert getattr(open_output(gif.variants[0].data), "n_frames", 1) == 1

    for source in (
        encode(halves(500, 300, "L"), "PNG"),
        encode(halves(500, 300, "P"), "PNG"),
        encode(halves(500, 300, "CMYK"), "JPEG"),
        encode(halves(500, 300).convert("I;16"), "PNG"),
        encode(halves(500, 300), "WEBP"),
    ):
        rendering = render_variants(source, max_pixels=MAX_PIXELS)
        assert [(v.width, v.height) for v in rendering.variants][::2] == [(500, 300), (480, 288), (150, 150)]


def test_srgb_profiles_keep_colours_and_are_not_copied() -> None:
    image = Image.new("RGB", (200, 200), (200, 120, 40))
    srgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    rendering = render_variants(encode(image, "JPEG", icc_profile=srgb_profile), max_pixels=MAX_PIXELS)
    for variant in rendering.variants:
        output = open_output(variant.data)
        assert "icc_profile" not in output.info
        assert close_to(output.convert("RGB").getpixel((50, 50)), (200, 120, 40))


def test_bad_inputs_are_refused_with_a_reason() -> None:
    photo = encode(halves(800, 600), "JPEG", quality=90)
    cases = {
        "unsupported_type": b"just some text, named photo.jpg\n" * 20,
        "corrupt": photo[: len(photo) // 2],
        "too_many_pixels": png_bomb(),
    }
    for code, data in cases.items():
        with pytest.raises(MediaRejected) as refused:
            render_variants(data, max_pixels=MAX_PIXELS)
        assert refused.value.code == code, refused.value
    with pytest.raises(MediaRejected, match=r"too_many_pixels: 800x600: 0.5 MP, over the 0.1 MP limit"):
        render_variants(photo, max_pixels=100_000)
    with pytest.raises(MediaRejected, match="corrupt"):
        render_variants(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, max_pixels=MAX_PIXELS)


def test_the_bomb_is_small_and_refused_from_its_header() -> None:
    bomb = png_bomb()
    assert len(bomb) < 64 * 1024
    with pytest.raises(MediaRejected, match=r"too_many_pixels: 400.0 MP, over the 50.0 MP limit"):
        render_variants(bomb, max_pixels=MAX_PIXELS)
    # Below Pillow's own guard, the header check alone refuses it (with its dimensions).
    with pytest.raises(MediaRejected, match=r"too_many_pixels: 9000x9000: 81.0 MP, over the 50.0 MP"):
        render_variants(png_bomb(9000, 9000), max_pixels=MAX_PIXELS)


def test_a_jpeg_decoded_at_reduced_scale_reports_the_original_dimensions() -> None:
    upright = encode(halves(4000, 3000), "JPEG", quality=90)
    sideways = jpeg_with_metadata(4000, 3000, orientation=6)
    # Large enough for the reduced-scale decode: libjpeg hands over 2000x1500 pixels.
    probe = Image.open(io.BytesIO(upright))
    probe.draft("RGB", (VARIANTS[0].width, 810))
    assert probe.size == (2000, 1500)

    cases = [
        (upright, (4000, 3000), {"large": (1080, 810), "small": (480, 360), "thumb": (150, 150)}),
        (sideways, (3000, 4000), {"large": (1080, 1440), "small": (480, 640), "thumb": (150, 150)}),
    ]
    for data, size, variant_sizes in cases:
        rendering = render_variants(data, max_pixels=MAX_PIXELS)
        assert (rendering.width, rendering.height) == size
        assert {v.name: (v.width, v.height) for v in rendering.variants} == variant_sizes
        for variant in rendering.variants:
            assert open_output(variant.data).size == variant_sizes[variant.name]
    large = open_output(next(v.data for v in rendering.variants if v.name == "large" and v.format == "jpeg"))
    assert close_to(large.getpixel((540, 5)), RED)  # turned a quarter clockwise: red on top
    assert close_to(large.getpixel((540, 1430)), BLUE)


def test_an_oversized_png_metadata_chunk_is_refused_before_it_is_read() -> None:
    with pytest.raises(MediaRejected) as refused:
        render_variants(png_with_icc_chunk(20 * 1024 * 1024), max_pixels=MAX_PIXELS)
    assert refused.value.code == "too_large"
    # Refused from the length field: Pillow, which would have said "corrupt", never saw it.
    assert refused.value.detail.startswith("PNG iCCP chunk of 2097")
    assert refused.value.detail.endswith(
        f"bytes, over the {PNG_MAX_METADATA_CHUNK} byte limit for metadata (checked before decoding)"
    )


def test_png_metadata_chunks_within_the_limit_are_read() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for data in (encode(halves(800, 600), "PNG", icc_profile=srgb), png_with_icc_chunk(200_000)):
        rendering = render_variants(data, max_pixels=MAX_PIXELS)  # an unusable profile is ignored
        assert (rendering.source_type, rendering.width, rendering.height) == ("png", 800, 600)
