"""Draw boxes and points on a copy of an image, for a quick look at what a model grounded.

Inputs are mmkit `Box`/`Point` values (pixels of the original image, see `grounding.py`). Each label gets
its own colour (in order of first appearance), labels sit on a filled background so they stay legible,
and line width and font size follow the image size. Only PIL's built-in font is used (nothing is
downloaded). The input image is never modified. This module knows nothing about models or parsing.
"""

from __future__ import annotations

from typing import Iterable

from PIL import Image, ImageDraw, ImageFont

from ..exceptions import UsageError
from .answer import Box, Point

__all__ = ["PALETTE", "draw_grounding"]

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
    (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40), (255, 225, 25),
)
"""High-contrast colours (Sasha Trubetskoy's "20 distinct colours", first twelve), one per label."""

Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


def _colours(labels: Iterable[str | None]) -> dict[str | None, tuple[int, int, int]]:
    table: dict[str | None, tuple[int, int, int]] = {}
    for label in labels:
        if label not in table:
            table[label] = PALETTE[len(table) % len(PALETTE)]
    return table


def _text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    red, green, blue = background
    return (0, 0, 0) if 0.299 * red + 0.587 * green + 0.114 * blue > 150 else (255, 255, 255)


def _draw_label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, colour: tuple[int, int, int],
                font: Font, size: tuple[int, int]) -> None:
    """Label with a filled background just above `xy` (or just below, inside the box, at the top edge)."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    text_w, text_h, pad = right - left, bottom - top, 2
    x = min(max(xy[0], 0), max(size[0] - text_w - 2 * pad, 0))
    y = xy[1] - text_h - 2 * pad
    if y < 0:
        y = xy[1]
    draw.rectangle((x, y, x + text_w + 2 * pad - 1, y + text_h + 2 * pad - 1), fill=colour)
    draw.text((x + pad - left, y + pad - top), text, fill=_text_colour(colour), font=font)


def draw_grounding(
    image: Image.Image,
    boxes: Iterable[Box] = (),
    points: Iterable[Point] = (),
    *,
    width: int | None = None,
    font: Font | None = None,
) -> Image.Image:
    """Return an RGB copy of `image` with boxes and points drawn and labelled.

    Args:
        image: a PIL image (any mode); it is not modified.
        boxes: `Box` values in pixels of this image (filter by `image_index` first for multi-image answers).
        points: `Point` values in pixels of this image.
        width: line width in pixels; default scales with the image (about 1/200 of the short side, >= 2).
        font: a PIL font; default is PIL's built-in font sized to about 1/40 of the short side.

    Returns:
        A new RGB image.
    """
    if not isinstance(image, Image.Image):
        raise UsageError("draw_grounding needs a PIL image", received=type(image).__name__,
                         fix="load it with mmkit.media.load_image() or PIL.Image.open(...)")
    boxes, points = list(boxes), list(points)
    canvas = image.convert("RGB") if image.mode != "RGB" else image.copy()
    w, h = canvas.size
    line = width if width is not None else max(2, round(min(w, h) / 200))
    if line < 1:
        raise UsageError("width must be >= 1", received=width, fix="pass width=None for a size-based default")
    font = font if font is not None else ImageFont.load_default(size=max(10, min(w, h) // 40))
    colours = _colours([b.label for b in boxes] + [p.label for p in points])
    draw = ImageDraw.Draw(canvas)
    for box in boxes:
        # Box edges are continuous coordinates; the last pixel column/row inside the box is x2 - 1 / y2 - 1.
        x1, y1 = round(box.x1), round(box.y1)
        x2, y2 = max(x1, min(round(box.x2) - 1, w - 1)), max(y1, min(round(box.y2) - 1, h - 1))
        draw.rectangle((x1, y1, x2, y2), outline=colours[box.label], width=line)
        if box.label:
            _draw_label(draw, (x1, y1), box.label, colours[box.label], font, (w, h))
    radius = max(3, 2 * line)
    for point in points:
        x, y = round(point.x), round(point.y)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colours[point.label],
                     outline=(255, 255, 255), width=max(1, line // 2))
        if point.label:
            _draw_label(draw, (x + radius, y - radius), point.label, colours[point.label], font, (w, h))
    return canvas
