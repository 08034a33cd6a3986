"""A small event-sourced aggregate base for the tutorpulse domain.

Aggregates change state only by recording events (contracts from ``shared.events``); every
event is stamped with the aggregate's centre, its next version, the time and the actor.

Personal texts are sealed as each event is made, before the aggregate applies it, by the
:class:`Sealer` the command service installs around a command (:func:`sealing`): aggregates,
snapshots and stored events then hold only sealed texts (see docs/privacy.md). With none
installed (the domain's own tests) events keep their texts as given.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, Self, TypeVar
from uuid import UUID

from shared.events import MAX_EVENT_BYTES, Event, encode
from shared.tenancy import Actor

E = TypeVar("E", bound=Event)
Applier = Callable[[Any, Any], None]


def applies(*event_classes: type[Event]) -> Callable[[Applier], Applier]:
    """Mark a method as the way an aggregate changes when one of ``event_classes`` happens."""

    def mark(method: Applier) -> Applier:
        method._applies_to = event_classes  # type: ignore[attr-defined]
        return method

    return mark


class DomainError(Exception):
    """A command that the rules of the centre do not allow. ``field`` names the value at fault
    as the command does (``records[2].student_id``); HTTP tells the client its wire name."""

    field: str | None = None

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if field is not None:
            self.field = field


class InvalidTransition(DomainError):
    """The aggregate is in a state from which this verb is not possible (HTTP 409)."""


class RuleViolated(DomainError):
    """The command conflicts with what is already recorded (HTTP 409)."""


class InvalidValue(DomainError):
    """A value the domain cannot accept, named by ``field`` (HTTP 422)."""


class NotFound(DomainError):
    """No such thing in the actor's centre (HTTP 404). Other centres' things are not found."""


class PersonDataWasErased(RuleViolated):
    """The command would record personal data about a person whose data was erased (HTTP
    409): nothing new about them is written."""

    def __init__(self, detail: str = "this person's data was erased") -> None:
        super().__init__(detail)


class Sealer(Protocol):
    """What seals the personal texts of events as they are made (the command service's key
    store, through ``shared.privacy.fields``)."""

    def seal(self, event: E, aggregate: Aggregate) -> E:
        """``event`` with its personal texts sealed; :class:`PersonDataWasErased` if the
        person they are about was erased."""
        ...

    def same(self, recorded: str | None, text: str | None, centre_id: str) -> bool:
        """Whether a text recorded earlier (sealed, perhaps) is ``text``."""
        ...


_SEALER: ContextVar[Sealer | None] = ContextVar("tutorpulse_sealer", default=None)


@contextmanager
def sealing(sealer: Sealer | None) -> Iterator[None]:
    """Events made within seal their personal texts with ``sealer`` (none: kept as given)."""
    token = _SEALER.set(sealer)
    try:
        yield
    finally:
        _SEALER.reset(token)


_CHANGES = itertools.count(1)
"""Orders the changes of every aggregate of the process, so that a commit stores aggregates
in the order they began to change (the order the centre would tell the story in)."""


class Aggregate:
    _appliers: ClassVar[dict[type[Event], Applier]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._appliers = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                for event_class in getattr(attribute, "_applies_to", ()):
                    cls._appliers[event_class] = attribute

    def __init__(self, aggregate_id: UUID, centre_id: str) -> None:
        self.id = aggregate_id
        self.centre_id = centre_id
        self.version = 0
        self._pending: list[Event] = []
        self.changed_at = 0
        """When (in :data:`_CHANGES` order) the pending changes began; 0 while there are none."""
        self._blank()

    def _record(
        self, event_class: type[E], by: Actor, *, at: datetime | None = None, **fields: Any
    ) -> E:
        event = event_class(
            centre_id=self.centre_id,
            aggregate_id=self.id,
            aggregate_version=self.version + 1,
            occurred_at=at or datetime.now(UTC),
            actor_id=by.user_id,
            actor_role=by.role,
            **fields,
        )
        sealer = _SEALER.get()
        if sealer is not None:
            event = sealer.seal(event, self)
        if len(encoded := encode(event)) > MAX_EVENT_BYTES:
            raise InvalidValue(
                f"this is too much to record at once ({len(encoded) // 1024} KiB; at most "
                f"{MAX_EVENT_BYTES // 1024} KiB): send less text or fewer items",
                field="body",
            )
        self._apply(event)
        if not self._pending:
            self.changed_at = next(_CHANGES)
        self._pending.append(event)
        return event

    def _same_text(self, recorded: str | None, text: str | None) -> bool:
        """Whether a text this aggregate recorded (sealed where personal) is ``text``."""
        sealer = _SEALER.get()
        if sealer is None or recorded is None or text is None:
            return recorded == text
        return sealer.same(recorded, text, self.centre_id)

    def _apply(self, event: Event) -> None:
        self._appliers[type(event)](self, event)
        self.version = event.aggregate_version

    def collect_events(self) -> list[Event]:
        collected, self._pending = self._pending, []
        self.changed_at = 0
        return collected

    @property
    def has_changes(self) -> bool:
        return bool(self._pending)

    @classmethod
    def project(cls, aggregate: Self | None, events: Iterable[Event]) -> Self | None:
        """Rebuild an aggregate from its history (the eventsourcing projector function)."""
        for event in events:
            if aggregate is None:
                aggregate = cls.__new__(cls)
                Aggregate.__init__(aggregate, event.aggregate_id, event.centre_id)
            aggregate._apply(event)
        return aggregate

    def _blank(self) -> None:
        """Set the attributes an aggregate has before its first event."""
