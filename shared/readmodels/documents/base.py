"""What every read-model document and row is made of."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

Instant = str
"""A time as documents hold it: ISO 8601 in UTC, to the microsecond, with a ``Z``
(:func:`shared.readmodels.times.iso`), so that documents compare times as strings."""

JsonObject = dict[str, Any]
"""A JSON object as it goes out to a client."""


class Record(msgspec.Struct, kw_only=True, rename="camel"):
    """A part of a read-model document: camelCase keys in JSON.

    A field whose default is ``UNSET`` is written only once something set it (a help request
    gets ``resolvedAt`` when it is resolved), as the JSON of earlier releases had no key for it
    until then. Fields that documents written by earlier releases may lack have defaults."""


class Document(Record, kw_only=True):
    """A whole read-model document, stored as JSON under a kind and a key."""

    def __getitem__(self, key: str) -> Any:
        """A top-level field of the document's JSON, by its camelCase name, as a copy (for
        operators' scripts and tests that read documents as stored; code uses the fields)."""
        return as_json(self)[key]


D = TypeVar("D", bound=Document)

_encoder = msgspec.json.Encoder(order="sorted")
_copier = msgspec.json.Encoder()
"""For copies, whose keys' order nobody sees: sorting every struct's fields made encoding a
large document 1.5 to 3 times slower."""


def encode(doc: Record) -> str:
    """The stored form of a document: its JSON with keys in sorted order."""
    return _encoder.encode(doc).decode()


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
    converted: JsonObject = msgspec.to_builtins(record, order="sorted")
    return converted
