"""Printable worksheets: one PDF (A4) for any number of students' sheets.

Each sheet starts on a new page. Every page of a sheet carries, in its top right corner, the
sheet's QR code (``TP1:<code>``, error correction Q, drawn as vectors with its quiet zone) and
the short code printed under it, so any one page photographed on its own still finds its way;
beside it the title, the student, the centre and the heading (the session or the due date); at
the foot "page i of n" of the sheet. Questions are numbered with their points, multiple choice
options are listed with a box to tick, and each question leaves ruled space to answer in.

Text is set in DejaVu Sans (vendored in ``fonts/`` from matplotlib's wheel, with its licence),
so names and questions in other scripts print instead of failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from shared.events.exercises import Question
from shared.paper.codes import qr_text, short_code
from shared.paper.fonts import BOLD_FONT, REGULAR_FONT

FAMILY = "DejaVu"

PAGE_WIDTH, PAGE_HEIGHT = 210.0, 297.0
"""A4, in millimetres."""
MARGIN = 15.0
QR_SIZE = 34.0
"""The QR code's side with its quiet zone, in millimetres (a module is about a millimetre)."""
QR_TOP = 10.0
BODY_TOP = QR_TOP + QR_SIZE + 8.0
FOOTER_HEIGHT = 14.0
ANSWER_LINES = 4
LINE_GAP = 8.0
INK = (20, 20, 20)
GREY = (110, 110, 110)
RULE = (185, 185, 185)


@dataclass(frozen=True)
class WorksheetSheet:
    """One student's sheet for one piece of work."""

    code: str
    title: str
    student_name: str
    centre_name: str
    heading: str
    """When it is for, e.g. "Session Thu 3 Dec 2026 16:00" or "Homework due Fri 4 Dec"."""
    instructions: str | None
    questions: Sequence[Question]


def render_worksheets(sheets: Sequence[WorksheetSheet]) -> bytes:
    """One PDF with every sheet, each starting on a new page (an empty PDF page when there are
    no sheets is not made: at least one sheet is needed)."""
    if not sheets:
        raise ValueError("no worksheets to print")
    # First pass: how many pages each sheet takes (for "page i of n"); the layout does not
    # depend on the footer, so the second pass breaks pages in the same places.
    counting = _Document(page_counts=None)
    counts = [counting.sheet(sheet) for sheet in sheets]
    document = _Document(page_counts=counts)
    for sheet in sheets:
        document.sheet(sheet)
    return bytes(document.output())


