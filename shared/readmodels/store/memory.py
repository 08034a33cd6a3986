"""A transaction over documents held in memory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

from shared.readmodels.documents import D, Document, Kind, LogRow
from shared.readmodels.store.transaction import StoredDoc, Transaction, resolve


class MemoryTransaction(Transaction):
    """A transaction over documents held in memory: for replaying history into a throwaway
    read model (the Control Center as it was at some instant)."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], StoredDoc[Any]] = {}
        self.versions: dict[str, int] = {}
        self.generation = 0

    def aggregate_version(self, aggregate_id: str) -> int:
        return self.versions.get(aggregate_id, 0)

    def aggregate_versions(self, aggregate_ids: Sequence[str]) -> dict[str, int]:
        return {a: self.versions.get(a, 0) for a in aggregate_ids}

    def set_aggregate_versions(self, versions: Sequence[tuple[str, int]]) -> None:
        self.versions.update(versions)

    def skipped_versions(self, aggregate_ids: Sequence[str]) -> dict[str, list[int]]:
        """A replayed history has no dead letters."""
        return {}

    @overload
    def get(self, kind: Kind[D], key: str) -> StoredDoc[D] | None: ...

    @overload
    def get(self, kind: str, key: str) -> StoredDoc[Document] | None: ...

    def get(self, kind: Kind[Any] | str, key: str) -> StoredDoc[Any] | None:
        of = resolve(kind)
        found = self.docs.get((of.name, key))
        if found is None:
            return None
        assert isinstance(found.doc, of.type)  # put as that kind
        return StoredDoc(of, key, found.centre_id, found.version, found.doc)

    @overload
    def get_many(self, kind: Kind[D], keys: Sequence[str]) -> dict[str, StoredDoc[D] | None]: ...

    @overload
    def get_many(self, kind: str, keys: Sequence[str]) -> dict[str, StoredDoc[Document] | None]: ...

    def get_many(
        self, kind: Kind[Any] | str, keys: Sequence[str]
    ) -> dict[str, StoredDoc[Any] | None]:
        return {key: self.get(resolve(kind), key) for key in keys}

    def doc_versions(self, kind: Kind[Any] | str, keys: Sequence[str]) -> dict[str, int]:
        name = resolve(kind).name
        return {key: d.version if (d := self.docs.get((name, key))) else 0 for key in keys}

    def put_many(self, docs: Sequence[StoredDoc[Any]]) -> None:
        self.docs.update({(d.kind.name, d.key): d for d in docs})

    def append_logs(self, rows: Sequence[LogRow]) -> None:
        """The history being replayed is already logged."""

    def make_current(self) -> None:
        raise NotImplementedError("an in-memory replay has no generation to switch to")
