"""The stored form of read-model documents: JSON with every object's keys in sorted order,
written fast.

Every struct a document can hold declares its fields in the sorted order of their JSON names,
so :func:`~shared.readmodels.documents.encode` writes them as declared (msgspec's
``deterministic`` order) instead of sorting them on every write, and the bytes are those that
sorting writes: stores, document versions and merge patches depend on them. A field declared in
the wrong place fails here, naming its struct.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect
import msgspec.structs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from shared.readmodels.documents import KINDS, Kind, Record, as_json, encode
from shared.readmodels.documents.base import fields_out_of_order
from shared.readmodels.projector import apply_all
from tests.readside import read_store
from tests.support.paper_history import paper_day

DOCUMENTS = "shared.readmodels.documents"

SORTED = msgspec.json.Encoder(order="sorted")
"""How documents were written before their fields were declared in order: the reference."""

WRITTEN_SORTED = {"paper": {"Stroke", "Stamp", "TextNote", "RubricScore"}}
"""Kinds whose documents hold structs declared elsewhere (the ink and rubric of
``shared.events.paper``, where ``Stroke``'s tag ``type`` sorts between its fields): written in
msgspec's ``sorted`` order, and these the structs that make them so."""


def _structs(info: msgspec.inspect.Type) -> Iterator[msgspec.inspect.StructType]:
    """Every struct type ``info`` can hold, itself included, each once."""
    seen: set[type] = set()
    stack = [info]
    while stack:
        item = stack.pop()
        if isinstance(item, msgspec.inspect.StructType):
            if item.cls in seen:
                continue
            seen.add(item.cls)
            yield item
            stack.extend(f.type for f in item.fields)
        elif isinstance(item, msgspec.inspect.Metadata):
            stack.append(item.type)
        elif isinstance(item, msgspec.inspect.UnionType):
            stack.extend(item.types)
        elif isinstance(item, msgspec.inspect.DictType):
            stack.extend((item.key_type, item.value_type))
        elif isinstance(item, msgspec.inspect.TupleType):
            stack.extend(item.item_types)
        elif hasattr(item, "item_type"):
            stack.append(item.item_type)


def _documents_structs() -> dict[type, msgspec.inspect.StructType]:
    return {
        s.cls: s
        for kind in KINDS.values()
        for s in _structs(msgspec.inspect.type_info(kind.type))
        if s.cls.__module__.startswith(DOCUMENTS)
    }


def test_every_struct_a_document_holds_declares_its_fields_in_the_order_they_are_stored() -> None:
    structs = _documents_structs()
    assert len(structs) > 40  # every kind's struct and those inside them
    misplaced = []
    for cls, info in structs.items():
        if info.array_like:  # stored as a JSON array, in the order declared
            continue
        names = [f.encode_name for f in info.fields]
        for before, after in itertools.pairwise(names):
            if after < before:
                misplaced.append(
                    f"{cls.__module__}.{cls.__qualname__}: {after!r} is declared after "
                    f"{before!r}; declare fields in the sorted order of their JSON names"
                )
        assert info.tag_field is None, f"{cls.__qualname__}: a tag would be written first"
    assert misplaced == []


def test_only_documents_holding_structs_declared_elsewhere_are_sorted_as_they_are_written() -> None:
    for name, kind in KINDS.items():
        culprits = {finding.split(":")[0] for finding in fields_out_of_order(kind.type)}
        assert culprits == WRITTEN_SORTED.get(name, set()), name


def _sorted_json(value: Any) -> str:
    """``value`` (built-in types) as JSON, keys in the order they come."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _same_as_sorted(doc: Record, stored: str | None = None) -> None:
    reference = SORTED.encode(doc).decode()
    assert encode(doc) == reference, type(doc).__qualname__
    assert stored is None or stored == reference
    assert _sorted_json(as_json(doc)) == _sorted_json(msgspec.to_builtins(doc, order="sorted"))


def test_projected_documents_are_stored_as_sorting_writes_them(tmp_path: Path) -> None:
    """The demo centre's day with paper work after it (a scan marked in ink, scored and handed
    back, one routed by its typed code, one nobody could route): every document written reads
    back and encodes to the bytes stored, which are those msgspec's sorting writes."""
    store = read_store(tmp_path)
    apply_all(store, paper_day().history)
    rows = store.dump(store.generation())["rm_docs"]
    store.close()
    kinds = {kind for kind, *_ in rows}
    assert kinds >= {
        "centre",
        "person",
        "session",
        "tutor",
        "student",
        "student_sessions",
        "student_alerts",
        "homework",
        "exercise",
        "catch_up",
        "open_catch_ups",
        "help_requests",
        "help_index",
        "inbox",
        "paper",
    }
    for kind, _key, _centre, _version, stored in rows:
        _same_as_sorted(KINDS[kind].decode(stored), stored)


_STRUCTS: dict[type, st.SearchStrategy[Any]] = {}


def _values(info: msgspec.inspect.Type) -> st.SearchStrategy[Any]:
    """Any value of a type documents hold (constraints left out: encoding checks none)."""
    match info:
        case msgspec.inspect.Metadata():
            return _values(info.type)
        case msgspec.inspect.StructType():
            if info.cls not in _STRUCTS:
                unset = {f.name for f in msgspec.structs.fields(info.cls) if f.default is UNSET}
                fields = {
                    f.name: st.one_of(st.just(UNSET), _values(f.type))
                    if f.name in unset
                    else _values(f.type)
                    for f in info.fields
                }
                _STRUCTS[info.cls] = st.builds(info.cls, **fields)
            return _STRUCTS[info.cls]  # UNSET (not written) too where it is the default
        case msgspec.inspect.UnionType():
            return st.one_of([_values(t) for t in info.types])
        case msgspec.inspect.DictType():
            return st.dictionaries(_values(info.key_type), _values(info.value_type), max_size=3)
        case msgspec.inspect.ListType():
            return st.lists(_values(info.item_type), max_size=3)
        case msgspec.inspect.VarTupleType():
            return st.lists(_values(info.item_type), max_size=3).map(tuple)
        case msgspec.inspect.TupleType():
            return st.tuples(*(_values(t) for t in info.item_types))
        case msgspec.inspect.EnumType():
            return st.sampled_from(list(info.cls))
        case msgspec.inspect.StrType():
            return st.text(max_size=6)
        case msgspec.inspect.IntType():
            return st.integers(min_value=-(2**53), max_value=2**53)
        case msgspec.inspect.FloatType():
            return st.floats(allow_nan=False, allow_infinity=False)
        case msgspec.inspect.BoolType():
            return st.booleans()
        case msgspec.inspect.NoneType():
            return st.none()
    raise AssertionError(f"documents hold no {info!r}")


@pytest.mark.parametrize("kind", KINDS.values(), ids=list(KINDS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_document_is_stored_as_sorting_writes_it(kind: Kind[Any], data: st.DataObject) -> None:
    """Every field set or not (``UNSET``), dicts with keys in any order, any text."""
    doc = data.draw(_values(msgspec.inspect.type_info(kind.type)))
    _same_as_sorted(doc)
