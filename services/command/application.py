"""The command side of tutorpulse: one entry point, :meth:`TutoringCentres.handle`.

A command (a type of :mod:`services.command.commands`) is dispatched by the table of
:mod:`services.command.bus` to its handler (:mod:`services.command.handlers`), which decides
with the aggregates of :mod:`services.command.domain` on a unit of work
(:mod:`services.command.unit_of_work`) that stores every resulting event in one atomic commit.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path

from services.command import bus, domain
from services.command.commands.base import Command
from services.command.domain.aggregate import NotFound, sealing
from services.command.idempotency import IdempotencyKey
from services.command.privacy import PersonalData
from services.command.unit_of_work import (
    CommandResult,
    ConcurrentUpdate,
    DirectoryCache,
    Services,
)
from shared import events
from shared.eventstore import EventStore, EventStoreSettings
from shared.eventstore.cache import AggregateCache, Snapshots
from shared.paper.codes import SheetCodes
from shared.tenancy import Actor

__all__ = ["CommandResult", "ConcurrentUpdate", "NotFound", "TutoringCentres"]

AGGREGATE_CACHE_SIZE = 10_000
"""Aggregates kept in memory by a command service process (least recently used go first): a
busy centre's day (its sessions, seats, attendance records and tutors' weeks) is about 2,500."""


@functools.cache
def domain_fingerprint() -> str:
    """A digest of the code that decides how aggregates look in memory (the domain and the
    events it applies): a snapshot pickled by other code is not used."""
    digest = hashlib.sha256()
    for package in (domain, events):
        for path in sorted(Path(next(iter(package.__path__))).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


class TutoringCentres(EventStore):
    """The event store, and the commands of every tutoring centre over it."""

    def __init__(
        self,
        settings: EventStoreSettings,
        *,
        sheet_key: bytes | None = None,
        privacy: PersonalData | None = None,
    ) -> None:
        """``sheet_key``: the key printed worksheets' codes are signed with; without it,
        worksheets cannot be printed nor scans routed. ``privacy``: the key store that seals
        personal texts as events are made (closed with the store); without it (the domain's
        tests, the scheduler's timers, which record no personal text) texts stay as given,
        until :meth:`protect` gives one."""
        self.privacy = privacy  # before the store opens: a store that fails to open closes
        super().__init__(settings)
        self.store_settings = settings
        self.directory = DirectoryCache()
        self.aggregates = AggregateCache(
            self.events,
            AGGREGATE_CACHE_SIZE,
            Snapshots(self.snapshot_recorder(), domain_fingerprint()),
        )
        self.services = Services(
            sheet_codes=None if sheet_key is None else SheetCodes(sheet_key), privacy=privacy
        )

    def protect(self, privacy: PersonalData) -> None:
        """Seal personal texts with ``privacy`` from now on (closed with the store)."""
        self.privacy = privacy
        self.services = dataclasses.replace(self.services, privacy=privacy)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.privacy is not None:
                self.privacy.close()

    def handle(
        self, actor: Actor, command: Command, *, idempotency: IdempotencyKey | None = None
    ) -> CommandResult:
        """Run ``command`` for ``actor``: refused (403) unless the actor's role may attempt it,
        then decided by its handler and stored in one commit (see :mod:`services.command.bus`)."""
        with sealing(self.privacy):
            return bus.dispatch(self, self.directory, actor, command, idempotency, self.services)
