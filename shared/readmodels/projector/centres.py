"""The ``centre`` and ``person`` documents."""

from __future__ import annotations

from shared import events as ev
from shared.readmodels.documents import CENTRE, PERSON, Centre, Person
from shared.readmodels.projector.batch import Batch
from shared.readmodels.projector.registry import projects


@projects(ev.CentreRegistered)
def centre_registered(docs: Batch, e: ev.CentreRegistered) -> None:
    docs.put(
        CENTRE,
        e.centre_id,
        e.centre_id,
        Centre(
            centre_id=e.centre_id,
            name=e.name,
            time_zone=e.time_zone,
            help_sla_minutes=dict(e.help_sla_minutes),
        ),
    )


def _centre(docs: Batch, e: ev.Event) -> Centre:
    centre = docs.get(CENTRE, e.centre_id)
    assert centre is not None  # registered first: same aggregate, applied in order
    return centre


@projects(ev.CentreHelpSlasChanged)
def help_slas_changed(docs: Batch, e: ev.CentreHelpSlasChanged) -> None:
    centre = _centre(docs, e)
    centre.help_sla_minutes = dict(e.help_sla_minutes)
    docs.put(CENTRE, e.centre_id, e.centre_id, centre)


@projects(ev.CentreSessionLengthChanged)
def session_length_changed(docs: Batch, e: ev.CentreSessionLengthChanged) -> None:
    centre = _centre(docs, e)
    centre.max_session_minutes = e.max_session_minutes
    docs.put(CENTRE, e.centre_id, e.centre_id, centre)


@projects(ev.PersonRegistered)
def person_registered(docs: Batch, e: ev.PersonRegistered) -> None:
    docs.put(
        PERSON,
        str(e.aggregate_id),
        e.centre_id,
        Person(
            person_id=str(e.aggregate_id),
            name=e.name,
            role=e.role,
            guardian_id=str(e.guardian_id) if e.guardian_id else None,
        ),
    )
