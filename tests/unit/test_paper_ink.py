"""The marked page: ink changes the pixels under it and no others; the page keeps its size."""

from __future__ import annotations

import io

import msgspec
from PIL import Image

from shared.events.paper import Mark, Point, Stamp, StampKind, Stroke, TextNote
from shared.paper.ink import render_marked_page
from tests.support.paper_photos import jpeg, png

WIDTH, HEIGHT = 600, 800


def blank(kind: str = "png") -> bytes:
    page = Image.new("RGB", (WIDTH, HEIGHT), "white")
    return png(page) if kind == "png" else jpeg(page, 95)


def marked(marks: list[Mark], page: bytes | None = None) -> Image.Image:
    out = render_marked_page(blank() if page is None else page, marks)
    assert out.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(out))
    assert image.size == (WIDTH, HEIGHT)
    return image.convert("RGB")


def pixel(image: Image.Image, x: float, y: float) -> tuple[int, int, int]:
    value = image.getpixel((round(x * WIDTH), round(y * HEIGHT)))
    assert isinstance(value, tuple)
    return (value[0], value[1], value[2])


def changed(image: Image.Image, box: tuple[float, float, float, float]) -> int:
    left, top, right, bottom = box
    region = image.crop(
        (round(left * WIDTH), round(top * HEIGHT), round(right * WIDTH), round(bottom * HEIGHT))
    )
    return sum(region.convert("L").histogram()[:250])


def test_a_stroke_colours_the_pixels_under_it_and_no_others() -> None:
    stroke = Stroke(
        points=(Point(0.1, 0.5), Point(0.5, 0.5), Point(0.9, 0.3)),
        colour="#d62828",
        width=0.01,
    )
    image = marked([stroke])
    for x, y in ((0.1, 0.5), (0.3, 0.5), (0.5, 0.5), (0.7, 0.4)):
        red, green, blue = pixel(image, x, y)
        assert red > 180 and green < 90 and blue < 90, (x, y)
    assert pixel(image, 0.3, 0.6) == (255, 255, 255)
    assert pixel(image, 0.05, 0.5) == (255, 255, 255)
    assert changed(image, (0, 0, 1, 0.25)) == 0
    assert changed(image, (0, 0.55, 1, 1)) == 0
    # anti-aliased: the stroke's edge has shades between the ink and the paper
    column = [pixel(image, 0.3, 0.5 + dy / HEIGHT) for dy in range(-8, 9)]
    assert any(40 < green < 220 for _, green, _ in column)


def test_stamps_are_drawn_where_they_are_put_at_their_size() -> None:
    image = marked(
        [
            Stamp(kind=StampKind.TICK, at=Point(0.25, 0.2), size=0.1),
            Stamp(kind=StampKind.CROSS, at=Point(0.75, 0.2), size=0.1),
            Stamp(kind=StampKind.STAR, at=Point(0.5, 0.7), size=0.2),
        ]
    )
    tick = (0.19, 0.15, 0.31, 0.25)
    cross = (0.69, 0.15, 0.81, 0.25)
    star = (0.39, 0.61, 0.61, 0.79)
    assert changed(image, tick) > 50 and changed(image, cross) > 50 and changed(image, star) > 500
    total = changed(image, (0, 0, 1, 1))
    assert total == changed(image, tick) + changed(image, cross) + changed(image, star)
    green = pixel(image, 0.25 - 0.012, 0.2 + 0.03 * WIDTH / HEIGHT)
    assert green[1] > green[0] + 50  # the tick is green
    red = pixel(image, 0.75, 0.2)
    assert red[0] > red[1] + 100  # the cross is red, through its middle
    gold = pixel(image, 0.5, 0.7)
    assert gold[0] > 200 and gold[1] > 140 and gold[2] < 80  # the star is filled gold


def test_a_text_note_is_written_from_where_it_is_put() -> None:
    note = TextNote(at=Point(0.1, 0.1), text="Well done, Zoë — 9/10", colour="#1d3557", size=0.03)
    image = marked([note])
    assert changed(image, (0.1, 0.1, 0.9, 0.1 + 0.04)) > 100
    assert changed(image, (0, 0.2, 1, 1)) == 0
    assert changed(image, (0, 0, 0.09, 1)) == 0


def test_marks_are_drawn_in_order_and_a_page_without_marks_is_unchanged() -> None:
    under = Stroke(points=(Point(0.2, 0.5), Point(0.8, 0.5)), colour="#00ff00", width=0.02)
    over = Stroke(points=(Point(0.5, 0.3), Point(0.5, 0.7)), colour="#0000ff", width=0.02)
    crossing = pixel(marked([under, over]), 0.5, 0.5)
    assert crossing[2] > 200 and crossing[1] < 60  # the later stroke is on top
    assert changed(marked([]), (0, 0, 1, 1)) == 0
    photo = marked([under], page=blank("jpeg"))
    assert pixel(photo, 0.5, 0.5)[1] > 200


def test_marks_as_recorded_in_events_render() -> None:
    recorded = msgspec.json.encode(
        [
            {"type": "stroke", "points": [[0.1, 0.1], [0.2, 0.2]], "width": 0.005},
            {"type": "stamp", "kind": "TICK", "at": [0.5, 0.5]},
            {"type": "text", "at": [0.6, 0.6], "text": "see me"},
        ]
    )
    marks = msgspec.json.decode(recorded, type=list[Mark])
    image = marked(marks)
    assert changed(image, (0.08, 0.08, 0.22, 0.22)) > 10
    assert changed(image, (0.45, 0.45, 0.55, 0.55)) > 10
    assert changed(image, (0.6, 0.6, 0.9, 0.65)) > 10
