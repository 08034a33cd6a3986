"""Scans of printed worksheets: a phone photo (turned, at an angle, blurred, grainy, dim, JPEG)
or a PDF of the sheet gives its code back; a sheet whose QR code cannot be seen gives none;
what is kept is upright and carries no metadata; files that cannot be kept are refused with the
status a person would be told, never a crash."""

from __future__ import annotations

import io
from typing import Any

import pytest
import segno
from fpdf import FPDF
from PIL import ExifTags, Image

from shared.paper.scans import (
    JPEG,
    PNG,
    PreparedPage,
    ScanLimits,
    ScanRejected,
    find_code,
    prepare_scan,
    sniff,
)
from shared.paper.settings import PaperSettings
from shared.settings import load
from tests.support.paper_photos import (
    a_code,
    cover,
    jpeg,
    phone_photo,
    png,
    rasterise,
    worksheet_pdf,
)

LIMITS = ScanLimits()


@pytest.fixture(scope="module")
def printed() -> tuple[str, bytes, list[Image.Image]]:
    code = a_code()
    pdf = worksheet_pdf(code, count=10)
    return code, pdf, rasterise(pdf, dpi=200)


def only_page(data: bytes, limits: ScanLimits = LIMITS) -> PreparedPage:
    pages = prepare_scan(data, limits)
    assert len(pages) == 1
    return pages[0]


def test_every_page_of_a_printed_sheet_carries_its_code(
    printed: tuple[str, bytes, list[Image.Image]],
) -> None:
    code, _, pages = printed
    assert len(pages) >= 2
    for page in pages:
        assert find_code(only_page(png(page))) == code


PHOTOS: dict[str, dict[str, Any]] = {
    "upright": {},
    "turned 90": {"turn": 90},
    "upside down": {"turn": 180},
    "turned 270": {"turn": 270},
    "a few degrees clockwise": {"angle": -6},
    "a few degrees anticlockwise": {"angle": 4},
    "seen at an angle": {"tilt": 0.25},
    "at an angle and turned": {"tilt": 0.2, "angle": 5, "turn": 90},
    "blurred": {"blur": 2.0},
    "grainy": {"noise": 30},
    "heavily compressed": {"quality": 25},
    "dim, on a dark table": {"light": 0.45, "table": (28, 26, 24)},
    "everything at once": {
        "turn": 270,
        "angle": 3,
        "tilt": 0.15,
        "blur": 1.5,
        "noise": 15,
        "quality": 50,
        "light": 0.6,
    },
}


@pytest.mark.parametrize("how", list(PHOTOS))
def test_a_phone_photo_of_the_sheet_gives_its_code(
    printed: tuple[str, bytes, list[Image.Image]], how: str
) -> None:
    code, _, pages = printed
    photo = phone_photo(pages[0], **PHOTOS[how])
    kept = only_page(photo)
    assert kept.content_type == JPEG
    assert find_code(kept) == code


def test_a_twelve_megapixel_photo_gives_its_code(
    printed: tuple[str, bytes, list[Image.Image]],
) -> None:
    code, _, pages = printed
    photo = phone_photo(pages[1], size=(3000, 4000), angle=2, tilt=0.1, blur=1.2, noise=10)
    kept = only_page(photo)
    assert (kept.width, kept.height) == (3000, 4000)
    assert find_code(kept) == code


