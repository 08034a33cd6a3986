"""What every read-model document and row is made of."""

from __future__ import annotations

import itertools
from typing import Any, Final, Generic, Literal, TypeVar

import msgspec
import msgspec.inspect

Instant = str
"""A time as documents hold it: ISO 8601 in UTC, to the microsecond, with a ``Z``
(:func:`shared.readmodels.times.iso`), so that documents compare times as strings."""

JsonObject = dict[str, Any]
"""A JSON object as it goes out to a client."""


class Record(msgspec.Struct, kw_only=True, rename="camel"):
    """A part of a read-model document: camelCase keys in JSON.

    A field whose default is ``UNSET`` is written only once something set it (a help request
    gets ``resolvedAt`` when it is resolved), as the JSON of earlier releases had no key for it
    until then. Fields that documents written by earlier releases may lack have defaults.

    Fields are declared in the sorted order of their JSON names (``catchUps`` before
    ``courseId``), which is the order they are stored in: so :func:`encode` writes them as
    declared instead of sorting them each time (``tests/unit/test_stored_form.py`` checks
    every struct a document can hold)."""


class Document(Record, kw_only=True):
    """A whole read-model document, stored as JSON under a kind and a key."""

    def __getitem__(self, key: str) -> Any:
        """A top-level field of the document's JSON, by its camelCase name, as a copy (for
        operators' scripts and tests that read documents as stored; code uses the fields)."""
        return as_json(self)[key]


D = TypeVar("D", bound=Document)

Order = Literal["deterministic", "sorted"]

_ENCODERS: Final[dict[Order, msgspec.json.Encoder]] = {
    "deterministic": msgspec.json.Encoder(order="deterministic"),
    "sorted": msgspec.json.Encoder(order="sorted"),
}
_orders: dict[type, Order] = {}
_copier = msgspec.json.Encoder()
"""For copies, whose keys' order nobody sees: sorting every struct's fields made encoding a
large document 1.5 to 3 times slower."""


def fields_out_of_order(type_: Any) -> list[str]:
    """Where a value of ``type_`` would not come out of msgspec's ``deterministic`` order (dict
    keys sorted, a struct's fields in the order it declares them, a tag first) as it does out
    of ``sorted`` (every object's keys sorted): each struct ``type_`` can hold whose fields are
    not declared in the sorted order of their JSON names, or whose tag sorts after one of
    them, and anything whose keys are not known from its type (``Any``, dataclasses)."""
    found: list[str] = []
    seen: set[type] = set()

    def walk(info: msgspec.inspect.Type) -> None:
        if isinstance(info, msgspec.inspect.Metadata):
            walk(info.type)
        elif isinstance(info, msgspec.inspect.StructType):
            if info.cls in seen:
                return
            seen.add(info.cls)
            names = [f.encode_name for f in info.fields]
            if not info.array_like:
                if info.tag_field is not None and names and info.tag_field > names[0]:
                    found.append(
                        f"{info.cls.__qualname__}: its tag {info.tag_field!r} comes first, "
                        f"before {names[0]!r}"
                    )
                for before, after in itertools.pairwise(names):
                    if before > after:
                        found.append(f"{info.cls.__qualname__}: {after!r} after {before!r}")
            for field in info.fields:
                walk(field.type)
        elif isinstance(info, msgspec.inspect.UnionType):
            for member in info.types:
                walk(member)
        elif isinstance(info, msgspec.inspect.DictType):
            walk(info.key_type)
            walk(info.value_type)
        elif isinstance(
            info,
            msgspec.inspect.ListType
            | msgspec.inspect.SetType
            | msgspec.inspect.FrozenSetType
            | msgspec.inspect.VarTupleType,
        ):
            walk(info.item_type)
        elif isinstance(info, msgspec.inspect.TupleType):
            for item in info.item_types:
                walk(item)
        elif isinstance(
            info,
            msgspec.inspect.AnyType
            | msgspec.inspect.DataclassType
            | msgspec.inspect.TypedDictType
            | msgspec.inspect.NamedTupleType
            | msgspec.inspect.CustomType,
        ):
            found.append(f"{info!r}: keys not known from the type")

    walk(msgspec.inspect.type_info(type_))
    return found


def _order_of(type_: type) -> Order:
    order = _orders.get(type_)
    if order is None:
        order = _orders[type_] = "sorted" if fields_out_of_order(type_) else "deterministic"
    return order


def encode(doc: Record) -> str:
    """The stored form of a document: its JSON with keys in sorted order.

    Every struct of the documents declares its fields in the sorted order of their JSON names,
    so msgspec's ``deterministic`` order (fields as declared, dict keys sorted), about 3 times
    faster on a large document than its ``sorted`` order (which sorts each struct's fields
    every time), writes the same bytes. A document that holds a struct declared otherwise (a
    ``paper``'s ink, whose structs are the events' and whose tag ``type`` sorts among its
    fields) is written in ``sorted`` order."""
    return _ENCODERS[_order_of(type(doc))].encode(doc).decode()


class Kind(Generic[D]):
    """A kind of document: its name (in the store, in change notices and live topics) and the
    struct its documents decode into."""

    __slots__ = ("_decoder", "name", "type")

    def __init__(self, name: str, type_: type[D]) -> None:
        self.name = name
        self.type = type_
        self._decoder = msgspec.json.Decoder(type_)

    def decode(self, data: str | bytes) -> D:
        return self._decoder.decode(data)

    def copy(self, doc: D) -> D:
        """A deep copy of ``doc`` (through its JSON, several times faster than ``deepcopy``)."""
        return self._decoder.decode(_copier.encode(doc))

    def __repr__(self) -> str:
        return f"Kind({self.name!r}, {self.type.__name__})"


def as_json(record: Record) -> JsonObject:
    """A document or a part of one as the JSON object it is stored as (keys in sorted order)."""
    converted: JsonObject = msgspec.to_builtins(record, order=_order_of(type(record)))
    return converted
