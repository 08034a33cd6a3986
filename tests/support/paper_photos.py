"""Worksheets and "phone photos" of them, made by the tests: a worksheet PDF rendered by
``shared.paper.worksheet``, rasterised, then laid on a darker table, turned, seen at an angle
(a perspective warp), blurred, grainy and JPEG-compressed, as a phone would hand it in."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from uuid import uuid4

import pypdfium2  # type: ignore[import-untyped]
from PIL import Image, ImageChops, ImageFilter

from shared.events.exercises import Question
from shared.events.paper import WorkKind
from shared.paper.codes import SheetCodes
from shared.paper.worksheet import WorksheetSheet, render_worksheets

CODES = SheetCodes(b"test-paper-key-of-at-least-32-bytes!")


def a_code() -> str:
    return CODES.mint("centre-test", WorkKind.EXERCISE, uuid4(), uuid4())


def questions(count: int = 6) -> tuple[Question, ...]:
    return tuple(
        Question(
            question_id=f"q{i}",
            prompt=f"Work out {i} x {i + 3}, and say how you did it.",
            points=1 + i % 3,
            options=("12", "15", "18", "none of these") if i % 2 else (),
        )
        for i in range(1, count + 1)
    )


def sheet(code: str, *, count: int = 6, student: str = "Zoë Ødegaard") -> WorksheetSheet:
    return WorksheetSheet(
        code=code,
        title="Fractions, part 2",
        student_name=student,
        centre_name="Northside Tutoring",
        heading="Session Thu 3 Dec 2026 16:00",
        instructions="Show your working.",
        questions=questions(count),
    )


def worksheet_pdf(code: str, *, count: int = 6) -> bytes:
    return render_worksheets([sheet(code, count=count)])


def rasterise(pdf: bytes, dpi: int = 150) -> list[Image.Image]:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return [
            document[i].render(scale=dpi / 72, fill_color=(255, 255, 255, 255)).to_pil()
            for i in range(len(document))
        ]
    finally:
        document.close()


def jpeg(image: Image.Image, quality: int = 80, **options: object) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality, **options)
    return out.getvalue()


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def perspective_coefficients(
    source: Sequence[tuple[float, float]], target: Sequence[tuple[float, float]]
) -> tuple[float, ...]:
    """The 8 coefficients of ``Image.transform(..., PERSPECTIVE, ...)`` that map each point of
    ``target`` (in the output) to the point of ``source`` (in the input) at the same index."""
    rows: list[list[float]] = []
    values: list[float] = []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        values.append(u)
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values.append(v)
    return tuple(_solve(rows, values))


def _solve(matrix: list[list[float]], values: list[float]) -> list[float]:
    n = len(values)
    augmented = [[*row, value] for row, value in zip(matrix, values, strict=True)]
    for column in range(n):
        pivot = max(range(column, n), key=lambda r: abs(augmented[r][column]))
        augmented[column], augmented[pivot] = augmented[pivot], augmented[column]
        for row in range(n):
            if row != column:
                factor = augmented[row][column] / augmented[column][column]
                augmented[row] = [
                    a - factor * b for a, b in zip(augmented[row], augmented[column], strict=True)
                ]
    return [augmented[i][n] / augmented[i][i] for i in range(n)]


def phone_photo(
    page: Image.Image,
    *,
    size: tuple[int, int] = (1600, 2000),
    turn: int = 0,
    angle: float = 0.0,
    tilt: float = 0.0,
    blur: float = 0.0,
    noise: float = 0.0,
    quality: int = 80,
    table: tuple[int, int, int] = (96, 84, 70),
    light: float = 0.85,
) -> bytes:
    """``page`` photographed: on a table of colour ``table`` filling a photo of ``size``,
    turned by ``turn`` (a multiple of 90) and ``angle`` degrees, its top edge ``tilt`` (a
    fraction of its width) narrower than its bottom (a camera held at an angle), dimmed to
    ``light``, blurred by a radius of ``blur``, with grain of standard deviation ``noise``,
    and JPEG-compressed at ``quality``."""
    paper = page.convert("RGB")
    if light != 1.0:
        paper = paper.point(lambda value: int(value * light))
    width, height = size
    # the sheet covers about 80% of the photo's shorter side's direction
    scale = min(width * 0.8 / paper.width, height * 0.8 / paper.height)
    paper = paper.resize((round(paper.width * scale), round(paper.height * scale)))
    if tilt:
        w, h = paper.size
        inset = w * tilt / 2
        corners_out = [(inset, 0.0), (w - inset, 0.0), (float(w), float(h)), (0.0, float(h))]
        corners_in = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
        coefficients = perspective_coefficients(corners_in, corners_out)
        mask = Image.new("L", paper.size, 255).transform(
            paper.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
        )
        paper = paper.transform(
            paper.size, Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
        )
    else:
        mask = Image.new("L", paper.size, 255)
    photo = Image.new("RGB", (width, height), table)
    photo.paste(paper, ((width - paper.width) // 2, (height - paper.height) // 2), mask)
    if angle:
        photo = photo.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=table)
    if turn % 360:
        photo = photo.rotate(turn % 360, expand=True)
    if blur:
        photo = photo.filter(ImageFilter.GaussianBlur(blur))
    if noise:
        grain = Image.effect_noise(photo.size, noise).convert("RGB")
        # grain is centred on 128: adding it and taking 128 away adds zero-mean noise
        photo = ImageChops.add(photo, grain, scale=1.0, offset=-128)
    return jpeg(photo, quality)


def cover(page: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    """``page`` with the fractional box (left, top, right, bottom) painted over (a thumb, a
    torn corner)."""
    covered = page.convert("RGB").copy()
    left, top, right, bottom = box
    covered.paste(
        (40, 40, 40),
        (
            math.floor(left * covered.width),
            math.floor(top * covered.height),
            math.ceil(right * covered.width),
            math.ceil(bottom * covered.height),
        ),
    )
    return covered
