"""Photograph a printed worksheet as a phone would, for trying paper work by hand:

    python -m tests.support.photograph worksheets.pdf scan.jpg [--page N]

writes page N (from 0) of the PDF as a tilted, slightly blurred JPEG on a desk."""

from __future__ import annotations

import argparse
from pathlib import Path

from tests.support.paper_photos import phone_photo, rasterise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf", type=Path, help="a PDF of worksheets")
    parser.add_argument("photo", type=Path, help="where the JPEG goes")
    parser.add_argument("--page", type=int, default=0, help="which page (from 0)")
    arguments = parser.parse_args()
    pages = rasterise(arguments.pdf.read_bytes())
    if not 0 <= arguments.page < len(pages):
        parser.error(f"the PDF has pages 0 to {len(pages) - 1}")
    photo = phone_photo(pages[arguments.page], angle=6.0, tilt=0.08, blur=0.8, noise=4.0)
    arguments.photo.write_bytes(photo)
    print(f"{arguments.photo}: page {arguments.page} of {arguments.pdf}, photographed")


if __name__ == "__main__":
    main()