class _Document(FPDF):
    def __init__(self, page_counts: list[int] | None) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.add_font(FAMILY, "", str(REGULAR_FONT))
        self.add_font(FAMILY, "B", str(BOLD_FONT))
        self.set_margins(MARGIN, BODY_TOP, MARGIN)
        self.set_auto_page_break(auto=True, margin=MARGIN + FOOTER_HEIGHT)
        self.set_creator("tutorpulse")
        self._counts = page_counts
        self._index = -1
        self._current: WorksheetSheet | None = None
        self._next: WorksheetSheet | None = None
        self._first_page = 0
        self._qr_cache: dict[str, list[list[bool]]] = {}

    def sheet(self, sheet: WorksheetSheet) -> int:
        """Lays out one sheet from a new page; the number of pages it took."""
        # The previous page's footer is drawn by add_page before the new page's header, which
        # is where the new sheet begins.
        self._next = sheet
        self.add_page()
        if self._index == 0:
            self.set_title(sheet.title)
        if sheet.instructions:
            self._text(sheet.instructions, size=10, colour=GREY)
            self.ln(3)
        for number, question in enumerate(sheet.questions, start=1):
            self._question(number, question)
        return self.page - self._first_page + 1

    # --- on every page ----------------------------------------------------------------------

    def header(self) -> None:
        if self._next is not None:
            self._index += 1
            self._current, self._next = self._next, None
            self._first_page = self.page
        sheet = self._current
        if sheet is None:
            return
        left = PAGE_WIDTH - MARGIN - QR_SIZE
        self._draw_qr(sheet.code, left, QR_TOP, QR_SIZE)
        self.set_xy(left - 2, QR_TOP + QR_SIZE)
        self.set_font(FAMILY, "B", 9)
        self.set_text_color(*INK)
        self.cell(QR_SIZE + 4, 5, short_code(sheet.code), align="C")
        width = left - MARGIN - 6
        self.set_xy(MARGIN, QR_TOP + 2)
        self._line(sheet.title, width, style="B", size=15, smallest=11, height=8)
        self._line(sheet.student_name, width, style="", size=11, smallest=9, height=6)
        self.set_text_color(*GREY)
        self._line(f"{sheet.centre_name} · {sheet.heading}", width, style="", size=9, height=5)
        self.set_text_color(*INK)
        self.set_draw_color(*RULE)
        self.line(MARGIN, BODY_TOP - 3, PAGE_WIDTH - MARGIN, BODY_TOP - 3)
        self.set_xy(MARGIN, BODY_TOP)

    def footer(self) -> None:
        sheet = self._current
        if sheet is None:
            return
        page = self.page - self._first_page + 1
        total = self._counts[self._index] if self._counts is not None else page
        self.set_xy(MARGIN, PAGE_HEIGHT - MARGIN - 5)
        self.set_font(FAMILY, "", 8)
        self.set_text_color(*GREY)
        self.cell(
            PAGE_WIDTH - 2 * MARGIN,
            5,
            f"{short_code(sheet.code)}   ·   page {page} of {total}",
            align="R",
        )
        self.set_text_color(*INK)

    # --- the content ------------------------------------------------------------------------

    def _question(self, number: int, question: Question) -> None:
        points = f"({question.points} point{'s' if question.points != 1 else ''})"
        answer_height = (
            len(question.options) * 7 + 4 if question.options else ANSWER_LINES * LINE_GAP + 2
        )
        # A question starts on a new page when its prompt's first lines and its answer space
        # would not fit on this one.
        if self.will_page_break(min(answer_height, 40) + 14):
            self.add_page()
        self.set_font(FAMILY, "B", 11)
        self.cell(9, 6, f"{number}.")
        self.set_font(FAMILY, "", 11)
        self.multi_cell(0, 6, question.prompt, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FAMILY, "", 8)
        self.set_text_color(*GREY)
        self.cell(0, 4, points, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*INK)
        if question.options:
            self.set_font(FAMILY, "", 10)
            for index, option in enumerate(question.options):
                if self.will_page_break(7):
                    self.add_page()
                letter = chr(ord("A") + index) if index < 26 else str(index + 1)
                top = self.get_y()
                self.set_draw_color(*INK)
                self.rect(MARGIN + 9, top + 1.2, 3.6, 3.6)
                self.set_x(MARGIN + 15)
                self.multi_cell(
                    0, 6, f"{letter}.  {option}", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
                )
                self.ln(1)
        else:
            self.set_draw_color(*RULE)
            for _ in range(ANSWER_LINES):
                if self.will_page_break(LINE_GAP):
                    self.add_page()
                self.ln(LINE_GAP)
                self.line(MARGIN + 9, self.get_y(), PAGE_WIDTH - MARGIN, self.get_y())
        self.ln(6)

    def _line(
        self,
        text: str,
        width: float,
        *,
        style: str,
        size: float,
        height: float,
        smallest: float | None = None,
    ) -> None:
        """One line of the header: in a smaller size (down to ``smallest``) when it is too long,
        cut short with an ellipsis when even that is."""
        text = " ".join(text.split())[:300]
        self.set_font(FAMILY, style, size)
        while smallest is not None and size > smallest and self.get_string_width(text) > width:
            size -= 0.5
            self.set_font(FAMILY, style, size)
        if self.get_string_width(text) > width:
            while text and self.get_string_width(text + "…") > width:
                text = text[:-1]
            text = text.rstrip() + "…"
        self.cell(width, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def _text(self, text: str, *, size: float, colour: tuple[int, int, int]) -> None:
        self.set_font(FAMILY, "", size)
        self.set_text_color(*colour)
        self.multi_cell(0, size * 0.5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(*INK)

    def _draw_qr(self, code: str, x: float, y: float, size: float) -> None:
        matrix = self._qr_cache.get(code)
        if matrix is None:
            qr = segno.make_qr(qr_text(code), error="q", mode="alphanumeric", boost_error=False)
            matrix = [[bool(cell) for cell in row] for row in qr.matrix]
            self._qr_cache[code] = matrix
        border = 4
        module = size / (len(matrix) + 2 * border)
        self.set_fill_color(255, 255, 255)
        self.rect(x, y, size, size, style="F")
        self.set_fill_color(0, 0, 0)
        for row_index, row in enumerate(matrix):
            column = 0
            while column < len(row):
                if not row[column]:
                    column += 1
                    continue
                run = column
                while run < len(row) and row[run]:
                    run += 1
                self.rect(
                    x + (border + column) * module,
                    y + (border + row_index) * module,
                    (run - column) * module,
                    module,
                    style="F",
                )
                column = run
