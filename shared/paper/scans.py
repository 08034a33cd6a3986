"""Scans of paper work: made safe to keep, and read for their sheet code.

:func:`prepare_scan` takes one uploaded file as it came (a phone photo or a PDF) and gives the
pages to keep: its type is told by its first bytes (JPEG, PNG, WebP or PDF; what the client
declared is not trusted), files too large are refused before they are opened, images whose
header claims more pixels than allowed (a decompression bomb) before they are decoded, PDFs with
too many pages or pages too large before they are rasterised. A photo is turned upright by its
EXIF orientation and re-encoded from its pixels alone (JPEG, quality 85), so no metadata (GPS
position, camera, time, thumbnail) survives; each PDF page is rasterised (pypdfium2) at the
configured DPI and kept as PNG.

:func:`find_code` reads the QR codes on a page (zxing-cpp) and gives the first sheet code
among them: first on a copy scaled down to a size a sheet's QR code is still readable at
(fast, whatever the camera's resolution), then with other binarisers and contrast stretched
(dim, uneven light), then at full size (a small QR code far away) as a last resort.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pypdfium2  # type: ignore[import-untyped]
import zxingcpp
from PIL import Image, ImageOps

from shared.paper.codes import code_in_qr
from shared.paper.settings import PaperSettings

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
PDF = "application/pdf"
PHOTO_QUALITY = 85
DECODE_SIDE = 1600
"""The longest side, in pixels, of the copy a page is first read at: a sheet's QR code (34 mm
on A4) is then still about 200 pixels across."""
_SECOND_SIDE = 2400
_QR_CODES = zxingcpp.barcode_formats_from_str("QRCode")

_PDFIUM = threading.Lock()
"""PDFium is not safe to call from two threads at once."""


class ScanRejected(ValueError):
    """An uploaded file that is not kept: ``status`` is the HTTP status to answer with (413 too
    large, 415 not a type accepted, 422 unreadable, too many pages or too many pixels),
    ``field`` the form field it came in."""

    def __init__(self, status: int, detail: str, field: str = "files") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class PreparedPage:
    """A page as it is kept: upright, without metadata."""

    data: bytes
    content_type: str
    width: int
    height: int
    sha256: str


@dataclass(frozen=True)
class ScanLimits:
    max_file_bytes: int = 10 * 1024 * 1024
    max_pages: int = 20
    """Pages one file may have (the upload's own limit across files is the caller's)."""
    max_pixels: int = 40_000_000
    dpi: int = 150

    @classmethod
    def from_settings(cls, settings: PaperSettings) -> ScanLimits:
        return cls(
            max_file_bytes=settings.max_file_bytes,
            max_pages=settings.max_pages,
            max_pixels=settings.max_pixels,
            dpi=settings.dpi,
        )


def sniff(data: bytes) -> str | None:
    """The content type told by the first bytes: JPEG, PNG, WebP or PDF; None for any other."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    if data[:1024].lstrip(b"\x00\t\n\f\r ").startswith(b"%PDF-"):
        return PDF
    return None


def prepare_scan(data: bytes, limits: ScanLimits) -> list[PreparedPage]:
    """The pages of one uploaded file, ready to keep; :class:`ScanRejected` for a file that
    cannot be (see the module's doc)."""
    if len(data) > limits.max_file_bytes:
        raise ScanRejected(
            413, f"the file has {len(data)} bytes; at most {limits.max_file_bytes} are accepted"
        )
    if not data:
        raise ScanRejected(422, "the file is empty")
    kind = sniff(data)
    if kind is None:
        raise ScanRejected(415, "only JPEG, PNG or WebP photos and PDF files are accepted")
    if kind == PDF:
        return _pdf_pages(data, limits)
    return [_photo(data, kind, limits)]


def find_code(page: PreparedPage) -> str | None:
    """The first sheet code in a QR code on ``page``; None when no QR code on it carries one
    (other QR codes are ignored)."""
    for image, binarizer in _attempts(page):
        code = _read(image, binarizer)
        if code is not None:
            return code
    return None


# --- reading QR codes ---------------------------------------------------------------------


def _attempts(page: PreparedPage) -> Iterator[tuple[Image.Image, zxingcpp.Binarizer]]:
    """What to read, cheapest first: the page scaled down (a JPEG decoded at a reduced scale
    straight away), with two binarisers and with its contrast stretched; then, for a large
    photo, at more pixels and at full size; then smaller still (a QR code filling a close-up
    photo is found more easily small)."""
    small = _grey(page.data, DECODE_SIDE)
    if small is None:
        return
    yield small, zxingcpp.Binarizer.LocalAverage
    yield small, zxingcpp.Binarizer.GlobalHistogram
    yield ImageOps.autocontrast(small, cutoff=1), zxingcpp.Binarizer.LocalAverage
    if max(page.width, page.height) > DECODE_SIDE:
        full = _grey(page.data, None)
        if full is not None:
            larger = _scaled(full, _SECOND_SIDE)
            if larger.size != small.size:
                yield larger, zxingcpp.Binarizer.LocalAverage
            if larger.size != full.size:
                yield full, zxingcpp.Binarizer.LocalAverage
    yield _scaled(small, 1000), zxingcpp.Binarizer.LocalAverage


