"""Printed worksheets: one PDF for a whole session, each student's sheet from a new page, every
page with the sheet's QR code, its short code and "page i of n"; questions with room to answer."""

from __future__ import annotations

import pypdfium2  # type: ignore[import-untyped]
import pytest

from shared.events.exercises import Question
from shared.paper.codes import short_code
from shared.paper.scans import PNG, PreparedPage, find_code
from shared.paper.worksheet import WorksheetSheet, render_worksheets
from tests.support.paper_photos import a_code, png, questions, rasterise, sheet


def page_texts(pdf: bytes) -> list[str]:
    document = pypdfium2.PdfDocument(pdf)
    try:
        texts = []
        for index in range(len(document)):
            page = document[index]
            text = page.get_textpage()
            texts.append(str(text.get_text_range()).replace("\r\n", "\n"))
            text.close()
            page.close()
        return texts
    finally:
        document.close()


def test_one_pdf_holds_every_students_sheet_each_from_a_new_page() -> None:
    sheets = [
        sheet(a_code(), count=12, student="Ann Lee"),
        sheet(a_code(), count=2, student="Ben Okafor"),
        sheet(a_code(), count=12, student="Chloé Ñúñez"),
    ]
    pdf = render_worksheets(sheets)
    assert pdf.startswith(b"%PDF-")
    texts = page_texts(pdf)
    owners = [next(s for s in sheets if s.student_name in text) for text in texts]
    # each sheet's pages are together, in order, and say which of how many they are
    assert [s.student_name for s in dict.fromkeys(owners)] == [s.student_name for s in sheets]
    for one in sheets:
        pages = [text for text, owner in zip(texts, owners, strict=True) if owner is one]
        assert len(pages) >= 1
        for number, text in enumerate(pages, start=1):
            assert f"page {number} of {len(pages)}" in text
            assert short_code(one.code) in text
            assert one.title in text
    assert len([o for o in owners if o is sheets[1]]) == 1
    assert len([o for o in owners if o is sheets[0]]) >= 2
    # every page's QR code is the sheet's own
    for image, owner in zip(rasterise(pdf, dpi=150), owners, strict=True):
        data = png(image)
        assert find_code(PreparedPage(data, PNG, image.width, image.height, "")) == owner.code


def test_questions_are_numbered_with_their_points_and_options() -> None:
    one = sheet(a_code(), count=4)
    text = "\n".join(page_texts(render_worksheets([one])))
    for number, question in enumerate(questions(4), start=1):
        assert question.prompt in text
        assert f"{number}." in text
    assert "A. 12" in text and "D. none of these" in text
    assert "(2 points)" in text and "(1 point)" in text
    assert "Show your working." in text


def test_text_in_any_script_prints_without_failing() -> None:
    awkward = WorksheetSheet(
        code=a_code(),
        title="Ελληνικά и кириллица — ≥ π ∑ √2",
        student_name="李小龍 Zoë Łukasiewicz",
        centre_name="Centre « Étoile »",
        heading="Devoirs à rendre jeudi",
        instructions=None,
        questions=(
            Question(question_id="a", prompt="x² + y² = r²? 😀 " + "long words " * 80),
            Question(question_id="b", prompt="Choose", options=("Ω", "Ж", "∞")),
        ),
    )
    text = "\n".join(page_texts(render_worksheets([awkward])))
    assert "Ελληνικά" in text and "Łukasiewicz" in text and "x² + y² = r²" in text


def test_a_long_title_or_name_is_cut_short_beside_the_qr_code() -> None:
    long = WorksheetSheet(
        code=a_code(),
        title="Fractions, decimals and percentages " * 6,
        student_name="Maximilian Bartholomew-Featherstonehaugh " * 3,
        centre_name="Northside Tutoring",
        heading="Homework due Fri 4 Dec 2026",
        instructions=None,
        questions=questions(2),
    )
    pdf = render_worksheets([long])
    first = page_texts(pdf)[0]
    lines = first.split("\n")
    assert any(line.startswith("Fractions, decimals") and line.endswith("…") for line in lines)
    assert any(line.startswith("Maximilian") and line.endswith("…") for line in lines)
    assert "Northside Tutoring · Homework due Fri 4 Dec 2026" in first
    assert questions(2)[0].prompt in first


def test_there_is_nothing_to_print_without_a_sheet() -> None:
    with pytest.raises(ValueError):
        render_worksheets([])
