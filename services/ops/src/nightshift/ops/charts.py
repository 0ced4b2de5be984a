"""Small PNG charts for the reports, drawn with Pillow (no plotting library at run time).

A report needs two pictures that every mail client shows: bars per day and a
line per day. Pillow draws them in a few milliseconds; matplotlib would add tens of
megabytes to the ops image for the same two charts.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

#: Size of a chart, pixels.
WIDTH, HEIGHT = 640, 220
#: Margins: left (axis labels), right, top (title), bottom (day labels).
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 28, 30
#: The two series' colours (processed / failed, or the line).
COLOURS = ((47, 111, 171), (200, 64, 52))


def bars(title: str, labels: Sequence[str], series: Sequence[Sequence[float]], names: Sequence[str]) -> bytes:
    """Grouped bars: one group per label, one bar per series; PNG bytes."""
    image, draw, font = _canvas(title)
    top = max([value for values in series for value in values] + [1])
    _axis(draw, font, top)
    group = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    for index, label in enumerate(labels):
        x0 = LEFT + index * group + group * 0.1
        for number, values in enumerate(series):
            height = (HEIGHT - TOP - BOTTOM) * values[index] / top
            left = x0 + number * bar
            draw.rectangle((left, HEIGHT - BOTTOM - height, left + bar - 1, HEIGHT - BOTTOM), fill=COLOURS[number % 2])
        draw.text((x0, HEIGHT - BOTTOM + 6), label, fill=(60, 60, 60), font=font)
    _legend(draw, font, names)
    return _png(image)


def line(title: str, labels: Sequence[str], values: Sequence[float], name: str) -> bytes:
    """One line over the labels; PNG bytes."""
    image, draw, font = _canvas(title)
    top = max([*values, 1])
    _axis(draw, font, top)
    step = (WIDTH - LEFT - RIGHT) / max(len(labels), 1)
    points = [
        (LEFT + step * (index + 0.5), HEIGHT - BOTTOM - (HEIGHT - TOP - BOTTOM) * value / top)
        for index, value in enumerate(values)
    ]
    if len(points) > 1:
        draw.line(points, fill=COLOURS[0], width=2)
    for (x, y), label in zip(points, labels, strict=True):
        draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=COLOURS[0])
        draw.text((x - step * 0.4, HEIGHT - BOTTOM + 6), label, fill=(60, 60, 60), font=font)
    _legend(draw, font, [name])
    return _png(image)


def data_uri(png: bytes) -> str:
    """*png* as a ``data:`` URI for an ``<img>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _canvas(title: str) -> tuple[Image.Image, ImageDraw.ImageDraw, ImageFont.ImageFont | ImageFont.FreeTypeFont]:
    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((LEFT, 8), title, fill=(20, 20, 20), font=font)
    return image, draw, font


def _axis(draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, top: float) -> None:
    bottom = HEIGHT - BOTTOM
    draw.line((LEFT, TOP, LEFT, bottom), fill=(150, 150, 150))
    draw.line((LEFT, bottom, WIDTH - RIGHT, bottom), fill=(150, 150, 150))
    for share in (0.0, 0.5, 1.0):
        y = bottom - (bottom - TOP) * share
        draw.text((4, y - 6), _short(top * share), fill=(90, 90, 90), font=font)
        draw.line((LEFT - 3, y, LEFT, y), fill=(150, 150, 150))


def _legend(
    draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, names: Sequence[str]
) -> None:
    x = WIDTH - RIGHT - 110 * len(names)
    for number, name in enumerate(names):
        draw.rectangle((x, 10, x + 10, 20), fill=COLOURS[number % 2])
        draw.text((x + 14, 8), name, fill=(40, 40, 40), font=font)
        x += 110


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