def test_a_sheet_far_away_in_a_large_photo_is_read_at_full_size(
    printed: tuple[str, bytes, list[Image.Image]],
) -> None:
    code, _, pages = printed
    table = Image.new("RGB", pages[0].size, (96, 84, 70))
    table.paste(pages[0].resize((pages[0].width * 35 // 100, pages[0].height * 35 // 100)))
    photo = phone_photo(table, size=(3000, 4000), blur=1.0, noise=8)
    assert find_code(only_page(photo)) == code


def test_a_sheet_whose_qr_code_is_covered_or_cut_off_gives_no_code(
    printed: tuple[str, bytes, list[Image.Image]],
) -> None:
    _, _, pages = printed
    thumb = cover(pages[0], (0.76, 0.02, 0.96, 0.12))
    torn = pages[0].crop((0, round(pages[0].height * 0.2), pages[0].width, pages[0].height))
    for page in (thumb, torn):
        assert find_code(only_page(phone_photo(page))) is None


def test_other_qr_codes_on_a_page_are_ignored(
    printed: tuple[str, bytes, list[Image.Image]],
) -> None:
    code, _, pages = printed
    drawn = io.BytesIO()
    segno.make_qr("https://example.org/homework?id=42", error="m").save(drawn, kind="png", scale=8)
    other = Image.open(drawn)
    alone = Image.new("RGB", (1200, 1600), "white")
    alone.paste(other.convert("RGB"), (100, 100))
    assert find_code(only_page(png(alone))) is None
    beside = pages[0].convert("RGB").copy()
    beside.paste(other.convert("RGB"), (150, beside.height - other.height - 200))
    assert find_code(only_page(jpeg(beside))) == code


def test_an_uploaded_pdf_of_the_worksheet_routes(
    printed: tuple[str, bytes, list[Image.Image]],
) -> None:
    code, pdf, pages = printed
    kept = prepare_scan(pdf, LIMITS)
    assert len(kept) == len(pages)
    for page in kept:
        assert page.content_type == PNG and page.data.startswith(b"\x89PNG")
        assert abs(page.width - 1240) <= 1 and abs(page.height - 1754) <= 1  # A4, 150 dpi
        assert find_code(page) == code
    assert len({page.sha256 for page in kept}) == len(kept)


def test_a_photo_comes_out_upright_with_no_metadata_at_all() -> None:
    # Stored sideways (as a phone held in portrait writes it): 400 wide, 300 high, a red
    # mark at the stored top left; Orientation 6 says "turn 90 degrees clockwise to view".
    stored = Image.new("RGB", (400, 300), "white")
    stored.paste((255, 0, 0), (0, 0, 40, 40))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.Model] = "Pocket 12"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 40.0)
    photo = jpeg(stored, 90, exif=exif.tobytes(), comment=b"taken at 12 Home Road")
    sent = Image.open(io.BytesIO(photo))
    assert sent.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"

    kept = only_page(photo)
    image = Image.open(io.BytesIO(kept.data))
    assert (kept.width, kept.height) == image.size == (300, 400)  # upright: portrait
    red, green, blue = image.convert("RGB").getpixel((280, 20))  # type: ignore[misc]
    assert red > 200 and green < 80 and blue < 80  # the mark is now at the top right
    assert len(image.getexif()) == 0
    assert "exif" not in image.info and "icc_profile" not in image.info
    assert "comment" not in image.info
    for trace in (b"Exif", b"PhoneCo", b"Pocket 12", b"Home Road"):
        assert trace not in kept.data


def test_transparency_is_laid_on_white_and_types_are_told_by_their_bytes() -> None:
    clear = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    kept = only_page(png(clear))
    assert kept.content_type == JPEG
    assert Image.open(io.BytesIO(kept.data)).convert("L").getpixel((100, 50)) == 255
    webp = io.BytesIO()
    Image.new("RGB", (120, 80), "white").save(webp, "WEBP")
    assert sniff(webp.getvalue()) == "image/webp"
    assert only_page(webp.getvalue()).content_type == JPEG


def test_a_file_too_large_is_refused_before_it_is_read() -> None:
    limits = ScanLimits(max_file_bytes=50_000)
    with pytest.raises(ScanRejected) as refused:
        prepare_scan(b"\xff\xd8\xff" + b"\0" * 50_000, limits)
    assert refused.value.status == 413 and refused.value.field == "files"


def test_other_types_are_refused_whatever_was_declared() -> None:
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    for data in (gif.getvalue(), b"hello, this is a text file", b"<svg xmlns='...'/>", b"PK\x03"):
        with pytest.raises(ScanRejected) as refused:
            prepare_scan(data, LIMITS)
        assert refused.value.status == 415


def test_a_decompression_bomb_is_refused_without_decoding_it() -> None:
    for side in (12_000, 20_000):  # 144 million pixels, and past Pillow's own bomb limit
        bomb = io.BytesIO()
        Image.new("1", (side, side)).save(bomb, "PNG")
        assert len(bomb.getvalue()) < LIMITS.max_file_bytes
        with pytest.raises(ScanRejected) as refused:
            prepare_scan(bomb.getvalue(), LIMITS)
        assert refused.value.status == 422


def test_a_pdf_with_too_many_or_too_large_pages_is_refused() -> None:
    many = FPDF()
    for _ in range(LIMITS.max_pages + 1):
        many.add_page()
    with pytest.raises(ScanRejected, match="pages") as refused:
        prepare_scan(bytes(many.output()), LIMITS)
    assert refused.value.status == 422
    huge = FPDF(unit="pt", format=(14_000, 14_000))  # ~ 194 inches square
    huge.add_page()
    with pytest.raises(ScanRejected, match="pixels") as refused:
        prepare_scan(bytes(huge.output()), LIMITS)
    assert refused.value.status == 422


def test_files_that_cannot_be_read_are_refused_as_unreadable(
    printed: tuple[str, bytes, list[Image.Image]],
) -> None:
    _, pdf, pages = printed
    photo = jpeg(pages[0])
    for data in (
        b"",
        photo[: len(photo) // 3],
        b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
        b"%PDF-1.7\n" + b"garbage" * 100,
        pdf[: len(pdf) // 2],
        b"RIFF\0\0\0\0WEBPVP8 ",
    ):
        with pytest.raises(ScanRejected) as refused:
            prepare_scan(data, LIMITS)
        assert refused.value.status == 422


def test_limits_come_from_the_settings() -> None:
    settings = load(
        PaperSettings,
        {"TUTORPULSE_PAPER_MAX_FILE_BYTES": "2048", "TUTORPULSE_PAPER_DPI": "100"},
    )
    limits = ScanLimits.from_settings(settings)
    assert (limits.max_file_bytes, limits.dpi, limits.max_pages) == (2048, 100, 20)
    with pytest.raises(ScanRejected) as refused:
        prepare_scan(b"%PDF-" + b"x" * 4096, limits)
    assert refused.value.status == 413
