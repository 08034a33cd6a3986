"""Sheet codes: what a printed worksheet's QR code (and the short code under it) carries.

A code is 16 characters of Crockford base32: the first 80 bits of an HMAC-SHA256, under the
deployment's paper key, of the centre, the kind of work, the work and the student. It names
no one and says nothing by itself; it cannot be made without the key, so a sheet cannot be
forged into another student's record. Printing a sheet registers its code (``WorksheetPrinted``
on the ``Worksheet`` aggregate :func:`sheet_aggregate_id` names); a scan is routed by looking
that registration up, and :meth:`SheetCodes.verify` checks a code against what it should name.

People type the short code (``ABCD-EFGH-JKMN-PQRS``) when a QR code cannot be read:
:func:`parse_short_code` forgives case, spaces, dashes and the letters Crockford's alphabet
leaves out because they look like digits (O is 0; I and L are 1).
"""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID, uuid5

from shared.events.paper import WorkKind

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32: no I, L, O or U."""
CODE_LENGTH = 16
"""Characters: 80 bits."""
QR_PREFIX = "TP1:"
"""Marks a tutorpulse sheet code (version 1) in a QR code; every character of the text is in
the QR alphanumeric set, so the symbol stays small."""
SHEET_NAMESPACE = UUID("4f0c5d0e-8a0b-5c55-9d4e-2b1f0a7c3e91")
"""The namespace of the ``Worksheet`` aggregates' ids (fixed: changing it loses every sheet)."""

_VALUE = {character: index for index, character in enumerate(ALPHABET)}
_TYPED = {"O": "0", "I": "1", "L": "1"}
_SEPARATORS = frozenset(" -_.\t\n\r\u00a0\u2010\u2011\u2012\u2013\u2014")


class SheetCodes:
    """Mints and checks sheet codes with one key (``PaperSettings.signing_key()``)."""

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a sheet code key must not be empty")
        self._key = key

    def mint(self, centre_id: str, work_kind: WorkKind, work_id: UUID, student_id: UUID) -> str:
        """The code of ``student_id``'s sheet for ``work_id`` in ``centre_id``: the same
        arguments give the same code (printing again gives the same sheet)."""
        message = "\x1f".join(
            ("tutorpulse-sheet-v1", centre_id, str(work_kind), str(work_id), str(student_id))
        ).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return _base32(digest[: CODE_LENGTH * 5 // 8])

    def verify(
        self, code: str, centre_id: str, work_kind: WorkKind, work_id: UUID, student_id: UUID
    ) -> bool:
        """Whether ``code`` is the one this key mints for these (in constant time)."""
        expected = self.mint(centre_id, work_kind, work_id, student_id)
        return hmac.compare_digest(expected.encode(), code.encode("utf-8", "replace"))


def is_code(text: str) -> bool:
    """Exactly 16 characters of the alphabet (upper case, no separators)."""
    return len(text) == CODE_LENGTH and all(character in _VALUE for character in text)


def sheet_aggregate_id(code: str) -> UUID:
    """The id of the ``Worksheet`` aggregate that registers ``code``."""
    _require(code)
    return uuid5(SHEET_NAMESPACE, code)


def short_code(code: str) -> str:
    """What is printed under the QR code: ``ABCD-EFGH-JKMN-PQRS``."""
    _require(code)
    return "-".join(code[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def parse_short_code(text: str) -> str | None:
    """The code a person typed (any case, with spaces or dashes, O for 0, I or L for 1, or the
    whole text of the QR code); None unless that leaves exactly 16 characters of the
    alphabet."""
    if len(text) > 64:
        return None
    cleaned = text.strip()
    if cleaned.upper().startswith(QR_PREFIX):
        cleaned = cleaned[len(QR_PREFIX) :]
    characters = [
        _TYPED.get(character, character)
        for character in cleaned.upper()
        if character not in _SEPARATORS
    ]
    code = "".join(characters)
    return code if is_code(code) else None


def qr_text(code: str) -> str:
    """The text of a sheet's QR code."""
    _require(code)
    return QR_PREFIX + code


def code_in_qr(text: str) -> str | None:
    """The sheet code in a QR code's text; None for any other QR code (a web address, another
    system's code, a damaged read)."""
    cleaned = text.strip()
    if not cleaned.upper().startswith(QR_PREFIX):
        return None
    code = cleaned[len(QR_PREFIX) :].upper()
    return code if is_code(code) else None


def _base32(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    bits = len(data) * 8
    return "".join(ALPHABET[(number >> shift) & 31] for shift in range(bits - 5, -1, -5))


def _require(code: str) -> None:
    if not is_code(code):
        raise ValueError(f"not a sheet code: {code!r}")
