"""Sheet codes: opaque, signed, typed back in by people, found in QR codes; and the paper key."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.events.paper import WorkKind
from shared.paper.codes import (
    ALPHABET,
    SheetCodes,
    code_in_qr,
    is_code,
    parse_short_code,
    qr_text,
    sheet_aggregate_id,
    short_code,
)
from shared.paper.settings import DEV_PAPER_KEY, PaperSettings
from shared.settings import SettingsError, load

KEY = b"k" * 32
CENTRE = "centre-a"
WORK, STUDENT = UUID("11111111-1111-4111-8111-111111111111"), uuid4()


def test_a_code_is_sixteen_crockford_characters_that_name_no_one() -> None:
    code = SheetCodes(KEY).mint(CENTRE, WorkKind.EXERCISE, WORK, STUDENT)
    assert is_code(code) and len(code) == 16 and set(code) <= set(ALPHABET)
    for name in (CENTRE, str(WORK), str(STUDENT), WORK.hex[:8], STUDENT.hex[:8]):
        assert name.upper() not in code


def test_the_same_sheet_gets_the_same_code_and_every_other_a_different_one() -> None:
    codes = SheetCodes(KEY)
    code = codes.mint(CENTRE, WorkKind.EXERCISE, WORK, STUDENT)
    assert codes.mint(CENTRE, WorkKind.EXERCISE, WORK, STUDENT) == code
    others = {
        codes.mint("centre-b", WorkKind.EXERCISE, WORK, STUDENT),
        codes.mint(CENTRE, WorkKind.HOMEWORK, WORK, STUDENT),
        codes.mint(CENTRE, WorkKind.EXERCISE, uuid4(), STUDENT),
        codes.mint(CENTRE, WorkKind.EXERCISE, WORK, uuid4()),
    }
    assert code not in others and len(others) == 4


def test_a_code_minted_with_another_key_is_not_accepted() -> None:
    ours, forger = SheetCodes(KEY), SheetCodes(b"f" * 32)
    forged = forger.mint(CENTRE, WorkKind.EXERCISE, WORK, STUDENT)
    assert forged != ours.mint(CENTRE, WorkKind.EXERCISE, WORK, STUDENT)
    assert not ours.verify(forged, CENTRE, WorkKind.EXERCISE, WORK, STUDENT)
    assert sheet_aggregate_id(forged) != sheet_aggregate_id(
        ours.mint(CENTRE, WorkKind.EXERCISE, WORK, STUDENT)
    )


def test_a_code_with_one_character_changed_is_not_accepted() -> None:
    codes = SheetCodes(KEY)
    code = codes.mint(CENTRE, WorkKind.EXERCISE, WORK, STUDENT)
    assert codes.verify(code, CENTRE, WorkKind.EXERCISE, WORK, STUDENT)
    for position in range(len(code)):
        for replacement in ALPHABET:
            if replacement == code[position]:
                continue
            changed = code[:position] + replacement + code[position + 1 :]
            assert not codes.verify(changed, CENTRE, WorkKind.EXERCISE, WORK, STUDENT)
            assert sheet_aggregate_id(changed) != sheet_aggregate_id(code)
    # a code that names another student's sheet does not verify as this one
    assert not codes.verify(code, CENTRE, WorkKind.EXERCISE, WORK, uuid4())
    assert not codes.verify("not a code", CENTRE, WorkKind.EXERCISE, WORK, STUDENT)


def test_the_aggregate_id_is_fixed_by_the_code() -> None:
    code = SheetCodes(KEY).mint(CENTRE, WorkKind.HOMEWORK, WORK, STUDENT)
    assert sheet_aggregate_id(code) == sheet_aggregate_id(code)
    assert sheet_aggregate_id(code).version == 5
    with pytest.raises(ValueError):
        sheet_aggregate_id(code.lower())


codes_strategy = st.text(alphabet=ALPHABET, min_size=16, max_size=16)


@given(codes_strategy)
def test_the_short_code_printed_under_the_qr_code_reads_back(code: str) -> None:
    printed = short_code(code)
    assert len(printed) == 19 and printed.count("-") == 3
    assert parse_short_code(printed) == code
    assert parse_short_code(printed.lower()) == code
    assert parse_short_code(printed.replace("-", " ")) == code
    assert parse_short_code(f"  {printed.replace('-', '')}  ") == code
    typed = printed.replace("0", "o").replace("1", "l")
    assert parse_short_code(typed) == code
    assert parse_short_code(printed.replace("1", "I")) == code


def test_what_a_person_types_is_refused_unless_it_is_sixteen_valid_characters() -> None:
    code = SheetCodes(KEY).mint(CENTRE, WorkKind.EXERCISE, WORK, STUDENT)
    assert parse_short_code(code[:15]) is None
    assert parse_short_code(code + "0") is None
    assert parse_short_code("") is None
    assert parse_short_code("UUUU-UUUU-UUUU-UUUU") is None  # U is not in the alphabet
    assert parse_short_code("ABCD-EFGH-JKMN-PQR!") is None
    assert parse_short_code("A" * 1000) is None
    assert parse_short_code(qr_text(code)) == code


@given(codes_strategy)
def test_the_qr_text_holds_the_code_in_alphanumeric_mode(code: str) -> None:
    text = qr_text(code)
    assert text == "TP1:" + code
    assert set(text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
    assert code_in_qr(text) == code
    assert code_in_qr(text.lower()) == code


def test_other_qr_codes_are_not_sheet_codes() -> None:
    for text in (
        "https://example.org/TP1:ABCDEFGHJKMNPQRS",
        "AE-1234-5678-9012",
        "TP1:ABCDEFGHJKMNPQR",
        "TP1:ABCDEFGHJKMNPQRSU",
        "TP2:ABCDEFGHJKMNPQRS",
        "TP1:ABCDEFGHJKMNPQRU",
        "",
    ):
        assert code_in_qr(text) is None
    with pytest.raises(ValueError):
        qr_text("ABC")


def test_the_paper_key_is_required_outside_development_mode() -> None:
    with pytest.raises(SettingsError, match="TUTORPULSE_PAPER_KEY is not set"):
        load(PaperSettings, {}).signing_key()
    assert load(PaperSettings, {"TUTORPULSE_DEV_MODE": "1"}).signing_key() == (
        DEV_PAPER_KEY.encode()
    )
    with pytest.raises(SettingsError, match="at least 32"):
        load(PaperSettings, {"TUTORPULSE_PAPER_KEY": "short"}).signing_key()
    key = "x" * 40
    settings = load(PaperSettings, {"TUTORPULSE_PAPER_KEY": key, "TUTORPULSE_DEV_MODE": "1"})
    assert settings.signing_key() == key.encode()


def test_the_scan_limits_are_read_and_bounded() -> None:
    settings = load(PaperSettings, {})
    assert (settings.max_file_bytes, settings.max_files, settings.max_pixels, settings.dpi) == (
        10 * 1024 * 1024,
        10,
        40_000_000,
        150,
    )
    assert load(PaperSettings, {"TUTORPULSE_PAPER_DPI": "200"}).dpi == 200
    with pytest.raises(SettingsError, match="TUTORPULSE_PAPER_DPI must be at most 600"):
        load(PaperSettings, {"TUTORPULSE_PAPER_DPI": "6000"})
    with pytest.raises(SettingsError, match="TUTORPULSE_PAPER_MAX_FILES"):
        load(PaperSettings, {"TUTORPULSE_PAPER_MAX_FILES": "0"})