def _grey(data: bytes, side: int | None) -> Image.Image | None:
    """The image in ``data`` in greys, its longest side at most ``side`` (None: full size)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if side is not None and max(image.size) > side:
                factor = side / max(image.size)
                # JPEG: decode at the smallest scale (1/2, 1/4, 1/8) still at least this size
                image.draft("L", (round(image.width * factor), round(image.height * factor)))
            grey = image.convert("L")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return grey if side is None else _scaled(grey, side)


def _read(image: Image.Image, binarizer: zxingcpp.Binarizer) -> str | None:
    found = zxingcpp.read_barcodes(
        image,
        formats=_QR_CODES,
        try_rotate=True,
        try_downscale=True,
        try_invert=False,
        binarizer=binarizer,
    )
    for barcode in found:
        code = code_in_qr(barcode.text)
        if code is not None:
            return code
    return None


def _scaled(image: Image.Image, side: int) -> Image.Image:
    longest = max(image.size)
    if longest <= side:
        return image
    factor = side / longest
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BOX)


# --- photos -------------------------------------------------------------------------------


def _photo(data: bytes, kind: str, limits: ScanLimits) -> PreparedPage:
    formats = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP"}
    image = _open_image(data, formats[kind], limits)
    try:
        upright = ImageOps.exif_transpose(image)
        pixels = _flattened(upright)
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ScanRejected(422, f"the image cannot be read: {error}") from None
    return _encoded(pixels, "JPEG")


def _open_image(data: bytes, expected: str, limits: ScanLimits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[expected])
            _check_pixels(image.width, image.height, limits)
            image.load()
    except ScanRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ScanRejected(422, "the image has too many pixels") from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise ScanRejected(422, f"the image cannot be read: {error}") from None
    return image


def _check_pixels(width: int, height: int, limits: ScanLimits) -> None:
    if width < 1 or height < 1:
        raise ScanRejected(422, "the image has no pixels")
    if width * height > limits.max_pixels:
        raise ScanRejected(
            422,
            f"a page of {width}x{height} pixels is too large; at most {limits.max_pixels} "
            "pixels are accepted",
        )


def _flattened(image: Image.Image) -> Image.Image:
    """The pixels alone, as RGB (transparency on white) or greyscale: a new image that carries
    none of the original's metadata (EXIF, ICC profile, XMP, comments)."""
    if image.mode in ("L", "1", "I", "I;16", "F"):
        grey = image.convert("L")
        return Image.frombytes("L", grey.size, grey.tobytes())
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    rgb = image.convert("RGB")
    return Image.frombytes("RGB", rgb.size, rgb.tobytes())


def _encoded(image: Image.Image, kind: str) -> PreparedPage:
    out = io.BytesIO()
    if kind == "JPEG":
        image.save(out, "JPEG", quality=PHOTO_QUALITY, optimize=False)
        content_type = JPEG
    else:
        image.save(out, "PNG", compress_level=6)
        content_type = PNG
    data = out.getvalue()
    return PreparedPage(
        data=data,
        content_type=content_type,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(data).hexdigest(),
    )


# --- PDFs ---------------------------------------------------------------------------------


def _pdf_pages(data: bytes, limits: ScanLimits) -> list[PreparedPage]:
    scale = limits.dpi / 72
    with _PDFIUM:
        try:
            document = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as error:
            raise ScanRejected(422, f"the PDF cannot be read: {error}") from None
        try:
            count = len(document)
            if count < 1:
                raise ScanRejected(422, "the PDF has no pages")
            if count > limits.max_pages:
                raise ScanRejected(
                    422, f"the PDF has {count} pages; at most {limits.max_pages} are accepted"
                )
            rendered = [_rasterised(document, index, scale, limits) for index in range(count)]
        finally:
            document.close()
    return [_encoded(_flattened(image), "PNG") for image in rendered]


def _rasterised(
    document: pypdfium2.PdfDocument, index: int, scale: float, limits: ScanLimits
) -> Image.Image:
    try:
        page = document[index]
        try:
            width, height = page.get_size()
            pixels_wide, pixels_high = math.ceil(width * scale), math.ceil(height * scale)
            _check_pixels(pixels_wide, pixels_high, limits)
            image: Image.Image = page.render(scale=scale, fill_color=(255, 255, 255, 255)).to_pil()
        finally:
            page.close()
    except pypdfium2.PdfiumError as error:
        raise ScanRejected(422, f"a page of the PDF cannot be read: {error}") from None
    return image
