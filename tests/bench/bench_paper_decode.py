"""``make bench``, paper: how fast a sheet code is read from phone photos of worksheets, beside
raw zxing-cpp reading a clean, upright QR code image in the same run.

1. Baseline: ``zxingcpp.read_barcodes`` on the sheet's QR code as segno draws it (upright,
   black on white, its quiet zone, nothing else in the picture).
2. ``shared.paper.scans.find_code`` on phone photos of a printed worksheet (rendered, then
   turned, tilted in perspective, blurred, grainy, dim and JPEG-compressed by
   ``tests.support.paper_photos``), 2 megapixels and 12 megapixels.
3. What an upload costs a page before it is stored: ``prepare_scan`` (EXIF, re-encoding)
   then ``find_code``.

In-process and single-threaded; runs on its own as ``python -m tests.bench.bench_paper_decode``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import segno
import zxingcpp
from PIL import Image

from shared.paper.codes import qr_text
from shared.paper.scans import ScanLimits, find_code, prepare_scan
from tests.support.paper_photos import a_code, phone_photo, rasterise, worksheet_pdf

RAW = 400
PHOTOS = 40
LARGE = 8

DISTORTIONS: list[dict[str, Any]] = [
    {"angle": 4, "blur": 1.2, "noise": 10, "quality": 70},
    {"turn": 90, "tilt": 0.2, "light": 0.6},
    {"turn": 180, "angle": -3, "noise": 20, "quality": 50},
    {"turn": 270, "tilt": 0.15, "blur": 1.5, "light": 0.5, "table": (30, 28, 26)},
]


def _rate(count: int, action: Callable[[int], bool]) -> tuple[float, int]:
    """Runs per second, and how many found the code."""
    found = 0
    started = time.perf_counter()
    for i in range(count):
        found += action(i)
    return count / (time.perf_counter() - started), found


def run() -> list[str]:
    code = a_code()
    page = rasterise(worksheet_pdf(code), dpi=200)[0]
    drawn = io.BytesIO()
    segno.make_qr(qr_text(code), error="q", mode="alphanumeric").save(drawn, kind="png", scale=8)
    clean = Image.open(drawn).convert("L")
    baseline, raw_found = _rate(
        RAW, lambda _: any(b.text == qr_text(code) for b in zxingcpp.read_barcodes(clean))
    )

    limits = ScanLimits()
    photos = [phone_photo(page, **d) for d in DISTORTIONS]
    kept = [prepare_scan(photo, limits)[0] for photo in photos]
    large_photo = phone_photo(page, size=(3000, 4000), angle=2, tilt=0.1, blur=1.2, noise=10)
    large = prepare_scan(large_photo, limits)[0]

    decoded, decoded_found = _rate(PHOTOS, lambda i: find_code(kept[i % len(kept)]) == code)
    large_rate, large_found = _rate(LARGE, lambda _: find_code(large) == code)
    uploaded, uploaded_found = _rate(
        PHOTOS,
        lambda i: find_code(prepare_scan(photos[i % len(photos)], limits)[0]) == code,
    )
    rows = [
        (
            "raw zxing-cpp read_barcodes: the sheet's QR code alone, clean and upright "
            f"({clean.width}x{clean.height}) (baseline)",
            RAW,
            baseline,
            raw_found,
        ),
        (
            "QR decode of a phone photo of a worksheet: find_code, 1600x2000 JPEG "
            "(turned, tilted, blurred, grainy, dim)",
            PHOTOS,
            decoded,
            decoded_found,
        ),
        (
            "QR decode of a 12-megapixel phone photo of a worksheet: find_code, 3000x4000 JPEG",
            LARGE,
            large_rate,
            large_found,
        ),
        (
            "a photo handed in: prepare_scan (upright, metadata dropped, re-encoded) + "
            "find_code, 1600x2000",
            PHOTOS,
            uploaded,
            uploaded_found,
        ),
    ]
    out = [
        "",
        "## Paper: reading sheet codes",
        "",
        "In-process, one thread; photos made by tests/support/paper_photos.py from a rendered "
        "worksheet.",
        "",
        "| what | count | found | pages/s | vs. raw zxing-cpp |",
        "|---|---:|---:|---:|---:|",
    ]
    for index, (name, count, rate, found) in enumerate(rows):
        ratio = "baseline" if index == 0 else f"{rate / baseline:.3f}x"
        out.append(f"| {name} | {count} | {found} | {rate:,.1f} | {ratio} |")
    out.append("")
    return out


if __name__ == "__main__":
    print("\n".join(run()))
