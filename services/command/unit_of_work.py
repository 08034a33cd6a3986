"""The unit of work of one command: what it loads, what it saves, and nothing in between.

A handler loads aggregates through a :class:`UnitOfWork`, asks them to decide, and adds the
new ones it creates; :func:`execute` then stores every aggregate that changed, with the
command's idempotency receipt, in one atomic commit. A conflict (someone else changed the same
aggregates meanwhile) runs the handler again on a fresh unit of work, a few times, then gives
up with :class:`ConcurrentUpdate`; nothing is ever overwritten.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from services.command.domain.aggregate import Aggregate, InvalidValue, NotFound, RuleViolated
from services.command.domain.directory import Centre, Person, centre_aggregate_id
from services.command.idempotency import CommandReceipt, IdempotencyKey, KeyReused, receipt_id
from services.command.privacy import PersonalData
from shared.eventstore import EventStore
from shared.eventstore.group_commit import StaleRead
from shared.paper.codes import SheetCodes
from shared.tenancy import Actor

log = structlog.get_logger(__name__)

A = TypeVar("A", bound=Aggregate)

MAX_ATTEMPTS = 4
"""How many times a command is decided again after a conflict before it gives up."""


class ConcurrentUpdate(Exception):
    """Others kept changing the same aggregates; the client may retry (HTTP 409)."""


@dataclass(frozen=True)
class CommandResult:
    status_code: int
    body: dict[str, Any]
    """The answer as JSON-ready values: what a receipt stores and a replay answers again."""
    position: int
    """Notification id the read side must reach to reflect this command."""
    replayed: bool = False


@dataclass(frozen=True)
class Decision:
    """What a handler answered, before it is stored."""

    status_code: int
    body: dict[str, Any]


class DirectoryCache:
    """Centres and people are read by almost every command and change rarely; a command may
    see a registration up to :attr:`SECONDS` later than it happened. The cached aggregates are
    shared between commands and threads, so a command never changes them: a command that
    changes a centre loads its own copy (:meth:`UnitOfWork.get`)."""

    SECONDS = 60.0
    LIMIT = 10_000

    def __init__(self) -> None:
        self._entries: dict[UUID, tuple[float, Aggregate]] = {}
        self._lock = threading.Lock()

    def get(self, cls: type[A], aggregate_id: UUID) -> A | None:
        with self._lock:
            entry = self._entries.get(aggregate_id)
        if entry is None or entry[0] <= time.monotonic() or not isinstance(entry[1], cls):
            return None
        return entry[1]

    def put(self, aggregate: Aggregate) -> None:
        with self._lock:
            if len(self._entries) > self.LIMIT:
                self._entries.clear()
            self._entries[aggregate.id] = (time.monotonic() + self.SECONDS, aggregate)

    def clear(self) -> None:
        """Forget every entry (as another replica, which never saw them, would)."""
        with self._lock:
            self._entries.clear()

    def refresh(self, aggregate: Aggregate) -> bool:
        """A command just stored ``aggregate``: a cached copy of it is replaced (``True``), and
        this instance is then shared by commands: nobody may change it any more."""
        with self._lock:
            if aggregate.id in self._entries:
                self._entries[aggregate.id] = (time.monotonic() + self.SECONDS, aggregate)
                return True
        return False


@dataclass(frozen=True)
class Services:
    """What a handler may call besides the event store."""

    sheet_codes: SheetCodes | None = None
    """Mints the signed codes of printed worksheets; ``None`` where paper work is not set up."""
    privacy: PersonalData | None = None
    """The key store, for erasure; ``None`` where personal texts are not sealed."""


class UnitOfWork:
    """The aggregates one attempt of one command has loaded or created, for ``actor``."""

    def __init__(
        self,
        store: EventStore,
        directory: DirectoryCache,
        actor: Actor,
        services: Services | None = None,
        *,
        trust_kept: bool = False,
    ) -> None:
        """``trust_kept``: take the process's kept aggregates as they are, without asking the
        store whether they moved on (the commit then checks that they did not: see
        :meth:`commit`); only where the store checks expected versions (PostgreSQL)."""
        self.store = store
        self.directory = directory
        self.actor = actor
        self.services = Services() if services is None else services
        self._trust_kept = (
            trust_kept and store.aggregates is not None and store.group_commit is not None
        )
        self.trusted: dict[UUID, int] = {}
        """Aggregates taken from kept copies unasked, with the version each was taken at (0:
        presumed new, see :meth:`get_or_start`)."""
        self.presumed: dict[UUID, type[Aggregate]] = {}
        """Aggregates started without asking the store whether they have a history, with
        their kinds."""
        self._seen: dict[UUID, Aggregate] = {}
        self._exists_message: str | None = None
        self._stored: list[Aggregate] = []

    # --- loading ---------------------------------------------------------------------------

    def get(self, cls: type[A], aggregate_id: UUID) -> A:
        """The aggregate as stored now (one copy per unit of work); :class:`NotFound` if there
        is none of this kind."""
        seen = self._seen.get(aggregate_id)
        if seen is not None:
            if not isinstance(seen, cls):
                raise NotFound(f"no such {cls.__name__.lower()}")
            return seen
        aggregate = self._load(cls, aggregate_id)
        self._seen[aggregate_id] = aggregate
        return aggregate

    def get_or_start(self, cls: type[A], aggregate_id: UUID, start: Callable[[], A]) -> A:
        """The aggregate, or a new one from ``start()`` if it has no history yet (a seat, a
        week of a timetable, a profile). Where kept copies are taken unasked, one this process
        knows nothing of is presumed new without asking the store (most are: a student's seat
        before their first help request), and the commit checks that it still has no event
        (``StaleRead`` otherwise, as for a stale kept copy)."""
        aggregates = self.store.aggregates
        unknown = (
            self._trust_kept
            and aggregates is not None
            and aggregate_id not in self._seen
            and not aggregates.known(aggregate_id)
        )
        if unknown and aggregates is not None and aggregates.presumed.trust(cls):
            aggregate = start()
            self.trusted[aggregate.id] = 0
            self.presumed[aggregate.id] = cls
            self._seen[aggregate.id] = aggregate
            return aggregate
        try:
            found = self.get(cls, aggregate_id)
        except NotFound:
            if unknown and aggregates is not None:  # a guess of new would have been right
                aggregates.presumed.record(cls, stale=False)
            aggregate = start()
            self._seen[aggregate.id] = aggregate
            return aggregate
        if unknown and aggregates is not None:  # and wrong here
            aggregates.presumed.record(cls, stale=True)
        return found

    def record_presumed(self, *, stale: bool, among: Collection[UUID | str] | None = None) -> None:
        """Count, once per kind, whether the aggregates presumed new (those ``among``, if
        given) turned out to exist (``stale``) or not."""
        aggregates = self.store.aggregates
        if aggregates is None:
            return
        for kind in {k for id_, k in self.presumed.items() if among is None or id_ in among}:
            aggregates.presumed.record(kind, stale=stale)

    def find(self, cls: type[A], aggregate_id: UUID, *, field: str | None = None) -> A:
        """An aggregate of the actor's centre; in another centre it is not found. Named by a
        body ``field``, a missing one is an invalid value (422) rather than a 404. Centres and
        people come from the directory cache (read only)."""
        try:
            if cls in (Centre, Person):
                aggregate = self._directory(cls, aggregate_id)
            else:
                aggregate = self.get(cls, aggregate_id)
            if aggregate.centre_id != self.actor.centre_id:
                raise NotFound(f"no such {cls.__name__.lower()}")
        except NotFound as error:
            if field is not None:
                raise InvalidValue(f"{error.detail} in this centre", field=field) from None
            raise
        return aggregate

    def centre(self) -> Centre:
        """The actor's centre (a cached copy, read only)."""
        try:
            return self._directory(Centre, centre_aggregate_id(self.actor.centre_id))
        except NotFound:
            raise NotFound(f"centre {self.actor.centre_id!r} is not registered") from None

    def add(self, *aggregates: Aggregate, if_exists: str | None = None) -> None:
        """New aggregates to store. ``if_exists``: the refusal (409) when one of that id is
        already stored (a centre, a person's e-mail)."""
        for aggregate in aggregates:
            self._seen[aggregate.id] = aggregate
        if if_exists is not None:
            self._exists_message = if_exists

    def _load(self, cls: type[A], aggregate_id: UUID) -> A:
        if self._trust_kept and self.store.aggregates is not None:
            kept = self.store.aggregates.kept(aggregate_id)
            if isinstance(kept, cls):
                self.trusted[aggregate_id] = kept.version
                return kept
        return load(self.store, cls, aggregate_id)

    def _directory(self, cls: type[A], aggregate_id: UUID) -> A:
        cached = self.directory.get(cls, aggregate_id)
        if cached is not None:
            return cached
        aggregate = load(self.store, cls, aggregate_id)  # shared by commands: never unasked
        self.directory.put(aggregate)
        return aggregate

    # --- saving ----------------------------------------------------------------------------

    def changed(self) -> list[Aggregate]:
        """The aggregates to store, in the order they began to change."""
        return sorted((a for a in self._seen.values() if a.has_changes), key=lambda a: a.changed_at)

    def commit(self, decision: Decision, idempotency: IdempotencyKey | None) -> int:
        """Store every change and the receipt in one commit; the position to read at. Raises
        the store's ``IntegrityError`` on a conflict, and ``StaleRead`` (one) if an aggregate
        taken from a kept copy unasked, written or only read, has moved on since."""
        self._stored = self.changed()
        if idempotency is not None:
            self._stored.append(
                CommandReceipt.record(self.actor, idempotency, decision.status_code, decision.body)
            )
        if not self._stored and self.trusted:  # no commit would check what it decided on
            raise StaleRead("a decision that stores nothing is taken on the stored state")
        position = self.store.commit(*self._stored, expected=self.trusted) if self._stored else None
        shared = {a.id for a in self._stored if self.directory.refresh(a)}
        if self.store.aggregates is not None:
            # Committed: every aggregate this command borrowed, written or only read, is given
            # back at its new version (a refused or failed command never gets here, so what it
            # changed without storing is dropped with it). Not receipts (read once, by a retry
            # at most), nor what the directory now shares between commands.
            for aggregate in self._seen.values():
                if aggregate.id not in shared:
                    self.store.aggregates.keep(aggregate)
        return self.store.position if position is None else position

    def refusal_of_conflict(self) -> RuleViolated | None:
        """A conflict while only creating aggregates named ``if_exists`` means they exist."""
        if self._exists_message is not None and all(a.version == 1 for a in self._stored):
            return RuleViolated(self._exists_message)
        return None


