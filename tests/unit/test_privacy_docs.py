"""docs/privacy.md's list of personal data names real event types and their real fields."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from shared import events
from shared.privacy.fields import PERSONAL_FIELDS

DOCS = Path(__file__).resolve().parents[2] / "docs"


def personal_data_rows() -> list[tuple[list[str], list[str]]]:
    text = (DOCS / "privacy.md").read_text(encoding="utf-8")
    section = text.split("## Personal data in the events", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        event_cell, fields_cell = line.split("|")[1:3]
        rows.append(
            (re.findall(r"`(\w+)`", event_cell), re.findall(r"`([\w.\[\]]+)`", fields_cell))
        )
    return rows


def test_each_event_and_field_listed_as_personal_data_exists() -> None:
    rows = personal_data_rows()
    assert len(rows) >= 15
    for names, fields in rows:
        assert names and fields
        for name in names:
            encoded = {f.encode_name for f in msgspec.structs.fields(events.event_type(name))}
            for field in fields:
                top = field.split(".")[0].removesuffix("[]")
                assert top in encoded, f"{name} has no field {top}"


def test_the_list_names_exactly_the_event_types_whose_texts_are_sealed() -> None:
    listed = {name: fields for names, fields in personal_data_rows() for name in names}
    assert set(listed) == set(PERSONAL_FIELDS)
    for name, personal in PERSONAL_FIELDS.items():
        tops = {path.split(".")[0] for path in personal.paths}
        assert tops == {field.split(".")[0] for field in listed[name]}, name
