"""DejaVu Sans, vendored from matplotlib's wheel (``LICENSE_DEJAVU`` beside it): worksheets
and the ink's text notes are set in it, so any script prints."""

from __future__ import annotations

from pathlib import Path

FONTS = Path(__file__).resolve().parent
REGULAR_FONT = FONTS / "DejaVuSans.ttf"
BOLD_FONT = FONTS / "DejaVuSans-Bold.ttf"
