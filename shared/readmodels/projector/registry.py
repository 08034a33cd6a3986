"""Which function projects which event type.

Each handler is registered for the event types it takes with :func:`projects`, whose overloads
let mypy check that a handler accepts every type it is registered for. The dispatch table maps
an event type to a checked adapter, so nothing in it is typed ``Any``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from shared import events as ev
from shared.readmodels.projector.batch import Batch

E = TypeVar("E", bound=ev.Event)
E1 = TypeVar("E1", bound=ev.Event)
E2 = TypeVar("E2", bound=ev.Event)
E3 = TypeVar("E3", bound=ev.Event)
E4 = TypeVar("E4", bound=ev.Event)
E5 = TypeVar("E5", bound=ev.Event)
E6 = TypeVar("E6", bound=ev.Event)

Projection = Callable[[Batch, ev.Event], None]
"""How one event changes the documents of a batch."""


class _Handler(Generic[E]):
    """A handler of one event type, callable with any event (it checks the type)."""

    def __init__(self, event_type: type[E], handler: Callable[[Batch, E], None]) -> None:
        self.event_type = event_type
        self.handler = handler

    def __call__(self, batch: Batch, event: ev.Event) -> None:
        if not isinstance(event, self.event_type):
            raise TypeError(
                f"{self.handler.__name__} projects {self.event_type.__name__}, "
                f"not {type(event).__name__}"
            )
        self.handler(batch, event)


_HANDLERS: dict[type[ev.Event], Projection] = {}


def _register(event_type: type[E], handler: Callable[[Batch, E], None]) -> None:
    if event_type in _HANDLERS:
        raise TypeError(f"{event_type.__name__} is projected twice")
    _HANDLERS[event_type] = _Handler(event_type, handler)


H1 = Callable[[Batch, E1], None]


@overload
def projects(t1: type[E1], /) -> Callable[[H1[E1]], H1[E1]]: ...


@overload
def projects(
    t1: type[E1], t2: type[E2], /
) -> Callable[[Callable[[Batch, E1 | E2], None]], Callable[[Batch, E1 | E2], None]]: ...


@overload
def projects(
    t1: type[E1], t2: type[E2], t3: type[E3], /
) -> Callable[[Callable[[Batch, E1 | E2 | E3], None]], Callable[[Batch, E1 | E2 | E3], None]]: ...


@overload
def projects(
    t1: type[E1], t2: type[E2], t3: type[E3], t4: type[E4], /
) -> Callable[
    [Callable[[Batch, E1 | E2 | E3 | E4], None]], Callable[[Batch, E1 | E2 | E3 | E4], None]
]: ...


@overload
def projects(
    t1: type[E1], t2: type[E2], t3: type[E3], t4: type[E4], t5: type[E5], /
) -> Callable[
    [Callable[[Batch, E1 | E2 | E3 | E4 | E5], None]],
    Callable[[Batch, E1 | E2 | E3 | E4 | E5], None],
]: ...


@overload
def projects(
    t1: type[E1], t2: type[E2], t3: type[E3], t4: type[E4], t5: type[E5], t6: type[E6], /
) -> Callable[
    [Callable[[Batch, E1 | E2 | E3 | E4 | E5 | E6], None]],
    Callable[[Batch, E1 | E2 | E3 | E4 | E5 | E6], None],
]: ...


def projects(
    *event_types: type[ev.Event],
) -> Callable[[Callable[[Batch, Any], None]], Callable[[Batch, Any], None]]:
    """Register the decorated function as the projection of ``event_types`` (the overloads
    above are what callers are checked against)."""

    def register(handler: Callable[[Batch, Any], None]) -> Callable[[Batch, Any], None]:
        for event_type in event_types:
            _register(event_type, handler)
        return handler

    return register


def projection_of(event_type: type[ev.Event]) -> Projection | None:
    """The function that projects ``event_type``; ``None`` for a type the read models ignore."""
    return _HANDLERS.get(event_type)


def projected_event_types() -> frozenset[type[ev.Event]]:
    """Every event type that changes some read model."""
    return frozenset(_HANDLERS)