def execute(
    store: EventStore,
    directory: DirectoryCache,
    actor: Actor,
    decide: Callable[[UnitOfWork], Decision],
    idempotency: IdempotencyKey | None = None,
    services: Services | None = None,
) -> CommandResult:
    """Decide on a fresh unit of work and commit, retrying on conflicts; a command retried with
    its Idempotency-Key answers what it answered the first time and stores nothing."""
    if idempotency is not None and (replay := _replay(store, actor, idempotency)) is not None:
        return replay
    stale = None if store.aggregates is None else store.aggregates.stale
    attempt, trust_kept = 0, stale is not None and stale.trust()
    while attempt < MAX_ATTEMPTS:
        uow = UnitOfWork(store, directory, actor, services, trust_kept=trust_kept)
        trust_kept = False  # after a first try on kept copies, every aggregate is read anew
        try:
            decision = decide(uow)
        except Exception:
            if uow.trusted and stale is not None:  # perhaps what the copies no longer say
                stale.record(stale=True)
                continue
            raise
        if not uow.trusted:  # a decision on kept copies alone is not counted as an attempt
            attempt += 1
        try:
            position = uow.commit(decision, idempotency)
        except StaleRead as error:
            if uow.presumed and error.moved and error.moved <= set(uow.presumed):
                uow.record_presumed(stale=True, among=error.moved)  # not a kept copy: a guess
            elif stale is not None:
                stale.record(stale=True)
            log.info("command.stale", aggregates=len(uow.trusted))
            continue
        except IntegrityError:
            uow.record_presumed(stale=True)  # most likely one that exists
            if (
                idempotency is not None
                and (replay := _replay(store, actor, idempotency)) is not None
            ):
                return replay
            if (refusal := uow.refusal_of_conflict()) is not None:
                raise refusal from None
            log.info("command.conflict", attempt=attempt)
            continue
        if len(uow.trusted) > len(uow.presumed) and stale is not None:
            stale.record(stale=False)
        uow.record_presumed(stale=False)
        return CommandResult(decision.status_code, decision.body, position)
    raise ConcurrentUpdate("the session changed while the command ran; try again")


def load(store: EventStore, cls: type[A], aggregate_id: UUID) -> A:
    """An aggregate as stored now, the caller's own; :class:`NotFound` if there is none of this
    kind. The instance the process kept, if any, is lent to the caller and not given back (a
    unit of work gives back what it loaded once its commit succeeded)."""
    try:
        if store.aggregates is not None:
            aggregate = store.aggregates.get(aggregate_id, cls.project)
        else:
            aggregate = store.repository.get(aggregate_id, projector_func=cls.project)
    except (AggregateNotFoundError, KeyError):
        raise NotFound(f"no such {cls.__name__.lower()}") from None
    if not isinstance(aggregate, cls):
        raise NotFound(f"no such {cls.__name__.lower()}")
    return aggregate


def _replay(store: EventStore, actor: Actor, idempotency: IdempotencyKey) -> CommandResult | None:
    try:
        receipt = load(store, CommandReceipt, receipt_id(actor, idempotency.key))
    except NotFound:
        return None
    if not receipt.matches(idempotency):
        raise KeyReused("this Idempotency-Key was already used for a different request")
    return CommandResult(receipt.status_code, receipt.body, store.position, replayed=True)
