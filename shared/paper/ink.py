"""Ink on a scanned page: what the student and their parents see of the marking.

:func:`render_marked_page` draws a page's marks, in the order given (the order they were
made), over the page image and gives a PNG of the page's own size. Coordinates are fractions of
the page from its top left. A stroke is an anti-aliased polyline with round caps and joins, its
width a fraction of the page's width; a stamp (tick, cross, star) is drawn as a vector shape
centred on ``at``, ``size`` wide (a fraction of the page's width); a text note starts at ``at``
(its top left) in DejaVu Sans, ``size`` high (a fraction of the page's height).

The ink is drawn on a transparent layer several times the page's resolution and scaled down
onto it, which is what makes its edges smooth (Pillow's own lines are not anti-aliased).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from shared.events.paper import Mark, Stamp, StampKind, Stroke, TextNote
from shared.paper.fonts import REGULAR_FONT

SUPERSAMPLE = 3
MAX_LAYER_SIDE = 6000
"""The ink layer's longest side at most, in pixels (a large photo is supersampled less)."""
STAMP_COLOURS = {
    StampKind.TICK: (42, 157, 70, 255),
    StampKind.CROSS: (214, 40, 40, 255),
    StampKind.STAR: (244, 180, 0, 255),
}

RGBA = tuple[int, int, int, int]


def render_marked_page(page: bytes, marks: Sequence[Mark]) -> bytes:
    """``page`` (JPEG or PNG, as kept) with ``marks`` drawn on it, as PNG."""
    with Image.open(io.BytesIO(page)) as opened:
        base = opened.convert("RGBA")
    width, height = base.size
    scale = max(1.0, min(float(SUPERSAMPLE), MAX_LAYER_SIDE / max(width, height)))
    layer_size = (round(width * scale), round(height * scale))
    layer = Image.new("RGBA", layer_size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for mark in marks:
        if isinstance(mark, Stroke):
            _stroke(draw, mark, layer_size)
        elif isinstance(mark, Stamp):
            _stamp(draw, mark, layer_size)
        elif isinstance(mark, TextNote):
            _text(draw, mark, layer_size)
    inked = layer.getbbox()
    if inked is not None:
        # Scale down only the part with ink on it (the rest of the layer is clear).
        left, top = math.floor(inked[0] / scale), math.floor(inked[1] / scale)
        right = min(width, math.ceil(inked[2] / scale))
        bottom = min(height, math.ceil(inked[3] / scale))
        region = layer.crop(
            (round(left * scale), round(top * scale), round(right * scale), round(bottom * scale))
        )
        if region.size != (right - left, bottom - top):
            region = region.resize((right - left, bottom - top), Image.Resampling.LANCZOS)
        base.alpha_composite(region, (left, top))
    marked = base.convert("RGB")
    out = io.BytesIO()
    marked.save(out, "PNG", compress_level=6)
    return out.getvalue()


def _colour(text: str) -> RGBA:
    return (int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16), 255)


def _stroke(draw: ImageDraw.ImageDraw, stroke: Stroke, size: tuple[int, int]) -> None:
    width, height = size
    colour = _colour(stroke.colour)
    thickness = max(1.0, stroke.width * width)
    points = [(point.x * width, point.y * height) for point in stroke.points]
    if len(points) > 1:
        draw.line(points, fill=colour, width=max(1, round(thickness)), joint="curve")
    radius = thickness / 2
    # round caps (and a dot for a single point)
    for x, y in (points[0], points[-1]):
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)


def _stamp(draw: ImageDraw.ImageDraw, stamp: Stamp, size: tuple[int, int]) -> None:
    width, height = size
    side = stamp.size * width
    cx, cy = stamp.at.x * width, stamp.at.y * height
    colour = STAMP_COLOURS[stamp.kind]
    weight = max(1, round(side * 0.12))

    def at(u: float, v: float) -> tuple[float, float]:
        """A point of the stamp's box, from -0.5 to 0.5 across and down."""
        return cx + u * side, cy + v * side

    if stamp.kind is StampKind.TICK:
        _polyline(draw, [at(-0.38, 0.02), at(-0.12, 0.3), at(0.4, -0.32)], colour, weight)
    elif stamp.kind is StampKind.CROSS:
        _polyline(draw, [at(-0.33, -0.33), at(0.33, 0.33)], colour, weight)
        _polyline(draw, [at(0.33, -0.33), at(-0.33, 0.33)], colour, weight)
    else:
        outer, inner = 0.5, 0.2
        corners = [
            at(
                (outer if i % 2 == 0 else inner) * math.sin(i * math.pi / 5),
                -(outer if i % 2 == 0 else inner) * math.cos(i * math.pi / 5),
            )
            for i in range(10)
        ]
        draw.polygon(corners, fill=colour)


def _polyline(
    draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], colour: RGBA, weight: int
) -> None:
    draw.line(points, fill=colour, width=weight, joint="curve")
    radius = weight / 2
    for x, y in points:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)


def _text(draw: ImageDraw.ImageDraw, note: TextNote, size: tuple[int, int]) -> None:
    width, height = size
    pixels = max(6, round(note.size * height))
    draw.multiline_text(
        (note.at.x * width, note.at.y * height),
        note.text,
        fill=_colour(note.colour),
        font=_font(pixels),
    )


@lru_cache(maxsize=32)
def _font(pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(REGULAR_FONT), pixels)
